//! The lab's SageMaker HyperPod API: awsJson1_1 over HTTP on loopback, as
//! `aws-sdk-sagemaker` speaks it (`POST /`, `X-Amz-Target:
//! SageMaker.<Operation>`, errors as HTTP 400 `{"__type", "Message"}`,
//! epoch-second timestamps). Reads the shared cluster state; reboot and
//! replace requests go to the recovery engine. Requests over the rate
//! limit, when one is set, are throttled.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;

use super::config::Action;
use super::ground_truth::GroundTruth;
use super::http::{Request, Response, serve};
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

fn error(kind: &str, message: impl Into<String>) -> Response {
    Response {
        status: 400,
        body: json!({"__type": kind, "Message": message.into()}).to_string(),
    }
}

fn ok(body: Value) -> Response {
    Response {
        status: 200,
        body: body.to_string(),
    }
}

fn epoch(at: DateTime<Utc>) -> Value {
    json!(at.timestamp_millis() as f64 / 1000.0)
}

fn summary(instance: &Instance, omit_hostname: bool) -> Value {
    let mut summary = json!({
        "InstanceGroupName": instance.group,
        "InstanceId": instance.instance_id,
        "InstanceType": instance.instance_type,
        "LaunchTime": epoch(instance.launch_time),
        "InstanceStatus": {"Status": instance.status, "Message": instance.message},
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
        if !request
            .headers
            .get("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"))
        {
            return Response {
                status: 403,
                body: json!({"__type": "MissingAuthenticationTokenException", "Message": "Missing Authentication Token"}).to_string(),
            };
        }
        let target = request
            .headers
            .get("x-amz-target")
            .cloned()
            .unwrap_or_default();
        let Some(operation) = target.strip_prefix("SageMaker.") else {
            return error(
                "UnknownOperationException",
                format!("unknown target `{target}`"),
            );
        };
        if !self.throttle.admit() {
            self.truth.record("api_throttled", None, operation);
            return error("ThrottlingException", "Rate exceeded");
        }
        let Ok(input) = serde_json::from_slice::<Value>(&request.body) else {
            return error("SerializationException", "the request body is not JSON");
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let name = input["ClusterName"].as_str().unwrap_or_default();
        if name != state.cluster_name && name != state.cluster_arn {
            return error(
                "ResourceNotFound",
                format!("Cluster with name or arn '{name}' not found."),
            );
        }
        match operation {
            "DescribeCluster" => ok(describe_cluster(&state)),
            "ListClusterNodes" => list_cluster_nodes(&state, &input),
            "DescribeClusterNode" => describe_cluster_node(&state, &input),
            "BatchRebootClusterNodes" => self.batch(&state, &input, Action::Reboot),
            "BatchReplaceClusterNodes" => self.batch(&state, &input, Action::Replace),
            "UpdateCluster" => {
                if let Some(recovery) = input["NodeRecovery"].as_str() {
                    if recovery != "Automatic" && recovery != "None" {
                        return error(
                            "ValidationException",
                            "NodeRecovery must be Automatic or None",
                        );
                    }
                    state.node_recovery = recovery.to_owned();
                    self.truth.record("node_recovery_set", None, recovery);
                }
                ok(json!({"ClusterArn": state.cluster_arn}))
            }
            other => error(
                "UnknownOperationException",
                format!("operation {other} is not served by the lab"),
            ),
        }
    }

    fn batch(&self, state: &ClusterState, input: &Value, action: Action) -> Response {
        let ids: Vec<&str> = input["NodeIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if ids.is_empty() || ids.len() > 25 {
            return error(
                "ValidationException",
                "NodeIds must hold 1 to 25 instance ids",
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
        ok(json!({"Successful": successful, "Failed": failed}))
    }
}

fn describe_cluster(state: &ClusterState) -> Value {
    let groups: Vec<Value> = [CONTROLLER_GROUP, super::state::WORKER_GROUP]
        .iter()
        .map(|group| {
            let members: Vec<&Instance> = state.instances.iter().filter(|i| i.group == *group).collect();
            let running = members.iter().filter(|i| i.status == "Running").count();
            json!({
                "CurrentCount": running,
                "TargetCount": members.len(),
                "InstanceGroupName": group,
                "InstanceType": members.first().map(|i| i.instance_type.as_str()).unwrap_or("ml.m5.xlarge"),
                "LifeCycleConfig": {"SourceS3Uri": "s3://hpchaos-lab/lifecycle-scripts/", "OnCreate": "on_create.sh"},
                "ExecutionRole": "arn:aws:iam::123456789012:role/hpchaos-lab",
                "ThreadsPerCore": 1,
                "Status": "InService",
            })
        })
        .collect();
    json!({
        "ClusterArn": state.cluster_arn,
        "ClusterName": state.cluster_name,
        "ClusterStatus": "InService",
        "CreationTime": epoch(state.created),
        "InstanceGroups": groups,
        "NodeRecovery": state.node_recovery,
    })
}

fn list_cluster_nodes(state: &ClusterState, input: &Value) -> Response {
    let max = input["MaxResults"].as_u64().unwrap_or(100);
    if !(1..=100).contains(&max) {
        return error(
            "ValidationException",
            "MaxResults must be between 1 and 100",
        );
    }
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
    let id = input["NodeId"].as_str().unwrap_or_default();
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
    details["Placement"] =
        json!({"AvailabilityZone": format!("{}a", state.region), "AvailabilityZoneId": "lab-az1"});
    ok(json!({"NodeDetails": details}))
}
