//! One line in, one decision out: format sniffing and the fast paths.
//!
//! Order of decisions, cheapest first:
//! 1. A JSON object is skimmed key by key ([`json::skim`]); the moment its
//!    `type` turns out to be one that never carries a provider error (tool
//!    calls and results, user messages, reasoning, heartbeats, Codex
//!    `response_item`, Claude `user`, …) the line is rejected without reading
//!    the rest. That is the whole cost of a megabyte tool result.
//! 2. Otherwise one multi-needle pass ([`has_needle`]) looks for the few
//!    byte sequences every built-in signal contains; without one, and without
//!    a user pattern for the line's provider, the line is rejected.
//! 3. Only then is anything parsed, and the provider detectors decide by
//!    structure.
//!
//! Text lines (not JSON) are only considered in spawn logs and unknown files:
//! zag session logs and provider files are JSONL, so a non-JSON line there is
//! a torn write, not provider output.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::LazyLock;

use super::json::{self, str_of, Top};
use super::providers::{candidates, has_needle, provider_text, value_hit};
use super::reset::parse_ts;
use super::zag;
use super::{Detection, Detector, Env, Field, Hit, LineContext, SourceKind};

static GLUE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"}{\"seq\":"));

/// `type` values that can carry a provider error in some source format.
/// Anything else is rejected on sight (plus any `type` containing "error",
/// zag 0.18's Copilot rule).
const ACCEPTED_TYPES: &[&[u8]] = &[
    // zag session log
    b"\"assistant_message\"",
    b"\"provider_status\"",
    b"\"session_ended\"",
    b"\"session_result\"",
    b"\"stderr\"",
    b"\"usage_limit_hit\"",
    // Claude stream-json / json / native transcript
    b"\"rate_limit_event\"",
    b"\"result\"",
    b"\"assistant\"",
    // Codex exec --json and native rollout
    b"\"turn.failed\"",
    b"\"item.completed\"",
    b"\"event_msg\"",
    // Copilot
    b"\"model.failed\"",
];

fn accepted_type(raw: &[u8]) -> bool {
    ACCEPTED_TYPES.contains(&raw) || raw.windows(5).any(|w| w == b"error")
}

/// The identity a line carries about its session.
#[derive(Default)]
pub(crate) struct Identity {
    pub provider_session_id: Option<String>,
    pub wrapper_session_id: Option<String>,
    pub cwd: Option<String>,
    pub ts: Option<DateTime<Utc>>,
}

fn ts_of_raw(raw: &[u8]) -> Option<DateTime<Utc>> {
    if let Some(s) = str_of(raw) {
        return parse_ts(&s);
    }
    // Epoch seconds or milliseconds.
    let n: f64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
    let secs = if n > 1e11 { n / 1000.0 } else { n };
    DateTime::<Utc>::from_timestamp(secs as i64, 0)
}

impl Identity {
    pub fn from_top(top: &Top<'_>) -> Identity {
        let s = |k: &[u8]| top.str(k).map(|c| c.into_owned()).filter(|s| !s.is_empty());
        Identity {
            provider_session_id: s(b"provider_session_id")
                .or_else(|| s(b"sessionId"))
                .or_else(|| s(b"session_id"))
                .or_else(|| s(b"thread_id")),
            wrapper_session_id: s(b"wrapper_session_id"),
            cwd: s(b"cwd"),
            ts: top
                .get(b"ts")
                .or_else(|| top.get(b"timestamp"))
                .and_then(ts_of_raw),
        }
    }

    pub fn from_value(v: &Value) -> Identity {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Identity {
            provider_session_id: s("sessionId")
                .or_else(|| s("session_id"))
                .or_else(|| s("thread_id")),
            wrapper_session_id: None,
            cwd: s("cwd"),
            ts: s("timestamp").as_deref().and_then(parse_ts),
        }
    }

    pub fn into_detection(self, hit: Hit) -> Detection {
        Detection {
            provider: hit.provider,
            scope: hit.scope,
            reset_at: hit.reset_at,
            raw: hit.raw,
            provider_session_id: self.provider_session_id,
            wrapper_session_id: self.wrapper_session_id,
            cwd: self.cwd,
            line_ts: self.ts,
            zag_hit: hit.zag_hit,
            needs_user: hit.needs_user,
        }
    }
}

/// Lines up to this size are checked for glued zag lines.
const GLUE_SCAN_MAX: usize = 8 * 1024;

pub(crate) fn detect_line(det: &Detector, line: &[u8], ctx: &LineContext) -> Option<Detection> {
    let line = line.trim_ascii();
    match line.first()? {
        b'{' => {
            // Two zag writers can glue their lines (zag-contract §2.4): judge
            // each object of `{…}{"seq":…}` on its own. Looked for only in
            // lines short enough for the extra pass to cost nothing; a long
            // line is glued only if a writer's body was long, and such a
            // line is a tool result in practice.
            if line.len() <= GLUE_SCAN_MAX {
                if let Some(at) = GLUE.find(line) {
                    return detect_line(det, &line[..at + 1], ctx)
                        .or_else(|| detect_line(det, &line[at + 1..], ctx));
                }
            }
            if let Some(decided) = object_line(det, line, ctx) {
                return decided;
            }
        }
        b'[' if has_needle(line) => {
            // Claude `--output-format json` in zag's exec: one JSON array.
            if let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(line) {
                let providers = candidates(ctx, None);
                for item in &items {
                    let id = Identity::from_value(item);
                    let env = Env {
                        anchor: id.ts.unwrap_or(ctx.anchor),
                        zone: det.zone,
                        own_ts: id.ts.is_some(),
                    };
                    if let Some(hit) = value_hit(det, item, &providers, &env) {
                        return Some(id.into_detection(hit));
                    }
                }
                return None;
            }
        }
        _ => {}
    }
    match ctx.source {
        SourceKind::ZagSpawn | SourceKind::Unknown => text_line(det, line, ctx),
        _ => None,
    }
}

/// `Some(decision)` for a JSON object; `None` when the line is not one (or
/// is cut short), so text rules may still apply.
fn object_line(det: &Detector, line: &[u8], ctx: &LineContext) -> Option<Option<Detection>> {
    let mut pairs = Vec::with_capacity(16);
    let mut rejected = false;
    let complete = json::skim(line, |k, v| {
        if k == b"type" && !accepted_type(v) {
            rejected = true;
            return false;
        }
        pairs.push((k, v));
        true
    });
    if rejected {
        return Some(None);
    }
    if !complete {
        return None;
    }
    let top = Top { pairs };
    if !structurally_possible(&top) {
        return Some(None);
    }
    let id = Identity::from_top(&top);
    let env = Env {
        anchor: id.ts.unwrap_or(ctx.anchor),
        zone: det.zone,
        own_ts: id.ts.is_some(),
    };
    let zag_shaped = top.get(b"wrapper_session_id").is_some() && top.get(b"source_kind").is_some();
    let hit = if ctx.source == SourceKind::ZagSession || zag_shaped {
        zag::envelope(det, &top, ctx, &env)
    } else {
        let providers = candidates(ctx, None);
        let extras = providers.iter().any(|p| det.has_extra(Some(*p)));
        if !extras && !has_needle(line) {
            return Some(None);
        }
        let v: Value = serde_json::from_slice(line).ok()?;
        value_hit(det, &v, &providers, &env)
    };
    Some(hit.map(|h| id.into_detection(h)))
}

/// Cheap structural vetoes for provider objects whose `type` is shared by
/// ordinary output (a successful `result`, an ordinary `assistant` turn, a
/// completed command): they are rejected before any needle scan or parse.
fn structurally_possible(top: &Top<'_>) -> bool {
    use memchr::memmem::find;
    let Some(ty) = top.get(b"type") else {
        return true;
    };
    match ty {
        // Claude's result must say is_error; Gemini's must say status error.
        b"\"result\"" => {
            top.get(b"is_error") == Some(b"true")
                || top.get(b"status") == Some(b"\"error\"")
                || top.get(b"terminal_reason") == Some(b"\"blocking_limit\"")
        }
        // Only the CLI's synthetic API-error turns.
        b"\"assistant\"" => {
            top.get(b"error").is_some()
                || top.get(b"isApiErrorMessage") == Some(b"true")
                || top
                    .get(b"message")
                    .is_some_and(|m| find(m, b"\"<synthetic>\"").is_some())
        }
        // Codex: only error items.
        b"\"item.completed\"" => top
            .get(b"item")
            .is_some_and(|i| find(i, b"\"type\":\"error\"").is_some()),
        // Codex rollout: only payloads that can carry an error.
        b"\"event_msg\"" => top.get(b"payload").is_some_and(|p| {
            find(p, b"\"error\"").is_some() || find(p, b"codex_error_info").is_some()
        }),
        _ => true,
    }
}

/// A raw output line of a spawn log or an unknown file.
fn text_line(det: &Detector, line: &[u8], ctx: &LineContext) -> Option<Detection> {
    let providers = candidates(ctx, None);
    let needle = has_needle(line);
    if !needle && !providers.iter().any(|p| det.has_extra(Some(*p))) {
        return None;
    }
    let s = String::from_utf8_lossy(line);
    let env = Env {
        anchor: ctx.anchor,
        zone: det.zone,
        own_ts: false,
    };
    let hit = needle
        .then(|| {
            providers
                .iter()
                .find_map(|p| provider_text(*p, &s, Field::Line, &env))
        })
        .flatten()
        .or_else(|| {
            providers
                .iter()
                .filter(|p| det.has_extra(Some(**p)))
                .find_map(|p| det.extra_hit(Some(*p), &s, &env))
        })?;
    Some(Identity::default().into_detection(hit))
}

/// Strip a short error prefix ("ERROR: ", "Error: ", "[API Error: ", a
/// log timestamp and level, a JS `message: '`) from an output line; `None`
/// when the phrase at `pos` is preceded by anything else (prose, code).
pub(crate) fn error_prefixed(line: &str, pos: usize) -> bool {
    let prefix = line[..pos].trim();
    // A TUI's error mark opens the line: Codex's `■`, Copilot's `✗`.
    if prefix.is_empty() || prefix == "■" || prefix == "✗" {
        return true;
    }
    if prefix.len() > 300 {
        return false;
    }
    let lower = prefix.to_ascii_lowercase();
    let ends_ok = lower.ends_with(':')
        || lower.ends_with("error")
        || lower.ends_with('[')
        || lower.ends_with('\'')
        || lower.ends_with('"')
        || lower.ends_with('>');
    ends_ok
        && (lower.contains("error")
            || lower.ends_with("message:")
            || lower.ends_with("message: '")
            || lower.ends_with("message: \"")
            || lower.ends_with("\"message\": \"")
            || lower.ends_with("\"message\":\""))
}
