//! Results out: after each scenario, its figures (phase durations and
//! verdicts, outcome, injection time, lost steps, GPU-hours, monitoring
//! timings) in Prometheus's text format (`report/prometheus.rs`) go to the
//! profile's Pushgateway, grouped by job `hpchaos`, cluster and scenario,
//! so the next run of the scenario replaces them. A failed push is the
//! caller's to journal; it never fails the run.

use base64::Engine as _;

use crate::monitoring::client::{Client, MonitoringError};
use crate::profile::Endpoint;

/// A grouping-key segment, `/name/value`: plain when the value is made of
/// URL-safe characters, else `/name@base64/VALUE` (base64url, as the
/// Pushgateway's API reads it), so `/` and the like survive.
pub fn segment(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        format!("/{name}/{value}")
    } else {
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(value.as_bytes());
        // An empty value is `=` in the Pushgateway's encoding.
        let encoded = if encoded.is_empty() {
            "=".to_owned()
        } else {
            encoded
        };
        format!("/{name}@base64/{encoded}")
    }
}

/// The Pushgateway path of one scenario's results.
pub fn pushgateway_path(cluster: &str, scenario: &str) -> String {
    format!(
        "/metrics/job/hpchaos{}{}",
        segment("cluster", cluster),
        segment("scenario", scenario)
    )
}

/// The resiliency score's group: `/metrics/job/hpchaos-score/cluster/<c>`
/// (its own job: its series carry a `scenario` label of their own).
pub fn score_path(cluster: &str) -> String {
    format!("/metrics/job/hpchaos-score{}", segment("cluster", cluster))
}

/// Replaces the resiliency score's group with `text` (see
/// [`score_path`]): the series pushed, or why not.
pub async fn score_to_pushgateway(
    client: &Client,
    endpoint: &Endpoint,
    cluster: &str,
    text: &str,
) -> Result<usize, MonitoringError> {
    put(client, endpoint, &score_path(cluster), text).await
}

async fn put(
    client: &Client,
    endpoint: &Endpoint,
    path: &str,
    text: &str,
) -> Result<usize, MonitoringError> {
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    client
        .send(
            endpoint,
            reqwest::Method::PUT,
            path,
            &[],
            text.as_bytes().to_vec(),
            &[("content-type", "text/plain; version=0.0.4")],
        )
        .await?;
    Ok(series)
}

/// Replaces the scenario's group on the Pushgateway with `text` (`PUT`):
/// the series pushed, or why not.
pub async fn to_pushgateway(
    client: &Client,
    endpoint: &Endpoint,
    cluster: &str,
    scenario: &str,
    text: &str,
) -> Result<usize, MonitoringError> {
    put(client, endpoint, &pushgateway_path(cluster, scenario), text).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_keys_survive_any_value() {
        assert_eq!(
            pushgateway_path("lab", "xid48-replace"),
            "/metrics/job/hpchaos/cluster/lab/scenario/xid48-replace"
        );
        assert_eq!(segment("scenario", "a/b"), "/scenario@base64/YS9i");
        assert_eq!(segment("cluster", ""), "/cluster@base64/=");
    }
}
