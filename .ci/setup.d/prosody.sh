#!/usr/bin/env bash
# Installs the real XMPP server the input/xmpp tests run against (prosody),
# and openssl. Idempotent; run as root by .ci/setup.
set -euo pipefail

need=()
command -v prosody >/dev/null 2>&1 || need+=(prosody)
command -v prosodyctl >/dev/null 2>&1 || need+=(prosody)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if ((${#need[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The Debian package starts a system-wide prosody (on ports 5222/5269) where
# an init system runs; the tests start their own servers on free loopback
# ports, so stop it if it is running to keep the fixed ports free.
if command -v service >/dev/null 2>&1 && [ -f /etc/init.d/prosody ]; then
	service prosody stop >/dev/null 2>&1 || true
fi
prosodyctl about 2>/dev/null | head -n 3 || true
