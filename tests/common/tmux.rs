//! What the tmux-driven test files share: whether tmux is here (a missing
//! tmux fails under CI and is one SKIP line elsewhere), and polling a
//! condition up to a limit.

#![allow(dead_code)]

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
