//! `hpchaos init`: a cluster profile written from the SageMaker API, as a
//! new user's first step on a real HyperPod. The controller group's node
//! is the head node, reached through SSM Session Manager with a
//! ProxyCommand whose target is `sagemaker-cluster:<cluster id>_<group>-
//! <instance id>`, as HyperPod's `easy-ssh.sh` writes it; the login
//! group's nodes are never targeted. Nothing on the cluster is touched.

use std::path::PathBuf;

use hpchaos::cluster::sagemaker::{ApiNode, ClusterSummary, GroupSummary, SageMakerApi};
use hpchaos::duration::Duration;
use hpchaos::profile::{Compute, Host, Poll, Profile, SageMaker, Slurm, Ssh};

use super::{CliError, Outcome};
use crate::exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The HyperPod cluster's name (`aws sagemaker list-clusters`).
    #[arg(long)]
    cluster_name: String,
    /// Its AWS region.
    #[arg(long)]
    region: String,
    /// A named AWS profile (else the standard credential chain).
    #[arg(long)]
    aws_profile: Option<String>,
    /// Another endpoint than AWS's (the lab's control plane).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// A credentials file read besides ~/.aws/credentials.
    #[arg(long)]
    credentials_file: Option<String>,
    /// The instance group of the Slurm controller (default: the one whose
    /// name says controller or head).
    #[arg(long)]
    controller_group: Option<String>,
    /// The login nodes' instance group (default: the one whose name says
    /// login, if any).
    #[arg(long)]
    login_group: Option<String>,
    /// Who to log in as on the head node.
    #[arg(long, default_value = "ubuntu")]
    user: String,
    /// The private key that opens the SSM session's SSH (else the agent).
    #[arg(long)]
    key: Option<String>,
    /// The known_hosts file to check host keys against.
    #[arg(long, default_value = "~/.ssh/known_hosts")]
    known_hosts: String,
    /// The command the SSH connection to the head goes through (`%p` the
    /// port); by default the AWS CLI's SSM session to the controller's
    /// instance, as HyperPod's easy-ssh.sh writes it.
    #[arg(long)]
    proxy_command: Option<String>,
    /// Where to write the profile (refused if it exists); stdout when
    /// absent.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn exec(args: Args) -> Outcome {
    if let Some(path) = &args.output
        && path.exists()
    {
        return Err(CliError::bad_input(format!(
            "{} exists: hpchaos init does not overwrite a profile; name another file with -o",
            path.display()
        )));
    }
    let settings = SageMaker {
        cluster_name: args.cluster_name.clone(),
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        aws_profile: args.aws_profile.clone(),
        credentials_file: args.credentials_file.clone(),
    };
    let (summary, nodes) = ask(&settings)?;
    let controller = group(
        &args.controller_group,
        &summary.groups,
        "Controller",
        &["controller", "head"],
    )
        .ok_or_else(|| {
            CliError::bad_input(format!(
                "no instance group of {} says which is the Slurm controller (groups: {}): name it with --controller-group",
                args.cluster_name,
                summary.group_names().join(", ")
            ))
        })?;
    let heads: Vec<&ApiNode> = nodes.iter().filter(|n| n.group == controller).collect();
    let [head] = heads.as_slice() else {
        return Err(CliError::failed(format!(
            "the controller group {controller} lists {} instances, not one",
            heads.len()
        )));
    };
    let login = group(&args.login_group, &summary.groups, "Login", &["login"]);
    let target = format!(
        "sagemaker-cluster:{}_{controller}-{}",
        summary.id(),
        head.instance_id
    );
    let proxy_command = args.proxy_command.clone().unwrap_or_else(|| {
        let profile = args
            .aws_profile
            .as_deref()
            .map(|p| format!(" --profile {p}"))
            .unwrap_or_default();
        format!(
            "aws ssm start-session --target {target} --document-name AWS-StartSSHSession --parameters portNumber=%p --region {}{profile}",
            args.region
        )
    });
    let profile = Profile {
        name: args.cluster_name.clone(),
        head_node: Host {
            name: head.node.clone(),
            address: None,
            port: 22,
            local: false,
        },
        login_nodes: nodes
            .iter()
            .filter(|n| login.as_deref() == Some(n.group.as_str()))
            .map(|n| n.node.clone())
            .collect(),
        addresses: Default::default(),
        ssh: Ssh {
            user: Some(args.user.clone()),
            key: args.key.clone(),
            known_hosts: args.known_hosts.clone(),
            jump_host: None,
            proxy_command: Some(proxy_command.clone()),
            config: None,
            config_host: None,
            elevate: None,
            compute: Compute::FromHead,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(60),
            keepalive: Duration::from_secs(15),
            max_channels_per_host: 8,
            accept_replaced_host_keys: true,
        },
        slurm: Slurm::default(),
        sagemaker: Some(settings),
        poll: Poll::default(),
        monitoring: None,
        notify: Vec::new(),
    };
    let yaml = serde_saphyr::to_string(&profile)
        .map_err(|e| CliError::failed(format!("cannot write the profile: {e}")))?;
    let text = format!(
        "# Written by `hpchaos init` from the SageMaker API ({}): the head node\n# through SSM, the login group never targeted. NodeRecovery: {}.\n{yaml}",
        summary.arn, summary.node_recovery
    );
    match &args.output {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?,
        None => out!("{text}"),
    }
    say_next(&args, &profile, head, &controller, &summary, &proxy_command);
    Ok(exit::SUCCESS)
}

/// What was written, and the next steps: the command that records the
/// head's host key (it works as printed) and `status` to try the profile.
fn say_next(
    args: &Args,
    profile: &Profile,
    head: &ApiNode,
    controller: &str,
    summary: &ClusterSummary,
    proxy_command: &str,
) {
    let file = args
        .output
        .as_ref()
        .map_or("PROFILE".to_owned(), |p| p.display().to_string());
    let key = args
        .key
        .as_deref()
        .map(|k| format!(" -i {}", hpchaos::cluster::quote::quote(&expand(k))))
        .unwrap_or_default();
    let address = hpchaos::cluster::ssh::Endpoint::of_host(&profile.head_node).address;
    let add_key = hpchaos::cluster::quote::command_line(&[
        "ssh".to_owned(),
        "-o".to_owned(),
        "StrictHostKeyChecking=accept-new".to_owned(),
        "-o".to_owned(),
        format!("UserKnownHostsFile={}", expand(&args.known_hosts)),
        "-o".to_owned(),
        format!("ProxyCommand={proxy_command}"),
    ]);
    eprintln!(
        "wrote {file}: head node {} ({} in {controller}), {} login node(s), NodeRecovery {}",
        head.node,
        head.instance_id,
        profile.login_nodes.len(),
        summary.node_recovery
    );
    eprintln!(
        "next: record the head node's host key (check its fingerprint first): `{add_key}{key} {}@{address} true`, then `hpchaos status --cluster {file}`",
        args.user
    );
}

/// What `DescribeCluster` and `ListClusterNodes` say of the cluster.
/// Errors (exit 3): the API's, with what to check.
fn ask(settings: &SageMaker) -> Result<(ClusterSummary, Vec<ApiNode>), CliError> {
    super::runtime()?.block_on(async {
        let api = SageMakerApi::connect(settings).await;
        let asked = |e: hpchaos::cluster::sagemaker::ApiError| {
            let hint = e.hint(&settings.region);
            CliError::failed(format!("{e}; {hint}"))
        };
        let summary = api.summary().await.map_err(asked)?;
        let nodes = api.nodes().await.map_err(asked)?;
        Ok((summary, nodes))
    })
}

/// The instance group named `given`, else the first whose name holds one
/// The group given by name, else the one whose `SlurmConfig.NodeType` is
/// `role` (the API's word), else the first whose name has one of `words`
/// (clusters whose API gives no SlurmConfig).
fn group(
    given: &Option<String>,
    groups: &[GroupSummary],
    role: &str,
    words: &[&str],
) -> Option<String> {
    if let Some(name) = given {
        return groups
            .iter()
            .find(|g| g.name == *name)
            .map(|g| g.name.clone());
    }
    groups
        .iter()
        .find(|g| g.node_type.as_deref() == Some(role))
        .or_else(|| {
            groups.iter().find(|g| {
                g.node_type.is_none() && words.iter().any(|w| g.name.to_lowercase().contains(w))
            })
        })
        .map(|g| g.name.clone())
}

/// `~/` as the home folder, for the printed command.
fn expand(path: &str) -> String {
    hpchaos::cluster::ssh::expand_home(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, node_type: Option<&str>) -> GroupSummary {
        GroupSummary {
            name: name.to_owned(),
            node_type: node_type.map(str::to_owned),
            ..GroupSummary::default()
        }
    }

    #[test]
    fn groups_are_found_by_role_then_name_or_given() {
        let groups = vec![
            named("controller-machine", None),
            named("login-group", None),
            named("worker-group-1", None),
        ];
        assert_eq!(
            group(&None, &groups, "Controller", &["controller", "head"]).as_deref(),
            Some("controller-machine")
        );
        assert_eq!(
            group(&None, &groups, "Login", &["login"]).as_deref(),
            Some("login-group")
        );
        assert_eq!(
            group(&Some("worker-group-1".into()), &groups, "Login", &["login"]).as_deref(),
            Some("worker-group-1")
        );
        assert_eq!(
            group(&Some("nope".into()), &groups, "Login", &["login"]),
            None
        );
        assert_eq!(
            group(
                &None,
                &[named("workers", None)],
                "Controller",
                &["controller", "head"]
            ),
            None
        );
        // The API's role wins over names: a login group called `frontend`,
        // and a compute group whose name says `login` is no login group.
        let roles = vec![
            named("head", Some("Controller")),
            named("login-gpus", Some("Compute")),
            named("frontend", Some("Login")),
        ];
        assert_eq!(
            group(&None, &roles, "Login", &["login"]).as_deref(),
            Some("frontend")
        );
        assert_eq!(
            group(&None, &roles, "Controller", &["controller"]).as_deref(),
            Some("head")
        );
    }
}
