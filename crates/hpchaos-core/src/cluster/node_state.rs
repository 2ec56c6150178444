//! The one decoding of a Slurm node state, by meaning. `sinfo %T` prints
//! `node_state_string()` lower-cased (`%t` its compact form): a base state
//! and at most one flag suffix, or a word of its own (`reboot^`, `inval`,
//! `planned`, `maint`). Source: SchedMD/slurm `src/common/
//! slurm_protocol_defs.c`, `node_state_string()` and
//! `node_state_string_compact()`, 22.05 to 25.11 (the same table; 24.11
//! adds `blocked`). Everything downstream asks a [`NodeState`] questions
//! (usable? failed? rebooting?) and never compares raw strings. A string
//! this table does not know is [`Condition::Unknown`], never usable.

use std::fmt;

/// A node's state as Slurm printed it, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// Exactly what Slurm printed, e.g. `mixed-`, `drained*`.
    pub raw: String,
    pub base: Base,
    pub flags: Flags,
}

/// The state word without its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Idle,
    Allocated,
    Mixed,
    Completing,
    Down,
    Drained,
    Draining,
    Fail,
    Failing,
    Future,
    Maint,
    /// Idle, in an advanced reservation.
    Reserved,
    /// Idle, blocked (24.11+).
    Blocked,
    /// Idle, held by the scheduler for a pending job.
    Planned,
    /// Registered with less hardware than configured (`INVAL`).
    Invalid,
    /// `REBOOT` (requested), `REBOOT^` (issued), `REBOOT*`.
    Reboot,
    /// `POWER_DOWN`, `POWERED_DOWN`, `POWERING_DOWN`, `POWER_UP`,
    /// `POWERING_UP`, `CLOUD`.
    Power,
    Resume,
    Unknown,
    /// A word this table does not know (kept in `raw`).
    Unrecognised,
}

/// The suffix flags (`node_state_string()` prints at most one; the
/// compact form too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// `*`: not responding.
    pub not_responding: bool,
    /// `~`: powered off.
    pub powered_off: bool,
    /// `#`: powering up, or being configured.
    pub powering_up: bool,
    /// `!`: pending power down.
    pub power_down_pending: bool,
    /// `%`: powering down.
    pub powering_down: bool,
    /// `$`: in a maintenance reservation (HyperPod's deep health checks).
    pub maintenance: bool,
    /// `@`: reboot requested.
    pub reboot_requested: bool,
    /// `^`: reboot issued.
    pub reboot_issued: bool,
    /// `-`: planned by the backfill scheduler for a pending job.
    pub planned: bool,
    /// `+`: completing (a job's epilog still running).
    pub completing: bool,
}

/// What a node state means for the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// Up, responding, and able to run jobs (idle, allocated, mixed,
    /// completing, planned, reserved, blocked; `-` and `+` flags).
    Usable,
    /// Drain set, jobs still running.
    Draining,
    /// Drain set, no job.
    Drained,
    /// `fail` / `failing` (HyperPod's `Action:*` marks).
    Failed,
    Down,
    /// Registered with less hardware than configured.
    Invalid,
    /// A reboot requested or issued.
    Rebooting,
    /// Powered down, or powering up or down.
    PoweredDown,
    /// In maintenance.
    Maintenance,
    /// Otherwise up, but not responding to slurmctld.
    NotResponding,
    /// Not yet part of the cluster (`future`).
    Future,
    /// `unknown`, `resume`, or a string this table does not know.
    Unknown,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Usable => "usable",
            Condition::Draining => "draining",
            Condition::Drained => "drained",
            Condition::Failed => "failed",
            Condition::Down => "down",
            Condition::Invalid => "invalid",
            Condition::Rebooting => "rebooting",
            Condition::PoweredDown => "powered_down",
            Condition::Maintenance => "maintenance",
            Condition::NotResponding => "not_responding",
            Condition::Future => "future",
            Condition::Unknown => "unknown",
        }
    }
}

impl NodeState {
    /// Decodes `%T` (or `%t`) output; case does not matter. Never fails:
    /// what it does not know is `Base::Unrecognised`.
    pub fn parse(text: &str) -> NodeState {
        let raw = text.trim().to_owned();
        let lower = raw.to_ascii_lowercase();
        let word = lower.trim_end_matches(['*', '~', '#', '!', '%', '$', '@', '^', '-', '+']);
        let suffix = &lower[word.len()..];
        let mut flags = Flags::default();
        let mut known_suffix = true;
        for c in suffix.chars() {
            match c {
                '*' => flags.not_responding = true,
                '~' => flags.powered_off = true,
                '#' => flags.powering_up = true,
                '!' => flags.power_down_pending = true,
                '%' => flags.powering_down = true,
                '$' => flags.maintenance = true,
                '@' => flags.reboot_requested = true,
                '^' => flags.reboot_issued = true,
                '-' => flags.planned = true,
                '+' => flags.completing = true,
                _ => known_suffix = false,
            }
        }
        let base = match word {
            "idle" => Base::Idle,
            "allocated" | "alloc" => Base::Allocated,
            "mixed" | "mix" => Base::Mixed,
            "completing" | "comp" => Base::Completing,
            "down" => Base::Down,
            "drained" | "drain" => Base::Drained,
            "draining" | "drng" => Base::Draining,
            "fail" => Base::Fail,
            "failing" | "failg" => Base::Failing,
            "future" | "futr" => Base::Future,
            "maint" => Base::Maint,
            "reserved" | "resv" => Base::Reserved,
            "blocked" | "block" => Base::Blocked,
            "planned" | "plnd" => Base::Planned,
            "inval" => Base::Invalid,
            "reboot" | "boot" | "reboot_issued" => Base::Reboot,
            "power_down" | "powered_down" | "powering_down" | "power_up" | "powering_up"
            | "pow_dn" | "pow_up" | "powered_dn" | "powring_dn" | "cloud" => Base::Power,
            "resume" | "resm" => Base::Resume,
            "unknown" | "unk" => Base::Unknown,
            _ => Base::Unrecognised,
        };
        let base = if known_suffix {
            base
        } else {
            Base::Unrecognised
        };
        NodeState { raw, base, flags }
    }

    /// What the state means. Order matters: a node that is failed and
    /// not responding is failed; one that is otherwise up but rebooting,
    /// powered down, in maintenance or not responding is not usable.
    pub fn condition(&self) -> Condition {
        let f = &self.flags;
        match self.base {
            Base::Unrecognised | Base::Unknown | Base::Resume => Condition::Unknown,
            Base::Invalid => Condition::Invalid,
            Base::Future => Condition::Future,
            Base::Fail | Base::Failing => Condition::Failed,
            Base::Down => Condition::Down,
            Base::Drained => Condition::Drained,
            Base::Draining => Condition::Draining,
            Base::Reboot => Condition::Rebooting,
            Base::Power => Condition::PoweredDown,
            Base::Maint => Condition::Maintenance,
            Base::Idle
            | Base::Allocated
            | Base::Mixed
            | Base::Completing
            | Base::Reserved
            | Base::Blocked
            | Base::Planned => {
                if f.reboot_requested || f.reboot_issued {
                    Condition::Rebooting
                } else if f.powered_off || f.powering_down || f.powering_up || f.power_down_pending
                {
                    Condition::PoweredDown
                } else if f.maintenance {
                    Condition::Maintenance
                } else if f.not_responding {
                    Condition::NotResponding
                } else {
                    Condition::Usable
                }
            }
        }
    }

    /// Up, responding, able to run jobs.
    pub fn is_usable(&self) -> bool {
        self.condition() == Condition::Usable
    }

    /// Taken out of service: failed, down, drained or draining, or
    /// registered with less hardware than configured.
    pub fn is_out_of_service(&self) -> bool {
        matches!(
            self.condition(),
            Condition::Failed
                | Condition::Down
                | Condition::Drained
                | Condition::Draining
                | Condition::Invalid
        )
    }

    /// Out of service with no job left on it (the drain is over).
    pub fn is_drained(&self) -> bool {
        matches!(
            self.condition(),
            Condition::Down | Condition::Drained | Condition::Invalid
        ) || self.base == Base::Fail
    }

    /// A reboot requested or issued, in Slurm's own words.
    pub fn is_rebooting(&self) -> bool {
        self.condition() == Condition::Rebooting
    }

    /// Not responding to slurmctld (`*`), whatever its base state.
    pub fn not_responding(&self) -> bool {
        self.flags.not_responding
    }

    /// A string this table does not know (to be journaled once).
    pub fn is_unrecognised(&self) -> bool {
        self.base == Base::Unrecognised
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(text: &str) -> Condition {
        NodeState::parse(text).condition()
    }

    #[test]
    fn working_nodes_with_any_working_suffix_are_usable() {
        // Field case 02: mixed- (planned by backfill), allocated+
        // (completing), plain completing; and every other working form.
        for state in [
            "idle",
            "allocated",
            "mixed",
            "completing",
            "mixed-",
            "allocated+",
            "planned",
            "reserved",
            "blocked",
            "ALLOC",
            "mix-",
            "comp",
            "IDLE",
        ] {
            assert_eq!(condition(state), Condition::Usable, "{state}");
        }
    }

    #[test]
    fn every_state_slurm_prints_has_a_meaning() {
        let cases = [
            ("fail", Condition::Failed),
            ("fail*", Condition::Failed),
            ("failing", Condition::Failed),
            ("failg*", Condition::Failed),
            ("down", Condition::Down),
            ("down*", Condition::Down),
            ("down~", Condition::Down),
            ("drained", Condition::Drained),
            ("drained*", Condition::Drained),
            ("drain$", Condition::Drained),
            ("draining", Condition::Draining),
            ("draining@", Condition::Draining),
            ("drng", Condition::Draining),
            ("inval", Condition::Invalid),
            ("reboot", Condition::Rebooting),
            ("reboot^", Condition::Rebooting),
            ("reboot*", Condition::Rebooting),
            ("boot^", Condition::Rebooting),
            ("idle@", Condition::Rebooting),
            ("mixed^", Condition::Rebooting),
            ("idle~", Condition::PoweredDown),
            ("idle#", Condition::PoweredDown),
            ("idle%", Condition::PoweredDown),
            ("idle!", Condition::PoweredDown),
            ("powered_down", Condition::PoweredDown),
            ("powering_up", Condition::PoweredDown),
            ("cloud", Condition::PoweredDown),
            ("idle$", Condition::Maintenance),
            ("maint", Condition::Maintenance),
            ("maint*", Condition::Maintenance),
            ("idle*", Condition::NotResponding),
            ("mixed*", Condition::NotResponding),
            ("future", Condition::Future),
            ("unknown", Condition::Unknown),
            ("unknown*", Condition::Unknown),
            ("resume", Condition::Unknown),
            // Not Slurm's: unknown, never usable.
            ("perfctrs", Condition::Unknown),
            ("idle&", Condition::Unknown),
            ("", Condition::Unknown),
            ("healthy", Condition::Unknown),
        ];
        for (state, expected) in cases {
            assert_eq!(condition(state), expected, "{state}");
        }
        assert!(NodeState::parse("healthy").is_unrecognised());
        assert!(!NodeState::parse("reboot^").is_unrecognised());
    }

    #[test]
    fn questions_by_meaning() {
        assert!(NodeState::parse("fail").is_drained());
        assert!(!NodeState::parse("failing").is_drained());
        assert!(NodeState::parse("draining").is_out_of_service());
        assert!(!NodeState::parse("draining").is_drained());
        assert!(NodeState::parse("down*").not_responding());
        assert!(NodeState::parse("reboot^").is_rebooting());
        assert_eq!(NodeState::parse("mixed-").to_string(), "mixed-");
    }
}
