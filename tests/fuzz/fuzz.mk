# tests/fuzz/fuzz.mk - libFuzzer targets for the readers of every on-disk format (included by the top
# Makefile). Not part of `make test`.
#
#   make fuzz                  build every target, write the seed corpus, run each for FUZZ_SECONDS
#   make fuzz FUZZ_SECONDS=600 FUZZ_TARGETS="table wal"
#   make fuzz-build            build only
#
# Targets (tests/fuzz/fuzz_NAME.c): wal (log records + batches), table (open, iterate, seek, get),
# manifest (replay at open), block (block decoder), schema (fs key/value decoders).
# The store is rebuilt with clang under -fsanitize=fuzzer-no-link,address,undefined in build-fuzz/.
# Seeds come from tests/fuzz/mkseeds.c (real files of a small store); each target's corpus grows in
# build-fuzz/corpus/NAME across runs; crashes land in build-fuzz/artifacts/, logs in build-fuzz/logs/.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= wal table manifest block schema
FB           := build-fuzz
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -Werror -O1 -g -fno-omit-frame-pointer -D_GNU_SOURCE -pthread \
	-fno-strict-aliasing -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_STORE_OBJ := $(STORE_SRC:%.c=$(FB)/%.o)
FUZZ_ALL     := wal table manifest block schema
FUZZ_BINS    := $(FUZZ_ALL:%=$(FB)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-seeds
# Objects reached through pattern rules only: keep them between runs.
.SECONDARY: $(FUZZ_STORE_OBJ) $(FB)/fs/schema.o

$(FB)/store/%.o: store/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -Istore -c $< -o $@

$(FB)/fs/schema.o: fs/schema.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -Istore -Ifs -c $< -o $@

$(FB)/fuzz_schema: tests/fuzz/fuzz_schema.c $(FB)/fs/schema.o
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Ifs -o $@ $^

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_STORE_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Istore -Itests/fuzz -o $@ $< $(FUZZ_STORE_OBJ) $(LDLIBS_STORE)

# The seed writer is an ordinary program on the ordinary build of the store.
$(FB)/mkseeds: tests/fuzz/mkseeds.c fs/schema.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) -O1 -g -D_GNU_SOURCE -pthread -Istore -Ifs -o $@ tests/fuzz/mkseeds.c fs/schema.c \
		$(LIB) $(LDLIBS_STORE)

fuzz-build: $(FUZZ_BINS) $(FB)/mkseeds

fuzz-seeds: $(FB)/mkseeds
	@rm -rf $(FB)/seeds
	@$(FB)/mkseeds $(FB)/seeds

# Each target: its corpus dir (grows) + the seeds; summary = libFuzzer's last status line and final stats.
fuzz: fuzz-build fuzz-seeds
	@mkdir -p $(FB)/artifacts $(FB)/logs
	@fail=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FB)/corpus/$$t; \
		case $$t in block) ml=4096;; schema) ml=1200;; *) ml=16384;; esac; \
		echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
		if ! $(FB)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
			-max_len=$$ml -print_final_stats=1 -artifact_prefix=$(FB)/artifacts/$$t- \
			$(FB)/corpus/$$t $(FB)/seeds/$$t > $(FB)/logs/$$t.log 2>&1; then \
			fail=1; echo "fuzz_$$t FAILED (see $(FB)/logs/$$t.log):"; \
			grep -E "ERROR|SUMMARY|abort|Test unit written" $(FB)/logs/$$t.log | head -8; \
		fi; \
		grep -E "^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)" $(FB)/logs/$$t.log | tail -1; \
		grep -E "stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" \
			$(FB)/logs/$$t.log | tr '\n' ' '; echo; \
		echo "corpus: $$(ls $(FB)/corpus/$$t | wc -l) files"; \
	done; exit $$fail

-include $(shell find $(FB) -name '*.d' 2>/dev/null)
