//! Claude Code's session registry: `~/.claude/sessions/<pid>.json`, one file
//! per running Claude process, removed when it exits.
//!
//! Why: it is the only place that says, without guessing, which process
//! holds a Claude session now and in which tmux pane it runs. Observed with
//! Claude Code 2.1.332 (see `tests/fixtures/live/README.md`):
//!
//! ```json
//! {"pid":8625,"sessionId":"a9252950-…","cwd":"/home/u/proj","startedAt":1796066337357,
//!  "procStart":"48288","version":"2.1.332","kind":"interactive","entrypoint":"cli",
//!  "tmux":"tui:@0.%0","status":"idle","name":"proj-11",…}
//! ```
//!
//! `procStart` is a **string** holding field 22 of `/proc/<pid>/stat` (start
//! ticks after boot; checked against the live process), so it is the
//! pid-reuse guard: a registry file left by a crashed Claude whose pid now
//! belongs to another process is not an owner. `entrypoint` is `cli` for the
//! TUI and `sdk-cli` for `claude -p`; `tmux` is `<session>:@<window>.%<pane>`
//! and is absent outside tmux (it names no server: the pane id alone is
//! ambiguous across tmux servers, so the pane is confirmed by ancestry).
//! `status` was `idle`, or `waiting` with `waitingFor:"dialog open"` while
//! the limit menu was up (auto-continue off).
//!
//! Parsing ([`parse_entry`], [`choose_owner`]) is pure; [`read_dir`] and
//! [`find_owner`] are the I/O edges.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::live::owner::{reach_of, LiveError, Reach};
use crate::live::proc::{Liveness, Pid, Procfs};
use crate::live::tmux::Tmux;

/// Why a registry file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file is not the JSON object Claude writes.
    #[error("registry entry is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// `procStart` is present but not a number (as a string or a number).
    #[error("registry entry has an unreadable procStart {0:?}")]
    ProcStart(String),
    /// Reading the directory or a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// How the Claude process was started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entrypoint {
    /// `cli`: the interactive TUI.
    Tui,
    /// `sdk-cli`: a headless `claude -p`.
    Headless,
    /// Anything else, kept verbatim.
    Other(String),
}

impl Entrypoint {
    fn from_wire(s: &str) -> Self {
        match s {
            "cli" => Self::Tui,
            "sdk-cli" => Self::Headless,
            other => Self::Other(other.to_string()),
        }
    }
}

/// The `tmux` field, `<session>:@<window>.%<pane>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmuxLocation {
    /// The session name (tmux forbids `:` and `.` in it).
    pub session: String,
    /// The window id, with its `@`.
    pub window_id: String,
    /// The pane id, with its `%`: a target valid on that pane's server.
    pub pane_id: String,
}

impl TmuxLocation {
    /// Parses `tui:@0.%0`; `None` for any other shape.
    pub fn parse(s: &str) -> Option<Self> {
        let (session, rest) = s.rsplit_once(':')?;
        let (window, pane) = rest.split_once('.')?;
        let ok = |id: &str, sigil: char| {
            id.strip_prefix(sigil)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        if session.is_empty() || !ok(window, '@') || !ok(pane, '%') {
            return None;
        }
        Some(Self {
            session: session.to_string(),
            window_id: window.to_string(),
            pane_id: pane.to_string(),
        })
    }
}

/// One registry file, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    /// The Claude process.
    pub pid: Pid,
    /// The session it holds (changes when the user runs `/resume` or `/clear`).
    pub session_id: String,
    /// Its working directory.
    pub cwd: Option<PathBuf>,
    /// Epoch milliseconds at which the process started (Claude's clock).
    pub started_at_ms: Option<i64>,
    /// Field 22 of `/proc/<pid>/stat` when it registered.
    pub proc_start: Option<u64>,
    /// Claude Code's version.
    pub version: Option<String>,
    /// `interactive`, …
    pub kind: Option<String>,
    /// TUI or headless.
    pub entrypoint: Option<Entrypoint>,
    /// The tmux pane, when it runs in tmux.
    pub tmux: Option<TmuxLocation>,
    /// The raw `tmux` field, kept when it does not parse.
    pub tmux_raw: Option<String>,
    /// `idle`, `waiting`, … as Claude last wrote it.
    pub status: Option<String>,
    /// With `status:"waiting"`: what it waits for (`dialog open` while the
    /// limit menu is up, auto-continue off).
    pub waiting_for: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    pid: Pid,
    session_id: String,
    cwd: Option<PathBuf>,
    started_at: Option<i64>,
    proc_start: Option<serde_json::Value>,
    version: Option<String>,
    kind: Option<String>,
    entrypoint: Option<String>,
    tmux: Option<String>,
    status: Option<String>,
    waiting_for: Option<String>,
}

/// Parses one registry file's bytes.
pub fn parse_entry(bytes: &[u8]) -> Result<RegistryEntry, RegistryError> {
    let w: Wire = serde_json::from_slice(bytes)?;
    let proc_start = match w.proc_start {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => {
            Some(s.trim().parse().map_err(|_| RegistryError::ProcStart(s))?)
        }
        Some(serde_json::Value::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| RegistryError::ProcStart(n.to_string()))?,
        ),
        Some(other) => return Err(RegistryError::ProcStart(other.to_string())),
    };
    Ok(RegistryEntry {
        pid: w.pid,
        session_id: w.session_id,
        cwd: w.cwd,
        started_at_ms: w.started_at,
        proc_start,
        version: w.version,
        kind: w.kind,
        entrypoint: w.entrypoint.as_deref().map(Entrypoint::from_wire),
        tmux: w.tmux.as_deref().and_then(TmuxLocation::parse),
        tmux_raw: w.tmux,
        status: w.status,
        waiting_for: w.waiting_for,
    })
}

/// The registry directory under a Claude config dir (`~/.claude`).
pub fn sessions_dir(claude_dir: &Path) -> PathBuf {
    claude_dir.join("sessions")
}

/// Every `<pid>.json` of the registry. A file that vanished between listing
/// and reading (its process exited) is skipped; a file that does not parse
/// is returned as an error beside the good ones, so one bad file never hides
/// the others. A missing directory is an empty registry.
pub fn read_dir(dir: &Path) -> Result<Vec<Result<RegistryEntry, RegistryError>>, RegistryError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(RegistryError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for ent in rd.filter_map(Result::ok) {
        let path = ent.path();
        let stem_is_pid = path.extension().is_some_and(|e| e == "json")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s.parse::<Pid>().is_ok());
        if !stem_is_pid {
            continue;
        }
        match fs::read(&path) {
            Ok(bytes) => out.push(parse_entry(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => out.push(Err(RegistryError::Io { path, source })),
        }
    }
    Ok(out)
}

/// Why an entry for the session was not taken as its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerVerdict {
    /// The process lives and is the one that registered: it owns the session.
    Live(RegistryEntry),
    /// Entries name the session, but none of their processes lives (stale
    /// files of crashed processes, or pids reused by others).
    Stale,
    /// An entry names the session, but liveness cannot be told (no `/proc`,
    /// or no `procStart` to guard the pid with while the pid exists).
    Unknown(RegistryEntry),
    /// No entry names the session.
    None,
}

/// Picks the live owner of `session_id` among registry entries; `liveness`
/// answers for `(pid, procStart)`. Pure: the caller supplies `/proc`.
///
/// An entry without `procStart` is trusted only as [`OwnerVerdict::Unknown`]:
/// its pid alone cannot tell a live Claude from a reused pid. Several live
/// entries for one session (a TUI and a headless `-p` on the same id) prefer
/// the TUI, the one a human sees.
pub fn choose_owner(
    entries: &[RegistryEntry],
    session_id: &str,
    liveness: impl Fn(Pid, Option<u64>) -> Liveness,
) -> OwnerVerdict {
    let mut live: Vec<&RegistryEntry> = Vec::new();
    let mut unknown: Option<&RegistryEntry> = None;
    let mut any = false;
    for e in entries.iter().filter(|e| e.session_id == session_id) {
        any = true;
        match liveness(e.pid, e.proc_start) {
            Liveness::Alive if e.proc_start.is_some() => live.push(e),
            Liveness::Alive | Liveness::Unknown => unknown = unknown.or(Some(e)),
            Liveness::Gone | Liveness::Reused => {}
        }
    }
    live.sort_by_key(|e| e.entrypoint != Some(Entrypoint::Tui));
    match (live.first(), unknown, any) {
        (Some(e), _, _) => OwnerVerdict::Live((*e).clone()),
        (None, Some(e), _) => OwnerVerdict::Unknown(e.clone()),
        (None, None, true) => OwnerVerdict::Stale,
        (None, None, false) => OwnerVerdict::None,
    }
}

/// Reads the registry under `claude_dir` and checks each candidate against
/// `/proc`. Unparsable files are ignored here (they cannot name an owner).
pub fn find_owner(
    claude_dir: &Path,
    session_id: &str,
    procfs: &Procfs,
) -> Result<OwnerVerdict, RegistryError> {
    let entries: Vec<RegistryEntry> = read_dir(&sessions_dir(claude_dir))?
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    Ok(choose_owner(
        &entries,
        session_id,
        |pid, start| match start {
            Some(s) => procfs.liveness(pid, s),
            // No guard: only "gone" is certain.
            None => match procfs.liveness(pid, 0) {
                Liveness::Gone => Liveness::Gone,
                _ => Liveness::Unknown,
            },
        },
    ))
}

/// The live holder of a Claude session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaudeHolder {
    /// A live Claude process holds it.
    Live {
        /// Its registry entry (TUI or headless, version, cwd, …).
        entry: RegistryEntry,
        /// How to reach it.
        reach: Reach,
        /// The registry's `tmux` pane id disagrees with the pane found by
        /// ancestry (the ancestry pane is the one in `reach`).
        pane_mismatch: bool,
    },
    /// A registry entry names it but liveness cannot be told.
    Unknown(RegistryEntry),
    /// No live process holds it (no entry, or only stale ones).
    Nobody,
}

/// Who holds Claude session `session_id` now (`claude_dir` is `~/.claude`).
pub fn claude_holder(
    claude_dir: &Path,
    session_id: &str,
    procfs: &Procfs,
    tmux: &Tmux,
    socket_dirs: &[PathBuf],
) -> Result<ClaudeHolder, LiveError> {
    match find_owner(claude_dir, session_id, procfs)? {
        OwnerVerdict::Live(entry) => {
            let reach = reach_of(procfs, tmux, entry.pid, socket_dirs)?;
            let pane_mismatch = match (&reach, &entry.tmux) {
                (Reach::Pane(p), Some(loc)) => p.pane_id != loc.pane_id,
                _ => false,
            };
            Ok(ClaudeHolder::Live {
                entry,
                reach,
                pane_mismatch,
            })
        }
        OwnerVerdict::Unknown(e) => Ok(ClaudeHolder::Unknown(e)),
        OwnerVerdict::Stale | OwnerVerdict::None => Ok(ClaudeHolder::Nobody),
    }
}

impl From<RegistryError> for LiveError {
    fn from(e: RegistryError) -> Self {
        LiveError::Registry(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TUI: &str = include_str!("../../../tests/fixtures/live/claude_registry_tui.json");
    const DIALOG: &str =
        include_str!("../../../tests/fixtures/live/claude_registry_dialog_open.json");
    const HEADLESS: &str = r#"{"pid":9001,"sessionId":"s-1","cwd":"/p","startedAt":1,"procStart":"777","version":"2.1.332","kind":"interactive","entrypoint":"sdk-cli","status":"busy"}"#;

    #[test]
    fn the_real_tui_entry_parses() {
        let e = parse_entry(TUI.as_bytes()).unwrap();
        assert_eq!(e.pid, 8625);
        assert_eq!(e.session_id, "a9252950-de4f-4501-a2d3-8b0910ffa178");
        assert_eq!(e.proc_start, Some(48288));
        assert_eq!(e.entrypoint, Some(Entrypoint::Tui));
        assert_eq!(e.version.as_deref(), Some("2.1.332"));
        assert_eq!(
            e.tmux,
            Some(TmuxLocation {
                session: "tui".into(),
                window_id: "@0".into(),
                pane_id: "%0".into()
            })
        );
        assert_eq!(e.started_at_ms, Some(1796066337357));
        assert_eq!((e.status.as_deref(), e.waiting_for), (Some("idle"), None));
    }

    #[test]
    fn the_limit_menu_shows_as_waiting_on_a_dialog() {
        // captured with autoContinueAtUsageLimit:false while the menu was up
        let e = parse_entry(DIALOG.as_bytes()).unwrap();
        assert_eq!(e.status.as_deref(), Some("waiting"));
        assert_eq!(e.waiting_for.as_deref(), Some("dialog open"));
    }

    #[test]
    fn headless_has_no_pane_and_numeric_proc_start_is_accepted() {
        let e = parse_entry(HEADLESS.as_bytes()).unwrap();
        assert_eq!((e.entrypoint, e.tmux), (Some(Entrypoint::Headless), None));
        let n = parse_entry(br#"{"pid":1,"sessionId":"x","procStart":12}"#).unwrap();
        assert_eq!(n.proc_start, Some(12));
    }

    #[test]
    fn bad_entries_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"pid":-1,"sessionId":"x"}"#,
            br#"{"sessionId":"x"}"#,
            br#"{"pid":1,"sessionId":"x","procStart":"soon"}"#,
            br#"{"pid":1,"sessionId":"x","procStart":[1]}"#,
        ] {
            assert!(
                parse_entry(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn tmux_locations() {
        assert_eq!(TmuxLocation::parse("work:@12.%40").unwrap().pane_id, "%40");
        for bad in [
            "",
            "tui",
            "tui:@0",
            "tui:0.%0",
            ":@0.%0",
            "tui:@0.%",
            "tui:@x.%0",
        ] {
            assert_eq!(TmuxLocation::parse(bad), None, "{bad}");
        }
    }

    fn entry(pid: Pid, sid: &str, start: Option<u64>, ep: Entrypoint) -> RegistryEntry {
        let mut e = parse_entry(HEADLESS.as_bytes()).unwrap();
        e.pid = pid;
        e.session_id = sid.into();
        e.proc_start = start;
        e.entrypoint = Some(ep);
        e
    }

    #[test]
    fn the_owner_is_the_live_process_that_registered() {
        let es = vec![
            entry(10, "s", Some(100), Entrypoint::Headless),
            entry(11, "s", Some(200), Entrypoint::Tui),
            entry(12, "other", Some(300), Entrypoint::Tui),
        ];
        let alive = |pid, start| match (pid, start) {
            (10, Some(100)) | (11, Some(200)) | (12, Some(300)) => Liveness::Alive,
            _ => Liveness::Gone,
        };
        assert_eq!(
            choose_owner(&es, "s", alive),
            OwnerVerdict::Live(es[1].clone())
        );
        assert_eq!(choose_owner(&es, "nope", alive), OwnerVerdict::None);
        // pid reused: the file is stale
        let reused = |_, _| Liveness::Reused;
        assert_eq!(choose_owner(&es, "s", reused), OwnerVerdict::Stale);
        // no /proc: cannot tell
        let unknown = |_, _| Liveness::Unknown;
        assert_eq!(
            choose_owner(&es, "s", unknown),
            OwnerVerdict::Unknown(es[0].clone())
        );
        // no procStart: a live pid is not proof
        let unguarded = vec![entry(13, "s", None, Entrypoint::Tui)];
        let live = |_, _| Liveness::Alive;
        assert_eq!(
            choose_owner(&unguarded, "s", live),
            OwnerVerdict::Unknown(unguarded[0].clone())
        );
    }

    #[test]
    fn directory_read_skips_foreign_files_and_reports_bad_ones() {
        let d = tempfile::tempdir().unwrap();
        let s = sessions_dir(d.path());
        assert!(read_dir(&s).unwrap().is_empty());
        fs::create_dir_all(&s).unwrap();
        fs::write(s.join("8625.json"), TUI).unwrap();
        fs::write(s.join("9001.json"), "{broken").unwrap();
        fs::write(s.join("notes.txt"), "x").unwrap();
        fs::write(s.join("x.json"), TUI).unwrap();
        let got = read_dir(&s).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn find_owner_checks_the_real_proc() {
        let d = tempfile::tempdir().unwrap();
        let s = sessions_dir(d.path());
        fs::create_dir_all(&s).unwrap();
        let procfs = Procfs::system();
        let me = procfs.identity(std::process::id()).unwrap();
        let mine = format!(
            r#"{{"pid":{},"sessionId":"live-1","procStart":"{}","entrypoint":"cli"}}"#,
            me.pid, me.start_ticks
        );
        let reused = format!(
            r#"{{"pid":{},"sessionId":"old-1","procStart":"{}","entrypoint":"cli"}}"#,
            me.pid,
            me.start_ticks + 1
        );
        fs::write(s.join(format!("{}.json", me.pid)), mine).unwrap();
        fs::write(s.join("1.json"), reused).unwrap();
        match find_owner(d.path(), "live-1", &procfs).unwrap() {
            OwnerVerdict::Live(e) => assert_eq!(e.pid, me.pid),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            find_owner(d.path(), "old-1", &procfs).unwrap(),
            OwnerVerdict::Stale
        );
    }

    #[test]
    fn nobody_holds_a_session_without_a_registry_entry() {
        let d = tempfile::tempdir().unwrap();
        let t = Tmux::new("/nonexistent/tmux");
        let got = claude_holder(d.path(), "s", &Procfs::system(), &t, &[]).unwrap();
        assert_eq!(got, ClaudeHolder::Nobody);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_live_claude_outside_tmux_is_unreachable_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        let s = sessions_dir(d.path());
        fs::create_dir_all(&s).unwrap();
        let procfs = Procfs::system();
        let me = procfs.identity(std::process::id()).unwrap();
        let json = format!(
            r#"{{"pid":{},"sessionId":"s","procStart":"{}","entrypoint":"cli","tmux":"x:@0.%9"}}"#,
            me.pid, me.start_ticks
        );
        fs::write(s.join(format!("{}.json", me.pid)), json).unwrap();
        // no tmux binary, no sockets: reported as unreachable, with the env hint
        let t = Tmux::new("/nonexistent/tmux");
        match claude_holder(d.path(), "s", &procfs, &t, &[d.path().to_path_buf()]).unwrap() {
            ClaudeHolder::Live {
                entry,
                reach: Reach::Unreachable { .. },
                pane_mismatch,
            } => {
                assert_eq!(entry.pid, me.pid);
                assert!(!pane_mismatch);
            }
            other => panic!("{other:?}"),
        }
    }
}
