//! The user's message and the dry run with a session open in a TUI, on
//! the real binary: a fake Claude TUI in a real tmux pane (on a private
//! tmux socket dir, found through `TMUX_TMPDIR`), named by a fake Claude
//! registry entry. `message` is what gets typed into the pane; a dry run
//! says it would type and types nothing.
//!
//! Needs `tmux` on PATH (skipped with one line without it, unless `CI` is
//! set).

#[path = "common/tmux.rs"]
mod tmux_check;
mod util;

use serde_json::json;
use std::path::{Path, PathBuf};
use tmux_check::Server;
use util::{append, pending_count, wait_for, Env};

const SID: &str = "9b54cadf-3a50-40e4-a805-7ee4d2b7cf27";

/// The session's transcript path and its working directory.
fn transcript(env: &Env) -> (PathBuf, PathBuf) {
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let dirname = work.display().to_string().replace(['/', '.'], "-");
    let t = env
        .home
        .join(".claude/projects")
        .join(dirname)
        .join(format!("{SID}.jsonl"));
    (t, work)
}

/// A fake Claude TUI idle at its prompt in a tmux pane under
/// `tmux_tmpdir/tmux-<uid>/`, registered in `~/.claude/sessions/`; each
/// line typed into it is appended to the transcript as a user entry.
fn open_tui(env: &Env, tmux_tmpdir: &Path) -> Server {
    let (file, work) = transcript(env);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let sockets = tmux_check::socket_dir(tmux_tmpdir);
    let dir = env.dir.path();
    let pidf = dir.join("tui.pid");
    let rule = "─".repeat(40);
    let script = dir.join("tui.sh");
    // It draws its input box as the real TUI does (what was typed so far
    // inside it, redrawn at each keystroke), then writes its pid; on
    // Enter the input becomes a user entry.
    std::fs::write(
        &script,
        format!(
            "buf=''\ndraw() {{ printf '\\033[H\\033[2J{rule}\\n❯ %s\\n{rule}\\n' \"${{buf:-\u{a0}}}\"; }}\ndraw\necho $$ > '{pid}'\nwhile IFS= read -rsn1 c; do\n  if [ -z \"$c\" ]; then printf '{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"%s\"}},\"sessionId\":\"{SID}\"}}\\n' \"$buf\" >> '{file}'; buf=''; else buf=\"$buf$c\"; fi\n  draw\ndone\n",
            pid = pidf.display(),
            file = file.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &sockets.join("default"),
        "agents",
        (150, 40),
        None,
        &format!("sh -c 'bash {}; true'", script.display()),
    );
    let pid = tmux_check::pid_written(&pidf);
    let start = zag_resumed::live::proc::Procfs::system()
        .identity(pid)
        .unwrap()
        .start_ticks;
    let reg = env.home.join(".claude/sessions");
    std::fs::create_dir_all(&reg).unwrap();
    std::fs::write(
        reg.join(format!("{pid}.json")),
        json!({"pid":pid,"sessionId":SID,"cwd":work,"procStart":start.to_string(),
               "version":"2.1.332","kind":"interactive","entrypoint":"cli","status":"idle"})
        .to_string(),
    )
    .unwrap();
    server
}

/// The limit entry (written 150 s ago), reset `reset_in` seconds from now.
fn limit(env: &Env, reset_in: i64) {
    let (file, work) = transcript(env);
    let hit = chrono::Utc::now() - chrono::Duration::seconds(150);
    let reset = chrono::Utc::now().timestamp() + reset_in;
    let user = json!({"type":"user","message":{"role":"user","content":"hi"},"cwd":work,"sessionId":SID,"timestamp":(hit - chrono::Duration::seconds(5)).to_rfc3339()});
    let limit = json!({"type":"assistant","message":{"model":"<synthetic>","role":"assistant","content":[{"type":"text","text":"You've hit your 5-hour limit · resets 11:59pm (UTC)"}]},"error":"rate_limit","isApiErrorMessage":true,"apiError":"usage_limit_reached","apiErrorStatus":429,"apiErrorParams":{"rate_limit_info":{"status":"rejected","resetsAt":reset,"rateLimitType":"five_hour"}},"sessionId":SID,"cwd":work,"timestamp":hit.to_rfc3339()});
    append(&file, format!("{user}\n{limit}\n").as_bytes());
}

#[test]
fn a_custom_message_is_typed_into_the_open_tui_once() {
    if !tmux_check::available("user TUI tests") {
        return;
    }
    let env = Env::new();
    let tmux_dir = env.dir.path().join("t");
    let _server = open_tui(&env, &tmux_dir);
    let daemon = env.start_with(&[], &[("TMUX_TMPDIR", tmux_dir.as_os_str())]);
    limit(&env, 7200);
    env.wait_status("the pending incident", |s| pending_count(s) == 1);
    let id = env.status().unwrap()["pending"][0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = "now run the tests and commit";
    let (code, out, err) = env.run_cli(&["message", &id[..8], text]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = env.run_cli(&["resume-now", &id[..8]]);
    assert_eq!(code, 0, "{out}{err}");

    let done = || {
        env.records(&env.store())
            .into_iter()
            .find(|r| r["action"] == "complete")
    };
    wait_for("the typed delivery", || done().is_some());
    let rec = done().unwrap();
    assert_eq!(rec["status"], "resumed", "{rec}");
    assert!(
        rec["detail"].as_str().unwrap().contains("typed into pane"),
        "{rec}"
    );
    let (file, _) = transcript(&env);
    let t = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        t.matches(&format!("\"content\":\"{text}\"")).count(),
        1,
        "{t}"
    );
    assert!(!t.contains("\"content\":\"Continue\""), "{t}");
    assert!(env.calls().is_empty(), "no respawn while the TUI is open");
    drop(daemon);
}

#[test]
fn a_dry_run_says_it_would_type_into_the_pane_and_types_nothing() {
    if !tmux_check::available("user TUI tests") {
        return;
    }
    let env = Env::new();
    let tmux_dir = env.dir.path().join("t");
    let _server = open_tui(&env, &tmux_dir);
    // Due now, already in the HOME when the dry run starts.
    limit(&env, -30);
    let (file, _) = transcript(&env);
    let before = std::fs::read_to_string(&file).unwrap();
    let daemon = env.start_with(&["--dry-run"], &[("TMUX_TMPDIR", tmux_dir.as_os_str())]);
    daemon.wait_log("dry run: would type ");
    let log = daemon.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("dry run: would type "))
        .unwrap();
    assert!(
        line.contains("would type \"Continue\" once into agents:0.0"),
        "{line}"
    );
    // The incident's end: decided, logged, and nothing else.
    daemon.wait_log("(nothing recorded)");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "no keystroke"
    );
    assert!(!env.store().exists(), "no store record");
    assert!(env.calls().is_empty(), "no process started");
    drop(daemon);
}
