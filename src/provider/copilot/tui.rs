//! Copilot CLI's interactive TUI: who holds a session and what its screen
//! shows. Captured with Copilot CLI 1.0.102 in tmux against a fake API
//! (`tests/fixtures/real/copilot-1.0.102/`).
//!
//! Why: an open Copilot TUI at a limit retries for about a minute (`◎
//! Working`), writes `session.error` to `events.jsonl` and is back at its
//! empty `❯` prompt between two rules. It does not hold `events.jsonl` open
//! and its command line does not name the session, so the generic process
//! scan never found it, and the daemon resumed `copilot --resume <id> -p …`
//! headless beside it. That run appended its turn and a `session.shutdown`;
//! the open TUI never saw it, and its next turn hung off the old error event
//! (`parentId`): the session forked. What Copilot does keep, per session,
//! is `session-state/<id>/inuse.<pid>.lock` (the pid as text) and
//! `inuse.<pid>.hold`, which the holder keeps open; both go at exit. That
//! names the holder exactly, pid reuse guarded by the open `.hold`.
//!
//! Copilot's opt-in `continueOnAutoMode` (in `~/.copilot/settings.json`)
//! switches to the auto model instead of pausing: the session then goes on
//! by itself, and the daemon's moved-on check sees its answered turn.

use std::path::{Path, PathBuf};

use crate::live::owner::{reach_of, LiveError};
use crate::live::proc::{Pid, Procfs};
use crate::provider::screen::{self, clean, Shows};
use crate::provider::Holder;
use crate::provider::LiveContext;
use crate::provider::ResolvedTarget;

/// The pids named by a session folder's `inuse.<pid>.lock` files, ascending.
pub fn lock_pids(session_dir: &Path) -> Vec<Pid> {
    let Ok(rd) = std::fs::read_dir(session_dir) else {
        return Vec::new();
    };
    let mut v: Vec<Pid> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?;
            n.strip_prefix("inuse.")?
                .strip_suffix(".lock")?
                .parse()
                .ok()
        })
        .collect();
    v.sort_unstable();
    v
}

/// Whether `pid` is the live holder its lock names: it keeps the folder's
/// `inuse.<pid>.hold` open (a reused pid does not).
pub fn holds(procfs: &Procfs, session_dir: &Path, pid: Pid) -> bool {
    let hold = session_dir.join(format!("inuse.{pid}.hold"));
    procfs.has_open(pid, &hold) == Some(true)
        || std::fs::canonicalize(&hold)
            .ok()
            .is_some_and(|h| procfs.has_open(pid, &h) == Some(true))
}

/// The session folder of a target: its events file's folder, else
/// `<copilot home>/session-state/<id>`.
fn session_dir(t: &ResolvedTarget, home: &Path) -> Option<PathBuf> {
    t.native_file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .or_else(|| {
            t.provider_session_id
                .as_deref()
                .map(|id| home.join("session-state").join(id))
        })
}

/// Who holds Copilot session `t` now: the process its `inuse.<pid>.lock`
/// names, when that process keeps the matching `.hold` open; else a
/// `copilot` process naming the session on its command line or holding
/// its events file ([`crate::provider::holder_by_process`]).
pub fn holder(t: &ResolvedTarget, cx: &LiveContext) -> Result<Holder, LiveError> {
    if let Some(dir) = session_dir(t, &cx.home) {
        for pid in lock_pids(&dir) {
            if holds(&cx.procfs, &dir, pid) {
                let reach = reach_of(&cx.procfs, &cx.tmux, pid, &cx.socket_dirs)?;
                return Ok(Holder::Live {
                    pid,
                    reach,
                    what: format!("copilot TUI (pid {pid})"),
                });
            }
        }
    }
    crate::provider::holder_by_process("copilot", t, cx)
}

/// What a captured Copilot pane shows: a turn in progress (`◎ Working` in
/// the footer, also while it retries a 429), else its `❯` prompt between
/// two rules, empty or with a draft.
pub fn read_screen(text: &str) -> Shows {
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    if let Some(l) = last {
        let t = l.trim();
        let mut words = t.split_whitespace();
        let _spinner = words.next();
        if words.next() == Some("Working") {
            return Shows::Busy(clean(t));
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    match screen::boxed_prompt(&lines) {
        Some(p) if p.is_empty() => Shows::Idle,
        Some(p) => Shows::Draft(p),
        None => Shows::Unknown,
    }
}

/// Whether `continueOnAutoMode` is on in Copilot's `settings.json` (the CLI
/// switches to the auto model at a rate limit instead of pausing). Lines
/// starting with `//` are comments there.
pub fn continues_on_auto_mode(copilot_home: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(copilot_home.join("settings.json")) else {
        return false;
    };
    let json: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str::<serde_json::Value>(&json)
        .ok()
        .and_then(|v| v.get("continueOnAutoMode").and_then(|b| b.as_bool()))
        == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                "../../../tests/fixtures/real/copilot-1.0.102/",
                $name
            ))
        };
    }

    #[test]
    fn captured_screens_read_as_what_they_show() {
        let table: &[(&str, Shows)] = &[
            (fixture!("screen_after_limit.txt"), Shows::Idle),
            (fixture!("screen_after_typed_continue.txt"), Shows::Idle),
            ("root@host:~$ ", Shows::Unknown),
        ];
        for (i, (s, want)) in table.iter().enumerate() {
            assert_eq!(&read_screen(s), want, "case {i}");
        }
        // while it retries the 429 the footer says it works on the turn
        match read_screen(fixture!("screen_working.txt")) {
            Shows::Busy(b) => assert!(b.starts_with("◎ Working"), "{b}"),
            other => panic!("{other:?}"),
        }
        let rule = "─".repeat(40);
        let draft =
            format!(" ❯ hi\n{rule}\n❯ half a thought\n{rule}\n ← open sidebar · Interactive\n");
        assert_eq!(read_screen(&draft), Shows::Draft("half a thought".into()));
    }

    #[test]
    fn the_lock_names_the_holder_only_while_it_holds_the_hold_file() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("session-state").join("s1");
        std::fs::create_dir_all(&dir).unwrap();
        assert!(lock_pids(&dir).is_empty());
        std::fs::write(dir.join("inuse.12.lock"), "12").unwrap();
        std::fs::write(dir.join("inuse.7.lock"), "7").unwrap();
        std::fs::write(dir.join("inuse.x.lock"), "x").unwrap();
        std::fs::write(dir.join("events.jsonl"), "").unwrap();
        assert_eq!(lock_pids(&dir), [7, 12]);
        // this process does not hold inuse.<its pid>.hold: not the holder
        let me = std::process::id();
        std::fs::write(dir.join(format!("inuse.{me}.lock")), me.to_string()).unwrap();
        assert!(!holds(&Procfs::system(), &dir, me));
        // holding it open makes it the holder
        let hold = std::fs::File::create(dir.join(format!("inuse.{me}.hold"))).unwrap();
        assert!(holds(&Procfs::system(), &dir, me));
        drop(hold);
    }

    #[test]
    fn the_auto_mode_setting_is_read_past_comments() {
        let d = tempfile::tempdir().unwrap();
        assert!(!continues_on_auto_mode(d.path()));
        std::fs::write(
            d.path().join("settings.json"),
            "// User settings\n{\"continueOnAutoMode\": true}\n",
        )
        .unwrap();
        assert!(continues_on_auto_mode(d.path()));
        std::fs::write(
            d.path().join("settings.json"),
            "{\"continueOnAutoMode\": false}",
        )
        .unwrap();
        assert!(!continues_on_auto_mode(d.path()));
    }
}
