//! Resume-time arithmetic: pure functions of a detection, the config and now.
//!
//! `compute_resume_at` reproduces zag's rule (ZAG_INTEROP §5) so that a resume
//! we schedule wakes when zag's own would; stagger then spreads a fleet of
//! sessions limited by the same reset over a window so they don't all hit the
//! provider in the same second.

use chrono::{DateTime, Duration, Utc};

use crate::config::UsageLimits;
use crate::detect::Provider;

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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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
