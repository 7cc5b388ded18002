//! The `scan` command's driver: many files through the detectors at memory
//! speed, output in argument order.
//!
//! Why a module of its own: the library's [`crate::detect::scan_reader`] already runs near
//! a newline count on one file; what a command over hundreds of files loses
//! is around it. So the files are spread over a few worker threads (one per
//! core), each thread keeps one read buffer for all its files (it is about
//! 4 MiB, so allocating and faulting it per file cost more than scanning a
//! small log), each file's report is rendered into its own buffer, and the
//! main thread writes the reports in argument order through one buffered
//! stdout. Output is therefore identical whatever the thread count.
//!
//! `-` reads standard input (anchored on the time of the scan). A directory,
//! a special file or a binary file (a NUL byte in its first 64 KiB) is
//! refused with one line on stderr; the other files are still scanned and
//! the exit code is 1 (a runtime error, as for a file that cannot be read).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::detect::{infer_source, scan_reader_buf, Detection, Detector, LineContext, SourceKind};

/// How much of a file is checked for NUL bytes before it is scanned.
const SNIFF: usize = 64 * 1024;

/// Why one input could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("is a directory")]
    Directory,
    #[error("not a regular file")]
    NotRegular,
    #[error("binary file (NUL bytes in its first 64 KiB), not a log")]
    Binary,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// One input's rendered report.
struct Report {
    out: Vec<u8>,
    hits: u64,
}

/// What a whole run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Inputs scanned to the end.
    pub scanned: usize,
    /// Inputs refused or unreadable (each reported on stderr).
    pub failed: usize,
    /// Detections printed.
    pub hits: u64,
    /// The reader of stdout went away (`| head`): stopped quietly.
    pub broken_pipe: bool,
}

impl Summary {
    /// The command's exit code: 1 when any input failed.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed > 0 && !self.broken_pipe)
    }
}

/// Scan `inputs` (`-` is standard input) with `detector`, writing reports to
/// `out` in argument order and one line per failed input to `err`; `now`
/// anchors standard input. Uses up to `threads` worker threads.
pub fn scan_inputs(
    inputs: &[PathBuf],
    detector: &Detector,
    json: bool,
    threads: usize,
    now: DateTime<Utc>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let stop = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, inputs.len().max(1));
    let (tx, rx) = mpsc::channel::<(usize, Result<Report, ScanError>)>();
    std::thread::scope(|scope| -> io::Result<()> {
        for _ in 0..threads {
            let tx = tx.clone();
            let (stop, next) = (&stop, &next);
            scope.spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= inputs.len() || stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = scan_one(&inputs[i], detector, json, now, &mut buf);
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // Reports arrive in any order; write them in argument order.
        let mut pending = BTreeMap::new();
        let mut want = 0usize;
        for (i, r) in rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                match r {
                    Ok(rep) => {
                        summary.scanned += 1;
                        summary.hits += rep.hits;
                        if let Err(e) = out.write_all(&rep.out) {
                            if e.kind() == io::ErrorKind::BrokenPipe {
                                summary.broken_pipe = true;
                                stop.store(true, Ordering::Relaxed);
                                return Ok(());
                            }
                            return Err(e);
                        }
                    }
                    Err(e) => {
                        summary.failed += 1;
                        let name = display_name(&inputs[want]);
                        writeln!(err, "zag-resumed: cannot scan {name}: {e}")?;
                    }
                }
                want += 1;
            }
        }
        Ok(())
    })?;
    if !summary.broken_pipe {
        if let Err(e) = out.flush() {
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(e);
            }
            summary.broken_pipe = true;
        }
    }
    Ok(summary)
}

/// The one-line stderr summary of a run that found nothing, if it did.
pub fn empty_summary(inputs: &[PathBuf], summary: &Summary) -> Option<String> {
    if summary.hits > 0 || summary.scanned == 0 {
        return None;
    }
    let what = if inputs.len() == 1 && is_stdin(&inputs[0]) {
        "standard input".to_string()
    } else if summary.scanned == 1 {
        "1 file".to_string()
    } else {
        format!("{} files", summary.scanned)
    };
    Some(format!("no usage limits in {what}"))
}

fn is_stdin(p: &Path) -> bool {
    p.as_os_str() == "-"
}

fn display_name(p: &Path) -> String {
    if is_stdin(p) {
        "standard input".to_string()
    } else {
        p.display().to_string()
    }
}

fn scan_one(
    input: &Path,
    detector: &Detector,
    json: bool,
    now: DateTime<Utc>,
    buf: &mut Vec<u8>,
) -> Result<Report, ScanError> {
    if is_stdin(input) {
        let ctx = LineContext {
            source: SourceKind::Unknown,
            provider_hint: None,
            anchor: now,
        };
        return scan_stream(
            io::stdin().lock(),
            "-",
            SourceKind::Unknown,
            &ctx,
            detector,
            json,
            buf,
        );
    }
    let meta = std::fs::metadata(input)?;
    if meta.is_dir() {
        return Err(ScanError::Directory);
    }
    if !meta.is_file() {
        return Err(ScanError::NotRegular);
    }
    let f = std::fs::File::open(input)?;
    // Clock times and relative phrases in lines without a timestamp of their
    // own are anchored on the file's last write, not on the time of the scan.
    let anchor: DateTime<Utc> = meta.modified().map(Into::into).unwrap_or(now);
    let source = infer_source(input);
    let ctx = LineContext {
        source,
        provider_hint: source.native_provider(),
        anchor,
    };
    let name = input.display().to_string();
    scan_stream(f, &name, source, &ctx, detector, json, buf)
}

/// Sniff the head for NUL bytes, then scan head + rest.
fn scan_stream(
    mut r: impl Read,
    name: &str,
    source: SourceKind,
    ctx: &LineContext,
    detector: &Detector,
    json: bool,
    buf: &mut Vec<u8>,
) -> Result<Report, ScanError> {
    let mut head = Vec::with_capacity(SNIFF);
    (&mut r).take(SNIFF as u64).read_to_end(&mut head)?;
    if memchr::memchr(0, &head).is_some() {
        return Err(ScanError::Binary);
    }
    let mut out = Vec::new();
    let stats = scan_reader_buf(
        io::Cursor::new(head).chain(r),
        ctx,
        detector,
        buf,
        |line, d| {
            render(&mut out, name, line, source, &d, json);
        },
    )?;
    Ok(Report {
        out,
        hits: stats.hits,
    })
}

/// A detection's JSON fields, as `scan --json` prints them.
pub(crate) fn fields(
    file: &str,
    line: u64,
    source: SourceKind,
    d: &Detection,
) -> serde_json::Value {
    let secs = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "file": file,
        "line": line,
        "provider": d.provider,
        "scope": d.scope,
        "reset_at": d.reset_at.map(secs),
        "raw": d.raw,
        "source": source.as_str(),
        "provider_session_id": d.provider_session_id,
        "wrapper_session_id": d.wrapper_session_id,
        "cwd": d.cwd,
        "line_ts": d.line_ts.map(secs),
        "needs_user": d.needs_user,
    })
}

pub(crate) fn render(
    out: &mut Vec<u8>,
    file: &str,
    line: u64,
    source: SourceKind,
    d: &Detection,
    json: bool,
) {
    let secs = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Writing into a Vec cannot fail.
    let _ = if json {
        writeln!(out, "{}", fields(file, line, source, d))
    } else {
        let reset = match (d.needs_user, d.reset_at) {
            (Some(n), _) => format!("no wait lifts it: {}", n.what_to_do()),
            (None, Some(t)) => format!("resets {}", secs(t)),
            (None, None) => "no reset time".to_string(),
        };
        writeln!(
            out,
            "{file}:{line}: {} {} ({reset}): {}",
            d.provider,
            d.scope.describe(),
            d.raw.replace('\n', "\\n")
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Zone;

    const LIMIT: &str = "You've hit your 5-hour limit · resets 7:11pm (UTC)\n";

    fn now() -> DateTime<Utc> {
        "2026-11-30T12:00:00Z".parse().unwrap()
    }

    fn run(inputs: &[PathBuf], threads: usize) -> (String, String, Summary) {
        let det = Detector::default().with_zone(Zone::named("UTC").unwrap());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let s = scan_inputs(inputs, &det, true, threads, now(), &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            s,
        )
    }

    #[test]
    fn output_is_in_argument_order_whatever_the_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for i in 0..40 {
            let p = dir.path().join(format!("f{i:02}.log"));
            let body = if i % 3 == 0 {
                format!("noise {i}\n{LIMIT}")
            } else {
                format!("noise {i}\n")
            };
            std::fs::write(&p, body).unwrap();
            files.push(p);
        }
        let (one, err1, s1) = run(&files, 1);
        let (many, err4, s4) = run(&files, 4);
        assert_eq!(one, many);
        assert_eq!((err1.as_str(), err4.as_str()), ("", ""));
        assert_eq!((s1.scanned, s1.hits, s1.failed), (40, 14, 0));
        assert_eq!(s1, s4);
        let order: Vec<String> = one
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["file"].to_string())
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
        // Anchored on each file's mtime; read as the end of the printed minute.
        assert!(one.contains(r#"T19:12:00Z""#), "{one}");
    }

    #[test]
    fn directories_and_binary_files_get_one_clear_line_and_the_rest_is_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("a.bin");
        std::fs::write(&bin, b"\x7fELF\x00\x01\x02You've hit your 5-hour limit\n").unwrap();
        let good = dir.path().join("b.log");
        std::fs::write(&good, LIMIT).unwrap();
        let missing = dir.path().join("missing.log");
        let inputs = vec![dir.path().to_path_buf(), bin.clone(), good, missing];
        let (out, err, s) = run(&inputs, 2);
        assert_eq!(out.lines().count(), 1, "{out}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(lines[0].ends_with(": is a directory"), "{err}");
        assert!(lines[1].contains("a.bin: binary file"), "{err}");
        assert!(lines[2].contains("missing.log: "), "{err}");
        assert_eq!((s.scanned, s.failed, s.exit_code()), (1, 3, 1));
        assert_eq!(empty_summary(&inputs, &s), None);
    }

    #[test]
    fn an_empty_result_has_a_one_line_summary() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..3)
            .map(|i| {
                let p = dir.path().join(format!("{i}.log"));
                std::fs::write(&p, "nothing here\n").unwrap();
                p
            })
            .collect();
        let (out, err, s) = run(&files, 2);
        assert_eq!((out.as_str(), err.as_str()), ("", ""));
        assert_eq!(
            empty_summary(&files, &s).as_deref(),
            Some("no usage limits in 3 files")
        );
        assert_eq!(
            empty_summary(&files[..1], &Summary { scanned: 1, ..s }).as_deref(),
            Some("no usage limits in 1 file")
        );
        let stdin = [PathBuf::from("-")];
        assert_eq!(
            empty_summary(&stdin, &Summary { scanned: 1, ..s }).as_deref(),
            Some("no usage limits in standard input")
        );
    }
}
