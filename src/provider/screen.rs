//! What a captured TUI pane shows, read from `tmux capture-pane -p` text.
//! Pure. Each provider reads its own screens in its room
//! (`provider/claude/screen.rs`, `provider/codex/screen.rs`); this module
//! holds what they fill and what it means for delivery.
//!
//! Why: before typing into a live session the daemon must know what is on
//! screen. Typing into Claude's `/rate-limit-options` menu would pick a menu
//! entry, not send a prompt; typing while Claude's own auto-continue counts
//! down would race it; typing after a draft the user left in the prompt
//! would append to their text. All wordings below were captured from the
//! real TUIs (Claude Code 2.1.332, Codex 0.171.0; `tests/fixtures/live/`):
//!
//! - Claude's limit menu (auto-continue off): `What do you want to do?`,
//!   `❯ 1. Stop and wait for limit to reset`, `2. Wait here, then continue
//!   automatically at 7:21pm` (after the reset: `… shortly`), `3. Upgrade
//!   your plan`, `Enter to confirm · Esc to cancel`. It stays up past the
//!   reset and sends nothing. Typing `2` then Enter into it (after the
//!   reset) chose "wait here": Claude armed its own continue (the footer
//!   below appeared) and continued by itself about a minute later.
//! - Claude's auto-continue footer: `Continuing automatically at 7:21pm ·
//!   Esc to cancel`, after the reset `Continuing shortly · Esc to cancel`;
//!   late 2026 (from the CLI's trackers, not captured here): `Usage limit
//!   reached · continuing automatically at 7pm · esc or type to cancel`.
//! - Claude's prompt: a `❯` line between two `─` rules (the prompt is
//!   followed by a no-break space when empty).
//! - Codex's composer: the last `›` line (`› Ask Codex to do anything` when
//!   empty: the placeholder, dim on screen, plain in the capture).
//! - Codex's limit line: `■ You’ve hit your usage limit. … try again at 9:24 PM.`
//!   (it stays in the scrollback after a later turn, so it is history, not state).

/// Claude's `/rate-limit-options` menu.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitMenu {
    /// `(number, label)` of each entry, in order.
    pub options: Vec<(u8, String)>,
    /// The entry under the `❯` cursor.
    pub selected: Option<u8>,
}

/// Everything this module recognises on one screen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScreenView {
    /// Claude's limit menu is open.
    pub claude_limit_menu: Option<LimitMenu>,
    /// Claude's auto-continue footer: `Some(Some("7:21pm"))` before the
    /// reset, `Some(None)` for "shortly".
    pub claude_autocontinue_footer: Option<Option<String>>,
    /// Claude's prompt line: `Some("")` when empty, `Some(draft)` when the
    /// user left text in it.
    pub claude_prompt: Option<String>,
    /// Codex's composer line, placeholder included (see [`codex_composer_empty`]).
    pub codex_composer: Option<String>,
    /// The retry text of the last Codex usage-limit line (`9:24 PM`, or
    /// `Dec 3rd, 2026 5:34 PM`), when one is on screen.
    pub codex_limit_retry_at: Option<String>,
    /// Whether a `›` user turn follows the last Codex limit line (the session
    /// went on after it).
    pub codex_turn_after_limit: bool,
}

/// The placeholder an empty Codex composer shows (as captured).
pub const CODEX_EMPTY_COMPOSER: &str = "Ask Codex to do anything";

/// Whether a composer text is the empty composer's placeholder.
pub fn codex_composer_empty(text: &str) -> bool {
    text == CODEX_EMPTY_COMPOSER
}

/// What the screen means for delivery, strongest signal first. Generic:
/// each provider's screen reader says which of these its TUI shows, and
/// the delivery route decides from that alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shows {
    /// A limit dialog or menu with numbered entries (Claude's
    /// `/rate-limit-options` menu, Gemini CLI's `Usage limit reached for …`
    /// dialog): typing would choose an entry. Which one the daemon may
    /// choose is the provider's call ([`super::ProviderCli::answer_limit_dialog`]).
    LimitDialog(LimitMenu),
    /// The CLI's own continue is counting down (Claude's footer): do not type.
    OwnContinueCountdown {
        /// The printed time, `None` for "shortly".
        at: Option<String>,
    },
    /// The CLI's input with the user's unsent draft in it.
    Draft(String),
    /// The CLI's empty input (Codex's composer showing its placeholder
    /// included): ready to type into.
    Idle,
    /// The CLI is working on a turn (Gemini's `Thinking…`, Copilot's
    /// `Working` while it retries): typing now would queue behind it.
    Busy(String),
    /// Nothing recognised (a shell, a pager, a dialog we do not know).
    Unknown,
}

/// What a choice in a CLI's limit dialog does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogKind {
    /// It arms the CLI's own continue, which then has the incident; the
    /// number is confirmed with Enter (Claude's `/rate-limit-options`).
    ArmsOwnContinue,
    /// It retries the request (or stops) at once, taken by its number
    /// alone, without Enter (Gemini CLI's usage-limit dialog).
    Retries,
}

/// The entry the daemon chooses in a limit dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialogChoice {
    /// The entry's number, typed as the choice.
    pub key: u8,
    /// What the entry does, for people ("Keep trying").
    pub label: String,
}

/// A horizontal rule (`─` only, ten or more): what TUIs draw around their input.
pub(crate) fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t.chars().count() >= 10 && t.chars().all(|c| c == '─')
}

/// A captured text without its surrounding blanks.
pub(crate) fn clean(s: &str) -> String {
    s.trim_matches(|c: char| c.is_whitespace()).to_string()
}

/// Reads a captured screen.
pub fn read(screen: &str) -> ScreenView {
    let lines: Vec<&str> = screen.lines().collect();
    let mut v = ScreenView::default();

    crate::provider::claude::screen::read_into(&lines, &mut v);
    crate::provider::codex::screen::read_into(&lines, &mut v);
    v
}

impl ScreenView {
    /// What the screen means, strongest signal first: a menu or a countdown
    /// beats a prompt (Claude keeps drawing the prompt under its footer).
    pub fn shows(&self) -> Shows {
        if let Some(m) = &self.claude_limit_menu {
            return Shows::LimitDialog(m.clone());
        }
        if let Some(at) = &self.claude_autocontinue_footer {
            return Shows::OwnContinueCountdown { at: at.clone() };
        }
        match (&self.claude_prompt, &self.codex_composer) {
            (Some(p), _) if p.is_empty() => Shows::Idle,
            (Some(p), _) => Shows::Draft(p.clone()),
            (None, Some(c)) if codex_composer_empty(c) => Shows::Idle,
            (None, Some(c)) => Shows::Draft(c.clone()),
            (None, None) => Shows::Unknown,
        }
    }
}

/// Whether a non-blank line below the CLI's input is someone else's: a
/// shell prompt, a job-control notice (`[1]+  Stopped  claude`), the
/// suspend notice a CLI prints on Ctrl-Z, or a shell's error.
fn foreign_line(line: &str) -> bool {
    let t = line.trim();
    let job_notice = t.starts_with('[')
        && t[1..].split_once(']').is_some_and(|(n, rest)| {
            n.chars().all(|c| c.is_ascii_digit())
                && ["Stopped", "Running", "Done", "Terminated", "Killed", "Exit"]
                    .iter()
                    .any(|w| {
                        rest.trim_start_matches(['+', '-'])
                            .trim_start()
                            .starts_with(w)
                    })
        });
    let shell_prompt = ['$', '#', '%', '>'].iter().any(|c| t.ends_with(*c));
    job_notice
        || shell_prompt
        || t.contains("is suspended")
        || t.contains("command not found")
        || t.contains("to bring it back")
}

/// The most non-blank lines a TUI draws below its input (Claude: the
/// limit notice, the countdown and the mode line; Codex: the model line
/// and the shortcuts line).
const MAX_LINES_BELOW_INPUT: usize = 4;

/// Whether the CLI's own input (Claude's `❯` box or limit menu, Codex's
/// composer) is the last region of the screen: nothing below it but the
/// TUI's own footer lines. An old frame left above a shell prompt after a
/// Ctrl-Z (`[1]+ Stopped`, `$ `) is not: keystrokes would go to the shell.
/// Pure.
pub fn cli_input_is_last(screen: &str) -> bool {
    let lines: Vec<&str> = screen.lines().collect();
    let mut anchor: Option<usize> = None;
    let mut mark = |i: usize| anchor = Some(anchor.map_or(i, |a: usize| a.max(i)));
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        // Claude's limit menu ends with its confirm line.
        if t.starts_with("Enter to confirm · Esc to cancel") {
            mark(i);
        }
        // Claude's prompt box: `❯` between two rules; its bottom rule.
        if i >= 1
            && i + 1 < lines.len()
            && is_rule(lines[i - 1])
            && is_rule(lines[i + 1])
            && t.starts_with('❯')
        {
            mark(i + 1);
        }
        // Codex's composer: a `›` line.
        if t.starts_with('›') {
            mark(i);
        }
        // Gemini's input box: a `>` line a few lines below a rule (its hint
        // line and blank lines between).
        if t.starts_with('>') && (1..=4).any(|k| i >= k && is_rule(lines[i - k])) {
            mark(i);
        }
        // Gemini's limit dialog: the bottom of its box, below its choices.
        if t.starts_with('╰')
            && lines[..i]
                .iter()
                .any(|l| l.trim_start_matches(['│', ' ']).starts_with("● "))
        {
            mark(i);
        }
    }
    let Some(a) = anchor else { return false };
    let below: Vec<&str> = lines[a + 1..]
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    below.len() <= MAX_LINES_BELOW_INPUT && !below.iter().any(|l| foreign_line(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../tests/fixtures/live/", $name))
        };
    }

    #[test]
    fn captured_screens_read_as_what_they_show() {
        let menu = |wait: &str| {
            Shows::LimitDialog(LimitMenu {
                options: vec![
                    (1, "Stop and wait for limit to reset".into()),
                    (2, format!("Wait here, then continue automatically {wait}")),
                    (3, "Upgrade your plan".into()),
                ],
                selected: Some(1),
            })
        };
        let table: &[(&str, Shows)] = &[
            (fixture!("screen_claude_limit_menu.txt"), menu("at 7:21pm")),
            (
                fixture!("screen_claude_limit_menu_after_reset.txt"),
                menu("shortly"),
            ),
            (
                fixture!("screen_claude_autocontinue_armed.txt"),
                Shows::OwnContinueCountdown {
                    at: Some("7:21pm".into()),
                },
            ),
            (
                fixture!("screen_claude_autocontinue_shortly.txt"),
                Shows::OwnContinueCountdown { at: None },
            ),
            (
                fixture!("screen_claude_idle_after_continue.txt"),
                Shows::Idle,
            ),
            (
                fixture!("screen_claude_after_menu_choice_2.txt"),
                Shows::OwnContinueCountdown { at: None },
            ),
            (fixture!("screen_claude_menu_dismissed.txt"), Shows::Idle),
            (fixture!("screen_codex_ready.txt"), Shows::Idle),
            (fixture!("screen_codex_limit.txt"), Shows::Idle),
            (fixture!("screen_codex_after_typed.txt"), Shows::Idle),
            ("root@host:~$ ", Shows::Unknown),
            ("", Shows::Unknown),
        ];
        for (i, (screen, want)) in table.iter().enumerate() {
            assert_eq!(&read(screen).shows(), want, "case {i}");
        }
    }

    #[test]
    fn codex_limit_line_and_what_followed_it() {
        let at_limit = read(fixture!("screen_codex_limit.txt"));
        assert_eq!(at_limit.codex_limit_retry_at.as_deref(), Some("9:24 PM"));
        assert!(!at_limit.codex_turn_after_limit);
        let after = read(fixture!("screen_codex_after_typed.txt"));
        assert_eq!(after.codex_limit_retry_at.as_deref(), Some("9:24 PM"));
        assert!(after.codex_turn_after_limit);
        assert_eq!(
            read(fixture!("screen_codex_ready.txt")).codex_limit_retry_at,
            None
        );
        let other_day = "■ You've hit your usage limit. … or try again at Dec 3rd, 2026 5:34 PM.\n\n› Ask Codex to do anything\n";
        assert_eq!(
            read(other_day).codex_limit_retry_at.as_deref(),
            Some("Dec 3rd, 2026 5:34 PM")
        );
    }

    #[test]
    fn a_draft_in_the_prompt_is_reported() {
        let rule = "─".repeat(40);
        let claude = format!("❯ hi\n{rule}\n❯ half-typed thought\n{rule}\n  ⏵⏵ auto mode on\n");
        assert_eq!(
            read(&claude).shows(),
            Shows::Draft("half-typed thought".into())
        );
        let codex = "› hi\n\n› fix the tests please\n\n  ? for shortcuts\n";
        assert_eq!(
            read(codex).shows(),
            Shows::Draft("fix the tests please".into())
        );
    }

    #[test]
    fn late_2026_countdown_lines_are_read_as_the_older_ones() {
        let table: &[(&str, Option<Option<&str>>)] = &[
            ("  Continuing automatically at 7:21pm · Esc to cancel", Some(Some("7:21pm"))),
            ("Continuing shortly · Esc to cancel", Some(None)),
            (
                "Usage limit reached · continuing automatically at 7pm · esc or type to cancel",
                Some(Some("7pm")),
            ),
            (
                "Usage limit reached again after you continued · continuing automatically at 8:05pm · esc or type to cancel",
                Some(Some("8:05pm")),
            ),
            ("Usage limit reached · continuing shortly · esc or type to cancel", Some(None)),
            // not a countdown
            ("Usage limit reached · continuing automatically at 7pm", None),
            ("Enter to confirm · Esc to cancel", None),
            ("You've hit your 5-hour limit · resets 7pm (UTC)", None),
        ];
        for (line, want) in table {
            assert_eq!(
                crate::provider::claude::screen::autocontinue_footer(line),
                want.map(|at| at.map(str::to_string)),
                "{line}"
            );
        }
        let rule = "─".repeat(40);
        let screen = format!(
            "You've hit your 5-hour limit · resets 7pm (UTC)\n{rule}\n❯ \u{a0}\n{rule}\n  Usage limit reached · continuing automatically at 7pm · esc or type to cancel\n"
        );
        assert_eq!(
            read(&screen).shows(),
            Shows::OwnContinueCountdown {
                at: Some("7pm".into())
            }
        );
    }

    #[test]
    fn a_menu_without_its_confirm_line_is_not_the_limit_menu() {
        let s = "What do you want to do?\n❯ 1. Stop and wait for limit to reset\n";
        assert_eq!(read(s).claude_limit_menu, None);
    }

    #[test]
    fn the_cli_input_is_the_last_region_of_every_captured_screen() {
        for (i, s) in [
            fixture!("screen_claude_limit_menu.txt"),
            fixture!("screen_claude_limit_menu_after_reset.txt"),
            fixture!("screen_claude_autocontinue_armed.txt"),
            fixture!("screen_claude_idle_after_continue.txt"),
            fixture!("screen_claude_menu_dismissed.txt"),
            fixture!("screen_codex_ready.txt"),
            fixture!("screen_codex_limit.txt"),
            fixture!("screen_codex_after_typed.txt"),
        ]
        .iter()
        .enumerate()
        {
            assert!(cli_input_is_last(s), "case {i}");
        }
    }

    #[test]
    fn an_old_frame_above_a_shell_prompt_is_not_the_cli() {
        // What a Ctrl-Z leaves: Claude's last frame, its suspend notice, the
        // shell's job notice and prompt below it.
        let menu = fixture!("screen_claude_limit_menu_after_reset.txt");
        let suspended = format!(
            "{menu}\nClaude Code is suspended. Run `fg` to bring it back.\n\n[1]+  Stopped                 claude\nroot@host:~/proj# \n"
        );
        assert!(!cli_input_is_last(&suspended));
        // it still reads as the menu: the screen alone would have typed
        assert!(matches!(read(&suspended).shows(), Shows::LimitDialog(_)));
        let codex = format!(
            "{}\n[1]+  Stopped                 codex\nuser@box:~$ ",
            fixture!("screen_codex_ready.txt")
        );
        assert!(!cli_input_is_last(&codex));
        // a shell prompt alone, a pager, nothing
        assert!(!cli_input_is_last("user@box:~$ "));
        assert!(!cli_input_is_last(""));
        let idle = fixture!("screen_claude_idle_after_continue.txt");
        assert!(!cli_input_is_last(&format!(
            "{idle}\n$ 2\nbash: 2: command not found\n$ "
        )));
    }

    #[test]
    fn gemini_and_copilot_inputs_are_last_until_a_shell_is_below() {
        macro_rules! real {
            ($name:literal) => {
                include_str!(concat!("../../tests/fixtures/real/", $name))
            };
        }
        for (i, s) in [
            real!("gemini-0.61.0/screen_draft.txt"),
            real!("gemini-0.61.0/screen_after_keep_trying.txt"),
            real!("gemini-0.61.0/screen_limit_dialog_pro.txt"),
            real!("gemini-0.61.0/screen_limit_dialog_router.txt"),
            real!("copilot-1.0.102/screen_after_limit.txt"),
            real!("copilot-1.0.102/screen_after_typed_continue.txt"),
        ]
        .iter()
        .enumerate()
        {
            assert!(cli_input_is_last(s), "case {i}");
            let stopped = format!("{s}\n[1]+  Stopped                 node\nuser@box:~/proj$ ");
            assert!(!cli_input_is_last(&stopped), "case {i} stopped");
        }
    }
}
