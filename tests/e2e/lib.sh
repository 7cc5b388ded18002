# Shared steps of the real-CLI end-to-end scripts. Source it after the
# kit's lib.sh, inside the loopback namespace, with HOME and CAP set.
# shellcheck shell=bash

# zag's [usage_limits] for a fast run: resume at most 3 s after the limit.
fast_resume_config() {
  mkdir -p "$HOME/.zag"
  printf '[usage_limits]\njitter_secs = 0\nstagger_secs = 0\nmax_wait_secs = 3\n' > "$HOME/.zag/zag.toml"
}

start_daemon() {
  "$REPO/target/release/zag-resumed" run 2> "$CAP/daemon.log" &
  DAEMON=$!
  for _ in $(seq 100); do grep -q "is watching" "$CAP/daemon.log" && return; sleep 0.1; done
  fail "the daemon did not start"
}

# Wait for the store's `complete` record (30 s at most), then stop.
wait_complete_and_stop() {
  STORE="$HOME/.zag/scheduled_resumes.jsonl"
  for _ in $(seq 300); do grep -q '"action":"complete"' "$STORE" 2>/dev/null && break; sleep 0.1; done
  kill "$DAEMON"; wait "$DAEMON"
}

fail() { echo "FAIL: $*"; echo "--- daemon log"; cat "$CAP/daemon.log"; stop_server; exit 1; }

# The store shows exactly one incident, resumed; the API was called again.
check_resumed_once() {
  local before="$1"
  grep -q '"status":"resumed"' "$STORE" || fail "no complete/resumed record: $(cat "$STORE" 2>/dev/null)"
  [ "$(grep -c '"action":"schedule"' "$STORE")" = 1 ] || fail "not exactly one incident: $(cat "$STORE")"
  AFTER=$(wc -l < "$CAP/server_requests.jsonl")
  [ "$AFTER" -gt "$before" ] || fail "the resume never reached the API"
}
