//! A scenario's results sent out to the monitoring, once it is over: its
//! figures (the report's Prometheus families, `report/prometheus.rs`) to a
//! Pushgateway (`push`) or by remote write (`remote_write`), through the
//! monitoring's HTTP client. Downstream of the report; the monitoring's
//! reading side (`monitoring/`) knows nothing of it.

pub mod notify;
pub mod push;
pub mod remote_write;
