//! `hpchaos lab`: the local lab (the `hpchaos-lab` crate): up, down,
//! status, throttle, logs, and the processes `up` starts.

use std::path::Path;

use crate::exit;
use hpchaos_lab as lab;

use crate::cli::LabCommand;

use super::{CliError, Outcome};

/// `hpchaos lab`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LabCommand,
}

pub fn exec(args: Args) -> Outcome {
    let result = match args.command {
        LabCommand::Up {
            nodes,
            dir,
            timings,
            scale,
            no_recovery,
            api_without_hostnames,
            log_time_format,
            slurm,
            reboot_keeps_launch_time,
            cluster_size,
            monitoring,
            compute_trusts,
            auto_resume,
            login_group,
            multi_head,
        } => {
            // Bad input, said before anything starts (exit 2).
            if cluster_size.is_some_and(|size| size < u16::from(nodes)) {
                return Err(CliError::bad_input(format!(
                    "--cluster-size must be at least --nodes ({nodes}): it counts every Slurm node, run or declared"
                )));
            }
            let options = lab::UpOptions {
                nodes,
                timings,
                scale,
                node_recovery_none: no_recovery,
                api_without_hostnames,
                log_time_format,
                slurm,
                reboot_keeps_launch_time,
                cluster_size,
                monitoring,
                compute_trusts,
                auto_resume,
                login_group,
                multi_head,
            };
            lab::up(&dir, &options).and_then(|layout| {
                hpchaos::output::print(&lab::status(&dir)?);
                outln!("use it with: --cluster {}", layout.profile().display());
                Ok(())
            })
        }
        LabCommand::Down { dir } => down(&dir),
        LabCommand::Status { dir } => lab::status(&dir).map(|text| hpchaos::output::print(&text)),
        LabCommand::Throttle {
            dir,
            rate,
            burst,
            off: _,
        } => throttle(&dir, rate, burst),
        LabCommand::Deny {
            dir,
            actions,
            off: _,
        } => lab::deny(&dir, &actions),
        LabCommand::Alarm {
            dir,
            name,
            state,
            reason,
        } => lab::alarm(&dir, &name, &state, &reason).map(|text| hpchaos::output::print(&text)),
        LabCommand::Credentials { dir, expires_in } => {
            lab::credentials(&dir, expires_in.as_chrono()).map(|text| hpchaos::output::print(&text))
        }
        LabCommand::Change {
            dir,
            patch_in,
            patch_strategy,
            software_update,
            scaling,
            deep_health_check,
            check_for,
            off,
        } => {
            let options = lab::ChangeOptions {
                patch_in: patch_in.map(|d| d.as_chrono()),
                patch_strategy,
                software_update,
                scaling,
                deep_health_check,
                check_for: check_for.as_chrono(),
                off,
            };
            lab::change(&dir, &options).map(|text| hpchaos::output::print(&text))
        }
        LabCommand::Logs { dir, node } => logs(&dir, node.as_deref()),
        LabCommand::Ssh { dir, node, command } => return ssh(&dir, node.as_deref(), &command),
        LabCommand::Daemon { dir } => lab::daemon::run(lab::layout::Layout::new(&dir)),
        LabCommand::Exporter {
            dir,
            node,
            role,
            rootfs,
        } => {
            let role = match role.as_str() {
                "head" => lab::layout::Role::Head,
                "login" => lab::layout::Role::Login,
                _ => lab::layout::Role::Compute,
            };
            lab::exporter::run(&dir, &node, role, &rootfs)
        }
    };
    result.map(|()| exit::SUCCESS).map_err(CliError::failed)
}

/// `lab down`: stops the lab in `dir`, then says what it left behind
/// outside it, if anything. Errors as [`lab::down`] does.
fn down(dir: &Path) -> Result<(), lab::system::LabError> {
    lab::down(dir).map(|()| {
        let left = lab::leftovers(dir);
        if left.is_empty() {
            outln!("lab down: nothing left behind outside {}", dir.display());
        } else {
            eprintln!("lab down left: {}", left.join(", "));
        }
    })
}

/// `lab throttle`: limits the lab's SageMaker API to `rate` requests a
/// second in bursts of `burst`, or lifts the limit (no `rate`), and says
/// which. Errors on a negative rate or a burst under 1.
fn throttle(dir: &Path, rate: Option<f64>, burst: f64) -> Result<(), lab::system::LabError> {
    let limit = rate.map(|rate| lab::throttle::Limit { rate, burst });
    match limit {
        Some(l) if !(l.rate >= 0.0 && l.burst >= 1.0) => Err(lab::system::LabError::Setup(
            "--rate must be 0 or more and --burst at least 1".to_owned(),
        )),
        _ => lab::throttle(dir, limit).map(|()| match limit {
            Some(l) => outln!(
                "API limited to {} request(s)/s, bursts of {}",
                l.rate,
                l.burst
            ),
            None => outln!("API rate limit lifted"),
        }),
    }
}

/// `lab logs`: prints the control plane's ground-truth log and the
/// daemon's, or with `node` that node's console, slurmctld, slurmd and
/// syslog; each file that exists, under a `==> file <==` header.
fn logs(dir: &Path, node: Option<&str>) -> Result<(), lab::system::LabError> {
    let layout = lab::layout::Layout::new(dir);
    let files = match node {
        None => vec![layout.ground_truth(), layout.daemon_log()],
        Some(name) => {
            let root = layout.node_root(name);
            vec![
                layout.node_console(name),
                root.join("log/slurm/slurmctld.log"),
                root.join("log/slurm/slurmd.log"),
                root.join("log/syslog"),
            ]
        }
    };
    for file in files.iter().filter(|f| f.exists()) {
        hpchaos::output::println(&format!("==> {} <==", file.display()));
        hpchaos::output::print(&std::fs::read_to_string(file).unwrap_or_default());
    }
    Ok(())
}

/// `lab ssh`: OpenSSH to a lab node as the lab's profile reaches it (its
/// user, key and known_hosts, strict host-key checking); the exit status
/// is the remote command's.
fn ssh(dir: &Path, node: Option<&str>, command: &[String]) -> Outcome {
    let profile = hpchaos::scenario::load_profile(&dir.join("profile.yaml"))
        .map_err(|e| {
            CliError::failed(format!(
                "{e} (is the lab up? `hpchaos lab up --dir {}`)",
                dir.display()
            ))
        })?
        .value;
    let name = node.unwrap_or(&profile.head_node.name);
    let address = profile
        .addresses
        .get(name)
        .cloned()
        .or_else(|| {
            (name == profile.head_node.name)
                .then(|| profile.head_node.address.clone())
                .flatten()
        })
        .or_else(|| hpchaos::cluster::ssh::address_from_name(name))
        .ok_or_else(|| {
            CliError::bad_input(format!(
                "{name} is not a lab node name (see `hpchaos lab status --dir {}`)",
                dir.display()
            ))
        })?;
    let user = profile
        .ssh
        .user
        .clone()
        .unwrap_or_else(|| "root".to_owned());
    // A compute node that trusts only the cluster's key is entered from
    // the head, as HyperPod's users do: `ssh NODE` there.
    let from_head = profile.ssh.compute == hpchaos::profile::Compute::FromHead
        && name != profile.head_node.name;
    let (address, command) = match from_head {
        false => (address, command.to_vec()),
        true => {
            let head = profile.head_node.address.clone().unwrap_or_default();
            // A terminal only when there is one to give (`-t` otherwise
            // makes ssh say so on stderr).
            let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
            let t = if tty { "-t" } else { "-T" };
            let mut hop = vec!["ssh".to_owned(), t.to_owned(), name.to_owned()];
            hop.extend(command.iter().map(|w| hpchaos::cluster::quote::quote(w)));
            (head, vec![t.to_owned(), "--".to_owned(), hop.join(" ")])
        }
    };
    let mut ssh = std::process::Command::new("ssh");
    if let Some(key) = &profile.ssh.key {
        ssh.args(["-i", key]);
    }
    ssh.args([
        "-o",
        &format!("UserKnownHostsFile={}", profile.ssh.known_hosts),
    ])
    .args(["-o", "StrictHostKeyChecking=yes"])
    .arg(format!("{user}@{address}"))
    .args(command);
    let status = ssh
        .status()
        .map_err(|e| CliError::failed(format!("cannot run ssh: {e}")))?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(exit::HARNESS_FAILED))
}
