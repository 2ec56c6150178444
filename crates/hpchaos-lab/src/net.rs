//! The lab's network: a bridge on the host and, per node, a network
//! namespace joined to it by a veth pair. `down` removes exactly what `up`
//! made, found by name, and nothing else.

use super::layout::{BRIDGE, BRIDGE_ADDRESS, NodeSpec};
use super::system::{LabError, output, run};

pub fn up(nodes: &[NodeSpec]) -> Result<(), LabError> {
    if !link_exists(BRIDGE) {
        run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{BRIDGE_ADDRESS}/24"),
                "dev",
                BRIDGE,
            ],
        )?;
    }
    run("ip", &["link", "set", BRIDGE, "up"])?;
    for node in nodes {
        attach(&node.netns(), &node.veth(), &node.address)?;
    }
    Ok(())
}

/// Joins network namespace `netns` (made if missing) to the bridge by a
/// veth pair (`veth` on the host, `eth0` inside) with `address`/24.
pub fn attach(netns: &str, veth: &str, address: &str) -> Result<(), LabError> {
    if !netns_exists(netns) {
        run("ip", &["netns", "add", netns])?;
    }
    if !link_exists(veth) {
        run(
            "ip",
            &[
                "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
            ],
        )?;
        run(
            "ip",
            &[
                "-n",
                netns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ],
        )?;
    }
    run("ip", &["link", "set", veth, "master", BRIDGE, "up"])?;
    run("ip", &["-n", netns, "link", "set", "eth0", "up"])?;
    run("ip", &["-n", netns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Removes the namespaces, veths and bridge; missing pieces are fine.
pub fn down(nodes: &[NodeSpec]) -> Result<(), LabError> {
    for node in nodes {
        if netns_exists(&node.netns()) {
            run("ip", &["netns", "del", &node.netns()])?;
        }
        // Deleting the namespace destroys the veth pair, asynchronously.
        remove_link(&node.veth())?;
    }
    remove_link(BRIDGE)
}

/// Deletes a link; one that vanished meanwhile is as good as deleted.
pub fn remove_link(name: &str) -> Result<(), LabError> {
    if !link_exists(name) {
        return Ok(());
    }
    match run("ip", &["link", "del", name]) {
        Err(_) if !link_exists(name) => Ok(()),
        result => result.map(drop),
    }
}

pub fn link_exists(name: &str) -> bool {
    output("ip", &["link", "show", name]).is_ok_and(|o| o.status.success())
}

pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}
