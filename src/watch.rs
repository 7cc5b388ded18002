//! What to watch, and the notify watcher that watches it.
//!
//! Sources are declared as path patterns: an anchor directory plus segments
//! that are literals or one-`*` globs (`[".zag", "projects", "*", "logs",
//! "sessions", "*.jsonl"]`). Every existing directory along a pattern gets a
//! non-recursive watch, so folders created later are seen and watched in turn,
//! while big unrelated trees (zag's worktrees, a home dir's contents) are never
//! walked. Matching is pure ([`Patterns::classify`]); the [`Watcher`] only
//! turns notify's callbacks into paths on a channel and never blocks there.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;

use crate::config::WatchConfig;
use crate::detect::SourceKind;
use crate::paths::Paths;

/// What a matched file is to the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A log to tail and run the detectors on.
    Log(SourceKind),
    /// A `scheduled_resumes.jsonl`: follow it for cancels and new records.
    Store,
    /// A `zag.toml`: its `[usage_limits]` changed.
    ZagConfig,
}

/// One segment of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// `prefix*suffix`
    Glob(String, String),
}

impl Seg {
    fn parse(s: &str) -> Seg {
        match s.split_once('*') {
            Some((p, x)) => Seg::Glob(p.to_string(), x.to_string()),
            None => Seg::Lit(s.to_string()),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Seg::Lit(l) => l == name,
            Seg::Glob(p, x) => {
                !name.starts_with('.')
                    && name.len() >= p.len() + x.len()
                    && name.starts_with(p.as_str())
                    && name.ends_with(x.as_str())
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Pattern {
    anchor: PathBuf,
    segs: Vec<Seg>,
    target: Target,
}

/// The set of watched path patterns.
#[derive(Clone, Debug, Default)]
pub struct Patterns {
    list: Vec<Pattern>,
}

/// How a path relates to the patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// A file to act on.
    File(Target),
    /// A directory on the way to matching files: watch it.
    Dir,
    None,
}

impl Patterns {
    /// The daemon's sources under `paths`, as enabled in `cfg`.
    pub fn for_daemon(paths: &Paths, cfg: &WatchConfig) -> Self {
        let mut p = Patterns::default();
        let zag = &paths.zag_home;
        if cfg.zag_sessions {
            p.add(
                zag,
                "logs/sessions/*.jsonl",
                Target::Log(SourceKind::ZagSession),
            );
            p.add(
                zag,
                "projects/*/logs/sessions/*.jsonl",
                Target::Log(SourceKind::ZagSession),
            );
        }
        if cfg.zag_spawn_logs {
            p.add(zag, "logs/spawn/*.log", Target::Log(SourceKind::ZagSpawn));
        }
        p.add(zag, "scheduled_resumes.jsonl", Target::Store);
        p.add(zag, "projects/*/scheduled_resumes.jsonl", Target::Store);
        p.add(zag, "zag.toml", Target::ZagConfig);
        p.add(zag, "projects/*/zag.toml", Target::ZagConfig);
        // Each provider's own session files, where it says they live.
        for cli in crate::provider::all() {
            if cli.watched(cfg) {
                p.add(
                    cli.home(paths),
                    cli.session_files(),
                    Target::Log(cli.source()),
                );
            }
        }
        p
    }

    /// Add `base/rel`; the anchor is `base`'s parent so that `base` itself
    /// may be created after start.
    pub fn add(&mut self, base: &Path, rel: &str, target: Target) {
        let (anchor, first) = match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => (
                parent.to_path_buf(),
                Some(name.to_string_lossy().into_owned()),
            ),
            _ => (base.to_path_buf(), None),
        };
        let segs = first
            .into_iter()
            .map(Seg::Lit)
            .chain(rel.split('/').filter(|s| !s.is_empty()).map(Seg::parse))
            .collect();
        self.list.push(Pattern {
            anchor,
            segs,
            target,
        });
    }

    /// Classify a path (pure: no file system access).
    pub fn classify(&self, path: &Path) -> Match {
        let mut best = Match::None;
        for pat in &self.list {
            let Ok(rel) = path.strip_prefix(&pat.anchor) else {
                continue;
            };
            let names: Vec<&str> = rel
                .components()
                .map_while(|c| match c {
                    Component::Normal(n) => n.to_str(),
                    _ => None,
                })
                .collect();
            if names.len() != rel.components().count() || names.len() > pat.segs.len() {
                continue;
            }
            if !names.iter().zip(&pat.segs).all(|(n, s)| s.matches(n)) {
                continue;
            }
            if names.len() == pat.segs.len() {
                return Match::File(pat.target);
            }
            best = Match::Dir;
        }
        best
    }

    /// Anchors that exist: the roots of discovery and watching.
    pub fn anchors(&self) -> BTreeSet<PathBuf> {
        self.list.iter().map(|p| p.anchor.clone()).collect()
    }

    /// Walk the file system along the patterns: every matching directory
    /// (to watch) and every matching file (to tail), without descending
    /// anywhere a pattern does not lead.
    pub fn discover(&self) -> Discovery {
        self.discover_watching(&mut |_| {})
    }

    /// [`Self::discover`], calling `before_listing` on each directory before
    /// it is listed: a watch added there sees every file created after it,
    /// and the listing sees every file created before, so nothing created
    /// while a new tree is walked falls between the two.
    pub fn discover_watching(&self, before_listing: &mut dyn FnMut(&Path)) -> Discovery {
        let mut d = Discovery::default();
        for anchor in self.anchors() {
            if anchor.is_dir() {
                self.walk(&anchor, &mut d, before_listing);
            }
        }
        d
    }

    /// Discover below one directory (a directory that just appeared),
    /// calling `before_listing` as [`Self::discover_watching`] does.
    pub fn discover_under(&self, dir: &Path, before_listing: &mut dyn FnMut(&Path)) -> Discovery {
        let mut d = Discovery::default();
        if self.classify(dir) == Match::Dir || self.anchors().contains(dir) {
            self.walk(dir, &mut d, before_listing);
        }
        d
    }

    fn walk(&self, dir: &Path, d: &mut Discovery, before_listing: &mut dyn FnMut(&Path)) {
        before_listing(dir);
        d.dirs.push(dir.to_path_buf());
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            match self.classify(&p) {
                Match::File(t) if p.is_file() => d.files.push((p, t)),
                Match::Dir if p.is_dir() => self.walk(&p, d, before_listing),
                _ => {}
            }
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Discovery {
    pub dirs: Vec<PathBuf>,
    pub files: Vec<(PathBuf, Target)>,
}

/// A change reported by the watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEvent {
    /// Something at this path was created, written, renamed or removed.
    Changed(PathBuf),
    /// The kernel queue overflowed: everything must be rescanned.
    Rescan,
    /// The watcher reported an error (logged by the receiver).
    Error(String),
    /// The daemon is stopping: the receiver ends its loop.
    Shutdown,
}

/// notify, non-recursive watches only; events go to a std channel.
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
}

impl Watcher {
    pub fn new(events: mpsc::Sender<FsEvent>) -> Result<Self, notify::Error> {
        use notify::Watcher as _;
        let inner = notify::RecommendedWatcher::new(
            move |res: notify::Result<notify::Event>| {
                // Never block here: the channel is unbounded.
                let _ = match res {
                    Ok(ev) if ev.need_rescan() => events.send(FsEvent::Rescan),
                    // Opens, reads and closes change nothing, and reacting to
                    // them would loop: reading a file reports an access.
                    Ok(ev) if matches!(ev.kind, notify::EventKind::Access(_)) => Ok(()),
                    Ok(ev) => {
                        for p in ev.paths {
                            let _ = events.send(FsEvent::Changed(p));
                        }
                        Ok(())
                    }
                    Err(e) => events.send(FsEvent::Error(e.to_string())),
                };
            },
            notify::Config::default(),
        )?;
        Ok(Watcher {
            inner,
            watched: BTreeSet::new(),
        })
    }

    /// Watch a directory (non-recursively), once.
    pub fn watch_dir(&mut self, dir: &Path) -> Result<bool, notify::Error> {
        use notify::Watcher as _;
        if self.watched.contains(dir) {
            return Ok(false);
        }
        self.inner.watch(dir, notify::RecursiveMode::NonRecursive)?;
        self.watched.insert(dir.to_path_buf());
        Ok(true)
    }

    /// Forget a directory that was removed.
    pub fn forget_dir(&mut self, dir: &Path) {
        use notify::Watcher as _;
        if self.watched.remove(dir) {
            let _ = self.inner.unwatch(dir);
        }
    }

    pub fn watched_dirs(&self) -> usize {
        self.watched.len()
    }
}

/// Turn notify's "too many watches" into advice.
pub fn explain_watch_error(dir: &Path, e: &notify::Error) -> String {
    let hint = match &e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            " (the inotify watch limit is reached: raise fs.inotify.max_user_watches)"
        }
        _ => "",
    };
    format!("cannot watch {}: {e}{hint}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats() -> Patterns {
        Patterns::for_daemon(&Paths::new(Path::new("/h"), None), &WatchConfig::default())
    }

    #[test]
    fn classifies_every_source() {
        let p = pats();
        let f = |s: &str| p.classify(Path::new(s));
        assert_eq!(
            f("/h/.zag/logs/sessions/w.jsonl"),
            Match::File(Target::Log(SourceKind::ZagSession))
        );
        assert_eq!(
            f("/h/.zag/projects/a-b/logs/sessions/w.jsonl"),
            Match::File(Target::Log(SourceKind::ZagSession))
        );
        assert_eq!(
            f("/h/.zag/logs/spawn/w.log"),
            Match::File(Target::Log(SourceKind::ZagSpawn))
        );
        assert_eq!(
            f("/h/.zag/projects/a/scheduled_resumes.jsonl"),
            Match::File(Target::Store)
        );
        assert_eq!(
            f("/h/.zag/scheduled_resumes.jsonl"),
            Match::File(Target::Store)
        );
        assert_eq!(
            f("/h/.claude/projects/-h-p/123.jsonl"),
            Match::File(Target::Log(SourceKind::ClaudeNative))
        );
        assert_eq!(
            f("/h/.codex/sessions/2026/11/24/rollout-x.jsonl"),
            Match::File(Target::Log(SourceKind::CodexNative))
        );
        assert_eq!(
            f("/h/.copilot/session-state/abc/events.jsonl"),
            Match::File(Target::Log(SourceKind::CopilotNative))
        );
        assert_eq!(
            f("/h/.gemini/tmp/p/chats/session-1.jsonl"),
            Match::File(Target::Log(SourceKind::GeminiNative))
        );
        assert_eq!(
            f("/h/.zag/projects/a/zag.toml"),
            Match::File(Target::ZagConfig)
        );
    }

    #[test]
    fn directories_on_the_way_are_watched_and_others_are_not() {
        let p = pats();
        let f = |s: &str| p.classify(Path::new(s));
        assert_eq!(f("/h/.zag"), Match::Dir);
        assert_eq!(f("/h/.zag/projects/x"), Match::Dir);
        assert_eq!(f("/h/.zag/projects/x/logs/sessions"), Match::Dir);
        assert_eq!(f("/h/.codex/sessions/2026/11"), Match::Dir);
        assert_eq!(f("/h/.zag/worktrees"), Match::None);
        assert_eq!(f("/h/.zag/logs/sessions/w.txt"), Match::None);
        assert_eq!(f("/h/.claude/projects/p/sub/x.jsonl"), Match::None);
        assert_eq!(f("/h/.zag/logs/sessions/.hidden.jsonl"), Match::None);
        assert_eq!(f("/elsewhere/.zag/logs"), Match::None);
    }

    #[test]
    fn discovery_follows_patterns_only() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path();
        for d in [
            ".zag/logs/sessions",
            ".zag/projects/p/logs/sessions",
            ".zag/worktrees/big/logs/sessions",
            ".claude/projects/-x",
        ] {
            std::fs::create_dir_all(h.join(d)).unwrap();
        }
        for f in [
            ".zag/logs/sessions/a.jsonl",
            ".zag/projects/p/logs/sessions/b.jsonl",
            ".zag/worktrees/big/logs/sessions/c.jsonl",
            ".claude/projects/-x/s.jsonl",
            ".zag/projects/p/scheduled_resumes.jsonl",
        ] {
            std::fs::write(h.join(f), "").unwrap();
        }
        let p = Patterns::for_daemon(&Paths::new(h, None), &WatchConfig::default());
        let d = p.discover();
        let files: Vec<String> = d
            .files
            .iter()
            .map(|(f, _)| f.strip_prefix(h).unwrap().display().to_string())
            .collect();
        assert_eq!(
            files,
            [
                ".claude/projects/-x/s.jsonl",
                ".zag/logs/sessions/a.jsonl",
                ".zag/projects/p/logs/sessions/b.jsonl",
                ".zag/projects/p/scheduled_resumes.jsonl"
            ]
        );
        assert!(!d
            .dirs
            .iter()
            .any(|x| x.to_string_lossy().contains("worktrees")));
    }
}
