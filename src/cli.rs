//! The command line: argument definitions and one function per command.
//!
//! `main.rs` only parses and calls [`main_with`]; everything here returns an
//! exit code instead of exiting, so the library never calls `process::exit`.
//! Contract (outside checks rely on it): exit 0 ok, 1 runtime error, 2 usage
//! error; errors are one clear line on stderr.

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{DaemonConfig, UsageLimits};
use crate::control::PendingView;
use crate::detect::{Detector, LineContext, SourceKind};
use crate::paths::Paths;
use crate::store::{discover_stores, Record};

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
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground.
    Run {
        /// The daemon's config file (default: <zag-home>/resumed/config.toml, optional).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Pending resumes across every store, soonest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Cancel a pending resume.
    Cancel { incident_id: String },
    /// Run the detectors over existing files and print each detection.
    Scan {
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
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
    let paths = Paths::from_env(cli.zag_home.as_deref());
    let result = match cli.command {
        Command::Run { config } => run(paths, config),
        Command::List { json } => list(&paths, json),
        Command::Cancel { incident_id } => cancel(&paths, &incident_id),
        Command::Scan { json, files } => scan(&files, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zag-resumed: {e:#}");
            1
        }
    }
}

fn init_tracing(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

fn run(mut paths: Paths, config: Option<PathBuf>) -> anyhow::Result<i32> {
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
        };
        crate::daemon::run(opts, req_rx, shutdown).await?;
        Ok(0)
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

/// Every pending record in every store, soonest first (read from disk: the
/// stores are the truth, whether or not a daemon runs).
pub fn pending_from_disk(paths: &Paths) -> Vec<PendingView> {
    let mut out = Vec::new();
    for store in discover_stores(&paths.zag_home) {
        match store.load() {
            Ok(r) => out.extend(r.pending_sorted().into_iter().map(|s| PendingView {
                incident_id: s.incident_id.clone(),
                provider: s.provider.clone(),
                session_id: s.session_id.clone(),
                when: s.when,
                attempt: s.attempt,
                store: store.path.display().to_string(),
                scope: s.scope.clone(),
                cwd: s.cwd.clone(),
                origin: s.origin.clone(),
            })),
            Err(e) => eprintln!("zag-resumed: cannot read {}: {e}", store.path.display()),
        }
    }
    out.sort_by(|a, b| {
        a.when
            .cmp(&b.when)
            .then_with(|| a.incident_id.cmp(&b.incident_id))
    });
    out
}

fn list(paths: &Paths, json: bool) -> anyhow::Result<i32> {
    let pending = pending_from_disk(paths);
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&pending)?)?;
    } else if pending.is_empty() {
        writeln!(out, "No pending resumes.")?;
    } else {
        writeln!(
            out,
            "{:<36}  {:<8}  {:<20}  {:>7}  SESSION",
            "INCIDENT", "PROVIDER", "WAKES AT (UTC)", "ATTEMPT"
        )?;
        for p in &pending {
            writeln!(
                out,
                "{:<36}  {:<8}  {:<20}  {:>7}  {}",
                p.incident_id,
                p.provider,
                p.when.format("%Y-%m-%d %H:%M:%S"),
                p.attempt,
                p.session_id
            )?;
        }
    }
    Ok(0)
}

fn cancel(paths: &Paths, id: &str) -> anyhow::Result<i32> {
    for store in discover_stores(&paths.zag_home) {
        let replay = store.load()?;
        if replay.pending.contains_key(id) {
            store.append(&Record::Cancel {
                incident_id: id.to_string(),
            })?;
            println!("Cancelled {id} ({})", store.path.display());
            return Ok(0);
        }
    }
    anyhow::bail!("no pending resume with incident id {id}")
}

fn scan(files: &[PathBuf], json: bool) -> anyhow::Result<i32> {
    let (detector, invalid) = Detector::new(&UsageLimits::default());
    for bad in invalid {
        eprintln!("zag-resumed: invalid extra pattern skipped: {bad}");
    }
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for file in files {
        if let Err(e) = scan_file(file, &detector, json, &mut out) {
            eprintln!("zag-resumed: cannot scan {}: {e}", file.display());
            failed = true;
        }
    }
    Ok(i32::from(failed))
}

fn scan_file(
    file: &Path,
    detector: &Detector,
    json: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let f = std::fs::File::open(file)?;
    let anchor: DateTime<Utc> = f
        .metadata()?
        .modified()
        .map(Into::into)
        .unwrap_or_else(|_| SystemClock.now());
    let source = SourceKind::Unknown;
    let ctx = LineContext {
        source,
        provider_hint: None,
        anchor,
    };
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, f);
    let mut splitter = crate::tail::LineSplitter::new(1 << 20);
    let mut line_no = 0u64;
    let mut hits = Vec::new();
    loop {
        let buf = std::io::BufRead::fill_buf(&mut reader)?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        splitter.feed(buf, |l| {
            line_no += 1;
            if let Some(d) = detector.detect(l.bytes, &ctx) {
                hits.push((line_no, d));
            }
        });
        std::io::BufRead::consume(&mut reader, n);
        for (line, d) in hits.drain(..) {
            if json {
                let v = json!({
                    "file": file.display().to_string(),
                    "line": line,
                    "provider": d.provider,
                    "scope": d.scope,
                    "reset_at": d.reset_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    "raw": d.raw,
                    "source": source.as_str(),
                    "provider_session_id": d.provider_session_id,
                    "wrapper_session_id": d.wrapper_session_id,
                    "cwd": d.cwd,
                    "line_ts": d.line_ts.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                });
                writeln!(out, "{v}")?;
            } else {
                let reset = d.reset_at.map_or_else(
                    || "no reset time".to_string(),
                    |t| {
                        format!(
                            "resets {}",
                            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        )
                    },
                );
                writeln!(
                    out,
                    "{}:{}: {} {} ({reset}): {}",
                    file.display(),
                    line,
                    d.provider,
                    d.scope.describe(),
                    d.raw
                )?;
            }
        }
    }
    Ok(())
}
