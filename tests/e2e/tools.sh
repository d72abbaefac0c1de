#!/bin/bash
# tools.sh - real tools on a real lsmfs mount: cp -a, tar, rsync, git, sqlite3, find/du/df, links,
# renames, sparse files, fallocate, xattrs, mmap, open-unlinked files, concurrent appends, running a
# binary from the mount; then unmount + remount shows the same tree.
. "$(dirname "$0")/lib.sh"
e2e_setup
HELPER=${FSHELPER:-$E2E_ROOT/build/tests/fshelper}
mount_fs || exit 1
M=$MNT
# A smaller tree of a few thousand real files for the tools that copy it several times.
SRC=$E2E_TMP/src
mkdir -p "$SRC"
for d in linux asm-generic x86_64-linux-gnu c++ python3.11 openssl X11 sound rdma unicode; do
	[ -e "/usr/include/$d" ] && cp -a "/usr/include/$d" "$SRC/"
done

# A manifest of a tree: path, type, mode, size, link count, mtime (ns), content checksum.
manifest() {
	(cd "$1" && find . -printf '%p %y %m %s %n %T@\n' | sort | while read -r p y m s n t; do
		sum=-
		[ "$y" = f ] && sum=$(md5sum <"$p" | cut -c1-32)
		[ "$y" = l ] && sum=$(readlink "$p")
		echo "$p $y $m $s $n $t $sum"
	done)
}

check "cp -a /usr/include" cp -a /usr/include "$M/usrinc"
check "diff -r after cp -a" diff -r --no-dereference /usr/include "$M/usrinc"
check "modes and times kept by cp -a" bash -c "diff <(cd /usr/include && find . -printf '%p %m %T@\n' | sort) <(cd $M/usrinc && find . -printf '%p %m %T@\n' | sort)"
check "cp -a of the test tree" cp -a "$SRC" "$M/include"

check "tar create from the mount" tar -C "$M" -cf "$E2E_TMP/inc.tar" include
mkdir -p "$M/untar"
check "tar extract onto the mount" tar -C "$M/untar" -xf "$E2E_TMP/inc.tar"
check "tar round trip identical" diff -r --no-dereference "$SRC" "$M/untar/include"

check "rsync -a" rsync -a "$SRC/" "$M/rs/"
out=$(rsync -a --itemize-changes "$SRC/" "$M/rs/")
if [ -z "$out" ]; then ok "second rsync -a transfers nothing"; else fail "second rsync -a transferred: $(echo "$out" | head -5)"; fi

# git on a few thousand files.
mkdir -p "$M/repo"
cp -a "$SRC/." "$M/repo/"
check "git init/add/commit" bash -c "cd $M/repo && git init -q && git config gc.autoDetach false && git add -A && git -c user.name=t -c user.email=t@t commit -qm one"
check "git status clean" bash -c "cd $M/repo && test -z \"\$(git status --porcelain)\""
check "git gc + fsck" bash -c "cd $M/repo && git gc -q && git fsck --no-progress"
nfiles=$(cd "$M/repo" && git ls-files | wc -l)
[ "$nfiles" -ge 1000 ] && ok "git tracks $nfiles files" || fail "git tracks only $nfiles files"

# sqlite3 with a rollback journal and with WAL.
for mode in DELETE WAL; do
	db=$M/db-$mode.sqlite
	check "sqlite3 journal_mode=$mode inserts" bash -c "
		sqlite3 $db 'PRAGMA journal_mode=$mode; CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);' >/dev/null &&
		for i in \$(seq 1 20); do
			sqlite3 $db \"BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<500)
				INSERT INTO t(b) SELECT printf('row %d %d', x, \$i) || hex(randomblob(40)) FROM c; COMMIT;\" || exit 1
		done"
	n=$(sqlite3 "$db" 'SELECT count(*) FROM t')
	ic=$(sqlite3 "$db" 'PRAGMA integrity_check')
	[ "$n" = 10000 ] && [ "$ic" = ok ] && ok "sqlite3 $mode: 10000 rows, integrity ok" || fail "sqlite3 $mode: $n rows, $ic"
done

# find, du, df.
cnt_mount=$(find "$M/usrinc" | wc -l)
cnt_src=$(find /usr/include | wc -l)
[ "$cnt_mount" = "$cnt_src" ] && ok "find sees $cnt_mount entries" || fail "find: $cnt_mount vs $cnt_src"
check "du" du -s "$M/usrinc"
check "df" bash -c "df -P $M | tail -1 | awk '{exit !(\$2 > 0)}'"
check "df -i" bash -c "df -iP $M | tail -1 | awk '{exit !(\$3 > 0)}'"

# Links and symlinks.
echo content >"$M/f"
ln "$M/f" "$M/hard"
ln -s f "$M/sym"
ln -s /nonexistent/target "$M/dangling"
check "hard link count 2" test "$(stat -c %h "$M/f")" = 2
check "hard link shares the inode" test "$(stat -c %i "$M/f")" = "$(stat -c %i "$M/hard")"
check "symlink resolves" test "$(cat "$M/sym")" = content
check "dangling symlink reads back" test "$(readlink "$M/dangling")" = /nonexistent/target
rm "$M/f"
check "link count 1 after rm" test "$(stat -c %h "$M/hard")" = 1
check "content through the other link" test "$(cat "$M/hard")" = content
mkdir -p "$M/dn/a" "$M/dn/b"
check "directory nlink 2 + subdirs" test "$(stat -c %h "$M/dn")" = 4

# Helper checks (C): rename cases, sparse/truncate/seek, fallocate, times, mmap, unlinked, appends.
for c in rename sparse fallocate times mmap unlinked append; do
	mkdir -p "$M/h-$c"
	check "fshelper $c" "$HELPER" "$c" "$M/h-$c"
done

# xattrs.
touch "$M/x"
check "setfattr" setfattr -n user.color -v blue "$M/x"
check "getfattr" bash -c "getfattr --only-values -n user.color $M/x | grep -qx blue"
check "listxattr" bash -c "getfattr -d $M/x | grep -q user.color"
check "removexattr" setfattr -x user.color "$M/x"
check "xattr gone" bash -c "! getfattr -n user.color $M/x 2>/dev/null"

# Execute a binary copied onto the mount.
cp /bin/true "$M/true-copy"
cp /bin/echo "$M/echo-copy"
check "run a binary from the mount" "$M/true-copy"
check "binary output" test "$("$M/echo-copy" hello)" = hello

# Unmount + remount: the same tree.
before=$(manifest "$M")
remount_fs || { fail "remount"; e2e_done; }
after=$(manifest "$M")
if [ "$before" = "$after" ]; then
	ok "remount shows the same tree ($(echo "$before" | wc -l) entries: content, modes, sizes, links, times)"
else
	fail "tree differs after remount"
	diff <(echo "$before") <(echo "$after") | head -10
fi
check "git fsck after remount" bash -c "cd $M/repo && git fsck --no-progress"
check "sqlite integrity after remount" bash -c "test \"\$(sqlite3 $M/db-WAL.sqlite 'PRAGMA integrity_check')\" = ok"

# rm -rf everything, then the store shrinks back.
check "rm -rf" rm -rf "$M/usrinc" "$M/include" "$M/untar" "$M/rs" "$M/repo"
check "emptied dirs gone" test ! -e "$M/include"
umount_fs || fail "clean unmount"
e2e_done
