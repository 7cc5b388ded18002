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

use super::resolve::{zag_lines_of, zag_raw_lines_of, ResolvedTarget};
use crate::provider::target::after;

/// A zag session log: after the hit, a successful `session_ended`, a
/// `usage_limit_resumed` (zag resumed it itself), or a `user_message` or
/// resumed `session_started` whose turn did not end at a limit again (or
/// failed): the next line that reports a limit, or an unsuccessful
/// `session_ended`, cancels it. A poke that only met the same limit is not
/// progress; other event types are not looked at.
pub fn zag_moved_on(bytes: &[u8], hit: DateTime<Utc>) -> Option<String> {
    const KINDS: &[&str] = &[
        "user_message",
        "session_started",
        "usage_limit_resumed",
        "session_ended",
        // Where a limit shows in a zag log (zag-contract §3.1).
        "usage_limit_hit",
        "assistant_message",
        "session_result",
        "provider_status",
        "stderr",
    ];
    let detector = crate::detect::Detector::default();
    let ctx = crate::detect::LineContext {
        source: crate::detect::SourceKind::ZagSession,
        provider_hint: None,
        anchor: hit,
    };
    let mut asked: Option<(&str, DateTime<Utc>)> = None;
    for (raw, v) in zag_raw_lines_of(bytes, KINDS) {
        let Some(t) = after(&v, "ts", hit) else {
            continue;
        };
        if detector.detect(raw, &ctx).is_some() {
            asked = None;
            continue;
        }
        let done = match v.get("type").and_then(Value::as_str) {
            Some("user_message") => {
                asked.get_or_insert(("a newer user message", t));
                None
            }
            Some("session_started") if v.get("resumed").and_then(Value::as_bool) == Some(true) => {
                asked.get_or_insert(("the session was resumed by hand", t));
                None
            }
            Some("usage_limit_resumed") => Some("zag already resumed it"),
            Some("session_ended") => {
                if v.get("success").and_then(Value::as_bool) == Some(true) {
                    Some("a later successful turn")
                } else {
                    asked = None;
                    None
                }
            }
            _ => None,
        };
        if let Some(why) = done {
            return Some(format!(
                "{why} at {} in the zag session log",
                t.to_rfc3339()
            ));
        }
    }
    asked.map(|(why, t)| format!("{why} at {} in the zag session log", t.to_rfc3339()))
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
    fn a_zag_poke_that_met_the_limit_again_is_not_progress() {
        let poke = r#"{"seq":20,"ts":"2030-01-01T10:05:00+00:00","provider":"claude","type":"user_message","role":"user","content":"still there?"}"#;
        let limit = r#"{"seq":21,"ts":"2030-01-01T10:05:01+00:00","provider":"claude","type":"assistant_message","content":"You've hit your 5-hour limit · resets 3pm (UTC)"}"#;
        let failed = r#"{"seq":22,"ts":"2030-01-01T10:05:02+00:00","type":"session_ended","success":false,"error":"boom"}"#;
        let answer =
            r#"{"seq":23,"ts":"2030-01-01T11:05:00+00:00","type":"session_ended","success":true}"#;
        let log = |ls: &[&str]| ls.join("\n");
        assert_eq!(zag_moved_on(log(&[poke, limit]).as_bytes(), hit()), None);
        assert_eq!(zag_moved_on(log(&[poke, failed]).as_bytes(), hit()), None);
        assert!(zag_moved_on(log(&[poke, limit, answer]).as_bytes(), hit()).is_some());
        // Our own resume logged as a user message, then met the limit again.
        let ours = r#"{"seq":24,"ts":"2030-01-01T10:06:00Z","type":"user_message","role":"user","content":"Continue","origin":"zag-resumed","incident_id":"i-1"}"#;
        let hit_again = r#"{"seq":25,"ts":"2030-01-01T10:06:01Z","type":"usage_limit_hit","provider":"claude","scope":"session","reset_at":"2030-01-01T15:00:00Z","raw":"x"}"#;
        assert_eq!(
            zag_moved_on(log(&[ours, hit_again]).as_bytes(), hit()),
            None
        );
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
