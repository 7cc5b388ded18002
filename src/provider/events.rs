//! The provider trait's vocabulary for a resumed run's output: zag
//! session-log events ([`Event`]) and their two builders, bounded in size.
//! Each provider maps its output lines with them
//! ([`ProviderCli::output_events`](super::ProviderCli::output_events));
//! `resume::events` bounds the whole run.

use serde_json::{json, Map, Value};

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
