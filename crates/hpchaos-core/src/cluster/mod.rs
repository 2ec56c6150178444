//! Talking to a cluster the way an operator does: SSH to the nodes, Slurm
//! on the head node, the SageMaker API. All of it described by a cluster
//! profile; nothing here knows whether the cluster is the lab.

pub mod alarms;
pub mod capped;
pub mod changes;
pub mod controller_log;
pub mod controllers;
pub mod hma;
pub mod hostlist;
pub mod job_state;
pub mod log_follow;
pub mod node_state;
pub mod pins;
pub mod privilege;
pub mod quote;
pub mod sagemaker;
pub mod slurm;
pub mod slurm_env;
pub mod ssh;
pub mod ssh_client;
pub mod ssh_config;

use std::sync::Arc;

use crate::profile::Profile;
use sagemaker::SageMakerApi;
use slurm::Slurm;
use ssh::{Endpoint, SshPool};

/// Everything needed to reach one cluster.
#[derive(Clone)]
pub struct Cluster {
    pub profile: Profile,
    pub ssh: Arc<SshPool>,
    pub slurm: Slurm,
    pub api: Option<SageMakerApi>,
}

impl Cluster {
    pub async fn connect(profile: &Profile) -> Cluster {
        let ssh = Arc::new(SshPool::new(profile));
        let slurm = Slurm {
            ssh: ssh.clone(),
            head: Endpoint::of_host(&profile.head_node),
            offset: Default::default(),
            version: Default::default(),
            requeue: Default::default(),
        };
        let api = match &profile.sagemaker {
            Some(settings) => Some(SageMakerApi::connect(settings).await),
            None => None,
        };
        Cluster {
            profile: profile.clone(),
            ssh,
            slurm,
            api,
        }
    }

    pub fn node(&self, name: &str) -> Endpoint {
        Endpoint::of_node(&self.profile, name)
    }
}
