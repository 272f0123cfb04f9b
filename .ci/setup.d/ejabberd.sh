#!/usr/bin/env bash
# Installs the second real XMPP server the input/xmpp tests run against
# (ejabberd 23.01, Debian's package; the tests start their own servers from
# temporary configs on free loopback ports, see internal/ejabberdtest).
# Idempotent; run as root by .ci/setup.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

if ! command -v ejabberdctl >/dev/null 2>&1 && [ ! -x /usr/sbin/ejabberdctl ]; then
	# Where an init system runs, the package would start a system-wide
	# ejabberd on the fixed ports 5222/5269/5280 (and an epmd on 4369):
	# keep it from starting at all.
	policy=/usr/sbin/policy-rc.d
	added=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		added=1
	fi
	apt_install ejabberd
	[ -z "$added" ] || rm -f "$policy"
fi

# A system-wide ejabberd that runs anyway (installed earlier, started by
# hand) holds fixed ports: stop it, and keep it from starting at boot.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl disable --now ejabberd >/dev/null 2>&1 || true
elif [ -x /etc/init.d/ejabberd ] && command -v service >/dev/null 2>&1; then
	service ejabberd stop >/dev/null 2>&1 || true
fi
if [ -x /usr/sbin/ejabberdctl ] && /usr/sbin/ejabberdctl status >/dev/null 2>&1; then
	/usr/sbin/ejabberdctl stop >/dev/null 2>&1 || true
fi
echo "ejabberd: $(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null || echo '?') at /usr/sbin/ejabberdctl"
# Installing the package may leave an epmd on the fixed port 4369; the
# tests need none (their nodes use -erl_epmd_port on free ports): stop it
# unless some Erlang node uses it.
if command -v epmd >/dev/null 2>&1 && epmd -names >/dev/null 2>&1 && ! epmd -names 2>/dev/null | grep -q '^name '; then
	epmd -kill >/dev/null 2>&1 || true
fi
