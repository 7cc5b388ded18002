//! systemd's service notification protocol, without a crate.
//!
//! [`sd_notify`] sends one datagram per state to `$NOTIFY_SOCKET` (a path or
//! an abstract `@name`); [`watchdog_interval`] and [`spawn_watchdog`] keep
//! systemd's watchdog fed; [`reloading_message`] announces a reload. Outside
//! systemd they are no-ops.
//!
//! The watchdog decision is a pure function of the values passed in, so it
//! tests without a systemd.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::Duration;

/// Send a state (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, `RELOADING=1`,
/// `STATUS=…`; several separated by newlines) to systemd.
///
/// `Ok(false)` when not started by systemd (`$NOTIFY_SOCKET` unset or empty);
/// `Ok(true)` once the datagram is sent.
pub fn sd_notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(s) if !s.is_empty() => sd_notify_to(&s, state).map(|()| true),
        _ => Ok(false),
    }
}

/// The message announcing a reload: `RELOADING=1` with the
/// `MONOTONIC_USEC=` that systemd 253+ requires alongside it (older versions
/// ignore it). Send `READY=1` once the reload is done.
pub fn reloading_message() -> String {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let usec = (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000;
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// Send `state` to an explicit notify socket: a path, or `@name` for a Linux
/// abstract socket.
pub fn sd_notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        send_abstract(&sock, name, state.as_bytes())?
    } else if bytes.first() == Some(&b'/') {
        sock.send_to(state.as_bytes(), Path::new(socket))?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("unsupported NOTIFY_SOCKET {socket:?}"),
        ));
    };
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write to NOTIFY_SOCKET",
        ));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(
    sock: &std::os::unix::net::UnixDatagram,
    name: &[u8],
    data: &[u8],
) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(data, &addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(
    _sock: &std::os::unix::net::UnixDatagram,
    _name: &[u8],
    _data: &[u8],
) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

/// systemd's watchdog period for this process, from `$WATCHDOG_USEC` (and
/// `$WATCHDOG_PID` when set). Ping with `WATCHDOG=1` at half of it.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// [`watchdog_interval`] over explicit values.
pub fn watchdog_interval_from(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// Spawn a task that sends `WATCHDOG=1` at half the watchdog period until
/// `shutdown` fires; `None` when systemd asked for no watchdog.
///
/// The pings come from the runtime, so they prove the runtime is scheduling
/// tasks. A daemon that wants them to prove more (the timer loop turns) can
/// instead ping from that loop with [`watchdog_interval`].
pub fn spawn_watchdog(
    shutdown: tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let period = watchdog_interval()? / 2;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Stop pinging once shutdown starts: STOPPING=1 takes over.
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = sd_notify("WATCHDOG=1") {
                        tracing::warn!("watchdog ping failed: {e}");
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloading_carries_a_monotonic_stamp() {
        let m = reloading_message();
        let (first, second) = m.split_once('\n').unwrap();
        assert_eq!(first, "RELOADING=1");
        let usec: u64 = second
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
    }

    #[test]
    fn watchdog_interval_parsing() {
        let own = 42;
        assert_eq!(watchdog_interval_from(None, None, own), None);
        assert_eq!(
            watchdog_interval_from(Some("30000000"), None, own),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("42"), own),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("7"), own),
            None
        );
        assert_eq!(watchdog_interval_from(Some("0"), None, own), None);
        assert_eq!(watchdog_interval_from(Some("x"), None, own), None);
    }

    #[test]
    fn sd_notify_to_path_socket() {
        use std::os::unix::net::UnixDatagram;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify");
        let rx = UnixDatagram::bind(&p).unwrap();
        sd_notify_to(p.as_os_str(), "READY=1\nSTATUS=ok").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
        assert!(sd_notify_to(OsStr::new("relative"), "READY=1").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sd_notify_to_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let name = format!("zag-resumed-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        sd_notify_to(OsStr::new(&format!("@{name}")), "WATCHDOG=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
}
