//! Running the host programs the lab is made of (`ip`, `nsenter`,
//! `ssh-keygen`, Slurm's commands), with errors that say which command
//! failed and what it printed.

use std::process::{Command, Output, Stdio};

/// A lab operation that failed, with what to do about it when we know.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{0}")]
    Setup(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl LabError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
        let context = context.into();
        move |source| LabError::Io { context, source }
    }
}

/// Runs a program to completion; non-zero exit is an error carrying stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let output = output(program, args)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: describe(program, args),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs a program and hands back its output whatever the exit status.
pub fn output(program: &str, args: &[&str]) -> Result<Output, LabError> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Io {
            context: format!("cannot run {program}"),
            source,
        })
}

/// Runs a command inside every namespace of the process `pid` (a node's
/// PID 1), in its root directory (the node's root file system): on the head
/// node that is how the lab calls `sinfo` and `scontrol`.
pub fn in_node(pid: u32, args: &[&str]) -> Result<String, LabError> {
    let pid = pid.to_string();
    let mut full = vec!["-t", pid.as_str(), "-a", "--root", "--wd"];
    full.extend_from_slice(args);
    run("nsenter", &full)
}

fn describe(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes a new ed25519 key pair at `path` (and `path.pub`), replacing any
/// key there.
pub fn new_key(path: &std::path::Path, comment: &str) -> Result<(), LabError> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            comment,
            "-f",
            &path.display().to_string(),
        ],
    )
    .map(drop)
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .chars()
                .next();
            !matches!(state, Some('Z') | Some('X') | None)
        })
        .unwrap_or(false)
}

/// The direct children of a process.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
