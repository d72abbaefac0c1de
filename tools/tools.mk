# tools/tools.mk - tools/lsmfsck (included by the top Makefile; uses its CFLAGS_ALL, B and LIB).
#
#   make tools/lsmfsck        check / inspect / repair a store (docs/lsmfsck.md)
#   $(B)/tools/fsck_damage    test helper: writes known damage into a store (tests/e2e/lsmfsck.sh)

LSMFSCK_SRC := tools/lsmfsck.c tools/fsck_report.c tools/fsck_store.c tools/fsck_fs.c tools/fsck_inspect.c
LSMFSCK_OBJ := $(LSMFSCK_SRC:%.c=$(B)/%.o) $(B)/tools/schema.o

.PHONY: tools-clean
all: tools/lsmfsck $(B)/tools/fsck_damage

# The tools reach the store only through lsm.h and lsm_inspect.h, and the filesystem through its schema
# codec (compiled here without FUSE flags: schema.c has no FUSE dependency).
$(B)/tools/%.o: tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Istore -Ifs -c $< -o $@

$(B)/tools/schema.o: fs/schema.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ifs -c $< -o $@

tools/lsmfsck: $(LSMFSCK_OBJ) $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $(LSMFSCK_OBJ) $(LIB) $(LDLIBS_STORE)

$(B)/tools/fsck_damage: $(B)/tools/fsck_damage.o $(B)/tools/schema.o $(LIB)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_STORE)

tools-clean:
	rm -f tools/lsmfsck $(B)/tools/*.o $(B)/tools/*.d $(B)/tools/fsck_damage
clean: tools-clean

# The end-to-end tests run lsmfsck and the damage helper.
e2e: tools/lsmfsck $(B)/tools/fsck_damage
