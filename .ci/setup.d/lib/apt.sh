# Sourced by the .ci/setup.d scripts that install Debian packages (not a part
# of its own: .ci/setup runs only .ci/setup.d/*.sh).
#
# apt_install PACKAGE...: installs the packages (non-interactive, without
# recommends). It refreshes apt's package lists first, at most once per
# .ci/setup run: .ci/setup names a marker file in MICROBOT_APT_UPDATED, made
# by the first refresh and seen by the scripts after it, so a fresh machine
# pays `apt-get update` once however many parts it lacks. A script run by
# hand (no marker named) refreshes the lists itself whenever it installs.
# Nothing is refreshed when nothing is missing: callers call apt_install only
# for what they lack.

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt_update_once
	apt-get install -y -q --no-install-recommends "$@"
}

apt_update_once() {
	local marker="${MICROBOT_APT_UPDATED:-}"
	if [ -n "$marker" ] && [ -e "$marker" ]; then
		return 0
	fi
	apt-get update -q
	if [ -n "$marker" ]; then
		: >"$marker"
	fi
}
