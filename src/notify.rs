//! Telling people and service managers what the daemon is doing.
//!
//! - [`Notifier`]: desktop notifications on hit, resume and failure, through
//!   `notify-send` (freedesktop) or `osascript` (macOS). Fire and forget: the
//!   child runs detached from the daemon's tasks, is reaped by a small thread
//!   and killed if it hangs; a failure is logged once, never returned.
//! - [`sd_notify`] and [`watchdog_interval`]: systemd's readiness protocol
//!   without a crate: one datagram per state to `$NOTIFY_SOCKET` (a path or an
//!   abstract `@name`). Outside systemd they are no-ops.
//!
//! The decisions (which backend, which interval) are pure functions of the
//! environment passed in, so they test without a desktop or a systemd.

use std::ffi::{OsStr, OsString};
use std::io;
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
    use crate::control::commands::short_session;
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

/// Send a state (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, `RELOADING=1`,
/// `STATUS=…`; several separated by newlines) to systemd.
///
/// `Ok(false)` when not started by systemd (`$NOTIFY_SOCKET` unset or empty);
/// `Ok(true)` once the datagram is sent.
pub fn sd_notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(s) if !s.is_empty() => sd_notify_to(&s, state).map(|()| true),
        _ => Ok(false),
    }
}

/// The message announcing a reload: `RELOADING=1` with the
/// `MONOTONIC_USEC=` that systemd 253+ requires alongside it (older versions
/// ignore it). Send `READY=1` once the reload is done.
pub fn reloading_message() -> String {
    // SAFETY: clock_gettime writes into the timespec we own.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000;
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// Send `state` to an explicit notify socket: a path, or `@name` for a Linux
/// abstract socket.
pub fn sd_notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        send_abstract(&sock, name, state.as_bytes())?
    } else if bytes.first() == Some(&b'/') {
        sock.send_to(state.as_bytes(), Path::new(socket))?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("unsupported NOTIFY_SOCKET {socket:?}"),
        ));
    };
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write to NOTIFY_SOCKET",
        ));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(
    sock: &std::os::unix::net::UnixDatagram,
    name: &[u8],
    data: &[u8],
) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(data, &addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(
    _sock: &std::os::unix::net::UnixDatagram,
    _name: &[u8],
    _data: &[u8],
) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

/// systemd's watchdog period for this process, from `$WATCHDOG_USEC` (and
/// `$WATCHDOG_PID` when set). Ping with `WATCHDOG=1` at half of it.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// [`watchdog_interval`] over explicit values.
pub fn watchdog_interval_from(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// Spawn a task that sends `WATCHDOG=1` at half the watchdog period until
/// `shutdown` fires; `None` when systemd asked for no watchdog.
///
/// The pings come from the runtime, so they prove the runtime is scheduling
/// tasks. A daemon that wants them to prove more (the timer loop turns) can
/// instead ping from that loop with [`watchdog_interval`].
pub fn spawn_watchdog(
    shutdown: tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let period = watchdog_interval()? / 2;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Stop pinging once shutdown starts: STOPPING=1 takes over.
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = sd_notify("WATCHDOG=1") {
                        tracing::warn!("watchdog ping failed: {e}");
                    }
                }
            }
        }
    }))
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

    #[test]
    fn reloading_carries_a_monotonic_stamp() {
        let m = reloading_message();
        let (first, second) = m.split_once('\n').unwrap();
        assert_eq!(first, "RELOADING=1");
        let usec: u64 = second
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
    }

    #[test]
    fn watchdog_interval_parsing() {
        let own = 42;
        assert_eq!(watchdog_interval_from(None, None, own), None);
        assert_eq!(
            watchdog_interval_from(Some("30000000"), None, own),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("42"), own),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("7"), own),
            None
        );
        assert_eq!(watchdog_interval_from(Some("0"), None, own), None);
        assert_eq!(watchdog_interval_from(Some("x"), None, own), None);
    }

    #[test]
    fn sd_notify_to_path_socket() {
        use std::os::unix::net::UnixDatagram;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify");
        let rx = UnixDatagram::bind(&p).unwrap();
        sd_notify_to(p.as_os_str(), "READY=1\nSTATUS=ok").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
        assert!(sd_notify_to(OsStr::new("relative"), "READY=1").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sd_notify_to_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let name = format!("zag-resumed-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        sd_notify_to(OsStr::new(&format!("@{name}")), "WATCHDOG=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
}
