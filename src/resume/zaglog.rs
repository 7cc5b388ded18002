//! Appending lifecycle events to a zag session log (zag-contract §2.4).
//!
//! zag's writers take no lock, so we follow its rules for outside appenders:
//! read the file as generic JSON (zag's own hit lines have a duplicated key
//! and fail typed parsing), take seq = max + 1, copy `provider` and
//! `wrapper_session_id` from existing lines, and write each event as a single
//! `write(2)` of one line with its newline under `O_APPEND`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::Path;

/// Envelope facts taken from the existing log.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogHead {
    pub max_seq: Option<u64>,
    pub provider: Option<String>,
    pub wrapper_session_id: Option<String>,
    pub provider_session_id: Option<String>,
}

/// Scan a log's bytes for the highest seq and the envelope ids (pure).
pub fn scan_head(bytes: &[u8]) -> LogHead {
    let mut head = LogHead::default();
    for line in bytes.split(|&b| b == b'\n') {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if let Some(seq) = obj.get("seq").and_then(Value::as_u64) {
            head.max_seq = Some(head.max_seq.map_or(seq, |m| m.max(seq)));
        }
        let take = |slot: &mut Option<String>, key: &str| {
            if let Some(s) = obj.get(key).and_then(Value::as_str) {
                *slot = Some(s.to_string());
            }
        };
        take(&mut head.provider, "provider");
        take(&mut head.wrapper_session_id, "wrapper_session_id");
        take(&mut head.provider_session_id, "provider_session_id");
    }
    head
}

/// Build one log line (without newline) for an event kind and its fields.
pub fn event_line(
    head: &LogHead,
    fallback_provider: &str,
    fallback_wrapper: &str,
    ts: DateTime<Utc>,
    kind: &str,
    fields: Map<String, Value>,
) -> String {
    let provider = head
        .provider
        .clone()
        .unwrap_or_else(|| fallback_provider.to_string());
    let mut obj = Map::new();
    obj.insert("seq".into(), json!(head.max_seq.map_or(1, |m| m + 1)));
    obj.insert(
        "ts".into(),
        json!(ts.to_rfc3339_opts(SecondsFormat::Nanos, false)),
    );
    obj.insert("provider".into(), json!(provider));
    obj.insert(
        "wrapper_session_id".into(),
        json!(head
            .wrapper_session_id
            .clone()
            .unwrap_or_else(|| fallback_wrapper.to_string())),
    );
    obj.insert(
        "provider_session_id".into(),
        json!(head.provider_session_id),
    );
    obj.insert("source_kind".into(), json!("wrapper"));
    obj.insert("completeness".into(), json!("full"));
    obj.insert("type".into(), json!(kind));
    for (k, v) in fields {
        // zag's hit lines carry `provider` twice; a JSON object holds it once
        // with the same value, which is what raw readers see last anyway.
        obj.insert(k, v);
    }
    Value::Object(obj).to_string()
}

/// Append one event to the log at `path`, creating the file (and its
/// directory) if `zag gc` removed it.
pub fn append_event(
    path: &Path,
    fallback_provider: &str,
    fallback_wrapper: &str,
    ts: DateTime<Utc>,
    kind: &str,
    fields: Map<String, Value>,
) -> std::io::Result<()> {
    let line = prepare_event(path, fallback_provider, fallback_wrapper, ts, kind, fields)?;
    write_prepared(path, &line)
}

/// The bytes [`append_event`] would write, without writing them: the slow
/// part (reading the log for seq and ids) done ahead, so that the write can
/// follow an event (a CLI starting) as closely as possible.
pub fn prepare_event(
    path: &Path,
    fallback_provider: &str,
    fallback_wrapper: &str,
    ts: DateTime<Utc>,
    kind: &str,
    fields: Map<String, Value>,
) -> std::io::Result<String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let head = scan_head(&bytes);
    let mut line = event_line(&head, fallback_provider, fallback_wrapper, ts, kind, fields);
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        line.insert(0, '\n');
    }
    line.push('\n');
    Ok(line)
}

/// Write a line from [`prepare_event`]: one `write(2)` under `O_APPEND`.
pub fn write_prepared(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::private::create_dir_all(dir)?;
    }
    let mut f = crate::private::open_append(path)?;
    f.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn seq_is_max_plus_one_and_ids_are_copied() {
        let log = concat!(
            r#"{"seq":7,"provider":"claude","wrapper_session_id":"w1","provider_session_id":null,"type":"heartbeat"}"#,
            "\n",
            r#"{"seq":3,"provider":"claude","provider":"claude","type":"usage_limit_hit"}"#,
            "\n",
            "not json\n",
        );
        let head = scan_head(log.as_bytes());
        assert_eq!(head.max_seq, Some(7));
        assert_eq!(head.wrapper_session_id.as_deref(), Some("w1"));
        let ts = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let mut f = Map::new();
        f.insert("incident_id".into(), json!("i"));
        let line = event_line(&head, "x", "y", ts, "usage_limit_resumed", f);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["seq"], 8);
        assert_eq!(v["wrapper_session_id"], "w1");
        assert_eq!(v["source_kind"], "wrapper");
        assert_eq!(v["type"], "usage_limit_resumed");
        assert_eq!(v["ts"], "2030-01-01T00:00:00.000000000+00:00");
    }

    #[test]
    fn appends_recreate_a_collected_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("logs/sessions/w.jsonl");
        let ts = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        append_event(&p, "claude", "w", ts, "user_event", Map::new()).unwrap();
        append_event(&p, "claude", "w", ts, "user_event", Map::new()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, [1, 2]);
    }
}
