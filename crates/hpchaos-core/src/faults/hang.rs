//! A hung rank (`fault: hang`): on each target node, the workload's task
//! (the lowest rank there, or `rank`) and every process under it are
//! stopped with SIGSTOP, as a rank stuck in a collective or a frozen
//! process is; HyperPod's health agent sees nothing, only the training's
//! collective watchdog does (docs: HYPERPOD.md, "What HyperPod does not
//! catch"). What was stopped is written to a pidfile on the node, each pid
//! with its start time; the undo (and `recover`) continues exactly those
//! (SIGCONT, never a pid reused since) and checks none is left stopped.
//! With `duration`, the harness lets them go that long after the injection.

use super::{Plan, Step};
use crate::scenario::model::{Hang, RankChoice};

/// Where the stopped pids are kept on the node (stem; a run names its own
/// after itself, see `Plan::for_run`).
pub const HANG_PIDFILE: &str = "/run/hpchaos-hang.pid";

/// Run on the node as root with the job id as `$1`, the rank wanted (a
/// number, `random`, or empty for the lowest) as `$2` and the pidfile as
/// `$3`: finds the job's step task (a process whose parent is
/// `slurmstepd`, with `SLURM_JOB_ID=$1`, a `SLURM_PROCID` and a
/// `SLURM_STEP_ID`: the batch script, `slurmstepd: [JOB.batch]`'s child
/// on the batch host, has `SLURM_PROCID=0` too but no step id, and
/// stopping it stops `srun`, which forwards every rank's output and exit;
/// seen on the lab's Slurm 24.11), rank `$2`,
/// one drawn among those on the node, or the lowest, stops it and its
/// descendants (parent first), each written (`pid starttime`) to `$3`
/// before it is stopped, and prints `rank R: stopped PIDS`. Exits 3,
/// stopping nothing, when there is no such task.
pub const STOP_SCRIPT: &str = r#"j=$1 want=$2 f=$3 best= bestrank= seen=0
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  e=$(tr '\0' '\n' 2>/dev/null < "$d/environ") || continue
  printf '%s\n' "$e" | grep -qx "SLURM_JOB_ID=$j" || continue
  printf '%s\n' "$e" | grep -q '^SLURM_STEP_ID=' || continue
  r=$(printf '%s\n' "$e" | sed -n 's/^SLURM_PROCID=//p' | head -1)
  [ -n "$r" ] || continue
  pp=$(sed 's/.*) //' "$d/stat" 2>/dev/null | awk '{print $2}')
  [ "$(cat "/proc/$pp/comm" 2>/dev/null)" = slurmstepd ] || continue
  case $want in
    random) # Reservoir sampling: each of the node's ranks as likely.
      seen=$((seen + 1))
      [ "$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')" -lt $((4294967295 / seen + 1)) ] && best=$p bestrank=$r
      continue ;;
    "") ;;
    *) [ "$r" = "$want" ] || continue ;;
  esac
  if [ -z "$bestrank" ] || [ "$r" -lt "$bestrank" ]; then best=$p bestrank=$r; fi
done
case $want in ""|random) w= ;; *) w=" with rank $want" ;; esac
[ -n "$best" ] || { echo "no step task of job $j$w on $(hostname)" >&2; exit 3; }
# Each pid is written to the file before it is stopped (so an undo finds
# all it must continue), the task first: stopped, it starts nothing new;
# a short-lived child gone meanwhile is skipped.
start_of() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
: > "$f"
stop() {
  s=$(start_of "$1")
  [ -n "$s" ] || return 1
  echo "$1 $s" >> "$f" && kill -STOP "$1" 2>/dev/null
}
stop "$best" || { rm -f "$f"; echo "the task $best of job $j is gone" >&2; exit 3; }
all=$best queue=$best
while [ -n "$queue" ]; do
  next=
  for q in $queue; do
    for c in $(pgrep -P "$q"); do stop "$c" && all="$all $c" next="$next $c"; done
  done
  queue=$next
done
echo "rank $bestrank: stopped $all""#;

/// Run on the node as root with the pidfile as `$1`: continues every pid
/// in it still the same process (its start time unchanged), removes the
/// file, and fails if one of them is still stopped. Prints what it did;
/// no file means nothing is stopped.
pub const CONTINUE_SCRIPT: &str = r#"f=$1
[ -e "$f" ] || { echo "nothing stopped"; exit 0; }
went= left=
while read -r p s; do
  now=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $20}')
  [ -n "$now" ] && [ "$now" = "$s" ] || continue
  kill -CONT "$p" 2>/dev/null && went="$went $p"
done < "$f"
sleep 0.2
while read -r p s; do
  now=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $20}')
  [ -n "$now" ] && [ "$now" = "$s" ] || continue
  st=$(sed 's/.*) //' "/proc/$p/stat" | awk '{print $1}')
  [ "$st" = T ] && left="$left $p"
done < "$f"
[ -z "$left" ] || { echo "still stopped:$left" >&2; exit 1; }
rm -f "$f"
echo "continued${went:- none (the processes are gone)}""#;

pub fn plan(hang: &Hang, targets: &[String]) -> Plan {
    let resume: Vec<Step> = targets
        .iter()
        .map(|node| Step::ContinueStopped {
            node: node.clone(),
            pidfile: HANG_PIDFILE.to_owned(),
        })
        .collect();
    Plan {
        inject: targets
            .iter()
            .map(|node| Step::StopJobTask {
                node: node.clone(),
                rank: match hang.rank {
                    Some(RankChoice::Rank(r)) => Some(r),
                    Some(RankChoice::Drawn(_)) | None => None,
                },
                random: matches!(hang.rank, Some(RankChoice::Drawn(_))),
                pidfile: HANG_PIDFILE.to_owned(),
            })
            .collect(),
        verify: Vec::new(),
        follow_up: hang.duration.map(|d| (d, resume.clone())),
        rollback: resume,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("hpchaos")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn state(pid: u32) -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat.rsplit(") ")
            .next()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_undo_continues_what_was_stopped_and_nothing_reused() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("hang.pid");
        let f = pidfile.to_str().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.rsplit(") ")
                .next()
                .unwrap()
                .split(' ')
                .nth(19)
                .unwrap()
                .to_owned()
        };
        // As the stop script leaves it: the pid and its start time.
        std::fs::write(&pidfile, format!("{pid} {start}\n999999 1\n")).unwrap();
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(state(pid), "T");
        let (code, out, err) = sh(CONTINUE_SCRIPT, &[f]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&format!("continued {pid}")), "{out}");
        assert_ne!(state(pid), "T");
        assert!(!pidfile.exists());
        // Again: nothing left to do, said so.
        assert_eq!(sh(CONTINUE_SCRIPT, &[f]).1.trim(), "nothing stopped");
        // A pid whose start time differs (reused) is never signalled.
        std::fs::write(&pidfile, format!("{pid} 1\n")).unwrap();
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (code, out, _) = sh(CONTINUE_SCRIPT, &[f]);
        assert_eq!(code, 0);
        assert!(out.contains("none"), "{out}");
        assert_eq!(state(pid), "T");
        unsafe { libc::kill(pid as i32, libc::SIGCONT) };
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn no_task_of_the_job_stops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hang.pid");
        let (code, _, err) = sh(STOP_SCRIPT, &["999999", "", f.to_str().unwrap()]);
        assert_eq!(code, 3);
        assert!(err.contains("no step task of job 999999"), "{err}");
        assert!(!f.exists());
    }

    #[test]
    fn a_rank_is_the_one_named_the_lowest_or_drawn_among_the_nodes() {
        // A stand-in slurmstepd (a shell under that name) with three step
        // tasks of job 4242, ranks 0 to 2, as on a node running three; and
        // the job's batch script (SLURM_PROCID=0 too, no step id), started
        // first, as on the batch host: never taken for rank 0.
        let dir = tempfile::tempdir().unwrap();
        let stepd = dir.path().join("slurmstepd");
        std::fs::copy("/bin/sh", &stepd).unwrap();
        let mut parent = std::process::Command::new(&stepd)
            .arg("-c")
            .arg("SLURM_JOB_ID=4242 SLURM_PROCID=0 sleep 61 & for r in 0 1 2; do SLURM_JOB_ID=4242 SLURM_PROCID=$r SLURM_STEP_ID=0 sleep 60 & done; wait")
            .spawn()
            .unwrap();
        let f = dir.path().join("hang.pid");
        let f = f.to_str().unwrap();
        let stop = |want: &str| -> String {
            let mut said = String::new();
            for _ in 0..100 {
                let (code, out, err) = sh(STOP_SCRIPT, &["4242", want, f]);
                if code == 0 {
                    said = out;
                    break;
                }
                // The tasks not started yet.
                assert_eq!(code, 3, "{err}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let (code, out, err) = sh(CONTINUE_SCRIPT, &[f]);
            assert_eq!(code, 0, "{out}{err}");
            // The process stopped is a step task, never the batch script.
            let pid = said.split_whitespace().nth(3).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            assert_eq!(cmdline, b"sleep\x0060\x00", "{said}");
            said.split(':').next().unwrap_or("").to_owned()
        };
        assert_eq!(stop(""), "rank 0");
        assert_eq!(stop("2"), "rank 2");
        let drawn: std::collections::BTreeSet<String> = (0..30).map(|_| stop("random")).collect();
        // Three ranks, thirty draws: all three seen but for a chance of
        // about 3 x (2/3)^30, 1e-5.
        assert_eq!(
            drawn.into_iter().collect::<Vec<_>>(),
            ["rank 0", "rank 1", "rank 2"]
        );
        let (code, _, err) = sh(STOP_SCRIPT, &["4242", "7", f]);
        assert_eq!(code, 3);
        assert!(err.contains("with rank 7"), "{err}");
        let _ = std::process::Command::new("pkill")
            .args(["-P", &parent.id().to_string()])
            .status();
        parent.kill().unwrap();
        parent.wait().unwrap();
    }

    #[test]
    fn a_random_rank_is_drawn_on_each_target() {
        let hang: Hang = serde_saphyr::from_str("rank: random\n").unwrap();
        let plan = plan(&hang, &["a".into()]);
        assert_eq!(
            plan.inject[0],
            Step::StopJobTask {
                node: "a".into(),
                rank: None,
                random: true,
                pidfile: HANG_PIDFILE.into()
            }
        );
        assert_eq!(
            plan.inject[0].describe(),
            "on a: SIGSTOP the workload's task (one of its ranks there, drawn at random) and every process under it"
        );
        let hang: Hang = serde_saphyr::from_str("rank: 3\n").unwrap();
        assert_eq!(hang.rank, Some(RankChoice::Rank(3)));
        // A journal written before `random` existed still reads.
        let old: Step = serde_json::from_str(
            r#"{"kind":"stop_job_task","node":"a","rank":1,"pidfile":"/run/x.pid"}"#,
        )
        .unwrap();
        assert!(matches!(old, Step::StopJobTask { random: false, .. }));
    }

    #[test]
    fn it_stops_each_target_and_lets_go_after_its_duration() {
        let hang: Hang = serde_saphyr::from_str("rank: 1\nduration: 45s\n").unwrap();
        let plan = plan(&hang, &["a".into(), "b".into()]);
        assert_eq!(plan.inject.len(), 2);
        assert_eq!(plan.rollback.len(), 2);
        let (after, steps) = plan.follow_up.unwrap();
        assert_eq!(after.as_std().as_secs(), 45);
        assert_eq!(steps, plan.rollback);
    }
}
