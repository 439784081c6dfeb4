#!/usr/bin/env bash
# demo.sh runs `spine demo` with a private ClickHouse server, and stops that
# server when the demo ends (Ctrl-C included). Usage: deploy/demo.sh BIN [ARGS...]
set -euo pipefail

bin=${1:?usage: demo.sh BIN [ARGS...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
chdir=${SPINE_DEMO_CLICKHOUSE_DIR:-$(mktemp -d /tmp/spine-demo-ch.XXXXXX)}

chargs=()
if bash "$here/clickhouse.sh" start "$chdir" >/dev/null; then
	# shellcheck disable=SC1091
	source "$chdir/env"
	chargs=(--clickhouse "$SPINE_TEST_CLICKHOUSE")
	trap 'bash "$here/clickhouse.sh" stop "$chdir" >/dev/null 2>&1 || true' EXIT
else
	echo "demo.sh: ClickHouse could not be started; the demo runs without it" >&2
fi
# Not exec: the trap must run after spine exits.
"$bin" demo "${chargs[@]}" "$@"
