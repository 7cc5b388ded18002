//! What `list` and `cancel` do when no daemon runs: read the stores and
//! append a `cancel` directly, exactly as `zag usage` does, so the commands
//! work whether or not the daemon is up. The views and their order are the
//! daemon's own ([`PendingView::of`], [`PendingView::by_wake_time`]).

use std::path::{Path, PathBuf};

use super::PendingView;
use crate::store::{discover_stores, Record};

/// Why a cancel without the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
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

/// Cancel a pending incident by appending a `cancel` record to the store
/// that holds it, as `zag usage cancel` does.
pub fn cancel_in_stores(zag_home: &Path, incident_id: &str) -> Result<PendingView, CancelError> {
    for store in discover_stores(zag_home) {
        let Ok(replay) = store.load() else { continue };
        if let Some(s) = replay.pending.get(incident_id) {
            let view = PendingView::of(s, &store.path);
            store
                .append(&Record::Cancel {
                    incident_id: incident_id.to_string(),
                })
                .map_err(|source| CancelError::Append {
                    path: store.path.clone(),
                    source,
                })?;
            return Ok(view);
        }
    }
    Err(CancelError::NotPending {
        incident_id: incident_id.to_string(),
        zag_home: zag_home.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Schedule, StoreFile};
    use chrono::{DateTime, Utc};

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
            .to_string()
            .contains("no pending incident"));
        assert_eq!(pending_from_stores(home).len(), 1);
    }
}
