//! Resume delivery: turn a due incident into a continued session.
//!
//! Two channels: a `user_message` line into a live zag relay's FIFO
//! ([`fifo`]), or a respawn of the provider CLI with its resume syntax
//! ([`respawn`]). Before sending, the incident is revalidated (cancelled? did
//! the session move on?); after sending, the CLI's output goes back through the
//! detectors so a re-hit becomes a new incident rather than a false success.
//! No shell is ever involved, and every id is validated before it reaches argv.

pub mod zaglog;

use std::ffi::OsString;
use std::sync::Arc;

use crate::config::{Binaries, ResumeConfig};
use crate::detect::{Detection, Detector};
use crate::paths::Paths;
use crate::store::Schedule;

/// What delivery needs besides the incident.
#[derive(Clone, Debug)]
pub struct ResumeEnv {
    pub paths: Paths,
    pub config: ResumeConfig,
    pub binaries: Binaries,
    /// The PATH to search for provider binaries (`None`: the process's own).
    pub search_path: Option<OsString>,
    /// Bounds respawned CLIs running at once.
    pub limiter: Arc<tokio::sync::Semaphore>,
    /// Re-detects limits in a respawned CLI's output.
    pub detector: Detector,
}

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Delivered; `detail` says how (channel, exit code).
    Resumed { detail: String },
    /// Tried and failed, or could not be tried; `reason` is for humans.
    Failed { reason: String },
    /// Deliberately not sent (session moved on, deleted, cancelled).
    Skipped { reason: String },
    /// The resumed run hit a limit again: a new incident with attempt + 1.
    LimitAgain {
        detection: Detection,
        detail: String,
    },
}

/// Deliver one due incident. Never panics, never blocks forever: every wait
/// has a deadline from [`ResumeConfig`].
pub async fn deliver(
    incident: &Schedule,
    env: &ResumeEnv,
    cancel: &tokio_util::sync::CancellationToken,
) -> Outcome {
    let _ = (incident, env, cancel);
    todo!("deliver: owned by the resume-delivery work")
}
