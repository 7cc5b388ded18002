//! Who a log line belongs to: identity facts gathered per tailed file.
//!
//! A limit line rarely says everything a resume needs. A zag session log puts
//! the cwd and model in its `session_started` line and the prompt in a
//! `user_message`; a provider's own file names its session by its path or in
//! its lines, each by that provider's rule
//! ([`ProviderCli::observe`](crate::provider::ProviderCli::observe)). A
//! [`SessionTracker`] per file folds those facts as lines stream by, so when
//! a limit arrives the daemon knows the session, its directory and what was
//! asked. Lines that cannot carry an identity fact (tool output, above all)
//! are rejected by a prefix check without being parsed. zag's own log is read
//! here: it is zag's format, not a provider's.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::detect::{Provider, SourceKind};

/// The longest prompt kept (Gemini needs it re-sent after a limit).
const MAX_PROMPT: usize = 64 * 1024;
/// A line up to this long is searched whole for a marker; a longer one
/// (tool output, above all) only in its head, where envelopes put their
/// type and ids. The on-disk readers ([`crate::resume::resolve`]) use the
/// same rule, so a line one accepts the other accepts too.
pub(crate) const SEARCH_WHOLE: usize = 64 * 1024;
/// The head of a long line that is searched.
pub(crate) const HEAD: usize = 4096;

/// What is known about the session a file belongs to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionIdentity {
    pub provider: Option<Provider>,
    /// zag's own session id (zag logs and spawn logs).
    pub wrapper_session_id: Option<String>,
    /// The provider CLI's resumable id.
    pub provider_session_id: Option<String>,
    pub cwd: Option<String>,
    pub model: Option<String>,
    /// The last real user prompt seen.
    pub last_prompt: Option<String>,
    /// zag's `session_started.command` (`exec`, `run`, `interactive`).
    pub command: Option<String>,
    /// The zag session log of this session, when there is one.
    pub zag_log: Option<PathBuf>,
    /// The permission mode of the last user turn (Claude's
    /// `permissionMode`, Codex's approval policy): a resume keeps it.
    pub permission_mode: Option<String>,
}

impl SessionIdentity {
    /// The one merge rule: what `self` knows wins, `other` only fills what
    /// is unknown. Callers merge from the most to the least specific source
    /// (the limit line, then its file's tracker, then an earlier incident of
    /// the chain). The wrapper id is settled first, so a provider id equal
    /// to it (zag's exec placeholder, zag-contract §7) never survives the
    /// merge, from either side: see [`SessionIdentity::is_placeholder`].
    pub fn merge(&mut self, other: &SessionIdentity) {
        fill(&mut self.wrapper_session_id, &other.wrapper_session_id);
        if self.is_placeholder(self.provider_session_id.as_deref()) {
            self.provider_session_id = None;
        }
        if self.provider_session_id.is_none()
            && !self.is_placeholder(other.provider_session_id.as_deref())
        {
            self.provider_session_id
                .clone_from(&other.provider_session_id);
        }
        fill(&mut self.cwd, &other.cwd);
        fill(&mut self.model, &other.model);
        fill(&mut self.last_prompt, &other.last_prompt);
        fill(&mut self.command, &other.command);
        fill(&mut self.permission_mode, &other.permission_mode);
        if self.provider.is_none() {
            self.provider = other.provider;
        }
        if self.zag_log.is_none() {
            self.zag_log.clone_from(&other.zag_log);
        }
    }

    /// [`merge`](Self::merge) by value, for chains of sources.
    #[must_use]
    pub fn merged(mut self, other: &SessionIdentity) -> Self {
        self.merge(other);
        self
    }

    /// The wrapper-id rule, written once: a "provider id" equal to the
    /// session's wrapper id is zag's placeholder, not a resumable id.
    pub fn is_placeholder(&self, provider_session_id: Option<&str>) -> bool {
        provider_session_id.is_some() && provider_session_id == self.wrapper_session_id.as_deref()
    }

    /// The session id shown to humans and used as `session_id`: the wrapper
    /// id when zag wraps the session, else the provider's.
    pub fn display_id(&self) -> Option<&str> {
        self.wrapper_session_id
            .as_deref()
            .or(self.provider_session_id.as_deref())
    }
}

fn fill(slot: &mut Option<String>, from: &Option<String>) {
    if slot.is_none() {
        slot.clone_from(from);
    }
}

/// Folds identity facts from one file's lines.
#[derive(Clone, Debug)]
pub struct SessionTracker {
    pub source: SourceKind,
    pub identity: SessionIdentity,
    /// Prompts logged after this time are not "the prompt that hit the
    /// limit" (a whole log read at resume time holds later turns too).
    prompt_until: Option<DateTime<Utc>>,
}

/// A file's name without its extension.
pub(crate) fn stem(path: &Path) -> Option<String> {
    path.file_stem().map(|s| s.to_string_lossy().into_owned())
}

/// The part of a line searched for markers: all of it up to
/// [`SEARCH_WHOLE`] bytes, else its first [`HEAD`] bytes.
pub(crate) fn searched(line: &[u8]) -> &[u8] {
    if line.len() <= SEARCH_WHOLE {
        line
    } else {
        &line[..HEAD]
    }
}

/// Does `needle` occur where markers are looked for ([`searched`])?
pub(crate) fn head_has(line: &[u8], needle: &str) -> bool {
    memchr::memmem::find(searched(line), needle.as_bytes()).is_some()
}

/// Does the line hold `"key":"value"`, compact or spaced as a
/// pretty-printer writes it (`"key": "value"`), where markers are looked
/// for ([`searched`])? A pre-check that spares parsing lines that cannot
/// matter; the parsed value decides.
pub(crate) fn has_field(line: &[u8], key: &str, value: &str) -> bool {
    let hay = searched(line);
    let key = format!("\"{key}\"");
    let value = format!("\"{value}\"");
    memchr::memmem::find_iter(hay, key.as_bytes()).any(|at| {
        let rest = hay[at + key.len()..].trim_ascii_start();
        rest.strip_prefix(b":")
            .is_some_and(|r| r.trim_ascii_start().starts_with(value.as_bytes()))
    })
}

impl SessionTracker {
    /// A tracker seeded with what the path itself says.
    pub fn for_file(path: &Path, source: SourceKind) -> Self {
        let mut id = SessionIdentity {
            provider: source.native_provider(),
            ..Default::default()
        };
        match source {
            SourceKind::ZagSession => {
                id.wrapper_session_id = stem(path);
                id.zag_log = Some(path.to_path_buf());
            }
            SourceKind::ZagSpawn => id.wrapper_session_id = stem(path),
            native => {
                if let Some(cli) = crate::provider::for_source(native) {
                    id.provider_session_id = cli.session_id_from_path(path);
                }
            }
        }
        SessionTracker {
            source,
            identity: id,
            prompt_until: None,
        }
    }

    /// A tracker for a whole zag session log read after the fact: the
    /// prompt is the last one logged at or before `hit_at`.
    pub fn for_zag_log_until(hit_at: Option<DateTime<Utc>>) -> Self {
        SessionTracker {
            source: SourceKind::ZagSession,
            identity: SessionIdentity::default(),
            prompt_until: hit_at,
        }
    }

    /// Fold one line in: zag's envelope here, a provider's own files by
    /// that provider's rule.
    pub fn observe(&mut self, line: &[u8]) {
        match self.source {
            SourceKind::ZagSession => {
                if has_field(line, "type", "session_started")
                    || has_field(line, "type", "user_message")
                {
                    self.observe_zag(line);
                }
            }
            native => {
                if let Some(cli) = crate::provider::for_source(native) {
                    cli.observe(line, &mut self.identity);
                }
            }
        }
    }

    fn observe_zag(&mut self, line: &[u8]) {
        let Some(v) = parse(line) else { return };
        let id = &mut self.identity;
        if let Some(p) = str_at(&v, &["provider"]).and_then(Provider::parse) {
            id.provider = Some(p);
        }
        if id.wrapper_session_id.is_none() {
            set(
                &mut id.wrapper_session_id,
                str_at(&v, &["wrapper_session_id"]),
            );
        }
        // exec logs carry the wrapper id as a placeholder: not resumable.
        if let Some(psid) = str_at(&v, &["provider_session_id"]) {
            if Some(psid) != id.wrapper_session_id.as_deref() {
                id.provider_session_id = Some(psid.to_string());
            }
        }
        match str_at(&v, &["type"]) {
            Some("session_started") => {
                set(&mut id.cwd, str_at(&v, &["cwd"]));
                set(
                    &mut id.model,
                    str_at(&v, &["model"]).filter(|m| !m.is_empty()),
                );
                set(&mut id.command, str_at(&v, &["command"]));
            }
            Some("user_message") => {
                let ts = str_at(&v, &["ts"]).and_then(crate::clock::parse_utc);
                let after_limit = matches!((self.prompt_until, ts), (Some(h), Some(t)) if t > h);
                if !after_limit {
                    set_prompt(id, str_at(&v, &["content"]));
                }
            }
            _ => {}
        }
    }
}

/// A line as JSON, if it is.
pub(crate) fn parse(line: &[u8]) -> Option<Value> {
    serde_json::from_slice(line).ok()
}

/// The string at a key path.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Set a fact from a non-empty value.
pub(crate) fn set(slot: &mut Option<String>, v: Option<&str>) {
    if let Some(v) = v.filter(|s| !s.is_empty()) {
        *slot = Some(v.to_string());
    }
}

/// Keep a non-blank prompt, clipped to [`MAX_PROMPT`] bytes.
pub(crate) fn set_prompt(id: &mut SessionIdentity, text: Option<&str>) {
    if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
        let mut end = t.len().min(MAX_PROMPT);
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        id.last_prompt = Some(t[..end].to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zag_log_identity() {
        let mut t = SessionTracker::for_file(
            Path::new("/b/logs/sessions/w1.jsonl"),
            SourceKind::ZagSession,
        );
        t.observe(br#"{"seq":1,"ts":"2026-11-24T00:00:00+00:00","provider":"claude","wrapper_session_id":"w1","provider_session_id":"w1","source_kind":"wrapper","completeness":"full","type":"session_started","command":"exec","model":"sonnet","cwd":"/work/p","resumed":false,"backfilled":false}"#);
        t.observe(br#"{"seq":2,"ts":"2026-11-24T00:00:00+00:00","provider":"claude","wrapper_session_id":"w1","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"user_message","role":"user","content":"fix the bug","message_id":null}"#);
        t.observe(br#"{"seq":3,"provider":"claude","provider_session_id":"c-123","type":"tool_result","output":"\"type\":\"user_message\""}"#);
        let id = &t.identity;
        assert_eq!(id.provider, Some(Provider::Claude));
        assert_eq!(id.wrapper_session_id.as_deref(), Some("w1"));
        assert_eq!(id.cwd.as_deref(), Some("/work/p"));
        assert_eq!(id.model.as_deref(), Some("sonnet"));
        assert_eq!(id.command.as_deref(), Some("exec"));
        assert_eq!(id.last_prompt.as_deref(), Some("fix the bug"));
        // The placeholder (wrapper id) was refused; the tool line was not parsed.
        assert_eq!(id.provider_session_id, None);
    }
    #[test]
    fn merge_fills_only_the_unknown_and_drops_the_wrapper_placeholder() {
        let line = SessionIdentity {
            provider_session_id: Some("w1".into()),
            cwd: Some("/from/line".into()),
            ..Default::default()
        };
        let tracker = SessionIdentity {
            wrapper_session_id: Some("w1".into()),
            provider_session_id: Some("claude-1".into()),
            cwd: Some("/from/tracker".into()),
            model: Some("opus".into()),
            ..Default::default()
        };
        let chain = SessionIdentity {
            model: Some("sonnet".into()),
            last_prompt: Some("fix it".into()),
            ..Default::default()
        };
        let id = line.merged(&tracker).merged(&chain);
        // The line's id was the wrapper's placeholder: the tracker's real
        // id replaces it once the wrapper id is known.
        assert_eq!(id.provider_session_id.as_deref(), Some("claude-1"));
        assert_eq!(id.wrapper_session_id.as_deref(), Some("w1"));
        assert_eq!(id.cwd.as_deref(), Some("/from/line"));
        assert_eq!(id.model.as_deref(), Some("opus"));
        assert_eq!(id.last_prompt.as_deref(), Some("fix it"));
        assert_eq!(id.display_id(), Some("w1"));
        // A placeholder from the filling side is refused too.
        let mut w = SessionIdentity {
            wrapper_session_id: Some("w2".into()),
            ..Default::default()
        };
        w.merge(&SessionIdentity {
            provider_session_id: Some("w2".into()),
            ..Default::default()
        });
        assert_eq!(w.provider_session_id, None);
        assert_eq!(w.display_id(), Some("w2"));
    }
}
