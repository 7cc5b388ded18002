#!/bin/bash
# Opt-in end-to-end test: the real Gemini CLI TUI (0.61.0) in tmux at a
# daily quota, with zag-resumed (the release build) running, fully offline
# against the real-CLI kit's fake API (see tests/e2e/tui.sh for where the
# kit lives).
#
# Gemini's TUI writes nothing of the limit to its files: its dialog
# ("Usage limit reached for all Pro models." / 1. Keep trying / 2. Stop) is
# on screen only. The daemon sees the chat end with an unanswered user turn,
# looks at the pane, and records the incident.
#
# Scenarios (both by default, in parallel, each in its own loopback-only
# network namespace, HOME, tmux server and daemon; about 3 minutes):
#   open    TUI left open with its dialog up: exactly one continuation, by
#           the daemon choosing "1" (Keep trying) in the dialog; no
#           headless `gemini --resume` beside it.
#   closed  the TUI quit (Ctrl-C twice) before the reset: exactly one
#           continuation, a headless `gemini --resume <id> --prompt=<the
#           original prompt>`.
#
# The TUI runs with `-m gemini-3.1-pro-preview`: with the default Auto model
# the fake API's 429 hits Gemini's router request first, which 0.61.0
# re-sends in a tight loop on any turn but the first (see
# tests/fixtures/real/gemini-0.61.0/README.md).
#
# Usage: bash tests/e2e/real_gemini_tui.sh [open closed]
# Needs root (unshare), tmux, python3, npm (once). Captures go to $CAPTURES
# (default a temp dir), one folder per scenario.
set -u
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=tests/e2e/tui.sh
source "$REPO/tests/e2e/tui.sh"
tui_needs_kit
WAIT=${WAIT:-60}            # the incident is due at most this long after the limit
PROMPT="please refactor the parser"

if [ "${1:-}" = "--one" ]; then
  S=$2; CAP=$3
  tui_scenario gemini raw
  export PATH="${GEMINI_BIN_DIR:-$RC_ROOT/node_modules/.bin}:$PATH"

  start_server "$CAP" > "$CAP/fake_api.log" 2>&1
  rm -rf "$HOME"; mkdir -p "$HOME/proj" "$HOME/.gemini" "$HOME/.zag"
  cat > "$HOME/.gemini/settings.json" <<JSON
{"security":{"auth":{"selectedType":"gemini-api-key"}},
 "privacy":{"usageStatisticsEnabled":false},
 "telemetry":{"enabled":false},
 "general":{"disableAutoUpdate":true,"disableUpdateNag":true}}
JSON
  echo "{\"$HOME/proj\": \"TRUST_FOLDER\"}" > "$HOME/.gemini/trustedFolders.json"
  printf '[usage_limits]\njitter_secs = 0\nstagger_secs = 0\nmax_wait_secs = %s\n' "$WAIT" > "$HOME/.zag/zag.toml"
  export GEMINI_API_KEY=fake-gemini-key GOOGLE_GEMINI_BASE_URL="$BASE"
  unset TMUX

  tui_start_daemon

  export -p | grep -E ' (GEMINI_|GOOGLE_|HOME=|PATH=|TZ=)' > "$CAP/.env.sh"
  $T new-session -d -s tui -x 160 -y 45 -c "$HOME/proj"
  $T send-keys -t tui "source $CAP/.env.sh; cd \$HOME/proj && gemini -m gemini-3.1-pro-preview" Enter
  wait_for 'Type your message' 60 || log "no input box seen"
  sleep 2
  $T send-keys -t tui -l 'first turn'; sleep 0.5; $T send-keys -t tui Enter
  wait_for 'Hello from the fake' 30 || log "no first answer"
  sleep 2
  set_mode limit; log "mode=limit"
  $T send-keys -t tui -l "$PROMPT"; sleep 0.5; $T send-keys -t tui Enter
  wait_for 'Usage limit reached' 30 && log "dialog shown" || log "no dialog seen"
  sleep 2; screen > "$CAP/screen_at_limit.txt"
  # the daemon records the incident from the screen within its first looks
  for _ in $(seq 60); do grep -q '"action":"schedule"' "$HOME/.zag/scheduled_resumes.jsonl" 2>/dev/null && break; sleep 1; done
  grep -q '"action":"schedule"' "$HOME/.zag/scheduled_resumes.jsonl" 2>/dev/null && log "incident scheduled" || log "no incident"
  "$ZAG" list --json > "$CAP/list_after_hit.json" 2>&1
  if [ "$S" = closed ]; then
    $T send-keys -t tui C-c; sleep 1; $T send-keys -t tui C-c; sleep 4
    screen > "$CAP/screen_after_quit.txt"; log "Ctrl-C twice (quit)"
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
  $T kill-server 2>/dev/null
  tui_stop_daemon
  stop_server
  cp "$HOME/.zag/scheduled_resumes.jsonl" "$CAP/store.jsonl" 2>/dev/null
  cp -r "$HOME/.gemini/tmp" "$CAP/gemini_tmp" 2>/dev/null
  rm -f "$CAP/.env.sh"
  log "done"
  exit 0
fi

# --- the driver (outside any namespace) -------------------------------------
# shellcheck source=/dev/null
source "$KIT/lib.sh"
if [ -z "${GEMINI_BIN_DIR:-}" ]; then
  ensure_installed @google/gemini-cli > /dev/null || { echo "FAIL: cannot install Gemini CLI"; exit 1; }
  GEMINI_BIN_DIR="$RC_ROOT/node_modules/.bin"
fi
export GEMINI_BIN_DIR
"$GEMINI_BIN_DIR/gemini" --version | grep -q '^0\.61\.' || echo "note: this was checked with Gemini CLI 0.61.0; found $("$GEMINI_BIN_DIR/gemini" --version)"
(cd "$REPO" && cargo build --release --quiet) || exit 1
SCEN=("$@"); [ ${#SCEN[@]} -eq 0 ] && SCEN=(open closed)
tui_run_scenarios

# --- judging (tests/e2e/tui.sh) ---------------------------------------------
# The continuations: model requests carrying the limited prompt as their
# last user turn, answered 200 after the limit's first 429.
continuations() { python3 - "$1/server_requests.jsonl" "$PROMPT" <<'PY'
import json, sys
seen_limit = False
for line in open(sys.argv[1]):
    e = json.loads(line)
    if ":generateContent" not in e["path"] and ":streamGenerateContent" not in e["path"]:
        continue
    if e["response_status"] == 429:
        seen_limit = True
        continue
    contents = (e.get("body") or {}).get("contents") or []
    users = [c for c in contents if c.get("role") == "user"]
    last = "".join(p.get("text", "") for p in (users[-1].get("parts") or [])) if users else ""
    if seen_limit and e["response_status"] == 200 and last.strip() == sys.argv[2]:
        h = e["headers"]
        print(h.get("User-Agent", h.get("user-agent", "?")).split(" ")[0][:40])
PY
}
judge_report() { echo "  hit: $(grep -o 'TUI shows a usage limit on screen ([^)]*)' "$1/daemon.log" | head -1)"; }
for s in "${SCEN[@]}"; do
  case $s in
    open)   judge open 1 resumed 'typed into pane' 'respawned `gemini' ;;
    closed) judge closed 1 resumed 'respawned `gemini' 'typed into pane' ;;
  esac
done
exit $status
