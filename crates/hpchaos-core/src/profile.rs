//! A cluster profile: how hpchaos reaches one cluster (head node, compute
//! node addresses, SSH settings, the SageMaker API, polling intervals).
//! A user writes one for a real HyperPod cluster; `hpchaos lab up` writes
//! one for the lab in the same format.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "hpchaos cluster profile")]
pub struct Profile {
    /// A name for this cluster, shown in reports.
    pub name: String,
    /// The Slurm controller, where `sinfo`, `squeue` and `scontrol` run.
    pub head_node: Host,
    /// Login nodes: never targeted.
    #[serde(default)]
    pub login_nodes: Vec<String>,
    /// Node name to address, where the name does not resolve; nodes named
    /// `ip-a-b-c-d` default to the address `a.b.c.d`.
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
    pub ssh: Ssh,
    #[serde(default)]
    pub slurm: Slurm,
    /// The SageMaker HyperPod API; without it, faults and expectations that
    /// need the API are refused at validation.
    #[serde(default)]
    pub sagemaker: Option<SageMaker>,
    #[serde(default)]
    pub poll: Poll,
    /// The cluster's monitoring: where `expect.monitoring` is judged and
    /// where each scenario's results are pushed. Without it, scenarios
    /// with monitoring expectations are refused before anything is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    /// Who is told how a run ended (webhooks Slack and Teams accept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<Notify>,
}

/// One webhook told how runs end: a JSON body with `text` (what Slack's
/// incoming webhooks and Teams' connectors show) and the run's facts
/// under `hpchaos`. Sent after the reports are written, retried with
/// backoff, never changing the run's exit. A rollback that left
/// something applied is always sent, whatever `on` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// The webhook's URL (`https://hooks.slack.com/services/...`).
    pub webhook: String,
    /// `failure` (default: any run that did not pass) or `end` (every run).
    #[serde(default)]
    pub on: NotifyOn,
    /// How long one attempt may take.
    #[serde(default = "five_seconds")]
    pub timeout: Duration,
    /// `slack` (default: `{"text": ...}`, which Slack's incoming webhooks
    /// and Teams' Office 365 connectors show) or `teams` (an Adaptive Card,
    /// what Teams' Workflows webhooks take).
    #[serde(default)]
    pub format: NotifyFormat,
    /// Where the run folders are published (a CI's artifacts, a bucket's
    /// website): the notice links `<report_url>/<run folder>/report.md`
    /// instead of giving a path on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
}

/// The body a webhook takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    #[default]
    Slack,
    Teams,
}

/// When a webhook is told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    /// Every run, whatever its end.
    End,
    /// Runs that did not pass.
    #[default]
    Failure,
}

/// Monitoring endpoints: a Prometheus (or Amazon Managed Prometheus
/// workspace) to query, an Alertmanager to read alerts from, and where
/// results go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// Prometheus's HTTP API root: `http://prometheus:9090`, or an Amazon
    /// Managed Prometheus workspace,
    /// `https://aps-workspaces.REGION.amazonaws.com/workspaces/ws-ID` (with
    /// `sigv4`). `/api/v1/query_range` is appended.
    #[serde(default)]
    pub prometheus: Option<Endpoint>,
    /// Alertmanager's root: `http://alertmanager:9093`, or the workspace's
    /// `.../workspaces/ws-ID/alertmanager` (with `sigv4`).
    /// `/api/v2/alerts` is appended.
    #[serde(default)]
    pub alertmanager: Option<Endpoint>,
    /// A Pushgateway: each scenario's results are pushed to
    /// `/metrics/job/hpchaos/cluster/NAME/scenario/SCENARIO`.
    #[serde(default)]
    pub pushgateway: Option<Endpoint>,
    /// Prometheus's remote-write receiver, the full URL: a Prometheus run
    /// with `--web.enable-remote-write-receiver`
    /// (`http://HOST:9090/api/v1/write`), or an Amazon Managed Prometheus
    /// workspace's `.../workspaces/ws-ID/api/v1/remote_write` (with
    /// `sigv4`): each scenario's results are written there, timed at the
    /// scenario's end.
    #[serde(default)]
    pub remote_write: Option<Endpoint>,
    /// How often the monitoring is asked during the watch.
    #[serde(default = "two_seconds")]
    pub poll: Duration,
}

/// One HTTP endpoint of the monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub url: String,
    /// Sign requests with AWS Signature Version 4 (Amazon Managed
    /// Prometheus): credentials from the standard chain (or `aws_profile`).
    #[serde(default)]
    pub sigv4: Option<SigV4>,
    /// How long one request may take.
    #[serde(default = "ten_seconds")]
    pub timeout: Duration,
}

/// AWS Signature Version 4 settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SigV4 {
    /// The workspace's region, e.g. `us-west-2`.
    pub region: String,
    /// The service signed for; Amazon Managed Prometheus is `aps`.
    #[serde(default = "aps")]
    pub service: String,
    /// A named AWS profile; otherwise the standard credential chain.
    #[serde(default)]
    pub aws_profile: Option<String>,
}

fn aps() -> String {
    "aps".to_owned()
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Slurm node name, e.g. `ip-10-1-0-10`.
    pub name: String,
    /// Address to connect to; defaults to what the name implies.
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default = "ssh_port")]
    pub port: u16,
    /// hpchaos runs on this host: its commands run here, not over SSH (a
    /// head node running hpchaos itself; a jump host that is this machine
    /// means connecting directly).
    #[serde(default)]
    pub local: bool,
}

fn ssh_port() -> u16 {
    22
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ssh {
    /// The remote user; without it, `ssh.config`'s `User`, else the local
    /// user (as OpenSSH does).
    #[serde(default)]
    pub user: Option<String>,
    /// Private key file; without it the SSH agent is used.
    #[serde(default)]
    pub key: Option<String>,
    /// known_hosts file that host keys are checked against.
    pub known_hosts: String,
    /// Reach nodes through this host (typically the login node).
    #[serde(default)]
    pub jump_host: Option<Host>,
    /// How to reach the head node when it has no SSH port of its own, with
    /// OpenSSH's `ProxyCommand` meaning: run through `sh -c`, its
    /// stdin/stdout is the connection; `%h` the head's address, `%p` its
    /// port, `%r` the user, `%n` its name, `%%` a `%`. For HyperPod through SSM Session
    /// Manager: `aws ssm start-session --target sagemaker-cluster:ID_GROUP-INSTANCE
    /// --document-name AWS-StartSSHSession --parameters portNumber=%p`.
    /// Other nodes are then reached through the head node (one connection
    /// to it per run), unless `jump_host` says otherwise.
    #[serde(default)]
    pub proxy_command: Option<String>,
    /// An OpenSSH client config to read the head node's connection from
    /// (`~/.ssh/config`, as HyperPod's `easy-ssh.sh` writes it): its `Host`
    /// entry gives HostName, Port, User, IdentityFile, ProxyCommand and
    /// ProxyJump for what this profile leaves unset.
    #[serde(default)]
    pub config: Option<String>,
    /// The `Host` entry of `config` for the head node (easy-ssh names it
    /// after the cluster); the head node's name if unset.
    #[serde(default)]
    pub config_host: Option<String>,
    #[serde(default = "connect_timeout")]
    pub connect_timeout: Duration,
    #[serde(default = "command_timeout")]
    pub command_timeout: Duration,
    #[serde(default = "keepalive")]
    pub keepalive: Duration,
    /// Commands in flight per host; stays below sshd's MaxSessions (10).
    #[serde(default = "max_channels")]
    #[schemars(range(min = 1, max = 9))]
    pub max_channels_per_host: u8,
    /// How commands that need root get it (`cluster/privilege.rs` lists
    /// each such command and why): `sudo` runs them under `sudo -n`, which
    /// never waits for a password; `none` runs them as `user`. Unset:
    /// `sudo`, unless `user` is root (on HyperPod you log in as `ubuntu`).
    #[serde(default, rename = "become")]
    pub elevate: Option<Become>,
    /// How nodes other than the head are reached: `from_head` (the head
    /// node runs `ssh NODE` with its own user, key and client config, as
    /// HyperPod's lifecycle scripts set them up: the default), or
    /// `through_head` (this machine's SSH connection to the node, carried
    /// through the head's connection, or through `jump_host`, or direct
    /// when the head has no proxy command; authenticated with this
    /// profile's key and checked against `known_hosts`).
    #[serde(default)]
    pub compute: Compute,
    /// After the API shows a node on a new instance (a verified
    /// replacement), accept the host key the head node sees for it, for
    /// the rest of the run, and journal its fingerprint. known_hosts is
    /// never written.
    #[serde(default = "accept_replaced_host_keys")]
    pub accept_replaced_host_keys: bool,
}

/// How the profile's user becomes root (`ssh.become`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Become {
    /// `sudo -n`: never prompts; refused at once if not allowed.
    Sudo,
    /// Commands run as `ssh.user` (root already, or given the rights).
    None,
}

/// How nodes other than the head are reached (`ssh.compute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compute {
    /// The head runs `ssh NODE`: its user, its key, its client config.
    #[default]
    FromHead,
    /// This machine's own connection to each node, with the profile's key.
    ThroughHead,
}

fn accept_replaced_host_keys() -> bool {
    true
}

fn connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn command_timeout() -> Duration {
    Duration::from_secs(60)
}
fn keepalive() -> Duration {
    Duration::from_secs(15)
}
fn max_channels() -> u8 {
    8
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slurm {
    /// Controller log, read for source timestamps when readable.
    #[serde(default = "controller_log")]
    pub controller_log: String,
    /// Follow the controller log over one kept SSH channel (`tail -F` on
    /// the head node), so a line is seen as it is written; `false` reads
    /// what was appended at each `poll.slurm` instead. Following needs GNU
    /// tail; without it the watch falls back to reading each poll.
    #[serde(default = "follow_controller_log")]
    pub follow_controller_log: bool,
    /// GPUs per node, for the cost of a failure when a job's TRES lists
    /// none (a cluster without GPU gres configured): HyperPod's p5 and p4d
    /// instances have 8.
    #[serde(default)]
    pub gpus_per_node: Option<u32>,
    /// Default batch script for canary jobs.
    #[serde(default)]
    pub canary_script: Option<String>,
}

fn follow_controller_log() -> bool {
    true
}

fn controller_log() -> String {
    "/var/log/slurm/slurmctld.log".to_owned()
}

impl Default for Slurm {
    fn default() -> Self {
        Slurm {
            controller_log: controller_log(),
            follow_controller_log: true,
            gpus_per_node: None,
            canary_script: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SageMaker {
    pub cluster_name: String,
    pub region: String,
    /// Another endpoint than AWS's (the lab's control plane).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Named AWS profile; otherwise the standard credential chain.
    #[serde(default)]
    pub aws_profile: Option<String>,
    /// A credentials file read besides ~/.aws/credentials (the lab's).
    #[serde(default)]
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    #[serde(default = "two_seconds")]
    pub slurm: Duration,
    #[serde(default = "five_seconds")]
    pub sagemaker: Duration,
    #[serde(default = "two_seconds")]
    pub job_output: Duration,
    /// The light touch on slurmctld: while the controller log is followed
    /// and nothing has happened on the targets, the node table is read
    /// only this often (a safety net); every `slurm` once a log line or a
    /// row says something happened. `0s` reads every `slurm` throughout.
    #[serde(default = "five_minutes")]
    pub slurm_when_quiet: Duration,
}

fn two_seconds() -> Duration {
    Duration::from_secs(2)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

impl Default for Poll {
    fn default() -> Self {
        Poll {
            slurm: two_seconds(),
            sagemaker: five_seconds(),
            job_output: two_seconds(),
            slurm_when_quiet: five_minutes(),
        }
    }
}

/// Whether `name` can name a host: letters, digits, `-`, `_` and `.`, not
/// starting with `-` or `.`, at most 253 characters. Anything else (`;`,
/// `$(...)`, spaces) is refused before it reaches a command line.
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Every host name a profile gives, with the keys that lead to it, that
/// [`valid_host_name`] refuses.
pub fn invalid_host_names(profile: &Profile) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut check = |keys: Vec<String>, name: &str| {
        if !valid_host_name(name) {
            out.push((keys, name.to_owned()));
        }
    };
    check(
        vec!["head_node".into(), "name".into()],
        &profile.head_node.name,
    );
    if let Some(jump) = &profile.ssh.jump_host {
        check(
            vec!["ssh".into(), "jump_host".into(), "name".into()],
            &jump.name,
        );
    }
    for (index, name) in profile.login_nodes.iter().enumerate() {
        check(vec!["login_nodes".into(), index.to_string()], name);
    }
    for (name, address) in &profile.addresses {
        check(vec!["addresses".into(), name.clone()], name);
        check(vec!["addresses".into(), name.clone()], address);
    }
    out
}

#[cfg(test)]
mod host_name_tests {
    use super::valid_host_name;

    #[test]
    fn host_names_refuse_shell_text() {
        for good in ["ip-10-1-0-11", "gpu_node.example.com", "10.1.0.11", "node7"] {
            assert!(valid_host_name(good), "{good}");
        }
        for bad in [
            "a;b",
            "$(reboot)",
            "x y",
            "-oProxyCommand=x",
            "",
            "n`id`",
            ".hidden",
        ] {
            assert!(!valid_host_name(bad), "{bad}");
        }
    }
}
