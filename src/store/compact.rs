//! Compaction without locks: keep what is pending, lose no concurrent append.
//!
//! zag appends to the store with no lock (open, one `write`, `fdatasync`,
//! close), so a rewrite races with it. The procedure:
//!
//! 0. Take an exclusive `flock` on a lock file beside the store
//!    (`.<store name>.compact.lock`): compactions never overlap, in one
//!    process or several. Two that did would both build on the same old
//!    inode, and the second rename would discard whatever was appended to the
//!    first one's new file (and they would share a temp file).
//! 1. Open the old file and keep the fd. Read it to EOF; `copied` = the end
//!    of its last complete line.
//! 2. Decide what survives (below) and write those lines, byte for byte as
//!    found, to a temp file in the same directory.
//! 3. Catch up: read the old fd from `copied` to EOF and append every new
//!    complete line to the temp, verbatim; repeat until a read finds nothing
//!    (at most 16 rounds: under a steady stream, step 5 takes the rest).
//!    A partial last line is given `settle` to complete (a writer between two
//!    `write`s); if it does not change it is a crash remnant and is left out.
//! 4. Check the path still names the old inode (else someone else replaced
//!    it: abort, nothing lost), `fsync` the temp, `rename` it over the path,
//!    `fsync` the directory.
//! 5. Close the last window: a writer that opened the *old* inode before the
//!    rename writes into it afterwards. On Linux, wait (up to `holder_wait`)
//!    until no file descriptor other than ours refers to the old inode
//!    (`/proc/*/fd`), then read the old fd past `copied` once more and append
//!    what arrived to the new file (durably).
//!
//! **What remains** (documented, not hidden): a writer that keeps the old
//! inode open longer than `holder_wait` before writing (stopped with SIGSTOP,
//! or a stuck disk), or that we cannot see in `/proc` (another user, another
//! pid namespace, `hidepid`), or any writer on a non-Linux system after the
//! `settle` delay, can still append into the unlinked old inode after step 5;
//! that record is lost for us *and* for zag. zag's own appenders hold the fd
//! for one write and one fdatasync, so in practice the window is the fsync
//! latency of a stalled disk. Caught-up lines land after lines written to the
//! new file meanwhile; that reorders only appends that were concurrent anyway,
//! and zag's replay is order-free except "last schedule wins" for one id,
//! which only a writer re-using an id could observe.
//!
//! # What survives
//!
//! - every pending incident: its winning (last) `schedule` line, verbatim;
//! - tombstoned incidents whose `when` is younger than `tombstone_retention`
//!   (default 2 days): the last `schedule` line and one tombstone line, so
//!   [`super::find_same_incident`] still answers "already handled" for a
//!   limit seen again soon after its resume (a re-read after restart, a slow
//!   second source). Older ones go: size stays proportional to what is
//!   pending plus two days of history;
//! - nothing else: superseded schedules, old tombstones, tombstones of ids
//!   never scheduled, blank and unparsable lines.
//!
//! Dropping a tombstone would resurrect its id if a `schedule` with that id
//! were appended later. Fresh ids make that moot for well-behaved writers, but
//! a caught-up `schedule` for an id whose tombstone was dropped is followed
//! by that tombstone, so replay after compaction equals replay before.

use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{parse_line, Record, Replay, StoreFile};

/// Catch-up rounds before the rename (step 3).
const MAX_CATCH_UP_ROUNDS: usize = 16;

/// Knobs of [`compact`].
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// "Now", for the tombstone retention.
    pub now: DateTime<Utc>,
    /// Keep tombstoned incidents whose `when` is younger than this.
    pub tombstone_retention: Duration,
    /// How long a partial last line may take to complete.
    pub settle: std::time::Duration,
    /// How long to wait for other holders of the old inode to close it.
    pub holder_wait: std::time::Duration,
}

impl CompactOptions {
    pub fn new(now: DateTime<Utc>) -> Self {
        CompactOptions {
            now,
            tombstone_retention: Duration::days(2),
            settle: std::time::Duration::from_millis(50),
            holder_wait: std::time::Duration::from_secs(2),
        }
    }
}

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactStats {
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub lines_before: usize,
    pub lines_kept: usize,
    /// Lines appended by others during steps 2-4, copied before the rename.
    pub caught_up_before_rename: usize,
    /// Lines found in the old inode after the rename (step 5).
    pub caught_up_after_rename: usize,
    /// A partial last line that never completed was left out.
    pub torn_tail_dropped: bool,
    /// Someone still held the old inode open after `holder_wait`.
    pub holders_timed_out: bool,
}

/// Worth compacting: the rewrite would drop more than 64 lines, and at least
/// as many as it keeps. It keeps (see "What survives") one line per pending
/// incident and two per incident tombstoned within the retention, so a store
/// holding only recent history is not rewritten after every outcome for
/// nothing.
pub fn should_compact(r: &Replay, opts: &CompactOptions) -> bool {
    let recent = r
        .tombstoned
        .iter()
        .filter(|id| {
            r.scheduled
                .get(*id)
                .is_some_and(|s| keeps_history_of(s, opts))
        })
        .count();
    let kept = r.pending.len() + 2 * recent;
    let droppable = (r.records + r.skipped_lines).saturating_sub(kept);
    droppable > 64 && droppable >= kept
}

/// A tombstoned incident whose history a compaction keeps: its `when` is
/// within the retention (see "What survives"). One rule for `survivors` and
/// for `should_compact`'s count of what would be kept.
fn keeps_history_of(s: &super::Schedule, opts: &CompactOptions) -> bool {
    s.when >= opts.now - opts.tombstone_retention
}

/// Tracks tombstones dropped from the base, to re-emit before a caught-up
/// schedule that would otherwise resurrect their id.
struct Resurrection {
    dropped: HashMap<String, Vec<u8>>,
}

impl Resurrection {
    /// Lines to write for one caught-up line (the line itself, preceded by a
    /// dropped tombstone when needed).
    fn lines_for(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if let Some(Ok(Record::Schedule(s))) = parse_line(line) {
            if let Some(t) = self.dropped.remove(&s.incident_id) {
                out.extend_from_slice(&t);
                out.push(b'\n');
            }
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }

    fn copy(&mut self, complete: &[u8], out: &mut Vec<u8>) -> usize {
        let mut n = 0;
        for line in complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.lines_for(line, out);
            n += 1;
        }
        n
    }
}

/// Compact `store` in place (see the module docs). A missing file is a no-op.
pub fn compact(store: &StoreFile, opts: &CompactOptions) -> io::Result<CompactStats> {
    let path = &store.path;
    if !path.exists() {
        return Ok(CompactStats::default()); // no lock file for a missing store
    }
    // Step 0: one compaction at a time; held until this function returns.
    let _one_at_a_time = crate::lock::lock_exclusive(&sibling(path, "compact.lock"))?;
    let mut old = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CompactStats::default()),
        Err(e) => return Err(e),
    };
    let meta = old.metadata()?;
    let (dev, ino) = (meta.dev(), meta.ino());
    let mut base = Vec::new();
    old.read_to_end(&mut base)?;
    let end = memchr::memrchr(b'\n', &base).map_or(0, |i| i + 1);
    let mut stats = CompactStats {
        bytes_before: base.len() as u64,
        ..Default::default()
    };

    // Step 2: choose survivors from the complete lines of the base.
    let (kept, dropped, lines_before) = survivors(&base[..end], opts);
    stats.lines_before = lines_before;
    stats.lines_kept = kept.len();
    let mut resurrect = Resurrection { dropped };

    let dir = dir_of(path);
    let tmp_path = sibling(path, &format!("compact.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp_path);
    let result = (|| {
        let mut tmp = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        tmp.set_permissions(meta.permissions())?;
        let mut buf = Vec::with_capacity(end);
        for line in &kept {
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        tmp.write_all(&buf)?;
        drop(base);

        // Step 3: catch up with appends to the old inode.
        // Bounded: under a steady stream of appends "until nothing new"
        // never comes; whatever lands after the last round is picked up from
        // the old inode in step 5.
        let mut copied = end as u64;
        for _ in 0..MAX_CATCH_UP_ROUNDS {
            let (n, torn) = catch_up(&mut old, &mut copied, &mut resurrect, &mut tmp, opts.settle)?;
            stats.caught_up_before_rename += n;
            if n == 0 {
                stats.torn_tail_dropped = torn;
                break;
            }
        }
        // Step 4: swap, unless someone else already replaced the file.
        let now_meta = std::fs::metadata(path)?;
        if (now_meta.dev(), now_meta.ino()) != (dev, ino) {
            return Err(io::Error::other(
                "store replaced during compaction; left as is",
            ));
        }
        tmp.sync_all()?;
        std::fs::rename(&tmp_path, path)?;
        File::open(dir)?.sync_all()?;
        Ok(copied)
    })();
    let mut copied = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(e);
        }
    };

    // Step 5: writers that opened the old inode before the rename.
    stats.holders_timed_out = !wait_for_other_holders(&old, dev, ino, opts.holder_wait);
    let mut late = Vec::new();
    let mut newf = OpenOptions::new().append(true).open(path)?;
    loop {
        let n = {
            let mut sink = LateSink(&mut late);
            catch_up(
                &mut old,
                &mut copied,
                &mut resurrect,
                &mut sink,
                opts.settle,
            )?
            .0
        };
        stats.caught_up_after_rename += n;
        if n == 0 {
            break;
        }
    }
    if !late.is_empty() {
        newf.write_all(&late)?;
        newf.sync_data()?;
    }
    stats.bytes_after = std::fs::metadata(path)?.len();
    Ok(stats)
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `<dir>/.<file name>.<suffix>`: a hidden file beside the store.
fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir_of(path).join(format!(".{name}.{suffix}"))
}

struct LateSink<'a>(&'a mut Vec<u8>);

impl Write for LateSink<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copy complete lines past `copied` from `old` into `out`. A partial tail
/// is re-read after short pauses until it completes or stays unchanged for
/// `settle`. Returns (lines copied, a partial tail was left behind).
fn catch_up(
    old: &mut File,
    copied: &mut u64,
    resurrect: &mut Resurrection,
    out: &mut impl Write,
    settle: std::time::Duration,
) -> io::Result<(usize, bool)> {
    let started = std::time::Instant::now();
    let mut last_tail_len = None;
    loop {
        old.seek(SeekFrom::Start(*copied))?;
        let mut more = Vec::new();
        old.read_to_end(&mut more)?;
        let complete = memchr::memrchr(b'\n', &more).map_or(0, |i| i + 1);
        if complete > 0 {
            let mut buf = Vec::with_capacity(complete + 64);
            let n = resurrect.copy(&more[..complete], &mut buf);
            out.write_all(&buf)?;
            *copied += complete as u64;
            return Ok((n, false));
        }
        if more.is_empty() {
            return Ok((0, false));
        }
        // A partial line: give its writer `settle` to finish, restarting the
        // wait whenever it grows.
        if last_tail_len != Some(more.len()) {
            last_tail_len = Some(more.len());
        } else if started.elapsed() >= settle {
            return Ok((0, true));
        }
        std::thread::sleep(std::time::Duration::from_millis(2).min(settle));
    }
}

/// The lines to keep (in file order), the dropped tombstones by id, and the
/// number of non-blank lines.
#[allow(clippy::type_complexity)]
fn survivors(
    bytes: &[u8],
    opts: &CompactOptions,
) -> (Vec<Vec<u8>>, HashMap<String, Vec<u8>>, usize) {
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty())
        .collect();
    let mut last_schedule: HashMap<String, usize> = HashMap::new();
    let mut first_tomb: HashMap<String, usize> = HashMap::new();
    let mut replay = Replay::default();
    for (i, line) in lines.iter().enumerate() {
        if let Some(Ok(rec)) = parse_line(line) {
            match &rec {
                Record::Schedule(s) => {
                    last_schedule.insert(s.incident_id.clone(), i);
                }
                Record::Complete { incident_id, .. } | Record::Cancel { incident_id } => {
                    first_tomb.entry(incident_id.clone()).or_insert(i);
                }
            }
            replay.apply(rec);
        }
    }
    let mut keep: HashSet<usize> = HashSet::new();
    let mut dropped = HashMap::new();
    for (id, &i) in &last_schedule {
        if replay.pending.contains_key(id) {
            keep.insert(i);
        } else if replay
            .scheduled
            .get(id)
            .is_some_and(|s| keeps_history_of(s, opts))
        {
            keep.insert(i);
            keep.insert(first_tomb[id]);
        }
    }
    for (id, &i) in &first_tomb {
        if !keep.contains(&i) {
            dropped.insert(id.clone(), lines[i].to_vec());
        }
    }
    let mut idx: Vec<usize> = keep.into_iter().collect();
    idx.sort_unstable();
    (
        idx.into_iter().map(|i| lines[i].to_vec()).collect(),
        dropped,
        lines.len(),
    )
}

/// Wait until no fd other than `ours` refers to (dev, ino). Returns false on
/// timeout. Off Linux there is no `/proc` to ask: wait `settle`-like time.
fn wait_for_other_holders(ours: &File, dev: u64, ino: u64, max: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    loop {
        match other_holders(ours, dev, ino) {
            Some(0) => return true,
            None => {
                std::thread::sleep(max.min(std::time::Duration::from_millis(50)));
                return true;
            }
            Some(_) if start.elapsed() >= max => return false,
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

/// How many open fds (in any process we can see) refer to (dev, ino),
/// excluding our own `ours`. `None` when `/proc` is unavailable.
fn other_holders(ours: &File, dev: u64, ino: u64) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let fd = u32::try_from(ours.as_raw_fd()).ok()?;
    crate::live::proc::Procfs::system().open_count_of_inode(dev, ino, (std::process::id(), fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{replay, Schedule};
    use chrono::TimeZone;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 10, 0, 0, 0).unwrap()
    }

    fn sched(id: &str, when: DateTime<Utc>) -> Record {
        Record::Schedule(Schedule {
            incident_id: id.into(),
            session_id: format!("s-{id}"),
            provider: "claude".into(),
            when,
            message: "Continue".into(),
            attempt: 1,
            ..Default::default()
        })
    }

    fn cancel(id: &str) -> Record {
        Record::Cancel {
            incident_id: id.into(),
        }
    }

    fn opts() -> CompactOptions {
        CompactOptions {
            settle: std::time::Duration::from_millis(20),
            holder_wait: std::time::Duration::from_millis(500),
            ..CompactOptions::new(t0())
        }
    }

    #[test]
    fn keeps_pending_and_recent_tombstones_drops_the_rest_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreFile::new(dir.path().join("scheduled_resumes.jsonl"));
        // A zag line with a key we do not model must survive byte for byte.
        let zag_line = r#"{"action":"schedule","incident_id":"z","session_id":"s","provider":"codex","when":"2030-01-11T08:00:00.123456789Z","message":"Continue","attempt":1,"log_path":"","future_key":7}"#;
        let mut text = String::new();
        text += zag_line;
        text += "\n";
        for i in 0..100 {
            text += &sched(&format!("old{i}"), t0() - Duration::days(5)).to_line();
            text += &cancel(&format!("old{i}")).to_line();
        }
        text += &sched("recent", t0() - Duration::hours(3)).to_line();
        text += &Record::Complete {
            incident_id: "recent".into(),
            status: crate::store::CompleteStatus::Resumed,
            error: None,
        }
        .to_line();
        text += &sched("p", t0()).to_line();
        text += &sched("p", t0() + Duration::hours(1)).to_line(); // last wins
        text += "garbage\n\n";
        text += &cancel("never-scheduled").to_line();
        text += "{\"action\":\"sched"; // torn tail
        std::fs::write(&store.path, &text).unwrap();
        let before = store.load().unwrap();
        assert!(should_compact(&before, &opts()));

        let st = compact(&store, &opts()).unwrap();
        assert!(st.torn_tail_dropped);
        assert!(st.bytes_after < st.bytes_before / 10, "{st:?}");
        let after_text = std::fs::read_to_string(&store.path).unwrap();
        assert!(after_text.contains(zag_line));
        assert_eq!(after_text.lines().count(), 4, "{after_text}");
        let after = replay(after_text.as_bytes());
        assert_eq!(after.pending, before.pending);
        assert!(after.tombstoned.contains("recent"));
        assert!(after.scheduled.contains_key("recent"));
        assert!(!should_compact(&after, &opts()));
        // A second run is a fixed point.
        let st2 = compact(&store, &opts()).unwrap();
        assert_eq!(st2.bytes_after, st.bytes_after);
    }

    /// Recent history is kept by a compaction, so it alone never asks for
    /// one; the same history once older than the retention does.
    #[test]
    fn recent_history_alone_does_not_ask_for_a_rewrite() {
        let mut text = String::new();
        for i in 0..500 {
            text += &sched(&format!("r{i}"), t0() - Duration::hours(1)).to_line();
            text += &cancel(&format!("r{i}")).to_line();
        }
        text += &sched("p", t0() + Duration::hours(1)).to_line();
        let r = replay(text.as_bytes());
        assert!(!should_compact(&r, &opts()));
        let mut later = opts();
        later.now = t0() + Duration::days(3);
        assert!(should_compact(&r, &later));
        // Superseded schedules of a pending incident are droppable at once.
        let mut text = String::new();
        for i in 0..100 {
            text += &sched("p", t0() + Duration::minutes(i)).to_line();
        }
        assert!(should_compact(&replay(text.as_bytes()), &opts()));
    }

    #[test]
    fn caught_up_schedule_of_a_dropped_tombstone_stays_hidden() {
        let mut res = Resurrection {
            dropped: HashMap::from([(
                "x".to_string(),
                cancel("x").to_line().trim_end().as_bytes().to_vec(),
            )]),
        };
        let mut out = Vec::new();
        let line = sched("x", t0()).to_line();
        res.copy(line.as_bytes(), &mut out);
        let r = replay(&out);
        assert!(r.pending.is_empty() && r.tombstoned.contains("x"));
    }

    #[test]
    fn concurrent_appender_loses_nothing_and_duplicates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreFile::new(dir.path().join("scheduled_resumes.jsonl"));
        for i in 0..300 {
            store
                .append(&sched(&format!("base{i}"), t0() - Duration::days(9)))
                .unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                // zag's append: open, one write, fdatasync, close; no lock.
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) || n < 200 {
                    store
                        .append(&sched(&format!("new{n}"), t0() + Duration::hours(1)))
                        .unwrap();
                    if n < 300 {
                        store.append(&cancel(&format!("base{n}"))).unwrap();
                    }
                    n += 1;
                }
                n
            })
        };
        let mut compactions = 0;
        let mut caught = 0;
        while compactions < 20 {
            let st = compact(&store, &opts()).unwrap();
            caught += st.caught_up_before_rename + st.caught_up_after_rename;
            compactions += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let n = writer.join().unwrap();
        compact(&store, &opts()).unwrap();
        let text = std::fs::read_to_string(&store.path).unwrap();
        let r = replay(text.as_bytes());
        for i in 0..n {
            let id = format!("\"new{i}\"");
            assert_eq!(text.matches(&id).count(), 1, "new{i} of {n} present once");
            assert!(r.pending.contains_key(&format!("new{i}")));
        }
        for i in 0..300 {
            assert_eq!(
                r.pending.contains_key(&format!("base{i}")),
                i >= n.min(300),
                "base{i}"
            );
        }
        assert_eq!(r.skipped_lines, 0);
        eprintln!("{n} appends, {compactions} compactions, {caught} lines caught up");
    }

    /// A store of 200 incidents cancelled long ago: all droppable.
    fn store_with_old_history(dir: &std::path::Path) -> StoreFile {
        let store = StoreFile::new(dir.join("scheduled_resumes.jsonl"));
        for i in 0..200 {
            store
                .append(&sched(&format!("base{i}"), t0() - Duration::days(9)))
                .unwrap();
            store.append(&cancel(&format!("base{i}"))).unwrap();
        }
        store
    }

    /// Compactions of one store that overlap (the daemon starts one after
    /// each outcome; several outcomes land together) while records are
    /// appended: every appended record survives, once.
    #[test]
    fn overlapping_compactions_lose_no_append() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_old_history(dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let compactors: Vec<_> = (0..3)
            .map(|_| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut runs = 0;
                    while !stop.load(Ordering::Relaxed) {
                        // Losing the race to another compactor is fine;
                        // losing a record is not.
                        let _ = compact(&store, &opts());
                        runs += 1;
                    }
                    runs
                })
            })
            .collect();
        for i in 0..300 {
            store
                .append(&sched(&format!("new{i}"), t0() + Duration::hours(1)))
                .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let runs: usize = compactors.into_iter().map(|c| c.join().unwrap()).sum();
        let text = std::fs::read_to_string(&store.path).unwrap();
        let r = replay(text.as_bytes());
        for i in 0..300 {
            let id = format!("\"new{i}\"");
            assert_eq!(
                text.matches(&id).count(),
                1,
                "new{i} present once ({runs} compactions)"
            );
            assert!(r.pending.contains_key(&format!("new{i}")));
        }
        assert!(runs >= 3, "{runs} compactions");
    }

    #[test]
    fn two_fast_appenders_without_fsync_lose_and_duplicate_nothing() {
        // Denser race than the durable appender above: two threads, each an
        // open + one write + close per record, thousands during compaction.
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_old_history(dir.path());
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let path = store.path.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) && n < 4000 {
                        let line = sched(&format!("w{w}-{n}"), t0()).to_line();
                        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
                        f.write_all(line.as_bytes()).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut caught = 0;
        let mut rounds = 0;
        while rounds < 5 || (rounds < 200 && !writers.iter().all(|h| h.is_finished())) {
            let st = compact(&store, &opts()).unwrap();
            caught += st.caught_up_before_rename + st.caught_up_after_rename;
            rounds += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let counts: Vec<usize> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        let text = std::fs::read_to_string(&store.path).unwrap();
        let r = replay(text.as_bytes());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for line in text.lines() {
            let rec = parse_line(line.as_bytes()).unwrap().unwrap();
            *seen.entry(rec.incident_id().to_string()).or_default() += 1;
        }
        let mut total = 0;
        for (w, &n) in counts.iter().enumerate() {
            for i in 0..n {
                let id = format!("w{w}-{i}");
                assert_eq!(seen.get(&id), Some(&1), "{id} of {n}");
                assert!(r.pending.contains_key(&id));
            }
            total += n;
        }
        assert_eq!(r.pending.len(), total);
        assert_eq!(r.skipped_lines, 0);
        eprintln!("{total} fast appends, {rounds} compactions, {caught} caught up");
    }
}
