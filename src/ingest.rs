//! The ingest stage: watch → tail → session identity → detect, on one thread.
//!
//! One blocking thread owns the notify watcher, every [`TailedFile`], every
//! [`SessionTracker`] and the offset checkpoints: file reading never stalls
//! the async core, and no state is shared. Each detection goes to the core as
//! a [`LimitSighting`] and the thread waits for the core's ack, which comes only once
//! the incident is durable in a store; checkpoints are saved after that, so an
//! offset on disk never runs ahead of the incidents found before it.
//!
//! Idle means blocked in `recv()`: no timer, no polling. Only while a
//! checkpoint is dirty does the loop wait with a timeout, to batch saves.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::detect::{Detection, Detector, LineContext, SourceKind, StreamState};
use crate::session::{SessionIdentity, SessionTracker};
use crate::tail::{Checkpoints, FileChange, TailedFile};
use crate::watch::{explain_watch_error, FsEvent, Match, Patterns, Target, Watcher};

/// How long a dirty checkpoint may wait before it is saved.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(500);
/// Identity facts are read from this much of a file's start when tailing
/// begins mid-file (the `session_started` line is the first one).
const IDENTITY_PREREAD: u64 = 256 * 1024;
/// Files created up to this long before the last save are read from byte 0
/// on restart: they may hold lines written while the daemon was down.
const RESTART_SLACK_SECS: i64 = 5;

/// A limit found in a line, waiting for the core to make it durable.
#[derive(Debug)]
pub struct LimitSighting {
    pub detection: Detection,
    pub file: PathBuf,
    pub source: SourceKind,
    /// 1-based line number within what this daemon read (for messages).
    pub line_no: u64,
    pub identity: SessionIdentity,
    /// Send once the incident is durable (or deliberately ignored).
    pub ack: oneshot::Sender<()>,
}

/// What ingest tells the core.
#[derive(Debug)]
pub enum IngestEvent {
    Hit(Box<LimitSighting>),
    /// A store file changed on disk (a cancel, zag's own schedule, ours).
    StoreChanged(PathBuf),
    /// A `zag.toml` changed: drop cached limits for its project.
    ConfigChanged(PathBuf),
    /// The initial scan is done: every source is watched.
    Ready,
}

/// Chooses the detector for a file (extra patterns come per project).
pub trait DetectorSource: Send + 'static {
    /// `identity` is what the file has told about its session so far
    /// (its cwd decides the project of a provider's own session file).
    fn detector_for(
        &mut self,
        file: &Path,
        source: SourceKind,
        identity: &SessionIdentity,
    ) -> Arc<Detector>;
    /// A zag.toml changed.
    fn invalidate(&mut self, zag_toml: &Path);
}

/// Counters the status command shows.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub files: [AtomicUsize; 7],
    pub dirs: AtomicUsize,
    pub lines: AtomicUsize,
    pub hits: AtomicUsize,
}

impl IngestStats {
    pub fn slot(source: SourceKind) -> usize {
        source.index()
    }

    pub const SOURCES: [SourceKind; 7] = SourceKind::ALL;
}

/// Everything the ingest thread needs.
pub struct IngestSetup {
    pub patterns: Patterns,
    pub checkpoints_path: PathBuf,
    pub max_line: usize,
    pub clock: Arc<dyn Clock>,
    pub detectors: Box<dyn DetectorSource>,
    pub stats: Arc<IngestStats>,
}

/// A running ingest thread.
pub struct Ingest {
    pub fs_tx: mpsc::Sender<FsEvent>,
    pub thread: std::thread::JoinHandle<()>,
}

impl Ingest {
    /// Ask the thread to stop and wait for it.
    pub fn stop(self) {
        let _ = self.fs_tx.send(FsEvent::Shutdown);
        let _ = self.thread.join();
    }
}

/// Start watching: sets up every watch and reads what is new (sending
/// [`IngestEvent::Ready`] when that is done), then serves file events until
/// [`Ingest::stop`]. Errors in single files are logged.
pub fn start(
    setup: IngestSetup,
    out: tokio::sync::mpsc::UnboundedSender<IngestEvent>,
) -> std::io::Result<Ingest> {
    let (fs_tx, fs_rx) = mpsc::channel();
    let watcher = Watcher::new(fs_tx.clone()).map_err(std::io::Error::other)?;
    let thread = std::thread::Builder::new()
        .name("zag-resumed-ingest".into())
        .spawn(move || {
            let mut state = State::new(setup, watcher, out);
            state.initial_scan();
            state.send(IngestEvent::Ready);
            state.serve(fs_rx);
        })?;
    Ok(Ingest { fs_tx, thread })
}

struct FileState {
    tail: TailedFile,
    tracker: SessionTracker,
    /// What earlier lines said about later ones (Codex's reset window).
    stream: StreamState,
    lines: u64,
    warned_truncated: bool,
}

struct State {
    setup: IngestSetup,
    watcher: Watcher,
    out: tokio::sync::mpsc::UnboundedSender<IngestEvent>,
    files: HashMap<PathBuf, FileState>,
    /// zag session logs by wrapper id: where a spawn log's identity lives.
    zag_logs: HashMap<String, PathBuf>,
    saved: Option<Checkpoints>,
    dirty_since: Option<Instant>,
    /// Paths already reported as unreadable (each is logged once).
    reported: HashSet<PathBuf>,
    closed: bool,
}

impl State {
    fn new(
        setup: IngestSetup,
        watcher: Watcher,
        out: tokio::sync::mpsc::UnboundedSender<IngestEvent>,
    ) -> Self {
        let saved = match Checkpoints::load(&setup.checkpoints_path) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("ignoring unreadable offsets file ({e}); tailing from the end");
                None
            }
        };
        State {
            setup,
            watcher,
            out,
            files: HashMap::new(),
            zag_logs: HashMap::new(),
            saved,
            dirty_since: None,
            reported: HashSet::new(),
            closed: false,
        }
    }

    fn initial_scan(&mut self) {
        let found = self.setup.patterns.discover();
        for anchor in self.setup.patterns.anchors() {
            if anchor.is_dir() {
                self.watch(&anchor);
            }
        }
        for d in &found.dirs {
            self.watch(d);
        }
        for (path, target) in found.files {
            self.on_file(&path, target, true);
        }
        // A first run has no saved state: write one now, so that files
        // created while the daemon is down later are recognised as new.
        self.dirty_since.get_or_insert_with(Instant::now);
        self.save_checkpoints();
    }

    fn serve(&mut self, rx: mpsc::Receiver<FsEvent>) {
        loop {
            let ev = match self.dirty_since {
                None => rx.recv().ok(),
                Some(since) => {
                    let wait = CHECKPOINT_DELAY.saturating_sub(since.elapsed());
                    match rx.recv_timeout(wait) {
                        Ok(ev) => Some(ev),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            self.save_checkpoints();
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => None,
                    }
                }
            };
            let Some(ev) = ev else { break };
            // Coalesce a burst: one read per path per batch.
            let mut batch = vec![ev];
            batch.extend(rx.try_iter());
            let mut seen = HashSet::new();
            for ev in batch {
                match ev {
                    FsEvent::Shutdown => {
                        self.dirty_since.get_or_insert_with(Instant::now);
                        self.save_checkpoints();
                        return;
                    }
                    FsEvent::Rescan => {
                        tracing::warn!(
                            "file events were dropped by the kernel; rescanning every source"
                        );
                        self.rescan();
                    }
                    FsEvent::Error(e) => tracing::warn!("watcher: {e}"),
                    FsEvent::Changed(p) => {
                        if seen.insert(p.clone()) {
                            self.on_path(&p);
                        }
                    }
                }
                if self.closed {
                    return;
                }
            }
            if self
                .dirty_since
                .is_some_and(|t| t.elapsed() >= CHECKPOINT_DELAY)
            {
                self.save_checkpoints();
            }
        }
    }

    fn rescan(&mut self) {
        let found = self.setup.patterns.discover();
        for d in &found.dirs {
            self.watch(d);
        }
        for (path, target) in found.files {
            self.on_file(&path, target, false);
        }
    }

    fn watch(&mut self, dir: &Path) {
        match self.watcher.watch_dir(dir) {
            Ok(_) => {}
            Err(e) => {
                if self.reported.insert(dir.to_path_buf()) {
                    tracing::warn!("{}", explain_watch_error(dir, &e));
                }
            }
        }
        self.setup
            .stats
            .dirs
            .store(self.watcher.watched_dirs(), Ordering::Relaxed);
    }

    fn on_path(&mut self, path: &Path) {
        match self.setup.patterns.classify(path) {
            Match::File(target) => self.on_file(path, target, false),
            Match::Dir => {
                if path.is_dir() {
                    // A new folder: watch it, then read what it already holds
                    // (files may have landed before the watch was in place).
                    let found = self.setup.patterns.discover_under(path);
                    for d in &found.dirs {
                        self.watch(d);
                    }
                    for (p, t) in found.files {
                        self.on_file(&p, t, false);
                    }
                } else {
                    self.watcher.forget_dir(path);
                }
            }
            Match::None => {}
        }
    }

    fn on_file(&mut self, path: &Path, target: Target, at_start: bool) {
        match target {
            Target::Store => self.send(IngestEvent::StoreChanged(path.to_path_buf())),
            Target::ZagConfig => {
                // This thread's detectors compile the project's
                // `extra_patterns`: drop them here as well as in the core,
                // or an edited pattern would only count after a restart.
                self.setup.detectors.invalidate(path);
                self.send(IngestEvent::ConfigChanged(path.to_path_buf()));
            }
            Target::Log(source) => self.on_log(path, source, at_start),
        }
    }

    fn send(&mut self, ev: IngestEvent) {
        if self.out.send(ev).is_err() {
            self.closed = true;
        }
    }

    /// Where to start reading a file seen for the first time.
    fn open_tail(&mut self, path: &Path, at_start: bool) -> std::io::Result<TailedFile> {
        let max = self.setup.max_line;
        let Some(saved) = &self.saved else {
            // First run ever: history is not ours to act on. Files that
            // appear after start are new and read whole.
            return if at_start {
                TailedFile::at_end(path.to_path_buf(), max)
            } else {
                Ok(TailedFile::new(path.to_path_buf(), None, max))
            };
        };
        if let Some(pos) = saved.files.get(path) {
            return Ok(TailedFile::new(path.to_path_buf(), Some(*pos), max));
        }
        if !at_start {
            return Ok(TailedFile::new(path.to_path_buf(), None, max));
        }
        // Unknown at start: new since the last save → read whole.
        let modified: Option<DateTime<Utc>> =
            std::fs::metadata(path)?.modified().ok().map(Into::into);
        let created_while_down = match (modified, saved.saved_at) {
            (Some(m), Some(s)) => m >= s - chrono::Duration::seconds(RESTART_SLACK_SECS),
            _ => false,
        };
        if created_while_down {
            Ok(TailedFile::new(path.to_path_buf(), None, max))
        } else {
            TailedFile::at_end(path.to_path_buf(), max)
        }
    }

    fn on_log(&mut self, path: &Path, source: SourceKind, at_start: bool) {
        if !self.files.contains_key(path) {
            if !path.is_file() {
                return;
            }
            let tail = match self.open_tail(path, at_start) {
                Ok(t) => t,
                Err(e) => {
                    if self.reported.insert(path.to_path_buf()) {
                        tracing::warn!("cannot read {}: {e}", path.display());
                    }
                    return;
                }
            };
            let mut tracker = SessionTracker::for_file(path, source);
            let start = tail.position().map_or(0, |p| p.offset);
            if start > 0 {
                preread_identity(path, start.min(IDENTITY_PREREAD), &mut tracker);
            }
            if let (SourceKind::ZagSession, Some(w)) = (source, path.file_stem()) {
                self.zag_logs
                    .insert(w.to_string_lossy().into_owned(), path.to_path_buf());
            }
            self.files.insert(
                path.to_path_buf(),
                FileState {
                    tail,
                    tracker,
                    stream: StreamState::default(),
                    lines: 0,
                    warned_truncated: false,
                },
            );
            self.setup.stats.files[IngestStats::slot(source)].fetch_add(1, Ordering::Relaxed);
        }
        self.read_file(path, source);
    }

    fn read_file(&mut self, path: &Path, source: SourceKind) {
        let spawn_identity =
            (source == SourceKind::ZagSpawn).then(|| self.identity_for_spawn_log(path));
        let detector = match (&spawn_identity, self.files.get(path)) {
            (Some(si), _) => self.setup.detectors.detector_for(path, source, si),
            (None, Some(fs)) => {
                self.setup
                    .detectors
                    .detector_for(path, source, &fs.tracker.identity)
            }
            (None, None) => return,
        };
        let anchor = self.setup.clock.now();
        let Some(fs) = self.files.get_mut(path) else {
            return;
        };
        let ctx = LineContext {
            source,
            provider_hint: spawn_identity
                .as_ref()
                .and_then(|i| i.provider)
                .or(source.native_provider()),
            anchor,
        };
        let mut hits = Vec::new();
        let mut lines = 0usize;
        let mut truncated = false;
        let result = fs.tail.read_new(|line| {
            lines += 1;
            fs.lines += 1;
            truncated |= line.truncated;
            fs.tracker.observe(line.bytes);
            if let Some(d) = detector.detect_in_stream(line.bytes, &ctx, &mut fs.stream) {
                let mut identity = fs.tracker.identity.clone();
                if let Some(si) = &spawn_identity {
                    identity.merge(si);
                }
                hits.push((d, fs.lines, identity));
            }
        });
        if truncated && !fs.warned_truncated {
            fs.warned_truncated = true;
            tracing::warn!(
                "{}: a line longer than {} bytes was cut to that length for detection",
                path.display(),
                self.setup.max_line
            );
        }
        self.setup.stats.lines.fetch_add(lines, Ordering::Relaxed);
        match result {
            Ok(FileChange::Gone) => {
                self.files.remove(path);
                self.zag_logs.retain(|_, p| p != path);
                self.setup.stats.files[IngestStats::slot(source)].fetch_sub(1, Ordering::Relaxed);
                self.dirty_since.get_or_insert_with(Instant::now);
            }
            Ok(change) => {
                if change != FileChange::Appended {
                    tracing::info!("{}: {change:?}, reading from the start", path.display());
                }
                if lines > 0 || change != FileChange::Appended {
                    self.dirty_since.get_or_insert_with(Instant::now);
                }
            }
            Err(e) => {
                if self.reported.insert(path.to_path_buf()) {
                    tracing::warn!("cannot read {}: {e}", path.display());
                }
            }
        }
        for (detection, line_no, identity) in hits {
            self.setup.stats.hits.fetch_add(1, Ordering::Relaxed);
            let (ack, acked) = oneshot::channel();
            let hit = LimitSighting {
                detection,
                file: path.to_path_buf(),
                source,
                line_no,
                identity,
                ack,
            };
            self.send(IngestEvent::Hit(Box::new(hit)));
            // Wait until the incident is durable before any checkpoint moves.
            if acked.blocking_recv().is_err() {
                self.closed = true;
                return;
            }
        }
    }

    /// A spawn log has no identity lines: borrow them from the session's
    /// zag log (`<wrapper>.jsonl` in the global or a project log dir).
    fn identity_for_spawn_log(&mut self, spawn_log: &Path) -> SessionIdentity {
        let wrapper = spawn_log
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned());
        let Some(wrapper) = wrapper else {
            return SessionIdentity::default();
        };
        if let Some(fs) = self.zag_logs.get(&wrapper).and_then(|p| self.files.get(p)) {
            return fs.tracker.identity.clone();
        }
        SessionIdentity {
            wrapper_session_id: Some(wrapper),
            ..Default::default()
        }
    }

    fn save_checkpoints(&mut self) {
        if self.dirty_since.take().is_none() {
            return;
        }
        let mut cps = self.saved.clone().unwrap_or_default();
        cps.version = Checkpoints::VERSION;
        cps.saved_at = Some(self.setup.clock.now());
        cps.files.retain(|p, _| p.exists());
        for (p, f) in &self.files {
            if let Some(pos) = f.tail.position() {
                cps.files.insert(p.clone(), pos);
            }
        }
        match cps.save(&self.setup.checkpoints_path) {
            Ok(()) => self.saved = Some(cps),
            Err(e) => tracing::warn!(
                "cannot save offsets to {}: {e}",
                self.setup.checkpoints_path.display()
            ),
        }
    }
}

/// Feed the first `len` bytes of a file to a tracker (identity only).
fn preread_identity(path: &Path, len: u64, tracker: &mut SessionTracker) {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(path) else {
        return;
    };
    let mut buf = Vec::new();
    if f.take(len).read_to_end(&mut buf).is_err() {
        return;
    }
    let mut splitter = crate::tail::LineSplitter::new(IDENTITY_PREREAD as usize);
    splitter.feed(&buf, |l| tracker.observe(l.bytes));
}
