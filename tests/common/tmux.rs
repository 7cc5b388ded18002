//! What the tmux-driven test files share: whether tmux is here (a missing
//! tmux fails under CI and is one SKIP line elsewhere), polling a
//! condition up to a limit, a tmux server on its own socket, and the pid a
//! fake TUI writes once its screen is up. What each fake TUI draws and
//! does with a typed line stays in its test file: that is what it tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Is tmux installed? Under CI a missing tmux is a failure (`.ci/run`
/// installs it); elsewhere `suite`'s tests say SKIP once and pass.
pub fn available(suite: &str) -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is not installed, and CI is set: install tmux (.ci/run does)"
        );
        static SKIP_LINE: std::sync::Once = std::sync::Once::new();
        // Written to the stderr handle, not with eprintln!, which the test
        // harness captures and hides for passing tests.
        SKIP_LINE.call_once(|| {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIP {suite}: tmux is not installed");
        });
    }
    found
}

/// Poll `f` every 50 ms until it holds or `limit` passes; its last answer.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A tmux server on its own socket, started with one detached session;
/// killed on drop.
pub struct Server(pub PathBuf);

impl Server {
    /// `tmux -S socket -f /dev/null new-session -d -s session -x w -y h
    /// [-c cwd] command`.
    pub fn start(
        socket: &Path,
        session: &str,
        (w, h): (u16, u16),
        cwd: Option<&Path>,
        command: &str,
    ) -> Server {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(socket).args(["-f", "/dev/null"]);
        cmd.args(["new-session", "-d", "-s", session]);
        cmd.args(["-x", &w.to_string(), "-y", &h.to_string()]);
        if let Some(cwd) = cwd {
            cmd.arg("-c").arg(cwd);
        }
        let st = cmd.arg(command).status().expect("tmux runs");
        assert!(st.success(), "tmux new-session failed: {st}");
        Server(socket.to_path_buf())
    }

    /// `tmux send-keys -t target keys…`.
    pub fn keys(&self, target: &str, keys: &[&str]) {
        let st = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .args(["send-keys", "-t", target])
            .args(keys)
            .status()
            .expect("tmux runs");
        assert!(st.success(), "tmux send-keys failed: {st}");
    }

    /// What `target`'s pane shows now.
    pub fn capture(&self, target: &str) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .args(["capture-pane", "-p", "-t", target])
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .status();
    }
}

/// Where a daemon with `TMUX_TMPDIR=tmpdir` looks for tmux servers:
/// `tmpdir/tmux-<uid>`, made here with tmux's own mode 0700.
pub fn socket_dir(tmpdir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let uid = rustix::process::getuid().as_raw();
    let dir = tmpdir.join(format!("tmux-{uid}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// The pid a fake TUI writes to `pidf` once its screen is up (30 s at most:
/// a loaded machine starts tmux slowly; only a broken fake takes that long).
pub fn pid_written(pidf: &Path) -> u32 {
    let read = || {
        std::fs::read_to_string(pidf)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    };
    assert!(
        wait_until(Duration::from_secs(30), || read().is_some()),
        "the fake TUI never wrote its pid to {}",
        pidf.display()
    );
    read().unwrap()
}
