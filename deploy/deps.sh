#!/usr/bin/env bash
# deps.sh installs the Debian packages Spine's tests and demo use besides
# Go: kcat (a non-Go Kafka client, for the interoperability test) and
# Chromium with chromedriver (the dashboard's browser test). The
# ClickHouse server is installed by clickhouse.sh. Through sudo when not
# root; without either, it prints the command to run and fails.
set -euo pipefail

packages=()
command -v kcat >/dev/null 2>&1 || packages+=(kcat)
# Headless Chromium and its WebDriver for the dashboard's browser test,
# and a font so its screenshots are readable.
[[ -x /usr/bin/chromium ]] || packages+=(chromium)
[[ -x /usr/bin/chromedriver ]] || packages+=(chromium-driver)
[[ -d /usr/share/fonts/truetype/dejavu ]] || packages+=(fonts-dejavu-core)
((${#packages[@]} == 0)) && exit 0

cmd=(apt-get install -y --no-install-recommends "${packages[@]}")
if [[ $EUID -eq 0 ]]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "deps.sh: missing ${packages[*]}; run as root: apt-get update && ${cmd[*]}" >&2
	exit 1
fi
echo "deps.sh: installing ${packages[*]}" >&2
"${sudo[@]}" apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" "${cmd[@]}" >/dev/null
