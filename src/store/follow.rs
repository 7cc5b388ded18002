//! Live following of a store: what others appended since we last looked.
//!
//! The daemon calls [`StoreFollower::refresh`] when the watcher reports the
//! store changed, then disarms every id the returned records tombstone: that
//! is how a `zag usage cancel` (which notifies nobody) stops a live timer.
//!
//! Position is tracked by device, inode and byte offset. An append is read
//! from the saved offset (complete lines only; a partial last line waits for
//! the next call). A different inode or a shorter file means the store was
//! rewritten (a compaction, ours or anyone's): it is re-read whole and the
//! records returned are those that change the replay (new or changed
//! schedules, new tombstones), so a compaction that merely drops dead lines
//! returns nothing.

use std::io;
use std::os::unix::fs::MetadataExt;

use super::{Replay, ReplayChange, StoreFile};

/// Follows one store file.
#[derive(Debug)]
pub struct StoreFollower {
    store: StoreFile,
    replay: Replay,
    /// (dev, ino) of the file `replay` was read from.
    identity: Option<(u64, u64)>,
}

impl StoreFollower {
    /// A follower that has read nothing yet: the first `refresh` returns
    /// every record in the file.
    pub fn new(store: StoreFile) -> Self {
        StoreFollower {
            store,
            replay: Replay::default(),
            identity: None,
        }
    }

    pub fn store(&self) -> &StoreFile {
        &self.store
    }

    /// The replayed state as of the last `refresh`.
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// What changed since the last call: records appended, in file order;
    /// after a rewrite (or on the first read), the schedules and tombstones
    /// that differ from what was known. Schedules come as the replay's own
    /// shared copies: nothing is deep-copied.
    pub fn refresh(&mut self) -> io::Result<Vec<ReplayChange>> {
        let f = match std::fs::File::open(&self.store.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Deleted: nothing to report; a new file starts from zero.
                self.identity = None;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let meta = f.metadata()?;
        let id = (meta.dev(), meta.ino());
        if self.identity == Some(id) && meta.len() >= self.replay.consumed {
            return super::load::follow(&mut self.replay, &f, meta.len());
        }
        // First read, or the file was replaced or truncated.
        let fresh = super::load::replay_from(&f, meta.len())?;
        let old = std::mem::replace(&mut self.replay, fresh);
        self.identity = Some(id);
        let new = &self.replay;
        let mut changes: Vec<ReplayChange> = if old.scheduled.is_empty() {
            new.pending
                .values()
                .cloned()
                .map(ReplayChange::Scheduled)
                .collect()
        } else {
            new.pending
                .iter()
                .filter(|(id, s)| old.scheduled.get(*id) != Some(*s))
                .map(|(_, s)| ReplayChange::Scheduled(s.clone()))
                .collect()
        };
        let mut tombs: Vec<&String> = new.tombstoned.difference(&old.tombstoned).collect();
        tombs.sort();
        changes.extend(
            tombs
                .into_iter()
                .map(|t| ReplayChange::Tombstoned(t.clone())),
        );
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::compact::{compact, CompactOptions};
    use crate::store::Record;
    use chrono::{TimeZone, Utc};
    use std::io::Write;
    use std::sync::Arc;

    fn sched(id: &str) -> Record {
        let line = format!(
            r#"{{"action":"schedule","incident_id":"{id}","session_id":"s","provider":"claude","when":"2030-01-01T08:00:00Z","message":"Continue","attempt":1,"log_path":""}}"#
        );
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn follows_appends_partial_lines_and_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreFile::new(dir.path().join("scheduled_resumes.jsonl"));
        let mut f = StoreFollower::new(store.clone());
        assert!(f.refresh().unwrap().is_empty(), "missing file is empty");
        store.append(&sched("a")).unwrap();
        store.append(&sched("b")).unwrap();
        assert_eq!(f.refresh().unwrap().len(), 2);
        assert!(f.refresh().unwrap().is_empty());

        // `zag usage cancel` from another process, written in two pieces.
        let line = Record::Cancel {
            incident_id: "a".into(),
        }
        .to_line();
        let mut raw = std::fs::OpenOptions::new()
            .append(true)
            .open(&store.path)
            .unwrap();
        raw.write_all(&line.as_bytes()[..10]).unwrap();
        assert!(f.refresh().unwrap().is_empty(), "partial line waits");
        raw.write_all(&line.as_bytes()[10..]).unwrap();
        let got = f.refresh().unwrap();
        assert_eq!(got, vec![ReplayChange::Tombstoned("a".into())]);
        assert!(!f.replay().pending.contains_key("a"));

        // Compaction (a new inode) reports nothing new...
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        compact(&store, &CompactOptions::new(now)).unwrap();
        assert!(f.refresh().unwrap().is_empty());
        // ...and appends after it are followed on the new inode.
        store
            .append(&Record::Cancel {
                incident_id: "b".into(),
            })
            .unwrap();
        assert_eq!(f.refresh().unwrap().len(), 1);
        assert!(f.replay().pending.is_empty());

        // A rewrite by someone else that also adds records reports only those.
        let mut text = std::fs::read(&store.path).unwrap();
        text.extend_from_slice(sched("c").to_line().as_bytes());
        let tmp = dir.path().join("x");
        std::fs::write(&tmp, &text).unwrap();
        std::fs::rename(&tmp, &store.path).unwrap();
        let Record::Schedule(c) = sched("c") else {
            unreachable!()
        };
        assert_eq!(
            f.refresh().unwrap(),
            vec![ReplayChange::Scheduled(Arc::new(c))]
        );
    }
}
