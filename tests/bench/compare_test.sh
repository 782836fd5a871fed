#!/usr/bin/env bash
# compare_test.sh <source dir> <goro CLI> <scratch dir>: bench/go covers
# every workload of `goro bench`, and bench/compare races the two and
# prints its table. Skipped (status 77) without Go (apt-get install golang-go).
set -euo pipefail
src=$1 goro=$2 scratch=$3
command -v go >/dev/null || { echo "no go: skipped"; exit 77; }
mkdir -p "$scratch"
out=$("$src/bench/compare" --goro "$goro bench" --go-out "$scratch" --runs 1 --workloads pingpong,yield 2>"$scratch/progress.log") || {
  cat "$scratch/progress.log"; echo "$out"; exit 1; }
echo "$out"
grep -q '^pingpong  *ns_per_op ' <<<"$out"
grep -q '^yield  *ns_per_op ' <<<"$out"
grep -q '^geomean ns_per_op ratio A/B = [0-9.]* over 2 workloads' <<<"$out"
# Every goro workload has its Go twin.
go_list=$("$scratch/bench-go" --list)
for w in $("$goro" bench --help | sed -n 's/^workloads: //p'); do
  grep -qx "$w" <<<"$go_list" || { echo "bench/go lacks the workload $w"; exit 1; }
done
