//! `zag-resumed scan --json` as a user runs it, against the physical limit.
//!
//! Builds a deterministic corpus of zag session logs (default: about 200 MB
//! over 701 files, `logs/sessions/<id>.jsonl` so they are read as zag logs,
//! sizes spread around a mean of ~290 KiB), then, several times in one
//! run, alternately:
//! - counts the newlines of every file in this process (memchr over the same
//!   `read` calls into one reused 1 MiB buffer: what reading the files costs),
//! - runs the real release binary, `zag-resumed scan --json FILE...`, with
//!   stdout piped back here and drained.
//!
//! Prints both throughputs (MB/s over the corpus bytes), the median of each
//! and the ratio CLI / newline count (target >= 0.5), and checks that the CLI
//! reported exactly the planted limits. When `taskset` exists it also times
//! the CLI pinned to one core, to show what the threads bring.
//!
//! Each round runs the two back to back, so the per-round ratio compares
//! them under the same load; the median of those ratios is the figure to
//! quote on a shared machine (the ratio of the medians is printed too).
//!
//! Run: `cargo bench --bench scan_cli`. `ZR_SCAN_MB`, `ZR_SCAN_FILES`,
//! `ZR_SCAN_RUNS` change the corpus size, file count and rounds;
//! `ZR_SCAN_KEEP=DIR` builds the corpus there and keeps it (for profiling).

mod corpus;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_zag-resumed");

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (files, total bytes, planted limits).
fn build(dir: &Path, mb: u64, n: u64) -> (Vec<PathBuf>, u64, usize) {
    let target = mb << 20;
    let mut files = Vec::new();
    let (mut bytes, mut planted) = (0u64, 0usize);
    for i in 0..n {
        // Spread sizes from 1/9 to 17/9 of the mean deterministically; the
        // mean is what is left over the files left (a file overshoots its
        // size by up to one line, a large tool result), so the total lands
        // on the target.
        let mean = target.saturating_sub(bytes) / (n - i);
        let size = (mean / 9 + (mean * 16 / 9) * ((i * 7919) % n) / n).max(4096);
        let p = dir
            .join(format!("p{}", i % 13))
            .join("logs/sessions")
            .join(format!(
                "{:08x}-0000-4000-8000-{i:012x}.jsonl",
                i * 2_654_435_761 % (1 << 32)
            ));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        planted += corpus::generate(&p, size, 0x5CA7 ^ i).len();
        bytes += std::fs::metadata(&p).unwrap().len();
        files.push(p);
    }
    (files, bytes, planted)
}

fn newline_count(files: &[PathBuf]) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    for p in files {
        let mut f = std::fs::File::open(p).unwrap();
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        }
    }
    lines
}

/// Run the CLI over `files` (optionally under `taskset -c 0`); returns the
/// number of detection lines it printed.
fn cli(files: &[PathBuf], pinned: bool) -> usize {
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let mut child = cmd
        .arg("scan")
        .arg("--json")
        .args(files)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn zag-resumed");
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "scan exited {status}");
    memchr::memchr_iter(b'\n', &out).count()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mb = env_or("ZR_SCAN_MB", 200);
    let n = env_or("ZR_SCAN_FILES", 701).max(1);
    let runs = env_or("ZR_SCAN_RUNS", 7).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let dir =
        std::env::var_os("ZR_SCAN_KEEP").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let t = Instant::now();
    let (files, bytes, planted) = build(&dir, mb, n);
    let mbytes = bytes as f64 / 1e6;
    println!(
        "corpus: {} files, {mbytes:.1} MB, {planted} planted limits (built in {:.1}s); binary {BIN}",
        files.len(),
        t.elapsed().as_secs_f64()
    );
    // Warm the page cache so both sides read from memory.
    newline_count(&files);
    let pin = Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let (mut nl, mut sc, mut one) = (Vec::new(), Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    for r in 0..runs {
        let t = Instant::now();
        let lines = newline_count(&files);
        let a = mbytes / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hits = cli(&files, false);
        let b = mbytes / t.elapsed().as_secs_f64();
        assert_eq!(
            hits, planted,
            "the CLI must report exactly the planted limits"
        );
        let c = if pin {
            let t = Instant::now();
            assert_eq!(cli(&files, true), planted);
            Some(mbytes / t.elapsed().as_secs_f64())
        } else {
            None
        };
        println!(
            "run {r}: newline count {a:7.0} MB/s ({lines} lines) | scan --json {b:7.0} MB/s ({hits} hits) | ratio {:.2}{}",
            b / a,
            c.map_or(String::new(), |c| format!(" | one core {c:7.0} MB/s ({:.2})", c / a))
        );
        nl.push(a);
        sc.push(b);
        ratios.push(b / a);
        if let Some(c) = c {
            one.push(c);
        }
    }
    let (a, b) = (median(nl), median(sc));
    println!(
        "median: newline count {a:.0} MB/s, scan --json {b:.0} MB/s; median of per-round ratios {:.2} (target >= 0.5), ratio of medians {:.2}{}",
        median(ratios),
        b / a,
        if one.is_empty() {
            String::new()
        } else {
            let c = median(one);
            format!("; pinned to one core {c:.0} MB/s, ratio {:.2}", c / a)
        }
    );
}
