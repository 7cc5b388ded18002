#!/bin/bash
# End to end against the real Claude Code CLI, offline: Claude hits a
# (scripted) session limit, zag-resumed sees it in Claude's own transcript,
# and at the reset resumes the session with the real `claude --resume`.
#
# Opt-in (needs root for a loopback-only network namespace, and npm to
# install Claude Code once): bash tests/e2e/real_claude.sh
# Uses the kit in ../shared/realclients (fake API, netns helpers).
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source "$REPO/tests/e2e/lib.sh"
e2e_begin @anthropic-ai/claude-code "$@"
export HOME="$CAP/home"; mkdir -p "$HOME/proj" "$HOME/.zag"; cd "$HOME/proj" || exit 1
export ANTHROPIC_BASE_URL="$BASE"
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 \
       DISABLE_ERROR_REPORTING=1 DISABLE_BUG_COMMAND=1 CLAUDE_CODE_MAX_RETRIES=2
unset ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN
export CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-fake-token CLAUDE_CODE_SUBSCRIPTION_TYPE=max
# Resume within seconds of the limit instead of at the (scripted) reset.
fast_resume_config
start_daemon

set_mode limit
claude -p "hi" --output-format stream-json --verbose > "$CAP/limit.stdout" 2> "$CAP/limit.stderr"
echo "claude at the limit: exit $?"
set_mode ok
before=$(wc -l < "$CAP/server_requests.jsonl")
wait_complete_and_stop
check_resumed_once "$before"
transcript=$(ls "$HOME"/.claude/projects/*/*.jsonl | head -1)
grep -q "Hello from the fake" "$transcript" || fail "the resumed turn is not in Claude's transcript"
echo "PASS: limit detected in $transcript; resumed once; $((AFTER - before)) API request(s) after the reset"
grep -E "usage limit|resumed" "$CAP/daemon.log" | cut -c1-220
stop_server
