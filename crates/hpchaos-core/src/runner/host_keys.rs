//! Host keys across runs (`cluster/pins.rs`), for the nodes hpchaos
//! reaches with its own connections (`ssh.compute: through_head`; with
//! `from_head` the head's client checks them, as HyperPod's lifecycle
//! scripts set it up). Before a scenario reaches its nodes: a pinned key
//! whose instance still runs the node is the key checked (not
//! known_hosts); a node the API shows on another instance than its pin's
//! was replaced by HyperPod since, and the key the head sees for it now is
//! accepted, pinned again and journaled with both fingerprints. A node
//! seen for the first time is pinned with the key known_hosts vouched for,
//! once it answered.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::pins::{self, Pin};
use crate::cluster::ssh::{KEYSCAN_SCRIPT, ScannedKey, parse_keyscan};
use crate::journal::{Entry, PinnedKey};

use super::Runner;

/// Why a node's host key could not be settled before a scenario reaches it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{node} runs on a new instance ({current}; its key was pinned on {pinned}), but the head node could not read its new host key"
)]
pub struct NewKeyUnread {
    pub node: String,
    pub current: String,
    pub pinned: String,
}

impl Runner {
    /// Each of `nodes`' instance now, as the API lists it (empty without
    /// the API, or when it cannot be asked: pins are then checked by key
    /// alone).
    async fn instances_now(&self, nodes: &BTreeSet<String>) -> BTreeMap<String, String> {
        let Some(api) = &self.cluster.api else {
            return BTreeMap::new();
        };
        let names: Vec<String> = nodes.iter().cloned().collect();
        api.named(&names)
            .await
            .map(|listed| {
                listed
                    .into_iter()
                    .map(|n| (n.node, n.instance_id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Before `nodes` are reached: each pinned node is checked against its
    /// pin, or, on a new instance, its new key accepted (see the module's
    /// comment). Errors: a replaced node whose key the head could not read
    /// (nothing is done to it then).
    pub(super) async fn reconcile_host_keys(
        &mut self,
        scenario: &str,
        nodes: &BTreeSet<String>,
    ) -> Result<(), NewKeyUnread> {
        if !self.cluster.ssh.checks_node_keys() {
            return Ok(());
        }
        let pinned: BTreeSet<String> = nodes
            .iter()
            .filter(|n| self.cluster.ssh.pin_of(n).is_some())
            .cloned()
            .collect();
        if pinned.is_empty() {
            return Ok(());
        }
        let now = self.instances_now(&pinned).await;
        for node in &pinned {
            let Some(pin) = self.cluster.ssh.pin_of(node) else {
                continue;
            };
            let current = now.get(node).cloned().unwrap_or_default();
            let same =
                pin.instance_id.is_empty() || current.is_empty() || pin.instance_id == current;
            if same {
                // The pin is this instance's key: it is what is checked.
                self.cluster.ssh.accept_host_key(node, &pin.key);
                continue;
            }
            let Some(scanned) = self.scan_from_head(node).await else {
                return Err(NewKeyUnread {
                    node: node.clone(),
                    current,
                    pinned: pin.instance_id,
                });
            };
            self.accept_and_pin(scenario, node, &current, scanned, Some(&pin));
        }
        Ok(())
    }

    /// After `nodes` answered: each not pinned yet is pinned with the key
    /// known_hosts holds for it and the instance it runs on.
    pub(super) async fn pin_first_contacts(&mut self, nodes: &BTreeSet<String>) {
        if !self.cluster.ssh.checks_node_keys() {
            return;
        }
        let new: BTreeSet<String> = nodes
            .iter()
            .filter(|n| self.cluster.ssh.pin_of(n).is_none())
            .cloned()
            .collect();
        if new.is_empty() {
            return;
        }
        let now = self.instances_now(&new).await;
        for node in &new {
            let endpoint = self.cluster.node(node);
            let Some((kind, key)) = self.cluster.ssh.known_key(&endpoint) else {
                continue;
            };
            let pin = Pin {
                node: node.clone(),
                address: endpoint.address.clone(),
                kind,
                key,
                instance_id: now.get(node).cloned().unwrap_or_default(),
            };
            if let Err(err) = self.cluster.ssh.set_pin(pin) {
                crate::output::say(&format!(
                    "warning: cannot pin the host key of {node} in {}: {err}",
                    self.cluster.ssh.pins_path().display()
                ));
            }
        }
    }

    /// The host key the head node sees for `node` on the cluster network.
    pub(super) async fn scan_from_head(&self, node: &str) -> Option<ScannedKey> {
        let endpoint = self.cluster.node(node);
        let port = endpoint.port.to_string();
        let argv = [
            "sh",
            "-c",
            KEYSCAN_SCRIPT,
            "hpchaos",
            &endpoint.address,
            &port,
        ];
        match self.cluster.ssh.run(&self.cluster.slurm.head, &argv).await {
            Ok(out) if out.status == 0 => parse_keyscan(&out.stdout),
            _ => None,
        }
    }

    /// Accepts `scanned` as `node`'s key for the rest of the run, pins it
    /// with `instance_id` (when hpchaos checks node keys itself), and
    /// journals it with the key it replaces, when a pin had one.
    pub(super) fn accept_and_pin(
        &mut self,
        scenario: &str,
        node: &str,
        instance_id: &str,
        scanned: ScannedKey,
        replaces: Option<&Pin>,
    ) {
        self.cluster.ssh.accept_host_key(node, &scanned.key);
        self.accepted_instances.insert(instance_id.to_owned());
        if self.cluster.ssh.checks_node_keys() {
            let pin = Pin {
                node: node.to_owned(),
                address: self.cluster.node(node).address,
                kind: "ssh-ed25519".to_owned(),
                key: scanned.key.clone(),
                instance_id: instance_id.to_owned(),
            };
            if let Err(err) = self.cluster.ssh.set_pin(pin) {
                crate::output::say(&format!(
                    "warning: cannot pin the new host key of {node} in {}: {err}",
                    self.cluster.ssh.pins_path().display()
                ));
            }
        }
        let replaces = replaces.map(|pin| PinnedKey {
            instance_id: pin.instance_id.clone(),
            fingerprint: pins::fingerprint(&pin.key).unwrap_or_else(|| pin.key.clone()),
        });
        self.log(
            Some(scenario),
            Entry::HostKeyAccepted {
                node: node.to_owned(),
                instance_id: instance_id.to_owned(),
                fingerprint: scanned.fingerprint,
                replaces,
            },
        );
    }
}
