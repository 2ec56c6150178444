//! The resiliency score, after Gremlin's reliability score and krkn's
//! resiliency score: one number a team tracks over time. Each scenario
//! scores by its latest verdict in the history: **100** passed within the
//! staleness window (its schedule), **75** passed but longer ago, **50**
//! failed, **0** never run to a verdict. A run that ended `aborted`,
//! `error`, `interrupted` or `incomplete` is no verdict on the cluster's
//! resilience and is passed over. Categories are the scenarios' tags
//! (`untagged` for none); a category's score is the mean of its
//! scenarios', the overall score the mean of all scenarios'. Pure: the
//! history and the catalogue go in, the score comes out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::ScenarioRun;
use crate::report::Status;

/// Points per standing.
pub const PASSED: u32 = 100;
pub const PASSED_STALE: u32 = 75;
pub const FAILED: u32 = 50;
pub const NEVER_RUN: u32 = 0;

/// The staleness window when none is given: a week.
pub const DEFAULT_STALE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Category of scenarios without tags.
pub const UNTAGGED: &str = "untagged";

/// One scenario's score and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScenarioScore {
    pub scenario: String,
    pub categories: Vec<String>,
    pub points: u32,
    /// `passed 1d ago`, `passed 9d ago (older than 7d)`, `failed 2h ago:
    /// REASON`, `no verdict yet: its last run ...`, `never run`.
    pub why: String,
    /// The verdict's run, when there is one.
    pub run_id: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

/// A category's score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CategoryScore {
    pub category: String,
    pub score: f64,
    pub scenarios: usize,
}

/// The whole score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Score {
    /// Mean over every scenario (0 when there is none).
    pub overall: f64,
    pub categories: Vec<CategoryScore>,
    pub scenarios: Vec<ScenarioScore>,
    /// The staleness window, in seconds.
    pub stale_after_seconds: u64,
}

/// Scores, at `now`, the scenarios of `catalogue` (name and tags: the
/// scenarios a team means to run, e.g. its suite's files) when it is not
/// empty, else every scenario `runs` holds (newest first, as the store
/// gives them; tags from its latest run).
pub fn score(
    runs: &[ScenarioRun],
    catalogue: &[(String, Vec<String>)],
    now: DateTime<Utc>,
    stale: std::time::Duration,
) -> Score {
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if catalogue.is_empty() {
        for run in runs {
            tags.entry(run.scenario.clone())
                .or_insert_with(|| run.tags.clone());
        }
    }
    for (name, own) in catalogue {
        tags.insert(name.clone(), own.clone());
    }
    let stale_after = chrono::TimeDelta::from_std(stale).unwrap_or(chrono::TimeDelta::MAX);
    let mut scenarios = Vec::new();
    for (name, own) in &tags {
        let verdict = runs
            .iter()
            .find(|r| &r.scenario == name && matches!(r.status, Status::Passed | Status::Failed));
        let categories = if own.is_empty() {
            vec![UNTAGGED.to_owned()]
        } else {
            own.clone()
        };
        // The latest run that was no verdict, said when there is none.
        let last = runs.iter().find(|r| &r.scenario == name);
        let (points, why) = match verdict {
            None => (
                NEVER_RUN,
                match last {
                    Some(run) => format!(
                        "no verdict yet: its last run ({}) ended {}{}",
                        ago(now - run.started_at),
                        run.status.as_str(),
                        if run.reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", run.reason)
                        }
                    ),
                    None => "never run".to_owned(),
                },
            ),
            Some(run) => {
                let age = now - run.started_at;
                let ago = ago(age);
                match run.status {
                    Status::Passed if age <= stale_after => (PASSED, format!("passed {ago}")),
                    Status::Passed => (
                        PASSED_STALE,
                        format!("passed {ago} (older than {})", ago_words(stale.as_secs())),
                    ),
                    _ => (FAILED, format!("failed {ago}: {}", run.reason)),
                }
            }
        };
        scenarios.push(ScenarioScore {
            scenario: name.clone(),
            categories,
            points,
            why,
            run_id: verdict.map(|r| r.run_id.clone()),
            at: verdict.map(|r| r.started_at),
        });
    }
    let mut by_category: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for s in &scenarios {
        for c in &s.categories {
            by_category.entry(c.clone()).or_default().push(s.points);
        }
    }
    let mean = |points: &[u32]| {
        if points.is_empty() {
            0.0
        } else {
            f64::from(points.iter().sum::<u32>()) / points.len() as f64
        }
    };
    let all: Vec<u32> = scenarios.iter().map(|s| s.points).collect();
    Score {
        overall: mean(&all),
        categories: by_category
            .iter()
            .map(|(category, points)| CategoryScore {
                category: category.clone(),
                score: mean(points),
                scenarios: points.len(),
            })
            .collect(),
        scenarios,
        stale_after_seconds: stale.as_secs(),
    }
}

fn ago(age: chrono::TimeDelta) -> String {
    format!("{} ago", ago_words(age.num_seconds().max(0) as u64))
}

/// `3d`, `5h`, `12m`, `40s`: the largest whole unit.
fn ago_words(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The score as a table (or Markdown): the overall figure, each category,
/// then each scenario with why.
pub fn render(score: &Score, markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        out.push_str(&format!(
            "## Resiliency score: {:.1}\n\nEach scenario's latest verdict: passed within {} = 100, passed longer ago = 75, failed = 50, never run = 0; a category is the mean of its scenarios.\n\n| category | score | scenarios |\n|---|---:|---:|\n",
            score.overall,
            ago_words(score.stale_after_seconds)
        ));
        for c in &score.categories {
            out.push_str(&format!(
                "| {} | {:.0} | {} |\n",
                c.category, c.score, c.scenarios
            ));
        }
        out.push_str("\n| scenario | categories | points | why |\n|---|---|---:|---|\n");
        for s in &score.scenarios {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                s.scenario,
                s.categories.join(", "),
                s.points,
                s.why.replace('|', "\\|")
            ));
        }
        out.push('\n');
        return out;
    }
    out.push_str(&format!(
        "resiliency score: {:.1} ({} scenario(s); passed within {} = 100, older = 75, failed = 50, no verdict = 0)\n",
        score.overall,
        score.scenarios.len(),
        ago_words(score.stale_after_seconds)
    ));
    for c in &score.categories {
        out.push_str(&format!(
            "  {:<20} {:>5.1}  ({} scenario(s))\n",
            c.category, c.score, c.scenarios
        ));
    }
    for s in &score.scenarios {
        out.push_str(&format!("  {:>3}  {}: {}\n", s.points, s.scenario, s.why));
    }
    out
}

/// The score as Prometheus text: `hpchaos_resiliency_score{category}`
/// (`category="all"` for the overall) and one series per scenario.
pub fn prometheus(score: &Score) -> String {
    let label = crate::report::prometheus::escape_label;
    let mut out = String::from(
        "# HELP hpchaos_resiliency_score Resiliency score (0-100): each scenario's latest verdict, passed 100, passed but stale 75, failed 50, never run 0.\n# TYPE hpchaos_resiliency_score gauge\n",
    );
    out.push_str(&format!(
        "hpchaos_resiliency_score{{category=\"all\"}} {}\n",
        score.overall
    ));
    for c in &score.categories {
        out.push_str(&format!(
            "hpchaos_resiliency_score{{category=\"{}\"}} {}\n",
            label(&c.category),
            c.score
        ));
    }
    out.push_str("# HELP hpchaos_scenario_resiliency_points A scenario's points in the resiliency score.\n# TYPE hpchaos_scenario_resiliency_points gauge\n");
    for s in &score.scenarios {
        out.push_str(&format!(
            "hpchaos_scenario_resiliency_points{{scenario=\"{}\"}} {}\n",
            label(&s.scenario),
            s.points
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + day * 86_400, 0).unwrap()
    }

    fn run(name: &str, day: i64, status: Status, tags: &[&str]) -> ScenarioRun {
        ScenarioRun {
            run_id: format!("run-{name}-{day}"),
            dir: String::new(),
            scenario: name.into(),
            started_at: t(day),
            status,
            reason: if status == Status::Passed {
                String::new()
            } else {
                "detect missed".into()
            },
            lost_steps: None,
            gpu_hours_lost: None,
            ettr: None,
            slowdown: None,
            tags: tags.iter().map(|s| (*s).to_owned()).collect(),
            phases: Vec::new(),
        }
    }

    #[test]
    fn each_standing_scores_as_gremlin_does_and_categories_average() {
        // Newest first, as the store gives them.
        let runs = vec![
            run("xid48", 9, Status::Passed, &["gpu"]),
            run("xid79", 8, Status::Error, &["gpu"]),
            run("xid79", 7, Status::Failed, &["gpu"]),
            run("reboot", 1, Status::Passed, &["node"]),
            run("kill", 9, Status::Aborted, &[]),
        ];
        // The scenarios meant to run: those with runs, and one never run.
        let catalogue: Vec<(String, Vec<String>)> = [
            ("xid48", vec!["gpu"]),
            ("xid79", vec!["gpu"]),
            ("reboot", vec!["node"]),
            ("kill", vec![]),
            ("replace", vec!["node"]),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t.into_iter().map(str::to_owned).collect()))
        .collect();
        let score = score(&runs, &catalogue, t(10), DEFAULT_STALE);
        let points: BTreeMap<&str, u32> = score
            .scenarios
            .iter()
            .map(|s| (s.scenario.as_str(), s.points))
            .collect();
        assert_eq!(points["xid48"], 100);
        // An error is no verdict: the failure before it stands.
        assert_eq!(points["xid79"], 50);
        assert_eq!(points["reboot"], 75);
        assert_eq!(points["kill"], 0);
        let kill = score
            .scenarios
            .iter()
            .find(|s| s.scenario == "kill")
            .unwrap();
        assert!(
            kill.why
                .starts_with("no verdict yet: its last run (1d ago) ended aborted"),
            "{}",
            kill.why
        );
        assert_eq!(points["replace"], 0);
        assert_eq!(score.overall, 45.0);
        let categories: BTreeMap<&str, f64> = score
            .categories
            .iter()
            .map(|c| (c.category.as_str(), c.score))
            .collect();
        assert_eq!(categories["gpu"], 75.0);
        assert_eq!(categories["node"], 37.5);
        assert_eq!(categories[UNTAGGED], 0.0);
        let why: Vec<&str> = score.scenarios.iter().map(|s| s.why.as_str()).collect();
        assert!(why.contains(&"passed 9d ago (older than 7d)"), "{why:?}");
        assert!(why.contains(&"failed 3d ago: detect missed"), "{why:?}");
        // A shorter window makes a fresh pass stale.
        let day = std::time::Duration::from_secs(86_400);
        let tight = super::score(&runs, &catalogue, t(9) + chrono::TimeDelta::hours(2), day);
        let xid48 = tight
            .scenarios
            .iter()
            .find(|s| s.scenario == "xid48")
            .unwrap();
        assert_eq!(xid48.points, 100);
        let tight = super::score(&runs, &catalogue, t(10) + chrono::TimeDelta::hours(2), day);
        let xid48 = tight
            .scenarios
            .iter()
            .find(|s| s.scenario == "xid48")
            .unwrap();
        assert_eq!(xid48.points, 75);
    }

    #[test]
    fn it_is_exported_per_category_and_scenario() {
        let runs = vec![run("xid48", 9, Status::Passed, &["gpu"])];
        let text = prometheus(&score(&runs, &[], t(10), DEFAULT_STALE));
        assert!(
            text.contains("hpchaos_resiliency_score{category=\"all\"} 100\n"),
            "{text}"
        );
        assert!(
            text.contains("hpchaos_resiliency_score{category=\"gpu\"} 100\n"),
            "{text}"
        );
        assert!(
            text.contains("hpchaos_scenario_resiliency_points{scenario=\"xid48\"} 100\n"),
            "{text}"
        );
        let none = score(&[], &[], t(10), DEFAULT_STALE);
        assert_eq!(none.overall, 0.0);
        assert!(render(&none, true).contains("## Resiliency score: 0.0"));
        // A catalogue scopes the score to itself.
        let scoped = score(
            &runs,
            &[("other".into(), vec!["x".into()])],
            t(10),
            DEFAULT_STALE,
        );
        assert_eq!(scoped.scenarios.len(), 1);
        assert_eq!(scoped.scenarios[0].why, "never run");
    }
}
