//! Wake-ups of an idle daemon: the real binary, 1,000 pending resumes due
//! tomorrow, 200 watched session logs, nothing happening. Counts every
//! context switch of every daemon thread (a thread that wakes and sleeps
//! again switches at least once) and the CPU time used, over a window of
//! 60 s (`ZR_IDLE_SECS` changes it).
//!
//! Run: `cargo bench --bench idle`. Target: 0 wake-ups.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_zag-resumed");

/// (voluntary + involuntary context switches over all threads, threads).
fn switches(pid: u32) -> (u64, usize) {
    let mut total = 0;
    let mut threads = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        threads += 1;
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches")
                || line.starts_with("nonvoluntary_ctxt_switches")
            {
                total += line
                    .split_whitespace()
                    .last()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
            }
        }
    }
    (total, threads)
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn setup(home: &Path) {
    let zag = home.join(".zag");
    let sessions = zag.join("logs/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let mut store = std::fs::File::create(zag.join("scheduled_resumes.jsonl")).unwrap();
    for i in 0..1000 {
        let when = (tomorrow + chrono::Duration::seconds(i)).to_rfc3339();
        writeln!(
            store,
            r#"{{"action":"schedule","incident_id":"{}","session_id":"s{i}","provider":"claude","when":"{when}","message":"Continue","attempt":1,"log_path":"","origin":"zag-resumed","provider_session_id":"s{i}","cwd":"/tmp"}}"#,
            uuid::Uuid::new_v4()
        )
        .unwrap();
    }
    for i in 0..200 {
        std::fs::write(
            sessions.join(format!("w{i}.jsonl")),
            "{\"seq\":1,\"type\":\"heartbeat\"}\n",
        )
        .unwrap();
    }
}

fn main() {
    let secs: u64 = std::env::var("ZR_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    setup(home);
    let log = home.join("daemon.log");
    let mut child = Command::new(BIN)
        .arg("run")
        .env("HOME", home)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("is watching")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let start-up settle (re-arm, first checkpoint save).
    std::thread::sleep(Duration::from_secs(3));
    let (s0, threads) = switches(pid);
    let c0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let (s1, _) = switches(pid);
    let c1 = cpu_ticks(pid);
    let _ = child.kill();
    let _ = child.wait();
    let armed = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("pending=1000");
    println!("idle daemon: {threads} threads, 1000 pending resumes (re-armed: {armed}), 200 watched logs");
    println!("  window:             {secs} s");
    println!(
        "  wake-ups:           {} context switches across all threads",
        s1 - s0
    );
    println!("  CPU time:           {} clock ticks", c1 - c0);
    println!("  target:             0 wake-ups");
}
