//! Resolve a target: which session, which directory, which ids, which channel.
//!
//! An incident record carries whatever the detector saw; zag's own records
//! carry less (and `session_id` means the wrapper id for relay records but the
//! provider id for exec-loop records, zag-contract §4). This module joins the
//! record with everything on disk (the zag session log, `sessions.json`, the
//! provider's native files) into one [`ResolvedTarget`]; finding and checking
//! the provider's own session is that provider's
//! [`ProviderCli::resolve_session`](crate::provider::ProviderCli::resolve_session).
//! It is called at
//! schedule time, so an incident that can never be delivered fails at once,
//! and again at fire time, because files move on.
//!
//! Invariant: every id that can reach an argv passed [`validate_session_id`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::detect::Provider;
use crate::paths::{project_of_log, Paths};
pub use crate::provider::target::{
    validate_session_id, Channel, InvalidId, ResolvedTarget, Unresolved,
};
use crate::store::Schedule;

/// What a zag session log says about its session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZagFacts {
    pub wrapper_session_id: Option<String>,
    pub provider_session_id: Option<String>,
    pub cwd: Option<String>,
    pub model: Option<String>,
    /// The last `user_message` at or before the hit.
    pub last_prompt: Option<String>,
}

/// Parse a zag session log (pure). `hit_at` bounds the prompt search.
pub fn zag_facts(bytes: &[u8], hit_at: Option<DateTime<Utc>>) -> ZagFacts {
    // The same reading the ingest does live, so both agree on a session
    // (and a wrapper-id placeholder is never taken for a provider id).
    let mut t = crate::session::SessionTracker::for_zag_log_until(hit_at);
    for line in bytes.split(|&b| b == b'\n') {
        t.observe(line);
    }
    let id = t.identity;
    ZagFacts {
        wrapper_session_id: id.wrapper_session_id,
        provider_session_id: id.provider_session_id,
        cwd: id.cwd,
        model: id.model,
        last_prompt: id.last_prompt,
    }
}

/// How much of a zag log's start [`read_zag_facts`] reads: its
/// `session_started` and the identity lines near it.
const FACTS_HEAD: u64 = 256 * 1024;
/// The first look back from a zag log's end for the prompt; doubled while
/// the prompt is not found, up to [`FACTS_BACK_MAX`].
const FACTS_BACK: u64 = 256 * 1024;
/// The furthest [`read_zag_facts`] looks back from the end: a prompt older
/// than 64 MiB of session log is not worth reading a huge log on the loop's
/// disk worker for (the resume then says it is unknown).
const FACTS_BACK_MAX: u64 = 64 * 1024 * 1024;

/// A zag session log's facts read back from disk, bounded: the head (the
/// `session_started` line: cwd, model, ids) and, from the end backwards,
/// as far as needed to find the last `user_message` at or before `hit_at`.
/// A log that fits in both windows is read whole, as [`zag_facts`] does;
/// a long-running session's log (hundreds of MB of tool output) costs a
/// few hundred KB in the common case.
pub fn read_zag_facts<R: std::io::Read + std::io::Seek>(
    r: &mut R,
    hit_at: Option<DateTime<Utc>>,
) -> std::io::Result<ZagFacts> {
    use std::io::{Read, SeekFrom};
    let len = r.seek(SeekFrom::End(0))?;
    let read_range = |r: &mut R, from: u64, n: u64| -> std::io::Result<Vec<u8>> {
        r.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        (&mut *r).take(n).read_to_end(&mut buf)?;
        Ok(buf)
    };
    if len <= FACTS_HEAD + FACTS_BACK {
        return Ok(zag_facts(&read_range(r, 0, len)?, hit_at));
    }
    let mut head = read_range(r, 0, FACTS_HEAD)?;
    // Only whole lines: a line cut at the window's edge is not a fact.
    head.truncate(head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
    let mut back = FACTS_BACK;
    loop {
        let from = len.saturating_sub(back).max(FACTS_HEAD);
        let mut tail = read_range(r, from, len - from)?;
        if from > FACTS_HEAD {
            let cut = tail
                .iter()
                .position(|&b| b == b'\n')
                .map_or(tail.len(), |i| i + 1);
            tail.drain(..cut);
        }
        let found = zag_facts(&tail, hit_at).last_prompt.is_some();
        if found || from == FACTS_HEAD || back >= FACTS_BACK_MAX {
            // One reading in file order, the middle left out: what the
            // tail says later wins as it would in a whole read.
            head.extend_from_slice(&tail);
            return Ok(zag_facts(&head, hit_at));
        }
        back = back.saturating_mul(2);
    }
}

/// [`json_lines`](crate::provider::target::json_lines) for zag session
/// logs, parsing only lines that can be one of `types`: a line is first
/// checked for `"type":"<t>"` (compact or spaced) by the live tracker's rule
/// (`shared::has_field`: a long line, tool output above all, only in its
/// head, where zag's envelope puts it), so both read the same lines; the
/// parsed `type` decides.
pub(crate) fn zag_lines_of<'a>(
    bytes: &'a [u8],
    types: &'a [&'a str],
) -> impl Iterator<Item = Value> + 'a {
    zag_raw_lines_of(bytes, types).map(|(_, v)| v)
}

/// [`zag_lines_of`] with each line's bytes beside its value.
pub(crate) fn zag_raw_lines_of<'a>(
    bytes: &'a [u8],
    types: &'a [&'a str],
) -> impl Iterator<Item = (&'a [u8], Value)> + 'a {
    bytes
        .split(|&b| b == b'\n')
        .filter(move |l| types.iter().any(|t| crate::shared::has_field(l, "type", t)))
        .filter_map(|l| Some((l, serde_json::from_slice::<Value>(l).ok()?)))
        .filter(move |(_, v)| {
            v.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| types.contains(&t))
        })
}

/// `sessions.json` facts for one wrapper id (zag-contract §1.3).
#[derive(Clone, Debug, Default, PartialEq)]
struct SessionEntry {
    provider_session_id: Option<String>,
    worktree_path: Option<String>,
    model: Option<String>,
}

fn session_entry(project: &Path, wrapper: &str) -> Option<SessionEntry> {
    let bytes = std::fs::read(project.join("sessions.json")).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let e = v
        .get("sessions")?
        .as_array()?
        .iter()
        .find(|e| e.get("session_id").and_then(Value::as_str) == Some(wrapper))?;
    let s = |k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(SessionEntry {
        provider_session_id: s("provider_session_id"),
        worktree_path: s("worktree_path"),
        model: s("model"),
    })
}

/// zag's `[defaults].auto_approve` in a project's `zag.toml` (per project,
/// never merged with `B/zag.toml`, zag-contract §1.2).
fn auto_approve(project: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(project.join("zag.toml")) else {
        return false;
    };
    let Ok(v) = toml::from_str::<toml::Value>(&text) else {
        return false;
    };
    v.get("defaults")
        .and_then(|d| d.get("auto_approve"))
        .and_then(toml::Value::as_bool)
        .unwrap_or(false)
}

/// The relay's (or any zag session's) log for a wrapper id, when the record
/// has none: `B/logs/sessions/<w>.jsonl`, then `B/projects/*/logs/sessions/`.
pub fn find_zag_log(paths: &Paths, wrapper: &str) -> Option<PathBuf> {
    let global = paths
        .zag_home
        .join("logs/sessions")
        .join(format!("{wrapper}.jsonl"));
    if global.is_file() {
        return Some(global);
    }
    let rd = std::fs::read_dir(paths.projects()).ok()?;
    rd.flatten()
        .map(|e| {
            e.path()
                .join("logs/sessions")
                .join(format!("{wrapper}.jsonl"))
        })
        .find(|p| p.is_file())
}

/// Resolve an incident into a target (see the module docs). Sync file I/O.
pub fn resolve(incident: &Schedule, paths: &Paths) -> Result<ResolvedTarget, Unresolved> {
    let invalid = |s: String| Unresolved::Invalid(s);
    let provider = Provider::parse(&incident.provider)
        .ok_or_else(|| invalid(format!("unknown provider {:?}", incident.provider)))?;
    let message = incident.message.clone();
    if message.trim().is_empty() {
        return Err(invalid("empty resume message".into()));
    }
    let hit_at = incident.hit_at;

    // The zag log: the record's, else found by the wrapper id.
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    let mut zag_log = (!incident.log_path.is_empty())
        .then(|| PathBuf::from(&incident.log_path))
        .filter(|p| project_of_log(p).is_some());
    let stem_is_session = zag_log.as_ref().is_some_and(|p| {
        p.file_stem().and_then(|s| s.to_str()) == Some(incident.session_id.as_str())
    });
    let mut wrapper = nonempty(&incident.wrapper_session_id);
    if wrapper.is_none() && stem_is_session {
        // zag's relay writes the wrapper id into `session_id`.
        wrapper = Some(incident.session_id.clone());
    }
    if let Some(w) = &wrapper {
        validate_session_id(w).map_err(|e| invalid(format!("wrapper id refused: {e}")))?;
        if zag_log.is_none() {
            zag_log = find_zag_log(paths, w);
        }
    }
    let facts = zag_log
        .as_ref()
        .and_then(|p| std::fs::File::open(p).ok())
        .and_then(|mut f| read_zag_facts(&mut f, hit_at).ok())
        .unwrap_or_default();
    if wrapper.is_none() && zag_log.is_some() {
        wrapper = facts.wrapper_session_id.clone();
        if let Some(w) = &wrapper {
            validate_session_id(w).map_err(|e| invalid(format!("wrapper id refused: {e}")))?;
        }
    }
    let project = zag_log.as_deref().and_then(project_of_log);
    let entry = match (&project, &wrapper) {
        (Some(p), Some(w)) => session_entry(p, w),
        _ => None,
    }
    .unwrap_or_default();

    // The provider id: ours, else an exec-loop record's session_id, else what
    // zag wrote down (a wrapper-id placeholder is no provider id, §7).
    let mut provider_id = nonempty(&incident.provider_session_id);
    if provider_id.is_none() && wrapper.as_deref() != Some(incident.session_id.as_str()) {
        provider_id = Some(incident.session_id.clone()).filter(|s| !s.is_empty());
    }
    if provider_id.is_none() {
        provider_id = entry
            .provider_session_id
            .clone()
            .or_else(|| facts.provider_session_id.clone());
    }
    if let Some(p) = &provider_id {
        validate_session_id(p).map_err(|e| invalid(format!("provider session id refused: {e}")))?;
    }

    let cwd: Option<PathBuf> = nonempty(&incident.cwd)
        .or_else(|| entry.worktree_path.clone())
        .or_else(|| facts.cwd.clone())
        .or_else(|| nonempty(&incident.root))
        .map(PathBuf::from);
    let model = nonempty(&incident.model)
        .or_else(|| entry.model.clone())
        .or_else(|| facts.model.clone());
    let prompt = nonempty(&incident.prompt).or_else(|| facts.last_prompt.clone());
    let auto_approve = project.as_deref().is_some_and(auto_approve);

    let cli = crate::provider::of(provider);
    let fifo = wrapper
        .as_ref()
        .map(|w| paths.fifo(w))
        .filter(|p| cli.has_relay_fifo() && is_fifo(p));

    let mut t = ResolvedTarget {
        incident_id: incident.incident_id.clone(),
        provider,
        channel: fifo
            .clone()
            .map_or(Channel::Respawn, |path| Channel::Fifo { path }),
        wrapper_session_id: wrapper.clone(),
        provider_session_id: provider_id.clone(),
        cwd,
        model,
        prompt,
        message,
        zag_log,
        native_file: None,
        auto_approve,
        permission_mode: nonempty(&incident.permission_mode),
        respawn_error: None,
    };

    match cli.resolve_session(&mut t, paths, hit_at) {
        Ok(()) => Ok(t),
        // A live relay needs no respawn; keep the reason for the fallback.
        Err(Unresolved::Invalid(why)) if fifo.is_some() => {
            t.provider_session_id = None;
            t.respawn_error = Some(why);
            Ok(t)
        }
        Err(e) => Err(e),
    }
}

fn is_fifo(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        for ok in ["0f8fad5b-d9cb-469f-a165-70867728950e", "abc_DEF.1", "a"] {
            assert_eq!(validate_session_id(ok), Ok(()), "{ok}");
        }
        // The texts are the ones incident reasons have always carried.
        let shown = |id: &str| validate_session_id(id).unwrap_err().to_string();
        assert_eq!(shown(""), "empty session id");
        assert_eq!(
            shown(&"a".repeat(129)),
            "session id is 129 bytes long (at most 128)"
        );
        assert_eq!(shown("a/b"), r#"session id "a/b" contains '/'"#);
        assert_eq!(shown("-p"), r#"session id "-p" starts with "-""#);
        assert_eq!(shown("a..b"), r#"session id "a..b" contains "..""#);
        let long = "a".repeat(129);
        for bad in [
            "",
            "../x",
            "--help",
            "-p",
            "a/b",
            ".hidden",
            "a..b",
            "a b",
            "a\nb",
            "a;b",
            "$(x)",
            long.as_str(),
            "é",
        ] {
            assert!(validate_session_id(bad).is_err(), "{bad:?}");
        }
    }

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A reader that counts what was read.
    struct Counted<R> {
        inner: R,
        read: u64,
    }

    impl<R: std::io::Read> std::io::Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    impl<R: std::io::Seek> std::io::Seek for Counted<R> {
        fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn a_long_logs_facts_are_read_from_its_head_and_as_far_back_as_needed() {
        let start = r#"{"seq":1,"ts":"2030-01-01T00:00:00+00:00","wrapper_session_id":"w","provider_session_id":null,"type":"session_started","cwd":"/p","model":"opus"}"#;
        let prompt = |c: &str, m: u32| {
            format!(
                r#"{{"seq":2,"ts":"2030-01-01T00:{m:02}:00+00:00","type":"user_message","content":"{c}"}}"#
            )
        };
        let filler = format!(
            r#"{{"seq":3,"ts":"2030-01-01T00:02:00+00:00","type":"tool_result","content":"{}"}}"#,
            "x".repeat(1000)
        );
        let mut log = format!("{start}\n{}\n", prompt("early", 1));
        for _ in 0..20_000 {
            log += &filler;
            log.push('\n');
        }
        // The last prompt before the hit, ~1.5 MB before the end.
        log += &prompt("fix it", 3);
        log.push('\n');
        for _ in 0..1_500 {
            log += &filler;
            log.push('\n');
        }
        log += &prompt("after the hit", 9);
        log.push('\n');
        let hit = Some(ts("2030-01-01T00:05:00Z"));
        let mut r = Counted {
            inner: std::io::Cursor::new(log.as_bytes()),
            read: 0,
        };
        let f = read_zag_facts(&mut r, hit).unwrap();
        assert_eq!(f.last_prompt.as_deref(), Some("fix it"));
        assert_eq!(f.cwd.as_deref(), Some("/p"));
        assert_eq!(f.model.as_deref(), Some("opus"));
        assert_eq!(f, zag_facts(log.as_bytes(), hit), "as a whole read");
        assert!(
            r.read < log.len() as u64 / 3,
            "read {} of {} bytes",
            r.read,
            log.len()
        );
        // A prompt only in the head: found by reading back to it.
        let mut only_early = format!("{start}\n{}\n", prompt("early", 1));
        for _ in 0..2_000 {
            only_early += &filler;
            only_early.push('\n');
        }
        let f = read_zag_facts(&mut std::io::Cursor::new(only_early.as_bytes()), hit).unwrap();
        assert_eq!(f.last_prompt.as_deref(), Some("early"));
        // A short log: read whole.
        let short = format!("{start}\n{}\n", prompt("fix it", 3));
        assert_eq!(
            read_zag_facts(&mut std::io::Cursor::new(short.as_bytes()), hit).unwrap(),
            zag_facts(short.as_bytes(), hit)
        );
    }

    #[test]
    fn zag_facts_take_the_prompt_before_the_hit() {
        let log = concat!(
            r#"{"seq":1,"ts":"2030-01-01T00:00:00+00:00","wrapper_session_id":"w","provider_session_id":null,"type":"session_started","cwd":"/p","model":"opus"}"#,
            "\n",
            r#"{"seq":2,"ts":"2030-01-01T00:01:00+00:00","type":"user_message","content":"fix it"}"#,
            "\n",
            r#"{"seq":3,"ts":"2030-01-01T00:09:00+00:00","type":"user_message","content":"later"}"#,
            "\n"
        );
        let f = zag_facts(log.as_bytes(), Some(ts("2030-01-01T00:05:00Z")));
        assert_eq!(f.cwd.as_deref(), Some("/p"));
        assert_eq!(f.model.as_deref(), Some("opus"));
        assert_eq!(f.last_prompt.as_deref(), Some("fix it"));
        assert_eq!(f.wrapper_session_id.as_deref(), Some("w"));
        assert_eq!(f.provider_session_id, None);
        // An exec log's wrapper-id placeholder is no provider id (§7).
        let placeholder = r#"{"seq":1,"ts":"2030-01-01T00:00:00+00:00","wrapper_session_id":"w","provider_session_id":"w","type":"session_started","cwd":"/p"}"#;
        assert_eq!(
            zag_facts(placeholder.as_bytes(), None).provider_session_id,
            None
        );
    }
}
