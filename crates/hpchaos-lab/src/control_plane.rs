//! The lab's SageMaker HyperPod API: awsJson1_1 over HTTP on loopback, as
//! `aws-sdk-sagemaker` speaks it (`POST /`, `X-Amz-Target:
//! SageMaker.<Operation>`, errors as HTTP 400 `{"__type", "Message"}`,
//! epoch-second timestamps). Reads the shared cluster state; reboot and
//! replace requests go to the recovery engine. Requests over the rate
//! limit, when one is set, are throttled. Requests and answers follow AWS's
//! service model ([`super::api_model`], botocore's): a request that breaks
//! it gets `ValidationException` in AWS's words, an operation outside it
//! `UnknownOperationException`, and the unit tests check every answer.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;

use super::changes::Changes;
#[cfg(test)]
use super::changes::DEEP_HEALTH_CHECK;
use super::config::Action;
use super::ground_truth::GroundTruth;
use super::http::{AMZ_JSON, Request, Response, serve};
use super::state::{CONTROLLER_GROUP, ClusterState, Instance};
use super::throttle::Throttle;

/// A reboot or replace the API accepted, for the recovery engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    pub node: String,
    pub action: Action,
}

#[derive(Clone)]
pub struct ControlPlane {
    pub state: Arc<Mutex<ClusterState>>,
    pub requests: UnboundedSender<RecoveryRequest>,
    pub truth: Arc<GroundTruth>,
    pub throttle: Arc<Throttle>,
    /// The operations the caller's IAM policy does not allow, as
    /// `hpchaos lab deny` set them (read on each request).
    pub denied: Arc<std::path::PathBuf>,
    /// The cluster's own changes `hpchaos lab change` set (read on each
    /// request).
    pub changes: Arc<std::path::PathBuf>,
    /// The keys the API accepts (an AWS credentials file, read on each
    /// request; `auth.rs`).
    pub keys: Arc<std::path::PathBuf>,
    /// The lab's CloudWatch Logs (`logs.rs`).
    pub logs: Arc<std::path::PathBuf>,
    /// The lab's CloudWatch alarms (`alarms.rs`).
    pub alarms: Arc<std::path::PathBuf>,
    /// How long a deep health check holds a node.
    pub check_for: chrono::TimeDelta,
    /// Where the state is kept for `lab status` (a change the API makes,
    /// such as NodeRecovery, is saved there); `None` in unit tests.
    pub state_file: Option<Arc<std::path::PathBuf>>,
}

/// Accepts connections until the task is dropped.
pub async fn run(listener: TcpListener, plane: ControlPlane) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let plane = plane.clone();
        tokio::spawn(async move { serve(stream, |request| plane.handle(request)).await });
    }
}

/// What differs between the services the lab serves, for [`ControlPlane::admit`].
struct Service {
    /// IAM's prefix of its actions.
    iam: &'static str,
    /// The resource IAM names in a refusal.
    resource: &'static str,
    /// How an operation is counted in the ground truth (`logs:` before
    /// CloudWatch Logs', nothing before SageMaker's).
    counted: &'static str,
    model: fn() -> Option<&'static super::api_model::Model>,
    /// The error a request that breaks the model gets.
    invalid: &'static str,
}

const SAGEMAKER: Service = Service {
    iam: "sagemaker",
    resource: "arn:aws:sagemaker:us-west-2:123456789012:cluster/*",
    counted: "",
    model: super::api_model::model,
    invalid: "ValidationException",
};

const LOGS: Service = Service {
    iam: "logs",
    resource: "arn:aws:logs:us-west-2:123456789012:log-group:/aws/sagemaker/Clusters/*",
    counted: "logs:",
    model: super::api_model::logs_model,
    invalid: "InvalidParameterException",
};

const CLOUDWATCH: Service = Service {
    iam: "cloudwatch",
    resource: "arn:aws:cloudwatch:us-west-2:123456789012:alarm:*",
    counted: "cloudwatch:",
    // Answered from `alarms.rs` (CBOR), not checked against a JSON model.
    model: super::api_model::model,
    invalid: "ValidationError",
};

/// Whether `operation` is listed in the deny knob at `path`, by its name
/// or as IAM names it (`sagemaker:ListClusterNodes`, `logs:FilterLogEvents`).
fn denied(path: &std::path::Path, operation: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines().any(|l| {
            let l = l.trim();
            l.rsplit(':').next() == Some(operation)
        })
    })
}

fn error(kind: &str, message: impl Into<String>) -> Response {
    Response {
        status: 400,
        body: json!({"__type": kind, "Message": message.into()})
            .to_string()
            .into(),
        content_type: AMZ_JSON,
    }
}

fn ok(body: Value) -> Response {
    Response {
        status: 200,
        body: body.to_string().into(),
        content_type: AMZ_JSON,
    }
}

fn epoch(at: DateTime<Utc>) -> Value {
    json!(at.timestamp_millis() as f64 / 1000.0)
}

fn summary(instance: &Instance, omit_hostname: bool) -> Value {
    // `Message` is optional: absent when there is nothing to say.
    let mut status = json!({"Status": instance.status});
    if !instance.message.is_empty() {
        status["Message"] = json!(instance.message);
    }
    let mut summary = json!({
        "InstanceGroupName": instance.group,
        "InstanceId": instance.instance_id,
        "InstanceType": instance.instance_type,
        "LaunchTime": epoch(instance.launch_time),
        "InstanceStatus": status,
    });
    if !omit_hostname {
        summary["PrivateDnsHostname"] = json!(format!("{}.lab.internal", instance.node));
    }
    summary
}

impl ControlPlane {
    fn handle(&self, request: Request) -> Response {
        if request.method != "POST" {
            return error("UnknownOperationException", "only POST / is served");
        }
        // Signed with the lab's keys, as AWS checks a signature.
        if let Err(refused) =
            super::auth::Keys::from_credentials_file(&self.keys).check(&request, Utc::now())
        {
            return Response {
                status: refused.status,
                body: json!({"__type": refused.kind, "Message": refused.message})
                    .to_string()
                    .into(),
                content_type: AMZ_JSON,
            };
        }
        // CloudWatch (alarms) speaks Smithy RPC v2 CBOR: the operation is
        // in the path.
        if let Some(operation) = request.path.strip_prefix(super::alarms::PATH_PREFIX) {
            return self.cloudwatch(operation, &request.body);
        }
        let target = request
            .headers
            .get("x-amz-target")
            .cloned()
            .unwrap_or_default();
        if let Some(operation) = target.strip_prefix("Logs_20140328.") {
            return self.logs(operation, &request.body);
        }
        let Some(operation) = target.strip_prefix("SageMaker.") else {
            return error(
                "UnknownOperationException",
                format!("unknown target `{target}`"),
            );
        };
        let input = match self.admit(&SAGEMAKER, operation, &request.body) {
            Ok(input) => input,
            Err(refused) => return refused,
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let name = input["ClusterName"].as_str().unwrap_or_default();
        if name != state.cluster_name && name != state.cluster_arn {
            return error(
                "ResourceNotFound",
                format!("Cluster with name or arn '{name}' not found."),
            );
        }
        // The cluster's own changes, as `lab change` set them: shown, never
        // kept in the state.
        let changes = Changes::load(&self.changes);
        let shown = match changes.is_empty() {
            true => None,
            false => Some(changes.applied(&state, Utc::now())),
        };
        let view = shown.as_ref().unwrap_or(&state);
        match operation {
            "DescribeCluster" => ok(describe_cluster(view, &changes)),
            "ListClusterNodes" => list_cluster_nodes(view, &input),
            "DescribeClusterNode" => describe_cluster_node(view, &input),
            "BatchRebootClusterNodes" => self.batch(&state, &input, Action::Reboot),
            "BatchReplaceClusterNodes" => self.batch(&state, &input, Action::Replace),
            "StartClusterHealthCheck" => self.start_health_check(&state, &input),
            "ListClusterEvents" => list_cluster_events(view, &input),
            "DescribeClusterEvent" => describe_cluster_event(view, &input),
            "UpdateCluster" => {
                // The model allows only Automatic and None.
                if let Some(recovery) = input["NodeRecovery"].as_str() {
                    state.node_recovery = recovery.to_owned();
                    self.truth.record("node_recovery_set", None, recovery);
                    if let Some(file) = &self.state_file
                        && let Err(err) = state.save(file)
                    {
                        eprintln!("lab: cannot save the state after UpdateCluster: {err}");
                    }
                }
                ok(json!({"ClusterArn": state.cluster_arn}))
            }
            other => error(
                "UnknownOperationException",
                format!("operation {other} is not served by the lab"),
            ),
        }
    }

    /// CloudWatch Logs' reads of HMA's record (`logs.rs`): counted,
    /// denied, throttled and checked against botocore's model as the
    /// SageMaker operations are.
    fn logs(&self, operation: &str, body: &[u8]) -> Response {
        let input = match self.admit(&LOGS, operation, body) {
            Ok(input) => input,
            Err(refused) => return refused,
        };
        let group = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            super::logs::log_group(&state.cluster_name, &state.cluster_arn)
        };
        match super::logs::answer(operation, &input, &self.logs, &group) {
            Ok(answer) => ok(answer),
            Err((kind, message)) => error(kind, message),
        }
    }

    /// CloudWatch's alarms (`alarms.rs`): counted, denied and throttled as
    /// the other services' operations are; answered in CBOR.
    fn cloudwatch(&self, operation: &str, body: &[u8]) -> Response {
        let cbor = |status: u16, body: Vec<u8>| Response {
            status,
            body,
            content_type: super::http::CBOR,
        };
        if let Err(refused) = self.gate(&CLOUDWATCH, operation) {
            // The gate's refusals are JSON; CloudWatch's are CBOR.
            let said: Value = serde_json::from_slice(&refused.body).unwrap_or_default();
            return cbor(
                refused.status,
                super::alarms::error_body(
                    said["__type"].as_str().unwrap_or("InternalFailure"),
                    said["Message"].as_str().unwrap_or_default(),
                ),
            );
        }
        let alarms = super::alarms::load(&self.alarms);
        match super::alarms::answer(operation, body, &alarms) {
            Ok(answer) => cbor(200, answer),
            Err((kind, message)) => cbor(400, super::alarms::error_body(kind, &message)),
        }
    }

    /// Counts the request, and refuses it as IAM refuses a denied action
    /// or as AWS throttles: what every request goes through first.
    fn gate(&self, service: &Service, operation: &str) -> Result<(), Response> {
        self.truth
            .record("api_call", None, format!("{}{operation}", service.counted));
        if denied(&self.denied, operation) {
            // As IAM refuses it, with its own words.
            return Err(error(
                "AccessDeniedException",
                format!(
                    "User: arn:aws:sts::123456789012:assumed-role/hpchaos-lab/hpchaos is not authorized to perform: {0}:{operation} on resource: {1} because no identity-based policy allows the {0}:{operation} action",
                    service.iam, service.resource
                ),
            ));
        }
        if !self.throttle.admit() {
            self.truth.record("api_throttled", None, operation);
            return Err(error("ThrottlingException", "Rate exceeded"));
        }
        Ok(())
    }

    /// What every request goes through before its answer: counted (as
    /// AWS's CloudTrail would count it: the side a harness's own count of
    /// its calls is checked by), refused as IAM refuses a denied action,
    /// throttled over the rate limit, and its body checked against the
    /// service's model. Returns the body as JSON, or the refusal.
    fn admit(&self, service: &Service, operation: &str, body: &[u8]) -> Result<Value, Response> {
        self.gate(service, operation)?;
        let Ok(input) = serde_json::from_slice::<Value>(body) else {
            return Err(error(
                "SerializationException",
                "the request body is not JSON",
            ));
        };
        let Some(model) = (service.model)() else {
            return Err(error(
                "InternalFailure",
                "the lab's service model does not load",
            ));
        };
        let Some(spec) = model.operation(operation) else {
            return Err(error(
                "UnknownOperationException",
                format!("operation {operation} is not served by the lab"),
            ));
        };
        let problems = model.check(&spec.input, &input);
        if !problems.is_empty() {
            return Err(error(
                service.invalid,
                super::api_model::validation_message(&problems),
            ));
        }
        Ok(input)
    }

    /// `StartClusterHealthCheck`: each configuration's instances (all of
    /// its group when it names none) go under a deep health check for
    /// `check_for`: the API shows them `DeepHealthCheckInProgress` and the
    /// daemon holds them in a Slurm maintenance reservation meanwhile
    /// (`changes.rs`), as HyperPod does on Slurm. An instance not in the
    /// group, or not `Running`, refuses the whole request.
    fn start_health_check(&self, state: &ClusterState, input: &Value) -> Response {
        let mut nodes: Vec<String> = Vec::new();
        for config in input["DeepHealthCheckConfigurations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let group = config["InstanceGroupName"].as_str().unwrap_or_default();
            let in_group: Vec<&super::state::Instance> = state
                .instances
                .iter()
                .filter(|i| i.group == group)
                .collect();
            if in_group.is_empty() {
                return error(
                    "ValidationException",
                    format!("Instance group {group} does not exist in the cluster."),
                );
            }
            let asked: Vec<&str> = match config["InstanceIds"].as_array() {
                Some(ids) => ids.iter().filter_map(Value::as_str).collect(),
                None => in_group.iter().map(|i| i.instance_id.as_str()).collect(),
            };
            for id in asked {
                let Some(instance) = in_group.iter().find(|i| i.instance_id == id) else {
                    return error(
                        "ValidationException",
                        format!("Instance {id} is not in instance group {group}."),
                    );
                };
                if instance.status != "Running" {
                    return error(
                        "ValidationException",
                        format!(
                            "Instance {id} is {}: deep health checks run on Running instances only.",
                            instance.status
                        ),
                    );
                }
                nodes.push(instance.node.clone());
            }
        }
        let mut changes = Changes::load(&self.changes);
        let now = Utc::now();
        if let Some(busy) = nodes.iter().find(|n| {
            changes
                .deep_health_checks
                .get(*n)
                .is_some_and(|until| now < *until)
        }) {
            return error(
                "ValidationException",
                format!("A deep health check is already in progress on {busy}."),
            );
        }
        for node in &nodes {
            changes
                .deep_health_checks
                .insert(node.clone(), now + self.check_for);
            self.truth.record(
                "health_check_started",
                Some(node),
                "StartClusterHealthCheck",
            );
        }
        if let Err(err) = changes.save(&self.changes) {
            return error("InternalFailure", format!("cannot record the check: {err}"));
        }
        ok(json!({"ClusterArn": state.cluster_arn}))
    }

    fn batch(&self, state: &ClusterState, input: &Value, action: Action) -> Response {
        let ids: Vec<&str> = input["NodeIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        // The model bounds the list (1 to 25 for NodeIds); NodeLogicalIds
        // alone is a form the lab does not serve, and says so.
        if ids.is_empty() {
            return error(
                "ValidationException",
                if input["NodeLogicalIds"].is_array() {
                    "NodeLogicalIds is not served by the lab: give NodeIds"
                } else {
                    "Either NodeIds or NodeLogicalIds must be given"
                },
            );
        }
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        for id in ids {
            match state.by_id(id) {
                None => failed.push(json!({"NodeId": id, "ErrorCode": "InstanceIdNotFound", "Message": format!("Instance {id} not found in the cluster.")})),
                Some(instance) if instance.group == CONTROLLER_GROUP && action == Action::Replace => failed.push(
                    json!({"NodeId": id, "ErrorCode": "InvalidInstanceStatus", "Message": "Controller nodes cannot be replaced."}),
                ),
                Some(instance) if instance.status != "Running" => failed.push(json!({
                    "NodeId": id, "ErrorCode": "InvalidInstanceStatus",
                    "Message": format!("Instance {id} is {}, not Running.", instance.status)
                })),
                Some(instance) => {
                    self.truth.record("api_request", Some(&instance.node), format!("{action:?} {id}").to_lowercase());
                    let _ = self.requests.send(RecoveryRequest { node: instance.node.clone(), action });
                    successful.push(json!(id));
                }
            }
        }
        // `Successful` is a list of at least one id: absent when none.
        let mut body = json!({"Failed": failed});
        if !successful.is_empty() {
            body["Successful"] = json!(successful);
        }
        ok(body)
    }
}

fn describe_cluster(state: &ClusterState, changes: &Changes) -> Value {
    let groups: Vec<Value> = state
        .groups()
        .into_iter()
        .map(|group| {
            let members: Vec<&Instance> = state.instances.iter().filter(|i| i.group == group).collect();
            let running = members.iter().filter(|i| i.status == "Running").count();
            let (node_type, partition) = state.slurm_config(group);
            let mut slurm = json!({"NodeType": node_type});
            if let Some(partition) = partition {
                slurm["PartitionNames"] = json!([partition]);
            }
            let mut details = json!({
                "CurrentCount": running,
                "TargetCount": members.len(),
                "InstanceGroupName": group,
                "InstanceType": members.first().map(|i| i.instance_type.as_str()).unwrap_or("ml.m5.xlarge"),
                "LifeCycleConfig": {"SourceS3Uri": "s3://hpchaos-lab/lifecycle-scripts/", "OnCreate": "on_create.sh"},
                "ExecutionRole": "arn:aws:iam::123456789012:role/hpchaos-lab",
                "ThreadsPerCore": 1,
                "Status": "InService",
                "SlurmConfig": slurm,
            });
            if node_type == "Compute" {
                changes.group_members(&mut details);
            }
            details
        })
        .collect();
    json!({
        "ClusterArn": state.cluster_arn,
        "ClusterName": state.cluster_name,
        "ClusterStatus": "InService",
        "CreationTime": epoch(state.created),
        "InstanceGroups": groups,
        "NodeRecovery": state.node_recovery,
        "NodeProvisioningMode": "Continuous",
    })
}

/// One event as `ClusterEventSummary`.
fn event_summary(state: &ClusterState, event: &super::state::ClusterEvent) -> Value {
    json!({
        "EventId": event.id,
        "ClusterArn": state.cluster_arn,
        "ClusterName": state.cluster_name,
        "InstanceGroupName": event.group,
        "InstanceId": event.instance_id,
        "ResourceType": "Instance",
        "EventTime": epoch(event.time),
        "Description": event.description,
        "EventLevel": event.level,
    })
}

/// `ListClusterEvents`: the events that match, in time order (newest
/// first with `SortOrder: Descending`), a page of `MaxResults` (10 by
/// default) with a `NextToken` while more follow.
fn list_cluster_events(state: &ClusterState, input: &Value) -> Response {
    let seconds = |key: &str| input[key].as_f64();
    let matching: Vec<&super::state::ClusterEvent> = {
        let mut events: Vec<&super::state::ClusterEvent> = state
            .events
            .iter()
            .filter(|e| {
                input["InstanceGroupName"]
                    .as_str()
                    .is_none_or(|g| g == e.group)
                    && input["NodeId"]
                        .as_str()
                        .is_none_or(|id| id == e.instance_id)
                    && input["ResourceType"]
                        .as_str()
                        .is_none_or(|r| r == "Instance")
                    && seconds("EventTimeAfter")
                        .is_none_or(|t| e.time.timestamp_millis() as f64 / 1000.0 > t)
                    && seconds("EventTimeBefore")
                        .is_none_or(|t| (e.time.timestamp_millis() as f64 / 1000.0) < t)
            })
            .collect();
        if input["SortOrder"].as_str() == Some("Descending") {
            events.reverse();
        }
        events
    };
    let max = input["MaxResults"].as_u64().unwrap_or(10) as usize;
    let from: usize = input["NextToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = matching
        .iter()
        .skip(from)
        .take(max)
        .map(|e| event_summary(state, e))
        .collect();
    let mut out = json!({"Events": page});
    if from + max < matching.len() {
        out["NextToken"] = json!((from + max).to_string());
    }
    ok(out)
}

/// `DescribeClusterEvent`: one event by its id.
fn describe_cluster_event(state: &ClusterState, input: &Value) -> Response {
    let id = input["EventId"].as_str().unwrap_or_default();
    match state.events.iter().find(|e| e.id == id) {
        Some(event) => ok(json!({"EventDetails": event_summary(state, event)})),
        None => error(
            "ResourceNotFound",
            format!("Event with id '{id}' not found."),
        ),
    }
}

fn list_cluster_nodes(state: &ClusterState, input: &Value) -> Response {
    // The model bounds MaxResults to 1..=100.
    let max = input["MaxResults"].as_u64().unwrap_or(100);
    let group_filter = input["InstanceGroupNameContains"]
        .as_str()
        .unwrap_or_default();
    let mut nodes: Vec<&Instance> = state
        .instances
        .iter()
        .filter(|i| i.group.contains(group_filter))
        .collect();
    if input["SortBy"].as_str() == Some("NAME") {
        nodes.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    } else {
        nodes.sort_by_key(|i| i.launch_time);
    }
    if input["SortOrder"].as_str() == Some("Descending") {
        nodes.reverse();
    }
    let start = match input["NextToken"].as_str() {
        None => 0,
        Some(token) => match token
            .strip_prefix("lab-page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(offset) if offset <= nodes.len() => offset,
            _ => return error("ValidationException", "NextToken is not valid"),
        },
    };
    let end = (start + max as usize).min(nodes.len());
    let page: Vec<Value> = nodes[start..end]
        .iter()
        .map(|i| summary(i, state.omit_hostnames))
        .collect();
    let mut body = json!({"ClusterNodeSummaries": page});
    if end < nodes.len() {
        body["NextToken"] = json!(format!("lab-page-{end}"));
    }
    ok(body)
}

fn describe_cluster_node(state: &ClusterState, input: &Value) -> Response {
    // The model makes both optional; AWS needs one, and the lab serves ids.
    let Some(id) = input["NodeId"].as_str() else {
        return error(
            "ValidationException",
            if input["NodeLogicalId"].is_string() {
                "NodeLogicalId is not served by the lab: give NodeId"
            } else {
                "Either NodeId or NodeLogicalId must be given"
            },
        );
    };
    let Some(instance) = state.by_id(id) else {
        return error(
            "ResourceNotFound",
            format!("Node {id} not found in cluster {}.", state.cluster_name),
        );
    };
    let mut details = summary(instance, state.omit_hostnames);
    details["PrivatePrimaryIp"] = json!(instance.address);
    details["ThreadsPerCore"] = json!(1);
    details["LifeCycleConfig"] =
        json!({"SourceS3Uri": "s3://hpchaos-lab/lifecycle-scripts/", "OnCreate": "on_create.sh"});
    details["Placement"] = json!({
        "AvailabilityZone": format!("{}a", state.region),
        "AvailabilityZoneId": availability_zone_id(&state.region),
    });
    ok(json!({"NodeDetails": details}))
}

/// The zone id of the region's first zone as AWS spells zone ids
/// (`[a-z]{3,5}\d-az\d`): `us-west-2` → `usw2-az1`, `ap-southeast-1` →
/// `apse1-az1`, `eu-central-1` → `euc1-az1`.
fn availability_zone_id(region: &str) -> String {
    let mut parts = region.split('-');
    let area = parts.next().unwrap_or("us");
    let short = match parts.next().unwrap_or("west") {
        "southeast" => "se",
        "northeast" => "ne",
        "southwest" => "sw",
        "northwest" => "nw",
        "central" => "c",
        other => other.get(..1).unwrap_or("w"),
    };
    let number = parts.next().unwrap_or("1");
    format!("{area}{short}{number}-az1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_model::model;

    /// A control plane over a 3-node cluster (head, login, one worker), all
    /// running; its ground truth and throttle knob in `dir`.
    fn plane(dir: &std::path::Path, omit_hostnames: bool) -> ControlPlane {
        let mut state = ClusterState::new(
            "hpchaos-lab",
            "us-west-2",
            "Automatic",
            &crate::layout::nodes(1),
        );
        state.omit_hostnames = omit_hostnames;
        for instance in &mut state.instances {
            instance.status = "Running".to_owned();
        }
        let (requests, _) = tokio::sync::mpsc::unbounded_channel();
        ControlPlane {
            state: Arc::new(Mutex::new(state)),
            requests,
            truth: Arc::new(GroundTruth::open(&dir.join("truth.jsonl")).unwrap()),
            throttle: Arc::new(Throttle::new(&dir.join("no-throttle"))),
            denied: Arc::new(dir.join("no-denials")),
            changes: Arc::new(dir.join("no-changes")),
            keys: Arc::new(keys_file(dir)),
            logs: Arc::new(dir.join("cloudwatch-logs.jsonl")),
            alarms: Arc::new(dir.join("cloudwatch-alarms.json")),
            check_for: chrono::TimeDelta::seconds(5),
            state_file: None,
        }
    }

    /// The lab's keys, in a credentials file under `dir`.
    fn keys_file(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("api-keys");
        std::fs::write(&path, crate::config::aws_credentials("s3cret")).unwrap();
        path
    }

    /// `operation` with `input`, signed with the lab's key: (HTTP status,
    /// body).
    fn call(plane: &ControlPlane, operation: &str, input: Value) -> (u16, Value) {
        call_target(plane, &format!("SageMaker.{operation}"), input)
    }

    /// `target` (`Logs_20140328.FilterLogEvents`) with `input`, signed.
    fn call_target(plane: &ControlPlane, target: &str, input: Value) -> (u16, Value) {
        let key = crate::auth::Key {
            access_key_id: "AKIDHPCHAOSLAB".into(),
            secret: "s3cret".into(),
            session_token: None,
            expires: None,
        };
        let mut request = crate::auth::tests::signed(&key, Utc::now(), &input.to_string());
        request
            .headers
            .insert("x-amz-target".into(), target.to_owned());
        // Signed again with the target it now has.
        let request = crate::auth::tests::resigned(request, &key);
        let response = plane.handle(request);
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap(),
        )
    }

    fn worker_id(plane: &ControlPlane) -> String {
        let state = plane.state.lock().unwrap();
        let worker = state.instances.iter().find(|i| i.group == "workers");
        worker.unwrap().instance_id.clone()
    }

    /// HMA's records, as the lab's agent writes them, are served as
    /// CloudWatch Logs serves them: answers that conform to botocore's
    /// model, its refusals for an unknown group or stream, a bad request
    /// and a missing permission.
    #[test]
    fn hmas_record_is_served_as_cloudwatch_logs_serves_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut plane = plane(dir.path(), false);
        let model = crate::api_model::logs_model().unwrap();
        let (group, stream) = {
            let state = plane.state.lock().unwrap();
            let worker = state
                .instances
                .iter()
                .find(|i| i.group == "workers")
                .unwrap();
            (
                crate::logs::log_group(&state.cluster_name, &state.cluster_arn),
                crate::logs::hma_stream(&worker.group, &worker.instance_id),
            )
        };
        let record = r#"{"level":"info","ts":"2026-07-20T22:53:17Z","msg":"DCGM Policy Violation found ","condition: ":"XID Error","data: ":{"ErrNum":48},"HealthMonitoringAgentDetectionEvent":"HealthEvent"}"#;
        crate::logs::append(&plane.logs, &group, &stream, Utc::now(), record).unwrap();
        let calls = [
            (
                "FilterLogEvents",
                json!({"logGroupName": group, "logStreamNames": [stream], "startTime": 0}),
            ),
            (
                "FilterLogEvents",
                json!({"logGroupName": group, "logStreamNamePrefix": "SagemakerHealthMonitoringAgent/", "limit": 1}),
            ),
            (
                "GetLogEvents",
                json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true}),
            ),
        ];
        for (operation, input) in calls {
            let (status, body) =
                call_target(&plane, &format!("Logs_20140328.{operation}"), input.clone());
            assert_eq!(status, 200, "{operation} {input}: {body}");
            assert_eq!(body["events"][0]["message"], record, "{body}");
            let output = &model.operation(operation).unwrap().output;
            let problems = model.check(output, &body);
            assert!(problems.is_empty(), "{operation}: {problems:?}\n{body}");
        }
        let refused = |plane: &ControlPlane, operation: &str, input: Value| {
            let (status, body) = call_target(plane, &format!("Logs_20140328.{operation}"), input);
            assert_eq!(status, 400, "{body}");
            body["__type"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            refused(
                &plane,
                "FilterLogEvents",
                json!({"logGroupName": "/aws/sagemaker/Clusters/other/x"})
            ),
            "ResourceNotFoundException"
        );
        assert_eq!(
            refused(
                &plane,
                "GetLogEvents",
                json!({"logGroupName": group, "logStreamName": "SagemakerHealthMonitoringAgent/workers/i-0000000000000000f"})
            ),
            "ResourceNotFoundException"
        );
        assert_eq!(
            refused(
                &plane,
                "FilterLogEvents",
                json!({"logGroupName": group, "limit": 0})
            ),
            "InvalidParameterException"
        );
        assert_eq!(
            refused(&plane, "PutLogEvents", json!({"logGroupName": group})),
            "UnknownOperationException"
        );
        let denials = dir.path().join("denials");
        std::fs::write(&denials, "logs:FilterLogEvents\n").unwrap();
        plane.denied = Arc::new(denials);
        assert_eq!(
            refused(&plane, "FilterLogEvents", json!({"logGroupName": group})),
            "AccessDeniedException"
        );
    }

    /// `StartClusterHealthCheck` answers as the model says, shows the
    /// instance `DeepHealthCheckInProgress`, and refuses a second check on
    /// it, an instance of another group, and a check the model does not
    /// know.
    #[test]
    fn a_deep_health_check_is_served_as_the_model_says() {
        let dir = tempfile::tempdir().unwrap();
        let model = model().unwrap();
        let plane = plane(dir.path(), false);
        let id = worker_id(&plane);
        let check = |id: &str, group: &str, kind: &str| {
            json!({"ClusterName": "hpchaos-lab", "DeepHealthCheckConfigurations": [
                {"InstanceGroupName": group, "InstanceIds": [id], "DeepHealthChecks": [kind]}
            ]})
        };
        let (status, body) = call(
            &plane,
            "StartClusterHealthCheck",
            check(&id, "workers", "InstanceStress"),
        );
        assert_eq!(status, 200, "{body}");
        let output = &model.operation("StartClusterHealthCheck").unwrap().output;
        assert!(model.check(output, &body).is_empty(), "{body}");
        let (_, node) = call(
            &plane,
            "DescribeClusterNode",
            json!({"ClusterName": "hpchaos-lab", "NodeId": id}),
        );
        assert_eq!(
            node["NodeDetails"]["InstanceStatus"]["Status"], DEEP_HEALTH_CHECK,
            "{node}"
        );
        for (input, words) in [
            (
                check(&id, "workers", "InstanceStress"),
                "already in progress",
            ),
            (
                check(&id, "controller", "InstanceStress"),
                "is not in instance group",
            ),
            (check(&id, "nope", "InstanceStress"), "does not exist"),
            (check(&id, "workers", "Vibes"), "enum value set"),
        ] {
            let (status, body) = call(&plane, "StartClusterHealthCheck", input);
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["__type"], "ValidationException", "{body}");
            assert!(body["Message"].as_str().unwrap().contains(words), "{body}");
        }
    }

    /// The cluster's events are served as the model says: listed in
    /// time order (filtered by instance, paged), described by id, an
    /// unknown id refused.
    #[test]
    fn cluster_events_are_served_as_the_model_says() {
        let dir = tempfile::tempdir().unwrap();
        let model = model().unwrap();
        let plane = plane(dir.path(), false);
        let id = worker_id(&plane);
        let node = {
            let mut state = plane.state.lock().unwrap();
            let node = state
                .instances
                .iter()
                .find(|i| i.instance_id == id)
                .unwrap()
                .node
                .clone();
            state.record_event(
                &node,
                "Warn",
                format!("Instance {id} is unhealthy: reboot started"),
            );
            state.record_event(
                &node,
                "Info",
                format!("Instance {id} rebooted and is running"),
            );
            node
        };
        assert!(!node.is_empty());
        let conforms = |operation: &str, input: Value| {
            let (status, body) = call(&plane, operation, input.clone());
            assert_eq!(status, 200, "{operation} {input}: {body}");
            let output = &model.operation(operation).unwrap().output;
            let problems = model.check(output, &body);
            assert!(problems.is_empty(), "{operation}: {problems:?}\n{body}");
            body
        };
        let all = conforms(
            "ListClusterEvents",
            json!({"ClusterName": "hpchaos-lab", "NodeId": id, "ResourceType": "Instance", "SortOrder": "Ascending"}),
        );
        let events = all["Events"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{all}");
        assert!(
            events[0]["Description"]
                .as_str()
                .unwrap()
                .contains("reboot started")
        );
        let page = conforms(
            "ListClusterEvents",
            json!({"ClusterName": "hpchaos-lab", "MaxResults": 1, "SortOrder": "Descending"}),
        );
        assert!(
            page["Events"][0]["Description"]
                .as_str()
                .unwrap()
                .contains("is running")
        );
        assert_eq!(page["NextToken"], "1");
        let one = conforms(
            "DescribeClusterEvent",
            json!({"ClusterName": "hpchaos-lab", "EventId": events[0]["EventId"]}),
        );
        assert_eq!(one["EventDetails"]["InstanceId"], id.as_str());
        let (status, body) = call(
            &plane,
            "DescribeClusterEvent",
            json!({"ClusterName": "hpchaos-lab", "EventId": "00000000-0000-0000-0000-000000000000"}),
        );
        assert_eq!(
            (status, body["__type"].as_str()),
            (400, Some("ResourceNotFound"))
        );
    }

    /// Every answer of every operation, in both API modes, is what AWS's
    /// model says an answer is.
    #[test]
    fn every_answer_conforms_to_the_service_model() {
        let dir = tempfile::tempdir().unwrap();
        let model = model().unwrap();
        for omit in [false, true] {
            let plane = plane(dir.path(), omit);
            let id = worker_id(&plane);
            let calls = [
                ("DescribeCluster", json!({"ClusterName": "hpchaos-lab"})),
                ("ListClusterNodes", json!({"ClusterName": "hpchaos-lab"})),
                (
                    "ListClusterNodes",
                    json!({"ClusterName": "hpchaos-lab", "MaxResults": 1, "SortBy": "NAME", "SortOrder": "Descending"}),
                ),
                (
                    "DescribeClusterNode",
                    json!({"ClusterName": "hpchaos-lab", "NodeId": id}),
                ),
                (
                    "UpdateCluster",
                    json!({"ClusterName": "hpchaos-lab", "NodeRecovery": "None"}),
                ),
                // A well-formed id the cluster does not have: only Failed.
                (
                    "BatchRebootClusterNodes",
                    json!({"ClusterName": "hpchaos-lab", "NodeIds": ["i-0123456789abcdef0"]}),
                ),
                (
                    "BatchRebootClusterNodes",
                    json!({"ClusterName": "hpchaos-lab", "NodeIds": [id]}),
                ),
                (
                    "BatchReplaceClusterNodes",
                    json!({"ClusterName": "hpchaos-lab", "NodeIds": [id]}),
                ),
            ];
            for (operation, input) in calls {
                let (status, body) = call(&plane, operation, input.clone());
                assert_eq!(status, 200, "{operation} {input}: {body}");
                let output = &model.operation(operation).unwrap().output;
                let problems = model.check(output, &body);
                assert!(
                    problems.is_empty(),
                    "{operation} {input}: {problems:?}\n{body}"
                );
            }
            let (_, node) = call(
                &plane,
                "DescribeClusterNode",
                json!({"ClusterName": "hpchaos-lab", "NodeId": id}),
            );
            assert_eq!(
                node["NodeDetails"]["Placement"]["AvailabilityZoneId"],
                "usw2-az1"
            );
            assert_eq!(
                node["NodeDetails"].get("PrivateDnsHostname").is_none(),
                omit
            );
        }
    }

    /// The groups' Slurm roles, whatever the login group is called, and
    /// the cluster's own changes (`lab change`) as AWS's model shapes them.
    #[test]
    fn roles_and_the_clusters_own_changes_are_served_as_the_model_says() {
        let dir = tempfile::tempdir().unwrap();
        let model = model().unwrap();
        let plane = plane(dir.path(), false);
        plane.state.lock().unwrap().rename_login_group("frontend");
        let id = worker_id(&plane);
        let worker = plane.state.lock().unwrap().by_id(&id).unwrap().node.clone();
        let until = Utc::now() + chrono::TimeDelta::minutes(30);
        let changes = Changes {
            patch: Some(crate::changes::Patch {
                strategy: "WhenIdle".into(),
                next_patch_date: Utc::now() + chrono::TimeDelta::minutes(10),
            }),
            software_update: Some("InProgress".into()),
            scaling: Some(1),
            deep_health_checks: [(worker.clone(), until)].into_iter().collect(),
        };
        std::fs::write(
            dir.path().join("no-changes"),
            serde_json::to_string(&changes).unwrap(),
        )
        .unwrap();
        let (status, cluster) = call(
            &plane,
            "DescribeCluster",
            json!({"ClusterName": "hpchaos-lab"}),
        );
        assert_eq!(status, 200, "{cluster}");
        let problems = model.check(
            &model.operation("DescribeCluster").unwrap().output,
            &cluster,
        );
        assert!(problems.is_empty(), "{problems:?}\n{cluster}");
        let groups = cluster["InstanceGroups"].as_array().unwrap();
        let role = |name: &str| {
            groups
                .iter()
                .find(|g| g["InstanceGroupName"] == name)
                .map(|g| g["SlurmConfig"]["NodeType"].clone())
        };
        assert_eq!(role("frontend"), Some(json!("Login")));
        assert_eq!(role("controller"), Some(json!("Controller")));
        assert_eq!(role("workers"), Some(json!("Compute")));
        let workers = groups
            .iter()
            .find(|g| g["InstanceGroupName"] == "workers")
            .unwrap();
        assert_eq!(workers["SoftwareUpdateStatus"], "InProgress");
        assert_eq!(workers["ActiveOperations"]["Scaling"], 1);
        assert_eq!(workers["AutoPatchConfig"]["PatchingStrategy"], "WhenIdle");
        assert!(workers["AutoPatchConfig"]["CurrentPatchSchedule"]["NextPatchDate"].is_number());
        // The controller group has none of the compute groups' changes.
        let controller = groups
            .iter()
            .find(|g| g["InstanceGroupName"] == "controller")
            .unwrap();
        assert!(controller.get("AutoPatchConfig").is_none());
        let (_, node) = call(
            &plane,
            "DescribeClusterNode",
            json!({"ClusterName": "hpchaos-lab", "NodeId": id}),
        );
        assert_eq!(
            node["NodeDetails"]["InstanceStatus"]["Status"],
            DEEP_HEALTH_CHECK
        );
        let problems = model.check(
            &model.operation("DescribeClusterNode").unwrap().output,
            &node,
        );
        assert!(problems.is_empty(), "{problems:?}");
        // Shown, never kept: the state's own status is unchanged.
        assert_eq!(
            plane.state.lock().unwrap().by_id(&id).unwrap().status,
            "Running"
        );
    }

    #[test]
    fn a_request_that_breaks_the_model_is_a_validation_exception() {
        let dir = tempfile::tempdir().unwrap();
        let plane = plane(dir.path(), false);
        for (operation, input, names) in [
            (
                "DescribeClusterNode",
                json!({"ClusterName": "hpchaos-lab", "NodeId": "ip-10-1-0-11"}),
                "'nodeId'",
            ),
            (
                "ListClusterNodes",
                json!({"ClusterName": "hpchaos-lab", "SortBy": "LAUNCH_TIME"}),
                "'sortBy'",
            ),
            (
                "ListClusterNodes",
                json!({"ClusterName": "hpchaos-lab", "MaxResults": 500}),
                "'maxResults'",
            ),
            (
                "BatchReplaceClusterNodes",
                json!({"ClusterName": "hpchaos-lab", "NodeIds": ["i-0123456789abcdef0", "i-xyz"]}),
                "'nodeIds.2.member'",
            ),
            (
                "BatchRebootClusterNodes",
                json!({"ClusterName": "hpchaos-lab", "NodeIds": []}),
                "'nodeIds'",
            ),
            (
                "UpdateCluster",
                json!({"ClusterName": "hpchaos-lab", "NodeRecovery": "Manual"}),
                "'nodeRecovery'",
            ),
            (
                "DescribeCluster",
                json!({"ClusterName": "bad name!"}),
                "'clusterName'",
            ),
        ] {
            let (status, body) = call(&plane, operation, input.clone());
            assert_eq!(status, 400, "{operation} {input}");
            assert_eq!(
                body["__type"], "ValidationException",
                "{operation} {input}: {body}"
            );
            let message = body["Message"].as_str().unwrap();
            assert!(
                message.starts_with("1 validation error detected: Value ")
                    && message.contains(names),
                "{operation} {input}: {message}"
            );
        }
        let (status, body) = call(
            &plane,
            "DeleteCluster",
            json!({"ClusterName": "hpchaos-lab"}),
        );
        assert_eq!(status, 400);
        assert_eq!(body["__type"], "UnknownOperationException");
        let (_, body) = call(&plane, "DescribeCluster", json!({"ClusterName": "other"}));
        assert_eq!(body["__type"], "ResourceNotFound");
    }

    #[test]
    fn zone_ids_are_spelled_as_aws_spells_them() {
        for (region, id) in [
            ("us-west-2", "usw2-az1"),
            ("us-east-1", "use1-az1"),
            ("ap-southeast-1", "apse1-az1"),
            ("eu-central-1", "euc1-az1"),
            ("ap-northeast-3", "apne3-az1"),
        ] {
            assert_eq!(availability_zone_id(region), id);
        }
    }
}
