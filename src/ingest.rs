//! The ingest stage: watch → tail → session identity → detect, on one thread.
//!
//! One blocking thread owns the notify watcher, every [`TailedFile`], every
//! [`SessionTracker`] and the offset checkpoints: file reading never stalls
//! the async core, and no state is shared. Each detection goes to the core as
//! a [`LimitSighting`], whose ack comes only once the incident is durable in a
//! store. Until then that file's saved offset stays where the read that found
//! it started (a crash re-reads the line; the core knows what it already
//! has), while other files, whose limits may go to other stores, are read
//! and saved as usual: a store that cannot be written holds back only its
//! own hits.
//!
//! Idle means blocked in `recv()`: no timer, no polling. Only while a
//! checkpoint is dirty, or a hit waits for its ack, does the loop wait with
//! a timeout, to batch saves and to see acks.

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
use crate::tail::{Checkpoints, FileChange, Position, TailedFile};
use crate::watch::{explain_watch_error, FsEvent, Match, Patterns, Target, Watcher};

/// How long a dirty checkpoint may wait before it is saved.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(500);
/// How often acks are looked for while hits wait for them.
const ACK_POLL: Duration = Duration::from_millis(50);
/// Identity facts are read from this much of a file's start when tailing
/// begins mid-file (the `session_started` line is the first one).
const IDENTITY_PREREAD: u64 = 256 * 1024;
/// Files created up to this long before the last save are read from byte 0
/// on restart: they may hold lines written while the daemon was down.
const RESTART_SLACK_SECS: i64 = 5;
/// A first start reads this much of each existing file's end for a limit
/// still on (the catch-up; see [`still_on`]).
const CATCH_UP_BYTES: u64 = 256 * 1024;
/// How long after its reset a limit found by a catch-up read is still
/// resumed, and how long the daemon may have been down before its first
/// reads are catch-up reads. One hour: the likely moment to install (or
/// restart) the daemon is right after meeting a limit, within the limit's
/// window (Claude's is five hours); a reset that passed more than an hour
/// ago left the user an hour of quota in which they did not continue, so the
/// session is theirs now and a resume out of the blue would surprise.
pub const CATCH_UP_WINDOW_SECS: i64 = 3600;

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
    /// A session file ends with a user turn still waiting for its answer,
    /// for a CLI whose TUI shows its limit on screen only (Gemini): the
    /// core looks at its pane once the file stays quiet.
    TurnOpen(Box<TurnOpenSighting>),
    /// The initial scan is done: every source is watched.
    Ready,
}

/// A user turn left open at the end of a session file.
#[derive(Debug)]
pub struct TurnOpenSighting {
    pub file: PathBuf,
    pub source: SourceKind,
    pub identity: SessionIdentity,
    pub turn: crate::provider::OpenTurn,
    /// The file's length after the read that saw it: the file is quiet
    /// while it stays this long.
    pub len: u64,
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
    /// The next read is a catch-up read (a first start, a long downtime):
    /// only its last limit counts, and only if [`still_on`].
    catch_up: bool,
    /// The user turn still waiting for an answer, for a CLI that tracks
    /// them ([`crate::provider::ProviderCli::fold_open_turn`]).
    open_turn: Option<crate::provider::OpenTurn>,
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
    /// Files with hits not yet durable: the position saved for each in the
    /// meantime (where the read that found the first of them started) and
    /// the acks awaited.
    unacked: HashMap<PathBuf, (Option<Position>, Vec<oneshot::Receiver<()>>)>,
    closed: bool,
    /// This start follows no saved state, or state older than the
    /// catch-up window: the first reads of files found at start catch up.
    catching_up: bool,
}

/// Is a limit found by a catch-up read still on at `now`? Its reset is
/// ahead or passed less than [`CATCH_UP_WINDOW_SECS`] ago; without a reset,
/// its line is younger than that (its fallback wait then is still running
/// or just over). A line of unknown time and no reset is history of
/// unknown age: left alone.
pub fn still_on(d: &Detection, now: DateTime<Utc>) -> bool {
    let window = chrono::Duration::seconds(CATCH_UP_WINDOW_SECS);
    match (d.reset_at, d.line_ts) {
        (Some(reset), _) => reset > now - window,
        (None, Some(at)) => at > now - window,
        (None, None) => false,
    }
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
        let now = setup.clock.now();
        let catching_up = match &saved {
            None => true,
            Some(c) => !c
                .saved_at
                .is_some_and(|at| at >= now - chrono::Duration::seconds(CATCH_UP_WINDOW_SECS)),
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
            unacked: HashMap::new(),
            closed: false,
            catching_up,
        }
    }

    fn initial_scan(&mut self) {
        let found = self.discover_watching(None);
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
            let ack_wait = (!self.unacked.is_empty()).then_some(ACK_POLL);
            let save_wait = self
                .dirty_since
                .map(|since| CHECKPOINT_DELAY.saturating_sub(since.elapsed()));
            let ev = match ack_wait.into_iter().chain(save_wait).min() {
                None => rx.recv().ok(),
                Some(wait) => match rx.recv_timeout(wait) {
                    Ok(ev) => Some(ev),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.settle_acks();
                        if self
                            .dirty_since
                            .is_some_and(|t| t.elapsed() >= CHECKPOINT_DELAY)
                        {
                            self.save_checkpoints();
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                },
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
            self.settle_acks();
            if self
                .dirty_since
                .is_some_and(|t| t.elapsed() >= CHECKPOINT_DELAY)
            {
                self.save_checkpoints();
            }
        }
    }

    /// Drop the acks that came; a file whose hits are all durable now has
    /// its offset saved again where reading is.
    fn settle_acks(&mut self) {
        let before = self.unacked.len();
        self.unacked.retain(|_, (_, acks)| {
            // A dropped sender is no ack: the daemon is stopping (or its
            // core failed); the hit is read again on the next start.
            acks.retain_mut(|a| !matches!(a.try_recv(), Ok(())));
            !acks.is_empty()
        });
        if self.unacked.len() != before {
            self.dirty_since.get_or_insert_with(Instant::now);
        }
    }

    fn rescan(&mut self) {
        let found = self.discover_watching(None);
        for (path, target) in found.files {
            self.on_file(&path, target, false);
        }
    }

    /// Walk every source (or only `under`, a folder that just appeared),
    /// watching each folder before it is listed (see
    /// [`Patterns::discover_watching`]).
    fn discover_watching(&mut self, under: Option<&Path>) -> crate::watch::Discovery {
        let State {
            setup,
            watcher,
            reported,
            ..
        } = self;
        let mut watch = |dir: &Path| {
            if let Err(e) = watcher.watch_dir(dir) {
                if reported.insert(dir.to_path_buf()) {
                    tracing::warn!("{}", explain_watch_error(dir, &e));
                }
            }
        };
        let found = match under {
            Some(dir) => setup.patterns.discover_under(dir, &mut watch),
            None => setup.patterns.discover_watching(&mut watch),
        };
        setup
            .stats
            .dirs
            .store(watcher.watched_dirs(), Ordering::Relaxed);
        found
    }

    fn on_path(&mut self, path: &Path) {
        match self.setup.patterns.classify(path) {
            Match::File(target) => self.on_file(path, target, false),
            Match::Dir => {
                if path.is_dir() {
                    // A new folder: each folder in it is watched, then
                    // listed, and what it already holds is read (files may
                    // have landed before the watch was in place).
                    let found = self.discover_watching(Some(path));
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
            // First run ever: history is not ours to act on, except a limit
            // still on near a file's end (the catch-up read). Files that
            // appear after start are new and read whole.
            return if at_start {
                TailedFile::near_end(path.to_path_buf(), max, CATCH_UP_BYTES)
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
                    catch_up: at_start && self.catching_up,
                    open_turn: None,
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
        // Saved in place of the file's offset while a hit of this read
        // waits for its ack.
        let read_from = fs.tail.position();
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
        let cli = crate::provider::for_source(source);
        let mut tracks_turns = false;
        let result = fs.tail.read_new(|line| {
            lines += 1;
            fs.lines += 1;
            truncated |= line.truncated;
            fs.tracker.observe(line.bytes);
            if let Some(cli) = cli {
                tracks_turns |= cli.fold_open_turn(line.bytes, &mut fs.open_turn);
            }
            if let Some(d) = detector.detect_in_stream(line.bytes, &ctx, &mut fs.stream) {
                let mut identity = fs.tracker.identity.clone();
                if let Some(si) = &spawn_identity {
                    identity.merge(si);
                }
                hits.push((d, fs.lines, identity));
            }
        });
        let caught_up = std::mem::take(&mut fs.catch_up);
        if caught_up {
            hits = catch_up(path, hits, anchor);
        }
        // A turn that opened (or stayed open) in what was just read; a
        // catch-up read is history, not something on screen now.
        let open_turn = (tracks_turns && !caught_up)
            .then(|| fs.open_turn.clone())
            .flatten()
            .map(|turn| TurnOpenSighting {
                file: path.to_path_buf(),
                source,
                identity: fs.tracker.identity.clone(),
                turn,
                len: fs.tail.position().map_or(0, |p| p.offset),
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
                self.unacked.remove(path);
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
        if let Some(t) = open_turn {
            self.send(IngestEvent::TurnOpen(Box::new(t)));
        }
        for (detection, line_no, identity) in hits {
            self.setup.stats.hits.fetch_add(1, Ordering::Relaxed);
            crate::fault::panic_point("ingest");
            tracing::debug!(file = %path.display(), line = line_no, "limit seen; handed to the core");
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
            let position = self.files.get(path).and_then(|f| f.tail.position());
            let held = read_from
                .filter(|p| position.is_some_and(|now| now.id == p.id))
                // First read of the file, or it was replaced: from its start.
                .or_else(|| {
                    position.map(|p| Position {
                        offset: 0,
                        head: Default::default(),
                        ..p
                    })
                });
            self.unacked
                .entry(path.to_path_buf())
                .or_insert_with(|| (held, Vec::new()))
                .1
                .push(acked);
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
            let pos = match self.unacked.get(p) {
                Some((held, _)) => *held,
                None => f.tail.position(),
            };
            match pos {
                Some(pos) => {
                    cps.files.insert(p.clone(), pos);
                }
                None => {
                    cps.files.remove(p);
                }
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

/// A catch-up read's hits: only the last limit of the file (an earlier one
/// was followed by more of the session), and only if [`still_on`]; each
/// limit acted on is logged, the others left alone as history.
fn catch_up<T>(
    file: &Path,
    mut hits: Vec<(Detection, u64, T)>,
    now: DateTime<Utc>,
) -> Vec<(Detection, u64, T)> {
    let Some(last) = hits.pop() else {
        return hits;
    };
    if !hits.is_empty() {
        tracing::debug!(file = %file.display(), older = hits.len(), "catch-up: earlier limits in this file left alone");
    }
    if still_on(&last.0, now) {
        tracing::info!(file = %file.display(), provider = %last.0.provider, reset_at = %crate::clock::log_time(last.0.reset_at), "catching up on a limit from before this start that is still on");
        vec![last]
    } else {
        tracing::info!(file = %file.display(), reset_at = %crate::clock::log_time(last.0.reset_at), "catch-up: the last limit in this file is over by more than {} s: left alone", CATCH_UP_WINDOW_SECS);
        Vec::new()
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
    // The head's permission mode is not the mode at a limit further down
    // (the user may have switched since, in the part not read): only a mode
    // record read from here on counts, else the resolve reads back from
    // the limit (issue 21: never more power than the session had).
    tracker.identity.permission_mode = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Provider;

    fn now() -> DateTime<Utc> {
        "2026-11-30T12:00:00Z".parse().unwrap()
    }

    fn limit(reset_in: Option<i64>, line_age: Option<i64>) -> Detection {
        Detection {
            provider: Provider::Claude,
            reset_at: reset_in.map(|s| now() + chrono::Duration::seconds(s)),
            line_ts: line_age.map(|s| now() - chrono::Duration::seconds(s)),
            ..Detection::default()
        }
    }

    #[test]
    fn a_catch_up_acts_on_a_limit_still_on_only() {
        let w = CATCH_UP_WINDOW_SECS;
        for (d, on) in [
            (limit(Some(3600), Some(60)), true),
            (limit(Some(-(w - 1)), Some(4 * 3600)), true),
            (limit(Some(-(w + 1)), Some(60)), false),
            (limit(None, Some(w - 1)), true),
            (limit(None, Some(w + 1)), false),
            (limit(None, None), false),
        ] {
            assert_eq!(still_on(&d, now()), on, "{d:?}");
        }
        // Only the last limit of a file counts.
        let hits = vec![
            (limit(Some(3600), Some(60)), 1, "first"),
            (limit(Some(-(w + 1)), Some(60)), 2, "last, over"),
        ];
        assert!(catch_up(Path::new("f"), hits, now()).is_empty());
        let hits = vec![
            (limit(Some(-(w + 1)), Some(60)), 1, "first, over"),
            (limit(Some(3600), Some(60)), 2, "last"),
        ];
        let kept = catch_up(Path::new("f"), hits, now());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].2, "last");
    }
}
