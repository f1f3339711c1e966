#!/usr/bin/env bash
# Builds keeper's Debian package: /usr/bin/keeper and keeper-bench,
# /etc/keeper/zoo.cfg (a conffile), the systemd unit, and maintainer
# scripts that add the keeper system user and /var/lib/keeper (purge
# removes them). The files come from tools/packaging/.
#
#   tools/deb.sh                  # from a release build; prints the .deb's path
#   BIN_DIR=DIR OUT_DIR=DIR tools/deb.sh   # from binaries already built in DIR
#
# Then: dpkg -i target/debian/keeper_*.deb; systemctl status keeper;
# dpkg --purge keeper (tools/deb-install-test.sh does all of it on a scratch machine).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
ARCH=$(dpkg --print-architecture)
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --bin keeper --bin keeper-bench >&2
  BIN_DIR=target/release
fi
OUT_DIR=${OUT_DIR:-target/debian}
ROOT=$(mktemp -d /tmp/keeper-deb.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
chmod 0755 "$ROOT"
P=tools/packaging
install -D -m 0755 -s "$BIN_DIR/keeper" "$ROOT/usr/bin/keeper"
install -D -m 0755 -s "$BIN_DIR/keeper-bench" "$ROOT/usr/bin/keeper-bench"
install -D -m 0644 "$P/zoo.cfg" "$ROOT/etc/keeper/zoo.cfg"
install -D -m 0644 "$P/keeper.service" "$ROOT/lib/systemd/system/keeper.service"
install -D -m 0644 README.md "$ROOT/usr/share/doc/keeper/README.md"
install -d "$ROOT/DEBIAN"
size_kib=$(du -sk "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/^Description:/Installed-Size: $size_kib\nDescription:/" "$P/debian/control" >"$ROOT/DEBIAN/control"
install -m 0755 "$P/debian/postinst" "$P/debian/prerm" "$P/debian/postrm" "$ROOT/DEBIAN/"
echo /etc/keeper/zoo.cfg >"$ROOT/DEBIAN/conffiles"
mkdir -p "$OUT_DIR"
deb="$OUT_DIR/keeper_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build "$ROOT" "$deb" >&2
echo "$deb"
