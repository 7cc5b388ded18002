//! Files written by an earlier version stay readable: a checked-in store
//! (`tests/fixtures/compat/scheduled_resumes.jsonl`) and offsets file
//! (`offsets.json`), written by the code of 2026-11-30, must replay to exactly
//! the same pending set, tombstones, attempts and offsets with today's code.
//!
//! A user who upgrades keeps both files: a reader that lost a field, changed
//! a default or re-ordered a rule would silently drop or double a resume.
//! The fixtures are never regenerated to make this test pass; the generator
//! below (ignored; `cargo test --test compat -- --ignored`) documents how
//! they were made, from the code's own types and writers, and writes to a
//! temporary directory unless `ZAG_RESUMED_WRITE_COMPAT_FIXTURES=1`.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zag_resumed::control::offline::pending_from_stores;
use zag_resumed::store::{
    adopt, incident_id_for, replay, CompleteStatus, Record, Replay, ResetWindow, Schedule,
    StoreFile, ORIGIN,
};
use zag_resumed::tail::{Checkpoints, FileId, Fingerprint, Position, TailedFile};

const DIR: &str = "tests/fixtures/compat";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR).join(name)
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Our Gemini schedule with every field the daemon sets (Gemini is the one
/// provider whose records carry the prompt).
fn ours_full() -> Schedule {
    let reset = t("2030-01-01T06:00:00Z");
    Schedule {
        incident_id: incident_id_for("gemini", "w-gem", ResetWindow::Reset(reset), 1),
        session_id: "w-gem".into(),
        provider: "gemini".into(),
        model: Some("gemini-2.5-pro".into()),
        root: None,
        when: t("2030-01-01T06:00:30Z"),
        message: "Continue".into(),
        attempt: 1,
        log_path: "/home/u/.zag/projects/p/logs/sessions/w-gem.jsonl".into(),
        origin: Some(ORIGIN.into()),
        scope: Some("daily".into()),
        reset_at: Some(reset),
        fallback_used: Some(false),
        provider_session_id: Some("0b7c6e2a-gem".into()),
        wrapper_session_id: Some("w-gem".into()),
        cwd: Some("/home/u/src/p".into()),
        prompt: Some("refactor the parser, café ☕".into()),
        source_file: Some("/home/u/.zag/projects/p/logs/sessions/w-gem.jsonl".into()),
        hit_at: Some(t("2030-01-01T01:00:00.5Z")),
        chain_id: None,
        raw: Some("Usage limit reached for gemini-2.5-pro.".into()),
        permission_mode: None,
        needs_user: None,
        custom_message: None,
        force: None,
    }
}

/// One of ours as the daemon writes it for a native Claude transcript.
fn ours_claude(session: &str, attempt: u32, chain: Option<&str>, reset: Option<&str>) -> Schedule {
    let reset = reset.map(t);
    let hit_at = t("2030-01-02T01:00:00Z");
    let window = reset.map_or(ResetWindow::Hit(hit_at), ResetWindow::Reset);
    Schedule {
        incident_id: incident_id_for("claude", session, window, attempt),
        session_id: session.into(),
        provider: "claude".into(),
        when: reset.map_or(t("2030-01-02T02:00:00Z"), |r| {
            r + chrono::Duration::seconds(30)
        }),
        message: "Continue".into(),
        attempt,
        origin: Some(ORIGIN.into()),
        scope: Some(
            if reset.is_some() {
                "session"
            } else {
                "unknown"
            }
            .into(),
        ),
        reset_at: reset,
        fallback_used: Some(reset.is_none()),
        provider_session_id: Some(session.into()),
        cwd: Some("/home/u/src/q".into()),
        source_file: Some(format!(
            "/home/u/.claude/projects/-home-u-src-q/{session}.jsonl"
        )),
        hit_at: Some(hit_at),
        chain_id: chain.map(Into::into),
        raw: Some("Claude AI usage limit reached|1893546000".into()),
        ..Default::default()
    }
}

/// zag's relay record: the wrapper id as `session_id`, no log path, `when`
/// with nanoseconds (zag-contract §4); our `Schedule` with no extras
/// serializes to exactly zag's keys in zag's order.
fn zag_relay() -> Schedule {
    Schedule {
        incident_id: "7d1e0a52-2b1f-4c3e-9a0d-5f6e7a8b9c01".into(),
        session_id: "wr-relay".into(),
        provider: "claude".into(),
        model: Some("sonnet".into()),
        when: t("2030-01-03T04:05:06.123456789Z"),
        message: "Continue".into(),
        attempt: 1,
        ..Default::default()
    }
}

/// zag's exec-loop record: the provider id as `session_id`, the log path,
/// a root, a second attempt.
fn zag_exec() -> Schedule {
    Schedule {
        incident_id: "0a9b8c7d-6e5f-4a3b-8c1d-2e3f4a5b6c7d".into(),
        session_id: "019a0b1c-codex-provider".into(),
        provider: "codex".into(),
        model: Some("gpt-5-codex".into()),
        root: Some("/home/u/src/r".into()),
        when: t("2030-01-04T00:00:00.000000001Z"),
        message: "Continue".into(),
        attempt: 2,
        log_path: "/home/u/.zag/projects/r/logs/sessions/wr-exec.jsonl".into(),
        ..Default::default()
    }
}

/// A power loss mid-append leaves a line without its newline.
const TORN: &str = r#"{"action":"schedule","incident_id":"torn","session_id":"s","provi"#;

/// Write the store as today's code does, record by record.
fn write_store(store: &StoreFile) {
    let sched = |s: &Schedule| store.append(&Record::Schedule(s.clone())).unwrap();
    let complete = |id: &str, status, error: Option<&str>| {
        store
            .append(&Record::Complete {
                incident_id: id.into(),
                status,
                error: error.map(Into::into),
            })
            .unwrap()
    };
    // Ours, pending, every field.
    sched(&ours_full());
    // Ours on the fallback (no reset known), resumed.
    let fb = ours_claude("6873-fallback", 1, None, None);
    sched(&fb);
    complete(&fb.incident_id, CompleteStatus::Resumed, None);
    // A chain of re-hits: attempt 1 and 2 failed, attempt 3 pending.
    let c1 = ours_claude("6873-chain", 1, None, Some("2030-01-02T05:00:00Z"));
    sched(&c1);
    complete(
        &c1.incident_id,
        CompleteStatus::Failed,
        Some("claude exited with status 1"),
    );
    let c2 = ours_claude(
        "6873-chain",
        2,
        Some(&c1.incident_id),
        Some("2030-01-02T10:00:00Z"),
    );
    sched(&c2);
    complete(
        &c2.incident_id,
        CompleteStatus::Failed,
        Some("the session moved on since the limit"),
    );
    let c3 = ours_claude(
        "6873-chain",
        3,
        Some(&c1.incident_id),
        Some("2030-01-02T15:00:00Z"),
    );
    sched(&c3);
    // Ours, cancelled by the user.
    let cancelled = ours_claude("6873-cancelled", 1, None, Some("2030-01-05T00:00:00Z"));
    sched(&cancelled);
    store
        .append(&Record::Cancel {
            incident_id: cancelled.incident_id.clone(),
        })
        .unwrap();
    // zag's relay: one pending, one delivered (zag completes after delivery).
    sched(&zag_relay());
    let mut delivered = zag_relay();
    delivered.incident_id = "7d1e0a52-2b1f-4c3e-9a0d-5f6e7a8b9c02".into();
    delivered.when = t("2029-12-31T23:00:00.5Z");
    sched(&delivered);
    complete(&delivered.incident_id, CompleteStatus::Resumed, None);
    // zag's exec loop, stranded, adopted by us (our schedule, then zag's
    // cancel), with the adoption's own code.
    sched(&zag_exec());
    let replayed = store.load().unwrap();
    adopt::adopt(store, &replayed, &zag_exec(), t("2030-01-04T00:05:00Z")).unwrap();
    // A torn last line.
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&store.path)
        .unwrap()
        .write_all(TORN.as_bytes())
        .unwrap();
}

/// Three tailed files: one read to its end, one with a partial last line
/// (the offset stops before it), one shorter than the fingerprint.
fn write_offsets(dir: &Path, out: &Path) {
    let files: [(&str, &[u8]); 3] = [
        ("a.jsonl", &[b'x'; 300][..]),
        (
            "b.jsonl",
            b"{\"type\":\"user\"}\n{\"type\":\"assistant\"}\n{\"type\":\"us",
        ),
        ("c.log", b"short\n"),
    ];
    let mut cps = Checkpoints {
        version: Checkpoints::VERSION,
        saved_at: Some(t("2030-01-01T00:00:00.25Z")),
        files: BTreeMap::new(),
    };
    for (name, bytes) in files {
        let mut body = bytes.to_vec();
        if name == "a.jsonl" {
            body.push(b'\n');
        }
        let p = dir.join(name);
        std::fs::write(&p, &body).unwrap();
        let mut tail = TailedFile::new(p, None, 1 << 20);
        tail.read_new(|_| {}).unwrap();
        // Stable keys: where such files live for a user, not the temp dir.
        let key = PathBuf::from("/home/u/.claude/projects/-home-u-src-q").join(name);
        cps.files.insert(key, tail.position().unwrap());
    }
    cps.save(out).unwrap();
}

#[test]
#[ignore = "writes the compat fixtures; they are checked in and never regenerated to pass"]
fn regenerate_compat_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = if std::env::var_os("ZAG_RESUMED_WRITE_COMPAT_FIXTURES").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR)
    } else {
        tmp.path().to_path_buf()
    };
    std::fs::create_dir_all(&dest).unwrap();
    let store = dest.join("scheduled_resumes.jsonl");
    let _ = std::fs::remove_file(&store);
    write_store(&StoreFile::new(&store));
    write_offsets(tmp.path(), &dest.join("offsets.json"));
}

/// What a reader of the checked-in store must see.
fn check_replay(r: &Replay, bytes: usize) {
    let c1 = ours_claude("6873-chain", 1, None, Some("2030-01-02T05:00:00Z"));
    let adopted = adopt::adopted_schedule(&zag_exec(), t("2030-01-04T00:05:00Z"));
    let pending: BTreeMap<&str, (u32, &str, &str)> = r
        .pending
        .values()
        .map(|s| {
            (
                s.incident_id.as_str(),
                (s.attempt, s.provider.as_str(), s.session_id.as_str()),
            )
        })
        .collect();
    let c3_id = incident_id_for(
        "claude",
        "6873-chain",
        ResetWindow::Reset(t("2030-01-02T15:00:00Z")),
        3,
    );
    let full_id = ours_full().incident_id;
    let want: BTreeMap<&str, (u32, &str, &str)> = BTreeMap::from([
        (full_id.as_str(), (1, "gemini", "w-gem")),
        (c3_id.as_str(), (3, "claude", "6873-chain")),
        (
            "7d1e0a52-2b1f-4c3e-9a0d-5f6e7a8b9c01",
            (1, "claude", "wr-relay"),
        ),
        (
            adopted.incident_id.as_str(),
            (2, "codex", "019a0b1c-codex-provider"),
        ),
    ]);
    assert_eq!(pending, want, "pending set");

    // Every field of ours, and the shapes of zag's, read back unchanged.
    assert_eq!(*r.pending[&full_id], ours_full());
    assert_eq!(
        *r.pending["7d1e0a52-2b1f-4c3e-9a0d-5f6e7a8b9c01"],
        zag_relay()
    );
    assert!(!r.pending["7d1e0a52-2b1f-4c3e-9a0d-5f6e7a8b9c01"].is_ours());
    assert_eq!(*r.pending[&adopted.incident_id], adopted);
    assert_eq!(adopted.origin.as_deref(), Some(ORIGIN));
    assert_eq!(
        adopted.chain_id.as_deref(),
        Some("0a9b8c7d-6e5f-4a3b-8c1d-2e3f4a5b6c7d")
    );
    assert_eq!(adopted.wrapper_session_id.as_deref(), Some("wr-exec"));
    let c3 = &r.pending[&c3_id];
    assert_eq!(c3.chain_id.as_deref(), Some(c1.incident_id.as_str()));

    let fb = ours_claude("6873-fallback", 1, None, None);
    let c2 = ours_claude("6873-chain", 2, None, Some("2030-01-02T10:00:00Z"));
    let cancelled = ours_claude("6873-cancelled", 1, None, Some("2030-01-05T00:00:00Z"));
    let mut tombs: Vec<&str> = r.tombstoned.iter().map(String::as_str).collect();
    tombs.sort_unstable();
    let mut want_tombs = vec![
        fb.incident_id.as_str(),
        c1.incident_id.as_str(),
        c2.incident_id.as_str(),
        cancelled.incident_id.as_str(),
        "7d1e0a52-2b1f-4c3e-9a0d-5f6e7a8b9c02",
        "0a9b8c7d-6e5f-4a3b-8c1d-2e3f4a5b6c7d",
    ];
    want_tombs.sort_unstable();
    assert_eq!(tombs, want_tombs, "tombstones");

    // Attempts of every schedule ever written, tombstoned or not.
    let mut attempts: Vec<(&str, u32)> = r
        .scheduled
        .values()
        .map(|s| (s.session_id.as_str(), s.attempt))
        .collect();
    attempts.sort_unstable();
    assert_eq!(
        attempts,
        [
            ("019a0b1c-codex-provider", 2),
            ("019a0b1c-codex-provider", 2),
            ("6873-cancelled", 1),
            ("6873-chain", 1),
            ("6873-chain", 2),
            ("6873-chain", 3),
            ("6873-fallback", 1),
            ("w-gem", 1),
            ("wr-relay", 1),
            ("wr-relay", 1),
        ],
        "attempts"
    );
    // 10 schedules, 4 completes, 2 cancels; the torn tail is not consumed.
    assert_eq!(r.records, 16);
    assert_eq!(r.skipped_lines, 0);
    assert_eq!(r.consumed as usize, bytes - TORN.len());
}

#[test]
fn a_store_written_before_still_replays_to_the_same_pending_set_tombstones_and_attempts() {
    let path = fixture("scheduled_resumes.jsonl");
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.ends_with(TORN.as_bytes()),
        "the fixture keeps its torn tail"
    );
    // The plain reference replay, and the start-up loader.
    check_replay(&replay(&bytes), bytes.len());
    check_replay(&StoreFile::new(&path).load().unwrap(), bytes.len());

    // Without a daemon, `list` shows the same set in wake-time order.
    let home = tempfile::tempdir().unwrap();
    std::fs::copy(&path, home.path().join("scheduled_resumes.jsonl")).unwrap();
    let listed: Vec<(String, DateTime<Utc>)> = pending_from_stores(home.path())
        .into_iter()
        .map(|p| (p.provider, p.when))
        .collect();
    assert_eq!(
        listed,
        [
            ("gemini".to_string(), t("2030-01-01T06:00:30Z")),
            ("claude".to_string(), t("2030-01-02T15:00:30Z")),
            ("claude".to_string(), t("2030-01-03T04:05:06.123456789Z")),
            ("codex".to_string(), t("2030-01-04T00:05:00Z")),
        ]
    );
}

#[test]
fn an_offsets_file_written_before_still_loads_with_the_same_offsets() {
    let cps = Checkpoints::load(&fixture("offsets.json"))
        .unwrap()
        .expect("the fixture exists");
    assert_eq!(cps.version, 1);
    assert_eq!(cps.version, Checkpoints::VERSION);
    assert_eq!(cps.saved_at, Some(t("2030-01-01T00:00:00.25Z")));
    let got: Vec<(String, u64, u32, u64)> = cps
        .files
        .iter()
        .map(|(p, pos)| {
            (
                p.display().to_string(),
                pos.offset,
                pos.head.len,
                pos.head.hash,
            )
        })
        .collect();
    let dir = "/home/u/.claude/projects/-home-u-src-q";
    let mut a = vec![b'x'; 300];
    a.push(b'\n');
    let b = b"{\"type\":\"user\"}\n{\"type\":\"assistant\"}\n{\"type\":\"us";
    assert_eq!(
        got,
        [
            // Read to the end; the fingerprint covers the first 256 bytes.
            (
                format!("{dir}/a.jsonl"),
                301,
                256,
                Fingerprint::of(&a[..256]).hash
            ),
            // Stops after the last complete line; the head is all it read,
            // the partial line included.
            (format!("{dir}/b.jsonl"), 37, 48, Fingerprint::of(b).hash),
            (
                format!("{dir}/c.log"),
                6,
                6,
                Fingerprint::of(b"short\n").hash
            ),
        ]
    );
    // Device and inode as written (they only match on the machine that
    // wrote them; a mismatch makes the reader start the file over).
    let ids: Vec<FileId> = cps.files.values().map(|p: &Position| p.id).collect();
    assert_eq!(
        ids,
        [
            FileId {
                dev: 65024,
                ino: 10117277
            },
            FileId {
                dev: 65024,
                ino: 10117278
            },
            FileId {
                dev: 65024,
                ino: 10117279
            },
        ]
    );
}
