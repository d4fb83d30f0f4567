#!/usr/bin/env bash
# A/B of two tftrail builds on `terraform plan`: bare Terraform, build A and build B run in
# turn REPS times on a configuration of N `terraform_data` resources; prints the median wall
# time of each and the median of the per-run ratios to the bare run just before.
#
#   benches/plan_ab.sh N REPS path/to/tftrail-A path/to/tftrail-B
#
# Build the two commits into separate binaries first (e.g. `git worktree` + `cargo build
# --release -p tftrail-cli`). Run it in a fresh directory on a quiet machine (BENCHMARKS.md
# explains why): TMPDIR is used for everything, including the logs.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 N REPS TFTRAIL_A TFTRAIL_B" >&2; exit 2; }
n=$1 reps=$2 a=$(realpath "$3") b=$(realpath "$4")
TERRAFORM="${TERRAFORM:-$(command -v terraform)}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp/home" XDG_CACHE_HOME="$tmp/cache" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
mkdir -p "$HOME"; : > "$tmp/tfrc"; export TF_CLI_CONFIG_FILE="$tmp/tfrc"
cd "$tmp"
cat > main.tf <<TF
resource "terraform_data" "r" {
  count = $n
  input = { i = count.index, name = "resource-\${count.index}" }
}
TF
"$TERRAFORM" init -input=false >/dev/null
# Each build has its own log and key.
with() { local x=$1; shift; XDG_DATA_HOME="$tmp/data-$x" XDG_STATE_HOME="$tmp/state-$x" XDG_CONFIG_HOME="$tmp/config-$x" "$@"; }
with a "$a" init >/dev/null 2>&1
with b "$b" init >/dev/null 2>&1
now() { date +%s%N; }
ms() { echo "($2 - $1) / 1000000" | bc -l; }
bare=(); ta=(); tb=(); ra=(); rb=()
for ((i = 0; i < reps; i++)); do
  s=$(now); "$TERRAFORM" plan -input=false -out bare.plan >/dev/null; e=$(now); x=$(ms "$s" "$e")
  s=$(now); with a "$a" run -- "$TERRAFORM" plan -input=false -out a.plan >/dev/null 2>&1; e=$(now); y=$(ms "$s" "$e")
  s=$(now); with b "$b" run -- "$TERRAFORM" plan -input=false -out b.plan >/dev/null 2>&1; e=$(now); z=$(ms "$s" "$e")
  bare+=("$x"); ta+=("$y"); tb+=("$z")
  ra+=("$(echo "$y / $x" | bc -l)"); rb+=("$(echo "$z / $x" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
printf 'n=%s reps=%s  bare %.0f ms | A %.0f ms (%+.0f %% per pair) | B %.0f ms (%+.0f %% per pair)\n' \
  "$n" "$reps" "$(median "${bare[@]}")" "$(median "${ta[@]}")" "$(echo "($(median "${ra[@]}") - 1) * 100" | bc -l)" \
  "$(median "${tb[@]}")" "$(echo "($(median "${rb[@]}") - 1) * 100" | bc -l)"
