#!/bin/bash
# End to end against the real Copilot CLI, offline (its BYOK mode): Copilot
# gives up after retrying a provider 429, zag-resumed sees the
# `session.error` in Copilot's own events.jsonl, and resumes the session
# with the explicit id: `copilot --resume <id> -p <msg> --output-format json`.
#
# Opt-in (root for a loopback-only network namespace, npm to install
# Copilot once; Copilot's own retries take about a minute):
#   bash tests/e2e/real_copilot.sh
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source "$REPO/tests/e2e/lib.sh"
e2e_begin @github/copilot "$@"
export HOME="$CAP/home"; mkdir -p "$HOME/proj"; cd "$HOME/proj" || exit 1
export COPILOT_OFFLINE=true COPILOT_AUTO_UPDATE=false COPILOT_ALLOW_ALL=true \
       COPILOT_PROVIDER_BASE_URL="$BASE/v1" COPILOT_PROVIDER_TYPE=openai \
       COPILOT_PROVIDER_API_KEY=sk-fake-key COPILOT_MODEL=gpt-4.1
fast_resume_config
start_daemon

# A usage_limit_reached body, no retry-after: Copilot's retries are quick.
set_mode limit:usage_limit_reached
timeout 240 copilot -p "hi" --output-format json --disable-client-telemetry > "$CAP/limit.stdout" 2> "$CAP/limit.stderr"
echo "copilot at the limit: exit $?"
set_mode ok
before=$(wc -l < "$CAP/server_requests.jsonl")
wait_complete_and_stop
check_resumed_once "$before"
events=$(ls "$HOME"/.copilot/session-state/*/events.jsonl | head -1)
sid=$(basename "$(dirname "$events")")
grep -q "$sid" "$STORE" || fail "the incident does not name session $sid"
echo "PASS: limit detected in $events; session $sid resumed once; $((AFTER - before)) API request(s) after the reset"
grep -E "usage limit|resumed" "$CAP/daemon.log" | cut -c1-240
stop_server
