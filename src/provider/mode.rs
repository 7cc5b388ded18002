//! The permission mode in force at a limit, read back from it: a
//! provider's [`ModeRecord`] says which lines record a mode; the session
//! file is read from its end towards its start, bounded, until the last
//! mode record at or before the limit.
//!
//! Why: the mode a resume runs in must be the one the session had when it
//! met the limit, never more. The file's head (what a tail that started
//! mid-file reads for the session's identity) may hold a mode the user
//! left long before (issue 21).

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::Path;

use super::target::line_ts;
use super::ModeRecord;

/// The first look back from a session file's end; doubled while no mode
/// record is found, up to [`MODE_BACK_MAX`].
const MODE_BACK: u64 = 256 * 1024;
/// The furthest look back: past it the mode is unknown (the provider's
/// default), as a prompt older than that is for a zag log.
const MODE_BACK_MAX: u64 = 64 * 1024 * 1024;

/// The permission mode in force at a limit at `hit` (any time, without a
/// hit time): the mode of the last mode record at or before the limit,
/// found by reading the session file backwards from its end, bounded as
/// the zag-log facts are read (256 KiB, doubled while nothing is found, at
/// most 64 MiB). Lines after the limit are skipped: timed lines later than
/// `hit`, and untimed ones below them. `None`: no mode record within the
/// bound (the provider's default then, never a mode read elsewhere).
pub fn mode_at_limit(path: &Path, hit: Option<DateTime<Utc>>, rec: ModeRecord) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    mode_at_limit_in(&mut f, hit, rec).ok().flatten()
}

/// [`mode_at_limit`] over any seekable reader (tests use memory).
pub fn mode_at_limit_in<R: std::io::Read + std::io::Seek>(
    r: &mut R,
    hit: Option<DateTime<Utc>>,
    rec: ModeRecord,
) -> std::io::Result<Option<String>> {
    use std::io::{Read, SeekFrom};
    let len = r.seek(SeekFrom::End(0))?;
    let needle = memchr::memmem::Finder::new(rec.needle.as_bytes());
    let mut back = MODE_BACK;
    loop {
        let from = len.saturating_sub(back);
        r.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        (&mut *r).take(len - from).read_to_end(&mut buf)?;
        if from > 0 {
            // A line cut at the window's edge is not read.
            let cut = buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |i| i + 1);
            buf.drain(..cut);
        }
        // Walking up from the end: lines after the limit do not count.
        let mut at_limit = hit.is_none();
        for line in buf.rsplit(|&b| b == b'\n') {
            if line.trim_ascii().is_empty() {
                continue;
            }
            let is_mode = needle.find(line).is_some();
            if at_limit && !is_mode {
                continue;
            }
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let ts = line_ts(&v, "timestamp");
            if let (Some(h), Some(t)) = (hit, ts) {
                if t > h {
                    continue;
                }
                at_limit = true;
            }
            if at_limit && is_mode {
                if let Some(m) = (rec.read)(&v).filter(|m| !m.is_empty()) {
                    return Ok(Some(m));
                }
            }
        }
        if from == 0 || back >= MODE_BACK_MAX {
            return Ok(None);
        }
        back = back.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claude_modes() -> ModeRecord {
        crate::provider::of(crate::shared::Provider::Claude)
            .mode_record()
            .unwrap()
    }

    #[test]
    fn the_mode_at_the_limit_is_read_back_from_it_far_past_the_last_window() {
        let ts = |m: u32| format!("2030-01-01T{:02}:{:02}:00Z", 8 + m / 60, m % 60);
        let mut f = String::new();
        f += &format!("{{\"type\":\"user\",\"permissionMode\":\"bypassPermissions\",\"timestamp\":\"{}\",\"message\":{{\"content\":\"a\"}}}}\n", ts(0));
        f += "{\"type\":\"permission-mode\",\"permissionMode\":\"default\"}\n";
        f += &format!("{{\"type\":\"user\",\"permissionMode\":\"default\",\"timestamp\":\"{}\",\"message\":{{\"content\":\"go on\"}}}}\n", ts(1));
        // 1.2 MB of agent output with no user turn
        for i in 0..150 {
            f += &format!(
                "{{\"type\":\"assistant\",\"timestamp\":\"{}\",\"message\":{{\"content\":\"{}\"}}}}\n",
                ts(2 + i / 10),
                "x".repeat(8000)
            );
        }
        f += &format!(
            "{{\"type\":\"assistant\",\"error\":\"rate_limit\",\"timestamp\":\"{}\"}}\n",
            ts(30)
        );
        // after the limit, the user switched again: not the mode at it
        f += "{\"type\":\"permission-mode\",\"permissionMode\":\"plan\"}\n";
        f += &format!("{{\"type\":\"user\",\"permissionMode\":\"acceptEdits\",\"timestamp\":\"{}\",\"message\":{{\"content\":\"b\"}}}}\n", ts(40));
        assert!(f.len() > 1024 * 1024);
        let hit = ts(30).parse().ok();
        let mut r = std::io::Cursor::new(f.as_bytes());
        assert_eq!(
            mode_at_limit_in(&mut r, hit, claude_modes())
                .unwrap()
                .as_deref(),
            Some("default")
        );
        // without a hit time, the last mode of all
        assert_eq!(
            mode_at_limit_in(&mut r, None, claude_modes())
                .unwrap()
                .as_deref(),
            Some("acceptEdits")
        );
        // no mode record at all: unknown (the provider's default), not a guess
        let none = f.replace("permissionMode", "other");
        let mut r = std::io::Cursor::new(none.as_bytes());
        assert_eq!(mode_at_limit_in(&mut r, hit, claude_modes()).unwrap(), None);
    }
}
