//! Lines of slurmctld's log in every `LogTimeFormat` of slurm.conf(5)
//! (source: SchedMD/slurm `src/common/log.c`, `log_timestamp()` and the
//! `%M` substitution): `iso8601_ms` (the default) and `iso8601` in the
//! controller's local time, `rfc5424_ms`, `rfc5424` and `rfc3339` with
//! their offset, `short` (`Nov 28 18:52:48`, no year), `thread_id`
//! (`short` with microseconds and the thread), and `clock` (the daemon's
//! CPU time in µs) and `omit`, which give no time of day. Local times are
//! turned into UTC with the controller's own offset (`date +%z` there).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, TimeZone, Utc};

/// One line of the controller log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// When the controller wrote it; `None` when the line does not say.
    pub at: Option<DateTime<Utc>>,
    pub message: &'a str,
    pub stamp: Stamp,
}

/// What the line's time stamp was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// A time of day, placed.
    Placed,
    /// No stamp at all (`LogTimeFormat=omit`).
    Omitted,
    /// A stamp that gives no time of day (`clock`, `thread_id`) or that
    /// this parser does not know: the text inside the brackets.
    Unplaceable(String),
}

/// Parses a line. `offset` is the controller's UTC offset, for the
/// formats without one; `now` supplies the year `short` lacks (the latest
/// year that does not put the line more than a day in the future).
/// What a slurmctld log line about a node tells the phases, decoded once
/// from slurmctld's own words (its `node_mgr.c` and `ping_nodes.c`
/// messages, as Slurm 24.11 writes them in the lab and in field case 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeNews {
    /// Taken out of service: `reason set to: Action:...` (HyperPod's
    /// mark), `not responding`, `state set to DOWN|FAIL|DRAIN...`.
    pub out_of_service: bool,
    /// Back from a reboot: `now responding`, `unexpectedly rebooted`,
    /// `rebooted`.
    pub rebooted: bool,
    /// Usable again: `state set to IDLE` (a resume).
    pub returned: bool,
    /// Only a ping that went unanswered (`Nodes X not responding`, not
    /// `..., setting DOWN`): no state change yet. A quiet window is not
    /// disturbed by it alone (slurmctld reports a ping sent before a node
    /// came back a few seconds after it is back); Slurm's own state
    /// (`*`, DOWN) is what counts then.
    pub unanswered: bool,
    /// Registered again and taken out of DOWN: `returned to service`.
    /// Not proof of a usable node: slurmctld logs it on a registration
    /// even when the node stays DOWN (`scontrol reboot nextstate=DOWN`),
    /// DRAINED (its DRAIN flag kept) or FAIL (SchedMD/slurm
    /// `src/slurmctld/node_mgr.c` `validate_node_specs()`, and
    /// `_node_did_resp()`; 24.11 to 25.11). Its time is the rejoin's once
    /// Slurm shows the node usable.
    pub registered: bool,
}

impl NodeNews {
    /// Decodes one line's message (the text after the stamp).
    pub fn of(message: &str) -> NodeNews {
        NodeNews {
            out_of_service: message.contains("reason set to: Action:")
                || message.contains("not responding")
                || ["DOWN", "FAIL", "DRAIN"]
                    .iter()
                    .any(|s| message.contains(&format!("state set to {s}"))),
            rebooted: message.contains("now responding") || message.contains("rebooted"),
            returned: message.contains("state set to IDLE"),
            unanswered: message.contains("not responding") && !message.contains("setting DOWN"),
            registered: message.contains("returned to service"),
        }
    }
}

pub fn parse_line(line: &str, offset: FixedOffset, now: DateTime<Utc>) -> LogLine<'_> {
    let Some((stamp, message)) = line.strip_prefix('[').and_then(|r| r.split_once("] ")) else {
        return LogLine {
            at: None,
            message: line,
            stamp: Stamp::Omitted,
        };
    };
    match place(stamp, offset, now) {
        Some(at) => LogLine {
            at: Some(at),
            message,
            stamp: Stamp::Placed,
        },
        None => LogLine {
            at: None,
            message,
            stamp: Stamp::Unplaceable(stamp.to_owned()),
        },
    }
}

fn place(stamp: &str, offset: FixedOffset, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // rfc5424(_ms), rfc3339: the stamp carries its offset (or Z).
    if let Ok(at) = DateTime::parse_from_rfc3339(stamp) {
        return Some(at.to_utc());
    }
    // iso8601(_ms): local time.
    if let Ok(naive) = NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S%.f") {
        return local(naive, offset);
    }
    // short: `Nov 28 18:52:48[.722]`, local time, no year.
    let year = now.with_timezone(&offset).year();
    for year in [year, year - 1] {
        let text = format!("{year} {stamp}");
        if let Ok(naive) = NaiveDateTime::parse_from_str(&text, "%Y %b %d %H:%M:%S%.f") {
            let at = local(naive, offset)?;
            if at <= now + chrono::TimeDelta::days(1) {
                return Some(at);
            }
        }
    }
    thread_id(stamp, offset, now)
}

/// `thread_id`: `Nov 28 16:07:41.1234  4711 rpcmgr       0x7f3a2bfff640`:
/// the `short` form with microseconds printed left-aligned and not
/// zero-padded (`.1234` is 1,234 µs), then the thread (SchedMD/slurm
/// `src/common/log.c`, `_set_idbuf()`). Local time, no year.
fn thread_id(stamp: &str, offset: FixedOffset, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut words = stamp.split_whitespace();
    let (month, day, time) = (words.next()?, words.next()?, words.next()?);
    words.next()?;
    let (clock, micros) = time.split_once('.')?;
    let micros: i64 = micros.parse().ok()?;
    let at = place(&format!("{month} {day} {clock}"), offset, now)?;
    Some(at + chrono::TimeDelta::microseconds(micros))
}

/// A local time of the controller (offset `offset`) in UTC.
pub fn local_to_utc(naive: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<Utc>> {
    local(naive, offset)
}

fn local(naive: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<Utc>> {
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.to_utc())
}

/// `+0100` / `-0530` (what `date +%z` prints) as an offset.
pub fn parse_offset(text: &str) -> Option<FixedOffset> {
    let text = text.trim();
    let sign = match text.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let digits = text.get(1..)?.replace(':', "");
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_node_news_is_read_from_slurmctlds_words() {
        let out = |m: &str| NodeNews::of(m).out_of_service;
        let rebooted = |m: &str| NodeNews::of(m).rebooted;
        let returned = |m: &str| NodeNews::of(m).returned;
        // Taken out: HyperPod's mark, a node that stopped answering, and
        // each state slurmctld sets by hand or by itself.
        assert!(out(
            "update_node: node ip-10-1-0-12 reason set to: Action:Replace"
        ));
        assert!(out(
            "update_node: node ip-10-1-0-12 reason set to: Action:Reboot"
        ));
        assert!(out("error: Nodes ip-10-1-0-[11-12] not responding"));
        assert!(out(
            "error: Nodes ip-10-1-0-11 not responding, setting DOWN"
        ));
        assert!(out("update_node: node ip-10-1-0-12 state set to DOWN"));
        assert!(out("update_node: node ip-10-1-0-12 state set to DRAINED"));
        assert!(out("update_node: node ip-10-1-0-12 state set to DRAINING"));
        assert!(out("update_node: node ip-10-1-0-12 state set to FAIL"));
        // Another reason (ours, an operator's) is not HyperPod's mark.
        assert!(!out(
            "update_node: node ip-10-1-0-12 reason set to: hpchaos drill"
        ));
        // Back from a reboot.
        assert!(rebooted("Node ip-10-1-0-12 now responding"));
        assert!(rebooted(
            "validate_node_specs: Node ip-10-1-0-12 unexpectedly rebooted boot_time=1764355968 last response=1764355900"
        ));
        assert!(!rebooted("error: Nodes ip-10-1-0-12 not responding"));
        // Usable again.
        assert!(returned("update_node: node ip-10-1-0-12 state set to IDLE"));
        // Registered again: not usable by that alone (it may stay DOWN,
        // DRAINED or FAIL), in both of slurmctld's wordings.
        for line in [
            "node ip-10-1-0-12 returned to service",
            "node_did_resp: node ip-10-1-0-12 returned to service",
        ] {
            assert!(!returned(line), "{line}");
            assert!(NodeNews::of(line).registered, "{line}");
        }
        assert!(!returned(
            "update_node: node ip-10-1-0-12 state set to DOWN"
        ));
        // A line about something else says nothing.
        assert_eq!(
            NodeNews::of("sched: Allocate JobId=42 NodeList=ip-10-1-0-12"),
            NodeNews::default()
        );
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn field_case_05_every_format_that_carries_a_time_gives_it() {
        let text = include_str!(
            "../../../../tests/fixtures/field-cases/05-controller-log-time-formats.txt"
        );
        let now = utc("2026-11-29T12:00:00Z");
        let lines: Vec<LogLine> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| parse_line(l, FixedOffset::east_opt(0).unwrap(), now))
            .collect();
        assert_eq!(lines.len(), 5);
        let at = utc("2026-11-28T18:52:48.722Z");
        assert_eq!(lines[0].at, Some(at)); // iso8601_ms
        assert_eq!(lines[1].at, Some(utc("2026-11-28T18:52:48Z"))); // iso8601
        assert_eq!(lines[2].at, Some(at)); // rfc5424_ms
        assert_eq!(lines[3].at, Some(at)); // short
        assert_eq!(lines[4].at, None); // omit: timed when seen
        assert_eq!(lines[4].stamp, Stamp::Omitted);
        for line in &lines {
            assert_eq!(
                line.message,
                "update_node: node ip-10-1-0-12 reason set to: Action:Replace"
            );
        }
    }

    #[test]
    fn offsets_are_applied_and_stampless_formats_said() {
        let now = utc("2026-11-29T12:00:00Z");
        let cet = parse_offset("+0100").unwrap();
        // Local formats take the controller's offset.
        assert_eq!(
            parse_line("[2026-11-28T19:52:48.722] x", cet, now).at,
            Some(utc("2026-11-28T18:52:48.722Z"))
        );
        assert_eq!(
            parse_line("[Nov 28 19:52:48] x", cet, now).at,
            Some(utc("2026-11-28T18:52:48Z"))
        );
        // Formats with an offset keep theirs, whatever the controller's.
        let utc0 = FixedOffset::east_opt(0).unwrap();
        assert_eq!(
            parse_line("[2026-11-28T13:22:48.722-05:30] x", utc0, now).at,
            Some(utc("2026-11-28T18:52:48.722Z"))
        );
        assert_eq!(
            parse_line("[2026-11-28T18:52:48+00:00] x", cet, now).at,
            Some(utc("2026-11-28T18:52:48Z"))
        );
        assert_eq!(
            parse_line("[2026-11-28T18:52:48Z] x", cet, now).at,
            Some(utc("2026-11-28T18:52:48Z"))
        );
        // `short` in early January for a line of late December.
        assert_eq!(
            parse_line("[Dec 31 23:59:59] x", utc0, utc("2027-01-01T00:00:30Z")).at,
            Some(utc("2026-12-31T23:59:59Z"))
        );
        // clock gives no time of day.
        let clock = parse_line(
            "[123456789] update_node: node n reason set to: x",
            utc0,
            now,
        );
        assert_eq!(clock.at, None);
        assert_eq!(clock.stamp, Stamp::Unplaceable("123456789".into()));
        assert_eq!(clock.message, "update_node: node n reason set to: x");
        // thread_id: microseconds not zero-padded, then the thread.
        let thread = parse_line(
            "[Nov 28 18:52:48.1234  4711 rpcmgr       0x7f3a2bfff640] update_node: node n reason set to: x",
            utc0,
            now,
        );
        assert_eq!(thread.at, Some(utc("2026-11-28T18:52:48.001234Z")));
        assert_eq!(thread.message, "update_node: node n reason set to: x");
        assert_eq!(
            parse_offset("-0530"),
            FixedOffset::west_opt(5 * 3600 + 1800)
        );
        assert_eq!(parse_offset("UTC"), None);
    }
}
