#!/usr/bin/env bash
# A plain `terraform apply -auto-approve` creating N terraform_data resources (default 100) with
# the local backend, against the same apply with the http backend served by `tftrail serve` on
# loopback (BENCHMARKS.md, "State backend: plain apply through tftrail"). In one run: the two
# alternate, REPS repetitions each (default 9), each apply from an empty state (an untimed
# `destroy` in between). "added" is the median over the repetitions of each pair's ratio
# (http / the local run just before it), then the ratio of the two medians.
#
#   cargo build --release -p tftrail-cli && TMPDIR=<fresh dir> benches/state_backend.sh [N]
#
# Env: REPS (default 9), TFTRAIL (default target/release/tftrail), TERRAFORM (default
# `terraform` on PATH). Markdown on stdout, details on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TFTRAIL="${TFTRAIL:-$root/target/release/tftrail}"
TERRAFORM="${TERRAFORM:-$(command -v terraform || true)}"
REPS="${REPS:-9}"
N="${1:-100}"
[ -x "$TFTRAIL" ] || { echo "error: build first: cargo build --release -p tftrail-cli" >&2; exit 1; }
[ -n "$TERRAFORM" ] || { echo "error: terraform not found; set TERRAFORM" >&2; exit 1; }

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
  XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/cache" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 \
  TFTRAIL_STORE="$tmp/log" TFTRAIL_KEY="$tmp/signing.key"
unset TFTRAIL_SERVER TFTRAIL_TOKEN TF_HTTP_ADDRESS TF_HTTP_USERNAME TF_LOG TF_DATA_DIR
mkdir -p "$HOME"; : > "$tmp/tfrc"; export TF_CLI_CONFIG_FILE="$tmp/tfrc"

"$TFTRAIL" init --origin bench.example/state >/dev/null
token="$("$TFTRAIL" token create --tokens "$tmp/tokens.toml" --role writer --name bench)"
"$TFTRAIL" serve --listen 127.0.0.1:0 --tokens "$tmp/tokens.toml" --state-store "$tmp/states" \
  2>"$tmp/serve.log" &
server_pid=$!
addr=""
for _ in $(seq 1 300); do
  addr="$(sed -n 's/^listening on http:\/\/\([^ ]*\).*/\1/p' "$tmp/serve.log" | head -1)"
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "error: tftrail serve did not start" >&2; cat "$tmp/serve.log" >&2; exit 1; }
export TF_HTTP_PASSWORD="$token"

config() {
  cat <<TF
variable "v" {
  default = "1"
}
resource "terraform_data" "r" {
  count = $N
  input = { i = count.index, v = var.v, name = "resource-\${count.index}" }
}
TF
}
mkdir -p "$tmp/local" "$tmp/http"
config > "$tmp/local/main.tf"
{
  cat <<TF
terraform {
  backend "http" {
    address        = "http://$addr/state/bench/apply"
    lock_address   = "http://$addr/state/bench/apply"
    unlock_address = "http://$addr/state/bench/apply"
    username       = "tftrail"
  }
}
TF
  config
} > "$tmp/http/main.tf"
for d in local http; do (cd "$tmp/$d" && "$TERRAFORM" init -input=false >/dev/null); done

now() { date +%s.%N; }
# t DIR CMD...: run quietly in DIR, print elapsed seconds.
# failed DIR CMD...: what a failed command said, and the server's last lines.
failed() { echo "failed in $1: ${*:2}" >&2; tail -20 "$tmp/out" >&2; tail -5 "$tmp/serve.log" >&2; exit 1; }
t() {
  local d=$1 s e; shift
  cd "$tmp/$d"; s=$(now); "$@" >"$tmp/out" 2>&1 || failed "$d" "$@"; e=$(now)
  echo "$e - $s" | bc -l
}
quiet() { (cd "$tmp/$1" && "${@:2}" >"$tmp/out" 2>&1) || failed "$@"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
# pairs A B: the median of A[i]/B[i] - 1, in percent.
pairs() { local -n xa=$1 xb=$2; local r=() i; for i in "${!xa[@]}"; do r+=("$(echo "(${xa[$i]} / ${xb[$i]} - 1) * 100" | bc -l)"); done; median "${r[@]}"; }

tl=(); th=()
for ((i = 0; i < REPS; i++)); do
  quiet local "$TERRAFORM" destroy -input=false -auto-approve
  tl+=("$(t local "$TERRAFORM" apply -input=false -auto-approve)")
  quiet http "$TERRAFORM" destroy -input=false -auto-approve
  th+=("$(t http "$TERRAFORM" apply -input=false -auto-approve)")
done
echo "n=$N apply, local backend: ${tl[*]} | http backend through tftrail serve: ${th[*]}" >&2
ml=$(median "${tl[@]}"); mh=$(median "${th[@]}")

# What the server recorded: one write per apply or destroy (and a lock and an unlock around each).
records="$(curl -sf -H "authorization: Bearer $token" "http://$addr/v1/records?kind=terraform.state.write&limit=10000" || true)"
writes="$(printf '%s' "$records" | grep -o '"kind":"terraform.state.write"' | wc -l || true)"
echo "terraform.state.write records: $writes (for $((2 * REPS)) applies and destroys)" >&2
size="$(stat -c %s "$(ls -S "$tmp/states/bench/apply/"*.tfstate | head -1)")"
echo "largest state version: $size bytes" >&2

# The server's own time for one write of that state as a create (parse, diff with the values of
# N added instances, version stored, record and blob appended): POSTs of the last version,
# each to a new name, timed by curl.
last="$(ls -t "$tmp/states/bench/apply/"*.tfstate | head -1)"
pw=()
for ((i = 1; i <= 9; i++)); do
  pw+=("$(curl -sf -o /dev/null -w '%{time_total}' -u "tftrail:$token" \
    -H 'content-type: application/json' --data-binary @"$last" \
    "http://$addr/state/bench/post-$i")") || { echo "failed: POST of $last" >&2; exit 1; }
done
echo "one POST /state of the $N-resource state ($(stat -c %s "$last") bytes) as a create: ${pw[*]} s" >&2

echo "| resources | apply, local backend (s) | apply, http backend via tftrail serve (s) | added (pairs; medians) |"
echo "|---:|---:|---:|---:|"
printf '| %d | %.2f | %.2f | %+.0f %%; %+.0f %% |\n' "$N" "$ml" "$mh" \
  "$(pairs th tl)" "$(echo "($mh - $ml) / $ml * 100" | bc -l)"
printf '\nThe server'"'"'s time for one write creating the %d resources (curl, median of 9): %.1f ms\n' "$N" \
  "$(echo "$(median "${pw[@]}") * 1000" | bc -l)"
echo >&2 "log: $("$TFTRAIL" verify 2>&1 | head -1)"
