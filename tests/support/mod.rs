//! What the test binaries share, in one place: the repository's root,
//! the fixture journals (`fixtures`: written through the real
//! `JournalWriter` with a manual clock) and the lab's helpers (`lab`: the
//! hpchaos binary, the preflight, OpenSSH to a lab node). Each binary uses
//! part of it.

#![allow(dead_code)]

pub mod fixtures;
pub mod lab;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the hpchaos binary from the repository's root; its output.
pub fn hpchaos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// The repository's root: where scenarios, fixtures and the e2e files are.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
