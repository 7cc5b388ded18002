//! Crash safety: SIGKILL the real daemon at random moments while limits
//! arrive and resumes fire, restart it, and check that every incident was
//! delivered exactly once, a kill inside a delivery (the CLI started, its
//! `complete` not yet durable) included: the restart finds the delivery's
//! attempt started (or its CLI still running) and records it instead of
//! sending it again. Three kills at named points pin the cases down: while
//! the resumed CLI runs, after the attempt is durable but before the spawn,
//! and right after the spawn.
//!
//! The default run makes a handful of kills. The long mode makes 200 or
//! more: `ZAG_RESUMED_CRASH_KILLS=200 cargo test --test crash -- --nocapture`.
//! `ZAG_RESUMED_CRASH_SEED` replays a run.

mod util;

use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use util::{
    append, append_claude_limited_turn, claude_transcript_path, now_epoch, wait_for, zag_line, Env,
};

/// splitmix64: a small, seedable, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

struct Session {
    /// Its incident's `session_id`: the zag wrapper id, or for a native
    /// session Claude's own.
    wrapper: String,
    sid: String,
}

/// A session that hits a limit resetting in `reset_in` seconds: a zag
/// session (log + Claude transcript), or with `native` a Claude session
/// alone (no zag log: no resumed turn is logged there, so only the
/// delivery attempt tells a restart it was delivered).
fn limited_session(env: &Env, n: usize, reset_in: i64, native: bool) -> Session {
    let wrapper = format!("w-{n:04}");
    let sid = format!("00000000-0000-4000-8000-{n:012}");
    let work = env.dir.path().join("work");
    let dirname = work.display().to_string().replace(['/', '.'], "-");
    let transcript = env
        .home
        .join(".claude/projects")
        .join(dirname)
        .join(format!("{sid}.jsonl"));
    let ts = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    append(&transcript, format!("{}\n", json!({"type":"user","message":{"role":"user","content":"go"},"cwd":work,"sessionId":sid,"timestamp":ts})).as_bytes());
    let limit = format!("Claude AI usage limit reached|{}", now_epoch() + reset_in);
    if native {
        let hit = chrono::Utc::now() - chrono::Duration::seconds(1);
        append_claude_limited_turn(&transcript, &work, &sid, "go on", &limit, hit);
        return Session {
            wrapper: sid.clone(),
            sid,
        };
    }
    let log = env
        .zag
        .join("logs/sessions")
        .join(format!("{wrapper}.jsonl"));
    let mut text = zag_line(
        1,
        &wrapper,
        Some(&sid),
        "session_started",
        json!({"command":"exec","cwd":work,"resumed":false,"backfilled":false}),
    );
    text += &zag_line(
        2,
        &wrapper,
        Some(&sid),
        "assistant_message",
        json!({ "content": limit }),
    );
    append(&log, text.as_bytes());
    Session { wrapper, sid }
}

/// Resume calls per Claude session id.
fn calls_by_session(env: &Env) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, _, args) in env.calls() {
        if let Some(i) = args.iter().position(|a| a == "--resume") {
            *out.entry(args[i + 1].clone()).or_default() += 1;
        }
    }
    out
}

/// Wrapper ids whose incident has a `complete` record.
fn completed(env: &Env) -> BTreeSet<String> {
    let recs = env.records(&env.store());
    let done: BTreeSet<&str> = recs
        .iter()
        .filter(|r| r["action"] == "complete")
        .filter_map(|r| r["incident_id"].as_str())
        .collect();
    recs.iter()
        .filter(|r| {
            r["action"] == "schedule"
                && r["incident_id"]
                    .as_str()
                    .is_some_and(|id| done.contains(id))
        })
        .filter_map(|r| r["session_id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn random_sigkills_never_lose_or_double_a_resume() {
    let kills = env_u64("ZAG_RESUMED_CRASH_KILLS").unwrap_or(8) as usize;
    let seed = env_u64("ZAG_RESUMED_CRASH_SEED").unwrap_or_else(|| now_epoch() as u64);
    eprintln!("crash test: {kills} kills, seed {seed} (ZAG_RESUMED_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let env = Env::new();
    std::fs::create_dir_all(env.dir.path().join("work")).unwrap();
    // A CLI that records its call at once, then takes a moment, so some
    // kills land inside the delivery window.
    env.fake_cli(
        "claude",
        r#"{"type":"result","subtype":"success","is_error":false,"result":"ok"}"#,
        0,
    );
    let script = env.bin.join("claude");
    let body = std::fs::read_to_string(&script).unwrap().replacen(
        "cat <<'__OUT__'",
        "sleep 0.05\ncat <<'__OUT__'",
        1,
    );
    assert!(body.contains("sleep 0.05"), "the fake CLI changed shape");
    std::fs::write(&script, body).unwrap();

    let mut sessions = Vec::new();
    // Sessions whose delivery was under way (CLI called, no `complete` yet)
    // when a kill landed: where a repeat would come from.
    let mut in_window: BTreeSet<String> = BTreeSet::new();
    // The first start is a first run (existing files are history): start it
    // before any limit exists.
    let mut daemon = Some(env.start());
    for round in 0..kills {
        // Limits arrive: some while the daemon runs, some while it is down.
        for _ in 0..=rng.below(2) {
            let reset_in = 1 + rng.below(2) as i64;
            let native = rng.below(2) == 0;
            sessions.push(limited_session(&env, sessions.len(), reset_in, native));
        }
        if daemon.is_none() {
            daemon = Some(env.start());
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        daemon.take().unwrap().kill9();
        // What was delivered (CLI started) but not committed at the kill. A
        // CLI started just before the kill outlives it; give it the moment
        // it needs to record its call.
        std::thread::sleep(Duration::from_millis(150));
        let calls = calls_by_session(&env);
        let done = completed(&env);
        for s in &sessions {
            if calls.contains_key(&s.sid) && !done.contains(&s.wrapper) {
                in_window.insert(s.sid.clone());
            }
        }
        if round % 50 == 49 {
            eprintln!("  {} kills, {} sessions so far", round + 1, sessions.len());
        }
    }

    // A last, undisturbed run delivers everything still pending.
    let daemon = env.start();
    wait_for("every incident to complete", || {
        completed(&env).len() == sessions.len()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(daemon.terminate(), 0);

    let calls = calls_by_session(&env);
    for s in &sessions {
        let n = calls.get(&s.sid).copied().unwrap_or(0);
        assert!(n >= 1, "lost: session {} was never resumed", s.wrapper);
        assert_eq!(
            n,
            1,
            "session {} resumed {n} times (inside the delivery window at a kill: {})",
            s.wrapper,
            in_window.contains(&s.sid)
        );
    }
    // One schedule per session: restarts re-read lines, dedupe held.
    let recs = env.records(&env.store());
    let mut schedules: BTreeMap<String, usize> = BTreeMap::new();
    for r in recs.iter().filter(|r| r["action"] == "schedule") {
        *schedules
            .entry(r["session_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for s in &sessions {
        assert_eq!(
            schedules.get(&s.wrapper),
            Some(&1),
            "session {} has {:?} schedule records",
            s.wrapper,
            schedules.get(&s.wrapper)
        );
    }
    // How many a restart found started by an earlier run and recorded.
    let settled = env
        .records(&env.store())
        .iter()
        .filter(|r| r["action"] == "complete")
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("delivered before a restart"))
        })
        .count();
    eprintln!(
        "crash test: {kills} kills, {} incidents, each delivered exactly once ({} of them were inside their delivery window at a kill; {settled} recorded by a restart as delivered before it)",
        sessions.len(),
        in_window.len()
    );
    assert!(
        std::fs::read_dir(env.zag.join("resumed/deliveries")).map_or(true, |rd| rd.count() == 0),
        "every incident's delivery attempts removed once complete"
    );
}

/// A Claude CLI that records its call at once, then runs `secs` seconds.
fn slow_claude(env: &Env, secs: f32) {
    let script = env.bin.join("claude");
    let body = std::fs::read_to_string(&script).unwrap().replacen(
        "cat <<'__OUT__'",
        &format!("sleep {secs}\ncat <<'__OUT__'"),
        1,
    );
    assert!(body.contains("sleep "), "the fake CLI changed shape");
    std::fs::write(&script, body).unwrap();
}

const SID: &str = "11111111-2222-4333-8444-555555555555";

/// A native Claude session (no zag log: no resumed turn is logged, only
/// the delivery attempt tells a restart it was delivered) whose limit
/// reset a moment ago: due at once.
fn native_hit(env: &Env) -> std::path::PathBuf {
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let transcript = claude_transcript_path(env, &work, SID);
    let reset = chrono::Utc::now() - chrono::Duration::seconds(30);
    let text = format!("Claude AI usage limit reached|{}", reset.timestamp());
    let hit = chrono::Utc::now() - chrono::Duration::seconds(60);
    append_claude_limited_turn(&transcript, &work, SID, "hi", &text, hit);
    transcript
}

/// Wait for the incident's `complete` (the only one): its `detail`.
fn one_complete(env: &Env) -> String {
    wait_for("the complete record", || !env.completes().is_empty());
    let done = env.completes();
    assert_eq!(done.len(), 1, "{done:?}");
    done[0]["detail"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_kill_while_the_resumed_cli_runs_does_not_deliver_it_again() {
    let env = Env::new();
    slow_claude(&env, 4.0);
    let daemon = env.start();
    native_hit(&env);
    wait_for("the resumed CLI to start", || !env.calls().is_empty());
    daemon.kill9();
    // The CLI outlives the kill (its own process group) and still runs.
    let daemon = env.start();
    let detail = one_complete(&env);
    assert_eq!(env.calls().len(), 1, "delivered again after the restart");
    assert!(
        detail.contains("delivered before a restart"),
        "recorded as delivered by the earlier run: {detail}"
    );
    assert_eq!(daemon.terminate(), 0);
    assert_eq!(env.calls().len(), 1);
}

#[test]
fn a_kill_after_the_attempt_is_durable_before_the_spawn_is_delivered_once_by_the_restart() {
    let env = Env::new();
    let mut daemon = env.start_with(
        &[],
        &[(
            "ZAG_RESUMED_KILL_AT",
            std::ffi::OsStr::new("attempt-claimed"),
        )],
    );
    native_hit(&env);
    assert_eq!(daemon.wait_exit(), -1, "killed at the point");
    assert!(daemon
        .log_text()
        .contains("injected SIGKILL at attempt-claimed"));
    let attempt = env.zag.join("resumed/deliveries");
    assert_eq!(
        std::fs::read_dir(&attempt).unwrap().count(),
        1,
        "the attempt was durable"
    );
    assert!(env.calls().is_empty(), "nothing started before the kill");
    let daemon = env.start();
    let detail = one_complete(&env);
    assert_eq!(env.calls().len(), 1, "{:?}", env.calls());
    assert!(!detail.contains("before a restart"), "{detail}");
    assert_eq!(daemon.terminate(), 0);
    assert!(
        std::fs::read_dir(&attempt).unwrap().next().is_none(),
        "its attempts removed once complete"
    );
}

#[test]
fn a_kill_right_after_the_spawn_is_delivered_once() {
    let env = Env::new();
    let mut daemon = env.start_with(
        &[],
        &[("ZAG_RESUMED_KILL_AT", std::ffi::OsStr::new("cli-started"))],
    );
    native_hit(&env);
    assert_eq!(daemon.wait_exit(), -1, "killed at the point");
    assert!(daemon
        .log_text()
        .contains("injected SIGKILL at cli-started"));
    wait_for("the started CLI to record its call", || {
        !env.calls().is_empty()
    });
    let daemon = env.start();
    let detail = one_complete(&env);
    assert_eq!(env.calls().len(), 1, "{:?}", env.calls());
    assert!(detail.contains("delivered before a restart"), "{detail}");
    assert_eq!(daemon.terminate(), 0);
}
