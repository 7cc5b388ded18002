//! Usage-limit detection: pure functions from one log line to a [`Detection`].
//!
//! Every source the daemon tails (zag session logs, zag spawn logs, each
//! provider's own session files) hands each complete line here together with a
//! [`LineContext`] naming the source. Detectors decide from the structure of
//! the line first (event type, error fields, status codes); free-text patterns
//! run only on fields where a provider reports an error, so a tool result or a
//! source file that quotes a limit message never becomes an incident.
//!
//! Nothing here does I/O or reads the clock: a line's reset time is anchored
//! on the line's own timestamp, or on `LineContext::anchor` when the line has
//! none. That keeps detection deterministic and testable in microseconds.
//!
//! # Layout
//! - `line`: format sniffing and the fast paths (top-level skim,
//!   `type` veto, multi-needle prefilter), identity extraction.
//! - `zag`: the zag session-log envelope: which event fields hold provider text.
//! - `providers`: the needle prefilter and the per-provider dispatch both
//!   of them use.
//! - `claude`, `codex`, `gemini`, `copilot`: one detector per provider, each
//!   with `object` (structured events), `text` (wordings) and a table test.
//! - [`reset`]: reset-time parsing; [`json`]: the allocation-free skimmer;
//!   `scan`: [`infer_source`], [`scan_reader`], [`StreamState`].
//!
//! # What is never a limit (the near-miss rules)
//! - Lines whose `type` cannot carry a provider error: zag `tool_call`,
//!   `tool_result`, `user_message`, `reasoning`, `heartbeat`, `usage`, …;
//!   Claude `user` (prompts and tool results) and `system`; Codex
//!   `response_item`; Copilot `tool.*`, `assistant.message`. Rejected when
//!   the `type` key is read, whatever the rest says.
//! - Text that merely quotes a limit: in a relay's `assistant_message`, a
//!   `session_result` or a `provider_status` message, Claude's sentence counts
//!   only when it is the *whole* (trimmed) text; in raw output lines (spawn
//!   logs, stderr) a sentence must open the line or follow a short error
//!   prefix (`ERROR: `, `Error: `, `[API Error: `, a log level, a JS
//!   `message: '`); anywhere else in a line (prose, code, grep output) it is
//!   ignored. Only fields a provider fills with errors (`result` with
//!   `is_error`, `error.message`, `session.error`) match anywhere.
//! - Warnings and retries in progress (the CLI's own short retry is left to
//!   it; only its final failure counts): Claude `rate_limit_event` with a
//!   status other than `rejected` (an `overageStatus: "rejected"` or a
//!   rejected `unifiedWindows` entry under an `allowed` status included),
//!   Claude `system`/`api_retry` and the TUI's own-continue notices (`Usage
//!   limit reached · set to continue automatically …`, `… continuing
//!   automatically at 7pm · esc or type to cancel`, `Usage limit reset ·
//!   continuing automatically`), Codex `Reconnecting... n/5 (…429…)` and
//!   `stream error: … retrying n/5 in 2.1s…`, Gemini `Attempt n failed: …
//!   Retrying after …`, a Copilot text whose own wait is a minute or less
//!   (`… wait 6 seconds`).
//! - The server's capacity: Gemini `MODEL_CAPACITY_EXHAUSTED`.
//! - Failures a wait cannot fix and that are no limit: an API key's
//!   `insufficient_quota`, Claude `billing_error`, auth (401,
//!   `authentication`), `workspace routing discovery failed`, network
//!   errors. They carry no limit wording and no 429 structure, or are vetoed
//!   explicitly (Codex, Gemini).
//!
//! # Limits no wait lifts
//! Codex `Your workspace is out of credits…`, `You hit your spend cap
//! set…`, `Quota exceeded. Check your plan and billing details.`; Copilot
//! `402 You have no quota`, `{"code":"quota_exceeded"}`. They are
//! detections with [`Detection::needs_user`] set and no reset: the daemon
//! records them as needing the user and schedules nothing.
//!
//! # Reset times
//! Never early (see [`reset`]): exact epochs beside the text win; a time
//! printed without seconds is rounded up to the end of its minute; an exact
//! epoch already past on a line without its own timestamp is kept (the
//! scheduler turns it into now + jitter). A daily quota that names no time
//! (Gemini's) is due at the next midnight America/Los_Angeles.
//!
//! # Duplicates
//! One incident often shows up on several lines (Claude's stream-json
//! prints a `rate_limit_event`, a synthetic `assistant` and a `result`;
//! Codex prints `error` and `turn.failed`; zag 0.18 may log its own
//! `usage_limit_hit` too, and re-logs Gemini hits whenever the chat file
//! changes). Detection is per line; merging is the caller's job.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[path = "../provider/claude/detect.rs"]
mod claude;
#[path = "../provider/codex/detect.rs"]
mod codex;
#[path = "../provider/copilot/detect.rs"]
mod copilot;
#[path = "../provider/gemini/detect.rs"]
mod gemini;
pub mod json;
mod line;
#[cfg(test)]
mod props;
mod providers;
#[cfg(test)]
mod real;
pub mod reset;
mod scan;
#[cfg(test)]
mod testkit;
mod zag;

pub use crate::shared::{Provider, Scope, SourceKind};
pub use reset::Zone;
pub use scan::{infer_source, scan_reader, scan_reader_buf, ScanStats, StreamState, MAX_SCAN_LINE};

/// A limit no wait can lift: the user must act (add credits, raise a cap,
/// change the plan) before a resume can work, so none is scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeedsUser {
    /// Prepaid credits are used up (Codex's "Your workspace is out of
    /// credits").
    Credits,
    /// A spending cap set in the workspace was reached (Codex's "You hit
    /// your spend cap set …").
    SpendCap,
    /// The plan's or key's billing quota ("Quota exceeded. Check your plan
    /// and billing details.").
    Billing,
    /// No quota on the account at all (Copilot's `402 You have no quota`,
    /// `quota_exceeded`).
    NoQuota,
}

impl NeedsUser {
    pub fn as_str(self) -> &'static str {
        match self {
            NeedsUser::Credits => "credits",
            NeedsUser::SpendCap => "spend_cap",
            NeedsUser::Billing => "billing",
            NeedsUser::NoQuota => "no_quota",
        }
    }

    pub fn parse(s: &str) -> Option<NeedsUser> {
        [
            NeedsUser::Credits,
            NeedsUser::SpendCap,
            NeedsUser::Billing,
            NeedsUser::NoQuota,
        ]
        .into_iter()
        .find(|n| n.as_str() == s)
    }

    /// What the user must do, in a few words for a notification.
    pub fn what_to_do(self) -> &'static str {
        match self {
            NeedsUser::Credits => "out of credits: add credits to the workspace",
            NeedsUser::SpendCap => {
                "spend cap reached: raise the workspace's spend cap (or ask its owner to)"
            }
            NeedsUser::Billing => "billing quota exceeded: check the plan and billing details",
            NeedsUser::NoQuota => "no quota left: change the plan or allow paid requests",
        }
    }
}

/// What the caller knows about a line besides its bytes.
#[derive(Clone, Debug)]
pub struct LineContext {
    pub source: SourceKind,
    /// The provider of the file when known (a zag spawn log's session, a
    /// native dir); detectors for other providers may be skipped.
    pub provider_hint: Option<Provider>,
    /// Anchor for clock times and relative phrases when the line carries no
    /// timestamp of its own (the file's mtime, or the time the line was read).
    pub anchor: DateTime<Utc>,
}

/// One usage limit found in one line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub provider: Provider,
    pub scope: Scope,
    /// When the provider says the cap lifts; `None` when it does not say, or
    /// said something unparseable, past or absurd (the caller falls back).
    pub reset_at: Option<DateTime<Utc>>,
    /// The matched text, for spotting pattern drift.
    pub raw: String,
    /// Identity the line itself carries.
    pub provider_session_id: Option<String>,
    pub wrapper_session_id: Option<String>,
    pub cwd: Option<String>,
    /// The line's own timestamp, when it has one.
    pub line_ts: Option<DateTime<Utc>>,
    /// Set when the line is a `usage_limit_hit` that zag (or another writer)
    /// already logged: who owns it is the caller's call (zag-contract §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zag_hit: Option<ZagHit>,
    /// Set when no wait lifts this limit (credits, a spend cap, billing):
    /// nothing is scheduled; the user is told what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_user: Option<NeedsUser>,
}

/// The bookkeeping fields of a logged `usage_limit_hit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ZagHit {
    pub incident_id: Option<String>,
    /// Present when a zag scheduler (relay or exec loop) owns the resume.
    pub scheduled_resume_at: Option<DateTime<Utc>>,
    pub fallback_used: Option<bool>,
}

impl Default for Detection {
    fn default() -> Self {
        Detection {
            provider: Provider::Claude,
            scope: Scope::Unknown,
            reset_at: None,
            raw: String::new(),
            provider_session_id: None,
            wrapper_session_id: None,
            cwd: None,
            line_ts: None,
            zag_hit: None,
            needs_user: None,
        }
    }
}

/// Where a piece of text sits, which decides how strictly it must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// A field the provider fills only with an error report (`result` with
    /// `is_error`, an `error.message`, a `session.error`): the wording may
    /// sit anywhere in it.
    Error,
    /// Text that is usually ordinary output (a relay's `assistant_message`,
    /// a result text): it is a limit only if the whole text is the sentence.
    Whole,
    /// One raw output line (spawn log, stderr): the sentence must open the
    /// line, possibly after a short error prefix such as `ERROR: `.
    Line,
}

impl Field {
    /// Whether a match starting at byte `start` of `text` sits where this
    /// kind of field allows a limit sentence.
    pub(crate) fn allows(self, text: &str, start: usize) -> bool {
        match self {
            Field::Error => true,
            Field::Whole => text[..start].trim().is_empty(),
            Field::Line => line::error_prefixed(text, start),
        }
    }
}

/// What the detectors need besides the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Env {
    /// The line's own timestamp, else the caller's anchor.
    pub anchor: DateTime<Utc>,
    /// The zone of local clock times printed without a zone name.
    pub zone: Zone,
    /// Whether `anchor` is the line's own timestamp (else the read time, and
    /// an exact epoch before it is still the reset).
    pub own_ts: bool,
}

impl Env {
    /// An exact epoch the line carries, judged against this line's anchor.
    pub fn epoch(&self, secs: f64) -> Option<DateTime<Utc>> {
        reset::exact_epoch(secs, self.anchor, self.own_ts)
    }
}

/// `raw` is kept to this many bytes (zag 0.18's Gemini hits hold whole files).
pub const MAX_RAW: usize = 1024;

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A provider detector's finding, before identity is attached.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Hit {
    pub provider: Provider,
    pub scope: Scope,
    pub reset_at: Option<DateTime<Utc>>,
    pub raw: String,
    pub zag_hit: Option<ZagHit>,
    pub needs_user: Option<NeedsUser>,
}

impl Hit {
    pub fn new(
        provider: Provider,
        scope: Scope,
        reset_at: Option<DateTime<Utc>>,
        raw: &str,
    ) -> Hit {
        Hit {
            provider,
            scope,
            reset_at,
            raw: clip(raw, MAX_RAW).to_string(),
            zag_hit: None,
            needs_user: None,
        }
    }

    /// A limit no wait lifts: no reset, the user must act.
    pub fn needs_user(provider: Provider, why: NeedsUser, raw: &str) -> Hit {
        Hit {
            needs_user: Some(why),
            ..Hit::new(provider, Scope::Unknown, None, raw)
        }
    }
}

/// Detectors compiled for one set of user patterns (the `extra_patterns`
/// of `[usage_limits]`, given by the caller: detection never reads the
/// configuration itself).
///
/// Build once per config load (it compiles the patterns), then call
/// [`Detector::detect`] on every line. Cheap to share across threads.
#[derive(Clone, Debug, Default)]
pub struct Detector {
    extra: Vec<(Provider, regex::Regex)>,
    zone: Zone,
}

impl Detector {
    /// Compile detectors for `patterns` (provider, regex); invalid ones are
    /// skipped (zag logs and skips them too) and returned so the caller can
    /// report them once.
    pub fn new<'a>(
        patterns: impl IntoIterator<Item = (Provider, &'a str)>,
    ) -> (Detector, Vec<String>) {
        let mut extra = Vec::new();
        let mut invalid = Vec::new();
        for (p, pat) in patterns {
            match regex::Regex::new(pat) {
                Ok(re) => extra.push((p, re)),
                Err(e) => invalid.push(format!("{p}: {pat:?}: {e}")),
            }
        }
        (
            Detector {
                extra,
                zone: Zone::Local,
            },
            invalid,
        )
    }

    /// Read zone-less local clock times ("try again at 3:35 AM") in `zone`
    /// instead of the host's zone (tests, or a daemon told the CLI's zone).
    pub fn with_zone(mut self, zone: Zone) -> Detector {
        self.zone = zone;
        self
    }

    /// The usage limit this line reports, if any.
    ///
    /// Cheap on the lines that dominate real logs: a JSON line whose `type`
    /// can never carry a provider error (tool results, user messages, …) is
    /// rejected as soon as that key is read, without touching the rest.
    pub fn detect(&self, line: &[u8], ctx: &LineContext) -> Option<Detection> {
        line::detect_line(self, line, ctx)
    }

    /// [`Detector::detect`] for callers that read a file in order: `state`
    /// carries what an earlier line said about a later one (Codex writes the
    /// exact reset in the `token_count` event before the failure).
    pub fn detect_in_stream(
        &self,
        line: &[u8],
        ctx: &LineContext,
        state: &mut StreamState,
    ) -> Option<Detection> {
        state.observe(line, ctx);
        let mut d = self.detect(line, ctx)?;
        state.complete(&mut d);
        Some(d)
    }

    /// `true` when a user pattern could apply to `p`'s lines.
    pub(crate) fn has_extra(&self, p: Option<Provider>) -> bool {
        match p {
            Some(p) => self.extra.iter().any(|(q, _)| *q == p),
            None => !self.extra.is_empty(),
        }
    }

    /// The first user pattern of `p` (or any provider) matching `text`.
    pub(crate) fn extra_hit(&self, p: Option<Provider>, text: &str, env: &Env) -> Option<Hit> {
        self.extra
            .iter()
            .filter(|(q, _)| match p {
                Some(p) => p == *q,
                None => true,
            })
            .find_map(|(q, re)| {
                let m = re.find(text)?;
                let reset_at = reset::try_again(text, env.zone, env.anchor);
                Some(Hit::new(*q, Scope::Unknown, reset_at, m.as_str()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use crate::config::UsageLimits;

    fn with_extra(provider: &str, pattern: &str) -> (Detector, Vec<String>) {
        let toml = format!(
            "[usage_limits.providers.{provider}]\nextra_patterns = [{pattern:?}, \"([\"]\n"
        );
        let limits = UsageLimits::from_zag_toml(&toml, std::path::Path::new("zag.toml")).unwrap();
        let (det, invalid) = Detector::new(limits.extra_patterns());
        (det.with_zone(Zone::named("UTC").unwrap()), invalid)
    }

    #[test]
    fn extra_patterns_apply_to_error_fields_only() {
        let (det, invalid) = with_extra("codex", "quota (?:is )?gone");
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        let env = |ty: &str, field: &str| {
            format!(
                r#"{{"seq":1,"ts":"2026-11-24T02:00:00+00:00","provider":"codex","wrapper_session_id":"w","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"{ty}",{field}}}"#
            )
        };
        let z = ctx(SourceKind::ZagSession, None);
        let hit = env(
            "session_ended",
            r#""success":false,"error":"ERROR: quota is gone, try again in 2 hours""#,
        );
        let d = det.detect(hit.as_bytes(), &z).unwrap();
        assert_eq!((d.provider, d.scope), (Provider::Codex, Scope::Unknown));
        assert_eq!(d.raw, "quota is gone");
        assert_eq!(d.reset_at, Some(at("2026-11-24T04:01:00Z")));
        for miss in [
            env("tool_result", r#""output":"quota is gone""#),
            env("assistant_message", r#""content":"quota is gone""#),
            env("user_message", r#""role":"user","content":"quota is gone""#),
        ] {
            assert_eq!(det.detect(miss.as_bytes(), &z), None, "{miss}");
        }
        // Another provider's log is not matched by a Codex pattern.
        let claude = hit.replace("\"codex\"", "\"claude\"");
        assert_eq!(det.detect(claude.as_bytes(), &z), None);
        // Spawn logs: raw output lines of a Codex session.
        let spawn = ctx(SourceKind::ZagSpawn, Some(Provider::Codex));
        assert!(det.detect(b"ERROR: quota gone", &spawn).is_some());
        let json = br#"{"type":"error","message":"quota gone"}"#;
        assert!(det.detect(json, &spawn).is_some());
        let item =
            br#"{"type":"item.completed","item":{"type":"agent_message","text":"quota gone"}}"#;
        assert!(det.detect(item, &spawn).is_none());
    }

    #[test]
    fn garbage_never_panics_or_fires() {
        let det = detector();
        let mut big = b"{\"type\":\"tool_result\",\"output\":\"".to_vec();
        big.extend(vec![b'a'; 1 << 20]);
        let mut cut =
            br#"{"type":"result","is_error":true,"api_error_status":429,"result":"You've hit"#
                .to_vec();
        cut.extend(vec![b'x'; 1 << 16]);
        let lines: Vec<Vec<u8>> = vec![
            b"\xff\xfe429 rate_limit \xc3".to_vec(),
            b"{\"type\":\"result\",\"is_error\":true,\"result\":\"\xff\"}".to_vec(),
            b"[1,2,429".to_vec(),
            b"{{{{{{{{".to_vec(),
            b"}".to_vec(),
            big,
            cut,
        ];
        for source in [
            SourceKind::ZagSession,
            SourceKind::ZagSpawn,
            SourceKind::ClaudeNative,
            SourceKind::Unknown,
        ] {
            for l in &lines {
                assert_eq!(det.detect(l, &ctx(source, None)), None);
            }
        }
    }
}
