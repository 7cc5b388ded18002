//! Allocation-free skimming of one JSON line's top-level object.
//!
//! The corpus is dominated by megabyte `tool_result` lines. Parsing them into
//! a tree to learn that they are tool results would cost more than reading
//! them. [`skim`] walks only the top-level keys, skipping each value with
//! `memchr` over the few bytes that can end it, and lets the caller stop as
//! soon as it has seen enough (usually the `type`, which zag writes before the
//! payload). Values come back as raw byte spans; [`str_of`] decodes a string
//! span, borrowing when it holds no escapes.
//!
//! Invariant: never panics and never allocates on malformed, truncated or
//! non-UTF-8 input; it simply stops.

use std::borrow::Cow;

fn ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && ws(s[i]) {
        i += 1;
    }
    i
}

/// `s[i] == b'"'`; returns the index just past the closing quote.
fn skip_string(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', s.get(j..)?)?;
        if s[k] == b'"' {
            return Some(k + 1);
        }
        j = k + 2;
    }
}

/// Skip one value starting at `i`; returns the index just past it.
pub fn skip_value(s: &[u8], i: usize) -> Option<usize> {
    match *s.get(i)? {
        b'"' => skip_string(s, i),
        open @ (b'{' | b'[') => {
            // Only this bracket kind needs counting: the other kind is
            // balanced inside, and strings are skipped whole.
            let close = if open == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            let mut j = i;
            loop {
                let k = j + memchr::memchr3(b'"', open, close, s.get(j..)?)?;
                match s[k] {
                    b'"' => j = skip_string(s, k)?,
                    c if c == open => {
                        depth += 1;
                        j = k + 1;
                    }
                    _ => {
                        depth -= 1;
                        j = k + 1;
                        if depth == 0 {
                            return Some(j);
                        }
                    }
                }
            }
        }
        _ => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']') && !ws(s[j]) {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Walk the top-level object of `line`, calling `f(key, value)` for each
/// member (`key` without quotes, escapes untouched; `value` raw). `f` returns
/// `false` to stop. Returns `true` when the object was walked to its end.
pub fn skim<'a>(line: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8]) -> bool) -> bool {
    let mut i = skip_ws(line, 0);
    if line.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(line, i + 1);
    if line.get(i) == Some(&b'}') {
        return true;
    }
    loop {
        if line.get(i) != Some(&b'"') {
            return false;
        }
        let Some(kend) = skip_string(line, i) else {
            return false;
        };
        let key = &line[i + 1..kend - 1];
        i = skip_ws(line, kend);
        if line.get(i) != Some(&b':') {
            return false;
        }
        i = skip_ws(line, i + 1);
        let Some(vend) = skip_value(line, i) else {
            return false;
        };
        if !f(key, &line[i..vend]) {
            return false;
        }
        i = skip_ws(line, vend);
        match line.get(i) {
            Some(b',') => i = skip_ws(line, i + 1),
            Some(b'}') => return true,
            _ => return false,
        }
    }
}

/// Decode a raw string value; borrowed when it has no escapes.
pub fn str_of(raw: &[u8]) -> Option<Cow<'_, str>> {
    if raw.len() < 2 || raw[0] != b'"' || raw[raw.len() - 1] != b'"' {
        return None;
    }
    let inner = &raw[1..raw.len() - 1];
    if memchr::memchr(b'\\', inner).is_none() {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<String>(raw).ok().map(Cow::Owned)
}

/// `true` for the raw value `true`.
pub fn is_true(raw: &[u8]) -> bool {
    raw == b"true"
}

/// The top-level members of a skimmed object, as raw spans.
pub(crate) struct Top<'a> {
    pub(crate) pairs: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Top<'a> {
    /// Last occurrence wins, as in `serde_json::Value` (zag writes
    /// `provider` twice on hit lines).
    pub fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    pub fn str(&self, key: &[u8]) -> Option<Cow<'a, str>> {
        str_of(self.get(key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(line: &str) -> (Vec<String>, bool) {
        let mut out = Vec::new();
        let done = skim(line.as_bytes(), |k, v| {
            out.push(format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            ));
            true
        });
        (out, done)
    }

    #[test]
    fn walks_top_level_members_only() {
        let (k, done) = keys(
            r#"{"a":1, "b" : {"x":"}{\"","y":[1,{"z":"]"}]}, "c":"q\"\\","d":[[],[{}]],"e":null}"#,
        );
        assert!(done);
        assert_eq!(
            k,
            [
                "a=1",
                r#"b={"x":"}{\"","y":[1,{"z":"]"}]}"#,
                r#"c="q\"\\""#,
                "d=[[],[{}]]",
                "e=null"
            ]
        );
    }

    #[test]
    fn stops_cleanly_on_truncated_or_garbage_input() {
        for bad in [
            "",
            "{",
            r#"{"a":"#,
            r#"{"a":"unterminated"#,
            r#"{"a":{"b":[1,2"#,
            r#"{"a":1 "b":2}"#,
            "not json",
            r#"{"a\"#,
        ] {
            let (_, done) = keys(bad);
            assert!(!done, "{bad}");
        }
        let (k, done) = keys(r#"{"a":1,"b":"tru"#);
        assert!(!done);
        assert_eq!(k, ["a=1"]);
    }

    #[test]
    fn decodes_strings() {
        assert_eq!(str_of(br#""plain""#).unwrap(), "plain");
        assert_eq!(str_of(br#""You\u2019ve \"x\"""#).unwrap(), "You’ve \"x\"");
        assert!(str_of(b"12").is_none());
        assert!(str_of(b"\"\xff\"").is_none());
    }
}
