//! The daemon's control surface: what the daemon answers, and (in the
//! submodules) the Unix-socket protocol, server and client that carry it.
//!
//! The daemon core owns its state; the socket server never touches it. It
//! turns each request into a [`DaemonRequest`] sent over a channel and waits
//! for the answer on a oneshot, so one task owns every piece of state.

pub mod bind;
pub mod client;
pub mod commands;
pub mod ensure;
pub mod history;
pub mod offline;
pub mod pause;
pub mod protocol;
pub mod render;
pub mod server;
pub mod steer;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::sync::{broadcast, oneshot};

pub use crate::shared::IncidentEvent;

/// A pending resume as shown by `list` and `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingView {
    pub incident_id: String,
    pub provider: String,
    pub session_id: String,
    pub when: DateTime<Utc>,
    pub attempt: u32,
    /// The store file the record lives in.
    pub store: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// `zag-resumed`, or absent for zag's own records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Who will continue it (the daemon by respawn, the daemon into pane
    /// X, Claude Code's own continue, zag, waiting for the owner to exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_by: Option<String>,
    /// Why [`Self::continued_by`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_by_why: Option<String>,
    /// The permission mode in force when the limit was met, which the
    /// resume runs in (absent: none recorded, the provider's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// The user's own message for this incident (`zag-resumed message`),
    /// absent when it sends the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `retry --force`: delivered even if the session moved on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

impl PendingView {
    /// The view of a store record.
    pub fn of(s: &crate::store::Schedule, store: &std::path::Path) -> Self {
        PendingView {
            incident_id: s.incident_id.clone(),
            provider: s.provider.clone(),
            session_id: s.session_id.clone(),
            when: s.when,
            attempt: s.attempt,
            store: store.display().to_string(),
            scope: s.scope.clone(),
            cwd: s.cwd.clone(),
            origin: s.origin.clone(),
            continued_by: None,
            continued_by_why: None,
            permission_mode: s.permission_mode.clone(),
            message: s.has_custom_message().then(|| s.message.clone()),
            force: s.is_forced(),
        }
    }

    /// The order `list` and `status` show pending resumes in: by wake time,
    /// ties by incident id (as `zag usage list` sorts).
    pub fn by_wake_time(a: &Self, b: &Self) -> std::cmp::Ordering {
        a.when
            .cmp(&b.when)
            .then_with(|| a.incident_id.cmp(&b.incident_id))
    }

    /// Sort views by [`PendingView::by_wake_time`].
    pub fn sort(views: &mut [Self]) {
        views.sort_by(Self::by_wake_time);
    }
}

/// What `status` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub pid: u32,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// Files currently tailed, per source kind.
    pub watched: BTreeMap<String, usize>,
    pub pending: Vec<PendingView>,
    /// The last few resumes, failures and skips, newest last.
    pub recent: Vec<IncidentEvent>,
    /// The user's pause, while one is in force: due resumes wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<pause::PauseState>,
    /// `run --dry-run`: the daemon decides and logs, and does nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Stores that cannot be written right now, and what waits on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unwritable: Vec<StoreOutage>,
}

/// A store the daemon cannot write: its records wait (hits unacknowledged,
/// resumes armed from memory but not delivered) and are retried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreOutage {
    pub store: String,
    /// When the first write failed.
    pub since: DateTime<Utc>,
    /// The last write's OS error.
    pub error: String,
    /// Records waiting to be written to it.
    pub waiting: usize,
}

/// A provider CLI as the daemon would run it (`scan --plan` asks for these,
/// so its preview uses the daemon's PATH and `[binaries]`, not the shell's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryView {
    pub provider: String,
    /// The absolute path, when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why not, when not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A request to the daemon core; the answer comes back on the oneshot.
#[derive(Debug)]
pub enum DaemonRequest {
    Status(oneshot::Sender<StatusSnapshot>),
    List(oneshot::Sender<Vec<PendingView>>),
    /// Cancel a pending incident: tombstone it durably, disarm its timer.
    Cancel {
        incident_id: String,
        reply: oneshot::Sender<Result<PendingView, String>>,
    },
    /// Re-read configuration; the answer says what changed, or why the
    /// new file was refused (the old configuration stays).
    Reload(oneshot::Sender<Result<String, crate::config::ConfigError>>),
    /// Graceful stop.
    Stop(oneshot::Sender<()>),
    /// Pause deliveries (until a time, or until `Unpause`): the daemon
    /// writes the pause file and holds what falls due.
    Pause {
        until: Option<DateTime<Utc>>,
        reply: oneshot::Sender<Result<pause::PauseState, String>>,
    },
    /// End a pause: held resumes go out with the usual stagger. The answer
    /// is how many were held.
    Unpause(oneshot::Sender<Result<usize, String>>),
    /// The provider CLIs as the daemon resolves them.
    Binaries(oneshot::Sender<Vec<BinaryView>>),
    Subscribe(oneshot::Sender<broadcast::Receiver<IncidentEvent>>),
}
