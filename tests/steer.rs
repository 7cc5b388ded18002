//! Steering one incident on the real binary: `resume-now` delivers a
//! pending resume at once through the daemon's normal path (or at the next
//! start when no daemon runs), `retry` gives a failed one one more delivery;
//! both are recorded in the store as such and shown by `history`.

mod util;

use serde_json::{json, Value};
use util::{
    append, claude_limit, claude_transcript_path, claude_user, pending_count, wait_for, Env,
};

const SID: &str = "6873a0e2-51d4-4c3e-9a55-0d7c1b2f3e4d";

/// A Claude transcript whose last entry is a limit with an exact reset
/// `reset_in` seconds from now (negative: already passed).
fn limit_in_transcript(env: &Env, reset_in: i64) -> std::path::PathBuf {
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let transcript = claude_transcript_path(env, &work, SID);
    // The limit was written 150 s ago (a reset just passed is after it).
    let now = chrono::Utc::now() - chrono::Duration::seconds(150);
    let reset = chrono::Utc::now().timestamp() + reset_in;
    let user = claude_user(
        &work,
        SID,
        "refactor the parser",
        &(now - chrono::Duration::seconds(5)).to_rfc3339(),
    );
    let mut limit = claude_limit(
        &work,
        SID,
        "You've hit your 5-hour limit · resets 11:59pm (UTC)",
        &now.to_rfc3339(),
    );
    // The exact reset, as Claude Code 2.1.332 records it beside the text.
    limit["apiError"] = json!("usage_limit_reached");
    limit["apiErrorStatus"] = json!(429);
    limit["apiErrorParams"] = json!({"rate_limit_info":{"status":"rejected","resetsAt":reset,"rateLimitType":"five_hour"}});
    append(&transcript, format!("{user}\n{limit}\n").as_bytes());
    transcript
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

#[test]
fn resume_now_delivers_a_pending_resume_at_once_and_says_so_in_the_store() {
    let env = Env::new();
    let daemon = env.start();
    limit_in_transcript(&env, 7200);
    wait_for("the pending incident", || {
        env.status().is_some_and(|s| pending_count(&s) == 1)
    });
    let id = pending_id(&env);
    assert!(env.calls().is_empty(), "nothing runs before the reset");

    let (code, out, err) = env.run_cli(&["resume-now", &id[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("resuming {} now", &id[..8])),
        "{out}"
    );
    assert!(out.contains("the daemon delivers it"), "{out}");

    wait_for("the resume", || !env.calls().is_empty());
    wait_for("its complete record", || !env.completes().is_empty());
    assert_eq!(env.calls().len(), 1);
    assert_eq!(env.completes()[0]["status"], "resumed");
    let again: Vec<Value> = records(&env)
        .into_iter()
        .filter(|r| r["action"] == "schedule" && r["requested"] == "resume-now")
        .collect();
    assert_eq!(again.len(), 1, "{:?}", records(&env));
    assert_eq!(again[0]["incident_id"], id.as_str());

    let (_, history, _) = env.run_cli(&["history"]);
    assert!(history.contains("resume-now requested"), "{history}");
    assert!(history.contains("resumed"), "{history}");
    // It ended: a second request says how, in the resolver's words.
    let (code, _, err) = env.run_cli(&["resume-now", &id[..8]]);
    assert_eq!(code, 1);
    assert!(err.contains("it was already resumed"), "{err}");
    drop(daemon);
}

#[test]
fn resume_now_without_a_daemon_is_recorded_and_delivered_at_the_next_start() {
    let env = Env::new();
    let daemon = env.start();
    limit_in_transcript(&env, 7200);
    wait_for("the pending incident", || {
        env.status().is_some_and(|s| pending_count(&s) == 1)
    });
    let id = pending_id(&env);
    assert_eq!(daemon.terminate(), 0);

    let (code, out, err) = env.run_cli(&["resume-now", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no daemon runs"), "{out}");
    assert!(env.calls().is_empty());

    let daemon = env.start();
    wait_for("the resume after the start", || !env.calls().is_empty());
    wait_for("its complete record", || !env.completes().is_empty());
    assert_eq!(env.calls().len(), 1);
    drop(daemon);
}

#[test]
fn retry_gives_a_failed_incident_one_more_delivery_as_a_chained_incident() {
    let env = Env::new();
    env.fake_cli("claude", "not today", 1);
    let daemon = env.start();
    limit_in_transcript(&env, -30);
    wait_for("the failed delivery", || {
        env.completes().iter().any(|c| c["status"] == "failed")
    });
    let failed = env.completes()[0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(env.calls().len(), 1);

    // A failed incident is not pending: resume-now refuses, saying why.
    let (code, _, err) = env.run_cli(&["resume-now", &failed[..8]]);
    assert_eq!(code, 1);
    assert!(err.contains("it already failed"), "{err}");

    env.fake_cli(
        "claude",
        r#"{"type":"result","subtype":"success","is_error":false,"result":"ok"}"#,
        0,
    );
    let (code, out, err) = env.run_cli(&["retry", "--json", &failed[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    let reply: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["action"], "retry");
    assert_eq!(reply["retry_of"], failed.as_str());
    assert_eq!(reply["daemon_running"], true);
    let new_id = reply["incident_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, failed);

    wait_for("the retried delivery", || env.calls().len() == 2);
    wait_for("its complete record", || {
        env.completes()
            .iter()
            .any(|c| c["incident_id"] == new_id.as_str() && c["status"] == "resumed")
    });
    let retried = records(&env)
        .into_iter()
        .find(|r| r["action"] == "schedule" && r["incident_id"] == new_id.as_str())
        .unwrap();
    assert_eq!(retried["requested"], "retry");
    assert_eq!(retried["retry_of"], failed.as_str());
    assert_eq!(retried["chain_id"], failed.as_str());

    // Resumed now: nothing left to retry.
    let (code, _, err) = env.run_cli(&["retry", &new_id[..8]]);
    assert_eq!(code, 1);
    assert!(err.contains("only a failed or skipped incident"), "{err}");
    drop(daemon);
}

#[test]
fn a_retry_is_refused_while_its_session_has_a_pending_resume() {
    let env = Env::new();
    env.fake_cli("claude", "not today", 1);
    let daemon = env.start();
    limit_in_transcript(&env, -30);
    wait_for("the failed delivery", || !env.completes().is_empty());
    let failed = env.completes()[0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The session hits a later limit: it has a pending resume again.
    limit_in_transcript(&env, 7200);
    wait_for("the new pending incident", || {
        env.status().is_some_and(|s| pending_count(&s) == 1)
    });
    let pending = pending_id(&env);
    let (code, _, err) = env.run_cli(&["retry", &failed]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("already has a pending resume ({})", &pending[..8])),
        "{err}"
    );
    assert_eq!(env.calls().len(), 1);
    drop(daemon);
}
