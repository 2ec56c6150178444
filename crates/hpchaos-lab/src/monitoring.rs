//! The lab's monitoring host (`lab up --monitoring`): Debian's Prometheus,
//! Alertmanager and Pushgateway in a network namespace of their own at
//! 10.1.0.5 on the lab's bridge, scraping each node's exporters
//! (`exporter.rs`, node_exporter) every second with the alert rules of
//! `observability/alerts.yml`. The daemon starts them and stops them;
//! `lab down` kills whatever is left in the namespace.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::config::LabConfig;
use super::exporter::{DCGM_PORT, NODE_EXPORTER_PORT, SLURM_PORT};
use super::layout::{Layout, Role};
use super::system::{self, LabError};

/// The monitoring host's address, network namespace and host-side veth.
pub const ADDRESS: &str = "10.1.0.5";
pub const NETNS: &str = "hpchaos-monitor";
pub const VETH: &str = "hpcvmon";
pub const PROMETHEUS_PORT: u16 = 9090;
pub const ALERTMANAGER_PORT: u16 = 9093;
pub const PUSHGATEWAY_PORT: u16 = 9091;
/// How often Prometheus scrapes and evaluates rules in the lab (a real
/// cluster's collector scrapes every 15 s).
pub const SCRAPE_SECONDS: u64 = 1;

/// The rules shipped in `observability/`, loaded as they are.
pub const ALERT_RULES: &str = include_str!("../../../observability/alerts.yml");

/// Debian's programs and their packages.
const PROGRAMS: &[(&str, &str)] = &[
    ("/usr/bin/prometheus", "prometheus"),
    (
        "/usr/bin/prometheus-alertmanager",
        "prometheus-alertmanager",
    ),
    ("/usr/bin/prometheus-pushgateway", "prometheus-pushgateway"),
    (
        "/usr/bin/prometheus-node-exporter",
        "prometheus-node-exporter",
    ),
];

/// Refuses `--monitoring` without Debian's monitoring packages.
pub fn preflight() -> Result<(), LabError> {
    let missing: Vec<&str> = PROGRAMS
        .iter()
        .filter(|(path, _)| !std::path::Path::new(path).is_file())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError::Setup(format!(
            "--monitoring needs {}: install with `make setup` or `apt-get install {}`",
            missing.join(", "),
            missing.join(" ")
        )))
    }
}

/// `http://10.1.0.5:PORT`.
pub fn url(port: u16) -> String {
    format!("http://{ADDRESS}:{port}")
}

fn folder(layout: &Layout) -> PathBuf {
    layout.dir.join("monitoring")
}

/// Prometheus's configuration: every exporter of every node the lab runs,
/// each target labelled with its Slurm node name (`node`), the Pushgateway
/// with `honor_labels`, the lab's Alertmanager and the shipped rules.
pub fn prometheus_config(config: &LabConfig, rules: &str) -> String {
    let mut out = format!(
        "# Written by `hpchaos lab up --monitoring`.\nglobal:\n  scrape_interval: {SCRAPE_SECONDS}s\n  scrape_timeout: {SCRAPE_SECONDS}s\n  evaluation_interval: {SCRAPE_SECONDS}s\n  external_labels:\n    cluster: {}\nrule_files:\n  - {rules}\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{ADDRESS}:{ALERTMANAGER_PORT}']\nscrape_configs:\n",
        config.cluster_name
    );
    let nodes = config.nodes();
    // `label`: the target label naming the node; none for the Slurm
    // exporter, whose series carry their own `node` (a target label of
    // that name would rename theirs to `exported_node`).
    let mut job = |name: &str, port: u16, roles: &[Role], label: bool| {
        let _ = write!(out, "  - job_name: {name}\n    static_configs:\n");
        for node in nodes.iter().filter(|n| roles.contains(&n.role)) {
            let _ = writeln!(out, "      - targets: ['{}:{port}']", node.address);
            if label {
                let _ = writeln!(out, "        labels: {{node: {}}}", node.name);
            }
        }
    };
    job("dcgm", DCGM_PORT, &[Role::Compute], true);
    job("slurm", SLURM_PORT, &[Role::Head], false);
    job(
        "node",
        NODE_EXPORTER_PORT,
        &[Role::Head, Role::Login, Role::Compute],
        true,
    );
    let _ = write!(
        out,
        "  - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: ['{ADDRESS}:{PUSHGATEWAY_PORT}']\n"
    );
    out
}

/// Alertmanager's: one receiver with no integration (the lab pages no
/// one), alerts grouped by name and node and sent at once.
pub fn alertmanager_config() -> &'static str {
    "# Written by `hpchaos lab up --monitoring`.\nroute:\n  receiver: lab\n  group_by: [alertname, node, Hostname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: lab\n"
}

/// Starts the monitoring host: its namespace on the bridge, then
/// Prometheus, Alertmanager and the Pushgateway, each answering
/// `/-/ready` before this returns (30 s at most). Their logs are in
/// `monitoring/*.log`.
pub fn start(layout: &Layout, config: &LabConfig) -> Result<Vec<Child>, LabError> {
    let dir = folder(layout);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(LabError::io("cannot create monitoring/"))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(LabError::io(format!("cannot write {name}")))
    };
    let rules = dir.join("alerts.yml");
    write("alerts.yml", ALERT_RULES)?;
    write(
        "prometheus.yml",
        &prometheus_config(config, &rules.display().to_string()),
    )?;
    write("alertmanager.yml", alertmanager_config())?;
    super::net::attach(NETNS, VETH, ADDRESS)?;
    let text = |p: PathBuf| p.display().to_string();
    let prometheus = vec![
        format!("--config.file={}", text(dir.join("prometheus.yml"))),
        format!("--storage.tsdb.path={}", text(dir.join("prometheus-data"))),
        format!("--web.listen-address={ADDRESS}:{PROMETHEUS_PORT}"),
        "--web.enable-remote-write-receiver".to_owned(),
        "--web.enable-lifecycle".to_owned(),
        "--storage.tsdb.retention.time=2d".to_owned(),
    ];
    let alertmanager = vec![
        format!("--config.file={}", text(dir.join("alertmanager.yml"))),
        format!("--storage.path={}", text(dir.join("alertmanager-data"))),
        format!("--web.listen-address={ADDRESS}:{ALERTMANAGER_PORT}"),
        "--cluster.listen-address=".to_owned(),
    ];
    // Its state in the lab folder (Debian's default is
    // /var/lib/prometheus/pushgateway.data, which would outlive the lab).
    let pushgateway = vec![
        format!("--web.listen-address={ADDRESS}:{PUSHGATEWAY_PORT}"),
        format!("--persistence.file={}", text(dir.join("pushgateway.data"))),
    ];
    let mut children = Vec::new();
    for (program, args, port) in [
        ("prometheus", prometheus, PROMETHEUS_PORT),
        ("prometheus-alertmanager", alertmanager, ALERTMANAGER_PORT),
        ("prometheus-pushgateway", pushgateway, PUSHGATEWAY_PORT),
    ] {
        let log = std::fs::File::create(dir.join(format!("{program}.log")))
            .map_err(LabError::io(format!("cannot create {program}.log")))?;
        let err = log
            .try_clone()
            .map_err(LabError::io("cannot duplicate a log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", NETNS, &format!("/usr/bin/{program}")])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(LabError::io(format!("cannot start {program}")))?;
        children.push(child);
        wait_ready(port, program, &dir)?;
    }
    wait_scraped(config.nodes().len())?;
    Ok(children)
}

/// Waits until Prometheus has scraped each target once (its discovery
/// hands targets over only every 5 s): a lab that says it is up must be
/// watched already, or a fault injected at once goes unseen.
fn wait_scraped(nodes: usize) -> Result<(), LabError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scraped = http_body(PROMETHEUS_PORT, "/api/v1/targets?state=active")
            .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|answer| {
                let targets = answer["data"]["activeTargets"].as_array()?.clone();
                let seen = targets.iter().filter(|t| t["health"] != "unknown").count();
                Some((seen, targets.len()))
            });
        // Every node's node_exporter, the compute nodes' dcgm-exporters,
        // the head's Slurm exporter and the Pushgateway: at least `nodes`.
        if let Some((seen, all)) = scraped
            && all > nodes
            && seen == all
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LabError::Setup(format!(
                "Prometheus did not scrape every target within 30 s ({scraped:?} of them seen, of all)"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The body of a plain `GET` to the monitoring host, if it answers 200.
fn http_body(port: u16, path: &str) -> Option<String> {
    http_get(port, path).and_then(|(status, body)| (status == 200).then_some(body))
}

/// A plain HTTP/1.0 `GET` to the monitoring host: status and body, if it
/// answers (within 0.5 s to connect, 2 s to read).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let address: std::net::SocketAddr = format!("{ADDRESS}:{port}").parse().ok()?;
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {ADDRESS}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    // `HTTP/1.1 200 OK`: the code is the second word.
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Waits until `GET /-/ready` on the monitoring host's `port` says 200.
fn wait_ready(port: u16, program: &str, dir: &std::path::Path) -> Result<(), LabError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http_get(port, "/-/ready").is_some_and(|(status, _)| status == 200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(dir.join(format!("{program}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(LabError::Setup(format!(
                "{program} did not become ready on {ADDRESS}:{port}; its log ends: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills what runs in the monitoring namespace and removes it: for
/// `lab down`, after a daemon that died without stopping its children.
pub fn down() -> Result<(), LabError> {
    if super::net::netns_exists(NETNS) {
        let pids = system::run("ip", &["netns", "pids", NETNS]).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = system::run("kill", &["-KILL", pid]);
        }
        system::run("ip", &["netns", "del", NETNS])?;
    }
    super::net::remove_link(VETH)
}

/// What of the monitoring host is left: its namespace, its veth.
pub fn leftovers() -> Vec<String> {
    let mut found = Vec::new();
    if super::net::netns_exists(NETNS) {
        found.push(format!("network namespace {NETNS}"));
    }
    if super::net::link_exists(VETH) {
        found.push(format!("veth {VETH}"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_scrapes_every_exporter_of_every_node() {
        let config = LabConfig {
            cluster_name: "lab-c".into(),
            monitoring: true,
            ..crate::config::test_config()
        };
        let text = prometheus_config(&config, "/x/alerts.yml");
        assert!(
            text.contains(
                "      - targets: ['10.1.0.11:9400']\n        labels: {node: ip-10-1-0-11}"
            )
        );
        assert!(text.contains("      - targets: ['10.1.0.12:9400']"));
        assert!(text.contains("      - targets: ['10.1.0.10:9341']\n  - job_name: node"));
        assert!(!text.contains("10.1.0.10:9400"), "the head has no GPUs");
        assert!(
            text.contains("10.1.0.9:9100"),
            "node_exporter on the login node"
        );
        assert!(text.contains("honor_labels: true"));
        assert!(text.contains("  - /x/alerts.yml"));
        assert!(text.contains("cluster: lab-c"));
    }
}
