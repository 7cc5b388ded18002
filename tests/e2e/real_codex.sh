#!/bin/bash
# End to end against the real Codex CLI, offline: Codex hits a (scripted)
# usage limit, zag-resumed sees it in Codex's rollout file, and resumes the
# thread with today's syntax, `codex exec resume … <thread-id> <msg>` (zag
# 0.18's `--resume` flag form no longer works).
#
# Opt-in (needs root for a loopback-only network namespace, and npm to
# install Codex once): bash tests/e2e/real_codex.sh
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source "$REPO/tests/e2e/lib.sh"
e2e_begin @openai/codex "$@"
export HOME="$CAP/home"; mkdir -p "$HOME/proj" "$HOME/.codex"; cd "$HOME/proj" || exit 1
# An API-key setup with a custom provider (no TLS needed); Codex maps the
# fake server's usage_limit_reached the same way for any provider.
cat > "$HOME/.codex/config.toml" <<TOML
model = "gpt-5.5"
model_provider = "fake"
check_for_update_on_startup = false
[model_providers.fake]
name = "fake"
base_url = "$BASE/v1"
env_key = "FAKE_OPENAI_API_KEY"
wire_api = "responses"
[analytics]
enabled = false
TOML
export FAKE_OPENAI_API_KEY=sk-fake-key
unset OPENAI_API_KEY OPENAI_BASE_URL
fast_resume_config
start_daemon

set_mode limit
codex exec --json --skip-git-repo-check "hi" > "$CAP/limit.stdout" 2> "$CAP/limit.stderr"
echo "codex at the limit: exit $?"
set_mode ok
before=$(wc -l < "$CAP/server_requests.jsonl")
wait_complete_and_stop
check_resumed_once "$before"
rollout=$(find "$HOME/.codex/sessions" -name 'rollout-*.jsonl' | head -1)
thread=$(grep -o '"thread_id":"[^"]*"' "$CAP/limit.stdout" | head -1 | cut -d'"' -f4)
grep -q "\"session_id\":\"$thread\"\|$thread" "$STORE" || fail "the incident does not name thread $thread"
echo "PASS: limit detected in $rollout; thread $thread resumed once; $((AFTER - before)) API request(s) after the reset"
grep -E "usage limit|resumed" "$CAP/daemon.log" | cut -c1-240
stop_server
