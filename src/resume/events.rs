//! A respawned CLI's output, turned into zag session-log events.
//!
//! For sessions zag launched, the continuation must show up in `zag events`,
//! so the resumed run's text is appended to the zag log. Modest on purpose:
//! only valid zag kinds (zag-contract §2.2): `assistant_message` for the
//! assistant's text, `provider_status` for the final result or an error. The
//! caller adds `user_message` before and `session_ended` after. Each provider
//! maps its own output lines
//! ([`ProviderCli::output_events`](crate::provider::ProviderCli::output_events));
//! this module bounds the whole. Pure: bytes in, events out, bounded in count
//! and size.

use serde_json::{json, Map, Value};

use crate::detect::Provider;

/// At most this many events per run, and this many bytes of text per event.
pub const MAX_EVENTS: usize = 200;
pub const MAX_TEXT: usize = 8 * 1024;

/// One event to append: its `type` and its variant fields.
pub type Event = (&'static str, Map<String, Value>);

/// Cut a text to [`MAX_TEXT`] bytes (on a char boundary), marking the cut.
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// An `assistant_message` event.
pub(crate) fn assistant(text: &str, id: Option<&str>) -> Event {
    (
        "assistant_message",
        fields(&[("content", json!(clip(text))), ("message_id", json!(id))]),
    )
}

/// A `provider_status` event.
pub(crate) fn status(message: &str, data: Value) -> Event {
    (
        "provider_status",
        fields(&[("message", json!(clip(message))), ("data", data)]),
    )
}

/// The events for a run's stdout (JSONL; other lines are ignored).
pub fn from_output(p: Provider, stdout: &[u8]) -> Vec<Event> {
    let cli = crate::provider::of(p);
    let mut out = Vec::new();
    for line in stdout.split(|&b| b == b'\n') {
        if out.len() >= MAX_EVENTS {
            break;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(line.trim_ascii()) {
            cli.output_events(&v, &mut out);
        }
    }
    out.truncate(MAX_EVENTS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded() {
        let line = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"x"}]}}"#;
        let many = format!("{line}\n").repeat(MAX_EVENTS + 50);
        assert_eq!(
            from_output(Provider::Claude, many.as_bytes()).len(),
            MAX_EVENTS
        );
        let big = "é".repeat(MAX_TEXT);
        assert!(clip(&big).len() <= MAX_TEXT + 3);
    }
}
