//! What `list` and `cancel` do when no daemon runs: read the stores and
//! append a `cancel` directly, exactly as `zag usage` does, so the commands
//! work whether or not the daemon is up. The views and their order are the
//! daemon's own ([`PendingView::of`], [`PendingView::by_wake_time`]), and an
//! id is resolved as the daemon path resolves it ([`resolve_pending`]).

use std::path::{Path, PathBuf};

use chrono::Utc;

use super::history::{annotations, resolve_pending, IdError};
use super::PendingView;
use crate::store::{discover_stores, Record};

/// Why a cancel without the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// The id or prefix names no pending incident (the same text the
    /// daemon path gives: both resolve through [`resolve_pending`]).
    #[error(transparent)]
    Id(#[from] IdError),
    /// Resolved, but gone from every store by the time we looked again.
    #[error("no pending incident {incident_id} in any store under {}", zag_home.display())]
    NotPending {
        incident_id: String,
        zag_home: PathBuf,
    },
    #[error("cannot append to {}: {source}", path.display())]
    Append {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Every pending record of every store under a zag home, sorted by wake time.
/// Unreadable stores are skipped with a warning.
pub fn pending_from_stores(zag_home: &Path) -> Vec<PendingView> {
    let mut out = Vec::new();
    for store in discover_stores(zag_home) {
        match store.load() {
            Ok(replay) => out.extend(
                replay
                    .pending
                    .values()
                    .map(|s| PendingView::of(s, &store.path)),
            ),
            Err(e) => tracing::warn!(store = %store.path.display(), "cannot read store: {e}"),
        }
    }
    PendingView::sort(&mut out);
    out
}

/// Cancel a pending incident, named by its id or a unique prefix, by
/// appending a `cancel` record to the store that holds it, as `zag usage
/// cancel` does (plus the `at` and `detail` keys zag ignores).
pub fn cancel_in_stores(
    zag_home: &Path,
    prefix: &str,
    now: chrono::DateTime<Utc>,
) -> Result<PendingView, CancelError> {
    let incident_id = resolve_pending(zag_home, prefix)?;
    for store in discover_stores(zag_home) {
        let Ok(replay) = store.load() else { continue };
        if let Some(s) = replay.pending.get(&incident_id) {
            let view = PendingView::of(s, &store.path);
            let rec = Record::Cancel {
                incident_id: incident_id.clone(),
            };
            store
                .append_with(&rec, &annotations(now, Some(CANCELLED_WITHOUT_DAEMON)))
                .map_err(|source| CancelError::Append {
                    path: store.path.clone(),
                    source,
                })?;
            return Ok(view);
        }
    }
    Err(CancelError::NotPending {
        incident_id,
        zag_home: zag_home.to_path_buf(),
    })
}

/// The `detail` of a `cancel` written here.
pub const CANCELLED_WITHOUT_DAEMON: &str = "cancelled with zag-resumed cancel (no daemon running)";

/// The `detail` of a `cancel` the daemon writes on request.
pub const CANCELLED_BY_DAEMON: &str = "cancelled with zag-resumed cancel";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Schedule, StoreFile};
    use chrono::DateTime;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
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
        global
            .append(&mk("late-one", "2030-01-02T00:00:00Z"))
            .unwrap();
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
        assert_eq!(ids, ["early", "late-one"]);
        // Three characters are too few to name an incident, even a unique one.
        assert!(cancel_in_stores(home, "lat", Utc::now())
            .unwrap_err()
            .to_string()
            .contains("too short"));
        let v = cancel_in_stores(home, "late", Utc::now()).unwrap();
        assert_eq!(v.store, global.path.display().to_string());
        assert!(global.load().unwrap().tombstoned.contains("late-one"));
        assert!(cancel_in_stores(home, "late-one", Utc::now())
            .unwrap_err()
            .to_string()
            .contains("no pending incident"));
        assert_eq!(pending_from_stores(home).len(), 1);
    }
}
