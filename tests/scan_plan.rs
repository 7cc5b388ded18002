//! `scan --plan` on the real binary: it says which session, when and how
//! the daemon would resume each limit (the exact argv and cwd of the
//! respawn), and does none of it (no store, no CLI call).

mod util;

use serde_json::json;
use std::path::{Path, PathBuf};
use util::{
    append, append_claude_limited_turn, claude_limit_text, claude_transcript_path, zag_line, Env,
};

const SID: &str = "6873a0e2-51d4-4c3e-9a55-0d7c1b2f3e4d";

/// A Claude transcript of `work` with a limit that resets three hours from
/// now; returns the reset as the daemon reads it (the end of the printed
/// minute).
fn limited_transcript(env: &Env, work: &Path) -> (PathBuf, chrono::DateTime<chrono::Utc>) {
    let path = claude_transcript_path(env, work, SID);
    let now = chrono::Utc::now();
    let reset = now + chrono::Duration::hours(3);
    let text = claude_limit_text(reset, "%b %-d, %-I:%M%P");
    append_claude_limited_turn(&path, work, SID, "hi", &text, now);
    let minute = reset.timestamp() - reset.timestamp().rem_euclid(60);
    (
        path,
        chrono::DateTime::from_timestamp(minute + 60, 0).unwrap(),
    )
}

#[test]
fn plan_prints_session_due_time_and_the_exact_resume_argv_and_writes_nothing() {
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let (transcript, reset) = limited_transcript(&env, &work);
    let file = transcript.display().to_string();

    let (code, out, err) = env.run_cli(&["scan", "--plan", "--json", &file]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // The scan's own fields are all still there.
    assert_eq!(v["file"], file.as_str());
    assert_eq!(v["provider"], "claude");
    let plan = &v["plan"];
    assert_eq!(plan["session_id"], SID, "{v}");
    assert_eq!(plan["cwd"], work.display().to_string(), "{v}");
    assert_eq!(plan["channel"], "respawn", "{v}");
    // No jitter in the test's zag.toml: due at the reset itself.
    let due: chrono::DateTime<chrono::Utc> = plan["due"].as_str().unwrap().parse().unwrap();
    assert_eq!(due, reset, "{v}");
    assert_eq!(plan["fallback_used"], false);
    let argv: Vec<String> = serde_json::from_value(plan["argv"].clone()).unwrap();
    assert_eq!(
        argv[0],
        env.bin.join("claude").display().to_string(),
        "{argv:?}"
    );
    let i = argv.iter().position(|a| a == "--resume").expect("--resume");
    assert_eq!(argv[i + 1], SID, "{argv:?}");
    assert_eq!(plan["run_cwd"], work.display().to_string());

    let (code, text, _) = env.run_cli(&["scan", "--plan", &file]);
    assert_eq!(code, 0);
    assert!(text.contains(&format!("claude {SID}")), "{text}");
    let when = format!(
        "when: {} (the reset time by [usage_limits])",
        reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert!(text.contains(&when), "{text}");
    assert!(
        text.contains(&format!(" --resume {SID} "))
            && text.contains(&format!("in {}", work.display())),
        "{text}"
    );

    // Nothing was done: no store, no CLI call.
    assert!(!env.store().exists(), "{}", env.store().display());
    assert!(env.calls().is_empty(), "{:?}", env.calls());
}

#[test]
fn plan_says_nothing_is_done_for_a_disabled_provider() {
    let env = Env::new();
    std::fs::write(
        env.zag.join("zag.toml"),
        "[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n[usage_limits.providers.claude]\nenabled = false\n",
    )
    .unwrap();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let (transcript, _) = limited_transcript(&env, &work);
    let (code, out, err) = env.run_cli(&["scan", "--plan", &transcript.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("how: nothing: auto-resume is disabled for claude"),
        "{out}"
    );
    assert!(!out.contains("when:"), "{out}");
    assert!(!env.store().exists());
    assert!(env.calls().is_empty());
}

/// A zag exec session log (global project) of a Claude session in `cwd`.
fn zag_exec_log(env: &Env, wrapper: &str, cwd: &Path) -> PathBuf {
    let log = env
        .zag
        .join("logs/sessions")
        .join(format!("{wrapper}.jsonl"));
    let started = zag_line(
        1,
        wrapper,
        Some(SID),
        "session_started",
        json!({"command":"exec","model":null,"cwd":cwd,"resumed":false,"backfilled":false}),
    );
    let user = zag_line(
        2,
        wrapper,
        Some(SID),
        "user_message",
        json!({"role":"user","content":"refactor the parser","message_id":null}),
    );
    append(&log, format!("{started}{user}").as_bytes());
    log
}

#[test]
fn plan_of_a_zag_exec_log_respawns_in_its_cwd_and_leaves_a_scheduled_hit_to_zag() {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    limited_transcript(&env, &work);
    let log = zag_exec_log(&env, "w-a", &work);
    let reset = util::now_epoch() + 3600;
    append(
        &log,
        zag_line(
            3,
            "w-a",
            Some(SID),
            "assistant_message",
            json!({"content": format!("Claude AI usage limit reached|{reset}"), "message_id": null}),
        )
        .as_bytes(),
    );
    // zag's own record of a hit it scheduled itself.
    append(
        &log,
        zag_line(
            4,
            "w-a",
            Some(SID),
            "usage_limit_hit",
            json!({"scope":"session","reset_at":"2026-11-24T06:00:00Z","fallback_used":false,"incident_id":"i-1","scheduled_resume_at":"2026-11-24T06:00:00Z","raw":"Claude AI usage limit reached|1795500000"}),
        )
        .as_bytes(),
    );
    let (code, out, err) = env.run_cli(&["scan", "--plan", "--json", &log.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let plans: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["plan"].clone())
        .collect();
    assert_eq!(plans.len(), 2, "{out}");
    let due = chrono::DateTime::from_timestamp(reset, 0).unwrap();
    assert_eq!(
        plans[0]["due"],
        due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "{out}"
    );
    assert_eq!(plans[0]["channel"], "respawn", "{out}");
    assert_eq!(plans[0]["session_id"], SID, "{out}");
    assert_eq!(plans[0]["run_cwd"], work.display().to_string(), "{out}");
    assert_eq!(plans[1]["channel"], "none", "{out}");
    assert!(
        plans[1]["how"]
            .as_str()
            .unwrap()
            .contains("zag's scheduler owns it"),
        "{out}"
    );
    assert!(!env.store().exists());
    assert!(env.calls().is_empty());
}

/// Issue 19, item 3: a limit no wait lifts (Codex's out-of-credits line in
/// a spawn log) is planned as needing the user: no due time, what to do
/// instead, nothing written.
#[test]
fn plan_of_a_limit_no_wait_lifts_says_what_to_do_instead_of_a_time() {
    let env = Env::new();
    let log = env.zag.join("logs/spawn/w-credits.log");
    append(
        &log,
        b"OpenAI Codex v0.171.0\nERROR: Your workspace is out of credits. Add credits to continue.\n",
    );
    let file = log.display().to_string();
    let (code, out, err) = env.run_cli(&["scan", "--plan", "--json", &file]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["provider"], "codex", "{v}");
    assert_eq!(v["needs_user"], "credits", "{v}");
    assert_eq!(v["reset_at"], serde_json::Value::Null, "{v}");
    let plan = &v["plan"];
    assert_eq!(plan["due"], serde_json::Value::Null, "{v}");
    assert_eq!(plan["channel"], "none", "{v}");
    assert!(
        plan["needs_user"]
            .as_str()
            .is_some_and(|w| w.contains("add credits")),
        "{v}"
    );
    let (code, text, _) = env.run_cli(&["scan", "--plan", &file]);
    assert_eq!(code, 0);
    assert!(
        text.contains(
            "when: never (no wait lifts this limit: out of credits: add credits to the workspace)"
        ),
        "{text}"
    );
    assert!(text.contains("nothing scheduled"), "{text}");
    // A scan without --plan says the same in its own line.
    let (_, text, _) = env.run_cli(&["scan", &file]);
    assert!(text.contains("no wait lifts it: out of credits"), "{text}");
    assert!(!env.store().exists(), "nothing written");
    assert!(env.calls().is_empty());
}
