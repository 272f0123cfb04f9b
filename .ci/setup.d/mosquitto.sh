#!/usr/bin/env bash
# Installs the real MQTT broker the framework/broker/mqtt tests run against
# (Debian's mosquitto; the tests start their own brokers on free loopback
# ports from temporary configs, see framework/broker/mqtttest). Idempotent;
# run as root by .ci/setup.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
	apt_install mosquitto
fi

# Where an init system runs, the package starts a system-wide broker on the
# fixed port 1883; the tests need none of it, so stop it if it runs.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
	systemctl stop mosquitto || true
fi
if [ -x /etc/init.d/mosquitto ] && command -v service >/dev/null 2>&1; then
	service mosquitto stop >/dev/null 2>&1 || true
fi
bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
echo "mosquitto: $bin ($("$bin" -h 2>&1 | head -n1))"
