//! zag-resumed: a daemon that resumes AI coding-agent sessions after usage limits.
//!
//! Data flows through one module per stage:
//!
//! ```text
//!  watch ──paths──▶ tail ──lines──▶ detect ──Detection──▶ daemon ──schedule──▶ store (fsync)
//!                    │                                     │                     │
//!                    └──identity──▶ session                └──arm──▶ timer ◀─────┘ (re-arm on start)
//!                                                                      │ due
//!                                                                      ▼
//!                                                        resume (fifo | respawn) ──▶ store `complete`
//!                                                                                 ──▶ zag session log
//! ```
//!
//! - [`paths`], [`config`]: where things live and what the user configured.
//! - [`watch`]: notify directory watches over every source, new dirs included.
//! - [`tail`]: append-only reading by device+inode+offset, persisted offsets.
//! - [`detect`]: pure per-provider limit detectors.
//! - [`provider`]: one module per provider CLI: its files, facts, resume command and rules.
//! - [`session`]: identity facts (cwd, provider session id, prompt) per file.
//! - [`store`]: zag's `scheduled_resumes.jsonl`, replay and durable append.
//! - [`schedule`]: resume-time arithmetic; [`timer`]: the one central timer.
//! - [`resume`]: FIFO and respawn delivery, zag-log lifecycle events.
//! - [`control`]: the local control surface; [`daemon`]: the wiring and the
//!   core, which carries out the decisions of [`daemon::plan`] with its disk
//!   work off its loop.
//!
//! The pure parts (detect, schedule, store replay, the line splitter, the
//! core's decisions) take data and `now` and do no I/O; the [`clock`] is
//! injected everywhere else.

pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod desktop;
pub mod detect;
pub mod ingest;
pub mod live;
pub mod lock;
pub mod paths;
pub mod provider;
pub mod resume;
pub mod schedule;
pub mod session;
pub mod store;
pub mod systemd;
pub mod tail;
pub mod timer;
pub mod watch;
pub mod zag_process;
