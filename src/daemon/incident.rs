//! One incident of ours, from the limit line that showed it to its final
//! record in the store.
//!
//! ```text
//!  seen ──▶ writing ──▶ armed ──▶ due ──▶ delivering ──▶ done
//!   │ (resolve)  (append      ▲  (timer due,      │ (`complete`/`cancel`
//!   │             + fsync)    │   store re-read)  │  being written; gone
//!   │                         │                   ▼  once durable)
//!   └─ the same limit as      └──── deferred ◀────┘ (a live owner or the
//!      a known incident:             (timer at `until`)  provider's own
//!      joins it                                          continue has it)
//! ```
//!
//! The record is the incident's serialised form: `schedule` is exactly what
//! sits in (or is being written to) its store; the state says what the core
//! is doing with it. The planner's functions ([`super::plan`]) decide each
//! transition; the core ([`super`]) carries them out and owns the table.
//!
//! "Acknowledged once durable" is a property of the states: the hits that
//! showed an incident wait in [`State::Seen`] and [`State::Writing`], and
//! leave the incident's hands only when it moves on from them, which is
//! once its `schedule` is written (or the hit is found to be nothing new).

use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;

use crate::control::IncidentEvent;
use crate::detect::Detection;
use crate::resume::live::RouteView;
use crate::resume::route::LiveState;
use crate::store::Schedule;

/// The ingest thread's ack for one sighting of a limit: sent once the
/// incident it showed is durable or found to be known already.
pub type Ack = oneshot::Sender<()>;

/// An incident of ours.
#[derive(Debug)]
pub struct Incident {
    /// Its record: what its store holds (shared with the store's replay
    /// and the session index once it is there).
    pub schedule: Arc<Schedule>,
    /// Its store (the project's), also its project at fire time and for a
    /// re-hit. Shared by every incident of the store.
    pub store: Arc<Path>,
    pub state: State,
    /// What earlier fires did to its live session (typed, notified), once
    /// one did something (boxed: a start-up holds 100,000 incidents, few
    /// of which ever meet a live session).
    pub live: Option<Box<LiveState>>,
    /// Who will continue it and why, once a fire decided (issue 11).
    pub route: Option<Box<RouteView>>,
    /// Writes of its current record (schedule, claim or complete) that
    /// failed in a row: the retry's backoff.
    pub failures: u32,
}

/// Where an incident is in its life (see the module's diagram).
#[derive(Debug)]
pub enum State {
    /// Seen in a line; its session is being resolved off the core's loop.
    Seen {
        /// The line's limit, for its zag-log lines and a re-hit.
        detection: Box<Detection>,
        /// Published once the incident is known to be new.
        hit_event: Box<IncidentEvent>,
        /// Sightings waiting for it to be durable.
        acks: Vec<Ack>,
    },
    /// New: its `schedule` is being appended and fsync'd. The dedupe and
    /// the session index see it, so a second source of the same limit
    /// joins it instead of being scheduled twice.
    Writing { acks: Vec<Ack> },
    /// Durable (or held in memory when its write failed); its timer armed at
    /// `schedule.when`.
    Armed,
    /// Its time came: the claim (its store shown writable right now,
    /// see [`crate::store::StoreFile::claim`], and its delivery attempt
    /// settled and made, see [`crate::resume::attempt`]) is being made
    /// before it is delivered. A delivery that cannot be claimed waits:
    /// delivered and then unable to record it, a crash would deliver it
    /// twice.
    Due,
    /// Its delivery started at `since`: the session's runs after it are
    /// its resumed run's (see [`super::plan::plan_live`]).
    Delivering { since: DateTime<Utc> },
    /// A delivery deferred to `until` (the session's live owner or its
    /// provider's own continue has it): nothing was delivered, its timer is
    /// armed at `until`.
    Deferred { until: DateTime<Utc> },
    /// Its final record is being written: a `complete` after an outcome, or
    /// a requested `cancel`. It leaves the table once that is durable.
    Done {
        /// When its delivery started, if one did (its complete is then
        /// still the running resume of its session).
        fired_at: Option<DateTime<Utc>>,
        /// A requested cancel: the state to go back to should the `cancel`
        /// not be written.
        cancel: Option<Box<State>>,
    },
}

impl Incident {
    /// A new incident of `store`, in `state`.
    pub fn new(schedule: Arc<Schedule>, store: Arc<Path>, state: State) -> Self {
        Incident {
            // A restart keeps what earlier runs did to the live session
            // (typed, notified), from the record: never twice.
            live: schedule
                .live
                .is_some()
                .then(|| Box::new(LiveState::from_record(&schedule))),
            schedule,
            store,
            state,
            route: None,
            failures: 0,
        }
    }

    pub fn id(&self) -> &str {
        &self.schedule.incident_id
    }
}

impl State {
    /// Waiting for its time (armed or deferred): the only states a timer
    /// fire, a cancel, a tombstone from outside or a superseding act on.
    pub fn is_waiting(&self) -> bool {
        matches!(self, State::Armed | State::Deferred { .. })
    }

    /// Still its session's one pending-or-running resume: not one going
    /// away (a cancel being written, or an end that was no delivery).
    pub fn is_live(&self) -> bool {
        match self {
            State::Done {
                cancel: Some(_), ..
            } => false,
            State::Done { fired_at, .. } => fired_at.is_some(),
            _ => true,
        }
    }

    /// When its delivery started, while that delivery is its session's
    /// running resume (delivering, or its `complete` being written).
    pub fn running_since(&self) -> Option<DateTime<Utc>> {
        match self {
            State::Delivering { since } => Some(*since),
            State::Done {
                fired_at,
                cancel: None,
            } => *fired_at,
            _ => None,
        }
    }

    /// Take the sightings waiting on it (to ack them, or to hand them to
    /// the incident a seen one turned out to be).
    pub fn take_acks(&mut self) -> Vec<Ack> {
        match self {
            State::Seen { acks, .. } | State::Writing { acks } => std::mem::take(acks),
            _ => Vec::new(),
        }
    }
}

/// Tell the ingest thread its sightings are settled.
pub fn ack_all(acks: Vec<Ack>) {
    for a in acks {
        let _ = a.send(());
    }
}
