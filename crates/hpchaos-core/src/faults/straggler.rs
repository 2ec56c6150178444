//! A straggler (`fault: straggler`): each target slowed for `duration`.
//! Its GPUs: their clocks locked low (`nvidia-smi -lgc`, as a thermal
//! clock drop does) or their power capped (`nvidia-smi -pl`). Or the
//! job's CPU time there: a cgroup CPU quota on the job's processes on the
//! node (a noisy neighbour, a throttled host). Nothing fails: a
//! synchronous job runs every step at its slowest rank's pace. What was
//! set before is kept in a state file on the node (the power limit or the
//! quota read first, the cgroup each moved process came from), and the
//! undo (and `recover`) puts it back.

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

/// Run as root with the quota in thousandths of a CPU as `$1`, the job id
/// as `$2` and the state file as `$3`: holds the job's processes on this
/// node (those whose environment has `SLURM_JOB_ID=$2`, slurmstepd aside)
/// to that CPU time in each 100 ms period (1 s under 0.01 CPU: the
/// kernel's least quota is 1 ms). On cgroup v2 with the job in a
/// Slurm job cgroup (`.../job_ID/...`, `proctrack/cgroup`), that cgroup's
/// `cpu.max` is set in place (a process is never moved out of it: Slurm
/// tracks and kills the job's processes through it); otherwise the
/// processes are moved into a cgroup of hpchaos's
/// (`hpchaos-cpu-quota-JOB-HOST`, under the cpu controller's root: v1's
/// cpu hierarchy is not the one Slurm's cgroup/v1 tracks with). Each
/// change is written to `$3` before it is made (the old `cpu.max`, or each
/// process with the cgroup it came from). Exits 3, changing nothing, when
/// the job has no process here or there is no CPU controller.
pub const QUOTA_SCRIPT: &str = r#"m=$1 j=$2 f=$3 period=100000
# The kernel's least quota is 1 ms: under 0.01 CPU, a period of 1 s.
[ "$m" -ge 10 ] || period=1000000
quota=$((m * period / 1000))
[ ! -e "$f" ] || { echo "already held by hpchaos (see $f)"; exit 0; }
pids=
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" != slurmstepd ] || continue
  tr '\0' '\n' 2>/dev/null < "$d/environ" | grep -qx "SLURM_JOB_ID=$j" && pids="$pids ${d#/proc/}"
done
[ -n "$pids" ] || { echo "no process of job $j on $(hostname)" >&2; exit 3; }
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then v=2 mnt=/sys/fs/cgroup
elif [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then v=1 mnt=/sys/fs/cgroup/cpu
elif [ -e /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us ]; then v=1 mnt=/sys/fs/cgroup/cpu,cpuacct
else echo "no CPU controller on $(hostname) (cgroup v2 at /sys/fs/cgroup, or v1's cpu hierarchy)" >&2; exit 3; fi
home() { if [ $v = 2 ]; then sed -n 's/^0:://p' "/proc/$1/cgroup"; else awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3; exit}' "/proc/$1/cgroup"; fi; }
set -- $pids
first=$(home "$1")
case $v:$first in
  2:*/job_$j|2:*/job_$j/*)
    cg=$mnt${first%%/job_$j*}/job_$j
    [ -e "$cg/cpu.max" ] || { echo "the job's cgroup $cg has no cpu controller (cgroup.subtree_control above it lacks cpu)" >&2; exit 3; }
    echo "limit $cg/cpu.max $(cat "$cg/cpu.max")" > "$f" && echo "$quota $period" > "$cg/cpu.max" || exit 1
    echo "job $j held to $quota/$period us of CPU in its cgroup $cg" ;;
  *)
    cg=$mnt/hpchaos-cpu-quota-$j-$(hostname)
    echo "cgroup $cg" > "$f" && mkdir -p "$cg" || exit 1
    if [ $v = 2 ]; then
      [ -e "$cg/cpu.max" ] || { rmdir "$cg"; rm -f "$f"; echo "no cpu controller in $mnt/cgroup.subtree_control" >&2; exit 3; }
      echo "$quota $period" > "$cg/cpu.max"
    else
      echo "$period" > "$cg/cpu.cfs_period_us" && echo "$quota" > "$cg/cpu.cfs_quota_us"
    fi || { rmdir "$cg"; rm -f "$f"; exit 1; }
    moved=
    for p in "$@"; do
      h=$(home "$p") || continue
      [ -n "$h" ] || continue
      echo "$p $mnt${h%/}" >> "$f" && echo "$p" > "$cg/cgroup.procs" 2>/dev/null && moved="$moved $p"
    done
    [ -n "$moved" ] || { echo "none of job $j's processes could be moved" >&2; exit 1; }
    echo "job $j held to $quota/$period us of CPU: moved$moved into $cg" ;;
esac"#;

/// Run as root with the state file as `$1`: undoes what
/// [`QUOTA_SCRIPT`] recorded (the job cgroup's old `cpu.max` written
/// back; or every process still in hpchaos's cgroup moved back where it
/// came from, the first's home for one born there, and the cgroup
/// removed), then removes the file; fails if hpchaos's cgroup is left. No
/// file is nothing to undo.
pub const UNQUOTA_SCRIPT: &str = r#"f=$1
[ -e "$f" ] || { echo "nothing held"; exit 0; }
read -r what where old < "$f"
case $what in
  limit) printf '%s\n' "$old" > "$where" && rm -f "$f" && echo "$where back to $old" ;;
  cgroup)
    first=$(sed -n '2{s/^[0-9]* //p}' "$f")
    back=0 top=0
    for try in 1 2 3 4 5; do
      [ -d "$where" ] || break
      for p in $(cat "$where/cgroup.procs" 2>/dev/null); do
        h=$(awk -v p="$p" '$1 == p {print $2; exit}' "$f")
        { [ -n "$h" ] && [ -d "$h" ]; } || h=${first:-${where%/*}}
        if echo "$p" > "$h/cgroup.procs" 2>/dev/null; then back=$((back + 1))
        elif echo "$p" > "${where%/*}/cgroup.procs" 2>/dev/null; then top=$((top + 1)); fi
      done
      rmdir "$where" 2>/dev/null && break
      sleep 0.2
    done
    [ ! -d "$where" ] || { echo "cannot remove $where: $(cat "$where/cgroup.procs" | wc -l) process(es) left in it" >&2; exit 1; }
    extra=; [ "$top" = 0 ] || extra=", $top more to ${where%/*} (where they came from is gone)"
    rm -f "$f" && echo "moved $back process(es) back$extra; $where removed" ;;
  *) echo "unknown state in $f: $what" >&2; exit 1 ;;
esac"#;

pub fn plan(straggler: &Straggler, targets: &[String]) -> Plan {
    let pidfile = || STATE_FILE.to_owned();
    let gpus = |node: &String, what: &str, value: u32| {
        let slow = Step::SlowGpus {
            node: node.clone(),
            what: what.to_owned(),
            value,
            pidfile: pidfile(),
        };
        let restore = Step::RestoreGpus {
            node: node.clone(),
            pidfile: pidfile(),
        };
        (slow, restore)
    };
    let (slow, restore): (Vec<Step>, Vec<Step>) = targets
        .iter()
        .map(|node| match straggler.slow {
            Slow::GpuClocks { max_mhz } => gpus(node, "clocks", max_mhz),
            Slow::PowerCap { watts } => gpus(node, "power", watts),
            Slow::CpuQuota { cpus } => (
                Step::CpuQuota {
                    node: node.clone(),
                    // Thousandths of a CPU: the step is journaled and
                    // compared, so it holds no float (validation keeps
                    // `cpus` at 0.001 or more).
                    millicpus: (cpus * 1000.0).round().max(1.0) as u32,
                    pidfile: pidfile(),
                },
                Step::LiftCpuQuota {
                    node: node.clone(),
                    pidfile: pidfile(),
                },
            ),
        })
        .unzip();
    Plan {
        inject: slow,
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
    fn a_cpu_quota_holds_the_job_and_is_lifted_after_its_duration() {
        let s: Straggler =
            serde_saphyr::from_str("slow: {cpu_quota: {cpus: 0.25}}\nduration: 30s\n").unwrap();
        let plan = plan(&s, &["a".into(), "b".into()]).for_run("r1");
        assert_eq!(
            plan.inject[1],
            Step::CpuQuota {
                node: "b".into(),
                millicpus: 250,
                pidfile: "/run/hpchaos-straggler-r1.pid".into()
            }
        );
        assert_eq!(
            plan.inject[0].describe(),
            "on a: hold the workload's processes to 0.25 CPU (a cgroup CPU quota; what it changes noted in /run/hpchaos-straggler-r1.pid)"
        );
        let (after, steps) = plan.follow_up.clone().unwrap();
        assert_eq!(after.as_std().as_secs(), 30);
        assert_eq!(steps, plan.rollback);
        assert_eq!(
            plan.rollback[0],
            Step::LiftCpuQuota {
                node: "a".into(),
                pidfile: "/run/hpchaos-straggler-r1.pid".into()
            }
        );
        assert_eq!(
            plan.inject[0].needs_root(),
            Some(crate::cluster::privilege::Root::Cgroups)
        );
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
