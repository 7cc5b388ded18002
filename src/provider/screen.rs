//! What a captured TUI pane shows, read from `tmux capture-pane -p` text:
//! the generic vocabulary every provider's screen reader answers in
//! ([`Shows`]), and the few shapes TUIs share (a rule, a prompt boxed by
//! two rules, the CLI's input being the last region of the screen). Pure.
//! Each provider reads its own screens in its room (`provider/<name>/`);
//! Claude Code's and Codex's are read together by [`super::screen_view`].
//!
//! Why: before typing into a live session the daemon must know what is on
//! screen. Typing into a limit menu would pick a menu entry, not send a
//! prompt; typing while the CLI's own continue counts down would race it;
//! typing after a draft the user left in the prompt would append to their
//! text. The wordings each reader knows were captured from the real TUIs
//! (`tests/fixtures/live/`, `tests/fixtures/real/`) and are listed in its
//! module.

/// A limit menu or dialog: its numbered entries (Claude's
/// `/rate-limit-options`, Gemini CLI's usage-limit dialog).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitMenu {
    /// `(number, label)` of each entry, in order.
    pub options: Vec<(u8, String)>,
    /// The entry under the `❯` cursor.
    pub selected: Option<u8>,
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

/// The prompt a TUI draws as a `❯` line right after a rule with a rule
/// after it (Claude Code's and Copilot CLI's): `Some("")` when empty,
/// `Some(draft)` when the user left text in it; the last one on screen.
pub(crate) fn boxed_prompt(lines: &[&str]) -> Option<String> {
    let mut prompt = None;
    for i in 1..lines.len().saturating_sub(1) {
        if is_rule(lines[i - 1]) && is_rule(lines[i + 1]) {
            if let Some(rest) = lines[i].trim_start().strip_prefix('❯') {
                prompt = Some(clean(rest));
            }
        }
    }
    prompt
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
    use crate::provider::screen_view::read;

    use crate::provider::live_fixture as fixture;

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
