//! Detection throughput against the physical limit, on a realistic corpus.
//!
//! `cargo bench --bench detect` generates a deterministic zag session-log
//! corpus (seeded PRNG; dominated by large tool results, with rare planted
//! limits of every provider and many near misses), writes it to a temp dir,
//! and in one run measures:
//! - a plain newline count over the file (memchr; the physical limit),
//! - `scan_reader` over the same file with the default detector,
//! - the same with one user `extra_patterns` entry,
//! - for scale, parsing every line into a `serde_json::Value`,
//! - planted limits found / missed and false positives,
//! - peak RSS (VmHWM) of a fresh process scanning a small and a large corpus.
//!
//! Exits non-zero when a planted limit is missed or a false one fires.
//! `ZR_BENCH_MB` sets the large corpus size (default 256); `ZR_BENCH_KEEP`
//! names a directory to keep the corpus in.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use zag_resumed::config::{ProviderLimits, UsageLimits};
use zag_resumed::detect::{infer_source, scan_reader, Detector, LineContext};

mod corpus;
use corpus::generate;

fn newline_count(path: &Path) -> (u64, u64) {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return (lines, bytes);
        }
        bytes += n as u64;
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

fn parse_every_line(path: &Path) -> u64 {
    use std::io::BufRead;
    let mut r = std::io::BufReader::with_capacity(1 << 20, File::open(path).unwrap());
    let mut line = Vec::new();
    let mut parsed = 0;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).unwrap() == 0 {
            return parsed;
        }
        if serde_json::from_slice::<serde_json::Value>(&line).is_ok() {
            parsed += 1;
        }
    }
}

/// Lines holding limit wording that are not limits: what a substring
/// matcher would have flagged.
fn near_misses(path: &Path, planted: &BTreeSet<u64>) -> u64 {
    use std::io::BufRead;
    const WORDING: &[&[u8]] = &[
        b"hit your",
        b"usage limit",
        b"rate_limit",
        b"RESOURCE_EXHAUSTED",
        b"quota",
        b"429",
    ];
    let mut r = std::io::BufReader::with_capacity(1 << 20, File::open(path).unwrap());
    let (mut line, mut no, mut n) = (Vec::new(), 0u64, 0u64);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).unwrap() == 0 {
            return n;
        }
        no += 1;
        let flagged = WORDING
            .iter()
            .any(|w| memchr::memmem::find(&line, w).is_some());
        if flagged && !planted.contains(&no) {
            n += 1;
        }
    }
}

fn ctx_for(path: &Path) -> LineContext {
    LineContext {
        source: infer_source(path),
        provider_hint: None,
        anchor: chrono::DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    }
}

fn scan(path: &Path, det: &Detector) -> (u64, BTreeSet<u64>) {
    let mut found = BTreeSet::new();
    let stats = scan_reader(File::open(path).unwrap(), &ctx_for(path), det, |no, _| {
        found.insert(no);
    })
    .unwrap();
    (stats.bytes, found)
}

const ROUNDS: usize = 8;

fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed().as_secs_f64(), r)
}

fn vm_hwm_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn extra_limits() -> UsageLimits {
    let mut limits = UsageLimits::default();
    limits.providers.insert(
        "claude".into(),
        ProviderLimits {
            extra_patterns: vec![r"(?i)capacity exhausted for (?:this|your) plan".into()],
            ..ProviderLimits::default()
        },
    );
    limits
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child mode: scan one file in a fresh process and report its peak RSS.
    if let Some(i) = args.iter().position(|a| a == "--rss-child") {
        let path = PathBuf::from(&args[i + 1]);
        let (det, _) = Detector::new([]);
        let (bytes, found) = scan(&path, &det);
        println!("{} {} {}", vm_hwm_kb(), bytes, found.len());
        return;
    }
    let mb: usize = std::env::var("ZR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    // ZR_BENCH_KEEP=<dir> keeps the corpus there (to profile `--rss-child`).
    let tmp = tempfile::tempdir().unwrap();
    let root =
        std::env::var_os("ZR_BENCH_KEEP").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let sessions = root.join("logs/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let big = sessions.join("corpus-large.jsonl");
    let small = sessions.join("corpus-small.jsonl");

    let t = Instant::now();
    let planted = generate(&big, (mb as u64) << 20, 0x5EED);
    let planted_small = generate(&small, ((mb / 4).max(16) as u64) << 20, 0x5EED ^ 1);
    let size = std::fs::metadata(&big).unwrap().len();
    let misses = near_misses(&big, &planted);
    println!(
        "corpus: {:.1} MiB zag session log ({} planted limits, {misses} near-miss lines with limit wording), generated with the small one in {:.1}s",
        size as f64 / 1048576.0,
        planted.len(),
        t.elapsed().as_secs_f64()
    );

    let gb = |secs: f64| size as f64 / secs / 1e9;
    let (det, _) = Detector::new([]);
    let (det_x, invalid) = Detector::new(extra_limits().extra_patterns());
    assert!(invalid.is_empty());
    // Interleave the three measurements and keep each one's best run, so
    // that load from other processes hits all three alike.
    let (mut t_nl, mut t_scan, mut t_x) = (f64::MAX, f64::MAX, f64::MAX);
    let (mut lines, mut found, mut found_x) = (0, BTreeSet::new(), BTreeSet::new());
    // The slot right after the newline count runs measurably slower on a
    // shared machine, so the two scans take turns in it.
    for round in 0..ROUNDS {
        let (t, (l, _)) = timed(|| newline_count(&big));
        (t_nl, lines) = (t_nl.min(t), l);
        for extra in [round % 2 == 1, round % 2 == 0] {
            if extra {
                let (t, (_, f)) = timed(|| scan(&big, &det_x));
                (t_x, found_x) = (t_x.min(t), f);
            } else {
                let (t, (_, f)) = timed(|| scan(&big, &det));
                (t_scan, found) = (t_scan.min(t), f);
            }
        }
    }
    println!(
        "newline count:          {:>5.2} GB/s  ({lines} lines; best of {ROUNDS})",
        gb(t_nl)
    );
    println!(
        "scan:                   {:>5.2} GB/s  = {:.0}% of newline count",
        gb(t_scan),
        100.0 * t_nl / t_scan
    );
    println!(
        "scan + 1 extra pattern: {:>5.2} GB/s  = {:.0}% of newline count, cost {:+.1}% vs scan",
        gb(t_x),
        100.0 * t_nl / t_x,
        100.0 * (t_x - t_scan) / t_scan
    );

    // For scale: what a daemon that parses every line into a JSON tree
    // (as zag 0.18's readers do) pays before any detector runs. One run.
    let (t_tree, parsed) = timed(|| parse_every_line(&big));
    println!(
        "for scale, serde_json::Value per line: {:>5.2} GB/s  = {:.0}% of newline count ({parsed} lines parsed)",
        gb(t_tree),
        100.0 * t_nl / t_tree
    );

    let mut ok = true;
    for (name, found) in [("scan", &found), ("scan+extra", &found_x)] {
        let missed: Vec<_> = planted.difference(found).collect();
        let false_pos: Vec<_> = found.difference(&planted).collect();
        println!(
            "{name:<11} limits planted {} found {} missed {} false positives {}",
            planted.len(),
            planted.intersection(found).count(),
            missed.len(),
            false_pos.len()
        );
        if !missed.is_empty() || !false_pos.is_empty() {
            println!("  missed lines {missed:?} false lines {false_pos:?}");
            ok = false;
        }
    }

    let exe = std::env::current_exe().unwrap();
    for (label, path, want) in [("small", &small, &planted_small), ("large", &big, &planted)] {
        let out = Command::new(&exe)
            .args(["--rss-child", path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text
            .split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(0));
        let (hwm, bytes, hits) = (
            it.next().unwrap_or(0),
            it.next().unwrap_or(0),
            it.next().unwrap_or(0),
        );
        println!(
            "peak RSS ({label}, {:.0} MiB): {:.1} MiB  ({hits} hits)",
            bytes as f64 / 1048576.0,
            hwm as f64 / 1024.0
        );
        if hits != want.len() as u64 {
            println!("  {label}: expected {} hits", want.len());
            ok = false;
        }
    }
    if !ok {
        eprintln!("FAIL: a planted limit was missed or a false one fired");
        std::process::exit(1);
    }
}
