//! A straggler (`fault: straggler`): each target's GPUs slowed, their
//! clocks locked low (`nvidia-smi -lgc`, as a thermal clock drop does) or
//! their power capped (`nvidia-smi -pl`), for `duration`. Nothing fails:
//! a synchronous job runs every step at its slowest rank's pace. What was
//! set before is kept in a state file on the node (the power limit read
//! first), and the undo (and `recover`) puts it back.

use super::{Plan, Step};
use crate::scenario::model::{Slow, Straggler};

/// The state file's stem on the node (a run names its own after itself).
pub const STATE_FILE: &str = "/run/hpchaos-straggler.pid";

/// Run as root with `clocks` or `power` as `$1`, the MHz or watts as `$2`
/// and the state file as `$3`: records what it changes (the power limit
/// read first), then slows every GPU; prints before and after.
pub const SLOW_SCRIPT: &str = r#"case $1 in
  clocks) echo clocks > "$3" && nvidia-smi -lgc "$2,$2" >/dev/null && echo "GPU clocks locked at $2 MHz" ;;
  power) before=$(nvidia-smi --query-gpu=power.limit --format=csv,noheader,nounits | head -1 | tr -d ' ')
    [ -n "$before" ] || { echo "cannot read the power limit" >&2; exit 1; }
    echo "power $before" > "$3" && nvidia-smi -pl "$2" >/dev/null && echo "GPU power limit $before W -> $2 W" ;;
  *) exit 2 ;;
esac"#;

/// Run as root with the state file as `$1`: puts back what it records
/// (clocks reset, or the power limit read before) and removes it; no file
/// is nothing to restore.
pub const RESTORE_SCRIPT: &str = r#"[ -e "$1" ] || { echo "nothing to restore"; exit 0; }
read -r what value < "$1"
case $what in
  clocks) nvidia-smi -rgc >/dev/null && echo "GPU clocks reset" ;;
  power) nvidia-smi -pl "$value" >/dev/null && echo "GPU power limit back to $value W" ;;
  *) echo "unknown state in $1: $what" >&2; exit 1 ;;
esac && rm -f "$1""#;

pub fn plan(straggler: &Straggler, targets: &[String]) -> Plan {
    let (what, value) = match straggler.slow {
        Slow::GpuClocks { max_mhz } => ("clocks", max_mhz),
        Slow::PowerCap { watts } => ("power", watts),
    };
    let restore: Vec<Step> = targets
        .iter()
        .map(|node| Step::RestoreGpus {
            node: node.clone(),
            pidfile: STATE_FILE.to_owned(),
        })
        .collect();
    Plan {
        inject: targets
            .iter()
            .map(|node| Step::SlowGpus {
                node: node.clone(),
                what: what.to_owned(),
                value,
                pidfile: STATE_FILE.to_owned(),
            })
            .collect(),
        verify: Vec::new(),
        follow_up: Some((straggler.duration, restore.clone())),
        rollback: restore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowed_for_its_duration_then_restored() {
        let s: Straggler =
            serde_saphyr::from_str("slow: {power_cap: {watts: 350}}\nduration: 2m\n").unwrap();
        let plan = plan(&s, &["a".into()]);
        assert_eq!(
            plan.inject[0].describe(),
            "on a: GPU power limit to 350 W (the limit before kept in /run/hpchaos-straggler.pid)"
        );
        let (after, steps) = plan.follow_up.clone().unwrap();
        assert_eq!(after.as_std().as_secs(), 120);
        assert_eq!(steps, plan.rollback);
    }

    #[test]
    fn the_restore_puts_back_what_was_read_and_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        // A nvidia-smi that logs what it is asked.
        let shim = dir.path().join("nvidia-smi");
        std::fs::write(
            &shim,
            "#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/asked\"\ncase \"$*\" in *power.limit*) echo '700.00 W' | sed 's/ W//';; esac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = dir.path().join("state");
        let run = |script: &str, args: &[&str]| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .arg("hpchaos")
                .args(args)
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
        let s = state.to_str().unwrap();
        let out = run(SLOW_SCRIPT, &["power", "350", s]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "GPU power limit 700.00 W -> 350 W"
        );
        let out = run(RESTORE_SCRIPT, &[s]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "GPU power limit back to 700.00 W"
        );
        assert!(!state.exists());
        assert_eq!(
            String::from_utf8_lossy(&run(RESTORE_SCRIPT, &[s]).stdout).trim(),
            "nothing to restore"
        );
        let asked = std::fs::read_to_string(dir.path().join("asked")).unwrap();
        assert_eq!(
            asked
                .lines()
                .filter(|l| l.starts_with("-pl"))
                .collect::<Vec<_>>(),
            ["-pl 350", "-pl 700.00"]
        );
    }
}
