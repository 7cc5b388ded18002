//! End to end: the real daemon binary, a temporary HOME, a fake `claude` on
//! PATH. A limit lands in a zag session log or in Claude's own transcript;
//! the daemon must persist it, resume exactly once at the reset, survive a
//! SIGKILL in between, obey a cancel written by another process, and shrug
//! off hostile input.

mod util;

use serde_json::json;
use std::path::PathBuf;
use util::{
    adoption_env, append, append_claude_limited_turn, claude_limit, claude_limit_text,
    claude_transcript, claude_transcript_path, claude_user, gemini_env, gemini_quota_in_spawn_log,
    gemini_zag_log, now_epoch, pending_count, recent_events, wait_for, zag_exec_log,
    zag_exec_record, zag_line, Env,
};

const SID: &str = "6873a0e2-51d4-4c3e-9a55-0d7c1b2f3e4d";

/// A zag exec session log (global project) with identity lines, and the
/// Claude transcript behind it.
fn zag_session(env: &Env, wrapper: &str, cwd: &std::path::Path) -> PathBuf {
    claude_transcript(env, cwd, SID);
    let log = env
        .zag
        .join("logs/sessions")
        .join(format!("{wrapper}.jsonl"));
    append(
        &log,
        zag_line(
            1,
            wrapper,
            Some(SID),
            "session_started",
            json!({"command":"exec","model":null,"cwd":cwd,"resumed":false,"backfilled":false}),
        )
        .as_bytes(),
    );
    append(
        &log,
        zag_line(
            2,
            wrapper,
            Some(SID),
            "user_message",
            json!({"role":"user","content":"refactor the parser","message_id":null}),
        )
        .as_bytes(),
    );
    log
}

fn legacy_limit(wrapper: &str, seq: u64, reset: i64) -> String {
    zag_line(
        seq,
        wrapper,
        Some(SID),
        "assistant_message",
        json!({"content": format!("Claude AI usage limit reached|{reset}"), "message_id": null}),
    )
}

fn assert_claude_resume(call: &(String, String, Vec<String>), sid: &str, cwd: &std::path::Path) {
    let (name, call_cwd, args) = call;
    assert_eq!(name, "claude");
    assert_eq!(
        std::path::Path::new(call_cwd),
        cwd,
        "resumed in the session's cwd"
    );
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    assert_eq!(after("--resume"), Some(sid), "args: {args:?}");
    // `-p` is Claude's print switch; the prompt is the positional after
    // `--`, where it can never be read as a flag.
    assert!(args.iter().any(|a| a == "-p"), "args: {args:?}");
    assert_eq!(after("--"), Some("Continue"), "args: {args:?}");
    assert_eq!(
        args.last().map(String::as_str),
        Some("Continue"),
        "args: {args:?}"
    );
    assert_eq!(
        after("--output-format"),
        Some("stream-json"),
        "args: {args:?}"
    );
    assert!(args.iter().any(|a| a == "--verbose"), "args: {args:?}");
}

/// The daemon runs without transparent huge pages; the agent it starts
/// gets them back (where this kernel has them at all).
fn assert_huge_pages_off_in_daemon_only(env: &Env, daemon_pid: u32) {
    let thp = |status: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .map(|v| v.trim().to_string())
    };
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    if thp(&ours).as_deref() != Some("1") {
        return; // no THP here, or this test runs with it off already
    }
    let daemon = std::fs::read_to_string(format!("/proc/{daemon_pid}/status")).unwrap();
    assert_eq!(thp(&daemon).as_deref(), Some("0"), "daemon");
    let records: String = std::fs::read_dir(&env.calls)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    let child: Vec<&str> = records
        .lines()
        .filter_map(|l| l.strip_prefix("status THP_enabled:"))
        .map(str::trim)
        .collect();
    assert_eq!(child, ["1"], "the resumed CLI: {records}");
}

fn actions(env: &Env, store: &std::path::Path) -> Vec<String> {
    env.records(store)
        .iter()
        .map(|r| r["action"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn zag_session_limit_is_resumed_once_at_the_reset() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = zag_session(&env, "w-a", &work);
    let daemon = env.start();
    append(&log, legacy_limit("w-a", 3, now_epoch() + 3).as_bytes());

    wait_for("the schedule record", || {
        actions(&env, &env.store()).contains(&"schedule".to_string())
    });
    assert!(env.calls().is_empty(), "must not resume before the reset");
    wait_for("the resume", || !env.calls().is_empty());
    wait_for("the complete record", || {
        actions(&env, &env.store()).contains(&"complete".to_string())
    });

    let calls = env.calls();
    assert_eq!(calls.len(), 1, "exactly one resume: {calls:?}");
    assert_claude_resume(&calls[0], SID, &work);
    assert_huge_pages_off_in_daemon_only(&env, daemon.pid());
    let recs = env.records(&env.store());
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0]["origin"], "zag-resumed");
    assert_eq!(recs[0]["provider"], "claude");
    // The session's prompt is known ("refactor the parser"), but only a
    // Gemini resume needs it: it is not copied into the store.
    assert!(recs[0].get("prompt").is_none(), "{}", recs[0]);
    assert_eq!(recs[1]["status"], "resumed");
    assert_eq!(recs[0]["incident_id"], recs[1]["incident_id"]);
    // The session log tells the story in zag's own event kinds (written
    // right after the store's `complete`, the commit point).
    let kinds = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    wait_for("usage_limit_resumed in the session log", || {
        kinds().contains(&"usage_limit_resumed".to_string())
    });
    assert!(
        kinds().contains(&"usage_limit_hit".to_string()),
        "{:?}",
        kinds()
    );
    // zag can list it: nothing pending any more.
    let (code, out, _) = env.run_cli(&["list", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        json!([])
    );
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn native_claude_transcript_limit_is_resumed_in_its_cwd() {
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let daemon = env.start();
    let transcript = claude_transcript_path(&env, &work, SID);
    let now = chrono::Utc::now();
    let hit_ts = now - chrono::Duration::seconds(150);
    // A reset after the line's own time and already past now: due at once.
    // The text has minute precision and is read as the end of its minute,
    // so 90 s back keeps it in the past whatever second it is now.
    let reset = now - chrono::Duration::seconds(90);
    let text = claude_limit_text(reset, "%-I:%M%P");
    append_claude_limited_turn(&transcript, &work, SID, "hi", &text, hit_ts);

    wait_for("the resume", || !env.calls().is_empty());
    wait_for("the complete record", || {
        actions(&env, &env.store()).contains(&"complete".to_string())
    });
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_claude_resume(&calls[0], SID, &work);
    assert_eq!(actions(&env, &env.store()), ["schedule", "complete"]);
    drop(daemon);
}

#[test]
fn sigkill_after_the_schedule_is_durable_loses_nothing_and_doubles_nothing() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = zag_session(&env, "w-c", &work);
    let daemon = env.start();
    append(&log, legacy_limit("w-c", 3, now_epoch() + 4).as_bytes());
    wait_for("the schedule record", || {
        actions(&env, &env.store()) == ["schedule"]
    });
    daemon.kill9();
    assert!(env.calls().is_empty());

    let daemon = env.start();
    wait_for("the resume after restart", || !env.calls().is_empty());
    wait_for("the complete record", || {
        actions(&env, &env.store()).contains(&"complete".to_string())
    });
    // Judge once the daemon has settled: the old line read to its end (no
    // second hit acked), the incident recorded, nothing pending.
    env.wait_read_whole(&log);
    let st = env.wait_status("the resume to be recorded", |s| {
        recent_events(s).contains(&"resumed".to_string())
    });
    assert_eq!(pending_count(&st), 0, "{st}");
    assert_eq!(recent_events(&st), ["resumed"], "{st}");
    assert_eq!(env.calls().len(), 1, "exactly one resume across the kill");
    assert_eq!(
        actions(&env, &env.store()),
        ["schedule", "complete"],
        "the restart did not re-detect the old line"
    );
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn cancel_appended_by_another_process_stops_the_live_timer() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = zag_session(&env, "w-d", &work);
    let daemon = env.start();
    let reset = now_epoch() + 3;
    append(&log, legacy_limit("w-d", 3, reset).as_bytes());
    wait_for("the schedule record", || {
        actions(&env, &env.store()) == ["schedule"]
    });
    let id = env.records(&env.store())[0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    // What `zag usage cancel` does: append a record, tell nobody.
    append(
        &env.store(),
        format!("{}\n", json!({"action":"cancel","incident_id":id})).as_bytes(),
    );
    // Seen live, either once armed or already while arming.
    env.wait_status("the cancel to be seen", |s| {
        pending_count(s) == 0 && recent_events(s) == ["cancelled"]
    });
    wait_for("the reset to pass", || now_epoch() > reset + 1);
    // A second past the reset: a fire would long have been handled by the
    // time the core answers this.
    let st = env.status().unwrap();
    assert_eq!(recent_events(&st), ["cancelled"], "nothing fired: {st}");
    assert!(
        env.calls().is_empty(),
        "a cancelled resume must not fire: {:?}",
        env.calls()
    );
    assert!(
        !daemon.log_text().contains("resume due"),
        "the timer was stopped, not skipped at fire time"
    );
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn hostile_input_never_stops_the_daemon() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = zag_session(&env, "w-e", &work);
    let doomed = zag_session(&env, "w-doomed", &work);
    // A project "dir" that is a file, and a FIFO named like a log.
    std::fs::create_dir_all(env.zag.join("projects")).unwrap();
    std::fs::write(env.zag.join("projects/not-a-dir"), "x").unwrap();
    let daemon = env.start();
    let fifo = env.zag.join("logs/sessions/fifo.jsonl");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    append(&log, b"this is not json\n");
    append(&log, b"\xff\xfe{\"type\":\x80\n");
    std::fs::remove_file(&doomed).unwrap();
    // 50 MB without a newline, then the line ends and a real limit follows.
    let big = vec![b'x'; 50 << 20];
    append(&log, &big);
    append(&log, b"\n");
    append(&log, legacy_limit("w-e", 9, now_epoch() + 1).as_bytes());
    wait_for("the resume", || !env.calls().is_empty());
    assert_eq!(env.calls().len(), 1);
    let text = daemon.log_text();
    assert_eq!(
        text.matches("was cut to that length").count(),
        1,
        "the giant line is reported once"
    );
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn a_stranded_zag_resume_whose_owner_died_is_adopted_once() {
    let (env, work) = adoption_env();
    // The exec loop died ten minutes ago: no heartbeat since, no process.
    let log = zag_exec_log(&env, "w-dead", &work, SID, chrono::Duration::minutes(10));
    let zag_id = "0b6a2f1e-1111-4222-8333-444455556666";
    append(
        &env.store(),
        zag_exec_record(
            SID,
            zag_id,
            chrono::Utc::now() - chrono::Duration::minutes(2),
            &log,
        )
        .as_bytes(),
    );
    let daemon = env.start();
    wait_for("the adopted resume", || !env.calls().is_empty());
    wait_for("the adopted incident's complete", || {
        actions(&env, &env.store())
            .iter()
            .filter(|a| *a == "complete")
            .count()
            == 1
    });
    let st = env.wait_status("the adopted resume to be recorded", |s| {
        recent_events(s).contains(&"resumed".to_string())
    });
    assert_eq!(pending_count(&st), 0, "{st}");
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "adopted once: {calls:?}");
    assert_claude_resume(&calls[0], SID, &work);
    let recs = env.records(&env.store());
    // zag's record, ours (chained to zag's id), zag's tombstone, our complete.
    assert_eq!(
        actions(&env, &env.store()),
        ["schedule", "schedule", "cancel", "complete"],
        "{recs:?}"
    );
    assert_eq!(recs[1]["origin"], "zag-resumed");
    assert_eq!(recs[1]["chain_id"], zag_id);
    assert_eq!(recs[2]["incident_id"], zag_id);
    // A restart adopts nothing more.
    assert_eq!(daemon.terminate(), 0);
    let daemon = env.start();
    // Start-up decides adoptions while it re-reads the stores, before it
    // answers, and appends them off the loop: one would be pending (or,
    // delivered, in recent) and logged by the time the daemon has stopped
    // (it finishes its disk work first). Recent also holds what the stores
    // tell of the run before (issue 20): only events from before this
    // start, none of this run's.
    let st = env.status().unwrap();
    assert_eq!(pending_count(&st), 0, "{st}");
    let time =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let started = time(&st["started_at"]);
    assert!(
        st["recent"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| time(&e["at"]) < started),
        "{st}"
    );
    let log = daemon.log.clone();
    assert_eq!(daemon.terminate(), 0);
    assert_eq!(env.calls().len(), 1);
    let text = std::fs::read_to_string(log).unwrap();
    assert!(!text.contains("adopted a stranded"), "{text}");
}

#[test]
fn a_zag_resume_whose_owner_lives_is_left_alone() {
    let (env, work) = adoption_env();
    // A live exec loop: a running process entry (this test process) and a
    // fresh heartbeat; its own resume is overdue, as after a suspend.
    let log = zag_exec_log(&env, "w-live", &work, SID, chrono::Duration::seconds(1));
    let procs = json!({"processes":[{"id":"p1","pid":std::process::id(),"session_id":"w-live","provider":"claude","model":"","command":"exec","prompt":"go","started_at":chrono::Utc::now().to_rfc3339(),"status":"running","exit_code":null,"exited_at":null,"root":null,"parent_process_id":null,"parent_session_id":null}]});
    std::fs::write(env.zag.join("processes.json"), procs.to_string()).unwrap();
    let zag_id = "0b6a2f1e-1111-4222-8333-777788889999";
    append(
        &env.store(),
        zag_exec_record(
            SID,
            zag_id,
            chrono::Utc::now() - chrono::Duration::seconds(5),
            &log,
        )
        .as_bytes(),
    );
    let daemon = env.start();
    // The daemon saw zag's record and asked about its owner, then asked
    // again a grace later, finding it alive both times.
    let probes = |d: &util::Daemon| {
        d.log_text()
            .matches("zag's own resume: left to its owner for now")
            .count()
    };
    wait_for("the owner probed, then re-probed after the grace", || {
        probes(&daemon) >= 2
    });
    assert!(env.calls().is_empty(), "{:?}", env.calls());
    assert_eq!(
        actions(&env, &env.store()),
        ["schedule"],
        "zag's record untouched"
    );
    assert_eq!(daemon.terminate(), 0);
}

/// Regression: notify reports opens and reads too, and the daemon's own
/// read of a store once triggered the next, forever: an "idle" daemon with a
/// pending resume spun a CPU core. Idle must mean idle.
#[test]
fn reading_a_store_does_not_trigger_reading_it_again() {
    let env = Env::new();
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    let rec = json!({"action":"schedule","incident_id":"11111111-2222-4333-8444-555555555555","session_id":"s","provider":"claude","when":far.to_rfc3339(),"message":"Continue","attempt":1,"log_path":"","origin":"zag-resumed"});
    append(&env.store(), format!("{rec}\n").as_bytes());
    let mut cmd = env.cmd(&["run"]);
    cmd.env("RUST_LOG", "zag_resumed=trace");
    let log = env.dir.path().join("trace.log");
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("the daemon to watch", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("is watching")
    });
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let reads = std::fs::read_to_string(&log)
        .unwrap()
        .matches("reading store")
        .count();
    let _ = child.kill();
    let _ = child.wait();
    // Start-up reads it once or twice (discovery, its file event); a loop
    // reads it thousands of times a second. (The second is a window to
    // watch for a loop in, not a wait for something to happen.)
    assert!(reads >= 1, "the daemon never read the store");
    assert!(reads <= 4, "the store was read {reads} times while idle");
}

/// zag's own exec loop (or relay) records the very limit we recorded, a
/// moment after us: two resumes would double the turn. Ours steps aside at
/// fire time, whatever the order the two records landed in.
#[test]
fn a_limit_zag_also_recorded_is_left_to_zag() {
    let (env, work) = adoption_env();
    let log = zag_exec_log(&env, "w-both", &work, SID, chrono::Duration::seconds(1));
    // zag's loop is alive (so its record is not adopted either).
    let procs = json!({"processes":[{"id":"p1","pid":std::process::id(),"session_id":"w-both","provider":"claude","model":"","command":"exec","prompt":"go","started_at":chrono::Utc::now().to_rfc3339(),"status":"running","exit_code":null,"exited_at":null,"root":null,"parent_process_id":null,"parent_session_id":null}]});
    std::fs::write(env.zag.join("processes.json"), procs.to_string()).unwrap();
    let daemon = env.start();
    let reset = chrono::Utc::now() + chrono::Duration::seconds(3);
    append(
        &log,
        legacy_limit("w-both", 3, reset.timestamp()).as_bytes(),
    );
    wait_for("our schedule", || {
        actions(&env, &env.store()) == ["schedule"]
    });
    // Then zag's own record for the same limit: its fixed jitter after the reset.
    let zag_when = chrono::DateTime::from_timestamp(reset.timestamp(), 0).unwrap()
        + chrono::Duration::seconds(30);
    append(
        &env.store(),
        zag_exec_record(SID, "0b6a2f1e-1111-4222-8333-aaaabbbbcccc", zag_when, &log).as_bytes(),
    );
    wait_for("our incident to step aside", || {
        actions(&env, &env.store()).contains(&"complete".to_string())
    });
    let recs = env.records(&env.store());
    let ours = recs.iter().find(|r| r["action"] == "complete").unwrap();
    assert!(
        ours["error"]
            .as_str()
            .unwrap()
            .contains("zag's own scheduler"),
        "{ours}"
    );
    assert!(
        env.calls().is_empty(),
        "only zag delivers it: {:?}",
        env.calls()
    );
    assert_eq!(daemon.terminate(), 0);
}

/// One limit often shows in several lines (Claude's event, its synthetic
/// message and its result). Subscribers, and desktop notifications, see one
/// `hit` per incident, not one per line.
#[test]
fn one_hit_event_per_incident_however_many_lines_show_it() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = zag_session(&env, "w-h", &work);
    let daemon = env.start();
    // Subscribed once the daemon has answered the subscribe request: no
    // event after that can be missed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let paths = zag_resumed::paths::Paths::new(&env.home, None);
    let mut sub = rt.block_on(async {
        zag_resumed::control::client::Client::connect_paths(
            &paths,
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap()
        .subscribe()
        .await
        .unwrap()
    });
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let reader = rt.spawn(async move {
        while let Ok(Some(ev)) = sub.next().await {
            sink.lock()
                .unwrap()
                .push(serde_json::to_string(&ev).unwrap());
        }
    });
    let reset = now_epoch() + 30;
    append(&log, legacy_limit("w-h", 3, reset).as_bytes());
    append(&log, legacy_limit("w-h", 4, reset).as_bytes());
    let count = |kind: &str| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&format!("\"event\":\"{kind}\"")))
            .count()
    };
    wait_for("the scheduled event", || count("scheduled") == 1);
    // Both lines read and acked: a second incident's events would have
    // been published before its ack.
    env.wait_read_whole(&log);
    env.status().unwrap();
    assert_eq!(count("hit"), 1, "{:?}", lines.lock().unwrap());
    assert_eq!(count("scheduled"), 1);
    reader.abort();
    assert_eq!(daemon.terminate(), 0);
}

/// A background `zag spawn` session logs no provider text: Gemini's quota
/// error lands only in the spawn log. The daemon borrows the session's
/// identity from its zag session log (cwd, the prompt) and resumes Gemini
/// with the prompt that hit the limit.
#[test]
fn a_gemini_quota_in_a_spawn_log_is_resumed_with_the_original_prompt() {
    let env = gemini_env();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let wrapper = "5a1e0000-0000-4000-8000-000000000e2e";
    gemini_zag_log(&env, wrapper, &work, 0, "write the parser");
    let daemon = env.start();
    gemini_quota_in_spawn_log(&env, wrapper);
    wait_for("the resume", || !env.calls().is_empty());
    let recs = env.records(&env.store());
    assert_eq!(recs[0]["prompt"], "write the parser", "{}", recs[0]);
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (name, cwd, args) = &calls[0];
    assert_eq!(name, "gemini");
    assert_eq!(std::path::Path::new(cwd), work, "run in the session's cwd");
    assert!(
        args.contains(&"--prompt=write the parser".to_string()),
        "the original prompt, not Continue: {args:?}"
    );
    let recs = env.records(&env.store());
    assert_eq!(recs[0]["session_id"], wrapper);
    assert_eq!(recs[0]["scope"], "daily");
    assert_eq!(daemon.terminate(), 0);
}

/// A zag session log's `session_ended` with an error only a user pattern
/// recognises (no built-in wording).
fn quota_gone_line(wrapper: &str, sid: &str, seq: u64) -> String {
    zag_line(
        seq,
        wrapper,
        Some(sid),
        "session_ended",
        json!({"success": false, "error": "ERROR: quota is gone"}),
    )
}

#[test]
fn an_extra_pattern_added_to_zag_toml_while_running_is_detected() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = zag_session(&env, "w-x", &work);
    let daemon = env.start();
    // The daemon has read the session (and so built this project's
    // detector) before the pattern exists.
    append(&log, legacy_limit("w-x", 3, now_epoch() + 3600).as_bytes());
    wait_for("the first schedule", || {
        actions(&env, &env.store()) == ["schedule"]
    });
    std::fs::write(
        env.zag.join("zag.toml"),
        "[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n\n[usage_limits.providers.claude]\nextra_patterns = [\"quota (?:is )?gone\"]\n",
    )
    .unwrap();
    // Another session, so the new limit is not the first one again.
    let sid2 = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    claude_transcript(&env, &work, sid2);
    let other = env.zag.join("logs/sessions/w-y.jsonl");
    append(
        &other,
        zag_line(
            1,
            "w-y",
            Some(sid2),
            "session_started",
            json!({"command":"exec","model":null,"cwd":work,"resumed":false,"backfilled":false}),
        )
        .as_bytes(),
    );
    append(&other, quota_gone_line("w-y", sid2, 2).as_bytes());
    wait_for(
        "the schedule of the line only the new pattern matches",
        || {
            env.records(&env.store())
                .iter()
                .any(|r| r["action"] == "schedule" && r["wrapper_session_id"] == "w-y")
        },
    );
    let recs = env.records(&env.store());
    let new = recs
        .iter()
        .find(|r| r["wrapper_session_id"] == "w-y")
        .unwrap();
    assert_eq!(new["provider"], "claude", "{new}");
    assert!(
        new["raw"].as_str().unwrap_or("").contains("quota is gone"),
        "{new}"
    );
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn a_resumed_runs_output_is_judged_by_the_projects_patterns() {
    let env = Env::new();
    std::fs::write(
        env.zag.join("zag.toml"),
        "[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n\n[usage_limits.providers.claude]\nextra_patterns = [\"quota (?:is )?gone\"]\n",
    )
    .unwrap();
    // The resumed CLI says only what the project's pattern recognises.
    env.fake_cli("claude", "quota is gone", 0);
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = zag_session(&env, "w-r", &work);
    let daemon = env.start();
    append(&log, legacy_limit("w-r", 3, now_epoch() + 2).as_bytes());
    wait_for("the re-hit's new incident", || {
        env.records(&env.store())
            .iter()
            .any(|r| r["action"] == "schedule" && r["attempt"] == 2)
    });
    let recs = env.records(&env.store());
    let done = recs.iter().find(|r| r["action"] == "complete").unwrap();
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("limit hit again"),
        "{done}"
    );
    assert_eq!(env.calls().len(), 1, "one resume so far");
    assert_eq!(daemon.terminate(), 0);
}

/// `daemon::run` in this process, on a clock moved by hand and stopped by a
/// cancellation token: start, a hit, status, the reset reached by moving the
/// clock (no waiting for real time), the resume, a clean shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_in_process_on_an_injected_clock_and_shutdown() {
    use zag_resumed::clock::ManualClock;
    use zag_resumed::control::client::{socket_path, Client};
    use zag_resumed::control::protocol::{Op, Request};
    use zag_resumed::control::StatusSnapshot;
    use zag_resumed::paths::Paths;

    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = zag_session(&env, "w-i", &work);
    let start = chrono::Utc::now();
    let clock = ManualClock::new(start);
    let paths = Paths::new(&env.home, None);
    let mut config = zag_resumed::config::DaemonConfig::default();
    config.notify.desktop = false;
    let opts = zag_resumed::daemon::Options {
        paths: paths.clone(),
        config,
        config_path: None,
        clock: clock.clone(),
        search_path: Some(env.path_var().into()),
        dry_run: false,
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_requests, extra) = tokio::sync::mpsc::channel(1);
    let daemon = tokio::spawn(zag_resumed::daemon::run(opts, extra, shutdown.clone()));

    let t = std::time::Duration::from_secs(5);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = |what: &'static str| {
        let socket = socket_path(&paths);
        async move {
            loop {
                assert!(std::time::Instant::now() < deadline, "timed out: {what}");
                if let Ok(mut c) = Client::connect(&socket, t).await {
                    if let Ok(s) = c.call::<StatusSnapshot>(&Request::new(Op::Status)).await {
                        return s;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    // Watching the session log (its tail and its folder's watch are in
    // place once it is counted): a new line is read from here on.
    loop {
        let s = status("the daemon to answer").await;
        assert_eq!(s.now, start, "the daemon's clock is the injected one");
        if s.watched.get("zag_session") == Some(&1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let reset = start.timestamp() + 3600;
    append(&log, legacy_limit("w-i", 3, reset).as_bytes());
    let pending = loop {
        let s = status("the incident to be pending").await;
        if !s.pending.is_empty() {
            break s.pending;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].when.timestamp(), reset, "{pending:?}");
    assert!(env.calls().is_empty(), "nothing before the reset");

    // An hour passes in no time.
    clock.advance(chrono::Duration::seconds(3601));
    let s = loop {
        let s = status("the resume to be recorded").await;
        if s.pending.is_empty() && !s.recent.is_empty() {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        matches!(
            s.recent[0],
            zag_resumed::control::IncidentEvent::Resumed { .. }
        ),
        "{:?}",
        s.recent
    );
    assert_eq!(env.calls().len(), 1);
    assert_claude_resume(&env.calls()[0], SID, &work);
    assert_eq!(actions(&env, &env.store()), ["schedule", "complete"]);

    // A later limit, cancelled through the socket before its reset.
    let reset2 = reset + 7200;
    append(&log, legacy_limit("w-i", 4, reset2).as_bytes());
    let pending = loop {
        let s = status("the second incident to be pending").await;
        if !s.pending.is_empty() {
            break s.pending;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let id = pending[0].incident_id.clone();
    let mut c = Client::connect(&socket_path(&paths), t).await.unwrap();
    let view: zag_resumed::control::PendingView = c.call(&Request::cancel(&id)).await.unwrap();
    assert_eq!(view.incident_id, id);
    let again = c
        .call::<zag_resumed::control::PendingView>(&Request::cancel(&id))
        .await;
    assert!(again.is_err(), "{again:?}");
    assert_eq!(
        actions(&env, &env.store()),
        ["schedule", "complete", "schedule", "cancel"],
        "the reply came after the cancel was written"
    );
    let s = status("the cancel in recent").await;
    assert!(s.pending.is_empty(), "{:?}", s.pending);
    assert!(
        matches!(
            s.recent.last(),
            Some(zag_resumed::control::IncidentEvent::Cancelled { .. })
        ),
        "{:?}",
        s.recent
    );

    shutdown.cancel();
    let ended = tokio::time::timeout(t, daemon)
        .await
        .expect("stops on cancel");
    assert!(ended.unwrap().is_ok());
    assert!(
        !socket_path(&paths).exists(),
        "the socket is removed on shutdown"
    );
}

/// What the daemons run inside this test process log (debug and up), for
/// tests that wait on a step only the log shows.
fn captured_log() -> String {
    use std::sync::{Mutex, OnceLock};
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    struct Sink(&'static Mutex<Vec<u8>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = LOG.get_or_init(|| {
        let buf: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("zag_resumed=debug")
            .with_ansi(false)
            .with_writer(move || Sink(buf))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// Regression: a shutdown while a hit is being resolved off the core's loop
/// once hung, the ingest thread waiting for an ack nobody would send. The
/// hit is finished (written, acked) and the daemon stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_a_slow_resolve_finishes_the_hit_and_stops() {
    use zag_resumed::paths::Paths;
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // A relay session (no Claude id anywhere): the resolve reads every
    // transcript of the cwd, here 200 of 256 KB, a second or more.
    let dir = env
        .home
        .join(".claude/projects")
        .join(work.display().to_string().replace(['/', '.'], "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let old = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let line = json!({"type":"assistant","message":{"role":"assistant","content":"x".repeat(900)},"cwd":work,"sessionId":"s","timestamp":old}).to_string() + "\n";
    let body = line.repeat(256 * 1024 / line.len());
    for i in 0..200 {
        std::fs::write(
            dir.join(format!("00000000-0000-4000-8000-{i:012}.jsonl")),
            &body,
        )
        .unwrap();
    }
    let log = env.zag.join("logs/sessions/relay-1.jsonl");
    let relay_line = |seq: u64, kind: &str, fields: serde_json::Value| {
        zag_line(seq, "relay-1", None, kind, fields)
    };
    append(
        &log,
        relay_line(
            1,
            "session_started",
            json!({"command":"relay","model":null,"cwd":work,"resumed":false,"backfilled":false}),
        )
        .as_bytes(),
    );
    let paths = Paths::new(&env.home, None);
    let mut config = zag_resumed::config::DaemonConfig::default();
    config.notify.desktop = false;
    let opts = zag_resumed::daemon::Options {
        paths: paths.clone(),
        config,
        config_path: None,
        clock: std::sync::Arc::new(zag_resumed::clock::SystemClock),
        search_path: Some(env.path_var().into()),
        dry_run: false,
    };
    captured_log(); // the capture is in place before the daemon starts
    let shutdown = tokio_util::sync::CancellationToken::new();
    // On its own runtime and thread: a hang must fail this test, not block
    // this runtime's shutdown for ever.
    let (ended_tx, ended) = std::sync::mpsc::channel();
    let stop = shutdown.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (_requests, extra) = tokio::sync::mpsc::channel(1);
        let r = rt.block_on(zag_resumed::daemon::run(opts, extra, stop));
        let _ = ended_tx.send(r.is_ok());
    });
    let socket = zag_resumed::control::client::socket_path(&paths);
    let t = std::time::Duration::from_secs(5);
    let start = std::time::Instant::now();
    loop {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "never watched"
        );
        if let Ok(mut c) = zag_resumed::control::client::Client::connect(&socket, t).await {
            let s: zag_resumed::control::StatusSnapshot = c
                .call(&zag_resumed::control::protocol::Request::new(
                    zag_resumed::control::protocol::Op::Status,
                ))
                .await
                .unwrap();
            if s.watched.get("zag_session") == Some(&1) {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    append(
        &log,
        relay_line(
            2,
            "assistant_message",
            json!({"content": format!("Claude AI usage limit reached|{}", now_epoch() + 3600), "message_id": null}),
        )
        .as_bytes(),
    );
    // The hit is taken in (handed to the core, whose resolve of 200
    // transcripts takes a while): not yet written. Stop now.
    let file = format!("file={}", log.display());
    let start = std::time::Instant::now();
    while !captured_log()
        .lines()
        .any(|l| l.contains("limit seen; handed to the core") && l.contains(&file))
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the hit never reached the core"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    shutdown.cancel();
    let ended =
        tokio::task::spawn_blocking(move || ended.recv_timeout(std::time::Duration::from_secs(30)))
            .await
            .unwrap();
    assert_eq!(ended, Ok(true), "the daemon stops cleanly");
    let recs = env.records(&env.store());
    assert_eq!(actions(&env, &env.store()), ["schedule"], "{recs:?}");
    assert_eq!(recs[0]["provider_session_id"], "s", "resolved: {recs:?}");
}

/// A fake `claude` whose resumed run hits the limit again, as the real CLI
/// does: the synthetic limit entry in its transcript and the error result
/// on stdout, the reset two hours on (far from the first). With
/// `transcript_first` the transcript is written a second before stdout (the
/// watcher sees the re-hit while the delivery still runs); otherwise
/// stdout comes first and the transcript a second after the run ended.
fn re_hitting_claude(
    env: &Env,
    transcript: &std::path::Path,
    cwd: &std::path::Path,
    transcript_first: bool,
) {
    let reset = chrono::Utc::now() + chrono::Duration::hours(2);
    let text = claude_limit_text(reset, "%-I:%M%P");
    let lines = env.dir.path().join("rehit.jsonl");
    let user = claude_user(cwd, SID, "Continue", "__TS__");
    let limit = claude_limit(cwd, SID, &text, "__TS__");
    std::fs::write(&lines, format!("{user}\n{limit}\n")).unwrap();
    let result = json!({"type":"result","subtype":"success","is_error":true,"result":format!("Claude AI usage limit reached|{}", reset.timestamp())});
    let write_transcript = format!(
        "ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ); sed \"s/__TS__/$ts/\" '{}' >> '{}'",
        lines.display(),
        transcript.display()
    );
    let (before, after) = if transcript_first {
        (format!("{write_transcript}\nsleep 1\n"), String::new())
    } else {
        (
            String::new(),
            format!(
                "setsid sh -c \"sleep 1; {}\" </dev/null >/dev/null 2>&1 &\n",
                write_transcript.replace('"', "\\\"").replace('$', "\\$")
            ),
        )
    };
    let script = format!(
        "#!/bin/sh\nrec=$(mktemp '{calls}/call.XXXXXXXX')\n{{ printf 'call claude\\n'; printf 'cwd %s\\n' \"$PWD\"; for a in \"$@\"; do printf 'arg %s\\n' \"$a\"; done; printf 'end\\n'; }} > \"$rec.tmp\"\nmv \"$rec.tmp\" \"$rec.done\"\n{before}cat <<'__OUT__'\n{result}\n__OUT__\n{after}exit 0\n",
        calls = env.calls.display()
    );
    let p = env.bin.join("claude");
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Issue 12, item 2: the resumed run hits the limit again, shown by both its
/// transcript (read by the watcher: attempt 1, no chain) and its stdout
/// (the delivery's `LimitAgain`: attempt 2). Whichever comes first, one
/// incident: attempt 2, pending alone; never a second process.
fn a_re_hit_seen_twice_is_one_pending_attempt(transcript_first: bool) {
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let transcript = claude_transcript_path(&env, &work, SID);
    re_hitting_claude(&env, &transcript, &work, transcript_first);
    let daemon = env.start();
    let now = chrono::Utc::now();
    let hit_ts = now - chrono::Duration::seconds(150);
    // Minute precision, read as the end of its minute: 90 s back keeps
    // the reset in the past whatever second it is now.
    let reset = now - chrono::Duration::seconds(90);
    let text = claude_limit_text(reset, "%-I:%M%P");
    append_claude_limited_turn(&transcript, &work, SID, "hi", &text, hit_ts);

    wait_for("the first resume's outcome", || {
        actions(&env, &env.store()).contains(&"complete".to_string())
    });
    wait_for("the re-hit in the transcript", || {
        std::fs::read_to_string(&transcript)
            .unwrap_or_default()
            .contains("Continue")
    });
    // Both sightings handled: the transcript read to its end (its hit
    // acked), the outcome recorded.
    env.wait_read_whole(&transcript);
    let st = env.wait_status("the re-hit's incident", |s| {
        recent_events(s).contains(&"failed".to_string()) && pending_count(s) > 0
    });
    let st = env.wait_status("a settled core", |s| s["pending"] == st["pending"]);
    let recs = env.records(&env.store());
    let schedules: Vec<_> = recs.iter().filter(|r| r["action"] == "schedule").collect();
    assert_eq!(
        schedules.len(),
        2,
        "attempt 1 and its re-hit only: {recs:#?}"
    );
    assert_eq!(schedules[1]["attempt"], 2, "{recs:#?}");
    assert_eq!(
        schedules[1]["chain_id"], schedules[0]["incident_id"],
        "{recs:#?}"
    );
    assert_eq!(pending_count(&st), 1, "{st}");
    assert_eq!(
        st["pending"][0]["incident_id"], schedules[1]["incident_id"],
        "{st}"
    );
    assert_eq!(env.calls().len(), 1, "one process: {:?}", env.calls());
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn a_re_hit_seen_in_the_transcript_first_then_stdout_is_one_pending_attempt() {
    a_re_hit_seen_twice_is_one_pending_attempt(true);
}

#[test]
fn a_re_hit_seen_on_stdout_first_then_in_the_transcript_is_one_pending_attempt() {
    a_re_hit_seen_twice_is_one_pending_attempt(false);
}

/// Issue 12, item 2, at replay: a store that holds two pending resumes for
/// one session (a crash between a re-hit's two sightings, or an older
/// version's doing): the one furthest down the chain fires, the other is
/// recorded as superseded; one process.
#[test]
fn two_pending_for_one_session_in_the_store_fire_once() {
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let transcript = claude_transcript(&env, &work, SID);
    let now = chrono::Utc::now();
    let rec = |id: &str, attempt: u32, chain: Option<&str>, hit_ago: i64, due_in: i64| {
        let mut v = json!({
            "action": "schedule", "incident_id": id, "session_id": SID,
            "provider": "claude", "when": (now + chrono::Duration::seconds(due_in)).to_rfc3339(),
            "message": "Continue", "attempt": attempt, "log_path": "",
            "origin": "zag-resumed", "scope": "session",
            "reset_at": (now + chrono::Duration::seconds(due_in)).to_rfc3339(),
            "fallback_used": false, "provider_session_id": SID,
            "cwd": work, "source_file": transcript,
            "hit_at": (now - chrono::Duration::seconds(hit_ago)).to_rfc3339(),
        });
        if let Some(c) = chain {
            v["chain_id"] = json!(c);
        }
        format!("{v}\n")
    };
    let first = "00000000-0000-5000-8000-00000000000a";
    let second = "00000000-0000-5000-8000-00000000000b";
    append(&env.store(), rec(first, 1, None, 300, -1).as_bytes());
    append(&env.store(), rec(second, 2, Some(first), 60, 2).as_bytes());
    let daemon = env.start();
    wait_for("the kept one's resume", || !env.calls().is_empty());
    let st = env.wait_status("both recorded", |s| {
        pending_count(s) == 0 && recent_events(s).len() == 2
    });
    let recs = env.records(&env.store());
    let done = |id: &str| {
        recs.iter()
            .find(|r| r["action"] == "complete" && r["incident_id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(done(second)["status"], "resumed", "{recs:#?}");
    assert!(
        done(first)["error"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("superseded by {second}")),
        "{recs:#?}"
    );
    assert_eq!(recent_events(&st), ["skipped", "resumed"], "{st}");
    assert_eq!(env.calls().len(), 1, "one process: {:?}", env.calls());
    assert_eq!(daemon.terminate(), 0);
}

/// A Gemini zag session's log up to its prompt (no limit yet). A long
/// session (800 KB): the prompt is far from the head the ingest pre-reads,
/// and from the log's start.
fn gemini_session_until_the_prompt(env: &Env, wrapper: &str, work: &std::path::Path) -> PathBuf {
    gemini_zag_log(env, wrapper, work, 398, "write the parser")
}

fn assert_resumed_with_the_prompt(env: &Env, work: &std::path::Path) {
    wait_for("the resume", || !env.calls().is_empty());
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (name, cwd, args) = &calls[0];
    assert_eq!(name, "gemini");
    assert_eq!(std::path::Path::new(cwd), work);
    assert!(
        args.contains(&"--prompt=write the parser".to_string()),
        "the original prompt, not Continue: {args:?}"
    );
}

/// Issue 12, item 3: the daemon restarts between the prompt and the limit;
/// what it learnt of the session is read back from the session's files.
#[test]
fn a_restart_between_the_prompt_and_the_limit_keeps_the_prompt() {
    let env = gemini_env();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let wrapper = "5a1e0000-0000-4000-8000-000000000e2f";
    let daemon = env.start();
    let log = gemini_session_until_the_prompt(&env, wrapper, &work);
    env.wait_read_whole(&log);
    assert_eq!(daemon.terminate(), 0);
    let daemon = env.start();
    gemini_quota_in_spawn_log(&env, wrapper);
    assert_resumed_with_the_prompt(&env, &work);
    assert_eq!(daemon.terminate(), 0);
}

/// Issue 12, item 3: the daemon is first started (by zag, on demand) after
/// the prompt: it has never read the session, and still resumes it with
/// the prompt.
#[test]
fn a_daemon_started_after_the_prompt_resumes_with_the_prompt() {
    let env = gemini_env();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let wrapper = "5a1e0000-0000-4000-8000-000000000e30";
    gemini_session_until_the_prompt(&env, wrapper, &work);
    let daemon = env.start();
    gemini_quota_in_spawn_log(&env, wrapper);
    assert_resumed_with_the_prompt(&env, &work);
    assert_eq!(daemon.terminate(), 0);
}

/// Issue 12, item 4: the daemon installed right after a limit. On its very
/// first start, a limit near the end of a file whose reset is ahead is
/// resumed once at its reset; one whose reset passed long ago, and an
/// earlier limit of a session that went on after it, stay history.
#[test]
fn a_limit_written_before_the_first_start_is_resumed_once_at_its_reset() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let on = zag_session(&env, "w-on", &work);
    // An old limit of this session, which it went on from, then the one
    // still on.
    append(
        &on,
        legacy_limit("w-on", 3, now_epoch() - 86_400).as_bytes(),
    );
    append(
        &on,
        zag_line(
            4,
            "w-on",
            Some(SID),
            "user_message",
            json!({"role":"user","content":"go on","message_id":null}),
        )
        .as_bytes(),
    );
    append(&on, legacy_limit("w-on", 5, now_epoch() + 3).as_bytes());
    // Another session whose limit reset two hours ago: over.
    let sid2 = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    claude_transcript(&env, &work, sid2);
    let old = env.zag.join("logs/sessions/w-old.jsonl");
    append(
        &old,
        zag_line(
            1,
            "w-old",
            Some(sid2),
            "session_started",
            json!({"command":"exec","model":null,"cwd":work,"resumed":false,"backfilled":false}),
        )
        .as_bytes(),
    );
    let mut line: serde_json::Value =
        serde_json::from_str(&legacy_limit("w-old", 2, now_epoch() - 7200)).unwrap();
    line["ts"] = json!((chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc3339());
    append(&old, format!("{line}\n").as_bytes());
    assert!(
        !env.zag.join("resumed/offsets.json").exists(),
        "a first start"
    );
    let daemon = env.start();
    env.wait_read_whole(&on);
    env.wait_read_whole(&old);
    // Both files read to their ends (their hits, if any, acked): what is
    // pending now is all the catch-up scheduled.
    let st = env.wait_status("the catch-up's incident", |s| pending_count(s) > 0);
    assert_eq!(pending_count(&st), 1, "{st}");
    assert_eq!(st["pending"][0]["session_id"], "w-on", "{st}");
    assert!(env.calls().is_empty(), "not before the reset");
    wait_for("the resume", || !env.calls().is_empty());
    wait_for("the complete record", || {
        actions(&env, &env.store()).contains(&"complete".to_string())
    });
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_claude_resume(&calls[0], SID, &work);
    assert_eq!(actions(&env, &env.store()), ["schedule", "complete"]);
    assert!(
        daemon.log_text().contains("catching up on a limit"),
        "each caught-up limit is logged"
    );
    assert_eq!(daemon.terminate(), 0);
}

/// A Claude home created in one burst after the daemon started (a first
/// install of Claude Code, or a restored backup): every folder is watched
/// before it is listed, so a transcript that lands while the new tree is
/// walked is never missed.
#[test]
fn a_tree_created_in_one_burst_after_start_loses_no_limit() {
    let env = Env::new();
    let _ = std::fs::remove_dir_all(env.home.join(".claude"));
    let daemon = env.start();
    let reset = chrono::Utc::now() + chrono::Duration::hours(2);
    let text = format!(
        "You've hit your 5-hour limit · resets {} (UTC)",
        reset.format("%-I:%M%P")
    );
    const SESSIONS: usize = 24;
    for i in 0..SESSIONS {
        let work = env.dir.path().join(format!("proj{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let sid = format!("6873a0e2-51d4-4c3e-9a55-{i:012}");
        let transcript = claude_transcript_path(&env, &work, &sid);
        let limit = claude_limit(&work, &sid, &text, &chrono::Utc::now().to_rfc3339());
        append(&transcript, format!("{limit}\n").as_bytes());
    }
    wait_for("every limit of the new tree pending", || {
        env.status().is_some_and(|s| pending_count(&s) == SESSIONS)
    });
    drop(daemon);
}

/// Issue 19, item 3: a limit no wait lifts (here Codex's spend cap) is
/// recorded as needing the user at once: no timed resume, no resumed run,
/// `status` and `history` say what to do.
#[test]
fn a_limit_no_wait_lifts_is_recorded_as_needing_the_user_and_never_resumed() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let log = env.zag.join("logs/sessions/w-cap.jsonl");
    let line = |seq: u64, kind: &str, fields: serde_json::Value| {
        let mut v: serde_json::Value =
            serde_json::from_str(&zag_line(seq, "w-cap", Some("t-cap"), kind, fields)).unwrap();
        v["provider"] = json!("codex");
        format!("{v}\n")
    };
    append(
        &log,
        line(
            1,
            "session_started",
            json!({"command":"exec","cwd":work,"resumed":false,"backfilled":false}),
        )
        .as_bytes(),
    );
    let daemon = env.start();
    append(
        &log,
        line(
            2,
            "session_ended",
            json!({"success": false, "error": "ERROR: You hit your spend cap set in your workspace. Increase your spend cap to continue.\n"}),
        )
        .as_bytes(),
    );
    wait_for("the incident, ended at once", || {
        actions(&env, &env.store()) == ["schedule", "complete"]
    });
    let recs = env.records(&env.store());
    assert_eq!(recs[0]["needs_user"], "spend_cap", "{}", recs[0]);
    assert_eq!(recs[1]["status"], "failed");
    let error = recs[1]["error"].as_str().unwrap();
    assert!(
        error.starts_with("needs user: spend cap reached"),
        "{error}"
    );
    let status = env.wait_status("the needs-you event", |s| {
        recent_events(s).contains(&"needs_user".to_string())
    });
    assert_eq!(pending_count(&status), 0, "{status}");
    let (code, out, _) = env.run_cli(&["history"]);
    assert_eq!(code, 0);
    assert!(out.contains("needs_user"), "{out}");
    assert!(out.contains("spend cap reached"), "{out}");
    // Ended by its `complete`: nothing was run for it, nothing can be.
    assert!(env.calls().is_empty(), "{:?}", env.calls());
    assert_eq!(actions(&env, &env.store()), ["schedule", "complete"]);
    assert_eq!(daemon.terminate(), 0);
}
