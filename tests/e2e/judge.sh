# The judging shared by the real-TUI end-to-end scripts. Each scenario's
# captures are in "$CAPTURES/<scenario>": the fake API's requests
# (server_requests.jsonl), the store (store.jsonl), the daemon's log
# (daemon.log).
#
# What counts as a continuation is the provider's: the script defines
# `continuations <capdir>`, printing one line per continuation (its first
# tab-separated field names the sender). What makes a run pass is the same
# for every provider, and is here. A script may define `judge_more <capdir>`
# to add its own reasons (it sets ok=0 and appends to why), and
# `judge_report <capdir>` to print more of what happened.
# shellcheck shell=bash

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
