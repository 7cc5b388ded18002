//! What is known of a session, and the small readers its facts are
//! gathered with (shared by zag's log reader and every provider's).

use serde_json::Value;
use std::path::{Path, PathBuf};

use super::Provider;

/// The longest prompt kept (Gemini needs it re-sent after a limit).
const MAX_PROMPT: usize = 64 * 1024;
/// A line up to this long is searched whole for a marker; a longer one
/// (tool output, above all) only in its head, where envelopes put their
/// type and ids. The on-disk readers (`resume::resolve`) use the same rule,
/// so a line one accepts the other accepts too.
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
    let (key, value) = (key.as_bytes(), value.as_bytes());
    // No allocation: this runs on every line of every tailed file.
    memchr::memmem::find_iter(hay, key).any(|at| {
        let quoted = at > 0 && hay[at - 1] == b'"' && hay.get(at + key.len()) == Some(&b'"');
        if !quoted {
            return false;
        }
        let rest = hay[at + key.len() + 1..].trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b":") else {
            return false;
        };
        let rest = rest.trim_ascii_start();
        rest.first() == Some(&b'"')
            && rest[1..].starts_with(value)
            && rest.get(1 + value.len()) == Some(&b'"')
    })
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
    fn a_field_is_found_compact_or_spaced_and_only_whole() {
        let yes: [&[u8]; 4] = [
            br#"{"type":"user","x":1}"#,
            br#"{"type": "user", "x": 1}"#,
            br#"{"a":{"b":2},  "type" :	"user"}"#,
            br#"{"message":"hi","type":"user"}"#,
        ];
        for l in yes {
            assert!(
                has_field(l, "type", "user"),
                "{}",
                String::from_utf8_lossy(l)
            );
        }
        let no: [&[u8]; 5] = [
            br#"{"type":"user_message"}"#,
            br#"{"subtype":"user"}"#,
            br#"{"type":"assistant","text":"type user"}"#,
            br#"{"type":["user"]}"#,
            br#"{"type":"use"#,
        ];
        for l in no {
            assert!(
                !has_field(l, "type", "user"),
                "{}",
                String::from_utf8_lossy(l)
            );
        }
        // Up to SEARCH_WHOLE a line is searched whole; past it, its head.
        let late = format!(r#"{{"content":"{}","type":"user"}}"#, "x".repeat(10_000));
        assert!(has_field(late.as_bytes(), "type", "user"));
        let too_late = format!(
            r#"{{"content":"{}","type":"user"}}"#,
            "x".repeat(SEARCH_WHOLE)
        );
        assert!(!has_field(too_late.as_bytes(), "type", "user"));
        let early = format!(
            r#"{{"type":"user","content":"{}"}}"#,
            "x".repeat(SEARCH_WHOLE)
        );
        assert!(has_field(early.as_bytes(), "type", "user"));
    }
}
