//! The head node's connection from the user's OpenSSH client config
//! (`ssh.config`, e.g. `~/.ssh/config` as HyperPod's `easy-ssh.sh` writes
//! it): the `Host` entry named by `ssh.config_host` (default: the head
//! node's name) gives `HostName`, `Port`, `User`, `IdentityFile`,
//! `ProxyCommand` and `ProxyJump`, for whatever the profile leaves unset.
//! A `ProxyJump` means what OpenSSH makes of it, `ProxyCommand ssh -W %h:%p
//! JUMP`: it is how the head node is reached, and other nodes are then
//! reached through the head, as with SSM. Parsing (Host patterns, first
//! value wins) is russh-config's, the parser of the russh family.

use std::path::PathBuf;

use crate::profile::Profile;

use super::ssh::expand_home;

/// Why the profile's `ssh.config` could not give the head node's
/// connection; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: russh_config::Error,
    },
    #[error(
        "{} has no `Host {alias}` entry with HostName, User, Port, IdentityFile, ProxyCommand or ProxyJump",
        path.display()
    )]
    NoEntry { path: PathBuf, alias: String },
    #[error("an empty ProxyJump")]
    EmptyJump,
    #[error("ProxyJump `{spec}`: `{port}` is not a port")]
    BadPort { spec: String, port: String },
}

/// Fills the profile's unset head-node and SSH settings from its
/// `ssh.config` file. Errors name the file and what is wrong with it.
pub fn apply(profile: &mut Profile) -> Result<(), SshConfigError> {
    let Some(file) = profile.ssh.config.clone() else {
        return Ok(());
    };
    let path = expand_home(&file);
    let text = std::fs::read_to_string(&path).map_err(|source| SshConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let alias = profile
        .ssh
        .config_host
        .clone()
        .unwrap_or_else(|| profile.head_node.name.clone());
    let entry = russh_config::parse(&text, &alias)
        .map_err(|source| SshConfigError::Parse {
            path: path.clone(),
            source,
        })?
        .host_config;
    let nothing = entry.hostname.is_none()
        && entry.port.is_none()
        && entry.user.is_none()
        && entry.identity_file.is_none()
        && entry.proxy_command.is_none()
        && entry.proxy_jump.is_none();
    if nothing {
        return Err(SshConfigError::NoEntry { path, alias });
    }
    let head = &mut profile.head_node;
    if head.address.is_none() {
        head.address = entry.hostname.clone();
    }
    if head.port == 22
        && let Some(port) = entry.port
    {
        head.port = port;
    }
    let ssh = &mut profile.ssh;
    if ssh.user.is_none() {
        ssh.user = entry.user.clone();
    }
    if ssh.key.is_none() {
        ssh.key = entry
            .identity_file
            .as_ref()
            .and_then(|files| files.first())
            .map(|f| f.display().to_string());
    }
    if ssh.proxy_command.is_none() && ssh.jump_host.is_none() {
        ssh.proxy_command = match (&entry.proxy_command, &entry.proxy_jump) {
            (Some(command), _) => Some(command.clone()),
            (None, Some(jump)) => Some(jump_command(&path, jump)?),
            (None, None) => None,
        };
    }
    Ok(())
}

/// `ProxyJump [user@]host[:port][,...]` as OpenSSH runs it: `ssh -W %h:%p`
/// through the jump hosts, which OpenSSH reads from the same config.
fn jump_command(config: &std::path::Path, spec: &str) -> Result<String, SshConfigError> {
    let hops: Vec<&str> = spec.split(',').map(str::trim).collect();
    let (last, before) = hops.split_last().ok_or(SshConfigError::EmptyJump)?;
    let (user_host, port) = match last.rsplit_once(':') {
        Some((rest, port)) => {
            port.parse::<u16>().map_err(|_| SshConfigError::BadPort {
                spec: spec.to_owned(),
                port: port.to_owned(),
            })?;
            (rest, Some(port))
        }
        None => (*last, None),
    };
    let mut command = format!("ssh -F {} -W %h:%p", config.display());
    if !before.is_empty() {
        command.push_str(&format!(" -J {}", before.join(",")));
    }
    if let Some(port) = port {
        command.push_str(&format!(" -p {port}"));
    }
    command.push(' ');
    command.push_str(user_host);
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(config: &std::path::Path, host: Option<&str>) -> Profile {
        let yaml = format!(
            "name: c\nhead_node: {{ name: ip-10-1-0-10 }}\nssh:\n  known_hosts: /dev/null\n  config: {}\n{}",
            config.display(),
            host.map(|h| format!("  config_host: {h}\n"))
                .unwrap_or_default()
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    /// What HyperPod's easy-ssh.sh writes: an alias for the cluster whose
    /// ProxyCommand is SSM's, the instance id as HostName.
    #[test]
    fn an_easy_ssh_entry_gives_the_head_node_its_proxy_command() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "Host other\n  User nobody\n\n\
             Host ml-cluster\n  User ubuntu\n  HostName sagemaker-cluster:abc123_controller-machine-i-0123456789abcdef0\n  \
             IdentityFile ~/.ssh/id_rsa\n  \
             ProxyCommand aws ssm start-session --target %h --document-name AWS-StartSSHSession --parameters portNumber=%p\n",
        )
        .unwrap();
        let mut p = profile(&config, Some("ml-cluster"));
        apply(&mut p).unwrap();
        assert_eq!(p.ssh.user.as_deref(), Some("ubuntu"));
        assert_eq!(
            p.head_node.address.as_deref(),
            Some("sagemaker-cluster:abc123_controller-machine-i-0123456789abcdef0")
        );
        assert_eq!(p.head_node.port, 22);
        assert_eq!(
            p.ssh.proxy_command.as_deref(),
            Some(
                "aws ssm start-session --target %h --document-name AWS-StartSSHSession --parameters portNumber=%p"
            )
        );
        assert!(p.ssh.key.as_deref().unwrap().ends_with(".ssh/id_rsa"));
    }

    #[test]
    fn a_proxy_jump_is_how_the_head_is_reached_and_the_profile_wins() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "Host bastion\n  HostName 192.0.2.7\n  Port 2222\n\n\
             Host ip-10-1-0-10\n  HostName 10.1.0.10\n  User ec2-user\n  ProxyJump admin@bastion\n",
        )
        .unwrap();
        let mut p = profile(&config, None);
        p.ssh.user = Some("root".into());
        apply(&mut p).unwrap();
        assert_eq!(p.ssh.user.as_deref(), Some("root"), "the profile wins");
        assert_eq!(p.head_node.address.as_deref(), Some("10.1.0.10"));
        // OpenSSH's own meaning: ssh -W through the jump host (its alias
        // resolved by OpenSSH from the same file); other nodes through the
        // head, not through the jump host.
        assert!(p.ssh.jump_host.is_none());
        assert_eq!(
            p.ssh.proxy_command.as_deref(),
            Some(format!("ssh -F {} -W %h:%p admin@bastion", config.display()).as_str())
        );
        assert_eq!(
            jump_command(&config, "a@first, b@second:2200").unwrap(),
            format!(
                "ssh -F {} -W %h:%p -J a@first -p 2200 b@second",
                config.display()
            )
        );
        assert!(
            jump_command(&config, "x:port")
                .unwrap_err()
                .to_string()
                .contains("not a port")
        );
    }

    #[test]
    fn a_missing_file_or_entry_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = apply(&mut profile(&missing, None)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot read {}", missing.display())),
            "{err}"
        );
        let config = dir.path().join("config");
        std::fs::write(&config, "Host elsewhere\n  User x\n").unwrap();
        let err = apply(&mut profile(&config, Some("ml-cluster")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no `Host ml-cluster` entry"), "{err}");
    }
}
