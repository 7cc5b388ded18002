//! Revalidation: has the session moved on since the limit?
//!
//! A resume that can no longer help must not be sent: if the user typed a new
//! message, resumed by hand, or a later turn succeeded after `hit_at`, the
//! incident is skipped with the reason. The checks are pure functions of a
//! file's bytes and the hit time: the zag log's here, each provider's
//! beside it ([`ProviderCli::moved_on_rule`](crate::provider::ProviderCli::moved_on_rule));
//! [`moved_on`] reads the files. Without a hit
//! time nothing can be judged and nothing is skipped.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::resolve::{line_ts, zag_lines_of, ResolvedTarget};

/// The timestamp at `key`, when it is after the hit.
pub(crate) fn after(v: &Value, key: &str, hit: DateTime<Utc>) -> Option<DateTime<Utc>> {
    line_ts(v, key).filter(|t| *t > hit)
}

/// A zag session log: a `user_message`, a resumed `session_started`, a
/// `usage_limit_resumed` (zag resumed it itself) or a successful
/// `session_ended` after the hit.
pub fn zag_moved_on(bytes: &[u8], hit: DateTime<Utc>) -> Option<String> {
    const KINDS: &[&str] = &[
        "user_message",
        "session_started",
        "usage_limit_resumed",
        "session_ended",
    ];
    zag_lines_of(bytes, KINDS).find_map(|v| {
        let t = after(&v, "ts", hit)?;
        let why = match v.get("type").and_then(Value::as_str)? {
            "user_message" => "a newer user message",
            "session_started" if v.get("resumed").and_then(Value::as_bool) == Some(true) => {
                "the session was resumed by hand"
            }
            "usage_limit_resumed" => "zag already resumed it",
            "session_ended" if v.get("success").and_then(Value::as_bool) == Some(true) => {
                "a later successful turn"
            }
            _ => return None,
        };
        Some(format!(
            "{why} at {} in the zag session log",
            t.to_rfc3339()
        ))
    })
}

/// The time of a resumed turn this daemon logged for `incident_id` (pure):
/// its claim on the delivery.
pub fn zag_claim(bytes: &[u8], incident_id: &str) -> Option<String> {
    zag_lines_of(bytes, &["user_message"]).find_map(|v| {
        let ours = v.get("origin").and_then(Value::as_str) == Some(crate::store::ORIGIN)
            && v.get("incident_id").and_then(Value::as_str) == Some(incident_id);
        ours.then(|| {
            v.get("ts")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        })
    })
}

/// Was this incident's resume already started by an earlier run (a crash
/// between delivery and the `complete` record)? Reads the zag log.
pub fn already_delivered(t: &ResolvedTarget) -> Option<String> {
    let bytes = std::fs::read(t.zag_log.as_ref()?).ok()?;
    zag_claim(&bytes, &t.incident_id)
}

/// Why the session no longer needs this resume, if it does not: the zag
/// log's rules, then the provider's own rule over its session file (a
/// provider without one, Gemini, is judged by the zag log alone).
pub fn moved_on(t: &ResolvedTarget, hit_at: Option<DateTime<Utc>>) -> Option<String> {
    let hit = hit_at?;
    if let Some(log) = &t.zag_log {
        if let Ok(b) = std::fs::read(log) {
            if let Some(why) = zag_moved_on(&b, hit) {
                return Some(why);
            }
        }
    }
    let check = crate::provider::of(t.provider).moved_on_rule()?;
    let bytes = std::fs::read(t.native_file.as_ref()?).ok()?;
    check(&bytes, hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn zag_log_rules() {
        let cases = [
            (
                r#"{"ts":"2030-01-01T10:05:00+00:00","type":"user_message","content":"x"}"#,
                true,
            ),
            (
                r#"{"ts":"2030-01-01T09:05:00+00:00","type":"user_message","content":"x"}"#,
                false,
            ),
            (
                r#"{"ts":"2030-01-01T10:05:00+00:00","type":"session_started","resumed":true}"#,
                true,
            ),
            (
                r#"{"ts":"2030-01-01T10:05:00+00:00","type":"session_started","resumed":false}"#,
                false,
            ),
            (
                r#"{"ts":"2030-01-01T10:05:00+00:00","type":"usage_limit_resumed","incident_id":"i"}"#,
                true,
            ),
            (
                r#"{"ts":"2030-01-01T10:05:00+00:00","type":"session_ended","success":true}"#,
                true,
            ),
            (
                r#"{"ts":"2030-01-01T10:05:00+00:00","type":"session_ended","success":false}"#,
                false,
            ),
            (
                r#"{"ts":"2030-01-01T10:05:00+00:00","type":"heartbeat"}"#,
                false,
            ),
            (
                r#"{"ts":"2030-01-01T10:00:00+00:00","type":"user_message","content":"same instant"}"#,
                false,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                zag_moved_on(line.as_bytes(), hit()).is_some(),
                want,
                "{line}"
            );
        }
    }

    #[test]
    fn our_claim_is_recognised_only_for_its_own_incident() {
        let ours = r#"{"seq":9,"ts":"2030-01-01T10:01:00Z","type":"user_message","role":"user","content":"Continue","origin":"zag-resumed","incident_id":"i-1"}"#;
        let typed = r#"{"seq":9,"ts":"2030-01-01T10:01:00Z","type":"user_message","role":"user","content":"Continue"}"#;
        assert_eq!(
            zag_claim(ours.as_bytes(), "i-1").as_deref(),
            Some("2030-01-01T10:01:00Z")
        );
        assert_eq!(zag_claim(ours.as_bytes(), "i-2"), None);
        assert_eq!(zag_claim(typed.as_bytes(), "i-1"), None);
    }
}
