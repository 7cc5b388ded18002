# Shared steps of the real-CLI end-to-end scripts. A script sets REPO,
# sources this file, and calls `e2e_begin <npm-package> "$@"`.
# shellcheck shell=bash

# The real-CLI kit (a scripted fake API, loopback-only network namespaces,
# npm installs of the CLIs) is not part of this repository: point
# REALCLIENTS_KIT at it, or keep it at ../shared/realclients beside the
# checkout. Without it the script skips with one line.
KIT="${REALCLIENTS_KIT:-$REPO/../shared/realclients}"
if [ ! -f "$KIT/lib.sh" ] || [ ! -f "$KIT/fake_api.py" ]; then
  echo "SKIP: $(basename "$0"): no real-CLI kit at $KIT (set REALCLIENTS_KIT to the folder holding lib.sh and fake_api.py)"
  exit 0
fi
# shellcheck source=/dev/null
source "$KIT/lib.sh"

# Install the CLI and build the daemon (outside the namespace, which has no
# network), re-run the script inside a loopback-only namespace, and start
# the kit's fake API there. Sets CAP (the capture dir) and BASE.
e2e_begin() {
  local package="$1"; shift
  if [ -z "${IN_LOOPBACK_NETNS:-}" ]; then
    ensure_installed "$package"
    (cd "$REPO" && cargo build --release --quiet) || exit 1
  fi
  ensure_netns "$@"
  CAP="$(mktemp -d)"
  start_server "$CAP"
}

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
