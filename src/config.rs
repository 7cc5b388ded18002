//! Configuration: zag's `[usage_limits]` table and the daemon's own settings.
//!
//! Two files, two owners. `zag.toml` belongs to zag: we read its
//! `[usage_limits]` per project (P/zag.toml, never merged with B/zag.toml, as
//! zag does) and add one key zag ignores, `stagger_secs`. The daemon's own file
//! (`--config`, default `<zag-home>/resumed/config.toml`) is optional: every
//! setting has an embedded default, listed in `config/zag-resumed.toml`.
//!
//! Both are validated on load into plain structs; a malformed file is a clear
//! error naming the file, never a panic.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::shared::{keys_after, provider_key, PerProvider, Provider};

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A TOML error at a known place (1-based line and column).
    #[error("invalid config {}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ConfigError {
    /// A `toml` error of `text` (read from `path`), with the file, line and
    /// column its span points at when it has one.
    fn toml(e: &toml::de::Error, text: &str, path: &Path) -> Self {
        // One line, whatever the parser says: a log line per error.
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let Some(start) = e.span().map(|s| s.start.min(text.len())) else {
            return ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            };
        };
        // The span is a byte offset; a column counts characters.
        let before = text.get(..start).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    }
}

/// zag's `[usage_limits]` (zag-contract §5), with zag's defaults.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct UsageLimits {
    pub enabled: bool,
    pub resume_message: String,
    pub max_wait_secs: u64,
    pub default_fallback_secs: u64,
    pub jitter_secs: u64,
    pub max_attempts: u32,
    /// Ours: spread resumes due at the same reset over this window (0 = off).
    pub stagger_secs: u64,
    pub providers: BTreeMap<String, ProviderLimits>,
}

/// `[usage_limits.providers.<name>]`: unset keys inherit the top level.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProviderLimits {
    pub enabled: Option<bool>,
    pub resume_message: Option<String>,
    pub fallback_secs: Option<u64>,
    pub extra_patterns: Vec<String>,
}

impl Default for UsageLimits {
    fn default() -> Self {
        UsageLimits {
            enabled: true,
            resume_message: "Continue".into(),
            max_wait_secs: 86_400,
            default_fallback_secs: 3_600,
            jitter_secs: 30,
            max_attempts: 12,
            stagger_secs: 120,
            providers: BTreeMap::new(),
        }
    }
}

impl UsageLimits {
    fn provider(&self, p: Provider) -> Option<&ProviderLimits> {
        self.providers.get(p.as_str())
    }

    /// Top-level `enabled` AND the provider's own (default true).
    pub fn enabled_for(&self, p: Provider) -> bool {
        self.enabled && self.provider(p).and_then(|x| x.enabled).unwrap_or(true)
    }

    pub fn resume_message_for(&self, p: Provider) -> &str {
        self.provider(p)
            .and_then(|x| x.resume_message.as_deref())
            .unwrap_or(&self.resume_message)
    }

    pub fn fallback_secs_for(&self, p: Provider) -> u64 {
        self.provider(p)
            .and_then(|x| x.fallback_secs)
            .unwrap_or(self.default_fallback_secs)
    }

    pub fn extra_patterns_for(&self, p: Provider) -> &[String] {
        self.provider(p)
            .map_or(&[], |x| x.extra_patterns.as_slice())
    }

    /// Every provider's `extra_patterns`, each with its provider, in
    /// [`Provider::ALL`] order: what `detect::Detector::new` compiles.
    pub fn extra_patterns(&self) -> impl Iterator<Item = (Provider, &str)> {
        Provider::ALL.into_iter().flat_map(move |p| {
            self.extra_patterns_for(p)
                .iter()
                .map(move |pat| (p, pat.as_str()))
        })
    }

    /// Parse the `[usage_limits]` table out of a whole `zag.toml` text.
    pub fn from_zag_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        #[derive(Deserialize, Default)]
        struct ZagToml {
            #[serde(default)]
            usage_limits: UsageLimits,
        }
        toml::from_str::<ZagToml>(text)
            .map(|z| z.usage_limits)
            .map_err(|e| ConfigError::toml(&e, text, path))
    }

    /// Load `<project>/zag.toml`; a missing file means zag's defaults.
    pub fn load_for_project(project: &Path) -> Result<Self, ConfigError> {
        let path = project.join("zag.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_zag_toml(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }
}

/// The daemon's own settings. Every key is optional in the file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Provider binaries; unset means "find it on PATH".
    pub binaries: Binaries,
    /// Which sources to watch.
    pub watch: WatchConfig,
    /// How resumes are delivered.
    pub resume: ResumeConfig,
    /// Desktop notifications on hit, resume and failure.
    pub notify: NotifyConfig,
    /// Overrides for provider home dirs (default: under `$HOME`).
    pub dirs: DirsConfig,
}

/// `[binaries]`: a provider's binary (`claude = "/opt/claude"`); unset
/// means "find it on PATH".
pub type Binaries = PerProvider<Option<PathBuf>>;

/// `[watch]`: which sources are tailed, and the longest line kept whole.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchConfig {
    pub zag_sessions: bool,
    pub zag_spawn_logs: bool,
    /// A provider's own session files (`claude = false` turns them off).
    pub providers: PerProvider<bool>,
    /// Longest line kept whole; longer lines are scanned in a bounded prefix.
    pub max_line_bytes: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            zag_sessions: true,
            zag_spawn_logs: true,
            providers: PerProvider::from_fn(|_| true),
            max_line_bytes: 1 << 20,
        }
    }
}

impl WatchConfig {
    /// Whether `[watch]` asks for provider `p`'s own session files.
    pub fn provider(&self, p: Provider) -> bool {
        self.providers[p]
    }
}

/// Every key `[watch]` takes: its own, then one per provider.
const WATCH_KEYS: &[&str] = &keys_after::<3, { 3 + Provider::ALL.len() }>([
    "zag_sessions",
    "zag_spawn_logs",
    "max_line_bytes",
]);

/// `[watch]` by hand: its own keys and a provider key each in one flat
/// table, an unknown key an error as with every other table.
impl<'de> Deserialize<'de> for WatchConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = WatchConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the [watch] table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WatchConfig, A::Error> {
                let mut w = WatchConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "zag_sessions" => w.zag_sessions = map.next_value()?,
                        "zag_spawn_logs" => w.zag_spawn_logs = map.next_value()?,
                        "max_line_bytes" => w.max_line_bytes = map.next_value()?,
                        other => {
                            w.providers[provider_key(other, WATCH_KEYS)?] = map.next_value()?
                        }
                    }
                }
                Ok(w)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResumeConfig {
    /// Respawned CLIs running at once.
    pub max_concurrent: usize,
    /// A respawned CLI still running after this is killed with its group;
    /// 0: no wall-clock limit (the default: a resumed agent may work for
    /// hours).
    pub timeout_secs: u64,
    /// A respawned CLI that wrote nothing on stdout or stderr for this long
    /// is taken as hung and killed with its group; 0: never.
    pub silence_timeout_secs: u64,
    /// Output kept from a respawned CLI, per stream.
    pub capture_bytes: usize,
    /// How long a FIFO write may wait on a full pipe.
    pub fifo_write_timeout_ms: u64,
    /// How long to wait for the relay to log a FIFO message back.
    pub fifo_confirm_timeout_secs: u64,
    /// A dead zag owner's overdue record is adopted after this grace.
    pub adopt_grace_secs: u64,
    /// Graceful shutdown waits this long for in-flight resumes.
    pub drain_timeout_secs: u64,
}

impl Default for ResumeConfig {
    fn default() -> Self {
        ResumeConfig {
            max_concurrent: 4,
            timeout_secs: 0,
            // A working agent streams an event per message and tool call;
            // its longest quiet stretch is one long tool run (a build, a
            // test suite). Half an hour covers those, and is the old
            // wall-clock limit, so nothing that finished before is killed.
            silence_timeout_secs: 1_800,
            capture_bytes: 1 << 20,
            fifo_write_timeout_ms: 2_000,
            fifo_confirm_timeout_secs: 30,
            adopt_grace_secs: 300,
            drain_timeout_secs: 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Notify when a desktop session exists.
    pub desktop: bool,
    /// Push a one-line message to this ntfy topic URL (`http://` or
    /// `https://`). Off when unset.
    pub ntfy_url: Option<String>,
    /// Run this program (no shell; argv as given) with the incident event as
    /// JSON on stdin. Off when unset.
    pub command: Option<Vec<String>>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            desktop: true,
            ntfy_url: None,
            command: None,
        }
    }
}

impl NotifyConfig {
    /// Why these settings cannot work, before anything is sent.
    fn problem(&self) -> Option<String> {
        if let Some(url) = &self.ntfy_url {
            if let Err(e) = crate::push_url::HttpTarget::parse(url) {
                return Some(format!("notify.ntfy_url: {e}"));
            }
        }
        match self.command.as_deref() {
            Some([]) => {
                Some("notify.command must name a program: [\"/path/to/hook\", \"arg\"]".into())
            }
            Some([prog, ..]) if prog.is_empty() => {
                Some("notify.command: the program is an empty string".into())
            }
            _ => None,
        }
    }
}

/// `[dirs]`: a provider's home dir when not the default under `$HOME`
/// (`codex = "/srv/codex"`).
pub type DirsConfig = PerProvider<Option<PathBuf>>;

impl DaemonConfig {
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: DaemonConfig =
            toml::from_str(text).map_err(|e| ConfigError::toml(&e, text, path))?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |message: &str| {
            Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: message.to_string(),
            })
        };
        if self.resume.max_concurrent == 0 {
            return bad("resume.max_concurrent must be at least 1");
        }
        if self.watch.max_line_bytes < 4096 {
            return bad("watch.max_line_bytes must be at least 4096");
        }
        if let Some(problem) = self.notify.problem() {
            return bad(&problem);
        }
        Ok(())
    }

    /// Load an explicit file (must exist) or the default location (may not).
    pub fn load(explicit: Option<&Path>, default_path: &Path) -> Result<Self, ConfigError> {
        let path = explicit.unwrap_or(default_path);
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Self::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Apply `[dirs]` overrides to derived paths (each provider its own).
    pub fn apply_dirs(&self, paths: &mut crate::paths::Paths) {
        for (p, dir) in self.dirs.iter() {
            if let Some(d) = dir {
                paths.set_provider_home(p, d.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_error_is_one_line() {
        let bad = [
            "[resume\n",
            "[resume]\nmax_concurrent = \"two\"\n",
            "[resume]\nnope = 1\n",
            "[notify]\ncommand = [1, 2]\n",
            "x = \"\"\"\nunterminated\n",
            "[resume]\n[resume]\n",
            "a = 1\na = 2\n",
        ];
        for text in bad {
            let e = DaemonConfig::parse(text, Path::new("/c/config.toml")).unwrap_err();
            assert!(!e.to_string().contains('\n'), "{text:?}: {e}");
            let e =
                UsageLimits::from_zag_toml(&format!("[usage_limits]\n{text}"), Path::new("z.toml"));
            if let Err(e) = e {
                assert!(!e.to_string().contains('\n'), "{text:?}: {e}");
            }
        }
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let text = "[notify]\ndesktop = true\n\n[resume]\nmax_concurrent = \"two\"\n";
        let e = DaemonConfig::parse(text, Path::new("/c/config.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("invalid config /c/config.toml:5:18: "),
            "{msg}"
        );
        let e = DaemonConfig::parse("[resume\n", Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().starts_with("invalid config c.toml:1:"), "{e}");
        let e = UsageLimits::from_zag_toml("[usage_limits]\n  é = 1 =\n", Path::new("z.toml"))
            .unwrap_err();
        assert!(e.to_string().starts_with("invalid config z.toml:2:"), "{e}");
    }

    #[test]
    fn zag_defaults_and_overrides() {
        let text = r#"
[usage_limits]
jitter_secs = 5
stagger_secs = 0
[usage_limits.providers.codex]
enabled = false
fallback_secs = 60
extra_patterns = ["quota gone"]
"#;
        let u = UsageLimits::from_zag_toml(text, Path::new("zag.toml")).unwrap();
        assert_eq!(u.jitter_secs, 5);
        assert_eq!(u.stagger_secs, 0);
        assert_eq!(u.max_wait_secs, 86_400);
        assert!(u.enabled_for(Provider::Claude));
        assert!(!u.enabled_for(Provider::Codex));
        assert_eq!(u.fallback_secs_for(Provider::Codex), 60);
        assert_eq!(u.fallback_secs_for(Provider::Claude), 3_600);
        assert_eq!(u.extra_patterns_for(Provider::Codex), ["quota gone"]);
        assert_eq!(u.resume_message_for(Provider::Gemini), "Continue");
    }

    #[test]
    fn unrelated_zag_tables_are_ignored() {
        let u =
            UsageLimits::from_zag_toml("[defaults]\nprovider='claude'\n", Path::new("z")).unwrap();
        assert_eq!(u, UsageLimits::default());
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        let e = UsageLimits::from_zag_toml("[usage_limits\n", Path::new("/p/zag.toml"));
        assert!(e.unwrap_err().to_string().contains("/p/zag.toml"));
        let e = DaemonConfig::parse("[resume]\nmax_concurrent = 0\n", Path::new("c.toml"));
        assert!(e.unwrap_err().to_string().contains("max_concurrent"));
        let e = DaemonConfig::parse("[nope]\n", Path::new("c.toml"));
        assert!(e.is_err());
    }

    #[test]
    fn per_provider_tables_keep_their_keys_and_refuse_unknown_ones() {
        let text = "binaries.claude = \"/opt/claude\"\ndirs.codex = \"/srv/codex\"\n\
                    [watch]\ngemini = false\nzag_spawn_logs = false\nmax_line_bytes = 8192\n";
        let cfg = DaemonConfig::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(
            cfg.binaries[Provider::Claude].as_deref(),
            Some(Path::new("/opt/claude"))
        );
        assert_eq!(cfg.binaries[Provider::Codex], None);
        assert_eq!(
            cfg.dirs[Provider::Codex].as_deref(),
            Some(Path::new("/srv/codex"))
        );
        let watched: Vec<bool> = Provider::ALL.map(|p| cfg.watch.provider(p)).to_vec();
        assert_eq!(watched, [true, true, false, true]);
        assert!(cfg.watch.zag_sessions && !cfg.watch.zag_spawn_logs);
        assert_eq!(cfg.watch.max_line_bytes, 8192);
        for bad in [
            "[binaries]\ncursor = \"/x\"\n",
            "[dirs]\nzag = \"/x\"\n",
            "[watch]\ncursor = true\n",
        ] {
            let e = DaemonConfig::parse(bad, Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("unknown field") && e.contains("c.toml"),
                "{bad}: {e}"
            );
        }
        let e = DaemonConfig::parse("[watch]\ngemini = 1\n", Path::new("c.toml"));
        assert!(e.is_err());
    }

    #[test]
    fn the_shipped_example_lists_exactly_the_defaults() {
        let text = include_str!("../config/zag-resumed.toml");
        let cfg = DaemonConfig::parse(text, Path::new("config/zag-resumed.toml")).unwrap();
        assert_eq!(cfg, DaemonConfig::default());
    }

    #[test]
    fn notify_push_settings_are_checked() {
        let ok = DaemonConfig::parse(
            "[notify]\nntfy_url = \"http://127.0.0.1:8080/t\"\ncommand = [\"/bin/hook\", \"a\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(
            ok.notify.ntfy_url.as_deref(),
            Some("http://127.0.0.1:8080/t")
        );
        assert_eq!(
            ok.notify.command,
            Some(vec!["/bin/hook".into(), "a".into()])
        );
        // ntfy.sh speaks https only: accepted.
        let tls = DaemonConfig::parse(
            "[notify]\nntfy_url = \"https://ntfy.sh/t\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(tls.notify.ntfy_url.as_deref(), Some("https://ntfy.sh/t"));
        for (text, want) in [
            ("ntfy_url = \"ntfy.sh/t\"", "http://"),
            ("command = []", "must name a program"),
            ("command = [\"\"]", "empty string"),
        ] {
            let e = DaemonConfig::parse(&format!("[notify]\n{text}\n"), Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn missing_default_file_means_defaults() {
        let cfg = DaemonConfig::load(None, Path::new("/nonexistent/zr.toml")).unwrap();
        assert_eq!(cfg, DaemonConfig::default());
        assert!(
            DaemonConfig::load(Some(Path::new("/nonexistent/zr.toml")), Path::new("x")).is_err()
        );
    }
}
