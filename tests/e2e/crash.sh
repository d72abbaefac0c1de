#!/bin/bash
# crash.sh - crash tests on a real mount: the daemon is killed (-9) at a random moment while
# tests/e2e/crashload.c creates, writes, appends, truncates, renames, links, unlinks and fsyncs;
# then the dead mount is unmounted, tools/lsmfsck checks the crashed store, the store is remounted
# and crashload verifies that everything fsync'd survived and that no file holds bytes never
# written to it; unmount, lsmfsck again.
#
# Two kinds, CRASH_CYCLES (default 20) cycles each, one store per kind that lives through all cycles:
#   kill   process death: the kernel page cache and the store files survive as written;
#   power  power loss: the daemon runs its store on a journaling env (-o lsmfs_crash_journal=) and
#          after the kill every store file is cut to its last synced length, files never made
#          durable are deleted (crashload apply). (Renames inside the store that were not made durable
#          by a directory sync are not undone: the journal replay treats them as durable.)
# Every third cycle mounts with -o sync (every operation durable when it returns), every third other
# one with sync_interval=1 (the workload pauses 3 s every 300 operations: what came before a pause
# must survive without any fsync). A small memtable
# (write_buffer=512K) puts flushes, compactions and manifest writes inside every cycle.
# A failure prints the seed (CRASH_SEED=... replays the run) and keeps the temp dir.
. "$(dirname "$0")/lib.sh"
e2e_setup
CL=${CRASHLOAD:-$E2E_ROOT/build/tests/crashload}
FSCK=${LSMFSCK:-$E2E_ROOT/tools/lsmfsck}
CYCLES=${CRASH_CYCLES:-20}
KINDS=${CRASH_KINDS:-kill power}
base=${CRASH_SEED:-$(date +%s%N)}
echo "crash: seed $base, $CYCLES cycles of: $KINDS"

keep() { E2E_KEEP=1; echo "     kept for inspection: $E2E_TMP (replay: CRASH_SEED=$base)"; }

fsck_store() { # when
	if [ ! -x "$FSCK" ]; then return 0; fi
	"$FSCK" "$STORE" >"$E2E_TMP/fsck.out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ]; then
		fail "lsmfsck $1 (cycle $c, seed $seed): exit $rc"; sed 's/^/     /' "$E2E_TMP/fsck.out" | head -20
		return 1
	fi
}

for kind in $KINDS; do
	STORE=$E2E_TMP/store-$kind
	ops=0 cycles_ok=0
	for c in $(seq 1 "$CYCLES"); do
		seed=$((base + c * 7919))
		[ $kind = power ] && seed=$((seed + 104729))
		opts=write_buffer=512K
		mode=""
		delay=1.7
		if [ $((c % 3)) = 0 ]; then opts=$opts,sync; mode=sync; fi
		if [ $((c % 3)) = 1 ] && [ $c -gt 1 ]; then opts=$opts,sync_interval=1; mode=interval=1; delay=6; fi
		if [ $kind = power ]; then
			rm -f "$E2E_TMP/journal"
			opts=$opts,lsmfs_crash_journal=$E2E_TMP/journal
		fi
		mount_fs -o "$opts" || { fail "mount (cycle $c)"; keep; break 2; }
		"$CL" run "$MNT/w$c" "$E2E_TMP/expect" "$seed" $mode 2>"$E2E_TMP/load.err" &
		load=$!
		E2E_PIDS+=("$load")
		ready=0
		for _ in $(seq 1 400); do
			grep -q "^crashload: ready" "$E2E_TMP/load.err" && { ready=1; break; }
			kill -0 $load 2>/dev/null || break
			sleep 0.05
		done
		if [ $ready = 0 ]; then
			fail "cycle $c: the workload did not start (seed $seed)"; cat "$E2E_TMP/load.err"; keep; break 2
		fi
		# Kill somewhere between 0.3 and 2.0 s (interval cycles: 6.3 s) into the workload.
		sleep "$(awk -v s="$seed" -v d=$delay 'BEGIN { srand(s % 1000003); printf "%.2f", 0.3 + rand() * d }')"
		if ! kill -0 $load 2>/dev/null; then
			fail "cycle $c: the workload ended before the kill (seed $seed)"; cat "$E2E_TMP/load.err"
			keep; break 2
		fi
		# The daemon must still be alive: one that crashed on its own is a failure, not a kill.
		if ! kill -0 "$FS_PID" 2>/dev/null; then
			fail "cycle $c: the daemon died before the kill (seed $seed)"; tail -20 "$E2E_TMP/daemon.log"
			keep; break 2
		fi
		kill -9 "$FS_PID"
		wait "$FS_PID" 2>/dev/null
		drc=$?
		forget_pid "$FS_PID"
		wait $load
		lrc=$?
		forget_pid "$load"
		if [ $drc -ne 137 ] || grep -Eq "AddressSanitizer|LeakSanitizer|runtime error" "$E2E_TMP/daemon.log"; then
			fail "cycle $c: the daemon exited with status $drc, not by the kill (seed $seed)"
			tail -20 "$E2E_TMP/daemon.log"; keep; break 2
		fi
		if [ $lrc -ne 0 ] || ! grep -q "stopped by the daemon's death" "$E2E_TMP/load.err"; then
			fail "cycle $c: workload (seed $seed) exit $lrc"; cat "$E2E_TMP/load.err"; keep; break 2
		fi
		n=$(sed -n 's/^crashload: \([0-9]*\) operations.*/\1/p' "$E2E_TMP/load.err")
		ops=$((ops + n))
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
		if grep -q " $MNT " /proc/mounts; then fail "cycle $c: dead mount still in /proc/mounts"; break 2; fi
		if [ $kind = power ]; then
			"$CL" apply "$E2E_TMP/journal" >"$E2E_TMP/apply.out" 2>&1 ||
				{ fail "cycle $c: apply journal"; cat "$E2E_TMP/apply.out"; keep; break 2; }
		fi
		fsck_store "after the crash" || { keep; break 2; }
		mount_fs -o write_buffer=512K || { fail "remount after crash (cycle $c, seed $seed)"; keep; break 2; }
		if ! "$CL" verify "$MNT/w$c" "$E2E_TMP/expect" >"$E2E_TMP/verify.out" 2>&1; then
			fail "cycle $c ($kind${mode:+, $mode}, seed $seed): verification"
			sed 's/^/     /' "$E2E_TMP/verify.out" | head -30
			umount_fs; keep; break 2
		fi
		# Keep the tree bounded: the previous cycle's directory goes (range deletes, compaction).
		[ $c -gt 1 ] && rm -rf "$MNT/w$((c - 1))"
		umount_fs || { fail "clean unmount (cycle $c)"; keep; break 2; }
		fsck_store "after the remount" || { keep; break 2; }
		cycles_ok=$((cycles_ok + 1))
		echo "     $kind cycle $c${mode:+ ($mode)}: $n ops; $(cat "$E2E_TMP/verify.out")"
	done
	if [ $cycles_ok = "$CYCLES" ]; then
		ok "$kind: $CYCLES crash cycles, $ops operations, everything fsync'd survived"
	fi
done
[ -x "$FSCK" ] || echo "note: tools/lsmfsck not built; stores not checked"
e2e_done
