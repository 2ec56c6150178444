//! A workload job's output as the watch reads it: the job, where its
//! output has been read to, and what its lines say. Read in bounded chunks
//! (a job far ahead is caught up over a few polls; a line longer than a
//! chunk is cut and its rest skipped); each update ends at `\n` or `\r`
//! (progress bars redraw with `\r`, and a frame that starts with `\r` is
//! taken as soon as it is there, once). A file that got shorter, or whose
//! first bytes changed, was rewritten (Slurm truncates a requeued job's
//! output by default, `JobFileAppend=0`; field case 16): it is read again
//! from its start, and said. Steps are whole numbers or numbers
//! (`794.0`, `1.2e+4`: field case 17); colour codes and rank prefixes are
//! not part of a line; "latest" is the highest step of the current attempt.

use regex::Regex;

use crate::cluster::slurm::{FileChunk, Slurm};
use crate::cluster::ssh::Endpoint;

/// The patterns a job's output is read with (see
/// [`crate::scenario::model::Progress::patterns`]).
pub(crate) struct Patterns {
    pub(crate) progress: Regex,
    pub(crate) checkpoint: Option<Regex>,
    pub(crate) resumed: Option<Regex>,
    /// `progress.stalled_after`: no new step for this long is a stall.
    pub(crate) stalled_after: Option<std::time::Duration>,
}

impl Patterns {
    pub(crate) fn of(
        progress: &crate::scenario::model::Progress,
    ) -> Result<Patterns, regex::Error> {
        let (pattern, checkpoint, resumed) = progress.patterns();
        Ok(Patterns {
            progress: Regex::new(&pattern)?,
            checkpoint: checkpoint.as_deref().map(Regex::new).transpose()?,
            resumed: resumed.as_deref().map(Regex::new).transpose()?,
            stalled_after: progress.stalled_after.map(|d| d.as_std()),
        })
    }
}

/// A step as the output printed it: its value and whether it is exact
/// (`1.2e+4` is 12,000 to two digits: approximate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepValue {
    pub value: u64,
    pub exact: bool,
}

/// A step printed as a whole number (`1200`), a number (`794.0`: 794,
/// exact; `794.5`: 794, approximate) or in e-notation (`1.2e+4`: 12,000,
/// approximate unless its digits reach the units, `1.2345e+4`). `None`
/// for anything else (negative, not finite, not a number).
pub fn parse_step(text: &str) -> Option<StepValue> {
    let text = text.trim();
    if let Ok(value) = text.parse::<u64>() {
        return Some(StepValue { value, exact: true });
    }
    let number: f64 = text.parse().ok()?;
    if !number.is_finite() || number < 0.0 || number > u64::MAX as f64 {
        return None;
    }
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
    let significant = mantissa
        .chars()
        .filter(char::is_ascii_digit)
        .skip_while(|c| *c == '0')
        .count();
    let fraction_zero = number.fract() == 0.0;
    // tqdm prints `{:.3g}` and drops trailing zeros: e-notation with three
    // significant digits or fewer may stand for any of a range (`1e+4` is
    // 9,950 to 10,049). Exact when more digits reach the units.
    let e_form = text.find(['e', 'E']).is_some();
    let exact = fraction_zero && (!e_form || (decimals <= exponent && significant > 3));
    Some(StepValue {
        value: number.round() as u64,
        exact,
    })
}

/// A line as the job meant it: ANSI colour and cursor codes removed, and
/// the rank prefixes (`srun --label`'s `3: `, torchrun's `[rank3]:` or
/// `[default3]:`, one or several: `0: [rank0]:`) taken off its start.
pub fn clean(line: &str) -> String {
    static ANSI: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        #[allow(clippy::unwrap_used)] // a constant pattern, tested below
        Regex::new(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
            .unwrap()
    });
    static RANK: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        #[allow(clippy::unwrap_used)] // a constant pattern, tested below
        Regex::new(r"^(?:\s*(?:[0-9]+: |\[(?:rank|default)?[0-9]+\]:\s?))+").unwrap()
    });
    let plain = ANSI.replace_all(line, "");
    RANK.replace(&plain, "").into_owned()
}

/// What one update of the output says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The line, cleaned ([`clean`]).
    pub text: String,
    /// The step it shows: the last match of the progress pattern.
    pub step: Option<StepValue>,
    /// A checkpoint line: `Some(its step, if said)`.
    pub checkpoint: Option<Option<u64>>,
    /// The job says it resumed (its `resumed` line, or HyperPod's
    /// auto-resume retrying the step): `Some(step resumed from, if said)`.
    pub resumed: Option<Option<u64>>,
    /// A line of HyperPod's auto-resume (`[Auto Resume] Info: JobID: 82
    /// StepID: 0 ...`): the job's own record of its recovery.
    pub auto_resume: bool,
    /// The job says a collective or a checkpoint failed (see
    /// [`JOB_FAULTS`]).
    pub fault: bool,
}

/// Lines by which a training job says it hit a fault HyperPod does not
/// see: a collective failed (PyTorch's NCCL watchdog, `[Rank 0] Watchdog
/// caught collective operation timeout: WorkNCCL(SeqNum=..., OpType=
/// ALLREDUCE, ...) ran for ... milliseconds before timing out.`, pytorch
/// `ProcessGroupNCCL.cpp`, and what it says as it tears the process group
/// down), or a checkpoint could not be written (the errno's words, as
/// Python's OSError and PyTorch's stream writer print them).
pub const JOB_FAULTS: [&str; 6] = [
    "Watchdog caught collective operation timeout",
    "Some NCCL operations have failed or timed out",
    "NCCL communicator was aborted",
    "No space left on device",
    "Read-only file system",
    "PytorchStreamWriter failed writing file",
];

/// When a line of PyTorch's C++ log was written, from its prefix: c10's
/// `MessageLogger` (`[E1203 08:41:07.123456789 ProcessGroupNCCL.cpp:616]`,
/// after [`clean`] took `[rank0]:` off; pytorch `c10/util/Logging.cpp`)
/// or glog's (`E1203 08:41:07.123456  4711 file.cc:12]`, at the line's
/// start). The month and day are printed as `month * 100 + day`, unpadded
/// (`E103` is 3 January); the time is the node's local time (`offset`).
/// To the second: c10's nine digits are `CLOCK_MONOTONIC`'s nanoseconds,
/// not the wall clock's. No year: the one that puts it nearest `seen`
/// (a line read just after New Year is last year's; one from a node a
/// little ahead, just before it, next year's). `None`: no such prefix, no
/// such date, or a time more than [`LOG_AHEAD`] after `seen` (a node whose
/// zone is not the controller's: the read's time is the better one).
pub fn log_time(
    text: &str,
    offset: chrono::FixedOffset,
    seen: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::Datelike;
    static PREFIX: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        #[allow(clippy::unwrap_used)] // a constant pattern, tested below
        Regex::new(
            r"^\[?[IWEF]([0-9]{1,2})([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\.[0-9]{6,9}\s",
        )
        .unwrap()
    });
    let c = PREFIX.captures(text.trim_start())?;
    let number = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
    let (month, day) = (number(1)?, number(2)?);
    let time = chrono::NaiveTime::from_hms_opt(number(3)?, number(4)?, number(5)?)?;
    let year = seen.with_timezone(&offset).year();
    [year - 1, year, year + 1]
        .into_iter()
        .filter_map(|year| {
            let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
            crate::cluster::controller_log::local_to_utc(date.and_time(time), offset)
        })
        .min_by_key(|at| (*at - seen).abs())
        .filter(|at| *at <= seen + LOG_AHEAD)
}

/// How far after its read a line's own time may be (clocks a little
/// apart); later, it is not taken.
pub const LOG_AHEAD: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// HyperPod's auto-resume lines (capital R; field case 15), and the one
/// that says the step is run again ("Retrying step. Attempt number: 1").
const AUTO_RESUME: &str = "[Auto Resume]";
const AUTO_RESUME_RETRY: &str = "Retrying step";

impl Update {
    /// Reads `line` with `patterns` (no patterns: only auto-resume lines).
    pub(crate) fn of(line: &str, patterns: Option<&Patterns>) -> Update {
        let text = clean(line);
        // The step a pattern's groups give: the first group that matched.
        let step_of = |c: regex::Captures<'_>| {
            c.iter()
                .skip(1)
                .flatten()
                .find_map(|m| parse_step(m.as_str()))
                .map(|s| s.value)
        };
        let checkpoint = patterns
            .and_then(|p| p.checkpoint.as_ref())
            .and_then(|c| c.captures(&text))
            .map(step_of);
        let auto_resume = text.contains(AUTO_RESUME);
        let resumed = if auto_resume && text.contains(AUTO_RESUME_RETRY) {
            Some(None)
        } else {
            patterns
                .and_then(|p| p.resumed.as_ref())
                .and_then(|r| r.captures(&text))
                .map(step_of)
        };
        // A checkpoint's or a resume's number is the checkpoint's step, not
        // progress.
        let step = (checkpoint.is_none() && resumed.is_none())
            .then(|| {
                patterns
                    .and_then(|p| p.progress.captures_iter(&text).last())
                    .and_then(|c| c.get(1))
                    .and_then(|m| parse_step(m.as_str()))
            })
            .flatten();
        let fault = JOB_FAULTS.iter().any(|f| text.contains(f));
        Update {
            text,
            step,
            checkpoint,
            resumed,
            auto_resume,
            fault,
        }
    }
}

/// What a read of the output found, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEvent {
    /// The file was rewritten since the last read: shorter than what was
    /// read (`was` bytes read, `now` its size), or its first bytes changed.
    Rewritten {
        was: u64,
        now: u64,
        shorter: bool,
        /// Its first bytes changed (else, not shorter: the bytes just
        /// before where it was read to did).
        head_changed: bool,
    },
    Update(Update),
}

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
    /// The scenario named the output file (`progress.output`): Slurm's
    /// `StdOut` does not move it.
    pub(crate) output_pinned: bool,
    /// Where the output is read: the head when `None` (shared storage),
    /// else the node it lives on (the job's batch host).
    pub(crate) read_on: Option<Endpoint>,
    pub(crate) offset: u64,
    /// The last bytes read (up to [`HEAD_BYTES`]), ending at `offset`: a
    /// file whose bytes there changed was written anew, even when it
    /// starts as before (a banner every attempt prints).
    pub(crate) tail: Vec<u8>,
    /// The `cksum` of the file's first [`HEAD_BYTES`], once it had them.
    pub(crate) head: Option<u64>,
    /// Inside a line longer than [`OUTPUT_CHUNK`]: its rest is skipped up
    /// to its end.
    pub(crate) skipping: bool,
    /// Where a frame still being drawn starts (after a `\r`, no end yet),
    /// once taken: it is not taken again when it ends.
    pub(crate) provisional: Option<u64>,
    pub(crate) patterns: Option<Patterns>,
    /// The highest step of the current attempt (reset when the job says
    /// it restarted or its output was rewritten).
    pub(crate) last_step: Option<u64>,
    /// The step of the latest checkpoint the output said was written.
    pub(crate) last_checkpoint: Option<u64>,
    /// Each step the output showed, with when it was read: the step time
    /// for the cost of a failure.
    pub(crate) steps_seen: Vec<(chrono::DateTime<chrono::Utc>, u64)>,
    /// The job's GPUs and where that number comes from, once known.
    pub(crate) gpus: Option<(u32, String)>,
    /// The earliest start of the job Slurm showed (`StartTime`, read
    /// before the fault and kept): where the cost's ETTR window begins. A
    /// requeue moves `StartTime` on (and `SubmitTime` too: job_mgr.c sets
    /// it to now on a requeue), so a start before a requeue the run did
    /// not see is not known from Slurm without accounting.
    pub(crate) started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Requeues before the run (Slurm's `Restarts` when it began): the
    /// job's life before its last start is not in the cost's window.
    pub(crate) restarts_before: u32,
    /// The step a stall was last said for, with when it was first seen:
    /// a stall is said once until the job moves on.
    pub(crate) stall_said: Option<(chrono::DateTime<chrono::Utc>, u64)>,
}

impl WorkloadJob {
    /// A job to watch, its output not read yet.
    pub(crate) fn new(id: u64, patterns: Option<Patterns>) -> WorkloadJob {
        WorkloadJob {
            id,
            submitted: false,
            comment: String::new(),
            intent: None,
            output: None,
            output_pinned: false,
            read_on: None,
            offset: 0,
            tail: Vec::new(),
            head: None,
            skipping: false,
            provisional: None,
            patterns,
            last_step: None,
            last_checkpoint: None,
            steps_seen: Vec::new(),
            gpus: None,
            started_at: None,
            restarts_before: 0,
            stall_said: None,
        }
    }

    /// The latest step the output showed and when it was first seen (a
    /// bar redrawing the same step does not move it on); `None` before a
    /// step was read.
    pub(crate) fn last_advance(&self) -> Option<(chrono::DateTime<chrono::Utc>, u64)> {
        let &(mut since, step) = self.steps_seen.last()?;
        for &(at, value) in self.steps_seen.iter().rev() {
            if value != step {
                break;
            }
            since = at;
        }
        Some((since, step))
    }

    /// Whether the job's progress stalled by `now` (no new step for
    /// `progress.stalled_after`): the words to say, once per stall. Asked
    /// only while the job runs (a requeued job waiting for nodes has no
    /// progress to make).
    pub(crate) fn stalled(&mut self, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let limit = self.patterns.as_ref()?.stalled_after?;
        let (since, step) = self.last_advance()?;
        let quiet = (now - since).to_std().ok()?;
        if quiet < limit || self.stall_said == Some((since, step)) {
            return None;
        }
        self.stall_said = Some((since, step));
        Some(format!(
            "progress stalled: no step after {step} for {:.0} s (progress.stalled_after {})",
            quiet.as_secs_f64(),
            crate::duration::Duration(limit)
        ))
    }

    /// The job as a recording keeps it at the injection.
    pub(crate) fn recorded(&self) -> super::recording::RecordedJob {
        super::recording::RecordedJob {
            id: self.id,
            output: self.output.clone(),
            output_pinned: self.output_pinned,
            read_on: self.read_on.as_ref().map(|e| e.name.clone()),
            offset: self.offset,
            tail: super::recording::encode(&self.tail),
            head: self.head,
            skipping: self.skipping,
            provisional: self.provisional,
            last_step: self.last_step,
            steps_seen: self.steps_seen.clone(),
            gpus: self.gpus.clone(),
            started_at: self.started_at,
            restarts_before: self.restarts_before,
        }
    }

    /// The job as a recording kept it, read with `patterns` (the
    /// scenario's): for a replay, never submitted, never read on a node.
    pub(crate) fn replayed(
        recorded: &super::recording::RecordedJob,
        patterns: Option<Patterns>,
    ) -> WorkloadJob {
        WorkloadJob {
            output: recorded.output.clone(),
            output_pinned: recorded.output_pinned,
            offset: recorded.offset,
            tail: recorded
                .tail
                .as_deref()
                .map(super::recording::decode)
                .unwrap_or_default(),
            head: recorded.head,
            skipping: recorded.skipping,
            provisional: recorded.provisional,
            last_step: recorded.last_step,
            steps_seen: recorded.steps_seen.clone(),
            gpus: recorded.gpus.clone(),
            started_at: recorded.started_at,
            restarts_before: recorded.restarts_before,
            ..WorkloadJob::new(recorded.id, patterns)
        }
    }

    /// What the job's output says since the last read, in order; steps
    /// are stamped `now` (the run's clock); each chunk read is added to
    /// `read` with the offset it was read at (for a recording). An
    /// unreadable file gives nothing (asked again at the next poll).
    pub(crate) async fn read_progress(
        &mut self,
        slurm: &Slurm,
        now: chrono::DateTime<chrono::Utc>,
        read: &mut Vec<(u64, FileChunk)>,
    ) -> Vec<OutputEvent> {
        let Some(path) = self.output.clone() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        // Chunk after chunk while they come full, up to
        // [`CHUNKS_PER_READ`]: a job far ahead is caught up over a few
        // polls, in bounded memory. Skipping a line too long to keep goes
        // faster: nothing of it is kept.
        let reads = if self.skipping {
            4 * CHUNKS_PER_READ
        } else {
            CHUNKS_PER_READ
        };
        for _ in 0..reads {
            let chunk = match slurm
                .read_chunk(
                    self.read_on.as_ref(),
                    &path,
                    self.offset,
                    OUTPUT_CHUNK,
                    HEAD_BYTES,
                )
                .await
            {
                Ok(chunk) => chunk,
                // Asked again at the next poll.
                Err(_) => break,
            };
            let at = self.offset;
            let (news, more) = self.take_chunk(&chunk, now);
            events.extend(news);
            read.push((at, chunk));
            if !more {
                break;
            }
        }
        events
    }

    /// A recorded chunk read at `offset` taken as if read where this
    /// reader stands: bytes it has read already are dropped; bytes it
    /// never had (the chunk starts past it) are skipped to, and said.
    pub(crate) fn take_recorded_chunk(
        &mut self,
        offset: Option<u64>,
        mut chunk: FileChunk,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (Vec<OutputEvent>, Option<String>) {
        let mut gap = None;
        match offset {
            Some(at) if at < self.offset => {
                let skip = usize::try_from(self.offset - at).unwrap_or(usize::MAX);
                chunk.bytes.drain(..skip.min(chunk.bytes.len()));
            }
            Some(at) if at > self.offset && chunk.size >= self.offset => {
                gap = Some(format!(
                    "recorded output read at byte {at}, this reader stands at {}: the bytes between are not in the recording",
                    self.offset
                ));
                self.offset = at;
                self.skipping = false;
            }
            _ => {}
        }
        (self.take_chunk(&chunk, now).0, gap)
    }

    /// What one chunk of the output says (the one decoding, live and
    /// replayed), and whether to read on: the chunk came full, or the file
    /// was rewritten and is read again from its start.
    pub(crate) fn take_chunk(
        &mut self,
        chunk: &FileChunk,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (Vec<OutputEvent>, bool) {
        let mut events = Vec::new();
        let full = chunk.bytes.len() as u64 >= OUTPUT_CHUNK;
        if let Some(rewritten) = self.rewritten(chunk) {
            events.push(rewritten);
            return (events, true);
        }
        let read = Read::of(&chunk.bytes, OUTPUT_CHUNK, self.skipping);
        let start = self.offset;
        self.offset += read.consumed;
        let consumed = usize::try_from(read.consumed)
            .unwrap_or(usize::MAX)
            .min(chunk.bytes.len());
        self.tail.extend_from_slice(&chunk.bytes[..consumed]);
        let keep = usize::try_from(HEAD_BYTES).unwrap_or(256);
        if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
        self.skipping = read.skipping;
        for (at, line) in read.updates {
            if self.provisional == Some(start + at) {
                continue;
            }
            events.push(OutputEvent::Update(self.take(&line, now)));
        }
        if let Some((at, frame)) = read.drawing
            && self.provisional != Some(start + at)
        {
            let update = self.take(&frame, now);
            if update.step.is_some() {
                self.provisional = Some(start + at);
                events.push(OutputEvent::Update(update));
            }
        }
        (events, full)
    }

    /// Reads the output from its start again (another file, or the same
    /// rewritten): a new attempt's.
    pub(crate) fn restart_reading(&mut self) {
        self.offset = 0;
        self.tail.clear();
        self.head = None;
        self.skipping = false;
        self.provisional = None;
        self.last_step = None;
    }

    /// Whether the file was rewritten since the last read (and if so,
    /// starts over: offset 0, a new attempt); notes its first bytes once
    /// it has [`HEAD_BYTES`] of them (a shorter file is told by its size).
    fn rewritten(&mut self, chunk: &FileChunk) -> Option<OutputEvent> {
        let shorter = chunk.size < self.offset;
        let head_changed = self.head.is_some_and(|sum| sum != chunk.head_sum);
        let changed = head_changed
            || (!chunk.before.is_empty() && !self.tail.is_empty() && chunk.before != self.tail);
        if shorter || changed {
            let was = self.offset;
            self.restart_reading();
            return Some(OutputEvent::Rewritten {
                was,
                now: chunk.size,
                shorter,
                head_changed,
            });
        }
        if self.head.is_none() && chunk.size >= HEAD_BYTES {
            self.head = Some(chunk.head_sum);
        }
        None
    }

    /// Reads one update and keeps its step: the highest of the attempt,
    /// which a resume starts afresh.
    fn take(&mut self, line: &str, now: chrono::DateTime<chrono::Utc>) -> Update {
        let update = Update::of(line, self.patterns.as_ref());
        if update.resumed.is_some() {
            self.last_step = None;
        }
        if let Some(Some(step)) = update.checkpoint {
            self.last_checkpoint = Some(step);
        }
        if let Some(step) = update.step {
            self.steps_seen.push((now, step.value));
            if step.exact {
                self.last_step = Some(self.last_step.map_or(step.value, |s| s.max(step.value)));
            }
        }
        update
    }
}

/// How much of a job's output is read at once: also the longest line
/// kept (a longer one is cut, its rest skipped).
pub(crate) const OUTPUT_CHUNK: u64 = 128 * 1024;

/// Chunks read at most in one poll of the job's output (2 MiB).
const CHUNKS_PER_READ: usize = 16;

/// The first bytes of the output whose checksum tells a rewritten file
/// from a growing one.
const HEAD_BYTES: u64 = 256;

/// What one bounded read of a job's output gave.
#[derive(Debug, PartialEq)]
pub(crate) struct Read {
    /// Bytes of the file taken.
    pub(crate) consumed: u64,
    /// Each complete update, with where it starts in the bytes read.
    pub(crate) updates: Vec<(u64, String)>,
    /// Still inside a line too long to keep.
    pub(crate) skipping: bool,
    /// A frame being drawn at the end: it began after a `\r` and has no
    /// end yet (tqdm's frames start with `\r`). Not consumed: read again
    /// when it ends, and taken once.
    pub(crate) drawing: Option<(u64, String)>,
}

impl Read {
    /// Reads `bytes`, at most `chunk` bytes of the output: inside a long
    /// line (`skipping`), up to its end is dropped; a full chunk without an
    /// end of line is a line too long, kept cut (its start, and that it was
    /// cut) and its rest skipped; otherwise the complete updates. Counted
    /// in bytes; each line is read as UTF-8 on its own (invalid bytes
    /// replaced).
    pub(crate) fn of(bytes: &[u8], chunk: u64, skipping: bool) -> Read {
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
                        drawing: None,
                    };
                }
            }
        }
        let (consumed, updates) = complete_updates(rest);
        if consumed == 0 && full && !rest.is_empty() {
            let mut kept: String =
                String::from_utf8_lossy(&rest[..rest.len().min(1024)]).into_owned();
            kept.push_str(&format!(
                " [hpchaos: line cut: longer than {} KiB]",
                chunk / 1024
            ));
            return Read {
                consumed: bytes.len() as u64,
                updates: vec![(skipped, kept)],
                skipping: true,
                drawing: None,
            };
        }
        let tail = &rest[consumed..];
        let after_cr = consumed > 0 && rest[consumed - 1] == b'\r';
        let drawing = (after_cr && !tail.is_empty() && !full).then(|| {
            (
                skipped + consumed as u64,
                String::from_utf8_lossy(tail).into_owned(),
            )
        });
        Read {
            consumed: skipped + consumed as u64,
            updates: updates
                .into_iter()
                .map(|(at, u)| (skipped + at as u64, u))
                .collect(),
            skipping: false,
            drawing,
        }
    }
}

/// The complete updates in a job's output: bytes ended by `\n` or `\r`,
/// each read as UTF-8 on its own, with where it starts; blank ones
/// skipped. Returns how many bytes were consumed; a trailing update not
/// yet ended waits for the next read.
pub(crate) fn complete_updates(bytes: &[u8]) -> (usize, Vec<(usize, String)>) {
    let consumed = bytes
        .iter()
        .rposition(|b| *b == b'\n' || *b == b'\r')
        .map_or(0, |i| i + 1);
    let mut updates = Vec::new();
    let mut start = 0;
    for (i, b) in bytes[..consumed].iter().enumerate() {
        if *b == b'\n' || *b == b'\r' {
            let text = String::from_utf8_lossy(&bytes[start..i]);
            if !text.trim().is_empty() {
                updates.push((start, text.into_owned()));
            }
            start = i + 1;
        }
    }
    (consumed, updates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::{Framework, Progress};

    fn plain(pattern: &str) -> Patterns {
        Patterns::of(&Progress {
            pattern: Some(pattern.to_owned()),
            ..Progress::default()
        })
        .unwrap()
    }

    fn steps(text: &str, patterns: &Patterns) -> Vec<u64> {
        complete_updates(text.as_bytes())
            .1
            .iter()
            .filter_map(|(_, u)| Update::of(u, Some(patterns)).step)
            .map(|s| s.value)
            .collect()
    }

    #[test]
    fn field_case_09_a_progress_bar_gives_its_latest_step() {
        let text = include_str!("../../../../tests/fixtures/field-cases/09-tqdm-progress.txt");
        let pattern = plain(r"(\d+)/1000");
        let (consumed, _) = complete_updates(text.as_bytes());
        assert_eq!(consumed, text.len());
        assert_eq!(steps(text, &pattern), vec![100, 200, 300, 400, 500]);
    }

    #[test]
    fn a_frame_that_starts_with_a_carriage_return_is_taken_at_once() {
        // tqdm: each frame starts with `\r`; the last one has no end yet.
        let read = Read::of(b"\rstep 1\rstep 2\rstep 3", 1024, false);
        assert_eq!(read.consumed, "\rstep 1\rstep 2\r".len() as u64);
        let texts: Vec<&str> = read.updates.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(texts, ["step 1", "step 2"]);
        assert_eq!(read.drawing, Some((15, "step 3".to_owned())));
        // A line still being written after `\n` is not a frame: it waits.
        let read = Read::of(b"step 1\nstep 2", 1024, false);
        assert_eq!(read.drawing, None);
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_cut_and_its_rest_skipped() {
        // A 10-byte chunk of a line that goes on: kept cut, rest skipped.
        let first = Read::of(b"step 7 xxx", 10, false);
        assert_eq!(first.consumed, 10);
        assert!(first.skipping);
        assert_eq!(first.updates.len(), 1);
        assert!(first.updates[0].1.contains("line cut"), "{first:?}");
        // Still inside it: dropped.
        let middle = Read::of(b"xxxxxxxxxx", 10, true);
        assert_eq!(
            (middle.consumed, middle.updates.len(), middle.skipping),
            (10, 0, true)
        );
        // Its end, then whole lines again.
        let end = Read::of(b"xx\nstep 8\n", 10, true);
        assert_eq!(end.consumed, 10);
        assert!(!end.skipping);
        assert_eq!(end.updates, vec![(3, "step 8".to_owned())]);
        // A short read without an end of line waits, as before.
        let waiting = Read::of(b"step 9", 10, false);
        assert_eq!((waiting.consumed, waiting.updates.len()), (0, 0));
        // A character split between two chunks: byte offsets stay right,
        // and the next line is read whole.
        let text = "step 1 \u{2588}\u{2588}\nstep 2\n".as_bytes();
        let first = Read::of(&text[..9], 9, false);
        assert_eq!((first.consumed, first.skipping), (9, true));
        let rest = Read::of(&text[9..], 9, true);
        assert_eq!(first.consumed + rest.consumed, text.len() as u64);
        assert_eq!(rest.updates, vec![(5, "step 2".to_owned())]);
    }

    #[test]
    fn the_last_match_of_a_line_wins() {
        let pattern = plain(r"step (\d+)");
        assert_eq!(steps("step 1\nstep 2 step 3\nstep 4", &pattern), [1, 3]);
    }

    #[test]
    fn steps_are_numbers_as_frameworks_print_them() {
        let exact = |value| Some(StepValue { value, exact: true });
        let about = |value| {
            Some(StepValue {
                value,
                exact: false,
            })
        };
        assert_eq!(parse_step("1200"), exact(1200));
        assert_eq!(parse_step("794.0"), exact(794));
        assert_eq!(parse_step("11949.0"), exact(11949));
        assert_eq!(parse_step("1.2e+4"), about(12000));
        assert_eq!(parse_step("1.23e+5"), about(123000));
        assert_eq!(parse_step("1.2345e+4"), exact(12345));
        assert_eq!(parse_step("1.63e+6"), about(1630000));
        assert_eq!(parse_step("5E2"), about(500));
        assert_eq!(parse_step("1e+3"), about(1000));
        assert_eq!(parse_step("9.000"), exact(9));
        assert_eq!(parse_step("794.5"), about(795));
        for bad in ["", "-3", "nan", "inf", "1e400", "x1"] {
            assert_eq!(parse_step(bad), None, "{bad}");
        }
    }

    /// Field case 17: NeMo's bar, `global_step` a float printed `1.2e+4`
    /// from step 11,950: the steps go on, never back to 1.
    #[test]
    fn field_case_17_a_float_global_step_is_read_as_a_number() {
        let text = include_str!(
            "../../../../tests/fixtures/field-cases/17-lightning-float-global-step.txt"
        );
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\r");
        let patterns = Patterns::of(&Progress {
            framework: Some(Framework::Nemo),
            ..Progress::default()
        })
        .unwrap();
        let read: Vec<StepValue> = complete_updates(format!("{body}\r").as_bytes())
            .1
            .iter()
            .filter_map(|(_, u)| Update::of(u, Some(&patterns)).step)
            .collect();
        let values: Vec<u64> = read.iter().map(|s| s.value).collect();
        assert_eq!(values, [794, 11948, 11949, 12000, 12000, 12051]);
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
        assert_eq!(read.iter().filter(|s| !s.exact).count(), 2);
    }

    #[test]
    fn colour_codes_and_rank_prefixes_are_not_part_of_a_line() {
        assert_eq!(
            clean("\x1b[31mstep: \x1b[39m 10  \x1b[32mloss:  7.9\x1b[39m"),
            "step:  10  loss:  7.9"
        );
        assert_eq!(clean("3: step 12"), "step 12");
        assert_eq!(clean("[rank0]: step 12"), "step 12");
        assert_eq!(clean("[default7]:step 12"), "step 12");
        assert_eq!(clean("0: [rank0]:step 12"), "step 12");
        assert_eq!(clean("12 steps: done"), "12 steps: done");
        let anchored = plain(r"^step (\d+)");
        assert_eq!(
            steps("0: step 4\n\x1b[1mstep 5\x1b[0m\n", &anchored),
            [4, 5]
        );
    }

    /// Field case 15: HyperPod's own lines are kept, and "Retrying step"
    /// says the job resumed in place.
    #[test]
    fn field_case_15_auto_resume_lines_say_the_job_resumed() {
        let text =
            include_str!("../../../../tests/fixtures/field-cases/15-auto-resume-in-place.txt");
        let patterns = plain(r"step (\d+)");
        let updates: Vec<Update> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| Update::of(l, Some(&patterns)))
            .collect();
        assert_eq!(updates.iter().filter(|u| u.auto_resume).count(), 8);
        let retry = updates.iter().position(|u| u.resumed.is_some()).unwrap();
        assert!(
            updates[retry]
                .text
                .contains("Retrying step. Attempt number: 1")
        );
        assert_eq!(updates.iter().filter(|u| u.resumed.is_some()).count(), 1);
        let after: Vec<u64> = updates[retry..]
            .iter()
            .filter_map(|u| u.step)
            .map(|s| s.value)
            .collect();
        assert_eq!(after, [6, 7, 8, 9]);
        // `StepID: 0` in HyperPod's lines is no step.
        assert!(updates[..retry].iter().all(|u| u.step.is_none()));
    }

    /// PyTorch's NCCL watchdog, as torchrun prefixes it (`[rank1]:`):
    /// a fault the job reports, never a step (its SeqNum is no step).
    #[test]
    fn the_collective_watchdog_says_a_fault_and_no_step() {
        let patterns = plain(r"step (\d+)");
        let lines = [
            "[rank0]:[E1203 08:41:07.123456 4711 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1042, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600081 milliseconds before timing out.",
            "[rank0]:[E1203 08:41:07.200000 4711 ProcessGroupNCCL.cpp:1664] [PG 0 (default_pg) Rank 0] Some NCCL operations have failed or timed out. Due to the asynchronous nature of CUDA kernels, subsequent GPU operations might run on corrupted/incomplete data.",
            "step 1042",
            "rank 1 on ip-10-1-0-12: CUDA error: uncorrectable ECC error encountered",
        ];
        let updates: Vec<Update> = lines
            .iter()
            .map(|l| Update::of(l, Some(&patterns)))
            .collect();
        assert_eq!(
            updates.iter().map(|u| u.fault).collect::<Vec<_>>(),
            [true, true, false, false]
        );
        assert!(updates[0].step.is_none() && updates[1].step.is_none());
        assert_eq!(updates[2].step.map(|s| s.value), Some(1042));
    }

    /// PyTorch's C++ log prefix gives the line's time, to the second, in
    /// the node's local time: c10's (nine digits, the rank taken off by
    /// `clean`), glog's (six, a thread id), an unpadded January date, a
    /// line from last year read just after New Year, a node east of UTC;
    /// PyTorch before 2.3 printed no time, and a line without a prefix or
    /// with no such date has none.
    #[test]
    fn a_pytorch_log_line_gives_its_time_to_the_second() {
        let utc = chrono::FixedOffset::east_opt(0).unwrap();
        let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        let seen = at("2026-12-03T08:41:09.5Z");
        let time = |line: &str, offset, seen| log_time(&clean(line), offset, seen);
        let c10 = "[rank3]:[E1203 08:41:07.918273645 ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=7, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600081 milliseconds before timing out.";
        assert_eq!(time(c10, utc, seen), Some(at("2026-12-03T08:41:07Z")));
        let bare = "[E1203 08:41:07.000000001 ProcessGroupNCCL.cpp:1664] [PG 0 Rank 0] Some NCCL operations have failed or timed out.";
        assert_eq!(time(bare, utc, seen), Some(at("2026-12-03T08:41:07Z")));
        let glog = "E1203 08:41:06.123456  4711 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout";
        assert_eq!(time(glog, utc, seen), Some(at("2026-12-03T08:41:06Z")));
        let january = "[rank0]:[E103 00:00:02.5 x] no: a fraction of one digit";
        assert_eq!(time(january, utc, seen), None);
        let january = "[rank0]:[E103 00:00:02.123456789 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout";
        assert_eq!(
            time(january, utc, at("2027-01-03T00:00:05Z")),
            Some(at("2027-01-03T00:00:02Z"))
        );
        let new_year = "[rank0]:[E1231 23:59:58.123456789 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout";
        assert_eq!(
            time(new_year, utc, at("2027-01-01T00:00:05Z")),
            Some(at("2026-12-31T23:59:58Z"))
        );
        let india = chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let local = "[rank0]:[E1203 14:11:07.123456789 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout";
        assert_eq!(time(local, india, seen), Some(at("2026-12-03T08:41:07Z")));
        let old = "[E ProcessGroupNCCL.cpp:475] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=7, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600081 milliseconds before timing out.";
        assert_eq!(time(old, utc, seen), None);
        assert_eq!(
            time("OSError: [Errno 28] No space left on device", utc, seen),
            None
        );
        let no_date =
            "[rank0]:[E1332 08:41:07.123456789 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog";
        assert_eq!(time(no_date, utc, seen), None);
        // A node 2 s ahead, read just before New Year: next year's.
        let ahead = "[rank0]:[E101 00:00:01.123456789 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog";
        assert_eq!(
            time(ahead, utc, at("2026-12-31T23:59:59Z")),
            Some(at("2027-01-01T00:00:01Z"))
        );
        // An hour after its read (a node in another zone): not taken.
        let later = "[rank0]:[E1203 09:41:07.123456789 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog";
        assert_eq!(time(later, utc, seen), None);
        // `srun --label` before torchrun's prefix: both taken off.
        let labelled =
            "0: [rank0]:[E1203 08:41:07.123456789 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog";
        assert_eq!(time(labelled, utc, seen), Some(at("2026-12-03T08:41:07Z")));
    }

    #[test]
    fn a_resumed_line_gives_its_checkpoint() {
        let canary = Patterns::of(&Progress::canary_default()).unwrap();
        let update = Update::of(
            "resumed from checkpoint at step 1000 on ip-10-1-0-11",
            Some(&canary),
        );
        assert_eq!(update.resumed, Some(Some(1000)));
        let plain = Patterns::of(&Progress::default()).unwrap();
        let update = Update::of(
            "[2026-11-28 09:20:03] rank0: loaded checkpoint /fsx/ckpt/step_1000",
            Some(&plain),
        );
        assert_eq!(update.resumed, Some(Some(1000)));
        assert_eq!(
            Update::of("step 1001 loss 2.38", Some(&plain)).resumed,
            None
        );
    }

    /// A requeued job's new output that starts as the old one did (the
    /// same config banner, longer than the 256 bytes checksummed) and is
    /// already longer than what was read: the bytes before where it was
    /// read to changed, so it was written anew and is read from its start.
    #[test]
    fn a_rewritten_output_with_the_same_start_is_told_by_the_bytes_read_last() {
        let banner: String = (0..12)
            .map(|i| format!("config: option_{i:02} = value for every attempt\n"))
            .collect();
        assert!(banner.len() > 256);
        let old = format!(
            "{banner}{}",
            (1190..=1200)
                .map(|n| format!("step {n}\n"))
                .collect::<String>()
        );
        let new = format!(
            "{banner}loaded checkpoint /fsx/ckpt/step_1100\n{}",
            (1101..=1160)
                .map(|n| format!("step {n}\n"))
                .collect::<String>()
        );
        assert!(new.len() > old.len());
        let now = chrono::DateTime::UNIX_EPOCH;
        let mut job = WorkloadJob::new(42, Some(Patterns::of(&Progress::default()).unwrap()));
        let whole = |text: &str, offset: usize| FileChunk {
            size: text.len() as u64,
            head_sum: 7,
            before: text.as_bytes()[offset.saturating_sub(256)..offset].to_vec(),
            bytes: text.as_bytes()[offset..].to_vec(),
        };
        let (_, _) = job.take_chunk(&whole(&old, 0), now);
        assert_eq!(
            (job.offset as usize, job.last_step),
            (old.len(), Some(1200))
        );
        // Growing: the bytes before the offset are those read.
        let grown = format!("{old}step 1201\n");
        let (news, _) = job.take_chunk(&whole(&grown, old.len()), now);
        assert!(
            matches!(news.as_slice(), [OutputEvent::Update(_)]),
            "{news:?}"
        );
        // Written anew, same first bytes (same head sum), longer already.
        let (news, more) = job.take_chunk(&whole(&new, grown.len()), now);
        assert!(
            matches!(
                news.as_slice(),
                [OutputEvent::Rewritten {
                    shorter: false,
                    head_changed: false,
                    ..
                }]
            ),
            "{news:?}"
        );
        assert!(more);
        assert_eq!(job.offset, 0);
        let (news, _) = job.take_chunk(&whole(&new, 0), now);
        let resumed = news.iter().find_map(|n| match n {
            OutputEvent::Update(u) => u.resumed,
            _ => None,
        });
        assert_eq!(resumed, Some(Some(1100)));
    }

    /// Field case 16: the file read to the end of part A, then found
    /// shorter (Slurm truncated it at the requeue): read again from its
    /// start, the attempt's latest step starting over.
    #[test]
    fn field_case_16_a_shorter_output_is_read_again_from_its_start() {
        let text =
            include_str!("../../../../tests/fixtures/field-cases/16-requeued-output-truncated.txt");
        let body = |part: &str| -> String {
            text.split(part)
                .nth(1)
                .unwrap()
                .lines()
                .skip(1)
                .take_while(|l| !l.starts_with("==="))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let (a, b) = (body("=== part A"), body("=== part B"));
        let mut job = WorkloadJob::new(42, Some(plain(r"step (\d+)")));
        let now = chrono::DateTime::UNIX_EPOCH;
        let read = Read::of(a.as_bytes(), OUTPUT_CHUNK, false);
        job.offset = read.consumed;
        for (_, u) in read.updates {
            job.take(&u, now);
        }
        assert_eq!(job.last_step, Some(1200));
        let chunk = FileChunk {
            size: b.len() as u64,
            head_sum: 1,
            before: Vec::new(),
            bytes: Vec::new(),
        };
        assert_eq!(
            job.rewritten(&chunk),
            Some(OutputEvent::Rewritten {
                was: a.len() as u64,
                now: b.len() as u64,
                shorter: true,
                head_changed: false,
            })
        );
        assert_eq!((job.offset, job.last_step), (0, None));
        let read = Read::of(b.as_bytes(), OUTPUT_CHUNK, false);
        let steps: Vec<u64> = read
            .updates
            .iter()
            .filter_map(|(_, u)| job.take(u, now).step)
            .map(|s| s.value)
            .collect();
        assert_eq!(steps, [1001, 1002]);
        assert_eq!(job.last_step, Some(1002));
        // A file that only grew is no rewrite; one whose start changed is.
        let mut job = WorkloadJob::new(42, None);
        let grown = FileChunk {
            size: 300,
            head_sum: 7,
            before: Vec::new(),
            bytes: Vec::new(),
        };
        assert_eq!(job.rewritten(&grown), None);
        job.offset = 300;
        assert_eq!(
            job.rewritten(&FileChunk {
                size: 400,
                ..grown.clone()
            }),
            None
        );
        let other = FileChunk {
            size: 400,
            head_sum: 8,
            before: Vec::new(),
            bytes: Vec::new(),
        };
        assert!(matches!(
            job.rewritten(&other),
            Some(OutputEvent::Rewritten { shorter: false, .. })
        ));
    }
}
