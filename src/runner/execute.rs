//! Carrying out one fault step: commands over SSH (or on a local head
//! node), killing the workload's tasks, the Batch API calls, checks that
//! an injection took, and the rollback steps.

use std::time::Duration as StdDuration;

use crate::cluster::ssh::SshError;
use crate::faults::{self, Place, Step};

use super::{Runner, WorkloadJob};

impl Runner {
    pub(super) async fn execute(
        &self,
        step: &Step,
        workload: Option<&WorkloadJob>,
    ) -> Result<(), String> {
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
}
