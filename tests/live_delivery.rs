//! Delivery to live sessions (issue 11) with stand-ins: a fake Claude
//! registry pointing at a live process, fake transcripts with the captured
//! arm / cancel / continue records, a fake TUI in a real tmux pane, fake
//! CLIs on PATH. Each test checks what was sent (typed or respawned) and
//! how the incident ends or is deferred.
//!
//! The tmux tests need `tmux` on PATH (skipped with one line without it,
//! unless `CI` is set).

#[path = "common/tmux.rs"]
mod tmux_check;
#[path = "resume_util/mod.rs"]
mod util;
use tmux_check::{pid_written, wait_until, Server};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use util::*;
use zag_resumed::live::proc::Procfs;
use zag_resumed::resume::route::{Continuer, LiveState};
use zag_resumed::resume::{deliver_live, Outcome, ResumeEnv};
use zag_resumed::shared::Provider;
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
        Outcome::Deferred {
            view,
            until,
            holder,
            ..
        } => {
            assert_eq!(
                view.by,
                Continuer::OwnContinue {
                    cli: Provider::Claude
                }
            );
            assert!(view.why.contains("armed"), "{}", view.why);
            assert!(until > now());
            assert_eq!(holder, Some(tui.0.id()), "the TUI's exit is watched");
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
        Outcome::Deferred {
            view,
            state,
            holder,
            ..
        } => {
            assert_eq!(view.by, Continuer::WaitingForOwner);
            assert!(view.notify, "the first wait notifies");
            assert!(state.notified);
            assert_eq!(holder, Some(tui.0.id()), "the TUI's exit is watched");
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
        Outcome::Deferred {
            view, state, until, ..
        } => {
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

/// The body of a fake TUI (bash): draws `screen` with `@INPUT@` replaced
/// by what was typed so far (`empty` when nothing was: a TUI draws its
/// input as a real one does), then writes its pid to `pidf` (once it is
/// there, the screen is up), redraws at each keystroke, and on Enter writes `line_json` (`%s`: the input) with `out`
/// (`>> 'file'`, or `>&3`).
fn redraw_script(pidf: &Path, screen: &str, empty: &str, line_json: &str, out: &str) -> String {
    format!(
        "screen=$(cat <<'__SCREEN__'\n{screen}\n__SCREEN__\n)\nbuf=''\ndraw() {{ local b=\"${{buf:-{empty}}}\"; printf '\\033[H\\033[2J%s\\n' \"${{screen//@INPUT@/$b}}\"; }}\ndraw\necho $$ > '{pid}'\nwhile IFS= read -rsn1 c; do\n  if [ -z \"$c\" ]; then printf '{json}\\n' \"$buf\" {out}; buf=''; else buf=\"$buf$c\"; fi\n  draw\ndone\n",
        pid = pidf.display(),
        json = line_json,
    )
}

/// A fake TUI in a real tmux pane: shows `screen` (its input where
/// `@INPUT@` is), then appends each typed line to `session_file` as
/// `line_json` with `%s` replaced by it.
fn fake_tui(dir: &Path, screen: &str, session_file: &Path, line_json: &str) -> (Server, u32) {
    let script = dir.join("tui.sh");
    let pidf = dir.join("tui.pid");
    fs::write(
        &script,
        redraw_script(
            &pidf,
            screen,
            "",
            line_json,
            &format!(">> '{}'", session_file.display()),
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.join("sock"),
        "agents",
        (150, 40),
        None,
        &format!("sh -c 'bash {}; true'", script.display()),
    );
    let pid = pid_written(&pidf);
    (server, pid)
}

#[tokio::test]
async fn setting_off_and_an_idle_prompt_in_tmux_is_typed_into_exactly_once() {
    if !tmux_check::available("live delivery tmux tests") {
        return;
    }
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (file, inc) = transcript_from_fixture(&h, "claude_after_limit_setting_off.jsonl");
    let sockets = tempfile::tempdir().unwrap();
    let rule = "─".repeat(40);
    let screen = format!("{rule}\n❯ @INPUT@\n{rule}\n");
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
    if !tmux_check::available("live delivery tmux tests") {
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
            assert_eq!(
                view.by,
                Continuer::OwnContinue {
                    cli: Provider::Claude
                }
            );
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
    if !tmux_check::available("live delivery tmux tests") {
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
            "exec 3>>'{rollout}'\n{}",
            redraw_script(
                &sockets.path().join("tui.pid"),
                "› @INPUT@",
                "Ask Codex to do anything",
                r#"{"type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"%s"}]}}"#,
                ">&3",
            ),
            rollout = rollout.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&codex, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // argv[0] `codex`, as the real TUI's: its role is read from argv
    let _server = Server::start(
        &sockets.path().join("sock"),
        "cx",
        (150, 40),
        None,
        &format!("bash -c 'exec -a codex bash {}'", codex.display()),
    );
    // the fd is opened right after the pid is written: wait until it is
    let pid = pid_written(&sockets.path().join("tui.pid"));
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

/// An interactive bash in a real tmux pane, with a `command_not_found_handle`
/// and a history file that prove what reached the shell, and a fake TUI
/// started from it as a job (`bash tui.sh`, in front). The TUI draws
/// `screen` (`@INPUT@`: what was typed so far), puts its terminal back in
/// raw mode when continued (`fg`), as real TUIs do, and appends each Enter's
/// line to `session_file` as `line_json`.
struct ShellPane {
    server: Server,
    dir: PathBuf,
    tui: u32,
}

impl ShellPane {
    fn start(
        dir: &Path,
        screen: &str,
        session_file: &Path,
        line_json: &str,
        job: &str,
    ) -> ShellPane {
        let rc = dir.join("rc");
        fs::write(
            &rc,
            format!(
                "PS1='user@box:~$ '\nHISTFILE='{d}/hist'\nPROMPT_COMMAND='history -a'\ncommand_not_found_handle() {{ printf '%s\\n' \"$1\" >> '{d}/cnf.log'; return 127; }}\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let pidf = dir.join("tui.pid");
        let body = redraw_script(
            &pidf,
            screen,
            "",
            line_json,
            &format!(">> '{}'", session_file.display()),
        )
        .replace(
            "draw\necho $$",
            "trap 'stty -icanon -echo; draw' CONT\ndraw\necho $$",
        );
        fs::write(dir.join("tui.sh"), body).unwrap();
        let server = Server::start(
            &dir.join("sock"),
            "sh",
            (150, 40),
            None,
            &format!("bash --noprofile --rcfile '{}' -i", rc.display()),
        );
        let pane = ShellPane {
            server,
            dir: dir.to_path_buf(),
            tui: 0,
        };
        assert!(wait_until(Duration::from_secs(10), || pane
            .capture()
            .contains("user@box:~$")));
        let job = job.replace("tui.sh", &dir.join("tui.sh").display().to_string());
        pane.keys(&[&job, "Enter"]);
        let tui = pid_written(&pidf);
        ShellPane { tui, ..pane }
    }

    fn keys(&self, keys: &[&str]) {
        self.server.keys("sh", keys);
    }

    fn capture(&self) -> String {
        self.server.capture("sh")
    }

    /// Commands the shell could not find (what was typed into it).
    fn not_found(&self) -> String {
        fs::read_to_string(self.dir.join("cnf.log")).unwrap_or_default()
    }

    fn history(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("hist"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The TUI's state letter and whether its job is the terminal's foreground.
    fn tui_state(&self) -> (char, bool) {
        // fields 3 (state), 5 (pgrp) and 8 (tpgid), after the `)` of comm
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.tui)).unwrap();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .collect();
        (f[0].chars().next().unwrap(), f[2] == f[5])
    }
}

#[tokio::test]
async fn a_tui_suspended_with_ctrl_z_gets_nothing_until_fg_then_one_choice() {
    if !tmux_check::available("live delivery tmux tests") {
        return;
    }
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (file, inc) = transcript_from_fixture(&h, "claude_after_limit_setting_off.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let menu = fs::read_to_string(format!(
        "{FIXTURES}/screen_claude_limit_menu_after_reset.txt"
    ))
    .unwrap();
    let pane = ShellPane::start(
        dir.path(),
        &menu,
        &file,
        r#"{"type":"user","message":{"role":"user","content":"<local-command-stdout>Claude Code will continue automatically shortly. (%s)</local-command-stdout>"}}"#,
        "bash tui.sh",
    );
    register(&h, pane.tui);
    // Ctrl-Z: the TUI stops, its menu stays on screen above the shell's prompt
    pane.keys(&["C-z"]);
    assert!(wait_until(Duration::from_secs(10), || pane
        .capture()
        .contains("Stopped")
        && pane.tui_state().0 == 'T'));
    let env = env_for(&h, dir.path());
    let state = match deliver(&inc, &env, &LiveState::default()).await {
        Outcome::Deferred { view, state, .. } => {
            assert_eq!(view.by, Continuer::WaitingForOwner);
            assert!(view.why.contains("stopped"), "{}", view.why);
            assert!(view.notify, "told once");
            state
        }
        other => panic!("{other:?}"),
    };
    // still suspended: waits again, silently
    let state = match deliver(&inc, &env, &state).await {
        Outcome::Deferred { view, state, .. } => {
            assert!(!view.notify);
            state
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(pane.not_found(), "", "keys reached the shell");
    assert!(!fs::read_to_string(&file).unwrap().contains("shortly. ("));
    // `fg`: the TUI is back in front; the choice goes to it, once
    pane.keys(&["fg", "Enter"]);
    assert!(wait_until(Duration::from_secs(10), || pane.tui_state()
        == ('S', true)
        && pane
            .capture()
            .trim_end()
            .ends_with("Enter to confirm · Esc to cancel")));
    match deliver(&inc, &env, &state).await {
        Outcome::Deferred { view, holder, .. } => {
            assert_eq!(
                view.by,
                Continuer::OwnContinue {
                    cli: Provider::Claude
                },
                "{}",
                view.why
            );
            // the stand-down after the typed choice watches the TUI too
            assert_eq!(holder, Some(pane.tui));
        }
        other => panic!("{other:?}"),
    }
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("shortly. (2)").count(), 1, "{text}");
    assert_eq!(pane.not_found(), "", "keys reached the shell");
    assert!(
        pane.history()
            .iter()
            .all(|l| l.contains("tui.sh") || l == "fg"),
        "{:?}",
        pane.history()
    );
    assert!(!h.ran("claude"));
}

#[tokio::test]
async fn a_shell_in_front_of_a_running_tui_gets_nothing() {
    if !tmux_check::available("live delivery tmux tests") {
        return;
    }
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (file, inc) = transcript_from_fixture(&h, "claude_after_limit_setting_off.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let rule = "─".repeat(40);
    // The TUI runs in the background (`&`): it draws its empty prompt after
    // the shell's, so the screen ends with it, but the shell reads the keys.
    let pane = ShellPane::start(
        dir.path(),
        &format!("{rule}\n❯ @INPUT@\n{rule}\n"),
        &file,
        r#"{"type":"user","message":{"role":"user","content":"%s"}}"#,
        "(sleep 1; sleep 600 | bash tui.sh) &",
    );
    register(&h, pane.tui);
    assert!(wait_until(Duration::from_secs(10), || pane
        .capture()
        .trim_end()
        .ends_with(&rule)));
    let (state, front) = pane.tui_state();
    assert!(state != 'T' && !front, "{state} {front}");
    let env = env_for(&h, dir.path());
    match deliver(&inc, &env, &LiveState::default()).await {
        Outcome::Deferred { view, .. } => {
            assert_eq!(view.by, Continuer::WaitingForOwner);
            assert!(view.why.contains("in front"), "{}", view.why);
        }
        other => panic!("{other:?}"),
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pane.not_found(), "", "keys reached the shell");
    assert!(!fs::read_to_string(&file).unwrap().contains("Continue"));
    assert!(!h.ran("claude"));
}

#[tokio::test]
async fn a_users_draft_in_the_input_is_never_merged_with() {
    if !tmux_check::available("live delivery tmux tests") {
        return;
    }
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let (file, inc) = transcript_from_fixture(&h, "claude_after_limit_setting_off.jsonl");
    let sockets = tempfile::tempdir().unwrap();
    let rule = "─".repeat(40);
    let (server, pid) = fake_tui(
        sockets.path(),
        &format!("{rule}\n❯ @INPUT@\n{rule}\n"),
        &file,
        r#"{"type":"user","message":{"role":"user","content":"%s"}}"#,
    );
    register(&h, pid);
    // the user started typing and left
    server.keys("agents", &["-l", "half a thought"]);
    let capture = || server.capture("agents");
    assert!(wait_until(Duration::from_secs(10), || capture()
        .contains("❯ half a thought")));
    let before = fs::read_to_string(&file).unwrap();
    let env = env_for(&h, sockets.path());
    match deliver(&inc, &env, &LiveState::default()).await {
        Outcome::Deferred { view, state, .. } => {
            assert_eq!(view.by, Continuer::WaitingForOwner);
            assert!(view.why.contains("draft"), "{}", view.why);
            assert!(state.typed.is_none(), "nothing typed");
        }
        other => panic!("{other:?}"),
    }
    assert!(capture().contains("❯ half a thought"), "{}", capture());
    assert!(!capture().contains("half a thoughtContinue"));
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
}
