//! What the lab test binaries share: the hpchaos binary, the preflight
//! message, and OpenSSH to a lab node with the lab's key and known_hosts
//! (strict host-key checking, no prompts).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the hpchaos binary from the repository's root.
pub fn hpchaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// Fails the test with how to get what the lab needs, if it is missing.
pub fn preflight_or_explain(test: &str) {
    if let Err(err) = hpchaos::lab::preflight() {
        panic!(
            "the {test} test needs root and the lab's packages ({err}); `make setup` installs them"
        );
    }
}

/// Runs `command` on `host` of the lab in `dir`: its stdout, or its stderr
/// when it fails.
pub fn ssh(dir: &Path, host: &str, command: &str) -> Result<String, String> {
    let out = Command::new("ssh")
        .args(["-i", &dir.join("ssh/id_ed25519").display().to_string()])
        .args([
            "-o",
            &format!(
                "UserKnownHostsFile={}",
                dir.join("ssh/known_hosts").display()
            ),
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
        ])
        .arg(format!("root@{host}"))
        .arg(command)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
