//! A deferred incident is looked at again as soon as the process that held
//! its session exits.
//!
//! Why: a deferral that waits on a live process (an open TUI whose own
//! continue has it, a TUI that is not in front, a writer still holding the
//! session) is re-checked every 5 s to 5 min. The process's exit is the
//! moment the answer changes, so the core also waits on it: a pidfd
//! (Linux 5.3+) turns readable when the process ends, and the incident is
//! looked at again [`SETTLE_SECS`] later, so the CLI's last writes land
//! first. The re-check stays as it was; where no pidfd can be had
//! (another OS, an old kernel, the pid already reused) it is all there is.
//! One watch per deferred incident, dropped when the incident leaves the
//! table; nothing runs while no incident waits on a process.

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::live::proc::Pid;

/// How long after the holder's exit the incident is looked at again.
pub const SETTLE_SECS: i64 = 2;

/// What a watch reports: this incident's holder, this process, exited.
pub type Exited = (String, Pid);

/// Wait for `pid` to exit, then send `(id, pid)` on `tx`. A process
/// already gone is reported at once. `None`: nothing to abort (reported
/// already, or it cannot be watched here).
pub fn watch(id: String, pid: Pid, tx: mpsc::UnboundedSender<Exited>) -> Option<AbortHandle> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{pidfd_open, Pid as RawPid, PidfdFlags};
        use tokio::io::{unix::AsyncFd, Interest};
        let raw = RawPid::from_raw(i32::try_from(pid).ok()?)?;
        match pidfd_open(raw, PidfdFlags::NONBLOCK) {
            Ok(fd) => {
                // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, which
                // owns it: the pidfd stays open and the same until dropped.
                let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()?;
                let task = tokio::spawn(async move {
                    // Readable: the process has ended.
                    if fd.readable().await.is_ok() {
                        let _ = tx.send((id, pid));
                    }
                });
                Some(task.abort_handle())
            }
            Err(rustix::io::Errno::SRCH) => {
                let _ = tx.send((id, pid));
                None
            }
            Err(_) => None,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (id, pid, tx);
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_exit_is_reported_once_with_its_incident_and_a_gone_process_at_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let handle = watch("inc-1".into(), pid, tx.clone());
        assert!(handle.is_some(), "a live process is watched");
        // nothing while it lives
        assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err());
        child.kill().unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("reported after the exit");
        assert_eq!(got, Some(("inc-1".to_string(), pid)));
        child.wait().unwrap();
        // reaped: gone, reported at once, nothing left to abort
        assert!(watch("inc-2".into(), pid, tx).is_none());
        let got = tokio::time::timeout(Duration::from_secs(1), rx.recv())
            .await
            .expect("a gone process is reported at once");
        assert_eq!(got, Some(("inc-2".to_string(), pid)));
    }
}
