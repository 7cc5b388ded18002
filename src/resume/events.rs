//! A respawned CLI's output, turned into zag session-log events.
//!
//! For sessions zag launched, the continuation must show up in `zag events`,
//! so the resumed run's text is appended to the zag log. Modest on purpose:
//! only valid zag kinds (ZAG_INTEROP §2.2): `assistant_message` for the
//! assistant's text, `provider_status` for the final result or an error. The
//! caller adds `user_message` before and `session_ended` after. Pure: bytes in,
//! events out, bounded in count and size.

use serde_json::{json, Map, Value};

use crate::detect::Provider;

/// At most this many events per run, and this many bytes of text per event.
pub const MAX_EVENTS: usize = 200;
pub const MAX_TEXT: usize = 8 * 1024;

/// One event to append: its `type` and its variant fields.
pub type Event = (&'static str, Map<String, Value>);

fn clip(s: &str) -> String {
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

fn assistant(text: &str, id: Option<&str>) -> Event {
    (
        "assistant_message",
        fields(&[("content", json!(clip(text))), ("message_id", json!(id))]),
    )
}

fn status(message: &str, data: Value) -> Event {
    (
        "provider_status",
        fields(&[("message", json!(clip(message))), ("data", data)]),
    )
}

/// Events for one line of a provider's structured output.
fn line_events(p: Provider, v: &Value, out: &mut Vec<Event>) {
    let s = |ptr: &str| v.pointer(ptr).and_then(Value::as_str);
    let ty = s("/type").unwrap_or("");
    match (p, ty) {
        (Provider::Claude, "assistant") => {
            let id = s("/message/id");
            for b in v
                .pointer("/message/content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if b.get("type").and_then(Value::as_str) == Some("text") {
                    if let Some(t) = b.get("text").and_then(Value::as_str) {
                        out.push(assistant(t, id));
                    }
                }
            }
        }
        (Provider::Claude, "result") => out.push(status(
            s("/result").unwrap_or("result"),
            json!({
                "subtype": v.get("subtype"),
                "is_error": v.get("is_error"),
                "api_error_status": v.get("api_error_status"),
            }),
        )),
        (Provider::Codex, "item.completed") if s("/item/type") == Some("agent_message") => {
            if let Some(t) = s("/item/text") {
                out.push(assistant(t, s("/item/id")));
            }
        }
        (Provider::Codex, "error") => {
            out.push(status(s("/message").unwrap_or("error"), Value::Null))
        }
        (Provider::Codex, "turn.failed") => out.push(status(
            s("/error/message").unwrap_or("turn failed"),
            Value::Null,
        )),
        (Provider::Gemini, "message") if s("/role") == Some("assistant") => {
            if let Some(t) = s("/content") {
                // stream-json sends deltas: join a run of them into one message.
                match out.last_mut() {
                    Some(("assistant_message", f))
                        if v.get("delta").and_then(Value::as_bool) == Some(true) =>
                    {
                        let prev = f.get("content").and_then(Value::as_str).unwrap_or("");
                        let joined = clip(&format!("{prev}{t}"));
                        f.insert("content".into(), json!(joined));
                    }
                    _ => out.push(assistant(t, None)),
                }
            }
        }
        (Provider::Gemini, "result") => {
            let msg = s("/error/message").unwrap_or(s("/status").unwrap_or("result"));
            out.push(status(msg, json!({ "status": v.get("status") })));
        }
        (Provider::Copilot, "assistant.message") => {
            if let Some(t) = s("/data/content") {
                out.push(assistant(t, s("/data/messageId")));
            }
        }
        (Provider::Copilot, "session.error") => out.push(status(
            s("/data/message").unwrap_or("session error"),
            json!({ "errorType": v.pointer("/data/errorType") }),
        )),
        _ => {}
    }
}

/// The events for a run's stdout (JSONL; other lines are ignored).
pub fn from_output(p: Provider, stdout: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    for line in stdout.split(|&b| b == b'\n') {
        if out.len() >= MAX_EVENTS {
            break;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(line.trim_ascii()) {
            line_events(p, &v, &mut out);
        }
    }
    out.truncate(MAX_EVENTS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(e: &[Event]) -> Vec<&str> {
        e.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn each_provider_maps_text_and_status() {
        let claude = concat!(
            r#"{"type":"system","subtype":"init","session_id":"s"}"#,
            "\n",
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"Done."},{"type":"tool_use"}]}}"#,
            "\n",
            r#"{"type":"result","subtype":"success","is_error":false,"result":"Done."}"#,
            "\n",
            "not json\n"
        );
        let e = from_output(Provider::Claude, claude.as_bytes());
        assert_eq!(kinds(&e), ["assistant_message", "provider_status"]);
        assert_eq!(e[0].1["content"], "Done.");
        assert_eq!(e[0].1["message_id"], "m1");

        let codex = concat!(
            r#"{"type":"thread.started","thread_id":"t"}"#,
            "\n",
            r#"{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"ok"}}"#,
            "\n",
            r#"{"type":"turn.failed","error":{"message":"boom"}}"#,
            "\n"
        );
        let e = from_output(Provider::Codex, codex.as_bytes());
        assert_eq!(kinds(&e), ["assistant_message", "provider_status"]);
        assert_eq!(e[1].1["message"], "boom");

        let gemini = concat!(
            r#"{"type":"message","role":"assistant","content":"Hel","delta":true}"#,
            "\n",
            r#"{"type":"message","role":"assistant","content":"lo","delta":true}"#,
            "\n",
            r#"{"type":"result","status":"success"}"#,
            "\n"
        );
        let e = from_output(Provider::Gemini, gemini.as_bytes());
        assert_eq!(kinds(&e), ["assistant_message", "provider_status"]);
        assert_eq!(e[0].1["content"], "Hello");

        let copilot = concat!(
            r#"{"type":"assistant.message","data":{"content":"hi","messageId":"x"}}"#,
            "\n",
            r#"{"type":"result","sessionId":"s","exitCode":0}"#,
            "\n"
        );
        let e = from_output(Provider::Copilot, copilot.as_bytes());
        assert_eq!(kinds(&e), ["assistant_message"]);
    }

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
