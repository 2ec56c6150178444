//! Commands on cluster hosts: on this machine for a host marked `local`
//! (hpchaos on the head node), otherwise over SSH through async-ssh2-tokio:
//! one connection per host,
//! reused across polls; commands run as channels, at most
//! `max_channels_per_host` at once (below sshd's MaxSessions); keepalive;
//! every call under a timeout; host keys checked against known_hosts, and a
//! mismatch refused with the fix, unless the run accepted that node's new
//! key after a verified replacement; a dropped connection is reopened with
//! backoff on the next call (a rebooting node is expected to drop).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_ssh2_tokio::{AuthMethod, Client, Config, ServerCheckMethod};
use tokio::sync::Semaphore;

use super::quote::command_line;
use crate::profile::{Host, Profile};

/// Where to reach one host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The Slurm node name, used in messages and known_hosts.
    pub name: String,
    pub address: String,
    pub port: u16,
    /// This machine: commands run here, not over SSH.
    pub local: bool,
}

impl Endpoint {
    /// A node of the profile: its listed address, or the one its
    /// `ip-a-b-c-d` name implies, or the name itself.
    pub fn of_node(profile: &Profile, name: &str) -> Endpoint {
        let address = profile
            .addresses
            .get(name)
            .cloned()
            .or_else(|| address_from_name(name))
            .unwrap_or_else(|| name.to_owned());
        Endpoint {
            name: name.to_owned(),
            address,
            port: 22,
            local: false,
        }
    }

    pub fn of_host(host: &Host) -> Endpoint {
        Endpoint {
            name: host.name.clone(),
            address: host
                .address
                .clone()
                .or_else(|| address_from_name(&host.name))
                .unwrap_or_else(|| host.name.clone()),
            port: host.port,
            local: host.local,
        }
    }
}

/// `ip-10-1-0-11` → `10.1.0.11`, HyperPod's naming.
pub fn address_from_name(name: &str) -> Option<String> {
    let octets: Vec<&str> = name.strip_prefix("ip-")?.split('-').collect();
    let valid = octets.len() == 4 && octets.iter().all(|o| o.parse::<u8>().is_ok());
    valid.then(|| octets.join("."))
}

/// What a remote command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub status: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "the host key of {host} does not match {known_hosts}; if the node was replaced, remove the old key with `ssh-keygen -R {address} -f {known_hosts}` (and `-R {host}`) after checking the new one"
    )]
    HostKeyMismatch {
        host: String,
        address: String,
        known_hosts: String,
    },
    #[error(
        "{known_hosts} has no host key for {host} ({address} port {port}); add it after checking it out of band: `ssh-keyscan -p {port} {address} >> {known_hosts}`"
    )]
    UnknownHost {
        host: String,
        address: String,
        port: u16,
        known_hosts: String,
    },
    /// A file the profile names cannot be used (`setting` says which).
    #[error("cannot connect to {host}: {setting} {path}: {detail}")]
    Setup {
        host: String,
        setting: &'static str,
        path: String,
        detail: String,
    },
    #[error("cannot connect to {host} ({address}): {detail}")]
    Connect {
        host: String,
        address: String,
        detail: String,
    },
    #[error("`{command}` on {host} did not finish within {after:?}")]
    Timeout {
        host: String,
        command: String,
        after: Duration,
    },
    #[error("`{command}` on {host} failed: {detail}")]
    Command {
        host: String,
        command: String,
        detail: String,
    },
}

impl SshError {
    /// Worth retrying later (the node may be rebooting), unlike a host key
    /// mismatch, which needs a person.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            SshError::HostKeyMismatch { .. }
                | SshError::UnknownHost { .. }
                | SshError::Setup { .. }
        )
    }
}

struct Slot {
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    channels: Semaphore,
    /// Consecutive failed connects, and when the last one failed.
    failures: Mutex<(u32, Option<Instant>)>,
}

/// Connections to every host of one cluster.
pub struct SshPool {
    user: String,
    key: Option<PathBuf>,
    known_hosts: PathBuf,
    /// Host keys (base64, ed25519) accepted for this run after a verified
    /// replacement, by node name; they stand in for known_hosts.
    accepted_keys: Mutex<HashMap<String, String>>,
    connect_timeout: Duration,
    command_timeout: Duration,
    keepalive: Duration,
    max_channels: usize,
    jump: Option<Endpoint>,
    slots: Mutex<HashMap<Endpoint, Arc<Slot>>>,
}

/// `~/x` → `$HOME/x`; other paths as they are.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

impl SshPool {
    pub fn new(profile: &Profile) -> SshPool {
        let ssh = &profile.ssh;
        SshPool {
            user: ssh.user.clone(),
            key: ssh.key.as_deref().map(expand_home),
            known_hosts: expand_home(&ssh.known_hosts),
            accepted_keys: Mutex::new(HashMap::new()),
            connect_timeout: ssh.connect_timeout.as_std(),
            command_timeout: ssh.command_timeout.as_std(),
            keepalive: ssh.keepalive.as_std(),
            max_channels: usize::from(ssh.max_channels_per_host.clamp(1, 9)),
            jump: ssh
                .jump_host
                .as_ref()
                .filter(|h| !h.local)
                .map(Endpoint::of_host),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// From now on, `node` must present this key (base64 ed25519, no type
    /// prefix) instead of the one in known_hosts. Only for a node whose
    /// replacement the API confirmed: the caller checks that.
    pub fn accept_host_key(&self, node: &str, key: &str) {
        self.accepted_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_owned(), key.to_owned());
        // A connection to the old instance, if one is cached, is dropped.
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|endpoint, _| endpoint.name != node);
    }

    fn slot(&self, endpoint: &Endpoint) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(endpoint.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    client: tokio::sync::Mutex::new(None),
                    channels: Semaphore::new(self.max_channels),
                    failures: Mutex::new((0, None)),
                })
            })
            .clone()
    }

    /// Runs `argv` on `endpoint`, quoted, under the command timeout.
    pub async fn run<S: AsRef<str>>(
        &self,
        endpoint: &Endpoint,
        argv: &[S],
    ) -> Result<Output, SshError> {
        self.run_line(endpoint, &command_line(argv), self.command_timeout)
            .await
    }

    /// Runs a command line built by this crate (never scenario text).
    pub async fn run_line(
        &self,
        endpoint: &Endpoint,
        line: &str,
        limit: Duration,
    ) -> Result<Output, SshError> {
        if endpoint.local {
            return run_here(endpoint, line, limit).await;
        }
        let slot = self.slot(endpoint);
        let _permit = slot
            .channels
            .acquire()
            .await
            .map_err(|_| SshError::Command {
                host: endpoint.name.clone(),
                command: line.to_owned(),
                detail: "connection pool closed".to_owned(),
            })?;
        // One retry on a fresh connection: the cached one may have died.
        for attempt in 0..2 {
            let client = self.client(endpoint, &slot).await?;
            match tokio::time::timeout(limit, client.execute(line)).await {
                Err(_) => {
                    return Err(SshError::Timeout {
                        host: endpoint.name.clone(),
                        command: line.to_owned(),
                        after: limit,
                    });
                }
                Ok(Ok(result)) => {
                    return Ok(Output {
                        stdout: result.stdout,
                        stderr: result.stderr,
                        status: result.exit_status,
                    });
                }
                Ok(Err(async_ssh2_tokio::Error::CommandDidntExit)) => {
                    return Err(SshError::Command {
                        host: endpoint.name.clone(),
                        command: line.to_owned(),
                        detail: "the command was killed before it exited".to_owned(),
                    });
                }
                Ok(Err(err)) => {
                    *slot.client.lock().await = None;
                    if attempt == 1 {
                        return Err(SshError::Command {
                            host: endpoint.name.clone(),
                            command: line.to_owned(),
                            detail: err.to_string(),
                        });
                    }
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn client(&self, endpoint: &Endpoint, slot: &Slot) -> Result<Arc<Client>, SshError> {
        let mut guard = slot.client.lock().await;
        if let Some(client) = guard.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        self.backoff(slot).await;
        match self.connect(endpoint).await {
            Ok(client) => {
                *slot.failures.lock().unwrap_or_else(|p| p.into_inner()) = (0, None);
                let client = Arc::new(client);
                *guard = Some(client.clone());
                Ok(client)
            }
            Err(err) => {
                let mut failures = slot.failures.lock().unwrap_or_else(|p| p.into_inner());
                *failures = (failures.0 + 1, Some(Instant::now()));
                Err(err)
            }
        }
    }

    /// After n failed connects, waits up to 2^n × 200 ms (at most 5 s)
    /// since the last failure before trying again.
    async fn backoff(&self, slot: &Slot) {
        let (count, last) = *slot.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let (true, Some(last)) = (count > 0, last) {
            let wait = Duration::from_millis(200u64.saturating_mul(1 << count.min(5)))
                .min(Duration::from_secs(5));
            let elapsed = last.elapsed();
            if elapsed < wait {
                tokio::time::sleep(wait - elapsed).await;
            }
        }
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Client, SshError> {
        let auth = match &self.key {
            Some(path) => AuthMethod::with_key_file(path, None),
            None => AuthMethod::with_agent(),
        };
        let known_hosts = self.known_hosts.clone();
        let accepted = self
            .accepted_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&endpoint.name)
            .cloned();
        // Say which file is wrong, rather than the library's bare
        // "Unknown server key".
        if let Some(key) = &self.key
            && let Err(err) = std::fs::File::open(key)
        {
            return Err(SshError::Setup {
                host: endpoint.name.clone(),
                setting: "ssh.key",
                path: key.display().to_string(),
                detail: format!(
                    "{err}; point ssh.key at your private key, or remove it to use the SSH agent"
                ),
            });
        }
        if accepted.is_none() {
            if let Err(err) = std::fs::File::open(&known_hosts) {
                return Err(SshError::Setup {
                    host: endpoint.name.clone(),
                    setting: "ssh.known_hosts",
                    path: known_hosts.display().to_string(),
                    detail: format!(
                        "{err}; create it with the hosts' keys (`ssh-keyscan -p {} {} >> {}`, after checking them)",
                        endpoint.port,
                        endpoint.address,
                        known_hosts.display()
                    ),
                });
            }
            let known = russh::keys::known_hosts::known_host_keys_path(
                &endpoint.address,
                endpoint.port,
                &known_hosts,
            )
            .map(|keys| !keys.is_empty())
            .unwrap_or(false);
            if !known {
                return Err(SshError::UnknownHost {
                    host: endpoint.name.clone(),
                    address: endpoint.address.clone(),
                    port: endpoint.port,
                    known_hosts: known_hosts.display().to_string(),
                });
            }
        }
        let check = match accepted {
            Some(key) => ServerCheckMethod::with_public_key(&key),
            None => ServerCheckMethod::with_known_hosts_file(&known_hosts.display().to_string()),
        };
        let config = Config {
            keepalive_interval: Some(self.keepalive),
            keepalive_max: 3,
            inactivity_timeout: None,
            ..Config::default()
        };
        let address = (endpoint.address.as_str(), endpoint.port);
        let connecting = async {
            match &self.jump {
                Some(jump) if jump != endpoint => {
                    let via = Box::pin(self.connect(jump)).await?;
                    Client::connect_via_with_config(&via, address, &self.user, auth, check, config)
                        .await
                        .map_err(|e| self.connect_error(endpoint, e, &known_hosts))
                }
                _ => Client::connect_with_config(address, &self.user, auth, check, config)
                    .await
                    .map_err(|e| self.connect_error(endpoint, e, &known_hosts)),
            }
        };
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(SshError::Connect {
                    host: endpoint.name.clone(),
                    address: endpoint.address.clone(),
                    detail: format!("no answer within {:?}", self.connect_timeout),
                })
            })
    }

    fn connect_error(
        &self,
        endpoint: &Endpoint,
        err: async_ssh2_tokio::Error,
        known_hosts: &std::path::Path,
    ) -> SshError {
        match err {
            async_ssh2_tokio::Error::ServerCheckFailed => SshError::HostKeyMismatch {
                host: endpoint.name.clone(),
                address: endpoint.address.clone(),
                known_hosts: known_hosts.display().to_string(),
            },
            other => SshError::Connect {
                host: endpoint.name.clone(),
                address: endpoint.address.clone(),
                detail: other.to_string(),
            },
        }
    }
}

/// Runs a command line on this machine through `sh -c`, as sshd would.
async fn run_here(endpoint: &Endpoint, line: &str, limit: Duration) -> Result<Output, SshError> {
    let running = tokio::process::Command::new("sh")
        .args(["-c", line])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(limit, running).await {
        Err(_) => Err(SshError::Timeout {
            host: endpoint.name.clone(),
            command: line.to_owned(),
            after: limit,
        }),
        Ok(Err(err)) => Err(SshError::Command {
            host: endpoint.name.clone(),
            command: line.to_owned(),
            detail: err.to_string(),
        }),
        Ok(Ok(out)) => Ok(Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            // Killed by a signal: 128 + n, as a shell reports it.
            status: out
                .status
                .code()
                .or_else(|| {
                    std::os::unix::process::ExitStatusExt::signal(&out.status).map(|s| 128 + s)
                })
                .unwrap_or(255) as u32,
        }),
    }
}

/// A node's host key as the head node sees it: the base64 key and its
/// SHA256 fingerprint, from the output of [`KEYSCAN_SCRIPT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedKey {
    pub key: String,
    pub fingerprint: String,
}

/// Run on the head node with the node's address as `$1` and its SSH port
/// as `$2`: prints the node's
/// ed25519 host key line, then its fingerprint line from `ssh-keygen -l`.
pub const KEYSCAN_SCRIPT: &str = "k=$(ssh-keyscan -t ed25519 -T 2 -p \"$2\" \"$1\" 2>/dev/null | grep -v '^#' | head -n 1); [ -n \"$k\" ] || exit 1; printf '%s\\n' \"$k\"; printf '%s\\n' \"$k\" | ssh-keygen -l -f -";

/// Parses [`KEYSCAN_SCRIPT`]'s output: `ADDR ssh-ed25519 KEY` then
/// `256 SHA256:FP ADDR (ED25519)`.
pub fn parse_keyscan(output: &str) -> Option<ScannedKey> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let key_line: Vec<&str> = lines.next()?.split_whitespace().collect();
    let (kind, key) = (key_line.get(1)?, key_line.get(2)?);
    let fingerprint = lines
        .next()?
        .split_whitespace()
        .find(|f| f.starts_with("SHA256:"))?;
    (*kind == "ssh-ed25519").then(|| ScannedKey {
        key: (*key).to_owned(),
        fingerprint: fingerprint.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_host_runs_commands_here_through_sh() {
        let here = Endpoint {
            name: "ip-10-1-0-10".into(),
            address: "127.0.0.1".into(),
            port: 22,
            local: true,
        };
        let line = "printf out; printf err >&2; exit 3";
        let out = run_here(&here, line, Duration::from_secs(5)).await.unwrap();
        assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("out", "err"));
        assert_eq!(out.status, 3);
        let slow = run_here(&here, "sleep 5", Duration::from_millis(100)).await;
        assert!(matches!(slow, Err(SshError::Timeout { .. })), "{slow:?}");
    }

    #[test]
    fn keyscan_output_gives_key_and_fingerprint() {
        // Recorded from the lab's head node.
        let out = "10.1.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILtarnn6u49j7YVgUmi9oTnRE3h9uTSzxjddqD/+clz+\n\
                   256 SHA256:47d6JXLJySfiwAby1lzRLV5aNb0DRurd/01tAedACVQ 10.1.0.11 (ED25519)\n";
        assert_eq!(
            parse_keyscan(out),
            Some(ScannedKey {
                key: "AAAAC3NzaC1lZDI1NTE5AAAAILtarnn6u49j7YVgUmi9oTnRE3h9uTSzxjddqD/+clz+".into(),
                fingerprint: "SHA256:47d6JXLJySfiwAby1lzRLV5aNb0DRurd/01tAedACVQ".into(),
            })
        );
        assert_eq!(parse_keyscan(""), None);
        assert_eq!(
            parse_keyscan("10.1.0.11 ssh-rsa AAAAB3Nza\n2048 SHA256:x 10.1.0.11 (RSA)\n"),
            None
        );
    }

    #[test]
    fn hyperpod_names_imply_addresses() {
        assert_eq!(
            address_from_name("ip-10-1-0-11").as_deref(),
            Some("10.1.0.11")
        );
        assert_eq!(address_from_name("ip-10-1-0-311"), None);
        assert_eq!(address_from_name("gpu-node-1"), None);
    }
}
