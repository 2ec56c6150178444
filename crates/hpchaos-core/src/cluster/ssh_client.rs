//! One SSH connection, on russh: opened over TCP, over a proxy command's
//! stdin/stdout (OpenSSH's `ProxyCommand`, how operators reach HyperPod
//! through SSM Session Manager), or over a `direct-tcpip` channel of
//! another connection (a jump host, or the head node for compute nodes);
//! the server's key checked against known_hosts (or a key accepted for the
//! run); authenticated with a key file or the SSH agent; commands run as
//! exec channels. The pool (`ssh.rs`) decides which hop to use and keeps
//! the connections.
//!
//! russh directly rather than async-ssh2-tokio (which the pool used
//! before): the wrapper can only dial TCP or a jump, not a proxy command's
//! pipes, and it folds "no key for this host" and "a different key" into
//! one error.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use super::capped::Capped;
use russh::ChannelMsg;
use russh::client::{Config, Handle, Handler};
use russh::keys::PublicKey;

/// How the server's host key is judged.
#[derive(Debug, Clone)]
pub enum HostCheck {
    /// Against this known_hosts file, for `host` and `port` (the names
    /// known_hosts uses: the address connected to, `[host]:port` when the
    /// port is not 22).
    KnownHosts {
        file: PathBuf,
        host: String,
        port: u16,
    },
    /// Exactly this key (base64 of an ed25519 key, no type prefix): a key
    /// accepted for the run after a verified replacement.
    Key(String),
}

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Auth {
    KeyFile(PathBuf),
    Agent,
}

/// Why a connection failed; the pool turns it into words naming the hop.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the host key differs from known_hosts line {line}")]
    KeyChanged { line: usize },
    #[error("the host key is not the one accepted for this run")]
    KeyNotAccepted,
    #[error("no key for this host in known_hosts")]
    UnknownHost,
    #[error("authentication as `{user}` failed ({what})")]
    Auth { user: String, what: String },
    #[error("the proxy command could not start: {0}")]
    ProxySpawn(std::io::Error),
    #[error("{0}")]
    Ssh(String),
}

/// What the handler learned about the server's key.
#[derive(Debug, Default, Clone)]
enum KeyVerdict {
    #[default]
    Unchecked,
    Accepted,
    Changed(usize),
    Unknown,
    NotAccepted,
}

/// russh's callbacks: only the server key check.
struct Checker {
    check: HostCheck,
    verdict: Arc<std::sync::Mutex<KeyVerdict>>,
}

impl Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        let verdict = match &self.check {
            HostCheck::Key(accepted) => match russh::keys::parse_public_key_base64(accepted) {
                Ok(accepted) if accepted == *key => KeyVerdict::Accepted,
                _ => KeyVerdict::NotAccepted,
            },
            HostCheck::KnownHosts { file, host, port } => {
                match russh::keys::check_known_hosts_path(host, *port, key, file) {
                    Ok(true) => KeyVerdict::Accepted,
                    Ok(false) => KeyVerdict::Unknown,
                    Err(russh::keys::Error::KeyChanged { line }) => KeyVerdict::Changed(line),
                    Err(_) => KeyVerdict::Unknown,
                }
            }
        };
        let accepted = matches!(verdict, KeyVerdict::Accepted);
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = verdict;
        Ok(accepted)
    }
}

/// Where the bytes of a connection go.
pub enum Transport<'a> {
    /// A TCP connection to this address and port.
    Tcp(&'a str, u16),
    /// A command run with `sh -c`, its stdin/stdout the connection (its
    /// stderr is kept for the error message).
    Proxy(&'a str),
    /// A `direct-tcpip` channel of this connection to address and port.
    Via(&'a Connection, &'a str, u16),
}

/// What a command printed and how it exited.
#[derive(Debug, Clone)]
pub struct Executed {
    pub stdout: String,
    pub stderr: String,
    /// `None` when the channel closed without an exit status (killed).
    pub status: Option<u32>,
}

/// An open, authenticated connection.
pub struct Connection {
    handle: Handle<Checker>,
    /// The proxy command's process, killed with the connection.
    proxy: std::sync::Mutex<Option<tokio::process::Child>>,
}

impl Drop for Connection {
    /// The proxy command's whole process group ends with the connection.
    fn drop(&mut self) {
        let child = self.proxy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pid) = child.as_ref().and_then(tokio::process::Child::id) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Connection {
    /// Opens, checks the host key and authenticates. Errors say what
    /// failed at this hop (the caller names the hop).
    pub async fn open(
        transport: Transport<'_>,
        check: HostCheck,
        user: &str,
        auth: &Auth,
        keepalive: Duration,
    ) -> Result<Connection, ConnectError> {
        let config = Arc::new(Config {
            keepalive_interval: Some(keepalive),
            keepalive_max: 3,
            inactivity_timeout: None,
            ..Config::default()
        });
        let verdict = Arc::new(std::sync::Mutex::new(KeyVerdict::Unchecked));
        let checker = Checker {
            check,
            verdict: verdict.clone(),
        };
        let mut proxy = None;
        let connected = match transport {
            Transport::Tcp(address, port) => {
                russh::client::connect(config, (address, port), checker).await
            }
            Transport::Proxy(command) => {
                let mut child = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!("exec {command}"))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    // Its own process group: `sh -c "aws ssm ..."` (as
                    // easy-ssh.sh writes it) leaves children; the group
                    // goes with the connection.
                    .process_group(0)
                    .spawn()
                    .map_err(ConnectError::ProxySpawn)?;
                let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
                    return Err(ConnectError::Ssh("the proxy command has no pipes".into()));
                };
                let stream = tokio::io::join(stdout, stdin);
                let result = russh::client::connect_stream(config, stream, checker).await;
                if let Err(err) = &result {
                    // A refused host key is the cause, whatever the proxy
                    // did after the handshake stopped.
                    if let Some(refused) = key_refusal(&verdict) {
                        return Err(refused);
                    }
                    return Err(ConnectError::Ssh(proxy_failure(&mut child, err).await));
                }
                proxy = Some(child);
                result
            }
            Transport::Via(via, address, port) => {
                let channel = via
                    .handle
                    .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
                    .await
                    .map_err(|e| {
                        ConnectError::Ssh(format!(
                            "cannot open a channel to {address}:{port} through it: {e}"
                        ))
                    })?;
                russh::client::connect_stream(config, channel.into_stream(), checker).await
            }
        };
        let mut handle = match connected {
            Ok(handle) => handle,
            Err(err) => {
                return Err(key_refusal(&verdict).unwrap_or(ConnectError::Ssh(err.to_string())));
            }
        };
        authenticate(&mut handle, user, auth).await?;
        Ok(Connection {
            handle,
            proxy: std::sync::Mutex::new(proxy),
        })
    }

    /// Whether the connection is gone (the server closed it, keepalive
    /// gave up, or the proxy command died).
    pub fn is_closed(&self) -> bool {
        let proxy_died = self
            .proxy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .is_some_and(|child| !matches!(child.try_wait(), Ok(None)));
        proxy_died || self.handle.is_closed()
    }

    /// Runs `command` in an exec channel; collects stdout, stderr (each
    /// within [`Capped`]'s bound: the first and last 4 MiB, what was cut
    /// said in the text) and the exit status.
    pub async fn execute(&self, command: &str) -> Result<Executed, russh::Error> {
        let mut channel = self.handle.channel_open_session().await?;
        channel.exec(true, command).await?;
        let (mut stdout, mut stderr, mut status) = (Capped::new(), Capped::new(), None);
        while let Some(message) = channel.wait().await {
            match message {
                ChannelMsg::Data { data } => stdout.push(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => stderr.push(&data),
                // Data may still follow the exit status: read to the end.
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                _ => {}
            }
        }
        Ok(Executed {
            stdout: stdout.into_text(),
            stderr: stderr.into_text(),
            status,
        })
    }
}

/// What a followed command says, in the order the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streamed {
    /// A chunk of its stdout (not split on lines).
    Stdout(Vec<u8>),
    /// A chunk of its stderr.
    Stderr(String),
    /// The command ended: its exit status, or `None` when the channel or
    /// the connection closed first.
    Ended(Option<u32>),
}

impl Connection {
    /// Starts `command` in an exec channel of its own and forwards what it
    /// prints, as it arrives, to the returned receiver until it ends. The
    /// channel stays open as long as the receiver lives: dropping it closes
    /// the channel (sshd then hangs the command up). Counts as one session
    /// of the connection for its whole life.
    pub async fn stream(
        &self,
        command: &str,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<Streamed>, russh::Error> {
        let mut channel = self.handle.channel_open_session().await?;
        channel.exec(true, command).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut status = None;
            loop {
                tokio::select! {
                    message = channel.wait() => {
                        let sent = match message {
                            Some(ChannelMsg::Data { data }) => tx.send(Streamed::Stdout(data.to_vec())),
                            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                                tx.send(Streamed::Stderr(String::from_utf8_lossy(&data).into_owned()))
                            }
                            Some(ChannelMsg::ExitStatus { exit_status }) => {
                                status = Some(exit_status);
                                Ok(())
                            }
                            Some(_) => Ok(()),
                            None => {
                                let _ = tx.send(Streamed::Ended(status));
                                return;
                            }
                        };
                        if sent.is_err() {
                            break;
                        }
                    }
                    // The receiver went away: stop following.
                    _ = tx.closed() => break,
                }
            }
            let _ = channel.close().await;
        });
        Ok(rx)
    }
}

/// The host-key check's refusal, if the handshake stopped there.
fn key_refusal(verdict: &std::sync::Mutex<KeyVerdict>) -> Option<ConnectError> {
    match *verdict.lock().unwrap_or_else(|p| p.into_inner()) {
        KeyVerdict::Changed(line) => Some(ConnectError::KeyChanged { line }),
        KeyVerdict::Unknown => Some(ConnectError::UnknownHost),
        KeyVerdict::NotAccepted => Some(ConnectError::KeyNotAccepted),
        KeyVerdict::Unchecked | KeyVerdict::Accepted => None,
    }
}

/// The proxy command's own words when the SSH handshake over it failed:
/// its exit status and the end of its stderr, if it exited.
async fn proxy_failure(child: &mut tokio::process::Child, err: &russh::Error) -> String {
    use tokio::io::AsyncReadExt;
    let exited = tokio::time::timeout(Duration::from_millis(500), child.wait()).await;
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = tokio::time::timeout(Duration::from_millis(200), stderr.read_to_string(&mut said))
            .await;
    }
    let said = said.trim();
    let tail: String = said
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" / ");
    match exited {
        Ok(Ok(status)) => format!(
            "the proxy command exited ({status}){}",
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        ),
        _ => format!("the SSH handshake over the proxy command failed: {err}"),
    }
}

async fn authenticate(
    handle: &mut Handle<Checker>,
    user: &str,
    auth: &Auth,
) -> Result<(), ConnectError> {
    let failed = |what: String| ConnectError::Auth {
        user: user.to_owned(),
        what,
    };
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|e| ConnectError::Ssh(e.to_string()))?
        .flatten();
    match auth {
        Auth::KeyFile(path) => {
            let key = russh::keys::load_secret_key(path, None)
                .map_err(|e| failed(format!("cannot load {}: {e}", path.display())))?;
            let result = handle
                .authenticate_publickey(
                    user,
                    russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(|e| ConnectError::Ssh(e.to_string()))?;
            if result.success() {
                Ok(())
            } else {
                Err(failed(format!(
                    "the server refused the key {}",
                    path.display()
                )))
            }
        }
        Auth::Agent => {
            let mut agent = russh::keys::agent::client::AgentClient::connect_env()
                .await
                .map_err(|e| failed(format!("no SSH agent ({e}); set ssh.key")))?;
            let identities = agent
                .request_identities()
                .await
                .map_err(|e| failed(format!("the SSH agent gave no keys: {e}")))?;
            for identity in identities {
                let result = handle
                    .authenticate_publickey_with(
                        user,
                        identity.public_key().into_owned(),
                        hash,
                        &mut agent,
                    )
                    .await;
                if result.is_ok_and(|r| r.success()) {
                    return Ok(());
                }
            }
            Err(failed(
                "the server refused every key of the SSH agent".into(),
            ))
        }
    }
}
