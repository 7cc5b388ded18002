//! The core's index of live incidents (pending, being written, being
//! delivered) by session: what makes "one pending-or-running resume per
//! session" an invariant the core checks, not a timing accident.
//!
//! A session is named differently by each source of one limit (a relay's
//! log names zag's wrapper id, Claude's transcript the provider id, a
//! record carries both once resolved), so every record is filed under each
//! of its session keys ([`crate::store::dedupe::index_keys`], the ones the
//! dedupe compares across fields), each with its provider. A look-up by any
//! key of a candidate finds the live incidents of its session. Keys are
//! hashed to a `u64`; a collision only adds a candidate, which the caller
//! checks by id against its own table, and the rules in
//! [`super::plan::plan_live`] compare sessions again.
//!
//! A start-up's re-arm hands its incidents over unfiled
//! ([`SessionIndex::file_later`]): filing 100,000 records costs a third of
//! the re-arm, and nothing needs the index before the first hit, fire or
//! store change, which file them ([`SessionIndex::file_waiting`]) first.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use crate::store::dedupe::index_keys;
use crate::store::Schedule;

/// Live incidents by session key.
#[derive(Default)]
pub struct SessionIndex {
    by_key: HashMap<u64, Slot, rustc_hash::FxBuildHasher>,
    /// Incidents handed over to be filed before the next look-up.
    unfiled: Vec<Arc<Schedule>>,
}

/// The incidents filed under one key: almost always one (the invariant),
/// kept without an allocation of its own, as a start-up files 100,000.
enum Slot {
    One(Arc<Schedule>),
    Many(Vec<Arc<Schedule>>),
}

impl Slot {
    fn as_slice(&self) -> &[Arc<Schedule>] {
        match self {
            Slot::One(s) => std::slice::from_ref(s),
            Slot::Many(v) => v,
        }
    }
}

fn key_hash(provider: &str, key: &str) -> u64 {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    provider.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

fn hashes(s: &Schedule) -> impl Iterator<Item = u64> + '_ {
    index_keys(s).map(|k| key_hash(&s.provider, k))
}

impl SessionIndex {
    /// File a live incident under each of its session keys (once per id).
    /// Returns whether another incident was filed under one of them
    /// already (a candidate for [`Self::of`]).
    pub fn add(&mut self, s: &Arc<Schedule>) -> bool {
        use std::collections::hash_map::Entry;
        let mut crowded = false;
        for h in hashes(s) {
            match self.by_key.entry(h) {
                Entry::Vacant(e) => {
                    e.insert(Slot::One(s.clone()));
                }
                Entry::Occupied(mut e) => {
                    let slot = e.get_mut();
                    // Filed already (written, now armed): still crowded if
                    // another incident shares the key.
                    let mut filed = false;
                    for x in slot.as_slice() {
                        if x.incident_id == s.incident_id {
                            filed = true;
                        } else {
                            crowded = true;
                        }
                    }
                    if filed {
                        continue;
                    }
                    match slot {
                        Slot::One(x) => *slot = Slot::Many(vec![x.clone(), s.clone()]),
                        Slot::Many(v) => v.push(s.clone()),
                    }
                }
            }
        }
        crowded
    }

    /// Room for `incidents` more (filing them all at once; growing the
    /// table step by step would rehash it each time).
    fn reserve(&mut self, incidents: usize) {
        // A record has two or three keys (its ids, its log).
        self.by_key.reserve(incidents.saturating_mul(3));
    }

    /// Hand an incident over to be filed by the next [`Self::file_waiting`].
    pub fn file_later(&mut self, s: Arc<Schedule>) {
        self.unfiled.push(s);
    }

    /// Whether incidents wait to be filed.
    pub fn has_unfiled(&self) -> bool {
        !self.unfiled.is_empty()
    }

    /// File every incident handed over; returns those that found another
    /// incident under one of their keys (as [`Self::add`] tells).
    pub fn file_waiting(&mut self) -> Vec<Arc<Schedule>> {
        let unfiled = std::mem::take(&mut self.unfiled);
        self.reserve(unfiled.len());
        let mut crowded = Vec::new();
        for s in unfiled {
            if self.add(&s) {
                crowded.push(s);
            }
        }
        crowded
    }

    /// Forget an incident (done, cancelled, written and re-filed).
    pub fn remove(&mut self, s: &Schedule) {
        if !self.unfiled.is_empty() {
            self.unfiled.retain(|x| x.incident_id != s.incident_id);
        }
        for h in hashes(s) {
            let empty = match self.by_key.get_mut(&h) {
                None => false,
                Some(Slot::One(x)) => x.incident_id == s.incident_id,
                Some(Slot::Many(v)) => {
                    v.retain(|x| x.incident_id != s.incident_id);
                    v.is_empty()
                }
            };
            if empty {
                self.by_key.remove(&h);
            }
        }
    }

    /// The live incidents filed under any session key of `s` (itself
    /// included if filed), each once, smallest id first (a stable answer
    /// whatever the map's order).
    pub fn of(&self, s: &Schedule) -> Vec<Arc<Schedule>> {
        debug_assert!(self.unfiled.is_empty(), "look-up before filing");
        let mut out: Vec<Arc<Schedule>> = Vec::new();
        for h in hashes(s) {
            for x in self.by_key.get(&h).map_or(&[][..], Slot::as_slice) {
                if !out.iter().any(|o| o.incident_id == x.incident_id) {
                    out.push(x.clone());
                }
            }
        }
        out.sort_by(|a, b| a.incident_id.cmp(&b.incident_id));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty() && self.unfiled.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, sid: &str, psid: Option<&str>) -> Arc<Schedule> {
        Arc::new(Schedule {
            incident_id: id.into(),
            session_id: sid.into(),
            provider: "claude".into(),
            provider_session_id: psid.map(str::to_string),
            ..Default::default()
        })
    }

    #[test]
    fn any_key_of_a_session_finds_its_live_incidents() {
        let mut ix = SessionIndex::default();
        let relay = rec("a", "w1", Some("claude-1"));
        assert!(!ix.add(&relay));
        assert!(!ix.add(&relay), "filed once");
        // Claude's transcript names only the provider id.
        let ids =
            |v: Vec<Arc<Schedule>>| v.iter().map(|s| s.incident_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(ix.of(&rec("x", "claude-1", None))), ["a"]);
        assert_eq!(ids(ix.of(&rec("x", "w1", None))), ["a"]);
        assert!(ix.of(&rec("x", "other", None)).is_empty());
        // Another provider's session of the same name is another session.
        let mut codex = (*rec("x", "w1", None)).clone();
        codex.provider = "codex".into();
        assert!(ix.of(&codex).is_empty());
        // Another incident of the session: filed beside it, and told.
        let second = rec("b", "claude-1", None);
        assert!(ix.add(&second));
        // Filed again (written first, armed later): still told.
        assert!(ix.add(&second), "crowded whether or not already filed");
        assert_eq!(ids(ix.of(&rec("x", "w1", Some("claude-1")))), ["a", "b"]);
        ix.remove(&second);
        assert_eq!(ids(ix.of(&rec("x", "claude-1", None))), ["a"]);
        // Sessions nobody could name never match each other.
        assert!(!ix.add(&rec("u", "unknown", None)));
        assert!(ix.of(&rec("y", "unknown", None)).is_empty());
        ix.remove(&relay);
        assert!(ix.of(&rec("x", "w1", None)).is_empty());
        ix.remove(&rec("u", "unknown", None));
        assert!(ix.is_empty());
    }

    #[test]
    fn incidents_handed_over_are_filed_when_needed_and_crowding_is_told_then() {
        let mut ix = SessionIndex::default();
        let (a, b, c) = (
            rec("a", "w1", None),
            rec("b", "w1", None),
            rec("c", "w2", None),
        );
        for s in [&a, &b, &c] {
            ix.file_later(s.clone());
        }
        assert!(ix.has_unfiled() && !ix.is_empty());
        let crowded: Vec<_> = ix
            .file_waiting()
            .iter()
            .map(|s| s.incident_id.clone())
            .collect();
        assert_eq!(crowded, ["b"], "the second of w1's two");
        assert!(!ix.has_unfiled());
        assert_eq!(ix.of(&rec("x", "w1", None)).len(), 2);
        // One removed before it was filed is never filed.
        let d = rec("d", "w2", None);
        ix.file_later(d.clone());
        ix.remove(&d);
        assert!(ix.file_waiting().is_empty(), "c is alone again");
        assert_eq!(ix.of(&rec("x", "w2", None)).len(), 1);
    }
}
