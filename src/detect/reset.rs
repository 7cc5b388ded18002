//! Reset-time parsing: every way a provider says when a cap lifts.
//!
//! Pure functions of (text, anchor, zone). The anchor is the line's own
//! timestamp (or the caller's fallback anchor); a time without a date is the
//! next such moment *after the anchor*, never after the scan, so a daemon
//! catching up on old lines does not move their resets.
//!
//! Invariant: every public function returns `None` rather than a reset that is
//! not after the anchor or lies more than [`MAX_AHEAD_SECS`] past it; the
//! caller then applies the configured fallback wait. The one exception is
//! [`exact_epoch`] on a line without a timestamp of its own: there the anchor
//! is only the time the line was read, so a past epoch is still the reset
//! (a daemon catching up after downtime resumes at once; scheduling decides).
//!
//! # Never early
//! The CLIs cut seconds off the times they print (Claude shows `5:32pm` for a
//! reset at 17:32:33; "in 45 minutes" drops the seconds too). A resume at the
//! printed minute would hit the same limit again, so every time read with
//! minute precision or coarser is rounded **up** to the end of that minute:
//! never before the real reset, at most 60 s after it. Times that carry
//! seconds (epochs, `2h52m39s`, `retryDelay`) are taken as they are.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use regex::Regex;
use std::sync::LazyLock;

/// A reset further than this after its line is treated as absurd.
pub const MAX_AHEAD_SECS: i64 = 35 * 86_400;

/// What a minute-precision time is rounded up by: its minute's end.
pub const MINUTE_ROUNDING_SECS: i64 = 60;

/// The zone a local clock time is read in: a named IANA zone or the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's local zone (what the provider CLI printed in, since it
    /// ran on this host).
    #[default]
    Local,
    Named(chrono_tz::Tz),
    /// A fixed offset printed with the time (Gemini's `GMT-3`).
    Fixed(chrono::FixedOffset),
}

impl Zone {
    /// `"UTC"`, `"Europe/Stockholm"`; `None` for unknown names.
    pub fn named(name: &str) -> Option<Zone> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("utc") || name == "GMT" || name == "Z" {
            return Some(Zone::Named(chrono_tz::UTC));
        }
        if let Some(z) = Zone::gmt_offset(name) {
            return Some(z);
        }
        name.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
    }

    /// `GMT-3`, `UTC+5:30`, `GMT+0530` as a fixed offset.
    fn gmt_offset(name: &str) -> Option<Zone> {
        let rest = name
            .strip_prefix("GMT")
            .or_else(|| name.strip_prefix("UTC"))?;
        let (sign, num) = match rest.as_bytes().first()? {
            b'+' => (1, &rest[1..]),
            b'-' => (-1, &rest[1..]),
            _ => return None,
        };
        let (h, m) = match num.split_once(':') {
            Some((h, m)) => (h, m),
            None if num.len() > 2 => num.split_at(num.len() - 2),
            None => (num, "0"),
        };
        let h: i32 = h.parse().ok()?;
        let m: i32 = m.parse().ok()?;
        if h > 14 || m > 59 {
            return None;
        }
        chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60)).map(Zone::Fixed)
    }

    fn to_utc(self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        fn pick<Z: TimeZone>(z: &Z, n: NaiveDateTime) -> Option<DateTime<Utc>> {
            // In a DST gap the wall time does not exist: take the moment an
            // hour later, which is what the provider's clock would show. A
            // wall time that occurs twice (the hour after a fall-back) is
            // read as the later one: a late resume costs a wait, an early one
            // hits the same limit again.
            z.from_local_datetime(&n)
                .latest()
                .or_else(|| z.from_local_datetime(&(n + Duration::hours(1))).earliest())
                .map(|d| d.with_timezone(&Utc))
        }
        match self {
            Zone::Local => pick(&chrono::Local, naive),
            Zone::Named(tz) => pick(&tz, naive),
            Zone::Fixed(off) => pick(&off, naive),
        }
    }

    fn local_date(self, t: DateTime<Utc>) -> NaiveDate {
        match self {
            Zone::Local => t.with_timezone(&chrono::Local).date_naive(),
            Zone::Named(tz) => t.with_timezone(&tz).date_naive(),
            Zone::Fixed(off) => t.with_timezone(&off).date_naive(),
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

/// An exact epoch a provider wrote (`resetsAt`, `resets_at`): after the
/// line when the line has a timestamp of its own (`own_ts`); otherwise the
/// anchor is only when the line was read, so an epoch up to
/// [`MAX_AHEAD_SECS`] before it is kept too (a past reset means "now").
pub fn exact_epoch(secs: f64, anchor: DateTime<Utc>, own_ts: bool) -> Option<DateTime<Utc>> {
    if own_ts {
        return from_epoch(secs, anchor);
    }
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    let secs = if secs > 1e11 { secs / 1000.0 } else { secs };
    let t = DateTime::<Utc>::from_timestamp(secs as i64, 0)?;
    ((t - anchor).num_seconds().abs() <= MAX_AHEAD_SECS).then_some(t)
}

/// The first midnight in `tz` strictly after `anchor` (a DST change at
/// midnight takes the first moment of that day that exists). Gemini's daily
/// quotas reset at midnight Pacific time.
pub fn next_midnight(tz: chrono_tz::Tz, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let day = anchor.with_timezone(&tz).date_naive().succ_opt()?;
    Zone::Named(tz).to_utc(day.and_time(NaiveTime::MIN))
}

/// A relative phrase: "in 20s", "in 2 hours", "in 3 days 4 hours",
/// "in 1h 30m", "in 45 minutes and 10 seconds", "retry after 840 seconds",
/// "wait 6 seconds". The first `in|after|wait <amount>` wins.
/// Without a seconds part the phrase is minute precision (or coarser) and is
/// rounded up by [`MINUTE_ROUNDING_SECS`] (see "Never early" above).
pub fn relative(text: &str, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)\b(?:in|after|wait)\s+((?:\d+(?:\.\d+)?\s*(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b(?:\s*,\s*|\s+and\s+|\s+)?)+)",
        )
        .expect("static regex")
    });
    let caps = RE.captures(text)?;
    let (secs, has_secs) = sum_durations(caps.get(1)?.as_str())?;
    let round = if has_secs { 0 } else { MINUTE_ROUNDING_SECS };
    plausible(
        anchor + Duration::milliseconds((secs * 1000.0) as i64) + Duration::seconds(round),
        anchor,
    )
}

/// A compact duration: "2h52m39s", "45m", "840s", "1d2h" (Gemini's "reset
/// after 2h52m39s"), rounded up like [`relative`] when it has no seconds.
pub fn compact_duration(text: &str, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
            .expect("static regex")
    });
    let c = RE.captures(text.trim())?;
    let part =
        |i: usize| -> Option<f64> { c.get(i).map_or(Some(0.0), |m| m.as_str().parse().ok()) };
    if (1..=4).all(|i| c.get(i).is_none()) {
        return None;
    }
    let secs = part(1)? * 86_400.0 + part(2)? * 3_600.0 + part(3)? * 60.0 + part(4)?;
    let round = if c.get(4).is_some() {
        0
    } else {
        MINUTE_ROUNDING_SECS
    };
    plausible(
        anchor + Duration::milliseconds((secs * 1000.0) as i64) + Duration::seconds(round),
        anchor,
    )
}

/// Total seconds of the duration parts in `s`, and whether one is seconds.
fn sum_durations(s: &str) -> Option<(f64, bool)> {
    static PART: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)(\d+(?:\.\d+)?)\s*(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b",
        )
        .expect("static regex")
    });
    let mut total = 0.0;
    let mut any = false;
    let mut has_secs = false;
    for c in PART.captures_iter(s) {
        let n: f64 = c[1].parse().ok()?;
        let unit = c[2].to_ascii_lowercase();
        let mult = match unit.as_bytes()[0] {
            b'd' => 86_400.0,
            b'h' => 3_600.0,
            b'm' => 60.0,
            _ => {
                has_secs = true;
                1.0
            }
        };
        total += n * mult;
        any = true;
    }
    any.then_some((total, has_secs))
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
/// "Mar 20, 3:35am", "Mar 20th, 2027 3:36 PM", "Jan 2, 2027, 9:05am",
/// "2027-03-20 15:36". Without seconds it is rounded up to the minute's end.
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
    // Printed without seconds: the real reset lies somewhere in that minute,
    // so take the minute's end (before looking for the next such moment, so
    // a reset later in the line's own minute stays today's). The one
    // ambiguity: a time-only text naming the line's own minute is either
    // seconds away or 23 h 59 m away; it is read as seconds away, which a
    // 5-hour window makes far likelier than a weekly reset that far out.
    let round = Duration::seconds(if c.name("s").is_some() {
        0
    } else {
        MINUTE_ROUNDING_SECS
    });
    let conv = |n: NaiveDateTime| zone.to_utc(n).map(|t| t + round);
    let today = zone.local_date(anchor);
    let t = if c.name("iso").is_some() {
        let d = NaiveDate::from_ymd_opt(
            c["iy"].parse().ok()?,
            c["im"].parse().ok()?,
            c["id"].parse().ok()?,
        )?;
        conv(d.and_time(time))?
    } else if let Some(mon) = c.name("mon") {
        let mo = month(mon.as_str())?;
        let day: u32 = c["day"].parse().ok()?;
        match c.name("year") {
            Some(y) => {
                let d = NaiveDate::from_ymd_opt(y.as_str().parse().ok()?, mo, day)?;
                conv(d.and_time(time))?
            }
            None => {
                // Next such date: this year's, else next year's.
                let mut found = None;
                for y in [today.year(), today.year() + 1] {
                    if let Some(d) = NaiveDate::from_ymd_opt(y, mo, day) {
                        let t = conv(d.and_time(time))?;
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
            let t = conv(d.and_time(time))?;
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

/// A line's own RFC 3339 timestamp (the anchor of its relative times).
pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    crate::clock::parse_utc(s)
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
            ("Please try again in 2 hours.", Some("2026-11-24T04:01:00Z")),
            ("in 3 days 4 hours", Some("2026-11-27T06:01:00Z")),
            ("in 1h 30m", Some("2026-11-24T03:31:00Z")),
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
            ("3:35am (UTC)", Some("2026-11-24T03:36:00Z")),
            ("1:35am (UTC)", Some("2026-11-25T01:36:00Z")), // already past today
            // Stockholm is UTC+1 in November: 3:35 local = 02:35Z.
            ("3:35am (Europe/Stockholm)", Some("2026-11-24T02:36:00Z")),
            ("3am (America/Los_Angeles)", Some("2026-11-24T11:01:00Z")),
            ("12pm (UTC)", Some("2026-11-24T12:01:00Z")),
            ("12:10am (UTC)", Some("2026-11-25T00:11:00Z")),
            ("Nov 27, 3am (UTC)", Some("2026-11-27T03:01:00Z")),
            ("Nov 27 at 3:15pm (UTC)", Some("2026-11-27T15:16:00Z")),
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
            Some(at("2026-11-17T03:36:00Z"))
        );
    }

    #[test]
    fn codex_try_again() {
        let a = at("2026-11-24T02:00:00Z");
        let z = utc();
        let cases: &[(&str, Option<&str>)] = &[
            ("… or try again at 3:35 AM.", Some("2026-11-24T03:36:00Z")),
            ("try again at 1:05 AM.", Some("2026-11-25T01:06:00Z")),
            (
                "try again at Dec 20th, 2026 3:36 PM.",
                Some("2026-12-20T15:37:00Z"),
            ),
            ("try again at Mar 20th, 2027 3:36 PM.", None), // > 35 days
            (
                "try again at Nov 25th, 2026 3:36 PM.",
                Some("2026-11-25T15:37:00Z"),
            ),
            ("try again at Nov 20th, 2026 3:36 PM.", None), // before the line
            (
                "try again at 2026-11-25 10:00",
                Some("2026-11-25T10:01:00Z"),
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
            Some(at("2026-11-24T08:36:00Z"))
        );
    }
}
