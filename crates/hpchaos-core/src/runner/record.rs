//! `run --record DIR`: the watch's recording opened with what the reads
//! need to be judged again (the scenario, the profile, the baseline, the
//! job as it stood at the injection), and closed with how the live watch
//! ended (the format: observe/recording.rs).

use std::path::PathBuf;
use std::sync::Arc;

use crate::journal::{Entry, Source};
use crate::observe::job_output::WorkloadJob;
use crate::observe::recording::{FORMAT, Manifest, RecordedBaseline, Tape, VERSION};
use crate::scenario::model::Scenario;

use super::watch::Watched;
use super::{Ending, Runner};

/// Where a run records its watches.
#[derive(Debug, Clone)]
pub struct RecordTo {
    pub dir: PathBuf,
    /// Each scenario in a directory of its own under `dir` (a suite).
    pub per_scenario: bool,
}

impl Runner {
    /// Opens the scenario's recording, when the run records: journaled
    /// (`field: recording`) where it goes, or why it cannot (the run goes
    /// on unrecorded).
    pub(super) async fn start_recording(
        &mut self,
        scenario: &Scenario,
        watched: &Watched<'_>,
        workload: Option<&WorkloadJob>,
    ) {
        self.tape = None;
        let Some(to) = self.record.clone() else {
            return;
        };
        let dir = match to.per_scenario {
            true => to.dir.join(&scenario.name),
            false => to.dir.clone(),
        };
        let offset = self.cluster.slurm.utc_offset().await;
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            version: VERSION,
            harness_version: env!("CARGO_PKG_VERSION").to_owned(),
            run_id: self.run_id.clone(),
            scenario: scenario.name.clone(),
            injected_at: watched.injected_at,
            baseline: RecordedBaseline::of(watched.baseline),
            job: workload.map(WorkloadJob::recorded),
            utc_offset: offset.to_string().replace(':', ""),
            outcome: None,
            reason: None,
            ended_at: None,
            monitored: !scenario.expect.monitoring.is_empty(),
        };
        let profile = self
            .profile_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok());
        let said = match Tape::create(&dir, &manifest, &self.scenario_text, profile.as_deref()) {
            Ok(tape) => {
                self.tape = Some(Arc::new(tape));
                self.recording = Some(manifest);
                format!("recording the watch's reads to {}", dir.display())
            }
            Err(why) => format!("not recorded: {why}"),
        };
        self.note_recording(&scenario.name, said);
    }

    /// Closes the recording with how the watch ended; a write that failed
    /// on the way is said.
    pub(super) fn finish_recording(&mut self, name: &str, ending: &Ending) {
        let (Some(tape), Some(mut manifest)) = (self.tape.take(), self.recording.take()) else {
            return;
        };
        manifest.outcome = Some(ending.outcome);
        manifest.reason = Some(ending.reason.clone());
        manifest.ended_at = Some(self.clock.now());
        tape.finish(&manifest);
        if let Some(why) = tape.failure() {
            self.note_recording(name, format!("the recording is incomplete: {why}"));
        }
    }

    fn note_recording(&mut self, name: &str, to: String) {
        self.log(
            Some(name),
            Entry::Observed {
                source: Source::Harness,
                node: None,
                field: "recording".into(),
                from: None,
                to,
                source_time: None,
            },
        );
    }
}
