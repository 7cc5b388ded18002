//! Incident ids and duplicate detection (dedupe): one id per limit, however often it is seen.
//!
//! An incident is *what* happened: a provider limited a session until a reset
//! time. Its id is a UUID v5 over a stable key built from exactly that, so the
//! same limit seen twice (two sources, a restart that re-reads a line, zag's
//! in-process scheduler also seeing it) derives the same id, and a store
//! append of an id already present is visibly a duplicate.
//!
//! # The window rule
//!
//! Sources disagree about the reset by seconds: Claude's `resetsAt` epoch vs
//! its "resets 3:35am" text (minute precision, local time), a relative "in 2
//! hours" anchored on slightly different event timestamps. The id therefore
//! uses the reset **rounded to the nearest [`IDENTITY_BUCKET_SECS`] (5 min)**.
//! Bucket edges sit at hh:02:30, hh:07:30, …, far from the whole-hour and
//! whole-5-minute resets providers announce, so skews of up to ±2.5 min around
//! such resets map to one id. Resets near an edge can still split into two
//! ids; that is why the id is only the fast path and [`find_same_incident`]
//! (a slack comparison over the replayed store, not a grid) is the authority
//! before anything is scheduled.
//!
//! Detections without a reset (fallback-only) use the hit's own timestamp,
//! rounded the same way, as their window.
//!
//! A tombstone hides an id forever (zag's replay), so a *re-schedule* of the
//! same session and window (the resume ran and the limit hit again before the
//! reset moved) must pass `attempt + 1`, which yields a fresh id.

use chrono::{DateTime, Duration, Utc};

use super::{Replay, Schedule};

/// Width of the identity window, in seconds (see the module docs).
pub const IDENTITY_BUCKET_SECS: i64 = 300;

/// Namespace of our v5 ids: v5 of the URL namespace and the project name.
fn namespace() -> uuid::Uuid {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"zag-resumed:incident")
}

/// What pins an incident in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetWindow {
    /// The provider announced when the limit resets.
    Reset(DateTime<Utc>),
    /// No reset known (fallback): the time the limit was hit.
    Hit(DateTime<Utc>),
}

impl ResetWindow {
    /// The window for a schedule record: its reset if known, else its
    /// `hit_at`, else its `when` (zag's records carry neither).
    pub fn of(s: &Schedule) -> ResetWindow {
        match (s.reset_at, s.hit_at) {
            (Some(r), _) if s.fallback_used != Some(true) => ResetWindow::Reset(r),
            (_, Some(h)) => ResetWindow::Hit(h),
            (Some(r), None) => ResetWindow::Reset(r),
            (None, None) => ResetWindow::Reset(s.when),
        }
    }

    fn key(self) -> String {
        let (tag, t) = match self {
            ResetWindow::Reset(t) => ("reset", t),
            ResetWindow::Hit(t) => ("hit", t),
        };
        let secs = t.timestamp();
        let bucket = (secs + IDENTITY_BUCKET_SECS / 2).div_euclid(IDENTITY_BUCKET_SECS);
        format!("{tag}:{bucket}")
    }
}

/// The id of an incident: UUID v5 over provider, session key, window bucket
/// and attempt. `session_key` should be the most stable id the caller has for
/// the session (zag's wrapper id, else the provider's session id, else the
/// log path) and must be the same for every source of one session.
pub fn incident_id_for(
    provider: &str,
    session_key: &str,
    reset_window: ResetWindow,
    attempt: u32,
) -> String {
    let key = format!(
        "v1\0{provider}\0{session_key}\0{}\0{attempt}",
        reset_window.key()
    );
    uuid::Uuid::new_v5(&namespace(), key.as_bytes())
        .hyphenated()
        .to_string()
}

/// The id under which we re-schedule an adopted zag incident: derived from
/// zag's id, so adopting the same record twice (a crash between our schedule
/// and zag's tombstone) lands on the same id, never on a second resume.
pub fn adoption_id_for(zag_incident_id: &str) -> String {
    let key = format!("v1\0adopt\0{zag_incident_id}");
    uuid::Uuid::new_v5(&namespace(), key.as_bytes())
        .hyphenated()
        .to_string()
}

/// The non-empty session identifiers a record carries.
fn session_keys(s: &Schedule) -> impl Iterator<Item = &str> {
    [
        Some(s.session_id.as_str()),
        s.provider_session_id.as_deref(),
        s.wrapper_session_id.as_deref(),
        Some(s.log_path.as_str()),
    ]
    .into_iter()
    .flatten()
    .filter(|k| !k.is_empty())
}

/// The keys a live incident is filed under by session (the core's index):
/// the same identifiers as the dedupe's, but never zag-resumed's
/// `"unknown"` placeholder (two sessions nobody could name are not one);
/// such a session is named by the file its limit was seen in instead, the
/// key [`incident_id_for`] was given for it.
pub fn index_keys(s: &Schedule) -> impl Iterator<Item = &str> {
    let unnamed = s.session_id == "unknown";
    session_keys(s).filter(|k| *k != "unknown").chain(
        s.source_file
            .as_deref()
            .filter(|_| unnamed && s.log_path.is_empty()),
    )
}

fn same_session(a: &Schedule, b: &Schedule) -> bool {
    // Cross-field on purpose: zag's relay puts the wrapper id in
    // `session_id`, its exec loop the provider id (zag-contract §4).
    session_keys(a).any(|x| session_keys(b).any(|y| x == y))
}

fn close(a: DateTime<Utc>, b: DateTime<Utc>, slack: Duration) -> bool {
    (a - b).abs() <= slack
}

fn same_window(a: &Schedule, b: &Schedule, slack: Duration) -> bool {
    let fallback = |s: &Schedule| s.fallback_used == Some(true) || s.reset_at.is_none();
    match (a.reset_at, b.reset_at) {
        // Both know the reset: compare resets.
        (Some(x), Some(y)) if !fallback(a) && !fallback(b) => close(x, y, slack),
        _ => {
            // Fallback-only detections: the hit times, when both have one.
            if let (Some(x), Some(y)) = (a.hit_at, b.hit_at) {
                if fallback(a) && fallback(b) {
                    return close(x, y, slack);
                }
            }
            // zag's records carry only `when` (reset + jitter); ours carry
            // `when` with stagger too: the caller's slack covers both.
            let est = |s: &Schedule| match s.reset_at {
                Some(r) if !fallback(s) => r,
                _ => s.when,
            };
            close(est(a), est(b), slack)
        }
    }
}

/// Are two records (ours or zag's) the same limit of the same session? Same
/// provider, an overlapping session identifier, the same reset window
/// within `slack`; two of our own with different attempts are a re-hit
/// chain, not one incident.
pub fn same_incident(a: &Schedule, b: &Schedule, slack: Duration) -> bool {
    a.provider == b.provider
        && !(a.is_ours() && b.is_ours() && a.attempt != b.attempt)
        && same_session(a, b)
        && same_window(a, b, slack)
}

/// A record written by zag's own scheduler (a relay or an exec loop) for the
/// same limit as our incident `ours`, pending or already completed: zag owns
/// that limit, and ours must not deliver it too. Not when `ours` is our
/// adoption of that very record (its `chain_id`).
pub fn zag_owner_of(replay: &Replay, ours: &Schedule, slack: Duration) -> Option<String> {
    replay
        .scheduled
        .values()
        .filter(|s| !s.is_ours() && ours.chain_id.as_deref() != Some(s.incident_id.as_str()))
        .filter(|s| same_incident(s, ours, slack))
        .map(|s| &s.incident_id)
        .min() // several: the same answer whatever the map's order
        .cloned()
}

/// The id of a record in `replay` (pending or tombstoned, ours or zag's) for
/// the same incident as `candidate`: same provider, an overlapping session
/// identifier (`session_id`, `provider_session_id`, `wrapper_session_id`,
/// `log_path`, compared across fields), and the same reset window within
/// `slack` (resets when both have one; hit times for two fallback-only
/// detections; otherwise the reset or `when`). Two of our own records with
/// different `attempt`s are different incidents (a re-hit chain).
///
/// A pending match is preferred over a tombstoned one. A tombstoned match
/// means "already handled": do not schedule again. A sensible `slack` is
/// `jitter_secs + stagger_secs + 5 min`.
pub fn find_same_incident(
    replay: &Replay,
    candidate: &Schedule,
    slack: Duration,
) -> Option<String> {
    // The smallest id of each kind, so several matches give the same answer
    // whatever the map's iteration order.
    let mut pending: Option<&String> = None;
    let mut tombstoned: Option<&String> = None;
    for s in replay.scheduled.values() {
        if !same_incident(s, candidate, slack) {
            continue;
        }
        let best = match replay.pending.contains_key(&s.incident_id) {
            true => &mut pending,
            false => &mut tombstoned,
        };
        if !best.is_some_and(|b| *b <= s.incident_id) {
            *best = Some(&s.incident_id);
        }
    }
    pending.or(tombstoned).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{replay, Record, ORIGIN};
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, m, s).unwrap()
    }

    fn ours(id: &str, session: &str, reset: DateTime<Utc>) -> Schedule {
        Schedule {
            incident_id: id.into(),
            session_id: session.into(),
            provider: "claude".into(),
            when: reset + Duration::seconds(30),
            message: "Continue".into(),
            attempt: 1,
            origin: Some(ORIGIN.into()),
            reset_at: Some(reset),
            fallback_used: Some(false),
            ..Default::default()
        }
    }

    #[test]
    fn zag_owns_a_limit_its_scheduler_recorded_unless_we_adopted_it() {
        let reset = t(3, 35, 0);
        let mut zag = ours("z1", "wrapper-1", reset);
        zag.origin = None;
        zag.reset_at = None;
        zag.fallback_used = None;
        let mine = ours("o1", "wrapper-1", reset);
        let r = replay(Record::Schedule(zag.clone()).to_line().as_bytes());
        let slack = Duration::minutes(5);
        assert_eq!(zag_owner_of(&r, &mine, slack).as_deref(), Some("z1"));
        let adopted = Schedule {
            chain_id: Some("z1".into()),
            ..mine.clone()
        };
        assert_eq!(zag_owner_of(&r, &adopted, slack), None);
        let other_session = ours("o2", "wrapper-2", reset);
        assert_eq!(zag_owner_of(&r, &other_session, slack), None);
        let later_limit = ours("o3", "wrapper-1", reset + Duration::hours(5));
        assert_eq!(zag_owner_of(&r, &later_limit, slack), None);
    }

    #[test]
    fn two_sources_seconds_apart_share_an_id() {
        // Epoch says 03:00:00, the minute-precision text 02:59 or 03:00:59.
        let a = incident_id_for("claude", "w1", ResetWindow::Reset(t(3, 0, 0)), 1);
        for r in [t(2, 59, 0), t(3, 0, 59), t(3, 2, 29), t(2, 57, 31)] {
            assert_eq!(a, incident_id_for("claude", "w1", ResetWindow::Reset(r), 1));
        }
        assert_ne!(
            a,
            incident_id_for("claude", "w2", ResetWindow::Reset(t(3, 0, 0)), 1)
        );
        assert_ne!(
            a,
            incident_id_for("codex", "w1", ResetWindow::Reset(t(3, 0, 0)), 1)
        );
        assert_ne!(
            a,
            incident_id_for("claude", "w1", ResetWindow::Reset(t(3, 0, 0)), 2)
        );
        assert_ne!(
            a,
            incident_id_for("claude", "w1", ResetWindow::Reset(t(8, 0, 0)), 1)
        );
        assert_ne!(
            a,
            incident_id_for("claude", "w1", ResetWindow::Hit(t(3, 0, 0)), 1)
        );
        // A valid canonical uuid (the timer packs these).
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 5);
        assert_eq!(u.hyphenated().to_string(), a);
        assert_ne!(adoption_id_for("z"), adoption_id_for("y"));
        assert_eq!(adoption_id_for("z"), adoption_id_for("z"));
    }

    #[test]
    fn matcher_finds_ours_and_zags_records_and_prefers_pending() {
        let slack = Duration::minutes(7);
        let mut zag = ours("zag-1", "wrapper-1", t(3, 0, 0));
        zag.origin = None;
        zag.reset_at = None;
        zag.fallback_used = None;
        zag.log_path = "/p/logs/sessions/wrapper-1.jsonl".into();
        let mut text = String::new();
        text += &Record::Schedule(zag.clone()).to_line();
        let r = replay(text.as_bytes());

        // Our detection of the same limit from Claude's own transcript: the
        // provider id differs, the wrapper id (in zag's session_id) matches.
        let mut cand = ours("new", "prov-9", t(3, 0, 20));
        cand.wrapper_session_id = Some("wrapper-1".into());
        assert_eq!(
            find_same_incident(&r, &cand, slack).as_deref(),
            Some("zag-1")
        );

        // Joined by log path alone.
        let mut by_log = ours("new", "other", t(3, 0, 0));
        by_log.log_path = zag.log_path.clone();
        assert_eq!(
            find_same_incident(&r, &by_log, slack).as_deref(),
            Some("zag-1")
        );

        // Different session, different provider, different window: no match.
        assert_eq!(
            find_same_incident(&r, &ours("n", "else", t(3, 0, 0)), slack),
            None
        );
        let mut codex = cand.clone();
        codex.provider = "codex".into();
        assert_eq!(find_same_incident(&r, &codex, slack), None);
        assert_eq!(
            find_same_incident(&r, &ours("n", "wrapper-1", t(8, 0, 0)), slack),
            None
        );

        // Tombstoned match = already handled; a pending one wins over it.
        text += &Record::Cancel {
            incident_id: "zag-1".into(),
        }
        .to_line();
        let r = replay(text.as_bytes());
        assert_eq!(
            find_same_incident(&r, &cand, slack).as_deref(),
            Some("zag-1")
        );
        assert!(r.tombstoned.contains("zag-1"));
        text += &Record::Schedule(ours("ours-2", "wrapper-1", t(3, 1, 0))).to_line();
        let r = replay(text.as_bytes());
        assert_eq!(
            find_same_incident(&r, &cand, slack).as_deref(),
            Some("ours-2")
        );

        // Our own re-hit chain: attempt 2 is a new incident.
        let mut again = ours("x", "wrapper-1", t(3, 1, 0));
        again.attempt = 2;
        let only_ours = replay(
            Record::Schedule(ours("ours-2", "wrapper-1", t(3, 1, 0)))
                .to_line()
                .as_bytes(),
        );
        assert_eq!(find_same_incident(&only_ours, &again, slack), None);
    }

    #[test]
    fn fallback_detections_compare_hit_times() {
        let mut a = ours("a", "s", t(4, 0, 0));
        a.fallback_used = Some(true);
        a.hit_at = Some(t(3, 0, 0));
        let r = replay(Record::Schedule(a.clone()).to_line().as_bytes());
        let mut b = a.clone();
        b.incident_id = "b".into();
        b.hit_at = Some(t(3, 0, 40));
        b.reset_at = Some(t(4, 0, 40));
        assert_eq!(
            find_same_incident(&r, &b, Duration::minutes(1)).as_deref(),
            Some("a")
        );
        b.hit_at = Some(t(3, 30, 0));
        assert_eq!(find_same_incident(&r, &b, Duration::minutes(1)), None);
        assert_eq!(ResetWindow::of(&a), ResetWindow::Hit(t(3, 0, 0)));
    }
}
