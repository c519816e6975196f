#!/bin/bash
# tests/system/run.sh - porter's Debian package under a real systemd.
#
# Boots systemd as PID 1 in systemd-nspawn on a Debian 12 root, installs
# the .deb and checks what a user of the package sees, first as a plain
# service and then socket-activated:
#   - installing creates the user, enables and starts porter.service;
#     porter.socket stays off
#   - the default page is served on 127.0.0.1 and [::1] port 80, from
#     sockets porter bound itself, or that systemd passed it
#   - reload keeps the MainPID and applies a changed config
#   - reload with a broken config fails, and the old config keeps serving
#   - porter's own lines are in the journal with their priorities, its
#     error for the broken config at priority err
#   - logrotate's postrotate makes porter reopen its access log
#   - a killed master is restarted; a broken config (exit 78) is not retried
#   - upgrade (reinstall) restarts the service
#   - stop is clean: no process left
#   - purge leaves nothing behind, and stops an enabled porter.socket too
# and checks the "systemd-analyze security" exposure of the unit.
# Prints PASS/FAIL per check, then "N passed, N failed"; exits non-zero
# on any failure.
#
# What is missing on the host (systemd-container, debootstrap, the build
# dependencies) is installed with apt-get; the Debian root is made once
# with debootstrap and cached, so only the first run needs a mirror.
#
# Usage (as root):
#   tests/system/run.sh                 build the .deb from this tree, test it
#   DEB=path/porter_0.1.0_amd64.deb tests/system/run.sh
#
# Environment:
#   DEB=FILE          test this package instead of building one
#   SYSTEST_DIR=DIR   cache and scratch space (default /var/tmp/porter-systest);
#                     the Debian root is made there once and reused
#   MIRROR=URL        Debian mirror for debootstrap (default: the one apt uses)
#   DEB_BUILD_OPTIONS passed on to dpkg-buildpackage; "nocheck" is added
#                     unless SYSTEST_MAKE_CHECK=1 (make check runs elsewhere)
#   KEEP=1            leave the container running on exit, for debugging
#   SECURITY_MAX=2.0  fail when the unit's exposure is higher
#
# The container has its own network namespace with only a loopback, so no
# traffic leaves it. Everything has a time limit, and the EXIT trap always
# stops the container and unmounts its overlay.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
SYSTEST_DIR=${SYSTEST_DIR:-/var/tmp/porter-systest}
SUITE=bookworm
# Everything the package and this script need inside the container, baked
# into the cached root because the container has no network for apt.
INCLUDE="systemd,systemd-sysv,dbus,curl,media-types,adduser,libconfig9,libsystemd0,zlib1g,logrotate,procps"
BASE="$SYSTEST_DIR/base-$(printf '%s %s' "$SUITE" "$INCLUDE" | md5sum | cut -c1-10)"
SECURITY_MAX=${SECURITY_MAX:-2.0}
LIFETIME=900	# seconds the container may live, whatever happens

work=""; merged=""; nspawn_pid=""; init_pid=""; reaper=""; cgroups=()
npass=0; nfail=0; summary_done=""; aborted=""

log()  { printf '[%(%T)T] %s\n' -1 "$*" >&2; }
die()  { log "FATAL: $*"; echo "FAIL: system test aborted: $*"; aborted=1; exit 1; }
pass() { npass=$((npass + 1)); echo "PASS: $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: PASS or FAIL by the command's exit status
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
# Wait (60 s at most) for systemd to give up starting porter.service:
# while a restart is pending the unit is "activating (auto-restart)", so
# "failed" means no retry is scheduled any more.
wait_start_limit() {
	local i
	for i in $(seq 1 120); do
		[ "$(ct systemctl show -p ActiveState --value porter.service 2>/dev/null)" = \
		    failed ] && return 0
		sleep 0.5
	done
	return 1
}

# apt_install PKG...: install what a fresh machine lacks (never upgrades)
apt_updated=""
apt_install() {
	log "installing on the host: $*"
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$apt_updated" ]; then
		timeout 300 apt-get -o DPkg::Lock::Timeout=120 update -qq >&2 || die "apt-get update failed"
		apt_updated=1
	fi
	timeout 600 apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "$@" >&2 ||
		die "apt-get install $* failed"
}

# The host tools this script needs that a fresh machine may lack.
host_setup() {
	local need=()
	command -v systemd-nspawn >/dev/null || need+=(systemd-container)
	command -v debootstrap >/dev/null || need+=(debootstrap)
	if [ -z "${DEB:-}" ]; then
		command -v dpkg-buildpackage >/dev/null || need+=(dpkg-dev)
		command -v dh >/dev/null || need+=(debhelper)
	fi
	command -v lintian >/dev/null || need+=(lintian)
	[ ${#need[@]} = 0 ] || apt_install "${need[@]}"
}

# ---- 1. the package ---------------------------------------------------------
# Build from a copy of the tree so the shared working tree sees no build
# products, and so a half-finished build elsewhere cannot confuse ours.
build_deb() {
	local src=$work/src/porter-0.1.0
	log "building the .deb in $work/src"
	command -v dpkg-buildpackage >/dev/null || die "dpkg-buildpackage not found (apt-get install devscripts)"
	mkdir -p "$src"
	tar -C "$top" --exclude=.git --exclude='./build*' --exclude=./autom4te.cache \
		--exclude=./debian/porter --exclude=./debian/.debhelper --exclude=./debian/tmp \
		--exclude='*.o' --exclude='*.a' --exclude=__pycache__ --exclude='*.pyc' -cf - . | tar -C "$src" -xf -
	# The build dependencies debian/control names, if some are missing
	# (debhelper-compat is virtual: debhelper provides it).
	missing=$(cd "$src" && dpkg-checkbuilddeps 2>&1 |
		sed -n 's/.*Unmet build dependencies: //p' |
		sed -e 's/([^)]*)//g' -e 's/|[^ ]*//g' -e 's/debhelper-compat/debhelper/')
	# shellcheck disable=SC2086 # a list of package names
	[ -z "$missing" ] || apt_install $missing
	# make check is the job of "make check"/CI; here only the package
	# matters, so skip it unless asked (SYSTEST_MAKE_CHECK=1).
	local opts=${DEB_BUILD_OPTIONS-}
	[ "${SYSTEST_MAKE_CHECK:-0}" = 1 ] || opts="${opts:+$opts }nocheck"
	if ! (cd "$src" && DEB_BUILD_OPTIONS=$opts timeout -k 10 1200 dpkg-buildpackage -us -uc -b) \
	    >"$work/build.log" 2>&1; then
		tail -n 40 "$work/build.log" >&2
		die "dpkg-buildpackage failed (log above)"
	fi
	DEB=$(ls "$work"/src/porter_*.deb | head -n 1)
	log "built $DEB"
}

# ---- 2. the Debian root (cached) --------------------------------------------
# The mirror apt already uses here, else Debian's redirector.
find_mirror() {
	local m
	m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
	[ -n "$m" ] || m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }' \
		/etc/apt/sources.list 2>/dev/null | head -n 1 || true)
	echo "${m:-http://deb.debian.org/debian}"
}

make_base() {
	local mirror=${MIRROR:-$(find_mirror)} t0=$SECONDS
	log "debootstrap $SUITE from $mirror into $BASE (once; cached afterwards)"
	rm -rf "$BASE.tmp"
	timeout -k 10 900 debootstrap --variant=minbase --include="$INCLUDE" \
		"$SUITE" "$BASE.tmp" "$mirror" >"$SYSTEST_DIR/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $SYSTEST_DIR/debootstrap.log"
	rm -f "$BASE.tmp"/var/cache/apt/archives/*.deb
	# Empty: systemd makes up a new machine ID at each boot.
	: >"$BASE.tmp/etc/machine-id"
	echo porter-systest >"$BASE.tmp/etc/hostname"
	mv "$BASE.tmp" "$BASE"
	log "root made in $((SECONDS - t0)) s"
}

# ---- 3. boot ----------------------------------------------------------------
# A helper run inside the container: who holds the sockets listening on
# port 80. "sockcheck +PID -PID ..." succeeds when there are exactly two
# (0.0.0.0:80 and [::]:80), every +PID has both open and no -PID has either.
# That tells porter's own sockets from the ones systemd passed it.
write_sockcheck() {
	cat >"$1" <<'SH'
#!/bin/sh
inodes=$(awk '$4 == "0A" && $2 ~ /:0050$/ { print $10 }' /proc/net/tcp /proc/net/tcp6 | sort -u)
n=$(echo "$inodes" | grep -c .)
[ "$n" = 2 ] || { echo "  $n sockets listen on port 80, wanted 2" >&2; exit 1; }
for arg in "$@"; do
	pid=${arg#?}
	held=$(ls -l "/proc/$pid/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p')
	for i in $inodes; do
		if echo "$held" | grep -qx "$i"; then
			[ "${arg%"$pid"}" = + ] || { echo "  pid $pid holds socket $i" >&2; exit 1; }
		else
			[ "${arg%"$pid"}" = - ] || { echo "  pid $pid lacks socket $i" >&2; exit 1; }
		fi
	done
done
SH
	chmod 755 "$1"
}

cleanup() {
	local rc=$?
	set +e
	if [ -z "$summary_done" ]; then
		[ -n "$aborted" ] || echo "FAIL: system test stopped early (exit $rc)"
		echo "$npass passed, $((nfail + 1)) failed"
	fi
	[ -n "$reaper" ] && kill "$reaper" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ] && [ -n "$nspawn_pid" ]; then
		log "KEEP=1: container pid $nspawn_pid, root $merged; enter with: nsenter -t $init_pid -a"
		return
	fi
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		# nspawn turns SIGTERM into a clean halt of the container
		kill -TERM "$nspawn_pid"
		timeout 20 tail --pid="$nspawn_pid" -f /dev/null
		if kill -0 "$nspawn_pid" 2>/dev/null; then
			kill -KILL "$nspawn_pid"
			sleep 1
		fi
	fi
	[ -n "$merged" ] && mountpoint -q "$merged" && umount -l "$merged"
	# --keep-unit leaves payload/ and supervisor/ under our cgroups
	for cg in "${cgroups[@]}"; do
		[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	[ -n "$work" ] && rm -rf --one-file-system "$work"
}

boot() {
	local name=porter-st$$ h state
	merged=$work/merged
	mkdir -p "$work"/{upper,ovl,merged}
	mount -t overlay overlay \
		-o "lowerdir=$BASE,upperdir=$work/upper,workdir=$work/ovl" "$merged"
	cp "$DEB" "$merged/root/"
	write_sockcheck "$merged/root/sockcheck"
	# Without systemd as the host's PID 1 there is no machined to register
	# with (--register=no) nor a unit to move into (--keep-unit). Give
	# nspawn cgroups of its own so its payload does not land in the root.
	for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
		if [ -w "$h/cgroup.procs" ] &&
		    { [ "$h" != /sys/fs/cgroup ] || [ -e "$h/cgroup.controllers" ]; }; then
			cgroups+=("$h/porter-systest-$$")
		fi
	done
	(
		for cg in "${cgroups[@]}"; do
			mkdir -p "$cg"
			echo "$BASHPID" >"$cg/cgroup.procs"
		done
		exec systemd-nspawn -q -D "$merged" -M "$name" -b --register=no \
			--keep-unit --private-network --console=read-only \
			</dev/null >"$work/console.log" 2>&1
	) &
	nspawn_pid=$!
	(
		trap 'kill $s 2>/dev/null; exit 0' TERM
		sleep "$LIFETIME" & s=$!
		wait $s
		log "container lived ${LIFETIME}s: stopping it"
		kill -TERM "$nspawn_pid"
	) 2>/dev/null &
	reaper=$!

	for _ in $(seq 100); do
		init_pid=$(pgrep -P "$nspawn_pid" -x systemd || true)
		[ -n "$init_pid" ] && break
		kill -0 "$nspawn_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$init_pid" ]; then
		cat "$work/console.log" >&2
		die "systemd did not start in the container"
	fi
	# systemctl fails until PID 1 has its private bus socket, so poll.
	state=""
	for _ in $(seq 300); do
		state=$(ctt 5 systemctl is-system-running 2>/dev/null || true)
		case $state in running|degraded) break ;; esac
		kill -0 "$nspawn_pid" 2>/dev/null || break
		sleep 0.2
	done
	log "container booted: $state"
	case $state in
	running) ;;
	degraded) ct systemctl --failed --no-pager >&2 || true ;;
	*) cat "$work/console.log" >&2; die "container did not boot (state '$state')" ;;
	esac
}

# ct CMD...: run CMD inside the container, clean environment, time-limited
# (T seconds, default 30).
ct() {
	timeout -k 5 "${T:-30}" nsenter -t "$init_pid" -a -r -w -- env -i \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= \
		SYSTEMD_COLORS=0 "$@"
}

# ctt SECONDS CMD...: ct with another time limit (usable as check's command)
ctt() { local t=$1; shift; T=$t ct "$@"; }

# ---- 4. helpers for the checks ----------------------------------------------
# get URL: the body, or non-zero status
get() { ct curl -fsS -m 5 "$1"; }

# wait_body URL TEXT: until the page contains TEXT (10 s)
wait_body() {
	local b
	for _ in $(seq 50); do
		b=$(T=8 get "$1" 2>/dev/null) && [[ $b == *"$2"* ]] && return 0
		sleep 0.2
	done
	echo "  got: $(T=8 get "$1" 2>&1 | head -c 300)" >&2
	return 1
}

# wait_state UNIT STATE: until systemctl is-active says STATE (30 s)
wait_state() {
	local s
	for _ in $(seq 150); do
		s=$(ct systemctl is-active "$1" 2>/dev/null || true)
		[ "$s" = "$2" ] && return 0
		sleep 0.2
	done
	echo "  $1 is '$s', wanted '$2'" >&2
	return 1
}

mainpid() { ct systemctl show -p MainPID --value porter.service; }

# wait_restarted OLDPID: until porter.service is active with another MainPID
wait_restarted() {
	local p
	for _ in $(seq 100); do
		p=$(mainpid 2>/dev/null || true)
		if [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$1" ] &&
		    [ "$(ct systemctl is-active porter.service)" = active ]; then
			return 0
		fi
		sleep 0.2
	done
	echo "  MainPID still '$p' (was $1)" >&2
	return 1
}

# Every porter process is the current master or one of its children:
# none of the killed master's workers survived.
only_current_porter() {
	local m bad
	m=$(mainpid || true)
	bad=$(ct ps -o pid=,ppid= -C porter | awk -v m="$m" '$1 != m && $2 != m' || true)
	[ -z "$bad" ] && return 0
	echo "  stray porter processes (pid ppid): $bad" >&2
	return 1
}

# wait_nonempty FILE: until FILE in the container has data (15 s: porter
# may buffer its access log for a second)
wait_nonempty() {
	for _ in $(seq 75); do
		ct test -s "$1" && return 0
		sleep 0.2
	done
	echo "  $1 is still empty or missing" >&2
	return 1
}

units_gone() {
	[ "$(ct systemctl show -p LoadState --value porter.service porter.socket |
		sort -u | tr -d '\n')" = not-found ]
}

nothing_on_80() { ! ct curl -s -m 3 -o /dev/null http://127.0.0.1/; }

# No porter process anywhere in the container, and an empty unit cgroup.
no_porter_left() {
	local p
	p=$(ct pgrep -a -x porter || true)
	[ -z "$p" ] && return 0
	echo "  still running: $p" >&2
	return 1
}

# The index page of the package, as installed into the docroot.
page_marker="porter is serving"

# A CA and two leaves for "localhost", made on the host (the container has
# no openssl): a first certificate and its renewal, told apart by subject.
mkcerts() {
	local d=$1 n
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=porter systest CA" \
		2>/dev/null || return 1
	for n in 1 2; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/leaf$n.key" -out "$d/leaf$n.csr" \
			-subj "/CN=porter-systest-$n" 2>/dev/null || return 1
		openssl x509 -req -in "$d/leaf$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -out "$d/leaf$n.pem" \
			-extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n') \
			2>/dev/null || return 1
	done
}

# wait_https SUBJECT: https://localhost/ verifies against the test CA, serves
# the default page, and its certificate's subject is SUBJECT.
wait_https() {
	local i out
	for i in $(seq 1 40); do
		out=$(ct curl -sS -v -m 5 --cacert /root/tls/ca.pem https://localhost/ 2>&1 || true)
		if grep -q "$page_marker" <<<"$out" && grep -q "subject: CN=$1" <<<"$out"; then
			return 0
		fi
		sleep 0.25
	done
	sed 's/^/    /' <<<"$out" | tail -n 20
	return 1
}

# HTTPS from the installed package: a TLS listener on 443 next to 80, the
# page over HTTP/1.1 and HTTP/2 (ALPN), then a renewal installed by the
# package's certbot deploy hook, served after its synchronous reload.
https_checks() {
	local mode=$1 out
	mkcerts "$work/tls" || { fail "[$mode] https: make the test certificates"; return 0; }
	mkdir -p "$merged/root/tls/live/localhost" "$merged/root/tls/renew/localhost"
	cp "$work/tls/ca.pem" "$merged/root/tls/"
	cp "$work/tls/leaf1.pem" "$merged/root/tls/live/localhost/fullchain.pem"
	cp "$work/tls/leaf1.key" "$merged/root/tls/live/localhost/privkey.pem"
	cp "$work/tls/leaf2.pem" "$merged/root/tls/renew/localhost/fullchain.pem"
	cp "$work/tls/leaf2.key" "$merged/root/tls/renew/localhost/privkey.pem"
	check "[$mode] https: /etc/porter/tls made by the package (0750 root:porter)" \
		test "$(ct stat -c %a:%U:%G /etc/porter/tls 2>&1)" = 750:root:porter
	check "[$mode] https: the deploy hook installs the first certificate" \
		ct env RENEWED_LINEAGE=/root/tls/live/localhost PORTER=/bin/true \
			/usr/share/porter/certbot-deploy-hook
	check "[$mode] https: key installed 0640 root:porter" \
		test "$(ct stat -c %a:%U:%G /etc/porter/tls/localhost/privkey.pem 2>&1)" = 640:root:porter
	ct cp /etc/porter/porter.conf /root/porter.conf.https || true
	ct sed -i 's|^listen = \[ "\*:80" \];|listen = ( "*:80", { address = "*:443"; tls = true; } );\ntls: { certificate = "/etc/porter/tls/localhost/fullchain.pem"; key = "/etc/porter/tls/localhost/privkey.pem"; };|' \
		/etc/porter/porter.conf || true
	check "[$mode] https: config has a TLS listener on 443" \
		ct grep -q 'address = "\*:443"; tls = true;' /etc/porter/porter.conf
	check "[$mode] https: systemctl reload adds the TLS listener" \
		ctt 60 systemctl reload porter.service
	check "[$mode] https: GET https://localhost/ verifies and serves the page" \
		wait_https porter-systest-1
	out=$(ct curl -sS -m 5 --http2 --cacert /root/tls/ca.pem -o /dev/null \
		-w '%{http_version}' https://localhost/ 2>&1 || true)
	check "[$mode] https: HTTP/2 by ALPN from the installed package ($out)" test "$out" = 2
	check "[$mode] https: plain HTTP still served on 80" \
		wait_body http://127.0.0.1/ "$page_marker"
	check "[$mode] https: the deploy hook installs the renewal and reloads" \
		ctt 60 env RENEWED_LINEAGE=/root/tls/renew/localhost \
			/usr/share/porter/certbot-deploy-hook
	check "[$mode] https: the renewed certificate is served after the reload" \
		wait_https porter-systest-2
	ct cp /root/porter.conf.https /etc/porter/porter.conf || true
	check "[$mode] https: reload back to plain HTTP only" \
		ctt 60 systemctl reload porter.service
	ct rm -rf /etc/porter/tls/localhost /root/tls /root/porter.conf.https || true
}

# ---- 5. the checks, for one way of starting porter ----------------------------
# MODE: service (porter binds port 80 itself) or socket (porter.socket).
run_checks() {
	local mode=$1 pid pid2 out since files f leftover
	echo "---- $mode ----"

	if ctt 120 apt-get install -y -o Dpkg::Use-Pty=0 "/root/$(basename "$DEB")"; then
		pass "[$mode] apt install the package"
	else
		fail "[$mode] apt install the package (skipping the rest of $mode)"
		return 0
	fi
	check "[$mode] porter.service enabled by the install" \
		test "$(ct systemctl is-enabled porter.service 2>&1)" = enabled
	check "[$mode] porter.socket shipped but not enabled" \
		test "$(ct systemctl is-enabled porter.socket 2>&1)" = disabled
	check "[$mode] porter user exists" ct getent passwd porter

	if [ "$mode" = socket ]; then
		check "[$mode] switch: disable --now porter.service" \
			ctt 60 systemctl disable --now porter.service
		check "[$mode] switch: enable --now porter.socket" \
			ctt 60 systemctl enable --now porter.socket
		check "[$mode] service not running before the first connection" \
			test "$(ct systemctl is-active porter.service)" = inactive
		check "[$mode] first request activates porter" \
			wait_body http://127.0.0.1/ "$page_marker"
	fi
	check "[$mode] systemctl is-active porter" wait_state porter.service active
	check "[$mode] GET http://127.0.0.1/ serves the default page" \
		wait_body http://127.0.0.1/ "$page_marker"
	check "[$mode] GET http://[::1]/ serves the default page" \
		wait_body 'http://[::1]/' "$page_marker"
	pid=$(mainpid || true)
	if [ "$mode" = socket ]; then
		check "[$mode] porter serves on the sockets systemd passed, no others" \
			ct /root/sockcheck "+1" "+$pid"
	else
		check "[$mode] porter bound 0.0.0.0:80 and [::]:80 itself" \
			ct /root/sockcheck "+$pid" "-1"
	fi

	# reload with a changed config: root moves to /srv/alt
	pid=$(mainpid || true)
	ct mkdir -p /srv/alt || true
	ct sh -c "echo 'alternate root $mode' >/srv/alt/index.html" || true
	ct cp /etc/porter/porter.conf /root/porter.conf.orig || true
	ct sed -i 's|"/var/www/html"|"/srv/alt"|' /etc/porter/porter.conf || true
	check "[$mode] config has a root to change" \
		ct grep -q '"/srv/alt"' /etc/porter/porter.conf
	check "[$mode] systemctl reload (changed root) succeeds" \
		ctt 60 systemctl reload porter.service
	check "[$mode] changed root is served after reload" \
		wait_body http://127.0.0.1/ "alternate root $mode"
	pid2=$(mainpid || true)
	check "[$mode] MainPID kept across reload ($pid -> $pid2)" \
		test -n "$pid" -a "$pid" != 0 -a "$pid" = "$pid2"

	# reload with a broken config: must fail and keep the old one serving
	since=$(ct date '+%Y-%m-%d %H:%M:%S' || true)
	sleep 1
	ct sh -c 'echo "this is { not a valid config" >>/etc/porter/porter.conf' || true
	if ctt 60 systemctl reload porter.service >"$work/reload.out" 2>&1; then
		fail "[$mode] systemctl reload with a broken config fails"
	else
		pass "[$mode] systemctl reload with a broken config fails"
	fi
	sed 's/^/    /' "$work/reload.out"
	check "[$mode] still active after the failed reload" \
		wait_state porter.service active
	check "[$mode] old config keeps serving after the failed reload" \
		wait_body http://127.0.0.1/ "alternate root $mode"
	check "[$mode] MainPID kept across the failed reload" \
		test "$(mainpid)" = "$pid"
	# porter's own error line, at priority err, from its own stderr
	out=$(ct journalctl --no-pager -o cat -p err --since "$since" \
		_SYSTEMD_UNIT=porter.service SYSLOG_IDENTIFIER=porter 2>&1 || true)
	printf '  journal, porter at priority err since the broken reload:\n%s\n' \
		"$(sed 's/^/    /' <<<"$out")"
	if [ -n "$out" ]; then
		pass "[$mode] journal has porter's error line (priority err) for the broken config"
	else
		fail "[$mode] journal has porter's error line (priority err) for the broken config"
		echo "  what porter logged since, with priorities:"
		ct journalctl --no-pager -o json --since "$since" \
			_SYSTEMD_UNIT=porter.service SYSLOG_IDENTIFIER=porter 2>/dev/null |
			sed -n 's/.*"PRIORITY":"\([0-7]\)".*"MESSAGE":"\([^"]*\)".*/    <\1> \2/p; s/.*"MESSAGE":"\([^"]*\)".*"PRIORITY":"\([0-7]\)".*/    <\2> \1/p' || true
	fi
	out=$(ct journalctl --no-pager -o verbose _SYSTEMD_UNIT=porter.service \
		SYSLOG_IDENTIFIER=porter 2>&1 | grep -E '^ +(PRIORITY|MESSAGE)=' || true)
	check "[$mode] journal shows several priorities from porter" \
		test "$(grep -c '^ *PRIORITY=' <<<"$out")" -gt 0 -a \
			"$(grep '^ *PRIORITY=' <<<"$out" | sort -u | wc -l)" -ge 2
	check "[$mode] no raw <N> priority prefix left in the journal" \
		bash -c '! grep -qE "^ +MESSAGE=<[0-7]>" <<<"$1"' _ "$out"
	ct cp /root/porter.conf.orig /etc/porter/porter.conf || true
	check "[$mode] reload back to the original config" \
		ctt 60 systemctl reload porter.service
	check "[$mode] default page served again" \
		wait_body http://127.0.0.1/ "$page_marker"

	# logrotate: its postrotate makes porter reopen the access log, so the
	# next request lands in the new, empty file and not in access.log.1.
	check "[$mode] access log written" wait_nonempty /var/log/porter/access.log
	check "[$mode] logrotate -f runs cleanly" \
		ctt 60 logrotate -f /etc/logrotate.d/porter
	check "[$mode] access log rotated to access.log.1" \
		ct test -s /var/log/porter/access.log.1
	check "[$mode] still serving after log rotation" \
		wait_body http://127.0.0.1/ "$page_marker"
	check "[$mode] porter writes to the new access log after rotation" \
		wait_nonempty /var/log/porter/access.log

	if [ "$mode" = service ]; then
		# Restart=on-failure: a crashed master comes back by itself...
		pid=$(mainpid || true)
		ct systemctl kill --kill-whom=main --signal=KILL porter.service || true
		check "[$mode] killed master restarted by systemd" wait_restarted "$pid"
		check "[$mode] restarted porter has only its own workers" only_current_porter
		check "[$mode] serving after the restart" \
			wait_body http://127.0.0.1/ "$page_marker"
		# ... but a broken config fails in ExecStartPre (porter -t), and the
		# start limit ends the retries.
		ct sh -c 'echo "this is { not a valid config" >>/etc/porter/porter.conf' || true
		if ctt 60 systemctl restart porter.service >/dev/null 2>&1; then
			fail "[$mode] restart with a broken config fails"
		else
			pass "[$mode] restart with a broken config fails"
		fi
		check "[$mode] broken config: systemd stops retrying" \
			wait_start_limit
		out=$(ct systemctl show -p ActiveState,NRestarts,Result porter.service |
			sort | tr '\n' ' ' || true)
		check "[$mode] broken config: failed after at most 5 starts ($out)" \
			bash -c '[[ $1 =~ ActiveState=failed\ NRestarts=([0-4])\  ]]' _ "$out"
		out=$(ct journalctl --no-pager -o cat -p err _SYSTEMD_UNIT=porter.service \
			--since "-2min" 2>/dev/null | grep -m1 '^porter: /etc/porter/porter.conf:[0-9]*:' || true)
		check "[$mode] broken config: journal names file and line ($out)" \
			test -n "$out"
		ct cp /root/porter.conf.orig /etc/porter/porter.conf || true
		ct systemctl reset-failed porter.service || true
		check "[$mode] starts again with the config fixed" \
			ctt 60 systemctl start porter.service
		check "[$mode] serving again" wait_body http://127.0.0.1/ "$page_marker"

		pid=$(mainpid || true)
		check "[$mode] reinstall (upgrade path) succeeds" \
			ctt 120 apt-get install -y --reinstall -o Dpkg::Use-Pty=0 \
				"/root/$(basename "$DEB")"
		check "[$mode] upgrade restarted the service" \
			bash -c '[ "$1" != "$2" ] && [ "$2" != 0 ]' _ "$pid" "$(mainpid)"
		check "[$mode] serving after the upgrade" \
			wait_body http://127.0.0.1/ "$page_marker"
		out=$(ctt 60 systemd-analyze security --no-pager porter.service 2>&1 || true)
		f=$(sed -n 's/.*Overall exposure level for porter.service: \([0-9.]*\).*/\1/p' <<<"$out")
		echo "  systemd-analyze security porter.service: ${f:-?}"
		grep '✗' <<<"$out" | sed 's/^/    /' || true
		check "[$mode] exposure ${f:-?} <= $SECURITY_MAX" \
			awk -v e="${f:-99}" -v m="$SECURITY_MAX" 'BEGIN { exit !(e <= m) }'
		https_checks "$mode"
	fi

	# clean stop
	check "[$mode] systemctl stop porter (within TimeoutStopSec)" \
		ctt 60 systemctl stop porter.service
	check "[$mode] stop result is success" \
		test "$(ct systemctl show -p Result --value porter.service)" = success
	check "[$mode] no porter process left after stop" no_porter_left
	check "[$mode] /run/porter removed after stop" ct test ! -e /run/porter
	if [ "$mode" = socket ]; then
		# The socket stayed: the next connection starts porter again. Purge
		# with both active then checks that removal stops the socket too.
		check "[$mode] porter.socket still listening" \
			test "$(ct systemctl is-active porter.socket)" = active
		check "[$mode] next request activates porter again" \
			wait_body http://127.0.0.1/ "$page_marker"
	fi

	# purge
	files=$(ct dpkg-query -L porter 2>/dev/null | sort -u || true)
	check "[$mode] apt purge porter" \
		ctt 120 apt-get purge -y -o Dpkg::Use-Pty=0 porter
	leftover=""
	while IFS= read -r f; do
		[ -n "$f" ] || continue
		# Directories may belong to other packages too; files may not.
		if ct test -e "$f" -a ! -d "$f"; then leftover="$leftover $f"; fi
	done <<<"$files"
	check "[$mode] every file of the package is gone${leftover:+ (left:$leftover)}" \
		test -z "$leftover"
	check "[$mode] /etc/porter gone" ct test ! -e /etc/porter
	check "[$mode] /var/log/porter gone" ct test ! -e /var/log/porter
	check "[$mode] /var/lib/porter gone" ct test ! -e /var/lib/porter
	check "[$mode] default index.html removed" ct test ! -e /var/www/html/index.html
	check "[$mode] no porter unit left" units_gone
	check "[$mode] nothing listens on port 80 after purge" nothing_on_80
	check "[$mode] no porter process left after purge" no_porter_left
	ct systemctl reset-failed >/dev/null 2>&1 || true
	ct rm -rf /srv/alt /root/porter.conf.orig || true
}

# ---- main -------------------------------------------------------------------
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, nspawn, mount)"
host_setup
mkdir -p "$SYSTEST_DIR"
work=$(mktemp -d "$SYSTEST_DIR/run.XXXXXX")

if [ -z "${DEB:-}" ]; then
	build_deb
else
	DEB=$(readlink -f "$DEB")
	[ -f "$DEB" ] || die "DEB=$DEB: no such file"
fi
log "package: $DEB"

# Debian's own checks: no error and no warning tag may be reported.
lint=$(lintian --tag-display-limit 0 "$DEB" 2>&1 || true)
printf '  lintian %s:\n%s\n' "$(basename "$DEB")" "$(sed 's/^/    /' <<<"${lint:-(nothing reported)}")"
check "lintian reports no errors or warnings" \
	bash -c '! grep -qE "^[EW]: " <<<"$1"' _ "$lint"

# One debootstrap at a time; concurrent runs wait and then share the root.
exec 9>"$SYSTEST_DIR/.lock"
timeout 1200 flock 9 || die "could not lock $SYSTEST_DIR/.lock"
[ -x "$BASE/lib/systemd/systemd" ] || make_base
flock -u 9

boot
ct systemctl --no-pager --version | head -n 1 >&2 || true
run_checks service
run_checks socket

echo "---- journal of porter.service (last 40 lines) ----"
ct journalctl --no-pager -u porter.service -n 40 -o short-monotonic 2>&1 | sed 's/^/  /' || true

ctt 20 systemctl poweroff --no-block >/dev/null 2>&1 || true
timeout 30 tail --pid="$nspawn_pid" -f /dev/null || log "container did not power off in 30 s"

summary_done=1
echo "$npass passed, $nfail failed"
[ "$nfail" = 0 ]
