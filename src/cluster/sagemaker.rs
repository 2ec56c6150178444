//! The SageMaker HyperPod API through aws-sdk-sagemaker: the standard
//! credential chain (or a named profile, optionally from a credentials file
//! of the cluster profile), the region, an optional endpoint URL, the SDK's
//! standard retries with backoff on throttling and 5xx, and pagination.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::primitives::DateTime as AwsDateTime;
use chrono::{DateTime, Utc};

use crate::profile::SageMaker as Settings;

/// One instance as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiNode {
    /// The Slurm node name: the first label of `PrivateDnsHostname`.
    pub node: String,
    pub instance_id: String,
    pub group: String,
    /// `Running`, `Pending`, `ShuttingDown`, ...
    pub status: String,
    pub launch_time: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
#[error("SageMaker {operation} on cluster {cluster}: {detail}")]
pub struct ApiError {
    pub operation: &'static str,
    pub cluster: String,
    pub detail: String,
}

/// Per-node outcome of a Batch call: the id, or why it was refused.
pub type BatchOutcome = Vec<(String, Result<(), String>)>;

/// The accepted ids, then the refused ones as `ErrorCode: Message`.
fn batch_outcome<'a>(
    successful: &[String],
    refused: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
) -> BatchOutcome {
    let mut outcome: BatchOutcome = successful.iter().map(|id| (id.clone(), Ok(()))).collect();
    outcome.extend(
        refused.map(|(id, code, message)| (id.to_owned(), Err(format!("{code}: {message}")))),
    );
    outcome
}

#[derive(Clone)]
pub struct SageMakerApi {
    client: Client,
    pub cluster: String,
}

fn chrono_of(at: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.secs(), at.subsec_nanos())
}

impl SageMakerApi {
    pub async fn connect(settings: &Settings) -> SageMakerApi {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(settings.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(5));
        if let Some(name) = &settings.aws_profile {
            loader = loader.profile_name(name);
        }
        if let Some(file) = &settings.credentials_file {
            let files = EnvConfigFiles::builder()
                .include_default_config_file(true)
                .with_file(EnvConfigFileKind::Credentials, file)
                .build();
            loader = loader.profile_files(files);
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        SageMakerApi {
            client: Client::new(&config),
            cluster: settings.cluster_name.clone(),
        }
    }

    fn error(&self, operation: &'static str, err: impl std::error::Error) -> ApiError {
        let detail = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        ApiError {
            operation,
            cluster: self.cluster.clone(),
            detail,
        }
    }

    /// Every node, through all pages.
    pub async fn nodes(&self) -> Result<Vec<ApiNode>, ApiError> {
        let pages: Vec<_> = self
            .client
            .list_cluster_nodes()
            .cluster_name(&self.cluster)
            .max_results(100)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| self.error("ListClusterNodes", e))?;
        Ok(pages
            .iter()
            .flat_map(|page| page.cluster_node_summaries())
            .map(|summary| ApiNode {
                node: summary
                    .private_dns_hostname()
                    .and_then(|h| h.split('.').next())
                    .unwrap_or_default()
                    .to_owned(),
                instance_id: summary.instance_id().unwrap_or_default().to_owned(),
                group: summary.instance_group_name().unwrap_or_default().to_owned(),
                status: summary
                    .instance_status()
                    .and_then(|s| s.status())
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                launch_time: summary.launch_time().and_then(chrono_of),
            })
            .collect())
    }

    /// `Automatic` or `None`.
    pub async fn node_recovery(&self) -> Result<String, ApiError> {
        let cluster = self
            .client
            .describe_cluster()
            .cluster_name(&self.cluster)
            .send()
            .await
            .map_err(|e| self.error("DescribeCluster", e))?;
        Ok(cluster
            .node_recovery()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default())
    }

    pub async fn reboot(&self, instance_ids: &[String]) -> Result<BatchOutcome, ApiError> {
        let out = self
            .client
            .batch_reboot_cluster_nodes()
            .cluster_name(&self.cluster)
            .set_node_ids(Some(instance_ids.to_vec()))
            .send()
            .await
            .map_err(|e| self.error("BatchRebootClusterNodes", e))?;
        let refused = out.failed().iter().map(|f| {
            let code = f.error_code().map(|c| c.as_str()).unwrap_or_default();
            (
                f.node_id().unwrap_or_default(),
                code,
                f.message().unwrap_or_default(),
            )
        });
        Ok(batch_outcome(out.successful(), refused))
    }

    pub async fn replace(&self, instance_ids: &[String]) -> Result<BatchOutcome, ApiError> {
        let out = self
            .client
            .batch_replace_cluster_nodes()
            .cluster_name(&self.cluster)
            .set_node_ids(Some(instance_ids.to_vec()))
            .send()
            .await
            .map_err(|e| self.error("BatchReplaceClusterNodes", e))?;
        let refused = out.failed().iter().map(|f| {
            let code = f.error_code().map(|c| c.as_str()).unwrap_or_default();
            (
                f.node_id().unwrap_or_default(),
                code,
                f.message().unwrap_or_default(),
            )
        });
        Ok(batch_outcome(out.successful(), refused))
    }
}
