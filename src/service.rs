//! `service install | uninstall | status`: the user service in one command
//! instead of a recipe (issue 20).
//!
//! The unit is the shipped one ([`SYSTEMD_TEMPLATE`], the launchd plist on
//! macOS) with two things filled in that a recipe made the user fix by
//! hand: this binary's absolute path, and the PATH of the shell that runs
//! the command (a resume runs `claude`, `codex`, … by name, and a user
//! manager's own PATH rarely has them). The first line of a written unit
//! carries a checksum of the rest, so a later install can tell a unit it
//! wrote (replaced freely, idempotent) from one the user edited (left
//! alone unless `--force`). Writing is temp → fsync → rename.
//!
//! systemctl is `ZAG_RESUMED_SYSTEMCTL` when set (tests, unusual setups),
//! else `systemctl` on PATH. When no user manager answers (a container, an
//! SSH session without lingering), the unit is still written and the
//! command says so and exits 1: it is installed, not running.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Subcommand;

/// The shipped systemd user unit.
pub const SYSTEMD_TEMPLATE: &str = include_str!("../systemd/zag-resumed.service");
/// The shipped launchd agent.
pub const LAUNCHD_TEMPLATE: &str = include_str!("../config/com.github.zag-resumed.plist");
/// The unit's name.
pub const UNIT: &str = "zag-resumed.service";
/// The launchd agent's label.
pub const LABEL: &str = "com.github.zag-resumed";

const MARK: &str = "zag-resumed-checksum:";

/// `service` subcommands.
#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Write the unit with this binary's absolute path and your shell's
    /// PATH, then enable and start it; says what it did.
    Install {
        /// Print the unit instead of writing it.
        #[arg(long)]
        print: bool,
        /// Overwrite a unit that was edited since it was installed.
        #[arg(long)]
        force: bool,
    },
    /// Stop and disable the service and remove its unit.
    Uninstall {
        /// Remove the unit even if it was edited since it was installed.
        #[arg(long)]
        force: bool,
    },
    /// Whether the unit is installed (and edited), enabled and running.
    Status,
}

/// Why a service command failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{} was changed since `zag-resumed service install` wrote it (or was not written by it); left as it is. `--force` replaces it (local changes belong in a drop-in: `systemctl --user edit zag-resumed`)", path.display())]
    Edited { path: PathBuf },
    #[error("cannot find this binary's path: {0}")]
    Exe(std::io::Error),
    #[error("no home directory (HOME is not set)")]
    NoHome,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// FNV-1a, 64 bits: enough to tell an edited unit from ours (not a
/// security check; the file is the user's own).
fn checksum(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A generated file: the checksum line, then the body.
fn stamped(comment: &str, body: &str) -> String {
    format!("{comment} {MARK} {}\n{body}", checksum(body))
}

/// Whether a file is one we wrote and nobody changed since.
pub fn is_ours_unedited(text: &str) -> bool {
    let Some((first, body)) = text.split_once('\n') else {
        return false;
    };
    first
        .split_once(MARK)
        .is_some_and(|(_, sum)| sum.trim().trim_end_matches("-->").trim() == checksum(body))
}

/// systemd's quoting for a word of ExecStart= (and a value of
/// Environment=): specifiers (`%`) and variables (`$`) taken literally,
/// quotes and backslashes escaped, the whole in double quotes.
fn systemd_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The PATH to give the service: the absolute entries of `path`, in order,
/// once each (a relative entry means nothing to a service).
pub fn service_path(path: &str) -> String {
    let mut seen = Vec::new();
    for p in path.split(':') {
        if p.starts_with('/') && !seen.contains(&p) {
            seen.push(p);
        }
    }
    if seen.is_empty() {
        return "/usr/local/bin:/usr/bin:/bin".into();
    }
    seen.join(":")
}

/// The systemd user unit for `exe`, with `path` as its PATH. Pure.
pub fn systemd_unit(exe: &Path, path: &str) -> String {
    let start = SYSTEMD_TEMPLATE.find("[Unit]").unwrap_or_default();
    let mut body = String::from(
        "# zag-resumed as a systemd user service, written by `zag-resumed service install`\n\
         # with this binary's path and the PATH of the shell that installed it.\n\
         # Local changes belong in a drop-in (`systemctl --user edit zag-resumed`):\n\
         # an edit here makes the next install stop and ask for --force.\n\n",
    );
    for line in SYSTEMD_TEMPLATE[start..].lines() {
        if line.starts_with("ExecStart=") {
            body.push_str(&format!(
                "ExecStart={} run\n",
                systemd_quote(&exe.display().to_string())
            ));
        } else if line.starts_with("Environment=PATH=") {
            body.push_str(&format!(
                "Environment={}\n",
                systemd_quote(&format!("PATH={}", service_path(path)))
            ));
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    stamped("#", &body)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The launchd agent for `exe` in `home`, with `path` as its PATH. Pure.
pub fn launchd_plist(exe: &Path, home: &Path, path: &str) -> String {
    let home = xml_escape(&home.display().to_string());
    let body = LAUNCHD_TEMPLATE
        .replace(
            "<string>@HOME@/.cargo/bin/zag-resumed</string>",
            &format!("<string>{}</string>", xml_escape(&exe.display().to_string())),
        )
        .replace(
            "<string>@HOME@/.local/bin:@HOME@/.cargo/bin:/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin</string>",
            &format!("<string>{}</string>", xml_escape(&service_path(path))),
        )
        .replace("@HOME@", &home);
    // The checksum line must come first; an XML comment before the
    // declaration is not allowed, so it follows it.
    let (decl, rest) = body.split_once('\n').unwrap_or(("", &body));
    let inner = rest.to_string();
    let sum = checksum(&inner);
    format!("{decl} <!-- {MARK} {sum} -->\n{inner}")
}

/// Where things are for this user.
struct Target {
    /// The unit (or plist) file.
    file: PathBuf,
    /// Its text as this binary would write it.
    text: String,
    launchd: bool,
}

fn home() -> Result<PathBuf, ServiceError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or(ServiceError::NoHome)
}

fn target() -> Result<Target, ServiceError> {
    let exe = std::env::current_exe().map_err(ServiceError::Exe)?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let path = std::env::var("PATH").unwrap_or_default();
    let home = home()?;
    if cfg!(target_os = "macos") {
        return Ok(Target {
            file: home
                .join("Library/LaunchAgents")
                .join(format!("{LABEL}.plist")),
            text: launchd_plist(&exe, &home, &path),
            launchd: true,
        });
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    Ok(Target {
        file: config.join("systemd/user").join(UNIT),
        text: systemd_unit(&exe, &path),
        launchd: false,
    })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ServiceError + '_ {
    move |source| ServiceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// temp → fsync → rename → fsync of the directory.
fn write_atomic(path: &Path, text: &str) -> Result<(), ServiceError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The service manager's command line tool and what it said.
struct Manager {
    program: String,
    launchd: bool,
}

impl Manager {
    fn new(launchd: bool) -> Self {
        let program = if launchd {
            "launchctl".to_string()
        } else {
            std::env::var("ZAG_RESUMED_SYSTEMCTL").unwrap_or_else(|_| "systemctl".into())
        };
        Manager { program, launchd }
    }

    /// Run one command: Ok(stdout) or Err(what it said, on one line).
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(&self.program);
        if !self.launchd {
            cmd.arg("--user");
        }
        match cmd.args(args).output() {
            Ok(out) if out.status.success() => {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            }
            Ok(out) => {
                let said = String::from_utf8_lossy(&out.stderr);
                let said = said.trim();
                let said = if said.is_empty() {
                    String::from_utf8_lossy(&out.stdout).trim().to_string()
                } else {
                    said.to_string()
                };
                Err(said.lines().collect::<Vec<_>>().join("; "))
            }
            Err(e) => Err(format!("cannot run {}: {e}", self.program)),
        }
    }

    /// `Err(why)` when no user manager answers.
    fn reachable(&self) -> Result<(), String> {
        if self.launchd {
            let uid = rustix::process::getuid().as_raw();
            return self.run(&["print", &format!("gui/{uid}")]).map(|_| ());
        }
        self.run(&["show-environment"]).map(|_| ())
    }

    fn describe(&self) -> String {
        if self.launchd {
            "launchd".into()
        } else {
            format!("the user systemd ({} --user)", self.program)
        }
    }
}

/// Run a `service` subcommand; prints what it did, returns the exit code.
pub fn main(action: &ServiceAction) -> anyhow::Result<i32> {
    let t = target()?;
    match action {
        ServiceAction::Install { print, force } => {
            if *print {
                print!("{}", t.text);
                return Ok(0);
            }
            install(&t, *force)
        }
        ServiceAction::Uninstall { force } => uninstall(&t, *force),
        ServiceAction::Status => status(&t),
    }
}

fn install(t: &Target, force: bool) -> anyhow::Result<i32> {
    let existing = std::fs::read_to_string(&t.file).ok();
    let changed = existing.as_deref() != Some(t.text.as_str());
    match &existing {
        Some(old) if changed && !is_ours_unedited(old) && !force => {
            return Err(ServiceError::Edited {
                path: t.file.clone(),
            }
            .into())
        }
        _ => {}
    }
    if changed {
        write_atomic(&t.file, &t.text)?;
        println!(
            "{} {}",
            if existing.is_some() {
                "updated"
            } else {
                "wrote"
            },
            t.file.display()
        );
    } else {
        println!("{} is already up to date", t.file.display());
    }
    let m = Manager::new(t.launchd);
    if let Err(why) = m.reachable() {
        eprintln!(
            "zag-resumed: the unit is written but not started: {} is not reachable ({why}). Start it where a user manager runs: {}",
            m.describe(),
            if t.launchd {
                format!("launchctl bootstrap gui/$(id -u) {}", t.file.display())
            } else {
                "systemctl --user daemon-reload && systemctl --user enable --now zag-resumed".into()
            }
        );
        return Ok(1);
    }
    let steps: Vec<Vec<String>> = if t.launchd {
        let uid = rustix::process::getuid().as_raw();
        let file = t.file.display().to_string();
        let mut s = Vec::new();
        if changed {
            // Ignored when not loaded.
            let _ = m.run(&["bootout", &format!("gui/{uid}/{LABEL}")]);
        }
        s.push(vec!["bootstrap".into(), format!("gui/{uid}"), file]);
        s
    } else {
        let mut s = vec![
            vec!["daemon-reload".to_string()],
            vec!["enable".into(), UNIT.into()],
        ];
        // A changed unit of a running service takes effect on a restart;
        // `restart` also starts a stopped one.
        s.push(vec![
            if changed { "restart" } else { "start" }.into(),
            UNIT.into(),
        ]);
        s
    };
    for step in &steps {
        let args: Vec<&str> = step.iter().map(String::as_str).collect();
        match m.run(&args) {
            Ok(_) => println!("ran {} {}", m.program, shown_args(&m, &args)),
            // Already loaded: launchd says so; the agent runs.
            Err(why) if t.launchd && why.contains("already") => {
                println!("{LABEL} is already loaded")
            }
            Err(why) => {
                eprintln!(
                    "zag-resumed: {} {} failed: {why}",
                    m.program,
                    shown_args(&m, &args)
                );
                return Ok(1);
            }
        }
    }
    println!("zag-resumed runs as a user service; `zag-resumed status` shows it");
    Ok(0)
}

fn shown_args(m: &Manager, args: &[&str]) -> String {
    let mut all = Vec::new();
    if !m.launchd {
        all.push("--user");
    }
    all.extend_from_slice(args);
    all.join(" ")
}

fn uninstall(t: &Target, force: bool) -> anyhow::Result<i32> {
    let Ok(existing) = std::fs::read_to_string(&t.file) else {
        println!("not installed ({} does not exist)", t.file.display());
        return Ok(0);
    };
    if !is_ours_unedited(&existing) && !force {
        return Err(ServiceError::Edited {
            path: t.file.clone(),
        }
        .into());
    }
    let m = Manager::new(t.launchd);
    let reachable = m.reachable();
    if reachable.is_ok() {
        let args: Vec<String> = if t.launchd {
            let uid = rustix::process::getuid().as_raw();
            vec!["bootout".into(), format!("gui/{uid}/{LABEL}")]
        } else {
            vec!["disable".into(), "--now".into(), UNIT.into()]
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match m.run(&args) {
            Ok(_) => println!("ran {} {}", m.program, shown_args(&m, &args)),
            Err(why) => eprintln!(
                "zag-resumed: {} {} said: {why}",
                m.program,
                shown_args(&m, &args)
            ),
        }
    }
    std::fs::remove_file(&t.file).map_err(io_err(&t.file))?;
    println!("removed {}", t.file.display());
    match reachable {
        Ok(()) if !t.launchd => {
            let _ = m.run(&["daemon-reload"]);
        }
        Ok(()) => {}
        Err(why) => println!("({} is not reachable: {why})", m.describe()),
    }
    Ok(0)
}

fn status(t: &Target) -> anyhow::Result<i32> {
    let Ok(existing) = std::fs::read_to_string(&t.file) else {
        println!(
            "not installed: {} does not exist (`zag-resumed service install`)",
            t.file.display()
        );
        return Ok(1);
    };
    println!("unit: {}", t.file.display());
    if existing == t.text {
        println!("as `service install` would write it now");
    } else if is_ours_unedited(&existing) {
        println!("written by `service install`, for another binary path or PATH (run it again to update)");
    } else {
        println!("edited since it was installed (or not written by zag-resumed)");
    }
    let m = Manager::new(t.launchd);
    match m.reachable() {
        Err(why) => println!("{} is not reachable: {why}", m.describe()),
        Ok(()) if t.launchd => {
            let uid = rustix::process::getuid().as_raw();
            match m.run(&["print", &format!("gui/{uid}/{LABEL}")]) {
                Ok(_) => println!("loaded in launchd"),
                Err(_) => println!("not loaded in launchd"),
            }
        }
        Ok(()) => {
            let enabled = m.run(&["is-enabled", UNIT]).unwrap_or_else(|e| e);
            let active = m.run(&["is-active", UNIT]).unwrap_or_else(|e| e);
            println!("enabled: {enabled}; active: {active}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_carries_this_binary_and_the_shells_path() {
        let unit = systemd_unit(
            Path::new("/opt/my tools/zag-resumed"),
            "/home/u/.npm-global/bin:relative:/usr/bin:/home/u/.npm-global/bin:/bin",
        );
        assert!(
            unit.contains("\nExecStart=\"/opt/my tools/zag-resumed\" run\n"),
            "{unit}"
        );
        assert!(
            unit.contains("\nEnvironment=\"PATH=/home/u/.npm-global/bin:/usr/bin:/bin\"\n"),
            "{unit}"
        );
        assert!(!unit.contains("%h/.cargo/bin"), "{unit}");
        for kept in [
            "Type=notify",
            "WatchdogSec=60s",
            "RestartPreventExitStatus=3",
            "[Install]",
        ] {
            assert!(unit.contains(kept), "{kept}");
        }
        assert!(is_ours_unedited(&unit));
        let edited = unit.replace("RestartSec=5s", "RestartSec=1s");
        assert!(!is_ours_unedited(&edited));
        assert!(!is_ours_unedited(SYSTEMD_TEMPLATE));
        // Specifiers and variables are taken literally.
        let odd = systemd_unit(Path::new("/x/%h/$HOME/zag-resumed"), "/a%b");
        assert!(
            odd.contains("ExecStart=\"/x/%%h/$$HOME/zag-resumed\" run"),
            "{odd}"
        );
        assert!(odd.contains("Environment=\"PATH=/a%%b\""), "{odd}");
    }

    #[test]
    fn the_plist_carries_this_binary_and_the_shells_path() {
        let plist = launchd_plist(
            Path::new("/Users/u/bin/zag-resumed"),
            Path::new("/Users/u"),
            "/opt/homebrew/bin:/usr/bin",
        );
        assert!(
            plist.contains("<string>/Users/u/bin/zag-resumed</string>"),
            "{plist}"
        );
        assert!(
            plist.contains("<string>/opt/homebrew/bin:/usr/bin</string>"),
            "{plist}"
        );
        assert!(
            plist.contains("/Users/u/Library/Logs/zag-resumed.log"),
            "{plist}"
        );
        assert!(!plist.contains("@HOME@"), "{plist}");
        assert!(plist.starts_with("<?xml"), "{plist}");
        assert!(is_ours_unedited(&plist));
        assert!(!is_ours_unedited(
            &plist.replace("<integer>30</integer>", "<integer>5</integer>")
        ));
    }

    #[test]
    fn service_path_keeps_absolute_entries_once() {
        assert_eq!(service_path("/a:b::/a:/c"), "/a:/c");
        assert_eq!(service_path(""), "/usr/local/bin:/usr/bin:/bin");
    }
}
