//! What Claude Code's own auto-continue is doing, read from the transcript
//! lines written after a usage-limit entry. Pure.
//!
//! Why: since 2.1.332 the Claude TUI continues a limited session by itself
//! (reset + 30–90 s). If the daemon also resumes it, the transcript forks.
//! The daemon must stand down while Claude's continue is armed, and take
//! over exactly when Claude says it will not continue.
//!
//! Records, as written by the real TUI (`tests/fixtures/live/`):
//! - armed: `{"type":"system","subtype":"informational","level":"notice",
//!   "content":"Usage limit reached · set to continue automatically at 7:21pm"}`
//!   (late 2026: `Usage limit reached · continuing automatically at 7pm · esc
//!   or type to cancel`, and after a continuation met the limit again `Usage
//!   limit reached again after you continued · continuing automatically at …`);
//! - continued: the notice `Usage limit reset · Continuing automatically`
//!   (late 2026: lower-case `continuing`),
//!   then a user entry with `isMeta:true`, `origin.kind:"auto-continuation"`,
//!   `turnOrigin:"auto_continuation"`;
//! - cancelled by the user (Esc, or the first Ctrl-C): the notice
//!   `Automatic continue cancelled · /rate-limit-options to wait again`;
//! - exited during the wait: a `level:"warning"` notice
//!   `Automatic continue cancelled · Claude Code exited during the wait, …`;
//! - armed from the menu (setting off, "2. Wait here, then continue
//!   automatically" chosen in `/rate-limit-options`): no notice, but the
//!   local command's output entry `<local-command-stdout>Claude Code will
//!   continue automatically shortly. …`;
//! - stopped: `Automatic continue stopped after repeated usage-limit hits`,
//!   `… resets more than 24 hours out …`, `… login changed or ended …`,
//!   `Automatic continue was turned off`, `… did not run …` (wording from
//!   the binary, not provoked here).
//!
//! Structure decides first (entry type, subtype, `origin`, `turnOrigin`,
//! `isMeta`, `level`); the notice text only says *which* notice it is. A
//! typed human turn after the limit is recorded too: the user continued the
//! session themselves. `/exit` bookkeeping (`<command-name>` entries, the
//! local-command caveat) is not a turn.
//!
//! The verdict is the last decisive record: a cancel followed by
//! `/rate-limit-options` → "wait here" re-arms, and the later arm wins.

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use crate::provider::own_continue::{cancel_was_exit, AutoContinue, StopReason, Verdict};

/// Whether an entry is the one Claude Code 2.1.332 writes as it exits: a
/// `cost-state` line (no timestamp). Captured once per process, last, on
/// every clean exit (`/exit`, Ctrl-C), never while the TUI lived; **not**
/// written when the TUI was killed with its tmux server. A hint, then: the
/// process's liveness is the proof.
pub fn is_exit_record(entry: &Value) -> bool {
    entry.get("type").and_then(Value::as_str) == Some("cost-state")
}

/// One decisive record, or `None` for anything else.
pub fn classify(entry: &Value) -> Option<AutoContinue> {
    let ty = entry.get("type").and_then(Value::as_str)?;
    match ty {
        "system" => classify_notice(entry),
        "user" => classify_user(entry),
        _ => None,
    }
}

fn classify_user(e: &Value) -> Option<AutoContinue> {
    if let Some(armed) = menu_choice_armed(e) {
        return Some(armed);
    }
    let origin = e.pointer("/origin/kind").and_then(Value::as_str);
    let turn_origin = e.get("turnOrigin").and_then(Value::as_str);
    if origin == Some("auto-continuation") || turn_origin == Some("auto_continuation") {
        return Some(AutoContinue::Continued);
    }
    let is_meta = e.get("isMeta").and_then(Value::as_bool).unwrap_or(false);
    let human = origin == Some("human") || turn_origin == Some("human");
    if is_meta || !human || is_bookkeeping(e) {
        return None;
    }
    Some(AutoContinue::ContinuedByUser)
}

/// With the setting off, choosing "2. Wait here, then continue
/// automatically" in the `/rate-limit-options` menu arms the same continue
/// without an arm notice: the local command's output entry says so
/// (`<local-command-stdout>Claude Code will continue automatically shortly.
/// Keep this session open; …`; before the reset, `… at <time>` is expected).
fn menu_choice_armed(e: &Value) -> Option<AutoContinue> {
    let text = e.pointer("/message/content").and_then(Value::as_str)?;
    let out = text.trim_start().strip_prefix("<local-command-stdout>")?;
    let rest = out.strip_prefix("Claude Code will continue automatically")?;
    let at = rest
        .trim_start()
        .strip_prefix("at ")
        .and_then(|r| r.split(['.', '<']).next())
        .map(|t| t.trim().to_string());
    Some(AutoContinue::Armed { at })
}

/// `/exit` and other local commands write user entries that are not turns.
fn is_bookkeeping(e: &Value) -> bool {
    let text = match e.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    // tool results come back as user entries as well: not a typed prompt
    let tool_result =
        e.pointer("/message/content/0/type").and_then(Value::as_str) == Some("tool_result");
    tool_result
        || text.contains("<command-name>")
        || text.contains("<local-command-")
        || text.trim().is_empty()
}

fn classify_notice(e: &Value) -> Option<AutoContinue> {
    if e.get("subtype").and_then(Value::as_str) != Some("informational") {
        return None;
    }
    let level = e.get("level").and_then(Value::as_str).unwrap_or("");
    let text = e.get("content").and_then(Value::as_str)?;
    // ASCII lowering keeps byte offsets, so `rest` can be cut from `text`.
    let folded = text.to_ascii_lowercase();
    if folded.starts_with("usage limit reached") {
        // "· set to continue automatically at 5:15pm" (2.1.332), "·
        // continuing automatically at 7pm · esc or type to cancel", and
        // after a continuation met the limit again "Usage limit reached
        // again after you continued · continuing automatically at 8pm".
        // Any other "Usage limit reached …" notice arms nothing.
        let arm = ["continue automatically", "continuing automatically"]
            .iter()
            .find_map(|w| folded.find(w).map(|i| i + w.len()))?;
        let at = text[arm..]
            .trim()
            .strip_prefix("at ")
            .and_then(|t| t.split('·').next())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        return Some(AutoContinue::Armed { at });
    }
    if folded.starts_with("usage limit reset · continuing automatically") {
        return Some(AutoContinue::Continued);
    }
    if !text.starts_with("Automatic continue") {
        return None;
    }
    let lower = text.to_lowercase();
    if lower.contains("exited during the wait") {
        return Some(AutoContinue::ExitedDuringWait);
    }
    let why = if lower.contains("repeated") {
        StopReason::RepeatedHits
    } else if lower.contains("24 hours") {
        StopReason::ResetTooFar
    } else if lower.contains("login changed") || lower.contains("login ended") {
        StopReason::LoginChanged
    } else if lower.contains("turned off") {
        StopReason::TurnedOff
    } else if lower.contains("did not run") {
        StopReason::DidNotRun
    } else if text.starts_with("Automatic continue cancelled") && level != "warning" {
        return Some(AutoContinue::CancelledByUser);
    } else {
        StopReason::Other(text.to_string())
    };
    Some(AutoContinue::Stopped { why })
}

fn timestamp(e: &Value) -> Option<DateTime<Utc>> {
    let t = e.get("timestamp").and_then(Value::as_str)?;
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Whether an entry is Claude's usage-limit entry (an assistant entry with
/// `apiError:"usage_limit_reached"`, or the older `error:"rate_limit"`).
pub fn is_limit_entry(entry: &Value) -> bool {
    entry.get("type").and_then(Value::as_str) == Some("assistant")
        && (entry.get("apiError").and_then(Value::as_str) == Some("usage_limit_reached")
            || entry.get("error").and_then(Value::as_str) == Some("rate_limit"))
}

/// The verdict for the last limit in a whole transcript; `None` when it has
/// no limit entry.
pub fn assess_transcript<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Verdict> {
    let lines: Vec<&str> = lines.into_iter().collect();
    let last = lines
        .iter()
        .rposition(|l| serde_json::from_str::<Value>(l).is_ok_and(|e| is_limit_entry(&e)))?;
    Some(assess(lines[last + 1..].iter().copied()))
}

/// Folds the entries written after the limit entry into a verdict. Lines
/// that are not JSON objects are skipped (a torn last line, foreign text).
pub fn assess<'a>(lines_after_limit: impl IntoIterator<Item = &'a str>) -> Verdict {
    let mut v = Verdict {
        state: AutoContinue::NeverArmed,
        at: None,
        exit_recorded: false,
    };
    for line in lines_after_limit {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if is_exit_record(&e) {
            v.exit_recorded = true;
        }
        if let Some(state) = classify(&e) {
            // A continuation is final for this limit: a later human turn
            // does not undo it, and the `/exit` warning cannot follow one.
            // The first continuation record keeps its time. (A new arm is a
            // new limit hit: it starts over.)
            if v.state == AutoContinue::Continued && !matches!(state, AutoContinue::Armed { .. }) {
                continue;
            }
            v = Verdict {
                state,
                at: timestamp(&e),
                exit_recorded: false,
            };
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::provider::live_fixture as fixture;

    #[test]
    fn transcripts_captured_from_the_real_tui() {
        let table: &[(&str, AutoContinue, &str)] = &[
            // left open: armed, then Claude continued by itself at reset + 88 s
            (
                fixture!("claude_after_limit_autocontinued.jsonl"),
                AutoContinue::Continued,
                "2026-11-30T19:22:28.504Z",
            ),
            // /exit while armed
            (
                fixture!("claude_after_limit_exit_while_armed.jsonl"),
                AutoContinue::ExitedDuringWait,
                "2026-11-30T19:23:45.056Z",
            ),
            // setting off, "2" + Enter typed into the limit menu after the reset:
            // armed by the menu choice, continued by Claude at reset + 108 s
            (
                fixture!("claude_after_limit_setting_off_menu_choice_2.jsonl"),
                AutoContinue::Continued,
                "2026-11-30T19:49:48.287Z",
            ),
            // Ctrl-C once (cancels), then twice more (exits): no exit warning
            (
                fixture!("claude_after_limit_ctrl_c_then_exit.jsonl"),
                AutoContinue::CancelledByUser,
                "2026-11-30T19:40:50.751Z",
            ),
            // Esc, then the user typed "continue" after the reset
            (
                fixture!("claude_after_limit_esc_then_typed.jsonl"),
                AutoContinue::ContinuedByUser,
                "2026-11-30T19:31:20.889Z",
            ),
            // autoContinueAtUsageLimit:false: no arm record at all
            (
                fixture!("claude_after_limit_setting_off.jsonl"),
                AutoContinue::NeverArmed,
                "",
            ),
            (
                fixture!("claude_after_limit_setting_off_esc_then_typed.jsonl"),
                AutoContinue::ContinuedByUser,
                "2026-11-30T19:26:20.850Z",
            ),
        ];
        for (text, want, at) in table {
            let v = assess_transcript(text.lines()).expect("a limit entry");
            assert_eq!(&v.state, want);
            assert_eq!(
                v.at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default(),
                *at
            );
        }
        // the same transcripts cut where the daemon would look before the end
        let esc = fixture!("claude_after_limit_esc_then_typed.jsonl");
        let cut: Vec<&str> = esc
            .lines()
            .take_while(|l| !l.contains("\"type\":\"user\""))
            .collect();
        assert_eq!(
            assess_transcript(cut).unwrap().state,
            AutoContinue::CancelledByUser
        );
        let cont = fixture!("claude_after_limit_autocontinued.jsonl");
        let cut: Vec<&str> = cont.lines().take(2).collect();
        assert_eq!(
            assess_transcript(cut).unwrap().state,
            AutoContinue::Armed {
                at: Some("7:21pm".into())
            }
        );
        assert_eq!(assess_transcript(["{}"]), None);
    }

    #[test]
    fn choosing_wait_here_in_the_menu_arms_the_continue() {
        let t = fixture!("claude_after_limit_setting_off_menu_choice_2.jsonl");
        // cut before the continuation: the menu choice alone is an arm
        let cut: Vec<&str> = t
            .lines()
            .take_while(|l| !l.contains("queue-operation"))
            .collect();
        let v = assess_transcript(cut).unwrap();
        assert_eq!(v.state, AutoContinue::Armed { at: None });
        assert_eq!(
            v.at.unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2026-11-30T19:48:47.949Z"
        );
        let before_reset = r#"{"type":"user","message":{"role":"user","content":"<local-command-stdout>Claude Code will continue automatically at 6:07pm. Keep this session open.</local-command-stdout>"}}"#;
        assert_eq!(
            classify(&serde_json::from_str(before_reset).unwrap()),
            Some(AutoContinue::Armed {
                at: Some("6:07pm".into())
            })
        );
    }

    #[test]
    fn a_cancel_followed_by_the_exit_within_seconds_is_an_exit() {
        let v = assess_transcript(fixture!("claude_after_limit_ctrl_c_then_exit.jsonl").lines())
            .unwrap();
        assert!(
            v.exit_recorded,
            "the cost-state exit record follows the cancel"
        );
        let cancel = v.at.unwrap();
        let secs = chrono::Duration::seconds;
        assert!(cancel_was_exit(&v, cancel + secs(3), secs(10)));
        assert!(!cancel_was_exit(&v, cancel + secs(600), secs(10)));
        assert!(!cancel_was_exit(&v, cancel - secs(1), secs(10)));
        // Esc and the TUI left open: no exit record after the cancel
        let esc = fixture!("claude_after_limit_esc_then_typed.jsonl");
        let cut: Vec<&str> = esc
            .lines()
            .take_while(|l| !l.contains("\"type\":\"user\""))
            .collect();
        let stayed = assess_transcript(cut).unwrap();
        assert_eq!(stayed.state, AutoContinue::CancelledByUser);
        assert!(!stayed.exit_recorded);
        // the continued session's exit record follows the continuation
        let cont =
            assess_transcript(fixture!("claude_after_limit_autocontinued.jsonl").lines()).unwrap();
        assert!(cont.exit_recorded);
        assert!(!cancel_was_exit(&cont, cont.at.unwrap(), secs(10)));
    }

    fn notice(level: &str, text: &str) -> String {
        serde_json::json!({"type":"system","subtype":"informational","level":level,"content":text,
            "isMeta":false,"timestamp":"2026-11-30T19:18:58.403Z"})
        .to_string()
    }

    #[test]
    fn no_records_is_never_armed() {
        assert_eq!(assess([]).state, AutoContinue::NeverArmed);
        assert_eq!(
            assess(["not json", "{}", "[1]"]).state,
            AutoContinue::NeverArmed
        );
    }

    #[test]
    fn wording_from_the_binary_for_endings_not_provoked() {
        let table: &[(&str, &str, AutoContinue)] = &[
            ("notice", "Automatic continue stopped after repeated usage-limit hits",
             AutoContinue::Stopped { why: StopReason::RepeatedHits }),
            ("notice", "Automatic continue stopped · the usage limit now resets more than 24 hours out",
             AutoContinue::Stopped { why: StopReason::ResetTooFar }),
            ("warning", "Automatic continue cancelled · your login changed or ended during the wait",
             AutoContinue::Stopped { why: StopReason::LoginChanged }),
            ("notice", "Automatic continue was turned off",
             AutoContinue::Stopped { why: StopReason::TurnedOff }),
            ("warning", "Automatic continue did not run",
             AutoContinue::Stopped { why: StopReason::DidNotRun }),
            ("warning", "Automatic continue cancelled · something new",
             AutoContinue::Stopped { why: StopReason::Other("Automatic continue cancelled · something new".into()) }),
            ("notice", "Automatic continue cancelled · /rate-limit-options to wait again",
             AutoContinue::CancelledByUser),
            ("warning", "Automatic continue cancelled · Claude Code exited during the wait, so the task will not resume on its own",
             AutoContinue::ExitedDuringWait),
        ];
        for (level, text, want) in table {
            let arm = notice(
                "notice",
                "Usage limit reached · set to continue automatically at 5:15pm",
            );
            let end = notice(level, text);
            let v = assess([arm.as_str(), end.as_str()]);
            assert_eq!(&v.state, want, "{text}");
            assert!(v.at.is_some());
        }
    }

    #[test]
    fn arm_carries_its_time_and_a_later_rearm_wins_over_a_cancel() {
        let arm = notice(
            "notice",
            "Usage limit reached · set to continue automatically at 7:21pm",
        );
        let cancel = notice(
            "notice",
            "Automatic continue cancelled · /rate-limit-options to wait again",
        );
        assert_eq!(
            assess([arm.as_str()]).state,
            AutoContinue::Armed {
                at: Some("7:21pm".into())
            }
        );
        assert_eq!(
            assess([arm.as_str(), cancel.as_str()]).state,
            AutoContinue::CancelledByUser
        );
        assert!(matches!(
            assess([arm.as_str(), cancel.as_str(), arm.as_str()]).state,
            AutoContinue::Armed { .. }
        ));
    }

    #[test]
    fn structure_decides_over_text() {
        // a user typing the notice's words is a human turn, not a continuation
        let typed = r#"{"type":"user","turnOrigin":"human","origin":{"kind":"human"},"message":{"role":"user","content":"Usage limit reset · Continuing automatically"}}"#;
        assert_eq!(
            classify(&serde_json::from_str(typed).unwrap()),
            Some(AutoContinue::ContinuedByUser)
        );
        // an assistant line quoting it is nothing
        let said = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Automatic continue cancelled"}]}}"#;
        assert_eq!(classify(&serde_json::from_str(said).unwrap()), None);
        // a non-informational system entry is nothing
        let other = r#"{"type":"system","subtype":"turn_duration","content":"Usage limit reached · set to continue automatically at 1pm"}"#;
        assert_eq!(classify(&serde_json::from_str(other).unwrap()), None);
        // the continuation's user entry alone is enough (notice missing)
        let meta = r#"{"type":"user","isMeta":true,"origin":{"kind":"auto-continuation"},"message":{"content":"x"}}"#;
        assert_eq!(
            classify(&serde_json::from_str(meta).unwrap()),
            Some(AutoContinue::Continued)
        );
        // /exit bookkeeping is not a turn
        let exit = r#"{"type":"user","turnOrigin":"human","origin":{"kind":"human"},"message":{"content":"<command-name>/exit</command-name>"}}"#;
        assert_eq!(classify(&serde_json::from_str(exit).unwrap()), None);
    }

    #[test]
    fn late_2026_notices_read_as_the_older_ones() {
        let table: &[(&str, Option<AutoContinue>)] = &[
            (
                "Usage limit reached · continuing automatically at 7pm · esc or type to cancel",
                Some(AutoContinue::Armed {
                    at: Some("7pm".into()),
                }),
            ),
            (
                "Usage limit reached again after you continued · continuing automatically at 8:05pm · esc or type to cancel",
                Some(AutoContinue::Armed {
                    at: Some("8:05pm".into()),
                }),
            ),
            (
                "Usage limit reached · set to continue automatically at 5:15pm",
                Some(AutoContinue::Armed {
                    at: Some("5:15pm".into()),
                }),
            ),
            (
                "Usage limit reached · continuing automatically · esc or type to cancel",
                Some(AutoContinue::Armed { at: None }),
            ),
            (
                "Usage limit reset · continuing automatically",
                Some(AutoContinue::Continued),
            ),
            (
                "Usage limit reset · Continuing automatically",
                Some(AutoContinue::Continued),
            ),
            // A limit notice that arms nothing is no verdict.
            ("Usage limit reached again after you continued", None),
            ("Usage limit reached · /rate-limit-options to choose", None),
        ];
        for (text, want) in table {
            let e: Value = serde_json::from_str(&notice("notice", text)).unwrap();
            assert_eq!(&classify(&e), want, "{text}");
        }
        // The new arm, then the new continuation: continued, as before.
        let arm = notice(
            "notice",
            "Usage limit reached · continuing automatically at 7pm · esc or type to cancel",
        );
        let cont = notice("notice", "Usage limit reset · continuing automatically");
        let cancel = notice(
            "notice",
            "Automatic continue cancelled · /rate-limit-options to wait again",
        );
        assert_eq!(
            assess([arm.as_str(), cont.as_str()]).state,
            AutoContinue::Continued
        );
        assert_eq!(
            assess([arm.as_str(), cancel.as_str()]).state,
            AutoContinue::CancelledByUser
        );
        // A continuation that hit the limit again re-arms: the later arm wins.
        let again = notice(
            "notice",
            "Usage limit reached again after you continued · continuing automatically at 8pm · esc or type to cancel",
        );
        assert_eq!(
            assess([arm.as_str(), cancel.as_str(), again.as_str()]).state,
            AutoContinue::Armed {
                at: Some("8pm".into())
            }
        );
    }

    #[test]
    fn a_continuation_is_final_for_its_limit() {
        let arm = notice(
            "notice",
            "Usage limit reached · set to continue automatically at 7:21pm",
        );
        let cont = notice("notice", "Usage limit reset · Continuing automatically");
        let typed = r#"{"type":"user","turnOrigin":"human","origin":{"kind":"human"},"message":{"content":"thanks"}}"#;
        assert_eq!(
            assess([arm.as_str(), cont.as_str(), typed]).state,
            AutoContinue::Continued
        );
        assert!(AutoContinue::Continued.has_it());
        assert!(!AutoContinue::CancelledByUser.has_it());
    }
}
