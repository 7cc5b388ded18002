//! What a CLI's own continue (the TUI continuing a limited session by
//! itself at the reset) is doing after a limit: the verdict its room reads
//! from the session file ([`super::ProviderCli::own_continue`]) and the
//! delivery route decides from. Pure.
//!
//! Why here: the route must stand down while the CLI's own continue is
//! armed and take over when it says it will not continue, without knowing
//! which CLI it is. Claude Code has one (`provider/claude/own_continue.rs`
//! reads its transcript into these types); the others have none.

use chrono::{DateTime, Utc};

/// Why the CLI's own continue stopped without continuing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// "stopped after repeated usage-limit hits" (it arms at most 3 times per prompt).
    RepeatedHits,
    /// The reset is more than 24 h out.
    ResetTooFar,
    /// The login changed or ended.
    LoginChanged,
    /// The setting was turned off during the wait.
    TurnedOff,
    /// The continue "did not run".
    DidNotRun,
    /// Another "Automatic continue …" notice, kept verbatim.
    Other(String),
}

/// What the CLI's own continue is doing after a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AutoContinue {
    /// No arm record after the limit (setting off, API-key login, older
    /// Claude, headless `-p`): Claude will not continue by itself.
    NeverArmed,
    /// Armed; `at` is the time text it will continue at (`7:21pm`), if given.
    Armed {
        /// The printed time, as Claude wrote it.
        at: Option<String>,
    },
    /// Claude continued the session itself.
    Continued,
    /// The user cancelled the wait (Esc / first Ctrl-C) and, as far as the
    /// transcript tells, stayed: they chose to wait. (If the process ends
    /// within seconds, that cancel was the start of an exit: the caller
    /// checks liveness.)
    CancelledByUser,
    /// Claude exited while armed: it will not continue.
    ExitedDuringWait,
    /// Claude stopped the continue for a reason of its own.
    Stopped {
        /// Which reason.
        why: StopReason,
    },
    /// A human typed a new prompt after the limit: the session went on.
    ContinuedByUser,
}

impl AutoContinue {
    /// Whether Claude (or the user) has the session in hand, so the daemon
    /// must not deliver: armed, continued, or continued by the user.
    pub fn has_it(&self) -> bool {
        matches!(
            self,
            Self::Armed { .. } | Self::Continued | Self::ContinuedByUser
        )
    }
}

/// The verdict and the timestamp of the record that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What auto-continue is doing.
    pub state: AutoContinue,
    /// When the deciding record was written (`None` for `NeverArmed`, or an
    /// entry without a readable timestamp).
    pub at: Option<DateTime<Utc>>,
    /// The TUI's exit record (Claude's: `claude::own_continue::is_exit_record`)
    /// came after the deciding record.
    pub exit_recorded: bool,
}

/// Whether a user cancel was only the first Ctrl-C of an exit: the TUI's
/// exit (`exit_seen_at`: when the caller saw the exit record arrive or the
/// process gone) came within `window` of the cancel record. Captured
/// (Ctrl-C, then two more to exit): the cancel notice at 19:40:50.751, the
/// exit about 3 s later, and **no** "exited during the wait" warning, because
/// nothing was armed any more: the transcript alone cannot tell this from a
/// user who cancelled and stayed.
pub fn cancel_was_exit(v: &Verdict, exit_seen_at: DateTime<Utc>, window: chrono::Duration) -> bool {
    v.state == AutoContinue::CancelledByUser
        && v.at
            .is_some_and(|c| exit_seen_at >= c && exit_seen_at - c <= window)
}
