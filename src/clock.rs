//! Wall-clock time, injectable.
//!
//! Deadlines are UTC wall times, because a resume is due at a wall time and an
//! `Instant` means nothing after a restart or a suspend. [`Clock::sleep_until`]
//! must therefore wake at a *wall* deadline: tokio's timers run on the
//! monotonic clock, which stops during suspend, so the system clock is built on
//! a `CLOCK_REALTIME` timerfd that also reports clock steps. Tests inject a
//! manual clock and move it by hand; nothing in the daemon calls `Utc::now()`
//! directly.
//!
//! # The Linux system clock
//!
//! Each [`SystemClock::sleep_until`] arms a fresh
//! `timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK|TFD_CLOEXEC)` with
//! `TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET` at the wall deadline and waits
//! for it through tokio's reactor (`AsyncFd`), so:
//!
//! - an absolute realtime timer expires by the wall clock, and the kernel
//!   re-checks expired realtime timers on resume: a laptop that slept through
//!   the deadline wakes the sleeper as soon as it is back, not after the
//!   suspended time once more (which is what a monotonic `tokio::time::sleep`
//!   would do);
//! - a discontinuous change of the realtime clock (`settimeofday`, NTP step,
//!   manual date change) makes the read fail with `ECANCELED`: the sleep
//!   resolves early and the caller re-reads `now()` and re-plans. A time-zone
//!   change does not move UTC at all, and nothing here works in local time;
//! - while waiting, the process makes no wake-ups at all: the fd sits in
//!   epoll until the kernel reports it.
//!
//! If the timerfd cannot be created (fd exhaustion, a seccomp filter), and on
//! non-Linux targets, the fallback sleeps on tokio's monotonic timer in slices
//! of at most [`FALLBACK_SLICE`], re-reading the wall clock after each slice.
//! That bounds the lateness after a suspend or a forward step to one slice,
//! at the price of one wake-up per slice while a deadline is pending (an idle
//! daemon with nothing armed still makes none). It is not exercised by the
//! tests here, which run on Linux.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;

/// An RFC 3339 timestamp as UTC (the form every log and store line uses).
pub fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    fast_rfc3339(s.as_bytes()).or_else(|| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The exact RFC 3339 shape zag and this daemon write
/// (`2030-01-01T08:00:00[.fraction](Z|±HH:MM)`), read by hand; `None` for
/// anything else (callers fall back to chrono). chrono's general parser
/// is several times slower, which shows in a 100,000-record replay.
pub fn fast_rfc3339(b: &[u8]) -> Option<DateTime<Utc>> {
    // Digit by digit, by index: a replay reads three of these per record.
    let digit = |i: usize| -> Option<u32> {
        let d = b.get(i)?.wrapping_sub(b'0');
        (d < 10).then_some(u32::from(d))
    };
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (y, mo, d) = (two(0)? * 100 + two(2)?, two(5)?, two(8)?);
    let (h, mi, sec) = (two(11)?, two(14)?, two(17)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if at(i, b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(n) = digit(i) {
            if digits == 9 {
                return None;
            }
            nanos = nanos * 10 + n;
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        nanos *= 10u32.pow(9 - digits);
    }
    let offset_secs = match b.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let v = i64::from(two(i + 1)? * 3600 + two(i + 4)? * 60);
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    // Leap seconds, hour 24 and other rarities are left to chrono.
    let naive =
        chrono::NaiveDate::from_ymd_opt(y as i32, mo, d)?.and_hms_nano_opt(h, mi, sec, nanos)?;
    if sec > 59 || offset_secs.abs() >= 86_400 {
        return None;
    }
    Some(match offset_secs {
        0 => naive.and_utc(),
        _ => naive.and_utc() - chrono::Duration::seconds(offset_secs),
    })
}

/// A boxed future, as returned by the clock.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The daemon's source of time.
pub trait Clock: Send + Sync + 'static {
    /// The current wall time.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves at or after the wall time `deadline`, or earlier when the wall
    /// clock was stepped (the caller re-reads [`Clock::now`] and decides).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<()>;
}

/// Longest single tokio sleep of the portable fallback (see module docs).
pub const FALLBACK_SLICE: std::time::Duration = std::time::Duration::from_secs(1);

/// The real clock: a realtime timerfd on Linux, a sliced tokio sleep elsewhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<()> {
        Box::pin(async move {
            #[cfg(target_os = "linux")]
            {
                // Created on first poll, so inside the runtime's reactor.
                match timerfd::RealtimeTimer::at(deadline) {
                    Ok(t) => {
                        t.wait().await;
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "timerfd unavailable, sleeping on tokio in slices");
                    }
                }
            }
            sliced_sleep_until(deadline).await;
        })
    }
}

/// Sleep on tokio's (monotonic) timer for at most one [`FALLBACK_SLICE`], or
/// less when the deadline is nearer; the caller re-checks the wall clock.
async fn sliced_sleep_until(deadline: DateTime<Utc>) {
    let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait.min(FALLBACK_SLICE)).await;
}

#[cfg(target_os = "linux")]
mod timerfd {
    use chrono::{DateTime, Utc};
    use std::io;
    use std::os::fd::OwnedFd;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    /// An armed absolute `CLOCK_REALTIME` timerfd registered with tokio.
    pub(super) struct RealtimeTimer {
        fd: AsyncFd<OwnedFd>,
    }

    impl RealtimeTimer {
        pub(super) fn at(deadline: DateTime<Utc>) -> io::Result<Self> {
            use rustix::time::{
                timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
                TimerfdTimerFlags, Timespec,
            };
            let owned = timerfd_create(
                TimerfdClockId::Realtime,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            let mut secs = deadline.timestamp();
            let mut nsecs = i64::from(deadline.timestamp_subsec_nanos());
            // An all-zero it_value would *disarm* the timer: use 1 ns instead.
            if secs <= 0 && nsecs == 0 {
                secs = 0;
                nsecs = 1;
            }
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: secs.max(0),
                    tv_nsec: nsecs,
                },
            };
            timerfd_settime(
                &owned,
                TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
                &spec,
            )?;
            // SAFETY: `owned` is a valid open fd that the AsyncFd owns (and
            // closes) for its whole lifetime.
            let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE)? };
            Ok(RealtimeTimer { fd })
        }

        /// Resolves when the deadline passes or the clock is stepped
        /// (`ECANCELED`). Any other error also resolves: the caller re-plans
        /// from `now()`, which is always safe, merely one extra wake-up.
        pub(super) async fn wait(self) {
            loop {
                let mut guard = match self.fd.readable().await {
                    Ok(g) => g,
                    Err(_) => return,
                };
                let res = guard.try_io(|inner| {
                    let mut buf = [0u8; 8];
                    rustix::io::read(inner, &mut buf)
                        .map(drop)
                        .map_err(io::Error::from)
                });
                match res {
                    Ok(Ok(())) => return, // expired
                    Ok(Err(e))
                        if e.raw_os_error() == Some(rustix::io::Errno::CANCELED.raw_os_error()) =>
                    {
                        return
                    } // stepped
                    Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Ok(Err(_)) => return,
                    Err(_would_block) => continue, // spurious readiness
                }
            }
        }
    }
}

/// A clock moved by hand, for tests: sleepers wake when it is moved.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
    moved: tokio::sync::watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> std::sync::Arc<Self> {
        let (moved, _) = tokio::sync::watch::channel(start);
        std::sync::Arc::new(ManualClock {
            now: std::sync::Mutex::new(start),
            moved,
        })
    }

    /// Set the wall time (forward or back) and wake every sleeper.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().expect("clock lock") = t;
        self.moved.send_replace(t);
    }

    pub fn advance(&self, d: chrono::Duration) {
        let t = self.now() + d;
        self.set(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<()> {
        let mut rx = self.moved.subscribe();
        Box::pin(async move {
            if *rx.borrow_and_update() >= deadline {
                return;
            }
            // Any move wakes the caller: it may be a step back.
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// A time as a log field: RFC 3339 to the second (`2030-01-01T08:00:30Z`),
/// or `unknown`; never `Some(…)`.
pub fn log_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "unknown".into(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// A time for people: "2030-01-01 08:00 UTC".
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Every `.rs` file under `dir`.
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// The wall clock is read here only: everything else takes `now` or a
    /// [`Clock`], so tests move time by hand. Test modules may read it.
    #[test]
    fn no_wall_clock_read_outside_the_clock_module() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.len() > 20, "{files:?}");
        let mut found = Vec::new();
        for f in files {
            if f.ends_with("src/clock.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                let line = line.split("//").next().unwrap_or("");
                if ["Utc::now(", "Local::now(", "SystemTime::now("]
                    .iter()
                    .any(|r| line.contains(r))
                {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(found.is_empty(), "wall-clock reads: {found:#?}");
    }

    #[tokio::test]
    async fn system_clock_wakes_at_a_wall_deadline_within_tolerance() {
        let start = Instant::now();
        let deadline = Utc::now() + chrono::Duration::milliseconds(200);
        SystemClock.sleep_until(deadline).await;
        let late = Utc::now() - deadline;
        let took = start.elapsed();
        assert!(late >= chrono::Duration::zero(), "woke early by {late}");
        assert!(late < chrono::Duration::milliseconds(50), "late by {late}");
        assert!(took >= Duration::from_millis(190), "took {took:?}");
    }

    #[tokio::test]
    async fn system_clock_past_deadline_resolves_at_once() {
        let start = Instant::now();
        SystemClock
            .sleep_until(Utc::now() - chrono::Duration::hours(1))
            .await;
        SystemClock.sleep_until(DateTime::<Utc>::UNIX_EPOCH).await;
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn dropping_a_system_sleep_releases_its_fd() {
        // Arm and drop many far sleeps: fds must not leak.
        for _ in 0..300 {
            let far = Utc::now() + chrono::Duration::days(1);
            let s = SystemClock.sleep_until(far);
            let r = tokio::time::timeout(Duration::from_millis(0), s).await;
            assert!(r.is_err());
        }
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_on_any_move() {
        let t = Utc::now();
        let c = ManualClock::new(t);
        let s = c.sleep_until(t + chrono::Duration::hours(1));
        let c2 = c.clone();
        tokio::spawn(async move { c2.advance(-chrono::Duration::minutes(5)) });
        tokio::time::timeout(Duration::from_secs(1), s)
            .await
            .expect("woken by a step back");
    }
}
