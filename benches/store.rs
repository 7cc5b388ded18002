//! Store benchmarks: `cargo bench --bench store`.
//!
//! Prints (targets in brackets):
//! - start-up re-arm of 100,000 pending records from a store file on disk:
//!   read and replay (streamed, on every CPU) + arm the timer, in ms
//!   [≤ 200 ms]; `ZR_BENCH_BREAKDOWN=1` prints the daemon path's phases
//! - store size before and after compaction for a realistic file (a month of
//!   history: 20,000 resolved incidents, 1,000 pending, zag's and ours), and
//!   the compaction time.

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use std::time::Instant;
use zag_resumed::clock::SystemClock;
use zag_resumed::store::{
    compact, incident_id_for, CompactOptions, CompleteStatus, Record, ReplayChange, ResetWindow,
    Schedule, StoreFile, ORIGIN,
};
use zag_resumed::timer::{spawn, TimerEntry};

fn ours(i: usize, reset: DateTime<Utc>) -> Schedule {
    let wrapper = uuid::Uuid::new_v4().to_string();
    let provider_id = uuid::Uuid::new_v4().to_string();
    Schedule {
        incident_id: incident_id_for("claude", &wrapper, ResetWindow::Reset(reset), 1),
        session_id: provider_id.clone(),
        provider: "claude".into(),
        model: Some("sonnet".into()),
        root: Some(format!("/home/u/src/project-{}", i % 20)),
        when: reset + Duration::seconds(30 + (i % 120) as i64),
        message: "Continue".into(),
        attempt: 1,
        log_path: format!(
            "/home/u/.zag/projects/home-u-src-project-{}/logs/sessions/{wrapper}.jsonl",
            i % 20
        ),
        origin: Some(ORIGIN.into()),
        scope: Some("session".into()),
        reset_at: Some(reset),
        fallback_used: Some(false),
        provider_session_id: Some(provider_id),
        wrapper_session_id: Some(wrapper),
        cwd: Some(format!("/home/u/src/project-{}", i % 20)),
        prompt: None,
        source_file: Some(format!(
            "/home/u/.claude/projects/-home-u-src-project-{}/x.jsonl",
            i % 20
        )),
        hit_at: Some(reset - Duration::hours(2)),
        chain_id: None,
        raw: Some(format!(
            "Claude AI usage limit reached|{}",
            reset.timestamp()
        )),
        permission_mode: None,
        needs_user: None,
        custom_message: None,
        force: None,
    }
}

fn zags(reset: DateTime<Utc>) -> Schedule {
    let mut s = ours(0, reset);
    s.incident_id = uuid::Uuid::new_v4().to_string();
    s.origin = None;
    s.scope = None;
    s.reset_at = None;
    s.fallback_used = None;
    s.provider_session_id = None;
    s.wrapper_session_id = None;
    s.cwd = None;
    s.source_file = None;
    s.hit_at = None;
    s.raw = None;
    s.model = None;
    s
}

fn ms(a: Instant, b: Instant) -> f64 {
    (b - a).as_secs_f64() * 1000.0
}

/// load (read + replay, streamed) + arm everything pending; returns the two
/// phases in ms.
async fn rearm_from_replay(path: &std::path::Path) -> [f64; 2] {
    let t1 = Instant::now();
    let replay = StoreFile::new(path).load().unwrap();
    let t2 = Instant::now();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (h, task) = spawn(Arc::new(SystemClock), tx);
    h.arm_many(
        replay
            .pending
            .values()
            .map(|s| TimerEntry {
                due: s.when,
                key: s.incident_id.clone().into(),
            })
            .collect(),
    );
    let st = h.stats().await; // round trip: everything is armed
    assert_eq!(st.pending, 100_000);
    let t3 = Instant::now();
    task.abort();
    [ms(t1, t2), ms(t2, t3)]
}

/// The daemon's path: a first `StoreFollower::refresh`, then, per pending
/// record of ours, one `arm` and an entry in the incident table (sharing
/// the replay's copy, as the daemon does).
async fn rearm_from_follower(path: &std::path::Path) -> f64 {
    let t0 = Instant::now();
    let mut f = zag_resumed::store::StoreFollower::new(StoreFile::new(path));
    let changes = f.refresh().unwrap();
    let t_refresh = Instant::now();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (h, task) = spawn(Arc::new(SystemClock), tx);
    let mut incidents = zag_resumed::store::IdMap::default();
    incidents.reserve(changes.len());
    let mut to_arm = Vec::new();
    for c in changes {
        if let ReplayChange::Scheduled(s) = c {
            if !incidents.contains_key(&s.incident_id) {
                to_arm.push(TimerEntry {
                    due: s.when,
                    key: s.incident_id.clone().into(),
                });
                incidents.insert(s.incident_id.clone(), s);
            }
        }
    }
    let t_table = Instant::now();
    h.arm_many(to_arm);
    assert_eq!(incidents.len(), 100_000);
    let st = h.stats().await;
    assert_eq!(st.pending, 100_000);
    let t1 = Instant::now();
    task.abort();
    if std::env::var_os("ZR_BENCH_BREAKDOWN").is_some() {
        eprintln!(
            "  follower path: refresh {:.1} ms, incident table {:.1} ms, arm {:.1} ms",
            ms(t0, t_refresh),
            ms(t_refresh, t_table),
            ms(t_table, t1)
        );
    }
    ms(t0, t1)
}

// The daemon's allocator (src/main.rs), so the figures are the daemon's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As the daemon runs (see `use_small_pages`).
    zag_resumed::daemon::use_small_pages();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();

    // 1. Start-up re-arm of 100,000 pending records.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (shape, make) in [
        (
            "our full record shape",
            ours as fn(usize, DateTime<Utc>) -> Schedule,
        ),
        ("zag's record shape", |_, reset| zags(reset)),
    ] {
        let path = dir.path().join("big.jsonl");
        let mut text = String::new();
        for i in 0..100_000 {
            let reset = now + Duration::minutes(5 + (i % 10_000) as i64);
            text += &Record::Schedule(make(i, reset)).to_line();
        }
        std::fs::write(&path, &text).unwrap();
        let size = text.len();
        drop(text);
        // Warm page cache: a restarting daemon usually finds the file cached.
        let mut runs = Vec::new();
        let mut follower_runs = Vec::new();
        for _ in 0..5 {
            runs.push(rt.block_on(rearm_from_replay(&path)));
            follower_runs.push(rt.block_on(rearm_from_follower(&path)));
        }
        runs.sort_by(|a, b| {
            a.iter()
                .sum::<f64>()
                .partial_cmp(&b.iter().sum::<f64>())
                .unwrap()
        });
        follower_runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let [p, a] = runs[runs.len() / 2];
        println!(
            "start-up re-arm of 100,000 pending, {shape} ({:.1} MB store): {:.1} ms (load {p:.1}, arm {a:.1}); via StoreFollower::refresh + arm, as the daemon does: {:.1} ms; medians of 5 [target <= 200 ms]",
            size as f64 / 1e6,
            p + a,
            follower_runs[follower_runs.len() / 2]
        );
    }

    // 2. Size before and after compaction: a month of history.
    let store = StoreFile::new(dir.path().join("scheduled_resumes.jsonl"));
    let mut text = String::new();
    for i in 0..20_000usize {
        let reset = now - Duration::days(30) + Duration::minutes((i * 2) as i64);
        let s = if i % 4 == 0 {
            zags(reset)
        } else {
            ours(i, reset)
        };
        text += &Record::Schedule(s.clone()).to_line();
        text += &if i % 10 == 0 {
            Record::Cancel {
                incident_id: s.incident_id,
            }
        } else {
            Record::Complete {
                incident_id: s.incident_id,
                status: CompleteStatus::Resumed,
                error: None,
            }
        }
        .to_line();
    }
    for i in 0..1_000usize {
        let reset = now + Duration::minutes(i as i64);
        let s = if i % 4 == 0 {
            zags(reset)
        } else {
            ours(i, reset)
        };
        text += &Record::Schedule(s).to_line();
    }
    std::fs::write(&store.path, &text).unwrap();
    let before_replay = store.load().unwrap();
    let t = Instant::now();
    let st = compact(&store, &CompactOptions::new(now)).unwrap();
    let took = t.elapsed().as_secs_f64() * 1000.0;
    let after_replay = store.load().unwrap();
    assert_eq!(before_replay.pending, after_replay.pending);
    println!(
        "compaction of a month of history (20,000 resolved, 1,000 pending): {} -> {} bytes ({} -> {} lines; tombstoned incidents of the last 2 days kept), {took:.0} ms (incl. waiting for other holders of the old inode)",
        st.bytes_before, st.bytes_after, st.lines_before, st.lines_kept
    );
}
