//! Resume delivery end to end against fake provider CLIs and real FIFOs.

#[path = "resume_util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use util::*;
use zag_resumed::resume::{deliver, deliver_with, resolve_target, Channel, Outcome};

fn resumed(o: &Outcome) -> &str {
    match o {
        Outcome::Resumed { detail } => detail,
        other => panic!("expected Resumed, got {other:?}"),
    }
}

fn failed(o: &Outcome) -> &str {
    match o {
        Outcome::Failed { reason } => reason,
        other => panic!("expected Failed, got {other:?}"),
    }
}

fn skipped(o: &Outcome) -> &str {
    match o {
        Outcome::Skipped { reason } => reason,
        other => panic!("expected Skipped, got {other:?}"),
    }
}

#[tokio::test]
async fn claude_native_session_respawns_in_its_cwd() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.script("claude", CLAUDE_OK, "", 0);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());

    let target = resolve_target(&inc, &h.env()).unwrap();
    assert_eq!(target.channel, Channel::Respawn);
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    let d = resumed(&o);
    assert!(d.contains("exit code 0"), "{d}");
    assert_eq!(
        h.argv("claude"),
        [
            "--resume",
            ID,
            "--output-format",
            "stream-json",
            "--verbose",
            "-p",
            "--",
            "Continue"
        ]
    );
    assert_eq!(h.cwd("claude"), h.work);
    // Native sessions: nothing is written for zag.
    assert!(!h.paths.zag_home.join("logs").exists());
}

#[tokio::test]
async fn claude_resumes_in_the_permission_mode_the_user_chose() {
    let h = Home::new();
    let cwd = h.work_str();
    h.claude_transcript(
        ID,
        &[
            format!(
                r#"{{"type":"user","sessionId":"{ID}","cwd":"{cwd}","timestamp":"{}","permissionMode":"acceptEdits","message":{{"role":"user","content":"fix the bug"}}}}"#,
                shift(HIT, -5)
            ),
            format!(
                r#"{{"type":"assistant","sessionId":"{ID}","cwd":"{cwd}","timestamp":"{HIT}","error":"rate_limit","isApiErrorMessage":true,"message":{{"model":"<synthetic>","content":[{{"type":"text","text":"You've hit your session limit · resets 3:35am (UTC)"}}]}}}}"#
            ),
        ],
    );
    h.script("claude", CLAUDE_OK, "", 0);
    // A record without the mode (written before a restart, or by a relay's
    // log): the transcript says it.
    let mut inc = incident("claude");
    inc.cwd = Some(cwd.clone());
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    resumed(&o);
    let argv = h.argv("claude");
    assert!(
        argv.windows(2)
            .any(|w| w == ["--permission-mode", "acceptEdits"]),
        "{argv:?}"
    );
    // The record's own mode wins; an unknown one is dropped, not passed.
    inc.permission_mode = Some("plan".into());
    deliver(&inc, &h.env(), &CancellationToken::new()).await;
    let argv = h.argv("claude");
    assert!(
        argv.windows(2).any(|w| w == ["--permission-mode", "plan"]),
        "{argv:?}"
    );
    inc.permission_mode = Some("--model=evil".into());
    deliver(&inc, &h.env(), &CancellationToken::new()).await;
    let argv = h.argv("claude");
    assert!(!argv.iter().any(|a| a.contains("evil")), "{argv:?}");
    assert!(!argv.contains(&"--permission-mode".to_string()), "{argv:?}");
}

#[tokio::test]
async fn claude_zag_session_keeps_zag_options_and_logs_the_continuation() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.script("claude", CLAUDE_OK, "", 0);
    let log = h.zag_log(
        WRAPPER,
        &[
            format!(
                r#"{{"seq":1,"ts":"{}","provider":"claude","wrapper_session_id":"{WRAPPER}","provider_session_id":"{ID}","source_kind":"wrapper","completeness":"full","type":"session_started","command":"exec","model":"claude-opus-4","cwd":"{}","resumed":false,"backfilled":false}}"#,
                shift(HIT, -60),
                h.work_str()
            ),
            format!(
                r#"{{"seq":2,"ts":"{}","provider":"claude","wrapper_session_id":"{WRAPPER}","provider_session_id":"{ID}","source_kind":"wrapper","completeness":"full","type":"user_message","role":"user","content":"fix the bug"}}"#,
                shift(HIT, -50)
            ),
            format!(
                r#"{{"seq":3,"ts":"{}","provider":"claude","wrapper_session_id":"{WRAPPER}","provider_session_id":"{ID}","source_kind":"wrapper","completeness":"full","type":"session_ended","success":false,"error":"limit"}}"#,
                shift(HIT, 1)
            ),
        ],
    );
    std::fs::write(
        h.project().join("zag.toml"),
        "[defaults]\nauto_approve = true\n",
    )
    .unwrap();
    // The exec loop's own record: session_id is the provider id, no extras.
    let mut inc = incident("claude");
    inc.provider_session_id = None;
    inc.origin = None;
    inc.log_path = log.to_string_lossy().into_owned();

    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    resumed(&o);
    assert_eq!(
        h.argv("claude"),
        [
            "--resume",
            ID,
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "claude-opus-4",
            "--dangerously-skip-permissions",
            "-p",
            "--",
            "Continue"
        ]
    );
    assert_eq!(h.cwd("claude"), h.work);
    let env = h.child_env("claude");
    assert_eq!(env.get("ZAG_SESSION_ID").map(String::as_str), Some(WRAPPER));
    assert!(env["PATH"].starts_with(&h.bin.to_string_lossy().into_owned()));

    let ev = h.log_events(&log);
    let kinds: Vec<&str> = ev[3..]
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "user_message",
            "assistant_message",
            "provider_status",
            "session_ended"
        ]
    );
    assert_eq!(ev[3]["content"], "Continue");
    // The claim: the resumed turn names its incident.
    assert_eq!(ev[3]["incident_id"], "inc-1");
    assert_eq!(ev[3]["origin"], "zag-resumed");
    assert_eq!(ev[4]["content"], "Picking up where I left off.");
    assert_eq!(ev[6]["success"], true);
    let seqs: Vec<u64> = ev.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    for e in &ev[3..] {
        assert_eq!(e["wrapper_session_id"], WRAPPER);
        assert_eq!(e["source_kind"], "wrapper");
    }
}

#[tokio::test]
async fn claude_relay_session_id_is_found_by_cwd_and_time() {
    let h = Home::new();
    // Two transcripts in the same cwd: an older one and the one that hit.
    let old = "11111111-2222-4333-8444-555555555555";
    let cwd = h.work_str();
    h.claude_transcript(
        old,
        &[format!(
            r#"{{"type":"user","sessionId":"{old}","cwd":"{cwd}","timestamp":"{}","message":{{"content":"old"}}}}"#,
            shift(HIT, -86_400)
        )],
    );
    h.claude_limited_transcript(ID, HIT);
    h.script("claude", CLAUDE_OK, "", 0);
    let log = h.zag_log(
        WRAPPER,
        &[format!(
            r#"{{"seq":1,"ts":"{}","provider":"claude","wrapper_session_id":"{WRAPPER}","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"user_message","role":"user","content":"fix the bug"}}"#,
            shift(HIT, -5)
        )],
    );
    // zag's relay record: session_id is the wrapper id; no FIFO exists.
    let mut inc = incident("claude");
    inc.session_id = WRAPPER.into();
    inc.provider_session_id = None;
    inc.origin = None;
    inc.root = Some(cwd.clone());
    inc.log_path = log.to_string_lossy().into_owned();

    let target = resolve_target(&inc, &h.env()).unwrap();
    assert_eq!(target.provider_session_id.as_deref(), Some(ID));
    assert_eq!(target.wrapper_session_id.as_deref(), Some(WRAPPER));
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    resumed(&o);
    assert_eq!(h.argv("claude")[..2], ["--resume", ID]);
}

#[tokio::test]
async fn hostile_session_ids_are_refused_before_any_spawn() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    for bad in ["../x", "--help", "-p", "a/b", "x;rm -rf"] {
        let mut inc = incident("claude");
        inc.provider_session_id = Some(bad.into());
        inc.cwd = Some(h.work_str());
        let e = resolve_target(&inc, &h.env()).unwrap_err().to_string();
        assert!(e.contains("refused"), "{bad}: {e}");
        let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
        assert!(failed(&o).contains("refused"), "{o:?}");
    }
    assert!(!h.ran("claude"));
}

#[tokio::test]
async fn a_missing_binary_fails_naming_path_systemd_and_the_config_key() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    let r = failed(&o);
    assert!(r.contains("`claude` not found on PATH"), "{r}");
    assert!(r.contains("systemd user service"), "{r}");
    assert!(r.contains("[binaries] claude"), "{r}");
}

#[tokio::test]
async fn a_hung_cli_is_killed_with_its_whole_process_group() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.fake("claude");
    std::fs::write(h.bin.join("claude.hang"), "").unwrap();
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let mut cfg = Home::config();
    cfg.timeout_secs = 1;

    let start = Instant::now();
    let o = deliver(&inc, &h.env_with(cfg), &CancellationToken::new()).await;
    let r = failed(&o);
    assert!(r.contains("still running after 1 s"), "{r}");
    assert!(r.contains("killed its process group"), "{r}");
    // 1 s timeout + 1 s TERM grace (the fake ignores TERM) + slack.
    assert!(start.elapsed() < Duration::from_secs(6));
    let pid: i32 = std::fs::read_to_string(h.bin.join("claude.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let child: i32 = std::fs::read_to_string(h.bin.join("claude.childpid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for _ in 0..50 {
        if pid_gone(pid) && pid_gone(child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pid_gone(pid), "the CLI survived");
    assert!(pid_gone(child), "the CLI's child survived");
}

#[tokio::test]
async fn a_silent_cli_is_killed_after_the_silence_timeout() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.fake("claude");
    std::fs::write(h.bin.join("claude.hang"), "").unwrap();
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let mut cfg = Home::config();
    cfg.timeout_secs = 0;
    cfg.silence_timeout_secs = 1;

    let start = Instant::now();
    let o = deliver(&inc, &h.env_with(cfg), &CancellationToken::new()).await;
    let r = failed(&o);
    assert!(r.contains("no output for 1 s"), "{r}");
    assert!(r.contains("killed its process group"), "{r}");
    // 1 s of silence + 1 s TERM grace (the fake ignores TERM) + slack.
    assert!(start.elapsed() < Duration::from_secs(6));
    let child: i32 = std::fs::read_to_string(h.bin.join("claude.childpid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for _ in 0..50 {
        if pid_gone(child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pid_gone(child), "the CLI's child survived");
}

#[tokio::test]
async fn a_cli_that_keeps_writing_is_not_killed() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    // Works for 3 s, writing a line every 0.2 s (stdout, then stderr): three
    // times the silence limit, and with no wall-clock limit by default.
    let p = h.bin.join("claude");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho run >> '{d}/claude.runs'\ni=0\nwhile [ $i -lt 15 ]; do\n  if [ $((i % 2)) -eq 0 ]; then echo '{{\"type\":\"system\",\"subtype\":\"progress\"}}'; else echo working >&2; fi\n  sleep 0.2\n  i=$((i + 1))\ndone\ncat '{d}/claude.out'\n",
            d = h.bin.display(),
        ),
    )
    .unwrap();
    std::fs::write(h.bin.join("claude.out"), CLAUDE_OK).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let mut cfg = Home::config();
    assert_eq!(
        zag_resumed::config::ResumeConfig::default().timeout_secs,
        0,
        "no wall-clock limit by default"
    );
    cfg.timeout_secs = 0;
    cfg.silence_timeout_secs = 1;

    let start = Instant::now();
    let o = deliver(&inc, &h.env_with(cfg), &CancellationToken::new()).await;
    let d = resumed(&o);
    assert!(d.contains("exit code 0"), "{d}");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "it ran its course"
    );
    assert_eq!(h.runs("claude"), 1);
}

#[tokio::test]
async fn a_re_hit_limit_is_limit_again_not_success() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.script("claude", CLAUDE_LIMIT, "", 1);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    inc.attempt = 3;
    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    match o {
        Outcome::LimitAgain { detection, detail } => {
            assert!(
                detection.raw.contains("hit your session limit"),
                "{detection:?}"
            );
            assert!(detail.contains("hit the session limit again"), "{detail}");
            assert!(detail.contains("exit code 1"), "{detail}");
        }
        other => panic!("expected LimitAgain, got {other:?}"),
    }
    assert_eq!(zag_resumed::resume::backoff_fallback(3_600, 3), 14_400);
}

#[tokio::test]
async fn a_failing_cli_reports_exit_code_and_stderr() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.script("claude", "", "Error: No conversation found\n", 1);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    let r = failed(&o);
    assert!(r.contains("exit code 1"), "{r}");
    assert!(r.contains("No conversation found"), "{r}");
}

/// A crash between starting a delivery and recording it: the resumed turn
/// this daemon logged (tagged with the incident) is its claim. The restart
/// records the resume, and does not send it again.
#[tokio::test]
async fn a_delivery_claimed_before_a_crash_is_recorded_not_repeated() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.script("claude", CLAUDE_OK, "", 0);
    let line = |seq: u32, kind: &str, extra: &str| {
        format!(
            r#"{{"seq":{seq},"ts":"{}","provider":"claude","wrapper_session_id":"{WRAPPER}","provider_session_id":"{ID}","source_kind":"wrapper","completeness":"full","type":"{kind}"{extra}}}"#,
            shift(HIT, i64::from(seq) * 10 - 60)
        )
    };
    let started = line(
        1,
        "session_started",
        &format!(
            r#","command":"exec","cwd":"{}","resumed":false,"backfilled":false"#,
            h.work_str()
        ),
    );
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    // Another incident's claim is not this one's: it counts as moved on.
    let other = line(
        9,
        "user_message",
        r#","role":"user","content":"Continue","origin":"zag-resumed","incident_id":"inc-0""#,
    );
    let log = h.zag_log(WRAPPER, &[started.clone(), other]);
    inc.log_path = log.to_string_lossy().into_owned();
    let r = skipped(&deliver(&inc, &h.env(), &CancellationToken::new()).await).to_string();
    assert!(r.contains("moved on"), "{r}");
    // This incident's own claim: recorded as resumed, nothing re-sent.
    let claim = line(
        9,
        "user_message",
        r#","role":"user","content":"Continue","origin":"zag-resumed","incident_id":"inc-1""#,
    );
    std::fs::write(&log, format!("{started}\n{claim}\n")).unwrap();
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    assert!(resumed(&o).contains("already delivered"), "{o:?}");
    assert!(!h.ran("claude"));
}

/// The claim (the tagged resumed turn in the zag log) is written only once
/// the CLI has started: a CLI that could not start leaves none, so the next
/// attempt (a retry, a restart after a crash) still sends the resume instead
/// of taking it for delivered.
#[tokio::test]
async fn a_cli_that_cannot_start_leaves_no_claim_so_the_resume_is_not_lost() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    let started = format!(
        r#"{{"seq":1,"ts":"{}","provider":"claude","wrapper_session_id":"{WRAPPER}","provider_session_id":"{ID}","source_kind":"wrapper","completeness":"full","type":"session_started","command":"exec","cwd":"{}","resumed":false,"backfilled":false}}"#,
        shift(HIT, -60),
        h.work_str()
    );
    let log = h.zag_log(WRAPPER, &[started]);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    inc.log_path = log.to_string_lossy().into_owned();
    // On PATH and executable, but exec fails: its interpreter is missing.
    let cli = h.bin.join("claude");
    std::fs::write(&cli, "#!/nonexistent/interpreter\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    assert!(failed(&o).contains("cannot start"), "{o:?}");
    let claims: Vec<_> = h
        .log_events(&log)
        .into_iter()
        .filter(|e| e["incident_id"] == "inc-1" && e["type"] == "user_message")
        .collect();
    assert!(claims.is_empty(), "{claims:?}");
    // The CLI is fixed: the resume is sent, not "already delivered".
    h.script("claude", CLAUDE_OK, "", 0);
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    assert!(!resumed(&o).contains("already delivered"), "{o:?}");
    assert!(h.ran("claude"));
}

#[tokio::test]
async fn a_session_that_moved_on_is_skipped() {
    let h = Home::new();
    let tr = h.claude_limited_transcript(ID, HIT);
    h.script("claude", CLAUDE_OK, "", 0);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    // The user typed a new message after the limit.
    let mut text = std::fs::read_to_string(&tr).unwrap();
    text.push_str(&format!(
        r#"{{"type":"user","sessionId":"{ID}","cwd":"{}","timestamp":"{}","message":{{"content":"never mind, do this"}}}}"#,
        h.work_str(),
        shift(HIT, 600)
    ));
    text.push('\n');
    std::fs::write(&tr, text).unwrap();
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    let r = skipped(&o);
    assert!(r.contains("moved on"), "{r}");
    assert!(r.contains("newer user message"), "{r}");
    assert!(!h.ran("claude"));
}

#[tokio::test]
async fn a_poke_that_met_the_limit_again_still_gets_exactly_one_resume() {
    let h = Home::new();
    let tr = h.claude_limited_transcript(ID, HIT);
    h.script("claude", CLAUDE_OK, "", 0);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    // The user typed into the still-limited session and got the same limit
    // reply (2.1.332's form), amid Claude's bookkeeping entries.
    let cwd = h.work_str();
    let mut text = std::fs::read_to_string(&tr).unwrap();
    for line in [
        format!(
            r#"{{"type":"system","subtype":"informational","level":"notice","sessionId":"{ID}","cwd":"{cwd}","timestamp":"{}","content":"Usage limit reached · set to continue automatically at 3pm"}}"#,
            shift(HIT, 1)
        ),
        format!(
            r#"{{"type":"user","sessionId":"{ID}","cwd":"{cwd}","timestamp":"{}","permissionMode":"default","message":{{"role":"user","content":"are you back?"}}}}"#,
            shift(HIT, 600)
        ),
        format!(
            r#"{{"type":"api-request","sessionId":"{ID}","timestamp":"{}"}}"#,
            shift(HIT, 600)
        ),
        format!(
            r#"{{"type":"assistant","sessionId":"{ID}","cwd":"{cwd}","timestamp":"{}","error":"rate_limit","isApiErrorMessage":true,"apiError":"usage_limit_reached","message":{{"model":"<synthetic>","content":[{{"type":"text","text":"You've hit your 5-hour limit · resets 3pm (UTC)"}}]}}}}"#,
            shift(HIT, 601)
        ),
        format!(
            r#"{{"type":"cost-state","sessionId":"{ID}","timestamp":"{}"}}"#,
            shift(HIT, 602)
        ),
    ] {
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(&tr, text).unwrap();
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    let d = resumed(&o);
    assert!(d.contains("exit code 0"), "{d}");
    assert_eq!(h.runs("claude"), 1);
}

#[tokio::test]
async fn a_deleted_session_is_skipped_and_a_cancelled_one_too() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    assert!(skipped(&o).contains("deleted"), "{o:?}");
    let c = CancellationToken::new();
    c.cancel();
    let o = deliver(&inc, &h.env(), &c).await;
    assert!(skipped(&o).contains("cancelled"), "{o:?}");
    assert!(!h.ran("claude"));
}

/// Every FIFO test must finish quickly: a blocking open would hang here.
async fn bounded(f: impl std::future::Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(Duration::from_secs(8), f)
        .await
        .expect("delivery blocked")
}

#[tokio::test]
async fn fifo_with_a_live_relay_is_written_once_and_confirmed() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let log = relay_log(&h);
    let fifo = h.paths.fifo(WRAPPER);
    mkfifo(&fifo);
    let relay = fake_relay(&fifo, &log, true);
    let inc = relay_incident(&h, &log);
    // The relay's Claude transcript is not needed while the relay lives.
    let target = resolve_target(&inc, &h.env()).unwrap();
    assert_eq!(target.channel, Channel::Fifo { path: fifo.clone() });
    assert!(target.respawn_error.is_some());

    let o = bounded(deliver(&inc, &h.env(), &CancellationToken::new())).await;
    let d = resumed(&o);
    assert!(d.contains("FIFO") && d.contains("confirmed"), "{d}");
    let line = relay.join().unwrap();
    assert_eq!(
        line,
        "{\"content\":\"Continue\",\"type\":\"user_message\"}\n"
    );
    assert!(!h.ran("claude"));
}

/// The user's own message (`message`, `resume-now --message`) is what the
/// relay gets, as one JSON line however it is written (quotes, a newline),
/// and what its log must show back before the delivery counts.
#[tokio::test]
async fn fifo_carries_the_users_own_message_and_confirms_that_message() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let log = relay_log(&h);
    let fifo = h.paths.fifo(WRAPPER);
    mkfifo(&fifo);
    let relay = fake_relay(&fifo, &log, true);
    let mut inc = relay_incident(&h, &log);
    let mine = "finish the \"parser\" refactor\nthen run the tests";
    inc.message = mine.into();
    inc.custom_message = Some(true);

    let o = bounded(deliver(&inc, &h.env(), &CancellationToken::new())).await;
    let d = resumed(&o);
    assert!(d.contains("FIFO") && d.contains("confirmed"), "{d}");
    let line = relay.join().unwrap();
    assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
    let sent: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(sent["type"], "user_message");
    assert_eq!(sent["content"], mine);
    assert!(!h.ran("claude"));
}

/// The same words already in the relay's log from before the write (the
/// user sent them by hand earlier) do not confirm this delivery: only a
/// line logged after the write counts.
#[tokio::test]
async fn fifo_is_not_confirmed_by_the_same_words_logged_before_the_write() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let log = relay_log(&h);
    let fifo = h.paths.fifo(WRAPPER);
    mkfifo(&fifo);
    let mine = "only this, please";
    let earlier = serde_json::json!({
        "seq": 98, "ts": chrono::Utc::now().to_rfc3339(), "provider": "claude",
        "wrapper_session_id": WRAPPER, "provider_session_id": null,
        "source_kind": "wrapper", "completeness": "full",
        "type": "user_message", "role": "user", "content": mine,
    });
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{earlier}\n").as_bytes()))
        .unwrap();
    // The relay reads the line but never logs it back.
    let relay = fake_relay(&fifo, &log, false);
    let mut inc = relay_incident(&h, &log);
    inc.message = mine.into();
    inc.custom_message = Some(true);
    let mut cfg = Home::config();
    cfg.fifo_confirm_timeout_secs = 1;

    let o = bounded(deliver(&inc, &h.env_with(cfg), &CancellationToken::new())).await;
    let r = failed(&o);
    assert!(r.contains("not confirmed"), "{r}");
    let sent: serde_json::Value = serde_json::from_str(&relay.join().unwrap()).unwrap();
    assert_eq!(sent["content"], mine);
}

#[tokio::test]
async fn fifo_with_no_reader_falls_back_to_respawn() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    h.claude_limited_transcript(ID, HIT);
    let log = relay_log(&h);
    mkfifo(&h.paths.fifo(WRAPPER));
    let inc = relay_incident(&h, &log);
    let o = bounded(deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    ))
    .await;
    let d = resumed(&o);
    assert!(d.contains("relay gone") && d.contains("ENXIO"), "{d}");
    assert_eq!(h.argv("claude")[..2], ["--resume", ID]);
    assert_eq!(h.cwd("claude"), h.work);
}

#[tokio::test]
async fn fifo_with_no_reader_and_no_claude_session_is_skipped_with_the_reason() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let log = relay_log(&h);
    mkfifo(&h.paths.fifo(WRAPPER));
    let inc = relay_incident(&h, &log);
    let o = bounded(deliver(&inc, &h.env(), &CancellationToken::new())).await;
    let r = skipped(&o);
    assert!(r.contains("relay is gone"), "{r}");
    assert!(r.contains("respawn is not possible"), "{r}");
    assert!(r.contains("no Claude transcript"), "{r}");
    assert!(!h.ran("claude"));
}

#[tokio::test]
async fn a_dead_relay_in_the_process_store_is_not_written_to() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    h.claude_limited_transcript(ID, HIT);
    let log = relay_log(&h);
    let fifo = h.paths.fifo(WRAPPER);
    mkfifo(&fifo);
    // Someone still holds the FIFO, but the relay's entry says exited.
    let _holder = open_like_relay(&fifo);
    std::fs::write(
        h.paths.zag_home.join("processes.json"),
        format!(
            r#"{{"processes":[{{"id":"p","pid":1,"session_id":"{WRAPPER}","command":"interactive","status":"exited"}}]}}"#
        ),
    )
    .unwrap();
    let inc = relay_incident(&h, &log);
    let o = bounded(deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    ))
    .await;
    let d = resumed(&o);
    assert!(d.contains("relay gone") && d.contains("not running"), "{d}");
    assert!(h.ran("claude"));
}

#[tokio::test]
async fn a_full_fifo_fails_at_the_write_deadline_without_blocking() {
    let h = Home::new();
    h.script("claude", CLAUDE_OK, "", 0);
    let log = relay_log(&h);
    let fifo = h.paths.fifo(WRAPPER);
    mkfifo(&fifo);
    let _stuck_relay = open_like_relay(&fifo);
    let _filler = fill_pipe(&fifo);
    let inc = relay_incident(&h, &log);
    let start = Instant::now();
    let o = bounded(deliver(&inc, &h.env(), &CancellationToken::new())).await;
    let r = failed(&o);
    assert!(r.contains("stayed full for 300 ms"), "{r}");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(
        !h.ran("claude"),
        "a live relay must not get a second Claude"
    );
}

#[tokio::test]
async fn an_unconfirmed_fifo_write_fails_with_the_reason() {
    let h = Home::new();
    let log = relay_log(&h);
    let fifo = h.paths.fifo(WRAPPER);
    mkfifo(&fifo);
    let relay = fake_relay(&fifo, &log, false);
    let inc = relay_incident(&h, &log);
    let mut cfg = Home::config();
    cfg.fifo_confirm_timeout_secs = 1;
    let start = Instant::now();
    let o = bounded(deliver(&inc, &h.env_with(cfg), &CancellationToken::new())).await;
    let r = failed(&o);
    assert!(r.contains("not confirmed"), "{r}");
    assert!(r.contains("did not log it back"), "{r}");
    assert!(start.elapsed() < Duration::from_secs(3));
    relay.join().unwrap();
}

#[tokio::test]
async fn an_oversized_fifo_message_is_refused_not_split() {
    let h = Home::new();
    let log = relay_log(&h);
    let fifo = h.paths.fifo(WRAPPER);
    mkfifo(&fifo);
    let _relay = open_like_relay(&fifo);
    let mut inc = relay_incident(&h, &log);
    inc.message = "x".repeat(5000);
    let o = bounded(deliver(&inc, &h.env(), &CancellationToken::new())).await;
    assert!(failed(&o).contains("PIPE_BUF"), "{o:?}");
}

#[tokio::test]
async fn codex_respawns_with_the_exec_resume_subcommand_in_the_rollout_cwd() {
    let h = Home::new();
    let day = h
        .paths
        .provider_home(zag_resumed::shared::Provider::Codex)
        .join("sessions/2030/01/01");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(
        day.join(format!("rollout-2030-01-01T09-00-00-{ID}.jsonl")),
        format!(
            "{}\n{}\n",
            format_args!(
                r#"{{"timestamp":"{}","type":"session_meta","payload":{{"id":"{ID}","cwd":"{}"}}}}"#,
                shift(HIT, -3600),
                h.work_str()
            ),
            format_args!(
                r#"{{"timestamp":"{HIT}","type":"event_msg","payload":{{"type":"task_complete","error":{{"codex_error_info":"usage_limit_exceeded"}}}}}}"#
            )
        ),
    )
    .unwrap();
    h.script(
        "codex",
        concat!(
            r#"{"type":"thread.started","thread_id":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
            "\n",
            r#"{"type":"item.completed","item":{"id":"i0","type":"agent_message","text":"Resumed."}}"#,
            "\n",
            r#"{"type":"turn.completed"}"#,
            "\n"
        ),
        "",
        0,
    );
    let inc = incident("codex");
    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    resumed(&o);
    assert_eq!(
        h.argv("codex"),
        [
            "exec",
            "resume",
            "--json",
            "--skip-git-repo-check",
            "--",
            ID,
            "Continue"
        ]
    );
    assert_eq!(h.cwd("codex"), h.work);
}

#[tokio::test]
async fn codex_resumes_in_the_sandbox_its_rollout_records() {
    let h = Home::new();
    let day = h
        .paths
        .provider_home(zag_resumed::shared::Provider::Codex)
        .join("sessions/2030/01/01");
    std::fs::create_dir_all(&day).unwrap();
    let lines = [
        format!(
            r#"{{"timestamp":"{}","type":"session_meta","payload":{{"id":"{ID}","cwd":"{}"}}}}"#,
            shift(HIT, -3600),
            h.work_str()
        ),
        format!(
            r#"{{"timestamp":"{}","type":"turn_context","payload":{{"cwd":"{}","approval_policy":"on-request","sandbox_policy":{{"type":"workspace-write","network_access":false}}}}}}"#,
            shift(HIT, -60),
            h.work_str()
        ),
        format!(
            r#"{{"timestamp":"{HIT}","type":"event_msg","payload":{{"type":"task_complete","error":{{"codex_error_info":"usage_limit_exceeded"}}}}}}"#
        ),
    ];
    std::fs::write(
        day.join(format!("rollout-2030-01-01T09-00-00-{ID}.jsonl")),
        lines.join("\n") + "\n",
    )
    .unwrap();
    h.script("codex", r#"{"type":"turn.completed"}"#, "", 0);
    let inc = incident("codex");
    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    resumed(&o);
    assert_eq!(
        h.argv("codex"),
        [
            "exec",
            "resume",
            "-c",
            "sandbox_mode=\"workspace-write\"",
            "--json",
            "--skip-git-repo-check",
            "--",
            ID,
            "Continue"
        ]
    );
}

#[tokio::test]
async fn codex_thread_without_a_rollout_is_skipped_as_deleted() {
    let h = Home::new();
    h.script("codex", "", "", 0);
    let mut inc = incident("codex");
    inc.cwd = Some(h.work_str());
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    assert!(skipped(&o).contains("no rollout file"), "{o:?}");
    assert!(!h.ran("codex"));
}

fn gemini_chat(h: &Home, id: &str) {
    let chats = h
        .paths
        .provider_home(zag_resumed::shared::Provider::Gemini)
        .join("tmp/3f2a9c/chats");
    std::fs::create_dir_all(&chats).unwrap();
    std::fs::write(
        chats.join("session-2030-01-01T09-00-0f8fad5b.jsonl"),
        format!(r#"{{"sessionId":"{id}","projectHash":"3f2a9c","messages":[]}}"#),
    )
    .unwrap();
}

const GEMINI_OK: &str = concat!(
    r#"{"type":"init","session_id":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
    "\n",
    r#"{"type":"message","role":"assistant","content":"Parser ","delta":true}"#,
    "\n",
    r#"{"type":"message","role":"assistant","content":"written.","delta":true}"#,
    "\n",
    r#"{"type":"result","status":"success"}"#,
    "\n"
);

#[tokio::test]
async fn gemini_resumes_with_the_original_prompt_not_continue() {
    let h = Home::new();
    gemini_chat(&h, ID);
    h.script("gemini", GEMINI_OK, "", 0);
    let mut inc = incident("gemini");
    inc.cwd = Some(h.work_str());
    inc.prompt = Some("write the parser".into());
    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    resumed(&o);
    assert_eq!(
        h.argv("gemini"),
        [
            "--resume",
            ID,
            "--prompt=write the parser",
            "--output-format",
            "stream-json"
        ]
    );
    assert_eq!(h.cwd("gemini"), h.work);
    // Headless Gemini refuses an untrusted dir; the session already ran here.
    let env = h.child_env("gemini");
    assert_eq!(
        env.get("GEMINI_CLI_TRUST_WORKSPACE").map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn gemini_first_turn_limit_is_a_fresh_run_with_the_prompt_from_the_zag_log() {
    let h = Home::new();
    // No chat file holds the id: the limit hit the first turn.
    h.script("gemini", GEMINI_OK, "", 0);
    let log = h.zag_log(
        WRAPPER,
        &[
            format!(
                r#"{{"seq":1,"ts":"{}","provider":"gemini","wrapper_session_id":"{WRAPPER}","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"session_started","command":"exec","model":"auto","cwd":"{}","resumed":false,"backfilled":false}}"#,
                shift(HIT, -20),
                h.work_str()
            ),
            format!(
                r#"{{"seq":2,"ts":"{}","provider":"gemini","wrapper_session_id":"{WRAPPER}","provider_session_id":null,"source_kind":"wrapper","completeness":"full","type":"user_message","role":"user","content":"--write the parser"}}"#,
                shift(HIT, -10)
            ),
        ],
    );
    let mut inc = incident("gemini");
    inc.wrapper_session_id = Some(WRAPPER.into());
    inc.log_path = log.to_string_lossy().into_owned();
    let target = resolve_target(&inc, &h.env()).unwrap();
    assert_eq!(target.provider_session_id, None);
    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    resumed(&o);
    assert_eq!(
        h.argv("gemini"),
        [
            "--prompt=--write the parser",
            "--output-format",
            "stream-json"
        ]
    );
    assert_eq!(h.cwd("gemini"), h.work);
    let ev = h.log_events(&log);
    let kinds: Vec<&str> = ev[2..]
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "user_message",
            "assistant_message",
            "provider_status",
            "session_ended"
        ]
    );
    assert_eq!(ev[3]["content"], "Parser written.");
}

#[tokio::test]
async fn gemini_without_its_prompt_fails_at_schedule_time() {
    let h = Home::new();
    gemini_chat(&h, ID);
    let mut inc = incident("gemini");
    inc.cwd = Some(h.work_str());
    let e = resolve_target(&inc, &h.env()).unwrap_err().to_string();
    assert!(e.contains("prompt"), "{e}");
}

#[tokio::test]
async fn gemini_quota_again_on_stderr_is_limit_again() {
    // A session id of its own: the live check finds a `gemini` by the id on
    // its command line, and the other Gemini tests of this binary run their
    // fake `gemini --resume ID` at the same time.
    const QUOTA_ID: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    let h = Home::new();
    gemini_chat(&h, QUOTA_ID);
    h.script(
        "gemini",
        "",
        "    at stack\n{\"session_id\":\"x\",\"error\":{\"type\":\"Error\",\"message\":\"You have exhausted your daily quota on this model.\",\"code\":429}}\n",
        173,
    );
    let mut inc = incident("gemini");
    inc.session_id = QUOTA_ID.into();
    inc.provider_session_id = Some(QUOTA_ID.into());
    inc.cwd = Some(h.work_str());
    inc.prompt = Some("write the parser".into());
    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    match o {
        Outcome::LimitAgain { detail, .. } => assert!(detail.contains("exit code 173"), "{detail}"),
        other => panic!("expected LimitAgain, got {other:?}"),
    }
}

#[tokio::test]
async fn copilot_resumes_with_the_explicit_id() {
    let h = Home::new();
    let state = h
        .paths
        .provider_home(zag_resumed::shared::Provider::Copilot)
        .join("session-state")
        .join(ID);
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("events.jsonl"),
        format!(
            r#"{{"type":"session.error","timestamp":"{HIT}","data":{{"errorType":"rate_limit","statusCode":429}}}}"#
        ) + "\n",
    )
    .unwrap();
    h.script(
        "copilot",
        concat!(
            r#"{"type":"assistant.message","data":{"content":"ok","messageId":"m"}}"#,
            "\n",
            r#"{"type":"result","sessionId":"0f8fad5b-d9cb-469f-a165-70867728950e","exitCode":0}"#,
            "\n"
        ),
        "",
        0,
    );
    let mut inc = incident("copilot");
    inc.cwd = Some(h.work_str());
    let o = deliver_with(
        &inc,
        &h.env(),
        &CancellationToken::new(),
        Some(fake_detect()),
    )
    .await;
    resumed(&o);
    assert_eq!(
        h.argv("copilot"),
        ["--resume", ID, "-p", "Continue", "--output-format", "json"]
    );
    assert_eq!(h.cwd("copilot"), h.work);
}

#[tokio::test]
async fn respawns_are_bounded_by_max_concurrent() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.script("claude", CLAUDE_OK, "", 0);
    std::fs::write(h.bin.join("claude.delay"), "0.4").unwrap();
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let mut cfg = Home::config();
    cfg.max_concurrent = 1;
    let env = h.env_with(cfg);
    let c = CancellationToken::new();
    let start = Instant::now();
    let (a, b) = tokio::join!(
        deliver_with(&inc, &env, &c, Some(fake_detect())),
        deliver_with(&inc, &env, &c, Some(fake_detect()))
    );
    resumed(&a);
    resumed(&b);
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(h.runs("claude"), 2);
}

#[tokio::test]
async fn cancelling_a_running_respawn_kills_it() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.fake("claude");
    std::fs::write(h.bin.join("claude.hang"), "").unwrap();
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let c = CancellationToken::new();
    let c2 = c.clone();
    // Cancel once the CLI runs (its pid written after its child started):
    // a cancel while running, not one before the spawn.
    let started = h.bin.join("claude.pid");
    tokio::spawn(async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !started.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        c2.cancel();
    });
    let o = tokio::time::timeout(
        Duration::from_secs(20),
        deliver_with(&inc, &h.env(), &c, Some(fake_detect())),
    )
    .await
    .unwrap();
    assert!(failed(&o).contains("cancelled while running"), "{o:?}");
}

#[tokio::test]
async fn a_re_hit_is_found_by_the_real_detector_with_its_reset() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    let reset = chrono::Utc::now().timestamp() + 5 * 3600;
    h.script(
        "claude",
        &CLAUDE_LIMIT.replace("1795000000", &reset.to_string()),
        "",
        1,
    );
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let o = deliver(&inc, &h.env(), &CancellationToken::new()).await;
    match o {
        Outcome::LimitAgain { detection, .. } => {
            assert_eq!(detection.reset_at.map(|r| r.timestamp()), Some(reset));
        }
        other => panic!("expected LimitAgain, got {other:?}"),
    }
}

#[tokio::test]
async fn an_aborted_delivery_takes_the_process_group_with_it() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    h.fake("claude");
    std::fs::write(h.bin.join("claude.hang"), "").unwrap();
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    let env = h.env();
    let task = tokio::spawn(async move {
        deliver_with(&inc, &env, &CancellationToken::new(), Some(fake_detect())).await
    });
    let childpid = h.bin.join("claude.childpid");
    for _ in 0..200 {
        if std::fs::read_to_string(&childpid).is_ok_and(|s| s.ends_with('\n')) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;
    let child: i32 = std::fs::read_to_string(&childpid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for _ in 0..100 {
        if pid_gone(child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        pid_gone(child),
        "the CLI's child survived an aborted delivery"
    );
}

#[tokio::test]
async fn output_is_kept_when_the_cli_leaves_a_child_holding_its_stdout() {
    let h = Home::new();
    h.claude_limited_transcript(ID, HIT);
    // The CLI prints, starts a background child that inherits stdout, exits 0.
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' '{}'\nsleep 600 &\necho $! > '{}'\nexit 0\n",
        r#"{"type":"result","subtype":"success","is_error":false,"result":"Done."}"#,
        h.bin.join("claude.childpid").display()
    );
    let p = h.bin.join("claude");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let log = h.zag_log(WRAPPER, &[]);
    let mut inc = incident("claude");
    inc.cwd = Some(h.work_str());
    inc.wrapper_session_id = Some(WRAPPER.into());
    inc.log_path = log.to_string_lossy().into_owned();
    let start = Instant::now();
    let o = tokio::time::timeout(
        Duration::from_secs(8),
        deliver_with(
            &inc,
            &h.env(),
            &CancellationToken::new(),
            Some(fake_detect()),
        ),
    )
    .await
    .unwrap();
    resumed(&o);
    assert!(start.elapsed() < Duration::from_secs(5));
    let ev = h.log_events(&log);
    assert!(
        ev.iter()
            .any(|e| e["type"] == "provider_status" && e["message"] == "Done."),
        "{ev:?}"
    );
    let child: i32 = std::fs::read_to_string(h.bin.join("claude.childpid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for _ in 0..50 {
        if pid_gone(child) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pid_gone(child));
}

#[test]
fn the_permission_mode_survives_the_store_and_zag_records_still_parse() {
    use zag_resumed::store::{replay, Record};
    let mut s = incident("claude");
    s.permission_mode = Some("acceptEdits".into());
    let line = Record::Schedule(s.clone()).to_line();
    assert!(
        line.contains(r#""permission_mode":"acceptEdits""#),
        "{line}"
    );
    let r = replay(format!("{line}\n").as_bytes());
    assert_eq!(r.scheduled.get("inc-1").map(|x| &**x), Some(&s));
    // Without the key (zag's records, ours from before) it is simply absent.
    let mut plain = incident("claude");
    plain.incident_id = "inc-2".into();
    let line = Record::Schedule(plain.clone()).to_line();
    assert!(!line.contains("permission_mode"), "{line}");
    let r = replay(format!("{line}\n").as_bytes());
    assert_eq!(r.scheduled.get("inc-2").map(|x| &**x), Some(&plain));
}
