//! zag session-log lines (zag-contract §2): where provider text lands.
//!
//! Only these event types are looked at (§3.1); every other type was
//! rejected before this module runs:
//! - `usage_limit_hit`: a hit zag (or a previous daemon run) logged itself;
//!   reported as is, with its bookkeeping in [`ZagHit`].
//! - `assistant_message` (Claude relay / captured exec): the relay logs every
//!   text block, the synthetic limit message included. It is a limit only when
//!   the *whole* content is the limit sentence ([`Field::Whole`]); an
//!   assistant quoting the sentence in prose or code is not. Other providers'
//!   assistant text never carries errors.
//! - `session_result.result`: the same whole-text rule.
//! - `provider_status`: `data` is judged by structure (a Claude `result`
//!   object, a Copilot `session.error`'s data); `message` line by line
//!   (a raw NDJSON capture, a Codex TUI log line) and, for Claude, whole.
//! - `session_ended.error` / `stderr.message`: the provider's stderr, line by
//!   line: JSON blobs by structure, text lines by [`Field::Line`].
//!
//! User `extra_patterns` run on `session_ended.error`, `stderr.message` and
//! `provider_status.message` only: the fields where a provider reports errors.

use serde_json::{json, Value};

use super::json::Top;
use super::providers::{self, candidates, has_needle, output_text, provider_text};
use super::{claude, reset};
use super::{Detector, Env, Field, Hit, LineContext, Provider, Scope, ZagHit};

pub(crate) fn envelope(det: &Detector, top: &Top<'_>, ctx: &LineContext, env: &Env) -> Option<Hit> {
    let ty = top.str(b"type")?;
    let provider = top.str(b"provider").and_then(|p| Provider::parse(&p));
    let providers = candidates(ctx, provider);
    let extras = providers.iter().any(|p| det.has_extra(Some(*p)));
    // A field is decoded (which allocates for escaped text) only when its raw
    // bytes hold a needle, or when user patterns apply to it.
    let wanted = |key: &[u8], with_extras: bool| {
        let raw = top.get(key)?;
        (has_needle(raw) || (with_extras && extras)).then_some(())?;
        top.str(key)
    };
    match &*ty {
        "usage_limit_hit" => usage_limit_hit(top, provider, env),
        "assistant_message" => {
            if !matches!(provider, None | Some(Provider::Claude)) {
                return None;
            }
            claude::text(&wanted(b"content", false)?, Field::Whole, env)
        }
        "session_result" => {
            let result = wanted(b"result", false)?;
            providers
                .iter()
                .find_map(|p| provider_text(*p, &result, Field::Whole, env))
        }
        "provider_status" => {
            if let Some(data) = top.get(b"data").filter(|d| d.first() == Some(&b'{')) {
                if has_needle(data) {
                    if let Ok(v) = serde_json::from_slice::<Value>(data) {
                        // Copilot's adapter logs "Copilot event: <type>" with
                        // the event's `data`; rebuild the event.
                        let message = top.str(b"message").unwrap_or_default();
                        let v = match message.strip_prefix("Copilot event: ") {
                            Some(kind) => json!({"type": kind.trim(), "data": v}),
                            None => v,
                        };
                        if let Some(hit) = providers::value_hit(det, &v, &providers, env) {
                            return Some(hit);
                        }
                    }
                }
            }
            let message = wanted(b"message", true)?;
            if providers.contains(&Provider::Claude) {
                if let Some(hit) = claude::text(&message, Field::Whole, env) {
                    return Some(hit);
                }
            }
            output_text(det, &message, &providers, env)
                .or_else(|| extra(det, &message, &providers, env))
        }
        "session_ended" | "stderr" => {
            let key: &[u8] = if &*ty == "stderr" {
                b"message"
            } else {
                b"error"
            };
            let text = wanted(key, true)?;
            output_text(det, &text, &providers, env).or_else(|| extra(det, &text, &providers, env))
        }
        _ => None,
    }
}

fn extra(det: &Detector, text: &str, providers: &[Provider], env: &Env) -> Option<Hit> {
    providers
        .iter()
        .filter(|p| det.has_extra(Some(**p)))
        .find_map(|p| det.extra_hit(Some(*p), text, env))
}

fn usage_limit_hit(top: &Top<'_>, provider: Option<Provider>, env: &Env) -> Option<Hit> {
    let provider = provider?;
    let scope = match top.str(b"scope").as_deref() {
        Some("session") => Scope::Session,
        Some("weekly") => Scope::Weekly,
        Some("daily") => Scope::Daily,
        Some("global") => Scope::Global,
        Some("transient") => Scope::Transient,
        _ => Scope::Unknown,
    };
    let time = |k: &[u8]| top.str(k).as_deref().and_then(reset::parse_ts);
    let reset_at = time(b"reset_at").and_then(|t| reset::plausible(t, env.anchor));
    let raw = top.str(b"raw").map(|r| r.into_owned()).unwrap_or_default();
    let mut hit = Hit::new(provider, scope, reset_at, &raw);
    hit.needs_user = top
        .str(b"needs_user")
        .and_then(|n| super::NeedsUser::parse(&n));
    hit.zag_hit = Some(ZagHit {
        incident_id: top.str(b"incident_id").map(|s| s.into_owned()),
        scheduled_resume_at: time(b"scheduled_resume_at"),
        fallback_used: top.get(b"fallback_used").map(|v| v == b"true"),
    });
    Some(hit)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{Provider, Scope, SourceKind};

    const Z: SourceKind = SourceKind::ZagSession;

    /// Zag envelope lines per provider: (provider, case).
    const CASES: &[(Provider, Case)] = &[
        (
            Provider::Claude,
            (
                "relay synthetic assistant message",
                Z,
                r#"{"seq":12,"ts":"2026-11-24T02:00:00.123456789+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"stdout","completeness":"full","type":"assistant_message","content":"You've hit your session limit · resets 3:35am (UTC)","message_id":"m"}"#,
                Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
            ),
        ),
        (
            Provider::Claude,
            (
                "legacy pipe form as the whole message",
                Z,
                r#"{"seq":12,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":"p-1","source_kind":"stdout","completeness":"full","type":"assistant_message","content":"Claude AI global usage limit reached|1795500000"}"#,
                Some((Scope::Global, Some("2026-11-24T06:00:00Z"))),
            ),
        ),
        (
            Provider::Claude,
            (
                "near miss: assistant prose quoting the sentence",
                Z,
                r#"{"seq":12,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"stdout","completeness":"full","type":"assistant_message","content":"zag matches lines like \"You've hit your session limit · resets 3:35am (UTC)\" in the relay."}"#,
                None,
            ),
        ),
        (
            Provider::Claude,
            (
                "near miss: assistant code block with the legacy pattern",
                Z,
                r#"{"seq":12,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"stdout","completeness":"full","type":"assistant_message","content":"```rust\nlet re = Regex::new(r\"Claude AI usage limit reached\\|(\\d+)\");\n// Claude AI usage limit reached|1795500000\n```"}"#,
                None,
            ),
        ),
        (
            Provider::Claude,
            (
                "near miss: tool result with the sentence",
                Z,
                r#"{"seq":13,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"stdout","completeness":"full","type":"tool_result","tool_name":"Read","tool_id":"t","success":true,"output":"You've hit your session limit · resets 3:35am (UTC)"}"#,
                None,
            ),
        ),
        (
            Provider::Claude,
            (
                "near miss: user message with the sentence",
                Z,
                r#"{"seq":2,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"user_message","role":"user","content":"You've hit your session limit · resets 3:35am (UTC)"}"#,
                None,
            ),
        ),
        (
            Provider::Claude,
            (
                "provider_status with the result object as data",
                Z,
                r#"{"seq":14,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"stdout","completeness":"full","type":"provider_status","message":"result","data":{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"You've hit your weekly limit · resets 3:35am (UTC)"}}"#,
                Some((Scope::Weekly, Some("2026-11-24T03:36:00Z"))),
            ),
        ),
        (
            Provider::Claude,
            (
                "provider_status whose message is the result text",
                Z,
                r#"{"seq":14,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"stdout","completeness":"full","type":"provider_status","message":"You've hit your session limit · resets 3:35am (UTC)","data":null}"#,
                Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
            ),
        ),
        (
            Provider::Claude,
            (
                "orphan usage_limit_hit zag wrote",
                Z,
                r#"{"seq":15,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":"p-1","source_kind":"wrapper","completeness":"full","type":"usage_limit_hit","provider":"claude","scope":"weekly","reset_at":"2026-11-24T06:00:00Z","fallback_used":false,"incident_id":"i-1","raw":"Claude AI weekly usage limit reached|1795500000"}"#,
                Some((Scope::Weekly, Some("2026-11-24T06:00:00Z"))),
            ),
        ),
        (
            Provider::Claude,
            (
                "near miss: heartbeat",
                Z,
                r#"{"seq":16,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"heartbeat","interval_secs":10}"#,
                None,
            ),
        ),
        (
            Provider::Codex,
            (
                "session_ended stderr of codex text mode",
                Z,
                r#"{"seq":5,"ts":"2026-11-24T02:00:00+00:00","provider":"codex","wrapper_session_id":"w-2","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"session_ended","success":false,"error":"OpenAI Codex v0.169.0\n--------\nuser\nfix it\nERROR: You’ve hit your usage limit. Upgrade to Pro (…) or try again at 3:35 AM.\n"}"#,
                Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
            ),
        ),
        (
            Provider::Codex,
            (
                "provider_status with a raw NDJSON capture",
                Z,
                r#"{"seq":5,"ts":"2026-11-24T02:00:00+00:00","provider":"codex","wrapper_session_id":"w-2","provider_session_id":"t-1","source_kind":"stdout","completeness":"full","type":"provider_status","message":"{\"type\":\"thread.started\",\"thread_id\":\"t-1\"}\n{\"type\":\"error\",\"message\":\"You’ve hit your usage limit. … try again at 3:35 AM.\"}","data":null}"#,
                Some((Scope::Session, Some("2026-11-24T03:36:00Z"))),
            ),
        ),
        (
            Provider::Codex,
            (
                "near miss: codex stderr echoing a command that greps the phrase",
                Z,
                r#"{"seq":5,"ts":"2026-11-24T02:00:00+00:00","provider":"codex","wrapper_session_id":"w-2","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"session_ended","success":false,"error":"exec\nbash -lc \"rg 'You have reached the usage limit'\"\nsrc/a.rs:3: // you have reached the usage limit\nERROR: workspace routing discovery failed"}"#,
                None,
            ),
        ),
    ];

    #[test]
    fn table() {
        for (p, case) in CASES {
            run_cases(*p, std::slice::from_ref(case));
        }
    }

    #[test]
    fn glued_lines_are_judged_one_object_at_a_time() {
        let hb = r#"{"seq":16,"ts":"2026-11-24T02:00:00+00:00","provider":"claude","wrapper_session_id":"w-1","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"heartbeat","interval_secs":10}"#;
        let limit = CASES[0].1 .2;
        for glued in [format!("{hb}{limit}"), format!("{limit}{hb}")] {
            let d = detect_one(Z, &glued).expect("glued limit");
            assert_eq!(d.scope, Scope::Session);
        }
        assert!(detect_one(Z, &format!("{hb}{hb}")).is_none());
    }

    #[test]
    fn zag_hit_bookkeeping_and_identity() {
        let d = detect_one(Z, CASES[8].1 .2).unwrap();
        assert_eq!(d.wrapper_session_id.as_deref(), Some("w-1"));
        assert_eq!(d.provider_session_id.as_deref(), Some("p-1"));
        assert_eq!(d.line_ts, Some(at("2026-11-24T02:00:00Z")));
        let z = d.zag_hit.unwrap();
        assert_eq!(z.incident_id.as_deref(), Some("i-1"));
        assert_eq!(z.scheduled_resume_at, None);
        assert_eq!(z.fallback_used, Some(false));
    }
}
