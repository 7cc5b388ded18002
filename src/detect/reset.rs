//! Reset-time parsing: every way a provider says when a cap lifts.
//!
//! Pure functions of (text, anchor, zone). The anchor is the line's own
//! timestamp (or the caller's fallback anchor); a time without a date is the
//! next such moment *after the anchor*, never after the scan, so a daemon
//! catching up on old lines does not move their resets.
//!
//! Invariant: every public function returns `None` rather than a reset that is
//! not after the anchor or lies more than [`MAX_AHEAD_SECS`] past it; the
//! caller then applies the configured fallback wait.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use regex::Regex;
use std::sync::LazyLock;

/// A reset further than this after its line is treated as absurd.
pub const MAX_AHEAD_SECS: i64 = 35 * 86_400;

/// The zone a local clock time is read in: a named IANA zone or the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's local zone (what the provider CLI printed in, since it
    /// ran on this host).
    #[default]
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `"UTC"`, `"Europe/Stockholm"`; `None` for unknown names.
    pub fn named(name: &str) -> Option<Zone> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("utc") || name == "GMT" || name == "Z" {
            return Some(Zone::Named(chrono_tz::UTC));
        }
        name.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
    }

    fn to_utc(self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        fn pick<Z: TimeZone>(z: &Z, n: NaiveDateTime) -> Option<DateTime<Utc>> {
            // In a DST gap the wall time does not exist: take the moment an
            // hour later, which is what the provider's clock would show.
            z.from_local_datetime(&n)
                .earliest()
                .or_else(|| z.from_local_datetime(&(n + Duration::hours(1))).earliest())
                .map(|d| d.with_timezone(&Utc))
        }
        match self {
            Zone::Local => pick(&chrono::Local, naive),
            Zone::Named(tz) => pick(&tz, naive),
        }
    }

    fn local_date(self, t: DateTime<Utc>) -> NaiveDate {
        match self {
            Zone::Local => t.with_timezone(&chrono::Local).date_naive(),
            Zone::Named(tz) => t.with_timezone(&tz).date_naive(),
        }
    }
}

/// Keep `t` only if it is after the anchor and not absurdly far.
pub fn plausible(t: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let ahead = (t - anchor).num_seconds();
    (t > anchor && ahead <= MAX_AHEAD_SECS).then_some(t)
}

/// Epoch seconds (milliseconds are recognised by magnitude).
pub fn from_epoch(secs: f64, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    let secs = if secs > 1e11 { secs / 1000.0 } else { secs };
    let t = DateTime::<Utc>::from_timestamp(secs as i64, 0)?;
    plausible(t, anchor)
}

/// A relative phrase: "in 20s", "in 2 hours", "in 3 days 4 hours",
/// "in 1h 30m", "in 45 minutes and 10 seconds". The first `in <amount>` wins.
pub fn relative(text: &str, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)\bin\s+((?:\d+(?:\.\d+)?\s*(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b(?:\s*,\s*|\s+and\s+|\s+)?)+)",
        )
        .expect("static regex")
    });
    let caps = RE.captures(text)?;
    let secs = sum_durations(caps.get(1)?.as_str())?;
    plausible(
        anchor + Duration::milliseconds((secs * 1000.0) as i64),
        anchor,
    )
}

fn sum_durations(s: &str) -> Option<f64> {
    static PART: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)(\d+(?:\.\d+)?)\s*(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b",
        )
        .expect("static regex")
    });
    let mut total = 0.0;
    let mut any = false;
    for c in PART.captures_iter(s) {
        let n: f64 = c[1].parse().ok()?;
        let unit = c[2].to_ascii_lowercase();
        let mult = match unit.as_bytes()[0] {
            b'd' => 86_400.0,
            b'h' => 3_600.0,
            b'm' => 60.0,
            _ => 1.0,
        };
        total += n * mult;
        any = true;
    }
    any.then_some(total)
}

/// A Google `retryDelay`: "30s", "7200.0s", "1.5s" (also a bare number).
pub fn retry_delay(s: &str, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let num = s.strip_suffix('s').unwrap_or(s);
    let secs: f64 = num.trim().parse().ok()?;
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    plausible(
        anchor + Duration::milliseconds((secs * 1000.0) as i64),
        anchor,
    )
}

/// Find `"retryDelay": "30s"` (JSON or JS-object style) anywhere in `text`.
pub fn find_retry_delay(text: &str, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"retryDelay["']?\s*:\s*["']?(\d+(?:\.\d+)?s?)"#).expect("static regex")
    });
    retry_delay(RE.captures(text)?.get(1)?.as_str(), anchor)
}

static MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month(s: &str) -> Option<u32> {
    let s = s.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| s.starts_with(m))
        .map(|i| i as u32 + 1)
}

/// A wall-clock phrase read in `zone`: "3:35am", "3 PM", "15:35",
/// "Mar 20, 3:35am", "Mar 20th, 2027 3:36 PM", "2027-03-20 15:36".
///
/// Without a year, the date is the next such date on or after the anchor's
/// local date; without a date, the next such time after the anchor.
pub fn wall_clock(text: &str, zone: Zone, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?ix)
            ^\s*
            (?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?
            (?:
              (?P<iso>(?P<iy>\d{4})-(?P<im>\d{2})-(?P<id>\d{2}))[T\s,]+
            |
              (?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+
              (?P<day>\d{1,2})(?:st|nd|rd|th)?
              (?:,?\s+(?P<year>\d{4}))?
              (?:,|\s+at|\s)\s*
            )?
            (?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?
            \s*(?P<ap>[ap]\.?m\.?)?
            (?:\s|$|[.,;)(])",
        )
        .expect("static regex")
    });
    let c = RE.captures(text)?;
    let mut h: u32 = c["h"].parse().ok()?;
    let m: u32 = c.name("m").map_or(Some(0), |m| m.as_str().parse().ok())?;
    let s: u32 = c.name("s").map_or(Some(0), |m| m.as_str().parse().ok())?;
    match c
        .name("ap")
        .map(|a| a.as_str().as_bytes()[0].to_ascii_lowercase())
    {
        Some(ap) => {
            if !(1..=12).contains(&h) {
                return None;
            }
            h %= 12;
            if ap == b'p' {
                h += 12;
            }
        }
        // A bare "3" is no clock time; "15:35" is.
        None if c.name("m").is_none() => return None,
        None => {}
    }
    let time = NaiveTime::from_hms_opt(h, m, s)?;
    let today = zone.local_date(anchor);
    let t = if c.name("iso").is_some() {
        let d = NaiveDate::from_ymd_opt(
            c["iy"].parse().ok()?,
            c["im"].parse().ok()?,
            c["id"].parse().ok()?,
        )?;
        zone.to_utc(d.and_time(time))?
    } else if let Some(mon) = c.name("mon") {
        let mo = month(mon.as_str())?;
        let day: u32 = c["day"].parse().ok()?;
        match c.name("year") {
            Some(y) => {
                let d = NaiveDate::from_ymd_opt(y.as_str().parse().ok()?, mo, day)?;
                zone.to_utc(d.and_time(time))?
            }
            None => {
                // Next such date: this year's, else next year's.
                let mut found = None;
                for y in [today.year(), today.year() + 1] {
                    if let Some(d) = NaiveDate::from_ymd_opt(y, mo, day) {
                        let t = zone.to_utc(d.and_time(time))?;
                        if t > anchor {
                            found = Some(t);
                            break;
                        }
                    }
                }
                found?
            }
        }
    } else {
        let mut d = today.pred_opt()?;
        let mut found = None;
        for _ in 0..3 {
            let t = zone.to_utc(d.and_time(time))?;
            if t > anchor {
                found = Some(t);
                break;
            }
            d = d.succ_opt()?;
        }
        found?
    };
    plausible(t, anchor)
}

/// Claude's "3:35am (Europe/Stockholm)" / "Mar 20, 3am (UTC)"; the zone in
/// parentheses wins, else `fallback` (the host zone).
pub fn clock_with_zone(text: &str, fallback: Zone, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (when, zone) = match (text.find('('), text.find(')')) {
        (Some(a), Some(b)) if b > a => (&text[..a], Zone::named(&text[a + 1..b])?),
        _ => (text, fallback),
    };
    wall_clock(when, zone, anchor)
}

/// Codex's "try again at 3:35 AM." / "try again at Mar 20th, 2027 3:36 PM."
/// (also "after"), read in the host zone; falls back to a relative phrase.
pub fn try_again(text: &str, zone: Zone, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)try again (?:at|after)\s+(.{1,60})").expect("static regex")
    });
    if let Some(c) = RE.captures(text) {
        if let Some(t) = clock_with_zone(&c[1], zone, anchor) {
            return Some(t);
        }
    }
    relative(text, anchor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn utc() -> Zone {
        Zone::named("UTC").unwrap()
    }

    #[test]
    fn epochs() {
        let a = at("2026-11-24T02:00:00Z");
        let cases: &[(f64, Option<&str>)] = &[
            (1_795_000_000.0, None), // 2026-11-18: before the line
            (1_795_500_000.0, Some("2026-11-24T06:00:00Z")),
            (1_795_500_000_000.0, Some("2026-11-24T06:00:00Z")), // millis
            (1_900_000_000.0, None),                             // absurd
            (0.0, None),
            (f64::NAN, None),
        ];
        for (secs, want) in cases {
            assert_eq!(from_epoch(*secs, a), want.map(at), "{secs}");
        }
    }

    #[test]
    fn relatives() {
        let a = at("2026-11-24T02:00:00Z");
        let cases: &[(&str, Option<&str>)] = &[
            ("try again in 20s", Some("2026-11-24T02:00:20Z")),
            ("Please try again in 2 hours.", Some("2026-11-24T04:00:00Z")),
            ("in 3 days 4 hours", Some("2026-11-27T06:00:00Z")),
            ("in 1h 30m", Some("2026-11-24T03:30:00Z")),
            ("in 45 minutes and 10 seconds", Some("2026-11-24T02:45:10Z")),
            ("in 90 days", None),
            ("in a while", None),
            ("no time here", None),
        ];
        for (text, want) in cases {
            assert_eq!(relative(text, a), want.map(at), "{text}");
        }
    }

    #[test]
    fn retry_delays() {
        let a = at("2026-11-24T02:00:00Z");
        assert_eq!(retry_delay("30s", a), Some(at("2026-11-24T02:00:30Z")));
        assert_eq!(retry_delay("7200.0s", a), Some(at("2026-11-24T04:00:00Z")));
        assert_eq!(retry_delay("0s", a), None);
        assert_eq!(retry_delay("soon", a), None);
        assert_eq!(
            find_retry_delay(r#"{"@type":"RetryInfo","retryDelay": "30s"}"#, a),
            Some(at("2026-11-24T02:00:30Z"))
        );
        assert_eq!(
            find_retry_delay("retryDelay: '12s'", a),
            Some(at("2026-11-24T02:00:12Z"))
        );
    }

    #[test]
    fn clock_times_with_zone_names() {
        let a = at("2026-11-24T02:00:00Z");
        let cases: &[(&str, Option<&str>)] = &[
            ("3:35am (UTC)", Some("2026-11-24T03:35:00Z")),
            ("1:35am (UTC)", Some("2026-11-25T01:35:00Z")), // already past today
            // Stockholm is UTC+1 in November: 3:35 local = 02:35Z.
            ("3:35am (Europe/Stockholm)", Some("2026-11-24T02:35:00Z")),
            ("3am (America/Los_Angeles)", Some("2026-11-24T11:00:00Z")),
            ("12pm (UTC)", Some("2026-11-24T12:00:00Z")),
            ("12:10am (UTC)", Some("2026-11-25T00:10:00Z")),
            ("Nov 27, 3am (UTC)", Some("2026-11-27T03:00:00Z")),
            ("Nov 27 at 3:15pm (UTC)", Some("2026-11-27T15:15:00Z")),
            ("3:35am (Mars/Olympus)", None),
            ("13:35pm (UTC)", None),
            ("soon (UTC)", None),
        ];
        for (text, want) in cases {
            assert_eq!(clock_with_zone(text, utc(), a), want.map(at), "{text}");
        }
    }

    #[test]
    fn clock_is_anchored_on_the_line_not_the_scan() {
        // A line from last week keeps last week's reset.
        let line = at("2026-11-17T02:00:00Z");
        assert_eq!(
            clock_with_zone("3:35am (UTC)", utc(), line),
            Some(at("2026-11-17T03:35:00Z"))
        );
    }

    #[test]
    fn codex_try_again() {
        let a = at("2026-11-24T02:00:00Z");
        let z = utc();
        let cases: &[(&str, Option<&str>)] = &[
            ("… or try again at 3:35 AM.", Some("2026-11-24T03:35:00Z")),
            ("try again at 1:05 AM.", Some("2026-11-25T01:05:00Z")),
            (
                "try again at Dec 20th, 2026 3:36 PM.",
                Some("2026-12-20T15:36:00Z"),
            ),
            ("try again at Mar 20th, 2027 3:36 PM.", None), // > 35 days
            (
                "try again at Nov 25th, 2026 3:36 PM.",
                Some("2026-11-25T15:36:00Z"),
            ),
            ("try again at Nov 20th, 2026 3:36 PM.", None), // before the line
            (
                "try again at 2026-11-25 10:00",
                Some("2026-11-25T10:00:00Z"),
            ),
            ("try again in 20s", Some("2026-11-24T02:00:20Z")),
            ("try again later", None),
        ];
        for (text, want) in cases {
            assert_eq!(try_again(text, z, a), want.map(at), "{text}");
        }
        let ny = Zone::named("America/New_York").unwrap();
        assert_eq!(
            try_again("try again at 3:35 AM.", ny, a),
            Some(at("2026-11-24T08:35:00Z"))
        );
    }
}
