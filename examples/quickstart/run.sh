#!/usr/bin/env bash
# Quickstart: record a real `terraform plan` and `apply` in a tftrail log, list it, verify it.
#
#   examples/quickstart/run.sh            # from a checkout, after `cargo build --release`
#
# Uses $TFTRAIL (default: the release binary of this checkout, else `tftrail` on PATH) and the
# default store/key under the XDG directories, unless TFTRAIL_STORE / TFTRAIL_KEY are set.
# Needs Terraform (>= 1.4, for terraform_data) on PATH; downloads no provider.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -z "${TFTRAIL:-}" ]; then
  if [ -x "$root/target/release/tftrail" ]; then TFTRAIL="$root/target/release/tftrail"
  elif command -v tftrail >/dev/null; then TFTRAIL=tftrail
  else echo "build tftrail first: cargo build --release" >&2; exit 2; fi
fi
tftrail() { "$TFTRAIL" "$@"; }

# Work on a copy so the checkout stays clean.
work="${QUICKSTART_DIR:-$(mktemp -d)}"
cp "$here/main.tf" "$work/"
cd "$work"

# Create the log and its signing key once (skipped when they exist).
key="${TFTRAIL_KEY:-${XDG_CONFIG_HOME:-$HOME/.config}/tftrail/signing.key}"
[ -f "$key" ] || tftrail init

tftrail run -- terraform init -input=false
tftrail run -- terraform plan -input=false -out tf.plan
tftrail run -- terraform apply -input=false tf.plan
tftrail log
tftrail show "$(tftrail log --kind terraform.apply.outcome --limit 1 --json | sed -E 's/^\{"index":([0-9]+).*/\1/')"
tftrail blame terraform_data.app
tftrail verify
