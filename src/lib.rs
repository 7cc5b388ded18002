//! zag-resumed: a daemon that resumes AI coding-agent sessions after usage limits.
//!
//! Data flows through one module per stage; everything that differs between
//! provider CLIs lives in one module per provider ([`provider`]), and the
//! limit detectors in [`detect`].
//!
//! ```text
//!  watch ─paths─▶ tail ─lines─▶ ingest ─┬─▶ detect (pure) ─Detection─┐
//!   (one thread: watcher, tailers,      └─▶ session facts ───────────┤ (provider::observe)
//!    offsets)                                                        ▼ LimitSighting, acked once durable
//!  control socket ─requests─▶ daemon core ◀─outcomes─ resume (fifo | respawn)
//!                              │ decides with daemon::plan (pure, injected now)
//!                              │ disk work on workers: resolve, store append + fsync, zag-log lines
//!                              ├─arm/disarm─▶ timer ─due─▶ core ─deliver─▶ resume
//!                              └─events─▶ subscribe, desktop notifications
//!  store: replayed on start (every pending record re-armed), followed on change
//!         (cancels by `zag usage cancel`, zag's own schedules)
//! ```
//!
//! - [`paths`], [`config`]: where things live and what the user configured.
//! - [`watch`]: notify directory watches over every source, new dirs included.
//! - [`tail`]: append-only reading by device+inode+offset, persisted offsets.
//! - [`ingest`]: the one thread that owns watch, tail and the per-file facts.
//! - [`detect`]: pure per-provider limit detectors; [`scan_files`]: the
//!   `scan` command over many files.
//! - [`provider`]: one module per provider CLI: its files, facts, resume
//!   command, "moved on" rule and output events, behind one trait.
//! - [`session`]: what is known of a session, merged by one rule.
//! - [`store`]: zag's `scheduled_resumes.jsonl`: replay, dedupe, durable
//!   append, compaction, adoption of zag's stranded records.
//! - [`schedule`]: resume-time arithmetic; [`timer`]: the one central timer.
//! - [`daemon`]: the wiring and the core, which carries out the decisions of
//!   [`daemon::plan`] with its disk work off its loop.
//! - [`resume`]: delivery (FIFO, respawn), revalidation, zag-log events.
//! - [`live`]: who holds a session now (processes, Claude's registry, tmux
//!   and screen panes) and what the provider's own continue is doing.
//! - [`control`]: the socket protocol, server, client commands and rendering.
//! - [`desktop`], [`systemd`]: desktop notifications; the service manager's
//!   notify protocol. [`zag_process`]: is a zag process alive.
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
pub mod preview;
pub mod provider;
pub mod resume;
pub mod scan_files;
pub mod schedule;
pub mod service;
pub mod session;
pub mod store;
pub mod systemd;
pub mod tail;
pub mod timer;
pub mod watch;
pub mod zag_process;
