//! hpchaos: a fault-injection chaos harness for Slurm GPU clusters on
//! Amazon SageMaker HyperPod. This library holds the harness; the `hpchaos`
//! command (the workspace's root package) parses the command line and
//! calls in, and the lab (crates/hpchaos-lab) is a crate of its own that
//! this one does not depend on.
//!
//! The pipeline, each arrow one way (docs/DESIGN.md has the reasons):
//!
//! ```text
//! scenario.yaml -> Scenario -> Plan -> inject -> Events -> Journal -> Phases -> Report -> exporters
//! ```
//!
//! | arrow | module |
//! |---|---|
//! | file -> [`scenario::model::Scenario`] | [`scenario`] |
//! | Scenario -> targets | [`targets`] (`resolve_targets`, `plan_targets`) |
//! | Scenario -> [`faults::Plan`] | [`faults`] |
//! | Plan -> the cluster (write ahead, lease, fan-out) | [`runner`] |
//! | the cluster -> decoded values | [`cluster`] (`node_state`, `job_state`, `slurm`, `sagemaker`, `controller_log`) |
//! | the cluster's sources -> [`phases::Event`]s | [`observe`] (one file per source, behind [`observe::Source`]) |
//! | events -> journal | [`runner`]'s watch (scheduling, judging, journaling) |
//! | everything -> [`journal::Record`] | [`journal`]; each record then to the report [`report::Builder`] and the live view |
//! | journal -> phases | [`phases`] (pure) |
//! | journal -> [`report::Report`] -> md / json / junit / table / prometheus | [`report`] (pure fold, one exporter each) |
//! | reports -> history, trends, gates | [`history`] |
//! | the monitoring's view | [`monitoring`] (read), [`observe`]'s monitoring source |
//! | results -> the monitoring | [`publish`] (Pushgateway, remote write) |
//! | time | [`clock`] (wall-clock time is read through it: clippy.toml's `disallowed-methods`), [`duration`] |
//! | exit codes | the CLI (`src/exit.rs`), from a report's status |
//!
//! The modules in layers, upstream first. A module uses only modules in
//! the layers above its own; the unit test `arrows` reads this list and
//! checks every `crate::` path (and `super::` path that leaves a module)
//! outside tests against it. The runner is the driver: it calls each stage
//! in turn, so it sits below them all.
//!
//! 1. clock duration output cost throughput: time, words and the pure figures every stage uses
//! 2. profile: the cluster profile's settings
//! 3. cluster: the cluster reached (SSH, Slurm, the SageMaker API) and its words decoded
//! 4. scenario: scenario, suite and profile files loaded and checked
//! 5. targets faults: a scenario's targets resolved, and its fault as a plan
//! 6. preflight: the checks before a run (the profile's files, the cluster, each scenario)
//! 7. validate: files checked without a cluster (`hpchaos validate`)
//! 8. journal: the one record of a run
//! 9. phases: the journal's observations folded into phases
//! 10. monitoring: Prometheus and Alertmanager, read and judged
//! 11. observe: the cluster's sources, each saying what it saw
//! 12. report: the journal folded into a report, and its exporters
//! 13. history: reports kept, trends, gates
//! 14. publish: a scenario's results sent to the monitoring
//! 15. live status: a run and a cluster shown to people
//! 16. runner: the driver (write ahead, inject, watch, roll back)

pub mod clock;
pub mod cluster;
pub mod cost;
pub mod duration;
pub mod faults;
pub mod history;
pub mod journal;
pub mod live;
pub mod monitoring;
pub mod observe;
pub mod output;
pub mod phases;
pub mod preflight;
pub mod profile;
pub mod publish;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod status;
pub mod targets;
pub mod throughput;
pub mod validate;

#[cfg(test)]
mod arrows {
    //! The layers in this file's top comment, checked against the sources.

    use std::collections::BTreeMap;
    use std::path::Path;

    /// Module name -> its layer, from the numbered list in lib.rs's top
    /// comment (`//! 3. cluster: ...`).
    fn layers(lib: &str) -> BTreeMap<String, usize> {
        let line = regex::Regex::new(r"^//! (\d+)\. ([a-z_ ]+):").unwrap();
        let mut layers = BTreeMap::new();
        for text in lib.lines() {
            if let Some(c) = line.captures(text) {
                let layer: usize = c[1].parse().unwrap();
                for name in c[2].split_whitespace() {
                    layers.insert(name.to_owned(), layer);
                }
            }
        }
        layers
    }

    /// The top-level modules a source file names as `crate::x` (or within
    /// `crate::{x, y::z}`), or as `super::x` from a module `depth` deep
    /// (`phases.rs` and `runner/mod.rs` are 1 deep, `runner/watch.rs` 2)
    /// when the `super`s reach the crate's root; outside its tests and
    /// comment lines.
    fn used(source: &str, depth: usize) -> Vec<String> {
        let code = match source.find("#[cfg(test)]") {
            Some(i) => &source[..i],
            None => source,
        };
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut names = Vec::new();
        let mut rest = code.as_str();
        while let Some(i) = rest.find(['c', 's']) {
            rest = &rest[i..];
            let after = if let Some(after) = rest.strip_prefix("crate::") {
                after
            } else if rest.starts_with("super::") {
                let mut after = rest;
                let mut ups = 0;
                while let Some(more) = after.strip_prefix("super::") {
                    after = more;
                    ups += 1;
                }
                if ups < depth {
                    rest = after;
                    continue;
                }
                after
            } else {
                rest = &rest[1..];
                continue;
            };
            rest = after;
            if let Some(group) = after.strip_prefix('{') {
                // Top-level names of the group: depth 0, before `::`, `,` or `}`.
                let (mut level, mut start) = (0, 0);
                for (j, ch) in group.char_indices() {
                    match ch {
                        '{' => level += 1,
                        '}' if level == 0 => {
                            names.push(group[start..j].to_owned());
                            break;
                        }
                        '}' => level -= 1,
                        ',' if level == 0 => {
                            names.push(group[start..j].to_owned());
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
            } else {
                names.push(after.to_owned());
            }
        }
        names
            .iter()
            .filter_map(|n| {
                let n = n.trim();
                let end = n
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(n.len());
                (end > 0).then(|| n[..end].to_owned())
            })
            .collect()
    }

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_module_uses_one_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let layers = layers(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
        assert!(
            layers.len() > 10,
            "the layer list was not found: {layers:?}"
        );
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut wrong = Vec::new();
        for file in &files {
            let rel = file.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_owned();
            if module == "lib" {
                continue;
            }
            let Some(&own) = layers.get(&module) else {
                wrong.push(format!("{module} is in no layer of lib.rs's list"));
                continue;
            };
            // How deep the file's module is: `x.rs` and `x/mod.rs` 1.
            let depth = rel.components().count()
                - usize::from(rel.file_name().is_some_and(|n| n == "mod.rs"));
            for used in used(&std::fs::read_to_string(file).unwrap(), depth) {
                match layers.get(&used) {
                    Some(&theirs) if used != module && theirs >= own => wrong.push(format!(
                        "{} uses {used} (layer {theirs}, not above {module}'s {own})",
                        rel.display()
                    )),
                    _ => {}
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(
            wrong.is_empty(),
            "arrows that run back up:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn the_reader_finds_paths_and_groups() {
        let names = used(
            "use crate::{cluster::{ssh, slurm}, journal};\nlet x = crate::phases::f();\n// crate::report\n#[cfg(test)]\nuse crate::runner;",
            1,
        );
        assert_eq!(names, vec!["cluster", "journal", "phases"]);
        // `super::` leaves the module only when it climbs past its depth.
        assert_eq!(used("use super::report::Report;", 1), vec!["report"]);
        assert_eq!(used("use super::watch::Seen;", 2), Vec::<String>::new());
        assert_eq!(used("use super::super::history::gate;", 2), vec!["history"]);
        // A `//` inside a string does not hide the rest of the line.
        assert_eq!(
            used("let u = \"http://x\"; crate::clock::now()", 1),
            vec!["clock"]
        );
        let layers = layers("//! 1. clock duration: time\n//! 2. profile: settings\n");
        assert_eq!(layers.get("duration"), Some(&1));
        assert_eq!(layers.get("profile"), Some(&2));
    }
}
