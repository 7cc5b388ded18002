//! Wall-clock time, injectable.
//!
//! Deadlines are UTC wall times, because a resume is due at a wall time and an
//! `Instant` means nothing after a restart or a suspend. [`Clock::sleep_until`]
//! must therefore wake at a *wall* deadline: tokio's timers run on the
//! monotonic clock, which stops during suspend, so the system clock is built on
//! a `CLOCK_REALTIME` timerfd that also reports clock steps. Tests inject a
//! manual clock and move it by hand; nothing in the daemon calls `Utc::now()`
//! directly.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;

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

/// The real clock. Sleeps on tokio's timer, re-checking the wall clock on
/// wake-up (see the timer hardening issue for suspend and step handling).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<()> {
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
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
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                // Any move wakes the caller: it may be a step back.
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                return;
            }
        })
    }
}
