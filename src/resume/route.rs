//! Who continues a due incident whose session may still be open: a pure
//! decision from the session's live owner, what the provider's own continue
//! is doing, what its screen shows, the reset and `now`.
//!
//! Why: an interactive session left open through a usage limit must be
//! continued where it lives, exactly once. Resuming it headless beside the
//! open TUI forks Claude's transcript (Claude 2.1.332 continues by itself)
//! and fails on Codex's single writer. The I/O that gathers the facts is in
//! [`super::live`]; typing is in [`super::terminal`]; this module only
//! decides, so every case is a table test on an injected `now`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::live::owner::Reach;
use crate::live::proc::Pid;
use crate::provider::own_continue::{cancel_was_exit, AutoContinue, Verdict};
use crate::provider::screen::{DialogKind, Shows};
pub use crate::provider::Holder;
use crate::shared::Provider;

/// How often a stood-down or waiting incident is looked at again: Claude
/// checks its own continue every 30 s, and an owner that exits should be
/// followed by our respawn within about as long. (How long the CLI's own
/// continue gets after the reset is its provider's
/// [`crate::provider::ProviderCli::own_continue_grace`].)
pub const RECHECK_SECS: i64 = 30;

/// A user cancel followed by the process ending within this window was the
/// first Ctrl-C of an exit (captured: the exit came about 3 s after).
pub const CANCEL_EXIT_WINDOW_SECS: i64 = 10;

/// How often an incident whose CLI is not in front of its terminal (a
/// Ctrl-Z, a shell or pager in front) is looked at again: two `/proc`
/// reads and a capture, so the continuation follows an `fg` within seconds.
pub const FRONT_RECHECK_SECS: i64 = 5;

/// How long a typed turn may take to show in the session's file (as long
/// as the typing's own wait, [`crate::resume::live::LiveEnv`]'s default),
/// and how often it is looked for meanwhile when a restart came between
/// the Enter and the turn: the confirmation is seen within seconds of
/// being written, not at the next 30 s re-check.
pub const TYPED_CONFIRM_WINDOW_SECS: i64 = 60;
/// See [`TYPED_CONFIRM_WINDOW_SECS`].
pub const TYPED_CONFIRM_RECHECK_SECS: i64 = 2;

/// How long after its reset (its due time when the reset is unknown; for a
/// `retry`, after the user asked) a waiting or stood-down incident may
/// still be continued; past it the
/// incident gives up, told, instead of acting out of the blue. Six hours:
/// longer than a Claude 5-hour window (a wait through one whole window
/// still ends in a continuation), shorter than a night, so a session left
/// waiting overnight is never continued in the morning behind the user's
/// back (see README, "Open sessions").
pub const GIVE_UP_AFTER_SECS: i64 = 6 * 3600;

/// Whether a waiting incident whose reset (or due time) was `base` has
/// waited too long at `now`. Pure.
pub fn aged_out(base: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now > base + Duration::seconds(GIVE_UP_AFTER_SECS)
}

/// The first wait before retrying a writer conflict; doubled per retry up
/// to [`WRITER_RETRY_CAP_SECS`]. Captured: Codex's app-server released the
/// rollout 51..73 s after the TUI quit.
pub const WRITER_RETRY_FIRST_SECS: i64 = 15;
/// The longest wait between two writer-conflict retries.
pub const WRITER_RETRY_CAP_SECS: i64 = 300;

/// The reason of a respawn of a session nobody holds: the case of every
/// dead session, told apart so its outcome reads as before.
pub const NOBODY_HOLDS_IT: &str = "no live process holds the session";

/// What the daemon did to this incident so far, kept by the core across
/// deferrals (an incident is typed into once, notified about once), and
/// durably in the store (see [`LiveState::from_record`]) across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveState {
    /// We typed into its terminal; the session file's length before.
    pub typed: Option<Typed>,
    /// A desktop notification about waiting was sent.
    pub notified: bool,
    /// Writer-conflict retries so far.
    pub writer_retries: u32,
    /// The store the incident's records are in: the typing intent and the
    /// one notification are appended there before they happen (`None`:
    /// not recorded, as in library tests).
    pub store: Option<std::path::PathBuf>,
}

impl LiveState {
    /// The state a restart finds in the incident's record: a typing intent
    /// is never typed again (only confirmed, or its unsent text submitted),
    /// a notification never sent again.
    pub fn from_record(s: &crate::store::Schedule) -> LiveState {
        let Some(live) = &s.live else {
            return LiveState::default();
        };
        LiveState {
            typed: live.typed.as_ref().map(|t| Typed {
                len_before: t.len_before,
                text: t.text.clone(),
                place: t.place.clone(),
                // Whether the Enter went before the restart is unknown: the
                // session file (a turn) or the input (our text) will say.
                entered: false,
                at: t.at,
                expect: Expect::from_key(t.expect.as_deref(), &t.text),
            }),
            notified: live.notified_at.is_some(),
            writer_retries: 0,
            store: None,
        }
    }

    /// The durable part, for the incident's record (`waiting`: why it
    /// waits, when it does).
    pub fn to_record(&self, now: DateTime<Utc>, waiting: Option<&str>) -> crate::store::LiveRecord {
        crate::store::LiveRecord {
            typed: self.typed.as_ref().map(|t| crate::store::TypedRecord {
                text: t.text.clone(),
                place: t.place.clone(),
                len_before: t.len_before,
                at: t.at,
                expect: t.expect.key(),
            }),
            notified_at: self.notified.then_some(now),
            waiting: waiting.map(str::to_string),
        }
    }
}

/// A typing we did (or are about to do) for an incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typed {
    /// The session file's length before we typed.
    pub len_before: u64,
    /// What we typed.
    pub text: String,
    /// Where (a pane's human name).
    pub place: String,
    /// The Enter was sent after it.
    pub entered: bool,
    /// When the intent was recorded.
    pub at: DateTime<Utc>,
    /// What confirms it.
    pub expect: Expect,
}

/// Who will continue (or continued) an incident: shown by `status`, `list`
/// and `subscribe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Continuer {
    /// The daemon, by a headless respawn of the CLI.
    DaemonRespawn,
    /// The daemon, by typing into this pane.
    DaemonPane {
        /// The pane's human name (`session:window.pane`, or `screen …`).
        pane: String,
    },
    /// The CLI's own automatic continue (Claude Code's).
    #[serde(rename = "claude_own")]
    OwnContinue {
        /// Whose.
        cli: Provider,
    },
    /// zag's relay (FIFO).
    ZagRelay,
    /// The user, in the open TUI.
    User,
    /// Nobody yet: waiting for the session's process to exit.
    WaitingForOwner,
    /// Nobody yet: the open CLI is working on a turn (its own retry).
    CliWorking,
}

impl Continuer {
    /// How `list`/`status` name it.
    pub fn describe(&self) -> String {
        match self {
            Continuer::DaemonRespawn => "the daemon by respawn".into(),
            Continuer::DaemonPane { pane } => format!("the daemon into pane {pane}"),
            Continuer::OwnContinue { cli } => {
                format!(
                    "{}'s own continue",
                    crate::provider::of(*cli).display_name()
                )
            }
            Continuer::ZagRelay => "zag's relay".into(),
            Continuer::User => "the user".into(),
            Continuer::WaitingForOwner => "waiting for the owner to exit".into(),
            Continuer::CliWorking => "waiting while the open CLI works on a turn".into(),
        }
    }
}

/// What to type and what shows that it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A new user turn with the typed text in the session file.
    Turn,
    /// A limit-dialog choice that arms the CLI's own continue (Claude's
    /// "wait here, then continue automatically"): the provider reads its
    /// session file for it ([`crate::provider::ProviderCli::choice_took`]);
    /// the CLI's own continue then has the incident. Kept as
    /// `claude_armed` in the record.
    OwnContinueArmed,
    /// A limit-dialog choice that retries the request (Gemini's "Keep
    /// trying", or "Stop"), taken by its number alone (no Enter): the
    /// provider reads its session file for the answer
    /// ([`crate::provider::ProviderCli::choice_took`]). Kept as
    /// `gemini_answer` in the record.
    DialogAnswer,
}

impl Expect {
    /// What a choice in a limit dialog of `kind` waits for.
    pub fn of_dialog(kind: DialogKind) -> Expect {
        match kind {
            DialogKind::ArmsOwnContinue => Expect::OwnContinueArmed,
            DialogKind::Retries => Expect::DialogAnswer,
        }
    }

    /// Whether this is what a choice in `cli`'s own limit dialog waits for
    /// (never a turn; never for a CLI without a dialog the daemon answers).
    pub fn is_dialog_choice_of(&self, cli: &dyn crate::provider::ProviderCli) -> bool {
        cli.limit_dialog().map(Expect::of_dialog).as_ref() == Some(self)
    }

    /// Its name in a typing intent's record (`None`: a turn, the default).
    pub fn key(&self) -> Option<String> {
        match self {
            Expect::Turn => None,
            Expect::OwnContinueArmed => Some("claude_armed".into()),
            Expect::DialogAnswer => Some("gemini_answer".into()),
        }
    }

    /// Back from a record's name; a record written before the name was
    /// kept tells the menu choice that arms the CLI's own continue (a
    /// digit) from a turn by its text.
    pub fn from_key(key: Option<&str>, text: &str) -> Expect {
        match key {
            Some("claude_armed") => Expect::OwnContinueArmed,
            Some("gemini_answer") => Expect::DialogAnswer,
            Some(_) => Expect::Turn,
            None if text.parse::<u8>().is_ok() => Expect::OwnContinueArmed,
            None => Expect::Turn,
        }
    }
}

/// The decision for a due incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// No live owner: respawn headless, as for any dead session.
    Respawn {
        /// Why.
        why: String,
    },
    /// The provider's own continue has it: look again at `recheck_at`.
    StandDown {
        /// Whose own continue.
        cli: Provider,
        /// When to look again.
        recheck_at: DateTime<Utc>,
        /// Why.
        why: String,
    },
    /// Already continued: end the incident, nothing sent.
    Continued {
        /// By whom.
        by: Continuer,
        /// Why we know.
        why: String,
    },
    /// The user cancelled the provider's continue and stayed: end the
    /// incident as cancelled by the user, nothing sent.
    CancelledByUser {
        /// Why.
        why: String,
    },
    /// Type into the owner's terminal once.
    Type {
        /// Where.
        reach: Reach,
        /// The process that must be in front there.
        holder: Pid,
        /// What (typed literally, then Enter separately).
        text: String,
        /// What confirms it.
        expect: Expect,
        /// Why.
        why: String,
    },
    /// A live owner we cannot type into: wait for it to exit.
    WaitForOwner {
        /// When to look again.
        recheck_at: DateTime<Utc>,
        /// Send the desktop notification now (once per incident).
        notify: bool,
        /// Why.
        why: String,
    },
    /// The open TUI is working on a turn (its own retry, a turn the user
    /// started): look again at `recheck_at`, typing nothing meanwhile.
    Busy {
        /// When to look again.
        recheck_at: DateTime<Utc>,
        /// Why.
        why: String,
    },
    /// A writer without a terminal holds the session (Codex): retry later.
    RetryWriter {
        /// When to try again.
        recheck_at: DateTime<Utc>,
        /// Why.
        why: String,
    },
}

impl Route {
    /// Who will continue the incident under this route.
    pub fn continuer(&self) -> Continuer {
        match self {
            Route::Respawn { .. } | Route::RetryWriter { .. } => Continuer::DaemonRespawn,
            Route::StandDown { cli, .. } => Continuer::OwnContinue { cli: *cli },
            Route::Continued { by, .. } => by.clone(),
            Route::CancelledByUser { .. } => Continuer::User,
            Route::Type { reach, .. } => Continuer::DaemonPane {
                pane: reach_name(reach),
            },
            Route::WaitForOwner { .. } => Continuer::WaitingForOwner,
            Route::Busy { .. } => Continuer::CliWorking,
        }
    }

    /// Why, for humans.
    pub fn why(&self) -> &str {
        match self {
            Route::Respawn { why }
            | Route::StandDown { why, .. }
            | Route::Continued { why, .. }
            | Route::CancelledByUser { why }
            | Route::Type { why, .. }
            | Route::WaitForOwner { why, .. }
            | Route::Busy { why, .. }
            | Route::RetryWriter { why, .. } => why,
        }
    }
}

/// A reach's name for humans.
pub fn reach_name(r: &Reach) -> String {
    match r {
        Reach::Pane(p) => format!("{} ({})", p.human_name(), p.pane_id),
        Reach::ScreenWindow(w) => format!("screen {w:?}"),
        Reach::Unreachable { .. } => "none".into(),
    }
}

/// Everything [`decide`] decides from.
#[derive(Clone, Debug)]
pub struct Facts {
    /// Whose session it is: its own continue, grace and limit dialog are
    /// its provider's.
    pub provider: Provider,
    /// Who holds the session now.
    pub holder: Holder,
    /// What the provider's own continue is doing (`None` for a CLI without
    /// one, or when its session file has no limit entry).
    pub own: Option<Verdict>,
    /// When the session's file was last written (a TUI's exit may write
    /// its last line then).
    pub file_written_at: Option<DateTime<Utc>>,
    /// What the owner's screen shows, when it has a pane we captured.
    pub shows: Option<Shows>,
    /// The limit's reset (`None`: unknown; the due time stands in).
    pub reset_at: Option<DateTime<Utc>>,
    /// When the incident was due.
    pub due: DateTime<Utc>,
    /// The resume message.
    pub message: String,
    /// What we did so far.
    pub state: LiveState,
}

/// The wait before writer-conflict retry number `retries` (0-based).
pub fn writer_backoff(retries: u32) -> Duration {
    let secs = WRITER_RETRY_FIRST_SECS
        .saturating_mul(1i64 << retries.min(10))
        .min(WRITER_RETRY_CAP_SECS);
    Duration::seconds(secs)
}

/// Decide who continues the incident now. Pure.
pub fn decide(f: &Facts, now: DateTime<Utc>) -> Route {
    let recheck = now + Duration::seconds(RECHECK_SECS);
    let base = f.reset_at.unwrap_or(f.due);
    let cli = crate::provider::of(f.provider);
    let name = cli.display_name();
    let grace = cli.own_continue_grace();
    let grace_secs = grace.num_seconds();
    let grace_end = base + grace;
    let mut note = String::new();
    if let Some(v) = &f.own {
        match &v.state {
            AutoContinue::Continued => {
                return Route::Continued {
                    by: Continuer::OwnContinue { cli: f.provider },
                    why: "its continuation record is in the transcript".into(),
                }
            }
            AutoContinue::ContinuedByUser => {
                return Route::Continued {
                    by: Continuer::User,
                    why: "the user typed a new prompt after the limit".into(),
                }
            }
            AutoContinue::Armed { at } if f.holder.may_live() => {
                if now < grace_end {
                    return Route::StandDown {
                        cli: f.provider,
                        recheck_at: recheck.min(grace_end),
                        why: format!(
                            "{name}'s own continue is armed{} and its TUI is open: standing down until it continues (taking over at reset + {grace_secs} s)",
                            at.as_deref().map(|a| format!(" (for {a})")).unwrap_or_default()
                        ),
                    };
                }
                note = format!(
                    "no continuation by reset + {grace_secs} s although {name}'s continue was armed; "
                );
            }
            AutoContinue::Armed { .. } => {
                return Route::Respawn {
                    why: format!("{name}'s continue was armed but its process is gone"),
                }
            }
            AutoContinue::CancelledByUser => {
                if f.holder.may_live() {
                    return Route::CancelledByUser {
                        why: format!("the user cancelled {name}'s automatic continue (Esc) and the TUI stays open: nothing sent"),
                    };
                }
                let exited = f.file_written_at.is_some_and(|w| {
                    cancel_was_exit(v, w, Duration::seconds(CANCEL_EXIT_WINDOW_SECS))
                });
                if !exited {
                    return Route::CancelledByUser {
                        why: format!("the user cancelled {name}'s automatic continue and closed the TUI later: nothing sent"),
                    };
                }
                return Route::Respawn {
                    why: "the cancel was the first Ctrl-C of an exit (the process ended within seconds)".into(),
                };
            }
            AutoContinue::ExitedDuringWait
            | AutoContinue::Stopped { .. }
            | AutoContinue::NeverArmed => {}
        }
    }
    if let Some(t) = &f.state.typed {
        if f.holder.may_live() {
            // Our text typed but not submitted (refused before its Enter,
            // or a restart between the two): when it is still exactly what
            // the input holds, only the Enter goes.
            if let (false, Holder::Live { pid, reach, what }) = (t.entered, &f.holder) {
                let ours_in_input = match (&f.shows, &t.expect) {
                    (Some(Shows::Draft(d)), Expect::Turn) => *d == t.text,
                    (Some(Shows::LimitDialog(_)), e @ Expect::OwnContinueArmed) => {
                        e.is_dialog_choice_of(cli)
                    }
                    _ => false,
                };
                if ours_in_input && matches!(reach, Reach::Pane(_)) {
                    let expect = t.expect.clone();
                    return Route::Type {
                        reach: reach.clone(),
                        holder: *pid,
                        text: t.text.clone(),
                        expect,
                        why: format!(
                            "{what}'s input still holds our unsent {:?}: sending its Enter",
                            t.text
                        ),
                    };
                }
            }
            // Its turn may still be on its way: look again soon.
            let confirming = now < t.at + Duration::seconds(TYPED_CONFIRM_WINDOW_SECS);
            return Route::WaitForOwner {
                recheck_at: if confirming {
                    now + Duration::seconds(TYPED_CONFIRM_RECHECK_SECS)
                } else {
                    recheck
                },
                notify: !f.state.notified,
                why: format!(
                    "typed into {} once, not confirmed yet; never typing twice: waiting for the owner",
                    t.place
                ),
            };
        }
    }
    match &f.holder {
        Holder::Nobody => Route::Respawn {
            why: format!("{note}{NOBODY_HOLDS_IT}"),
        },
        Holder::Writer { what, .. } => Route::RetryWriter {
            recheck_at: now + writer_backoff(f.state.writer_retries),
            why: format!(
                "{note}{what} still holds the session's writer: retrying once it is released"
            ),
        },
        Holder::Unknown { what } => Route::WaitForOwner {
            recheck_at: recheck,
            notify: !f.state.notified,
            why: format!("{note}{what} may still hold the session (liveness unknown)"),
        },
        Holder::Live { reach, what, pid } => {
            let wait = |why: String| Route::WaitForOwner {
                recheck_at: recheck,
                notify: !f.state.notified,
                why: format!("{note}{why}"),
            };
            if matches!(reach, Reach::Unreachable { .. }) {
                return wait(format!(
                    "{what} is open outside tmux and GNU screen: cannot type into it"
                ));
            }
            let typed = |text: String, expect: Expect, why: String| Route::Type {
                reach: reach.clone(),
                holder: *pid,
                text,
                expect,
                why: format!("{note}{why}"),
            };
            match &f.shows {
                Some(Shows::LimitDialog(menu)) => match (cli.limit_dialog(), cli.answer_limit_dialog(menu)) {
                    (Some(kind), Some(c)) => {
                        let dialog = match kind {
                            DialogKind::ArmsOwnContinue => "limit menu",
                            DialogKind::Retries => "usage-limit dialog",
                        };
                        typed(
                            c.key.to_string(),
                            Expect::of_dialog(kind),
                            format!("{what} shows its {dialog}: choosing {} ({})", c.key, c.label),
                        )
                    }
                    (_, None) | (None, _) => wait(format!(
                        "{what} shows a usage-limit dialog without \"Keep trying\" or \"Stop\": leaving the choice to the user"
                    )),
                },
                Some(Shows::OwnContinueCountdown { .. }) if now < grace_end => Route::StandDown {
                    cli: f.provider,
                    recheck_at: recheck.min(grace_end),
                    why: format!("{name} shows its own continue counting down: standing down"),
                },
                Some(Shows::Idle) => typed(
                    f.message.clone(),
                    Expect::Turn,
                    format!("{what} is open at an empty prompt: typing the resume message"),
                ),
                Some(Shows::Busy(doing)) => Route::Busy {
                    recheck_at: recheck,
                    why: format!(
                        "{note}{what} is working on a turn ({doing}): looking again shortly"
                    ),
                },
                Some(Shows::Draft(_)) => wait(format!(
                    "{what} has the user's unsent draft in its prompt: not typing over it"
                )),
                Some(_) | None => wait(format!(
                    "{what}'s screen shows nothing we know how to type into"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::tmux::Pane;
    use crate::provider::claude::own_continue::assess;
    use crate::provider::screen::LimitMenu;
    use crate::provider::screen_view as screen;
    use std::path::PathBuf;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn pane() -> Reach {
        Reach::Pane(Pane {
            socket: PathBuf::from("/tmp/tmux-1/default"),
            pane_id: "%3".into(),
            pane_pid: 10,
            session_name: "agents".into(),
            window_id: "@1".into(),
            window_index: 0,
            pane_index: 1,
            current_command: "claude".into(),
        })
    }

    fn live(reach: Reach) -> Holder {
        Holder::Live {
            pid: 42,
            reach,
            what: "claude TUI".into(),
        }
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/live/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// The verdict of a captured transcript (limit entry first).
    fn verdict(name: &str) -> Verdict {
        let text = fixture(name);
        crate::provider::claude::own_continue::assess_transcript(text.lines())
            .unwrap_or_else(|| assess(text.lines()))
    }

    /// Facts of a Claude session (set `provider` for another CLI's).
    fn facts(holder: Holder, own: Option<Verdict>, shows: Option<Shows>) -> Facts {
        Facts {
            provider: Provider::Claude,
            holder,
            own,
            file_written_at: None,
            shows,
            reset_at: Some(t("2026-11-30T19:21:00Z")),
            due: t("2026-11-30T19:21:05Z"),
            message: "Continue".into(),
            state: LiveState::default(),
        }
    }

    #[test]
    fn armed_with_the_tui_open_stands_down_until_the_grace_then_takes_over() {
        let v = verdict("claude_after_limit_exit_while_armed.jsonl");
        // The exit fixture ends with the warning; cut it to the arm alone.
        let armed = Verdict {
            state: AutoContinue::Armed { at: None },
            ..v
        };
        let f = facts(
            live(pane()),
            Some(armed),
            Some(Shows::OwnContinueCountdown { at: None }),
        );
        let now = t("2026-11-30T19:21:05Z");
        match decide(&f, now) {
            Route::StandDown { recheck_at, .. } => {
                assert_eq!(recheck_at, now + Duration::seconds(RECHECK_SECS))
            }
            other => panic!("{other:?}"),
        }
        // near the end of the grace, the re-check is the grace's end
        let late = t("2026-11-30T19:23:50Z");
        match decide(&f, late) {
            Route::StandDown { recheck_at, .. } => {
                assert_eq!(recheck_at, t("2026-11-30T19:24:00Z"))
            }
            other => panic!("{other:?}"),
        }
        // past it, with Claude's countdown gone and an idle prompt: typed
        let mut f2 = f.clone();
        f2.shows = Some(Shows::Idle);
        match decide(&f2, t("2026-11-30T19:24:01Z")) {
            Route::Type { expect, why, .. } => {
                assert_eq!(expect, Expect::Turn);
                assert!(why.contains("no continuation by reset"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn claude_continued_by_itself_or_by_the_user_ends_with_nothing_sent() {
        let now = t("2026-11-30T19:25:00Z");
        let f = facts(
            live(pane()),
            Some(verdict("claude_after_limit_autocontinued.jsonl")),
            None,
        );
        assert_eq!(
            decide(&f, now).continuer(),
            Continuer::OwnContinue {
                cli: Provider::Claude
            }
        );
        assert!(matches!(decide(&f, now), Route::Continued { .. }));
        let f = facts(
            live(pane()),
            Some(verdict(
                "claude_after_limit_setting_off_esc_then_typed.jsonl",
            )),
            None,
        );
        assert!(matches!(
            decide(&f, now),
            Route::Continued {
                by: Continuer::User,
                ..
            }
        ));
    }

    #[test]
    fn exit_while_armed_is_respawned_headless() {
        let now = t("2026-11-30T19:21:05Z");
        let v = verdict("claude_after_limit_exit_while_armed.jsonl");
        assert_eq!(v.state, AutoContinue::ExitedDuringWait);
        let f = facts(Holder::Nobody, Some(v.clone()), None);
        assert!(matches!(decide(&f, now), Route::Respawn { .. }));
        // armed, no warning (killed with its tmux server), process gone
        let armed = Verdict {
            state: AutoContinue::Armed { at: None },
            ..v
        };
        let f = facts(Holder::Nobody, Some(armed), None);
        assert!(matches!(decide(&f, now), Route::Respawn { .. }));
    }

    #[test]
    fn a_cancel_with_the_tui_open_is_the_users_choice_a_cancel_then_exit_is_an_exit() {
        let now = t("2026-11-30T19:21:05Z");
        let v = Verdict {
            state: AutoContinue::CancelledByUser,
            at: Some(t("2026-11-30T19:19:50Z")),
            exit_recorded: false,
        };
        let f = facts(live(pane()), Some(v.clone()), Some(Shows::Idle));
        let r = decide(&f, now);
        assert!(matches!(r, Route::CancelledByUser { .. }), "{r:?}");
        // the process ended 3 s after the cancel: an exit, take over
        let mut f = facts(Holder::Nobody, Some(v.clone()), None);
        f.file_written_at = Some(t("2026-11-30T19:19:53Z"));
        assert!(matches!(decide(&f, now), Route::Respawn { .. }));
        // ended an hour later: the user chose to wait, then left
        f.file_written_at = Some(t("2026-11-30T20:19:53Z"));
        assert!(matches!(decide(&f, now), Route::CancelledByUser { .. }));
    }

    #[test]
    fn setting_off_menu_gets_2_and_an_idle_prompt_gets_the_message_never_a_draft() {
        let now = t("2026-11-30T19:21:05Z");
        let menu = screen::read(&fixture("screen_claude_limit_menu_after_reset.txt")).shows();
        assert!(matches!(menu, Shows::LimitDialog(_)), "{menu:?}");
        let own = Some(verdict("claude_after_limit_setting_off.jsonl"));
        let f = facts(live(pane()), own.clone(), Some(menu));
        match decide(&f, now) {
            Route::Type { text, expect, .. } => {
                assert_eq!(text, "2");
                assert_eq!(expect, Expect::OwnContinueArmed);
            }
            other => panic!("{other:?}"),
        }
        let f = facts(live(pane()), own.clone(), Some(Shows::Idle));
        match decide(&f, now) {
            Route::Type { text, expect, .. } => {
                assert_eq!(text, "Continue");
                assert_eq!(expect, Expect::Turn);
            }
            other => panic!("{other:?}"),
        }
        let f = facts(live(pane()), own, Some(Shows::Draft("half".into())));
        assert!(matches!(
            decide(&f, now),
            Route::WaitForOwner { notify: true, .. }
        ));
        // a menu whose entry is labelled differently still gets its number
        let m = LimitMenu {
            options: vec![
                (1, "Stop".into()),
                (3, "Wait here, then continue automatically".into()),
            ],
            selected: Some(1),
        };
        let f = facts(live(pane()), None, Some(Shows::LimitDialog(m)));
        assert!(matches!(decide(&f, now), Route::Type { text, .. } if text == "3"));
    }

    #[test]
    fn codex_tui_is_typed_into_a_lingering_writer_is_retried_with_backoff() {
        let now = t("2026-11-30T19:21:05Z");
        let ready = screen::read(&fixture("screen_codex_limit.txt")).shows();
        let mut f = facts(live(pane()), None, Some(ready));
        f.provider = Provider::Codex;
        assert!(
            matches!(
                decide(&f, now),
                Route::Type {
                    expect: Expect::Turn,
                    ..
                }
            ),
            "{:?}",
            decide(&f, now)
        );
        let mut f = facts(
            Holder::Writer {
                pid: 7,
                what: "codex app-server".into(),
            },
            None,
            None,
        );
        f.provider = Provider::Codex;
        let r0 = decide(&f, now);
        assert_eq!(r0.continuer(), Continuer::DaemonRespawn);
        assert!(
            matches!(r0, Route::RetryWriter { recheck_at, .. } if recheck_at == now + Duration::seconds(15))
        );
        f.state.writer_retries = 2;
        assert!(
            matches!(decide(&f, now), Route::RetryWriter { recheck_at, .. } if recheck_at == now + Duration::seconds(60))
        );
        f.state.writer_retries = 30;
        assert!(
            matches!(decide(&f, now), Route::RetryWriter { recheck_at, .. } if recheck_at == now + Duration::seconds(300))
        );
    }

    fn real(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/real/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn gemini_dialog_gets_keep_trying_copilot_prompt_gets_the_message_a_busy_tui_nothing() {
        let now = t("2026-11-30T19:21:05Z");
        let dialog = crate::provider::gemini::tui::read_screen(&real(
            "gemini-0.61.0/screen_limit_dialog_pro.txt",
        ));
        let mut f = facts(live(pane()), None, Some(dialog));
        f.provider = Provider::Gemini;
        f.message = "please refactor the parser".into();
        match decide(&f, now) {
            Route::Type {
                text, expect, why, ..
            } => {
                assert_eq!(text, "1");
                assert_eq!(expect, Expect::DialogAnswer);
                assert!(why.contains("Keep trying"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // the router's dialog offers a model switch: never chosen, "Stop" is
        let router = crate::provider::gemini::tui::read_screen(&real(
            "gemini-0.61.0/screen_limit_dialog_router.txt",
        ));
        let mut f = facts(live(pane()), None, Some(router));
        f.provider = Provider::Gemini;
        assert!(matches!(decide(&f, now), Route::Type { text, .. } if text == "2"));
        // dismissed (Stop): the prompt was dropped, the input is empty: the prompt again
        let idle =
            crate::provider::gemini::tui::read_screen(&real("gemini-0.61.0/screen_after_stop.txt"));
        let mut f = facts(live(pane()), None, Some(idle));
        f.provider = Provider::Gemini;
        f.message = "please refactor the parser".into();
        assert!(
            matches!(decide(&f, now), Route::Type { text, expect: Expect::Turn, .. } if text == "please refactor the parser")
        );
        let draft =
            crate::provider::gemini::tui::read_screen(&real("gemini-0.61.0/screen_draft.txt"));
        let mut f = facts(live(pane()), None, Some(draft));
        f.provider = Provider::Gemini;
        assert!(matches!(decide(&f, now), Route::WaitForOwner { .. }));
        let busy =
            crate::provider::gemini::tui::read_screen(&real("gemini-0.61.0/screen_thinking.txt"));
        let mut f = facts(live(pane()), None, Some(busy));
        f.provider = Provider::Gemini;
        let r = decide(&f, now);
        assert!(matches!(r, Route::Busy { .. }), "{r:?}");
        assert_eq!(r.continuer(), Continuer::CliWorking);
        // Copilot: back at its prompt after the retries; working while retrying
        let idle = crate::provider::copilot::tui::read_screen(&real(
            "copilot-1.0.102/screen_after_limit.txt",
        ));
        let mut f = facts(live(pane()), None, Some(idle));
        f.provider = Provider::Copilot;
        assert!(
            matches!(decide(&f, now), Route::Type { text, expect: Expect::Turn, .. } if text == "Continue")
        );
        let working =
            crate::provider::copilot::tui::read_screen(&real("copilot-1.0.102/screen_working.txt"));
        let mut f = facts(live(pane()), None, Some(working));
        f.provider = Provider::Copilot;
        assert!(matches!(decide(&f, now), Route::Busy { .. }));
    }

    #[test]
    fn unreachable_owner_is_waited_for_with_one_notification_and_typing_happens_once() {
        let now = t("2026-11-30T19:21:05Z");
        let mut f = facts(live(Reach::Unreachable { multiplexer: None }), None, None);
        assert!(matches!(
            decide(&f, now),
            Route::WaitForOwner { notify: true, .. }
        ));
        f.state.notified = true;
        let r = decide(&f, now);
        assert!(matches!(r, Route::WaitForOwner { notify: false, .. }));
        assert_eq!(r.continuer(), Continuer::WaitingForOwner);
        // typed once already, still open: never again
        let mut f = facts(live(pane()), None, Some(Shows::Idle));
        f.state.typed = Some(Typed {
            len_before: 10,
            text: "Continue".into(),
            place: "agents:0.1".into(),
            entered: true,
            at: now,
            expect: Expect::Turn,
        });
        assert!(matches!(decide(&f, now), Route::WaitForOwner { .. }));
        // typed, then the owner went: respawn
        f.holder = Holder::Nobody;
        assert!(matches!(decide(&f, now), Route::Respawn { .. }));
        // nobody, no own continue: respawn as today
        let f = facts(Holder::Nobody, None, None);
        assert_eq!(decide(&f, now).continuer(), Continuer::DaemonRespawn);
    }

    #[test]
    fn a_typed_turn_not_seen_yet_is_looked_for_every_few_seconds_within_its_window() {
        let at = t("2026-11-30T19:21:05Z");
        let mut f = facts(live(pane()), None, Some(Shows::Idle));
        f.state.typed = Some(Typed {
            len_before: 10,
            text: "Continue".into(),
            place: "agents:0.1".into(),
            entered: false,
            at,
            expect: Expect::Turn,
        });
        let recheck = |now: DateTime<Utc>| match decide(&f, now) {
            Route::WaitForOwner { recheck_at, .. } => (recheck_at - now).num_seconds(),
            other => panic!("{other:?}"),
        };
        // a restart right after the Enter: the turn may still come
        assert_eq!(
            recheck(at + Duration::seconds(1)),
            TYPED_CONFIRM_RECHECK_SECS
        );
        assert_eq!(
            recheck(at + Duration::seconds(TYPED_CONFIRM_WINDOW_SECS - 1)),
            TYPED_CONFIRM_RECHECK_SECS
        );
        // past its window: the usual pace
        assert_eq!(
            recheck(at + Duration::seconds(TYPED_CONFIRM_WINDOW_SECS)),
            RECHECK_SECS
        );
    }

    #[test]
    fn a_typing_intents_expectation_survives_its_record() {
        for (e, text) in [
            (Expect::Turn, "Continue"),
            (Expect::OwnContinueArmed, "2"),
            (Expect::DialogAnswer, "1"),
        ] {
            assert_eq!(Expect::from_key(e.key().as_deref(), text), e);
        }
        // a record from before the name was kept: a digit was Claude's menu
        assert_eq!(Expect::from_key(None, "2"), Expect::OwnContinueArmed);
        assert_eq!(Expect::from_key(None, "Continue"), Expect::Turn);
    }

    #[test]
    fn our_unsent_text_gets_only_its_enter_never_a_second_typing() {
        let now = t("2026-11-30T19:21:05Z");
        let mut f = facts(live(pane()), None, Some(Shows::Draft("Continue".into())));
        f.state.typed = Some(Typed {
            len_before: 10,
            text: "Continue".into(),
            place: "agents:0.1".into(),
            entered: false,
            at: now,
            expect: Expect::Turn,
        });
        match decide(&f, now) {
            Route::Type {
                text,
                expect,
                holder,
                ..
            } => {
                assert_eq!(
                    (text.as_str(), expect, holder),
                    ("Continue", Expect::Turn, 42)
                );
            }
            other => panic!("{other:?}"),
        }
        // the input holds something else (the user's words after ours)
        f.shows = Some(Shows::Draft("Continue and fix".into()));
        assert!(matches!(decide(&f, now), Route::WaitForOwner { .. }));
        // an empty input: it went (or was cleared); only the file can tell
        f.shows = Some(Shows::Idle);
        assert!(matches!(decide(&f, now), Route::WaitForOwner { .. }));
        // its Enter was sent: never again
        f.shows = Some(Shows::Draft("Continue".into()));
        f.state.typed.as_mut().unwrap().entered = true;
        assert!(matches!(decide(&f, now), Route::WaitForOwner { .. }));
    }

    #[test]
    fn a_dialog_choice_left_unsent_gets_its_enter_only_from_the_cli_whose_choice_arms() {
        let now = t("2026-11-30T19:21:05Z");
        let menu = LimitMenu {
            options: vec![(1, "Keep trying".into()), (2, "Stop".into())],
            selected: Some(1),
        };
        let mut f = facts(live(pane()), None, Some(Shows::LimitDialog(menu)));
        f.state.typed = Some(Typed {
            len_before: 10,
            text: "2".into(),
            place: "agents:0.1".into(),
            entered: false,
            at: now,
            // a record from before the name was kept: a digit
            expect: Expect::from_key(None, "2"),
        });
        // Claude's menu: the choice arms its own continue; only the Enter is left
        assert!(matches!(
            decide(&f, now),
            Route::Type { expect: Expect::OwnContinueArmed, text, .. } if text == "2"
        ));
        // Gemini's dialog takes no Enter, and no such choice: never pressed
        f.provider = Provider::Gemini;
        assert!(matches!(decide(&f, now), Route::WaitForOwner { .. }));
    }

    #[test]
    fn a_wait_ages_out_six_hours_after_the_reset() {
        let reset = t("2026-11-30T19:00:00Z");
        assert!(!aged_out(reset, t("2026-12-01T01:00:00Z")));
        assert!(aged_out(reset, t("2026-12-01T01:00:01Z")));
    }
}
