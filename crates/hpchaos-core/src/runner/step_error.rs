//! Why a step of an injection, of its checks or of a rollback failed. Its
//! text is what the journal records (`step_ran`, `rollback`, `detail`);
//! its variant is what the runner decides on (a step never begun leaves
//! nothing to undo; a fenced one means the lease is lost).

use crate::cluster::sagemaker::ApiError;
use crate::cluster::ssh::{Output, SshError};

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Not begun: the run was stopped (a signal, the lease lost, the lock
    /// not confirmed) before it; `why` when the lock said so.
    #[error("stopped before: {step}{}", why.as_deref().map(|w| format!(": {w}")).unwrap_or_default())]
    Stopped { step: String, why: Option<String> },
    /// Not begun: an earlier step on the same node failed.
    #[error("skipped after a failed step: {0}")]
    Skipped(String),
    /// The head refused the command: the cluster's lock is no longer held
    /// under this run's token (see `lock::fence_guard`).
    #[error("{0}")]
    Fenced(String),
    /// The lock could not be checked before the step, or the lease is
    /// lost: nothing may be changed.
    #[error("{0}")]
    Lock(String),
    /// The command ran and failed.
    #[error("exit {status}: {stderr}")]
    Exit { status: u32, stderr: String },
    /// The node or head could not be reached, or the command not run.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The SageMaker API refused or failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A process pattern that is not a regular expression.
    #[error(transparent)]
    Pattern(#[from] regex::Error),
    /// The cluster is not as the step needs it (no task of the job on the
    /// node, the tool not running, an instance the API refused).
    #[error("{0}")]
    Refused(String),
}

impl StepError {
    /// A command's failure: its exit status and stderr.
    pub fn exit(out: &Output) -> StepError {
        StepError::Exit {
            status: out.status,
            stderr: out.stderr.trim().to_owned(),
        }
    }

    /// The step never began, so it changed nothing.
    pub fn never_began(&self) -> bool {
        matches!(self, StepError::Stopped { .. })
    }
}
