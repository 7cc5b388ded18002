#!/usr/bin/env bash
# Check the service definitions:
# - systemd/zag-resumed.service with `systemd-analyze --user verify`, in a
#   throwaway $HOME whose ~/.cargo/bin/zag-resumed is the built binary, so the
#   unit is checked exactly as shipped (verify fails on a missing ExecStart
#   binary). verify exits 0 on unknown keys and bad values and only prints
#   them, so any output at all fails the check.
# - config/com.github.zag-resumed.plist parses (python3 plistlib) and has the
#   keys launchd needs; `plutil -lint` too where it exists (macOS).
#
# Usage: .ci/verify-units.sh [path/to/zag-resumed]
# Without an argument it builds the debug binary. Installs systemd with
# apt-get when systemd-analyze is missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-}"
if [[ -z "$bin" ]]; then
  cargo build --quiet --bin zag-resumed
  bin="${CARGO_TARGET_DIR:-target}/debug/zag-resumed"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[[ -x "$bin" ]] || { echo "verify-units: $bin is not an executable" >&2; exit 1; }

if ! command -v systemd-analyze >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "verify-units: installing systemd for systemd-analyze" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
  else
    echo "verify-units: systemd-analyze not found (install systemd)" >&2
    exit 1
  fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# --- systemd user unit -------------------------------------------------------
mkdir -p "$tmp/home/.cargo/bin" "$tmp/runtime"
chmod 700 "$tmp/runtime"
ln -s "$bin" "$tmp/home/.cargo/bin/zag-resumed"
cp systemd/zag-resumed.service "$tmp/"
out="$(HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/runtime" \
  systemd-analyze --user verify "$tmp/zag-resumed.service" 2>&1)" || {
  echo "verify-units: systemd-analyze verify failed:" >&2
  echo "$out" >&2
  exit 1
}
if [[ -n "$out" ]]; then
  echo "verify-units: systemd-analyze verify complained:" >&2
  echo "$out" >&2
  exit 1
fi
# Properties the daemon's wiring relies on.
for want in 'Type=notify' 'NotifyAccess=main' 'ExecReload=/bin/kill -HUP $MAINPID' \
  'Restart=on-failure' 'WatchdogSec=' 'WantedBy=default.target' 'Environment=PATH='; do
  grep -qF -- "$want" systemd/zag-resumed.service || {
    echo "verify-units: zag-resumed.service lacks $want" >&2
    exit 1
  }
done
echo "verify-units: systemd/zag-resumed.service ok ($(systemd-analyze --version | head -n1))"

# --- launchd agent -------------------------------------------------------------
plist=config/com.github.zag-resumed.plist
python3 - "$plist" <<'PY'
import plistlib, sys
path = sys.argv[1]
with open(path, "rb") as f:
    p = plistlib.load(f)
def need(cond, msg):
    if not cond:
        sys.exit(f"verify-units: {path}: {msg}")
need(p.get("Label") == "com.github.zag-resumed", "Label")
args = p.get("ProgramArguments", [])
need(len(args) >= 2 and args[0].endswith("/zag-resumed") and args[1] == "run",
     "ProgramArguments must run `zag-resumed run`")
need(p.get("RunAtLoad") is True, "RunAtLoad")
need("KeepAlive" in p, "KeepAlive")
need(p.get("StandardOutPath") and p.get("StandardErrorPath"), "log paths")
need("PATH" in p.get("EnvironmentVariables", {}), "EnvironmentVariables PATH")
print(f"verify-units: {path} ok")
PY
if command -v plutil >/dev/null; then
  plutil -lint "$plist"
fi
