//! Files and folders only their owner may read: the stores, the offsets and
//! every state file are created `0600`, the folders made for them `0700`.
//!
//! Why: they hold prompts, working directories and session ids. Created
//! with the default umask they would be readable by anyone who can reach
//! HOME. The mode is given at creation (no window with a wider one); a file
//! or folder that already exists keeps its mode: never loosened, and not
//! tightened behind the user's back either (zag's own files are zag's).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Mode of the files the daemon creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the folders the daemon creates.
pub const DIR_MODE: u32 = 0o700;

/// `create_dir_all`, with every folder it creates `0700`.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Open `path` for appending (and reading), creating it `0600`.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Create (or truncate) `path` for writing, `0600` when created.
pub fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_existing_left_as_they_are() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert_eq!(mode(&d.path().join("a")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        let f = deep.join("store.jsonl");
        drop(open_append(&f).unwrap());
        assert_eq!(mode(&f), 0o600);
        // an existing file or folder keeps its own mode
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(open_append(&f).unwrap());
        drop(create(&f).unwrap());
        assert_eq!(mode(&f), 0o640);
        std::fs::set_permissions(&deep, std::fs::Permissions::from_mode(0o750)).unwrap();
        create_dir_all(&deep).unwrap();
        assert_eq!(mode(&deep), 0o750);
    }
}
