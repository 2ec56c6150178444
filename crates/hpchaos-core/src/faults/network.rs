//! The network between nodes disturbed (`fault: network`): on each
//! target, a `tc` HTB root qdisc (handle `7e57:`) whose default class
//! passes everything at line rate, and a class for the peers holding the
//! effect: a queue of length 0 (`pfifo limit 0`: every packet dropped) for
//! a partition, the class's own rate for a bandwidth limit, a `netem`
//! (`loss N%`, `delay Nms`) for loss and latency; `u32` filters send there
//! only the packets addressed to the peers. (HTB, pfifo and u32 are in
//! every kernel, the lab's too; netem is a module a minimal kernel may
//! lack: there, loss and latency are refused as a failed injection, and
//! nothing is left.) Nothing else goes through it: the head node and login nodes
//! are never peers (refused), and hpchaos reaches a compute node over SSH
//! through the head node, so its own path is untouched by construction;
//! the lab test keeps reading and rolls back through a partition to prove
//! it. A node whose interface has a root qdisc of its own is left alone
//! (refused). The undo (and `recover`) deletes the root qdisc with our
//! handle, on every interface, and checks none is left.

use super::{Plan, Step};
use crate::scenario::model::Network;

/// Run as root with the effect as `$1` ([`NetEffect::tc`]) and the peers'
/// names as the rest: finds the interface the first peer is reached
/// through, adds the HTB qdisc, the peers' class with the effect and a
/// filter per peer (undoing all of it on a failure); exits 3, changing
/// nothing, when the interface has a root qdisc that is not a default one,
/// or a peer does not resolve.
///
/// [`NetEffect::tc`]: crate::scenario::model::NetEffect::tc
pub const APPLY_SCRIPT: &str = r#"effect=$1; shift
addr() { getent hosts "$1" | awk '{print $1; exit}'; }
first=$(addr "$1")
[ -n "$first" ] || { echo "cannot resolve $1" >&2; exit 3; }
dev=$(ip -o route get "$first" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
[ -n "$dev" ] || { echo "no route to $1" >&2; exit 3; }
cur=$(tc qdisc show dev "$dev" root | head -1)
case "$cur" in
  *" 7e57: "*) echo "$dev: already disturbed by hpchaos"; exit 0 ;;
  ""|"qdisc noqueue"*|"qdisc mq "*|"qdisc fq_codel "*|"qdisc pfifo_fast "*|"qdisc fq "*) ;;
  *) echo "$dev has a root qdisc of its own ($cur): not replaced" >&2; exit 3 ;;
esac
undo() { tc qdisc del dev "$dev" root handle 7e57: 2>/dev/null; }
tc qdisc add dev "$dev" root handle 7e57: htb default 1 2>/dev/null || { echo "tc: cannot add an htb qdisc on $dev" >&2; exit 1; }
tc class add dev "$dev" parent 7e57: classid 7e57:1 htb rate 100gbit 2>/dev/null || { undo; exit 1; }
case $effect in
  partition) tc class add dev "$dev" parent 7e57: classid 7e57:4 htb rate 100gbit 2>/dev/null \
      && tc qdisc add dev "$dev" parent 7e57:4 handle 7e58: pfifo limit 0 ;;
  rate:*) tc class add dev "$dev" parent 7e57: classid 7e57:4 htb rate "${effect#rate:}mbit" ceil "${effect#rate:}mbit" 2>/dev/null ;;
  netem:*) tc class add dev "$dev" parent 7e57: classid 7e57:4 htb rate 100gbit 2>/dev/null \
      && tc qdisc add dev "$dev" parent 7e57:4 handle 7e58: netem ${effect#netem:} ;;
  *) false ;;
esac || { undo; echo "tc: cannot set up $effect on $dev" >&2; exit 1; }
for p in "$@"; do
  a=$(addr "$p")
  [ -n "$a" ] || { undo; echo "cannot resolve $p" >&2; exit 3; }
  tc filter add dev "$dev" parent 7e57: protocol ip prio 1 u32 match ip dst "$a"/32 flowid 7e57:4 || { undo; exit 1; }
done
echo "$dev: $effect on the traffic to $*""#;

/// Run as root: deletes every root qdisc with hpchaos's handle (`7e57:`)
/// and says where; fails if one is left.
pub const CLEAR_SCRIPT: &str = r#"done=
for dev in $(ls /sys/class/net); do
  if tc qdisc show dev "$dev" root | grep -q ' 7e57: '; then
    tc qdisc del dev "$dev" root handle 7e57: && done="$done $dev"
  fi
done
for dev in $(ls /sys/class/net); do
  if tc qdisc show dev "$dev" root | grep -q ' 7e57: '; then echo "still disturbed: $dev" >&2; exit 1; fi
done
echo "${done:+cleared:}${done:-nothing to clear}""#;

/// Each target's peers: the scenario's, else the other targets.
pub fn peers_of(network: &Network, target: &str, targets: &[String]) -> Vec<String> {
    let peers: Vec<String> = if network.peers.is_empty() {
        targets.to_vec()
    } else {
        network.peers.clone()
    };
    peers.into_iter().filter(|p| p != target).collect()
}

pub fn plan(network: &Network, targets: &[String]) -> Plan {
    let clear: Vec<Step> = targets
        .iter()
        .map(|node| Step::ClearNetem { node: node.clone() })
        .collect();
    Plan {
        inject: targets
            .iter()
            .map(|node| Step::Netem {
                node: node.clone(),
                effect: network.effect.tc(),
                peers: peers_of(network, node, targets),
            })
            .collect(),
        verify: Vec::new(),
        follow_up: network.duration.map(|d| (d, clear.clone())),
        rollback: clear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_disturbs_its_traffic_to_the_others_only() {
        let net: Network = serde_saphyr::from_str("effect: partition\n").unwrap();
        let targets = vec!["a".to_owned(), "b".to_owned()];
        let plan = plan(&net, &targets);
        assert_eq!(
            plan.inject,
            vec![
                Step::Netem {
                    node: "a".into(),
                    effect: "partition".into(),
                    peers: vec!["b".into()]
                },
                Step::Netem {
                    node: "b".into(),
                    effect: "partition".into(),
                    peers: vec!["a".into()]
                },
            ]
        );
        let net: Network =
            serde_saphyr::from_str("effect: {latency: {ms: 200}}\npeers: [c, d]\nduration: 30s\n")
                .unwrap();
        let plan = super::plan(&net, &["a".to_owned()]);
        assert_eq!(
            plan.inject[0].describe(),
            "on a: tc delay 200ms on its traffic to c, d (nothing else: never the head's, never SSH's)"
        );
        assert_eq!(plan.follow_up.unwrap().1, plan.rollback);
    }
}
