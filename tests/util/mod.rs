//! Shared helpers for the integration tests: a temporary HOME with a zag
//! home inside, fake provider CLIs on PATH that record how they were called,
//! and the real daemon binary started and stopped as a child process.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_zag-resumed");

/// A throwaway user environment.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub zag: PathBuf,
    pub bin: PathBuf,
    /// Where the fake CLIs leave one record file per invocation (one file
    /// each, so concurrent invocations never interleave).
    pub calls: PathBuf,
}

impl Env {
    /// A home with zag's global `zag.toml` set for fast, exact tests:
    /// no jitter, no stagger.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let zag = home.join(".zag");
        let bin = dir.path().join("bin");
        let calls = dir.path().join("calls");
        std::fs::create_dir_all(&zag).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&calls).unwrap();
        std::fs::write(
            zag.join("zag.toml"),
            "[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n",
        )
        .unwrap();
        let env = Env {
            dir,
            home,
            zag,
            bin,
            calls,
        };
        for p in ["claude", "codex", "gemini", "copilot"] {
            env.fake_cli(
                p,
                r#"{"type":"result","subtype":"success","is_error":false,"result":"ok"}"#,
                0,
            );
        }
        env
    }

    /// Install a fake provider CLI that records `cwd` and argv, prints
    /// `stdout`, and exits with `code`.
    pub fn fake_cli(&self, name: &str, stdout: &str, code: i32) {
        let script = format!(
            "#!/bin/sh\nrec=$(mktemp '{calls}/call.XXXXXXXX')\n{{ printf 'call %s\\n' \"{name}\"; printf 'cwd %s\\n' \"$PWD\"; printf 'status %s\\n' \"$(grep THP_enabled /proc/self/status)\"; for a in \"$@\"; do printf 'arg %s\\n' \"$a\"; done; printf 'end\\n'; }} > \"$rec.tmp\"\nmv \"$rec.tmp\" \"$rec.done\"\ncat <<'__OUT__'\n{stdout}\n__OUT__\nexit {code}\n",
            calls = self.calls.display()
        );
        let p = self.bin.join(name);
        std::fs::write(&p, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Every recorded invocation: (cli, cwd, args).
    pub fn calls(&self) -> Vec<(String, String, Vec<String>)> {
        let mut files: Vec<_> = std::fs::read_dir(&self.calls)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "done"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        let text: String = files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect();
        let mut out = Vec::new();
        let mut cur: Option<(String, String, Vec<String>)> = None;
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("call ") {
                cur = Some((n.to_string(), String::new(), Vec::new()));
            } else if let Some(c) = line.strip_prefix("cwd ") {
                if let Some(x) = cur.as_mut() {
                    x.1 = c.to_string();
                }
            } else if let Some(a) = line.strip_prefix("arg ") {
                if let Some(x) = cur.as_mut() {
                    x.2.push(a.to_string());
                }
            } else if line == "end" {
                out.extend(cur.take());
            }
        }
        out
    }

    pub fn path_var(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// A command for the real binary in this environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("HOME", &self.home)
            .env("PATH", self.path_var())
            .env("RUST_LOG", "debug")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        c
    }

    /// Run a CLI command to completion: (exit code, stdout, stderr).
    pub fn run_cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd(args).stdin(Stdio::null()).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Start the daemon and wait until it is watching.
    pub fn start(&self) -> Daemon {
        self.start_with(&[], &[])
    }

    /// Start the daemon by `cmd` (the binary's `run`, maybe behind a
    /// wrapper that execs it) and wait until it is watching.
    pub fn start_cmd(&self, mut cmd: Command) -> Daemon {
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.dir.path().join(format!("daemon-{n}.log"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon {
            child: Some(child),
            log,
        };
        d.wait_log("zag-resumed is watching");
        d
    }

    /// Start the daemon with more arguments after `run` and more
    /// environment (an empty value removes the variable), and wait until it
    /// is watching.
    pub fn start_with(&self, args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let mut cmd = self.cmd(&all);
        for (k, v) in envs {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        self.start_cmd(cmd)
    }

    pub fn store(&self) -> PathBuf {
        self.zag.join("scheduled_resumes.jsonl")
    }

    /// Store records as JSON values (unparseable lines skipped).
    pub fn records(&self, store: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(store)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The `complete` records of the global store, in order.
    pub fn completes(&self) -> Vec<serde_json::Value> {
        self.records(&self.store())
            .into_iter()
            .filter(|r| r["action"] == "complete")
            .collect()
    }
}

/// Waiting on the daemon's state rather than on time.
impl Env {
    /// The daemon's `status --json` (`None` while it does not answer).
    /// Each answer is a round trip through the core's loop: everything the
    /// core was sent before it has been handled.
    pub fn status(&self) -> Option<serde_json::Value> {
        let (code, out, _) = self.run_cli(&["status", "--json"]);
        (code == 0)
            .then(|| serde_json::from_str(&out).ok())
            .flatten()
    }

    /// Poll `status` until `cond` holds of it; returns that status.
    pub fn wait_status(
        &self,
        what: &str,
        mut cond: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = None;
        wait_for(what, || {
            last = self.status();
            last.as_ref().is_some_and(&mut cond)
        });
        last.unwrap()
    }

    /// Wait until the ingest thread's saved offset of `file` reaches its
    /// current length: every line of it was read, and every hit in it acked
    /// by the core (offsets are saved only after the acks). The length is
    /// re-read each time: the daemon appends its own events to zag logs.
    pub fn wait_read_whole(&self, file: &Path) {
        let offsets = self.zag.join("resumed/offsets.json");
        wait_for(&format!("{} read to its end", file.display()), || {
            let len = std::fs::metadata(file).map(|m| m.len()).ok();
            std::fs::read_to_string(&offsets)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["files"][file.to_string_lossy().as_ref()]["offset"].as_u64())
                == len
        });
    }
}

/// The `event` kinds of a status's recent outcomes, oldest first.
pub fn recent_events(status: &serde_json::Value) -> Vec<String> {
    status["recent"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["event"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// How many incidents a status shows pending.
pub fn pending_count(status: &serde_json::Value) -> usize {
    status["pending"].as_array().map_or(0, Vec::len)
}

impl Drop for Env {
    /// With `ZR_KEEP` set, a failing test leaves its directory for a post-mortem.
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("ZR_KEEP").is_some() {
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!("kept the test directory at {}", kept.display());
        }
    }
}

pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the daemon's log contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        let log = self.log.clone();
        wait_for(&format!("daemon log to say {needle:?}"), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(needle)
        });
    }

    pub fn kill9(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// Wait for the daemon to exit on its own: its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let c = self.child.as_mut().unwrap();
        let start = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the daemon did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait: returns the exit code.
    pub fn terminate(mut self) -> i32 {
        let mut c = self.child.take().unwrap();
        let pid = rustix::process::Pid::from_child(&c);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let start = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "daemon did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- daemon log {} ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Poll a condition until it holds (60 s at most: a deadline for a failing
/// test, never a wait for a passing one, generous for a loaded machine).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Append bytes to a file (creating it and its folders).
pub fn append(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A zag session-log line with zag's envelope.
pub fn zag_line(
    seq: u64,
    wrapper: &str,
    provider_sid: Option<&str>,
    kind: &str,
    fields: serde_json::Value,
) -> String {
    let mut v = serde_json::json!({
        "seq": seq,
        "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, false),
        "provider": "claude",
        "wrapper_session_id": wrapper,
        "provider_session_id": provider_sid,
        "source_kind": "wrapper",
        "completeness": "full",
        "type": kind,
    });
    for (k, val) in fields.as_object().unwrap() {
        v[k] = val.clone();
    }
    format!("{v}\n")
}

/// The daemon run in this process on an injected clock (a test moves time
/// by hand instead of waiting for it), on a runtime of its own; stopped
/// when dropped. The CLI (`Env::run_cli`, `Env::status`) reaches it
/// through its socket as it would the binary.
pub struct InProcess {
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), zag_resumed::daemon::DaemonError>>>,
    // Requests from outside the socket: none, kept open while it runs.
    _extra: tokio::sync::mpsc::Sender<zag_resumed::control::DaemonRequest>,
}

impl Env {
    /// Start the daemon in process on `clock` and wait until it answers
    /// `status`. Desktop notifications are off.
    pub fn start_in_process(
        &self,
        clock: std::sync::Arc<dyn zag_resumed::clock::Clock>,
    ) -> InProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = zag_resumed::config::DaemonConfig::default();
        config.notify.desktop = false;
        let opts = zag_resumed::daemon::Options {
            paths: zag_resumed::paths::Paths::new(&self.home, None),
            config,
            config_path: None,
            clock,
            search_path: Some(self.path_var().into()),
            dry_run: false,
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (extra_tx, extra) = tokio::sync::mpsc::channel(1);
        let task = runtime.spawn(zag_resumed::daemon::run(opts, extra, shutdown.clone()));
        wait_for("the in-process daemon to answer", || {
            self.status().is_some()
        });
        InProcess {
            runtime: Some(runtime),
            shutdown,
            task: Some(task),
            _extra: extra_tx,
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let (Some(rt), Some(task)) = (self.runtime.take(), self.task.take()) {
            let ended =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
            if !std::thread::panicking() {
                let ended = ended.expect("the in-process daemon stops on shutdown");
                assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
            }
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// Where Claude keeps the transcript of session `sid` run in `cwd`
/// (`~/.claude/projects/<cwd with / and . as ->/<sid>.jsonl`); nothing is
/// created.
pub fn claude_transcript_path(env: &Env, cwd: &Path, sid: &str) -> PathBuf {
    env.home
        .join(".claude/projects")
        .join(cwd.display().to_string().replace(['/', '.'], "-"))
        .join(format!("{sid}.jsonl"))
}

/// What Claude Code 2.1 shows at a session limit, the reset written with
/// `fmt` (a chrono format: `%-I:%M%P`, `%-I%P`, `%b %-d, %-I:%M%P`).
pub fn claude_limit_text(reset: chrono::DateTime<chrono::Utc>, fmt: &str) -> String {
    format!(
        "You've hit your session limit · resets {} (UTC)",
        reset.format(fmt)
    )
}

/// A Claude transcript entry of the user's prompt `text`, written at `ts`.
pub fn claude_user(cwd: &Path, sid: &str, text: &str, ts: &str) -> serde_json::Value {
    serde_json::json!({"type":"user","message":{"role":"user","content":text},"cwd":cwd,"sessionId":sid,"timestamp":ts})
}

/// Claude's synthetic limit entry showing `text`, written at `ts`, as the
/// real CLI leaves it in its transcript.
pub fn claude_limit(cwd: &Path, sid: &str, text: &str, ts: &str) -> serde_json::Value {
    serde_json::json!({"type":"assistant","message":{"model":"<synthetic>","role":"assistant","content":[{"type":"text","text":text}]},"error":"rate_limit","isApiErrorMessage":true,"sessionId":sid,"cwd":cwd,"timestamp":ts})
}

/// Append a turn that met a limit to a Claude transcript: the prompt five
/// seconds before `hit`, then the limit entry (showing `text`) at `hit`.
pub fn append_claude_limited_turn(
    transcript: &Path,
    cwd: &Path,
    sid: &str,
    prompt: &str,
    text: &str,
    hit: chrono::DateTime<chrono::Utc>,
) {
    let user = claude_user(
        cwd,
        sid,
        prompt,
        &(hit - chrono::Duration::seconds(5)).to_rfc3339(),
    );
    let limit = claude_limit(cwd, sid, text, &hit.to_rfc3339());
    append(transcript, format!("{user}\n{limit}\n").as_bytes());
}

/// A zag session-log line of a Gemini session (zag's envelope, no provider
/// session id).
pub fn gemini_zag_line(seq: u64, wrapper: &str, kind: &str, fields: serde_json::Value) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&zag_line(seq, wrapper, None, kind, fields)).unwrap();
    v["provider"] = serde_json::json!("gemini");
    format!("{v}\n")
}

/// A Gemini zag session's log up to its prompt `prompt` (no limit yet):
/// `session_started` in `work`, `filler` long assistant lines (2 KB each),
/// then the user's prompt. Returns the log's path.
pub fn gemini_zag_log(env: &Env, wrapper: &str, work: &Path, filler: u64, prompt: &str) -> PathBuf {
    let log = env
        .zag
        .join("logs/sessions")
        .join(format!("{wrapper}.jsonl"));
    append(
        &log,
        gemini_zag_line(
            1,
            wrapper,
            "session_started",
            serde_json::json!({"command":"exec","cwd":work,"resumed":false,"backfilled":false}),
        )
        .as_bytes(),
    );
    for seq in 2..2 + filler {
        append(
            &log,
            gemini_zag_line(
                seq,
                wrapper,
                "assistant_message",
                serde_json::json!({"content": "x".repeat(2000), "message_id": null}),
            )
            .as_bytes(),
        );
    }
    append(
        &log,
        gemini_zag_line(
            2 + filler,
            wrapper,
            "user_message",
            serde_json::json!({"role":"user","content":prompt}),
        )
        .as_bytes(),
    );
    log
}

/// What Gemini CLI prints at its daily quota, as zag's spawn log of
/// `wrapper` keeps it.
pub fn gemini_quota_in_spawn_log(env: &Env, wrapper: &str) {
    let spawn_log = env.zag.join("logs/spawn").join(format!("{wrapper}.log"));
    append(&spawn_log, b"Error when talking to Gemini API\n");
    append(&spawn_log, br#"{"error":{"type":"Error","message":"You have exhausted your daily quota on this model.","code":429}}"#);
    append(&spawn_log, b"\n");
}

/// An environment whose zag waits at most a second for a limit: one with no
/// reset time falls back to one second, and Gemini's daily quota (due at
/// the next midnight Pacific) is capped by `max_wait_secs`.
pub fn gemini_env() -> Env {
    let env = Env::new();
    std::fs::write(
        env.zag.join("zag.toml"),
        "[usage_limits]\njitter_secs = 0\nstagger_secs = 0\ndefault_fallback_secs = 1\nmax_wait_secs = 1\n",
    )
    .unwrap();
    env
}

/// Claude's own transcript of a session with one user turn, as the real
/// CLI leaves it.
pub fn claude_transcript(env: &Env, cwd: &Path, sid: &str) -> PathBuf {
    let path = claude_transcript_path(env, cwd, sid);
    let ts = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    let user = claude_user(cwd, sid, "refactor the parser", &ts);
    append(&path, format!("{user}\n").as_bytes());
    path
}

/// A pending record as zag's exec loop writes it (no `origin`, the
/// provider's session id `sid`), for a session whose log is `log`.
pub fn zag_exec_record(
    sid: &str,
    id: &str,
    when: chrono::DateTime<chrono::Utc>,
    log: &Path,
) -> String {
    format!(
        "{}\n",
        serde_json::json!({"action":"schedule","incident_id":id,"session_id":sid,"provider":"claude","when":when.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),"message":"Continue","attempt":1,"log_path":log})
    )
}

/// A zag exec session's log (Claude session `sid`, the Claude transcript
/// behind it made too) whose last line is `age` old.
pub fn zag_exec_log(
    env: &Env,
    wrapper: &str,
    cwd: &Path,
    sid: &str,
    age: chrono::Duration,
) -> PathBuf {
    claude_transcript(env, cwd, sid);
    let log = env
        .zag
        .join("logs/sessions")
        .join(format!("{wrapper}.jsonl"));
    let ts = (chrono::Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
    let line = |seq: u64, kind: &str, extra: serde_json::Value| {
        let mut v = serde_json::json!({"seq":seq,"ts":ts,"provider":"claude","wrapper_session_id":wrapper,"provider_session_id":sid,"source_kind":"wrapper","completeness":"full","type":kind});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let started = line(
        1,
        "session_started",
        serde_json::json!({"command":"exec","cwd":cwd,"resumed":false,"backfilled":false}),
    );
    let beat = line(2, "heartbeat", serde_json::json!({"interval_secs":10}));
    append(&log, format!("{started}\n{beat}\n").as_bytes());
    log
}

/// A home whose daemon adopts a stranded zag resume after a one-second
/// grace, and a work dir.
pub fn adoption_env() -> (Env, PathBuf) {
    let env = Env::new();
    let work = env.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(env.zag.join("resumed")).unwrap();
    std::fs::write(
        env.zag.join("resumed/config.toml"),
        "[resume]\nadopt_grace_secs = 1\n",
    )
    .unwrap();
    (env, work)
}
