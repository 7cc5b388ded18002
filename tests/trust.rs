//! Issue 21 on the real binary: the daemon acts only where the user's
//! session is, as it was, with no more power than it had.
//!
//! - the permission mode at the limit, read back from it in a > 1 MB
//!   transcript whose last user turn is > 256 KiB before the limit (after a
//!   first start and after a restart), said by `list`;
//! - a session directory replaced before the reset is not entered: failed
//!   with that reason, and `retry` takes it;
//! - a restart between typing into a TUI and its confirmation types once;
//! - a wait that goes on hours past the reset gives up, told;
//! - a headless `claude -p` child is not a TUI: its parent's pane gets
//!   nothing;
//! - stores, offsets and state files are created `0600`, folders `0700`.
//!
//! The tmux tests need `tmux` on PATH (skipped with one line without it,
//! unless `CI` is set).

#[path = "common/tmux.rs"]
mod tmux_check;
mod util;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use util::{append, wait_for, Env};

const SID: &str = "6873a0e2-51d4-4c3e-9a55-0d7c1b2f3e4d";

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The session's working directory and its Claude transcript's path.
fn session(env: &Env) -> (PathBuf, PathBuf) {
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let dirname = work.display().to_string().replace(['/', '.'], "-");
    let transcript = env
        .home
        .join(".claude/projects")
        .join(dirname)
        .join(format!("{SID}.jsonl"));
    (work, transcript)
}

fn user(work: &Path, at: chrono::DateTime<chrono::Utc>, mode: &str, text: &str) -> String {
    json!({"type":"user","message":{"role":"user","content":text},"permissionMode":mode,
           "entrypoint":"cli","cwd":work,"sessionId":SID,"timestamp":stamp(at)})
    .to_string()
        + "\n"
}

/// `bytes` of assistant output (lines of about 8 KB), no user turn.
fn agent_output(work: &Path, from: chrono::DateTime<chrono::Utc>, bytes: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.len() < bytes {
        let at = from + chrono::Duration::seconds(i);
        out.push_str(
            &json!({"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"w".repeat(8000)}]},
                    "cwd":work,"sessionId":SID,"timestamp":stamp(at)})
            .to_string(),
        );
        out.push('\n');
        i += 1;
    }
    out
}

/// Claude's limit entry, met at `at`, resetting at `reset`.
fn limit(
    work: &Path,
    at: chrono::DateTime<chrono::Utc>,
    reset: chrono::DateTime<chrono::Utc>,
) -> String {
    let text = format!(
        "You've hit your 5-hour limit · resets {} (UTC)",
        reset.format("%-I:%M%P")
    );
    json!({"type":"assistant","message":{"model":"<synthetic>","role":"assistant","content":[{"type":"text","text":text}]},
           "error":"rate_limit","apiError":"usage_limit_reached","isApiErrorMessage":true,
           "apiErrorParams":{"rate_limit_info":{"status":"rejected","resetsAt":reset.timestamp(),"rateLimitType":"five_hour"}},
           "sessionId":SID,"cwd":work,"timestamp":stamp(at)})
    .to_string()
        + "\n"
}

/// The head of the session: started in `bypassPermissions`, 500 KB of
/// work, then the user switched to `default` (the mode entry and the user's
/// turn) and asked it to go on.
fn head_then_switch(work: &Path) -> String {
    let t0 = now() - chrono::Duration::hours(3);
    let mut s = user(work, t0, "bypassPermissions", "refactor the parser");
    s.push_str(&agent_output(
        work,
        t0 + chrono::Duration::seconds(1),
        500 * 1024,
    ));
    let t1 = now() - chrono::Duration::hours(2);
    s.push_str(
        &(json!({"type":"permission-mode","permissionMode":"default","sessionId":SID}).to_string()
            + "\n"),
    );
    s.push_str(&user(work, t1, "default", "go on, but ask before editing"));
    s
}

/// The agent's long run after the switch (> 600 KB, no user turn), then
/// the limit; the reset two hours ahead.
fn long_run_then_limit(work: &Path) -> String {
    let t2 = now() - chrono::Duration::minutes(90);
    let mut s = agent_output(work, t2, 620 * 1024);
    s.push_str(&limit(
        work,
        now() - chrono::Duration::seconds(30),
        now() + chrono::Duration::hours(2),
    ));
    s
}

fn list_json(env: &Env) -> Vec<Value> {
    let (code, out, err) = env.run_cli(&["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The one pending incident, once `list` shows it.
fn pending_one(env: &Env) -> Value {
    let mut got = Vec::new();
    wait_for("the incident in `list`", || {
        got = list_json(env);
        got.len() == 1
    });
    got.remove(0)
}

fn claude_argvs(env: &Env) -> Vec<Vec<String>> {
    env.calls()
        .into_iter()
        .filter(|(c, _, _)| c == "claude")
        .map(|(_, _, a)| a)
        .collect()
}

fn wait_long(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn records(env: &Env) -> Vec<Value> {
    env.records(&env.store())
}

/// The resume runs in the mode in force at the limit (`default`), never in
/// the `bypassPermissions` of the file's head.
fn assert_resumed_in_default_mode(env: &Env) {
    let inc = pending_one(env);
    let id = inc["incident_id"].as_str().unwrap().to_string();
    // the record carries the mode the resume will run in
    let rec = records(env)
        .into_iter()
        .find(|r| r["incident_id"] == id.as_str())
        .unwrap();
    assert_eq!(rec["permission_mode"], "default", "{rec}");
    assert_eq!(inc["permission_mode"], "default", "{inc}");
    let (_, text, _) = env.run_cli(&["list"]);
    assert!(text.contains("permission mode default"), "{text}");
    let (code, _, err) = env.run_cli(&["resume-now", &id]);
    assert_eq!(code, 0, "{err}");
    wait_for("the resume", || !claude_argvs(env).is_empty());
    let argv = &claude_argvs(env)[0];
    assert!(
        !argv.iter().any(|a| a == "--dangerously-skip-permissions"),
        "escalated: {argv:?}"
    );
    assert!(
        argv.windows(2)
            .any(|w| w == ["--permission-mode", "default"]),
        "{argv:?}"
    );
}

#[test]
fn the_mode_at_the_limit_not_the_files_head_after_a_first_start() {
    let env = Env::new();
    let (work, transcript) = session(&env);
    let mut text = head_then_switch(&work);
    text.push_str(&long_run_then_limit(&work));
    assert!(text.len() > 1024 * 1024);
    append(&transcript, text.as_bytes());
    // the first start catches up on the limit near the file's end
    let daemon = env.start();
    assert_resumed_in_default_mode(&env);
    drop(daemon);
}

#[test]
fn the_mode_at_the_limit_not_the_files_head_after_a_restart() {
    let env = Env::new();
    let (work, transcript) = session(&env);
    append(&transcript, head_then_switch(&work).as_bytes());
    let daemon = env.start();
    env.wait_read_whole(&transcript);
    assert_eq!(daemon.terminate(), 0);
    // while it is down, the agent works on and meets the limit
    append(&transcript, long_run_then_limit(&work).as_bytes());
    assert!(std::fs::metadata(&transcript).unwrap().len() > 1024 * 1024);
    let daemon = env.start();
    assert_resumed_in_default_mode(&env);
    drop(daemon);
}

#[test]
fn a_replaced_session_directory_is_not_entered_and_retry_takes_it() {
    let env = Env::new();
    let (work, transcript) = session(&env);
    let t = now() - chrono::Duration::minutes(5);
    let mut text = user(&work, t, "acceptEdits", "hi");
    text.push_str(&limit(
        &work,
        t + chrono::Duration::seconds(3),
        now() + chrono::Duration::hours(2),
    ));
    append(&transcript, text.as_bytes());
    let daemon = env.start();
    let inc = pending_one(&env);
    let id = inc["incident_id"].as_str().unwrap().to_string();
    // someone deletes the directory and makes another at the same path,
    // with its own project settings
    std::fs::remove_dir_all(&work).unwrap();
    std::fs::create_dir_all(work.join(".claude")).unwrap();
    std::fs::write(
        work.join(".claude/settings.json"),
        r#"{"permissions":{"allow":["Bash(*)"]}}"#,
    )
    .unwrap();
    let (code, _, err) = env.run_cli(&["resume-now", &id]);
    assert_eq!(code, 0, "{err}");
    wait_for("the failed outcome", || !env.completes().is_empty());
    let c = &env.completes()[0];
    assert_eq!(c["status"], "failed", "{c}");
    assert!(c["error"].as_str().unwrap().contains("was replaced"), "{c}");
    assert!(
        claude_argvs(&env).is_empty(),
        "ran in the replaced directory"
    );
    // visible: status and history say why (the event follows the record)
    env.wait_status("the failed event in status", |status| {
        status["recent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "failed" && e["reason"].as_str().unwrap().contains("replaced"))
    });
    let (_, history, _) = env.run_cli(&["history"]);
    assert!(history.contains("was replaced"), "{history}");
    // the user says so: `retry` continues it in the directory as it is now
    let (code, out, err) = env.run_cli(&["retry", &id]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for("the retried resume", || !claude_argvs(&env).is_empty());
    assert_eq!(claude_argvs(&env).len(), 1);
    drop(daemon);
}

struct Sleeper(Child);
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn register(env: &Env, pid: u32, work: &Path, entrypoint: &str, tmux: Option<&str>) {
    let start = zag_resumed::live::proc::Procfs::system()
        .identity(pid)
        .unwrap()
        .start_ticks;
    let reg = env.home.join(".claude/sessions");
    std::fs::create_dir_all(&reg).unwrap();
    let mut e = json!({"pid":pid,"sessionId":SID,"cwd":work,"procStart":start.to_string(),
        "version":"2.1.332","kind":"interactive","entrypoint":entrypoint,"status":"idle"});
    if let Some(t) = tmux {
        e["tmux"] = json!(t);
    }
    std::fs::write(reg.join(format!("{pid}.json")), e.to_string()).unwrap();
}

#[test]
fn a_wait_hours_past_the_reset_gives_up_told_instead_of_acting() {
    let env = Env::new();
    let (work, transcript) = session(&env);
    // the open TUI, outside any multiplexer: the daemon can only wait
    let tui = Sleeper(
        Command::new("sleep")
            .arg("300")
            .env_remove("TMUX")
            .env_remove("STY")
            .spawn()
            .unwrap(),
    );
    register(&env, tui.0.id(), &work, "cli", None);
    let daemon = env.start();
    // a limit whose reset passed seven hours ago (the user left it overnight)
    let reset = now() - chrono::Duration::hours(7);
    let mut text = user(&work, reset - chrono::Duration::hours(1), "default", "hi");
    text.push_str(&limit(&work, reset - chrono::Duration::minutes(59), reset));
    append(&transcript, text.as_bytes());
    wait_for("the outcome", || !env.completes().is_empty());
    let c = &env.completes()[0];
    assert_eq!(c["status"], "failed", "{c}");
    assert!(c["error"].as_str().unwrap().starts_with("gave up"), "{c}");
    assert!(claude_argvs(&env).is_empty());
    let (_, history, _) = env.run_cli(&["history"]);
    assert!(history.contains("gave up"), "{history}");
    drop(daemon);
}

#[test]
fn stores_offsets_and_state_files_are_private() {
    // the usual umask: what the daemon creates must not rely on it
    unsafe { libc::umask(0o022) };
    let env = Env::new();
    let (work, transcript) = session(&env);
    let daemon = env.start();
    let t = now() - chrono::Duration::minutes(1);
    let mut text = user(&work, t, "default", "hi");
    text.push_str(&limit(&work, t, now() + chrono::Duration::hours(2)));
    append(&transcript, text.as_bytes());
    pending_one(&env);
    env.wait_read_whole(&transcript);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let state = env.zag.join("resumed");
    assert_eq!(mode(&env.store()), 0o600, "store");
    assert_eq!(mode(&state.join("offsets.json")), 0o600, "offsets");
    assert_eq!(mode(&state.join("daemon.lock")), 0o600, "lock");
    assert_eq!(mode(&state), 0o700, "state dir");
    // an existing store keeps its mode: not loosened (nor changed)
    std::fs::set_permissions(env.store(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, err) =
        env.run_cli(&["cancel", pending_one(&env)["incident_id"].as_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&env.store()), 0o640);
    drop(daemon);
}

// ---- the live TUI in tmux ----

/// A fake Claude TUI (bash) in a tmux pane: draws its `❯` input box with
/// what was typed so far; on Enter logs the line to `keys` at once, and
/// after `delay` s appends it to `transcript` as a user turn.
/// `before` runs first (a child to start, say). Returns the server, the
/// TUI's pid, and the socket directory to give the daemon.
fn claude_tui(
    dir: &Path,
    transcript: &Path,
    keys: &Path,
    delay: u32,
    before: &str,
) -> (tmux_check::Server, u32, PathBuf) {
    let tmpdir = dir.join("tmux");
    let sockdir = tmux_check::socket_dir(&tmpdir);
    let pidf = dir.join("tui.pid");
    let rule = "─".repeat(40);
    let script = dir.join("tui.sh");
    std::fs::write(
        &script,
        format!(
            "{before}\necho $$ > '{pid}'\nbuf=''\ndraw() {{ printf '\\033[H\\033[2J● ready\\n{rule}\\n❯ %s\\n{rule}\\n  ⏵⏵ auto mode on\\n' \"$buf\"; }}\ndraw\n\
             while IFS= read -rsn1 c; do\n  if [ -z \"$c\" ]; then\n    printf '%s\\n' \"$buf\" >> '{keys}'\n    line=$(printf '{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"%s\"}},\"sessionId\":\"{SID}\"}}' \"$buf\")\n    ( sleep {delay}; printf '%s\\n' \"$line\" >> '{tr}' ) &\n    buf=''\n  else buf=\"$buf$c\"; fi\n  draw\ndone\n",
            pid = pidf.display(),
            keys = keys.display(),
            tr = transcript.display(),
        ),
    )
    .unwrap();
    // a server on the daemon's socket directory (`$TMUX_TMPDIR/tmux-<uid>/`)
    let server = tmux_check::Server::start(
        &sockdir.join("default"),
        "agents",
        (150, 40),
        None,
        &format!("sh -c 'bash {}; true'", script.display()),
    );
    let pid = tmux_check::pid_written(&pidf);
    (server, pid, tmpdir)
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_restart_between_typing_and_its_confirmation_types_once() {
    if !tmux_check::available("trust tmux tests") {
        return;
    }
    let env = Env::new();
    let (work, transcript) = session(&env);
    let keys = env.dir.path().join("keys.log");
    let t = now() - chrono::Duration::minutes(3);
    let mut text = user(&work, t, "default", "hi");
    // reset passed 90 s ago: due at once; no arm record (auto-continue off)
    text.push_str(&limit(
        &work,
        t + chrono::Duration::seconds(2),
        now() - chrono::Duration::seconds(90),
    ));
    append(&transcript, text.as_bytes());
    // the TUI writes the typed turn 2 s after its Enter (a slow request;
    // the daemon is killed within milliseconds of the keystrokes)
    let (_server, pid, tmpdir) = claude_tui(env.dir.path(), &transcript, &keys, 2, "");
    register(&env, pid, &work, "cli", None);
    let vars = [("TMUX_TMPDIR", tmpdir.as_os_str())];
    let daemon = env.start_with(&[], &vars);
    wait_for("the keystrokes", || !lines_of(&keys).is_empty());
    // killed while it waits for the turn to show
    daemon.kill9();
    let intents: Vec<Value> = records(&env)
        .into_iter()
        .filter(|r| r["action"] == "schedule" && r["live"]["typed"].is_object())
        .collect();
    let daemon = env.start_with(&[], &vars);
    wait_long("the confirmed resume", Duration::from_secs(60), || {
        !env.completes().is_empty()
    });
    assert_eq!(lines_of(&keys), ["Continue"], "typed once in all");
    let c = &env.completes()[0];
    assert_eq!(c["status"], "resumed", "{c}");
    assert_eq!(
        intents.len(),
        1,
        "the intent is in the store before the keys"
    );
    assert_eq!(intents[0]["live"]["typed"]["text"], "Continue");
    assert!(
        claude_argvs(&env).is_empty(),
        "no headless run beside the TUI"
    );
    drop(daemon);
}

#[test]
fn a_headless_claude_child_is_not_a_tui_and_its_parents_pane_gets_nothing() {
    if !tmux_check::available("trust tmux tests") {
        return;
    }
    let env = Env::new();
    let (work, transcript) = session(&env);
    let keys = env.dir.path().join("keys.log");
    // inside the TUI's pane, a headless `claude -p` child (a stand-in that
    // lives a while), registered as `sdk-cli` with no tmux
    let childf = env.dir.path().join("child.pid");
    let (_server, _tui, tmpdir) = claude_tui(
        env.dir.path(),
        &transcript,
        &keys,
        0,
        &format!("sleep 300 & echo $! > '{}'", childf.display()),
    );
    let child: u32 = std::fs::read_to_string(&childf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    register(&env, child, &work, "sdk-cli", None);
    let daemon = env.start_with(&[], &[("TMUX_TMPDIR", tmpdir.as_os_str())]);
    let t = now() - chrono::Duration::minutes(3);
    let mut text = user(&work, t, "default", "hi");
    text.push_str(&limit(
        &work,
        t + chrono::Duration::seconds(2),
        now() - chrono::Duration::seconds(90),
    ));
    append(&transcript, text.as_bytes());
    let status = env.wait_status("the decision", |s| {
        s["pending"].as_array().is_some_and(|p| {
            p.iter().any(|v| {
                v["continued_by_why"]
                    .as_str()
                    .is_some_and(|w| w.contains("headless"))
            })
        })
    });
    assert!(
        lines_of(&keys).is_empty(),
        "typed into the parent's pane: {status}"
    );
    assert!(claude_argvs(&env).is_empty());
    // once the child is gone, the session is resumed headless, looked at
    // again at the child's exit rather than at the writer's 15 s retry
    let killed = std::time::Instant::now();
    unsafe { libc::kill(child as i32, libc::SIGKILL) };
    wait_long(
        "the resume after the child",
        Duration::from_secs(60),
        || !claude_argvs(&env).is_empty(),
    );
    assert!(lines_of(&keys).is_empty());
    let text = daemon.log_text();
    assert!(
        text.lines().any(|l| l
            .contains("the process that held the session exited: looking again now")
            && l.contains(&format!("pid={child}"))),
        "{text}"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(12),
        "resumed {:?} after the child's exit: the 15 s retry, not the exit",
        killed.elapsed()
    );
    drop(daemon);
}

#[test]
fn a_wait_is_told_once_across_a_restart_and_history_keeps_why() {
    let env = Env::new();
    let (work, transcript) = session(&env);
    let tui = Sleeper(
        Command::new("sleep")
            .arg("300")
            .env_remove("TMUX")
            .env_remove("STY")
            .spawn()
            .unwrap(),
    );
    register(&env, tui.0.id(), &work, "cli", None);
    let daemon = env.start();
    let t = now() - chrono::Duration::minutes(3);
    let mut text = user(&work, t, "default", "hi");
    text.push_str(&limit(
        &work,
        t + chrono::Duration::seconds(2),
        now() - chrono::Duration::seconds(90),
    ));
    append(&transcript, text.as_bytes());
    let routed = |s: &Value| -> Vec<Value> {
        s["recent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "routed")
            .cloned()
            .collect()
    };
    let status = env.wait_status("the wait", |s| !routed(s).is_empty());
    assert_eq!(routed(&status)[0]["notify"], true, "{status}");
    wait_for("the notification in the store", || {
        records(&env)
            .iter()
            .any(|r| r["live"]["notified_at"].is_string())
    });
    let (_, history, _) = env.run_cli(&["history"]);
    assert!(history.contains("waiting:"), "{history}");
    assert!(history.contains("outside tmux"), "{history}");
    daemon.kill9();
    // after a restart the same wait is not told again
    let daemon = env.start();
    let status = env.wait_status("the wait after the restart", |s| !routed(s).is_empty());
    assert_eq!(routed(&status)[0]["notify"], false, "{status}");
    assert!(claude_argvs(&env).is_empty());
    drop(daemon);
}

#[test]
fn scan_plan_says_the_mode_at_the_limit() {
    let env = Env::new();
    let (work, transcript) = session(&env);
    let mut text = head_then_switch(&work);
    text.push_str(&long_run_then_limit(&work));
    append(&transcript, text.as_bytes());
    let t = transcript.display().to_string();
    let (code, out, err) = env.run_cli(&["scan", "--plan", "--json", &t]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["plan"]["permission_mode"], "default", "{v}");
    let argv: Vec<String> = serde_json::from_value(v["plan"]["argv"].clone()).unwrap();
    assert!(
        !argv.iter().any(|a| a == "--dangerously-skip-permissions"),
        "{argv:?}"
    );
    let (_, text, _) = env.run_cli(&["scan", "--plan", &t]);
    assert!(text.contains("power: permission mode default"), "{text}");
}
