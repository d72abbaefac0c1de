#!/bin/bash
# cli.sh - the command line's error paths: bad option values, unknown options, missing arguments, a
# store path that is not a directory, a missing mountpoint, a store already mounted. Each must be a
# clear message and the documented exit status (2 usage, 1 set-up), never a crash or a mount.
. "$(dirname "$0")/lib.sh"
e2e_setup

expect_exit() { # what want_rc want_message args...
	local what=$1 want=$2 msg=$3; shift 3
	"$LSMFS" "$@" >"$E2E_TMP/cli.out" 2>&1
	local rc=$?
	if [ $rc = "$want" ] && grep -qF -- "$msg" "$E2E_TMP/cli.out"; then
		ok "$what: exit $rc, \"$msg\""
	else
		fail "$what: exit $rc (want $want), output:"; sed 's/^/     /' "$E2E_TMP/cli.out"
	fi
	if grep -q " $MNT fuse.lsmfs " /proc/mounts; then fail "$what: left a mount"; fusermount3 -u "$MNT"; fi
}

for o in write_buffer=1K write_buffer=12X reserve=abc cache_size=1 block_size=1000 block_size=70000 \
	sync_interval=-1 attr_timeout=x max_threads=0 blob_min=4Q spin=x spin=20000; do
	expect_exit "-o $o" 2 "bad value in option '$o'" -f -o "$o" "$STORE" "$MNT"
done
expect_exit "unknown option" 1 "unknown option" -f -o no_such_option "$STORE" "$MNT"
expect_exit "no mountpoint" 2 "need STORE_DIR and MOUNTPOINT" "$STORE"
touch "$E2E_TMP/plainfile"
expect_exit "store path is a file" 1 "is not a directory" -f "$E2E_TMP/plainfile" "$MNT"
expect_exit "missing mountpoint" 1 "No such file or directory" -f "$STORE" "$E2E_TMP/nowhere"
expect_exit "--help" 0 "reserve=SIZE" --help
expect_exit "--version" 0 "filesystem format" --version

mount_fs || exit 1
mkdir -p "$E2E_TMP/mnt2"
"$LSMFS" -f "$STORE" "$E2E_TMP/mnt2" >"$E2E_TMP/cli.out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "already mounted" "$E2E_TMP/cli.out"; then ok "store already mounted: exit 1, $(cat "$E2E_TMP/cli.out")"
else fail "store already mounted: exit $rc: $(cat "$E2E_TMP/cli.out")"; fi
grep -q " $E2E_TMP/mnt2 " /proc/mounts && { fail "second mount appeared"; fusermount3 -u "$E2E_TMP/mnt2"; }
umount_fs || fail "clean unmount"
e2e_done
