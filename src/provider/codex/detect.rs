//! Codex CLI: `exec --json` events, text-mode stderr, the native rollout.
//!
//! Structural signals:
//! - rollout `event_msg` whose payload (`task_complete` or `error`) carries
//!   `codex_error_info == "usage_limit_exceeded"`: the cleanest signal. The
//!   exact reset is in the preceding `token_count` event's
//!   `rate_limits.{primary,secondary}.resets_at` (see [`Windows`], applied by
//!   [`super::StreamState`]); alone, the reset comes from the message text.
//! - `exec --json`: `{"type":"error","message":…}` and
//!   `{"type":"turn.failed","error":{"message":…}}`, whose messages are error
//!   reports.
//!
//! Text rules: "You’ve hit your usage limit … try again at 3:35 AM." (either
//! apostrophe, "you have", "reached", legacy "usage limit reset"), with late
//! 2026's "… usage limit for `<limit>`. Switch to another model now, or try
//! again at …" and the plan variants: a session limit, the time (`%-I:%M
//! %p` today, else `%b %-d{st|nd|rd|th}, %Y %-I:%M %p`) read in the host
//! zone. The TUI's `■ ` error mark may open the line. "exceeded retry limit, last status:
//! 429" and the API-key "Rate limit reached for …" are transient; a
//! "Reconnecting... 3/5 (…429…)" progress line and a "stream error: Rate
//! limit reached … retrying 1/5 in 2.1s…" line are retries in progress,
//! not final, and never fire.
//! Limits no wait lifts ([`NeedsUser`], never scheduled): "Your workspace
//! is out of credits…", "You hit your spend cap set…", "Quota exceeded.
//! Check your plan and billing details." (Codex 0.169 tags it
//! `codex_error_info: usage_limit_exceeded` too; the wording wins).
//! Never limits: `insufficient_quota` inside a transport error, "workspace
//! routing discovery failed", Claude Code's own-continue notices ("Usage
//! limit reset · continuing automatically") that share the legacy words.

use chrono::{DateTime, Duration, Utc};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

use super::reset::parse_ts;
use super::{reset, Env, Field, Hit, NeedsUser, Provider, Scope};

static USAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\byou(?:'ve|’ve|\s+have)?\s+(?:hit|reached)\s+(?:your\s+|the\s+)?usage\s+limit|\busage limit reset",
    )
    .expect("static regex")
});

static TRANSIENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)exceeded retry limit,?\s+last status:?\s+429|\brate limit reached for\b")
        .expect("static regex")
});

/// Failures that are no limit at all (routing, an API key's
/// `insufficient_quota` inside a transport error).
fn not_a_limit(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.contains("workspace routing discovery failed") || l.contains("insufficient_quota")
}

/// Limits no wait lifts, by their sentence: "Your workspace is out of
/// credits. Add credits to continue.", "You hit your spend cap set in your
/// workspace …" / "… set by the owner of your workspace …", "Quota
/// exceeded. Check your plan and billing details.". The match offset is
/// returned so the caller can apply its field rule.
fn needs_user(s: &str) -> Option<(usize, NeedsUser)> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)(your workspace is out of credits)|(you hit your spend cap)|(quota exceeded\.\s*check your plan and billing)",
        )
        .expect("static regex")
    });
    let c = RE.captures(s)?;
    let why = if c.get(1).is_some() {
        NeedsUser::Credits
    } else if c.get(2).is_some() {
        NeedsUser::SpendCap
    } else {
        NeedsUser::Billing
    };
    Some((c.get(0)?.start(), why))
}

/// "stream error: Rate limit reached … try again in 1.86s …; retrying 1/5
/// in 2.1s…": the CLI is still working on it; only its final failure counts.
fn retrying(s: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\bretrying \d+/\d+").expect("static regex"));
    RE.is_match(s)
}

/// Claude Code's own-continue notices ("Usage limit reset · continuing
/// automatically", "Usage limit reached · continuing automatically at
/// 7pm · esc or type to cancel") share Codex's legacy "usage limit reset"
/// words; they are notices, not limits.
fn claude_notice(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.contains("usage limit re") && l.contains("automatically")
}

pub(crate) fn text(s: &str, field: Field, env: &Env) -> Option<Hit> {
    let t = s.trim();
    if let Some((at, why)) = needs_user(t) {
        return field
            .allows(t, at)
            .then(|| Hit::needs_user(Provider::Codex, why, t));
    }
    // "Reconnecting... 3/5 (exceeded retry limit, last status: 429 …)" is a
    // retry in progress (exec --json prints it as an `error` event too).
    if not_a_limit(t) || t.starts_with("Reconnecting...") || retrying(t) || claude_notice(t) {
        return None;
    }
    if let Some(m) = USAGE.find(t) {
        if !field.allows(t, m.start()) {
            return None;
        }
        let reset_at = reset::try_again(t, env.zone, env.anchor);
        return Some(Hit::new(Provider::Codex, Scope::Session, reset_at, t));
    }
    if let Some(m) = TRANSIENT.find(t) {
        if !field.allows(t, m.start()) {
            return None;
        }
        let reset_at = reset::relative(t, env.anchor);
        return Some(Hit::new(Provider::Codex, Scope::Transient, reset_at, t));
    }
    None
}

fn is_usage_limit_info(info: Option<&Value>) -> bool {
    match info {
        Some(Value::String(s)) => s == "usage_limit_exceeded",
        Some(Value::Object(o)) => o.contains_key("usage_limit_exceeded"),
        _ => false,
    }
}

pub(crate) fn object(v: &Value, env: &Env) -> Option<Hit> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    match v.get("type")?.as_str()? {
        "error" => text(&s(v.get("message")), Field::Error, env),
        "turn.failed" => text(&s(v.get("error")?.get("message")), Field::Error, env),
        "item.completed" => {
            let item = v.get("item")?;
            (item.get("type")?.as_str()? == "error")
                .then(|| text(&s(item.get("message")), Field::Error, env))?
        }
        "event_msg" => {
            let p = v.get("payload")?;
            let err = match p.get("type")?.as_str()? {
                "task_complete" | "turn_complete" => p.get("error")?,
                "error" => p,
                _ => return None,
            };
            let message = s(err.get("message"));
            // Real Codex 0.169 tags the billing error ("Quota exceeded.
            // Check your plan and billing details.") `usage_limit_exceeded`
            // too: the wording says no wait lifts it.
            if let Some((_, why)) = needs_user(&message) {
                return Some(Hit::needs_user(Provider::Codex, why, &message));
            }
            if not_a_limit(&message) {
                return None;
            }
            if is_usage_limit_info(err.get("codex_error_info")) {
                let reset_at = reset::try_again(&message, env.zone, env.anchor);
                let raw = if message.is_empty() {
                    "usage_limit_exceeded"
                } else {
                    &message
                };
                return Some(Hit::new(Provider::Codex, Scope::Session, reset_at, raw));
            }
            text(&message, Field::Error, env)
        }
        _ => None,
    }
}

pub(crate) fn error_text(v: &Value) -> Option<String> {
    let m = match v.get("type")?.as_str()? {
        "error" => v.get("message"),
        "turn.failed" => v.get("error")?.get("message"),
        "event_msg" => {
            let p = v.get("payload")?;
            match p.get("type")?.as_str()? {
                "task_complete" | "turn_complete" => p.get("error")?.get("message"),
                "error" => p.get("message"),
                _ => None,
            }
        }
        _ => None,
    };
    m.and_then(Value::as_str).map(str::to_string)
}

/// One rate-limit window from a `token_count` event.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Window {
    used_percent: f64,
    resets_at: Option<DateTime<Utc>>,
}

/// The windows the last `token_count` reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Windows {
    primary: Option<Window>,
    secondary: Option<Window>,
}

impl Windows {
    /// The exhausted window that binds (the later reset when both are), as a
    /// scope and a plausible reset after `anchor`.
    pub fn exhausted(&self, anchor: DateTime<Utc>) -> Option<(Scope, DateTime<Utc>)> {
        [
            (Scope::Session, self.primary),
            (Scope::Weekly, self.secondary),
        ]
        .into_iter()
        .filter_map(|(scope, w)| {
            let w = w?;
            (w.used_percent >= 99.5)
                .then(|| reset::plausible(w.resets_at?, anchor).map(|t| (scope, t)))?
        })
        .max_by_key(|(_, t)| *t)
    }
}

/// The rate-limit windows of a rollout `token_count` line, if it is one.
pub(crate) fn token_count_windows(line: &[u8]) -> Option<Windows> {
    use memchr::memmem::find;
    // The payload type sits near the start of a rollout line; a token_count
    // line is small. Anything else is refused without a pass over it.
    let head = &line[..line.len().min(256)];
    if line.len() > 64 * 1024
        || find(head, b"\"token_count\"").is_none()
        || find(line, b"\"rate_limits\"").is_none()
    {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    let p = v.get("payload").unwrap_or(&v);
    if p.get("type")?.as_str()? != "token_count" {
        return None;
    }
    let ts = v
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_ts);
    let rl = p.get("rate_limits")?;
    let window = |w: Option<&Value>| -> Option<Window> {
        let w = w?;
        let resets_at = match w.get("resets_at").and_then(Value::as_f64) {
            Some(e) => DateTime::<Utc>::from_timestamp(e as i64, 0),
            None => {
                let secs = w.get("resets_in_seconds").and_then(Value::as_f64)?;
                ts.map(|t| t + Duration::seconds(secs as i64))
            }
        };
        Some(Window {
            used_percent: w.get("used_percent").and_then(Value::as_f64).unwrap_or(0.0),
            resets_at,
        })
    };
    Some(Windows {
        primary: window(rl.get("primary")),
        secondary: window(rl.get("secondary")),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{NeedsUser, Provider, Scope, SourceKind, StreamState};

    const CASES: &[Case] = &[
        (
            "exec --json error event",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/codex/settings/usage to purchase more credits or try again at 3:35 AM."}"#,
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "exec --json turn.failed",
            SourceKind::Unknown,
            r#"{"type":"turn.failed","error":{"message":"You’ve hit your usage limit. Upgrade to Pro (…), visit … to purchase more credits or try again at 3:35 AM."}}"#,
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "older dated wording",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"You've hit your usage limit. Upgrade to Plus to continue using Codex, or try again at Dec 20th, 2026 3:36 PM."}"#,
            Some((Scope::Session, Some("2026-12-20T15:37:00Z"))),
        ),
        (
            "text mode stderr line",
            SourceKind::ZagSpawn,
            "ERROR: You’ve hit your usage limit. Upgrade to Pro (…) or try again at 3:35 AM.",
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "legacy: you have reached the usage limit",
            SourceKind::ZagSpawn,
            "You have reached the usage limit for your plan.",
            Some((Scope::Session, None)),
        ),
        (
            "transient after retries (json)",
            SourceKind::ZagSpawn,
            r#"{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 429 Too Many Requests, request id: abc"}}"#,
            Some((Scope::Transient, None)),
        ),
        (
            "transient after retries (text)",
            SourceKind::ZagSpawn,
            "ERROR: exceeded retry limit, last status: 429 Too Many Requests, request id: abc",
            Some((Scope::Transient, None)),
        ),
        (
            "API-key rate limit with delay",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"Rate limit reached for gpt-5 in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 20s."}"#,
            Some((Scope::Transient, Some("2026-11-24T02:00:20Z"))),
        ),
        (
            "rollout task_complete usage_limit_exceeded",
            SourceKind::CodexNative,
            r#"{"timestamp":"2026-11-24T02:00:00.000Z","type":"event_msg","payload":{"type":"task_complete","turn_id":"1","last_agent_message":null,"error":{"message":"You’ve hit your usage limit. … try again at 3:35 AM.","codex_error_info":"usage_limit_exceeded"}}}"#,
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "rollout error event",
            SourceKind::CodexNative,
            r#"{"timestamp":"2026-11-24T02:00:00.000Z","type":"event_msg","payload":{"type":"error","message":"You’ve hit your usage limit.","codex_error_info":"usage_limit_exceeded"}}"#,
            Some((Scope::Session, None)),
        ),
        (
            "near miss: progress event in exec --json",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"Reconnecting... 1/5 (exceeded retry limit, last status: 429 Too Many Requests, request id: req_x)"}"#,
            None,
        ),
        (
            "near miss: progress line before retries run out",
            SourceKind::ZagSpawn,
            "Reconnecting... 3/5 (exceeded retry limit, last status: 429 Too Many Requests, request id: abc)",
            None,
        ),
        (
            "near miss: insufficient_quota with 429",
            SourceKind::ZagSpawn,
            r#"{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 429 Too Many Requests {\"error\":{\"type\":\"insufficient_quota\"}}"}}"#,
            None,
        ),
        (
            "near miss: workspace routing",
            SourceKind::ZagSpawn,
            "ERROR: workspace routing discovery failed: 429 usage limit",
            None,
        ),
        (
            "near miss: agent message quoting it",
            SourceKind::ZagSpawn,
            r#"{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"Codex prints: You’ve hit your usage limit. … try again at 3:35 AM."}}"#,
            None,
        ),
        (
            "near miss: command output quoting it",
            SourceKind::ZagSpawn,
            r#"{"type":"item.completed","item":{"id":"i","type":"command_execution","command":"rg 'usage limit'","aggregated_output":"src/x.rs: // You've hit your usage limit","exit_code":0}}"#,
            None,
        ),
        (
            "near miss: rollout agent message",
            SourceKind::CodexNative,
            r#"{"timestamp":"2026-11-24T02:00:00.000Z","type":"event_msg","payload":{"type":"agent_message","message":"You’ve hit your usage limit is what Codex says."}}"#,
            None,
        ),
        (
            "near miss: rollout function output",
            SourceKind::CodexNative,
            r#"{"timestamp":"2026-11-24T02:00:00.000Z","type":"response_item","payload":{"type":"function_call_output","call_id":"c","output":"codex_error_info: usage_limit_exceeded"}}"#,
            None,
        ),
        (
            "near miss: text line quoting it in prose",
            SourceKind::ZagSpawn,
            "The docs say that when you hit your usage limit, try again at 3:35 AM.",
            None,
        ),
        // ---- Codex 0.171 forms and retries in progress ----
        (
            "dated try-again, minute rounded up",
            SourceKind::ZagSpawn,
            "ERROR: You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/codex/settings/usage to purchase more credits or try again at Dec 3rd, 2026 5:34 PM.",
            Some((Scope::Session, Some("2026-12-03T17:35:00Z"))),
        ),
        (
            "near miss: stream error retry in progress (text)",
            SourceKind::ZagSpawn,
            "stream error: Rate limit reached for gpt-5 in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 1.86s. Visit https://platform.openai.com/account/rate-limits to learn more.; retrying 1/5 in 2.1s…",
            None,
        ),
        (
            "near miss: stream error retry in progress (exec --json error event)",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"stream error: Rate limit reached for gpt-5 in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 1.86s. Visit https://platform.openai.com/account/rate-limits to learn more.; retrying 3/5 in 4.3s…"}"#,
            None,
        ),
        (
            "the final failure after the retries is transient",
            SourceKind::ZagSpawn,
            r#"{"type":"turn.failed","error":{"message":"Rate limit reached for gpt-5 in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 1.86s. Visit https://platform.openai.com/account/rate-limits to learn more."}}"#,
            Some((Scope::Transient, Some("2026-11-24T02:00:01.860Z"))),
        ),
    ];

    /// Late-2026 wordings (codex-rs `protocol/src/error.rs`).
    const LATE_2026: &[Case] = &[
        (
            "usage limit for a named limit, same-day time",
            SourceKind::ZagSpawn,
            "ERROR: You've hit your usage limit for GPT-5.3-Codex-Spark. Switch to another model now, or try again at 10:29 PM.",
            Some((Scope::Session, Some("2026-11-24T22:30:00Z"))),
        ),
        (
            "usage limit for a named limit, dated, exec --json",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"You’ve hit your usage limit for gpt-5-codex. Switch to another model now, or try again at Dec 1st, 2026 10:31 AM."}"#,
            Some((Scope::Session, Some("2026-12-01T10:32:00Z"))),
        ),
        (
            "ordinal nd",
            SourceKind::ZagSpawn,
            r#"{"type":"turn.failed","error":{"message":"You’ve hit your usage limit for gpt-5-codex. Switch to another model now, or try again at Dec 2nd, 2026 12:05 AM."}}"#,
            Some((Scope::Session, Some("2026-12-02T00:06:00Z"))),
        ),
        (
            "ordinal th in the rollout",
            SourceKind::CodexNative,
            r#"{"timestamp":"2026-11-24T02:00:00.000Z","type":"event_msg","payload":{"type":"task_complete","error":{"message":"You’ve hit your usage limit for gpt-5-codex. Switch to another model now, or try again at Dec 4th, 2026 1:07 PM.","codex_error_info":"usage_limit_exceeded"}}}"#,
            Some((Scope::Session, Some("2026-12-04T13:08:00Z"))),
        ),
        (
            "plan variant: ask your admin",
            SourceKind::ZagSpawn,
            "ERROR: You've hit your usage limit. To get more access now, send a request to your admin or try again at 3:35 AM.",
            Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
        ),
        (
            "plan variant: upgrade to Plus",
            SourceKind::ZagSpawn,
            "ERROR: You’ve hit your usage limit. Upgrade to Plus to continue using Codex (https://chatgpt.com/explore/plus), or try again at 9:01 PM.",
            Some((Scope::Session, Some("2026-11-24T21:02:00Z"))),
        ),
        (
            "the TUI's error line",
            SourceKind::Unknown,
            "■ You’ve hit your usage limit for gpt-5-codex. Switch to another model now, or try again at 4:10 PM.",
            Some((Scope::Session, Some("2026-11-24T16:11:00Z"))),
        ),
        (
            "no time given: the fallback decides",
            SourceKind::ZagSpawn,
            "ERROR: You've hit your usage limit. Try again later.",
            Some((Scope::Session, None)),
        ),
        (
            "near miss: the named-limit sentence quoted in prose",
            SourceKind::ZagSpawn,
            "Our runner stops when it sees You've hit your usage limit for gpt-5-codex. Switch to another model now, or try again at 4:10 PM.",
            None,
        ),
        (
            "near miss: a retry in progress after a disconnect",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"Reconnecting... 2/5 (stream disconnected before completion: Rate limit reached for gpt-5 in organization org-x on tokens per min (TPM). Please try again in 1.2s.)"}"#,
            None,
        ),
        (
            "near miss: the same retry as a text line",
            SourceKind::ZagSpawn,
            "Reconnecting... 2/5 (stream disconnected before completion: Rate limit reached for gpt-5. Please try again in 1.2s.)",
            None,
        ),
        (
            "near miss: a spend-cap sentence in an agent message",
            SourceKind::ZagSpawn,
            r#"{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"You hit your spend cap set in your workspace. Increase your spend cap to continue."}}"#,
            None,
        ),
        (
            "near miss: prose about credits",
            SourceKind::ZagSpawn,
            "The docs say: Your workspace is out of credits. Add credits to continue.",
            None,
        ),
    ];

    /// Limits no wait lifts.
    const NEEDS_USER: &[NeedsCase] = &[
        (
            "workspace out of credits, exec --json",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"Your workspace is out of credits. Add credits to continue."}"#,
            NeedsUser::Credits,
        ),
        (
            "workspace out of credits, TUI line",
            SourceKind::Unknown,
            "■ Your workspace is out of credits. Add credits to continue.",
            NeedsUser::Credits,
        ),
        (
            "spend cap set in the workspace (owner)",
            SourceKind::ZagSpawn,
            r#"{"type":"turn.failed","error":{"message":"You hit your spend cap set in your workspace. Increase your spend cap to continue."}}"#,
            NeedsUser::SpendCap,
        ),
        (
            "spend cap set by the owner (member), text mode",
            SourceKind::ZagSpawn,
            "ERROR: You hit your spend cap set by the owner of your workspace. Ask an owner to increase your spend cap to continue.",
            NeedsUser::SpendCap,
        ),
        (
            "spend cap in the rollout, tagged usage_limit_exceeded",
            SourceKind::CodexNative,
            r#"{"timestamp":"2026-11-24T02:00:00.000Z","type":"event_msg","payload":{"type":"task_complete","error":{"message":"You hit your spend cap set in your workspace. Increase your spend cap to continue.","codex_error_info":"usage_limit_exceeded"}}}"#,
            NeedsUser::SpendCap,
        ),
        (
            "billing error tagged usage_limit_exceeded (real 0.169)",
            SourceKind::CodexNative,
            r#"{"timestamp":"2026-11-24T02:26:00.000Z","type":"event_msg","payload":{"type":"task_complete","last_agent_message":null,"error":{"message":"Quota exceeded. Check your plan and billing details.","codex_error_info":"usage_limit_exceeded"}}}"#,
            NeedsUser::Billing,
        ),
        (
            "billing, exec --json",
            SourceKind::ZagSpawn,
            r#"{"type":"error","message":"Quota exceeded. Check your plan and billing details."}"#,
            NeedsUser::Billing,
        ),
    ];

    #[test]
    fn table() {
        run_cases(Provider::Codex, CASES);
        run_cases(Provider::Codex, LATE_2026);
        run_needs_user(Provider::Codex, NEEDS_USER);
    }

    #[test]
    fn late_2026_wordings_in_every_place_they_land() {
        let n = |w| -> PlaceWant { Some((Scope::Unknown, None, Some(w))) };
        let table: &[PlaceCase] = &[
            (
                "You've hit your usage limit for GPT-5.3-Codex-Spark. Switch to another model now, or try again at 10:29 PM.",
                Some((Scope::Session, Some("2026-11-24T22:30:00Z"), None)),
            ),
            (
                "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/codex/settings/usage to purchase more credits or try again at Dec 3rd, 2026 5:34 PM.",
                Some((Scope::Session, Some("2026-12-03T17:35:00Z"), None)),
            ),
            ("Your workspace is out of credits. Add credits to continue.", n(NeedsUser::Credits)),
            (
                "You hit your spend cap set in your workspace. Increase your spend cap to continue.",
                n(NeedsUser::SpendCap),
            ),
            ("Quota exceeded. Check your plan and billing details.", n(NeedsUser::Billing)),
            (
                "Reconnecting... 3/5 (exceeded retry limit, last status: 429 Too Many Requests, request id: abc)",
                None,
            ),
        ];
        for (text, want) in table {
            run_places(Provider::Codex, text, *want);
        }
    }

    #[test]
    fn times_without_a_zone_are_read_in_local_time() {
        // Codex prints `%-I:%M %p` (today) or `%b %-d{st|nd|rd|th}, %Y
        // %-I:%M %p` in the local zone of the machine it ran on.
        let det = detector().with_zone(crate::detect::Zone::named("Europe/Stockholm").unwrap());
        let c = ctx(SourceKind::ZagSpawn, None);
        let read = |line: &str| det.detect(line.as_bytes(), &c).unwrap().reset_at;
        // 02:00Z is 03:00 in Stockholm: 10:29 PM is 22:29 CET, 21:29Z.
        assert_eq!(
            read("ERROR: You've hit your usage limit for gpt-5-codex. Switch to another model now, or try again at 10:29 PM."),
            Some(at("2026-11-24T21:30:00Z"))
        );
        // 2:15 AM local is already past (03:00 local): tomorrow's.
        assert_eq!(
            read("ERROR: You've hit your usage limit. Try again at 2:15 AM."),
            Some(at("2026-11-25T01:16:00Z"))
        );
        assert_eq!(
            read("ERROR: You've hit your usage limit. Try again at Dec 1st, 2026 10:31 AM."),
            Some(at("2026-12-01T09:32:00Z"))
        );
    }

    #[test]
    fn token_count_gives_the_exact_reset_in_a_stream() {
        let det = detector();
        let c = ctx(SourceKind::CodexNative, None);
        let mut state = StreamState::default();
        let lines = [
            r#"{"timestamp":"2026-11-24T01:59:59.000Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"primary":{"used_percent":100.0,"window_minutes":300,"resets_at":1795500000},"secondary":{"used_percent":37.0,"window_minutes":10080,"resets_at":1795900000}}}}"#,
            r#"{"timestamp":"2026-11-24T02:00:00.000Z","type":"event_msg","payload":{"type":"task_complete","error":{"message":"You’ve hit your usage limit.","codex_error_info":"usage_limit_exceeded"}}}"#,
        ];
        assert!(det
            .detect_in_stream(lines[0].as_bytes(), &c, &mut state)
            .is_none());
        let d = det
            .detect_in_stream(lines[1].as_bytes(), &c, &mut state)
            .unwrap();
        assert_eq!(d.scope, Scope::Session);
        assert_eq!(d.reset_at, Some(at("2026-11-24T06:00:00Z")));

        let weekly = lines[0]
            .replace("\"used_percent\":100.0", "\"used_percent\":80.0")
            .replace("\"used_percent\":37.0", "\"used_percent\":100.0");
        let mut state = StreamState::default();
        det.detect_in_stream(weekly.as_bytes(), &c, &mut state);
        let d = det
            .detect_in_stream(lines[1].as_bytes(), &c, &mut state)
            .unwrap();
        assert_eq!(d.scope, Scope::Weekly);
        assert_eq!(d.reset_at, Some(at("2026-11-28T21:06:40Z")));
    }
}
