//! Claude Code's screens: its limit menu, its auto-continue footer and its
//! prompt (wordings in [`crate::provider::screen`]). Pure.

use crate::provider::screen::{clean, is_rule, LimitMenu, ScreenView};

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

/// Fill what Claude's screens show into `v`.
pub(crate) fn read_into(lines: &[&str], v: &mut ScreenView) {
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
            v.claude_limit_menu = Some(menu);
        }
    }

    for l in lines {
        if let Some(footer) = autocontinue_footer(l) {
            v.claude_autocontinue_footer = Some(footer);
        }
    }

    // Claude's prompt: a `❯` line right after a rule, with a rule after it.
    for i in 1..lines.len().saturating_sub(1) {
        if is_rule(lines[i - 1]) && is_rule(lines[i + 1]) {
            if let Some(rest) = lines[i].trim_start().strip_prefix('❯') {
                v.claude_prompt = Some(clean(rest));
            }
        }
    }
}
