//! `resume-now` and `retry`: a user steering one incident, through the
//! store, so the request is durable, visible to `zag usage list`, and
//! delivered by the normal path with all its checks (tombstones, zag's own
//! scheduler, "moved on", live owners) whether or not a daemon runs now.
//!
//! - `resume-now <id>` appends the pending incident's `schedule` again with
//!   `when` set to now (zag's rule: the last schedule of an id wins). A
//!   running daemon sees the store change and re-arms the incident's timer,
//!   which fires at once; without a daemon, the next start delivers it.
//! - `retry <id>` gives a failed, skipped or needs-you incident (the user
//!   has added credits, raised a cap) one more delivery: a
//!   new incident (a tombstoned id is hidden for good, so it needs a fresh
//!   one) with the same session facts, chained to the failed one, due now.
//!   A cancelled incident is restored the same way, due when it was due (or
//!   now, if that has passed): the undo of a `cancel`. `--force` marks the
//!   new incident `force`: its delivery skips the "moved on" check, once.
//!   It is refused while the session already has a pending resume: one
//!   pending-or-running resume per session.
//! - `message <id> TEXT` (and `resume-now --message`) appends the pending
//!   incident's `schedule` again with `message` set to the user's text and
//!   `custom_message`: zag reads the same `message` key, and the last
//!   schedule wins. The text is checked as the daemon checks a message
//!   before typing or passing it (no control characters, not empty).
//!
//! The records carry `requested` (`"resume-now"` / `"retry"` / `"message"`,
//! and for a retry `retry_of`), keys zag ignores, so `history` can tell them
//! apart.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::history::{find, read_history, resolve_pending, short_id, IdError, State};
use super::PendingView;
use crate::store::dedupe::index_keys;
use crate::store::{discover_stores, Record, Schedule};

/// Why a steering request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("{short} is zag's own resume (its relay or exec loop delivers it); zag-resumed steers only its own incidents")]
    NotOurs { short: String },
    #[error("{short} is still pending: use `zag-resumed resume-now {short}` to deliver it now")]
    StillPending { short: String },
    #[error("{short} was {state}: only a failed or skipped incident (or a cancelled one, to undo the cancel) can be retried")]
    NotFailed { short: String, state: &'static str },
    #[error("message refused: {0}")]
    BadMessage(&'static str),
    #[error("the session of {short} already has a pending resume ({pending}): use `zag-resumed resume-now {pending}`")]
    SessionPending { short: String, pending: String },
    #[error("the schedule of {short} is no longer in its store (compacted away?)")]
    Gone { short: String },
    #[error("cannot append to {}: {source}", path.display())]
    Append {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Steered {
    /// The incident that will be delivered (for a retry, the new one).
    pub view: PendingView,
    /// For a retry, the failed incident it retries.
    pub retry_of: Option<String>,
}

/// The longest message accepted, in bytes: it must fit, with its JSON
/// envelope, in one atomic write to a zag relay's FIFO (4096 bytes).
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// Check a user's message as the delivery would: typed into a TUI (where a
/// control character such as a newline would submit early or do worse) or
/// passed as one argument. `Ok` is the text as it will be sent.
pub fn check_message(text: &str) -> Result<&str, SteerError> {
    if text.trim().is_empty() {
        return Err(SteerError::BadMessage("it is empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(SteerError::BadMessage(
            "it contains control characters (a newline would send it early in a TUI); give it on one line",
        ));
    }
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(SteerError::BadMessage(
            "it is longer than 2048 bytes (a zag relay takes one 4096-byte write)",
        ));
    }
    if text.trim() == "-" {
        return Err(SteerError::BadMessage(
            "\"-\" alone would be read as \"standard input\" by a CLI",
        ));
    }
    Ok(text)
}

/// Deliver a pending incident now (see the module docs), with the user's
/// own message when `message` is given.
pub fn resume_now(
    zag_home: &Path,
    prefix: &str,
    message: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Steered, SteerError> {
    let message = message.map(check_message).transpose()?;
    reschedule_pending(zag_home, prefix, now, |s| {
        s.when = now;
        if let Some(m) = message {
            s.message = m.to_string();
            s.custom_message = Some(true);
        }
        "resume-now"
    })
}

/// Set what a pending incident sends at its resume (see the module docs).
pub fn set_message(
    zag_home: &Path,
    prefix: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Result<Steered, SteerError> {
    let message = check_message(message)?;
    reschedule_pending(zag_home, prefix, now, |s| {
        s.message = message.to_string();
        s.custom_message = Some(true);
        "message"
    })
}

/// Append a pending incident's `schedule` again, changed by `change`
/// (which returns what was requested, for `requested`).
fn reschedule_pending(
    zag_home: &Path,
    prefix: &str,
    now: DateTime<Utc>,
    change: impl FnOnce(&mut Schedule) -> &'static str,
) -> Result<Steered, SteerError> {
    let id = resolve_pending(zag_home, prefix)?;
    for store in discover_stores(zag_home) {
        let Ok(replay) = store.load() else { continue };
        let Some(s) = replay.pending.get(&id) else {
            continue;
        };
        if !s.is_ours() {
            return Err(SteerError::NotOurs {
                short: short_id(&id).to_string(),
            });
        }
        let mut again = (**s).clone();
        let requested = change(&mut again);
        append(
            &store.path,
            &again,
            &[("requested", requested.into()), ("at", stamp(now).into())],
        )?;
        return Ok(Steered {
            view: PendingView::of(&again, &store.path),
            retry_of: None,
        });
    }
    Err(SteerError::Gone {
        short: short_id(&id).to_string(),
    })
}

/// Retry a failed or skipped incident once more, or restore a cancelled
/// one; `force` skips the "moved on" check of that one delivery (see the
/// module docs).
pub fn retry(
    zag_home: &Path,
    prefix: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Steered, SteerError> {
    let all = read_history(zag_home);
    let h = find(&all, prefix, zag_home)?;
    let short = h.short_id.clone();
    let restore = h.state == State::Cancelled;
    match h.state {
        State::Failed | State::Skipped | State::NeedsUser | State::Cancelled => {}
        State::Pending => return Err(SteerError::StillPending { short }),
        other => {
            return Err(SteerError::NotFailed {
                short,
                state: other.as_str(),
            })
        }
    }
    let store_path = PathBuf::from(&h.store);
    let store = crate::store::StoreFile::new(&store_path);
    let replay = store.load().map_err(|source| SteerError::Append {
        path: store_path.clone(),
        source,
    })?;
    let Some(failed) = replay.scheduled.get(&h.incident_id) else {
        return Err(SteerError::Gone { short });
    };
    if !failed.is_ours() {
        return Err(SteerError::NotOurs { short });
    }
    if let Some(pending) = replay.pending.values().find(|p| {
        let keys: Vec<&str> = index_keys(failed).collect();
        index_keys(p).any(|k| keys.contains(&k))
    }) {
        return Err(SteerError::SessionPending {
            short,
            pending: short_id(&pending.incident_id).to_string(),
        });
    }
    let mut retried = retry_of(failed, now);
    if restore {
        // The undo of a cancel: due when it was due, unless that has passed.
        retried.when = failed.when.max(now);
    }
    retried.force = force.then_some(true);
    append(
        &store_path,
        &retried,
        &[
            ("requested", "retry".into()),
            ("retry_of", failed.incident_id.clone().into()),
            ("at", stamp(now).into()),
        ],
    )?;
    Ok(Steered {
        view: PendingView::of(&retried, &store_path),
        retry_of: Some(failed.incident_id.clone()),
    })
}

/// The new incident a retry schedules (pure): the failed one's session
/// facts and attempt, a fresh id, chained to it, due now.
pub fn retry_of(failed: &Schedule, now: DateTime<Utc>) -> Schedule {
    let mut s = failed.clone();
    s.incident_id = uuid::Uuid::new_v4().hyphenated().to_string();
    s.chain_id = Some(
        failed
            .chain_id
            .clone()
            .unwrap_or_else(|| failed.incident_id.clone()),
    );
    s.when = now;
    // Retrying a limit no wait lifts says the user has done what it needed
    // (added credits, raised the cap): this one is delivered.
    s.needs_user = None;
    s.force = None;
    s
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn append(
    path: &Path,
    s: &Schedule,
    extra: &[(&str, serde_json::Value)],
) -> Result<(), SteerError> {
    crate::store::StoreFile::new(path)
        .append_with(&Record::Schedule(s.clone()), extra)
        .map_err(|source| SteerError::Append {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_a_new_incident_of_the_same_session_chained_and_due_now() {
        let failed = Schedule {
            incident_id: "6f01aaaa-0000-4000-8000-000000000001".into(),
            session_id: "s".into(),
            provider: "claude".into(),
            attempt: 2,
            chain_id: Some("first".into()),
            provider_session_id: Some("claude-1".into()),
            cwd: Some("/repo".into()),
            ..Default::default()
        };
        let now: DateTime<Utc> = "2030-01-01T08:00:00Z".parse().unwrap();
        let r = retry_of(&failed, now);
        assert_ne!(r.incident_id, failed.incident_id);
        assert_eq!(r.incident_id.len(), 36);
        assert_eq!(r.chain_id.as_deref(), Some("first"));
        assert_eq!(r.when, now);
        assert_eq!(r.attempt, 2);
        assert_eq!(r.provider_session_id.as_deref(), Some("claude-1"));
        assert_eq!(r.cwd.as_deref(), Some("/repo"));
        let unchained = Schedule {
            chain_id: None,
            ..failed.clone()
        };
        assert_eq!(
            retry_of(&unchained, now).chain_id.as_deref(),
            Some(failed.incident_id.as_str())
        );
        // A limit no wait lifts, retried once the user acted: delivered.
        let needed = Schedule {
            needs_user: Some("credits".into()),
            ..failed.clone()
        };
        assert_eq!(retry_of(&needed, now).needs_user, None);
    }
}
