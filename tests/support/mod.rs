//! What the test binaries share, in one place: the repository's root,
//! the fixture journals (`fixtures`: written through the real
//! `JournalWriter` with a manual clock) and the lab's helpers (`lab`: the
//! hpchaos binary, the preflight, OpenSSH to a lab node). Each binary uses
//! part of it.

#![allow(dead_code)]

pub mod fixtures;
pub mod lab;

use std::path::PathBuf;

/// The repository's root: where scenarios, fixtures and the e2e files are.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
