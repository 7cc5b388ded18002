//! Delivery to live sessions (issue 11) with stand-ins: a fake Claude
//! registry pointing at a live process, fake transcripts with the captured
//! arm / cancel / continue records, a fake TUI in a real tmux pane, fake
//! CLIs on PATH. Each test checks what was sent (typed or respawned) and
//! how the incident ends or is deferred.
//!
//! The tmux tests need `tmux` on PATH (skipped with one line without it,
//! unless `CI` is set).

#[path = "resume_util/mod.rs"]
mod util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use util::*;
use zag_resumed::live::proc::Procfs;
use zag_resumed::resume::route::{Continuer, LiveState};
use zag_resumed::resume::{deliver_live, Outcome, ResumeEnv};
use zag_resumed::store::Schedule;

const CODEX_OK: &str = concat!(
    r#"{"type":"thread.started","thread_id":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
    "\n",
    r#"{"type":"item.completed","item":{"id":"i0","type":"agent_message","text":"Resumed."}}"#,
    "\n",
    r#"{"type":"turn.completed"}"#,
    "\n"
);

/// A Codex rollout whose last turn hit the limit at [`HIT`].
fn codex_rollout(h: &Home) -> PathBuf {
    let day = h
        .paths
        .provider_home(zag_resumed::shared::Provider::Codex)
        .join("sessions/2030/01/01");
    fs::create_dir_all(&day).unwrap();
    let p = day.join(format!("rollout-2030-01-01T09-00-00-{ID}.jsonl"));
    fs::write(
        &p,
        format!(
            "{}\n{}\n",
            format_args!(
                r#"{{"timestamp":"{}","type":"session_meta","payload":{{"id":"{ID}","cwd":"{}"}}}}"#,
                shift(HIT, -3600),
                h.work_str()
            ),
            format_args!(
                r#"{{"timestamp":"{HIT}","type":"event_msg","payload":{{"type":"task_complete","error":{{"codex_error_info":"usage_limit_exceeded"}}}}}}"#
            )
        ),
    )
    .unwrap();
    p
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/live");

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is not installed, and CI is set"
        );
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIP live delivery tmux tests: no tmux");
    }
    found
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The captured transcript lines of a scenario (limit entry first), with a
/// prompt before them; the incident's hit is the limit entry's time.
fn transcript_from_fixture(h: &Home, fixture: &str) -> (PathBuf, Schedule) {
    let text = fs::read_to_string(format!("{FIXTURES}/{fixture}")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let hit = first["timestamp"].as_str().unwrap().to_string();
    let cwd = h.work_str();
    let mut lines = vec![format!(
        r#"{{"type":"user","sessionId":"{ID}","cwd":"{cwd}","timestamp":"2026-11-30T10:00:00.000Z","message":{{"role":"user","content":"hi"}}}}"#
    )];
    lines.extend(text.lines().map(str::to_string));
    let file = h.claude_transcript(ID, &lines);
    let mut inc = incident("claude");
    inc.cwd = Some(cwd);
    let hit: chrono::DateTime<chrono::Utc> = hit.parse().unwrap();
    inc.hit_at = Some(hit);
    // The reset is a minute from now: Claude's own continue gets until
    // reset + its grace.
    let reset = now() + chrono::Duration::minutes(1);
    inc.reset_at = Some(reset);
    inc.when = reset;
    (file, inc)
}

/// A Claude registry entry for `pid` (with its real `procStart`).
fn register(h: &Home, pid: u32) {
    let dir = h
        .paths
        .provider_home(zag_resumed::shared::Provider::Claude)
        .join("sessions");
    fs::create_dir_all(&dir).unwrap();
    let start = Procfs::system().identity(pid).unwrap().start_ticks;
    let cwd = h.work_str();
    fs::write(
        dir.join(format!("{pid}.json")),
        format!(
            r#"{{"pid":{pid},"sessionId":"{ID}","cwd":"{cwd}","procStart":"{start}","version":"2.1.332","kind":"interactive","entrypoint":"cli","status":"idle"}}"#
        ),
    )
    .unwrap();
}

/// A live process outside any multiplexer (an open TUI we cannot type to).
struct Sleeper(Child);
impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("120")
                .env_remove("TMUX")
                .env_remove("STY")
                .spawn()
                .unwrap(),
        )
    }
}
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tests' now: decisions run on a manual clock that stands still at
/// the moment the first test asked for it.
fn now() -> chrono::DateTime<chrono::Utc> {
    static NOW: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    *NOW.get_or_init(chrono::Utc::now)
}

fn env_for(h: &Home, sockets: &Path) -> ResumeEnv {
    let mut env = h.env();
    env.clock = zag_resumed::clock::ManualClock::new(now());
    env.live.socket_dirs = Some(vec![sockets.to_path_buf()]);
    env.live.confirm_timeout = Duration::from_secs(10);
    env
}

async fn deliver(inc: &Schedule, env: &ResumeEnv, state: &LiveState) -> Outcome {
    deliver_live(inc, env, &CancellationToken::new(), None, state).await
}

#[tokio::test]
async fn armed_with_the_tui_open_stands_down_and_sends_nothing() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (file, inc) = transcript_from_fixture(&h, "claude_after_limit_exit_while_armed.jsonl");
    // keep the arm, drop the exit warning and what follows: still armed
    let text = fs::read_to_string(&file).unwrap();
    let armed: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains("exited during the wait"))
        .collect();
    fs::write(&file, armed.join("\n") + "\n").unwrap();
    let tui = Sleeper::start();
    register(&h, tui.0.id());
    let sockets = tempfile::tempdir().unwrap();

    let o = deliver(&inc, &env_for(&h, sockets.path()), &LiveState::default()).await;
    match o {
        Outcome::Deferred { view, until, .. } => {
            assert_eq!(view.by, Continuer::ClaudeOwn);
            assert!(view.why.contains("armed"), "{}", view.why);
            assert!(until > now());
        }
        other => panic!("{other:?}"),
    }
    assert!(!h.ran("claude"), "no headless run while the TUI lives");

    // Claude's continuation arrives: the incident ends continued by it
    let cont =
        fs::read_to_string(format!("{FIXTURES}/claude_after_limit_autocontinued.jsonl")).unwrap();
    let more: Vec<&str> = cont
        .lines()
        .skip_while(|l| !l.contains("Continuing automatically"))
        .collect();
    let mut all = fs::read_to_string(&file).unwrap();
    all.push_str(&(more.join("\n") + "\n"));
    fs::write(&file, all).unwrap();
    let o = deliver(&inc, &env_for(&h, sockets.path()), &LiveState::default()).await;
    match o {
        Outcome::Resumed { detail } => {
            assert!(detail.contains("Claude Code's own continue"), "{detail}");
            assert!(detail.contains("nothing sent"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!h.ran("claude"));
}

#[tokio::test]
async fn exit_while_armed_is_resumed_headless_once() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (_file, inc) = transcript_from_fixture(&h, "claude_after_limit_exit_while_armed.jsonl");
    // the TUI's registry entry is left behind by a process that is gone
    let gone = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        register(&h, pid);
        c.wait().unwrap();
        pid
    };
    let _ = gone;
    let sockets = tempfile::tempdir().unwrap();
    let o = deliver(&inc, &env_for(&h, sockets.path()), &LiveState::default()).await;
    assert!(matches!(o, Outcome::Resumed { .. }), "{o:?}");
    assert_eq!(h.runs("claude"), 1);
    assert_eq!(
        h.argv("claude")[..2],
        ["--resume".to_string(), ID.to_string()]
    );
}

#[tokio::test]
async fn esc_with_the_tui_open_is_cancelled_by_the_user_and_nothing_is_sent() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (file, inc) = transcript_from_fixture(&h, "claude_after_limit_esc_then_typed.jsonl");
    // up to the cancel: the user has not typed yet
    let text = fs::read_to_string(&file).unwrap();
    let upto: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains(r#""content":"continue""#))
        .collect();
    fs::write(&file, upto.join("\n") + "\n").unwrap();
    let tui = Sleeper::start();
    register(&h, tui.0.id());
    let sockets = tempfile::tempdir().unwrap();
    let o = deliver(&inc, &env_for(&h, sockets.path()), &LiveState::default()).await;
    match o {
        Outcome::Skipped { reason } => {
            assert!(reason.contains("cancelled by the user"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!h.ran("claude"));
}

#[tokio::test]
async fn a_live_tui_outside_any_multiplexer_is_waited_for_then_resumed_once_it_exits() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (_file, inc) = transcript_from_fixture(&h, "claude_after_limit_setting_off.jsonl");
    let tui = Sleeper::start();
    register(&h, tui.0.id());
    let sockets = tempfile::tempdir().unwrap();
    let env = env_for(&h, sockets.path());
    let state = match deliver(&inc, &env, &LiveState::default()).await {
        Outcome::Deferred { view, state, .. } => {
            assert_eq!(view.by, Continuer::WaitingForOwner);
            assert!(view.notify, "the first wait notifies");
            assert!(state.notified);
            state
        }
        other => panic!("{other:?}"),
    };
    // still open: waits again, without a second notification
    match deliver(&inc, &env, &state).await {
        Outcome::Deferred { view, .. } => assert!(!view.notify),
        other => panic!("{other:?}"),
    }
    assert!(!h.ran("claude"));
    drop(tui);
    let o = deliver(&inc, &env, &state).await;
    assert!(matches!(o, Outcome::Resumed { .. }), "{o:?}");
    assert_eq!(h.runs("claude"), 1);
}

#[tokio::test]
async fn a_writer_conflict_is_retried_then_resumed_once_the_writer_is_free() {
    let h = Home::new();
    let stderr = fs::read_to_string(format!("{FIXTURES}/codex_resume_while_open.stderr")).unwrap();
    h.script("codex", "", &stderr, 1);
    codex_rollout(&h);
    let mut inc = incident("codex");
    inc.cwd = Some(h.work_str());
    let sockets = tempfile::tempdir().unwrap();
    let env = env_for(&h, sockets.path());
    let state = match deliver(&inc, &env, &LiveState::default()).await {
        Outcome::Deferred { view, state, until } => {
            assert_eq!(view.by, Continuer::DaemonRespawn);
            assert!(view.why.contains("another writer"), "{}", view.why);
            assert_eq!(state.writer_retries, 1);
            assert!(until > now());
            state
        }
        other => panic!("{other:?}"),
    };
    // released: the next try resumes
    h.script("codex", CODEX_OK, "", 0);
    let o = deliver(&inc, &env, &state).await;
    assert!(matches!(o, Outcome::Resumed { .. }), "{o:?}");
    assert_eq!(h.runs("codex"), 2, "one failed try, one resume");
}

/// A tmux server on a private socket in `dir`; killed on drop.
struct Server(PathBuf);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .status();
    }
}

/// A fake TUI in a real tmux pane: shows `screen`, then appends each
/// typed line to `session_file` as `line_json` with `%s` replaced by it.
fn fake_tui(dir: &Path, screen: &str, session_file: &Path, line_json: &str) -> (Server, u32) {
    let script = dir.join("tui.sh");
    let screen_file = dir.join("screen.txt");
    fs::write(&screen_file, screen).unwrap();
    let pidf = dir.join("tui.pid");
    fs::write(
        &script,
        format!(
            "cat '{screen}'\necho $$ > '{pid}'\nwhile IFS= read -r line; do\n  printf '{json}\\n' \"$line\" >> '{file}'\ndone\n",
            pid = pidf.display(),
            screen = screen_file.display(),
            json = line_json,
            file = session_file.display()
        ),
    )
    .unwrap();
    let socket = dir.join("sock");
    let st = Command::new("tmux")
        .arg("-S")
        .arg(&socket)
        .args([
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "agents",
            "-x",
            "150",
            "-y",
            "40",
        ])
        .arg(format!("sh -c 'sh {}; true'", script.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let server = Server(socket);
    assert!(wait_until(Duration::from_secs(10), || fs::read_to_string(
        &pidf
    )
    .is_ok_and(|s| s.trim().parse::<u32>().is_ok())));
    let pid = fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    (server, pid)
}

#[tokio::test]
async fn setting_off_and_an_idle_prompt_in_tmux_is_typed_into_exactly_once() {
    if !tmux_available() {
        return;
    }
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (file, inc) = transcript_from_fixture(&h, "claude_after_limit_setting_off.jsonl");
    let sockets = tempfile::tempdir().unwrap();
    let rule = "─".repeat(40);
    let screen = format!("{rule}\n❯ \u{a0}\n{rule}\n");
    let (_server, pid) = fake_tui(
        sockets.path(),
        &screen,
        &file,
        r#"{"type":"user","message":{"role":"user","content":"%s"}}"#,
    );
    register(&h, pid);
    let env = env_for(&h, sockets.path());
    let o = deliver(&inc, &env, &LiveState::default()).await;
    match &o {
        Outcome::Resumed { detail } => {
            assert!(detail.contains("typed into pane agents:0.0"), "{detail}");
            assert!(detail.contains("confirmed"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches(r#""content":"Continue""#).count(), 1, "{text}");
    assert!(!h.ran("claude"), "no headless run while the TUI lives");
}

#[tokio::test]
async fn claudes_limit_menu_gets_2_and_enter_then_claude_has_it() {
    if !tmux_available() {
        return;
    }
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (file, inc) = transcript_from_fixture(&h, "claude_after_limit_setting_off.jsonl");
    let sockets = tempfile::tempdir().unwrap();
    let menu = fs::read_to_string(format!(
        "{FIXTURES}/screen_claude_limit_menu_after_reset.txt"
    ))
    .unwrap();
    // what the real TUI writes when "2" is chosen (captured)
    let (_server, pid) = fake_tui(
        sockets.path(),
        &menu,
        &file,
        r#"{"type":"user","message":{"role":"user","content":"<local-command-stdout>Claude Code will continue automatically shortly. (%s)</local-command-stdout>"}}"#,
    );
    register(&h, pid);
    let env = env_for(&h, sockets.path());
    match deliver(&inc, &env, &LiveState::default()).await {
        Outcome::Deferred { view, state, .. } => {
            assert_eq!(view.by, Continuer::ClaudeOwn);
            assert!(view.why.contains("limit menu"), "{}", view.why);
            assert!(state.typed.is_none());
        }
        other => panic!("{other:?}"),
    }
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(
        text.matches("continue automatically shortly. (2)").count(),
        1,
        "{text}"
    );
    assert!(!h.ran("claude"));
}

#[tokio::test]
async fn a_codex_tui_holding_its_rollout_in_tmux_is_typed_into_once() {
    if !tmux_available() {
        return;
    }
    let h = Home::new();
    h.script("codex", CODEX_OK, "", 0);
    let rollout = codex_rollout(&h);
    let mut inc = incident("codex");
    inc.cwd = Some(h.work_str());
    let sockets = tempfile::tempdir().unwrap();
    // A stand-in `codex` TUI: its argv is Codex's, it holds the rollout
    // open (as the TUI's app-server does) and shows the empty composer.
    let bin = sockets.path().join("fakebin");
    fs::create_dir_all(&bin).unwrap();
    let codex = bin.join("codex");
    fs::write(
        &codex,
        format!(
            "echo $$ > '{pid}'\nexec 3>>'{rollout}'\nprintf '› Ask Codex to do anything\\n'\nwhile IFS= read -r line; do\n  printf '{{\"type\":\"response_item\",\"payload\":{{\"type\":\"message\",\"role\":\"user\",\"content\":[{{\"type\":\"input_text\",\"text\":\"%s\"}}]}}}}\\n' \"$line\" >&3\ndone\n",
            pid = sockets.path().join("tui.pid").display(),
            rollout = rollout.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&codex, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let socket = sockets.path().join("sock");
    let st = Command::new("tmux")
        .arg("-S")
        .arg(&socket)
        .args([
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "cx",
            "-x",
            "150",
            "-y",
            "40",
        ])
        // argv[0] `codex`, as the real TUI's: its role is read from argv
        .arg(format!("bash -c 'exec -a codex sh {}'", codex.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let _server = Server(socket);
    let pidf = sockets.path().join("tui.pid");
    assert!(wait_until(Duration::from_secs(10), || fs::read_to_string(
        &pidf
    )
    .is_ok_and(|s| s.trim().parse::<u32>().is_ok())));
    // the fd is opened right after the pid is written: wait until it is
    let pid: u32 = fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || Procfs::system()
            .has_open(pid, &rollout)
            == Some(true)),
        "the stand-in TUI never opened the rollout"
    );
    let env = env_for(&h, sockets.path());
    let o = deliver(&inc, &env, &LiveState::default()).await;
    match &o {
        Outcome::Resumed { detail } => {
            assert!(detail.contains("typed into pane cx:0.0"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    let text = fs::read_to_string(&rollout).unwrap();
    assert_eq!(text.matches(r#""text":"Continue""#).count(), 1, "{text}");
    assert!(
        !h.ran("codex"),
        "no `codex exec resume` while the TUI holds the thread"
    );
}

#[test]
fn a_wait_for_the_owner_notifies_once_on_the_desktop() {
    use zag_resumed::control::IncidentEvent;
    let ev = |notify| IncidentEvent::Routed {
        incident_id: "i".into(),
        provider: "claude".into(),
        session_id: ID.into(),
        continued_by: "waiting for the owner to exit".into(),
        why: "claude 2.1.332 TUI (pid 7) is open outside tmux and GNU screen".into(),
        recheck_at: None,
        notify,
        at: chrono::Utc::now(),
    };
    let (title, body) = zag_resumed::desktop::notification_for(&ev(true)).unwrap();
    assert!(title.contains("waits for you"), "{title}");
    assert!(body.contains("outside tmux"), "{body}");
    // the re-checks after the first say nothing
    assert_eq!(zag_resumed::desktop::notification_for(&ev(false)), None);
}
