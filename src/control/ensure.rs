//! `zag-resumed ensure`: start the daemon unless one answers.
//!
//! `ensure` is what zag calls on demand. Its invariants: when a daemon
//! answers it costs one round trip; otherwise callers serialise on
//! `<state_dir>/ensure.lock`, re-check, and only the first spawns, so ten
//! concurrent callers start exactly one daemon (the instance lock would stop
//! a second one anyway; the ensure lock keeps the others from even trying).
//! It returns only once the daemon answers on its socket.

use std::ffi::OsString;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use super::client::{socket_path, Client};
use super::commands::ROUND_TRIP;
use super::protocol::{Op, Request};
use super::StatusSnapshot;
use crate::lock::FileLock;
use crate::paths::Paths;
use crate::zag_process::pid_alive;

/// File the detached daemon's stdout and stderr are appended to.
pub const DAEMON_LOG: &str = "daemon.log";

/// Lock file `ensure` callers serialise on.
pub const ENSURE_LOCK: &str = "ensure.lock";

/// What `ensure` found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnsureOutcome {
    /// A daemon already answered.
    AlreadyRunning { pid: u32 },
    /// This call started the daemon, which now answers.
    Started { pid: u32 },
}

/// Make sure a daemon answers for this zag home, starting `exe run
/// <run_args…>` detached if none does, and return once it answers or fail
/// after `timeout`.
///
/// `run_args` are the arguments after `run` (e.g. `--zag-home /abs/path`);
/// the daemon inherits the caller's environment and working directory, so
/// pass absolute paths. Its stdin is null and its output is appended to
/// `<state_dir>/daemon.log`; it runs in a session of its own (`setsid`), so
/// a closing terminal or zag's exit does not take it down. The child is not
/// waited for once it answers: a long-lived caller that embeds `ensure`
/// (rather than running `zag-resumed ensure`) keeps a zombie after the
/// daemon exits, until the caller exits too.
pub async fn ensure(
    paths: &Paths,
    exe: &Path,
    run_args: &[OsString],
    timeout: Duration,
) -> anyhow::Result<EnsureOutcome> {
    let deadline = Instant::now() + timeout;
    let socket = socket_path(paths);
    if let Some(pid) = ping(&socket, ROUND_TRIP.min(timeout)).await {
        return Ok(EnsureOutcome::AlreadyRunning { pid });
    }

    // One spawner at a time. The lock is held until the daemon answers, so
    // the callers queued behind it find it running on their re-check.
    let lock_path = paths.state_dir.join(ENSURE_LOCK);
    let wait = deadline.saturating_duration_since(Instant::now());
    let _lock = tokio::task::spawn_blocking(move || FileLock::acquire_timeout(&lock_path, wait))
        .await
        .context("ensure lock task failed")?
        .with_context(|| {
            format!(
                "cannot take {}",
                paths.state_dir.join(ENSURE_LOCK).display()
            )
        })?
        .ok_or_else(|| {
            anyhow!("timed out after {timeout:?} waiting for another `zag-resumed ensure`")
        })?;
    let left = deadline.saturating_duration_since(Instant::now());
    if let Some(pid) = ping(&socket, ROUND_TRIP.min(left)).await {
        return Ok(EnsureOutcome::AlreadyRunning { pid });
    }

    let log_path = paths.state_dir.join(DAEMON_LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("run")
        .args(run_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Readiness and watchdog belong to a service manager's own child.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    tracing::debug!(pid = child.id(), "started zag-resumed");

    let mut pause = Duration::from_millis(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(pid) = ping(&socket, ROUND_TRIP.min(left)).await {
            return Ok(EnsureOutcome::Started { pid });
        }
        if let Some(status) = child.try_wait()? {
            // Our child lost the instance lock to a daemon someone else is
            // starting (systemd, a hand-run `run`): wait for that one. Any
            // other exit is a failure worth showing.
            let holder = crate::lock::recorded_pid(&paths.state_dir)
                .filter(|&p| p != child.id() && pid_alive(p));
            if holder.is_none() {
                bail!(
                    "zag-resumed exited ({status}) before answering; last lines of {}:\n{}",
                    log_path.display(),
                    tail(&log_path, 10)
                );
            }
        }
        let now = Instant::now();
        if now >= deadline {
            bail!(
                "zag-resumed did not answer on {} within {timeout:?}; see {}",
                socket.display(),
                log_path.display()
            );
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// One status round trip; the daemon's pid when it answers.
async fn ping(socket: &Path, timeout: Duration) -> Option<u32> {
    let mut c = Client::connect(socket, timeout).await.ok()?;
    let snap: StatusSnapshot = c.call(&Request::new(Op::Status)).await.ok()?;
    Some(snap.pid)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
