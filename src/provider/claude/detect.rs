//! Claude Code: stream-json / json events, the native transcript, plain text.
//!
//! Structural signals, strongest first:
//! - `rate_limit_event` with `rate_limit_info.status == "rejected"`: exact
//!   epoch reset and the window (`rateLimitType`). Other statuses
//!   (`allowed_warning`, `allowed`) are warnings, never limits.
//! - `result` with `is_error: true`: its `result` text is an error report
//!   (`subtype` says "success" even then, so it is ignored). With
//!   `api_error_status: 429` it is a limit even when the wording is unknown
//!   (transient then).
//! - `assistant` entries the CLI synthesised for an API error: top-level
//!   `error: "rate_limit"` / `isApiErrorMessage: true`, or
//!   `message.model == "<synthetic>"`.
//!
//! Text rules (see [`text`]): "You've hit your session / 5-hour / weekly /
//! Opus / Sonnet limit · resets 3:35am (UTC)" (optionally "· out of usage
//! credits"), "You're out of usage credits · resets …" (the paid overage is
//! spent: scope unknown), the older "5-hour limit reached ∙ resets 5pm" and
//! "Your limit will reset at 5pm (Europe/London)", the API-key "API Error:
//! Request rejected (429) · …" (transient), and the legacy `Claude AI usage
//! limit reached|<epoch>`. Reset texts ("7:11pm", "8pm", "Dec 3, 5:32pm",
//! "Jan 2, 2027, 9:05am", zone in parentheses) have minute precision and
//! are rounded up; Claude Code 2.1.332 puts the exact epoch beside them
//! (stream-json `api_error_params.rate_limit_info.resetsAt`, transcript
//! `apiErrorParams…resetsAt` / `quotaLimits.resetsAt`), which wins.
//! Where the text is not known to be an error report (a relay's
//! `assistant_message`, a plain-text output line) the *whole* text must be the
//! limit sentence: an assistant quoting it inside prose or code is no limit.

use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

use super::reset;
use super::{Env, Field, Hit, Provider, Scope};

static TODAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)you(?:'|’| ha)ve (?:hit|reached) your ((?:[a-z0-9\-]+ ){0,3})limit(?:\s*[·•∙|\-–—]\s*resets?\s+(?:at\s+)?([^\n·•∙]{1,80}))?(?:\s*[·•∙]\s*out of usage credits)?",
    )
    .expect("static regex")
});

/// 2.1.332's paid-overage form: "You're out of usage credits · resets …",
/// and late 2026's "You're out of extra usage · resets …".
static OUT_OF_CREDITS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)you(?:'|’| a)re out of (?:usage credits|extra usage)(?:\s*[·•∙|]\s*resets?\s+(?:at\s+)?([^\n·•∙]{1,80}))?",
    )
    .expect("static regex")
});

/// Older wordings still in old logs: "5-hour limit reached ∙ resets 5pm",
/// "Your limit will reset at 5pm (Europe/London)".
static OLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:(5-hour|weekly|opus|sonnet) )?limit reached\s*[·•∙|]\s*resets?\s+(?:at\s+)?([^\n·•∙]{1,80})|\byour limit will reset at\s+([^\n·•∙]{1,80})",
    )
    .expect("static regex")
});

static LEGACY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Claude AI (?:(weekly|global) )?usage limit reached\|(\d{9,13})")
        .expect("static regex")
});

static API_429: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^API Error: (?:Request rejected \(429\)|429\b)").expect("static regex")
});

/// Claude's limit wordings in `s`, placed as `field` says.
pub(crate) fn text(s: &str, field: Field, env: &Env) -> Option<Hit> {
    let t = s.trim();
    if let Some(c) = LEGACY.captures(t) {
        let m = c.get(0)?;
        if field != Field::Error && (m.start() != 0 || m.end() != t.len()) {
            return None;
        }
        let scope = match c.get(1).map(|m| m.as_str()) {
            Some("weekly") => Scope::Weekly,
            Some("global") => Scope::Global,
            _ => Scope::Session,
        };
        let reset_at = c[2].parse::<f64>().ok().and_then(|e| env.epoch(e));
        return Some(Hit::new(Provider::Claude, scope, reset_at, m.as_str()));
    }
    if let Some(c) = TODAY.captures(t) {
        let m = c.get(0)?;
        let whole = field.allows(t, m.start()) && t[m.end()..].trim().is_empty();
        if field != Field::Error && !whole {
            return None;
        }
        let kind = c.get(1).map_or("", |m| m.as_str()).to_ascii_lowercase();
        let scope = if kind.contains("week") || kind.contains("opus") || kind.contains("sonnet") {
            Scope::Weekly
        } else {
            Scope::Session
        };
        let reset_at = c.get(2).and_then(|r| text_reset(r.as_str(), env));
        return Some(Hit::new(Provider::Claude, scope, reset_at, m.as_str()));
    }
    if let Some(c) = OUT_OF_CREDITS.captures(t) {
        let m = c.get(0)?;
        if field != Field::Error && !(field.allows(t, m.start()) && t[m.end()..].trim().is_empty())
        {
            return None;
        }
        let reset_at = c.get(1).and_then(|r| text_reset(r.as_str(), env));
        return Some(Hit::new(
            Provider::Claude,
            Scope::Unknown,
            reset_at,
            m.as_str(),
        ));
    }
    if let Some(c) = OLDER.captures(t) {
        let m = c.get(0)?;
        if !field.allows(t, m.start()) || (field != Field::Error && !t[m.end()..].trim().is_empty())
        {
            return None;
        }
        let kind = c.get(1).map_or("", |m| m.as_str()).to_ascii_lowercase();
        let scope = if kind.is_empty() || kind.starts_with('5') {
            Scope::Session
        } else {
            Scope::Weekly
        };
        let reset_at = c
            .get(2)
            .or_else(|| c.get(3))
            .and_then(|r| text_reset(r.as_str(), env));
        return Some(Hit::new(Provider::Claude, scope, reset_at, m.as_str()));
    }
    if API_429.is_match(t) {
        // The API-key form is a single error line; prose never starts so.
        if field != Field::Error && (t.len() > 2000 || t.contains('\n')) {
            return None;
        }
        let raw = t.lines().next().unwrap_or(t);
        return Some(Hit::new(
            Provider::Claude,
            Scope::Transient,
            None,
            truncate(raw, 300),
        ));
    }
    None
}

use super::clip as truncate;

/// The reset after "resets": a clock time with its zone in parentheses
/// ("5:32pm (UTC)", "Dec 3, 5:32pm (UTC)", "8pm (UTC)"), else a relative
/// phrase; both minute precision, so rounded up to the minute's end.
fn text_reset(r: &str, env: &Env) -> Option<chrono::DateTime<chrono::Utc>> {
    reset::clock_with_zone(r, env.zone, env.anchor).or_else(|| reset::relative(r, env.anchor))
}

/// The exact reset a Claude object carries beside its text (2.1.332):
/// stream-json `api_error_params.rate_limit_info.resetsAt`, the transcript's
/// `apiErrorParams.rate_limit_info.resetsAt` and `quotaLimits.resetsAt`.
fn exact_reset(v: &Value, env: &Env) -> Option<chrono::DateTime<chrono::Utc>> {
    let info = |p: &Value| p.get("rate_limit_info")?.get("resetsAt")?.as_f64();
    let params = v
        .get("api_error_params")
        .or_else(|| v.get("apiErrorParams"));
    params
        .and_then(info)
        .or_else(|| v.get("quotaLimits")?.get("resetsAt")?.as_f64())
        .or_else(|| params?.get("quotaLimits")?.get("resetsAt")?.as_f64())
        .and_then(|e| env.epoch(e))
}

/// The window a rejected `rate_limit_event` names in `unifiedWindows`
/// (`five_hour`, `seven_day`) when `rateLimitType` is absent: the rejected
/// one with the latest reset, as (scope, reset epoch).
fn rejected_window(info: &Value) -> Option<(Scope, Option<f64>)> {
    let windows = info.get("unifiedWindows")?.as_object()?;
    windows
        .iter()
        .filter(|(_, w)| w.get("status").and_then(Value::as_str) == Some("rejected"))
        .map(|(k, w)| (window_scope(k), w.get("resetsAt").and_then(Value::as_f64)))
        .max_by(|a, b| a.1.unwrap_or(0.0).total_cmp(&b.1.unwrap_or(0.0)))
}

/// The reset of a rejected `rate_limit_event`'s `rate_limit_info`.
///
/// `resetsAt` is the reset of the window that rejected. When the paid
/// overage is rejected too (`overageStatus: "rejected"`, the kit's
/// `overage_exhausted` / `overage_in_use_exhausted`), requests pass again as
/// soon as *either* budget refills, so the earlier of `resetsAt` and
/// `overageResetsAt` is the reset. An `overageResetsAt` whose overage is not
/// rejected says nothing about this block and is ignored (unless it is the
/// only time given).
fn event_reset(info: &Value, env: &Env) -> Option<chrono::DateTime<chrono::Utc>> {
    let epoch = |k: &str| {
        info.get(k)
            .and_then(Value::as_f64)
            .and_then(|e| env.epoch(e))
    };
    let base = epoch("resetsAt");
    let overage_rejected = info.get("overageStatus").and_then(Value::as_str) == Some("rejected");
    match (base, epoch("overageResetsAt")) {
        (Some(b), Some(o)) if overage_rejected => Some(b.min(o)),
        (None, o) => o,
        (b, _) => b,
    }
}

/// Scope of a `rate_limit_event`'s `rateLimitType`.
pub(crate) fn window_scope(kind: &str) -> Scope {
    match kind {
        "five_hour" => Scope::Session,
        k if k.starts_with("seven_day") => Scope::Weekly,
        // `overage`: the extra-usage budget is spent too; the base window's
        // reset still applies, but which window it is is not said.
        _ => Scope::Unknown,
    }
}

/// A Claude stream-json / json / native-transcript object.
pub(crate) fn object(v: &Value, env: &Env) -> Option<Hit> {
    match v.get("type")?.as_str()? {
        "rate_limit_event" => {
            let info = v.get("rate_limit_info")?;
            // Only the event's own status blocks. A window rejected while the
            // event is `allowed` is being covered by paid overage, and an
            // `overageStatus: "rejected"` alone says the overage is spent,
            // not that requests fail: both are information.
            if info.get("status")?.as_str()? != "rejected" {
                return None;
            }
            let window = rejected_window(info);
            let scope = match info.get("rateLimitType").and_then(Value::as_str) {
                Some(kind) => window_scope(kind),
                None => window.map_or(Scope::Unknown, |(scope, _)| scope),
            };
            let reset_at =
                event_reset(info, env).or_else(|| window.and_then(|(_, e)| env.epoch(e?)));
            Some(Hit::new(
                Provider::Claude,
                scope,
                reset_at,
                &info.to_string(),
            ))
        }
        "result" => {
            // `terminal_reason: "blocking_limit"`: the run ended on a usage
            // limit, whatever its text says.
            let blocking =
                v.get("terminal_reason").and_then(Value::as_str) == Some("blocking_limit");
            if v.get("is_error").and_then(Value::as_bool) != Some(true) && !blocking {
                return None;
            }
            let status = v.get("api_error_status").and_then(Value::as_u64);
            let msg = v.get("result").and_then(Value::as_str).unwrap_or("");
            if let Some(mut hit) = text(msg, Field::Error, env) {
                if let Some(t) = exact_reset(v, env) {
                    hit.reset_at = Some(t);
                }
                return Some(hit);
            }
            if blocking {
                let raw = if msg.trim().is_empty() {
                    "blocking_limit"
                } else {
                    truncate(msg.trim(), 300)
                };
                return Some(Hit::new(
                    Provider::Claude,
                    Scope::Unknown,
                    exact_reset(v, env),
                    raw,
                ));
            }
            (status == Some(429)).then(|| {
                Hit::new(
                    Provider::Claude,
                    Scope::Transient,
                    None,
                    truncate(msg.trim(), 300),
                )
            })
        }
        "assistant" => {
            let rate_limit = v.get("error").and_then(Value::as_str) == Some("rate_limit");
            let api_error = v.get("isApiErrorMessage").and_then(Value::as_bool) == Some(true);
            let message = v.get("message")?;
            let synthetic = message.get("model").and_then(Value::as_str) == Some("<synthetic>");
            if !(rate_limit || api_error || synthetic) {
                return None;
            }
            let body = message_text(message);
            let field = if rate_limit {
                Field::Error
            } else {
                Field::Whole
            };
            let exact = exact_reset(v, env);
            if let Some(mut hit) = text(&body, field, env) {
                // The epoch beside the text has the seconds the text cut off.
                if exact.is_some() {
                    hit.reset_at = exact;
                }
                return Some(hit);
            }
            rate_limit.then(|| {
                Hit::new(
                    Provider::Claude,
                    Scope::Unknown,
                    exact,
                    truncate(body.trim(), 300),
                )
            })
        }
        _ => None,
    }
}

/// The error text of a structurally failed Claude object, for user patterns.
pub(crate) fn error_text(v: &Value) -> Option<String> {
    match v.get("type")?.as_str()? {
        "result" if v.get("is_error").and_then(Value::as_bool) == Some(true) => {
            v.get("result").and_then(Value::as_str).map(str::to_string)
        }
        "assistant" if v.get("isApiErrorMessage").and_then(Value::as_bool) == Some(true) => {
            Some(message_text(v.get("message")?))
        }
        _ => None,
    }
}

/// The text blocks of an Anthropic message, joined.
fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{Provider, Scope, SourceKind};

    /// (name, source, line, expected (scope, reset) or None)
    const CASES: &[Case] = &[
        // ---- stream-json / json output (spawn logs, captures) ----
        (
            "rate_limit_event five_hour",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795500000,"rateLimitType":"five_hour","isUsingOverage":false},"uuid":"u1","session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T06:00:00Z"))),
        ),
        (
            "rate_limit_event seven_day",
            SourceKind::Unknown,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795500000,"rateLimitType":"seven_day"},"session_id":"s-1"}"#,
            Some((Scope::Weekly, Some("2026-11-24T06:00:00Z"))),
        ),
        (
            "rate_limit_event seven_day_opus",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795500000,"rateLimitType":"seven_day_opus"},"session_id":"s-1"}"#,
            Some((Scope::Weekly, Some("2026-11-24T06:00:00Z"))),
        ),
        (
            "rate_limit_event overage",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795500000,"rateLimitType":"overage"},"session_id":"s-1"}"#,
            Some((Scope::Unknown, Some("2026-11-24T06:00:00Z"))),
        ),
        (
            "rate_limit_event reset in the past falls back",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1700000000,"rateLimitType":"five_hour"},"session_id":"s-1"}"#,
            Some((Scope::Session, None)),
        ),
        (
            "near miss: allowed_warning is a warning",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","resetsAt":1795500000,"rateLimitType":"five_hour","utilization":0.9},"session_id":"s-1"}"#,
            None,
        ),
        (
            "result 429 session limit",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"duration_ms":12,"result":"You've hit your session limit · resets 3:35am (UTC)","session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "result weekly limit, named zone",
            SourceKind::Unknown,
            r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"You've hit your weekly limit · resets 3:35am (Europe/Stockholm)","session_id":"s-1"}"#,
            Some((Scope::Weekly, Some("2026-11-24T02:36:00Z"))),
        ),
        (
            "result API-key 429 is transient",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"API Error: Request rejected (429) · This request would exceed your account's rate limit. Please try again later.","session_id":"s-1"}"#,
            Some((Scope::Transient, None)),
        ),
        (
            "result legacy pipe form",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached|1795500000","session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T06:00:00Z"))),
        ),
        (
            "json output is an array",
            SourceKind::ZagSpawn,
            r#"[{"type":"system","subtype":"init","session_id":"s-1"},{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"You've hit your session limit · resets 3:35am (UTC)","session_id":"s-1"}]"#,
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "near miss: successful result quoting the sentence",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":false,"result":"You've hit your session limit · resets 3:35am (UTC)","session_id":"s-1"}"#,
            None,
        ),
        (
            "near miss: error result that is not a limit",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"result":"Invalid API key · Please run /login","session_id":"s-1"}"#,
            None,
        ),
        (
            "synthetic assistant in stream-json",
            SourceKind::ZagSpawn,
            r#"{"type":"assistant","message":{"id":"m","model":"<synthetic>","role":"assistant","content":[{"type":"text","text":"You've hit your session limit · resets 3:35am (UTC)"}]},"session_id":"s-1","error":"rate_limit"}"#,
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "near miss: ordinary assistant quoting the sentence",
            SourceKind::ZagSpawn,
            r#"{"type":"assistant","message":{"id":"m","model":"claude-sonnet-4-5","role":"assistant","content":[{"type":"text","text":"You've hit your session limit · resets 3:35am (UTC)"}]},"session_id":"s-1"}"#,
            None,
        ),
        (
            "relative reset wording",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"You've hit your session limit · resets in 2 hours","session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T04:01:00Z"))),
        ),
        (
            "plain -p output line",
            SourceKind::ZagSpawn,
            "You've hit your session limit · resets 3:35am (UTC)",
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "near miss: plain prose line quoting it",
            SourceKind::ZagSpawn,
            "The CLI prints \"You've hit your session limit · resets 3:35am (UTC)\" when capped.",
            None,
        ),
        // ---- native transcript ----
        (
            "native rate_limit entry",
            SourceKind::ClaudeNative,
            r#"{"parentUuid":"p","isSidechain":false,"userType":"external","cwd":"/home/u/proj","sessionId":"abc-123","version":"2.1.197","type":"assistant","uuid":"u","timestamp":"2026-11-24T02:00:00.000Z","message":{"id":"m","type":"message","role":"assistant","model":"<synthetic>","content":[{"type":"text","text":"You've hit your session limit · resets 3:35am (UTC)"}]},"error":"rate_limit","isApiErrorMessage":true}"#,
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "native entry anchors on its own timestamp",
            SourceKind::ClaudeNative,
            r#"{"cwd":"/p","sessionId":"abc","type":"assistant","timestamp":"2026-11-20T05:00:00.000Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"You've hit your session limit · resets 3:35am (UTC)"}]},"error":"rate_limit","isApiErrorMessage":true}"#,
            Some((Scope::Session, Some("2026-11-21T03:36:00Z"))),
        ),
        (
            "native legacy synthetic message",
            SourceKind::ClaudeNative,
            r#"{"cwd":"/p","sessionId":"abc","type":"assistant","timestamp":"2026-11-24T02:00:00Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"Claude AI weekly usage limit reached|1795500000"}]},"isApiErrorMessage":true}"#,
            Some((Scope::Weekly, Some("2026-11-24T06:00:00Z"))),
        ),
        (
            "near miss: native user prompt quoting it",
            SourceKind::ClaudeNative,
            r#"{"cwd":"/p","sessionId":"abc","type":"user","timestamp":"2026-11-24T02:00:00Z","message":{"role":"user","content":"why does it say You've hit your session limit · resets 3:35am (UTC)?"}}"#,
            None,
        ),
        (
            "near miss: native tool result quoting the rate_limit_event",
            SourceKind::ClaudeNative,
            r#"{"cwd":"/p","sessionId":"abc","type":"user","timestamp":"2026-11-24T02:00:00Z","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"{\"type\":\"rate_limit_event\",\"rate_limit_info\":{\"status\":\"rejected\",\"resetsAt\":1795500000}}"}]}}"#,
            None,
        ),
        (
            "near miss: native assistant explaining limits",
            SourceKind::ClaudeNative,
            r#"{"cwd":"/p","sessionId":"abc","type":"assistant","timestamp":"2026-11-24T02:00:00Z","message":{"model":"claude-opus-4","content":[{"type":"text","text":"When Claude AI usage limit reached|1795500000 appears, zag parses the epoch."}]}}"#,
            None,
        ),
        (
            "near miss: native api error that is not a limit",
            SourceKind::ClaudeNative,
            r#"{"cwd":"/p","sessionId":"abc","type":"assistant","timestamp":"2026-11-24T02:00:00Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"Credit balance is too low"}]},"error":"billing_error","isApiErrorMessage":true}"#,
            None,
        ),
        // ---- Claude Code 2.1.332 forms (PROVIDERS.md "Update") ----
        (
            "5-hour limit, minute rounded up",
            SourceKind::ZagSpawn,
            "You've hit your 5-hour limit · resets 7:11pm (UTC)",
            Some((Scope::Session, Some("2026-11-24T19:12:00Z"))),
        ),
        (
            "Opus limit, dated more than a day out",
            SourceKind::ZagSpawn,
            "You've hit your Opus limit · resets Dec 3, 5:32pm (UTC)",
            Some((Scope::Weekly, Some("2026-12-03T17:33:00Z"))),
        ),
        (
            "Sonnet limit on the hour",
            SourceKind::ZagSpawn,
            "You've hit your Sonnet limit · resets 8pm (UTC)",
            Some((Scope::Weekly, Some("2026-11-24T20:01:00Z"))),
        ),
        (
            "dated form with a year, in the transcript",
            SourceKind::ClaudeNative,
            r#"{"cwd":"/p","sessionId":"abc","type":"assistant","timestamp":"2026-12-30T10:00:00.000Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"You've hit your weekly limit · resets Jan 2, 2027, 9:05am (UTC)"}]},"error":"rate_limit","isApiErrorMessage":true}"#,
            Some((Scope::Weekly, Some("2027-01-02T09:06:00Z"))),
        ),
        (
            "plan limit while on overage: out-of-credits suffix",
            SourceKind::ZagSpawn,
            "You've hit your 5-hour limit · resets 7:11pm (UTC) · out of usage credits",
            Some((Scope::Session, Some("2026-11-24T19:12:00Z"))),
        ),
        (
            "overage used up: out of usage credits, text",
            SourceKind::ZagSpawn,
            "You're out of usage credits · resets 7:11pm (UTC)",
            Some((Scope::Unknown, Some("2026-11-24T19:12:00Z"))),
        ),
        (
            "overage used up: json result is a limit with its reset",
            SourceKind::ZagSpawn,
            r#"{"subtype":"success","is_error":true,"api_error_status":429,"api_error":"usage_limit_reached","result":"You're out of usage credits · resets 7:11pm (UTC)","session_id":"s-1","type":"result"}"#,
            Some((Scope::Unknown, Some("2026-11-24T19:12:00Z"))),
        ),
        (
            "older form: 5-hour limit reached ∙ resets 5pm",
            SourceKind::ZagSpawn,
            "5-hour limit reached ∙ resets 5pm",
            Some((Scope::Session, Some("2026-11-24T17:01:00Z"))),
        ),
        (
            "older form: Your limit will reset at 5pm (Europe/London)",
            SourceKind::ZagSpawn,
            "Your limit will reset at 5pm (Europe/London)",
            Some((Scope::Session, Some("2026-11-24T17:01:00Z"))),
        ),
        (
            "transcript entry: exact epoch beats the minute text",
            SourceKind::ClaudeNative,
            r#"{"type":"assistant","timestamp":"2026-11-24T02:00:00.000Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"You've hit your 5-hour limit · resets 6:00am (UTC)"}]},"apiError":"usage_limit_reached","apiErrorStatus":429,"apiErrorParams":{"rate_limit_info":{"status":"rejected","resetsAt":1795500033,"rateLimitType":"five_hour"}},"quotaLimits":{"status":"rejected","resetsAt":1795500033},"error":"rate_limit","isApiErrorMessage":true,"sessionId":"abc","cwd":"/p"}"#,
            Some((Scope::Session, Some("2026-11-24T06:00:33Z"))),
        ),
        (
            "transcript entry: quotaLimits alone",
            SourceKind::ClaudeNative,
            r#"{"type":"assistant","timestamp":"2026-11-24T02:00:00.000Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"You've hit your 5-hour limit · resets 6:00am (UTC)"}]},"quotaLimits":{"status":"rejected","resetsAt":1795500033},"error":"rate_limit","isApiErrorMessage":true,"sessionId":"abc"}"#,
            Some((Scope::Session, Some("2026-11-24T06:00:33Z"))),
        ),
        (
            "transcript entry: an epoch before its own line is ignored, the text is read",
            SourceKind::ClaudeNative,
            r#"{"type":"assistant","timestamp":"2026-11-24T02:00:00.000Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"You've hit your 5-hour limit · resets 6:00am (UTC)"}]},"apiErrorParams":{"rate_limit_info":{"status":"rejected","resetsAt":1795480000}},"error":"rate_limit","isApiErrorMessage":true,"sessionId":"abc"}"#,
            Some((Scope::Session, Some("2026-11-24T06:01:00Z"))),
        ),
        (
            "stream-json assistant: api_error_params epoch",
            SourceKind::ZagSpawn,
            r#"{"type":"assistant","message":{"model":"<synthetic>","role":"assistant","content":[{"type":"text","text":"You've hit your 5-hour limit · resets 6:00am (UTC)"}]},"api_error_params":{"rate_limit_info":{"status":"rejected","resetsAt":1795500033,"rateLimitType":"five_hour"}},"session_id":"s-1","error":"rate_limit"}"#,
            Some((Scope::Session, Some("2026-11-24T06:00:33Z"))),
        ),
        (
            "rate_limit_event: a past epoch on an untimed line is still the reset",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795480000,"rateLimitType":"five_hour"},"session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T00:26:40Z"))),
        ),
        (
            "rate_limit_event: overage rejected too, the earlier refill wins",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795500000,"rateLimitType":"five_hour","overageStatus":"rejected","overageResetsAt":1795490000,"overageInUse":true},"session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T03:13:20Z"))),
        ),
        (
            "rate_limit_event: overageResetsAt of an overage not rejected is ignored",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795500000,"rateLimitType":"five_hour","overageStatus":"allowed","overageResetsAt":1795490000},"session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T06:00:00Z"))),
        ),
        (
            "near miss: the TUI's auto-continue notice",
            SourceKind::ZagSpawn,
            "Usage limit reached · set to continue automatically at 5:15pm",
            None,
        ),
        (
            "near miss: the arm record in the transcript",
            SourceKind::ClaudeNative,
            r#"{"type":"system","subtype":"informational","level":"notice","content":"Usage limit reached · set to continue automatically at 5:15pm","timestamp":"2026-11-24T02:00:00Z","sessionId":"abc"}"#,
            None,
        ),
        (
            "near miss: assistant prose quoting the out-of-credits line",
            SourceKind::ZagSpawn,
            r#"{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"It printed You're out of usage credits · resets 7:11pm (UTC) and stopped."}]},"session_id":"s-1"}"#,
            None,
        ),
        (
            "near miss: prose quoting the older form",
            SourceKind::ZagSpawn,
            "The old CLI said: Your limit will reset at 5pm (Europe/London)",
            None,
        ),
        (
            "near miss: user entry quoting the older 5-hour form",
            SourceKind::ClaudeNative,
            r#"{"cwd":"/p","sessionId":"abc","type":"user","timestamp":"2026-11-24T02:00:00Z","message":{"role":"user","content":"5-hour limit reached ∙ resets 5pm"}}"#,
            None,
        ),
    ];

    /// Late-2026 forms (issue 19), by structure.
    const LATE_2026: &[Case] = &[
        (
            "curly apostrophe",
            SourceKind::ZagSpawn,
            "You’ve hit your 5-hour limit · resets 7:11pm (UTC)",
            Some((Scope::Session, Some("2026-11-24T19:12:00Z"))),
        ),
        (
            "no kind word",
            SourceKind::ZagSpawn,
            "You've hit your limit · resets 1:30am (Asia/Dhaka)",
            // 01:30 in Dhaka (UTC+6) is 19:30Z, the next after 02:00Z.
            Some((Scope::Session, Some("2026-11-24T19:31:00Z"))),
        ),
        (
            "out of extra usage",
            SourceKind::ZagSpawn,
            "You're out of extra usage · resets 7:11pm (UTC)",
            Some((Scope::Unknown, Some("2026-11-24T19:12:00Z"))),
        ),
        (
            "out of extra usage, curly, in a result",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"You’re out of extra usage · resets Dec 3, 5:32pm (UTC)","session_id":"s-1"}"#,
            Some((Scope::Unknown, Some("2026-12-03T17:33:00Z"))),
        ),
        (
            "5-hour limit reached with U+2219 and minutes",
            SourceKind::ZagSpawn,
            "5-hour limit reached ∙ resets 5:30am",
            Some((Scope::Session, Some("2026-11-24T05:31:00Z"))),
        ),
        (
            "5-hour limit reached after an error prefix",
            SourceKind::ZagSpawn,
            "Error: 5-hour limit reached ∙ resets 5:30am",
            Some((Scope::Session, Some("2026-11-24T05:31:00Z"))),
        ),
        (
            "result ended by blocking_limit, text known, epoch beside it",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":true,"terminal_reason":"blocking_limit","api_error_status":429,"api_error_params":{"rate_limit_info":{"status":"rejected","resetsAt":1795500033,"rateLimitType":"five_hour"}},"result":"You've hit your 5-hour limit · resets 6:00am (UTC)","session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T06:00:33Z"))),
        ),
        (
            "result ended by blocking_limit, wording unknown: still a limit",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","terminal_reason":"blocking_limit","result":"Some future wording","session_id":"s-1"}"#,
            Some((Scope::Unknown, None)),
        ),
        (
            "result ended by blocking_limit with its exact reset",
            SourceKind::Unknown,
            r#"{"session_id":"s-1","result":"","api_error_params":{"rate_limit_info":{"status":"rejected","resetsAt":1795500033}},"terminal_reason":"blocking_limit","is_error":true,"type":"result"}"#,
            Some((Scope::Unknown, Some("2026-11-24T06:00:33Z"))),
        ),
        (
            "near miss: a successful result whose terminal_reason is another",
            SourceKind::ZagSpawn,
            r#"{"type":"result","subtype":"success","is_error":false,"terminal_reason":"completed","result":"You've hit your 5-hour limit · resets 6:00am (UTC)","session_id":"s-1"}"#,
            None,
        ),
        (
            "rate_limit_event: unifiedWindows name the window when rateLimitType is absent",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","unifiedWindows":{"five_hour":{"utilization":0.4,"resetsAt":1795490000,"status":"allowed"},"seven_day":{"utilization":1,"resetsAt":1795900000,"status":"rejected"}}},"session_id":"s-1"}"#,
            Some((Scope::Weekly, Some("2026-11-28T21:06:40Z"))),
        ),
        (
            "rate_limit_event: five_hour window rejected",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795500000,"rateLimitType":"five_hour","unifiedWindows":{"five_hour":{"utilization":1,"resetsAt":1795500000,"status":"rejected"},"seven_day":{"utilization":0.41,"resetsAt":1795900000,"status":"allowed"}}},"session_id":"s-1"}"#,
            Some((Scope::Session, Some("2026-11-24T06:00:00Z"))),
        ),
        (
            "near miss: a window rejected while the event is allowed (overage covers it)",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","isUsingOverage":true,"unifiedWindows":{"five_hour":{"utilization":1,"resetsAt":1795500000,"status":"rejected"},"seven_day":{"utilization":0.41,"resetsAt":1795900000,"status":"allowed"}}},"session_id":"s-1"}"#,
            None,
        ),
        (
            "near miss: overageStatus rejected alone is information",
            SourceKind::ZagSpawn,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed","overageStatus":"rejected","overageResetsAt":1795490000,"overageDisabledReason":"out_of_credits","unifiedWindows":{"five_hour":{"utilization":0.2,"resetsAt":1795500000,"status":"allowed"}}},"session_id":"s-1"}"#,
            None,
        ),
        (
            "near miss: overageStatus rejected with an allowed_warning",
            SourceKind::ClaudeNative,
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","overageStatus":"rejected","resetsAt":1795500000},"session_id":"s-1"}"#,
            None,
        ),
        (
            "near miss: the new arm line as text",
            SourceKind::ZagSpawn,
            "Usage limit reached · continuing automatically at 7pm · esc or type to cancel",
            None,
        ),
        (
            "near miss: the new arm record in the transcript",
            SourceKind::ClaudeNative,
            r#"{"type":"system","subtype":"informational","level":"notice","content":"Usage limit reached · continuing automatically at 7pm · esc or type to cancel","timestamp":"2026-11-24T02:00:00Z","sessionId":"abc"}"#,
            None,
        ),
        (
            "near miss: the re-arm after a continuation met the limit again",
            SourceKind::ZagSpawn,
            "Usage limit reached again after you continued · continuing automatically at 8pm · esc or type to cancel",
            None,
        ),
        (
            "near miss: the reset notice",
            SourceKind::ZagSpawn,
            "Usage limit reset · continuing automatically",
            None,
        ),
        (
            "near miss: the reset notice in the transcript",
            SourceKind::ClaudeNative,
            r#"{"type":"system","subtype":"informational","level":"notice","content":"Usage limit reset · continuing automatically","timestamp":"2026-11-24T02:00:00Z","sessionId":"abc"}"#,
            None,
        ),
        (
            "near miss: prose quoting out of extra usage",
            SourceKind::ZagSpawn,
            "When you see You're out of extra usage · resets 7pm, buy more.",
            None,
        ),
        (
            "near miss: a user entry quoting the 5-hour form with U+2219",
            SourceKind::ClaudeNative,
            r#"{"type":"user","timestamp":"2026-11-24T02:00:00Z","message":{"role":"user","content":"5-hour limit reached ∙ resets 5:30am"},"sessionId":"abc"}"#,
            None,
        ),
    ];

    #[test]
    fn table() {
        run_cases(Provider::Claude, CASES);
        run_cases(Provider::Claude, LATE_2026);
    }

    #[test]
    fn late_2026_wordings_in_every_place_they_land() {
        let table: &[PlaceCase] = &[
            (
                "You've hit your 5-hour limit · resets 7:11pm (UTC)",
                Some((Scope::Session, Some("2026-11-24T19:12:00Z"), None)),
            ),
            (
                "You’ve hit your weekly limit · resets Dec 3, 5:32pm (UTC)",
                Some((Scope::Weekly, Some("2026-12-03T17:33:00Z"), None)),
            ),
            (
                "You're out of extra usage · resets 7:11pm (UTC)",
                Some((Scope::Unknown, Some("2026-11-24T19:12:00Z"), None)),
            ),
            (
                "5-hour limit reached ∙ resets 5:30am",
                Some((Scope::Session, Some("2026-11-24T05:31:00Z"), None)),
            ),
            (
                "Usage limit reached · continuing automatically at 7pm · esc or type to cancel",
                None,
            ),
            (
                "Usage limit reached again after you continued · continuing automatically at 8pm",
                None,
            ),
            ("Usage limit reset · continuing automatically", None),
            (
                "Usage limit reached · set to continue automatically at 5:15pm",
                None,
            ),
        ];
        for (text, want) in table {
            run_places(Provider::Claude, text, *want);
        }
    }

    #[test]
    fn a_reset_that_moves_on_each_blocked_retry_is_read_from_each_line() {
        // Each blocked retry prints the reset it was told: the later line's
        // reset is the later one, never the first line's.
        let det = detector();
        let line = |ts: &str, reset: &str| {
            format!(
                r#"{{"type":"assistant","timestamp":"{ts}","message":{{"model":"<synthetic>","content":[{{"type":"text","text":"You've hit your 5-hour limit · resets {reset} (UTC)"}}]}},"error":"rate_limit","isApiErrorMessage":true,"sessionId":"abc"}}"#
            )
        };
        let c = ctx(SourceKind::ClaudeNative, None);
        let first = det
            .detect(line("2026-11-24T02:00:00Z", "7pm").as_bytes(), &c)
            .unwrap();
        let retry = det
            .detect(line("2026-11-24T19:01:30Z", "7:30pm").as_bytes(), &c)
            .unwrap();
        assert_eq!(first.reset_at, Some(at("2026-11-24T19:01:00Z")));
        assert_eq!(retry.reset_at, Some(at("2026-11-24T19:31:00Z")));
        assert_eq!(first.provider_session_id, retry.provider_session_id);
    }

    #[test]
    fn identity_is_taken_from_the_native_line() {
        let d = detect_one(
            SourceKind::ClaudeNative,
            r#"{"cwd":"/home/u/proj","sessionId":"abc-123","type":"assistant","timestamp":"2026-11-24T02:00:00.000Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"You've hit your session limit · resets 3:35am (UTC)"}]},"error":"rate_limit","isApiErrorMessage":true}"#,
        )
        .unwrap();
        assert_eq!(d.provider_session_id.as_deref(), Some("abc-123"));
        assert_eq!(d.cwd.as_deref(), Some("/home/u/proj"));
        assert_eq!(d.line_ts, Some(at("2026-11-24T02:00:00Z")));
        assert_eq!(d.raw, "You've hit your session limit · resets 3:35am (UTC)");
    }
}
