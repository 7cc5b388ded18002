//! Codex's screens: its composer and its usage-limit line. Pure. Captured
//! from the real TUI (Codex 0.171.0; `tests/fixtures/live/`):
//!
//! - The composer: the last `›` line (`› Ask Codex to do anything` when
//!   empty: the placeholder, dim on screen, plain in the capture).
//! - The limit line: `■ You’ve hit your usage limit. … try again at 9:24 PM.`
//!   (it stays in the scrollback after a later turn, so it is history, not state).

use crate::provider::screen::clean;

/// The placeholder an empty Codex composer shows (as captured).
pub const EMPTY_COMPOSER: &str = "Ask Codex to do anything";

/// Whether a composer text is the empty composer's placeholder.
pub fn composer_empty(text: &str) -> bool {
    text == EMPTY_COMPOSER
}

/// What Codex's screens show on one capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodexScreen {
    /// Its composer line, placeholder included (see [`composer_empty`]).
    pub composer: Option<String>,
    /// The retry text of its last usage-limit line (`9:24 PM`, or `Dec
    /// 3rd, 2026 5:34 PM`), when one is on screen.
    pub limit_retry_at: Option<String>,
    /// Whether a `›` user turn follows its last limit line (the session
    /// went on after it).
    pub turn_after_limit: bool,
}

/// What Codex's screens show in `lines`.
pub(crate) fn read(lines: &[&str]) -> CodexScreen {
    let mut v = CodexScreen::default();
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
        v.limit_retry_at = text.rfind("try again at ").map(|p| {
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
        v.composer = Some(text.clone());
        if let Some(li) = limit {
            v.turn_after_limit = codex_lines.iter().any(|(i, _)| *i > li && i < ci);
        }
    }
    v
}
