#!/usr/bin/env bash
# Runs the module's tests and writes their events as JSON on stdout, for
# gotestsum (make test, make test-short), which prints them and ends with a
# summary listing every skipped test with its reason and every failure.
#
#   scripts/test.sh          the full run: the race detector on the packages
#                            with shared state, the others without it, the
#                            allocation budgets (which skip under the race
#                            detector) and the full brute-force nearby check
#                            (shortened under the race detector)
#   scripts/test.sh short    the fast loop: every package once with -short,
#                            without the race detector
#
# It exits non-zero when any go test run fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

status=0
run() { go test -json "$@" || status=1; }

case "${1:-full}" in
short)
	run -short -count=1 ./...
	;;
full)
	# Packages with shared state run under the race detector.
	race_pkgs=$(go list ./matcher/... ./router/... ./membership/... ./shardmap/... ./dispatch/... \
		./store/... ./loadgen/... ./internal/serve/... ./internal/tlsconfig/... ./internal/lifecycle/... \
		./fleet/... ./cluster/... ./internal/redistest/... ./internal/consultest/... ./events/... \
		./fence/... ./internal/natstest/... ./internal/gcpolicy/... ./internal/tracing/... ./internal/identity/... \
		./client/... ./resp/... ./ui/... ./chaos/...) || exit 1
	other_pkgs=$(go list ./... | grep -vxF -f <(echo "$race_pkgs")) || exit 1
	run -race -count=1 $race_pkgs
	run -count=1 $other_pkgs
	# Allocation budgets skip under the race detector (it makes sync.Pool
	# drop items); the brute-force nearby check runs its full count here.
	run -count=1 -run '^TestAllocationBudgets$' ./matcher/index/
	run -count=1 -run '^TestNearbyEqualsBruteForce$' ./router/
	;;
*)
	echo "usage: scripts/test.sh [full|short]" >&2
	exit 2
	;;
esac
exit $status
