//! Gemini CLI: chats under `~/.gemini/tmp/<project>/chats/session-*`.
//!
//! Gemini's own files carry identity only (no errors), and a failed turn is
//! rolled back out of the chat, prompt included: a resume sends the prompt
//! that hit the limit again, and a session that was never saved (a limit on
//! the first turn) becomes a fresh run with that prompt. For the same reason
//! its chat cannot tell whether the session moved on; only the zag log can.

pub mod tui;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use super::{MovedOnRule, ProviderCli};
use crate::paths::Paths;
use crate::provider::argv::{
    check_dirs, check_message, check_model, required_id, usable_model, ArgvError, ArgvSpec,
};
use crate::provider::events::{assistant, clip, status, Event};
use crate::provider::target::{require_cwd, ResolvedTarget, Unresolved};
use crate::shared::{head_has, parse, set, str_at, SessionIdentity};
use crate::shared::{Provider, SourceKind};

/// Gemini CLI.
#[derive(Clone, Copy, Debug)]
pub struct Gemini;

impl ProviderCli for Gemini {
    fn provider(&self) -> Provider {
        Provider::Gemini
    }

    fn display_name(&self) -> &'static str {
        "Gemini CLI"
    }

    fn source(&self) -> SourceKind {
        SourceKind::GeminiNative
    }

    fn session_files(&self) -> &'static str {
        "tmp/*/chats/session-*"
    }

    /// A chat's name is not its session id; the id is inside.
    fn session_id_from_path(&self, _path: &Path) -> Option<String> {
        None
    }

    fn observe(&self, line: &[u8], id: &mut SessionIdentity) {
        if head_has(line, r#""sessionId""#) {
            if let Some(v) = parse(line) {
                set(&mut id.provider_session_id, str_at(&v, &["sessionId"]));
            }
        }
    }

    /// The prompt is needed again; an id with no saved chat (first-turn
    /// limit) means a fresh run with that prompt.
    fn resolve_session(
        &self,
        t: &mut ResolvedTarget,
        paths: &Paths,
        _hit_at: Option<DateTime<Utc>>,
    ) -> Result<(), Unresolved> {
        if !t.prompt.as_deref().is_some_and(|p| !p.trim().is_empty()) {
            return Err(Unresolved::Invalid(
                "the prompt that hit the Gemini limit is unknown, and Gemini drops it from the session: a bare resume message would skip it".into(),
            ));
        }
        if let Some(id) = &t.provider_session_id {
            match find_chat(&paths.provider_home(Provider::Gemini).join("tmp"), id) {
                Some(f) => t.native_file = Some(f),
                None => t.provider_session_id = None,
            }
        }
        // A chat names no directory; its project folder does.
        if t.cwd.is_none() {
            t.cwd = t.native_file.as_deref().and_then(tui::project_root);
        }
        require_cwd(t)?;
        Ok(())
    }

    fn resume_args(&self, spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
        args(spec)
    }

    fn resends_prompt(&self) -> bool {
        true
    }

    /// Gemini CLI refuses to run headless in a directory it was not told to
    /// trust (exit 55). The session being resumed already ran in this very
    /// directory, so the trust it had carries over; the environment variable
    /// is used, not `--skip-trust`, because older versions ignore an unknown
    /// variable but reject an unknown flag.
    fn child_env(&self) -> &'static [(&'static str, &'static str)] {
        &[("GEMINI_CLI_TRUST_WORKSPACE", "true")]
    }

    /// Gemini's chat rolls failed turns back: it cannot tell.
    fn moved_on_rule(&self) -> Option<MovedOnRule> {
        None
    }

    /// A Gemini process in the session's directory or naming its id
    /// ([`tui::holder`]): Gemini keeps no registry and holds
    /// no file open.
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

    /// The limit dialog on the pane of a Gemini in `cwd` that is in its
    /// terminal's foreground ([`tui::probe`]).
    fn limit_on_screen(&self, cwd: &Path, cx: &crate::provider::LiveContext) -> Option<String> {
        tui::probe(&cx.procfs, &cx.tmux, &cx.socket_dirs, cwd).map(|s| s.title)
    }

    /// The TUI's limit shows on screen only; an open turn is when to look.
    fn fold_open_turn(&self, line: &[u8], open: &mut Option<crate::provider::OpenTurn>) -> bool {
        tui::fold_turn(line, open);
        true
    }

    /// A chat's project dir, from `tmp/<project>/.project_root`.
    fn project_dir(&self, session_file: &Path) -> Option<PathBuf> {
        tui::project_root(session_file)
    }

    /// Its usage-limit dialog retries (or stops) on the number alone.
    fn limit_dialog(&self) -> Option<crate::provider::DialogKind> {
        Some(crate::provider::DialogKind::Retries)
    }

    /// "Keep trying" when offered, else "Stop" ([`tui::choice`]).
    fn answer_limit_dialog(
        &self,
        menu: &crate::provider::LimitMenu,
    ) -> Option<crate::provider::DialogChoice> {
        tui::choice(menu).map(|(key, label)| crate::provider::DialogChoice {
            key,
            label: label.into(),
        })
    }

    /// An answer record in the chat ([`tui::answered`]).
    fn choice_took(&self, written: &[u8]) -> bool {
        tui::answered(written)
    }

    fn output_events(&self, v: &Value, out: &mut Vec<Event>) {
        let s = |ptr: &str| v.pointer(ptr).and_then(Value::as_str);
        match s("/type").unwrap_or("") {
            "message" if s("/role") == Some("assistant") => {
                if let Some(t) = s("/content") {
                    // stream-json sends deltas: join a run of them into one message.
                    match out.last_mut() {
                        Some(("assistant_message", f))
                            if v.get("delta").and_then(Value::as_bool) == Some(true) =>
                        {
                            let prev = f.get("content").and_then(Value::as_str).unwrap_or("");
                            let joined = clip(&format!("{prev}{t}"));
                            f.insert("content".into(), json!(joined));
                        }
                        _ => out.push(assistant(t, None)),
                    }
                }
            }
            "result" => {
                let msg = s("/error/message").unwrap_or(s("/status").unwrap_or("result"));
                out.push(status(msg, json!({ "status": v.get("status") })));
            }
            _ => {}
        }
    }
}

fn find_chat(tmp: &Path, id: &str) -> Option<PathBuf> {
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

/// `gemini [--resume <uuid>] --prompt=<prompt> --output-format stream-json
/// [--model M] [--approval-mode yolo] [--include-directories D]…`; without
/// a session id it is a fresh run with the original prompt. The prompt is
/// one `--prompt=<msg>` element, so Gemini's parser (yargs) takes all of it
/// as the value even when it starts with `-`.
pub fn args(spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
    check_message(&spec.message)?;
    check_dirs(&spec.add_dirs)?;
    let mut a: Vec<String> = Vec::new();
    if spec.session_id.is_some() {
        let id = required_id(spec, Provider::Gemini)?;
        a.extend(["--resume".into(), id.into()]);
    }
    a.push(format!("--prompt={}", spec.message));
    a.extend(["--output-format".into(), "stream-json".into()]);
    if let Some(m) = usable_model(&spec.model) {
        check_model(m)?;
        a.extend(["--model".into(), m.into()]);
    }
    if spec.auto_approve {
        a.extend(["--approval-mode".into(), "yolo".into()]);
    }
    for d in &spec.add_dirs {
        a.extend(["--include-directories".into(), d.clone()]);
    }
    Ok(a)
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
            build_args(Provider::Gemini, &spec(Some(ID), "Continue")).unwrap(),
            [
                "--resume",
                ID,
                "--prompt=Continue",
                "--output-format",
                "stream-json",
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
                "--prompt=Continue",
                "--output-format",
                "stream-json",
                "--model",
                "claude-opus-4",
                "--approval-mode",
                "yolo",
                "--include-directories",
                "/extra"
            ]
        );
        // Size aliases and "auto" are zag's, not the CLI's: left out.
        let s = ArgvSpec {
            model: Some("auto".into()),
            ..spec(Some(ID), "x")
        };
        assert!(!args(&s).unwrap().contains(&"--model".to_string()));
    }

    #[test]
    fn gemini_fresh_run_has_no_resume() {
        assert_eq!(
            args(&spec(None, "write the parser")).unwrap(),
            [
                "--prompt=write the parser",
                "--output-format",
                "stream-json"
            ]
        );
    }

    #[test]
    fn flag_like_messages_stay_values() {
        let s = spec(Some(ID), "--dangerously-skip-permissions");
        assert!(args(&s)
            .unwrap()
            .contains(&"--prompt=--dangerously-skip-permissions".to_string()));
    }

    #[test]
    fn output_joins_deltas() {
        let gemini = concat!(
            r#"{"type":"message","role":"assistant","content":"Hel","delta":true}"#,
            "\n",
            r#"{"type":"message","role":"assistant","content":"lo","delta":true}"#,
            "\n",
            r#"{"type":"result","status":"success"}"#,
            "\n"
        );
        let e = from_output(Provider::Gemini, gemini.as_bytes());
        let kinds: Vec<&str> = e.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ["assistant_message", "provider_status"]);
        assert_eq!(e[0].1["content"], "Hello");
    }
}
