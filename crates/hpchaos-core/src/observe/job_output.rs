//! A workload job's output as the watch reads it: the job, where its
//! output has been read to, and its progress lines, read in bounded chunks
//! (a job far ahead is caught up over a few polls; a line longer than a
//! chunk is cut and its rest skipped), each update ended by `\n` or `\r`
//! (progress bars redraw with `\r`), its step by the scenario's pattern.

use regex::Regex;

/// The watched job and where its output has been read to.
pub(crate) struct WorkloadJob {
    pub(crate) id: u64,
    /// Submitted by us (and so cancelled by us).
    pub(crate) submitted: bool,
    /// The `--comment` marking our canary (empty for a job we watch).
    pub(crate) comment: String,
    /// The write-ahead record of its submission.
    pub(crate) intent: Option<u64>,
    pub(crate) output: Option<String>,
    pub(crate) offset: u64,
    /// Inside a line longer than [`OUTPUT_CHUNK`]: its rest is skipped up
    /// to its end.
    pub(crate) skipping: bool,
    pub(crate) progress: Option<(Regex, Option<Regex>)>,
    pub(crate) last_step: Option<u64>,
    /// Each step the output showed, with when it was read: the step time
    /// for the cost of a failure.
    pub(crate) steps_seen: Vec<(chrono::DateTime<chrono::Utc>, u64)>,
    /// The job's GPUs and where that number comes from, once known.
    pub(crate) gpus: Option<(u32, String)>,
    /// When the job first started running, as Slurm said (`StartTime`):
    /// where the cost's ETTR window begins.
    pub(crate) started_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl WorkloadJob {
    pub(crate) fn regexes(
        progress: &crate::scenario::model::Progress,
    ) -> Result<(Regex, Option<Regex>), regex::Error> {
        let pattern = Regex::new(&progress.pattern)?;
        let checkpoint = progress.checkpoint.as_deref().map(Regex::new).transpose()?;
        Ok((pattern, checkpoint))
    }

    pub(crate) fn is_checkpoint(&self, line: &str) -> bool {
        self.progress
            .as_ref()
            .and_then(|(_, c)| c.as_ref())
            .is_some_and(|c| c.is_match(line))
    }

    /// New whole lines of the job's output, each with its step if it is a
    /// progress line; the steps are stamped `now` (the run's clock).
    pub(crate) async fn read_progress(
        &mut self,
        slurm: &crate::cluster::slurm::Slurm,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<(String, Option<u64>)> {
        let Some(path) = self.output.clone() else {
            return Vec::new();
        };
        let pattern = self.progress.as_ref().map(|(p, _)| p);
        // Chunk after chunk while they come full, up to
        // [`CHUNKS_PER_READ`]: a job far ahead is caught up over a few
        // polls, in bounded memory.
        let mut lines = Vec::new();
        for read in 0.. {
            // Skipping a line too long to keep goes faster: nothing of it
            // is kept.
            if read
                >= if self.skipping {
                    4 * CHUNKS_PER_READ
                } else {
                    CHUNKS_PER_READ
                }
            {
                break;
            }
            let Ok(bytes) = slurm.read_from(&path, self.offset, OUTPUT_CHUNK).await else {
                break;
            };
            let text = bytes.as_slice();
            let read = Read::of(text, OUTPUT_CHUNK, self.skipping, pattern);
            self.offset += read.consumed;
            self.skipping = read.skipping;
            lines.extend(read.updates);
            if (text.len() as u64) < OUTPUT_CHUNK {
                break;
            }
        }
        for (_, step) in &lines {
            if let Some(step) = step {
                self.last_step = Some(*step);
                self.steps_seen.push((now, *step));
            }
        }
        lines
    }
}

/// How much of a job's output is read at once: also the longest line
/// kept (a longer one is cut, its rest skipped).
pub(crate) const OUTPUT_CHUNK: u64 = 128 * 1024;

/// Chunks read at most in one poll of the job's output (2 MiB).
const CHUNKS_PER_READ: usize = 16;

/// What one bounded read of a job's output gave.
#[derive(Debug, PartialEq)]
pub(crate) struct Read {
    /// Bytes of the file taken.
    pub(crate) consumed: u64,
    pub(crate) updates: Vec<(String, Option<u64>)>,
    /// Still inside a line too long to keep.
    pub(crate) skipping: bool,
}

impl Read {
    /// Reads `bytes`, at most `chunk` bytes of the output: inside a long
    /// line (`skipping`), up to its end is dropped; a full chunk without an
    /// end of line is a line too long, kept cut (its start, and that it was
    /// cut) and its rest skipped; otherwise the complete updates. Counted
    /// in bytes; each line is read as UTF-8 on its own (invalid bytes
    /// replaced).
    pub(crate) fn of(bytes: &[u8], chunk: u64, skipping: bool, pattern: Option<&Regex>) -> Read {
        let full = bytes.len() as u64 >= chunk;
        let mut rest = bytes;
        let mut skipped = 0u64;
        if skipping {
            match bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
                Some(end) => {
                    skipped = end as u64 + 1;
                    rest = &bytes[end + 1..];
                }
                None => {
                    return Read {
                        consumed: bytes.len() as u64,
                        updates: Vec::new(),
                        skipping: true,
                    };
                }
            }
        }
        let (consumed, updates) = progress_updates(rest, pattern);
        if consumed == 0 && full && !rest.is_empty() {
            let mut kept: String =
                String::from_utf8_lossy(&rest[..rest.len().min(1024)]).into_owned();
            let step = step_in(&kept, pattern);
            kept.push_str(&format!(
                " [hpchaos: line cut: longer than {} KiB]",
                chunk / 1024
            ));
            return Read {
                consumed: bytes.len() as u64,
                updates: vec![(kept, step)],
                skipping: true,
            };
        }
        Read {
            consumed: skipped + consumed as u64,
            updates,
            skipping: false,
        }
    }
}

/// The step a progress update shows: the last match of `pattern` in it
/// (its first group).
fn step_in(update: &str, pattern: Option<&Regex>) -> Option<u64> {
    pattern
        .and_then(|p| p.captures_iter(update).last())
        .and_then(|c| c.get(1))
        .and_then(|m| m.as_str().parse::<u64>().ok())
}

/// The complete updates in a job's output: bytes ended by `\n` or `\r`
/// (progress bars such as tqdm's redraw a line with `\r`), each read as
/// UTF-8 on its own, with its step ([`step_in`]). Returns how many bytes
/// were consumed; a trailing update not yet ended waits for the next read.
pub(crate) fn progress_updates(
    bytes: &[u8],
    pattern: Option<&Regex>,
) -> (usize, Vec<(String, Option<u64>)>) {
    let consumed = bytes
        .iter()
        .rposition(|b| *b == b'\n' || *b == b'\r')
        .map_or(0, |i| i + 1);
    let updates = bytes[..consumed]
        .split(|b| *b == b'\n' || *b == b'\r')
        .map(String::from_utf8_lossy)
        .filter(|u| !u.trim().is_empty())
        .map(|update| {
            let step = step_in(&update, pattern);
            (update.into_owned(), step)
        })
        .collect();
    (consumed, updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_case_09_a_progress_bar_gives_its_latest_step() {
        let text = include_str!("../../../../tests/fixtures/field-cases/09-tqdm-progress.txt");
        let pattern = Regex::new(r"(\d+)/1000").unwrap();
        let (consumed, updates) = progress_updates(text.as_bytes(), Some(&pattern));
        assert_eq!(consumed, text.len());
        let steps: Vec<u64> = updates.iter().filter_map(|(_, s)| *s).collect();
        assert_eq!(steps, vec![100, 200, 300, 400, 500]);
        assert_eq!(steps.last(), Some(&500));
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_cut_and_its_rest_skipped() {
        let pattern = Regex::new(r"step (\d+)").unwrap();
        // A 10-byte chunk of a line that goes on: kept cut, rest skipped.
        let first = Read::of(b"step 7 xxx", 10, false, Some(&pattern));
        assert_eq!(first.consumed, 10);
        assert!(first.skipping);
        assert_eq!(first.updates.len(), 1);
        assert!(first.updates[0].0.contains("line cut"), "{first:?}");
        assert_eq!(first.updates[0].1, Some(7));
        // Still inside it: dropped.
        let middle = Read::of(b"xxxxxxxxxx", 10, true, Some(&pattern));
        assert_eq!(
            (middle.consumed, middle.updates.len(), middle.skipping),
            (10, 0, true)
        );
        // Its end, then whole lines again.
        let end = Read::of(b"xx\nstep 8\n", 10, true, Some(&pattern));
        assert_eq!(end.consumed, 10);
        assert!(!end.skipping);
        assert_eq!(end.updates, vec![("step 8".to_owned(), Some(8))]);
        // A short read without an end of line waits, as before.
        let waiting = Read::of(b"step 9", 10, false, Some(&pattern));
        assert_eq!((waiting.consumed, waiting.updates.len()), (0, 0));
        // A character split between two chunks: byte offsets stay right,
        // and the next line is read whole.
        let text = "step 1 \u{2588}\u{2588}\nstep 2\n".as_bytes();
        let first = Read::of(&text[..9], 9, false, Some(&pattern));
        assert_eq!((first.consumed, first.skipping), (9, true));
        let rest = Read::of(&text[9..], 9, true, Some(&pattern));
        assert_eq!(first.consumed + rest.consumed, text.len() as u64);
        assert_eq!(rest.updates, vec![("step 2".to_owned(), Some(2))]);
    }

    #[test]
    fn an_unfinished_update_waits_and_the_last_match_wins() {
        let pattern = Regex::new(r"step (\d+)").unwrap();
        let (consumed, updates) =
            progress_updates(b"step 1\nstep 2 step 3\nstep 4", Some(&pattern));
        assert_eq!(consumed, "step 1\nstep 2 step 3\n".len());
        assert_eq!(
            updates.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            vec![Some(1), Some(3)]
        );
    }
}
