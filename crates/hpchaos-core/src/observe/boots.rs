//! slurmd's boot witnesses (`scontrol -o show node`: `BootTime`,
//! `SlurmdStartTime`), read with each Slurm poll for scenarios that time a
//! reboot: says each target's pair when either moves.

use std::time::Instant;

use futures::future::BoxFuture;

use crate::cluster::slurm::{Slurm, boots_in_utc};
use crate::journal::Source as SourceName;
use crate::phases::{Event, Observation};

use super::recording::{Answer, Raw};
use super::{Cx, Said, Source, Touch};

/// The targets' boots, every `poll.slurm`.
pub struct Boots {
    slurm: Slurm,
    targets: Vec<String>,
    /// Every poll, or lightly while the watch is quiet
    /// (`scontrol show node` loads the whole node table).
    touch: Touch,
}

impl Boots {
    pub fn new(slurm: Slurm, targets: &[String], touch: Touch) -> Boots {
        Boots {
            slurm,
            targets: targets.to_vec(),
            touch,
        }
    }

    /// Decodes `scontrol -o show node`'s text as printed (the
    /// controller's UTC offset `offset`): the one decoding, live and
    /// replayed. A failed read says nothing: sinfo's health covers the
    /// same controller.
    pub fn decode(
        nodes: &Answer,
        offset: chrono::FixedOffset,
        seen_at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Said> {
        let Ok(text) = nodes.result() else {
            return Vec::new();
        };
        let boots = boots_in_utc(text, offset);
        let show = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.to_rfc3339()).unwrap_or_default()
        };
        boots
            .into_iter()
            .map(|(node, boot)| Said::Value {
                source: SourceName::Scontrol,
                node: Some(node.clone()),
                field: "boot_time|slurmd_start_time".into(),
                value: format!("{}|{}", show(boot.boot_time), show(boot.slurmd_started)),
                source_time: boot.boot_time,
                event: Some(Event {
                    seen: seen_at,
                    source_time: None,
                    source: SourceName::Scontrol,
                    observation: Observation::NodeBoot { node, boot },
                }),
            })
            .collect()
    }
}

impl Source for Boots {
    fn name(&self) -> SourceName {
        SourceName::Scontrol
    }

    fn due(&self, now: Instant) -> bool {
        self.touch.due(now)
    }

    fn wake_at(&self) -> Option<Instant> {
        Some(self.touch.wake_at())
    }

    fn stir(&self) {
        self.touch.stir();
    }

    fn read<'a>(&'a mut self, cx: &'a Cx) -> BoxFuture<'a, Vec<Said>> {
        Box::pin(async move {
            self.touch.started(Instant::now());
            let offset = self.slurm.utc_offset().await;
            let nodes = Answer::of(&self.slurm.node_boots_text(&self.targets).await);
            let at = cx.clock.now();
            cx.record(at, || Raw::Scontrol {
                nodes: nodes.clone(),
            });
            Boots::decode(&nodes, offset, at)
        })
    }
}
