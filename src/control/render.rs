//! Pure rendering for the CLI and the notifier: tables, countdowns, event
//! lines. No I/O: every function takes the data (and `now`) and returns text.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::history::{short_id, IncidentHistory, State};
use super::{IncidentEvent, PendingView, StatusSnapshot};
use crate::detect::Scope;

/// Pretty JSON with a trailing newline, as the `--json` commands print it.
pub fn pretty(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// A duration for people: "2h 14m", "3d 4h", "5m", "40s".
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

/// "resumes in 2h 14m", "due now", "overdue by 5m".
pub fn countdown(when: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = when - now;
    if left > chrono::Duration::zero() {
        format!("resumes in {}", human_duration(left))
    } else if -left < chrono::Duration::seconds(60) {
        "due now".to_string()
    } else {
        format!("overdue by {}", human_duration(-left))
    }
}

/// The first characters of a session id, for tables: "6873…".
pub fn short_session(id: &str) -> String {
    const KEEP: usize = 4;
    if id.is_empty() {
        return "?".into();
    }
    match id.char_indices().nth(KEEP) {
        Some((i, _)) => format!("{}…", &id[..i]),
        None => id.to_string(),
    }
}

/// "weekly limit" for a stored scope name ("5-hour limit" for Claude's and
/// Codex's session window); the name itself for others.
fn describe_scope(scope: &str, provider: &str) -> String {
    match serde_json::from_value::<Scope>(serde_json::Value::String(scope.to_string())) {
        Ok(s) => s.describe_for(provider).to_string(),
        Err(_) => format!("{scope} limit"),
    }
}

/// One pending line: "claude · session 6873… · resumes in 2h 14m · weekly limit".
pub fn render_pending(p: &PendingView, now: DateTime<Utc>) -> String {
    let mut s = format!(
        "{} · session {} · {}",
        p.provider,
        short_session(&p.session_id),
        countdown(p.when, now)
    );
    if let Some(scope) = &p.scope {
        let _ = write!(s, " · {}", describe_scope(scope, &p.provider));
    }
    if p.attempt > 1 {
        let _ = write!(s, " · attempt {}", p.attempt);
    }
    if let Some(m) = &p.message {
        let _ = write!(s, " · sends {m:?}");
    }
    if p.force {
        s.push_str(" · forced");
    }
    if let Some(by) = &p.continued_by {
        let _ = write!(s, " · continued by {by}");
    }
    if let Some(m) = &p.permission_mode {
        let _ = write!(s, " · permission mode {m}");
    }
    s
}

/// How the permission mode a resume runs in is told: the mode in force
/// at the limit, or the provider's default when none was recorded (never
/// more). `None` for providers whose files record no mode.
pub fn mode_words(provider: &str, mode: Option<&str>) -> Option<String> {
    let records = crate::detect::Provider::parse(provider)
        .is_some_and(|p| crate::provider::of(p).mode_record().is_some());
    match mode {
        Some(m) => Some(format!("permission mode {m}")),
        None if records => {
            Some("permission mode: the provider's default (none recorded at the limit)".into())
        }
        None => None,
    }
}

/// A time for logs, to the second, or "unknown": never `Some(…)`.
pub fn opt_stamp(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "unknown".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

pub use crate::clock::log_time;

/// A time to the second: "2030-01-01 08:00:30 UTC".
pub fn stamp_secs(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub use crate::clock::stamp;

/// One event line: "2030-01-01 08:00 UTC  resumed    claude · session 6873… · via fifo".
pub fn render_event(ev: &IncidentEvent) -> String {
    let (at, kind, what) = match ev {
        IncidentEvent::Hit {
            provider,
            session_id,
            scope,
            reset_at,
            at,
            ..
        } => {
            let resets = reset_at.map_or_else(
                || "reset unknown".into(),
                |r| format!("resets {}", stamp(r)),
            );
            (
                at,
                "hit",
                format!(
                    "{provider} · session {} · {} · {resets}",
                    short_session(session_id),
                    describe_scope(scope, provider)
                ),
            )
        }
        IncidentEvent::Scheduled {
            provider,
            session_id,
            when,
            attempt,
            at,
            ..
        } => (
            at,
            "scheduled",
            format!(
                "{provider} · session {} · at {} · attempt {attempt}",
                short_session(session_id),
                stamp(*when)
            ),
        ),
        IncidentEvent::Resumed {
            provider,
            session_id,
            detail,
            at,
            ..
        } => (at, "resumed", joined(provider, session_id, detail)),
        IncidentEvent::Failed {
            provider,
            session_id,
            reason,
            at,
            ..
        } => (at, "failed", joined(provider, session_id, reason)),
        IncidentEvent::Skipped {
            provider,
            session_id,
            reason,
            at,
            ..
        } => (at, "skipped", joined(provider, session_id, reason)),
        IncidentEvent::Cancelled { at, .. } => (at, "cancelled", String::new()),
        IncidentEvent::NeedsUser {
            provider,
            session_id,
            what,
            at,
            ..
        } => (at, "needs you", joined(provider, session_id, what)),
        IncidentEvent::StoreUnwritable {
            store, error, at, ..
        } => (
            at,
            "unwritable",
            format!("cannot write {store}: {error}; records wait and are retried"),
        ),
        IncidentEvent::Routed {
            provider,
            session_id,
            continued_by,
            why,
            at,
            ..
        } => (
            at,
            "waiting",
            joined(
                provider,
                session_id,
                &format!("continued by {continued_by}: {why}"),
            ),
        ),
    };
    let id = short_id(event_incident(ev));
    format!("{}  {kind:<9}  {id}  {what}", stamp(*at))
        .trim_end()
        .to_string()
}

/// The incident an event is about.
pub fn event_incident(ev: &IncidentEvent) -> &str {
    match ev {
        IncidentEvent::Hit { incident_id, .. }
        | IncidentEvent::Scheduled { incident_id, .. }
        | IncidentEvent::Resumed { incident_id, .. }
        | IncidentEvent::Failed { incident_id, .. }
        | IncidentEvent::Skipped { incident_id, .. }
        | IncidentEvent::Cancelled { incident_id, .. }
        | IncidentEvent::NeedsUser { incident_id, .. }
        | IncidentEvent::Routed { incident_id, .. }
        | IncidentEvent::StoreUnwritable { incident_id, .. } => incident_id,
    }
}

fn joined(provider: &str, session_id: &str, detail: &str) -> String {
    let mut s = format!("{provider} · session {}", short_session(session_id));
    if !detail.is_empty() {
        let _ = write!(s, " · {detail}");
    }
    s
}

/// What `status` prints.
pub fn render_status(s: &StatusSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "zag-resumed {} · pid {} · up {} (since {})",
        s.version,
        s.pid,
        human_duration(s.now - s.started_at),
        stamp(s.started_at)
    );
    if s.dry_run {
        out.push_str("DRY RUN: decides and logs only; writes no store record, types nothing, starts nothing\n");
    }
    if let Some(p) = &s.paused {
        let _ = writeln!(out, "{}", p.describe());
    }
    let total: usize = s.watched.values().sum();
    if total == 0 {
        out.push_str("watching no files yet\n");
    } else {
        let per: Vec<String> = s
            .watched
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "watching {total} file{}: {}",
            plural(total),
            per.join(" · ")
        );
    }
    for o in &s.unwritable {
        let _ = writeln!(
            out,
            "CANNOT WRITE {} since {} ({}): {}; {} record{} waiting, retried",
            o.store,
            stamp(o.since),
            human_duration(s.now - o.since),
            o.error,
            o.waiting,
            plural(o.waiting)
        );
    }
    if s.pending.is_empty() {
        out.push_str("no pending resumes\n");
    } else {
        let _ = writeln!(out, "pending resumes ({}):", s.pending.len());
        let mut pending: Vec<&PendingView> = s.pending.iter().collect();
        pending.sort_by_key(|p| p.when);
        for p in pending {
            let _ = writeln!(
                out,
                "  {}  {}",
                short_id(&p.incident_id),
                render_pending(p, s.now)
            );
        }
    }
    if !s.recent.is_empty() {
        out.push_str("recent:\n");
        for ev in &s.recent {
            let _ = writeln!(out, "  {}", render_event(ev));
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What `list` prints: a table like `zag usage list`, plus the store.
pub fn render_list(v: &[PendingView]) -> String {
    if v.is_empty() {
        return "No pending resumes.\n".into();
    }
    let header = [
        "INCIDENT",
        "PROVIDER",
        "WAKES AT (UTC)",
        "ATTEMPT",
        "SESSION",
        "STORE",
    ];
    let rows: Vec<[String; 6]> = v
        .iter()
        .map(|p| {
            [
                short_id(&p.incident_id).to_string(),
                p.provider.clone(),
                p.when.format("%Y-%m-%d %H:%M:%S").to_string(),
                p.attempt.to_string(),
                p.session_id.clone(),
                p.store.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        format!("{}\n", l.trim_end())
    };
    let mut out = line(header);
    for (r, p) in rows.iter().zip(v) {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
        if let Some(m) = &p.message {
            let _ = writeln!(out, "  sends {m:?} (set with `zag-resumed message`)");
        }
        if p.force {
            out.push_str("  forced: delivered even if the session moved on\n");
        }
        // who will continue it, under its row (a column could not hold the why)
        if let Some(by) = &p.continued_by {
            let _ = match &p.continued_by_why {
                Some(w) => writeln!(out, "  continued by {by}: {w}"),
                None => writeln!(out, "  continued by {by}"),
            };
        }
        // Unknown (absent) means the provider's default; said when known.
        if let Some(m) = &p.permission_mode {
            let _ = writeln!(
                out,
                "  permission mode {m} (in force when the limit was met)"
            );
        }
    }
    out
}

/// What an idle `status` adds: where the daemon looks, and which of those
/// places exist.
pub fn render_roots(roots: &[(std::path::PathBuf, bool)]) -> String {
    let mut out = String::from("watched roots:\n");
    for (root, exists) in roots {
        let state = if *exists { "exists" } else { "missing" };
        let _ = writeln!(out, "  {}  ({state})", root.display());
    }
    out
}

/// What `history` prints: one block per incident, its hit, its schedule
/// and how it ended.
pub fn render_history(all: &[IncidentHistory], now: DateTime<Utc>) -> String {
    if all.is_empty() {
        return "No incidents in the stores.\n".into();
    }
    let mut out = String::new();
    for h in all {
        let mut head = format!(
            "{}  {} · session {}",
            h.short_id,
            h.provider.as_deref().unwrap_or("?"),
            short_session(h.session_id.as_deref().unwrap_or(""))
        );
        if let Some(scope) = &h.scope {
            let provider = h.provider.as_deref().unwrap_or("");
            let _ = write!(head, " · {}", describe_scope(scope, provider));
        }
        let _ = writeln!(out, "{head} · {}", h.state.as_str());
        if let Some(hit) = h.hit_at {
            let _ = write!(out, "  {:<9}  {}", "hit", stamp(hit));
            if let Some(file) = &h.file {
                let _ = write!(out, " · {file}");
            }
            out.push('\n');
        }
        if h.state == State::NeedsUser {
            let _ = writeln!(out, "  {:<9}  never: no wait lifts this limit", "scheduled");
        } else if let Some(when) = h.when {
            // To the second: a due time is exact (reset + jitter + stagger).
            let _ = write!(out, "  {:<9}  for {}", "scheduled", stamp_secs(when));
            if let Some(a) = h.attempt {
                let _ = write!(out, " · attempt {a}");
            }
            if let Some(reset) = h.reset_at {
                let _ = write!(out, " · resets {}", stamp(reset));
            }
            if let Some(chain) = h.chain_id.as_deref().filter(|c| *c != h.incident_id) {
                let _ = write!(out, " · chain {}", short_id(chain));
            }
            if let Some(req) = &h.requested {
                let _ = write!(out, " · {req} requested");
            }
            if h.force {
                let _ = write!(out, " · forced (delivered even if the session moved on)");
            }
            if let Some(m) = &h.message {
                let _ = write!(out, " · message {m:?}");
            }
            out.push('\n');
        }
        let mut end = format!("  {:<9}  ", h.state.as_str());
        match (h.state, h.ended_at) {
            (State::Pending, _) => match h.when {
                Some(when) => end.push_str(&countdown(when, now)),
                None => end.push_str("no schedule record"),
            },
            (_, Some(at)) => end.push_str(&stamp(at)),
            (_, None) => end.push_str("time not recorded"),
        }
        if let Some(secs) = h.after_reset_secs {
            let d = chrono::Duration::seconds(secs.abs());
            let rel = if secs >= 0 { "after" } else { "before" };
            let base = if h.reset_at.is_some() {
                "the reset"
            } else {
                "its due time"
            };
            let _ = write!(end, " · {} {rel} {base}", human_duration(d));
        }
        if let Some(reason) = &h.reason {
            let _ = write!(end, " · {reason}");
        }
        let _ = writeln!(out, "{end}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn pending(id: &str, session: &str, when: &str, scope: Option<&str>) -> PendingView {
        PendingView {
            incident_id: id.into(),
            provider: "claude".into(),
            session_id: session.into(),
            when: t(when),
            attempt: 1,
            store: "/h/.zag/projects/p/scheduled_resumes.jsonl".into(),
            scope: scope.map(Into::into),
            cwd: None,
            origin: Some("zag-resumed".into()),
            continued_by: None,
            continued_by_why: None,
            permission_mode: None,
            message: None,
            force: false,
        }
    }

    #[test]
    fn log_times_print_bare() {
        assert_eq!(
            log_time(Some(t("2026-12-04T15:28:00Z"))),
            "2026-12-04T15:28:00Z"
        );
        assert_eq!(log_time(None), "unknown");
    }

    #[test]
    fn durations_and_countdowns() {
        let now = t("2030-01-01T08:00:00Z");
        let cases = [
            ("2030-01-01T10:14:59Z", "resumes in 2h 14m"),
            ("2030-01-01T08:05:00Z", "resumes in 5m"),
            ("2030-01-01T08:00:40Z", "resumes in 40s"),
            ("2030-01-03T11:00:00Z", "resumes in 2d 3h"),
            ("2030-01-01T08:00:00Z", "due now"),
            ("2030-01-01T07:59:30Z", "due now"),
            ("2030-01-01T07:55:00Z", "overdue by 5m"),
        ];
        for (when, want) in cases {
            assert_eq!(countdown(t(when), now), want, "{when}");
        }
    }

    #[test]
    fn short_sessions() {
        assert_eq!(short_session("6873abcd-ef"), "6873…");
        assert_eq!(short_session("687"), "687");
        assert_eq!(short_session(""), "?");
        assert_eq!(short_session("ééééé"), "éééé…");
    }

    #[test]
    fn pending_line_reads_like_the_issue() {
        let now = t("2030-01-01T08:00:00Z");
        let p = pending("i1", "6873abcd", "2030-01-01T10:14:00Z", Some("weekly"));
        assert_eq!(
            render_pending(&p, now),
            "claude · session 6873… · resumes in 2h 14m · weekly limit"
        );
        let mut q = pending("i2", "9c1f0000", "2030-01-01T08:05:00Z", None);
        q.attempt = 3;
        q.provider = "codex".into();
        assert_eq!(
            render_pending(&q, now),
            "codex · session 9c1f… · resumes in 5m · attempt 3"
        );
    }

    #[test]
    fn status_rendering() {
        let now = t("2030-01-01T08:00:00Z");
        let snap = StatusSnapshot {
            unwritable: Vec::new(),
            pid: 4242,
            version: "0.1.0".into(),
            started_at: t("2030-01-01T05:30:00Z"),
            now,
            watched: BTreeMap::from([
                ("claude".into(), 12),
                ("codex".into(), 3),
                ("gemini".into(), 0),
            ]),
            pending: vec![
                pending("i2", "9c1f0000", "2030-01-01T12:00:00Z", Some("session")),
                pending("i1", "6873abcd", "2030-01-01T10:14:00Z", Some("weekly")),
            ],
            paused: None,
            dry_run: false,
            recent: vec![
                IncidentEvent::Resumed {
                    incident_id: "i0".into(),
                    provider: "codex".into(),
                    session_id: "abcdef".into(),
                    detail: "via fifo".into(),
                    permission_mode: None,
                    at: t("2030-01-01T07:00:00Z"),
                },
                IncidentEvent::Failed {
                    incident_id: "i9".into(),
                    provider: "gemini".into(),
                    session_id: "zz".into(),
                    reason: "exit 1".into(),
                    at: t("2030-01-01T07:30:00Z"),
                },
            ],
        };
        let want = "\
zag-resumed 0.1.0 · pid 4242 · up 2h 30m (since 2030-01-01 05:30 UTC)
watching 15 files: claude 12 · codex 3
pending resumes (2):
  i1  claude · session 6873… · resumes in 2h 14m · weekly limit
  i2  claude · session 9c1f… · resumes in 4h 0m · 5-hour limit
recent:
  2030-01-01 07:00 UTC  resumed    i0  codex · session abcd… · via fifo
  2030-01-01 07:30 UTC  failed     i9  gemini · session zz · exit 1
";
        assert_eq!(render_status(&snap), want);
        let idle = StatusSnapshot {
            watched: BTreeMap::new(),
            pending: vec![],
            recent: vec![],
            ..snap
        };
        assert_eq!(
            render_status(&idle),
            "zag-resumed 0.1.0 · pid 4242 · up 2h 30m (since 2030-01-01 05:30 UTC)\n\
             watching no files yet\nno pending resumes\n"
        );
    }

    #[test]
    fn list_table_aligns_columns() {
        let mut a = pending("6f1e", "9c2d-long-session", "2030-01-01T08:00:00Z", None);
        a.attempt = 2;
        let mut b = pending("abcdef012345", "s", "2030-01-02T09:30:05Z", None);
        b.provider = "codex".into();
        b.store = "/h/.zag/scheduled_resumes.jsonl".into();
        let want = "\
INCIDENT  PROVIDER  WAKES AT (UTC)       ATTEMPT  SESSION            STORE
6f1e      claude    2030-01-01 08:00:00  2        9c2d-long-session  /h/.zag/projects/p/scheduled_resumes.jsonl
abcdef01  codex     2030-01-02 09:30:05  1        s                  /h/.zag/scheduled_resumes.jsonl
";
        assert_eq!(render_list(&[a, b]), want);
        assert_eq!(render_list(&[]), "No pending resumes.\n");
    }

    #[test]
    fn events_render_on_one_line() {
        let ev = IncidentEvent::Hit {
            incident_id: "8432fc05-aaaa".into(),
            provider: "claude".into(),
            session_id: "6873abcd".into(),
            scope: "weekly".into(),
            reset_at: Some(t("2030-01-01T10:00:00Z")),
            file: "/f".into(),
            at: t("2030-01-01T08:00:00Z"),
            needs_user: None,
        };
        assert_eq!(
            render_event(&ev),
            "2030-01-01 08:00 UTC  hit        8432fc05  claude · session 6873… · weekly limit · resets 2030-01-01 10:00 UTC"
        );
        let ev = IncidentEvent::Cancelled {
            incident_id: "i7".into(),
            at: t("2030-01-01T08:00:00Z"),
        };
        assert_eq!(render_event(&ev), "2030-01-01 08:00 UTC  cancelled  i7");
    }

    #[test]
    fn history_tells_each_incident() {
        use super::super::history::history_of_store;
        let text = [
            r#"{"action":"schedule","incident_id":"8432fc05-aaaa","session_id":"6873abcd","provider":"claude","when":"2030-01-01T10:00:30Z","message":"Continue","attempt":2,"log_path":"","scope":"weekly","reset_at":"2030-01-01T10:00:00Z","hit_at":"2030-01-01T08:00:00Z","source_file":"/t.jsonl","chain_id":"11112222-bbbb"}"#,
            r#"{"action":"schedule","incident_id":"99990000-cccc","session_id":"zz","provider":"codex","when":"2030-01-01T12:00:00Z","message":"Continue","attempt":1,"log_path":""}"#,
            r#"{"action":"schedule","incident_id":"77770000-dddd","session_id":"yy","provider":"gemini","when":"2030-01-01T09:00:00Z","message":"Continue","attempt":1,"log_path":""}"#,
            r#"{"action":"complete","incident_id":"8432fc05-aaaa","status":"resumed","at":"2030-01-01T10:01:12Z","detail":"via fifo"}"#,
            r#"{"action":"complete","incident_id":"77770000-dddd","status":"failed","error":"exit 1"}"#,
        ]
        .join("\n");
        let all = history_of_store(text.as_bytes(), std::path::Path::new("/s"));
        let want = "\
8432fc05  claude · session 6873… · weekly limit · resumed
  hit        2030-01-01 08:00 UTC · /t.jsonl
  scheduled  for 2030-01-01 10:00:30 UTC · attempt 2 · resets 2030-01-01 10:00 UTC · chain 11112222
  resumed    2030-01-01 10:01 UTC · 1m after the reset · via fifo
99990000  codex · session zz · pending
  scheduled  for 2030-01-01 12:00:00 UTC · attempt 1
  pending    resumes in 2h 0m
77770000  gemini · session yy · failed
  scheduled  for 2030-01-01 09:00:00 UTC · attempt 1
  failed     time not recorded · exit 1
";
        assert_eq!(render_history(&all, t("2030-01-01T10:00:00Z")), want);
        assert_eq!(
            render_history(&[], t("2030-01-01T10:00:00Z")),
            "No incidents in the stores.\n"
        );
    }

    #[test]
    fn history_says_a_limit_no_wait_lifts_needs_the_user() {
        use super::super::history::history_of_store;
        let text = [
            r#"{"action":"schedule","incident_id":"26cfe2ba-aaaa","session_id":"w-ck","provider":"codex","when":"2030-01-01T08:00:00Z","message":"Continue","attempt":1,"log_path":"","scope":"unknown","hit_at":"2030-01-01T08:00:00Z","source_file":"/w.jsonl","needs_user":"credits"}"#,
            r#"{"action":"complete","incident_id":"26cfe2ba-aaaa","status":"failed","error":"needs user: out of credits: add credits to the workspace","at":"2030-01-01T08:00:01Z"}"#,
        ]
        .join("\n");
        let all = history_of_store(text.as_bytes(), std::path::Path::new("/s"));
        let want = "\
26cfe2ba  codex · session w-ck · usage limit · needs_user
  hit        2030-01-01 08:00 UTC · /w.jsonl
  scheduled  never: no wait lifts this limit
  needs_user  2030-01-01 08:00 UTC · out of credits: add credits to the workspace
";
        assert_eq!(render_history(&all, t("2030-01-01T10:00:00Z")), want);
    }

    #[test]
    fn roots_say_which_exist() {
        let roots = [
            (std::path::PathBuf::from("/h/.zag"), true),
            (std::path::PathBuf::from("/h/.codex"), false),
        ];
        assert_eq!(
            render_roots(&roots),
            "watched roots:\n  /h/.zag  (exists)\n  /h/.codex  (missing)\n"
        );
    }
}
