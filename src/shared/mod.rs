//! The floor: the few types every layer speaks, importing nothing of the
//! crate above it.
//!
//! Which provider CLI ([`Provider`]), which kind of file a line came from
//! ([`SourceKind`]), what kind of cap was hit ([`Scope`]), what is known of a
//! session ([`SessionIdentity`]) and what happened to an incident
//! ([`IncidentEvent`]). They live here, below `config`, the detectors, the
//! providers and the control surface, so that each of those can name them
//! without reaching up into another. `tests/layers.rs` keeps the order.

use serde::{Deserialize, Serialize};

mod event;
mod per_provider;
mod session;

pub use event::IncidentEvent;
pub use per_provider::{keys_after, provider_key, PerProvider};
pub use session::SessionIdentity;
pub(crate) use session::{has_field, head_has, parse, set, set_prompt, stem, str_at};

/// The four provider CLIs zag drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Claude,
    Codex,
    Gemini,
    Copilot,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Claude,
        Provider::Codex,
        Provider::Gemini,
        Provider::Copilot,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Claude => "claude",
            Provider::Codex => "codex",
            Provider::Gemini => "gemini",
            Provider::Copilot => "copilot",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// A dense index (`0..ALL.len()`), [`Provider::ALL`] order.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The CLI's home dir under `$HOME` when `[dirs]` does not move it.
    pub fn default_home(self) -> &'static str {
        match self {
            Provider::Claude => ".claude",
            Provider::Codex => ".codex",
            Provider::Gemini => ".gemini",
            Provider::Copilot => ".copilot",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of cap was hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// A rolling window (Claude's five hours, Codex's primary window).
    Session,
    Weekly,
    Daily,
    Global,
    /// Requests-per-minute style: waiting `retryDelay` is enough.
    Transient,
    Unknown,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Session => "session",
            Scope::Weekly => "weekly",
            Scope::Daily => "daily",
            Scope::Global => "global",
            Scope::Transient => "transient",
            Scope::Unknown => "unknown",
        }
    }

    /// The value zag's `usage_limit_hit.scope` accepts (it has no `transient`).
    pub fn zag_str(self) -> &'static str {
        match self {
            Scope::Transient => "unknown",
            s => s.as_str(),
        }
    }

    /// [`Scope::describe`] in the words the provider's CLI uses: Claude's
    /// and Codex's session window is five hours (Claude now prints "5-hour
    /// limit" where it printed "session limit").
    pub fn describe_for(self, provider: &str) -> &'static str {
        match (self, provider) {
            (Scope::Session, "claude" | "codex") => "5-hour limit",
            (s, _) => s.describe(),
        }
    }

    /// Human wording for status lines: "weekly limit", "rate limit".
    pub fn describe(self) -> &'static str {
        match self {
            Scope::Session => "session limit",
            Scope::Weekly => "weekly limit",
            Scope::Daily => "daily quota",
            Scope::Global => "global limit",
            Scope::Transient => "rate limit",
            Scope::Unknown => "usage limit",
        }
    }
}

/// Which kind of file a line came from; each has its own line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// `P/logs/sessions/<wrapper-id>.jsonl`: zag's envelope (zag-contract §2).
    ZagSession,
    /// `B/logs/spawn/<wrapper-id>.log`: raw provider stdout/stderr, any format.
    ZagSpawn,
    /// `~/.claude/projects/<dir>/<session-id>.jsonl`
    ClaudeNative,
    /// `~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`
    CodexNative,
    /// `~/.copilot/session-state/<id>/events.jsonl`
    CopilotNative,
    /// `~/.gemini/tmp/<project>/chats/*.json[l]`: identity only, no errors.
    GeminiNative,
    /// Anything else (`scan` over an arbitrary file): every format is tried.
    Unknown,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::ZagSession => "zag_session",
            SourceKind::ZagSpawn => "zag_spawn",
            SourceKind::ClaudeNative => "claude_native",
            SourceKind::CodexNative => "codex_native",
            SourceKind::CopilotNative => "copilot_native",
            SourceKind::GeminiNative => "gemini_native",
            SourceKind::Unknown => "unknown",
        }
    }

    /// Every kind, in [`SourceKind::index`] order.
    pub const ALL: [SourceKind; 7] = [
        SourceKind::ZagSession,
        SourceKind::ZagSpawn,
        SourceKind::ClaudeNative,
        SourceKind::CodexNative,
        SourceKind::CopilotNative,
        SourceKind::GeminiNative,
        SourceKind::Unknown,
    ];

    /// A dense index (`0..ALL.len()`) for per-kind counters.
    pub fn index(self) -> usize {
        match self {
            SourceKind::ZagSession => 0,
            SourceKind::ZagSpawn => 1,
            SourceKind::ClaudeNative => 2,
            SourceKind::CodexNative => 3,
            SourceKind::CopilotNative => 4,
            SourceKind::GeminiNative => 5,
            SourceKind::Unknown => 6,
        }
    }

    /// The provider a native source belongs to.
    pub fn native_provider(self) -> Option<Provider> {
        match self {
            SourceKind::ClaudeNative => Some(Provider::Claude),
            SourceKind::CodexNative => Some(Provider::Codex),
            SourceKind::CopilotNative => Some(Provider::Copilot),
            SourceKind::GeminiNative => Some(Provider::Gemini),
            _ => None,
        }
    }
}

/// A time as a log field: RFC 3339 to the second (`2030-01-01T08:00:30Z`),
/// or `unknown`; never `Some(…)`.
pub fn log_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "unknown".into(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}
