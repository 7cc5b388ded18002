//! A hand-written reader for the one JSON shape store lines come in.
//!
//! zag and this daemon both write each record with `serde_json::to_string`:
//! one flat object, no whitespace, string, number, boolean and null values.
//! Parsing that shape by hand is about twice as fast as serde's generic
//! deserializer, which is most of a start-up replay's time. The reader is
//! deliberately narrow: anything outside that shape (whitespace, an escape
//! sequence, a nested value, a duplicate or mistyped field, a number that is
//! not a plain `u32`) makes it answer `None`, and serde then decides. So it
//! never changes what a line means: whatever it accepts, serde accepts with
//! the same value (the differential test at the bottom checks this on
//! thousands of mutated lines).

use super::{parse_time, Action, CompleteStatus, FlatRecord};

/// Read `line` (trimmed, non-empty) into a [`FlatRecord`], or `None` when the
/// line is outside the fast shape.
pub(super) fn scan_flat(line: &[u8]) -> Option<FlatRecord> {
    // One validation of the whole line; every string value is then a slice
    // of it between two ASCII quotes, so it is valid UTF-8 too.
    let text = std::str::from_utf8(line).ok()?;
    let mut s = Scanner { text, pos: 0 };
    let mut f = Fields::default();
    s.eat(b'{')?;
    if s.peek()? == b'}' {
        return None; // `action` and `incident_id` are required
    }
    loop {
        let key = s.string()?;
        s.eat(b':')?;
        let value = s.value()?;
        f.set(key, value)?;
        match s.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    if s.pos != text.len() {
        return None; // trailing bytes: serde's error to give
    }
    f.finish()
}

/// One simple JSON value, borrowed from the line.
#[derive(Clone, Copy)]
enum Value<'a> {
    Str(&'a str),
    Uint(u32),
    Bool(bool),
    Null,
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let bytes = &self.text.as_bytes()[self.pos..];
        // One pass: an escape or a control character ends the fast path as
        // surely as the closing quote.
        let end = string_end(bytes)?;
        if bytes[end] != b'"' {
            return None;
        }
        let s = &self.text[self.pos..self.pos + end];
        self.pos += end + 1;
        Some(s)
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Value::Str),
            b'0'..=b'9' => self.uint().map(Value::Uint),
            _ => {
                let rest = &self.text.as_bytes()[self.pos..];
                let (v, len) = if rest.starts_with(b"null") {
                    (Value::Null, 4)
                } else if rest.starts_with(b"true") {
                    (Value::Bool(true), 4)
                } else if rest.starts_with(b"false") {
                    (Value::Bool(false), 5)
                } else {
                    return None;
                };
                self.pos += len;
                Some(v)
            }
        }
    }

    /// A plain unsigned integer that fits a `u32` (no sign, fraction,
    /// exponent or leading zero).
    fn uint(&mut self) -> Option<u32> {
        let bytes = &self.text.as_bytes()[self.pos..];
        let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        if len > 1 && bytes[0] == b'0' {
            return None;
        }
        if matches!(bytes.get(len), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let n = self.text[self.pos..self.pos + len].parse().ok()?;
        self.pos += len;
        Some(n)
    }
}

/// The index of the first `"`, `\` or control character (below 0x20) in
/// `bytes`. Eight bytes at a time: the string values are most of a line's
/// bytes, and this scan was most of the reader's time byte by byte
/// (`memchr` was slower still on strings this short).
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A high bit set in each byte of `w` that is zero; a byte above the
    // first zero byte may be flagged by the borrow too, never one below.
    let zero_bytes = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().expect("a chunk of 8"));
        // Below 0x20: `w - 0x20..` borrows out of exactly such bytes (bytes
        // of 0x80 and up are cleared by `!w`), with the same caveat.
        let hits = zero_bytes(w ^ u64::from_ne_bytes([b'"'; 8]))
            | zero_bytes(w ^ u64::from_ne_bytes([b'\\'; 8]))
            | (w.wrapping_sub(u64::from_ne_bytes([0x20; 8])) & !w & HIGHS);
        if hits != 0 {
            // The lowest flag is a true one (little-endian: the first byte).
            return Some(base + hits.trailing_zeros() as usize / 8);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| base + i)
}

/// The fields seen so far. Each `Option<Option<_>>` is "not seen" / "seen,
/// null" / "seen, value", so a duplicate key can be refused as serde does.
#[derive(Default)]
struct Fields<'a> {
    action: Option<Action>,
    incident_id: Option<&'a str>,
    strings: [Option<Option<&'a str>>; STRING_KEYS.len()],
    log_path: Option<&'a str>,
    when: Option<Option<chrono::DateTime<chrono::Utc>>>,
    reset_at: Option<Option<chrono::DateTime<chrono::Utc>>>,
    hit_at: Option<Option<chrono::DateTime<chrono::Utc>>>,
    wait_from: Option<Option<chrono::DateTime<chrono::Utc>>>,
    attempt: Option<Option<u32>>,
    fallback_used: Option<Option<bool>>,
    custom_message: Option<Option<bool>>,
    force: Option<Option<bool>>,
    status: Option<Option<CompleteStatus>>,
}

/// `FlatRecord`'s `Option<String>` fields, in the order of `Fields::strings`.
const STRING_KEYS: [&str; 17] = [
    "session_id",
    "provider",
    "model",
    "root",
    "message",
    "origin",
    "scope",
    "provider_session_id",
    "wrapper_session_id",
    "cwd",
    "prompt",
    "source_file",
    "chain_id",
    "raw",
    "error",
    "permission_mode",
    "needs_user",
];

/// The index of `key` in [`STRING_KEYS`] (one `match`, not a search).
fn string_key(key: &str) -> Option<usize> {
    Some(match key {
        "session_id" => 0,
        "provider" => 1,
        "model" => 2,
        "root" => 3,
        "message" => 4,
        "origin" => 5,
        "scope" => 6,
        "provider_session_id" => 7,
        "wrapper_session_id" => 8,
        "cwd" => 9,
        "prompt" => 10,
        "source_file" => 11,
        "chain_id" => 12,
        "raw" => 13,
        "error" => 14,
        "permission_mode" => 15,
        "needs_user" => 16,
        _ => return None,
    })
}

/// Store `v` in `slot` unless the key was already seen (a duplicate).
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(v);
            Some(())
        }
    }
}

fn opt_str(v: Value<'_>) -> Option<Option<&str>> {
    match v {
        Value::Str(s) => Some(Some(s)),
        Value::Null => Some(None),
        _ => None,
    }
}

fn opt_bool(v: Value<'_>) -> Option<Option<bool>> {
    match v {
        Value::Bool(b) => Some(Some(b)),
        Value::Null => Some(None),
        _ => None,
    }
}

fn opt_time(v: Value<'_>) -> Option<Option<chrono::DateTime<chrono::Utc>>> {
    match v {
        Value::Str(s) => parse_time(s).map(Some),
        Value::Null => Some(None),
        _ => None,
    }
}

impl<'a> Fields<'a> {
    fn set(&mut self, key: &str, v: Value<'a>) -> Option<()> {
        match key {
            "action" => {
                let a = match v {
                    Value::Str("schedule") => Action::Schedule,
                    Value::Str("complete") => Action::Complete,
                    Value::Str("cancel") => Action::Cancel,
                    _ => return None,
                };
                once(&mut self.action, a)
            }
            "incident_id" => match v {
                Value::Str(s) => once(&mut self.incident_id, s),
                _ => None,
            },
            "log_path" => match v {
                Value::Str(s) => once(&mut self.log_path, s),
                _ => None,
            },
            "when" => once(&mut self.when, opt_time(v)?),
            "reset_at" => once(&mut self.reset_at, opt_time(v)?),
            "hit_at" => once(&mut self.hit_at, opt_time(v)?),
            "wait_from" => once(&mut self.wait_from, opt_time(v)?),
            "attempt" => match v {
                Value::Uint(n) => once(&mut self.attempt, Some(n)),
                Value::Null => once(&mut self.attempt, None),
                _ => None,
            },
            "fallback_used" => once(&mut self.fallback_used, opt_bool(v)?),
            "custom_message" => once(&mut self.custom_message, opt_bool(v)?),
            "force" => once(&mut self.force, opt_bool(v)?),
            "status" => {
                let st = match v {
                    Value::Str("resumed") => Some(CompleteStatus::Resumed),
                    Value::Str("failed") => Some(CompleteStatus::Failed),
                    Value::Null => None,
                    _ => return None,
                };
                once(&mut self.status, st)
            }
            _ => match string_key(key) {
                Some(i) => once(&mut self.strings[i], opt_str(v)?),
                // An unknown key: serde ignores it, whatever its value.
                None => Some(()),
            },
        }
    }

    fn finish(self) -> Option<FlatRecord> {
        let [session_id, provider, model, root, message, origin, scope, provider_session_id, wrapper_session_id, cwd, prompt, source_file, chain_id, raw, error, permission_mode, needs_user] =
            self.strings.map(|s| s.flatten().map(str::to_owned));
        Some(FlatRecord {
            action: self.action?,
            incident_id: self.incident_id?.to_owned(),
            session_id,
            provider,
            model,
            root,
            when: self.when.flatten(),
            message,
            attempt: self.attempt.flatten(),
            log_path: self.log_path.unwrap_or_default().to_owned(),
            origin,
            scope,
            reset_at: self.reset_at.flatten(),
            fallback_used: self.fallback_used.flatten(),
            custom_message: self.custom_message.flatten(),
            force: self.force.flatten(),
            provider_session_id,
            wrapper_session_id,
            cwd,
            prompt,
            source_file,
            hit_at: self.hit_at.flatten(),
            wait_from: self.wait_from.flatten(),
            chain_id,
            raw,
            permission_mode,
            // Nested objects are outside the fast shape: a line with them
            // went to serde.
            cwd_identity: None,
            live: None,
            needs_user,
            status: self.status.flatten(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_record_with_serde, Record};
    use super::*;

    /// What the store's parser answers with the fast reader in front.
    fn fast(line: &[u8]) -> Option<Record> {
        scan_flat(line).and_then(FlatRecord::into_record)
    }

    fn base_lines() -> Vec<String> {
        vec![
            r#"{"action":"schedule","incident_id":"3f0c8c38-6a1e-5b8e-9d55-0c7e1c1f2a10","session_id":"w-1","provider":"claude","model":"claude-sonnet-4","when":"2030-01-01T08:00:00.250+02:00","message":"Continue","attempt":1,"log_path":"/home/u/.zag/logs/sessions/w-1.jsonl","origin":"zag-resumed","scope":"session","reset_at":"2030-01-01T06:00:00Z","fallback_used":false,"provider_session_id":"6873a0e2","wrapper_session_id":"w-1","cwd":"/home/u/src/p","prompt":"café ☕ 3:35am","source_file":"/x.jsonl","hit_at":"2030-01-01T01:00:00Z","chain_id":null,"raw":"You've hit your limit · resets 3:35am (UTC)"}"#.to_string(),
            r#"{"action":"schedule","incident_id":"a","session_id":"s","provider":"gemini","root":null,"when":"2030-01-01T08:00:00Z","message":"Go","attempt":3,"log_path":"","extra":"kept out","n":null,"flag":true,"custom_message":true,"force":null}"#.to_string(),
            r#"{"action":"complete","incident_id":"a","status":"resumed"}"#.to_string(),
            r#"{"action":"complete","incident_id":"a","status":"failed","error":"boom"}"#.to_string(),
            r#"{"action":"cancel","incident_id":"b"}"#.to_string(),
        ]
    }

    /// Whatever the fast reader accepts, serde accepts with the same value:
    /// checked on the base lines and on every single-byte deletion and
    /// duplication of them, and every insertion or replacement of a byte
    /// that matters to JSON.
    #[test]
    fn agrees_with_serde_on_every_mutation() {
        let specials: &[u8] = b"\"\\{}[],:0123456789.-+eEtnfu \t\x01\xff\xc3a";
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for base in base_lines() {
            let b = base.as_bytes();
            lines.push(b.to_vec());
            for i in 0..b.len() {
                let mut del = b.to_vec();
                del.remove(i);
                lines.push(del);
                let mut dup = b.to_vec();
                dup.insert(i, b[i]);
                lines.push(dup);
                for &c in specials {
                    let mut rep = b.to_vec();
                    rep[i] = c;
                    lines.push(rep);
                    let mut ins = b.to_vec();
                    ins.insert(i, c);
                    lines.push(ins);
                }
            }
        }
        let (mut accepted, mut refused) = (0, 0);
        for line in &lines {
            let Some(got) = fast(line) else {
                refused += 1;
                continue;
            };
            accepted += 1;
            let want = parse_record_with_serde(line);
            assert_eq!(
                Ok(&got),
                want.as_ref(),
                "fast reader and serde disagree on {}",
                String::from_utf8_lossy(line)
            );
        }
        // The check has teeth: many mutants are accepted (and compared),
        // many refused.
        assert!(
            accepted > 2_000 && refused > 2_000,
            "{accepted} accepted, {refused} refused"
        );
        eprintln!("{accepted} mutants accepted and compared, {refused} refused");
    }

    /// The word-at-a-time scan finds what a byte-by-byte one finds, on
    /// strings of every length up to three words made of the bytes around
    /// its stops (each stop, its neighbours, high bytes), at every offset.
    #[test]
    fn string_end_agrees_with_a_byte_scan() {
        let alphabet: &[u8] = b"ab\"\\\x00\x1f\x20\x21\x5b\x5d\x7f\x80\xa2\xdc\xff\x01";
        let plain = |s: &[u8]| s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        // A fixed xorshift: the same strings every run.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut found, mut none) = (0, 0);
        for _ in 0..200_000 {
            let len = (next() % 25) as usize;
            // Mostly plain bytes, so a stop often sits deep in the string.
            let s: Vec<u8> = (0..len)
                .map(|_| match next() % 8 {
                    0 => alphabet[(next() % alphabet.len() as u64) as usize],
                    _ => b'a' + (next() % 26) as u8,
                })
                .collect();
            let want = plain(&s);
            assert_eq!(string_end(&s), want, "{s:x?}");
            match want {
                Some(_) => found += 1,
                None => none += 1,
            }
        }
        assert!(
            found > 10_000 && none > 10_000,
            "{found} found, {none} none"
        );
    }

    #[test]
    fn string_keys_are_indexed_in_order() {
        for (i, k) in STRING_KEYS.iter().enumerate() {
            assert_eq!(string_key(k), Some(i), "{k}");
        }
        assert_eq!(string_key("incident_id"), None);
    }

    #[test]
    fn takes_the_shape_both_writers_produce_and_refuses_the_rest() {
        for line in base_lines() {
            assert!(fast(line.as_bytes()).is_some(), "{line}");
        }
        for refused in [
            r#"{ "action":"cancel","incident_id":"b"}"#, // whitespace
            r#"{"action":"cancel","incident_id":"b\u0041"}"#, // an escape
            r#"{"action":"cancel","incident_id":"b","x":{}}"#, // nested
            r#"{"action":"cancel","action":"cancel","incident_id":"b"}"#, // duplicate
            r#"{"action":"schedule","incident_id":"a","session_id":"s","provider":"p","when":"2030-01-01T08:00:00Z","message":"m","attempt":1.0}"#,
            r#"{"action":"cancel","incident_id":"b"}x"#,
            r#"{"action":"cancel"}"#,
            r#"{}"#,
        ] {
            assert!(fast(refused.as_bytes()).is_none(), "{refused}");
        }
    }
}
