//! How a live process can be reached, answered from the primitives.
//!
//! Why: callers should not re-derive the order of evidence. Each provider
//! finds the process that holds its session in its own room (a registry, an
//! open file and its ancestry); from that process on the terminal is the
//! tmux pane found by ancestry on any of the user's tmux servers, else the
//! GNU screen window its environment names; a process in Zellij is reported
//! as unreachable with that hint (see [`super::tmux`] for why).

use std::path::PathBuf;

use super::gnu_screen::{self, Window};
use super::proc::{Pid, Procfs};
use super::tmux::{self, Multiplexer, Pane, Tmux, TmuxError};

/// Why an owner question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A provider's registry of live sessions could not be read.
    #[error(transparent)]
    Registry(Box<dyn std::error::Error + Send + Sync>),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_outside_any_multiplexer_is_unreachable() {
        let d = tempfile::tempdir().unwrap();
        let t = Tmux::new("/nonexistent/tmux");
        let me = std::process::id();
        let reach = reach_of(&Procfs::system(), &t, me, &[d.path().to_path_buf()]);
        if std::env::var_os("TMUX").is_none() && std::env::var_os("STY").is_none() {
            assert!(matches!(reach.unwrap(), Reach::Unreachable { .. }));
        }
    }
}
