//! Codex: the writer-conflict failure, and which process holds a thread.
//!
//! Why: a Codex thread has one writer. While its TUI is open, `codex exec
//! resume <thread>` fails with `thread-store conflict: thread <id> already
//! has an active writer`, so the daemon must find the live owner first and
//! type into its pane, or wait until the writer is released.
//!
//! Observed with Codex 0.171.0 (`tests/fixtures/live/README.md`):
//! - The TUI does **not** hold the rollout file open itself. It starts
//!   `codex app-server --listen unix:// … --managed-daemon` (its child while
//!   it runs) and that app-server holds `rollout-….jsonl` open and is the
//!   thread's writer. A `codex app-server daemon pid-update-loop` helper
//!   runs beside it.
//! - `npm`'s `codex` is a node wrapper whose child is the native binary;
//!   both look like a TUI by their command line.
//! - After the TUI quits (`/quit`), the app-server is re-parented to init
//!   and keeps the rollout open (and the writer): a resume right after the
//!   quit fails the same way. It let go of the thread about a minute later
//!   (conflict at 51 s, success at 73 s) while the app-server itself kept
//!   running: the rollout's fd holder, not the app-server's existence, says
//!   whether the writer is free.
//!
//! So: the holder of the rollout is found by an fd scan; the TUI is the
//! nearest Codex TUI among the holder's ancestors; a holder with no TUI
//! ancestor is a lingering app-server (nobody to type to: retry the
//! headless resume with backoff until it lets go). The decision
//! ([`owner_from`]) is pure over a [`Snapshot`]; [`snapshot`] reads `/proc`.

use std::path::{Path, PathBuf};

use crate::live::owner::{reach_of, LiveError, Reach};
use crate::live::proc::{Pid, Procfs};
use crate::live::tmux::Tmux;

/// The thread id in a writer-conflict failure, if `text` is one. Both forms
/// seen on stderr match: `thread-store conflict: thread <id> already has an
/// active writer` and `thread/resume failed: thread <id> already has an
/// active writer (code -32600)`.
pub fn writer_conflict_thread(text: &str) -> Option<&str> {
    const TAIL: &str = " already has an active writer";
    for (end, _) in text.match_indices(TAIL) {
        let head = &text[..end];
        let start = head.rfind("thread ")? + "thread ".len();
        let id = &head[start..];
        if !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Some(id);
        }
    }
    None
}

/// Whether a failure is the writer conflict (a wait, never a final failure).
pub fn is_writer_conflict(text: &str) -> bool {
    writer_conflict_thread(text).is_some()
}

/// What a Codex process is, by its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The interactive TUI (`codex`, `codex resume …`, `codex fork …`).
    Tui,
    /// A headless `codex exec …`.
    Exec,
    /// `codex app-server … --managed-daemon`: the TUI's writer process.
    AppServer,
    /// `codex app-server daemon …`: its helper (holds no thread).
    AppServerHelper,
    /// Another subcommand (`login`, `mcp`, …).
    Other(String),
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Subcommands that are neither the TUI, `exec` nor the app-server.
const OTHER_SUBCOMMANDS: &[&str] = &[
    "login",
    "logout",
    "mcp",
    "mcp-server",
    "completion",
    "sandbox",
    "debug",
    "apply",
    "a",
    "cloud",
    "features",
    "help",
    "responses-api-proxy",
    "stdio-to-uds",
];

/// The role of a process from its argv, or `None` if it is not Codex.
/// A `node …/codex` wrapper counts as what it runs.
pub fn role_of(argv: &[String]) -> Option<Role> {
    let first = argv.first()?;
    let at = if basename(first) == "codex" {
        0
    } else if matches!(basename(first), "node" | "nodejs" | "bun" | "deno")
        && argv
            .get(1)
            .is_some_and(|a| basename(a) == "codex" || a.ends_with("/codex.js"))
    {
        1
    } else {
        return None;
    };
    let rest = &argv[at + 1..];
    let sub = rest
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(String::as_str);
    Some(match sub {
        None | Some("resume") | Some("fork") => Role::Tui,
        Some("exec") | Some("e") => Role::Exec,
        Some("app-server") if rest.iter().any(|a| a == "--managed-daemon") => Role::AppServer,
        Some("app-server") if rest.iter().any(|a| a == "daemon") => Role::AppServerHelper,
        Some("app-server") => Role::AppServer,
        Some(other) if OTHER_SUBCOMMANDS.contains(&other) => Role::Other(other.to_string()),
        // An option's value (`-m gpt-5.5`) or a prompt (`codex "fix it"`):
        // still the TUI.
        Some(_) => Role::Tui,
    })
}

/// One Codex process as seen at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodexProcess {
    /// Its pid.
    pub pid: Pid,
    /// Its parent chain, nearest first.
    pub ancestors: Vec<Pid>,
    /// What it is.
    pub role: Role,
    /// Its command line.
    pub argv: Vec<String>,
    /// Its working directory.
    pub cwd: Option<PathBuf>,
    /// Whether it has the thread's rollout open.
    pub holds_rollout: bool,
}

/// The Codex processes of the machine, with the rollout check done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every process whose argv is Codex's.
    pub processes: Vec<CodexProcess>,
}

/// Reads every Codex process from `/proc` and whether it holds `rollout`.
pub fn snapshot(procfs: &Procfs, rollout: &Path) -> Snapshot {
    let processes = procfs
        .pids()
        .into_iter()
        .filter_map(|pid| {
            let argv = procfs.cmdline(pid)?;
            let role = role_of(&argv)?;
            Some(CodexProcess {
                pid,
                ancestors: procfs.ancestors(pid),
                role,
                holds_rollout: procfs.has_open(pid, rollout) == Some(true),
                cwd: procfs.cwd(pid),
                argv,
            })
        })
        .collect();
    Snapshot { processes }
}

/// How the owner was recognised, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// It (or the app-server below it) has the rollout open.
    HoldsRollout,
    /// Its command line names the thread (`codex resume <id>`).
    CommandLine,
    /// A TUI in the session's cwd, nothing stronger: a guess to confirm.
    Cwd,
}

/// Who holds a Codex thread now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A live TUI: type into its pane. `tui` is the outermost TUI process
    /// (the node wrapper when there is one: the pane's shell is its parent).
    Tui {
        /// The TUI process.
        tui: CodexProcess,
        /// The process holding the rollout, when known.
        writer: Option<CodexProcess>,
        /// How we know.
        evidence: Evidence,
    },
    /// A headless `codex exec` is writing the thread.
    Exec(CodexProcess),
    /// An app-server holds the thread with no TUI above it (the TUI quit):
    /// nobody to type to; the writer is released when it exits.
    LingeringWriter(CodexProcess),
    /// No process holds or names the thread.
    None,
}

/// Decides the owner of `thread_id` (whose session ran in `cwd`). Pure.
pub fn owner_from(snap: &Snapshot, thread_id: &str, cwd: Option<&Path>) -> Owner {
    let by_pid = |pid: Pid| snap.processes.iter().find(|p| p.pid == pid);
    // The outermost TUI process among `p` and its ancestors, nearest chain
    // only: wrapper → native → app-server.
    let tui_above = |p: &CodexProcess| -> Option<CodexProcess> {
        let mut found = (p.role == Role::Tui).then(|| p.clone());
        for a in &p.ancestors {
            match by_pid(*a) {
                Some(q) if q.role == Role::Tui => found = Some(q.clone()),
                Some(_) => {}
                None if found.is_some() => break,
                None => {}
            }
        }
        found
    };
    let holders: Vec<&CodexProcess> = snap.processes.iter().filter(|p| p.holds_rollout).collect();
    for h in &holders {
        if let Some(tui) = tui_above(h) {
            return Owner::Tui {
                tui,
                writer: Some((*h).clone()),
                evidence: Evidence::HoldsRollout,
            };
        }
    }
    if let Some(h) = holders.iter().find(|h| h.role == Role::Exec) {
        return Owner::Exec((*h).clone());
    }
    if let Some(h) = holders.first() {
        return Owner::LingeringWriter((*h).clone());
    }
    let named = snap
        .processes
        .iter()
        .find(|p| p.role == Role::Tui && p.argv.iter().any(|a| a == thread_id));
    if let Some(p) = named {
        return Owner::Tui {
            tui: tui_above(p).unwrap_or_else(|| p.clone()),
            writer: None,
            evidence: Evidence::CommandLine,
        };
    }
    if let Some(cwd) = cwd {
        let here = snap
            .processes
            .iter()
            .find(|p| p.role == Role::Tui && p.cwd.as_deref() == Some(cwd));
        if let Some(p) = here {
            return Owner::Tui {
                tui: tui_above(p).unwrap_or_else(|| p.clone()),
                writer: None,
                evidence: Evidence::Cwd,
            };
        }
    }
    Owner::None
}

/// Reads `/proc` and decides: the I/O edge of [`owner_from`].
pub fn find_owner(procfs: &Procfs, rollout: &Path, thread_id: &str, cwd: Option<&Path>) -> Owner {
    owner_from(&snapshot(procfs, rollout), thread_id, cwd)
}

/// The live holder of a Codex thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodexHolder {
    /// What holds it.
    pub owner: Owner,
    /// How to reach its TUI, when a TUI holds it.
    pub reach: Option<Reach>,
}

/// Who holds Codex thread `thread_id` (rollout `rollout`, run in `cwd`) now.
pub fn codex_holder(
    procfs: &Procfs,
    tmux: &Tmux,
    rollout: &Path,
    thread_id: &str,
    cwd: Option<&Path>,
    socket_dirs: &[PathBuf],
) -> Result<CodexHolder, LiveError> {
    let owner = find_owner(procfs, rollout, thread_id, cwd);
    let reach = match &owner {
        Owner::Tui { tui, .. } => Some(reach_of(procfs, tmux, tui.pid, socket_dirs)?),
        _ => None,
    };
    Ok(CodexHolder { owner, reach })
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREAD: &str = "01a22dea-18ff-7960-b466-a4980ad42662";

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_captured_conflict_texts_name_the_thread() {
        let stderr = include_str!("../../../tests/fixtures/live/codex_resume_while_open.stderr");
        assert_eq!(writer_conflict_thread(stderr), Some(THREAD));
        assert!(is_writer_conflict(
            "Error: thread/resume: thread/resume failed: thread 0abc already has an active writer (code -32600)"
        ));
        assert!(!is_writer_conflict("Error: You've hit your usage limit."));
        assert!(!is_writer_conflict(
            "the thread already has an active writer"
        ));
        assert!(!is_writer_conflict(""));
    }

    #[test]
    fn roles_from_the_captured_command_lines() {
        let table = [
            ("node /tmp/realclients/node_modules/.bin/codex", Some(Role::Tui)),
            ("/x/vendor/x86_64-unknown-linux-musl/bin/codex", Some(Role::Tui)),
            ("codex resume 01a2", Some(Role::Tui)),
            ("codex -m gpt-5.5", Some(Role::Tui)),
            ("codex exec resume --skip-git-repo-check 01a2 Continue", Some(Role::Exec)),
            ("/h/.codex/packages/app-server-daemon/releases/0.171.0-x86_64-unknown-linux-musl/bin/codex app-server --listen unix:// --analytics-default-enabled --managed-daemon", Some(Role::AppServer)),
            ("/h/.codex/packages/app-server-daemon/releases/0.171.0/bin/codex app-server daemon pid-update-loop", Some(Role::AppServerHelper)),
            ("codex login", Some(Role::Other("login".into()))),
            ("claude --resume x", None),
            ("node server.js", None),
        ];
        for (cmd, want) in table {
            assert_eq!(role_of(&argv(cmd)), want, "{cmd}");
        }
        assert_eq!(role_of(&[]), None);
    }

    fn p(pid: Pid, anc: &[Pid], cmd: &str, holds: bool) -> CodexProcess {
        CodexProcess {
            pid,
            ancestors: anc.to_vec(),
            role: role_of(&argv(cmd)).unwrap(),
            argv: argv(cmd),
            cwd: Some("/h/proj".into()),
            holds_rollout: holds,
        }
    }

    const WRAPPER: &str = "node /r/node_modules/.bin/codex";
    const NATIVE: &str = "/r/vendor/bin/codex";
    const SERVER: &str =
        "/h/.codex/packages/bin/codex app-server --listen unix:// --managed-daemon";
    const HELPER: &str = "/h/.codex/packages/bin/codex app-server daemon pid-update-loop";

    #[test]
    fn tui_open_the_app_server_below_it_holds_the_rollout() {
        // The process tree captured with the TUI open (pids as captured).
        let snap = Snapshot {
            processes: vec![
                p(6849, &[6844, 6843, 1], WRAPPER, false),
                p(6867, &[6849, 6844, 6843, 1], NATIVE, false),
                p(7132, &[6867, 6849, 6844, 6843, 1], SERVER, true),
                p(7226, &[6867, 6849, 6844, 6843, 1], HELPER, false),
            ],
        };
        match owner_from(&snap, THREAD, Some(Path::new("/h/proj"))) {
            Owner::Tui {
                tui,
                writer,
                evidence,
            } => {
                assert_eq!(
                    tui.pid, 6849,
                    "the outermost TUI process: its parent is the pane's shell"
                );
                assert_eq!(writer.unwrap().pid, 7132);
                assert_eq!(evidence, Evidence::HoldsRollout);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tui_quit_the_app_server_lingers_as_the_writer() {
        let snap = Snapshot {
            processes: vec![p(7132, &[1], SERVER, true), p(7226, &[1], HELPER, false)],
        };
        assert!(
            matches!(owner_from(&snap, THREAD, None), Owner::LingeringWriter(w) if w.pid == 7132)
        );
        let gone = Snapshot {
            processes: vec![p(7226, &[1], HELPER, false)],
        };
        assert_eq!(owner_from(&gone, THREAD, None), Owner::None);
    }

    #[test]
    fn without_a_holder_the_command_line_then_the_cwd_decide() {
        let resume = format!("codex resume {THREAD}");
        let snap = Snapshot {
            processes: vec![
                p(10, &[9, 1], NATIVE, false),
                p(20, &[19, 1], &resume, false),
            ],
        };
        assert!(matches!(
            owner_from(&snap, THREAD, None),
            Owner::Tui { tui, evidence: Evidence::CommandLine, .. } if tui.pid == 20
        ));
        assert!(matches!(
            owner_from(&snap, "other-thread", Some(Path::new("/h/proj"))),
            Owner::Tui { tui, evidence: Evidence::Cwd, .. } if tui.pid == 10
        ));
        assert_eq!(
            owner_from(&snap, "other-thread", Some(Path::new("/else"))),
            Owner::None
        );
        let exec = Snapshot {
            processes: vec![p(30, &[1], "codex exec resume x Continue", true)],
        };
        assert!(matches!(owner_from(&exec, THREAD, None), Owner::Exec(e) if e.pid == 30));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn snapshot_reads_a_fake_proc_tree() {
        use std::fs;
        let d = tempfile::tempdir().unwrap();
        let rollout = d.path().join("rollout-x.jsonl");
        fs::write(&rollout, "").unwrap();
        for (pid, ppid, cmd) in [(1, 0, "init"), (50, 1, NATIVE), (51, 50, SERVER)] {
            let pd = d.path().join(pid.to_string());
            fs::create_dir_all(pd.join("fd")).unwrap();
            let stat = format!("{pid} (x) S {ppid}{} 1 0 0\n", " 0".repeat(17));
            fs::write(pd.join("stat"), stat).unwrap();
            fs::write(pd.join("cmdline"), cmd.replace(' ', "\0")).unwrap();
        }
        std::os::unix::fs::symlink(&rollout, d.path().join("51/fd/42")).unwrap();
        let procfs = Procfs::at(d.path());
        match find_owner(&procfs, &rollout, THREAD, None) {
            Owner::Tui { tui, writer, .. } => {
                assert_eq!((tui.pid, writer.unwrap().pid), (50, 51));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_codex_thread_nobody_holds() {
        let d = tempfile::tempdir().unwrap();
        let rollout = d.path().join("rollout-none.jsonl");
        let t = Tmux::new("/nonexistent/tmux");
        let got = codex_holder(&Procfs::at(d.path()), &t, &rollout, "t", None, &[]).unwrap();
        assert_eq!(
            got,
            CodexHolder {
                owner: Owner::None,
                reach: None
            }
        );
    }
}
