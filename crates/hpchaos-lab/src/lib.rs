//! The lab: a real Slurm cluster (slurmctld, slurmd, munge), real sshd,
//! one set of Linux namespaces per node, and a local HyperPod control plane
//! speaking the SageMaker wire protocol, all on one machine. `up` writes a
//! cluster profile in the format users write for real clusters; the harness
//! reaches the lab only through it. The harness library (`hpchaos-core`)
//! does not depend on this crate, and Cargo keeps it so; only the root
//! package (the `hpchaos` command, for `hpchaos lab`, and its tests)
//! depends on it.

// The lab is the cluster: its clock is the wall clock (clippy.toml keeps
// the harness's reads of time to its Clock).
#![allow(clippy::disallowed_methods)]
// The lab is a tool of its own: its commands print, its daemon logs on
// stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod alarms;
pub mod api_model;
pub mod auth;
pub mod changes;
pub mod config;
pub mod control_plane;
pub mod daemon;
pub mod exporter;
pub mod ground_truth;
mod hma;
pub use hma::root_read_only;
mod http;
pub mod layout;
pub mod logs;
pub mod monitoring;
mod net;
mod node;
pub mod state;
pub mod system;
pub mod throttle;
mod tools;
pub mod xid;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use config::{LabConfig, SlurmRelease, TimingProfile, Timings, default_xid_actions};
use layout::Layout;
use system::LabError;

/// What `lab up` is asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub nodes: u8,
    pub timings: TimingProfile,
    /// Multiplies the timing profile's delays.
    pub scale: f64,
    pub node_recovery_none: bool,
    /// The API omits `PrivateDnsHostname`, as before 2025-11-20 and in moto.
    pub api_without_hostnames: bool,
    /// slurm.conf's `LogTimeFormat` (`iso8601_ms`, `iso8601`, `rfc5424_ms`,
    /// `rfc5424`, `clock`, `short`, `thread_id`); Slurm's default if `None`.
    pub log_time_format: Option<String>,
    /// Which Slurm the nodes run.
    pub slurm: SlurmRelease,
    /// A reboot keeps the instance's `LaunchTime`.
    pub reboot_keeps_launch_time: bool,
    /// The cluster's size in Slurm nodes: the ones beyond `nodes` are
    /// declared, not run (benchmarks at cluster scale).
    pub cluster_size: Option<u16>,
    /// Run the monitoring stack (exporters, Prometheus, Alertmanager,
    /// Pushgateway).
    pub monitoring: bool,
    /// Which key the compute nodes accept (the cluster's, as on HyperPod,
    /// or also the profile's).
    pub compute_trusts: config::ComputeTrusts,
    /// The auto-resume's shape: requeue, or in place.
    pub auto_resume: config::AutoResume,
    /// The login instance group's name.
    pub login_group: String,
    /// A second head node with a backup slurmctld (`lab up --multi-head`).
    pub multi_head: bool,
}

/// Host programs the lab needs, and the Debian package of each.
const REQUIRED: &[(&str, &str)] = &[
    ("slurmctld", "slurmctld (slurm-wlm)"),
    ("slurmd", "slurmd (slurm-wlm)"),
    ("sinfo", "slurm-client (slurm-wlm)"),
    ("munged", "munge"),
    ("sshd", "openssh-server"),
    ("ssh-keygen", "openssh-client"),
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
];

/// Refuses to start without root or a needed program, saying how to fix it.
pub fn preflight() -> Result<(), LabError> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
            })
        });
    if uid.as_deref() != Some("0") {
        return Err(LabError::Setup(
            "the lab needs root (network namespaces, mounts): run it with sudo or as root"
                .to_owned(),
        ));
    }
    let missing: Vec<_> = REQUIRED
        .iter()
        .filter(|(program, _)| find_program(program).is_none())
        .collect();
    if !missing.is_empty() {
        let names: Vec<_> = missing
            .iter()
            .map(|(p, pkg)| format!("{p} (package {pkg})"))
            .collect();
        return Err(LabError::Setup(format!(
            "missing: {}. Install them with `make setup`, or: apt-get install slurm-wlm munge openssh-server iproute2",
            names.join(", ")
        )));
    }
    Ok(())
}

fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&format!("{path}:/usr/sbin:/sbin"))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether the lab in `dir` is up: its daemon alive and ready.
pub fn is_up(layout: &Layout) -> bool {
    daemon_pid(layout).is_some() && layout.dir.join(daemon::READY_FILE).exists()
}

fn daemon_pid(layout: &Layout) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(layout.daemon_pid())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    system::alive(pid).then_some(pid)
}

/// How the lab running in `layout` differs from `options`, in words
/// (`it runs without monitoring, asked with`); `None` when it is as asked
/// (or its settings cannot be read: then it is taken as it is).
fn differs_from_running(layout: &Layout, options: &UpOptions) -> Option<String> {
    let text = std::fs::read_to_string(layout.config()).ok()?;
    let running: LabConfig = serde_json::from_str(&text).ok()?;
    let on = |b: bool| if b { "with" } else { "without" };
    let mut said = Vec::new();
    if running.compute_nodes != options.nodes {
        said.push(format!(
            "it runs {} compute nodes, asked {}",
            running.compute_nodes, options.nodes
        ));
    }
    if running.monitoring != options.monitoring {
        said.push(format!(
            "it runs {} monitoring, asked {}",
            on(running.monitoring),
            on(options.monitoring)
        ));
    }
    if running.slurm != options.slurm {
        said.push(format!(
            "it runs Slurm {}, asked {}",
            running.slurm.as_str(),
            options.slurm.as_str()
        ));
    }
    if running.compute_trusts != options.compute_trusts {
        let trusts = |t: config::ComputeTrusts| match t {
            config::ComputeTrusts::Head => "the cluster's key only (--compute-trusts head)",
            config::ComputeTrusts::Profile => "the profile's key too (--compute-trusts profile)",
        };
        said.push(format!(
            "its compute nodes trust {}, asked {}",
            trusts(running.compute_trusts),
            trusts(options.compute_trusts)
        ));
    }
    if running.multi_head != options.multi_head {
        said.push(format!(
            "it runs {} a backup head node, asked {}",
            on(running.multi_head),
            on(options.multi_head)
        ));
    }
    if running.login_group != options.login_group {
        said.push(format!(
            "its login group is --login-group {}, asked {}",
            running.login_group, options.login_group
        ));
    }
    if running.auto_resume != options.auto_resume {
        let shape = |a: config::AutoResume| match a {
            config::AutoResume::Requeue => "requeue",
            config::AutoResume::InPlace => "in-place",
        };
        said.push(format!(
            "its auto-resume is --auto-resume {}, asked {}",
            shape(running.auto_resume),
            shape(options.auto_resume)
        ));
    }
    let recovery = if options.node_recovery_none {
        "None"
    } else {
        "Automatic"
    };
    if running.node_recovery != recovery {
        said.push(format!(
            "it started with NodeRecovery {}, asked {recovery} (change it on the running lab with `aws sagemaker update-cluster --node-recovery`)",
            running.node_recovery
        ));
    }
    if running.timing_profile != options.timings {
        said.push(format!(
            "it runs the {:?} timings, asked {:?}",
            running.timing_profile, options.timings
        ));
    }
    if running.api_without_hostnames != options.api_without_hostnames
        || running.reboot_keeps_launch_time != options.reboot_keeps_launch_time
        || running.log_time_format != options.log_time_format
    {
        said.push("its API, reboot or log-time settings differ from the ones asked".to_owned());
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// Brings the lab up; idempotent, and leaves nothing half-started on failure.
pub fn up(dir: &Path, options: &UpOptions) -> Result<Layout, LabError> {
    preflight()?;
    let layout = Layout::new(dir);
    if is_up(&layout) {
        // Up already: as asked, or said, never silently another lab.
        if let Some(differs) = differs_from_running(&layout, options) {
            return Err(LabError::Setup(format!(
                "the lab in {} is already up, but {differs}: bring it down first (`hpchaos lab down --dir {}`), then up again with these options",
                dir.display(),
                dir.display()
            )));
        }
        return Ok(layout);
    }
    if !(1..=layout::MAX_NODES).contains(&options.nodes) {
        return Err(LabError::Setup(format!(
            "--nodes must be 1 to {}",
            layout::MAX_NODES
        )));
    }
    if let Some(size) = options.cluster_size
        && !(u16::from(options.nodes)..=layout::MAX_CLUSTER_SIZE).contains(&size)
    {
        return Err(LabError::Setup(format!(
            "--cluster-size must be at least --nodes ({}) and at most {}",
            options.nodes,
            layout::MAX_CLUSTER_SIZE
        )));
    }
    // Leftovers of a lab that died: clear them first. A new lab starts
    // with no rate limit.
    down(dir)?;
    let _ = std::fs::remove_file(layout.api_throttle());
    let _ = std::fs::remove_file(layout.api_denied());
    let _ = std::fs::remove_file(layout.changes());
    let result = prepare_and_start(&layout, options);
    if result.is_err() {
        let _ = down(dir);
    }
    result.map(|()| layout)
}

fn prepare_and_start(layout: &Layout, options: &UpOptions) -> Result<(), LabError> {
    let exe = std::env::current_exe().map_err(LabError::io("cannot find the hpchaos binary"))?;
    let config = LabConfig {
        compute_nodes: options.nodes,
        timing_profile: options.timings,
        timings: Timings::of(options.timings, options.scale),
        cluster_name: "hpchaos-lab".to_owned(),
        region: "us-west-2".to_owned(),
        api_port: free_port()?,
        node_recovery: if options.node_recovery_none {
            "None"
        } else {
            "Automatic"
        }
        .to_owned(),
        xid_actions: default_xid_actions(),
        exe: exe.display().to_string(),
        api_without_hostnames: options.api_without_hostnames,
        log_time_format: options.log_time_format.clone(),
        slurm: options.slurm,
        reboot_keeps_launch_time: options.reboot_keeps_launch_time,
        rootfs: match options.slurm {
            SlurmRelease::V24_11 => Some(rootfs()?),
            SlurmRelease::V22_05 => None,
        },
        declared_nodes: options
            .cluster_size
            .map_or(0, |size| size.saturating_sub(u16::from(options.nodes))),
        monitoring: options.monitoring,
        compute_trusts: options.compute_trusts,
        auto_resume: options.auto_resume,
        login_group: options.login_group.clone(),
        multi_head: options.multi_head,
    };
    if config.monitoring {
        monitoring::preflight()?;
    }
    write_files(layout, &config)?;
    net::up(&config.nodes())?;
    let log = std::fs::File::create(layout.daemon_log())
        .map_err(LabError::io("cannot create daemon.log"))?;
    let log_err = log
        .try_clone()
        .map_err(LabError::io("cannot duplicate daemon.log"))?;
    let child = Command::new("setsid")
        .arg(&exe)
        .args(["lab", "daemon", "--dir"])
        .arg(&layout.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(LabError::io("cannot start the lab daemon"))?;
    std::fs::write(layout.daemon_pid(), child.id().to_string())
        .map_err(LabError::io("cannot write daemon.pid"))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !layout.dir.join(daemon::READY_FILE).exists() {
        if !system::alive(child.id()) || Instant::now() > deadline {
            let log = std::fs::read_to_string(layout.daemon_log()).unwrap_or_default();
            let tail: Vec<_> = log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(LabError::Setup(format!(
                "the lab did not come up; daemon.log ends:\n{}",
                tail.join("\n")
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = serde_saphyr::to_string(&config::profile(layout, &config))
        .map_err(|e| LabError::Setup(e.to_string()))?;
    // No `$schema` line: the lab folder is not beside the repository's
    // schema/; `hpchaos schema --kind profile` prints it.
    let header = "# Written by `hpchaos lab up`: how hpchaos reaches this lab.\n# Its JSON Schema: `hpchaos schema --kind profile`.\n";
    std::fs::write(layout.profile(), format!("{header}{profile}"))
        .map_err(LabError::io("cannot write profile.yaml"))
}

/// The Slurm 24.11 root file system: `HPCHAOS_LAB_ROOTFS` or the default
/// place, checked for the stamp `scripts/slurm-rootfs` leaves on a finished
/// tree.
fn rootfs() -> Result<String, LabError> {
    let dir =
        std::env::var("HPCHAOS_LAB_ROOTFS").unwrap_or_else(|_| config::DEFAULT_ROOTFS.to_owned());
    if Path::new(&dir).join(".hpchaos-rootfs").is_file() {
        Ok(dir)
    } else {
        Err(LabError::Setup(format!(
            "no Slurm 24.11 root file system at {dir}: build it with `make setup` (scripts/slurm-rootfs {dir}), or run the host's Slurm with `lab up --slurm 22.05`"
        )))
    }
}

fn free_port() -> Result<u16, LabError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(LabError::io("cannot find a free port"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(LabError::io("cannot find a free port"))
}

fn write_files(layout: &Layout, config: &LabConfig) -> Result<(), LabError> {
    let write = |path: std::path::PathBuf, text: &str| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(LabError::io(format!("cannot create {}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(LabError::io(format!("cannot write {}", path.display())))
    };
    let etc = layout.etc();
    write(
        layout.config(),
        &serde_json::to_string_pretty(config).unwrap_or_default(),
    )?;
    write(etc.join("slurm/slurm.conf"), &config::slurm_conf(config))?;
    write(etc.join("slurm/cgroup.conf"), config::cgroup_conf())?;
    write(
        etc.join("slurm/auto-resume.env"),
        &config::auto_resume_env(config),
    )?;
    write(etc.join("hosts"), &config::hosts(config))?;
    // The keys: the profile's copy, and the API's own record of what it
    // accepts (a changed profile copy signs wrongly, as it would on AWS).
    let credentials = config::aws_credentials(&state::new_secret());
    write(layout.dir.join("aws-credentials"), &credentials)?;
    write(layout.api_keys(), &credentials)?;
    tools::install(&layout.bin()).map_err(LabError::io("cannot install the node tools"))?;
    // A fresh /fsx: job ids restart at 1, so a new canary must not find
    // the last lab's checkpoints or append to its output.
    unmount_checkpoints(layout);
    match std::fs::remove_dir_all(layout.dir.join("shared")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(LabError::io("cannot empty shared/ (the lab's /fsx)")(e));
        }
        _ => {}
    }
    // Slurm opens a job's --output before its script runs: the canary's
    // folder must exist, writable by whoever submits it (`ubuntu`).
    std::fs::create_dir_all(layout.dir.join("shared/canary"))
        .map_err(LabError::io("cannot create shared/canary"))?;
    // The checkpoint store is a file system of its own (FSx for Lustre
    // is): full and read-only faults hit it and nothing else of the host.
    system::run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            CHECKPOINT_FS_OPTIONS,
            "hpchaos-checkpoints",
            &layout.dir.join("shared/canary").display().to_string(),
        ],
    )
    .map_err(|e| LabError::Setup(format!("cannot mount the checkpoint store: {e}")))?;
    set_mode(&layout.dir.join("shared/canary"), 0o1777)?;
    // Where the canary's ranks meet for their collectives (the lab's
    // stand-in for the network), off the checkpoint store.
    std::fs::create_dir_all(layout.dir.join("shared/.hpchaos-collective"))
        .map_err(LabError::io("cannot create shared/.hpchaos-collective"))?;
    set_mode(&layout.dir.join("shared/.hpchaos-collective"), 0o1777)?;
    if config.login_as_ubuntu() {
        login_user_home(layout)?;
    }
    let _ = std::fs::remove_file(layout.ground_truth());

    write_munge_key(layout)?;

    std::fs::create_dir_all(layout.ssh()).map_err(LabError::io("cannot create ssh/"))?;
    if !layout.client_key().exists() {
        system::new_key(&layout.client_key(), "hpchaos-lab")?;
    }
    let public = std::fs::read_to_string(layout.client_key().with_extension("pub"))
        .map_err(LabError::io("cannot read the lab's public key"))?;
    write(layout.ssh().join("authorized_keys"), &public)?;
    let mut known_hosts = String::new();
    for node in config.nodes() {
        write(
            layout.node(&node.name).join("sshd_config"),
            &config::sshd_config(layout, &node, config),
        )?;
        let key = layout.host_key(&node.name);
        let _ = std::fs::remove_dir_all(layout.node_root(&node.name));
        system::new_key(&key, &node.name)?;
        let host_public = std::fs::read_to_string(key.with_extension("pub"))
            .map_err(LabError::io("cannot read a host key"))?;
        let mut parts = host_public.split_whitespace();
        let (kind, body) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        known_hosts.push_str(&format!("{},{} {kind} {body}\n", node.name, node.address));
    }
    write(layout.known_hosts(), &known_hosts)
}

/// `ubuntu`'s home in the shared file system (`/fsx/ubuntu`), as
/// HyperPod's lifecycle scripts make it: the cluster's own key pair, which
/// every node's `authorized_keys` holds, and an SSH client config that
/// reaches the other nodes by name without host-key checks; and the
/// sudoers entry cloud-init writes for `ubuntu` (the nodes bind
/// `etc/sudoers.d` over theirs, so a test can take it away).
fn login_user_home(layout: &Layout) -> Result<(), LabError> {
    let dot_ssh = layout
        .dir
        .join("shared")
        .join(config::LOGIN_USER)
        .join(".ssh");
    std::fs::create_dir_all(&dot_ssh).map_err(LabError::io("cannot create /fsx/ubuntu/.ssh"))?;
    let key = dot_ssh.join("id_ed25519");
    system::new_key(&key, "hyperpod-cluster-key")?;
    let public = std::fs::read_to_string(key.with_extension("pub"))
        .map_err(LabError::io("cannot read the cluster's public key"))?;
    write_text(dot_ssh.join("authorized_keys"), &public)?;
    write_text(dot_ssh.join("config"), config::login_ssh_config())?;
    let home = layout.dir.join("shared").join(config::LOGIN_USER);
    let owner = format!("{0}:{0}", config::LOGIN_UID);
    system::run("chown", &["-R", &owner, &home.display().to_string()])?;
    set_mode(&dot_ssh, 0o700)?;
    set_mode(&key, 0o600)?;
    set_mode(&dot_ssh.join("config"), 0o600)?;
    let sudoers = layout.dir.join("etc/sudoers.d");
    std::fs::create_dir_all(&sudoers).map_err(LabError::io("cannot create etc/sudoers.d"))?;
    let entry = sudoers.join("90-cloud-init-users");
    write_text(entry.clone(), &config::sudoers())?;
    set_mode(&entry, 0o440)
}

/// Writes `text` to `path`, creating its folder.
fn write_text(path: std::path::PathBuf, text: &str) -> Result<(), LabError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(LabError::io(format!("cannot create {}", parent.display())))?;
    }
    std::fs::write(&path, text).map_err(LabError::io(format!("cannot write {}", path.display())))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(LabError::io(
        format!("cannot set the mode of {}", path.display()),
    ))
}

fn write_munge_key(layout: &Layout) -> Result<(), LabError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut key = vec![0u8; 1024];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(LabError::io("cannot read /dev/urandom"))?;
    std::fs::write(layout.munge_key(), &key).map_err(LabError::io("cannot write munge.key"))?;
    std::fs::set_permissions(layout.munge_key(), std::fs::Permissions::from_mode(0o400))
        .map_err(LabError::io("cannot protect munge.key"))
}

/// Stops the lab: the daemon (which powers the nodes off), any node process
/// left, then the namespaces, veths and bridge. Safe to run twice.
pub fn down(dir: &Path) -> Result<(), LabError> {
    let layout = Layout::new(dir);
    if let Some(pid) = daemon_pid(&layout) {
        let _ = system::run("kill", &["-TERM", &pid.to_string()]);
        let deadline = Instant::now() + Duration::from_secs(15);
        while system::alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if system::alive(pid) {
            let _ = system::run("kill", &["-KILL", &pid.to_string()]);
        }
    }
    let nodes = lab_nodes(&layout);
    for node in &nodes {
        if net::netns_exists(&node.netns()) {
            // Whatever still runs in the node's network namespace is the
            // node's; nothing else can be there.
            let pids = system::run("ip", &["netns", "pids", &node.netns()]).unwrap_or_default();
            for pid in pids.split_whitespace() {
                let _ = system::run("kill", &["-KILL", pid]);
            }
        }
    }
    monitoring::down()?;
    net::down(&nodes)?;
    unmount_checkpoints(&layout);
    let _ = std::fs::remove_file(layout.daemon_pid());
    let _ = std::fs::remove_file(layout.dir.join(daemon::READY_FILE));
    Ok(())
}

/// The checkpoint store's size and mode (`/fsx/canary`, a tmpfs of its
/// own: room for the canary's output and checkpoints, and for the 50 MB
/// line the bounded-memory test writes).
const CHECKPOINT_FS_OPTIONS: &str = "size=256m,mode=1777";

/// Whether the lab's checkpoint store is mounted (in /proc/self/mounts).
fn checkpoints_mounted(layout: &Layout) -> bool {
    let at = layout.dir.join("shared/canary").display().to_string();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(at.as_str()))
}

/// Unmounts the checkpoint store (lazily: a node's process may still hold
/// a file there); nothing mounted is fine.
fn unmount_checkpoints(layout: &Layout) {
    while checkpoints_mounted(layout) {
        let at = layout.dir.join("shared/canary").display().to_string();
        if system::run("umount", &["-l", &at]).is_err() {
            break;
        }
    }
}

/// The nodes of the lab in `dir`, or every name a lab can use when its
/// config is gone (so `down` still finds what a broken `up` left).
fn lab_nodes(layout: &Layout) -> Vec<layout::NodeSpec> {
    std::fs::read(layout.config())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<LabConfig>(&bytes).ok())
        .map_or_else(|| layout::nodes(layout::MAX_NODES), |config| config.nodes())
}

/// What is left of a lab on this machine outside its folder: processes in
/// its namespaces, namespaces, veths, the bridge. Empty after `down`.
pub fn leftovers(dir: &Path) -> Vec<String> {
    let layout = Layout::new(dir);
    let mut found = Vec::new();
    if let Some(pid) = daemon_pid(&layout) {
        found.push(format!("daemon process {pid}"));
    }
    for node in lab_nodes(&layout) {
        if net::netns_exists(&node.netns()) {
            found.push(format!("network namespace {}", node.netns()));
        }
        if net::link_exists(&node.veth()) {
            found.push(format!("veth {}", node.veth()));
        }
        if let Some(pid) = node::recorded_pid(&layout, &node.name) {
            found.push(format!("process {pid} of node {}", node.name));
        }
    }
    found.extend(monitoring::leftovers());
    if checkpoints_mounted(&layout) {
        found.push(format!(
            "the checkpoint store mounted at {}",
            layout.dir.join("shared/canary").display()
        ));
    }
    if net::link_exists(layout::BRIDGE) {
        found.push(format!("bridge {}", layout::BRIDGE));
    }
    found
}

/// `lab status`: the control plane's view and Slurm's, side by side.
/// Sets the API's rate limit (`None` lifts it); the running lab applies it
/// from its next request on.
pub fn throttle(dir: &Path, limit: Option<throttle::Limit>) -> Result<(), LabError> {
    let layout = Layout::new(dir);
    if !is_up(&layout) {
        return Err(LabError::Setup(format!(
            "the lab in {} is down: `hpchaos lab up` first",
            dir.display()
        )));
    }
    let path = layout.api_throttle();
    match limit {
        Some(limit) => std::fs::write(&path, limit.render()),
        None => std::fs::remove_file(&path).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        }),
    }
    .map_err(LabError::io("cannot set the API rate limit"))
}

/// Sets the API operations the caller may not call, as a missing IAM
/// permission does (`AccessDeniedException` in IAM's words); none lifts
/// it. The running lab applies it from its next request on.
pub fn deny(dir: &Path, operations: &[String]) -> Result<(), LabError> {
    let layout = Layout::new(dir);
    if !is_up(&layout) {
        return Err(LabError::Setup(format!(
            "the lab in {} is down: `hpchaos lab up` first",
            dir.display()
        )));
    }
    let path = layout.api_denied();
    match operations.is_empty() {
        false => std::fs::write(&path, operations.join("\n") + "\n"),
        true => std::fs::remove_file(&path).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        }),
    }
    .map_err(LabError::io("cannot set the API's denials"))
}

/// Sets the lab's CloudWatch alarm `name` to `state` (`OK`, `ALARM`,
/// `INSUFFICIENT_DATA`) with `reason`, as CloudWatch's `SetAlarmState`
/// does; the API's `DescribeAlarms` shows it from then on. Returns what
/// was set, in words.
pub fn alarm(dir: &Path, name: &str, state: &str, reason: &str) -> Result<String, LabError> {
    let layout = Layout::new(dir);
    if !is_up(&layout) {
        return Err(LabError::Setup(format!(
            "the lab in {} is down: `hpchaos lab up` first",
            dir.display()
        )));
    }
    alarms::set(
        &layout.cloudwatch_alarms(),
        name,
        state,
        reason,
        chrono::Utc::now(),
    )
    .map_err(LabError::Setup)?;
    Ok(format!("alarm {name}: {state} ({reason})\n"))
}

/// Issues session credentials that expire `expires_in` from now, as STS
/// (or an SSO login) does: a new `ASIA…` key with a secret and a session
/// token, added to the keys the lab's API accepts (`api-keys`, with its
/// expiry), and returned as `credential_process` JSON (`Version: 1`,
/// `AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`), so an
/// AWS profile with `credential_process = hpchaos lab credentials ...`
/// gets fresh ones through the SDK's provider chain when they run out.
/// Errors: the lab is down, or its keys cannot be written.
pub fn credentials(dir: &Path, expires_in: chrono::TimeDelta) -> Result<String, LabError> {
    let layout = Layout::new(dir);
    if !is_up(&layout) {
        return Err(LabError::Setup(format!(
            "the lab in {} is down: `hpchaos lab up` first",
            dir.display()
        )));
    }
    let now = chrono::Utc::now();
    let expires = now + expires_in;
    let secret = state::new_secret();
    let access_key_id = format!("ASIA{}", &secret[..16].to_uppercase());
    let token = format!("{}{}", state::new_secret(), state::new_secret());
    let expiry = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let entry = format!(
        "\n[session-{access_key_id}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\naws_session_token = {token}\nx_hpchaos_expires = {expiry}\n"
    );
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(layout.api_keys())
        .and_then(|mut f| f.write_all(entry.as_bytes()))
        .map_err(LabError::io("cannot add the session to the lab's keys"))?;
    let json = serde_json::json!({
        "Version": 1,
        "AccessKeyId": access_key_id,
        "SecretAccessKey": secret,
        "SessionToken": token,
        "Expiration": expiry,
    });
    Ok(json.to_string() + "\n")
}

/// What `hpchaos lab change` sets: the cluster's own changes under way.
#[derive(Debug, Clone, Default)]
pub struct ChangeOptions {
    /// An AMI patch due this long from now, with this strategy.
    pub patch_in: Option<chrono::TimeDelta>,
    pub patch_strategy: String,
    /// A software update's status (`InProgress`).
    pub software_update: Option<String>,
    /// Scaling operations in flight.
    pub scaling: Option<u32>,
    /// Nodes put under a deep health check for `check_for`: their API
    /// status `DeepHealthCheckInProgress`, and a Slurm maintenance
    /// reservation on them for that long, as HyperPod does.
    pub deep_health_check: Vec<String>,
    pub check_for: chrono::TimeDelta,
    /// Clear every change (and the reservations the checks made).
    pub off: bool,
}

/// The reservation a lab deep health check puts `node` in.
use changes::check_reservation;

/// Sets what the cluster is doing of its own accord (`changes.rs`); says
/// what is set now.
pub fn change(dir: &Path, options: &ChangeOptions) -> Result<String, LabError> {
    let layout = Layout::new(dir);
    if !is_up(&layout) {
        return Err(LabError::Setup(format!(
            "the lab in {} is down: `hpchaos lab up` first",
            dir.display()
        )));
    }
    let head = node::recorded_pid(&layout, &layout::nodes(0)[0].name)
        .ok_or_else(|| LabError::Setup("the head node is not running".to_owned()))?;
    let path = layout.changes();
    let mut changes = changes::Changes::load(&path);
    let now = chrono::Utc::now();
    if options.off {
        for node in changes.deep_health_checks.keys() {
            let name = format!("ReservationName={}", check_reservation(node));
            let _ = system::in_node(head, &["scontrol", "delete", &name]);
        }
        changes = changes::Changes::default();
    }
    if let Some(delay) = options.patch_in {
        changes.patch = Some(changes::Patch {
            strategy: options.patch_strategy.clone(),
            next_patch_date: now + delay,
        });
    }
    if let Some(status) = &options.software_update {
        changes.software_update = Some(status.clone());
    }
    if let Some(count) = options.scaling {
        changes.scaling = Some(count);
    }
    for node in &options.deep_health_check {
        changes::hold_in_reservation(head, node, options.check_for.num_minutes())?;
        changes
            .deep_health_checks
            .insert(node.clone(), now + options.check_for);
    }
    let text = serde_json::to_string_pretty(&changes)
        .map_err(|e| LabError::Setup(format!("cannot encode the changes: {e}")))?;
    std::fs::write(&path, text).map_err(LabError::io("cannot set the cluster's changes"))?;
    Ok(match changes.is_empty() {
        true => "the cluster is doing nothing of its own\n".to_owned(),
        false => format!(
            "the cluster's own changes ({}):\n{}\n",
            path.display(),
            serde_json::to_string_pretty(&changes).unwrap_or_default()
        ),
    })
}

pub fn status(dir: &Path) -> Result<String, LabError> {
    let layout = Layout::new(dir);
    if !is_up(&layout) {
        return Ok(format!("lab in {} is down\n", dir.display()));
    }
    let state = state::ClusterState::load(&layout.state())
        .ok_or_else(|| LabError::Setup("state.json is missing".to_owned()))?;
    let head = node::recorded_pid(&layout, &layout::nodes(0)[0].name)
        .ok_or_else(|| LabError::Setup("the head node is not running".to_owned()))?;
    let sinfo = daemon::parse_sinfo(&system::in_node(
        head,
        &["sinfo", "-N", "-h", "-o", "%N|%T|%E"],
    )?);
    let version = system::in_node(head, &["sinfo", "--version"]).unwrap_or_default();
    let mut out = format!(
        "lab {} up in {}: cluster {} ({}), NodeRecovery {}, {}\n",
        state.cluster_arn,
        dir.display(),
        state.cluster_name,
        state.region,
        state.node_recovery,
        version.trim()
    );
    out.push_str(&format!(
        "{:<14} {:<11} {:<20} {:<9} {:<12} {}\n",
        "node", "group", "instance", "api", "slurm", "reason"
    ));
    let fleet: Vec<&str> = state
        .instances
        .iter()
        .filter(|i| i.group == state::FLEET_GROUP)
        .map(|i| i.node.as_str())
        .collect();
    for instance in state
        .instances
        .iter()
        .filter(|i| i.group != state::FLEET_GROUP)
    {
        let (slurm_state, reason) = sinfo
            .get(&instance.node)
            .cloned()
            .unwrap_or_else(|| ("-".to_owned(), String::new()));
        out.push_str(&format!(
            "{:<14} {:<11} {:<20} {:<9} {:<12} {}\n",
            instance.node,
            instance.group,
            instance.instance_id,
            instance.status,
            slurm_state,
            reason
        ));
    }
    // Declared, not run: one line for them all.
    if let (Some(first), Some(last)) = (fleet.first(), fleet.last()) {
        let mut states: std::collections::BTreeMap<&str, usize> = Default::default();
        for node in &fleet {
            let state = sinfo.get(*node).map_or("-", |(s, _)| s.as_str());
            *states.entry(state).or_default() += 1;
        }
        let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        out.push_str(&format!(
            "{} {} nodes declared, not run ({first} .. {last}): API Running, Slurm {}\n",
            state::FLEET_GROUP,
            fleet.len(),
            states.join(", ")
        ));
    }
    out.push_str(&format!("profile: {}\n", layout.profile().display()));
    Ok(out)
}
