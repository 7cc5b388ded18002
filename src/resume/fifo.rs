//! The live-relay channel: one `user_message` line into `B/fifos/<wrapper>`.
//!
//! zag's own writer opens the FIFO blocking and hangs forever on a stale one
//! (zag-contract §6). Here nothing blocks: the open is
//! `O_WRONLY|O_NONBLOCK|O_CLOEXEC|O_NOFOLLOW` and `ENXIO` means no reader (the
//! relay is dead); the line, at most `PIPE_BUF` (4096) bytes with its newline,
//! goes in one `write(2)`, which the kernel makes atomic against `zag input`;
//! `EAGAIN` (a full pipe) is retried with short sleeps up to a deadline.
//! Delivery counts only once the relay logs the message back as a
//! `user_message` (it runs Claude with `--replay-user-messages`); a message
//! not seen within the confirm bound is a failure with that reason.

use serde_json::{json, Value};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Atomic pipe write limit on Linux.
pub const PIPE_BUF: usize = 4096;

/// Why a FIFO delivery did not happen or was not confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FifoError {
    /// `ENXIO`: nobody has the FIFO open for reading; the relay is dead.
    NoReader,
    /// The path is not a FIFO (or is gone).
    NotFifo(String),
    /// The line would not fit one atomic write.
    TooLong(usize),
    /// The pipe stayed full until the deadline: the relay is not reading.
    Full(Duration),
    /// Written, but the relay did not log it back in time.
    Unconfirmed(String),
    Cancelled,
    Io(String),
}

impl std::fmt::Display for FifoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FifoError::NoReader => write!(f, "no reader on the FIFO (ENXIO): the relay is gone"),
            FifoError::NotFifo(p) => write!(f, "{p} is not a FIFO"),
            FifoError::TooLong(n) => write!(
                f,
                "the message line is {n} bytes; a FIFO write must fit PIPE_BUF ({PIPE_BUF}) to be atomic"
            ),
            FifoError::Full(d) => write!(
                f,
                "the FIFO stayed full for {} ms: the relay is alive but not reading; nothing was written",
                d.as_millis()
            ),
            FifoError::Unconfirmed(r) => write!(f, "written to the FIFO but not confirmed: {r}"),
            FifoError::Cancelled => write!(f, "cancelled during FIFO delivery"),
            FifoError::Io(e) => write!(f, "FIFO I/O error: {e}"),
        }
    }
}

/// The exact line zag's relay reads, with its newline (pure).
pub fn message_line(msg: &str) -> Result<Vec<u8>, FifoError> {
    let mut line = json!({ "type": "user_message", "content": msg })
        .to_string()
        .into_bytes();
    line.push(b'\n');
    if line.len() > PIPE_BUF {
        return Err(FifoError::TooLong(line.len()));
    }
    Ok(line)
}

/// Open for writing without ever blocking.
pub fn open_nonblocking(path: &Path) -> Result<std::fs::File, FifoError> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => FifoError::NoReader,
            Some(libc::ENOENT) | Some(libc::ELOOP) => {
                FifoError::NotFifo(path.display().to_string())
            }
            _ => FifoError::Io(format!("open {}: {e}", path.display())),
        })?;
    let ft = f
        .metadata()
        .map_err(|e| FifoError::Io(e.to_string()))?
        .file_type();
    if !ft.is_fifo() {
        return Err(FifoError::NotFifo(path.display().to_string()));
    }
    Ok(f)
}

/// One write of the whole line; `EAGAIN` retried until `timeout`.
pub async fn write_line(
    f: &mut std::fs::File,
    line: &[u8],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), FifoError> {
    let start = Instant::now();
    loop {
        match f.write(line) {
            Ok(n) if n == line.len() => return Ok(()),
            // A pipe write of at most PIPE_BUF bytes is all or nothing.
            Ok(n) => return Err(FifoError::Io(format!("short write: {n} of {}", line.len()))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Err(FifoError::NoReader),
            Err(e) => return Err(FifoError::Io(e.to_string())),
        }
        if start.elapsed() >= timeout {
            return Err(FifoError::Full(timeout));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = cancel.cancelled() => return Err(FifoError::Cancelled),
        }
    }
}

/// Does this chunk of a zag log hold a `user_message` with `content`?
pub fn has_user_message(bytes: &[u8], content: &str) -> bool {
    bytes.split(|&b| b == b'\n').any(|l| {
        serde_json::from_slice::<Value>(l.trim_ascii()).is_ok_and(|v| {
            v.get("type").and_then(Value::as_str) == Some("user_message")
                && v.get("content").and_then(Value::as_str).map(str::trim) == Some(content.trim())
        })
    })
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn read_from(p: &Path, offset: u64) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(p).ok()?;
    let len = f.metadata().ok()?.len();
    // Truncated or replaced: look at the whole file again.
    let from = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut b = Vec::new();
    f.read_to_end(&mut b).ok()?;
    Some(b)
}

/// Wait for the relay to log `content` back after byte `offset`.
pub async fn confirm(
    log: &Path,
    offset: u64,
    content: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), FifoError> {
    let poll = (timeout / 20).clamp(Duration::from_millis(20), Duration::from_millis(250));
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(b) = read_from(log, offset) {
            // Only complete lines: the relay may be mid-write.
            let end = memchr::memrchr(b'\n', &b).map_or(0, |i| i + 1);
            if has_user_message(&b[..end], content) {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(FifoError::Unconfirmed(format!(
                "the relay did not log it back as a user_message in {} within {} s \
                 (zag-contract §6: the relay's input shape may not reach the CLI)",
                log.display(),
                timeout.as_secs_f32()
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = cancel.cancelled() => return Err(FifoError::Cancelled),
        }
    }
}

/// Bounds for a FIFO delivery.
#[derive(Clone, Debug)]
pub struct FifoLimits {
    pub write_timeout: Duration,
    pub confirm_timeout: Duration,
}

/// Open, write, confirm. `log` is the relay's session log. `written` runs
/// once the line is in the pipe, before the confirmation is awaited (the
/// caller's record that it was sent).
pub async fn send(
    fifo: &Path,
    log: Option<&PathBuf>,
    msg: &str,
    limits: &FifoLimits,
    cancel: &CancellationToken,
    written: impl std::future::Future<Output = ()>,
) -> Result<(), FifoError> {
    let line = message_line(msg)?;
    let mut f = open_nonblocking(fifo)?;
    let offset = log.map_or(0, |l| file_len(l));
    write_line(&mut f, &line, limits.write_timeout, cancel).await?;
    drop(f);
    written.await;
    let Some(log) = log else {
        return Err(FifoError::Unconfirmed(
            "the relay's session log was not found, so the message cannot be seen logged back"
                .into(),
        ));
    };
    confirm(log, offset, msg, limits.confirm_timeout, cancel).await
}

/// What `B/processes.json` says about a relay (zag-contract §1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayState {
    /// A running `interactive` entry whose pid exists.
    Alive,
    /// Entries exist, none running with a live pid.
    Dead,
    /// No entry: the FIFO open decides.
    Unknown,
}

/// Judge a relay by the process store (pure except `kill(pid, 0)`).
pub fn relay_state(processes_json: &[u8], wrapper: &str) -> RelayState {
    let Ok(v) = serde_json::from_slice::<Value>(processes_json) else {
        return RelayState::Unknown;
    };
    let entries: Vec<&Value> = v
        .get("processes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| {
            e.get("session_id").and_then(Value::as_str) == Some(wrapper)
                && e.get("command").and_then(Value::as_str) == Some("interactive")
        })
        .collect();
    if entries.is_empty() {
        return RelayState::Unknown;
    }
    let alive = entries.iter().any(|e| crate::zag_process::entry_running(e));
    if alive {
        RelayState::Alive
    } else {
        RelayState::Dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_zags_shape_and_bounded() {
        let l = message_line("Continue").unwrap();
        assert!(l.ends_with(b"\n") && !l[..l.len() - 1].contains(&b'\n'));
        let v: Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["type"], "user_message");
        assert_eq!(v["content"], "Continue");
        assert!(matches!(
            message_line(&"x".repeat(5000)),
            Err(FifoError::TooLong(_))
        ));
    }

    #[test]
    fn process_store_judges_the_relay() {
        let me = std::process::id();
        let alive = format!(
            r#"{{"processes":[{{"session_id":"w","command":"interactive","status":"running","pid":{me}}}]}}"#
        );
        assert_eq!(relay_state(alive.as_bytes(), "w"), RelayState::Alive);
        let exited = r#"{"processes":[{"session_id":"w","command":"interactive","status":"exited","pid":1}]}"#;
        assert_eq!(relay_state(exited.as_bytes(), "w"), RelayState::Dead);
        assert_eq!(relay_state(exited.as_bytes(), "other"), RelayState::Unknown);
        assert_eq!(relay_state(b"junk", "w"), RelayState::Unknown);
    }

    #[test]
    fn confirmation_matches_user_messages_only() {
        let log = concat!(
            r#"{"type":"assistant_message","content":"Continue"}"#,
            "\n",
            r#"{"type":"user_message","role":"user","content":"Continue"}"#,
            "\n"
        );
        assert!(has_user_message(log.as_bytes(), "Continue"));
        assert!(!has_user_message(&log.as_bytes()[..50], "Continue"));
        assert!(!has_user_message(log.as_bytes(), "Other"));
    }
}
