#!/bin/bash
# run_fs_bench.sh - `make bench`: lsmfs against the FUSE baselines and the nullfs floor, same run.
#
# Targets, one after the other inside each repetition (repetitions interleaved, as run_all.sh):
#   native      a plain directory on the root ext4         (../shared/bench/mounts.sh)
#   pll         libfuse's passthrough_ll, writeback,cache=always,timeout=0   (mounts.sh)
#   pll_xattr   the same with -o xattr (answers xattrs like lsmfs; fio only)
#   mergerfs    mergerfs over one branch, page cache + long caches          (mounts.sh)
#   bindfs      bindfs --multithreaded, kernel_cache, long timeouts          (mounts.sh)
#   lsmfs       ./lsmfs STORE MNT with default options (-f only, so that we own its PID)
#   lsmfs_nowb  the same with -o no_writeback_cache (is the writeback cache worth it?)
#   lsmfs_nokp2 the same with -o no_killpriv_v2 (what fs/wire.c's handshake is worth; not default)
#   lsmfs_noblob the same with -o blob_min=0 (every block in the tree: what blob files are worth)
#   lsmfs_nospin the same with -o spin=0 (libfuse's blocking reads: what fs/wire.c's reader is worth)
#   nullfs_wb   the FUSE floor (../shared/bench/nullfs.c) with lsmfs's default FUSE options:
#               writeback cache, xattrs answered, 60 s entry/attr/negative timeouts, default_permissions
#               (with it the kernel re-reads a directory's attributes after each change in it: one
#               GETATTR more per create, unlink, mkdir, rmdir)
#   nullfs_nowb the same without writeback cache (lsmfs_nowb's floor)
#   nullfs_plain writeback cache, xattrs, 60 s, no default_permissions (floor.sh's "wb-xattr" row; not in
#               the default targets). The floors run floor_ops only.
# Parts (BENCH_PARTS, default "meta fio floor extra"):
#   meta   ../shared/bench/run_fs.sh meta.c phases, 100 k files in 100 dirs, 1 and 4 threads
#   fio    run_fs.sh fio jobs randwrite-4k randrw-4k randread-4k(-warm) seqwrite-1m seqread-1m
#   floor  floor_ops (1 thread, 20 k ops per phase) on every target
#   extra  on native, pll, lsmfs*: untar of a ~50 k-file source-like tree, cp -a /usr/include, rm -rf
#          of both, sqlite3 single-row inserts with PRAGMA synchronous=FULL (one fsync'd txn each)
# Every result row (label test value unit rep; higher is better everywhere: rates, not times) goes
# to $OUT/raw.tsv; $OUT/ratios.md (printed at the end) holds medians and lsmfs/baseline ratios;
# $OUT/env.txt the machine, load average and busiest other processes per target; $OUT/logs/ the rest.
#
# Env: BENCH_QUICK=1 (1 rep, 10 k files, 5 k floor ops, fewer inserts, 10 k-file tarball);
# BENCH_FS_REPS (default 3); BENCH_TARGETS; BENCH_PARTS; FIO_TESTS; META_N; META_T; FLOOR_N;
# OUT (default /tmp/lsmfs-fsbench/results); BASE (mounts, stores, the harness copy; default
# /tmp/lsmfs-fsbench: keep it on the root ext4); SHARED (default ../shared).
# ../shared is never written: its bench/ is copied to $BASE/harness and built there.
# Needs root (drop_caches, chattr, apt-get for missing packages).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
BASE=${BASE:-/tmp/lsmfs-fsbench}
OUT=${OUT:-$BASE/results}
QUICK=${BENCH_QUICK:-0}
REPS=${BENCH_FS_REPS:-3}
META_N=${META_N:-100000}
META_T=${META_T:-"1 4"}
FLOOR_N=${FLOOR_N:-20000}
SQL_N=${SQL_N:-2000}
TAR_FILES=${TAR_FILES:-50000}
if [ "$QUICK" = 1 ]; then
	REPS=${BENCH_FS_REPS:-1}
	META_N=${META_N_QUICK:-10000}
	FLOOR_N=${FLOOR_N_QUICK:-5000}
	SQL_N=300
	TAR_FILES=10000
fi
TARGETS=${BENCH_TARGETS:-"native pll pll_xattr mergerfs bindfs lsmfs lsmfs_nowb nullfs_wb nullfs_nowb"}
PARTS=${BENCH_PARTS:-"meta fio floor extra"}
export FIO_TESTS=${FIO_TESTS:-"randwrite-4k randrw-4k randread-4k randread-4k-warm seqwrite-1m seqread-1m"}
PKGS="fio fuse3 libfuse3-dev pkg-config mergerfs bindfs sqlite3 e2fsprogs"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
has() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

# ---------------------------------------------------------------- packages, harness, binaries
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	[ "$(id -u)" = 0 ] || { echo "run_fs_bench: missing packages:$missing (run as root)" >&2; exit 1; }
	log "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q $missing >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; } || exit 1
fi

H=$BASE/harness
mkdir -p "$H" "$OUT/logs" "$BASE/pids"
# A private copy of the shared harness (its scripts build into their own directory).
tar -C "$SHARED/bench" --exclude=./build -cf - . | tar -C "$H" -xf - || exit 1
export BASE
"$H/mounts.sh" build >&2 || exit 1
gcc -O2 -Wall $(pkg-config --cflags fuse3) -o "$H/build/nullfs" "$H/nullfs.c" $(pkg-config --libs fuse3) || exit 1
gcc -O2 -Wall -o "$H/build/floor_ops" "$H/floor_ops.c" || exit 1
make -C "$ROOT" -s lsmfs || { echo "run_fs_bench: cannot build lsmfs" >&2; exit 1; }
# Run a private copy: another make in the tree must not change the daemon between repetitions.
cp "$ROOT/lsmfs" "$BASE/lsmfs.bin" || exit 1
REV="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), built $(date -r "$ROOT/lsmfs" -Is)"
DIRTY=$(git -C "$ROOT" status --porcelain -- fs store 2>/dev/null | wc -l)
[ "$DIRTY" = 0 ] || REV="$REV, $DIRTY uncommitted file(s) in fs/ store/"

# The source tree to untar: regular files of system directories, sorted, the first TAR_FILES of them.
TARBALL=$BASE/tree$TAR_FILES.tar
if has extra "$PARTS" && [ ! -s "$TARBALL" ]; then
	log "building $TARBALL"
	find /usr/include /usr/share/man /usr/share/doc /usr/share/locale /usr/share/perl /usr/share/i18n \
		/usr/share/zoneinfo /usr/lib/python3 /usr/share/perl5 /usr/share/vim /usr/lib/x86_64-linux-gnu/perl \
		/usr/share/common-licenses /usr/share/info /usr/lib/gcc -type f 2>/dev/null |
		LC_ALL=C sort | head -n "$TAR_FILES" >"$BASE/tree.list"
	tar -cf "$TARBALL" -T "$BASE/tree.list" 2>/dev/null
fi
TAR_N=0
[ -s "$TARBALL" ] && TAR_N=$(tar -tf "$TARBALL" | grep -vc '/$')
INC_N=$(find /usr/include | wc -l)

rm -f "$OUT/raw.tsv"
{
	echo "# $(date -Is) host=$(hostname) kernel=$(uname -r) nproc=$(nproc) mem=$(free -m | awk '/Mem/{print $2}')MiB"
	echo "# lsmfs $REV"
	echo "# reps=$REPS quick=$QUICK targets=$TARGETS parts=$PARTS META_N=$META_N META_T=$META_T FLOOR_N=$FLOOR_N"
	echo "# fio: $FIO_TESTS; untar: $TAR_N files ($(du -sh "$TARBALL" 2>/dev/null | cut -f1)); cp -a /usr/include: $INC_N entries; sqlite: $SQL_N inserts"
	df -hT "$BASE" | sed 's/^/# /'
} >"$OUT/env.txt"

# ---------------------------------------------------------------- our own mounts
mnt() { echo "$BASE/$1.mnt"; }

wait_mounted() {
	local i
	for i in $(seq 1 100); do
		mountpoint -q "$1" && return 0
		sleep 0.1
	done
	echo "mount of $1 did not appear" >&2
	return 1
}

# Start a foreground daemon for target $1 (command in the remaining args) and remember its PID.
start_daemon() {
	local t=$1 m
	shift
	m=$(mnt "$t")
	mkdir -p "$m"
	mountpoint -q "$m" && { echo "$m is already mounted" >&2; return 1; }
	setsid "$@" >"$OUT/logs/$t.daemon.log" 2>&1 </dev/null &
	echo $! >"$BASE/pids/$t.pid"
	wait_mounted "$m"
}

stop_daemon() {
	local t=$1 m pid i
	m=$(mnt "$t")
	mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m"; }
	[ -f "$BASE/pids/$t.pid" ] || return 0
	pid=$(cat "$BASE/pids/$t.pid")
	# lsmfs flushes its memtable and closes the store on unmount: give it time.
	for i in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "daemon $pid ($t) still alive 60 s after unmount; killing it" >&2
		kill "$pid"
	fi
	rm -f "$BASE/pids/$t.pid"
}

up() {
	local t=$1 s
	s="$BASE/$t.src"
	case "$t" in
	native | pll | mergerfs | bindfs) "$H/mounts.sh" up "$t" ;;
	pll_xattr)
		mkdir -p "$s"
		chattr +T "$s" 2>/dev/null
		start_daemon "$t" "$H/build/passthrough_ll" -f -o "source=$s,writeback,cache=always,timeout=0,xattr" "$(mnt "$t")" ;;
	lsmfs | lsmfs_nowb | lsmfs_nokp2 | lsmfs_noblob | lsmfs_nospin)
		s="$BASE/$t.store"
		rm -rf "$s"
		local o=()
		case "$t" in lsmfs_nowb) o=(-o no_writeback_cache) ;; lsmfs_nokp2) o=(-o no_killpriv_v2) ;; lsmfs_noblob) o=(-o blob_min=0) ;; lsmfs_nospin) o=(-o spin=0) ;; esac
		start_daemon "$t" "$BASE/lsmfs.bin" -f "${o[@]}" "$s" "$(mnt "$t")" ;;
	nullfs_wb) T=60 WB=1 XATTR=1 start_daemon "$t" "$H/build/nullfs" -f -o default_permissions "$(mnt "$t")" ;;
	nullfs_nowb) T=60 WB=0 XATTR=1 start_daemon "$t" "$H/build/nullfs" -f -o default_permissions "$(mnt "$t")" ;;
	nullfs_plain) T=60 WB=1 XATTR=1 start_daemon "$t" "$H/build/nullfs" -f "$(mnt "$t")" ;;
	*) echo "unknown target $t" >&2; return 1 ;;
	esac
}

down() {
	case "$1" in
	native | pll | mergerfs | bindfs) "$H/mounts.sh" down "$1" ;;
	*) stop_daemon "$1" ;;
	esac
	case "$1" in
	pll_xattr) rm -rf "$BASE/$1.src" ;;
	lsmfs*) rm -rf "$BASE/$1.store" ;;
	esac
}

dir_of() {
	case "$1" in
	native | pll | mergerfs | bindfs) "$H/mounts.sh" dir "$1" ;;
	*) mnt "$1" ;;
	esac
}

cleanup() {
	for t in $TARGETS; do down "$t" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the tests
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) d = 1e-9; printf "%.1f", n / d }'; }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$rep" | tee -a "$OUT/raw.tsv"; }

run_floor() {
	local t=$1 dir=$2 w
	w=$dir/floor.$$
	# nullfs knows only the names floor_ops uses: it runs in the mount's root.
	case "$t" in nullfs*) w=$dir ;; *) mkdir -p "$w" && chattr +T "$w" 2>/dev/null ;; esac
	"$H/build/floor_ops" "$w" "$FLOOR_N" 2> >(sed "s/^/rep $rep $t: /" >>"$OUT/logs/floor.err") |
		while read -r ph v; do [ -n "$ph" ] && row "$t" "floor.$ph" "$v" ops/s; done
	[ "$w" = "$dir" ] || rm -rf "$w"
}

run_extra() {
	local t=$1 dir=$2 w t0 t1 n
	w=$dir/extra.$$
	mkdir -p "$w" && chattr +T "$w" 2>/dev/null
	if [ -s "$TARBALL" ]; then
		cat "$TARBALL" >/dev/null
		sync
		mkdir "$w/untar"
		t0=$(now)
		tar -xf "$TARBALL" -C "$w/untar" || log "$t: untar failed"
		t1=$(now)
		row "$t" untar "$(rate "$TAR_N" "$t0" "$t1")" files/s
		sync
		t0=$(now)
		rm -rf "$w/untar"
		t1=$(now)
		row "$t" rm_rf_untar "$(rate "$TAR_N" "$t0" "$t1")" files/s
	fi
	tar -cf /dev/null /usr/include 2>/dev/null # source warm, as for every target
	sync
	t0=$(now)
	cp -a /usr/include "$w/include" || log "$t: cp -a failed"
	t1=$(now)
	row "$t" cp_a_include "$(rate "$INC_N" "$t0" "$t1")" entries/s
	n=$(find "$w/include" | wc -l)
	[ "$n" = "$INC_N" ] || log "$t: cp -a copied $n of $INC_N entries"
	sync
	t0=$(now)
	rm -rf "$w/include"
	t1=$(now)
	row "$t" rm_rf_include "$(rate "$INC_N" "$t0" "$t1")" entries/s
	# fsync-heavy: each INSERT is its own transaction (journal write + fsync, db write + fsync).
	local sql=$BASE/inserts.$SQL_N.sql
	[ -s "$sql" ] || {
		echo "PRAGMA synchronous=FULL;"
		echo "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
		for i in $(seq 1 "$SQL_N"); do echo "INSERT INTO t(v) VALUES(hex(randomblob(100)));"; done
	} >"$sql"
	t0=$(now)
	sqlite3 "$w/bench.db" <"$sql" || log "$t: sqlite3 failed"
	t1=$(now)
	n=$(sqlite3 "$w/bench.db" 'SELECT count(*) FROM t' 2>/dev/null)
	[ "$n" = "$SQL_N" ] || log "$t: sqlite table has $n rows, expected $SQL_N"
	row "$t" sqlite_full_insert "$(rate "$SQL_N" "$t0" "$t1")" inserts/s
	rm -rf "$w"
}

# lsmfs's memory: VmHWM counts the store's mmap'd table pages (page cache the kernel can take back)
# with the daemon's own memory, so a sampler also keeps the peak of RssAnon (private memory) in
# $BASE/$t.anon, every 0.2 s.
start_sampler() {
	local pid f=$BASE/$1.anon
	pid=$(cat "$BASE/pids/$1.pid")
	echo 0 >"$f"
	(
		while kill -0 "$pid" 2>/dev/null; do
			a=$(awk '/RssAnon/{print $2}' "/proc/$pid/status" 2>/dev/null)
			m=$(cat "$f" 2>/dev/null)
			[ -n "$a" ] && [ "$a" -gt "${m:-0}" ] && echo "$a" >"$f"
			sleep 0.2
		done
	) &
}

# lsmfs's peaks since the last mark (then reset: clear_refs 5 resets VmHWM).
rss_mark() {
	local pid hwm
	case "$1" in lsmfs*) ;; *) return 0 ;; esac
	pid=$(cat "$BASE/pids/$1.pid")
	hwm=$(awk '/VmHWM/{printf "%.1f", $2 / 1024}' "/proc/$pid/status")
	row "$1" "$2" "$hwm" MiB
	row "$1" "anon_${2#rss_}" "$(awk '{printf "%.1f", $1 / 1024}' "$BASE/$1.anon")" MiB
	echo 5 >"/proc/$pid/clear_refs" 2>/dev/null
	echo 0 >"$BASE/$1.anon"
}

for rep in $(seq 1 "$REPS"); do
	for t in $TARGETS; do
		log "rep $rep: $t"
		up "$t" || { log "mount $t failed"; down "$t"; continue; }
		case "$t" in lsmfs*) start_sampler "$t" ;; esac
		{
			echo "# rep $rep $t: $(case $t in native|pll|mergerfs|bindfs) "$H/mounts.sh" opts "$t" ;; *) echo "own mount, see run_fs_bench.sh" ;; esac)"
			echo "#   $(date +%T) load: $(cut -d' ' -f1-3 /proc/loadavg); busiest other processes:"
			ps -eo pcpu=,pid=,args= --sort=-pcpu | head -3 | cut -c1-120 | sed 's/^/#     /'
		} >>"$OUT/env.txt"
		dir=$(dir_of "$t")
		case "$t" in nullfs*) ;; *)
			# fio, then meta (run_fs.sh's order), in two calls: lsmfs's peak RSS is taken for each.
			for part in fio meta; do
				has $part "$PARTS" || continue
				[ $part = meta ] && [ "$t" = pll_xattr ] && continue
				SKIP_META=$([ $part = meta ] && echo 0 || echo 1) SKIP_FIO=$([ $part = fio ] && echo 0 || echo 1) \
					META_N=$META_N META_T="$META_T" \
					LOGDIR=$OUT/logs/rep$rep "$H/run_fs.sh" "$dir" "$t" 2>>"$OUT/logs/stderr.log" |
					while IFS=$'\t' read -r l tst v u; do row "$l" "$tst" "$v" "$u"; done
				rss_mark "$t" "rss_peak_$part"
			done
			;;
		esac
		has floor "$PARTS" && [ "$t" != pll_xattr ] && run_floor "$t" "$dir"
		case "$t" in native | pll | lsmfs*) has extra "$PARTS" && run_extra "$t" "$dir" ;; esac
		rss_mark "$t" rss_peak_floor_extra
		down "$t"
	done
done

bash "$HERE/fs_ratios.sh" "$OUT/raw.tsv" "$OUT/env.txt" >"$OUT/ratios.md"
cat "$OUT/ratios.md"
