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
use crate::detect::{Detection, Detector, Provider, SourceKind};
use crate::ingest::{self, DetectorSource, IngestEvent, IngestStats};
use crate::paths::{project_of_log, Paths};
use crate::resume::{self, zaglog, Outcome, ResumeEnv};
use crate::schedule::due_time;
use crate::session::SessionIdentity;
use crate::store::{CompleteStatus, Record, Replay, Schedule, StoreFile, ORIGIN};
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
    fn detector_for(&mut self, file: &Path, source: SourceKind) -> Arc<Detector> {
        let project = match source {
            SourceKind::ZagSession => {
                project_of_log(file).unwrap_or_else(|| self.paths.zag_home.clone())
            }
            _ => self.paths.zag_home.clone(),
        };
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

/// A stable id for "this limit of this session": the same limit seen by two
/// sources or twice after a restart gets the same id; attempt+1 a new one.
pub fn incident_id_for(
    provider: Provider,
    session_key: &str,
    reset_at: Option<DateTime<Utc>>,
    hit_at: DateTime<Utc>,
    attempt: u32,
) -> String {
    // Reset times from different sources differ by seconds (an epoch vs. a
    // minute-precision clock text): key on the minute. Without a reset, key
    // on the ten-minute window of the hit.
    let window = match reset_at {
        Some(r) => format!("reset:{}", r.timestamp().div_euclid(60)),
        None => format!("hit:{}", hit_at.timestamp().div_euclid(600)),
    };
    let key = format!("zag-resumed|{provider}|{session_key}|{window}|{attempt}");
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()).to_string()
}

/// Is `b` (any store record) the same limit of the same session as `a`?
pub fn same_incident(a: &Schedule, b: &Schedule) -> bool {
    if a.provider != b.provider || a.attempt != b.attempt && b.is_ours() {
        return false;
    }
    let ids = |s: &Schedule| {
        [
            Some(s.session_id.as_str()),
            s.provider_session_id.as_deref(),
            s.wrapper_session_id.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let (ia, ib) = (ids(a), ids(b));
    let same_session =
        ia.iter().any(|x| ib.contains(x)) || (!a.log_path.is_empty() && a.log_path == b.log_path);
    if !same_session {
        return false;
    }
    let near = |x: DateTime<Utc>, y: DateTime<Utc>, secs: i64| (x - y).num_seconds().abs() <= secs;
    match (a.reset_at, b.reset_at, a.hit_at, b.hit_at) {
        (Some(x), Some(y), _, _) => near(x, y, 120),
        (None, None, Some(x), Some(y)) => near(x, y, 600),
        // zag's own record carries only `when`: its reset plus zag's jitter.
        _ if !b.is_ours() => near(a.when, b.when, 300),
        _ => false,
    }
}

struct StoreState {
    replay: Replay,
}

struct Incident {
    store: PathBuf,
    schedule: Schedule,
    in_flight: bool,
}

struct Core {
    paths: Paths,
    config: DaemonConfig,
    config_path: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    started_at: DateTime<Utc>,
    stores: HashMap<PathBuf, StoreState>,
    incidents: HashMap<String, Incident>,
    limits: LimitsCache,
    timer: TimerHandle,
    env: Arc<ResumeEnv>,
    outcomes_tx: mpsc::UnboundedSender<(String, Outcome)>,
    events: broadcast::Sender<IncidentEvent>,
    recent: VecDeque<IncidentEvent>,
    stats: Arc<IngestStats>,
    cancel_deliveries: CancellationToken,
    deliveries: tokio::task::JoinSet<()>,
}

/// Run the daemon until `shutdown` is cancelled or a `Stop` request comes.
pub async fn run(
    opts: Options,
    mut requests: mpsc::Receiver<DaemonRequest>,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let Options {
        paths,
        config,
        config_path,
        clock,
        search_path,
    } = opts;
    std::fs::create_dir_all(&paths.state_dir).map_err(|source| DaemonError::StateDir {
        path: paths.state_dir.clone(),
        source,
    })?;

    let (fired_tx, mut fired_rx) = mpsc::unbounded_channel();
    let (timer, timer_task) = timer::spawn(clock.clone(), fired_tx);
    let (outcomes_tx, mut outcomes_rx) = mpsc::unbounded_channel();
    let mut env = ResumeEnv {
        paths: paths.clone(),
        config: config.resume.clone(),
        binaries: config.binaries.clone(),
        search_path,
        limiter: Arc::new(tokio::sync::Semaphore::new(config.resume.max_concurrent)),
        detector: Detector::new(&UsageLimits::default()).0,
    };
    env.config = config.resume.clone();
    let stats = Arc::new(IngestStats::default());
    let mut core = Core {
        started_at: clock.now(),
        paths: paths.clone(),
        config: config.clone(),
        config_path,
        clock: clock.clone(),
        stores: HashMap::new(),
        incidents: HashMap::new(),
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

    // Re-arm everything pending before any new line is read.
    for store in crate::store::discover_stores(&paths.zag_home) {
        core.load_store(&store.path);
    }
    tracing::info!(
        pending = core.incidents.len(),
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
    tracing::info!(zag_home = %paths.zag_home.display(), "zag-resumed is watching");

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(ev) = ingest_rx.recv() => core.on_ingest(ev),
            Some(entry) = fired_rx.recv() => core.on_fired(entry),
            Some((id, outcome)) = outcomes_rx.recv() => core.on_outcome(&id, outcome),
            Some(_) = core.deliveries.join_next(), if !core.deliveries.is_empty() => {}
            req = requests.recv() => match req {
                Some(DaemonRequest::Stop(reply)) => { let _ = reply.send(()); break; }
                Some(req) => core.on_request(req),
                None => {}
            },
        }
    }

    tracing::info!("stopping: draining in-flight resumes");
    ingest.stop();
    core.drain(&mut outcomes_rx).await;
    timer_task.abort();
    Ok(())
}

impl Core {
    fn load_store(&mut self, path: &Path) {
        let file = StoreFile::new(path);
        let replay = match file.load() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot read store {}: {e}", path.display());
                return;
            }
        };
        for s in replay.pending.values() {
            if s.is_ours() && !self.incidents.contains_key(&s.incident_id) {
                self.timer.arm(s.incident_id.clone(), s.when);
                self.incidents.insert(
                    s.incident_id.clone(),
                    Incident {
                        store: path.to_path_buf(),
                        schedule: s.clone(),
                        in_flight: false,
                    },
                );
            }
        }
        // Incidents tombstoned since the last read: cancelled from outside.
        let gone: Vec<String> = self
            .incidents
            .iter()
            .filter(|(id, inc)| {
                inc.store == path && !inc.in_flight && replay.tombstoned.contains(*id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.timer.disarm(id.clone());
            self.incidents.remove(&id);
            tracing::info!(incident = %id, "cancelled in the store; timer stopped");
            self.publish(IncidentEvent::Cancelled {
                incident_id: id,
                at: self.clock.now(),
            });
        }
        self.stores
            .insert(path.to_path_buf(), StoreState { replay });
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
        }
    }

    /// A detected limit becomes a durable, armed incident (or is recognised
    /// as one we already have).
    fn on_hit(
        &mut self,
        d: Detection,
        file: &Path,
        source: SourceKind,
        identity: &SessionIdentity,
        attempt: u32,
        chain: Option<&Schedule>,
    ) -> Option<String> {
        let now = self.clock.now();
        let cwd = d
            .cwd
            .clone()
            .or_else(|| identity.cwd.clone())
            .or_else(|| chain.and_then(|c| c.cwd.clone()));
        let project = project_for_hit(&self.paths, source, file, identity, cwd.as_deref());
        let (limits, _) = self.limits.get(&project);
        let provider = d.provider;
        let wrapper = d
            .wrapper_session_id
            .clone()
            .or_else(|| identity.wrapper_session_id.clone())
            .or_else(|| chain.and_then(|c| c.wrapper_session_id.clone()));
        let provider_session_id = d
            .provider_session_id
            .clone()
            .filter(|p| Some(p) != wrapper.as_ref())
            .or_else(|| identity.provider_session_id.clone())
            .or_else(|| chain.and_then(|c| c.provider_session_id.clone()));
        let session_id = wrapper
            .clone()
            .or_else(|| provider_session_id.clone())
            .unwrap_or_else(|| "unknown".into());
        let hit_at = d.line_ts.unwrap_or(now);
        self.publish(IncidentEvent::Hit {
            incident_id: String::new(),
            provider: provider.to_string(),
            session_id: session_id.clone(),
            scope: d.scope.as_str().into(),
            reset_at: d.reset_at,
            file: file.display().to_string(),
            at: now,
        });
        if !limits.enabled_for(provider) {
            tracing::info!(%provider, session = %session_id, "usage limit seen; auto-resume is disabled for it in zag.toml");
            return None;
        }
        let session_key = provider_session_id
            .clone()
            .unwrap_or_else(|| session_id.clone());
        let incident_id = incident_id_for(provider, &session_key, d.reset_at, hit_at, attempt);
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
        let schedule = Schedule {
            incident_id: incident_id.clone(),
            session_id: session_id.clone(),
            provider: provider.to_string(),
            model: identity
                .model
                .clone()
                .or_else(|| chain.and_then(|c| c.model.clone())),
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
                .or_else(|| chain.and_then(|c| c.prompt.clone())),
            source_file: Some(file.display().to_string()),
            hit_at: Some(hit_at),
            chain_id: chain.map(|c| c.chain_id.clone().unwrap_or_else(|| c.incident_id.clone())),
            raw: Some(truncate(&d.raw, 512)),
        };
        if let Some(existing) = self.find_existing(&schedule) {
            tracing::debug!(incident = %existing, file = %file.display(), "limit already known");
            return None;
        }
        let store_path = Paths::store_in(&project);
        let store = StoreFile::new(&store_path);
        if let Err(e) = store.append(&Record::Schedule(schedule.clone())) {
            // Keep it armed in memory so it still fires while we run.
            tracing::error!(
                "cannot write {}: {e}; the resume is armed but not durable",
                store_path.display()
            );
        }
        self.stores
            .entry(store_path.clone())
            .or_insert_with(|| StoreState {
                replay: Replay::default(),
            })
            .replay
            .apply(Record::Schedule(schedule.clone()));
        self.timer.arm(incident_id.clone(), due);
        tracing::info!(
            incident = %incident_id, %provider, session = %session_id, scope = d.scope.as_str(),
            reset_at = ?d.reset_at, resumes_at = %due, attempt, "usage limit: resume scheduled"
        );
        if let Some(log) = &log_path {
            self.log_hit(log, &schedule, &d);
        }
        self.publish(IncidentEvent::Scheduled {
            incident_id: incident_id.clone(),
            provider: provider.to_string(),
            session_id,
            when: due,
            attempt,
            store: store_path.display().to_string(),
            at: now,
        });
        self.incidents.insert(
            incident_id.clone(),
            Incident {
                store: store_path,
                schedule,
                in_flight: false,
            },
        );
        Some(incident_id)
    }

    fn find_existing(&self, candidate: &Schedule) -> Option<String> {
        self.stores.values().find_map(|s| {
            if s.replay.scheduled.contains_key(&candidate.incident_id) {
                return Some(candidate.incident_id.clone());
            }
            s.replay
                .scheduled
                .values()
                .find(|b| same_incident(candidate, b))
                .map(|b| b.incident_id.clone())
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
        tracing::info!(incident = %schedule.incident_id, provider = %schedule.provider, session = %schedule.session_id, "resume due: delivering");
        let env = self.env.clone();
        let tx = self.outcomes_tx.clone();
        let cancel = self.cancel_deliveries.child_token();
        self.deliveries.spawn(async move {
            let outcome = resume::deliver(&schedule, &env, &cancel).await;
            let _ = tx.send((schedule.incident_id.clone(), outcome));
        });
    }

    fn on_outcome(&mut self, id: &str, outcome: Outcome) {
        let Some(inc) = self.incidents.remove(id) else {
            return;
        };
        let s = &inc.schedule;
        let now = self.clock.now();
        let (status, error, event) = match &outcome {
            Outcome::Resumed { detail } => (
                CompleteStatus::Resumed,
                None,
                IncidentEvent::Resumed {
                    incident_id: id.into(),
                    provider: s.provider.clone(),
                    session_id: s.session_id.clone(),
                    detail: detail.clone(),
                    at: now,
                },
            ),
            Outcome::Failed { reason } => (
                CompleteStatus::Failed,
                Some(reason.clone()),
                IncidentEvent::Failed {
                    incident_id: id.into(),
                    provider: s.provider.clone(),
                    session_id: s.session_id.clone(),
                    reason: reason.clone(),
                    at: now,
                },
            ),
            Outcome::Skipped { reason } => (
                CompleteStatus::Failed,
                Some(format!("skipped: {reason}")),
                IncidentEvent::Skipped {
                    incident_id: id.into(),
                    provider: s.provider.clone(),
                    session_id: s.session_id.clone(),
                    reason: reason.clone(),
                    at: now,
                },
            ),
            Outcome::LimitAgain { detail, .. } => (
                CompleteStatus::Failed,
                Some(format!("limit hit again: {detail}")),
                IncidentEvent::Failed {
                    incident_id: id.into(),
                    provider: s.provider.clone(),
                    session_id: s.session_id.clone(),
                    reason: format!("limit hit again: {detail}"),
                    at: now,
                },
            ),
        };
        let rec = Record::Complete {
            incident_id: id.into(),
            status,
            error: error.clone(),
        };
        if let Err(e) = StoreFile::new(&inc.store).append(&rec) {
            tracing::error!(
                "cannot record the outcome of {id} in {}: {e}",
                inc.store.display()
            );
        }
        if let Some(st) = self.stores.get_mut(&inc.store) {
            st.replay.apply(rec);
        }
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
            Outcome::Resumed { detail } => tracing::info!(incident = %id, "resumed: {detail}"),
            Outcome::Skipped { reason } => tracing::info!(incident = %id, "not resumed: {reason}"),
            Outcome::Failed { reason } => tracing::warn!(incident = %id, "resume failed: {reason}"),
            Outcome::LimitAgain { detail, .. } => {
                tracing::warn!(incident = %id, "limit hit again: {detail}")
            }
        }
        self.publish(event);
        if let Outcome::LimitAgain { detection, .. } = outcome {
            self.reschedule(&inc, detection);
        }
    }

    /// A resumed run hit the limit again: a new incident, attempt + 1.
    fn reschedule(&mut self, inc: &Incident, detection: Detection) {
        let s = &inc.schedule;
        let provider = Provider::parse(&s.provider);
        let project = inc
            .store
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.paths.zag_home.clone());
        let (limits, _) = self.limits.get(&project);
        let next = s.attempt + 1;
        if limits.max_attempts > 0 && next > limits.max_attempts {
            tracing::warn!(incident = %s.incident_id, "giving up after {} attempts (max_attempts)", s.attempt);
            return;
        }
        if provider.is_none() {
            return;
        }
        let identity = SessionIdentity {
            provider,
            wrapper_session_id: s.wrapper_session_id.clone(),
            provider_session_id: s.provider_session_id.clone(),
            cwd: s.cwd.clone(),
            model: s.model.clone(),
            last_prompt: s.prompt.clone(),
            command: None,
            zag_log: (!s.log_path.is_empty()).then(|| PathBuf::from(&s.log_path)),
        };
        let source = if s.log_path.is_empty() {
            SourceKind::Unknown
        } else {
            SourceKind::ZagSession
        };
        let file = if s.log_path.is_empty() {
            PathBuf::from(s.source_file.clone().unwrap_or_default())
        } else {
            PathBuf::from(&s.log_path)
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
                let _ = reply.send(self.reload());
            }
            DaemonRequest::Subscribe(reply) => {
                let _ = reply.send(self.events.subscribe());
            }
            DaemonRequest::Stop(_) => unreachable!("handled by the loop"),
        }
    }

    fn cancel(&mut self, id: &str) -> Result<PendingView, String> {
        let (path, view) = self
            .stores
            .iter()
            .find_map(|(p, st)| {
                st.replay
                    .pending
                    .get(id)
                    .map(|s| (p.clone(), view_of(s, p)))
            })
            .ok_or_else(|| format!("no pending resume with incident id {id}"))?;
        if self.incidents.get(id).is_some_and(|i| i.in_flight) {
            return Err(format!("{id} is being delivered right now"));
        }
        let rec = Record::Cancel {
            incident_id: id.into(),
        };
        StoreFile::new(&path)
            .append(&rec)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if let Some(st) = self.stores.get_mut(&path) {
            st.replay.apply(rec);
        }
        self.timer.disarm(id);
        self.incidents.remove(id);
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
        if new.resume != self.config.resume {
            changes.push("resume");
        }
        if new.binaries != self.config.binaries {
            changes.push("binaries");
        }
        if new.notify != self.config.notify {
            changes.push("notify");
        }
        if new.watch != self.config.watch {
            changes.push("watch (takes effect on restart)");
        }
        if new.dirs != self.config.dirs {
            changes.push("dirs (takes effect on restart)");
        }
        let mut env = (*self.env).clone();
        env.config = new.resume.clone();
        env.binaries = new.binaries.clone();
        if new.resume.max_concurrent != self.config.resume.max_concurrent {
            env.limiter = Arc::new(tokio::sync::Semaphore::new(new.resume.max_concurrent));
        }
        self.env = Arc::new(env);
        self.config = new;
        self.limits = LimitsCache::default();
        let msg = if changes.is_empty() {
            "configuration reloaded: nothing changed".to_string()
        } else {
            format!("configuration reloaded: changed {}", changes.join(", "))
        };
        tracing::info!("{msg}");
        Ok(msg)
    }

    fn pending_views(&self) -> Vec<PendingView> {
        let mut v: Vec<PendingView> = self
            .stores
            .iter()
            .flat_map(|(p, st)| st.replay.pending.values().map(move |s| view_of(s, p)))
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

fn view_of(s: &Schedule, store: &Path) -> PendingView {
    PendingView {
        incident_id: s.incident_id.clone(),
        provider: s.provider.clone(),
        session_id: s.session_id.clone(),
        when: s.when,
        attempt: s.attempt,
        store: store.display().to_string(),
        scope: s.scope.clone(),
        cwd: s.cwd.clone(),
        origin: s.origin.clone(),
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
    use chrono::TimeZone;

    fn sched(id: &str, session: &str, reset: Option<DateTime<Utc>>, ours: bool) -> Schedule {
        let t = Utc.with_ymd_and_hms(2030, 1, 1, 3, 35, 0).unwrap();
        Schedule {
            incident_id: id.into(),
            session_id: session.into(),
            provider: "claude".into(),
            model: None,
            root: None,
            when: reset.unwrap_or(t) + chrono::Duration::seconds(30),
            message: "Continue".into(),
            attempt: 1,
            log_path: String::new(),
            origin: ours.then(|| ORIGIN.into()),
            scope: None,
            reset_at: reset,
            fallback_used: None,
            provider_session_id: None,
            wrapper_session_id: None,
            cwd: None,
            prompt: None,
            source_file: None,
            hit_at: Some(t - chrono::Duration::hours(1)),
            chain_id: None,
            raw: None,
        }
    }

    #[test]
    fn incident_ids_are_stable_per_minute_and_attempt() {
        let r = Utc.with_ymd_and_hms(2030, 1, 1, 3, 35, 0).unwrap();
        let h = r - chrono::Duration::hours(2);
        let a = incident_id_for(Provider::Claude, "s", Some(r), h, 1);
        assert_eq!(
            a,
            incident_id_for(
                Provider::Claude,
                "s",
                Some(r + chrono::Duration::seconds(20)),
                h + chrono::Duration::minutes(1),
                1
            )
        );
        assert_ne!(a, incident_id_for(Provider::Claude, "s", Some(r), h, 2));
        assert_ne!(a, incident_id_for(Provider::Claude, "t", Some(r), h, 1));
    }

    #[test]
    fn same_limit_from_two_sources_is_one_incident() {
        let r = Utc.with_ymd_and_hms(2030, 1, 1, 3, 35, 0).unwrap();
        let a = sched("a", "s1", Some(r), true);
        let b = sched("b", "s1", Some(r + chrono::Duration::seconds(59)), true);
        assert!(same_incident(&a, &b));
        assert!(!same_incident(&a, &sched("c", "s2", Some(r), true)));
        assert!(!same_incident(
            &a,
            &sched("d", "s1", Some(r + chrono::Duration::hours(5)), true)
        ));
        // zag's own record for the same session and wake time.
        let zag = sched("z", "s1", None, false);
        assert!(same_incident(&a, &zag));
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
