//! What training frameworks print into a Slurm job's output: the line
//! that gives the step, the line that says a checkpoint was saved, the
//! line that says the job resumed from one. Each preset is tested on the
//! framework's real output (`tests/fixtures/frameworks/`, with sources).
//! Steps may print as numbers (`global_step=794.0`, `1.2e+4`): each
//! progress pattern captures a number, read by
//! [`crate::observe::job_output::parse_step`].

use super::model::Framework;

/// One framework's lines, as regular expressions (first group: a step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub progress: &'static str,
    pub checkpoint: &'static str,
    pub resumed: &'static str,
}

/// A number as frameworks print steps: `12`, `794.0`, `1.2e+4`.
macro_rules! number {
    () => {
        r"([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    };
}

/// The preset of `framework`. Sources: each framework's own format
/// strings (cited per arm) and real output pasted in public issues
/// (`tests/fixtures/frameworks/`, one file per framework, with sources).
pub fn preset(framework: Framework) -> Preset {
    match framework {
        // megatron/training/training.py `training_log` (printed by the
        // last rank): ` [2024-04-06 02:55:45] iteration      2/    100 |`;
        // checkpointing.py (rank 0): `  successfully saved checkpoint at
        // iteration     100` (v2.x), `from iteration` (core_v0.9+),
        // `  successfully loaded checkpoint from /ckpt [ t 1/2, p 1/1 ] at
        // iteration 100`.
        Framework::Megatron => Preset {
            progress: r"\biteration\s+([0-9]+)\s*/\s*[0-9]+\s*\|",
            checkpoint: r"(?i)successfully saved (?:local )?checkpoint (?:at|from) iteration\s+([0-9]+)",
            resumed: r"successfully loaded checkpoint from \S+ .*at iteration\s+([0-9]+)",
        },
        // Lightning's bar postfix `global_step=794.0` (a float metric:
        // `9.000`, `1.2e+4` once tqdm's `{:.3g}` is shorter; NeMo 1 and
        // NeMo 2 with the bar), NeMo 2's line printer `global_step: 120`;
        // NeMo's `Successfully saved checkpoint from iteration      49`,
        // `Async checkpoint save for step 50 (...) finalized`; Lightning's
        // `Restored all states from the checkpoint at .../epoch=249-step=55000.ckpt`.
        Framework::Nemo => Preset {
            progress: concat!(r"\bglobal_step[=:]\s*", number!()),
            checkpoint: r"(?i)successfully saved checkpoint from iteration\s+([0-9]+)|Async checkpoint save for step ([0-9]+)|global step ([0-9]+): .*saving model to",
            resumed: r"Restored all states from the checkpoint at \S*?[-_/]step=([0-9]+)|Restored all states from the checkpoint",
        },
        // Lightning: the bar's `global_step=` (logged with prog_bar=True),
        // ModelCheckpoint's verbose `Epoch 0, global step 1000: 'val_loss'
        // reached ... saving model to ...`, checkpoint_connector.py's
        // `Restored all states from the checkpoint at PATH` (the step from
        // the default `epoch=E-step=S.ckpt` name, when there).
        Framework::Lightning => Preset {
            progress: concat!(r"\bglobal_step=", number!()),
            checkpoint: r"global step ([0-9]+): .*saving model to",
            resumed: r"Restored all states from the checkpoint at \S*?[-_/]step=([0-9]+)|Restored all states from the checkpoint",
        },
        // transformers trainer_callback.py ProgressCallback: tqdm over
        // global steps, ` 50%|█████     | 500/1000 [00:50<00:50, ...]`;
        // trainer.py (log_level="info"): `Saving model checkpoint to
        // out/checkpoint-500`, `  Continuing training from global step 500`
        // (4.x), `Resuming training from checkpoint with epoch 0 and global
        // step 500` (5.x).
        Framework::HfTrainer => Preset {
            progress: r"[0-9]+%\|[^|]*\|\s*([0-9]+)/[0-9]+\s*\[",
            checkpoint: r"Saving model checkpoint to \S*?checkpoint-([0-9]+)",
            resumed: r"(?:Continuing training from global step|Resuming training from checkpoint with epoch [0-9]+ and global step) ([0-9]+)",
        },
        // torchtitan train.py: `... - root - INFO - step:  4  loss: ...`
        // (colour codes stripped first; `validate step:` is not one);
        // checkpoint.py: `Saving the checkpoint ...`, `Finished saving the
        // checkpoint ...` (no step), `Saving a full checkpoint at last step,
        // step 1000.`; `Loading the checkpoint at step 400.` (to mid 2025),
        // `Loading the checkpoint from ./outputs/checkpoint/step-600.`.
        Framework::Torchtitan => Preset {
            progress: r"(?:^|- )step:\s*([0-9]+)\s",
            checkpoint: r"at last step, step ([0-9]+)|(?:Saving|Staging) the checkpoint|Finished (?:saving|staging) the checkpoint",
            resumed: r"Loading the checkpoint (?:at step ([0-9]+)|from \S*?step-([0-9]+))",
        },
        // `step 12`, `step: 12`, `step=12`, `Step 12` (and TF's `global
        // step 1: loss`), the lab's `checkpoint saved at step 20` and
        // `resumed from checkpoint at step 20`, `loaded checkpoint
        // /fsx/ckpt/step_1000`.
        Framework::Plain => Preset {
            progress: concat!(r"(?i)\bstep[\s:=]+", number!()),
            checkpoint: r"(?i)checkpoint (?:saved|written)(?: at step ([0-9]+))?|sav(?:ed|ing) checkpoint",
            resumed: r"(?i)(?:resum|load|restor)\w* (?:from )?(?:the )?checkpoint(?:\D*?([0-9]+))?",
        },
    }
}

/// Every framework, for tests and the schema's words.
pub const ALL: [Framework; 6] = [
    Framework::Megatron,
    Framework::Nemo,
    Framework::Lightning,
    Framework::HfTrainer,
    Framework::Torchtitan,
    Framework::Plain,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::job_output::{Patterns, Update};
    use crate::scenario::model::Progress;

    /// Each framework's real lines (`tests/fixtures/frameworks/NAME.txt`)
    /// read with its preset: the steps, checkpoints and resumes its
    /// `# expect` lines name, in order (`none`: said without a step).
    #[test]
    fn every_preset_reads_its_frameworks_real_output() {
        let files = [
            (
                Framework::Megatron,
                include_str!("../../../../tests/fixtures/frameworks/megatron.txt"),
            ),
            (
                Framework::Nemo,
                include_str!("../../../../tests/fixtures/frameworks/nemo.txt"),
            ),
            (
                Framework::Lightning,
                include_str!("../../../../tests/fixtures/frameworks/lightning.txt"),
            ),
            (
                Framework::HfTrainer,
                include_str!("../../../../tests/fixtures/frameworks/hf_trainer.txt"),
            ),
            (
                Framework::Torchtitan,
                include_str!("../../../../tests/fixtures/frameworks/torchtitan.txt"),
            ),
            (
                Framework::Plain,
                include_str!("../../../../tests/fixtures/frameworks/plain.txt"),
            ),
        ];
        for (framework, text) in files {
            let expect = |what: &str| -> Vec<String> {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("# expect {what}: ")))
                    .unwrap_or_else(|| panic!("{framework:?}: no `# expect {what}`"))
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            };
            let patterns = Patterns::of(&Progress {
                framework: Some(framework),
                ..Progress::default()
            })
            .unwrap();
            let updates: Vec<Update> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| Update::of(l, Some(&patterns)))
                .collect();
            let said = |v: Option<u64>| v.map_or("none".to_owned(), |s| s.to_string());
            let steps: Vec<String> = updates
                .iter()
                .filter_map(|u| u.step)
                .map(|s| s.value.to_string())
                .collect();
            let checkpoints: Vec<String> = updates
                .iter()
                .filter_map(|u| u.checkpoint)
                .map(said)
                .collect();
            let resumed: Vec<String> = updates.iter().filter_map(|u| u.resumed).map(said).collect();
            assert_eq!(steps, expect("steps"), "{framework:?} steps");
            assert_eq!(
                checkpoints,
                expect("checkpoints"),
                "{framework:?} checkpoints"
            );
            assert_eq!(resumed, expect("resumed"), "{framework:?} resumed");
        }
    }

    #[test]
    fn every_preset_compiles_with_a_step_group() {
        for framework in ALL {
            let p = preset(framework);
            let progress = regex::Regex::new(p.progress).unwrap();
            assert!(progress.captures_len() >= 2, "{framework:?}");
            regex::Regex::new(p.checkpoint).unwrap();
            regex::Regex::new(p.resumed).unwrap();
        }
    }

    /// A canary's `progress` keeps the canary's own lines for what it
    /// leaves out; one naming a framework takes that framework's.
    #[test]
    fn a_canarys_progress_keeps_the_canarys_lines_for_what_it_leaves_out() {
        let parse = |progress: &str| {
            let text = format!(
                "name: t\ntarget: {{ pool: workload }}\nworkload:\n  canary:\n    nodes: 2\n    progress: {progress}\nfault:\n  hang: {{}}\nexpect:\n  recovery: job_fails\n  deadlines: {{ detect: 12m, job_end: 15m }}\n"
            );
            let scenario =
                crate::scenario::parse_scenario(std::path::Path::new("t.yaml"), &text, None)
                    .unwrap_or_else(|e| panic!("{e:?}"));
            match scenario.workload {
                Some(crate::scenario::model::Workload::Canary(canary)) => canary.progress,
                other => panic!("{other:?}"),
            }
        };
        let kept = parse("{ stalled_after: 2m }");
        let canary = Progress::canary_default();
        assert_eq!(kept.pattern, canary.pattern);
        assert_eq!(kept.checkpoint, canary.checkpoint);
        assert_eq!(kept.resumed, canary.resumed);
        assert_eq!(kept.stalled_after, Some("2m".parse().unwrap()));
        let own = parse(r"{ pattern: 'iter (\d+)' }");
        assert_eq!(own.pattern.as_deref(), Some(r"iter (\d+)"));
        assert_eq!(own.checkpoint, canary.checkpoint);
        let framework = parse("{ framework: megatron }");
        assert_eq!(framework.pattern, None);
        assert_eq!(framework.checkpoint, None);
    }
}
