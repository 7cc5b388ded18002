//! Shared helpers for the detectors' table tests.

use chrono::{DateTime, Utc};

use super::{Detection, Detector, LineContext, NeedsUser, Provider, Scope, SourceKind, Zone};

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

/// (name, source, line, what the user must do): a limit no wait lifts.
pub type NeedsCase = (&'static str, SourceKind, &'static str, NeedsUser);

/// Each line must be a limit of `provider` that needs the user: no reset,
/// whatever the provider hint.
pub fn run_needs_user(provider: Provider, cases: &[NeedsCase]) {
    let det = detector();
    for (name, source, line, want) in cases {
        for hint in [None, Some(provider)] {
            let d = det
                .detect(line.as_bytes(), &ctx(*source, hint))
                .unwrap_or_else(|| panic!("{name} (hint {hint:?}): no detection"));
            assert_eq!(d.provider, provider, "{name} (hint {hint:?})");
            assert_eq!(d.needs_user, Some(*want), "{name} (hint {hint:?})");
            assert_eq!(d.reset_at, None, "{name} (hint {hint:?})");
        }
    }
}

/// The places one output line of `provider` can land, besides the raw
/// line itself: a spawn log line after the CLI's `Error: ` prefix, zag's
/// `session_ended.error` (the whole stderr, among other lines), zag's
/// `stderr` event, a relay's `provider_status` message.
pub fn places(provider: Provider, text: &str) -> Vec<(&'static str, SourceKind, String)> {
    let zag = |ty: &str, field: &str, value: &str| {
        serde_json::json!({
            "seq": 4, "ts": "2026-11-24T02:00:00+00:00", "provider": provider.as_str(),
            "wrapper_session_id": "w-1", "provider_session_id": null,
            "source_kind": "wrapper", "completeness": "full", "type": ty, field: value,
        })
        .to_string()
    };
    let stderr = format!("Loading…\n{text}\n    at main (file:///cli.js:1:2)\n");
    vec![
        ("raw output line", SourceKind::ZagSpawn, text.to_string()),
        (
            "scan of an unknown file",
            SourceKind::Unknown,
            text.to_string(),
        ),
        (
            "stderr after Error:",
            SourceKind::ZagSpawn,
            format!("Error: {text}"),
        ),
        (
            "zag session_ended.error",
            SourceKind::ZagSession,
            zag("session_ended", "error", &stderr),
        ),
        (
            "zag stderr event",
            SourceKind::ZagSession,
            zag("stderr", "message", text),
        ),
        (
            "zag provider_status",
            SourceKind::ZagSession,
            zag("provider_status", "message", text),
        ),
    ]
}

/// What a line should give in every place: `None` for no limit, else
/// (scope, reset, needs_user).
pub type PlaceWant = Option<(Scope, Option<&'static str>, Option<NeedsUser>)>;

/// (text, what every place of it must give).
pub type PlaceCase = (&'static str, PlaceWant);

/// Every place of [`places`] must give `want` (`None`: no limit), as
/// (scope, reset, needs_user).
pub fn run_places(provider: Provider, text: &str, want: PlaceWant) {
    let det = detector();
    for (place, source, line) in places(provider, text) {
        let got = det
            .detect(line.as_bytes(), &ctx(source, None))
            .map(|d| (d.provider, d.scope, d.reset_at, d.needs_user));
        let want = want.map(|(s, r, n)| (provider, s, r.map(at), n));
        assert_eq!(got, want, "{text:?} as {place}: {line}");
    }
}
