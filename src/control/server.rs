//! The control socket server: one task per connection, each request turned
//! into a [`DaemonRequest`] for the daemon core.
//!
//! Invariants:
//! - The server owns no daemon state. It forwards requests over the channel
//!   and waits for the oneshot answer under a timeout, so a wedged core shows
//!   up as an error reply, never as a hung client.
//! - A connection from another uid is refused before anything is read
//!   ([`peer_allowed`] is the seam tests drive).
//! - No input crashes or hangs the server: a bad line gets an error reply,
//!   an oversized line gets an error reply and the connection is closed (its
//!   framing can no longer be trusted), an idle client is dropped after
//!   [`ServerOptions::idle_timeout`], a client that stops reading is dropped
//!   after [`ServerOptions::reply_timeout`]. Other connections never wait on
//!   any of these.
//! - On shutdown the server stops accepting, lets requests already being
//!   answered finish (so `stop` gets its reply) for at most
//!   [`ServerOptions::drain`], ends subscriptions, and unlinks the socket file
//!   if it is still the one it bound.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::protocol::{parse_request, Op, Request, Response, MAX_LINE};
use super::DaemonRequest;

/// Tunables; tests shorten the timeouts.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// A connection with no complete request for this long is closed.
    pub idle_timeout: Duration,
    /// How long the core may take to answer, and a client to read a reply.
    pub reply_timeout: Duration,
    /// How long in-flight requests may finish after shutdown starts.
    pub drain: Duration,
    /// Longest request line.
    pub max_line: usize,
    /// The uid peers must have: this process's effective uid by default.
    pub own_uid: u32,
    /// Connections served at once; one more gets an error reply and is
    /// closed, so a flood cannot exhaust the daemon's file descriptors.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            idle_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(2),
            max_line: MAX_LINE,
            own_uid: rustix::process::geteuid().as_raw(),
            max_connections: 64,
        }
    }
}

/// Whether a peer may use the socket: only our own uid. Root gets no
/// exception: it can reach the daemon by becoming the user.
pub fn peer_allowed(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid
}

/// Serve with default options until `shutdown` fires.
pub async fn serve(
    listener: UnixListener,
    requests: mpsc::Sender<DaemonRequest>,
    shutdown: CancellationToken,
) {
    serve_with(listener, requests, shutdown, ServerOptions::default()).await
}

/// Serve until `shutdown` fires, then drain and unlink the socket file.
pub async fn serve_with(
    listener: UnixListener,
    requests: mpsc::Sender<DaemonRequest>,
    shutdown: CancellationToken,
    opts: ServerOptions,
) {
    let bound = bound_file(&listener);
    // Connections watch their own token, so ending them is separate from
    // ending the accept loop: in-flight replies get `opts.drain` to finish.
    let conns_stop = CancellationToken::new();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            // Reap finished connections so the set does not grow.
            Some(res) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = res {
                    if e.is_panic() {
                        tracing::error!("control connection task panicked: {e}");
                    }
                }
            }
            acc = listener.accept() => match acc {
                Ok((stream, _)) if conns.len() >= opts.max_connections => {
                    // Best effort, never blocking: the reply fits a socket buffer.
                    let line = Response::err(format!(
                        "too many connections ({} at once); try again",
                        opts.max_connections
                    ))
                    .to_line();
                    let _ = stream.try_write(line.as_bytes());
                }
                Ok((stream, _)) => {
                    conns.spawn(connection(
                        stream,
                        requests.clone(),
                        conns_stop.clone(),
                        opts.clone(),
                    ));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("control socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    if let Some((path, dev, ino)) = bound {
        remove_if_same(&path, dev, ino);
    }
    conns_stop.cancel();
    let drained = tokio::time::timeout(opts.drain, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!("aborting {} control connections after drain", conns.len());
        conns.abort_all();
    }
}

/// The socket file we listen on, with its identity, to unlink it on exit
/// only if nobody replaced it meanwhile.
fn bound_file(listener: &UnixListener) -> Option<(PathBuf, u64, u64)> {
    let addr = listener.local_addr().ok()?;
    let path = addr.as_pathname()?.to_path_buf();
    let meta = std::fs::symlink_metadata(&path).ok()?;
    Some((path, meta.dev(), meta.ino()))
}

fn remove_if_same(path: &Path, dev: u64, ino: u64) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.dev() == dev && m.ino() == ino => {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(socket = %path.display(), "cannot remove control socket: {e}");
            }
        }
        _ => {}
    }
}

async fn connection(
    stream: UnixStream,
    requests: mpsc::Sender<DaemonRequest>,
    stop: CancellationToken,
    opts: ServerOptions,
) {
    let peer = stream.peer_cred().map(|c| c.uid());
    let (rd, mut wr) = stream.into_split();
    match peer {
        Ok(uid) if peer_allowed(uid, opts.own_uid) => {}
        Ok(uid) => {
            tracing::warn!(
                peer_uid = uid,
                "refused control connection from another uid"
            );
            let msg = format!(
                "permission denied: peer uid {uid} is not the daemon's uid {}",
                opts.own_uid
            );
            let _ = send(&mut wr, &Response::err(msg), opts.reply_timeout).await;
            return;
        }
        Err(e) => {
            tracing::warn!("cannot read control peer credentials: {e}");
            return;
        }
    }
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = tokio::select! {
            // Only between requests: a request being answered runs to the end.
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(opts.idle_timeout, read_line(&mut rd, opts.max_line, &mut line)) => r,
        };
        let req = match read {
            Err(_) => {
                tracing::debug!("closing idle control connection");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!("control connection read failed: {e}");
                return;
            }
            Ok(Ok(LineRead::Eof)) => return,
            Ok(Ok(LineRead::TooLong)) => {
                let msg = format!("request line longer than {} bytes", opts.max_line);
                let _ = send(&mut wr, &Response::err(msg), opts.reply_timeout).await;
                return;
            }
            Ok(Ok(LineRead::Line)) => match parse_request(&line) {
                Ok(req) => req,
                Err(e) => {
                    if send(&mut wr, &Response::err(e.to_string()), opts.reply_timeout)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            },
        };
        if req.op == Op::Subscribe {
            return subscribe(rd, wr, &requests, &stop, &opts).await;
        }
        let resp = answer(req, &requests, opts.reply_timeout).await;
        if send(&mut wr, &resp, opts.reply_timeout).await.is_err() {
            return;
        }
    }
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A line (newline and a trailing `\r` stripped) is in the buffer; a
    /// last line without newline counts.
    Line,
    Eof,
    TooLong,
}

/// Read one line into `buf`, refusing to buffer more than `max` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<LineRead> {
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        match memchr::memchr(b'\n', avail) {
            Some(i) => {
                if buf.len() + i > max {
                    return Ok(LineRead::TooLong);
                }
                buf.extend_from_slice(&avail[..i]);
                r.consume(i + 1);
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(LineRead::Line);
            }
            None => {
                let n = avail.len();
                if buf.len() + n > max {
                    return Ok(LineRead::TooLong);
                }
                buf.extend_from_slice(avail);
                r.consume(n);
            }
        }
    }
}

async fn send(wr: &mut OwnedWriteHalf, resp: &Response, limit: Duration) -> io::Result<()> {
    send_line(wr, resp.to_line().as_bytes(), limit).await
}

/// Write a line, giving up on a client that does not read for `limit`.
async fn send_line(wr: &mut OwnedWriteHalf, line: &[u8], limit: Duration) -> io::Result<()> {
    match tokio::time::timeout(limit, wr.write_all(line)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "control client stopped reading",
        )),
    }
}

/// Ask the core and wait for its answer; every failure is an error reply.
async fn answer(req: Request, requests: &mpsc::Sender<DaemonRequest>, limit: Duration) -> Response {
    let op = req.op;
    match &req.incident_id {
        Some(id) => tracing::debug!(op = %op.as_str(), incident = %id, "control request"),
        None => tracing::debug!(op = %op.as_str(), "control request"),
    }
    let work = async {
        match req.op {
            Op::Status => ask(requests, DaemonRequest::Status).await.map(Response::ok),
            Op::List => ask(requests, DaemonRequest::List).await.map(Response::ok),
            Op::Cancel => {
                let incident_id = req.incident_id.unwrap_or_default();
                let r = ask(requests, |reply| DaemonRequest::Cancel {
                    incident_id,
                    reply,
                })
                .await?;
                Ok(r.map_or_else(Response::err, Response::ok))
            }
            Op::Reload => {
                let r = ask(requests, DaemonRequest::Reload).await?;
                // Logged as a failed SIGHUP reload is: whoever reads the
                // daemon's log sees it, not only the client that asked.
                if let Err(e) = &r {
                    tracing::error!(
                        "reload request: reload failed, keeping the old configuration: {e}"
                    );
                }
                Ok(r.map_or_else(|e| Response::err(e.to_string()), Response::ok))
            }
            Op::Stop => ask(requests, DaemonRequest::Stop).await.map(Response::ok),
            Op::Pause => {
                let until = req.until;
                let r = ask(requests, |reply| DaemonRequest::Pause { until, reply }).await?;
                Ok(r.map_or_else(Response::err, Response::ok))
            }
            Op::Unpause => {
                let r = ask(requests, DaemonRequest::Unpause).await?;
                Ok(r.map_or_else(Response::err, Response::ok))
            }
            Op::Binaries => ask(requests, DaemonRequest::Binaries)
                .await
                .map(Response::ok),
            // Handled by the caller: it turns the connection into a stream.
            Op::Subscribe => Ok(Response::err("subscribe cannot be answered here")),
        }
    };
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(gone)) => Response::err(gone.to_string()),
        Err(_) => Response::err(format!(
            "daemon did not answer {} within {}s",
            op.as_str(),
            limit.as_secs_f32()
        )),
    }
}

/// Send one request built around a fresh oneshot and await its answer.
async fn ask<T>(
    requests: &mpsc::Sender<DaemonRequest>,
    build: impl FnOnce(oneshot::Sender<T>) -> DaemonRequest,
) -> Result<T, DaemonGone> {
    let (tx, rx) = oneshot::channel();
    requests.send(build(tx)).await.map_err(|_| DaemonGone)?;
    rx.await.map_err(|_| DaemonGone)
}

/// The core stopped taking requests (it is shutting down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("daemon is shutting down")]
pub struct DaemonGone;

/// Stream incident events until the client leaves or the server stops.
async fn subscribe(
    mut rd: BufReader<OwnedReadHalf>,
    mut wr: OwnedWriteHalf,
    requests: &mpsc::Sender<DaemonRequest>,
    stop: &CancellationToken,
    opts: &ServerOptions,
) {
    let rx =
        tokio::time::timeout(opts.reply_timeout, ask(requests, DaemonRequest::Subscribe)).await;
    let mut rx: broadcast::Receiver<_> = match rx {
        Ok(Ok(rx)) => rx,
        Ok(Err(gone)) => {
            let _ = send(
                &mut wr,
                &Response::err(gone.to_string()),
                opts.reply_timeout,
            )
            .await;
            return;
        }
        Err(_) => {
            let msg = "daemon did not answer subscribe in time";
            let _ = send(&mut wr, &Response::err(msg), opts.reply_timeout).await;
            return;
        }
    };
    if send(&mut wr, &Response::ok("subscribed"), opts.reply_timeout)
        .await
        .is_err()
    {
        return;
    }
    let mut scratch = [0u8; 512];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            // Input after subscribe is ignored; EOF or an error means the
            // client is gone and the subscription ends.
            n = rd.read(&mut scratch) => match n {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    let mut line = serde_json::to_string(&ev).unwrap_or_default();
                    line.push('\n');
                    if send_line(&mut wr, line.as_bytes(), opts.reply_timeout).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("control subscriber fell behind; {n} events dropped for it");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_uid_is_allowed() {
        assert!(peer_allowed(1000, 1000));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(0, 1000));
        assert!(peer_allowed(0, 0));
    }

    #[tokio::test]
    async fn read_line_limits_and_strips() {
        let data: &[u8] = b"abc\r\ndef\n0123456789ABC\nlast";
        let mut r = BufReader::with_capacity(4, data);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"abc");
        buf.clear();
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"def");
        buf.clear();
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            LineRead::TooLong
        );
        let mut r = BufReader::new(&b"last"[..]);
        buf.clear();
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(
            read_line(&mut r, 10, &mut buf).await.unwrap(),
            LineRead::Eof
        );
    }
}
