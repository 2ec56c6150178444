//! The scenario language against real files: every shipped scenario and
//! suite validates, the committed schemas are current, and every broken
//! file under tests/broken/ yields exactly the diagnostics it declares in
//! its trailing `# expect: LINE:COL text` comments.

// A test's unwrap is a failed assertion with its cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hpchaos::scenario::schema::{SchemaKind, schema_text};
use hpchaos::scenario::{self, Diagnostic, FileKind};
use hpchaos::validate::validate;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_file_validates() {
    let files = yaml_files("scenarios");
    let outcomes = validate(&files, None);
    for outcome in &outcomes {
        if let Err(diagnostics) = &outcome.result {
            panic!("{}", diagnostics.render(&outcome.text));
        }
    }
    // Scenarios named both on the command line and by the suite count once.
    assert_eq!(outcomes.len(), files.len());
}

#[test]
fn shipped_scenarios_cover_every_fault_kind_and_method() {
    let mut seen = std::collections::BTreeSet::new();
    let mut suites = 0;
    for path in yaml_files("scenarios") {
        let text = std::fs::read_to_string(&path).unwrap();
        if FileKind::detect(&text) == FileKind::Suite {
            suites += 1;
            continue;
        }
        let scenario = scenario::parse_scenario(&path, &text, None).unwrap();
        let json = serde_json::to_value(&scenario.fault).unwrap();
        let (kind, body) = json.as_object().unwrap().iter().next().unwrap();
        let method = body
            .get("method")
            .or_else(|| body.get("tool"))
            .or_else(|| body.get("target"));
        let method = method.map(|m| {
            m.as_str().map_or_else(
                || m.as_object().unwrap().keys().next().unwrap().clone(),
                str::to_owned,
            )
        });
        seen.insert(format!("{kind}/{}", method.unwrap_or_default()));
    }
    for expected in [
        "gpu_stress/dcgm_diag",
        "gpu_stress/gpu_burn",
        "process_kill/job_tasks",
        "process_kill/pattern",
        "node_reboot/ssh",
        "node_reboot/slurm",
        "node_reboot/sagemaker",
        "node_replace/slurm",
        "node_replace/sagemaker",
        "xid/dcgm_inject",
        "xid/kernel_log",
        "xid/health_status_file",
    ] {
        assert!(
            seen.contains(expected),
            "no shipped scenario for {expected}; have {seen:?}"
        );
    }
    assert!(suites >= 1, "no shipped suite");
}

#[test]
fn shipped_files_point_editors_at_the_committed_schema() {
    for path in yaml_files("scenarios") {
        let text = std::fs::read_to_string(&path).unwrap();
        let kind = match FileKind::detect(&text) {
            FileKind::Suite => SchemaKind::Suite,
            FileKind::Profile => SchemaKind::Profile,
            FileKind::Scenario => SchemaKind::Scenario,
        };
        let expected = format!(
            "# yaml-language-server: $schema=../schema/{}",
            kind.file_name()
        );
        assert_eq!(
            text.lines().next(),
            Some(expected.as_str()),
            "{}",
            path.display()
        );
    }
}

#[test]
fn committed_schemas_are_current() {
    for kind in SchemaKind::ALL {
        let path = root().join("schema").join(kind.file_name());
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == schema_text(kind),
            "{} is stale: run `cargo run -- schema --kind {kind:?} -o {}` (or `make schema`)",
            path.display(),
            path.display()
        );
    }
}

/// `(line, column, text)` from a file's `# expect:` comments, and the
/// profile named by `# profile:`.
fn expectations(path: &Path) -> (Vec<(u64, u64, String)>, Option<PathBuf>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut expected = Vec::new();
    let mut profile = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# expect: ") {
            let (position, message) = rest.split_once(' ').unwrap();
            let (line_no, column) = position.split_once(':').unwrap();
            expected.push((
                line_no.parse().unwrap(),
                column.parse().unwrap(),
                message.to_owned(),
            ));
        } else if let Some(rest) = line.strip_prefix("# profile: ") {
            profile = Some(path.parent().unwrap().join(rest));
        }
    }
    (expected, profile)
}

#[test]
fn broken_files_yield_exactly_their_declared_diagnostics() {
    let files = yaml_files("tests/broken");
    assert!(files.len() >= 25, "only {} broken files", files.len());
    for path in &files {
        let (expected, profile_path) = expectations(path);
        assert!(
            !expected.is_empty(),
            "{} declares no expectation",
            path.display()
        );
        let profile = profile_path.map(|p| scenario::load_profile(&p).unwrap().value);
        let found: Vec<Diagnostic> = validate(std::slice::from_ref(path), profile.as_ref())
            .into_iter()
            .filter_map(|outcome| outcome.result.err())
            .flat_map(|diagnostics| diagnostics.0)
            .collect();
        let shown: Vec<String> = found.iter().map(Diagnostic::short).collect();
        for (line, column, text) in &expected {
            let hit = found.iter().any(|d| {
                d.file == *path
                    && d.position.line == *line
                    && d.position.column == *column
                    && d.short().contains(text.as_str())
            });
            assert!(
                hit,
                "{}: expected {line}:{column} {text}\nfound:\n{}",
                path.display(),
                shown.join("\n")
            );
        }
        assert_eq!(
            found.len(),
            expected.len(),
            "{}: unexpected extra diagnostics:\n{}",
            path.display(),
            shown.join("\n")
        );
    }
}

#[test]
fn rendered_diagnostics_show_the_line_and_a_caret() {
    let mut rendered = String::new();
    for path in yaml_files("tests/broken") {
        let (_, profile_path) = expectations(&path);
        let profile = profile_path.map(|p| scenario::load_profile(&p).unwrap().value);
        for outcome in validate(std::slice::from_ref(&path), profile.as_ref()) {
            if let Err(diagnostics) = outcome.result {
                rendered.push_str(&diagnostics.render(&outcome.text));
                rendered.push('\n');
            }
        }
    }
    let rendered = rendered.replace(&format!("{}/", root().display()), "");
    insta::assert_snapshot!("broken_rendered", rendered);
}

fn hpchaos(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hpchaos"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn validate_exits_0_on_valid_files_and_2_on_invalid_ones() {
    let ok = hpchaos(&[
        "validate",
        "scenarios/xid79-reboot.yaml",
        "scenarios/nightly.suite.yaml",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = hpchaos(&[
        "validate",
        "--short",
        "tests/broken/02-nested-key-typo.yaml",
        "scenarios/gpu-burn.yaml",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr
            .starts_with("tests/broken/02-nested-key-typo.yaml:8:3: error: unknown key `deadlin`"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(
        stdout.contains("1 file(s) valid, 1 invalid, 1 problem(s)"),
        "{stdout}"
    );
}

#[test]
fn validate_with_a_profile_applies_cluster_checks() {
    let without = hpchaos(&["validate", "scenarios/node-reboot-api.yaml"]);
    assert_eq!(without.status.code(), Some(0));
    let with = hpchaos(&[
        "validate",
        "--short",
        "scenarios/node-reboot-api.yaml",
        "--cluster",
        "tests/profiles/no-sagemaker.yaml",
    ]);
    assert_eq!(with.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&with.stderr).contains("has no `sagemaker` settings"));
}

#[test]
fn a_missing_file_is_invalid_input_not_a_panic() {
    let out = hpchaos(&["validate", "no/such/file.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read no/such/file.yaml"));
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = hpchaos(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        schema_text(SchemaKind::Scenario)
    );
}

#[test]
fn completions_are_generated() {
    let out = hpchaos(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("validate"));
}

/// `validate --cluster` checks offline what a run checks first: the files
/// the profile names exist and can be read, known_hosts holds the head
/// node's key, and every name is a host name. Each problem names the
/// setting's line and the fix.
#[test]
fn validate_checks_a_profiles_files_and_names_offline() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let empty_known_hosts = write(
        "known_hosts",
        "10.9.0.99 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    );
    let cases = [
        (
            format!("name: c\nhead_node: {{ name: ip-10-9-0-10 }}\nssh:\n  user: u\n  key: {}/no-such-key\n  known_hosts: tests/profiles/known_hosts\n", dir.path().display()),
            "5:8: error: ssh.key: cannot read",
        ),
        (
            format!("name: c\nhead_node: {{ name: ip-10-9-0-10 }}\nssh:\n  user: u\n  known_hosts: {}/missing\n", dir.path().display()),
            "5:16: error: ssh.known_hosts: cannot read",
        ),
        (
            format!("name: c\nhead_node: {{ name: ip-10-9-0-10 }}\nssh:\n  user: u\n  known_hosts: {empty_known_hosts}\n"),
            "has no host key for ip-10-9-0-10 (10.9.0.10 port 22)",
        ),
        (
            "name: c\nhead_node: { name: ip-10-9-0-10 }\nssh:\n  user: u\n  known_hosts: tests/profiles/known_hosts\nsagemaker:\n  cluster_name: x\n  region: us-west-2\n  credentials_file: /no/such/credentials\n".to_owned(),
            "9:21: error: sagemaker.credentials_file: cannot read /no/such/credentials",
        ),
        (
            "name: c\nhead_node: { name: ip-10-9-0-10 }\nlogin_nodes: ['login;reboot']\naddresses: { '$(reboot)': 10.9.0.11 }\nssh:\n  user: u\n  known_hosts: tests/profiles/known_hosts\n".to_owned(),
            "is not a host name",
        ),
        (
            format!("name: c\nhead_node: {{ name: ip-10-9-0-10 }}\nssh:\n  known_hosts: tests/profiles/known_hosts\n  config: {}/no-ssh-config\n", dir.path().display()),
            "5:11: error: cannot read",
        ),
        (
            "name: c\nhead_node: { name: ip-10-9-0-10 }\nssh:\n  known_hosts: tests/profiles/known_hosts\n  proxy_command: 'socat - TCP:%x:%p'\n".to_owned(),
            "5:18: error: ssh.proxy_command: unknown token `%x`",
        ),
        (
            "name: c\nhead_node: { name: ip-10-9-0-10 }\nssh:\n  known_hosts: tests/profiles/known_hosts\n  proxy_command: ''\n".to_owned(),
            "ssh.proxy_command is empty",
        ),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let profile = write(&format!("p{index}.yaml"), text);
        let out = hpchaos(&["validate", "--short", &profile]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {index}: {stderr}");
        assert!(stderr.contains(expected), "case {index}: {stderr}");
        // The same through --cluster.
        let out = hpchaos(&[
            "validate",
            "--short",
            "scenarios/gpu-burn.yaml",
            "--cluster",
            &profile,
        ]);
        assert_eq!(out.status.code(), Some(2), "case {index} via --cluster");
    }
    let names = hpchaos(&[
        "validate",
        "--short",
        &dir.path().join("p4.yaml").display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&names.stderr);
    assert!(
        stderr.contains("`login;reboot` is not a host name")
            && stderr.contains("`$(reboot)` is not a host name"),
        "{stderr}"
    );
    // The shipped fixture profile is fine.
    let ok = hpchaos(&["validate", "tests/profiles/no-sagemaker.yaml"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn scenario_node_names_must_be_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, "name: s\ntarget:\n  pool: { nodes: ['ip-10-1-0-11;reboot'] }\nfault:\n  process_kill: { target: slurmd }\nexpect:\n  recovery: none\n  quiet_for: 10s\n").unwrap();
    let out = hpchaos(&["validate", "--short", &path.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("3:19: error: `ip-10-1-0-11;reboot` is not a node name"),
        "{stderr}"
    );
}
