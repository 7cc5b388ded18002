//! The core's decisions, free of I/O: what a hit, a due timer, an outcome or
//! a cancel should lead to, as a plan the core then carries out.
//!
//! Every function here is a pure function of facts (the limit line, what is
//! known of its session, the stores' replays), the project's limits and
//! `now`. The core (`super`) owns the state and the disk; keeping the rules
//! here lets them be tested in microseconds on an injected `now`, and keeps
//! the core's loop to bookkeeping while the disk work runs elsewhere.
//!
//! A hit is decided in two steps, because a resolve (disk work) sits
//! between them: [`plan_hit`] turns the line into a candidate incident, and
//! once the session is resolved, [`settle`] completes it and [`known`]
//! checks it against every incident already recorded or still being
//! written.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

use crate::config::UsageLimits;
use crate::control::IncidentEvent;
use crate::detect::{Detection, Provider, SourceKind};
use crate::paths::Paths;
use crate::resume::{self, Outcome, ResolvedTarget};
use crate::schedule::due_time;
use crate::session::SessionIdentity;
use crate::store::identity::{
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
#[derive(Clone, Debug, PartialEq)]
pub enum HitPlan {
    /// A `usage_limit_hit` that names its scheduled resume: the scheduler
    /// that wrote it owns it (ZAG_INTEROP §3.3).
    OwnedByScheduler,
    /// Auto-resume is off for this provider: only tell subscribers.
    Disabled { event: IncidentEvent },
    /// A new incident, unless [`known`] finds it after resolving.
    Candidate(Box<Candidate>),
}

/// An incident planned from a hit, to be resolved, deduped and written.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub schedule: Schedule,
    /// The store it goes to (the project's), also the project at fire time
    /// and for a re-hit.
    pub store: PathBuf,
    /// Published once the incident is known to be new.
    pub hit_event: IncidentEvent,
    /// Slack when comparing with other records of the same limit.
    pub slack: Duration,
    /// The detection, for the zag-log lines.
    pub detection: Detection,
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
    let (due, fallback_used) = due_time(d.reset_at, provider, limits, now, &incident_id);
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
        fallback_used: Some(fallback_used),
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
    };
    HitPlan::Candidate(Box::new(Candidate {
        schedule,
        store: Paths::store_in(f.project),
        hit_event: hit_event(incident_id),
        slack: slack(limits),
        detection: d.clone(),
    }))
}

/// Complete a candidate with what the resolve found: every source of one
/// limit then carries the same provider session id (a relay's log never
/// names Claude's), so [`known`] can see they are one.
pub fn settle(c: &mut Candidate, resolved: Option<&ResolvedTarget>) {
    let s = &mut c.schedule;
    if let Some(t) = resolved {
        fill(&mut s.provider_session_id, t.provider_session_id.clone());
        fill(&mut s.cwd, t.cwd.as_ref().map(|p| p.display().to_string()));
        fill(&mut s.model, t.model.clone());
        fill(&mut s.prompt, t.prompt.clone());
    }
    // Only a Gemini resume sends the prompt again; for the others it would
    // be up to 64 KB of the user's text copied into every record for
    // nothing (store size, start-up replay, privacy).
    if s.provider != Provider::Gemini.as_str() {
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

/// The zag-log lines of a new incident: the hit, and a companion
/// `user_event` (zag's typed readers drop hit lines, ZAG_INTEROP §2.3).
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
    vec![
        LogLine::new(&log, s, now, "usage_limit_hit", f),
        LogLine::new(&log, s, now, "user_event", u),
    ]
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
        Outcome::LimitAgain { detail, .. } => (
            CompleteStatus::Failed,
            Some(format!("limit hit again: {detail}")),
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
    if detection.reset_at.is_none() {
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

/// A cancel by request: refused while the incident is being delivered (the
/// turn may already be sent; its outcome will be recorded instead).
pub fn plan_cancel(id: &str, pending: bool, in_flight: bool) -> Result<(), String> {
    if !pending {
        return Err(format!("no pending resume with incident id {id}"));
    }
    if in_flight {
        return Err(format!("{id} is being delivered right now"));
    }
    Ok(())
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
