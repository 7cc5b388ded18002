//! Delivery into a live session's terminal: type the text once, then
//! confirm by the session's own file growing with that turn.
//!
//! Why: an open TUI must be continued where it lives (see [`super::route`]).
//! Typing is the text literally, a pause, then Enter in a separate call,
//! never Esc ([`crate::live::tmux::Tmux::type_line`]). A keystroke is not a
//! delivery: only the session's file growing with the turn is, within a
//! deadline. Blocking: call it off the async loop.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::live::gnu_screen::Screen;
use crate::live::owner::Reach;
use crate::live::tmux::{Tmux, TmuxError};

use super::route::Expect;
use crate::provider::ProviderCli;

/// The pause between the text and its Enter: the TUIs read a paste burst
/// and a keypress differently, and an Enter inside the burst is a newline.
pub const TYPE_PAUSE: Duration = Duration::from_millis(400);

/// Why typing failed.
#[derive(Debug, thiserror::Error)]
pub enum TypeError {
    /// tmux or screen refused or failed.
    #[error(transparent)]
    Mux(#[from] TmuxError),
    /// The owner has no terminal we can type into.
    #[error("the session's process has no pane to type into")]
    Unreachable,
}

/// Type `text` then Enter into `reach`.
pub fn type_into(tmux: &Tmux, reach: &Reach, text: &str) -> Result<(), TypeError> {
    match reach {
        Reach::Pane(p) => Ok(tmux.type_line(p, text, TYPE_PAUSE)?),
        Reach::ScreenWindow(w) => Ok(Screen::default().type_line(w, text, TYPE_PAUSE)?),
        Reach::Unreachable { .. } => Err(TypeError::Unreachable),
    }
}

/// The session file's length now (0 when missing).
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Whether the bytes written after `len_before` show what `expect` waits
/// for: the typed text as a JSON string's content (a user turn), or what
/// the CLI writes when a choice in its limit dialog took
/// ([`ProviderCli::choice_took`]).
pub fn took(
    cli: &dyn ProviderCli,
    path: &Path,
    len_before: u64,
    text: &str,
    expect: &Expect,
) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let Some(new) = bytes.get(len_before as usize..) else {
        // Shorter than before: rewritten, not grown.
        return false;
    };
    let new = String::from_utf8_lossy(new);
    match expect {
        Expect::Turn => {
            // The text as it appears inside a JSON string.
            let quoted = serde_json::to_string(text).unwrap_or_default();
            let inner = quoted.trim_matches('"');
            !inner.is_empty() && new.contains(inner)
        }
        // A dialog choice: only the kind its CLI's dialog takes.
        e => e.is_dialog_choice_of(cli) && cli.choice_took(new.as_bytes()),
    }
}

/// Wait until [`took`] holds or `deadline` passes, polling every `every`.
pub fn confirm(
    cli: &dyn ProviderCli,
    path: &Path,
    len_before: u64,
    text: &str,
    expect: &Expect,
    deadline: Duration,
    every: Duration,
) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if took(cli, path, len_before, text, expect) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_growth_with_the_turn_confirms() {
        // whichever the CLI: a turn is read the same way
        for cli in crate::provider::all() {
            only_growth_with_the_turn_confirms_for(cli);
        }
    }

    fn only_growth_with_the_turn_confirms_for(cli: &dyn ProviderCli) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.jsonl");
        std::fs::write(
            &p,
            "{\"type\":\"user\",\"message\":{\"content\":\"Continue\"}}\n",
        )
        .unwrap();
        let before = file_len(&p);
        // the old turn does not count
        assert!(!took(cli, &p, before, "Continue", &Expect::Turn));
        std::fs::write(
            &p,
            format!(
                "{}{}",
                std::fs::read_to_string(&p).unwrap(),
                "{\"type\":\"user\",\"message\":{\"content\":\"say \\\"hi\\\"\"}}\n"
            ),
        )
        .unwrap();
        assert!(took(cli, &p, before, "say \"hi\"", &Expect::Turn));
        assert!(!took(cli, &p, before, "other", &Expect::Turn));
        assert!(!took(cli, &p, before, "x", &Expect::OwnContinueArmed));
        // a file shorter than before was rewritten: not a confirmation
        assert!(!took(cli, &p, u64::MAX, "Continue", &Expect::Turn));
        assert!(!confirm(
            cli,
            &p,
            file_len(&p),
            "Continue",
            &Expect::Turn,
            Duration::from_millis(30),
            Duration::from_millis(10)
        ));
    }

    #[test]
    fn a_dialog_choice_is_confirmed_only_as_its_own_cli_confirms_it() {
        use crate::provider::DialogKind;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.jsonl");
        std::fs::write(&p, "{}\n").unwrap();
        let before = file_len(&p);
        // what each CLI writes when its choice took: the menu's "continue
        // automatically" output, a retried request's answer record
        std::fs::write(
            &p,
            "{}\n{\"type\":\"system\",\"content\":\"will continue automatically shortly\"}\n\
             {\"type\":\"gemini\",\"content\":\"done\"}\n",
        )
        .unwrap();
        let mut kinds = Vec::new();
        for cli in crate::provider::all() {
            let kind = cli.limit_dialog();
            kinds.push(kind);
            assert_eq!(
                took(cli, &p, before, "2", &Expect::OwnContinueArmed),
                kind == Some(DialogKind::ArmsOwnContinue),
                "{}",
                cli.display_name()
            );
            assert_eq!(
                took(cli, &p, before, "1", &Expect::DialogAnswer),
                kind == Some(DialogKind::Retries),
                "{}",
                cli.display_name()
            );
            // nothing new: nothing took
            assert!(!took(cli, &p, file_len(&p), "2", &Expect::OwnContinueArmed));
        }
        // both kinds are exercised
        assert!(kinds.contains(&Some(DialogKind::ArmsOwnContinue)));
        assert!(kinds.contains(&Some(DialogKind::Retries)));
    }

    #[test]
    fn an_unreachable_owner_is_refused() {
        let t = Tmux::new("/nonexistent/tmux");
        let e = type_into(&t, &Reach::Unreachable { multiplexer: None }, "x").unwrap_err();
        assert!(matches!(e, TypeError::Unreachable));
    }
}
