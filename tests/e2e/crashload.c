/* crashload.c - the crash-test workload: random file and directory operations with fsyncs on a mount,
 * run until the daemon dies under it, then written down as what must have survived.
 *
 *   crashload run DIR EXPECT SEED [sync|interval=S]
 *                                          operate in DIR (created) until an operation fails because
 *                                          the daemon is gone (or 60 s pass); write EXPECT. sync: the
 *                                          mount has -o sync; interval=S: the mount syncs every S
 *                                          seconds, and the workload pauses longer than that every
 *                                          300 operations, after which all before must be durable
 *   crashload verify DIR EXPECT            check the remounted DIR against EXPECT
 *   crashload apply JOURNAL                power loss: cut the store files to what the journaling env
 *                                          recorded as durable (lsm_fault_apply_journal)
 *
 * Data written is made of 16-byte records (file id, write generation, offset), so any block of a
 * recovered file can be checked: zeros, or a record this file wrote at exactly that offset. Never
 * garbage, never another file's block.
 *
 * What must survive (lsmfs: fsync and fdatasync make every operation acknowledged before them durable;
 * -o sync makes every operation durable before it returns):
 *  - the namespace as of the last successful fsync, except names an operation touched after it;
 *  - the exact content of every file fsync'd and not written or truncated since. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "env_fault.h"

#define MAX_NAMES 256
#define MAX_FILES 4096
#define MAX_FILE_SIZE (512u << 10)
#define MAX_IDS 512
#define POOL 96 /* names per directory */
#define REC 16

struct file {
	uint32_t id;
	unsigned char *data;       /* current content, size bytes */
	uint32_t size;
	unsigned char *synced;     /* content at the last fsync if not changed since, else NULL */
	uint32_t synced_size;
	uint32_t gen;
	uint64_t ino;              /* st_ino the filesystem gave it */
};

struct name {
	char path[64];             /* relative to DIR */
	int is_dir;
	int file;                  /* index into files, -1 for dirs */
	int live;
};

struct pathinfo {
	char path[64];
	int touched;               /* changed after the last sync point: may or may not be there */
	uint32_t ids[MAX_IDS];     /* file ids ever at this name (for the garbage check) */
	int nids;
	int synced_kind;           /* at the last sync point: 0 absent, 1 file, 2 dir */
	int synced_file;
};

static struct file files[MAX_FILES];
static int nfiles;
static struct name names[MAX_NAMES];
static int nnames;
static struct pathinfo paths[4 * POOL + 8];
static int npaths;
static uint64_t rng_state;
static int sync_mode;
static double interval;    /* the daemon's sync_interval, when the workload is to test it */
static long ops_done, syncs_done;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rn(unsigned n) { return (unsigned)(rnd() % n); }

static void die(const char *what)
{
	fprintf(stderr, "crashload: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("malloc");
	return p;
}

static struct pathinfo *pinfo(const char *path)
{
	for (int i = 0; i < npaths; i++)
		if (!strcmp(paths[i].path, path))
			return &paths[i];
	if (npaths == (int)(sizeof paths / sizeof paths[0])) {
		fprintf(stderr, "crashload: too many paths\n");
		exit(2);
	}
	struct pathinfo *p = &paths[npaths++];
	memset(p, 0, sizeof *p);
	snprintf(p->path, sizeof p->path, "%s", path);
	return p;
}

static void touch(const char *path, int file)
{
	struct pathinfo *p = pinfo(path);
	p->touched = 1;
	if (file >= 0) {
		uint32_t id = files[file].id;
		for (int i = 0; i < p->nids; i++)
			if (p->ids[i] == id)
				return;
		if (p->nids == MAX_IDS) {
			fprintf(stderr, "crashload: too many files at %s\n", path);
			exit(2);
		}
		p->ids[p->nids++] = id;
	}
}

/* Namespace states. Every operation is one atomic batch in the store's ordered log, so after a crash
 * the tree must be exactly the state after some prefix of the operations since the last sync point
 * (the one in flight included): a rename is never half done, an unlinked name never comes back
 * without its file. A state maps each path (by index into paths) to what is there. */
#define ST_ABSENT 0
#define ST_ANYFILE (UINT64_MAX - 1) /* a file whose inode number is not known (create in flight) */
#define ST_DIR UINT64_MAX
#define MAX_STATES 4096
#define NPATHS (int)(sizeof paths / sizeof paths[0])
static uint64_t *states[MAX_STATES];
static int nstates, states_overflow;
static uint64_t tentative[4 * POOL + 8]; /* the operation in flight, as if it succeeded */
static int have_tentative;

static void state_now(uint64_t *out)
{
	memset(out, 0, sizeof(uint64_t) * NPATHS);
	for (int i = 0; i < nnames; i++)
		if (names[i].live) {
			int p = (int)(pinfo(names[i].path) - paths);
			out[p] = names[i].is_dir ? ST_DIR : files[names[i].file].ino;
		}
}

static void push_state(void)
{
	have_tentative = 0;
	if (nstates == MAX_STATES) {
		states_overflow = 1;
		return;
	}
	states[nstates] = xmalloc(sizeof(uint64_t) * NPATHS);
	state_now(states[nstates++]);
}

/* Before an operation's system call: what the tree is if it takes effect. */
static void tent_begin(void)
{
	state_now(tentative);
	have_tentative = 1;
}

static void tent_set(const char *path, uint64_t what)
{
	tentative[pinfo(path) - paths] = what;
}

static uint64_t path_state(const char *path)
{
	uint64_t st[4 * POOL + 8];
	state_now(st);
	return st[pinfo(path) - paths];
}

/* A sync point: everything acknowledged so far is durable. */
static void sync_point(void)
{
	for (int i = 0; i < nstates; i++)
		free(states[i]);
	nstates = 0;
	states_overflow = 0;
	push_state();
	for (int i = 0; i < npaths; i++) {
		paths[i].touched = 0;
		paths[i].synced_kind = 0;
	}
	for (int i = 0; i < nnames; i++) {
		if (!names[i].live)
			continue;
		struct pathinfo *p = pinfo(names[i].path);
		p->synced_kind = names[i].is_dir ? 2 : 1;
		p->synced_file = names[i].file;
	}
	syncs_done++;
}

static void file_synced(int f)
{
	struct file *fl = &files[f];
	free(fl->synced);
	fl->synced = xmalloc(fl->size);
	memcpy(fl->synced, fl->data, fl->size);
	fl->synced_size = fl->size;
}

static void file_changed(int f)
{
	free(files[f].synced);
	files[f].synced = NULL;
}

static void fill(unsigned char *p, uint32_t id, uint32_t gen, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i += REC) {
		uint64_t o = off + i;
		memcpy(p + i, &id, 4);
		memcpy(p + i + 4, &gen, 4);
		memcpy(p + i + 8, &o, 8);
	}
}

static char *full(const char *dir, const char *rel, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", dir, rel);
	return buf;
}

/* An operation failed: a daemon that is gone ends the run; anything else is a test failure. */
static int gone(int err)
{
	return err == ENOTCONN || err == ECONNABORTED || err == EIO || err == ENODEV;
}

static const char *dirs[] = {"d0", "d1", "d2", "d3"};

static int live_name(int want_dir)
{
	int cand[MAX_NAMES], n = 0;
	for (int i = 0; i < nnames; i++)
		if (names[i].live && names[i].is_dir == want_dir && (want_dir ? strchr(names[i].path, '/') != NULL : 1))
			cand[n++] = i;
	return n ? cand[rn(n)] : -1;
}

static int free_slot(void)
{
	for (int i = 0; i < nnames; i++)
		if (!names[i].live)
			return i;
	return nnames < MAX_NAMES ? nnames++ : -1;
}

/* A name from a bounded pool (so that the model stays small) that is not in use; -1 if none found. */
static int pick_name(char *out, size_t n)
{
	for (int tries = 0; tries < 16; tries++) {
		snprintf(out, n, "%s/n%u", dirs[rn(4)], rn(POOL));
		int used = 0;
		for (int i = 0; i < nnames; i++)
			used |= names[i].live && !strcmp(names[i].path, out);
		if (!used)
			return 0;
	}
	return -1;
}

static int nlive(void)
{
	int n = 0;
	for (int i = 0; i < nnames; i++)
		n += names[i].live;
	return n;
}

/* Returns 0 on success, 1 when the daemon is gone, exits on anything unexpected. */
static int one_op(const char *dir)
{
	char a[4200], b[4200];
	static unsigned char buf[MAX_FILE_SIZE];
	unsigned kind = rn(100);
	int live = nlive();

	if (kind < 20 && live < MAX_NAMES - 8 && nfiles < MAX_FILES) { /* create + write */
		char rel[64];
		if (pick_name(rel, sizeof rel))
			return 0;
		int s = free_slot();
		int f = nfiles++;
		struct file *fl = &files[f];
		memset(fl, 0, sizeof *fl);
		fl->id = (uint32_t)f + 1;
		fl->data = xmalloc(MAX_FILE_SIZE);
		names[s] = (struct name){.is_dir = 0, .file = f, .live = 0};
		snprintf(names[s].path, sizeof names[s].path, "%s", rel);
		touch(rel, f);
		tent_begin();
		tent_set(rel, ST_ANYFILE);
		int fd = open(full(dir, rel, a, sizeof a), O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			return gone(errno) ? 1 : (die(a), 1);
		struct stat st;
		if (fstat(fd, &st)) {
			int err = errno;
			close(fd);
			return gone(err) ? 1 : (die("fstat"), 1);
		}
		fl->ino = st.st_ino;
		names[s].live = 1;
		push_state();
		uint32_t len = (rn(64 * 1024 / REC) + 1) * REC;
		fl->gen++;
		fill(buf, fl->id, fl->gen, 0, len);
		errno = 0;
		ssize_t w = pwrite(fd, buf, len, 0);
		int err = errno ? errno : EIO;
		int do_sync = rn(3) == 0;
		if (w == (ssize_t)len) {
			memcpy(fl->data, buf, len);
			fl->size = len;
		} else {
			close(fd);
			return gone(err) ? 1 : (die("write"), 1);
		}
		if (sync_mode)
			file_synced(f);
		if (do_sync) {
			if (fsync(fd)) {
				err = errno;
				close(fd);
				return gone(err) ? 1 : (die("fsync"), 1);
			}
			file_synced(f);
			sync_point();
		}
		if (close(fd) && !gone(errno))
			die("close");
		return 0;
	}
	if (kind < 45) { /* write, append or truncate an existing file */
		int s = live_name(0);
		if (s < 0)
			return 0;
		int f = names[s].file;
		struct file *fl = &files[f];
		int fd = open(full(dir, names[s].path, a, sizeof a), O_WRONLY);
		if (fd < 0)
			return gone(errno) ? 1 : (die(a), 1);
		/* The file's content and every name of it are in doubt from here until the fsync. */
		file_changed(f);
		for (int i = 0; i < nnames; i++)
			if (names[i].live && names[i].file == f)
				touch(names[i].path, f);
		unsigned what = rn(10);
		int err = 0;
		if (what < 2) {
			uint32_t ns = rn(fl->size / REC + 2) * REC;
			if (ns > MAX_FILE_SIZE)
				ns = MAX_FILE_SIZE;
			if (ftruncate(fd, ns))
				err = errno;
			else {
				if (ns > fl->size)
					memset(fl->data + fl->size, 0, ns - fl->size);
				fl->size = ns;
			}
		} else {
			uint32_t off = what < 5 ? fl->size : rn(fl->size / REC + 1) * REC;
			uint32_t len = (rn(32 * 1024 / REC) + 1) * REC;
			if (off + len > MAX_FILE_SIZE) {
				close(fd);
				return 0;
			}
			fl->gen++;
			fill(buf, fl->id, fl->gen, off, len);
			errno = 0;
			if (pwrite(fd, buf, len, off) != (ssize_t)len)
				err = errno ? errno : EIO;
			else {
				if (off > fl->size)
					memset(fl->data + fl->size, 0, off - fl->size);
				memcpy(fl->data + off, buf, len);
				if (off + len > fl->size)
					fl->size = off + len;
			}
		}
		if (!err && sync_mode)
			file_synced(f);
		if (!err && rn(4) == 0) {
			if (rn(2) ? fsync(fd) : fdatasync(fd))
				err = errno;
			else {
				file_synced(f);
				sync_point();
			}
		}
		if (close(fd) && !err)
			err = errno;
		if (err)
			return gone(err) ? 1 : (errno = err, die("write/truncate/fsync"), 1);
		return 0;
	}
	if (kind < 55) { /* rename a file, sometimes over another one */
		int s = live_name(0);
		if (s < 0)
			return 0;
		char to[64];
		int t = -1;
		if (rn(3) == 0 && (t = live_name(0)) >= 0 && t != s)
			snprintf(to, sizeof to, "%s", names[t].path);
		else if ((t = -1, pick_name(to, sizeof to)))
			return 0;
		if (t >= 0 && names[t].file == names[s].file)
			return 0; /* two links of one file: rename is a no-op, keep the model simple */
		touch(names[s].path, names[s].file);
		touch(to, names[s].file);
		tent_begin();
		tent_set(to, path_state(names[s].path));
		tent_set(names[s].path, ST_ABSENT);
		if (rename(full(dir, names[s].path, a, sizeof a), full(dir, to, b, sizeof b)))
			return gone(errno) ? 1 : (die("rename"), 1);
		if (t >= 0)
			names[t].live = 0;
		snprintf(names[s].path, sizeof names[s].path, "%s", to);
		push_state();
		if (sync_mode)
			sync_point();
		return 0;
	}
	if (kind < 62 && live < MAX_NAMES - 8) { /* hard link */
		int s = live_name(0);
		if (s < 0)
			return 0;
		char to[64];
		if (pick_name(to, sizeof to))
			return 0;
		int n = free_slot();
		if (n < 0)
			return 0;
		int f = names[s].file;
		touch(to, f);
		tent_begin();
		tent_set(to, files[f].ino);
		if (link(full(dir, names[s].path, a, sizeof a), full(dir, to, b, sizeof b)))
			return gone(errno) ? 1 : (die("link"), 1);
		names[n] = (struct name){.is_dir = 0, .file = f, .live = 1};
		snprintf(names[n].path, sizeof names[n].path, "%s", to);
		push_state();
		if (sync_mode)
			sync_point();
		return 0;
	}
	if (kind < 75) { /* unlink */
		int s = live_name(0);
		if (s < 0)
			return 0;
		touch(names[s].path, names[s].file);
		tent_begin();
		tent_set(names[s].path, ST_ABSENT);
		if (unlink(full(dir, names[s].path, a, sizeof a)))
			return gone(errno) ? 1 : (die("unlink"), 1);
		names[s].live = 0;
		push_state();
		if (sync_mode)
			sync_point();
		return 0;
	}
	if (kind < 82 && live < MAX_NAMES - 8) { /* mkdir */
		char rel[64];
		if (pick_name(rel, sizeof rel))
			return 0;
		int s = free_slot();
		if (s < 0)
			return 0;
		touch(rel, -1);
		tent_begin();
		tent_set(rel, ST_DIR);
		if (mkdir(full(dir, rel, a, sizeof a), 0755))
			return gone(errno) ? 1 : (die("mkdir"), 1);
		names[s] = (struct name){.is_dir = 1, .file = -1, .live = 1};
		snprintf(names[s].path, sizeof names[s].path, "%s", rel);
		push_state();
		if (sync_mode)
			sync_point();
		return 0;
	}
	if (kind < 88) { /* rmdir or rename an (empty) directory */
		int s = live_name(1);
		if (s < 0)
			return 0;
		touch(names[s].path, -1);
		tent_begin();
		tent_set(names[s].path, ST_ABSENT);
		if (rn(2)) {
			if (rmdir(full(dir, names[s].path, a, sizeof a)))
				return gone(errno) ? 1 : (die("rmdir"), 1);
			names[s].live = 0;
		} else {
			char to[64];
			if (pick_name(to, sizeof to)) {
				have_tentative = 0;
				return 0;
			}
			touch(to, -1);
			tent_set(to, ST_DIR);
			if (rename(full(dir, names[s].path, a, sizeof a), full(dir, to, b, sizeof b)))
				return gone(errno) ? 1 : (die("rename dir"), 1);
			snprintf(names[s].path, sizeof names[s].path, "%s", to);
		}
		push_state();
		if (sync_mode)
			sync_point();
		return 0;
	}
	/* fsync a directory (makes its entries durable; in lsmfs, everything) */
	int fd = open(full(dir, dirs[rn(4)], a, sizeof a), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return gone(errno) ? 1 : (die("open dir"), 1);
	if (fsync(fd)) {
		int err = errno;
		close(fd);
		return gone(err) ? 1 : (die("fsync dir"), 1);
	}
	close(fd);
	sync_point();
	return 0;
}

static void write_expect(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die(path);
	fprintf(f, "# crashload: %ld operations, %ld sync points\n", ops_done, syncs_done);
	for (int i = 0; i < npaths; i++) {
		struct pathinfo *p = &paths[i];
		/* kind: ? uncertain, - absent, D dir, F file with exact content, f file of uncertain content */
		char kind = '-';
		if (p->touched)
			kind = '?';
		else if (p->synced_kind == 2)
			kind = 'D';
		else if (p->synced_kind == 1)
			kind = files[p->synced_file].synced ? 'F' : 'f';
		fprintf(f, "%c %s", kind, p->path);
		if (kind == 'F' || kind == 'f')
			fprintf(f, " %u", files[p->synced_file].id); /* untouched since the sync: only its file */
		else
			for (int j = 0; j < p->nids; j++)
				fprintf(f, " %u", p->ids[j]);
		fputc('\n', f);
		if (kind == 'F') {
			/* the exact content follows as "= SIZE HEX..." in one line */
			struct file *fl = &files[p->synced_file];
			fprintf(f, "= %u ", fl->synced_size);
			for (uint32_t k = 0; k < fl->synced_size; k++)
				fprintf(f, "%02x", fl->synced[k]);
			fputc('\n', f);
		}
	}
	/* The namespace states allowed after the crash, one line each: per path, in the order above, 0
	 * (absent), D (a directory), * (a file), or the file's inode number. */
	for (int k = 0; k < nstates + have_tentative; k++) {
		if (states_overflow)
			break;
		const uint64_t *st = k < nstates ? states[k] : tentative;
		fputc('S', f);
		for (int i = 0; i < npaths; i++) {
			if (st[i] == ST_DIR)
				fputs(" D", f);
			else if (st[i] == ST_ANYFILE)
				fputs(" *", f);
			else
				fprintf(f, " %llu", (unsigned long long)st[i]);
		}
		fputc('\n', f);
	}
	if (fflush(f) || fsync(fileno(f)) || fclose(f))
		die(path);
}

static int cmd_run(const char *dir, const char *expect, uint64_t seed)
{
	char a[4200];
	rng_state = seed;
	if (mkdir(dir, 0755))
		die(dir);
	for (int i = 0; i < 4; i++) {
		if (mkdir(full(dir, dirs[i], a, sizeof a), 0755))
			die(a);
		int s = free_slot();
		names[s] = (struct name){.is_dir = 1, .file = -1, .live = 1};
		snprintf(names[s].path, sizeof names[s].path, "%s", dirs[i]);
		pinfo(dirs[i]);
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || fsync(fd))
		die("fsync top dir");
	close(fd);
	sync_point();
	/* The test starts its kill timer now: a daemon killed during this set-up would only test that
	 * set-up fails. */
	fprintf(stderr, "crashload: ready\n");
	time_t end = time(NULL) + 60;
	int rc = 0;
	while (time(NULL) < end) {
		if (one_op(dir)) {
			rc = 1;
			break;
		}
		ops_done++;
		if (interval > 0 && ops_done % 300 == 0) {
			/* Idle for longer than the daemon's sync interval: everything acknowledged before the
			 * pause (file data aside, which the kernel may still hold) must be durable after it. */
			/* Twice the interval and a second: the sync thread waits `interval` after its
			 * previous sync ended, and a sync takes time of its own. */
			double pause = 2 * interval + 1;
			struct timespec ts = {(time_t)pause, (long)((pause - (time_t)pause) * 1e9)};
			nanosleep(&ts, NULL);
			/* Only if the daemon lived through the whole pause: statfs always reaches it (the
			 * kernel caches no statfs answer). */
			struct statvfs sv;
			if (statvfs(dir, &sv)) {
				if (!gone(errno))
					die("statvfs");
				rc = 1;
				break;
			}
			sync_point();
		}
	}
	write_expect(expect);
	fprintf(stderr, "crashload: %ld operations, %ld sync points, %d files, %s\n", ops_done, syncs_done, nfiles,
		rc ? "stopped by the daemon's death" : "ran to the time limit");
	return 0;
}

static int hexval(int c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

static int problems;

static void problem(const char *fmt, const char *path, const char *detail)
{
	fprintf(stderr, "crashload verify: ");
	fprintf(stderr, fmt, path, detail);
	fputc('\n', stderr);
	problems++;
}

/* Every record is zeros or one this name's files wrote at exactly that offset. */
static void check_records(const char *rel, const unsigned char *d, size_t n, const uint32_t *ids, int nids)
{
	for (size_t i = 0; i + REC <= n; i += REC) {
		static const unsigned char zero[REC];
		if (!memcmp(d + i, zero, REC))
			continue;
		uint32_t id;
		uint64_t off;
		memcpy(&id, d + i, 4);
		memcpy(&off, d + i + 8, 8);
		int known = 0;
		for (int k = 0; k < nids; k++)
			known |= ids[k] == id;
		if (!known || off != i) {
			char det[96];
			snprintf(det, sizeof det, "offset %zu: record of file %u at %" PRIu64, i, id, off);
			problem("%s: content never written there (%s)", rel, det);
			return;
		}
	}
	if (n % REC)
		problem("%s: size is not a multiple of 16%s", rel, "");
}

static unsigned char *slurp(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st)) {
		close(fd);
		return NULL;
	}
	unsigned char *d = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, d + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*n = got;
	return d;
}

struct expect {
	char kind;
	char path[64];
	uint32_t ids[MAX_IDS];
	int nids;
	unsigned char *content;
	size_t size;
	int seen;
};

static int cmd_verify(const char *dir, const char *expect)
{
	FILE *f = fopen(expect, "r");
	if (!f)
		die(expect);
	static struct expect ex[4 * POOL + 8];
	int nex = 0;
	size_t cap = 4 * MAX_FILE_SIZE + 64;
	char *line = xmalloc(cap);
	while (fgets(line, (int)cap, f)) {
		if (line[0] == '#')
			continue;
		if (line[0] == 'S' && nstates < MAX_STATES) {
			uint64_t *st = xmalloc(sizeof(uint64_t) * NPATHS);
			char *save, *tok = strtok_r(line + 1, " \n", &save);
			for (int i = 0; i < NPATHS; i++, tok = tok ? strtok_r(NULL, " \n", &save) : NULL)
				st[i] = !tok ? ST_ABSENT : tok[0] == 'D' ? ST_DIR : tok[0] == '*' ? ST_ANYFILE
										      : strtoull(tok, NULL, 10);
			states[nstates++] = st;
			continue;
		}
		if (line[0] == '=' && nex > 0) {
			struct expect *e = &ex[nex - 1];
			char *p = line + 2;
			e->size = strtoul(p, &p, 10);
			p++;
			e->content = xmalloc(e->size);
			for (size_t k = 0; k < e->size; k++)
				e->content[k] = (unsigned char)(hexval(p[2 * k]) << 4 | hexval(p[2 * k + 1]));
			continue;
		}
		struct expect *e = &ex[nex++];
		memset(e, 0, sizeof *e);
		char *save, *tok = strtok_r(line, " \n", &save);
		e->kind = tok[0];
		tok = strtok_r(NULL, " \n", &save);
		snprintf(e->path, sizeof e->path, "%s", tok);
		while ((tok = strtok_r(NULL, " \n", &save)) && e->nids < MAX_IDS)
			e->ids[e->nids++] = (uint32_t)strtoul(tok, NULL, 10);
	}
	fclose(f);
	free(line);

	char a[4200];
	int checked_exact = 0, checked_present = 0;
	/* Everything expected is there (or absent) as expected. */
	for (int i = 0; i < nex; i++) {
		struct expect *e = &ex[i];
		struct stat st;
		int there = lstat(full(dir, e->path, a, sizeof a), &st) == 0;
		if (!there && errno != ENOENT)
			problem("%s: %s", e->path, strerror(errno));
		switch (e->kind) {
		case '-':
			if (there)
				problem("%s: exists, but it was gone at the last %s", e->path, "sync");
			break;
		case 'D':
			if (!there || !S_ISDIR(st.st_mode))
				problem("%s: directory %s", e->path, there ? "is not a directory" : "missing");
			checked_present++;
			break;
		case 'F':
		case 'f':
			if (!there || !S_ISREG(st.st_mode)) {
				problem("%s: file %s", e->path, there ? "is not a regular file" : "missing");
				break;
			}
			checked_present++;
			if (e->kind == 'F') {
				size_t n;
				unsigned char *d = slurp(a, &n);
				if (!d)
					problem("%s: cannot read: %s", e->path, strerror(errno));
				else if (n != e->size || memcmp(d, e->content, n)) {
					char det[64];
					size_t k = 0;
					while (k < n && k < e->size && d[k] == e->content[k])
						k++;
					snprintf(det, sizeof det, "size %zu, expected %zu, first difference at %zu", n, e->size, k);
					problem("%s: fsync'd content lost (%s)", e->path, det);
				}
				checked_exact++;
				free(d);
			}
			break;
		}
	}
	/* Nothing is there that was never created, and no file holds garbage. */
	for (int di = -1; di < 4; di++) {
		char sub[64];
		snprintf(sub, sizeof sub, "%s", di < 0 ? "" : dirs[di]);
		DIR *d = opendir(full(dir, sub, a, sizeof a));
		if (!d) {
			if (di < 0)
				problem("%s: %s", dir, strerror(errno));
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char rel[512];
			snprintf(rel, sizeof rel, "%s%s%s", sub, di < 0 ? "" : "/", de->d_name);
			struct expect *e = NULL;
			for (int i = 0; i < nex; i++)
				if (!strcmp(ex[i].path, rel))
					e = &ex[i];
			if (!e) {
				problem("%s: %s", rel, "never created by the workload");
				continue;
			}
			struct stat st;
			char b[4200];
			if (lstat(full(dir, rel, b, sizeof b), &st))
				continue;
			if (S_ISREG(st.st_mode)) {
				size_t n;
				unsigned char *data = slurp(b, &n);
				if (data)
					check_records(rel, data, n, e->ids, e->nids);
				free(data);
			}
		}
		closedir(d);
	}
	/* The namespace is one of the states the operations since the last sync could have left. */
	uint64_t found[4 * POOL + 8] = {0};
	for (int i = 0; i < nex && i < NPATHS; i++) {
		struct stat st;
		if (lstat(full(dir, ex[i].path, a, sizeof a), &st))
			found[i] = ST_ABSENT;
		else if (S_ISDIR(st.st_mode))
			found[i] = ST_DIR;
		else if (S_ISREG(st.st_mode))
			found[i] = st.st_ino;
		else
			found[i] = ST_ANYFILE - 1; /* matches nothing */
	}
	int best = -1, best_diff = INT32_MAX;
	for (int k = 0; k < nstates; k++) {
		int diff = 0;
		for (int i = 0; i < nex && i < NPATHS; i++) {
			uint64_t w = states[k][i];
			int same = w == found[i] || (w == ST_ANYFILE && found[i] != ST_ABSENT && found[i] != ST_DIR &&
						       found[i] != ST_ANYFILE - 1);
			diff += !same;
		}
		if (diff < best_diff) {
			best_diff = diff;
			best = k;
		}
	}
	if (nstates > 0 && best_diff > 0) {
		char det[96];
		snprintf(det, sizeof det, "%d state(s) allowed; the closest (#%d) differs in %d name(s)", nstates, best,
			 best_diff);
		problem("%s: the tree is no state the operations since the last sync could have left (%s)", dir,
			det);
		for (int i = 0, shown = 0; i < nex && i < NPATHS && shown < 10; i++) {
			uint64_t w = states[best][i];
			int same = w == found[i] || (w == ST_ANYFILE && found[i] != ST_ABSENT && found[i] != ST_DIR);
			if (!same) {
				fprintf(stderr, "    %s: expected %s %llu, found %s %llu\n", ex[i].path,
					w == ST_ABSENT ? "absent" : w == ST_DIR ? "dir" : "file", (unsigned long long)w,
					found[i] == ST_ABSENT ? "absent" : found[i] == ST_DIR ? "dir" : "file",
					(unsigned long long)found[i]);
				shown++;
			}
		}
	}
	for (int i = 0; i < nex; i++)
		free(ex[i].content);
	printf("namespace: one of %d allowed states; ", nstates);
	printf("verified %d names (%d present as expected, %d with exact fsync'd content): %d problem(s)\n", nex,
	       checked_present, checked_exact, problems);
	return problems ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "run")) {
		sync_mode = argc > 5 && !strcmp(argv[5], "sync");
		if (argc > 5 && !strncmp(argv[5], "interval=", 9))
			interval = strtod(argv[5] + 9, NULL);
		return cmd_run(argv[2], argv[3], strtoull(argv[4], NULL, 0));
	}
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "apply")) {
		int cut = 0, deleted = 0;
		int rc = lsm_fault_apply_journal(argv[2], &cut, &deleted);
		if (rc) {
			fprintf(stderr, "crashload: cannot apply journal %s: %s\n", argv[2], strerror(-rc));
			return 2;
		}
		printf("power loss applied: %d file(s) cut, %d deleted\n", cut, deleted);
		return 0;
	}
	fprintf(stderr, "usage: crashload run DIR EXPECT SEED [sync] | verify DIR EXPECT | apply JOURNAL\n");
	return 2;
}
