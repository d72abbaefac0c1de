# bench/fs.mk - the filesystem benchmark (included by the top Makefile).
#
#   make bench                  lsmfs against native ext4, passthrough_ll, mergerfs, bindfs and the
#                               nullfs floor: bench/run_fs_bench.sh (3 interleaved repetitions; long)
#   BENCH_QUICK=1 make bench    1 repetition, 10 k files: for iterating
# Knobs (environment): BENCH_FS_REPS, BENCH_TARGETS, BENCH_PARTS, FIO_TESTS, META_N, OUT, BASE;
# see the script's header. Results: $(OUT) (default /tmp/lsmfs-fsbench/results): raw.tsv, ratios.md.

.PHONY: bench

bench: lsmfs
	bash bench/run_fs_bench.sh
