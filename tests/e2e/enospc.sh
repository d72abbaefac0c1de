#!/bin/bash
# enospc.sh - a full disk: the store on a 160 MiB tmpfs. Writing past the free space fails with
# ENOSPC (at write, or for writes the kernel buffered, at fsync/close) while the reserve stays free;
# what was fsync'd before is intact; rm of the big file works on the full disk and gives its space
# back; writing works again; everything survives a remount.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ]; then
	echo "skip $E2E_NAME: mounting a size-limited tmpfs needs root"
	exit 0
fi
e2e_setup
DISK=$E2E_TMP/disk
mkdir -p "$DISK"
mount -t tmpfs -o size=160M tmpfs "$DISK" || { echo "skip $E2E_NAME: cannot mount tmpfs"; exit 0; }
trap 'e2e_cleanup_disk' EXIT
e2e_cleanup_disk() {
	e2e_cleanup_mounts_only
	umount "$DISK" 2>/dev/null || umount -l "$DISK"
	e2e_cleanup
}
e2e_cleanup_mounts_only() {
	grep " $MNT fuse.lsmfs " /proc/mounts >/dev/null && fusermount3 -u "$MNT"
	for _ in $(seq 1 100); do kill -0 "${FS_PID:-0}" 2>/dev/null || break; sleep 0.05; done
}
STORE=$DISK/store
OPTS=write_buffer=2M,reserve=24M

avail_mib() { df -BM --output=avail "$1" | tail -1 | tr -dc 0-9; }

mount_fs -o $OPTS || exit 1
head -c $((8 << 20)) /dev/urandom >"$E2E_TMP/keep.ref"
check "an 8 MiB file written and fsync'd" dd if="$E2E_TMP/keep.ref" of="$MNT/keep" bs=1M conv=fsync status=none
dd if=/dev/urandom of="$MNT/big" bs=1M count=400 conv=fsync status=none 2>"$E2E_TMP/dd.err"
rc=$?
if [ $rc -ne 0 ] && grep -q "No space left on device" "$E2E_TMP/dd.err"; then
	ok "writing 400 MiB to a 160 MiB disk fails with ENOSPC ($(cat "$E2E_TMP/dd.err" | head -1))"
else
	fail "400 MiB on a 160 MiB disk: dd exit $rc: $(cat "$E2E_TMP/dd.err")"
fi
# The reserve is there for the store's background work: a flush or compaction running at this moment
# holds its outputs before it deletes its inputs (seen: 10 MiB of the 24 for a moment). Give work in
# flight 5 s to finish; the reserve must then be back.
a=$(avail_mib "$MNT")
d0=$(avail_mib "$DISK")
d=$d0
for _ in $(seq 1 50); do [ "$d" -ge 16 ] && break; sleep 0.1; d=$(avail_mib "$DISK"); done
if [ "$a" -le 4 ] && [ "$d" -ge 16 ]; then
	ok "df shows the mount full (${a} MiB available) while the reserve stays free on the disk (${d} MiB; ${d0} MiB at first)"
else
	fail "df: mount ${a} MiB available, disk ${d} MiB free (${d0} MiB at first; expected ≤ 4 and ≥ 16)"
	# What holds the disk (to find what ate the reserve): bytes per kind of store file, levels, logs.
	"$E2E_ROOT/tools/lsmfsck" --stats "$STORE" 2>&1 | grep -E '^(space|  level|  0)' | sed 's/^/     /'
fi
if dd if=/dev/urandom of="$MNT/more" bs=1M count=8 conv=fsync status=none 2>"$E2E_TMP/dd2.err"; then
	fail "8 MiB more on a full disk succeeded"
else ok "8 MiB more on the full disk: $(head -1 "$E2E_TMP/dd2.err")"; fi
rm -f "$MNT/more"
check "the fsync'd file is intact on the full disk" cmp "$E2E_TMP/keep.ref" "$MNT/keep"
check "rename works on the full disk" mv "$MNT/keep" "$MNT/keep2"
check "rm of the big file works on the full disk" rm "$MNT/big"
for _ in $(seq 1 100); do [ "$(avail_mib "$MNT")" -ge 60 ] && break; sleep 0.1; done
a=$(avail_mib "$MNT")
if [ "$a" -ge 60 ]; then ok "space came back after rm: ${a} MiB available"
else fail "space did not come back after rm: ${a} MiB available after 10 s"; fi
head -c $((32 << 20)) /dev/urandom >"$E2E_TMP/new.ref"
check "writing 32 MiB works again" dd if="$E2E_TMP/new.ref" of="$MNT/new" bs=1M conv=fsync status=none
remount_fs -o $OPTS || { fail "remount"; e2e_done; }
check "the old file after remount" cmp "$E2E_TMP/keep.ref" "$MNT/keep2"
check "the new file after remount" cmp "$E2E_TMP/new.ref" "$MNT/new"
check "the big file is gone" test ! -e "$MNT/big"
umount_fs || fail "clean unmount"
e2e_done
