//! The command line: clap definitions and their help text, nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use hpchaos_lab::config::{AutoResume, ComputeTrusts, SlurmRelease, TimingProfile};

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

/// Fault-injection chaos harness for Slurm GPU clusters on SageMaker HyperPod.
///
/// Write a scenario (which nodes, which fault, what recovery by when),
/// check it with `validate`, and turn run journals into reports with
/// `report`. Exit codes: 0 all passed, 1 a scenario failed its
/// expectations, 2 invalid input, 3 the harness failed, 4 a scheduled run
/// skipped itself (`--if-idle`), 5 the run lost the cluster's lock and
/// stopped acting, 130 interrupted.
#[derive(Debug, Parser)]
#[command(
    name = "hpchaos",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario, suite and cluster profile files.
    ///
    /// Reports every problem in each file as `file:line:column: error:
    /// message`, with a hint. A suite is followed to its scenarios and
    /// its cluster profile. Exits 2 if any file is invalid.
    ///
    /// Example: hpchaos validate scenarios/*.yaml --cluster lab/profile.yaml
    Validate(crate::commands::validate::Args),
    /// Print the JSON Schema of scenario (default), suite or profile files.
    ///
    /// Point your editor at it with a first line like
    /// `# yaml-language-server: $schema=../schema/scenario.schema.json`.
    Schema(crate::commands::schema::Args),
    /// Render a run journal as a table, markdown, JSON or JUnit XML.
    ///
    /// Works on journals cut short by a crash too: the report says
    /// `incomplete`. With --check, the exit code is the run's (0 passed,
    /// 1 failed or aborted, 3 incomplete, 5 it lost the cluster's lock,
    /// 130 interrupted).
    ///
    /// Example: hpchaos report reports/2026-11-28T10-00-00-nightly/journal.jsonl --format markdown -o report.md
    Report(crate::commands::report::Args),
    /// Run scenarios and suites against a cluster.
    ///
    /// For each scenario: resolve targets, check steady state, inject,
    /// watch Slurm, the SageMaker API and the workload, time each phase,
    /// roll back, and write the journal with markdown, JSON and JUnit
    /// reports under REPORT_DIR/<time>-<name>/. Ctrl-C rolls back and ends
    /// the run as interrupted (exit 130).
    ///
    /// Example: hpchaos run scenarios/xid48-replace.yaml --cluster /tmp/hpchaos-lab/profile.yaml
    Run(crate::commands::run::Args),
    /// Judge a recording again, without a cluster, and write its reports.
    ///
    /// A recording is what `run --record DIR` kept of a watch: every
    /// source's raw reads with when they were read (recording.json says
    /// the format). The same decoding and judging run on them, so a
    /// recording from a real cluster shows what this harness makes of it;
    /// --scenario judges it against other expectations. Reports go under
    /// REPORT_DIR/<time>-<name>/ (default: DIR/replays); the exit code is
    /// as `run`'s.
    ///
    /// Example: hpchaos replay recordings/xid48 --scenario scenarios/xid48-replace.yaml
    Replay(crate::commands::replay::Args),
    /// List past runs from the history under a report folder, newest first,
    /// with their outcome and each phase's time since the injection.
    ///
    /// The history (REPORT_DIR/history.sqlite) is filled from the run
    /// journals and brought up to date first; --rebuild builds it anew
    /// from them (the old file is kept beside it).
    ///
    /// Example: hpchaos history --scenario xid48-replace --since 30d --format markdown
    History(crate::commands::history::Args),
    /// A scenario's phases over its runs: count, p50, p95, last, and
    /// which way they are going; markdown adds a chart per phase.
    ///
    /// Example: hpchaos trend xid48-replace --since 30d --format markdown
    Trend(crate::commands::trend::Args),
    /// Print what a scenario would do on a cluster, touching nothing.
    ///
    /// With -o FILE the plan is written too (each scenario's text, the
    /// nodes it resolved to, what the cluster showed of them), for `run
    /// --plan FILE` to carry out exactly.
    ///
    /// Example: hpchaos plan scenarios/gpu-stress.yaml --cluster prod.yaml -o plan.json
    Plan(crate::commands::plan::Args),
    /// Write a cluster profile from the SageMaker API: the controller
    /// group's node as the head, reached through SSM (the ProxyCommand
    /// and target HyperPod's easy-ssh.sh uses), the login group never
    /// targeted. Touches nothing on the cluster.
    ///
    /// Example: hpchaos init --cluster-name ml-cluster --region us-west-2 -o prod.yaml
    Init(crate::commands::init::Args),
    /// The cluster as hpchaos sees it: Slurm and SageMaker side by side,
    /// with their disagreements.
    Status(crate::commands::status::Args),
    /// Undo what a dead run left applied, and release the cluster's lock.
    ///
    /// Reads the run's journal (JOURNAL, or the one the lock on the head
    /// node names), undoes every step whose write-ahead record has no
    /// successful rollback (resumes nodes it marked that the cluster left
    /// alone, stops its processes, removes its files, cancels its canary),
    /// appends what it did to the journal and releases the lock. Refuses
    /// while that run is alive: its process exists on this host (running or
    /// stopped; a killed one not yet reaped is gone), or, on another host, its lease is fresh (`--force` once it
    /// is sure to be gone). Exit 0 when nothing is left applied and all of
    /// it was recorded.
    ///
    /// Example: hpchaos recover --cluster prod.yaml reports/20261129T120000-nightly/journal.jsonl
    Recover(crate::commands::recover::Args),
    /// The emergency stop: the run on this cluster stops and rolls back.
    ///
    /// From any machine with the profile (not only the one running the
    /// harness): a stop request goes into the cluster's run lock on the
    /// head node; the running harness reads it at its next lease renewal
    /// (every 2 s while a scenario runs), stops as on SIGTERM, rolls back
    /// and writes its report, and journals who asked and why. `--hold`
    /// also refuses every new run on the cluster until `--release`.
    ///
    /// Example: hpchaos stop --cluster prod.yaml --reason "INC-4711" --hold --wait 10m
    Stop(crate::commands::stop::Args),
    /// Run the local lab: a real Slurm cluster and a HyperPod control plane.
    ///
    /// Each node is its own set of Linux namespaces with real sshd, munged
    /// and slurmd; the head node runs slurmctld; the SageMaker API is served
    /// on 127.0.0.1. `up` writes DIR/profile.yaml for `--cluster`. Needs root
    /// and Debian's slurm-wlm, munge, openssh-server, iproute2 (`make setup`).
    Lab(crate::commands::lab::Args),
    /// Print a shell completion script.
    ///
    /// Example: hpchaos completions bash > /etc/bash_completion.d/hpchaos
    Completions(crate::commands::completions::Args),
}

/// Where labs live unless `--dir` says otherwise.
pub const DEFAULT_LAB_DIR: &str = "/tmp/hpchaos-lab";

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Bring the lab up (idempotent); prints where the profile is.
    ///
    /// Example: hpchaos lab up --nodes 4 --timings fast
    Up {
        /// Compute nodes the lab runs, besides the head and login nodes
        /// (1 to 240, all in the lab's 10.1.0.0/24).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=240))]
        nodes: u8,
        /// The cluster's size in Slurm nodes, for benchmarks at scale: the
        /// nodes beyond --nodes are declared in slurm.conf (sinfo lists
        /// them as not responding: `unknown*`, later `down*`) and listed by
        /// the control plane (group `fleet`), but not run.
        ///
        /// Example: hpchaos lab up --nodes 16 --cluster-size 4096
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=8192))]
        cluster_size: Option<u16>,
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
        /// `fast`: seconds, for tests; `realistic`: HyperPod's observed minutes.
        #[arg(long, value_enum, default_value = "fast")]
        timings: TimingProfile,
        /// Multiply every delay of the timing profile by this.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Start with NodeRecovery None: faults are detected, never repaired.
        #[arg(long)]
        no_recovery: bool,
        /// The API omits PrivateDnsHostname, as it did before 2025-11-20
        /// and as other emulators (moto) do: hpchaos must map nodes
        /// another way.
        #[arg(long)]
        api_without_hostnames: bool,
        /// slurm.conf's LogTimeFormat for the controller's log.
        #[arg(long, value_parser = ["iso8601_ms", "iso8601", "rfc5424_ms", "rfc5424", "clock", "short", "thread_id"])]
        log_time_format: Option<String>,
        /// The Slurm the nodes run: 24.11 (HyperPod's, from Debian trixie
        /// in a root file system `make setup` builds) or 22.05 (the host's).
        #[arg(long, value_enum, default_value = "24.11")]
        slurm: SlurmRelease,
        /// A reboot keeps the instance's LaunchTime (EC2's meaning): the
        /// reboot must be seen from Slurm.
        #[arg(long)]
        reboot_keeps_launch_time: bool,
        /// Monitoring as on a real cluster with observability: each node
        /// runs a dcgm-exporter-compatible endpoint (:9400) fed by its GPU
        /// state and Debian's node_exporter (:9100), the head a Slurm
        /// exporter (:9341); Debian's Prometheus, Alertmanager and
        /// Pushgateway run on the lab's monitoring host (10.1.0.5) with the
        /// rules of observability/alerts.yml. The profile gets their
        /// endpoints. Needs prometheus, prometheus-alertmanager,
        /// prometheus-pushgateway, prometheus-node-exporter (`make setup`).
        #[arg(long)]
        monitoring: bool,
        /// Which key the compute nodes let `ubuntu` in with: `head` (only
        /// the cluster's own key in /fsx/ubuntu/.ssh, as HyperPod's
        /// lifecycle scripts set it up; the profile reaches them from the
        /// head) or `profile` (the profile's key too; the profile's
        /// `ssh.compute` is then `through_head`, as before).
        #[arg(long, value_enum, default_value = "head")]
        compute_trusts: ComputeTrusts,
        /// How the lab's HyperPod auto-resume brings a failed job back:
        /// `requeue` (the job runs again under its id, Restarts + 1, its
        /// output truncated) or `in-place` (the job keeps running: shrunk
        /// off the faulty node, expanded with the repaired one through
        /// Slurm's job expansion, its step retried).
        #[arg(long, value_enum, default_value = "requeue")]
        auto_resume: AutoResume,
        /// The login instance group's name (HyperPod lets it be any):
        /// hpchaos must know it as a login group from the API's
        /// `SlurmConfig.NodeType: Login`, not from its name.
        #[arg(long, default_value = "login", value_name = "NAME")]
        login_group: String,
        /// A second head node (ip-10-1-0-8) running a backup slurmctld, as
        /// on a multi-head HyperPod cluster: both controllers in
        /// slurm.conf (`SlurmctldHost` twice), Slurm's state on the shared
        /// file system (/fsx/slurm/state), and the backup takes over after
        /// `SlurmctldTimeout` when the primary stops answering.
        #[arg(long)]
        multi_head: bool,
    },
    /// Stop the lab; leaves no process, namespace, mount or link behind.
    Down {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
    },
    /// Nodes as the SageMaker API and Slurm see them.
    Status {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
    },
    /// A shell on a lab node (the head node by default), or COMMAND run
    /// there, with the lab's key and known_hosts, as hpchaos reaches it.
    /// As with ssh, the words after `--` are joined and run by the node's
    /// shell: quote a command whose arguments hold spaces or quotes as one
    /// word.
    ///
    /// Example: hpchaos lab ssh ip-10-1-0-12 -- sinfo -N
    /// Example: hpchaos lab ssh ip-10-1-0-10 -- "sudo -u ubuntu sbatch --wrap 'sleep 600'"
    Ssh {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
        /// The node's Slurm name, e.g. ip-10-1-0-12 (default: the head).
        node: Option<String>,
        /// What to run there instead of a shell (after `--`).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Rate-limit the lab's SageMaker API, as AWS does: requests over the
    /// limit get ThrottlingException (the SDK retries them with backoff).
    ///
    /// Example: hpchaos lab throttle --rate 1 --burst 2   (then --off)
    Throttle {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
        /// Requests per second served once the burst is spent.
        #[arg(long, required_unless_present = "off", conflicts_with = "off")]
        rate: Option<f64>,
        /// Requests served at once before the rate applies.
        #[arg(long, default_value_t = 1.0)]
        burst: f64,
        /// Lift the limit.
        #[arg(long)]
        off: bool,
    },
    /// Make the cluster do something of its own accord, as HyperPod does:
    /// an AMI patch due, a software update or a scaling in flight, a deep
    /// health check on nodes (their status DeepHealthCheckInProgress, and
    /// a Slurm maintenance reservation on them). hpchaos must not inject
    /// into a cluster under change.
    ///
    /// Example: hpchaos lab change --patch-in 10m   (then --off)
    Change {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
        /// An AMI patch due this long from now (`AutoPatchConfig`).
        #[arg(long, value_name = "DURATION")]
        patch_in: Option<hpchaos::duration::Duration>,
        /// The patch's `PatchingStrategy`.
        #[arg(long, default_value = "WhenIdle", value_parser = ["WhenIdle", "WhenAllIdle", "DrainFirst"])]
        patch_strategy: String,
        /// A software update's `SoftwareUpdateStatus`.
        #[arg(long, value_name = "STATUS", value_parser = ["Pending", "InProgress", "Succeeded", "Failed", "RollbackInProgress", "RollbackComplete"])]
        software_update: Option<String>,
        /// Scaling operations in flight (`ActiveOperations`).
        #[arg(long, value_name = "N")]
        scaling: Option<u32>,
        /// A node put under a deep health check; repeat for more.
        #[arg(long = "deep-health-check", value_name = "NODE")]
        deep_health_check: Vec<String>,
        /// How long a deep health check lasts.
        #[arg(long = "for", default_value = "30m", value_name = "DURATION")]
        check_for: hpchaos::duration::Duration,
        /// Clear every change first.
        #[arg(long)]
        off: bool,
    },
    /// Issue session credentials that expire, as STS or an SSO login does,
    /// printed as `credential_process` JSON: the lab's API accepts them
    /// until they expire (then `ExpiredTokenException`). Put the command
    /// in an AWS profile's `credential_process` to have the SDK refresh
    /// them, or their keys in a credentials file to see a run outlive them.
    ///
    /// Example: hpchaos lab credentials --expires-in 15m
    Credentials {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
        /// How long they last.
        #[arg(long, default_value = "1h", value_name = "DURATION")]
        expires_in: hpchaos::duration::Duration,
    },
    /// Set a CloudWatch alarm's state, as CloudWatch's SetAlarmState does
    /// (for stop conditions: `abort.when: [{cloudwatch_alarm: NAME}]`).
    ///
    /// Example: hpchaos lab alarm training-throughput --state ALARM --reason "step rate below 0.5/s"
    Alarm {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
        /// The alarm's name (created when new).
        name: String,
        /// OK, ALARM or INSUFFICIENT_DATA.
        #[arg(long)]
        state: String,
        /// CloudWatch's StateReason.
        #[arg(long, default_value = "set by hpchaos lab alarm")]
        reason: String,
    },
    /// Refuse API operations as a missing IAM permission does
    /// (AccessDeniedException), to see what hpchaos says of it.
    ///
    /// Example: hpchaos lab deny --action ListClusterNodes   (then --off)
    Deny {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
        /// An operation to refuse (`ListClusterNodes`); repeat for more.
        #[arg(
            long = "action",
            required_unless_present = "off",
            conflicts_with = "off"
        )]
        actions: Vec<String>,
        /// Allow every operation again.
        #[arg(long)]
        off: bool,
    },
    /// The control plane's ground-truth log, or one node's logs.
    Logs {
        #[arg(long, default_value = DEFAULT_LAB_DIR)]
        dir: PathBuf,
        /// A node's console, slurmd/slurmctld and syslog instead.
        #[arg(long)]
        node: Option<String>,
    },
    /// The lab's background process (started by `up`).
    #[command(hide = true)]
    Daemon {
        #[arg(long)]
        dir: PathBuf,
    },
    /// A node's metric exporter (started inside the node by its boot with
    /// `up --monitoring`): dcgm-exporter on a compute node, the Slurm
    /// exporter on the head.
    #[command(hide = true)]
    Exporter {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        node: String,
        #[arg(long, value_parser = ["head", "compute", "login"])]
        role: String,
        #[arg(long, default_value = "/")]
        rootfs: String,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
