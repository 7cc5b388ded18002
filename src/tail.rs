//! Append-only reading of growing files, by device + inode + byte offset.
//!
//! A [`TailedFile`] reads only what was appended since its last read and
//! hands back complete lines; a partial last line waits for its newline. A
//! changed inode (deleted and re-created, rotated) starts over at byte 0; a
//! file shorter than the offset was truncated and also starts over. Lines
//! longer than the cap are cut to a prefix and the rest is skipped, so memory
//! stays bounded whatever a writer does.
//!
//! [`Checkpoints`] persist each file's identity and the offset *after the last
//! complete line*, written temp → fsync → rename. The daemon saves them only
//! after the incidents found in those lines are durable in a store, so a
//! restart never loses a limit; one re-read after a crash is made harmless by
//! incident dedupe.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Splits a byte stream into lines, holding a partial tail (pure).
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max_line: usize,
    /// The current line overflowed the cap: drop bytes until its newline.
    skipping: bool,
    /// Bytes of the current (unfinished) line, kept or skipped.
    pending_len: u64,
}

/// One complete line handed out by the splitter.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// The line was longer than the cap and is cut to its first bytes.
    pub truncated: bool,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max_line,
            skipping: false,
            pending_len: 0,
        }
    }

    /// Bytes of an unfinished line not yet handed out.
    pub fn pending_len(&self) -> u64 {
        self.pending_len
    }

    pub fn reset(&mut self) {
        self.partial.clear();
        self.skipping = false;
        self.pending_len = 0;
    }

    /// Feed bytes; `emit` gets every line completed by them (without `\n`,
    /// a trailing `\r` removed).
    pub fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(Line<'_>)) {
        while !bytes.is_empty() {
            match memchr::memchr(b'\n', bytes) {
                Some(i) => {
                    let (head, rest) = (&bytes[..i], &bytes[i + 1..]);
                    if self.partial.is_empty() && !self.skipping && head.len() <= self.max_line {
                        emit(Line {
                            bytes: strip_cr(head),
                            truncated: false,
                        });
                    } else {
                        self.keep(head);
                        let truncated = self.skipping;
                        emit(Line {
                            bytes: strip_cr(&self.partial),
                            truncated,
                        });
                        self.partial.clear();
                        self.skipping = false;
                    }
                    self.pending_len = 0;
                    bytes = rest;
                }
                None => {
                    self.keep(bytes);
                    self.pending_len += bytes.len() as u64;
                    return;
                }
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max_line.saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.partial.extend_from_slice(&bytes[..room]);
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }
}

fn strip_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// A file's identity on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Where reading stopped in one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub id: FileId,
    /// Offset after the last complete line handed out.
    pub offset: u64,
    /// Fingerprint of the file's first bytes: inode numbers are reused after
    /// a delete, so device+inode alone can mistake a new file for the old.
    #[serde(default)]
    pub head: Fingerprint,
}

/// A hash of a file's first (up to) [`FINGERPRINT_LEN`] bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub len: u32,
    pub hash: u64,
}

/// How many leading bytes identify a file's content.
pub const FINGERPRINT_LEN: usize = 256;

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Self {
        // FNV-1a: stable across runs and versions, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Fingerprint {
            len: bytes.len() as u32,
            hash: h,
        }
    }

    /// Read the fingerprint of an open file's first `len` bytes.
    fn read(f: &mut File, len: usize) -> std::io::Result<Self> {
        let mut buf = vec![0u8; len];
        f.seek(SeekFrom::Start(0))?;
        let mut got = 0;
        while got < len {
            let n = f.read(&mut buf[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(Fingerprint::of(&buf[..got]))
    }
}

/// What happened to a file between two reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileChange {
    Appended,
    /// A different inode at the same path: read from byte 0.
    Replaced,
    /// Shorter than our offset: read from byte 0.
    Truncated,
    /// The path no longer exists.
    Gone,
}

/// One file being tailed.
#[derive(Debug)]
pub struct TailedFile {
    pub path: PathBuf,
    id: Option<FileId>,
    head: Fingerprint,
    /// Offset of the next byte to read.
    read_to: u64,
    splitter: LineSplitter,
}

/// How much one read call takes at most before returning to the caller.
const READ_CHUNK: usize = 256 * 1024;

impl TailedFile {
    /// Start at a saved position (or at `start` for a file seen first).
    pub fn new(path: PathBuf, pos: Option<Position>, max_line: usize) -> Self {
        TailedFile {
            path,
            id: pos.map(|p| p.id),
            head: pos.map(|p| p.head).unwrap_or_default(),
            read_to: pos.map_or(0, |p| p.offset),
            splitter: LineSplitter::new(max_line),
        }
    }

    /// A file first seen now: skip what it holds already (or not).
    pub fn at_end(path: PathBuf, max_line: usize) -> std::io::Result<Self> {
        let mut f = open_regular(&path)?;
        let meta = f.metadata()?;
        let len = meta.len();
        Ok(TailedFile {
            id: Some(FileId::of(&meta)),
            head: Fingerprint::read(&mut f, head_len(len))?,
            read_to: len,
            splitter: LineSplitter::new(max_line),
            path,
        })
    }

    /// A file first seen now, read from the first whole line of its last
    /// `back` bytes (from byte 0 when it is shorter): the catch-up read of
    /// a first start, which looks only at what is near the end.
    pub fn near_end(path: PathBuf, max_line: usize, back: u64) -> std::io::Result<Self> {
        let mut t = TailedFile::at_end(path, max_line)?;
        let len = t.read_to;
        if len <= back {
            t.read_to = 0;
            return Ok(t);
        }
        let mut f = open_regular(&t.path)?;
        let from = len - back;
        f.seek(SeekFrom::Start(from - 1))?;
        let mut window = Vec::new();
        (&mut f).take(back + 1).read_to_end(&mut window)?;
        // Skip the line cut by the window's start (unless it starts one).
        t.read_to = match window.iter().position(|&b| b == b'\n') {
            Some(i) => from - 1 + i as u64 + 1,
            None => len,
        };
        Ok(t)
    }

    /// The position to persist: after the last complete line.
    pub fn position(&self) -> Option<Position> {
        self.id.map(|id| Position {
            id,
            offset: self.read_to - self.splitter.pending_len(),
            head: self.head,
        })
    }

    /// Read everything appended since the last call, calling `on_line` with
    /// each complete line. Returns what happened to the file.
    pub fn read_new(&mut self, mut on_line: impl FnMut(Line<'_>)) -> std::io::Result<FileChange> {
        let mut f = match open_regular(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Forget the identity: a file re-created here is new even
                // if the file system hands it the same inode number.
                if self.id.take().is_some() {
                    self.read_to = 0;
                    self.splitter.reset();
                }
                return Ok(FileChange::Gone);
            }
            Err(e) => return Err(e),
        };
        let meta = f.metadata()?;
        let id = FileId::of(&meta);
        let mut change = FileChange::Appended;
        if self.id != Some(id) {
            if self.id.is_some() {
                change = FileChange::Replaced;
            }
            self.restart(id);
        } else if meta.len() < self.read_to {
            change = FileChange::Truncated;
            self.restart(id);
        } else if self.head.len > 0
            && Fingerprint::read(&mut f, self.head.len as usize)? != self.head
        {
            change = FileChange::Replaced;
            self.restart(id);
        }
        f.seek(SeekFrom::Start(self.read_to))?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            self.read_to += n as u64;
            self.splitter.feed(&buf[..n], &mut on_line);
        }
        if (self.head.len as usize) < FINGERPRINT_LEN && self.read_to > u64::from(self.head.len) {
            self.head = Fingerprint::read(&mut f, head_len(self.read_to))?;
        }
        Ok(change)
    }

    fn restart(&mut self, id: FileId) {
        self.head = Fingerprint::default();
        self.id = Some(id);
        self.read_to = 0;
        self.splitter.reset();
    }
}

/// Open for reading without ever blocking: a FIFO or device that someone
/// named like a log would otherwise hang the reader on `open`.
fn open_regular(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

fn head_len(file_len: u64) -> usize {
    file_len.min(FINGERPRINT_LEN as u64) as usize
}

/// Saved positions of every tailed file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoints {
    pub version: u32,
    /// When the daemon last saved: files newer than this that have no entry
    /// were created while it was down and are read from the start.
    pub saved_at: Option<chrono::DateTime<chrono::Utc>>,
    pub files: BTreeMap<PathBuf, Position>,
}

impl Checkpoints {
    pub const VERSION: u32 = 1;

    /// Load; a missing file is `None` (first run), a corrupt one an error.
    pub fn load(path: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write temp → fsync → rename → fsync dir.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(s: &mut LineSplitter, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |l| {
                out.push((String::from_utf8_lossy(l.bytes).into_owned(), l.truncated))
            });
        }
        out
    }

    #[test]
    fn near_end_starts_at_a_whole_line_of_the_last_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        std::fs::write(&p, "aaaa\nbbbb\ncccc\n").unwrap();
        let lines = |back: u64| {
            let mut t = TailedFile::near_end(p.clone(), 1024, back).unwrap();
            let mut got = Vec::new();
            t.read_new(|l| got.push(String::from_utf8_lossy(l.bytes).into_owned()))
                .unwrap();
            got
        };
        assert_eq!(lines(100), ["aaaa", "bbbb", "cccc"]);
        // 7 bytes back cut "bbbb": it is skipped, "cccc" is whole.
        assert_eq!(lines(7), ["cccc"]);
        // Exactly at a line's start: that line is whole.
        assert_eq!(lines(10), ["bbbb", "cccc"]);
        assert!(lines(3).is_empty());
    }

    #[test]
    fn splitter_holds_partial_lines_until_newline() {
        let mut s = LineSplitter::new(100);
        let got = lines_of(&mut s, &[b"ab", b"c\nde", b"f\r\n\n", b"gh"]);
        assert_eq!(
            got,
            [
                ("abc".into(), false),
                ("def".into(), false),
                (String::new(), false)
            ]
        );
        assert_eq!(s.pending_len(), 2);
    }

    #[test]
    fn splitter_caps_giant_lines_and_recovers() {
        let mut s = LineSplitter::new(8);
        let big = [b'x'; 50];
        let got = lines_of(
            &mut s,
            &[&big[..20], &big[20..], b"\nok\n", b"0123456789\n"],
        );
        assert_eq!(
            got,
            [
                ("xxxxxxxx".into(), true),
                ("ok".into(), false),
                ("01234567".into(), true)
            ]
        );
        assert_eq!(s.pending_len(), 0);
    }

    #[test]
    fn tail_reads_appends_truncation_and_recreation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        std::fs::write(&p, "old\n").unwrap();
        let mut t = TailedFile::at_end(p.clone(), 1024).unwrap();
        let mut got = Vec::new();
        let read = |t: &mut TailedFile, got: &mut Vec<String>| {
            t.read_new(|l| got.push(String::from_utf8_lossy(l.bytes).into_owned()))
                .unwrap()
        };
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"one\ntw")
            .unwrap();
        assert_eq!(read(&mut t, &mut got), FileChange::Appended);
        assert_eq!(got, ["one"]);
        assert_eq!(t.position().unwrap().offset, 8);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"o\n")
            .unwrap();
        read(&mut t, &mut got);
        assert_eq!(got, ["one", "two"]);
        std::fs::write(&p, "x\n").unwrap(); // truncate in place
        assert_eq!(read(&mut t, &mut got), FileChange::Truncated);
        assert_eq!(got.last().unwrap(), "x");
        std::fs::remove_file(&p).unwrap();
        assert_eq!(read(&mut t, &mut got), FileChange::Gone);
        std::fs::write(&p, "new\n").unwrap();
        // Seen gone, so the re-created file is read from its start.
        assert_eq!(read(&mut t, &mut got), FileChange::Appended);
        assert_eq!(got.last().unwrap(), "new");
    }

    #[test]
    fn a_fifo_named_like_a_log_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        crate::child::mkfifo(&p).unwrap();
        let mut t = TailedFile::new(p.clone(), None, 64);
        assert!(t.read_new(|_| {}).is_err());
        assert!(TailedFile::at_end(p, 64).is_err());
    }

    #[test]
    fn same_inode_new_content_is_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "first line\n").unwrap();
        let mut t = TailedFile::new(p.clone(), None, 64);
        t.read_new(|_| {}).unwrap();
        // Rewrite in place (same inode), longer than before: not an append.
        std::fs::write(&p, "other text!\nand more\n").unwrap();
        let mut got = Vec::new();
        assert_eq!(
            t.read_new(|l| got.push(l.bytes.to_vec())).unwrap(),
            FileChange::Replaced
        );
        assert_eq!(got, [b"other text!".to_vec(), b"and more".to_vec()]);
    }

    #[test]
    fn resume_from_checkpoint_rereads_the_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "a\nb").unwrap();
        let mut t = TailedFile::new(p.clone(), None, 64);
        t.read_new(|_| {}).unwrap();
        let pos = t.position().unwrap();
        assert_eq!(pos.offset, 2);
        let cps = Checkpoints {
            version: 1,
            saved_at: None,
            files: [(p.clone(), pos)].into(),
        };
        let cp_path = dir.path().join("state/offsets.json");
        cps.save(&cp_path).unwrap();
        let loaded = Checkpoints::load(&cp_path).unwrap().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"c\n")
            .unwrap();
        let mut t2 = TailedFile::new(p.clone(), loaded.files.get(&p).copied(), 64);
        let mut got = Vec::new();
        t2.read_new(|l| got.push(l.bytes.to_vec())).unwrap();
        assert_eq!(got, [b"bc".to_vec()]);
    }
}
