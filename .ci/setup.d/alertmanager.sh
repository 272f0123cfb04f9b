#!/usr/bin/env bash
# Installs the real Prometheus Alertmanager the webhook tests run against
# (Debian's prometheus-alertmanager; the tests start their own instances on
# free loopback ports from temporary configs, clustering off, see
# internal/alertmanagertest). Idempotent; run as root by .ci/setup.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
	apt_install prometheus-alertmanager
fi

# Where an init system runs, the package starts a system-wide Alertmanager on
# the fixed ports 9093 (web) and 9094 (cluster gossip); the tests need none
# of it, so stop it if it runs.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus-alertmanager 2>/dev/null; then
	systemctl stop prometheus-alertmanager || true
fi
if [ -x /etc/init.d/prometheus-alertmanager ] && command -v service >/dev/null 2>&1; then
	service prometheus-alertmanager stop >/dev/null 2>&1 || true
fi
echo "alertmanager: $(command -v prometheus-alertmanager) ($(prometheus-alertmanager --version 2>&1 | head -n1))"
