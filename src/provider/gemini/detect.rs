//! Gemini CLI: what it prints (its chat files record no error).
//!
//! Structural signals:
//! - `--output-format json` (to stderr, among stack traces):
//!   `{"session_id":…,"error":{"type":"Error","message":…,"code":429}}`.
//! - `stream-json`: `{"type":"result","status":"error","error":{"message":…}}`.
//! - a raw Google API error body: `{"error":{"code":429,"status":
//!   "RESOURCE_EXHAUSTED","details":[… "retryDelay":"30s" …]}}`.
//!
//! Text rules (error fields, stderr lines): "You have exhausted your daily
//! quota" (daily, no reset: the caller's fallback); the legacy
//! "[API Error: … code: 429 / RESOURCE_EXHAUSTED / RATE_LIMIT_EXCEEDED …]";
//! a stack dump's `status: 'RESOURCE_EXHAUSTED'` line. Scope: "per day" /
//! `PerDay` quota names → daily, "per week" → weekly, else a `retryDelay`
//! makes it transient, else session (zag 0.18's choice). Reset: `retryDelay`.
//!
//! Newer wordings: "Usage limit reached for `<model>`. Access resets at 10:57
//! PM GMT-3." (daily; the offset printed is the zone), "TerminalQuotaError:
//! You have exhausted your capacity on this model. Your quota will reset
//! after 2h52m39s.", "You've hit the API rate limit. This is likely due to
//! free tier limits." (transient), and a bare `RESOURCE_EXHAUSTED` error body
//! logged as text. `MODEL_CAPACITY_EXHAUSTED` is the server's capacity, not
//! the user's quota: transient.

use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

use super::{reset, Env, Field, Hit, Provider, Scope};

static EXHAUSTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)you have exhausted your (daily )?quota").expect("static regex")
});

static LEGACY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[API Error:[^\n]*?(?:code\W{0,3}429|RESOURCE_EXHAUSTED|RATE_LIMIT_EXCEEDED|you've hit the API rate limit)")
        .expect("static regex")
});

/// "Usage limit reached for gemini-2.5-pro. Access resets at 10:57 PM GMT-3."
static USAGE_LIMIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)usage limit reached for [^\s.]+(?:\.[^\s.]+)*\.?(?:\s*access resets at\s+(\d{1,2}(?::\d{2})?\s*[ap]\.?m\.?|\d{1,2}:\d{2})\s*((?:GMT|UTC)[+-]\d{1,2}(?::?\d{2})?)?)?")
        .expect("static regex")
});

/// "TerminalQuotaError: You have exhausted your capacity on this model. Your
/// quota will reset after 2h52m39s."
static CAPACITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:TerminalQuotaError:\s*)?you have exhausted your capacity on this model\.?(?:[^\n]*?quota will reset after\s+([0-9dhms.]+))?")
        .expect("static regex")
});

/// "You've hit the API rate limit. This is likely due to free tier limits."
static FREE_TIER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)you(?:'|’)ve hit the API rate limit").expect("static regex"));

static STATUS_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^["']?status["']?\s*:\s*["']RESOURCE_EXHAUSTED["']"#).expect("static regex")
});

fn scope_of(s: &str, has_delay: bool) -> Scope {
    let l = s.to_ascii_lowercase();
    if l.contains("perday") || l.contains("per day") || l.contains("daily") {
        Scope::Daily
    } else if l.contains("perweek") || l.contains("per week") || l.contains("weekly") {
        Scope::Weekly
    } else if has_delay {
        Scope::Transient
    } else {
        Scope::Session
    }
}

pub(crate) fn text(s: &str, field: Field, env: &Env) -> Option<Hit> {
    let t = s.trim();
    // The server's capacity, not the user's quota: a short wait helps. Only
    // in an error report: prose or a log line may just name the reason.
    if field == Field::Error && t.contains("MODEL_CAPACITY_EXHAUSTED") {
        let reset_at = reset::find_retry_delay(t, env.anchor);
        return Some(Hit::new(Provider::Gemini, Scope::Transient, reset_at, t));
    }
    if let Some(c) = USAGE_LIMIT.captures(t) {
        let m = c.get(0)?;
        if !field.allows(t, m.start()) {
            return None;
        }
        let zone = c
            .get(2)
            .and_then(|z| reset::Zone::named(z.as_str()))
            .unwrap_or(env.zone);
        let reset_at = c
            .get(1)
            .and_then(|r| reset::wall_clock(r.as_str(), zone, env.anchor));
        return Some(Hit::new(Provider::Gemini, Scope::Daily, reset_at, t));
    }
    if let Some(c) = CAPACITY.captures(t) {
        let m = c.get(0)?;
        if !field.allows(t, m.start()) {
            return None;
        }
        let reset_at = c
            .get(1)
            .and_then(|d| reset::compact_duration(d.as_str().trim_end_matches('.'), env.anchor));
        return Some(Hit::new(Provider::Gemini, Scope::Session, reset_at, t));
    }
    if let Some(m) = FREE_TIER.find(t) {
        if !field.allows(t, m.start()) {
            return None;
        }
        let reset_at = reset::find_retry_delay(t, env.anchor);
        return Some(Hit::new(Provider::Gemini, Scope::Transient, reset_at, t));
    }
    // A bare Google error body logged as text (a zag log's error field).
    if t.starts_with('{') && t.contains("RESOURCE_EXHAUSTED") && field != Field::Whole {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            if let Some(hit) = object(&v, env) {
                return Some(hit);
            }
        }
    }
    if let Some(m) = EXHAUSTED.find(t) {
        if !field.allows(t, m.start()) {
            return None;
        }
        let reset_at = reset::find_retry_delay(t, env.anchor);
        let scope = if m.as_str().to_ascii_lowercase().contains("daily") {
            Scope::Daily
        } else {
            scope_of(t, reset_at.is_some())
        };
        return Some(Hit::new(Provider::Gemini, scope, reset_at, t));
    }
    if let Some(m) = LEGACY.find(t) {
        if !field.allows(t, m.start()) {
            return None;
        }
        let reset_at = reset::find_retry_delay(t, env.anchor);
        let scope = scope_of(t, reset_at.is_some());
        return Some(Hit::new(Provider::Gemini, scope, reset_at, t));
    }
    if field != Field::Whole && STATUS_LINE.is_match(t) {
        return Some(Hit::new(Provider::Gemini, Scope::Session, None, t));
    }
    None
}

/// The `error` object of a Gemini error report, if `v` is one.
fn error_object(v: &Value) -> Option<&Value> {
    let err = v.get("error")?;
    match v.get("type").and_then(Value::as_str) {
        None => Some(err),
        Some("result") => (v.get("status").and_then(Value::as_str) == Some("error")).then_some(err),
        Some("error") => Some(err),
        Some(_) => None,
    }
    .filter(|e| e.is_object())
}

pub(crate) fn object(v: &Value, env: &Env) -> Option<Hit> {
    // The TUI's chat, once its limit dialog is answered "Stop" (captured,
    // 0.61.0): `{"type":"error","content":"[API Error: You have exhausted
    // your daily quota on this model.]\nPlease wait …"}`.
    if v.get("type").and_then(Value::as_str) == Some("error") && v.get("error").is_none() {
        let content = v.get("content").and_then(Value::as_str)?;
        return text(content, Field::Error, env);
    }
    let err = error_object(v)?;
    let message = err.get("message").and_then(Value::as_str).unwrap_or("");
    if let Some(hit) = text(message, Field::Error, env) {
        return Some(hit);
    }
    let code = err.get("code").and_then(Value::as_u64);
    let status = err.get("status").and_then(Value::as_str);
    if code != Some(429) && status != Some("RESOURCE_EXHAUSTED") {
        return None;
    }
    // A Google error body: the quota names and retryDelay sit in `details`.
    let whole = err.to_string();
    if whole.contains("insufficient_quota") || whole.to_ascii_lowercase().contains("billing") {
        return None;
    }
    let reset_at = reset::find_retry_delay(&whole, env.anchor);
    let scope = if whole.contains("MODEL_CAPACITY_EXHAUSTED") {
        Scope::Transient
    } else {
        scope_of(&whole, reset_at.is_some())
    };
    let raw = if message.is_empty() { &whole } else { message };
    Some(Hit::new(Provider::Gemini, scope, reset_at, raw))
}

pub(crate) fn error_text(v: &Value) -> Option<String> {
    error_object(v)?
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{Provider, Scope, SourceKind};

    const CASES: &[Case] = &[
        (
            "json output on stderr",
            SourceKind::ZagSpawn,
            r#"{"session_id":"5f1c0a2e-1111-4c3b-9a55-0123456789ab","error":{"type":"Error","message":"You have exhausted your daily quota on this model.","code":429}}"#,
            Some((Scope::Daily, None)),
        ),
        (
            "stream-json result",
            SourceKind::ZagSpawn,
            r#"{"type":"result","timestamp":"2026-11-24T02:00:00.000Z","status":"error","error":{"type":"Error","message":"[API Error: You have exhausted your daily quota on this model.]\nPlease wait and try again later. To increase your limits, upgrade to a plan."},"stats":{}}"#,
            Some((Scope::Daily, None)),
        ),
        (
            "text mode stderr line",
            SourceKind::ZagSpawn,
            "[API Error: You have exhausted your daily quota on this model.]",
            Some((Scope::Daily, None)),
        ),
        (
            "legacy API error with retryDelay",
            SourceKind::ZagSpawn,
            r#"[API Error: {"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"30s"}]}}]"#,
            Some((Scope::Transient, Some("2026-11-24T02:00:30Z"))),
        ),
        (
            "legacy per-day quota",
            SourceKind::ZagSpawn,
            "[API Error: got status: 429 Too Many Requests. code: 429 RESOURCE_EXHAUSTED quota_limit: GenerateRequestsPerDayPerProjectPerModel]",
            Some((Scope::Daily, None)),
        ),
        (
            "raw Google error body",
            SourceKind::ZagSpawn,
            r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Generate Content API requests per minute'","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7200.0s"}]}}"#,
            Some((Scope::Transient, Some("2026-11-24T04:00:00Z"))),
        ),
        (
            "stack dump status line",
            SourceKind::ZagSpawn,
            "    status: 'RESOURCE_EXHAUSTED',",
            Some((Scope::Session, None)),
        ),
        (
            "near miss: answer text quoting the message",
            SourceKind::ZagSpawn,
            "When the CLI says You have exhausted your daily quota on this model, wait.",
            None,
        ),
        (
            "near miss: auth error json",
            SourceKind::ZagSpawn,
            r#"{"session_id":"s","error":{"type":"Error","message":"Could not load the default credentials.","code":401}}"#,
            None,
        ),
        (
            "near miss: a 429 mentioned in a successful result",
            SourceKind::ZagSpawn,
            r#"{"type":"result","status":"success","response":"HTTP 429 means RESOURCE_EXHAUSTED","stats":{}}"#,
            None,
        ),
        (
            "near miss: chat file message",
            SourceKind::GeminiNative,
            r#"{"id":"m","timestamp":"2026-11-24T02:00:00Z","type":"gemini","content":"You have exhausted your daily quota on this model."}"#,
            None,
        ),
        (
            "the TUI's chat after its limit dialog was answered Stop (0.61.0)",
            SourceKind::GeminiNative,
            r#"{"id":"0e2d","timestamp":"2026-11-24T02:00:00.000Z","type":"error","content":"[API Error: You have exhausted your daily quota on this model.]\nPlease wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method"}"#,
            Some((Scope::Daily, None)),
        ),
        (
            "near miss: the TUI's info record after it",
            SourceKind::GeminiNative,
            r#"{"id":"dd85","timestamp":"2026-11-24T02:00:00.000Z","type":"info","content":"This request failed. Press F12 for diagnostics, or run /settings and change \"Error Verbosity\" to full for full details."}"#,
            None,
        ),
        (
            "near miss: another error record in the chat",
            SourceKind::GeminiNative,
            r#"{"id":"0e2e","timestamp":"2026-11-24T02:00:00.000Z","type":"error","content":"[API Error: fetch failed]"}"#,
            None,
        ),
        // ---- newer Gemini forms ----
        (
            "usage limit for a model, reset at a GMT offset",
            SourceKind::ZagSpawn,
            "Usage limit reached for gemini-2.5-pro. Access resets at 10:57 PM GMT-3.",
            // 22:57 at GMT-3 is 01:57Z; the anchor (02:00Z) is past today's.
            Some((Scope::Daily, Some("2026-11-25T01:58:00Z"))),
        ),
        (
            "usage limit, stream-json result",
            SourceKind::ZagSpawn,
            r#"{"type":"result","status":"error","error":{"type":"Error","message":"[API Error: Usage limit reached for gemini-2.5-pro. Access resets at 11:30 PM GMT+1.]"}}"#,
            Some((Scope::Daily, Some("2026-11-24T22:31:00Z"))),
        ),
        (
            "TerminalQuotaError with an exact duration",
            SourceKind::ZagSpawn,
            "TerminalQuotaError: You have exhausted your capacity on this model. Your quota will reset after 2h52m39s.",
            Some((Scope::Session, Some("2026-11-24T04:52:39Z"))),
        ),
        (
            "TerminalQuotaError in a zag session_ended error",
            SourceKind::ZagSession,
            r#"{"seq":4,"ts":"2026-11-24T02:00:00+00:00","provider":"gemini","wrapper_session_id":"w","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"session_ended","success":false,"error":"Error when talking to Gemini API\nTerminalQuotaError: You have exhausted your capacity on this model. Your quota will reset after 45m.\n    at x (file:///g.js:1:2)"}"#,
            Some((Scope::Session, Some("2026-11-24T02:46:00Z"))),
        ),
        (
            "bare RESOURCE_EXHAUSTED error body in a zag log",
            SourceKind::ZagSession,
            r#"{"seq":4,"ts":"2026-11-24T02:00:00+00:00","provider":"gemini","wrapper_session_id":"w","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"session_ended","success":false,"error":"{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted (e.g. check quota).\",\"status\":\"RESOURCE_EXHAUSTED\"}}"}"#,
            Some((Scope::Session, None)),
        ),
        (
            "free tier API rate limit is transient",
            SourceKind::ZagSpawn,
            "You've hit the API rate limit. This is likely due to free tier limits.",
            Some((Scope::Transient, None)),
        ),
        (
            "MODEL_CAPACITY_EXHAUSTED is the server's capacity: transient",
            SourceKind::ZagSpawn,
            r#"{"error":{"code":429,"message":"No capacity available for model gemini-2.5-pro on the server","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"MODEL_CAPACITY_EXHAUSTED","domain":"cloudcode-pa.googleapis.com"}]}}"#,
            Some((Scope::Transient, None)),
        ),
        (
            "MODEL_CAPACITY_EXHAUSTED in a stream-json error result",
            SourceKind::ZagSpawn,
            r#"{"type":"result","status":"error","error":{"type":"Error","message":"[API Error: No capacity available for model gemini-2.5-pro on the server (MODEL_CAPACITY_EXHAUSTED)]"}}"#,
            Some((Scope::Transient, None)),
        ),
        (
            "near miss: a log line naming MODEL_CAPACITY_EXHAUSTED",
            SourceKind::ZagSpawn,
            "retry policy: treat MODEL_CAPACITY_EXHAUSTED as retryable",
            None,
        ),
        (
            "near miss: a relay assistant message naming MODEL_CAPACITY_EXHAUSTED",
            SourceKind::ZagSession,
            r#"{"seq":5,"ts":"2026-11-24T02:00:00+00:00","provider":"gemini","wrapper_session_id":"w","provider_session_id":null,"source_kind":"stdout","completeness":"full","type":"assistant_message","content":"MODEL_CAPACITY_EXHAUSTED means the server is busy.","message_id":null}"#,
            None,
        ),
        (
            "near miss: prose quoting the usage-limit line",
            SourceKind::ZagSpawn,
            "The docs say Usage limit reached for gemini-2.5-pro. Access resets at 10:57 PM GMT-3. appears then.",
            None,
        ),
        (
            "near miss: a Gemini reply quoting TerminalQuotaError",
            SourceKind::GeminiNative,
            r#"{"id":"m","timestamp":"2026-11-24T02:00:00Z","type":"gemini","content":"TerminalQuotaError: You have exhausted your capacity on this model. Your quota will reset after 2h52m39s."}"#,
            None,
        ),
    ];

    #[test]
    fn table() {
        run_cases(Provider::Gemini, CASES);
    }

    #[test]
    fn session_ended_stderr_with_stack_traces() {
        let line = r#"{"seq":4,"ts":"2026-11-24T02:00:00+00:00","provider":"gemini","wrapper_session_id":"w-3","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"session_ended","success":false,"error":"Error when talking to Gemini API Full report available at: /tmp/gemini-client-error.json\n    at GeminiClient.generateContent (file:///gemini.js:1:2)\n{\"session_id\":\"s-9\",\"error\":{\"type\":\"Error\",\"message\":\"You have exhausted your daily quota on this model.\",\"code\":429}}\n"}"#;
        let d = detect_one(SourceKind::ZagSession, line).unwrap();
        assert_eq!(d.provider, Provider::Gemini);
        assert_eq!(d.scope, Scope::Daily);
        assert_eq!(d.wrapper_session_id.as_deref(), Some("w-3"));
    }
}
