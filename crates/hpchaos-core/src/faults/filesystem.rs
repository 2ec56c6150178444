//! The checkpoint file system broken (`fault: filesystem`): filled up (a
//! file taking all but `leave_free` of it, written once from the first
//! target since it is shared), remounted read-only on each target (in
//! that node's view, as a node whose FSx client turned read-only sees it)
//! or frozen on each target (a stopped FUSE passthrough stacked on it, as
//! a Lustre client whose servers stopped answering: the next checkpoint
//! hangs). The next checkpoint then fails or hangs, and the job with it.
//! The undo removes the file, remounts read-write, or continues and
//! unmounts the passthrough; `recover` runs the same undo.

use super::{Plan, Step};
use crate::scenario::model::{Filesystem, FsEffect};

/// The fill file's stem (a run names its own after itself, see
/// `Plan::for_run`): `<path>/.hpchaos-fill-RUN.pid`.
pub const FILL_FILE: &str = ".hpchaos-fill.pid";

/// Run as root with the mount point as `$1`, the bytes to leave free as
/// `$2` and the file as `$3`: fills the file system to `$2` bytes free
/// (fallocate, else zeros written) and prints what is left; exits 3,
/// writing nothing, when less than that is free already.
pub const FILL_SCRIPT: &str = r#"avail=$(df --output=avail -B1 "$1" | tail -1 | tr -d ' ') || exit 1
n=$((avail - $2))
[ "$n" -gt 0 ] || { echo "$1 has $avail bytes free, not more than the $2 to leave: nothing filled" >&2; exit 3; }
fallocate -l "$n" "$3" 2>/dev/null || head -c "$n" /dev/zero > "$3" 2>/dev/null || true
[ -e "$3" ] || { echo "cannot write $3" >&2; exit 1; }
echo "filled $1 with $(stat -c %s "$3") bytes: $(df --output=avail -B1 "$1" | tail -1 | tr -d ' ') bytes free""#;

/// Run as root with the file as `$1`: removes it (nothing there is fine).
pub const UNFILL_SCRIPT: &str =
    r#"if [ -e "$1" ]; then rm -f "$1" && echo "removed $1"; else echo "$1 is gone already"; fi"#;

/// Run as root with the mount point as `$1` and `ro` or `rw` as `$2`.
/// `ro`: stacks a read-only bind mount of `$1` on itself (the mount under
/// it keeps the files already open for writing, such as the job's output,
/// which a remount of the mount itself would refuse with EBUSY; every file
/// opened from now on is read-only, as on an FSx client turned
/// read-only). `rw`: takes that read-only mount off again (lazily: a
/// reader may hold it), only while the top mount at `$1` is read-only and
/// there is one under it, so nothing else is ever unmounted. The root
/// file system (`/`: a mount stacked on a process's root is never seen
/// from it) is remounted itself instead, `ro` and back `rw`, as an ext4
/// root that hit errors turns read-only; HMA detects that. Each checks a
/// write fails (`ro`) or succeeds (`rw`).
pub const REMOUNT_SCRIPT: &str = r#"mounts() { awk -v p="$1" '$5 == p' /proc/self/mountinfo | wc -l; }
top_ro() { awk -v p="$1" '$5 == p {o=$6} END {exit !(o ~ /(^|,)ro(,|$)/)}' /proc/self/mountinfo; }
case $1:$2 in
  /:ro) top_ro / || mount -o remount,bind,ro / || exit 1 ;;
  /:rw) if top_ro /; then mount -o remount,bind,rw / || exit 1; fi ;;
  *:ro) if [ "$(mounts "$1")" -gt 1 ] && top_ro "$1"; then :; else
        mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || { umount -l "$1" 2>/dev/null; exit 1; }
      fi ;;
  *:rw) while [ "$(mounts "$1")" -gt 1 ] && top_ro "$1"; do umount -l "$1" || exit 1; done ;;
  *) exit 2 ;;
esac
probe="$1/.hpchaos-write-probe-$$"
if touch "$probe" 2>/dev/null; then rm -f "$probe"; state=rw; else state=ro; fi
[ "$state" = "$2" ] || { echo "$1 is still $state" >&2; exit 1; }
echo "$1 is $state""#;

/// The FUSE subtype hpchaos's passthrough carries (mountinfo's type
/// field reads `fuse.hpchaos-frozen`; bindfs sets the source field
/// itself), so the thaw unmounts that one only.
pub const FROZEN_SUBTYPE: &str = "hpchaos-frozen";

/// Run as root with the mount point as `$1` and `freeze` or `thaw` as
/// `$2`. `freeze`: stacks `bindfs` (a FUSE passthrough, of subtype
/// [`FROZEN_SUBTYPE`]) on `$1` unless it is there already, and stops it
/// (`SIGSTOP`): every file opened or looked up under `$1` from now on
/// waits for it (killably: the request never reached the stopped daemon),
/// as on a Lustre client whose servers stopped answering; files open
/// before keep the mount under it. Checks a write does not finish within
/// 2 s (the probe is killed). Exits 3 when bindfs is not installed.
/// `thaw`: continues every stopped passthrough of hpchaos's on `$1`, then
/// unmounts them (lazily), only while the top mount at `$1` is hpchaos's,
/// so nothing else is ever unmounted; checks a write succeeds within 10 s.
pub const FREEZE_SCRIPT: &str = r#"name=hpchaos-frozen
top_frozen() { awk -v p="$1" -v t="fuse.$name" '$5 == p {s = ""; for (i = 7; i < NF; i++) if ($i == "-") s = $(i + 1)} END {exit s != t}' /proc/self/mountinfo; }
daemons() { pgrep -xf "bindfs -o allow_other,subtype=$name $1 $1"; }
probe="$1/.hpchaos-write-probe-$$"
case $2 in
  freeze)
    command -v bindfs >/dev/null || { echo "bindfs is not installed on $(hostname) (apt-get install bindfs): a frozen file system is a stopped bindfs stacked on $1" >&2; exit 3; }
    if ! top_frozen "$1"; then bindfs -o "allow_other,subtype=$name" "$1" "$1" || exit 1; fi
    pids=$(daemons "$1") || { echo "no bindfs of hpchaos's runs for $1" >&2; exit 1; }
    kill -STOP $pids || exit 1
    if timeout -s KILL 2 touch "$probe" 2>/dev/null; then
      rm -f "$probe"; echo "$1 is not frozen: a write finished" >&2; exit 1
    fi
    echo "$1 is frozen (bindfs $(echo $pids) stopped): a write did not finish in 2 s" ;;
  thaw)
    pids=$(daemons "$1") && kill -CONT $pids
    while top_frozen "$1"; do umount -l "$1" || exit 1; done
    timeout -s KILL 10 touch "$probe" || { echo "$1 still does not take a write" >&2; exit 1; }
    rm -f "$probe" "$1"/.hpchaos-write-probe-*
    echo "$1 is thawed: a write finished" ;;
  *) exit 2 ;;
esac"#;

pub fn plan(fs: &Filesystem, targets: &[String]) -> Plan {
    let (inject, undo): (Vec<Step>, Vec<Step>) = match &fs.effect {
        FsEffect::Full { leave_free } => {
            // Validation refuses a size bytesize does not read.
            let leave = leave_free
                .parse::<bytesize::ByteSize>()
                .map(|b| b.as_u64())
                .unwrap_or(0);
            let file = format!("{}/{FILL_FILE}", fs.path.trim_end_matches('/'));
            match targets.first() {
                Some(node) => (
                    vec![Step::FillFs {
                        node: node.clone(),
                        path: fs.path.clone(),
                        leave_free: leave,
                        pidfile: file.clone(),
                    }],
                    vec![Step::UnfillFs {
                        node: node.clone(),
                        pidfile: file,
                    }],
                ),
                None => (Vec::new(), Vec::new()),
            }
        }
        FsEffect::ReadOnly => targets
            .iter()
            .map(|node| {
                (
                    Step::Remount {
                        node: node.clone(),
                        path: fs.path.clone(),
                        read_only: true,
                    },
                    Step::Remount {
                        node: node.clone(),
                        path: fs.path.clone(),
                        read_only: false,
                    },
                )
            })
            .unzip(),
        FsEffect::Frozen => targets
            .iter()
            .map(|node| {
                let step = |frozen| Step::Freeze {
                    node: node.clone(),
                    path: fs.path.clone(),
                    frozen,
                };
                (step(true), step(false))
            })
            .unzip(),
    };
    Plan {
        inject,
        verify: Vec::new(),
        follow_up: fs.duration.map(|d| (d, undo.clone())),
        rollback: undo,
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

    #[test]
    fn a_fill_that_would_leave_more_than_is_free_writes_nothing_and_the_undo_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let file = format!("{d}/fill");
        // More to leave free than any disk has: refused, nothing written.
        let (code, _, err) = sh(FILL_SCRIPT, &[d, "18446744073709551615", &file]);
        assert_ne!(code, 0, "{err}");
        assert!(!std::path::Path::new(&file).exists());
        std::fs::write(&file, "x").unwrap();
        let (code, out, _) = sh(UNFILL_SCRIPT, &[&file]);
        assert_eq!(code, 0);
        assert!(out.contains("removed"), "{out}");
        assert!(!std::path::Path::new(&file).exists());
        assert!(sh(UNFILL_SCRIPT, &[&file]).1.contains("gone already"));
    }

    #[test]
    fn full_fills_once_from_the_first_target_read_only_each_target() {
        let full: Filesystem = serde_saphyr::from_str(
            "path: /fsx/canary\neffect: {full: {leave_free: 1MiB}}\nduration: 30s\n",
        )
        .unwrap();
        let plan = plan(&full, &["a".into(), "b".into()]);
        assert_eq!(plan.inject.len(), 1);
        assert_eq!(
            plan.inject[0],
            Step::FillFs {
                node: "a".into(),
                path: "/fsx/canary".into(),
                leave_free: 1_048_576,
                pidfile: "/fsx/canary/.hpchaos-fill.pid".into()
            }
        );
        assert_eq!(plan.follow_up.as_ref().unwrap().1, plan.rollback);
        let ro: Filesystem = serde_saphyr::from_str("path: /fsx\neffect: read_only\n").unwrap();
        let plan = super::plan(&ro, &["a".into(), "b".into()]);
        assert_eq!(plan.inject.len(), 2);
        assert_eq!(plan.rollback.len(), 2);
        assert!(plan.follow_up.is_none());
    }

    #[test]
    fn frozen_freezes_each_target_and_the_undo_thaws_each() {
        let frozen: Filesystem =
            serde_saphyr::from_str("path: /fsx/canary\neffect: frozen\nduration: 2m\n").unwrap();
        let plan = plan(&frozen, &["a".into(), "b".into()]);
        let step = |node: &str, frozen| Step::Freeze {
            node: node.into(),
            path: "/fsx/canary".into(),
            frozen,
        };
        assert_eq!(plan.inject, [step("a", true), step("b", true)]);
        assert_eq!(plan.rollback, [step("a", false), step("b", false)]);
        let (after, undo) = plan.follow_up.as_ref().unwrap();
        assert_eq!(after.0, std::time::Duration::from_secs(120));
        assert_eq!(undo, &plan.rollback);
        assert!(plan.inject[0].describe().contains("freeze /fsx/canary"));
        assert_eq!(
            plan.inject[0].needs_root(),
            Some(crate::cluster::privilege::Root::Filesystems)
        );
    }

    #[test]
    fn the_freeze_names_what_it_stacks_so_the_thaw_unmounts_that_only() {
        // The marker bindfs is started with is the one pgrep and the
        // mountinfo type (fuse.SUBTYPE) look for.
        assert!(FREEZE_SCRIPT.starts_with(&format!("name={FROZEN_SUBTYPE}\n")));
        assert!(FREEZE_SCRIPT.contains(r#"bindfs -o "allow_other,subtype=$name" "$1" "$1""#));
        assert!(FREEZE_SCRIPT.contains(r#"pgrep -xf "bindfs -o allow_other,subtype=$name $1 $1""#));
        assert!(FREEZE_SCRIPT.contains(r#"-v t="fuse.$name""#));
    }
}
