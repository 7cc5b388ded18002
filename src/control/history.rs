//! What happened to each incident, read from the stores: the one source of
//! truth for `history`, for resolving an id prefix, and for saying why an
//! id can no longer be cancelled.
//!
//! The stores outlive the daemon, so everything here works with or without
//! one, and the daemon path and the offline path give the same answers and
//! the same wording (both call [`resolve_pending`]). A `complete` or `cancel` of ours
//! carries two keys zag ignores, `at` (when it was written) and `detail`
//! (how it ended, for people); records without them (zag's own, older ones
//! of ours) still render, with the time left unknown.
//!
//! How far back history reaches is how far the stores keep it: compaction
//! keeps a finished incident's lines for two days (see the store's
//! compaction rules), older ones are gone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{discover_stores, Schedule};

/// How the `complete` of an incident no wait lifts starts its `error`.
pub const NEEDS_USER_PREFIX: &str = "needs user: ";

/// Length of the short incident id shown in tables (as git's short hashes).
pub const SHORT_ID: usize = 8;

/// The fewest characters a prefix must have to name an incident: `cancel 3`
/// must not cancel whatever id happens to be the only one starting with 3.
pub const MIN_PREFIX: usize = 4;

/// The short form of an incident id: its first [`SHORT_ID`] characters.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(SHORT_ID) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Scheduled, no `complete` or `cancel` yet.
    Pending,
    Resumed,
    Failed,
    /// Recorded as a failed `complete` whose error says `skipped: …` (the
    /// session had moved on, or its CLI is gone): not delivered on purpose.
    Skipped,
    Cancelled,
    /// Recorded as a failed `complete` whose error says `needs user: …`: a
    /// limit no wait lifts (credits, a spend cap, billing), never resumed.
    NeedsUser,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Resumed => "resumed",
            State::Failed => "failed",
            State::Skipped => "skipped",
            State::Cancelled => "cancelled",
            State::NeedsUser => "needs_user",
        }
    }
}

/// One incident's story, as the stores tell it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IncidentHistory {
    pub incident_id: String,
    pub short_id: String,
    pub state: State,
    /// The store file holding it.
    pub store: String,
    pub provider: Option<String>,
    pub session_id: Option<String>,
    pub scope: Option<String>,
    /// The file the limit was seen in (a zag session log or a transcript).
    pub file: Option<String>,
    /// When the limit was hit (the line's own time).
    pub hit_at: Option<DateTime<Utc>>,
    /// When the provider said the limit resets.
    pub reset_at: Option<DateTime<Utc>>,
    /// When the resume was (or is) due.
    pub when: Option<DateTime<Utc>>,
    pub attempt: Option<u32>,
    /// The first incident of a chain of re-hits.
    pub chain_id: Option<String>,
    /// A user's request recorded with its last schedule: `resume-now` or
    /// `retry` (absent for schedules the daemon made on its own).
    pub requested: Option<String>,
    /// `zag-resumed`, or absent for zag's own records.
    pub origin: Option<String>,
    /// The user's own message (`zag-resumed message`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `retry --force`: delivered even if the session had moved on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// When it ended (absent while pending, or on a record that predates
    /// the `at` key).
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended, for people: the delivery's detail, the failure reason,
    /// who cancelled it.
    pub reason: Option<String>,
    /// Seconds from the reset (or, without one, the due time) to the end.
    pub after_reset_secs: Option<i64>,
}

impl IncidentHistory {
    fn new(id: &str, store: &Path) -> Self {
        IncidentHistory {
            incident_id: id.to_string(),
            short_id: short_id(id).to_string(),
            state: State::Pending,
            store: store.display().to_string(),
            provider: None,
            session_id: None,
            scope: None,
            file: None,
            hit_at: None,
            reset_at: None,
            when: None,
            attempt: None,
            chain_id: None,
            requested: None,
            origin: None,
            ended_at: None,
            reason: None,
            after_reset_secs: None,
            message: None,
            force: false,
        }
    }

    /// The time the incident is ordered and filtered by: its hit, else its
    /// due time, else its end.
    pub fn started(&self) -> Option<DateTime<Utc>> {
        self.hit_at.or(self.when).or(self.ended_at)
    }

    /// The latest thing known to have happened to it.
    pub fn last_activity(&self) -> Option<DateTime<Utc>> {
        [self.hit_at, self.when, self.ended_at]
            .into_iter()
            .flatten()
            .max()
    }

    fn apply_schedule(&mut self, s: &Schedule) {
        self.provider = Some(s.provider.clone());
        self.session_id = Some(s.session_id.clone());
        self.scope.clone_from(&s.scope);
        self.file = s
            .source_file
            .clone()
            .or_else(|| (!s.log_path.is_empty()).then(|| s.log_path.clone()));
        self.hit_at = s.hit_at;
        self.reset_at = s.reset_at;
        self.when = Some(s.when);
        self.attempt = Some(s.attempt);
        self.chain_id.clone_from(&s.chain_id);
        self.origin.clone_from(&s.origin);
        // Why a live session waits (told once, kept in the record).
        if let Some(why) = s.live.as_ref().and_then(|l| l.waiting.as_deref()) {
            self.reason = Some(format!("waiting: {why}"));
        }
        self.message = s.has_custom_message().then(|| s.message.clone());
        self.force = s.is_forced();
    }

    fn finish(&mut self) {
        let base = self.reset_at.or(self.when);
        self.after_reset_secs = match (base, self.ended_at) {
            // A limit no wait lifts had no resume time to be late for.
            (Some(b), Some(e)) if !matches!(self.state, State::Cancelled | State::NeedsUser) => {
                Some((e - b).num_seconds())
            }
            _ => None,
        };
    }
}

/// The extra keys of a `complete` or `cancel` we write: when, and how it
/// ended (zag ignores both).
pub fn annotations(
    at: DateTime<Utc>,
    detail: Option<&str>,
) -> [(&'static str, serde_json::Value); 2] {
    [
        (
            "at",
            serde_json::Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ),
        ("detail", detail.map_or(serde_json::Value::Null, Into::into)),
    ]
}

/// Every incident of every store under `zag_home`, oldest first. A store
/// that cannot be read is skipped with a warning; lines that do not parse
/// are skipped as zag skips them.
pub fn read_history(zag_home: &Path) -> Vec<IncidentHistory> {
    let mut all = Vec::new();
    for store in discover_stores(zag_home) {
        match std::fs::read(&store.path) {
            Ok(bytes) => all.extend(history_of_store(&bytes, &store.path)),
            Err(e) => tracing::warn!(store = %store.path.display(), "cannot read store: {e}"),
        }
    }
    all.sort_by(|a, b| {
        a.started()
            .cmp(&b.started())
            .then_with(|| a.incident_id.cmp(&b.incident_id))
    });
    all
}

/// The incidents of one store's bytes, in order of first appearance.
/// zag's semantics: the last `schedule` of an id wins; the first `complete`
/// or `cancel` ends it for good.
pub fn history_of_store(bytes: &[u8], store: &Path) -> Vec<IncidentHistory> {
    history_of_lines(bytes, store, |_| true)
}

/// [`history_of_store`] over the lines `keep` accepts (a cheap byte test,
/// so one incident's story costs a scan, not a parse, of the other lines).
fn history_of_lines(
    bytes: &[u8],
    store: &Path,
    keep: impl Fn(&[u8]) -> bool,
) -> Vec<IncidentHistory> {
    use crate::store::Record;
    /// The keys zag ignores on our `complete` and `cancel` records.
    #[derive(serde::Deserialize)]
    struct Extra {
        #[serde(default)]
        at: Option<String>,
        #[serde(default)]
        detail: Option<String>,
    }
    let mut order: Vec<IncidentHistory> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut ended: Vec<bool> = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if !keep(line) {
            continue;
        }
        // The store's own reader: the lines zag would accept, no others.
        let Some(Ok(rec)) = crate::store::parse_line(line) else {
            continue;
        };
        let i = *index
            .entry(rec.incident_id().to_string())
            .or_insert_with(|| {
                order.push(IncidentHistory::new(rec.incident_id(), store));
                ended.push(false);
                order.len() - 1
            });
        let h = &mut order[i];
        let (status, error) = match rec {
            Record::Schedule(s) => {
                h.apply_schedule(&s);
                // `resume-now` and `retry` say so in a key zag ignores.
                #[derive(serde::Deserialize)]
                struct Requested {
                    requested: Option<String>,
                }
                if memchr::memmem::find(line, b"\"requested\"").is_some() {
                    h.requested = serde_json::from_slice::<Requested>(line.trim_ascii())
                        .ok()
                        .and_then(|r| r.requested);
                }
                continue;
            }
            _ if ended[i] => continue,
            Record::Complete { status, error, .. } => (Some(status), error),
            Record::Cancel { .. } => (None, None),
        };
        ended[i] = true;
        let extra = serde_json::from_slice::<Extra>(line.trim_ascii()).unwrap_or(Extra {
            at: None,
            detail: None,
        });
        h.ended_at = extra.at.as_deref().and_then(crate::store::parse_time);
        let detail = extra.detail;
        match status {
            None => {
                h.state = State::Cancelled;
                h.reason = detail;
            }
            Some(crate::store::CompleteStatus::Resumed) => {
                h.state = State::Resumed;
                h.reason = detail;
            }
            Some(crate::store::CompleteStatus::Failed) => {
                let e = error.as_deref();
                match (
                    e.and_then(|e| e.strip_prefix("skipped: ")),
                    e.and_then(|e| e.strip_prefix(NEEDS_USER_PREFIX)),
                ) {
                    (Some(why), _) => {
                        h.state = State::Skipped;
                        h.reason = Some(why.to_string());
                    }
                    (_, Some(what)) => {
                        h.state = State::NeedsUser;
                        h.reason = Some(what.to_string());
                    }
                    _ => {
                        h.state = State::Failed;
                        h.reason = error.or(detail);
                    }
                }
            }
        }
    }
    // Ids with only a tombstone (zag's cancel of a record compacted away)
    // say nothing useful about an incident; keep them, they still answer
    // "already cancelled" for a prefix.
    for h in &mut order {
        h.finish();
    }
    order
}

/// Why an id (or prefix) names no incident that can be acted on. The text
/// is the same whichever path (daemon or stores) the command took.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("no incident matches {prefix:?} in any store under {}", zag_home.display())]
    Unknown { prefix: String, zag_home: PathBuf },
    #[error("{prefix:?} is too short: give at least {MIN_PREFIX} characters of the incident id (`status`, `list` and `history` show {SHORT_ID})")]
    TooShort { prefix: String },
    #[error("{prefix:?} is ambiguous: it matches {} incidents ({}); give more characters", matches.len(), matches.join(", "))]
    Ambiguous {
        prefix: String,
        /// Each match, long enough to tell it from the others.
        matches: Vec<String>,
    },
    #[error("no pending incident {short}: it was already cancelled{when}")]
    Cancelled { short: String, when: String },
    #[error("no pending incident {short}: it was already resumed{when}")]
    Resumed { short: String, when: String },
    #[error("no pending incident {short}: it already failed{when}{why}")]
    Failed {
        short: String,
        when: String,
        why: String,
    },
    #[error("no pending incident {short}: it was skipped{when}{why}")]
    Skipped {
        short: String,
        when: String,
        why: String,
    },
    #[error("no pending incident {short}: it needs you{when}{why}; once that is done, `zag-resumed retry {short}`")]
    NeedsUser {
        short: String,
        when: String,
        why: String,
    },
}

/// Find the one incident an id or unique prefix names.
pub fn find<'a>(
    all: &'a [IncidentHistory],
    prefix: &str,
    zag_home: &Path,
) -> Result<&'a IncidentHistory, IdError> {
    let id = unique_match(all.iter().map(|h| h.incident_id.as_str()), prefix, zag_home)?;
    // The same id in two stores (a copy) is one incident: prefer pending.
    all.iter()
        .filter(|h| h.incident_id == id)
        .min_by_key(|h| h.state != State::Pending)
        .ok_or(IdError::Unknown {
            prefix: prefix.to_string(),
            zag_home: zag_home.to_path_buf(),
        })
}

/// The one id among `ids` that `prefix` names: an exact id wins even when
/// it is also a prefix of a longer one; duplicates count once.
fn unique_match<'a>(
    ids: impl Iterator<Item = &'a str>,
    prefix: &str,
    zag_home: &Path,
) -> Result<String, IdError> {
    let mut matches: Vec<&str> = Vec::new();
    for id in ids {
        if id == prefix {
            return Ok(id.to_string());
        }
        if !prefix.is_empty() && id.starts_with(prefix) {
            matches.push(id);
        }
    }
    // A short prefix that names something is refused, unique or not; one
    // that names nothing is simply unknown (the daemon may know the exact
    // id from a store it alone reads).
    if !matches.is_empty() && prefix.chars().count() < MIN_PREFIX {
        return Err(IdError::TooShort {
            prefix: prefix.to_string(),
        });
    }
    matches.sort_unstable();
    matches.dedup();
    match matches.as_slice() {
        [] => Err(IdError::Unknown {
            prefix: prefix.to_string(),
            zag_home: zag_home.to_path_buf(),
        }),
        [one] => Ok(one.to_string()),
        many => Err(IdError::Ambiguous {
            prefix: prefix.to_string(),
            matches: distinguishing(many.iter().copied()),
        }),
    }
}

/// Each id cut to the shortest length (at least [`SHORT_ID`]) that tells
/// all of them apart.
fn distinguishing<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let ids: Vec<&str> = ids.collect();
    let longest = ids.iter().map(|i| i.chars().count()).max().unwrap_or(0);
    let cut = |id: &str, n: usize| id.chars().take(n).collect::<String>();
    let mut n = SHORT_ID;
    while n < longest {
        let mut seen: Vec<String> = ids.iter().map(|i| cut(i, n)).collect();
        seen.sort();
        seen.dedup();
        if seen.len() == ids.len() {
            break;
        }
        n += 1;
    }
    ids.iter().map(|i| cut(i, n)).collect()
}

/// Resolve an id or unique prefix to a pending incident's full id; an
/// incident that already ended gets an error saying how it ended.
///
/// The ids come from the stores' replays (the parallel reader a start-up
/// uses, so a cancel stays quick on a large store); only an id that already
/// ended has its store read line by line, to say how it ended.
pub fn resolve_pending(zag_home: &Path, prefix: &str) -> Result<String, IdError> {
    // id -> (pending in some store, the stores that know it)
    let mut known: HashMap<String, (bool, Vec<PathBuf>)> = HashMap::new();
    for store in discover_stores(zag_home) {
        let replay = match store.load() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(store = %store.path.display(), "cannot read store: {e}");
                continue;
            }
        };
        let ids = replay.scheduled.keys().chain(replay.tombstoned.iter());
        for id in ids.filter(|id| prefix.is_empty() || id.starts_with(prefix)) {
            let entry = known.entry(id.clone()).or_default();
            entry.0 |= replay.pending.contains_key(id);
            if !entry.1.contains(&store.path) {
                entry.1.push(store.path.clone());
            }
        }
    }
    let id = unique_match(known.keys().map(String::as_str), prefix, zag_home)?;
    let (pending, stores) = &known[&id];
    if *pending {
        return Ok(id);
    }
    let mut ended = Vec::new();
    for path in stores {
        if let Ok(bytes) = std::fs::read(path) {
            let finder = memchr::memmem::Finder::new(id.as_bytes());
            ended.extend(
                history_of_lines(&bytes, path, |l| finder.find(l).is_some())
                    .into_iter()
                    .filter(|h| h.incident_id == id),
            );
        }
    }
    let h = ended.first().ok_or_else(|| IdError::Unknown {
        prefix: prefix.to_string(),
        zag_home: zag_home.to_path_buf(),
    })?;
    let short = h.short_id.clone();
    let when = h
        .ended_at
        .map(|t| format!(" at {}", crate::clock::stamp(t)))
        .unwrap_or_default();
    let why = h
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match h.state {
        State::Pending => Ok(h.incident_id.clone()),
        State::Cancelled => Err(IdError::Cancelled { short, when }),
        State::Resumed => Err(IdError::Resumed { short, when }),
        State::Failed => Err(IdError::Failed { short, when, why }),
        State::Skipped => Err(IdError::Skipped { short, when, why }),
        State::NeedsUser => Err(IdError::NeedsUser { short, when, why }),
    }
}

/// A span such as `90s`, `45m`, `2h`, `3d`, `1w`; `None` for anything
/// else (or one too large to add to a time).
pub(crate) fn parse_span(s: &str) -> Option<chrono::Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs).and_then(chrono::Duration::try_seconds)
}

/// Parse `--since`: an RFC 3339 time, or a span back from `now` such as
/// `90s`, `45m`, `2h`, `3d`, `1w`.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some(t) = crate::store::parse_time(s) {
        return Ok(t);
    }
    parse_span(s)
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| {
            format!(
                "--since {s:?}: expected an RFC 3339 time (2030-01-01T08:00:00Z) or a span like 2h, 3d"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn sched(id: &str) -> String {
        format!(
            r#"{{"action":"schedule","incident_id":"{id}","session_id":"6873abcd","provider":"claude","when":"2030-01-01T10:00:30Z","message":"Continue","attempt":1,"log_path":"","origin":"zag-resumed","scope":"weekly","reset_at":"2030-01-01T10:00:00Z","hit_at":"2030-01-01T08:00:00Z","source_file":"/t.jsonl"}}"#
        )
    }

    fn store(lines: &[String]) -> Vec<IncidentHistory> {
        let text = lines.join("\n") + "\n";
        history_of_store(text.as_bytes(), Path::new("/s.jsonl"))
    }

    #[test]
    fn outcomes_old_and_new_records() {
        let h = store(&[
            sched("aaaa1111-x"),
            sched("bbbb2222-x"),
            sched("cccc3333-x"),
            sched("dddd4444-x"),
            sched("eeee5555-x"),
            r#"{"action":"complete","incident_id":"aaaa1111-x","status":"resumed","at":"2030-01-01T10:00:42Z","detail":"via fifo"}"#.into(),
            r#"{"action":"complete","incident_id":"bbbb2222-x","status":"failed","error":"exit 1"}"#.into(),
            r#"{"action":"complete","incident_id":"cccc3333-x","status":"failed","error":"skipped: session moved on"}"#.into(),
            r#"{"action":"cancel","incident_id":"dddd4444-x","at":"2030-01-01T09:00:00Z"}"#.into(),
            r#"{"action":"complete","incident_id":"dddd4444-x","status":"resumed"}"#.into(),
            sched("ffff6666-x"),
            r#"{"action":"complete","incident_id":"ffff6666-x","status":"failed","error":"needs user: out of credits: add credits to the workspace","at":"2030-01-01T09:30:00Z"}"#.into(),
        ]);
        let by = |id: &str| h.iter().find(|x| x.incident_id == id).unwrap();
        let a = by("aaaa1111-x");
        assert_eq!(a.state, State::Resumed);
        assert_eq!(a.reason.as_deref(), Some("via fifo"));
        assert_eq!(a.after_reset_secs, Some(42));
        assert_eq!(a.file.as_deref(), Some("/t.jsonl"));
        let b = by("bbbb2222-x");
        assert_eq!(
            (b.state, b.reason.as_deref()),
            (State::Failed, Some("exit 1"))
        );
        assert_eq!(b.ended_at, None, "an old record without `at`");
        assert_eq!(b.after_reset_secs, None);
        let c = by("cccc3333-x");
        assert_eq!(
            (c.state, c.reason.as_deref()),
            (State::Skipped, Some("session moved on"))
        );
        let e = by("ffff6666-x");
        assert_eq!(
            (e.state, e.reason.as_deref()),
            (
                State::NeedsUser,
                Some("out of credits: add credits to the workspace")
            )
        );
        assert_eq!(e.state.as_str(), "needs_user");
        let d = by("dddd4444-x");
        assert_eq!(d.state, State::Cancelled, "the first tombstone decides");
        assert_eq!(d.ended_at, Some(t("2030-01-01T09:00:00Z")));
        assert_eq!(by("eeee5555-x").state, State::Pending);
    }

    #[test]
    fn prefixes_resolve_or_say_why_not() {
        let h = store(&[
            sched("8432fc05-1"),
            sched("8432fc05-2"),
            sched("12345678-a"),
            r#"{"action":"cancel","incident_id":"12345678-a"}"#.into(),
        ]);
        let home = Path::new("/h/.zag");
        assert_eq!(
            find(&h, "8432fc05-1", home).unwrap().incident_id,
            "8432fc05-1"
        );
        let amb = find(&h, "8432", home).unwrap_err();
        assert_eq!(
            amb.to_string(),
            "\"8432\" is ambiguous: it matches 2 incidents (8432fc05-1, 8432fc05-2); give more characters"
        );
        assert!(matches!(
            find(&h, "ffff", home),
            Err(IdError::Unknown { .. })
        ));
        assert!(matches!(find(&h, "", home), Err(IdError::Unknown { .. })));
        assert_eq!(find(&h, "1234", home).unwrap().state, State::Cancelled);
        // Unique, but shorter than MIN_PREFIX: refused, whether it matches or not.
        assert!(matches!(find(&h, "zz", home), Err(IdError::Unknown { .. })));
        for short in ["1", "123", "843"] {
            let e = find(&h, short, home).unwrap_err();
            assert_eq!(
                e,
                IdError::TooShort {
                    prefix: short.into()
                }
            );
            assert!(e.to_string().contains("at least 4 characters"), "{e}");
        }
    }

    #[test]
    fn extra_keys_keep_the_record_valid_for_zag() {
        use crate::store::{CompleteStatus, Record};
        let rec = Record::Complete {
            incident_id: "i".into(),
            status: CompleteStatus::Resumed,
            error: None,
        };
        let line = rec.to_line_with(&annotations(t("2030-01-01T10:00:00Z"), Some("via fifo")));
        assert_eq!(
            line,
            "{\"action\":\"complete\",\"incident_id\":\"i\",\"status\":\"resumed\",\"at\":\"2030-01-01T10:00:00Z\",\"detail\":\"via fifo\"}\n"
        );
        let back: Record = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back, rec);
        let cancel = Record::Cancel {
            incident_id: "i".into(),
        };
        // A null extra is left out; a key of zag's own is never replaced.
        let line = cancel.to_line_with(&[
            ("detail", serde_json::Value::Null),
            ("incident_id", "x".into()),
        ]);
        assert_eq!(line, "{\"action\":\"cancel\",\"incident_id\":\"i\"}\n");
    }

    #[test]
    fn since_takes_times_and_spans() {
        let now = t("2030-01-10T00:00:00Z");
        assert_eq!(parse_since("2h", now), Ok(t("2030-01-09T22:00:00Z")));
        assert_eq!(parse_since("3d", now), Ok(t("2030-01-07T00:00:00Z")));
        assert_eq!(parse_since("1w", now), Ok(t("2030-01-03T00:00:00Z")));
        assert_eq!(
            parse_since("2030-01-01T08:00:00+02:00", now),
            Ok(t("2030-01-01T06:00:00Z"))
        );
        for bad in ["", "h", "2", "2y", "-2h", "yesterday", "99999999999999999d"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_ids() {
        assert_eq!(short_id("8432fc05-aaaa"), "8432fc05");
        assert_eq!(short_id("6f01"), "6f01");
    }
}
