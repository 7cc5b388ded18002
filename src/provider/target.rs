//! The provider trait's vocabulary for a session to resume: the resolved
//! target, why one cannot be resolved, how a message travels, and the id
//! rule every id obeys before it reaches an argv or a path.
//!
//! Defined here, beside the trait that fills them
//! ([`ProviderCli::resolve_session`](super::ProviderCli::resolve_session)),
//! so the providers need nothing from the delivery code that calls them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::shared::Provider;

/// Longest id we accept (uuids are 36; Codex thread ids are uuids too).
const MAX_ID_LEN: usize = 128;

/// Refuse anything that is not a plain provider/wrapper id: only
/// `[A-Za-z0-9._-]`, 1..=128 chars, no leading `-` (would read as a flag) or
/// `.`, no `..` (would walk out of a directory when joined into a path).
pub fn validate_session_id(id: &str) -> Result<(), InvalidId> {
    if id.is_empty() {
        return Err(InvalidId::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(InvalidId::TooLong { len: id.len() });
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(InvalidId::BadChar { id: id.into(), c });
    }
    if id.starts_with('-') || id.starts_with('.') {
        return Err(InvalidId::LeadingChar {
            id: id.into(),
            first: id[..1].into(),
        });
    }
    if id.contains("..") {
        return Err(InvalidId::DotDot { id: id.into() });
    }
    Ok(())
}

/// Why [`validate_session_id`] refused an id; the Display text is the one
/// the logs and incident reasons have always shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    #[error("empty session id")]
    Empty,
    #[error("session id is {len} bytes long (at most {MAX_ID_LEN})")]
    TooLong { len: usize },
    #[error("session id {id:?} contains {c:?}")]
    BadChar { id: String, c: char },
    #[error("session id {id:?} starts with {first:?}")]
    LeadingChar { id: String, first: String },
    #[error("session id {id:?} contains \"..\"")]
    DotDot { id: String },
}

/// How the message will travel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Channel {
    /// A live zag relay's FIFO (`B/fifos/<wrapper>`); respawn is the fallback
    /// when the relay turns out to be dead.
    Fifo { path: PathBuf },
    /// Re-invoke the provider CLI with its resume syntax.
    Respawn,
}

/// Everything delivery needs, resolved from the record and the disk.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedTarget {
    /// The incident being delivered (tags the resumed turn in the zag log).
    pub incident_id: String,
    pub provider: Provider,
    /// The channel intended now; liveness is re-checked at send time.
    pub channel: Channel,
    pub wrapper_session_id: Option<String>,
    /// The id to resume. `None` only for a Gemini session that was never
    /// saved (limit on the first turn: a fresh run) or when `respawn_error`
    /// says why respawn is impossible.
    pub provider_session_id: Option<String>,
    /// Where the CLI runs (Claude and Gemini find sessions by cwd).
    pub cwd: Option<PathBuf>,
    pub model: Option<String>,
    /// The prompt that hit the limit (Gemini needs it again).
    pub prompt: Option<String>,
    /// The resume message (`Continue`).
    pub message: String,
    /// The zag session log, for revalidation and for appending the resumed
    /// run's events. `None` for native sessions.
    pub zag_log: Option<PathBuf>,
    /// The provider's own transcript, when it has one we can find.
    pub native_file: Option<PathBuf>,
    /// zag's `[defaults].auto_approve` for the session's project.
    pub auto_approve: bool,
    /// The permission mode the session ran in, as recorded (validated by
    /// the provider when it builds the argv).
    pub permission_mode: Option<String>,
    /// Why a respawn cannot be done (only set when the channel is a FIFO,
    /// whose fallback would need it).
    pub respawn_error: Option<String>,
}

impl ResolvedTarget {
    /// Is this a session zag launched (it has a zag session log)?
    pub fn is_zag(&self) -> bool {
        self.zag_log.is_some()
    }
}

/// Why a target could not be resolved; shown as its bare reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// The session's transcript is gone: delivery is skipped, not failed.
    #[error("{0}")]
    Deleted(String),
    /// Not enough is known to deliver anything.
    #[error("{0}")]
    Invalid(String),
}

impl Unresolved {
    pub fn reason(&self) -> &str {
        match self {
            Unresolved::Deleted(r) | Unresolved::Invalid(r) => r,
        }
    }
}

/// Lines of a JSONL file that parse as JSON objects; junk is skipped.
pub(crate) fn json_lines(bytes: &[u8]) -> impl Iterator<Item = Value> + '_ {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(Value::is_object)
}

/// An RFC 3339 timestamp at `key`.
pub(crate) fn line_ts(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    crate::clock::parse_utc(v.get(key)?.as_str()?)
}

/// The target's cwd, or why a resume cannot run without it.
pub(crate) fn require_cwd(t: &ResolvedTarget) -> Result<&Path, Unresolved> {
    t.cwd.as_deref().ok_or_else(|| {
        Unresolved::Invalid(format!(
            "the {} session's working directory is unknown (no cwd in the incident, zag's sessions.json or session log)",
            t.provider
        ))
    })
}

/// The timestamp at `key`, when it is after the hit.
pub(crate) fn after(v: &Value, key: &str, hit: DateTime<Utc>) -> Option<DateTime<Utc>> {
    line_ts(v, key).filter(|t| *t > hit)
}
