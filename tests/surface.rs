//! The surface a person uses, on the real binary: short incident ids and
//! prefixes, `history`, how `subscribe` ends, a failed `reload`, `-v`, an
//! idle `status`, every argument's help, and a newcomer's first walk.

mod util;

use std::io::BufRead;
use std::process::Stdio;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use util::{
    append, append_claude_limited_turn, claude_limit_text, claude_transcript_path, wait_for, Env,
};

/// A pending record of ours, due in `in_secs`, each of its own session
/// (one session has at most one pending resume).
fn schedule(id: &str, in_secs: i64) -> String {
    let now = Utc::now();
    let session = format!("6873abcd-{}", &id[id.len() - 4..]);
    format!(
        "{}\n",
        json!({
            "action": "schedule", "incident_id": id, "session_id": session,
            "provider": "claude", "when": (now + Duration::seconds(in_secs)).to_rfc3339(),
            "message": "Continue", "attempt": 1, "log_path": "", "origin": "zag-resumed",
            "scope": "weekly", "cwd": "/tmp",
            "reset_at": (now + Duration::seconds(in_secs - 30)).to_rfc3339(),
            "hit_at": (now - Duration::seconds(600)).to_rfc3339(),
            "source_file": format!("/home/u/.claude/projects/p/{session}.jsonl"),
        })
    )
}

const A: &str = "8432fc05-aaaa-4000-8000-000000000001";
const B: &str = "8432ab00-bbbb-4000-8000-000000000002";
const RESUMED: &str = "c0ffee00-cccc-4000-8000-000000000003";
const FAILED: &str = "deadbeef-dddd-4000-8000-000000000004";
const CANCELLED: &str = "0badf00d-eeee-4000-8000-000000000005";

/// Two pending incidents sharing the prefix `8432`, and one each resumed
/// (with the new `at`/`detail` keys), failed and cancelled (zag's plain
/// shape, as older records and zag's own are).
fn seed(env: &Env) {
    let mut text = String::new();
    for id in [A, B, RESUMED, FAILED, CANCELLED] {
        text += &schedule(id, 7200);
    }
    text += &format!(
        "{{\"action\":\"complete\",\"incident_id\":\"{RESUMED}\",\"status\":\"resumed\",\"at\":\"2030-01-01T10:00:00Z\",\"detail\":\"via fifo\"}}\n"
    );
    text += &format!(
        "{{\"action\":\"complete\",\"incident_id\":\"{FAILED}\",\"status\":\"failed\",\"error\":\"exit 1\"}}\n"
    );
    text += &format!("{{\"action\":\"cancel\",\"incident_id\":\"{CANCELLED}\"}}\n");
    append(&env.store(), text.as_bytes());
}

/// (exit code, stderr) of a `cancel` that must fail.
fn refused(env: &Env, prefix: &str) -> String {
    let (code, out, err) = env.run_cli(&["cancel", prefix]);
    assert_eq!(code, 1, "cancel {prefix}: {out}{err}");
    assert!(out.is_empty(), "{out}");
    err
}

#[test]
fn ids_are_short_where_people_look_and_any_unique_prefix_cancels() {
    let env = Env::new();
    seed(&env);
    let cases = ["8432", "ffff", "c0ffee", "deadbeef", "0bad"];
    let offline: Vec<String> = cases.iter().map(|p| refused(&env, p)).collect();
    let want = [
        "zag-resumed: \"8432\" is ambiguous: it matches 2 incidents (8432ab00, 8432fc05); give more characters\n"
            .to_string(),
        format!(
            "zag-resumed: no incident matches \"ffff\" in any store under {}\n",
            env.zag.display()
        ),
        "zag-resumed: no pending incident c0ffee00: it was already resumed at 2030-01-01 10:00 UTC\n"
            .into(),
        "zag-resumed: no pending incident deadbeef: it already failed (exit 1)\n".into(),
        "zag-resumed: no pending incident 0badf00d: it was already cancelled\n".into(),
    ];
    assert_eq!(offline, want);

    let daemon = env.start();
    let online: Vec<String> = cases.iter().map(|p| refused(&env, p)).collect();
    assert_eq!(online, offline, "the same words with a daemon running");

    let (code, status, err) = env.run_cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        status.contains("  8432ab00  claude · session 6873… · resumes in")
            && status.contains("  8432fc05  claude"),
        "{status}"
    );
    let (_, list, _) = env.run_cli(&["list"]);
    assert!(
        list.lines().any(|l| l.starts_with("8432fc05  claude")),
        "{list}"
    );
    assert!(!list.contains(A), "list shows the short id: {list}");

    // A unique prefix cancels, through the daemon, and records when and how.
    let (code, out, err) = env.run_cli(&["cancel", "8432f"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("cancelled 8432fc05 (claude"), "{out}");
    let last = env.records(&env.store()).pop().unwrap();
    assert_eq!(last["action"], "cancel");
    assert_eq!(last["incident_id"], A);
    assert_eq!(last["detail"], "cancelled with zag-resumed cancel");
    assert!(last["at"].as_str().is_some(), "{last}");
    let again = refused(&env, "8432f");
    assert!(
        again
            .starts_with("zag-resumed: no pending incident 8432fc05: it was already cancelled at "),
        "{again}"
    );
    drop(daemon);

    // Without the daemon: the same prefix rules, the same record keys.
    let (code, out, err) = env.run_cli(&["cancel", "8432a", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({"action": "cancel", "incident_id": B, "status": "ok"})
    );
    let last = env.records(&env.store()).pop().unwrap();
    assert_eq!(
        last["detail"],
        "cancelled with zag-resumed cancel (no daemon running)"
    );
}

#[test]
fn history_tells_each_incident_with_and_without_a_daemon() {
    let env = Env::new();
    seed(&env);
    let (code, text, err) = env.run_cli(&["history"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("c0ffee00  claude · session 6873… · weekly limit · resumed\n"),
        "{text}"
    );
    assert!(
        text.contains("  resumed    2030-01-01 10:00 UTC · "),
        "the outcome time is shown: {text}"
    );
    assert!(
        text.contains("  failed     time not recorded · exit 1\n"),
        "an old record without `at` still renders: {text}"
    );
    assert!(text.contains("  cancelled  time not recorded\n"), "{text}");
    assert!(text.contains("  pending    resumes in 1h 59m"), "{text}");
    assert!(
        text.contains("  hit        ") && text.contains("· /home/u/.claude/projects/p/"),
        "{text}"
    );

    let (code, offline, _) = env.run_cli(&["history", "--json"]);
    assert_eq!(code, 0);
    let all: Vec<Value> = serde_json::from_str(&offline).unwrap();
    assert_eq!(all.len(), 5);
    let resumed = all.iter().find(|h| h["incident_id"] == RESUMED).unwrap();
    assert_eq!(resumed["state"], "resumed");
    assert_eq!(resumed["reason"], "via fifo");
    assert_eq!(resumed["short_id"], "c0ffee00");

    let daemon = env.start();
    let (_, online, _) = env.run_cli(&["history", "--json"]);
    assert_eq!(online, offline, "history reads the stores, daemon or not");
    drop(daemon);

    // --since: a relative span and an RFC 3339 time; a bad one is a usage error.
    let (_, recent, _) = env.run_cli(&["history", "--json", "--since", "1h"]);
    let recent: Vec<Value> = serde_json::from_str(&recent).unwrap();
    assert_eq!(recent.len(), 5, "all were scheduled within the hour");
    let (_, future, _) = env.run_cli(&["history", "--json", "--since", "2099-01-01T00:00:00Z"]);
    assert_eq!(future.trim(), "[]");
    let (code, _, err) = env.run_cli(&["history", "--since", "yesterday"]);
    assert_eq!(code, 1);
    assert!(err.contains("--since \"yesterday\": expected"), "{err}");
}

#[test]
fn every_argument_of_every_command_has_help() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            if help.trim().is_empty() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(format!("{path} {} (no about)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(
        &zag_resumed::cli::Cli::command(),
        "zag-resumed",
        &mut missing,
    );
    assert!(missing.is_empty(), "arguments without help: {missing:?}");

    // And the binary prints them.
    let env = Env::new();
    let (code, out, _) = env.run_cli(&["cancel", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("<INCIDENT_ID>") && out.contains("unique prefix"),
        "{out}"
    );
    let (_, out, _) = env.run_cli(&["history", "--help"]);
    assert!(
        out.contains("--since <WHEN>") && out.contains("RFC 3339"),
        "{out}"
    );
}

#[test]
fn subscribe_ends_with_why_and_a_failure_status() {
    let env = Env::new();
    append(&env.store(), schedule(A, 7200).as_bytes());
    let daemon = env.start();
    let mut sub = env
        .cmd(&["subscribe"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(sub.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    // Cancel until the subscriber shows it: proof it is subscribed.
    let mut seen = None;
    for _ in 0..100 {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            seen = Some(l);
            break;
        }
        // The first cancel may land before the subscription: then the
        // record is gone and a fresh one is needed.
        if env.run_cli(&["cancel", "8432fc"]).0 != 0 {
            let id = format!("8432fc05-{}", uuid_tail());
            append(&env.store(), schedule(&id, 7200).as_bytes());
            wait_for("the new record to be pending", || {
                env.run_cli(&["list"]).1.contains("8432fc05")
            });
        }
    }
    let line = seen.expect("subscriber never saw an event");
    assert!(line.contains("cancelled  8432fc05"), "{line}");
    assert_eq!(daemon.terminate(), 0);
    let status = sub.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut sub.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.trim_end()
            .ends_with("zag-resumed: subscription ended: the daemon stopped"),
        "{err}"
    );
}

fn uuid_tail() -> String {
    format!("{:027x}", Utc::now().timestamp_nanos_opt().unwrap_or(0))
}

#[test]
fn a_failed_reload_is_logged_with_file_line_and_column() {
    let env = Env::new();
    let daemon = env.start();
    let config = env.zag.join("resumed/config.toml");
    std::fs::write(&config, "[notify]\ndesktop = maybe\n").unwrap();
    let (code, _, err) = env.run_cli(&["reload"]);
    assert_eq!(code, 1);
    let place = format!("{}:2:11", config.display());
    assert!(err.contains(&place), "{err}");
    daemon.wait_log("reload request: reload failed, keeping the old configuration");
    assert!(daemon.log_text().contains(&place), "{}", daemon.log_text());
    // The same error at start-up.
    let (code, _, err) = env.run_cli(&["run"]);
    assert_eq!(code, 1);
    assert!(err.contains(&place), "{err}");
    drop(daemon);
}

#[test]
fn verbose_raises_only_our_own_detail() {
    let env = Env::new();
    append(&env.store(), schedule(A, 7200).as_bytes());
    for (flag, level) in [("-v", "DEBUG"), ("-vv", "TRACE")] {
        let log = env.dir.path().join(format!("v{flag}.log"));
        let mut child = env
            .cmd(&["run", flag])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        wait_for("the daemon to watch", || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("zag-resumed is watching")
        });
        let (code, _, err) = env.run_cli(&["status"]);
        assert_eq!(code, 0, "{err}");
        wait_for("the request in the log", || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("control request op=status")
        });
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.lines()
                .any(|l| l.contains(&format!(" {level} zag_resumed"))),
            "{flag} shows our {level} lines:\n{text}"
        );
        assert_eq!(
            text.contains(" TRACE "),
            level == "TRACE",
            "{flag}: trace only with -vv"
        );
        for l in text.lines() {
            if l.contains(" DEBUG ") || l.contains(" TRACE ") {
                assert!(
                    l.contains(" zag_resumed"),
                    "{flag}: another crate's detail: {l}"
                );
            }
        }
        assert!(
            !text.contains("reset_at=Some(") && !text.contains("None"),
            "times for people: {text}"
        );
    }
}

#[test]
fn an_idle_status_lists_the_roots_it_watches() {
    let env = Env::new();
    std::fs::create_dir_all(env.home.join(".claude")).unwrap();
    let daemon = env.start();
    let (code, out, err) = env.run_cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("no pending resumes\nwatched roots:\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  {}  (exists)\n", env.zag.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  {}  (exists)\n",
            env.home.join(".claude").display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  {}  (missing)\n",
            env.home.join(".codex").display()
        )),
        "{out}"
    );
    drop(daemon);
}

/// The README's way in: `run` with the embedded defaults, a limit in a
/// Claude transcript, then `status`, `history`, `cancel <prefix>`, `history`.
#[test]
fn a_newcomers_walk() {
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let sid = "5d0c3f6e-1111-4222-8333-944445555666";
    let transcript = transcript_path(&env, &work, sid);
    let daemon = env.start();
    let now = Utc::now();
    let hit = now - Duration::seconds(20);
    let reset = now + Duration::hours(3);
    let text = claude_limit_text(reset, "%-I%P");
    append_claude_limited_turn(&transcript, &work, sid, "hi", &text, hit);

    wait_for("status to show the pending resume", || {
        env.run_cli(&["status"]).1.contains("session 5d0c…")
    });
    let (_, status, _) = env.run_cli(&["status"]);
    let line = status
        .lines()
        .find(|l| l.contains("session 5d0c…"))
        .unwrap()
        .to_string();
    let short = line.split_whitespace().next().unwrap().to_string();
    assert_eq!(short.len(), 8, "{line}");
    assert!(short.chars().all(|c| c.is_ascii_hexdigit()), "{line}");

    let (_, history, _) = env.run_cli(&["history"]);
    assert!(
        history.contains(&format!(
            "{short}  claude · session 5d0c… · 5-hour limit · pending"
        )),
        "{history}"
    );
    assert!(
        history.contains(&transcript.display().to_string()),
        "{history}"
    );

    let (code, out, err) = env.run_cli(&["cancel", &short[..6]]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("cancelled {short} (claude")),
        "{out}"
    );
    let (_, history, _) = env.run_cli(&["history"]);
    assert!(
        history.contains(&format!(
            "{short}  claude · session 5d0c… · 5-hour limit · cancelled"
        )),
        "{history}"
    );
    assert!(
        history.contains("cancelled with zag-resumed cancel"),
        "{history}"
    );
    assert!(env.calls().is_empty(), "nothing was resumed");
    drop(daemon);
}

/// Where Claude keeps the transcript of session `sid` run in `work`; its
/// folder is made now, as a Claude user's already exists. (A daemon that
/// sees `~/.claude` itself appear can miss a tree created in one burst:
/// the folder is listed before its watch is in place; see the report.)
fn transcript_path(env: &Env, work: &std::path::Path, sid: &str) -> std::path::PathBuf {
    let path = claude_transcript_path(env, work, sid);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    path
}

/// A limit whose reset already passed: the daemon hits and resumes at once.
/// The transcript's folder must exist before the daemon starts
/// ([`transcript_path`]).
fn claude_limit_now(env: &Env, sid: &str) -> std::path::PathBuf {
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let transcript = transcript_path(env, &work, sid);
    let now = Utc::now();
    // Minutes of margin on both sides of the reset: the phrase has minute
    // precision, and a loaded machine may be slow to read the line.
    let hit = now - Duration::seconds(600);
    let reset = now - Duration::seconds(120);
    let text = claude_limit_text(reset, "%-I:%M%P");
    append_claude_limited_turn(&transcript, &work, sid, "hi", &text, hit);
    transcript
}

#[test]
fn hits_and_resumes_reach_ntfy_and_the_command_hook() {
    use std::io::{Read, Write};
    let env = Env::new();
    // An ntfy stand-in: records each request, answers 200.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for conn in server.incoming() {
            let Ok(mut conn) = conn else { return };
            conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then Content-Length bytes of body.
            loop {
                let n = conn.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        // header names are case-insensitive (the client
                        // sends them lower-case)
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_string)
                        })
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if req.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
            let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
        }
    });
    let hook_out = env.dir.path().join("hook-events");
    let hook = env.dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$1\" = an-arg ] || exit 3\ncat >> '{}'\n",
            hook_out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = env.zag.join("resumed/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[notify]\nntfy_url = \"http://127.0.0.1:{port}/my-topic\"\ncommand = [\"{}\", \"an-arg\"]\n",
            hook.display()
        ),
    )
    .unwrap();
    let work = env.dir.path().join("proj");
    transcript_path(&env, &work, "7e57aaaa-1111-4222-8333-944445555666");
    let daemon = env.start();
    claude_limit_now(&env, "7e57aaaa-1111-4222-8333-944445555666");

    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(
            rx.recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("ntfy got {got:?}\n{}", daemon.log_text())),
        );
    }
    // Header names compared case-insensitively, as HTTP reads them.
    let header = |r: &str, h: &str| r.to_ascii_lowercase().contains(&format!("\r\n{h}\r\n"));
    let hit = got
        .iter()
        .find(|r| header(r, "title: claude hit its usage limit"))
        .unwrap_or_else(|| panic!("{got:?}"));
    assert!(hit.starts_with("POST /my-topic HTTP/1.1\r\n"), "{hit}");
    assert!(header(hit, "tags: hourglass"), "{hit}");
    assert!(hit.contains("session 7e57…"), "{hit}");
    let resumed = got
        .iter()
        .find(|r| header(r, "title: claude session resumed"))
        .unwrap_or_else(|| panic!("{got:?}"));
    assert!(header(resumed, "tags: white_check_mark"), "{resumed}");

    wait_for("the hook to see hit and resumed", || {
        let t = std::fs::read_to_string(&hook_out).unwrap_or_default();
        t.contains("\"event\":\"hit\"") && t.contains("\"event\":\"resumed\"")
    });
    for line in std::fs::read_to_string(&hook_out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["session_id"], "7e57aaaa-1111-4222-8333-944445555666",
            "{v}"
        );
    }
    drop(daemon);
}

#[test]
fn failing_pushes_are_logged_and_change_nothing_else() {
    let env = Env::new();
    // A port nobody listens on, and a hook that does not exist.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = env.zag.join("resumed/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[notify]\nntfy_url = \"http://127.0.0.1:{port}/t\"\ncommand = [\"/nonexistent/hook\"]\n"
        ),
    )
    .unwrap();
    let work = env.dir.path().join("proj");
    transcript_path(&env, &work, "fa11aaaa-1111-4222-8333-944445555666");
    let daemon = env.start();
    claude_limit_now(&env, "fa11aaaa-1111-4222-8333-944445555666");
    wait_for("the resume", || !env.calls().is_empty());
    daemon.wait_log("ntfy push failed");
    daemon.wait_log("notify command failed: cannot run /nonexistent/hook");
    let (code, out, err) = env.run_cli(&["history"]);
    assert_eq!(code, 0, "{err}");
    wait_for("the outcome in history", || {
        env.run_cli(&["history"]).1.contains("· resumed\n")
    });
    assert!(out.contains("fa11"), "{out}");
    drop(daemon);
}
