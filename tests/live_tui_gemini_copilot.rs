//! Gemini CLI and Copilot CLI TUIs left open at a limit, with stand-ins in
//! a real tmux pane showing the screens captured from the real TUIs
//! (Gemini CLI 0.61.0's limit dialog, Copilot CLI 1.0.102's prompt after
//! its retries; `tests/fixtures/real/`). Each test checks what was sent
//! (typed once, or a headless respawn) and how the incident ends.
//!
//! Needs `tmux` on PATH (skipped with one line without it, unless `CI` is
//! set).

#[path = "common/tmux.rs"]
mod tmux_check;
#[path = "resume_util/mod.rs"]
mod util;
use tmux_check::{pid_written, wait_until, Server};

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use util::*;
use zag_resumed::ingest::{IngestEvent, TurnOpenSighting};
use zag_resumed::provider::gemini::tui;
use zag_resumed::resume::route::LiveState;
use zag_resumed::resume::{deliver_live, Outcome, ResumeEnv};
use zag_resumed::session::SessionIdentity;
use zag_resumed::store::Schedule;

const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real");
/// The Gemini session of the captured chat.
const GEMINI_ID: &str = "d2523caa-7cd4-498f-b8e1-0df37bdd8c3e";
const PROMPT: &str = "please refactor the parser";

/// A stand-in TUI in a tmux pane (its argv[0] is `name`, its cwd `cwd`):
/// runs `prelude`, shows `screen`, then appends each typed line to `file`
/// as `line_json` with `%s` replaced by it. Like the real TUIs it draws what
/// is typed inside its input (the `❯` line of Copilot's box, redrawn at
/// each keystroke); a screen without one (Gemini's dialog) takes a key
/// alone, as the real dialog takes its number. Returns the server and its
/// pid.
fn stand_in(
    dir: &Path,
    name: &str,
    cwd: &Path,
    prelude: &str,
    screen: &str,
    file: &Path,
    line_json: &str,
) -> (Server, u32) {
    let script = dir.join(format!("{name}.sh"));
    let screen_file = dir.join("screen.txt");
    // The input: after the `❯` of the last line that starts with it.
    let mut lines: Vec<String> = screen.lines().map(str::to_string).collect();
    if let Some(l) = lines
        .iter_mut()
        .rev()
        .find(|l| l.trim_start().starts_with('❯'))
    {
        *l = format!("{}@INPUT@", l.trim_end());
    }
    fs::write(&screen_file, lines.join("\n")).unwrap();
    let pidf = dir.join("tui.pid");
    fs::write(
        &script,
        format!(
            "{prelude}\nscreen=$(cat '{screen}')\nbuf=''\non_key=1\ncase \"$screen\" in *@INPUT@*) on_key='';; esac\ndraw() {{ printf '\\033[H\\033[2J%s\\n' \"${{screen//@INPUT@/ $buf}}\"; }}\ndraw\necho $$ > '{pid}'\nwhile IFS= read -rsn1 c; do\n  if [ -z \"$c\" ]; then\n    [ -n \"$buf\" ] && printf '{json}\\n' \"$buf\" >> '{file}'\n    buf=''\n  elif [ -n \"$on_key\" ]; then\n    printf '{json}\\n' \"$c\" >> '{file}'\n  else\n    buf=\"$buf$c\"\n  fi\n  draw\ndone\n",
            pid = pidf.display(),
            screen = screen_file.display(),
            json = line_json,
            file = file.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.join("sock"),
        "tui",
        (160, 45),
        Some(cwd),
        &format!("bash -c 'exec -a {name} bash {}'", script.display()),
    );
    let pid = pid_written(&pidf);
    // the screen is drawn before anything looks at it
    let last = screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    assert!(wait_until(Duration::from_secs(10), || server
        .capture("tui")
        .contains(&last)));
    (server, pid)
}

fn env_for(h: &Home, sockets: &Path) -> ResumeEnv {
    let mut env = h.env();
    env.live.socket_dirs = Some(vec![sockets.to_path_buf()]);
    env.live.confirm_timeout = Duration::from_secs(10);
    env
}

async fn deliver(inc: &Schedule, env: &ResumeEnv) -> Outcome {
    deliver_live(
        inc,
        env,
        &CancellationToken::new(),
        None,
        &LiveState::default(),
    )
    .await
}

/// Copilot's session folder with the events captured at the limit.
fn copilot_session(h: &Home) -> PathBuf {
    let dir = h
        .paths
        .provider_home(zag_resumed::detect::Provider::Copilot)
        .join("session-state")
        .join(ID);
    fs::create_dir_all(&dir).unwrap();
    let events =
        fs::read_to_string(format!("{REAL}/copilot-1.0.102/events_at_limit.jsonl")).unwrap();
    fs::write(dir.join("events.jsonl"), events).unwrap();
    dir
}

#[tokio::test]
async fn an_open_copilot_tui_is_typed_into_once_and_never_resumed_headless_beside() {
    if !tmux_check::available("Gemini/Copilot TUI tests") {
        return;
    }
    let h = Home::new();
    h.script("copilot", "", "", 0);
    let dir = copilot_session(&h);
    let events = dir.join("events.jsonl");
    let mut inc = incident("copilot");
    inc.cwd = Some(h.work_str());
    let sockets = tempfile::tempdir().unwrap();
    // As the real TUI: `inuse.<pid>.lock` with its pid, `inuse.<pid>.hold`
    // kept open; neither the events file open nor the id on its argv.
    let prelude = format!(
        "echo $$ > '{d}/inuse.'$$'.lock'\nexec 3>'{d}/inuse.'$$'.hold'",
        d = dir.display()
    );
    let screen =
        fs::read_to_string(format!("{REAL}/copilot-1.0.102/screen_after_limit.txt")).unwrap();
    let (_server, pid) = stand_in(
        sockets.path(),
        "copilot",
        &h.work,
        &prelude,
        &screen,
        &events,
        r#"{"type":"user.message","data":{"content":"%s"}}"#,
    );
    assert!(dir.join(format!("inuse.{pid}.lock")).exists());
    let env = env_for(&h, sockets.path());
    match deliver(&inc, &env).await {
        Outcome::Resumed { detail } => {
            assert!(detail.contains("typed into pane tui:0.0"), "{detail}");
            assert!(detail.contains("copilot TUI"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let text = fs::read_to_string(&events).unwrap();
    assert_eq!(text.matches(r#""content":"Continue""#).count(), 1, "{text}");
    assert!(
        !h.ran("copilot"),
        "no headless `copilot --resume` beside the open TUI"
    );
}

#[tokio::test]
async fn a_copilot_lock_left_by_a_dead_tui_is_not_a_holder_the_session_is_respawned() {
    let h = Home::new();
    h.script(
        "copilot",
        r#"{"type":"result","sessionId":"0f8fad5b-d9cb-469f-a165-70867728950e","exitCode":0}"#,
        "",
        0,
    );
    let dir = copilot_session(&h);
    // the lock of a TUI killed with -9: its pid is ours, but we do not hold
    // the `.hold` file (the reused-pid case)
    let me = std::process::id();
    fs::write(dir.join(format!("inuse.{me}.lock")), me.to_string()).unwrap();
    fs::write(dir.join(format!("inuse.{me}.hold")), "").unwrap();
    let mut inc = incident("copilot");
    inc.cwd = Some(h.work_str());
    let sockets = tempfile::tempdir().unwrap();
    let env = env_for(&h, sockets.path());
    let o = deliver(&inc, &env).await;
    assert!(matches!(o, Outcome::Resumed { .. }), "{o:?}");
    assert_eq!(h.runs("copilot"), 1);
    assert!(h.argv("copilot").contains(&"--resume".to_string()));
}

/// Gemini's chat as captured while its dialog was up, in its project folder
/// (whose `.project_root` names `cwd`).
fn gemini_chat(h: &Home, cwd: &Path) -> PathBuf {
    let proj = h
        .paths
        .provider_home(zag_resumed::detect::Provider::Gemini)
        .join("tmp/proj");
    fs::create_dir_all(proj.join("chats")).unwrap();
    fs::write(proj.join(".project_root"), cwd.to_string_lossy().as_bytes()).unwrap();
    let chat = proj.join("chats/session-2026-12-04T16-26-d2523caa.jsonl");
    let text = fs::read_to_string(format!("{REAL}/gemini-0.61.0/chat_at_dialog.jsonl")).unwrap();
    fs::write(&chat, text).unwrap();
    chat
}

fn gemini_incident() -> Schedule {
    let mut inc = incident("gemini");
    inc.session_id = GEMINI_ID.into();
    inc.provider_session_id = Some(GEMINI_ID.into());
    inc.prompt = Some(PROMPT.into());
    inc
}

/// The answer the real TUI appended after "1" (Keep trying), for a typed `%s`.
const GEMINI_ANSWER: &str =
    r#"{"id":"a-%s","timestamp":"2026-12-04T16:28:02.649Z","type":"gemini","content":"Hello."}"#;

#[tokio::test]
async fn an_open_gemini_tui_at_its_dialog_gets_keep_trying_once_and_no_headless_resume() {
    if !tmux_check::available("Gemini/Copilot TUI tests") {
        return;
    }
    let h = Home::new();
    h.script("gemini", "", "", 0);
    let chat = gemini_chat(&h, &h.work);
    let mut inc = gemini_incident();
    inc.cwd = Some(h.work_str());
    let sockets = tempfile::tempdir().unwrap();
    let screen =
        fs::read_to_string(format!("{REAL}/gemini-0.61.0/screen_limit_dialog_pro.txt")).unwrap();
    let (_server, _pid) = stand_in(
        sockets.path(),
        "gemini",
        &h.work,
        "",
        &screen,
        &chat,
        GEMINI_ANSWER,
    );
    let env = env_for(&h, sockets.path());
    match deliver(&inc, &env).await {
        Outcome::Resumed { detail } => {
            assert!(detail.contains("typed into pane tui:0.0"), "{detail}");
            assert!(detail.contains("Keep trying"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let text = fs::read_to_string(&chat).unwrap();
    // "1" once (the dialog takes the number alone: no Enter follows)
    assert_eq!(text.matches(r#""id":"a-1""#).count(), 1, "{text}");
    assert!(
        !h.ran("gemini"),
        "no headless `gemini --resume` beside the open TUI"
    );
}

#[tokio::test]
async fn a_gemini_tui_gone_before_the_reset_is_respawned_with_the_prompt() {
    let h = Home::new();
    h.script("gemini", r#"{"type":"result","status":"success"}"#, "", 0);
    gemini_chat(&h, &h.work);
    // no cwd on the incident: the chat's project folder names it
    let inc = gemini_incident();
    let sockets = tempfile::tempdir().unwrap();
    let env = env_for(&h, sockets.path());
    let o = deliver(&inc, &env).await;
    assert!(matches!(o, Outcome::Resumed { .. }), "{o:?}");
    assert_eq!(h.runs("gemini"), 1);
    let argv = h.argv("gemini");
    assert!(argv.contains(&format!("--prompt={PROMPT}")), "{argv:?}");
    assert_eq!(h.cwd("gemini"), h.work);
}

#[tokio::test]
async fn a_gemini_dialog_on_screen_becomes_one_limit_sighting_a_quiet_answer_none() {
    if !tmux_check::available("Gemini/Copilot TUI tests") {
        return;
    }
    let h = Home::new();
    let chat = gemini_chat(&h, &h.work);
    let sockets = tempfile::tempdir().unwrap();
    let screen =
        fs::read_to_string(format!("{REAL}/gemini-0.61.0/screen_limit_dialog_pro.txt")).unwrap();
    let (_server, _pid) = stand_in(
        sockets.path(),
        "gemini",
        &h.work,
        "",
        &screen,
        &chat,
        GEMINI_ANSWER,
    );
    let env = env_for(&h, sockets.path());
    let chat_bytes = fs::read(&chat).unwrap();
    let open = || TurnOpenSighting {
        file: chat.clone(),
        source: zag_resumed::detect::SourceKind::GeminiNative,
        identity: SessionIdentity {
            provider_session_id: Some(GEMINI_ID.into()),
            ..Default::default()
        },
        turn: tui::open_turn(&chat_bytes).expect("the captured chat ends with an open turn"),
        len: chat_bytes.len() as u64,
    };
    let clock: std::sync::Arc<dyn zag_resumed::clock::Clock> =
        std::sync::Arc::new(zag_resumed::clock::SystemClock);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    zag_resumed::daemon::screen_watch::watch(
        open(),
        env.live.clone(),
        h.paths
            .provider_home(zag_resumed::detect::Provider::Gemini)
            .to_path_buf(),
        vec![Duration::from_millis(50), Duration::from_millis(50)],
        clock.clone(),
        tx,
    )
    .await;
    let hits: Vec<IngestEvent> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    match &hits[0] {
        IngestEvent::Hit(s) => {
            assert_eq!(s.detection.raw, "Usage limit reached for all Pro models.");
            // a daily quota: due at the next midnight Pacific after the turn
            // (captured at 16:27:07Z on 2026-12-04, PST)
            assert_eq!(s.detection.scope, zag_resumed::detect::Scope::Daily);
            assert_eq!(
                s.detection.reset_at.map(|t| t.to_rfc3339()),
                Some("2026-12-05T08:00:00+00:00".to_string())
            );
            assert_eq!(s.identity.last_prompt.as_deref(), Some(PROMPT));
            assert_eq!(s.identity.cwd.as_deref(), Some(h.work_str().as_str()));
            assert_eq!(s.detection.provider_session_id.as_deref(), Some(GEMINI_ID));
        }
        other => panic!("{other:?}"),
    }
    // the chat grew (an answer, a rollback): no look, no sighting
    let mut grown = chat_bytes.clone();
    grown.extend_from_slice(b"{\"type\":\"gemini\",\"content\":\"x\"}\n");
    fs::write(&chat, &grown).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    zag_resumed::daemon::screen_watch::watch(
        open(),
        env.live.clone(),
        h.paths
            .provider_home(zag_resumed::detect::Provider::Gemini)
            .to_path_buf(),
        vec![Duration::from_millis(50)],
        clock,
        tx,
    )
    .await;
    assert!(rx.try_recv().is_err());
}
