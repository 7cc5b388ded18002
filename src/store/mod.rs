//! zag's `scheduled_resumes.jsonl` store (zag-contract §4): records, replay, durable append.
//!
//! The file format is zag's contract: `zag usage list` / `zag usage cancel`
//! must keep working on every store we write. Our extra keys ride along on
//! `schedule` records (zag ignores unknown keys); we never write an unknown
//! `action`. Semantics follow zag exactly: the last `schedule` for an id wins,
//! and any `complete` or `cancel` anywhere tombstones the id for good, so a
//! re-schedule always takes a fresh id.
//!
//! Replay is pure (bytes in, state out). A torn last line, the mark of a power
//! loss mid-write, is ignored and does not corrupt later appends, because each
//! append first restores a missing trailing newline.
//!
//! Submodules: [`dedupe`] (incident ids and duplicate detection),
//! [`load`] (the whole-file replay of a start-up, streamed and parallel),
//! [`compact`](mod@compact) (lock-free compaction), [`follow`] (live following, how a
//! `zag usage cancel` reaches a live timer), [`adopt`] (stranded zag resumes),
//! and a private fast reader for store lines (`fast_line`).
//!
//! # Delivery commit point
//!
//! The protocol at fire time is: (1) re-read the store and drop the incident
//! if it is tombstoned (a `zag usage cancel` or `zag-resumed cancel` that beat
//! the timer); (2) deliver; (3) append `complete` and `fdatasync` it. The
//! **commit point is the return of that `fdatasync`** in step 3. Before it the
//! incident is still pending on disk, so a crash anywhere up to it leaves a
//! pending record that the next start re-arms (overdue, so it fires at once):
//! at-least-once. After it, the tombstone hides the id forever, in our replay
//! and in zag's: at-most-once.
//!
//! A crash in `[delivery started, complete durable)` would repeat that one
//! delivery if the store were all a restart had. It cannot be closed by an
//! intermediate "claim" record here: zag's format has only `schedule`,
//! `complete` and `cancel`, an unknown `action` is forbidden (zag skips it,
//! so it would be invisible to `zag usage` and a lie about what is pending),
//! and a `complete` written *before* delivery is exactly zag's exec-loop bug
//! (a crash after it loses the resume). So the claim lives beside the store,
//! in the daemon's own state: a delivery attempt made durable before step 2
//! and marked by the delivery itself (the respawned CLI's child, before
//! exec; a FIFO write), which a restart settles before delivering again
//! ([`crate::resume::attempt`]): started is recorded as delivered, never
//! started is delivered. We still choose the repeat over the loss where the
//! two cannot be told apart (a FIFO line written, not yet marked).
//!
//! Step 1 is what makes a live cancel stick even when the timer has already
//! fired: a `disarm` cannot recall an entry already handed over, the re-read
//! can. A cancel landing between step 1 and step 2 is the one race left (the
//! user cancelled during the delivery's own microseconds).

pub mod adopt;
pub mod compact;
pub mod dedupe;
mod fast_line;
pub mod follow;
pub mod load;

pub use adopt::{adoption_decision, probe_owner, Adoption, OwnerState};
pub use compact::{compact, should_compact, CompactOptions, CompactStats};
pub use dedupe::{find_same_incident, incident_id_for, ResetWindow};
pub use follow::StoreFollower;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `origin` we stamp on our own records.
pub const ORIGIN: &str = "zag-resumed";

/// How the files of [`StoreFile::claim`] begin: written and removed beside
/// a store, they say nothing about it (a watch on its directory skips them).
pub const CLAIM_PREFIX: &str = ".zag-resumed-claim-";

/// What one record, or a re-read, changed in a replay.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplayChange {
    /// A schedule now pending (a schedule whose id is already tombstoned is
    /// not reported: nothing can act on it).
    Scheduled(Arc<Schedule>),
    /// A `complete` or `cancel` for this id.
    Tombstoned(String),
}

/// One line of the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
// `Schedule` is large and the others small, but records are transient (parsed,
// applied, dropped) and the lead's code matches on `Record::Schedule(s)`:
// boxing would cost an allocation per line and churn every match.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Schedule(Schedule),
    Complete {
        incident_id: String,
        status: CompleteStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Cancel {
        incident_id: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompleteStatus {
    Resumed,
    Failed,
}

/// A `schedule` record: zag's keys first, then ours (all optional, so zag's
/// own records parse into the same type).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub incident_id: String,
    /// zag's relay writes the wrapper id here, its exec loop the provider id.
    pub session_id: String,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub when: DateTime<Utc>,
    pub message: String,
    pub attempt: u32,
    #[serde(default)]
    pub log_path: String,

    /// `"zag-resumed"` on ours; absent on zag's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_used: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper_session_id: Option<String>,
    /// The directory the provider CLI must run in to find the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The prompt that hit the limit, on Gemini records only: Gemini loses
    /// it and is sent it again; no other resume needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The file the limit was seen in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file: Option<String>,
    /// The line's own timestamp: a session "moved on" if it has later turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit_at: Option<DateTime<Utc>>,
    /// `incident_id` of the first incident in a chain of re-hits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<String>,
    /// The matched text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The permission mode the user ran the session in (Claude's
    /// `permissionMode`, Codex's approval policy), kept for the resume.
    /// Ours only, like `cwd`: zag ignores keys it does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// When a wait for this incident's live session starts counting
    /// (its six hours): a `retry` sets it to when the user asked; absent,
    /// the reset. Ours only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_from: Option<DateTime<Utc>>,
    /// The identity of `cwd` when the limit was seen (device, inode,
    /// owner): a directory gone, replaced or owned by someone else at the
    /// reset is not entered. Ours only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd_identity: Option<CwdIdentity>,
    /// What the daemon did to the session's live terminal for this
    /// incident: the typing intent (appended before the first keystroke)
    /// and the one notification, so a restart neither types nor notifies
    /// twice. Ours only: the incident's `schedule` appended again with this
    /// key (the last schedule wins, for zag too). Boxed: few records have
    /// it, and a start-up holds 100,000 records in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Box<LiveRecord>>,
    /// Set on a limit no wait lifts (`credits`, `spend_cap`, `billing`,
    /// `no_quota`): never delivered, recorded as needing the user at once.
    /// Ours only: zag ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_user: Option<String>,
    /// `message` is the user's own (`zag-resumed message`, `resume-now
    /// --message`), not the configured default; shown by `list`/`status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_message: Option<bool>,
    /// `retry --force`: delivered even if the session moved on since the
    /// limit, this incident only (a re-hit's next attempt does not inherit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// A directory's identity: which file it is and who owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CwdIdentity {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_uid`.
    pub uid: u32,
    /// Its birth time in nanoseconds since the epoch, where the file system
    /// keeps one: a directory deleted and made again at the same path often
    /// gets the same inode number back (ext4 reuses it at once), never the
    /// same birth time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born_ns: Option<u64>,
}

impl CwdIdentity {
    /// The identity of the directory at `path` now (following symlinks, as
    /// a process entering it does).
    pub fn of(path: &Path) -> std::io::Result<CwdIdentity> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        let born_ns = m
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_nanos()).ok());
        Ok(CwdIdentity {
            dev: m.dev(),
            ino: m.ino(),
            uid: m.uid(),
            born_ns,
        })
    }

    /// Whether `now` is another directory than `self` (the owner aside):
    /// another device or inode, or, where both have one, another birth.
    pub fn replaced_by(&self, now: &CwdIdentity) -> bool {
        (self.dev, self.ino) != (now.dev, now.ino)
            || matches!((self.born_ns, now.born_ns), (Some(a), Some(b)) if a != b)
    }
}

/// The durable part of an incident's live-session state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRecord {
    /// The typing about to be done (or done): never typed again after a
    /// restart, only confirmed against the session file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed: Option<TypedRecord>,
    /// When the one notification about waiting went out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<DateTime<Utc>>,
    /// Why it waits (or was refused), as told then: `history` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// A typing intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedRecord {
    /// What is typed.
    pub text: String,
    /// Where (a pane's human name).
    pub place: String,
    /// The session file's length before.
    pub len_before: u64,
    /// When the intent was recorded.
    pub at: DateTime<Utc>,
    /// What confirms it, when not a turn (`claude_armed`, `gemini_answer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
}

impl Schedule {
    /// True when this daemon wrote the record.
    pub fn is_ours(&self) -> bool {
        self.origin.as_deref() == Some(ORIGIN)
    }

    /// The message is the user's own, not the configured default.
    pub fn has_custom_message(&self) -> bool {
        self.custom_message == Some(true)
    }

    /// `retry --force`: the "moved on" check is skipped for this incident.
    pub fn is_forced(&self) -> bool {
        self.force == Some(true)
    }
}

impl Record {
    pub fn incident_id(&self) -> &str {
        match self {
            Record::Schedule(s) => &s.incident_id,
            Record::Complete { incident_id, .. } | Record::Cancel { incident_id } => incident_id,
        }
    }

    /// One JSON line with its newline.
    pub fn to_line(&self) -> String {
        self.to_line_with(&[])
    }

    /// [`Record::to_line`] with extra keys after zag's own (zag ignores
    /// unknown keys): the `at` and `detail` of a `complete` or `cancel`,
    /// which `history` reads. A key zag's shape already has is never
    /// overwritten, so the record stays valid for zag whatever `extra` says.
    pub fn to_line_with(&self, extra: &[(&str, serde_json::Value)]) -> String {
        let mut s = serde_json::to_string(self).expect("store records always serialize");
        let own = serde_json::to_value(self).expect("store records always serialize");
        for (key, value) in extra {
            if value.is_null() || own.get(key).is_some() {
                continue;
            }
            // `s` is one JSON object: insert before its closing brace.
            s.pop();
            s.push_str(&format!(",{}:{value}}}", serde_json::Value::from(*key)));
        }
        s.push('\n');
        s
    }
}

/// A map keyed by incident id. The ids come from the user's own store files
/// (UUIDs, ours and zag's), so a fast unkeyed hash is safe; it is what keeps a
/// start-up re-arm of 100,000 records cheap.
pub type IdMap<V> = HashMap<String, V, rustc_hash::FxBuildHasher>;

/// An [`IdMap`] that iterates in insertion order (file order, for a replay).
/// A start-up walks 100,000 records several times after parsing them; in
/// file order each walk reads memory in the order it was allocated instead
/// of jumping around it (`bench store`: the replay went from 72 to 59 ms,
/// the daemon's incident table from 23 to 16 ms).
pub type OrderedIdMap<V> = indexmap::IndexMap<String, V, rustc_hash::FxBuildHasher>;

/// A set of incident ids; see [`IdMap`].
pub type IdSet = HashSet<String, rustc_hash::FxBuildHasher>;

/// What a store file says, replayed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replay {
    /// Pending schedules by id: last schedule wins, tombstoned ids removed.
    /// Shared with `scheduled` (one allocation per record, however many
    /// views hold it).
    pub pending: OrderedIdMap<Arc<Schedule>>,
    /// Every id with a `complete` or `cancel`, in any order.
    pub tombstoned: IdSet,
    /// Every schedule ever seen (last per id), tombstoned or not.
    pub scheduled: OrderedIdMap<Arc<Schedule>>,
    /// Lines that did not parse (a torn tail, foreign junk).
    pub skipped_lines: usize,
    /// Bytes consumed: up to and including the last newline.
    pub consumed: u64,
    /// Records applied (every parsed line): `records - pending.len()` is what
    /// compaction would drop.
    pub records: usize,
}

impl Replay {
    /// Fold more bytes in. Only complete lines are consumed.
    ///
    /// The plain line-by-line reading: the reference the threaded and
    /// streamed readers of [`load`] are tested against.
    pub fn feed(&mut self, bytes: &[u8]) {
        let end = match memchr::memrchr(b'\n', bytes) {
            Some(i) => i + 1,
            None => return,
        };
        for line in bytes[..end].split(|&b| b == b'\n') {
            match parse_line(line) {
                Some(Ok(rec)) => self.apply(rec),
                Some(Err(())) => self.skipped_lines += 1,
                None => {}
            }
        }
        self.consumed += end as u64;
    }

    /// Apply one record with zag's semantics.
    pub fn apply(&mut self, rec: Record) {
        match rec {
            Record::Schedule(s) => self.apply_schedule(Arc::new(s)),
            Record::Complete { incident_id, .. } | Record::Cancel { incident_id } => {
                self.apply_tombstone(incident_id)
            }
        }
    }

    /// A `schedule`: the last one of an id wins; a tombstoned id stays hidden.
    pub(crate) fn apply_schedule(&mut self, s: Arc<Schedule>) {
        self.records += 1;
        if !self.tombstoned.contains(&s.incident_id) {
            self.pending.insert(s.incident_id.clone(), s.clone());
        }
        self.scheduled.insert(s.incident_id.clone(), s);
    }

    /// A `complete` or `cancel`: the id is hidden for good.
    pub(crate) fn apply_tombstone(&mut self, incident_id: String) {
        self.records += 1;
        self.pending.swap_remove(&incident_id);
        self.tombstoned.insert(incident_id);
    }
}

/// Parse one line (without its newline): `None` for a blank line,
/// `Some(Err)` for a line zag would skip too.
pub(crate) fn parse_line(line: &[u8]) -> Option<Result<Record, ()>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    Some(parse_record(line))
}

/// Parse one record. The fast path reads a flat struct (serde's internally
/// tagged enums buffer every value first, which made start-up replay twice as
/// slow); whenever it fails, the derived enum decides, so the set of accepted
/// lines and their meaning are exactly those of `Record`'s own `Deserialize`.
fn parse_record(line: &[u8]) -> Result<Record, ()> {
    if let Some(rec) = fast_line::scan_flat(line).and_then(FlatRecord::into_record) {
        return Ok(rec);
    }
    parse_record_with_serde(line)
}

/// [`parse_record`] without the hand-written reader in front.
fn parse_record_with_serde(line: &[u8]) -> Result<Record, ()> {
    if let Ok(flat) = serde_json::from_slice::<FlatRecord>(line) {
        if let Some(rec) = flat.into_record() {
            return Ok(rec);
        }
    }
    serde_json::from_slice::<Record>(line).map_err(|_| ())
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Schedule,
    Complete,
    Cancel,
}

/// Every key of every record kind, with `Schedule`'s own types.
#[derive(Deserialize)]
struct FlatRecord {
    action: Action,
    incident_id: String,
    session_id: Option<String>,
    provider: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    root: Option<String>,
    #[serde(default, deserialize_with = "fast_time")]
    when: Option<DateTime<Utc>>,
    message: Option<String>,
    attempt: Option<u32>,
    #[serde(default)]
    log_path: String,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default, deserialize_with = "fast_time")]
    reset_at: Option<DateTime<Utc>>,
    #[serde(default)]
    fallback_used: Option<bool>,
    #[serde(default)]
    provider_session_id: Option<String>,
    #[serde(default)]
    wrapper_session_id: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    source_file: Option<String>,
    #[serde(default, deserialize_with = "fast_time")]
    hit_at: Option<DateTime<Utc>>,
    #[serde(default)]
    chain_id: Option<String>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    permission_mode: Option<String>,
    #[serde(default, deserialize_with = "fast_time")]
    wait_from: Option<DateTime<Utc>>,
    #[serde(default)]
    cwd_identity: Option<CwdIdentity>,
    #[serde(default)]
    live: Option<Box<LiveRecord>>,
    #[serde(default)]
    needs_user: Option<String>,
    #[serde(default)]
    custom_message: Option<bool>,
    #[serde(default)]
    force: Option<bool>,
    status: Option<CompleteStatus>,
    #[serde(default)]
    error: Option<String>,
}

/// A timestamp for the fast path: the exact RFC 3339 shape zag and we write
/// (`2030-01-01T08:00:00[.fraction](Z|±HH:MM)`) is read by hand; anything
/// else goes through chrono's own parser, so the accepted set and the values
/// are those of `DateTime<Utc>`'s `Deserialize`. chrono's general parser was
/// a third of a start-up replay's parsing time.
fn fast_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let s: Option<&'de str> = Option::deserialize(d)?;
    s.map(|s| parse_time(s).ok_or_else(|| serde::de::Error::custom("invalid timestamp")))
        .transpose()
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    crate::clock::fast_rfc3339(s.as_bytes()).or_else(|| {
        s.parse::<DateTime<chrono::FixedOffset>>()
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

impl FlatRecord {
    /// `None` when a key the kind requires is missing (the slow path then
    /// rejects the line with serde's own error).
    fn into_record(self) -> Option<Record> {
        Some(match self.action {
            Action::Cancel => Record::Cancel {
                incident_id: self.incident_id,
            },
            Action::Complete => Record::Complete {
                incident_id: self.incident_id,
                status: self.status?,
                error: self.error,
            },
            Action::Schedule => Record::Schedule(Schedule {
                incident_id: self.incident_id,
                session_id: self.session_id?,
                provider: self.provider?,
                model: self.model,
                root: self.root,
                when: self.when?,
                message: self.message?,
                attempt: self.attempt?,
                log_path: self.log_path,
                origin: self.origin,
                scope: self.scope,
                reset_at: self.reset_at,
                fallback_used: self.fallback_used,
                provider_session_id: self.provider_session_id,
                wrapper_session_id: self.wrapper_session_id,
                cwd: self.cwd,
                prompt: self.prompt,
                source_file: self.source_file,
                hit_at: self.hit_at,
                chain_id: self.chain_id,
                raw: self.raw,
                permission_mode: self.permission_mode,
                wait_from: self.wait_from,
                cwd_identity: self.cwd_identity,
                live: self.live,
                needs_user: self.needs_user,
                custom_message: self.custom_message,
                force: self.force,
            }),
        })
    }
}

/// Replay a whole store's bytes: identical to feeding them line by line
/// (`pending` = the last schedule of every id that has no tombstone
/// anywhere, which is what incremental [`Replay::apply`] converges to
/// whatever the order). Large inputs are parsed on several threads; see
/// [`load`].
pub fn replay(bytes: &[u8]) -> Replay {
    load::replay_from(bytes, bytes.len() as u64).expect("reading memory cannot fail")
}

/// One store file on disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreFile {
    pub path: PathBuf,
}

impl StoreFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreFile { path: path.into() }
    }

    /// Read and replay the whole file; a missing file is an empty store.
    pub fn load(&self) -> std::io::Result<Replay> {
        match std::fs::File::open(&self.path) {
            Ok(f) => {
                let len = f.metadata()?.len();
                load::replay_from(&f, len)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Replay::default()),
            Err(e) => Err(e),
        }
    }

    /// Append one record durably: one `write(2)` of the whole line with
    /// `O_APPEND`, then `fdatasync`. Returns only once the line is on disk.
    /// A torn last line left by a crash is first closed with a newline so
    /// the new record stays a line of its own.
    pub fn append(&self, rec: &Record) -> std::io::Result<()> {
        self.append_with(rec, &[])
    }

    /// [`StoreFile::append`] of [`Record::to_line_with`].
    pub fn append_with(
        &self,
        rec: &Record,
        extra: &[(&str, serde_json::Value)],
    ) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::private::create_dir_all(dir)?;
        }
        let mut f = crate::private::open_append(&self.path)?;
        let mut line = rec.to_line_with(extra);
        crate::fault::slow_store(&self.path);
        if ends_without_newline(&mut f)? {
            line.insert(0, '\n');
        }
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }
}

/// Room a claim proves: more than any record's line (a `complete` with its
/// error text is well under a kilobyte; a schedule with a Gemini prompt may
/// be more).
const CLAIM_BYTES: usize = 16 * 1024;

impl StoreFile {
    /// The claim before a delivery: shows, durably, that the store's
    /// directory can take a record right now (a file of `CLAIM_BYTES`
    /// written, fsync'd and removed beside the store), so the `complete`
    /// after the delivery can be written. zag's format has no claim record
    /// (see "Delivery commit point" above); this writes none. A full disk,
    /// a read-only remount or an I/O error fail it: the delivery then waits
    /// instead of sending a turn it could not record, which a crash would
    /// send again.
    pub fn claim(&self) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::private::create_dir_all(dir)?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = dir.join(format!("{CLAIM_PREFIX}{}-{n}", std::process::id()));
        let written = (|| {
            let mut f = crate::private::create(&probe)?;
            f.write_all(&[b'\n'; CLAIM_BYTES])?;
            f.sync_data()
        })();
        let removed = std::fs::remove_file(&probe);
        written?;
        removed
    }
}

fn ends_without_newline(f: &mut std::fs::File) -> std::io::Result<bool> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Every store under a zag home: `B/scheduled_resumes.jsonl` and
/// `B/projects/*/scheduled_resumes.jsonl`, existing ones only, sorted.
pub fn discover_stores(zag_home: &Path) -> Vec<StoreFile> {
    let mut out = Vec::new();
    let global = zag_home.join("scheduled_resumes.jsonl");
    if global.is_file() {
        out.push(StoreFile::new(global));
    }
    if let Ok(rd) = std::fs::read_dir(zag_home.join("projects")) {
        for e in rd.flatten() {
            let p = e.path().join("scheduled_resumes.jsonl");
            if p.is_file() {
                out.push(StoreFile::new(p));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(id: &str, when: &str) -> String {
        format!(
            r#"{{"action":"schedule","incident_id":"{id}","session_id":"s","provider":"claude","when":"{when}","message":"Continue","attempt":1,"log_path":""}}"#
        )
    }

    #[test]
    fn zag_semantics_last_schedule_wins_tombstones_are_order_free() {
        let text = [
            sched("a", "2030-01-01T08:00:00Z"),
            sched("a", "2030-01-01T09:00:00Z"),
            r#"{"action":"cancel","incident_id":"b"}"#.into(),
            sched("b", "2030-01-01T07:00:00Z"),
            sched("c", "2030-01-01T06:00:00+02:00"),
            r#"{"action":"complete","incident_id":"c","status":"failed","error":"x"}"#.into(),
            r#"{"action":"bogus","incident_id":"d"}"#.into(),
            String::new(),
        ]
        .join("\n");
        let r = replay(text.as_bytes());
        assert_eq!(r.pending.len(), 1);
        assert_eq!(
            r.pending["a"].when.to_rfc3339(),
            "2030-01-01T09:00:00+00:00"
        );
        assert!(r.tombstoned.contains("b") && r.tombstoned.contains("c"));
        assert_eq!(r.skipped_lines, 1);
    }

    #[test]
    fn fast_parser_agrees_with_the_derived_one() {
        let cases = [
            sched("a", "2030-01-01T08:00:00Z"),
            sched("a", "2030-01-01T08:00:00+02:00"),
            sched("a", "2030-01-01T08:00:00"), // no offset: zag skips it
            r#"{"action":"cancel","incident_id":"x"}"#.into(),
            r#"{"action":"cancel","incident_id":"x","when":"junk","log_path":null}"#.into(),
            r#"{"action":"complete","incident_id":"x","status":"resumed"}"#.into(),
            r#"{"action":"complete","incident_id":"x","status":"bogus"}"#.into(),
            r#"{"action":"complete","incident_id":"x"}"#.into(),
            r#"{"action":"bogus","incident_id":"x"}"#.into(),
            r#"{"incident_id":"x"}"#.into(),
            r#"{"action":"schedule","incident_id":"x","session_id":"s","provider":"p","when":"2030-01-01T08:00:00Z","message":"m","attempt":1,"log_path":null}"#.into(),
            r#"{"action":"schedule","incident_id":"x","session_id":"s","provider":"p","when":"2030-01-01T08:00:00Z","message":"m","attempt":1}"#.into(),
            r#"{"action":"schedule","incident_id":"x","session_id":"s","provider":"p","when":"2030-01-01T08:00:00Z","message":"m"}"#.into(),
            r#"{"action":"schedule","incident_id":"x","session_id":"s","provider":"p","when":"2030-01-01T08:00:00Z","message":"m","attempt":1,"status":7,"status":8}"#.into(),
            r#"{"action":"schedule","incident_id":"x","session_id":"s","provider":"p","when":"2030-01-01T08:00:00Z","message":"m","attempt":-1}"#.into(),
            r#"{"action":"cancel","incident_id":"x","action":"cancel"}"#.into(),
            r#"{"action":"cancel","incident_id":null}"#.into(),
            "[1]".into(),
        ];
        for c in cases {
            let derived = serde_json::from_str::<Record>(&c).ok();
            assert_eq!(parse_record(c.as_bytes()).ok(), derived, "{c}");
        }
    }

    #[test]
    fn the_fast_timestamp_reader_agrees_with_chrono() {
        let cases = [
            "2030-01-01T08:00:00Z",
            "2026-11-24T03:21:58.123456789+00:00",
            "2026-11-24T03:21:58.1Z",
            "2026-11-24T03:21:58+02:00",
            "2026-11-24T03:21:58-05:30",
            "2026-02-29T00:00:00Z",
            "2024-02-29T23:59:59.999999999Z",
            "2026-11-24T03:21:58.1234567891Z",
            "2026-11-24T03:21:60Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24t03:21:58z",
            "2026-11-24 03:21:58Z",
            "2026-11-24T03:21:58",
            "2026-11-24T03:21:58+0200",
            "2026-13-24T03:21:58Z",
            "2026-11-24T03:21:58.Z",
            "2026-11-24T03:21:58.123456789-00:30",
            "2026-11-24T03:21:58+23:59",
            "2026-11-24T03:21:58+24:00",
            "2026-11-24T03:21:58+0a:00",
            "2O26-11-24T03:21:58Z",
            "2026-11-2/T03:21:58Z",
            "0000-01-01T00:00:00Z",
            "not a time",
            "",
        ];
        for c in cases {
            let chrono = c
                .parse::<DateTime<chrono::FixedOffset>>()
                .ok()
                .map(|t| t.with_timezone(&Utc));
            assert_eq!(parse_time(c), chrono, "{c:?}");
            let strict = DateTime::parse_from_rfc3339(c)
                .ok()
                .map(|t| t.with_timezone(&Utc));
            assert_eq!(crate::clock::parse_utc(c), strict, "parse_utc on {c:?}");
            if let Some(fast) = crate::clock::fast_rfc3339(c.as_bytes()) {
                assert_eq!(Some(fast), chrono, "fast path differs on {c:?}");
            }
        }
        assert!(
            crate::clock::fast_rfc3339(b"2026-11-24T03:21:58.5+01:00").is_some(),
            "the common shape takes the fast path"
        );
    }

    #[test]
    fn torn_tail_is_ignored_and_later_appends_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scheduled_resumes.jsonl");
        let torn = format!(
            "{}\n{}",
            sched("a", "2030-01-01T08:00:00Z"),
            &sched("b", "2030-01-01T08:00:00Z")[..40]
        );
        std::fs::write(&path, torn).unwrap();
        let store = StoreFile::new(&path);
        assert_eq!(store.load().unwrap().pending.len(), 1);
        store
            .append(&Record::Cancel {
                incident_id: "a".into(),
            })
            .unwrap();
        let r = store.load().unwrap();
        assert!(r.pending.is_empty());
        assert!(r.tombstoned.contains("a"));
        assert_eq!(r.skipped_lines, 1);
    }

    #[test]
    fn our_extra_keys_round_trip_and_zag_records_parse() {
        let zag: Record =
            serde_json::from_str(&sched("z", "2030-01-01T08:00:00.123456789Z")).unwrap();
        let Record::Schedule(s) = &zag else {
            panic!("not a schedule")
        };
        assert!(!s.is_ours());
        let mut ours = s.clone();
        ours.origin = Some(ORIGIN.into());
        ours.cwd = Some("/w".into());
        let line = Record::Schedule(ours.clone()).to_line();
        assert!(line.contains(r#""action":"schedule""#) && line.ends_with('\n'));
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, Record::Schedule(ours));
    }
}
