//! Desktop notifications on hit, resume and failure.
//!
//! [`Notifier`] shows them through `notify-send` (freedesktop) or
//! `osascript` (macOS). Fire and forget: the child runs detached from the
//! daemon's tasks, is reaped by a small thread and killed if it hangs; a
//! failure is logged once, never returned.
//!
//! The decision (which backend) is a pure function of the environment
//! passed in, so it tests without a desktop. (Named `desktop`, not
//! `notify`, so it does not shadow the `notify` crate the watcher uses.)

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::control::IncidentEvent;

/// How a desktop notification is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// freedesktop `notify-send` at this path.
    NotifySend(PathBuf),
    /// macOS `osascript` at this path.
    Osascript(PathBuf),
}

/// Pick a backend for an OS (`std::env::consts::OS`), an environment and a
/// `PATH` lookup. Linux and the BSDs need a desktop session (`DISPLAY`,
/// `WAYLAND_DISPLAY` or `DBUS_SESSION_BUS_ADDRESS`) and `notify-send`.
pub fn pick_backend(
    os: &str,
    env: impl Fn(&str) -> Option<OsString>,
    which: impl Fn(&str) -> Option<PathBuf>,
) -> Option<Backend> {
    if os == "macos" {
        return which("osascript").map(Backend::Osascript);
    }
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"]
        .iter()
        .any(|k| env(k).is_some_and(|v| !v.is_empty()));
    if !desktop {
        return None;
    }
    which("notify-send").map(Backend::NotifySend)
}

/// The first executable `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The command line that shows one notification.
pub fn command_for(backend: &Backend, title: &str, body: &str) -> Command {
    match backend {
        Backend::NotifySend(bin) => {
            let mut c = Command::new(bin);
            // `--` so a body starting with `-` is not read as an option.
            c.args(["--app-name=zag-resumed", "--", title, body]);
            c
        }
        Backend::Osascript(bin) => {
            // Title and body travel as argv, so no AppleScript quoting is needed.
            let mut c = Command::new(bin);
            c.args([
                "-e",
                "on run argv",
                "-e",
                "display notification (item 2 of argv) with title (item 1 of argv)",
                "-e",
                "end run",
                title,
                body,
            ]);
            c
        }
    }
}

/// How long a notifier child may run before it is killed.
const CHILD_DEADLINE: Duration = Duration::from_secs(10);

/// Desktop notifications; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Notifier {
    backend: Option<Backend>,
    /// `notify.desktop`, switchable on reload.
    enabled: AtomicBool,
    /// Shared with reaper threads: one warning per notifier, whoever sees it.
    warned: Arc<AtomicBool>,
}

impl Notifier {
    /// A notifier for this machine: off when `enabled` is false (the config's
    /// `notify.desktop`) or when no desktop session or tool exists.
    pub fn new(enabled: bool) -> Self {
        let backend = pick_backend(std::env::consts::OS, |k| std::env::var_os(k), which);
        let n = Self::with_backend(backend);
        n.set_enabled(enabled);
        n
    }

    /// Apply a reloaded `notify.desktop`.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// A notifier with an explicit backend (tests, or none at all).
    pub fn with_backend(backend: Option<Backend>) -> Self {
        Notifier {
            backend,
            enabled: AtomicBool::new(true),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether notifications will be shown.
    pub fn is_active(&self) -> bool {
        self.backend.is_some() && self.enabled.load(Ordering::Relaxed)
    }

    /// Show a notification. Never blocks on the child and never fails: a
    /// spawn error or a non-zero exit is logged once per notifier.
    pub fn notify(&self, title: &str, body: &str) {
        let Some(backend) = self.backend.as_ref().filter(|_| self.is_active()) else {
            return;
        };
        let mut cmd = command_for(backend, title, body);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                warn_once(&self.warned, format_args!("cannot run {backend:?}: {e}"));
                return;
            }
        };
        // Reap (and bound) the child off the daemon's tasks.
        let warned = Arc::clone(&self.warned);
        std::thread::Builder::new()
            .name("notify-reaper".into())
            .spawn(move || reap(child, &warned))
            .map(drop)
            .unwrap_or_else(|e| tracing::debug!("no reaper thread for notifier: {e}"));
    }
}

/// The notification for an event: hits, resumes and failures only.
pub fn notification_for(ev: &IncidentEvent) -> Option<(String, String)> {
    use crate::control::render::short_session;
    match ev {
        IncidentEvent::Hit {
            provider,
            session_id,
            reset_at,
            ..
        } => {
            let when = reset_at.map_or_else(
                || "the reset time is unknown".to_string(),
                |r| format!("resumes after {}", r.format("%Y-%m-%d %H:%M UTC")),
            );
            Some((
                format!("{provider} hit its usage limit"),
                format!("session {} · {when}", short_session(session_id)),
            ))
        }
        IncidentEvent::Resumed {
            provider,
            session_id,
            ..
        } => Some((
            format!("{provider} session resumed"),
            format!("session {}", short_session(session_id)),
        )),
        IncidentEvent::Failed {
            provider,
            session_id,
            reason,
            ..
        } => Some((
            format!("{provider} resume failed"),
            format!("session {} · {reason}", short_session(session_id)),
        )),
        IncidentEvent::Routed {
            provider,
            session_id,
            why,
            notify: true,
            ..
        } => Some((
            format!("{provider} session waits for you"),
            format!("session {} · {why}", short_session(session_id)),
        )),
        _ => None,
    }
}

/// Show a notification for every hit, resume and failure on `events` until
/// `shutdown` fires or the sender goes away.
pub fn spawn_event_notifier(
    notifier: Arc<Notifier>,
    mut events: tokio::sync::broadcast::Receiver<IncidentEvent>,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    use tokio::sync::broadcast::error::RecvError;
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.recv() => ev,
            };
            match ev {
                Ok(ev) => {
                    if let Some((title, body)) = notification_for(&ev) {
                        notifier.notify(&title, &body);
                    }
                }
                // Missing a few notifications is fine; they are also logged.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    })
}

fn warn_once(warned: &AtomicBool, msg: std::fmt::Arguments<'_>) {
    if !warned.swap(true, Ordering::Relaxed) {
        tracing::warn!("desktop notification failed (further failures not logged): {msg}");
    } else {
        tracing::debug!("desktop notification failed: {msg}");
    }
}

fn reap(mut child: std::process::Child, warned: &AtomicBool) {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                return warn_once(warned, format_args!("notifier exited with {status}"));
            }
            Ok(None) if start.elapsed() > CHILD_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                return warn_once(
                    warned,
                    format_args!("notifier killed after {CHILD_DEADLINE:?}"),
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return warn_once(warned, format_args!("cannot wait for notifier: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn has(name: &'static str) -> impl Fn(&str) -> Option<PathBuf> {
        move |n| (n == name).then(|| PathBuf::from("/usr/bin").join(n))
    }

    #[test]
    fn backend_needs_a_desktop_on_linux() {
        let none = pick_backend("linux", env_of(&[]), has("notify-send"));
        assert_eq!(none, None);
        let empty = pick_backend("linux", env_of(&[("DISPLAY", "")]), has("notify-send"));
        assert_eq!(empty, None);
        for var in ["DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"] {
            let b = pick_backend("linux", env_of(&[(var, "x")]), has("notify-send"));
            assert_eq!(b, Some(Backend::NotifySend("/usr/bin/notify-send".into())));
        }
        let no_tool = pick_backend("linux", env_of(&[("DISPLAY", ":0")]), has("other"));
        assert_eq!(no_tool, None);
        let mac = pick_backend("macos", env_of(&[]), has("osascript"));
        assert_eq!(mac, Some(Backend::Osascript("/usr/bin/osascript".into())));
    }

    #[test]
    fn disabled_notifier_is_inert() {
        let n = Notifier::new(false);
        assert!(!n.is_active());
        n.notify("t", "b");
        let n = Notifier::with_backend(Some(Backend::NotifySend("/nonexistent/x".into())));
        assert!(n.is_active());
        n.set_enabled(false);
        assert!(!n.is_active());
        n.set_enabled(true);
        assert!(n.is_active());
    }

    #[test]
    fn only_hits_resumes_and_failures_notify() {
        let at = "2030-01-01T08:00:00Z".parse().unwrap();
        let hit = IncidentEvent::Hit {
            incident_id: "i".into(),
            provider: "claude".into(),
            session_id: "6873abcd".into(),
            scope: "weekly".into(),
            reset_at: Some("2030-01-01T10:00:00Z".parse().unwrap()),
            file: "/f".into(),
            at,
        };
        assert_eq!(
            notification_for(&hit),
            Some((
                "claude hit its usage limit".to_string(),
                "session 6873… · resumes after 2030-01-01 10:00 UTC".to_string()
            ))
        );
        let failed = IncidentEvent::Failed {
            incident_id: "i".into(),
            provider: "codex".into(),
            session_id: "s".into(),
            reason: "exit 1".into(),
            at,
        };
        assert_eq!(
            notification_for(&failed).unwrap().1,
            "session s · exit 1".to_string()
        );
        let cancelled = IncidentEvent::Cancelled {
            incident_id: "i".into(),
            at,
        };
        assert_eq!(notification_for(&cancelled), None);
    }

    #[test]
    fn notify_send_args_end_options() {
        let c = command_for(&Backend::NotifySend("/x/notify-send".into()), "T", "-b");
        let args: Vec<_> = c.get_args().collect();
        assert_eq!(args, ["--app-name=zag-resumed", "--", "T", "-b"]);
    }

    #[test]
    fn notifier_runs_a_child_without_blocking() {
        // `true` stands in for notify-send: it must be spawned and reaped.
        let Some(t) = which("true") else { return };
        let n = Notifier::with_backend(Some(Backend::NotifySend(t)));
        let start = Instant::now();
        n.notify("title", "body");
        assert!(start.elapsed() < Duration::from_secs(1));
        // A missing binary is logged, not returned.
        let n = Notifier::with_backend(Some(Backend::NotifySend("/nonexistent/x".into())));
        n.notify("title", "body");
        n.notify("title", "body");
    }
}
