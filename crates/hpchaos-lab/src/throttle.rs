//! The lab API's rate limit, as SageMaker applies one per account: a token
//! bucket of `burst` requests refilled at `rate` per second, set while the
//! lab runs by `hpchaos lab throttle` (a small file in the lab folder, read
//! on each request). A request over the limit gets HTTP 400
//! `ThrottlingException`, which the SDK retries with backoff.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Requests per second and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub rate: f64,
    pub burst: f64,
}

impl Limit {
    /// The knob file's text: `RATE BURST`.
    pub fn parse(text: &str) -> Option<Limit> {
        let mut words = text.split_whitespace().map(str::parse::<f64>);
        let (Some(Ok(rate)), Some(Ok(burst))) = (words.next(), words.next()) else {
            return None;
        };
        (rate >= 0.0 && burst >= 1.0).then_some(Limit { rate, burst })
    }

    pub fn render(&self) -> String {
        format!("{} {}\n", self.rate, self.burst)
    }
}

struct Bucket {
    limit: Option<Limit>,
    tokens: f64,
    refilled: Instant,
}

pub struct Throttle {
    knob: PathBuf,
    bucket: Mutex<Bucket>,
}

impl Throttle {
    pub fn new(knob: &Path) -> Throttle {
        Throttle {
            knob: knob.to_path_buf(),
            bucket: Mutex::new(Bucket {
                limit: None,
                tokens: 0.0,
                refilled: Instant::now(),
            }),
        }
    }

    /// Whether a request may be served now; takes a token if so.
    pub fn admit(&self) -> bool {
        let limit = std::fs::read_to_string(&self.knob)
            .ok()
            .and_then(|t| Limit::parse(&t));
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        admit(&mut bucket, limit, Instant::now())
    }
}

fn admit(bucket: &mut Bucket, limit: Option<Limit>, now: Instant) -> bool {
    let Some(limit) = limit else {
        bucket.limit = None;
        return true;
    };
    if bucket.limit != Some(limit) {
        // A new limit starts with a full bucket.
        *bucket = Bucket {
            limit: Some(limit),
            tokens: limit.burst,
            refilled: now,
        };
    }
    let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * limit.rate).min(limit.burst);
    bucket.refilled = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_knob_file_reads_rate_and_burst() {
        assert_eq!(
            Limit::parse("0.5 2\n"),
            Some(Limit {
                rate: 0.5,
                burst: 2.0
            })
        );
        assert_eq!(Limit::parse("fast"), None);
        assert_eq!(Limit::parse("1 0"), None);
        let limit = Limit {
            rate: 2.0,
            burst: 3.0,
        };
        assert_eq!(Limit::parse(&limit.render()), Some(limit));
    }

    #[test]
    fn a_burst_is_served_then_the_rate_refills_it() {
        let start = Instant::now();
        let mut bucket = Bucket {
            limit: None,
            tokens: 0.0,
            refilled: start,
        };
        let limit = Some(Limit {
            rate: 2.0,
            burst: 2.0,
        });
        assert!(admit(&mut bucket, limit, start));
        assert!(admit(&mut bucket, limit, start));
        assert!(!admit(&mut bucket, limit, start));
        // Half a second at 2/s is one more request.
        let later = start + Duration::from_millis(500);
        assert!(admit(&mut bucket, limit, later));
        assert!(!admit(&mut bucket, limit, later));
        // No limit: everything is served.
        assert!(admit(&mut bucket, None, later));
    }
}
