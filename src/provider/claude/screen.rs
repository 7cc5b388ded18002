//! Claude Code's screens: its limit menu, its auto-continue footer and its
//! prompt. Pure. Captured from the real TUI (Claude Code 2.1.332;
//! `tests/fixtures/live/`):
//!
//! - The limit menu (auto-continue off): `What do you want to do?`,
//!   `❯ 1. Stop and wait for limit to reset`, `2. Wait here, then continue
//!   automatically at 7:21pm` (after the reset: `… shortly`), `3. Upgrade
//!   your plan`, `Enter to confirm · Esc to cancel`. It stays up past the
//!   reset and sends nothing. Typing `2` then Enter into it (after the
//!   reset) chose "wait here": Claude armed its own continue (the footer
//!   below appeared) and continued by itself about a minute later.
//! - The auto-continue footer: `Continuing automatically at 7:21pm · Esc
//!   to cancel`, after the reset `Continuing shortly · Esc to cancel`; late
//!   2026 (from the CLI's trackers, not captured here): `Usage limit
//!   reached · continuing automatically at 7pm · esc or type to cancel`.
//! - The prompt: a `❯` line between two `─` rules (the prompt is followed
//!   by a no-break space when empty).

use crate::provider::screen::{boxed_prompt, clean, LimitMenu};

/// What Claude Code's screens show on one capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaudeScreen {
    /// Its limit menu is open.
    pub limit_menu: Option<LimitMenu>,
    /// Its auto-continue footer: `Some(Some("7:21pm"))` before the reset,
    /// `Some(None)` for "shortly".
    pub autocontinue_footer: Option<Option<String>>,
    /// Its prompt line: `Some("")` when empty, `Some(draft)` when the user
    /// left text in it.
    pub prompt: Option<String>,
}

fn menu_entry(line: &str) -> Option<(bool, u8, String)> {
    let t = line.trim();
    let (cursor, t) = match t.strip_prefix('❯') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, t),
    };
    let (num, label) = t.split_once(". ")?;
    let n: u8 = num.parse().ok()?;
    Some((cursor, n, clean(label)))
}

/// Claude's auto-continue countdown line: `Continuing automatically at
/// 7:21pm · Esc to cancel` (2.1.332), `Usage limit reached · continuing
/// automatically at 7pm · esc or type to cancel` (late 2026), `Continuing
/// shortly · Esc to cancel`. `Some(at)` for one of them, the time when it
/// names one.
pub(crate) fn autocontinue_footer(line: &str) -> Option<Option<String>> {
    let t = line.trim();
    // ASCII lowering keeps byte offsets: positions in `folded` cut `t`.
    let folded = t.to_ascii_lowercase();
    let end = ["· esc to cancel", "· esc or type to cancel"]
        .iter()
        .find(|e| folded.ends_with(*e))
        .map(|e| folded.len() - e.len())?;
    const AT: &str = "continuing automatically at ";
    if let Some(i) = folded[..end].find(AT) {
        return Some(Some(clean(&t[i + AT.len()..end])));
    }
    let body = folded[..end].trim_end();
    (body.ends_with("continuing shortly") || body.ends_with("continuing automatically"))
        .then_some(None)
}

/// What Claude's screens show in `lines`.
pub(crate) fn read(lines: &[&str]) -> ClaudeScreen {
    let mut v = ClaudeScreen::default();
    // Claude's limit menu: the question, numbered entries, the confirm line.
    if let Some(q) = lines
        .iter()
        .rposition(|l| l.trim() == "What do you want to do?")
    {
        let has_wait = lines[q..]
            .iter()
            .any(|l| l.contains("Stop and wait for limit to reset"));
        let has_confirm = lines[q..]
            .iter()
            .any(|l| l.trim().starts_with("Enter to confirm · Esc to cancel"));
        if has_wait && has_confirm {
            let mut menu = LimitMenu {
                options: Vec::new(),
                selected: None,
            };
            for (cursor, n, label) in lines[q + 1..].iter().filter_map(|l| menu_entry(l)) {
                if cursor {
                    menu.selected = Some(n);
                }
                menu.options.push((n, label));
            }
            v.limit_menu = Some(menu);
        }
    }

    for l in lines {
        if let Some(footer) = autocontinue_footer(l) {
            v.autocontinue_footer = Some(footer);
        }
    }

    // Claude's prompt: a `❯` line right after a rule, with a rule after it.
    v.prompt = boxed_prompt(lines);
    v
}
