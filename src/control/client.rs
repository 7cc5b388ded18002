//! Finding and talking to the daemon's control socket.
//!
//! The socket lives at `<zag-home>/resumed/control.sock`. A Unix socket path
//! must fit `sun_path` (107 bytes on Linux, 103 on macOS); when that one is
//! too long (a deep `--zag-home`), the socket moves to
//! `$XDG_RUNTIME_DIR/zag-resumed-<hash>.sock`, or without `XDG_RUNTIME_DIR`
//! to `/tmp/zag-resumed-<uid>/<hash>.sock`, where `<hash>` is a stable
//! FNV-1a hash of the zag home path. The daemon and its clients derive the
//! path the same way, so they agree as long as they see the same
//! `XDG_RUNTIME_DIR` (only relevant for over-long paths).
//!
//! The client is async and every step is bounded: connect, write and read
//! each have a timeout, so a wedged daemon costs a caller seconds, not a hang.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::bind::sun_path_max;
use super::protocol::{Op, ReplyError, Request, Response};
use super::IncidentEvent;
use crate::paths::Paths;

/// Socket file name inside the state dir.
pub const SOCKET_FILE: &str = "control.sock";

/// Where the control socket of a zag home lives (see the module docs).
pub fn socket_path(paths: &Paths) -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let uid = rustix::process::geteuid().as_raw();
    socket_path_for(&paths.state_dir, &paths.zag_home, xdg.as_deref(), uid)
}

/// [`socket_path`] over explicit inputs.
pub fn socket_path_for(
    state_dir: &Path,
    zag_home: &Path,
    xdg_runtime_dir: Option<&Path>,
    uid: u32,
) -> PathBuf {
    let primary = state_dir.join(SOCKET_FILE);
    if primary.as_os_str().len() <= sun_path_max() {
        return primary;
    }
    let hash = format!("{:016x}", fnv1a(zag_home.as_os_str().as_bytes()));
    match xdg_runtime_dir {
        Some(dir) if dir.is_absolute() => dir.join(format!("zag-resumed-{hash}.sock")),
        _ => std::env::temp_dir()
            .join(format!("zag-resumed-{uid}"))
            .join(format!("{hash}.sock")),
    }
}

/// 64-bit FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Why talking to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket, or nobody listening on it.
    #[error("no daemon is running (nothing answers on {})", socket.display())]
    NotRunning { socket: PathBuf },
    #[error("the daemon did not answer on {} within {timeout:?}", socket.display())]
    Timeout { socket: PathBuf, timeout: Duration },
    #[error("control socket {}: {source}", socket.display())]
    Io { socket: PathBuf, source: io::Error },
    /// The daemon closed the connection or sent something unreadable.
    #[error("bad answer from the daemon: {0}")]
    Protocol(String),
    /// The daemon answered with an error reply (shown as is: the CLI
    /// already prefixes its errors with the program name).
    #[error("{0}")]
    Daemon(String),
    /// A success reply whose payload is not what the request expects.
    #[error("unexpected response payload: {0}")]
    Payload(String),
}

impl ClientError {
    /// True when no daemon is there to answer.
    pub fn is_not_running(&self) -> bool {
        matches!(self, ClientError::NotRunning { .. })
    }
}

/// One connection to the daemon.
#[derive(Debug)]
pub struct Client {
    stream: BufReader<UnixStream>,
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    /// Connect, waiting at most `timeout`; the same bound applies to each
    /// later request.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let socket = socket.to_path_buf();
        let stream = match tokio::time::timeout(timeout, UnixStream::connect(&socket)).await {
            Err(_) => return Err(ClientError::Timeout { socket, timeout }),
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(match e.kind() {
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                        ClientError::NotRunning { socket }
                    }
                    _ => ClientError::Io { socket, source: e },
                })
            }
        };
        Ok(Client {
            stream: BufReader::new(stream),
            socket,
            timeout,
        })
    }

    /// Connect to the daemon of a zag home.
    pub async fn connect_paths(paths: &Paths, timeout: Duration) -> Result<Client, ClientError> {
        Client::connect(&socket_path(paths), timeout).await
    }

    /// Send a request and read its response line (error replies included).
    pub async fn request(&mut self, req: &Request) -> Result<Response, ClientError> {
        let line = req.to_line();
        let stream = &mut self.stream;
        let work = async move {
            if let Err(e) = stream.get_mut().write_all(line.as_bytes()).await {
                // A daemon that refuses us (another uid) replies and closes
                // at once, so our write can fail: its reply says why.
                return read_response(stream)
                    .await
                    .map_err(|_| ClientError::from(e));
            }
            read_response(stream).await
        };
        bounded(&self.socket, self.timeout, work).await
    }

    /// Send a request and decode a successful payload as `T`; an error reply
    /// becomes [`ClientError::Daemon`], a payload of the wrong shape
    /// [`ClientError::Payload`].
    pub async fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        req: &Request,
    ) -> Result<T, ClientError> {
        self.request(req).await?.into_result().map_err(|e| match e {
            ReplyError::Refused(m) => ClientError::Daemon(m),
            ReplyError::Payload(m) => ClientError::Payload(m),
        })
    }

    /// Turn this connection into an event stream.
    pub async fn subscribe(mut self) -> Result<Subscription, ClientError> {
        let _: String = self.call(&Request::new(Op::Subscribe)).await?;
        Ok(Subscription {
            stream: self.stream,
        })
    }
}

/// Run `work` under `timeout`, naming the socket in I/O errors.
async fn bounded<T>(
    socket: &Path,
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let socket = socket.to_path_buf();
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(|e| match e {
            ClientError::Io { source, .. } => ClientError::Io { socket, source },
            e => e,
        }),
        Err(_) => Err(ClientError::Timeout { socket, timeout }),
    }
}

impl From<io::Error> for ClientError {
    // The socket path is filled in by `bounded`.
    fn from(source: io::Error) -> Self {
        ClientError::Io {
            socket: PathBuf::new(),
            source,
        }
    }
}

async fn read_response(stream: &mut BufReader<UnixStream>) -> Result<Response, ClientError> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Err(ClientError::Protocol(
            "connection closed without a reply".into(),
        ));
    }
    serde_json::from_str(line.trim_end()).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// A subscribed connection: one [`IncidentEvent`] per line.
#[derive(Debug)]
pub struct Subscription {
    stream: BufReader<UnixStream>,
}

impl Subscription {
    /// The next event; `Ok(None)` when the daemon closed the stream.
    pub async fn next(&mut self) -> Result<Option<IncidentEvent>, ClientError> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        serde_json::from_str(line.trim_end())
            .map(Some)
            .map_err(|e| ClientError::Protocol(format!("{e}: {}", line.trim_end())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_paths_use_the_state_dir() {
        let p = socket_path_for(
            Path::new("/h/.zag/resumed"),
            Path::new("/h/.zag"),
            Some(Path::new("/run/user/1000")),
            1000,
        );
        assert_eq!(p, Path::new("/h/.zag/resumed/control.sock"));
    }

    #[test]
    fn long_paths_fall_back_to_the_runtime_dir() {
        let home = PathBuf::from(format!("/h/{}/.zag", "d".repeat(120)));
        let state = home.join("resumed");
        let p = socket_path_for(&state, &home, Some(Path::new("/run/user/1000")), 1000);
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        assert!(p.starts_with("/run/user/1000"), "{p:?}");
        assert!(
            name.starts_with("zag-resumed-") && name.ends_with(".sock"),
            "{name}"
        );
        // Stable for a zag home, different for another.
        let again = socket_path_for(&state, &home, Some(Path::new("/run/user/1000")), 1000);
        assert_eq!(p, again);
        let other_home = PathBuf::from(format!("/h/{}/.zag", "e".repeat(120)));
        let other = socket_path_for(
            &other_home.join("resumed"),
            &other_home,
            Some(Path::new("/run/user/1000")),
            1000,
        );
        assert_ne!(p, other);
        // No runtime dir: a per-uid dir under the temp dir.
        let t = socket_path_for(&state, &home, None, 1234);
        assert!(t.parent().unwrap().ends_with("zag-resumed-1234"), "{t:?}");
        assert!(t.as_os_str().len() <= sun_path_max());
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
