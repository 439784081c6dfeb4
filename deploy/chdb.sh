#!/usr/bin/env bash
# chdb.sh fetches chDB (ClickHouse as a library, a current engine) from the
# npm registry into a cache dir and prints the cgo flags that link it. Only
# the `chdb`-tagged tests use it, to check the modern schema dialect and the
# analyst queries on a current engine; the product never depends on it.
#
#   bash deploy/chdb.sh [DIR]     # default DIR: .cache/chdb in the repo
#   eval "$(bash deploy/chdb.sh)" && go test -tags chdb ./sinks/clickhouse/
#
# It prints `export CGO_ENABLED=1 CGO_CFLAGS=... CGO_LDFLAGS=...` lines.
# The package is about 180 MB to download and 570 MB unpacked; a second run
# finds it in DIR and downloads nothing.
set -euo pipefail

readonly PKG=@chdb/lib-linux-x64-gnu
readonly VERSION=26.7.3-stable.1 # ClickHouse 26.7

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../.cache/chdb}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [[ ! -f $dir/$VERSION/libchdb.so ]]; then
	command -v npm >/dev/null 2>&1 || {
		echo "chdb.sh: npm is missing; install it (apt-get install -y npm) or skip the chdb tests" >&2
		exit 1
	}
	case $(uname -sm) in
	"Linux x86_64") ;;
	*)
		echo "chdb.sh: $PKG is built for Linux x86_64 only, not $(uname -sm)" >&2
		exit 1
		;;
	esac
	tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "chdb.sh: fetching $PKG@$VERSION (about 180 MB)" >&2
	# npm pack downloads the tarball only: no install scripts run.
	(cd "$tmp" && npm pack --silent "$PKG@$VERSION" >/dev/null)
	tar -xzf "$tmp"/*.tgz -C "$tmp"
	[[ -f $tmp/package/libchdb.so ]] || {
		echo "chdb.sh: $PKG@$VERSION has no libchdb.so" >&2
		exit 1
	}
	rm -rf "${dir:?}/$VERSION"
	mv "$tmp/package" "$dir/$VERSION"
fi

lib=$dir/$VERSION
echo "export CGO_ENABLED=1"
echo "export CGO_LDFLAGS='-L$lib -lchdb -Wl,-rpath,$lib'"
echo "export SPINE_CHDB_LIB='$lib'"
