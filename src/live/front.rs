//! Is the session's CLI in front of its terminal, at its own input? Asked
//! right before each keystroke batch and again before Enter.
//!
//! Why: a living holder process and a CLI-looking screen do not mean the
//! CLI gets the keystrokes. After a Ctrl-Z the CLI is stopped (state `T`),
//! its last frame (limit menu included) stays on screen above the shell's
//! `[1]+ Stopped` and prompt, and whatever is typed goes to the shell. The
//! terminal's foreground process group (`tpgid`, field 8 of
//! `/proc/<pid>/stat` of any process on that terminal) says who reads the
//! keys; the holder must be in it, running, on the pane's terminal, and the
//! screen's last region must be the CLI's input.
//!
//! [`judge`] is pure (table-tested on hand-made stats); [`check`] gathers
//! the facts from `/proc` and a fresh `tmux capture-pane`. What a CLI's
//! input looks like on screen is the providers' knowledge
//! (`provider::screen::cli_input_is_last`): the caller hands it in.

use super::proc::{Pid, Procfs, Stat};
use super::tmux::{Pane, Tmux};

/// What [`judge`] decides from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontFacts {
    /// The holder's `/proc/<pid>/stat` (`None`: gone).
    pub holder: Option<Stat>,
    /// The stat of the pane's own process (its shell), whose terminal is
    /// the pane's (`None`: gone).
    pub pane_process: Option<Stat>,
    /// The pane's process is the holder or one of its ancestors.
    pub pane_is_holders: bool,
    /// A fresh capture of the pane.
    pub screen: String,
    /// The capture ends with the CLI's own input or menu.
    pub input_is_last: bool,
}

/// Why the CLI is not where keystrokes would reach it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotInFront {
    /// The holder process is gone (or a zombie).
    #[error("the CLI's process (pid {0}) is gone")]
    Gone(Pid),
    /// The holder is stopped (Ctrl-Z, or a debugger).
    #[error("the CLI (pid {0}) is stopped (suspended with Ctrl-Z?): its terminal belongs to whatever runs in front now")]
    Stopped(Pid),
    /// The pane is not the holder's.
    #[error("the pane is not the CLI's terminal")]
    NotItsPane,
    /// Another process group reads the terminal (a shell, a pager, an editor).
    #[error("another program is in front of the CLI in its terminal (foreground process group {front}, the CLI's is {own})")]
    Behind {
        /// The terminal's foreground process group.
        front: i64,
        /// The holder's process group.
        own: i64,
    },
    /// The screen's last region is not the CLI's input.
    #[error("the screen does not end with the CLI's input (an old frame above a shell prompt?)")]
    OldFrame,
}

/// Whether keystrokes sent to the pane now reach the holder's own input. Pure.
pub fn judge(f: &FrontFacts) -> Result<(), NotInFront> {
    let Some(h) = &f.holder else {
        return Err(NotInFront::Gone(0));
    };
    match h.state {
        'Z' | 'X' | 'x' => return Err(NotInFront::Gone(h.pid)),
        'T' | 't' => return Err(NotInFront::Stopped(h.pid)),
        _ => {}
    }
    let Some(p) = &f.pane_process else {
        return Err(NotInFront::NotItsPane);
    };
    if !f.pane_is_holders || h.tty_nr == 0 || p.tty_nr != h.tty_nr {
        return Err(NotInFront::NotItsPane);
    }
    // `tpgid` of the pane's terminal, read from the pane's process: the
    // group the terminal's keystrokes go to.
    if p.tty_foreground_pgrp != Some(h.pgrp) {
        return Err(NotInFront::Behind {
            front: p.tty_foreground_pgrp.map_or(-1, i64::from),
            own: i64::from(h.pgrp),
        });
    }
    if !f.input_is_last {
        return Err(NotInFront::OldFrame);
    }
    Ok(())
}

/// Gathers [`FrontFacts`] for `holder` in `pane` and judges them;
/// `input_is_last` reads the capture. `Ok` carries the fresh capture (what
/// the input holds now).
pub fn check(
    procfs: &Procfs,
    tmux: &Tmux,
    pane: &Pane,
    holder: Pid,
    input_is_last: fn(&str) -> bool,
) -> Result<String, NotInFront> {
    let holder_stat = procfs.stat(holder);
    let pane_process = procfs.stat(pane.pane_pid);
    let pane_is_holders =
        pane.pane_pid == holder || procfs.ancestors(holder).contains(&pane.pane_pid);
    // The stats first, then the screen: a screen captured before a Ctrl-Z
    // that the stats then miss cannot happen in this order.
    let screen = tmux.capture(pane).unwrap_or_default();
    let facts = FrontFacts {
        holder: holder_stat,
        pane_process,
        pane_is_holders,
        input_is_last: input_is_last(&screen),
        screen,
    };
    judge(&facts).map(|()| facts.screen).map_err(|e| match e {
        NotInFront::Gone(0) => NotInFront::Gone(holder),
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: Pid, state: char, pgrp: Pid, tty: i64, tpgid: i64) -> Stat {
        Stat {
            pid,
            comm: "x".into(),
            state,
            ppid: 1,
            pgrp,
            tty_nr: tty,
            tty_foreground_pgrp: Pid::try_from(tpgid).ok().filter(|&g| g > 0),
            start_ticks: 1,
        }
    }

    fn facts(holder: Stat, shell: Stat) -> FrontFacts {
        FrontFacts {
            holder: Some(holder),
            pane_process: Some(shell),
            pane_is_holders: true,
            screen: String::new(),
            input_is_last: true,
        }
    }

    #[test]
    fn a_running_cli_in_the_foreground_at_its_input_is_in_front() {
        // the shell (group 10) started the CLI as job 20, now in front
        let f = facts(stat(21, 'S', 20, 34816, 20), stat(10, 'S', 10, 34816, 20));
        assert_eq!(judge(&f), Ok(()));
    }

    #[test]
    fn suspended_behind_a_shell_or_elsewhere_is_refused() {
        // Ctrl-Z: the CLI is stopped and the shell is in front again
        let f = facts(stat(21, 'T', 20, 34816, 10), stat(10, 'S', 10, 34816, 10));
        assert_eq!(judge(&f), Err(NotInFront::Stopped(21)));
        // running in the background (`&`, `bg`): the shell reads the keys
        let f = facts(stat(21, 'S', 20, 34816, 10), stat(10, 'S', 10, 34816, 10));
        assert_eq!(judge(&f), Err(NotInFront::Behind { front: 10, own: 20 }));
        // `less` started from inside the CLI's own job still has its own group
        let f = facts(stat(21, 'S', 20, 34816, 30), stat(10, 'S', 10, 34816, 30));
        assert!(matches!(judge(&f), Err(NotInFront::Behind { .. })));
        // a zombie, a vanished holder
        let f = facts(stat(21, 'Z', 20, 34816, 20), stat(10, 'S', 10, 34816, 20));
        assert_eq!(judge(&f), Err(NotInFront::Gone(21)));
        let mut f = facts(stat(21, 'S', 20, 34816, 20), stat(10, 'S', 10, 34816, 20));
        f.holder = None;
        assert!(matches!(judge(&f), Err(NotInFront::Gone(_))));
    }

    #[test]
    fn another_terminal_or_pane_is_refused() {
        let f = facts(stat(21, 'S', 20, 34817, 20), stat(10, 'S', 10, 34816, 20));
        assert_eq!(judge(&f), Err(NotInFront::NotItsPane));
        let mut f = facts(stat(21, 'S', 20, 34816, 20), stat(10, 'S', 10, 34816, 20));
        f.pane_is_holders = false;
        assert_eq!(judge(&f), Err(NotInFront::NotItsPane));
        let f = facts(stat(21, 'S', 20, 0, -1), stat(10, 'S', 10, 0, -1));
        assert_eq!(judge(&f), Err(NotInFront::NotItsPane));
    }

    #[test]
    fn a_cli_in_front_but_an_old_frame_on_screen_is_refused() {
        let mut f = facts(stat(21, 'S', 20, 34816, 20), stat(10, 'S', 10, 34816, 20));
        f.input_is_last = false;
        assert_eq!(judge(&f), Err(NotInFront::OldFrame));
    }
}
