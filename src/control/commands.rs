//! The client side of the CLI: `status`, `list`, `cancel`, `reload`, `stop`
//! and `subscribe`, each one short connection to the daemon.
//!
//! `list` and `cancel` fall back to the stores when no daemon runs
//! ([`super::offline`]); `history` always reads the stores
//! ([`super::history`]), which are the truth with or without a daemon;
//! `ensure` lives in [`super::ensure`]; the text they print comes from
//! [`super::render`].

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::client::{Client, ClientError};
use super::history::{read_history, resolve_pending, short_id, IdError};
use super::offline::{cancel_in_stores, pending_from_stores};
use super::protocol::{Op, Request};
use super::render::{
    pretty, render_event, render_history, render_list, render_roots, render_status, short_session,
};
use super::{PendingView, StatusSnapshot};
use crate::config::DaemonConfig;
use crate::paths::Paths;
use crate::zag_process::pid_alive;

/// Bound on each connection and round trip of a command.
pub const ROUND_TRIP: Duration = Duration::from_secs(5);

async fn connect(paths: &Paths) -> Result<Client, ClientError> {
    Client::connect_paths(paths, ROUND_TRIP).await
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
    if json {
        return Ok(pretty(&snap));
    }
    let mut out = render_status(&snap);
    if snap.pending.is_empty() && snap.watched.values().all(|&n| n == 0) {
        out.push_str(&render_roots(&watch_roots(paths)));
    }
    Ok(out)
}

/// The directories the daemon looks in (zag's home and each watched
/// provider's), and whether each exists: computed here from the same
/// [`Paths`] and default config file the daemon uses, so an idle `status`
/// can say where it looked. A daemon started with `--config` elsewhere may
/// watch other dirs; an unreadable config counts as the defaults.
pub fn watch_roots(paths: &Paths) -> Vec<(std::path::PathBuf, bool)> {
    let cfg = DaemonConfig::load(None, &paths.state_dir.join("config.toml")).unwrap_or_default();
    let mut paths = paths.clone();
    cfg.apply_dirs(&mut paths);
    let mut roots = vec![paths.zag_home.clone()];
    roots.extend(
        crate::provider::all()
            .filter(|cli| cli.watched(&cfg.watch))
            .map(|cli| cli.home(&paths).to_path_buf()),
    );
    roots
        .into_iter()
        .map(|r| {
            let exists = r.is_dir();
            (r, exists)
        })
        .collect()
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
    let mut out = pause_note(paths, crate::clock::Clock::now(&crate::clock::SystemClock));
    out.push_str(&render_list(&pending));
    if !live {
        out.push_str("(zag-resumed is not running: read from the stores directly)\n");
    }
    Ok(out)
}

/// `zag-resumed cancel <id>`: through the daemon (which also disarms the
/// timer), or by appending a `cancel` record when none runs. `incident_id`
/// may be any unique prefix; it is resolved against the stores first, so
/// both paths refuse an unknown, ambiguous or finished id in the same words.
pub async fn cancel(
    paths: &Paths,
    incident_id: &str,
    json: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let view = match connect(paths).await {
        Ok(mut c) => match resolve_pending(&paths.zag_home, incident_id) {
            Ok(id) => c.call::<PendingView>(&Request::cancel(&id)).await?,
            // A daemon started with other dirs may know a store we do not:
            // let it try the id as given; if it knows it no better, the
            // answer is the resolver's, in the resolver's words.
            Err(unknown @ IdError::Unknown { .. }) => {
                match c.call::<PendingView>(&Request::cancel(incident_id)).await {
                    Ok(v) => v,
                    Err(ClientError::Daemon(_)) => return Err(unknown.into()),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        },
        Err(e) if e.is_not_running() => cancel_in_stores(&paths.zag_home, incident_id, now)?,
        Err(e) => return Err(e.into()),
    };
    Ok(if json {
        // zag's own confirmation shape (zag-contract §4).
        pretty(&serde_json::json!({
            "action": "cancel",
            "incident_id": view.incident_id,
            "status": "ok",
        }))
    } else {
        format!(
            "cancelled {} ({} · session {}) in {}\n",
            short_id(&view.incident_id),
            view.provider,
            short_session(&view.session_id),
            view.store
        )
    })
}

/// Which steering request (`resume-now`, `retry` or `message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Steer {
    /// Deliver now, with the user's message when given.
    ResumeNow { message: Option<String> },
    /// One more delivery of a failed or skipped incident, or a cancelled
    /// one restored; `force` skips the "moved on" check once.
    Retry { force: bool },
    /// What the incident sends at its resume.
    Message(String),
}

impl Steer {
    fn as_str(&self) -> &'static str {
        match self {
            Steer::ResumeNow { .. } => "resume-now",
            Steer::Retry { .. } => "retry",
            Steer::Message(_) => "message",
        }
    }
}

/// `zag-resumed resume-now <id>` / `retry <id>` / `message <id> TEXT`:
/// recorded in the store (see [`super::steer`]); a running daemon follows
/// the store at once through its normal path, else the next start does.
pub async fn steer(
    paths: &Paths,
    what: Steer,
    incident_id: &str,
    json: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let home = paths.zag_home.clone();
    let id = incident_id.to_string();
    let request = what.clone();
    let done = tokio::task::spawn_blocking(move || match &request {
        Steer::ResumeNow { message } => {
            super::steer::resume_now(&home, &id, message.as_deref(), now)
        }
        Steer::Retry { force } => super::steer::retry(&home, &id, *force, now),
        Steer::Message(text) => super::steer::set_message(&home, &id, text, now),
    })
    .await??;
    let daemon = match connect(paths).await {
        Ok(_) => true,
        Err(e) if e.is_not_running() => false,
        Err(e) => return Err(e.into()),
    };
    let v = &done.view;
    Ok(if json {
        let mut reply = serde_json::json!({
            "action": what.as_str(),
            "incident_id": v.incident_id,
            "retry_of": done.retry_of,
            "when": v.when,
            "store": v.store,
            "daemon_running": daemon,
        });
        if let Some(m) = &v.message {
            reply["message"] = m.clone().into();
        }
        if let Steer::Retry { force: true } = what {
            reply["force"] = true.into();
        }
        pretty(&reply)
    } else {
        let who = format!("{} · session {}", v.provider, short_session(&v.session_id));
        let mut what_line = match (&what, &done.retry_of) {
            (_, Some(old)) => format!(
                "retrying {} as {} ({who}), due {}",
                short_id(old),
                short_id(&v.incident_id),
                super::render::stamp(v.when)
            ),
            (Steer::Message(_), None) => format!(
                "{} will send your message at its resume ({who})",
                short_id(&v.incident_id)
            ),
            (_, None) => format!("resuming {} now ({who})", short_id(&v.incident_id)),
        };
        if let Steer::Retry { force: true } = what {
            what_line.push_str("; forced: delivered even if the session moved on since the limit");
        }
        if let Some(m) = &v.message {
            what_line.push_str(&format!("\nmessage: {m:?}"));
        }
        let how = if daemon {
            "the daemon delivers it through its normal checks; follow it with `zag-resumed subscribe` or `zag-resumed history`"
        } else {
            "recorded in the store; no daemon runs, so it is delivered when one starts (`zag-resumed ensure`)"
        };
        format!("{what_line}\n{how}\n")
    })
}

/// `zag-resumed pause [--until WHEN]`: through the daemon (which owns the
/// pause file and holds what falls due), or in the pause file when none
/// runs (see [`super::pause`]).
pub async fn pause(
    paths: &Paths,
    until: Option<DateTime<Utc>>,
    json: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let (state, daemon) = match connect(paths).await {
        Ok(mut c) => (
            c.call::<super::pause::PauseState>(&Request::pause(until))
                .await?,
            true,
        ),
        Err(e) if e.is_not_running() => {
            let state = super::pause::PauseState { since: now, until };
            super::pause::save(&paths.state_dir, &state)?;
            (state, false)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(if json {
        pretty(&serde_json::json!({
            "action": "pause",
            "since": state.since,
            "until": state.until,
            "daemon_running": daemon,
        }))
    } else {
        let how = if daemon {
            "the daemon goes on detecting and scheduling; what falls due waits"
        } else {
            "no daemon runs: recorded, and a daemon started later holds what falls due"
        };
        format!("{}\n{how}\n", state.describe())
    })
}

/// `zag-resumed unpause`: held resumes go out (through the daemon, with
/// the usual stagger), or the pause file is removed when none runs.
pub async fn unpause(paths: &Paths, json: bool) -> anyhow::Result<String> {
    let (was_paused, released, daemon) = match connect(paths).await {
        Ok(mut c) => {
            let before: StatusSnapshot = c.call(&Request::new(Op::Status)).await?;
            let released: usize = c.call(&Request::new(Op::Unpause)).await?;
            (before.paused.is_some(), released, true)
        }
        Err(e) if e.is_not_running() => (super::pause::clear(&paths.state_dir)?, 0, false),
        Err(e) => return Err(e.into()),
    };
    Ok(if json {
        pretty(&serde_json::json!({
            "action": "unpause",
            "was_paused": was_paused,
            "released": released,
            "daemon_running": daemon,
        }))
    } else if !was_paused && released == 0 {
        "zag-resumed was not paused\n".to_string()
    } else if daemon {
        format!(
            "unpaused: {released} held resume(s) go out now, spread over the usual stagger (a session that moved on is skipped)\n"
        )
    } else {
        "unpaused (no daemon runs: a daemon started later delivers what is due)\n".to_string()
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

/// How a `subscribe` stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The daemon closed the stream: it stopped.
    DaemonStopped,
    /// The connection failed or carried something unreadable.
    ConnectionLost(String),
}

impl std::fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamEnd::DaemonStopped => f.write_str("subscription ended: the daemon stopped"),
            StreamEnd::ConnectionLost(why) => {
                write!(
                    f,
                    "subscription ended: connection to the daemon lost ({why})"
                )
            }
        }
    }
}

/// Follow incident events until the stream ends, handing each rendered line
/// (or its JSON with `json`) to `out`; returns why it ended. Failing to
/// subscribe at all is an error.
pub async fn subscribe(
    paths: &Paths,
    json: bool,
    mut out: impl FnMut(&str),
) -> anyhow::Result<StreamEnd> {
    let mut sub = connect(paths).await?.subscribe().await?;
    loop {
        match sub.next().await {
            Ok(Some(ev)) => {
                if json {
                    out(&serde_json::to_string(&ev)?);
                } else {
                    out(&render_event(&ev));
                }
            }
            Ok(None) => return Ok(StreamEnd::DaemonStopped),
            Err(e) => return Ok(StreamEnd::ConnectionLost(e.to_string())),
        }
    }
}

/// `zag-resumed history`: every incident in the stores, oldest first,
/// those active at or after `since` only when given.
pub fn history(
    paths: &Paths,
    json: bool,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let mut all = read_history(&paths.zag_home);
    // A tombstone whose schedule is not in the store (zag cancelled an id
    // it never scheduled here) tells nothing about an incident.
    all.retain(|h| h.when.is_some());
    if let Some(since) = since {
        all.retain(|h| h.last_activity().is_some_and(|t| t >= since));
    }
    Ok(if json {
        pretty(&all)
    } else {
        let mut out = pause_note(paths, now);
        out.push_str(&render_history(&all, now));
        out
    })
}

/// The pause in force, as a line for `list` and `history` (from the pause
/// file, the truth with or without a daemon); empty when not paused.
pub fn pause_note(paths: &Paths, now: DateTime<Utc>) -> String {
    match super::pause::load(&paths.state_dir) {
        Ok(Some(p)) if p.active_at(now) => format!("{}\n", p.describe()),
        Ok(_) => String::new(),
        Err(e) => format!("{e}\n"),
    }
}
