#!/bin/bash
# Opt-in end-to-end test: the real Codex TUI (0.171.0) in tmux at a usage
# limit, with zag-resumed running, fully offline against the real-CLI kit's
# fake API over TLS (see tests/e2e/tui.sh for where the kit lives).
#
# Scenarios (both by default, in parallel, each in its own loopback-only
# network namespace, HOME, tmux server and daemon; about 4 minutes):
#   open    TUI left open: exactly one continuation, typed into its pane;
#           no `codex exec resume` (it would fail on the thread's writer).
#   closed  `/quit` right after the limit: Codex's app-server keeps the
#           thread's writer for about a minute; the daemon retries with
#           backoff and resumes headless once, when the writer is free.
#
# Usage: bash tests/e2e/real_codex_tui.sh [open closed]
# Needs root (unshare), tmux, python3, openssl, npm (once). Captures go to
# $CAPTURES (default a temp dir), one folder per scenario.
set -u
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=tests/e2e/tui.sh
source "$REPO/tests/e2e/tui.sh"
tui_needs_kit codex_tui_home.sh
LEAD=${LEAD:-75}

if [ "${1:-}" = "--one" ]; then
  S=$2; CAP=$3
  tui_scenario codex

  make_loopback_ca "$CAP/tls"
  export CODEX_CA_CERTIFICATE="$CA_CERT"
  start_server "$CAP" > "$CAP/fake_api.log" 2>&1
  bash "$KIT/codex_tui_home.sh" "$HOME" "$BASE"
  mkdir -p "$HOME/.zag"
  printf '[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n' > "$HOME/.zag/zag.toml"
  unset OPENAI_API_KEY OPENAI_BASE_URL TMUX

  tui_start_daemon

  export -p | grep -E ' (CODEX_|HOME=|PATH=|TZ=)' > "$CAP/.env.sh"
  $T new-session -d -s tui -x 160 -y 45 -c "$HOME/proj"
  $T send-keys -t tui "source $CAP/.env.sh; cd \$HOME/proj && codex" Enter
  wait_for 'Ask Codex|›' 60 || log "no composer seen"
  sleep 3
  RESET=$(( ( $(date +%s) + LEAD + 59 ) / 60 * 60 ))
  echo "$RESET" > "$MODE_FILE.reset"; echo limit > "$MODE_FILE"
  log "reset pinned to $(date -u -d @$RESET +%T)"
  $T send-keys -t tui -l 'hi'; sleep 0.5; $T send-keys -t tui Enter
  # A TUI still starting up can drop that Enter: the prompt then stays in
  # the composer (the last `›` line), so press Enter again.
  for _ in 1 2 3; do
    wait_for 'usage limit' 20 && break
    [ "$(screen | grep '^›' | tail -1)" = "› hi" ] && { log "Enter again"; $T send-keys -t tui Enter; }
  done
  screen | grep -q 'usage limit' || log "no limit seen"
  sleep 5; screen > "$CAP/screen_at_limit.txt"
  "$ZAG" list --json > "$CAP/list_after_hit.json" 2>&1
  if [ "$S" = closed ]; then
    $T send-keys -t tui -l '/quit'; sleep 0.5; $T send-keys -t tui Enter; sleep 3; log "/quit"
  fi
  sleep $(( RESET - 5 - $(date +%s) )); echo ok > "$MODE_FILE"; log "server ok (reset in 5 s)"
  sleep 5; log "reset"
  for _ in $(seq 15); do   # up to reset + 150 s
    sleep 10
    grep -q '"action":"complete"' "$HOME/.zag/scheduled_resumes.jsonl" 2>/dev/null && break
  done
  sleep 10
  screen > "$CAP/screen_final.txt"
  "$ZAG" status > "$CAP/status_final.txt" 2>&1
  $T send-keys -t tui -l '/quit' 2>/dev/null; sleep 0.5; $T send-keys -t tui Enter 2>/dev/null; sleep 2
  $T kill-server 2>/dev/null
  tui_stop_daemon
  # the app-server the TUI left behind (ours: its HOME is this scenario's)
  for p in /proc/[0-9]*; do
    tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -qx "HOME=$HOME" || continue
    tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q 'app-server' && kill "${p#/proc/}" 2>/dev/null
  done
  stop_server
  cp "$HOME/.zag/scheduled_resumes.jsonl" "$CAP/store.jsonl" 2>/dev/null
  rm -f "$CAP/.env.sh"
  log "done"
  exit 0
fi

# --- the driver (outside any namespace) -------------------------------------
# shellcheck source=/dev/null
source "$KIT/lib.sh"
ensure_installed @openai/codex > /dev/null || { echo "FAIL: cannot install Codex"; exit 1; }
codex --version | grep -q '0\.171\.' || echo "note: this was checked with Codex 0.171.0; found $(codex --version)"
(cd "$REPO" && cargo build --release --quiet) || exit 1
SCEN=("$@"); [ ${#SCEN[@]} -eq 0 ] && SCEN=(open closed)
tui_run_scenarios

# --- judging (tests/e2e/tui.sh) ---------------------------------------------
continuations() { codex_continuations "$@"; }
judge_report() { grep -h '"event":"routed"' "$1/subscribe.jsonl" 2>/dev/null | head -2 | cut -c1-300 | sed 's/^/  routed event: /'; return 0; }
for s in "${SCEN[@]}"; do
  case $s in
    open)   judge open 1 resumed 'typed into pane' 'respawned `codex' ;;
    closed) judge closed 1 resumed 'respawned `codex' 'typed into pane' ;;
  esac
done
exit $status
