#!/usr/bin/env bash
# The latency a 2-witness quorum adds to an append (BENCHMARKS.md, "Witness quorum"). In one
# run, on one machine: two `tftrail serve` on loopback, each with its own local log: one
# without witnesses (the baseline), one with `--witness-policy` naming two real `tftrail
# witness serve` processes (quorum: both). One client appends one record at a time to each,
# alternating (A, B, A, B …, so both see the same machine), over keep-alive connections; each
# witnessed answer must say the quorum was met. Median and p95 per append, and their ratio.
#
#   cargo build --release -p tftrail-cli && benches/witness_quorum.sh [N]
#
# Env: TFTRAIL (default target/release/tftrail), N appends to each server (default 500, after 20
# untimed). Markdown on stdout, details on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TFTRAIL="${TFTRAIL:-$root/target/release/tftrail}"
N="${1:-500}"
[ -x "$TFTRAIL" ] || { echo "error: build first: cargo build --release -p tftrail-cli" >&2; exit 1; }
PYTHON="${PYTHON:-$(command -v python3)}"

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
  XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/cache"
mkdir -p "$HOME"

# Starts a process with its stderr in $1.err; waits for "listening on http://ADDR"; sets $addr.
start() {
  local err="$1.err"; shift
  "$@" >/dev/null 2>"$err" &
  pids+=($!)
  for _ in $(seq 1 300); do
    if grep -q "listening on http://" "$err"; then
      addr=$(grep -o "listening on http://[^ ]*" "$err" | head -1 | sed 's|listening on http://||')
      return
    fi
    sleep 0.1
  done
  echo "error: did not start: $*" >&2; cat "$err" >&2; exit 1
}

for side in base wit; do
  "$TFTRAIL" --store "$tmp/$side-log" --key "$tmp/$side.key" init --origin "bench.example/$side" >"$tmp/$side.vkey" 2>/dev/null
  "$TFTRAIL" token create --tokens "$tmp/$side-tokens.toml" --role writer --name bench >"$tmp/$side.token" 2>/dev/null
done
wvk=$(cat "$tmp/wit.vkey")
policy="$tmp/policy.txt"
echo "log $wvk" >"$policy"
for w in w1 w2; do
  "$TFTRAIL" witness init --origin "$w.bench.example" --dir "$tmp/$w" >"$tmp/$w.vkey" 2>/dev/null
  start "$tmp/$w" "$TFTRAIL" witness serve --listen 127.0.0.1:0 --dir "$tmp/$w" --log "$wvk"
  echo "witness $w $(cat "$tmp/$w.vkey") http://$addr" >>"$policy"
done
echo "group both all w1 w2" >>"$policy"
echo "quorum both" >>"$policy"
start "$tmp/base" "$TFTRAIL" --store "$tmp/base-log" --key "$tmp/base.key" serve \
  --listen 127.0.0.1:0 --tokens "$tmp/base-tokens.toml"
base=$addr
start "$tmp/wit" "$TFTRAIL" --store "$tmp/wit-log" --key "$tmp/wit.key" serve \
  --listen 127.0.0.1:0 --tokens "$tmp/wit-tokens.toml" --witness-policy "$policy"
wit=$addr

"$PYTHON" - "$base" "$(cat "$tmp/base.token")" "$wit" "$(cat "$tmp/wit.token")" "$N" <<'EOF'
import http.client, json, sys, time, statistics
base, btok, wit, wtok, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def conn(addr):
    h, p = addr.rsplit(":", 1)
    return http.client.HTTPConnection(h, int(p))
sides = {"base": (conn(base), btok, []), "wit": (conn(wit), wtok, [])}
def append(side, i):
    c, tok, lat = sides[side]
    body = json.dumps({"records": [{"kind": "bench.event", "payload": {"i": i, "pad": "x" * 250}}]})
    t = time.perf_counter()
    c.request("POST", "/v1/records", body, {"authorization": "Bearer " + tok, "content-type": "application/json"})
    r = c.getresponse()
    data = r.read()
    took = time.perf_counter() - t
    if r.status != 200:
        sys.exit(f"{side}: {r.status} {data!r}")
    if side == "wit" and r.getheader("tftrail-witness-quorum") != "met":
        sys.exit(f"quorum not met: {data!r}")
    return took
for i in range(20):
    append("base", i); append("wit", i)
for i in range(n):
    sides["base"][2].append(append("base", i))
    sides["wit"][2].append(append("wit", i))
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p * len(xs)))]
b, w = sides["base"][2], sides["wit"][2]
bm, wm, bp, wp = statistics.median(b), statistics.median(w), pct(b, 0.95), pct(w, 0.95)
print(f"| appends (one record, one client, each) | median | p95 |")
print(f"|---|---|---|")
print(f"| server, no witnesses (baseline) | {bm*1e3:.2f} ms | {bp*1e3:.2f} ms |")
print(f"| server, 2 witnesses, quorum 2 | {wm*1e3:.2f} ms | {wp*1e3:.2f} ms |")
print(f"| ratio (witnessed / baseline) | {wm/bm:.2f}x | {wp/bp:.2f}x |")
print(f"| added | {(wm-bm)*1e3:.2f} ms | {(wp-bp)*1e3:.2f} ms |")
print(f"({n} appends to each, alternating, after 20 untimed)", file=sys.stderr)
EOF
