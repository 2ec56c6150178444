//! The lab daemon, started detached by `lab up`: boots the nodes, serves
//! the SageMaker API, and plays HyperPod's part: the health agent marks
//! faulty nodes `Action:*`, and the recovery engine drains, reboots or
//! replaces them (honouring reasons set by anyone, and the Batch API calls)
//! while recording every transition in the ground-truth log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::config::{Action, LabConfig};
use super::control_plane::{self, ControlPlane, RecoveryRequest};
use super::ground_truth::GroundTruth;
use super::hma::{Finding, Watcher};
use super::layout::{Layout, NodeSpec};
use super::node::{self, NodeProcess};
use super::state::{ClusterState, new_instance_id};
use super::system::{self, LabError};
use super::throttle::Throttle;

/// Written when every node is idle and the API answers.
pub const READY_FILE: &str = "ready";

/// What happens to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// HyperPod's reboot after `Action:Reboot`.
    Reboot,
    /// HyperPod's replacement after `Action:Replace`.
    Replace,
    /// `reboot` run on the node itself: Slurm is not told.
    OutOfBandReboot,
}

struct Engine {
    layout: Layout,
    config: LabConfig,
    truth: Arc<GroundTruth>,
    state: Arc<Mutex<ClusterState>>,
    processes: Mutex<HashMap<String, NodeProcess>>,
    recovering: Mutex<HashSet<String>>,
    /// When each node's last recovery ended: a Slurm snapshot taken before
    /// that still shows the old `Action:*` reason and must not start another.
    recovered_at: Mutex<HashMap<String, Instant>>,
    api_requested: Mutex<HashSet<String>>,
    watcher: Mutex<Watcher>,
    /// Health-agent findings waiting out the detection delay.
    pending: Mutex<HashMap<String, (Instant, Finding)>>,
    jobs: Mutex<BTreeMap<String, String>>,
    /// Requeued jobs held in `BeginTime`: since when, and whether the lab
    /// has released them already.
    held: Mutex<HashMap<String, (Instant, bool)>>,
    head_pid: Mutex<u32>,
    /// Nodes the daemon holds in a deep health check's reservation.
    checking: Mutex<HashSet<String>>,
}

/// Runs the daemon until SIGTERM or SIGINT, then powers every node off.
pub fn run(layout: Layout) -> Result<(), LabError> {
    let config: LabConfig = serde_json::from_slice(
        &std::fs::read(layout.config()).map_err(LabError::io("cannot read lab.json"))?,
    )
    .map_err(|e| LabError::Setup(format!("lab.json is not valid: {e}")))?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(LabError::io("cannot start the async runtime"))?;
    let truth = Arc::new(
        GroundTruth::open(&layout.ground_truth())
            .map_err(LabError::io("cannot open the ground-truth log"))?,
    );
    let nodes = config.nodes();
    let mut cluster = ClusterState::new(
        &config.cluster_name,
        &config.region,
        &config.node_recovery,
        &nodes,
    );
    cluster.rename_login_group(&config.login_group);
    cluster.omit_hostnames = config.api_without_hostnames;
    cluster.add_declared(&config.declared());
    let state = Arc::new(Mutex::new(cluster));
    let engine = Arc::new(Engine {
        layout,
        config,
        truth,
        state,
        processes: Mutex::new(HashMap::new()),
        recovering: Mutex::new(HashSet::new()),
        recovered_at: Mutex::new(HashMap::new()),
        api_requested: Mutex::new(HashSet::new()),
        watcher: Mutex::new(Watcher::default()),
        pending: Mutex::new(HashMap::new()),
        jobs: Mutex::new(BTreeMap::new()),
        held: Mutex::new(HashMap::new()),
        head_pid: Mutex::new(0),
        checking: Mutex::new(HashSet::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    // Prometheus, Alertmanager and the Pushgateway, with `--monitoring`.
    let mut monitors: Vec<std::process::Child> = Vec::new();
    let result = (|| {
        engine.boot_all(&nodes)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind((
                "127.0.0.1",
                engine.config.api_port,
            )))
            .map_err(LabError::io(format!(
                "cannot listen on 127.0.0.1:{}",
                engine.config.api_port
            )))?;
        let (requests, receiver) = unbounded_channel();
        let plane = ControlPlane {
            state: engine.state.clone(),
            requests,
            truth: engine.truth.clone(),
            throttle: Arc::new(Throttle::new(&engine.layout.api_throttle())),
            denied: Arc::new(engine.layout.api_denied()),
            changes: Arc::new(engine.layout.changes()),
            keys: Arc::new(engine.layout.api_keys()),
            logs: Arc::new(engine.layout.cloudwatch_logs()),
            alarms: Arc::new(engine.layout.cloudwatch_alarms()),
            check_for: chrono::TimeDelta::from_std(
                engine.config.timings.deep_health_check.as_std(),
            )
            .unwrap_or(chrono::TimeDelta::seconds(5)),
            state_file: Some(Arc::new(engine.layout.state())),
        };
        runtime.spawn(control_plane::run(listener, plane));
        engine.wait_until_idle(&nodes)?;
        if engine.config.monitoring {
            let started = super::monitoring::start(&engine.layout, &engine.config)?;
            monitors.extend(started);
        }
        std::fs::write(engine.layout.dir.join(READY_FILE), "ready\n")
            .map_err(LabError::io("cannot write the ready marker"))?;
        let looping = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::spawn(move || engine.watch(receiver, &stop))
        };
        runtime.block_on(wait_for_signal());
        stop.store(true, Ordering::SeqCst);
        let _ = looping.join();
        Ok(())
    })();
    for mut child in monitors {
        let _ = child.kill();
        let _ = child.wait();
    }
    engine.power_off_all();
    let _ = std::fs::remove_file(engine.layout.dir.join(READY_FILE));
    result
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers the daemon can only be killed; keep
        // running rather than exit at once.
        _ => std::future::pending::<()>().await,
    }
}

/// `ip-10-1-0-11|fail|Action:Replace` lines into name → (base state, reason).
pub fn parse_sinfo(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter_map(|line| {
            // The reason is last and may hold `|` itself.
            let mut fields = line.splitn(3, '|');
            let name = fields.next()?.trim().to_owned();
            let state = fields.next()?.trim().to_owned();
            let reason = fields.next().unwrap_or("").trim();
            let reason = if reason == "none" { "" } else { reason };
            Some((name, (state, reason.to_owned())))
        })
        .collect()
}

/// `down*` → `down`: the state without Slurm's flag suffixes.
pub fn base_state(state: &str) -> &str {
    state.trim_end_matches(['*', '~', '#', '!', '%', '$', '@', '^', '-', '+'])
}

impl Engine {
    fn node_spec(&self, name: &str) -> Option<NodeSpec> {
        self.config.nodes().into_iter().find(|n| n.name == name)
    }

    fn boot_all(&self, nodes: &[NodeSpec]) -> Result<(), LabError> {
        for node in nodes {
            let process = node::start(&self.layout, node, &self.config)?;
            if node.head {
                *self.head_pid.lock().unwrap_or_else(|p| p.into_inner()) = process.init_pid;
            }
            self.processes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(node.name.clone(), process);
            self.truth.record("instance_launched", Some(&node.name), "");
            if node.head {
                self.wait_for(Duration::from_secs(30), "slurmctld to answer", || {
                    self.slurm(&["sinfo", "-h"]).is_ok()
                })?;
            }
        }
        Ok(())
    }

    fn wait_until_idle(&self, nodes: &[NodeSpec]) -> Result<(), LabError> {
        self.wait_for(
            Duration::from_secs(60),
            "every compute node to be idle",
            || {
                let Ok(text) = self.slurm(&["sinfo", "-N", "-h", "-o", "%N|%T|%E"]) else {
                    return false;
                };
                let seen = parse_sinfo(&text);
                nodes
                    .iter()
                    .filter(|n| n.compute())
                    .all(|n| seen.get(&n.name).is_some_and(|(s, _)| s == "idle"))
            },
        )?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fleet = super::state::FLEET_GROUP;
        for instance in state.instances.iter_mut().filter(|i| i.group != fleet) {
            instance.status = "Running".to_owned();
            self.truth.record(
                "instance_running",
                Some(&instance.node),
                instance.instance_id.clone(),
            );
        }
        self.save(&state);
        Ok(())
    }

    fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), LabError> {
        let deadline = Instant::now() + limit;
        while !ready() {
            if Instant::now() > deadline {
                return Err(LabError::Setup(format!(
                    "timed out after {}s waiting for {what}",
                    limit.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// A Slurm command on the head node.
    fn slurm(&self, args: &[&str]) -> Result<String, LabError> {
        let pid = *self.head_pid.lock().unwrap_or_else(|p| p.into_inner());
        system::in_node(pid, args)
    }

    fn save(&self, state: &ClusterState) {
        if let Err(err) = state.save(&self.layout.state()) {
            eprintln!("cannot save state.json: {err}");
        }
    }

    fn power_off_all(&self) {
        let processes: Vec<_> = self
            .processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, process) in processes {
            process.kill();
        }
    }

    /// The control loop: one pass per poll interval until `stop`.
    fn watch(self: Arc<Self>, mut requests: UnboundedReceiver<RecoveryRequest>, stop: &AtomicBool) {
        // Every node's `state|reason` as last seen: each change, whoever
        // made it (the agent, hpchaos, a person), goes to the ground truth
        // as `slurm_node`, so tests can tell what was done to the cluster.
        let mut last: BTreeMap<String, (String, String)> = BTreeMap::new();
        while !stop.load(Ordering::SeqCst) {
            while let Ok(request) = requests.try_recv() {
                self.api_request(&request);
            }
            let taken = Instant::now();
            match self.slurm(&["sinfo", "-N", "-h", "-o", "%N|%T|%E"]) {
                Ok(text) => {
                    let seen = parse_sinfo(&text);
                    // The nodes it runs: declared ones are not its to watch.
                    let run: HashSet<String> =
                        self.config.nodes().into_iter().map(|n| n.name).collect();
                    for (node, now) in seen.iter().filter(|(n, _)| run.contains(*n)) {
                        if last.get(node) != Some(now) {
                            self.truth.record(
                                "slurm_node",
                                Some(node),
                                format!("{}|{}", now.0, now.1),
                            );
                        }
                    }
                    last = seen.clone();
                    self.tick(&seen, taken)
                }
                Err(err) => eprintln!("sinfo: {err}"),
            }
            self.track_jobs();
            self.deep_health_checks();
            std::thread::sleep(self.config.timings.poll.as_std());
        }
    }

    /// HyperPod's part in a deep health check on Slurm: each node under
    /// one (`changes.rs`, set by the API or `lab change`) is held in a
    /// maintenance reservation until the check's end, then the reservation
    /// is deleted and the check forgotten (the API shows it `Running`
    /// again). The lab's checks pass.
    fn deep_health_checks(&self) {
        let path = self.layout.changes();
        let mut changes = super::changes::Changes::load(&path);
        let mut held = self.checking.lock().unwrap_or_else(|p| p.into_inner());
        // A check cleared by `lab change --off` took its reservation along.
        held.retain(|n| changes.deep_health_checks.contains_key(n));
        if changes.deep_health_checks.is_empty() {
            return;
        }
        let now = Utc::now();
        let mut ended = Vec::new();
        for (node, until) in &changes.deep_health_checks {
            let name = format!(
                "ReservationName={}",
                super::changes::check_reservation(node)
            );
            if now >= *until {
                let _ = self.slurm(&["scontrol", "delete", &name]);
                held.remove(node);
                ended.push(node.clone());
                self.truth
                    .record("health_check_ended", Some(node), "passed");
            } else if !held.contains(node) {
                let seconds = (*until - now).num_seconds().max(1);
                let head = *self.head_pid.lock().unwrap_or_else(|p| p.into_inner());
                // `lab change` may have made it already: that is fine.
                let _ = super::changes::hold_in_reservation(head, node, (seconds + 59) / 60);
                held.insert(node.clone());
            }
        }
        if !ended.is_empty() {
            // Read again: the API or `lab change` may have written since.
            let mut now_on_disk = super::changes::Changes::load(&path);
            for node in &ended {
                now_on_disk.deep_health_checks.remove(node);
            }
            changes = now_on_disk;
            if let Err(err) = changes.save(&path) {
                eprintln!("lab: cannot record the end of a deep health check: {err}");
            }
        }
    }

    fn api_request(&self, request: &RecoveryRequest) {
        self.api_requested
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request.node.clone());
        self.mark(&request.node, request.action, "requested through the API");
    }

    /// Sets `state=fail reason=Action:*` as HyperPod's agent does.
    fn mark(&self, node: &str, action: Action, why: &str) {
        let Some(reason) = action.reason() else {
            return;
        };
        let reason_arg = format!("reason={reason}");
        match self.slurm(&[
            "scontrol",
            "update",
            &format!("nodename={node}"),
            "state=fail",
            &reason_arg,
        ]) {
            Ok(_) => self
                .truth
                .record("reason_set", Some(node), format!("{reason} ({why})")),
            Err(err) => eprintln!("cannot mark {node}: {err}"),
        }
    }

    /// One pass over the compute nodes, against a `sinfo` snapshot `taken` then.
    fn tick(self: &Arc<Self>, seen: &BTreeMap<String, (String, String)>, taken: Instant) {
        let automatic = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .node_recovery
            == "Automatic";
        for node in self.config.nodes().into_iter().filter(|n| n.compute()) {
            if self
                .recovering
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&node.name)
            {
                continue;
            }
            let stale = self
                .recovered_at
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&node.name)
                .is_some_and(|ended| *ended >= taken);
            if stale {
                continue;
            }
            let root = self.layout.node_root(&node.name);
            let reboot_request = root.join("run/hpchaos/reboot-requested");
            if reboot_request.exists() {
                let _ = std::fs::remove_file(&reboot_request);
                self.truth.record(
                    "reboot_requested",
                    Some(&node.name),
                    "reboot run on the node",
                );
                self.start_recovery(&node.name, Recovery::OutOfBandReboot);
                continue;
            }
            let (state, reason) = seen.get(&node.name).cloned().unwrap_or_default();
            let failed = matches!(base_state(&state), "fail" | "down");
            // Slurm 24.11 leaves `Action:*` on a node that is back in
            // service: only a failed node carries a live mark.
            self.health_agent(&node.name, &root, failed && reason.starts_with("Action:"));
            let recovery = match reason.as_str() {
                "Action:Replace" => Some(Recovery::Replace),
                "Action:Reboot" => Some(Recovery::Reboot),
                _ => None,
            };
            let allowed = automatic
                || self
                    .api_requested
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&node.name);
            // Slurm 22.05 shows `fail` while a job still runs there, so
            // drained means: failed, and no job left on the node.
            if let (Some(recovery), true, true) = (recovery, failed, allowed)
                && self.no_job_on(&node.name)
            {
                self.truth.record(
                    "node_drained",
                    Some(&node.name),
                    format!("state {state}, no job left"),
                );
                self.start_recovery(&node.name, recovery);
            }
        }
    }

    /// No job runs on the node any more (one still completing is ending,
    /// and a down node's completing jobs may linger for a while).
    fn no_job_on(&self, node: &str) -> bool {
        self.slurm(&[
            "squeue",
            "-h",
            "-w",
            node,
            "-t",
            "RUNNING,SUSPENDED",
            "-o",
            "%i",
        ])
        .is_ok_and(|jobs| jobs.trim().is_empty())
    }

    fn health_agent(&self, node: &str, root: &std::path::Path, already_marked: bool) {
        let findings = {
            let mut watcher = self.watcher.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = watcher.scan(root, &self.config);
            // The node's root as its PID 1 sees it (a node's mounts are
            // its own).
            if let Some(pid) = crate::node::recorded_pid(&self.layout, node)
                && let Ok(mountinfo) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            {
                found.extend(watcher.root_file_system(node, &mountinfo));
            }
            found
        };
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for finding in findings {
            self.truth.record(
                "fault_noticed",
                Some(node),
                format!("{} → {:?}", finding.detail, finding.action).to_lowercase(),
            );
            if finding.action != Action::None {
                self.record_detection(node, &finding);
            }
            let worse = match pending.get(node) {
                None => true,
                Some((_, current)) => {
                    current.action != Action::Replace && finding.action == Action::Replace
                }
            };
            if finding.action != Action::None && !already_marked && worse {
                pending.insert(
                    node.to_owned(),
                    (
                        Instant::now() + self.config.timings.detect.as_std(),
                        finding,
                    ),
                );
            }
        }
        if let Some((due, finding)) = pending.get(node).cloned()
            && Instant::now() >= due
        {
            pending.remove(node);
            drop(pending);
            self.mark(node, finding.action, &finding.detail);
        }
    }

    /// Writes HMA's record of a detection to the lab's CloudWatch Logs, in
    /// the node's instance's stream, as HyperPod's agent does when it
    /// decides (before it marks the node in Slurm).
    fn record_detection(&self, node: &str, finding: &Finding) {
        let (group, stream) = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let Some(instance) = state.instances.iter().find(|i| i.node == node) else {
                return;
            };
            (
                super::logs::log_group(&state.cluster_name, &state.cluster_arn),
                super::logs::hma_stream(&instance.group, &instance.instance_id),
            )
        };
        let now = Utc::now();
        if let Err(err) = super::logs::append(
            &self.layout.cloudwatch_logs(),
            &group,
            &stream,
            now,
            &finding.record(now),
        ) {
            eprintln!("lab: cannot write HMA's record for {node}: {err}");
        }
    }

    /// Records job state changes, and shortens the requeue hold when the
    /// timing profile says so.
    fn track_jobs(&self) {
        let Ok(text) = self.slurm(&["squeue", "-h", "-o", "%i|%T|%r|%N"]) else {
            return;
        };
        let now: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| {
                let (id, rest) = l.split_once('|')?;
                Some((id.to_owned(), rest.to_owned()))
            })
            .collect();
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for (id, status) in &now {
            if jobs.get(id) != Some(status) {
                self.truth
                    .record("job_state", None, format!("{id}|{status}"));
            }
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|id, _| {
            now.get(id)
                .is_some_and(|s| s.starts_with("PENDING|BeginTime"))
        });
        if let Some(delay) = self.config.timings.requeue_delay {
            for (id, status) in &now {
                if !status.starts_with("PENDING|BeginTime") {
                    continue;
                }
                let (since, released) = held
                    .entry(id.clone())
                    .or_insert_with(|| (Instant::now(), false));
                if *released || since.elapsed() < delay.as_std() {
                    continue;
                }
                let release = [
                    "scontrol",
                    "update",
                    &format!("jobid={id}"),
                    "starttime=now",
                ];
                if self.slurm(&release).is_ok() {
                    *released = true;
                    self.truth.record(
                        "job_released",
                        None,
                        format!("{id} after a requeue hold of {delay}"),
                    );
                }
            }
        }
        for id in jobs.keys().filter(|id| !now.contains_key(*id)) {
            self.truth.record("job_state", None, format!("{id}|GONE|"));
        }
        *jobs = now;
    }

    fn start_recovery(self: &Arc<Self>, node: &str, recovery: Recovery) {
        self.recovering
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_owned());
        let engine = self.clone();
        let node = node.to_owned();
        std::thread::spawn(move || {
            if let Err(err) = engine.recover(&node, recovery) {
                eprintln!("recovery of {node} failed: {err}");
                engine
                    .truth
                    .record("recovery_failed", Some(&node), err.to_string());
            }
            engine
                .recovered_at
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(node.clone(), Instant::now());
            engine
                .recovering
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&node);
            engine
                .api_requested
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&node);
        });
    }

    fn set_status(&self, node: &str, status: &str, message: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(instance) = state.instance_mut(node) {
            instance.status = status.to_owned();
            instance.message = message.to_owned();
        }
        self.save(&state);
    }

    fn recover(&self, name: &str, recovery: Recovery) -> Result<(), LabError> {
        let spec = self
            .node_spec(name)
            .ok_or_else(|| LabError::Setup(format!("no node {name}")))?;
        let old_id = self.take_down(name, recovery);
        if recovery != Recovery::OutOfBandReboot {
            let what = match recovery {
                Recovery::Replace => "replacement",
                _ => "reboot",
            };
            self.event(
                name,
                "Warn",
                format!("Instance {old_id} is unhealthy: {what} started"),
            );
        }
        self.wipe(name, recovery)?;
        let new_id = if recovery == Recovery::Replace {
            new_instance_id()
        } else {
            old_id.clone()
        };
        // The instance's LaunchTime, as the API will report it.
        let booted = Utc::now();
        self.truth
            .record("instance_launched", Some(name), new_id.clone());
        let process = node::start(&self.layout, &spec, &self.config)?;
        // The instance as the kernel saw it start: the side a harness's
        // replace or reboot boundary (from LaunchTime) is checked against.
        if let Some(started) = node::started_at(process.init_pid) {
            self.truth
                .record_at(started, "instance_started", Some(name), new_id.clone());
        }
        self.processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), process);
        self.wait_for(Duration::from_secs(60), "slurmd to register", || {
            self.slurmd_started_since(name, booted)
        })?;
        self.truth.record("slurmd_registered", Some(name), "");
        // HyperPod's event that the instance is back comes once it runs
        // and its slurmd registered, before Slurm has the node back (and a
        // requeued job can start on it): a harness that ends its watch at
        // the job's resume has read it by then.
        if recovery != Recovery::OutOfBandReboot {
            let done = match recovery {
                Recovery::Replace => {
                    format!("Instance {new_id} replaced instance {old_id} and is running")
                }
                _ => format!("Instance {new_id} rebooted and is running"),
            };
            self.event(name, "Info", done);
            self.resume_in_slurm(name)?;
        }
        self.mark_running(name, recovery, &new_id, booted);
        self.truth.record("instance_running", Some(name), new_id);
        Ok(())
    }

    /// Records a cluster event on the instance `node` is on now
    /// (`ListClusterEvents`), as HyperPod does on continuously provisioned
    /// clusters.
    fn event(&self, node: &str, level: &str, description: String) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.record_event(node, level, description);
        self.save(&state);
    }

    /// The first half of a recovery: the API shows the node `Pending`
    /// (not for an out-of-band reboot), its process is killed, the
    /// termination or reboot recorded, and the recovery's delay waited
    /// out. Returns the old instance id (empty if the state has none).
    fn take_down(&self, name: &str, recovery: Recovery) -> String {
        let old_id = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .instance(name)
            .map(|i| i.instance_id.clone())
            .unwrap_or_default();
        if recovery != Recovery::OutOfBandReboot {
            self.set_status(
                name,
                "Pending",
                if recovery == Recovery::Replace {
                    "Replacing instance"
                } else {
                    "Rebooting instance"
                },
            );
        }
        if let Some(process) = self
            .processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
        {
            process.kill();
        }
        let (event, delay) = match recovery {
            Recovery::Replace => ("instance_terminated", self.config.timings.replace),
            Recovery::Reboot | Recovery::OutOfBandReboot => {
                ("node_rebooting", self.config.timings.reboot)
            }
        };
        self.truth.record(event, Some(name), old_id.clone());
        std::thread::sleep(delay.as_std());
        old_id
    }

    /// Clears what the recovery loses on the node's disks: everything and
    /// a new SSH host key for a replacement, /run for a reboot; the health
    /// agent forgets what it read there. Errors if the key cannot be made.
    fn wipe(&self, name: &str, recovery: Recovery) -> Result<(), LabError> {
        let root = self.layout.node_root(name);
        if recovery == Recovery::Replace {
            // A new instance: fresh disks and a new SSH host key.
            let _ = std::fs::remove_dir_all(&root);
            system::new_key(&self.layout.host_key(name), name)?;
        } else {
            // /run is a tmpfs: a reboot clears it; /var/log survives.
            let _ = std::fs::remove_dir_all(root.join("run"));
        }
        // What the agent already read must not be read again: a replace
        // wipes every file, a reboot only /run (a tmpfs; /var/log stays).
        let forgotten = if recovery == Recovery::Replace {
            root.clone()
        } else {
            root.join("run")
        };
        self.watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget(&forgotten);
        Ok(())
    }

    /// Resumes the recovered node in Slurm (`scontrol update
    /// state=resume`) and records how it came back. Errors if the resume
    /// failed and sinfo does not show the node back in service.
    fn resume_in_slurm(&self, name: &str) -> Result<(), LabError> {
        let resumed = self.slurm(&[
            "scontrol",
            "update",
            &format!("nodename={name}"),
            "state=resume",
        ]);
        // A node that was DOWN for not responding is returned to
        // service by Slurm itself when slurmd registers
        // (ReturnToService=1); then there is nothing left to resume.
        let detail = match resumed {
            // Slurm 24.11 without accounting keeps the reason.
            Ok(_) => "state resumed".to_owned(),
            Err(err) => {
                let seen =
                    parse_sinfo(&self.slurm(&["sinfo", "-N", "-h", "-n", name, "-o", "%N|%T|%E"])?);
                match seen.get(name) {
                    Some((state, _))
                        if matches!(state.as_str(), "idle" | "allocated" | "mixed") =>
                    {
                        "returned to service by Slurm on registration".to_owned()
                    }
                    _ => return Err(err),
                }
            }
        };
        self.truth.record("node_resumed", Some(name), detail);
        Ok(())
    }

    /// Shows the recovered node `Running` in the API under `new_id`, with
    /// `booted` as its LaunchTime unless a reboot keeps the old one, and
    /// saves the state.
    fn mark_running(&self, name: &str, recovery: Recovery, new_id: &str, booted: DateTime<Utc>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(instance) = state.instance_mut(name) {
            instance.instance_id = new_id.to_owned();
            // A reboot may keep EC2's LaunchTime (`--reboot-keeps-launch-time`).
            if recovery == Recovery::Replace || !self.config.reboot_keeps_launch_time {
                instance.launch_time = booted;
            }
            instance.status = "Running".to_owned();
            instance.message = String::new();
        }
        self.save(&state);
    }

    /// Whether the node's slurmd registered after `since` (second precision).
    fn slurmd_started_since(&self, name: &str, since: DateTime<Utc>) -> bool {
        let Ok(text) = self.slurm(&["scontrol", "-o", "show", "node", name]) else {
            return false;
        };
        let started = text
            .split_whitespace()
            .find_map(|field| field.strip_prefix("SlurmdStartTime="))
            .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok())
            .map(|t| t.and_utc());
        let responding = text
            .split_whitespace()
            .find_map(|f| f.strip_prefix("State="))
            .is_some_and(|s| !s.contains("NOT_RESPONDING"));
        started.is_some_and(|t| t.timestamp() >= since.timestamp()) && responding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sinfo_node_lines() {
        let seen = parse_sinfo(
            "ip-10-1-0-11|idle|none\nip-10-1-0-12|fail|Action:Replace\nip-10-1-0-13|down*|Not responding\n",
        );
        assert_eq!(seen["ip-10-1-0-11"], ("idle".to_owned(), String::new()));
        assert_eq!(seen["ip-10-1-0-12"].1, "Action:Replace");
        assert_eq!(base_state(&seen["ip-10-1-0-13"].0), "down");
    }
}
