//! `hpchaos status`: the cluster as hpchaos sees it (every node's Slurm
//! state and API view), and who holds its lock.

use std::path::{Path, PathBuf};

use crate::exit;
use hpchaos::cluster::Cluster;

use crate::cli::StatusFormat;

use super::{CliError, Outcome};

/// `hpchaos status`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_name = "PROFILE")]
    cluster: PathBuf,
    /// `table` for people, `json` for scripts (every node with its
    /// decoded Slurm state and its API view).
    #[arg(long, value_enum, default_value = "table")]
    format: StatusFormat,
}

/// Exit 0 with the view; 3 when Slurm or the API cannot be read; 2 for a
/// profile that is not one.
pub fn exec(args: Args) -> Outcome {
    let profile = hpchaos::scenario::load_profile(&args.cluster)
        .map_err(|e| CliError::invalid(&e))?
        .value;
    super::runtime()?.block_on(async move {
        let cluster = Cluster::connect(&profile).await;
        let rows = cluster.slurm.nodes().await.map_err(CliError::failed)?;
        let (api, unmapped, summary) = match &cluster.api {
            Some(api) => {
                let region = profile.sagemaker.as_ref().map_or("", |s| s.region.as_str());
                let failed = |e: hpchaos::cluster::sagemaker::ApiError| {
                    CliError::failed(format!("{e}; {}", e.hint(region)))
                };
                let (nodes, unmapped) = api.listing().await.map_err(failed)?;
                let summary = api.summary().await.map_err(failed)?;
                (Some(nodes), unmapped, Some(summary))
            }
            None => (None, Vec::new(), None),
        };
        // Who holds the cluster's lock, and whether it is alive; a stop
        // asked of it and a hold on the cluster.
        let lock = lock_words(&cluster, &args.cluster).await;
        let stops = stop_words(&cluster, &args.cluster).await;
        if args.format == StatusFormat::Json {
            let mut value = hpchaos::status::render_json(
                &profile.name,
                &profile.head_node.name,
                &profile.login_nodes,
                &rows,
                api.as_deref(),
                &unmapped,
            );
            if let Some(fields) = value.as_object_mut() {
                fields.insert("lock".to_owned(), serde_json::Value::String(lock));
                fields.insert("stop".to_owned(), serde_json::json!(stops.0));
                fields.insert("hold".to_owned(), serde_json::json!(stops.1));
                if let Some(summary) = &summary {
                    let nodes = api.as_deref().unwrap_or_default();
                    fields.insert(
                        "instance_groups".to_owned(),
                        hpchaos::status::groups_json(summary, nodes),
                    );
                    let disagree = match summary.groups.iter().any(|g| g.node_type.is_some()) {
                        true => hpchaos::preflight::roles_disagree(&profile, summary, nodes),
                        false => Vec::new(),
                    };
                    fields.insert("role_disagreements".to_owned(), serde_json::json!(disagree));
                }
            }
            let text = serde_json::to_string_pretty(&value).map_err(CliError::failed)?;
            hpchaos::output::println(&text);
            return Ok(exit::SUCCESS);
        }
        // The head and login nodes are instances, not Slurm nodes.
        let mut outside: Vec<&str> = profile.login_nodes.iter().map(String::as_str).collect();
        outside.push(&profile.head_node.name);
        hpchaos::output::print(&hpchaos::status::render(&outside, &rows, api.as_deref()));
        if let Some(summary) = &summary {
            let nodes = api.as_deref().unwrap_or_default();
            hpchaos::output::print(&hpchaos::status::render_groups(summary, nodes));
            if summary.groups.iter().any(|g| g.node_type.is_some()) {
                for said in hpchaos::preflight::roles_disagree(&profile, summary, nodes) {
                    outln!("profile and API disagree: {said}");
                }
            }
        }
        outln!("lock: {lock}");
        if let Some(stop) = &stops.0 {
            outln!("stop: {stop}");
        }
        if let Some(hold) = &stops.1 {
            outln!("hold: {hold}");
        }
        for u in &unmapped {
            outln!(
                "unmapped instance {} ({}, {}): {}",
                u.instance_id,
                u.group,
                u.status,
                u.why
            );
        }
        Ok(exit::SUCCESS)
    })
}

/// The cluster's lock in words, for `status`: `free`, or who holds it,
/// since when, the lease's age, and whether it is alive (by the rules
/// `recover` uses) with the command that cleans up after a dead one.
async fn lock_words(cluster: &Cluster, profile_path: &Path) -> String {
    use hpchaos::runner::lock;
    let head = &cluster.slurm.head;
    let read = cluster
        .ssh
        .run(
            head,
            &["sh", "-c", lock::READ_SCRIPT, "hpchaos", lock::LOCK_DIR],
        )
        .await;
    let state = match read {
        Ok(out) => lock::parse_answer(&out.stdout),
        Err(err) => return format!("cannot be read: {err}"),
    };
    match state {
        Some(lock::LockState::Free) => "free".to_owned(),
        Some(lock::LockState::Held {
            owner: Some(owner),
            lease_age,
            ..
        }) => {
            let age = lease_age.map_or("?".to_owned(), |a| a.to_string());
            let boot = lock::this_boot();
            match lock::stale_because(
                &owner,
                lease_age,
                &lock::this_host(),
                boot.as_deref(),
                lock::pid_alive,
            ) {
                None => format!("held by {} (lease renewed {age}s ago)", owner.describe()),
                Some(why) => format!(
                    "held by {}, which is DEAD: {why}; undo what it left and release the lock with: hpchaos recover --cluster {}",
                    owner.describe(),
                    profile_path.display()
                ),
            }
        }
        Some(lock::LockState::Held { lease_age, .. }) => format!(
            "held, with no readable owner record ({}s old)",
            lease_age.map_or("?".to_owned(), |a| a.to_string())
        ),
        _ => "cannot be read (an answer that is not the lock's)".to_owned(),
    }
}

/// The stop request in the lock and the hold on the cluster, in words
/// (`None` where there is none; a head that cannot be read says so in the
/// hold's place).
async fn stop_words(cluster: &Cluster, profile_path: &Path) -> (Option<String>, Option<String>) {
    use hpchaos::runner::emergency;
    let read = cluster
        .ssh
        .run(
            &cluster.slurm.head,
            &[
                "sh",
                "-c",
                emergency::READ_SCRIPT,
                "hpchaos",
                hpchaos::runner::LOCK_DIR,
                emergency::HOLD_FILE,
            ],
        )
        .await;
    let standing = match read {
        Ok(out) => emergency::parse_standing(&out.stdout),
        Err(err) => return (None, Some(format!("cannot be read: {err}"))),
    };
    (
        standing.stop.map(|s| {
            format!(
                "asked by {} at {}: {} (the run stops at its next lease renewal)",
                s.by, s.at, s.reason
            )
        }),
        standing.hold.map(|h| {
            format!(
                "ON HOLD since {} by {}: {}; no run starts until: hpchaos stop --cluster {} --release",
                h.at,
                h.by,
                h.reason,
                profile_path.display()
            )
        }),
    )
}
