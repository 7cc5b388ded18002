//! The `scan` command on the real binary: standard input, the one-line
//! summary of an empty result, one-line errors for directories and binary
//! files (exit 1, the other files still scanned), and its `--help`.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_zag-resumed");

fn scan(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("scan")
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn dash_reads_standard_input() {
    let line = br#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1796074773,"rateLimitType":"five_hour"},"session_id":"s-1"}
"#;
    let (code, out, err) = scan(&["--json", "-"], line);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["file"], "-");
    // An exact epoch is kept even when it is already past at the scan.
    assert_eq!(v["reset_at"], "2026-11-30T21:39:33Z");
    assert_eq!(v["scope"], "session");
}

#[test]
fn an_empty_result_says_so_on_stderr() {
    let (code, out, err) = scan(&["-"], b"nothing to see\n");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "", "zag-resumed: no usage limits in standard input\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..3 {
        let p = dir.path().join(format!("{i}.log"));
        std::fs::write(&p, "ok\n").unwrap();
        files.push(p.display().to_string());
    }
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, out, err) = scan(&args, b"");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "", "zag-resumed: no usage limits in 3 files\n")
    );
}

#[test]
fn directories_and_binary_files_are_one_line_each_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("core.bin");
    std::fs::write(&bin, b"\x00\x01You've hit your 5-hour limit\n").unwrap();
    let good = dir.path().join("out.log");
    std::fs::write(
        &good,
        "You've hit your 5-hour limit · resets 7:11pm (UTC)\n",
    )
    .unwrap();
    let d = dir.path().display().to_string();
    let (b, g) = (bin.display().to_string(), good.display().to_string());
    let (code, out, err) = scan(&[&d, &b, &g], b"");
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("resets 20") && out.contains(":12:00Z"),
        "{out}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!("zag-resumed: cannot scan {d}: is a directory").as_str(),
            format!("zag-resumed: cannot scan {b}: binary file (NUL bytes in its first 64 KiB), not a log").as_str(),
        ]
    );
}

#[test]
fn help_explains_every_argument() {
    let out = Command::new(BIN).args(["scan", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for needle in [
        "--json",
        "<FILE>",
        "`-` reads standard input",
        "--plan",
        "exit code 1",
    ] {
        assert!(help.contains(needle), "{needle} missing:\n{help}");
    }
}
