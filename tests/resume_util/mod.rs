//! Helpers for the resume-delivery integration tests: a temporary home with a
//! zag home, provider dirs, a working directory, and fake provider CLIs that
//! record their argv, cwd and environment and replay scripted output.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zag_resumed::config::{Binaries, ResumeConfig};
use zag_resumed::detect::{Detection, Detector, LineContext, Provider, Scope};
use zag_resumed::paths::Paths;
use zag_resumed::provider::claude::project_dir_name as claude_project_dir_name;
use zag_resumed::resume::{DetectFn, ResumeEnv};
use zag_resumed::store::Schedule;

pub const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
pub const WRAPPER: &str = "9c1d2e3f-0000-4000-8000-000000000001";

pub struct Home {
    pub dir: tempfile::TempDir,
    pub paths: Paths,
    pub bin: PathBuf,
    pub work: PathBuf,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let bin = dir.path().join("bin");
        let work = dir.path().join("work/proj");
        for d in [&home, &bin, &work] {
            std::fs::create_dir_all(d).unwrap();
        }
        let paths = Paths::new(&home, None);
        std::fs::create_dir_all(&paths.zag_home).unwrap();
        Home {
            dir,
            paths,
            bin,
            work,
        }
    }

    pub fn work_str(&self) -> String {
        self.work.to_string_lossy().into_owned()
    }

    /// A short-timeout config for tests.
    pub fn config() -> ResumeConfig {
        ResumeConfig {
            max_concurrent: 2,
            timeout_secs: 10,
            capture_bytes: 64 * 1024,
            fifo_write_timeout_ms: 300,
            fifo_confirm_timeout_secs: 2,
            ..ResumeConfig::default()
        }
    }

    pub fn env(&self) -> ResumeEnv {
        self.env_with(Self::config())
    }

    pub fn env_with(&self, config: ResumeConfig) -> ResumeEnv {
        let mut env = ResumeEnv::new(
            self.paths.clone(),
            config,
            Binaries::default(),
            Detector::default(),
        );
        env.search_path = Some(self.bin.clone().into_os_string());
        env
    }

    /// Install a fake CLI named after the provider. It records into
    /// `bin/<name>.argv` (NUL-separated), `.cwd`, `.env`; prints
    /// `bin/<name>.out` on stdout and `.err` on stderr; exits with `.code`;
    /// with `.hang` present it ignores SIGTERM and sleeps in a child
    /// (recording both pids) so only a group SIGKILL ends it.
    pub fn fake(&self, name: &str) {
        let d = self.bin.display();
        let script = format!(
            r#"#!/bin/sh
D='{d}'
N='{name}'
: > "$D/$N.argv"
for a in "$@"; do printf '%s\0' "$a" >> "$D/$N.argv"; done
pwd > "$D/$N.cwd"
env > "$D/$N.env"
echo run >> "$D/$N.runs"
if [ -f "$D/$N.hang" ]; then
  trap '' TERM
  sleep 600 &
  echo $! > "$D/$N.childpid"
  echo $$ > "$D/$N.pid"
  wait
  wait
fi
if [ -f "$D/$N.delay" ]; then sleep "$(cat "$D/$N.delay")"; fi
if [ -f "$D/$N.out" ]; then cat "$D/$N.out"; fi
if [ -f "$D/$N.err" ]; then cat "$D/$N.err" >&2; fi
exit "$(cat "$D/$N.code" 2>/dev/null || echo 0)"
"#
        );
        let p = self.bin.join(name);
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn script(&self, name: &str, out: &str, err: &str, code: i32) {
        self.fake(name);
        std::fs::write(self.bin.join(format!("{name}.out")), out).unwrap();
        std::fs::write(self.bin.join(format!("{name}.err")), err).unwrap();
        std::fs::write(self.bin.join(format!("{name}.code")), code.to_string()).unwrap();
    }

    pub fn argv(&self, name: &str) -> Vec<String> {
        let b = std::fs::read(self.bin.join(format!("{name}.argv"))).unwrap();
        b.split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    pub fn ran(&self, name: &str) -> bool {
        self.bin.join(format!("{name}.runs")).exists()
    }

    pub fn runs(&self, name: &str) -> usize {
        std::fs::read_to_string(self.bin.join(format!("{name}.runs")))
            .map_or(0, |s| s.lines().count())
    }

    pub fn cwd(&self, name: &str) -> PathBuf {
        let s = std::fs::read_to_string(self.bin.join(format!("{name}.cwd"))).unwrap();
        PathBuf::from(s.trim_end())
    }

    pub fn child_env(&self, name: &str) -> BTreeMap<String, String> {
        std::fs::read_to_string(self.bin.join(format!("{name}.env")))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A Claude transcript for `id` in the work dir's project folder.
    pub fn claude_transcript(&self, id: &str, lines: &[String]) -> PathBuf {
        let dir = self
            .paths
            .provider_home(Provider::Claude)
            .join("projects")
            .join(claude_project_dir_name(&self.work_str()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{id}.jsonl"));
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    /// The usual transcript: a prompt, then the limit at `hit`.
    pub fn claude_limited_transcript(&self, id: &str, hit: &str) -> PathBuf {
        let cwd = self.work_str();
        self.claude_transcript(
            id,
            &[
                format!(
                    r#"{{"type":"user","sessionId":"{id}","cwd":"{cwd}","timestamp":"{}","message":{{"role":"user","content":"fix the bug"}}}}"#,
                    shift(hit, -5)
                ),
                format!(
                    r#"{{"type":"assistant","sessionId":"{id}","cwd":"{cwd}","timestamp":"{hit}","error":"rate_limit","isApiErrorMessage":true,"message":{{"model":"<synthetic>","content":[{{"type":"text","text":"You've hit your session limit · resets 3:35am (UTC)"}}]}}}}"#
                ),
            ],
        )
    }

    /// A zag session log under `projects/p/logs/sessions/<wrapper>.jsonl`.
    pub fn zag_log(&self, wrapper: &str, lines: &[String]) -> PathBuf {
        let p = self
            .paths
            .projects()
            .join("p")
            .join("logs/sessions")
            .join(format!("{wrapper}.jsonl"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        p
    }

    pub fn project(&self) -> PathBuf {
        self.paths.projects().join("p")
    }

    pub fn log_events(&self, log: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// `ts` moved by `secs` seconds, RFC 3339.
pub fn shift(ts: &str, secs: i64) -> String {
    (t(ts) + chrono::Duration::seconds(secs)).to_rfc3339()
}

pub fn t(ts: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(ts)
        .unwrap()
        .with_timezone(&Utc)
}

pub const HIT: &str = "2030-01-01T10:00:00+00:00";

/// A due incident as the daemon would record it.
pub fn incident(provider: &str) -> Schedule {
    Schedule {
        incident_id: "inc-1".into(),
        session_id: ID.into(),
        provider: provider.into(),
        when: t(HIT) + chrono::Duration::hours(5),
        message: "Continue".into(),
        attempt: 1,
        origin: Some("zag-resumed".into()),
        scope: Some("session".into()),
        provider_session_id: Some(ID.into()),
        hit_at: Some(t(HIT)),
        ..Default::default()
    }
}

/// A stand-in detector (the real one lives in `detect`): any line with
/// `"status":"rejected"`, `hit your` or `exhausted your daily quota` is a
/// limit.
pub fn fake_detect() -> DetectFn {
    Arc::new(|line: &[u8], ctx: &LineContext| {
        let s = String::from_utf8_lossy(line);
        (s.contains(r#""status":"rejected""#)
            || s.contains("hit your")
            || s.contains("exhausted your daily quota"))
        .then(|| Detection {
            provider: ctx.provider_hint.unwrap_or(Provider::Claude),
            scope: Scope::Session,
            reset_at: None,
            raw: s.into_owned(),
            provider_session_id: None,
            wrapper_session_id: None,
            cwd: None,
            line_ts: None,
            zag_hit: None,
            needs_user: None,
        })
    })
}

pub const CLAUDE_OK: &str = concat!(
    r#"{"type":"system","subtype":"init","session_id":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
    "\n",
    r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"Picking up where I left off."}]}}"#,
    "\n",
    r#"{"type":"result","subtype":"success","is_error":false,"result":"Done.","session_id":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
    "\n"
);

pub const CLAUDE_LIMIT: &str = concat!(
    r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1795000000,"rateLimitType":"five_hour","isUsingOverage":false},"session_id":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
    "\n",
    r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"You've hit your session limit · resets 3:35am (UTC)"}"#,
    "\n"
);

/// Is this pid gone (or a zombie nobody reaped yet)?
pub fn pid_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// `mkfifo` at the relay's path (`B/fifos/<wrapper>`), mode 0600 like zag.
pub fn mkfifo(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    use rustix::fs::{mknodat, FileType, Mode, CWD};
    mknodat(CWD, p, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", p.display()));
}

/// Open a FIFO the way zag's relay does: read-write, so it never sees EOF.
pub fn open_like_relay(p: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap()
}

/// A relay stand-in: reads one line from the FIFO and, when `log_back`,
/// logs it as a `user_message` the way the real relay's replay does.
pub fn fake_relay(fifo: &Path, log: &Path, log_back: bool) -> std::thread::JoinHandle<String> {
    use std::io::{BufRead, Write};
    let f = open_like_relay(fifo);
    let log = log.to_path_buf();
    std::thread::spawn(move || {
        let mut line = String::new();
        std::io::BufReader::new(f).read_line(&mut line).unwrap();
        if log_back {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let ev = serde_json::json!({
                "seq": 99, "ts": Utc::now().to_rfc3339(), "provider": "claude",
                "wrapper_session_id": WRAPPER, "provider_session_id": null,
                "source_kind": "wrapper", "completeness": "full",
                "type": "user_message", "role": "user", "content": v["content"],
            });
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            f.write_all(format!("{ev}\n").as_bytes()).unwrap();
        }
        line
    })
}

/// Fill a FIFO's pipe buffer (a reader holds it open but never reads).
pub fn fill_pipe(fifo: &Path) -> std::fs::File {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .unwrap();
    let chunk = [b'x'; 4096];
    loop {
        match w.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    w
}

/// A relay session's log with the prompt that hit the limit.
pub fn relay_log(h: &Home) -> PathBuf {
    h.zag_log(
        WRAPPER,
        &[format!(
            r#"{{"seq":1,"ts":"{}","provider":"claude","wrapper_session_id":"{WRAPPER}","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"user_message","role":"user","content":"fix the bug"}}"#,
            shift(HIT, -5)
        )],
    )
}

/// The daemon's record for a relay session.
pub fn relay_incident(h: &Home, log: &Path) -> Schedule {
    let mut inc = incident("claude");
    inc.session_id = WRAPPER.into();
    inc.wrapper_session_id = Some(WRAPPER.into());
    inc.provider_session_id = None;
    inc.cwd = Some(h.work_str());
    inc.log_path = log.to_string_lossy().into_owned();
    inc
}
