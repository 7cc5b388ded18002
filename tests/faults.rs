//! Faults of the disk under the real daemon binary: a project's store on a
//! tiny tmpfs that is filled to its last page, made read-only or given its
//! space back, while the offsets and every other store sit on the normal
//! disk (issue 18).
//!
//! The tmpfs lives in a private mount namespace (`unshare -m`, held open by
//! a `sleep` so it outlives a killed daemon) and the daemon is started in
//! it with `nsenter`: nothing outside the test sees the mount, nothing in
//! the daemon is a test seam, and the store's OS errors are the real ones
//! (ENOSPC, EROFS). Needs root (CI runs as root); skipped with one line
//! otherwise, unless `CI` is set.
//!
//! A disk cannot be made slow that way: the slow-disk tests hold a store's
//! appends with a debug build's `ZAG_RESUMED_SLOW_STORE` (see
//! `zag_resumed::fault`) and need no root, as do the injected panics.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use util::{append_claude_limited_turn, claude_transcript_path, wait_for, Env, BIN};

const SID: &str = "6873a0e2-51d4-4c3e-9a55-0d7c1b2f3e4d";
const OTHER: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// A private mount namespace, alive while this lives.
struct Ns(Child);

impl Ns {
    fn new() -> Option<Ns> {
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sleep", "600"])
            .spawn();
        let ns = match holder {
            Ok(c) => Ns(c),
            Err(e) => return skip(&format!("no unshare: {e}")),
        };
        let ours = std::fs::read_link("/proc/self/ns/mnt").ok()?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            match std::fs::read_link(format!("/proc/{}/ns/mnt", ns.pid())) {
                Ok(theirs) if theirs != ours => return Some(ns),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        skip("unshare -m did not give a mount namespace (not root?)")
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Run a shell script inside the namespace; whether it succeeded.
    fn sh(&self, script: &str) -> bool {
        Command::new("nsenter")
            .args([
                "-t",
                &self.pid().to_string(),
                "-m",
                "--",
                "sh",
                "-c",
                script,
            ])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A file as the daemon sees it.
    fn read(&self, path: &Path) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-m", "--", "cat"])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The daemon's `run`, in the namespace, with `env`'s environment.
    fn daemon_cmd(&self, env: &Env) -> Command {
        let base = env.cmd(&["run"]);
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid().to_string(), "-m", "--", BIN, "run"]);
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skip(why: &str) -> Option<Ns> {
    assert!(
        std::env::var_os("CI").is_none(),
        "fault tests need a private mount namespace, and CI is set: {why}"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP fault tests: {why}");
    None
}

/// A project (a git work tree) whose store sits on a 256 KiB tmpfs in
/// `ns`: (work tree, store).
fn project_on_tmpfs(env: &Env, ns: &Ns) -> (PathBuf, PathBuf) {
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(work.join(".git")).unwrap();
    let paths = zag_resumed::paths::Paths::new(&env.home, None);
    let project = paths.project_for_root(&work.display().to_string());
    std::fs::create_dir_all(&project).unwrap();
    // The project's zag.toml (no jitter, no stagger) lives there too.
    assert!(ns.sh(&format!(
        "mount -t tmpfs -o size=256k zr-store '{p}' && printf '[usage_limits]\\njitter_secs = 0\\nstagger_secs = 0\\n' > '{p}/zag.toml'",
        p = project.display()
    )));
    (work, project.join("scheduled_resumes.jsonl"))
}

/// Fill the tmpfs holding `store` to its last page.
fn fill(ns: &Ns, store: &Path) {
    let dir = store.parent().unwrap().display().to_string();
    // `cat` stops at ENOSPC with an error: the disk is full.
    ns.sh(&format!("cat /dev/zero > '{dir}/fill' 2>/dev/null"));
    assert!(
        !ns.sh(&format!("echo probe >> '{dir}/probe'")),
        "the tmpfs is full"
    );
}

fn free(ns: &Ns, store: &Path) {
    let dir = store.parent().unwrap().display().to_string();
    assert!(ns.sh(&format!("rm -f '{dir}/fill' '{dir}/probe'")));
}

fn actions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|r| r["action"].as_str().map(str::to_string))
        .collect()
}

/// A Claude limit whose reset is `reset` exactly (the epoch form), met by
/// session `sid` in `work` a minute ago.
fn claude_hit(env: &Env, work: &Path, sid: &str, reset: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let transcript = claude_transcript_path(env, work, sid);
    let text = format!("Claude AI usage limit reached|{}", reset.timestamp());
    let hit = chrono::Utc::now() - chrono::Duration::seconds(60);
    append_claude_limited_turn(&transcript, work, sid, "hi", &text, hit);
    transcript
}

fn unwritable(s: &serde_json::Value) -> Option<&serde_json::Value> {
    s["unwritable"].as_array().and_then(|a| a.first())
}

/// Waits until `status --json` reports `store` unwritable with a record
/// waiting, its OS error saying `error`, and checks the human `status`
/// says so too.
fn wait_unwritable(env: &Env, store: &Path, error: &str) {
    let st = env.wait_status("the store reported unwritable", |s| {
        unwritable(s).is_some_and(|o| o["waiting"].as_u64() >= Some(1))
    });
    let o = unwritable(&st).unwrap();
    assert_eq!(o["store"], store.display().to_string(), "{st}");
    assert!(o["error"].as_str().unwrap().contains(error), "{st}");
    let (_, text, _) = env.run_cli(&["status"]);
    assert!(text.contains("CANNOT WRITE"), "{text}");
}

/// The saved offset of `file` (the ingest thread's checkpoint).
fn saved_offset(env: &Env, file: &Path) -> Option<u64> {
    let offsets = env.zag.join("resumed/offsets.json");
    std::fs::read_to_string(offsets)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["files"][file.to_string_lossy().as_ref()]["offset"].as_u64())
}

#[test]
fn disk_full_at_the_hit_then_a_crash_the_limit_is_resumed_once_after_restart() {
    let Some(ns) = Ns::new() else { return };
    let env = Env::new();
    let (work, store) = project_on_tmpfs(&env, &ns);
    fill(&ns, &store);
    let daemon = env.start_cmd(ns.daemon_cmd(&env));
    // Due at once: only the store stands in the way.
    let transcript = claude_hit(
        &env,
        &work,
        SID,
        chrono::Utc::now() - chrono::Duration::seconds(30),
    );
    wait_unwritable(&env, &store, "No space left");
    // Retried, never delivered, never acknowledged.
    daemon.wait_log("not acknowledged, armed from memory, retrying");
    std::thread::sleep(Duration::from_millis(600));
    assert!(env.calls().is_empty(), "nothing delivered it cannot record");
    let len = std::fs::metadata(&transcript).unwrap().len();
    assert_ne!(saved_offset(&env, &transcript), Some(len), "offset held");
    assert!(actions(&ns.read(&store)).is_empty());

    daemon.kill9();
    free(&ns, &store);
    let daemon = env.start_cmd(ns.daemon_cmd(&env));
    wait_for("the resume after the restart", || !env.calls().is_empty());
    wait_for("the complete record", || {
        actions(&ns.read(&store)) == ["schedule", "complete"]
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.calls().len(), 1, "resumed exactly once");
    drop(daemon);
}

/// Also the figure of the note: how long a hit waits unacknowledged in an
/// outage of `ZR_OUTAGE_SECS` (default 2) seconds, printed with
/// `--nocapture`; and another session's hit, in another (writable) store,
/// flows meanwhile.
#[test]
fn disk_full_at_the_hit_space_back_the_schedule_is_written_within_seconds() {
    let Some(ns) = Ns::new() else { return };
    let outage: u64 = std::env::var("ZR_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let env = Env::new();
    let (work, store) = project_on_tmpfs(&env, &ns);
    let other_work = env.dir.path().join("other");
    std::fs::create_dir_all(&other_work).unwrap();
    fill(&ns, &store);
    let daemon = env.start_cmd(ns.daemon_cmd(&env));
    let reset = chrono::Utc::now() + chrono::Duration::hours(1);
    let t0 = Instant::now();
    let transcript = claude_hit(&env, &work, SID, reset);
    wait_unwritable(&env, &store, "No space left");
    // Meanwhile another session, whose store (the global one) is
    // writable: scheduled and acknowledged as usual.
    let other = claude_hit(&env, &other_work, OTHER, reset);
    let t_other = Instant::now();
    wait_for("the other session's schedule", || {
        actions(&ns.read(&env.store())) == ["schedule"]
    });
    env.wait_read_whole(&other);
    let other_took = t_other.elapsed();
    let len = std::fs::metadata(&transcript).unwrap().len();
    assert_ne!(saved_offset(&env, &transcript), Some(len), "offset held");
    assert!(actions(&ns.read(&store)).is_empty());

    let elapsed = t0.elapsed();
    std::thread::sleep(Duration::from_secs(outage).saturating_sub(elapsed));
    let back = Instant::now();
    free(&ns, &store);
    wait_for("the schedule in the store", || {
        actions(&ns.read(&store)) == ["schedule"]
    });
    let written_after = back.elapsed();
    env.wait_read_whole(&transcript);
    let unacked = t0.elapsed();
    let st = env.wait_status("the outage over", |s| unwritable(s).is_none());
    assert_eq!(util::pending_count(&st), 2, "{st}");
    assert!(
        written_after < Duration::from_secs(5),
        "written {written_after:?} after space came back"
    );
    assert!(env.calls().is_empty(), "nothing before the reset");
    println!(
        "outage of {outage} s: the hit waited unacknowledged {:.1} s; its schedule was written {:.2} s after space came back; another session's hit meanwhile was scheduled and acknowledged in {:.2} s",
        unacked.as_secs_f64(),
        written_after.as_secs_f64(),
        other_took.as_secs_f64()
    );
    drop(daemon);
}

#[test]
fn disk_full_at_the_fire_then_a_crash_the_session_is_resumed_exactly_once() {
    let Some(ns) = Ns::new() else { return };
    let env = Env::new();
    let (work, store) = project_on_tmpfs(&env, &ns);
    let daemon = env.start_cmd(ns.daemon_cmd(&env));
    // To the second, as the epoch form says it.
    let reset = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 4, 0).unwrap();
    claude_hit(&env, &work, SID, reset);
    wait_for("the schedule", || actions(&ns.read(&store)) == ["schedule"]);
    fill(&ns, &store);
    // Due: its claim cannot be made, so it waits.
    let st = env.wait_status("the claim refused", |s| {
        unwritable(s).is_some_and(|o| o["waiting"].as_u64() >= Some(1))
    });
    assert!(chrono::Utc::now() > reset, "{st}");
    daemon.wait_log("the delivery waits until it can");
    assert!(env.calls().is_empty(), "not delivered while unclaimed");

    daemon.kill9();
    free(&ns, &store);
    let daemon = env.start_cmd(ns.daemon_cmd(&env));
    wait_for("the resume after the restart", || !env.calls().is_empty());
    wait_for("the complete record", || {
        actions(&ns.read(&store)) == ["schedule", "complete"]
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.calls().len(), 1, "exactly one resume in all");
    drop(daemon);
}

#[test]
fn a_read_only_store_waits_and_is_written_once_writable_again() {
    let Some(ns) = Ns::new() else { return };
    let env = Env::new();
    let (work, store) = project_on_tmpfs(&env, &ns);
    let dir = store.parent().unwrap().display().to_string();
    assert!(ns.sh(&format!("mount -o remount,ro '{dir}'")));
    let daemon = env.start_cmd(ns.daemon_cmd(&env));
    let transcript = claude_hit(
        &env,
        &work,
        SID,
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    wait_unwritable(&env, &store, "Read-only file system");
    assert!(ns.sh(&format!("mount -o remount,rw '{dir}'")));
    wait_for("the schedule in the store", || {
        actions(&ns.read(&store)) == ["schedule"]
    });
    env.wait_read_whole(&transcript);
    env.wait_status("the outage over", |s| unwritable(s).is_none());
    drop(daemon);
}

/// No namespace needed: the project's store directory is removed while the
/// daemon runs, then a limit comes; the store is made again with it.
#[test]
fn the_store_directory_deleted_while_running_is_made_again() {
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(work.join(".git")).unwrap();
    let paths = zag_resumed::paths::Paths::new(&env.home, None);
    let project = paths.project_for_root(&work.display().to_string());
    std::fs::create_dir_all(&project).unwrap();
    let store = project.join("scheduled_resumes.jsonl");
    std::fs::write(&store, "").unwrap();
    let daemon = env.start();
    std::fs::remove_dir_all(&project).unwrap();
    let transcript = claude_hit(
        &env,
        &work,
        SID,
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    wait_for("the schedule", || {
        actions(&std::fs::read_to_string(&store).unwrap_or_default()) == ["schedule"]
    });
    env.wait_read_whole(&transcript);
    let st = env.wait_status("pending", |s| util::pending_count(s) == 1);
    assert!(unwritable(&st).is_none(), "{st}");
    drop(daemon);
}

/// A part of the daemon that dies (a panic injected into a debug build)
/// ends the daemon with a clear error and a non-zero exit, instead of a
/// daemon that answers `status` while nothing is watched or fired.
fn a_panic_at(point: &str, reset_in_secs: i64) -> (i32, String) {
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd = env.cmd(&["run"]);
    cmd.env("ZAG_RESUMED_PANIC_AT", point);
    let mut daemon = env.start_cmd(cmd);
    claude_hit(
        &env,
        &work,
        SID,
        chrono::Utc::now() + chrono::Duration::seconds(reset_in_secs),
    );
    let code = daemon.wait_exit();
    (code, daemon.log_text())
}

#[test]
fn a_panicked_disk_worker_stops_the_daemon_with_an_error() {
    let (code, log) = a_panic_at("disk", 3600);
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("a disk task of the core failed"), "{log}");
    assert!(log.contains("restart replays"), "{log}");
}

#[test]
fn a_dead_ingest_thread_stops_the_daemon_with_an_error() {
    let (code, log) = a_panic_at("ingest", 3600);
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("the ingest thread stopped"), "{log}");
}

#[test]
fn a_dead_timer_task_stops_the_daemon_with_an_error() {
    let (code, log) = a_panic_at("timer", -30);
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("the timer task stopped"), "{log}");
}

/// A command's wall time, and its exit code and stdout.
fn timed(env: &Env, args: &[&str]) -> (Duration, i32, String) {
    let t = Instant::now();
    let (code, out, _) = env.run_cli(args);
    (t.elapsed(), code, out)
}

/// A slow disk (issue 18): the project's store takes `SLOW` seconds per
/// append (a debug build's `ZAG_RESUMED_SLOW_STORE`). While that write is
/// held, `status` and `list` answer at once and another session's limit,
/// met at the same time, is scheduled and acknowledged in its own store;
/// the slow record lands once, after the hold. No root needed. The
/// figures print with `--nocapture`.
#[test]
fn a_slow_store_write_stalls_neither_status_nor_another_session() {
    const SLOW: u64 = 6;
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(work.join(".git")).unwrap();
    let paths = zag_resumed::paths::Paths::new(&env.home, None);
    let project = paths.project_for_root(&work.display().to_string());
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("zag.toml"),
        "[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n",
    )
    .unwrap();
    let store = project.join("scheduled_resumes.jsonl");
    // Another session, outside any git work tree: the global store.
    let other_work = env.dir.path().join("other");
    std::fs::create_dir_all(&other_work).unwrap();
    let mut cmd = env.cmd(&["run"]);
    cmd.env(
        "ZAG_RESUMED_SLOW_STORE",
        format!("{SLOW}:{}", store.display()),
    );
    let daemon = env.start_cmd(cmd);

    let reset = chrono::Utc::now() + chrono::Duration::hours(1);
    let slow = claude_hit(&env, &work, SID, reset);
    let other = claude_hit(&env, &other_work, OTHER, reset);
    let t0 = Instant::now();
    daemon.wait_log("holding this append");
    let held = Instant::now();
    let still_held = || actions(&std::fs::read_to_string(&store).unwrap_or_default()).is_empty();

    wait_for("the other session's schedule", || {
        actions(&std::fs::read_to_string(env.store()).unwrap_or_default()) == ["schedule"]
    });
    env.wait_read_whole(&other);
    let other_took = t0.elapsed();
    assert!(
        still_held(),
        "the other session was scheduled during the hold"
    );

    let (mut worst_status, mut worst_list) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        let (took, code, out) = timed(&env, &["status", "--json"]);
        assert_eq!(code, 0, "{out}");
        worst_status = worst_status.max(took);
        let (took, code, out) = timed(&env, &["list", "--json"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(OTHER), "the other session is listed: {out}");
        worst_list = worst_list.max(took);
    }
    let measured_within = held.elapsed();
    assert!(
        still_held(),
        "measured while the slow write was held (it ended before {measured_within:?})"
    );
    let len = std::fs::metadata(&slow).unwrap().len();
    assert_ne!(
        saved_offset(&env, &slow),
        Some(len),
        "the slow hit is not acknowledged yet"
    );

    wait_for("the slow schedule", || !still_held());
    let landed = held.elapsed();
    env.wait_read_whole(&slow);
    let st = env.wait_status("both pending", |s| util::pending_count(s) == 2);
    assert!(
        unwritable(&st).is_none(),
        "a slow store is not an outage: {st}"
    );
    let records = env.records(&store);
    assert_eq!(
        records.len(),
        1,
        "the slow record lands exactly once: {records:?}"
    );
    assert_eq!(records[0]["action"], "schedule");
    assert!(
        landed >= Duration::from_secs(SLOW) - Duration::from_millis(500),
        "landed {landed:?} into a {SLOW} s hold"
    );
    println!(
        "slow store ({SLOW} s per append): status answered in at most {:.3} s and list in {:.3} s (5 each, all within {:.1} s of the hold starting); the other session's hit was scheduled and acknowledged {:.2} s after both limits were written; the slow record landed once, {:.2} s after its hold started",
        worst_status.as_secs_f64(),
        worst_list.as_secs_f64(),
        measured_within.as_secs_f64(),
        other_took.as_secs_f64(),
        landed.as_secs_f64()
    );
    assert!(
        worst_status < Duration::from_secs(2) && worst_list < Duration::from_secs(2),
        "status {worst_status:?}, list {worst_list:?} during a slow write"
    );
    assert!(
        other_took < Duration::from_secs(SLOW),
        "the other session waited {other_took:?}"
    );
    drop(daemon);
}

/// The store's directory deleted while its file system has no inode left
/// (a tmpfs with `nr_inodes=32` holding every project): the directory
/// cannot be made again, so the schedule waits, shown by `status`. Inodes
/// given back beside it are seen by the watch on the nearest existing
/// directory, and the record lands within a fraction of a second, not at
/// the next retry of the backoff (2 s apart by then). The figures print
/// with `--nocapture`.
#[test]
fn the_store_directory_deleted_on_a_full_disk_is_made_again_as_soon_as_there_is_room() {
    let Some(ns) = Ns::new() else { return };
    let env = Env::new();
    let work = env.dir.path().join("proj");
    std::fs::create_dir_all(work.join(".git")).unwrap();
    let projects = env.zag.join("projects");
    std::fs::create_dir_all(&projects).unwrap();
    let paths = zag_resumed::paths::Paths::new(&env.home, None);
    let project = paths.project_for_root(&work.display().to_string());
    assert_eq!(project.parent(), Some(projects.as_path()));
    let store = project.join("scheduled_resumes.jsonl");
    assert!(ns.sh(&format!(
        "mount -t tmpfs -o size=256k,nr_inodes=32 zr-projects '{ps}' && mkdir '{p}' && : > '{s}'",
        ps = projects.display(),
        p = project.display(),
        s = store.display()
    )));
    let daemon = env.start_cmd(ns.daemon_cmd(&env));
    // The directory goes, and every inode with it.
    assert!(ns.sh(&format!(
        "rm -r '{p}' && i=0; while touch '{ps}/fill'$i 2>/dev/null; do i=$((i+1)); done",
        p = project.display(),
        ps = projects.display()
    )));
    assert!(
        !ns.sh(&format!("mkdir '{}' 2>/dev/null", project.display())),
        "no inode left"
    );
    let transcript = claude_hit(
        &env,
        &work,
        SID,
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    wait_unwritable(&env, &store, "No space left");

    // The fourth failure in a row: the next retry of the backoff is 2 s
    // after it.
    daemon.wait_log("failures=4 retry_in_ms=2000 watched=true");
    let seen = Instant::now();
    // Two inodes: the directory's and the store's.
    assert!(ns.sh(&format!(
        "rm '{ps}/fill0' '{ps}/fill1'",
        ps = projects.display()
    )));
    let freed = Instant::now();
    wait_for("the schedule in the store", || {
        actions(&ns.read(&store)) == ["schedule"]
    });
    let landed = freed.elapsed();
    env.wait_read_whole(&transcript);
    let st = env.wait_status("the outage over", |s| unwritable(s).is_none());
    assert_eq!(util::pending_count(&st), 1, "{st}");
    let backoff_due = Duration::from_secs(2).saturating_sub(freed - seen);
    println!(
        "store directory deleted, no inode left: two inodes freed {:.3} s after the 4th failed write was seen; the record landed {:.3} s after that, where the backoff's next retry was due at most {:.3} s after it",
        (freed - seen).as_secs_f64(),
        landed.as_secs_f64(),
        backoff_due.as_secs_f64()
    );
    assert!(
        landed < Duration::from_secs(1),
        "landed {landed:?} after room came back: the backoff's retry, not the watch"
    );
    drop(daemon);
}

/// A take-over of a stranded zag resume on a slow store: its two appends
/// (our schedule, zag's cancel) run off the core's loop, so the daemon
/// starts watching and answers `status` while they are held, and takes
/// the record over once.
#[test]
fn an_adoption_on_a_slow_store_stalls_nothing() {
    const SLOW: u64 = 4;
    let (env, work) = util::adoption_env();
    // zag's exec loop died ten minutes ago: no heartbeat since, no process.
    let log = util::zag_exec_log(&env, "w-dead", &work, SID, chrono::Duration::minutes(10));
    let when = chrono::Utc::now() - chrono::Duration::minutes(2);
    let zag = util::zag_exec_record(SID, "0b6a2f1e-1111-4222-8333-444455556666", when, &log);
    util::append(&env.store(), zag.as_bytes());

    let mut cmd = env.cmd(&["run"]);
    cmd.env(
        "ZAG_RESUMED_SLOW_STORE",
        format!("{SLOW}:{}", env.store().display()),
    );
    let t0 = Instant::now();
    let daemon = env.start_cmd(cmd);
    let watching = t0.elapsed();
    daemon.wait_log("holding this append");
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        let (took, code, out) = timed(&env, &["status", "--json"]);
        assert_eq!(code, 0, "{out}");
        worst = worst.max(took);
    }
    let records = env.records(&env.store());
    assert_eq!(
        records.len(),
        1,
        "measured while the take-over's first append was held: {records:?}"
    );
    wait_for("the take-over", || env.records(&env.store()).len() >= 3);
    let records = env.records(&env.store());
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[..3],
        ["schedule", "schedule", "cancel"],
        "{records:?}"
    );
    let ours = records
        .iter()
        .filter(|r| r["origin"] == "zag-resumed")
        .count();
    assert_eq!(ours, 1, "taken over once: {records:?}");
    println!(
        "a take-over on a slow store ({SLOW} s per append): the daemon was watching {:.2} s after it was started, and status answered in at most {:.3} s while the append was held",
        watching.as_secs_f64(),
        worst.as_secs_f64()
    );
    assert!(worst < Duration::from_secs(2), "status took {worst:?}");
    drop(daemon);
}
