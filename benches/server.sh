#!/usr/bin/env bash
# The team server's group commit against direct writers (BENCHMARKS.md, "Team server: group
# commit"): 1, 16 and 64 clients appending one record at a time, through `tftrail serve` and as
# `tftrail append` processes, on a local store and on S3 (moto with Object Lock), in one run.
#
#   cargo build --release -p tftrail-cli -p tftrail-bench && benches/server.sh
#
# Env: TFTRAIL_BENCH_SECS (per measurement, default 10), TFTRAIL_BENCH_CLIENTS (default 1,16,64),
# TFTRAIL_BENCH_STORES (default local,s3), TFTRAIL_BENCH_DIR (default: a new top-level directory,
# /tftb-server-<time>, so that file creation does not meet recently freed inodes; see the top of
# BENCHMARKS.md), TFTRAIL_MOTO_SERVER (default moto_server_atomic, else moto_server, on PATH).
# Markdown on stdout, progress on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$root/target/release/tftrail-bench"
[ -x "$bench" ] && [ -x "$root/target/release/tftrail" ] || {
  echo "error: build first: cargo build --release -p tftrail-cli -p tftrail-bench" >&2; exit 1; }
if [ -z "${TFTRAIL_MOTO_SERVER:-}" ]; then
  TFTRAIL_MOTO_SERVER="$(command -v moto_server_atomic || command -v moto_server || true)"
  [ -n "$TFTRAIL_MOTO_SERVER" ] || {
    echo "error: moto_server not found; set TFTRAIL_MOTO_SERVER (scripts/deps installs it)" >&2; exit 1; }
  export TFTRAIL_MOTO_SERVER
fi
dir="${TFTRAIL_BENCH_DIR:-/tftb-server-$(date +%s)}"
mkdir -p "$dir"
TFTRAIL_BENCH_DIR="$dir" "$bench" --server "$@"
rmdir "$dir" 2>/dev/null || true
