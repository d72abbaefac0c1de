# lib.sh - shared by the end-to-end tests: mount lsmfs under a temp dir, always unmount, kill only
# the daemons we started. Source it; call `e2e_setup`, then `mount_fs [opts]`, `umount_fs`.
set -u
E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LSMFS=${LSMFS:-$E2E_ROOT/lsmfs}
E2E_PIDS=()
E2E_FAILS=0
E2E_NAME=${E2E_NAME:-$(basename "$0" .sh)}

e2e_cleanup() {
	# Unmount whatever is still mounted under our temp dir, then stop our own daemons only.
	if [ -n "${E2E_TMP:-}" ]; then
		grep " fuse.lsmfs " /proc/mounts | awk '{print $2}' | grep "^$E2E_TMP/" | while read -r m; do
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		done
	fi
	for p in "${E2E_PIDS[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
	done
	if [ -n "${E2E_TMP:-}" ] && [ "${E2E_KEEP:-0}" != 1 ]; then rm -rf "$E2E_TMP"; fi
}

e2e_setup() {
	E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/lsmfs-e2e.XXXXXX")
	STORE=$E2E_TMP/store
	MNT=$E2E_TMP/mnt
	mkdir -p "$MNT"
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
}

# mount_fs [lsmfs options...]: start the daemon in the foreground as our child (so we know its PID),
# wait for the mount to appear.
mount_fs() {
	"$LSMFS" -f "$@" "$STORE" "$MNT" >>"$E2E_TMP/daemon.log" 2>&1 &
	FS_PID=$!
	E2E_PIDS+=("$FS_PID")
	for _ in $(seq 1 200); do
		if grep -q " $MNT fuse.lsmfs " /proc/mounts; then return 0; fi
		kill -0 "$FS_PID" 2>/dev/null || { echo "lsmfs exited during mount:"; cat "$E2E_TMP/daemon.log"; return 1; }
		sleep 0.05
	done
	echo "mount did not appear"; return 1
}

# forget_pid PID: a child that has been waited for is no longer ours to kill (its number may be reused).
forget_pid() {
	local keep=() p
	for p in "${E2E_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	E2E_PIDS=("${keep[@]}")
}

# umount_fs: unmount and wait for the daemon to exit cleanly (status 0).
umount_fs() {
	fusermount3 -u "$MNT" || return 1
	wait "$FS_PID"
	local rc=$?
	forget_pid "$FS_PID"
	[ $rc -eq 0 ] || { echo "lsmfs exited with status $rc"; tail -5 "$E2E_TMP/daemon.log"; return 1; }
}

remount_fs() { umount_fs && mount_fs "$@"; }

ok() { echo "ok   $E2E_NAME: $*"; }
fail() { echo "FAIL $E2E_NAME: $*"; E2E_FAILS=$((E2E_FAILS + 1)); }
check() { # check "what" command...
	local what=$1; shift
	if "$@" >"$E2E_TMP/check.out" 2>&1; then ok "$what"; else fail "$what"; sed 's/^/     /' "$E2E_TMP/check.out" | head -20; fi
}
e2e_done() {
	if [ "$E2E_FAILS" -gt 0 ]; then echo "$E2E_NAME: $E2E_FAILS failure(s)"; exit 1; fi
	exit 0
}
