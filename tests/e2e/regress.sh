#!/bin/bash
# regress.sh - regression checks for what the outside conformance suites (pjdfstest, xfstests' fsx
# and fsstress) found: each a few seconds, on a real mount, against a native file given the same
# changes by other means (dd), with and without the kernel's writeback cache, then after a remount.
. "$(dirname "$0")/lib.sh"
e2e_setup
REF=$E2E_TMP/ref
mkdir -p "$REF"

# zero REFFILE OFF LEN: what FALLOC_FL_ZERO_RANGE (without KEEP_SIZE) does, done with dd.
zero() { dd if=/dev/zero of="$1" bs=1 seek="$2" count="$3" conv=notrunc status=none; }

# fallocate -z (FALLOC_FL_ZERO_RANGE): zeroes inside EOF, grows the file without -n (KEEP_SIZE),
# stores nothing past EOF with it. fsx exercises it once the daemon supports it.
zero_range() { # zero_range DIR TAG
	local m=$1/zr.$2 r=$REF/zr.$2
	head -c 20000 /dev/urandom >"$r" && cp "$r" "$m" || return 1
	fallocate -z -o 100 -l 5000 "$m" && zero "$r" 100 5000 || return 1
	cmp "$m" "$r" || { echo "zero range inside EOF"; return 1; }
	fallocate -z -o 4096 -l 8192 "$m" && zero "$r" 4096 8192 || return 1
	cmp "$m" "$r" || { echo "zero range of whole blocks"; return 1; }
	fallocate -z -o 19000 -l 5000 "$m" && zero "$r" 19000 5000 || return 1
	cmp "$m" "$r" || { echo "zero range past EOF"; return 1; }
	[ "$(stat -c %s "$m")" = 24000 ] || { echo "size after zero range past EOF: $(stat -c %s "$m")"; return 1; }
	fallocate -z -n -o 23000 -l 5000 "$m" && zero "$r" 23000 1000 || return 1
	cmp "$m" "$r" || { echo "zero range with KEEP_SIZE"; return 1; }
	[ "$(stat -c %s "$m")" = 24000 ] || { echo "KEEP_SIZE changed the size: $(stat -c %s "$m")"; return 1; }
	# Growing afterwards must show zeros, not bytes kept past EOF.
	truncate -s 30000 "$m" && truncate -s 30000 "$r" && cmp "$m" "$r" || { echo "grow after zero range"; return 1; }
}

mount_fs || exit 1
check "zero range (writeback cache)" zero_range "$MNT" wb
remount_fs -o no_writeback_cache || { fail "remount"; e2e_done; }
check "zero range (no writeback cache)" zero_range "$MNT" nowb
remount_fs || { fail "remount"; e2e_done; }
check "zero range results after remount" bash -c "cmp $MNT/zr.wb $REF/zr.wb && cmp $MNT/zr.nowb $REF/zr.nowb"
umount_fs || fail "clean unmount"

# Zero-message opens: once OPEN has been answered ENOSYS the kernel sends no RELEASE for any file, also
# for files made by CREATE; a created file unlinked while open must still be reclaimed at its last
# close, not left as an orphan (found by fsstress: 91 orphans after a clean unmount).
mount_fs || exit 1
created_unlinked_open() {
	echo x >"$MNT/first" && cat "$MNT/first" >/dev/null || return 1 # the first OPEN
	python3 -c "
import os
for i in range(20):
    p = '$MNT/c%d' % i
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b'y' * 5000)
    os.unlink(p)
    os.close(fd)"
}
check "create, unlink while open, close" created_unlinked_open
umount_fs || fail "clean unmount"
check "no orphan left after the unmount" bash -c "$E2E_ROOT/tools/lsmfsck $STORE | tee /dev/stderr | grep -q ' 0 orphans'"
e2e_done
