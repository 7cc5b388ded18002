//! Live-session primitives against a real tmux: a fake TUI in a pane of a
//! server on a private socket proves pane discovery by process ancestry
//! (across servers, none of them `default`), literal typing with Enter sent
//! separately and exactly once, and confirmation by the session file growing.
//!
//! Needs `tmux` on PATH. Without it the tests fail when `CI` is set and
//! print one skip line otherwise.

#[path = "common/tmux.rs"]
mod tmux_check;
use tmux_check::wait_until;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zag_resumed::live::proc::{Liveness, Procfs};
use zag_resumed::live::tmux::{self, Tmux, TmuxError};
use zag_resumed::provider::screen;

const FAKE_TUI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/live/fake_tui.sh"
);

/// A tmux server on a private socket; killed on drop.
struct Server {
    socket: PathBuf,
}

impl Server {
    /// Starts a server with one session running `command` (no user config).
    fn start(socket: &Path, session: &str, command: &str) -> Server {
        let st = Command::new("tmux")
            .arg("-S")
            .arg(socket)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "30",
            ])
            .arg(command)
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session failed");
        Server {
            socket: socket.to_path_buf(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

/// Type a sentinel line and wait until the fake TUI has written it:
/// keystrokes reach a pane in order, so whatever was typed before it (an
/// extra Enter, a duplicate) is in the file by then.
fn sentinel_through(t: &Tmux, pane: &tmux::Pane, out: &Path) {
    const SENTINEL: &str = "zz-sentinel";
    t.type_line(pane, SENTINEL, Duration::ZERO).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || lines_of(out)
            .last()
            .is_some_and(|l| l == SENTINEL)),
        "the sentinel did not arrive: {:?}",
        lines_of(out)
    );
}

fn lines_of(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A fake TUI as a grandchild of the pane (pane shell → fake), started in
/// `dir`; returns (server, session file, the fake's pid).
fn fake_tui(dir: &Path, socket_name: &str, session: &str) -> (Server, PathBuf, u32) {
    let out = dir.join(format!("{session}.session"));
    let pidf = dir.join(format!("{session}.pid"));
    let cmd = format!(
        "sh -c 'sh {} {} {}; true'",
        FAKE_TUI,
        out.display(),
        pidf.display()
    );
    let server = Server::start(&dir.join(socket_name), session, &cmd);
    assert!(
        wait_until(Duration::from_secs(10), || fs::read_to_string(&pidf)
            .is_ok_and(|s| s.trim().parse::<u32>().is_ok())),
        "the fake TUI did not start"
    );
    let pid = fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    (server, out, pid)
}

#[test]
fn pane_by_ancestry_typing_once_and_confirmation_by_file_growth() {
    if !tmux_check::available("live tmux tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let procfs = Procfs::system();
    // Two servers in one socket dir, neither called `default`: a decoy and
    // the one the session lives in.
    let (_decoy, decoy_out, decoy_pid) = fake_tui(dir.path(), "decoy", "other");
    let (_server, out, pid) = fake_tui(dir.path(), "private", "work");

    let t = Tmux::default();
    let pane = t
        .find_pane(&procfs, pid, &[dir.path().to_path_buf()])
        .unwrap()
        .expect("the fake TUI's pane is found by ancestry");
    assert_eq!(pane.socket, dir.path().join("private"));
    assert_eq!(pane.session_name, "work");
    assert_eq!(pane.human_name(), "work:0.0");
    assert!(procfs.ancestors(pid).contains(&pane.pane_pid));
    assert_ne!(
        pane.pane_pid, pid,
        "the fake runs below the pane's own process"
    );

    // the prompt is on screen before we type
    assert!(wait_until(Duration::from_secs(5), || t
        .capture(&pane)
        .is_ok_and(|s| s.lines().any(|l| l.trim_end() == ">"))));
    let before = lines_of(&out).len();

    // key names and a leading dash must arrive literally, as text
    let text = "-l Continue the task C-c Escape Enter";
    t.type_line(&pane, text, Duration::from_millis(300))
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || lines_of(&out).len() > before),
        "the session file did not grow"
    );
    // the screen shows it (read before the sentinel below scrolls it)
    let shown = t.capture(&pane).unwrap();
    assert!(shown.contains(text), "{shown}");
    assert_eq!(
        zag_resumed::provider::screen_view::read(&shown).shows(),
        screen::Shows::Unknown
    );
    // exactly one line, exactly the text; nothing reached the decoy
    sentinel_through(&t, &pane, &out);
    assert_eq!(lines_of(&out), [text, "zz-sentinel"]);
    let decoy = t
        .find_pane(&procfs, decoy_pid, &[dir.path().to_path_buf()])
        .unwrap()
        .expect("the decoy's pane");
    sentinel_through(&t, &decoy, &decoy_out);
    assert_eq!(lines_of(&decoy_out), ["zz-sentinel"]);

    // the process still lives and is the same one
    let id = procfs.identity(pid).unwrap();
    assert_eq!(procfs.liveness(pid, id.start_ticks), Liveness::Alive);
}

#[test]
fn refused_text_and_dead_servers_are_clear_errors() {
    if !tmux_check::available("live tmux tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, out, pid) = fake_tui(dir.path(), "s1", "w");
    let t = Tmux::default();
    let pane = t
        .find_pane(&Procfs::system(), pid, &[dir.path().to_path_buf()])
        .unwrap()
        .unwrap();
    // a newline would submit early, Esc would cancel Claude's wait: refused, nothing sent
    for bad in ["two\nlines", "\u{1b}", ""] {
        assert!(matches!(
            t.type_line(&pane, bad, Duration::from_millis(10)),
            Err(TmuxError::Untypable(_))
        ));
    }
    sentinel_through(&t, &pane, &out);
    assert_eq!(lines_of(&out), ["zz-sentinel"], "only the sentinel arrived");

    // the server dies: its socket is stale, the error says so, discovery skips it
    drop(server);
    assert!(wait_until(Duration::from_secs(5), || matches!(
        t.list_panes(&pane.socket),
        Err(TmuxError::NoServer(_))
    )));
    let (panes, errs) = t.panes_of_sockets(&tmux::sockets_in(dir.path()));
    assert!(panes.is_empty());
    assert!(errs
        .iter()
        .all(|(_, e)| matches!(e, TmuxError::NoServer(_))));
    assert!(matches!(
        t.type_line(&pane, "hello", Duration::from_millis(10)),
        Err(TmuxError::NoServer(_))
    ));
}

#[test]
fn a_registered_claude_in_a_pane_is_found_with_its_pane() {
    use zag_resumed::live::owner::Reach;
    use zag_resumed::provider::claude::registry::sessions_dir;
    use zag_resumed::provider::claude::registry::{claude_holder, ClaudeHolder};
    if !tmux_check::available("live tmux tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let procfs = Procfs::system();
    let (_server, _out, pid) = fake_tui(dir.path(), "claude-sock", "agents");
    // A registry entry as Claude Code 2.1.332 writes it, for the fake's pid.
    let start = procfs.identity(pid).unwrap().start_ticks;
    let claude_dir = dir.path().join("claude");
    fs::create_dir_all(sessions_dir(&claude_dir)).unwrap();
    let entry = format!(
        r#"{{"pid":{pid},"sessionId":"sess-1","cwd":"/p","procStart":"{start}","version":"2.1.332","kind":"interactive","entrypoint":"cli","tmux":"agents:@0.%0","status":"idle"}}"#
    );
    fs::write(sessions_dir(&claude_dir).join(format!("{pid}.json")), entry).unwrap();
    // A stale entry for the same session whose pid was reused (procStart differs).
    let stale = format!(
        r#"{{"pid":1,"sessionId":"sess-2","procStart":"{}"}}"#,
        u64::MAX
    );
    fs::write(sessions_dir(&claude_dir).join("1.json"), stale).unwrap();

    let t = Tmux::default();
    let dirs = [dir.path().to_path_buf()];
    match claude_holder(&claude_dir, "sess-1", &procfs, &t, &dirs).unwrap() {
        ClaudeHolder::Live {
            entry,
            reach: Reach::Pane(pane),
            pane_mismatch,
        } => {
            assert_eq!(entry.pid, pid);
            assert_eq!(pane.session_name, "agents");
            assert_eq!(pane.socket, dir.path().join("claude-sock"));
            assert!(
                !pane_mismatch,
                "registry says %0, ancestry found {}",
                pane.pane_id
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        claude_holder(&claude_dir, "sess-2", &procfs, &t, &dirs).unwrap(),
        ClaudeHolder::Nobody
    );
}

/// A GNU screen session on a private `SCREENDIR`; quit on drop.
struct ScreenSession {
    screendir: PathBuf,
    name: String,
}

impl Drop for ScreenSession {
    fn drop(&mut self) {
        let _ = Command::new("screen")
            .env("SCREENDIR", &self.screendir)
            .args(["-S", &self.name, "-X", "quit"])
            .status();
    }
}

#[test]
fn gnu_screen_window_from_the_environment_and_literal_typing() {
    use zag_resumed::live::gnu_screen::{window_of, Screen};
    // screen is optional (CI installs tmux only): skip without it.
    if !Command::new("screen")
        .arg("-v")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP gnu screen test: screen is not installed"
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let screendir = dir.path().join("screens");
    fs::create_dir(&screendir).unwrap();
    fs::set_permissions(&screendir, fs::Permissions::from_mode(0o700)).unwrap();
    let out = dir.path().join("s.session");
    let pidf = dir.path().join("s.pid");
    let name = format!("zr-live-{}", std::process::id());
    let st = Command::new("screen")
        .env("SCREENDIR", &screendir)
        .args(["-dmS", &name, "sh", "-c"])
        .arg(format!(
            "sh {FAKE_TUI} {} {}; true",
            out.display(),
            pidf.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let _session = ScreenSession {
        screendir: screendir.clone(),
        name: name.clone(),
    };
    assert!(wait_until(Duration::from_secs(10), || fs::read_to_string(
        &pidf
    )
    .is_ok_and(|s| s.trim().parse::<u32>().is_ok())));
    let pid: u32 = fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();

    let w = window_of(&Procfs::system(), pid).expect("STY and WINDOW in the fake's environment");
    assert!(w.session.ends_with(&name), "{w:?}");
    assert_eq!(w.screendir.as_deref(), Some(screendir.as_path()));
    // outside tmux, the owner facade reaches it through the screen window
    let reach = zag_resumed::live::owner::reach_of(&Procfs::system(), &Tmux::default(), pid, &[]);
    assert_eq!(
        reach.unwrap(),
        zag_resumed::live::owner::Reach::ScreenWindow(w.clone())
    );
    // screen's `stuff` would send ^C as Ctrl-C and expand $HOME: escaped, they arrive as text
    let text = r"Continue ^C $HOME \n done";
    Screen::default()
        .type_line(&w, text, Duration::from_millis(300))
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || !lines_of(&out).is_empty()));
    let shown = Screen::default()
        .capture(&w, &dir.path().join("hardcopy"))
        .unwrap();
    assert!(shown.contains(text), "{shown}");
    // Exactly once: a sentinel typed after it arrives right behind it.
    Screen::default()
        .type_line(&w, "zz-sentinel", Duration::ZERO)
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || lines_of(&out).len() >= 2));
    assert_eq!(lines_of(&out), [text, "zz-sentinel"]);
}
