//! Host keys pinned together with the instance they belong to. HyperPod
//! replaces nodes by itself, and a replaced node keeps its Slurm name and
//! address but comes with a new host key (docs/HYPERPOD.md, the recovery
//! flow, step 3): known_hosts alone cannot tell that from an impostor. A
//! pin says "this key is this node's while it runs on instance I"; a run
//! that finds the node on another instance (the API says so) accepts the
//! key the head sees for it and pins it again, and a key that changed on
//! the same instance is refused.
//!
//! The pins live beside known_hosts (`KNOWN_HOSTS.hpchaos-pins`), in
//! known_hosts' own format with the instance as the line's comment
//! (`NAME,ADDRESS ssh-ed25519 KEY instance=i-...`), so `ssh-keygen -R NAME
//! -f FILE` removes one. hpchaos writes this file, never known_hosts.

use std::path::{Path, PathBuf};

/// One node's pinned key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The Slurm node name.
    pub node: String,
    /// The address connected to.
    pub address: String,
    /// The key's type (`ssh-ed25519`).
    pub kind: String,
    /// The key, base64, as in known_hosts.
    pub key: String,
    /// The EC2 instance the node ran on when the key was pinned; empty
    /// when the cluster had no API to ask.
    pub instance_id: String,
}

/// The pins file beside `known_hosts`.
pub fn path_for(known_hosts: &Path) -> PathBuf {
    let name = known_hosts
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "known_hosts".to_owned());
    known_hosts.with_file_name(format!("{name}.hpchaos-pins"))
}

/// The pins in `text` (lines that are not pins are skipped).
pub fn parse(text: &str) -> Vec<Pin> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let hosts = words.next()?;
            if hosts.starts_with('#') {
                return None;
            }
            let (node, address) = hosts.split_once(',').unwrap_or((hosts, hosts));
            let kind = words.next()?.to_owned();
            let key = words.next()?.to_owned();
            let instance_id = words
                .find_map(|w| w.strip_prefix("instance="))
                .unwrap_or_default()
                .to_owned();
            Some(Pin {
                node: node.to_owned(),
                address: address.to_owned(),
                kind,
                key,
                instance_id,
            })
        })
        .collect()
}

/// The pins as the file holds them, one line each, by node name.
pub fn render(pins: &[Pin]) -> String {
    let mut pins: Vec<&Pin> = pins.iter().collect();
    pins.sort_by(|a, b| a.node.cmp(&b.node));
    let mut text = String::from(
        "# Host keys pinned by hpchaos with the instance each belongs to (see cluster/pins.rs).\n",
    );
    for pin in pins {
        text.push_str(&format!(
            "{},{} {} {} instance={}\n",
            pin.node, pin.address, pin.kind, pin.key, pin.instance_id
        ));
    }
    text
}

/// Reads the pins at `path`; none when there is no file yet. Errors: the
/// file exists and cannot be read.
pub fn read(path: &Path) -> std::io::Result<Vec<Pin>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Writes `pins` to `path` whole (a temporary file renamed over it), so
/// a crash leaves the old pins or the new ones.
pub fn write(path: &Path, pins: &[Pin]) -> std::io::Result<()> {
    let tmp = path.with_extension("hpchaos-pins.tmp");
    std::fs::write(&tmp, render(pins))?;
    std::fs::rename(&tmp, path)
}

/// A key's SHA256 fingerprint as OpenSSH prints it (`SHA256:...`);
/// `None` for text that is not a key.
pub fn fingerprint(key_base64: &str) -> Option<String> {
    let key = russh::keys::parse_public_key_base64(key_base64).ok()?;
    Some(key.fingerprint(russh::keys::HashAlg::Sha256).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn pins_round_trip_in_known_hosts_format() {
        let pins = vec![Pin {
            node: "ip-10-1-0-12".into(),
            address: "10.1.0.12".into(),
            kind: "ssh-ed25519".into(),
            key: KEY.into(),
            instance_id: "i-0abc".into(),
        }];
        let text = render(&pins);
        assert!(
            text.contains(&format!(
                "ip-10-1-0-12,10.1.0.12 ssh-ed25519 {KEY} instance=i-0abc\n"
            )),
            "{text}"
        );
        assert_eq!(parse(&text), pins);
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("known_hosts"));
        assert!(path.ends_with("known_hosts.hpchaos-pins"));
        assert_eq!(read(&path).unwrap(), Vec::new());
        write(&path, &pins).unwrap();
        assert_eq!(read(&path).unwrap(), pins);
    }

    #[test]
    fn a_fingerprint_is_opensshs() {
        let fp = fingerprint(KEY).unwrap();
        assert!(fp.starts_with("SHA256:") && fp.len() > 40, "{fp}");
        assert_eq!(fingerprint("not a key"), None);
    }
}
