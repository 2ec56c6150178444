//! The SageMaker API as it answers, through the real `aws-sdk-sagemaker`
//! over HTTP on loopback, fed recorded answers: field case 11
//! (ListClusterNodes with uncommon statuses, a node without LaunchTime and
//! one without PrivateDnsHostname). Statuses pass as they are, absent
//! fields stay absent, and the nameless node is mapped through
//! DescribeClusterNode's address, or reported unmapped, never named "".

use std::io::Write as _;

use hpchaos::cluster::sagemaker::SageMakerApi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LISTING: &str = include_str!("../fixtures/field-cases/11-listclusternodes.json");

/// Answers awsJson1_1 requests by their `X-Amz-Target` with `answer`.
async fn serve(answer: fn(&str, &str) -> (u16, String)) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    // One request: headers, then Content-Length bytes.
                    let headers_end = loop {
                        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..headers_end]).to_string();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                            })
                            .unwrap_or_default()
                    };
                    let length: usize = header("content-length").parse().unwrap_or(0);
                    while buffer.len() < headers_end + length {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buffer[headers_end..headers_end + length])
                        .to_string();
                    buffer.drain(..headers_end + length);
                    let target = header("x-amz-target");
                    let (status, text) = answer(&target, &body);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

async fn api(endpoint: String) -> (SageMakerApi, tempfile::NamedTempFile) {
    let mut credentials = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        credentials,
        "[hpchaos-test]\naws_access_key_id = AKIDTEST\naws_secret_access_key = secret"
    )
    .unwrap();
    let settings = hpchaos::profile::SageMaker {
        cluster_name: "c".into(),
        region: "us-west-2".into(),
        endpoint_url: Some(endpoint),
        aws_profile: Some("hpchaos-test".into()),
        credentials_file: Some(credentials.path().display().to_string()),
    };
    (SageMakerApi::connect(&settings).await, credentials)
}

#[tokio::test]
async fn field_case_11_the_api_as_it_answers() {
    let endpoint = serve(|target, body| match target {
        "SageMaker.ListClusterNodes" => (200, LISTING.to_owned()),
        "SageMaker.DescribeClusterNode" if body.contains("i-0a1b2c3d4e5f69916") => (
            200,
            r#"{"NodeDetails":{"InstanceId":"i-0a1b2c3d4e5f69916","InstanceGroupName":"worker-group-1","PrivatePrimaryIp":"10.1.0.16","InstanceStatus":{"Status":"Pending"}}}"#.to_owned(),
        ),
        _ => (400, r#"{"__type":"ValidationException","Message":"no"}"#.to_owned()),
    })
    .await;
    let (api, _credentials) = api(endpoint).await;
    let (nodes, unmapped) = api.listing().await.unwrap();
    assert!(unmapped.is_empty(), "{unmapped:?}");
    let summary: Vec<(&str, &str, bool)> = nodes
        .iter()
        .map(|n| (n.node.as_str(), n.status.as_str(), n.launch_time.is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            ("ip-10-1-0-11", "Running", true),
            ("ip-10-1-0-12", "DeepHealthCheckInProgress", true),
            ("ip-10-1-0-13", "SystemUpdating", true),
            // No LaunchTime: absent, not 1970.
            ("ip-10-1-0-14", "Pending", false),
            ("ip-10-1-0-15", "NotFound", true),
            // No PrivateDnsHostname: mapped through DescribeClusterNode.
            ("ip-10-1-0-16", "Pending", false),
        ]
    );
    assert_eq!(
        nodes[1].status_message.as_deref(),
        Some("InstanceStress and InstanceConnectivity checks running")
    );
    assert!(nodes.iter().all(|n| !n.node.is_empty()));
}

#[tokio::test]
async fn an_instance_without_a_name_or_address_is_unmapped_never_named_empty() {
    let endpoint = serve(|target, _| match target {
        "SageMaker.ListClusterNodes" => (200, LISTING.to_owned()),
        _ => (
            200,
            r#"{"NodeDetails":{"InstanceId":"i-0a1b2c3d4e5f69916","InstanceStatus":{"Status":"Pending"}}}"#.to_owned(),
        ),
    })
    .await;
    let (api, _credentials) = api(endpoint).await;
    let (nodes, unmapped) = api.listing().await.unwrap();
    assert_eq!(nodes.len(), 5);
    assert_eq!(unmapped.len(), 1);
    assert_eq!(unmapped[0].instance_id, "i-0a1b2c3d4e5f69916");
    assert!(unmapped[0].why.contains("PrivatePrimaryIp"), "{unmapped:?}");
}

/// The watch asks about its targets only: DescribeClusterNode per target;
/// a replaced target's old instance is gone (ResourceNotFound), and its
/// successor is found on one page of the newest instances (asked newest
/// first), not by listing the cluster. Requests are counted.
#[tokio::test]
async fn targets_are_asked_about_directly_and_a_successor_found_on_one_page() {
    static CALLS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let endpoint = serve(|target, body| {
        CALLS.lock().unwrap().push(format!("{target} {body}"));
        match target {
            "SageMaker.DescribeClusterNode" if body.contains("i-0aaaaaaaaaaaaaaa1") => (
                200,
                r#"{"NodeDetails":{"InstanceId":"i-0aaaaaaaaaaaaaaa1","InstanceGroupName":"workers","InstanceStatus":{"Status":"Running"},"LaunchTime":1795966346.5}}"#.to_owned(),
            ),
            "SageMaker.DescribeClusterNode" => (
                400,
                r#"{"__type":"ResourceNotFound","Message":"Node i-0bbbbbbbbbbbbbbb2 not found."}"#.to_owned(),
            ),
            "SageMaker.ListClusterNodes"
                if body.contains(r#""SortBy":"CREATION_TIME""#)
                    && body.contains(r#""SortOrder":"Descending""#) =>
            (
                200,
                r#"{"ClusterNodeSummaries":[{"InstanceGroupName":"workers","InstanceId":"i-0ccccccccccccccc3","InstanceType":"ml.p5.48xlarge","LaunchTime":1795966400.25,"InstanceStatus":{"Status":"Pending"},"PrivateDnsHostname":"ip-10-1-0-12.ec2.internal"}]}"#.to_owned(),
            ),
            _ => (400, r#"{"__type":"ValidationException","Message":"unexpected"}"#.to_owned()),
        }
    })
    .await;
    let (api, _credentials) = api(endpoint).await;
    let asked = [
        ("ip-10-1-0-11".to_owned(), "i-0aaaaaaaaaaaaaaa1".to_owned()),
        ("ip-10-1-0-12".to_owned(), "i-0bbbbbbbbbbbbbbb2".to_owned()),
    ];
    let nodes = api.targets(&asked).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = nodes
        .iter()
        .map(|n| (n.node.as_str(), n.instance_id.as_str(), n.status.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("ip-10-1-0-11", "i-0aaaaaaaaaaaaaaa1", "Running"),
            ("ip-10-1-0-12", "i-0ccccccccccccccc3", "Pending"),
        ]
    );
    let calls = CALLS.lock().unwrap().clone();
    let operations: Vec<&str> = calls.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(
        operations,
        [
            "SageMaker.DescribeClusterNode",
            "SageMaker.DescribeClusterNode",
            "SageMaker.ListClusterNodes"
        ],
        "{calls:?}"
    );
}
