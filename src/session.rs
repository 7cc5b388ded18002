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
use std::path::Path;

use crate::shared::{has_field, parse, set, set_prompt, stem, str_at};
use crate::shared::{Provider, SourceKind};

pub use crate::shared::SessionIdentity;

/// Folds identity facts from one file's lines.
#[derive(Clone, Debug)]
pub struct SessionTracker {
    pub source: SourceKind,
    pub identity: SessionIdentity,
    /// Prompts logged after this time are not "the prompt that hit the
    /// limit" (a whole log read at resume time holds later turns too).
    prompt_until: Option<DateTime<Utc>>,
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
