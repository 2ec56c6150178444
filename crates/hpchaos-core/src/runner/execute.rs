//! Carrying out one fault step: commands over SSH (or on a local head
//! node), killing the workload's tasks, the Batch API calls, checks that
//! an injection took, and the rollback steps.

use std::time::Duration as StdDuration;

use crate::cluster::privilege::Root;
use crate::cluster::ssh::SshError;
use crate::faults::{self, Place, Step};

use super::Runner;
use super::step_error::StepError;

impl Runner {
    /// Carries out one step. `Ok` holds what was done, for the journal
    /// (which pids were killed, why a node was left to the cluster; empty
    /// when there is nothing to add); `Err` why it failed.
    pub(super) async fn execute(&self, step: &Step, job: Option<u64>) -> Result<String, StepError> {
        let ssh = &self.cluster.ssh;
        let per_command = self.cluster.profile.ssh.command_timeout.as_std();
        match step {
            Step::Run { on, argv } => {
                let line = self.command_for(on, argv);
                let out = ssh
                    .run_line_as(&self.endpoint_of(on), step.needs_root(), &line, per_command)
                    .await;
                self.step_status(out?)
            }
            Step::RunFor { on, argv, timeout } => {
                let (endpoint, line) = (self.endpoint_of(on), self.command_for(on, argv));
                let out = ssh.run_line(&endpoint, &line, timeout.as_std()).await;
                self.step_status(out?)
            }
            Step::RunDropping { on, argv } => self.run_dropping(on, argv, step.needs_root()).await,
            Step::KillJobTasks {
                node,
                signal,
                count,
            } => {
                let job =
                    job.ok_or_else(|| StepError::Refused("no workload to kill tasks of".into()))?;
                self.kill_job_tasks(node, job, *signal, *count).await
            }
            Step::StopJobTask {
                node,
                rank,
                random,
                pidfile,
            } => {
                let job =
                    job.ok_or_else(|| StepError::Refused("no workload to hang a rank of".into()))?;
                let rank = match (rank, random) {
                    (Some(r), _) => r.to_string(),
                    (None, true) => "random".to_owned(),
                    (None, false) => String::new(),
                };
                let job = job.to_string();
                let args = [job.as_str(), &rank, pidfile];
                self.script(node, Root::SignalOthers, faults::hang::STOP_SCRIPT, &args)
                    .await
            }
            Step::ContinueStopped { node, pidfile } => {
                self.script(
                    node,
                    Root::SignalOthers,
                    faults::hang::CONTINUE_SCRIPT,
                    &[pidfile],
                )
                .await
            }
            Step::FillFs {
                node,
                path,
                leave_free,
                pidfile,
            } => {
                let leave = leave_free.to_string();
                let args = [path.as_str(), &leave, pidfile];
                self.script(
                    node,
                    Root::Filesystems,
                    faults::filesystem::FILL_SCRIPT,
                    &args,
                )
                .await
            }
            Step::UnfillFs { node, pidfile } => {
                let script = faults::filesystem::UNFILL_SCRIPT;
                self.script(node, Root::Filesystems, script, &[pidfile])
                    .await
            }
            Step::Remount {
                node,
                path,
                read_only,
            } => {
                let mode = if *read_only { "ro" } else { "rw" };
                let script = faults::filesystem::REMOUNT_SCRIPT;
                self.script(node, Root::Filesystems, script, &[path, mode])
                    .await
            }
            Step::Freeze { node, path, frozen } => {
                let mode = if *frozen { "freeze" } else { "thaw" };
                let script = faults::filesystem::FREEZE_SCRIPT;
                self.script(node, Root::Filesystems, script, &[path, mode])
                    .await
            }
            Step::SlowGpus {
                node,
                what,
                value,
                pidfile,
            } => {
                let value = value.to_string();
                let args = [what.as_str(), &value, pidfile];
                self.script(
                    node,
                    Root::GpuSettings,
                    faults::straggler::SLOW_SCRIPT,
                    &args,
                )
                .await
            }
            Step::RestoreGpus { node, pidfile } => {
                let script = faults::straggler::RESTORE_SCRIPT;
                self.script(node, Root::GpuSettings, script, &[pidfile])
                    .await
            }
            Step::CpuQuota {
                node,
                millicpus,
                pidfile,
            } => {
                let job = job.ok_or_else(|| {
                    StepError::Refused("no workload to hold to a CPU quota".into())
                })?;
                let (millicpus, job) = (millicpus.to_string(), job.to_string());
                let args = [millicpus.as_str(), &job, pidfile];
                let script = faults::straggler::QUOTA_SCRIPT;
                self.script(node, Root::Cgroups, script, &args).await
            }
            Step::LiftCpuQuota { node, pidfile } => {
                let script = faults::straggler::UNQUOTA_SCRIPT;
                self.script(node, Root::Cgroups, script, &[pidfile]).await
            }
            Step::Netem {
                node,
                effect,
                peers,
            } => {
                let mut args: Vec<&str> = vec![effect];
                args.extend(peers.iter().map(String::as_str));
                self.script(node, Root::Network, faults::network::APPLY_SCRIPT, &args)
                    .await
            }
            Step::ClearNetem { node } => {
                self.script(node, Root::Network, faults::network::CLEAR_SCRIPT, &[])
                    .await
            }
            Step::KillMatching {
                node,
                pattern,
                signal,
                count,
            } => {
                let regex = regex::Regex::new(pattern)?;
                let listing = ssh
                    .run(
                        &self.cluster.node(node),
                        &["sh", "-c", faults::PROCESS_LISTING],
                    )
                    .await?;
                let pids = faults::pick_processes(&listing.stdout, &regex, *count)
                    .map_err(|e| StepError::Refused(format!("{node}: {e}")))?;
                self.kill(node, *signal, &pids).await
            }
            Step::StartDetached { on, argv, pidfile } => {
                // Its own session (setsid), no stdio tied to the channel
                // (otherwise the tool dies when the channel closes); the
                // shell writes its pid, then becomes the tool.
                let mut line = vec![
                    "setsid".to_owned(),
                    "-f".to_owned(),
                    "sh".to_owned(),
                    "-c".to_owned(),
                    "echo $$ > \"$0\" && exec \"$@\" </dev/null >/dev/null 2>&1".to_owned(),
                    pidfile.clone(),
                ];
                line.extend(argv.iter().cloned());
                let out = ssh
                    .run_as_root(&self.endpoint_of(on), Root::RunState, &line)
                    .await;
                self.step_status(out?)
            }
            Step::CheckDetached { on, argv, pidfile } => {
                self.check_detached(on, argv, pidfile).await
            }
            Step::StopDetached { on, argv, pidfile } => self.stop_detached(on, argv, pidfile).await,
            Step::CancelCanary { comment } => self.cancel_canary(comment).await,
            Step::ApiReboot { nodes } | Step::ApiReplace { nodes } => {
                let reboot = matches!(step, Step::ApiReboot { .. });
                self.api_action(nodes, reboot).await
            }
            Step::ApiHealthCheck { nodes, checks } => self.api_health_check(nodes, checks).await,
            Step::ResumeIfUntouched { node, reason } => {
                self.resume_if_untouched(node, reason).await
            }
        }
    }

    /// A command's answer as a step's result: `Ok` on exit 0, the fence's
    /// refusal said as such, else the exit status and stderr.
    fn step_status(&self, out: crate::cluster::ssh::Output) -> Result<String, StepError> {
        if out.status == 0 {
            Ok(String::new())
        } else if let Some(why) = self.fence_refusal(&out) {
            Err(StepError::Fenced(why))
        } else {
            Err(StepError::exit(&out))
        }
    }

    /// A command the node goes away under: a dropped connection or no
    /// answer is the expected end, but not failing to get in.
    async fn run_dropping(
        &self,
        on: &Place,
        argv: &[String],
        root: Option<Root>,
    ) -> Result<String, StepError> {
        let line = self.command_for(on, argv);
        let out = self
            .cluster
            .ssh
            .run_line_as(
                &self.endpoint_of(on),
                root,
                &line,
                StdDuration::from_secs(5),
            )
            .await;
        match out {
            Ok(out) if out.status != 0 => self.step_status(out),
            Err(
                err @ (SshError::HostKeyMismatch { .. }
                | SshError::UnknownHost { .. }
                | SshError::Setup { .. }
                | SshError::Connect { .. }
                | SshError::Sudo { .. }),
            ) => Err(err.into()),
            Ok(_) => Ok(String::new()),
            Err(SshError::Timeout { .. } | SshError::Command { .. }) => {
                Ok("the connection dropped, as the node went down".to_owned())
            }
        }
    }

    /// Signals `count` (else all) of job `job`'s step tasks on `node`;
    /// refused, with none killed, when fewer run there.
    async fn kill_job_tasks(
        &self,
        node: &str,
        job: u64,
        signal: u8,
        count: Option<u32>,
    ) -> Result<String, StepError> {
        let ps = self
            .cluster
            .ssh
            .run(&self.cluster.node(node), &["ps", "-eo", "pid,ppid,args"])
            .await?;
        let mut pids = faults::step_task_pids(&ps.stdout, job);
        if pids.is_empty() {
            return Err(StepError::Refused(format!(
                "no step task of job {job} on {node}"
            )));
        }
        if let Some(count) = count {
            if pids.len() < count as usize {
                return Err(StepError::Refused(format!(
                    "only {} step task(s) of job {job} on {node}, count is {count}: none killed",
                    pids.len(),
                )));
            }
            pids.truncate(count as usize);
        }
        self.kill(node, signal, &pids).await
    }

    /// A fault's script (`sh -c SCRIPT hpchaos ARGS...`) run as root on
    /// `node`: what it printed, or what it said on stderr as the step's
    /// failure.
    async fn script(
        &self,
        node: &str,
        root: Root,
        script: &str,
        args: &[&str],
    ) -> Result<String, StepError> {
        let mut argv = vec!["sh", "-c", script, "hpchaos"];
        argv.extend_from_slice(args);
        let out = self
            .cluster
            .ssh
            .run_as_root(&self.cluster.node(node), root, &argv)
            .await?;
        match out.status {
            0 => Ok(format!("on {node}: {}", out.stdout.trim())),
            _ => Err(StepError::Refused(format!("{node}: {}", out.stderr.trim()))),
        }
    }

    /// Whether a detached tool runs as started. `setsid -f` returns before
    /// its child has exec'd the tool, so the tool is given up to three
    /// seconds to show.
    async fn check_detached(
        &self,
        on: &Place,
        argv: &[String],
        pidfile: &str,
    ) -> Result<String, StepError> {
        let until = std::time::Instant::now() + StdDuration::from_secs(3);
        loop {
            let running = self.detached(&self.endpoint_of(on), pidfile).await?;
            match running {
                Some((pid, cmdline)) if cmdline == argv => {
                    return Ok(format!("pid {pid}"));
                }
                Some((pid, cmdline)) if std::time::Instant::now() > until => {
                    return Err(StepError::Refused(format!(
                        "pid {pid} runs `{}`, not the command started",
                        crate::cluster::quote::command_line(&cmdline)
                    )));
                }
                None if std::time::Instant::now() > until => {
                    return Err(StepError::Refused(
                        "not running 3s after it was started".to_owned(),
                    ));
                }
                _ => tokio::time::sleep(StdDuration::from_millis(100)).await,
            }
        }
    }

    /// Stops a detached tool: SIGINT to its process group, SIGKILL if any
    /// of it still runs after 10 s, then the pidfile goes: nothing of ours
    /// is left. Zombies (a node whose init does not reap) are gone.
    async fn stop_detached(
        &self,
        on: &Place,
        argv: &[String],
        pidfile: &str,
    ) -> Result<String, StepError> {
        let endpoint = self.endpoint_of(on);
        let pid = match self.detached(&endpoint, pidfile).await? {
            Some((pid, cmdline)) if cmdline == argv => Some(pid),
            _ => None,
        };
        let script = "live() { ps -eo pgid=,stat= | awk -v g=\"$1\" '$1==g && $2 !~ /^Z/ {f=1} END {exit !f}'; }; if [ -n \"$1\" ]; then kill -INT -\"$1\" 2>/dev/null; i=0; while live \"$1\" && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; if live \"$1\"; then kill -KILL -\"$1\"; echo killed; fi; fi; rm -f \"$2\"";
        let pid_arg = pid.map(|p| p.to_string()).unwrap_or_default();
        let out = self
            .cluster
            .ssh
            .run_as_root(
                &endpoint,
                Root::RunState,
                &["sh", "-c", script, "hpchaos", &pid_arg, pidfile],
            )
            .await?;
        if out.status != 0 {
            return Err(StepError::exit(&out));
        }
        if out.stdout.contains("killed") {
            return Err(StepError::Refused(format!(
                "process group {pid_arg} ignored SIGINT for 10s and was killed"
            )));
        }
        Ok(match pid {
            Some(pid) => format!("stopped process group {pid}"),
            None => "nothing left running".to_owned(),
        })
    }

    /// Cancels the canary jobs marked with `comment`, waiting for each to
    /// leave (up to `CANCEL_WAIT`); says which, and which still complete.
    async fn cancel_canary(&self, comment: &str) -> Result<String, StepError> {
        let slurm = &self.cluster.slurm;
        let jobs = slurm.jobs_with_comment(comment).await?;
        let mut completing = Vec::new();
        for job in &jobs {
            let left = slurm.scancel_and_wait(*job, super::CANCEL_WAIT).await?;
            if left.is_none() {
                completing.push(job.to_string());
            }
        }
        if jobs.is_empty() {
            return Ok("no job left".to_owned());
        }
        let cancelled: Vec<String> = jobs.iter().map(u64::to_string).collect();
        let still = match completing.is_empty() {
            true => String::new(),
            false => format!(
                " ({} still completing after {}s)",
                completing.join(", "),
                super::CANCEL_WAIT.as_secs()
            ),
        };
        Ok(format!("cancelled job {}{still}", cancelled.join(", ")))
    }

    /// `BatchRebootClusterNodes` (`reboot`) or `BatchReplaceClusterNodes`
    /// for `nodes`' instances; each instance the API refuses is said.
    async fn api_action(&self, nodes: &[String], reboot: bool) -> Result<String, StepError> {
        let api = self.cluster.api.as_ref().ok_or_else(|| {
            StepError::Refused("this fault needs the profile's sagemaker settings".into())
        })?;
        let listed = api.named(nodes).await?;
        let ids: Vec<String> = listed
            .iter()
            .filter(|n| nodes.contains(&n.node))
            .map(|n| n.instance_id.clone())
            .collect();
        let outcome = match reboot {
            true => api.reboot(&ids).await,
            false => api.replace(&ids).await,
        }?;
        let refused: Vec<String> = outcome
            .iter()
            .filter_map(|(id, r)| r.as_ref().err().map(|e| format!("{id}: {e}")))
            .collect();
        if refused.is_empty() {
            Ok(format!("accepted for {}", ids.join(", ")))
        } else {
            Err(StepError::Refused(refused.join("; ")))
        }
    }

    /// `StartClusterHealthCheck` on `nodes`, grouped by instance group.
    async fn api_health_check(
        &self,
        nodes: &[String],
        checks: &[String],
    ) -> Result<String, StepError> {
        let api = self.cluster.api.as_ref().ok_or_else(|| {
            StepError::Refused("this fault needs the profile's sagemaker settings".into())
        })?;
        let listed = api.named(nodes).await?;
        let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for node in listed.iter().filter(|n| nodes.contains(&n.node)) {
            groups
                .entry(node.group.clone())
                .or_default()
                .push(node.instance_id.clone());
        }
        if groups.values().map(Vec::len).sum::<usize>() != nodes.len() {
            return Err(StepError::Refused(format!(
                "not every target is on an instance the API lists: {}",
                nodes.join(", ")
            )));
        }
        let groups: Vec<(String, Vec<String>)> = groups.into_iter().collect();
        api.start_health_check(&groups, checks).await?;
        let ids: Vec<String> = groups.iter().flat_map(|(_, ids)| ids.clone()).collect();
        Ok(format!("accepted for {}", ids.join(", ")))
    }

    /// Resumes `node` if it still carries our `reason` and the cluster is
    /// not acting on it; otherwise says why it was left alone.
    async fn resume_if_untouched(&self, node: &str, reason: &str) -> Result<String, StepError> {
        if let Some(why) = self.cluster_took_over(node).await? {
            return Ok(format!("left to the cluster: {why}"));
        }
        let rows = self.cluster.slurm.nodes().await?;
        if let Some(why) = leave_alone(node, rows.iter().find(|r| r.name == node), reason) {
            return Ok(why);
        }
        // A change from the head like any other: under a lease it carries
        // the lock's fence in the same command (`recover` holds none).
        let argv = [
            "scontrol".to_owned(),
            "update".to_owned(),
            format!("nodename={node}"),
            "state=resume".to_owned(),
        ];
        let out = self
            .cluster
            .ssh
            .run_line_as(
                &self.cluster.slurm.head,
                Some(Root::SlurmAdmin),
                &self.command_for(&Place::Head, &argv),
                self.cluster.profile.ssh.command_timeout.as_std(),
            )
            .await?;
        if let Some(why) = self.fence_refusal(&out) {
            return Err(StepError::Fenced(why));
        }
        if out.status != 0 {
            return Err(StepError::exit(&out));
        }
        Ok(format!("resumed {node}"))
    }

    /// Where a step at `place` runs.
    fn endpoint_of(&self, place: &Place) -> crate::cluster::ssh::Endpoint {
        match place {
            Place::Head => self.cluster.slurm.head.clone(),
            Place::Node(n) => self.cluster.node(n),
        }
    }

    /// `argv` as the command line to run at `place`: from the head, while
    /// the run holds the lock, behind the lock's fence, checked on the head
    /// in the same command (refused there once another run holds the lock).
    fn command_for(&self, place: &Place, argv: &[String]) -> String {
        match (place, &self.lease) {
            (Place::Head, Some(lease)) => super::lock::fenced_line(&lease.fence(), argv),
            _ => crate::cluster::slurm_env::line(argv),
        }
    }

    /// Why the head refused a fenced command, if it did (see
    /// [`super::lock::fence_guard`]): the lock is no longer held under the
    /// run's token, and the lease is lost from then on.
    pub(super) fn fence_refusal(&self, out: &crate::cluster::ssh::Output) -> Option<String> {
        let lease = self.lease.as_ref()?;
        if out.status != super::lock::FENCED_STATUS
            || !out.stderr.contains(super::lock::FENCED_SAID)
        {
            return None;
        }
        let why = format!(
            "the head refused it: the cluster's lock is no longer held under token `{}`",
            lease.fence()
        );
        lease.lose(why.clone());
        Some(why)
    }
}

impl Runner {
    /// Signals `pids` on `node`; says which.
    async fn kill(&self, node: &str, signal: u8, pids: &[u32]) -> Result<String, StepError> {
        let mut argv = vec!["kill".to_owned(), format!("-{signal}")];
        argv.extend(pids.iter().map(u32::to_string));
        let out = self
            .cluster
            .ssh
            .run_as_root(&self.cluster.node(node), Root::SignalOthers, &argv)
            .await?;
        let list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        if out.status == 0 {
            Ok(format!("on {node}: kill -{signal} {list}"))
        } else {
            Err(StepError::Refused(format!(
                "kill -{signal} {list} on {node}: {}",
                out.stderr.trim()
            )))
        }
    }

    /// The pid in `pidfile` on `endpoint` and that process's arguments;
    /// `None` when there is no pidfile or no such process.
    async fn detached(
        &self,
        endpoint: &crate::cluster::ssh::Endpoint,
        pidfile: &str,
    ) -> Result<Option<(u32, Vec<String>)>, StepError> {
        let script = "p=$(cat \"$1\" 2>/dev/null) || exit 0; [ -n \"$p\" ] || exit 0; echo \"$p\"; cat /proc/\"$p\"/cmdline 2>/dev/null || true";
        let out = self
            .cluster
            .ssh
            .run(endpoint, &["sh", "-c", script, "hpchaos", pidfile])
            .await?;
        let Some((pid, cmdline)) = out.stdout.split_once('\n') else {
            return Ok(None);
        };
        let Ok(pid) = pid.trim().parse() else {
            return Ok(None);
        };
        let args = faults::parse_cmdline(cmdline);
        Ok((!args.is_empty()).then_some((pid, args)))
    }

    /// Why a node must be left to the cluster, if HyperPod has taken it
    /// over: the API shows it not `Running`, or on another instance than
    /// before our step (a replacement or reboot under way). Slurm's view
    /// is checked by the caller. `Ok(None)` without the API.
    pub(super) async fn cluster_took_over(&self, node: &str) -> Result<Option<String>, StepError> {
        let Some(api) = &self.cluster.api else {
            return Ok(None);
        };
        let listed = api.named(&[node.to_owned()]).await?;
        let Some(now) = listed.iter().find(|n| n.node == node) else {
            return Ok(Some(format!("{node} is not listed by the API")));
        };
        if !now.running() {
            return Ok(Some(format!(
                "HyperPod is acting on it (API: {})",
                now.status
            )));
        }
        match self.instances_before.get(node) {
            Some(before) if *before != now.instance_id => Ok(Some(format!(
                "HyperPod replaced it ({before} → {})",
                now.instance_id
            ))),
            _ => Ok(None),
        }
    }
}

impl Runner {
    /// What the cluster shows now of an undo step that was carried out but
    /// whose record could not be written: whether it is still applied, and
    /// in words (`stopped`, `resumed`, ..., `STILL ...` when it is still
    /// applied; for steps that leave nothing to look at, that they ran; a
    /// step that could not be re-checked counts as done). Read-only.
    pub(super) async fn recheck(&self, step: &Step) -> (bool, String) {
        let done = |found: String| (false, found);
        let still = |found: String| (true, found);
        match step {
            Step::StopDetached { on, argv, pidfile } => {
                match self.detached(&self.endpoint_of(on), pidfile).await {
                    Ok(Some((pid, cmdline))) if cmdline == *argv => {
                        still(format!("STILL RUNNING (pid {pid})"))
                    }
                    Ok(_) => done("stopped (re-checked: no such process)".to_owned()),
                    Err(e) => done(format!("done, but could not be re-checked: {e}")),
                }
            }
            Step::ResumeIfUntouched { node, reason } => {
                match self
                    .cluster
                    .slurm
                    .nodes_named(std::slice::from_ref(node))
                    .await
                {
                    Ok(rows) => match rows.first() {
                        Some(row) if row.healthy() => {
                            done(format!("resumed (re-checked: {})", row.describe()))
                        }
                        Some(row) if row.reason.contains(reason.as_str()) => {
                            still(format!("STILL MARKED (re-checked: {})", row.describe()))
                        }
                        Some(row) => done(format!(
                            "left to the cluster (re-checked: {})",
                            row.describe()
                        )),
                        None => done(format!(
                            "could not be re-checked: sinfo does not list {node}"
                        )),
                    },
                    Err(e) => done(format!("done, but could not be re-checked: {e}")),
                }
            }
            _ => done("done (exit 0); nothing to re-check".to_owned()),
        }
    }
}

/// Why the rollback leaves `node` (Slurm's `row`) alone instead of
/// resuming it from our `reason`: not in Slurm, usable already, another
/// reason on it, a reboot requested or issued (Slurm 25.11 refuses a state
/// change on `reboot^`), or the cluster's own state (not responding,
/// powering); `None`: only our mark is on it, resume it.
fn leave_alone(
    node: &str,
    row: Option<&crate::cluster::slurm::NodeRow>,
    reason: &str,
) -> Option<String> {
    let Some(row) = row else {
        return Some(format!("left alone: {node} is not in Slurm"));
    };
    if row.state.is_usable() {
        return Some(format!(
            "nothing to undo: {node} is {} (usable){}",
            row.state,
            row.stale_reason()
                .map(|r| format!("; the reason `{r}` left on it is stale"))
                .unwrap_or_default()
        ));
    }
    if row.reason != reason {
        return Some(if row.reason.is_empty() {
            format!("nothing to undo: {node} is {} with no reason", row.state)
        } else {
            format!("left alone: its reason is now `{}`, not ours", row.reason)
        });
    }
    // A reboot asked for or under way (`@`, `^`, `reboot^`): Slurm
    // 25.11 refuses a state change on it, and the reboot returns it.
    if row.state.flags.reboot_requested || row.state.flags.reboot_issued || row.state.is_rebooting()
    {
        return Some(format!(
            "left to the reboot: Slurm shows it {} ({}; the reboot returns it when done)",
            row.state,
            if row.state.flags.reboot_requested {
                "a reboot is requested"
            } else {
                "a reboot is issued: Slurm 25.11 refuses state=resume on it"
            }
        ));
    }
    // Still only our mark: not rebooting, powering or unresponsive.
    if !row.state.is_out_of_service() || row.state.not_responding() {
        return Some(format!(
            "left to the cluster: Slurm shows it {} ({})",
            row.state,
            row.state.condition().as_str()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the rollback does with a node we drained, as Slurm 24.11 and
    /// 25.11 print it: resumed only when our mark alone holds it; a reboot
    /// requested or issued (`@`, `^`, `reboot^`: 25.11 refuses a state
    /// change on it) is left to the reboot.
    #[test]
    fn the_rollback_resumes_only_a_node_held_by_our_mark_alone() {
        const OURS: &str = "hpchaos: drill run-1";
        let decide = |state: &str, reason: &str| {
            let text = format!("ip-10-1-0-12|{state}|{reason}|2026-11-28T10:00:00|root\n");
            let utc = chrono::FixedOffset::east_opt(0).unwrap();
            let rows = crate::cluster::slurm::rows_named(&text, utc, &["ip-10-1-0-12".to_owned()]);
            leave_alone("ip-10-1-0-12", rows.first(), OURS)
        };
        assert_eq!(decide("drained", OURS), None);
        assert_eq!(decide("draining", OURS), None);
        for (state, words) in [
            (
                "drained@",
                "left to the reboot: Slurm shows it drained@ (a reboot is requested",
            ),
            (
                "reboot^",
                "left to the reboot: Slurm shows it reboot^ (a reboot is issued",
            ),
            ("down*", "left to the cluster: Slurm shows it down*"),
            ("idle", "nothing to undo: ip-10-1-0-12 is idle (usable)"),
        ] {
            let said = decide(state, OURS).unwrap_or_default();
            assert!(said.starts_with(words), "{state}: {said}");
        }
        let said = decide("drained", "Action:Replace").unwrap();
        assert_eq!(
            said,
            "left alone: its reason is now `Action:Replace`, not ours"
        );
        assert_eq!(
            leave_alone("ip-10-1-0-12", None, OURS).unwrap(),
            "left alone: ip-10-1-0-12 is not in Slurm"
        );
    }
}
