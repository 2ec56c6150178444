//! The environment every Slurm command hpchaos runs gets for its output:
//! what it parses must not depend on the account's dotfiles. Slurm's
//! clients read their output format from the environment of the process
//! (`SLURM_TIME_FORMAT` changes every time `sinfo`, `squeue`, `scontrol`
//! and `sacct` print; `SQUEUE_FORMAT`, `SINFO_FORMAT`, ... replace the
//! columns when no `-o` is given; `*_ALL`, `*_STATES`, `SLURM_CLUSTERS`
//! change which records are listed). Source: SchedMD/slurm
//! `src/common/parse_time.c` (`slurm_make_time_str`: `SLURM_TIME_FORMAT`
//! unset or `standard` is `%FT%T`, `relative` or any strftime format
//! otherwise), and the "INPUT ENVIRONMENT VARIABLES" of `sinfo(1)`,
//! `squeue(1)`, `scontrol(1)` and `sacct(1)`. Field case 19.

use super::quote::command_line;

/// The programs whose output or selection this pins: Slurm's clients.
pub const SLURM_CLIENTS: &[&str] = &[
    "sinfo", "squeue", "scontrol", "sacct", "sbatch", "scancel", "srun", "salloc", "sacctmgr",
    "sprio", "sshare", "sstat", "sdiag",
];

/// Set for every Slurm command: times as `2026-11-28T16:07:41`, the one
/// shape [`super::slurm::parse_time`] reads. `TZ` is left as the account
/// has it: Slurm prints local time, and the controller's offset is read
/// in the same environment (`date +%z`, [`super::slurm::Slurm::utc_offset`]).
pub const SET: &[(&str, &str)] = &[("SLURM_TIME_FORMAT", "standard")];

/// Cleared for every Slurm command: each changes the columns, the order,
/// the records listed or the cluster asked. `SLURM_CONF` is kept (it says
/// where the configuration is, not how to print), as are `SBATCH_*`
/// (a submission's defaults are the site's choice).
pub const CLEARED: &[&str] = &[
    // sinfo(1)
    "SINFO_ALL",
    "SINFO_FEDERATION",
    "SINFO_FORMAT",
    "SINFO_FUTURE",
    "SINFO_LOCAL",
    "SINFO_PARTITION",
    "SINFO_SORT",
    // squeue(1)
    "SQUEUE_ACCOUNT",
    "SQUEUE_ALL",
    "SQUEUE_ARRAY",
    "SQUEUE_ARRAY_UNIQUE",
    "SQUEUE_FEDERATION",
    "SQUEUE_FORMAT",
    "SQUEUE_FORMAT2",
    "SQUEUE_LICENSES",
    "SQUEUE_LOCAL",
    "SQUEUE_NAMES",
    "SQUEUE_PARTITION",
    "SQUEUE_PRIORITY",
    "SQUEUE_QOS",
    "SQUEUE_SIB",
    "SQUEUE_SIBLING",
    "SQUEUE_SORT",
    "SQUEUE_STATES",
    "SQUEUE_USERS",
    // scontrol(1)
    "SCONTROL_ALL",
    "SCONTROL_FEDERATION",
    "SCONTROL_FUTURE",
    "SCONTROL_LOCAL",
    "SCONTROL_SIB",
    "SCONTROL_SIBLING",
    // sacct(1)
    "SACCT_FEDERATION",
    "SACCT_FORMAT",
    "SACCT_LOCAL",
    // every client (`SLURM_JSON`/`SLURM_YAML` shape `--json`/`--yaml`
    // output from 25.05)
    "SLURM_BITSTR_LEN",
    "SLURM_CLUSTERS",
    "SLURM_JSON",
    "SLURM_TOPO_LEN",
    "SLURM_YAML",
];

/// Whether `program` (a path or a name) is one of Slurm's clients.
pub fn is_slurm_client(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    SLURM_CLIENTS.contains(&name)
}

/// `argv` to run: a Slurm client behind `env` with [`SET`] set and
/// [`CLEARED`] unset (`env -u` is in GNU coreutils and busybox);
/// anything else as it is.
pub fn pinned<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    let mut words = Vec::new();
    if argv.first().is_some_and(|p| is_slurm_client(p.as_ref())) {
        words.push("env".to_owned());
        for name in CLEARED {
            words.push("-u".to_owned());
            words.push((*name).to_owned());
        }
        for (name, value) in SET {
            words.push(format!("{name}={value}"));
        }
    }
    words.extend(argv.iter().map(|a| a.as_ref().to_owned()));
    words
}

/// [`pinned`] as a command line (see [`command_line`]): the one place a
/// command line to execute is built from an argument list.
pub fn line<S: AsRef<str>>(argv: &[S]) -> String {
    command_line(&pinned(argv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slurm_clients_are_pinned() {
        assert!(line(&["sinfo", "-N"]).starts_with("env -u SINFO_ALL "));
        assert!(
            line(&["/usr/bin/scontrol", "show", "job", "1"])
                .contains(" SLURM_TIME_FORMAT=standard /usr/bin/scontrol show job 1")
        );
        assert_eq!(line(&["stat", "-c", "%s"]), "stat -c %s");
        assert!(!is_slurm_client("sinfo-exporter"));
    }

    /// The pinned line run by a real shell whose environment has the
    /// account's settings: the program sees none of them.
    #[test]
    fn a_pinned_client_sees_none_of_the_accounts_settings() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("sinfo");
        std::fs::write(&fake, "#!/bin/sh\nenv\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        );
        let run = |line: &str| {
            let out = std::process::Command::new("sh")
                .args(["-c", line])
                .env("PATH", &path)
                .env("SLURM_TIME_FORMAT", "relative")
                .env("SINFO_FORMAT", "%all")
                .env("SQUEUE_STATES", "all")
                .env("SLURM_CLUSTERS", "other")
                .env("SLURM_CONF", "/etc/slurm/slurm.conf")
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        // Unpinned, the account's settings reach Slurm (the test can fail).
        let bare = run(&command_line(&["sinfo"]));
        assert!(bare.contains("SLURM_TIME_FORMAT=relative"), "{bare}");
        let pinned = run(&line(&["sinfo", "-N"]));
        assert!(pinned.contains("SLURM_TIME_FORMAT=standard\n"), "{pinned}");
        for gone in ["SINFO_FORMAT", "SQUEUE_STATES", "SLURM_CLUSTERS"] {
            assert!(!pinned.contains(&format!("{gone}=")), "{gone} in {pinned}");
        }
        assert!(
            pinned.contains("SLURM_CONF=/etc/slurm/slurm.conf"),
            "{pinned}"
        );
    }
}
