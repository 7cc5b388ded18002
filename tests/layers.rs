//! The layers hold: no top-level module of the crate imports one above it.
//!
//! `LAYERS` lists every top-level module from the floor up. A module may
//! name (`crate::x`, `use crate::{x, …}`) only modules listed before it, so
//! the import graph among top-level modules has no circle. Test code
//! (`#[cfg(test)]` modules, test-only files) may reach anywhere and is not
//! read. A file compiled into another module through `#[path]` (each
//! provider's detector, which lives in its room but is part of the detector
//! core) counts for the module that declares it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Every top-level module, lowest first.
const LAYERS: &[&str] = &[
    // the floor: shared types, importing nothing of the crate
    "shared",
    // primitives
    "clock",
    "fault",
    "private",
    "child",
    "lock",
    // processes (/proc), tmux and screen panes: how a live process is reached
    "live",
    "zag_process",
    "systemd",
    "tail",
    "paths",
    "push_url",
    // pure detection, then plain configuration data
    "detect",
    "config",
    // time and the store
    "schedule",
    "store",
    "timer",
    // one room per provider CLI, behind one trait
    "provider",
    // facts per file, sources, ingest
    "session",
    "watch",
    "scan_files",
    // delivery, the control surface, notifications
    "resume",
    "control",
    // the one thread that owns watch, tail and the per-file facts
    "ingest",
    "desktop",
    // the core and the commands
    "daemon",
    "preview",
    // `service install`: the unit file and systemctl, nothing of the crate
    "service",
    "cli",
];

/// One `crate::x` a file names.
#[derive(Debug, PartialEq, Eq)]
struct Import {
    file: String,
    line: usize,
    to: String,
}

/// The non-test text of a file: everything before its first `#[cfg(test)]`
/// line, comment lines dropped.
fn non_test_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

/// The top-level modules `text` names: `crate::x` anywhere, and each item
/// of a `use crate::{x, y::z}` group (which may span lines).
fn imports_of(file: &str, text: &str) -> Vec<Import> {
    let mut out = Vec::new();
    let lines: Vec<(usize, &str)> = non_test_lines(text).collect();
    let mut group: Option<(usize, String)> = None;
    for &(n, l) in &lines {
        if let Some((start, buf)) = group.as_mut() {
            buf.push_str(l);
            if l.contains("};") {
                for to in group_heads(buf) {
                    out.push(Import {
                        file: file.into(),
                        line: *start,
                        to,
                    });
                }
                group = None;
            }
            continue;
        }
        let mut rest = l;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(g) = after.strip_prefix('{') {
                if l.contains("};") {
                    for to in group_heads(g) {
                        out.push(Import {
                            file: file.into(),
                            line: n,
                            to,
                        });
                    }
                } else {
                    group = Some((n, g.to_string()));
                }
                break;
            }
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(Import {
                    file: file.into(),
                    line: n,
                    to: name,
                });
            }
            rest = after;
        }
    }
    out
}

/// The first path segment of each item of a `{a, b::{c, d}, e::f}` group.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    let mut cur = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                at_item_start = true;
                continue;
            }
            _ => {}
        }
        if depth == 0 && at_item_start {
            if c.is_ascii_alphanumeric() || c == '_' {
                cur.push(c);
                continue;
            }
            if !cur.is_empty() {
                heads.push(std::mem::take(&mut cur));
                at_item_start = false;
            }
        }
    }
    if !cur.is_empty() {
        heads.push(cur);
    }
    heads.retain(|h| h != "self");
    heads
}

/// Files under `src/` with the top-level module each belongs to; files
/// declared only for tests are left out.
fn source_files(src: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut test_only = Vec::new();
    let mut moved = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension() != Some(std::ffi::OsStr::new("rs")) {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for w in lines.windows(2) {
                let Some(name) = w[1]
                    .strip_prefix("mod ")
                    .or_else(|| w[1].strip_prefix("pub mod "))
                    .or_else(|| w[1].strip_prefix("pub(crate) mod "))
                    .and_then(|m| m.strip_suffix(';'))
                else {
                    continue;
                };
                let base = if path.file_name().unwrap() == "mod.rs"
                    || path.file_name().unwrap() == "lib.rs"
                {
                    path.parent().unwrap().to_path_buf()
                } else {
                    path.with_extension("")
                };
                if w[0] == "#[cfg(test)]" {
                    test_only.push(base.join(format!("{name}.rs")));
                    test_only.push(base.join(name).join("mod.rs"));
                } else if let Some(p) = w[0]
                    .strip_prefix("#[path = \"")
                    .and_then(|p| p.strip_suffix("\"]"))
                {
                    moved.push((path.parent().unwrap().join(p), path.clone()));
                }
            }
            let rel = path.strip_prefix(src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let top = top.strip_suffix(".rs").unwrap_or(&top).to_string();
            files.insert(path, top);
        }
    }
    for (file, declared_in) in moved {
        let file = normalise(&file);
        let owner = files[&declared_in].clone();
        files.insert(file, owner);
    }
    for t in test_only {
        files.remove(&t);
    }
    files.retain(|_, top| top != "lib" && top != "main");
    files
}

/// `a/b/../c` as `a/c`.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Every import that names a module at or above its own layer.
fn upward(files: &BTreeMap<PathBuf, String>, src: &Path) -> Vec<String> {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut bad = Vec::new();
    for (path, top) in files {
        let me = rank(top).unwrap_or_else(|| panic!("{top} is not in LAYERS"));
        let text = fs::read_to_string(path).unwrap();
        let name = path.strip_prefix(src).unwrap().display().to_string();
        for i in imports_of(&name, &text) {
            if i.to == *top {
                continue;
            }
            match rank(&i.to) {
                Some(r) if r < me => {}
                Some(_) => bad.push(format!(
                    "src/{}:{}: `{}` (layer {}) imports `{}` (layer {})",
                    i.file,
                    i.line,
                    top,
                    me,
                    i.to,
                    rank(&i.to).unwrap()
                )),
                None => bad.push(format!(
                    "src/{}:{}: `{}` names `crate::{}`, which is not in LAYERS",
                    i.file, i.line, top, i.to
                )),
            }
        }
    }
    bad
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = source_files(&src);
    let bad = upward(&files, &src);
    assert!(
        bad.is_empty(),
        "upward imports (move the item down, or the module up in LAYERS):\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .collect();
    let mut want: Vec<&str> = LAYERS.to_vec();
    want.sort_unstable();
    let mut got = declared.clone();
    got.sort_unstable();
    assert_eq!(
        got, want,
        "src/lib.rs declares these modules; LAYERS must list each once"
    );
}

#[test]
fn the_reader_sees_every_form_of_import() {
    let text = "use crate::config::Binaries;\n\
                use crate::{paths::Paths, shared::{Provider, Scope}, clock};\n\
                use crate::{\n    store::Schedule,\n    timer,\n};\n\
                fn f() { crate::daemon::run(); let _ = crate::cli::x; }\n\
                // crate::preview in a comment\n\
                #[cfg(test)]\nmod tests { use crate::ingest; }\n";
    let got: Vec<(usize, String)> = imports_of("f.rs", text)
        .into_iter()
        .map(|i| (i.line, i.to))
        .collect();
    let want: Vec<(usize, String)> = [
        (1, "config"),
        (2, "paths"),
        (2, "shared"),
        (2, "clock"),
        (3, "store"),
        (3, "timer"),
        (7, "daemon"),
        (7, "cli"),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn an_upward_import_is_caught() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    fs::create_dir_all(src.join("config")).unwrap();
    fs::write(src.join("lib.rs"), "pub mod config;\npub mod daemon;\n").unwrap();
    fs::write(
        src.join("config/mod.rs"),
        "//! x\n#[path = \"../daemon_bits.rs\"]\nmod bits;\n#[cfg(test)]\nmod t;\n",
    )
    .unwrap();
    // test-only file: may import anything
    fs::write(src.join("config/t.rs"), "use crate::daemon::Run;\n").unwrap();
    // compiled into config through #[path]: counts as config
    fs::write(src.join("daemon_bits.rs"), "use crate::daemon::Run;\n").unwrap();
    fs::write(src.join("daemon.rs"), "use crate::config::X;\n").unwrap();
    let files = source_files(src);
    let bad = upward(&files, src);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("daemon_bits.rs:1: `config`") && bad[0].contains("imports `daemon`"),
        "{bad:?}"
    );
}

/// Issue 17, "a room per provider": outside `src/provider/` and the
/// detector core (`src/detect/`, which compiles each provider's detector in
/// and dispatches on the provider), only these files may name a provider
/// in code: the `Provider` enum itself, and the delivery route's record
/// names kept from before (`claude_armed`, `gemini_answer`, `claude_own`).
/// Comments and test code may name them.
const MAY_NAME_A_PROVIDER: &[&str] = &["shared/mod.rs", "resume/route.rs"];

/// The provider names, lower case.
const PROVIDER_NAMES: &[&str] = &["claude", "codex", "gemini", "copilot"];

/// Whether a line names a provider: one of [`PROVIDER_NAMES`], any case,
/// at the start of a word (`Provider::Claude`, `"codex"`, `ClaudeOwn`,
/// `CLAUDECODE`; not `my_claude`).
fn names_a_provider(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    PROVIDER_NAMES.iter().any(|name| {
        lower.match_indices(name).any(|(i, _)| {
            !lower[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    })
}

/// `file:line: text` of every code line outside the provider rooms and the
/// detector core that names a provider.
fn provider_names_outside_their_rooms(
    files: &BTreeMap<PathBuf, String>,
    src: &Path,
) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in files.keys() {
        let rel = path.strip_prefix(src).unwrap();
        if rel.starts_with("provider") || rel.starts_with("detect") {
            continue;
        }
        let text = fs::read_to_string(path).unwrap();
        let name = rel.display().to_string();
        for (n, l) in non_test_lines(&text) {
            if names_a_provider(l) {
                found
                    .entry(name.clone())
                    .or_default()
                    .push(format!("src/{name}:{n}: {}", l.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_provider_rooms_name_a_provider() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = source_files(&src);
    let found = provider_names_outside_their_rooms(&files, &src);
    let stray: Vec<&String> = found
        .iter()
        .filter(|(f, _)| !MAY_NAME_A_PROVIDER.contains(&f.as_str()))
        .flat_map(|(_, lines)| lines)
        .collect();
    assert!(
        stray.is_empty(),
        "code outside src/provider/ and src/detect/ names a provider (ask the \
         provider's trait instead, or move the code into its room):\n{}",
        stray
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(MAY_NAME_A_PROVIDER.len() <= 2, "issue 17: at most 2 files");
}

#[test]
fn the_provider_name_reader_skips_comments_and_tests_only() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    fs::create_dir_all(src.join("provider/x")).unwrap();
    fs::create_dir_all(src.join("resume")).unwrap();
    fs::write(src.join("lib.rs"), "pub mod provider;\npub mod resume;\n").unwrap();
    fs::write(
        src.join("provider/x/mod.rs"),
        "const A: &str = \"claude\";\n",
    )
    .unwrap();
    fs::write(
        src.join("resume/mod.rs"),
        "//! Claude's own continue\n\
         // Codex in a comment\n\
         fn a(p: Provider) -> bool { p == Provider::Gemini }\n\
         const B: &str = \"copilot\";\n\
         fn c() { std::env::remove_var(\"CLAUDECODE\"); }\n\
         fn d(my_claude: u8) {}\n\
         #[cfg(test)]\n\
         mod tests { const C: &str = \"codex\"; }\n",
    )
    .unwrap();
    let files = source_files(src);
    let found = provider_names_outside_their_rooms(&files, src);
    let lines: Vec<usize> = found["resume/mod.rs"]
        .iter()
        .map(|l| l.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5]);
    assert_eq!(found.len(), 1, "{found:?}");
}
