//! Results out by Prometheus remote write (protocol 1.0): a scenario's
//! metric families as one `WriteRequest` (protobuf, snappy block format),
//! `POST`ed to a Prometheus run with `--web.enable-remote-write-receiver`
//! (`/api/v1/write`) or an Amazon Managed Prometheus workspace
//! (`.../api/v1/remote_write`, SigV4). Every sample carries the scenario's
//! end as its time and the labels `job="hpchaos"` and `cluster`, as the
//! Pushgateway's grouping key gives them.

use chrono::{DateTime, Utc};
use prost::Message as _;

use crate::monitoring::client::{Client, MonitoringError};
use crate::profile::Endpoint;
use crate::report::prometheus::Family;

/// `prometheus.WriteRequest` (remote.proto): the series only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries` (types.proto): labels sorted by name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A value at a time in milliseconds since the epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The families as series at `at`: `__name__`, the sample's labels, `job`
/// and `cluster`, sorted by name as the protocol asks.
pub fn request(families: &[Family], cluster: &str, at: DateTime<Utc>) -> WriteRequest {
    let mut timeseries = Vec::new();
    for family in families {
        for (labels, value) in &family.samples {
            let mut all: Vec<Label> = vec![
                Label {
                    name: "__name__".into(),
                    value: family.name.into(),
                },
                Label {
                    name: "job".into(),
                    value: "hpchaos".into(),
                },
            ];
            if !labels.iter().any(|(k, _)| *k == "cluster") {
                all.push(Label {
                    name: "cluster".into(),
                    value: cluster.into(),
                });
            }
            all.extend(labels.iter().map(|(k, v)| Label {
                name: (*k).into(),
                value: v.clone(),
            }));
            all.sort_by(|a, b| a.name.cmp(&b.name));
            timeseries.push(TimeSeries {
                labels: all,
                samples: vec![Sample {
                    value: *value,
                    timestamp: at.timestamp_millis(),
                }],
            });
        }
    }
    WriteRequest { timeseries }
}

/// Writes the request: the series written, or why not.
pub async fn write(
    client: &Client,
    endpoint: &Endpoint,
    request: &WriteRequest,
) -> Result<usize, MonitoringError> {
    let body = snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .map_err(|e| MonitoringError::Request {
            url: endpoint.url.clone(),
            message: format!("cannot compress the request: {e}"),
        })?;
    client
        .send(
            endpoint,
            reqwest::Method::POST,
            "",
            &[],
            body,
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-write-version", "0.1.0"),
            ],
        )
        .await?;
    Ok(request.timeseries.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn series_carry_their_name_job_and_cluster_sorted() {
        let family = Family {
            name: "hpchaos_phase_seconds",
            help: "h",
            samples: vec![(
                vec![("scenario", "x".into()), ("phase", "detect".into())],
                2.5,
            )],
        };
        let at = Utc.timestamp_millis_opt(1_764_600_000_123).unwrap();
        let request = request(&[family], "lab", at);
        let series = &request.timeseries[0];
        let names: Vec<&str> = series.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "cluster", "job", "phase", "scenario"]);
        assert_eq!(series.samples[0].timestamp, 1_764_600_000_123);
        // The bytes decode back as they were, through snappy.
        let packed = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap();
        let unpacked = snap::raw::Decoder::new().decompress_vec(&packed).unwrap();
        assert_eq!(WriteRequest::decode(unpacked.as_slice()).unwrap(), request);
    }
}
