//! One module per provider CLI: everything the daemon knows about it.
//!
//! The limit detectors stay in [`crate::detect`] (pure, table-tested); every
//! other fact about a CLI lives here, one file per provider, behind the
//! [`ProviderCli`] trait: where its session files live and what their names
//! say, how to read a session's facts from its lines, how to find and check
//! its session on disk, its resume command and environment, its "moved on"
//! rule and how its output becomes zag-log events, and for a session left
//! open in a TUI: who holds it, what its screen shows ([`Shows`]), which
//! limit-dialog entry to choose, its own continue ([`own_continue`]). Code
//! outside this module and `detect` asks [`of`] (or [`for_source`]) for the
//! implementation and never branches on which provider it is
//! (`tests/layers.rs` fails when it names one), so adding a provider is one
//! directory here, one detector and its fixtures.
//!
//! Most methods are pure (bytes, paths or a spec in, data out) and tested in
//! microseconds beside their provider. The one that touches the disk,
//! [`ProviderCli::resolve_session`], says so. Issue 11 adds whether a
//! session is live and who owns it as further methods with defaults, so no
//! implementation has to change for it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::Path;

use crate::config::{Binaries, WatchConfig};
use crate::live::owner::{reach_of, LiveError};
use crate::live::proc::Procfs;
use crate::live::tmux::Tmux;
use crate::paths::Paths;
pub mod argv;
pub mod events;
mod holder;
pub mod mode;
pub mod own_continue;
pub mod screen;
pub mod screen_view;
pub mod target;

use crate::shared::SessionIdentity;
use crate::shared::{Provider, SourceKind};
pub use argv::{ArgvError, ArgvSpec};
pub use events::Event;
pub use holder::Holder;
pub use own_continue::Verdict;
pub use screen::{DialogChoice, DialogKind, LimitMenu, Shows};
pub use target::{Channel, ResolvedTarget, Unresolved};

/// A capture from `tests/fixtures/live/` (screens and transcripts of the
/// real TUIs), for the tests of the rooms and the screen readers.
#[cfg(test)]
macro_rules! live_fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/live/",
            $name
        ))
    };
}
#[cfg(test)]
pub(crate) use live_fixture;

pub mod claude;
pub mod codex;
pub mod copilot;
pub mod gemini;

/// A "moved on" rule: why the session no longer needs a resume, judged from
/// the provider's own session file and the hit time (pure).
pub type MovedOnRule = fn(&[u8], DateTime<Utc>) -> Option<String>;

/// Everything the daemon knows about one provider CLI, apart from its limit
/// detector. Implemented by one zero-sized type per provider; object safe,
/// reached through [`of`].
pub trait ProviderCli: Send + Sync {
    /// Which provider this is.
    fn provider(&self) -> Provider;

    /// How the CLI is called in texts for people ("Claude Code").
    fn display_name(&self) -> &'static str;

    /// The kind of its own session files (the source the tailer names).
    fn source(&self) -> SourceKind;

    // --- Where its session files live -----------------------------------

    /// The CLI's home dir (`~/.claude`, or the `[dirs]` override).
    fn home<'a>(&self, paths: &'a Paths) -> &'a Path {
        paths.provider_home(self.provider())
    }

    /// Its session files under [`Self::home`], as a watch pattern
    /// (`/`-separated segments, each a literal or a one-`*` glob).
    fn session_files(&self) -> &'static str;

    /// Whether `[watch]` asks for its session files.
    fn watched(&self, cfg: &WatchConfig) -> bool {
        cfg.provider(self.provider())
    }

    /// The session id a session file's path names, when it names one (pure).
    fn session_id_from_path(&self, path: &Path) -> Option<String>;

    // --- Reading a session's facts --------------------------------------

    /// Fold one line of its session file into `id` (pure). Lines that cannot
    /// carry a fact should be rejected without being parsed.
    fn observe(&self, line: &[u8], id: &mut SessionIdentity);

    // --- Finding and checking its session on disk ------------------------

    /// Find the session `t` names on disk and fill what the files tell
    /// (`native_file`, a missing cwd or id). Does sync file I/O: call it
    /// off any async loop. `Deleted` when its files are gone, `Invalid`
    /// when it can never be resumed.
    fn resolve_session(
        &self,
        t: &mut ResolvedTarget,
        paths: &Paths,
        hit_at: Option<DateTime<Utc>>,
    ) -> Result<(), Unresolved>;

    /// Whether a zag relay of this CLI takes messages through a FIFO.
    fn has_relay_fifo(&self) -> bool {
        false
    }

    // --- Its resume command ----------------------------------------------

    /// The argv (without the program) that resumes a session (pure).
    fn resume_args(&self, spec: &ArgvSpec) -> Result<Vec<String>, ArgvError>;

    /// Whether a resume sends the prompt that hit the limit again (the CLI
    /// drops it from the session) rather than the resume message. The
    /// daemon keeps the prompt on the record only when it does.
    fn resends_prompt(&self) -> bool {
        false
    }

    /// Whether the resumed run approves tool use on its own.
    fn auto_approve(&self, t: &ResolvedTarget) -> bool {
        t.auto_approve
    }

    /// Extra environment for the resumed CLI.
    fn child_env(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Variables the CLI sets in the sessions it runs, under which a CLI
    /// started from one refuses to start (nested). A resumed CLI runs
    /// without those of every provider, whichever it is.
    fn nesting_env(&self) -> &'static [&'static str] {
        &[]
    }

    /// The binary configured in `[binaries]`, if any.
    fn configured_binary<'a>(&self, binaries: &'a Binaries) -> Option<&'a Path> {
        binaries[self.provider()].as_deref()
    }

    // --- Did the session move on; what did the resumed run say -----------

    /// The rule over its own session file, or `None` when that file cannot
    /// tell (only the zag log speaks for the session then). Only real
    /// progress counts: an answered turn, or a user turn that did not meet
    /// the limit again; never a meta or bookkeeping entry.
    fn moved_on_rule(&self) -> Option<MovedOnRule>;

    /// The zag-log events for one parsed line of the resumed run's
    /// structured output (pure); `out` holds the events so far.
    fn output_events(&self, line: &Value, out: &mut Vec<Event>);

    // --- Live sessions (issue 11) ------------------------------------------

    /// Who holds the session `t` names right now, and how to reach it.
    /// Reads `/proc` and asks tmux: call it off any async loop. The
    /// default: nobody can be told to hold it (respawn as before).
    fn live_holder(&self, t: &ResolvedTarget, cx: &LiveContext) -> Result<Holder, LiveError> {
        let _ = (t, cx);
        Ok(Holder::Nobody)
    }

    /// What the CLI's own continue is doing after the last limit in its
    /// session file (pure). `None`: it has none (all but Claude).
    fn own_continue(&self, session_file: &[u8]) -> Option<Verdict> {
        let _ = session_file;
        None
    }

    /// How long after the reset the CLI's own continue, when armed, gets
    /// before the daemon takes over. Zero for a CLI without one.
    fn own_continue_grace(&self) -> chrono::Duration {
        chrono::Duration::zero()
    }

    /// How its session file records the permission mode in force (Claude's
    /// `permissionMode`, Codex's `turn_context` sandbox), read back from a
    /// limit by [`mode::mode_at_limit`]. `None`: it
    /// records none (Gemini, Copilot).
    fn mode_record(&self) -> Option<ModeRecord> {
        None
    }

    /// What a captured pane of its TUI shows (pure). The default: nothing
    /// it knows ([`Shows::Unknown`]), so the daemon never types into it.
    fn read_screen(&self, screen: &str) -> Shows {
        let _ = screen;
        Shows::Unknown
    }

    /// What a choice in the limit dialog its TUI shows
    /// ([`Shows::LimitDialog`]) does; `None`: it shows none the daemon
    /// answers.
    fn limit_dialog(&self) -> Option<DialogKind> {
        None
    }

    /// The entry to choose in that limit dialog (pure). `None`: none the
    /// daemon may choose; the choice is the user's.
    fn answer_limit_dialog(&self, menu: &LimitMenu) -> Option<DialogChoice> {
        let _ = menu;
        None
    }

    /// Whether the bytes its session file gained after a dialog choice was
    /// typed show that the choice took (pure).
    fn choice_took(&self, written: &[u8]) -> bool {
        let _ = written;
        false
    }

    /// Fold one line of its session file into the user turn still waiting
    /// for an answer (pure); `false` when the CLI's limits reach its files
    /// anyway and open turns need no watching (all but Gemini, whose TUI
    /// shows its limit on screen only: see [`gemini::tui`]).
    fn fold_open_turn(&self, line: &[u8], open: &mut Option<OpenTurn>) -> bool {
        let _ = (line, open);
        false
    }

    /// The directory a session file's project stands for, when the file's
    /// place tells (reads the disk). Used when the session's facts name no
    /// cwd. The default: it does not tell.
    fn project_dir(&self, session_file: &Path) -> Option<std::path::PathBuf> {
        let _ = session_file;
        None
    }

    /// The usage limit its open TUI in `cwd` shows on screen, as the text
    /// shown (reads `/proc`, asks tmux: call it off any async loop). Only
    /// for a CLI whose limit reaches no file ([`Self::fold_open_turn`]).
    fn limit_on_screen(&self, cwd: &Path, cx: &LiveContext) -> Option<String> {
        let _ = (cwd, cx);
        None
    }

    /// Whether the CLI continues by itself at a limit in a way the daemon
    /// should leave alone, as a reason (reads the CLI's settings under
    /// `home`). The default: it does not.
    fn continues_by_itself(&self, home: &Path) -> Option<String> {
        let _ = home;
        None
    }

    /// Whether a failed resume says another process holds the session's
    /// writer: a wait for the writer, never a final failure (pure).
    fn is_writer_conflict(&self, output: &str) -> bool {
        let _ = output;
        false
    }
}

/// A user turn at the end of a session file with nothing after it yet
/// ([`ProviderCli::fold_open_turn`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenTurn {
    /// The prompt as the user typed it.
    pub text: String,
    /// The record's timestamp.
    pub at: Option<DateTime<Utc>>,
}

/// What [`ProviderCli::live_holder`] looks with.
#[derive(Clone, Debug)]
pub struct LiveContext {
    /// `/proc`.
    pub procfs: Procfs,
    /// The tmux client.
    pub tmux: Tmux,
    /// Directories holding the user's tmux server sockets.
    pub socket_dirs: Vec<std::path::PathBuf>,
    /// The CLI's home dir ([`ProviderCli::home`]).
    pub home: std::path::PathBuf,
}

/// The holder of a session for a CLI that keeps no registry and no writer
/// lock (Gemini, Copilot), as cheaply as it can be told: one pass over
/// `/proc` for a process whose command line names `binary` and that has
/// the session's file open or names the session id on its command line.
/// A process that only shares the cwd is not taken: another session of the
/// same CLI in the same project would block this one's resume.
pub fn holder_by_process(
    binary: &str,
    t: &ResolvedTarget,
    cx: &LiveContext,
) -> Result<Holder, LiveError> {
    let names_binary = |argv: &[String]| {
        argv.iter().take(2).any(|a| {
            Path::new(a)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == binary || n.starts_with(&format!("{binary}.")))
        })
    };
    for pid in cx.procfs.pids() {
        if pid == std::process::id() {
            continue;
        }
        let Some(argv) = cx.procfs.cmdline(pid) else {
            continue;
        };
        if !names_binary(&argv) {
            continue;
        }
        let names_id = t
            .provider_session_id
            .as_deref()
            .is_some_and(|id| argv.iter().any(|a| a == id));
        let holds = t
            .native_file
            .as_deref()
            .is_some_and(|f| cx.procfs.has_open(pid, f) == Some(true));
        if names_id || holds {
            let reach = reach_of(&cx.procfs, &cx.tmux, pid, &cx.socket_dirs)?;
            return Ok(Holder::Live {
                pid,
                reach,
                what: format!("{binary} (pid {pid})"),
            });
        }
    }
    Ok(Holder::Nobody)
}

/// How a provider's session file records the permission mode: lines that
/// can hold it contain `needle` (a cheap filter before parsing), and
/// `read` takes the mode out of a parsed line (`None`: not a mode record).
#[derive(Clone, Copy, Debug)]
pub struct ModeRecord {
    /// Bytes every mode record contains.
    pub needle: &'static str,
    /// The mode a parsed line records.
    pub read: fn(&Value) -> Option<String>,
}

/// The implementation for a provider.
pub fn of(p: Provider) -> &'static dyn ProviderCli {
    match p {
        Provider::Claude => &claude::Claude,
        Provider::Codex => &codex::Codex,
        Provider::Gemini => &gemini::Gemini,
        Provider::Copilot => &copilot::Copilot,
    }
}

/// The implementation whose own session files `source` names (`None` for
/// zag's logs and unknown files).
pub fn for_source(source: SourceKind) -> Option<&'static dyn ProviderCli> {
    source.native_provider().map(of)
}

/// Every provider's implementation.
pub fn all() -> impl Iterator<Item = &'static dyn ProviderCli> {
    Provider::ALL.into_iter().map(of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_consistent() {
        for cli in all() {
            assert_eq!(of(cli.provider()).provider(), cli.provider());
            assert_eq!(cli.source().native_provider(), Some(cli.provider()));
            assert_eq!(
                for_source(cli.source()).map(|c| c.provider()),
                Some(cli.provider())
            );
        }
        assert!(for_source(SourceKind::ZagSession).is_none());
        assert!(for_source(SourceKind::Unknown).is_none());
    }

    #[test]
    fn delivery_differences_are_where_they_belong() {
        let fifo: Vec<bool> = all().map(|c| c.has_relay_fifo()).collect();
        assert_eq!(fifo, [true, false, false, false]);
        let resend: Vec<bool> = all().map(|c| c.resends_prompt()).collect();
        assert_eq!(resend, [false, false, true, false]);
        let rule: Vec<bool> = all().map(|c| c.moved_on_rule().is_some()).collect();
        assert_eq!(rule, [true, true, false, true]);
        assert_eq!(
            of(Provider::Gemini).child_env(),
            [("GEMINI_CLI_TRUST_WORKSPACE", "true")]
        );
        assert!(of(Provider::Claude).child_env().is_empty());
    }

    #[test]
    fn live_session_differences_are_where_they_belong() {
        let names: Vec<&str> = all().map(|c| c.display_name()).collect();
        assert_eq!(names, ["Claude Code", "Codex", "Gemini CLI", "Copilot CLI"]);
        let grace: Vec<i64> = all()
            .map(|c| c.own_continue_grace().num_seconds())
            .collect();
        assert_eq!(grace, [180, 0, 0, 0]);
        let nesting: Vec<&[&str]> = all().map(|c| c.nesting_env()).collect();
        assert_eq!(nesting, [&["CLAUDECODE"][..], &[], &[], &[]]);
        // Claude's menu: its "continue automatically" entry arms its own
        // continue; Gemini's dialog: "Keep trying" retries; the others: none.
        let menu = LimitMenu {
            options: vec![
                (1, "Keep trying".into()),
                (3, "Wait here, then continue automatically at 7pm".into()),
            ],
            selected: Some(1),
        };
        let kinds: Vec<Option<DialogKind>> = all().map(|c| c.limit_dialog()).collect();
        assert_eq!(
            kinds,
            [
                Some(DialogKind::ArmsOwnContinue),
                None,
                Some(DialogKind::Retries),
                None
            ]
        );
        let chosen: Vec<Option<u8>> = all()
            .map(|c| c.answer_limit_dialog(&menu).map(|d| d.key))
            .collect();
        assert_eq!(chosen, [Some(3), None, Some(1), None]);
        let armed = b"<local-command-stdout>Claude Code will continue automatically shortly.";
        let answer = br#"{"type":"gemini","content":"done"}"#;
        let took: Vec<(bool, bool)> = all()
            .map(|c| (c.choice_took(armed), c.choice_took(answer)))
            .collect();
        assert_eq!(
            took,
            [(true, false), (false, false), (false, true), (false, false)]
        );
    }

    #[test]
    fn config_keys_reach_their_own_provider() {
        let text = "[dirs]\nclaude = \"/c\"\ncodex = \"/x\"\ngemini = \"/g\"\ncopilot = \"/p\"\n\
                    [binaries]\ngemini = \"/bin/g\"\n[watch]\ncodex = false\n";
        let cfg = crate::config::DaemonConfig::parse(text, Path::new("c.toml")).unwrap();
        let mut paths = Paths::new(Path::new("/h"), None);
        assert_eq!(of(Provider::Claude).home(&paths), Path::new("/h/.claude"));
        cfg.apply_dirs(&mut paths);
        let homes: Vec<&Path> = all().map(|c| c.home(&paths)).collect();
        assert_eq!(homes, ["/c", "/x", "/g", "/p"].map(Path::new));
        let bins: Vec<Option<&Path>> = all().map(|c| c.configured_binary(&cfg.binaries)).collect();
        assert_eq!(bins, [None, None, Some(Path::new("/bin/g")), None]);
        let watched: Vec<bool> = all().map(|c| c.watched(&cfg.watch)).collect();
        assert_eq!(watched, [true, false, true, true]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_gemini_process_holding_the_session_file_is_its_live_holder() {
        use crate::resume::resolve::Channel;
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("session-x.json");
        std::fs::write(&file, "{}").unwrap();
        // argv[0] `gemini`, the session file open on fd 3, outside tmux
        let mut child = std::process::Command::new("bash")
            .args(["-c", "exec 3<\"$1\"; exec -a gemini sleep 30", "_"])
            .arg(&file)
            .env_remove("TMUX")
            .env_remove("STY")
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut t = ResolvedTarget {
            incident_id: "i".into(),
            provider: Provider::Gemini,
            channel: Channel::Respawn,
            wrapper_session_id: None,
            provider_session_id: Some("x".into()),
            cwd: None,
            model: None,
            prompt: None,
            message: "Continue".into(),
            zag_log: None,
            native_file: Some(file.clone()),
            auto_approve: false,
            respawn_error: None,
            cwd_identity: None,
            permission_mode: None,
        };
        let cx = LiveContext {
            procfs: Procfs::system(),
            tmux: Tmux::new("/nonexistent/tmux"),
            socket_dirs: vec![d.path().to_path_buf()],
            home: d.path().to_path_buf(),
        };
        let found = (0..100).find_map(|_| match holder_by_process("gemini", &t, &cx).unwrap() {
            Holder::Live { pid: p, .. } if p == pid => Some(()),
            _ => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                None
            }
        });
        assert!(found.is_some(), "the gemini process was not found");
        // another session's file: not its holder
        t.native_file = Some(d.path().join("other.json"));
        t.provider_session_id = Some("y".into());
        assert_eq!(
            holder_by_process("gemini", &t, &cx).unwrap(),
            Holder::Nobody
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}
