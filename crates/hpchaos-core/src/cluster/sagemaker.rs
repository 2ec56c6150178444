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

/// One instance as the API lists it, mapped to its Slurm node. In a
/// recording (`observe/recording.rs`) its fields keep the API's names
/// (`InstanceId`, `InstanceGroupName`, `Status` for
/// `InstanceStatus.Status`, `LaunchTime`, `Message`), `Node` the Slurm
/// node's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiNode {
    /// The Slurm node name: the first label of `PrivateDnsHostname`, or,
    /// where the API omits it (before 2025-11-20, other emulators), the
    /// `ip-a-b-c-d` name of `DescribeClusterNode`'s `PrivatePrimaryIp`.
    pub node: String,
    pub instance_id: String,
    #[serde(rename = "InstanceGroupName")]
    pub group: String,
    /// `Running`, `Pending`, `ShuttingDown`, ...
    pub status: String,
    /// Absent when the API does not give it (never 1970).
    #[serde(default)]
    pub launch_time: Option<DateTime<Utc>>,
    /// `InstanceStatus.Message`, as the API gives it.
    #[serde(rename = "Message", default)]
    pub status_message: Option<String>,
}

impl ApiNode {
    /// Able to take work: `Running`, and nothing else.
    pub fn running(&self) -> bool {
        self.status == "Running"
    }
}

/// One event HyperPod recorded on an instance (`ListClusterEvents`'
/// `ClusterEventSummary`; in a recording, these names).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterEvent {
    pub id: String,
    pub time: Option<DateTime<Utc>>,
    pub group: String,
    pub instance_id: String,
    pub description: String,
    /// `Info`, `Warn`, `Error`.
    pub level: String,
}

/// What an `InstanceStatus.Status` means, in words, for messages: the
/// model's whole enum (`ClusterInstanceStatus` in botocore's
/// `sagemaker/service-2.json`: Running, Failure, Pending, ShuttingDown,
/// SystemUpdating, DeepHealthCheckInProgress, NotFound, DetachInProgress,
/// AttachInProgress). `Failure` is not final: HyperPod may retry the
/// launch, and the node may vanish from `ListClusterNodes` between attempts
/// (docs/HYPERPOD.md, "Failure is not always final"). Unknown values say so.
pub fn status_meaning(status: &str) -> &'static str {
    match status {
        "Running" => "running",
        "Pending" => "being launched",
        "ShuttingDown" => "being terminated",
        "Failure" => "failed to launch (HyperPod may retry it)",
        "SystemUpdating" => "being patched by HyperPod",
        "DeepHealthCheckInProgress" => "under HyperPod's deep health checks",
        "NotFound" => "gone (no such instance)",
        "DetachInProgress" => "being detached",
        "AttachInProgress" => "being attached",
        _ => "in a status this harness does not know",
    }
}

/// An instance the API lists that no Slurm node name could be found for
/// (no host name, and `DescribeClusterNode` gives no address): reported,
/// never targeted, never a node named "".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    pub instance_id: String,
    pub group: String,
    pub status: String,
    /// Why it could not be mapped.
    pub why: String,
}

/// Why a listed instance could not be named as a Slurm node.
#[derive(Debug, thiserror::Error)]
pub enum Unmappable {
    #[error("the listing gives no instance id")]
    NoInstanceId,
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("DescribeClusterNode does not know it")]
    Unknown,
    #[error("neither PrivateDnsHostname nor PrivatePrimaryIp is given")]
    NoName,
}

#[derive(Debug, thiserror::Error)]
#[error("SageMaker {operation} on cluster {cluster}: {detail}")]
pub struct ApiError {
    pub operation: &'static str,
    pub cluster: String,
    pub detail: String,
    /// The service's error code when it answered (`AccessDeniedException`,
    /// `ResourceNotFound`, `ThrottlingException`, `ValidationException`,
    /// ...), decoded once from the SDK's error; `None` when no answer
    /// came (no credentials, the endpoint unreachable).
    pub code: Option<String>,
}

impl ApiError {
    /// What to check, from what the API said: the cluster's name and
    /// region, the credentials, or the endpoint.
    pub fn hint(&self, region: &str) -> String {
        match self.code.as_deref() {
            Some("ResourceNotFound") => format!(
                "no cluster named `{}` answers in region {region}: check sagemaker.cluster_name and sagemaker.region (`aws sagemaker list-clusters --region {region}`)",
                self.cluster
            ),
            Some(code) if code.starts_with("AccessDenied") || code == "UnauthorizedOperation" => {
                format!(
                    "the credentials may not call sagemaker:{}: grant it on the cluster (contrib/iam/hpchaos-run.json for run; hpchaos-read-only.json for status and plan)",
                    self.operation
                )
            }
            Some(
                "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException"
                | "ExpiredToken",
            ) => "the API refused the credentials (unknown, wrong or expired): log in again (`aws sso login`), or check the keys sagemaker.aws_profile and sagemaker.credentials_file name".to_owned(),
            Some(_) => "check the profile's sagemaker settings".to_owned(),
            // No answer: no credentials to sign with, or no endpoint.
            None if self.detail.to_lowercase().contains("credential") => "no AWS credentials were found: set sagemaker.aws_profile or sagemaker.credentials_file, or log in (`aws sso login`)".to_owned(),
            None => "the API endpoint does not answer: check sagemaker.endpoint_url and sagemaker.region".to_owned(),
        }
    }
}

/// A cluster as `DescribeCluster` describes it (see
/// [`SageMakerApi::summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    pub arn: String,
    pub groups: Vec<GroupSummary>,
    pub node_recovery: String,
}

/// One instance group as `DescribeCluster` describes it: its Slurm role
/// and what it is going through of its own (botocore 2025-08 on:
/// `SlurmConfig`, `SoftwareUpdateStatus`, `ActiveOperations`,
/// `AutoPatchConfig`; HYPERPOD.md "Since 2025").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSummary {
    pub name: String,
    /// `SlurmConfig.NodeType`: `Controller`, `Login` or `Compute`; `None`
    /// when the API gives no `SlurmConfig` (older clusters).
    pub node_type: Option<String>,
    /// `SlurmConfig.PartitionNames`.
    pub partitions: Vec<String>,
    /// `SoftwareUpdateStatus` (`Pending`, `InProgress`, ...).
    pub software_update: Option<String>,
    /// Operations in flight by name (`ActiveOperations`: `Scaling`).
    pub operations: Vec<(String, i32)>,
    /// `AutoPatchConfig`: its `PatchingStrategy`, and
    /// `CurrentPatchSchedule.NextPatchDate`.
    pub patch_strategy: Option<String>,
    pub next_patch: Option<DateTime<Utc>>,
}

impl GroupSummary {
    /// Never a target: a `Controller` or `Login` group.
    pub fn is_protected(&self) -> bool {
        matches!(self.node_type.as_deref(), Some("Controller" | "Login"))
    }
}

impl ClusterSummary {
    /// The cluster's id: the last part of its ARN (`.../cluster/ID`).
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or_default()
    }

    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }

    pub fn group(&self, name: &str) -> Option<&GroupSummary> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// Per-node outcome of a Batch call: the id, and whether it was accepted.
pub type BatchOutcome = Vec<(String, Result<(), BatchRefusal>)>;

/// An instance a Batch call refused, as the API said it (its
/// `FailedRequests` entry: `ErrorCode`, `Message`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BatchRefusal {
    pub code: String,
    pub message: String,
}

/// The accepted ids, then the refused ones as `ErrorCode: Message`.
fn batch_outcome<'a>(
    successful: &[String],
    refused: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
) -> BatchOutcome {
    let mut outcome: BatchOutcome = successful.iter().map(|id| (id.clone(), Ok(()))).collect();
    outcome.extend(refused.map(|(id, code, message)| {
        let refusal = BatchRefusal {
            code: code.to_owned(),
            message: message.to_owned(),
        };
        (id.to_owned(), Err(refusal))
    }));
    outcome
}

#[derive(Clone)]
pub struct SageMakerApi {
    client: Client,
    /// CloudWatch Logs, same configuration (see [`SageMakerApi::logs`]).
    logs: aws_sdk_cloudwatchlogs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    pub cluster: String,
    /// Instance id → Slurm node name, for instances whose listing lacks a
    /// host name (an instance keeps its address for its life).
    names: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    /// Requests sent (each page of a listing counts), for the API budget
    /// a run spends.
    calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Slurm node name → the instance it was last seen on (from listings
    /// and from `targets`), so that [`SageMakerApi::named`] can ask about
    /// a node directly instead of listing the cluster.
    instances: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

/// An AWS SDK error as `(code, words)`: the service's code and message
/// when it answered (the SDK's own words around them are a debug dump of
/// the response), else each cause in the chain said once (no credentials,
/// the endpoint unreachable). Any AWS SDK client's errors (SageMaker,
/// CloudWatch Logs).
pub fn sdk_error<E>(err: &E) -> (Option<String>, String)
where
    E: std::error::Error + aws_sdk_sagemaker::error::ProvideErrorMetadata,
{
    let code = err.code().map(str::to_owned);
    if let (Some(code), Some(message)) = (&code, err.message()) {
        return (Some(code.clone()), format!("{code}: {message}"));
    }
    let mut said: Vec<String> = Vec::new();
    for cause in std::iter::successors(Some(err as &dyn std::error::Error), |e| e.source()) {
        let text = cause.to_string();
        if !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
    }
    (code, said.join(": "))
}

/// A timestamp from the SDK, `None` for the epoch: the SDK fills a member
/// the model marks required but the answer omits with its zero value
/// (smithy's client-side error correction), so an absent `LaunchTime`
/// would otherwise read as 1970-01-01.
fn chrono_of(at: &AwsDateTime) -> Option<DateTime<Utc>> {
    if at.secs() == 0 && at.subsec_nanos() == 0 {
        return None;
    }
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
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            cluster: settings.cluster_name.clone(),
            names: Default::default(),
            calls: Default::default(),
            instances: Default::default(),
        }
    }

    /// The client, counting the request about to be sent.
    fn call(&self) -> &Client {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.client
    }

    /// Requests sent so far (listing pages counted one by one).
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn error<E>(&self, operation: &'static str, err: E) -> ApiError
    where
        E: std::error::Error + aws_sdk_sagemaker::error::ProvideErrorMetadata,
    {
        let (code, detail) = sdk_error(&err);
        ApiError {
            operation,
            cluster: self.cluster.clone(),
            detail,
            code,
        }
    }

    /// A client of CloudWatch Logs with this client's credentials, region
    /// and endpoint (the lab serves both), for HMA's record
    /// (`cluster/hma.rs`).
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        self.logs.clone()
    }

    /// A client of CloudWatch (alarms) with this client's credentials,
    /// region and endpoint, for stop conditions (`cluster/alarms.rs`).
    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        self.cloudwatch.clone()
    }

    /// Every node the API lists that maps to a Slurm node name.
    pub async fn nodes(&self) -> Result<Vec<ApiNode>, ApiError> {
        self.listing().await.map(|(nodes, _)| nodes)
    }

    /// Every instance, through all pages: those mapped to a Slurm node
    /// name, and those that could not be (see [`ApiNode::node`]).
    /// The reads a run makes besides `DescribeCluster`, each tried once and
    /// cheaply: `ListClusterNodes` (one result) and `DescribeClusterNode`
    /// (that node), so a missing permission is said before a run acts.
    /// Errors: the first refused (its `code` says `AccessDeniedException`).
    pub async fn try_reads(&self) -> Result<(), ApiError> {
        let page = self
            .call()
            .list_cluster_nodes()
            .cluster_name(&self.cluster)
            .max_results(1)
            .send()
            .await
            .map_err(|e| self.error("ListClusterNodes", e))?;
        let first = page
            .cluster_node_summaries()
            .first()
            .and_then(|n| n.instance_id());
        if let Some(id) = first {
            self.describe_details(id).await?;
        }
        Ok(())
    }

    pub async fn listing(&self) -> Result<(Vec<ApiNode>, Vec<Unmapped>), ApiError> {
        let pages: Vec<_> = self
            .call()
            .list_cluster_nodes()
            .cluster_name(&self.cluster)
            .max_results(100)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| self.error("ListClusterNodes", e))?;
        // The paginator sent one request per page.
        self.calls.fetch_add(
            pages.len().saturating_sub(1) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let summaries: Vec<_> = pages
            .iter()
            .flat_map(|page| page.cluster_node_summaries())
            .collect();
        let (nodes, unmapped) = self.map_summaries(&summaries).await;
        self.remember(&nodes);
        Ok((nodes, unmapped))
    }

    /// Notes which instance each node is on now.
    fn remember(&self, nodes: &[ApiNode]) {
        let mut instances = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        for node in nodes {
            instances.insert(node.node.clone(), node.instance_id.clone());
        }
    }

    /// The instances of the nodes `names` as the API shows them now, asked
    /// about directly when it can: each node's instance is remembered from
    /// the last listing, and `DescribeClusterNode` asked about it (see
    /// [`SageMakerApi::targets`]: one request per node, on a cluster of any
    /// size). A node not remembered yet, or whose instance is gone without
    /// a successor among the newest, costs one full listing, which
    /// remembers them all. A node on no instance is left out.
    pub async fn named(&self, names: &[String]) -> Result<Vec<ApiNode>, ApiError> {
        let known: Vec<(String, String)> = {
            let instances = self.instances.lock().unwrap_or_else(|p| p.into_inner());
            names
                .iter()
                .filter_map(|n| instances.get(n).map(|id| (n.clone(), id.clone())))
                .collect()
        };
        if known.len() == names.len() {
            let found = self.targets(&known).await?;
            if found.len() == known.len() {
                self.remember(&found);
                return Ok(found);
            }
        }
        let listed = self.nodes().await?;
        Ok(listed
            .into_iter()
            .filter(|n| names.contains(&n.node))
            .collect())
    }

    /// Each watched target's instance, asked about directly, not by
    /// listing the cluster: `DescribeClusterNode` per `(node, instance
    /// id)`. An instance the API no longer knows (replaced) or one going
    /// away is looked for among the newest instances (one `ListClusterNodes`
    /// page, newest first), where its successor appears. Calls per poll:
    /// one per target, plus one when an instance is gone; on a 4,096-node
    /// cluster, listing would be 41 pages. A target found on no instance is
    /// left out (the caller journals it as not listed).
    pub async fn targets(&self, asked: &[(String, String)]) -> Result<Vec<ApiNode>, ApiError> {
        let mut found = Vec::new();
        let mut gone: Vec<(&String, &String, Option<ApiNode>)> = Vec::new();
        for (node, id) in asked {
            match self.describe(id).await? {
                Some(n) if !matches!(n.status.as_str(), "ShuttingDown" | "NotFound") => {
                    found.push(ApiNode {
                        node: node.clone(),
                        ..n
                    });
                }
                other => gone.push((node, id, other)),
            }
        }
        if gone.is_empty() {
            return Ok(found);
        }
        let page = self
            .call()
            .list_cluster_nodes()
            .cluster_name(&self.cluster)
            .sort_by(aws_sdk_sagemaker::types::ClusterSortBy::CreationTime)
            .sort_order(aws_sdk_sagemaker::types::SortOrder::Descending)
            .max_results(100)
            .send()
            .await
            .map_err(|e| self.error("ListClusterNodes", e))?;
        let (newest, _) = self
            .map_summaries(&page.cluster_node_summaries().iter().collect::<Vec<_>>())
            .await;
        for (node, id, old) in gone {
            let successor = newest
                .iter()
                .find(|n| &n.node == node && &n.instance_id != id)
                .cloned();
            match (successor, old) {
                (Some(n), _) => found.push(n),
                (None, Some(old)) => found.push(ApiNode {
                    node: node.clone(),
                    ..old
                }),
                (None, None) => {}
            }
        }
        Ok(found)
    }

    /// `DescribeClusterNode`'s details of one instance; `None` when the API
    /// does not know it (ResourceNotFound, or no NodeDetails).
    async fn describe_details(
        &self,
        instance_id: &str,
    ) -> Result<Option<aws_sdk_sagemaker::types::ClusterNodeDetails>, ApiError> {
        match self
            .call()
            .describe_cluster_node()
            .cluster_name(&self.cluster)
            .node_id(instance_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.node_details().cloned()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found()) =>
            {
                Ok(None)
            }
            Err(err) => Err(self.error("DescribeClusterNode", err)),
        }
    }

    /// One instance by id, its node name left empty for the caller; `None`
    /// when the API does not know it.
    async fn describe(&self, instance_id: &str) -> Result<Option<ApiNode>, ApiError> {
        let Some(details) = self.describe_details(instance_id).await? else {
            return Ok(None);
        };
        Ok(Some(ApiNode {
            node: String::new(),
            instance_id: details.instance_id().unwrap_or(instance_id).to_owned(),
            group: details.instance_group_name().unwrap_or_default().to_owned(),
            status: details
                .instance_status()
                .and_then(|s| s.status())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            launch_time: details.launch_time().and_then(chrono_of),
            status_message: details
                .instance_status()
                .and_then(|s| s.message())
                .map(str::to_owned),
        }))
    }

    /// Listing entries mapped to Slurm node names (and those that could
    /// not be).
    async fn map_summaries(
        &self,
        summaries: &[&aws_sdk_sagemaker::types::ClusterNodeSummary],
    ) -> (Vec<ApiNode>, Vec<Unmapped>) {
        let mut nodes = Vec::new();
        let mut unmapped = Vec::new();
        for summary in summaries {
            let instance_id = summary.instance_id().unwrap_or_default().to_owned();
            let group = summary.instance_group_name().unwrap_or_default().to_owned();
            let status = summary
                .instance_status()
                .and_then(|s| s.status())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            let listed = summary
                .private_dns_hostname()
                .and_then(node_name_of_host)
                .map(str::to_owned);
            let node = match listed {
                Some(name) => Ok(name),
                None => self.map_instance(&instance_id).await,
            };
            match node {
                Ok(node) => nodes.push(ApiNode {
                    node,
                    instance_id,
                    group,
                    status,
                    launch_time: summary.launch_time().and_then(chrono_of),
                    status_message: summary
                        .instance_status()
                        .and_then(|s| s.message())
                        .map(str::to_owned),
                }),
                Err(why) => unmapped.push(Unmapped {
                    instance_id,
                    group,
                    status,
                    why: why.to_string(),
                }),
            }
        }
        (nodes, unmapped)
    }

    /// The Slurm node name of an instance whose listing has no host name:
    /// `DescribeClusterNode`'s host name or primary address, cached.
    async fn map_instance(&self, instance_id: &str) -> Result<String, Unmappable> {
        if instance_id.is_empty() {
            return Err(Unmappable::NoInstanceId);
        }
        if let Some(name) = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance_id)
        {
            return Ok(name.clone());
        }
        let details = self
            .describe_details(instance_id)
            .await?
            .ok_or(Unmappable::Unknown)?;
        let name = details
            .private_dns_hostname()
            .and_then(node_name_of_host)
            .map(str::to_owned)
            .or_else(|| details.private_primary_ip().and_then(node_name_of_address))
            .ok_or(Unmappable::NoName)?;
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(instance_id.to_owned(), name.clone());
        Ok(name)
    }

    /// `StartClusterHealthCheck`: `checks` (`InstanceStress`, ...) on the
    /// instances `groups` lists (`(instance group, instance ids)`): one
    /// configuration per group, as the API takes them. Errors: the API's
    /// refusal (`ResourceNotFound`, `ValidationException`, ...).
    pub async fn start_health_check(
        &self,
        groups: &[(String, Vec<String>)],
        checks: &[String],
    ) -> Result<(), ApiError> {
        use aws_sdk_sagemaker::types::{
            DeepHealthCheckType, InstanceGroupHealthCheckConfiguration,
        };
        let mut request = self
            .call()
            .start_cluster_health_check()
            .cluster_name(&self.cluster);
        for (group, ids) in groups {
            let config = InstanceGroupHealthCheckConfiguration::builder()
                .instance_group_name(group)
                .set_instance_ids(Some(ids.clone()))
                .set_deep_health_checks(Some(
                    checks
                        .iter()
                        .map(|c| DeepHealthCheckType::from(c.as_str()))
                        .collect(),
                ))
                .build()
                .map_err(|e| ApiError {
                    operation: "StartClusterHealthCheck",
                    cluster: self.cluster.clone(),
                    detail: e.to_string(),
                    code: None,
                })?;
            request = request.deep_health_check_configurations(config);
        }
        request
            .send()
            .await
            .map_err(|e| self.error("StartClusterHealthCheck", e))?;
        Ok(())
    }

    /// The cluster's events on instances after `after`, oldest first,
    /// every page (`ListClusterEvents`, on clusters that provision
    /// continuously; others refuse it).
    pub async fn instance_events(
        &self,
        after: DateTime<Utc>,
    ) -> Result<Vec<ClusterEvent>, ApiError> {
        use aws_sdk_sagemaker::types::{ClusterEventResourceType, SortOrder};
        let pages: Vec<_> = self
            .call()
            .list_cluster_events()
            .cluster_name(&self.cluster)
            .event_time_after(AwsDateTime::from_millis(after.timestamp_millis()))
            .resource_type(ClusterEventResourceType::Instance)
            .sort_order(SortOrder::Ascending)
            .max_results(100)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| self.error("ListClusterEvents", e))?;
        self.calls.fetch_add(
            pages.len().saturating_sub(1) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(pages
            .iter()
            .flat_map(|page| page.events())
            .map(|e| ClusterEvent {
                id: e.event_id().unwrap_or_default().to_owned(),
                time: e.event_time().and_then(chrono_of),
                group: e.instance_group_name().unwrap_or_default().to_owned(),
                instance_id: e.instance_id().unwrap_or_default().to_owned(),
                description: e.description().unwrap_or_default().to_owned(),
                level: e
                    .event_level()
                    .map(|l| l.as_str().to_owned())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// What `DescribeCluster` says of the cluster, for `hpchaos init`: its ARN
    /// (the cluster id, as SSM targets name it, is its last part), its
    /// instance groups' names, its `NodeRecovery`.
    pub async fn summary(&self) -> Result<ClusterSummary, ApiError> {
        let cluster = self
            .call()
            .describe_cluster()
            .cluster_name(&self.cluster)
            .send()
            .await
            .map_err(|e| self.error("DescribeCluster", e))?;
        Ok(ClusterSummary {
            arn: cluster.cluster_arn().unwrap_or_default().to_owned(),
            groups: cluster
                .instance_groups()
                .iter()
                .filter_map(|g| {
                    let name = g.instance_group_name()?.to_owned();
                    let slurm = g.slurm_config();
                    let patch = g.auto_patch_config();
                    let mut operations: Vec<(String, i32)> = g
                        .active_operations()
                        .map(|ops| {
                            ops.iter()
                                .map(|(k, v)| (k.as_str().to_owned(), *v))
                                .collect()
                        })
                        .unwrap_or_default();
                    operations.sort();
                    Some(GroupSummary {
                        name,
                        node_type: slurm.map(|s| s.node_type().as_str().to_owned()),
                        partitions: slurm
                            .map(|s| s.partition_names().to_vec())
                            .unwrap_or_default(),
                        software_update: g.software_update_status().map(|s| s.as_str().to_owned()),
                        operations,
                        patch_strategy: patch
                            .and_then(|p| p.patching_strategy())
                            .map(|s| s.as_str().to_owned()),
                        next_patch: patch
                            .and_then(|p| p.current_patch_schedule())
                            .and_then(|s| s.next_patch_date())
                            .and_then(chrono_of),
                    })
                })
                .collect(),
            node_recovery: cluster
                .node_recovery()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
        })
    }

    /// The cluster's `NodeRecovery`: `Automatic` or `None`.
    pub async fn node_recovery(&self) -> Result<String, ApiError> {
        Ok(self.summary().await?.node_recovery)
    }

    pub async fn reboot(&self, instance_ids: &[String]) -> Result<BatchOutcome, ApiError> {
        let out = self
            .call()
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
            .call()
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

/// `ip-10-1-0-11.us-west-2.compute.internal` → `ip-10-1-0-11`; `None`
/// for an empty name.
pub fn node_name_of_host(host: &str) -> Option<&str> {
    host.split('.').next().filter(|n| !n.trim().is_empty())
}

/// `10.1.0.11` → `ip-10-1-0-11`, HyperPod's naming; `None` for anything
/// that is not an IPv4 address.
pub fn node_name_of_address(address: &str) -> Option<String> {
    let ip: std::net::Ipv4Addr = address.trim().parse().ok()?;
    let [a, b, c, d] = ip.octets();
    Some(format!("ip-{a}-{b}-{c}-{d}"))
}
