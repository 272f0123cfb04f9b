#!/usr/bin/env bash
# Installs the real XMPP server the input/xmpp tests run against (prosody;
# the tests start their own servers from temporary configs, see
# internal/prosodytest). Idempotent; run as root by .ci/setup.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

if ! command -v prosody >/dev/null 2>&1 || ! command -v prosodyctl >/dev/null 2>&1; then
	apt_install prosody
fi

# Where an init system runs, the package starts a system-wide prosody on the
# fixed ports 5222/5269; the tests need none of it, so stop it if it runs.
if [ -x /etc/init.d/prosody ] && command -v service >/dev/null 2>&1; then
	service prosody stop >/dev/null 2>&1 || true
fi
echo "prosody: $(command -v prosody)"
