//! A store that cannot be written is retried when its directory changes,
//! not only on the backoff's timer.
//!
//! While a store is in outage a notify watch sits on its directory, or on
//! the nearest directory above it that exists when it was deleted. Any
//! change there (a file removed or truncated, space or inodes given back,
//! the directory made again or its mode changed) wakes the store's pending
//! retries after a short settle, so a record lands within a fraction of a
//! second of the store becoming writable instead of up to a backoff later.
//! The backoff stays the fallback for what no event shows: space freed on
//! another directory of the file system, a remount read-write. The
//! daemon's own claim files ([`crate::store::CLAIM_PREFIX`]) and mere
//! reads are not changes. The watch, its settle and every file-system call
//! it makes run off the core's loop: a hung disk stalls only this task.
//! A retry listens from when it is planned, so a change settled while the
//! try before it was still failing (a try slower than the settle) is left
//! to the backoff; a busy directory wakes the retries at most about once
//! per settle.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long after the first change the retries are woken: a burst of
/// events (an `rm -r`, a file rewritten) wakes them once, at its end.
pub const SETTLE: Duration = Duration::from_millis(50);

/// The watch on one store's directory while the store cannot be written.
/// Dropping it stops the watch and wakes the retries still waiting on it
/// (the outage is over: the store took a record).
pub struct OutageWatch {
    /// The number of wakes so far; a waiting retry waits for it to change.
    wakes: watch::Receiver<u64>,
    task: tokio::task::AbortHandle,
}

impl OutageWatch {
    /// Start watching for `store` (on the core's runtime).
    pub fn start(store: &Path) -> OutageWatch {
        let (tx, wakes) = watch::channel(0);
        let task = tokio::spawn(run(store.to_path_buf(), tx)).abort_handle();
        OutageWatch { wakes, task }
    }

    /// What a retry waits on besides its backoff: see [`Wake::woken`].
    pub fn wake(&self) -> Wake {
        let mut wakes = self.wakes.clone();
        wakes.borrow_and_update();
        Wake(wakes)
    }
}

impl Drop for OutageWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A retry's wake-up call.
pub struct Wake(watch::Receiver<u64>);

impl Wake {
    /// Returns at the first change of the store's directory after the
    /// retry was planned (settled), or once the outage is over.
    pub async fn woken(mut self) {
        // An error is the watch dropped: the outage ended.
        let _ = self.0.changed().await;
    }
}

/// The watch's task: (re)place the watch, wait for a change, settle, wake.
async fn run(store: PathBuf, wakes: watch::Sender<u64>) {
    let (tx, mut changes) = mpsc::unbounded_channel();
    let callback = move |res: notify::Result<notify::Event>| {
        if res.as_ref().map_or(true, is_change) {
            let _ = tx.send(());
        }
    };
    let mut watching = match tokio::task::spawn_blocking(move || {
        use notify::Watcher as _;
        notify::RecommendedWatcher::new(callback, notify::Config::default())
            .map(|w| Placed::new(w, &store))
    })
    .await
    {
        Ok(Ok(placed)) => placed,
        Ok(Err(e)) => {
            tracing::warn!(
                "cannot watch for the store becoming writable: {e}; retrying on the backoff only"
            );
            return std::future::pending().await;
        }
        Err(_) => return std::future::pending().await,
    };
    while changes.recv().await.is_some() {
        tokio::time::sleep(SETTLE).await;
        while changes.try_recv().is_ok() {}
        wakes.send_modify(|n| *n += 1);
        // The change may have been the directory deleted or made again.
        watching = match tokio::task::spawn_blocking(move || watching.replace()).await {
            Ok(placed) => placed,
            Err(_) => return std::future::pending().await,
        };
    }
}

/// A watcher and the directory it watches for a store.
struct Placed {
    watcher: notify::RecommendedWatcher,
    store: PathBuf,
    dir: Option<PathBuf>,
}

impl Placed {
    fn new(watcher: notify::RecommendedWatcher, store: &Path) -> Placed {
        Placed {
            watcher,
            store: store.to_path_buf(),
            dir: None,
        }
        .replace()
    }

    /// Watch the nearest existing directory of the store's, if that is
    /// another than the one watched.
    fn replace(mut self) -> Placed {
        use notify::Watcher as _;
        let target = nearest_existing_dir(&self.store);
        if target == self.dir {
            return self;
        }
        if let Some(old) = self.dir.take() {
            // Gone already if it was deleted.
            let _ = self.watcher.unwatch(&old);
        }
        if let Some(dir) = target {
            match self
                .watcher
                .watch(&dir, notify::RecursiveMode::NonRecursive)
            {
                Ok(()) => {
                    tracing::debug!(store = %self.store.display(), dir = %dir.display(), "watching for the store becoming writable");
                    self.dir = Some(dir);
                }
                Err(e) => tracing::warn!(
                    "{}; the store is retried on the backoff only",
                    crate::watch::explain_watch_error(&dir, &e)
                ),
            }
        }
        self
    }
}

/// The store's directory, or the nearest one above it that exists.
fn nearest_existing_dir(store: &Path) -> Option<PathBuf> {
    store
        .ancestors()
        .skip(1)
        .find(|d| d.is_dir())
        .map(Path::to_path_buf)
}

/// Whether an event may have made a store writable: anything but a read
/// (an open, a close, an access) and the daemon's own claim files.
fn is_change(event: &notify::Event) -> bool {
    if matches!(event.kind, notify::EventKind::Access(_)) {
        return false;
    }
    let claim = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(crate::store::CLAIM_PREFIX))
    };
    event.paths.is_empty() || !event.paths.iter().all(claim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, EventKind, ModifyKind, RemoveKind};

    fn ev(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(kind);
        e.paths = paths.iter().map(PathBuf::from).collect();
        e
    }

    #[test]
    fn reads_and_the_daemons_own_claim_files_are_not_changes() {
        let claim = "/z/p/.zag-resumed-claim-12-3";
        let store = "/z/p/scheduled_resumes.jsonl";
        assert!(!is_change(&ev(
            EventKind::Create(CreateKind::File),
            &[claim]
        )));
        assert!(!is_change(&ev(
            EventKind::Remove(RemoveKind::File),
            &[claim]
        )));
        assert!(!is_change(&ev(
            EventKind::Access(AccessKind::Any),
            &[store]
        )));
        assert!(is_change(&ev(
            EventKind::Remove(RemoveKind::File),
            &["/z/p/fill"]
        )));
        assert!(is_change(&ev(
            EventKind::Modify(ModifyKind::Any),
            &["/z/p"]
        )));
        assert!(is_change(&ev(
            EventKind::Create(CreateKind::Folder),
            &["/z/p"]
        )));
        assert!(is_change(&ev(EventKind::Any, &[])), "a rescan");
        assert!(is_change(&ev(
            EventKind::Modify(ModifyKind::Any),
            &[claim, "/z/p/x"]
        )));
    }

    #[test]
    fn a_deleted_directory_is_watched_through_its_nearest_parent() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("projects/p/scheduled_resumes.jsonl");
        assert_eq!(nearest_existing_dir(&store), Some(dir.path().to_path_buf()));
        std::fs::create_dir_all(store.parent().unwrap()).unwrap();
        assert_eq!(
            nearest_existing_dir(&store),
            Some(store.parent().unwrap().to_path_buf())
        );
    }

    #[tokio::test]
    async fn a_change_in_the_directory_wakes_a_waiting_retry_and_the_end_of_the_outage_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("p/scheduled_resumes.jsonl");
        let watch = OutageWatch::start(&store);
        // The watch is placed off the loop: wait until it sees a change.
        let mut n = 0;
        let woke = loop {
            let wake = watch.wake();
            std::fs::write(dir.path().join(format!("f{n}")), "").unwrap();
            n += 1;
            if let Ok(()) = tokio::time::timeout(Duration::from_millis(500), wake.woken()).await {
                break true;
            }
            if n == 20 {
                break false;
            }
        };
        assert!(
            woke,
            "no wake after a file was made in the watched directory"
        );
        // Let the last events of those writes settle, then: a claim file
        // is not a change.
        tokio::time::sleep(SETTLE * 4).await;
        let wake = watch.wake();
        let claim = dir
            .path()
            .join(format!("{}1-1", crate::store::CLAIM_PREFIX));
        std::fs::write(&claim, "").unwrap();
        std::fs::remove_file(&claim).unwrap();
        let waited = tokio::time::timeout(SETTLE * 6, wake.woken()).await;
        assert!(waited.is_err(), "woken by the daemon's own claim file");
        // The outage over: every waiting retry goes at once.
        let wake = watch.wake();
        drop(watch);
        tokio::time::timeout(Duration::from_secs(5), wake.woken())
            .await
            .expect("woken when the watch is dropped");
    }
}
