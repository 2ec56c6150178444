//! Slurm's controllers as `scontrol ping` lists them, and whether Slurm
//! answers a request: what tells a backup slurmctld took control on a
//! multi-head cluster. `scontrol ping` says each `SlurmctldHost` is UP or
//! DOWN, but a backup in standby answers pings too (SchedMD's
//! `src/slurmctld/backup.c`: it serves `REQUEST_PING` before it takes
//! over); only a request the controller in control serves tells. So each
//! read also asks for the partitions, bounded: a standby backup makes
//! Slurm's clients wait and retry (`ESLURM_IN_STANDBY_MODE`, up to 1.5 ×
//! `SlurmctldTimeout`), the one in control answers at once. With the
//! primary DOWN, an answer came from a backup: it is in control.

/// Run on the head: `scontrol ping`'s lines (as Slurm prints them:
/// `Slurmctld(primary) at HOST is UP`), then `answered=yes` when Slurm
/// served `scontrol show partition` within 2 s, `answered=no` otherwise,
/// and `here=HOST`, the head's short host name. Exits 0 whatever it found.
pub const PING_SCRIPT: &str = "scontrol ping 2>&1; echo \"here=$(hostname -s)\"; if timeout 2 scontrol -o show partition >/dev/null 2>&1; then echo answered=yes; else echo answered=no; fi";

/// One controller as `scontrol ping` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControllerPing {
    /// `primary`, `backup`, or `backupN` (a third or later controller),
    /// by its place among `SlurmctldHost` lines.
    pub mode: String,
    pub host: String,
    pub up: bool,
}

/// One read of the controllers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Controllers {
    /// In `SlurmctldHost` order; empty when `scontrol ping` printed none.
    pub pings: Vec<ControllerPing>,
    /// Slurm served a request within the bound; `None` when the read did
    /// not say.
    pub answered: Option<bool>,
    /// The host the read ran on (the profile's head node).
    pub here: Option<String>,
}

impl Controllers {
    /// Decodes [`PING_SCRIPT`]'s output; lines of neither shape (the
    /// `RESTORE SLURMCTLD DAEMON TO SERVICE` banner root gets) are
    /// skipped.
    pub fn parse(text: &str) -> Controllers {
        let mut read = Controllers::default();
        for line in text.lines().map(str::trim) {
            if let Some(answer) = line.strip_prefix("answered=") {
                read.answered = Some(answer == "yes");
                continue;
            }
            if let Some(host) = line.strip_prefix("here=") {
                read.here = Some(host.to_owned()).filter(|h| !h.is_empty());
                continue;
            }
            let Some(rest) = line.strip_prefix("Slurmctld(") else {
                continue;
            };
            let Some((mode, rest)) = rest.split_once(") at ") else {
                continue;
            };
            let Some((host, state)) = rest.rsplit_once(" is ") else {
                continue;
            };
            read.pings.push(ControllerPing {
                mode: mode.to_owned(),
                host: host.to_owned(),
                up: state == "UP",
            });
        }
        read
    }

    /// Why a slurmctld fault with `expects_takeover` (or without, and
    /// without `allow_controller`) cannot run on these controllers;
    /// `None` when it can. hpchaos stops slurmctld on the profile's head
    /// node, so that must run the primary.
    pub fn refusal(&self, expects_takeover: bool, allow_controller: bool) -> Option<String> {
        let Some(primary) = self.primary() else {
            return Some(format!(
                "scontrol ping listed no controller ({}): the controllers could not be read",
                self.words()
            ));
        };
        if let Some(here) = &self.here
            && short(&primary.host) != short(here)
        {
            return Some(format!(
                "the profile's head node is {here}, but the primary slurmctld runs on {} (scontrol ping): hpchaos stops slurmctld on the head node it reaches; point the profile's head_node at {}",
                primary.host, primary.host
            ));
        }
        if !primary.up {
            return Some(format!(
                "the primary slurmctld on {} is DOWN already (scontrol ping): the cluster is not in its steady state",
                primary.host
            ));
        }
        match (self.multi_head(), expects_takeover) {
            (false, true) => Some(format!(
                "the cluster has one controller ({}): no backup slurmctld can take over (a multi-head cluster lists a second SlurmctldHost); expect `recovery: none` with `allow_controller: true` to restart the only one",
                primary.host
            )),
            (false, false) if !allow_controller => Some(format!(
                "the cluster has one controller ({}): stopping it stops all scheduling while it lasts; say `allow_controller: true` under `daemon:` if you mean it",
                primary.host
            )),
            (true, true) if !self.pings.iter().any(|p| p.mode != "primary" && p.up) => {
                Some(format!(
                    "no backup slurmctld answers ({}): none could take over",
                    self.words()
                ))
            }
            _ => None,
        }
    }

    /// More than one controller is configured (a multi-head cluster).
    pub fn multi_head(&self) -> bool {
        self.pings.len() > 1
    }

    /// The primary controller, when listed.
    pub fn primary(&self) -> Option<&ControllerPing> {
        self.pings.iter().find(|p| p.mode == "primary")
    }

    /// The backup in control: the primary DOWN, Slurm answering, and the
    /// first backup UP (Slurm's clients try them in order). `None`
    /// otherwise.
    pub fn backup_in_control(&self) -> Option<&ControllerPing> {
        let primary_down = self.primary().is_some_and(|p| !p.up);
        if !primary_down || self.answered != Some(true) {
            return None;
        }
        self.pings.iter().find(|p| p.mode != "primary" && p.up)
    }

    /// The read in words: `primary ip-10-1-0-10 DOWN, backup ip-10-1-0-8
    /// UP; Slurm answers`.
    pub fn words(&self) -> String {
        let pings = self
            .pings
            .iter()
            .map(|p| format!("{} {} {}", p.mode, p.host, if p.up { "UP" } else { "DOWN" }))
            .collect::<Vec<_>>()
            .join(", ");
        let answered = match self.answered {
            Some(true) => "; Slurm answers",
            Some(false) => "; Slurm does not answer",
            None => "",
        };
        format!(
            "{}{answered}",
            if pings.is_empty() {
                "no controller listed"
            } else {
                &pings
            }
        )
    }
}

/// A host name without its domain.
fn short(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A takeover needs a backup that answers and the primary on the
    /// profile's head; one controller needs `allow_controller`.
    #[test]
    fn a_slurmctld_fault_is_refused_where_it_cannot_do_what_it_says() {
        let two = "Slurmctld(primary) at ip-10-1-0-10 is UP\nSlurmctld(backup) at ip-10-1-0-8 is UP\nhere=ip-10-1-0-10\nanswered=yes\n";
        let read = Controllers::parse(two);
        assert_eq!(read.refusal(true, false), None);
        assert_eq!(read.refusal(false, false), None);
        let backup_down =
            Controllers::parse(&two.replace("ip-10-1-0-8 is UP", "ip-10-1-0-8 is DOWN"));
        assert!(
            backup_down
                .refusal(true, false)
                .unwrap()
                .contains("no backup slurmctld answers")
        );
        let elsewhere = Controllers::parse(&two.replace("here=ip-10-1-0-10", "here=ip-10-1-0-8"));
        let why = elsewhere.refusal(true, false).unwrap();
        assert!(
            why.contains("primary slurmctld runs on ip-10-1-0-10"),
            "{why}"
        );
        let one = "Slurmctld(primary) at head1 is UP\nhere=head1.ec2.internal\nanswered=yes\n";
        let read = Controllers::parse(one);
        assert!(
            read.refusal(true, true)
                .unwrap()
                .contains("no backup slurmctld can take over")
        );
        assert!(
            read.refusal(false, false)
                .unwrap()
                .contains("allow_controller: true")
        );
        assert_eq!(read.refusal(false, true), None);
        let down = Controllers::parse("Slurmctld(primary) at head1 is DOWN\nhere=head1\n");
        assert!(down.refusal(false, true).unwrap().contains("DOWN already"));
        assert!(Controllers::parse("").refusal(false, true).is_some());
    }

    /// Recorded from the lab's multi-head Slurm 24.11 (`lab up
    /// --multi-head`): before, during and after a takeover.
    #[test]
    fn a_backup_is_in_control_only_when_the_primary_is_down_and_slurm_answers() {
        let both_up = "Slurmctld(primary) at ip-10-1-0-10 is UP\nSlurmctld(backup) at ip-10-1-0-8 is UP\nanswered=yes\n";
        let read = Controllers::parse(both_up);
        assert!(read.multi_head());
        assert_eq!(read.primary().unwrap().host, "ip-10-1-0-10");
        assert_eq!(read.backup_in_control(), None);
        // The primary stopped, the backup still in standby: no answer.
        let standby = "Slurmctld(primary) at ip-10-1-0-10 is DOWN\nSlurmctld(backup) at ip-10-1-0-8 is UP\n*****************************************\n** RESTORE SLURMCTLD DAEMON TO SERVICE **\n*****************************************\nanswered=no\n";
        let read = Controllers::parse(standby);
        assert_eq!(read.pings.len(), 2);
        assert_eq!(read.backup_in_control(), None);
        assert_eq!(
            read.words(),
            "primary ip-10-1-0-10 DOWN, backup ip-10-1-0-8 UP; Slurm does not answer"
        );
        let taken = standby.replace("answered=no", "answered=yes");
        let read = Controllers::parse(&taken);
        assert_eq!(read.backup_in_control().unwrap().host, "ip-10-1-0-8");
        // One head: never a takeover.
        let one = Controllers::parse("Slurmctld(primary) at head1 is DOWN\nanswered=no\n");
        assert!(!one.multi_head());
        assert_eq!(one.backup_in_control(), None);
        // A third controller is `backup2`; the first UP backup is taken.
        let three = Controllers::parse(
            "Slurmctld(primary) at a is DOWN\nSlurmctld(backup1) at b is DOWN\nSlurmctld(backup2) at c is UP\nanswered=yes\n",
        );
        assert_eq!(three.backup_in_control().unwrap().host, "c");
        assert_eq!(Controllers::parse("garbage\n").pings, Vec::new());
    }
}
