//! Injected faults, for the tests that run the real binary and show no part
//! of the daemon dies silently, no crash doubles a delivery and a slow disk
//! stalls nothing but its own write. A debug build panics at the point named
//! by the environment variable `ZAG_RESUMED_PANIC_AT` (`disk`: a disk worker
//! of the core, `ingest`: the ingest thread at a hit, `timer`: the timer task
//! at a fire); SIGKILLs itself at the point named by `ZAG_RESUMED_KILL_AT`
//! (`attempt-claimed`: a delivery attempt is durable, nothing started yet;
//! `cli-started`: a respawned CLI was just started); and with
//! `ZAG_RESUMED_SLOW_STORE=SECS:PATH` makes every append to the store at
//! `PATH` (the file or its directory) take `SECS` seconds more. A release
//! build compiles all of it to nothing.

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

/// Hold an append to `store` for as long as `ZAG_RESUMED_SLOW_STORE` says,
/// if it names this store (debug builds). A value that does not parse is
/// reported and ignored.
pub fn slow_store(store: &std::path::Path) {
    #[cfg(debug_assertions)]
    if let Ok(value) = std::env::var("ZAG_RESUMED_SLOW_STORE") {
        match parse_slow_store(&value) {
            Some((secs, path)) if store == path || store.parent() == Some(path) => {
                tracing::info!(store = %store.display(), secs, "slow store (ZAG_RESUMED_SLOW_STORE): holding this append");
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            }
            Some(_) => {}
            None => tracing::warn!(
                "ZAG_RESUMED_SLOW_STORE={value:?} ignored: expected SECS:PATH (e.g. 6:/home/me/.zag/scheduled_resumes.jsonl)"
            ),
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = store;
}

/// `SECS:PATH` (seconds, maybe fractional, not negative).
#[cfg(debug_assertions)]
fn parse_slow_store(value: &str) -> Option<(f64, &std::path::Path)> {
    let (secs, path) = value.split_once(':')?;
    let secs: f64 = secs.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0 && !path.is_empty()).then_some((secs, path.as_ref()))
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn a_slow_store_is_seconds_then_a_path() {
        assert_eq!(
            parse_slow_store("6:/h/.zag/s.jsonl"),
            Some((6.0, "/h/.zag/s.jsonl".as_ref()))
        );
        assert_eq!(parse_slow_store("0.5:/a:b"), Some((0.5, "/a:b".as_ref())));
        for bad in ["", "6", "6:", "x:/a", "-1:/a", "inf:/a", "NaN:/a"] {
            assert_eq!(parse_slow_store(bad), None, "{bad:?}");
        }
    }
}
