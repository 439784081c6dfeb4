#!/usr/bin/env bash
# clickhouse.sh runs a private ClickHouse server for development and tests.
#
#   bash deploy/clickhouse.sh start DIR   # install if missing, start, print env
#   bash deploy/clickhouse.sh env DIR     # print DIR/env of a running server
#   bash deploy/clickhouse.sh stop DIR    # stop the server started in DIR
#
# After start, `source DIR/env` exports SPINE_TEST_CLICKHOUSE=127.0.0.1:PORT
# (native protocol, what Spine and its tests use) and CLICKHOUSE_HTTP_PORT.
#
# The server runs as the clickhouse user with all its state in DIR, on free
# ports of 127.0.0.1, so it never touches a system-wide server. It is the
# Debian 12 package (ClickHouse 18.16): Spine's "legacy" schema dialect.
set -euo pipefail

readonly SERVER_BIN=/usr/sbin/clickhouse-server
readonly PACKAGES=(clickhouse-server clickhouse-client)
readonly START_TIMEOUT_S=30
readonly STOP_TIMEOUT_S=30

die() {
	echo "clickhouse.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start|stop|env DIR" >&2
	exit 2
}

# as_root runs a command as root: directly when we are root, through sudo
# otherwise. It fails when neither is possible; callers check can_root first.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	else
		sudo "$@"
	fi
}

can_root() {
	[[ $EUID -eq 0 ]] || command -v sudo >/dev/null 2>&1
}

ensure_installed() {
	local missing=()
	[[ -x $SERVER_BIN ]] || missing+=(clickhouse-server)
	command -v clickhouse-client >/dev/null 2>&1 || missing+=(clickhouse-client)
	((${#missing[@]} == 0)) && return 0

	if ! can_root; then
		echo "clickhouse.sh: ${missing[*]} missing, and installing needs root. Run as root:" >&2
		echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${PACKAGES[*]}" >&2
		exit 1
	fi
	echo "clickhouse.sh: installing ${PACKAGES[*]}" >&2
	as_root apt-get update -q >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}" >&2
}

# port_in_use reports whether something accepts connections on the port.
# Bash's /dev/tcp keeps the script free of ss/netstat, which a minimal
# Debian lacks.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ephemeral_low prints the first port of the kernel's ephemeral range. The
# kernel hands ports from there on to outgoing connections (a test's
# clients, a broker's), which a listen check cannot see and a bind then
# collides with, so the server's ports are taken below it.
ephemeral_low() {
	local lo=32768
	if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
		read -r lo _ </proc/sys/net/ipv4/ip_local_port_range || lo=32768
	fi
	echo "$lo"
}

# free_port prints a port nobody listens on, below the ephemeral range,
# other than the one in $1. Another process may still take it before the
# server binds: start then tries other ports.
free_port() {
	local p i hi
	hi=$(ephemeral_low)
	((hi > 20100)) || hi=60000 # an unusual range: take any
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % (hi - 20000)))
		[[ $p == "${1:-}" ]] && continue
		port_in_use "$p" || {
			echo "$p"
			return 0
		}
	done
	die "no free port found"
}

# ping_http asks the server's /ping over bash's /dev/tcp (no curl needed).
ping_http() {
	local reply
	reply=$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 2 cat <&3
	) || return 1
	[[ $reply == *"Ok."* ]]
}

# server_pid prints the pid from DIR/ch.pid when that process is alive and is
# the server of this DIR (pid files outlive crashes, and pids are reused).
server_pid() {
	local dir=$1 pid
	[[ -e $dir/ch.pid ]] || return 1
	# The server writes its pid file mode 0640, so a sudo user reads it as root.
	if [[ -r $dir/ch.pid ]]; then
		pid=$(tr -dc '0-9' <"$dir/ch.pid")
	else
		pid=$(as_root cat "$dir/ch.pid" | tr -dc '0-9')
	fi
	[[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--config-file=$dir/config.xml" || return 1
	echo "$pid"
}

# write_config writes config.xml and users.xml for a server in DIR into OUT.
write_config() {
	local out=$1 dir=$2 tcp=$3 http=$4
	cat >"$out/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by deploy/clickhouse.sh: a private server for development and tests. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp</tcp_port>
    <http_port>$http</http_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <mark_cache_size>268435456</mark_cache_size>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
</yandex>
EOF
	cat >"$out/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <!-- 18.16 hides LowCardinality behind this flag. -->
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>0</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

cmd_env() {
	local dir=$1
	server_pid "$dir" >/dev/null || die "no server running in $dir (run: $0 start $dir)"
	cat "$dir/env"
}

cmd_start() {
	local dir=$1 tcp http pid i
	if server_pid "$dir" >/dev/null && [[ -r $dir/env ]]; then
		cat "$dir/env"
		return 0
	fi
	ensure_installed
	if [[ $EUID -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
		die "starting the server as the clickhouse user needs root or sudo"
	fi

	as_root mkdir -p "$dir"
	as_root mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
	local attempt staging
	for ((attempt = 1; attempt <= 3; attempt++)); do
		tcp=$(free_port)
		http=$(free_port "$tcp")
		# The configs go through a temp dir because DIR may already belong
		# to clickhouse from an earlier start while we run through sudo.
		staging=$(mktemp -d)
		write_config "$staging" "$dir" "$tcp" "$http"
		as_root install -m 0644 "$staging/config.xml" "$staging/users.xml" "$dir/"
		rm -rf "$staging"
		as_root rm -f "$dir/ch.pid" "$dir/env"
		as_root truncate -s 0 "$dir/log/clickhouse-server.err.log" 2>/dev/null || true
		as_root chown -R clickhouse:clickhouse "$dir"

		# --daemon detaches the server and points its stdio at /dev/null,
		# so a caller that reads our output (a test harness) does not wait
		# on it.
		as_root setpriv --reuid=clickhouse --regid=clickhouse --init-groups \
			"$SERVER_BIN" --config-file="$dir/config.xml" --pid-file="$dir/ch.pid" --daemon

		for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
			if ping_http "$http"; then
				break
			fi
			# A server that lost the race for a port exits at once: try
			# other ports rather than wait out the timeout.
			if ((i >= 20)) && ! server_pid "$dir" >/dev/null &&
				as_root grep -q "Address already in use" "$dir/log/clickhouse-server.err.log" 2>/dev/null; then
				echo "clickhouse.sh: port $tcp or $http was taken before the server bound it; trying others" >&2
				continue 2
			fi
			sleep 0.1
		done
		break
	done
	if ! ping_http "$http"; then
		echo "clickhouse.sh: server did not answer /ping within ${START_TIMEOUT_S}s; error log tail:" >&2
		as_root tail -n 30 "$dir/log/clickhouse-server.err.log" >&2 || true
		if pid=$(server_pid "$dir"); then
			as_root kill "$pid" || true
		fi
		exit 1
	fi

	local env
	env=$(printf 'export SPINE_TEST_CLICKHOUSE=127.0.0.1:%s\nexport CLICKHOUSE_HTTP_PORT=%s\n' "$tcp" "$http")
	printf '%s\n' "$env" | as_root tee "$dir/env" >/dev/null
	printf '%s\n' "$env"
}

cmd_stop() {
	local dir=$1 pid i
	if ! pid=$(server_pid "$dir"); then
		echo "clickhouse.sh: no server running in $dir" >&2
		return 0
	fi
	as_root kill "$pid"
	for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
		[[ -e /proc/$pid ]] || break
		sleep 0.1
	done
	if [[ -e /proc/$pid ]]; then
		echo "clickhouse.sh: server $pid still running after ${STOP_TIMEOUT_S}s; sending SIGKILL" >&2
		as_root kill -KILL "$pid" || true
	fi
	as_root rm -f "$dir/ch.pid" "$dir/env"
}

main() {
	(($# == 2)) || usage
	local cmd=$1 dir=$2
	[[ -n $dir ]] || usage
	# Absolute paths: the server resolves its config from its own cwd.
	dir=$(realpath -m -- "$dir")
	case $cmd in
	start) cmd_start "$dir" ;;
	stop) cmd_stop "$dir" ;;
	env) cmd_env "$dir" ;;
	*) usage ;;
	esac
}

main "$@"
