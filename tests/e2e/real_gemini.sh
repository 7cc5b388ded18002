#!/bin/bash
# End to end against the real Gemini CLI, offline, in the shape a background
# `zag spawn` leaves: a zag session log (with the prompt) and the CLI's raw
# output in <zag-home>/logs/spawn/<id>.log. Gemini records no error in its
# own chat files, and loses the limited prompt: zag-resumed must find the
# quota error in the spawn log and resume with
# `gemini --resume <uuid> --prompt=<the original prompt> …`.
#
# Opt-in (root for a loopback-only network namespace, npm to install Gemini
# once): bash tests/e2e/real_gemini.sh
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source "$REPO/tests/e2e/lib.sh"
e2e_begin @google/gemini-cli "$@"
export HOME="$CAP/home"; mkdir -p "$HOME/proj" "$HOME/.gemini"; cd "$HOME/proj" || exit 1
cat > "$HOME/.gemini/settings.json" <<JSON
{"security":{"auth":{"selectedType":"gemini-api-key"}},
 "privacy":{"usageStatisticsEnabled":false},
 "telemetry":{"enabled":false},
 "general":{"disableAutoUpdate":true,"disableUpdateNag":true}}
JSON
export GEMINI_API_KEY=fake-gemini-key GOOGLE_GEMINI_BASE_URL="$BASE" GEMINI_CLI_NO_RELAUNCH=1
fast_resume_config

# A first turn that works: the session exists.
set_mode ok
timeout 120 gemini -p "hi" --output-format json --skip-trust > "$CAP/first.stdout" 2> "$CAP/first.stderr"
SID=$(grep -o '"session_id" *: *"[0-9a-f-]\{36\}"' "$CAP/first.stdout" | head -1 | grep -o '[0-9a-f-]\{36\}')
[ -n "$SID" ] || { echo "FAIL: no Gemini session id"; stop_server; exit 1; }

# What zag spawn writes for the next turn, then the CLI's output goes to the spawn log.
W=5a1e0000-0000-4000-8000-00000000e2e5
PROMPT="now do the next step"
mkdir -p "$HOME/.zag/logs/sessions" "$HOME/.zag/logs/spawn"
TS=$(date -u +%Y-%m-%dT%H:%M:%S.000000000+00:00)
{
  echo "{\"seq\":1,\"ts\":\"$TS\",\"provider\":\"gemini\",\"wrapper_session_id\":\"$W\",\"provider_session_id\":\"$SID\",\"source_kind\":\"wrapper\",\"completeness\":\"full\",\"type\":\"session_started\",\"command\":\"exec\",\"model\":null,\"cwd\":\"$HOME/proj\",\"resumed\":true,\"backfilled\":false}"
  echo "{\"seq\":2,\"ts\":\"$TS\",\"provider\":\"gemini\",\"wrapper_session_id\":\"$W\",\"provider_session_id\":\"$SID\",\"source_kind\":\"wrapper\",\"completeness\":\"full\",\"type\":\"user_message\",\"role\":\"user\",\"content\":\"$PROMPT\",\"message_id\":null}"
} > "$HOME/.zag/logs/sessions/$W.jsonl"
start_daemon

set_mode limit
timeout 120 gemini --resume "$SID" -p "$PROMPT" --output-format stream-json --skip-trust >> "$HOME/.zag/logs/spawn/$W.log" 2>&1
echo "gemini at the limit: exit $?"
set_mode ok
before=$(wc -l < "$CAP/server_requests.jsonl")
wait_complete_and_stop
check_resumed_once "$before"
tail -n +"$((before + 1))" "$CAP/server_requests.jsonl" | grep -q "$PROMPT" || fail "the resumed run did not send the original prompt"
echo "PASS: quota error found in the spawn log; session $SID resumed once with the original prompt; $((AFTER - before)) API request(s) after the reset"
grep -E "usage limit|resumed" "$CAP/daemon.log" | cut -c1-240
stop_server
