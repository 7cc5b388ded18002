//! Differential test: the live tracker (ingest's per-file
//! `SessionTracker`, fed line by line as the tailer splits them) and the
//! on-disk fact readers (what resolution reads back from a session file:
//! Claude's transcript lookup and permission mode, Codex's rollout cwd and
//! sandbox, zag's bounded log reader and its claim check) must accept the
//! same lines and so agree on a session's facts. The same sessions are
//! written compact, spaced as a pretty-printer writes a one-line object
//! (`"key": value`), pretty-printed over several lines, and with a long
//! prompt (10 KB, and 100 KB: past the whole-line search) in its place.

use std::path::{Path, PathBuf};

use serde_json::Value;
use zag_resumed::detect::{Provider, SourceKind};
use zag_resumed::paths::Paths;
use zag_resumed::provider::{claude, codex};
use zag_resumed::resume::resolve::{read_zag_facts, Channel, ResolvedTarget};
use zag_resumed::resume::revalidate::zag_claim;
use zag_resumed::session::{SessionIdentity, SessionTracker};
use zag_resumed::tail::LineSplitter;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Style {
    Compact,
    Spaced,
    Pretty,
}

/// A JSON value written in a style; objects keep the given key order.
enum J {
    Raw(String),
    Obj(Vec<(&'static str, J)>),
}

fn s(text: &str) -> J {
    J::Raw(Value::String(text.to_string()).to_string())
}

fn raw(text: &str) -> J {
    J::Raw(text.to_string())
}

fn render(j: &J, style: Style, depth: usize) -> String {
    match j {
        J::Raw(t) => t.clone(),
        J::Obj(fields) => {
            let items: Vec<String> = fields
                .iter()
                .map(|(k, v)| {
                    let key = Value::String((*k).to_string()).to_string();
                    match style {
                        Style::Compact => format!("{key}:{}", render(v, style, depth + 1)),
                        _ => format!("{key}: {}", render(v, style, depth + 1)),
                    }
                })
                .collect();
            match style {
                Style::Compact => format!("{{{}}}", items.join(",")),
                Style::Spaced => format!("{{{}}}", items.join(", ")),
                Style::Pretty => {
                    let pad = "  ".repeat(depth + 1);
                    let end = "  ".repeat(depth);
                    format!("{{\n{pad}{}\n{end}}}", items.join(&format!(",\n{pad}")))
                }
            }
        }
    }
}

fn file_of(lines: &[J], style: Style) -> String {
    lines.iter().map(|l| render(l, style, 0) + "\n").collect()
}

/// What ingest knows of a file: every line through the tailer's splitter
/// into a tracker seeded from the path, as `ingest` does.
fn tracked(path: &Path, source: SourceKind, bytes: &[u8]) -> SessionIdentity {
    let mut tracker = SessionTracker::for_file(path, source);
    let mut splitter = LineSplitter::new(1 << 20);
    splitter.feed(bytes, |l| tracker.observe(l.bytes));
    tracker.identity
}

fn target(provider: Provider, id: &str) -> ResolvedTarget {
    ResolvedTarget {
        incident_id: "inc-1".into(),
        provider,
        channel: Channel::Respawn,
        wrapper_session_id: None,
        provider_session_id: Some(id.into()),
        cwd: None,
        model: None,
        prompt: None,
        message: "Continue".into(),
        zag_log: None,
        native_file: None,
        auto_approve: false,
        permission_mode: None,
        respawn_error: None,
    }
}

/// What resolution reads back from disk for a session given only its id.
fn resolved(provider: Provider, paths: &Paths, id: &str) -> (Option<PathBuf>, Option<String>) {
    let mut t = target(provider, id);
    let _ = zag_resumed::provider::of(provider).resolve_session(&mut t, paths, None);
    (t.cwd, t.permission_mode)
}

fn prompts() -> Vec<(&'static str, String)> {
    vec![
        ("short", "fix the build".to_string()),
        ("10 KB", "x".repeat(10 * 1024)),
        ("100 KB", "y".repeat(100 * 1024)),
    ]
}

const STYLES: [Style; 3] = [Style::Compact, Style::Spaced, Style::Pretty];

#[test]
fn claude_transcript_facts_agree() {
    const ID: &str = "0b6a3f2e-1111-4222-8333-944455556666";
    for style in STYLES {
        for (size, prompt) in prompts() {
            let home = tempfile::tempdir().unwrap();
            let paths = Paths::new(home.path(), None);
            let user = |cwd: &str, text: &str, mode: &str, at: &str| {
                J::Obj(vec![
                    ("parentUuid", raw("null")),
                    ("isSidechain", raw("false")),
                    ("userType", s("external")),
                    ("cwd", s(cwd)),
                    ("sessionId", s(ID)),
                    ("version", s("2.1.300")),
                    ("type", s("user")),
                    (
                        "message",
                        J::Obj(vec![("role", s("user")), ("content", s(text))]),
                    ),
                    ("uuid", s("u")),
                    ("timestamp", s(at)),
                    ("permissionMode", s(mode)),
                ])
            };
            let lines = [
                J::Obj(vec![
                    ("type", s("permission-mode")),
                    ("permissionMode", s("plan")),
                    ("sessionId", s(ID)),
                ]),
                user("/w/proj", &prompt, "acceptEdits", "2026-12-04T10:00:00Z"),
                // The shell moved into a subdirectory: later entries say so.
                J::Obj(vec![
                    ("cwd", s("/w/proj/sub")),
                    ("sessionId", s(ID)),
                    ("type", s("assistant")),
                    (
                        "message",
                        J::Obj(vec![("role", s("assistant")), ("content", raw("[]"))]),
                    ),
                    ("timestamp", s("2026-12-04T10:00:05Z")),
                ]),
                user(
                    "/w/proj/sub",
                    "second",
                    "bypassPermissions",
                    "2026-12-04T10:01:00Z",
                ),
            ];
            let text = file_of(&lines, style);
            let dir = paths
                .provider_home(zag_resumed::shared::Provider::Claude)
                .join("projects")
                .join("-w-proj");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{ID}.jsonl"));
            std::fs::write(&file, &text).unwrap();

            let live = tracked(&file, SourceKind::ClaudeNative, text.as_bytes());
            let (disk_cwd, disk_mode) = resolved(Provider::Claude, &paths, ID);
            let case = format!("{style:?}, {size} prompt");
            assert_eq!(
                live.cwd.as_deref().map(PathBuf::from),
                disk_cwd,
                "cwd, {case}"
            );
            assert_eq!(
                live.permission_mode,
                claude::permission_mode_in(text.as_bytes(), None),
                "permission mode, {case}"
            );
            assert_eq!(live.permission_mode, disk_mode, "resolved mode, {case}");
            if style != Style::Pretty {
                // Both read these lines, and read them right.
                assert_eq!(live.cwd.as_deref(), Some("/w/proj"), "{case}");
                assert_eq!(
                    live.permission_mode.as_deref(),
                    Some("bypassPermissions"),
                    "{case}"
                );
                assert_eq!(live.last_prompt.as_deref(), Some("second"), "{case}");
            } else {
                // An object over several lines is no JSONL line to either.
                assert_eq!((live.cwd, live.permission_mode), (None, None), "{case}");
            }
        }
    }
}

#[test]
fn codex_rollout_facts_agree() {
    const ID: &str = "5f0c9a1e-7777-4888-9999-aaaabbbbcccc";
    for style in STYLES {
        for (size, long) in prompts() {
            let home = tempfile::tempdir().unwrap();
            let paths = Paths::new(home.path(), None);
            let lines = [
                J::Obj(vec![
                    ("timestamp", s("2026-12-04T10:00:00Z")),
                    ("type", s("session_meta")),
                    (
                        "payload",
                        J::Obj(vec![
                            ("id", s(ID)),
                            ("cwd", s("/w/cx")),
                            ("base_instructions", J::Obj(vec![("text", s(&long))])),
                        ]),
                    ),
                ]),
                J::Obj(vec![
                    ("timestamp", s("2026-12-04T10:00:01Z")),
                    ("type", s("turn_context")),
                    (
                        "payload",
                        J::Obj(vec![
                            ("cwd", s("/w/cx")),
                            ("approval_policy", s("on-request")),
                            (
                                "sandbox_policy",
                                J::Obj(vec![("type", s("workspace-write"))]),
                            ),
                        ]),
                    ),
                ]),
                J::Obj(vec![
                    ("timestamp", s("2026-12-04T10:00:02Z")),
                    ("type", s("event_msg")),
                    (
                        "payload",
                        J::Obj(vec![("type", s("user_message")), ("message", s(&long))]),
                    ),
                ]),
            ];
            let text = file_of(&lines, style);
            let dir = paths
                .provider_home(zag_resumed::shared::Provider::Codex)
                .join("sessions/2026/12/04");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("rollout-2026-12-04T10-00-00-{ID}.jsonl"));
            std::fs::write(&file, &text).unwrap();

            let live = tracked(&file, SourceKind::CodexNative, text.as_bytes());
            let (disk_cwd, disk_mode) = resolved(Provider::Codex, &paths, ID);
            let case = format!("{style:?}, {size} payload");
            assert_eq!(
                live.cwd.as_deref().map(PathBuf::from),
                disk_cwd,
                "cwd, {case}"
            );
            assert_eq!(
                live.permission_mode,
                codex::sandbox_in(text.as_bytes(), None),
                "sandbox, {case}"
            );
            assert_eq!(live.permission_mode, disk_mode, "resolved sandbox, {case}");
            if style != Style::Pretty {
                assert_eq!(live.cwd.as_deref(), Some("/w/cx"), "{case}");
                assert_eq!(
                    live.permission_mode.as_deref(),
                    Some("workspace-write"),
                    "{case}"
                );
                // The tracker keeps a prompt clipped to 64 KiB.
                let kept = &long[..long.len().min(64 * 1024)];
                assert!(live.last_prompt.as_deref() == Some(kept), "prompt, {case}");
            } else {
                assert_eq!((live.cwd, live.permission_mode), (None, None), "{case}");
            }
        }
    }
}

#[test]
fn zag_log_facts_agree() {
    const WRAPPER: &str = "8d3e0c4b-aaaa-4bbb-8ccc-dddddddddddd";
    for style in STYLES {
        for (size, prompt) in prompts() {
            let dir = tempfile::tempdir().unwrap();
            let lines = [
                J::Obj(vec![
                    ("type", s("session_started")),
                    ("ts", s("2026-12-04T10:00:00Z")),
                    ("wrapper_session_id", s(WRAPPER)),
                    ("provider", s("codex")),
                    ("provider_session_id", s("thread-1")),
                    ("cwd", s("/w/z")),
                    ("model", s("gpt-5")),
                    ("command", s("run")),
                ]),
                // This daemon's own append puts `type` last, after the
                // (possibly long) prompt.
                J::Obj(vec![
                    ("ts", s("2026-12-04T10:05:00Z")),
                    ("content", s(&prompt)),
                    ("origin", s("zag-resumed")),
                    ("incident_id", s("inc-1")),
                    ("type", s("user_message")),
                ]),
            ];
            let text = file_of(&lines, style);
            let file = dir.path().join(format!("{WRAPPER}.jsonl"));
            std::fs::write(&file, &text).unwrap();

            let live = tracked(&file, SourceKind::ZagSession, text.as_bytes());
            let disk = read_zag_facts(&mut std::fs::File::open(&file).unwrap(), None).unwrap();
            let claim = zag_claim(text.as_bytes(), "inc-1");
            let case = format!("{style:?}, {size} prompt");
            assert_eq!(live.cwd, disk.cwd, "cwd, {case}");
            assert_eq!(live.model, disk.model, "model, {case}");
            assert_eq!(
                live.provider_session_id, disk.provider_session_id,
                "provider id, {case}"
            );
            assert!(live.last_prompt == disk.last_prompt, "prompt, {case}");
            // The claim check reads the same user_message lines the tracker
            // takes the prompt from.
            assert_eq!(
                live.last_prompt.is_some(),
                claim.is_some(),
                "user_message seen by one reader only, {case}"
            );
            match style {
                Style::Pretty => assert_eq!((live.cwd, claim), (None, None), "{case}"),
                _ => {
                    assert_eq!(live.cwd.as_deref(), Some("/w/z"), "{case}");
                    assert_eq!(live.provider_session_id.as_deref(), Some("thread-1"));
                    // Past the whole-line search, a `type` after 100 KB of
                    // prompt is not looked for, by either reader.
                    let seen = prompt.len() <= 64 * 1024;
                    assert_eq!(live.last_prompt.is_some(), seen, "{case}");
                }
            }
        }
    }
}
