//! `scan --plan`: what the daemon would do now with each limit a scan
//! finds, decided by the daemon's own functions and carried out by none.
//!
//! Why a module of its own: a newcomer (issue 14) asks "if the daemon saw
//! this line, what would it resume, when and how?" The answer must be the
//! daemon's answer, so every step is the real one, run dry: the file's
//! session facts from the same [`SessionTracker`], the project and its
//! `[usage_limits]` by [`plan::project_of`], the incident by
//! [`plan::plan_hit`] and [`plan::settle`], the channel by
//! [`resume::resolve_target`], a live owner by [`resume::live::route_now`] (through [`resume::dry`]) (reads
//! `/proc` and tmux panes, types nothing) and the argv by the provider's
//! own `resume_args`. Nothing is written: no store, no zag-log line, no
//! process started.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::{DaemonConfig, UsageLimits};
use crate::daemon::{plan, project_for_cwd};
use crate::detect::{infer_source, scan_reader_buf, Detection, Detector, LineContext, SourceKind};
use crate::paths::Paths;
use crate::resume::{self, respawn, Channel, ResumeEnv};
use crate::session::SessionTracker;

/// What the daemon would do with one detection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Preview {
    pub provider: String,
    pub session_id: Option<String>,
    pub cwd: Option<String>,
    pub project: PathBuf,
    pub store: Option<PathBuf>,
    /// When the resume would fire, and whether the fallback wait set it.
    pub due: Option<DateTime<Utc>>,
    pub fallback_used: bool,
    /// Set when no wait lifts the limit: what the user must do (nothing is
    /// scheduled, `due` stays empty).
    pub needs_user: Option<String>,
    /// A note on the limits used (a project config that failed to load).
    pub limits_note: Option<String>,
    /// `fifo`, `respawn`, `type`, `wait` or `none`.
    pub channel: &'static str,
    /// For humans: the channel's detail or why nothing would be done.
    pub how: String,
    pub fifo: Option<PathBuf>,
    /// The respawn's program and arguments, and its working directory.
    pub argv: Option<Vec<String>>,
    pub run_cwd: Option<PathBuf>,
    /// The permission mode in force at the limit (`None`: none recorded,
    /// the provider's default).
    pub permission_mode: Option<String>,
    /// The user's own message of the incident already pending for this
    /// limit (`zag-resumed message`), which the delivery sends instead.
    pub message: Option<String>,
}

/// Everything a preview looks things up with.
pub struct PreviewEnv {
    pub paths: Paths,
    pub env: ResumeEnv,
    pub now: DateTime<Utc>,
    /// The provider CLIs as the running daemon resolves them (its PATH and
    /// `[binaries]`); `None`: looked up here, with this process's PATH.
    pub daemon_binaries: Option<Vec<crate::control::BinaryView>>,
}

impl PreviewEnv {
    /// The daemon's paths and its config (`config.toml` in its state dir,
    /// or defaults when it has none or it does not parse).
    pub fn load(mut paths: Paths, now: DateTime<Utc>) -> (Self, Option<String>) {
        let (cfg, note) = match DaemonConfig::load(None, &paths.state_dir.join("config.toml")) {
            Ok(c) => (c, None),
            Err(e) => (
                DaemonConfig::default(),
                Some(format!("{e}; using defaults")),
            ),
        };
        cfg.apply_dirs(&mut paths);
        let env = ResumeEnv::new(
            paths.clone(),
            cfg.resume.clone(),
            cfg.binaries.clone(),
            Detector::default(),
        );
        (
            PreviewEnv {
                paths,
                env,
                now,
                daemon_binaries: None,
            },
            note,
        )
    }
}

/// The limits of a project as the daemon loads them, with a note when its
/// `zag.toml` could not be read and zag's defaults stand in.
fn limits_of(project: &Path) -> (UsageLimits, Option<String>) {
    match UsageLimits::load_for_project(project) {
        Ok(l) => (l, None),
        Err(e) => (
            UsageLimits::default(),
            Some(format!("{e}; using zag's defaults")),
        ),
    }
}

/// Scan one file and preview each detection: `(line, detection, preview)`.
pub fn preview_file(
    file: &Path,
    px: &PreviewEnv,
) -> Result<Vec<(u64, SourceKind, Detection, Preview)>, crate::scan_files::ScanError> {
    use crate::scan_files::ScanError;
    let meta = std::fs::metadata(file)?;
    if meta.is_dir() {
        return Err(ScanError::Directory);
    }
    if !meta.is_file() {
        return Err(ScanError::NotRegular);
    }
    let bytes = std::fs::read(file)?;
    if memchr::memchr(0, &bytes[..bytes.len().min(64 * 1024)]).is_some() {
        return Err(ScanError::Binary);
    }
    let source = infer_source(file);
    // The file's session facts, as the daemon's tracker folds them.
    let mut tracker = SessionTracker::for_file(file, source);
    for line in bytes.split(|&b| b == b'\n') {
        tracker.observe(line);
    }
    let paths = &px.paths;
    let project = plan::project_of(paths, &tracker.identity, |c| project_for_cwd(paths, c));
    let (limits, _) = limits_of(&project);
    let (detector, _) = Detector::new(limits.extra_patterns());
    let anchor: DateTime<Utc> = meta.modified().map(Into::into).unwrap_or(px.now);
    let ctx = LineContext {
        source,
        provider_hint: source.native_provider(),
        anchor,
    };
    let mut hits = Vec::new();
    let mut buf = Vec::new();
    scan_reader_buf(
        io::Cursor::new(&bytes),
        &ctx,
        &detector,
        &mut buf,
        |line, d| hits.push((line, d)),
    )?;
    Ok(hits
        .into_iter()
        .map(|(line, d)| {
            let p = preview_one(&d, file, source, &tracker, px);
            (line, source, d, p)
        })
        .collect())
}

/// The daemon's decisions for one detection, dry.
pub fn preview_one(
    d: &Detection,
    file: &Path,
    source: SourceKind,
    tracker: &SessionTracker,
    px: &PreviewEnv,
) -> Preview {
    let paths = &px.paths;
    let session = plan::session_of(d, file, source, &tracker.identity, None);
    let project = plan::project_of(paths, &session, |c| project_for_cwd(paths, c));
    let (limits, limits_note) = limits_of(&project);
    let mut p = Preview {
        provider: d.provider.to_string(),
        session_id: session.display_id().map(str::to_string),
        cwd: session.cwd.clone(),
        project: project.clone(),
        limits_note,
        channel: "none",
        ..Preview::default()
    };
    let facts = plan::HitFacts {
        detection: d,
        file,
        source,
        session: &session,
        project: &project,
        attempt: 1,
        chain: None,
    };
    let mut c = match plan::plan_hit(&facts, &limits, px.now) {
        plan::HitPlan::OwnedByScheduler => {
            p.how = "nothing: the line names its scheduled resume, zag's scheduler owns it".into();
            return p;
        }
        plan::HitPlan::Disabled { .. } => {
            p.how = format!(
                "nothing: auto-resume is disabled for {} in {}",
                d.provider,
                project.join("zag.toml").display()
            );
            return p;
        }
        plan::HitPlan::Seen(c) => *c,
    };
    // The incident may be pending already, with the user's own message.
    if let Some(pending) = crate::store::StoreFile::new(c.store.as_ref())
        .load()
        .ok()
        .and_then(|r| r.pending.get(&c.schedule.incident_id).cloned())
        .filter(|s| s.has_custom_message())
    {
        let s = std::sync::Arc::make_mut(&mut c.schedule);
        s.message.clone_from(&pending.message);
        s.custom_message = Some(true);
        p.message = Some(pending.message.clone());
    }
    p.store = Some(c.store.to_path_buf());
    if let Some(what) = resume::needs_user_what(&c.schedule) {
        p.how = format!(
            "nothing scheduled: no wait lifts this limit; recorded as needing you ({what}), then `zag-resumed retry <id>`"
        );
        p.needs_user = Some(what);
        return p;
    }
    p.due = Some(c.schedule.when);
    p.fallback_used = c.schedule.fallback_used.unwrap_or(false);
    // The whole file's last mode is not the mode at this limit: the
    // resolve reads it back from the limit, as the daemon does.
    std::sync::Arc::make_mut(&mut c.schedule).permission_mode = None;
    let resolved = resume::resolve_target(&c.schedule, &px.env);
    plan::settle(&mut c, resolved.as_ref().ok());
    p.permission_mode = c.schedule.permission_mode.clone();
    p.session_id = c
        .schedule
        .provider_session_id
        .clone()
        .or(p.session_id.take());
    p.cwd = c.schedule.cwd.clone();
    let t = match resolved {
        Ok(t) => t,
        Err(why) => {
            p.how = format!("nothing: the session cannot be resolved: {why}");
            return p;
        }
    };
    match &t.channel {
        Channel::Fifo { path } => {
            p.channel = "fifo";
            p.fifo = Some(path.clone());
            p.how = format!("write the message into zag's relay FIFO {}", path.display());
        }
        Channel::Respawn => {
            let find = |provider| program_for(provider, px);
            let d = resume::dry::how_respawn(&t, &c.schedule, &px.env, px.now, &find);
            p.channel = d.channel;
            p.how = d.how;
            p.argv = d.argv;
            p.run_cwd = d.run_cwd;
        }
    }
    p
}

/// Where a provider CLI is: as the running daemon said, else looked up here.
fn program_for(provider: crate::detect::Provider, px: &PreviewEnv) -> Result<PathBuf, String> {
    match &px.daemon_binaries {
        Some(found) => {
            let said = found.iter().find(|b| b.provider == provider.as_str());
            said.and_then(|b| b.path.clone().map(PathBuf::from))
                .ok_or_else(|| {
                    said.and_then(|b| b.error.clone())
                        .unwrap_or_else(|| format!("the daemon did not say where {provider} is"))
                })
        }
        None => respawn::find_binary(provider, &px.env.binaries, px.env.search_path.as_ref())
            .map_err(|e| e.to_string()),
    }
}

fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The `plan` object of `--json`.
pub fn plan_json(p: &Preview) -> Value {
    json!({
        "provider": p.provider,
        "session_id": p.session_id,
        "cwd": p.cwd,
        "project": p.project.display().to_string(),
        "store": p.store.as_ref().map(|s| s.display().to_string()),
        "due": p.due.map(secs),
        "fallback_used": p.fallback_used,
        "needs_user": p.needs_user,
        "limits_note": p.limits_note,
        "channel": p.channel,
        "how": p.how,
        "fifo": p.fifo.as_ref().map(|f| f.display().to_string()),
        "argv": p.argv,
        "run_cwd": p.run_cwd.as_ref().map(|c| c.display().to_string()),
        "permission_mode": p.permission_mode,
        "message": p.message,
    })
}

/// The text block of a preview (after the scan's own line).
pub fn plan_text(p: &Preview) -> String {
    let mut s = format!(
        "  session: {} {} (cwd {}), project {}",
        p.provider,
        p.session_id.as_deref().unwrap_or("unknown"),
        p.cwd.as_deref().unwrap_or("unknown"),
        p.project.display()
    );
    if let Some(store) = &p.store {
        s.push_str(&format!(", store {}", store.display()));
    }
    s.push('\n');
    if let Some(what) = &p.needs_user {
        s.push_str(&format!(
            "  when: never (no wait lifts this limit: {what})\n"
        ));
    }
    if let Some(due) = p.due {
        let why = if p.fallback_used {
            "no reset time: the fallback wait of [usage_limits]"
        } else {
            "the reset time by [usage_limits]"
        };
        s.push_str(&format!("  when: {} ({why})\n", secs(due)));
    }
    if let Some(note) = &p.limits_note {
        s.push_str(&format!("  limits: {note}\n"));
    }
    // The power the resume would run with: the mode in force at the limit,
    // or, for a command that would run without one, the provider's default.
    if p.permission_mode.is_some() || p.argv.is_some() {
        if let Some(m) =
            crate::control::render::mode_words(&p.provider, p.permission_mode.as_deref())
        {
            s.push_str(&format!("  power: {m}\n"));
        }
    }
    if let Some(m) = &p.message {
        s.push_str(&format!(
            "  message: {m:?} (set with `zag-resumed message`)\n"
        ));
    }
    s.push_str(&format!("  how: {}\n", p.how));
    s
}

/// `scan --plan`: files in argument order, one block (or JSON object) per
/// detection. Returns the scan's summary (for the exit code).
pub fn plan_inputs(
    inputs: &[PathBuf],
    px: &PreviewEnv,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<crate::scan_files::Summary> {
    let mut summary = crate::scan_files::Summary::default();
    for input in inputs {
        if input.as_os_str() == "-" {
            summary.failed += 1;
            writeln!(
                err,
                "zag-resumed: cannot plan standard input: --plan needs the session's file"
            )?;
            continue;
        }
        let name = input.display().to_string();
        match preview_file(input, px) {
            Ok(hits) => {
                summary.scanned += 1;
                for (line, source, d, p) in hits {
                    summary.hits += 1;
                    let mut v = crate::scan_files::fields(&name, line, source, &d);
                    if json {
                        v["plan"] = plan_json(&p);
                        writeln!(out, "{v}")?;
                    } else {
                        let mut b = Vec::new();
                        crate::scan_files::render(&mut b, &name, line, source, &d, false);
                        out.write_all(&b)?;
                        out.write_all(plan_text(&p).as_bytes())?;
                    }
                }
            }
            Err(e) => {
                summary.failed += 1;
                writeln!(err, "zag-resumed: cannot scan {name}: {e}")?;
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resume::dry::shell_words;

    #[test]
    fn arguments_with_spaces_or_quotes_are_quoted_once() {
        let argv: Vec<String> = ["claude", "-p", "--", "Continue please", "it's", ""]
            .map(String::from)
            .to_vec();
        assert_eq!(
            shell_words(&argv),
            r#"claude -p -- 'Continue please' "it's" ''"#
        );
        assert_eq!(shlex::split(&shell_words(&argv)).unwrap(), argv);
    }

    #[test]
    fn shell_metacharacters_are_quoted_so_the_line_reads_back_as_the_argv() {
        // The old quoting only looked for spaces and `'`: `$(...)`, backticks,
        // `;` and `|` passed bare into a line shown as "run …".
        let argv: Vec<String> = [
            "codex",
            "resume",
            "$(rm -rf ~)",
            "`id`",
            "a;b",
            "x|y",
            "$HOME",
            "*",
            "plain-arg_1.2/x:y@z",
        ]
        .map(String::from)
        .to_vec();
        let line = shell_words(&argv);
        assert_eq!(shlex::split(&line).unwrap(), argv, "{line}");
        assert!(line.starts_with("codex resume "), "{line}");
        assert!(line.ends_with(" plain-arg_1.2/x:y@z"), "{line}");
        for bare in [" $(rm", " `id`", " a;b", " x|y", " $HOME", " * "] {
            assert!(!line.contains(bare), "{bare:?} unquoted in {line}");
        }
    }

    #[test]
    fn the_text_block_names_the_fallback_and_a_limits_note() {
        let p = Preview {
            provider: "codex".into(),
            session_id: None,
            project: PathBuf::from("/p"),
            store: Some(PathBuf::from("/p/s.jsonl")),
            due: Some("2026-11-30T12:00:00Z".parse().unwrap()),
            fallback_used: true,
            limits_note: Some("bad zag.toml; using zag's defaults".into()),
            channel: "respawn",
            how: "run codex in /w".into(),
            ..Preview::default()
        };
        assert_eq!(
            plan_text(&p),
            "  session: codex unknown (cwd unknown), project /p, store /p/s.jsonl\n  \
             when: 2026-11-30T12:00:00Z (no reset time: the fallback wait of [usage_limits])\n  \
             limits: bad zag.toml; using zag's defaults\n  how: run codex in /w\n"
        );
        assert_eq!(plan_json(&p)["fallback_used"], true);
    }
}
