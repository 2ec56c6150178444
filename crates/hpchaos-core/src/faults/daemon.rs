//! Slurm's own daemons (`fault: daemon`): `slurmd` restarted or stopped on
//! each target, or `slurmctld` on the head node, through their systemd
//! units as HyperPod runs them. A restarted slurmd's unit takes its job
//! steps with it (HYPERPOD.md, "What HyperPod does not catch"); a
//! restarted slurmctld reloads its state and keeps running jobs. The undo
//! starts the daemon if it is not running (never a second one), so
//! `recover` after `kill -9` leaves no daemon stopped; a `stop` with a
//! `duration` is started again that long after the injection.

use super::{Place, Plan, Step, argv};
use crate::scenario::model::{Daemon, DaemonAction, SlurmDaemon};

/// Run as root with the unit as `$1`: starts it unless it is active, and
/// says which (`already running`, `started`); fails if it does not come up.
/// A started slurmctld is waited for (up to 45 s, under the command
/// timeout) until it is the primary in control again: on a multi-head
/// cluster it first asks the backup to hand control back, and answers
/// nothing until then (about 30 s on the lab).
pub const START_SCRIPT: &str = "systemctl is-active --quiet \"$1\" && { echo \"$1 already running\"; exit 0; }; systemctl start \"$1\" && systemctl is-active --quiet \"$1\" && echo \"$1 started\" || exit 1; [ \"$1\" = slurmctld ] || exit 0; i=0; until scontrol ping 2>/dev/null | grep -q '^Slurmctld(primary) at .* is UP' && timeout 5 scontrol -o show partition >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 45 ] || { echo \"slurmctld not in control yet after 45 s\"; exit 0; }; sleep 1; done; echo \"slurmctld in control after $i s\"";

pub fn plan(daemon: &Daemon, targets: &[String]) -> Plan {
    let unit = daemon.name.as_str();
    let places: Vec<Place> = match daemon.name {
        SlurmDaemon::Slurmd => targets.iter().map(|t| Place::Node(t.clone())).collect(),
        SlurmDaemon::Slurmctld => vec![Place::Head],
    };
    let verb = match daemon.action {
        DaemonAction::Restart => "restart",
        DaemonAction::Stop => "stop",
    };
    let start: Vec<Step> = places
        .iter()
        .map(|on| Step::Run {
            on: on.clone(),
            argv: argv(&["sh", "-c", START_SCRIPT, "hpchaos", unit]),
        })
        .collect();
    Plan {
        inject: places
            .iter()
            .map(|on| Step::Run {
                on: on.clone(),
                argv: argv(&["systemctl", verb, unit]),
            })
            .collect(),
        // A restart must come back: checked right after it.
        verify: match daemon.action {
            DaemonAction::Restart => places
                .iter()
                .map(|on| Step::Run {
                    on: on.clone(),
                    argv: argv(&["systemctl", "is-active", unit]),
                })
                .collect(),
            DaemonAction::Stop => Vec::new(),
        },
        follow_up: match (daemon.action, daemon.duration) {
            (DaemonAction::Stop, Some(after)) => Some((after, start.clone())),
            _ => None,
        },
        rollback: start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(yaml: &str) -> Daemon {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn slurmd_on_each_target_slurmctld_on_the_head_and_always_started_again() {
        let plan = plan(&daemon("name: slurmd\n"), &["a".into(), "b".into()]);
        assert_eq!(plan.inject.len(), 2);
        assert_eq!(plan.inject[0].describe(), "on a: systemctl restart slurmd");
        assert_eq!(plan.verify.len(), 2);
        assert_eq!(plan.rollback.len(), 2);
        assert!(plan.follow_up.is_none());
        let plan =
            plan_of("name: slurmctld\naction: stop\nduration: 20s\nallow_controller: true\n");
        assert_eq!(plan.inject.len(), 1);
        assert_eq!(
            plan.inject[0].describe(),
            "on head: systemctl stop slurmctld"
        );
        assert!(plan.verify.is_empty());
        let (after, steps) = plan.follow_up.clone().unwrap();
        assert_eq!(after.as_std().as_secs(), 20);
        assert_eq!(steps, plan.rollback);
    }

    fn plan_of(yaml: &str) -> Plan {
        plan(&daemon(yaml), &["a".into()])
    }

    #[test]
    fn the_start_script_starts_only_what_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        // A systemctl that keeps its units' states in files.
        let shim = dir.path().join("systemctl");
        std::fs::write(
            &shim,
            "#!/bin/sh\nf=\"$(dirname \"$0\")/$3$2\"\ncase $1 in\n is-active) [ -e \"$(dirname \"$0\")/$3\" ];;\n start) touch \"$(dirname \"$0\")/$2\"; echo start >> \"$(dirname \"$0\")/starts\";;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(START_SCRIPT)
                .arg("hpchaos")
                .arg("slurmd")
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        dir.path().display(),
                        std::env::var("PATH").unwrap()
                    ),
                )
                .output()
                .unwrap()
        };
        let out = run();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "slurmd started"
        );
        let out = run();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "slurmd already running"
        );
        let starts = std::fs::read_to_string(dir.path().join("starts")).unwrap();
        assert_eq!(starts.lines().count(), 1, "started twice");
    }
}
