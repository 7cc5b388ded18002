//! Process facts from Linux `/proc`: start time, parent chain, command line,
//! working directory, environment, open files, and a pid-reuse guard.
//!
//! Why: to know whether the process that owns a session is still alive, and
//! which terminal it runs in, the daemon must look at other processes. A pid
//! alone is not an identity (the kernel reuses pids), so every answer that
//! matters is tied to the process's start time (field 22 of
//! `/proc/<pid>/stat`, in clock ticks since boot): the same number Claude
//! Code writes as `procStart` in its session registry.
//!
//! Every reader goes through a [`Procfs`] rooted at `/proc` (or, in tests, at
//! a directory laid out like it), so fake process trees need no real
//! processes. A pid that is bad, vanished or unreadable gives `None` (or
//! [`Liveness::Unknown`]), never a panic. On systems without `/proc` every
//! answer is "unknown": nothing here is Linux-only at compile time.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// A process id as the kernel prints it.
pub type Pid = u32;

/// Bound on a parent chain: a real chain is a few dozen deep; a cycle (only
/// possible in a hand-made tree, or a pid reused mid-walk) must still end.
const MAX_CHAIN: usize = 512;

/// The fields of `/proc/<pid>/stat` this module uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Field 1.
    pub pid: Pid,
    /// Field 2, without the parentheses (may itself contain spaces and `)`).
    pub comm: String,
    /// Field 3 (`R`, `S`, `Z`, …).
    pub state: char,
    /// Field 4.
    pub ppid: Pid,
    /// Field 5: the process group.
    pub pgrp: Pid,
    /// Field 7: the controlling terminal's device number (0: none): two
    /// processes with the same number share a terminal.
    pub tty_nr: i64,
    /// Field 8 (`tpgid`): the foreground process group of the terminal the
    /// process runs on; `None` when it has no terminal (the kernel prints -1).
    pub tty_foreground_pgrp: Option<Pid>,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
}

impl Stat {
    /// The process's group is its terminal's foreground group: what the
    /// user types reaches it, and it is not stopped for reading the tty.
    pub fn in_foreground(&self) -> bool {
        self.tty_foreground_pgrp == Some(self.pgrp)
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name is found by the
/// *last* `)` because it may contain spaces and parentheses itself.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    // After ") " come fields 3, 4, …; field 22 is index 19 of this tail.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let state = rest.first()?.chars().next()?;
    let ppid = rest.get(1)?.parse().ok()?;
    let pgrp = rest.get(2)?.parse().ok()?;
    let tty_nr = rest.get(4)?.parse().ok()?;
    let tpgid: i64 = rest.get(5)?.parse().ok()?;
    let start_ticks = rest.get(19)?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgrp,
        tty_nr,
        tty_foreground_pgrp: Pid::try_from(tpgid).ok().filter(|&g| g > 0),
        start_ticks,
    })
}

/// Parses the `btime` line (boot time, seconds since the epoch) of `/proc/stat`.
pub fn parse_btime(text: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Wall-clock start of a process from its start ticks, the boot time and the
/// tick rate. Pure, so the arithmetic is tested without a kernel.
pub fn wall_start(start_ticks: u64, boot_secs: i64, ticks_per_sec: u64) -> Option<DateTime<Utc>> {
    if ticks_per_sec == 0 {
        return None;
    }
    let ms_after_boot = i64::try_from(start_ticks.checked_mul(1000)? / ticks_per_sec).ok()?;
    DateTime::from_timestamp_millis(boot_secs.checked_mul(1000)?.checked_add(ms_after_boot)?)
}

/// Splits a NUL-separated `/proc` file (`cmdline`, `environ`) into strings
/// (lossy UTF-8; an empty trailing item is dropped).
pub fn split_nul(bytes: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if v.last().is_some_and(|s| s.is_empty()) {
        v.pop();
    }
    v
}

/// Whether a pid still names the process we saw, as far as `/proc` can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The pid exists and started at the expected tick: same process.
    Alive,
    /// No process has this pid any more.
    Gone,
    /// The pid exists but started at another tick: the kernel reused it.
    Reused,
    /// Cannot tell (no `/proc`, unreadable, zombie): treat as neither alive nor gone.
    Unknown,
}

/// A process identity that survives pid reuse: pid plus start ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The pid.
    pub pid: Pid,
    /// Field 22 of its stat when first seen.
    pub start_ticks: u64,
}

/// Root of a `/proc`-like tree.
#[derive(Clone, Debug)]
pub struct Procfs {
    root: PathBuf,
}

impl Default for Procfs {
    fn default() -> Self {
        Self::system()
    }
}

impl Procfs {
    /// The real `/proc`.
    pub fn system() -> Self {
        Self::at("/proc")
    }

    /// A tree rooted elsewhere (tests build fake process trees this way).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn pid_path(&self, pid: Pid, leaf: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(leaf)
    }

    /// `/proc/<pid>/stat`, parsed.
    pub fn stat(&self, pid: Pid) -> Option<Stat> {
        parse_stat(&fs::read_to_string(self.pid_path(pid, "stat")).ok()?)
    }

    /// The identity (pid + start ticks) of a running process.
    pub fn identity(&self, pid: Pid) -> Option<ProcessId> {
        self.stat(pid).map(|s| ProcessId {
            pid,
            start_ticks: s.start_ticks,
        })
    }

    /// Boot time in seconds since the epoch (`btime` of `/proc/stat`).
    pub fn boot_time(&self) -> Option<i64> {
        parse_btime(&fs::read_to_string(self.root.join("stat")).ok()?)
    }

    /// Wall-clock start of a process (boot time + start ticks / tick rate).
    pub fn start_time(&self, pid: Pid) -> Option<DateTime<Utc>> {
        wall_start(
            self.stat(pid)?.start_ticks,
            self.boot_time()?,
            ticks_per_sec(),
        )
    }

    /// The pid-reuse guard: is `pid` still the process that started at
    /// `start_ticks`? A zombie counts as [`Liveness::Gone`]: it will never
    /// write to a session again.
    pub fn liveness(&self, pid: Pid, start_ticks: u64) -> Liveness {
        let path = self.root.join(pid.to_string());
        match fs::read_to_string(path.join("stat")) {
            Ok(text) => match parse_stat(&text) {
                Some(s) if s.start_ticks != start_ticks => Liveness::Reused,
                Some(s) if s.state == 'Z' || s.state == 'X' => Liveness::Gone,
                Some(_) => Liveness::Alive,
                None => Liveness::Unknown,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // No such pid; but if /proc itself is missing we know nothing.
                if self.root.join("self").exists() || self.root.join("1").exists() {
                    Liveness::Gone
                } else {
                    Liveness::Unknown
                }
            }
            Err(_) => Liveness::Unknown,
        }
    }

    /// The foreground process group of the terminal `pid` runs on (for a
    /// pane, ask about its shell, `pane_pid`): the group a keystroke typed
    /// into that terminal reaches. `None` when the process is gone or has no
    /// terminal. Read from `/proc` (`tpgid`) rather than `tcgetpgrp(3)`,
    /// which answers only for the caller's own controlling terminal.
    pub fn foreground_pgrp(&self, pid: Pid) -> Option<Pid> {
        self.stat(pid)?.tty_foreground_pgrp
    }

    /// How many open descriptors, in every process whose fds we may read,
    /// refer to the file with this (device, inode), not counting descriptor
    /// `except.1` of process `except.0`. `None` when the root is unreadable
    /// (no `/proc`).
    pub fn open_count_of_inode(&self, dev: u64, ino: u64, except: (Pid, u32)) -> Option<usize> {
        use std::os::unix::fs::MetadataExt;
        fs::read_dir(&self.root).ok()?;
        let mut n = 0;
        for pid in self.pids() {
            let Ok(fds) = fs::read_dir(self.pid_path(pid, "fd")) else {
                continue; // not ours to look at, or gone
            };
            for fd in fds.flatten() {
                if pid == except.0 && pid_of_name(&fd.file_name()) == Some(except.1) {
                    continue;
                }
                // `metadata` follows the magic link to the open file itself,
                // unlinked or not.
                if let Ok(m) = fs::metadata(fd.path()) {
                    if m.dev() == dev && m.ino() == ino {
                        n += 1;
                    }
                }
            }
        }
        Some(n)
    }

    /// The parent pid.
    pub fn ppid(&self, pid: Pid) -> Option<Pid> {
        self.stat(pid).map(|s| s.ppid)
    }

    /// The parent chain, nearest first, ending before pid 0; `pid` itself is
    /// not included. Stops at the first unreadable parent or after a cycle.
    pub fn ancestors(&self, pid: Pid) -> Vec<Pid> {
        let mut chain = Vec::new();
        let mut cur = pid;
        while chain.len() < MAX_CHAIN {
            let Some(parent) = self.ppid(cur) else { break };
            if parent == 0 || parent == pid || chain.contains(&parent) {
                break;
            }
            chain.push(parent);
            cur = parent;
        }
        chain
    }

    /// The command line, one string per argument (empty for kernel threads
    /// and zombies).
    pub fn cmdline(&self, pid: Pid) -> Option<Vec<String>> {
        Some(split_nul(&fs::read(self.pid_path(pid, "cmdline")).ok()?))
    }

    /// The environment, as `KEY=value` strings (readable only for our own
    /// user's processes).
    pub fn environ(&self, pid: Pid) -> Option<Vec<String>> {
        Some(split_nul(&fs::read(self.pid_path(pid, "environ")).ok()?))
    }

    /// One variable of the environment.
    pub fn env_var(&self, pid: Pid, key: &str) -> Option<String> {
        self.environ(pid)?.into_iter().find_map(|kv| {
            kv.strip_prefix(key)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_string)
        })
    }

    /// The working directory.
    pub fn cwd(&self, pid: Pid) -> Option<PathBuf> {
        fs::read_link(self.pid_path(pid, "cwd")).ok()
    }

    /// The targets of the process's open file descriptors (sockets and pipes
    /// appear as `socket:[…]`, `pipe:[…]`).
    pub fn open_files(&self, pid: Pid) -> Option<Vec<PathBuf>> {
        let dir = fs::read_dir(self.pid_path(pid, "fd")).ok()?;
        Some(
            dir.filter_map(Result::ok)
                .filter_map(|e| fs::read_link(e.path()).ok())
                .collect(),
        )
    }

    /// Whether the process has `path` open; `None` when its fds are unreadable.
    pub fn has_open(&self, pid: Pid, path: &Path) -> Option<bool> {
        Some(self.open_files(pid)?.iter().any(|p| p == path))
    }

    /// Every numeric entry of the root, ascending.
    pub fn pids(&self) -> Vec<Pid> {
        let Ok(dir) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut v: Vec<Pid> = dir
            .filter_map(Result::ok)
            .filter_map(|e| pid_of_name(&e.file_name()))
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether the process's group is the foreground group of its terminal
    /// (`/proc/<pid>/stat` field 5, pgrp, equals field 8, tpgid). `None`:
    /// unreadable, or no controlling terminal (tpgid -1). A TUI suspended
    /// with Ctrl-Z, or one behind a shell job, is not in the foreground:
    /// what its pane shows is not its own screen then.
    pub fn in_foreground(&self, pid: Pid) -> Option<bool> {
        let text = fs::read_to_string(self.pid_path(pid, "stat")).ok()?;
        let rest: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
        let pgrp: i64 = rest.get(2)?.parse().ok()?;
        let tpgid: i64 = rest.get(5)?.parse().ok()?;
        (tpgid > 0).then_some(pgrp == tpgid)
    }

    /// Every process that has `path` open (a full fd scan; processes whose
    /// fds we may not read are skipped).
    pub fn holders_of(&self, path: &Path) -> Vec<Pid> {
        self.pids()
            .into_iter()
            .filter(|&p| self.has_open(p, path) == Some(true))
            .collect()
    }
}

fn pid_of_name(name: &OsStr) -> Option<Pid> {
    let b = name.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on every Linux seen).
pub fn ticks_per_sec() -> u64 {
    Some(rustix::param::clock_ticks_per_second())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "8625 (claude) S 8624 8625 8624 34816 8625 4194560 1 0 0 0 10 3 0 0 20 0 11 0 48288 1 2 3\n";

    #[test]
    fn stat_fields_come_from_their_positions() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            Stat {
                pid: 8625,
                comm: "claude".into(),
                state: 'S',
                ppid: 8624,
                pgrp: 8625,
                tty_nr: 34816,
                tty_foreground_pgrp: Some(8625),
                start_ticks: 48288
            }
        );
    }

    #[test]
    fn a_command_name_with_spaces_and_parens_does_not_shift_fields() {
        let s = parse_stat("7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0").unwrap();
        assert_eq!(s.comm, "a) b (c");
        assert_eq!((s.state, s.ppid, s.start_ticks), ('R', 1, 999));
    }

    #[test]
    fn the_tmux_server_renames_itself_with_a_space() {
        // captured: a naive whitespace split reads field 22 of this line as 0
        let line = "22409 (tmux: server) S 1 22409 22409 0 -1 4194368 411 78 0 0 1 1 0 0 20 0 1 0 202370 6008832 883 18446744073709551615 94";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.comm.as_str(), s.ppid, s.start_ticks),
            ("tmux: server", 1, 202370)
        );
        // a daemon has no terminal: tpgid is -1
        assert_eq!((s.pgrp, s.tty_foreground_pgrp), (22409, None));
        assert!(!s.in_foreground());
    }

    #[test]
    fn malformed_stat_is_none() {
        for bad in [
            "",
            "12",
            "12 (x",
            "x) (",
            "12 (x) S",
            "12 (x) S 1 2 3",
            "a (x) S 1",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn btime_and_wall_start() {
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1796065516\nprocesses 9\n"),
            Some(1796065516)
        );
        assert_eq!(parse_btime("cpu 1 2\n"), None);
        let t = wall_start(48288, 1796065516, 100).unwrap();
        assert_eq!(t.timestamp_millis(), 1_796_065_516_000 + 482_880);
        assert_eq!(wall_start(1, 0, 0), None);
    }

    #[test]
    fn nul_split_drops_the_trailing_empty() {
        assert_eq!(split_nul(b"codex\0resume\0id\0"), ["codex", "resume", "id"]);
        assert!(split_nul(b"").is_empty());
    }

    /// A fake `/proc`: `(pid, ppid, start, state)` rows.
    fn fake(rows: &[(Pid, Pid, u64, char)]) -> (tempfile::TempDir, Procfs) {
        let dir = tempfile::tempdir().unwrap();
        for &(pid, ppid, start, st) in rows {
            let d = dir.path().join(pid.to_string());
            fs::create_dir_all(d.join("fd")).unwrap();
            // fields 5..=21 are 17 zeros here; field 22 is the start
            let stat = format!(
                "{pid} (p{pid}) {st} {ppid}{} {start} 0 0\n",
                " 0".repeat(17)
            );
            fs::write(d.join("stat"), stat).unwrap();
            fs::write(d.join("cmdline"), format!("prog{pid}\0--flag\0")).unwrap();
        }
        fs::write(dir.path().join("stat"), "btime 1000\n").unwrap();
        let p = Procfs::at(dir.path());
        (dir, p)
    }

    #[test]
    fn ancestors_walk_to_init_and_stop_on_cycles() {
        let (_d, p) = fake(&[
            (1, 0, 1, 'S'),
            (10, 1, 5, 'S'),
            (20, 10, 6, 'S'),
            (30, 20, 7, 'S'),
        ]);
        assert_eq!(p.ancestors(30), [20, 10, 1]);
        assert_eq!(p.ancestors(1), Vec::<Pid>::new());
        assert_eq!(p.ancestors(999), Vec::<Pid>::new());
        let (_d, p) = fake(&[(5, 6, 1, 'S'), (6, 5, 1, 'S')]);
        assert_eq!(p.ancestors(5), [6]);
    }

    #[test]
    fn liveness_guards_against_reuse() {
        let (_d, p) = fake(&[(1, 0, 1, 'S'), (42, 1, 500, 'S'), (43, 1, 9, 'Z')]);
        assert_eq!(p.liveness(42, 500), Liveness::Alive);
        assert_eq!(p.liveness(42, 499), Liveness::Reused);
        assert_eq!(p.liveness(43, 9), Liveness::Gone);
        assert_eq!(p.liveness(44, 1), Liveness::Gone);
        assert_eq!(
            Procfs::at("/nonexistent-proc").liveness(1, 1),
            Liveness::Unknown
        );
        assert_eq!(p.start_time(42).unwrap().timestamp(), 1005);
    }

    #[test]
    fn cmdline_cwd_and_open_files_from_a_fake_tree() {
        let (d, p) = fake(&[(1, 0, 1, 'S'), (42, 1, 500, 'S')]);
        assert_eq!(p.cmdline(42).unwrap(), ["prog42", "--flag"]);
        let target = d.path().join("rollout.jsonl");
        fs::write(&target, "").unwrap();
        std::os::unix::fs::symlink(&target, d.path().join("42/fd/7")).unwrap();
        std::os::unix::fs::symlink(d.path(), d.path().join("42/cwd")).unwrap();
        assert_eq!(p.has_open(42, &target), Some(true));
        assert_eq!(p.has_open(1, &target), Some(false));
        assert_eq!(p.has_open(77, &target), None);
        assert_eq!(p.holders_of(&target), [42]);
        assert_eq!(p.cwd(42).unwrap(), d.path());
        assert_eq!(p.cmdline(77), None);
        assert_eq!(p.pids(), [1, 42]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_real_proc_knows_this_process() {
        let p = Procfs::system();
        let me = std::process::id();
        let id = p.identity(me).unwrap();
        assert_eq!(p.liveness(me, id.start_ticks), Liveness::Alive);
        assert_eq!(p.liveness(me, id.start_ticks + 1), Liveness::Reused);
        assert_eq!(
            p.ancestors(me).first(),
            Some(&std::os::unix::process::parent_id())
        );
        assert_eq!(p.cwd(me).unwrap(), std::env::current_dir().unwrap());
        let f = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(p.has_open(me, f.path()), Some(true));
        let started = p.start_time(me).unwrap();
        assert!((Utc::now() - started).num_seconds() < 3600);
    }

    #[test]
    fn the_foreground_group_comes_from_tpgid() {
        let (d, p) = fake(&[(1, 0, 1, 'S')]);
        // a shell (pgrp 40) on a terminal whose foreground job is group 55
        let shell = d.path().join("40");
        fs::create_dir_all(&shell).unwrap();
        fs::write(
            shell.join("stat"),
            format!("40 (bash) S 1 40 40 34816 55{} 77 0 0\n", " 0".repeat(13)),
        )
        .unwrap();
        let st = p.stat(40).unwrap();
        assert_eq!((st.pgrp, st.start_ticks), (40, 77));
        assert_eq!(p.foreground_pgrp(40), Some(55));
        assert!(!st.in_foreground());
        assert_eq!(p.foreground_pgrp(1), None, "no terminal");
        assert_eq!(p.foreground_pgrp(999), None, "no such pid");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn open_descriptors_of_an_inode_are_counted_but_the_excepted_one() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let p = Procfs::system();
        let f = tempfile::NamedTempFile::new().unwrap();
        let meta = f.as_file().metadata().unwrap();
        let me = std::process::id();
        let ours = (me, f.as_file().as_raw_fd() as u32);
        assert_eq!(p.open_count_of_inode(meta.dev(), meta.ino(), ours), Some(0));
        let second = fs::File::open(f.path()).unwrap();
        assert_eq!(p.open_count_of_inode(meta.dev(), meta.ino(), ours), Some(1));
        drop(second);
        assert_eq!(p.open_count_of_inode(meta.dev(), meta.ino(), ours), Some(0));
        let missing = Procfs::at("/nonexistent-proc-root");
        assert_eq!(
            missing.open_count_of_inode(meta.dev(), meta.ino(), ours),
            None
        );
    }
}
