#!/usr/bin/env bash
# tftrail on S3 (a local moto_server with Object Lock), measured in one run:
#  1. HTTP requests per append (counted from moto's request log), by method;
#  2. records/s at batch sizes 1, 100 and 1,000 (one `tftrail append` process per batch);
#  2b. WRITERS (8) processes appending APPENDS (10) records each to one log at once: requests
#     per append and PUTs refused by a precondition;
#  3. wall time of the usual recipe `terraform plan | aws s3 cp - s3://bucket/$(date +%s)_plan.log`
#     vs `tftrail run --store s3://… -- terraform plan`, same config, same server (medians).
#
#   cargo build -p tftrail-cli && benches/s3.sh
#
# Env: REPS (default 5), TFTRAIL (default target/release/tftrail if built, else target/debug),
# TERRAFORM, MOTO (default moto_server_atomic, else moto_server, on PATH). Markdown on stdout, details on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${TFTRAIL:-}" ]; then
  TFTRAIL="$root/target/release/tftrail"; [ -x "$TFTRAIL" ] || TFTRAIL="$root/target/debug/tftrail"
fi
TERRAFORM="${TERRAFORM:-$(command -v terraform)}"
MOTO="${MOTO:-$(command -v moto_server_atomic || command -v moto_server)}"
REPS="${REPS:-5}"

tmp="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MOTO" -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; wait $moto_pid 2>/dev/null; rm -rf "$tmp"' EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
  XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/cache" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 \
  AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port" \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
  AWS_DEFAULT_REGION=us-east-1 AWS_ALLOW_HTTP=true
unset AWS_PROFILE AWS_SESSION_TOKEN TFTRAIL_STORE TFTRAIL_KEY
mkdir -p "$HOME"; : > "$tmp/tfrc"; export TF_CLI_CONFIG_FILE="$tmp/tfrc"
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# The audit bucket (COMPLIANCE, 1 day) and a plain bucket for the usual recipe.
aws s3api create-bucket --bucket audit --object-lock-enabled-for-bucket >/dev/null
aws s3api put-object-lock-configuration --bucket audit --object-lock-configuration \
  '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Days":1}}}' >/dev/null
aws s3api create-bucket --bucket plans >/dev/null
STORE="s3://audit/log"
"$TFTRAIL" init --store "$STORE" --origin bench.example/s3 >/dev/null 2>&1

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
# requests since line $1 of the moto log, by method: "PUT GET HEAD LIST DELETE total"
count() {
  tail -n +"$(( $1 + 1 ))" "$tmp/moto.log" | grep -E '"(GET|PUT|HEAD|POST|DELETE) /' | awk '
    { m=$6; gsub(/"/,"",m); p=$7;
      if (m=="GET" && (p ~ /[?&](list-type|versions|prefix)/ || p ~ /^\/[^\/?]+\/?(\?|$)/)) m="LIST";
      c[m]++; t++ }
    END { printf "%d %d %d %d %d", c["PUT"], c["GET"], c["HEAD"], c["LIST"], t }'
}
lines() { wc -l < "$tmp/moto.log"; }
batch() { for i in $(seq "$1"); do printf '{"bench":%d,"n":%d}\n' "$2" "$i"; done; }

echo "## Requests per append (moto request log)" >&2
echo "| batch size | PUT | GET | HEAD | LIST | total requests per append process | per record |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
declare -A rate
for size in 1 100 1000; do
  reps=$REPS; [ "$size" = 1 ] && reps=$(( REPS * 4 ))
  times=()
  before=$(lines)
  for r in $(seq "$reps"); do
    batch "$size" "$r" > "$tmp/in"
    s=$(now); "$TFTRAIL" append --batch --store "$STORE" < "$tmp/in" >/dev/null 2>&1; e=$(now)
    times+=("$(echo "$e - $s" | bc -l)")
  done
  read -r put get head list total <<<"$(count "$before")"
  med=$(median "${times[@]}")
  rate[$size]=$(echo "$size / $med" | bc -l)
  printf '| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f |\n' "$size" \
    "$(echo "$put/$reps" | bc -l)" "$(echo "$get/$reps" | bc -l)" "$(echo "$head/$reps" | bc -l)" \
    "$(echo "$list/$reps" | bc -l)" "$(echo "$total/$reps" | bc -l)" "$(echo "$total/$reps/$size" | bc -l)"
  echo "batch $size: times ${times[*]}" >&2
done
echo
echo "| batch size | median wall time per append process (s) | records/s |"
echo "|---:|---:|---:|"
for size in 1 100 1000; do
  printf '| %d | %.3f | %.1f |\n' "$size" "$(echo "$size / ${rate[$size]}" | bc -l)" "${rate[$size]}"
done

# Contention: WRITERS processes, each appending APPENDS records one by one, on one log.
WRITERS="${WRITERS:-8}"; APPENDS="${APPENDS:-10}"
# A second log needs its own signing key.
export TFTRAIL_KEY="$tmp/contended.key"
"$TFTRAIL" init --store s3://audit/contended --origin bench.example/contended >/dev/null 2>&1
before=$(lines); s=$(now); writers=()
for w in $(seq "$WRITERS"); do
  ( for i in $(seq "$APPENDS"); do
      printf '{"w":%d,"i":%d}\n' "$w" "$i" | "$TFTRAIL" append --store s3://audit/contended >/dev/null || exit 1
    done ) &
  writers+=($!)
done
for pid in "${writers[@]}"; do
  wait "$pid" || { echo "a contended append failed" >&2; exit 1; }
done
e=$(now)
n=$(( WRITERS * APPENDS ))
read -r put get head list total <<<"$(count "$before")"
failed=$(tail -n +"$(( before + 1 ))" "$tmp/moto.log" | grep -cE '"PUT /[^"]*" 412' || true)
echo
echo "| $WRITERS writers × $APPENDS appends on one log | value |"
echo "|---|---:|"
printf '| wall time | %.1f s |\n' "$(echo "$e - $s" | bc -l)"
printf '| requests per append (PUT / GET / HEAD / LIST) | %.1f (%.1f / %.1f / %.1f / %.1f) |\n' \
  "$(echo "$total/$n" | bc -l)" "$(echo "$put/$n" | bc -l)" "$(echo "$get/$n" | bc -l)" \
  "$(echo "$head/$n" | bc -l)" "$(echo "$list/$n" | bc -l)"
printf '| PUTs refused by a precondition (412), per append | %.2f |\n' "$(echo "$failed/$n" | bc -l)"
"$TFTRAIL" verify --store s3://audit/contended | head -1 >&2
unset TFTRAIL_KEY

# The usual recipe vs tftrail run, alternating, same config and server.
d="$tmp/cfg"; mkdir -p "$d"; cd "$d"
cat > main.tf <<'TF'
resource "terraform_data" "a" { input = "a" }
resource "terraform_data" "b" { input = terraform_data.a.output }
TF
"$TERRAFORM" init -input=false >/dev/null
recipe=(); tft=()
for _ in $(seq "$REPS"); do
  s=$(now)
  "$TERRAFORM" plan -input=false -no-color | aws s3 cp - "s3://plans/$(date +%s)_plan.log"
  e=$(now); recipe+=("$(echo "$e - $s" | bc -l)")
  s=$(now)
  "$TFTRAIL" run --store "$STORE" -- "$TERRAFORM" plan -input=false >/dev/null 2>&1
  e=$(now); tft+=("$(echo "$e - $s" | bc -l)")
done >/dev/null 2>&1
echo "recipe: ${recipe[*]}" >&2; echo "tftrail: ${tft[*]}" >&2
echo
echo "| terraform plan, $REPS runs | median wall (s) |"
echo "|---|---:|"
printf '| `terraform plan \\| aws s3 cp - s3://plans/$(date +%%s)_plan.log` | %.2f |\n' "$(median "${recipe[@]}")"
printf '| `tftrail run --store s3://audit/log -- terraform plan` | %.2f |\n' "$(median "${tft[@]}")"
echo
echo "objects the recipe left (timestamp keys collide within a second): $(aws s3 ls s3://plans/ | wc -l) for $REPS runs"
"$TFTRAIL" verify --store "$STORE" | head -1
