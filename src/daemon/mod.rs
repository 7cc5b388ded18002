//! The daemon core: wiring, and the one task that owns incident state and
//! carries out the plans of [`plan`].
//!
//! ```text
//!  ingest thread ──Hit/StoreChanged──▶ ┌──────────────┐ ──arm/disarm──▶ timer task
//!  control socket ──DaemonRequest────▶ │  core (here) │ ◀──due─────────┘
//!  resume tasks ──Outcome────────────▶ │   plan.rs    │ ──spawn──▶ resume::deliver
//!  disk workers ──Disk───────────────▶ └──────────────┘ ──spawn_blocking──▶ disk workers
//! ```
//!
//! The core owns the incident table and the stores' replays; everything else
//! talks to it over channels, one handler per message. Each incident is an
//! [`incident::Incident`] in one state (seen, writing, armed, delivering,
//! deferred, done); what to do is decided by the pure functions of [`plan`],
//! its transitions. The slow disk work a transition needs (resolving a
//! session, which may read every transcript of a project; appending with
//! fsync to a store and to a zag log) runs on blocking workers that report
//! back with a `Disk` message, so `status`, `cancel` and timer fires never
//! queue behind it. Its rules:
//! - a hit is acked (the ingest thread then moves its offset) only once its
//!   incident leaves `writing`, i.e. its `schedule` is fsync'd (or it is
//!   found known: then it waits with the incident it is); while it is being
//!   written the dedupe and the session index see it, so a second source of
//!   the same limit is never scheduled twice;
//! - the timer is armed after re-reading the store past that fsync: a
//!   cancel appended right after our schedule wins;
//! - right before delivery the store is re-read, and a tombstone (a cancel
//!   by `zag usage cancel` or `zag-resumed cancel`) wins;
//! - `complete` is appended after delivery, the incident `done` (no cancel,
//!   no second fire) until it is written. The commit point of a resume is
//!   that `complete` being durable; a crash before it never loses the
//!   resume, and does not repeat it either: the claim settles the
//!   incident's delivery attempt first ([`resume::attempt`]), and an
//!   attempt an earlier run started is recorded, not sent again.
//! - on start every pending record we own is re-armed; past-due fires at once.
//! - one pending-or-running resume per session ([`sessions`] indexes them,
//!   [`plan::plan_live`] decides): a hit of a session with one is that
//!   incident, or, when the session's resumed run hit the limit again, the
//!   chain's next attempt, once, whichever source (the watched transcript or
//!   the delivery's output) shows it first. A store holding two pending for
//!   one session (a crash, an older version) keeps one
//!   ([`plan::plan_supersede`]) and records the other as skipped.
//!
//! A requested cancel stops the timer at once and makes the incident `done`
//! while its `cancel` record is written off the loop; the reply waits for
//! the fsync (a failed write puts it back as it was). A take-over of a
//! stranded zag resume is appended off the loop too. Every append is, so
//! a slow disk holds back only the records of its own store (the test
//! `a_slow_store_write_stalls_neither_status_nor_another_session`); a store
//! that cannot be written is retried at a change in its directory as well
//! as on a backoff ([`outage`]). Left on the loop: reading what was
//! appended to a store (bounded, small), the `.git` look-up of a session's
//! project, and loading a project's `zag.toml` on first use.

pub mod holder_watch;
pub mod incident;
pub mod outage;
pub mod plan;
pub mod screen_watch;
pub mod sessions;
mod user;

use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{DaemonConfig, UsageLimits};
use crate::control::{DaemonRequest, IncidentEvent, PendingView, StatusSnapshot};
use crate::desktop::Notifier;
use crate::detect::{Detection, Detector, SourceKind};
use crate::ingest::{self, DetectorSource, IngestEvent, IngestStats};
use crate::paths::Paths;
use crate::resume::{self, zaglog, Outcome, ResumeEnv};
use crate::session::SessionIdentity;
use crate::store::adopt::{adopt_from, adoption_decision, probe_owner, Adoption, AdoptionState};
use crate::store::compact::{compact, should_compact, CompactOptions};
use crate::store::follow::StoreFollower;
use crate::store::{Record, ReplayChange, Schedule, StoreFile};
use crate::timer::{self, TimerEntry, TimerHandle, TimerKey};
use crate::watch::Patterns;
use incident::{ack_all, Ack, Incident, State};

/// Everything the daemon is started with.
pub struct Options {
    pub paths: Paths,
    pub config: DaemonConfig,
    /// The file `config` came from, re-read on reload.
    pub config_path: Option<PathBuf>,
    pub clock: Arc<dyn Clock>,
    /// PATH for provider binaries (`None`: this process's PATH).
    pub search_path: Option<OsString>,
    /// `run --dry-run`: decide and log, write and start nothing.
    pub dry_run: bool,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    AlreadyRunning(#[from] crate::lock::LockError),
    #[error("cannot open the control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create state dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the file watcher: {0}")]
    Watcher(std::io::Error),
    /// A part of the daemon died (a panicked worker, the ingest thread, the
    /// timer task): it stops rather than run on half blind. The service
    /// manager restarts it, and the restart replays from disk.
    #[error(
        "{0}; stopped (a restart replays every pending resume and unacknowledged limit from disk)"
    )]
    Failed(String),
}

/// How many recent outcomes `status` shows.
const RECENT: usize = 20;

/// How long a due incident whose delivery attempt cannot be read or
/// recorded waits before it is looked at again (see
/// [`resume::attempt`]).
const ATTEMPT_RECHECK_SECS: i64 = 30;

/// `[usage_limits]` per project dir, loaded on first use and on change.
#[derive(Default)]
pub struct LimitsCache {
    by_project: HashMap<PathBuf, (Arc<UsageLimits>, Arc<Detector>)>,
}

impl LimitsCache {
    pub fn get(&mut self, project: &Path) -> (Arc<UsageLimits>, Arc<Detector>) {
        self.by_project
            .entry(project.to_path_buf())
            .or_insert_with(|| {
                let limits = UsageLimits::load_for_project(project).unwrap_or_else(|e| {
                    tracing::warn!("{e}; using zag's defaults for this project");
                    UsageLimits::default()
                });
                let (detector, invalid) = Detector::new(limits.extra_patterns());
                for bad in invalid {
                    tracing::warn!(
                        "{}: invalid extra_patterns entry skipped: {bad}",
                        project.display()
                    );
                }
                (Arc::new(limits), Arc::new(detector))
            })
            .clone()
    }

    pub fn invalidate(&mut self, zag_toml: &Path) {
        if let Some(project) = zag_toml.parent() {
            self.by_project.remove(project);
        }
    }
}

/// The ingest thread's detector source: per-project extra patterns.
struct ProjectDetectors {
    paths: Paths,
    cache: LimitsCache,
}

impl DetectorSource for ProjectDetectors {
    fn detector_for(
        &mut self,
        _file: &Path,
        _source: SourceKind,
        identity: &SessionIdentity,
    ) -> Arc<Detector> {
        // The same project the core will take the incident's limits from
        // (the file's tracker already names a zag log as its own).
        let paths = &self.paths;
        let project = plan::project_of(paths, identity, |cwd| project_for_cwd(paths, cwd));
        self.cache.get(&project).1
    }

    fn invalidate(&mut self, zag_toml: &Path) {
        self.cache.invalidate(zag_toml);
    }
}

/// The project dir zag would use for a working directory: the git top level
/// found by walking up to a `.git`, else the global dir (zag-contract §1.1).
pub fn project_for_cwd(paths: &Paths, cwd: &str) -> PathBuf {
    let mut dir = Some(Path::new(cwd));
    while let Some(d) = dir {
        if d.join(".git").exists() {
            return paths.project_for_root(&d.to_string_lossy());
        }
        dir = d.parent();
    }
    paths.zag_home.clone()
}

/// The project an incident's store belongs to: the one rule at fire time
/// and for a re-hit, so neither works it out again from the session.
fn project_of_store(paths: &Paths, store: &Path) -> PathBuf {
    store
        .parent()
        .map_or_else(|| paths.zag_home.clone(), Path::to_path_buf)
}

/// The wait before retrying a write that failed `failures` times in a row:
/// a quarter second, doubling, at most two seconds (a store that comes back
/// is written within two seconds; a try is one small append).
fn backoff(failures: u32) -> std::time::Duration {
    if failures == 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_millis(250 << failures.saturating_sub(1).min(3))
}

/// The answer to a cancel request.
type CancelReply = oneshot::Sender<Result<PendingView, String>>;

/// Append planned lines to zag session logs (off the loop); a failure is
/// logged, not fatal.
fn append_lines(lines: &[plan::LogLine]) {
    for l in lines {
        if let Err(e) = zaglog::append_event(
            &l.log,
            &l.provider,
            &l.wrapper,
            l.at,
            l.kind,
            l.fields.clone(),
        ) {
            tracing::warn!("cannot append {} to {}: {e}", l.kind, l.log.display());
        }
    }
}

/// What disk work done off the core's loop reports back: one handler each
/// (`Core::on_resolved`, `on_schedule_written`, `on_claimed`,
/// `on_completed`, `on_adopted`, `on_cancelled`). What waits on the work
/// (a hit's ack) waits in the incident's state, not here.
enum Disk {
    /// A seen incident's session was resolved.
    Resolved {
        incident: Box<Incident>,
        resolved: Box<Result<resume::ResolvedTarget, resume::Unresolved>>,
    },
    /// A new incident's `schedule` was appended (and fsync'd when `Ok`),
    /// its zag-log lines too.
    ScheduleWritten {
        id: String,
        durable: Result<(), String>,
        /// Why the session can never be resumed, if the resolve said so.
        unresolvable: Option<String>,
        /// Its zag-log lines, written once the schedule is (kept for the
        /// retry when it is not).
        lines: Vec<plan::LogLine>,
    },
    /// A due incident's claim was made (`Ok`: its store writable, its
    /// delivery attempt settled) or could not be.
    Claimed {
        id: String,
        written: Result<resume::attempt::Claim, String>,
    },
    /// An ended incident's `complete` (and its zag-log line) was written
    /// (`Ok`), or could not be.
    Completed {
        id: String,
        outcome: Box<Outcome>,
        plan: Box<plan::OutcomePlan>,
        written: Result<(), String>,
    },
    /// The last outcomes the stores know, read at start for `status`'s
    /// "recent" (what `history` knows survives a restart).
    Recent(Vec<IncidentEvent>),
    /// A stranded zag resume was taken over (our schedule, then zag's
    /// cancel, appended), or could not be.
    Adopted {
        store: PathBuf,
        zag_id: String,
        adopted: Result<Box<Schedule>, String>,
    },
    /// A requested `cancel` was appended (fsync'd when `Ok`).
    Cancelled {
        id: String,
        store: PathBuf,
        view: Box<PendingView>,
        written: Result<(), String>,
        reply: CancelReply,
    },
}

struct Core {
    paths: Paths,
    config: DaemonConfig,
    config_path: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    started_at: DateTime<Utc>,
    /// Every store we know, followed from its last read offset.
    stores: HashMap<PathBuf, StoreFollower>,
    /// Our incidents from the moment one is known to be new (being
    /// written) until its final record is durable, each in its state.
    incidents: crate::store::OrderedIdMap<Incident>,
    /// A compaction is running (see `maybe_compact`).
    compacting: Arc<std::sync::atomic::AtomicBool>,
    limits: LimitsCache,
    timer: TimerHandle,
    env: Arc<ResumeEnv>,
    /// Desktop notifications, driven by the event stream.
    notifier: Arc<Notifier>,
    outcomes_tx: mpsc::UnboundedSender<(String, Outcome)>,
    events: broadcast::Sender<IncidentEvent>,
    recent: VecDeque<IncidentEvent>,
    stats: Arc<IngestStats>,
    cancel_deliveries: CancellationToken,
    deliveries: tokio::task::JoinSet<()>,
    /// Disk work (resolve, appends with fsync) running off the loop.
    work: tokio::task::JoinSet<Disk>,
    /// `incidents` by session: one live resume per session.
    sessions: sessions::SessionIndex,
    /// Stores that cannot be written right now.
    outages: HashMap<PathBuf, crate::control::StoreOutage>,
    /// A watch on the directory of each of them: a change there wakes its
    /// retries ([`outage`]).
    outage_watches: HashMap<PathBuf, outage::OutageWatch>,
    /// zag's records being taken over (their appends running).
    adopting: crate::store::IdSet,
    /// Shutting down: a failed write is not retried (its hit is read again,
    /// its incident re-armed, on the next start).
    stopping: bool,
    /// Why the daemon must stop: a part of it died (see [`DaemonError::Failed`]).
    failed: Option<String>,
    /// The open-turn watches ([`screen_watch`]), one per session file.
    screen_watches: HashMap<PathBuf, tokio::task::AbortHandle>,
    /// Where a watch sends the limit it saw (read like ingest's events).
    screen_tx: mpsc::UnboundedSender<IngestEvent>,
    /// The exit watch of each deferred incident's holder
    /// ([`holder_watch`]), by incident: the process and its task.
    holder_watches: HashMap<String, (crate::live::proc::Pid, tokio::task::AbortHandle)>,
    /// Where those watches report an exit.
    holder_tx: mpsc::UnboundedSender<holder_watch::Exited>,
    /// Pause, held incidents, dry run (see [`user`]).
    user: user::UserState,
}

/// Turn transparent huge pages off for this process (Linux; elsewhere a
/// no-op). mimalloc asks for huge pages, and on a VM that hands freed memory
/// back to its host in 2 MiB pieces, faulting fresh huge pages in is slow:
/// on this project's VM the first start-up re-arm of 100,000 records after
/// an 8 s pause took 303–318 ms with them and 123–158 ms without (starts
/// right after another: 75–92 against 109–120 ms). An idle daemon gains
/// nothing from huge pages, so the worst case wins. Children get huge pages back (see
/// `resume::respawn`): the setting is inherited and is not theirs to carry.
pub fn use_small_pages() {
    #[cfg(target_os = "linux")]
    // Only sets a flag on this process; a kernel without it changes nothing.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// Run the daemon until `shutdown` is cancelled or a `Stop` request comes.
///
/// Takes the instance lock, opens the control socket, re-arms every pending
/// resume from disk, starts the ingest thread, then tells systemd it is
/// ready. `extra_requests` carries requests from outside the socket (the
/// binary's SIGHUP handler).
pub async fn run(
    opts: Options,
    extra_requests: mpsc::Receiver<DaemonRequest>,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let Options {
        paths,
        config,
        config_path,
        clock,
        search_path,
        dry_run,
    } = opts;
    crate::lock::ensure_private_dir(&paths.state_dir).map_err(|source| DaemonError::StateDir {
        path: paths.state_dir.clone(),
        source,
    })?;
    let _instance = crate::lock::acquire(&paths.state_dir)?;
    let socket = crate::control::client::socket_path(&paths);
    let listener =
        crate::control::bind::bind_socket(&socket).map_err(|source| DaemonError::Socket {
            path: socket.clone(),
            source,
        })?;
    let (req_tx, mut requests) = mpsc::channel(64);
    let server_stop = CancellationToken::new();
    let server = tokio::spawn(crate::control::server::serve(
        listener,
        req_tx.clone(),
        server_stop.clone(),
    ));
    let forward = tokio::spawn(forward_requests(extra_requests, req_tx));

    let (fired_tx, mut fired_rx) = mpsc::unbounded_channel();
    let (timer, timer_task) = timer::spawn(clock.clone(), fired_tx);
    let (outcomes_tx, mut outcomes_rx) = mpsc::unbounded_channel();
    let (screen_tx, mut screen_rx) = mpsc::unbounded_channel();
    let (holder_tx, mut holder_rx) = mpsc::unbounded_channel();
    let mut env = ResumeEnv::new(
        paths.clone(),
        config.resume.clone(),
        config.binaries.clone(),
        Detector::new([]).0,
    );
    env.search_path = search_path;
    env.clock = clock.clone();
    let stats = Arc::new(IngestStats::default());
    let mut core = Core {
        started_at: clock.now(),
        paths: paths.clone(),
        notifier: Arc::new(Notifier::from_config(&config.notify)),
        config: config.clone(),
        config_path,
        clock: clock.clone(),
        stores: HashMap::new(),
        incidents: Default::default(),
        compacting: Default::default(),
        limits: LimitsCache::default(),
        timer,
        env: Arc::new(env),
        outcomes_tx,
        events: broadcast::channel(256).0,
        recent: VecDeque::new(),
        stats: stats.clone(),
        cancel_deliveries: CancellationToken::new(),
        deliveries: tokio::task::JoinSet::new(),
        work: tokio::task::JoinSet::new(),
        sessions: Default::default(),
        outages: HashMap::new(),
        outage_watches: HashMap::new(),
        adopting: Default::default(),
        stopping: false,
        failed: None,
        screen_watches: HashMap::new(),
        screen_tx,
        holder_watches: HashMap::new(),
        holder_tx,
        user: user::UserState::load(&paths.state_dir, dry_run, clock.now()),
    };
    if dry_run {
        tracing::info!(
            "dry run: watching, detecting and planning; nothing will be written, typed or started"
        );
    }

    let notifications = crate::desktop::spawn_event_notifier(
        core.notifier.clone(),
        core.events.subscribe(),
        shutdown.clone(),
    );

    // Re-arm everything pending before any new line is read; filing them
    // by session waits for the first hit, fire or store change (see
    // `Core::file_sessions`).
    let started = std::time::Instant::now();
    for store in crate::store::discover_stores(&paths.zag_home) {
        core.read_store(&store.path);
        core.maybe_compact(&store.path);
    }
    tracing::info!(
        pending = core.incidents.len(),
        took_ms = started.elapsed().as_millis() as u64,
        "re-armed pending resumes from disk"
    );
    // Before any claim: the delivery attempts of incidents that ended.
    let swept = resume::attempt::Attempts::new(&paths.state_dir).sweep(|folder| {
        !core.incidents.contains_key(folder)
            && core.stores.values().any(|f| {
                let ended = &f.replay().tombstoned;
                ended.contains(folder)
                    || (folder.starts_with('~')
                        && ended
                            .iter()
                            .any(|id| resume::attempt::folder_name(id) == folder))
            })
    });
    if swept > 0 {
        tracing::debug!(swept, "removed the delivery attempts of ended incidents");
    }
    // Off the loop and after the re-arm: it reads every store once more.
    let zag_home = paths.zag_home.clone();
    // A record's `at` is kept to the second: one of this run's own first
    // second may be read here too; `publish` shows it once.
    let before = core.started_at;
    core.work.spawn_blocking(move || {
        Disk::Recent(user::recent_from_history(
            crate::control::history::read_history(&zag_home),
            RECENT,
            before,
        ))
    });

    let (ingest_tx, mut ingest_rx) = mpsc::unbounded_channel();
    let ingest = ingest::start(
        ingest::IngestSetup {
            patterns: Patterns::for_daemon(&paths, &config.watch),
            // A dry run keeps its own offsets: the real first start still
            // catches up on what the dry run saw.
            checkpoints_path: paths.state_dir.join(if core.user.dry_run {
                "offsets.dry-run.json"
            } else {
                "offsets.json"
            }),
            max_line: config.watch.max_line_bytes,
            clock: clock.clone(),
            detectors: Box::new(ProjectDetectors {
                paths: paths.clone(),
                cache: LimitsCache::default(),
            }),
            stats,
        },
        ingest_tx,
    )
    .map_err(DaemonError::Watcher)?;
    // Fed from the core's own loop, and only while the ingest thread and
    // the timer task are alive: a watchdog fed by a side task would keep
    // a daemon that can no longer see or fire anything looking healthy.
    let mut watchdog = crate::systemd::watchdog_interval().map(|p| {
        let mut t = tokio::time::interval(p / 2);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    tracing::info!(zag_home = %paths.zag_home.display(), socket = %socket.display(), pid = std::process::id(), "zag-resumed started; scanning sources");

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            ev = ingest_rx.recv() => match ev {
                Some(ev) => core.on_ingest(ev),
                None => core.fail("the ingest thread stopped: no file is watched any more".into()),
            },
            // The screen watches' senders live in the core: never closed.
            Some(ev) = screen_rx.recv() => core.on_ingest(ev),
            // The holder watches' sender lives in the core too.
            Some((id, pid)) = holder_rx.recv() => core.on_holder_exited(&id, pid),
            entry = fired_rx.recv() => match entry {
                Some(entry) => core.on_fired(entry),
                None => core.fail("the timer task stopped: no resume would fire".into()),
            },
            Some((id, outcome)) = outcomes_rx.recv() => core.on_outcome(&id, outcome),
            Some(ended) = core.deliveries.join_next(), if !core.deliveries.is_empty() => {
                if let Err(e) = ended {
                    core.fail(format!("a delivery task failed: {e}"));
                }
            }
            Some(done) = core.work.join_next(), if !core.work.is_empty() => core.on_disk(done),
            Some(req) = requests.recv() => match req {
                DaemonRequest::Stop(reply) => {
                    tracing::info!("stop requested over the control socket");
                    let _ = reply.send(());
                    break;
                }
                req => core.on_request(req),
            },
            _ = async { watchdog.as_mut().expect("only when set").tick().await }, if watchdog.is_some() => {
                if ingest.thread.is_finished() {
                    core.fail("the ingest thread stopped: no file is watched any more".into());
                } else if timer_task.is_finished() {
                    core.fail("the timer task stopped: no resume would fire".into());
                } else {
                    sd_notify("WATCHDOG=1");
                }
            }
        }
        if core.failed.is_some() {
            break;
        }
    }
    if let Some(why) = &core.failed {
        tracing::error!("{why}; stopping");
    }

    sd_notify("STOPPING=1");
    tracing::info!("stopping: draining in-flight resumes");
    shutdown.cancel();
    // Dropping the receiver drops any queued hit with its ack: its line is
    // read again on the next start. A hit already taken in is finished
    // first (resolved, written, acked) unless its store cannot be written:
    // a stopping core retries nothing.
    drop(ingest_rx);
    core.stopping = true;
    core.finish_work().await;
    ingest.stop();
    core.drain(&mut outcomes_rx).await;
    timer_task.abort();
    server_stop.cancel();
    let _ = server.await;
    forward.abort();
    let _ = notifications.await;
    match core.failed {
        Some(why) => Err(DaemonError::Failed(why)),
        None => {
            tracing::info!(pid = std::process::id(), "zag-resumed stopped");
            Ok(())
        }
    }
}

async fn forward_requests(
    mut from: mpsc::Receiver<DaemonRequest>,
    to: mpsc::Sender<DaemonRequest>,
) {
    while let Some(req) = from.recv().await {
        if to.send(req).await.is_err() {
            return;
        }
    }
}

fn sd_notify(state: &str) {
    if let Err(e) = crate::systemd::sd_notify(state) {
        tracing::warn!("cannot notify systemd ({state}): {e}");
    }
}

impl Core {
    /// Read what is new in a store ([`Self::read_store`]) and file its
    /// incidents by session at once (two pending of one session: one is
    /// superseded).
    fn load_store(&mut self, path: &Path) {
        self.read_store(path);
        self.file_sessions();
    }

    /// File the incidents a read handed over by session (see
    /// [`sessions::SessionIndex::file_later`]); those found beside another
    /// pending incident of their session are superseded. Called before
    /// anything looks the index up: a hit, a fire, a store read.
    fn file_sessions(&mut self) {
        if !self.sessions.has_unfiled() {
            return;
        }
        let started = std::time::Instant::now();
        let crowded = self.sessions.file_waiting();
        tracing::debug!(
            took_ms = started.elapsed().as_millis() as u64,
            crowded = crowded.len(),
            "pending resumes filed by session"
        );
        for s in crowded {
            self.supersede(&s);
        }
    }

    /// Read what is new in a store: arm our pending records, stop timers of
    /// incidents tombstoned from outside, consider zag's own records for
    /// adoption. An incident of ours being written is left to
    /// [`Self::on_schedule_written`], which reads the store itself. Its new
    /// incidents are handed to the session index to be filed by the next
    /// [`Self::file_sessions`] (a start-up files them when first needed).
    fn read_store(&mut self, path: &Path) {
        tracing::trace!(store = %path.display(), "reading store");
        let follower = self
            .stores
            .entry(path.to_path_buf())
            .or_insert_with(|| StoreFollower::new(StoreFile::new(path)));
        let records = match follower.refresh() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot read store {}: {e}", path.display());
                return;
            }
        };
        self.incidents.reserve(records.len());
        let mut zag_records = Vec::new();
        let mut cancelled = Vec::new();
        // Armed in one message: a start-up re-arm can be 100,000 entries.
        let mut to_arm = Vec::with_capacity(records.len());
        let store: Arc<Path> = Arc::from(path);
        for change in records {
            match change {
                // Reported only while pending.
                ReplayChange::Scheduled(s) => {
                    if !s.is_ours() {
                        if !self.incidents.contains_key(&s.incident_id) {
                            zag_records.push(s.incident_id.clone());
                        }
                        continue;
                    }
                    match self.incidents.entry(s.incident_id.clone()) {
                        // Ours from disk (a start, another run's record, an
                        // adoption, a retry): armed.
                        indexmap::map::Entry::Vacant(slot) => {
                            to_arm.push(TimerEntry {
                                due: s.when,
                                key: TimerKey::Incident(s.incident_id.clone()),
                            });
                            self.sessions.file_later(s.clone());
                            slot.insert(Incident::new(s, store.clone(), State::Armed));
                        }
                        // The same incident scheduled again (`resume-now`
                        // rewrites its `when`; zag's rule: the last schedule
                        // wins): follow it while it waits for its time.
                        indexmap::map::Entry::Occupied(mut slot) => {
                            let inc = slot.get_mut();
                            if inc.state.is_waiting() && inc.schedule.when != s.when {
                                tracing::info!(incident = %s.incident_id, when = %s.when, "scheduled again in the store; timer moved");
                                to_arm.push(TimerEntry {
                                    due: s.when,
                                    key: TimerKey::Incident(s.incident_id.clone()),
                                });
                                inc.schedule = s;
                                inc.state = State::Armed;
                            } else if inc.state.is_waiting() && inc.schedule.message != s.message {
                                // `zag-resumed message`: same time, new text.
                                tracing::info!(incident = %s.incident_id, message = %s.message, "scheduled again in the store with the user's message");
                                inc.schedule = s;
                            }
                        }
                    }
                }
                ReplayChange::Tombstoned(incident_id) => {
                    if self
                        .incidents
                        .get(&incident_id)
                        .is_some_and(|i| i.state.is_waiting())
                    {
                        cancelled.push(incident_id);
                    }
                }
            }
        }
        if !to_arm.is_empty() {
            self.timer.arm_many(to_arm);
        }
        for id in cancelled {
            self.timer.disarm(id.clone());
            self.untrack(&id);
            tracing::info!(incident = %id, "cancelled in the store; timer stopped");
            self.publish(IncidentEvent::Cancelled {
                incident_id: id,
                at: self.clock.now(),
            });
        }
        for id in zag_records {
            self.consider_adoption(path, &id);
        }
    }

    /// Remove an incident and its session filing.
    fn untrack(&mut self, id: &str) -> Option<Incident> {
        if let Some((_, watch)) = self.holder_watches.remove(id) {
            watch.abort();
        }
        let inc = self.incidents.swap_remove(id)?;
        self.user.held.remove(id);
        self.sessions.remove(&inc.schedule);
        Some(inc)
    }

    /// Enforce one pending resume per session on what a store holds (two
    /// pending for one session after a crash between a re-hit's two
    /// sightings, or written by an older version): the one
    /// [`plan::plan_supersede`] keeps stays armed; the others are recorded
    /// as skipped (so `zag usage list` agrees) and never fire.
    fn supersede(&mut self, s: &Schedule) {
        let group: Vec<Arc<Schedule>> = self
            .sessions
            .of(s)
            .into_iter()
            .filter(|x| x.is_ours() && x.provider == s.provider)
            .filter(|x| {
                self.incidents
                    .get(&x.incident_id)
                    .is_some_and(|i| i.state.is_waiting())
            })
            .collect();
        let refs: Vec<&Schedule> = group.iter().map(AsRef::as_ref).collect();
        let Some((keep, rest)) = plan::plan_supersede(&refs) else {
            return;
        };
        let keep = keep.incident_id.clone();
        let rest: Vec<String> = rest.iter().map(|x| x.incident_id.clone()).collect();
        for id in rest {
            tracing::warn!(incident = %id, kept = %keep, "two pending resumes for one session: this one is superseded");
            self.timer.disarm(id.clone());
            self.on_outcome(
                &id,
                Outcome::Skipped {
                    reason: format!("superseded by {keep}, the session's one pending resume"),
                },
            );
        }
    }

    /// A pending `schedule` written by zag itself: leave it to a live owner,
    /// take it over once the owner is dead and its time passed by a grace.
    fn consider_adoption(&mut self, path: &Path, zag_id: &str) {
        let Some(follower) = self.stores.get(path) else {
            return;
        };
        // Gone (delivered, cancelled, adopted): a probe still armed for
        // it finds nothing to do when it fires.
        let Some(rec) = follower.replay().pending.get(zag_id).cloned() else {
            return;
        };
        let now = self.clock.now();
        let grace = plan::secs(self.config.resume.adopt_grace_secs);
        let owner = probe_owner(&self.paths.zag_home, &rec, now);
        match adoption_decision(&rec, owner, now, grace) {
            Adoption::Leave => {}
            Adoption::Wait(at) => {
                tracing::debug!(zag_incident = %zag_id, ?owner, probe_at = %at, "zag's own resume: left to its owner for now");
                let probe = TimerKey::AdoptionProbe {
                    store: path.to_path_buf(),
                    zag_id: zag_id.to_string(),
                };
                self.timer.arm(probe, at);
            }
            Adoption::Adopt if self.user.dry_run => {
                tracing::info!(zag_incident = %zag_id, "dry run: would adopt this stranded zag resume (its owner is gone)");
            }
            Adoption::Adopt => {
                // Once at a time: a store read while its appends are being
                // written still shows zag's record pending.
                if !self.adopting.insert(zag_id.to_string()) {
                    return;
                }
                let state = AdoptionState::of(follower.replay(), &rec);
                let store = path.to_path_buf();
                let zag_id = zag_id.to_string();
                self.work.spawn_blocking(move || {
                    let adopted = adopt_from(&StoreFile::new(&store), state, &rec, now)
                        .map(Box::new)
                        .map_err(|e| e.to_string());
                    Disk::Adopted {
                        store,
                        zag_id,
                        adopted,
                    }
                });
            }
        }
    }

    /// A take-over's appends are done (or failed: then zag's record is
    /// considered again at the store's next change or restart).
    fn on_adopted(&mut self, store: &Path, zag_id: &str, adopted: Result<Box<Schedule>, String>) {
        self.adopting.remove(zag_id);
        match adopted {
            Ok(ours) => {
                tracing::info!(zag_incident = %zag_id, incident = %ours.incident_id, "adopted a stranded zag resume whose owner is gone");
                self.load_store(store);
            }
            Err(e) => tracing::error!("cannot adopt {zag_id} in {}: {e}", store.display()),
        }
    }

    /// Compact a store in the background once it is mostly dead records.
    /// Compaction is safe against concurrent appenders (ours and zag's).
    fn maybe_compact(&self, path: &Path) {
        if self.user.dry_run {
            return;
        }
        let Some(f) = self.stores.get(path) else {
            return;
        };
        let opts = CompactOptions::new(self.clock.now());
        if !should_compact(f.replay(), &opts) {
            return;
        }
        // One at a time: `compact` serialises overlapping runs anyway (a
        // lock file), but a burst of outcomes should not queue a rewrite
        // each; the next outcome after this one finishes checks again.
        if self
            .compacting
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let busy = self.compacting.clone();
        let store = StoreFile::new(path);
        tokio::task::spawn_blocking(move || {
            match compact(&store, &opts) {
                Ok(st) => {
                    tracing::info!(store = %store.path.display(), before = st.bytes_before, after = st.bytes_after, "store compacted")
                }
                Err(e) => tracing::warn!("cannot compact {}: {e}", store.path.display()),
            }
            busy.store(false, std::sync::atomic::Ordering::Release);
        });
    }
    fn on_ingest(&mut self, ev: IngestEvent) {
        match ev {
            IngestEvent::Hit(hit) => {
                let hit = *hit;
                let session =
                    plan::session_of(&hit.detection, &hit.file, hit.source, &hit.identity, None);
                let project = self.project_of(&session);
                let facts = plan::HitFacts {
                    detection: &hit.detection,
                    file: &hit.file,
                    source: hit.source,
                    session: &session,
                    project: &project,
                    attempt: 1,
                    chain: None,
                };
                self.see(&facts, vec![hit.ack]);
            }
            IngestEvent::TurnOpen(open) => self.watch_screen(*open),
            IngestEvent::StoreChanged(path) => self.load_store(&path),
            IngestEvent::ConfigChanged(path) => self.limits.invalidate(&path),
            IngestEvent::Ready => {
                sd_notify("READY=1");
                tracing::info!(zag_home = %self.paths.zag_home.display(), pid = std::process::id(), "zag-resumed is watching");
            }
        }
    }

    /// Look at the pane of a TUI whose session file ends with an open
    /// turn ([`screen_watch`]); a newer open turn of the file replaces the
    /// watch of the older one.
    fn watch_screen(&mut self, open: crate::ingest::TurnOpenSighting) {
        if !self.env.live.enabled {
            return;
        }
        let file = open.file.clone();
        let home = open
            .source
            .native_provider()
            .map(|p| crate::provider::of(p).home(&self.paths).to_path_buf())
            .unwrap_or_default();
        let task = tokio::spawn(screen_watch::watch(
            open,
            self.env.live.clone(),
            home,
            screen_watch::LOOKS.to_vec(),
            self.clock.clone(),
            self.screen_tx.clone(),
        ));
        if let Some(old) = self.screen_watches.insert(file, task.abort_handle()) {
            old.abort();
        }
        self.screen_watches.retain(|_, h| !h.is_finished());
    }

    /// The project of a session, by the one rule of [`plan::project_of`].
    fn project_of(&self, session: &SessionIdentity) -> PathBuf {
        plan::project_of(&self.paths, session, |cwd| {
            project_for_cwd(&self.paths, cwd)
        })
    }

    /// A limit seen (in a watched line, or as a re-hit's next attempt):
    /// planned by [`plan::plan_hit`]; a new incident is seen, `acks` (the
    /// sightings) waiting in its state, and its session resolved off the
    /// loop (it may read every transcript of a project).
    fn see(&mut self, facts: &plan::HitFacts<'_>, acks: Vec<Ack>) {
        let (limits, _) = self.limits.get(facts.project);
        match plan::plan_hit(facts, &limits, self.clock.now()) {
            plan::HitPlan::OwnedByScheduler => {
                tracing::debug!(file = %facts.file.display(), "usage_limit_hit with a scheduled resume: owned by its scheduler");
                ack_all(acks);
            }
            plan::HitPlan::Disabled { event } => {
                tracing::info!(provider = %facts.detection.provider, session = %facts.session.display_id().unwrap_or("unknown"), "usage limit seen; auto-resume is disabled for it in zag.toml");
                self.publish(event);
                ack_all(acks);
            }
            plan::HitPlan::Seen(mut incident) => {
                tracing::debug!(
                    incident = %incident.id(), provider = %facts.detection.provider,
                    due = %incident.schedule.when, fallback_used = incident.schedule.fallback_used.unwrap_or(false),
                    store = %incident.store.display(),
                    "planner: a limit to resume (due by the project's [usage_limits]); resolving its session"
                );
                if let State::Seen { acks: waiting, .. } = &mut incident.state {
                    *waiting = acks;
                }
                let env = self.env.clone();
                self.work.spawn_blocking(move || {
                    let resolved = Box::new(resume::resolve_target(&incident.schedule, &env));
                    Disk::Resolved { incident, resolved }
                });
            }
        }
    }

    /// A part of the daemon died: the loop stops and the daemon exits with
    /// `why` (the first reason kept).
    fn fail(&mut self, why: String) {
        tracing::error!("{why}");
        self.failed.get_or_insert(why);
    }

    /// Work done off the loop reports back here, to its handler.
    fn on_disk(&mut self, done: Result<Disk, tokio::task::JoinError>) {
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                // A panicked worker: the acks it held are dropped (their
                // lines are read again after the restart), and what it did
                // is unknown: stop rather than run on.
                self.fail(format!("a disk task of the core failed: {e}"));
                return;
            }
        };
        match done {
            Disk::Resolved { incident, resolved } => self.on_resolved(*incident, *resolved),
            Disk::ScheduleWritten {
                id,
                durable,
                unresolvable,
                lines,
            } => self.on_schedule_written(&id, durable, unresolvable, lines),
            Disk::Claimed { id, written } => self.on_claimed(&id, written),
            Disk::Completed {
                id,
                outcome,
                plan,
                written,
            } => self.on_completed(&id, *outcome, *plan, written),
            Disk::Cancelled {
                id,
                store,
                view,
                written,
                reply,
            } => self.on_cancelled(id, store, *view, written, reply),
            Disk::Recent(events) => self.seed_recent(events),
            Disk::Adopted {
                store,
                zag_id,
                adopted,
            } => self.on_adopted(&store, &zag_id, adopted),
        }
    }

    /// A seen incident's session is resolved: it is its session's live
    /// incident ([`plan::plan_live`]), a limit already known
    /// ([`plan::known`]), or new: then it is written off the loop.
    fn on_resolved(
        &mut self,
        mut incident: Incident,
        resolved: Result<resume::ResolvedTarget, resume::Unresolved>,
    ) {
        self.file_sessions();
        plan::settle(&mut incident, resolved.as_ref().ok());
        let acks = incident.state.take_acks();
        let State::Seen {
            detection,
            hit_event,
            ..
        } = std::mem::replace(&mut incident.state, State::Writing { acks })
        else {
            return;
        };
        let schedule = incident.schedule.clone();
        // One live resume per session, before the dedupe: a second sighting
        // of a re-hit is the chain's incident, whatever its attempt says.
        let filed = self.sessions.of(&schedule);
        let live: Vec<&Incident> = filed
            .iter()
            .filter_map(|x| self.incidents.get(&x.incident_id))
            .collect();
        let known = match plan::plan_live(&schedule, &live) {
            plan::LivePlan::New => {
                tracing::debug!(incident = %schedule.incident_id, "planner: no live resume of this session stands in the way; checking the stores for the same limit");
                let (limits, _) = self
                    .limits
                    .get(&project_of_store(&self.paths, &incident.store));
                let writing = live
                    .iter()
                    .filter(|i| matches!(i.state, State::Writing { .. }))
                    .map(|i| i.schedule.as_ref());
                let replays = self.stores.values().map(StoreFollower::replay);
                plan::known(&schedule, plan::slack(&limits), replays, writing)
            }
            plan::LivePlan::Is(existing) => {
                tracing::debug!(incident = %existing, file = %schedule.source_file.as_deref().unwrap_or(""), "limit of a session with a live resume: that resume");
                Some(existing)
            }
            plan::LivePlan::NextAttempt(running) => {
                let acks = incident.state.take_acks();
                let Some(store) = self
                    .incidents
                    .get(&running.incident_id)
                    .map(|i| i.store.clone())
                else {
                    ack_all(acks);
                    return;
                };
                self.next_attempt(&running, &store, *detection, acks);
                return;
            }
        };
        if let Some(existing) = known.or_else(|| {
            self.incidents
                .contains_key(&schedule.incident_id)
                .then(|| schedule.incident_id.clone())
        }) {
            if !self.tell_folded_into_ended(&existing, &schedule) {
                tracing::debug!(incident = %existing, file = %schedule.source_file.as_deref().unwrap_or(""), "limit already known");
            }
            let acks = incident.state.take_acks();
            self.join(&existing, acks);
            return;
        }
        tracing::debug!(incident = %schedule.incident_id, store = %incident.store.display(), "planner: a new incident: writing its schedule");
        // Once per incident, not per line that shows it (subscribers and
        // desktop notifications would see duplicates otherwise).
        self.publish(*hit_event);
        let lines = plan::hit_log_lines(&schedule, &detection, self.clock.now());
        let store = incident.store.clone();
        let id = schedule.incident_id.clone();
        self.sessions.add(&schedule);
        self.incidents.insert(id.clone(), incident);
        let unresolvable = resolved.err().map(|e| e.to_string());
        self.write_schedule(id, store, schedule, unresolvable, lines, 0);
    }

    /// Append a new incident's `schedule` off the loop after `failures`
    /// failed tries' backoff, then its zag-log lines (a dry run writes
    /// nothing).
    fn write_schedule(
        &mut self,
        id: String,
        store: Arc<Path>,
        schedule: Arc<Schedule>,
        unresolvable: Option<String>,
        lines: Vec<plan::LogLine>,
        failures: u32,
    ) {
        let dry_run = self.user.dry_run;
        self.spawn_disk(&store.clone(), backoff(failures), move || {
            crate::fault::panic_point("disk");
            let durable = if dry_run {
                Err(user::DRY_RUN_NOT_WRITTEN.to_string())
            } else {
                StoreFile::new(store.as_ref())
                    .append(&Record::Schedule((*schedule).clone()))
                    .map_err(|e| e.to_string())
            };
            if durable.is_ok() {
                append_lines(&lines);
            }
            Disk::ScheduleWritten {
                id,
                durable,
                unresolvable,
                lines,
            }
        });
    }

    /// Run disk work for `store` on a blocking worker, after `delay` (a
    /// retry's backoff; the wait itself holds no thread), or sooner: at a
    /// change in the directory of a store in outage, or at its end.
    fn spawn_disk(
        &mut self,
        store: &Path,
        delay: std::time::Duration,
        f: impl FnOnce() -> Disk + Send + 'static,
    ) {
        if delay.is_zero() {
            self.work.spawn_blocking(f);
            return;
        }
        let wake = self
            .outage_watches
            .get(store)
            .map(outage::OutageWatch::wake);
        self.work.spawn(async move {
            match wake {
                Some(wake) => tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = wake.woken() => {}
                },
                None => tokio::time::sleep(delay).await,
            }
            match tokio::task::spawn_blocking(f).await {
                Ok(done) => done,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("a disk task of the core was cancelled: {e}"),
            }
        });
    }

    /// Say when a failed write is tried again (debug): after its backoff,
    /// or sooner at a change in the store's directory.
    fn note_retry(&self, id: &str, store: &Path, failures: u32) {
        tracing::debug!(
            incident = %id, store = %store.display(), failures,
            retry_in_ms = backoff(failures).as_millis() as u64,
            watched = self.outage_watches.contains_key(store),
            "write failed; retried after the backoff or at a change in the store's directory"
        );
    }

    /// A write to `store` succeeded or failed: its outage ends, or starts
    /// (logged and told once, for `status` and a notification).
    fn store_written(&mut self, store: &Path, result: &Result<(), String>) {
        match result {
            Ok(()) => {
                if let Some(o) = self.outages.remove(store) {
                    tracing::info!(store = %store.display(), since = %o.since, "the store can be written again");
                }
                // Its other records waiting go now.
                self.outage_watches.remove(store);
            }
            Err(e) => {
                if let Some(o) = self.outages.get_mut(store) {
                    o.error = e.clone();
                    return;
                }
                self.outage_watches
                    .insert(store.to_path_buf(), outage::OutageWatch::start(store));
                let at = self.clock.now();
                tracing::error!(store = %store.display(), "cannot write the store: {e}; its records wait (hits unacknowledged, resumes armed from memory, none delivered) and are retried");
                self.outages.insert(
                    store.to_path_buf(),
                    crate::control::StoreOutage {
                        store: store.display().to_string(),
                        since: at,
                        error: e.clone(),
                        waiting: 0,
                    },
                );
                self.publish(IncidentEvent::StoreUnwritable {
                    incident_id: String::new(),
                    store: store.display().to_string(),
                    error: e.clone(),
                    at,
                });
            }
        }
    }

    /// Sightings of an incident known already: they wait with it while it
    /// is not yet durable, else they are settled now.
    fn join(&mut self, id: &str, acks: Vec<Ack>) {
        match self.incidents.get_mut(id).map(|i| &mut i.state) {
            Some(State::Writing { acks: waiting } | State::Seen { acks: waiting, .. }) => {
                waiting.extend(acks)
            }
            _ => ack_all(acks),
        }
    }

    /// A new incident's `schedule` is durable: armed, its sightings acked;
    /// or recorded at once as failed when its session can never be
    /// resumed; or gone when a cancel landed right after it. Not durable:
    /// its sightings stay unacknowledged (the ingest offset does not move
    /// past them), it is armed from memory (a fire meanwhile waits for the
    /// record), and the write is retried with backoff.
    fn on_schedule_written(
        &mut self,
        id: &str,
        durable: Result<(), String>,
        unresolvable: Option<String>,
        lines: Vec<plan::LogLine>,
    ) {
        let Some(inc) = self.incidents.get_mut(id) else {
            return;
        };
        let schedule = inc.schedule.clone();
        let store = inc.store.clone();
        // A cancel came while it was being written: durable, its sightings
        // are settled; the cancel's own outcome decides the rest.
        if let (
            Ok(()),
            State::Done {
                cancel: Some(before),
                ..
            },
        ) = (&durable, &mut inc.state)
        {
            inc.failures = 0;
            ack_all(before.take_acks());
            self.store_written(&store, &durable);
            return;
        }
        let dry_run = matches!(&durable, Err(e) if e == user::DRY_RUN_NOT_WRITTEN);
        match &durable {
            Err(e) if !dry_run => {
                inc.failures += 1;
                let failures = inc.failures;
                if failures == 1 {
                    tracing::warn!(incident = %id, "cannot write its schedule to {}: {e}; not acknowledged, armed from memory, retrying", store.display());
                    self.timer.arm(id.to_string(), schedule.when);
                }
                self.store_written(&store, &durable);
                if self.stopping {
                    return;
                }
                self.note_retry(id, &store, failures);
                self.write_schedule(
                    id.to_string(),
                    store,
                    schedule,
                    unresolvable,
                    lines,
                    failures,
                );
                return;
            }
            _ => {}
        }
        inc.failures = 0;
        let acks = inc.state.take_acks();
        inc.state = State::Armed;
        let (provider, session_id) = (schedule.provider.clone(), schedule.session_id.clone());
        if dry_run {
            tracing::info!(
                incident = %id, %provider, session = %session_id, due = %schedule.when,
                "dry run: would record this limit's resume in {} (and the hit in the session's zag log); kept in memory only",
                store.display()
            );
        } else {
            self.store_written(&store, &durable);
        }
        if let Some(outcome) = plan::at_once(&schedule, unresolvable) {
            tracing::warn!(incident = %id, %provider, session = %session_id, "usage limit seen, not to be resumed: {outcome:?}");
            self.timer.disarm(id.to_string());
            self.on_outcome(id, outcome);
            ack_all(acks);
            return;
        }
        if durable.is_ok() {
            // Read whatever else landed in the store meanwhile: a cancel
            // appended right after our schedule must win.
            self.load_store(&store);
            if !self.incidents.contains_key(id) {
                // That read saw the cancel, untracked the incident and said
                // so ("cancelled in the store"): told once, not twice.
                ack_all(acks);
                return;
            }
        }
        let cancelled = durable.is_ok()
            && self
                .stores
                .get(store.as_ref())
                .is_some_and(|f| f.replay().tombstoned.contains(id));
        if cancelled {
            // Told like any other cancel, so status and subscribers agree
            // with the store; told once: the re-read above may already have
            // stopped and told it.
            self.timer.disarm(id.to_string());
            let still_tracked = self.untrack(id).is_some();
            ack_all(acks);
            if still_tracked {
                tracing::info!(incident = %id, "cancelled before its timer was armed");
                self.publish(IncidentEvent::Cancelled {
                    incident_id: id.to_string(),
                    at: self.clock.now(),
                });
            }
            return;
        }
        // Armed from the durable record (a fire that came while it was not
        // durable fires now: its time is past).
        self.timer.arm(id.to_string(), schedule.when);
        ack_all(acks);
        let (due, attempt) = (schedule.when, schedule.attempt);
        let scope = schedule.scope.clone().unwrap_or_default();
        tracing::info!(
            incident = %id, %provider, session = %session_id, scope = %scope,
            reset_at = %crate::control::render::opt_stamp(schedule.reset_at), resumes_at = %due, attempt, "usage limit: resume scheduled"
        );
        self.publish(IncidentEvent::Scheduled {
            incident_id: id.to_string(),
            provider,
            session_id,
            when: due,
            attempt,
            store: store.display().to_string(),
            at: self.clock.now(),
        });
    }

    /// A timer is due: an adoption probe, or an incident waiting for its
    /// time. The store is re-read first (a cancel that landed since the
    /// last file event wins), then [`plan::plan_fire`] decides.
    fn on_fired(&mut self, entry: TimerEntry) {
        let id = match entry.key {
            TimerKey::AdoptionProbe { store, zag_id } => {
                self.load_store(&store);
                self.consider_adoption(&store, &zag_id);
                return;
            }
            TimerKey::Incident(id) => id,
        };
        // Two pending of one session are one before either fires.
        self.file_sessions();
        let Some(inc) = self.incidents.get(&id) else {
            return;
        };
        if !inc.state.is_waiting() {
            return;
        }
        let store = inc.store.clone();
        if self.hold_if_paused(&id) {
            return;
        }
        if self.user.dry_run {
            self.dry_fire(&id);
            return;
        }
        self.load_store(&store);
        let Some(inc) = self.incidents.get_mut(&id) else {
            return;
        };
        if !inc.state.is_waiting() {
            return;
        }
        let schedule = inc.schedule.clone();
        let (limits, _) = self.limits.get(&project_of_store(&self.paths, &store));
        let replays = self.stores.values().map(StoreFollower::replay);
        if let plan::FirePlan::Skip { reason } = plan::plan_fire(&schedule, &limits, replays) {
            tracing::debug!(incident = %id, "planner: not delivered: {reason}");
            self.on_outcome(&id, Outcome::Skipped { reason });
            return;
        }
        tracing::debug!(incident = %id, "planner: deliver (no zag scheduler owns this limit, no cancel in the store)");
        if let Some(inc) = self.incidents.get_mut(&id) {
            inc.state = State::Due;
        }
        self.claim(id, store, 0);
    }

    /// Make a due incident's claim off the loop, after `failures` failed
    /// tries' backoff.
    fn claim(&mut self, id: String, store: Arc<Path>, failures: u32) {
        let attempts = resume::attempt::Attempts::new(&self.paths.state_dir);
        self.spawn_disk(&store.clone(), backoff(failures), move || Disk::Claimed {
            written: StoreFile::new(store.as_ref())
                .claim()
                .map(|()| attempts.claim(&id))
                .map_err(|e| e.to_string()),
            id,
        });
    }

    /// A due incident's claim is made: delivered now under its attempt,
    /// recorded as delivered when an earlier run's attempt had started
    /// (see [`resume::attempt`]), or looked at again in
    /// [`ATTEMPT_RECHECK_SECS`] when its attempt cannot be read or made.
    /// Not made: it waits, retried with backoff (a delivery it could not
    /// record would be delivered again after a crash).
    fn on_claimed(&mut self, id: &str, written: Result<resume::attempt::Claim, String>) {
        let Some(inc) = self.incidents.get_mut(id) else {
            return;
        };
        if !matches!(inc.state, State::Due) {
            return;
        }
        let store = inc.store.clone();
        let claim = match written {
            Ok(claim) => claim,
            Err(e) => {
                inc.failures += 1;
                let failures = inc.failures;
                if failures == 1 {
                    tracing::warn!(incident = %id, "due, but {} cannot be written: {e}; the delivery waits until it can", store.display());
                }
                self.store_written(&store, &Err(e));
                if self.stopping {
                    return;
                }
                self.note_retry(id, &store, failures);
                self.claim(id.to_string(), store, failures);
                return;
            }
        };
        inc.failures = 0;
        let attempt = match claim {
            resume::attempt::Claim::Deliver(a) => a,
            resume::attempt::Claim::Delivered { why } => {
                self.store_written(&store, &Ok(()));
                tracing::info!(incident = %id, "{why}");
                self.on_outcome(id, Outcome::Resumed { detail: why });
                return;
            }
            resume::attempt::Claim::Defer { why } => {
                let until = self.clock.now() + chrono::Duration::seconds(ATTEMPT_RECHECK_SECS);
                tracing::warn!(incident = %id, recheck_at = %until, "not delivering now: {why}");
                inc.state = State::Deferred { until };
                self.timer.arm(id.to_string(), until);
                self.store_written(&store, &Ok(()));
                return;
            }
        };
        self.store_written(&store, &Ok(()));
        let Some(inc) = self.incidents.get_mut(id) else {
            return;
        };
        inc.state = State::Delivering {
            since: self.clock.now(),
        };
        let schedule = inc.schedule.clone();
        let mut live = inc.live.as_deref().cloned().unwrap_or_default();
        // Where the typing intent and the notification are recorded.
        live.store = Some(store.to_path_buf());
        let (_, detector) = self.limits.get(&project_of_store(&self.paths, &store));
        tracing::info!(incident = %schedule.incident_id, provider = %schedule.provider, session = %schedule.session_id, "resume due: delivering");
        let env = self.env.clone();
        let tx = self.outcomes_tx.clone();
        let cancel = self.cancel_deliveries.child_token();
        // The resumed run's output is judged by the project's own
        // detector (its `extra_patterns`), as the session's lines were.
        let detect: resume::DetectFn = Arc::new(move |line, ctx| detector.detect(line, ctx));
        self.deliveries.spawn(async move {
            let outcome = resume::deliver_claimed(
                &schedule,
                &env,
                &cancel,
                Some(detect),
                &live,
                Some(&attempt),
            )
            .await;
            let _ = tx.send((schedule.incident_id.clone(), outcome));
        });
    }

    /// How a delivery ended (or why an incident ends without one): done,
    /// its `complete` written durably (the commit point), then the
    /// lifecycle line in the zag log, both off the loop; until then no
    /// cancel and no second fire. A deferral goes back to waiting instead.
    fn on_outcome(&mut self, id: &str, outcome: Outcome) {
        if self.user.dry_run {
            self.dry_outcome(id, outcome);
            return;
        }
        if let Outcome::Deferred {
            until,
            view,
            state,
            holder,
        } = outcome
        {
            self.on_deferred(id, until, view, state);
            self.watch_holder(id, holder);
            return;
        }
        let Some(inc) = self.incidents.get_mut(id) else {
            return;
        };
        inc.state = State::Done {
            fired_at: inc.state.running_since(),
            cancel: None,
        };
        let plan = Box::new(plan::plan_outcome(
            &inc.schedule,
            &outcome,
            self.clock.now(),
        ));
        tracing::debug!(
            incident = %id, again = plan.again.is_some(),
            "planner: record {}",
            plan.record.to_line().trim_end()
        );
        // When and how it ended, in keys zag ignores (for `history`).
        let detail = match &outcome {
            Outcome::Resumed { detail } => Some(detail.as_str()),
            _ => None,
        };
        let extra = crate::control::history::annotations(self.clock.now(), detail);
        let store = inc.store.clone();
        self.write_complete(id.to_string(), store, Box::new(outcome), plan, extra, 0);
    }

    /// Append an ended incident's `complete` (then its zag-log line) off the
    /// loop, after `failures` failed tries' backoff.
    fn write_complete(
        &mut self,
        id: String,
        store: Arc<Path>,
        outcome: Box<Outcome>,
        plan: Box<plan::OutcomePlan>,
        extra: [(&'static str, serde_json::Value); 2],
        failures: u32,
    ) {
        let attempts = resume::attempt::Attempts::new(&self.paths.state_dir);
        self.spawn_disk(&store.clone(), backoff(failures), move || {
            let written = StoreFile::new(store.as_ref())
                .append_with(&plan.record, &extra)
                .map_err(|e| e.to_string());
            if written.is_ok() {
                // Its `complete` is durable: its attempts are history.
                attempts.finish(&id);
                append_lines(plan.log.as_slice());
            }
            Disk::Completed {
                id,
                outcome,
                plan,
                written,
            }
        });
    }

    /// A delivery deferred to a later time (the session's live owner or
    /// its provider's own continue has it): no `complete`, the incident
    /// stays the one pending incident of its session, its timer re-armed.
    fn on_deferred(
        &mut self,
        id: &str,
        until: DateTime<Utc>,
        view: resume::live::RouteView,
        state: resume::route::LiveState,
    ) {
        let Some(inc) = self.incidents.get_mut(id) else {
            return;
        };
        // Nothing was delivered: later lines of the session are not its
        // resumed run's (see `plan::plan_live`).
        inc.state = State::Deferred { until };
        inc.live = Some(Box::new(state));
        // Told once per change: a stand-down re-checked every 30 s would
        // otherwise fill `recent` and every subscriber with the same line.
        let changed = inc.route.as_deref() != Some(&view);
        inc.route = Some(Box::new(view.clone()));
        let (provider, session_id) = (
            inc.schedule.provider.clone(),
            inc.schedule.session_id.clone(),
        );
        self.timer.arm(id.to_string(), until);
        tracing::info!(incident = %id, continued_by = %view.by.describe(), recheck_at = %until, "not now: {}", view.why);
        if !changed {
            return;
        }
        self.publish(IncidentEvent::Routed {
            incident_id: id.to_string(),
            provider,
            session_id,
            continued_by: view.by.describe(),
            why: view.why,
            recheck_at: Some(until),
            notify: view.notify,
            at: self.clock.now(),
        });
    }

    /// Watch the process that holds a deferred incident's session, so its
    /// exit brings the next look forward ([`holder_watch`]); one watch per
    /// incident, kept while it is the same process.
    fn watch_holder(&mut self, id: &str, holder: Option<crate::live::proc::Pid>) {
        if let (Some(pid), Some((watched, task))) = (holder, self.holder_watches.get(id)) {
            if *watched == pid && !task.is_finished() {
                return;
            }
        }
        if let Some((_, old)) = self.holder_watches.remove(id) {
            old.abort();
        }
        let Some(pid) = holder else {
            return;
        };
        if !self.incidents.contains_key(id) {
            return;
        }
        if let Some(task) = holder_watch::watch(id.to_string(), pid, self.holder_tx.clone()) {
            self.holder_watches.insert(id.to_string(), (pid, task));
        }
    }

    /// The process that held a deferred incident's session exited: look
    /// again shortly, instead of at the re-check.
    fn on_holder_exited(&mut self, id: &str, pid: crate::live::proc::Pid) {
        if self.holder_watches.get(id).is_some_and(|(p, _)| *p == pid) {
            self.holder_watches.remove(id);
        }
        let soon = self.clock.now() + chrono::Duration::seconds(holder_watch::SETTLE_SECS);
        let Some(inc) = self.incidents.get_mut(id) else {
            return;
        };
        let State::Deferred { until } = inc.state else {
            return;
        };
        if until <= soon {
            return;
        }
        inc.state = State::Deferred { until: soon };
        self.timer.arm(id.to_string(), soon);
        tracing::info!(incident = %id, pid, recheck_at = %soon, was = %until, "the process that held the session exited: looking again now");
    }

    /// An ended incident's `complete` is written: it leaves the table; a
    /// re-hit of its resumed run becomes the chain's next attempt.
    /// Not written: the incident stays done (no cancel, no second fire) and
    /// the write is retried with backoff.
    fn on_completed(
        &mut self,
        id: &str,
        outcome: Outcome,
        plan: plan::OutcomePlan,
        written: Result<(), String>,
    ) {
        let Some(inc) = self.incidents.get_mut(id) else {
            return;
        };
        let store = inc.store.clone();
        if let Err(e) = &written {
            inc.failures += 1;
            let failures = inc.failures;
            if failures == 1 {
                tracing::warn!(incident = %id, "cannot record its outcome in {}: {e}; retrying", store.display());
            }
            self.store_written(&store, &written);
            if self.stopping {
                tracing::error!(incident = %id, "stopping with its outcome unrecorded: the next start delivers it again");
                return;
            }
            self.note_retry(id, &store, failures);
            let extra = crate::control::history::annotations(
                self.clock.now(),
                match &outcome {
                    Outcome::Resumed { detail } => Some(detail.as_str()),
                    _ => None,
                },
            );
            self.write_complete(
                id.to_string(),
                store,
                Box::new(outcome),
                Box::new(plan),
                extra,
                failures,
            );
            return;
        }
        self.store_written(&store, &written);
        let Some(inc) = self.untrack(id) else {
            return;
        };
        self.load_store(&inc.store);
        match outcome {
            Outcome::Resumed { detail } => tracing::info!(incident = %id, "resumed: {detail}"),
            Outcome::Skipped { reason } => tracing::info!(incident = %id, "not resumed: {reason}"),
            Outcome::NeedsUser { what } => {
                tracing::warn!(incident = %id, "not resumed, no wait lifts this limit: {what}")
            }
            Outcome::Failed { reason } => tracing::warn!(incident = %id, "resume failed: {reason}"),
            Outcome::LimitAgain { detail, .. } => {
                tracing::warn!(incident = %id, "limit hit again: {detail}")
            }
            Outcome::Deferred { view, .. } => {
                tracing::warn!(incident = %id, "recorded a deferral as final: {}", view.why)
            }
        }
        self.publish(plan.event);
        if let Some(detection) = plan.again {
            self.next_attempt(&inc.schedule, &inc.store, detection, Vec::new());
        }
        self.maybe_compact(&inc.store);
    }

    /// The chain's next attempt after `running` (its resumed run hit the
    /// limit again: the delivery's `LimitAgain`, or a line of the session
    /// seen first), planned by [`plan::plan_reschedule`] in its own
    /// project: a new incident seen (through [`Self::see`], `acks` waiting
    /// with it), or giving up at `max_attempts`.
    fn next_attempt(
        &mut self,
        running: &Schedule,
        store: &Path,
        detection: Detection,
        acks: Vec<Ack>,
    ) {
        let project = project_of_store(&self.paths, store);
        let (limits, _) = self.limits.get(&project);
        match plan::plan_reschedule(running, detection, &limits, self.clock.now()) {
            None => {
                tracing::debug!(incident = %running.incident_id, provider = %running.provider, "planner: no next attempt: unknown provider");
                ack_all(acks)
            }
            Some(plan::Reschedule::GiveUp { event }) => {
                tracing::warn!(incident = %running.incident_id, "limit hit again; giving up after {} attempts (max_attempts)", running.attempt);
                self.publish(event);
                ack_all(acks);
            }
            Some(plan::Reschedule::Retry {
                detection,
                file,
                source,
                session,
                attempt,
            }) => {
                tracing::info!(incident = %running.incident_id, attempt, "limit hit again: the chain's next attempt");
                let session = plan::session_of(&detection, &file, source, &session, None);
                let facts = plan::HitFacts {
                    detection: &detection,
                    file: &file,
                    source,
                    session: &session,
                    project: &project,
                    attempt,
                    chain: Some(running),
                };
                self.see(&facts, acks);
            }
        }
    }

    fn on_request(&mut self, req: DaemonRequest) {
        match req {
            DaemonRequest::Status(reply) => {
                let _ = reply.send(self.status());
            }
            DaemonRequest::List(reply) => {
                let _ = reply.send(self.pending_views());
            }
            DaemonRequest::Cancel { incident_id, reply } if self.user.dry_run => {
                let _ = reply.send(Err(format!(
                    "no pending incident {incident_id}: this daemon runs with --dry-run and writes nothing (its incidents live in memory and are never delivered)"
                )));
            }
            DaemonRequest::Cancel { incident_id, reply } => self.cancel(&incident_id, reply),
            DaemonRequest::Pause { until, reply } => {
                let _ = reply.send(self.pause(until));
            }
            DaemonRequest::Unpause(reply) => {
                let _ = reply.send(self.unpause());
            }
            DaemonRequest::Binaries(reply) => {
                let _ = reply.send(self.binaries());
            }
            DaemonRequest::Reload(reply) => {
                sd_notify(&crate::systemd::reloading_message());
                let _ = reply.send(self.reload());
                sd_notify("READY=1");
            }
            DaemonRequest::Subscribe(reply) => {
                let _ = reply.send(self.events.subscribe());
            }
            // The loop handles Stop before dispatching here.
            DaemonRequest::Stop(reply) => {
                let _ = reply.send(());
            }
        }
    }

    /// A cancel by request: the timer stops at once and the incident is
    /// held (no fire, no second cancel) while the `cancel` record is
    /// A cancel by request: the timer stops at once and the incident is
    /// done, its `cancel` record appended off the loop (no fire, no second
    /// cancel meanwhile); the reply comes once it is durable.
    fn cancel(&mut self, id: &str, reply: CancelReply) {
        let found = self.stores.iter().find_map(|(p, f)| {
            f.replay()
                .pending
                .get(id)
                .map(|s| (p.clone(), PendingView::of(s, p)))
        });
        let state = self.incidents.get(id).map(|i| &i.state);
        let (path, view) = match plan::plan_cancel(id, found, state) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(incident = %id, "planner: cancel refused: {e}");
                let _ = reply.send(Err(e));
                return;
            }
        };
        tracing::debug!(incident = %id, store = %path.display(), "planner: cancel: writing the tombstone");
        self.timer.disarm(id);
        if let Some(inc) = self.incidents.get_mut(id) {
            let before = std::mem::replace(&mut inc.state, State::Armed);
            inc.state = State::Done {
                fired_at: None,
                cancel: Some(Box::new(before)),
            };
        }
        let id = id.to_string();
        let extra = crate::control::history::annotations(
            self.clock.now(),
            Some(crate::control::offline::CANCELLED_BY_DAEMON),
        );
        self.work.spawn_blocking(move || {
            let written = StoreFile::new(&path)
                .append_with(
                    &Record::Cancel {
                        incident_id: id.clone(),
                    },
                    &extra,
                )
                .map_err(|e| format!("cannot write {}: {e}", path.display()));
            Disk::Cancelled {
                id,
                store: path,
                view: Box::new(view),
                written,
                reply,
            }
        });
    }

    fn on_cancelled(
        &mut self,
        id: String,
        store: PathBuf,
        view: PendingView,
        written: Result<(), String>,
        reply: CancelReply,
    ) {
        if let Err(e) = written {
            // Not cancelled after all: waiting again as it was.
            if let Some(inc) = self.incidents.get_mut(&id) {
                if let State::Done {
                    cancel: Some(before),
                    ..
                } = std::mem::replace(&mut inc.state, State::Armed)
                {
                    inc.state = *before;
                }
                let due = match inc.state {
                    State::Deferred { until } => until,
                    _ => inc.schedule.when,
                };
                self.timer.arm(id.clone(), due);
            }
            let _ = reply.send(Err(e));
            return;
        }
        if let Some(State::Done {
            cancel: Some(before),
            ..
        }) = self.incidents.get_mut(&id).map(|i| &mut i.state)
        {
            // Cancelled while its schedule was being written: nothing of
            // its sightings is left to keep.
            ack_all(before.take_acks());
        }
        self.untrack(&id);
        self.load_store(&store);
        tracing::info!(incident = %id, "cancelled on request; timer stopped");
        self.publish(IncidentEvent::Cancelled {
            incident_id: id,
            at: self.clock.now(),
        });
        let _ = reply.send(Ok(view));
    }

    fn reload(&mut self) -> Result<String, crate::config::ConfigError> {
        let default_path = self.paths.state_dir.join("config.toml");
        let new = DaemonConfig::load(self.config_path.as_deref(), &default_path)?;
        let mut changes = Vec::new();
        for (changed, what) in [
            (new.resume != self.config.resume, "resume"),
            (new.binaries != self.config.binaries, "binaries"),
            (new.notify != self.config.notify, "notify"),
            (
                new.watch != self.config.watch,
                "watch (takes effect on restart)",
            ),
            (
                new.dirs != self.config.dirs,
                "dirs (takes effect on restart)",
            ),
        ] {
            if changed {
                changes.push(what);
            }
        }
        let mut env = (*self.env).clone();
        env.config = new.resume.clone();
        env.binaries = new.binaries.clone();
        if new.resume.max_concurrent != self.config.resume.max_concurrent {
            env.limiter = Arc::new(tokio::sync::Semaphore::new(new.resume.max_concurrent));
        }
        self.env = Arc::new(env);
        if new.notify != self.config.notify {
            self.notifier.apply(&new.notify);
        }
        self.config = new;
        // zag.toml files are re-read on next use.
        self.limits = LimitsCache::default();
        let msg = if changes.is_empty() {
            "configuration reloaded: nothing changed".to_string()
        } else {
            format!("configuration reloaded: changed {}", changes.join(", "))
        };
        tracing::info!(pending = self.incidents.len(), "{msg}");
        Ok(msg)
    }

    fn pending_views(&self) -> Vec<PendingView> {
        let mut v: Vec<PendingView> = self
            .stores
            .iter()
            .flat_map(|(p, f)| {
                f.replay()
                    .pending
                    .values()
                    .map(move |s| PendingView::of(s, p))
            })
            .collect();
        if self.user.dry_run {
            // Its own incidents are in memory only.
            let known: std::collections::HashSet<String> =
                v.iter().map(|p| p.incident_id.clone()).collect();
            v.extend(
                self.incidents
                    .values()
                    .filter(|i| i.state.is_waiting() && !known.contains(i.id()))
                    .map(|i| PendingView::of(&i.schedule, &i.store)),
            );
        }
        for p in &mut v {
            if let Some((by, why)) = self.held_view(&p.incident_id) {
                p.continued_by = Some(by);
                p.continued_by_why = Some(why);
                continue;
            }
            let (by, why) = match self.incidents.get(&p.incident_id) {
                Some(Incident { route: Some(r), .. }) => (r.by.describe(), r.why.clone()),
                Some(_) => (
                    "the daemon (decided at the reset)".to_string(),
                    "at the reset: the CLI's own continue if it is armed in the open TUI, the TUI's pane if the session is open in tmux, a respawn if no process holds it".to_string(),
                ),
                None if p.origin.is_none() => (
                    "zag (its own scheduled resume)".to_string(),
                    "a record of zag's own scheduler".to_string(),
                ),
                None => continue,
            };
            p.continued_by = Some(by);
            p.continued_by_why = Some(why);
        }
        v.sort_by(|a, b| {
            a.when
                .cmp(&b.when)
                .then_with(|| a.incident_id.cmp(&b.incident_id))
        });
        v
    }

    fn status(&self) -> StatusSnapshot {
        let watched = IngestStats::SOURCES
            .iter()
            .map(|s| {
                (
                    s.as_str().to_string(),
                    self.stats.files[IngestStats::slot(*s)]
                        .load(std::sync::atomic::Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        StatusSnapshot {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.started_at,
            now: self.clock.now(),
            watched,
            pending: self.pending_views(),
            recent: self.recent.iter().cloned().collect(),
            unwritable: self.outage_views(),
            paused: self.user.paused_at(self.clock.now()).cloned(),
            dry_run: self.user.dry_run,
        }
    }

    /// The stores that cannot be written, each with the records waiting on
    /// it (a schedule, claim or complete that failed and is retried).
    fn outage_views(&self) -> Vec<crate::control::StoreOutage> {
        let mut v: Vec<_> = self
            .outages
            .iter()
            .map(|(path, o)| crate::control::StoreOutage {
                waiting: self
                    .incidents
                    .values()
                    .filter(|i| i.failures > 0 && i.store.as_ref() == path.as_path())
                    .count(),
                ..o.clone()
            })
            .collect();
        v.sort_by(|a, b| a.store.cmp(&b.store));
        v
    }

    fn publish(&mut self, ev: IncidentEvent) {
        if !matches!(
            ev,
            IncidentEvent::Hit { .. } | IncidentEvent::Scheduled { .. }
        ) {
            // The same outcome read from the stores at start (see
            // `seed_recent`) is this one: shown once.
            self.recent.retain(|e| !user::same_outcome(e, &ev));
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(ev.clone());
        }
        let _ = self.events.send(ev);
    }

    /// Let in-flight deliveries finish (and record them) within the drain
    /// timeout; what is still running is abandoned and stays pending in its
    /// store, so the next start delivers it.
    async fn drain(&mut self, outcomes: &mut mpsc::UnboundedReceiver<(String, Outcome)>) {
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(self.config.resume.drain_timeout_secs);
        while !self.deliveries.is_empty() {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!("{} resume(s) still running at shutdown; they stay pending and run again on the next start", self.deliveries.len());
                    self.cancel_deliveries.cancel();
                    self.deliveries.abort_all();
                    break;
                }
                Some((id, outcome)) = outcomes.recv() => self.on_outcome(&id, outcome),
                Some(_) = self.deliveries.join_next() => {}
                Some(done) = self.work.join_next(), if !self.work.is_empty() => self.on_disk(done),
            }
        }
        while let Ok((id, outcome)) = outcomes.try_recv() {
            self.on_outcome(&id, outcome);
        }
        self.finish_work().await;
    }

    /// Finish the disk work in flight (hits being resolved or written,
    /// outcomes and cancels being recorded); what it queues (a hit's write
    /// after its resolve, a re-hit) is finished too.
    async fn finish_work(&mut self) {
        while let Some(done) = self.work.join_next().await {
            self.on_disk(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_native_sessions_patterns_come_from_the_project_its_limits_come_from() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        let paths = Paths::new(dir.path(), None);
        let mut detectors = ProjectDetectors {
            paths: paths.clone(),
            cache: LimitsCache::default(),
        };
        let file = dir.path().join(".claude/projects/-repo/s.jsonl");
        let identity = SessionIdentity {
            cwd: Some(repo.display().to_string()),
            ..Default::default()
        };
        let got = detectors.detector_for(&file, SourceKind::ClaudeNative, &identity);
        let project = plan::project_of(&paths, &identity, |c| project_for_cwd(&paths, c));
        assert_eq!(project, paths.project_for_root(&repo.display().to_string()));
        assert!(Arc::ptr_eq(&got, &detectors.cache.get(&project).1));
        assert!(!Arc::ptr_eq(&got, &detectors.cache.get(&paths.zag_home).1));
    }

    #[test]
    fn native_sessions_use_the_store_zag_would_use() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        let paths = Paths::new(dir.path(), None);
        let p = project_for_cwd(&paths, &repo.join("sub").to_string_lossy());
        assert_eq!(p, paths.project_for_root(&repo.to_string_lossy()));
        assert_eq!(project_for_cwd(&paths, "/nonexistent/x"), paths.zag_home);
    }
}
