//! Copilot CLI: `--output-format json` events and the native `events.jsonl`.
//!
//! Structural signals:
//! - `session.error` whose `data.errorType` is `rate_limit` (after its own
//!   five retries: transient, or session when the server's text says "usage
//!   limit") or `quota_exhausted` (premium requests: global), or whose
//!   `data.statusCode` is 429. Other error types (auth, network) are not
//!   limits, and neither are the per-retry `model.call_failure` (429) and
//!   `assistant.turn_retry` events that precede the final error.
//! - zag 0.18's legacy error objects at `data.error` or `error`, with `code`
//!   `rate_limited` (session), `user_weekly_rate_limited` (weekly) or
//!   `user_global_rate_limited[:x]` (global), in an event whose `type` is
//!   absent, `model.failed`, or contains "error".
//!
//! Text rules (error fields, output lines): "(hit|exceeded|reached) [your|the]
//! [weekly|daily] rate limit", "exceeded your Copilot token usage", and
//! today's "Failed to get response from the AI model; retried N times …
//! 429". Newer wordings: "you've hit a rate limit that restricts the number
//! of Copilot model requests … try again in 58 hours" (the TUI's `✗ Sorry, `
//! in front), "Sorry, you've exceeded your weekly rate limit …", "exceeded
//! your 5 hour session limits. Please retry after 840 seconds.
//! (user_global_rate_limited:pro)", and an error body quoted in an error
//! text (`429 {"code":"rate_limited"}`). Reset: a relative "try again in 2
//! hours" / "in 15 hours 23 minutes" / "retry after 840 seconds".
//!
//! Not an incident: a text whose own wait is a minute or less ("You've hit
//! your global rate limit. Please upgrade your plan or wait 6 seconds …"):
//! the CLI waits and retries by itself. Only its final `session.error`
//! after the retries counts. No wait lifts `402 You have no quota` /
//! `{"code":"quota_exceeded"}` ([`NeedsUser::NoQuota`]). Copilot's opt-in
//! `continueOnAutoMode` switches to the auto model instead of pausing: that
//! is its own continue, for the own-continue verdict, not a detection.

use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

use super::{reset, Env, Field, Hit, NeedsUser, Provider, Scope};

static LEGACY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\bsorry,\s*)?(?:\byou(?:'ve|’ve|\s+have)?\s+)?\b(?:hit|exceeded|reached)\s+(?:your\s+|the\s+|a\s+)?(?:(weekly|daily|global)\s+)?rate\s+limit|(?:\bsorry,\s*)?(?:\byou(?:'ve|’ve|\s+have)?\s+)?\bexceeded your \d+ hour session limits|\buser_global_rate_limited\b|(?:\byou(?:'ve|’ve|\s+have)?\s+)?\bexceeded your copilot token usage",
    )
    .expect("static regex")
});

static RETRIED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)failed to get response from the ai model; retried \d+ times[^\n]*\b429\b")
        .expect("static regex")
});

/// An error code inside an error text: `{"code":"rate_limited"}`,
/// `"code": "quota_exceeded"`.
static CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""code"\s*:\s*"((?:user_weekly_|user_global_)?rate_limited(?::[a-z_]+)?|quota_exceeded)""#)
        .expect("static regex")
});

/// No quota on the account: `402 You have no quota`.
static NO_QUOTA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b402\b[^\n]{0,40}?you have no quota").expect("static regex")
});

/// A wait this short is the CLI's own retry ("You've hit your global rate
/// limit. Please upgrade your plan or wait 6 seconds …"): Copilot waits
/// and tries again by itself, so it is no incident.
const OWN_RETRY_SECS: i64 = 60;

fn scope_words(s: &str, default: Scope) -> Scope {
    let l = s.to_ascii_lowercase();
    if l.contains("weekly") {
        Scope::Weekly
    } else if l.contains("daily") {
        Scope::Daily
    } else if l.contains("global") {
        Scope::Global
    } else {
        default
    }
}

pub(crate) fn text(s: &str, field: Field, env: &Env) -> Option<Hit> {
    let t = s.trim();
    if let Some(m) = NO_QUOTA.find(t) {
        return field
            .allows(t, m.start())
            .then(|| Hit::needs_user(Provider::Copilot, NeedsUser::NoQuota, t));
    }
    if let Some(m) = LEGACY.find(t) {
        if !field.allows(t, m.start()) {
            return None;
        }
        let scope = if m.as_str().contains("user_global_rate_limited")
            || t.contains("(user_global_rate_limited")
        {
            Scope::Global
        } else {
            scope_words(m.as_str(), Scope::Session)
        };
        let reset_at = reset::relative(t, env.anchor);
        if reset_at.is_some_and(|r| (r - env.anchor).num_seconds() <= OWN_RETRY_SECS) {
            return None;
        }
        return Some(Hit::new(Provider::Copilot, scope, reset_at, t));
    }
    // An error body quoted in an error text: `429 {"code":"rate_limited",…}`.
    if field != Field::Whole {
        if let Some(c) = CODE.captures(t) {
            let code = c.get(1)?.as_str();
            if code == "quota_exceeded" {
                return Some(Hit::needs_user(Provider::Copilot, NeedsUser::NoQuota, t));
            }
            let scope = legacy_code_scope(code)?;
            return Some(Hit::new(
                Provider::Copilot,
                scope,
                reset::relative(t, env.anchor),
                t,
            ));
        }
    }
    if let Some(m) = RETRIED.find(t) {
        if !field.allows(t, m.start()) {
            return None;
        }
        let reset_at = reset::relative(t, env.anchor);
        return Some(Hit::new(
            Provider::Copilot,
            rate_limit_scope(t),
            reset_at,
            t,
        ));
    }
    None
}

/// After its own retries Copilot reports every 429 as `rate_limit`; the
/// server's words say whether it is a request rate (transient) or a usage
/// cap ("The usage limit has been reached": a session limit, reset unknown).
fn rate_limit_scope(message: &str) -> Scope {
    if message.to_ascii_lowercase().contains("usage limit") {
        scope_words(message, Scope::Session)
    } else {
        Scope::Transient
    }
}

fn legacy_code_scope(code: &str) -> Option<Scope> {
    match code {
        "rate_limited" => Some(Scope::Session),
        "user_weekly_rate_limited" => Some(Scope::Weekly),
        c if c == "user_global_rate_limited" || c.starts_with("user_global_rate_limited:") => {
            Some(Scope::Global)
        }
        _ => None,
    }
}

pub(crate) fn object(v: &Value, env: &Env) -> Option<Hit> {
    let ty = v.get("type").and_then(Value::as_str);
    let data = v.get("data");
    if ty == Some("session.error") {
        let d = data?;
        let kind = d.get("errorType").and_then(Value::as_str).unwrap_or("");
        let status = d.get("statusCode").and_then(Value::as_u64);
        let message = d.get("message").and_then(Value::as_str).unwrap_or("");
        if status == Some(402) || NO_QUOTA.is_match(message) || message.contains("quota_exceeded") {
            let raw = if message.is_empty() { kind } else { message };
            return Some(Hit::needs_user(Provider::Copilot, NeedsUser::NoQuota, raw));
        }
        let scope = match kind {
            "quota_exhausted" => Scope::Global,
            "rate_limit" => rate_limit_scope(message),
            _ if status == Some(429) => rate_limit_scope(message),
            _ => return text(message, Field::Error, env),
        };
        let reset_at = reset::relative(message, env.anchor);
        let raw = if message.is_empty() { kind } else { message };
        return Some(Hit::new(Provider::Copilot, scope, reset_at, raw));
    }
    // zag 0.18's rule for legacy error objects.
    let type_ok = match ty {
        None => true,
        Some(t) => t == "error" || t == "model.failed" || t.contains("error"),
    };
    if !type_ok {
        return None;
    }
    // The error object: under `data`, at the top, or the line itself (a
    // bare `{"code":"rate_limited"}` body).
    let err = data
        .and_then(|d| d.get("error"))
        .or_else(|| v.get("error"))
        .filter(|e| e.is_object())
        .or_else(|| (ty.is_none() && v.get("code").is_some()).then_some(v))?;
    let code = err.get("code").and_then(Value::as_str)?;
    if code == "quota_exceeded" {
        return Some(Hit::needs_user(
            Provider::Copilot,
            NeedsUser::NoQuota,
            &err.to_string(),
        ));
    }
    let scope = legacy_code_scope(code)?;
    let message = err.get("message").and_then(Value::as_str).unwrap_or("");
    let reset_at = reset::relative(message, env.anchor);
    Some(Hit::new(
        Provider::Copilot,
        scope,
        reset_at,
        &err.to_string(),
    ))
}

pub(crate) fn error_text(v: &Value) -> Option<String> {
    let ty = v.get("type").and_then(Value::as_str)?;
    (ty == "session.error" || ty.contains("error") || ty == "model.failed").then_some(())?;
    let d = v.get("data")?;
    d.get("message")
        .or_else(|| d.get("error").and_then(|e| e.get("message")))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{NeedsUser, Provider, Scope, SourceKind};

    const CASES: &[Case] = &[
        (
            "json session.error rate_limit",
            SourceKind::ZagSpawn,
            r#"{"type":"session.error","data":{"errorType":"rate_limit","message":"Failed to get response from the AI model; retried 5 times (total retry wait time: 62.5 seconds) Last error: 429 Too Many Requests","statusCode":429},"id":"e1","timestamp":"2026-11-24T02:00:00.000Z","parentId":null}"#,
            Some((Scope::Transient, None)),
        ),
        (
            "native events.jsonl quota_exhausted",
            SourceKind::CopilotNative,
            r#"{"type":"session.error","data":{"errorType":"quota_exhausted","message":"You have no premium requests left."},"id":"e1","timestamp":"2026-11-24T02:00:00.000Z"}"#,
            Some((Scope::Global, None)),
        ),
        (
            "legacy weekly code with relative reset",
            SourceKind::ZagSpawn,
            r#"{"type":"error","data":{"error":{"code":"user_weekly_rate_limited","message":"You've reached your weekly rate limit. Please try again in 2 hours."}}}"#,
            Some((Scope::Weekly, Some("2026-11-24T04:01:00Z"))),
        ),
        (
            "legacy global code with suffix",
            SourceKind::ZagSpawn,
            r#"{"error":{"code":"user_global_rate_limited:pro","message":"rate limited"}}"#,
            Some((Scope::Global, None)),
        ),
        (
            "legacy model.failed rate_limited",
            SourceKind::CopilotNative,
            r#"{"type":"model.failed","data":{"error":{"code":"rate_limited","message":"Too many requests, try again in 20s"}},"timestamp":"2026-11-24T02:00:00Z"}"#,
            Some((Scope::Session, Some("2026-11-24T02:00:20Z"))),
        ),
        (
            "legacy text line",
            SourceKind::ZagSpawn,
            "Error: You have exceeded your weekly rate limit. Please try again in 3 days 4 hours.",
            Some((Scope::Weekly, Some("2026-11-27T06:01:00Z"))),
        ),
        (
            "text mode final error",
            SourceKind::ZagSpawn,
            "Error: Failed to get response from the AI model; retried 5 times (total retry wait time: 62 seconds) Last error: 429 Too Many Requests",
            Some((Scope::Transient, None)),
        ),
        (
            "near miss: auth session.error",
            SourceKind::CopilotNative,
            r#"{"type":"session.error","data":{"errorType":"authentication","message":"Not authorized (status 401)","statusCode":401},"id":"e1","timestamp":"2026-11-24T02:00:00Z"}"#,
            None,
        ),
        (
            "near miss: tool output quoting an error code",
            SourceKind::CopilotNative,
            r#"{"type":"tool.execution_complete","data":{"toolCallId":"t","result":{"content":"{\"error\":{\"code\":\"user_weekly_rate_limited\"}}"}},"timestamp":"2026-11-24T02:00:00Z"}"#,
            None,
        ),
        (
            "near miss: assistant message quoting the phrase",
            SourceKind::CopilotNative,
            r#"{"type":"assistant.message","data":{"content":"You've reached your weekly rate limit is the Copilot text."},"timestamp":"2026-11-24T02:00:00Z"}"#,
            None,
        ),
        (
            "near miss: final result event",
            SourceKind::ZagSpawn,
            r#"{"type":"result","sessionId":"c-1","exitCode":1,"usage":{"premiumRequests":429}}"#,
            None,
        ),
        (
            "near miss: unknown legacy code",
            SourceKind::ZagSpawn,
            r#"{"type":"error","data":{"error":{"code":"rate_limit_warning","message":"approaching rate limit"}}}"#,
            None,
        ),
        // ---- newer Copilot forms ----
        (
            "stderr: hit a rate limit on model requests, try again in N hours",
            SourceKind::ZagSpawn,
            "Error: you've hit a rate limit that restricts the number of Copilot model requests you can make within a specific time period. Please try again in 58 hours.",
            Some((Scope::Session, Some("2026-11-26T12:01:00Z"))),
        ),
        (
            "user_global_rate_limited:pro with retry after N seconds (object)",
            SourceKind::ZagSpawn,
            r#"{"type":"error","data":{"error":{"code":"user_global_rate_limited:pro","message":"Sorry, you've exceeded your 5 hour session limits. Please retry after 840 seconds."}}}"#,
            Some((Scope::Global, Some("2026-11-24T02:14:00Z"))),
        ),
        (
            "user_global_rate_limited:pro with retry after N seconds (text)",
            SourceKind::ZagSpawn,
            "Error: Sorry, you've exceeded your 5 hour session limits. Please retry after 840 seconds. (user_global_rate_limited:pro)",
            Some((Scope::Global, Some("2026-11-24T02:14:00Z"))),
        ),
        (
            // Issue 19: a wait of seconds is the CLI's own retry, no incident.
            "near miss: global rate limit, wait N seconds",
            SourceKind::ZagSpawn,
            "You've hit your global rate limit. Please wait 6 seconds before retrying.",
            None,
        ),
        (
            "weekly text form",
            SourceKind::ZagSpawn,
            "Error: You've hit your weekly rate limit. Please try again in 3 days.",
            Some((Scope::Weekly, Some("2026-11-27T02:01:00Z"))),
        ),
        (
            "near miss: prose mentioning the rate limit sentence",
            SourceKind::ZagSpawn,
            "Copilot says you've hit a rate limit that restricts the number of Copilot model requests sometimes.",
            None,
        ),
    ];

    /// Late-2026 wordings (github/copilot-cli trackers).
    const LATE_2026: &[Case] = &[
        (
            "TUI line: sorry, hit a rate limit, 58 hours",
            SourceKind::Unknown,
            "✗ Sorry, you've hit a rate limit that restricts the number of Copilot model requests you can make within a specific time period. Please try again in 58 hours. Please review our Terms of Service (https://docs.github.com/site-policy/github-terms/github-terms-of-service). (Request ID: E942:3A5438)",
            Some((Scope::Session, Some("2026-11-26T12:01:00Z"))),
        ),
        (
            "hours and minutes",
            SourceKind::ZagSpawn,
            "Sorry, you've hit a rate limit that restricts the number of Copilot model requests you can make within a specific time period. Please try again in 15 hours 23 minutes.",
            Some((Scope::Session, Some("2026-11-24T17:24:00Z"))),
        ),
        (
            "weekly rate limit, sorry form",
            SourceKind::ZagSpawn,
            "Sorry, you've exceeded your weekly rate limit. Please try again in 3 hours.",
            Some((Scope::Weekly, Some("2026-11-24T05:01:00Z"))),
        ),
        (
            "the sorry form as the final session.error",
            SourceKind::CopilotNative,
            r#"{"type":"session.error","data":{"errorType":"rate_limit","message":"Sorry, you've exceeded your weekly rate limit. Please try again in 3 hours.","statusCode":429},"timestamp":"2026-11-24T02:00:00.000Z"}"#,
            Some((Scope::Transient, Some("2026-11-24T05:01:00Z"))),
        ),
        (
            "a bare rate_limited body",
            SourceKind::ZagSpawn,
            r#"{"code":"rate_limited","message":"Too many requests. Try again in 2 hours."}"#,
            Some((Scope::Session, Some("2026-11-24T04:01:00Z"))),
        ),
        (
            "a rate_limited body quoted in an error line",
            SourceKind::ZagSpawn,
            r#"Error: 429 {"code":"rate_limited","message":"Too many requests"}"#,
            Some((Scope::Session, None)),
        ),
        (
            "the CLI gave up after its retries, global limit inside",
            SourceKind::CopilotNative,
            r#"{"type":"session.error","data":{"errorType":"rate_limit","message":"Failed to get response from the AI model; retried 5 times (total retry wait time: 60.2 seconds) Last error: 429 You've hit your global rate limit. Please upgrade your plan or wait 6 seconds for your limit to reset.","statusCode":429},"timestamp":"2026-11-24T02:00:00.000Z"}"#,
            Some((Scope::Transient, Some("2026-11-24T02:00:06Z"))),
        ),
        (
            "near miss: the global rate limit's own short wait (the CLI retries)",
            SourceKind::ZagSpawn,
            "You've hit your global rate limit. Please upgrade your plan or wait 6 seconds for your limit to reset.",
            None,
        ),
        (
            "near miss: the same in the TUI",
            SourceKind::Unknown,
            "✗ You've hit your global rate limit. Please upgrade your plan or wait 6 seconds for your limit to reset.",
            None,
        ),
        (
            "near miss: a per-call failure before the retries run out",
            SourceKind::CopilotNative,
            r#"{"type":"model.call_failure","data":{"statusCode":429,"message":"429 {\"code\":\"rate_limited\"}"},"timestamp":"2026-11-24T02:00:00.000Z"}"#,
            None,
        ),
        (
            "near miss: a tool result quoting rate_limited",
            SourceKind::CopilotNative,
            r#"{"type":"tool.execution_complete","data":{"result":{"content":"{\"code\":\"rate_limited\"}"}},"timestamp":"2026-11-24T02:00:00.000Z"}"#,
            None,
        ),
    ];

    /// Limits no wait lifts.
    const NEEDS_USER: &[NeedsCase] = &[
        (
            "402 no quota, text",
            SourceKind::ZagSpawn,
            "Error: 402 You have no quota",
            NeedsUser::NoQuota,
        ),
        (
            "402 no quota, TUI",
            SourceKind::Unknown,
            "✗ Failed to get response from the AI model; Last error: 402 You have no quota",
            NeedsUser::NoQuota,
        ),
        (
            "quota_exceeded body",
            SourceKind::ZagSpawn,
            r#"{"error":{"code":"quota_exceeded","message":"You have no quota"}}"#,
            NeedsUser::NoQuota,
        ),
        (
            "quota_exceeded quoted in an error line",
            SourceKind::ZagSpawn,
            r#"Error: 402 {"code":"quota_exceeded"}"#,
            NeedsUser::NoQuota,
        ),
        (
            "session.error with status 402",
            SourceKind::CopilotNative,
            r#"{"type":"session.error","data":{"errorType":"quota_exhausted","message":"402 You have no quota","statusCode":402},"timestamp":"2026-11-24T02:00:00.000Z"}"#,
            NeedsUser::NoQuota,
        ),
    ];

    #[test]
    fn table() {
        run_cases(Provider::Copilot, CASES);
        run_cases(Provider::Copilot, LATE_2026);
        run_needs_user(Provider::Copilot, NEEDS_USER);
    }

    #[test]
    fn late_2026_wordings_in_every_place_they_land() {
        let table: &[PlaceCase] = &[
            (
                "Sorry, you've hit a rate limit that restricts the number of Copilot model requests you can make within a specific time period. Please try again in 58 hours.",
                Some((Scope::Session, Some("2026-11-26T12:01:00Z"), None)),
            ),
            (
                "Sorry, you've exceeded your weekly rate limit. Please try again in 3 hours.",
                Some((Scope::Weekly, Some("2026-11-24T05:01:00Z"), None)),
            ),
            ("402 You have no quota", Some((Scope::Unknown, None, Some(NeedsUser::NoQuota)))),
            (
                "You've hit your global rate limit. Please upgrade your plan or wait 6 seconds for your limit to reset.",
                None,
            ),
        ];
        for (text, want) in table {
            run_places(Provider::Copilot, text, *want);
        }
    }

    #[test]
    fn zag_run_provider_status_with_event_data() {
        let line = r#"{"seq":9,"ts":"2026-11-24T02:00:00+00:00","provider":"copilot","wrapper_session_id":"w-4","provider_session_id":"c-1","source_kind":"provider_file","completeness":"full","type":"provider_status","message":"Copilot event: session.error","data":{"errorType":"rate_limit","message":"Failed to get response from the AI model; retried 5 times Last error: 429","statusCode":429}}"#;
        let d = detect_one(SourceKind::ZagSession, line).unwrap();
        assert_eq!(d.provider, Provider::Copilot);
        assert_eq!(d.scope, Scope::Transient);
        assert_eq!(d.provider_session_id.as_deref(), Some("c-1"));
    }
}
