//! Resume delivery: turn a due incident into a continued session.
//!
//! Two channels: a `user_message` line into a live zag relay's FIFO
//! ([`fifo`]), or a respawn of the provider CLI with its resume syntax
//! ([`respawn`]). Before sending, the incident is resolved ([`resolve`]: which
//! ids, which cwd, which channel) and revalidated ([`revalidate`]: cancelled?
//! deleted? did the session move on?); after sending, the CLI's output goes
//! back through the detectors so a re-hit becomes [`Outcome::LimitAgain`]
//! rather than a false success, and for zag sessions the run's events are
//! appended to the zag session log ([`events`], [`zaglog`]).
//!
//! No shell is ever involved, every id is validated before it reaches argv,
//! and every wait has a deadline from [`ResumeConfig`]; a resumed CLI's run
//! is bounded by its silence (a hang), not its age, unless a wall-clock
//! limit is configured.

pub mod attempt;
pub mod dry;
pub mod events;
pub mod fifo;
pub mod live;
pub mod resolve;
pub mod respawn;
pub mod revalidate;
pub mod route;
pub mod terminal;
pub mod zaglog;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{Binaries, ResumeConfig};
use crate::detect::{Detection, Detector, LineContext, SourceKind};
use crate::paths::Paths;
use crate::store::Schedule;

pub use resolve::{validate_session_id, Channel, InvalidId, ResolvedTarget, Unresolved};

/// Re-detection of a limit in one line of output, with its context. The
/// default is [`Detector::detect`]; tests inject their own.
pub type DetectFn = Arc<dyn Fn(&[u8], &LineContext) -> Option<Detection> + Send + Sync>;

/// What delivery needs besides the incident.
#[derive(Clone)]
pub struct ResumeEnv {
    pub paths: Paths,
    pub config: ResumeConfig,
    pub binaries: Binaries,
    /// The PATH to search for provider binaries (`None`: the process's own).
    pub search_path: Option<OsString>,
    /// Bounds respawned CLIs running at once.
    pub limiter: Arc<tokio::sync::Semaphore>,
    /// Re-detects limits in a respawned CLI's output.
    pub detector: Detector,
    /// Live sessions: where to look for their owners (issue 11).
    pub live: live::LiveEnv,
    /// The daemon's clock: every "now" of a delivery (a route's re-check
    /// time, a line's time) comes from it, so tests can move time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ResumeEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeEnv")
            .field("paths", &self.paths)
            .field("config", &self.config)
            .field("binaries", &self.binaries)
            .field("search_path", &self.search_path)
            .field("live", &self.live)
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

impl ResumeEnv {
    /// The daemon's environment: PATH from the process, the system clock,
    /// `config.max_concurrent` respawns at once.
    pub fn new(paths: Paths, config: ResumeConfig, binaries: Binaries, detector: Detector) -> Self {
        let permits = config.max_concurrent.max(1);
        ResumeEnv {
            paths,
            config,
            binaries,
            search_path: None,
            limiter: Arc::new(tokio::sync::Semaphore::new(permits)),
            detector,
            live: live::LiveEnv::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Delivered; `detail` says how (channel, exit code).
    Resumed { detail: String },
    /// Tried and failed, or could not be tried; `reason` is for humans.
    Failed { reason: String },
    /// Deliberately not sent (session moved on, deleted, cancelled, relay
    /// gone with no way to respawn).
    Skipped { reason: String },
    /// Never sent: no wait lifts this limit (credits, a spend cap, billing);
    /// `what` says what the user must do.
    NeedsUser { what: String },
    /// The resumed run hit a limit again: a new incident with attempt + 1.
    LimitAgain {
        detection: Detection,
        detail: String,
    },
    /// Not now: the session's live owner (or the provider's own continue)
    /// has it. The incident stays the one pending incident of its session
    /// and is looked at again at `until`, with `state` carried over.
    Deferred {
        until: chrono::DateTime<chrono::Utc>,
        view: live::RouteView,
        state: route::LiveState,
        /// The process that holds the session (the open TUI, a writer):
        /// its exit is worth a look before `until`, and the core watches
        /// for it.
        holder: Option<crate::live::proc::Pid>,
    },
}

/// What the user must do about an incident no wait lifts, if it is one.
pub fn needs_user_what(s: &Schedule) -> Option<String> {
    let why = s.needs_user.as_deref()?;
    Some(match crate::detect::NeedsUser::parse(why) {
        Some(n) => n.what_to_do().to_string(),
        None => format!("{why}: no wait lifts this limit"),
    })
}

/// The fallback wait for a re-hit chain: `base` doubled for each attempt
/// after the first, capped at a day.
pub fn backoff_fallback(base_secs: u64, attempt: u32) -> u64 {
    const CAP: u64 = 86_400;
    let shift = attempt.saturating_sub(1).min(20);
    base_secs.saturating_mul(1u64 << shift).min(CAP)
}

/// Resolve an incident at schedule time: which channel and ids will be used.
/// `Err` is a clear reason the incident can never be delivered (unknown
/// session, hostile id, deleted transcript, lost Gemini prompt).
pub fn resolve_target(
    incident: &Schedule,
    env: &ResumeEnv,
) -> Result<ResolvedTarget, resolve::Unresolved> {
    let mut t = resolve::resolve(incident, &env.paths)?;
    // The session's place as it is now, at the limit: delivery enters it
    // only if it is still the same directory, owned by the same user.
    if t.cwd_identity.is_none() {
        t.cwd_identity = t
            .cwd
            .as_deref()
            .and_then(|c| crate::store::CwdIdentity::of(c).ok());
    }
    Ok(t)
}

/// Why the session's directory must not be entered now: gone, replaced by
/// another directory at the same path, or owned by someone else than when
/// the limit was seen. `None`: it is the same place (or nothing was
/// recorded, as on records written before this check).
pub fn cwd_refusal(t: &ResolvedTarget) -> Option<String> {
    let (Some(cwd), Some(then)) = (t.cwd.as_deref(), t.cwd_identity) else {
        return None;
    };
    let shown = cwd.display();
    match crate::store::CwdIdentity::of(cwd) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "the session's directory {shown} is gone: not resuming anywhere else"
        )),
        Err(e) => Some(format!(
            "the session's directory {shown} cannot be checked ({e}): not entering it"
        )),
        Ok(now) if then.replaced_by(&now) => Some(format!(
            "the session's directory {shown} was replaced since the limit (another directory at the same path): not entering it"
        )),
        Ok(now) if now.uid != then.uid => Some(format!(
            "the session's directory {shown} is now owned by uid {} (uid {} when the limit was seen): not entering it",
            now.uid, then.uid
        )),
        Ok(_) => None,
    }
}

/// Deliver one due incident. Never panics; every wait has a deadline from
/// [`ResumeConfig`] (a resumed CLI's: `silence_timeout_secs` of no output,
/// and `timeout_secs` when set).
pub async fn deliver(incident: &Schedule, env: &ResumeEnv, cancel: &CancellationToken) -> Outcome {
    deliver_with(incident, env, cancel, None).await
}

/// [`deliver`] with the re-detection of limits in the resumed run's output
/// replaced (`None`: `env.detector`). The seam for tests of re-hits.
pub async fn deliver_with(
    incident: &Schedule,
    env: &ResumeEnv,
    cancel: &CancellationToken,
    detect: Option<DetectFn>,
) -> Outcome {
    deliver_live(incident, env, cancel, detect, &route::LiveState::default()).await
}

/// [`deliver_with`] for an incident that may have been deferred before:
/// `state` is what earlier fires did (typed once, notified once). A
/// respawned session asks who owns it first ([`live`]): never a headless
/// resume while its process lives.
pub async fn deliver_live(
    incident: &Schedule,
    env: &ResumeEnv,
    cancel: &CancellationToken,
    detect: Option<DetectFn>,
    state: &route::LiveState,
) -> Outcome {
    deliver_claimed(incident, env, cancel, detect, state, None).await
}

/// [`deliver_live`] under a durable delivery attempt ([`attempt`]), as the
/// daemon delivers: a respawned CLI's child takes it before exec, a FIFO
/// write marks it sent; a deferral withdraws it (nothing counted).
pub async fn deliver_claimed(
    incident: &Schedule,
    env: &ResumeEnv,
    cancel: &CancellationToken,
    detect: Option<DetectFn>,
    state: &route::LiveState,
    attempt: Option<&attempt::Attempt>,
) -> Outcome {
    let o = deliver_live_once(incident, env, cancel, detect, state, attempt).await;
    let now = env.clock.now();
    let Outcome::Deferred { view, state, .. } = &o else {
        return o;
    };
    if let Some(a) = attempt.cloned() {
        if let Err(e) = off_loop(move || a.withdraw()).await {
            tracing::warn!(incident = %incident.incident_id, "cannot withdraw the deferred delivery attempt (a restart would take it for delivered): {e}");
        }
    }
    // A wait that went on too long gives up, told, instead of acting hours
    // after the reset (issue 21).
    // From the reset (else the due time); a `retry` counts from when the
    // user asked for it and gets its own six hours.
    let base = incident
        .wait_from
        .or(incident.reset_at)
        .unwrap_or(incident.when);
    if route::aged_out(base, now) {
        return Outcome::Failed {
            reason: format!(
                "gave up: still not continued {} h after the reset ({}); not acting this late behind your back (`zag-resumed retry` continues it)",
                route::GIVE_UP_AFTER_SECS / 3600,
                view.why
            ),
        };
    }
    // The one notification is recorded before it goes out: a restart does
    // not send it again.
    if view.notify {
        let (inc, st, why) = (incident.clone(), state.clone(), view.why.clone());
        if let Err(e) = off_loop(move || live::record_live(&st, &inc, now, Some(&why))).await {
            tracing::warn!(incident = %incident.incident_id, "cannot record the notification in the store: {e}");
        }
    }
    o
}

/// Run a small blocking write on a worker thread, off the async loop; a
/// worker that panicked is an error like the write's own.
async fn off_loop(
    write: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::task::spawn_blocking(write)
        .await
        .map_err(std::io::Error::other)?
}

/// One look at a due incident, without the age bound and the durable
/// notification of [`deliver_live`].
async fn deliver_live_once(
    incident: &Schedule,
    env: &ResumeEnv,
    cancel: &CancellationToken,
    detect: Option<DetectFn>,
    state: &route::LiveState,
    attempt: Option<&attempt::Attempt>,
) -> Outcome {
    if cancel.is_cancelled() {
        return Outcome::Skipped {
            reason: "cancelled before delivery".into(),
        };
    }
    // A limit no wait lifts is never sent (a record re-armed after a crash
    // between its `schedule` and its `complete` lands here).
    if let Some(what) = needs_user_what(incident) {
        return Outcome::NeedsUser { what };
    }
    let (inc, paths) = (incident.clone(), env.paths.clone());
    let resolved = tokio::task::spawn_blocking(move || {
        let t = resolve::resolve(&inc, &paths)?;
        // Our own claim first: a resumed turn tagged with this incident is
        // in the log when an earlier run of the daemon started delivering
        // it and died before recording the outcome.
        let moved = match revalidate::already_delivered(&t) {
            Some(at) => Err(at),
            // `retry --force`: the user said to deliver whatever the
            // session did since; the other checks stand.
            None if inc.is_forced() => Ok(None),
            None => Ok(revalidate::moved_on(&t, inc.hit_at)),
        };
        Ok::<_, resolve::Unresolved>((t, moved))
    })
    .await;
    let (target, moved) = match resolved {
        Ok(Ok(x)) => x,
        Ok(Err(resolve::Unresolved::Deleted(r))) => {
            return Outcome::Skipped {
                reason: format!("session deleted: {r}"),
            }
        }
        Ok(Err(resolve::Unresolved::Invalid(r))) => {
            return Outcome::Failed {
                reason: format!("cannot resolve the session: {r}"),
            }
        }
        Err(e) => {
            return Outcome::Failed {
                reason: format!("session resolution crashed: {e}"),
            }
        }
    };
    if let Err(at) = &moved {
        return Outcome::Resumed {
            detail: format!(
                "already delivered at {at} by an earlier run of the daemon (its resumed turn is in the zag session log)"
            ),
        };
    }
    let mut live_note = String::new();
    if target.channel == Channel::Respawn && env.live.enabled {
        let home = crate::provider::of(target.provider)
            .home(&env.paths)
            .to_path_buf();
        let step = live::step(
            &target,
            &env.live,
            home,
            incident.reset_at,
            incident.when,
            state,
            env.clock.clone(),
        )
        .await;
        match step {
            live::Step::Done(o) => return o,
            live::Step::Respawn { why } if why != route::NOBODY_HOLDS_IT => {
                live_note = format!("{why}: ")
            }
            live::Step::Respawn { .. } => {}
            live::Step::Type(route) => {
                if let Ok(Some(why)) = &moved {
                    return Outcome::Skipped {
                        reason: format!("the session moved on since the limit: {why}"),
                    };
                }
                let (t, l, s) = (target.clone(), env.live.clone(), state.clone());
                let inc = incident.clone();
                let now = env.clock.now();
                return tokio::task::spawn_blocking(move || {
                    live::carry_type(&t, &l, &route, s, &inc, now)
                })
                .await
                .unwrap_or_else(|e| Outcome::Failed {
                    reason: format!("typing into the session's pane crashed: {e}"),
                });
            }
        }
    }
    if let Ok(Some(why)) = moved {
        return Outcome::Skipped {
            reason: format!("the session moved on since the limit: {why}"),
        };
    }
    match &target.channel {
        Channel::Respawn => {
            let o = respawn_target(&target, env, cancel, detect, &live_note, attempt).await;
            writer_conflict_retry(&target, o, state, env.clock.now())
        }
        Channel::Fifo { path } => deliver_fifo(&target, path, env, cancel, detect, attempt).await,
    }
}

/// A respawn that failed because another process holds the session's
/// writer (Codex's app-server lingering after its TUI quit) is a wait,
/// never a final failure: retried with backoff until the writer is free.
fn writer_conflict_retry(
    t: &ResolvedTarget,
    o: Outcome,
    state: &route::LiveState,
    now: chrono::DateTime<chrono::Utc>,
) -> Outcome {
    let Outcome::Failed { reason } = &o else {
        return o;
    };
    if !crate::provider::of(t.provider).is_writer_conflict(reason) {
        return o;
    }
    let r = route::Route::RetryWriter {
        recheck_at: now + route::writer_backoff(state.writer_retries),
        why: format!("the resume found another writer on the session, retrying: {reason}"),
    };
    // The writer's process is not known here: the re-check alone.
    live::deferred(&r, state.clone(), None).unwrap_or(o)
}

/// The FIFO channel, falling back to respawn when the relay is dead.
async fn deliver_fifo(
    t: &ResolvedTarget,
    path: &std::path::Path,
    env: &ResumeEnv,
    cancel: &CancellationToken,
    detect: Option<DetectFn>,
    attempt: Option<&attempt::Attempt>,
) -> Outcome {
    let wrapper = t.wrapper_session_id.as_deref().unwrap_or_default();
    let procs = std::fs::read(env.paths.zag_home.join("processes.json")).unwrap_or_default();
    let dead = match fifo::relay_state(&procs, wrapper) {
        fifo::RelayState::Dead => Some("the relay's process entry is not running".to_string()),
        fifo::RelayState::Alive | fifo::RelayState::Unknown => None,
    };
    let dead = match dead {
        Some(d) => d,
        None => {
            let limits = fifo::FifoLimits {
                write_timeout: Duration::from_millis(env.config.fifo_write_timeout_ms),
                confirm_timeout: Duration::from_secs(env.config.fifo_confirm_timeout_secs),
            };
            // Sent is delivered: a restart after this never writes it again.
            let sent = async {
                let Some(a) = attempt.cloned() else { return };
                if let Err(e) = off_loop(move || a.mark_sent()).await {
                    tracing::warn!(incident = %t.incident_id, "cannot record the FIFO write in its delivery attempt: {e}");
                }
            };
            match fifo::send(path, t.zag_log.as_ref(), &t.message, &limits, cancel, sent).await {
                Ok(()) => {
                    return Outcome::Resumed {
                        detail: format!(
                            "sent via the zag relay FIFO {} and confirmed in its log",
                            path.display()
                        ),
                    }
                }
                Err(e @ (fifo::FifoError::NoReader | fifo::FifoError::NotFifo(_))) => e.to_string(),
                Err(e) => {
                    return Outcome::Failed {
                        reason: format!("FIFO delivery to {}: {e}", path.display()),
                    }
                }
            }
        }
    };
    match &t.respawn_error {
        None => {
            let note = format!("relay gone ({dead}); fell back to respawn: ");
            respawn_target(t, env, cancel, detect, &note, attempt).await
        }
        Some(why) => Outcome::Skipped {
            reason: format!("the relay is gone ({dead}) and respawn is not possible: {why}"),
        },
    }
}

/// What the respawn of a target puts on its command line: the resume
/// message (or, for a CLI that drops the limited prompt, that prompt
/// again), the ids, model, approval and permission mode. Shared by the
/// delivery and by `scan --plan`'s dry run, so the two never differ.
pub fn resume_spec(t: &ResolvedTarget) -> respawn::ArgvSpec {
    let cli = crate::provider::of(t.provider);
    let message = if cli.resends_prompt() {
        t.prompt.clone().unwrap_or_default()
    } else {
        t.message.clone()
    };
    respawn::ArgvSpec {
        session_id: t.provider_session_id.clone(),
        message,
        model: t.model.clone(),
        auto_approve: cli.auto_approve(t),
        add_dirs: Vec::new(),
        permission_mode: t.permission_mode.clone(),
    }
}

/// Build, run and judge a respawn. `note` prefixes every outcome text.
async fn respawn_target(
    t: &ResolvedTarget,
    env: &ResumeEnv,
    cancel: &CancellationToken,
    detect: Option<DetectFn>,
    note: &str,
    attempt: Option<&attempt::Attempt>,
) -> Outcome {
    let fail = |reason: String| Outcome::Failed {
        reason: format!("{note}{reason}"),
    };
    let p = t.provider;
    let spec = resume_spec(t);
    let message = spec.message.clone();
    let args = match respawn::build_args(p, &spec) {
        Ok(a) => a,
        Err(e) => return fail(format!("refused to build the {p} command: {e}")),
    };
    let program = match respawn::find_binary(p, &env.binaries, env.search_path.as_ref()) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    let Some(cwd) = t.cwd.clone() else {
        return fail(format!("the {p} session's working directory is unknown"));
    };
    if let Some(why) = cwd_refusal(t) {
        return fail(why);
    }
    if !cwd.is_dir() {
        return fail(format!(
            "the session's working directory {} does not exist",
            cwd.display()
        ));
    }
    let inv = respawn::Invocation {
        env: child_env(t, &program),
        program,
        args,
        cwd,
    };
    let shown = format!("{p} {}", inv.args.first().map_or("", String::as_str));

    let _permit = tokio::select! {
        permit = env.limiter.clone().acquire_owned() => match permit {
            Ok(p) => p,
            Err(_) => return fail("the respawn limiter is closed (shutting down)".into()),
        },
        () = cancel.cancelled() => return fail("cancelled while waiting for a respawn slot".into()),
    };

    // The resumed turn goes into the zag session log once the CLI has
    // started, never before: the line is also a claim a restart finds (it
    // records the resume instead of sending it again; the CLI, in its own
    // process group, outlives a crash of the daemon). Written before the
    // start, a crash in between would lose the resume; the gap after the
    // start is covered by the delivery attempt the child marks before exec
    // (see [`attempt`]). The line is prepared ahead (reading the log is the
    // slow part) and written right after the start with one small append.
    let claim = match &t.zag_log {
        Some(log) => {
            let mut f = Map::new();
            f.insert("role".into(), json!("user"));
            f.insert("content".into(), json!(message));
            f.insert("message_id".into(), Value::Null);
            // zag ignores extra keys; these mark the turn as this
            // incident's resume.
            f.insert("origin".into(), json!(crate::store::ORIGIN));
            f.insert("incident_id".into(), json!(t.incident_id));
            prepare(t, env, log, ("user_message", f)).await
        }
        None => None,
    };
    let claim = async move {
        if let Some((log, line)) = claim {
            if let Err(e) = zaglog::write_prepared(&log, &line) {
                tracing::warn!(error = %e, "appending the resumed turn to the zag log");
            }
        }
    };

    let limits = respawn::RunLimits {
        timeout: secs(env.config.timeout_secs),
        silence: secs(env.config.silence_timeout_secs),
        capture_bytes: env.config.capture_bytes,
        kill_grace: Duration::from_secs(1),
    };
    let detect = line_detector(env, detect, p);
    let r = match respawn::run(&inv, &limits, detect, cancel, claim, attempt).await {
        Ok(r) => r,
        Err(e) => {
            let outcome = fail(e.to_string());
            if let (Some(log), Outcome::Failed { reason }) = (&t.zag_log, &outcome) {
                let mut end = Map::new();
                end.insert("success".into(), json!(false));
                end.insert("error".into(), json!(reason));
                append(t, env, log, vec![("session_ended", end)]).await;
            }
            return outcome;
        }
    };

    let stderr_tail = respawn::tail_text(&r.stderr.bytes, 600);
    let status = match (r.exit_code, r.signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".into(),
    };
    let with_stderr = |s: String| {
        if stderr_tail.is_empty() {
            s
        } else {
            format!("{s}; stderr: {stderr_tail}")
        }
    };
    let how = format!(
        "respawned `{}` (session {}) in {}",
        shown,
        t.provider_session_id.as_deref().unwrap_or("new"),
        inv.cwd.display()
    );
    let detection = r.stdout.detection.clone().or(r.stderr.detection.clone());
    let outcome = if r.silent {
        fail(with_stderr(format!(
            "{how}: no output for {} s, killed its process group ({status})",
            env.config.silence_timeout_secs
        )))
    } else if r.timed_out {
        fail(with_stderr(format!(
            "{how}: still running after {} s, killed its process group ({status})",
            env.config.timeout_secs
        )))
    } else if r.cancelled {
        fail(format!(
            "{how}: cancelled while running, killed its process group"
        ))
    } else if let Some(detection) = detection {
        Outcome::LimitAgain {
            detail: with_stderr(format!(
                "{note}{how}: hit the {} again ({status})",
                detection.scope.describe()
            )),
            detection,
        }
    } else if r.exit_code == Some(0) {
        Outcome::Resumed {
            detail: format!("{note}{how}: {status}"),
        }
    } else {
        fail(with_stderr(format!("{how}: {status}")))
    };

    if let Some(log) = &t.zag_log {
        let mut evs = events::from_output(p, &r.stdout.bytes);
        let mut end = Map::new();
        end.insert(
            "success".into(),
            json!(matches!(outcome, Outcome::Resumed { .. })),
        );
        let error = match &outcome {
            Outcome::Resumed { .. } => None,
            Outcome::Failed { reason } | Outcome::Skipped { reason } => Some(reason.clone()),
            Outcome::NeedsUser { what } => Some(what.clone()),
            Outcome::LimitAgain { detail, .. } => Some(detail.clone()),
            Outcome::Deferred { view, .. } => Some(view.why.clone()),
        };
        end.insert("error".into(), json!(error));
        evs.push(("session_ended", end));
        append(t, env, log, evs).await;
    }
    outcome
}

/// The child's extra environment: the binary's own dir first on PATH (an
/// npm/nvm CLI's `#!/usr/bin/env node` needs its node, which a systemd user
/// service's PATH lacks), for zag sessions the `ZAG_*` identity zag sets, and
/// what the provider asks for
/// ([`ProviderCli::child_env`](crate::provider::ProviderCli::child_env)).
/// A limit in seconds from the config, where 0 means none.
fn secs(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n))
}

fn child_env(t: &ResolvedTarget, program: &std::path::Path) -> Vec<(String, OsString)> {
    let mut env = Vec::new();
    let mut dirs: Vec<PathBuf> = program.parent().map(PathBuf::from).into_iter().collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    if let Ok(p) = std::env::join_paths(dirs) {
        env.push(("PATH".to_string(), p));
    }
    if t.is_zag() {
        if let Some(w) = &t.wrapper_session_id {
            env.push(("ZAG_SESSION_ID".into(), w.into()));
        }
        env.push(("ZAG_PROVIDER".into(), t.provider.as_str().into()));
        if let Some(m) = &t.model {
            env.push(("ZAG_MODEL".into(), m.into()));
        }
    }
    for (k, v) in crate::provider::of(t.provider).child_env() {
        env.push(((*k).into(), (*v).into()));
    }
    env
}

fn line_detector(
    env: &ResumeEnv,
    detect: Option<DetectFn>,
    p: crate::detect::Provider,
) -> respawn::LineDetect {
    // Output is read as it is printed: now is the line's time.
    let clock = env.clock.clone();
    let ctx = move || LineContext {
        source: SourceKind::ZagSpawn,
        provider_hint: Some(p),
        anchor: clock.now(),
    };
    match detect {
        Some(f) => Arc::new(move |line: &[u8]| f(line, &ctx())),
        None => {
            let d = env.detector.clone();
            Arc::new(move |line: &[u8]| d.detect(line, &ctx()))
        }
    }
}

/// The envelope facts of our events in a target's zag log: provider and
/// wrapper id (fallbacks for a log that names neither), and now.
fn envelope(
    t: &ResolvedTarget,
    env: &ResumeEnv,
) -> (String, String, chrono::DateTime<chrono::Utc>) {
    let provider = t.provider.as_str().to_string();
    let wrapper = t.wrapper_session_id.clone().unwrap_or_default();
    (provider, wrapper, env.clock.now())
}

/// Append events to a zag session log; a failure is logged, not fatal.
async fn append(
    t: &ResolvedTarget,
    env: &ResumeEnv,
    log: &std::path::Path,
    evs: Vec<events::Event>,
) {
    let log = log.to_path_buf();
    let (provider, wrapper, ts) = envelope(t, env);
    let r = tokio::task::spawn_blocking(move || {
        for (kind, fields) in evs {
            zaglog::append_event(&log, &provider, &wrapper, ts, kind, fields)?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if let Err(e) = r.map_err(std::io::Error::other).and_then(|r| r) {
        tracing::warn!(error = %e, "appending the resumed run to the zag log");
    }
}

/// [`append`] for one event, prepared but not written: the log's path and
/// the line for [`zaglog::write_prepared`]. `None` (logged) when the log
/// cannot be read.
async fn prepare(
    t: &ResolvedTarget,
    env: &ResumeEnv,
    log: &std::path::Path,
    (kind, fields): events::Event,
) -> Option<(PathBuf, String)> {
    let log = log.to_path_buf();
    let (provider, wrapper, ts) = envelope(t, env);
    let r = tokio::task::spawn_blocking(move || {
        let line = zaglog::prepare_event(&log, &provider, &wrapper, ts, kind, fields)?;
        Ok::<_, std::io::Error>((log, line))
    })
    .await;
    r.map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| tracing::warn!(error = %e, "reading the zag log for the resumed turn"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_in(cwd: &std::path::Path) -> ResolvedTarget {
        ResolvedTarget {
            incident_id: "i".into(),
            provider: crate::detect::Provider::Claude,
            channel: Channel::Respawn,
            wrapper_session_id: None,
            provider_session_id: None,
            cwd: Some(cwd.to_path_buf()),
            model: None,
            prompt: None,
            message: "Continue".into(),
            zag_log: None,
            native_file: None,
            auto_approve: false,
            permission_mode: None,
            respawn_error: None,
            cwd_identity: crate::store::CwdIdentity::of(cwd).ok(),
        }
    }

    #[test]
    fn a_gone_replaced_or_foreign_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let cwd = d.path().join("proj");
        std::fs::create_dir(&cwd).unwrap();
        let t = target_in(&cwd);
        assert_eq!(cwd_refusal(&t), None, "the same place");
        // nothing recorded (an older record): not refused
        let mut old = t.clone();
        old.cwd_identity = None;
        std::fs::remove_dir(&cwd).unwrap();
        assert_eq!(cwd_refusal(&old), None);
        let gone = cwd_refusal(&t).unwrap();
        assert!(gone.contains("is gone"), "{gone}");
        // made again at the same path: ext4 hands the inode back at once
        std::fs::create_dir(&cwd).unwrap();
        let replaced = cwd_refusal(&t).unwrap();
        assert!(replaced.contains("was replaced"), "{replaced}");
        // the same directory, another owner (only root can give it away)
        let t = target_in(&cwd);
        let c = std::ffi::CString::new(cwd.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; chown fails cleanly when not permitted.
        if unsafe { libc::chown(c.as_ptr(), 54321, u32::MAX) } == 0 {
            let foreign = cwd_refusal(&t).unwrap();
            assert!(foreign.contains("now owned by uid 54321"), "{foreign}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_fallback(3_600, 1), 3_600);
        assert_eq!(backoff_fallback(3_600, 2), 7_200);
        assert_eq!(backoff_fallback(3_600, 3), 14_400);
        assert_eq!(backoff_fallback(3_600, 0), 3_600);
        assert_eq!(backoff_fallback(3_600, 40), 86_400);
        assert_eq!(backoff_fallback(u64::MAX, 5), 86_400);
    }
}
