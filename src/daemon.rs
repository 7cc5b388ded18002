//! The daemon core: wiring and the one task that owns incident state.
//!
//! ```text
//!  ingest thread ──Hit/StoreChanged──▶ ┌──────────────┐ ──arm/disarm──▶ timer task
//!  control socket ──DaemonRequest────▶ │  core (here) │ ◀──due─────────┘
//!  resume tasks ──Outcome────────────▶ └──────────────┘ ──spawn──▶ resume::deliver
//! ```
//!
//! The core alone reads and writes the stores and owns the incident table;
//! everything else talks to it over channels. Its rules:
//! - a `schedule` is fsync'd before its timer is armed and before the ingest
//!   thread is told to move on (so a crash never loses a limit);
//! - right before delivery the store is re-read, and a tombstone (a cancel
//!   by `zag usage cancel` or `zag-resumed cancel`) wins;
//! - `complete` is appended after delivery. The commit point of a resume is
//!   that `complete` being durable: a crash between starting delivery and
//!   that fsync repeats that one delivery on restart, never loses it.
//! - on start every pending record we own is re-armed; past-due fires at once.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{DaemonConfig, UsageLimits};
use crate::control::{DaemonRequest, IncidentEvent, PendingView, StatusSnapshot};
use crate::desktop::Notifier;
use crate::detect::{Detection, Detector, Provider, SourceKind};
use crate::ingest::{self, DetectorSource, IngestEvent, IngestStats};
use crate::paths::{project_of_log, Paths};
use crate::resume::{self, zaglog, Outcome, ResumeEnv};
use crate::schedule::due_time;
use crate::session::SessionIdentity;
use crate::store::adopt::{adopt, adoption_decision, probe_owner, Adoption};
use crate::store::compact::{compact, should_compact, CompactOptions};
use crate::store::dedupe::{find_same_incident, incident_id_for, zag_owner_of, ResetWindow};
use crate::store::follow::StoreFollower;
use crate::store::{CompleteStatus, Record, ReplayChange, Schedule, StoreFile, ORIGIN};
use crate::timer::{self, TimerEntry, TimerHandle};
use crate::watch::Patterns;

/// Everything the daemon is started with.
pub struct Options {
    pub paths: Paths,
    pub config: DaemonConfig,
    /// The file `config` came from, re-read on reload.
    pub config_path: Option<PathBuf>,
    pub clock: Arc<dyn Clock>,
    /// PATH for provider binaries (`None`: this process's PATH).
    pub search_path: Option<OsString>,
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
}

/// How many recent outcomes `status` shows.
const RECENT: usize = 20;

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
                let (detector, invalid) = Detector::new(&limits);
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
        file: &Path,
        source: SourceKind,
        identity: &SessionIdentity,
    ) -> Arc<Detector> {
        // The same project the core will take the incident's limits from.
        let project = project_for_hit(&self.paths, source, file, identity, identity.cwd.as_deref());
        self.cache.get(&project).1
    }

    fn invalidate(&mut self, zag_toml: &Path) {
        self.cache.invalidate(zag_toml);
    }
}

/// The project dir zag would use for a working directory: the git top level
/// found by walking up to a `.git`, else the global dir (ZAG_INTEROP §1.1).
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

/// The store an incident found in `file` belongs to.
pub fn project_for_hit(
    paths: &Paths,
    source: SourceKind,
    file: &Path,
    identity: &SessionIdentity,
    cwd: Option<&str>,
) -> PathBuf {
    let from_log = |p: &Path| project_of_log(p);
    match source {
        SourceKind::ZagSession => from_log(file),
        _ => identity.zag_log.as_deref().and_then(from_log),
    }
    .or_else(|| cwd.map(|c| project_for_cwd(paths, c)))
    .unwrap_or_else(|| paths.zag_home.clone())
}

/// Timer ids of adoption re-probes carry this prefix (never a UUID).
const PROBE_PREFIX: &str = "adopt-probe:";

struct Incident {
    /// Shared by every incident of the store.
    store: Arc<Path>,
    /// Shared with the store's replay.
    schedule: Arc<Schedule>,
    in_flight: bool,
}

struct Core {
    paths: Paths,
    config: DaemonConfig,
    config_path: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    started_at: DateTime<Utc>,
    /// Every store we know, followed from its last read offset.
    stores: HashMap<PathBuf, StoreFollower>,
    /// Our pending incidents (armed or being delivered).
    incidents: crate::store::IdMap<Incident>,
    /// Re-probes of zag records whose owner may still deliver them.
    probes: HashMap<String, (PathBuf, String)>,
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
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
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
    let mut env = ResumeEnv::new(
        paths.clone(),
        config.resume.clone(),
        config.binaries.clone(),
        Detector::new(&UsageLimits::default()).0,
    );
    env.search_path = search_path;
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
        probes: HashMap::new(),
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
    };

    let notifications = crate::desktop::spawn_event_notifier(
        core.notifier.clone(),
        core.events.subscribe(),
        shutdown.clone(),
    );

    // Re-arm everything pending before any new line is read.
    let started = std::time::Instant::now();
    for store in crate::store::discover_stores(&paths.zag_home) {
        core.load_store(&store.path);
        core.maybe_compact(&store.path);
    }
    tracing::info!(
        pending = core.incidents.len(),
        took_ms = started.elapsed().as_millis() as u64,
        "re-armed pending resumes from disk"
    );

    let (ingest_tx, mut ingest_rx) = mpsc::unbounded_channel();
    let ingest = ingest::start(
        ingest::IngestSetup {
            patterns: Patterns::for_daemon(&paths, &config.watch),
            checkpoints_path: paths.state_dir.join("offsets.json"),
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
    let watchdog = crate::systemd::spawn_watchdog(shutdown.clone());
    tracing::info!(zag_home = %paths.zag_home.display(), socket = %socket.display(), pid = std::process::id(), "zag-resumed started; scanning sources");

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(ev) = ingest_rx.recv() => core.on_ingest(ev),
            Some(entry) = fired_rx.recv() => core.on_fired(entry),
            Some((id, outcome)) = outcomes_rx.recv() => core.on_outcome(&id, outcome),
            Some(_) = core.deliveries.join_next(), if !core.deliveries.is_empty() => {}
            Some(req) = requests.recv() => match req {
                DaemonRequest::Stop(reply) => { let _ = reply.send(()); break; }
                req => core.on_request(req),
            },
        }
    }

    sd_notify("STOPPING=1");
    tracing::info!("stopping: draining in-flight resumes");
    shutdown.cancel();
    // Dropping the receiver drops any queued hit with its ack, which frees
    // an ingest thread blocked waiting for one; then it can be joined.
    drop(ingest_rx);
    ingest.stop();
    core.drain(&mut outcomes_rx).await;
    timer_task.abort();
    server_stop.cancel();
    let _ = server.await;
    forward.abort();
    let _ = notifications.await;
    if let Some(w) = watchdog {
        w.abort();
    }
    Ok(())
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
    /// Read what is new in a store: arm our pending records, stop timers of
    /// incidents tombstoned from outside, consider zag's own records for
    /// adoption.
    fn load_store(&mut self, path: &Path) {
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
        let mut to_arm = Vec::new();
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
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        self.incidents.entry(s.incident_id.clone())
                    {
                        to_arm.push(TimerEntry {
                            due: s.when,
                            incident_id: s.incident_id.clone(),
                        });
                        slot.insert(Incident {
                            store: store.clone(),
                            schedule: s,
                            in_flight: false,
                        });
                    }
                }
                ReplayChange::Tombstoned(incident_id) => {
                    if self
                        .incidents
                        .get(&incident_id)
                        .is_some_and(|i| !i.in_flight)
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
            self.incidents.remove(&id);
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

    /// A pending `schedule` written by zag itself: leave it to a live owner,
    /// take it over once the owner is dead and its time passed by a grace.
    fn consider_adoption(&mut self, path: &Path, zag_id: &str) {
        let probe_id = format!("{PROBE_PREFIX}{zag_id}");
        let Some(follower) = self.stores.get(path) else {
            return;
        };
        let Some(rec) = follower.replay().pending.get(zag_id).cloned() else {
            self.probes.remove(&probe_id);
            return;
        };
        let now = self.clock.now();
        let grace = secs(self.config.resume.adopt_grace_secs);
        let owner = probe_owner(&self.paths.zag_home, &rec, now);
        match adoption_decision(&rec, owner, now, grace) {
            Adoption::Leave => {}
            Adoption::Wait(at) => {
                tracing::debug!(zag_incident = %zag_id, ?owner, probe_at = %at, "zag's own resume: left to its owner for now");
                self.timer.arm(probe_id.clone(), at);
                self.probes
                    .insert(probe_id, (path.to_path_buf(), zag_id.to_string()));
            }
            Adoption::Adopt => {
                self.probes.remove(&probe_id);
                match adopt(&StoreFile::new(path), follower.replay(), &rec, now) {
                    Ok(ours) => {
                        tracing::info!(zag_incident = %zag_id, incident = %ours.incident_id, "adopted a stranded zag resume whose owner is gone");
                        self.load_store(path);
                    }
                    Err(e) => tracing::error!("cannot adopt {zag_id} in {}: {e}", path.display()),
                }
            }
        }
    }

    /// Compact a store in the background once it is mostly dead records.
    /// Compaction is safe against concurrent appenders (ours and zag's).
    fn maybe_compact(&self, path: &Path) {
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
                self.on_hit(hit.detection, &hit.file, hit.source, &hit.identity, 1, None);
                let _ = hit.ack.send(());
            }
            IngestEvent::StoreChanged(path) => self.load_store(&path),
            IngestEvent::ConfigChanged(path) => self.limits.invalidate(&path),
            IngestEvent::Ready => {
                sd_notify("READY=1");
                tracing::info!(zag_home = %self.paths.zag_home.display(), pid = std::process::id(), "zag-resumed is watching");
            }
        }
    }

    /// A detected limit becomes a durable, armed incident (or is recognised
    /// as one already known). `chain` is the incident a re-hit continues.
    fn on_hit(
        &mut self,
        d: Detection,
        file: &Path,
        source: SourceKind,
        identity: &SessionIdentity,
        attempt: u32,
        chain: Option<&Schedule>,
    ) -> Option<String> {
        // A `usage_limit_hit` that names its scheduled resume belongs to the
        // scheduler that wrote it (a zag relay or exec loop, or this daemon's
        // own echo): its store record is the truth, adopted if the owner dies
        // (ZAG_INTEROP §3.3). Only orphan hits are ours to schedule.
        if d.zag_hit
            .as_ref()
            .is_some_and(|z| z.scheduled_resume_at.is_some())
        {
            tracing::debug!(file = %file.display(), "usage_limit_hit with a scheduled resume: owned by its scheduler");
            return None;
        }
        let now = self.clock.now();
        let from_chain = |f: fn(&Schedule) -> Option<String>| chain.and_then(f);
        let cwd = d
            .cwd
            .clone()
            .or_else(|| identity.cwd.clone())
            .or_else(|| from_chain(|c| c.cwd.clone()));
        let project = project_for_hit(&self.paths, source, file, identity, cwd.as_deref());
        let (limits, _) = self.limits.get(&project);
        let provider = d.provider;
        let wrapper = d
            .wrapper_session_id
            .clone()
            .or_else(|| identity.wrapper_session_id.clone())
            .or_else(|| from_chain(|c| c.wrapper_session_id.clone()));
        let provider_session_id = d
            .provider_session_id
            .clone()
            .filter(|p| Some(p) != wrapper.as_ref())
            .or_else(|| identity.provider_session_id.clone())
            .or_else(|| from_chain(|c| c.provider_session_id.clone()));
        let session_id = wrapper
            .clone()
            .or_else(|| provider_session_id.clone())
            .unwrap_or_else(|| "unknown".into());
        let hit_at = d.line_ts.unwrap_or(now);
        let hit = |incident_id: String| IncidentEvent::Hit {
            incident_id,
            provider: provider.to_string(),
            session_id: session_id.clone(),
            scope: d.scope.as_str().into(),
            reset_at: d.reset_at,
            file: file.display().to_string(),
            at: now,
        };
        if !limits.enabled_for(provider) {
            tracing::info!(%provider, session = %session_id, "usage limit seen; auto-resume is disabled for it in zag.toml");
            self.publish(hit(String::new()));
            return None;
        }
        let session_key = wrapper
            .clone()
            .or_else(|| provider_session_id.clone())
            .unwrap_or_else(|| file.display().to_string());
        let window = d
            .reset_at
            .map_or(ResetWindow::Hit(hit_at), ResetWindow::Reset);
        let incident_id = incident_id_for(provider.as_str(), &session_key, window, attempt);
        let (due, fallback_used) = due_time(d.reset_at, provider, &limits, now, &incident_id);
        let log_path = match source {
            SourceKind::ZagSession => Some(file.to_path_buf()),
            _ => identity.zag_log.clone(),
        }
        .or_else(|| {
            chain
                .map(|c| PathBuf::from(&c.log_path))
                .filter(|p| !p.as_os_str().is_empty())
        });
        let mut schedule = Schedule {
            incident_id: incident_id.clone(),
            session_id: session_id.clone(),
            provider: provider.to_string(),
            model: identity
                .model
                .clone()
                .or_else(|| from_chain(|c| c.model.clone())),
            root: None,
            when: due,
            message: limits.resume_message_for(provider).to_string(),
            attempt,
            log_path: log_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            origin: Some(ORIGIN.into()),
            scope: Some(d.scope.as_str().into()),
            reset_at: d.reset_at,
            fallback_used: Some(fallback_used),
            provider_session_id,
            wrapper_session_id: wrapper,
            cwd,
            prompt: identity
                .last_prompt
                .clone()
                .or_else(|| from_chain(|c| c.prompt.clone())),
            source_file: Some(file.display().to_string()),
            hit_at: Some(hit_at),
            chain_id: chain.map(|c| c.chain_id.clone().unwrap_or_else(|| c.incident_id.clone())),
            raw: Some(truncate(&d.raw, 512)),
        };
        // Resolve the session now: a resume that can never be delivered
        // fails at once, and every source of one limit carries the same
        // provider session id (a relay's log never names Claude's).
        let resolved = resume::resolve_target(&schedule, &self.env);
        if let Ok(t) = &resolved {
            fill(
                &mut schedule.provider_session_id,
                t.provider_session_id.clone(),
            );
            fill(
                &mut schedule.cwd,
                t.cwd.as_ref().map(|p| p.display().to_string()),
            );
            fill(&mut schedule.model, t.model.clone());
            fill(&mut schedule.prompt, t.prompt.clone());
        }
        // Only a resume that sends the prompt again (Gemini's) needs it; for
        // the others it would be up to 64 KB of the user's text copied into
        // every record for nothing (store size, start-up replay, privacy).
        if !crate::provider::of(provider).resends_prompt() {
            schedule.prompt = None;
        }
        let slack = secs(
            limits
                .jitter_secs
                .saturating_add(limits.stagger_secs)
                .saturating_add(300),
        );
        if let Some(existing) = self.find_existing(&schedule, slack) {
            tracing::debug!(incident = %existing, file = %file.display(), "limit already known");
            return None;
        }
        // Once per incident, not per line that shows it (subscribers and
        // desktop notifications would see duplicates otherwise).
        self.publish(hit(incident_id.clone()));
        let store_path = Paths::store_in(&project);
        let durable = StoreFile::new(&store_path).append(&Record::Schedule(schedule.clone()));
        if let Some(log) = &log_path {
            self.log_hit(log, &schedule, &d);
        }
        if let Err(reason) = resolved {
            tracing::warn!(incident = %incident_id, %provider, session = %session_id, "usage limit seen, but the session cannot be resumed: {reason}");
            self.incidents.insert(
                incident_id.clone(),
                Incident {
                    store: Arc::from(store_path.as_path()),
                    schedule: Arc::new(schedule),
                    in_flight: true,
                },
            );
            self.on_outcome(
                &incident_id,
                Outcome::Failed {
                    reason: format!("cannot resume: {reason}"),
                },
            );
            return None;
        }
        match durable {
            // Arm from the durable record, reading whatever else landed in
            // the store meanwhile: a cancel appended right after our
            // schedule must win.
            Ok(()) => self.load_store(&store_path),
            Err(e) => {
                // Keep it armed in memory so it still fires while we run.
                tracing::error!(
                    "cannot write {}: {e}; the resume is armed but not durable",
                    store_path.display()
                );
                self.timer.arm(incident_id.clone(), due);
                self.incidents.insert(
                    incident_id.clone(),
                    Incident {
                        store: Arc::from(store_path.as_path()),
                        schedule: Arc::new(schedule),
                        in_flight: false,
                    },
                );
            }
        }
        if !self.incidents.contains_key(&incident_id) {
            tracing::info!(incident = %incident_id, "cancelled before its timer was armed");
            return None;
        }
        tracing::info!(
            incident = %incident_id, %provider, session = %session_id, scope = d.scope.as_str(),
            reset_at = %crate::control::render::opt_stamp(d.reset_at), resumes_at = %due, attempt, "usage limit: resume scheduled"
        );
        self.publish(IncidentEvent::Scheduled {
            incident_id: incident_id.clone(),
            provider: provider.to_string(),
            session_id,
            when: due,
            attempt,
            store: store_path.display().to_string(),
            at: now,
        });
        Some(incident_id)
    }

    fn find_existing(&self, candidate: &Schedule, slack: chrono::Duration) -> Option<String> {
        self.stores.values().find_map(|f| {
            let replay = f.replay();
            if replay.scheduled.contains_key(&candidate.incident_id) {
                return Some(candidate.incident_id.clone());
            }
            find_same_incident(replay, candidate, slack)
        })
    }

    fn log_hit(&self, log: &Path, s: &Schedule, d: &Detection) {
        let mut f = Map::new();
        f.insert("provider".into(), json!(s.provider));
        f.insert("scope".into(), json!(d.scope.zag_str()));
        if let Some(r) = d.reset_at {
            f.insert("reset_at".into(), json!(r.to_rfc3339()));
        }
        f.insert("scheduled_resume_at".into(), json!(s.when.to_rfc3339()));
        f.insert(
            "fallback_used".into(),
            json!(s.fallback_used.unwrap_or(false)),
        );
        f.insert("incident_id".into(), json!(s.incident_id));
        f.insert("raw".into(), json!(truncate(&d.raw, 512)));
        self.append_log(log, s, "usage_limit_hit", f);
        // zag's typed readers drop hit lines (ZAG_INTEROP §2.3): a companion
        // user_event makes the incident visible in `zag events`.
        let mut u = Map::new();
        u.insert("level".into(), json!("warn"));
        u.insert(
            "message".into(),
            json!(format!(
                "zag-resumed: {} {}; resume scheduled at {}",
                s.provider,
                d.scope.describe(),
                s.when.to_rfc3339()
            )),
        );
        u.insert("data".into(), json!({"incident_id": s.incident_id, "scheduled_resume_at": s.when.to_rfc3339(), "attempt": s.attempt, "origin": ORIGIN}));
        self.append_log(log, s, "user_event", u);
    }

    fn append_log(&self, log: &Path, s: &Schedule, kind: &str, fields: Map<String, Value>) {
        let wrapper = s.wrapper_session_id.as_deref().unwrap_or(&s.session_id);
        if let Err(e) =
            zaglog::append_event(log, &s.provider, wrapper, self.clock.now(), kind, fields)
        {
            tracing::warn!("cannot append {kind} to {}: {e}", log.display());
        }
    }

    fn on_fired(&mut self, entry: TimerEntry) {
        if let Some((path, zag_id)) = self.probes.get(&entry.incident_id).cloned() {
            self.load_store(&path);
            self.consider_adoption(&path, &zag_id);
            return;
        }
        let Some(inc) = self.incidents.get(&entry.incident_id) else {
            return;
        };
        if inc.in_flight {
            return;
        }
        // A cancel may have landed since the last file event: re-read first.
        let store = inc.store.clone();
        self.load_store(&store);
        let Some(inc) = self.incidents.get_mut(&entry.incident_id) else {
            return;
        };
        inc.in_flight = true;
        let schedule = inc.schedule.clone();
        // zag's own relay or exec loop may have recorded this very limit
        // after we did (both read the same line at the same moment): then it
        // is zag's to deliver, and two resumes would double the turn.
        let project = store
            .parent()
            .map_or_else(|| self.paths.zag_home.clone(), Path::to_path_buf);
        let (limits, _) = self.limits.get(&project);
        let slack = secs(
            limits
                .jitter_secs
                .saturating_add(limits.stagger_secs)
                .saturating_add(300),
        );
        if let Some(zag_id) = self
            .stores
            .values()
            .find_map(|f| zag_owner_of(f.replay(), &schedule, slack))
        {
            let reason = format!("zag's own scheduler recorded this limit too (its incident {zag_id}) and delivers it");
            self.on_outcome(&entry.incident_id, Outcome::Skipped { reason });
            return;
        }
        tracing::info!(incident = %schedule.incident_id, provider = %schedule.provider, session = %schedule.session_id, "resume due: delivering");
        let env = self.env.clone();
        let tx = self.outcomes_tx.clone();
        let cancel = self.cancel_deliveries.child_token();
        self.deliveries.spawn(async move {
            let outcome = resume::deliver(&schedule, &env, &cancel).await;
            let _ = tx.send((schedule.incident_id.clone(), outcome));
        });
    }

    /// Record how a delivery ended: `complete` durably (the commit point),
    /// the lifecycle event in the zag log, and a re-hit as a new incident.
    fn on_outcome(&mut self, id: &str, outcome: Outcome) {
        let Some(inc) = self.incidents.remove(id) else {
            return;
        };
        let s = &inc.schedule;
        let now = self.clock.now();
        let (status, error) = match &outcome {
            Outcome::Resumed { .. } => (CompleteStatus::Resumed, None),
            Outcome::Failed { reason } => (CompleteStatus::Failed, Some(reason.clone())),
            Outcome::Skipped { reason } => {
                (CompleteStatus::Failed, Some(format!("skipped: {reason}")))
            }
            Outcome::LimitAgain { detail, .. } => (
                CompleteStatus::Failed,
                Some(format!("limit hit again: {detail}")),
            ),
        };
        let (incident_id, provider, session_id, at) = (
            id.to_string(),
            s.provider.clone(),
            s.session_id.clone(),
            now,
        );
        let event = match &outcome {
            Outcome::Resumed { detail } => IncidentEvent::Resumed {
                incident_id,
                provider,
                session_id,
                detail: detail.clone(),
                at,
            },
            Outcome::Skipped { reason } => IncidentEvent::Skipped {
                incident_id,
                provider,
                session_id,
                reason: reason.clone(),
                at,
            },
            Outcome::Failed { .. } | Outcome::LimitAgain { .. } => IncidentEvent::Failed {
                incident_id,
                provider,
                session_id,
                reason: error.clone().unwrap_or_default(),
                at,
            },
        };
        let rec = Record::Complete {
            incident_id: id.into(),
            status,
            error: error.clone(),
        };
        let detail = match &outcome {
            Outcome::Resumed { detail } => Some(detail.as_str()),
            _ => None,
        };
        let extra = crate::control::history::annotations(now, detail);
        if let Err(e) = StoreFile::new(inc.store.as_ref()).append_with(&rec, &extra) {
            tracing::error!(
                "cannot record the outcome of {id} in {}: {e}",
                inc.store.display()
            );
        }
        self.load_store(&inc.store);
        if !s.log_path.is_empty() {
            let log = PathBuf::from(&s.log_path);
            let mut f = Map::new();
            f.insert("incident_id".into(), json!(id));
            f.insert("attempt".into(), json!(s.attempt));
            match status {
                CompleteStatus::Resumed => {
                    f.insert("resume_message".into(), json!(s.message));
                    self.append_log(&log, s, "usage_limit_resumed", f);
                }
                CompleteStatus::Failed => {
                    f.insert("error".into(), json!(error.clone().unwrap_or_default()));
                    self.append_log(&log, s, "usage_limit_resume_failed", f);
                }
            }
        }
        match &outcome {
            Outcome::Resumed { detail } => {
                tracing::info!(incident = %id, "resumed: {detail}");
            }
            Outcome::Skipped { reason } => tracing::info!(incident = %id, "not resumed: {reason}"),
            Outcome::Failed { reason } => {
                tracing::warn!(incident = %id, "resume failed: {reason}");
            }
            Outcome::LimitAgain { detail, .. } => {
                tracing::warn!(incident = %id, "limit hit again: {detail}")
            }
        }
        self.publish(event);
        if let Outcome::LimitAgain { detection, .. } = outcome {
            self.reschedule(&inc, detection);
        }
        self.maybe_compact(&inc.store);
    }

    /// A resumed run hit the limit again: a new incident, attempt + 1, with
    /// the fallback doubling per attempt when the provider gives no reset.
    fn reschedule(&mut self, inc: &Incident, mut detection: Detection) {
        let s = &inc.schedule;
        let Some(provider) = Provider::parse(&s.provider) else {
            return;
        };
        let project = inc
            .store
            .parent()
            .map_or_else(|| self.paths.zag_home.clone(), Path::to_path_buf);
        let (limits, _) = self.limits.get(&project);
        let next = s.attempt + 1;
        if limits.max_attempts > 0 && next > limits.max_attempts {
            tracing::warn!(incident = %s.incident_id, "giving up after {} attempts (max_attempts)", s.attempt);
            self.publish(IncidentEvent::Failed {
                incident_id: s.incident_id.clone(),
                provider: s.provider.clone(),
                session_id: s.session_id.clone(),
                reason: format!("gave up after {} attempts (max_attempts)", s.attempt),
                at: self.clock.now(),
            });
            return;
        }
        if detection.reset_at.is_none() {
            let wait = resume::backoff_fallback(limits.fallback_secs_for(provider), next);
            detection.reset_at = Some(self.clock.now() + secs(wait));
        }
        detection.line_ts = Some(self.clock.now());
        let identity = SessionIdentity {
            provider: Some(provider),
            wrapper_session_id: s.wrapper_session_id.clone(),
            provider_session_id: s.provider_session_id.clone(),
            cwd: s.cwd.clone(),
            model: s.model.clone(),
            last_prompt: s.prompt.clone(),
            command: None,
            zag_log: (!s.log_path.is_empty()).then(|| PathBuf::from(&s.log_path)),
        };
        let (source, file) = if s.log_path.is_empty() {
            (
                SourceKind::Unknown,
                PathBuf::from(s.source_file.clone().unwrap_or_default()),
            )
        } else {
            (SourceKind::ZagSession, PathBuf::from(&s.log_path))
        };
        self.on_hit(detection, &file, source, &identity, next, Some(s));
    }

    fn on_request(&mut self, req: DaemonRequest) {
        match req {
            DaemonRequest::Status(reply) => {
                let _ = reply.send(self.status());
            }
            DaemonRequest::List(reply) => {
                let _ = reply.send(self.pending_views());
            }
            DaemonRequest::Cancel { incident_id, reply } => {
                let _ = reply.send(self.cancel(&incident_id));
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

    fn cancel(&mut self, id: &str) -> Result<PendingView, String> {
        let (path, view) = self
            .stores
            .iter()
            .find_map(|(p, f)| {
                f.replay()
                    .pending
                    .get(id)
                    .map(|s| (p.clone(), PendingView::of(s, p)))
            })
            .ok_or_else(|| format!("no pending resume with incident id {id}"))?;
        if self.incidents.get(id).is_some_and(|i| i.in_flight) {
            return Err(format!("{id} is being delivered right now"));
        }
        let detail = Some(crate::control::offline::CANCELLED_BY_DAEMON);
        let extra = crate::control::history::annotations(self.clock.now(), detail);
        StoreFile::new(&path)
            .append_with(
                &Record::Cancel {
                    incident_id: id.into(),
                },
                &extra,
            )
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        // Stop the timer first, so re-reading the store reports nothing twice.
        self.timer.disarm(id);
        self.incidents.remove(id);
        self.load_store(&path);
        tracing::info!(incident = %id, "cancelled on request; timer stopped");
        self.publish(IncidentEvent::Cancelled {
            incident_id: id.into(),
            at: self.clock.now(),
        });
        Ok(view)
    }

    fn reload(&mut self) -> Result<String, String> {
        let default_path = self.paths.state_dir.join("config.toml");
        let new = DaemonConfig::load(self.config_path.as_deref(), &default_path)
            .map_err(|e| e.to_string())?;
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
        }
    }

    fn publish(&mut self, ev: IncidentEvent) {
        if !matches!(
            ev,
            IncidentEvent::Hit { .. } | IncidentEvent::Scheduled { .. }
        ) {
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
            }
        }
        while let Ok((id, outcome)) = outcomes.try_recv() {
            self.on_outcome(&id, outcome);
        }
    }
}

fn secs(s: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1_000_000))
}

fn fill(slot: &mut Option<String>, v: Option<String>) {
    if slot.is_none() {
        *slot = v;
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
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
        let project = project_for_hit(
            &paths,
            SourceKind::ClaudeNative,
            &file,
            &identity,
            identity.cwd.as_deref(),
        );
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
