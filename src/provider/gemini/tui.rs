//! Gemini CLI's interactive TUI: who holds a session, what its screen
//! shows, and when to look at it. Captured with Gemini CLI 0.61.0 in tmux
//! against a fake API (`tests/fixtures/real/gemini-0.61.0/`).
//!
//! Why: an open Gemini TUI at a quota writes nothing of the limit to its
//! files while its dialog is up: the chat ends with the user turn, nothing
//! more. The dialog is on screen only (`Usage limit reached for all Pro
//! models.` … `● 1. Keep trying` / `2. Stop`, or for a model it can switch
//! from, `1. Switch to <model>` / `2. Stop`), and the TUI sends nothing
//! more by itself. It keeps no lock or registry, and holds no file open, so
//! its holder is told by its working directory. A second process on the
//! same session (`gemini --resume <id> -p …`) appends its turn to the chat,
//! and the TUI's next write (`$set` of its own history) drops that turn
//! again: never resume headless beside it.
//!
//! What the real TUI did with each choice after the reset: `1` (Keep trying)
//! sent the same prompt again and its answer was appended to the chat;
//! `2` (Stop) on the pinned-model dialog dropped the prompt and wrote an
//! `error` record (`[API Error: You have exhausted your daily quota …]`).
//! So the daemon chooses "Keep trying" (by its number, no Enter needed, an
//! Enter after it lands in the empty input box and does nothing), and
//! confirms by an answer in the chat. A dialog without "Keep trying" gets
//! "Stop" (on the Auto model's router dialog the turn then went on with the
//! main model); an answer confirms it, else the daemon waits and never
//! types again.
//!
//! Looking costs nothing while nothing runs: only a chat whose last record
//! is a user turn with no answer after it is looked at, a few times, only
//! while it stays quiet, and only panes whose foreground process is that
//! Gemini ([`probe`]).

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::live::owner::{reach_of, LiveError, Reach};
use crate::live::proc::{Pid, Procfs};
use crate::live::tmux::{Pane, Tmux};
use crate::provider::screen::{clean, is_rule, LimitMenu, Shows};
use crate::provider::Holder;
use crate::provider::LiveContext;
use crate::provider::ResolvedTarget;

/// The first words of the dialog's title line.
pub const DIALOG_TITLE: &str = "Usage limit reached for ";
/// The empty input box's placeholder.
pub const EMPTY_INPUT: &str = "Type your message or @path/to/file";
/// The dialog entry that retries the same request.
pub const KEEP_TRYING: &str = "Keep trying";
/// The dialog entry that gives up on the request.
pub const STOP: &str = "Stop";

/// A line of the dialog's box without its frame.
fn unframed(line: &str) -> &str {
    line.trim().trim_matches('│').trim()
}

/// The dialog's title (`Usage limit reached for all Pro models.`), when the
/// dialog is on screen.
pub fn dialog_title(screen: &str) -> Option<String> {
    screen
        .lines()
        .rev()
        .map(unframed)
        .find(|l| l.starts_with(DIALOG_TITLE))
        .map(str::to_string)
}

fn dialog(lines: &[&str]) -> Option<LimitMenu> {
    let title = lines
        .iter()
        .rposition(|l| unframed(l).starts_with(DIALOG_TITLE))?;
    let mut menu = LimitMenu {
        options: Vec::new(),
        selected: None,
    };
    for l in &lines[title + 1..] {
        if l.trim_start().starts_with('╰') {
            break;
        }
        let t = unframed(l);
        let (cursor, t) = match t.strip_prefix('●') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, t),
        };
        let Some((num, label)) = t.split_once(". ") else {
            continue;
        };
        let Ok(n) = num.parse::<u8>() else {
            continue;
        };
        if cursor {
            menu.selected = Some(n);
        }
        menu.options.push((n, clean(label)));
    }
    (!menu.options.is_empty()).then_some(menu)
}

/// What a captured Gemini pane shows, strongest signal first: the limit
/// dialog, a turn in progress, the input box (empty or with a draft).
pub fn read_screen(screen: &str) -> Shows {
    let lines: Vec<&str> = screen.lines().collect();
    if let Some(menu) = dialog(&lines) {
        return Shows::LimitDialog(menu);
    }
    if let Some(l) = lines.iter().find(|l| l.contains("(esc to cancel")) {
        // `⠹ Thinking... (esc to cancel, 4s)`, then the right-hand hint
        let end = l
            .find("(esc to cancel")
            .and_then(|p| l[p..].find(')').map(|q| p + q + 1));
        return Shows::Busy(clean(&l[..end.unwrap_or(l.len())]));
    }
    // The input box: the first `>` line below the last rule (turns in the
    // history above it are `>` lines too).
    let Some(rule) = lines.iter().rposition(|l| is_rule(l)) else {
        return Shows::Unknown;
    };
    for l in &lines[rule + 1..] {
        if let Some(rest) = l.trim_start().strip_prefix('>') {
            let text = clean(rest);
            return if text.is_empty() || text == EMPTY_INPUT {
                Shows::Idle
            } else {
                Shows::Draft(text)
            };
        }
    }
    Shows::Unknown
}

/// The dialog entry the daemon chooses at the reset, with its label:
/// "Keep trying" when offered, else "Stop" (never a model switch: that is
/// the user's call).
pub fn choice(menu: &LimitMenu) -> Option<(u8, &'static str)> {
    let find = |label: &'static str| {
        menu.options
            .iter()
            .find(|(_, l)| l.eq_ignore_ascii_case(label))
            .map(|(n, _)| (*n, label))
    };
    find(KEEP_TRYING).or_else(|| find(STOP))
}

pub use crate::provider::OpenTurn;

fn user_text(v: &Value) -> Option<String> {
    let text = match v.get("content")? {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => return None,
    };
    // The first "user" record of every chat is the CLI's own context.
    (!text.trim().is_empty() && !text.starts_with("<session_context>")).then_some(text)
}

/// Folds one chat record into the turn in flight (pure): a user turn opens
/// it; an answer, an error or an info record closes it; a `$set` of the
/// whole history (a rollback, or another process's rewrite) leaves it open
/// only when that history still ends with a user turn.
pub fn fold_turn(line: &[u8], open: &mut Option<OpenTurn>) {
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        return;
    };
    if let Some(set) = v.get("$set") {
        if let Some(msgs) = set.get("messages").and_then(Value::as_array) {
            *open = msgs.last().and_then(|m| {
                (m.get("type").and_then(Value::as_str) == Some("user"))
                    .then(|| user_text(m))
                    .flatten()
                    .map(|text| OpenTurn {
                        text,
                        at: timestamp(m),
                    })
            });
        }
        return;
    }
    match v.get("type").and_then(Value::as_str) {
        Some("user") => {
            if let Some(text) = user_text(&v) {
                *open = Some(OpenTurn {
                    text,
                    at: timestamp(&v),
                });
            }
        }
        Some("gemini") | Some("error") | Some("info") => *open = None,
        _ => {}
    }
}

fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    v.get("timestamp")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The turn a whole chat leaves open (pure).
pub fn open_turn(chat: &[u8]) -> Option<OpenTurn> {
    let mut open = None;
    for line in chat.split(|&b| b == b'\n') {
        fold_turn(line, &mut open);
    }
    open
}

/// Whether the bytes a chat gained after a typed dialog choice show that the
/// request went through: an answer record.
pub fn answered(new_bytes: &[u8]) -> bool {
    new_bytes.split(|&b| b == b'\n').any(|l| {
        serde_json::from_slice::<Value>(l)
            .ok()
            .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("gemini"))
    })
}

/// The directory a chat's project stands for: Gemini keeps it in
/// `tmp/<project>/.project_root` beside `chats/`.
pub fn project_root(chat: &Path) -> Option<PathBuf> {
    let dir = chat.parent()?.parent()?;
    let text = std::fs::read_to_string(dir.join(".project_root")).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| PathBuf::from(t))
}

/// Whether `argv` runs Gemini CLI (`gemini …`, or `node …/gemini …` as the
/// npm launcher and its relaunched child do).
pub fn is_gemini(argv: &[String]) -> bool {
    argv.iter().take(3).any(|a| {
        Path::new(a)
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "gemini" || n == "gemini.js")
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// The Gemini processes that may hold a session: those running in `cwd`
/// (Gemini finds a session by its project directory), or with no `cwd`
/// known, those naming `session_id` on their command line; ascending by
/// pid: the npm launcher first, its relaunched child after it (both in the
/// same pane).
pub fn processes(procfs: &Procfs, cwd: Option<&Path>, session_id: Option<&str>) -> Vec<Pid> {
    let me = std::process::id();
    procfs
        .pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let Some(argv) = procfs.cmdline(pid) else {
                return false;
            };
            if !is_gemini(&argv) {
                return false;
            }
            // Gemini finds a session by its project directory: a process
            // elsewhere cannot hold it, whatever its command line names.
            match cwd {
                Some(c) => procfs.cwd(pid).is_some_and(|p| same_dir(&p, c)),
                None => session_id.is_some_and(|id| argv.iter().any(|a| a == id)),
            }
        })
        .collect()
}

/// Who holds Gemini session `t` now: a Gemini process in the session's
/// directory or naming its id. Gemini keeps no registry and no file open,
/// so another Gemini session open in the same directory also counts: the
/// daemon then waits for it rather than resume beside it.
pub fn holder(t: &ResolvedTarget, cx: &LiveContext) -> Result<Holder, LiveError> {
    let cwd = t.cwd.as_deref().map(Path::new);
    let pids = processes(&cx.procfs, cwd, t.provider_session_id.as_deref());
    let Some(&pid) = pids.first() else {
        return Ok(Holder::Nobody);
    };
    let reach = reach_of(&cx.procfs, &cx.tmux, pid, &cx.socket_dirs)?;
    Ok(Holder::Live {
        pid,
        reach,
        what: format!("gemini TUI (pid {pid})"),
    })
}

/// A Gemini limit dialog seen on a pane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The Gemini process.
    pub pid: Pid,
    /// Its pane.
    pub pane: Pane,
    /// The dialog's title line.
    pub title: String,
}

/// Look at the panes of the Gemini processes running in `cwd` whose group
/// is their terminal's foreground, for the limit dialog. Reads `/proc`,
/// asks tmux once per such pane: call it off any async loop, and only for
/// a chat whose turn stays open ([`open_turn`]).
pub fn probe(
    procfs: &Procfs,
    tmux: &Tmux,
    socket_dirs: &[PathBuf],
    cwd: &Path,
) -> Option<Sighting> {
    for pid in processes(procfs, Some(cwd), None) {
        if procfs.in_foreground(pid) != Some(true) {
            continue;
        }
        let Ok(Reach::Pane(pane)) = reach_of(procfs, tmux, pid, socket_dirs) else {
            continue;
        };
        let Ok(screen) = tmux.capture(&pane) else {
            continue;
        };
        if let Shows::LimitDialog(_) = read_screen(&screen) {
            if let Some(title) = dialog_title(&screen) {
                return Some(Sighting { pid, pane, title });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                "../../../tests/fixtures/real/gemini-0.61.0/",
                $name
            ))
        };
    }

    fn menu(options: &[(u8, &str)], selected: u8) -> LimitMenu {
        LimitMenu {
            options: options.iter().map(|(n, l)| (*n, l.to_string())).collect(),
            selected: Some(selected),
        }
    }

    #[test]
    fn captured_screens_read_as_what_they_show() {
        let keep = menu(&[(1, "Keep trying"), (2, "Stop")], 1);
        let switch = menu(
            &[
                (1, "Switch to gemini-3.1-pro-preview-customtools"),
                (2, "Stop"),
            ],
            1,
        );
        let table: &[(&str, Shows)] = &[
            (
                fixture!("screen_limit_dialog_pro.txt"),
                Shows::LimitDialog(keep.clone()),
            ),
            (
                fixture!("screen_limit_dialog_router.txt"),
                Shows::LimitDialog(switch.clone()),
            ),
            (fixture!("screen_after_keep_trying.txt"), Shows::Idle),
            (fixture!("screen_after_stop.txt"), Shows::Idle),
            (
                fixture!("screen_draft.txt"),
                Shows::Draft("half typed thought".into()),
            ),
            (
                fixture!("screen_thinking.txt"),
                Shows::Busy("⠸ Thinking... (esc to cancel, 4s)".into()),
            ),
            ("root@host:~$ ", Shows::Unknown),
            ("", Shows::Unknown),
        ];
        for (i, (screen, want)) in table.iter().enumerate() {
            assert_eq!(&read_screen(screen), want, "case {i}");
        }
        assert_eq!(choice(&keep), Some((1, KEEP_TRYING)));
        assert_eq!(choice(&switch), Some((2, STOP)));
        assert_eq!(choice(&menu(&[(1, "Switch to x")], 1)), None);
        assert_eq!(
            dialog_title(fixture!("screen_limit_dialog_pro.txt")).as_deref(),
            Some("Usage limit reached for all Pro models.")
        );
        assert_eq!(dialog_title(fixture!("screen_draft.txt")), None);
    }

    #[test]
    fn a_dialog_title_without_choices_is_not_the_dialog() {
        // the title quoted in a history turn, no numbered entries below it
        let s = " > why did it say Usage limit reached for all Pro models.\n✦ Because.\n";
        assert!(!matches!(read_screen(s), Shows::LimitDialog(_)));
    }

    #[test]
    fn the_chat_leaves_the_turn_open_only_until_an_answer_or_a_rollback() {
        // captured: the user turn is the chat's last record while the dialog is up
        let at_dialog = fixture!("chat_at_dialog.jsonl");
        let open = open_turn(at_dialog.as_bytes()).expect("open turn");
        assert_eq!(open.text, "please refactor the parser");
        assert!(open.at.is_some());
        // after "Stop": a rollback without the turn, then an error record
        assert_eq!(
            open_turn(fixture!("chat_after_stop.jsonl").as_bytes()),
            None
        );
        // after "Keep trying": the answer
        let kept = fixture!("chat_after_keep_trying.jsonl");
        assert_eq!(open_turn(kept.as_bytes()), None);
        // the third prompt met the dialog; "Keep trying" added the answer
        let lines: Vec<&str> = kept.lines().collect();
        let at_third = lines[..21].join("\n");
        assert_eq!(
            open_turn(at_third.as_bytes()).unwrap().text,
            "third prompt here"
        );
        assert!(!answered(lines[19..21].join("\n").as_bytes()));
        assert!(answered(lines[21..].join("\n").as_bytes()));
        // a second process's turn, before the TUI's rollback: answered
        assert_eq!(
            open_turn(fixture!("chat_after_second_process.jsonl").as_bytes()),
            None
        );
        assert!(!answered(
            br#"{"type":"user","content":[{"text":"gemini"}]}"#
        ));
        // the session's context record is not a user turn
        let first = at_dialog.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(open_turn(first.as_bytes()), None);
    }

    #[test]
    fn gemini_command_lines() {
        let v = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert!(is_gemini(&v("node /usr/lib/node_modules/.bin/gemini")));
        assert!(is_gemini(&v(
            "/usr/bin/node --max-old-space-size=12052 /x/node_modules/.bin/gemini"
        )));
        assert!(is_gemini(&v("gemini --resume abc -p hi")));
        assert!(!is_gemini(&v("node /x/codex")));
        assert!(!is_gemini(&v("vim gemini-notes.md")));
    }
}
