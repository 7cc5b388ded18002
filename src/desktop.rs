//! Notifications on hit, resume and failure: on the desktop, and, when
//! configured, to people away from it.
//!
//! [`Notifier`] shows them through `notify-send` (freedesktop) or
//! `osascript` (macOS). Fire and forget: the child runs detached from the
//! daemon's tasks, is reaped by a small thread and killed if it hangs; a
//! failure is logged once, never returned.
//!
//! Two optional pushes ride on the same events ([`Push`]): an HTTP POST of
//! a one-line message to an ntfy topic (`notify.ntfy_url`), and a command
//! hook (`notify.command`) given the event as JSON on stdin. Each runs on a
//! thread of its own with a time bound, so neither can block the core; a
//! failure is logged, never fatal. The POST goes through `ureq` (blocking,
//! small) with rustls and the bundled Mozilla roots, so both `http://` (a
//! self-hosted ntfy) and `https://` (ntfy.sh) topics work.
//!
//! The decision (which backend) is a pure function of the environment
//! passed in, so it tests without a desktop. (Named `desktop`, not
//! `notify`, so it does not shadow the `notify` crate the watcher uses.)

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::NotifyConfig;
use crate::control::IncidentEvent;
pub use crate::push_url::{HttpTarget, UrlError};

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
    crate::child::which(name, None)
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
    /// `notify.ntfy_url` and `notify.command`, replaced on reload.
    push: RwLock<Arc<Push>>,
}

impl Notifier {
    /// A notifier for this machine and these settings.
    pub fn from_config(cfg: &NotifyConfig) -> Self {
        let n = Self::new(cfg.desktop);
        n.apply(cfg);
        n
    }

    /// Apply reloaded `[notify]` settings.
    pub fn apply(&self, cfg: &NotifyConfig) {
        self.set_enabled(cfg.desktop);
        let push = Push::from_config(cfg);
        if let Ok(mut p) = self.push.write() {
            *p = Arc::new(push);
        }
    }

    /// Send an event to the configured pushes (none by default). Returns at
    /// once: each push runs on its own thread.
    pub fn push(&self, ev: &IncidentEvent) {
        let push = match self.push.read() {
            Ok(p) => Arc::clone(&p),
            Err(_) => return,
        };
        if push.is_empty() {
            return;
        }
        let Some(msg) = push_message(ev) else { return };
        let ev = ev.clone();
        std::thread::Builder::new()
            .name("notify-push".into())
            .spawn(move || push.send(&ev, &msg))
            .map(drop)
            .unwrap_or_else(|e| tracing::warn!("cannot start a notification push: {e}"));
    }

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
            push: RwLock::new(Arc::new(Push::default())),
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
                let (Backend::NotifySend(tool) | Backend::Osascript(tool)) = backend;
                warn_once(
                    &self.warned,
                    format_args!("cannot run {}: {e}", tool.display()),
                );
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
        // The NeedsUser event that follows says what to do.
        IncidentEvent::Hit {
            needs_user: Some(_),
            ..
        } => None,
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
            permission_mode,
            ..
        } => Some((
            format!("{provider} session resumed"),
            match crate::control::render::mode_words(provider, permission_mode.as_deref()) {
                Some(m) => format!("session {} · {m}", short_session(session_id)),
                None => format!("session {}", short_session(session_id)),
            },
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
        IncidentEvent::StoreUnwritable { store, error, .. } => Some((
            "zag-resumed cannot write its store".to_string(),
            format!("{store}: {error} · limits wait unacknowledged and are retried"),
        )),
        IncidentEvent::NeedsUser {
            incident_id,
            provider,
            session_id,
            what,
            ..
        } => Some((
            format!("{provider} needs you: no wait lifts this limit"),
            format!(
                "session {} · {what}, then `zag-resumed retry {}`",
                short_session(session_id),
                crate::control::history::short_id(incident_id)
            ),
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
                    notifier.push(&ev);
                }
                // Missing a few notifications is fine; they are also logged.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    })
}

/// What a push says: a title, one line of text, ntfy tags (emoji names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushMessage {
    pub title: String,
    pub body: String,
    pub tags: &'static str,
}

/// The push for an event: hit, resumed, failed and gave up (a failure whose
/// reason says the attempts ran out); nothing for the others.
pub fn push_message(ev: &IncidentEvent) -> Option<PushMessage> {
    let (title, body) = notification_for(ev)?;
    let id = crate::control::history::short_id(crate::control::render::event_incident(ev));
    let (title, tags) = match ev {
        IncidentEvent::Hit { .. } => (title, "hourglass"),
        IncidentEvent::Resumed { .. } => (title, "white_check_mark"),
        IncidentEvent::NeedsUser { .. } => (title, "warning"),
        IncidentEvent::Failed {
            provider, reason, ..
        } if reason.starts_with("gave up") => (format!("{provider} resume gave up"), "no_entry"),
        _ => (title, "x"),
    };
    Some(PushMessage {
        title,
        body: format!("{id} · {body}"),
        tags,
    })
}

/// The configured pushes.
#[derive(Clone, Debug, Default)]
pub struct Push {
    ntfy: Option<HttpTarget>,
    command: Option<Vec<String>>,
}

/// How long a push (the POST, or the hook) may take.
const PUSH_DEADLINE: Duration = Duration::from_secs(10);

impl Push {
    /// The pushes of a checked config (a bad URL was refused at load; here
    /// it is skipped with a warning).
    pub fn from_config(cfg: &NotifyConfig) -> Self {
        let ntfy = cfg
            .ntfy_url
            .as_deref()
            .and_then(|u| match HttpTarget::parse(u) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("notify.ntfy_url ignored: {e}");
                    None
                }
            });
        let command = cfg.command.clone().filter(|c| !c.is_empty());
        Push { ntfy, command }
    }

    fn is_empty(&self) -> bool {
        self.ntfy.is_none() && self.command.is_none()
    }

    /// Send to each target, logging failures (blocking: call off the core).
    fn send(&self, ev: &IncidentEvent, msg: &PushMessage) {
        if let Some(target) = &self.ntfy {
            if let Err(e) = target.post(msg, PUSH_DEADLINE) {
                tracing::warn!(url = %target.url, "ntfy push failed: {e}");
            }
        }
        if let Some(argv) = &self.command {
            if let Err(e) = run_hook(argv, ev, PUSH_DEADLINE) {
                tracing::warn!(hook = %argv[0], "notify command failed: {e}");
            }
        }
    }
}

/// Why an ntfy POST did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Resolving, connecting, TLS, writing the request or reading the
    /// answer failed.
    #[error("{url}: {source}")]
    Http { url: String, source: ureq::Error },
    /// The server answered, but not with a 2xx status.
    #[error("{url}: answered {status_line:?}")]
    Status { url: String, status_line: String },
}

/// Why the notify hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("no program")]
    NoProgram,
    #[error("cannot run {prog}: {source}")]
    Spawn {
        prog: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    #[error("{prog} exited with {status}")]
    Exit {
        prog: String,
        status: std::process::ExitStatus,
    },
    #[error("{prog} killed after {deadline:?}")]
    Killed { prog: String, deadline: Duration },
    #[error("cannot wait for {prog}: {source}")]
    Wait {
        prog: String,
        source: std::io::Error,
    },
}

impl HttpTarget {
    /// POST the message (the text as the body, `Title` and `Tags` headers);
    /// a non-2xx status is an error.
    pub fn post(&self, msg: &PushMessage, deadline: Duration) -> Result<(), PushError> {
        self.post_via(&push_agent(deadline, ureq::tls::RootCerts::WebPki), msg)
    }

    fn post_via(&self, agent: &ureq::Agent, msg: &PushMessage) -> Result<(), PushError> {
        // Header values kept to printable ASCII.
        let header = |v: &str| -> String {
            v.chars()
                .map(|c| {
                    if c.is_ascii() && !c.is_ascii_control() {
                        c
                    } else {
                        '?'
                    }
                })
                .collect()
        };
        let answer = agent
            .post(&self.url)
            .header("Title", header(&msg.title))
            .header("Tags", header(msg.tags))
            .content_type("text/plain; charset=utf-8")
            .send(msg.body.as_bytes())
            .map_err(|source| PushError::Http {
                url: self.url.clone(),
                source,
            })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        Err(PushError::Status {
            url: self.url.clone(),
            status_line: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string(),
        })
    }
}

/// The HTTP client of one push: the whole exchange bounded by `deadline`,
/// no redirects (a POST is not replayed elsewhere), statuses returned
/// rather than raised, `roots` trusted for `https://`.
fn push_agent(deadline: Duration, roots: ureq::tls::RootCerts) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    ureq::Agent::config_builder()
        .timeout_global(Some(deadline))
        .max_redirects(0)
        .http_status_as_error(false)
        // Straight to the server, as the plain-TCP client always went.
        .proxy(None)
        .user_agent(concat!("zag-resumed/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .new_agent()
}

/// Run the hook: no shell, the event as one JSON line on stdin, killed
/// after `deadline`; a non-zero exit is an error.
fn run_hook(argv: &[String], ev: &IncidentEvent, deadline: Duration) -> Result<(), HookError> {
    use std::io::Write;
    let (prog, args) = argv.split_first().ok_or(HookError::NoProgram)?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| HookError::Spawn {
            prog: prog.clone(),
            source,
        })?;
    let mut line = serde_json::to_string(ev)?;
    line.push('\n');
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is its own business.
        let _ = stdin.write_all(line.as_bytes());
    }
    match crate::child::wait_deadline(&mut child, deadline) {
        Ok(Some(status)) if status.success() => Ok(()),
        Ok(Some(status)) => Err(HookError::Exit {
            prog: prog.clone(),
            status,
        }),
        Ok(None) => Err(HookError::Killed {
            prog: prog.clone(),
            deadline,
        }),
        Err(source) => Err(HookError::Wait {
            prog: prog.clone(),
            source,
        }),
    }
}

fn warn_once(warned: &AtomicBool, msg: std::fmt::Arguments<'_>) {
    if !warned.swap(true, Ordering::Relaxed) {
        tracing::warn!("desktop notification failed (further failures not logged): {msg}");
    } else {
        tracing::debug!("desktop notification failed: {msg}");
    }
}

fn reap(mut child: std::process::Child, warned: &AtomicBool) {
    match crate::child::wait_deadline(&mut child, CHILD_DEADLINE) {
        Ok(Some(status)) if status.success() => {}
        Ok(Some(status)) => warn_once(warned, format_args!("notifier exited with {status}")),
        Ok(None) => warn_once(
            warned,
            format_args!("notifier killed after {CHILD_DEADLINE:?}"),
        ),
        Err(e) => warn_once(warned, format_args!("cannot wait for notifier: {e}")),
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
            needs_user: None,
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
    fn a_limit_no_wait_lifts_notifies_once_with_what_to_do() {
        let at = "2030-01-01T08:00:00Z".parse().unwrap();
        // Its hit stays quiet: the needs-you event says more.
        let hit = IncidentEvent::Hit {
            incident_id: "abcdef0123".into(),
            provider: "codex".into(),
            session_id: "t-1".into(),
            scope: "unknown".into(),
            reset_at: None,
            file: "/f".into(),
            at,
            needs_user: Some("spend_cap".into()),
        };
        assert_eq!(notification_for(&hit), None);
        let ev = IncidentEvent::NeedsUser {
            incident_id: "abcdef0123".into(),
            provider: "codex".into(),
            session_id: "t-1".into(),
            what: "spend cap reached: raise the workspace's spend cap".into(),
            at,
        };
        assert_eq!(
            notification_for(&ev),
            Some((
                "codex needs you: no wait lifts this limit".to_string(),
                "session t-1 · spend cap reached: raise the workspace's spend cap, then `zag-resumed retry abcdef01`".to_string()
            ))
        );
        let push = push_message(&ev).unwrap();
        assert_eq!(push.tags, "warning");
        assert!(push.body.starts_with("abcdef01 · "), "{}", push.body);
    }

    #[test]
    fn http_and_https_targets_parse() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/my-topic").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.path.as_str(),
                t.authority.as_str()
            ),
            ("127.0.0.1", 8080, "/my-topic", "127.0.0.1:8080")
        );
        assert!(!t.tls);
        let t = HttpTarget::parse("http://ntfy.lan").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = HttpTarget::parse("http://[::1]:9/t").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        // ntfy.sh is https: accepted since the client speaks TLS.
        let t = HttpTarget::parse("https://ntfy.sh/t").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str(), t.tls),
            ("ntfy.sh", 443, "/t", true)
        );
        assert_eq!(HttpTarget::parse("https://h:8443/t").unwrap().port, 8443);
        for bad in [
            "ftp://x/t",
            "http:///t",
            "https:///t",
            "http://h:99999/t",
            "http://u@h/t",
            "http://h/a b",
            "http://a b/t",
        ] {
            assert!(HttpTarget::parse(bad).is_err(), "{bad}");
        }
        // The texts config load shows.
        let shown = |u: &str| HttpTarget::parse(u).unwrap_err().to_string();
        assert_eq!(
            shown("ftp://x/t"),
            "ftp://x/t: expected an http:// or https:// URL"
        );
        assert_eq!(
            shown("http://u@h/t"),
            "http://u@h/t: expected http://host[:port]/topic"
        );
        assert_eq!(
            shown("http://h/a b"),
            "http://h/a b: the path must not contain spaces"
        );
        assert_eq!(
            shown("http://h:99999/t"),
            r#"http://h:99999/t: bad port "99999""#
        );
        assert_eq!(shown("http://[]:1/t"), "http://[]:1/t: no host");
        assert!(
            shown("http://a b/t").starts_with("http://a b/t: not a valid URL ("),
            "{}",
            shown("http://a b/t")
        );
    }

    /// A one-shot HTTP/1.1 server on 127.0.0.1: answers `status` to the
    /// first request and hands back that request's text. `wrap` turns the
    /// accepted TCP stream into the stream spoken on (TLS for https).
    fn one_shot_server<S: std::io::Read + std::io::Write>(
        status: &'static str,
        wrap: impl FnOnce(std::net::TcpStream) -> S + Send + 'static,
    ) -> (u16, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut stream = wrap(tcp);
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then as many body bytes as it announces.
            loop {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "client hung up mid-request");
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len: usize = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= head_end + 4 + len {
                        break;
                    }
                }
            }
            let answer =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(answer.as_bytes()).unwrap();
            stream.flush().unwrap();
            String::from_utf8(got).unwrap()
        });
        (port, server)
    }

    fn sample() -> PushMessage {
        PushMessage {
            title: "a · b".into(),
            body: "x · y".into(),
            tags: "x",
        }
    }

    #[test]
    fn an_http_push_reaches_a_real_server_with_title_tags_and_body() {
        let (port, server) = one_shot_server("200 OK", |tcp| tcp);
        let t = HttpTarget::parse(&format!("http://127.0.0.1:{port}/topic")).unwrap();
        t.post(&sample(), Duration::from_secs(30)).unwrap();
        let req = server.join().unwrap();
        let lower = req.to_ascii_lowercase();
        assert!(req.starts_with("POST /topic HTTP/1.1\r\n"), "{req}");
        assert!(
            lower.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
            "{req}"
        );
        assert!(lower.contains("\r\ntitle: a ? b\r\n"), "{req}");
        assert!(lower.contains("\r\ntags: x\r\n"), "{req}");
        assert!(lower.contains("\r\ncontent-length: 6\r\n"), "{req}");
        assert!(req.ends_with("\r\n\r\nx · y"), "{req}");
    }

    #[test]
    fn a_non_2xx_answer_is_an_error_naming_the_status() {
        let (port, server) = one_shot_server("403 Forbidden", |tcp| tcp);
        let url = format!("http://127.0.0.1:{port}/t");
        let e = HttpTarget::parse(&url)
            .unwrap()
            .post(&sample(), Duration::from_secs(30))
            .unwrap_err();
        server.join().unwrap();
        assert_eq!(e.to_string(), format!("{url}: answered \"403 Forbidden\""));
        // Nobody listening: a transport error naming the URL, not a panic.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/t", closed.local_addr().unwrap().port());
        drop(closed);
        let e = HttpTarget::parse(&url)
            .unwrap()
            .post(&sample(), Duration::from_secs(30))
            .unwrap_err();
        assert!(matches!(e, PushError::Http { .. }), "{e}");
        assert!(e.to_string().starts_with(&url), "{e}");
    }

    #[test]
    fn an_https_push_reaches_a_local_tls_server_and_checks_its_certificate() {
        use std::sync::Arc;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let cert_der = key.cert.der().clone();
        let key_der =
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert_der.clone()], key_der)
                .unwrap(),
        );
        let serve = |config: Arc<rustls::ServerConfig>| {
            move |tcp| rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp)
        };
        let (port, server) = one_shot_server("200 OK", serve(config.clone()));
        let t = HttpTarget::parse(&format!("https://127.0.0.1:{port}/topic")).unwrap();
        let trusted = ureq::tls::RootCerts::new_with_certs(&[ureq::tls::Certificate::from_der(
            cert_der.as_ref(),
        )
        .to_owned()]);
        t.post_via(&push_agent(Duration::from_secs(30), trusted), &sample())
            .unwrap();
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /topic HTTP/1.1\r\n"), "{req}");
        assert!(req.ends_with("\r\n\r\nx · y"), "{req}");

        // The same server is refused under the public roots: its
        // certificate is self-signed, and the push fails without a panic.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut tls =
                rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
            let mut buf = [0u8; 64];
            // The client aborts the handshake: an error or end of stream.
            let _ = std::io::Read::read(&mut tls, &mut buf);
        });
        let e = HttpTarget::parse(&format!("https://127.0.0.1:{port}/topic"))
            .unwrap()
            .post(&sample(), Duration::from_secs(30))
            .unwrap_err();
        refused.join().unwrap();
        assert!(matches!(e, PushError::Http { .. }), "{e}");
    }

    #[test]
    fn push_messages_say_what_happened() {
        let at = "2030-01-01T08:00:00Z".parse().unwrap();
        let gave_up = IncidentEvent::Failed {
            incident_id: "8432fc05-x".into(),
            provider: "codex".into(),
            session_id: "9c1f0000".into(),
            reason: "gave up after 12 attempts (max_attempts)".into(),
            at,
        };
        let m = push_message(&gave_up).unwrap();
        assert_eq!(m.title, "codex resume gave up");
        assert_eq!(m.tags, "no_entry");
        assert_eq!(
            m.body,
            "8432fc05 · session 9c1f… · gave up after 12 attempts (max_attempts)"
        );
        let cancelled = IncidentEvent::Cancelled {
            incident_id: "i".into(),
            at,
        };
        assert_eq!(push_message(&cancelled), None);
    }

    #[test]
    fn hook_failures_keep_their_texts() {
        let ev = IncidentEvent::Cancelled {
            incident_id: "i".into(),
            at: "2030-01-01T08:00:00Z".parse().unwrap(),
        };
        let d = Duration::from_secs(5);
        assert_eq!(run_hook(&[], &ev, d).unwrap_err().to_string(), "no program");
        let missing = "/nonexistent/zag-resumed-hook".to_string();
        let e = run_hook(std::slice::from_ref(&missing), &ev, d)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot run /nonexistent/zag-resumed-hook: "),
            "{e}"
        );
        let Some(f) = which("false") else { return };
        let prog = f.display().to_string();
        let e = run_hook(std::slice::from_ref(&prog), &ev, d)
            .unwrap_err()
            .to_string();
        assert_eq!(e, format!("{prog} exited with exit status: 1"));
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
        let start = std::time::Instant::now();
        n.notify("title", "body");
        assert!(start.elapsed() < Duration::from_secs(1));
        // A missing binary is logged, not returned.
        let n = Notifier::with_backend(Some(Backend::NotifySend("/nonexistent/x".into())));
        n.notify("title", "body");
        n.notify("title", "body");
    }
}
