#!/bin/sh
# Install the packages lsmfs needs to build and test, only those missing (Debian 12, as root).
# Build: libfuse3-dev libxxhash-dev check pkg-config. Tests on a real mount: fuse3 and the tools they
# drive (rsync, git, sqlite3, attr for setfattr/getfattr, libcap2-bin for setcap/getcap, python3).
pkgs="libfuse3-dev libxxhash-dev check pkg-config fuse3 build-essential rsync git sqlite3 attr libcap2-bin python3"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $missing >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }
