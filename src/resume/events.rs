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

use serde_json::Value;

use crate::detect::Provider;
pub use crate::provider::events::{Event, MAX_EVENTS, MAX_TEXT};

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
    use crate::provider::events::clip;

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
