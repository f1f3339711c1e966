#!/usr/bin/env bash
# Installs the Debian package on THIS machine, checks the service, and
# purges it: for a scratch machine or container (it adds the keeper user,
# /var/lib/keeper, /etc/keeper, and uses port 2181). Needs root.
#
#   tools/deb-install-test.sh [PACKAGE.deb]   (default: builds one with tools/deb.sh)
#
# With systemd running (PID 1), the service is started by the package and
# checked through systemctl; without it (a plain container), keeper is run
# as the unit runs it: as the keeper user, with /etc/keeper/zoo.cfg.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (it installs a package)" >&2; exit 2; }
DEB=${1:-$(tools/deb.sh)}
ruok() { for _ in $(seq 100); do [ "$( (exec 3<>/dev/tcp/127.0.0.1/2181 && printf ruok >&3 && cat <&3) 2>/dev/null)" = imok ] && return 0; sleep 0.1; done; return 1; }
dpkg -i "$DEB"
getent passwd keeper >/dev/null || { echo "FAIL: no keeper user" >&2; exit 1; }
[ "$(stat -c %U /var/lib/keeper)" = keeper ] || { echo "FAIL: /var/lib/keeper is not the keeper user's" >&2; exit 1; }
if [ -d /run/systemd/system ]; then
  systemctl is-active --quiet keeper || { systemctl status keeper >&2; exit 1; }
  ruok || { echo "FAIL: the service does not answer ruok" >&2; exit 1; }
  systemctl stop keeper
  echo "ok: systemd started keeper (Type=notify), it answered ruok, and stopped"
else
  setpriv --reuid=keeper --regid=keeper --init-groups /usr/bin/keeper serve --config /etc/keeper/zoo.cfg & pid=$!
  ruok || { kill -9 "$pid"; echo "FAIL: keeper does not answer ruok" >&2; exit 1; }
  kill -TERM "$pid"
  wait "$pid" || { echo "FAIL: keeper did not exit 0 on SIGTERM" >&2; exit 1; }
  echo "ok: keeper ran as the keeper user from the package, answered ruok, and stopped with 0 (no systemd here)"
fi
dpkg --purge keeper
! getent passwd keeper >/dev/null || { echo "FAIL: the keeper user outlived the purge" >&2; exit 1; }
[ ! -e /var/lib/keeper ] && [ ! -e /etc/keeper ] && [ ! -e /usr/bin/keeper ] || { echo "FAIL: files outlived the purge" >&2; exit 1; }
echo "ok: installed, served, stopped and purged cleanly"
