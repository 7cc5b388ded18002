//! Resume-time arithmetic: pure functions of a detection, the config and now.
//!
//! [`compute_resume_at`] reproduces zag's rule (zag-contract §5) so that a
//! resume we schedule never wakes before zag's own would; [`due_time`] then
//! adds the stagger, which spreads a fleet of sessions limited by the same
//! reset over a window so they don't all hit the provider in the same second.
//!
//! # Stagger
//!
//! `due = min(zag_due + stagger_offset(incident_id, stagger_secs), now + max_wait)`
//! where `zag_due` is zag's `compute_resume_at` (reset + fixed `jitter_secs`,
//! never before now + jitter). So zag's jitter stays the minimum offset and the
//! stagger is an extra delay, uniform in `[0, stagger_secs]` at millisecond
//! granularity. The offset is a hash of the incident id, not a random draw:
//! the same incident always gets the same offset, so recomputing after a
//! restart cannot move a resume (and the `when` we persist is what is re-armed
//! anyway). Distinct incidents (distinct sessions, as ids are uuid v5 of the
//! session and window) get independent-looking offsets. `stagger_secs = 0`
//! turns it off: `due_time` then equals `compute_resume_at` exactly.

use chrono::{DateTime, Duration, Utc};

use crate::config::UsageLimits;
use crate::shared::Provider;

/// zag's `compute_resume_at`: the reset (or now + fallback), plus the fixed
/// jitter, never before now + jitter, capped at now + `max_wait_secs`.
/// Returns the time and whether the fallback was used.
pub fn compute_resume_at(
    reset_at: Option<DateTime<Utc>>,
    provider: Provider,
    limits: &UsageLimits,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, bool) {
    let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1_000_000));
    let (target, fallback_used) = match reset_at {
        Some(t) => (t, false),
        None => (now + secs(limits.fallback_secs_for(provider)), true),
    };
    let jitter = secs(limits.jitter_secs);
    let due = if target < now {
        now + jitter
    } else {
        target + jitter
    };
    (due.min(now + secs(limits.max_wait_secs)), fallback_used)
}

/// The stagger for an incident: a deterministic offset uniform in
/// `[0, window_secs]` (millisecond steps), derived from the id alone.
/// `window_secs == 0` gives zero.
pub fn stagger_offset(incident_id: &str, window_secs: u64) -> Duration {
    if window_secs == 0 {
        return Duration::zero();
    }
    // Cap the window so the millisecond arithmetic cannot overflow (about
    // 292 years, far beyond any `max_wait_secs`).
    let window_ms = window_secs.min(u64::MAX / 1000 / 2) * 1000;
    let h = fnv1a64(incident_id.as_bytes());
    // 64-bit hash modulo a window of at most ~2^63: bias < 2^-1, in practice
    // (windows of minutes, ~2^17 ms) bias < 2^-46.
    let ms = h % (window_ms + 1);
    Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// FNV-1a then a splitmix64 finaliser: stable across versions and platforms
/// (std's `DefaultHasher` is not guaranteed to be), well mixed in low bits.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// When to resume an incident: zag's [`compute_resume_at`] plus the stagger
/// for `incident_id` (`limits.stagger_secs`), still capped at
/// now + `max_wait_secs`. Returns the time and whether the fallback was used.
pub fn due_time(
    reset_at: Option<DateTime<Utc>>,
    provider: Provider,
    limits: &UsageLimits,
    now: DateTime<Utc>,
    incident_id: &str,
) -> (DateTime<Utc>, bool) {
    let (zag_due, fallback_used) = compute_resume_at(reset_at, provider, limits, now);
    let cap = now
        + Duration::seconds(i64::try_from(limits.max_wait_secs).unwrap_or(i64::MAX / 1_000_000));
    let due = (zag_due + stagger_offset(incident_id, limits.stagger_secs)).min(cap.max(zag_due));
    (due, fallback_used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stagger_is_deterministic_bounded_and_spread() {
        let ids: Vec<String> = (0..2000)
            .map(|i| {
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("s{i}").as_bytes())
                    .to_string()
            })
            .collect();
        let mut buckets = [0usize; 4];
        for id in &ids {
            let a = stagger_offset(id, 120);
            assert_eq!(a, stagger_offset(id, 120), "same id, same offset");
            assert!(a >= Duration::zero() && a <= Duration::seconds(120));
            buckets[(a.num_milliseconds() * 4 / 120_001) as usize] += 1;
            assert_eq!(stagger_offset(id, 0), Duration::zero());
            assert!(stagger_offset(id, 1) <= Duration::seconds(1));
        }
        // Roughly uniform: each quarter of the window gets 500 ± 100.
        for b in buckets {
            assert!((400..=600).contains(&b), "{buckets:?}");
        }
        // Pinned value: a change of hash would move every persisted-but-not-
        // yet-written resume computed after an upgrade; make it deliberate.
        assert_eq!(stagger_offset("incident", 120).num_milliseconds(), 74_481);
    }

    #[test]
    fn due_time_keeps_zag_jitter_as_the_minimum_and_zero_turns_stagger_off() {
        let mut l = UsageLimits::default();
        let reset = t0() + Duration::hours(2);
        let (zag_due, _) = compute_resume_at(Some(reset), Provider::Claude, &l, t0());
        for i in 0..200 {
            let id = format!("id-{i}");
            let (d, fb) = due_time(Some(reset), Provider::Claude, &l, t0(), &id);
            assert!(!fb);
            assert!(d >= zag_due && d <= zag_due + Duration::seconds(120), "{d}");
        }
        l.stagger_secs = 0;
        assert_eq!(
            due_time(Some(reset), Provider::Claude, &l, t0(), "x"),
            (zag_due, false)
        );
        // Never past the cap, never before zag's time even when zag is capped.
        l.stagger_secs = 3600;
        let far = t0() + Duration::days(400);
        let (d, _) = due_time(Some(far), Provider::Claude, &l, t0(), "x");
        assert_eq!(d, t0() + Duration::hours(24));
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    #[test]
    fn matches_zag_probe_values() {
        let l = UsageLimits::default();
        let past = t0() - Duration::hours(1);
        assert_eq!(
            compute_resume_at(Some(past), Provider::Claude, &l, t0()),
            (t0() + Duration::seconds(30), false)
        );
        let far = t0() + Duration::days(400);
        assert_eq!(
            compute_resume_at(Some(far), Provider::Claude, &l, t0()).0,
            t0() + Duration::hours(24)
        );
        assert_eq!(
            compute_resume_at(None, Provider::Claude, &l, t0()),
            (t0() + Duration::seconds(3630), true)
        );
        let soon = t0() + Duration::minutes(5);
        assert_eq!(
            compute_resume_at(Some(soon), Provider::Codex, &l, t0()).0,
            soon + Duration::seconds(30)
        );
    }

    #[test]
    fn provider_fallback_override() {
        let mut l = UsageLimits::default();
        l.providers.insert(
            "gemini".into(),
            crate::config::ProviderLimits {
                fallback_secs: Some(60),
                ..Default::default()
            },
        );
        l.jitter_secs = 0;
        assert_eq!(
            compute_resume_at(None, Provider::Gemini, &l, t0()).0,
            t0() + Duration::seconds(60)
        );
    }
}
