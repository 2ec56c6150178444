//! The scenario language against real files: every shipped scenario and
//! suite validates, the committed schemas are current, and every broken
//! file under tests/broken/ yields exactly the diagnostics it declares in
//! its trailing `# expect: LINE:COL text` comments.

use crate::support::hpchaos;
use std::path::{Path, PathBuf};

use crate::support::root;

use hpchaos::scenario::schema::{SchemaKind, schema_text};
use hpchaos::scenario::{self, Diagnostic, FileKind};
use hpchaos::validate::validate;

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

/// The diagnostics one broken file yields are exactly those it declares.
fn check_broken(name: &str) {
    let path = root().join("tests/broken").join(name);
    let path = &path;
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

/// One named test per broken file (a failure names the file), and the
/// list of them, which `every_broken_file_has_its_own_test` holds to the
/// folder.
macro_rules! broken_files {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_broken($file);
            }
        )*
        const BROKEN_FILES: &[&str] = &[$($file),*];
    };
}

broken_files! {
    broken_01_unknown_top_level_key => "01-unknown-top-level-key.yaml",
    broken_02_nested_key_typo => "02-nested-key-typo.yaml",
    broken_03_bad_duration_unit => "03-bad-duration-unit.yaml",
    broken_04_duration_without_unit => "04-duration-without-unit.yaml",
    broken_05_missing_fault => "05-missing-fault.yaml",
    broken_06_missing_recovery => "06-missing-recovery.yaml",
    broken_07_unknown_fault_kind => "07-unknown-fault-kind.yaml",
    broken_08_two_faults => "08-two-faults.yaml",
    broken_09_unknown_recovery => "09-unknown-recovery.yaml",
    broken_10_wrong_type_string_for_number => "10-wrong-type-string-for-number.yaml",
    broken_11_max_nodes_zero => "11-max-nodes-zero.yaml",
    broken_12_xid_method_typo => "12-xid-method-typo.yaml",
    broken_13_dcgm_level_out_of_range => "13-dcgm-level-out-of-range.yaml",
    broken_14_tags_not_a_list => "14-tags-not-a-list.yaml",
    broken_15_deadlines_out_of_order => "15-deadlines-out-of-order.yaml",
    broken_16_deadline_for_other_recovery => "16-deadline-for-other-recovery.yaml",
    broken_17_stress_cannot_replace => "17-stress-cannot-replace.yaml",
    broken_18_requeue_without_workload => "18-requeue-without-workload.yaml",
    broken_19_workload_pool_without_workload => "19-workload-pool-without-workload.yaml",
    broken_20_invalid_progress_regex => "20-invalid-progress-regex.yaml",
    broken_21_progress_without_capture_group => "21-progress-without-capture-group.yaml",
    broken_22_pick_above_cap => "22-pick-above-cap.yaml",
    broken_23_explicit_nodes_above_cap => "23-explicit-nodes-above-cap.yaml",
    broken_24_reason_wrong_case => "24-reason-wrong-case.yaml",
    broken_25_abort_before_deadline => "25-abort-before-deadline.yaml",
    broken_26_quiet_for_with_replace => "26-quiet-for-with-replace.yaml",
    broken_27_api_method_without_sagemaker => "27-api-method-without-sagemaker.yaml",
    broken_28_targets_controller => "28-targets-controller.yaml",
    broken_29_yaml_tab_indentation => "29-yaml-tab-indentation.yaml",
    broken_30_duplicate_key => "30-duplicate-key.yaml",
    broken_31_unknown_signal => "31-unknown-signal.yaml",
    broken_32_empty_fault => "32-empty-fault.yaml",
    broken_33_name_with_spaces => "33-name-with-spaces.yaml",
    broken_34_gpus_typo => "34-gpus-typo.yaml",
    broken_35_suite_missing_scenario => "35-suite-missing-scenario.yaml",
    broken_36_several_mistakes_at_once => "36-several-mistakes-at-once.yaml",
    broken_37_stress_without_duration => "37-stress-without-duration.yaml",
    broken_38_regression_without_percent_sign => "38-regression-without-percent-sign.yaml",
    broken_39_regression_phase_not_timed => "39-regression-phase-not-timed.yaml",
    broken_40_monitoring_mistakes => "40-monitoring-mistakes.yaml",
    broken_41_progress_mistakes => "41-progress-mistakes.yaml",
    broken_42_stop_condition_mistakes => "42-stop-condition-mistakes.yaml",
    broken_43_step_mistakes => "43-step-mistakes.yaml",
    broken_44_slurm_pool_typo => "44-slurm-pool-typo.yaml",
    broken_45_training_failure_mistakes => "45-training-failure-mistakes.yaml",
    broken_46_frozen_path_mistakes => "46-frozen-path-mistakes.yaml",
    broken_47_network_peer_mistakes => "47-network-peer-mistakes.yaml",
    broken_48_hang_without_a_job => "48-hang-without-a-job.yaml",
    broken_49_setting_beside_its_kind => "49-setting-beside-its-kind.yaml",
    broken_50_unit_kind_as_mapping => "50-unit-kind-as-mapping.yaml",
    broken_51_stall_after_the_deadline => "51-stall-after-the-deadline.yaml",
    broken_52_cpu_quota_of_nothing => "52-cpu-quota-of-nothing.yaml",
    broken_53_straggler_without_a_warm_up => "53-straggler-without-a-warm-up.yaml",
}

#[test]
fn every_broken_file_has_its_own_test() {
    let on_disk: Vec<String> = yaml_files("tests/broken")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        on_disk, BROKEN_FILES,
        "add a line to broken_files! for each file"
    );
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
        // And from `run` and `plan`, which check the same before they ask
        // the cluster anything: invalid input, exit 2, as from validate.
        for command in ["run", "plan"] {
            let out = hpchaos(&[command, "scenarios/gpu-burn.yaml", "--cluster", &profile]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "case {index} via {command}: {stderr}"
            );
        }
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
