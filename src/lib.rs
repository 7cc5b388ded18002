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
//! - [`detect`]: pure per-provider limit detectors; [`scan_files`]: the
//!   `scan` command over many files.
//! - [`session`]: identity facts (cwd, provider session id, prompt) per file.
//! - [`store`]: zag's `scheduled_resumes.jsonl`, replay and durable append.
//! - [`schedule`]: resume-time arithmetic; [`timer`]: the one central timer.
//! - [`resume`]: FIFO and respawn delivery, zag-log lifecycle events.
//! - [`control`]: the local control surface; [`daemon`]: the wiring.
//!
//! The pure parts (detect, schedule, store replay, the line splitter) take
//! data and `now` and do no I/O; the [`clock`] is injected everywhere else.

pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod detect;
pub mod ingest;
pub mod lock;
pub mod notify;
pub mod paths;
pub mod resume;
pub mod scan_files;
pub mod schedule;
pub mod session;
pub mod store;
pub mod tail;
pub mod timer;
pub mod watch;
