//! Claude Code: transcripts under `~/.claude/projects/<cwd-dir>/<id>.jsonl`.
//!
//! A transcript is named by its session id and sits in a folder named after
//! the session's cwd; zag relays never record Claude's id (zag-contract §7),
//! so a relay's session is found among the transcripts of its cwd by time
//! ([`summarize_transcript`], [`pick_transcript`]). Only Claude relays take
//! messages through a FIFO. Resumes run `claude --resume <id> -p` in the
//! permission mode the user last chose (`permissionMode` on user entries).

pub mod own_continue;
pub mod registry;
pub mod screen;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use super::{DialogChoice, DialogKind, LimitMenu, MovedOnRule, ProviderCli};
use crate::paths::Paths;
use crate::provider::argv::{
    check_dirs, check_message, check_model, required_id, usable_model, ArgvError, ArgvSpec,
};
use crate::provider::events::{assistant, status, Event};
use crate::provider::target::after;
use crate::provider::target::{
    json_lines, line_ts, require_cwd, validate_session_id, ResolvedTarget, Unresolved,
};
use crate::shared::{has_field, head_has, parse, set, set_prompt, stem, str_at, SessionIdentity};
use crate::shared::{Provider, SourceKind};

/// How long after the reset Claude Code's own continue gets before the
/// daemon takes over. Captured with the real 2.1.332 TUI: it continued at
/// reset + 46, 73, 88, 99 and 108 s, and it checks every 30 s, so a
/// continue due by reset + 108 s lands by reset + 138 s at worst; 180 s
/// leaves 42 s of margin for a slow first request.
pub const OWN_CONTINUE_GRACE_SECS: i64 = 180;

/// Claude Code.
#[derive(Clone, Copy, Debug)]
pub struct Claude;

impl ProviderCli for Claude {
    fn provider(&self) -> Provider {
        Provider::Claude
    }

    /// Its screens ([`super::screen_view::read`], which reads Claude's and
    /// Codex's TUIs together).
    fn read_screen(&self, screen: &str) -> super::Shows {
        super::screen_view::read(screen).shows()
    }

    fn display_name(&self) -> &'static str {
        "Claude Code"
    }

    fn source(&self) -> SourceKind {
        SourceKind::ClaudeNative
    }

    fn session_files(&self) -> &'static str {
        "projects/*/*.jsonl"
    }

    fn session_id_from_path(&self, path: &Path) -> Option<String> {
        stem(path)
    }

    fn observe(&self, line: &[u8], id: &mut SessionIdentity) {
        let wants_cwd = id.cwd.is_none() && head_has(line, r#""cwd""#);
        let prompt = has_field(line, "type", "user") && !head_has(line, "tool_result");
        // 2.1.332 also notes a mode switch in an entry of its own.
        let mode = has_field(line, "type", "permission-mode");
        if wants_cwd || prompt || mode {
            observe_line(line, id);
        }
    }

    fn resolve_session(
        &self,
        t: &mut ResolvedTarget,
        paths: &Paths,
        hit_at: Option<DateTime<Utc>>,
    ) -> Result<(), Unresolved> {
        resolve(t, paths, hit_at)
    }

    fn has_relay_fifo(&self) -> bool {
        true
    }

    fn resume_args(&self, spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
        args(spec)
    }

    fn moved_on_rule(&self) -> Option<MovedOnRule> {
        Some(moved_on)
    }

    /// Claude's session registry names the process (pid-reuse guarded by
    /// `procStart`); its pane is found by ancestry on any tmux server.
    fn live_holder(
        &self,
        t: &ResolvedTarget,
        cx: &crate::provider::LiveContext,
    ) -> Result<crate::provider::Holder, crate::live::owner::LiveError> {
        use crate::provider::claude::registry::{claude_holder, ClaudeHolder};
        use crate::provider::Holder;
        let Some(id) = t.provider_session_id.as_deref() else {
            return Ok(Holder::Nobody);
        };
        let what = |e: &crate::provider::claude::registry::RegistryEntry| {
            format!(
                "claude {}{} (pid {})",
                e.version.as_deref().unwrap_or("?"),
                match e.entrypoint {
                    Some(crate::provider::claude::registry::Entrypoint::Tui) => " TUI",
                    _ => "",
                },
                e.pid
            )
        };
        match claude_holder(&cx.home, id, &cx.procfs, &cx.tmux, &cx.socket_dirs)? {
            // A headless `claude -p` (started from inside another session,
            // say) holds the session but has no input to type into: its
            // ancestry leads to its parent's pane, which is not its own.
            ClaudeHolder::Live { entry, .. }
                if entry.entrypoint == Some(crate::provider::claude::registry::Entrypoint::Headless) =>
            {
                Ok(Holder::Writer {
                    pid: entry.pid,
                    what: format!("a headless claude -p (pid {}, not a TUI)", entry.pid),
                })
            }
            // The registry names another pane than the one the process
            // runs in: typing into either could reach the wrong program.
            ClaudeHolder::Live {
                entry,
                pane_mismatch: true,
                ..
            } => Ok(Holder::Unknown {
                what: format!(
                    "{}, whose registry entry names pane {} but which runs in another pane (not typing into a pane that is not its own)",
                    what(&entry),
                    entry.tmux_raw.as_deref().unwrap_or("?")
                ),
            }),
            ClaudeHolder::Live { entry, reach, .. } => Ok(Holder::Live {
                pid: entry.pid,
                what: what(&entry),
                reach,
            }),
            ClaudeHolder::Unknown(entry) => Ok(Holder::Unknown { what: what(&entry) }),
            ClaudeHolder::Nobody => Ok(Holder::Nobody),
        }
    }

    fn mode_record(&self) -> Option<super::ModeRecord> {
        Some(super::ModeRecord {
            needle: "\"permissionMode\"",
            read: mode_of_line,
        })
    }

    fn own_continue(&self, session_file: &[u8]) -> Option<own_continue::Verdict> {
        let text = String::from_utf8_lossy(session_file);
        own_continue::assess_transcript(text.lines())
    }

    fn own_continue_grace(&self) -> chrono::Duration {
        chrono::Duration::seconds(OWN_CONTINUE_GRACE_SECS)
    }

    /// Claude refuses to start nested inside a Claude Code session.
    fn nesting_env(&self) -> &'static [&'static str] {
        &["CLAUDECODE"]
    }

    /// Its `/rate-limit-options` menu's choice arms its own continue.
    fn limit_dialog(&self) -> Option<DialogKind> {
        Some(DialogKind::ArmsOwnContinue)
    }

    /// The `/rate-limit-options` menu's "wait here, then continue
    /// automatically" entry: captured as entry 2; chosen by its label when
    /// shown. Claude's own continue then has the incident.
    fn answer_limit_dialog(&self, menu: &LimitMenu) -> Option<DialogChoice> {
        let key = menu
            .options
            .iter()
            .find(|(_, l)| l.to_lowercase().contains("continue automatically"))
            .map_or(2, |(n, _)| *n);
        Some(DialogChoice {
            key,
            label: "wait here, then continue automatically".into(),
        })
    }

    /// The menu choice took when the transcript shows Claude's "continue
    /// automatically" output.
    fn choice_took(&self, written: &[u8]) -> bool {
        String::from_utf8_lossy(written).contains("continue automatically")
    }

    fn output_events(&self, v: &Value, out: &mut Vec<Event>) {
        let s = |ptr: &str| v.pointer(ptr).and_then(Value::as_str);
        match s("/type").unwrap_or("") {
            "assistant" => {
                let id = s("/message/id");
                for b in v
                    .pointer("/message/content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if b.get("type").and_then(Value::as_str) == Some("text") {
                        if let Some(t) = b.get("text").and_then(Value::as_str) {
                            out.push(assistant(t, id));
                        }
                    }
                }
            }
            "result" => out.push(status(
                s("/result").unwrap_or("result"),
                json!({
                    "subtype": v.get("subtype"),
                    "is_error": v.get("is_error"),
                    "api_error_status": v.get("api_error_status"),
                }),
            )),
            _ => {}
        }
    }
}

/// Claude's project folder name for a cwd: every `/` (and `.`) becomes `-`.
pub fn project_dir_name(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c == '/' || c == '.' { '-' } else { c })
        .collect()
}

fn observe_line(line: &[u8], id: &mut SessionIdentity) {
    let Some(v) = parse(line) else { return };
    // The first cwd is the session's: the transcript lives under its
    // project folder, while later entries follow the shell's `cd`s (a
    // subdirectory there would name a folder with no transcript in it).
    // The on-disk reader takes the first one too.
    if id.cwd.is_none() {
        set(&mut id.cwd, str_at(&v, &["cwd"]));
    }
    set(&mut id.provider_session_id, str_at(&v, &["sessionId"]));
    if matches!(str_at(&v, &["type"]), Some("user" | "permission-mode")) {
        set(&mut id.permission_mode, str_at(&v, &["permissionMode"]));
    }
    if str_at(&v, &["type"]) == Some("user")
        && v.get("isMeta").and_then(Value::as_bool) != Some(true)
    {
        let content = v.pointer("/message/content");
        let text = match content {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Array(parts)) => parts
                .iter()
                .find(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .and_then(|p| p.get("text"))
                .and_then(Value::as_str),
            _ => None,
        };
        set_prompt(id, text);
    }
}

/// The transcript `<claude>/projects/<cwd-dir>/<id>.jsonl` must exist. A
/// wrapper-id placeholder or a relay (no id at all) is looked up by cwd and
/// time.
fn resolve(
    t: &mut ResolvedTarget,
    paths: &Paths,
    hit_at: Option<DateTime<Utc>>,
) -> Result<(), Unresolved> {
    resolve_file(t, paths, hit_at)?;
    // A record without the mode (a relay's, a limit found past the part
    // of the transcript read, or written before it was kept): the
    // transcript says it, read back from the limit.
    if t.permission_mode.is_none() {
        if let Some(f) = t.native_file.as_deref() {
            t.permission_mode = crate::provider::mode::mode_at_limit(
                f,
                hit_at,
                super::ModeRecord {
                    needle: "\"permissionMode\"",
                    read: mode_of_line,
                },
            );
        }
    }
    Ok(())
}

/// The `permissionMode` a user or `permission-mode` entry records.
fn mode_of_line(v: &Value) -> Option<String> {
    matches!(
        v.get("type").and_then(Value::as_str),
        Some("user" | "permission-mode")
    )
    .then(|| v.get("permissionMode")?.as_str().map(str::to_string))
    .flatten()
}

/// The `permissionMode` of the last user (or `permission-mode`) entry at
/// or before `hit` (any, without a hit time; the untimed `permission-mode`
/// entries always count) in a transcript's bytes (pure).
pub fn permission_mode_in(bytes: &[u8], hit: Option<DateTime<Utc>>) -> Option<String> {
    json_lines(bytes)
        .filter(|v| {
            matches!(
                v.get("type").and_then(Value::as_str),
                Some("user" | "permission-mode")
            )
        })
        .filter(|v| match (hit, line_ts(v, "timestamp")) {
            (Some(h), Some(t)) => t <= h,
            _ => true,
        })
        .filter_map(|v| Some(v.get("permissionMode")?.as_str()?.to_string()))
        .filter(|m| !m.is_empty())
        .last()
}

fn resolve_file(
    t: &mut ResolvedTarget,
    paths: &Paths,
    hit_at: Option<DateTime<Utc>>,
) -> Result<(), Unresolved> {
    let projects = paths.provider_home(Provider::Claude).join("projects");
    // A cwd-less record with a known id: find the transcript anywhere and
    // take its cwd.
    if t.cwd.is_none() {
        if let Some(id) = &t.provider_session_id {
            if let Some((file, cwd)) = find_transcript_anywhere(&projects, id) {
                t.cwd = cwd.map(PathBuf::from);
                t.native_file = Some(file);
            }
        }
    }
    let cwd = require_cwd(t)?.to_path_buf();
    let cwd_str = cwd.to_string_lossy().into_owned();
    let dir = projects.join(project_dir_name(&cwd_str));
    if let Some(id) = t.provider_session_id.clone() {
        let file = dir.join(format!("{id}.jsonl"));
        if file.is_file() {
            t.native_file = Some(file);
            return Ok(());
        }
        if t.wrapper_session_id.as_deref() != Some(id.as_str()) {
            return Err(Unresolved::Deleted(format!(
                "Claude session {id} has no transcript at {} (deleted?)",
                file.display()
            )));
        }
        // The id was zag's wrapper-id placeholder: search instead.
    }
    match find_session(&dir, &cwd_str, hit_at) {
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

fn find_transcript_anywhere(projects: &Path, id: &str) -> Option<(PathBuf, Option<String>)> {
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

fn find_session(dir: &Path, cwd: &str, hit_at: Option<DateTime<Utc>>) -> Option<(String, PathBuf)> {
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

/// The permission modes Claude Code 2.1.332 takes for `--permission-mode`
/// (its `--help` lists all but `default`, which transcripts record and the
/// CLI accepts too).
pub const PERMISSION_MODES: &[&str] = &[
    "default",
    "acceptEdits",
    "auto",
    "bypassPermissions",
    "manual",
    "dontAsk",
    "plan",
];

/// `claude --resume <id> --output-format stream-json --verbose [--model M]
/// [--permission-mode MODE] [--dangerously-skip-permissions] [--add-dir D]…
/// -p -- <msg>`.
///
/// The session's recorded mode is kept; `bypassPermissions` becomes
/// `--dangerously-skip-permissions` (the flag that bypasses without an
/// opt-in, the one zag's auto-approve uses too). A mode outside
/// [`PERMISSION_MODES`] is dropped with a warning, never put on argv.
///
/// Claude's parser (commander) takes `-p` as a boolean and the prompt as a
/// positional, so the prompt goes after `--`; that also keeps a variadic
/// `--add-dir` from swallowing it.
pub fn args(spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
    let id = required_id(spec, Provider::Claude)?;
    check_message(&spec.message)?;
    check_dirs(&spec.add_dirs)?;
    let mut a: Vec<String> = vec![
        "--resume".into(),
        id.into(),
        "--output-format".into(),
        "stream-json".into(),
        "--verbose".into(),
    ];
    if let Some(m) = usable_model(&spec.model) {
        check_model(m)?;
        a.extend(["--model".into(), m.into()]);
    }
    let mut bypass = spec.auto_approve;
    match spec.permission_mode.as_deref() {
        None => {}
        Some("bypassPermissions") => bypass = true,
        Some(m) if PERMISSION_MODES.contains(&m) => {
            a.extend(["--permission-mode".into(), m.into()]);
        }
        Some(m) => tracing::warn!(
            mode = %m.escape_debug(),
            "unknown Claude permission mode recorded; resuming in the default mode"
        ),
    }
    if bypass {
        a.push("--dangerously-skip-permissions".into());
    }
    for d in &spec.add_dirs {
        a.extend(["--add-dir".into(), d.clone()]);
    }
    a.extend(["-p".into(), "--".into(), spec.message.clone()]);
    Ok(a)
}

/// What one Claude transcript entry says about progress.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Turn {
    /// A turn the user typed.
    Asked,
    /// A real answer from a model.
    Answered,
    /// A limit or API error reply: the turn before it got nothing.
    Failed,
}

/// Classify one entry; `None` for everything that is not a turn: meta and
/// bookkeeping entries (`system` notices, `atis-latch`, `api-request*`,
/// `cost-state`, tool results, `/exit`'s command entries, caveats,
/// "Goodbye!").
fn turn_of(v: &Value) -> Option<Turn> {
    match v.get("type").and_then(Value::as_str)? {
        "user" => {
            // Meta entries, Claude's auto-continuation among them, are not
            // the user's turn; an auto-continuation counts once answered
            // (the answer is `Answered`), not before.
            if v.get("isMeta").and_then(Value::as_bool) == Some(true) {
                return None;
            }
            let typed = match v.pointer("/message/content") {
                Some(Value::String(s)) => real_text(s),
                Some(Value::Array(a)) => a.iter().any(|b| {
                    b.get("type").and_then(Value::as_str) == Some("text")
                        && b.get("text").and_then(Value::as_str).is_some_and(real_text)
                }),
                _ => false,
            };
            typed.then_some(Turn::Asked)
        }
        "assistant" => {
            let error = v.get("error").is_some_and(|e| !e.is_null())
                || v.get("apiError").is_some_and(|e| !e.is_null())
                || v.get("isApiErrorMessage").and_then(Value::as_bool) == Some(true);
            if error {
                return Some(Turn::Failed);
            }
            // Synthetic non-error entries ("No response requested.") are
            // Claude's bookkeeping, not a model's answer.
            let synthetic =
                v.pointer("/message/model").and_then(Value::as_str) == Some("<synthetic>");
            (!synthetic).then_some(Turn::Answered)
        }
        _ => None,
    }
}

/// Whether a user entry's text is something typed, not a local command's
/// bookkeeping (`<command-name>`, `<local-command-stdout>`, the caveat).
fn real_text(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && !s.starts_with("<command-name>")
        && !s.starts_with("<command-message>")
        && !s.starts_with("<local-command-")
        && s != "Goodbye!"
}

/// A Claude transcript: after the hit, a model's real answer, or a typed
/// user turn whose next turn entry is not a limit or API error again
/// (still unanswered at the end of the file counts: the user is at it).
/// Claude's own auto-continuation counts once it got an answer. A poke that
/// only met the same limit, and meta or bookkeeping entries, are not
/// progress.
pub fn moved_on(bytes: &[u8], hit: DateTime<Utc>) -> Option<String> {
    let mut asked: Option<DateTime<Utc>> = None;
    for v in json_lines(bytes) {
        let Some(t) = after(&v, "timestamp", hit) else {
            continue;
        };
        match turn_of(&v) {
            Some(Turn::Answered) => {
                return Some(format!(
                    "a later successful turn at {} in the Claude transcript",
                    t.to_rfc3339()
                ))
            }
            Some(Turn::Asked) => {
                asked.get_or_insert(t);
            }
            Some(Turn::Failed) => asked = None,
            None => {}
        }
    }
    asked.map(|t| {
        format!(
            "a newer user message at {} in the Claude transcript",
            t.to_rfc3339()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resume::events::from_output;
    use crate::resume::respawn::build_args;
    use crate::session::SessionTracker;
    use chrono::TimeZone;

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    fn spec(id: Option<&str>, msg: &str) -> ArgvSpec {
        ArgvSpec {
            session_id: id.map(str::to_string),
            message: msg.into(),
            ..ArgvSpec::default()
        }
    }

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn project_dir_name_dashes_slashes() {
        assert_eq!(project_dir_name("/h/proj"), "-h-proj");
    }

    #[test]
    fn claude_native_identity_skips_tool_results() {
        let mut t = SessionTracker::for_file(
            Path::new("/h/.claude/projects/-w/abc.jsonl"),
            SourceKind::ClaudeNative,
        );
        t.observe(br#"{"type":"user","message":{"role":"user","content":"hello"},"cwd":"/w","sessionId":"abc"}"#);
        t.observe(br#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":"x"}]},"cwd":"/w","sessionId":"abc"}"#);
        assert_eq!(t.identity.cwd.as_deref(), Some("/w"));
        assert_eq!(t.identity.provider_session_id.as_deref(), Some("abc"));
        assert_eq!(t.identity.last_prompt.as_deref(), Some("hello"));
    }

    #[test]
    fn argv() {
        let s = spec(Some(ID), "Continue");
        assert_eq!(
            build_args(Provider::Claude, &s).unwrap(),
            [
                "--resume",
                ID,
                "--output-format",
                "stream-json",
                "--verbose",
                "-p",
                "--",
                "Continue",
            ]
        );
    }

    #[test]
    fn zag_options_are_kept() {
        let s = ArgvSpec {
            session_id: Some(ID.into()),
            message: "Continue".into(),
            model: Some("claude-opus-4".into()),
            auto_approve: true,
            add_dirs: vec!["/extra".into()],
            permission_mode: None,
        };
        assert_eq!(
            args(&s).unwrap(),
            [
                "--resume",
                ID,
                "--output-format",
                "stream-json",
                "--verbose",
                "--model",
                "claude-opus-4",
                "--dangerously-skip-permissions",
                "--add-dir",
                "/extra",
                "-p",
                "--",
                "Continue"
            ]
        );
    }

    #[test]
    fn flag_like_messages_stay_values() {
        let s = spec(Some(ID), "--dangerously-skip-permissions");
        let c = args(&s).unwrap();
        assert_eq!(&c[c.len() - 2..], ["--", "--dangerously-skip-permissions"]);
        assert!(args(&spec(Some(ID), "  ")).is_err());
        let bad_model = ArgvSpec {
            model: Some("--x".into()),
            ..spec(Some(ID), "m")
        };
        assert!(args(&bad_model).is_err());
        let bad_dir = ArgvSpec {
            add_dirs: vec!["-x".into()],
            ..spec(Some(ID), "m")
        };
        assert!(args(&bad_dir).is_err());
    }

    fn hit() -> DateTime<Utc> {
        ts("2030-01-01T10:00:00Z")
    }

    #[test]
    fn the_users_permission_mode_is_kept() {
        let mut t = SessionTracker::for_file(
            Path::new("/h/.claude/projects/-w/abc.jsonl"),
            SourceKind::ClaudeNative,
        );
        t.observe(br#"{"type":"user","permissionMode":"default","message":{"role":"user","content":"hi"},"cwd":"/w","sessionId":"abc"}"#);
        t.observe(br#"{"type":"user","permissionMode":"acceptEdits","message":{"role":"user","content":"fix it"},"cwd":"/w","sessionId":"abc"}"#);
        assert_eq!(t.identity.permission_mode.as_deref(), Some("acceptEdits"));
        // A switch noted in an entry of its own (2.1.332).
        t.observe(br#"{"type":"permission-mode","permissionMode":"plan","sessionId":"abc"}"#);
        assert_eq!(t.identity.permission_mode.as_deref(), Some("plan"));

        let with = |m: &str| {
            args(&ArgvSpec {
                permission_mode: Some(m.into()),
                ..spec(Some(ID), "Continue")
            })
            .unwrap()
        };
        let a = with("acceptEdits");
        assert_eq!(&a[5..7], ["--permission-mode", "acceptEdits"]);
        assert_eq!(&a[a.len() - 3..], ["-p", "--", "Continue"]);
        assert!(with("plan")
            .windows(2)
            .any(|w| w == ["--permission-mode", "plan"]));
        let b = with("bypassPermissions");
        assert!(b.contains(&"--dangerously-skip-permissions".to_string()));
        assert!(!b.contains(&"--permission-mode".to_string()));
        // Unknown or hostile values never reach argv.
        for bad in [
            "yolo",
            "--dangerously-skip-permissions",
            "acceptEdits -p",
            "",
        ] {
            let a = with(bad);
            assert_eq!(a, args(&spec(Some(ID), "Continue")).unwrap(), "{bad:?}");
        }
        // zag's auto-approve stays as it was, once.
        let both = args(&ArgvSpec {
            permission_mode: Some("bypassPermissions".into()),
            auto_approve: true,
            ..spec(Some(ID), "Continue")
        })
        .unwrap();
        let n = both
            .iter()
            .filter(|x| *x == "--dangerously-skip-permissions")
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn the_mode_before_the_hit_is_read_back_from_the_transcript() {
        let tr = concat!(
            r#"{"type":"user","timestamp":"2030-01-01T09:00:00Z","permissionMode":"plan","message":{"content":"a"}}"#,
            "\n",
            r#"{"type":"user","timestamp":"2030-01-01T09:59:00Z","permissionMode":"acceptEdits","message":{"content":"b"}}"#,
            "\n",
            r#"{"type":"assistant","timestamp":"2030-01-01T10:00:00Z","error":"rate_limit"}"#,
            "\n",
            r#"{"type":"user","timestamp":"2030-01-01T10:30:00Z","permissionMode":"default","message":{"content":"c"}}"#,
            "\n"
        );
        assert_eq!(
            permission_mode_in(tr.as_bytes(), Some(hit())).as_deref(),
            Some("acceptEdits")
        );
        assert_eq!(
            permission_mode_in(tr.as_bytes(), None).as_deref(),
            Some("default")
        );
        assert_eq!(permission_mode_in(b"{}\n", Some(hit())), None);
    }

    #[test]
    fn claude_transcript_rules() {
        let cases = [
            (
                r#"{"type":"user","timestamp":"2030-01-01T10:01:00Z","message":{"content":"go on"}}"#,
                true,
            ),
            (
                r#"{"type":"user","timestamp":"2030-01-01T10:01:00Z","isMeta":true,"message":{"content":"x"}}"#,
                false,
            ),
            (
                r#"{"type":"user","timestamp":"2030-01-01T10:01:00Z","message":{"content":[{"type":"tool_result"}]}}"#,
                false,
            ),
            (
                r#"{"type":"assistant","timestamp":"2030-01-01T10:01:00Z","message":{"model":"claude-x"}}"#,
                true,
            ),
            (
                r#"{"type":"assistant","timestamp":"2030-01-01T10:01:00Z","error":"rate_limit","isApiErrorMessage":true,"message":{"model":"<synthetic>"}}"#,
                false,
            ),
            (
                r#"{"type":"user","timestamp":"2030-01-01T09:01:00Z","message":{"content":"before"}}"#,
                false,
            ),
            // `/exit` while Claude's auto-continue waited (captured, 2.1.332)
            (
                r#"{"type":"user","timestamp":"2030-01-01T10:01:00Z","message":{"role":"user","content":"<command-name>/exit</command-name>\n            <command-message>exit</command-message>\n            <command-args></command-args>"}}"#,
                false,
            ),
            (
                r#"{"type":"user","timestamp":"2030-01-01T10:01:00Z","message":{"role":"user","content":"<local-command-stdout>Bye!</local-command-stdout>"}}"#,
                false,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(moved_on(line.as_bytes(), hit()).is_some(), want, "{line}");
        }
    }

    /// Lines of a transcript after the hit at 10:00, one entry a line.
    fn lines(entries: &[&str]) -> String {
        entries.join("\n") + "\n"
    }

    const POKE: &str = r#"{"type":"user","timestamp":"2030-01-01T10:01:00Z","permissionMode":"acceptEdits","message":{"role":"user","content":"are you there?"}}"#;
    const LIMIT_AGAIN: &str = r#"{"type":"assistant","timestamp":"2030-01-01T10:01:01Z","error":"rate_limit","isApiErrorMessage":true,"apiError":"usage_limit_reached","message":{"model":"<synthetic>","content":[{"type":"text","text":"You've hit your 5-hour limit · resets 3pm (UTC)"}]}}"#;
    const ANSWER: &str = r#"{"type":"assistant","timestamp":"2030-01-01T11:00:00Z","message":{"model":"claude-opus-4","content":[{"type":"text","text":"Done."}]}}"#;

    #[test]
    fn a_poke_that_met_the_limit_again_is_not_progress() {
        assert_eq!(
            moved_on(lines(&[POKE, LIMIT_AGAIN]).as_bytes(), hit()),
            None
        );
        // The 2.1.332 limit entry without the older `error` key.
        let new_form = LIMIT_AGAIN.replace(r#""error":"rate_limit","isApiErrorMessage":true,"#, "");
        assert_eq!(moved_on(lines(&[POKE, &new_form]).as_bytes(), hit()), None);
        // Two pokes, each met by the limit.
        let again = POKE.replace("10:01:00", "10:02:00");
        let limit2 = LIMIT_AGAIN.replace("10:01:01", "10:02:01");
        assert_eq!(
            moved_on(
                lines(&[POKE, LIMIT_AGAIN, &again, &limit2]).as_bytes(),
                hit()
            ),
            None
        );
        // A poke then a real answer is progress; so is a poke not yet met.
        let why = moved_on(lines(&[POKE, LIMIT_AGAIN, ANSWER]).as_bytes(), hit()).unwrap();
        assert!(why.contains("successful turn"), "{why}");
        let why = moved_on(lines(&[POKE, LIMIT_AGAIN, &again]).as_bytes(), hit()).unwrap();
        assert!(why.contains("user message at 2030-01-01T10:02:00"), "{why}");
    }

    #[test]
    fn meta_and_bookkeeping_entries_are_not_progress() {
        let noise = [
            r#"{"type":"system","subtype":"informational","level":"notice","timestamp":"2030-01-01T10:00:01Z","content":"Usage limit reached · set to continue automatically at 5:15pm"}"#,
            r#"{"type":"system","subtype":"informational","level":"warning","timestamp":"2030-01-01T10:00:02Z","content":"Automatic continue cancelled · Claude Code exited during the wait"}"#,
            r#"{"type":"atis-latch","timestamp":"2030-01-01T10:00:03Z"}"#,
            r#"{"type":"api-request-shape","timestamp":"2030-01-01T10:00:03Z","system":"..."}"#,
            r#"{"type":"api-request-blob","timestamp":"2030-01-01T10:00:03Z"}"#,
            r#"{"type":"api-request","timestamp":"2030-01-01T10:00:03Z"}"#,
            r#"{"type":"cost-state","timestamp":"2030-01-01T10:00:03Z"}"#,
            r#"{"type":"user","timestamp":"2030-01-01T10:00:04Z","message":{"role":"user","content":"<command-name>/exit</command-name>\n<command-message>exit</command-message>"}}"#,
            r#"{"type":"user","timestamp":"2030-01-01T10:00:04Z","isMeta":true,"message":{"role":"user","content":"<local-command-caveat>Caveat: ...</local-command-caveat>"}}"#,
            r#"{"type":"user","timestamp":"2030-01-01T10:00:04Z","message":{"role":"user","content":"<local-command-stdout>Goodbye!</local-command-stdout>"}}"#,
            r#"{"type":"user","timestamp":"2030-01-01T10:00:04Z","message":{"role":"user","content":[{"type":"text","text":"Goodbye!"}]}}"#,
            r#"{"type":"assistant","timestamp":"2030-01-01T10:00:05Z","message":{"model":"<synthetic>","content":[{"type":"text","text":"No response requested."}]}}"#,
        ];
        assert_eq!(moved_on(lines(&noise).as_bytes(), hit()), None);
    }

    #[test]
    fn an_answered_auto_continuation_moved_on() {
        let auto = r#"{"type":"user","timestamp":"2030-01-01T10:01:30Z","isMeta":true,"origin":{"kind":"auto-continuation"},"turnOrigin":"auto_continuation","message":{"role":"user","content":"Your claude.ai usage limit has reset. Continue the task you were working on."}}"#;
        // Not yet answered: Claude has only asked.
        assert_eq!(moved_on(lines(&[auto]).as_bytes(), hit()), None);
        // Met by the limit again: still not progress.
        let limit = LIMIT_AGAIN.replace("10:01:01", "10:01:31");
        assert_eq!(moved_on(lines(&[auto, &limit]).as_bytes(), hit()), None);
        assert!(moved_on(lines(&[auto, ANSWER]).as_bytes(), hit()).is_some());
    }

    /// Real 2.1.332 TUI transcripts from the limit on (tests/fixtures/live):
    /// the rule against what really happened next.
    #[test]
    fn real_tui_transcripts_after_a_limit() {
        let cases: [(&str, &str, bool); 7] = [
            (
                "autocontinued",
                include_str!("../../../tests/fixtures/live/claude_after_limit_autocontinued.jsonl"),
                true,
            ),
            (
                "ctrl_c_then_exit",
                include_str!("../../../tests/fixtures/live/claude_after_limit_ctrl_c_then_exit.jsonl"),
                false,
            ),
            (
                "esc_then_typed",
                include_str!("../../../tests/fixtures/live/claude_after_limit_esc_then_typed.jsonl"),
                true,
            ),
            (
                "exit_while_armed",
                include_str!("../../../tests/fixtures/live/claude_after_limit_exit_while_armed.jsonl"),
                false,
            ),
            (
                "setting_off",
                include_str!("../../../tests/fixtures/live/claude_after_limit_setting_off.jsonl"),
                false,
            ),
            (
                "setting_off_esc_then_typed",
                include_str!(
                    "../../../tests/fixtures/live/claude_after_limit_setting_off_esc_then_typed.jsonl"
                ),
                true,
            ),
            (
                "setting_off_menu_choice_2",
                include_str!(
                    "../../../tests/fixtures/live/claude_after_limit_setting_off_menu_choice_2.jsonl"
                ),
                true,
            ),
        ];
        for (name, text, want) in cases {
            let hit = summarize_transcript(text.as_bytes(), "")
                .limit_ts
                .first()
                .copied()
                .unwrap_or_else(|| panic!("{name}: no limit entry"));
            assert_eq!(moved_on(text.as_bytes(), hit).is_some(), want, "{name}");
            assert_eq!(
                permission_mode_in(text.as_bytes(), Some(hit)).as_deref(),
                Some("auto"),
                "{name}"
            );
        }
    }

    #[test]
    fn output_maps_text_and_status() {
        let claude = concat!(
            r#"{"type":"system","subtype":"init","session_id":"s"}"#,
            "\n",
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"Done."},{"type":"tool_use"}]}}"#,
            "\n",
            r#"{"type":"result","subtype":"success","is_error":false,"result":"Done."}"#,
            "\n",
            "not json\n"
        );
        let e = from_output(Provider::Claude, claude.as_bytes());
        let kinds: Vec<&str> = e.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ["assistant_message", "provider_status"]);
        assert_eq!(e[0].1["content"], "Done.");
        assert_eq!(e[0].1["message_id"], "m1");
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
