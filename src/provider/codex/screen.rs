//! Codex's screens: its composer and its usage-limit line (wordings in
//! [`crate::provider::screen`]). Pure.

use crate::provider::screen::{clean, ScreenView};

/// Fill what Codex's screens show into `v`.
pub(crate) fn read_into(lines: &[&str], v: &mut ScreenView) {
    // Codex: the last `›` line is the composer; earlier ones are turns.
    let codex_lines: Vec<(usize, String)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.trim_start().strip_prefix('›').map(|r| (i, clean(r))))
        .collect();
    let limit = lines.iter().rposition(|l| {
        let t = l.trim_start();
        t.starts_with('■')
            && (t.contains("You’ve hit your usage limit")
                || t.contains("You've hit your usage limit"))
    });
    if let Some(li) = limit {
        let text = lines[li];
        v.codex_limit_retry_at = text.rfind("try again at ").map(|p| {
            clean(
                text[p + "try again at ".len()..]
                    .trim_end()
                    .trim_end_matches('.'),
            )
        });
    }
    if let Some((ci, text)) = codex_lines.last() {
        // The composer is the last `›` line, with nothing but blank lines and
        // the status/footer below it (it is not a `›` turn in the history).
        v.codex_composer = Some(text.clone());
        if let Some(li) = limit {
            v.codex_turn_after_limit = codex_lines.iter().any(|(i, _)| *i > li && i < ci);
        }
    }
}
