//! The user's say over the core (issue 20): a pause that holds what falls
//! due, the provider binaries as the daemon resolves them, and the dry run
//! that decides and logs without doing.
//!
//! Kept apart from the core's loop: each is a hook the loop calls at one
//! point (a fire, a request, an outcome), so the incident lifecycle stays
//! in one place and these rules in another.
//!
//! - **Pause.** The core owns the pause file while it runs
//!   ([`crate::control::pause`]). A fire while paused holds the incident
//!   (no delivery, nothing written; a pause with an end re-arms it at the
//!   end plus its stagger); `unpause` re-arms every held incident at now
//!   plus its stagger, so a night's backlog goes out spread as usual, and
//!   each delivery still makes its checks (a session that moved on is
//!   skipped).
//! - **Dry run.** Nothing is written or started: a new incident lives in
//!   memory only (so `status` and `list` show it), a fire logs what the
//!   delivery would do ("would run …", "would type into …", "would stand
//!   down for …"), and an outcome is logged and published, not recorded.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{project_of_store, Core};
use crate::control::pause::{self, PauseState};
use crate::control::{BinaryView, IncidentEvent};
use crate::resume::Outcome;
use crate::schedule::stagger_offset;

/// The same end of the same incident (resumed, failed, skipped, cancelled;
/// routed events are not ends and may repeat).
pub(super) fn same_outcome(a: &IncidentEvent, b: &IncidentEvent) -> bool {
    let end = |e: &IncidentEvent| {
        !matches!(
            e,
            IncidentEvent::Hit { .. }
                | IncidentEvent::Scheduled { .. }
                | IncidentEvent::Routed { .. }
        )
    };
    end(a)
        && end(b)
        && kind(a) == kind(b)
        && crate::control::render::event_incident(a) == crate::control::render::event_incident(b)
}

/// An event's kind, for telling one already shown.
fn kind(e: &IncidentEvent) -> &'static str {
    match e {
        IncidentEvent::Hit { .. } => "hit",
        IncidentEvent::Scheduled { .. } => "scheduled",
        IncidentEvent::Resumed { .. } => "resumed",
        IncidentEvent::Failed { .. } => "failed",
        IncidentEvent::Skipped { .. } => "skipped",
        IncidentEvent::Cancelled { .. } => "cancelled",
        IncidentEvent::NeedsUser { .. } => "needs_user",
        IncidentEvent::Routed { .. } => "routed",
        IncidentEvent::StoreUnwritable { .. } => "store_unwritable",
    }
}

/// The `durable` error a dry run's new incident carries instead of a write.
pub(super) const DRY_RUN_NOT_WRITTEN: &str = "dry run: not written";

/// What the core keeps for the user's controls.
#[derive(Debug, Default)]
pub(super) struct UserState {
    /// The pause in force (or run out), as on disk.
    pub pause: Option<PauseState>,
    /// Incidents that fell due while paused and wait for the end of it.
    pub held: BTreeSet<String>,
    /// `run --dry-run`.
    pub dry_run: bool,
}

impl UserState {
    /// Read the pause file at start. An unreadable one counts as a pause
    /// (when unsure, wait and say so): `unpause` clears it.
    pub fn load(state_dir: &std::path::Path, dry_run: bool, now: DateTime<Utc>) -> Self {
        let pause = match pause::load(state_dir) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{e}; holding every resume until `zag-resumed unpause`");
                Some(PauseState {
                    since: now,
                    until: None,
                })
            }
        };
        if let Some(p) = pause.as_ref().filter(|p| p.active_at(now)) {
            tracing::info!("{}", p.describe());
        }
        UserState {
            pause,
            held: BTreeSet::new(),
            dry_run,
        }
    }

    /// The pause, while in force at `now`.
    pub fn paused_at(&self, now: DateTime<Utc>) -> Option<&PauseState> {
        self.pause.as_ref().filter(|p| p.active_at(now))
    }
}

/// The last `n` incidents of a history that ended before `before` (the
/// daemon's start: what ends later is published as it happens), as
/// `status`'s recent events, oldest first (pure). Pending ones are not
/// outcomes; an incident without an end time goes by its due time.
pub(super) fn recent_from_history(
    all: Vec<crate::control::history::IncidentHistory>,
    n: usize,
    before: DateTime<Utc>,
) -> Vec<IncidentEvent> {
    use crate::control::history::State;
    let mut ended: Vec<_> = all
        .into_iter()
        .filter(|h| h.state != State::Pending)
        .filter_map(|h| Some((h.ended_at.or(h.when)?, h)))
        .filter(|(at, _)| *at < before)
        .collect();
    ended.sort_by_key(|e| e.0);
    let skip = ended.len().saturating_sub(n);
    ended
        .into_iter()
        .skip(skip)
        .map(|(at, h)| {
            let incident_id = h.incident_id;
            let provider = h.provider.unwrap_or_default();
            let session_id = h.session_id.unwrap_or_default();
            let reason = h.reason.unwrap_or_default();
            match h.state {
                State::Resumed => IncidentEvent::Resumed {
                    incident_id,
                    provider,
                    session_id,
                    detail: reason,
                    permission_mode: None,
                    at,
                },
                State::Skipped => IncidentEvent::Skipped {
                    incident_id,
                    provider,
                    session_id,
                    reason,
                    at,
                },
                State::Cancelled => IncidentEvent::Cancelled { incident_id, at },
                State::NeedsUser => IncidentEvent::NeedsUser {
                    incident_id,
                    provider,
                    session_id,
                    what: reason,
                    at,
                },
                State::Failed | State::Pending => IncidentEvent::Failed {
                    incident_id,
                    provider,
                    session_id,
                    reason,
                    at,
                },
            }
        })
        .collect()
}

impl Core {
    /// Put what the stores know before what happened since the start, up
    /// to `status`'s limit (an event already recent is not repeated).
    pub(super) fn seed_recent(&mut self, from_stores: Vec<IncidentEvent>) {
        let since_start: Vec<IncidentEvent> = self.recent.drain(..).collect();
        let seen: BTreeSet<(String, &'static str)> = since_start
            .iter()
            .map(|e| {
                (
                    crate::control::render::event_incident(e).to_string(),
                    kind(e),
                )
            })
            .collect();
        let mut all: Vec<IncidentEvent> = from_stores
            .into_iter()
            .filter(|e| {
                !seen.contains(&(
                    crate::control::render::event_incident(e).to_string(),
                    kind(e),
                ))
            })
            .collect();
        all.extend(since_start);
        let skip = all.len().saturating_sub(super::RECENT);
        self.recent.extend(all.into_iter().skip(skip));
    }

    /// The stagger of an incident in its project (`stagger_secs`).
    fn stagger_of(&mut self, id: &str) -> chrono::Duration {
        let Some(store) = self.incidents.get(id).map(|i| i.store.clone()) else {
            return chrono::Duration::zero();
        };
        let (limits, _) = self.limits.get(&project_of_store(&self.paths, &store));
        stagger_offset(id, limits.stagger_secs)
    }

    /// Called when an incident's timer fires: `true` when a pause holds it
    /// (nothing delivered; re-armed at the pause's end, or at `unpause`).
    pub(super) fn hold_if_paused(&mut self, id: &str) -> bool {
        let now = self.clock.now();
        let Some(p) = self.user.paused_at(now).cloned() else {
            return false;
        };
        let first = self.user.held.insert(id.to_string());
        if let Some(until) = p.until {
            let at = until + self.stagger_of(id);
            self.timer.arm(id.to_string(), at);
        }
        if first {
            let Some(inc) = self.incidents.get(id) else {
                return true;
            };
            let (provider, session_id) = (
                inc.schedule.provider.clone(),
                inc.schedule.session_id.clone(),
            );
            tracing::info!(incident = %id, "resume due, held: {}", p.describe());
            self.publish(IncidentEvent::Routed {
                incident_id: id.to_string(),
                provider,
                session_id,
                continued_by: "nobody yet: zag-resumed is paused".into(),
                why: p.describe(),
                recheck_at: p.until,
                notify: false,
                at: now,
            });
        }
        true
    }

    /// Who continues a held incident, for `list` and `status`.
    pub(super) fn held_view(&self, id: &str) -> Option<(String, String)> {
        if !self.user.held.contains(id) {
            return None;
        }
        let now = self.clock.now();
        let p = self.user.paused_at(now)?;
        Some(("nobody yet: zag-resumed is paused".into(), p.describe()))
    }

    /// `pause`: written durably, then in force.
    pub(super) fn pause(&mut self, until: Option<DateTime<Utc>>) -> Result<PauseState, String> {
        let state = PauseState {
            since: self.clock.now(),
            until,
        };
        if let Some(u) = until.filter(|u| *u <= state.since) {
            return Err(format!(
                "--until {} has already passed",
                crate::control::render::stamp(u)
            ));
        }
        pause::save(&self.paths.state_dir, &state).map_err(|e| e.to_string())?;
        tracing::info!("pause requested: {}", state.describe());
        self.user.pause = Some(state.clone());
        Ok(state)
    }

    /// `unpause`: the file removed, every held incident re-armed at now
    /// plus its stagger. Answers how many were held.
    pub(super) fn unpause(&mut self) -> Result<usize, String> {
        pause::clear(&self.paths.state_dir).map_err(|e| e.to_string())?;
        self.user.pause = None;
        let now = self.clock.now();
        let held = std::mem::take(&mut self.user.held);
        let mut released = 0;
        for id in held {
            if !self
                .incidents
                .get(&id)
                .is_some_and(|i| i.state.is_waiting())
            {
                continue;
            }
            let at = now + self.stagger_of(&id);
            tracing::debug!(incident = %id, due = %at, "unpaused: re-armed with its stagger");
            self.timer.arm(id, at);
            released += 1;
        }
        tracing::info!(
            released,
            "unpaused: held resumes go out, spread over the stagger"
        );
        Ok(released)
    }

    /// A new limit line deduped into an incident that already ended (its
    /// reset window is the same: the same incident id): not scheduled, as
    /// zag's rule says (a tombstone is final), but said out loud instead of
    /// dropped: logged, and published as `skipped` (so `status`, `subscribe`
    /// and the desktop tell it). `true` when told. A re-read of the same
    /// line (its hit no later than the incident's) is not new: not told.
    pub(super) fn tell_folded_into_ended(
        &mut self,
        existing: &str,
        candidate: &crate::store::Schedule,
    ) -> bool {
        let ended = self.stores.values().find_map(|f| {
            let r = f.replay();
            r.tombstoned
                .contains(existing)
                .then(|| r.scheduled.get(existing).cloned())
                .flatten()
        });
        let Some(ended) = ended else {
            return false;
        };
        let newer = match (candidate.hit_at, ended.hit_at) {
            (Some(new), Some(old)) => new > old + chrono::Duration::seconds(1),
            _ => false,
        };
        if !newer {
            return false;
        }
        let short = crate::control::history::short_id(existing).to_string();
        let reason = format!(
            "a new limit of this session in the same reset window, after {short} ended (cancelled or done): not scheduled again; `zag-resumed retry {short}` gives it one more delivery"
        );
        tracing::warn!(incident = %existing, hit_at = %crate::control::render::log_time(candidate.hit_at), "{reason}");
        self.publish(IncidentEvent::Skipped {
            incident_id: existing.to_string(),
            provider: candidate.provider.clone(),
            session_id: candidate.session_id.clone(),
            reason,
            at: self.clock.now(),
        });
        true
    }

    /// The provider CLIs as a delivery would find them now.
    pub(super) fn binaries(&self) -> Vec<BinaryView> {
        crate::detect::Provider::ALL
            .into_iter()
            .map(|p| {
                let found = crate::resume::respawn::find_binary(
                    p,
                    &self.env.binaries,
                    self.env.search_path.as_ref(),
                );
                BinaryView {
                    provider: p.as_str().to_string(),
                    path: found.as_ref().ok().map(|b| b.display().to_string()),
                    error: found.err().map(|e| e.to_string()),
                }
            })
            .collect()
    }

    /// A dry run's fire: what the delivery would do, decided by the
    /// preview's dry functions off the loop and reported as an outcome
    /// that [`Core::dry_outcome`] logs without recording.
    pub(super) fn dry_fire(&mut self, id: &str) {
        let now = self.clock.now();
        let Some(inc) = self.incidents.get_mut(id) else {
            return;
        };
        inc.state = super::incident::State::Delivering { since: now };
        let schedule = inc.schedule.clone();
        let env = self.env.clone();
        let now = self.clock.now();
        let tx = self.outcomes_tx.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let would = crate::resume::dry::would_deliver(&schedule, &env, now);
            let _ = tx.send((
                id,
                Outcome::Skipped {
                    reason: format!("dry run: {would}"),
                },
            ));
        });
    }

    /// A dry run's outcome: logged and published, nothing written; the
    /// incident is forgotten.
    pub(super) fn dry_outcome(&mut self, id: &str, outcome: Outcome) {
        let Some(inc) = self.untrack(id) else {
            return;
        };
        self.timer.disarm(id.to_string());
        let (provider, session_id) = (
            inc.schedule.provider.clone(),
            inc.schedule.session_id.clone(),
        );
        let reason = match outcome {
            Outcome::Skipped { reason } | Outcome::Failed { reason } => reason,
            Outcome::Resumed { detail } => detail,
            Outcome::NeedsUser { what } => what,
            Outcome::LimitAgain { detail, .. } => detail,
            Outcome::Deferred { view, .. } => view.why,
        };
        tracing::info!(incident = %id, %provider, session = %session_id, "{reason} (nothing recorded)");
        self.publish(IncidentEvent::Skipped {
            incident_id: id.to_string(),
            provider,
            session_id,
            reason,
            at: self.clock.now(),
        });
    }
}
