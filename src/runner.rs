//! One run end to end: for each scenario, resolve the targets against the
//! live cluster, check steady state, inject, watch Slurm, the SageMaker API
//! and the workload at once, time the phases, roll back what the harness
//! did, check steady state again, and journal all of it as it happens.
//! Ctrl-C (the `cancel` signal) stops waiting, rolls back and ends the
//! journal as `interrupted`. A lock on the head node keeps two runs off one
//! cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use regex::Regex;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::cluster::Cluster;
use crate::cluster::slurm::{node_named_in, parse_controller_line};
use crate::cluster::ssh::{KEYSCAN_SCRIPT, SshError, parse_keyscan};
use crate::faults::{self, Place, Step};
use crate::journal::{
    Entry, FORMAT_VERSION, JournalWriter, RunOutcome, ScenarioOutcome, Source, Stage,
};
use crate::live::{LiveView, Standing};
use crate::phases::{self, Baseline, Event, Expectation, Observation};
use crate::scenario::Loaded;
use crate::scenario::model::{Check, Phase, Pool, Scenario, Where, Workload};

/// Where the lock lives on the head node (`mkdir` is atomic).
pub const LOCK_DIR: &str = "/run/hpchaos-run.lock";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Cluster(String),
    #[error(
        "another hpchaos run holds the lock on this cluster ({0}); if that run is dead, remove {LOCK_DIR} on the head node"
    )]
    Locked(String),
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
}

/// The targets a scenario would hit now, for `plan` (the workload's
/// nodes are only known once it runs).
pub async fn plan_targets(cluster: &Cluster, scenario: &Scenario) -> Result<Vec<String>, String> {
    if scenario.target.pool == Pool::Workload {
        return Err("the nodes the workload runs on, picked once it runs".to_owned());
    }
    let seed = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    resolve_targets(cluster, scenario, None, seed).await
}

/// The nodes a scenario hits now: its pool on the live cluster, less
/// controller, login and excluded nodes, picked under the cap. `job` is the
/// workload's id when the pool is the workload.
pub async fn resolve_targets(
    cluster: &Cluster,
    scenario: &Scenario,
    job: Option<u64>,
    seed: u64,
) -> Result<Vec<String>, String> {
    let slurm = &cluster.slurm;
    let job_nodes = |id: u64| async move {
        let info = slurm
            .job(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or(format!("job {id} not found"))?;
        slurm
            .hostnames(&info.node_list)
            .await
            .map_err(|e| e.to_string())
    };
    let candidates = match &scenario.target.pool {
        Pool::Nodes(nodes) => nodes.clone(),
        Pool::Partition(p) => slurm.partition_nodes(p).await.map_err(|e| e.to_string())?,
        Pool::InstanceGroup(group) => {
            let api = cluster
                .api
                .as_ref()
                .ok_or("instance groups need the profile's sagemaker settings")?;
            api.nodes()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|n| &n.group == group)
                .map(|n| n.node)
                .collect()
        }
        Pool::JobId(id) => job_nodes(*id).await?,
        Pool::JobName(name) => {
            let id = *slurm
                .jobs_named(name)
                .await
                .map_err(|e| e.to_string())?
                .first()
                .ok_or(format!("no job named {name}"))?;
            job_nodes(id).await?
        }
        Pool::Workload => job_nodes(job.ok_or("no workload")?).await?,
    };
    let mut never = cluster.profile.login_nodes.clone();
    never.push(cluster.profile.head_node.name.clone());
    let seed = scenario.target.seed.unwrap_or(seed);
    crate::targets::select(&scenario.target, &candidates, &never, seed).map_err(|e| e.to_string())
}

/// What one scenario came to.
struct Ending {
    outcome: ScenarioOutcome,
    reason: String,
}

impl Ending {
    fn new(outcome: ScenarioOutcome, reason: impl Into<String>) -> Ending {
        Ending {
            outcome,
            reason: reason.into(),
        }
    }
}

pub struct Runner {
    /// Show each journal record and where the scenario stands on stderr.
    pub live: Option<LiveView>,
    /// The last change seen from any source, for the live view.
    last_seen: Option<String>,
    pub cluster: Cluster,
    pub journal: JournalWriter,
    pub clock: Arc<dyn Clock>,
    pub cancel: watch::Receiver<bool>,
    /// Instances whose host key this run accepted after their replacement.
    accepted_instances: BTreeSet<String>,
}

/// Creates `<report_dir>/<time>-<name>/` and its journal.
pub fn open_run_dir(
    report_dir: &Path,
    name: &str,
    clock: Arc<dyn Clock>,
) -> Result<(PathBuf, JournalWriter), RunError> {
    let dir = report_dir.join(format!("{}-{name}", clock.now().format("%Y%m%dT%H%M%S")));
    std::fs::create_dir_all(&dir)
        .map_err(|e| RunError::Cluster(format!("cannot create {}: {e}", dir.display())))?;
    let journal = JournalWriter::create(&dir.join("journal.jsonl"), clock)?;
    Ok((dir, journal))
}

impl Runner {
    pub fn new(cluster: Cluster, journal: JournalWriter, cancel: watch::Receiver<bool>) -> Runner {
        Runner {
            live: None,
            last_seen: None,
            cluster,
            journal,
            clock: Arc::new(SystemClock),
            cancel,
            accepted_instances: BTreeSet::new(),
        }
    }

    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    fn log(&mut self, scenario: Option<&str>, entry: Entry) {
        match self.journal.append(scenario, entry) {
            Ok(record) => {
                if let Entry::Observed {
                    source, node, to, ..
                } = &record.entry
                {
                    let node = node.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
                    self.last_seen = Some(format!("{}{node}: {to}", source.as_str()));
                }
                if let Some(live) = self.live.as_mut() {
                    live.record(&crate::status::progress_line(&record));
                }
            }
            Err(err) => eprintln!("error: {err}"),
        }
    }

    /// Runs the scenarios in order; returns the run's outcome.
    pub async fn run(
        &mut self,
        scenarios: &[Loaded<Scenario>],
        suite: Option<&str>,
        stop_on_failure: bool,
        cooldown: Option<StdDuration>,
    ) -> Result<RunOutcome, RunError> {
        self.log(
            None,
            Entry::RunStarted {
                run_id: format!("run-{}", self.clock.now().format("%Y%m%dT%H%M%S")),
                harness_version: env!("CARGO_PKG_VERSION").to_owned(),
                format: FORMAT_VERSION,
                cluster: self.cluster.profile.name.clone(),
                suite: suite.map(str::to_owned),
            },
        );
        if let Err(err) = self.lock().await {
            self.log(
                None,
                Entry::Error {
                    message: err.to_string(),
                },
            );
            self.log(
                None,
                Entry::RunEnded {
                    outcome: RunOutcome::Aborted,
                },
            );
            return Err(err);
        }
        let mut outcome = RunOutcome::Completed;
        for (index, loaded) in scenarios.iter().enumerate() {
            if let (Some(pause), true) = (cooldown, index > 0) {
                // The suite's pause between scenarios; Ctrl-C cuts it short.
                if let Some(live) = self.live.as_mut() {
                    live.record(&format!(
                        "cooldown: {}s before the next scenario",
                        pause.as_secs()
                    ));
                }
                let mut cancel = self.cancel.clone();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = cancel.wait_for(|c| *c) => {}
                }
                if self.cancelled() {
                    outcome = RunOutcome::Interrupted;
                    break;
                }
            }
            let ending = self.scenario(loaded).await;
            let name = loaded.value.name.as_str();
            self.log(
                Some(name),
                Entry::ScenarioEnded {
                    outcome: ending.outcome,
                    reason: ending.reason.clone(),
                },
            );
            match ending.outcome {
                ScenarioOutcome::Interrupted => {
                    outcome = RunOutcome::Interrupted;
                    break;
                }
                ScenarioOutcome::Passed => {}
                _ if stop_on_failure => {
                    outcome = RunOutcome::Aborted;
                    break;
                }
                _ => {}
            }
        }
        self.unlock().await;
        self.log(None, Entry::RunEnded { outcome });
        Ok(outcome)
    }

    async fn lock(&self) -> Result<(), RunError> {
        let slurm = &self.cluster.slurm;
        let owner = format!(
            "run started {} by pid {}",
            self.clock.now().to_rfc3339(),
            std::process::id()
        );
        let out = self
            .cluster
            .ssh
            .run(
                &slurm.head,
                &[
                    "sh",
                    "-c",
                    "mkdir \"$1\" && printf '%s\\n' \"$2\" > \"$1/owner\"",
                    "hpchaos",
                    LOCK_DIR,
                    &owner,
                ],
            )
            .await
            .map_err(|e| RunError::Cluster(e.to_string()))?;
        if out.status == 0 {
            return Ok(());
        }
        let holder = self
            .cluster
            .ssh
            .run(&slurm.head, &["cat", &format!("{LOCK_DIR}/owner")])
            .await
            .map(|o| o.stdout.trim().to_owned())
            .unwrap_or_default();
        Err(RunError::Locked(holder))
    }

    async fn unlock(&self) {
        let _ = self
            .cluster
            .ssh
            .run(&self.cluster.slurm.head, &["rm", "-rf", LOCK_DIR])
            .await;
    }

    async fn scenario(&mut self, loaded: &Loaded<Scenario>) -> Ending {
        let scenario = &loaded.value;
        let name = scenario.name.clone();
        let name = name.as_str();
        self.log(
            Some(name),
            Entry::ScenarioStarted {
                file: loaded.path.display().to_string(),
                description: scenario.description.clone(),
                fault: scenario.fault.kind().to_owned(),
                recovery: scenario.expect.recovery,
                deadlines: scenario.expect.deadlines.set(),
                max_lost_steps: scenario.expect.max_lost_steps,
                phases: scenario.expect.phases(scenario.workload.is_some()),
                source: loaded.text.clone(),
            },
        );
        let mut workload = match self.start_workload(scenario).await {
            Ok(w) => w,
            Err(reason) => return Ending::new(ScenarioOutcome::Error, reason),
        };
        let ending = self.with_workload(scenario, &mut workload).await;
        if let Some(job) = workload.as_ref().filter(|w| w.submitted).map(|w| w.id) {
            let ok = self.cluster.slurm.scancel(job).await;
            self.log(
                Some(name),
                Entry::Rollback {
                    step: format!("scancel {job} (canary)"),
                    ok: ok.is_ok(),
                    detail: ok.err().map(|e| e.to_string()).unwrap_or_default(),
                },
            );
        }
        ending
    }

    async fn with_workload(
        &mut self,
        scenario: &Scenario,
        workload: &mut Option<WorkloadJob>,
    ) -> Ending {
        let name = scenario.name.as_str();
        let seed = self.clock.now().timestamp_nanos_opt().unwrap_or_default() as u64;
        let job = workload.as_ref().map(|w| w.id);
        let targets = match resolve_targets(&self.cluster, scenario, job, seed).await {
            Ok(t) => t,
            Err(reason) => return Ending::new(ScenarioOutcome::Aborted, reason),
        };
        self.log(
            Some(name),
            Entry::TargetsResolved {
                nodes: targets.clone(),
            },
        );
        if let Some(failure) = self
            .steady_state(scenario, Stage::Before, &targets, workload.as_ref())
            .await
        {
            return Ending::new(
                ScenarioOutcome::Aborted,
                format!("steady state does not hold before injecting: {failure}"),
            );
        }
        let plan = faults::plan(&scenario.fault, &targets);
        let baseline = self.baseline(&targets, workload.as_mut()).await;
        let controller_log = self.controller_log_offset(name).await;
        let injected_at = self.clock.now();
        let actions: Vec<String> = plan.inject.iter().map(Step::describe).collect();
        self.log(
            Some(name),
            Entry::InjectionStarted {
                nodes: targets.clone(),
                action: actions.join("; "),
            },
        );
        let mut failures = Vec::new();
        for step in &plan.inject {
            if let Err(err) = self.execute(step, workload.as_ref()).await {
                failures.push(err);
            }
        }
        let mut verified = Vec::new();
        if failures.is_empty() {
            for step in &plan.verify {
                match self.execute(step, workload.as_ref()).await {
                    Ok(()) => verified.push(step.describe()),
                    Err(err) => failures.push(format!("{}: {err}", step.describe())),
                }
            }
        }
        let detail = match (failures.is_empty(), verified.is_empty()) {
            (false, _) => failures.join("; "),
            (true, false) => format!("verified: {}", verified.join("; ")),
            (true, true) => String::new(),
        };
        self.log(
            Some(name),
            Entry::InjectionFinished {
                ok: failures.is_empty(),
                detail,
            },
        );
        let ending = if failures.is_empty() {
            let watched = Watched {
                baseline: &baseline,
                injected_at,
                plan: &plan,
                controller_log,
            };
            let ending = self.watch(scenario, watched, workload.as_mut()).await;
            if let Some(live) = self.live.as_mut() {
                live.clear();
            }
            ending
        } else {
            Ending::new(
                ScenarioOutcome::Error,
                format!("the injection did not take: {}", failures.join("; ")),
            )
        };
        for step in plan.rollback.iter() {
            let result = self.execute(step, workload.as_ref()).await;
            self.log(
                Some(name),
                Entry::Rollback {
                    step: step.describe(),
                    ok: result.is_ok(),
                    detail: result.err().unwrap_or_default(),
                },
            );
        }
        for command in &scenario.rollback {
            let places = self.places(&command.on, &targets);
            for place in places {
                let step = Step::Run {
                    on: place,
                    argv: command.command.clone(),
                };
                let result = self.execute(&step, workload.as_ref()).await;
                self.log(
                    Some(name),
                    Entry::Rollback {
                        step: step.describe(),
                        ok: result.is_ok(),
                        detail: result.err().unwrap_or_default(),
                    },
                );
            }
        }
        if ending.outcome == ScenarioOutcome::Passed
            && let Some(failure) = self
                .steady_state(scenario, Stage::After, &targets, workload.as_ref())
                .await
        {
            return Ending::new(
                ScenarioOutcome::Failed,
                format!("steady state does not hold after recovery: {failure}"),
            );
        }
        ending
    }

    fn places(&self, on: &Where, targets: &[String]) -> Vec<Place> {
        match on {
            Where::Head => vec![Place::Head],
            Where::Targets => targets.iter().map(|t| Place::Node(t.clone())).collect(),
            Where::Node(n) => vec![Place::Node(n.clone())],
        }
    }

    async fn start_workload(&mut self, scenario: &Scenario) -> Result<Option<WorkloadJob>, String> {
        let slurm = self.cluster.slurm.clone();
        match &scenario.workload {
            None => Ok(None),
            Some(Workload::Existing(existing)) => {
                let id = match &existing.job {
                    crate::scenario::model::JobRef::Id(id) => *id,
                    crate::scenario::model::JobRef::Name(name) => *slurm
                        .jobs_named(name)
                        .await
                        .map_err(|e| e.to_string())?
                        .first()
                        .ok_or(format!("no job named {name} is running"))?,
                };
                let progress = existing
                    .progress
                    .as_ref()
                    .map(WorkloadJob::regexes)
                    .transpose()?;
                Ok(Some(WorkloadJob {
                    id,
                    submitted: false,
                    output: existing.progress.as_ref().and_then(|p| p.output.clone()),
                    offset: 0,
                    progress,
                    last_step: None,
                }))
            }
            Some(Workload::Canary(canary)) => {
                let script = canary
                    .script
                    .clone()
                    .or_else(|| self.cluster.profile.slurm.canary_script.clone())
                    .ok_or("the canary needs a script: set workload.canary.script or slurm.canary_script in the profile")?;
                let mut args = vec![
                    format!("--job-name={}", canary.name),
                    format!("--nodes={}", canary.nodes),
                ];
                if let Some(partition) = &canary.partition {
                    args.push(format!("--partition={partition}"));
                }
                args.push(if canary.requeue {
                    "--requeue".to_owned()
                } else {
                    "--no-requeue".to_owned()
                });
                args.extend(canary.sbatch_args.iter().cloned());
                args.push(script);
                let id = slurm
                    .sbatch(&args)
                    .await
                    .map_err(|e| format!("cannot submit the canary: {e}"))?;
                let mut job = WorkloadJob {
                    id,
                    submitted: true,
                    output: None,
                    offset: 0,
                    progress: Some(WorkloadJob::regexes(&canary.progress)?),
                    last_step: None,
                };
                let warmup = canary.warmup_steps.unwrap_or(1);
                let deadline = self.clock.now() + chrono::TimeDelta::seconds(180);
                loop {
                    if self.cancelled() {
                        return Err("interrupted while starting the canary".to_owned());
                    }
                    if let Ok(Some(info)) = slurm.job(id).await {
                        job.output = job.output.clone().or(info.stdout.clone());
                        if info.state == "RUNNING" {
                            job.read_progress(&slurm).await;
                            if job.last_step.is_some_and(|s| s >= warmup) {
                                return Ok(Some(job));
                            }
                        }
                    }
                    if self.clock.now() > deadline {
                        return Err(format!(
                            "the canary (job {id}) did not reach step {warmup} within 3 minutes"
                        ));
                    }
                    tokio::time::sleep(self.cluster.profile.poll.job_output.as_std()).await;
                }
            }
        }
    }

    /// The first check that fails, if any, journaling each.
    async fn steady_state(
        &mut self,
        scenario: &Scenario,
        stage: Stage,
        targets: &[String],
        workload: Option<&WorkloadJob>,
    ) -> Option<String> {
        let name = scenario.name.clone();
        let mut first_failure = None;
        for check in &scenario.steady_state {
            // A job expected to fail is not expected to run afterwards.
            let moot = stage == Stage::After
                && *check == Check::JobRunning
                && scenario.expect.recovery == crate::scenario::model::Recovery::JobFails;
            if moot {
                continue;
            }
            let (label, result) = self.check(check, targets, workload).await;
            let passed = result.is_ok();
            let detail = result.unwrap_or_else(|e| e);
            self.log(
                Some(&name),
                Entry::SteadyState {
                    stage,
                    check: label.clone(),
                    passed,
                    detail: detail.clone(),
                },
            );
            if !passed && first_failure.is_none() {
                first_failure = Some(format!("{label}: {detail}"));
            }
        }
        first_failure
    }

    async fn check(
        &self,
        check: &Check,
        targets: &[String],
        workload: Option<&WorkloadJob>,
    ) -> (String, Result<String, String>) {
        let slurm = &self.cluster.slurm;
        match check {
            Check::TargetsHealthy => {
                let result = match slurm.nodes().await {
                    Err(e) => Err(e.to_string()),
                    Ok(rows) => {
                        let bad: Vec<String> = rows
                            .iter()
                            .filter(|r| targets.contains(&r.name) && !r.healthy())
                            .map(|r| format!("{} {}{} {}", r.name, r.state, r.flags, r.reason))
                            .collect();
                        if bad.is_empty() {
                            Ok(format!("{} healthy", targets.join(", ")))
                        } else {
                            Err(bad.join("; "))
                        }
                    }
                };
                ("targets_healthy".to_owned(), result)
            }
            Check::MinHealthyNodes(min) => {
                let result = match slurm.nodes().await {
                    Err(e) => Err(e.to_string()),
                    Ok(rows) => {
                        let healthy = rows.iter().filter(|r| r.healthy()).count();
                        if healthy >= *min as usize {
                            Ok(format!("{healthy} healthy"))
                        } else {
                            Err(format!("only {healthy} healthy, need {min}"))
                        }
                    }
                };
                (format!("min_healthy_nodes: {min}"), result)
            }
            Check::JobRunning => {
                let result = match workload {
                    None => Err("no workload".to_owned()),
                    Some(job) => match slurm.job(job.id).await {
                        Ok(Some(info)) if info.state == "RUNNING" => {
                            Ok(format!("job {} RUNNING on {}", job.id, info.node_list))
                        }
                        Ok(Some(info)) => Err(format!("job {} is {}", job.id, info.state)),
                        Ok(None) => Err(format!("job {} is gone", job.id)),
                        Err(e) => Err(e.to_string()),
                    },
                };
                ("job_running".to_owned(), result)
            }
            Check::Probe(probe) => {
                let mut outcome = Ok(String::new());
                for place in self.places(&probe.on, targets) {
                    let endpoint = match &place {
                        Place::Head => slurm.head.clone(),
                        Place::Node(n) => self.cluster.node(n),
                    };
                    let line = crate::cluster::quote::command_line(&probe.command);
                    outcome = match self
                        .cluster
                        .ssh
                        .run_line(&endpoint, &line, probe.timeout.as_std())
                        .await
                    {
                        Err(e) => Err(e.to_string()),
                        Ok(out) if out.status as i32 != probe.expect_exit => Err(format!(
                            "{}: exit {} (expected {})",
                            endpoint.name, out.status, probe.expect_exit
                        )),
                        Ok(out) => match probe.expect_output.as_deref().map(Regex::new) {
                            Some(Ok(regex)) if !regex.is_match(&out.stdout) => Err(format!(
                                "{}: output does not match {}",
                                endpoint.name,
                                regex.as_str()
                            )),
                            _ => Ok(format!("{}: ok", endpoint.name)),
                        },
                    };
                    if outcome.is_err() {
                        break;
                    }
                }
                (format!("probe: {}", probe.name), outcome)
            }
        }
    }

    async fn baseline(
        &mut self,
        targets: &[String],
        workload: Option<&mut WorkloadJob>,
    ) -> Baseline {
        let mut baseline = Baseline {
            targets: targets.to_vec(),
            workload: workload.is_some(),
            ..Baseline::default()
        };
        if let Some(api) = &self.cluster.api
            && let Ok(nodes) = api.nodes().await
        {
            for node in nodes.into_iter().filter(|n| targets.contains(&n.node)) {
                if let Some(launch) = node.launch_time {
                    baseline.launch_times.insert(node.node.clone(), launch);
                }
                baseline.instance_ids.insert(node.node, node.instance_id);
            }
        }
        if let Some(job) = workload {
            job.read_progress(&self.cluster.slurm).await;
            baseline.progress = job.last_step;
        }
        baseline
    }

    async fn execute(&self, step: &Step, workload: Option<&WorkloadJob>) -> Result<(), String> {
        let ssh = &self.cluster.ssh;
        let endpoint = |place: &Place| match place {
            Place::Head => self.cluster.slurm.head.clone(),
            Place::Node(n) => self.cluster.node(n),
        };
        match step {
            Step::Run { on, argv } => {
                let out = ssh
                    .run(&endpoint(on), argv)
                    .await
                    .map_err(|e| e.to_string())?;
                if out.status == 0 {
                    Ok(())
                } else {
                    Err(format!("exit {}: {}", out.status, out.stderr.trim()))
                }
            }
            // The node goes away under the command: a dropped connection or
            // no answer is the expected end, but not failing to get in.
            Step::RunDropping { on, argv } => {
                let line = crate::cluster::quote::command_line(argv);
                match ssh
                    .run_line(&endpoint(on), &line, StdDuration::from_secs(5))
                    .await
                {
                    Ok(out) if out.status != 0 => {
                        Err(format!("exit {}: {}", out.status, out.stderr.trim()))
                    }
                    Err(err @ (SshError::HostKeyMismatch { .. } | SshError::Connect { .. })) => {
                        Err(err.to_string())
                    }
                    Ok(_) | Err(SshError::Timeout { .. } | SshError::Command { .. }) => Ok(()),
                }
            }
            Step::KillJobTasks {
                node,
                signal,
                count,
            } => {
                let job = workload.ok_or("no workload to kill tasks of")?;
                let ps = ssh
                    .run(&self.cluster.node(node), &["ps", "-eo", "pid,ppid,args"])
                    .await
                    .map_err(|e| e.to_string())?;
                let mut pids = faults::step_task_pids(&ps.stdout, job.id);
                if let Some(count) = count {
                    pids.truncate(*count as usize);
                }
                if pids.is_empty() {
                    return Err(format!("no step task of job {} on {node}", job.id));
                }
                let mut argv = vec!["kill".to_owned(), format!("-{signal}")];
                argv.extend(pids.iter().map(u32::to_string));
                let out = ssh
                    .run(&self.cluster.node(node), &argv)
                    .await
                    .map_err(|e| e.to_string())?;
                if out.status == 0 {
                    Ok(())
                } else {
                    Err(out.stderr)
                }
            }
            Step::ApiReboot { nodes } | Step::ApiReplace { nodes } => {
                let api = self
                    .cluster
                    .api
                    .as_ref()
                    .ok_or("this fault needs the profile's sagemaker settings")?;
                let listed = api.nodes().await.map_err(|e| e.to_string())?;
                let ids: Vec<String> = listed
                    .iter()
                    .filter(|n| nodes.contains(&n.node))
                    .map(|n| n.instance_id.clone())
                    .collect();
                let outcome = match step {
                    Step::ApiReboot { .. } => api.reboot(&ids).await,
                    _ => api.replace(&ids).await,
                }
                .map_err(|e| e.to_string())?;
                let refused: Vec<String> = outcome
                    .into_iter()
                    .filter_map(|(id, r)| r.err().map(|e| format!("{id}: {e}")))
                    .collect();
                if refused.is_empty() {
                    Ok(())
                } else {
                    Err(refused.join("; "))
                }
            }
            // `setsid -f` returns before its child has exec'd the tool, so
            // the tool is given up to three seconds to show.
            Step::CheckRunning { on, pattern } => {
                let until = std::time::Instant::now() + StdDuration::from_secs(3);
                loop {
                    let out = ssh
                        .run(&endpoint(on), &["pgrep", "-f", "-x", pattern.as_str()])
                        .await
                        .map_err(|e| e.to_string())?;
                    if out.status == 0 {
                        return Ok(());
                    }
                    if std::time::Instant::now() > until {
                        return Err("not running 3s after it was started".to_owned());
                    }
                    tokio::time::sleep(StdDuration::from_millis(100)).await;
                }
            }
            Step::StopIfRunning { on, pattern } => {
                let out = ssh
                    .run(
                        &endpoint(on),
                        &["pkill", "-INT", "-f", "-x", pattern.as_str()],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                // pkill: 0 signalled, 1 nothing matched (already ended).
                match out.status {
                    0 | 1 => Ok(()),
                    status => Err(format!("exit {status}: {}", out.stderr.trim())),
                }
            }
            Step::ResumeIfUntouched { node, reason } => {
                let rows = self
                    .cluster
                    .slurm
                    .nodes()
                    .await
                    .map_err(|e| e.to_string())?;
                match rows.iter().find(|r| &r.name == node) {
                    Some(row) if &row.reason == reason && row.flags.is_empty() => self
                        .cluster
                        .slurm
                        .update_node(node, "resume", None)
                        .await
                        .map_err(|e| e.to_string()),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Polls every source until the judgement settles, an abort condition
    /// holds, or the run is cancelled.
    async fn watch(
        &mut self,
        scenario: &Scenario,
        watched: Watched<'_>,
        mut workload: Option<&mut WorkloadJob>,
    ) -> Ending {
        let Watched {
            baseline,
            injected_at,
            plan,
            mut controller_log,
        } = watched;
        let name = scenario.name.clone();
        let name = name.as_str();
        let expectation = Expectation {
            recovery: scenario.expect.recovery,
            phases: scenario.expect.phases(workload.is_some()),
            deadlines: scenario.expect.deadlines.set(),
            quiet_for: scenario.expect.quiet_for,
            max_lost_steps: scenario.expect.max_lost_steps,
        };
        let order = expectation.phases.clone();
        self.log(
            Some(name),
            Entry::PhaseStarted {
                phase: order[0],
                started_at: injected_at,
                deadline: expectation.deadlines.get(&order[0]).copied(),
            },
        );
        let mut events: Vec<Event> = Vec::new();
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        let mut failing_since: BTreeMap<&'static str, DateTime<Utc>> = BTreeMap::new();
        let mut journaled = 0usize;
        let mut follow_up_done = plan.follow_up.is_none();
        let abort = scenario
            .abort
            .clone()
            .unwrap_or(crate::scenario::model::Abort {
                max_unhealthy_nodes: None,
                timeout: None,
                probes: Vec::new(),
            });
        let limit = abort.timeout.map(|t| injected_at + t.as_chrono());
        // Every watch ends: past the last deadline plus five minutes (half
        // an hour when nothing has a deadline), open phases are not reached.
        let last_deadline = expectation
            .deadlines
            .values()
            .max()
            .copied()
            .or(expectation.quiet_for);
        let bound = last_deadline.map_or(StdDuration::from_secs(1800), |d| {
            d.as_std() + StdDuration::from_secs(300)
        });
        let give_up =
            injected_at + chrono::TimeDelta::from_std(bound).unwrap_or(chrono::TimeDelta::MAX);
        let poll = self.cluster.profile.poll.slurm.as_std();
        loop {
            if self.cancelled() {
                return Ending::new(
                    ScenarioOutcome::Interrupted,
                    format!(
                        "interrupted during the {} phase",
                        order.get(journaled).copied().unwrap_or(order[0])
                    ),
                );
            }
            let now = self.clock.now();
            if !follow_up_done
                && let Some((after, steps)) = &plan.follow_up
                && now >= injected_at + after.as_chrono()
            {
                for step in steps {
                    let result = self.execute(step, workload.as_deref()).await;
                    self.log(
                        Some(name),
                        Entry::Observed {
                            source: Source::Harness,
                            node: None,
                            field: "follow_up".into(),
                            from: None,
                            to: format!(
                                "{}: {}",
                                step.describe(),
                                result.err().unwrap_or_else(|| "done".into())
                            ),
                            source_time: None,
                        },
                    );
                }
                follow_up_done = true;
            }
            // The controller log first: its lines carry millisecond times,
            // and an event seen first in a poll is judged first.
            if let Some(offset) = controller_log.as_mut() {
                let path = self.cluster.profile.slurm.controller_log.clone();
                let read = self.cluster.slurm.read_log(&path, *offset).await;
                let error = read.as_ref().err();
                self.note_source_health(name, &mut failing_since, Source::SlurmctldLog, error);
                let (size, text) = read.unwrap_or((*offset, String::new()));
                if size < *offset {
                    // Rotated: the new file is read from its start next poll.
                    *offset = 0;
                    self.log(
                        Some(name),
                        Entry::Observed {
                            source: Source::SlurmctldLog,
                            node: None,
                            field: "poll".into(),
                            from: None,
                            to: format!("{path} was rotated; reading the new file"),
                            source_time: None,
                        },
                    );
                }
                let complete = text.rfind('\n').map_or(0, |i| i + 1);
                *offset += complete as u64;
                for line in text[..complete].lines() {
                    let Some((at, message)) = parse_controller_line(line) else {
                        continue;
                    };
                    let Some(node) = node_named_in(message, &baseline.targets) else {
                        continue;
                    };
                    self.log(
                        Some(name),
                        Entry::Observed {
                            source: Source::SlurmctldLog,
                            node: Some(node.clone()),
                            field: "line".into(),
                            from: None,
                            to: message.to_owned(),
                            source_time: Some(at),
                        },
                    );
                    events.push(Event {
                        seen: self.clock.now(),
                        source_time: Some(at),
                        source: Source::SlurmctldLog,
                        observation: Observation::ControllerLog {
                            node: node.clone(),
                            message: message.to_owned(),
                        },
                    });
                }
            }
            // Slurm.
            let mut unhealthy = 0;
            let rows = self.cluster.slurm.nodes().await.map_err(|e| e.to_string());
            self.note_source_health(name, &mut failing_since, Source::Sinfo, rows.as_ref().err());
            if let Ok(rows) = rows {
                unhealthy = rows
                    .iter()
                    .filter(|r| !r.healthy() && !matches!(r.state.as_str(), "allocated" | "mixed"))
                    .count();
                for row in rows.iter().filter(|r| baseline.targets.contains(&r.name)) {
                    let value = format!("{}{}|{}", row.state, row.flags, row.reason);
                    let change = Change {
                        source: Source::Sinfo,
                        node: &row.name,
                        field: "state|reason",
                        source_time: row.reason_time,
                    };
                    if self.note_change(name, &mut last, change, value) {
                        events.push(Event {
                            seen: self.clock.now(),
                            source_time: row
                                .reason_time
                                .filter(|_| row.reason.starts_with("Action:")),
                            source: Source::Sinfo,
                            observation: Observation::SlurmNode {
                                node: row.name.clone(),
                                state: row.state.clone(),
                                flags: row.flags.clone(),
                                reason: row.reason.clone(),
                            },
                        });
                    }
                }
            }
            // The SageMaker API.
            let listed = match self.cluster.api.clone() {
                Some(api) => Some(api.nodes().await.map_err(|e| e.to_string())),
                None => None,
            };
            if let Some(result) = &listed {
                let error = result.as_ref().err();
                self.note_source_health(name, &mut failing_since, Source::Sagemaker, error);
            }
            if let Some(Ok(nodes)) = listed {
                for node in nodes.iter().filter(|n| baseline.targets.contains(&n.node)) {
                    let value = format!(
                        "{}|{}|{}",
                        node.status,
                        node.instance_id,
                        node.launch_time.map(|t| t.to_rfc3339()).unwrap_or_default()
                    );
                    let change = Change {
                        source: Source::Sagemaker,
                        node: &node.node,
                        field: "status|instance_id|launch_time",
                        source_time: node.launch_time,
                    };
                    let replaced = baseline
                        .instance_ids
                        .get(&node.node)
                        .is_some_and(|old| *old != node.instance_id);
                    if replaced
                        && node.status == "Running"
                        && self.cluster.profile.ssh.accept_replaced_host_keys
                        && !self.accepted_instances.contains(&node.instance_id)
                    {
                        self.accept_replacement_key(name, &node.node, &node.instance_id)
                            .await;
                    }
                    if self.note_change(name, &mut last, change, value) {
                        events.push(Event {
                            seen: self.clock.now(),
                            source_time: None,
                            source: Source::Sagemaker,
                            observation: Observation::ApiNode {
                                node: node.node.clone(),
                                status: node.status.clone(),
                                instance_id: node.instance_id.clone(),
                                launch_time: node.launch_time,
                            },
                        });
                    }
                }
            }
            // The workload.
            if let Some(job) = workload.as_deref_mut() {
                let observation = match self.cluster.slurm.job(job.id).await {
                    Ok(Some(info)) => {
                        let nodes = self
                            .cluster
                            .slurm
                            .hostnames(&info.node_list)
                            .await
                            .unwrap_or_default();
                        Some(Observation::Job {
                            state: info.state,
                            nodes,
                            restarts: info.restarts,
                        })
                    }
                    Ok(None) => Some(Observation::JobGone),
                    Err(_) => None,
                };
                let error = observation.is_none().then(|| "squeue failed".to_owned());
                self.note_source_health(name, &mut failing_since, Source::Squeue, error.as_ref());
                if let Some(observation) = observation {
                    let value = format!("{observation:?}");
                    if last.get("job") != Some(&value) {
                        let text = match &observation {
                            Observation::Job {
                                state,
                                nodes,
                                restarts,
                            } => format!("{state} on [{}], restarts {restarts}", nodes.join(",")),
                            _ => "gone".to_owned(),
                        };
                        // `last` keeps the raw value to compare and the
                        // text last journaled, for `from`.
                        last.insert("job".into(), value);
                        let from = last.insert("job-text".into(), text.clone());
                        self.log(
                            Some(name),
                            Entry::Observed {
                                source: Source::Squeue,
                                node: None,
                                field: format!("job {}", job.id),
                                from,
                                to: text,
                                source_time: None,
                            },
                        );
                        events.push(Event {
                            seen: self.clock.now(),
                            source_time: None,
                            source: Source::Squeue,
                            observation,
                        });
                    }
                }
                for (line, step) in job.read_progress(&self.cluster.slurm).await {
                    if let Some(step) = step {
                        events.push(Event {
                            seen: self.clock.now(),
                            source_time: None,
                            source: Source::JobOutput,
                            observation: Observation::Progress { step },
                        });
                    }
                    if line.contains("resumed")
                        || line.contains("auto-resume")
                        || job.is_checkpoint(&line)
                    {
                        self.log(
                            Some(name),
                            Entry::Observed {
                                source: Source::JobOutput,
                                node: None,
                                field: "line".into(),
                                from: None,
                                to: line,
                                source_time: None,
                            },
                        );
                    }
                }
            }
            // Judge, and journal phase boundaries as they are decided.
            let now = self.clock.now();
            let judgement = phases::judge(
                injected_at,
                baseline,
                &expectation,
                &events,
                now,
                now > give_up,
            );
            while let Some(result) = judgement
                .phases
                .get(journaled)
                .filter(|p| p.ended.is_some() && p.verdict.is_some())
            {
                let end = result
                    .ended
                    .clone()
                    .unwrap_or_else(|| unreachable!("filtered on ended"));
                let lost = if result.phase == Phase::Resume {
                    judgement.lost_steps
                } else {
                    None
                };
                self.log(
                    Some(name),
                    Entry::PhaseEnded {
                        phase: result.phase,
                        ended_at: end.at,
                        verdict: result
                            .verdict
                            .unwrap_or(crate::journal::PhaseVerdict::Observed),
                        time_source: end.time_source,
                        evidence: end.evidence,
                        lost_steps: lost,
                    },
                );
                journaled += 1;
                if let Some(next) = order.get(journaled) {
                    self.log(
                        Some(name),
                        Entry::PhaseStarted {
                            phase: *next,
                            started_at: end.at,
                            deadline: expectation.deadlines.get(next).copied(),
                        },
                    );
                }
            }
            if judgement.settled {
                if let Some(result) = judgement
                    .phases
                    .get(journaled)
                    .filter(|p| p.ended.is_none())
                {
                    self.log(
                        Some(name),
                        Entry::PhaseEnded {
                            phase: result.phase,
                            ended_at: now,
                            verdict: crate::journal::PhaseVerdict::NotReached,
                            time_source: crate::journal::TimeSource::Observed,
                            evidence: "not seen before its deadline".into(),
                            lost_steps: None,
                        },
                    );
                }
                return if judgement.passed {
                    Ending::new(ScenarioOutcome::Passed, "")
                } else {
                    Ending::new(ScenarioOutcome::Failed, judgement.reason)
                };
            }
            if let Some(max) = abort.max_unhealthy_nodes
                && unhealthy > max as usize
            {
                let reason =
                    format!("{unhealthy} nodes unhealthy, more than max_unhealthy_nodes: {max}");
                self.log(
                    Some(name),
                    Entry::Aborted {
                        reason: reason.clone(),
                    },
                );
                return Ending::new(ScenarioOutcome::Aborted, reason);
            }
            for probe in &abort.probes {
                let check = Check::Probe(probe.clone());
                let (label, result) = self
                    .check(&check, &baseline.targets, workload.as_deref())
                    .await;
                if let Err(detail) = result {
                    let reason = format!("abort condition {label} failed: {detail}");
                    self.log(
                        Some(name),
                        Entry::Aborted {
                            reason: reason.clone(),
                        },
                    );
                    return Ending::new(ScenarioOutcome::Aborted, reason);
                }
            }
            if limit.is_some_and(|l| now > l) {
                let reason = "the abort timeout passed".to_owned();
                self.log(
                    Some(name),
                    Entry::Aborted {
                        reason: reason.clone(),
                    },
                );
                return Ending::new(ScenarioOutcome::Aborted, reason);
            }
            if let Some(live) = self.live.as_mut() {
                let phase = order[journaled.min(order.len() - 1)];
                live.standing(&Standing {
                    scenario: name,
                    phase,
                    since_injection: (now - injected_at).to_std().unwrap_or_default(),
                    deadline: expectation.deadlines.get(&phase).copied(),
                    last_seen: self.last_seen.as_deref(),
                });
            }
            let mut cancel = self.cancel.clone();
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = cancel.changed() => {}
            }
        }
    }
}

impl Runner {
    /// Accepts `node`'s new host key for the rest of the run once the API
    /// shows it on a new instance: the key the head node sees on the
    /// cluster network, journaled with its fingerprint. When the node does
    /// not answer yet, the next poll tries again.
    async fn accept_replacement_key(&mut self, scenario: &str, node: &str, instance_id: &str) {
        let endpoint = self.cluster.node(node);
        let port = endpoint.port.to_string();
        let argv = [
            "sh",
            "-c",
            KEYSCAN_SCRIPT,
            "hpchaos",
            &endpoint.address,
            &port,
        ];
        let scanned = match self.cluster.ssh.run(&self.cluster.slurm.head, &argv).await {
            Ok(out) if out.status == 0 => parse_keyscan(&out.stdout),
            _ => None,
        };
        if let Some(scanned) = scanned {
            self.cluster.ssh.accept_host_key(node, &scanned.key);
            self.accepted_instances.insert(instance_id.to_owned());
            self.log(
                Some(scenario),
                Entry::HostKeyAccepted {
                    node: node.to_owned(),
                    instance_id: instance_id.to_owned(),
                    fingerprint: scanned.fingerprint,
                },
            );
        }
    }
}

/// What a watch starts from.
struct Watched<'a> {
    baseline: &'a Baseline,
    injected_at: DateTime<Utc>,
    plan: &'a faults::Plan,
    /// Where the controller log ended before the injection; `None` when
    /// it cannot be read.
    controller_log: Option<u64>,
}

impl Runner {
    /// The controller log's size before the injection, so the watch reads
    /// only what follows; an unreadable log is journaled once and skipped.
    async fn controller_log_offset(&mut self, scenario: &str) -> Option<u64> {
        let path = self.cluster.profile.slurm.controller_log.clone();
        match self.cluster.slurm.file_size(&path).await {
            Ok(size) => Some(size),
            Err(err) => {
                self.log(
                    Some(scenario),
                    Entry::Observed {
                        source: Source::SlurmctldLog,
                        node: None,
                        field: "poll".into(),
                        from: None,
                        to: format!("{path} is not readable ({err}); watching without it"),
                        source_time: None,
                    },
                );
                None
            }
        }
    }
}

/// Where a watched value comes from, for [`Runner::note_change`].
struct Change<'a> {
    source: Source,
    node: &'a str,
    field: &'static str,
    source_time: Option<DateTime<Utc>>,
}

impl Runner {
    /// Journals a source's first failed poll and its first good one after
    /// that, with how long it was out: a dropped connection or a throttled
    /// API shows in the journal, not only as a gap.
    fn note_source_health(
        &mut self,
        scenario: &str,
        failing_since: &mut BTreeMap<&'static str, DateTime<Utc>>,
        source: Source,
        error: Option<&String>,
    ) {
        let now = self.clock.now();
        let key = source.as_str();
        let (from, to) = match (failing_since.get(key).copied(), error) {
            (None, Some(error)) => {
                failing_since.insert(key, now);
                ("ok".to_owned(), format!("failing: {error}"))
            }
            (Some(since), None) => {
                failing_since.remove(key);
                let out = (now - since).as_seconds_f64();
                ("failing".to_owned(), format!("ok again after {out:.1}s"))
            }
            _ => return,
        };
        self.log(
            Some(scenario),
            Entry::Observed {
                source,
                node: None,
                field: "poll".into(),
                from: Some(from),
                to,
                source_time: None,
            },
        );
    }

    /// Journals `value` if it differs from the last one seen for this source
    /// and node; says whether it did.
    fn note_change(
        &mut self,
        scenario: &str,
        last: &mut BTreeMap<String, String>,
        change: Change<'_>,
        value: String,
    ) -> bool {
        let key = format!("{}/{}", change.source.as_str(), change.node);
        if last.get(&key) == Some(&value) {
            return false;
        }
        let from = last.insert(key, value.clone());
        self.log(
            Some(scenario),
            Entry::Observed {
                source: change.source,
                node: Some(change.node.to_owned()),
                field: change.field.into(),
                from,
                to: value,
                source_time: change.source_time,
            },
        );
        true
    }
}

/// The watched job and where its output has been read to.
struct WorkloadJob {
    id: u64,
    /// Submitted by us (and so cancelled by us).
    submitted: bool,
    output: Option<String>,
    offset: u64,
    progress: Option<(Regex, Option<Regex>)>,
    last_step: Option<u64>,
}

impl WorkloadJob {
    fn regexes(
        progress: &crate::scenario::model::Progress,
    ) -> Result<(Regex, Option<Regex>), String> {
        let pattern = Regex::new(&progress.pattern).map_err(|e| e.to_string())?;
        let checkpoint = progress
            .checkpoint
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok((pattern, checkpoint))
    }

    fn is_checkpoint(&self, line: &str) -> bool {
        self.progress
            .as_ref()
            .and_then(|(_, c)| c.as_ref())
            .is_some_and(|c| c.is_match(line))
    }

    /// New whole lines of the job's output, each with its step if it is a
    /// progress line.
    async fn read_progress(
        &mut self,
        slurm: &crate::cluster::slurm::Slurm,
    ) -> Vec<(String, Option<u64>)> {
        let Some(path) = self.output.clone() else {
            return Vec::new();
        };
        let Ok(text) = slurm.read_from(&path, self.offset).await else {
            return Vec::new();
        };
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        let mut lines = Vec::new();
        for line in text[..complete].lines() {
            let step = self
                .progress
                .as_ref()
                .and_then(|(p, _)| p.captures(line))
                .and_then(|c| c.get(1))
                .and_then(|m| m.as_str().parse::<u64>().ok());
            if step.is_some() {
                self.last_step = step;
            }
            lines.push((line.to_owned(), step));
        }
        lines
    }
}
