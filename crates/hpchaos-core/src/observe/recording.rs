//! A watch's recording (`hpchaos run --record DIR`): what each source
//! read, raw, with when it was read, so that `hpchaos replay DIR` judges
//! the same reads again without a cluster (runner/replay.rs). Owns the
//! format, writing it as the watch reads ([`Tape`]) and loading it back
//! ([`Recording::load`]).
//!
//! # Format, version 1
//!
//! A directory a user can attach to a bug report:
//!
//! - `recording.json`: the [`Manifest`]: `format` (`hpchaos-recording`)
//!   and `version` (1), the harness that wrote it, the scenario's name,
//!   when the fault was injected, how things were just before (targets,
//!   their instances, launch times and boots, the job's last step, the
//!   nodes already out of service), the workload job as it stood then,
//!   the controller's UTC offset, and how the live run's watch ended.
//! - `scenario.yaml`: the scenario as it was run.
//! - `profile.yaml`: the cluster profile as it was run (host names,
//!   intervals; no credentials: those come from AWS's chain), when the
//!   run had one.
//! - `reads.jsonl`: one [`Read`] per line, in the order the reads
//!   returned: `{"at": RFC 3339, "cycle": N, "source": NAME, ...}` with the
//!   source's raw answer ([`Raw`]): `sinfo`'s and `scontrol`'s text as
//!   Slurm printed it, the controller log's lines, the SageMaker nodes as
//!   `DescribeClusterNode` gave them, the job's `scontrol show job` text
//!   and the bytes of its output.
//!
//! A newer harness reads older versions; a version it does not know is
//! refused with what to upgrade. The monitoring's answers are not kept in
//! version 1: a replay judges the phases, not `expect.monitoring`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cluster::sagemaker::ApiNode;
use crate::cluster::slurm::FileChunk;
use crate::phases::Baseline;

/// `format` in `recording.json`.
pub const FORMAT: &str = "hpchaos-recording";
/// The version this harness writes (and the newest it reads).
pub const VERSION: u32 = 1;

/// `recording.json`: what the reads need to be judged again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written.
    pub version: u32,
    /// The harness that wrote it (`CARGO_PKG_VERSION`).
    pub harness_version: String,
    /// The run it was made in.
    pub run_id: String,
    /// The scenario's name (`scenario.yaml` holds it whole).
    pub scenario: String,
    /// When the injection began: phases count from here.
    pub injected_at: DateTime<Utc>,
    /// How things were just before the injection.
    pub baseline: RecordedBaseline,
    /// The workload job at the injection, when one is watched.
    #[serde(default)]
    pub job: Option<RecordedJob>,
    /// The controller's UTC offset (`date +%z` on the head, `+0000` on
    /// HyperPod): Slurm prints local times.
    #[serde(default = "utc")]
    pub utc_offset: String,
    /// How the live watch ended, once it did (`passed`, `failed`, ...),
    /// and why: for comparing a replay with it.
    #[serde(default)]
    pub outcome: Option<crate::journal::ScenarioOutcome>,
    #[serde(default)]
    pub reason: Option<String>,
    /// When the live watch ended: a replay's clock is there once the
    /// reads are all taken (the failure's cost counts up to it).
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// The scenario waited on the monitoring (not recorded) after its
    /// phases: the watch may have ended well after its last read.
    #[serde(default)]
    pub monitored: bool,
}

fn utc() -> String {
    "+0000".to_owned()
}

/// [`Baseline`] as kept in a recording.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedBaseline {
    pub targets: Vec<String>,
    #[serde(default)]
    pub instance_ids: BTreeMap<String, String>,
    /// Each target's instance group (HMA's stream names).
    #[serde(default)]
    pub instance_groups: BTreeMap<String, String>,
    #[serde(default)]
    pub launch_times: BTreeMap<String, DateTime<Utc>>,
    #[serde(default)]
    pub progress: Option<u64>,
    /// The job's last checkpoint step before the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<u64>,
    /// Each target's `BootTime` and `SlurmdStartTime`, UTC
    /// (`{"boot_time": ..., "slurmd_started": ...}`).
    #[serde(default)]
    pub boots: BTreeMap<String, crate::cluster::slurm::BootWitness>,
    #[serde(default)]
    pub unhealthy_before: Vec<String>,
}

impl RecordedBaseline {
    pub fn of(baseline: &Baseline) -> RecordedBaseline {
        RecordedBaseline {
            targets: baseline.targets.clone(),
            instance_ids: baseline.instance_ids.clone(),
            instance_groups: baseline.instance_groups.clone(),
            launch_times: baseline.launch_times.clone(),
            progress: baseline.progress,
            checkpoint: baseline.checkpoint,
            boots: baseline.boots.clone(),
            unhealthy_before: baseline.unhealthy_before.iter().cloned().collect(),
        }
    }

    /// The baseline again; `workload`: a job is watched.
    pub fn baseline(&self, workload: bool) -> Baseline {
        Baseline {
            targets: self.targets.clone(),
            instance_ids: self.instance_ids.clone(),
            instance_groups: self.instance_groups.clone(),
            launch_times: self.launch_times.clone(),
            workload,
            progress: self.progress,
            checkpoint: self.checkpoint,
            boots: self.boots.clone(),
            unhealthy_before: self.unhealthy_before.iter().cloned().collect(),
        }
    }
}

/// The workload job at the injection: what its reading had reached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedJob {
    pub id: u64,
    /// Its output file, when known.
    #[serde(default)]
    pub output: Option<String>,
    /// The scenario named the file (`progress.output`).
    #[serde(default)]
    pub output_pinned: bool,
    /// The node the output is read on (its batch host's local disk);
    /// absent: on the head (shared storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_on: Option<String>,
    /// Bytes of the output read before the injection.
    #[serde(default)]
    pub offset: u64,
    /// The last bytes read, ending at `offset` (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
    /// `cksum` of its first 256 bytes, once it had them.
    #[serde(default)]
    pub head: Option<u64>,
    #[serde(default)]
    pub skipping: bool,
    #[serde(default)]
    pub provisional: Option<u64>,
    /// The highest step of the attempt read so far.
    #[serde(default)]
    pub last_step: Option<u64>,
    /// Steps read before the injection, with when.
    #[serde(default)]
    pub steps_seen: Vec<(DateTime<Utc>, u64)>,
    /// The job's GPUs and where the number comes from.
    #[serde(default)]
    pub gpus: Option<(u32, String)>,
    /// Its earliest `StartTime` seen.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// Its `Restarts` when the run began.
    #[serde(default)]
    pub restarts_before: u32,
}

/// One read of one source: when it returned, in which cycle of the
/// watch, and what it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Read {
    pub at: DateTime<Utc>,
    /// The watch's cycle: reads of one cycle are judged together.
    #[serde(default)]
    pub cycle: u64,
    #[serde(flatten)]
    pub raw: Raw,
}

/// What a command answered: its output, or why there was none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Ok(String),
    Error(String),
}

impl Answer {
    pub fn of<E: std::fmt::Display>(result: &Result<String, E>) -> Answer {
        match result {
            Ok(text) => Answer::Ok(text.clone()),
            Err(err) => Answer::Error(err.to_string()),
        }
    }

    pub fn result(&self) -> Result<&str, &str> {
        match self {
            Answer::Ok(text) => Ok(text),
            Answer::Error(err) => Err(err),
        }
    }
}

/// A source's raw answer, by source (`"source"` in the line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Raw {
    /// `sinfo -a -N -h -n TARGETS -o FORMAT` (rows), and, when an abort
    /// condition counts the cluster, `sinfo -a -h -o %T|%N` (groups).
    Sinfo {
        rows: Answer,
        #[serde(default)]
        groups: Option<Answer>,
    },
    /// `scontrol -o show node TARGETS`: the boot witnesses.
    Scontrol { nodes: Answer },
    /// `scontrol ping` and whether Slurm answered
    /// (`cluster::controllers::PING_SCRIPT`'s output).
    Ping { controllers: Answer },
    /// New whole lines of `slurmctld.log`; what the harness noted about
    /// reading it (rotation, a follower that stopped); `polled`: read by a
    /// poll, not a follower (`failed`: that poll's error).
    SlurmctldLog {
        #[serde(default)]
        lines: Vec<String>,
        #[serde(default)]
        notes: Vec<String>,
        #[serde(default)]
        polled: bool,
        #[serde(default)]
        failed: Option<String>,
    },
    /// The targets as `DescribeClusterNode` gave them, or why not.
    Sagemaker {
        #[serde(default)]
        nodes: Vec<ApiNode>,
        #[serde(default)]
        error: Option<String>,
        /// The cluster's events on instances since the injection
        /// (`ListClusterEvents`), or why not (`events_lasting`: not asked
        /// again).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<crate::cluster::sagemaker::ClusterEvent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        events_error: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        events_lasting: bool,
        /// The watch's last look (`Source::last_look`): only the events
        /// were asked, the targets' nodes were not.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        last_look: bool,
    },
    /// HMA's record of the targets in CloudWatch Logs (`FilterLogEvents`),
    /// or why not.
    Hma {
        #[serde(default)]
        events: Vec<crate::cluster::hma::LogEvent>,
        #[serde(default)]
        error: Option<String>,
        /// The error lasts (no permission, no log group): not read again.
        #[serde(default)]
        lasting: bool,
    },
    /// `scontrol -o show job ID` (`Ok("")`: Slurm no longer knows it), and
    /// each chunk of its output read, in order.
    Squeue {
        record: Answer,
        #[serde(default)]
        chunks: Vec<Chunk>,
    },
}

impl Raw {
    /// Whether the watch's last look read it (`Source::last_look`).
    pub fn last_look(&self) -> bool {
        matches!(
            self,
            Raw::Sagemaker {
                last_look: true,
                ..
            }
        )
    }

    /// The journal's name of the source that read it.
    pub fn source(&self) -> crate::journal::Source {
        use crate::journal::Source;
        match self {
            Raw::Sinfo { .. } => Source::Sinfo,
            Raw::Scontrol { .. } => Source::Scontrol,
            Raw::Ping { .. } => Source::Ping,
            Raw::SlurmctldLog { .. } => Source::SlurmctldLog,
            Raw::Sagemaker { .. } => Source::Sagemaker,
            Raw::Squeue { .. } => Source::Squeue,
            Raw::Hma { .. } => Source::Hma,
        }
    }
}

/// One chunk of the job's output: the byte it was read from, the file's
/// size and the `cksum` of its first 256 bytes when read, and the bytes
/// read, as text when they are UTF-8 (`text`), else `base64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Where in the file the bytes start (absent: where the reader stands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub size: u64,
    pub head_sum: u64,
    /// The bytes just before `offset` as the file had them (base64):
    /// changed ones say the file was written anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl Chunk {
    pub fn of(offset: u64, chunk: &FileChunk) -> Chunk {
        use base64::Engine;
        let (text, base64) = match std::str::from_utf8(&chunk.bytes) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&chunk.bytes)),
            ),
        };
        Chunk {
            offset: Some(offset),
            size: chunk.size,
            head_sum: chunk.head_sum,
            before: encode(&chunk.before),
            text,
            base64,
        }
    }

    /// The chunk as read. Errors: `base64` is not base64.
    pub fn file_chunk(&self) -> Result<FileChunk, String> {
        use base64::Engine;
        let bytes = match (&self.text, &self.base64) {
            (_, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("`base64` is not base64: {e}"))?,
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, None) => Vec::new(),
        };
        let before = match &self.before {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("`before` is not base64: {e}"))?,
            None => Vec::new(),
        };
        Ok(FileChunk {
            size: self.size,
            head_sum: self.head_sum,
            before,
            bytes,
        })
    }
}

/// `bytes` as base64; `None` when empty.
pub fn encode(bytes: &[u8]) -> Option<String> {
    use base64::Engine;
    (!bytes.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Base64 as bytes; nothing when it is not base64.
pub fn decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

/// Where a recording is written while the watch reads: `reads.jsonl`,
/// a line per read, flushed as written. A write that fails is kept (the
/// first) for the run to say; the run goes on.
pub struct Tape {
    dir: PathBuf,
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    failed: Mutex<Option<String>>,
}

impl Tape {
    /// Creates `dir` (it must not hold a recording already) with the
    /// manifest, the scenario's and the profile's text, and an empty
    /// `reads.jsonl`. Errors: the directory cannot be written, or holds a
    /// recording.
    pub fn create(
        dir: &Path,
        manifest: &Manifest,
        scenario: &str,
        profile: Option<&str>,
    ) -> Result<Tape, String> {
        let at = |e: std::io::Error, what: &Path| format!("cannot write {}: {e}", what.display());
        std::fs::create_dir_all(dir).map_err(|e| at(e, dir))?;
        let manifest_path = dir.join("recording.json");
        if manifest_path.exists() {
            return Err(format!(
                "{} holds a recording already: give --record a new directory",
                dir.display()
            ));
        }
        write_manifest(dir, manifest)?;
        let scenario_path = dir.join("scenario.yaml");
        std::fs::write(&scenario_path, scenario).map_err(|e| at(e, &scenario_path))?;
        if let Some(profile) = profile {
            let path = dir.join("profile.yaml");
            std::fs::write(&path, profile).map_err(|e| at(e, &path))?;
        }
        let reads = dir.join("reads.jsonl");
        let file = std::fs::File::create(&reads).map_err(|e| at(e, &reads))?;
        Ok(Tape {
            dir: dir.to_owned(),
            file: Mutex::new(std::io::BufWriter::new(file)),
            failed: Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one read.
    pub fn write(&self, read: &Read) {
        let line = match serde_json::to_string(read) {
            Ok(line) => line,
            Err(err) => return self.fail(format!("cannot encode a read: {err}")),
        };
        // A poisoned lock: another read panicked mid-write; the file is
        // still a file, and a torn line is reported by `load`.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = writeln!(file, "{line}").and_then(|()| file.flush()) {
            drop(file);
            self.fail(format!(
                "cannot write {}: {err}",
                self.dir.join("reads.jsonl").display()
            ));
        }
    }

    fn fail(&self, why: String) {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.get_or_insert(why);
    }

    /// The first write that failed, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Writes the manifest again with how the watch ended.
    pub fn finish(&self, manifest: &Manifest) {
        if let Err(err) = write_manifest(&self.dir, manifest) {
            self.fail(err);
        }
    }
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), String> {
    let path = dir.join("recording.json");
    let text = serde_json::to_string_pretty(manifest)
        .map_err(|e| format!("cannot encode {}: {e}", path.display()))?;
    std::fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A recording loaded back.
#[derive(Debug, Clone)]
pub struct Recording {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// `scenario.yaml`'s text, when the recording has it.
    pub scenario: Option<String>,
    /// `profile.yaml`'s text, when the recording has one.
    pub profile: Option<String>,
    pub reads: Vec<Read>,
}

impl Recording {
    /// Loads `dir`. Errors name the file (and line) and the fix: not a
    /// recording, a version this harness does not know, a line that is not
    /// a read, reads out of time order.
    pub fn load(dir: &Path) -> Result<Recording, String> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| (path, e))
        };
        let (path, text) = match read("recording.json") {
            Ok(text) => (dir.join("recording.json"), text),
            Err((path, e)) => {
                return Err(format!(
                    "{}: {e}: not a recording (`hpchaos run --record DIR` writes one)",
                    path.display()
                ));
            }
        };
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| format!("{}:{}: {e}", path.display(), e.line()))?;
        if manifest.format != FORMAT {
            return Err(format!(
                "{}: format `{}` is not `{FORMAT}`: not a recording",
                path.display(),
                manifest.format
            ));
        }
        if manifest.version == 0 || manifest.version > VERSION {
            return Err(format!(
                "{}: version {} is not one this harness ({}) reads (1 to {VERSION}): replay it with the hpchaos that wrote it ({}), or a newer one",
                path.display(),
                manifest.version,
                env!("CARGO_PKG_VERSION"),
                manifest.harness_version
            ));
        }
        let scenario = read("scenario.yaml").ok();
        let profile = read("profile.yaml").ok();
        let reads_path = dir.join("reads.jsonl");
        let text = std::fs::read_to_string(&reads_path)
            .map_err(|e| format!("{}: {e}", reads_path.display()))?;
        let mut reads: Vec<Read> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let read: Read = serde_json::from_str(line).map_err(|e| {
                format!(
                    "{}:{}: not a read ({e}); each line is {{\"at\": TIME, \"cycle\": N, \"source\": sinfo|scontrol|slurmctld_log|sagemaker|squeue, ...}}",
                    reads_path.display(),
                    i + 1
                )
            })?;
            if let Some(last) = reads.last()
                && (read.cycle < last.cycle || read.at < last.at - chrono::TimeDelta::seconds(60))
            {
                return Err(format!(
                    "{}:{}: this read (cycle {}, {}) comes before the one above it (cycle {}, {}): reads are in the order they were read",
                    reads_path.display(),
                    i + 1,
                    read.cycle,
                    read.at.to_rfc3339(),
                    last.cycle,
                    last.at.to_rfc3339()
                ));
            }
            reads.push(read);
        }
        Ok(Recording {
            dir: dir.to_owned(),
            manifest,
            scenario,
            profile,
            reads,
        })
    }

    /// The controller's UTC offset. Errors: not `+HHMM`.
    pub fn utc_offset(&self) -> Result<chrono::FixedOffset, String> {
        crate::cluster::controller_log::parse_offset(&self.manifest.utc_offset).ok_or_else(|| {
            format!(
                "{}: utc_offset `{}` is not +HHMM or -HHMM",
                self.dir.join("recording.json").display(),
                self.manifest.utc_offset
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            harness_version: "0.1.0".into(),
            run_id: "r".into(),
            scenario: "s".into(),
            injected_at: DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
                .unwrap()
                .to_utc(),
            baseline: RecordedBaseline::default(),
            job: None,
            utc_offset: utc(),
            outcome: None,
            reason: None,
            ended_at: None,
            monitored: false,
        }
    }

    #[test]
    fn a_tape_reads_back_as_written_and_binary_output_goes_as_base64() {
        let dir = tempfile::tempdir().unwrap();
        let tape = Tape::create(dir.path(), &manifest(), "name: s\n", None).unwrap();
        let at = manifest().injected_at;
        let reads = vec![
            Read {
                at,
                cycle: 0,
                raw: Raw::Sinfo {
                    rows: Answer::Ok("ip-10-1-0-11|idle|none|Unknown\n".into()),
                    groups: None,
                },
            },
            Read {
                at,
                cycle: 1,
                raw: Raw::Squeue {
                    record: Answer::Ok(String::new()),
                    chunks: vec![Chunk::of(
                        0,
                        &FileChunk {
                            size: 3,
                            head_sum: 7,
                            before: Vec::new(),
                            bytes: vec![0xff, b'a', b'\n'],
                        },
                    )],
                },
            },
        ];
        for read in &reads {
            tape.write(read);
        }
        assert_eq!(tape.failure(), None);
        let loaded = Recording::load(dir.path()).unwrap();
        assert_eq!(loaded.reads, reads);
        let Raw::Squeue { chunks, .. } = &loaded.reads[1].raw else {
            panic!()
        };
        assert!(chunks[0].base64.is_some() && chunks[0].text.is_none());
        assert_eq!(
            chunks[0].file_chunk().unwrap().bytes,
            vec![0xff, b'a', b'\n']
        );
        // A second recording into the same directory is refused.
        let again = Tape::create(dir.path(), &manifest(), "", None)
            .err()
            .unwrap();
        assert!(again.contains("holds a recording already"), "{again}");
    }

    #[test]
    fn a_newer_version_an_unknown_source_and_reads_out_of_order_are_refused_with_where() {
        let dir = tempfile::tempdir().unwrap();
        let mut newer = manifest();
        newer.version = VERSION + 1;
        newer.harness_version = "9.0.0".into();
        Tape::create(dir.path(), &newer, "", None).unwrap();
        let err = Recording::load(dir.path()).unwrap_err();
        assert!(
            err.contains("version 2") && err.contains("the hpchaos that wrote it (9.0.0)"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        Tape::create(dir.path(), &manifest(), "", None).unwrap();
        let reads = dir.path().join("reads.jsonl");
        std::fs::write(
            &reads,
            "{\"at\":\"2026-12-02T10:00:00Z\",\"source\":\"dmesg\"}\n",
        )
        .unwrap();
        let err = Recording::load(dir.path()).unwrap_err();
        assert!(err.contains("reads.jsonl:1: not a read"), "{err}");

        std::fs::write(
            &reads,
            "{\"at\":\"2026-12-02T10:00:05Z\",\"cycle\":2,\"source\":\"scontrol\",\"nodes\":{\"ok\":\"\"}}\n\
             {\"at\":\"2026-12-02T10:00:06Z\",\"cycle\":1,\"source\":\"scontrol\",\"nodes\":{\"ok\":\"\"}}\n",
        )
        .unwrap();
        let err = Recording::load(dir.path()).unwrap_err();
        assert!(err.contains("reads.jsonl:2: this read (cycle 1"), "{err}");

        let err = Recording::load(&dir.path().join("nothing")).unwrap_err();
        assert!(err.contains("not a recording"), "{err}");
    }
}
