//! The provider trait's vocabulary for a resume command: what goes on the
//! command line ([`ArgvSpec`]), why it could not be built ([`ArgvError`]),
//! and the checks every provider's argv applies to models, dirs, messages
//! and ids.

use crate::shared::Provider;

use super::target::{validate_session_id, InvalidId};

/// What to put on the command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArgvSpec {
    /// The session to resume; `None` is a fresh run (Gemini, first turn).
    pub session_id: Option<String>,
    /// The text to send: the resume message, or Gemini's original prompt.
    pub message: String,
    pub model: Option<String>,
    /// zag's auto-approve (Claude: skip permissions; Gemini: yolo;
    /// Copilot: allow all).
    pub auto_approve: bool,
    /// Extra directories zag granted (absolute paths).
    pub add_dirs: Vec<String>,
    /// The session's recorded permission mode; each provider maps the
    /// values its CLI accepts and drops the rest.
    pub permission_mode: Option<String>,
}

/// Why a provider's argv could not be built; the Display text is the one
/// incident reasons have always carried (after "refused to build the ...
/// command: ").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgvError {
    #[error("model name {0:?} refused")]
    Model(String),
    #[error("add-dir {0:?} is not an absolute path")]
    RelativeDir(String),
    #[error("empty message")]
    EmptyMessage,
    #[error("message contains a NUL byte")]
    NulInMessage,
    /// Codex reads its prompt from stdin when the prompt is `-`.
    #[error("a message of \"-\" makes Codex read the prompt from stdin")]
    DashMessage,
    #[error("{0} resume needs a session id")]
    NoSessionId(Provider),
    #[error(transparent)]
    Id(#[from] InvalidId),
}

pub(crate) fn check_model(m: &str) -> Result<(), ArgvError> {
    let ok = !m.is_empty()
        && m.len() <= 128
        && !m.starts_with('-')
        && m.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '@' | '[' | ']')
        });
    if ok {
        Ok(())
    } else {
        Err(ArgvError::Model(m.into()))
    }
}

/// zag's size aliases are resolved per provider by zag's factory; we cannot
/// reproduce that table, so they are left out (the session's own default
/// model applies).
pub(crate) fn usable_model(m: &Option<String>) -> Option<&str> {
    m.as_deref().filter(|m| {
        !m.is_empty() && !matches!(*m, "auto" | "small" | "medium" | "large" | "default")
    })
}

pub(crate) fn check_dirs(dirs: &[String]) -> Result<(), ArgvError> {
    match dirs.iter().find(|d| !d.starts_with('/')) {
        Some(d) => Err(ArgvError::RelativeDir(d.clone())),
        None => Ok(()),
    }
}

pub(crate) fn check_message(msg: &str) -> Result<(), ArgvError> {
    if msg.trim().is_empty() {
        return Err(ArgvError::EmptyMessage);
    }
    if msg.contains('\0') {
        return Err(ArgvError::NulInMessage);
    }
    Ok(())
}

pub(crate) fn required_id(spec: &ArgvSpec, p: Provider) -> Result<&str, ArgvError> {
    let id = spec
        .session_id
        .as_deref()
        .ok_or(ArgvError::NoSessionId(p))?;
    validate_session_id(id)?;
    Ok(id)
}

/// The argv (without the program) for a provider.
pub fn build_args(provider: Provider, spec: &ArgvSpec) -> Result<Vec<String>, ArgvError> {
    crate::provider::of(provider).resume_args(spec)
}
