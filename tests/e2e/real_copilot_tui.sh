#!/bin/bash
# Opt-in end-to-end test: the real Copilot CLI TUI (1.0.102) in tmux at a
# rate limit, with zag-resumed (the release build) running, fully offline
# against the real-CLI kit's fake API in Copilot's BYOK mode (see
# tests/e2e/tui.sh for where the kit lives).
#
# Copilot's TUI retries the 429 for about a minute, writes `session.error`
# to its events.jsonl and is back at its empty prompt. While it runs, its
# session folder holds `inuse.<pid>.lock`: the daemon finds the holder there.
#
# Scenarios (both by default, in parallel, each in its own loopback-only
# network namespace, HOME, tmux server and daemon; about 4 minutes):
#   open    TUI left open: exactly one continuation, typed into its pane;
#           no headless `copilot --resume` beside it (before this change
#           there was one, and the session forked).
#   closed  `/exit` right after the limit, before the reset: exactly one
#           continuation, a headless `copilot --resume <id> -p Continue`.
#
# Usage: bash tests/e2e/real_copilot_tui.sh [open closed]
# Needs root (unshare), tmux, python3, npm (once). Captures go to $CAPTURES
# (default a temp dir), one folder per scenario.
set -u
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=tests/e2e/tui.sh
source "$REPO/tests/e2e/tui.sh"
tui_needs_kit
WAIT=${WAIT:-60}            # the incident is due at most this long after the limit

if [ "${1:-}" = "--one" ]; then
  S=$2; CAP=$3
  tui_scenario copilot raw
  export PATH="${COPILOT_BIN_DIR:-$RC_ROOT/node_modules/.bin}:$PATH"

  start_server "$CAP" > "$CAP/fake_api.log" 2>&1
  rm -rf "$HOME"; mkdir -p "$HOME/proj" "$HOME/.zag"
  printf '[usage_limits]\njitter_secs = 0\nstagger_secs = 0\nmax_wait_secs = %s\n' "$WAIT" > "$HOME/.zag/zag.toml"
  export COPILOT_OFFLINE=true COPILOT_AUTO_UPDATE=false COPILOT_ALLOW_ALL=true \
         COPILOT_PROVIDER_BASE_URL="$BASE/v1" COPILOT_PROVIDER_TYPE=openai \
         COPILOT_PROVIDER_API_KEY=sk-fake-key COPILOT_MODEL=gpt-4.1
  unset TMUX

  tui_start_daemon

  export -p | grep -E ' (COPILOT_|HOME=|PATH=|TZ=)' > "$CAP/.env.sh"
  $T new-session -d -s tui -x 160 -y 45 -c "$HOME/proj"
  $T send-keys -t tui "source $CAP/.env.sh; cd \$HOME/proj && copilot" Enter
  wait_for 'open sidebar' 60 || log "no prompt seen"
  sleep 2
  $T send-keys -t tui -l 'first turn'; sleep 0.5; $T send-keys -t tui Enter
  wait_for 'Hello from the fake' 30 || log "no first answer"
  sleep 2
  set_mode limit:usage_limit_reached; log "mode=limit"
  $T send-keys -t tui -l 'please refactor the parser'; sleep 0.5; $T send-keys -t tui Enter
  wait_for 'Failed to get response' 150 && log "limit shown" || log "no limit seen"
  sleep 2; screen > "$CAP/screen_at_limit.txt"
  for _ in $(seq 30); do grep -q '"action":"schedule"' "$HOME/.zag/scheduled_resumes.jsonl" 2>/dev/null && break; sleep 1; done
  grep -q '"action":"schedule"' "$HOME/.zag/scheduled_resumes.jsonl" 2>/dev/null && log "incident scheduled" || log "no incident"
  "$ZAG" list --json > "$CAP/list_after_hit.json" 2>&1
  ls "$HOME"/.copilot/session-state/*/ > "$CAP/session_folder_at_limit.txt" 2>&1
  if [ "$S" = closed ]; then
    $T send-keys -t tui -l '/exit'; sleep 0.5; $T send-keys -t tui Enter; sleep 4
    screen > "$CAP/screen_after_exit.txt"; log "/exit"
  fi
  DUE=$(python3 -c 'import json,sys,datetime
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r.get("action")=="schedule":
        print(int(datetime.datetime.fromisoformat(r["when"].replace("Z","+00:00")).timestamp()))' "$HOME/.zag/scheduled_resumes.jsonl" 2>/dev/null | head -1)
  [ -n "$DUE" ] || DUE=$(( $(date +%s) + WAIT ))
  log "due at $(date -u -d @"$DUE" +%T)"
  sleep $(( DUE - 5 - $(date +%s) > 0 ? DUE - 5 - $(date +%s) : 0 )); set_mode ok; log "mode=ok (reset)"
  for _ in $(seq 24); do   # up to due + 2 min
    sleep 5
    grep -q '"action":"complete"' "$HOME/.zag/scheduled_resumes.jsonl" 2>/dev/null && break
  done
  sleep 10
  screen > "$CAP/screen_final.txt"
  "$ZAG" status > "$CAP/status_final.txt" 2>&1
  $T send-keys -t tui -l '/exit' 2>/dev/null; sleep 0.5; $T send-keys -t tui Enter 2>/dev/null; sleep 2
  $T kill-server 2>/dev/null
  tui_stop_daemon
  stop_server
  cp "$HOME/.zag/scheduled_resumes.jsonl" "$CAP/store.jsonl" 2>/dev/null
  cp "$HOME"/.copilot/session-state/*/events.jsonl "$CAP/events.jsonl" 2>/dev/null
  rm -f "$CAP/.env.sh"
  log "done"
  exit 0
fi

# --- the driver (outside any namespace) -------------------------------------
# shellcheck source=/dev/null
source "$KIT/lib.sh"
if [ -z "${COPILOT_BIN_DIR:-}" ]; then
  ensure_installed @github/copilot > /dev/null || { echo "FAIL: cannot install Copilot CLI"; exit 1; }
  COPILOT_BIN_DIR="$RC_ROOT/node_modules/.bin"
fi
export COPILOT_BIN_DIR
"$COPILOT_BIN_DIR/copilot" --version | grep -q '1\.0\.102' || echo "note: this was checked with Copilot CLI 1.0.102; found $("$COPILOT_BIN_DIR/copilot" --version | head -1)"
(cd "$REPO" && cargo build --release --quiet) || exit 1
SCEN=("$@"); [ ${#SCEN[@]} -eq 0 ] && SCEN=(open closed)
tui_run_scenarios

# --- judging (tests/e2e/tui.sh) ---------------------------------------------
# The continuations: chat-completions requests answered 200 after the limit's 429s.
continuations() { python3 - "$1/server_requests.jsonl" <<'PY'
import json, sys
seen_limit = False
for line in open(sys.argv[1]):
    e = json.loads(line)
    if not e["path"].rstrip("/").endswith("/chat/completions") or e.get("method") != "POST":
        continue
    if e["response_status"] == 429:
        seen_limit = True
        continue
    if seen_limit and e["response_status"] == 200:
        msgs = (e.get("body") or {}).get("messages") or []
        last = msgs[-1].get("content") if msgs else ""
        print(str(last).replace("\n", " ")[-40:])
PY
}
# The session's events: no fork (every user.message hangs off the event before it).
forks() { python3 - "$1/events.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(sum(1 for a, b in zip(ev, ev[1:]) if b.get("parentId") and b["parentId"] != a.get("id") and b["type"] == "user.message"))
PY
}
judge_more() { [ "$(forks "$1" 2>/dev/null)" = 0 ] || { ok=0; why+=("the session's events forked"); }; }
for s in "${SCEN[@]}"; do
  case $s in
    open)   judge open 1 resumed 'typed into pane' 'respawned `copilot' ;;
    closed) judge closed 1 resumed 'respawned `copilot' 'typed into pane' ;;
  esac
done
exit $status
