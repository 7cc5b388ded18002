//! The client side of the CLI: `status`, `list`, `cancel`, `reload`, `stop`,
//! `ensure`, `subscribe`, and the pure renderers they print with.
//!
//! Each command is one short connection to the daemon. `list` and `cancel`
//! fall back to reading and appending to the stores directly when no daemon
//! runs, exactly as `zag usage` does, so they work whether or not it is up.
//!
//! `ensure` is what zag calls on demand. Its invariants: when a daemon
//! answers it costs one round trip; otherwise callers serialise on
//! `<state_dir>/ensure.lock`, re-check, and only the first spawns, so ten
//! concurrent callers start exactly one daemon (the instance lock would stop
//! a second one anyway; the ensure lock keeps the others from even trying).
//! It returns only once the daemon answers on its socket.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::client::{socket_path, Client, ClientError};
use super::protocol::{Op, Request};
use super::{IncidentEvent, PendingView, StatusSnapshot};
use crate::detect::Scope;
use crate::lock::FileLock;
use crate::paths::Paths;
use crate::store::{discover_stores, Record, Schedule, StoreFile};

/// Bound on each connection and round trip of a command.
pub const ROUND_TRIP: Duration = Duration::from_secs(5);

/// File the detached daemon's stdout and stderr are appended to.
pub const DAEMON_LOG: &str = "daemon.log";

/// Lock file `ensure` callers serialise on.
pub const ENSURE_LOCK: &str = "ensure.lock";

async fn connect(paths: &Paths) -> Result<Client, ClientError> {
    Client::connect(&socket_path(paths), ROUND_TRIP).await
}

/// `zag-resumed status`: rendered text, or pretty JSON with `json`.
///
/// Fails with a [`ClientError::NotRunning`] root cause when no daemon
/// answers (downcast it to pick an exit code).
pub async fn status(paths: &Paths, json: bool) -> anyhow::Result<String> {
    let snap: StatusSnapshot = connect(paths)
        .await?
        .call(&Request::new(Op::Status))
        .await?;
    Ok(if json {
        pretty(&snap)
    } else {
        render_status(&snap)
    })
}

/// `zag-resumed list`: from the daemon, or from the stores when none runs.
pub async fn list(paths: &Paths, json: bool) -> anyhow::Result<String> {
    let (pending, live) = match connect(paths).await {
        Ok(mut c) => (
            c.call::<Vec<PendingView>>(&Request::new(Op::List)).await?,
            true,
        ),
        Err(e) if e.is_not_running() => (pending_from_stores(&paths.zag_home), false),
        Err(e) => return Err(e.into()),
    };
    if json {
        return Ok(pretty(&pending));
    }
    let mut out = render_list(&pending);
    if !live {
        out.push_str("(zag-resumed is not running: read from the stores directly)\n");
    }
    Ok(out)
}

/// `zag-resumed cancel <id>`: through the daemon (which also disarms the
/// timer), or by appending a `cancel` record when none runs.
pub async fn cancel(paths: &Paths, incident_id: &str, json: bool) -> anyhow::Result<String> {
    let view = match connect(paths).await {
        Ok(mut c) => c.call::<PendingView>(&Request::cancel(incident_id)).await?,
        Err(e) if e.is_not_running() => {
            cancel_in_stores(&paths.zag_home, incident_id).map_err(|m| anyhow!(m))?
        }
        Err(e) => return Err(e.into()),
    };
    Ok(if json {
        // zag's own confirmation shape (ZAG_INTEROP §4).
        pretty(&serde_json::json!({
            "action": "cancel",
            "incident_id": view.incident_id,
            "status": "ok",
        }))
    } else {
        format!(
            "cancelled {} ({} · session {}) in {}\n",
            view.incident_id,
            view.provider,
            short_session(&view.session_id),
            view.store
        )
    })
}

/// `zag-resumed reload`: the daemon's account of what changed.
pub async fn reload(paths: &Paths) -> anyhow::Result<String> {
    let msg: String = connect(paths)
        .await?
        .call(&Request::new(Op::Reload))
        .await?;
    Ok(msg)
}

/// What `stop` achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// The daemon acknowledged and its process is gone.
    Stopped { pid: u32 },
    /// Nothing was running.
    NotRunning,
    /// Acknowledged, but still draining when `wait` ran out.
    StillStopping { pid: u32 },
}

/// `zag-resumed stop`: ask for a graceful stop, then wait up to `wait` for
/// the process to exit.
pub async fn stop(paths: &Paths, wait: Duration) -> anyhow::Result<StopOutcome> {
    let mut c = match connect(paths).await {
        Ok(c) => c,
        Err(e) if e.is_not_running() => return Ok(StopOutcome::NotRunning),
        Err(e) => return Err(e.into()),
    };
    let snap: StatusSnapshot = c.call(&Request::new(Op::Status)).await?;
    let () = c.call(&Request::new(Op::Stop)).await?;
    let deadline = Instant::now() + wait;
    while pid_alive(snap.pid) {
        if Instant::now() >= deadline {
            return Ok(StopOutcome::StillStopping { pid: snap.pid });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(StopOutcome::Stopped { pid: snap.pid })
}

/// Follow incident events until the daemon closes the stream, handing each
/// rendered line (or its JSON with `json`) to `out`.
pub async fn subscribe(paths: &Paths, json: bool, mut out: impl FnMut(&str)) -> anyhow::Result<()> {
    let mut sub = connect(paths).await?.subscribe().await?;
    while let Some(ev) = sub.next().await? {
        if json {
            out(&serde_json::to_string(&ev)?);
        } else {
            out(&render_event(&ev));
        }
    }
    Ok(())
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

/// A daemon that exited but was not reaped yet (our own child, when `ensure`
/// ran in-process) still answers `kill(pid, 0)`; on Linux, /proc tells.
fn is_zombie(pid: libc::pid_t) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": comm may hold spaces and parentheses.
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|state| state == "Z")
}

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
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
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

/// Every pending record of every store under a zag home, sorted by wake time.
/// Unreadable stores are skipped with a warning.
pub fn pending_from_stores(zag_home: &Path) -> Vec<PendingView> {
    let mut out = Vec::new();
    for store in discover_stores(zag_home) {
        match store.load() {
            Ok(replay) => out.extend(
                replay
                    .pending_sorted()
                    .into_iter()
                    .map(|s| view_of(s, &store)),
            ),
            Err(e) => tracing::warn!(store = %store.path.display(), "cannot read store: {e}"),
        }
    }
    out.sort_by(|a, b| {
        a.when
            .cmp(&b.when)
            .then_with(|| a.incident_id.cmp(&b.incident_id))
    });
    out
}

/// Cancel a pending incident by appending a `cancel` record to the store
/// that holds it, as `zag usage cancel` does.
pub fn cancel_in_stores(zag_home: &Path, incident_id: &str) -> Result<PendingView, String> {
    for store in discover_stores(zag_home) {
        let Ok(replay) = store.load() else { continue };
        if let Some(s) = replay.pending.get(incident_id) {
            let view = view_of(s, &store);
            store
                .append(&Record::Cancel {
                    incident_id: incident_id.to_string(),
                })
                .map_err(|e| format!("cannot append to {}: {e}", store.path.display()))?;
            return Ok(view);
        }
    }
    Err(format!(
        "no pending incident {incident_id} in any store under {}",
        zag_home.display()
    ))
}

fn view_of(s: &Schedule, store: &StoreFile) -> PendingView {
    PendingView::of(s, &store.path)
}

fn pretty(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// A duration for people: "2h 14m", "3d 4h", "5m", "40s".
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

/// "resumes in 2h 14m", "due now", "overdue by 5m".
pub fn countdown(when: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = when - now;
    if left > chrono::Duration::zero() {
        format!("resumes in {}", human_duration(left))
    } else if -left < chrono::Duration::seconds(60) {
        "due now".to_string()
    } else {
        format!("overdue by {}", human_duration(-left))
    }
}

/// The first characters of a session id, for tables: "6873…".
pub fn short_session(id: &str) -> String {
    const KEEP: usize = 4;
    if id.is_empty() {
        return "?".into();
    }
    match id.char_indices().nth(KEEP) {
        Some((i, _)) => format!("{}…", &id[..i]),
        None => id.to_string(),
    }
}

/// "weekly limit" for a stored scope name; the name itself for others.
fn describe_scope(scope: &str) -> String {
    match serde_json::from_value::<Scope>(serde_json::Value::String(scope.to_string())) {
        Ok(s) => s.describe().to_string(),
        Err(_) => format!("{scope} limit"),
    }
}

/// One pending line: "claude · session 6873… · resumes in 2h 14m · weekly limit".
pub fn render_pending(p: &PendingView, now: DateTime<Utc>) -> String {
    let mut s = format!(
        "{} · session {} · {}",
        p.provider,
        short_session(&p.session_id),
        countdown(p.when, now)
    );
    if let Some(scope) = &p.scope {
        let _ = write!(s, " · {}", describe_scope(scope));
    }
    if p.attempt > 1 {
        let _ = write!(s, " · attempt {}", p.attempt);
    }
    s
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One event line: "2030-01-01 08:00 UTC  resumed    claude · session 6873… · via fifo".
pub fn render_event(ev: &IncidentEvent) -> String {
    let (at, kind, what) = match ev {
        IncidentEvent::Hit {
            provider,
            session_id,
            scope,
            reset_at,
            at,
            ..
        } => {
            let resets = reset_at.map_or_else(
                || "reset unknown".into(),
                |r| format!("resets {}", stamp(r)),
            );
            (
                at,
                "hit",
                format!(
                    "{provider} · session {} · {} · {resets}",
                    short_session(session_id),
                    describe_scope(scope)
                ),
            )
        }
        IncidentEvent::Scheduled {
            provider,
            session_id,
            when,
            attempt,
            at,
            ..
        } => (
            at,
            "scheduled",
            format!(
                "{provider} · session {} · at {} · attempt {attempt}",
                short_session(session_id),
                stamp(*when)
            ),
        ),
        IncidentEvent::Resumed {
            provider,
            session_id,
            detail,
            at,
            ..
        } => (at, "resumed", joined(provider, session_id, detail)),
        IncidentEvent::Failed {
            provider,
            session_id,
            reason,
            at,
            ..
        } => (at, "failed", joined(provider, session_id, reason)),
        IncidentEvent::Skipped {
            provider,
            session_id,
            reason,
            at,
            ..
        } => (at, "skipped", joined(provider, session_id, reason)),
        IncidentEvent::Cancelled { incident_id, at } => {
            (at, "cancelled", format!("incident {incident_id}"))
        }
    };
    format!("{}  {kind:<9}  {what}", stamp(*at))
}

fn joined(provider: &str, session_id: &str, detail: &str) -> String {
    let mut s = format!("{provider} · session {}", short_session(session_id));
    if !detail.is_empty() {
        let _ = write!(s, " · {detail}");
    }
    s
}

/// What `status` prints.
pub fn render_status(s: &StatusSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "zag-resumed {} · pid {} · up {} (since {})",
        s.version,
        s.pid,
        human_duration(s.now - s.started_at),
        stamp(s.started_at)
    );
    let total: usize = s.watched.values().sum();
    if total == 0 {
        out.push_str("watching no files yet\n");
    } else {
        let per: Vec<String> = s
            .watched
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "watching {total} file{}: {}",
            plural(total),
            per.join(" · ")
        );
    }
    if s.pending.is_empty() {
        out.push_str("no pending resumes\n");
    } else {
        let _ = writeln!(out, "pending resumes ({}):", s.pending.len());
        let mut pending: Vec<&PendingView> = s.pending.iter().collect();
        pending.sort_by_key(|p| p.when);
        for p in pending {
            let _ = writeln!(out, "  {}", render_pending(p, s.now));
        }
    }
    if !s.recent.is_empty() {
        out.push_str("recent:\n");
        for ev in &s.recent {
            let _ = writeln!(out, "  {}", render_event(ev));
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What `list` prints: a table like `zag usage list`, plus the store.
pub fn render_list(v: &[PendingView]) -> String {
    if v.is_empty() {
        return "No pending resumes.\n".into();
    }
    let header = [
        "INCIDENT",
        "PROVIDER",
        "WAKES AT (UTC)",
        "ATTEMPT",
        "SESSION",
        "STORE",
    ];
    let rows: Vec<[String; 6]> = v
        .iter()
        .map(|p| {
            [
                p.incident_id.clone(),
                p.provider.clone(),
                p.when.format("%Y-%m-%d %H:%M:%S").to_string(),
                p.attempt.to_string(),
                p.session_id.clone(),
                p.store.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 6]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn pending(id: &str, session: &str, when: &str, scope: Option<&str>) -> PendingView {
        PendingView {
            incident_id: id.into(),
            provider: "claude".into(),
            session_id: session.into(),
            when: t(when),
            attempt: 1,
            store: "/h/.zag/projects/p/scheduled_resumes.jsonl".into(),
            scope: scope.map(Into::into),
            cwd: None,
            origin: Some("zag-resumed".into()),
        }
    }

    #[test]
    fn durations_and_countdowns() {
        let now = t("2030-01-01T08:00:00Z");
        let cases = [
            ("2030-01-01T10:14:59Z", "resumes in 2h 14m"),
            ("2030-01-01T08:05:00Z", "resumes in 5m"),
            ("2030-01-01T08:00:40Z", "resumes in 40s"),
            ("2030-01-03T11:00:00Z", "resumes in 2d 3h"),
            ("2030-01-01T08:00:00Z", "due now"),
            ("2030-01-01T07:59:30Z", "due now"),
            ("2030-01-01T07:55:00Z", "overdue by 5m"),
        ];
        for (when, want) in cases {
            assert_eq!(countdown(t(when), now), want, "{when}");
        }
    }

    #[test]
    fn short_sessions() {
        assert_eq!(short_session("6873abcd-ef"), "6873…");
        assert_eq!(short_session("687"), "687");
        assert_eq!(short_session(""), "?");
        assert_eq!(short_session("ééééé"), "éééé…");
    }

    #[test]
    fn pending_line_reads_like_the_issue() {
        let now = t("2030-01-01T08:00:00Z");
        let p = pending("i1", "6873abcd", "2030-01-01T10:14:00Z", Some("weekly"));
        assert_eq!(
            render_pending(&p, now),
            "claude · session 6873… · resumes in 2h 14m · weekly limit"
        );
        let mut q = pending("i2", "9c1f0000", "2030-01-01T08:05:00Z", None);
        q.attempt = 3;
        q.provider = "codex".into();
        assert_eq!(
            render_pending(&q, now),
            "codex · session 9c1f… · resumes in 5m · attempt 3"
        );
    }

    #[test]
    fn status_rendering() {
        let now = t("2030-01-01T08:00:00Z");
        let snap = StatusSnapshot {
            pid: 4242,
            version: "0.1.0".into(),
            started_at: t("2030-01-01T05:30:00Z"),
            now,
            watched: BTreeMap::from([
                ("claude".into(), 12),
                ("codex".into(), 3),
                ("gemini".into(), 0),
            ]),
            pending: vec![
                pending("i2", "9c1f0000", "2030-01-01T12:00:00Z", Some("session")),
                pending("i1", "6873abcd", "2030-01-01T10:14:00Z", Some("weekly")),
            ],
            recent: vec![
                IncidentEvent::Resumed {
                    incident_id: "i0".into(),
                    provider: "codex".into(),
                    session_id: "abcdef".into(),
                    detail: "via fifo".into(),
                    at: t("2030-01-01T07:00:00Z"),
                },
                IncidentEvent::Failed {
                    incident_id: "i9".into(),
                    provider: "gemini".into(),
                    session_id: "zz".into(),
                    reason: "exit 1".into(),
                    at: t("2030-01-01T07:30:00Z"),
                },
            ],
        };
        let want = "\
zag-resumed 0.1.0 · pid 4242 · up 2h 30m (since 2030-01-01 05:30 UTC)
watching 15 files: claude 12 · codex 3
pending resumes (2):
  claude · session 6873… · resumes in 2h 14m · weekly limit
  claude · session 9c1f… · resumes in 4h 0m · session limit
recent:
  2030-01-01 07:00 UTC  resumed    codex · session abcd… · via fifo
  2030-01-01 07:30 UTC  failed     gemini · session zz · exit 1
";
        assert_eq!(render_status(&snap), want);
        let idle = StatusSnapshot {
            watched: BTreeMap::new(),
            pending: vec![],
            recent: vec![],
            ..snap
        };
        assert_eq!(
            render_status(&idle),
            "zag-resumed 0.1.0 · pid 4242 · up 2h 30m (since 2030-01-01 05:30 UTC)\n\
             watching no files yet\nno pending resumes\n"
        );
    }

    #[test]
    fn list_table_aligns_columns() {
        let mut a = pending("6f1e", "9c2d-long-session", "2030-01-01T08:00:00Z", None);
        a.attempt = 2;
        let mut b = pending("abcdef012345", "s", "2030-01-02T09:30:05Z", None);
        b.provider = "codex".into();
        b.store = "/h/.zag/scheduled_resumes.jsonl".into();
        let want = "\
INCIDENT      PROVIDER  WAKES AT (UTC)       ATTEMPT  SESSION            STORE
6f1e          claude    2030-01-01 08:00:00  2        9c2d-long-session  /h/.zag/projects/p/scheduled_resumes.jsonl
abcdef012345  codex     2030-01-02 09:30:05  1        s                  /h/.zag/scheduled_resumes.jsonl
";
        assert_eq!(render_list(&[a, b]), want);
        assert_eq!(render_list(&[]), "No pending resumes.\n");
    }

    #[test]
    fn events_render_on_one_line() {
        let ev = IncidentEvent::Hit {
            incident_id: "i".into(),
            provider: "claude".into(),
            session_id: "6873abcd".into(),
            scope: "weekly".into(),
            reset_at: Some(t("2030-01-01T10:00:00Z")),
            file: "/f".into(),
            at: t("2030-01-01T08:00:00Z"),
        };
        assert_eq!(
            render_event(&ev),
            "2030-01-01 08:00 UTC  hit        claude · session 6873… · weekly limit · resets 2030-01-01 10:00 UTC"
        );
        let ev = IncidentEvent::Cancelled {
            incident_id: "i7".into(),
            at: t("2030-01-01T08:00:00Z"),
        };
        assert_eq!(
            render_event(&ev),
            "2030-01-01 08:00 UTC  cancelled  incident i7"
        );
    }

    #[test]
    fn store_fallback_lists_and_cancels() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let mk = |id: &str, when: &str| {
            Record::Schedule(Schedule {
                incident_id: id.into(),
                session_id: format!("sess-{id}"),
                provider: "codex".into(),
                when: t(when),
                message: "Continue".into(),
                attempt: 1,
                scope: Some("weekly".into()),
                ..Default::default()
            })
        };
        let global = StoreFile::new(home.join("scheduled_resumes.jsonl"));
        let project = StoreFile::new(home.join("projects/p/scheduled_resumes.jsonl"));
        global.append(&mk("late", "2030-01-02T00:00:00Z")).unwrap();
        project
            .append(&mk("early", "2030-01-01T00:00:00Z"))
            .unwrap();
        project.append(&mk("done", "2030-01-01T01:00:00Z")).unwrap();
        project
            .append(&Record::Cancel {
                incident_id: "done".into(),
            })
            .unwrap();
        let ids: Vec<_> = pending_from_stores(home)
            .into_iter()
            .map(|p| p.incident_id)
            .collect();
        assert_eq!(ids, ["early", "late"]);
        let v = cancel_in_stores(home, "late").unwrap();
        assert_eq!(v.store, global.path.display().to_string());
        assert!(global.load().unwrap().tombstoned.contains("late"));
        assert!(cancel_in_stores(home, "late")
            .unwrap_err()
            .contains("no pending incident"));
        assert_eq!(pending_from_stores(home).len(), 1);
    }
}
