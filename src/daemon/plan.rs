//! The core's decisions, free of I/O: what a hit, a due timer, an outcome or
//! a cancel should lead to, as a plan the core then carries out.
//!
//! Every function here is a pure function of facts (the limit line, what is
//! known of its session, the stores' replays), the project's limits and
//! `now`. The core (`super`) owns the state and the disk; keeping the rules
//! here lets them be tested in microseconds on an injected `now`, and keeps
//! the core's loop to bookkeeping while the disk work runs elsewhere.
//!
//! These functions are the transitions of an [`Incident`]'s life
//! ([`super::incident`]): [`plan_hit`] turns a line into a seen incident;
//! once its session is resolved (disk work, off the loop), [`settle`]
//! completes it and [`plan_live`] and [`known`] tell whether it is new or
//! one already live, recorded or being written; [`plan_fire`] decides a due
//! one, [`plan_outcome`] how a delivery's end is recorded,
//! [`plan_reschedule`] a re-hit's next attempt, [`plan_supersede`] which of
//! two pending ones of a session stays, and [`plan_cancel`] whether a cancel
//! may go ahead.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

use super::incident::{Incident, State};
use crate::config::UsageLimits;
use crate::control::history::NEEDS_USER_PREFIX;
use crate::control::IncidentEvent;
use crate::detect::{Detection, Provider, SourceKind};
use crate::paths::Paths;
use crate::resume::{self, Outcome, ResolvedTarget};
use crate::schedule::due_time;
use crate::session::SessionIdentity;
use crate::store::dedupe::{
    find_same_incident, incident_id_for, same_incident, zag_owner_of, ResetWindow,
};
use crate::store::{CompleteStatus, Record, Replay, Schedule, ORIGIN};

/// A line to append to a zag session log (the envelope's fallbacks and
/// time included, so carrying it out needs nothing else).
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub log: PathBuf,
    pub provider: String,
    pub wrapper: String,
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub fields: Map<String, Value>,
}

impl LogLine {
    fn new(
        log: &Path,
        s: &Schedule,
        at: DateTime<Utc>,
        kind: &'static str,
        fields: Map<String, Value>,
    ) -> Self {
        LogLine {
            log: log.to_path_buf(),
            provider: s.provider.clone(),
            wrapper: s
                .wrapper_session_id
                .clone()
                .unwrap_or_else(|| s.session_id.clone()),
            at,
            kind,
            fields,
        }
    }
}

/// What a hit is, before its session is resolved.
#[derive(Debug)]
pub enum HitPlan {
    /// A `usage_limit_hit` that names its scheduled resume: the scheduler
    /// that wrote it owns it (zag-contract §3.3).
    OwnedByScheduler,
    /// Auto-resume is off for this provider: only tell subscribers.
    Disabled { event: IncidentEvent },
    /// An incident in [`State::Seen`], in its project's store: new unless
    /// [`plan_live`] or [`known`] find it after resolving.
    Seen(Box<Incident>),
}

/// Everything [`plan_hit`] decides from.
pub struct HitFacts<'a> {
    pub detection: &'a Detection,
    pub file: &'a Path,
    pub source: SourceKind,
    /// What is known of the session: merged by [`session_of`].
    pub session: &'a SessionIdentity,
    /// The project dir (from [`project_of`]): its store and its limits.
    pub project: &'a Path,
    pub attempt: u32,
    /// The incident a re-hit continues.
    pub chain: Option<&'a Schedule>,
}

/// The one merge of a hit's session facts: the limit line's own, then the
/// file's (`tracked`), then the chain's, by [`SessionIdentity::merge`].
pub fn session_of(
    d: &Detection,
    file: &Path,
    source: SourceKind,
    tracked: &SessionIdentity,
    chain: Option<&Schedule>,
) -> SessionIdentity {
    let line = SessionIdentity {
        provider: Some(d.provider),
        wrapper_session_id: d.wrapper_session_id.clone(),
        provider_session_id: d.provider_session_id.clone(),
        cwd: d.cwd.clone(),
        // A zag session log is its own zag log, whatever the tracker says.
        zag_log: (source == SourceKind::ZagSession).then(|| file.to_path_buf()),
        ..Default::default()
    };
    let mut s = line.merged(tracked);
    if let Some(c) = chain {
        s.merge(&session_of_schedule(c));
    }
    s
}

/// What a recorded incident knows of its session.
pub fn session_of_schedule(s: &Schedule) -> SessionIdentity {
    SessionIdentity {
        provider: Provider::parse(&s.provider),
        wrapper_session_id: s.wrapper_session_id.clone(),
        provider_session_id: s.provider_session_id.clone(),
        cwd: s.cwd.clone(),
        model: s.model.clone(),
        last_prompt: s.prompt.clone(),
        command: None,
        zag_log: (!s.log_path.is_empty()).then(|| PathBuf::from(&s.log_path)),
        permission_mode: s.permission_mode.clone(),
    }
}

/// The one project rule: the project of the session's zag log, else the
/// one zag would use for its cwd (`project_for_cwd`, which looks for `.git`
/// and so is passed in), else the global dir.
pub fn project_of(
    paths: &Paths,
    session: &SessionIdentity,
    project_for_cwd: impl FnOnce(&str) -> PathBuf,
) -> PathBuf {
    session
        .zag_log
        .as_deref()
        .and_then(crate::paths::project_of_log)
        .or_else(|| session.cwd.as_deref().map(project_for_cwd))
        .unwrap_or_else(|| paths.zag_home.clone())
}

/// The slack within which two records are one limit.
pub fn slack(limits: &UsageLimits) -> Duration {
    secs(
        limits
            .jitter_secs
            .saturating_add(limits.stagger_secs)
            .saturating_add(300),
    )
}

/// Decide what a detected limit becomes, before its session is resolved.
pub fn plan_hit(f: &HitFacts<'_>, limits: &UsageLimits, now: DateTime<Utc>) -> HitPlan {
    let d = f.detection;
    if d.zag_hit
        .as_ref()
        .is_some_and(|z| z.scheduled_resume_at.is_some())
    {
        return HitPlan::OwnedByScheduler;
    }
    let provider = d.provider;
    let session = f.session;
    let session_id = session.display_id().unwrap_or("unknown").to_string();
    let hit_event = |incident_id: String| IncidentEvent::Hit {
        incident_id,
        provider: provider.to_string(),
        session_id: session_id.clone(),
        scope: d.scope.as_str().into(),
        reset_at: d.reset_at,
        file: f.file.display().to_string(),
        at: now,
        needs_user: d.needs_user.map(|n| n.as_str().to_string()),
    };
    if !limits.enabled_for(provider) {
        return HitPlan::Disabled {
            event: hit_event(String::new()),
        };
    }
    let hit_at = d.line_ts.unwrap_or(now);
    let session_key = session
        .display_id()
        .map_or_else(|| f.file.display().to_string(), str::to_string);
    let window = d
        .reset_at
        .map_or(ResetWindow::Hit(hit_at), ResetWindow::Reset);
    let incident_id = incident_id_for(provider.as_str(), &session_key, window, f.attempt);
    // A limit no wait lifts gets no resume time: it is recorded as needing
    // the user at once (see [`at_once`]); `when` is only the record's now.
    let (due, fallback_used) = match d.needs_user {
        Some(_) => (now, None),
        None => {
            let (due, fallback) = due_time(d.reset_at, provider, limits, now, &incident_id);
            (due, Some(fallback))
        }
    };
    let schedule = Schedule {
        incident_id: incident_id.clone(),
        session_id: session_id.clone(),
        provider: provider.to_string(),
        model: session.model.clone(),
        root: None,
        when: due,
        message: limits.resume_message_for(provider).to_string(),
        attempt: f.attempt,
        log_path: session
            .zag_log
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        origin: Some(ORIGIN.into()),
        scope: Some(d.scope.as_str().into()),
        reset_at: d.reset_at,
        fallback_used,
        provider_session_id: session.provider_session_id.clone(),
        wrapper_session_id: session.wrapper_session_id.clone(),
        cwd: session.cwd.clone(),
        prompt: session.last_prompt.clone(),
        source_file: Some(f.file.display().to_string()),
        hit_at: Some(hit_at),
        chain_id: f
            .chain
            .map(|c| c.chain_id.clone().unwrap_or_else(|| c.incident_id.clone())),
        raw: Some(truncate(&d.raw, 512)),
        permission_mode: session.permission_mode.clone(),
        wait_from: None,
        cwd_identity: None,
        live: None,
        needs_user: d.needs_user.map(|n| n.as_str().to_string()),
        // The user's message and a forced retry are this incident's only:
        // a new incident starts from the configured message and the checks.
        custom_message: None,
        force: None,
    };
    let store: std::sync::Arc<Path> = Paths::store_in(f.project).into();
    HitPlan::Seen(Box::new(Incident::new(
        std::sync::Arc::new(schedule),
        store,
        State::Seen {
            detection: Box::new(d.clone()),
            hit_event: Box::new(hit_event(incident_id)),
            acks: Vec::new(),
        },
    )))
}

/// Complete a seen incident with what the resolve found: every source of
/// one limit then carries the same provider session id (a relay's log never
/// names Claude's), so [`known`] can see they are one.
pub fn settle(c: &mut Incident, resolved: Option<&ResolvedTarget>) {
    let s = std::sync::Arc::make_mut(&mut c.schedule);
    if let Some(t) = resolved {
        fill(&mut s.provider_session_id, t.provider_session_id.clone());
        fill(&mut s.cwd, t.cwd.as_ref().map(|p| p.display().to_string()));
        fill(&mut s.model, t.model.clone());
        fill(&mut s.prompt, t.prompt.clone());
        fill(&mut s.permission_mode, t.permission_mode.clone());
        if s.cwd_identity.is_none() {
            s.cwd_identity = t.cwd_identity;
        }
    }
    // Only a resume that sends the prompt again (Gemini's) needs it; for
    // the others it would be up to 64 KB of the user's text copied into
    // every record for nothing (store size, start-up replay, privacy).
    let resends =
        Provider::parse(&s.provider).is_some_and(|p| crate::provider::of(p).resends_prompt());
    if !resends {
        s.prompt = None;
    }
}

/// The id of an incident already known for the same limit: recorded in a
/// store (pending or done, ours or zag's) or still being written.
pub fn known<'a>(
    candidate: &Schedule,
    slack: Duration,
    replays: impl IntoIterator<Item = &'a Replay>,
    writing: impl IntoIterator<Item = &'a Schedule>,
) -> Option<String> {
    for s in writing {
        if s.incident_id == candidate.incident_id || same_incident(s, candidate, slack) {
            return Some(s.incident_id.clone());
        }
    }
    replays.into_iter().find_map(|replay| {
        if replay.scheduled.contains_key(&candidate.incident_id) {
            return Some(candidate.incident_id.clone());
        }
        find_same_incident(replay, candidate, slack)
    })
}

/// What a candidate is, given the live incidents of its session.
#[derive(Clone, Debug, PartialEq)]
pub enum LivePlan {
    /// Nothing live for the session stands in its way: dedupe and write it.
    New,
    /// It is this live incident (seen again, by another source or later).
    Is(String),
    /// The resumed run of this incident (being delivered) hit the limit
    /// again: the chain's next attempt, planned by [`plan_reschedule`].
    NextAttempt(Box<Schedule>),
}

/// The chain an incident belongs to (its first incident's id).
pub fn chain_of(s: &Schedule) -> &str {
    s.chain_id.as_deref().unwrap_or(&s.incident_id)
}

/// One pending-or-running resume per session. A hit of a session that has
/// a live incident `e` of ours:
/// - `e` pending (or being written), the hit's line written after `e`'s
///   reset: the session was continued meanwhile by someone else (its
///   provider's own continue, its user in a live TUI `e` waited on) and met
///   a limit again: the chain's next attempt, which then supersedes `e`.
/// - `e` pending (or being written): the hit *is* `e`. Nothing of ours ran
///   between `e`'s limit and its resume, so the session is still limited:
///   a second source of the same limit, a poke that met it again, or the
///   late second sighting of a re-hit that became `e` first (the delivery's
///   `LimitAgain`, or the watcher's line): one record however many sources
///   show it, in whichever order. A later reset learnt meanwhile is not
///   lost: if `e`'s resume comes too early, it hits the limit again and the
///   chain goes on.
/// - `e` being delivered, and the hit is its resumed run's (its line's time
///   is not before the delivery started): the chain's next attempt, once:
///   the candidate that carries it (chained to `e`, a higher attempt) is
///   new; then it is the live pending one, and `e`'s own `LimitAgain`
///   joins it by the rule above.
/// - `e` being delivered, the hit older than that: the limit `e` is
///   resuming from, seen again.
///
/// `live` is what the core files under the session (an incident going away,
/// cancelled or ended without a delivery, does not count).
pub fn plan_live(candidate: &Schedule, live: &[&Incident]) -> LivePlan {
    let others = live.iter().filter(|l| {
        l.state.is_live() && l.schedule.provider == candidate.provider && l.schedule.is_ours()
    });
    let mut running = None;
    for l in others {
        let e = &*l.schedule;
        if e.incident_id == candidate.incident_id {
            return LivePlan::Is(e.incident_id.clone());
        }
        // The next attempt of `e`'s own chain, planned from it: not a
        // sighting of `e`, whatever `e` is doing.
        if candidate.chain_id.as_deref() == Some(chain_of(e)) && candidate.attempt > e.attempt {
            continue;
        }
        match l.state.running_since() {
            None => {
                // A limit met after `e`'s reset: the session ran in between
                // (its provider's own continue, or its user in the live TUI
                // `e` waits on) and hit a limit again. That is a new limit:
                // the chain's next attempt, which supersedes `e`.
                let reset = e.reset_at.unwrap_or(e.when);
                return match candidate.hit_at {
                    Some(hit) if hit > reset => LivePlan::NextAttempt(Box::new(e.clone())),
                    _ => LivePlan::Is(e.incident_id.clone()),
                };
            }
            Some(at) => running = running.or(Some((e, at))),
        }
    }
    let Some((e, fired_at)) = running else {
        return LivePlan::New;
    };
    match candidate.hit_at {
        Some(hit) if hit < fired_at => LivePlan::Is(e.incident_id.clone()),
        _ => LivePlan::NextAttempt(Box::new(e.clone())),
    }
}

/// Several pending incidents of ours for one session (a store written by a
/// crash between a re-hit's two sightings, or by an older version): the
/// one kept is the furthest down its chain (the highest attempt), then the
/// most recent sighting, then the latest due, then the smallest id; the
/// others are superseded by it. Returns (kept, superseded).
pub fn plan_supersede<'a>(pending: &[&'a Schedule]) -> Option<(&'a Schedule, Vec<&'a Schedule>)> {
    let keep = pending.iter().copied().max_by(|a, b| {
        (a.attempt, a.hit_at, a.when)
            .cmp(&(b.attempt, b.hit_at, b.when))
            .then_with(|| b.incident_id.cmp(&a.incident_id))
    })?;
    let rest = pending
        .iter()
        .copied()
        .filter(|s| s.incident_id != keep.incident_id)
        .collect();
    Some((keep, rest))
}

/// The zag-log lines of a new incident: the hit, and a companion
/// `user_event` (zag's typed readers drop hit lines, zag-contract §2.3).
pub fn hit_log_lines(s: &Schedule, d: &Detection, now: DateTime<Utc>) -> Vec<LogLine> {
    let Some(log) = (!s.log_path.is_empty()).then(|| PathBuf::from(&s.log_path)) else {
        return Vec::new();
    };
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
    // `scheduled_resume_at` stays (our own line read back is then known as
    // owned); its `complete` follows at once and says it needs the user.
    let message = match resume::needs_user_what(s) {
        Some(what) => {
            f.insert("needs_user".into(), json!(s.needs_user));
            format!(
                "zag-resumed: {} limit no wait lifts, not resumed: {what}",
                s.provider
            )
        }
        None => format!(
            "zag-resumed: {} {}; resume scheduled at {}",
            s.provider,
            d.scope.describe(),
            s.when.to_rfc3339()
        ),
    };
    let mut u = Map::new();
    u.insert("level".into(), json!("warn"));
    u.insert("message".into(), json!(message));
    u.insert("data".into(), json!({"incident_id": s.incident_id, "scheduled_resume_at": s.when.to_rfc3339(), "attempt": s.attempt, "origin": ORIGIN}));
    vec![
        LogLine::new(&log, s, now, "usage_limit_hit", f),
        LogLine::new(&log, s, now, "user_event", u),
    ]
}

/// What a newly written incident becomes at once, without a timer: one no
/// wait lifts needs the user; one whose session cannot be resolved
/// (`unresolvable`, the resolve's reason) fails. `None`: arm it.
pub fn at_once(s: &Schedule, unresolvable: Option<String>) -> Option<Outcome> {
    if let Some(what) = resume::needs_user_what(s) {
        return Some(Outcome::NeedsUser { what });
    }
    unresolvable.map(|reason| Outcome::Failed {
        reason: format!("cannot resume: {reason}"),
    })
}

/// What to do when an incident's timer fires (after the store is re-read).
#[derive(Clone, Debug, PartialEq)]
pub enum FirePlan {
    Deliver,
    /// Not ours to deliver: recorded as skipped.
    Skip {
        reason: String,
    },
}

/// zag's own relay or exec loop may have recorded this very limit after we
/// did (both read the same line at the same moment): then it is zag's to
/// deliver, and two resumes would double the turn.
pub fn plan_fire<'a>(
    s: &Schedule,
    limits: &UsageLimits,
    replays: impl IntoIterator<Item = &'a Replay>,
) -> FirePlan {
    let slack = slack(limits);
    match replays
        .into_iter()
        .find_map(|r| zag_owner_of(r, s, slack))
    {
        Some(zag_id) => FirePlan::Skip {
            reason: format!("zag's own scheduler recorded this limit too (its incident {zag_id}) and delivers it"),
        },
        None => FirePlan::Deliver,
    }
}

/// How a delivery's end is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomePlan {
    /// The `complete` record: the commit point of the resume.
    pub record: Record,
    /// The lifecycle line for the session's zag log, if it has one.
    pub log: Option<LogLine>,
    pub event: IncidentEvent,
    /// A re-hit: the detection that becomes the next incident.
    pub again: Option<Detection>,
}

/// Plan the record, log line and event of a delivery's end.
pub fn plan_outcome(s: &Schedule, outcome: &Outcome, now: DateTime<Utc>) -> OutcomePlan {
    let id = &s.incident_id;
    let (status, error) = match outcome {
        Outcome::Resumed { .. } => (CompleteStatus::Resumed, None),
        Outcome::Failed { reason } => (CompleteStatus::Failed, Some(reason.clone())),
        Outcome::Skipped { reason } => (CompleteStatus::Failed, Some(format!("skipped: {reason}"))),
        Outcome::NeedsUser { what } => (
            CompleteStatus::Failed,
            Some(format!("{NEEDS_USER_PREFIX}{what}")),
        ),
        Outcome::LimitAgain { detail, .. } => (
            CompleteStatus::Failed,
            Some(format!("limit hit again: {detail}")),
        ),
        // The core re-arms a deferral instead of completing it; should one
        // reach here, it is recorded as what it is, not as a resume.
        Outcome::Deferred { view, .. } => (
            CompleteStatus::Failed,
            Some(format!("deferred: {}", view.why)),
        ),
    };
    let (incident_id, provider, session_id, at) =
        (id.clone(), s.provider.clone(), s.session_id.clone(), now);
    let event = match outcome {
        Outcome::Resumed { detail } => IncidentEvent::Resumed {
            incident_id,
            provider,
            session_id,
            detail: detail.clone(),
            permission_mode: s.permission_mode.clone(),
            at,
        },
        Outcome::Skipped { reason } => IncidentEvent::Skipped {
            incident_id,
            provider,
            session_id,
            reason: reason.clone(),
            at,
        },
        Outcome::NeedsUser { what } => IncidentEvent::NeedsUser {
            incident_id,
            provider,
            session_id,
            what: what.clone(),
            at,
        },
        Outcome::Failed { .. } | Outcome::LimitAgain { .. } | Outcome::Deferred { .. } => {
            IncidentEvent::Failed {
                incident_id,
                provider,
                session_id,
                reason: error.clone().unwrap_or_default(),
                at,
            }
        }
    };
    let log = (!s.log_path.is_empty()).then(|| {
        let log = PathBuf::from(&s.log_path);
        let mut f = Map::new();
        f.insert("incident_id".into(), json!(id));
        f.insert("attempt".into(), json!(s.attempt));
        match status {
            CompleteStatus::Resumed => {
                f.insert("resume_message".into(), json!(s.message));
                LogLine::new(&log, s, now, "usage_limit_resumed", f)
            }
            CompleteStatus::Failed => {
                f.insert("error".into(), json!(error.clone().unwrap_or_default()));
                LogLine::new(&log, s, now, "usage_limit_resume_failed", f)
            }
        }
    });
    OutcomePlan {
        record: Record::Complete {
            incident_id: id.clone(),
            status,
            error,
        },
        log,
        event,
        again: match outcome {
            Outcome::LimitAgain { detection, .. } => Some(detection.clone()),
            _ => None,
        },
    }
}

/// What a re-hit of a resumed run becomes.
#[derive(Clone, Debug, PartialEq)]
pub enum Reschedule {
    /// `max_attempts` reached: only tell subscribers.
    GiveUp { event: IncidentEvent },
    /// A new incident, attempt + 1, planned like any hit from these facts.
    Retry {
        detection: Box<Detection>,
        file: PathBuf,
        source: SourceKind,
        session: SessionIdentity,
        attempt: u32,
    },
}

/// A resumed run hit the limit again: a new incident, attempt + 1, with the
/// fallback doubling per attempt when the provider gives no reset.
pub fn plan_reschedule(
    s: &Schedule,
    mut detection: Detection,
    limits: &UsageLimits,
    now: DateTime<Utc>,
) -> Option<Reschedule> {
    let provider = Provider::parse(&s.provider)?;
    let next = s.attempt + 1;
    if limits.max_attempts > 0 && next > limits.max_attempts {
        return Some(Reschedule::GiveUp {
            event: IncidentEvent::Failed {
                incident_id: s.incident_id.clone(),
                provider: s.provider.clone(),
                session_id: s.session_id.clone(),
                reason: format!("gave up after {} attempts (max_attempts)", s.attempt),
                at: now,
            },
        });
    }
    // A limit no wait lifts gets no made-up reset: it needs the user.
    if detection.reset_at.is_none() && detection.needs_user.is_none() {
        let wait = resume::backoff_fallback(limits.fallback_secs_for(provider), next);
        detection.reset_at = Some(now + secs(wait));
    }
    detection.line_ts = Some(now);
    let (source, file) = if s.log_path.is_empty() {
        (
            SourceKind::Unknown,
            PathBuf::from(s.source_file.clone().unwrap_or_default()),
        )
    } else {
        (SourceKind::ZagSession, PathBuf::from(&s.log_path))
    };
    Some(Reschedule::Retry {
        detection: Box::new(detection),
        file,
        source,
        session: session_of_schedule(s),
        attempt: next,
    })
}

/// A cancel by request of what `pending` found (in a store), our incident
/// being in `state` (`None`: not ours, zag's own record): refused while the
/// incident is due or being delivered or its outcome recorded (the turn may
/// already be sent; its outcome will be recorded instead), or while an
/// earlier cancel of it is being written. One whose `schedule` is still
/// being written may be cancelled: the store shows it pending already.
pub fn plan_cancel<T>(id: &str, pending: Option<T>, state: Option<&State>) -> Result<T, String> {
    let found = pending.ok_or_else(|| format!("no pending resume with incident id {id}"))?;
    match state {
        None => Ok(found),
        Some(s) if s.is_waiting() => Ok(found),
        Some(State::Seen { .. } | State::Writing { .. }) => Ok(found),
        Some(State::Done {
            cancel: Some(_), ..
        }) => Err(format!("{id} is being cancelled already")),
        Some(_) => Err(format!("{id} is being delivered right now")),
    }
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1_000_000))
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
    use crate::detect::{Scope, ZagHit};

    fn now() -> DateTime<Utc> {
        "2026-11-24T10:00:00Z".parse().unwrap()
    }

    fn limits() -> UsageLimits {
        UsageLimits {
            jitter_secs: 0,
            stagger_secs: 0,
            ..UsageLimits::default()
        }
    }

    fn paths() -> Paths {
        Paths::new(Path::new("/h"), None)
    }

    fn detection(reset_in_secs: Option<i64>) -> Detection {
        Detection {
            provider: Provider::Claude,
            scope: Scope::Session,
            reset_at: reset_in_secs.map(|s| now() + Duration::seconds(s)),
            raw: "Claude AI usage limit reached".into(),
            line_ts: Some(now()),
            ..Detection::default()
        }
    }

    /// Plan a first hit of `d` in `file` with the session `tracked`.
    fn plan(d: &Detection, file: &str, source: SourceKind, tracked: &SessionIdentity) -> HitPlan {
        plan_with(d, file, source, tracked, &limits())
    }

    fn plan_with(
        d: &Detection,
        file: &str,
        source: SourceKind,
        tracked: &SessionIdentity,
        limits: &UsageLimits,
    ) -> HitPlan {
        let file = Path::new(file);
        let session = session_of(d, file, source, tracked, None);
        let project = project_of(&paths(), &session, |_| PathBuf::from("/h/.zag"));
        let facts = HitFacts {
            detection: d,
            file,
            source,
            session: &session,
            project: &project,
            attempt: 1,
            chain: None,
        };
        plan_hit(&facts, limits, now())
    }

    fn candidate(p: HitPlan) -> Incident {
        match p {
            HitPlan::Seen(c) => *c,
            other => panic!("not a candidate: {other:?}"),
        }
    }

    fn schedule_of(p: HitPlan) -> Schedule {
        (*candidate(p).schedule).clone()
    }

    fn detection_of(c: &Incident) -> &Detection {
        match &c.state {
            State::Seen { detection, .. } => detection,
            other => panic!("not seen: {other:?}"),
        }
    }

    /// `s` as the core files it: pending (`None`) or being delivered since.
    fn filed(s: &Schedule, fired_at: Option<DateTime<Utc>>) -> Incident {
        let state = match fired_at {
            Some(since) => State::Delivering { since },
            None => State::Armed,
        };
        Incident::new(
            std::sync::Arc::new(s.clone()),
            Path::new("/h/.zag/scheduled_resumes.jsonl").into(),
            state,
        )
    }

    fn replay_of(records: &[Schedule]) -> Replay {
        let mut r = Replay::default();
        for s in records {
            r.apply(Record::Schedule(s.clone()));
        }
        r
    }

    fn relay() -> (SessionIdentity, &'static str) {
        let log = "/h/.zag/logs/sessions/w1.jsonl";
        (
            SessionIdentity {
                provider: Some(Provider::Claude),
                wrapper_session_id: Some("w1".into()),
                cwd: Some("/repo".into()),
                zag_log: Some(PathBuf::from(log)),
                ..Default::default()
            },
            log,
        )
    }

    fn native() -> (SessionIdentity, &'static str) {
        (
            SessionIdentity {
                provider: Some(Provider::Claude),
                provider_session_id: Some("claude-1".into()),
                cwd: Some("/repo".into()),
                ..Default::default()
            },
            "/h/.claude/projects/-repo/claude-1.jsonl",
        )
    }

    fn resolved_to(id: &str) -> ResolvedTarget {
        ResolvedTarget {
            incident_id: String::new(),
            provider: Provider::Claude,
            channel: crate::resume::Channel::Respawn,
            wrapper_session_id: None,
            provider_session_id: Some(id.into()),
            cwd: Some(PathBuf::from("/repo")),
            model: Some("opus".into()),
            prompt: Some("fix it".into()),
            message: "Continue".into(),
            zag_log: None,
            native_file: None,
            auto_approve: false,
            respawn_error: None,
            cwd_identity: None,
            permission_mode: None,
        }
    }

    #[test]
    fn a_hit_its_scheduler_owns_is_left_to_it() {
        let mut d = detection(Some(3600));
        d.zag_hit = Some(ZagHit {
            scheduled_resume_at: Some(now()),
            ..ZagHit::default()
        });
        let (s, log) = relay();
        let owned = plan(&d, log, SourceKind::ZagSession, &s);
        assert!(matches!(owned, HitPlan::OwnedByScheduler), "{owned:?}");
        // Logged by zag without a scheduled resume: an orphan, ours.
        d.zag_hit = Some(ZagHit::default());
        candidate(plan(&d, log, SourceKind::ZagSession, &s));
    }

    #[test]
    fn a_disabled_provider_only_publishes_the_hit() {
        let mut l = limits();
        l.providers.insert(
            "claude".into(),
            crate::config::ProviderLimits {
                enabled: Some(false),
                ..Default::default()
            },
        );
        let (s, log) = relay();
        match plan_with(&detection(Some(60)), log, SourceKind::ZagSession, &s, &l) {
            HitPlan::Disabled {
                event:
                    IncidentEvent::Hit {
                        incident_id,
                        session_id,
                        ..
                    },
            } => {
                assert_eq!(incident_id, "");
                assert_eq!(session_id, "w1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_candidate_is_due_at_the_reset_in_its_projects_store() {
        let (s, log) = relay();
        let c = candidate(plan(
            &detection(Some(3600)),
            log,
            SourceKind::ZagSession,
            &s,
        ));
        assert_eq!(c.schedule.when, now() + Duration::seconds(3600));
        assert_eq!(c.schedule.fallback_used, Some(false));
        assert_eq!(c.schedule.session_id, "w1");
        assert_eq!(c.schedule.log_path, log);
        assert_eq!(c.schedule.origin.as_deref(), Some(ORIGIN));
        assert_eq!(&*c.store, Path::new("/h/.zag/scheduled_resumes.jsonl"));
        assert_eq!(slack(&limits()), Duration::seconds(300));
        // Its zag log gets the hit and the companion user_event.
        let kinds: Vec<_> = hit_log_lines(&c.schedule, detection_of(&c), now())
            .into_iter()
            .map(|l| (l.kind, l.wrapper))
            .collect();
        assert_eq!(
            kinds,
            [
                ("usage_limit_hit", "w1".into()),
                ("user_event", "w1".into())
            ]
        );
        // Without a reset: the fallback wait, flagged.
        let c = candidate(plan(&detection(None), log, SourceKind::ZagSession, &s));
        assert_eq!(c.schedule.when, now() + Duration::seconds(3600));
        assert_eq!(c.schedule.fallback_used, Some(true));
    }

    #[test]
    fn one_limit_seen_in_a_relay_log_and_in_claudes_transcript_is_one_incident() {
        let d = detection(Some(3600));
        let (relay_s, relay_log) = relay();
        let mut first = candidate(plan(&d, relay_log, SourceKind::ZagSession, &relay_s));
        // The relay never names Claude's id: the resolve finds it.
        settle(&mut first, Some(&resolved_to("claude-1")));
        assert_eq!(
            first.schedule.provider_session_id.as_deref(),
            Some("claude-1")
        );
        assert_eq!(first.schedule.model.as_deref(), Some("opus"));
        assert_eq!(first.schedule.prompt, None, "only Gemini keeps the prompt");
        let (native_s, native_file) = native();
        let mut second = candidate(plan(&d, native_file, SourceKind::ClaudeNative, &native_s));
        settle(&mut second, None);
        assert_ne!(first.schedule.incident_id, second.schedule.incident_id);
        let none: [&Replay; 0] = [];
        // Still being written: the dedupe sees it.
        assert_eq!(
            known(&second.schedule, slack(&limits()), none, [&*first.schedule]),
            Some(first.schedule.incident_id.clone())
        );
        // Durable in a store: the same.
        let replay = replay_of(&[(*first.schedule).clone()]);
        let nothing: [&Schedule; 0] = [];
        assert_eq!(
            known(&second.schedule, slack(&limits()), [&replay], nothing),
            Some(first.schedule.incident_id.clone())
        );
        // Another limit of the same session (a reset a day later) is new.
        let mut later = candidate(plan(
            &detection(Some(86_400)),
            native_file,
            SourceKind::ClaudeNative,
            &native_s,
        ));
        settle(&mut later, None);
        assert_eq!(
            known(
                &later.schedule,
                slack(&limits()),
                [&replay],
                [&*first.schedule]
            ),
            None
        );
    }

    #[test]
    fn a_wrapper_placeholder_is_never_a_provider_id() {
        // An exec log: the line names the wrapper id as provider id.
        let mut d = detection(Some(60));
        d.provider_session_id = Some("w1".into());
        d.wrapper_session_id = Some("w1".into());
        let (s, log) = relay();
        let c = candidate(plan(&d, log, SourceKind::ZagSession, &s));
        assert_eq!(c.schedule.provider_session_id, None);
        assert_eq!(c.schedule.wrapper_session_id.as_deref(), Some("w1"));
    }

    #[test]
    fn a_limit_zag_recorded_too_is_skipped_at_fire_time() {
        let (s, log) = relay();
        let mut ours = schedule_of(plan(
            &detection(Some(3600)),
            log,
            SourceKind::ZagSession,
            &s,
        ));
        ours.provider_session_id = Some("claude-1".into());
        let zags = Schedule {
            incident_id: "zag-1".into(),
            origin: None,
            session_id: "w1".into(),
            wrapper_session_id: None,
            provider_session_id: None,
            fallback_used: None,
            hit_at: None,
            ..ours.clone()
        };
        let alone = replay_of(std::slice::from_ref(&ours));
        assert_eq!(plan_fire(&ours, &limits(), [&alone]), FirePlan::Deliver);
        let both = replay_of(&[ours.clone(), zags.clone()]);
        match plan_fire(&ours, &limits(), [&both]) {
            FirePlan::Skip { reason } => assert!(reason.contains("zag-1"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // Our adoption of that very record is ours to deliver.
        ours.chain_id = Some("zag-1".into());
        assert_eq!(plan_fire(&ours, &limits(), [&both]), FirePlan::Deliver);
    }

    #[test]
    fn a_re_hit_backs_off_and_stops_at_max_attempts() {
        let (s, log) = relay();
        let first = schedule_of(plan(&detection(Some(60)), log, SourceKind::ZagSession, &s));
        // Attempt 1 hit again without a reset: fallback doubled for attempt 2.
        match plan_reschedule(&first, detection(None), &limits(), now()) {
            Some(Reschedule::Retry {
                detection,
                attempt,
                source,
                file,
                session,
            }) => {
                assert_eq!(attempt, 2);
                assert_eq!(detection.reset_at, Some(now() + Duration::seconds(7200)));
                assert_eq!(detection.line_ts, Some(now()));
                assert_eq!((source, file), (SourceKind::ZagSession, PathBuf::from(log)));
                assert_eq!(session.wrapper_session_id.as_deref(), Some("w1"));
            }
            other => panic!("{other:?}"),
        }
        // A re-hit that names its reset keeps it.
        match plan_reschedule(&first, detection(Some(900)), &limits(), now()) {
            Some(Reschedule::Retry { detection, .. }) => {
                assert_eq!(detection.reset_at, Some(now() + Duration::seconds(900)));
            }
            other => panic!("{other:?}"),
        }
        let mut l = limits();
        l.max_attempts = 2;
        let second = Schedule {
            attempt: 2,
            ..first.clone()
        };
        match plan_reschedule(&second, detection(None), &l, now()) {
            Some(Reschedule::GiveUp {
                event: IncidentEvent::Failed { reason, .. },
            }) => assert_eq!(reason, "gave up after 2 attempts (max_attempts)"),
            other => panic!("{other:?}"),
        }
        // max_attempts = 0: no cap.
        l.max_attempts = 0;
        assert!(matches!(
            plan_reschedule(&second, detection(None), &l, now()),
            Some(Reschedule::Retry { attempt: 3, .. })
        ));
    }

    #[test]
    fn a_re_hits_incident_is_new_and_chained() {
        let (s, log) = relay();
        let first = schedule_of(plan(&detection(Some(60)), log, SourceKind::ZagSession, &s));
        let Some(Reschedule::Retry {
            detection,
            file,
            source,
            session,
            attempt,
        }) = plan_reschedule(&first, detection(Some(60)), &limits(), now())
        else {
            panic!("no retry");
        };
        let session = session_of(&detection, &file, source, &session, None);
        let facts = HitFacts {
            detection: &detection,
            file: &file,
            source,
            session: &session,
            project: Path::new("/h/.zag"),
            attempt,
            chain: Some(&first),
        };
        let next = schedule_of(plan_hit(&facts, &limits(), now()));
        assert_ne!(next.incident_id, first.incident_id, "attempt is in the id");
        assert_eq!(next.attempt, 2);
        assert_eq!(next.chain_id.as_deref(), Some(first.incident_id.as_str()));
        // Not the same incident as its predecessor for the dedupe.
        let replay = replay_of(std::slice::from_ref(&first));
        let nothing: [&Schedule; 0] = [];
        assert_eq!(known(&next, slack(&limits()), [&replay], nothing), None);
    }

    #[test]
    fn one_live_resume_per_session_whichever_source_shows_a_re_hit_first() {
        let (s, file) = native();
        // E: attempt 1, being delivered since `now`.
        let e = schedule_of(plan(
            &detection(Some(60)),
            file,
            SourceKind::ClaudeNative,
            &s,
        ));
        let fired = Some(now());
        let running_filed = filed(&e, fired);
        let running = [&running_filed];
        let pending_filed = filed(&e, None);
        let pending = [&pending_filed];
        // The resumed run's transcript line: a later reset, a later time.
        let mut re_hit = detection(Some(7200));
        re_hit.line_ts = Some(now() + Duration::seconds(5));
        let x = schedule_of(plan(&re_hit, file, SourceKind::ClaudeNative, &s));
        assert_eq!(x.attempt, 1, "a watched line knows no chain");
        // The chain's next attempt of the running incident, from its files.
        let next = match plan_live(&x, &running) {
            LivePlan::NextAttempt(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(next.incident_id, e.incident_id);
        let Some(Reschedule::Retry {
            detection: d,
            file: f,
            source,
            session,
            attempt,
        }) = plan_reschedule(
            &next,
            re_hit.clone(),
            &limits(),
            now() + Duration::seconds(6),
        )
        else {
            panic!("no retry");
        };
        let session = session_of(&d, &f, source, &session, None);
        let facts = HitFacts {
            detection: &d,
            file: &f,
            source,
            session: &session,
            project: Path::new("/h/.zag"),
            attempt,
            chain: Some(&e),
        };
        let c = schedule_of(plan_hit(&facts, &limits(), now()));
        assert_eq!(c.attempt, 2);
        // That attempt is new while E still runs: once.
        assert_eq!(plan_live(&c, &running), LivePlan::New);
        // Then E's own LimitAgain (attempt 2 again, maybe another window:
        // no reset in the output) is C, pending.
        let c_live_filed = filed(&c, None);
        let c_live = [&c_live_filed];
        let mut from_stdout = c.clone();
        from_stdout.incident_id = "other-window".into();
        from_stdout.reset_at = None;
        from_stdout.fallback_used = Some(true);
        assert_eq!(
            plan_live(&from_stdout, &c_live),
            LivePlan::Is(c.incident_id.clone())
        );
        // The other order: the LimitAgain made C first, the watcher's
        // attempt-1 line comes late: it is C too.
        assert_eq!(plan_live(&x, &c_live), LivePlan::Is(c.incident_id.clone()));
        // A poke while E is pending: E.
        let mut poke = detection(Some(60));
        poke.line_ts = Some(now() + Duration::seconds(1));
        let p = schedule_of(plan(&poke, file, SourceKind::ClaudeNative, &s));
        assert_eq!(plan_live(&p, &pending), LivePlan::Is(e.incident_id.clone()));
        // E's own limit line re-read while it is delivered: E, not a re-hit.
        let mut old = detection(Some(60));
        old.line_ts = Some(now() - Duration::seconds(60));
        let o = schedule_of(plan(&old, file, SourceKind::ClaudeNative, &s));
        assert_eq!(plan_live(&o, &running), LivePlan::Is(e.incident_id.clone()));
        // A limit met after E's reset while E waits (Claude's own continue
        // or the user ran the session meanwhile and it hit a limit again):
        // a new limit, the chain's next attempt, not E.
        let mut later = detection(Some(7200));
        later.line_ts = Some(now() + Duration::seconds(120));
        let l = schedule_of(plan(&later, file, SourceKind::ClaudeNative, &s));
        match plan_live(&l, &pending) {
            LivePlan::NextAttempt(r) => assert_eq!(r.incident_id, e.incident_id),
            other => panic!("{other:?}"),
        }
        // ... and that next attempt, chained to E, is new beside pending E.
        let mut next_of_pending = l.clone();
        next_of_pending.chain_id = Some(e.incident_id.clone());
        next_of_pending.attempt = e.attempt + 1;
        assert_eq!(plan_live(&next_of_pending, &pending), LivePlan::New);
        // A pending one wins over a running one; nothing live: new.
        let both = [running[0], c_live[0]];
        assert_eq!(plan_live(&x, &both), LivePlan::Is(c.incident_id.clone()));
        assert_eq!(plan_live(&x, &[]), LivePlan::New);
        // Only ours, only the same provider.
        let mut zags = e.clone();
        zags.origin = None;
        assert_eq!(plan_live(&x, &[&filed(&zags, None)]), LivePlan::New);
    }

    #[test]
    fn two_pending_for_one_session_keep_the_furthest_down_the_chain() {
        let (s, file) = native();
        let a = schedule_of(plan(
            &detection(Some(60)),
            file,
            SourceKind::ClaudeNative,
            &s,
        ));
        let b = Schedule {
            incident_id: "b".into(),
            hit_at: Some(now() + Duration::seconds(10)),
            when: now() + Duration::seconds(7200),
            ..a.clone()
        };
        let c = Schedule {
            incident_id: "c".into(),
            attempt: 2,
            chain_id: Some(a.incident_id.clone()),
            ..b.clone()
        };
        let ids = |v: Vec<&Schedule>| v.iter().map(|s| s.incident_id.clone()).collect::<Vec<_>>();
        for order in [[&a, &b, &c], [&c, &b, &a], [&b, &c, &a]] {
            let (keep, rest) = plan_supersede(&order).unwrap();
            assert_eq!(keep.incident_id, "c");
            let mut rest = ids(rest);
            rest.sort();
            let mut want = vec![a.incident_id.clone(), "b".into()];
            want.sort();
            assert_eq!(rest, want);
        }
        // Same attempt: the most recent sighting.
        let (keep, _) = plan_supersede(&[&a, &b]).unwrap();
        assert_eq!(keep.incident_id, "b");
        assert!(plan_supersede(&[]).is_none());
    }

    #[test]
    fn the_permission_mode_travels_from_the_session_to_the_record_and_down_a_chain() {
        let (mut s, file) = native();
        s.permission_mode = Some("acceptEdits".into());
        let first = candidate(plan(
            &detection(Some(60)),
            file,
            SourceKind::ClaudeNative,
            &s,
        ));
        assert_eq!(
            first.schedule.permission_mode.as_deref(),
            Some("acceptEdits")
        );
        // A re-hit seen in the resumed run's output knows nothing of the
        // mode: the chain carries it.
        let again = session_of(
            &detection(Some(60)),
            Path::new(file),
            SourceKind::Unknown,
            &SessionIdentity::default(),
            Some(&first.schedule),
        );
        assert_eq!(again.permission_mode.as_deref(), Some("acceptEdits"));
        // A record without it takes what the resolve read back.
        let (bare, _) = native();
        let mut c = candidate(plan(
            &detection(Some(60)),
            file,
            SourceKind::ClaudeNative,
            &bare,
        ));
        let mut t = resolved_to("claude-1");
        t.permission_mode = Some("plan".into());
        settle(&mut c, Some(&t));
        assert_eq!(c.schedule.permission_mode.as_deref(), Some("plan"));
    }

    #[test]
    fn outcomes_plan_their_record_log_line_and_event() {
        let (s, log) = relay();
        let sched = schedule_of(plan(&detection(Some(60)), log, SourceKind::ZagSession, &s));
        let table = [
            (
                Outcome::Resumed {
                    detail: "respawned".into(),
                },
                CompleteStatus::Resumed,
                None,
                "usage_limit_resumed",
                false,
            ),
            (
                Outcome::Skipped {
                    reason: "moved on".into(),
                },
                CompleteStatus::Failed,
                Some("skipped: moved on"),
                "usage_limit_resume_failed",
                false,
            ),
            (
                Outcome::Failed {
                    reason: "exit 1".into(),
                },
                CompleteStatus::Failed,
                Some("exit 1"),
                "usage_limit_resume_failed",
                false,
            ),
            (
                Outcome::LimitAgain {
                    detection: detection(None),
                    detail: "again".into(),
                },
                CompleteStatus::Failed,
                Some("limit hit again: again"),
                "usage_limit_resume_failed",
                true,
            ),
        ];
        for (outcome, status, error, kind, again) in table {
            let p = plan_outcome(&sched, &outcome, now());
            assert_eq!(
                p.record,
                Record::Complete {
                    incident_id: sched.incident_id.clone(),
                    status,
                    error: error.map(str::to_string),
                },
                "{outcome:?}"
            );
            assert_eq!(p.log.as_ref().map(|l| l.kind), Some(kind), "{outcome:?}");
            assert_eq!(p.again.is_some(), again, "{outcome:?}");
        }
        // A native session has no zag log to tell.
        let native = Schedule {
            log_path: String::new(),
            ..sched
        };
        let p = plan_outcome(
            &native,
            &Outcome::Resumed {
                detail: String::new(),
            },
            now(),
        );
        assert_eq!(p.log, None);
    }

    #[test]
    fn a_cancel_is_refused_while_delivering_or_for_nothing() {
        assert_eq!(plan_cancel("a", Some(1), Some(&State::Armed)), Ok(1));
        assert_eq!(plan_cancel("a", Some(1), None), Ok(1), "zag's own record");
        let writing = State::Writing { acks: Vec::new() };
        assert_eq!(plan_cancel("a", Some(1), Some(&writing)), Ok(1));
        assert_eq!(
            plan_cancel("a", Some(1), Some(&State::Delivering { since: now() })),
            Err("a is being delivered right now".into())
        );
        let cancelling = State::Done {
            fired_at: None,
            cancel: Some(Box::new(State::Armed)),
        };
        assert_eq!(
            plan_cancel("a", Some(1), Some(&cancelling)),
            Err("a is being cancelled already".into())
        );
        assert_eq!(
            plan_cancel::<u8>("a", None, None),
            Err("no pending resume with incident id a".into())
        );
    }

    #[test]
    fn adoption_timing_of_zags_own_record() {
        use crate::store::adopt::{adoption_decision, Adoption, OwnerState};
        let (s, log) = relay();
        let ours = schedule_of(plan(&detection(Some(60)), log, SourceKind::ZagSession, &s));
        let zags = Schedule {
            origin: None,
            when: now(),
            ..ours.clone()
        };
        let grace = Duration::seconds(300);
        let at = |secs: i64| now() + Duration::seconds(secs);
        for (owner, t, want) in [
            // Dead owner: taken over once its time passed by the grace.
            (OwnerState::Dead, at(299), Adoption::Wait(at(300))),
            (OwnerState::Dead, at(300), Adoption::Adopt),
            // Live owner: left alone, re-probed every grace once past due.
            (OwnerState::Alive, at(10), Adoption::Wait(at(300))),
            (OwnerState::Alive, at(900), Adoption::Wait(at(1200))),
            // Unknown: asked again later, never adopted on a guess.
            (OwnerState::Unknown, at(10), Adoption::Wait(at(310))),
            (OwnerState::Unknown, at(900), Adoption::Wait(at(1200))),
        ] {
            assert_eq!(
                adoption_decision(&zags, owner, t, grace),
                want,
                "{owner:?} at {t}"
            );
        }
        // Our own records are armed directly, never adopted.
        assert_eq!(
            adoption_decision(&ours, OwnerState::Dead, at(900), grace),
            Adoption::Leave
        );
    }

    #[test]
    fn the_project_is_the_zag_logs_else_the_cwds_else_global() {
        let p = paths();
        let (relay_s, _) = relay();
        assert_eq!(
            project_of(&p, &relay_s, |_| unreachable!("the log decides")),
            PathBuf::from("/h/.zag")
        );
        let in_project = SessionIdentity {
            zag_log: Some(PathBuf::from("/h/.zag/projects/repo/logs/sessions/w.jsonl")),
            ..relay_s
        };
        assert_eq!(
            project_of(&p, &in_project, |_| unreachable!("the log decides")),
            PathBuf::from("/h/.zag/projects/repo")
        );
        let (native_s, _) = native();
        assert_eq!(
            project_of(&p, &native_s, |cwd| PathBuf::from(format!("/by-cwd{cwd}"))),
            PathBuf::from("/by-cwd/repo")
        );
        assert_eq!(
            project_of(&p, &SessionIdentity::default(), |_| unreachable!()),
            p.zag_home
        );
    }

    /// Issue 19, item 3: a limit no wait lifts gets no resume time, is
    /// ended at once as needing the user, and says what to do everywhere.
    #[test]
    fn a_limit_no_wait_lifts_is_never_timed_and_needs_the_user() {
        let (s, log) = relay();
        let mut d = detection(None);
        d.needs_user = Some(crate::detect::NeedsUser::Credits);
        let c = candidate(plan(&d, log, SourceKind::ZagSession, &s));
        // No fallback wait, no reset: recorded now, marked.
        assert_eq!(c.schedule.when, now());
        assert_eq!(c.schedule.fallback_used, None);
        assert_eq!(c.schedule.reset_at, None);
        assert_eq!(c.schedule.needs_user.as_deref(), Some("credits"));
        match &c.state {
            State::Seen { hit_event, .. } => match hit_event.as_ref() {
                IncidentEvent::Hit { needs_user, .. } => {
                    assert_eq!(needs_user.as_deref(), Some("credits"))
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        // Ended at once, before any timer, even when the session resolved.
        let outcome = at_once(&c.schedule, None).expect("ended at once");
        let what = crate::detect::NeedsUser::Credits.what_to_do();
        assert_eq!(
            outcome,
            Outcome::NeedsUser {
                what: what.to_string()
            }
        );
        let ended = plan_outcome(&c.schedule, &outcome, now());
        assert_eq!(
            ended.record,
            Record::Complete {
                incident_id: c.schedule.incident_id.clone(),
                status: CompleteStatus::Failed,
                error: Some(format!("needs user: {what}")),
            }
        );
        assert!(matches!(&ended.event, IncidentEvent::NeedsUser { what: w, .. } if w == what));
        let log_line = ended.log.expect("a zag-log line");
        assert_eq!(log_line.kind, "usage_limit_resume_failed");
        // The hit line tells zag's reader it needs the user.
        let lines = hit_log_lines(&c.schedule, detection_of(&c), now());
        assert_eq!(lines[0].fields["needs_user"], "credits");
        let said = lines[1].fields["message"].as_str().unwrap();
        assert!(
            said.contains("not resumed") && said.contains(what),
            "{said}"
        );
        // An ordinary limit is armed; an unresolvable one fails as before.
        let plain = candidate(plan(&detection(Some(60)), log, SourceKind::ZagSession, &s));
        assert_eq!(at_once(&plain.schedule, None), None);
        assert_eq!(
            at_once(&plain.schedule, Some("gone".into())),
            Some(Outcome::Failed {
                reason: "cannot resume: gone".into()
            })
        );
        // A resumed run that met it again: no made-up reset for the retry.
        match plan_reschedule(&plain.schedule, d, &limits(), now()) {
            Some(Reschedule::Retry { detection, .. }) => {
                assert_eq!(detection.reset_at, None);
                assert_eq!(
                    detection.needs_user,
                    Some(crate::detect::NeedsUser::Credits)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
