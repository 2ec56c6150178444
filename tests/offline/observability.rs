//! The files of `observability/` as a user loads them: promtool (Debian's
//! `prometheus` package) accepts the alert rules and their unit tests pass
//! (an Xid pages at once and after its node is gone, a drained node pages,
//! a down exporter pages after two minutes); the Grafana dashboard is JSON
//! that plots hpchaos's pushed series and marks the injections.

use std::process::Command;

use crate::support::root;

/// promtool's answer to `args`: whether it succeeded, and what it said.
/// `None` when promtool is not installed and the run does not require the
/// packages `make setup` installs (`make test-quick` on a bare machine:
/// said, not passed silently); `make test` sets HPCHAOS_REQUIRE_LAB, and
/// then a missing promtool fails.
fn promtool(args: &[&str]) -> Option<(bool, String)> {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
    {
        Ok(out) => out,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var_os("HPCHAOS_REQUIRE_LAB").is_none() =>
        {
            eprintln!(
                "skipped: promtool is not installed (package prometheus; `make setup` installs it)"
            );
            return None;
        }
        Err(e) => panic!("promtool (package prometheus; `make setup` installs it): {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn the_alert_rules_load_and_their_tests_pass() {
    let Some((ok, text)) = promtool(&["check", "rules", "observability/alerts.yml"]) else {
        return;
    };
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS: 7 rules found"), "{text}");
    let Some((ok, text)) = promtool(&["test", "rules", "observability/alerts.test.yml"]) else {
        return;
    };
    assert!(ok, "{text}");
}

#[test]
fn the_dashboard_plots_the_pushed_series() {
    let text =
        std::fs::read_to_string(root().join("observability/grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    for metric in [
        "hpchaos_phase_seconds",
        "hpchaos_scenario_passed",
        "hpchaos_monitoring_seconds",
        "hpchaos_failure_gpu_hours",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(metric)),
            "{metric} not plotted"
        );
    }
    let annotation = &dashboard["annotations"]["list"][0];
    assert!(
        annotation["expr"]
            .as_str()
            .unwrap()
            .contains("hpchaos_injection_timestamp_seconds"),
        "{annotation}"
    );
    // Every metric the dashboard names is one hpchaos pushes.
    let exporter =
        std::fs::read_to_string(root().join("crates/hpchaos-core/src/report/prometheus.rs"))
            .unwrap();
    for expr in &exprs {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("hpchaos_"))
        {
            assert!(
                exporter.contains(&format!("\"{name}\"")),
                "{name} is not pushed"
            );
        }
    }
}
