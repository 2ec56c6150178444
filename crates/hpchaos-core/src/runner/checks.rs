//! Steady-state checks before injecting and after recovery: targets
//! healthy, enough healthy nodes, the job running, and probes (also run
//! as abort conditions while the fault is active).

use regex::Regex;

use crate::faults::Place;
use crate::journal::{Entry, Stage};
use crate::scenario::model::{Check, Scenario};

use crate::phases::Baseline;

use super::Runner;

/// How long the checks after recovery may take to hold.
pub(super) const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

impl Runner {
    /// The first check that fails, if any, journaling each. After
    /// recovery the checks are retried for up to [`SETTLE`] until all hold
    /// (a restarted slurmctld shows nodes `unknown` for a few seconds), and
    /// the last attempt is journaled. A stop cuts it short.
    pub(super) async fn steady_state(
        &mut self,
        scenario: &Scenario,
        stage: Stage,
        targets: &[String],
        job: Option<u64>,
    ) -> Option<String> {
        let name = scenario.name.clone();
        let started = std::time::Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut results = Vec::new();
            for check in &scenario.steady_state {
                // A job expected to fail is not expected to run afterwards.
                let moot = stage == Stage::After
                    && *check == Check::JobRunning
                    && scenario.expect.recovery == crate::scenario::model::Recovery::JobFails;
                if moot {
                    continue;
                }
                let mut cancel = self.cancel.clone();
                let result = tokio::select! {
                    result = self.check(check, targets, job) => result,
                    _ = cancel.wait_for(|c| *c) => {
                        return Some("stopped during the steady-state checks".to_owned());
                    }
                };
                results.push(result);
            }
            let all_hold = results.iter().all(|(_, r)| r.is_ok());
            let settle_left = stage == Stage::After && started.elapsed() < SETTLE;
            if all_hold || !settle_left || self.stopping() {
                let mut first_failure = None;
                for (label, result) in results {
                    let passed = result.is_ok();
                    let mut detail = result.unwrap_or_else(|e| e);
                    if attempts > 1 {
                        detail = format!(
                            "{detail} (attempt {attempts}, {:.0}s after the first)",
                            started.elapsed().as_secs_f64()
                        );
                    }
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
                return first_failure;
            }
            tokio::time::sleep(self.cluster.profile.poll.slurm.as_std()).await;
        }
    }

    pub(super) async fn check(
        &self,
        check: &Check,
        targets: &[String],
        job: Option<u64>,
    ) -> (String, Result<String, String>) {
        let slurm = &self.cluster.slurm;
        match check {
            Check::TargetsHealthy => (
                "targets_healthy".to_owned(),
                self.targets_healthy(targets).await,
            ),
            Check::MinHealthyNodes(min) => {
                let result = match slurm.nodes().await {
                    Err(e) => Err(e.to_string()),
                    Ok(rows) => {
                        let healthy = rows.iter().filter(|r| r.healthy()).count();
                        if healthy >= *min as usize {
                            Ok(format!("{healthy} healthy"))
                        } else {
                            let unhealthy: Vec<String> = rows
                                .iter()
                                .filter(|r| !r.healthy())
                                .map(|r| r.describe())
                                .collect();
                            Err(format!(
                                "only {healthy} healthy, need {min}; unhealthy: {}",
                                unhealthy.join("; ")
                            ))
                        }
                    }
                };
                (format!("min_healthy_nodes: {min}"), result)
            }
            Check::JobRunning => {
                let result = match job {
                    None => Err("no workload".to_owned()),
                    Some(job) => match slurm.job(job).await {
                        Ok(Some(info)) if info.state.is_running() => {
                            Ok(format!("job {} RUNNING on {}", job, info.node_list))
                        }
                        Ok(Some(info)) => Err(format!("job {} is {}", job, info.state)),
                        Ok(None) => Err(format!("job {} is gone", job)),
                        Err(e) => Err(e.to_string()),
                    },
                };
                ("job_running".to_owned(), result)
            }
            Check::Probe(probe) => (
                format!("probe: {}", probe.name),
                self.probe(probe, targets).await,
            ),
        }
    }

    /// Every target usable in Slurm (and listed: a target Slurm does not
    /// list, a hidden partition read without -a or a typo, is not healthy)
    /// and, with the API, on a running instance (not being patched,
    /// checked, launched, retried).
    async fn targets_healthy(&self, targets: &[String]) -> Result<String, String> {
        let rows = self
            .cluster
            .slurm
            .nodes_named(targets)
            .await
            .map_err(|e| e.to_string())?;
        let mut bad: Vec<String> = rows
            .iter()
            .filter(|r| targets.contains(&r.name) && !r.healthy())
            .map(|r| r.describe())
            .collect();
        bad.extend(
            targets
                .iter()
                .filter(|t| !rows.iter().any(|r| &r.name == *t))
                .map(|t| format!("{t} not in Slurm")),
        );
        if let Some(api) = &self.cluster.api {
            match api.named(targets).await {
                Err(e) => bad.push(e.to_string()),
                Ok(listed) => bad.extend(targets.iter().filter_map(|t| {
                    match listed.iter().find(|n| &n.node == t) {
                        None => Some(format!("{t} not listed by the API")),
                        Some(n) if !n.running() => Some(format!(
                            "{t} API {}: {}",
                            n.status,
                            crate::cluster::sagemaker::status_meaning(&n.status)
                        )),
                        Some(_) => None,
                    }
                })),
            }
        }
        if bad.is_empty() {
            Ok(format!("{} healthy", targets.join(", ")))
        } else {
            Err(bad.join("; "))
        }
    }

    /// A probe's command on each place it names, in turn: its exit status
    /// and output as expected everywhere; the first place where not.
    async fn probe(
        &self,
        probe: &crate::scenario::model::Probe,
        targets: &[String],
    ) -> Result<String, String> {
        let mut outcome = Ok(String::new());
        for place in self.places(&probe.on, targets) {
            let endpoint = match &place {
                Place::Head => self.cluster.slurm.head.clone(),
                Place::Node(n) => self.cluster.node(n),
            };
            let line = crate::cluster::slurm_env::line(&probe.command);
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
        outcome
    }
}

impl Runner {
    /// Why the scenario must stop now, if one of its abort conditions
    /// holds: too many unhealthy nodes, a failing probe, the timeout.
    pub(super) async fn abort_reason(
        &self,
        abort: &crate::scenario::model::Abort,
        unhealthy: usize,
        timed_out: bool,
        baseline: &Baseline,
        job: Option<u64>,
        probes_due: bool,
    ) -> Option<String> {
        if let Some(max) = abort.max_unhealthy_nodes
            && unhealthy > max as usize
        {
            return Some(format!(
                "{unhealthy} nodes unhealthy, more than max_unhealthy_nodes: {max}"
            ));
        }
        // Probes run with the Slurm poll, not at every followed log line.
        for probe in abort.probes.iter().filter(|_| probes_due) {
            let check = Check::Probe(probe.clone());
            let (label, result) = self.check(&check, &baseline.targets, job).await;
            if let Err(detail) = result {
                return Some(format!("abort condition {label} failed: {detail}"));
            }
        }
        timed_out.then(|| "the abort timeout passed".to_owned())
    }
}

impl Runner {
    /// The scenario's stop conditions (`abort.when`) for `targets`.
    pub(super) fn stop_conditions(
        scenario: &Scenario,
        targets: &[String],
    ) -> Vec<crate::monitoring::stop::Condition> {
        scenario
            .abort
            .as_ref()
            .map(|a| crate::monitoring::stop::plan(&a.when, targets))
            .unwrap_or_default()
    }

    /// Reads `conditions` once, through the profile's monitoring and the
    /// API's CloudWatch client.
    pub(super) async fn read_stop_conditions(
        &self,
        conditions: &[crate::monitoring::stop::Condition],
    ) -> crate::monitoring::stop::Reading {
        let cloudwatch = self.cluster.api.as_ref().map(|a| a.cloudwatch());
        let at = crate::monitoring::stop::Endpoints {
            client: self.monitoring_client(),
            monitoring: self.cluster.profile.monitoring.as_ref(),
            cloudwatch: cloudwatch.as_ref(),
        };
        crate::monitoring::stop::read(conditions, &at).await
    }

    /// Before the injection: every stop condition can be asked (checked
    /// as monitoring expectations are), is read, and none holds; journaled
    /// as the check `stop_conditions`. How the scenario ends if not: an
    /// error for one that cannot be asked, `aborted` for one that holds.
    pub(super) async fn stop_conditions_before(
        &mut self,
        scenario: &Scenario,
        targets: &[String],
    ) -> Option<super::Ending> {
        use crate::journal::ScenarioOutcome;
        let conditions = Self::stop_conditions(scenario, targets);
        if conditions.is_empty() {
            return None;
        }
        let cloudwatch = self.cluster.api.as_ref().map(|a| a.cloudwatch());
        let at = crate::monitoring::stop::Endpoints {
            client: self.monitoring_client(),
            monitoring: self.cluster.profile.monitoring.as_ref(),
            cloudwatch: cloudwatch.as_ref(),
        };
        let askable = crate::monitoring::stop::askable(&conditions, &at).await;
        let reading = match &askable {
            Ok(()) => Some(crate::monitoring::stop::read(&conditions, &at).await),
            Err(_) => None,
        };
        let (passed, detail, ending) = match (askable, reading) {
            (Err(problems), _) => {
                let why = problems.join("; ");
                (
                    false,
                    why.clone(),
                    Some(super::Ending::new(
                        ScenarioOutcome::Error,
                        format!("the stop conditions cannot be asked: {why} (nothing was changed)"),
                    )),
                )
            }
            (Ok(()), Some(reading)) if !reading.unread.is_empty() => {
                let why: Vec<String> = reading
                    .unread
                    .iter()
                    .map(|(name, error)| format!("{name}: {error}"))
                    .collect();
                let why = why.join("; ");
                (
                    false,
                    why.clone(),
                    Some(super::Ending::new(
                        ScenarioOutcome::Error,
                        format!("the stop conditions cannot be read: {why} (nothing was changed)"),
                    )),
                )
            }
            (Ok(()), Some(reading)) => match reading.holds {
                Some(held) => (
                    false,
                    held.words(),
                    Some(super::Ending::new(
                        ScenarioOutcome::Aborted,
                        format!(
                            "{} before the injection (nothing was changed)",
                            held.words()
                        ),
                    )),
                ),
                None => (
                    true,
                    format!("{} stop condition(s) read, none holds", conditions.len()),
                    None,
                ),
            },
            (Ok(()), None) => (true, String::new(), None),
        };
        self.log(
            Some(&scenario.name),
            Entry::SteadyState {
                stage: Stage::Before,
                check: "stop_conditions".to_owned(),
                passed,
                detail,
            },
        );
        ending
    }
}
