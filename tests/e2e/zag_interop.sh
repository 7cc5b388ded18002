#!/bin/bash
# Interop with the real zag 0.18 (the contract: docs/zag-contract.md). Our daemon
# records a limit; then, with zag's own commands:
#   - `zag usage list` shows our incident (the store is zag's format),
#   - `zag usage cancel` stops our live timer (nothing fires),
#   - `zag events` shows the incident (our companion user_event).
#
# Opt-in: needs zag 0.18 (`cargo install zag-cli --version 0.18.0`, about ten
# minutes), on PATH or in ZAG_BIN: bash tests/e2e/zag_interop.sh
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ZAG="${ZAG_BIN:-$(command -v zag)}"
[ -x "$ZAG" ] || { echo "SKIP: no zag binary (set ZAG_BIN)"; exit 0; }
(cd "$REPO" && cargo build --release --quiet) || exit 1

T="$(mktemp -d)"
export HOME="$T/home"; mkdir -p "$HOME/.zag/logs/sessions" "$HOME/work"
cd "$HOME/work" || exit 1   # not a git repo: zag's project is <zag-home> itself
printf '[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n' > "$HOME/.zag/zag.toml"
W=7e57a1e0-0000-4000-8000-000000000001
SID=7e57a1e0-0000-4000-8000-0000000000c1
LOG="$HOME/.zag/logs/sessions/$W.jsonl"
STORE="$HOME/.zag/scheduled_resumes.jsonl"
fail() { echo "FAIL: $*"; echo "--- daemon log"; cat "$T/daemon.log"; kill "$DAEMON" 2>/dev/null; exit 1; }
line() { # seq type extra-json
  printf '{"seq":%s,"ts":"%s","provider":"claude","wrapper_session_id":"%s","provider_session_id":"%s","source_kind":"wrapper","completeness":"full","type":"%s"%s}\n' \
    "$1" "$(date -u +%Y-%m-%dT%H:%M:%S.000000000+00:00)" "$W" "$SID" "$2" "$3"
}
line 1 session_started ",\"command\":\"exec\",\"model\":null,\"cwd\":\"$HOME/work\",\"resumed\":false,\"backfilled\":false" > "$LOG"
mkdir -p "$HOME/.claude/projects/$(echo "$HOME/work" | tr '/.' '--')"
echo "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"go\"},\"cwd\":\"$HOME/work\",\"sessionId\":\"$SID\",\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" \
  > "$HOME/.claude/projects/$(echo "$HOME/work" | tr '/.' '--')/$SID.jsonl"
mkdir -p "$T/bin"; printf '#!/bin/sh\necho called >> "%s/claude.calls"\n' "$T" > "$T/bin/claude"; chmod +x "$T/bin/claude"

PATH="$T/bin:$PATH" "$REPO/target/release/zag-resumed" run 2> "$T/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do grep -q "is watching" "$T/daemon.log" && break; sleep 0.1; done
RESET=$(( $(date +%s) + 6 ))
line 2 assistant_message ",\"content\":\"Claude AI usage limit reached|$RESET\",\"message_id\":null" >> "$LOG"
for _ in $(seq 100); do grep -q '"action":"schedule"' "$STORE" 2>/dev/null && break; sleep 0.1; done
ID=$(grep -o '"incident_id":"[^"]*"' "$STORE" | head -1 | cut -d'"' -f4)
[ -n "$ID" ] || fail "no incident recorded"

"$ZAG" usage --json list > "$T/list.json" 2> "$T/list.err" || fail "zag usage list: $(cat "$T/list.err")"
grep -q "$ID" "$T/list.json" || fail "zag usage list does not show $ID: $(cat "$T/list.json")"
echo "ok: zag usage list shows our incident $ID"

# zag's typed readers drop hit lines (zag-contract §2.3); our companion
# user_event is what `zag events` shows.
"$ZAG" events --json --type user_event "$W" > "$T/events.json" 2>&1
grep -q "$ID" "$T/events.json" || fail "zag events does not show the incident: $(cat "$T/events.json")"
echo "ok: zag events shows the incident: $(head -c 200 "$T/events.json")"

"$ZAG" usage cancel "$ID" > "$T/cancel.txt" 2>&1 || fail "zag usage cancel: $(cat "$T/cancel.txt")"
for _ in $(seq 50); do grep -q "cancelled" "$T/daemon.log" && break; sleep 0.1; done
grep -q "cancelled" "$T/daemon.log" || fail "the daemon did not see zag's cancel"
while [ "$(date +%s)" -le $(( RESET + 2 )) ]; do sleep 0.5; done
[ ! -e "$T/claude.calls" ] || fail "a cancelled resume fired"
"$ZAG" usage --json list > "$T/list2.json" 2>&1
grep -q "$ID" "$T/list2.json" && fail "still listed after cancel"
echo "ok: zag usage cancel stopped the live timer; nothing fired"
kill "$DAEMON"; wait "$DAEMON"
echo "PASS: zag 0.18 interop"
