//! The command line: argument definitions and one function per command.
//!
//! `main.rs` only parses and calls [`main_with`]; everything here returns an
//! exit code instead of exiting, so the library never calls `process::exit`.
//! Contract (outside checks rely on it): exit 0 ok, 1 runtime error, 2 usage
//! error; errors are one clear line on stderr. `run` adds 3: another daemon
//! already runs for this zag home (systemd's unit does not restart on it).

use clap::{Parser, Subcommand, ValueEnum};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::DaemonConfig;
use crate::detect::Detector;
use crate::paths::Paths;
pub use crate::service::ServiceAction;

#[derive(Debug, Parser)]
#[command(
    name = "zag-resumed",
    version,
    about = "Resumes AI coding-agent sessions when their usage limits reset"
)]
pub struct Cli {
    /// zag's base dir (default: $HOME/.zag).
    #[arg(long, global = true, value_name = "DIR")]
    pub zag_home: Option<PathBuf>,
    /// More log output from zag-resumed itself (-v debug, -vv trace; other
    /// crates stay at info); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log line format on stderr: text for people, json for collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One plain line per event.
    Text,
    /// One JSON object per event.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground.
    ///
    /// It acts on the real ~/.claude, ~/.codex, ~/.gemini, ~/.copilot and
    /// ~/.zag of the user who runs it: at a reset it continues those
    /// sessions for real. `--dry-run` watches the same files and logs what
    /// it would do, doing none of it.
    Run {
        #[arg(
            long,
            value_name = "FILE",
            help = "The daemon's config file (default: <zag-home>/resumed/config.toml, optional)"
        )]
        config: Option<PathBuf>,
        /// Watch, detect, plan and log each decision ("would type into
        /// pane …", "would run …", "would stand down for …") and answer
        /// `status`/`list`, but write no store record, type nothing and
        /// start nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Pending resumes across every store, soonest first.
    List {
        /// Print JSON (one array of pending resumes) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a pending resume (through the daemon, or in its store).
    ///
    /// `retry <INCIDENT_ID>` undoes it.
    Cancel {
        /// The incident to cancel: its id as `status`, `list` and `history`
        /// show it (8 characters), or any unique prefix of at least 4
        /// characters.
        #[arg(value_name = "INCIDENT_ID")]
        incident_id: String,
        /// Print zag's JSON confirmation instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Deliver a pending resume now, through the daemon's normal path and
    /// its checks (recorded in the store; without a daemon, the next start
    /// delivers it).
    #[command(name = "resume-now")]
    ResumeNow {
        /// The pending incident: its id, or any unique prefix of it of at
        /// least 4 characters (the short id `status`, `list` and `history`
        /// show).
        #[arg(value_name = "INCIDENT_ID")]
        incident_id: String,
        /// Send this instead of the configured message (one line, no
        /// control characters).
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        message: Option<String>,
        /// Print a JSON object (action, incident_id, when, store,
        /// daemon_running) instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Give a failed (or skipped) incident one more delivery, as a new
    /// incident chained to it, due now; or restore a cancelled one, due
    /// when it was due (refused while its session already has a pending
    /// resume).
    Retry {
        /// The failed, skipped or cancelled incident: its id, or any unique
        /// prefix of it of at least 4 characters.
        #[arg(value_name = "INCIDENT_ID")]
        incident_id: String,
        /// Deliver even if the session moved on since the limit (this
        /// retry only; recorded as forced). The other checks still apply.
        #[arg(long)]
        force: bool,
        /// Print a JSON object (action, incident_id of the new incident,
        /// retry_of, when, store, daemon_running) instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Say what a pending incident sends at its resume, instead of the
    /// configured message (recorded in the store, where zag reads it too).
    Message {
        /// The pending incident: its id, or any unique prefix of it of at
        /// least 4 characters.
        #[arg(value_name = "INCIDENT_ID")]
        incident_id: String,
        /// The message: one line, no control characters, at most 2048 bytes
        /// (it may start with `-`: it is never read as an option).
        #[arg(value_name = "TEXT", allow_hyphen_values = true)]
        text: String,
        /// Print a JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Deliver no resume until `unpause` (or until WHEN); detection and
    /// scheduling go on, and what falls due waits. Survives restarts.
    Pause {
        /// When the pause ends by itself: an RFC 3339 time
        /// (2030-01-06T08:00:00Z) or a span ahead (90m, 8h, 2d, 1w).
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Print a JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// End a pause: held resumes go out with the usual stagger (a session
    /// that moved on meanwhile is skipped).
    Unpause {
        /// Print a JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Install, remove or check the zag-resumed user service (systemd; a
    /// launchd agent on macOS).
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// What happened to each incident: hit, schedule, outcome (from the stores).
    History {
        /// Print JSON (one array of incidents) instead of text.
        #[arg(long)]
        json: bool,
        /// Only incidents active since then: an RFC 3339 time
        /// (2030-01-01T08:00:00Z) or a span back from now (90m, 2h, 3d, 1w).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
    /// Run the detectors over existing files and print each detection.
    ///
    /// Each FILE is read as the daemon would read it (its kind guessed from
    /// its path, e.g. `logs/sessions/*.jsonl` is a zag session log); times
    /// in lines without a timestamp of their own are anchored on the file's
    /// last write. Files are scanned in parallel; output keeps argument
    /// order. When nothing is found a one-line summary goes to stderr. A
    /// directory, binary or unreadable file is reported on stderr and makes
    /// the exit code 1; the other files are still scanned. With `--plan`,
    /// each detection also says what the daemon would do now (which
    /// session, when, and how: relay FIFO, respawn argv and cwd, typing
    /// into a live pane, or why not), doing none of it.
    Scan {
        /// Print one JSON object per detection (file, line, provider, scope,
        /// reset_at, raw, source, session identity) instead of text lines.
        #[arg(long)]
        json: bool,
        /// Also preview what the daemon would do with each detection
        /// (session, due time, channel or respawn argv), writing nothing
        /// and starting nothing; with `--json`, as a `plan` object.
        #[arg(long)]
        plan: bool,
        /// Log files to scan; `-` reads standard input (anchored on now).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// What the running daemon is doing.
    Status {
        /// Print the daemon's status snapshot as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start the daemon in the background unless it runs; return once it answers.
    Ensure {
        /// Config file for a daemon this call starts.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// How long to wait for the daemon to answer, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout_secs: u64,
    },
    /// Stop the running daemon gracefully.
    Stop {
        /// How long to wait for it to exit, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 15)]
        timeout_secs: u64,
    },
    /// Re-read the daemon's configuration.
    Reload,
    /// Follow incident events (hit, scheduled, resumed, failed, cancelled).
    Subscribe {
        /// Print each event as one JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Parse arguments, run the command, return the process exit code.
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    init_tracing(cli.verbose, cli.log_format);
    let zag_home = cli.zag_home.map(absolute);
    let paths = Paths::from_env(zag_home.as_deref());
    let result = match cli.command {
        Command::Run { config, dry_run } => run(paths, config, dry_run),
        Command::Service { action } => crate::service::main(&action),
        Command::Scan { json, plan, files } => {
            if plan {
                scan_plan(paths, &files, json)
            } else {
                scan(&files, json)
            }
        }
        command => client(&paths, zag_home.as_deref(), command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zag-resumed: {}", one_line(&e));
            1
        }
    }
}

/// An error and its causes on one line: a cause the message already
/// includes is not repeated, and multi-line texts (a TOML parser's caret
/// diagram) are folded.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn absolute(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

/// The commands that talk to a running daemon (or read the stores).
fn client(paths: &Paths, zag_home: Option<&Path>, command: Command) -> anyhow::Result<i32> {
    use crate::control::{commands, ensure};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut out = std::io::stdout().lock();
        match command {
            Command::List { json } => write!(out, "{}", commands::list(paths, json).await?)?,
            Command::Cancel { incident_id, json } => write!(
                out,
                "{}",
                commands::cancel(paths, &incident_id, json, SystemClock.now()).await?
            )?,
            Command::ResumeNow {
                incident_id,
                message,
                json,
            } => write!(
                out,
                "{}",
                commands::steer(
                    paths,
                    commands::Steer::ResumeNow { message },
                    &incident_id,
                    json,
                    SystemClock.now()
                )
                .await?
            )?,
            Command::Retry {
                incident_id,
                force,
                json,
            } => write!(
                out,
                "{}",
                commands::steer(
                    paths,
                    commands::Steer::Retry { force },
                    &incident_id,
                    json,
                    SystemClock.now()
                )
                .await?
            )?,
            Command::Message {
                incident_id,
                text,
                json,
            } => write!(
                out,
                "{}",
                commands::steer(
                    paths,
                    commands::Steer::Message(text),
                    &incident_id,
                    json,
                    SystemClock.now()
                )
                .await?
            )?,
            Command::Pause { until, json } => {
                let until = until
                    .map(|u| crate::control::pause::parse_until(&u, SystemClock.now()))
                    .transpose()?;
                write!(
                    out,
                    "{}",
                    commands::pause(paths, until, json, SystemClock.now()).await?
                )?
            }
            Command::Unpause { json } => write!(out, "{}", commands::unpause(paths, json).await?)?,
            Command::Status { json } => write!(out, "{}", commands::status(paths, json).await?)?,
            Command::Reload => writeln!(out, "{}", commands::reload(paths).await?)?,
            Command::Subscribe { json } => {
                let end = commands::subscribe(paths, json, |line| {
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                })
                .await?;
                // The stream only ends when something went away: say which,
                // and fail, so a supervising script notices.
                eprintln!("zag-resumed: {end}");
                return Ok(1);
            }
            Command::History { json, since } => {
                let now = SystemClock.now();
                let since = since
                    .map(|s| crate::control::history::parse_since(&s, now))
                    .transpose()
                    .map_err(anyhow::Error::msg)?;
                write!(out, "{}", commands::history(paths, json, since, now)?)?
            }
            Command::Ensure {
                config,
                timeout_secs,
            } => {
                let exe = std::env::current_exe()?;
                let mut run_args = Vec::new();
                if let Some(home) = zag_home {
                    run_args.extend(["--zag-home".into(), home.as_os_str().to_owned()]);
                }
                if let Some(c) = config {
                    run_args.extend(["--config".into(), absolute(c).into_os_string()]);
                }
                let outcome =
                    ensure::ensure(paths, &exe, &run_args, Duration::from_secs(timeout_secs))
                        .await?;
                match outcome {
                    ensure::EnsureOutcome::AlreadyRunning { pid } => {
                        writeln!(out, "zag-resumed is running (pid {pid})")?
                    }
                    ensure::EnsureOutcome::Started { pid } => {
                        writeln!(out, "zag-resumed started (pid {pid})")?
                    }
                }
            }
            Command::Stop { timeout_secs } => {
                match commands::stop(paths, Duration::from_secs(timeout_secs)).await? {
                    commands::StopOutcome::Stopped { pid } => {
                        writeln!(out, "zag-resumed stopped (pid {pid})")?
                    }
                    commands::StopOutcome::NotRunning => {
                        writeln!(out, "zag-resumed is not running")?
                    }
                    commands::StopOutcome::StillStopping { pid } => {
                        anyhow::bail!(
                            "zag-resumed (pid {pid}) acknowledged the stop but is still draining"
                        )
                    }
                }
            }
            Command::Run { .. } | Command::Scan { .. } | Command::Service { .. } => {
                unreachable!("handled by main_with")
            }
        }
        Ok(0)
    })
}

/// The log filter for `-v` counts: more detail from this crate only, so
/// `-vv` shows our trace lines and not every dependency's.
pub fn default_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "info",
        1 => "info,zag_resumed=debug",
        _ => "info,zag_resumed=trace",
    }
}

fn init_tracing(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

fn run(mut paths: Paths, config: Option<PathBuf>, dry_run: bool) -> anyhow::Result<i32> {
    crate::daemon::use_small_pages();
    let cfg = DaemonConfig::load(config.as_deref(), &paths.state_dir.join("config.toml"))?;
    cfg.apply_dirs(&mut paths);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let (req_tx, req_rx) = tokio::sync::mpsc::channel(64);
        spawn_signal_handler(shutdown.clone(), req_tx.clone())?;
        let opts = crate::daemon::Options {
            paths,
            config: cfg,
            config_path: config,
            clock: Arc::new(SystemClock),
            search_path: None,
            dry_run,
        };
        match crate::daemon::run(opts, req_rx, shutdown).await {
            Ok(()) => Ok(0),
            // Its own exit status, so a service manager can tell "already
            // running" (nothing to restart) from a failure.
            Err(crate::daemon::DaemonError::AlreadyRunning(
                e @ crate::lock::LockError::Held { .. },
            )) => {
                eprintln!("zag-resumed: {}", one_line(&e.into()));
                Ok(crate::lock::EXIT_ALREADY_RUNNING)
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// SIGTERM/SIGINT stop the daemon gracefully; SIGHUP reloads its config.
fn spawn_signal_handler(
    shutdown: CancellationToken,
    requests: tokio::sync::mpsc::Sender<crate::control::DaemonRequest>,
) -> std::io::Result<()> {
    use futures_util::StreamExt;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    tokio::spawn(async move {
        while let Some(sig) = signals.next().await {
            if sig == SIGHUP {
                let (tx, rx) = tokio::sync::oneshot::channel();
                if requests
                    .send(crate::control::DaemonRequest::Reload(tx))
                    .await
                    .is_ok()
                {
                    match rx.await {
                        Ok(Ok(msg)) => tracing::info!("SIGHUP: {msg}"),
                        Ok(Err(e)) => tracing::error!(
                            "SIGHUP: reload failed, keeping the old configuration: {e}"
                        ),
                        Err(_) => {}
                    }
                }
            } else {
                tracing::info!("signal {sig}: shutting down");
                shutdown.cancel();
            }
        }
    });
    Ok(())
}

fn scan_plan(paths: Paths, files: &[PathBuf], json: bool) -> anyhow::Result<i32> {
    let (mut px, note) = crate::preview::PreviewEnv::load(paths.clone(), SystemClock.now());
    let mut err = std::io::stderr().lock();
    if let Some(note) = note {
        let _ = writeln!(err, "zag-resumed: {note}");
    }
    // The daemon runs the CLIs with its own PATH: ask it where they are.
    match daemon_binaries(&paths) {
        Ok(found) => px.daemon_binaries = Some(found),
        Err(why) => {
            let _ = writeln!(
                err,
                "zag-resumed: {why}: provider CLIs looked up with this shell's PATH (a service's PATH may differ)"
            );
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let summary = crate::preview::plan_inputs(files, &px, json, &mut out, &mut err)?;
    if let Some(line) = crate::scan_files::empty_summary(files, &summary) {
        let _ = writeln!(err, "zag-resumed: {line}");
    }
    Ok(summary.exit_code())
}

/// The provider CLIs as a running daemon resolves them, or why not.
fn daemon_binaries(paths: &Paths) -> Result<Vec<crate::control::BinaryView>, String> {
    use crate::control::protocol::{Op, Request};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut c = match crate::control::client::Client::connect_paths(
            paths,
            crate::control::commands::ROUND_TRIP,
        )
        .await
        {
            Ok(c) => c,
            Err(e) if e.is_not_running() => return Err("no daemon runs".to_string()),
            Err(e) => return Err(format!("the daemon did not answer ({e})")),
        };
        c.call(&Request::new(Op::Binaries))
            .await
            .map_err(|e| format!("the daemon did not say where the CLIs are ({e})"))
    })
}

fn scan(files: &[PathBuf], json: bool) -> anyhow::Result<i32> {
    let (detector, invalid) = Detector::new([]);
    for bad in invalid {
        eprintln!("zag-resumed: invalid extra pattern skipped: {bad}");
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut err = std::io::stderr().lock();
    let summary = crate::scan_files::scan_inputs(
        files,
        &detector,
        json,
        threads,
        SystemClock.now(),
        &mut out,
        &mut err,
    )?;
    if let Some(line) = crate::scan_files::empty_summary(files, &summary) {
        let _ = writeln!(err, "zag-resumed: {line}");
    }
    Ok(summary.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_on_one_line_without_repeating_their_cause() {
        let io = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        );
        let e = anyhow::Error::from(crate::config::ConfigError::Read {
            path: "x.toml".into(),
            source: io,
        });
        assert_eq!(
            one_line(&e),
            "cannot read x.toml: No such file or directory (os error 2)"
        );
        let toml = crate::config::DaemonConfig::parse("[resume\n", std::path::Path::new("c.toml"))
            .unwrap_err();
        let line = one_line(&toml.into());
        assert!(
            !line.contains('\n') && line.starts_with("invalid config c.toml"),
            "{line}"
        );
        let ctx = anyhow::anyhow!("inner cause").context("outer");
        assert_eq!(one_line(&ctx), "outer: inner cause");
    }
}
