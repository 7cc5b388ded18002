//! The client side of the CLI: `status`, `list`, `cancel`, `reload`, `stop`
//! and `subscribe`, each one short connection to the daemon.
//!
//! `list` and `cancel` fall back to the stores when no daemon runs
//! ([`super::offline`]); `ensure` lives in [`super::ensure`]; the text they
//! print comes from [`super::render`].

use std::time::{Duration, Instant};

use super::client::{Client, ClientError};
use super::offline::{cancel_in_stores, pending_from_stores};
use super::protocol::{Op, Request};
use super::render::{pretty, render_event, render_list, render_status, short_session};
use super::{PendingView, StatusSnapshot};
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
        Err(e) if e.is_not_running() => cancel_in_stores(&paths.zag_home, incident_id)?,
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
