//! Slurm's job states, decoded once by meaning, beside `node_state.rs` for
//! nodes: what `scontrol show job` (`JobState=`) and `squeue -o %T` print,
//! to a [`JobState`] whose questions (final? running?) are answered here
//! and nowhere else. Source: SchedMD/slurm `src/common/slurm_protocol_defs.c`
//! (`job_state_string`), the base states and the flags printed in their
//! place (`COMPLETING`, `CONFIGURING`, `REQUEUED`, ...).

use std::fmt;

/// A job's state as Slurm names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobState {
    Pending,
    Running,
    Suspended,
    Completed,
    Cancelled,
    Failed,
    Timeout,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    OutOfMemory,
    /// Ending: its processes are being cleaned off its nodes.
    Completing,
    /// Starting: its nodes are booting or being configured.
    Configuring,
    /// Requeued, on its way back to `PENDING`.
    Requeued,
    RequeueHold,
    RequeueFed,
    SpecialExit,
    Resizing,
    Stopped,
    Signaling,
    StageOut,
    Revoked,
    ResvDelHold,
    /// A state this table does not know, as printed.
    Other(String),
}

impl JobState {
    /// Decodes what Slurm printed (case and surrounding text as `sacct`'s
    /// `CANCELLED by 0` ignored: the first word decides).
    pub fn parse(text: &str) -> JobState {
        let word = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match word.as_str() {
            "PENDING" => JobState::Pending,
            "RUNNING" => JobState::Running,
            "SUSPENDED" => JobState::Suspended,
            "COMPLETED" => JobState::Completed,
            "CANCELLED" => JobState::Cancelled,
            "FAILED" => JobState::Failed,
            "TIMEOUT" => JobState::Timeout,
            "NODE_FAIL" => JobState::NodeFail,
            "PREEMPTED" => JobState::Preempted,
            "BOOT_FAIL" => JobState::BootFail,
            "DEADLINE" => JobState::Deadline,
            "OUT_OF_MEMORY" => JobState::OutOfMemory,
            "COMPLETING" => JobState::Completing,
            "CONFIGURING" => JobState::Configuring,
            "REQUEUED" => JobState::Requeued,
            "REQUEUE_HOLD" => JobState::RequeueHold,
            "REQUEUE_FED" => JobState::RequeueFed,
            "SPECIAL_EXIT" => JobState::SpecialExit,
            "RESIZING" => JobState::Resizing,
            "STOPPED" => JobState::Stopped,
            "SIGNALING" => JobState::Signaling,
            "STAGE_OUT" => JobState::StageOut,
            "REVOKED" => JobState::Revoked,
            "RESV_DEL_HOLD" => JobState::ResvDelHold,
            _ => JobState::Other(text.trim().to_owned()),
        }
    }

    /// As Slurm prints it.
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Running => "RUNNING",
            JobState::Suspended => "SUSPENDED",
            JobState::Completed => "COMPLETED",
            JobState::Cancelled => "CANCELLED",
            JobState::Failed => "FAILED",
            JobState::Timeout => "TIMEOUT",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Preempted => "PREEMPTED",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::Completing => "COMPLETING",
            JobState::Configuring => "CONFIGURING",
            JobState::Requeued => "REQUEUED",
            JobState::RequeueHold => "REQUEUE_HOLD",
            JobState::RequeueFed => "REQUEUE_FED",
            JobState::SpecialExit => "SPECIAL_EXIT",
            JobState::Resizing => "RESIZING",
            JobState::Stopped => "STOPPED",
            JobState::Signaling => "SIGNALING",
            JobState::StageOut => "STAGE_OUT",
            JobState::Revoked => "REVOKED",
            JobState::ResvDelHold => "RESV_DEL_HOLD",
            JobState::Other(text) => text,
        }
    }

    /// Ended for good: a base state Slurm gives a job that left the
    /// system (`IS_JOB_FINISHED`: past `JOB_SUSPENDED` in `job_states`).
    /// `COMPLETING` is not final: the job is still on its nodes.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Cancelled
                | JobState::Failed
                | JobState::Timeout
                | JobState::NodeFail
                | JobState::Preempted
                | JobState::BootFail
                | JobState::Deadline
                | JobState::OutOfMemory
        )
    }

    /// Running its steps (not starting, not ending, not held).
    pub fn is_running(&self) -> bool {
        *self == JobState::Running
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for JobState {
    fn from(text: &str) -> JobState {
        JobState::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_as_printed() {
        for text in [
            "PENDING",
            "RUNNING",
            "SUSPENDED",
            "COMPLETED",
            "CANCELLED",
            "FAILED",
            "TIMEOUT",
            "NODE_FAIL",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
            "OUT_OF_MEMORY",
            "COMPLETING",
            "CONFIGURING",
            "REQUEUED",
            "REQUEUE_HOLD",
            "REQUEUE_FED",
            "SPECIAL_EXIT",
            "RESIZING",
            "STOPPED",
            "SIGNALING",
            "STAGE_OUT",
            "REVOKED",
            "RESV_DEL_HOLD",
        ] {
            let state = JobState::parse(text);
            assert!(!matches!(state, JobState::Other(_)), "{text}");
            assert_eq!(state.to_string(), text);
        }
        assert_eq!(JobState::parse("CANCELLED by 0"), JobState::Cancelled);
        assert_eq!(JobState::parse("running"), JobState::Running);
        assert_eq!(
            JobState::parse("POWER_UP_NODE"),
            JobState::Other("POWER_UP_NODE".into())
        );
    }

    #[test]
    fn final_states_are_those_of_a_job_that_left() {
        for done in [
            "COMPLETED",
            "CANCELLED",
            "FAILED",
            "TIMEOUT",
            "NODE_FAIL",
            "PREEMPTED",
            "BOOT_FAIL",
            "DEADLINE",
            "OUT_OF_MEMORY",
        ] {
            assert!(JobState::parse(done).is_final(), "{done}");
        }
        for live in [
            "PENDING",
            "RUNNING",
            "COMPLETING",
            "REQUEUED",
            "SUSPENDED",
            "CONFIGURING",
            "REQUEUE_HOLD",
        ] {
            assert!(!JobState::parse(live).is_final(), "{live}");
        }
        assert!(JobState::Running.is_running() && !JobState::Completing.is_running());
    }
}
