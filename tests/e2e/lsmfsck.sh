#!/bin/bash
# lsmfsck.sh - tools/lsmfsck on real stores: a tree made with cp -a through the mount checks clean (also
# while mounted, read-only); --stats counts equal what find sees; --ls/--stat/--cat/--dump-* read the
# store without a mount; stores with known damage (byte flip in a table, truncated table, deleted table,
# dangling entry, wrong link counts, unattached inode, blocks past EOF, a damaged log record in the middle,
# a torn log tail, a file nothing refers to) give the exact problem line and exit code; --repair fixes the
# fixable ones and a second check exits 0; usage errors exit 16.
. "$(dirname "$0")/lib.sh"
e2e_setup
FSCK=$E2E_ROOT/tools/lsmfsck
DAMAGE=$E2E_ROOT/build/tools/fsck_damage
if [ ! -x "$FSCK" ] || [ ! -x "$DAMAGE" ]; then
	make -C "$E2E_ROOT" -s tools/lsmfsck build/tools/fsck_damage >/dev/null 2>&1 || { fail "build lsmfsck"; e2e_done; }
fi
OUT=$E2E_TMP/fsck.out
CLEAN=$E2E_TMP/clean
W=$E2E_TMP/work
# Where a problem's key lives, as lsmfsck prints it.
LOC_TABLE='\([0-9]{6}\.sst level [0-9], block at [0-9]+\)'

# fsck ARGS...: run lsmfsck, output in $OUT, exit code in $RC.
fsck() { "$FSCK" "$@" >"$OUT" 2>&1; RC=$?; }
show() { sed 's/^/     /' "$OUT" | head -25; }
expect_rc() { # expect_rc WHAT WANT
	if [ "$RC" -eq "$2" ]; then ok "$1: exit $RC"; else fail "$1: exit $RC, want $2"; show; fi
}
# re LITERAL: the text as an extended regular expression.
re() { printf '%s' "$1" | sed 's/[][\.|$(){}?+*^/]/\\&/g'; }
expect_line() { # expect_line WHAT REGEX: one whole line of $OUT matches
	if grep -Eqx -- "$2" "$OUT"; then ok "$1"; else fail "$1: no line matching: $2"; show; fi
}
fresh() { rm -rf "$W"; cp -a "$CLEAN" "$W"; }
# tables: a copy whose writes are all in tables (a read-write open flushes the log).
tables() { fresh; "$DAMAGE" "$W" flush; }
ino_of() { "$FSCK" --stat "$1" "$CLEAN" | awk '/^inode:/ {print $2}'; }
# check_repair WHAT: --repair exits 1 (all fixed), then a second check exits 0.
check_repair() {
	fsck -y "$W"; expect_rc "$1: --repair" 1
	fsck "$W"; expect_rc "$1: check after --repair" 0
}

# ---- a clean store made by real tools
mount_fs || exit 1
M=$MNT
cp -a /usr/include/linux "$M/linux"
mkdir -p "$M/a/b/c" "$M/a/empty"
echo "0123456789" | head -c 10 >"$M/a/small"
echo hello >"$M/a/f"
ln "$M/a/f" "$M/a/f2"
ln -s ../linux/fs.h "$M/a/link"
mkfifo "$M/a/fifo"
dd if=/dev/urandom of="$M/a/sparse" bs=4096 seek=100 count=1 status=none
touch "$M/a/prealloc" && fallocate -n -l 1M "$M/a/prealloc"
setfattr -n user.one -v 1 "$M/a/f"
setfattr -n user.two -v 2 "$M/a/f"
setfattr -n user.dir -v d "$M/a/b"
cp "$M/a/sparse" "$E2E_TMP/sparse.copy"

fsck "$STORE"
expect_rc "check of a mounted store" 0
expect_line "mounted store: note that the live log may be ahead" 'note\[mounted\]: the store is in use \(mounted\?\): checking it read-only; the live write-ahead log may be ahead of what this check saw, and files may change under it'
fsck --repair "$STORE"
expect_rc "--repair of a mounted store refused" 8
expect_line "--repair of a mounted store says why" "lsmfsck: $(re "$STORE") is in use by another process \(mounted\?\): refusing to repair it; unmount it first"

# --stats counts against what find sees on the mounted tree.
"$FSCK" --stats --json "$STORE" >"$E2E_TMP/stats.json" 2>/dev/null
got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=d["keys"]; t=k["inodes_by_type"]
print(k["inodes"], t["directory"], t["regular"], t["symlink"], t["fifo"], k["dirents"], k["blocks"], k["xattrs"])' "$E2E_TMP/stats.json")
inodes=$(find "$M" -printf '%i\n' | sort -u | wc -l)
dirs=$(find "$M" -type d | wc -l)
regs=$(find "$M" -type f -printf '%i\n' | sort -u | wc -l)
links=$(find "$M" -type l | wc -l)
fifos=$(find "$M" -type p | wc -l)
dirents=$(find "$M" -mindepth 1 | wc -l)
# Stored blocks: every 4 KiB block of the dense files, one for the sparse file, none for the
# preallocated one (fallocate -n stores nothing past EOF).
dense=$(find "$M" -type f ! -name sparse ! -name prealloc -printf '%i %s\n' | sort -u |
	awk '{n += int(($2 + 4095) / 4096)} END {print n + 0}')
blocks=$((dense + 1))
# (each inode once: hard links share their attributes)
xattrs=$(find "$M" -printf '%i %p\n' | sort -n -u -k1,1 | cut -d' ' -f2- |
	xargs -d '\n' getfattr -h -d -m - --absolute-names 2>/dev/null | grep -c '^[^#].*=')
want="$inodes $dirs $regs $links $fifos $dirents $blocks $xattrs"
if [ "$got" = "$want" ]; then ok "--stats counts equal find's (inodes dirs files symlinks fifos entries blocks xattrs: $got)"
else fail "--stats counts $got, find sees $want"; fi
check "--stats text mode" bash -c "'$FSCK' --stats '$STORE' | grep -q '^space: .* space amplification'"

# An open, unlinked file is an orphan awaiting reclaim: a note, not an error.
echo pending >"$M/a/open-unlinked"
exec 3<"$M/a/open-unlinked"
rm "$M/a/open-unlinked"
fsck "$STORE"
expect_rc "open-unlinked file while mounted" 0
expect_line "open-unlinked file is a pending orphan" 'note\[orphan-pending\]: inode [0-9]+ \(regular file\) was unlinked while open: the next mount reclaims it'
exec 3<&-
umount_fs || fail "unmount"
# (the kernel sends the file's release asynchronously: it can arrive after the unmount began, leaving
# the orphan for the next mount to reclaim; mount once more so that the store below is clean for sure)
mount_fs && umount_fs || fail "remount to reclaim the orphan"

fsck "$STORE"
expect_rc "check of a cp -a tree after unmount" 0
expect_line "summary says clean" "lsmfsck: $(re "$STORE"): clean, 0 notes"
cp -a "$STORE" "$CLEAN"
check "no progress or other stderr output when stderr is not a terminal" bash -c "[ -z \"\$('$FSCK' '$CLEAN' 2>&1 >/dev/null)\" ]"
check "--quiet on a clean store prints nothing" bash -c "[ -z \"\$('$FSCK' --quiet '$CLEAN' 2>&1)\" ]"
fsck --json "$STORE"
expect_rc "--json check" 0
check "--json is one JSON object with errors 0" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["errors"] == 0 and d["fs_checked"]' "$OUT"

# ---- inspection without a mount
check "--cat of a file equals the original" cmp <("$FSCK" --cat /linux/fs.h "$CLEAN") /usr/include/linux/fs.h
check "--cat of a sparse file" cmp <("$FSCK" --cat /a/sparse "$CLEAN") "$E2E_TMP/sparse.copy"
fsck --ls /a "$CLEAN"
expect_line "--ls lists a symlink with its target" '.*[0-9]+ link -> \.\./linux/fs\.h'
expect_line "--ls lists a hard-linked file" '-rw-r--r--   2 .* f2'
fsck --stat /a/f "$CLEAN"
expect_line "--stat shows links and xattrs" 'links:   2'
expect_line "--stat lists xattrs" 'xattrs:  2 user\.one\(1 bytes\) user\.two\(1 bytes\)'
fsck --dump-key 'd|1|"a"' "$CLEAN"
expect_line "--dump-key decodes an entry" "  .*: seqno [0-9]+ put -> inode $(ino_of /a) type 4"
fsck --ls /nonexistent "$CLEAN"
expect_rc "--ls of a missing path" 8
if [ -w /dev/full ]; then
	"$FSCK" --cat /linux/fs.h "$CLEAN" >/dev/full 2>"$OUT"; RC=$?
	expect_rc "--cat to a full device" 8
	expect_line "--cat to a full device: says why" 'lsmfsck: writing the output: No space left on device'
fi

# ---- damaged stores
SMALL=$(ino_of /a/small)
F=$(ino_of /a/f)
A=$(ino_of /a)

fresh; "$DAMAGE" "$W" put-dirent 1 ghost 999999 8
fsck "$W"; expect_rc "dangling entry" 4
expect_line "dangling entry: problem line" "$(re 'error[dangling-entry]: d|1|"ghost": names inode 999999, which does not exist') $LOC_TABLE"
fsck --quiet "$W"
check "dangling entry: --quiet prints only the problem line" bash -c "[ \$(wc -l <'$OUT') = 1 ] && grep -q '^error\\[dangling-entry\\]' '$OUT'"
fsck -y "$W"
expect_line "dangling entry: fixed" "$(re 'error[dangling-entry]: d|1|"ghost": names inode 999999, which does not exist') $LOC_TABLE; fixed: entry deleted"
fsck "$W"; expect_rc "dangling entry: check after --repair" 0

fresh; "$DAMAGE" "$W" set-inode "$F" nlink 5; "$DAMAGE" "$W" set-inode "$A" nlink 9
fsck "$W"; expect_rc "wrong nlink" 4
expect_line "wrong nlink of a file" "$(re "error[nlink]: i|$F: link count is 5, should be 2 (entries naming it)") $LOC_TABLE"
expect_line "wrong nlink of a directory" "$(re "error[nlink]: i|$A: link count is 9, should be 4 (2 + subdirectories)") $LOC_TABLE"
check_repair "wrong nlink"

fresh; "$DAMAGE" "$W" new-inode 777777 100644 1 0
fsck "$W"; expect_rc "unattached inode" 4
expect_line "unattached inode: problem line" "$(re 'error[unattached]: i|777777: regular file with 1 link(s) that no entry names') $LOC_TABLE"
expect_line "unattached inode: stale allocator" "$(re 'error[alloc-stale]: N: next inode number ')[0-9]+$(re ' is not above the largest in use (777777)') $LOC_TABLE"
fsck -y "$W"
expect_line "unattached inode: moved to lost+found" ".*; fixed: linked as /lost\+found/#777777"
fsck "$W"; expect_rc "unattached inode: check after --repair" 0
fsck --ls /lost+found "$W"
expect_line "unattached inode is /lost+found/#777777" '.* 777777 #777777'

fresh; "$DAMAGE" "$W" put-block "$SMALL" 3 100; "$DAMAGE" "$W" put-block "$SMALL" 0 4096
fsck "$W"; expect_rc "blocks past EOF" 4
expect_line "block starting past EOF" "$(re "error[block-past-eof]: b|$SMALL|3: block 3 (100 bytes) starts past the end of the file (size 10)") $LOC_TABLE"
expect_line "block reaching past EOF" "$(re "error[block-past-eof]: b|$SMALL|0: block 0 holds 4096 bytes, 4086 past the end of the file (size 10)") $LOC_TABLE"
check_repair "blocks past EOF"
check "blocks past EOF: the file reads its 10 bytes" bash -c "[ \"\$('$FSCK' --cat /a/small '$W')\" = zzzzzzzzzz ]"

fresh; "$DAMAGE" "$W" put-orphan 555555
fsck "$W"; expect_rc "orphan record of a missing inode" 4
expect_line "orphan record: problem line" "$(re 'error[orphan-stale]: o|555555: orphan list names inode 555555, which does not exist') $LOC_TABLE"
check_repair "orphan record"

# A directory cycle: /a/b moved under its own child /a/b/c (unreachable from the root).
B=$(ino_of /a/b); C=$(ino_of /a/b/c)
fresh; "$DAMAGE" "$W" del 'd|'"$A"'|"b"'; "$DAMAGE" "$W" put-dirent "$C" b2 "$B" 4
fsck "$W"; expect_rc "directory cycle" 4
expect_line "directory cycle: problem line" "$(re "error[dir-cycle]: i|$B: directory $B is in a cycle of directories, not reachable from /") $LOC_TABLE"
expect_line "directory cycle: parent lost a subdirectory" "$(re "error[nlink]: i|$A: link count is 4, should be 3 (2 + subdirectories)") $LOC_TABLE"
fsck -y "$W"
expect_line "directory cycle: moved to lost+found" ".*dir-cycle.*; fixed: moved to /lost\+found"
fsck "$W"; expect_rc "directory cycle: check after --repair" 0
check "directory cycle: the subtree is under /lost+found" bash -c "'$FSCK' --ls /lost+found/#$B '$W' | grep -q ' c\$'"

# A superblock with a block size lsmfs never writes: an error; --cat reads with 4096 (what it was).
fresh; "$DAMAGE" "$W" set-block-size 3000
fsck "$W"; expect_rc "invalid block size" 4
expect_line "invalid block size: problem line" "$(re 'error[bad-superblock]: S: block size 3000 is invalid (4096 assumed)') $LOC_TABLE"
"$FSCK" --cat /a/sparse "$W" >"$E2E_TMP/cat.out" 2>"$OUT"; RC=$?
expect_rc "invalid block size: --cat" 0
expect_line "invalid block size: --cat says so" "lsmfsck: the superblock's block size 3000 is invalid: 4096 assumed \(run lsmfsck $(re "$W")\)"
check "invalid block size: --cat reads the file" cmp "$E2E_TMP/cat.out" "$E2E_TMP/sparse.copy"

# A table with a flipped byte, a truncated table, a deleted table: reported, not repairable.
tables; T=$(ls -S "$W"/*.sst | head -1); TN=$(basename "$T")
printf '\377' | dd of="$T" bs=1 seek=100 conv=notrunc status=none
fsck "$W"; expect_rc "byte flip in a table block" 4
expect_line "byte flip: problem line" "$(re "error[table-corrupt]: $TN (level ")[0-9]$(re "): corruption in $T at offset 0: block checksum mismatch (stored ")[0-9a-f]+, computed [0-9a-f]+\)"
fsck -y "$W"; expect_rc "byte flip: --repair leaves it" 4
tables; T=$(ls -S "$W"/*.sst | head -1); TN=$(basename "$T")
truncate -s -100 "$T"
fsck "$W"; expect_rc "truncated table" 4
expect_line "truncated table: problem line" "$(re "error[table-corrupt]: $TN (level ")[0-9]$(re "): corruption in $T at offset ")[0-9]+$(re ": bad magic number: not a table, or truncated")"
tables; T=$(ls -S "$W"/*.sst | head -1); TN=$(basename "$T")
rm "$T"
fsck "$W"; expect_rc "deleted table file" 4
expect_line "deleted table: problem line" "$(re "error[table-missing]: $TN (level ")[0-9]$(re ") is named by the manifest but missing")"

# A manifest whose first record is damaged: reported, nothing repaired (no file is taken for an orphan).
tables; MF=$(ls "$W"/MANIFEST-*)
printf 'Z' | dd of="$MF" bs=1 seek=0 conv=notrunc status=none
fsck "$W"; expect_rc "damaged manifest" 4
# (damage the first record read as a torn tail leaves the manifest without its required fields;
# damage a later record vouches for is corruption at that offset)
expect_line "damaged manifest: problem line" "$(re "error[manifest-corrupt]: ")($(re "$(basename "$MF") lacks ").* $(re "(its first records are damaged or missing)")|$(re "corruption in $MF at offset 0: bad record checksum or header (a later record says these bytes had been synced)"))"
fsck -y "$W"; expect_rc "damaged manifest: --repair leaves it" 4
check "damaged manifest: no table deleted" bash -c "ls '$W'/*.sst >/dev/null"

# A damaged log record that a later synced record vouches for: corruption (the daemon refuses the store);
# --repair opens with the store's repair option, which skips it.
fresh; set -- $("$DAMAGE" "$W" wal-two-batches); LOG=$1; OFF=$2
printf 'U' | dd of="$W/$LOG" bs=1 seek=$((OFF + 30)) conv=notrunc status=none
fsck "$W"; expect_rc "log damaged in the middle" 4
expect_line "damaged log record: problem line" "$(re "error[wal-corrupt]: corruption in $W/$LOG at offset $OFF: bad record checksum or header (a later record says these bytes had been synced)")"
fsck -y "$W"
expect_line "damaged log record: skipped" "$(re 'note[wal-skipped]: skipped 1 damaged log record(s), ')[0-9]+ bytes"
fsck "$W"; expect_rc "damaged log: check after --repair" 0

# A torn tail (bytes of a write never synced) is a note, not an error.
fresh; LOG=$(ls "$W"/*.log | tail -1)
SZ=$(stat -c %s "$LOG")
head -c 40 /dev/urandom >>"$LOG"
fsck "$W"; expect_rc "torn log tail" 0
expect_line "torn log tail: note" "$(re "note[wal-torn-tail]: $(basename "$LOG") ends in a torn record at $SZ (40 bytes never synced; discarded at open, not an error)")"

# Blob files: every reference a table holds is read back and checked; a damaged blob value is an error
# naming the blob file and offset. (Small memtables: the file's blocks reach tables as references.)
SAVE=$STORE; STORE=$E2E_TMP/blobstore
mount_fs -o write_buffer=256K || fail "mount a store for blob files"
dd if=/dev/urandom of="$MNT/big" bs=1M count=2 status=none
umount_fs || fail "unmount the blob store"
BS=$STORE; STORE=$SAVE
fsck "$BS"; expect_rc "store with blob files" 0
expect_line "blob references counted" "lsmfsck: checked .*, [0-9]+ blob files? \([0-9]+ bytes; [1-9][0-9]* references to [0-9]+ value bytes checked\).*"
check "--stats counts blob files in the bytes on disk (2 MiB written)" bash -c \
	"'$FSCK' --stats '$BS' | grep -qE '^space: tables [0-9]+ \+ blob files [0-9]{7,} \+ logs'"
B=$(ls "$BS"/*.blob | head -1)
printf '\377' | dd of="$B" bs=1 seek=100 conv=notrunc status=none
fsck "$BS"; expect_rc "byte flip in a blob file" 4
expect_line "blob byte flip: problem line" "$(re "error[table-corrupt]: ").*$(re "corruption in $B at offset ")[0-9]+$(re ": blob record checksum mismatch")"

# A table nothing refers to.
tables; T=$(ls "$W"/*.sst | head -1); cp "$T" "$W/999999.sst"
# What a crash leaves behind (an interrupted flush's table) is a note, not an error.
fsck "$W"; expect_rc "file nothing refers to" 0
expect_line "orphan file: note" "$(re "note[orphan-file]: 999999.sst (table, $(stat -c %s "$T") bytes) is not live: nothing refers to it (left by a crash; the next mount or --repair deletes it)")"
fsck -y "$W"; expect_rc "orphan file: --repair" 0
check "orphan file: deleted by --repair" test ! -e "$W/999999.sst"

# The repaired stores mount and read.
fresh; "$DAMAGE" "$W" new-inode 777777 100644 1 0; "$DAMAGE" "$W" set-inode "$F" nlink 1
"$FSCK" -y "$W" >/dev/null 2>&1
STORE=$W
mount_fs || fail "mount a repaired store"
check "repaired store: lost+found entry readable" test -f "$MNT/lost+found/#777777"
check "repaired store: hard link count back to 2" bash -c "[ \$(stat -c %h '$MNT/a/f') = 2 ]"
umount_fs || fail "unmount the repaired store"
fsck "$W"; expect_rc "repaired store after a mount" 0

# ---- a mounted store that changes under the check: a writer overwrites files (a flush every 256 KiB,
# compactions all the time, logs and tables deleted while the check reads them); every check exits 0.
STORE=$E2E_TMP/busy
mount_fs -o write_buffer=256K || fail "mount a store for the busy check"
mkdir -p "$MNT/w"
cp -a /usr/include/linux "$MNT/w/linux"
rm -f "$E2E_TMP/stop"
(
	i=0
	while [ ! -e "$E2E_TMP/stop" ]; do
		i=$((i + 1))
		dd if=/dev/urandom of="$MNT/w/f$((i % 64))" bs=64k count=$((1 + i % 8)) status=none 2>/dev/null || break
		if [ $((i % 16)) = 0 ]; then mkdir -p "$MNT/w/d$i"; touch "$MNT/w/d$i/x"; rm -rf "$MNT/w/d$((i - 32))"; fi
	done
) &
WRITER=$!
sleep 0.5
busy_fail=0; busy_retried=0
for n in $(seq 1 20); do
	fsck "$STORE"
	grep -q '^note\[store-changed\]: the running store changed what the check read' "$OUT" && busy_retried=$((busy_retried + 1))
	if [ "$RC" -ne 0 ]; then busy_fail=$((busy_fail + 1)); echo "     check $n of the busy store: exit $RC"; show; fi
done
touch "$E2E_TMP/stop"
wait "$WRITER"
[ "$busy_fail" = 0 ] && ok "20 checks of a mounted store under constant flushes and compactions: all exit 0 ($busy_retried checked again)" ||
	fail "$busy_fail of 20 checks of a busy mounted store did not exit 0"
fsck "$STORE"; expect_rc "the busy store, writer stopped, still mounted" 0
umount_fs || fail "unmount the busy store"
fsck "$STORE"; expect_rc "the busy store after unmount" 0

# ---- usage
fsck; expect_rc "no STORE_DIR" 16
fsck --bogus "$CLEAN"; expect_rc "unknown option" 16
fsck --ls; expect_rc "--ls without its argument" 16
fsck --repair --stats "$CLEAN"; expect_rc "--repair with --stats" 16
fsck --stats --ls / "$CLEAN"; expect_rc "two modes" 16
fsck "$CLEAN" extra; expect_rc "extra argument" 16
fsck "$E2E_TMP/nothing-here"; expect_rc "missing store" 8
expect_line "missing store: says why" "lsmfsck: cannot open $(re "$E2E_TMP/nothing-here"): No such file or directory"
fsck "$E2E_TMP/sparse.copy"; expect_rc "a regular file for STORE_DIR" 8
expect_line "a regular file for STORE_DIR: says why" "lsmfsck: cannot open $(re "$E2E_TMP/sparse.copy"): not a directory"
mkdir "$E2E_TMP/empty-dir"
fsck "$E2E_TMP/empty-dir"; expect_rc "a directory that holds no store" 8
expect_line "no store: says why" "lsmfsck: $(re "$E2E_TMP/empty-dir") holds no store \(no CURRENT file\)"
expect_line "no store: summary says not checked" "lsmfsck: $(re "$E2E_TMP/empty-dir"): not checked, 0 notes \(stopped by an operational error\)"
fsck --help; expect_rc "--help" 0
for o in --repair --yes --quiet --json --stats --ls --stat --cat --dump-key --dump-table --dump-log --help; do
	grep -q -- "$o" "$OUT" || fail "--help does not mention $o"
done
e2e_done
