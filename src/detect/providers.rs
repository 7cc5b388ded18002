//! What the detector core asks of every provider's detector: the needle
//! prefilter every built-in signal passes, which providers' detectors
//! apply to a line, and the dispatch to them (text, object, error text),
//! for the line formats ([`super::line`]) and zag's envelope
//! ([`super::zag`]) alike. Adding a provider adds an arm to each dispatch.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde_json::Value;
use std::sync::LazyLock;

use super::{claude, codex, copilot, gemini};
use super::{Detector, Env, Field, Hit, LineContext, Provider};

/// Byte sequences one of which every built-in signal contains, in the
/// capitalisations the CLIs print. Listed case by case rather than searched
/// case-insensitively: that keeps the SIMD (Teddy) prefilter, several times
/// faster than a case-folding automaton.
const NEEDLES: &[&str] = &[
    "rate_limit",
    "RATE_LIMIT",
    "rate limit",
    "Rate limit",
    "Rate Limit",
    "429",
    "usage limit",
    "Usage limit",
    "usage_limit",
    "quota",
    "Quota",
    "QUOTA",
    "RESOURCE_EXHAUSTED",
    "hit your",
    "reached your",
    "reached the",
    "token usage",
    "usage credits",
    "exhausted your",
    "limit will reset",
    "limit reached",
    "CAPACITY_EXHAUSTED",
    "of credits",
    "extra usage",
    "blocking_limit",
];

static FINDER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(NEEDLES)
        .expect("static needles")
});

/// `true` when `hay` contains a byte sequence a built-in signal needs.
pub(crate) fn has_needle(hay: &[u8]) -> bool {
    FINDER.is_match(hay)
}

/// The providers whose detectors apply: the known one, else all four.
pub(crate) fn candidates(ctx: &LineContext, known: Option<Provider>) -> Vec<Provider> {
    match known.or(ctx.provider_hint).or(ctx.source.native_provider()) {
        Some(p) => vec![p],
        None => Provider::ALL.to_vec(),
    }
}

pub(crate) fn provider_text(p: Provider, s: &str, field: Field, env: &Env) -> Option<Hit> {
    match p {
        Provider::Claude => claude::text(s, field, env),
        Provider::Codex => codex::text(s, field, env),
        Provider::Gemini => gemini::text(s, field, env),
        Provider::Copilot => copilot::text(s, field, env),
    }
}

pub(crate) fn provider_object(p: Provider, v: &Value, env: &Env) -> Option<Hit> {
    match p {
        Provider::Claude => claude::object(v, env),
        Provider::Codex => codex::object(v, env),
        Provider::Gemini => gemini::object(v, env),
        Provider::Copilot => copilot::object(v, env),
    }
}

/// The error text of an object that is structurally an error report, for
/// user patterns.
pub(crate) fn provider_error_text(p: Provider, v: &Value) -> Option<String> {
    match p {
        Provider::Claude => claude::error_text(v),
        Provider::Codex => codex::error_text(v),
        Provider::Gemini => gemini::error_text(v),
        Provider::Copilot => copilot::error_text(v),
    }
}

/// Built-in detectors, then user patterns, over one parsed object.
pub(crate) fn value_hit(
    det: &Detector,
    v: &Value,
    providers: &[Provider],
    env: &Env,
) -> Option<Hit> {
    providers
        .iter()
        .find_map(|p| provider_object(*p, v, env))
        .or_else(|| {
            providers
                .iter()
                .filter(|p| det.has_extra(Some(**p)))
                .find_map(|p| det.extra_hit(Some(*p), &provider_error_text(*p, v)?, env))
        })
}

/// Lines of provider output embedded in one field (stderr, a raw NDJSON
/// capture): JSON lines by structure, text lines by [`Field::Line`].
pub(crate) fn output_text(
    det: &Detector,
    text: &str,
    providers: &[Provider],
    env: &Env,
) -> Option<Hit> {
    if !has_needle(text.as_bytes()) {
        return None;
    }
    let mut hit = text.lines().find_map(|l| {
        let l = l.trim();
        if l.starts_with('{') {
            if let Ok(v) = serde_json::from_str::<Value>(l) {
                return value_hit(det, &v, providers, env);
            }
        }
        providers
            .iter()
            .find_map(|p| provider_text(*p, l, Field::Line, env))
    })?;
    if hit.reset_at.is_none() && hit.provider == Provider::Gemini {
        // Google's retryDelay sits lines away from the message in a dump.
        hit.reset_at = super::reset::find_retry_delay(text, env.anchor);
    }
    Some(hit)
}
