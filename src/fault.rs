//! Injected panics, for the tests that show no part of the daemon dies
//! silently. A debug build panics at the point named by the environment
//! variable `ZAG_RESUMED_PANIC_AT` (`disk`: a disk worker of the core,
//! `ingest`: the ingest thread at a hit, `timer`: the timer task at a
//! fire); a release build compiles this to nothing.

/// Panic here if this is the point the environment names (debug builds).
pub fn panic_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("ZAG_RESUMED_PANIC_AT").is_ok_and(|p| p == point) {
        panic!("injected panic at {point} (ZAG_RESUMED_PANIC_AT)");
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
