//! Slurm on the head node, over SSH: the commands the harness runs, and
//! pure parsers of their text output (explicit `-o` formats and
//! `scontrol -o`, the interfaces that stay stable across Slurm releases).

use super::privilege::Root;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::hostlist::HostListError;
use super::job_state::JobState;
use super::node_state::NodeState;
use super::ssh::{Endpoint, SshError, SshPool};

/// Why a file on the head node (the controller log) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The head node could not be reached or the command not run.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The head answered and said why (`stat`'s or `tail`'s stderr, e.g.
    /// no such file, permission denied).
    #[error("{said}")]
    Unreadable { path: String, said: String },
}

impl FileError {
    fn unreadable(path: &str, stderr: &str) -> FileError {
        FileError::Unreadable {
            path: path.to_owned(),
            said: stderr.trim().to_owned(),
        }
    }
}

/// The `sinfo` format the harness reads: node, extended state, reason,
/// reason time (set by slurmctld), who set it.
pub const SINFO_FORMAT: &str = "%N|%T|%E|%H|%u";

/// When a node's kernel booted and its slurmd started, as slurmd reports
/// them to slurmctld (`BootTime`, `SlurmdStartTime` of `scontrol show
/// node`), in UTC; `None` when Slurm prints `None`/`Unknown`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BootWitness {
    pub boot_time: Option<DateTime<Utc>>,
    pub slurmd_started: Option<DateTime<Utc>>,
}

/// One node as `sinfo` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    /// The state, decoded once (see [`NodeState`]).
    pub state: NodeState,
    /// Every character of it (it may hold `|`, `:` and spaces); empty
    /// when none.
    pub reason: String,
    /// When slurmctld set the reason.
    pub reason_time: Option<DateTime<Utc>>,
}

impl NodeRow {
    /// Usable: up, responding, able to run jobs, judged by the state alone.
    ///
    /// A reason on a usable node is left over, not a fault: Slurm 24.11
    /// without accounting storage keeps a node's reason when it is resumed
    /// or returns to service, and clears it only when a job is allocated
    /// there (`clusteracct_storage_g_node_up` returns before clearing it
    /// when the accounting plugin is a no-op; `make_node_alloc` clears it;
    /// SchedMD/slurm `src/interfaces/accounting_storage.c`,
    /// `src/slurmctld/node_mgr.c`, slurm-24-11-5-1). 22.05 cleared it on
    /// resume. See [`NodeRow::stale_reason`].
    pub fn healthy(&self) -> bool {
        self.state.is_usable()
    }

    /// The reason a usable node still carries (`idle` with
    /// `Action:Reboot` after a reboot, on Slurm 24.11): informational, not a
    /// mark; `None` when the node has none or is out of service.
    pub fn stale_reason(&self) -> Option<&str> {
        (self.state.is_usable() && !self.reason.is_empty()).then_some(self.reason.as_str())
    }

    /// `name state reason`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.name, self.state, self.reason)
            .trim_end()
            .to_owned()
    }
}

/// Slurm timestamps are the controller's local time; clusters run in UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// `SIZE\nTEXT`, as [`Slurm::read_log`]'s script prints it.
pub fn split_sized(output: &str) -> Option<(u64, &str)> {
    let (size, text) = output.split_once('\n')?;
    Some((size.trim().parse().ok()?, text))
}

/// Lines of `sinfo -N -h -o '%N|%T|%E|%H|%u'`. The reason is free text
/// and may itself hold `|`: the name and state are the first two fields,
/// the time and user the last two (neither can hold `|`), and the reason
/// everything between.
pub fn parse_sinfo(text: &str) -> Vec<NodeRow> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once('|')?;
            let (state, rest) = rest.split_once('|')?;
            let (rest, _user) = rest.rsplit_once('|')?;
            let (reason, reason_time) = rest.rsplit_once('|')?;
            let reason = if reason == "none" { "" } else { reason };
            Some(NodeRow {
                name: name.trim().to_owned(),
                state: NodeState::parse(state),
                reason: reason.to_owned(),
                reason_time: parse_time(reason_time),
            })
        })
        .collect()
}

/// Every node once, in first-seen order: `sinfo -N` prints a node once
/// per partition it is in.
pub fn one_row_per_node(rows: Vec<NodeRow>) -> Vec<NodeRow> {
    let mut seen = std::collections::BTreeSet::new();
    rows.into_iter()
        .filter(|row| seen.insert(row.name.clone()))
        .collect()
}

/// Lines of `sinfo -a -h -o '%T|%N'`: the cluster grouped by state (one
/// line per partition and state, or per state when the partitions agree),
/// each with its compressed host list. The answer grows with the number of
/// states and partitions, not of nodes, so a watch can count the cluster's
/// unhealthy nodes each poll on a cluster of thousands.
pub fn parse_state_groups(text: &str) -> Vec<(NodeState, String)> {
    text.lines()
        .filter_map(|line| {
            let (state, hosts) = line.split_once('|')?;
            let hosts = hosts.trim();
            (!hosts.is_empty()).then(|| (NodeState::parse(state), hosts.to_owned()))
        })
        .collect()
}

/// Whether a Slurm reason is one of HyperPod's marks (`Action:Replace`,
/// `Action:Reboot`, ...), which its health agent sets as the node's reason
/// (docs/HYPERPOD.md, the recovery flow).
pub fn is_hyperpod_mark(reason: &str) -> bool {
    reason.starts_with("Action:")
}

/// Whether a Slurm reason on a node out of service marks it for a repair
/// that wipes it or restarts it: HyperPod's `Action:Replace` and
/// `Action:Reboot` (docs/HYPERPOD.md, the recovery flow).
pub fn marks_for_repair(reason: &str) -> bool {
    reason.starts_with("Action:Replace") || reason.starts_with("Action:Reboot")
}

/// The nodes out of service in `groups` (see [`parse_state_groups`]), each
/// once however many partitions list it: every node whose state is not
/// usable ([`NodeRow::healthy`]'s rule), except `FUTURE` ones (declared
/// for later, not part of the cluster yet).
///
/// Errors: a host list that does not expand.
pub fn unhealthy_in_groups(
    groups: &[(NodeState, String)],
) -> Result<std::collections::BTreeSet<String>, HostListError> {
    nodes_in_groups(groups, |state| {
        !state.is_usable() && state.condition() != super::node_state::Condition::Future
    })
}

/// The nodes idle and usable in `groups` (see [`parse_state_groups`]),
/// each once: what a scheduled run may count on (`run --if-idle N`).
///
/// Errors: a host list that does not expand.
pub fn idle_in_groups(
    groups: &[(NodeState, String)],
) -> Result<std::collections::BTreeSet<String>, HostListError> {
    nodes_in_groups(groups, |state| {
        state.base == super::node_state::Base::Idle && state.is_usable()
    })
}

/// The nodes of the groups whose state `keep` accepts, each once (a node
/// in several partitions is in several groups). Errors: a host list that
/// does not expand.
fn nodes_in_groups(
    groups: &[(NodeState, String)],
    keep: impl Fn(&NodeState) -> bool,
) -> Result<std::collections::BTreeSet<String>, HostListError> {
    let mut out = std::collections::BTreeSet::new();
    for (_, hosts) in groups.iter().filter(|(state, _)| keep(state)) {
        out.extend(super::hostlist::expand(hosts)?);
    }
    Ok(out)
}

/// Lines of `sinfo -N -o SINFO_FORMAT`, each node once, reason times
/// turned from the controller's local time (UTC offset `offset`) to UTC.
fn rows_in_utc(text: &str, offset: chrono::FixedOffset) -> Vec<NodeRow> {
    let mut rows = one_row_per_node(parse_sinfo(text));
    for row in &mut rows {
        row.reason_time = row
            .reason_time
            .and_then(|t| crate::cluster::controller_log::local_to_utc(t.naive_utc(), offset));
    }
    rows
}

/// The rows of `names` in [`Slurm::nodes_named_text`]'s text, each once,
/// reason times in UTC (the controller's offset `offset`).
pub fn rows_named(text: &str, offset: chrono::FixedOffset, names: &[String]) -> Vec<NodeRow> {
    let mut rows = rows_in_utc(text, offset);
    rows.retain(|r| names.contains(&r.name));
    rows
}

/// Each node's boot witnesses in [`Slurm::node_boots_text`]'s text, turned
/// from the controller's local time (UTC offset `offset`) to UTC.
pub fn boots_in_utc(text: &str, offset: chrono::FixedOffset) -> Vec<(String, BootWitness)> {
    let utc = |t: Option<DateTime<Utc>>| {
        t.and_then(|t| crate::cluster::controller_log::local_to_utc(t.naive_utc(), offset))
    };
    parse_node_boots(text)
        .into_iter()
        .map(|(name, boot)| {
            let boot = BootWitness {
                boot_time: utc(boot.boot_time),
                slurmd_started: utc(boot.slurmd_started),
            };
            (name, boot)
        })
        .collect()
}

/// How long a requeued job waits before it may run again, in seconds, and
/// where that comes from, from `scontrol show config`'s text:
/// `SchedulerParameters` `requeue_delay=` (Slurm 25.11), else `AuthInfo`
/// `cred_expire=`, else Slurm's default, 120 s (slurm.conf(5),
/// `requeue_delay`: "Defaults to the AuthInfo=cred_expire setting, which
/// itself defaults to 120 seconds").
pub fn requeue_delay(config: &str) -> (u64, &'static str) {
    let setting = |key: &str, option: &str| {
        config
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once('=')?;
                (name.trim() == key).then(|| value.trim().to_owned())
            })
            .and_then(|value| {
                value
                    .split(',')
                    .find_map(|o| o.trim().strip_prefix(option)?.parse::<u64>().ok())
            })
    };
    if let Some(delay) = setting("SchedulerParameters", "requeue_delay=") {
        return (delay, "SchedulerParameters requeue_delay");
    }
    if let Some(delay) = setting("AuthInfo", "cred_expire=") {
        return (delay, "AuthInfo cred_expire");
    }
    (120, "Slurm's default")
}

/// One job as `scontrol -o show job` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: u64,
    pub name: String,
    /// Decoded once (see [`JobState`]).
    pub state: JobState,
    pub reason: String,
    pub restarts: u32,
    /// Compressed host list, e.g. `ip-10-1-0-[11-12]`.
    pub node_list: String,
    pub stdout: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    /// GPUs allocated to the job: `gres/gpu=N` of `AllocTRES` (or of
    /// `TRES`, as Slurm 22.05 prints it); `None` when it has none listed.
    pub gpus: Option<u32>,
    /// Nodes allocated (`NumNodes`, the lower bound of `1-2` forms).
    pub nodes: Option<u32>,
    /// The node its batch script runs on (`BatchHost`).
    pub batch_host: Option<String>,
    /// When it was submitted (`SubmitTime`): a requeue sets it anew
    /// (SchedMD/slurm `src/slurmctld/job_mgr.c`, the requeue path:
    /// `job_ptr->details->submit_time = now`).
    pub submit_time: Option<DateTime<Utc>>,
    /// Its owner's name (`UserId=ubuntu(1000)` → `ubuntu`).
    pub user: Option<String>,
    /// An array task's array job and task (`ArrayJobId`, `ArrayTaskId`).
    pub array: Option<(u64, String)>,
    /// Working directory (`WorkDir`): where a relative output path is.
    pub work_dir: Option<String>,
    /// How many records made it: a heterogeneous job's leader shows one
    /// per component ([`merge_job_records`]).
    pub components: u32,
}

/// The GPU count in a TRES list (`cpu=2,mem=4G,node=1,gres/gpu=16`); the
/// typed form `gres/gpu:h100=8` counts too.
pub fn gpus_in_tres(tres: &str) -> Option<u32> {
    let mut total = None;
    for item in tres.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        let untyped = key == "gres/gpu";
        let typed = key.starts_with("gres/gpu:");
        if untyped || typed {
            let n: u32 = value.trim().parse().ok()?;
            // The untyped total already counts the typed ones.
            if untyped {
                return Some(n);
            }
            total = Some(total.unwrap_or(0) + n);
        }
    }
    total
}

/// `Key=Value Key=Value ...` of `scontrol -o show job`; values with spaces
/// (`Command=`, `WorkDir=`) are read up to the next key.
pub fn parse_scontrol_job(line: &str) -> Option<JobInfo> {
    let mut fields = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for word in line.split(' ') {
        match word.split_once('=') {
            Some((key, value))
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') =>
            {
                if let Some((k, v)) = current.take() {
                    fields.insert(k, v);
                }
                current = Some((key.to_owned(), value.to_owned()));
            }
            _ => {
                if let Some((_, value)) = current.as_mut() {
                    value.push(' ');
                    value.push_str(word);
                }
            }
        }
    }
    if let Some((k, v)) = current {
        fields.insert(k, v);
    }
    let get = |key: &str| fields.get(key).map(|v| v.trim().to_owned());
    Some(JobInfo {
        id: get("JobId")?.parse().ok()?,
        name: get("JobName").unwrap_or_default(),
        state: JobState::parse(&get("JobState").unwrap_or_default()),
        reason: get("Reason").unwrap_or_default(),
        restarts: get("Restarts").and_then(|r| r.parse().ok()).unwrap_or(0),
        node_list: get("NodeList")
            .filter(|n| n != "(null)")
            .unwrap_or_default(),
        stdout: get("StdOut"),
        start_time: get("StartTime").as_deref().and_then(parse_time),
        gpus: get("AllocTRES")
            .or_else(|| get("TRES"))
            .as_deref()
            .and_then(gpus_in_tres),
        nodes: get("NumNodes").and_then(|n| n.split('-').next().and_then(|n| n.parse().ok())),
        batch_host: get("BatchHost").filter(|h| !h.is_empty() && h != "(null)"),
        submit_time: get("SubmitTime").as_deref().and_then(parse_time),
        user: get("UserId").map(|u| u.split('(').next().unwrap_or("").to_owned()),
        array: get("ArrayJobId")
            .and_then(|a| a.parse().ok())
            .zip(get("ArrayTaskId")),
        work_dir: get("WorkDir"),
        components: 1,
    })
}

impl JobInfo {
    /// Its output file: `StdOut` with its patterns expanded
    /// ([`expand_output_path`]); `None` when Slurm shows none.
    pub fn output_path(&self) -> Option<String> {
        self.stdout
            .as_deref()
            .map(|pattern| expand_output_path(pattern, self))
    }
}

/// The records `scontrol -o show job ID` printed (one line each) as one
/// job: a heterogeneous job's leader prints a record per component
/// (SchedMD/slurm `doc/html/heterogeneous_jobs.shtml`: "A request for a
/// specific job ID that identifies a ID of the first component ... will
/// return information about all components"; field case 18). The job is
/// the first record's, on every component's nodes, with their GPUs and
/// nodes summed; running while any component runs; requeued as often as
/// its most requeued component. `None` when no line is a job record.
pub fn merge_job_records(text: &str) -> Option<JobInfo> {
    let records: Vec<JobInfo> = text.lines().filter_map(parse_scontrol_job).collect();
    let (first, rest) = records.split_first()?;
    let mut job = first.clone();
    for other in rest {
        if !other.node_list.is_empty() {
            job.node_list = if job.node_list.is_empty() {
                other.node_list.clone()
            } else {
                format!("{},{}", job.node_list, other.node_list)
            };
        }
        // Both known: combined; one known: that one.
        fn both<T>(a: Option<T>, b: Option<T>, f: impl Fn(T, T) -> T) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(f(a, b)),
                (a, b) => a.or(b),
            }
        }
        job.gpus = both(job.gpus, other.gpus, |a, b| a + b);
        job.nodes = both(job.nodes, other.nodes, |a, b| a + b);
        job.start_time = both(job.start_time, other.start_time, std::cmp::min);
        job.restarts = job.restarts.max(other.restarts);
        if !job.state.is_running() && other.state.is_running() {
            job.state = other.state.clone();
        }
        job.components += 1;
    }
    Some(job)
}

/// An output path as `sbatch --output` takes it, its filename patterns
/// expanded for the batch step (sbatch(1) "filename pattern"): `%%`, `%A`
/// (array job), `%a` (array task), `%J` and `%j` (job id), `%N` (the batch
/// host's short name), `%n` and `%t` (0 for the batch step), `%s`
/// (`batch`), `%u` (user), `%x` (job name); a number after `%` pads with
/// zeros (`%4j` → `0042`). A relative path is under the job's `WorkDir`.
/// Slurm 24.11's `scontrol show job` prints `StdOut` expanded already;
/// older releases and `StdOut` read elsewhere may not.
pub fn expand_output_path(pattern: &str, job: &JobInfo) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut width = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(*d);
            chars.next();
        }
        let pad = |v: String| match width.parse::<usize>() {
            Ok(w) if v.chars().all(|c| c.is_ascii_digit()) => format!("{v:0>w$}"),
            _ => v,
        };
        let array_job = job.array.as_ref().map(|(a, _)| a.to_string());
        let value = match chars.next() {
            Some('%') => "%".to_owned(),
            Some('A') => pad(array_job.unwrap_or_else(|| job.id.to_string())),
            Some('a') => pad(job
                .array
                .as_ref()
                .map_or("4294967294".to_owned(), |(_, t)| t.clone())),
            Some('J') | Some('j') => pad(job.id.to_string()),
            Some('N') => job
                .batch_host
                .as_deref()
                .map(|h| h.split('.').next().unwrap_or(h).to_owned())
                .unwrap_or_default(),
            Some('n') | Some('t') => pad("0".to_owned()),
            Some('s') => "batch".to_owned(),
            Some('u') => job.user.clone().unwrap_or_default(),
            Some('x') => job.name.clone(),
            Some(other) => format!("%{width}{other}"),
            None => format!("%{width}"),
        };
        out.push_str(&value);
    }
    match job.work_dir.as_deref() {
        Some(dir) if !out.starts_with('/') && !dir.is_empty() => {
            format!("{}/{out}", dir.trim_end_matches('/'))
        }
        _ => out,
    }
}

/// `squeue -o` fields for [`parse_job_list`]: job id, its display id
/// (`4242_1`, `4242_[3-8]`, `4242+0`), state.
pub const JOB_LIST_FORMAT: &str = "%A|%i|%T";

/// One line of `squeue -o '%A|%i|%T'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobListed {
    /// The job id Slurm gave this array task or het-job part (`%A`).
    pub id: u64,
    /// As squeue shows it: `4242`, `4242_1`, `4242_[3-8]` (pending tasks
    /// collapsed), `4242+0`.
    pub display: String,
    pub state: JobState,
}

/// Why a job name does not name one job.
#[derive(Debug, thiserror::Error)]
pub enum JobNameError {
    #[error(transparent)]
    Slurm(#[from] SshError),
    #[error("no job named {0} is in Slurm's queue")]
    NoJob(String),
    #[error("{} running jobs are named {name} (ids {}): name the one to watch by id (`job: {{ id: N }}`)", ids.len(), ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))]
    Several { name: String, ids: Vec<u64> },
}

/// The job `name` names among squeue's rows: the running one (a het job's
/// parts are one job, its leader's id; each array task is a job of its
/// own, as its `%A` id), else the first pending one. Errors: no row, or
/// several jobs running under the name (watching one at random would
/// judge the wrong job).
pub fn one_job_named(jobs: &[JobListed], name: &str) -> Result<u64, JobNameError> {
    let job_of = |j: &JobListed| match split_job_display(&j.display) {
        Some((leader, Some(part))) if j.display.contains('+') && !part.is_empty() => leader,
        _ => j.id,
    };
    let mut running: Vec<u64> = jobs
        .iter()
        .filter(|j| j.state.is_running())
        .map(job_of)
        .collect();
    running.dedup();
    match running.as_slice() {
        [one] => Ok(*one),
        [] => jobs
            .first()
            .map(job_of)
            .ok_or_else(|| JobNameError::NoJob(name.to_owned())),
        several => Err(JobNameError::Several {
            name: name.to_owned(),
            ids: several.to_vec(),
        }),
    }
}

/// Parses `squeue -o '%A|%i|%T'` lines; lines it cannot read are skipped.
pub fn parse_job_list(text: &str) -> Vec<JobListed> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '|');
            Some(JobListed {
                id: fields.next()?.trim().parse().ok()?,
                display: fields.next()?.trim().to_owned(),
                state: JobState::parse(fields.next().unwrap_or("")),
            })
        })
        .collect()
}

/// What a display job id (`%i`) says: the array or het job it belongs to,
/// and the task (`1`, `[3-8]`) or part (`+0`), if any.
pub fn split_job_display(display: &str) -> Option<(u64, Option<&str>)> {
    let cut = display.find(['_', '+']);
    let (job, rest) = match cut {
        Some(i) => (&display[..i], Some(&display[i + 1..])),
        None => (display, None),
    };
    Some((job.trim().parse().ok()?, rest))
}

/// `Submitted batch job 42` → 42.
pub fn parse_sbatch(text: &str) -> Option<u64> {
    text.trim()
        .strip_prefix("Submitted batch job ")?
        .trim()
        .parse()
        .ok()
}

/// Slurm on one cluster's head node.
#[derive(Clone)]
pub struct Slurm {
    pub ssh: Arc<SshPool>,
    pub head: Endpoint,
    /// The controller's UTC offset, asked once (`date +%z` on the head):
    /// Slurm prints local times without an offset.
    pub offset: Arc<std::sync::OnceLock<chrono::FixedOffset>>,
    /// The controller's Slurm release (`24.11.5`), once the preflight's
    /// `sinfo --version` has read it.
    pub version: Arc<std::sync::OnceLock<String>>,
    /// The requeue delay, once read (see [`Slurm::requeue_delay`]): read
    /// before the fault, since a fault on slurmctld leaves no controller
    /// to ask after it.
    pub requeue: Arc<std::sync::OnceLock<(u64, &'static str)>>,
}

/// `BootTime` and `SlurmdStartTime` of each node in `scontrol -o show node`
/// (one line per node), as the controller's local time; `None`/`Unknown`
/// are absent. (node name, witness) pairs.
pub fn parse_node_boots(text: &str) -> Vec<(String, BootWitness)> {
    text.lines()
        .filter_map(|line| {
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(key))
                    .and_then(parse_time)
            };
            let name = line
                .split_whitespace()
                .find_map(|f| f.strip_prefix("NodeName="))?;
            Some((
                name.to_owned(),
                BootWitness {
                    boot_time: field("BootTime="),
                    slurmd_started: field("SlurmdStartTime="),
                },
            ))
        })
        .collect()
}

/// The release in `sinfo --version`'s answer: `slurm 24.11.5` (SchedMD's
/// builds, HyperPod) or `slurm-wlm 24.11.5` (Debian's) → `24.11.5`.
pub fn parse_version(output: &str) -> Option<String> {
    let line = output.lines().next()?.trim();
    let (name, version) = line.split_once(' ')?;
    (name.starts_with("slurm") && version.starts_with(|c: char| c.is_ascii_digit()))
        .then(|| version.trim().to_owned())
}

impl Slurm {
    async fn head<S: AsRef<str>>(&self, argv: &[S]) -> Result<String, SshError> {
        self.head_as(None, argv).await
    }

    /// A read-only Slurm command's output on the head, pinned as every
    /// command here is (`slurm_env`); errors name the command.
    pub async fn head_text<S: AsRef<str>>(&self, argv: &[S]) -> Result<String, SshError> {
        self.head(argv).await
    }

    /// `argv` on the head, as root when `root` says why (see [`Root`]);
    /// its stdout. Errors: it could not run, or failed (exit and stderr).
    async fn head_as<S: AsRef<str>>(
        &self,
        root: Option<Root>,
        argv: &[S],
    ) -> Result<String, SshError> {
        let line = super::slurm_env::line(argv);
        let limit = self.ssh.command_timeout();
        let out = self.ssh.run_line_as(&self.head, root, &line, limit).await?;
        let failed = |detail: String| SshError::Command {
            host: self.head.name.clone(),
            command: argv
                .iter()
                .map(|a| a.as_ref())
                .collect::<Vec<_>>()
                .join(" "),
            detail,
        };
        // Output too large to keep whole is never parsed as if it were.
        if super::capped::was_cut(&out.stdout) {
            return Err(failed(format!(
                "its output was larger than the {} MiB kept: not read",
                2 * super::capped::KEEP / (1024 * 1024)
            )));
        }
        if out.status == 0 {
            Ok(out.stdout)
        } else {
            Err(failed(format!(
                "exit {}: {}",
                out.status,
                out.stderr.trim()
            )))
        }
    }

    /// Every node once (`sinfo -N` prints a node once per partition; `-a`
    /// includes hidden partitions), reason times in UTC.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, SshError> {
        let offset = self.utc_offset().await;
        self.head(&["sinfo", "-a", "-N", "-h", "-o", SINFO_FORMAT])
            .await
            .map(|t| rows_in_utc(&t, offset))
    }

    /// The rows of `names` only, each once (`sinfo -a -N -n A,B`): what a
    /// watch needs of its targets, whatever the cluster's size. A name
    /// Slurm does not know is simply absent (sinfo prints nothing for it).
    pub async fn nodes_named(&self, names: &[String]) -> Result<Vec<NodeRow>, SshError> {
        let offset = self.utc_offset().await;
        self.nodes_named_text(names)
            .await
            .map(|t| rows_named(&t, offset, names))
    }

    /// `sinfo`'s text for [`Slurm::nodes_named`], as printed (a watch's
    /// recording keeps it; [`rows_named`] decodes it).
    pub async fn nodes_named_text(&self, names: &[String]) -> Result<String, SshError> {
        if names.is_empty() {
            return Ok(String::new());
        }
        let list = names.join(",");
        self.head(&["sinfo", "-a", "-N", "-h", "-n", &list, "-o", SINFO_FORMAT])
            .await
    }

    /// The cluster grouped by state (see [`parse_state_groups`]).
    pub async fn state_groups(&self) -> Result<Vec<(NodeState, String)>, SshError> {
        self.state_groups_text()
            .await
            .map(|t| parse_state_groups(&t))
    }

    /// `sinfo -a -h -o %T|%N`'s text, as printed.
    pub async fn state_groups_text(&self) -> Result<String, SshError> {
        self.head(&["sinfo", "-a", "-h", "-o", "%T|%N"]).await
    }

    /// Boot and slurmd start of `nodes` (`scontrol -o show node A,B`), in
    /// UTC: what slurmd last reported.
    pub async fn node_boots(
        &self,
        nodes: &[String],
    ) -> Result<Vec<(String, BootWitness)>, SshError> {
        let offset = self.utc_offset().await;
        let text = self.node_boots_text(nodes).await?;
        Ok(boots_in_utc(&text, offset))
    }

    /// `scontrol -o show node A,B`'s text, as printed ([`boots_in_utc`]
    /// decodes it).
    pub async fn node_boots_text(&self, nodes: &[String]) -> Result<String, SshError> {
        self.head(&["scontrol", "-o", "show", "node", &nodes.join(",")])
            .await
    }

    /// The controller's UTC offset (asked once; UTC if it cannot be read,
    /// as HyperPod clusters run).
    pub async fn utc_offset(&self) -> chrono::FixedOffset {
        if let Some(offset) = self.offset.get() {
            return *offset;
        }
        let utc = chrono::FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("0 is valid"));
        match self.ssh.run(&self.head, &["date", "+%z"]).await {
            Ok(out) if out.status == 0 => {
                let offset =
                    crate::cluster::controller_log::parse_offset(&out.stdout).unwrap_or(utc);
                *self.offset.get_or_init(|| offset)
            }
            _ => utc,
        }
    }

    /// How long a requeued job waits to run again (see [`requeue_delay`]).
    /// Read once, then kept.
    pub async fn requeue_delay(&self) -> Result<(u64, &'static str), SshError> {
        if let Some(known) = self.requeue.get() {
            return Ok(*known);
        }
        let read = self
            .head(&["scontrol", "show", "config"])
            .await
            .map(|t| requeue_delay(&t))?;
        Ok(*self.requeue.get_or_init(|| read))
    }

    /// The cluster's reservations (`scontrol -o show reservation`; see
    /// [`crate::cluster::changes::parse_reservations`]).
    pub async fn reservations(
        &self,
    ) -> Result<Vec<crate::cluster::changes::Reservation>, SshError> {
        self.head(&["scontrol", "-o", "show", "reservation"])
            .await
            .map(|t| crate::cluster::changes::parse_reservations(&t))
    }

    /// The job, or `None` once Slurm has forgotten it.
    pub async fn job(&self, id: u64) -> Result<Option<JobInfo>, SshError> {
        self.job_text(id).await.map(|t| merge_job_records(&t))
    }

    /// `scontrol -o show job ID`'s text, as printed; empty once Slurm has
    /// forgotten the job (it then exits non-zero).
    pub async fn job_text(&self, id: u64) -> Result<String, SshError> {
        let out = self
            .ssh
            .run(
                &self.head,
                &["scontrol", "-o", "show", "job", &id.to_string()],
            )
            .await?;
        Ok(if out.status == 0 {
            out.stdout
        } else {
            String::new()
        })
    }

    /// The one job with this name (see [`one_job_named`]). Errors: none
    /// or several running, or squeue failed.
    pub async fn job_named(&self, name: &str) -> Result<u64, JobNameError> {
        let text = self
            .head(&["squeue", "-h", "-n", name, "-o", JOB_LIST_FORMAT])
            .await?;
        one_job_named(&parse_job_list(&text), name)
    }

    /// Expands `ip-10-1-0-[11-12]` into names (here, not on the head:
    /// see [`crate::cluster::hostlist`]).
    pub fn hostnames(&self, list: &str) -> Result<Vec<String>, HostListError> {
        if list.trim().is_empty() {
            return Ok(Vec::new());
        }
        crate::cluster::hostlist::expand(list)
    }

    pub async fn partition_nodes(&self, partition: &str) -> Result<Vec<String>, SshError> {
        let text = self
            .head(&["sinfo", "-N", "-h", "-p", partition, "-o", "%N"])
            .await?;
        let mut names: Vec<String> = text.lines().map(str::to_owned).collect();
        names.dedup();
        Ok(names)
    }

    /// `scontrol update nodename=N state=S [reason=R]`.
    pub async fn update_node(
        &self,
        node: &str,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), SshError> {
        let mut argv = vec![
            "scontrol".to_owned(),
            "update".to_owned(),
            format!("nodename={node}"),
            format!("state={state}"),
        ];
        if let Some(reason) = reason {
            argv.push(format!("reason={reason}"));
        }
        self.head_as(Some(Root::SlurmAdmin), &argv).await.map(drop)
    }

    pub async fn sbatch(&self, args: &[String]) -> Result<u64, SshError> {
        let mut argv = vec!["sbatch".to_owned()];
        argv.extend(args.iter().cloned());
        let text = self.head(&argv).await?;
        parse_sbatch(&text).ok_or_else(|| SshError::Command {
            host: self.head.name.clone(),
            command: argv.join(" "),
            detail: format!("unexpected answer: {}", text.trim()),
        })
    }

    /// Ids of the jobs whose `--comment` is exactly `comment` (how a run
    /// marks its canary, so that `recover` finds it without its id).
    pub async fn jobs_with_comment(&self, comment: &str) -> Result<Vec<u64>, SshError> {
        let text = self.head(&["squeue", "-h", "-o", "%i|%k"]).await?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('|'))
            .filter(|(_, c)| c.trim() == comment)
            .filter_map(|(id, _)| id.trim().parse().ok())
            .collect())
    }

    pub async fn scancel(&self, id: u64) -> Result<(), SshError> {
        self.head(&["scancel", &id.to_string()]).await.map(drop)
    }

    /// `scancel`, then waits (asking `scontrol show job` every 250 ms, at
    /// most `within`) until the job has left its nodes: forgotten by Slurm
    /// or in a final state. A cancelled job is `COMPLETING` (and its nodes
    /// `completing`) until its processes are gone and the epilog has run;
    /// a rollback that returned before that would hand back nodes still
    /// busy with our job. `Ok(Some(waited))` once it has left, `Ok(None)`
    /// when still there at `within`; `Err` when `scancel` fails.
    pub async fn scancel_and_wait(
        &self,
        id: u64,
        within: std::time::Duration,
    ) -> Result<Option<std::time::Duration>, SshError> {
        self.scancel(id).await?;
        let started = std::time::Instant::now();
        loop {
            let gone = match self.job(id).await {
                Ok(None) => true,
                Ok(Some(job)) => job.state.is_final(),
                // Unreadable for now: asked again until `within`.
                Err(_) => false,
            };
            if gone {
                return Ok(Some(started.elapsed()));
            }
            if started.elapsed() >= within {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// The size of a file on the head node, or why it cannot be read.
    pub async fn file_size(&self, path: &str) -> Result<u64, FileError> {
        let out = self
            .ssh
            .run_as_root(
                &self.head,
                Root::ReadLogs,
                &["stat", "-L", "-c", "%s", "--", path],
            )
            .await?;
        match out.stdout.trim().parse() {
            Ok(size) if out.status == 0 => Ok(size),
            _ => Err(FileError::unreadable(path, &out.stderr)),
        }
    }

    /// A log file's size now and what follows byte `offset`, in one call,
    /// so a caller can tell a rotated (shorter) file from a quiet one.
    pub async fn read_log(&self, path: &str, offset: u64) -> Result<(u64, String), FileError> {
        let from = format!("+{}", offset + 1);
        let script = "stat -L -c %s -- \"$1\" && tail -c \"$2\" -- \"$1\"";
        let out = self
            .ssh
            .run_as_root(
                &self.head,
                Root::ReadLogs,
                &["sh", "-c", script, "hpchaos", path, &from],
            )
            .await?;
        match split_sized(&out.stdout) {
            Some((size, text)) if out.status == 0 => Ok((size, text.to_owned())),
            _ => Err(FileError::unreadable(path, &out.stderr)),
        }
    }

    /// A growing file (a job's output) on `on` (the head when `None`):
    /// its size now, a checksum of its first `head` bytes, and at most
    /// `most` bytes from byte `offset`, as bytes (base64 on the wire: a
    /// character split at the chunk's end stays split, and offsets stay
    /// byte offsets), in one call: a file that got shorter, or whose start
    /// changed, was rewritten (a requeued job's output is truncated, see
    /// [`FileChunk`]). Errors: the file cannot be read there (`Unreadable`,
    /// with what the node said), or the node not reached.
    pub async fn read_chunk(
        &self,
        on: Option<&Endpoint>,
        path: &str,
        offset: u64,
        most: u64,
        head: u64,
    ) -> Result<FileChunk, FileError> {
        use base64::Engine;
        let script = "size=$(stat -L -c %s -- \"$1\") || exit 1; \
                      sum=$(head -c \"$4\" -- \"$1\" | cksum) || exit 1; \
                      echo \"$size $sum\"; \
                      tail -c +\"$5\" -- \"$1\" | head -c \"$6\" | base64 -w0; echo; \
                      tail -c +\"$2\" -- \"$1\" | head -c \"$3\" | base64 -w0";
        // The bytes just before `offset` as the file has them now: the same
        // as those read there, unless the file was written anew.
        let window = offset.min(head);
        let argv = [
            "sh".to_owned(),
            "-c".to_owned(),
            script.to_owned(),
            "hpchaos".to_owned(),
            path.to_owned(),
            (offset + 1).to_string(),
            most.to_string(),
            head.to_string(),
            (offset - window + 1).to_string(),
            window.to_string(),
        ];
        let endpoint = on.unwrap_or(&self.head);
        let out = self
            .ssh
            .run_as_root(endpoint, Root::ReadLogs, &argv)
            .await?;
        let (first, rest) = out.stdout.split_once('\n').unwrap_or((&out.stdout, ""));
        let (before, data) = rest.split_once('\n').unwrap_or(("", rest));
        let mut words = first.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(size)), Some(Ok(sum)), Some(Ok(_)), true) =
            (words.next(), words.next(), words.next(), out.status == 0)
        else {
            return Err(FileError::unreadable(path, &out.stderr));
        };
        let decode = |text: &str| base64::engine::general_purpose::STANDARD.decode(text.trim());
        let before = decode(before).unwrap_or_default();
        let bytes = decode(data).map_err(|e| {
            FileError::Ssh(SshError::Command {
                host: endpoint.name.clone(),
                command: format!("tail -c +{} {path} | head -c {most} | base64", offset + 1),
                detail: format!("not base64: {e}"),
            })
        })?;
        Ok(FileChunk {
            size,
            head_sum: sum,
            before,
            bytes,
        })
    }
}

/// One read of a growing file ([`Slurm::read_chunk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChunk {
    /// The file's size in bytes when read.
    pub size: u64,
    /// `cksum` of its first bytes (as many as asked): the same while the
    /// file only grows.
    pub head_sum: u64,
    /// The bytes just before the offset asked (as many as `head`, fewer
    /// near the start): the same as those read there while the file only
    /// grows; empty when not known (an older recording).
    pub before: Vec<u8>,
    /// The bytes from the offset asked, at most as many as asked.
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `requeue_delay` from SchedulerParameters (25.11), else AuthInfo's
    /// cred_expire, else 120 s; as `scontrol show config` prints them.
    #[test]
    fn a_requeued_jobs_wait_is_read_from_the_config() {
        let config = |sched: &str, auth: &str| {
            format!(
                "Configuration data as of 2026-12-03T01:00:00\nAuthInfo                = {auth}\nAuthType                = auth/munge\nSchedulerParameters     = {sched}\nSchedulerType           = sched/backfill\n"
            )
        };
        assert_eq!(
            requeue_delay(&config(
                "permit_job_expansion,requeue_delay=30",
                "cred_expire=300"
            )),
            (30, "SchedulerParameters requeue_delay")
        );
        assert_eq!(
            requeue_delay(&config("permit_job_expansion", "cred_expire=300")),
            (300, "AuthInfo cred_expire")
        );
        assert_eq!(requeue_delay(&config("(null)", "(null)")).0, 120);
        // Names that only start alike are other settings.
        assert_eq!(
            requeue_delay(&config("requeue_delay_extra=5", "(null)")).0,
            120
        );
    }

    /// Slurm 25.11 names jobs `JobId=N SLUID=...` in some log lines
    /// (log.c `%pI`): the nodes a line names are found as before.
    #[test]
    fn slurm_25_11_job_ids_with_a_sluid_do_not_hide_the_nodes() {
        let nodes = vec!["ip-10-1-0-11".to_owned(), "ip-10-1-0-12".to_owned()];
        let line = "sched: Allocate JobId=42 SLUID=sl01HZ9X4M2K NodeList=ip-10-1-0-[11-12] #CPUs=4 Partition=dev";
        assert_eq!(
            crate::cluster::hostlist::nodes_named_in(line, &nodes).len(),
            2
        );
        let line = "_job_complete: JobId=42 SLUID=sl01HZ9X4M2K WEXITSTATUS 0";
        assert!(crate::cluster::hostlist::nodes_named_in(line, &nodes).is_empty());
    }

    #[test]
    fn hyperpods_marks_are_its_action_reasons_only() {
        assert!(is_hyperpod_mark("Action:Replace"));
        assert!(is_hyperpod_mark("Action:Reboot"));
        assert!(!is_hyperpod_mark("hpchaos: drill run-1"));
        assert!(!is_hyperpod_mark("Not responding"));
        assert!(!is_hyperpod_mark(""));
    }

    const SINFO: &str = include_str!("../../../../tests/fixtures/slurm/sinfo-nodes.txt");
    const JOB: &str = include_str!("../../../../tests/fixtures/slurm/scontrol-show-job.txt");
    const CONTROLLER_LOG: &str = include_str!("../../../../tests/fixtures/slurm/slurmctld.log");

    #[test]
    fn a_jobs_gpus_are_read_from_its_tres() {
        assert_eq!(
            gpus_in_tres("cpu=192,mem=2000G,node=2,billing=192,gres/gpu=16"),
            Some(16)
        );
        assert_eq!(gpus_in_tres("cpu=2,mem=1000M,node=1,billing=2"), None);
        assert_eq!(gpus_in_tres("cpu=4,gres/gpu:h100=8,node=1"), Some(8));
        assert_eq!(
            gpus_in_tres("gres/gpu=8,gres/gpu:h100=8"),
            Some(8),
            "not counted twice"
        );
        let line = "JobId=42 JobName=canary JobState=RUNNING Reason=None Restarts=0 NodeList=ip-10-1-0-[11-12] NumNodes=2 NumCPUs=4 TRES=cpu=4,mem=2000M,node=2,billing=4,gres/gpu=16 AllocTRES=cpu=4,mem=2000M,node=2,billing=4,gres/gpu=16";
        let job = parse_scontrol_job(line).unwrap();
        assert_eq!((job.gpus, job.nodes), (Some(16), Some(2)));
    }

    #[test]
    fn unhealthy_nodes_are_counted_once_from_the_grouped_listing() {
        // Recorded from the lab (Slurm 24.11, partitions dev, p5, hidden
        // maint, fleet), with a node drained and one failed.
        let text = "drained|ip-10-1-0-12\nidle|ip-10-1-0-[11,13]\nfail|ip-10-1-0-14\n\
                    drained|ip-10-1-0-12\nidle|ip-10-1-0-[11,13]\n\
                    unknown*|ip-10-1-16-[0-255],ip-10-1-17-[0-3]\nmixed-|ip-10-1-0-15\n\
                    future|ip-10-1-0-[40-49]\n";
        let groups = parse_state_groups(text);
        assert_eq!(groups.len(), 8);
        let unhealthy = unhealthy_in_groups(&groups).unwrap();
        // 12 (once, though two partitions list it), 14, and the 260
        // unknown and not responding; not `mixed-` (usable), not `future`.
        assert_eq!(unhealthy.len(), 262);
        assert!(unhealthy.contains("ip-10-1-0-12") && unhealthy.contains("ip-10-1-17-3"));
        assert!(!unhealthy.contains("ip-10-1-0-15") && !unhealthy.contains("ip-10-1-0-40"));
        assert!(unhealthy_in_groups(&[(NodeState::parse("down"), "ip-[1-".into())]).is_err());
        // Idle: 11 and 13 (listed twice), not `mixed-`, not unknown.
        let idle = idle_in_groups(&groups).unwrap();
        assert_eq!(
            idle.into_iter().collect::<Vec<_>>(),
            vec!["ip-10-1-0-11", "ip-10-1-0-13"]
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the recorded log's year is this one's
    fn reads_the_recorded_controller_log() {
        use crate::cluster::controller_log::{Stamp, parse_line};
        use crate::cluster::hostlist::nodes_named_in;
        let utc = chrono::FixedOffset::east_opt(0).unwrap();
        let now = chrono::Utc::now();
        let nodes = vec!["ip-10-1-0-12".to_owned(), "ip-10-1-0-13".to_owned()];
        let lines: Vec<_> = CONTROLLER_LOG
            .lines()
            .map(|l| parse_line(l, utc, now))
            .collect();
        // Every line of the lab's log (iso8601_ms) is placed.
        assert_eq!(lines.len(), 32);
        assert!(lines.iter().all(|l| l.stamp == Stamp::Placed));
        let about: Vec<(String, &str, &str)> = lines
            .iter()
            .flat_map(|l| {
                nodes_named_in(l.message, &nodes).into_iter().map(|n| {
                    (
                        l.at.unwrap().format("%H:%M:%S%.3f").to_string(),
                        n.as_str(),
                        l.message,
                    )
                })
            })
            .collect();
        // Allocations (host lists) name the node too; then the mark.
        assert_eq!(about[0].0, "18:52:30.655");
        let mark = about
            .iter()
            .find(|a| a.2.contains("reason set to"))
            .unwrap();
        assert_eq!(
            *mark,
            (
                "18:52:48.722".to_owned(),
                "ip-10-1-0-12",
                "update_node: node ip-10-1-0-12 reason set to: Action:Reboot"
            )
        );
        // A host list names its nodes.
        assert_eq!(
            nodes_named_in("sched: Allocate JobId=2 NodeList=ip-10-1-0-[11-12]", &nodes),
            vec![&nodes[0]]
        );
        assert_eq!(
            split_sized("2048\n[2026-11-28T18:52:48.722] x\n"),
            Some((2048, "[2026-11-28T18:52:48.722] x\n"))
        );
        assert_eq!(split_sized("0\n"), Some((0, "")));
        assert_eq!(split_sized("stat: cannot stat"), None);
    }

    #[test]
    fn field_case_10_array_tasks_are_jobs() {
        let text = include_str!("../../../../tests/fixtures/field-cases/10-squeue-array-job.txt");
        let shown: Vec<(u64, Option<&str>)> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(split_job_display)
            .collect();
        assert_eq!(
            shown,
            [(4242, Some("1")), (4242, Some("2")), (4242, Some("[3-8]"))]
        );
        assert_eq!(split_job_display("4242+0"), Some((4242, Some("0"))));
        assert_eq!(split_job_display("17"), Some((17, None)));
        // What jobs_named reads: each running task has its own job id.
        let listed =
            parse_job_list("4243|4242_1|RUNNING\n4244|4242_2|RUNNING\n4242|4242_[3-8]|PENDING\n");
        assert_eq!(
            listed
                .iter()
                .filter(|j| j.state.is_running())
                .map(|j| (j.id, j.display.as_str()))
                .collect::<Vec<_>>(),
            [(4243, "4242_1"), (4244, "4242_2")]
        );
        assert_eq!(listed[2].display, "4242_[3-8]");
    }

    #[test]
    fn parses_recorded_sinfo() {
        let rows = parse_sinfo(SINFO);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].state.raw, "allocated");
        assert!(rows[0].healthy());
        assert_eq!(rows[2].reason, "maintenance window");
        assert_eq!(rows[3].state.raw, "fail");
        assert_eq!(rows[3].reason, "Action:Reboot");
        assert_eq!(rows[3].reason_time, parse_time("2026-11-28T16:07:41"));
        assert!(!rows[3].healthy());
    }

    #[test]
    fn boot_and_slurmd_start_are_read_from_scontrol() {
        let text = "NodeName=ip-10-1-0-11 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 State=IDLE ThreadsPerCore=1 BootTime=2026-11-29T14:53:55 SlurmdStartTime=2026-11-29T14:54:01 LastBusyTime=2026-11-29T14:54:01 ResumeAfterTime=None\n\
                    NodeName=ip-10-1-0-12 Arch=x86_64 State=DOWN+NOT_RESPONDING BootTime=None SlurmdStartTime=Unknown\n";
        let boots = parse_node_boots(text);
        assert_eq!(boots.len(), 2);
        assert_eq!(boots[0].0, "ip-10-1-0-11");
        assert_eq!(boots[0].1.boot_time, parse_time("2026-11-29T14:53:55"));
        assert_eq!(boots[0].1.slurmd_started, parse_time("2026-11-29T14:54:01"));
        assert_eq!(boots[1].1, BootWitness::default());
    }

    #[test]
    fn the_release_is_read_from_any_build_of_sinfo() {
        assert_eq!(parse_version("slurm 24.11.5\n").as_deref(), Some("24.11.5"));
        assert_eq!(
            parse_version("slurm-wlm 22.05.8\n").as_deref(),
            Some("22.05.8")
        );
        assert_eq!(
            parse_version("slurm 25.11.0-0rc1\n").as_deref(),
            Some("25.11.0-0rc1")
        );
        assert_eq!(parse_version("sinfo: error: no config\n"), None);
        assert_eq!(parse_version(""), None);
    }

    /// Slurm 24.11 (no accounting) resumes a node and keeps its reason:
    /// healthy by its state, the reason stale; out of service, it is a mark.
    #[test]
    fn a_reason_on_a_usable_node_is_stale() {
        let rows = parse_sinfo(
            "a|idle|Action:Reboot|2026-11-28T16:07:41|root\n\
             b|mixed-|Action:Replace|2026-11-28T16:07:41|root\n\
             c|planned|maintenance|2026-11-28T16:07:41|root\n\
             d|drained|Action:Reboot|2026-11-28T16:07:41|root\n\
             e|idle|none|Unknown|Unknown\n",
        );
        let judged: Vec<_> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.healthy(), r.stale_reason()))
            .collect();
        assert_eq!(
            judged,
            vec![
                ("a", true, Some("Action:Reboot")),
                ("b", true, Some("Action:Replace")),
                ("c", true, Some("maintenance")),
                ("d", false, None),
                ("e", true, None),
            ]
        );
    }

    #[test]
    fn flags_are_decoded_with_the_state() {
        let rows = parse_sinfo("ip-10-1-0-12|down*|Not responding|2026-11-28T10:00:00|slurm\n");
        assert!(rows[0].state.not_responding());
        assert_eq!(
            rows[0].state.condition(),
            crate::cluster::node_state::Condition::Down
        );
    }

    /// A field case without its `#` comment lines.
    fn uncommented(text: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn a_reason_keeps_every_character_and_its_time() {
        let rows = parse_sinfo(
            "ip-10-1-0-12|drained|gpu check | nvlink down: see dmesg|2026-11-28T16:07:41|root\n",
        );
        assert_eq!(rows[0].reason, "gpu check | nvlink down: see dmesg");
        assert_eq!(rows[0].reason_time, parse_time("2026-11-28T16:07:41"));
        let rows =
            parse_sinfo("n1|fail|a|b|c|2026-11-28T16:07:41|root\nn2|idle|none|Unknown|Unknown\n");
        assert_eq!(rows[0].reason, "a|b|c");
        assert_eq!(rows[1].reason, "");
        assert_eq!(rows[1].reason_time, None);
    }

    #[test]
    fn field_case_01_counts_nodes_not_rows() {
        let text = uncommented(include_str!(
            "../../../../tests/fixtures/field-cases/01-multi-partition-sinfo.txt"
        ));
        let rows = one_row_per_node(parse_sinfo(&text));
        assert_eq!(rows.len(), 4);
        assert_eq!(rows.iter().filter(|r| r.healthy()).count(), 3);
        assert_eq!(rows.iter().filter(|r| !r.healthy()).count(), 1);
        assert_eq!(rows[3].reason_time, parse_time("2026-11-28T16:07:41"));
    }

    /// Slurm prints times in the format of its process's environment: the
    /// rows under every `SLURM_TIME_FORMAT` the case shows, and the one
    /// hpchaos asks for on every Slurm command it runs.
    #[test]
    fn field_case_19_times_are_read_in_the_format_pinned() {
        let text = uncommented(include_str!(
            "../../../../tests/fixtures/field-cases/19-sinfo-slurm-time-format.txt"
        ));
        let under = |format: &str| {
            let rows: String = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("@{format}|")))
                .map(|l| format!("{l}\n"))
                .collect();
            parse_sinfo(&rows)
        };
        let right = chrono::DateTime::parse_from_rfc3339("2026-11-28T16:07:41Z")
            .unwrap()
            .to_utc();
        let standard = under("standard");
        assert_eq!(standard.len(), 2);
        assert_eq!(standard[1].reason, "Action:Replace");
        assert_eq!(standard[1].reason_time, Some(right));
        assert!(standard[0].healthy() && standard[0].reason_time.is_none());
        // The other formats are not read as times (nor misread as others):
        // what makes the time right is the format hpchaos pins.
        for other in ["relative", "%FT%T%z", "%s"] {
            let rows = under(other);
            assert_eq!(rows[1].reason, "Action:Replace", "{other}");
            assert_ne!(
                rows[1].reason_time,
                Some(right - chrono::TimeDelta::hours(1))
            );
        }
        let line =
            crate::cluster::slurm_env::line(&["sinfo", "-a", "-N", "-h", "-o", SINFO_FORMAT]);
        assert!(
            line.contains(" SLURM_TIME_FORMAT=standard sinfo "),
            "{line}"
        );
        assert!(
            line.contains("-u SINFO_FORMAT") && line.contains("-u SINFO_SORT"),
            "{line}"
        );
    }

    /// Field case 18: a heterogeneous job's leader is all its components:
    /// on all four nodes, with 32 GPUs; the squeue rows are three jobs.
    #[test]
    fn field_case_18_a_het_job_is_all_its_components() {
        let text = uncommented(include_str!(
            "../../../../tests/fixtures/field-cases/18-het-job-leader.txt"
        ));
        let records: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("@scontrol|"))
            .map(|l| format!("{l}\n"))
            .collect();
        let job = merge_job_records(&records).unwrap();
        assert_eq!(job.id, 93);
        assert_eq!(job.components, 3);
        assert!(job.state.is_running());
        assert_eq!(
            crate::cluster::hostlist::expand(&job.node_list).unwrap(),
            [
                "ip-10-1-0-11",
                "ip-10-1-0-12",
                "ip-10-1-0-13",
                "ip-10-1-0-14"
            ]
        );
        assert_eq!(job.gpus, Some(32));
        assert_eq!(job.nodes, Some(4));
        let rows: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("@squeue|"))
            .map(|l| format!("{l}\n"))
            .collect();
        let listed = parse_job_list(&rows);
        assert_eq!(
            listed.iter().map(|j| j.id).collect::<Vec<_>>(),
            [93, 94, 95]
        );
        assert_eq!(split_job_display(&listed[1].display), Some((93, Some("1"))));
        // The three parts are one job: the leader's.
        assert_eq!(one_job_named(&listed, "train").unwrap(), 93);
        // Two jobs running under one name: refused, with their ids.
        let twins = parse_job_list("7|7|RUNNING\n8|8|RUNNING\n9|9|PENDING\n");
        let err = one_job_named(&twins, "twin").unwrap_err().to_string();
        assert!(
            err.contains("2 running jobs are named twin (ids 7, 8)"),
            "{err}"
        );
        // One running, others pending: the running one; only pending: the first.
        assert_eq!(one_job_named(&twins[1..], "twin").unwrap(), 8);
        assert_eq!(one_job_named(&twins[2..], "twin").unwrap(), 9);
        assert!(matches!(
            one_job_named(&[], "x"),
            Err(JobNameError::NoJob(_))
        ));
        // A component that still runs keeps the whole job running.
        let mixed = records.replacen("JobState=RUNNING", "JobState=COMPLETING", 1);
        assert!(merge_job_records(&mixed).unwrap().state.is_running());
        assert_eq!(
            merge_job_records("slurm_load_jobs error: Invalid job id specified"),
            None
        );
    }

    #[test]
    fn output_paths_are_expanded_as_sbatch_does() {
        let line = "JobId=4243 ArrayJobId=4242 ArrayTaskId=7 JobName=llama7b UserId=ubuntu(1000) JobState=RUNNING NodeList=ip-10-1-0-[11-12] BatchHost=ip-10-1-0-11 WorkDir=/fsx/ubuntu/runs StdOut=/fsx/logs/%x-%j.out";
        let job = parse_scontrol_job(line).unwrap();
        let cases = [
            ("/fsx/logs/%x-%j.out", "/fsx/logs/llama7b-4243.out"),
            ("/fsx/%u/%A_%a.out", "/fsx/ubuntu/4242_7.out"),
            ("/fsx/%N-%8j.log", "/fsx/ip-10-1-0-11-00004243.log"),
            ("/fsx/%%j-%J.%s.%n.%t", "/fsx/%j-4243.batch.0.0"),
            ("slurm-%j.out", "/fsx/ubuntu/runs/slurm-4243.out"),
            ("/fsx/%q.out", "/fsx/%q.out"),
        ];
        for (pattern, expanded) in cases {
            assert_eq!(expand_output_path(pattern, &job), expanded, "{pattern}");
        }
        // Already expanded (Slurm 24.11's scontrol): unchanged.
        assert_eq!(
            expand_output_path("/fsx/canary/hpchaos-canary-42.out", &job),
            "/fsx/canary/hpchaos-canary-42.out"
        );
    }

    #[test]
    fn field_case_02_working_suffixes_are_healthy() {
        let text = uncommented(include_str!(
            "../../../../tests/fixtures/field-cases/02-planned-flag-suffixes.txt"
        ));
        let rows = parse_sinfo(&text);
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(NodeRow::healthy), "{rows:?}");
    }

    #[test]
    fn parses_recorded_scontrol_job() {
        let job = parse_scontrol_job(JOB.lines().next().unwrap()).unwrap();
        assert_eq!(job.id, 1);
        assert_eq!(job.name, "hpchaos-canary");
        assert_eq!(job.state, JobState::Running);
        assert_eq!(job.restarts, 0);
        assert_eq!(job.node_list, "ip-10-1-0-[11-12]");
        assert_eq!(
            job.stdout.as_deref(),
            Some("/fsx/canary/hpchaos-canary-1.out")
        );
    }

    #[test]
    fn parses_sbatch_answers() {
        assert_eq!(parse_sbatch("Submitted batch job 42\n"), Some(42));
        assert_eq!(parse_sbatch("sbatch: error: ..."), None);
    }
}
