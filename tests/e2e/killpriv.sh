#!/bin/bash
# killpriv.sh - set-id bits and file capabilities after writes, truncates, chown and fallocate by root
# and by an unprivileged user must end as they do on a native (ext4) directory given the same calls:
# with HANDLE_KILLPRIV_V2 (fs/wire.c) the daemon clears suid/sgid itself. With and without the
# writeback cache, then after a remount. Also checks what the v2 handshake is for: 100 write(2)
# calls to one file cost at most one security.capability query.
. "$(dirname "$0")/lib.sh"
e2e_setup
chmod 0755 "$E2E_TMP" # the unprivileged user must reach both trees
REF=$E2E_TMP/ref
mkdir -p "$REF"
chmod 0777 "$REF"
[ "$(id -u)" = 0 ] || { echo "skip $E2E_NAME: needs root (acts as root and as nobody)"; exit 0; }
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups --"
# root without CAP_FSETID, and nobody with it: the kernel's flags and the daemon's guesses must follow
# the capability, not the uid.
ROOT_NOFSETID="setpriv --inh-caps=-fsetid --bounding-set=-fsetid --"
NOBODY_FSETID="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+fsetid --ambient-caps=+fsetid --"

# scenario DIR: the same calls on a fresh set of files in DIR; prints "name mode [capability]" lines.
scenario() {
	local d=$1/t
	rm -rf "$d" && mkdir "$d" && chmod 0777 "$d" || return 1
	for f in wr_user wr_root wr_sgid_nox wr_sgid_nox_ingroup wr_root_nofsetid tr_user otrunc_user chown_root chown_root_nox chgrp_user chgrp_user_nox falloc_user falloc_root_nofsetid falloc_user_fsetid cap_user; do
		printf 'seed' >"$d/$f" || return 1
		chmod 06777 "$d/$f"
	done
	chmod 02767 "$d/wr_sgid_nox" "$d/wr_sgid_nox_ingroup" "$d/chown_root_nox" "$d/chgrp_user_nox" "$d/wr_root_nofsetid"
	chgrp 65534 "$d/wr_sgid_nox_ingroup" "$d/wr_root_nofsetid"
	chown 65534 "$d/chgrp_user" "$d/chgrp_user_nox"
	chmod 06777 "$d/chgrp_user"
	chmod 02767 "$d/chgrp_user_nox"
	chmod 0777 "$d/cap_user"
	setcap cap_net_raw+ep "$d/cap_user" || return 1
	$NOBODY sh -c "printf more >>$d/wr_user" || return 1
	sh -c "printf more >>$d/wr_root" || return 1
	$NOBODY sh -c "printf more >>$d/wr_sgid_nox" || return 1
	$NOBODY truncate -s 2 "$d/tr_user" || return 1
	$NOBODY sh -c ": >$d/otrunc_user" || return 1
	$NOBODY sh -c "printf more >>$d/wr_sgid_nox_ingroup" || return 1
	chown 1:1 "$d/chown_root" "$d/chown_root_nox" || return 1
	$NOBODY chgrp 65534 "$d/chgrp_user" "$d/chgrp_user_nox" || return 1
	$NOBODY fallocate -o 0 -l 8192 "$d/falloc_user" || return 1
	$ROOT_NOFSETID sh -c "printf more >>$d/wr_root_nofsetid" || return 1
	$ROOT_NOFSETID fallocate -o 0 -l 8192 "$d/falloc_root_nofsetid" || return 1
	$NOBODY_FSETID fallocate -o 0 -l 8192 "$d/falloc_user_fsetid" || return 1
	$NOBODY sh -c "printf more >>$d/cap_user" || return 1
	for f in wr_user wr_root wr_sgid_nox wr_sgid_nox_ingroup wr_root_nofsetid tr_user otrunc_user chown_root chown_root_nox chgrp_user chgrp_user_nox falloc_user falloc_root_nofsetid falloc_user_fsetid cap_user; do
		echo "$f $(stat -c '%a %s' "$d/$f") $(getcap "$d/$f" | awk '{print $2}')"
	done
}

compare() { # compare LABEL [NAME-REGEX-TO-SKIP]: the mount's outcome equals the native one
	scenario "$MNT" >"$E2E_TMP/fs.$1" && scenario "$REF" >"$E2E_TMP/ref.$1" || return 1
	local skip=${2:-}
	[ -n "$skip" ] || { diff "$E2E_TMP/ref.$1" "$E2E_TMP/fs.$1"; return; }
	diff <(grep -Ev "^($skip) " "$E2E_TMP/ref.$1") <(grep -Ev "^($skip) " "$E2E_TMP/fs.$1")
}

mount_fs -o allow_other || exit 1
check "set-id bits and capabilities as on ext4 (writeback cache)" compare wb
cp "$E2E_TMP/fs.wb" "$E2E_TMP/fs.wb.before"
remount_fs -o allow_other,no_writeback_cache || { fail "remount"; e2e_done; }
check "the same after a remount" bash -c "cd $MNT/t && for f in *; do echo \"\$f \$(stat -c '%a %s' \$f) \$(getcap \$f | awk '{print \$2}')\"; done | diff <(sort $E2E_TMP/fs.wb.before) -"
check "set-id bits and capabilities as on ext4 (no writeback cache)" compare nowb
umount_fs || fail "clean unmount"

# The non-default paths: with OPEN requests the truncating open clears the bits itself (atomic O_TRUNC);
# without the v2 handshake the kernel computes the new mode and sends it, by FUSE's rule (fuse_setattr),
# which keeps sgid on a file without group execute: those three files differ from ext4 by design.
mount_fs -o allow_other,no_zero_message_open || exit 1
check "set-id bits and capabilities as on ext4 (-o no_zero_message_open)" compare open
umount_fs || fail "clean unmount"
mount_fs -o allow_other,no_killpriv_v2 || exit 1
check "set-id bits and capabilities as on ext4 but sgid without group execute (-o no_killpriv_v2)" \
	compare nokp2 "wr_sgid_nox|wr_root_nofsetid|chgrp_user_nox" 
umount_fs || fail "clean unmount"

# The handshake's purpose: the kernel stops asking for security.capability before each write(2).
mount_fs -d -o allow_other || exit 1
python3 -c "
import os
fd = os.open('$MNT/many', os.O_CREAT | os.O_WRONLY, 0o666)
for i in range(100):
    os.pwrite(fd, b'x' * 4096, i * 4096)
os.close(fd)"
n=$(grep -c 'opcode: GETXATTR' "$E2E_TMP/daemon.log")
init_in=$(grep -m1 -o 'flags=0x[0-9a-f]*' "$E2E_TMP/daemon.log" | cut -d= -f2)
if [ -n "$init_in" ] && [ $((init_in & (1 << 28))) = 0 ]; then
	echo "skip $E2E_NAME: the kernel does not offer FUSE_HANDLE_KILLPRIV_V2 (INIT flags $init_in)"
else
	check "100 writes cost at most 1 security.capability query (saw $n)" test "$n" -le 1
fi
umount_fs || fail "clean unmount"
e2e_done
