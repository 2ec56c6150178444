//! Following the controller log over a kept SSH channel instead of
//! re-reading it each poll: GNU `tail -c +N -F` on the head node (a local
//! process when hpchaos runs there), started at the byte the watch has
//! read to, its output handed over as it is written, so a line is
//! journaled when slurmctld writes it rather than at the next poll. This
//! module owns the byte accounting: whole lines only (a partial last line
//! waits for its end; one longer than 1 MiB is cut), the offset read to,
//! and a rotated or truncated file (tail's own notice on stderr) starting
//! the count again. The controller-log source (`observe/controller_log.rs`)
//! falls back to polling (`Slurm::read_log`) when the follower cannot
//! start or ends, and tries to follow again a poll later.

use tokio::sync::mpsc::UnboundedReceiver;

use super::slurm::Slurm;
use super::ssh::Streamed;

/// The longest part of a line held while waiting for its end (bytes).
const LONGEST_LINE: usize = 1024 * 1024;

/// The follower's command, run by `sh -c` with the log's path as `$1` and
/// `+BYTE` (1-based) as `$2`. tail runs in the background and the shell
/// waits on its own stdin, which is the SSH channel: when hpchaos closes
/// the channel, or its connection drops (even under `kill -9`), `cat`
/// sees the end and the tail is stopped, so nothing is left running on the
/// head node.
pub const FOLLOW_SCRIPT: &str =
    "tail -c \"$2\" -F -- \"$1\" & t=$!; cat >/dev/null; kill $t 2>/dev/null";

/// A running follower of one log file.
#[derive(Debug)]
pub struct Follower {
    rx: UnboundedReceiver<Streamed>,
    /// Bytes received but not yet handed out: the start of a line whose
    /// end has not come.
    partial: Vec<u8>,
    /// The file offset just past the last whole line handed out.
    offset: u64,
    /// What came since the last [`Follower::take`].
    arrived: Vec<Streamed>,
}

/// What a follower had to say since it was last asked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Whole lines, in order, without their `\n`.
    pub lines: Vec<String>,
    /// tail's notices (rotation, truncation, a file gone), verbatim.
    pub notices: Vec<String>,
    /// The follower stopped: why. The caller falls back to polling from
    /// [`Follower::offset`].
    pub ended: Option<String>,
}

impl Follower {
    /// Starts following `path` on the head node from byte `offset`.
    /// Errors: the head node cannot be reached (the message names the hop).
    pub async fn start(
        slurm: &Slurm,
        path: &str,
        offset: u64,
    ) -> Result<Follower, super::ssh::SshError> {
        let from = format!("+{}", offset + 1);
        let line = super::quote::command_line(&["sh", "-c", FOLLOW_SCRIPT, "hpchaos", path, &from]);
        // slurmctld.log is SlurmUser's (see privilege::Root::ReadLogs).
        let line = slurm.ssh.as_root(&line);
        let rx = slurm.ssh.follow(&slurm.head, &line).await?;
        Ok(Follower::over(rx, offset))
    }

    /// A follower reading `rx`, which starts at byte `offset` of the file.
    pub fn over(rx: UnboundedReceiver<Streamed>, offset: u64) -> Follower {
        Follower {
            rx,
            partial: Vec::new(),
            offset,
            arrived: Vec::new(),
        }
    }

    /// Waits until something arrives (for a `select!`); what came is kept
    /// for [`Follower::take`]. Returns at once, forever, once the follower
    /// has ended, so callers stop waiting on it then.
    pub async fn arrival(&mut self) {
        if self.arrived.iter().any(|s| matches!(s, Streamed::Ended(_))) {
            return std::future::pending().await;
        }
        let item = self.rx.recv().await.unwrap_or(Streamed::Ended(None));
        self.arrived.push(item);
    }

    /// Whether something waits to be taken.
    pub fn has_arrivals(&self) -> bool {
        !self.arrived.is_empty()
    }

    /// The offset in the file just past the last whole line handed out.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Everything that arrived so far, as whole lines and notices.
    pub fn take(&mut self) -> Taken {
        loop {
            match self.rx.try_recv() {
                Ok(item) => self.arrived.push(item),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                // The sender went without a word: ended all the same.
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    if !self.arrived.iter().any(|s| matches!(s, Streamed::Ended(_))) {
                        self.arrived.push(Streamed::Ended(None));
                    }
                    break;
                }
            }
        }
        let mut taken = Taken::default();
        for item in std::mem::take(&mut self.arrived) {
            match item {
                Streamed::Stdout(bytes) => {
                    self.partial.extend_from_slice(&bytes);
                    if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
                        let whole: Vec<u8> = self.partial.drain(..=end).collect();
                        self.offset += whole.len() as u64;
                        let text = String::from_utf8_lossy(&whole);
                        taken.lines.extend(text.lines().map(str::to_owned));
                    }
                    // A line longer than any log line slurmctld writes is
                    // not held whole: its start is taken as a line, cut.
                    if self.partial.len() > LONGEST_LINE {
                        let cut: Vec<u8> = std::mem::take(&mut self.partial);
                        self.offset += cut.len() as u64;
                        let start = String::from_utf8_lossy(&cut[..1024]);
                        taken.lines.push(format!(
                            "{start} [hpchaos: line cut: longer than {} KiB]",
                            LONGEST_LINE / 1024
                        ));
                    }
                }
                Streamed::Stderr(text) => {
                    for notice in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        // GNU tail: "'F' has been replaced;  following new
                        // file", "F: file truncated", "'F' has appeared;
                        // following new file": what follows is the new
                        // file from its first byte.
                        if restarts_file(notice) {
                            self.partial.clear();
                            self.offset = 0;
                        }
                        taken.notices.push(notice.to_owned());
                    }
                }
                Streamed::Ended(status) => {
                    taken.ended = Some(match status {
                        Some(code) => format!("tail on the head node exited ({code})"),
                        None => "the channel to the head node closed".to_owned(),
                    });
                    // Keep the end for `arrival`, which must not wait again.
                    self.arrived.push(Streamed::Ended(status));
                    break;
                }
            }
        }
        taken
    }
}

/// Whether a notice of GNU tail says it now reads a file from its start.
fn restarts_file(notice: &str) -> bool {
    notice.contains("has been replaced")
        || notice.contains("file truncated")
        || notice.contains("has appeared")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower(items: Vec<Streamed>, offset: u64) -> Follower {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for item in items {
            tx.send(item).unwrap();
        }
        // Sender dropped: after the items, the follower sees its end.
        Follower::over(rx, offset)
    }

    #[test]
    fn hands_out_whole_lines_and_counts_their_bytes() {
        let mut f = follower(
            vec![
                Streamed::Stdout(b"[2026-11-29T10:00:00.001] a\n[2026-11-29T10:0".to_vec()),
                Streamed::Stdout(b"0:01.002] b\npart".to_vec()),
            ],
            100,
        );
        let taken = f.take();
        assert_eq!(
            taken.lines,
            vec!["[2026-11-29T10:00:00.001] a", "[2026-11-29T10:00:01.002] b"]
        );
        // 28 + 28 bytes of whole lines; "part" waits for its end.
        assert_eq!(f.offset(), 100 + 56);
        assert_eq!(
            taken.ended.as_deref(),
            Some("the channel to the head node closed")
        );
    }

    #[test]
    fn a_rotated_file_is_counted_from_its_start() {
        let mut f = follower(
            vec![
                Streamed::Stdout(b"old line\nhalf".to_vec()),
                Streamed::Stderr(
                    "tail: '/var/log/slurmctld.log' has been replaced;  following new file\n"
                        .into(),
                ),
                Streamed::Stdout(b"new\n".to_vec()),
            ],
            10,
        );
        let taken = f.take();
        assert_eq!(taken.lines, vec!["old line", "new"]);
        assert_eq!(f.offset(), 4, "the new file's 4 bytes, not 10 + 9 + 4");
        assert_eq!(taken.notices.len(), 1);
        let mut g = follower(
            vec![Streamed::Stderr(
                "tail: /var/log/s.log: file truncated\n".into(),
            )],
            500,
        );
        g.take();
        assert_eq!(g.offset(), 0);
    }

    #[test]
    fn a_notice_that_does_not_restart_the_file_keeps_the_offset() {
        let mut f = follower(
            vec![Streamed::Stderr(
                "tail: '/var/log/s.log' has become inaccessible: No such file or directory\n"
                    .into(),
            )],
            42,
        );
        let taken = f.take();
        assert_eq!(f.offset(), 42);
        assert_eq!(taken.notices.len(), 1);
    }

    #[tokio::test]
    async fn after_its_end_arrival_no_longer_wakes() {
        let mut f = follower(vec![Streamed::Ended(Some(1))], 0);
        f.arrival().await;
        let taken = f.take();
        assert_eq!(
            taken.ended.as_deref(),
            Some("tail on the head node exited (1)")
        );
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), f.arrival()).await;
        assert!(waited.is_err(), "an ended follower must not wake the watch");
    }

    #[tokio::test]
    async fn follows_a_file_on_this_machine_as_it_is_written() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slurmctld.log");
        std::fs::write(&path, "before\n").unwrap();
        let endpoint = super::super::ssh::Endpoint {
            name: "head".into(),
            address: "127.0.0.1".into(),
            port: 22,
            local: true,
        };
        let line = super::super::quote::command_line(&[
            "sh",
            "-c",
            FOLLOW_SCRIPT,
            "hpchaos",
            path.to_str().unwrap(),
            "+8",
        ]);
        let profile: crate::profile::Profile = serde_saphyr::from_str(
            "name: c\nhead_node: { name: head, local: true }\nssh:\n  known_hosts: /dev/null\n",
        )
        .unwrap();
        let pool = super::super::ssh::SshPool::new(&profile);
        let rx = pool.follow(&endpoint, &line).await.unwrap();
        let mut f = Follower::over(rx, 7);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"written later\n").unwrap();
        let mut lines = Vec::new();
        while lines.is_empty() {
            tokio::time::timeout(std::time::Duration::from_secs(10), f.arrival())
                .await
                .expect("tail -F hands the line over");
            lines = f.take().lines;
        }
        assert_eq!(lines, vec!["written later"]);
        assert_eq!(f.offset(), 7 + 14);
    }
}
