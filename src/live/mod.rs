//! Live sessions: who owns a session right now, how to reach it, and what
//! the provider's own resume is doing.
//!
//! Why: most sessions run in an interactive TUI that stays open through a
//! usage limit. Resuming such a session headless beside the open TUI forks
//! its transcript (Claude Code) or fails on the thread's single writer
//! (Codex). These are the primitives the daemon needs to avoid that; they
//! decide nothing about scheduling themselves.
//!
//! - [`proc`]: process facts from `/proc` (start time, ancestry, cmdline,
//!   cwd, open files) and the pid-reuse guard.
//! - Claude Code's registry (`~/.claude/sessions/<pid>.json`) and its own
//!   auto-continue live in [`crate::provider::claude`]; Codex's
//!   writer-conflict failure and thread holders in [`crate::provider::codex`].
//! - [`tmux`]: every tmux server of the user, the pane a process runs in,
//!   capturing a pane, typing into it.
//! - [`owner`]: how a live process is reached: its [`owner::Reach`]
//!   (tmux pane, GNU screen window), once a provider found the process.
//! - [`gnu_screen`]: the same for GNU screen (window from the process's
//!   environment, escaped `stuff`). Zellij: see [`tmux`] for why not.
//! - [`front`]: is the CLI in front of its terminal, at its own input
//!   (the terminal's foreground process group, the holder's state, the
//!   screen's last region), asked before every keystroke batch.
//! - What a captured pane shows is read in the providers' layer
//!   ([`crate::provider::screen`]; Gemini's and Copilot's
//!   in `crate::provider::gemini::tui` and `crate::provider::copilot::tui`).
//!
//! I/O stays at the edges (`proc`, `tmux`, `gnu_screen`, `owner`,
//! the providers' `/proc` and registry reads); the
//! decisions are pure and table-tested with lines and screens captured from
//! the real TUIs (`tests/fixtures/live/`).

pub mod front;
pub mod gnu_screen;
pub mod owner;
pub mod proc;
pub mod tmux;
