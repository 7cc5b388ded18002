//! The control surface end to end: socket server against a fake daemon core,
//! the client commands, stale-socket handling, the instance lock across
//! processes, and `ensure` spawning a real detached process.
//!
//! Child processes are this test binary re-executed with an exact filter on
//! a `helper_*` test, which is a no-op in a normal run. `ensure` puts `run`
//! in front of its arguments, so a helper knows it was started by `ensure`
//! when `argv[1] == "run"`; the last argument is its home dir.
//!
//! The tests at the end run the real daemon binary (`zag-resumed run`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader as StdBufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use zag_resumed::control::bind::bind_socket;
use zag_resumed::control::client::{socket_path, Client, ClientError};
use zag_resumed::control::commands::{self, StopOutcome};
use zag_resumed::control::ensure::{self, EnsureOutcome};
use zag_resumed::control::protocol::{Op, Request, Response, MAX_LINE};
use zag_resumed::control::server::{serve, serve_with, ServerOptions};
use zag_resumed::control::{DaemonRequest, IncidentEvent, PendingView, StatusSnapshot};
use zag_resumed::lock;
use zag_resumed::paths::Paths;

const T: Duration = Duration::from_secs(5);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn view(id: &str) -> PendingView {
    PendingView {
        incident_id: id.into(),
        provider: "claude".into(),
        session_id: "6873abcdef".into(),
        when: t("2030-01-01T10:14:00Z"),
        attempt: 1,
        store: "/h/.zag/scheduled_resumes.jsonl".into(),
        scope: Some("weekly".into()),
        cwd: None,
        origin: Some("zag-resumed".into()),
        continued_by: None,
        continued_by_why: None,
        permission_mode: None,
        message: None,
        force: false,
    }
}

fn snapshot(pid: u32) -> StatusSnapshot {
    StatusSnapshot {
        unwritable: Vec::new(),
        pid,
        version: "9.9.9".into(),
        started_at: t("2030-01-01T07:00:00Z"),
        now: t("2030-01-01T08:00:00Z"),
        watched: BTreeMap::from([("claude".into(), 2)]),
        pending: vec![view("i1")],
        recent: vec![],
        paused: None,
        dry_run: false,
    }
}

/// A stand-in for the daemon core: answers canned data, stops on `Stop`.
async fn fake_core(
    mut rx: mpsc::Receiver<DaemonRequest>,
    events: broadcast::Sender<IncidentEvent>,
    shutdown: CancellationToken,
) {
    while let Some(req) = rx.recv().await {
        match req {
            DaemonRequest::Status(r) => {
                let _ = r.send(snapshot(std::process::id()));
            }
            DaemonRequest::List(r) => {
                let _ = r.send(vec![view("i1"), view("i2")]);
            }
            DaemonRequest::Cancel { incident_id, reply } => {
                let _ = reply.send(if incident_id == "i1" {
                    Ok(view("i1"))
                } else {
                    Err(format!("no pending incident {incident_id}"))
                });
            }
            DaemonRequest::Reload(r) => {
                let _ = r.send(Ok("notify.desktop: true → false".into()));
            }
            DaemonRequest::Stop(r) => {
                let _ = r.send(());
                shutdown.cancel();
            }
            DaemonRequest::Subscribe(r) => {
                let _ = r.send(events.subscribe());
            }
            DaemonRequest::Pause { until, reply } => {
                let _ = reply.send(Ok(zag_resumed::control::pause::PauseState {
                    since: t("2030-01-01T08:00:00Z"),
                    until,
                }));
            }
            DaemonRequest::Unpause(r) => {
                let _ = r.send(Ok(0));
            }
            DaemonRequest::Binaries(r) => {
                let _ = r.send(Vec::new());
            }
        }
    }
}

/// A server on a temp zag home with the fake core behind it.
struct Harness {
    _dir: tempfile::TempDir,
    paths: Paths,
    socket: PathBuf,
    shutdown: CancellationToken,
    events: broadcast::Sender<IncidentEvent>,
    server: tokio::task::JoinHandle<()>,
}

async fn start(opts: ServerOptions) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path(), None);
    let socket = socket_path(&paths);
    let listener = bind_socket(&socket).unwrap();
    let shutdown = CancellationToken::new();
    let (tx, rx) = mpsc::channel(16);
    let (events, _) = broadcast::channel(16);
    tokio::spawn(fake_core(rx, events.clone(), shutdown.clone()));
    let server = tokio::spawn(serve_with(listener, tx, shutdown.clone(), opts));
    Harness {
        _dir: dir,
        paths,
        socket,
        shutdown,
        events,
        server,
    }
}

fn quick() -> ServerOptions {
    ServerOptions {
        idle_timeout: Duration::from_millis(300),
        reply_timeout: Duration::from_secs(2),
        ..ServerOptions::default()
    }
}

/// Send raw bytes, read one response line.
async fn raw(stream: &mut BufReader<UnixStream>, bytes: &[u8]) -> Response {
    stream.get_mut().write_all(bytes).await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(T, stream.read_line(&mut line))
        .await
        .expect("reply in time")
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_round_trip_through_the_socket() {
    let h = start(quick()).await;
    let mut c = Client::connect(&h.socket, T).await.unwrap();
    let s: StatusSnapshot = c.call(&Request::new(Op::Status)).await.unwrap();
    assert_eq!(s, snapshot(std::process::id()));
    let l: Vec<PendingView> = c.call(&Request::new(Op::List)).await.unwrap();
    assert_eq!(l.len(), 2);
    let v: PendingView = c.call(&Request::cancel("i1")).await.unwrap();
    assert_eq!(v.incident_id, "i1");
    let e = c
        .call::<PendingView>(&Request::cancel("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Daemon(m) if m.contains("no pending incident nope")),
        "{e}"
    );
    let r: String = c.call(&Request::new(Op::Reload)).await.unwrap();
    assert!(r.contains("notify.desktop"));

    // The commands print what people read.
    let text = commands::status(&h.paths, false).await.unwrap();
    assert!(
        text.contains("claude · session 6873… · resumes in 2h 14m · weekly limit"),
        "{text}"
    );
    let json = commands::status(&h.paths, true).await.unwrap();
    let back: StatusSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back.pid, std::process::id());
    let table = commands::list(&h.paths, false).await.unwrap();
    assert!(table.starts_with("INCIDENT"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    let done = commands::cancel(&h.paths, "i1", true, chrono::Utc::now())
        .await
        .unwrap();
    assert!(done.contains("\"status\": \"ok\""), "{done}");
    assert!(commands::reload(&h.paths).await.unwrap().contains("→"));

    // Stop is answered before the server winds down, then the socket goes.
    let () = c.call(&Request::new(Op::Stop)).await.unwrap();
    tokio::time::timeout(T, h.server).await.unwrap().unwrap();
    assert!(h.shutdown.is_cancelled());
    assert!(!h.socket.exists(), "socket removed on exit");
    let e = commands::status(&h.paths, false).await.unwrap_err();
    let e = e.downcast_ref::<ClientError>().unwrap();
    assert!(e.is_not_running(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribe_streams_events() {
    let h = start(quick()).await;
    let mut sub = Client::connect(&h.socket, T)
        .await
        .unwrap()
        .subscribe()
        .await
        .unwrap();
    let evs = [
        IncidentEvent::Hit {
            incident_id: "i1".into(),
            provider: "claude".into(),
            session_id: "s".into(),
            scope: "weekly".into(),
            reset_at: None,
            file: "/f".into(),
            at: t("2030-01-01T08:00:00Z"),
            needs_user: None,
        },
        IncidentEvent::Resumed {
            incident_id: "i1".into(),
            provider: "claude".into(),
            session_id: "s".into(),
            detail: "fifo".into(),
            permission_mode: None,
            at: t("2030-01-01T09:00:00Z"),
        },
        IncidentEvent::Cancelled {
            incident_id: "i2".into(),
            at: t("2030-01-01T09:01:00Z"),
        },
    ];
    for ev in &evs {
        h.events.send(ev.clone()).unwrap();
    }
    for ev in &evs {
        let got = tokio::time::timeout(T, sub.next()).await.unwrap().unwrap();
        assert_eq!(got.as_ref(), Some(ev));
    }
    // Subscribers do not hold the server up at shutdown.
    h.shutdown.cancel();
    tokio::time::timeout(T, h.server).await.unwrap().unwrap();
    let end = tokio::time::timeout(T, sub.next()).await.unwrap().unwrap();
    assert_eq!(end, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_error_replies_and_the_server_keeps_serving() {
    let h = start(quick()).await;
    let mut s = BufReader::new(UnixStream::connect(&h.socket).await.unwrap());
    let cases: &[(&[u8], &str)] = &[
        (b"this is not json\n", "not valid JSON"),
        (
            b"{\"v\":7,\"op\":\"status\"}\n",
            "unsupported protocol version 7",
        ),
        (b"{\"v\":1,\"op\":\"fly\"}\n", "unknown op"),
        (b"{\"v\":1,\"op\":\"cancel\"}\n", "incident_id"),
        (b"\n", "not valid JSON"),
    ];
    for (line, want) in cases {
        let r = raw(&mut s, line).await;
        assert!(!r.ok);
        assert_eq!(r.v, 1);
        let err = r.error.unwrap();
        assert!(err.contains(want), "{err:?} lacks {want:?}");
    }
    // Same connection still works.
    let r = raw(&mut s, Request::new(Op::Status).to_line().as_bytes()).await;
    assert!(r.ok, "{r:?}");

    // An oversized line: an error reply, then the connection is closed.
    let mut big = BufReader::new(UnixStream::connect(&h.socket).await.unwrap());
    let mut payload = vec![b'x'; MAX_LINE + 10];
    payload.push(b'\n');
    let writer = tokio::spawn(async move {
        let _ = big.get_mut().write_all(&payload).await;
        big
    });
    let mut big = writer.await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(T, big.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let r: Response = serde_json::from_str(&line).unwrap();
    assert!(r.error.unwrap().contains("longer than"), "{line}");
    let mut rest = Vec::new();
    let n = tokio::time::timeout(T, big.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(
        n.is_err() || rest.is_empty(),
        "connection closed after oversize"
    );

    // Others are unaffected.
    let mut c = Client::connect(&h.socket, T).await.unwrap();
    let _: StatusSnapshot = c.call(&Request::new(Op::Status)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_clients_neither_block_others_nor_linger() {
    let h = start(quick()).await;
    // One says nothing, one stops mid-line.
    let mut silent = UnixStream::connect(&h.socket).await.unwrap();
    let mut partial = UnixStream::connect(&h.socket).await.unwrap();
    partial.write_all(b"{\"v\":1,\"op\":").await.unwrap();
    let started = std::time::Instant::now();
    let mut c = Client::connect(&h.socket, T).await.unwrap();
    let _: StatusSnapshot = c.call(&Request::new(Op::Status)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "not held up by idle peers"
    );
    // Both idle connections are closed after the idle timeout.
    for s in [&mut silent, &mut partial] {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(T, s.read_to_end(&mut buf))
            .await
            .unwrap();
        assert_eq!(n.unwrap(), 0);
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wedged_core_is_an_error_reply_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let listener = bind_socket(&socket).unwrap();
    // A core that takes requests and never answers (keeps the oneshots).
    let (tx, mut rx) = mpsc::channel::<DaemonRequest>(4);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(r) = rx.recv().await {
            held.push(r);
        }
    });
    let opts = ServerOptions {
        reply_timeout: Duration::from_millis(200),
        ..quick()
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(serve_with(listener, tx, shutdown.clone(), opts));
    let mut c = Client::connect(&socket, T).await.unwrap();
    let e = c
        .call::<StatusSnapshot>(&Request::new(Op::Status))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("did not answer status"), "{e}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_gets_error_replies_not_exhaustion() {
    let h = start(ServerOptions {
        max_connections: 2,
        idle_timeout: Duration::from_secs(30),
        ..quick()
    })
    .await;
    // Two idle clients hold every slot...
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = Client::connect(&h.socket, T).await.unwrap();
        c.call::<StatusSnapshot>(&Request::new(Op::Status))
            .await
            .unwrap();
        held.push(c);
    }
    // ...so the next one is told so and closed, not left hanging.
    let mut s = BufReader::new(UnixStream::connect(&h.socket).await.unwrap());
    let mut line = String::new();
    tokio::time::timeout(T, s.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let r: Response = serde_json::from_str(&line).unwrap();
    assert!(!r.ok, "{line}");
    assert!(line.contains("too many connections"), "{line}");
    // A slot freed is a slot served again.
    drop(held.pop());
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(mut c) = Client::connect(&h.socket, T).await {
            if c.call::<StatusSnapshot>(&Request::new(Op::Status))
                .await
                .is_ok()
            {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "served again once a connection closed");
    h.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_check_seam_refuses_another_uid() {
    // The server believes it runs as another uid, so our real uid is foreign.
    let me = unsafe { libc::geteuid() };
    let h = start(ServerOptions {
        own_uid: me.wrapping_add(1),
        ..quick()
    })
    .await;
    // Refused before anything is read: the reply comes unasked, then EOF.
    let mut s = BufReader::new(UnixStream::connect(&h.socket).await.unwrap());
    let mut line = String::new();
    tokio::time::timeout(T, s.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let r: Response = serde_json::from_str(&line).unwrap();
    assert!(!r.ok);
    assert!(r.error.unwrap().contains(&format!("peer uid {me}")));
    line.clear();
    assert_eq!(
        s.read_line(&mut line).await.unwrap(),
        0,
        "closed after refusal"
    );
    // The client reports the daemon's reason, not a broken pipe.
    let e = commands::status(&h.paths, false).await.unwrap_err();
    assert!(e.to_string().contains("permission denied"), "{e:#}");
}

/// With root, run a client as `nobody` against a socket it may open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_refuses_a_real_client_of_another_uid() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a client as another uid");
        return;
    }
    // Deliberately open permissions, so only the peer check stands in the way.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("open.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (tx, rx) = mpsc::channel(4);
    let (events, _) = broadcast::channel(4);
    let shutdown = CancellationToken::new();
    tokio::spawn(fake_core(rx, events, shutdown.clone()));
    tokio::spawn(serve(listener, tx, shutdown.clone()));

    let out = tokio::task::spawn_blocking(move || {
        use std::os::unix::process::CommandExt;
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "helper_client_as_other_uid", "--nocapture"])
            .env("ZR_HELPER_SOCKET", &socket)
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("REPLY "), "{stdout}");
    assert!(
        stdout.contains("permission denied: peer uid 65534"),
        "{stdout}"
    );
    shutdown.cancel();
}

#[test]
fn helper_client_as_other_uid() {
    let Some(socket) = std::env::var_os("ZR_HELPER_SOCKET") else {
        return;
    };
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    // The refusal may close the socket before our write lands.
    let _ = s.write_all(Request::new(Op::Status).to_line().as_bytes());
    let mut line = String::new();
    StdBufReader::new(s).read_line(&mut line).unwrap();
    println!("REPLY {line}");
}

#[tokio::test]
async fn socket_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path(), None);
    let socket = socket_path(&paths);
    let _l = bind_socket(&socket).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&paths.state_dir), 0o700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_is_replaced_and_live_one_is_not_stolen() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path(), None);
    let socket = socket_path(&paths);
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    // A dead daemon's leftover: bound, then dropped without unlinking.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_err());

    let listener = bind_socket(&socket).expect("stale socket replaced");
    let (tx, rx) = mpsc::channel(4);
    let (events, _) = broadcast::channel(4);
    let shutdown = CancellationToken::new();
    tokio::spawn(fake_core(rx, events, shutdown.clone()));
    let server = tokio::spawn(serve(listener, tx, shutdown.clone()));
    assert!(commands::status(&paths, false).await.is_ok());

    // A second bind must not take over the live socket.
    let e = bind_socket(&socket).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    assert!(
        commands::status(&paths, false).await.is_ok(),
        "still answering"
    );

    // Nor may it remove something that is not a socket.
    let file = dir.path().join("plain");
    std::fs::write(&file, "keep me").unwrap();
    assert!(bind_socket(&file).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    shutdown.cancel();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_cancel_read_the_stores_when_no_daemon_runs() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path(), None);
    let store = paths.projects().join("p").join("scheduled_resumes.jsonl");
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    std::fs::write(
        &store,
        "{\"action\":\"schedule\",\"incident_id\":\"6f01\",\"session_id\":\"9c22\",\"provider\":\"codex\",\
\"when\":\"2030-01-01T08:00:00Z\",\"message\":\"Continue\",\"attempt\":1,\"log_path\":\"\"}\n",
    )
    .unwrap();
    let table = commands::list(&paths, false).await.unwrap();
    assert!(table.contains("6f01") && table.contains("codex"), "{table}");
    assert!(table.contains("not running"), "{table}");
    let json = commands::list(&paths, true).await.unwrap();
    let v: Vec<PendingView> = serde_json::from_str(&json).unwrap();
    assert_eq!(v.len(), 1);
    let msg = commands::cancel(&paths, "6f01", false, chrono::Utc::now())
        .await
        .unwrap();
    assert!(msg.starts_with("cancelled 6f01"), "{msg}");
    // zag's cancel shape, plus the `at` and `detail` keys zag ignores.
    let after = std::fs::read_to_string(&store).unwrap();
    let last = after.lines().last().unwrap();
    assert!(
        last.starts_with("{\"action\":\"cancel\",\"incident_id\":\"6f01\",\"at\":\"")
            && after.ends_with("\"}\n"),
        "{after}"
    );
    assert!(commands::cancel(&paths, "6f01", false, chrono::Utc::now())
        .await
        .is_err());
    assert_eq!(
        commands::stop(&paths, T).await.unwrap(),
        StopOutcome::NotRunning
    );
}

// ---------------------------------------------------------------------------
// Across processes.

/// Spawn this binary running one helper test; it reports "READY" on stdout.
fn spawn_helper(
    name: &str,
    env: &[(&str, &OsString)],
) -> (std::process::Child, StdBufReader<std::process::ChildStdout>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = StdBufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "helper {name} ended early"
        );
        // libtest prints "test name ... " right before our output.
        if line.trim_end().ends_with("READY") {
            break;
        }
    }
    (child, out)
}

#[test]
fn helper_hold_instance_lock() {
    let Some(dir) = std::env::var_os("ZR_HELPER_LOCK_DIR") else {
        return;
    };
    let _lock = lock::acquire(Path::new(&dir)).unwrap();
    println!("READY");
    // Hold until the parent closes our stdin (or kills us).
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
}

#[test]
fn instance_lock_names_the_holder_and_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".zag").join("resumed");
    let arg = OsString::from(&state);
    let (mut child, _out) =
        spawn_helper("helper_hold_instance_lock", &[("ZR_HELPER_LOCK_DIR", &arg)]);
    let err = lock::acquire(&state).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, lock::LockError::Held { pid: Some(p), .. } if p == child.id()),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("already running (pid {})", child.id())),
        "{msg}"
    );
    // SIGKILL: no cleanup code runs, yet the lock is free.
    child.kill().unwrap();
    child.wait().unwrap();
    let held = lock::acquire(&state).expect("lock released by the kernel");
    drop(held);
}

/// A daemon stand-in, started by `ensure` as `<exe> run --exact
/// helper_fake_daemon <home>`: takes the instance lock, binds, serves the
/// fake core until `stop`. Records each start in `<home>/starts`.
#[test]
fn helper_fake_daemon() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("run") {
        return;
    }
    let home = PathBuf::from(args.last().unwrap());
    let paths = Paths::new(&home, None);
    let _lock = match lock::acquire(&paths.state_dir) {
        Ok(l) => l,
        Err(e) => {
            // What a second `run` prints; the test reads it from daemon.log.
            eprintln!("zag-resumed: {e}");
            return;
        }
    };
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("starts"))
            .unwrap();
        writeln!(f, "{}", std::process::id()).unwrap();
    }
    // Widen the window in which racing `ensure` callers could double-spawn.
    std::thread::sleep(Duration::from_millis(200));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = bind_socket(&socket_path(&paths)).unwrap();
        let shutdown = CancellationToken::new();
        let (tx, rx) = mpsc::channel(16);
        let (events, _) = broadcast::channel(16);
        tokio::spawn(fake_core(rx, events, shutdown.clone()));
        serve(listener, tx, shutdown).await;
    });
}

fn fake_args(home: &Path) -> Vec<OsString> {
    vec![
        "--exact".into(),
        "helper_fake_daemon".into(),
        home.as_os_str().to_owned(),
    ]
}

fn starts(home: &Path) -> Vec<u32> {
    std::fs::read_to_string(home.join("starts"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Running, and not a zombie (a daemon reparented to an init that does not
/// reap, as in some containers, stays one): the library's own rule.
fn alive(pid: u32) -> bool {
    zag_resumed::zag_process::pid_alive(pid)
}

fn kill(pid: u32, sig: i32) {
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_ensures_start_exactly_one_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let paths = Paths::new(&home, None);
    let exe = std::env::current_exe().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (paths, exe, args) = (paths.clone(), exe.clone(), fake_args(&home));
        tasks.spawn(
            async move { ensure::ensure(&paths, &exe, &args, Duration::from_secs(20)).await },
        );
    }
    let mut outcomes = Vec::new();
    while let Some(r) = tasks.join_next().await {
        outcomes.push(r.unwrap().unwrap());
    }
    let started: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, EnsureOutcome::Started { .. }))
        .collect();
    assert_eq!(started.len(), 1, "{outcomes:?}");
    let pids: std::collections::BTreeSet<u32> = outcomes
        .iter()
        .map(|o| match o {
            EnsureOutcome::Started { pid } | EnsureOutcome::AlreadyRunning { pid } => *pid,
        })
        .collect();
    assert_eq!(pids.len(), 1, "{outcomes:?}");
    let pid = *pids.iter().next().unwrap();
    assert_eq!(starts(&home), [pid]);

    // Already running: one round trip, fast.
    let t0 = std::time::Instant::now();
    let again = ensure::ensure(&paths, &exe, &fake_args(&home), T)
        .await
        .unwrap();
    assert_eq!(again, EnsureOutcome::AlreadyRunning { pid });
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );

    // The detached daemon is in its own session.
    let sid = unsafe { libc::getsid(pid as libc::pid_t) };
    assert_eq!(sid, pid as libc::pid_t);

    // Graceful stop through the socket waits for the process to go.
    let out = commands::stop(&paths, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out, StopOutcome::Stopped { pid });
    assert!(!socket_path(&paths).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ensure_replaces_the_socket_of_a_sigkilled_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let paths = Paths::new(&home, None);
    let exe = std::env::current_exe().unwrap();
    let first = ensure::ensure(&paths, &exe, &fake_args(&home), Duration::from_secs(20))
        .await
        .unwrap();
    let EnsureOutcome::Started { pid } = first else {
        panic!("{first:?}")
    };
    kill(pid, libc::SIGKILL);
    // Our own child (ensure ran in this process): reap it.
    let mut st = 0;
    assert_eq!(
        unsafe { libc::waitpid(pid as libc::pid_t, &mut st, 0) },
        pid as libc::pid_t
    );
    let socket = socket_path(&paths);
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");
    let second = ensure::ensure(&paths, &exe, &fake_args(&home), Duration::from_secs(20))
        .await
        .unwrap();
    let EnsureOutcome::Started { pid: pid2 } = second else {
        panic!("{second:?}")
    };
    assert_ne!(pid, pid2);
    assert_eq!(starts(&home), [pid, pid2]);
    commands::stop(&paths, Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_reports_a_daemon_that_dies_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path(), None);
    let e = ensure::ensure(
        &paths,
        Path::new("/bin/false"),
        &[],
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("exited"), "{e:#}");
}

// ---------------------------------------------------------------------------
// Against the real daemon binary.

const BIN: &str = env!("CARGO_BIN_EXE_zag-resumed");

fn real(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--zag-home")
        .arg(home.join(".zag"))
        .env("HOME", home)
        .env_remove("NOTIFY_SOCKET")
        .env("RUST_LOG", "info");
    c
}

fn wait_until_answering(paths: &Paths) -> u32 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut c) = Client::connect(&socket_path(paths), T).await {
                if let Ok(s) = c.call::<StatusSnapshot>(&Request::new(Op::Status)).await {
                    return s.pid;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "daemon never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[test]
fn two_concurrent_runs_make_one_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let paths = Paths::new(home, Some(&home.join(".zag")));
    let spawn = |n: u32| {
        let err = std::fs::File::create(home.join(format!("stderr{n}"))).unwrap();
        let child = real(home, &["run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        (child, home.join(format!("stderr{n}")))
    };
    let (a, b) = (spawn(0), spawn(1));
    let pid = wait_until_answering(&paths);
    let (mut winner, mut loser) = if pid == a.0.id() { (a, b) } else { (b, a) };
    assert_eq!(winner.0.id(), pid);
    assert_eq!(
        loser.0.wait().unwrap().code(),
        Some(zag_resumed::lock::EXIT_ALREADY_RUNNING),
        "a second run exits with the already-running status"
    );
    let err = std::fs::read_to_string(&loser.1).unwrap();
    assert!(
        err.contains(&format!("already running (pid {pid})")),
        "{err}"
    );
    kill(pid, libc::SIGTERM);
    assert!(
        winner.0.wait().unwrap().success(),
        "SIGTERM is a clean exit"
    );
    assert!(!socket_path(&paths).exists());
}

#[test]
fn ten_concurrent_ensure_processes_make_one_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let paths = Paths::new(home, Some(&home.join(".zag")));
    let kids: Vec<_> = (0..10)
        .map(|_| {
            real(home, &["ensure"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let out = k.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pid = wait_until_answering(&paths);
    let log = std::fs::read_to_string(paths.state_dir.join("daemon.log")).unwrap_or_default();
    assert!(
        !log.contains("already running"),
        "only one daemon was spawned:\n{log}"
    );
    let out = real(home, &["stop"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!alive(pid), "daemon gone after stop");
}

/// A store record of ours, due `in_secs` from now, in the global store.
fn seed_pending(zag_home: &Path, id: &str, in_secs: i64) {
    let when = (Utc::now() + chrono::Duration::seconds(in_secs)).to_rfc3339();
    let line = format!(
        "{{\"action\":\"schedule\",\"incident_id\":\"{id}\",\"session_id\":\"6873abcd-0000\",\
\"provider\":\"claude\",\"when\":\"{when}\",\"message\":\"Continue\",\"attempt\":1,\"log_path\":\"\",\
\"origin\":\"zag-resumed\",\"scope\":\"weekly\",\"cwd\":\"/tmp\"}}\n"
    );
    std::fs::create_dir_all(zag_home).unwrap();
    std::fs::write(zag_home.join("scheduled_resumes.jsonl"), line).unwrap();
}

fn stderr_file(home: &Path, name: &str) -> (std::fs::File, PathBuf) {
    let p = home.join(name);
    (std::fs::File::create(&p).unwrap(), p)
}

#[test]
fn status_shows_pending_resumes_with_countdowns() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let paths = Paths::new(home, Some(&home.join(".zag")));
    seed_pending(&paths.zag_home, "inc-status", 2 * 3600 + 14 * 60 + 30);
    let (err, _) = stderr_file(home, "stderr");
    let mut daemon = real(home, &["run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    let pid = wait_until_answering(&paths);
    assert_eq!(pid, daemon.id());
    let out = real(home, &["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("pid {pid}")), "{text}");
    assert!(
        text.contains("claude · session 6873… · resumes in 2h 14m · weekly limit"),
        "{text}"
    );
    let json = real(home, &["status", "--json"]).output().unwrap();
    let snap: StatusSnapshot = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(snap.pending.len(), 1);
    assert_eq!(snap.pending[0].incident_id, "inc-status");
    kill(pid, libc::SIGTERM);
    assert!(daemon.wait().unwrap().success());
}

/// The daemon's systemd notify socket, as a test reads it: each
/// [`wait_for`](Self::wait_for) consumes datagrams up to the next one with
/// that state, so "READY=1 after RELOADING=1" is a wait on the daemon's own
/// word, not on time.
struct SystemdListener {
    path: PathBuf,
    rx: std::os::unix::net::UnixDatagram,
}

impl SystemdListener {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        SystemdListener { path, rx }
    }

    fn wait_for(&mut self, want: &str) {
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        loop {
            let n = self
                .rx
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {want}: {e}; got {seen:?}"));
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want) {
                return;
            }
            seen.push(msg);
        }
    }
}

#[test]
fn sighup_reload_changes_a_setting_and_keeps_timers() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let paths = Paths::new(home, Some(&home.join(".zag")));
    seed_pending(&paths.zag_home, "inc-reload", 3 * 3600);
    let config = home.join("zag-resumed.toml");
    std::fs::write(&config, "[notify]\ndesktop = true\n").unwrap();
    let (err, err_path) = stderr_file(home, "stderr");
    let mut notify = SystemdListener::bind(home);
    let mut daemon = real(home, &["run", "--config", config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &notify.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    notify.wait_for("READY=1");
    let pid = wait_until_answering(&paths);
    std::fs::write(&config, "[notify]\ndesktop = false\n").unwrap();
    kill(pid, libc::SIGHUP);
    // The reload is done when the daemon says READY=1 after RELOADING=1
    // (it logs what changed before that).
    notify.wait_for("RELOADING=1");
    notify.wait_for("READY=1");
    let log = std::fs::read_to_string(&err_path).unwrap();
    let lower = log.to_lowercase();
    assert!(
        lower.contains("sighup") || lower.contains("reload"),
        "no reload logged:\n{log}"
    );
    assert!(
        log.contains("notify"),
        "the reload says what changed:\n{log}"
    );
    // Same process, timer still pending.
    assert_eq!(wait_until_answering(&paths), pid);
    let out = real(home, &["status", "--json"]).output().unwrap();
    let snap: StatusSnapshot = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<_> = snap
        .pending
        .iter()
        .map(|p| p.incident_id.as_str())
        .collect();
    assert_eq!(ids, ["inc-reload"]);
    kill(pid, libc::SIGTERM);
    assert!(daemon.wait().unwrap().success());
}

#[test]
fn a_sigkilled_daemons_socket_is_replaced_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let paths = Paths::new(home, Some(&home.join(".zag")));
    let start = || {
        real(home, &["run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = start();
    assert_eq!(wait_until_answering(&paths), first.id());
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        socket_path(&paths).exists(),
        "SIGKILL leaves the socket behind"
    );
    let mut second = start();
    assert_eq!(wait_until_answering(&paths), second.id());
    kill(second.id(), libc::SIGTERM);
    assert!(second.wait().unwrap().success());
}

#[test]
fn daemon_speaks_the_systemd_notify_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let paths = Paths::new(home, Some(&home.join(".zag")));
    let mut notify = SystemdListener::bind(home);
    let mut daemon = real(home, &["run"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "200000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    notify.wait_for("READY=1");
    // READY means the socket answers: one try, no polling.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let snap: StatusSnapshot = rt.block_on(async {
        let mut c = Client::connect(&socket_path(&paths), T).await.unwrap();
        c.call(&Request::new(Op::Status)).await.unwrap()
    });
    assert_eq!(snap.pid, daemon.id());
    // Watchdog pings at half of 200 ms.
    notify.wait_for("WATCHDOG=1");
    kill(daemon.id(), libc::SIGTERM);
    notify.wait_for("STOPPING=1");
    assert!(daemon.wait().unwrap().success());
}

#[test]
fn subscribers_see_a_cancel_made_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let paths = Paths::new(home, Some(&home.join(".zag")));
    seed_pending(&paths.zag_home, "inc-sub", 3600);
    let mut daemon = real(home, &["run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = wait_until_answering(&paths);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ev = rt.block_on(async {
        let mut sub = Client::connect(&socket_path(&paths), T)
            .await
            .unwrap()
            .subscribe()
            .await
            .unwrap();
        let out = real(home, &["cancel", "inc-sub"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::timeout(T, sub.next()).await.unwrap().unwrap()
    });
    assert!(
        matches!(&ev, Some(IncidentEvent::Cancelled { incident_id, .. }) if incident_id == "inc-sub"),
        "{ev:?}"
    );
    let list = real(home, &["list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains("inc-sub"));
    kill(pid, libc::SIGTERM);
    assert!(daemon.wait().unwrap().success());
}
