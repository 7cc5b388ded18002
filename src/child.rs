//! Running a helper program: finding it on `PATH` ([`which`]) and waiting
//! for its end with a time bound ([`wait_deadline`]).
//!
//! Why one module: the notifier, the push hook, tmux and the respawn each
//! looked programs up and waited on children with a loop of their own. The
//! wait sleeps in the kernel (`poll` on a pidfd, Linux 5.3+), so a child
//! that ends is seen at once rather than at the next tick of a poll loop;
//! where pidfds are missing it falls back to `try_wait` every few ms.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// The first executable `name` in the directories of `search_path`
/// (`PATH` when `None`). Empty and relative entries are skipped: a `PATH`
/// like `:/usr/bin` must not run whatever sits in the daemon's cwd.
pub fn which(name: &str, search_path: Option<&OsStr>) -> Option<PathBuf> {
    let env_path = std::env::var_os("PATH");
    let path = search_path.or(env_path.as_deref())?;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// A regular file with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Make a FIFO at `path` (mode 0600), as zag makes its relays': unit tests
/// stand relays in with it.
#[cfg(test)]
pub(crate) fn mkfifo(path: &Path) -> io::Result<()> {
    use rustix::fs::{mknodat, FileType, Mode, CWD};
    mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).map_err(io::Error::from)
}

/// Wait for `child` to end, at most `deadline`. `Ok(None)`: it was still
/// running, so it was killed and reaped. Blocking: call it off any async
/// loop.
pub fn wait_deadline(child: &mut Child, deadline: Duration) -> io::Result<Option<ExitStatus>> {
    let end = Instant::now() + deadline;
    if let Some(status) = child.try_wait()? {
        return Ok(Some(status));
    }
    match pidfd_of(child) {
        Some(fd) => loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match wait_readable(&fd, left) {
                // Readable: the child ended (the pidfd holds no zombie
                // back, so wait() below reaps it at once).
                Ok(true) => return child.wait().map(Some),
                Ok(false) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        },
        None => loop {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= end {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        },
    }
    if let Some(status) = child.try_wait()? {
        return Ok(Some(status)); // ended right at the deadline
    }
    let _ = child.kill();
    child.wait()?;
    Ok(None)
}

#[cfg(target_os = "linux")]
fn pidfd_of(child: &Child) -> Option<std::os::fd::OwnedFd> {
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    // The child is ours and not yet reaped, so its pid cannot be reused
    // under us.
    let pid = Pid::from_raw(i32::try_from(child.id()).ok()?)?;
    pidfd_open(pid, PidfdFlags::empty()).ok()
}

#[cfg(not(target_os = "linux"))]
fn pidfd_of(_child: &Child) -> Option<std::os::fd::OwnedFd> {
    None
}

/// `poll` one fd for input; `Ok(false)` on timeout.
fn wait_readable(fd: &std::os::fd::OwnedFd, timeout: Duration) -> io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let timeout = Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    Ok(poll(&mut fds, Some(&timeout))? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    #[test]
    fn which_skips_relative_and_non_executable_entries() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let exe = bin.join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = d.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        std::fs::write(plain.join("tool"), "x").unwrap();

        let path =
            std::env::join_paths(["relative", plain.to_str().unwrap(), bin.to_str().unwrap()])
                .unwrap();
        assert_eq!(which("tool", Some(&path)), Some(exe));
        assert_eq!(which("absent", Some(&path)), None);
        assert_eq!(which("tool", Some(OsStr::new("bin"))), None);
    }

    #[test]
    fn a_quick_child_is_seen_ending_long_before_the_deadline() {
        let mut child = Command::new("true").spawn().unwrap();
        let start = Instant::now();
        let status = wait_deadline(&mut child, Duration::from_secs(60)).unwrap();
        assert!(status.is_some_and(|s| s.success()));
        assert!(start.elapsed() < Duration::from_secs(30));
        let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let status = wait_deadline(&mut child, Duration::from_secs(60)).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(3));
    }

    #[test]
    fn a_hung_child_is_killed_and_reaped_at_the_deadline() {
        let mut child = Command::new("sleep").arg("600").spawn().unwrap();
        let pid = child.id();
        let status = wait_deadline(&mut child, Duration::from_millis(100)).unwrap();
        assert_eq!(status, None);
        // Reaped: the status is already known, and the pid names no zombie.
        assert!(child.try_wait().unwrap().is_some());
        let procfs = crate::live::proc::Procfs::system();
        assert!(procfs.stat(pid).is_none_or(|s| s.state != 'Z'));
    }
}
