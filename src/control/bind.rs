//! Binding the control socket without stealing a live one.
//!
//! A socket file outlives a SIGKILLed daemon. Before binding we probe the
//! path, as pueue does: a socket that accepts a connection belongs to a live
//! daemon and is left alone; one that refuses is stale and is replaced.
//! Callers hold the instance lock ([`crate::lock`]) while binding, so two
//! daemons of one zag home never race to replace the same stale file; the
//! probe guards against everything else (an old daemon without the lock, a
//! hash collision on the fallback path).
//!
//! The socket is 0600 inside a 0700 directory: the directory alone keeps
//! other users out during the instant between `bind` and `chmod`, and the
//! server checks peer credentials on every connection besides.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// What is at a socket path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Nothing there.
    Absent,
    /// A listener accepts connections: a live daemon.
    Live,
    /// A socket file nobody listens on: left by a dead daemon.
    Stale,
    /// Something that is not a socket; never removed.
    NotASocket,
}

/// The longest socket path this platform's `sun_path` holds (NUL excluded):
/// 107 bytes on Linux, 103 on macOS.
pub fn sun_path_max() -> usize {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_path.len() - 1
}

/// Find out whether a daemon listens on `path`, without blocking: a
/// non-blocking connect either succeeds or is queued (live), is refused
/// (stale), or finds no file (absent).
pub fn probe(path: &Path) -> io::Result<Probe> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Absent),
        Err(e) => return Err(e),
        Ok(m) if !m.file_type().is_socket() => return Ok(Probe::NotASocket),
        Ok(_) => {}
    }
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() > sun_path_max() {
        return Err(too_long(path));
    }
    use rustix::io::Errno;
    use rustix::net::{
        connect, socket_with, AddressFamily, SocketAddrUnix, SocketFlags, SocketType,
    };
    let addr = SocketAddrUnix::new(path).map_err(|_| too_long(path))?;
    let fd = socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    match connect(&fd, &addr) {
        Ok(()) => Ok(Probe::Live),
        // Queued behind a full backlog: someone listens, just busily.
        Err(Errno::INPROGRESS) | Err(Errno::AGAIN) => Ok(Probe::Live),
        Err(Errno::CONNREFUSED) => Ok(Probe::Stale),
        Err(Errno::NOENT) => Ok(Probe::Absent),
        Err(e) => Err(e.into()),
    }
}

fn too_long(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "socket path {} is longer than {} bytes",
            path.display(),
            sun_path_max()
        ),
    )
}

/// Bind the control socket at `path`: create its directory (0700) if
/// missing, replace a stale socket, refuse to replace a live one or a
/// non-socket, and leave the new socket at mode 0600.
///
/// Must be called inside a tokio runtime (the listener registers with it),
/// and while holding the instance lock.
pub fn bind_socket(path: &Path) -> io::Result<tokio::net::UnixListener> {
    if path.as_os_str().as_bytes().len() > sun_path_max() {
        return Err(too_long(path));
    }
    if let Some(dir) = path.parent() {
        crate::lock::ensure_private_dir(dir)?;
    }
    match probe(path)? {
        Probe::Absent => {}
        Probe::Live => {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another zag-resumed is answering on {}; not replacing it",
                    path.display()
                ),
            ))
        }
        Probe::NotASocket => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; not removing it",
                    path.display()
                ),
            ))
        }
        Probe::Stale => {
            tracing::info!(socket = %path.display(), "removing stale control socket");
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_tells_absent_stale_live_and_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sock");
        assert_eq!(probe(&p).unwrap(), Probe::Absent);
        let live = std::os::unix::net::UnixListener::bind(&p).unwrap();
        assert_eq!(probe(&p).unwrap(), Probe::Live);
        drop(live); // std does not unlink: the file stays, refusing.
        assert!(p.exists());
        assert_eq!(probe(&p).unwrap(), Probe::Stale);
        let f = dir.path().join("plain");
        std::fs::write(&f, "x").unwrap();
        assert_eq!(probe(&f).unwrap(), Probe::NotASocket);
    }

    #[test]
    fn sun_path_limit_is_the_platforms() {
        let max = sun_path_max();
        assert!((100..=107).contains(&max), "{max}");
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("x".repeat(200));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let e = bind_socket(&long).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
