//! Resolve a target: which session, which directory, which ids, which channel.
//!
//! An incident record carries whatever the detector saw; zag's own records
//! carry less (and `session_id` means the wrapper id for relay records but the
//! provider id for exec-loop records, ZAG_INTEROP §4). This module joins the
//! record with everything on disk (the zag session log, `sessions.json`, the
//! provider's native files) into one [`ResolvedTarget`]. It is called at
//! schedule time, so an incident that can never be delivered fails at once,
//! and again at fire time, because files move on.
//!
//! Invariants: every id that can reach an argv passed [`validate_session_id`];
//! a Claude relay's session id (never recorded by zag, §7) is found only among
//! transcripts whose entries' `cwd` is the session's cwd.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::detect::Provider;
use crate::paths::{claude_project_dir_name, project_of_log, Paths};
use crate::store::Schedule;

/// Longest id we accept (uuids are 36; Codex thread ids are uuids too).
const MAX_ID_LEN: usize = 128;

/// Refuse anything that is not a plain provider/wrapper id: only
/// `[A-Za-z0-9._-]`, 1..=128 chars, no leading `-` (would read as a flag) or
/// `.`, no `..` (would walk out of a directory when joined into a path).
pub fn validate_session_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty session id".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "session id is {} bytes long (at most {MAX_ID_LEN})",
            id.len()
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("session id {id:?} contains {c:?}"));
    }
    if id.starts_with('-') || id.starts_with('.') {
        return Err(format!("session id {id:?} starts with {:?}", &id[..1]));
    }
    if id.contains("..") {
        return Err(format!("session id {id:?} contains \"..\""));
    }
    Ok(())
}

/// How the message will travel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Channel {
    /// A live zag relay's FIFO (`B/fifos/<wrapper>`); respawn is the fallback
    /// when the relay turns out to be dead.
    Fifo { path: PathBuf },
    /// Re-invoke the provider CLI with its resume syntax.
    Respawn,
}

/// Everything delivery needs, resolved from the record and the disk.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedTarget {
    /// The incident being delivered (tags the resumed turn in the zag log).
    pub incident_id: String,
    pub provider: Provider,
    /// The channel intended now; liveness is re-checked at send time.
    pub channel: Channel,
    pub wrapper_session_id: Option<String>,
    /// The id to resume. `None` only for a Gemini session that was never
    /// saved (limit on the first turn: a fresh run) or when `respawn_error`
    /// says why respawn is impossible.
    pub provider_session_id: Option<String>,
    /// Where the CLI runs (Claude and Gemini find sessions by cwd).
    pub cwd: Option<PathBuf>,
    pub model: Option<String>,
    /// The prompt that hit the limit (Gemini needs it again).
    pub prompt: Option<String>,
    /// The resume message (`Continue`).
    pub message: String,
    /// The zag session log, for revalidation and for appending the resumed
    /// run's events. `None` for native sessions.
    pub zag_log: Option<PathBuf>,
    /// The provider's own transcript, when it has one we can find.
    pub native_file: Option<PathBuf>,
    /// zag's `[defaults].auto_approve` for the session's project.
    pub auto_approve: bool,
    /// Why a respawn cannot be done (only set when the channel is a FIFO,
    /// whose fallback would need it).
    pub respawn_error: Option<String>,
}

impl ResolvedTarget {
    /// Is this a session zag launched (it has a zag session log)?
    pub fn is_zag(&self) -> bool {
        self.zag_log.is_some()
    }
}

/// Why a target could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// The session's transcript is gone: delivery is skipped, not failed.
    Deleted(String),
    /// Not enough is known to deliver anything.
    Invalid(String),
}

impl Unresolved {
    pub fn reason(&self) -> &str {
        match self {
            Unresolved::Deleted(r) | Unresolved::Invalid(r) => r,
        }
    }
}

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

/// Lines of a JSONL file that parse as JSON objects; junk is skipped.
pub(crate) fn json_lines(bytes: &[u8]) -> impl Iterator<Item = Value> + '_ {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(Value::is_object)
}

/// [`json_lines`] for zag session logs, parsing only lines that can be one
/// of `types`: a long line (tool output, above all) is rejected by looking
/// for `"type":"<t>"` in its head, where zag's envelope puts it, without
/// being parsed. Short lines (our own appends sort `type` late) are searched
/// whole.
pub(crate) fn zag_lines_of<'a>(
    bytes: &'a [u8],
    types: &'a [&'a str],
) -> impl Iterator<Item = Value> + 'a {
    const HEAD: usize = 4096;
    const SHORT: usize = 64 * 1024;
    let needles: Vec<memchr::memmem::Finder<'static>> = types
        .iter()
        .map(|t| memchr::memmem::Finder::new(format!("\"type\":\"{t}\"").as_bytes()).into_owned())
        .collect();
    bytes
        .split(|&b| b == b'\n')
        .filter(move |l| {
            let hay = if l.len() <= SHORT { l } else { &l[..HEAD] };
            needles.iter().any(|n| n.find(hay).is_some())
        })
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(Value::is_object)
}

/// An RFC 3339 timestamp at `key`.
pub(crate) fn line_ts(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    crate::clock::parse_utc(v.get(key)?.as_str()?)
}

/// `sessions.json` facts for one wrapper id (ZAG_INTEROP §1.3).
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
/// never merged with `B/zag.toml`, ZAG_INTEROP §1.2).
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
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| zag_facts(&b, hit_at))
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

    let fifo = wrapper
        .as_ref()
        .map(|w| paths.fifo(w))
        .filter(|p| provider == Provider::Claude && is_fifo(p));

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
        respawn_error: None,
    };

    let respawn = match provider {
        Provider::Claude => resolve_claude(&mut t, paths, hit_at, wrapper.as_deref()),
        Provider::Codex => resolve_codex(&mut t, paths),
        Provider::Gemini => resolve_gemini(&mut t, paths),
        Provider::Copilot => resolve_copilot(&mut t, paths),
    };
    match respawn {
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

fn require_cwd(t: &ResolvedTarget) -> Result<&Path, Unresolved> {
    t.cwd.as_deref().ok_or_else(|| {
        Unresolved::Invalid(format!(
            "the {} session's working directory is unknown (no cwd in the incident, zag's sessions.json or session log)",
            t.provider
        ))
    })
}

/// Claude: the transcript `<claude>/projects/<cwd-dir>/<id>.jsonl` must
/// exist. A wrapper-id placeholder or a relay (no id at all) is looked up by
/// cwd and time.
fn resolve_claude(
    t: &mut ResolvedTarget,
    paths: &Paths,
    hit_at: Option<DateTime<Utc>>,
    wrapper: Option<&str>,
) -> Result<(), Unresolved> {
    let projects = paths.claude_dir.join("projects");
    // A cwd-less record with a known id: find the transcript anywhere and
    // take its cwd.
    if t.cwd.is_none() {
        if let Some(id) = &t.provider_session_id {
            if let Some((file, cwd)) = find_claude_transcript_anywhere(&projects, id) {
                t.cwd = cwd.map(PathBuf::from);
                t.native_file = Some(file);
            }
        }
    }
    let cwd = require_cwd(t)?.to_path_buf();
    let cwd_str = cwd.to_string_lossy().into_owned();
    let dir = projects.join(claude_project_dir_name(&cwd_str));
    if let Some(id) = t.provider_session_id.clone() {
        let file = dir.join(format!("{id}.jsonl"));
        if file.is_file() {
            t.native_file = Some(file);
            return Ok(());
        }
        if wrapper != Some(id.as_str()) {
            return Err(Unresolved::Deleted(format!(
                "Claude session {id} has no transcript at {} (deleted?)",
                file.display()
            )));
        }
        // The id was zag's wrapper-id placeholder: search instead.
    }
    match find_claude_session(&dir, &cwd_str, hit_at) {
        Some((id, file)) => {
            t.provider_session_id = Some(id);
            t.native_file = Some(file);
            Ok(())
        }
        None => Err(Unresolved::Invalid(format!(
            "no Claude transcript for cwd {cwd_str} around {} in {} (zag relays never record Claude's session id)",
            hit_at.map_or_else(|| "the hit".to_string(), |h| h.to_rfc3339()),
            dir.display()
        ))),
    }
}

fn find_claude_transcript_anywhere(projects: &Path, id: &str) -> Option<(PathBuf, Option<String>)> {
    let name = format!("{id}.jsonl");
    let file = std::fs::read_dir(projects)
        .ok()?
        .flatten()
        .map(|e| e.path().join(&name))
        .find(|p| p.is_file())?;
    let bytes = std::fs::read(&file).ok()?;
    let cwd =
        json_lines(&bytes).find_map(|v| v.get("cwd").and_then(Value::as_str).map(str::to_string));
    Some((file, cwd))
}

/// One Claude transcript, summarised for the relay lookup.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptSummary {
    pub session_id: Option<String>,
    pub cwd_matches: bool,
    pub first_ts: Option<DateTime<Utc>>,
    pub last_ts: Option<DateTime<Utc>>,
    /// Timestamps of the synthetic rate-limit entries.
    pub limit_ts: Vec<DateTime<Utc>>,
}

/// Summarise a Claude transcript's bytes (pure).
pub fn summarize_transcript(bytes: &[u8], cwd: &str) -> TranscriptSummary {
    let mut s = TranscriptSummary {
        session_id: None,
        cwd_matches: false,
        first_ts: None,
        last_ts: None,
        limit_ts: Vec::new(),
    };
    for v in json_lines(bytes) {
        if let Some(id) = v.get("sessionId").and_then(Value::as_str) {
            s.session_id.get_or_insert_with(|| id.to_string());
        }
        if v.get("cwd").and_then(Value::as_str) == Some(cwd) {
            s.cwd_matches = true;
        }
        if let Some(ts) = line_ts(&v, "timestamp") {
            s.first_ts = Some(s.first_ts.map_or(ts, |f| f.min(ts)));
            s.last_ts = Some(s.last_ts.map_or(ts, |l| l.max(ts)));
            let limit = v.get("error").and_then(Value::as_str) == Some("rate_limit")
                || v.get("isApiErrorMessage").and_then(Value::as_bool) == Some(true);
            if limit {
                s.limit_ts.push(ts);
            }
        }
    }
    s
}

/// Pick the relay's transcript among summaries (pure): a transcript whose
/// entries carry the cwd; first the one with a limit entry closest to the
/// hit (within ten minutes); else the one active latest before the hit
/// (a minute of slack), started before it; without a hit time, the latest.
pub fn pick_transcript(
    candidates: &[(PathBuf, TranscriptSummary)],
    hit_at: Option<DateTime<Utc>>,
) -> Option<usize> {
    let slack = chrono::Duration::seconds(60);
    let ok: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].1.cwd_matches)
        .collect();
    let Some(hit) = hit_at else {
        return ok.into_iter().max_by_key(|&i| candidates[i].1.last_ts);
    };
    let near = |i: usize| {
        candidates[i]
            .1
            .limit_ts
            .iter()
            .map(|t| (*t - hit).num_milliseconds().abs())
            .min()
    };
    if let Some(i) = ok
        .iter()
        .copied()
        .filter(|&i| near(i).is_some_and(|d| d <= 600_000))
        .min_by_key(|&i| near(i))
    {
        return Some(i);
    }
    ok.into_iter()
        .filter(|&i| {
            let s = &candidates[i].1;
            s.first_ts.is_some_and(|f| f <= hit + slack)
        })
        .max_by_key(|&i| {
            // Newest activity not after the hit (plus slack).
            let s = &candidates[i].1;
            s.last_ts.filter(|l| *l <= hit + slack).or(s.first_ts)
        })
}

fn find_claude_session(
    dir: &Path,
    cwd: &str,
    hit_at: Option<DateTime<Utc>>,
) -> Option<(String, PathBuf)> {
    let mut cands = Vec::new();
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("jsonl") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        cands.push((p, summarize_transcript(&bytes, cwd)));
    }
    let i = pick_transcript(&cands, hit_at)?;
    let (file, s) = cands.swap_remove(i);
    let id = s.session_id.or_else(|| {
        file.file_stem()
            .and_then(|x| x.to_str())
            .map(str::to_string)
    })?;
    validate_session_id(&id).ok()?;
    Some((id, file))
}

/// Codex: the rollout file `sessions/YYYY/MM/DD/rollout-*-<id>.jsonl` must
/// exist; its `session_meta` gives the cwd when nothing else did.
fn resolve_codex(t: &mut ResolvedTarget, paths: &Paths) -> Result<(), Unresolved> {
    let id = t
        .provider_session_id
        .clone()
        .ok_or_else(|| Unresolved::Invalid("the Codex thread id is unknown".into()))?;
    let root = paths.codex_dir.join("sessions");
    let Some(file) = find_codex_rollout(&root, &id) else {
        return Err(Unresolved::Deleted(format!(
            "Codex thread {id} has no rollout file under {} (deleted?)",
            root.display()
        )));
    };
    if t.cwd.is_none() {
        if let Ok(bytes) = std::fs::read(&file) {
            t.cwd = json_lines(&bytes)
                .find(|v| v.get("type").and_then(Value::as_str) == Some("session_meta"))
                .and_then(|v| v.pointer("/payload/cwd")?.as_str().map(PathBuf::from));
        }
    }
    t.native_file = Some(file);
    require_cwd(t)?;
    Ok(())
}

fn find_codex_rollout(root: &Path, id: &str) -> Option<PathBuf> {
    let suffix = format!("-{id}.jsonl");
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() && depth < 4 {
                stack.push((p, depth + 1));
            } else if ft.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(&suffix))
            {
                return Some(p);
            }
        }
    }
    None
}

/// Gemini: the prompt is needed again (Gemini drops it); an id with no saved
/// chat (first-turn limit) means a fresh run with that prompt.
fn resolve_gemini(t: &mut ResolvedTarget, paths: &Paths) -> Result<(), Unresolved> {
    if !t.prompt.as_deref().is_some_and(|p| !p.trim().is_empty()) {
        return Err(Unresolved::Invalid(
            "the prompt that hit the Gemini limit is unknown, and Gemini drops it from the session: a bare resume message would skip it".into(),
        ));
    }
    require_cwd(t)?;
    if let Some(id) = &t.provider_session_id {
        match find_gemini_chat(&paths.gemini_dir.join("tmp"), id) {
            Some(f) => t.native_file = Some(f),
            None => t.provider_session_id = None,
        }
    }
    Ok(())
}

fn find_gemini_chat(tmp: &Path, id: &str) -> Option<PathBuf> {
    for proj in std::fs::read_dir(tmp).ok()?.flatten() {
        let Ok(rd) = std::fs::read_dir(proj.path().join("chats")) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if let Ok(bytes) = std::fs::read(&p) {
                if memchr::memmem::find(&bytes, id.as_bytes()).is_some() {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Copilot: `session-state/<id>/` must exist.
fn resolve_copilot(t: &mut ResolvedTarget, paths: &Paths) -> Result<(), Unresolved> {
    let id = t
        .provider_session_id
        .clone()
        .ok_or_else(|| Unresolved::Invalid("the Copilot session id is unknown".into()))?;
    let dir = paths.copilot_dir.join("session-state").join(&id);
    if !dir.is_dir() {
        return Err(Unresolved::Deleted(format!(
            "Copilot session {id} has no state at {} (deleted?)",
            dir.display()
        )));
    }
    let events = dir.join("events.jsonl");
    if t.cwd.is_none() {
        if let Ok(bytes) = std::fs::read(&events) {
            t.cwd = json_lines(&bytes).find_map(|v| find_key(&v, "cwd", 3).map(PathBuf::from));
        }
    }
    t.native_file = Some(events);
    require_cwd(t)?;
    Ok(())
}

/// A string at `key` anywhere in the first `depth` levels of a JSON value.
fn find_key(v: &Value, key: &str, depth: u32) -> Option<String> {
    let obj = v.as_object()?;
    if let Some(s) = obj.get(key).and_then(Value::as_str) {
        return Some(s.to_string());
    }
    if depth == 0 {
        return None;
    }
    obj.values().find_map(|c| find_key(c, key, depth - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_are_validated() {
        for ok in ["0f8fad5b-d9cb-469f-a165-70867728950e", "abc_DEF.1", "a"] {
            assert_eq!(validate_session_id(ok), Ok(()), "{ok}");
        }
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

    fn summary(cwd: bool, first: &str, last: &str, limit: &[&str]) -> TranscriptSummary {
        TranscriptSummary {
            session_id: None,
            cwd_matches: cwd,
            first_ts: Some(ts(first)),
            last_ts: Some(ts(last)),
            limit_ts: limit.iter().map(|s| ts(s)).collect(),
        }
    }

    #[test]
    fn transcript_pick_prefers_the_limit_entry_then_recency_before_the_hit() {
        let hit = ts("2030-01-01T10:00:00Z");
        let c = vec![
            // Active right before the hit but no limit entry.
            (
                PathBuf::from("a"),
                summary(true, "2030-01-01T09:00:00Z", "2030-01-01T09:59:00Z", &[]),
            ),
            // Holds the limit entry.
            (
                PathBuf::from("b"),
                summary(
                    true,
                    "2030-01-01T08:00:00Z",
                    "2030-01-01T10:00:01Z",
                    &["2030-01-01T10:00:00Z"],
                ),
            ),
            // Other cwd, even closer.
            (
                PathBuf::from("c"),
                summary(
                    false,
                    "2030-01-01T08:00:00Z",
                    "2030-01-01T10:00:00Z",
                    &["2030-01-01T10:00:00Z"],
                ),
            ),
        ];
        assert_eq!(pick_transcript(&c, Some(hit)), Some(1));
        let c2 = vec![
            (
                PathBuf::from("old"),
                summary(true, "2030-01-01T01:00:00Z", "2030-01-01T02:00:00Z", &[]),
            ),
            (
                PathBuf::from("new"),
                summary(true, "2030-01-01T09:00:00Z", "2030-01-01T09:59:00Z", &[]),
            ),
            // Started after the hit: a later session, not ours.
            (
                PathBuf::from("after"),
                summary(true, "2030-01-01T11:00:00Z", "2030-01-01T12:00:00Z", &[]),
            ),
        ];
        assert_eq!(pick_transcript(&c2, Some(hit)), Some(1));
        assert_eq!(pick_transcript(&c2, None), Some(2));
        assert_eq!(pick_transcript(&c2[..0], Some(hit)), None);
        let _ = Utc.timestamp_opt(0, 0);
    }

    #[test]
    fn transcript_summary_reads_ids_cwd_and_limit_entries() {
        let t = concat!(
            r#"{"type":"user","sessionId":"s1","cwd":"/p","timestamp":"2030-01-01T10:00:00Z"}"#,
            "\n",
            r#"{"type":"assistant","error":"rate_limit","isApiErrorMessage":true,"sessionId":"s1","cwd":"/p","timestamp":"2030-01-01T10:00:05Z"}"#,
            "\n"
        );
        let s = summarize_transcript(t.as_bytes(), "/p");
        assert_eq!(s.session_id.as_deref(), Some("s1"));
        assert!(s.cwd_matches);
        assert_eq!(s.limit_ts, [ts("2030-01-01T10:00:05Z")]);
        assert!(!summarize_transcript(t.as_bytes(), "/q").cwd_matches);
    }
}
