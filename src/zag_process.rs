//! Is this process alive? One rule for every process the daemon asks
//! about: zag's relays and exec loops (from `B/processes.json`) and the
//! zag-resumed daemon that `stop` and `ensure` wait for.
//!
//! The rule, strictest that the data allows:
//! - `kill(pid, 0)` succeeds, or fails with `EPERM` (it exists, another
//!   user's);
//! - it is not a zombie (exited, not yet reaped: a parent that embeds
//!   `ensure` keeps one);
//! - when the caller knows when the process started (a `processes.json`
//!   entry's `started_at`) and `/proc` tells when the pid's current process
//!   started, the latter is not more than a minute later: otherwise the pid
//!   was reused by an unrelated process.
//!
//! When something cannot be told (no `/proc`, no `started_at`), the answer
//! is "alive": taking over a live owner's resume would resume twice, while
//! waiting on a dead one only delays it.
//!
//! zag's own rule (`status == "running"` and `kill(pid, 0)`) has no guard
//! against pid reuse; a crashed zag process keeps `running` forever, so the
//! guard matters.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::io;
use std::path::Path;

use crate::live::proc::Procfs;

/// How much later than its recorded start a process may have started and
/// still be the one recorded (zag writes `started_at` just after spawning).
pub const START_SLACK: Duration = Duration::seconds(60);

/// `processes` of a `B/processes.json`: a missing file is an empty list, an
/// unreadable or malformed one is `None` (the caller cannot tell).
pub fn read_processes(path: &Path) -> Option<Vec<Value>> {
    match std::fs::read(path) {
        Ok(b) => parse_processes(&b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(Vec::new()),
        Err(_) => None,
    }
}

/// `processes` of a `processes.json`'s bytes; `None` when malformed.
pub fn parse_processes(bytes: &[u8]) -> Option<Vec<Value>> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Some(v.get("processes")?.as_array()?.clone())
}

/// A `processes.json` entry that says `running` and whose pid is alive
/// under the module's rule (pid reuse guarded by its `started_at`).
pub fn entry_running(entry: &Value) -> bool {
    entry.get("status").and_then(Value::as_str) == Some("running") && entry_pid_alive(entry)
}

/// The entry's pid is alive and is still the process the entry recorded.
pub fn entry_pid_alive(entry: &Value) -> bool {
    let Some(pid) = entry
        .get("pid")
        .and_then(Value::as_i64)
        .and_then(|p| u32::try_from(p).ok())
    else {
        return false;
    };
    let started = entry
        .get("started_at")
        .and_then(Value::as_str)
        .and_then(crate::clock::parse_utc);
    pid_alive_since(pid, started)
}

/// `pid` is alive and not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    pid_alive_since(pid, None)
}

/// `pid` is alive, not a zombie, and (when `started` is known and `/proc`
/// tells) did not start more than [`START_SLACK`] after `started`.
pub fn pid_alive_since(pid: u32, started: Option<DateTime<Utc>>) -> bool {
    // 0 and negatives name process groups for kill(2), not a process.
    let Some(raw) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(raw) {
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return false,
    }
    let procfs = Procfs::system();
    let Some(stat) = procfs.stat(pid) else {
        return true; // no /proc: kill(2) is all we can tell
    };
    if stat.state == 'Z' || stat.state == 'X' {
        return false;
    }
    match (started, procfs.start_time(pid)) {
        (Some(entry), Some(actual)) => actual <= entry + START_SLACK,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_reused_pid_is_not() {
        let me = std::process::id();
        assert!(pid_alive(me));
        let long_ago = Utc::now() - Duration::days(365 * 20);
        assert!(pid_alive_since(me, Some(Utc::now())));
        if cfg!(target_os = "linux") {
            // We started long after that entry: the pid was reused.
            assert!(!pid_alive_since(me, Some(long_ago)));
        }
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }

    #[test]
    fn a_reaped_child_is_dead_and_an_unreaped_one_a_zombie() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Wait for it to exit without reaping it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while cfg!(target_os = "linux")
            && Procfs::system().stat(pid).is_some_and(|s| s.state != 'Z')
        {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if cfg!(target_os = "linux") {
            assert!(!pid_alive(pid), "a zombie is not alive");
        }
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }

    #[test]
    fn entries_need_running_status_and_a_live_pid() {
        let me = std::process::id();
        let now = Utc::now().to_rfc3339();
        let json = format!(
            r#"{{"processes":[
              {{"session_id":"a","status":"running","pid":{me},"started_at":"{now}"}},
              {{"session_id":"b","status":"exited","pid":{me}}},
              {{"session_id":"c","status":"running","pid":-4}},
              {{"session_id":"d","status":"running","pid":{me},"started_at":"2001-01-01T00:00:00Z"}},
              {{"session_id":"e","status":"running"}}
            ]}}"#
        );
        let procs = parse_processes(json.as_bytes()).unwrap();
        let running: Vec<&str> = procs
            .iter()
            .filter(|e| entry_running(e))
            .map(|e| e["session_id"].as_str().unwrap())
            .collect();
        let want: &[&str] = if cfg!(target_os = "linux") {
            &["a"]
        } else {
            &["a", "d"]
        };
        assert_eq!(running, want);
        assert!(parse_processes(b"junk").is_none());
        assert!(parse_processes(b"{}").is_none());
    }

    #[test]
    fn missing_file_is_empty_unreadable_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_processes(&dir.path().join("processes.json")),
            Some(vec![])
        );
        // A directory cannot be read as a file.
        assert_eq!(read_processes(dir.path()), None);
    }
}
