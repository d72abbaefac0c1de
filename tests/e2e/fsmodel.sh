#!/bin/bash
# fsmodel.sh - the filesystem model test: random operations on the mount and on a native directory
# side by side (tests/e2e/fsmodel.c), trees compared after every burst and after unmount + remount.
# FSMODEL_OPS (default 1500) operations per burst, 3 bursts; seeds printed (FSMODEL_SEED replays).
. "$(dirname "$0")/lib.sh"
e2e_setup
MODEL=${FSMODEL:-$E2E_ROOT/build/tests/fsmodel}
OPS=${FSMODEL_OPS:-1500}
REF=$E2E_TMP/ref
mkdir -p "$REF"
base=${FSMODEL_SEED:-$(date +%s%N)}
# Bursts 1-3 with the default options (writeback caching), 4-5 writing through.
for burst in 1 2 3 4 5; do
	case $burst in
	1) mount_fs || exit 1; mkdir -p "$MNT/t" ;;
	4) umount_fs; mount_fs -o no_writeback_cache || exit 1 ;;
	esac
	seed=$((base + burst))
	if "$MODEL" run "$seed" "$OPS" "$MNT/t" "$REF" 2>"$E2E_TMP/model.err"; then
		ok "burst $burst: $OPS operations, seed $seed: $(tail -1 "$E2E_TMP/model.err")"
	else
		fail "burst $burst (replay with FSMODEL_SEED=$((base)))"; cat "$E2E_TMP/model.err"
		break
	fi
	remount_fs || { fail "remount"; break; }
	check "identical after remount (burst $burst)" "$MODEL" compare "$MNT/t" "$REF"
done
umount_fs || fail "clean unmount"
e2e_done
