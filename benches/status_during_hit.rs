//! How long `status` takes to answer while the daemon handles a hit whose
//! session must be searched for on disk: the real binary, the real Unix
//! socket, a project with 2,000 Claude transcripts of 256 KB each, and a
//! zag relay session log that never names Claude's session id (so the
//! resolve reads every transcript of the project).
//!
//! A client thread sends `status` back to back on one connection from just
//! before each hit is appended until its `schedule` record is in the store;
//! the bench prints the median and the maximum answer time over those
//! requests, and how long each hit took to become durable.
//!
//! Run: `cargo bench --bench status_during_hit`. Target: status ≤ 20 ms.
//! `ZR_TRANSCRIPTS` changes the number of transcripts (default 2,000).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_zag-resumed");
const TRANSCRIPT_BYTES: usize = 256 * 1024;
const HITS: usize = 3;

/// Claude's project folder name for a cwd.
fn claude_dir_name(cwd: &Path) -> String {
    cwd.display().to_string().replace(['/', '.'], "-")
}

/// `n` transcripts of the session's cwd, each [`TRANSCRIPT_BYTES`] long.
fn write_transcripts(home: &Path, cwd: &Path, n: usize) {
    let dir = home.join(".claude/projects").join(claude_dir_name(cwd));
    std::fs::create_dir_all(&dir).unwrap();
    let old = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let filler = "x".repeat(900);
    for i in 0..n {
        let sid = format!("00000000-0000-4000-8000-{i:012}");
        let mut body = String::with_capacity(TRANSCRIPT_BYTES + 2048);
        while body.len() < TRANSCRIPT_BYTES {
            let line = serde_json::json!({
                "type": "assistant",
                "message": {"role": "assistant", "content": filler},
                "cwd": cwd,
                "sessionId": sid,
                "timestamp": old,
            });
            body.push_str(&line.to_string());
            body.push('\n');
        }
        std::fs::write(dir.join(format!("{sid}.jsonl")), body).unwrap();
    }
}

fn zag_line(seq: u64, wrapper: &str, kind: &str, fields: serde_json::Value) -> String {
    let mut v = serde_json::json!({
        "seq": seq,
        "ts": chrono::Utc::now().to_rfc3339(),
        "provider": "claude",
        "wrapper_session_id": wrapper,
        "provider_session_id": null,
        "source_kind": "wrapper",
        "completeness": "full",
        "type": kind,
    });
    for (k, val) in fields.as_object().unwrap() {
        v[k] = val.clone();
    }
    format!("{v}\n")
}

fn append(path: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

/// One `status` round trip on an open connection.
fn status(conn: &mut BufReader<UnixStream>) -> Duration {
    let t = Instant::now();
    conn.get_mut()
        .write_all(b"{\"v\":1,\"op\":\"status\"}\n")
        .unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\":true"), "{line}");
    t.elapsed()
}

fn schedules(store: &Path) -> usize {
    std::fs::read_to_string(store)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"action\":\"schedule\""))
        .count()
}

fn main() {
    let n: usize = std::env::var("ZR_TRANSCRIPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let zag = home.join(".zag");
    let sessions = zag.join("logs/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    std::fs::write(
        zag.join("zag.toml"),
        "[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n",
    )
    .unwrap();
    let cwd = dir.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    let t = Instant::now();
    write_transcripts(&home, &cwd, n);
    println!(
        "{n} transcripts of {} KB written in {:.1} s",
        TRANSCRIPT_BYTES / 1024,
        t.elapsed().as_secs_f64()
    );

    let log_path = dir.path().join("daemon.log");
    let mut child = Command::new(BIN)
        .arg("run")
        .env("HOME", &home)
        .env("RUST_LOG", "info")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let socket: PathBuf = zag.join("resumed/control.sock");
    let started = Instant::now();
    while !std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .contains("zag-resumed is watching")
    {
        assert!(started.elapsed() < Duration::from_secs(60), "no start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let store = zag.join("scheduled_resumes.jsonl");
    let mut conn = BufReader::new(UnixStream::connect(&socket).unwrap());
    for _ in 0..50 {
        status(&mut conn); // warm up
    }

    let mut during = Vec::new();
    let mut took = Vec::new();
    for h in 0..HITS {
        let wrapper = format!("relay-{h}");
        let log = sessions.join(format!("{wrapper}.jsonl"));
        append(
            &log,
            &zag_line(
                1,
                &wrapper,
                "session_started",
                serde_json::json!({"command":"relay","model":null,"cwd":cwd,"resumed":false,"backfilled":false}),
            ),
        );
        // Resets hours apart: each hit is a new incident.
        let reset = chrono::Utc::now().timestamp() + 3600 * (h as i64 + 1);
        let before = schedules(&store);
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (done, store) = (done.clone(), store.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                while schedules(&store) == before {
                    assert!(
                        t.elapsed() < Duration::from_secs(120),
                        "the hit never landed"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                done.store(true, Ordering::Release);
                t.elapsed()
            })
        };
        append(
            &log,
            &zag_line(
                2,
                &wrapper,
                "assistant_message",
                serde_json::json!({"content": format!("Claude AI usage limit reached|{reset}"), "message_id": null}),
            ),
        );
        while !done.load(Ordering::Acquire) {
            during.push(status(&mut conn));
        }
        took.push(watcher.join().unwrap());
    }
    let _ = child.kill();
    let _ = child.wait();

    during.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = during[during.len() / 2];
    let max = *during.last().unwrap();
    let took: Vec<String> = took.iter().map(|d| format!("{:.0}", ms(*d))).collect();
    println!(
        "hits handled in [{}] ms (append to durable schedule)",
        took.join(", ")
    );
    println!(
        "status during the hits: {} requests, median {:.2} ms, max {:.2} ms (target <= 20 ms)",
        during.len(),
        ms(median),
        ms(max)
    );
}
