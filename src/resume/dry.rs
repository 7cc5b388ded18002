//! What a delivery would do now, decided by its own steps run dry: the
//! live owner check (reads `/proc` and tmux panes, types nothing), the
//! provider's resume argv and the binary lookup. Shared by `scan --plan`
//! (`crate::preview`) and the daemon's `run --dry-run`, so the two and the
//! real delivery never differ. Writes, types and starts nothing.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{live, respawn, route, Channel, ResolvedTarget, ResumeEnv};
use crate::detect::Provider;
use crate::store::Schedule;

/// How a respawned session would be continued.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DryRespawn {
    /// `respawn`, `type` or `wait`.
    pub channel: &'static str,
    /// For humans: "run … in …", "type the message once into …",
    /// "nothing now: …", or "fails: …".
    pub how: String,
    pub argv: Option<Vec<String>>,
    pub run_cwd: Option<PathBuf>,
}

/// A respawned session: its live owner first (as at fire time), else the
/// provider's resume command, its program found by `find`.
pub fn how_respawn(
    t: &ResolvedTarget,
    s: &Schedule,
    env: &ResumeEnv,
    now: DateTime<Utc>,
    find: &dyn Fn(Provider) -> Result<PathBuf, String>,
) -> DryRespawn {
    let mut p = DryRespawn::default();
    let live_env = &env.live;
    if live_env.enabled {
        let home = crate::provider::of(t.provider)
            .home(&env.paths)
            .to_path_buf();
        let (r, _) = live::route_now(
            t,
            live_env,
            home,
            s.reset_at,
            s.when,
            &route::LiveState::default(),
            now,
        );
        match &r {
            route::Route::Respawn { .. } => {}
            route::Route::Type { reach, .. } => {
                p.channel = "type";
                p.how = format!(
                    "type the message once into {} ({})",
                    route::reach_name(reach),
                    r.why()
                );
                return p;
            }
            _ => {
                // Standing down for the provider's own continue, waiting
                // for the owner, or already continued: nothing is sent now.
                p.channel = "wait";
                p.how = format!("nothing now: {}", r.why());
                return p;
            }
        }
    }
    p.channel = "respawn";
    let spec = super::resume_spec(t);
    let args = match respawn::build_args(t.provider, &spec) {
        Ok(a) => a,
        Err(e) => {
            p.how = format!("fails: refused to build the {} command: {e}", t.provider);
            return p;
        }
    };
    let program = find(t.provider);
    let mut argv = vec![match &program {
        Ok(b) => b.display().to_string(),
        Err(_) => t.provider.as_str().to_string(),
    }];
    argv.extend(args);
    p.run_cwd = t.cwd.clone();
    p.how = match (&program, &t.cwd) {
        (Err(e), _) => format!("fails: {e}"),
        (_, None) => format!(
            "fails: the {} session's working directory is unknown",
            t.provider
        ),
        (_, Some(cwd)) if !cwd.is_dir() => format!(
            "fails: the session's working directory {} does not exist",
            cwd.display()
        ),
        (Ok(_), Some(cwd)) => format!("run {} in {}", shell_words(&argv), cwd.display()),
    };
    p.argv = Some(argv);
    p
}

/// What delivering a recorded incident would do now, as one sentence for a
/// dry run's log ("would run …", "would type … into pane …", "would stand
/// down for now: …", "would skip it: …"): the delivery's own steps
/// (resolve, moved on, live owner, argv), run dry.
pub fn would_deliver(s: &Schedule, env: &ResumeEnv, now: DateTime<Utc>) -> String {
    let t = match super::resolve_target(s, env) {
        Ok(t) => t,
        Err(why) => return format!("would do nothing: the session cannot be resolved: {why}"),
    };
    if !s.is_forced() {
        if let Some(why) = super::revalidate::moved_on(&t, s.hit_at) {
            return format!("would skip it: the session moved on since the limit: {why}");
        }
    }
    let p = match &t.channel {
        Channel::Fifo { path } => {
            return format!(
                "would write {:?} into zag's relay FIFO {}",
                t.message,
                path.display()
            )
        }
        Channel::Respawn => {
            let find = |provider| {
                respawn::find_binary(provider, &env.binaries, env.search_path.as_ref())
                    .map_err(|e| e.to_string())
            };
            how_respawn(&t, s, env, now, &find)
        }
    };
    match p.channel {
        "type" => format!(
            "would {}",
            p.how
                .replacen("the message", &format!("{:?}", t.message), 1)
        ),
        "wait" => format!(
            "would stand down for now: {}",
            p.how.trim_start_matches("nothing now: ")
        ),
        _ => match p.how.strip_prefix("fails: ") {
            Some(why) => format!("would fail: {why}"),
            None => format!("would {}", p.how),
        },
    }
}

/// An argv as one line a POSIX shell reads back as the same argv: every
/// argument the shell would split, expand or act on (spaces, quotes, `$`,
/// backticks, `;`, `|`, globs, …) is quoted by `shlex`. A NUL, which no
/// shell argument can hold, is shown as `\0` (an argv never holds one).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| match shlex::try_quote(a) {
            Ok(q) => q.into_owned(),
            Err(_) => shlex::try_quote(&a.replace('\0', "\\0"))
                .map_or_else(|_| String::from("''"), |q| q.into_owned()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
