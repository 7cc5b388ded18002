//! `pause [--until WHEN]` / `unpause`: the user saying "deliver nothing for
//! now" while detection and scheduling go on.
//!
//! The state is one small file, `<zag-home>/resumed/pause.json`, so it
//! survives restarts and works without a daemon (as `cancel` does): when a
//! daemon runs, it owns the file and the CLI asks it over the socket (it
//! then holds or releases its due incidents at once); when none runs, the
//! CLI writes the file and the next start reads it. No file: not paused.
//! Written temp → fsync → rename (mode 0600), then the directory fsync'd,
//! so a pause is never half-written or lost once acknowledged.
//!
//! Whether a pause is in force at a time is pure ([`PauseState::active_at`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The file's name inside `<zag-home>/resumed/`.
pub const FILE: &str = "pause.json";

/// A pause the user asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseState {
    /// When it was asked for.
    pub since: DateTime<Utc>,
    /// When it ends by itself; absent: at `unpause`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl PauseState {
    /// In force at `now`: no `until`, or `until` still ahead.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.until.map_or(true, |u| now < u)
    }

    /// One line for people: "paused since …" (", until …").
    pub fn describe(&self) -> String {
        let stamp = super::render::stamp;
        match self.until {
            Some(u) => format!(
                "paused since {} until {}: no resume is delivered before then (`zag-resumed unpause` ends it now)",
                stamp(self.since),
                stamp(u)
            ),
            None => format!(
                "paused since {}: no resume is delivered until `zag-resumed unpause`",
                stamp(self.since)
            ),
        }
    }
}

/// Why the pause file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a pause state ({reason}); remove it or run `zag-resumed unpause`", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--until {0:?}: expected an RFC 3339 time (2030-01-06T08:00:00Z) or a span ahead like 8h, 2d")]
    BadUntil(String),
    #[error("--until {0} has already passed")]
    UntilPassed(String),
}

/// The pause file of a state dir.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The pause on disk, if any (whether or not it has run out).
pub fn load(state_dir: &Path) -> Result<Option<PauseState>, PauseError> {
    let path = path(state_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PauseError::Read { path, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| PauseError::Invalid {
            path,
            reason: e.to_string(),
        })
}

/// Write a pause durably (temp → fsync → rename → fsync of the dir), 0600.
pub fn save(state_dir: &Path, state: &PauseState) -> Result<(), PauseError> {
    let path = path(state_dir);
    let write = || -> std::io::Result<()> {
        crate::lock::ensure_private_dir(state_dir)?;
        let tmp = state_dir.join(format!(".{FILE}.tmp"));
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?
        };
        let mut text = serde_json::to_vec(state).map_err(std::io::Error::other)?;
        text.push(b'\n');
        f.write_all(&text)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(state_dir)?.sync_all()
    };
    write().map_err(|source| PauseError::Write {
        path: path.clone(),
        source,
    })
}

/// Remove the pause (durably); `Ok(false)` when there was none.
pub fn clear(state_dir: &Path) -> Result<bool, PauseError> {
    let path = path(state_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(PauseError::Write { path, source }),
    }
    std::fs::File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| PauseError::Write { path, source })?;
    Ok(true)
}

/// Parse `--until`: an RFC 3339 time, or a span ahead of `now` (`90m`,
/// `8h`, `2d`, `1w`). A time already passed is refused.
pub fn parse_until(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, PauseError> {
    let s = s.trim();
    let bad = || PauseError::BadUntil(s.to_string());
    let t = match crate::store::parse_time(s) {
        Some(t) => t,
        None => super::history::parse_span(s)
            .and_then(|d| now.checked_add_signed(d))
            .ok_or_else(bad)?,
    };
    if t <= now {
        return Err(PauseError::UntilPassed(super::render::stamp(t)));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_pause_is_in_force_until_its_end() {
        let open = PauseState {
            since: t("2030-01-01T00:00:00Z"),
            until: None,
        };
        assert!(open.active_at(t("2031-01-01T00:00:00Z")));
        let timed = PauseState {
            until: Some(t("2030-01-01T08:00:00Z")),
            ..open.clone()
        };
        assert!(timed.active_at(t("2030-01-01T07:59:59Z")));
        assert!(!timed.active_at(t("2030-01-01T08:00:00Z")));
        assert!(
            timed.describe().contains("until 2030-01-01"),
            "{}",
            timed.describe()
        );
        assert!(open.describe().contains("until `zag-resumed unpause`"));
    }

    #[test]
    fn until_takes_times_and_spans_ahead() {
        let now = t("2030-01-01T00:00:00Z");
        assert_eq!(parse_until("8h", now).unwrap(), t("2030-01-01T08:00:00Z"));
        assert_eq!(parse_until("2d", now).unwrap(), t("2030-01-03T00:00:00Z"));
        assert_eq!(
            parse_until("2030-01-06T08:00:00+01:00", now).unwrap(),
            t("2030-01-06T07:00:00Z")
        );
        assert!(matches!(
            parse_until("2029-12-31T00:00:00Z", now),
            Err(PauseError::UntilPassed(_))
        ));
        assert!(matches!(
            parse_until("0s", now),
            Err(PauseError::UntilPassed(_))
        ));
        for bad in ["", "monday", "8", "8y", "-2h", "99999999999999999d"] {
            assert!(
                matches!(parse_until(bad, now), Err(PauseError::BadUntil(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_file_round_trips_privately_and_clears() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("resumed");
        assert_eq!(load(&state_dir).unwrap(), None);
        assert!(!clear(&dir.path().join("none")).unwrap_or(true));
        let p = PauseState {
            since: t("2030-01-01T00:00:00Z"),
            until: Some(t("2030-01-02T00:00:00Z")),
        };
        save(&state_dir, &p).unwrap();
        assert_eq!(load(&state_dir).unwrap(), Some(p));
        let mode = std::fs::metadata(path(&state_dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(clear(&state_dir).unwrap());
        assert_eq!(load(&state_dir).unwrap(), None);
        std::fs::write(path(&state_dir), "{not json").unwrap();
        let e = load(&state_dir).unwrap_err().to_string();
        assert!(e.contains("is not a pause state"), "{e}");
    }
}
