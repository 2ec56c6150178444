//! One run end to end: for each scenario, resolve the targets against the
//! live cluster, check steady state, inject, watch Slurm, the SageMaker API
//! and the workload at once, time the phases, roll back what the harness
//! did, check steady state again, and journal all of it as it happens.
//! Ctrl-C (the `cancel` signal) stops waiting, rolls back and ends the
//! journal as `interrupted`. A lock on the head node keeps two runs off one
//! cluster. This module runs scenarios in order; its parts: `workload`
//! (the canary or watched job), `checks` (steady state, probes), `execute`
//! (one fault step) and `watch` (polling and judging after the injection).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Utc;
use tokio::sync::watch as signal;

use crate::clock::{Clock, SystemClock};
use crate::cluster::Cluster;
use crate::faults::{self, Place, Step};
use crate::journal::{Entry, FORMAT_VERSION, JournalWriter, RunOutcome, ScenarioOutcome, Stage};
use crate::live::LiveView;
use crate::scenario::Loaded;
use crate::scenario::model::{Pool, Scenario, Where};

mod checks;
mod execute;
mod watch;
mod workload;

use watch::Watched;
use workload::WorkloadJob;

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
    pub cancel: signal::Receiver<bool>,
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
    pub fn new(cluster: Cluster, journal: JournalWriter, cancel: signal::Receiver<bool>) -> Runner {
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
        // The fault's own rollback, then the scenario's extra commands.
        let extra: Vec<Step> = scenario
            .rollback
            .iter()
            .flat_map(|command| {
                self.places(&command.on, &targets)
                    .into_iter()
                    .map(|place| Step::Run {
                        on: place,
                        argv: command.command.clone(),
                    })
            })
            .collect();
        for step in plan.rollback.iter().chain(&extra) {
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
}
