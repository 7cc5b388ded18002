//! Reading whole files through the detector: source inference by path, a
//! bounded-memory line scanner, and the little state a file carries from one
//! line to the next.
//!
//! Invariant: [`scan_reader`] holds at most [`MAX_SCAN_LINE`] plus one read
//! chunk in memory, whatever the file or line size. A longer line is judged
//! on its first [`MAX_SCAN_LINE`] bytes (as the tailer does) and the rest is
//! skipped unbuffered.

use chrono::{DateTime, Utc};
use std::io::{self, Read};
use std::path::Path;

use super::{codex, Detection, Detector, LineContext, Provider, Scope, SourceKind};

/// Longest line prefix handed to the detector (the tailer's cut, 1 MiB).
pub const MAX_SCAN_LINE: usize = 1 << 20;

/// Bytes asked of the reader per `read` call.
const CHUNK: usize = 1 << 20;

/// Buffer room beyond one maximal line (a multiple of [`CHUNK`]).
const SLACK: usize = 3 * CHUNK;

/// An unfinished line up to this long is moved to the buffer's front
/// before every read (a cheap copy that keeps the reads cache-warm).
const COMPACT_MAX: usize = 64 * 1024;

/// What a scan went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Lines seen (a final line without a newline counts).
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Lines longer than [`MAX_SCAN_LINE`], judged on their prefix.
    pub truncated: u64,
    /// Detections reported.
    pub hits: u64,
}

/// The kind of file `path` is, by its shape (see [`SourceKind`]).
pub fn infer_source(path: &Path) -> SourceKind {
    let names: Vec<&str> = path
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    let n = names.len();
    let from_end = |i: usize| if i < n { names[n - 1 - i] } else { "" };
    let file = from_end(0);
    let has = |name: &str| names[..n.saturating_sub(1)].contains(&name);
    if file.ends_with(".jsonl") && from_end(1) == "sessions" && from_end(2) == "logs" {
        return SourceKind::ZagSession;
    }
    if file.ends_with(".log") && from_end(1) == "spawn" && from_end(2) == "logs" {
        return SourceKind::ZagSpawn;
    }
    if file.ends_with(".jsonl") && has(".claude") && has("projects") {
        return SourceKind::ClaudeNative;
    }
    if file.starts_with("rollout-") && file.ends_with(".jsonl") && has(".codex") && has("sessions")
    {
        return SourceKind::CodexNative;
    }
    if file == "events.jsonl" && from_end(2) == "session-state" && has(".copilot") {
        return SourceKind::CopilotNative;
    }
    if from_end(1) == "chats" && from_end(3) == "tmp" && has(".gemini") {
        return SourceKind::GeminiNative;
    }
    SourceKind::Unknown
}

/// What one line of a file says about later lines.
///
/// Codex writes the exact reset (`rate_limits.*.resets_at`) in the
/// `token_count` event *before* the `task_complete` that reports the limit;
/// a caller reading a file in order keeps one of these per file and calls
/// [`Detector::detect_in_stream`].
#[derive(Clone, Debug, Default)]
pub struct StreamState {
    codex: Option<codex::Windows>,
}

impl StreamState {
    pub(crate) fn observe(&mut self, line: &[u8], ctx: &LineContext) {
        let codex_file = match ctx.source {
            SourceKind::CodexNative | SourceKind::Unknown => true,
            _ => ctx.provider_hint == Some(Provider::Codex),
        };
        if !codex_file {
            return;
        }
        if let Some(w) = codex::token_count_windows(line) {
            self.codex = Some(w);
        }
    }

    pub(crate) fn complete(&self, d: &mut Detection) {
        if d.provider != Provider::Codex || d.scope == Scope::Transient {
            return;
        }
        let Some(w) = &self.codex else { return };
        let anchor: DateTime<Utc> = match d.line_ts {
            Some(t) => t,
            None => return,
        };
        if let Some((scope, reset)) = w.exhausted(anchor) {
            d.scope = scope;
            d.reset_at = Some(reset);
        }
    }
}

/// Scan `reader` line by line in bounded memory, reporting every detection
/// with its 1-based line number.
pub fn scan_reader<R: Read>(
    reader: R,
    ctx: &LineContext,
    detector: &Detector,
    on_hit: impl FnMut(u64, Detection),
) -> io::Result<ScanStats> {
    scan_reader_buf(reader, ctx, detector, &mut Vec::new(), on_hit)
}

/// [`scan_reader`] with a caller-owned buffer, for callers that scan many
/// files: the buffer (one maximal line plus a few reads, about 4 MiB) is
/// allocated and faulted in once per thread instead of once per file.
pub fn scan_reader_buf<R: Read>(
    mut reader: R,
    ctx: &LineContext,
    detector: &Detector,
    buf: &mut Vec<u8>,
    mut on_hit: impl FnMut(u64, Detection),
) -> io::Result<ScanStats> {
    // Room for one maximal line plus several reads, so the unfinished line
    // is moved to the front only every few reads, not after each one.
    if buf.len() != MAX_SCAN_LINE + SLACK {
        buf.clear();
        buf.resize(MAX_SCAN_LINE + SLACK, 0);
    }
    let buf = &mut buf[..];
    let mut stats = ScanStats::default();
    let mut state = StreamState::default();
    let mut start = 0usize; // first byte of the unfinished line
    let mut end = 0usize; // end of the bytes read so far
    let mut skipping = false; // inside an overlong line already judged
    let mut judge = |line: &[u8], no: u64, stats: &mut ScanStats| {
        if let Some(d) = detector.detect_in_stream(line, ctx, &mut state) {
            stats.hits += 1;
            on_hit(no, d);
        }
    };
    loop {
        // Move the unfinished line to the front when the buffer's end is
        // near, and also whenever it is short: reads then keep landing in
        // the same first megabyte or so, which stays in cache, instead of
        // sweeping the whole buffer (measured: the sweep cost the `scan`
        // command a good part of its speed on a small-cache VM).
        if buf.len() - end < CHUNK || (start > 0 && end - start <= COMPACT_MAX) {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = match reader.read(&mut buf[end..end + CHUNK]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if end > start || skipping {
                stats.lines += 1;
                if !skipping {
                    judge(&buf[start..end], stats.lines, &mut stats);
                }
            }
            return Ok(stats);
        }
        stats.bytes += n as u64;
        let mut from = end;
        end += n;
        while let Some(pos) = memchr::memchr(b'\n', &buf[from..end]) {
            let nl = from + pos;
            stats.lines += 1;
            if skipping {
                skipping = false;
            } else {
                judge(&buf[start..nl], stats.lines, &mut stats);
            }
            start = nl + 1;
            from = start;
        }
        if skipping {
            start = end;
        } else if end - start >= MAX_SCAN_LINE {
            judge(
                &buf[start..start + MAX_SCAN_LINE],
                stats.lines + 1,
                &mut stats,
            );
            stats.truncated += 1;
            skipping = true;
            start = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn sources_by_path_shape() {
        let cases = [
            (
                "/h/.zag/projects/x/logs/sessions/9c.jsonl",
                SourceKind::ZagSession,
            ),
            ("/h/.zag/logs/sessions/9c.jsonl", SourceKind::ZagSession),
            ("/h/.zag/logs/spawn/9c.log", SourceKind::ZagSpawn),
            (
                "/h/.claude/projects/-home-u-p/abc.jsonl",
                SourceKind::ClaudeNative,
            ),
            (
                "/h/.codex/sessions/2026/11/24/rollout-2026-11-24T02-00-00-abc.jsonl",
                SourceKind::CodexNative,
            ),
            (
                "/h/.copilot/session-state/abc/events.jsonl",
                SourceKind::CopilotNative,
            ),
            (
                "/h/.gemini/tmp/proj/chats/session-2026-11-24-abcd1234.json",
                SourceKind::GeminiNative,
            ),
            ("/tmp/capture.txt", SourceKind::Unknown),
            (
                "/h/.codex/sessions/2026/11/24/notes.jsonl",
                SourceKind::Unknown,
            ),
            ("/h/.zag/logs/index.json", SourceKind::Unknown),
        ];
        for (p, want) in cases {
            assert_eq!(infer_source(Path::new(p)), want, "{p}");
        }
    }

    const LIMIT: &str = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"You've hit your session limit · resets 3:35am (UTC)","session_id":"s"}"#;

    fn scan(bytes: &[u8]) -> (ScanStats, Vec<u64>) {
        let mut hits = Vec::new();
        let c = ctx(SourceKind::ZagSpawn, None);
        let stats = scan_reader(bytes, &c, &detector(), |no, _| hits.push(no)).unwrap();
        (stats, hits)
    }

    #[test]
    fn numbers_lines_and_counts_bytes() {
        let text = format!("a\n{LIMIT}\r\n\nb\n{LIMIT}");
        let (stats, hits) = scan(text.as_bytes());
        assert_eq!(stats.lines, 5);
        assert_eq!(stats.bytes, text.len() as u64);
        assert_eq!(hits, [2, 5]);
    }

    #[test]
    fn overlong_lines_are_judged_on_a_prefix_and_skipped() {
        let mut text = Vec::new();
        text.extend_from_slice(LIMIT.as_bytes());
        text.push(b' ');
        text.extend(vec![b'x'; 3 * MAX_SCAN_LINE]);
        text.push(b'\n');
        text.extend(vec![b'y'; 3 * MAX_SCAN_LINE]);
        text.push(b'\n');
        text.extend_from_slice(LIMIT.as_bytes());
        text.push(b'\n');
        // Read in small, odd pieces to exercise the carry-over.
        struct Drip<'a>(&'a [u8]);
        impl Read for Drip<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = out.len().min(self.0.len()).min(70_001);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut hits = Vec::new();
        let c = ctx(SourceKind::ZagSpawn, None);
        let stats = scan_reader(Drip(&text), &c, &detector(), |no, _| hits.push(no)).unwrap();
        assert_eq!(stats.lines, 3);
        assert_eq!(stats.truncated, 2);
        // Line 1's prefix is `{…} xxxx`: no longer a JSON object, but in a
        // spawn log the text rule sees the whole-line sentence is not alone.
        assert_eq!(hits, [3]);
    }
}
