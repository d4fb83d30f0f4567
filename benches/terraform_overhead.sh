#!/usr/bin/env bash
# Wall time tftrail adds to `terraform plan` and `terraform apply`, measured side by side with
# bare Terraform in the same run (alternating, REPS repetitions, medians). "added" is the median
# over the repetitions of each pair's ratio (tftrail run / the bare run just before it), which
# follows the machine's drifts better than the ratio of the two medians (also shown).
#
#   cargo build --release -p tftrail-cli && benches/terraform_overhead.sh [SIZES...]
#
# Env: REPS (default 3), TFTRAIL (default target/release/tftrail), TERRAFORM (default
# `terraform` on PATH). Writes a Markdown table to stdout; details on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TFTRAIL="${TFTRAIL:-$root/target/release/tftrail}"
TERRAFORM="${TERRAFORM:-$(command -v terraform)}"
REPS="${REPS:-3}"
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(10 100 1000)

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
  XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/cache" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
mkdir -p "$HOME"; : > "$tmp/tfrc"; export TF_CLI_CONFIG_FILE="$tmp/tfrc"
"$TFTRAIL" init >/dev/null 2>&1

now() { date +%s.%N; }
# t CMD...: run quietly, print elapsed seconds.
t() { local s e; s=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; e=$(now); echo "$e - $s" | bc -l; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
# pairs A B: the median of A[i]/B[i] - 1, in percent.
pairs() { local -n xa=$1 xb=$2; local r=() i; for i in "${!xa[@]}"; do r+=("$(echo "(${xa[$i]} / ${xb[$i]} - 1) * 100" | bc -l)"); done; median "${r[@]}"; }

echo "| resources | plan bare (s) | plan tftrail (s) | added (pairs; medians) | apply bare (s) | apply tftrail (s) | added (pairs; medians) |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
  d="$tmp/cfg$n"; mkdir -p "$d"; cd "$d"
  cat > main.tf <<TF
variable "v" {
  default = "1"
}
resource "terraform_data" "r" {
  count = $n
  input = { i = count.index, v = var.v, name = "resource-\${count.index}" }
}
TF
  "$TERRAFORM" init -input=false >/dev/null
  pb=(); pt=(); ab=(); at=()
  for ((i = 0; i < REPS; i++)); do
    # plan (nothing in state: N creates)
    rm -f terraform.tfstate terraform.tfstate.backup
    pb+=("$(t "$TERRAFORM" plan -input=false -out bare.plan)")
    pt+=("$(t "$TFTRAIL" run -- "$TERRAFORM" plan -input=false -out tft.plan)")
    # apply of a saved plan (N creates), each from an empty state
    rm -f terraform.tfstate terraform.tfstate.backup
    "$TERRAFORM" plan -input=false -out bare.plan >/dev/null
    ab+=("$(t "$TERRAFORM" apply -input=false bare.plan)")
    rm -f terraform.tfstate terraform.tfstate.backup
    "$TFTRAIL" run -- "$TERRAFORM" plan -input=false -out tft.plan >/dev/null 2>&1
    at+=("$(t "$TFTRAIL" run -- "$TERRAFORM" apply -input=false tft.plan)")
  done
  echo "n=$n plan bare: ${pb[*]} | tftrail: ${pt[*]} | apply bare: ${ab[*]} | tftrail: ${at[*]}" >&2
  mpb=$(median "${pb[@]}"); mpt=$(median "${pt[@]}"); mab=$(median "${ab[@]}"); mat=$(median "${at[@]}")
  printf '| %d | %.2f | %.2f | %+.0f %%; %+.0f %% | %.2f | %.2f | %+.0f %%; %+.0f %% |\n' "$n" "$mpb" "$mpt" \
    "$(pairs pt pb)" "$(echo "($mpt - $mpb) / $mpb * 100" | bc -l)" "$mab" "$mat" \
    "$(pairs at ab)" "$(echo "($mat - $mab) / $mab * 100" | bc -l)"
done
echo >&2 "log: $("$TFTRAIL" verify 2>&1 | head -1)"
