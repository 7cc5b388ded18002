#!/bin/bash
# Opt-in end-to-end test: the real Claude Code TUI (2.1.332) left in tmux at a
# claude.ai usage limit, with zag-resumed running, fully offline against the
# real-CLI kit's fake API (see tests/e2e/tui.sh for where the kit lives).
#
# Scenarios (all by default, run in parallel, each in its own loopback-only
# network namespace, HOME, tmux server and daemon; about 6 minutes):
#   open  auto-continue on (the default), TUI left open: exactly one
#         continuation, Claude's own; the daemon stands down, no fork, no
#         headless run.
#   exit  auto-continue on, `/exit` while armed: exactly one continuation,
#         the daemon's headless resume.
#   off   `autoContinueAtUsageLimit: false`, TUI left open: the daemon types
#         `2` + Enter into the limit menu ("wait here, then continue
#         automatically"): exactly one continuation, no headless run.
#   esc   auto-continue on, Esc while armed, TUI left open: none at all; the
#         incident ends as cancelled by the user.
#   ctrlc auto-continue on, Ctrl-C once while armed (it cancels, as Esc
#         does), then twice more to exit: the cancel was the start of an
#         exit, so exactly one continuation, the daemon's headless resume.
#
# Usage: bash tests/e2e/real_claude_tui.sh [open exit off esc ctrlc]
# Needs root (unshare), tmux, python3, npm (once, to install Claude Code
# 2.1.332 into $CLAUDE_DIR, default /tmp/cc-latest). Captures go to
# $CAPTURES (default a temp dir), one folder per scenario.
set -u
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=tests/e2e/tui.sh
source "$REPO/tests/e2e/tui.sh"
tui_needs_kit summarize_interactive.py
CLAUDE_DIR=${CLAUDE_DIR:-/tmp/cc-latest}
CLAUDE_BIN="$CLAUDE_DIR/node_modules/.bin/claude"
LEAD=${LEAD:-90}

# --- one scenario, inside its own namespace ---------------------------------
if [ "${1:-}" = "--one" ]; then
  S=$2; CAP=$3
  tui_scenario claude
  export PATH="$(dirname "$CLAUDE_BIN"):$PATH"
  mkdir -p "$HOME/proj" "$HOME/.claude" "$HOME/.zag"

  claude_first_run
  if [ "$S" = off ]; then echo '{"autoContinueAtUsageLimit": false}' > "$HOME/.claude/settings.json"
  else echo '{}' > "$HOME/.claude/settings.json"; fi
  printf '[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n' > "$HOME/.zag/zag.toml"

  claude_fake_api

  tui_start_daemon

  # the pane's shell resets PATH: hand it the environment through a file
  export -p | grep -E ' (ANTHROPIC_|CLAUDE_|DISABLE_|HOME=|PATH=|TZ=)' > "$CAP/.env.sh"
  $T new-session -d -s tui -x 200 -y 50 -c "$HOME/proj"
  $T send-keys -t tui "source $CAP/.env.sh; cd \$HOME/proj && claude" Enter
  wait_for '^❯' 60 || log "no prompt seen"
  RESET=$(( ( $(date +%s) + LEAD + 59 ) / 60 * 60 ))
  echo "$RESET" > "$MODE_FILE.reset"; echo limit > "$MODE_FILE"
  log "reset pinned to $(date -u -d @$RESET +%T)"
  $T send-keys -t tui -l 'hi'; sleep 0.5; $T send-keys -t tui Enter
  # An Enter dropped by a TUI still starting leaves `hi` in the prompt (the
  # last `❯` line): press Enter again.
  for _ in 1 2 3; do
    wait_for 'hit your' 15 && break
    [ "$(screen | grep '^❯' | tail -1 | tr -d '\302\240' | sed 's/ *$//')" = "❯ hi" ] && { log "Enter again"; $T send-keys -t tui Enter; }
  done
  screen | grep -q 'hit your' || log "no limit seen"
  sleep 5; screen > "$CAP/screen_at_limit.txt"
  "$ZAG" list --json > "$CAP/list_after_hit.json" 2>&1
  case $S in
    exit) $T send-keys -t tui -l '/exit'; sleep 0.5; $T send-keys -t tui Enter; sleep 3; log "/exit while armed" ;;
    esc)  $T send-keys -t tui Escape; sleep 3; log "Esc while armed" ;;
    ctrlc) $T send-keys -t tui C-c; sleep 3; $T send-keys -t tui C-c; sleep 0.3; $T send-keys -t tui C-c; sleep 3
           log "Ctrl-C while armed, then twice more (exit)" ;;
  esac
  sleep $(( RESET - 10 - $(date +%s) )); echo ok > "$MODE_FILE"; log "server ok (reset in 10 s)"
  sleep 10; log "reset"
  # Claude's own continue fires at reset + 46..108 s; the daemon takes over
  # at reset + 180 s at the latest: watch until reset + 200 s.
  OBS=200; case $S in esc|exit|ctrlc) OBS=90 ;; esac
  for _ in $(seq $((OBS / 10))); do
    sleep 10
    "$ZAG" list --json > "$CAP/list_during.json.tmp" 2>&1 && [ -s "$CAP/list_during.json.tmp" ] && \
      grep -q continued_by "$CAP/list_during.json.tmp" && cp "$CAP/list_during.json.tmp" "$CAP/list_during.json"
  done
  screen > "$CAP/screen_final.txt"
  "$ZAG" status > "$CAP/status_final.txt" 2>&1
  # Did the TUI live to the end (no headless run may have happened while it did)?
  if screen | grep -q '❯'; then echo yes > "$CAP/tui_alive_at_end"; fi
  $T send-keys -t tui -l '/exit' 2>/dev/null; sleep 0.5; $T send-keys -t tui Enter 2>/dev/null; sleep 3
  $T kill-server 2>/dev/null
  tui_stop_daemon
  kill "$SERVER"; wait "$SERVER" 2>/dev/null
  cp "$HOME/.zag/scheduled_resumes.jsonl" "$CAP/store.jsonl" 2>/dev/null
  cp -r "$HOME/.claude/projects" "$CAP/native_projects"
  python3 "$KIT/summarize_interactive.py" "$CAP" > "$CAP/summary.txt" 2>&1
  rm -f "$CAP/.env.sh"
  log "done"
  exit 0
fi

# --- the driver (outside any namespace) -------------------------------------
if [ ! -x "$CLAUDE_BIN" ]; then
  mkdir -p "$CLAUDE_DIR" && ( cd "$CLAUDE_DIR" && { [ -f package.json ] || npm init -y > /dev/null; } &&
    npm install --no-audit --no-fund @anthropic-ai/claude-code@2.1.332 > /dev/null ) || { echo "FAIL: cannot install Claude Code"; exit 1; }
fi
(cd "$REPO" && cargo build --release --quiet) || exit 1
SCEN=("$@"); [ ${#SCEN[@]} -eq 0 ] && SCEN=(open exit off esc ctrlc)
tui_run_scenarios

# --- judging (tests/e2e/tui.sh) ---------------------------------------------
continuations() { claude_continuations "$@"; }
judge_more() { claude_no_fork "$1" || { ok=0; why+=("the conversation forked"); }; }
judge_report() {
  grep -h '"event":"routed"' "$1/subscribe.jsonl" 2>/dev/null | head -1 | cut -c1-300 | sed 's/^/  first routed event: /'
  [ -f "$1/list_during.json" ] && grep -o '"continued_by": *"[^"]*"' "$1/list_during.json" | head -1 | sed 's/^/  list during the wait: /'
  return 0
}
for s in "${SCEN[@]}"; do
  case $s in
    open) judge open 1 resumed - 'respawned `claude' claude-own ;;
    exit) judge exit 1 resumed 'respawned `claude' - ;;
    off)  judge off 1 resumed - 'respawned `claude' ;;
    esc)  judge esc 0 failed - 'respawned `claude' ;;
    ctrlc) judge ctrlc 1 resumed 'respawned `claude' - ;;
  esac
done
exit $status
