#!/bin/bash
# run_store.sh [REPS] - the lsmfs store against LevelDB and RocksDB, same run, same settings.
#
# Engines, run one after the other inside each repetition (the starting engine rotates per
# repetition so that none always runs first or last on the shared VM):
#   lsmfs             bench/lsmbench (this repo)
#   kvbench-rocksdb   ../shared/bench/kv/kvbench.c on RocksDB's C API
#   kvbench-leveldb   the same on LevelDB's C API
#   db_bench-rocksdb  RocksDB's own db_bench (rocksdb-tools)
# Sets: 16 B keys x 100 B values, N = 1,000,000; 16 B keys x 4096 B values, N = 200,000.
# Workloads: fillseq,fillrandom,overwrite,readrandom,readseq (all engines) then seekrandom and
# readrandom4 (lsmfs only, extra rows). Settings as ../shared/bench/kv/run_kv.sh: no compression,
# WAL on and not synced, write buffer 64 MiB, block cache 32 MiB, bloom 10 bits/key, 1 thread.
#
# Output in $OUT (default /tmp/lsmfs-bench): raw.tsv (one row per engine x set x workload x rep),
# summary.md (medians, ratios, machine, lsmbench diagnostics; also printed), logs/ (every run's
# stdout/stderr, load average per run).
# Env: OUT; DBDIR (DB location, default $OUT/db: keep it on the root ext4); BENCH_QUICK=1 (1 rep,
# N/10); BENCH_TIMEOUT (seconds per engine run, default 1800); SHARED (default ../shared).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
REPS=${1:-3}
OUT=${OUT:-/tmp/lsmfs-bench}
DB=${DBDIR:-$OUT/db}
TIMEOUT=${BENCH_TIMEOUT:-1800}
BENCHES=fillseq,fillrandom,overwrite,readrandom,readseq
EXTRA=seekrandom,readrandom4
SETS=("100 1000000" "4096 200000")
DIV=1
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	REPS=1
	DIV=10
fi
case $REPS in
'' | *[!0-9]* | 0) echo "usage: run_store.sh [REPS>=1]" >&2; exit 2 ;;
esac

LSMBENCH=$ROOT/bench/lsmbench
KVBUILD=${KVBUILD:-$ROOT/build/kv}
KVBENCH=$KVBUILD/kvbench
make -C "$ROOT" -s bench/lsmbench || { echo "run_store: cannot build bench/lsmbench" >&2; exit 1; }
# kvbench is built with its own Makefile, but into build/kv: shared/ stays clean.
mkdir -p "$KVBUILD"
make -s -C "$KVBUILD" -f "$SHARED/bench/kv/Makefile" VPATH="$SHARED/bench/kv" kvbench ||
	{ echo "run_store: cannot build kvbench (librocksdb-dev, libleveldb-dev installed?)" >&2; exit 1; }
command -v db_bench >/dev/null || { echo "run_store: db_bench not found (rocksdb-tools)" >&2; exit 1; }

mkdir -p "$OUT" "$DB"
rm -rf "$OUT/logs" "$OUT/raw.tsv" "$OUT/raw_long.tsv" "$OUT/summary.md"
mkdir -p "$OUT/logs"
# Run a private copy: a rebuild of bench/lsmbench or build/libstore.a during the run (another make in
# the same tree) must not change the code measured between repetitions. The source state is taken now.
cp "$ROOT/bench/lsmbench" "$OUT/lsmbench" || exit 1
LSMBENCH=$OUT/lsmbench
REV="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
REV="$REV, binary built $(date -r "$ROOT/bench/lsmbench" -Is)"
DIRTY=$(git -C "$ROOT" status --porcelain -- store 2>/dev/null | wc -l)
[ "$DIRTY" = 0 ] || REV="$REV, $DIRTY uncommitted file(s) in store/"
RAW=$OUT/raw.tsv
LOGS=$OUT/logs
printf '# rep\tengine\tvalsize\tbench\tops_per_s\tmib_per_s\tseconds\tops\n' >"$RAW"
: >"$LOGS/failures.txt"
# The VM is shared: top samples every process every 5 s during the run, so that CPU used by other
# jobs shows in the summary (the load average lags by a minute and counts our own threads).
top -b -d 5 -w 250 >"$LOGS/top.txt" 2>/dev/null &
TOP_PID=$!
trap 'kill "$TOP_PID" 2>/dev/null' EXIT
T0=$(date +%s)
START=$(date -Is)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

note_env() { # what
	echo "$(date +%T) $1 load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOGS/env.txt"
}

fail() { # engine vs rep rc
	echo "$1 v$2 rep $3: exit $4 (logs/$1.v$2.rep$3.*)" | tee -a "$LOGS/failures.txt" >&2
}

# kvbench and lsmbench print the same TSV: engine valsize bench ops/s MiB/s seconds ops.
collect_tsv() { # label rep < tsv
	awk -F'\t' -v OFS='\t' -v l="$1" -v r="$2" 'NF == 7 { print r, l, $2, $3, $4, $5, $6, $7 }' >>"$RAW"
}

run_lsmfs() { # vs n rep
	local d=$DB/lsmfs log=$LOGS/lsmfs.v$1.rep$3
	rm -rf "$d"; sync
	note_env "lsmfs v$1 n=$2"
	timeout "$TIMEOUT" "$LSMBENCH" -d "$d" -n "$2" -v "$1" -b "$BENCHES,$EXTRA" >"$log.tsv" 2>"$log.stderr"
	local rc=$?
	collect_tsv lsmfs "$3" <"$log.tsv"
	[ $rc = 0 ] || fail lsmfs "$1" "$3" $rc
	rm -rf "$d"
}

run_kvbench() { # engine vs n rep
	local d=$DB/$1 log=$LOGS/kvbench-$1.v$2.rep$4
	rm -rf "$d"; sync
	note_env "kvbench-$1 v$2 n=$3"
	timeout "$TIMEOUT" "$KVBENCH" -e "$1" -d "$d" -n "$3" -v "$2" -b "$BENCHES" >"$log.tsv" 2>"$log.stderr"
	local rc=$?
	collect_tsv "kvbench-$1" "$4" <"$log.tsv"
	[ $rc = 0 ] || fail "kvbench-$1" "$2" "$4" $rc
	rm -rf "$d"
}

run_db_bench() { # vs n rep
	local d=$DB/db_bench log=$LOGS/db_bench-rocksdb.v$1.rep$3
	rm -rf "$d"; sync
	note_env "db_bench v$1 n=$2"
	# The flags of run_kv.sh; db_bench's progress goes to stderr, kept apart from the result lines.
	timeout "$TIMEOUT" db_bench --benchmarks="$BENCHES" --db="$d" --num="$2" \
		--key_size=16 --value_size="$1" --compression_type=none \
		--write_buffer_size=67108864 --cache_size=33554432 --bloom_bits=10 \
		--max_background_jobs=2 --sync=0 --disable_wal=0 --threads=1 --seed=1 \
		>"$log.txt" 2>"$log.stderr"
	local rc=$?
	# "fillseq : 3.2 micros/op 311575 ops/sec 3.2 seconds 1000000 operations; 34.5 MB/s"
	tr '\r' '\n' <"$log.txt" | grep -E '^(fillseq|fillrandom|overwrite|readrandom|readseq) +:' |
		awk -v OFS='\t' -v r="$3" -v vs="$1" '{
			ops = ""; mb = ""; s = ""; n = ""
			for (i = 2; i <= NF; i++) {
				if ($i == "ops/sec") ops = $(i-1)
				if ($i == "seconds") s = $(i-1)
				if ($i ~ /^operations;?$/) n = $(i-1)
				if ($i == "MB/s") mb = $(i-1)
			}
			print r, "db_bench-rocksdb", vs, $1, ops, mb, s, n }' >>"$RAW"
	[ $rc = 0 ] || fail db_bench-rocksdb "$1" "$3" $rc
	rm -rf "$d"
}

ENGINES=(lsmfs kvbench-rocksdb kvbench-leveldb db_bench-rocksdb)
for rep in $(seq 1 "$REPS"); do
	for set in "${SETS[@]}"; do
		read -r vs n <<<"$set"
		n=$((n / DIV))
		for i in 0 1 2 3; do
			e=${ENGINES[$(((i + rep - 1) % 4))]}
			echo "run_store: rep $rep/$REPS v$vs n=$n $e" >&2
			case $e in
			lsmfs) run_lsmfs "$vs" "$n" "$rep" ;;
			kvbench-rocksdb) run_kvbench rocksdb "$vs" "$n" "$rep" ;;
			kvbench-leveldb) run_kvbench leveldb "$vs" "$n" "$rep" ;;
			db_bench-rocksdb) run_db_bench "$vs" "$n" "$rep" ;;
			esac
		done
	done
done
rmdir "$DB" 2>/dev/null
T1=$(date +%s)
kill "$TOP_PID" 2>/dev/null
wait "$TOP_PID" 2>/dev/null
# Other jobs' CPU per sample (percent of one CPU; our engines, top and kernel I/O workers excluded).
awk '/^top -/ { n++; next }
	n > 1 && $1 ~ /^[0-9]+$/ && $9 + 0 > 0 && $12 !~ /^(lsmbench|kvbench|db_bench|top|kworker|jbd2|kswapd|ksoftirqd)/ {
		cpu[n] += $9; by[$12] += $9 }
	END {
		for (i = 2; i <= n; i++) { t += cpu[i]; if (cpu[i] > m) m = cpu[i] }
		k = n > 1 ? n - 1 : 1
		printf "%d %.0f %.0f", n - 1, t / k, m
		for (c in by) if (by[c] / k >= 1) printf " %s:%.0f%%", c, by[c] / k
		printf "\n" }' "$LOGS/top.txt" >"$LOGS/others.txt"
read -r OTH_N OTH_MEAN OTH_MAX OTH_WHO <"$LOGS/others.txt"

# ---------------------------------------------------------------- summary
{
	echo "# lsmfs store vs LevelDB / RocksDB ($START)"
	echo
	echo "* reps: $REPS$([ "$DIV" = 1 ] || echo " (BENCH_QUICK: N/$DIV)"), wall time $((T1 - T0)) s, ended $(date -Is)"
	echo "* machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), kernel $(uname -r)," \
		"memory available $(awk '/MemAvailable/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)" \
		"of $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "* load average (1/5/15 min): $LOAD0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end (per run: logs/env.txt)"
	echo "* other jobs' CPU (top, every 5 s, $OTH_N samples): mean ${OTH_MEAN}%, max ${OTH_MAX}% of one CPU;" \
		"mean per command: ${OTH_WHO:-none}"
	if [ "${OTH_MEAN:-0}" -ge 10 ] || [ "${OTH_MAX:-0}" -ge 50 ]; then
		echo "* **warning: other jobs used the CPUs during this run (logs/top.txt): ranges are wider and" \
			"ratios less reliable than in a quiet run**"
	fi
	echo "* DB dirs: $DB on $(df -T "$OUT" | awk 'NR == 2 {print $1, $2}'); removed and \`sync\` before each engine run"
	echo "* lsmfs $REV;" \
		"$(dpkg-query -W -f='${Package} ${Version}' librocksdb-dev 2>/dev/null);" \
		"$(dpkg-query -W -f='${Package} ${Version}' libleveldb-dev 2>/dev/null)"
	echo "* settings: 16 B keys, no compression, WAL on + unsynced, write buffer 64 MiB, block cache 32 MiB," \
		"bloom 10 bits/key, 1 thread (readrandom4: 4); compaction not waited for between phases"
	echo
	echo "## ops/s, median over reps [range = (max-min)/median]; ratio > 1: lsmfs faster"
	echo
	echo "RocksDB best = the better median of kvbench-rocksdb and db_bench on each line."
	echo
	grep -v '^#' "$RAW" | awk -F'\t' '
	function fmt(x) { return sprintf("%.0f", x) }
	function median(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		lo = a[1]; hi = a[n]; cnt = n
		return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	function cell(e, k,   m) {
		if (!((e, k) in v)) return "-"
		m = median(v[e, k])
		med[e, k] = m
		return fmt(m) (cnt > 1 && m > 0 ? sprintf(" [%.0f%%]", 100 * (hi - lo) / m) : "")
	}
	function ratio(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "-" }
	$5 != "" { k = $3 SUBSEP $4; v[$2, k] = v[$2, k] " " $5 }
	END {
		print "| workload | lsmfs | LevelDB | RocksDB kvbench | RocksDB db_bench | lsmfs/LevelDB | lsmfs/RocksDB best |"
		print "|---|---:|---:|---:|---:|---:|---:|"
		nb = split("fillseq fillrandom overwrite readrandom readseq seekrandom readrandom4", B, " ")
		split("100 4096", VS, " ")
		for (s = 1; s <= 2; s++) for (b = 1; b <= nb; b++) {
			k = VS[s] SUBSEP B[b]
			if (!(("lsmfs", k) in v) && !(("kvbench-leveldb", k) in v)) continue
			l = cell("lsmfs", k); lv = cell("kvbench-leveldb", k)
			rk = cell("kvbench-rocksdb", k); rd = cell("db_bench-rocksdb", k)
			best = med["kvbench-rocksdb", k] + 0
			if (med["db_bench-rocksdb", k] + 0 > best) best = med["db_bench-rocksdb", k] + 0
			printf "| %s v%s | %s | %s | %s | %s | %s | %s |\n", B[b], VS[s], l, lv, rk, rd,
				ratio(med["lsmfs", k], med["kvbench-leveldb", k]), ratio(med["lsmfs", k], best)
		}
	}'
	echo
	echo "seekrandom and readrandom4 are lsmfs-only rows (no baseline run). db_bench's fillrandom and"
	echo "overwrite draw keys with replacement, so its readrandom finds ~63% of keys (see logs/db_bench-*.txt);"
	echo "kvbench and lsmbench write every key once and find all."
	echo
	echo "## lsmbench diagnostics"
	echo
	if [ -s "$LOGS/failures.txt" ]; then
		echo "Failed runs:"
		echo '```'
		cat "$LOGS/failures.txt"
		echo '```'
	else
		echo "No run failed or timed out (timeout ${TIMEOUT} s per engine run)."
	fi
	# Anything lsmbench says besides its header, per-phase stats and CPU times is a warning (keys not
	# found...).
	warn=$(grep -hv -e '^lsmbench: engine=' -e '^lsmbench: stats ' -e '^lsmbench: cpu ' \
		"$LOGS"/lsmfs.*.stderr 2>/dev/null)
	if [ -n "$warn" ]; then
		echo
		echo "lsmbench warnings:"
		echo '```'
		echo "$warn"
		echo '```'
	fi
	echo
	echo "Per-phase lsm_stats of repetition 1 (counters: change over the phase; tables: at its end):"
	echo '```'
	for vs in 100 4096; do
		grep -h '^lsmbench: stats ' "$LOGS/lsmfs.v$vs.rep1.stderr" 2>/dev/null | sed 's/^lsmbench: stats //'
	done
	echo '```'
	echo
	echo "CPU seconds per phase of lsmbench, repetition 1 (less disturbed by other jobs than ops/s):"
	echo '```'
	for vs in 100 4096; do
		grep -h '^lsmbench: cpu ' "$LOGS/lsmfs.v$vs.rep1.stderr" 2>/dev/null | sed 's/^lsmbench: cpu //'
	done
	echo '```'
	if [ -x "$SHARED/bench/summarize.sh" ] || [ -f "$SHARED/bench/summarize.sh" ]; then
		# The shared summarizer gives n / median / min / max / spread of every cell.
		grep -v '^#' "$RAW" | awk -F'\t' -v OFS='\t' '$5 != "" { print $2, $4 "-v" $3, $5, "ops/s", $1 }' \
			>"$OUT/raw_long.tsv"
		echo
		echo "## Every cell (../shared/bench/summarize.sh)"
		echo
		bash "$SHARED/bench/summarize.sh" "$OUT/raw_long.tsv" | sed -n '/^## All cells/,$p' | sed 1,2d
	fi
} >"$OUT/summary.md"
cat "$OUT/summary.md"
echo "run_store: $RAW, $OUT/summary.md, logs in $LOGS" >&2
[ -s "$LOGS/failures.txt" ] && exit 1
exit 0
