# lsmfs - a FUSE filesystem on an LSM tree of its own.
#
#   make            build the store library, ./lsmfs, tools/lsmfsck and bench/lsmbench
#   make test       install missing build packages (root, apt-get), build, run every test
#   make unit       unit tests only (Check)
#   make asan       unit tests under ASan+UBSan (build-asan/)
#   make stress     long randomized and crash tests
#   make bench-store / make bench   benchmarks (install their own extra packages)

CC      ?= cc
OPT     ?= -O2 -g
SAN     ?=
B       ?= build
WARN    := -Wall -Wextra -Werror
CFLAGS_ALL = -std=c11 $(WARN) $(OPT) $(SAN) -D_GNU_SOURCE -pthread -fno-strict-aliasing -MMD -MP
LDLIBS_STORE = -lxxhash -lpthread

FUSE_CFLAGS  = $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS    = $(shell pkg-config --libs fuse3 2>/dev/null)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

STORE_SRC := $(wildcard store/*.c)
STORE_OBJ := $(STORE_SRC:%.c=$(B)/%.o)
SCHEMA_SRC := fs/schema.c
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_OBJ  := $(UNIT_SRC:%.c=$(B)/%.o) $(B)/tests/unit/main.o $(B)/tests/unit/testutil.o

LIB := $(B)/libstore.a
FS_SRC := $(wildcard fs/*.c)
FS_OBJ := $(FS_SRC:%.c=$(B)/%.o)

.PHONY: all test unit asan stress deps clean bench-store bench e2e e2e-asan
all: $(LIB) lsmfs $(B)/tests/unit_tests

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Istore -c $< -o $@

$(B)/fs/%.o: fs/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(FUSE_CFLAGS) -Istore -Ifs -c $< -o $@

# The daemon sits at the top of the tree so that `./lsmfs STORE MOUNTPOINT` works after `make`.
lsmfs: $(FS_OBJ) $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $(FS_OBJ) $(LIB) $(FUSE_LIBS) $(LDLIBS_STORE)

$(LIB): $(STORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# Test suites register themselves by file name: tests/unit/test_NAME.c defines NAME_suite().
$(B)/tests/unit/suites.inc: $(UNIT_SRC)
	@mkdir -p $(dir $@)
	@for f in $(UNIT_SRC); do n=$$(basename $$f .c); echo "SUITE($${n#test_})"; done > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(B)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(CHECK_CFLAGS) -Istore -Ifs -Itests/unit -I$(B)/tests/unit -c $< -o $@

$(B)/tests/unit/main.o: $(B)/tests/unit/suites.inc

$(B)/tests/unit_tests: $(UNIT_OBJ) $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $(UNIT_OBJ) $(LIB) $(CHECK_LIBS) $(LDLIBS_STORE)

unit: $(B)/tests/unit_tests
	$(B)/tests/unit_tests

deps:
	@sh tests/install-deps.sh

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e

# End-to-end tests on a real FUSE mount (need /dev/fuse; each mounts under its own temp dir).
E2E_HELPERS := $(B)/tests/fshelper $(B)/tests/fsmodel $(B)/tests/crashload
# The crash workload also applies power-loss journals, so it links the store.
$(B)/tests/crashload: tests/e2e/crashload.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Istore -o $@ $< $(LIB) $(LDLIBS_STORE)
$(B)/tests/%: tests/e2e/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $<

e2e: lsmfs $(E2E_HELPERS)
	@fail=0; for t in tests/e2e/*.sh; do [ "$$t" = tests/e2e/lib.sh ] && continue; \
		echo "== $$t"; FSHELPER=$(CURDIR)/$(B)/tests/fshelper FSMODEL=$(CURDIR)/$(B)/tests/fsmodel \
		CRASHLOAD=$(CURDIR)/$(B)/tests/crashload bash $$t || fail=1; done; exit $$fail

# The daemon under ASan+UBSan through the end-to-end tests.
e2e-asan:
	$(MAKE) B=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" lsmfs-asan
	LSMFS=$(CURDIR)/lsmfs-asan ASAN_OPTIONS=detect_leaks=1:log_path=$(CURDIR)/build-asan/asan \
		$(MAKE) e2e
	@if ls build-asan/asan.* >/dev/null 2>&1; then echo "sanitizer reports:"; cat build-asan/asan.*; exit 1; fi
	@echo "e2e-asan: no sanitizer reports"

lsmfs-asan: $(FS_OBJ) $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $(FS_OBJ) $(LIB) $(FUSE_LIBS) $(LDLIBS_STORE)

# Long randomized and crash tests. STRESS_SCALE multiplies the unit tests' randomized rounds (and
# their timeouts); STRESS_CYCLES crash cycles of each kind (kill -9, power loss) on a real mount.
# It can be run in parts (e.g. STRESS_CYCLES=200 five times): every run appends its results to
# $(B)/stress.log, and the last line printed is the total over all runs logged there.
STRESS_SCALE ?= 20
STRESS_CYCLES ?= 1000
stress: all $(E2E_HELPERS)
	LSM_TEST_SCALE=$(STRESS_SCALE) CK_TIMEOUT_MULTIPLIER=$(STRESS_SCALE) $(B)/tests/unit_tests
	CRASH_CYCLES=$(STRESS_CYCLES) CRASHLOAD=$(CURDIR)/$(B)/tests/crashload \
		bash -o pipefail -c 'bash tests/e2e/crash.sh 2>&1 | tee $(B)/stress-crash.out'
	@grep '^ok   crash:' $(B)/stress-crash.out | sed "s/^/$$(date -Is) /" >> $(B)/stress.log
	@awk '{ for (i = 1; i <= NF; i++) { if ($$(i+1) == "crash" && $$(i+2) == "cycles,") c += $$i; \
		if ($$(i+1) == "operations,") o += $$i } } \
		END { printf "stress: %d crash cycles, %d operations verified over all logged runs ($(B)/stress.log)\n", c, o }' \
		$(B)/stress.log

asan:
	$(MAKE) B=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" unit

clean:
	rm -rf build build-asan lsmfs lsmfs-asan tools/lsmfsck bench/lsmbench

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# Benchmarks live in their own makefile fragment.
-include bench/bench.mk

# tools/lsmfsck: its rules live beside it.
-include tools/tools.mk

# The filesystem benchmark (make bench) lives beside the store one.
-include bench/fs.mk

# libFuzzer targets (make fuzz): their rules live beside them.
-include tests/fuzz/fuzz.mk
