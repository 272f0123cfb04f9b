#!/usr/bin/env bash
# Installs the real NATS server the framework/broker/nats tests and the
# broker benchmark run against (Debian's nats-server; the tests start their
# own servers on free loopback ports from temporary configs, see
# framework/broker/natstest). Idempotent; run as root by .ci/setup.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

if ! command -v nats-server >/dev/null 2>&1; then
	apt_install nats-server
fi

# Where an init system runs, the package may start a system-wide server on
# the fixed port 4222; the tests need none of it, so stop it if it runs.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nats-server 2>/dev/null; then
	systemctl stop nats-server || true
fi
if [ -x /etc/init.d/nats-server ] && command -v service >/dev/null 2>&1; then
	service nats-server stop >/dev/null 2>&1 || true
fi
echo "nats-server: $(command -v nats-server) ($(nats-server --version 2>&1 | head -n1))"
