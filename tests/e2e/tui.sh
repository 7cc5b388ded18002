# Shared by the real-TUI end-to-end scripts (real_*_tui*.sh): driving a
# scenario (its namespace, its tmux, the daemon beside it) and judging it.
# A script sets REPO and sources this file. Each scenario runs as
# `bash <script> --one <scenario> <capdir>` in its own loopback-only
# network namespace, HOME, tmux server and daemon; its captures are in
# "$CAPTURES/<scenario>": the fake API's requests (server_requests.jsonl),
# the store (store.jsonl), the daemon's log (daemon.log).
#
# What counts as a continuation is the provider's: the script defines
# `continuations <capdir>`, printing one line per continuation (its first
# tab-separated field names the sender). What makes a run pass is the same
# for every provider, and is here. A script may define `judge_more <capdir>`
# to add its own reasons (it sets ok=0 and appends to why), and
# `judge_report <capdir>` to print more of what happened.
# shellcheck shell=bash

ZAG="$REPO/target/release/zag-resumed"
KIT="${REALCLIENTS_KIT:-$REPO/../shared/realclients}"

# The real-CLI kit (a scripted fake API, loopback-only namespaces, npm
# installs) is not part of this repository: without it, skip with one line.
# tui_needs_kit [kit file]...
tui_needs_kit() {
  local f
  for f in lib.sh fake_api.py "$@"; do
    if [ ! -f "$KIT/$f" ]; then
      echo "SKIP: $(basename "$0"): no real-CLI kit at $KIT (set REALCLIENTS_KIT)"
      exit 0
    fi
  done
}

# Inside `--one`: enter the scenario's namespace (re-running the script
# there), and give it its tmux (T), a timeline (log), the pane's text
# (screen; blank lines dropped unless the second argument is `raw`) and
# wait_for <regex> <seconds>. Needs S and CAP.
# tui_scenario <tmux server label> [raw]
tui_scenario() {
  # shellcheck source=/dev/null
  source "$KIT/lib.sh"
  ensure_netns --one "$S" "$CAP"
  set -u
  export TZ=UTC HOME="$CAP/home"
  T="tmux -L e2e-$1-$S"
  if [ "${2:-}" = raw ]; then
    screen() { $T capture-pane -p -t tui 2>/dev/null; }
  else
    screen() { $T capture-pane -p -t tui 2>/dev/null | grep -v '^\s*$'; }
  fi
}
log() { echo "$(date -u +%T) [$S] $*" >> "$CAP/timeline.txt"; }
wait_for() { for _ in $(seq "$2"); do screen | grep -qE "$1" && return 0; sleep 1; done; return 1; }

# The daemon (the release build, verbose) in HOME, and a `subscribe --json`
# beside it. Sets DAEMON and SUB.
tui_start_daemon() {
  ( cd "$HOME" && exec "$ZAG" -v run ) > "$CAP/daemon.log" 2>&1 &
  DAEMON=$!
  for _ in $(seq 50); do "$ZAG" status > /dev/null 2>&1 && break; sleep 0.2; done
  "$ZAG" subscribe --json > "$CAP/subscribe.jsonl" 2>&1 &
  SUB=$!
}

tui_stop_daemon() {
  "$ZAG" stop > /dev/null 2>&1 || kill "$DAEMON"; wait "$DAEMON" 2>/dev/null
  kill "$SUB" 2>/dev/null; wait "$SUB" 2>/dev/null
}

# The pane's shell for the Ctrl-Z scenarios: every command it cannot find
# is logged (not_found.log), and its history is written after each command
# (shell_history). Prints the command that starts it.
tui_witness_shell() {
  cat > "$CAP/rc" <<RC
PS1='user@box:~\$ '
HISTFILE='$CAP/shell_history'
PROMPT_COMMAND='history -a'
command_not_found_handle() { printf '%s\\n' "\$*" >> '$CAP/not_found.log'; return 127; }
RC
  : > "$CAP/not_found.log"
  echo "bash --noprofile --rcfile $CAP/rc -i"
}

# The driver: each scenario of SCEN in parallel, in its own namespace.
tui_run_scenarios() {
  CAPTURES=${CAPTURES:-$(mktemp -d)}
  echo "captures: $CAPTURES"
  local pids=() s
  for s in "${SCEN[@]}"; do
    mkdir -p "$CAPTURES/$s"
    bash "$0" --one "$s" "$CAPTURES/$s" > "$CAPTURES/$s/driver.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
}

# Claude Code 2.1.332's first-run dialogs answered (as the kit's
# interactive driver does), for a project at $HOME/proj.
claude_first_run() { python3 - "$HOME" <<'PY'
import json, sys
h = sys.argv[1]
json.dump({"numStartups": 3, "installMethod": "npm", "autoUpdates": False,
           "hasCompletedOnboarding": True, "lastOnboardingVersion": "2.1.332", "lastReleaseNotesSeen": "2.1.332",
           "theme": "dark", "firstStartTime": "2026-11-01T00:00:00.000Z", "hasSeenTasksHint": True,
           "hasUsedBackslashReturn": True, "hasSeenAutoDefaultNotice": True, "fullscreenUpsellSeenCount": 3,
           "projects": {h + "/proj": {"allowedTools": [], "hasTrustDialogAccepted": True,
                                      "hasCompletedProjectOnboarding": True, "projectOnboardingSeenCount": 1}}},
          open(h + "/.claude.json", "w"), indent=1)
PY
}

# The kit's fake API for Claude (its limit's reset two hours out until the
# script pins it), and Claude's environment pointed at it. Sets SERVER and
# MODE_FILE.
claude_fake_api() {
  MODE_FILE="$CAP/.mode"; echo ok > "$MODE_FILE"; : > "$CAP/server_requests.jsonl"
  python3 "$KIT/fake_api.py" --port-file "$CAP/.port" --log "$CAP/server_requests.jsonl" \
      --mode-file "$MODE_FILE" --reset-in 7200 2> "$CAP/fake_api.log" &
  SERVER=$!
  for _ in $(seq 50); do [ -s "$CAP/.port" ] && break; sleep 0.1; done
  export ANTHROPIC_BASE_URL="http://127.0.0.1:$(cat "$CAP/.port")" CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-fake-token \
         CLAUDE_CODE_SUBSCRIPTION_TYPE=max CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 \
         DISABLE_AUTOUPDATER=1 DISABLE_ERROR_REPORTING=1 DISABLE_BUG_COMMAND=1 CLAUDE_CODE_MAX_RETRIES=2
  unset ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN TMUX
}

# --- judging ------------------------------------------------------------------
status=0

# Distinct incidents in the store: a typing intent re-writes its incident's
# `schedule` record, so lines are not incidents; ids are.
incidents() {
  grep '"action":"schedule"' "$1/store.jsonl" 2>/dev/null | grep -o '"incident_id":"[^"]*"' | sort -u | wc -l
}

# judge <scenario> <continuations wanted> <complete status> <log must-have|-> <log must-not|-> [sender|-]
judge() {
  local s=$1 want=$2 st=$3 must=$4 mustnot=$5 who=${6:--}
  local cap="$CAPTURES/$1" ok=1 why=() got count
  got=$(continuations "$cap")
  count=$(printf '%s' "$got" | grep -c . || true)
  [ "$count" = "$want" ] || { ok=0; why+=("$count continuations, want $want"); }
  if [ "$who" != - ] && [ "$want" -gt 0 ]; then
    printf '%s\n' "$got" | cut -f1 | grep -qx "$who" || { ok=0; why+=("not by $who"); }
  fi
  [ "$(incidents "$cap")" = 1 ] || { ok=0; why+=("not exactly one incident"); }
  grep -q "\"status\":\"$st\"" "$cap/store.jsonl" 2>/dev/null || { ok=0; why+=("no complete/$st record"); }
  if [ "$must" != - ] && ! grep -qE "$must" "$cap/daemon.log"; then ok=0; why+=("daemon log lacks /$must/"); fi
  if [ "$mustnot" != - ] && grep -qE "$mustnot" "$cap/daemon.log"; then ok=0; why+=("daemon log has /$mustnot/"); fi
  if declare -F judge_more > /dev/null; then judge_more "$cap"; fi
  if [ $ok = 1 ]; then
    echo "PASS $s: $count continuation(s) ${got:+[$(printf '%s' "$got" | cut -f1 | tr '\n' ' ')]}"
  else
    echo "FAIL $s: ${why[*]}"; status=1
  fi
  echo "  outcome: $(grep -o '"action":"complete".*' "$cap/store.jsonl" 2>/dev/null | head -1 | cut -c1-300)"
  if declare -F judge_report > /dev/null; then judge_report "$cap"; fi
}

# A TUI suspended with Ctrl-Z: nothing typed may reach the shell in front
# of it. The scenario's shell logs unknown commands to not_found.log and
# keeps its history; the history may hold only the user's own commands.
# judge_shell_untouched <scenario> <regex of the user's command that started the TUI>
judge_shell_untouched() {
  local s=$1 cap="$CAPTURES/$1"
  if [ -s "$cap/not_found.log" ]; then
    echo "FAIL $s: keystrokes reached the shell: $(tr '\n' '|' < "$cap/not_found.log")"; status=1
  else
    echo "PASS $s: nothing reached the shell (command_not_found_handle log empty)"
  fi
  echo "  shell history: $(tr '\n' '|' < "$cap/shell_history" 2>/dev/null)"
  if grep -qvE "^($2|fg)\$" "$cap/shell_history" 2>/dev/null; then
    echo "FAIL $s: the shell's history holds more than the user's commands"; status=1
  fi
  grep -o '"continued_by_why": *"[^"]*"' "$cap/list_suspended.json" 2>/dev/null | head -1 | sed 's/^/  list while suspended: /'
}

# Claude Code: /v1/messages requests answered 200 after the limit's 429.
# The sender: Claude's own continue (its cron workload), a headless run
# (the SDK), or the TUI.
claude_continuations() { python3 - "$1/server_requests.jsonl" <<'PY'
import json, sys
seen_limit = False
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "/v1/messages" not in e["path"] or "count_tokens" in e["path"]:
        continue
    if e["response_status"] == 429:
        seen_limit = True
        continue
    if seen_limit and e["response_status"] == 200:
        ua = e["headers"].get("User-Agent", "")
        msgs = (e.get("body") or {}).get("messages") or []
        users = [m for m in msgs if m.get("role") == "user"]
        c = users[-1]["content"] if users else ""
        if isinstance(c, list):
            c = " ".join(b.get("text", "") for b in c if b.get("type") == "text")
        who = "claude-own" if "workload/cron" in ua else ("headless" if "sdk" in ua else "tui")
        print(f"{who}\t{ua}\t{c.strip()[:60]!r}")
PY
}

# Claude Code: true when the conversation did not fork (a missing summary
# is no proof, and fails). A fork is one entry with two user/assistant
# children (two continuations). Claude's own bookkeeping (its exit warning
# beside the `/exit` entries under the arm notice) is a system child, no fork.
claude_no_fork() { python3 - "$1/summary.txt" <<'PY'
import ast, sys
for line in open(sys.argv[1]):
    if "FORK: parent" in line:
        kids = ast.literal_eval(line.split("children", 1)[1].strip())
        if sum(1 for _, t in kids if t in ("user", "assistant")) > 1:
            sys.exit(1)
PY
}

# Codex: POSTs to /responses answered 200 after the limit's 429; the
# sender is the User-Agent's first word.
codex_continuations() { python3 - "$1/server_requests.jsonl" <<'PY'
import json, sys
seen_limit = False
for line in open(sys.argv[1]):
    e = json.loads(line)
    if not e["path"].rstrip("/").endswith("/responses") or e.get("method") != "POST":
        continue
    if e["response_status"] == 429:
        seen_limit = True
        continue
    if seen_limit and e["response_status"] == 200:
        h = e["headers"]
        print(h.get("User-Agent", h.get("user-agent", "?")).split(" ")[0][:40])
PY
}
