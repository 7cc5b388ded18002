//! Shared helpers for the detectors' table tests.

use chrono::{DateTime, Utc};

use super::{Detection, Detector, LineContext, Provider, Scope, SourceKind, Zone};

/// (name, source, line, expected scope and reset — `None` for no limit).
pub type Case = (
    &'static str,
    SourceKind,
    &'static str,
    Option<(Scope, Option<&'static str>)>,
);

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Lines without a timestamp of their own are anchored here.
pub fn anchor() -> DateTime<Utc> {
    at("2026-11-24T02:00:00Z")
}

pub fn detector() -> Detector {
    Detector::default().with_zone(Zone::named("UTC").unwrap())
}

pub fn ctx(source: SourceKind, provider_hint: Option<Provider>) -> LineContext {
    LineContext {
        source,
        provider_hint,
        anchor: anchor(),
    }
}

pub fn detect_one(source: SourceKind, line: &str) -> Option<Detection> {
    detector().detect(line.as_bytes(), &ctx(source, None))
}

/// Run a table with and without the provider hint; every prefix of every
/// line must also be judged without a panic.
pub fn run_cases(provider: Provider, cases: &[Case]) {
    let det = detector();
    for (name, source, line, want) in cases {
        for hint in [None, Some(provider)] {
            let got = det.detect(line.as_bytes(), &ctx(*source, hint));
            match (want, &got) {
                (None, None) => {}
                (Some((scope, reset)), Some(d)) => {
                    assert_eq!(d.provider, provider, "{name} (hint {hint:?})");
                    assert_eq!(d.scope, *scope, "{name} (hint {hint:?})");
                    assert_eq!(d.reset_at, reset.map(at), "{name} (hint {hint:?})");
                    assert!(!d.raw.is_empty(), "{name}: raw is empty");
                }
                _ => panic!("{name} (hint {hint:?}): want {want:?}, got {got:?}"),
            }
        }
        for cut in 0..line.len() {
            let _ = det.detect(&line.as_bytes()[..cut], &ctx(*source, None));
        }
    }
}
