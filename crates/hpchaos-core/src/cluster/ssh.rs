//! Commands on cluster hosts: on this machine for a host marked `local`
//! (hpchaos on the head node), otherwise over SSH (`ssh_client.rs`): one
//! connection per host, reused across polls; commands run as channels, at
//! most `max_channels_per_host` at once (below sshd's MaxSessions);
//! keepalive; every call under a timeout; host keys checked against
//! known_hosts, and a mismatch refused with the fix, unless the run
//! accepted that node's new key after a verified replacement; a dropped
//! connection is reopened with backoff on the next call (a rebooting node
//! is expected to drop; so is a proxy command that died).
//!
//! Hops, as operators reach HyperPod: the head node over TCP or through
//! `ssh.proxy_command` (SSM's `AWS-StartSSHSession`: its stdin/stdout is
//! the connection). Other nodes, with `ssh.compute: from_head` (the
//! default), from the head: it runs `ssh NODE` with its own user, key and
//! client config, as HyperPod's lifecycle scripts set them up (the
//! cluster's own key in the shared home); with `through_head`, this
//! machine's own connection with the profile's key, directly, through
//! `ssh.jump_host`, or, when the head is behind a proxy command, through
//! the head's connection. A hop's connection is the pool's own long-lived
//! one (SSM allows only a few new sessions a second): one to the head per
//! run, channels through it.
//!
//! Root, where a command needs it (`privilege.rs` says which and why): under
//! `sudo -n` when the profile's user is not root (`ssh.become`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

pub use super::ssh_client::Streamed;
use super::ssh_client::{Auth, ConnectError, Connection, HostCheck, Transport};

use super::capped::Capped;
use super::pins::{self, Pin};
use super::privilege::{self, Elevation, Root};
use super::quote::command_line;
use crate::profile::{Become, Compute, Host, Profile};

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
        Endpoint::of_node_in(&profile.addresses, name)
    }

    /// A node by name, at its address in `addresses` (the profile's), else
    /// the one its `ip-a-b-c-d` name gives, else its name.
    pub fn of_node_in(
        addresses: &std::collections::BTreeMap<String, String>,
        name: &str,
    ) -> Endpoint {
        let address = addresses
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
    #[error("the host key of {host} ({address}) does not match {known_hosts}; {fix}")]
    HostKeyMismatch {
        host: String,
        address: String,
        known_hosts: String,
        /// How to replace it once checked: commands that work as printed,
        /// through the profile's proxy command and key.
        fix: String,
    },
    #[error("{known_hosts} has no host key for {host} ({address} port {port}); {fix}")]
    UnknownHost {
        host: String,
        address: String,
        port: u16,
        known_hosts: String,
        /// How to add it: `ssh-keyscan` where the host is reachable, the
        /// proxy command's own way where it is not (SSM).
        fix: String,
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
    /// No answer within `ssh.command_timeout`. The hint names the cause
    /// seen most often when every command times out: the account's shell
    /// start-up files (sshd runs commands through the user's shell, and
    /// bash reads `~/.bashrc` then) waiting on something.
    #[error(
        "`{command}` on {host} did not finish within {after:?} (ssh.command_timeout); if `ssh {host} true` is slow too, the account's shell start-up files (~/.bashrc) are waiting on something"
    )]
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
    /// sudo refused to run a command that needs root (see
    /// [`privilege::Root`]): `why` it needs root, and how to allow it.
    #[error("{user} cannot become root with `sudo -n` on {host} to {why}: {said}; {fix}")]
    Sudo {
        host: String,
        user: String,
        why: &'static str,
        /// What sudo said.
        said: String,
        fix: String,
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
                | SshError::Sudo { .. }
        )
    }
}

struct Slot {
    client: tokio::sync::Mutex<Option<Arc<Connection>>>,
    channels: Semaphore,
    /// Consecutive failed connects, and when the last one failed.
    failures: Mutex<(u32, Option<Instant>)>,
}

/// Connections to every host of one cluster.
pub struct SshPool {
    user: String,
    /// How commands that need root get it.
    elevation: Elevation,
    /// How nodes other than the head are reached.
    compute: Compute,
    /// Host keys pinned with their instances, beside known_hosts
    /// (`pins.rs`), and where.
    pins: Mutex<Vec<Pin>>,
    pins_path: PathBuf,
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
    /// The head node, and the command its connection goes through (with
    /// OpenSSH's `%h %p %r %%` tokens), if any.
    head: Endpoint,
    proxy_command: Option<String>,
    slots: Mutex<HashMap<Endpoint, Arc<Slot>>>,
}

/// Why OpenSSH would refuse a `ProxyCommand`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyCommandError {
    #[error("ssh.proxy_command is empty")]
    Empty,
    #[error("ssh.proxy_command: unknown token `%{0}`")]
    UnknownToken(char),
    #[error("ssh.proxy_command ends with a lone `%`")]
    LonePercent,
}

/// Whether OpenSSH would run this `ProxyCommand`: not empty, and no `%`
/// token but `%h %p %r %n %%`.
pub fn check_proxy_command(command: &str) -> Result<(), ProxyCommandError> {
    if command.trim().is_empty() {
        return Err(ProxyCommandError::Empty);
    }
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('h' | 'p' | 'r' | 'n' | '%') => {}
                Some(other) => return Err(ProxyCommandError::UnknownToken(other)),
                None => return Err(ProxyCommandError::LonePercent),
            }
        }
    }
    Ok(())
}

/// The user running hpchaos, OpenSSH's default remote user.
fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_owned())
}

/// OpenSSH's tokens in a `ProxyCommand`: `%h` the host (address), `%p` the
/// port, `%r` the remote user, `%n` the name as given, `%%` a `%`.
pub fn expand_proxy_command(command: &str, endpoint: &Endpoint, user: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(&endpoint.address),
            Some('p') => out.push_str(&endpoint.port.to_string()),
            Some('r') => out.push_str(user),
            Some('n') => out.push_str(&endpoint.name),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
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
        let user = ssh.user.clone().unwrap_or_else(local_user);
        let pins_path = pins::path_for(&expand_home(&ssh.known_hosts));
        let elevation = match ssh.elevate {
            Some(Become::Sudo) => Elevation::Sudo,
            Some(Become::None) => Elevation::AsIs,
            None if user == "root" => Elevation::AsIs,
            None => Elevation::Sudo,
        };
        SshPool {
            user,
            elevation,
            compute: ssh.compute,
            // Unreadable pins are none: a node is then checked against
            // known_hosts alone, and pinning it again says why it failed.
            pins: Mutex::new(pins::read(&pins_path).unwrap_or_default()),
            pins_path,
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
            head: Endpoint::of_host(&profile.head_node),
            proxy_command: ssh.proxy_command.clone(),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Whether hpchaos connects to nodes other than the head itself (and so
    /// checks their host keys): `ssh.compute: through_head`.
    pub fn checks_node_keys(&self) -> bool {
        self.compute == Compute::ThroughHead
    }

    /// The key pinned for `node`, if any (see [`pins`]).
    pub fn pin_of(&self, node: &str) -> Option<Pin> {
        let pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.iter().find(|p| p.node == node).cloned()
    }

    /// Pins `pin` (replacing `pin.node`'s) and writes the pins file.
    /// Errors: it cannot be written (the key is still accepted for the run).
    pub fn set_pin(&self, pin: Pin) -> std::io::Result<()> {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.retain(|p| p.node != pin.node);
        pins.push(pin);
        pins::write(&self.pins_path, &pins)
    }

    /// Where the pins are kept.
    pub fn pins_path(&self) -> &std::path::Path {
        &self.pins_path
    }

    /// The key known_hosts holds for `endpoint` (type, base64), if any.
    pub fn known_key(&self, endpoint: &Endpoint) -> Option<(String, String)> {
        let keys = russh::keys::known_hosts::known_host_keys_path(
            &endpoint.address,
            endpoint.port,
            &self.known_hosts,
        )
        .ok()?;
        let (_, key) = keys.into_iter().next()?;
        let text = key.to_openssh().ok()?;
        let mut words = text.split_whitespace();
        Some((words.next()?.to_owned(), words.next()?.to_owned()))
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
        self.run_line(
            endpoint,
            &super::slurm_env::line(argv),
            self.command_timeout,
        )
        .await
    }

    /// Runs `argv` on `endpoint` as root, `need` saying why (see
    /// [`Root`]): under `sudo -n` when the profile's user is not root.
    /// Errors: as [`SshPool::run_line_as`].
    pub async fn run_as_root<S: AsRef<str>>(
        &self,
        endpoint: &Endpoint,
        need: Root,
        argv: &[S],
    ) -> Result<Output, SshError> {
        self.run_line_as(
            endpoint,
            Some(need),
            &super::slurm_env::line(argv),
            self.command_timeout,
        )
        .await
    }

    /// Runs a command line built by this crate, as root when `root` says
    /// why it must be (see [`Root`]), else as the profile's user. Errors:
    /// as [`SshPool::run_line`], and [`SshError::Sudo`] when sudo refused.
    pub async fn run_line_as(
        &self,
        endpoint: &Endpoint,
        root: Option<Root>,
        line: &str,
        limit: Duration,
    ) -> Result<Output, SshError> {
        let Some(need) = root else {
            return self.run_line(endpoint, line, limit).await;
        };
        let out = self
            .run_line(endpoint, &self.elevation.wrap(line), limit)
            .await?;
        if self.elevation == Elevation::Sudo && privilege::sudo_refused(out.status, &out.stderr) {
            return Err(self.sudo_error(endpoint, need, &out.stderr));
        }
        Ok(out)
    }

    /// The line as root, for a caller that streams it (see
    /// [`SshPool::follow`]).
    pub fn as_root(&self, line: &str) -> String {
        self.elevation.wrap(line)
    }

    /// Whether commands that need root go through sudo.
    pub fn uses_sudo(&self) -> bool {
        self.elevation == Elevation::Sudo
    }

    /// sudo's refusal on `endpoint` as an error with the fix.
    pub fn sudo_error(&self, endpoint: &Endpoint, need: Root, stderr: &str) -> SshError {
        SshError::Sudo {
            host: endpoint.name.clone(),
            user: self.user.clone(),
            why: need.why(),
            said: stderr.trim().lines().next().unwrap_or("").to_owned(),
            fix: privilege::sudo_fix(&self.user, &endpoint.name),
        }
    }

    /// `ssh.command_timeout`: the bound of one command.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// The profile's user on the nodes.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Runs a command line built by this crate (never scenario text), as
    /// the profile's user. A node other than the head is reached the way
    /// `ssh.compute` says (see [`SshPool::second_hop`]).
    pub async fn run_line(
        &self,
        endpoint: &Endpoint,
        line: &str,
        limit: Duration,
    ) -> Result<Output, SshError> {
        if let Some(hop) = self.second_hop(endpoint, line) {
            let out = self.run_on(&self.head.clone(), &hop, limit).await?;
            return self.hop_answer(endpoint, line, out);
        }
        self.run_on(endpoint, line, limit).await
    }

    /// With `ssh.compute: from_head`, how the head runs `line` on
    /// `endpoint` (a node other than the head): OpenSSH's client there,
    /// with the head's own user, key and config, never prompting, the
    /// node by its Slurm name (as HyperPod's nodes know each other).
    /// `None`: `endpoint` is reached directly.
    fn second_hop(&self, endpoint: &Endpoint, line: &str) -> Option<String> {
        if self.compute != Compute::FromHead || endpoint.name == self.head.name || endpoint.local {
            return None;
        }
        let connect = format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1));
        let alive = format!("ServerAliveInterval={}", self.keepalive.as_secs().max(1));
        Some(command_line(&[
            "ssh",
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            &connect,
            "-o",
            &alive,
            "-o",
            "ServerAliveCountMax=3",
            "--",
            &endpoint.name,
            line,
        ]))
    }

    /// What the head's `ssh NODE` answered, as if the node had: exit 255
    /// is OpenSSH's own failure to reach the node (its words on stderr).
    fn hop_answer(&self, endpoint: &Endpoint, line: &str, out: Output) -> Result<Output, SshError> {
        if out.status != 255 {
            return Ok(out);
        }
        let said = out.stderr.trim();
        let detail = format!(
            "the head node's `ssh {}` failed: {}",
            endpoint.name,
            if said.is_empty() { "exit 255" } else { said }
        );
        if said.contains("Connection timed out")
            || said.contains("Connection refused")
            || said.contains("No route to host")
            || said.contains("Could not resolve")
            || said.contains("Permission denied")
            || said.contains("Host key verification failed")
        {
            return Err(SshError::Connect {
                host: endpoint.name.clone(),
                address: endpoint.name.clone(),
                detail,
            });
        }
        Err(SshError::Command {
            host: endpoint.name.clone(),
            command: line.to_owned(),
            detail,
        })
    }

    /// Runs `line` on `endpoint` itself: here when it is local, else over
    /// the pool's connection to it.
    async fn run_on(
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
                    let Some(status) = result.status else {
                        // No exit status: the connection went, or the
                        // command was killed.
                        let detail = if client.is_closed() {
                            "the connection closed before the command exited"
                        } else {
                            "the command was killed before it exited"
                        };
                        *slot.client.lock().await = None;
                        return Err(SshError::Command {
                            host: endpoint.name.clone(),
                            command: line.to_owned(),
                            detail: detail.to_owned(),
                        });
                    };
                    return Ok(Output {
                        stdout: result.stdout,
                        stderr: result.stderr,
                        status,
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

    /// Starts a long-running command built by this crate on `endpoint` and
    /// forwards what it prints as it comes (see [`Streamed`]), over the
    /// host's kept connection (reopened first if it died); on a `local`
    /// host, as a child process of hpchaos. It runs until it ends or the
    /// receiver is dropped. Errors: the connection or the channel could
    /// not be opened (the hop is named, as for [`SshPool::run_line`]).
    pub async fn follow(
        &self,
        endpoint: &Endpoint,
        line: &str,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<Streamed>, SshError> {
        if let Some(hop) = self.second_hop(endpoint, line) {
            let head = self.head.clone();
            return Box::pin(self.follow(&head, &hop)).await;
        }
        if endpoint.local {
            return follow_here(endpoint, line);
        }
        let slot = self.slot(endpoint);
        let client = self.client(endpoint, &slot).await?;
        match client.stream(line).await {
            Ok(rx) => Ok(rx),
            Err(err) => {
                *slot.client.lock().await = None;
                Err(SshError::Command {
                    host: endpoint.name.clone(),
                    command: line.to_owned(),
                    detail: err.to_string(),
                })
            }
        }
    }

    async fn client(&self, endpoint: &Endpoint, slot: &Slot) -> Result<Arc<Connection>, SshError> {
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

    /// The hop `endpoint` is reached through, if any: the jump host, or,
    /// when the head node is behind a proxy command, the head node.
    fn hop_for(&self, endpoint: &Endpoint) -> Option<Endpoint> {
        match (&self.jump, &self.proxy_command) {
            (Some(jump), _) if jump != endpoint => Some(jump.clone()),
            (None, Some(_)) if *endpoint != self.head && !self.head.local => {
                Some(self.head.clone())
            }
            _ => None,
        }
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, SshError> {
        let auth = match &self.key {
            Some(path) => Auth::KeyFile(path.clone()),
            None => Auth::Agent,
        };
        let accepted = self
            .accepted_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&endpoint.name)
            .cloned();
        let check = self.host_check(endpoint, accepted)?;
        let proxy = (*endpoint == self.head)
            .then_some(self.proxy_command.as_deref())
            .flatten()
            .map(|command| expand_proxy_command(command, endpoint, &self.user));
        let hop = self.hop_for(endpoint);
        let connecting =
            self.open_connection(endpoint, proxy.as_deref(), hop.as_ref(), check, &auth);
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(SshError::Connect {
                    host: endpoint.name.clone(),
                    address: endpoint.address.clone(),
                    detail: format!(
                        "no answer within {:?}{}",
                        self.connect_timeout,
                        match (&proxy, &hop) {
                            (Some(command), _) => format!(" through the proxy command `{command}`"),
                            (None, Some(hop)) => format!(" through {}", hop.name),
                            _ => String::new(),
                        }
                    ),
                })
            })
    }

    /// How `endpoint`'s host key is checked: against the key accepted for
    /// it this run (`accepted`), else against known_hosts. Errors, before
    /// any connection, when ssh.key or known_hosts cannot be opened or
    /// known_hosts has no key for the host (with the fix).
    fn host_check(
        &self,
        endpoint: &Endpoint,
        accepted: Option<String>,
    ) -> Result<HostCheck, SshError> {
        let known_hosts = self.known_hosts.clone();
        // Say which file is wrong, rather than a bare "unknown key".
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
                    detail: format!("{err}; create it, then {}", self.add_key_fix(endpoint)),
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
                    fix: self.add_key_fix(endpoint),
                });
            }
        }
        let check = match accepted {
            Some(key) => HostCheck::Key(key),
            None => HostCheck::KnownHosts {
                file: known_hosts.clone(),
                host: endpoint.address.clone(),
                port: endpoint.port,
            },
        };
        Ok(check)
    }

    /// Opens a connection to `endpoint` the way it is reached: through the
    /// proxy command (`proxy`, expanded), through `hop` (the hop's own
    /// long-lived connection), or directly. Errors name that way.
    async fn open_connection(
        &self,
        endpoint: &Endpoint,
        proxy: Option<&str>,
        hop: Option<&Endpoint>,
        check: HostCheck,
        auth: &Auth,
    ) -> Result<Connection, SshError> {
        match (proxy, hop) {
            (Some(command), _) => Connection::open(
                Transport::Proxy(command),
                check,
                &self.user,
                auth,
                self.keepalive,
            )
            .await
            .map_err(|e| {
                self.connect_error(
                    endpoint,
                    e,
                    &format!("through the proxy command `{command}`"),
                )
            }),
            (None, Some(hop)) => {
                // The hop's own long-lived connection, opened if need be.
                let slot = self.slot(hop);
                let via =
                    Box::pin(self.client(hop, &slot))
                        .await
                        .map_err(|e| SshError::Connect {
                            host: endpoint.name.clone(),
                            address: endpoint.address.clone(),
                            detail: format!("its hop {} is unreachable: {e}", hop.name),
                        })?;
                Connection::open(
                    Transport::Via(&via, &endpoint.address, endpoint.port),
                    check,
                    &self.user,
                    auth,
                    self.keepalive,
                )
                .await
                .map_err(|e| self.connect_error(endpoint, e, &format!("through {}", hop.name)))
            }
            (None, None) => Connection::open(
                Transport::Tcp(&endpoint.address, endpoint.port),
                check,
                &self.user,
                auth,
                self.keepalive,
            )
            .await
            .map_err(|e| self.connect_error(endpoint, e, "directly")),
        }
    }

    /// How to add `endpoint`'s host key to known_hosts, after checking it
    /// out of band: `ssh-keyscan` where it is reachable directly, OpenSSH
    /// itself through the hop or proxy command where it is not.
    fn add_key_fix(&self, endpoint: &Endpoint) -> String {
        let file = self.known_hosts.display();
        let proxy = (*endpoint == self.head)
            .then_some(self.proxy_command.as_deref())
            .flatten();
        match (proxy, self.hop_for(endpoint)) {
            (Some(command), _) => add_key_through_proxy(
                &file.to_string(),
                command,
                endpoint.port,
                &format!("{}@{}", self.user, endpoint.address),
                &endpoint.address,
            ),
            (None, Some(hop)) => format!(
                "add it after checking it: `{}` (the key as {} sees it)",
                self.scan_command(endpoint, &hop),
                hop.name
            ),
            (None, None) => format!(
                "add it after checking it out of band: `ssh-keyscan -p {} {} >> {file}`",
                endpoint.port, endpoint.address
            ),
        }
    }

    /// How to replace a changed host key of `endpoint` once the change is
    /// checked (HyperPod replaced the node: its new key is as real as the
    /// old one was): remove the old entries, then add the key as the head
    /// node sees it, through the profile's own way in.
    fn replace_key_fix(&self, endpoint: &Endpoint) -> String {
        let file = self.known_hosts.display().to_string();
        let remove = format!(
            "ssh-keygen -R {} -f {file} && ssh-keygen -R {} -f {file}",
            endpoint.address, endpoint.name
        );
        match self.hop_for(endpoint) {
            Some(hop) => format!(
                "if the node was replaced, after checking the new key: `{remove} && {}`",
                self.scan_command(endpoint, &hop)
            ),
            None => format!(
                "if the node was replaced, remove the old key after checking the new one (`{remove}`), then {}",
                self.add_key_fix(endpoint)
            ),
        }
    }

    /// The OpenSSH command line that reaches `hop` as this profile does
    /// (its user, key, known_hosts, port, and the proxy command or jump
    /// host in front of the head node), running `ssh-keyscan` of
    /// `endpoint` there and appending the key, named as hpchaos looks it
    /// up, to known_hosts: a fix that works as printed behind SSM.
    fn scan_command(&self, endpoint: &Endpoint, hop: &Endpoint) -> String {
        let file = self.known_hosts.display().to_string();
        let mut argv = vec!["ssh".to_owned()];
        if let Some(key) = &self.key {
            argv.extend(["-i".to_owned(), key.display().to_string()]);
        }
        argv.extend(["-o".to_owned(), format!("UserKnownHostsFile={file}")]);
        if *hop == self.head
            && let Some(command) = &self.proxy_command
        {
            argv.extend(["-o".to_owned(), format!("ProxyCommand={command}")]);
        }
        argv.extend([
            "-p".to_owned(),
            hop.port.to_string(),
            format!("{}@{}", self.user, hop.address),
            "ssh-keyscan".to_owned(),
            "-t".to_owned(),
            "ed25519".to_owned(),
            "-p".to_owned(),
            endpoint.port.to_string(),
            endpoint.address.clone(),
        ]);
        // ssh-keyscan prints `# HOST:PORT SSH-2.0-...` comments on stdout
        // (OpenSSH 9.8 and later): only key lines go to known_hosts.
        format!(
            "{} | grep -v '^#' | sed 's/^[^ ]*/{},{}/' >> {file}",
            super::quote::command_line(&argv),
            endpoint.name,
            endpoint.address
        )
    }

    /// A connection failure in words that name the hop (`how`: directly,
    /// through the proxy command, through the head node).
    fn connect_error(&self, endpoint: &Endpoint, err: ConnectError, how: &str) -> SshError {
        let known_hosts = self.known_hosts.display().to_string();
        match err {
            ConnectError::KeyChanged { .. } | ConnectError::KeyNotAccepted => {
                SshError::HostKeyMismatch {
                    host: endpoint.name.clone(),
                    address: endpoint.address.clone(),
                    fix: self.replace_key_fix(endpoint),
                    known_hosts,
                }
            }
            ConnectError::UnknownHost => SshError::UnknownHost {
                host: endpoint.name.clone(),
                address: endpoint.address.clone(),
                port: endpoint.port,
                fix: self.add_key_fix(endpoint),
                known_hosts,
            },
            other => SshError::Connect {
                host: endpoint.name.clone(),
                address: endpoint.address.clone(),
                detail: format!("{other} ({how})"),
            },
        }
    }
}

/// Runs a command line on this machine through `sh -c`, as sshd would.
/// [`SshPool::follow`] on this machine: `sh -c LINE`, its output
/// forwarded as it comes; killed when the receiver is dropped.
fn follow_here(
    endpoint: &Endpoint,
    line: &str,
) -> Result<tokio::sync::mpsc::UnboundedReceiver<Streamed>, SshError> {
    use tokio::io::AsyncReadExt;
    let spawned = tokio::process::Command::new("sh")
        .args(["-c", line])
        // Held open until the follower stops, as an SSH channel's is.
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = spawned.map_err(|err| SshError::Command {
        host: endpoint.name.clone(),
        command: line.to_owned(),
        detail: err.to_string(),
    })?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let stdin = child.stdin.take();
    tokio::spawn(async move {
        let _stdin = stdin;
        let (mut out, mut err) = (vec![0u8; 64 * 1024], vec![0u8; 4096]);
        loop {
            tokio::select! {
                read = async { stdout.as_mut()?.read(&mut out).await.ok() }, if stdout.is_some() => match read {
                    Some(n) if n > 0 => {
                        if tx.send(Streamed::Stdout(out[..n].to_vec())).is_err() { break; }
                    }
                    _ => stdout = None,
                },
                read = async { stderr.as_mut()?.read(&mut err).await.ok() }, if stderr.is_some() => match read {
                    Some(n) if n > 0 => {
                        let text = String::from_utf8_lossy(&err[..n]).into_owned();
                        if tx.send(Streamed::Stderr(text)).is_err() { break; }
                    }
                    _ => stderr = None,
                },
                _ = tx.closed() => break,
                status = child.wait(), if stdout.is_none() && stderr.is_none() => {
                    let code = status.ok().and_then(|s| s.code()).map(|c| c as u32);
                    let _ = tx.send(Streamed::Ended(code));
                    return;
                }
            }
        }
        let _ = child.kill().await;
    });
    Ok(rx)
}

async fn run_here(endpoint: &Endpoint, line: &str, limit: Duration) -> Result<Output, SshError> {
    let running = async {
        use tokio::io::AsyncReadExt;
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", line])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        // Each stream read in chunks into its bound (as over SSH).
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let (mut stdout, mut stderr) = (Capped::new(), Capped::new());
        let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        while out.is_some() || err.is_some() {
            tokio::select! {
                read = async { out.as_mut()?.read(&mut a).await.ok() }, if out.is_some() => match read {
                    Some(n) if n > 0 => stdout.push(&a[..n]),
                    _ => out = None,
                },
                read = async { err.as_mut()?.read(&mut b).await.ok() }, if err.is_some() => match read {
                    Some(n) if n > 0 => stderr.push(&b[..n]),
                    _ => err = None,
                },
            }
        }
        let status = child.wait().await?;
        Ok::<_, std::io::Error>(CappedOutput {
            stdout: stdout.into_text(),
            stderr: stderr.into_text(),
            status,
        })
    };
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
            stdout: out.stdout,
            stderr: out.stderr,
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

/// A local command's output within its bounds, and how it exited.
struct CappedOutput {
    stdout: String,
    stderr: String,
    status: std::process::ExitStatus,
}

/// How to add a host key to known_hosts for a host reached only through a
/// proxy command (behind SSM, ssh-keyscan cannot reach it; OpenSSH can):
/// the `ssh` line quoted for a shell, whatever quotes the command holds.
pub fn add_key_through_proxy(
    known_hosts: &str,
    command: &str,
    port: u16,
    destination: &str,
    address: &str,
) -> String {
    let ssh = super::quote::command_line(&[
        "ssh".to_owned(),
        "-o".to_owned(),
        "StrictHostKeyChecking=accept-new".to_owned(),
        "-o".to_owned(),
        format!("UserKnownHostsFile={known_hosts}"),
        "-o".to_owned(),
        format!("ProxyCommand={command}"),
        "-p".to_owned(),
        port.to_string(),
        destination.to_owned(),
        "true".to_owned(),
    ]);
    format!(
        "add it after checking it (the fingerprint this prints against the node's /etc/ssh/ssh_host_ed25519_key.pub): `{ssh}`, or append `{address} ssh-ed25519 KEY` yourself"
    )
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
    let mut lines = output
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
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
    #[test]
    fn a_keyscan_with_openssh_10s_comment_lines_is_read() {
        // OpenSSH 9.8+ prints the banner as a comment on stdout.
        let out = "# 10.1.0.12:22 SSH-2.0-OpenSSH_10.0p2 Debian-7\n10.1.0.12 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n256 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG 10.1.0.12 (ED25519)\n";
        let scanned = super::parse_keyscan(out).unwrap();
        assert!(scanned.key.starts_with("AAAAC3"));
        assert_eq!(
            scanned.fingerprint,
            "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
        );
    }

    #[test]
    fn the_proxied_key_fix_survives_a_real_shell() {
        let fix = add_key_through_proxy(
            "/k h/known_hosts",
            "sh -c 'exec socat - TCP:%h:%p'",
            22,
            "root@10.1.0.10",
            "10.1.0.10",
        );
        let line = fix.split('`').nth(1).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("set -- {line}; printf '%s\\n' \"$@\"")])
            .output()
            .unwrap();
        let words: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            words,
            [
                "ssh",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "UserKnownHostsFile=/k h/known_hosts",
                "-o",
                "ProxyCommand=sh -c 'exec socat - TCP:%h:%p'",
                "-p",
                "22",
                "root@10.1.0.10",
                "true"
            ]
        );
    }

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
