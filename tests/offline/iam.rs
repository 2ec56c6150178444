//! The IAM policies shipped in contrib/iam/ against the code: the run
//! policy allows exactly the SageMaker actions the code calls, the
//! read-only one exactly the reads; each allows exactly the Amazon Managed
//! Prometheus actions of the endpoints the monitoring client calls, and
//! the SSM session the ProxyCommand opens.

use crate::support::root;

/// The SageMaker actions the code calls: each `.call()` of the SDK client
/// in cluster/sagemaker.rs followed by its operation (`describe_cluster`
/// -> `DescribeCluster`).
fn sagemaker_actions_called() -> std::collections::BTreeSet<String> {
    let source =
        std::fs::read_to_string(root().join("crates/hpchaos-core/src/cluster/sagemaker.rs"))
            .unwrap();
    let call = regex::Regex::new(r"\.call\(\)\s*\.([a-z_]+)\(\)").unwrap();
    call.captures_iter(&source)
        .map(|c| {
            c[1].split('_')
                .map(|w| {
                    let mut chars = w.chars();
                    chars
                        .next()
                        .map(|f| f.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
        })
        .map(|op| format!("sagemaker:{op}"))
        .collect()
}

/// The `service:` actions a shipped IAM policy allows.
fn policy_actions(file: &str, service: &str) -> std::collections::BTreeSet<String> {
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .filter(|a| a.starts_with(&format!("{service}:")))
        .collect()
}

#[test]
fn the_iam_policy_allows_exactly_the_sagemaker_actions_the_code_calls() {
    let called = sagemaker_actions_called();
    assert!(called.contains("sagemaker:ListClusterNodes"), "{called:?}");
    assert_eq!(
        policy_actions("contrib/iam/hpchaos-run.json", "sagemaker"),
        called
    );
    // The read-only policy: the reads, none of the batch actions nor the
    // health check it starts.
    let read_only = policy_actions("contrib/iam/hpchaos-read-only.json", "sagemaker");
    let reads: std::collections::BTreeSet<String> = called
        .iter()
        .filter(|a| !a.starts_with("sagemaker:Batch") && !a.starts_with("sagemaker:Start"))
        .cloned()
        .collect();
    assert_eq!(read_only, reads);
}

/// HMA's record is read with `FilterLogEvents` (cluster/hma.rs), on the
/// cluster's log group only: both policies allow exactly that.
#[test]
fn both_policies_allow_reading_hmas_record_and_nothing_else_of_cloudwatch_logs() {
    let source =
        std::fs::read_to_string(root().join("crates/hpchaos-core/src/cluster/hma.rs")).unwrap();
    let called: std::collections::BTreeSet<String> =
        regex::Regex::new(r"\.(filter_log_events|get_log_events)\(\)")
            .unwrap()
            .captures_iter(&source)
            .map(|c| match &c[1] {
                "filter_log_events" => "logs:FilterLogEvents".to_owned(),
                _ => "logs:GetLogEvents".to_owned(),
            })
            .collect();
    assert!(!called.is_empty());
    for file in [
        "contrib/iam/hpchaos-run.json",
        "contrib/iam/hpchaos-read-only.json",
    ] {
        assert_eq!(policy_actions(file, "logs"), called, "{file}");
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(
            text.contains("log-group:/aws/sagemaker/Clusters/CLUSTER_NAME/CLUSTER_ID:*"),
            "{file}"
        );
    }
}

/// Stop conditions read CloudWatch alarms with `DescribeAlarms` only
/// (cluster/alarms.rs); it allows no resource narrower than `*` (AWS's
/// Service Authorization Reference), and both policies allow exactly it.
#[test]
fn both_policies_allow_reading_alarms_and_nothing_else_of_cloudwatch() {
    let source =
        std::fs::read_to_string(root().join("crates/hpchaos-core/src/cluster/alarms.rs")).unwrap();
    let code = source.split("#[cfg(test)]").next().unwrap();
    let called: std::collections::BTreeSet<String> =
        regex::Regex::new(r"\.(describe_[a-z_]+|put_[a-z_]+|set_[a-z_]+)\(\)")
            .unwrap()
            .captures_iter(code)
            .map(|c| match &c[1] {
                "describe_alarms" => "cloudwatch:DescribeAlarms".to_owned(),
                other => panic!("map {other} to its IAM action"),
            })
            .collect();
    assert_eq!(called.len(), 1, "{called:?}");
    for file in [
        "contrib/iam/hpchaos-run.json",
        "contrib/iam/hpchaos-read-only.json",
    ] {
        assert_eq!(policy_actions(file, "cloudwatch"), called, "{file}");
    }
}

/// The Amazon Managed Prometheus action each Prometheus/Alertmanager path
/// the code calls needs (AMP's IAM reference; a path missing here fails
/// the test until it is mapped).
const APS_ACTIONS: &[(&str, &str)] = &[
    ("/api/v1/query", "aps:QueryMetrics"),
    ("/api/v1/query_range", "aps:QueryMetrics"),
    ("/api/v1/labels", "aps:GetLabels"),
    ("/api/v1/label/__name__/values", "aps:GetLabels"),
    ("/api/v1/series", "aps:GetSeries"),
    ("/api/v1/metadata", "aps:GetMetricMetadata"),
    ("/api/v1/rules", "aps:ListRules"),
    ("/api/v2/alerts", "aps:ListAlerts"),
];

#[test]
fn the_iam_policies_allow_exactly_the_prometheus_and_ssm_actions_used() {
    let mut reads = std::collections::BTreeSet::new();
    let path = regex::Regex::new(r#""(/api/v[12]/[a-z_/]+)""#).unwrap();
    for entry in std::fs::read_dir(root().join("crates/hpchaos-core/src/monitoring")).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let code = source.split("#[cfg(test)]").next().unwrap();
        for c in path.captures_iter(code) {
            let action = APS_ACTIONS
                .iter()
                .find(|(p, _)| *p == &c[1])
                .unwrap_or_else(|| panic!("map {} to its aps action", &c[1]))
                .1;
            reads.insert(action.to_owned());
        }
    }
    assert!(
        reads.contains("aps:QueryMetrics") && reads.contains("aps:ListAlerts"),
        "{reads:?}"
    );
    assert_eq!(
        policy_actions("contrib/iam/hpchaos-read-only.json", "aps"),
        reads
    );
    let mut writes = reads.clone();
    writes.insert("aps:RemoteWrite".to_owned());
    assert!(
        root()
            .join("crates/hpchaos-core/src/publish/remote_write.rs")
            .exists()
    );
    assert_eq!(
        policy_actions("contrib/iam/hpchaos-run.json", "aps"),
        writes
    );
    for file in [
        "contrib/iam/hpchaos-run.json",
        "contrib/iam/hpchaos-read-only.json",
    ] {
        let ssm = policy_actions(file, "ssm");
        assert!(ssm.contains("ssm:StartSession"), "{file}: {ssm:?}");
    }
}
