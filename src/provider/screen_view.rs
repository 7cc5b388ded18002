//! Claude Code's and Codex's screens, read together: one reader for the
//! two TUIs, as the captures were read (`tests/fixtures/live/`), Claude's
//! signals first. Pure. Each room reads its own lines
//! (`provider/claude/screen.rs`, `provider/codex/screen.rs`, with the
//! wordings they know); this module puts the two side by side and says
//! what they mean in the generic [`Shows`]. Both rooms' `read_screen` is
//! [`read`] followed by [`ScreenView::shows`].

use super::claude::screen::{self as claude_screen, ClaudeScreen};
use super::codex::screen::{self as codex_screen, CodexScreen};
use super::screen::Shows;

/// Everything the two readers recognise on one screen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScreenView {
    /// What Claude Code's screens show on it.
    pub claude: ClaudeScreen,
    /// What Codex's screens show on it.
    pub codex: CodexScreen,
}

/// Reads a captured screen.
pub fn read(screen: &str) -> ScreenView {
    let lines: Vec<&str> = screen.lines().collect();
    ScreenView {
        claude: claude_screen::read(&lines),
        codex: codex_screen::read(&lines),
    }
}

impl ScreenView {
    /// What the screen means, strongest signal first: a menu or a countdown
    /// beats a prompt (Claude keeps drawing the prompt under its footer).
    pub fn shows(&self) -> Shows {
        if let Some(m) = &self.claude.limit_menu {
            return Shows::LimitDialog(m.clone());
        }
        if let Some(at) = &self.claude.autocontinue_footer {
            return Shows::OwnContinueCountdown { at: at.clone() };
        }
        match (&self.claude.prompt, &self.codex.composer) {
            (Some(p), _) if p.is_empty() => Shows::Idle,
            (Some(p), _) => Shows::Draft(p.clone()),
            (None, Some(c)) if codex_screen::composer_empty(c) => Shows::Idle,
            (None, Some(c)) => Shows::Draft(c.clone()),
            (None, None) => Shows::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::screen::LimitMenu;

    use crate::provider::live_fixture as fixture;

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
        assert_eq!(at_limit.codex.limit_retry_at.as_deref(), Some("9:24 PM"));
        assert!(!at_limit.codex.turn_after_limit);
        let after = read(fixture!("screen_codex_after_typed.txt"));
        assert_eq!(after.codex.limit_retry_at.as_deref(), Some("9:24 PM"));
        assert!(after.codex.turn_after_limit);
        assert_eq!(
            read(fixture!("screen_codex_ready.txt"))
                .codex
                .limit_retry_at,
            None
        );
        let other_day = "■ You've hit your usage limit. … or try again at Dec 3rd, 2026 5:34 PM.\n\n› Ask Codex to do anything\n";
        assert_eq!(
            read(other_day).codex.limit_retry_at.as_deref(),
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
                claude_screen::autocontinue_footer(line),
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
        assert_eq!(read(s).claude.limit_menu, None);
    }
}
