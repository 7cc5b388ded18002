//! zag-resumed: a daemon that resumes AI coding-agent sessions after usage limits.
//!
//! Data flows through one module per stage; everything that differs between
//! provider CLIs lives in one directory per provider under [`provider`]
//! (its limit detector included, compiled into [`detect`]).
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
//! # Layers
//!
//! Top-level modules import only modules below them; `tests/layers.rs`
//! holds the order and fails on an upward import. From the floor up:
//!
//! - [`shared`]: the floor: [`shared::Provider`], [`shared::SourceKind`],
//!   [`shared::Scope`], [`shared::SessionIdentity`],
//!   [`shared::IncidentEvent`] and per-provider tables; imports nothing of
//!   the crate.
//! - Primitives: [`clock`], [`fault`] (injected panics and a slow store, debug builds),
//!   [`private`] (files `0600` and folders `0700`, created so), [`child`]
//!   (finding and waiting on helper programs),
//!   [`lock`], [`live`] (the one `/proc` reader, tmux and screen panes: how
//!   a live process is reached), [`zag_process`] (is a zag process alive),
//!   [`systemd`] (the service manager's notify protocol), [`tail`]
//!   (append-only reading by device+inode+offset), [`paths`] (where things
//!   live), [`push_url`] (the ntfy URL).
//! - [`detect`]: the pure detector core (line sniffing, fast paths, reset
//!   times, zag's envelope) with each provider's detector compiled in from
//!   its room; it is given its user patterns, never the config.
//! - [`config`]: what the user configured, as plain data; per-provider
//!   tables keyed by [`shared::Provider`].
//! - [`schedule`] (resume-time arithmetic), [`store`] (zag's
//!   `scheduled_resumes.jsonl`: replay, dedupe, durable append, compaction,
//!   adoption), [`timer`] (the one central timer).
//! - [`provider`]: one room per provider CLI (`provider/<name>/`): its
//!   detector, files, facts, resume command and modes, "moved on" rule,
//!   output events, registry and own-continue reading, behind one trait
//!   whose vocabulary ([`provider::ResolvedTarget`],
//!   [`provider::ArgvSpec`], [`provider::Holder`], [`provider::Event`],
//!   [`provider::screen`], [`provider::own_continue`],
//!   [`provider::OpenTurn`]) lives beside it. Code above it asks the trait
//!   and never names a provider (`tests/layers.rs` counts).
//! - [`session`] (the per-file fact tracker), [`watch`] (notify watches
//!   over every source), [`scan_files`] (the `scan` command).
//! - [`resume`] (delivery: FIFO, respawn, typing into a pane; revalidation,
//!   zag-log events), [`control`] (socket protocol, server, client
//!   commands, rendering), [`ingest`] (the one thread that owns watch,
//!   tail and the per-file facts), [`desktop`] (notifications and pushes).
//! - [`daemon`] (the wiring and the core, which carries out the decisions
//!   of [`daemon::plan`] with its disk work off its loop), [`preview`]
//!   (`scan --plan`), [`service`], [`cli`].
//! - [`service`]: `service install | uninstall | status`, the user unit (or
//!   launchd agent) with this binary and the shell's PATH filled in.
//! - The user's say: [`control::pause`] (the pause file),
//!   [`control::steer`] (`message`, `resume-now`, `retry`), and the core's
//!   hooks for them and for `run --dry-run` (`daemon::user`).
//!
//! The pure parts (detect, schedule, store replay, the line splitter, the
//! core's decisions) take data and `now` and do no I/O; the [`clock`] is
//! injected everywhere else.
//!
//! # From a limit line to a continued session
//!
//! One incident ([`daemon::incident::Incident`]) carries a limit from the
//! line that shows it to its final record; its record is the store's
//! `schedule` line, its view [`control::PendingView`], its events
//! [`control::IncidentEvent`]. The hops, in order:
//!
//! 1. **Read.** The ingest thread tails the file (`ingest::State::read_file`,
//!    [`tail::TailedFile`]) and [`detect::Detector::detect`] finds the limit
//!    in a line: an [`ingest::LimitSighting`] goes to the core as
//!    [`ingest::IngestEvent::Hit`]; the thread waits for its ack before its
//!    offset may move.
//! 2. **Seen.** The core (`daemon::Core::on_ingest`, `Core::see`) merges the
//!    session ([`daemon::plan::session_of`]), finds its project
//!    ([`daemon::plan::project_of`]) and plans it
//!    ([`daemon::plan::plan_hit`]): an incident in state `Seen`, the ack in
//!    it.
//! 3. **Resolved.** Off the loop, [`resume::resolve_target`] finds the
//!    session's ids and channel; `Core::on_resolved` completes the record
//!    ([`daemon::plan::settle`]) and decides new or known
//!    ([`daemon::plan::plan_live`], [`daemon::plan::known`]): known, the ack
//!    joins that incident.
//! 4. **Writing.** New: state `Writing`; off the loop its `schedule` is
//!    appended and fsync'd ([`store::StoreFile::append`]), the hit lines go
//!    to its zag log.
//! 5. **Armed.** `Core::on_schedule_written`: the store re-read
//!    (`Core::load_store`; a cancel right after wins), the timer armed
//!    ([`timer::TimerHandle::arm`]), and only now the ack: the ingest thread
//!    saves its offset.
//! 6. **Due.** The timer fires; a `pause` holds it here (re-armed at the
//!    pause's end or at `unpause`, with its stagger), a dry run reports what
//!    the delivery would do and ends it unrecorded; else `Core::on_fired`
//!    re-reads the store (a tombstone wins) and [`daemon::plan::plan_fire`]
//!    decides to deliver. Off the loop (`Core::claim`) the store's claim
//!    and a delivery attempt ([`resume::attempt::Attempts::claim`]) are
//!    made durable; an attempt a crash left behind is settled first
//!    (started or sent: recorded as delivered, never sent again).
//! 7. **Delivering.** `Core::on_claimed`: state `Delivering`;
//!    [`resume::deliver_claimed`] resolves again, revalidates
//!    ([`resume::revalidate`]) and asks who holds the session
//!    ([`resume::live::step`]).
//! 8. **Deferred** (when a live owner or the provider's own continue has it):
//!    `Core::on_deferred` re-arms the timer for the re-check, and the
//!    holder's exit brings it forward ([`daemon::holder_watch`]); back to 6.
//! 9. **Continued.** Otherwise it types into the session's pane
//!    ([`resume::live::carry_type`]), writes the relay's FIFO
//!    ([`resume::fifo::send`]) or respawns the CLI with its resume syntax
//!    ([`resume::respawn::run`]); an [`resume::Outcome`] comes back.
//! 10. **Done.** `Core::on_outcome` plans the `complete`
//!     ([`daemon::plan::plan_outcome`]), written off the loop: the commit
//!     point. `Core::on_completed` drops the incident, publishes its event
//!     and, for a re-hit, plans the chain's next attempt
//!     ([`daemon::plan::plan_reschedule`], back to 2).

pub mod child;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod desktop;
pub mod detect;
pub mod fault;
pub mod ingest;
pub mod live;
pub mod lock;
pub mod paths;
pub mod preview;
pub mod private;
pub mod provider;
pub mod push_url;
pub mod resume;
pub mod scan_files;
pub mod schedule;
pub mod service;
pub mod session;
pub mod shared;
pub mod store;
pub mod systemd;
pub mod tail;
pub mod timer;
pub mod watch;
pub mod zag_process;
