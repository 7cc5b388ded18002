//! The central timer: one task owns every pending deadline.
//!
//! Deadlines live in a sorted set keyed by (due, incident); the task sleeps
//! until the earliest and is woken early only by a command (a sooner arm, a
//! disarm) or by the clock reporting a step. There is no task per incident
//! and no polling: an idle daemon with nothing due makes no wake-ups beyond
//! the one pending sleep. Others talk to it through a [`TimerHandle`].

use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;

/// One armed deadline.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerEntry {
    pub due: DateTime<Utc>,
    pub incident_id: String,
}

enum Command {
    Arm(TimerEntry),
    Disarm(String),
    Snapshot(oneshot::Sender<Vec<TimerEntry>>),
}

/// Cheap to clone; every clone talks to the same timer task.
#[derive(Clone, Debug)]
pub struct TimerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Arm(e) => write!(f, "Arm({e:?})"),
            Command::Disarm(id) => write!(f, "Disarm({id})"),
            Command::Snapshot(_) => f.write_str("Snapshot"),
        }
    }
}

impl TimerHandle {
    /// Arm (or re-arm at a new time) an incident.
    pub fn arm(&self, incident_id: impl Into<String>, due: DateTime<Utc>) {
        let _ = self.tx.send(Command::Arm(TimerEntry {
            due,
            incident_id: incident_id.into(),
        }));
    }

    /// Forget an incident; it will not fire.
    pub fn disarm(&self, incident_id: impl Into<String>) {
        let _ = self.tx.send(Command::Disarm(incident_id.into()));
    }

    /// Everything armed, soonest first.
    pub async fn snapshot(&self) -> Vec<TimerEntry> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Snapshot(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

/// Pending deadlines: the pure part of the timer.
#[derive(Debug, Default)]
pub struct Deadlines {
    by_time: BTreeSet<TimerEntry>,
    by_id: HashMap<String, DateTime<Utc>>,
}

impl Deadlines {
    pub fn arm(&mut self, e: TimerEntry) {
        self.disarm(&e.incident_id);
        self.by_id.insert(e.incident_id.clone(), e.due);
        self.by_time.insert(e);
    }

    pub fn disarm(&mut self, id: &str) {
        if let Some(due) = self.by_id.remove(id) {
            self.by_time.remove(&TimerEntry {
                due,
                incident_id: id.to_string(),
            });
        }
    }

    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.by_time.first().map(|e| e.due)
    }

    /// Remove and return every entry due at or before `now`, soonest first.
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<TimerEntry> {
        let mut out = Vec::new();
        while let Some(first) = self.by_time.first() {
            if first.due > now {
                break;
            }
            let e = self.by_time.pop_first().expect("checked non-empty");
            self.by_id.remove(&e.incident_id);
            out.push(e);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn entries(&self) -> Vec<TimerEntry> {
        self.by_time.iter().cloned().collect()
    }
}

/// Start the timer task. Due entries are sent on `fired`; the task ends when
/// every handle is dropped or `fired` is closed.
pub fn spawn(
    clock: Arc<dyn Clock>,
    fired: mpsc::UnboundedSender<TimerEntry>,
) -> (TimerHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(clock, rx, fired));
    (TimerHandle { tx }, task)
}

async fn run(
    clock: Arc<dyn Clock>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    fired: mpsc::UnboundedSender<TimerEntry>,
) {
    let mut deadlines = Deadlines::default();
    loop {
        for e in deadlines.pop_due(clock.now()) {
            if fired.send(e).is_err() {
                return;
            }
        }
        let sleep = deadlines.next_due().map(|d| clock.sleep_until(d));
        tokio::select! {
            // A command may bring a sooner deadline: handle it, then re-plan.
            cmd = commands.recv() => match cmd {
                None => return,
                Some(Command::Arm(e)) => deadlines.arm(e),
                Some(Command::Disarm(id)) => deadlines.disarm(&id),
                Some(Command::Snapshot(reply)) => { let _ = reply.send(deadlines.entries()); }
            },
            // The earliest deadline passed, or the clock moved: re-check all.
            () = async { match sleep { Some(s) => s.await, None => std::future::pending().await } } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::{Duration, TimeZone};

    #[test]
    fn deadlines_pop_in_order_and_rearm_moves() {
        let t = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let mut d = Deadlines::default();
        d.arm(TimerEntry {
            due: t + Duration::seconds(5),
            incident_id: "b".into(),
        });
        d.arm(TimerEntry {
            due: t + Duration::seconds(9),
            incident_id: "a".into(),
        });
        d.arm(TimerEntry {
            due: t + Duration::seconds(1),
            incident_id: "a".into(),
        });
        assert_eq!(d.len(), 2);
        assert_eq!(d.next_due(), Some(t + Duration::seconds(1)));
        let popped = d.pop_due(t + Duration::seconds(5));
        assert_eq!(
            popped
                .iter()
                .map(|e| e.incident_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(d.is_empty());
    }

    #[tokio::test]
    async fn fires_when_the_clock_reaches_the_deadline_and_not_after_disarm() {
        let t = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(t);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (h, _task) = spawn(clock.clone(), tx);
        h.arm("x", t + Duration::seconds(10));
        h.arm("y", t + Duration::seconds(20));
        h.disarm("y");
        assert_eq!(h.snapshot().await.len(), 1);
        clock.advance(Duration::seconds(9));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv())
                .await
                .is_err()
        );
        clock.advance(Duration::seconds(30));
        let e = rx.recv().await.unwrap();
        assert_eq!(e.incident_id, "x");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv())
                .await
                .is_err()
        );
    }
}
