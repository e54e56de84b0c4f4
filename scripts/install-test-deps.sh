#!/usr/bin/env bash
# Debian packages the e2e tests talk to (real SIP peers, load tools). Installed when missing and
# when running as root; otherwise the tests that need them skip and say so.
set -u
need=()
# kamailio: the upstream registrar of the trunk tests and the benchmark baseline; baresip: a real UA
command -v sipsak >/dev/null 2>&1 || need+=(sipsak)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
# kamailio: the upstream registrar of the trunk tests and the benchmark baseline; baresip: a real UA
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
command -v baresip >/dev/null 2>&1 || need+=(baresip)
# sox: the call tour's tone; Asterisk's English prompts and hold music (the media engine plays them
# when installed, its small built-in set otherwise)
command -v sox >/dev/null 2>&1 || need+=(sox)
[ -d /usr/share/asterisk/sounds/en ] || need+=(asterisk-core-sounds-en-wav)
[ -d /usr/share/asterisk/moh ] || need+=(asterisk-moh-opsound-wav)
# chromium: the dashboard's browser tests (tests/ui) drive it through Playwright's executable_path
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: not root or no apt-get; missing: ${need[*]} (those tests will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
  || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; } \
  || echo "install-test-deps: could not install ${need[*]} (those tests will skip)" >&2
exit 0
