//! Property-style check of the whole reset path: for many reset instants and
//! zones, print the reset the way each CLI prints it, detect the line, and
//! schedule it with `due_time` (jitter and stagger 0). The resume must never
//! come before the real reset, and at most 60 s after it when the text has
//! only minute precision. A deterministic loop (seeded splitmix64) instead of
//! a property-testing crate: same coverage, no new dependency.

use chrono::{DateTime, Datelike, Duration, LocalResult, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::testkit::at;
use super::{Detector, LineContext, Provider, SourceKind, Zone};
use crate::config::UsageLimits;
use crate::schedule::due_time;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Warsaw",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn limits() -> UsageLimits {
    UsageLimits {
        jitter_secs: 0,
        stagger_secs: 0,
        // Resets up to 30 days out must not be cut by the wait cap.
        max_wait_secs: 40 * 86_400,
        ..UsageLimits::default()
    }
}

/// Claude Code 2.1.332's reset text: seconds cut, minutes dropped on the
/// hour, a date when more than 24 h away, a year when in another year.
fn claude_text(reset: DateTime<Utc>, now: DateTime<Utc>, tz: Tz, name: &str) -> String {
    let l = reset.with_timezone(&tz);
    let h12 = match l.hour() % 12 {
        0 => 12,
        h => h,
    };
    let ap = if l.hour() < 12 { "am" } else { "pm" };
    let time = if l.minute() == 0 {
        format!("{h12}{ap}")
    } else {
        format!("{h12}:{:02}{ap}", l.minute())
    };
    let mon = MONTHS[l.month0() as usize];
    let when = if reset - now < Duration::hours(24) {
        time
    } else if l.year() == now.with_timezone(&tz).year() {
        format!("{mon} {}, {time}", l.day())
    } else {
        format!("{mon} {}, {}, {time}", l.day(), l.year())
    };
    format!("You've hit your 5-hour limit · resets {when} ({name})")
}

/// Codex 0.171's: "7:13 PM" the same day, else "Dec 3rd, 2026 5:34 PM".
fn codex_text(reset: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let l = reset.with_timezone(&tz);
    let h12 = match l.hour() % 12 {
        0 => 12,
        h => h,
    };
    let ap = if l.hour() < 12 { "AM" } else { "PM" };
    let time = format!("{h12}:{:02} {ap}", l.minute());
    let when = if l.date_naive() == now.with_timezone(&tz).date_naive() {
        time
    } else {
        let d = l.day();
        let suffix = match (d % 10, d % 100) {
            (1, n) if n != 11 => "st",
            (2, n) if n != 12 => "nd",
            (3, n) if n != 13 => "rd",
            _ => "th",
        };
        format!(
            "{} {d}{suffix}, {} {time}",
            MONTHS[l.month0() as usize],
            l.year()
        )
    };
    format!("ERROR: You’ve hit your usage limit. Upgrade to Pro or try again at {when}.")
}

/// Whether the reset's local minute occurs twice (a DST fall-back): the
/// text cannot say which, and the later is taken (late, never early).
fn ambiguous(reset: DateTime<Utc>, tz: Tz) -> bool {
    let naive = reset.with_timezone(&tz).naive_local();
    matches!(tz.from_local_datetime(&naive), LocalResult::Ambiguous(..))
}

#[test]
fn a_scheduled_resume_is_never_before_the_reset_and_at_most_a_minute_after() {
    let mut rng = Rng(0x5EED);
    let base = at("2026-01-01T00:00:00Z");
    let limits = limits();
    let mut checked = 0;
    for i in 0..6000 {
        let name = ZONES[i % ZONES.len()];
        let tz: Tz = name.parse().unwrap();
        // Any second over two years, so DST changes and year ends are hit.
        let reset = base + Duration::seconds(rng.below(2 * 365 * 86_400) as i64);
        // The limit was hit up to 30 days before (mostly under a day).
        let lead = if rng.below(3) == 0 {
            1 + rng.below(30 * 86_400)
        } else {
            1 + rng.below(86_400)
        };
        // Left out: a time-only text (under 24 h) naming the line's own
        // minute 23 h 59 m ahead; it reads as seconds away (see
        // `reset::wall_clock`), the far likelier case.
        if (86_400 - 60..86_400).contains(&lead) {
            continue;
        }
        let now = reset - Duration::seconds(lead as i64);
        let det = Detector::default().with_zone(Zone::Named(tz));
        let claude = serde_json::json!({
            "type": "assistant", "timestamp": now.to_rfc3339(), "sessionId": "s",
            "error": "rate_limit", "isApiErrorMessage": true,
            "message": {"model": "<synthetic>", "content": [
                {"type": "text", "text": claude_text(reset, now, tz, name)}]},
        })
        .to_string();
        let codex = codex_text(reset, now, tz);
        for (source, line) in [
            (SourceKind::ClaudeNative, claude.as_str()),
            (SourceKind::ZagSpawn, codex.as_str()),
        ] {
            let ctx = LineContext {
                source,
                provider_hint: None,
                anchor: now,
            };
            let d = det
                .detect(line.as_bytes(), &ctx)
                .unwrap_or_else(|| panic!("not detected: {line}"));
            let found = d.reset_at.unwrap_or_else(|| panic!("no reset: {line}"));
            let (due, fallback) = due_time(Some(found), d.provider, &limits, now, "incident");
            assert!(!fallback);
            let late = (due - reset).num_seconds();
            assert!(due >= reset, "early by {}s: {line} (real {reset})", -late);
            let bound = if ambiguous(reset, tz) { 3600 + 60 } else { 60 };
            assert!(late <= bound, "late by {late}s: {line} (real {reset})");
            checked += 1;
        }
    }
    assert!(checked > 11_900, "{checked}");
}

#[test]
fn an_exact_epoch_is_kept_to_the_second_and_a_past_one_means_now() {
    let limits = limits();
    let det = Detector::default();
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let reset = at("2026-11-01T00:00:00Z") + Duration::seconds(rng.below(40 * 86_400) as i64);
        // Read up to two days after the reset, or up to 5 h before it.
        let now = reset + Duration::seconds(rng.below(7 * 86_400) as i64 - 5 * 3600);
        let line = format!(
            r#"{{"type":"rate_limit_event","rate_limit_info":{{"status":"rejected","resetsAt":{},"rateLimitType":"five_hour"}},"session_id":"s"}}"#,
            reset.timestamp()
        );
        let ctx = LineContext {
            source: SourceKind::ZagSpawn,
            provider_hint: None,
            anchor: now,
        };
        let d = det.detect(line.as_bytes(), &ctx).unwrap();
        assert_eq!((d.provider, d.reset_at), (Provider::Claude, Some(reset)));
        let (due, _) = due_time(d.reset_at, d.provider, &limits, now, "incident");
        assert_eq!(due, reset.max(now), "{line} read at {now}");
    }
}
