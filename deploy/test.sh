#!/usr/bin/env bash
# test.sh runs every test: it installs and starts what the integration tests
# need (a private ClickHouse server, kcat), runs vet, the unit and
# integration tests with the race detector, and each fuzz target for a short
# time, then stops the server it started.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10000x} # a count, not a duration: a duration can expire during the fuzzer's warm-up, which it reports as a failure

bash deploy/deps.sh
chdir=$(mktemp -d /tmp/spine-test-ch.XXXXXX)
trap 'bash deploy/clickhouse.sh stop "$chdir" >/dev/null 2>&1 || true; rm -rf "$chdir"' EXIT
bash deploy/clickhouse.sh start "$chdir" >/dev/null
# shellcheck disable=SC1091
source "$chdir/env"
export SPINE_TEST_CLICKHOUSE

echo "== go vet"
"$GO" vet ./...
echo "== go test (race detector)"
"$GO" test -race -short -count=1 -timeout 20m ./...
echo "== identity graph with invariants checked after every step"
"$GO" test -tags invariants -count=1 ./engine/...
echo "== full-size end-to-end tests (no race detector: browser, crash recovery, volume and memory)"
"$GO" test -count=1 -timeout 20m ./cmd/spine ./bench/gen

echo "== fuzz targets, $FUZZTIME executions each"
# Every FuzzXxx in the module, run briefly so regressions in decoders and
# request bodies surface in CI; longer runs: FUZZTIME=1000000x make test.
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
	pkg=./$(dirname "${file#./}")
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
		echo "-- $pkg $fn"
		"$GO" test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/spine-fuzz.log 2>&1 || {
			cat /tmp/spine-fuzz.log
			exit 1
		}
	done
done
echo "== modern dialect on ClickHouse 26 (chDB, in-process)"
if chdb_env=$(bash deploy/chdb.sh); then
	(eval "$chdb_env" && "$GO" test -tags chdb -count=1 -run Chdb ./sinks/clickhouse/)
else
	echo "chDB unavailable; modern dialect not checked" >&2
	[[ ${CI:-} != true ]] || exit 1
fi
echo "== all tests passed"
