//! GNU screen: find the window a process runs in, capture it, type into it.
//!
//! Why: not everyone runs tmux. A process started inside screen inherits
//! `STY` (`<pid>.<name>`, the session) and `WINDOW` (the window number) from
//! its window's shell, so the window is known from the process's own
//! environment; its `SCREENDIR`, if set, says where the session's socket is.
//!
//! Typing uses `screen -S <STY> -p <WINDOW> -X stuff <text>`, then `stuff`
//! with a carriage return in a separate call (the same pause-then-Enter rule
//! as tmux). Checked with screen 4.09 (Debian bookworm): `stuff` is **not**
//! literal. `^C` in the text is sent as Ctrl-C (it killed the test program),
//! `$HOME` is expanded from screen's environment, and `\\` is an escape; a
//! backslash before `\`, `^` and `$` makes each literal ([`escape_stuff`]).
//! Capture is `-X hardcopy <file>`.
//!
//! Unlike tmux there is no pane list to confirm the window by ancestry: the
//! environment is the evidence (a process that changed `STY` would mislead).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::proc::{Pid, Procfs};
use super::tmux::{check_typable, run_with_timeout, RunError, TmuxError};

/// A screen window, as a process's environment names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// `STY`: `<pid>.<session name>`.
    pub session: String,
    /// `WINDOW`: the window number.
    pub window: String,
    /// `SCREENDIR` of the process, when it set one.
    pub screendir: Option<PathBuf>,
}

/// Reads the window from `KEY=value` environment strings. Pure.
pub fn window_in_env(env: &[String]) -> Option<Window> {
    let get = |k: &str| {
        env.iter().find_map(|kv| {
            kv.strip_prefix(k)
                .and_then(|r| r.strip_prefix('='))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
    };
    Some(Window {
        session: get("STY")?,
        window: get("WINDOW")?,
        screendir: get("SCREENDIR").map(PathBuf::from),
    })
}

/// The screen window a live process runs in.
pub fn window_of(procfs: &Procfs, pid: Pid) -> Option<Window> {
    window_in_env(&procfs.environ(pid)?)
}

/// Escapes text for `stuff` so it arrives literally: `\`, `^` and `$` get a
/// backslash. Pure.
pub fn escape_stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '\\' | '^' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A GNU screen client.
#[derive(Clone, Debug)]
pub struct Screen {
    bin: PathBuf,
    timeout: Duration,
}

impl Default for Screen {
    fn default() -> Self {
        Self {
            bin: PathBuf::from("screen"),
            timeout: Duration::from_secs(5),
        }
    }
}

impl Screen {
    /// Runs `screen -S <session> -p <window> -X <args…>`.
    fn command(&self, w: &Window, args: &[&str]) -> Result<String, TmuxError> {
        let mut cmd = Command::new(&self.bin);
        if let Some(dir) = &w.screendir {
            cmd.env("SCREENDIR", dir);
        }
        cmd.args(["-S", &w.session, "-p", &w.window, "-X"])
            .args(args);
        let shown = format!("screen -S {} -X {}", w.session, args.join(" "));
        let out = run_with_timeout(cmd, self.timeout).map_err(|e| match e {
            RunError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                TmuxError::NotInstalled(self.bin.clone())
            }
            RunError::Io(e) => TmuxError::Io(e),
            RunError::Timeout => TmuxError::Timeout {
                args: shown.clone(),
                timeout: self.timeout,
            },
        })?;
        // screen reports a missing session on stdout, with status 1
        let said = format!("{}{}", out.stdout, out.stderr);
        if said.contains("No screen session found") {
            return Err(TmuxError::NoServer(PathBuf::from(&w.session)));
        }
        if !out.success {
            return Err(TmuxError::Failed {
                args: shown,
                status: out.status,
                stderr: said.trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// Types one line: the escaped text, `pause`, then a carriage return.
    pub fn type_line(&self, w: &Window, text: &str, pause: Duration) -> Result<(), TmuxError> {
        check_typable(text)?;
        self.command(w, &["stuff", &escape_stuff(text)])?;
        std::thread::sleep(pause);
        self.command(w, &["stuff", "\r"])?;
        Ok(())
    }

    /// The window's screen, written by `hardcopy` to `scratch` and read back.
    /// The screen server writes the file after `-X` has returned, so the
    /// file is awaited (until its size holds still) within the timeout.
    pub fn capture(&self, w: &Window, scratch: &Path) -> Result<String, TmuxError> {
        match std::fs::remove_file(scratch) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let path = scratch.to_string_lossy();
        self.command(w, &["hardcopy", &path])?;
        let deadline = std::time::Instant::now() + self.timeout;
        let mut last = None;
        loop {
            let size = std::fs::metadata(scratch).ok().map(|m| m.len());
            if size.is_some() && size == last {
                return Ok(std::fs::read_to_string(scratch)?);
            }
            if std::time::Instant::now() >= deadline {
                return Err(TmuxError::Timeout {
                    args: format!("screen -S {} -X hardcopy", w.session),
                    timeout: self.timeout,
                });
            }
            last = size;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuff_escaping_makes_screen_syntax_literal() {
        assert_eq!(escape_stuff("plain text"), "plain text");
        assert_eq!(escape_stuff(r"a^Cb \n $HOME"), r"a\^Cb \\n \$HOME");
    }

    #[test]
    fn window_from_the_environment() {
        let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            window_in_env(&env(&["STY=23031.fake", "WINDOW=0", "SCREENDIR=/tmp/s"])),
            Some(Window {
                session: "23031.fake".into(),
                window: "0".into(),
                screendir: Some("/tmp/s".into())
            })
        );
        assert_eq!(window_in_env(&env(&["STY=1.x"])), None);
        assert_eq!(window_in_env(&env(&["STY=", "WINDOW=0"])), None);
    }
}
