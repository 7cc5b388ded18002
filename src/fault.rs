//! Injected faults, for the tests that show no part of the daemon dies
//! silently and no crash doubles a delivery. A debug build panics at the
//! point named by the environment variable `ZAG_RESUMED_PANIC_AT` (`disk`:
//! a disk worker of the core, `ingest`: the ingest thread at a hit,
//! `timer`: the timer task at a fire), and SIGKILLs itself at the point
//! named by `ZAG_RESUMED_KILL_AT` (`attempt-claimed`: a delivery attempt is
//! durable, nothing started yet; `cli-started`: a respawned CLI was just
//! started); a release build compiles this to nothing.

/// Panic here if this is the point the environment names (debug builds).
pub fn panic_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("ZAG_RESUMED_PANIC_AT").is_ok_and(|p| p == point) {
        panic!("injected panic at {point} (ZAG_RESUMED_PANIC_AT)");
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Die by SIGKILL here, as a crash or an OOM kill would, if this is the
/// point the environment names (debug builds).
pub fn kill_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("ZAG_RESUMED_KILL_AT").is_ok_and(|p| p == point) {
        tracing::warn!("injected SIGKILL at {point} (ZAG_RESUMED_KILL_AT)");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
