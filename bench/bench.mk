# bench/bench.mk - the store benchmark (included by the top Makefile; uses its CFLAGS_ALL, B and LIB).
#
#   make bench/lsmbench          build the store benchmark (bench/lsmbench.c + $(B)/libstore.a)
#   make bench-store             install the baseline engines if missing (root), then
#                                bench/run_store.sh $(BENCH_REPS): lsmfs vs LevelDB vs RocksDB
#   make bench-store BENCH_REPS=1  /  BENCH_QUICK=1 make bench-store   shorter runs
# Results go to $(OUT) (default /tmp/lsmfs-bench): raw.tsv, summary.md, logs/.

BENCH_REPS ?= 3
# Baselines: RocksDB and LevelDB C APIs for ../shared/bench/kv/kvbench.c, db_bench from rocksdb-tools.
BENCH_STORE_PKGS := librocksdb-dev libleveldb-dev rocksdb-tools

.PHONY: bench-store bench-store-deps

# The object goes through the Makefile's $(B)/%.o rule, so its .d file is picked up like the others.
bench/lsmbench: $(B)/bench/lsmbench.o $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $(B)/bench/lsmbench.o $(LIB) $(LDLIBS_STORE)

bench-store-deps:
	@missing=""; \
	for p in $(BENCH_STORE_PKGS); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || \
			missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "bench-store: missing packages:$$missing (run as root, or install them)" >&2; exit 1; \
		fi; \
		echo "bench-store: installing$$missing" >&2; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $$missing >/dev/null || \
			{ apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; }; \
	fi

bench-store: bench-store-deps bench/lsmbench
	bash bench/run_store.sh $(BENCH_REPS)
