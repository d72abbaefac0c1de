#!/bin/bash
# wire.sh - how the daemon fetches requests (fs/wire.c): one worker at a time reads /dev/fuse and
# answers metadata requests itself (default -o spin=50), handing the device over before anything
# that may block. The ways that role could be lost or stuck: a worker libfuse ends while holding
# it (idle workers above half of max_threads are ended), a signal that must end the session while
# workers wait for the role, and -s (one thread). Each check runs under a time limit: a lost role
# shows as a hang, and the test then kills its daemon (which ends the connection) and stops.
. "$(dirname "$0")/lib.sh"
e2e_setup

# kill_hung: the daemon stopped answering. Show where its threads wait, kill it (ours: closing
# /dev/fuse ends the connection and every waiting request fails) and drop the dead mount.
kill_hung() {
	local t
	echo "     daemon threads (where each waits):"
	for t in /proc/"$FS_PID"/task/*; do echo "       $(cat "$t/comm" "$t/wchan" 2>/dev/null | tr '\n' ' ')"; done
	tail -5 "$E2E_TMP/daemon.log" | sed 's/^/     /'
	kill -9 "$FS_PID" 2>/dev/null
	wait "$FS_PID" 2>/dev/null
	forget_pid "$FS_PID"
	fusermount3 -uz "$MNT" 2>/dev/null
}

# within SECS what command...: the command (a function too) must finish in time, else the test
# ends there.
within() {
	local secs=$1 what=$2 p rc i; shift 2
	("$@") >"$E2E_TMP/within.out" 2>&1 &
	p=$!
	for ((i = 0; i < secs * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then
		fail "$what: no answer within ${secs}s"
		kill_hung
		e2e_done
	fi
	wait "$p"
	rc=$?
	[ $rc -eq 0 ] && { ok "$what"; return 0; }
	fail "$what: exit $rc"
	sed 's/^/     /' "$E2E_TMP/within.out" | head -10
	return 1
}

# Metadata requests (answered by the reader) interleaved with writes and fsyncs (handed over) from
# 16 processes at once: libfuse starts workers up to max_threads and ends the surplus when they go
# idle, often the one that last answered a metadata request.
churn() { # churn TAG
	local tag=$1 round j p pids
	for round in 1 2 3 4 5; do
		pids=()
		for j in $(seq 1 16); do
			(
				d=$MNT/churn$tag$j
				mkdir -p "$d" && dd if=/dev/zero of="$d/f$round" bs=64k count=8 conv=fsync status=none &&
					for k in $(seq 1 20); do touch "$d/t$round.$k" && stat "$d/f$round" >/dev/null || exit 1; done
			) &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p" || return 1; done
		# the surplus workers end here; the next requests need a reader
		ls -R "$MNT" >/dev/null && mkdir "$MNT/after$tag$round" || return 1
	done
	[ "$(ls "$MNT/churn${tag}7" | wc -l)" = 105 ] || { echo "churn${tag}7 holds $(ls "$MNT/churn${tag}7" | wc -l) names"; return 1; }
}

# max_threads=4: libfuse ends workers as soon as more than 2 are idle.
mount_fs -o max_threads=4 || exit 1
within 60 "16 writers with fsync and metadata requests, 5 rounds (workers started and ended)" churn a
# sigterm: write s1..s50 and send SIGTERM the moment the last write returns (the reader is still
# polling then: a signal the kernel gave to a background thread would leave it asleep afterwards).
# The session must end, unmount, and the daemon exit 0 (within 10 s). Prints why not.
sigterm() {
	local i rc
	python3 -c '
import os, sys
m, pid = sys.argv[1], int(sys.argv[2])
for i in range(1, 51):
    with open("%s/s%d" % (m, i), "w") as f:
        f.write("%d\n" % i)
os.kill(pid, 15)' "$MNT" "$FS_PID" || { echo "writing or kill failed"; return 1; }
	for ((i = 0; i < 100; i++)); do kill -0 "$FS_PID" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$FS_PID" 2>/dev/null; then
		echo "the daemon still runs 10 s after SIGTERM"
		kill_hung
		return 1
	fi
	wait "$FS_PID"
	rc=$?
	forget_pid "$FS_PID"
	if [ $rc -ne 0 ]; then echo "exit status $rc"; tail -5 "$E2E_TMP/daemon.log"; return 1; fi
	if grep -q " $MNT fuse.lsmfs " /proc/mounts; then echo "still mounted"; fusermount3 -u "$MNT"; return 1; fi
}
signal_exit() { # signal_exit WHAT
	if sigterm >"$E2E_TMP/sig.out" 2>&1; then ok "$1"; else fail "$1"; sed 's/^/     /' "$E2E_TMP/sig.out"; fi
}
signal_exit "SIGTERM unmounts and exits 0"

files_ok() { # files_ok N: the files s1..sN written above are all there
	for i in $(seq 1 "$1"); do [ "$(cat "$MNT/s$i")" = "$i" ] || { echo "s$i: $(cat "$MNT/s$i")"; return 1; }; done
}
mount_fs -s || exit 1
single() { files_ok 50 && mkdir "$MNT/single" && echo x >"$MNT/single/x" && rm -r "$MNT/single"; }
within 30 "single-threaded (-s): files written before the signal, new ones" single
signal_exit "single-threaded (-s): SIGTERM"
# The -s race above is narrow (the signal must land within the reader's poll): 10 more rounds.
sigterm_rounds() {
	local r
	for r in $(seq 1 10); do mount_fs -s && sigterm || { echo "round $r"; return 1; }; done
}
if sigterm_rounds >"$E2E_TMP/rounds.out" 2>&1; then ok "single-threaded (-s): SIGTERM right after a write, 10 rounds"
else fail "single-threaded (-s): SIGTERM rounds"; sed 's/^/     /' "$E2E_TMP/rounds.out" | tail -8; fi

mount_fs -o spin=0,max_threads=4 || exit 1
within 60 "spin=0 (libfuse's blocking reads): churn" churn b
signal_exit "spin=0: SIGTERM"
e2e_done
