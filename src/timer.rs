//! The central timer: one task owns every pending deadline.
//!
//! Deadlines live in a sorted set keyed by (due, incident); the task sleeps
//! until the earliest and is woken early only by a command (an arm, a disarm)
//! or by the clock reporting a step. There is no task per incident and no
//! polling: the task holds exactly one clock sleep, re-created only when the
//! earliest deadline changes, so an idle daemon makes no wake-ups at all.
//! Others talk to it through a [`TimerHandle`].
//!
//! # Wall-clock semantics
//!
//! Deadlines are UTC wall times. After every wake-up (deadline, command or
//! clock step) the task re-reads [`Clock::now`] and fires everything due at or
//! before it, soonest first: a clock stepped (or a laptop resumed) past many
//! deadlines fires them all at once, and a clock stepped back fires nothing
//! early, because the sleep is simply re-armed at the same wall deadline.
//!
//! # Firing is not delivering
//!
//! An entry sent on `fired` has left the timer. A `disarm` that arrives after
//! that cannot recall it, so the receiver must re-check the store for a
//! tombstone right before delivery (see the commit point in [`crate::store`]).
//!
//! # Memory
//!
//! Deadlines are keyed by a typed [`TimerKey`]: an incident, or a re-probe
//! of a zag record's owner (adoption). Keys are interned: an incident whose
//! id is a canonical lowercase RFC 4122 UUID string (what zag and this
//! daemon write) is stored as its `u128`, any other key gets a small integer
//! and a side table. `cargo bench --bench timer` prints the bytes per entry.

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use crate::clock::{BoxFuture, Clock};

/// What a deadline is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// An incident's resume is due.
    Incident(String),
    /// Time to probe again whether the owner of zag's own pending record
    /// `zag_id` in `store` is still alive (see `store::adopt`).
    AdoptionProbe { store: PathBuf, zag_id: String },
}

impl TimerKey {
    /// The incident id, for an incident's key.
    pub fn incident_id(&self) -> Option<&str> {
        match self {
            TimerKey::Incident(id) => Some(id),
            TimerKey::AdoptionProbe { .. } => None,
        }
    }
}

impl From<String> for TimerKey {
    fn from(id: String) -> Self {
        TimerKey::Incident(id)
    }
}

impl From<&String> for TimerKey {
    fn from(id: &String) -> Self {
        TimerKey::Incident(id.clone())
    }
}

impl From<&str> for TimerKey {
    fn from(id: &str) -> Self {
        TimerKey::Incident(id.to_string())
    }
}

impl PartialEq<&str> for TimerKey {
    fn eq(&self, other: &&str) -> bool {
        self.incident_id() == Some(*other)
    }
}

/// One armed deadline.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerEntry {
    pub due: DateTime<Utc>,
    pub key: TimerKey,
}

/// Counters of the timer task, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerStats {
    /// Times the task woke up: a command batch, a deadline, or a clock step.
    pub wakeups: u64,
    /// Of those, wake-ups by the clock (deadline reached or clock stepped).
    pub clock_wakeups: u64,
    /// Entries sent on `fired`.
    pub fired: u64,
    /// Entries currently armed.
    pub pending: usize,
}

enum Command {
    Arm(TimerEntry),
    ArmMany(Vec<TimerEntry>),
    Disarm(TimerKey),
    Snapshot(oneshot::Sender<Vec<TimerEntry>>),
    Stats(oneshot::Sender<TimerStats>),
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
            Command::ArmMany(v) => write!(f, "ArmMany({})", v.len()),
            Command::Disarm(k) => write!(f, "Disarm({k:?})"),
            Command::Snapshot(_) => f.write_str("Snapshot"),
            Command::Stats(_) => f.write_str("Stats"),
        }
    }
}

impl TimerHandle {
    /// Arm (or re-arm at a new time) a key; a string is an incident id.
    pub fn arm(&self, key: impl Into<TimerKey>, due: DateTime<Utc>) {
        let _ = self.tx.send(Command::Arm(TimerEntry {
            due,
            key: key.into(),
        }));
    }

    /// Arm many incidents in one command (start-up re-arm).
    pub fn arm_many(&self, entries: Vec<TimerEntry>) {
        let _ = self.tx.send(Command::ArmMany(entries));
    }

    /// Forget an incident; it will not fire unless it already has (see the
    /// module docs: the receiver re-checks the store before delivering).
    pub fn disarm(&self, key: impl Into<TimerKey>) {
        let _ = self.tx.send(Command::Disarm(key.into()));
    }

    /// Everything armed, soonest first. Commands sent before this one from
    /// the same handle have been applied when it returns.
    pub async fn snapshot(&self) -> Vec<TimerEntry> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Snapshot(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The task's counters (wake-ups, fired, pending).
    pub async fn stats(&self) -> TimerStats {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Stats(tx)).is_err() {
            return TimerStats::default();
        }
        rx.await.unwrap_or_default()
    }
}

/// Compact form of a [`TimerKey`] (see "Memory" in the module docs).
type Key = u128;

/// Maps timer keys to compact keys. Incidents with canonical UUIDs map to
/// themselves and need no storage; other keys get compact keys whose UUID
/// version nibble is 0, which no packable UUID has, so the two kinds never
/// collide. Other incident ids sit in a side table of plain strings; the
/// few adoption probes in one of their own, so a probe's larger key costs
/// the incidents' side table nothing.
#[derive(Debug, Default)]
struct Interner {
    by_name: FxHashMap<Box<str>, Key>,
    by_key: FxHashMap<Key, Box<str>>,
    probes_by_key: FxHashMap<Key, TimerKey>,
    probe_keys: FxHashMap<TimerKey, Key>,
    next: u64,
}

impl Interner {
    fn packed(id: &str) -> Option<Key> {
        let u = uuid::Uuid::try_parse(id).ok()?;
        let version_ok = (1..=8).contains(&u.get_version_num());
        let variant_ok = u.get_variant() == uuid::Variant::RFC4122;
        // Only the exact canonical spelling round-trips through the key.
        let mut spelled = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let canonical = u.hyphenated().encode_lower(&mut spelled).as_bytes() == id.as_bytes();
        (version_ok && variant_ok && canonical).then(|| u.as_u128())
    }

    /// The key for `id`, if it is known (packed ids always are).
    fn lookup(&self, key: &TimerKey) -> Option<Key> {
        match key {
            TimerKey::Incident(id) => Self::packed(id).or_else(|| self.by_name.get(&**id).copied()),
            TimerKey::AdoptionProbe { .. } => self.probe_keys.get(key).copied(),
        }
    }

    fn intern(&mut self, key: &TimerKey) -> Key {
        if let Some(k) = self.lookup(key) {
            return k;
        }
        self.next += 1;
        let k = Key::from(self.next); // high 64 bits zero: version nibble 0
        match key {
            TimerKey::Incident(id) => {
                self.by_name.insert(id.as_str().into(), k);
                self.by_key.insert(k, id.as_str().into());
            }
            TimerKey::AdoptionProbe { .. } => {
                self.probe_keys.insert(key.clone(), k);
                self.probes_by_key.insert(k, key.clone());
            }
        }
        k
    }

    /// Drop a side-table key once nothing refers to it.
    fn forget(&mut self, k: Key) {
        if let Some(name) = self.by_key.remove(&k) {
            self.by_name.remove(&name);
        } else if let Some(probe) = self.probes_by_key.remove(&k) {
            self.probe_keys.remove(&probe);
        }
    }

    fn name(&self, k: Key) -> TimerKey {
        if let Some(n) = self.by_key.get(&k) {
            return TimerKey::Incident(n.to_string());
        }
        match self.probes_by_key.get(&k) {
            Some(p) => p.clone(),
            None => TimerKey::Incident(uuid::Uuid::from_u128(k).hyphenated().to_string()),
        }
    }
}

/// Pending deadlines: the pure part of the timer.
#[derive(Debug, Default)]
pub struct Deadlines {
    by_time: BTreeSet<(DateTime<Utc>, Key)>,
    by_id: FxHashMap<Key, DateTime<Utc>>,
    ids: Interner,
}

impl Deadlines {
    /// Arm, or move an already armed id to a new time.
    pub fn arm(&mut self, e: TimerEntry) {
        let k = self.ids.intern(&e.key);
        if let Some(old) = self.by_id.insert(k, e.due) {
            self.by_time.remove(&(old, k));
        }
        self.by_time.insert((e.due, k));
    }

    /// Arm a batch (the start-up re-arm). Into an empty timer the sorted set
    /// is built in one pass from sorted entries instead of 100,000 inserts;
    /// the result is the same as arming one by one, in order (the last entry
    /// of an id wins).
    pub fn arm_many(&mut self, entries: Vec<TimerEntry>) {
        if !self.by_id.is_empty() {
            entries.into_iter().for_each(|e| self.arm(e));
            return;
        }
        self.by_id.reserve(entries.len());
        for e in &entries {
            let k = self.ids.intern(&e.key);
            self.by_id.insert(k, e.due);
        }
        let mut sorted: Vec<(DateTime<Utc>, Key)> =
            self.by_id.iter().map(|(&k, &due)| (due, k)).collect();
        sorted.sort_unstable();
        self.by_time = sorted.into_iter().collect();
    }

    /// Forget a key; unknown keys are ignored. Returns whether it was armed.
    pub fn disarm(&mut self, key: impl Into<TimerKey>) -> bool {
        let Some(k) = self.ids.lookup(&key.into()) else {
            return false;
        };
        match self.by_id.remove(&k) {
            Some(due) => {
                self.by_time.remove(&(due, k));
                self.ids.forget(k);
                true
            }
            None => false,
        }
    }

    /// When `key` is due, if armed.
    pub fn due_of(&self, key: impl Into<TimerKey>) -> Option<DateTime<Utc>> {
        self.ids
            .lookup(&key.into())
            .and_then(|k| self.by_id.get(&k).copied())
    }

    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.by_time.first().map(|e| e.0)
    }

    /// Remove and return every entry due at or before `now`, soonest first.
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<TimerEntry> {
        let mut out = Vec::new();
        while let Some(&(due, k)) = self.by_time.first() {
            if due > now {
                break;
            }
            self.by_time.pop_first();
            self.by_id.remove(&k);
            out.push(TimerEntry {
                due,
                key: self.ids.name(k),
            });
            self.ids.forget(k);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Everything armed, soonest first.
    pub fn entries(&self) -> Vec<TimerEntry> {
        self.by_time
            .iter()
            .map(|&(due, k)| TimerEntry {
                due,
                key: self.ids.name(k),
            })
            .collect()
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

/// Commands applied per wake-up before re-planning (keeps a burst of arms
/// from re-arming the clock once per command, without starving the sleep).
const COMMAND_BATCH: usize = 4096;

async fn run(
    clock: Arc<dyn Clock>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    fired: mpsc::UnboundedSender<TimerEntry>,
) {
    let mut deadlines = Deadlines::default();
    let mut stats = TimerStats::default();
    // The one pending sleep and the deadline it was armed for.
    let mut sleep: Option<(DateTime<Utc>, BoxFuture<()>)> = None;
    loop {
        for e in deadlines.pop_due(clock.now()) {
            crate::fault::panic_point("timer");
            stats.fired += 1;
            if fired.send(e).is_err() {
                return;
            }
        }
        // Re-arm the clock only when the earliest deadline changed: a later
        // arm or a disarm behind the head costs no syscall.
        match deadlines.next_due() {
            None => sleep = None,
            Some(next) if sleep.as_ref().map(|s| s.0) != Some(next) => {
                sleep = Some((next, clock.sleep_until(next)));
            }
            Some(_) => {}
        }
        tokio::select! {
            // A command may bring a sooner deadline: apply the batch, re-plan.
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { return };
                stats.wakeups += 1;
                apply(&mut deadlines, &stats, cmd);
                for _ in 1..COMMAND_BATCH {
                    match commands.try_recv() {
                        Ok(cmd) => apply(&mut deadlines, &stats, cmd),
                        Err(_) => break,
                    }
                }
            }
            // The earliest deadline passed, or the clock was stepped: the
            // loop head re-reads now and fires what is due; nothing early.
            () = async {
                match sleep.as_mut() {
                    Some((_, s)) => s.as_mut().await,
                    None => std::future::pending().await,
                }
            } => {
                stats.wakeups += 1;
                stats.clock_wakeups += 1;
                sleep = None;
            }
        }
    }
}

fn apply(deadlines: &mut Deadlines, stats: &TimerStats, cmd: Command) {
    match cmd {
        Command::Arm(e) => deadlines.arm(e),
        Command::ArmMany(v) => deadlines.arm_many(v),
        Command::Disarm(key) => {
            deadlines.disarm(key);
        }
        Command::Snapshot(reply) => {
            let _ = reply.send(deadlines.entries());
        }
        Command::Stats(reply) => {
            let _ = reply.send(TimerStats {
                pending: deadlines.len(),
                ..*stats
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
    }

    fn quiet(rx: &mut mpsc::UnboundedReceiver<TimerEntry>) -> bool {
        rx.try_recv().is_err()
    }

    /// Two round trips through the timer task: the second is answered on
    /// a pass whose head (fire what is due at the clock's now) ran after
    /// the first was answered, so whatever the task would fire at the
    /// clock's present time has been sent by then.
    async fn settle(h: &TimerHandle) {
        h.stats().await;
        h.stats().await;
    }

    #[test]
    fn deadlines_pop_in_order_and_rearm_moves() {
        let t = t0();
        let mut d = Deadlines::default();
        d.arm(TimerEntry {
            due: t + Duration::seconds(5),
            key: "b".into(),
        });
        d.arm(TimerEntry {
            due: t + Duration::seconds(9),
            key: "a".into(),
        });
        d.arm(TimerEntry {
            due: t + Duration::seconds(1),
            key: "a".into(),
        });
        assert_eq!(d.len(), 2);
        assert_eq!(d.next_due(), Some(t + Duration::seconds(1)));
        let popped = d.pop_due(t + Duration::seconds(5));
        assert_eq!(
            popped
                .iter()
                .map(|e| e.key.incident_id().unwrap())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(d.is_empty());
        assert!(d.ids.by_name.is_empty() && d.ids.by_key.is_empty());
    }

    #[test]
    fn arming_a_batch_equals_arming_one_by_one() {
        let ids: Vec<String> = (0..50)
            .map(|i| match i % 3 {
                0 => uuid::Uuid::new_v4().to_string(),
                1 => format!("id-{}", i % 7), // repeats: the last one wins
                _ => format!("ID-{i}"),
            })
            .collect();
        let batch: Vec<TimerEntry> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| TimerEntry {
                due: t0() + Duration::seconds(((i * 37) % 11) as i64),
                key: id.clone().into(),
            })
            .collect();
        let mut one_by_one = Deadlines::default();
        batch.iter().cloned().for_each(|e| one_by_one.arm(e));
        let mut at_once = Deadlines::default();
        at_once.arm_many(batch.clone());
        assert_eq!(at_once.entries(), one_by_one.entries());
        assert_eq!(at_once.len(), one_by_one.len());
        // Into a timer that already holds entries: the same again.
        at_once.arm_many(batch.clone());
        batch.into_iter().for_each(|e| one_by_one.arm(e));
        assert_eq!(at_once.entries(), one_by_one.entries());
        let due: Vec<String> = at_once
            .pop_due(t0() + Duration::seconds(100))
            .into_iter()
            .map(|e| e.key.incident_id().unwrap().to_string())
            .collect();
        assert_eq!(due.len(), one_by_one.len());
        assert!(at_once.is_empty());
    }

    #[test]
    fn interned_ids_round_trip_exactly() {
        let ids = [
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, b"x").to_string(),
            uuid::Uuid::new_v4().to_string().to_uppercase(), // not canonical
            uuid::Uuid::new_v4().simple().to_string(),       // no hyphens
            "00000000-0000-0000-0000-000000000001".into(),   // version 0
            "not-a-uuid".into(),
            String::new(),
        ];
        let mut d = Deadlines::default();
        for (i, id) in ids.iter().enumerate() {
            d.arm(TimerEntry {
                due: t0() + Duration::seconds(i as i64),
                key: id.clone().into(),
            });
        }
        assert_eq!(d.len(), ids.len());
        assert_eq!(
            d.ids.by_key.len(),
            5,
            "only non-canonical ids use the side table"
        );
        let got: Vec<String> = d
            .entries()
            .into_iter()
            .map(|e| e.key.incident_id().unwrap().to_string())
            .collect();
        assert_eq!(got, ids);
        assert!(d.disarm(&ids[2]) && !d.disarm(&ids[2]));
        assert!(!d.disarm(ids[0].to_uppercase()), "case matters, as in zag");
        assert_eq!(d.due_of(&ids[1]), Some(t0() + Duration::seconds(1)));
    }

    #[test]
    fn an_adoption_probe_is_its_own_key_beside_an_incident_of_the_same_id() {
        let id = uuid::Uuid::new_v4().to_string();
        let probe = TimerKey::AdoptionProbe {
            store: PathBuf::from("/z/scheduled_resumes.jsonl"),
            zag_id: id.clone(),
        };
        let mut d = Deadlines::default();
        d.arm(TimerEntry {
            due: t0() + Duration::seconds(2),
            key: probe.clone(),
        });
        d.arm(TimerEntry {
            due: t0() + Duration::seconds(1),
            key: id.clone().into(),
        });
        assert_eq!(d.len(), 2);
        assert_eq!(d.due_of(probe.clone()), Some(t0() + Duration::seconds(2)));
        assert_eq!(d.due_of(&id), Some(t0() + Duration::seconds(1)));
        let keys: Vec<TimerKey> = d.entries().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, [TimerKey::Incident(id.clone()), probe.clone()]);
        assert!(d.disarm(probe.clone()) && !d.disarm(probe));
        assert_eq!(d.due_of(&id), Some(t0() + Duration::seconds(1)));
        assert!(d.ids.by_key.is_empty(), "a probe is no incident id");
        assert!(
            d.ids.probes_by_key.is_empty() && d.ids.probe_keys.is_empty(),
            "the probe's side entry is dropped"
        );
    }

    #[tokio::test]
    async fn fires_when_the_clock_reaches_the_deadline_and_not_after_disarm() {
        let t = t0();
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
        assert_eq!(e.key, "x");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn suspend_fires_everything_overdue_at_once_in_order() {
        // A laptop asleep for 8 hours: the injected clock jumps on wake.
        let clock = ManualClock::new(t0());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (h, _task) = spawn(clock.clone(), tx);
        for (id, m) in [("c", 90), ("a", 30), ("b", 60), ("later", 60 * 24)] {
            h.arm(id, t0() + Duration::minutes(m));
        }
        h.snapshot().await;
        clock.advance(Duration::hours(8));
        let mut got = Vec::new();
        for _ in 0..3 {
            let e = tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv())
                .await
                .expect("fires within 1 s of waking")
                .unwrap();
            got.push(e.key.incident_id().unwrap().to_string());
        }
        assert_eq!(got, ["a", "b", "c"]);
        settle(&h).await;
        assert!(quiet(&mut rx));
        let left = h.snapshot().await;
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].key, "later");
    }

    #[tokio::test]
    async fn clock_stepped_back_fires_nothing_early_then_fires_on_time() {
        let clock = ManualClock::new(t0());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (h, _task) = spawn(clock.clone(), tx);
        h.arm("x", t0() + Duration::minutes(10));
        h.snapshot().await;
        clock.advance(Duration::minutes(9));
        clock.set(t0() - Duration::hours(1)); // stepped back an hour
        settle(&h).await;
        assert!(quiet(&mut rx));
        clock.set(t0() + Duration::minutes(9) + Duration::seconds(59));
        settle(&h).await;
        assert!(quiet(&mut rx), "one second early is still early");
        clock.set(t0() + Duration::minutes(10));
        let e = tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.key, "x");
        let s = h.stats().await;
        assert_eq!((s.fired, s.pending), (1, 0));
    }

    #[tokio::test]
    async fn stepped_forward_fires_what_is_due_and_a_sooner_arm_wakes_early() {
        let clock = ManualClock::new(t0());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (h, _task) = spawn(clock.clone(), tx);
        h.arm("far", t0() + Duration::days(1));
        h.arm("near", t0() + Duration::hours(1));
        h.snapshot().await;
        clock.set(t0() + Duration::hours(2));
        let e = rx.recv().await.unwrap();
        assert_eq!(e.key, "near");
        // A deadline already past when armed fires at once.
        h.arm("past", t0());
        let e = rx.recv().await.unwrap();
        assert_eq!(e.key, "past");
        settle(&h).await;
        assert!(quiet(&mut rx));
    }

    #[tokio::test]
    async fn idle_timer_does_not_wake() {
        let clock = ManualClock::new(t0());
        let (tx, _rx) = mpsc::unbounded_channel();
        let (h, _task) = spawn(clock.clone(), tx);
        h.arm_many(
            (0..100)
                .map(|i| TimerEntry {
                    due: t0() + Duration::hours(1 + i),
                    key: format!("i{i}").into(),
                })
                .collect(),
        );
        let before = h.stats().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let after = h.stats().await;
        // Only the stats command itself woke it.
        assert_eq!(after.wakeups, before.wakeups + 1);
        assert_eq!(after.clock_wakeups, 0);
        assert_eq!(after.pending, 100);
    }

    #[tokio::test]
    async fn system_clock_timer_fires_on_time() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (h, _task) = spawn(Arc::new(crate::clock::SystemClock), tx);
        let due = Utc::now() + Duration::milliseconds(150);
        h.arm("x", due);
        h.arm("y", due + Duration::days(1));
        let e = rx.recv().await.unwrap();
        let late = Utc::now() - e.due;
        assert_eq!(e.key, "x");
        // Never early. How late is measured by the timer benchmark; here the
        // bound only catches a timer that waits for something else (a second
        // deadline, a poll), and stays wide so a loaded CI machine passes.
        assert!(
            late >= Duration::zero() && late < Duration::seconds(2),
            "{late}"
        );
    }
}
