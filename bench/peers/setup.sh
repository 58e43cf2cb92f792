#!/bin/sh
# setup.sh installs the peers of the peer benchmark (bench/compare.go): pm2 from
# the npm registry into a private prefix, and supervisord from Debian's
# packages, with the system service stopped and disabled (the benchmark runs
# its own supervisord with a private config and socket).
#
# Idempotent; run as root. Environment:
#   SHIPOTE_PEERS_DIR  install prefix (default /var/tmp/shipote-peers); the
#                      benchmark reads the same variable
#   PM2_VERSION        pm2 version to install (default 7.0.4)
#
# pm2 lands in $SHIPOTE_PEERS_DIR/pm2/node_modules/.bin/pm2. A peer that cannot
# be installed is reported and skipped: the script still exits 0 so that the
# benchmark runs and its row says why the peer is missing.
set -u

DIR=${SHIPOTE_PEERS_DIR:-/var/tmp/shipote-peers}
PM2_VERSION=${PM2_VERSION:-7.0.4}
status=0

mkdir -p "$DIR" || exit 1

install_pm2() {
	bin="$DIR/pm2/node_modules/.bin/pm2"
	pkg="$DIR/pm2/node_modules/pm2/package.json"
	if [ -x "$bin" ] && [ -f "$pkg" ] &&
		grep -q "\"version\": *\"$PM2_VERSION\"" "$pkg"; then
		echo "pm2 $PM2_VERSION: already installed in $DIR/pm2"
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1; then
		if command -v apt-get >/dev/null 2>&1; then
			echo "npm not found: installing Debian's nodejs and npm"
			apt_update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null
		fi
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "pm2: not installed: npm not found" >&2
		return 1
	fi
	mkdir -p "$DIR/pm2"
	if ! npm install --prefix "$DIR/pm2" --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION"; then
		echo "pm2: not installed: npm install pm2@$PM2_VERSION failed" >&2
		return 1
	fi
	echo "pm2 $PM2_VERSION: installed in $DIR/pm2"
}

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	apt-get update -q >/dev/null && apt_updated=1
}

install_supervisor() {
	if ! dpkg-query -W -f='${Status}' supervisor 2>/dev/null | grep -q 'install ok installed'; then
		if ! command -v apt-get >/dev/null 2>&1; then
			echo "supervisord: not installed: no apt-get" >&2
			return 1
		fi
		# policy-rc.d answering 101 keeps the package from starting the
		# system service; a private one is used only if none exists.
		own_policy=
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
			chmod 755 /usr/sbin/policy-rc.d
			own_policy=1
		fi
		apt_update
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q supervisor >/dev/null
		rc=$?
		[ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
		if [ $rc -ne 0 ]; then
			echo "supervisord: not installed: apt-get install supervisor failed" >&2
			return 1
		fi
	fi
	# The system service must not run during the benchmark.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now supervisor >/dev/null 2>&1 || true
	fi
	if [ -x /etc/init.d/supervisor ]; then
		/etc/init.d/supervisor stop >/dev/null 2>&1 || true
	fi
	if command -v update-rc.d >/dev/null 2>&1; then
		update-rc.d supervisor disable >/dev/null 2>&1 || true
	fi
	for pf in /run/supervisord.pid /var/run/supervisord.pid; do
		if [ -f "$pf" ]; then
			pid=$(cat "$pf")
			if [ -n "$pid" ] && grep -q supervisord "/proc/$pid/cmdline" 2>/dev/null &&
				grep -q /etc/supervisor "/proc/$pid/cmdline" 2>/dev/null; then
				kill "$pid" 2>/dev/null || true
			fi
		fi
	done
	echo "supervisord $(dpkg-query -W -f='${Version}' supervisor): installed, system service disabled"
}

install_pm2 || status=1
install_supervisor || status=1
if [ $status -ne 0 ]; then
	echo "some peers are missing; the benchmark reports them as not installed" >&2
fi
exit 0
