//! Where things live: zag's base dir, the provider dirs, the daemon's own state.
//!
//! Every path the daemon touches is derived here from two roots (`--zag-home`
//! and `$HOME`), so tests point the whole daemon at a temporary directory by
//! passing two paths. Project state dirs follow zag's rule (zag-contract §1.1):
//! never re-derived from a workspace path when a log path is known.

use std::path::{Path, PathBuf};

use crate::shared::{PerProvider, Provider};

/// All directories the daemon reads or writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// zag's base dir, `B` in the interop spec (`$HOME/.zag`).
    pub zag_home: PathBuf,
    /// The user's home: the root for provider dirs.
    pub home: PathBuf,
    /// Each provider CLI's home dir (`~/.<name>`, or the `[dirs]` override).
    provider_homes: PerProvider<PathBuf>,
    /// `<zag-home>/resumed`: offsets, lock, socket, the daemon's own files.
    pub state_dir: PathBuf,
}

impl Paths {
    /// Paths for a home dir and an optional zag home override.
    pub fn new(home: &Path, zag_home: Option<&Path>) -> Self {
        let zag_home = zag_home.map_or_else(|| home.join(".zag"), Path::to_path_buf);
        Paths {
            state_dir: zag_home.join("resumed"),
            zag_home,
            home: home.to_path_buf(),
            provider_homes: PerProvider::from_fn(|p| home.join(p.default_home())),
        }
    }

    /// Provider `p`'s home dir (`~/.claude`, or its `[dirs]` override).
    pub fn provider_home(&self, p: Provider) -> &Path {
        &self.provider_homes[p]
    }

    /// Move provider `p`'s home dir (a `[dirs]` override).
    pub fn set_provider_home(&mut self, p: Provider, dir: PathBuf) {
        self.provider_homes[p] = dir;
    }

    /// `$HOME`, or the current dir when unset (zag's own fallback is `./.zag`).
    pub fn from_env(zag_home: Option<&Path>) -> Self {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        Self::new(&home, zag_home)
    }

    /// `B/fifos/<wrapper-id>`.
    pub fn fifo(&self, wrapper_id: &str) -> PathBuf {
        self.zag_home.join("fifos").join(wrapper_id)
    }

    /// `B/logs/spawn`.
    pub fn spawn_logs(&self) -> PathBuf {
        self.zag_home.join("logs").join("spawn")
    }

    /// `B/projects`.
    pub fn projects(&self) -> PathBuf {
        self.zag_home.join("projects")
    }

    /// The project state dir zag would use for a working directory, without
    /// running git: `B/projects/<sanitize(dir)>`. Callers that know the git
    /// top level pass it; a session log path beats both (see [`project_of_log`]).
    pub fn project_for_root(&self, root: &str) -> PathBuf {
        self.projects().join(sanitize(root))
    }

    /// The zag store for a project dir.
    pub fn store_in(project: &Path) -> PathBuf {
        project.join("scheduled_resumes.jsonl")
    }
}

/// zag's `sanitize`: strip leading `/`, turn every other `/` into `-`.
pub fn sanitize(path: &str) -> String {
    path.trim_start_matches('/').replace('/', "-")
}

/// The project dir `P` of a zag session log `P/logs/sessions/<id>.jsonl`.
pub fn project_of_log(log: &Path) -> Option<PathBuf> {
    let sessions = log.parent()?;
    let logs = sessions.parent()?;
    if sessions.file_name()? != "sessions" || logs.file_name()? != "logs" {
        return None;
    }
    logs.parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_follows_zag() {
        assert_eq!(sanitize("/home/u/my.repo/x-y"), "home-u-my.repo-x-y");
        assert_eq!(sanitize("/a/b-c"), sanitize("/a-b/c"));
        assert_eq!(sanitize("/a/b/"), "a-b-");
    }

    #[test]
    fn project_of_log_walks_three_parents() {
        let p = project_of_log(Path::new("/h/.zag/projects/x/logs/sessions/1.jsonl"));
        assert_eq!(p.as_deref(), Some(Path::new("/h/.zag/projects/x")));
        let g = project_of_log(Path::new("/h/.zag/logs/sessions/1.jsonl"));
        assert_eq!(g.as_deref(), Some(Path::new("/h/.zag")));
        assert_eq!(project_of_log(Path::new("/h/other/1.jsonl")), None);
    }

    #[test]
    fn defaults_hang_off_home() {
        let p = Paths::new(Path::new("/h"), None);
        assert_eq!(p.zag_home, Path::new("/h/.zag"));
        assert_eq!(p.state_dir, Path::new("/h/.zag/resumed"));
        assert_eq!(p.provider_home(Provider::Claude), Path::new("/h/.claude"));
    }
}
