//! Limits that show on screen only: look at a TUI's pane when its session
//! file ends with a user turn that stays unanswered.
//!
//! Why: Gemini CLI's TUI at a quota opens a dialog and writes nothing of
//! the limit to its files (see [`crate::provider::gemini::tui`]). The only
//! trace on disk is the user turn at the end of the chat, with no answer
//! after it. So the ingest thread reports such a turn
//! ([`IngestEvent::TurnOpen`]), and this task looks at the pane of the
//! CLI's process a few times, with growing pauses, and only while the file
//! stays exactly as long as it was (an answer, a rollback or a new turn
//! ends the watch; a new open turn starts another). Nothing runs while no
//! turn is open: idle CPU stays at zero. A dialog seen becomes an ordinary
//! limit sighting, fed back into the core's ingest channel.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use crate::clock::Clock;
use tokio::sync::{mpsc, oneshot};

use crate::detect::{Detection, Detector, LineContext, Scope, SourceKind};
use crate::ingest::{IngestEvent, LimitSighting, TurnOpenSighting};
use crate::live::proc::Procfs;
use crate::live::tmux::{self, Tmux};
use crate::provider::LiveContext;
use crate::resume::live::LiveEnv;

/// The pauses before each look: the dialog appears within a second of the
/// 429 (captured), so the first look is soon; later ones cover a CLI that
/// retried first. About five minutes in all, then the turn is left alone.
pub const LOOKS: [Duration; 5] = [
    Duration::from_secs(8),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(180),
];

/// Watch one open turn (async; the blocking looks run off the loop). Sends
/// one [`IngestEvent::Hit`] to `to` when the limit shows on screen.
pub async fn watch(
    open: TurnOpenSighting,
    live: LiveEnv,
    home: PathBuf,
    looks: Vec<Duration>,
    clock: Arc<dyn Clock>,
    to: mpsc::UnboundedSender<IngestEvent>,
) {
    let Some(cli) = open.source.native_provider().map(crate::provider::of) else {
        return;
    };
    // The session's directory: what the tracker knew, else the project the
    // session file's place names.
    let cwd = open
        .identity
        .cwd
        .clone()
        .map(PathBuf::from)
        .or_else(|| cli.project_dir(&open.file));
    let Some(cwd) = cwd else {
        tracing::debug!(file = %open.file.display(), "an open turn without a known directory: not looking");
        return;
    };
    for pause in looks {
        tokio::time::sleep(pause).await;
        let quiet = std::fs::metadata(&open.file).is_ok_and(|m| m.len() == open.len);
        if !quiet {
            return;
        }
        let (live2, home2, cwd2) = (live.clone(), home.clone(), cwd.clone());
        let seen = tokio::task::spawn_blocking(move || {
            let cx = LiveContext {
                procfs: Procfs::system(),
                tmux: Tmux::new(&live2.tmux_bin),
                socket_dirs: live2
                    .socket_dirs
                    .clone()
                    .unwrap_or_else(|| vec![tmux::user_socket_dir()]),
                home: home2,
            };
            cli.limit_on_screen(&cwd2, &cx)
        })
        .await
        .ok()
        .flatten();
        let Some(title) = seen else {
            continue;
        };
        tracing::info!(
            file = %open.file.display(),
            "the {} TUI shows a usage limit on screen ({title}); its session file records none",
            cli.provider()
        );
        let mut identity = open.identity.clone();
        identity.provider = Some(cli.provider());
        identity.cwd = Some(cwd.to_string_lossy().into_owned());
        identity.last_prompt = Some(open.turn.text.clone());
        // The text shown, read by the provider's own wording rules (its
        // scope and reset: Gemini's daily quota is due at the next midnight
        // Pacific); a wording they miss is still a limit seen on screen.
        let at = open.turn.at.unwrap_or_else(|| clock.now());
        let read = Detector::default().detect(
            title.as_bytes(),
            &LineContext {
                source: SourceKind::Unknown,
                provider_hint: Some(cli.provider()),
                anchor: at,
            },
        );
        let detection = Detection {
            provider: cli.provider(),
            scope: read.as_ref().map_or(Scope::Daily, |d| d.scope),
            reset_at: read.as_ref().and_then(|d| d.reset_at),
            raw: title,
            provider_session_id: identity.provider_session_id.clone(),
            wrapper_session_id: None,
            cwd: identity.cwd.clone(),
            line_ts: Some(at),
            zag_hit: None,
            needs_user: read.as_ref().and_then(|d| d.needs_user),
        };
        let (ack, _acked) = oneshot::channel();
        let _ = to.send(IngestEvent::Hit(Box::new(LimitSighting {
            detection,
            file: open.file.clone(),
            source: open.source,
            line_no: 0,
            identity,
            ack,
        })));
        return;
    }
}
