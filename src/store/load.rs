//! Whole-store replay: the start-up path.
//!
//! A restart with 100,000 pending resumes reads about 90 MB of JSON before it
//! can re-arm anything, so this is the one place where the store's speed
//! shows. The file is cut into byte ranges, one per CPU (up to 8), and each
//! thread reads its own range with positioned reads in 1 MiB blocks: there is
//! never a copy of the whole file in memory, and a thread parses while the
//! others read. A line belongs to the range that holds its first byte, so a
//! thread skips the partial line it starts in and finishes its last line past
//! its range's end. Schedules are shared (`Arc`) as they are parsed, on the
//! parsing thread, which also hashes each id and makes the handle and key
//! each of the two maps takes: the fold then only moves them.
//!
//! The per-range results are then folded in file order, `scheduled` and
//! `pending` on two threads for a large store. The result is exactly what
//! feeding the bytes line by line with [`Replay::feed`] gives: the last
//! schedule of an id wins, a tombstone anywhere hides the id, a torn last
//! line (no newline) is ignored and not consumed.

use std::hash::BuildHasher;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use indexmap::map::raw_entry_v1::{RawEntryApiV1, RawEntryMut};

use super::{parse_line, IdSet, OrderedIdMap, Record, Replay, ReplayChange, Schedule};

/// Bytes read per positioned read.
const BLOCK: usize = 1 << 20;

/// Below this many bytes a store is replayed on the calling thread.
pub(crate) const PARALLEL_MIN: u64 = 4 << 20;

/// From this many schedules on, `pending` is folded on a thread of its own
/// while the calling thread folds `scheduled`.
const PARALLEL_FOLD_MIN: usize = 20_000;

/// Something that can be read at an offset from several threads at once.
pub(crate) trait ReadAt: Sync {
    /// Like `pread(2)`: bytes read into `buf` from `offset`, 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match FileExt::read_at(self, buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Replay the first `len` bytes of `src`. Bytes past `len` (an append that
/// raced the read) are left for the next incremental read: `consumed` never
/// goes past the last newline within `len`.
pub(crate) fn replay_from<S: ReadAt + ?Sized>(src: &S, len: u64) -> io::Result<Replay> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8)) as u64;
    if len < PARALLEL_MIN || threads < 2 {
        return Ok(fold(vec![parse_range(src, 0, len, len)?], false));
    }
    let bounds: Vec<u64> = (0..=threads).map(|i| len * i / threads).collect();
    let outs = std::thread::scope(|sc| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let (start, stop) = (w[0], w[1]);
                sc.spawn(move || parse_range::<_, ForFold>(src, start, stop, len))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("store parser thread panicked"))
            .collect::<io::Result<Vec<_>>>()
    })?;
    let schedules: usize = outs.iter().map(|o| o.parsed.scheduled.len()).sum();
    Ok(fold(outs, schedules >= PARALLEL_FOLD_MIN))
}

/// Follow a store: apply the complete lines from `replay.consumed` up to
/// `len` to `replay`, in file order, with the bounded reader of a start-up
/// (an append of junk is not buffered whole either). Returns what each
/// record changed: a schedule that is pending once everything is applied,
/// as the replay's own shared copy, and every tombstone.
pub(crate) fn follow<S: ReadAt + ?Sized>(
    replay: &mut Replay,
    src: &S,
    len: u64,
) -> io::Result<Vec<ReplayChange>> {
    // `consumed` is 0 or just past a newline: the range starts on a line.
    let out: RangeOut<Vec<Parsed>> = parse_range(src, replay.consumed, len, len)?;
    let mut touched = Vec::with_capacity(out.parsed.len());
    for p in out.parsed {
        match p {
            Parsed::Schedule(s) => {
                touched.push((true, s.incident_id.clone()));
                replay.apply_schedule(s);
            }
            Parsed::Tombstone(id) => {
                touched.push((false, id.clone()));
                replay.apply_tombstone(id);
            }
        }
    }
    replay.skipped_lines += out.skipped;
    replay.consumed = replay.consumed.max(out.end);
    Ok(touched
        .into_iter()
        .filter_map(|(schedule, id)| match schedule {
            true => replay
                .pending
                .get(&id)
                .map(|s| ReplayChange::Scheduled(s.clone())),
            false => Some(ReplayChange::Tombstoned(id)),
        })
        .collect())
}

/// One parsed line that changes a replay.
enum Parsed {
    Schedule(Arc<Schedule>),
    Tombstone(String),
}

/// Where [`parse_range`] puts the records it reads.
trait Records {
    /// Room for about `records` records.
    fn with_capacity(records: usize) -> Self;
    fn schedule(&mut self, s: Schedule);
    fn tombstone(&mut self, incident_id: String);
}

/// In file order, for [`follow`], which applies them one by one.
impl Records for Vec<Parsed> {
    fn with_capacity(records: usize) -> Self {
        Vec::with_capacity(records)
    }

    fn schedule(&mut self, s: Schedule) {
        self.push(Parsed::Schedule(Arc::new(s)));
    }

    fn tombstone(&mut self, incident_id: String) {
        self.push(Parsed::Tombstone(incident_id));
    }
}

/// A schedule made ready for one of the fold's maps: its id's hash in that
/// map, its key and its handle.
type ReadyEntry = (u64, String, Arc<Schedule>);

/// A range's records as the fold takes them, made ready on the parsing
/// thread: there the record is still in the CPU's cache and the work runs
/// beside the other ranges'; in the fold the same hashing, copying and
/// reference counting touched cold memory, one record after another.
#[derive(Default)]
struct ForFold {
    /// Every schedule, in file order, for `scheduled`.
    scheduled: Vec<ReadyEntry>,
    /// The same schedules for `pending` (other handles, other keys).
    pending: Vec<ReadyEntry>,
    /// Every id tombstoned (`pending` is `scheduled` without them, whatever
    /// the order of schedules and tombstones).
    tombstones: Vec<String>,
}

impl Records for ForFold {
    fn with_capacity(records: usize) -> Self {
        ForFold {
            scheduled: Vec::with_capacity(records),
            pending: Vec::with_capacity(records),
            tombstones: Vec::new(),
        }
    }

    fn schedule(&mut self, s: Schedule) {
        let hash = id_hash(&s.incident_id);
        let s = Arc::new(s);
        self.pending
            .push((hash, s.incident_id.clone(), Arc::clone(&s)));
        self.scheduled.push((hash, s.incident_id.clone(), s));
    }

    fn tombstone(&mut self, incident_id: String) {
        self.tombstones.push(incident_id);
    }
}

/// An id's hash in an [`OrderedIdMap`].
fn id_hash(id: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(id)
}

/// What one range held.
struct RangeOut<R> {
    parsed: R,
    skipped: usize,
    /// Offset just past the last newline this range consumed (0: none).
    end: u64,
}

/// Longest store line read: past it a line is skipped unread (and counted
/// as skipped). Neither writer produces one near it (our largest field, a
/// Gemini prompt, is capped at 64 KiB), so only junk is that long, and
/// junk must not make the daemon buffer it whole.
pub(crate) const MAX_STORE_LINE: usize = 16 << 20;

/// Where [`parse_range`] is within the current line.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// In the line the range starts inside: the previous range's.
    PreviousRangesLine,
    /// At or inside a line of this range.
    Lines,
    /// Inside a line of this range longer than [`MAX_STORE_LINE`].
    OverlongLine,
}

/// Parse every line whose first byte lies in `[start, stop)`, reading no
/// further than `len`.
fn parse_range<S: ReadAt + ?Sized, R: Records>(
    src: &S,
    start: u64,
    stop: u64,
    len: u64,
) -> io::Result<RangeOut<R>> {
    let mut out = RangeOut {
        // About 0.5–1 KB per record; the guess only saves regrowing.
        parsed: R::with_capacity((((stop - start) / 512) as usize).min(1 << 20)),
        skipped: 0,
        end: 0,
    };
    // A range after the first starts one byte early: if that byte is a
    // newline, a line starts exactly at `start`; otherwise the line in
    // progress belongs to the previous range and is skipped.
    let mut mode = match start {
        0 => Mode::Lines,
        _ => Mode::PreviousRangesLine,
    };
    let mut buf = vec![0u8; BLOCK.min((len - start + 1) as usize).max(1)];
    // `buf[..filled]` holds the file from offset `base`.
    let mut base = if start > 0 { start - 1 } else { start };
    let mut filled = 0;
    let mut line_start = 0;
    loop {
        let read_from = base + filled as u64;
        if read_from >= len {
            return Ok(out); // an unterminated tail is not consumed
        }
        if filled == buf.len() {
            if mode == Mode::Lines && line_start == 0 && buf.len() >= MAX_STORE_LINE {
                mode = Mode::OverlongLine;
            }
            if mode != Mode::Lines {
                // Nothing of this line is needed.
                base += filled as u64;
                filled = 0;
            } else if line_start > 0 {
                buf.copy_within(line_start..filled, 0);
                base += line_start as u64;
                filled -= line_start;
                line_start = 0;
            } else {
                // One line longer than the buffer: grow it.
                buf.resize((buf.len() * 2).min(MAX_STORE_LINE), 0);
            }
            continue;
        }
        let want = (buf.len() - filled).min((len - read_from) as usize);
        let n = src.read_at(&mut buf[filled..filled + want], read_from)?;
        if n == 0 {
            return Ok(out); // the file shrank under us: stop at what exists
        }
        let scan_from = filled;
        filled += n;
        for nl in memchr::memchr_iter(b'\n', &buf[scan_from..filled]) {
            let nl = scan_from + nl;
            match mode {
                Mode::PreviousRangesLine => {}
                Mode::OverlongLine => {
                    out.skipped += 1;
                    out.end = base + nl as u64 + 1;
                }
                Mode::Lines => {
                    if base + line_start as u64 >= stop {
                        return Ok(out);
                    }
                    match parse_line(&buf[line_start..nl]) {
                        Some(Ok(Record::Schedule(s))) => out.parsed.schedule(s),
                        Some(Ok(
                            Record::Complete { incident_id, .. } | Record::Cancel { incident_id },
                        )) => out.parsed.tombstone(incident_id),
                        Some(Err(())) => out.skipped += 1,
                        None => {}
                    }
                    out.end = base + nl as u64 + 1;
                }
            }
            mode = Mode::Lines;
            line_start = nl + 1;
        }
        if mode == Mode::Lines && base + line_start as u64 >= stop {
            return Ok(out);
        }
    }
}

/// Fold the ranges' records, in file order, into one replay; with
/// `two_threads`, `pending` is folded on a thread of its own.
fn fold(outs: Vec<RangeOut<ForFold>>, two_threads: bool) -> Replay {
    let mut tombstoned = IdSet::default();
    let (mut for_scheduled, mut for_pending) = (Vec::new(), Vec::new());
    let (mut records, mut skipped_lines, mut consumed) = (0, 0, 0);
    for o in outs {
        records += o.parsed.scheduled.len() + o.parsed.tombstones.len();
        skipped_lines += o.skipped;
        consumed = consumed.max(o.end);
        tombstoned.extend(o.parsed.tombstones);
        for_scheduled.push(o.parsed.scheduled);
        for_pending.push(o.parsed.pending);
    }
    let n: usize = for_scheduled.iter().map(Vec::len).sum();
    // Last schedule wins; a tombstone anywhere hides the id.
    let fold_scheduled = move || fold_map(n, for_scheduled.into_iter().flatten());
    let fold_pending = |tombstoned: &IdSet| {
        fold_map(
            n,
            for_pending
                .into_iter()
                .flatten()
                .filter(|(_, id, _)| tombstoned.is_empty() || !tombstoned.contains(id)),
        )
    };
    let (scheduled, pending) = if two_threads {
        std::thread::scope(|sc| {
            let pending = sc.spawn(|| fold_pending(&tombstoned));
            let scheduled = fold_scheduled();
            (
                scheduled,
                pending.join().expect("store fold thread panicked"),
            )
        })
    } else {
        (fold_scheduled(), fold_pending(&tombstoned))
    };
    Replay {
        pending,
        tombstoned,
        scheduled,
        skipped_lines,
        consumed,
        records,
    }
}

/// A map of `entries`, in order, the last value of a key winning (where
/// [`IndexMap::insert`](indexmap::IndexMap::insert) would put it: a key
/// keeps its first position).
fn fold_map(
    capacity: usize,
    entries: impl Iterator<Item = ReadyEntry>,
) -> OrderedIdMap<Arc<Schedule>> {
    let mut map = OrderedIdMap::with_capacity_and_hasher(capacity, Default::default());
    for (hash, id, s) in entries {
        debug_assert_eq!(hash, map.hasher().hash_one(&id), "the map's own hash");
        match map.raw_entry_mut_v1().from_hash(hash, |k| *k == id) {
            RawEntryMut::Occupied(mut e) => {
                e.insert(s);
            }
            RawEntryMut::Vacant(e) => {
                e.insert_hashed_nocheck(hash, id, s);
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_by_line(bytes: &[u8]) -> Replay {
        let mut r = Replay::default();
        r.feed(bytes);
        r
    }

    fn sched(id: &str) -> String {
        format!(
            r#"{{"action":"schedule","incident_id":"{id}","session_id":"s","provider":"claude","when":"2030-01-01T08:00:00Z","message":"Continue","attempt":1,"log_path":""}}"#
        )
    }

    /// The replay of `bytes` cut into ranges at `cuts`, folded on one
    /// thread and on two: both must be the same.
    fn folded(bytes: &[u8], cuts: &[u64]) -> Replay {
        let len = bytes.len() as u64;
        let bounds: Vec<u64> = [0]
            .iter()
            .chain(cuts)
            .chain([len].iter())
            .copied()
            .collect();
        let ranges = || {
            bounds
                .windows(2)
                .map(|w| parse_range(bytes, w[0], w[1], len).unwrap())
                .collect::<Vec<_>>()
        };
        let one = fold(ranges(), false);
        assert_eq!(fold(ranges(), true), one, "cut at {cuts:?}");
        one
    }

    /// Every split point, including ones inside lines, right after and right
    /// before newlines, over blank lines, junk and a torn tail; an id
    /// scheduled again (the later schedule wins), one tombstoned between
    /// its schedules, one tombstoned before its only schedule.
    #[test]
    fn every_range_split_equals_line_by_line() {
        let text = format!(
            "{}\n\n{}\njunk\n{}\n{{\"action\":\"cancel\",\"incident_id\":\"a\"}}\n{}\n{}\n{{\"action\":\"complete\",\"incident_id\":\"d\",\"status\":\"resumed\"}}\n{}\n{}\n{{\"torn",
            sched("a"),
            sched("b"),
            sched("a"),
            sched("c"),
            sched("b").replace("\"Continue\"", "\"later\""),
            sched("d"),
            sched("a").replace("\"Continue\"", "\"later\""),
        );
        let bytes = text.as_bytes();
        let len = bytes.len() as u64;
        let want = line_by_line(bytes);
        assert_eq!(want.pending.len(), 2);
        assert_eq!(want.pending["b"].message, "later");
        assert_eq!(want.scheduled["a"].message, "later");
        for cut in 0..=len {
            assert_eq!(folded(bytes, &[cut]), want, "split at {cut}");
        }
        for a in (0..len).step_by(7) {
            for b in (a..=len).step_by(11) {
                assert_eq!(folded(bytes, &[a, b]), want, "split at {a}, {b}");
            }
        }
    }

    /// Following a store that grows in arbitrary pieces (a partial line
    /// waits for its end) gives the replay of the whole, and reports each
    /// tombstone and each schedule still pending.
    #[test]
    fn following_appends_in_any_pieces_equals_the_whole() {
        let text = format!(
            "{}\njunk\n\n{}\n{{\"action\":\"cancel\",\"incident_id\":\"a\"}}\n{}\n",
            sched("a"),
            sched("b"),
            sched("c")
        );
        let bytes = text.as_bytes();
        let len = bytes.len() as u64;
        let want = line_by_line(bytes);
        for cut in 0..=len {
            let mut r = replay_from(bytes, cut).unwrap();
            let c_is_new = !r.scheduled.contains_key("c");
            let changes = follow(&mut r, bytes, len).unwrap();
            assert_eq!(r, want, "cut at {cut}");
            assert_eq!(
                changes.contains(&ReplayChange::Scheduled(want.pending["c"].clone())),
                c_is_new,
                "cut at {cut}"
            );
            assert!(changes.iter().all(|c| match c {
                ReplayChange::Scheduled(s) => want.pending.contains_key(&s.incident_id),
                ReplayChange::Tombstoned(id) => id == "a",
            }));
        }
        let mut r = replay_from(bytes, len).unwrap();
        assert!(
            follow(&mut r, bytes, len).unwrap().is_empty(),
            "nothing new"
        );
    }

    /// Lines longer than a read block, and a `len` that stops inside a line
    /// (an append racing the read): that line is not consumed.
    #[test]
    fn long_lines_and_a_short_len() {
        let long_message = "x".repeat(3 * BLOCK);
        let big = sched("big").replace("\"Continue\"", &format!("\"{long_message}\""));
        let text = format!("{}\n{big}\n{}\n", sched("a"), sched("b"));
        let bytes = text.as_bytes();
        let full = replay_from(bytes, bytes.len() as u64).unwrap();
        assert_eq!(full, line_by_line(bytes));
        assert_eq!(full.pending["big"].message.len(), 3 * BLOCK);
        // A range that starts inside the long line skips it block by block.
        let inside = (sched("a").len() + 10) as u64;
        let out: RangeOut<Vec<Parsed>> =
            parse_range(bytes, inside, bytes.len() as u64, bytes.len() as u64).unwrap();
        assert_eq!(out.parsed.len(), 1, "only \"b\" starts in the range");
        let cut = (text.len() - 10) as u64;
        let part = replay_from(bytes, cut).unwrap();
        assert_eq!(part, line_by_line(&bytes[..cut as usize]));
        assert!(!part.pending.contains_key("b"));
        assert_eq!(part.consumed as usize, text.len() - sched("b").len() - 1);
    }

    /// A junk line longer than [`MAX_STORE_LINE`] is skipped and counted,
    /// without being buffered whole; the lines around it are read, whichever
    /// range it starts in.
    #[test]
    fn an_overlong_junk_line_is_skipped() {
        let junk = "x".repeat(MAX_STORE_LINE + 3 * BLOCK);
        let text = format!("{}\n{junk}\n{}\n", sched("a"), sched("b"));
        let bytes = text.as_bytes();
        let len = bytes.len() as u64;
        let got = replay_from(bytes, len).unwrap();
        assert_eq!(got.skipped_lines, 1);
        assert!(got.pending.contains_key("a") && got.pending.contains_key("b"));
        assert_eq!(got.consumed, len);
        assert_eq!(got, line_by_line(bytes));
        let mid = (sched("a").len() + 100) as u64;
        assert_eq!(folded(bytes, &[mid]), got);
    }

    /// The threaded paths (parsing, and folding `pending` beside
    /// `scheduled`) over a store large enough to take them, through a real
    /// file; each id scheduled again and again with another message.
    #[test]
    fn threaded_file_replay_equals_line_by_line() {
        let mut text = String::new();
        let mut i = 0;
        while (text.len() as u64) < PARALLEL_MIN + 100_000 {
            text += &sched(&format!("id{}", i % 5000)).replace("Continue", &format!("m{i}"));
            text += "\n";
            if i % 7 == 0 {
                text += &format!(
                    "{{\"action\":\"cancel\",\"incident_id\":\"id{}\"}}\n\njunk\n",
                    (i * 13) % 5000
                );
            }
            i += 1;
        }
        text += "{\"torn";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, &text).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let got = replay_from(&file, text.len() as u64).unwrap();
        let want = line_by_line(text.as_bytes());
        assert!(!want.pending.is_empty() && !want.tombstoned.is_empty() && want.skipped_lines > 0);
        assert!(
            i >= PARALLEL_FOLD_MIN,
            "{i} schedules: the fold takes two threads"
        );
        assert_eq!(got, want);
    }
}
