//! Delivery attempts: the durable intent that makes a delivery happen once
//! across any crash of the daemon.
//!
//! Before a due incident is delivered, an attempt file
//! `<state_dir>/deliveries/<incident>/<n>` is created and fsync'd (file and
//! folder). A respawned CLI's child process, between fork and exec, opens
//! that file again, takes an `flock` on it (the descriptor is left open
//! across exec, so the lock lives exactly as long as the CLI and what it
//! starts), refuses to start if the file says `void`, then writes `started`
//! and fdatasyncs it. A FIFO delivery writes `sent` once its line is in the
//! pipe.
//!
//! A restarted daemon settles the latest attempt before delivering again
//! ([`Attempts::claim`], decided by the pure [`decide`]): `started`/`sent`,
//! or a lock still held (the CLI runs) means delivered: its `complete` is
//! written, nothing is sent again; an empty file means claimed but never
//! started: it is marked `void` under the lock (so a child that has not
//! exec'd yet aborts) and the next attempt is made; a disk that cannot
//! answer defers the incident rather than risking a second delivery.
//!
//! The folder goes once the incident's `complete` is durable; a start-up
//! sweep removes those of incidents no longer pending.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a respawned CLI's child writes before exec.
const STARTED: &[u8] = b"started\n";
/// What a FIFO delivery writes once its line is in the pipe.
const SENT: &[u8] = b"sent\n";
/// What a restart writes over an attempt that never started.
const VOID: &[u8] = b"void\n";

/// The latest attempt of an incident, as a restart finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Created, never started (or the child has not reached exec yet and
    /// does not hold the lock).
    Claimed,
    /// A child holds the lock: the CLI (or something it started) runs.
    Running,
    /// The CLI was exec'd.
    Started,
    /// The FIFO line was written.
    Sent,
    /// Given up by an earlier restart: it never started and never will.
    Void,
    /// Something else is written in it (a torn write of `started`).
    Other,
}

impl Seen {
    /// What an attempt file's bytes say (pure; the lock is looked at
    /// separately).
    pub fn of_bytes(bytes: &[u8]) -> Seen {
        match bytes {
            [] => Seen::Claimed,
            b if b == STARTED => Seen::Started,
            b if b == SENT => Seen::Sent,
            b if b == VOID => Seen::Void,
            _ => Seen::Other,
        }
    }
}

/// What to do with a due incident, given its latest attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Deliver, as attempt `latest + 1`; first mark the latest `void`
    /// (under its lock) when it is only claimed.
    Deliver { void_latest: bool },
    /// An earlier run delivered it: record it, send nothing.
    Delivered { why: String },
    /// The disk cannot say: look again later.
    Defer { why: String },
}

/// The decision (pure): `None` when the incident has no attempt yet,
/// `Err` when its latest attempt cannot be read.
pub fn decide(latest: Option<Result<Seen, String>>) -> Decision {
    const BEFORE: &str = "delivered before a restart";
    match latest {
        None | Some(Ok(Seen::Void)) => Decision::Deliver { void_latest: false },
        Some(Ok(Seen::Claimed)) => Decision::Deliver { void_latest: true },
        Some(Ok(Seen::Running)) => Decision::Delivered {
            why: format!("{BEFORE} (the resumed CLI is still running); not sent again"),
        },
        Some(Ok(Seen::Started)) => Decision::Delivered {
            why: format!("{BEFORE} (the resumed CLI had started); not sent again"),
        },
        Some(Ok(Seen::Sent)) => Decision::Delivered {
            why: format!("{BEFORE} (the message was written to the relay's FIFO); not sent again"),
        },
        // Only the child writes into a claimed file: it got that far.
        Some(Ok(Seen::Other)) => Decision::Delivered {
            why: format!("{BEFORE} (the resumed CLI was being started); not sent again"),
        },
        Some(Err(e)) => Decision::Defer {
            why: format!("cannot read its delivery attempt ({e}): not delivering what may already have been delivered"),
        },
    }
}

/// How a claim ended.
#[derive(Debug)]
pub enum Claim {
    /// Deliver now, under this attempt.
    Deliver(Attempt),
    /// Already delivered by an earlier run.
    Delivered { why: String },
    /// Cannot tell or cannot record: try again later.
    Defer { why: String },
}

/// The attempt files of every incident, under `<state_dir>/deliveries`.
#[derive(Clone, Debug)]
pub struct Attempts {
    root: PathBuf,
}

/// One attempt: its file, made durable before the delivery.
#[derive(Clone, Debug)]
pub struct Attempt {
    path: PathBuf,
    c_path: CString,
}

/// An incident id as a folder name: itself when it is a plain name, else
/// `~` and a UUID of it (never a plain name, so never another's).
pub fn folder_name(incident_id: &str) -> String {
    let plain = !incident_id.is_empty()
        && incident_id.len() <= 128
        && !incident_id.starts_with('.')
        && incident_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        incident_id.to_string()
    } else {
        format!(
            "~{}",
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, incident_id.as_bytes())
        )
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn lock_nb(f: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl Attempts {
    pub fn new(state_dir: &Path) -> Self {
        Attempts {
            root: state_dir.join("deliveries"),
        }
    }

    fn dir(&self, incident_id: &str) -> PathBuf {
        self.root.join(folder_name(incident_id))
    }

    /// The attempt numbers in an incident's folder, highest last.
    fn numbers(dir: &Path) -> io::Result<Vec<u32>> {
        let mut ns: Vec<u32> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        ns.sort_unstable();
        Ok(ns)
    }

    /// Settle the incident's latest attempt ([`decide`]) and, when it is
    /// to be delivered, make the next attempt durable.
    pub fn claim(&self, incident_id: &str) -> Claim {
        let dir = self.dir(incident_id);
        let latest = match Self::numbers(&dir) {
            Ok(ns) => ns.last().copied(),
            Err(e) => {
                return Claim::Defer {
                    why: decide(Some(Err(e.to_string()))).why(),
                }
            }
        };
        let looked = latest.map(|n| look(&dir.join(n.to_string())));
        let (seen, held) = match looked {
            None => (None, None),
            Some(Ok((seen, f))) => (Some(Ok(seen)), Some(f)),
            Some(Err(e)) => (Some(Err(e.to_string())), None),
        };
        match decide(seen) {
            Decision::Delivered { why } => Claim::Delivered { why },
            Decision::Defer { why } => Claim::Defer { why },
            Decision::Deliver { void_latest } => {
                if void_latest {
                    if let Some(mut f) = held {
                        // Still under the lock: a child reaching its
                        // pre-exec check after this aborts.
                        if let Err(e) = f.write_all(VOID).and_then(|()| f.sync_data()) {
                            return Claim::Defer {
                                why: format!("cannot give up its unstarted delivery attempt ({e}): not delivering it twice"),
                            };
                        }
                    }
                }
                match self.begin(&dir, latest.map_or(1, |n| n + 1)) {
                    Ok(a) => Claim::Deliver(a),
                    Err(e) => Claim::Defer {
                        why: format!(
                            "cannot record its delivery attempt in {} ({e}): not delivering what a crash would deliver again",
                            dir.display()
                        ),
                    },
                }
            }
        }
    }

    /// Create attempt `n`, durable (file, its folder, and the folder's
    /// parent when the folder is new) before anything is sent.
    fn begin(&self, dir: &Path, n: u32) -> io::Result<Attempt> {
        let fresh = !dir.is_dir();
        crate::private::create_dir_all(dir)?;
        if fresh {
            sync_dir(&self.root)?;
        }
        let path = dir.join(n.to_string());
        {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(crate::private::FILE_MODE)
                .open(&path)?;
            f.sync_all()?;
        }
        sync_dir(dir)?;
        crate::fault::kill_point("attempt-claimed");
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::other("a NUL byte in the attempt's path"))?;
        Ok(Attempt { path, c_path })
    }

    /// The incident's `complete` is durable: its attempts are history.
    pub fn finish(&self, incident_id: &str) {
        let dir = self.dir(incident_id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(incident = %incident_id, "cannot remove {}: {e}", dir.display());
            }
        }
    }

    /// Remove the folders left by incidents that ended (their `complete` or
    /// `cancel` durable, yet the folder still there: a crash right after
    /// it). `ended` is asked by folder name ([`folder_name`]); a folder it
    /// does not know is kept (its store may only be unreadable now). Run at
    /// start-up, before any claim.
    pub fn sweep(&self, ended: impl Fn(&str) -> bool) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let mut removed = 0;
        for e in rd.flatten() {
            let name = e.file_name();
            if !ended(name.to_string_lossy().as_ref()) {
                continue;
            }
            if std::fs::remove_dir_all(e.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

impl Decision {
    fn why(self) -> String {
        match self {
            Decision::Delivered { why } | Decision::Defer { why } => why,
            Decision::Deliver { .. } => String::new(),
        }
    }
}

/// Open an attempt file and see what it says; the returned file holds its
/// lock when the lock was free (dropping it unlocks).
fn look(path: &Path) -> io::Result<(Seen, File)> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    if !lock_nb(&f)? {
        return Ok((Seen::Running, f));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    use std::io::Seek;
    f.seek(io::SeekFrom::Start(0))?;
    Ok((Seen::of_bytes(&bytes), f))
}

impl Attempt {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Have a respawned CLI's child take this attempt before exec: lock it
    /// (held across exec), refuse to start when it is `void`, write
    /// `started` and fdatasync it.
    pub fn arm(&self, cmd: &mut tokio::process::Command) {
        let path = self.c_path.clone();
        // SAFETY: the hook runs between fork and exec and makes only raw
        // syscalls (open, flock, pread, pwrite, fdatasync) on memory made
        // before the fork: no allocation, no lock.
        unsafe {
            cmd.pre_exec(move || take_in_child(&path));
        }
    }

    /// A FIFO delivery's line is in the pipe: record it, durably.
    pub fn mark_sent(&self) -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        f.write_all(SENT)?;
        f.sync_data()
    }

    /// The delivery ended without counting (deferred: the session's owner
    /// or a lingering writer has it): the attempt goes, so the next one is
    /// not taken for a delivery.
    pub fn withdraw(&self) -> io::Result<()> {
        std::fs::remove_file(&self.path)?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))
    }
}

/// The child's side (between fork and exec; async-signal-safe).
fn take_in_child(path: &std::ffi::CStr) -> io::Result<()> {
    let last = io::Error::last_os_error;
    // SAFETY: plain syscalls on a valid C string and a stack buffer.
    unsafe {
        // Not O_CLOEXEC: the lock must live as long as the CLI.
        let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOFOLLOW);
        if fd < 0 {
            return Err(last());
        }
        while libc::flock(fd, libc::LOCK_EX) != 0 {
            let e = last();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
        let mut buf = [0u8; 8];
        let n = libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
        if n < 0 {
            return Err(last());
        }
        if buf[..n as usize].starts_with(b"void") {
            return Err(io::Error::from_raw_os_error(libc::ECANCELED));
        }
        let w = libc::pwrite(fd, STARTED.as_ptr().cast(), STARTED.len(), 0);
        if w != STARTED.len() as isize {
            return Err(if w < 0 {
                last()
            } else {
                io::Error::from_raw_os_error(libc::EIO)
            });
        }
        if libc::fdatasync(fd) != 0 {
            return Err(last());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_file_says() {
        assert_eq!(Seen::of_bytes(b""), Seen::Claimed);
        assert_eq!(Seen::of_bytes(b"started\n"), Seen::Started);
        assert_eq!(Seen::of_bytes(b"sent\n"), Seen::Sent);
        assert_eq!(Seen::of_bytes(b"void\n"), Seen::Void);
        assert_eq!(Seen::of_bytes(b"sta"), Seen::Other);
        assert_eq!(Seen::of_bytes(b"\0\0\0\0\0\0\0\0"), Seen::Other);
    }

    #[test]
    fn only_an_attempt_that_never_started_is_delivered_again() {
        assert_eq!(decide(None), Decision::Deliver { void_latest: false });
        assert_eq!(
            decide(Some(Ok(Seen::Void))),
            Decision::Deliver { void_latest: false }
        );
        assert_eq!(
            decide(Some(Ok(Seen::Claimed))),
            Decision::Deliver { void_latest: true }
        );
        for (seen, says) in [
            (Seen::Running, "still running"),
            (Seen::Started, "had started"),
            (Seen::Sent, "relay's FIFO"),
            (Seen::Other, "being started"),
        ] {
            match decide(Some(Ok(seen.clone()))) {
                Decision::Delivered { why } => {
                    assert!(why.starts_with("delivered before a restart"), "{why}");
                    assert!(why.contains(says), "{seen:?}: {why}");
                }
                d => panic!("{seen:?}: {d:?}"),
            }
        }
        assert!(matches!(
            decide(Some(Err("EIO".into()))),
            Decision::Defer { why } if why.contains("EIO")
        ));
    }

    #[test]
    fn odd_incident_ids_get_a_plain_folder_of_their_own() {
        assert_eq!(folder_name("abc-123_x.y"), "abc-123_x.y");
        for odd in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            let f = folder_name(odd);
            assert!(f.starts_with('~') && !f.contains('/'), "{odd:?}: {f}");
        }
        assert_ne!(folder_name("a/b"), folder_name("a/c"));
    }

    #[test]
    fn a_claimed_attempt_is_voided_and_the_next_made() {
        let d = tempfile::tempdir().unwrap();
        let a = Attempts::new(d.path());
        let Claim::Deliver(first) = a.claim("i-1") else {
            panic!()
        };
        assert!(first.path().ends_with("deliveries/i-1/1"));
        assert_eq!(std::fs::read(first.path()).unwrap(), b"");
        // A restart: never started, so voided and attempt 2 made.
        let Claim::Deliver(second) = a.claim("i-1") else {
            panic!()
        };
        assert_eq!(std::fs::read(first.path()).unwrap(), VOID);
        assert!(second.path().ends_with("deliveries/i-1/2"));
        second.mark_sent().unwrap();
        assert!(matches!(a.claim("i-1"), Claim::Delivered { why } if why.contains("FIFO")));
        // Withdrawn: the void one before it is the latest again.
        second.withdraw().unwrap();
        let Claim::Deliver(again) = a.claim("i-1") else {
            panic!()
        };
        assert!(again.path().ends_with("deliveries/i-1/2"));
        assert_eq!(a.sweep(|name| name == "i-9"), 0);
        assert_eq!(a.sweep(|name| name == "i-1"), 1);
        assert!(!d.path().join("deliveries/i-1").exists());
    }

    #[tokio::test]
    async fn the_child_takes_the_attempt_and_holds_its_lock_while_it_runs() {
        let d = tempfile::tempdir().unwrap();
        let a = Attempts::new(d.path());
        let Claim::Deliver(att) = a.claim("i-2") else {
            panic!()
        };
        let mut cmd = tokio::process::Command::new("sleep");
        cmd.arg("30").kill_on_drop(true);
        att.arm(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        assert_eq!(std::fs::read(att.path()).unwrap(), STARTED);
        let (seen, _f) = look(att.path()).unwrap();
        assert_eq!(seen, Seen::Running, "the lock lives across exec");
        child.kill().await.unwrap();
        let (seen, _f) = look(att.path()).unwrap();
        assert_eq!(seen, Seen::Started);
    }

    #[tokio::test]
    async fn a_child_of_a_voided_attempt_never_starts() {
        let d = tempfile::tempdir().unwrap();
        let a = Attempts::new(d.path());
        let Claim::Deliver(att) = a.claim("i-3") else {
            panic!()
        };
        std::fs::write(att.path(), VOID).unwrap();
        let mark = d.path().join("ran");
        let mut cmd = tokio::process::Command::new("touch");
        cmd.arg(&mark);
        att.arm(&mut cmd);
        let e = cmd.spawn().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECANCELED), "{e}");
        assert!(!mark.exists());
        assert_eq!(std::fs::read(att.path()).unwrap(), VOID);
    }
}
