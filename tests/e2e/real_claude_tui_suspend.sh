#!/bin/bash
# Opt-in end-to-end test (issue 21): the real Claude Code TUI (2.1.332) in
# tmux at a claude.ai usage limit with auto-continue off (its limit menu
# stays on screen), suspended with Ctrl-Z before the reset and brought back
# with `fg` 20 s after it, with zag-resumed running; fully offline against
# the real-CLI kit's fake API (see tests/e2e/tui.sh for where the kit lives).
#
# While the TUI is suspended its last frame (the menu) stays on screen
# above the shell's `[1]+ Stopped` and prompt: the daemon must type nothing
# (the pane's shell has a `command_not_found_handle` that logs whatever it
# is given, and its history is written after every command: both prove
# it), and after `fg` exactly one continuation must follow, from the TUI.
#
# Usage: bash tests/e2e/real_claude_tui_suspend.sh
# Needs root (unshare), tmux, python3, npm (once, to install Claude Code
# 2.1.332 into $CLAUDE_DIR, default /tmp/cc-latest). About 5 minutes.
# Captures go to $CAPTURES (default a temp dir).
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
  tui_scenario claude-suspend
  export PATH="$(dirname "$CLAUDE_BIN"):$PATH"
  mkdir -p "$HOME/proj" "$HOME/.claude" "$HOME/.zag"

  claude_first_run
  echo '{"autoContinueAtUsageLimit": false}' > "$HOME/.claude/settings.json"
  printf '[usage_limits]\njitter_secs = 0\nstagger_secs = 0\n' > "$HOME/.zag/zag.toml"

  claude_fake_api

  tui_start_daemon

  # the pane's shell resets PATH: hand it the environment through a file
  export -p | grep -E ' (ANTHROPIC_|CLAUDE_|DISABLE_|HOME=|PATH=|TZ=)' > "$CAP/.env.sh"
  WITNESS_SHELL=$(tui_witness_shell)
  $T new-session -d -s tui -x 200 -y 50 -c "$HOME/proj" "$WITNESS_SHELL"
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
  # Ctrl-Z: Claude stops; its menu stays above the shell's prompt
  $T send-keys -t tui C-z; sleep 3; log "Ctrl-Z"
  screen > "$CAP/screen_suspended.txt"
  sleep $(( RESET - 10 - $(date +%s) )); echo ok > "$MODE_FILE"; log "server ok (reset in 10 s)"
  sleep 10; log "reset"
  sleep 20; screen > "$CAP/screen_before_fg.txt"
  "$ZAG" list --json > "$CAP/list_suspended.json" 2>&1
  $T send-keys -t tui 'fg' Enter; log "fg (reset + 20 s)"
  # the daemon looks every 5 s; Claude's own continue, once chosen, fires
  # within about 90 s: watch until reset + 200 s
  for _ in $(seq 18); do sleep 10; done
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
SCEN=(suspend)
tui_run_scenarios

# --- judging (tests/e2e/tui.sh) ---------------------------------------------
continuations() { claude_continuations "$@"; }
judge_more() { claude_no_fork "$1" || { ok=0; why+=("the conversation forked"); }; }
judge_report() {
  grep -h '"event":"routed"' "$1/subscribe.jsonl" 2>/dev/null | head -1 | cut -c1-300 | sed 's/^/  first routed event: /'
  [ -f "$1/list_during.json" ] && grep -o '"continued_by": *"[^"]*"' "$1/list_during.json" | head -1 | sed 's/^/  list during the wait: /'
  return 0
}
judge suspend 1 resumed - 'respawned `claude'
judge_shell_untouched suspend 'source .*claude'
exit $status
