//! Checking everything a run needs before it touches the cluster. Offline
//! (also `validate --cluster`): the files a profile names exist and can be
//! read, and known_hosts holds the head node's key. Online (`run`, before
//! the lock): the head node answers over SSH, Slurm answers there, and the
//! SageMaker API answers for the profile's cluster with the credentials it
//! finds. Per scenario (`run` before anything starts, `plan`): the cluster
//! recovers as the scenario expects, and its targets are Slurm nodes under
//! the cap. Each problem names the setting, the file or the call, and the
//! fix.

use std::path::{Path, PathBuf};

use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::cluster::privilege::Root;
use crate::cluster::sagemaker::ClusterSummary;
use crate::cluster::ssh::{Endpoint, expand_home};
use crate::profile::{Host, Profile};
use crate::scenario::model::{Fault, RebootMethod, Recovery, ReplaceMethod, Scenario};
use crate::scenario::yaml_tree::{Node, TreePath};
use crate::scenario::{Diagnostic, Position};

/// Problems with the files `profile` (read from `path`, text `text`) names,
/// each at the setting that names the file.
pub fn offline(path: &Path, text: &str, profile: &Profile) -> Vec<Diagnostic> {
    let tree = Node::parse(text).ok();
    let at = |keys: &[&str]| {
        tree.as_ref()
            .map_or(Position::START, |t| t.locate_value(&TreePath::of(keys)))
    };
    let mut out = Vec::new();
    let ssh = &profile.ssh;
    if let Some(key) = &ssh.key
        && let Err(err) = readable(&expand_home(key))
    {
        out.push(
            Diagnostic::new(path, at(&["ssh", "key"]), format!("ssh.key: cannot read {key}: {}", unreadable(&err)))
                .with_hint("point ssh.key at the private key you log in with (`ssh -i` KEY), or remove it to use the SSH agent"),
        );
    }
    let known_hosts = expand_home(&ssh.known_hosts);
    match readable(&known_hosts) {
        Err(err) => out.push(
            Diagnostic::new(
                path,
                at(&["ssh", "known_hosts"]),
                format!(
                    "ssh.known_hosts: cannot read {}: {}",
                    ssh.known_hosts,
                    unreadable(&err)
                ),
            )
            .with_hint(match &ssh.proxy_command {
                // Behind SSM, ssh-keyscan cannot reach it: OpenSSH can.
                Some(command) => {
                    let head = Endpoint::of_host(&profile.head_node);
                    let user = ssh.user.as_deref().unwrap_or("ubuntu");
                    crate::cluster::ssh::add_key_through_proxy(
                        &expand_home(&ssh.known_hosts).display().to_string(),
                        command,
                        head.port,
                        &format!("{user}@{}", head.address),
                        &head.address,
                    )
                }
                None => format!(
                    "create it with the head node's key, checked out of band: `ssh-keyscan -p {} {} >> {}`",
                    profile.head_node.port,
                    Endpoint::of_host(&profile.head_node).address,
                    ssh.known_hosts
                ),
            }),
        ),
        Ok(()) => {
            let mut hosts = vec![(&profile.head_node, &["head_node", "name"][..])];
            if let Some(jump) = &ssh.jump_host {
                hosts.push((jump, &["ssh", "jump_host", "name"][..]));
            }
            for (index, (host, keys)) in hosts.into_iter().enumerate() {
                // The head (first) may be behind the proxy command.
                let proxy = ssh.proxy_command.as_deref().filter(|_| index == 0);
                if let Some(problem) = missing_host_key(host, &known_hosts, proxy) {
                    out.push(
                        Diagnostic::new(path, at(keys), problem.0).with_hint(problem.1),
                    );
                }
            }
        }
    }
    if let Some(file) = profile
        .sagemaker
        .as_ref()
        .and_then(|s| s.credentials_file.as_ref())
        && let Err(err) = readable(&expand_home(file))
    {
        out.push(
            Diagnostic::new(
                path,
                at(&["sagemaker", "credentials_file"]),
                format!(
                    "sagemaker.credentials_file: cannot read {file}: {}",
                    unreadable(&err)
                ),
            )
            .with_hint("point it at an AWS credentials file, or remove it to use the standard credential chain (environment, ~/.aws, SSO, instance role)"),
        );
    }
    out
}

/// Whether `path` opens; the I/O error if not (see [`unreadable`]).
fn readable(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path).map(drop)
}

/// Why a file the profile names cannot be opened, in words.
fn unreadable(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        _ => e.to_string(),
    }
}

/// `(problem, fix)` when `known_hosts` has no key for `host` (by the
/// address hpchaos connects to, as OpenSSH looks it up; hashed entries
/// included). A host hpchaos runs on needs none.
fn missing_host_key(
    host: &Host,
    known_hosts: &PathBuf,
    proxy_command: Option<&str>,
) -> Option<(String, String)> {
    if host.local {
        return None;
    }
    let endpoint = Endpoint::of_host(host);
    let found = russh::keys::known_hosts::known_host_keys_path(
        &endpoint.address,
        endpoint.port,
        known_hosts,
    )
    .map(|keys| !keys.is_empty())
    .unwrap_or(false);
    (!found).then(|| {
        (
            format!(
                "{} has no host key for {} ({} port {})",
                known_hosts.display(),
                endpoint.name,
                endpoint.address,
                endpoint.port
            ),
            match proxy_command {
                // Behind SSM, ssh-keyscan cannot reach it: OpenSSH can.
                Some(command) => crate::cluster::ssh::add_key_through_proxy(
                    &known_hosts.display().to_string(),
                    command,
                    endpoint.port,
                    &endpoint.address,
                    &endpoint.address,
                ),
                None => format!(
                    "add it after checking it out of band: `ssh-keyscan -p {} {} >> {}`",
                    endpoint.port,
                    endpoint.address,
                    known_hosts.display()
                ),
            },
        )
    })
}

/// What the online checks found.
#[derive(Debug, Default)]
pub struct Online {
    /// Every failure, each a line naming what failed and the fix.
    pub problems: Vec<String>,
    /// The cluster as `DescribeCluster` said it (its `NodeRecovery`,
    /// groups and their roles and changes), when the API answered.
    pub cluster: Option<ClusterSummary>,
}

/// Why a scenario cannot run on this cluster as it is, found before
/// anything is opened or changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub why: String,
}

/// Whose a refusal before any change is (the CLI gives each its exit
/// code: 2 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefusalKind {
    /// The scenario as written cannot run here: a node Slurm does not
    /// have, an empty pool, above the blast-radius cap.
    Scenario,
    /// The cluster cannot do what the scenario expects (no automatic node
    /// recovery), or could not be asked.
    Cluster,
    /// The cluster is under change of its own (a patch due, an update,
    /// scaling, a deep health check, a maintenance reservation): a
    /// schedule may skip instead (`run --if-unchanged`).
    UnderChange,
}

/// Whose a refusal for a target that did not resolve is: the cluster's
/// when it could not be asked (Slurm, the API, a host list it gave), else
/// the scenario's, which as written cannot run on this cluster (no such
/// node or job, an empty pool, above the blast-radius cap, instance groups
/// without the API).
fn kind_of(err: &crate::targets::ResolveError) -> RefusalKind {
    use crate::targets::ResolveError;
    match err {
        ResolveError::Slurm(_) | ResolveError::Api(_) | ResolveError::HostList(_) => {
            RefusalKind::Cluster
        }
        _ => RefusalKind::Scenario,
    }
}

/// A scenario checked against the live cluster, as `run` checks it before
/// anything starts and `plan` shows it: the cluster recovers the way the
/// scenario expects, and its targets resolve (to Slurm nodes, under the
/// cap). The targets, `None` for a workload's nodes (known once it runs).
/// `accept_no_recovery`: the operator runs it anyway (`--accept-no-recovery`,
/// to rehearse a cluster that does not recover: the fault holds until the
/// run's deadlines pass and its rollback undoes it).
pub async fn scenario(
    cluster: &Cluster,
    scenario: &Scenario,
    summary: Option<&ClusterSummary>,
    accept_no_recovery: bool,
) -> Result<Option<Vec<String>>, Refusal> {
    let node_recovery = summary.map(|s| s.node_recovery.as_str());
    let name = cluster
        .profile
        .sagemaker
        .as_ref()
        .map_or("NAME", |s| s.cluster_name.as_str());
    if let Some(why) = recovery_refused(scenario, node_recovery, name)
        && !accept_no_recovery
    {
        return Err(Refusal {
            kind: RefusalKind::Cluster,
            why,
        });
    }
    existing_job(cluster, scenario).await?;
    controllers(cluster, scenario).await?;
    match crate::targets::plan_targets(cluster, scenario).await {
        Ok(targets) => {
            let plan = crate::faults::plan(&scenario.fault, &targets);
            let need = crate::faults::root_on_nodes(plan.inject.iter().chain(&plan.rollback));
            if let Some(need) = need {
                let nodes: Vec<Endpoint> = targets.iter().map(|t| cluster.node(t)).collect();
                let refused = sudo_refusals(cluster, &nodes, need).await;
                if !refused.is_empty() {
                    return Err(Refusal {
                        kind: RefusalKind::Cluster,
                        why: refused.join("; "),
                    });
                }
            }
            processes_to_kill(cluster, scenario, &targets).await?;
            under_change(cluster, scenario, summary, &targets).await?;
            Ok(Some(targets))
        }
        Err(crate::targets::ResolveError::WorkloadNotYet) => {
            workload_ready(cluster, scenario).await?;
            under_change(cluster, scenario, summary, &[]).await?;
            Ok(None)
        }
        Err(err) => Err(Refusal {
            kind: kind_of(&err),
            why: format!("targets: {err}"),
        }),
    }
}

/// The cluster is not under change of its own that the run would overlap
/// (`cluster/changes.rs`): a patch due within the scenario's longest
/// deadline, an update or scaling in flight, on a target a deep health
/// check or a maintenance reservation. `targets` empty: only the
/// cluster-wide changes (a workload's nodes are known once it runs).
/// Slurm's reservations or the API not answering is the cluster's refusal.
pub async fn under_change(
    cluster: &Cluster,
    scenario: &Scenario,
    summary: Option<&ClusterSummary>,
    targets: &[String],
) -> Result<(), Refusal> {
    let refused = |kind, why: String| Refusal { kind, why };
    let reservations = match targets.is_empty() {
        true => Vec::new(),
        false => cluster.slurm.reservations().await.map_err(|e| {
            refused(
                RefusalKind::Cluster,
                format!("scontrol show reservation: {e}"),
            )
        })?,
    };
    let nodes = match (&cluster.api, targets.is_empty()) {
        (Some(api), false) => api
            .named(targets)
            .await
            .map_err(|e| refused(RefusalKind::Cluster, e.to_string()))?,
        _ => Vec::new(),
    };
    let offset = cluster.slurm.utc_offset().await;
    let changes = crate::cluster::changes::overlapping(
        summary,
        &nodes,
        &reservations,
        targets,
        offset,
        crate::clock::SystemClock.now(),
        longest_deadline(scenario),
    );
    match changes.is_empty() {
        true => Ok(()),
        false => Err(refused(
            RefusalKind::UnderChange,
            format!(
                "the cluster is under change of its own: {}; run when it is done (a schedule can skip instead: run --if-unchanged, exit 4)",
                changes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )),
    }
}

/// How long a scenario can run: its longest deadline (or quiet window),
/// else half an hour (the watch's own bound without deadlines).
fn longest_deadline(scenario: &Scenario) -> chrono::TimeDelta {
    let deadlines = scenario.expect.deadlines.set();
    deadlines
        .values()
        .copied()
        .chain(scenario.expect.quiet_for)
        .max()
        .map_or(chrono::TimeDelta::minutes(30), |d| d.as_chrono())
}

/// A slurmctld fault runs where it can do what it says
/// (`cluster::controllers::Controllers::refusal`): a takeover needs a
/// backup controller, one controller needs `allow_controller`, and the
/// profile's head runs the primary. Slurm not answering is the cluster's.
async fn controllers(cluster: &Cluster, scenario: &Scenario) -> Result<(), Refusal> {
    use crate::scenario::model::SlurmDaemon;
    let Fault::Daemon(daemon) = &scenario.fault else {
        return Ok(());
    };
    if daemon.name != SlurmDaemon::Slurmctld {
        return Ok(());
    }
    let text = cluster
        .slurm
        .head_text(&["sh", "-c", crate::cluster::controllers::PING_SCRIPT])
        .await
        .map_err(|e| Refusal {
            kind: RefusalKind::Cluster,
            why: format!("scontrol ping: {e}"),
        })?;
    let read = crate::cluster::controllers::Controllers::parse(&text);
    match read.refusal(
        scenario.expect.recovery == Recovery::Takeover,
        daemon.allow_controller,
    ) {
        Some(why) => Err(Refusal {
            kind: RefusalKind::Scenario,
            why: format!("fault.daemon: {why}"),
        }),
        None => Ok(()),
    }
}

/// The job an `existing:` workload names is one job Slurm has: a name that
/// no job or several running jobs carry is refused now (the scenario's),
/// as `run` would refuse it, not found out after the lock. Slurm not
/// answering is the cluster's.
async fn existing_job(cluster: &Cluster, scenario: &Scenario) -> Result<(), Refusal> {
    use crate::cluster::slurm::JobNameError;
    use crate::scenario::model::{JobRef, Workload};
    let Some(Workload::Existing(existing)) = &scenario.workload else {
        return Ok(());
    };
    let refusal = |kind, why: String| Refusal {
        kind,
        why: format!("workload: {why}"),
    };
    match &existing.job {
        JobRef::Name(name) => match cluster.slurm.job_named(name).await {
            Ok(_) => Ok(()),
            Err(JobNameError::Slurm(err)) => Err(refusal(RefusalKind::Cluster, err.to_string())),
            Err(err) => Err(refusal(RefusalKind::Scenario, err.to_string())),
        },
        JobRef::Id(id) => match cluster.slurm.job(*id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(refusal(
                RefusalKind::Scenario,
                format!("Slurm has no job {id} (ended and forgotten, or never submitted)"),
            )),
            Err(err) => Err(refusal(RefusalKind::Cluster, err.to_string())),
        },
    }
}

/// A process kill by pattern finds, on each target, the processes it will
/// signal (the same listing and pick as the run): none or too few is a
/// refusal now, not a failed injection after the lock. A target that
/// cannot be asked is left to the run's own check.
async fn processes_to_kill(
    cluster: &Cluster,
    scenario: &Scenario,
    targets: &[String],
) -> Result<(), Refusal> {
    use crate::scenario::model::KillTarget;
    let Fault::ProcessKill(kill) = &scenario.fault else {
        return Ok(());
    };
    let KillTarget::Pattern(pattern) = &kill.target else {
        return Ok(());
    };
    let Ok(regex) = regex::Regex::new(pattern) else {
        return Ok(());
    };
    for target in targets {
        let listing = cluster
            .ssh
            .run(
                &cluster.node(target),
                &["sh", "-c", crate::faults::PROCESS_LISTING],
            )
            .await;
        if let Ok(out) = listing
            && let Err(why) = crate::faults::pick_processes(&out.stdout, &regex, kill.count)
        {
            return Err(Refusal {
                kind: RefusalKind::Cluster,
                why: format!("{target}: {why}"),
            });
        }
    }
    Ok(())
}

/// For a scenario whose targets are its workload's nodes (known once it
/// runs): the canary has a script, and, when the fault needs root on its
/// targets, sudo works on the nodes the canary may land on (its
/// partition's, else every usable node Slurm has; the first 64 by name:
/// the run checks its actual targets again before it injects).
async fn workload_ready(cluster: &Cluster, scenario: &Scenario) -> Result<(), Refusal> {
    use crate::scenario::model::Workload;
    if let Some(Workload::Canary(canary)) = &scenario.workload
        && canary.script.is_none()
        && cluster.profile.slurm.canary_script.is_none()
    {
        return Err(Refusal {
            kind: RefusalKind::Scenario,
            why: "the canary needs a script: set slurm.canary_script in the profile (a batch script on the shared file system, such as the lab's hpchaos-canary.sbatch) or workload.canary.script".to_owned(),
        });
    }
    let plan = crate::faults::plan(&scenario.fault, &["WORKLOAD-NODE".to_owned()]);
    let need = crate::faults::root_on_nodes(plan.inject.iter().chain(&plan.rollback));
    let Some(need) = need else {
        return Ok(());
    };
    let partition = match &scenario.workload {
        Some(Workload::Canary(canary)) => canary.partition.clone(),
        _ => None,
    };
    let candidates: Vec<String> = match partition {
        Some(p) => cluster.slurm.partition_nodes(&p).await.unwrap_or_default(),
        None => cluster
            .slurm
            .nodes()
            .await
            .map(|rows| {
                rows.into_iter()
                    .filter(|r| r.healthy())
                    .map(|r| r.name)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut names: Vec<String> = candidates;
    names.sort();
    names.dedup();
    names.truncate(64);
    let nodes: Vec<Endpoint> = names.iter().map(|n| cluster.node(n)).collect();
    let refused = sudo_refusals(cluster, &nodes, need).await;
    match refused.is_empty() {
        true => Ok(()),
        false => Err(Refusal {
            kind: RefusalKind::Cluster,
            why: refused.join("; "),
        }),
    }
}

/// Each of `nodes` on which the profile's user cannot become root with
/// `sudo -n`, in words with the fix; nothing when the user needs no sudo
/// (root, or `ssh.become: none`). A node that cannot be reached is not
/// said here: the run's own check of its targets does, in its journal.
/// `need` is why the run will want root there. Asked 16 nodes at a time.
pub async fn sudo_refusals(cluster: &Cluster, nodes: &[Endpoint], need: Root) -> Vec<String> {
    use futures::StreamExt;
    if !cluster.ssh.uses_sudo() {
        return Vec::new();
    }
    let limit = cluster.profile.ssh.command_timeout.as_std();
    let asked = futures::stream::iter(nodes)
        .map(|node| async move {
            match cluster
                .ssh
                .run_line_as(node, Some(need), "true", limit)
                .await
            {
                Ok(out) if out.status == 0 => None,
                Ok(out) => Some(format!(
                    "{}: `sudo -n true` exited {}: {}",
                    node.name,
                    out.status,
                    out.stderr.trim()
                )),
                Err(err @ crate::cluster::ssh::SshError::Sudo { .. }) => Some(err.to_string()),
                // Not reached: the run's own check of its targets says why,
                // after it has looked at their host keys (a node HyperPod
                // replaced since its key was pinned is accepted there).
                Err(_) => None,
            }
        })
        .buffer_unordered(16);
    let mut said: Vec<String> = asked.filter_map(std::future::ready).collect().await;
    said.sort();
    said
}

/// Why HyperPod will not give the recovery the scenario expects: with
/// `NodeRecovery: None` HyperPod replaces or reboots no node it (or Slurm)
/// marks; only the API's batch calls and a reboot from the node itself
/// still recover one (docs/HYPERPOD.md, the recovery flow, step 3).
pub fn recovery_refused(
    scenario: &Scenario,
    node_recovery: Option<&str>,
    cluster_name: &str,
) -> Option<String> {
    if node_recovery != Some("None") {
        return None;
    }
    let by_hyperpod = match &scenario.fault {
        Fault::NodeReplace(r) => r.method == ReplaceMethod::Slurm,
        Fault::NodeReboot(r) => r.method == RebootMethod::Slurm,
        _ => true,
    };
    let expects = scenario.expect.recovery;
    (by_hyperpod && matches!(expects, Recovery::Replace | Recovery::Reboot)).then(|| {
        format!(
            "the cluster's NodeRecovery is None (DescribeCluster): HyperPod will not {} the node it marks, so `expect.recovery: {expects}` cannot happen; set NodeRecovery to Automatic (aws sagemaker update-cluster --cluster-name {cluster_name} --node-recovery Automatic), or use the sagemaker method, or expect recovery: none",
            if expects == Recovery::Replace { "replace" } else { "reboot" }
        )
    })
}

/// Where the profile and the API disagree on a node's role: the head not
/// in a `Controller` group, a login node the API says is another role, or
/// a node of a `Login` group the profile does not list as a login node.
/// Each with its fix; none when the API gives no roles.
pub fn roles_disagree(
    profile: &Profile,
    summary: &ClusterSummary,
    nodes: &[crate::cluster::sagemaker::ApiNode],
) -> Vec<String> {
    let role = |node: &str| {
        nodes
            .iter()
            .find(|n| n.node == node)
            .and_then(|n| summary.group(&n.group))
            .and_then(|g| g.node_type.as_deref().map(|t| (t, g.name.as_str())))
    };
    let mut said = Vec::new();
    let head = &profile.head_node.name;
    if let Some((kind, group)) = role(head).filter(|(t, _)| *t != "Controller") {
        said.push(format!(
            "the profile's head_node {head} is a {kind} node in the API (instance group {group}, SlurmConfig.NodeType): set head_node.name to the controller's node"
        ));
    }
    for login in &profile.login_nodes {
        if !nodes.iter().any(|n| n.node == *login) {
            said.push(format!(
                "the profile lists {login} in login_nodes, but the API lists no such node: remove it from login_nodes, or name the node as the API does"
            ));
        }
        if let Some((kind, group)) = role(login).filter(|(t, _)| *t != "Login") {
            said.push(format!(
                "the profile lists {login} in login_nodes, but the API says it is a {kind} node (instance group {group}): remove it from login_nodes"
            ));
        }
    }
    for node in nodes {
        let Some(group) = summary.group(&node.group) else {
            continue;
        };
        if group.node_type.as_deref() == Some("Login") && !profile.login_nodes.contains(&node.node)
        {
            said.push(format!(
                "the API says {} is a Login node (instance group {}, SlurmConfig.NodeType Login), but the profile's login_nodes does not list it: add it to login_nodes",
                node.node, group.name
            ));
        }
    }
    said
}

/// The online checks: the head node over SSH, Slurm there, and the API
/// (endpoint, credentials, the cluster's existence and its node recovery).
pub async fn online(cluster: &Cluster) -> Online {
    let mut out = Vec::new();
    let mut summary_seen = None;
    let head = &cluster.slurm.head;
    match cluster.ssh.run(head, &["sinfo", "--version"]).await {
        Err(err) => out.push(format!(
            "head node {}: {err}; check head_node and ssh in the profile",
            head.name
        )),
        Ok(o) if o.status != 0 => out.push(format!(
            "head node {}: `sinfo --version` exited {}: {}; is this the Slurm controller (head_node.name)?",
            head.name,
            o.status,
            o.stderr.trim()
        )),
        Ok(o) => {
            if let Some(version) = crate::cluster::slurm::parse_version(&o.stdout) {
                let _ = cluster.slurm.version.set(version);
            }
            // The lock and every change from the head need root there.
            out.extend(sudo_refusals(cluster, std::slice::from_ref(head), Root::ClusterLock).await);
        }
    }
    let answer = match &cluster.api {
        Some(api) => Some((api, api.summary().await)),
        None => None,
    };
    let region = cluster
        .profile
        .sagemaker
        .as_ref()
        .map_or("", |s| s.region.as_str());
    match answer {
        Some((api, Ok(summary))) => {
            if summary.groups.iter().any(|g| g.node_type.is_some()) {
                match api.nodes().await {
                    Ok(nodes) => out.extend(roles_disagree(&cluster.profile, &summary, &nodes)),
                    Err(err) => out.push(format!("{err}; {}", err.hint(region))),
                }
            }
            summary_seen = Some(summary);
            // Every other read the run makes, tried now: a permission
            // missing is said before anything is done, with the action.
            if let Err(err) = api.try_reads().await {
                out.push(format!("{err}; {}", err.hint(region)));
            }
        }
        Some((_, Err(err))) => out.push(format!("{err}; {}", err.hint(region))),
        None => {}
    }
    Online {
        problems: out,
        cluster: summary_seen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::sagemaker::{ApiNode, GroupSummary};

    fn node(name: &str, group: &str) -> ApiNode {
        ApiNode {
            node: name.into(),
            instance_id: format!("i-{name}"),
            group: group.into(),
            status: "Running".into(),
            launch_time: None,
            status_message: None,
        }
    }

    fn group(name: &str, node_type: &str) -> GroupSummary {
        GroupSummary {
            name: name.into(),
            node_type: Some(node_type.into()),
            ..GroupSummary::default()
        }
    }

    /// The API's roles against the profile's names: a login group called
    /// `frontend` is a login group; each disagreement says its fix.
    #[test]
    fn the_profile_and_the_apis_roles_must_agree() {
        let profile = crate::scenario::parse_profile(
            Path::new("p.yaml"),
            "name: c\nhead_node: { name: ip-10-1-0-10 }\nlogin_nodes: [ip-10-1-0-9]\nssh: { user: ubuntu, known_hosts: /dev/null }\n",
        )
        .unwrap();
        let summary = ClusterSummary {
            arn: "arn".into(),
            groups: vec![
                group("controller", "Controller"),
                group("frontend", "Login"),
                group("workers", "Compute"),
            ],
            node_recovery: "Automatic".into(),
        };
        let agree = [
            node("ip-10-1-0-10", "controller"),
            node("ip-10-1-0-9", "frontend"),
            node("ip-10-1-0-11", "workers"),
        ];
        assert!(roles_disagree(&profile, &summary, &agree).is_empty());
        // A second login node the profile does not know; its one login
        // node is a compute node in the API; the head is not a controller.
        let disagree = [
            node("ip-10-1-0-10", "workers"),
            node("ip-10-1-0-9", "workers"),
            node("ip-10-1-0-8", "frontend"),
        ];
        let said = roles_disagree(&profile, &summary, &disagree);
        assert_eq!(said.len(), 3, "{said:#?}");
        assert!(
            said[0].contains("head_node ip-10-1-0-10 is a Compute node"),
            "{said:?}"
        );
        assert!(said[1].contains("remove it from login_nodes"), "{said:?}");
        assert!(
            said[2].contains("ip-10-1-0-8 is a Login node (instance group frontend")
                && said[2].contains("add it to login_nodes"),
            "{said:?}"
        );
        // An API without roles (older clusters): nothing to compare.
        let unknown = ClusterSummary {
            groups: vec![GroupSummary {
                name: "workers".into(),
                ..GroupSummary::default()
            }],
            ..summary
        };
        assert!(roles_disagree(&profile, &unknown, &disagree[..2]).is_empty());
    }
}
