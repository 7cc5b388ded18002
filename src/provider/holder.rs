//! Who holds a session now, as the provider found it: the provider trait's
//! answer ([`ProviderCli::live_holder`](super::ProviderCli::live_holder))
//! that routing decides from.

use crate::live::owner::Reach;
use crate::live::proc::Pid;

/// Who holds the session now, as the provider found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// No live process holds it.
    Nobody,
    /// A live interactive process holds it (a TUI), reachable or not.
    Live {
        /// The process.
        pid: Pid,
        /// How to type to it.
        reach: Reach,
        /// For humans: what it is (`claude 2.1.332 TUI`).
        what: String,
    },
    /// A process holds the session's writer but has no terminal to type
    /// into (Codex's app-server after the TUI quit, a headless exec).
    Writer {
        /// The process.
        pid: Pid,
        /// For humans.
        what: String,
    },
    /// Something names the session but whether it lives cannot be told.
    Unknown {
        /// For humans.
        what: String,
    },
}

impl Holder {
    /// Whether a process may still hold the session (never respawn then).
    pub fn may_live(&self) -> bool {
        !matches!(self, Holder::Nobody)
    }
}
