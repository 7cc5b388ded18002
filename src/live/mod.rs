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
//! - [`owner`]: the questions the integration step asks: who holds a
//!   Claude session or a Codex thread now, and its [`owner::Reach`] (pane).
//! - [`gnu_screen`]: the same for GNU screen (window from the process's
//!   environment, escaped `stuff`). Zellij: see [`tmux`] for why not.
//! - [`screen`]: what a captured pane shows (limit menu, auto-continue
//!   footer, idle prompt, Codex composer, Codex limit line). Gemini's and
//!   Copilot's screens, holders and Gemini's on-screen-only limit are read
//!   beside their providers (`crate::provider::gemini::tui`,
//!   `crate::provider::copilot::tui`).
//!
//! I/O stays at the edges (`proc`, `tmux`, `gnu_screen`, `owner`,
//! the providers' `/proc` and registry reads); the
//! decisions are pure and table-tested with lines and screens captured from
//! the real TUIs (`tests/fixtures/live/`).

pub mod gnu_screen;
pub mod owner;
pub mod proc;
pub mod screen;
pub mod tmux;
