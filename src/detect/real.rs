//! Lines captured from the real CLIs (the `realclients` kit: real npm
//! builds against a scripted fake API, offline), scanned whole with
//! [`scan_reader`]: every limit line must fire with the right scope and
//! reset, and nothing else in the file may.

use chrono::{DateTime, Utc};

use super::testkit::*;
use super::{scan_reader, LineContext, Provider, Scope, SourceKind};

/// (file under tests/fixtures/real, source, anchor, expected hits as
/// (1-based line, provider, scope, reset)).
type Expect = (
    &'static str,
    SourceKind,
    &'static str,
    &'static [(u64, Provider, Scope, Option<&'static str>)],
);

const C: Provider = Provider::Claude;
const X: Provider = Provider::Codex;
const G: Provider = Provider::Gemini;
const P: Provider = Provider::Copilot;
const SPAWN: SourceKind = SourceKind::ZagSpawn;

/// When the Claude Code 2.1.332 captures were made; their resets (pinned by
/// the fake API's `limit…@=<epoch>`) sit 33 s, 17 s and 9 s into a minute, so
/// each text form must read the end of its minute (never early) and each
/// epoch beside it the exact second.
const NEW_ANCHOR: &str = "2026-11-30T19:39:00Z";

/// Gemini's daily quota resets at midnight Pacific: for the captures of
/// 2026-11-24T02:26Z (18:26 PST the day before), 08:00Z.
const PT_MIDNIGHT: Option<&str> = Some("2026-11-24T08:00:00Z");

/// When the Codex 0.171.0 captures were made (`TZ=UTC`).
const CODEX_ANCHOR: &str = "2026-11-30T19:40:26Z";

const FILES: &[Expect] = &[
    // Codex 0.171.0, resets pinned 33 s / 17 s into a minute (see README).
    (
        "codex-0.171.0/limit_json.jsonl",
        SPAWN,
        CODEX_ANCHOR,
        &[
            (3, X, Scope::Session, Some("2026-11-30T21:41:00Z")),
            (4, X, Scope::Session, Some("2026-11-30T21:41:00Z")),
        ],
    ),
    (
        "codex-0.171.0/limit_dated_json.jsonl",
        SPAWN,
        CODEX_ANCHOR,
        &[
            (3, X, Scope::Session, Some("2026-12-03T19:41:00Z")),
            (4, X, Scope::Session, Some("2026-12-03T19:41:00Z")),
        ],
    ),
    (
        "codex-0.171.0/limit_text_stderr.log",
        SPAWN,
        CODEX_ANCHOR,
        &[
            (23, X, Scope::Session, Some("2026-11-30T21:41:00Z")),
            (24, X, Scope::Session, Some("2026-11-30T21:41:00Z")),
        ],
    ),
    (
        "codex-0.171.0/rollout_limit.jsonl",
        SourceKind::CodexNative,
        "2030-01-01T00:00:00Z",
        &[(11, X, Scope::Session, Some("2026-11-30T21:40:33Z"))],
    ),
    (
        "codex-0.171.0/rollout_limit_dated.jsonl",
        SourceKind::CodexNative,
        "2030-01-01T00:00:00Z",
        &[(11, X, Scope::Session, Some("2026-12-03T19:40:17Z"))],
    ),
    (
        "claude-2.1.332/five_hour_streamjson.jsonl",
        SPAWN,
        NEW_ANCHOR,
        &[
            (2, C, Scope::Session, Some("2026-11-30T21:39:33Z")),
            (3, C, Scope::Session, Some("2026-11-30T21:39:33Z")),
            (4, C, Scope::Session, Some("2026-11-30T21:40:00Z")),
        ],
    ),
    (
        "claude-2.1.332/five_hour_json.json",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Session, Some("2026-11-30T21:40:00Z"))],
    ),
    (
        "claude-2.1.332/five_hour_text.txt",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Session, Some("2026-11-30T21:40:00Z"))],
    ),
    (
        "claude-2.1.332/opus_streamjson.jsonl",
        SPAWN,
        NEW_ANCHOR,
        &[
            (2, C, Scope::Weekly, Some("2026-12-03T19:39:17Z")),
            (3, C, Scope::Weekly, Some("2026-12-03T19:39:17Z")),
            (4, C, Scope::Weekly, Some("2026-12-03T19:40:00Z")),
        ],
    ),
    (
        "claude-2.1.332/opus_json.json",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Weekly, Some("2026-12-03T19:40:00Z"))],
    ),
    (
        "claude-2.1.332/opus_text.txt",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Weekly, Some("2026-12-03T19:40:00Z"))],
    ),
    (
        "claude-2.1.332/sonnet_streamjson.jsonl",
        SPAWN,
        NEW_ANCHOR,
        &[
            (2, C, Scope::Weekly, Some("2026-11-30T23:00:09Z")),
            (3, C, Scope::Weekly, Some("2026-11-30T23:00:09Z")),
            (4, C, Scope::Weekly, Some("2026-11-30T23:01:00Z")),
        ],
    ),
    (
        "claude-2.1.332/sonnet_json.json",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Weekly, Some("2026-11-30T23:01:00Z"))],
    ),
    (
        "claude-2.1.332/sonnet_text.txt",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Weekly, Some("2026-11-30T23:01:00Z"))],
    ),
    (
        "claude-2.1.332/overage_streamjson.jsonl",
        SPAWN,
        NEW_ANCHOR,
        &[
            (2, C, Scope::Session, Some("2026-11-30T21:39:33Z")),
            (3, C, Scope::Session, Some("2026-11-30T21:39:33Z")),
            (4, C, Scope::Session, Some("2026-11-30T21:40:00Z")),
        ],
    ),
    (
        "claude-2.1.332/overage_json.json",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Session, Some("2026-11-30T21:40:00Z"))],
    ),
    (
        "claude-2.1.332/overage_text.txt",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Session, Some("2026-11-30T21:40:00Z"))],
    ),
    (
        "claude-2.1.332/overage_exhausted_streamjson.jsonl",
        SPAWN,
        NEW_ANCHOR,
        &[
            (2, C, Scope::Unknown, Some("2026-11-30T21:39:33Z")),
            (3, C, Scope::Unknown, Some("2026-11-30T21:39:33Z")),
            (4, C, Scope::Unknown, Some("2026-11-30T21:40:00Z")),
        ],
    ),
    (
        "claude-2.1.332/overage_exhausted_json.json",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Unknown, Some("2026-11-30T21:40:00Z"))],
    ),
    (
        "claude-2.1.332/overage_exhausted_text.txt",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Unknown, Some("2026-11-30T21:40:00Z"))],
    ),
    (
        "claude-2.1.332/overage_in_use_streamjson.jsonl",
        SPAWN,
        NEW_ANCHOR,
        &[
            (2, C, Scope::Session, Some("2026-11-30T21:39:33Z")),
            (3, C, Scope::Session, Some("2026-11-30T21:39:33Z")),
            (4, C, Scope::Session, Some("2026-11-30T21:40:00Z")),
        ],
    ),
    (
        "claude-2.1.332/overage_in_use_json.json",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Session, Some("2026-11-30T21:40:00Z"))],
    ),
    (
        "claude-2.1.332/overage_in_use_text.txt",
        SPAWN,
        NEW_ANCHOR,
        &[(1, C, Scope::Session, Some("2026-11-30T21:40:00Z"))],
    ),
    (
        "claude-2.1.332/native_five_hour.jsonl",
        SourceKind::ClaudeNative,
        NEW_ANCHOR,
        &[(18, C, Scope::Session, Some("2026-11-30T21:39:33Z"))],
    ),
    (
        "claude/sub_limit_streamjson.jsonl",
        SPAWN,
        "2026-11-24T02:24:00Z",
        &[
            (2, C, Scope::Session, Some("2026-11-24T04:24:08Z")),
            (3, C, Scope::Session, Some("2026-11-24T04:25:00Z")),
            (4, C, Scope::Session, Some("2026-11-24T04:25:00Z")),
        ],
    ),
    (
        "claude/sub_limit_json.jsonl",
        SPAWN,
        "2026-11-24T02:24:00Z",
        &[(1, C, Scope::Session, Some("2026-11-24T04:25:00Z"))],
    ),
    (
        "claude/sub_limit7d_json.jsonl",
        SPAWN,
        "2026-11-24T02:24:00Z",
        &[(1, C, Scope::Weekly, Some("2026-11-24T04:25:00Z"))],
    ),
    (
        "claude/sub_limit_overage_json.jsonl",
        SPAWN,
        "2026-11-24T02:24:00Z",
        &[(1, C, Scope::Session, Some("2026-11-24T04:25:00Z"))],
    ),
    (
        "claude/sub_limit_text.txt",
        SPAWN,
        "2026-11-24T02:24:00Z",
        &[(1, C, Scope::Session, Some("2026-11-24T04:25:00Z"))],
    ),
    (
        "claude/apikey_limit_streamjson.jsonl",
        SPAWN,
        "2026-11-24T02:24:00Z",
        &[
            (2, C, Scope::Transient, None),
            (3, C, Scope::Transient, None),
        ],
    ),
    (
        // The limit, then a resume in the same file: only the limit fires
        // (the resume's synthetic "No response requested." does not).
        "claude/native_limit_then_resume.jsonl",
        SourceKind::ClaudeNative,
        "2030-01-01T00:00:00Z",
        &[(6, C, Scope::Session, Some("2026-11-24T04:25:00Z"))],
    ),
    (
        "codex/chatgpt_limit_json.jsonl",
        SPAWN,
        "2026-11-24T02:24:11Z",
        &[
            (3, X, Scope::Session, Some("2026-11-24T04:25:00Z")),
            (4, X, Scope::Session, Some("2026-11-24T04:25:00Z")),
        ],
    ),
    (
        // Text mode: stdout + stderr as a spawn log holds them, with
        // tracing ERROR lines that are not limits.
        "codex/chatgpt_limit_text.log",
        SPAWN,
        "2026-11-24T02:24:12Z",
        &[
            (23, X, Scope::Session, Some("2026-11-24T04:25:00Z")),
            (24, X, Scope::Session, Some("2026-11-24T04:25:00Z")),
        ],
    ),
    (
        // Five "Reconnecting..." progress events, then the final failure.
        "codex/apikey_rate_limit_exceeded_json.jsonl",
        SPAWN,
        "2026-11-24T02:24:18Z",
        &[
            (8, X, Scope::Transient, None),
            (9, X, Scope::Transient, None),
        ],
    ),
    // "Quota exceeded. Check your plan and billing details.": a limit no
    // wait lifts (needs the user, see `real_billing_captures_need_the_user`).
    (
        "codex/apikey_insufficient_quota_json.jsonl",
        SPAWN,
        "2026-11-24T02:26:00Z",
        &[(3, X, Scope::Unknown, None), (4, X, Scope::Unknown, None)],
    ),
    (
        // token_count (line 10) gives the exact reset of the failed turn
        // (line 11); the resumed turn after it is not a limit.
        "codex/rollout_limit_then_resume.jsonl",
        SourceKind::CodexNative,
        "2030-01-01T00:00:00Z",
        &[(11, X, Scope::Session, Some("2026-11-24T04:24:11Z"))],
    ),
    (
        "codex/rollout_rate_limit_exceeded.jsonl",
        SourceKind::CodexNative,
        "2030-01-01T00:00:00Z",
        &[(10, X, Scope::Transient, None)],
    ),
    (
        "codex/rollout_insufficient_quota.jsonl",
        SourceKind::CodexNative,
        "2030-01-01T00:00:00Z",
        &[(10, X, Scope::Unknown, None)],
    ),
    // Gemini: stdout then stderr, as a spawn log holds them. Each stack
    // trace header ("… TerminalQuotaError: You have exhausted …", "[Routing]
    // … failed: Error: …") and the pretty-printed JSON's "message" line are
    // the CLI's own error reports; the JS dump's "billing details" cause and
    // "code: 429" lines alone are not. No reset printed: daily quotas are due at
    // the next midnight Pacific.
    (
        "gemini/limit_json.log",
        SPAWN,
        "2026-11-24T02:26:16Z",
        &[
            (3, G, Scope::Daily, PT_MIDNIGHT),
            (25, G, Scope::Daily, PT_MIDNIGHT),
            (35, G, Scope::Daily, PT_MIDNIGHT),
            (61, G, Scope::Daily, PT_MIDNIGHT),
        ],
    ),
    (
        "gemini/limit_streamjson.log",
        SPAWN,
        "2026-11-24T02:26:18Z",
        &[
            (3, G, Scope::Daily, PT_MIDNIGHT),
            (7, G, Scope::Daily, PT_MIDNIGHT),
            (29, G, Scope::Daily, PT_MIDNIGHT),
            (40, G, Scope::Daily, PT_MIDNIGHT),
        ],
    ),
    (
        "gemini/limit_text.log",
        SPAWN,
        "2026-11-24T02:26:20Z",
        &[
            (3, G, Scope::Daily, PT_MIDNIGHT),
            (25, G, Scope::Daily, PT_MIDNIGHT),
            (35, G, Scope::Daily, PT_MIDNIGHT),
        ],
    ),
    (
        "gemini/b2_resume_hits_limit_streamjson.log",
        SPAWN,
        "2026-11-24T02:26:33Z",
        &[
            (3, G, Scope::Daily, PT_MIDNIGHT),
            (6, G, Scope::Daily, PT_MIDNIGHT),
            (28, G, Scope::Daily, PT_MIDNIGHT),
            (38, G, Scope::Daily, PT_MIDNIGHT),
        ],
    ),
    (
        "gemini/native_chat_after_limit.jsonl",
        SourceKind::GeminiNative,
        "2026-11-24T02:26:33Z",
        &[],
    ),
    // Copilot: five `model.call_failure` 429s and `assistant.turn_retry`s
    // are retries in progress; only the final `session.error` fires, with
    // the server's "try again in 20s" anchored on the event's timestamp.
    (
        "copilot/limit_json.jsonl",
        SPAWN,
        "2026-11-24T02:27:00Z",
        &[(31, P, Scope::Transient, Some("2026-11-24T02:29:30.179Z"))],
    ),
    (
        "copilot/native_rate_limit_then_resume_events.jsonl",
        SourceKind::CopilotNative,
        "2030-01-01T00:00:00Z",
        &[(6, P, Scope::Transient, Some("2026-11-24T02:29:30.179Z"))],
    ),
    (
        "copilot/native_usage_limit_events.jsonl",
        SourceKind::CopilotNative,
        "2030-01-01T00:00:00Z",
        &[(6, P, Scope::Session, None)],
    ),
    (
        "copilot/limit_usage_limit_text.log",
        SPAWN,
        "2026-11-24T02:30:20Z",
        &[(2, P, Scope::Session, None)],
    ),
    (
        "copilot/continue_text.log",
        SPAWN,
        "2026-11-24T02:30:22Z",
        &[],
    ),
    (
        "copilot/resume_json.jsonl",
        SPAWN,
        "2026-11-24T02:30:22Z",
        &[],
    ),
];

fn read(rel: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn real_captures_fire_exactly_where_the_cli_reported_a_limit() {
    let det = detector();
    let mut failures = Vec::new();
    for (file, source, anchor, want) in FILES {
        let ctx = LineContext {
            source: *source,
            provider_hint: None,
            anchor: anchor.parse::<DateTime<Utc>>().unwrap(),
        };
        let mut got = Vec::new();
        scan_reader(&read(file)[..], &ctx, &det, |no, d| {
            got.push((no, d.provider, d.scope, d.reset_at))
        })
        .unwrap();
        let want: Vec<_> = want
            .iter()
            .map(|(no, p, s, r)| (*no, *p, *s, r.map(at)))
            .collect();
        if got != want {
            failures.push(format!("{file}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn real_billing_captures_need_the_user() {
    let det = detector();
    for (file, source) in [
        ("codex/apikey_insufficient_quota_json.jsonl", SPAWN),
        (
            "codex/rollout_insufficient_quota.jsonl",
            SourceKind::CodexNative,
        ),
    ] {
        let ctx = LineContext {
            source,
            provider_hint: None,
            anchor: "2030-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        };
        let mut got = Vec::new();
        scan_reader(&read(file)[..], &ctx, &det, |_, d| got.push(d.needs_user)).unwrap();
        assert!(!got.is_empty(), "{file}");
        assert!(
            got.iter().all(|n| *n == Some(super::NeedsUser::Billing)),
            "{file}: {got:?}"
        );
    }
}

#[test]
fn real_gemini_stderr_in_a_zag_session_ended_error() {
    // What zag writes when Gemini exits 173: its whole stderr in `error`.
    let stderr = String::from_utf8(read("gemini/limit_text.log")).unwrap();
    let line = serde_json::json!({
        "seq": 4, "ts": "2026-11-24T02:26:21.200000000+00:00", "provider": "gemini",
        "wrapper_session_id": "w-9", "provider_session_id": null, "source_kind": "wrapper",
        "completeness": "full", "type": "session_ended", "success": false, "error": stderr,
    })
    .to_string();
    let d = detector()
        .detect(line.as_bytes(), &ctx(SourceKind::ZagSession, None))
        .unwrap();
    assert_eq!(
        (d.provider, d.scope, d.reset_at),
        (
            Provider::Gemini,
            Scope::Daily,
            Some(at("2026-11-24T08:00:00Z"))
        )
    );
    assert_eq!(d.wrapper_session_id.as_deref(), Some("w-9"));
    assert!(
        d.raw.contains("You have exhausted your daily quota"),
        "{}",
        d.raw
    );
}
