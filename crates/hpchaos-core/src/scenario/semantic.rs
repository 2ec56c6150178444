//! Semantic validation: the rules that types alone cannot state. Deadlines
//! in phase order, an expectation that can follow from the fault, a
//! workload where one is needed, regexes that compile, a blast radius that
//! holds, and, given a cluster profile, the settings a fault needs.

use std::path::Path;

use regex::Regex;

use super::diagnostic::Diagnostic;
use super::model::*;
use super::yaml_tree::{Node, TreePath};
use crate::profile::Profile;

/// Every semantic problem in a structurally valid scenario.
pub fn check(
    file: &Path,
    tree: &Node,
    scenario: &Scenario,
    profile: Option<&Profile>,
) -> Vec<Diagnostic> {
    let mut rules = Rules {
        file,
        tree,
        out: Vec::new(),
        prefix: TreePath::of(&[]),
    };
    rules.deadlines(&scenario.expect);
    rules.expectation_fits_fault(scenario);
    rules.workload_needed(scenario);
    rules.regression_gates(scenario);
    rules.monitoring(scenario);
    rules.stop_conditions(scenario);
    rules.regexes(scenario);
    rules.node_names(scenario);
    rules.blast_radius(&scenario.target);
    rules.reason(&scenario.expect);
    rules.abort_after_deadlines(scenario);
    rules.steps(scenario, profile);
    rules.controller(scenario);
    rules.filesystem(scenario);
    rules.straggler(scenario);
    rules.network(scenario, profile);
    rules.fault_settings(scenario);
    rules.promql_parses(scenario);
    if let Some(profile) = profile {
        rules.profile_capabilities(scenario, profile);
    }
    rules.out
}

struct Rules<'a> {
    file: &'a Path,
    tree: &'a Node,
    out: Vec<Diagnostic>,
    /// Put before every path: `steps[i]` while a later step is checked
    /// with the rules written for the scenario's own fault.
    prefix: TreePath,
}

fn path(keys: &[&str]) -> TreePath {
    TreePath::of(keys)
}

impl Rules<'_> {
    fn prefixed(&self, at: &TreePath) -> TreePath {
        TreePath(self.prefix.0.iter().chain(at.0.iter()).cloned().collect())
    }

    /// Every PromQL expression the scenario gives (stop conditions,
    /// monitoring expectations, step triggers) parses, by PromQL's grammar
    /// (promql-parser): a typo is said now, not when Prometheus is asked.
    fn promql_parses(&mut self, scenario: &Scenario) {
        let mut queries: Vec<(TreePath, &String)> = Vec::new();
        for (i, c) in scenario
            .abort
            .iter()
            .flat_map(|a| a.when.iter())
            .enumerate()
        {
            if let Some(q) = &c.promql {
                queries.push((path(&["abort", "when"]).index(i).key("promql"), q));
            }
        }
        for (i, m) in scenario.expect.monitoring.iter().enumerate() {
            if let Some(q) = &m.promql {
                queries.push((path(&["expect", "monitoring"]).index(i).key("promql"), q));
            }
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            if let Some(q) = step.when.as_ref().and_then(|w| w.promql.as_ref()) {
                queries.push((path(&["steps"]).index(i).key("when").key("promql"), q));
            }
        }
        for (at, query) in queries {
            if query.trim().is_empty() {
                continue;
            }
            // `$target`/`$targets` are substituted with node names before
            // the query is asked: stand-ins parse as those would.
            let text = query.replace("$targets", "x").replace("$target", "x");
            if let Err(why) = super::promql::check(&text) {
                self.at_value(
                    &at,
                    format!("this PromQL does not parse: {}", why.trim()),
                    "fix the expression (try it in Prometheus's expression browser first)",
                );
            }
        }
    }

    /// A network fault's peers are compute nodes: never the head or a
    /// login node (hpchaos's own path runs through the head), never a
    /// target's own name; one target needs `peers`.
    fn network(&mut self, scenario: &Scenario, profile: Option<&Profile>) {
        let Fault::Network(net) = &scenario.fault else {
            return;
        };
        if let Some(profile) = profile {
            for (index, peer) in net.peers.iter().enumerate() {
                if *peer == profile.head_node.name || profile.login_nodes.contains(peer) {
                    self.at_value(
                        &path(&["fault", "network", "peers"]).index(index),
                        format!("{peer} is the head or a login node: hpchaos reaches the nodes through it, and never disturbs its traffic"),
                        "name compute nodes only",
                    );
                }
            }
        }
        let one_target = match &scenario.target.pool {
            Pool::Nodes(nodes) => nodes.len() == 1,
            _ => matches!(scenario.target.pick, Pick::Count(1)),
        };
        if net.peers.is_empty() && one_target {
            self.at_key(
                &path(&["fault", "network"]),
                "with one target and no `peers`, there is no traffic to disturb".to_owned(),
                "add `peers: [ip-10-1-0-13]` (the nodes whose traffic from the target is disturbed), or pick two targets or more",
            );
        }
    }

    /// Settings of the training-failure faults that would do nothing or
    /// nothing sensible: a `duration` of zero (undone as it is made), a
    /// power cap of 0 W or clocks locked at 0 MHz, a restart with a
    /// `duration` (only a stop lasts), a hang with no job to stop a rank
    /// of, and a network peer named twice or that is a target itself.
    fn fault_settings(&mut self, scenario: &Scenario) {
        use crate::scenario::model::DaemonAction;
        let (kind, duration) = match &scenario.fault {
            Fault::Filesystem(f) => ("filesystem", f.duration),
            Fault::Hang(h) => ("hang", h.duration),
            Fault::Network(n) => ("network", n.duration),
            Fault::Straggler(s) => ("straggler", Some(s.duration)),
            Fault::Daemon(d) => ("daemon", d.duration),
            _ => return,
        };
        if duration.is_some_and(|d| d.as_std().is_zero()) {
            self.at_value(
                &path(&["fault", kind, "duration"]),
                "a duration of 0 s undoes the fault as it is made".to_owned(),
                if kind == "straggler" {
                    "give how long the node is slowed, e.g. `duration: 2m`"
                } else {
                    "give how long it lasts, e.g. `duration: 2m`, or leave `duration` out: it is undone at the rollback"
                },
            );
        }
        match &scenario.fault {
            Fault::Straggler(straggler) => {
                let key = straggler.slow.key();
                let zero = match straggler.slow {
                    Slow::PowerCap { watts } => watts == 0,
                    Slow::GpuClocks { max_mhz } => max_mhz == 0,
                    Slow::CpuQuota { cpus } => {
                        if cpus.is_nan() || cpus < 0.001 {
                            self.at_value(
                                &path(&["fault", "straggler", "slow", key, "cpus"]),
                                format!("{cpus} CPUs: a quota under 0.001 of a CPU (1 ms in each second, the kernel's least quota at its longest period) would stop the job's processes, not slow them"),
                                "give the CPU time left to the job's processes on the node, e.g. `cpu_quota: { cpus: 0.5 }` for half a CPU",
                            );
                        }
                        false
                    }
                };
                if zero {
                    self.at_value(
                        &path(&["fault", "straggler", "slow", key]),
                        "a GPU cannot run at 0: nvidia-smi refuses it, and it would be a stopped GPU, not a slow one".to_owned(),
                        "give a limit inside the GPU's range, e.g. `power_cap: { watts: 350 }` or `gpu_clocks: { max_mhz: 990 }`",
                    );
                }
            }
            Fault::Daemon(daemon)
                if daemon.action == DaemonAction::Restart && daemon.duration.is_some() =>
            {
                self.at_key(
                    &path(&["fault", "daemon", "duration"]),
                    "a restart is over once the daemon is back: `duration` is for a stop"
                        .to_owned(),
                    "leave `duration` out, or say `action: stop` to keep it stopped that long",
                );
            }
            Fault::Hang(_) if scenario.workload.is_none() => {
                self.at_key(
                    &path(&["fault", "hang"]),
                    "a hang stops one rank of the workload's job, and this scenario has no workload".to_owned(),
                    "add `workload: { canary: { nodes: 2 } }` (or an `existing:` job) and `target: { pool: workload }`",
                );
            }
            Fault::Network(net) => {
                let named = match &scenario.target.pool {
                    Pool::Nodes(nodes) => nodes.as_slice(),
                    _ => &[],
                };
                for (index, peer) in net.peers.iter().enumerate() {
                    let at = path(&["fault", "network", "peers"]).index(index);
                    if net.peers[..index].contains(peer) {
                        self.at_value(&at, format!("{peer} is named twice"), "name each peer once");
                    } else if named.contains(peer) {
                        self.at_value(
                            &at,
                            format!("{peer} is a target: a node's traffic to itself is not disturbed"),
                            "name the nodes on the other side of the fault, or leave `peers` out to disturb the traffic between the targets",
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// A straggler is measured on a workload's progress, over a quiet
    /// window that outlasts the slow-down (so its "after" is seen).
    fn straggler(&mut self, scenario: &Scenario) {
        let Fault::Straggler(straggler) = &scenario.fault else {
            return;
        };
        if scenario.workload.is_none() {
            self.at_key(
                &path(&["fault", "straggler"]),
                "a straggler is measured by the job's step rate, and this scenario has no workload".to_owned(),
                "add `workload: { canary: { nodes: 2 } }` (or an existing job with its progress) and `target: { pool: workload }`",
            );
        }
        if let Some(crate::scenario::model::Workload::Canary(canary)) = &scenario.workload
            && canary.warmup_steps.unwrap_or(0) == 0
        {
            self.at_key(
                &path(&["workload", "canary"]),
                "a straggler's slowdown is the step rate during it against the rate before it, and this canary is slowed as it starts: there is no rate before".to_owned(),
                "give the canary a while of steps first, e.g. `warmup_steps: 100` (20 s at the lab canary's 5 steps/s; a minute or more of yours)",
            );
        }
        let needed = straggler.duration.as_std() + std::time::Duration::from_secs(10);
        if scenario
            .expect
            .quiet_for
            .is_some_and(|q| q.as_std() < needed)
        {
            self.at_value(
                &path(&["expect", "quiet_for"]),
                format!(
                    "the quiet window ends before the slow-down ({}) and 10 s after it: the step rate after it is never read",
                    straggler.duration
                ),
                format!("make `quiet_for` at least {}s", needed.as_secs()),
            );
        }
        if let Some(limit) = straggler.max_slowdown
            && limit < 1.0
        {
            self.at_value(
                &path(&["fault", "straggler", "max_slowdown"]),
                format!("a slowdown of {limit} would be a speed-up"),
                "give how many times slower is still acceptable, e.g. `max_slowdown: 1.5`",
            );
        }
    }

    /// A filesystem fault names an absolute mount point (never `/`) and a
    /// size bytesize reads.
    fn filesystem(&mut self, scenario: &Scenario) {
        let Fault::Filesystem(fs) = &scenario.fault else {
            return;
        };
        if let Some((message, hint)) = fs_path_problem(&fs.path, &fs.effect) {
            self.at_value(&path(&["fault", "filesystem", "path"]), message, hint);
        }
        if let FsEffect::Full { leave_free } = &fs.effect
            && leave_free.parse::<bytesize::ByteSize>().is_err()
        {
            self.at_value(
                &path(&["fault", "filesystem", "effect", "full", "leave_free"]),
                format!("`{leave_free}` is not a size"),
                "write bytes with a unit: `0`, `10MiB`, `1GB`",
            );
        }
    }

    /// `slurmctld` is a fault only with `allow_controller: true` (on one
    /// head node its restart stops all scheduling while it lasts), and
    /// never with other faults at once (no `steps:`, not a step).
    fn controller(&mut self, scenario: &Scenario) {
        use crate::scenario::model::SlurmDaemon;
        let controller =
            |f: &Fault| matches!(f, Fault::Daemon(d) if d.name == SlurmDaemon::Slurmctld);
        if let Fault::Daemon(d) = &scenario.fault
            && d.name == SlurmDaemon::Slurmctld
        {
            if !d.allow_controller && scenario.expect.recovery != Recovery::Takeover {
                self.at_value(
                    &path(&["fault", "daemon", "name"]),
                    format!(
                        "{} slurmctld stops all scheduling while it lasts (one head node: no backup takes over)",
                        if d.action == crate::scenario::model::DaemonAction::Stop { "stopping" } else { "restarting" }
                    ),
                    "say `allow_controller: true` under `daemon:` if you mean it, or, on a multi-head cluster, expect `recovery: takeover`",
                );
            }
            if scenario.expect.recovery == Recovery::Takeover
                && (d.action != crate::scenario::model::DaemonAction::Stop || d.duration.is_some())
            {
                // At what is wrong: the stop's duration, else the action.
                let at = if d.duration.is_some() {
                    "duration"
                } else {
                    "action"
                };
                self.at_value(
                    &path(&["fault", "daemon", at]),
                    "a backup takes over only once the primary has not answered for SlurmctldTimeout (HyperPod: 120 s): a restart, or a stop with a `duration`, may be back before".to_owned(),
                    "say `action: stop` with no `duration` (the rollback starts the primary again)",
                );
            }
            if !scenario.steps.is_empty() {
                self.at_key(
                    &path(&["steps"]),
                    "a slurmctld fault runs alone: no other fault at once".to_owned(),
                    "move the steps to a scenario of their own",
                );
            }
        }
        for (index, step) in scenario.steps.iter().enumerate() {
            if controller(&step.fault) {
                self.at_key(
                    &path(&["steps"]).index(index).key("fault"),
                    "a slurmctld fault runs alone, never as a step with other faults".to_owned(),
                    "make it a scenario of its own (its `fault:`, with `allow_controller: true`)",
                );
            }
        }
    }

    /// Later steps: names unique (and not the scenario's, which names its
    /// first step), a trigger each (`after`, `when`, or both), a `when`
    /// naming an earlier step and one of its phases, or a PromQL
    /// condition (with Prometheus in the profile); and each step's fault,
    /// targets, expectation and mark checked by the rules the scenario's
    /// own fault is checked by, at the step's place in the file.
    fn steps(&mut self, scenario: &Scenario, profile: Option<&Profile>) {
        let mut names: Vec<&str> = vec![scenario.name.as_str()];
        for (index, step) in scenario.steps.iter().enumerate() {
            let at = path(&["steps"]).index(index);
            if names.contains(&step.name.as_str()) {
                self.at_value(
                    &at.key("name"),
                    format!(
                        "step name `{}` is taken{}",
                        step.name,
                        if step.name == scenario.name {
                            " by the scenario itself (its name names its first step)"
                        } else {
                            " by an earlier step"
                        }
                    ),
                    "give each step its own name",
                );
            }
            if step.after.is_none() && step.when.is_none() {
                self.at_key(
                    &at,
                    format!("step `{}` says neither `after` nor `when`", step.name),
                    "add `after: 30s` (from the first injection) or `when: { phase: replace }` (an earlier step's phase)",
                );
            }
            if let Some(when) = &step.when {
                let at = at.key("when");
                match (&when.phase, &when.promql) {
                    (Some(_), Some(_)) => self.at_key(
                        &at.key("promql"),
                        "a trigger is a phase of an earlier step or a PromQL condition, not both".to_owned(),
                        "keep one; use `after` with `when` for a delay as well",
                    ),
                    (None, None) => self.at_key(
                        &at,
                        "this trigger names neither a `phase` nor a `promql` condition".to_owned(),
                        "add `phase: replace` (with `step:` for a step other than the first) or `promql: '<expression>'`",
                    ),
                    _ => {}
                }
                if when.step.is_some() && when.phase.is_none() {
                    self.at_key(
                        &at.key("step"),
                        "`step` goes with `phase`".to_owned(),
                        "add the phase of that step that triggers this one",
                    );
                }
                let earlier = when.step.as_deref().unwrap_or(scenario.name.as_str());
                match scenario.step_names()[..=index]
                    .iter()
                    .position(|n| *n == earlier)
                {
                    None => self.at_value(
                        &at.key("step"),
                        format!("`{earlier}` is not an earlier step of this scenario"),
                        format!(
                            "name one of: {} (a step can only wait for one before it)",
                            scenario.step_names()[..=index].join(", ")
                        ),
                    ),
                    Some(found) => {
                        if let Some(phase) = when.phase {
                            let expect = match found {
                                0 => scenario.expect.clone(),
                                n => scenario.step_expect(&scenario.steps[n - 1]),
                            };
                            // A later step times its nodes' phases only (the
                            // job's resume is the first step's).
                            let phases = expect.phases(found == 0 && scenario.workload.is_some());
                            if !phases.contains(&phase) {
                                let listed: Vec<String> =
                                    phases.iter().map(|p| format!("`{p}`")).collect();
                                self.at_value(
                                    &at.key("phase"),
                                    format!(
                                        "step `{earlier}` (recovery `{}`) has no `{phase}` phase",
                                        expect.recovery
                                    ),
                                    format!("its phases: {}", listed.join(", ")),
                                );
                            }
                        }
                    }
                }
                if when.promql.is_some()
                    && let Some(profile) = profile
                    && profile
                        .monitoring
                        .as_ref()
                        .and_then(|m| m.prometheus.as_ref())
                        .is_none()
                {
                    self.at_value(
                        &at.key("promql"),
                        format!("a PromQL trigger needs Prometheus, but the cluster profile `{}` has no `monitoring.prometheus`", profile.name),
                        "add `monitoring: { prometheus: { url: http://HOST:9090 } }` to the profile",
                    );
                }
            }
            // The step as a scenario of its own, checked where it is written.
            let mut own = scenario.clone();
            own.fault = step.fault.clone();
            own.expect = scenario.step_expect(step);
            if let Some(target) = &step.target {
                own.target = target.clone();
            }
            own.steps = Vec::new();
            let saved = std::mem::replace(&mut self.prefix, at.clone());
            self.deadlines(&own.expect);
            let before = self.out.len();
            self.expectation_fits_fault(&own);
            // Without its own `expect`, the step took the scenario's: say
            // where to write the one it needs.
            if step.expect.is_none() {
                for said in &mut self.out[before..] {
                    if let Some(hint) = &mut said.hint {
                        hint.push_str(&format!(
                            " (the step has no `expect:` of its own and takes the scenario's `recovery: {}`: give it one, e.g. `expect: {{ recovery: none, quiet_for: 30s }}`)",
                            scenario.expect.recovery
                        ));
                    }
                }
            }
            self.reason(&own.expect);
            if step.target.is_some() {
                self.node_names(&own);
                self.blast_radius(&own.target);
            }
            if let Some(profile) = profile {
                let no_api = profile.sagemaker.is_none();
                if no_api && own.fault.needs_sagemaker() {
                    self.at_key(
                        &path(&["fault"]),
                        format!(
                            "the `{}` fault needs the SageMaker API, but the cluster profile `{}` has no `sagemaker:` section",
                            own.fault.kind(),
                            profile.name
                        ),
                        "add a `sagemaker:` section (cluster_name, region) to the profile",
                    );
                }
            }
            self.prefix = saved;
            names.push(step.name.as_str());
        }
    }

    /// A problem with the key at `at` (where a reader looks first).
    fn at_key(&mut self, at: &TreePath, message: String, hint: impl Into<String>) {
        let at = self.prefixed(at);
        let position = self.tree.locate(&at);
        self.out
            .push(Diagnostic::new(self.file, position, message).with_hint(hint));
    }

    /// A problem with the value at `at`.
    fn at_value(&mut self, at: &TreePath, message: String, hint: impl Into<String>) {
        let at = self.prefixed(at);
        let position = self.tree.locate_value(&at);
        self.out
            .push(Diagnostic::new(self.file, position, message).with_hint(hint));
    }

    fn deadlines(&mut self, expect: &Expect) {
        let allowed = expect.recovery.phases();
        let set = expect.deadlines.set();
        for phase in set.keys() {
            if !allowed.contains(phase) {
                let listed: Vec<_> = allowed.iter().map(|p| format!("`{p}`")).collect();
                let hint = match (phase, expect.recovery) {
                    (Phase::Replace, Recovery::Reboot) => "did you mean `reboot`?".to_owned(),
                    (Phase::Reboot, Recovery::Replace) => "did you mean `replace`?".to_owned(),
                    (_, Recovery::None) => {
                        "`recovery: none` has no phases to time; use `quiet_for` instead".to_owned()
                    }
                    _ => format!(
                        "recovery `{}` goes through: {}",
                        expect.recovery,
                        listed.join(", ")
                    ),
                };
                self.at_key(
                    &path(&["expect", "deadlines", phase.as_str()]),
                    format!(
                        "a `{phase}` deadline does not apply to recovery `{}`",
                        expect.recovery
                    ),
                    hint,
                );
            }
        }
        // Deadlines count from the injection, so they must not decrease.
        let ordered: Vec<_> = allowed
            .iter()
            .filter_map(|p| set.get(p).map(|d| (*p, *d)))
            .collect();
        for pair in ordered.windows(2) {
            let [(earlier, earlier_at), (later, later_at)] = pair else {
                continue;
            };
            if later_at < earlier_at {
                self.at_value(
                    &path(&["expect", "deadlines", later.as_str()]),
                    format!(
                        "the `{later}` deadline ({later_at}) is before the `{earlier}` deadline ({earlier_at}), but `{later}` comes after `{earlier}`"
                    ),
                    format!("deadlines count from the injection: make `{later}` at least {earlier_at}"),
                );
            }
        }
        if expect.quiet_for.is_some() && expect.recovery != Recovery::None {
            self.at_key(
                &path(&["expect", "quiet_for"]),
                format!(
                    "`quiet_for` only applies to `recovery: none`, not `{}`",
                    expect.recovery
                ),
                "remove `quiet_for`, or set `recovery: none`",
            );
        }
    }

    fn expectation_fits_fault(&mut self, scenario: &Scenario) {
        use Recovery as R;
        let recovery = scenario.expect.recovery;
        let (allowed, why): (&[Recovery], &str) = match &scenario.fault {
            Fault::GpuStress(_) => (&[R::None], "GPU stress must leave a healthy node healthy"),
            Fault::ProcessKill(kill) => match kill.target {
                KillTarget::JobTasks => (
                    &[R::None, R::Requeue, R::JobFails],
                    "killing tasks does not change the node",
                ),
                _ => (
                    &[R::None, R::Reboot, R::Replace, R::Requeue, R::JobFails],
                    "",
                ),
            },
            Fault::NodeReboot(_) => (
                &[R::Reboot, R::Requeue, R::JobFails],
                "a reboot fault is recovered by the reboot itself",
            ),
            Fault::NodeReplace(_) => (
                &[R::Replace, R::Requeue, R::JobFails],
                "a replace fault is recovered by the replacement",
            ),
            Fault::Xid(_) => (
                &[R::None, R::Reboot, R::Replace, R::Requeue, R::JobFails],
                "",
            ),
            Fault::DeepHealthCheck(_) => (
                &[R::HealthCheck, R::Reboot, R::Replace],
                "a deep health check gives the node back, or HyperPod repairs a node that fails it",
            ),
            Fault::Daemon(d) if d.name == crate::scenario::model::SlurmDaemon::Slurmctld => (
                &[R::None, R::Takeover],
                "a restarted slurmctld must keep the running jobs and give the nodes back: expect `none` with `quiet_for`, and `job_running` in steady_state; on a multi-head cluster a stopped primary's backup takes over: `takeover`",
            ),
            Fault::Daemon(_) => (
                &[R::None, R::Requeue, R::JobFails],
                "a restarted slurmd takes its node's job steps with it: the job fails or is requeued (or nothing, on an idle node)",
            ),
            Fault::Network(_) => (
                &[R::None, R::JobFails, R::Requeue],
                "a network fault touches no node's health: the job's watchdog ends it (job_fails, or requeue), or it only slows down (none)",
            ),
            Fault::Straggler(_) => (
                &[R::None],
                "a straggler fails nothing: the cluster must not react (`none` with `quiet_for` covering the slow-down and a while after it), and the job's step rate is measured",
            ),
            Fault::Filesystem(_) => (
                &[R::JobFails, R::Requeue, R::None, R::Reboot, R::Replace],
                "",
            ),
            Fault::Hang(_) => (
                &[R::JobFails, R::Requeue, R::None],
                "a hang touches no node: the job's watchdog ends it (job_fails, or requeue when the job restarts itself), or it goes on once let go (none)",
            ),
        };
        if !allowed.contains(&recovery) {
            let listed: Vec<_> = allowed.iter().map(|r| format!("`{r}`")).collect();
            self.at_value(
                &path(&["expect", "recovery"]),
                format!(
                    "recovery `{recovery}` cannot follow from a `{}` fault{}",
                    scenario.fault.kind(),
                    match why.is_empty() {
                        true => String::new(),
                        false => format!(": {why}"),
                    }
                ),
                format!("expect one of: {}", listed.join(", ")),
            );
        }
    }

    /// Each stop condition (`abort.when`) is exactly one of a PromQL
    /// condition, an alert or a CloudWatch alarm, labels go with alerts,
    /// nothing is empty, and names are unique.
    fn stop_conditions(&mut self, scenario: &Scenario) {
        let Some(abort) = &scenario.abort else {
            return;
        };
        let mut names: Vec<String> = Vec::new();
        for (index, item) in abort.when.iter().enumerate() {
            let at = path(&["abort", "when"]).index(index);
            let given: Vec<&str> = [
                ("promql", item.promql.is_some()),
                ("alert", item.alert.is_some()),
                ("cloudwatch_alarm", item.cloudwatch_alarm.is_some()),
            ]
            .iter()
            .filter(|(_, set)| *set)
            .map(|(key, _)| *key)
            .collect();
            match given.as_slice() {
                [] => self.at_key(
                    &at,
                    "this stop condition says none of `promql`, `alert`, `cloudwatch_alarm`".to_owned(),
                    "add `promql: '<expression>'` (holds while it returns a series), `alert: <alertname>` or `cloudwatch_alarm: <alarm name>`",
                ),
                [_] => {}
                [_, second, ..] => self.at_key(
                    &at.key(second),
                    format!("a stop condition is one of `promql`, `alert`, `cloudwatch_alarm`; this one says {}", given.join(" and ")),
                    "split it into one item of `abort.when` each",
                ),
            }
            if item.alert.is_none() && !item.labels.is_empty() {
                self.at_key(
                    &at.key("labels"),
                    "`labels` go with `alert`".to_owned(),
                    "put the labels into the PromQL selector, or drop them for a CloudWatch alarm",
                );
            }
            for (key, value) in [
                ("promql", &item.promql),
                ("alert", &item.alert),
                ("cloudwatch_alarm", &item.cloudwatch_alarm),
            ] {
                if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                    self.at_value(
                        &at.key(key),
                        format!("the stop condition's `{key}` is empty"),
                        match key {
                            "promql" => "write the condition, e.g. `count(slurm_node_status{status=~\"down.*\"}) > 2`",
                            "alert" => "write the alerting rule's name, e.g. `alert: SlurmNodeDrained`",
                            _ => "write the alarm's name as CloudWatch lists it",
                        },
                    );
                }
            }
            let name = item.label(index);
            if names.contains(&name) {
                self.at_value(
                    &at.key(if item.name.is_some() {
                        "name"
                    } else {
                        given.first().copied().unwrap_or("name")
                    }),
                    format!("two stop conditions are named `{name}`"),
                    "give each one its own `name:`",
                );
            }
            names.push(name);
        }
    }

    /// Each monitoring expectation is a PromQL condition or an alert (not
    /// both), labels go with alerts, names are unique, and deadlines fit
    /// within the abort timeout.
    fn monitoring(&mut self, scenario: &Scenario) {
        let mut names: Vec<String> = Vec::new();
        for (index, item) in scenario.expect.monitoring.iter().enumerate() {
            let at = path(&["expect", "monitoring"]).index(index);
            match (&item.promql, &item.alert) {
                (Some(_), Some(_)) => self.at_key(
                    &at.key("alert"),
                    "an expectation is either `promql` or `alert`, not both".to_owned(),
                    "split it into two items of `expect.monitoring`",
                ),
                (None, None) => self.at_key(
                    &at,
                    "this monitoring expectation says neither `promql` nor `alert`".to_owned(),
                    "add `promql: '<expression>'` (true when it returns a series) or `alert: <alertname>`",
                ),
                _ => {}
            }
            if item.promql.is_some() && !item.labels.is_empty() {
                self.at_key(
                    &at.key("labels"),
                    "`labels` go with `alert`; a PromQL condition carries its own matchers"
                        .to_owned(),
                    "put the labels into the query's selector: `metric{Hostname=\"$target\"}`",
                );
            }
            if let Some(alert) = &item.alert
                && alert.trim().is_empty()
            {
                self.at_value(
                    &at.key("alert"),
                    "the alert's name is empty".to_owned(),
                    "write the alerting rule's name, e.g. `alert: GpuXidError` (observability/alerts.yml)",
                );
            }
            if item.within.as_std().is_zero() {
                self.at_value(
                    &at.key("within"),
                    "a deadline of 0s can never be met: the monitoring needs at least a scrape".to_owned(),
                    "give it the scrape interval plus the rule's `for:` at least, e.g. `within: 60s`",
                );
            }
            if let Some(query) = &item.promql
                && query.trim().is_empty()
            {
                self.at_value(
                    &at.key("promql"),
                    "the PromQL expression is empty".to_owned(),
                    "write the condition, e.g. `DCGM_FI_DEV_XID_ERRORS{Hostname=\"$target\"} > 0`",
                );
            }
            let name = item.label(index);
            if names.contains(&name) {
                self.at_value(
                    &at.key(if item.name.is_some() { "name" } else { "alert" }),
                    format!("two monitoring expectations are named `{name}`"),
                    "give each one its own `name:`",
                );
            }
            names.push(name);
            if let Some(limit) = scenario.abort.as_ref().and_then(|a| a.timeout)
                && item.within > limit
            {
                self.at_value(
                    &at.key("within"),
                    format!(
                        "deadline {} is after the abort timeout {}: it could never be judged",
                        item.within, limit
                    ),
                    "shorten `within` or lengthen `abort.timeout`",
                );
            }
        }
    }

    /// Each regression gate names a phase the scenario times, once.
    fn regression_gates(&mut self, scenario: &Scenario) {
        let Some(regression) = &scenario.expect.regression else {
            return;
        };
        let timed = scenario.expect.phases(scenario.workload.is_some());
        let listed: Vec<String> = timed.iter().map(|p| format!("`{p}`")).collect();
        let one = matches!(regression, crate::scenario::model::Regression::One(_));
        let mut seen = Vec::new();
        for (index, gate) in regression.gates().into_iter().enumerate() {
            let at = if one {
                path(&["expect", "regression"]).key("phase")
            } else {
                path(&["expect", "regression"]).index(index).key("phase")
            };
            if !timed.contains(&gate.phase) {
                self.at_value(
                    &at,
                    format!(
                        "phase `{}` is not one this scenario times (recovery `{}`{})",
                        gate.phase,
                        scenario.expect.recovery,
                        if scenario.workload.is_none() {
                            ", no workload"
                        } else {
                            ""
                        }
                    ),
                    format!("gate one of: {}", listed.join(", ")),
                );
            } else if seen.contains(&gate.phase) {
                self.at_value(
                    &at,
                    format!("phase `{}` is gated twice", gate.phase),
                    "keep one gate per phase",
                );
            }
            seen.push(gate.phase);
        }
    }

    fn workload_needed(&mut self, scenario: &Scenario) {
        if scenario.workload.is_some() {
            return;
        }
        let hint = "add a `workload:` (an `existing:` job or a `canary:` job)";
        let expect = &scenario.expect;
        if matches!(expect.recovery, Recovery::Requeue | Recovery::JobFails) {
            self.at_value(
                &path(&["expect", "recovery"]),
                format!(
                    "recovery `{}` is about a job, but the scenario has no workload",
                    expect.recovery
                ),
                hint,
            );
        }
        for phase in [Phase::Resume, Phase::JobEnd] {
            if expect.deadlines.set().contains_key(&phase) {
                self.at_key(
                    &path(&["expect", "deadlines", phase.as_str()]),
                    format!("a `{phase}` deadline needs a workload to watch"),
                    hint,
                );
            }
        }
        if expect.max_lost_steps.is_some() {
            self.at_key(
                &path(&["expect", "max_lost_steps"]),
                "`max_lost_steps` needs a workload whose progress is read".to_owned(),
                hint,
            );
        }
        if scenario.target.pool == Pool::Workload {
            self.at_value(
                &path(&["target", "pool"]),
                "`pool: workload` targets the workload's nodes, but the scenario has no workload"
                    .to_owned(),
                hint,
            );
        }
        match &scenario.fault {
            Fault::ProcessKill(ProcessKill {
                target: KillTarget::JobTasks,
                ..
            }) => self.at_value(
                &path(&["fault", "process_kill", "target"]),
                "`job_tasks` kills the workload's tasks, but the scenario has no workload"
                    .to_owned(),
                hint,
            ),
            Fault::Xid(Xid {
                crash_task_after: Some(_),
                ..
            }) => self.at_key(
                &path(&["fault", "xid", "crash_task_after"]),
                "`crash_task_after` crashes the workload's task, but the scenario has no workload"
                    .to_owned(),
                hint,
            ),
            _ => {}
        }
        for (index, check) in scenario.steady_state.iter().enumerate() {
            if *check == Check::JobRunning {
                self.at_value(
                    &path(&["steady_state"]).index(index),
                    "`job_running` checks the workload, but the scenario has no workload"
                        .to_owned(),
                    hint,
                );
            }
        }
    }

    fn regexes(&mut self, scenario: &Scenario) {
        let progress = match &scenario.workload {
            Some(Workload::Canary(canary)) => {
                Some((path(&["workload", "canary", "progress"]), &canary.progress))
            }
            Some(Workload::Existing(existing)) => existing
                .progress
                .as_ref()
                .map(|p| (path(&["workload", "existing", "progress"]), p)),
            None => None,
        };
        if let Some((at, progress)) = progress {
            if let Some(pattern) = &progress.pattern {
                self.regex(&at.key("pattern"), pattern, true);
            }
            if let Some(checkpoint) = &progress.checkpoint {
                self.regex(&at.key("checkpoint"), checkpoint, false);
            }
            if let Some(resumed) = &progress.resumed {
                self.regex(&at.key("resumed"), resumed, false);
            }
            if let Some(stall) = progress.stalled_after
                && stall.as_std() < std::time::Duration::from_secs(5)
            {
                self.at_key(
                    &at.key("stalled_after"),
                    format!("`stalled_after: {stall}` is shorter than a few reads of the job's output: every pause between steps would be a stall"),
                    "give a time above the job's longest step and checkpoint pause and below its watchdog timeout, e.g. `stalled_after: 2m`",
                );
            }
            // A stall is said `stalled_after` after the last step, so no
            // sooner after the injection: a detect deadline shorter than
            // that is missed whenever the stall is what detects.
            if let (Some(stall), Some(detect)) = (
                progress.stalled_after,
                scenario.expect.deadlines.set().get(&Phase::Detect).copied(),
            ) && stall.as_std() >= detect.as_std()
            {
                self.at_key(
                    &at.key("stalled_after"),
                    format!("`stalled_after: {stall}` is not shorter than the detect deadline ({detect}): a stall is said that long after the last step, after the deadline"),
                    format!("make `stalled_after` shorter than {detect}, or the detect deadline longer than {stall}"),
                );
            }
            if let Some(output) = progress.output.as_deref().filter(|o| !o.starts_with('/')) {
                self.at_key(
                    &at.key("output"),
                    if output.is_empty() {
                        "the output path is empty".to_owned()
                    } else {
                        format!("`{output}` is a relative path: hpchaos reads it on the head node, not in the job's directory")
                    },
                    "give the whole path, e.g. /fsx/logs/train.out (or leave it out: the job's StdOut is read from scontrol)",
                );
            }
        } else if scenario.expect.max_lost_steps.is_some() && scenario.workload.is_some() {
            self.at_key(
                &path(&["expect", "max_lost_steps"]),
                "`max_lost_steps` needs the workload's `progress.pattern` to count steps"
                    .to_owned(),
                "add `progress: { pattern: 'step (\\d+)' }` to the workload",
            );
        }
        if let Fault::ProcessKill(ProcessKill {
            target: KillTarget::Pattern(pattern),
            ..
        }) = &scenario.fault
        {
            self.regex(
                &path(&["fault", "process_kill", "target", "pattern"]),
                pattern,
                false,
            );
        }
        let probes = scenario
            .steady_state
            .iter()
            .enumerate()
            .filter_map(|(i, check)| match check {
                Check::Probe(probe) => Some((path(&["steady_state"]).index(i).key("probe"), probe)),
                _ => None,
            })
            .chain(scenario.abort.iter().flat_map(|abort| {
                abort
                    .probes
                    .iter()
                    .enumerate()
                    .map(|(i, probe)| (path(&["abort", "probes"]).index(i), probe))
            }))
            .collect::<Vec<_>>();
        for (at, probe) in probes {
            if let Some(expected) = &probe.expect_output {
                self.regex(&at.key("expect_output"), expected, false);
            }
        }
    }

    fn regex(&mut self, at: &TreePath, pattern: &str, needs_number_group: bool) {
        match Regex::new(pattern) {
            Err(err) => {
                let last_line = err
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let first_line = last_line.trim_start_matches("error: ").to_owned();
                self.at_value(
                    at,
                    format!("`{at}` is not a valid regular expression: {first_line}"),
                    "check brackets and escapes; in YAML, single-quote patterns with backslashes",
                );
            }
            Ok(regex) if needs_number_group && regex.captures_len() < 2 => self.at_value(
                at,
                format!("`{at}` has no capture group for the step number"),
                "wrap the number in parentheses, e.g. `step (\\d+)`",
            ),
            Ok(_) => {}
        }
    }

    /// Node names must be host names: they reach command lines.
    fn node_names(&mut self, scenario: &Scenario) {
        let hint =
            "use letters, digits, `-`, `_` and `.` only (HyperPod names nodes like ip-10-1-0-11)";
        let mut named: Vec<(TreePath, &String)> = Vec::new();
        if let Pool::Nodes(nodes) = &scenario.target.pool {
            for (i, n) in nodes.iter().enumerate() {
                named.push((path(&["target", "pool", "nodes"]).index(i), n));
            }
        }
        for (i, n) in scenario.target.exclude.iter().enumerate() {
            named.push((path(&["target", "exclude"]).index(i), n));
        }
        for (at, name) in named {
            if !crate::profile::valid_host_name(name) {
                self.at_value(&at, format!("`{name}` is not a node name"), hint);
            }
        }
    }

    fn blast_radius(&mut self, target: &Target) {
        let cap = target.max_nodes;
        match &target.pick {
            Pick::Count(count) if *count > cap => self.at_value(
                &path(&["target", "pick", "count"]),
                format!("picking {count} nodes exceeds the blast-radius cap `max_nodes: {cap}`"),
                format!("lower the count or raise `max_nodes` to {count} if you mean it"),
            ),
            _ => {}
        }
        if let Pool::Nodes(nodes) = &target.pool {
            let remaining: Vec<_> = nodes
                .iter()
                .filter(|n| !target.exclude.contains(n))
                .collect();
            if remaining.is_empty() {
                self.at_key(
                    &path(&["target", "exclude"]),
                    "`exclude` removes every node listed in `pool.nodes`: nothing is left to target".to_owned(),
                    "remove nodes from `exclude` or add some to `pool.nodes`",
                );
            }
            let hit = match target.pick {
                Pick::All => remaining.len(),
                Pick::Count(count) => {
                    if count as usize > remaining.len() && !remaining.is_empty() {
                        self.at_value(
                            &path(&["target", "pick", "count"]),
                            format!(
                                "cannot pick {count} of the {} listed node(s)",
                                remaining.len()
                            ),
                            "list more nodes or lower the count",
                        );
                    }
                    (count as usize).min(remaining.len())
                }
                Pick::Percent(percent) => (remaining.len() * percent as usize).div_ceil(100),
            };
            if hit > cap as usize {
                self.at_key(
                    &path(&["target", "max_nodes"]),
                    format!("the target resolves to {hit} nodes, above `max_nodes: {cap}`"),
                    format!("raise `max_nodes` to {hit} if you mean it, or pick fewer nodes"),
                );
            }
        }
    }

    fn reason(&mut self, expect: &Expect) {
        let Some(reason) = &expect.reason else { return };
        for exact in ["Action:Replace", "Action:Reboot"] {
            let squashed: String = reason.chars().filter(|c| !c.is_whitespace()).collect();
            if reason != exact && squashed.eq_ignore_ascii_case(exact) {
                self.at_value(
                    &path(&["expect", "reason"]),
                    format!(
                        "HyperPod matches the reason `{exact}` exactly; `{reason}` would be ignored"
                    ),
                    format!("write `{exact}`"),
                );
            }
        }
        if let Some(default) = expect.recovery.default_reason()
            && reason.starts_with("Action:")
            && reason != default
            && ["Action:Replace", "Action:Reboot"].contains(&reason.as_str())
        {
            self.at_value(
                &path(&["expect", "reason"]),
                format!(
                    "reason `{reason}` contradicts `recovery: {}`",
                    expect.recovery
                ),
                format!("recovery `{}` goes with `{default}`", expect.recovery),
            );
        }
    }

    fn abort_after_deadlines(&mut self, scenario: &Scenario) {
        let Some(timeout) = scenario.abort.as_ref().and_then(|a| a.timeout) else {
            return;
        };
        let last = scenario
            .expect
            .deadlines
            .set()
            .into_iter()
            .chain(scenario.expect.quiet_for.map(|q| (Phase::Quiet, q)))
            .max_by_key(|(_, deadline)| *deadline);
        if let Some((phase, deadline)) = last
            && timeout < deadline
        {
            self.at_value(
                &path(&["abort", "timeout"]),
                format!("the abort timeout ({timeout}) ends the run before the `{phase}` deadline ({deadline}) can be judged"),
                format!("make `abort.timeout` longer than {deadline}"),
            );
        }
        if let Fault::GpuStress(stress) = &scenario.fault
            && timeout < stress.duration
        {
            self.at_value(
                &path(&["abort", "timeout"]),
                format!(
                    "the abort timeout ({timeout}) is shorter than the stress duration ({})",
                    stress.duration
                ),
                "make the timeout longer than the stress",
            );
        }
    }

    fn profile_capabilities(&mut self, scenario: &Scenario, profile: &Profile) {
        let monitoring = profile.monitoring.as_ref();
        for (index, item) in scenario.expect.monitoring.iter().enumerate() {
            let at = path(&["expect", "monitoring"]).index(index);
            if item.promql.is_some() && monitoring.and_then(|m| m.prometheus.as_ref()).is_none() {
                self.at_value(
                    &at.key("promql"),
                    format!("a PromQL expectation needs Prometheus, but the cluster profile `{}` has no `monitoring.prometheus`", profile.name),
                    "add `monitoring: { prometheus: { url: http://HOST:9090 } }` to the profile (for Amazon Managed Prometheus: the workspace URL and `sigv4: { region: REGION }`)",
                );
            }
            if item.alert.is_some() && monitoring.and_then(|m| m.alertmanager.as_ref()).is_none() {
                self.at_value(
                    &at.key("alert"),
                    format!("an alert expectation needs Alertmanager, but the cluster profile `{}` has no `monitoring.alertmanager`", profile.name),
                    "add `monitoring: { alertmanager: { url: http://HOST:9093 } }` to the profile",
                );
            }
        }
        for (index, item) in scenario
            .abort
            .iter()
            .flat_map(|a| a.when.iter())
            .enumerate()
        {
            let at = path(&["abort", "when"]).index(index);
            if item.promql.is_some() && monitoring.and_then(|m| m.prometheus.as_ref()).is_none() {
                self.at_value(
                    &at.key("promql"),
                    format!("a PromQL stop condition needs Prometheus, but the cluster profile `{}` has no `monitoring.prometheus`", profile.name),
                    "add `monitoring: { prometheus: { url: http://HOST:9090 } }` to the profile",
                );
            }
            if item.alert.is_some() && monitoring.and_then(|m| m.alertmanager.as_ref()).is_none() {
                self.at_value(
                    &at.key("alert"),
                    format!("an alert stop condition needs Alertmanager, but the cluster profile `{}` has no `monitoring.alertmanager`", profile.name),
                    "add `monitoring: { alertmanager: { url: http://HOST:9093 } }` to the profile",
                );
            }
            if item.cloudwatch_alarm.is_some() && profile.sagemaker.is_none() {
                self.at_value(
                    &at.key("cloudwatch_alarm"),
                    format!("a CloudWatch alarm is read in the profile's region with its credentials, but the cluster profile `{}` has no `sagemaker:` section", profile.name),
                    "add `sagemaker: { cluster_name: NAME, region: REGION }` to the profile",
                );
            }
        }
        let no_api = profile.sagemaker.is_none();
        let hint = format!(
            "add a `sagemaker:` section (cluster_name, region) to the profile `{}`",
            profile.name
        );
        if no_api && scenario.fault.needs_sagemaker() {
            let kind = scenario.fault.kind();
            self.at_value(
                &path(&["fault", kind, "method"]),
                format!("method `sagemaker` calls the SageMaker API, but the cluster profile `{}` has no `sagemaker` settings", profile.name),
                hint.clone(),
            );
        }
        if no_api
            && matches!(
                scenario.expect.recovery,
                Recovery::Replace | Recovery::Reboot
            )
        {
            self.at_value(
                &path(&["expect", "recovery"]),
                format!(
                    "recovery `{}` is confirmed through the SageMaker API (instance id and launch time), but the cluster profile `{}` has no `sagemaker` settings",
                    scenario.expect.recovery, profile.name
                ),
                hint.clone(),
            );
        }
        if no_api && let Pool::InstanceGroup(_) = scenario.target.pool {
            self.at_value(
                &path(&["target", "pool"]),
                "instance groups are listed by the SageMaker API, which this profile does not configure".to_owned(),
                hint,
            );
        }
        if let Pool::Nodes(nodes) = &scenario.target.pool {
            for (index, node) in nodes.iter().enumerate() {
                if *node == profile.head_node.name || profile.login_nodes.contains(node) {
                    self.at_value(
                        &path(&["target", "pool", "nodes"]).index(index),
                        format!(
                            "`{node}` is a controller or login node, which hpchaos never targets"
                        ),
                        "target compute nodes only",
                    );
                }
            }
        }
    }
}

/// Why `path` is no file system hpchaos may break with `effect`, with the
/// fix; `None` when it may. The path is taken as written (hpchaos does
/// not resolve it): absolute, plain (no `.`, `..` or empty parts: `/fsx/..`
/// is the root), the root `/` only read-only (HMA detects a read-only
/// root file system), and never under the node's own system directories
/// (breaking `/usr` or `/var` stops sshd and slurmd, and hpchaos's own
/// way in and back out).
fn fs_path_problem(path: &str, effect: &FsEffect) -> Option<(String, String)> {
    const SYSTEM: &[&str] = &[
        "bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin",
        "sys", "usr", "var",
    ];
    let fix = "name the checkpoint file system's mount point or directory, e.g. `/fsx` or `/fsx/checkpoints` (the root, `/`, only with `effect: read_only`)";
    if !path.starts_with('/') {
        return Some((format!("`{path}` is not an absolute path"), fix.to_owned()));
    }
    if path == "/" {
        return (*effect != FsEffect::ReadOnly).then(|| {
            (
                "the root file system may only be made read-only (as HMA detects): never filled or frozen, that would stop the node's own services".to_owned(),
                "say `effect: read_only`, or name the checkpoint store's mount point, e.g. `/fsx`".to_owned(),
            )
        });
    }
    let trimmed = path.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').skip(1).collect();
    if trimmed.is_empty()
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Some((
            format!(
                "`{path}` is not written plainly: hpchaos takes it as written and does not resolve `.`, `..` or `//`"
            ),
            "write the mount point it means, e.g. `/fsx` (or `/` with `effect: read_only`)"
                .to_owned(),
        ));
    }
    parts
        .first()
        .filter(|first| SYSTEM.contains(first))
        .map(|first| {
            (
                format!("`{path}` is under /{first}, the node's own system: breaking it stops sshd and slurmd, and hpchaos's way back in"),
                fix.to_owned(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_system_path_is_absolute_plain_and_never_the_nodes_own_system() {
        let frozen = FsEffect::Frozen;
        let full = FsEffect::Full {
            leave_free: "0".into(),
        };
        for ok in [
            "/fsx",
            "/fsx/",
            "/fsx/canary",
            "/opt/dlami/nvme",
            "/home/ckpt",
            "/tmp/x",
        ] {
            assert_eq!(fs_path_problem(ok, &frozen), None, "{ok}");
        }
        assert_eq!(fs_path_problem("/", &FsEffect::ReadOnly), None);
        for (bad, said) in [
            ("fsx", "not an absolute path"),
            ("", "not an absolute path"),
            ("/", "root file system"),
            ("//", "not written plainly"),
            ("/fsx/..", "not written plainly"),
            ("/fsx/../", "not written plainly"),
            ("/.", "not written plainly"),
            ("/fsx//canary", "not written plainly"),
            ("/fsx/./canary", "not written plainly"),
            ("/usr", "under /usr"),
            ("/var/log", "under /var"),
            ("/etc/slurm", "under /etc"),
            ("/proc", "under /proc"),
            ("/run/", "under /run"),
        ] {
            for effect in [&frozen, &full] {
                let (message, _) =
                    fs_path_problem(bad, effect).unwrap_or_else(|| panic!("{bad} allowed"));
                assert!(message.contains(said), "{bad}: {message}");
            }
        }
        // Read-only does not make a path that is not plain, or a system
        // directory, allowed.
        assert!(fs_path_problem("/fsx/..", &FsEffect::ReadOnly).is_some());
        assert!(fs_path_problem("/usr", &FsEffect::ReadOnly).is_some());
    }
}
