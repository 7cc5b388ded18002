//! The real daemon with a Claude session whose TUI is still open and whose
//! own auto-continue is armed (a fake registry entry naming a live process,
//! the captured arm record in the transcript): at the reset the daemon
//! stands down. The incident stays the one pending incident of its session,
//! nothing is respawned, and `status`/`list`/`subscribe` say Claude Code's
//! own continue has it. Once the process is gone, it is resumed headless
//! exactly once.
//!
//! The daemon runs in this process on a manual clock: the 30 s until its
//! next look pass in no time.

mod util;

use serde_json::json;
use std::process::{Child, Command};
use util::{append, wait_for, Env};
use zag_resumed::clock::{Clock, ManualClock};

const SID: &str = "6873a0e2-51d4-4c3e-9a55-0d7c1b2f3e4d";

struct Sleeper(Child);
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn actions(env: &Env) -> Vec<String> {
    env.records(&env.store())
        .iter()
        .filter_map(|r| r["action"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn armed_with_the_tui_open_the_daemon_stands_down_and_shows_who_continues() {
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    // the open TUI: a live process the registry names, outside tmux
    let tui = Sleeper(
        Command::new("sleep")
            .arg("300")
            .env_remove("TMUX")
            .env_remove("STY")
            .spawn()
            .unwrap(),
    );
    let pid = tui.0.id();
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

    let clock = ManualClock::new(chrono::Utc::now());
    let dirname = work.display().to_string().replace(['/', '.'], "-");
    let transcript = env
        .home
        .join(".claude/projects")
        .join(dirname)
        .join(format!("{SID}.jsonl"));
    let now = clock.now();
    let hit_ts = now - chrono::Duration::seconds(150);
    // the reset is past: due at once, and still inside Claude's grace
    // (minute precision, read as the end of its minute: 90 s back keeps it
    // in the past whatever second it is now)
    let reset = now - chrono::Duration::seconds(90);
    let text = format!(
        "You've hit your session limit · resets {} (UTC)",
        reset.format("%-I:%M%P")
    );
    let user = json!({"type":"user","message":{"role":"user","content":"hi"},"cwd":work,"sessionId":SID,"timestamp":(hit_ts - chrono::Duration::seconds(5)).to_rfc3339()});
    let limit = json!({"type":"assistant","message":{"model":"<synthetic>","role":"assistant","content":[{"type":"text","text":text}]},"error":"rate_limit","apiError":"usage_limit_reached","isApiErrorMessage":true,"sessionId":SID,"cwd":work,"timestamp":hit_ts.to_rfc3339()});
    // Claude Code 2.1.332's arm notice, as captured
    let armed = json!({"type":"system","subtype":"informational","level":"notice","isMeta":false,
        "content":format!("Usage limit reached · set to continue automatically at {}", reset.format("%-I:%M%P")),
        "sessionId":SID,"cwd":work,"timestamp":(hit_ts + chrono::Duration::milliseconds(5)).to_rfc3339()});
    // The session's prompt is there before the daemon starts; the limit
    // comes once its transcript is watched.
    append(&transcript, format!("{user}\n").as_bytes());
    let daemon = env.start_in_process(clock.clone());
    env.wait_status("the transcript to be watched", |s| {
        s["watched"]["claude_native"] == 1
    });
    append(&transcript, format!("{limit}\n{armed}\n").as_bytes());

    let status = env.wait_status("the stand-down", |s| {
        s["pending"].as_array().is_some_and(|p| {
            p.iter()
                .any(|v| v["continued_by"] == "Claude Code's own continue")
        })
    });
    let pending = status["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{status}");
    assert!(
        pending[0]["continued_by_why"]
            .as_str()
            .unwrap()
            .contains("armed"),
        "{status}"
    );
    assert!(
        status["recent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "routed" && e["continued_by"] == "Claude Code's own continue"),
        "{status}"
    );
    let (code, list, _) = env.run_cli(&["list"]);
    assert_eq!(code, 0);
    assert!(
        list.contains("continued by Claude Code's own continue"),
        "{list}"
    );
    assert!(
        env.calls().is_empty(),
        "no headless run while the TUI lives"
    );
    assert_eq!(
        actions(&env),
        ["schedule"],
        "still the one pending incident"
    );

    // The TUI exits during the wait (killed: no warning written). The next
    // look (every 30 s) finds nobody and resumes it headless, once.
    drop(tui);
    assert!(
        env.calls().is_empty(),
        "nothing before the next look, however long the test runs"
    );
    clock.advance(chrono::Duration::seconds(
        zag_resumed::resume::route::RECHECK_SECS + 1,
    ));
    let t0 = std::time::Instant::now();
    while env.calls().is_empty() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(50),
            "no resume after the owner left"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    wait_for("the complete record", || {
        actions(&env).contains(&"complete".to_string())
    });
    assert_eq!(env.calls().len(), 1);
    assert_eq!(actions(&env), ["schedule", "complete"]);
    drop(daemon);
}
