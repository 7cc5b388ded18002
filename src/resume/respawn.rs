//! Respawn: re-invoke a provider CLI with today's resume syntax.
//!
//! Each provider builds its own argv
//! ([`ProviderCli::resume_args`](crate::provider::ProviderCli::resume_args),
//! pure and table-tested beside it) from an [`ArgvSpec`] with the guards
//! here. No shell is involved: the program is executed directly with an argv
//! vector. Every id is validated by [`validate_session_id`](crate::provider::target::validate_session_id) before it is
//! placed, and the message (which is user text and may start with `-`) is
//! placed where the CLI's parser cannot take it for a flag.
//!
//! Running: its own process group (`process_group(0)`), stdin null, stdout
//! and stderr captured up to `capture_bytes` each while every line is still
//! scanned, and a semaphore permit held for the run. A resumed agent may
//! rightly work for hours, so what ends a run early is silence, not age: the
//! whole group gets SIGTERM then SIGKILL when the CLI wrote nothing on
//! either stream for the silence limit (a hang), or, only when one is
//! configured, at a wall-clock deadline.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::config::Binaries;
use crate::detect::{Detection, Provider};
pub use crate::provider::argv::{build_args, ArgvError, ArgvSpec};

/// Why the provider's binary was not found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// `[binaries].<name>` names a path that is not an executable file.
    #[error("the configured binary `[binaries] {name} = {path:?}` is missing or not executable")]
    NotExecutable { name: &'static str, path: String },
    /// Nothing executable called `name` on the search path (`shown`).
    #[error(
        "`{name}` not found on PATH ({shown}); a systemd user service runs with a thin PATH \
         that usually lacks npm/nvm bin dirs: set `[binaries] {name} = \"/full/path/to/{name}\"` \
         in the zag-resumed config"
    )]
    NotOnPath { name: &'static str, shown: String },
}

/// The CLI could not be started at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {} in {}: {source}", program.display(), cwd.display())]
pub struct SpawnError {
    pub program: PathBuf,
    pub cwd: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The provider's binary: `[binaries].<provider>` if configured, else the
/// first executable `<provider>` on `search_path` (or the process's PATH).
pub fn find_binary(
    provider: Provider,
    binaries: &Binaries,
    search_path: Option<&OsString>,
) -> Result<PathBuf, BinaryError> {
    let name = provider.as_str();
    if let Some(p) = binaries[provider].as_deref() {
        return if crate::child::is_executable(p) {
            Ok(p.to_path_buf())
        } else {
            Err(BinaryError::NotExecutable {
                name,
                path: p.display().to_string(),
            })
        };
    }
    if let Some(found) = crate::child::which(name, search_path.map(OsString::as_os_str)) {
        return Ok(found);
    }
    let env_path = std::env::var_os("PATH");
    let path = search_path.or(env_path.as_ref());
    let shown = path.map_or_else(|| "<unset>".into(), |p| p.to_string_lossy().into_owned());
    Err(BinaryError::NotOnPath { name, shown })
}

/// A ready-to-run invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Set on the child (on top of the daemon's environment).
    pub env: Vec<(String, OsString)>,
}

/// Bounds for one run.
#[derive(Clone, Debug)]
pub struct RunLimits {
    /// Wall-clock limit; `None`: none (the default).
    pub timeout: Option<Duration>,
    /// Killed after this long without a byte on stdout or stderr; `None`:
    /// never.
    pub silence: Option<Duration>,
    pub capture_bytes: usize,
    /// SIGTERM to SIGKILL.
    pub kill_grace: Duration,
}

/// One captured stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Captured {
    /// The first `capture_bytes` of the stream.
    pub bytes: Vec<u8>,
    /// More was written than kept.
    pub truncated: bool,
    /// The last limit seen in any line of the stream (the whole stream is
    /// scanned, not just what is kept).
    pub detection: Option<Detection>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// `None` when killed by a signal (timeout, cancel, crash).
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Killed because it wrote nothing for the silence limit.
    pub silent: bool,
    pub cancelled: bool,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Re-detects a limit in one line of output.
pub type LineDetect = Arc<dyn Fn(&[u8]) -> Option<Detection> + Send + Sync>;

/// When a run's streams last wrote, in milliseconds since its start.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Resolves once the streams have been silent for `limit` (never when
/// `None`).
async fn silence(activity: &Activity, limit: Option<Duration>) {
    let Some(limit) = limit else {
        return std::future::pending().await;
    };
    loop {
        let due = activity.last() + limit;
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Read a stream to its end: keep a bounded prefix, scan every line (lines
/// longer than `max_line` are scanned in their first `max_line` bytes).
/// Every read marks `activity`.
async fn drain<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    keep: usize,
    detect: LineDetect,
    activity: Arc<Activity>,
) -> Captured {
    let max_line = keep.clamp(4096, 1 << 20);
    let mut cap = Captured::default();
    let mut line: Vec<u8> = Vec::new();
    let mut overlong = false;
    let mut buf = vec![0u8; 16 * 1024];
    let scan = |line: &[u8], cap: &mut Captured| {
        // A detector bug must not cost the capture: a panic is one lost line.
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| detect(line)));
        match found {
            // Keep the first detection that knows its reset (Claude's
            // rate_limit_event carries the exact epoch; the result line
            // after it only a clock time); else the latest.
            Ok(Some(d)) => {
                if cap
                    .detection
                    .as_ref()
                    .map_or(true, |o| o.reset_at.is_none())
                {
                    cap.detection = Some(d);
                }
            }
            Ok(None) => {}
            Err(_) => tracing::warn!("limit detector panicked on a resumed run's line"),
        }
    };
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        activity.touch();
        let chunk = &buf[..n];
        let room = keep.saturating_sub(cap.bytes.len());
        cap.bytes.extend_from_slice(&chunk[..room.min(n)]);
        if n > room {
            cap.truncated = true;
        }
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            let complete = piece.ends_with(b"\n");
            let body = if complete {
                &piece[..piece.len() - 1]
            } else {
                piece
            };
            if !overlong {
                let take = (max_line - line.len()).min(body.len());
                line.extend_from_slice(&body[..take]);
                overlong = take < body.len();
            }
            if complete {
                scan(&line, &mut cap);
                line.clear();
                overlong = false;
            }
        }
    }
    if !line.is_empty() {
        scan(&line, &mut cap);
    }
    cap
}

fn killpg(pgid: i32, sig: Signal) {
    if let Some(pgid) = rustix::process::Pid::from_raw(pgid) {
        // A stale group id only yields ESRCH.
        let _ = rustix::process::kill_process_group(pgid, sig);
    }
}

/// Kills a process group when dropped while armed.
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            killpg(self.pgid, Signal::KILL);
        }
    }
}

/// Run an invocation to its end or its deadline. `Err` only when it could
/// not be started. `started` runs once the CLI has started, before its end
/// is awaited: the caller's claim on the delivery, which must never be
/// written for a CLI that never ran (a crash in between would turn it into
/// a lost resume). With an `attempt`, the child takes it before exec (see
/// [`super::attempt`]): a restart of the daemon then knows it started.
pub async fn run(
    inv: &Invocation,
    limits: &RunLimits,
    detect: LineDetect,
    cancel: &CancellationToken,
    started: impl std::future::Future<Output = ()>,
    attempt: Option<&super::attempt::Attempt>,
) -> Result<RunResult, SpawnError> {
    let mut cmd = tokio::process::Command::new(&inv.program);
    cmd.args(&inv.args)
        .current_dir(&inv.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // A CLI refuses to start nested inside a session of its own.
    for var in crate::provider::all().flat_map(|cli| cli.nesting_env()) {
        cmd.env_remove(var);
    }
    for (k, v) in &inv.env {
        cmd.env(k, v);
    }
    // The daemon turns huge pages off for itself
    // (`daemon::use_small_pages`); the agent gets the system's default back.
    #[cfg(target_os = "linux")]
    // SAFETY: between fork and exec only a prctl syscall runs (rustix's
    // wrapper is a raw syscall): no allocation, no lock.
    unsafe {
        cmd.pre_exec(|| {
            let _ = rustix::thread::disable_transparent_huge_pages(false);
            Ok(())
        });
    }
    if let Some(a) = attempt {
        a.arm(&mut cmd);
    }
    let mut child = cmd.spawn().map_err(|source| SpawnError {
        program: inv.program.clone(),
        cwd: inv.cwd.clone(),
        source,
    })?;
    crate::fault::kill_point("cli-started");
    let pgid = child.id().map_or(0, |p| p as i32);
    // If this future is dropped mid-run (the daemon aborted the delivery),
    // the whole group goes too, not just the leader `kill_on_drop` reaches.
    let mut guard = GroupGuard { pgid, armed: true };
    let activity = Activity::new();
    let out = tokio::spawn(drain(
        child.stdout.take().expect("stdout is piped"),
        limits.capture_bytes,
        detect.clone(),
        activity.clone(),
    ));
    let err = tokio::spawn(drain(
        child.stderr.take().expect("stderr is piped"),
        limits.capture_bytes,
        detect,
        activity.clone(),
    ));
    started.await;

    let mut timed_out = false;
    let mut silent = false;
    let mut cancelled = false;
    let deadline = async {
        match limits.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let status = tokio::select! {
        // The normal end.
        s = child.wait() => s.ok(),
        // A hung CLI: the whole group goes, children included.
        () = silence(&activity, limits.silence) => { silent = true; None }
        // The configured wall-clock limit, when there is one.
        () = deadline => { timed_out = true; None }
        // Shutdown or a cancelled incident while the CLI runs.
        () = cancel.cancelled() => { cancelled = true; None }
    };
    let status = match status {
        Some(s) => Some(s),
        None => {
            killpg(pgid, Signal::TERM);
            match tokio::time::timeout(limits.kill_grace, child.wait()).await {
                Ok(s) => {
                    // The leader is gone; stragglers in its group are not.
                    killpg(pgid, Signal::KILL);
                    s.ok()
                }
                Err(_) => {
                    killpg(pgid, Signal::KILL);
                    child.wait().await.ok()
                }
            }
        }
    };
    guard.armed = false;
    // Something the CLI left behind in its group may still hold the pipes
    // open: after a grace, the group goes so the capture reaches end-of-file;
    // one that left the group too only costs the capture, never a hang.
    let join = |h: tokio::task::JoinHandle<Captured>| async move {
        let abort = h.abort_handle();
        let mut h = h;
        if let Ok(r) = tokio::time::timeout(Duration::from_secs(2), &mut h).await {
            return r.unwrap_or_default();
        }
        killpg(pgid, Signal::KILL);
        match tokio::time::timeout(Duration::from_secs(1), h).await {
            Ok(r) => r.unwrap_or_default(),
            Err(_) => {
                abort.abort();
                Captured::default()
            }
        }
    };
    let (stdout, stderr) = tokio::join!(join(out), join(err));
    use std::os::unix::process::ExitStatusExt;
    Ok(RunResult {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        silent,
        cancelled,
        stdout,
        stderr,
    })
}

/// The last `n` bytes of a capture as text, for reasons and records.
pub fn tail_text(bytes: &[u8], n: usize) -> String {
    let start = bytes.len().saturating_sub(n);
    let mut s = String::from_utf8_lossy(&bytes[start..]).trim().to_string();
    if start > 0 {
        s.insert(0, '…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: Option<&str>, msg: &str) -> ArgvSpec {
        ArgvSpec {
            session_id: id.map(str::to_string),
            message: msg.into(),
            ..ArgvSpec::default()
        }
    }

    #[test]
    fn hostile_ids_are_refused_everywhere() {
        for id in ["../x", "--help", "-p", "a/b", "", "a b", "x..y"] {
            for p in Provider::ALL {
                let r = build_args(p, &spec(Some(id), "Continue"));
                assert!(r.is_err(), "{p} accepted {id:?}");
            }
        }
        for p in [Provider::Claude, Provider::Codex, Provider::Copilot] {
            assert!(build_args(p, &spec(None, "Continue")).is_err(), "{p}");
        }
    }

    #[test]
    fn argv_refusals_keep_their_texts() {
        let shown = |p: Provider, s: ArgvSpec| build_args(p, &s).unwrap_err().to_string();
        assert_eq!(
            shown(Provider::Claude, spec(None, "Continue")),
            "claude resume needs a session id"
        );
        assert_eq!(
            shown(Provider::Claude, spec(Some("a/b"), "Continue")),
            r#"session id "a/b" contains '/'"#
        );
        assert_eq!(
            shown(Provider::Codex, spec(Some("x"), " ")),
            "empty message"
        );
        assert_eq!(
            shown(Provider::Codex, spec(Some("x"), "a\0b")),
            "message contains a NUL byte"
        );
        assert_eq!(
            shown(Provider::Codex, spec(Some("x"), "-")),
            r#"a message of "-" makes Codex read the prompt from stdin"#
        );
        let mut s = spec(Some("x"), "Continue");
        s.add_dirs = vec!["rel".into()];
        assert_eq!(
            shown(Provider::Claude, s),
            r#"add-dir "rel" is not an absolute path"#
        );
        let mut s = spec(Some("x"), "Continue");
        s.model = Some("--evil".into());
        assert_eq!(shown(Provider::Claude, s), r#"model name "--evil" refused"#);
    }

    #[test]
    fn missing_binary_names_path_systemd_and_config_key() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_binary(
            Provider::Codex,
            &Binaries::default(),
            Some(&dir.path().as_os_str().to_owned()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`codex` not found on PATH"), "{e}");
        assert!(e.contains("systemd user service"), "{e}");
        assert!(e.contains("[binaries] codex"), "{e}");
        let mut b = Binaries::default();
        b[Provider::Claude] = Some(dir.path().join("nope"));
        let e = find_binary(Provider::Claude, &b, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[binaries] claude"), "{e}");
        assert_eq!(
            e,
            format!(
                "the configured binary `[binaries] claude = {:?}` is missing or not executable",
                dir.path().join("nope").display().to_string()
            )
        );
    }

    #[tokio::test]
    async fn drain_keeps_a_prefix_but_scans_every_line() {
        let data = b"aaaa\nbbbb\nLIMIT here\ntail".to_vec();
        let detect: LineDetect = Arc::new(|l: &[u8]| {
            l.starts_with(b"LIMIT").then(|| Detection {
                provider: Provider::Claude,
                scope: crate::detect::Scope::Session,
                reset_at: None,
                raw: String::from_utf8_lossy(l).into(),
                provider_session_id: None,
                wrapper_session_id: None,
                cwd: None,
                line_ts: None,
                zag_hit: None,
                needs_user: None,
            })
        });
        let c = drain(&data[..], 6, detect, Activity::new()).await;
        assert_eq!(c.bytes, b"aaaa\nb");
        assert!(c.truncated);
        assert_eq!(c.detection.unwrap().raw, "LIMIT here");
    }
}
