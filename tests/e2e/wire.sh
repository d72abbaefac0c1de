#!/bin/bash
# wire.sh - how the daemon fetches requests (fs/wire.c): one worker at a time reads /dev/fuse and
# answers metadata requests itself (default -o spin=50), handing the device over before anything
# that may block. The ways that role could be lost or stuck: a worker libfuse ends while holding
# it (idle workers above half of max_threads are ended), a signal that must end the session while
# workers wait for the role, and -s (one thread). Each check runs under a time limit: a lost role
# shows as a hang, and the test then kills its daemon (which ends the connection) and stops.
. "$(dirname "$0")/lib.sh"
e2e_setup

# hung: the daemon stopped answering. Kill it (ours): closing /dev/fuse ends the connection and
# every waiting request fails; then drop the dead mount and stop the test.
hung() {
	kill -9 "$FS_PID" 2>/dev/null
	wait "$FS_PID" 2>/dev/null
	forget_pid "$FS_PID"
	fusermount3 -uz "$MNT" 2>/dev/null
	e2e_done
}

# within SECS what command...: the command (a function too) must finish in time, else the test
# ends there (hung).
within() {
	local secs=$1 what=$2 p rc i; shift 2
	("$@") >"$E2E_TMP/within.out" 2>&1 &
	p=$!
	for ((i = 0; i < secs * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then
		fail "$what: no answer within ${secs}s"
		hung
		wait "$p"
		return 1
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
				d=$MNT/churn$j
				mkdir -p "$d" && dd if=/dev/zero of="$d/f$round" bs=64k count=8 conv=fsync status=none &&
					for k in $(seq 1 20); do touch "$d/t$round.$k" && stat "$d/f$round" >/dev/null || exit 1; done
			) &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p" || return 1; done
		# the surplus workers end here; the next requests need a reader
		ls -R "$MNT" >/dev/null && mkdir "$MNT/after$tag$round" || return 1
	done
	[ "$(ls "$MNT/churn7" | wc -l)" = 105 ] || { echo "churn7 holds $(ls "$MNT/churn7" | wc -l) names"; return 1; }
}

# max_threads=4: libfuse ends workers as soon as more than 2 are idle.
mount_fs -o max_threads=4 || exit 1
within 60 "16 writers with fsync and metadata requests, 5 rounds (workers started and ended)" churn a
# signal_exit WHAT: SIGTERM ends the session (while workers wait for the reader role) and
# unmounts; the daemon exits 0.
signal_exit() {
	local i rc
	for i in $(seq 1 50); do echo "$i" >"$MNT/s$i"; done
	kill -TERM "$FS_PID" || { fail "$1: kill"; return 1; }
	for ((i = 0; i < 300; i++)); do kill -0 "$FS_PID" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$FS_PID" 2>/dev/null; then
		fail "$1: the daemon still runs 30 s after SIGTERM"
		hung
	fi
	wait "$FS_PID"
	rc=$?
	forget_pid "$FS_PID"
	if [ $rc -ne 0 ]; then fail "$1: exit status $rc"; tail -5 "$E2E_TMP/daemon.log"
	elif grep -q " $MNT fuse.lsmfs " /proc/mounts; then fail "$1: still mounted"; fusermount3 -u "$MNT"
	else ok "$1"; fi
}
signal_exit "SIGTERM unmounts and exits 0"

files_ok() { # files_ok N: the files s1..sN written above are all there
	for i in $(seq 1 "$1"); do [ "$(cat "$MNT/s$i")" = "$i" ] || { echo "s$i: $(cat "$MNT/s$i")"; return 1; }; done
}
mount_fs -s || exit 1
single() { files_ok 50 && mkdir "$MNT/single" && echo x >"$MNT/single/x" && rm -r "$MNT/single"; }
within 30 "single-threaded (-s): files written before the signal, new ones" single
signal_exit "single-threaded (-s): SIGTERM"

mount_fs -o spin=0,max_threads=4 || exit 1
within 60 "spin=0 (libfuse's blocking reads): churn" churn b
signal_exit "spin=0: SIGTERM"
e2e_done
