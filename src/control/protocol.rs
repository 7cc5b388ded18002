//! The control socket's wire format: versioned JSON lines.
//!
//! A client writes one request per line and reads one response per line:
//!
//! ```text
//! → {"v":1,"op":"status"}
//! ← {"v":1,"ok":true,"data":{…StatusSnapshot…}}
//! → {"v":1,"op":"cancel","incident_id":"6f…"}
//! ← {"v":1,"ok":false,"error":"no pending incident 6f…"}
//! ```
//!
//! Ops and their `data`: `status` → [`StatusSnapshot`](super::StatusSnapshot),
//! `list` → `[PendingView]`, `cancel` (needs `incident_id`) → the cancelled
//! [`PendingView`](super::PendingView), `reload` → a string saying what
//! changed, `stop` → `null` (sent before the daemon starts draining),
//! `pause` (optional `until`, RFC 3339) → the [`PauseState`](super::pause::PauseState)
//! now in force, `unpause` → how many held resumes were released,
//! `binaries` → the provider CLIs as the daemon resolves them
//! ([`BinaryView`](super::BinaryView) per provider),
//! `subscribe` → `"subscribed"`, after which the connection carries one
//! [`IncidentEvent`](super::IncidentEvent) JSON object per line until either
//! side closes it. A subscriber that falls further behind than the daemon's
//! event buffer misses the overflow (the daemon logs it); a subscriber that
//! stops reading altogether is dropped.
//!
//! Invariants: every request line gets exactly one response line (an error
//! response for a line that is too long, not JSON, of another version or an
//! unknown op); parsing is pure and never panics; a request line is at most
//! [`MAX_LINE`] bytes. Unknown extra request keys are ignored, so a newer
//! client can add optional fields without bumping the version.

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// Longest request line accepted, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;

/// What a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Status,
    List,
    Cancel,
    Reload,
    Stop,
    Subscribe,
    Pause,
    Unpause,
    Binaries,
}

impl Op {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Status => "status",
            Op::List => "list",
            Op::Cancel => "cancel",
            Op::Reload => "reload",
            Op::Stop => "stop",
            Op::Subscribe => "subscribe",
            Op::Pause => "pause",
            Op::Unpause => "unpause",
            Op::Binaries => "binaries",
        }
    }

    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "status" => Op::Status,
            "list" => Op::List,
            "cancel" => Op::Cancel,
            "reload" => Op::Reload,
            "stop" => Op::Stop,
            "subscribe" => Op::Subscribe,
            "pause" => Op::Pause,
            "unpause" => Op::Unpause,
            "binaries" => Op::Binaries,
            _ => return None,
        })
    }
}

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// `pause`: until when (absent: until `unpause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

impl Request {
    /// A request of this build's version.
    pub fn new(op: Op) -> Self {
        Request {
            v: VERSION,
            op,
            incident_id: None,
            until: None,
        }
    }

    /// `pause`, until `until` or until `unpause`.
    pub fn pause(until: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        Request {
            until,
            ..Request::new(Op::Pause)
        }
    }

    /// `cancel <incident_id>`.
    pub fn cancel(incident_id: impl Into<String>) -> Self {
        Request {
            incident_id: Some(incident_id.into()),
            ..Request::new(Op::Cancel)
        }
    }

    /// The line to send, newline included.
    pub fn to_line(&self) -> String {
        line_of(self)
    }
}

/// One response line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// Success with a payload.
    pub fn ok(data: impl Serialize) -> Self {
        Response {
            v: VERSION,
            ok: true,
            // Our payload types are plain data: serializing cannot fail.
            data: Some(serde_json::to_value(data).unwrap_or(serde_json::Value::Null)),
            error: None,
        }
    }

    /// Failure with a message for people.
    pub fn err(message: impl Into<String>) -> Self {
        Response {
            v: VERSION,
            ok: false,
            data: None,
            error: Some(message.into()),
        }
    }

    /// The line to send, newline included.
    pub fn to_line(&self) -> String {
        line_of(self)
    }

    /// The payload as `T`, or why there is none.
    pub fn into_result<T: serde::de::DeserializeOwned>(self) -> Result<T, ReplyError> {
        if !self.ok {
            return Err(ReplyError::Refused(
                self.error.unwrap_or_else(|| "unspecified error".into()),
            ));
        }
        serde_json::from_value(self.data.unwrap_or(serde_json::Value::Null))
            .map_err(|e| ReplyError::Payload(e.to_string()))
    }
}

fn line_of(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// Why a response carries no usable payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The daemon answered with an error; its message for people, as is.
    #[error("{0}")]
    Refused(String),
    /// A success whose payload is not the expected type.
    #[error("unexpected response payload: {0}")]
    Payload(String),
}

/// Why a request line was refused; the `Display` text is the error reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("request line longer than {max} bytes")]
    TooLong { max: usize },
    #[error("request is not valid JSON: {0}")]
    NotJson(String),
    #[error("request must be a JSON object with \"v\" and \"op\"")]
    NotAnObject,
    #[error("unsupported protocol version {got} (this daemon speaks {VERSION})")]
    Version { got: String },
    #[error("unknown op {0:?} (expected status, list, cancel, reload, stop, subscribe, pause, unpause or binaries)")]
    UnknownOp(String),
    #[error("cancel needs a non-empty \"incident_id\"")]
    MissingIncident,
    #[error("pause: \"until\" must be an RFC 3339 time ({0})")]
    BadUntil(String),
}

/// Parse one request line (without its newline). Pure; never panics.
pub fn parse_request(line: &[u8]) -> Result<Request, ProtocolError> {
    if line.len() > MAX_LINE {
        return Err(ProtocolError::TooLong { max: MAX_LINE });
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
    let obj = value.as_object().ok_or(ProtocolError::NotAnObject)?;
    // Version first: a future version may have changed what `op` means.
    match obj.get("v") {
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => return Err(ProtocolError::Version { got: v.to_string() }),
        None => return Err(ProtocolError::NotAnObject),
    }
    let op_name = obj
        .get("op")
        .and_then(|o| o.as_str())
        .ok_or(ProtocolError::NotAnObject)?;
    let op = Op::parse(op_name).ok_or_else(|| ProtocolError::UnknownOp(op_name.into()))?;
    let incident_id = obj
        .get("incident_id")
        .and_then(|i| i.as_str())
        .map(str::to_owned);
    if op == Op::Cancel && incident_id.as_deref().map_or(true, str::is_empty) {
        return Err(ProtocolError::MissingIncident);
    }
    let until = match obj.get("until") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|e: serde_json::Error| ProtocolError::BadUntil(e.to_string()))?,
        ),
    };
    Ok(Request {
        v: VERSION,
        op,
        incident_id,
        until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for op in [
            Op::Status,
            Op::List,
            Op::Reload,
            Op::Stop,
            Op::Subscribe,
            Op::Unpause,
            Op::Binaries,
        ] {
            let r = Request::new(op);
            let line = r.to_line();
            assert_eq!(line, format!("{{\"v\":1,\"op\":\"{}\"}}\n", op.as_str()));
            assert_eq!(parse_request(line.trim_end().as_bytes()), Ok(r));
        }
        let c = Request::cancel("abc");
        assert_eq!(parse_request(c.to_line().trim_end().as_bytes()), Ok(c));
        let until = "2030-01-01T08:00:00Z".parse().unwrap();
        let p = Request::pause(Some(until));
        assert_eq!(
            p.to_line(),
            "{\"v\":1,\"op\":\"pause\",\"until\":\"2030-01-01T08:00:00Z\"}\n"
        );
        assert_eq!(parse_request(p.to_line().trim_end().as_bytes()), Ok(p));
    }

    #[test]
    fn bad_requests_are_errors_with_reasons() {
        let cases: &[(&str, &str)] = &[
            ("", "not valid JSON"),
            ("not json", "not valid JSON"),
            ("[1,2]", "JSON object"),
            ("{\"op\":\"status\"}", "JSON object"),
            ("{\"v\":2,\"op\":\"status\"}", "version 2"),
            ("{\"v\":\"1\",\"op\":\"status\"}", "version \"1\""),
            ("{\"v\":1,\"op\":\"explode\"}", "unknown op \"explode\""),
            ("{\"v\":1,\"op\":7}", "JSON object"),
            ("{\"v\":1,\"op\":\"cancel\"}", "incident_id"),
            (
                "{\"v\":1,\"op\":\"cancel\",\"incident_id\":\"\"}",
                "incident_id",
            ),
            (
                "{\"v\":1,\"op\":\"pause\",\"until\":\"monday\"}",
                "RFC 3339",
            ),
            ("{\"v\":1,\"op\":\"pause\",\"until\":7}", "RFC 3339"),
        ];
        for (line, want) in cases {
            let e = parse_request(line.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{line:?} gave {e:?}, want {want:?}");
        }
        let long = vec![b' '; MAX_LINE + 1];
        assert_eq!(
            parse_request(&long),
            Err(ProtocolError::TooLong { max: MAX_LINE })
        );
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let r = parse_request(br#"{"v":1,"op":"list","extra":true}"#).unwrap();
        assert_eq!(r, Request::new(Op::List));
    }

    #[test]
    fn responses_have_the_documented_shape() {
        assert_eq!(
            Response::ok(vec![1, 2]).to_line(),
            "{\"v\":1,\"ok\":true,\"data\":[1,2]}\n"
        );
        assert_eq!(
            Response::err("nope").to_line(),
            "{\"v\":1,\"ok\":false,\"error\":\"nope\"}\n"
        );
        let back: Response = serde_json::from_str("{\"v\":1,\"ok\":true,\"data\":null}").unwrap();
        assert_eq!(back.into_result::<()>(), Ok(()));
        assert_eq!(
            Response::err("x").into_result::<()>(),
            Err(ReplyError::Refused("x".to_string()))
        );
        let wrong = Response::ok("text").into_result::<u32>().unwrap_err();
        assert!(matches!(wrong, ReplyError::Payload(_)));
        assert!(wrong
            .to_string()
            .starts_with("unexpected response payload: "));
    }
}
