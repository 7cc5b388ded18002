//! tmux: every server of the user, the pane a process runs in, capturing a
//! pane's screen, and typing a line into it.
//!
//! Why: a live TUI session can only be continued from inside its own
//! terminal. The pane is found by process ancestry (its `pane_pid`, the
//! pane's shell, is an ancestor of the CLI's pid), not by
//! `pane_current_command`, which names whatever runs in the foreground.
//! Users run several tmux servers (`tmux -L name`, `tmux -S path`), so every
//! socket under `${TMUX_TMPDIR:-/tmp}/tmux-<uid>/` is asked, plus the socket
//! named in the process's own `TMUX` variable.
//!
//! Typing follows what tools that type into TUIs learned: the text with
//! `send-keys -l` (literally, no key-name lookup), a pause, then `Enter` in
//! a separate call (sent together, the TUI takes the burst as a paste and the
//! Enter as a newline in it); never Esc (it cancels Claude Code's own wait).
//! Text with control characters is refused: a newline would submit early.
//! Delivery is confirmed by the session's own file growing, not here.
//!
//! Every tmux call runs by argv (no shell) with a timeout; a missing binary
//! and a dead server (a stale socket) are distinct errors.
//!
//! Other multiplexers, as checked here (Debian bookworm): **GNU screen**
//! (4.9, installable with apt) is supported the same way: the window of a
//! process is in its environment (`STY`, `WINDOW`), typing is `screen -S
//! <STY> -p <WINDOW> -X stuff <text>` then `stuff "\r"`, capture is `-X
//! hardcopy <file>`: built in [`super::gnu_screen`]. **Zellij** is reported
//! ([`Multiplexer::Zellij`], from `ZELLIJ_SESSION_NAME` / `ZELLIJ_PANE_ID`)
//! but not typed into. Its documentation (0.44) says `zellij --session <s>
//! action write-chars --pane-id <id> <text>` (and `send-keys`,
//! `dump-screen`, `list-panes`) target a pane by id; older versions write to
//! the *focused* pane only, which could be the wrong one. It has no Debian
//! package and building it from source was not attempted, so there was
//! nothing to test against: it stays unbuilt rather than untested.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::proc::{Pid, Procfs};

/// A tmux call that did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    /// No `tmux` binary where we looked.
    #[error("tmux is not installed ({0} not found)")]
    NotInstalled(PathBuf),
    /// The server behind the socket is gone (stale socket) or never was.
    #[error("no tmux server on {0}")]
    NoServer(PathBuf),
    /// The call did not finish in time (it was killed).
    #[error("tmux {args} timed out after {timeout:?}")]
    Timeout {
        /// The arguments, for the log.
        args: String,
        /// The limit.
        timeout: Duration,
    },
    /// tmux ran and failed.
    #[error("tmux {args} failed ({status}): {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// Exit status.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// The text cannot be typed safely.
    #[error("refusing to type {0:?}: empty or contains control characters")]
    Untypable(String),
    /// Spawning or reading failed.
    #[error("running tmux: {0}")]
    Io(#[from] io::Error),
}

/// One pane, as `list-panes -a` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pane {
    /// The server's socket.
    pub socket: PathBuf,
    /// `#{pane_id}`, e.g. `%3`: unique on its server, a valid `-t` target.
    pub pane_id: String,
    /// `#{pane_pid}`: the process the pane started (usually a shell).
    pub pane_pid: Pid,
    /// `#{session_name}`.
    pub session_name: String,
    /// `#{window_id}`, e.g. `@1`.
    pub window_id: String,
    /// `#{window_index}`.
    pub window_index: u32,
    /// `#{pane_index}`.
    pub pane_index: u32,
    /// `#{pane_current_command}` (informational only).
    pub current_command: String,
}

impl Pane {
    /// `session:window.pane`, how a human names it.
    pub fn human_name(&self) -> String {
        format!(
            "{}:{}.{}",
            self.session_name, self.window_index, self.pane_index
        )
    }
}

/// The `-F` format [`parse_panes`] reads (tab-separated: session names may
/// hold spaces, never tabs in practice; a line that does not parse is skipped).
pub const PANE_FORMAT: &str = "#{pane_id}\t#{pane_pid}\t#{window_id}\t#{window_index}\t#{pane_index}\t#{pane_current_command}\t#{session_name}";

/// Parses `list-panes -a -F PANE_FORMAT` output.
pub fn parse_panes(socket: &Path, text: &str) -> Vec<Pane> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(7, '\t');
            let pane_id = f.next()?.to_string();
            let pane_pid = f.next()?.parse().ok()?;
            let window_id = f.next()?.to_string();
            let window_index = f.next()?.parse().ok()?;
            let pane_index = f.next()?.parse().ok()?;
            let current_command = f.next()?.to_string();
            let session_name = f.next()?.to_string();
            pane_id.starts_with('%').then(|| Pane {
                socket: socket.to_path_buf(),
                pane_id,
                pane_pid,
                session_name,
                window_id,
                window_index,
                pane_index,
                current_command,
            })
        })
        .collect()
}

/// The pane `pid` runs in: the pane whose `pane_pid` is `pid` itself or its
/// nearest ancestor (`ancestors` nearest first). Pure.
pub fn pane_of<'a>(panes: &'a [Pane], pid: Pid, ancestors: &[Pid]) -> Option<&'a Pane> {
    std::iter::once(&pid)
        .chain(ancestors)
        .find_map(|a| panes.iter().find(|p| p.pane_pid == *a))
}

/// `${TMUX_TMPDIR:-/tmp}/tmux-<uid>`, where tmux puts its sockets.
pub fn socket_dir(tmux_tmpdir: Option<&OsStr>, uid: u32) -> PathBuf {
    let base = tmux_tmpdir
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join(format!("tmux-{uid}"))
}

/// The socket directory of the user running this process.
pub fn user_socket_dir() -> PathBuf {
    let uid = rustix::process::getuid().as_raw();
    socket_dir(std::env::var_os("TMUX_TMPDIR").as_deref(), uid)
}

/// Every socket in a socket directory (a missing directory: none).
pub fn sockets_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// The socket path in a `TMUX` value (`/tmp/tmux-0/default,1234,0`).
pub fn socket_of_tmux_env(value: &str) -> Option<PathBuf> {
    let (path, rest) = value.split_once(',')?;
    (!path.is_empty() && !rest.is_empty()).then(|| PathBuf::from(path))
}

/// Which terminal multiplexer a process says it runs under (from its
/// environment, inherited from the pane's shell). A hint only: the pane is
/// confirmed by ancestry for tmux.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Multiplexer {
    /// tmux: socket (from `TMUX`) and pane (`TMUX_PANE`).
    Tmux {
        /// The server socket.
        socket: PathBuf,
        /// The pane id, if set.
        pane_id: Option<String>,
    },
    /// GNU screen: session (`STY`) and window (`WINDOW`).
    Screen {
        /// `<pid>.<name>`.
        session: String,
        /// The window number.
        window: Option<String>,
    },
    /// Zellij: session and pane id.
    Zellij {
        /// `ZELLIJ_SESSION_NAME`.
        session: String,
        /// `ZELLIJ_PANE_ID`.
        pane_id: Option<String>,
    },
}

/// Reads the multiplexer hint from `KEY=value` environment strings. Pure.
pub fn multiplexer_in_env(env: &[String]) -> Option<Multiplexer> {
    let get = |k: &str| {
        env.iter().find_map(|kv| {
            kv.strip_prefix(k)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_string)
        })
    };
    if let Some(socket) = get("TMUX").as_deref().and_then(socket_of_tmux_env) {
        return Some(Multiplexer::Tmux {
            socket,
            pane_id: get("TMUX_PANE"),
        });
    }
    if let Some(session) = get("ZELLIJ_SESSION_NAME") {
        return Some(Multiplexer::Zellij {
            session,
            pane_id: get("ZELLIJ_PANE_ID"),
        });
    }
    get("STY").map(|session| Multiplexer::Screen {
        session,
        window: get("WINDOW"),
    })
}

/// The multiplexer hint of a live process (`None`: none, or its environment
/// is unreadable).
pub fn multiplexer_of(procfs: &Procfs, pid: Pid) -> Option<Multiplexer> {
    multiplexer_in_env(&procfs.environ(pid)?)
}

/// Refuses text that would not arrive as one literal line.
pub fn check_typable(text: &str) -> Result<(), TmuxError> {
    if text.trim().is_empty() || text.chars().any(char::is_control) {
        return Err(TmuxError::Untypable(text.to_string()));
    }
    Ok(())
}

/// A tmux client: which binary, how long one call may take.
#[derive(Clone, Debug)]
pub struct Tmux {
    bin: PathBuf,
    timeout: Duration,
}

impl Default for Tmux {
    fn default() -> Self {
        Self::new("tmux")
    }
}

impl Tmux {
    /// A client running `bin` (a name looked up on `PATH`, or a path), with a 5 s timeout.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Another timeout per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `tmux -S <socket> <args…>` and returns its stdout.
    pub fn run(&self, socket: &Path, args: &[&str]) -> Result<String, TmuxError> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-S").arg(socket).args(args);
        let shown = args.join(" ");
        let out = run_with_timeout(cmd, self.timeout).map_err(|e| match e {
            RunError::Io(e) if e.kind() == io::ErrorKind::NotFound => {
                TmuxError::NotInstalled(self.bin.clone())
            }
            RunError::Io(e) => TmuxError::Io(e),
            RunError::Timeout => TmuxError::Timeout {
                args: shown.clone(),
                timeout: self.timeout,
            },
        })?;
        if out.success {
            return Ok(out.stdout);
        }
        let dead = ["no server running", "error connecting to", "server exited"];
        if dead.iter().any(|d| out.stderr.contains(d)) {
            return Err(TmuxError::NoServer(socket.to_path_buf()));
        }
        Err(TmuxError::Failed {
            args: shown,
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        })
    }

    /// Every pane of the server on `socket`.
    pub fn list_panes(&self, socket: &Path) -> Result<Vec<Pane>, TmuxError> {
        let text = self.run(socket, &["list-panes", "-a", "-F", PANE_FORMAT])?;
        Ok(parse_panes(socket, &text))
    }

    /// Every pane of every server on the given sockets; servers that fail
    /// (stale sockets, above all) come back beside the panes.
    pub fn panes_of_sockets(&self, sockets: &[PathBuf]) -> (Vec<Pane>, Vec<(PathBuf, TmuxError)>) {
        let mut panes = Vec::new();
        let mut errs = Vec::new();
        for s in sockets {
            match self.list_panes(s) {
                Ok(p) => panes.extend(p),
                Err(e) => errs.push((s.clone(), e)),
            }
        }
        (panes, errs)
    }

    /// The pane `pid` runs in, on any server in `socket_dirs` or the one its
    /// `TMUX` variable names. `Ok(None)`: not in tmux (as far as any live
    /// server knows). A missing tmux binary is an error, dead servers are not.
    pub fn find_pane(
        &self,
        procfs: &Procfs,
        pid: Pid,
        socket_dirs: &[PathBuf],
    ) -> Result<Option<Pane>, TmuxError> {
        let mut sockets: Vec<PathBuf> = socket_dirs.iter().flat_map(|d| sockets_in(d)).collect();
        if let Some(Multiplexer::Tmux { socket, .. }) = multiplexer_of(procfs, pid) {
            if !sockets.contains(&socket) {
                sockets.push(socket);
            }
        }
        let (panes, errs) = self.panes_of_sockets(&sockets);
        if let Some((_, TmuxError::NotInstalled(b))) = errs
            .into_iter()
            .find(|(_, e)| matches!(e, TmuxError::NotInstalled(_)))
        {
            return Err(TmuxError::NotInstalled(b));
        }
        Ok(pane_of(&panes, pid, &procfs.ancestors(pid)).cloned())
    }

    /// The visible screen of a pane, as text (no escapes).
    pub fn capture(&self, pane: &Pane) -> Result<String, TmuxError> {
        self.run(&pane.socket, &["capture-pane", "-p", "-t", &pane.pane_id])
    }

    /// Types one line: the text literally, `pause`, then Enter in a
    /// separate call. Never Esc. The caller types once per incident and
    /// confirms by the session's file.
    pub fn type_line(&self, pane: &Pane, text: &str, pause: Duration) -> Result<(), TmuxError> {
        check_typable(text)?;
        self.run(
            &pane.socket,
            &["send-keys", "-t", &pane.pane_id, "-l", "--", text],
        )?;
        std::thread::sleep(pause);
        self.run(&pane.socket, &["send-keys", "-t", &pane.pane_id, "Enter"])?;
        Ok(())
    }
}

pub(crate) struct RunOutput {
    pub(crate) success: bool,
    pub(crate) status: String,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) enum RunError {
    Io(io::Error),
    Timeout,
}

/// Runs a command with piped output; kills it at the deadline. Output is
/// drained on threads so a full pipe cannot stall the child.
pub(crate) fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<RunOutput, RunError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(RunError::Io)?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let Some(status) = crate::child::wait_deadline(&mut child, timeout).map_err(RunError::Io)?
    else {
        return Err(RunError::Timeout);
    };
    Ok(RunOutput {
        success: status.success(),
        status: status.to_string(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_parse_and_bad_lines_are_skipped() {
        let s = Path::new("/tmp/tmux-0/work");
        let text = "%0\t4123\t@0\t0\t0\tclaude\ttui\n%7\t99\t@3\t2\t1\tbash\tmy session\ngarbage\n%x\tx\t@0\t0\t0\tbash\tz\n";
        let panes = parse_panes(s, text);
        assert_eq!(panes.len(), 2);
        assert_eq!(panes[1].session_name, "my session");
        assert_eq!(panes[1].human_name(), "my session:2.1");
        assert_eq!((panes[0].pane_pid, panes[0].socket.as_path()), (4123, s));
    }

    #[test]
    fn the_nearest_ancestor_pane_wins() {
        let text = "%1\t100\t@0\t0\t0\tbash\ta\n%2\t200\t@0\t0\t1\tbash\ta\n";
        let panes = parse_panes(Path::new("/s"), text);
        assert_eq!(pane_of(&panes, 300, &[200, 100, 1]).unwrap().pane_id, "%2");
        assert_eq!(pane_of(&panes, 200, &[1]).unwrap().pane_id, "%2");
        assert_eq!(pane_of(&panes, 300, &[50, 1]), None);
    }

    #[test]
    fn socket_dir_follows_tmux_tmpdir() {
        assert_eq!(socket_dir(None, 1000), Path::new("/tmp/tmux-1000"));
        assert_eq!(
            socket_dir(Some(OsStr::new("")), 0),
            Path::new("/tmp/tmux-0")
        );
        assert_eq!(
            socket_dir(Some(OsStr::new("/run/u")), 7),
            Path::new("/run/u/tmux-7")
        );
    }

    #[test]
    fn multiplexer_hints_from_the_environment() {
        let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            multiplexer_in_env(&env(&[
                "HOME=/h",
                "TMUX=/tmp/tmux-0/work,4122,0",
                "TMUX_PANE=%3"
            ])),
            Some(Multiplexer::Tmux {
                socket: "/tmp/tmux-0/work".into(),
                pane_id: Some("%3".into())
            })
        );
        assert_eq!(
            multiplexer_in_env(&env(&["STY=123.pts-0.host", "WINDOW=2"])),
            Some(Multiplexer::Screen {
                session: "123.pts-0.host".into(),
                window: Some("2".into())
            })
        );
        assert_eq!(
            multiplexer_in_env(&env(&["ZELLIJ_SESSION_NAME=s", "ZELLIJ_PANE_ID=4"])),
            Some(Multiplexer::Zellij {
                session: "s".into(),
                pane_id: Some("4".into())
            })
        );
        assert_eq!(multiplexer_in_env(&env(&["TMUX=", "TMUXX=1"])), None);
    }

    #[test]
    fn only_one_literal_line_is_typable() {
        assert!(check_typable("Continue the task.").is_ok());
        for bad in ["", "  ", "a\nb", "a\rb", "\x1b", "tab\there"] {
            assert!(
                matches!(check_typable(bad), Err(TmuxError::Untypable(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_missing_binary_is_a_clear_error() {
        let t = Tmux::new("/nonexistent/tmux-binary");
        assert!(matches!(
            t.list_panes(Path::new("/tmp/none")),
            Err(TmuxError::NotInstalled(_))
        ));
    }

    #[test]
    fn a_hung_command_times_out() {
        let mut cmd = Command::new("sleep");
        cmd.arg("5");
        let start = std::time::Instant::now();
        let got = run_with_timeout(cmd, Duration::from_millis(100));
        assert!(matches!(got, Err(RunError::Timeout)));
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
