//! One daemon per user and zag home: an advisory `flock` on
//! `<state_dir>/daemon.lock`.
//!
//! Invariants:
//! - The lock is held by an open file description, so it dies with the
//!   process however the process dies (SIGKILL included): there is never a
//!   stale lock to clean by hand. The file itself is never unlinked, because
//!   unlinking a lock file races with a second process that opened it.
//! - The holder writes its pid into the file after locking, only so that a
//!   second `run` can name it in its error message. The pid is a hint, never
//!   the lock: it may be missing for the instant between lock and write.
//! - The file is opened close-on-exec, so provider CLIs the daemon spawns
//!   never inherit (and never prolong) the lock.
//!
//! [`FileLock`] is the same mechanism without the pid, used by `ensure` to let
//! exactly one of many concurrent callers spawn the daemon.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

/// File name of the instance lock inside the state dir.
pub const LOCK_FILE: &str = "daemon.lock";

/// Exit status of a `run` that found another daemon holding the lock. The
/// systemd unit names it in `RestartPreventExitStatus=`: restarting cannot
/// help while the other daemon lives.
pub const EXIT_ALREADY_RUNNING: i32 = 3;

/// Why the instance lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{}", held_message(*pid, path))]
    Held { pid: Option<u32>, path: PathBuf },
    #[error("cannot use lock file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn held_message(pid: Option<u32>, path: &Path) -> String {
    match pid {
        Some(pid) => format!(
            "zag-resumed is already running (pid {pid}) for this zag home (lock {})",
            path.display()
        ),
        None => format!(
            "zag-resumed is already running for this zag home (lock {}; pid not yet recorded)",
            path.display()
        ),
    }
}

/// The held instance lock; released when dropped or when the process dies.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Take the instance lock for `state_dir`, creating the dir (mode 0700) if needed.
///
/// Fails at once with [`LockError::Held`] naming the holder's pid when
/// another process holds it.
pub fn acquire(state_dir: &Path) -> Result<InstanceLock, LockError> {
    let path = state_dir.join(LOCK_FILE);
    let io_err = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    ensure_private_dir(state_dir).map_err(io_err)?;
    let mut file = open_lock_file(&path).map_err(io_err)?;
    if !try_flock(&file).map_err(io_err)? {
        // The holder writes its pid right after taking the lock: give it a
        // moment (bounded) so the message can name it.
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut pid = read_pid(&mut file);
        while pid.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            pid = read_pid(&mut file);
        }
        return Err(LockError::Held { pid, path });
    }
    // Ours now: record the pid for the next one's error message.
    let mut record = || -> io::Result<()> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()
    };
    record().map_err(io_err)?;
    Ok(InstanceLock { _file: file, path })
}

/// The pid recorded in a state dir's lock file, if any. A hint only: the
/// recorded process may be gone (the lock is free then).
pub fn recorded_pid(state_dir: &Path) -> Option<u32> {
    let mut f = File::open(state_dir.join(LOCK_FILE)).ok()?;
    read_pid(&mut f)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// A plain exclusive `flock`, released on drop. Used by `ensure`.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Wait up to `timeout` for the lock on `path` (created if missing).
    /// Returns `Ok(None)` on timeout.
    pub fn acquire_timeout(path: &Path, timeout: Duration) -> io::Result<Option<FileLock>> {
        if let Some(dir) = path.parent() {
            ensure_private_dir(dir)?;
        }
        let file = open_lock_file(path)?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            if try_flock(&file)? {
                return Ok(Some(FileLock { _file: file }));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // Polling keeps this usable with a deadline on every Unix; the
            // holder keeps the lock for one spawn, so waits are short.
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// Wait for an exclusive `flock` on `path` (created if missing, mode 0600;
/// its directory is left as it is). Released when the returned file is
/// closed. Separate opens conflict even within one process.
pub(crate) fn lock_exclusive(path: &Path) -> io::Result<File> {
    let file = open_lock_file(path)?;
    loop {
        match flock(&file, FlockOperation::LockExclusive) {
            Ok(()) => return Ok(file),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `flock(LOCK_EX|LOCK_NB)`: `Ok(false)` when someone else holds it.
fn try_flock(file: &File) -> io::Result<bool> {
    loop {
        match flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(true),
            Err(Errno::WOULDBLOCK) => return Ok(false),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Create `dir` (and parents) if missing, the last component with mode 0700;
/// tighten an existing dir we own to 0700. A dir owned by another user is an
/// error: the socket and the lock must not live where someone else can swap
/// them.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        if let Some(parent) = dir.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        match DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let meta = std::fs::metadata(dir)?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is owned by uid {}, not by this user (uid {me})",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_in_process_names_our_pid_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("resumed");
        let first = acquire(&state).unwrap();
        // A second open file description conflicts even within one process.
        let err = acquire(&state).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert_eq!(recorded_pid(&state), Some(std::process::id()));
        drop(first);
        let _again = acquire(&state).unwrap();
    }

    #[test]
    fn state_dir_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a").join("resumed");
        let _l = acquire(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // An existing loose dir is tightened.
        let loose = dir.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&loose).unwrap();
        let mode = std::fs::metadata(&loose).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn file_lock_times_out_then_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ensure.lock");
        let held = FileLock::acquire_timeout(&p, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        let t = Instant::now();
        assert!(FileLock::acquire_timeout(&p, Duration::from_millis(50))
            .unwrap()
            .is_none());
        assert!(t.elapsed() >= Duration::from_millis(50));
        drop(held);
        assert!(FileLock::acquire_timeout(&p, Duration::from_millis(50))
            .unwrap()
            .is_some());
    }
}
