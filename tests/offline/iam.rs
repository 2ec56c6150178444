//! The IAM policies shipped in contrib/iam/ against the code: the run
//! policy allows exactly the SageMaker actions the code calls, the
//! read-only one exactly the reads.

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
    // The read-only policy: the reads, none of the batch actions.
    let read_only = policy_actions("contrib/iam/hpchaos-read-only.json", "sagemaker");
    let reads: std::collections::BTreeSet<String> = called
        .iter()
        .filter(|a| !a.starts_with("sagemaker:Batch"))
        .cloned()
        .collect();
    assert_eq!(read_only, reads);
}
