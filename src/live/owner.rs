//! The questions the integration step asks, answered from the primitives:
//! who holds this session now, and how can it be reached.
//!
//! Why: callers should not re-derive the order of evidence. For Claude the
//! registry names the process (pid-reuse guarded by `procStart`); for Codex
//! the rollout's fd holder and its ancestry do. Either way the terminal is the
//! tmux pane found by ancestry on any of the user's tmux servers, else the
//! GNU screen window its environment names; a process in Zellij is reported
//! as unreachable with that hint (see [`super::tmux`] for why).

use std::path::{Path, PathBuf};

use super::gnu_screen::{self, Window};
use super::proc::{Pid, Procfs};
use super::tmux::{self, Multiplexer, Pane, Tmux, TmuxError};
use crate::provider::claude::registry::{self, OwnerVerdict, RegistryEntry, RegistryError};
use crate::provider::codex::live::{self as codex, Owner as CodexOwner};

/// Why an owner question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Claude's registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// tmux failed in a way that is not "no such server".
    #[error(transparent)]
    Tmux(#[from] TmuxError),
}

/// How a live process can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Through this tmux pane.
    Pane(Pane),
    /// Through this GNU screen window (named by the process's environment;
    /// type with [`super::gnu_screen::Screen`]).
    ScreenWindow(Window),
    /// Neither: no pane found (or no tmux installed) and no screen window.
    /// The multiplexer its environment names, if any, says where it runs.
    Unreachable {
        /// Zellij, or a tmux the servers did not confirm.
        multiplexer: Option<Multiplexer>,
    },
}

/// The reach of a live process: the tmux pane whose `pane_pid` is it or an
/// ancestor, on any server under `socket_dirs` or named by its `TMUX`; else
/// the GNU screen window its environment names.
/// A missing tmux binary is not an error here: no pane can exist then.
pub fn reach_of(
    procfs: &Procfs,
    tmux: &Tmux,
    pid: Pid,
    socket_dirs: &[PathBuf],
) -> Result<Reach, LiveError> {
    match tmux.find_pane(procfs, pid, socket_dirs) {
        Ok(Some(pane)) => Ok(Reach::Pane(pane)),
        Ok(None) | Err(TmuxError::NotInstalled(_)) => {
            Ok(match gnu_screen::window_of(procfs, pid) {
                Some(w) => Reach::ScreenWindow(w),
                None => Reach::Unreachable {
                    multiplexer: tmux::multiplexer_of(procfs, pid),
                },
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The live holder of a Claude session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaudeHolder {
    /// A live Claude process holds it.
    Live {
        /// Its registry entry (TUI or headless, version, cwd, …).
        entry: RegistryEntry,
        /// How to reach it.
        reach: Reach,
        /// The registry's `tmux` pane id disagrees with the pane found by
        /// ancestry (the ancestry pane is the one in `reach`).
        pane_mismatch: bool,
    },
    /// A registry entry names it but liveness cannot be told.
    Unknown(RegistryEntry),
    /// No live process holds it (no entry, or only stale ones).
    Nobody,
}

/// Who holds Claude session `session_id` now (`claude_dir` is `~/.claude`).
pub fn claude_holder(
    claude_dir: &Path,
    session_id: &str,
    procfs: &Procfs,
    tmux: &Tmux,
    socket_dirs: &[PathBuf],
) -> Result<ClaudeHolder, LiveError> {
    match registry::find_owner(claude_dir, session_id, procfs)? {
        OwnerVerdict::Live(entry) => {
            let reach = reach_of(procfs, tmux, entry.pid, socket_dirs)?;
            let pane_mismatch = match (&reach, &entry.tmux) {
                (Reach::Pane(p), Some(loc)) => p.pane_id != loc.pane_id,
                _ => false,
            };
            Ok(ClaudeHolder::Live {
                entry,
                reach,
                pane_mismatch,
            })
        }
        OwnerVerdict::Unknown(e) => Ok(ClaudeHolder::Unknown(e)),
        OwnerVerdict::Stale | OwnerVerdict::None => Ok(ClaudeHolder::Nobody),
    }
}

/// The live holder of a Codex thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodexHolder {
    /// What holds it.
    pub owner: CodexOwner,
    /// How to reach its TUI, when a TUI holds it.
    pub reach: Option<Reach>,
}

/// Who holds Codex thread `thread_id` (rollout `rollout`, run in `cwd`) now.
pub fn codex_holder(
    procfs: &Procfs,
    tmux: &Tmux,
    rollout: &Path,
    thread_id: &str,
    cwd: Option<&Path>,
    socket_dirs: &[PathBuf],
) -> Result<CodexHolder, LiveError> {
    let owner = codex::find_owner(procfs, rollout, thread_id, cwd);
    let reach = match &owner {
        CodexOwner::Tui { tui, .. } => Some(reach_of(procfs, tmux, tui.pid, socket_dirs)?),
        _ => None,
    };
    Ok(CodexHolder { owner, reach })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn nobody_holds_a_session_without_a_registry_entry() {
        let d = tempfile::tempdir().unwrap();
        let t = Tmux::new("/nonexistent/tmux");
        let got = claude_holder(d.path(), "s", &Procfs::system(), &t, &[]).unwrap();
        assert_eq!(got, ClaudeHolder::Nobody);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_live_claude_outside_tmux_is_unreachable_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        let s = registry::sessions_dir(d.path());
        fs::create_dir_all(&s).unwrap();
        let procfs = Procfs::system();
        let me = procfs.identity(std::process::id()).unwrap();
        let json = format!(
            r#"{{"pid":{},"sessionId":"s","procStart":"{}","entrypoint":"cli","tmux":"x:@0.%9"}}"#,
            me.pid, me.start_ticks
        );
        fs::write(s.join(format!("{}.json", me.pid)), json).unwrap();
        // no tmux binary, no sockets: reported as unreachable, with the env hint
        let t = Tmux::new("/nonexistent/tmux");
        match claude_holder(d.path(), "s", &procfs, &t, &[d.path().to_path_buf()]).unwrap() {
            ClaudeHolder::Live {
                entry,
                reach: Reach::Unreachable { .. },
                pane_mismatch,
            } => {
                assert_eq!(entry.pid, me.pid);
                assert!(!pane_mismatch);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_codex_thread_nobody_holds() {
        let d = tempfile::tempdir().unwrap();
        let rollout = d.path().join("rollout-none.jsonl");
        let t = Tmux::new("/nonexistent/tmux");
        let got = codex_holder(&Procfs::at(d.path()), &t, &rollout, "t", None, &[]).unwrap();
        assert_eq!(
            got,
            CodexHolder {
                owner: CodexOwner::None,
                reach: None
            }
        );
    }
}
