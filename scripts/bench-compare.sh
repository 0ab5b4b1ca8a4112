#!/usr/bin/env bash
# bench-compare: the same load-generator workload (geomatch bench) against
# `geomatch dev` (its gRPC API, and its RESP front door with Tile38's SET /
# NEARBY) and a real redis-server (GEOADD / GEOSEARCH ... ASC COUNT 10
# through go-redis), each a separate process on loopback, with the same seed,
# fleet and concurrencies; prints each report and the ratios. Server CPU and
# RSS (and peak RSS) are read from /proc for each server process, and
# geomatch's GC share of CPU and live heap from its /metrics.
#
# Environment (all optional):
#   BENCH_DRIVERS      fleet sizes, space-separated (default "100000 1000000")
#   BENCH_DURATION     length of each measured phase (default 5s)
#   BENCH_DIST         uniform or hotspot (default uniform)
#   BENCH_CONCURRENCY  nearby concurrencies (default 1,8,32)
#   BENCH_SEED         seed (default 1)
#   BENCH_OUT          directory for the JSON reports (default a new temp dir)
#   TILE38_ADDR        host:port of a running Tile38 on loopback: also run the
#                      workload against it (SET / NEARBY); it is not started
#                      or cleared here
#   TILE38_PID         its process id, to report its CPU and RSS
#   BENCH_FENCES       also run the fence phases against a fresh geomatch dev
#                      with this many fences (geomatch bench --fences; e.g.
#                      20000): ingest without and with fences, PutFence/s,
#                      fence event rate
#   BENCH_FENCE_COMPARE  1: also replay one trace against geomatch dev and,
#                      with TILE38_ADDR, Tile38, and compare their fence
#                      events (geomatch bench --fence-compare; Tile38's
#                      collection fencecmp and channels cmp-* are replaced)
#
# Every server started here is stopped on exit; every run is bounded by
# the load generator's own limits (phase duration, operation caps).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${GEOMATCH_BIN:-$ROOT/bin/geomatch}
DRIVERS=${BENCH_DRIVERS:-"100000 1000000"}
DURATION=${BENCH_DURATION:-5s}
DIST=${BENCH_DIST:-uniform}
CONC=${BENCH_CONCURRENCY:-1,8,32}
SEED=${BENCH_SEED:-1}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/geomatch-bench.XXXXXX)}
mkdir -p "$OUT"

command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN missing: make build" >&2; exit 1; }

pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

# start_redis starts redis-server on a free 127.0.0.1 port (persistence
# off) and sets REDIS_ADDR and REDIS_PID.
start_redis() {
	local port
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 20000))
		redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
			--protected-mode yes --daemonize no --loglevel warning >"$OUT/redis-$port.log" 2>&1 &
		REDIS_PID=$!
		for _ in $(seq 50); do
			if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
				pids+=("$REDIS_PID")
				REDIS_ADDR=127.0.0.1:$port
				return 0
			fi
			kill -0 "$REDIS_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$REDIS_PID" 2>/dev/null || true
	done
	echo "could not start redis-server" >&2
	return 1
}

# start_geomatch starts `geomatch dev` on a free port and sets GM_ADDR,
# GM_RESP_ADDR, GM_METRICS (its /metrics, for the GC share and live heap)
# and GM_PID. Drivers live 30 minutes: the whole run, however long the load.
start_geomatch() {
	local log=$OUT/geomatch-dev.log
	# One load generator on loopback is one client (one peer address):
	# the per-client limits are lifted so that it measures the server.
	"$BIN" dev --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --ttl 30m --log-level warn \
		--client-update-rate 0 --client-request-rate 0 --client-streams 0 >"$log" 2>&1 &
	GM_PID=$!
	pids+=("$GM_PID")
	for _ in $(seq 100); do
		GM_ADDR=$(sed -n 's/^geomatch dev: router listening on \([0-9.:]*\).*/\1/p' "$log")
		GM_RESP_ADDR=$(sed -n 's/^geomatch dev: RESP (Tile38\/Redis GEO) on \([0-9.:]*\).*/\1/p' "$log")
		GM_METRICS=$(sed -n 's/^geomatch dev: shard map: .*(metrics: \(http:[^)]*\)).*/\1/p' "$log")
		[ -n "$GM_ADDR" ] && [ -n "$GM_RESP_ADDR" ] && [ -n "$GM_METRICS" ] && return 0
		kill -0 "$GM_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "geomatch dev did not start:" >&2
	cat "$log" >&2
	return 1
}

stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

run_bench() { # name, then geomatch bench flags
	local name=$1
	shift
	echo
	echo "== $name"
	"$BIN" bench --drivers "$n" --dist "$DIST" --seed "$SEED" --duration "$DURATION" \
		--concurrency "$CONC" --json "$OUT/$name-$n.json" "$@"
}

echo "geomatch bench-compare: drivers $DRIVERS, $DIST, $DURATION per phase, concurrency $CONC, seed $SEED"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); reports in $OUT"
for n in $DRIVERS; do
	start_geomatch
	run_bench geomatch --target "$GM_ADDR" --server-pid "$GM_PID" --server-metrics "$GM_METRICS"
	stop "$GM_PID"

	# geomatch's RESP front door, driven like Tile38 (SET / NEARBY through
	# go-redis), on a fresh geomatch dev.
	start_geomatch
	run_bench geomatch-resp --resp-target "$GM_RESP_ADDR" --resp-protocol tile38 --server-pid "$GM_PID" --server-metrics "$GM_METRICS"
	stop "$GM_PID"

	start_redis
	run_bench redis --resp-target "$REDIS_ADDR" --resp-protocol redis --server-pid "$REDIS_PID"
	stop "$REDIS_PID"

	echo
	echo "== geomatch (A) vs Redis GEO (B), $n drivers"
	"$BIN" bench --compare "$OUT/geomatch-$n.json,$OUT/redis-$n.json"
	echo
	echo "== geomatch RESP front door, Tile38 commands (A) vs Redis GEO (B), $n drivers"
	"$BIN" bench --compare "$OUT/geomatch-resp-$n.json,$OUT/redis-$n.json"

	if [ -n "${TILE38_ADDR:-}" ]; then
		extra=()
		[ -n "${TILE38_PID:-}" ] && extra=(--server-pid "$TILE38_PID")
		run_bench tile38 --resp-target "$TILE38_ADDR" --resp-protocol tile38 "${extra[@]}"
		echo
		echo "== geomatch (A) vs Tile38 (B), $n drivers"
		"$BIN" bench --compare "$OUT/geomatch-$n.json,$OUT/tile38-$n.json"
		echo
		echo "== geomatch RESP front door (A) vs Tile38 (B), same commands and client, $n drivers"
		"$BIN" bench --compare "$OUT/geomatch-resp-$n.json,$OUT/tile38-$n.json"
	fi

	if [ -n "${BENCH_FENCES:-}" ] && [ "$BENCH_FENCES" != 0 ]; then
		start_geomatch
		run_bench "geomatch-fences-$BENCH_FENCES" --target "$GM_ADDR" --server-pid "$GM_PID" --server-metrics "$GM_METRICS" --fences "$BENCH_FENCES"
		stop "$GM_PID"
	fi
done

if [ "${BENCH_FENCE_COMPARE:-}" = 1 ]; then
	start_geomatch
	extra=()
	if [ -n "${TILE38_ADDR:-}" ]; then
		extra=(--tile38-addr "$TILE38_ADDR")
		[ -n "${TILE38_PID:-}" ] && extra+=(--tile38-pid "$TILE38_PID")
	fi
	echo
	echo "== fence events: geomatch vs ${TILE38_ADDR:+Tile38 vs }oracle, one trace"
	"$BIN" bench --target "$GM_ADDR" --server-pid "$GM_PID" --seed "$SEED" --fence-compare \
		--json "$OUT/fence-compare.json" "${extra[@]}"
	stop "$GM_PID"
fi
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
