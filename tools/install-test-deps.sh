#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust: a C compiler and make for the
# build (jemalloc and liburing are compiled from source), real ZooKeeper clients from
# Debian (zkCli.sh, the C client cli_mt, kazoo for the system Python) and the
# ZooKeeper 3.8 server the differential tests compare against (with the servlet API its
# AdminServer needs), ss (iproute2), systemd-analyze for the package test, and
# Prometheus, which a metrics test runs as a real scraper.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

need=()
[ -x /usr/share/zookeeper/bin/zkCli.sh ] || need+=(zookeeper)
[ -x /usr/lib/zookeeper/bin/cli_mt ] || need+=(zookeeper-bin)
[ -f /usr/share/java/zookeeper.jar ] || need+=(libzookeeper-java)
# ZooKeeper's AdminServer (Jetty) needs the servlet API, which its package does not pull in.
[ -f /usr/share/java/servlet-api.jar ] || need+=(libservlet-api-java)
[ -d /usr/lib/python3/dist-packages/kazoo ] || need+=(python3-kazoo)
command -v java >/dev/null || need+=(default-jre-headless)
# The build itself compiles jemalloc from source with make (and liburing with cc).
command -v make >/dev/null || need+=(make)
command -v cc >/dev/null || need+=(gcc)
# A test reads the listening socket's backlog with ss.
command -v ss >/dev/null || need+=(iproute2)
# The TLS tests make their certificates with openssl (keytool comes with the JRE).
command -v openssl >/dev/null || need+=(openssl)
# A metrics test has Debian's Prometheus server scrape keeper.
command -v prometheus >/dev/null || need+=(prometheus)
# The package test builds a .deb and verifies its systemd unit.
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v systemd-analyze >/dev/null || need+=(systemd)

if [ ${#need[@]} -eq 0 ]; then
  echo "test dependencies: already installed"
  exit 0
fi
echo "test dependencies: installing ${need[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
echo "test dependencies: installed"
