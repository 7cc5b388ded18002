//! GitHub Copilot CLI: `~/.copilot/session-state/<id>/events.jsonl`.
//!
//! A session is its state folder, named by its id. zag always runs Copilot
//! with `--allow-all` (zag-contract §7), so a resume of a zag session does
//! too. Resumes run `copilot --resume <id> -p <msg>`.

pub mod tui;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use super::{MovedOnRule, ProviderCli};
use crate::paths::Paths;
use crate::provider::argv::{
    check_dirs, check_message, check_model, required_id, usable_model, ArgvError, ArgvSpec,
};
use crate::provider::events::{assistant, status, Event};
use crate::provider::target::after;
use crate::provider::target::{json_lines, require_cwd, ResolvedTarget, Unresolved};
use crate::shared::SessionIdentity;
use crate::shared::{Provider, SourceKind};

/// GitHub Copilot CLI.
#[derive(Clone, Copy, Debug)]
pub struct Copilot;

impl ProviderCli for Copilot {
    fn provider(&self) -> Provider {
        Provider::Copilot
    }

    fn display_name(&self) -> &'static str {
        "Copilot CLI"
    }

    fn source(&self) -> SourceKind {
        SourceKind::CopilotNative
    }

    fn session_files(&self) -> &'static str {
        "session-state/*/events.jsonl"
    }

    /// The state folder's name.
    fn session_id_from_path(&self, path: &Path) -> Option<String> {
        path.parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
    }

    /// The events file adds nothing the path does not say.
    fn observe(&self, _line: &[u8], _id: &mut SessionIdentity) {}

    /// `session-state/<id>/` must exist.
    fn resolve_session(
        &self,
        t: &mut ResolvedTarget,
        paths: &Paths,
        _hit_at: Option<DateTime<Utc>>,
    ) -> Result<(), Unresolved> {
        let id = t
            .provider_session_id
            .clone()
            .ok_or_else(|| Unresolved::Invalid("the Copilot session id is unknown".into()))?;
        let dir = paths
            .provider_home(Provider::Copilot)
            .join("session-state")
            .join(&id);
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

    fn resume_args(&self, spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
        args(spec)
    }

    /// zag always runs Copilot with --allow-all (zag-contract §7).
    fn auto_approve(&self, t: &ResolvedTarget) -> bool {
        t.auto_approve || t.is_zag()
    }

    fn moved_on_rule(&self) -> Option<MovedOnRule> {
        Some(moved_on)
    }

    /// The process its `inuse.<pid>.lock` names, else a `copilot` process
    /// with the session's file open or its id on the command line
    /// ([`tui::holder`]).
    fn live_holder(
        &self,
        t: &ResolvedTarget,
        cx: &crate::provider::LiveContext,
    ) -> Result<crate::provider::Holder, crate::live::owner::LiveError> {
        tui::holder(t, cx)
    }

    fn read_screen(&self, screen: &str) -> crate::provider::screen::Shows {
        tui::read_screen(screen)
    }

    /// `continueOnAutoMode` on: Copilot switches to the auto model itself.
    fn continues_by_itself(&self, home: &Path) -> Option<String> {
        tui::continues_on_auto_mode(home).then(|| {
            "Copilot's continueOnAutoMode is on (it switches to the auto model instead of pausing)"
                .to_string()
        })
    }

    fn output_events(&self, v: &Value, out: &mut Vec<Event>) {
        let s = |ptr: &str| v.pointer(ptr).and_then(Value::as_str);
        match s("/type").unwrap_or("") {
            "assistant.message" => {
                if let Some(t) = s("/data/content") {
                    out.push(assistant(t, s("/data/messageId")));
                }
            }
            "session.error" => out.push(status(
                s("/data/message").unwrap_or("session error"),
                json!({ "errorType": v.pointer("/data/errorType") }),
            )),
            _ => {}
        }
    }
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

/// `copilot --resume <id> -p <msg> --output-format json [--allow-all]
/// [--model M] [--add-dir D]…`, always with the explicit id (`--continue`
/// could pick another session). Copilot's parser (commander) takes a
/// required option-argument greedily, so `-p <msg>` keeps a message that
/// starts with `-`.
pub fn args(spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
    let id = required_id(spec, Provider::Copilot)?;
    check_message(&spec.message)?;
    check_dirs(&spec.add_dirs)?;
    let mut a: Vec<String> = vec![
        "--resume".into(),
        id.into(),
        "-p".into(),
        spec.message.clone(),
        "--output-format".into(),
        "json".into(),
    ];
    if spec.auto_approve {
        a.push("--allow-all".into());
    }
    if let Some(m) = usable_model(&spec.model) {
        check_model(m)?;
        a.extend(["--model".into(), m.into()]);
    }
    for d in &spec.add_dirs {
        a.extend(["--add-dir".into(), d.clone()]);
    }
    Ok(a)
}

/// A Copilot events file: after the hit, an `assistant.message`, or a
/// `user.message` whose turn did not end in a `session.error` (the rate
/// limit again above all; one still running at the end of the file counts).
pub fn moved_on(bytes: &[u8], hit: DateTime<Utc>) -> Option<String> {
    let mut asked = None;
    for v in json_lines(bytes) {
        let Some(t) = after(&v, "timestamp", hit) else {
            continue;
        };
        match v.get("type").and_then(Value::as_str) {
            Some("user.message") => {
                asked.get_or_insert(t);
            }
            Some("assistant.message") => {
                return Some(format!(
                    "a later successful turn at {} in Copilot's events",
                    t.to_rfc3339()
                ))
            }
            Some("session.error") => asked = None,
            _ => {}
        }
    }
    asked.map(|t| {
        format!(
            "a newer user message at {} in Copilot's events",
            t.to_rfc3339()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resume::events::from_output;
    use crate::resume::respawn::build_args;

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    fn spec(id: Option<&str>, msg: &str) -> ArgvSpec {
        ArgvSpec {
            session_id: id.map(str::to_string),
            message: msg.into(),
            ..ArgvSpec::default()
        }
    }

    #[test]
    fn argv() {
        assert_eq!(
            build_args(Provider::Copilot, &spec(Some(ID), "Continue")).unwrap(),
            ["--resume", ID, "-p", "Continue", "--output-format", "json"]
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
                "-p",
                "Continue",
                "--output-format",
                "json",
                "--allow-all",
                "--model",
                "claude-opus-4",
                "--add-dir",
                "/extra"
            ]
        );
    }

    #[test]
    fn flag_like_messages_stay_values() {
        let p = args(&spec(Some(ID), "--dangerously-skip-permissions")).unwrap();
        assert_eq!(&p[2..4], ["-p", "--dangerously-skip-permissions"]);
    }

    #[test]
    fn zag_sessions_always_approve() {
        let mut t = ResolvedTarget {
            incident_id: "i".into(),
            provider: Provider::Copilot,
            channel: crate::provider::Channel::Respawn,
            wrapper_session_id: None,
            provider_session_id: Some(ID.into()),
            cwd: None,
            model: None,
            prompt: None,
            message: "Continue".into(),
            zag_log: None,
            native_file: None,
            auto_approve: false,
            permission_mode: None,
            respawn_error: None,
            cwd_identity: None,
        };
        assert!(!Copilot.auto_approve(&t));
        assert!(!crate::provider::claude::Claude.auto_approve(&t));
        t.zag_log = Some(PathBuf::from("/b/logs/sessions/w.jsonl"));
        assert!(Copilot.auto_approve(&t));
        assert!(!crate::provider::claude::Claude.auto_approve(&t));
    }

    #[test]
    fn copilot_rules() {
        let hit = DateTime::parse_from_rfc3339("2030-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = [
            (
                r#"{"type":"user.message","timestamp":"2030-01-01T10:01:00Z"}"#,
                true,
            ),
            (
                r#"{"type":"session.error","timestamp":"2030-01-01T10:01:00Z"}"#,
                false,
            ),
            (
                r#"{"type":"assistant.message","timestamp":"2030-01-01T09:01:00Z"}"#,
                false,
            ),
        ];
        for (line, want) in p {
            assert_eq!(moved_on(line.as_bytes(), hit).is_some(), want, "{line}");
        }
        let poke = concat!(
            r#"{"type":"user.message","timestamp":"2030-01-01T10:01:00Z","data":{"content":"hi?"}}"#,
            "\n",
            r#"{"type":"session.error","timestamp":"2030-01-01T10:01:30Z","data":{"errorType":"rate_limit","statusCode":429}}"#,
            "\n"
        );
        assert_eq!(moved_on(poke.as_bytes(), hit), None);
    }

    #[test]
    fn output_maps_text() {
        let copilot = concat!(
            r#"{"type":"assistant.message","data":{"content":"hi","messageId":"x"}}"#,
            "\n",
            r#"{"type":"result","sessionId":"s","exitCode":0}"#,
            "\n"
        );
        let e = from_output(Provider::Copilot, copilot.as_bytes());
        let kinds: Vec<&str> = e.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ["assistant_message"]);
    }
}
