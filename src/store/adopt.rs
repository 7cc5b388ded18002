//! Adopting stranded zag resumes (zag-contract §1.5, §3.3).
//!
//! zag's relay aborts its timers on exit without a tombstone, and a crashed
//! exec loop leaves its `schedule` pending forever: both strand a resume that
//! nobody will deliver. We take such a record over once its owner is dead and
//! its time has passed by a grace period; while the owner lives we leave it
//! alone, because neither zag owner re-checks the store before it fires.
//!
//! - [`probe_owner`] is the I/O: `B/processes.json` (read-only) and pid
//!   liveness by [`crate::zag_process`]'s one rule, the relay's FIFO, the
//!   session log's heartbeats.
//! - [`adoption_decision`] is pure: record, owner state, now, grace.
//! - [`adopt`] writes the take-over ([`adopt_from`]: with what it needs
//!   of the store read beforehand, so the core appends off its loop).
//!
//! # Order of the take-over, and why it is at-most-once
//!
//! We append our own `schedule` (fresh id [`adoption_id_for`] of zag's id,
//! our origin, `chain_id` = zag's id) durably **first**, then a `cancel` for
//! zag's id. A crash between the two leaves both pending; on restart zag's is
//! still stranded and is adopted again, but the adoption id is derived from
//! zag's id, so we find ours already in the store and only write the missing
//! cancel: one resume, never two. The opposite order could lose the resume
//! (zag's cancelled, ours never written). After the take-over our record
//! follows the normal commit point (see [`crate::store`]).

use chrono::{DateTime, Duration, Utc};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::dedupe::adoption_id_for;
use super::{Record, Replay, Schedule, StoreFile, ORIGIN};
use crate::zag_process;

/// What we know about the zag process that wrote a `schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// A live relay or exec loop still owns the record.
    Alive,
    /// No owner is alive.
    Dead,
    /// Could not tell (an unreadable `processes.json`): ask again later.
    Unknown,
}

/// What to do with a pending record written by someone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adoption {
    /// Take it over now ([`adopt`]).
    Adopt,
    /// Not ours to act on (our own record, armed directly).
    Leave,
    /// Probe again at this time.
    Wait(DateTime<Utc>),
}

/// The pure decision. Ours: `Leave`. Dead owner: `Adopt` once `when + grace`
/// has passed, else `Wait` until then. Live owner: `Wait` until `when +
/// grace`, and past that re-probe every `grace` (a live owner past due is
/// delivering, or hung, e.g. on a stale FIFO; it is still left alone).
/// Unknown: re-probe at the later of `when + grace` and `now + grace`.
pub fn adoption_decision(
    rec: &Schedule,
    owner: OwnerState,
    now: DateTime<Utc>,
    grace: Duration,
) -> Adoption {
    if rec.is_ours() {
        return Adoption::Leave;
    }
    let due = rec.when + grace;
    match owner {
        OwnerState::Dead if now >= due => Adoption::Adopt,
        OwnerState::Dead => Adoption::Wait(due),
        OwnerState::Alive if now < due => Adoption::Wait(due),
        OwnerState::Alive => Adoption::Wait(now + grace),
        OwnerState::Unknown => Adoption::Wait(due.max(now + grace)),
    }
}

/// Our record for an adopted zag record, due at `due` (the caller passes
/// now, or now + stagger).
pub fn adopted_schedule(zag: &Schedule, due: DateTime<Utc>) -> Schedule {
    let mut s = zag.clone();
    s.incident_id = adoption_id_for(&zag.incident_id);
    s.origin = Some(ORIGIN.to_string());
    s.chain_id = Some(
        zag.chain_id
            .clone()
            .unwrap_or_else(|| zag.incident_id.clone()),
    );
    s.when = due;
    if s.wrapper_session_id.is_none() {
        s.wrapper_session_id = wrapper_id_from_log(&zag.log_path);
    }
    s
}

/// What a take-over needs to know of its store, read from its replay on
/// the core's loop so that the appends can run off it: our record for
/// `zag` if one was written before a crash, and whether zag's is
/// tombstoned already.
#[derive(Clone, Debug)]
pub struct AdoptionState {
    ours: Option<Schedule>,
    zag_tombstoned: bool,
}

impl AdoptionState {
    pub fn of(replay: &Replay, zag: &Schedule) -> AdoptionState {
        AdoptionState {
            ours: replay
                .scheduled
                .get(&adoption_id_for(&zag.incident_id))
                .map(|s| Schedule::clone(s)),
            zag_tombstoned: replay.tombstoned.contains(&zag.incident_id),
        }
    }
}

/// Take `zag` over: our schedule durably, then zag's tombstone (see the
/// module docs for the order). Idempotent across crashes. Returns ours.
pub fn adopt(
    store: &StoreFile,
    replay: &Replay,
    zag: &Schedule,
    due: DateTime<Utc>,
) -> io::Result<Schedule> {
    adopt_from(store, AdoptionState::of(replay, zag), zag, due)
}

/// [`adopt`] with what it needs of the store read already.
pub fn adopt_from(
    store: &StoreFile,
    state: AdoptionState,
    zag: &Schedule,
    due: DateTime<Utc>,
) -> io::Result<Schedule> {
    let cancel = || {
        store.append(&Record::Cancel {
            incident_id: zag.incident_id.clone(),
        })
    };
    match state.ours {
        Some(existing) => {
            // Adopted before a crash: keep that record, write the cancel only.
            if !state.zag_tombstoned {
                cancel()?;
            }
            Ok(existing)
        }
        None => {
            let ours = adopted_schedule(zag, due);
            store.append(&Record::Schedule(ours.clone()))?;
            cancel()?;
            Ok(ours)
        }
    }
}

/// zag logs live at `P/logs/sessions/<wrapper_id>.jsonl`.
fn wrapper_id_from_log(log_path: &str) -> Option<String> {
    let p = Path::new(log_path);
    (p.extension()? == "jsonl").then_some(())?;
    Some(p.file_stem()?.to_string_lossy().into_owned())
}

/// How old the last log line may be for an exec loop to count as alive
/// (it writes a heartbeat every 10 s).
pub const HEARTBEAT_STALE: Duration = Duration::seconds(30);

/// [`probe_owner_with`] using the default FIFO probe ([`fifo_has_reader`]).
pub fn probe_owner(zag_home: &Path, rec: &Schedule, now: DateTime<Utc>) -> OwnerState {
    probe_owner_with(zag_home, rec, now, &fifo_has_reader)
}

/// Is the owner of a zag `schedule` alive?
///
/// - **Relay**: a `processes.json` entry with one of the record's session ids
///   (`session_id`, `wrapper_session_id`, the log's file stem), `command ==
///   "interactive"`, `status == "running"`, a live pid, and `fifo_alive` true
///   for `B/fifos/<session_id>`.
/// - **Exec loop**: the session log has no `session_ended` after its last
///   `session_started` and its last line is younger than 30 s; *or* a
///   `running` exec/run entry for the session has a live pid and the log has
///   not ended. The second arm matters right after a suspend: heartbeats are
///   hours old, but the exec loop is alive and will fire on its own (its
///   monotonic sleep resumes), so adopting it would double the resume.
///
/// An entry is running by [`zag_process::entry_running`]: `running`, and a
/// live pid that is still the process the entry recorded (not reused).
pub fn probe_owner_with(
    zag_home: &Path,
    rec: &Schedule,
    now: DateTime<Utc>,
    fifo_alive: &dyn Fn(&Path) -> bool,
) -> OwnerState {
    let mut ids: Vec<String> = vec![rec.session_id.clone()];
    ids.extend(rec.wrapper_session_id.clone());
    ids.extend(wrapper_id_from_log(&rec.log_path));
    ids.retain(|s| !s.is_empty());

    let procs = match zag_process::read_processes(&zag_home.join("processes.json")) {
        Some(p) => p,
        None => return OwnerState::Unknown,
    };
    let running = |cmds: &[&str]| -> Vec<&serde_json::Value> {
        procs
            .iter()
            .filter(|p| {
                let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("");
                ids.iter().any(|i| i == s("session_id"))
                    && cmds.contains(&s("command"))
                    && zag_process::entry_running(p)
            })
            .collect()
    };

    for p in running(&["interactive"]) {
        let sid = p.get("session_id").and_then(|v| v.as_str()).unwrap_or("");
        if fifo_alive(&zag_home.join("fifos").join(sid)) {
            return OwnerState::Alive;
        }
    }

    if !rec.log_path.is_empty() {
        if let Some(tail) = log_tail_state(Path::new(&rec.log_path)) {
            if !tail.ended {
                let fresh = tail.last_ts.is_some_and(|t| now - t < HEARTBEAT_STALE);
                if fresh || !running(&["exec", "run"]).is_empty() {
                    return OwnerState::Alive;
                }
            }
        }
    }
    OwnerState::Dead
}

/// The default FIFO probe: open for writing without blocking. `ENXIO` (no
/// reader) or a missing FIFO mean the relay is gone; opening does not write
/// anything, and the relay (which holds it read-write) sees nothing.
pub fn fifo_has_reader(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => {}
        _ => return false,
    }
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .is_ok()
}

struct LogTail {
    ended: bool,
    last_ts: Option<DateTime<Utc>>,
}

/// Whether a zag session log has ended, and the `ts` of its last line, from
/// its last 64 KiB. Lines are read as generic JSON (zag-contract §2.3).
fn log_tail_state(path: &Path) -> Option<LogTail> {
    const TAIL: u64 = 64 * 1024;
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let mut st = LogTail {
        ended: false,
        last_ts: None,
    };
    for line in bytes.split(|&b| b == b'\n') {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        match v.get("type").and_then(|t| t.as_str()) {
            Some("session_started") => st.ended = false,
            Some("session_ended") => st.ended = true,
            _ => {}
        }
        if let Some(ts) = v.get("ts").and_then(|t| t.as_str()) {
            if let Some(t) = crate::clock::parse_utc(ts) {
                st.last_ts = Some(t);
            }
        }
    }
    Some(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::replay;

    fn zag_rec(when: DateTime<Utc>, log: &str) -> Schedule {
        let line = format!(
            r#"{{"action":"schedule","incident_id":"zag-1","session_id":"w1","provider":"claude","when":"{}","message":"Continue","attempt":1,"log_path":"{log}"}}"#,
            when.to_rfc3339()
        );
        match serde_json::from_str::<Record>(&line).unwrap() {
            Record::Schedule(s) => s,
            _ => unreachable!(),
        }
    }

    #[test]
    fn decisions() {
        let now = Utc::now();
        let g = Duration::minutes(2);
        let past = zag_rec(now - Duration::minutes(10), "");
        let future = zag_rec(now + Duration::minutes(10), "");
        let just = zag_rec(now - Duration::minutes(1), "");
        use Adoption::*;
        assert_eq!(adoption_decision(&past, OwnerState::Dead, now, g), Adopt);
        assert_eq!(
            adoption_decision(&just, OwnerState::Dead, now, g),
            Wait(just.when + g)
        );
        assert_eq!(
            adoption_decision(&future, OwnerState::Dead, now, g),
            Wait(future.when + g)
        );
        assert_eq!(
            adoption_decision(&future, OwnerState::Alive, now, g),
            Wait(future.when + g)
        );
        assert_eq!(
            adoption_decision(&past, OwnerState::Alive, now, g),
            Wait(now + g)
        );
        assert_eq!(
            adoption_decision(&past, OwnerState::Unknown, now, g),
            Wait(now + g)
        );
        let mut ours = past.clone();
        ours.origin = Some(ORIGIN.into());
        assert_eq!(adoption_decision(&ours, OwnerState::Dead, now, g), Leave);
    }

    fn write_processes(home: &Path, entries: &[serde_json::Value]) {
        let v = serde_json::json!({ "processes": entries });
        std::fs::write(home.join("processes.json"), v.to_string()).unwrap();
    }

    fn entry(sid: &str, pid: u32, cmd: &str, status: &str) -> serde_json::Value {
        serde_json::json!({"id":"p","pid":pid,"session_id":sid,"provider":"claude","command":cmd,
            "status":status,"started_at":Utc::now().to_rfc3339()})
    }

    #[test]
    fn probes_relay_liveness_from_processes_and_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let now = Utc::now();
        let rec = zag_rec(now - Duration::hours(1), "");
        let yes = |_: &Path| true;
        let no = |_: &Path| false;
        // No processes.json at all: nobody owns it.
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Dead);
        // A running relay entry with our (live) pid and a reader on the FIFO.
        let me = std::process::id();
        write_processes(home, &[entry("w1", me, "interactive", "running")]);
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Alive);
        assert_eq!(
            probe_owner_with(home, &rec, now, &no),
            OwnerState::Dead,
            "stale FIFO"
        );
        // Exited, or a dead pid, or another session: dead.
        write_processes(home, &[entry("w1", me, "interactive", "exited")]);
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Dead);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        write_processes(home, &[entry("w1", dead_pid, "interactive", "running")]);
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Dead);
        write_processes(home, &[entry("w2", me, "interactive", "running")]);
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Dead);
        // Our pid, but the entry claims the process started an hour before
        // this one did: a reused pid.
        let mut old = entry("w1", me, "interactive", "running");
        old["started_at"] = serde_json::json!((now - Duration::days(400)).to_rfc3339());
        write_processes(home, &[old]);
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Dead);
        // Malformed processes.json: cannot tell.
        std::fs::write(home.join("processes.json"), "{").unwrap();
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Unknown);
    }

    #[test]
    fn probes_exec_loop_by_heartbeat_and_session_end() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let log = home.join("projects/x/logs/sessions/w1.jsonl");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let now = Utc::now();
        let line = |ty: &str, ts: DateTime<Utc>| {
            format!(
                r#"{{"seq":1,"ts":"{}","provider":"claude","wrapper_session_id":"w1","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"{ty}"}}"#,
                ts.to_rfc3339()
            ) + "\n"
        };
        let mut rec = zag_rec(now - Duration::hours(1), log.to_str().unwrap());
        rec.session_id = "provider-id".into(); // the exec loop writes the provider id
        let yes = |_: &Path| true;
        std::fs::write(
            &log,
            line("session_started", now - Duration::minutes(5))
                + &line("heartbeat", now - Duration::seconds(5)),
        )
        .unwrap();
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Alive);
        // Heartbeats stopped, no process: dead.
        assert_eq!(
            probe_owner_with(home, &rec, now + Duration::minutes(2), &yes),
            OwnerState::Dead
        );
        // Heartbeats stale but the exec process lives (just woke from suspend).
        write_processes(home, &[entry("w1", std::process::id(), "exec", "running")]);
        assert_eq!(
            probe_owner_with(home, &rec, now + Duration::hours(3), &yes),
            OwnerState::Alive
        );
        // Ended: dead, whatever the process table says.
        let mut text = std::fs::read_to_string(&log).unwrap();
        text += &line("session_ended", now);
        std::fs::write(&log, &text).unwrap();
        assert_eq!(probe_owner_with(home, &rec, now, &yes), OwnerState::Dead);
    }

    #[test]
    fn adopt_writes_ours_first_and_is_idempotent_across_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreFile::new(dir.path().join("scheduled_resumes.jsonl"));
        let now = Utc::now();
        let zag = zag_rec(
            now - Duration::hours(1),
            "/h/.zag/projects/x/logs/sessions/w9.jsonl",
        );
        store.append(&Record::Schedule(zag.clone())).unwrap();

        // A crash after our schedule but before zag's tombstone.
        let ours = adopted_schedule(&zag, now);
        store.append(&Record::Schedule(ours.clone())).unwrap();
        let r = store.load().unwrap();
        assert_eq!(r.pending.len(), 2);
        // Restart: adopt again, same id, only the cancel is written.
        let got = adopt(&store, &r, &zag, now + Duration::minutes(1)).unwrap();
        assert_eq!(got, ours);
        let r = store.load().unwrap();
        assert_eq!(r.pending.keys().collect::<Vec<_>>(), [&ours.incident_id]);
        assert!(r.tombstoned.contains("zag-1"));
        let text = std::fs::read_to_string(&store.path).unwrap();
        assert_eq!(text.matches(&ours.incident_id).count(), 1);
        assert!(ours.is_ours());
        assert_eq!(ours.chain_id.as_deref(), Some("zag-1"));
        assert_eq!(ours.wrapper_session_id.as_deref(), Some("w9"));

        // The normal path: a fresh store.
        let store2 = StoreFile::new(dir.path().join("b.jsonl"));
        store2.append(&Record::Schedule(zag.clone())).unwrap();
        let got = adopt(&store2, &store2.load().unwrap(), &zag, now).unwrap();
        let r = replay(&std::fs::read(&store2.path).unwrap());
        assert_eq!(r.pending.len(), 1);
        assert!(r.pending.contains_key(&got.incident_id));
    }

    #[test]
    fn fifo_probe_sees_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        assert!(!fifo_has_reader(&p), "missing");
        crate::child::mkfifo(&p).unwrap();
        assert!(!fifo_has_reader(&p), "no reader: ENXIO");
        use std::os::unix::fs::OpenOptionsExt;
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .unwrap();
        assert!(fifo_has_reader(&p));
    }
}
