//! The user in control (issue 20), on the real binary: `pause`/`unpause`
//! across a restart, a custom `message` reaching a fake CLI's argv, short
//! prefixes refused, `retry` undoing a cancel, `retry --force` of a skipped
//! incident, `run --dry-run` doing nothing, and `service install`.

mod util;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use util::{append, pending_count, wait_for, Env};

const SID: &str = "6873a0e2-51d4-4c3e-9a55-0d7c1b2f3e4d";

/// A Claude transcript whose last entry is a limit with an exact reset
/// `reset_in` seconds from now (negative: already passed), written 150 s
/// ago; `after` more entries follow it in the same write.
fn limit_in_transcript(env: &Env, reset_in: i64, after: &[Value]) -> PathBuf {
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let dirname = work.display().to_string().replace(['/', '.'], "-");
    let transcript = env
        .home
        .join(".claude/projects")
        .join(dirname)
        .join(format!("{SID}.jsonl"));
    let hit = chrono::Utc::now() - chrono::Duration::seconds(150);
    let reset = chrono::Utc::now().timestamp() + reset_in;
    let user = json!({"type":"user","message":{"role":"user","content":"refactor the parser"},"cwd":work,"sessionId":SID,"timestamp":(hit - chrono::Duration::seconds(5)).to_rfc3339()});
    let limit = json!({"type":"assistant","message":{"model":"<synthetic>","role":"assistant","content":[{"type":"text","text":"You've hit your 5-hour limit · resets 11:59pm (UTC)"}]},"error":"rate_limit","isApiErrorMessage":true,"apiError":"usage_limit_reached","apiErrorStatus":429,"apiErrorParams":{"rate_limit_info":{"status":"rejected","resetsAt":reset,"rateLimitType":"five_hour"}},"sessionId":SID,"cwd":work,"timestamp":hit.to_rfc3339()});
    let mut text = format!("{user}\n{limit}\n");
    for a in after {
        text += &format!("{a}\n");
    }
    append(&transcript, text.as_bytes());
    transcript
}

/// A later turn that got a real answer: the session moved on.
fn moved_on_turns() -> Vec<Value> {
    let at = chrono::Utc::now() - chrono::Duration::seconds(60);
    vec![
        json!({"type":"user","message":{"role":"user","content":"never mind, do the docs"},"sessionId":SID,"timestamp":at.to_rfc3339()}),
        json!({"type":"assistant","message":{"model":"claude-sonnet-4","role":"assistant","content":[{"type":"text","text":"Docs updated."}]},"sessionId":SID,"timestamp":(at + chrono::Duration::seconds(5)).to_rfc3339()}),
    ]
}

fn records(env: &Env) -> Vec<Value> {
    env.records(&env.store())
}

fn pending_id(env: &Env) -> String {
    let status = env.status().expect("status");
    status["pending"][0]["incident_id"]
        .as_str()
        .expect("a pending incident")
        .to_string()
}

fn wait_pending(env: &Env, n: usize) -> Value {
    env.wait_status(&format!("{n} pending"), |s| pending_count(s) == n)
}

/// The arguments of the one call of the fake `claude`.
fn claude_args(env: &Env) -> Vec<String> {
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].2.clone()
}

#[test]
fn a_custom_message_is_recorded_shown_and_passed_to_the_respawn() {
    let env = Env::new();
    let daemon = env.start();
    limit_in_transcript(&env, 7200, &[]);
    wait_pending(&env, 1);
    let id = pending_id(&env);

    // Checked as the delivery checks it: refused, nothing written.
    let before = records(&env).len();
    for (bad, why) in [
        ("run the tests\nthen commit", "control characters"),
        ("   ", "empty"),
        ("-", "standard input"),
    ] {
        let (code, out, err) = env.run_cli(&["message", &id[..8], bad]);
        assert_eq!(code, 1, "{bad:?}: {out}{err}");
        assert!(err.contains(why), "{bad:?}: {err}");
    }
    assert_eq!(records(&env).len(), before);

    let text = "--help me: run the tests, then commit";
    let (code, out, err) = env.run_cli(&["message", &id[..8], text]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("will send your message"), "{out}");
    // In the store as zag reads it: the schedule again, last one wins.
    let last = records(&env)
        .into_iter()
        .rfind(|r| r["action"] == "schedule" && r["incident_id"] == id.as_str())
        .unwrap();
    assert_eq!(last["message"], text);
    assert_eq!(last["custom_message"], true);
    assert_eq!(last["requested"], "message");
    // Shown by list, status and history.
    let (_, list, _) = env.run_cli(&["list"]);
    assert!(list.contains(&format!("sends {text:?}")), "{list}");
    let s = env.wait_status("the message in status", |s| {
        s["pending"][0]["message"] == text
    });
    assert_eq!(s["pending"][0]["incident_id"], id.as_str());
    let (_, history, _) = env.run_cli(&["history"]);
    assert!(history.contains(&format!("message {text:?}")), "{history}");

    // Delivered now: the fake CLI gets it as one argument after `--`.
    let (code, out, err) = env.run_cli(&["resume-now", &id[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for("the respawn", || !env.calls().is_empty());
    wait_for("its complete record", || !env.completes().is_empty());
    let args = claude_args(&env);
    let dashdash = args.iter().position(|a| a == "--").expect("--");
    assert_eq!(args[dashdash + 1..], [text.to_string()], "{args:?}");
    assert!(!args.iter().any(|a| a == "Continue"), "{args:?}");
    assert_eq!(env.completes()[0]["status"], "resumed");
    drop(daemon);
}

#[test]
fn resume_now_with_a_message_sends_it_without_a_daemon_too() {
    let env = Env::new();
    let daemon = env.start();
    limit_in_transcript(&env, 7200, &[]);
    wait_pending(&env, 1);
    let id = pending_id(&env);
    assert_eq!(daemon.terminate(), 0);

    let (code, out, err) = env.run_cli(&["resume-now", &id, "--message", "carry on with step 3"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no daemon runs"), "{out}");
    let daemon = env.start();
    wait_for("the respawn", || !env.calls().is_empty());
    let args = claude_args(&env);
    assert_eq!(
        args.last().map(String::as_str),
        Some("carry on with step 3")
    );
    drop(daemon);
}

#[test]
fn a_prefix_shorter_than_4_characters_is_refused() {
    let env = Env::new();
    let id = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    let rec = json!({"action":"schedule","incident_id":id,"session_id":"s-1","provider":"claude","when":"2030-01-01T10:00:00Z","message":"Continue","attempt":1,"log_path":"","origin":"zag-resumed","cwd":"/tmp"});
    append(&env.store(), format!("{rec}\n").as_bytes());
    for cmd in [
        vec!["cancel", "3"],
        vec!["cancel", "3fa"],
        vec!["resume-now", "3fa"],
        vec!["message", "3fa", "hello"],
        vec!["retry", "3fa"],
    ] {
        let (code, out, err) = env.run_cli(&cmd);
        assert_eq!(code, 1, "{cmd:?}: {out}{err}");
        assert!(err.contains("too short"), "{cmd:?}: {err}");
        assert!(err.contains("at least 4 characters"), "{cmd:?}: {err}");
    }
    assert_eq!(records(&env).len(), 1, "nothing was written");
    // With a daemon running too.
    let daemon = env.start();
    let (code, _, err) = env.run_cli(&["cancel", "3fa"]);
    assert_eq!(code, 1);
    assert!(err.contains("too short"), "{err}");
    assert_eq!(pending_count(&env.status().unwrap()), 1);
    // Four characters name it.
    let (code, out, err) = env.run_cli(&["cancel", "3fa8"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("cancelled 3fa85f64"), "{out}");
    drop(daemon);
}

#[test]
fn retry_restores_a_cancelled_incident_at_its_due_time() {
    let env = Env::new();
    let daemon = env.start();
    limit_in_transcript(&env, 7200, &[]);
    wait_pending(&env, 1);
    let id = pending_id(&env);
    let when = env.status().unwrap()["pending"][0]["when"].clone();
    let (code, _, err) = env.run_cli(&["cancel", &id[..8]]);
    assert_eq!(code, 0, "{err}");
    wait_pending(&env, 0);

    let (code, out, err) = env.run_cli(&["retry", "--json", &id[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["retry_of"], id.as_str());
    let new_id = reply["incident_id"].as_str().unwrap().to_string();
    let s = wait_pending(&env, 1);
    assert_eq!(s["pending"][0]["incident_id"], new_id.as_str());
    // Restored as it was: due at the same time, not now.
    assert_eq!(s["pending"][0]["when"], when);
    assert!(env.calls().is_empty(), "nothing delivered early");
    let rec = records(&env)
        .into_iter()
        .find(|r| r["action"] == "schedule" && r["incident_id"] == new_id.as_str())
        .unwrap();
    assert_eq!(rec["requested"], "retry");
    assert_eq!(rec["retry_of"], id.as_str());
    drop(daemon);
}

#[test]
fn retry_force_delivers_a_skipped_incident_once_and_says_so() {
    let env = Env::new();
    let daemon = env.start();
    // Due now, and the session moved on since: skipped.
    limit_in_transcript(&env, -30, &moved_on_turns());
    wait_for("the skip", || !env.completes().is_empty());
    let skipped = env.completes()[0].clone();
    assert!(
        skipped["error"].as_str().unwrap().contains("moved on"),
        "{skipped}"
    );
    let first = skipped["incident_id"].as_str().unwrap().to_string();

    // A plain retry meets the same check and is skipped again.
    let (code, out, err) = env.run_cli(&["retry", "--json", &first[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    let second = again["incident_id"].as_str().unwrap().to_string();
    wait_for("the second skip", || env.completes().len() == 2);
    assert!(env.completes()[1]["error"]
        .as_str()
        .unwrap()
        .contains("moved on"));
    assert!(env.calls().is_empty());

    // --force: delivered, once, and recorded as forced.
    let (code, out, err) = env.run_cli(&["retry", "--force", &second[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("forced"), "{out}");
    wait_for("the forced delivery", || env.completes().len() == 3);
    assert_eq!(
        env.completes()[2]["status"],
        "resumed",
        "{:?}",
        env.completes()
    );
    assert_eq!(env.calls().len(), 1);
    let forced = records(&env)
        .into_iter()
        .filter(|r| r["action"] == "schedule" && r["force"] == true)
        .collect::<Vec<_>>();
    assert_eq!(forced.len(), 1, "{:?}", records(&env));
    assert_eq!(forced[0]["retry_of"], second.as_str());
    let (_, history, _) = env.run_cli(&["history"]);
    assert!(history.contains("forced"), "{history}");
    drop(daemon);
}

#[test]
fn a_pause_holds_resumes_across_a_restart_and_unpause_sends_one() {
    let env = Env::new();
    let daemon = env.start();
    let (code, out, err) = env.run_cli(&["pause"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("paused since"), "{out}");
    let file = env.zag.join("resumed/pause.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Detection and scheduling go on; the due resume is held.
    limit_in_transcript(&env, 2, &[]);
    let held = |s: &Value| {
        s["pending"][0]["continued_by"]
            .as_str()
            .is_some_and(|c| c.contains("paused"))
    };
    let s = env.wait_status("the incident held", held);
    assert!(s["paused"]["since"].is_string(), "{s}");
    let (_, status, _) = env.run_cli(&["status"]);
    assert!(status.contains("paused since"), "{status}");
    let (_, list, _) = env.run_cli(&["list"]);
    assert!(list.starts_with("paused since"), "{list}");
    let (_, history, _) = env.run_cli(&["history"]);
    assert!(history.starts_with("paused since"), "{history}");
    daemon.kill9();

    // Restarted: still paused, the overdue resume held again.
    let daemon = env.start();
    env.wait_status("held after the restart", held);
    assert!(env.calls().is_empty(), "nothing delivered while paused");
    assert!(env.completes().is_empty());

    let (code, out, err) = env.run_cli(&["unpause"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 held resume(s) go out"), "{out}");
    assert!(!file.exists());
    wait_for("the one continuation", || !env.completes().is_empty());
    assert_eq!(env.completes()[0]["status"], "resumed");
    assert_eq!(env.calls().len(), 1);
    let s = env.status().unwrap();
    assert!(s.get("paused").is_none(), "{s}");
    drop(daemon);
}

#[test]
fn pause_and_unpause_work_without_a_daemon() {
    let env = Env::new();
    let (code, out, err) = env.run_cli(&["pause", "--until", "2h", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["daemon_running"], false);
    assert!(reply["until"].is_string());
    let daemon = env.start();
    let s = env.status().unwrap();
    assert_eq!(s["paused"]["until"], reply["until"], "{s}");
    drop(daemon);
    for bad in ["yesterday", "2001-01-01T00:00:00Z"] {
        let (code, _, err) = env.run_cli(&["pause", "--until", bad]);
        assert_eq!(code, 1, "{bad}");
        assert!(err.contains("--until"), "{err}");
    }
    let (code, out, _) = env.run_cli(&["unpause"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("unpaused"), "{out}");
    let (_, out, _) = env.run_cli(&["unpause"]);
    assert_eq!(out, "zag-resumed was not paused\n");
}

#[test]
fn dry_run_decides_and_logs_but_writes_types_and_starts_nothing() {
    let env = Env::new();
    // A limit already in the HOME: the first start catches up on it.
    let transcript = limit_in_transcript(&env, -30, &[]);
    let before = std::fs::read(&transcript).unwrap();
    let daemon = env.start_with(&["--dry-run"], &[]);
    daemon.wait_log("dry run: would record this limit's resume in");
    daemon.wait_log("dry run: would run ");
    let log = daemon.log_text();
    let would = log
        .lines()
        .find(|l| l.contains("dry run: would run "))
        .unwrap();
    assert!(would.contains(" --resume "), "{would}");
    // Log fields print bare (issue 20, item 7).
    assert!(log.contains("catching up on a limit"), "{log}");
    assert!(log.contains(" reset_at=20"), "{log}");
    assert!(!log.contains("Some("), "{log}");
    assert!(
        would.contains(&format!("in {}", env.dir.path().join("proj").display())),
        "{would}"
    );
    // It answers status and list, and says it is a dry run.
    let s = env.status().unwrap();
    assert_eq!(s["dry_run"], true, "{s}");
    let (_, status, _) = env.run_cli(&["status"]);
    assert!(status.contains("DRY RUN"), "{status}");
    // Nothing written, typed or started.
    assert!(!env.store().exists(), "no store record");
    assert!(!env.zag.join("resumed/offsets.json").exists());
    assert!(env.calls().is_empty(), "no process started");
    assert_eq!(std::fs::read(&transcript).unwrap(), before);
    assert_eq!(daemon.terminate(), 0);
    assert!(!env.store().exists());
}

#[test]
fn dry_run_lists_a_new_limit_it_would_schedule() {
    let env = Env::new();
    let daemon = env.start_with(&["--dry-run"], &[]);
    limit_in_transcript(&env, 7200, &[]);
    let s = wait_pending(&env, 1);
    assert_eq!(s["pending"][0]["provider"], "claude");
    let (_, list, _) = env.run_cli(&["list"]);
    assert!(list.contains("claude"), "{list}");
    // A cancel would write: refused, saying why.
    let id = pending_id(&env);
    let (code, _, err) = env.run_cli(&["cancel", &id]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no incident matches") || err.contains("dry-run"),
        "{err}"
    );
    assert!(!env.store().exists());
    drop(daemon);
}

/// `systemd-analyze`, or why the check is skipped (never skipped in CI).
fn systemd_analyze() -> Option<PathBuf> {
    let found = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("systemd-analyze"));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "systemd-analyze is not installed, and CI is set (apt-get install systemd)"
    );
    eprintln!("SKIP systemd-analyze verify: systemd-analyze is not installed");
    None
}

#[test]
fn service_install_print_shows_a_unit_that_verifies() {
    let env = Env::new();
    let (code, unit, err) = env.run_cli(&["service", "install", "--print"]);
    assert_eq!(code, 0, "{err}");
    let bin = std::fs::canonicalize(util::BIN).unwrap();
    assert!(
        unit.contains(&format!("\nExecStart=\"{}\" run\n", bin.display())),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("\nEnvironment=\"PATH={}:", env.bin.display())),
        "the shell's PATH: {unit}"
    );
    assert!(unit.contains("Type=notify") && unit.contains("WantedBy=default.target"));
    // --print writes nothing.
    assert!(!env.home.join(".config/systemd").exists());

    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let dir = env.dir.path().join("verify");
    std::fs::create_dir_all(dir.join("runtime")).unwrap();
    let file = dir.join("zag-resumed.service");
    std::fs::write(&file, &unit).unwrap();
    let out = std::process::Command::new(analyze)
        .args(["--user", "verify"])
        .arg(&file)
        .env("HOME", &env.home)
        .env("XDG_RUNTIME_DIR", dir.join("runtime"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.trim().is_empty(), "systemd-analyze complained: {said}");
}

/// A fake `systemctl` that records its arguments, one call a line, and
/// fails `show-environment` when `unreachable` exists.
fn fake_systemctl(env: &Env) -> (PathBuf, PathBuf) {
    let log = env.dir.path().join("systemctl.log");
    let down = env.dir.path().join("unreachable");
    let script = env.dir.path().join("systemctl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\nif [ \"$2\" = show-environment ] && [ -e '{down}' ]; then echo 'Failed to connect to bus: No medium found' >&2; exit 1; fi\nexit 0\n",
            log = log.display(),
            down = down.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

fn service(env: &Env, systemctl: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["service"];
    all.extend_from_slice(args);
    let out = env
        .cmd(&all)
        .env("ZAG_RESUMED_SYSTEMCTL", systemctl)
        .env("XDG_CONFIG_HOME", env.dir.path().join("config"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn service_install_is_idempotent_and_leaves_an_edited_unit_alone() {
    let env = Env::new();
    let (systemctl, log) = fake_systemctl(&env);
    let unit = env
        .dir
        .path()
        .join("config/systemd/user/zag-resumed.service");
    let calls = || std::fs::read_to_string(&log).unwrap_or_default();

    let (code, out, err) = service(&env, &systemctl, &["install"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("wrote {}", unit.display())), "{out}");
    assert!(out.contains("ran "), "{out}");
    let (_, printed, _) = service(&env, &systemctl, &["install", "--print"]);
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), printed);
    assert_eq!(
        calls(),
        "--user show-environment\n--user daemon-reload\n--user enable zag-resumed.service\n--user restart zag-resumed.service\n"
    );

    // Again: nothing to change, the service is only made sure to run.
    let (code, out, _) = service(&env, &systemctl, &["install"]);
    assert_eq!(code, 0);
    assert!(out.contains("already up to date"), "{out}");
    assert!(
        calls().ends_with("--user start zag-resumed.service\n"),
        "{}",
        calls()
    );

    // Edited by the user: left alone unless --force.
    let edited = printed.replace("RestartSec=5s", "RestartSec=1s");
    std::fs::write(&unit, &edited).unwrap();
    let (code, _, err) = service(&env, &systemctl, &["install"]);
    assert_eq!(code, 1);
    assert!(err.contains("was changed since"), "{err}");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), edited);
    let (code, _, err) = service(&env, &systemctl, &["uninstall"]);
    assert_eq!(code, 1, "{err}");
    assert!(unit.exists());
    let (code, out, _) = service(&env, &systemctl, &["install", "--force"]);
    assert_eq!(code, 0);
    assert!(out.contains("updated"), "{out}");
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), printed);

    let (code, out, _) = service(&env, &systemctl, &["status"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("as `service install` would write it now"),
        "{out}"
    );

    // No user manager: the unit is still written, and the command says so.
    std::fs::remove_file(&unit).unwrap();
    std::fs::write(env.dir.path().join("unreachable"), "").unwrap();
    let (code, _, err) = service(&env, &systemctl, &["install"]);
    assert_eq!(code, 1);
    assert!(err.contains("written but not started"), "{err}");
    assert!(err.contains("Failed to connect to bus"), "{err}");
    assert!(unit.exists());

    let (code, out, _) = service(&env, &systemctl, &["uninstall"]);
    assert_eq!(code, 0);
    assert!(out.contains("removed"), "{out}");
    assert!(!unit.exists());
}

/// `scan --plan` run with a PATH that has no provider CLIs on it.
fn plan_without_clis(env: &Env, file: &Path) -> (i32, Value, String) {
    let out = env
        .cmd(&["scan", "--plan", "--json", &file.display().to_string()])
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: Value = serde_json::from_str(text.lines().next().unwrap_or("null")).unwrap();
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn scan_plan_asks_the_daemon_for_binaries_and_shows_the_users_message() {
    let env = Env::new();
    let transcript = limit_in_transcript(&env, 7200, &[]);
    // No daemon: the client's PATH, and it says so.
    let (code, v, err) = plan_without_clis(&env, &transcript);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("no daemon runs: provider CLIs looked up with this shell's PATH"),
        "{err}"
    );
    assert!(
        v["plan"]["how"].as_str().unwrap().starts_with("fails:"),
        "{v}"
    );

    // A daemon whose PATH has `claude`: its answer is used.
    let daemon = env.start();
    env.wait_status("the pending incident", |s| pending_count(s) == 1);
    let id = pending_id(&env);
    let (code, _, err) = env.run_cli(&["message", &id[..8], "finish the refactor"]);
    assert_eq!(code, 0, "{err}");
    let (code, v, err) = plan_without_clis(&env, &transcript);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("no daemon runs"), "{err}");
    let argv: Vec<String> = serde_json::from_value(v["plan"]["argv"].clone()).unwrap();
    assert_eq!(argv[0], env.bin.join("claude").display().to_string(), "{v}");
    assert_eq!(argv.last().unwrap(), "finish the refactor", "{v}");
    assert_eq!(v["plan"]["message"], "finish the refactor", "{v}");
    assert!(env.calls().is_empty());
    drop(daemon);
}

/// Another limit entry of the same session, hit `hit_ago` seconds ago,
/// with the reset at `reset` (epoch seconds).
fn another_limit(env: &Env, reset: i64, hit_ago: i64) {
    let work = env.dir.path().join("proj");
    let dirname = work.display().to_string().replace(['/', '.'], "-");
    let transcript = env
        .home
        .join(".claude/projects")
        .join(dirname)
        .join(format!("{SID}.jsonl"));
    let hit = chrono::Utc::now() - chrono::Duration::seconds(hit_ago);
    let user = json!({"type":"user","message":{"role":"user","content":"try again"},"cwd":work,"sessionId":SID,"timestamp":(hit - chrono::Duration::seconds(2)).to_rfc3339()});
    let limit = json!({"type":"assistant","message":{"model":"<synthetic>","role":"assistant","content":[{"type":"text","text":"You've hit your 5-hour limit · resets 11:59pm (UTC)"}]},"error":"rate_limit","isApiErrorMessage":true,"apiError":"usage_limit_reached","apiErrorStatus":429,"apiErrorParams":{"rate_limit_info":{"status":"rejected","resetsAt":reset,"rateLimitType":"five_hour"}},"sessionId":SID,"cwd":work,"timestamp":hit.to_rfc3339()});
    append(&transcript, format!("{user}\n{limit}\n").as_bytes());
}

#[test]
fn a_new_limit_in_a_cancelled_incidents_window_is_said_not_dropped() {
    let env = Env::new();
    let daemon = env.start();
    limit_in_transcript(&env, 7200, &[]);
    let s = wait_pending(&env, 1);
    let id = pending_id(&env);
    let reset = chrono::DateTime::parse_from_rfc3339(s["pending"][0]["when"].as_str().unwrap())
        .unwrap()
        .timestamp();
    let (code, _, err) = env.run_cli(&["cancel", &id[..8]]);
    assert_eq!(code, 0, "{err}");
    wait_pending(&env, 0);

    // The user pokes the session: the same limit, the same reset.
    another_limit(&env, reset, 10);
    daemon.wait_log("in the same reset window");
    let s = env.wait_status("the skipped event", |s| {
        s["recent"]
            .as_array()
            .is_some_and(|r| r.iter().any(|e| e["event"] == "skipped"))
    });
    let ev = s["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "skipped")
        .unwrap()
        .clone();
    assert_eq!(ev["incident_id"], id.as_str());
    assert!(
        ev["reason"].as_str().unwrap().contains("zag-resumed retry"),
        "{ev}"
    );
    assert_eq!(
        pending_count(&s),
        0,
        "still not scheduled: the tombstone is final"
    );
    drop(daemon);
}

#[test]
fn stop_is_logged_and_recent_outcomes_survive_a_restart() {
    let env = Env::new();
    let daemon = env.start();
    limit_in_transcript(&env, -30, &[]);
    wait_for("the resume", || !env.completes().is_empty());
    let id = env.completes()[0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = env.run_cli(&["stop"]);
    assert_eq!(code, 0, "{out}{err}");
    let log = daemon.log_text();
    assert!(
        log.contains("stop requested over the control socket"),
        "{log}"
    );
    assert!(log.contains("zag-resumed stopped"), "{log}");
    drop(daemon);

    let daemon = env.start();
    let s = env.wait_status("recent filled from the stores", |s| {
        !util::recent_events(s).is_empty()
    });
    let recent = s["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 1, "{s}");
    assert_eq!(recent[0]["event"], "resumed");
    assert_eq!(recent[0]["incident_id"], id.as_str());
    assert_eq!(env.calls().len(), 1, "not delivered again");
    drop(daemon);
}

#[test]
fn verbose_logs_every_decision_of_the_planner_and_the_router() {
    let env = Env::new();
    let no_rust_log = [("RUST_LOG", std::ffi::OsStr::new(""))];
    let daemon = env.start_with(&["-v"], &no_rust_log);
    limit_in_transcript(&env, -30, &[]);
    wait_for("the resume", || !env.completes().is_empty());
    daemon.wait_log("planner: record ");
    let log = daemon.log_text();
    for decision in [
        "planner: a limit to resume",
        "planner: no live resume of this session stands in the way",
        "planner: a new incident: writing its schedule",
        "planner: deliver",
        "router: ",
        "planner: record {\"action\":\"complete\"",
    ] {
        assert!(log.contains(decision), "{decision}: {log}");
    }
    assert_eq!(daemon.terminate(), 0);

    // Without -v: none of it.
    let env = Env::new();
    let daemon = env.start_with(&[], &no_rust_log);
    limit_in_transcript(&env, -30, &[]);
    wait_for("the resume", || !env.completes().is_empty());
    assert_eq!(daemon.terminate(), 0);
    let log = daemon_log_of(&env);
    assert!(
        !log.contains("planner:") && !log.contains("router:"),
        "{log}"
    );
}

/// Every daemon log of an environment, concatenated.
fn daemon_log_of(env: &Env) -> String {
    let mut logs: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("daemon-"))
        })
        .collect();
    logs.sort();
    logs.iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}
