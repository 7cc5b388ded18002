//! What happened to an incident, as the daemon streams it to subscribers,
//! keeps for `status` and shows on the desktop.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Something that happened to an incident; streamed to subscribers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum IncidentEvent {
    /// A store cannot be written (a full disk, a read-only remount, its
    /// directory gone): sent once per outage. `incident_id` is empty.
    StoreUnwritable {
        #[serde(default)]
        incident_id: String,
        store: String,
        error: String,
        at: DateTime<Utc>,
    },
    Hit {
        incident_id: String,
        provider: String,
        session_id: String,
        scope: String,
        reset_at: Option<DateTime<Utc>>,
        file: String,
        at: DateTime<Utc>,
        /// Set when no wait lifts this limit (`credits`, `spend_cap`,
        /// `billing`, `no_quota`): a [`IncidentEvent::NeedsUser`] follows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        needs_user: Option<String>,
    },
    Scheduled {
        incident_id: String,
        provider: String,
        session_id: String,
        when: DateTime<Utc>,
        attempt: u32,
        store: String,
        at: DateTime<Utc>,
    },
    Resumed {
        incident_id: String,
        provider: String,
        session_id: String,
        detail: String,
        /// The permission mode it was resumed in (absent: none recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        permission_mode: Option<String>,
        at: DateTime<Utc>,
    },
    Failed {
        incident_id: String,
        provider: String,
        session_id: String,
        reason: String,
        at: DateTime<Utc>,
    },
    Skipped {
        incident_id: String,
        provider: String,
        session_id: String,
        reason: String,
        at: DateTime<Utc>,
    },
    Cancelled {
        incident_id: String,
        at: DateTime<Utc>,
    },
    /// A limit no wait lifts (credits, a spend cap, billing): recorded
    /// without a resume; `what` says what the user must do.
    NeedsUser {
        incident_id: String,
        provider: String,
        session_id: String,
        what: String,
        at: DateTime<Utc>,
    },
    /// Who will continue an incident was decided (or changed) without
    /// ending it: standing down for Claude Code's own continue, waiting for
    /// the session's owner to exit, retrying a busy writer.
    Routed {
        incident_id: String,
        provider: String,
        session_id: String,
        continued_by: String,
        why: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recheck_at: Option<DateTime<Utc>>,
        /// The user was told on the desktop (once per incident).
        #[serde(default)]
        notify: bool,
        at: DateTime<Utc>,
    },
}
