//! The live-session step of a delivery: gather who owns the session now
//! (the provider's [`ProviderCli::live_holder`]), what its own continue and
//! its screen say, ask [`route::decide`], and carry out what does not need a
//! respawn (stand down, wait, type into the pane, end as continued or
//! cancelled).
//!
//! Why: a due incident whose session is still open must never get a
//! headless resume beside it; this is the one place delivery asks.
//!
//! [`ProviderCli::live_holder`]: crate::provider::ProviderCli::live_holder

use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::Duration;

use crate::live::front;
use crate::live::owner::Reach;
use crate::live::proc::{Pid, Procfs};
use crate::live::tmux::{self, Tmux};
use crate::provider::screen::{self, Shows};
use crate::provider::{self, LiveContext, ProviderCli};
use crate::store::{Record, Schedule, StoreFile};

use super::resolve::ResolvedTarget;
use super::route::{self, Continuer, Expect, Facts, Holder, LiveState, Route, Typed};
use super::terminal;
use super::Outcome;

/// Where the live step looks, and its deadlines.
#[derive(Clone, Debug)]
pub struct LiveEnv {
    /// Ask about live owners at all (off: every session is resumed as
    /// before issue 11).
    pub enabled: bool,
    /// The tmux binary.
    pub tmux_bin: PathBuf,
    /// Directories of tmux server sockets (`None`: the user's, from
    /// `TMUX_TMPDIR` or `/tmp/tmux-<uid>`).
    pub socket_dirs: Option<Vec<PathBuf>>,
    /// How long the session file gets to show a typed turn.
    pub confirm_timeout: Duration,
}

impl Default for LiveEnv {
    fn default() -> Self {
        LiveEnv {
            enabled: true,
            tmux_bin: PathBuf::from("tmux"),
            socket_dirs: None,
            // A TUI writes the user turn as it sends it; a minute covers a
            // slow start of the request.
            confirm_timeout: Duration::from_secs(60),
        }
    }
}

/// Who will continue an incident and why: the view `status`, `list` and
/// `subscribe` show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteView {
    /// Who.
    pub by: Continuer,
    /// Why.
    pub why: String,
    /// Tell the user on the desktop (once per incident).
    pub notify: bool,
}

/// What the live step leaves to the caller.
#[derive(Debug)]
pub enum Step {
    /// No live owner: go on with the headless respawn (after the moved-on
    /// check, as before).
    Respawn {
        /// Why, for the outcome text.
        why: String,
    },
    /// Type into the pane, after the moved-on check.
    Type(Box<Route>),
    /// The incident ended or was deferred here.
    Done(Outcome),
}

fn context(env: &LiveEnv, home: PathBuf) -> LiveContext {
    LiveContext {
        procfs: Procfs::system(),
        tmux: Tmux::new(&env.tmux_bin),
        socket_dirs: env
            .socket_dirs
            .clone()
            .unwrap_or_else(|| vec![tmux::user_socket_dir()]),
        home,
    }
}

/// Gather the facts (blocking: `/proc`, tmux, the session file) and decide;
/// also the process found holding the session (a live TUI or a writer),
/// whose exit a deferral may wait on.
pub fn route_now(
    t: &ResolvedTarget,
    env: &LiveEnv,
    home: PathBuf,
    reset_at: Option<DateTime<Utc>>,
    due: DateTime<Utc>,
    state: &LiveState,
    now: DateTime<Utc>,
) -> (Route, Option<Pid>) {
    let cli = provider::of(t.provider);
    let cx = context(env, home);
    let holder = cli.live_holder(t, &cx).unwrap_or_else(|e| Holder::Unknown {
        what: format!(
            "the {} session's owner could not be checked ({e})",
            t.provider
        ),
    });
    let bytes = t.native_file.as_ref().and_then(|p| std::fs::read(p).ok());
    let own = bytes.as_deref().and_then(|b| cli.own_continue(b));
    let file_written_at = t
        .native_file
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
        .map(DateTime::<Utc>::from);
    let shows = match &holder {
        Holder::Live {
            reach: Reach::Pane(p),
            ..
        } => cx.tmux.capture(p).ok().map(|s| cli.read_screen(&s)),
        _ => None,
    };
    // What the respawn would send is what is typed: for a CLI that drops
    // the limited prompt (Gemini), that prompt again.
    let message = super::resume_spec(t).message;
    let facts = Facts {
        provider: t.provider,
        holder,
        own,
        file_written_at,
        shows,
        reset_at,
        due,
        message: if message.trim().is_empty() {
            t.message.clone()
        } else {
            message
        },
        state: state.clone(),
    };
    let holder_pid = match facts.holder {
        Holder::Live { pid, .. } | Holder::Writer { pid, .. } => Some(pid),
        Holder::Nobody | Holder::Unknown { .. } => None,
    };
    let route = route::decide(&facts, now);
    // A CLI that continues by itself (Copilot's continueOnAutoMode): say so
    // in what is shown; its answered turn ends the incident as moved on.
    let route = match (cli.continues_by_itself(&cx.home), route) {
        (
            Some(own),
            Route::Type {
                reach,
                holder,
                text,
                expect,
                why,
            },
        ) => Route::Type {
            reach,
            holder,
            text,
            expect,
            why: format!("{why}; {own}, so the moved-on check runs first"),
        },
        (_, route) => route,
    };
    // `-v`: every decision of the router, with its reason.
    tracing::debug!(
        provider = %t.provider,
        session = %t.provider_session_id.as_deref().unwrap_or("unknown"),
        continued_by = %route.continuer().describe(),
        "router: {}",
        route.why()
    );
    // Whether the CLI is in front of its terminal says more than its
    // screen: a suspended TUI shows an old frame, or the shell's screen.
    if let (
        Route::Type { .. } | Route::WaitForOwner { .. },
        Holder::Live {
            pid,
            reach: Reach::Pane(p),
            ..
        },
    ) = (&route, &facts.holder)
    {
        match front::check(&cx.procfs, &cx.tmux, p, *pid, screen::cli_input_is_last) {
            Err(front::NotInFront::OldFrame) | Ok(_) => {}
            Err(e) => {
                let wait = Route::WaitForOwner {
                    recheck_at: now + chrono::Duration::seconds(route::FRONT_RECHECK_SECS),
                    notify: !state.notified,
                    why: format!(
                        "not typing into {}: {e}; waiting for the CLI to be back in front (`fg`)",
                        route::reach_name(&Reach::Pane(p.clone()))
                    ),
                };
                return (wait, holder_pid);
            }
        }
    }
    (route, holder_pid)
}

/// The deferral of a route that waits: re-arm at its time, keep the state,
/// and name the process holding the session (when one was found), whose
/// exit the core watches for.
pub fn deferred(route: &Route, mut state: LiveState, holder: Option<Pid>) -> Option<Outcome> {
    let (until, notify) = match route {
        Route::StandDown { recheck_at, .. } | Route::Busy { recheck_at, .. } => {
            (*recheck_at, false)
        }
        Route::WaitForOwner {
            recheck_at, notify, ..
        } => (*recheck_at, *notify),
        Route::RetryWriter { recheck_at, .. } => {
            state.writer_retries += 1;
            (*recheck_at, false)
        }
        _ => return None,
    };
    state.notified |= notify;
    Some(Outcome::Deferred {
        until,
        view: RouteView {
            by: route.continuer(),
            why: route.why().to_string(),
            notify,
        },
        state,
        holder,
    })
}

/// The end of an incident a route settles without sending anything.
pub fn settled(route: &Route) -> Option<Outcome> {
    match route {
        Route::Continued { by, why } => Some(Outcome::Resumed {
            detail: format!(
                "continued by {}: {why}; nothing sent by the daemon",
                by.describe()
            ),
        }),
        Route::CancelledByUser { why } => Some(Outcome::Skipped {
            reason: format!("cancelled by the user: {why}"),
        }),
        _ => None,
    }
}

/// A typing of an earlier fire that shows up only now.
pub fn late_confirmation(t: &ResolvedTarget, state: &LiveState) -> Option<Outcome> {
    let typed = state.typed.as_ref()?;
    let file = t.native_file.as_ref()?;
    let cli = provider::of(t.provider);
    terminal::took(cli, file, typed.len_before, &typed.text, &typed.expect).then(|| {
        Outcome::Resumed {
            detail: format!(
                "typed into pane {} and confirmed later: the session's file grew with that turn",
                typed.place
            ),
        }
    })
}

/// Append the incident's `schedule` again with its live state (the typing
/// intent, the one notification and why it waits), fsync'd, before acting
/// on it. Nothing to do when the state names no store.
pub fn record_live(
    state: &LiveState,
    incident: &Schedule,
    now: DateTime<Utc>,
    waiting: Option<&str>,
) -> std::io::Result<()> {
    let Some(store) = &state.store else {
        return Ok(());
    };
    let mut s = incident.clone();
    s.live = Some(Box::new(state.to_record(now, waiting)));
    StoreFile::new(store).append(&Record::Schedule(s))
}

/// Whether the input is empty and ready for what `expect` types: an empty
/// prompt or composer for a turn, the limit menu or dialog for its choice.
fn ready_for(cli: &dyn ProviderCli, shows: &Shows, expect: &Expect) -> bool {
    match (shows, expect) {
        (Shows::Idle, Expect::Turn) => true,
        (Shows::LimitDialog(_), e) => e.is_dialog_choice_of(cli),
        _ => false,
    }
}

/// Whether the input now holds exactly our text (for a turn), or the menu
/// is still the CLI's own (for the choice that arms its own continue, which
/// a digit may already have taken): the only state in which the Enter may go.
fn holds_ours(cli: &dyn ProviderCli, shows: &Shows, text: &str, expect: &Expect) -> bool {
    match (shows, expect) {
        (Shows::Draft(d), Expect::Turn) => d == text,
        (
            Shows::LimitDialog(_) | Shows::OwnContinueCountdown { .. } | Shows::Idle,
            e @ Expect::OwnContinueArmed,
        ) => e.is_dialog_choice_of(cli),
        _ => false,
    }
}

/// Type once into the route's pane and confirm (blocking). Right before
/// the text and again before its Enter, the CLI must be in front of its
/// terminal at its own input ([`front::check`]); the typing intent is
/// recorded in the store before the first keystroke. `Resumed` when the
/// turn shows; for Claude's menu choice, a stand-down (Claude's own
/// continue now has it); anything else: deferred, never typed again.
pub fn carry_type(
    t: &ResolvedTarget,
    env: &LiveEnv,
    route: &Route,
    mut state: LiveState,
    incident: &Schedule,
    now: DateTime<Utc>,
) -> Outcome {
    let Route::Type {
        reach,
        holder,
        text,
        expect,
        why,
    } = route
    else {
        return Outcome::Failed {
            reason: "internal: carry_type without a Type route".into(),
        };
    };
    let place = route::reach_name(reach);
    let wait = |state: LiveState, every: i64, why: String| {
        let r = Route::WaitForOwner {
            recheck_at: now + chrono::Duration::seconds(every),
            notify: !state.notified,
            why,
        };
        deferred(&r, state, Some(*holder)).unwrap_or(Outcome::Failed {
            reason: "internal: wait not deferred".into(),
        })
    };
    let Reach::Pane(pane) = reach else {
        return wait(
            state,
            route::RECHECK_SECS,
            format!("cannot tell who is in front of {place}: not typing, waiting for the owner"),
        );
    };
    let Some(file) = t.native_file.clone() else {
        return Outcome::Failed {
            reason: format!(
                "cannot confirm a typed turn into {place}: the session's file is unknown"
            ),
        };
    };
    let tmux = Tmux::new(&env.tmux_bin);
    let procfs = Procfs::system();
    let cli = provider::of(t.provider);
    let not_in_front = |state: LiveState, e: front::NotInFront| {
        wait(
            state,
            route::FRONT_RECHECK_SECS,
            format!("not typing into {place}: {e}; waiting for the CLI to be back in front (`fg`)"),
        )
    };
    // Our text already in the input, unsent: only its Enter is left.
    let enter_only = state
        .typed
        .as_ref()
        .is_some_and(|ty| !ty.entered && ty.text == *text);
    let screen = match front::check(&procfs, &tmux, pane, *holder, screen::cli_input_is_last) {
        Ok(s) => s,
        Err(e) => return not_in_front(state, e),
    };
    if !enter_only {
        if !ready_for(cli, &cli.read_screen(&screen), expect) {
            return wait(
                state,
                route::RECHECK_SECS,
                format!("{place}'s input is not empty (the user's draft?): not typing over it"),
            );
        }
        state.typed = Some(Typed {
            len_before: terminal::file_len(&file),
            text: text.clone(),
            place: place.clone(),
            entered: false,
            at: now,
            expect: expect.clone(),
        });
        // Durable before the first keystroke: a restart confirms it against
        // the session file, never types it again.
        if let Err(e) = record_live(&state, incident, now, None) {
            state.typed = None;
            return wait(
                state,
                route::RECHECK_SECS,
                format!("cannot record the typing into {place} in the store ({e}): not typing"),
            );
        }
        if let Err(e) = tmux.send_literal(pane, text) {
            return wait(
                state,
                route::RECHECK_SECS,
                format!(
                    "typing into {place} failed ({e}): not typing again, waiting for the owner"
                ),
            );
        }
        std::thread::sleep(terminal::TYPE_PAUSE);
    }
    // A retrying dialog (Gemini's) takes its choice by the number alone:
    // no Enter (one would land in the input box the dialog gives way to).
    if *expect != Expect::DialogAnswer {
        // Again before the Enter: in front, and the input holds our text alone.
        let screen = match front::check(&procfs, &tmux, pane, *holder, screen::cli_input_is_last) {
            Ok(s) => s,
            Err(e) => return not_in_front(state, e),
        };
        if !holds_ours(cli, &cli.read_screen(&screen), text, expect) {
            return wait(
                state,
                route::RECHECK_SECS,
                format!(
                    "{place}'s input does not hold exactly our {text:?} (the user typed too?): not pressing Enter, waiting"
                ),
            );
        }
        if let Err(e) = tmux.send_enter(pane) {
            return wait(
                state,
                route::RECHECK_SECS,
                format!("pressing Enter in {place} failed ({e}): waiting"),
            );
        }
    }
    let len_before = match state.typed.as_mut() {
        Some(ty) => {
            ty.entered = true;
            ty.len_before
        }
        None => terminal::file_len(&file),
    };
    let ok = terminal::confirm(
        cli,
        &file,
        len_before,
        text,
        expect,
        env.confirm_timeout,
        Duration::from_millis(250),
    );
    match (ok, expect) {
        (true, Expect::Turn | Expect::DialogAnswer) => Outcome::Resumed {
            detail: format!(
                "typed into pane {place} and confirmed: the session's file grew with that turn ({why})"
            ),
        },
        (true, Expect::OwnContinueArmed) => {
            // The CLI's own continue has it now; the typed-turn check must
            // not wait for a "2" turn.
            state.typed = None;
            let name = cli.display_name();
            let r = Route::StandDown {
                cli: t.provider,
                recheck_at: now + chrono::Duration::seconds(route::RECHECK_SECS),
                why: format!("chose \"wait here, then continue automatically\" in {name}'s limit menu in {place}: {name}'s own continue has it"),
            };
            deferred(&r, state, Some(*holder)).unwrap_or(Outcome::Failed {
                reason: "internal: stand-down not deferred".into(),
            })
        }
        (false, _) => wait(
            state,
            route::RECHECK_SECS,
            format!(
                "typed into {place} but the session's file did not show it within {} s: not typing again, waiting",
                env.confirm_timeout.as_secs()
            ),
        ),
    }
}

/// The live step of a delivery (async: the blocking parts run off the loop).
pub async fn step(
    t: &ResolvedTarget,
    env: &LiveEnv,
    home: PathBuf,
    reset_at: Option<DateTime<Utc>>,
    due: DateTime<Utc>,
    state: &LiveState,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> Step {
    let (t2, env2, state2) = (t.clone(), env.clone(), state.clone());
    let r = tokio::task::spawn_blocking(move || {
        if let Some(o) = late_confirmation(&t2, &state2) {
            return Err(Box::new(o));
        }
        Ok(route_now(
            &t2,
            &env2,
            home,
            reset_at,
            due,
            &state2,
            clock.now(),
        ))
    })
    .await;
    let (route, holder) = match r {
        Ok(Ok(seen)) => seen,
        Ok(Err(outcome)) => return Step::Done(*outcome),
        Err(e) => {
            return Step::Done(Outcome::Failed {
                reason: format!("the live-session check crashed: {e}"),
            })
        }
    };
    if let Some(o) = settled(&route).or_else(|| deferred(&route, state.clone(), holder)) {
        return Step::Done(o);
    }
    match route {
        Route::Respawn { why } => Step::Respawn { why },
        r @ Route::Type { .. } => Step::Type(Box::new(r)),
        _ => Step::Done(Outcome::Failed {
            reason: "internal: a route neither settled, deferred nor carried".into(),
        }),
    }
}
