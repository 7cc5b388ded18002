//! Codex: rollouts under `~/.codex/sessions/YYYY/MM/DD/rollout-*-<id>.jsonl`.
//!
//! A rollout names its thread at the end of its file name and says the cwd in
//! its `session_meta`. Resumes run `codex exec resume -- <thread-id> <msg>`,
//! in the sandbox its last `turn_context` records (a headless `exec` would
//! otherwise run read-only: resumed, but unable to edit).

pub mod live;
pub mod screen;

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::{MovedOnRule, ProviderCli};
use crate::paths::Paths;
use crate::provider::argv::{check_message, required_id, ArgvError, ArgvSpec};
use crate::provider::events::{assistant, status, Event};
use crate::provider::target::after;
use crate::provider::target::{json_lines, line_ts, require_cwd, ResolvedTarget, Unresolved};
use crate::shared::{head_has, parse, set, set_prompt, stem, str_at, SessionIdentity};
use crate::shared::{Provider, SourceKind};

/// Codex CLI.
#[derive(Clone, Copy, Debug)]
pub struct Codex;

impl ProviderCli for Codex {
    fn provider(&self) -> Provider {
        Provider::Codex
    }

    /// Its screens ([`super::screen_view::read`], which reads Claude's and
    /// Codex's TUIs together).
    fn read_screen(&self, screen: &str) -> super::Shows {
        super::screen_view::read(screen).shows()
    }

    fn display_name(&self) -> &'static str {
        "Codex"
    }

    fn source(&self) -> SourceKind {
        SourceKind::CodexNative
    }

    fn session_files(&self) -> &'static str {
        "sessions/*/*/*/rollout-*.jsonl"
    }

    fn session_id_from_path(&self, path: &Path) -> Option<String> {
        thread_id(path)
    }

    fn observe(&self, line: &[u8], id: &mut SessionIdentity) {
        if !(head_has(line, r#""session_meta""#)
            || head_has(line, r#""turn_context""#)
            || (head_has(line, r#""user_message""#) && head_has(line, r#""event_msg""#)))
        {
            return;
        }
        let Some(v) = parse(line) else { return };
        match (str_at(&v, &["type"]), str_at(&v, &["payload", "type"])) {
            (Some("session_meta"), _) => {
                set(&mut id.provider_session_id, str_at(&v, &["payload", "id"]));
                set(&mut id.cwd, str_at(&v, &["payload", "cwd"]));
            }
            (Some("event_msg"), Some("user_message")) => {
                set_prompt(id, str_at(&v, &["payload", "message"]))
            }
            (Some("turn_context"), _) => set(&mut id.permission_mode, sandbox_of(&v)),
            _ => {}
        }
    }

    /// The rollout file must exist; its `session_meta` gives the cwd, its
    /// last `turn_context` before the hit (read back from the end, bounded)
    /// the sandbox, when nothing else did.
    fn resolve_session(
        &self,
        t: &mut ResolvedTarget,
        paths: &Paths,
        hit_at: Option<DateTime<Utc>>,
    ) -> Result<(), Unresolved> {
        let id = t
            .provider_session_id
            .clone()
            .ok_or_else(|| Unresolved::Invalid("the Codex thread id is unknown".into()))?;
        let root = paths.provider_home(Provider::Codex).join("sessions");
        let Some(file) = find_rollout(&root, &id) else {
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
        if t.permission_mode.is_none() {
            // Read back from the limit, bounded: the sandbox in force then.
            t.permission_mode = crate::provider::mode::mode_at_limit(&file, hit_at, SANDBOX_RECORD);
        }
        t.native_file = Some(file);
        require_cwd(t)?;
        Ok(())
    }

    fn resume_args(&self, spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
        args(spec)
    }

    fn mode_record(&self) -> Option<super::ModeRecord> {
        Some(SANDBOX_RECORD)
    }

    fn moved_on_rule(&self) -> Option<MovedOnRule> {
        Some(moved_on)
    }

    /// The rollout's fd holder (the TUI's `app-server` child) and its
    /// ancestry name the TUI; a holder with no TUI above it is a writer to
    /// wait for. A TUI found only by its cwd holds nothing of this thread
    /// (the writer is free), so it does not block the resume.
    fn live_holder(
        &self,
        t: &ResolvedTarget,
        cx: &crate::provider::LiveContext,
    ) -> Result<crate::provider::Holder, crate::live::owner::LiveError> {
        use crate::provider::codex::live::codex_holder;
        use crate::provider::codex::live::{Evidence, Owner};
        use crate::provider::Holder;
        let (Some(id), Some(rollout)) =
            (t.provider_session_id.as_deref(), t.native_file.as_deref())
        else {
            return Ok(Holder::Nobody);
        };
        let h = codex_holder(
            &cx.procfs,
            &cx.tmux,
            rollout,
            id,
            t.cwd.as_deref(),
            &cx.socket_dirs,
        )?;
        Ok(match (h.owner, h.reach) {
            (
                Owner::Tui {
                    evidence: Evidence::Cwd,
                    ..
                },
                _,
            )
            | (Owner::None, _) => Holder::Nobody,
            (Owner::Tui { tui, .. }, reach) => Holder::Live {
                pid: tui.pid,
                what: format!("codex TUI (pid {})", tui.pid),
                reach: reach
                    .unwrap_or(crate::live::owner::Reach::Unreachable { multiplexer: None }),
            },
            (Owner::Exec(p), _) => Holder::Writer {
                pid: p.pid,
                what: format!("codex exec (pid {})", p.pid),
            },
            (Owner::LingeringWriter(p), _) => Holder::Writer {
                pid: p.pid,
                what: format!("codex app-server (pid {})", p.pid),
            },
        })
    }

    fn is_writer_conflict(&self, output: &str) -> bool {
        crate::provider::codex::live::is_writer_conflict(output)
    }

    fn output_events(&self, v: &Value, out: &mut Vec<Event>) {
        let s = |ptr: &str| v.pointer(ptr).and_then(Value::as_str);
        match s("/type").unwrap_or("") {
            "item.completed" if s("/item/type") == Some("agent_message") => {
                if let Some(t) = s("/item/text") {
                    out.push(assistant(t, s("/item/id")));
                }
            }
            "error" => out.push(status(s("/message").unwrap_or("error"), Value::Null)),
            "turn.failed" => out.push(status(
                s("/error/message").unwrap_or("turn failed"),
                Value::Null,
            )),
            _ => {}
        }
    }
}

/// The thread id at the end of `rollout-<timestamp>-<uuid>.jsonl`.
pub fn thread_id(path: &Path) -> Option<String> {
    let s = stem(path)?;
    let id = s.get(s.len().checked_sub(36)?..)?;
    (id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .then(|| id.to_string())
}

fn find_rollout(root: &Path, id: &str) -> Option<PathBuf> {
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

/// The sandbox a `turn_context` records: `sandbox_policy` (`{"type":…}`, or
/// a bare string in older rollouts), or 0.171's
/// `active_permission_profile.id` (`:workspace-write`).
fn sandbox_of(v: &Value) -> Option<&str> {
    let p = v.get("payload")?;
    let policy = p.get("sandbox_policy").and_then(|s| {
        s.as_str()
            .or_else(|| s.get("type").and_then(Value::as_str))
            .or_else(|| s.get("mode").and_then(Value::as_str))
    });
    policy.or_else(|| {
        p.pointer("/active_permission_profile/id")
            .and_then(Value::as_str)
            .map(|id| id.trim_start_matches(':'))
    })
}

/// A rollout's mode records: `turn_context` lines and their sandbox.
const SANDBOX_RECORD: super::ModeRecord = super::ModeRecord {
    needle: "\"turn_context\"",
    read: sandbox_of_line,
};

fn sandbox_of_line(v: &Value) -> Option<String> {
    (v.get("type").and_then(Value::as_str) == Some("turn_context"))
        .then(|| sandbox_of(v).map(str::to_string))
        .flatten()
}

/// The sandbox of the last `turn_context` at or before `hit` (any, without
/// a hit time) in a rollout's bytes (pure).
pub fn sandbox_in(bytes: &[u8], hit: Option<DateTime<Utc>>) -> Option<String> {
    json_lines(bytes)
        .filter(|v| v.get("type").and_then(Value::as_str) == Some("turn_context"))
        .filter(|v| match (hit, line_ts(v, "timestamp")) {
            (Some(h), Some(t)) => t <= h,
            _ => true,
        })
        .filter_map(|v| sandbox_of(&v).map(str::to_string))
        .last()
}

/// The sandbox modes `codex exec resume -c sandbox_mode=…` takes (0.171.0
/// refuses any other value).
pub const SANDBOX_MODES: &[&str] = &["read-only", "workspace-write", "danger-full-access"];

/// `codex exec resume [-c sandbox_mode="M"] --json --skip-git-repo-check --
/// <thread-id> <msg>`. The model is the thread's own. The recorded sandbox
/// is passed when it grants more than `exec`'s read-only default
/// (`workspace-write`, `danger-full-access`); its approval policy is not:
/// a headless run cannot ask, whatever the thread used. A value outside
/// [`SANDBOX_MODES`] is dropped with a warning, never put on argv.
/// Codex's parser (clap) takes positionals after `--`; a bare `-` would make
/// it read the prompt from stdin (which is null), so it is refused.
pub fn args(spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
    let id = required_id(spec, Provider::Codex)?;
    check_message(&spec.message)?;
    if spec.message.trim() == "-" {
        return Err(ArgvError::DashMessage);
    }
    let mut a: Vec<String> = vec!["exec".into(), "resume".into()];
    match spec.permission_mode.as_deref() {
        None | Some("read-only") => {}
        Some(m) if SANDBOX_MODES.contains(&m) => {
            a.extend(["-c".into(), format!("sandbox_mode=\"{m}\"")]);
        }
        Some(m) => tracing::warn!(
            mode = %m.escape_debug(),
            "unknown Codex sandbox mode recorded; resuming in exec's default"
        ),
    }
    a.extend([
        "--json".into(),
        "--skip-git-repo-check".into(),
        "--".into(),
        id.into(),
        spec.message.clone(),
    ]);
    Ok(a)
}

/// A Codex rollout: after the hit, an error-free `task_complete`, or a
/// `user_message` whose turn did not fail (a `task_complete` with an error,
/// the usage limit again above all, or an `error` event cancels it; one
/// still running at the end of the file counts).
pub fn moved_on(bytes: &[u8], hit: DateTime<Utc>) -> Option<String> {
    let mut asked = None;
    for v in json_lines(bytes) {
        let Some(t) = after(&v, "timestamp", hit) else {
            continue;
        };
        if v.get("type").and_then(Value::as_str) != Some("event_msg") {
            continue;
        }
        match v.pointer("/payload/type").and_then(Value::as_str) {
            Some("user_message") => {
                asked.get_or_insert(t);
            }
            Some("task_complete") if v.pointer("/payload/error").map_or(true, Value::is_null) => {
                return Some(format!(
                    "a later successful turn at {} in the Codex rollout",
                    t.to_rfc3339()
                ))
            }
            Some("task_complete" | "error" | "turn_aborted") => asked = None,
            _ => {}
        }
    }
    asked.map(|t| {
        format!(
            "a newer user message at {} in the Codex rollout",
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

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    fn spec(id: Option<&str>, msg: &str) -> ArgvSpec {
        ArgvSpec {
            session_id: id.map(str::to_string),
            message: msg.into(),
            ..ArgvSpec::default()
        }
    }

    #[test]
    fn codex_rollout_names_its_thread() {
        let p = Path::new("/h/.codex/sessions/2026/11/24/rollout-2026-11-24T01-02-03-0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jsonl");
        assert_eq!(
            thread_id(p).as_deref(),
            Some("0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        );
        let mut t = SessionTracker::for_file(p, SourceKind::CodexNative);
        t.observe(br#"{"timestamp":"x","type":"session_meta","payload":{"id":"0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","cwd":"/repo"}}"#);
        assert_eq!(t.identity.cwd.as_deref(), Some("/repo"));
        assert_eq!(t.identity.provider, Some(Provider::Codex));
    }

    #[test]
    fn argv() {
        assert_eq!(
            build_args(Provider::Codex, &spec(Some(ID), "Continue")).unwrap(),
            [
                "exec",
                "resume",
                "--json",
                "--skip-git-repo-check",
                "--",
                ID,
                "Continue",
            ]
        );
    }

    #[test]
    fn flag_like_messages_stay_values() {
        let s = spec(Some(ID), "--dangerously-skip-permissions");
        let x = args(&s).unwrap();
        assert_eq!(
            &x[x.len() - 3..],
            ["--", ID, "--dangerously-skip-permissions"]
        );
        assert!(args(&spec(Some(ID), "-")).is_err());
    }

    #[test]
    fn the_recorded_sandbox_is_kept() {
        let p = Path::new("/h/.codex/sessions/2026/11/24/rollout-2026-11-24T01-02-03-0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jsonl");
        let mut t = SessionTracker::for_file(p, SourceKind::CodexNative);
        t.observe(br#"{"timestamp":"x","type":"turn_context","payload":{"cwd":"/r","approval_policy":"on-request","sandbox_policy":{"type":"read-only"}}}"#);
        assert_eq!(t.identity.permission_mode.as_deref(), Some("read-only"));
        t.observe(br#"{"timestamp":"x","type":"turn_context","payload":{"cwd":"/r","approval_policy":"on-request","sandbox_policy":{"type":"workspace-write","writable_roots":[],"network_access":false}}}"#);
        assert_eq!(
            t.identity.permission_mode.as_deref(),
            Some("workspace-write")
        );
        // 0.171.0's form.
        t.observe(br#"{"timestamp":"x","type":"turn_context","payload":{"cwd":"/r","approval_policy":"never","active_permission_profile":{"id":":danger-full-access"}}}"#);
        assert_eq!(
            t.identity.permission_mode.as_deref(),
            Some("danger-full-access")
        );

        let with = |m: &str| {
            args(&ArgvSpec {
                permission_mode: Some(m.into()),
                ..spec(Some(ID), "Continue")
            })
            .unwrap()
        };
        let plain = args(&spec(Some(ID), "Continue")).unwrap();
        assert_eq!(
            with("workspace-write")[..4],
            ["exec", "resume", "-c", "sandbox_mode=\"workspace-write\""]
        );
        assert_eq!(with("workspace-write")[4..], plain[2..]);
        assert_eq!(
            with("danger-full-access")[3],
            "sandbox_mode=\"danger-full-access\""
        );
        for dropped in ["read-only", "bogus", "x\" -c y=\"z", "--last"] {
            assert_eq!(with(dropped), plain, "{dropped:?}");
        }
    }

    #[test]
    fn codex_rules() {
        let hit = DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = [
            (
                r#"{"timestamp":"2030-01-01T10:01:00Z","type":"event_msg","payload":{"type":"user_message"}}"#,
                true,
            ),
            (
                r#"{"timestamp":"2030-01-01T10:01:00Z","type":"event_msg","payload":{"type":"task_complete","error":{"codex_error_info":"usage_limit_exceeded"}}}"#,
                false,
            ),
            (
                r#"{"timestamp":"2030-01-01T10:01:00Z","type":"event_msg","payload":{"type":"task_complete"}}"#,
                true,
            ),
        ];
        for (line, want) in c {
            assert_eq!(moved_on(line.as_bytes(), hit).is_some(), want, "{line}");
        }
        // A user message whose turn met the usage limit again.
        let poke = concat!(
            r#"{"timestamp":"2030-01-01T10:01:00Z","type":"event_msg","payload":{"type":"user_message","message":"hello?"}}"#,
            "\n",
            r#"{"timestamp":"2030-01-01T10:01:01Z","type":"event_msg","payload":{"type":"token_count","rate_limits":{"primary":{"resets_at":1893495600}}}}"#,
            "\n",
            r#"{"timestamp":"2030-01-01T10:01:02Z","type":"event_msg","payload":{"type":"task_complete","error":{"codex_error_info":"usage_limit_exceeded"}}}"#,
            "\n"
        );
        assert_eq!(moved_on(poke.as_bytes(), hit), None);
        let done = format!(
            "{poke}{}\n",
            r#"{"timestamp":"2030-01-01T11:00:00Z","type":"event_msg","payload":{"type":"task_complete"}}"#
        );
        assert!(moved_on(done.as_bytes(), hit).is_some());
    }

    #[test]
    fn output_maps_text_and_status() {
        let codex = concat!(
            r#"{"type":"thread.started","thread_id":"t"}"#,
            "\n",
            r#"{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"ok"}}"#,
            "\n",
            r#"{"type":"turn.failed","error":{"message":"boom"}}"#,
            "\n"
        );
        let e = from_output(Provider::Codex, codex.as_bytes());
        let kinds: Vec<&str> = e.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ["assistant_message", "provider_status"]);
        assert_eq!(e[1].1["message"], "boom");
    }
}
