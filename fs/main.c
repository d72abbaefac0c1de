/* main.c - the lsmfs command: options, daemonizing, the FUSE session loop, clean shutdown. */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lsmfs.h"

#define LSMFS_VERSION "0.1.0"

static const char usage[] =
	"usage: lsmfs [options] STORE_DIR MOUNTPOINT\n"
	"\n"
	"Mount the lsmfs store in STORE_DIR at MOUNTPOINT. The store (a directory of log and table files)\n"
	"is created on first mount. Unmount with `fusermount3 -u MOUNTPOINT` (or SIGTERM): everything is\n"
	"flushed and the store closed cleanly.\n"
	"\n"
	"Options:\n"
	"  -h, --help             print this help and exit\n"
	"  -V, --version          print the version and exit\n"
	"  -f                     stay in the foreground (default: run as a daemon)\n"
	"  -d                     debug output of every FUSE request (implies -f)\n"
	"  -s                     single-threaded\n"
	"  -o OPT[,OPT...]        mount options:\n"
	"     ro                     read-only; the store is opened read-only (nothing is written)\n"
	"     sync                   every change is durable before the call that made it returns\n"
	"                            (turns the kernel's writeback cache off)\n"
	"     sync_interval=SECONDS  background sync period: bounds what a crash can lose (default 5;\n"
	"                            0 = only fsync and unmount sync)\n"
	"     cache_size=SIZE        store block cache, e.g. 64M (default 64M; K, M, G suffixes)\n"
	"     write_buffer=SIZE      store memtable size before a flush to a table (default 64M;\n"
	"                            smaller values flush and compact more often)\n"
	"     blob_min=SIZE          file blocks of at least this size are written once to a blob file\n"
	"                            instead of being copied by every flush and compaction (default 4K;\n"
	"                            0 = keep all data in the tree)\n"
	"     reserve=SIZE           free space kept on the store's disk for flushes, compactions and\n"
	"                            deletions: writes fail with ENOSPC below it (default 32M)\n"
	"     block_size=BYTES       file block size of a NEW store: 512..65536, a power of two\n"
	"                            (default 4096, the page size); an existing store keeps its own\n"
	"     writeback_cache        kernel writeback caching of file data (default)\n"
	"     no_writeback_cache     write every write(2) through to the daemon\n"
	"     killpriv_v2            the daemon clears suid/sgid on write, truncate and chown, so the\n"
	"                            kernel need not ask for security.capability before every write\n"
	"                            (default, when the kernel offers it)\n"
	"     no_killpriv_v2         the kernel asks before every write (for comparison)\n"
	"     zero_message_open      files open and close inside the kernel, without a request to the\n"
	"                            daemon (default, when the kernel offers it)\n"
	"     no_zero_message_open   every open(2) and the last close(2) of a file reach the daemon\n"
	"     attr_timeout=SECONDS   how long the kernel may cache attributes (default 60)\n"
	"     entry_timeout=SECONDS  how long the kernel may cache names (default 60)\n"
	"     negative_timeout=SECONDS  how long the kernel may cache \"no such name\" (default 60)\n"
	"     max_threads=N          FUSE worker threads (default 16)\n"
	"     spin=USEC              the worker fetching requests polls for the next one this long\n"
	"                            before it sleeps, and answers metadata requests itself: no\n"
	"                            thread wakeup per request in a busy stream (default 50;\n"
	"                            0 = every worker sleeps in read(2), as libfuse does; max 10000)\n"
	"     allow_other            let other users use the mount (permissions are always checked by\n"
	"                            the kernel: default_permissions is always on)\n"
	"     Other FUSE mount options (fsname=, max_read=, ...) are passed to FUSE.\n"
	"\n"
	"Exit status: 0 after a clean unmount; 1 if the store or the mount could not be set up (the\n"
	"reason is printed); 2 on a usage error.\n";

struct cmdline {
	struct fs_config cfg;
	char *mountpoint;
	int foreground, debug, single, help, version;
	int npos;
	char *bad;
};

enum {
	K_HELP, K_VERSION, K_FG, K_DEBUG, K_SINGLE, K_RO, K_SYNC, K_SYNC_INTERVAL, K_CACHE, K_BS, K_WB, K_NOWB,
	K_ATTR, K_ENTRY, K_NEG, K_THREADS, K_JOURNAL, K_WBUF, K_RESERVE, K_KP2, K_NOKP2, K_ZOPEN, K_NOZOPEN, K_BLOBMIN, K_SPIN,
};

static const struct fuse_opt opts[] = {
	FUSE_OPT_KEY("-h", K_HELP),
	FUSE_OPT_KEY("--help", K_HELP),
	FUSE_OPT_KEY("-V", K_VERSION),
	FUSE_OPT_KEY("--version", K_VERSION),
	FUSE_OPT_KEY("-f", K_FG),
	FUSE_OPT_KEY("-d", K_DEBUG),
	FUSE_OPT_KEY("debug", K_DEBUG),
	FUSE_OPT_KEY("-s", K_SINGLE),
	FUSE_OPT_KEY("ro", K_RO),
	FUSE_OPT_KEY("sync", K_SYNC),
	FUSE_OPT_KEY("sync_interval=", K_SYNC_INTERVAL),
	FUSE_OPT_KEY("cache_size=", K_CACHE),
	FUSE_OPT_KEY("block_size=", K_BS),
	FUSE_OPT_KEY("writeback_cache", K_WB),
	FUSE_OPT_KEY("no_writeback_cache", K_NOWB),
	FUSE_OPT_KEY("attr_timeout=", K_ATTR),
	FUSE_OPT_KEY("entry_timeout=", K_ENTRY),
	FUSE_OPT_KEY("negative_timeout=", K_NEG),
	FUSE_OPT_KEY("max_threads=", K_THREADS),
	FUSE_OPT_KEY("spin=", K_SPIN),
	FUSE_OPT_KEY("lsmfs_crash_journal=", K_JOURNAL),
	FUSE_OPT_KEY("write_buffer=", K_WBUF),
	FUSE_OPT_KEY("blob_min=", K_BLOBMIN),
	FUSE_OPT_KEY("reserve=", K_RESERVE),
	FUSE_OPT_KEY("killpriv_v2", K_KP2),
	FUSE_OPT_KEY("no_killpriv_v2", K_NOKP2),
	FUSE_OPT_KEY("zero_message_open", K_ZOPEN),
	FUSE_OPT_KEY("no_zero_message_open", K_NOZOPEN),
	FUSE_OPT_END,
};

static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -1;
	unsigned long long mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1ull << 10;
	else if (*end == 'm' || *end == 'M')
		mul = 1ull << 20;
	else if (*end == 'g' || *end == 'G')
		mul = 1ull << 30;
	else if (*end)
		return -1;
	if (mul > 1 && end[1])
		return -1;
	if (v > (1ull << 44) / mul)
		return -1;
	*out = (size_t)(v * mul);
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 1e9)
		return -1;
	*out = v;
	return 0;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	(void)outargs;
	struct cmdline *c = data;
	const char *val = strchr(arg, '=');
	val = val ? val + 1 : "";
	unsigned long long u;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (c->npos == 0)
			c->cfg.store_dir = strdup(arg);
		else if (c->npos == 1)
			c->mountpoint = strdup(arg);
		else if (!c->bad)
			c->bad = strdup(arg);
		c->npos++;
		return 0;
	case K_HELP: c->help = 1; return 0;
	case K_VERSION: c->version = 1; return 0;
	case K_FG: c->foreground = 1; return 0;
	case K_DEBUG: c->debug = c->foreground = 1; return 0;
	case K_SINGLE: c->single = 1; return 0;
	case K_RO: c->cfg.read_only = 1; return 1; /* also a kernel mount flag */
	case K_SYNC: c->cfg.sync_all = 1; c->cfg.writeback = 0; return 0;
	case K_SYNC_INTERVAL:
		if (parse_u64(val, 86400, &u))
			goto bad;
		c->cfg.sync_interval = (unsigned)u;
		return 0;
	case K_CACHE:
		if (parse_size(val, &c->cfg.cache_size) || c->cfg.cache_size < (64u << 10))
			goto bad;
		return 0;
	case K_WBUF:
		if (parse_size(val, &c->cfg.write_buffer) || c->cfg.write_buffer < (64u << 10))
			goto bad;
		return 0;
	case K_BLOBMIN:
		if (parse_size(val, &c->cfg.blob_min))
			goto bad;
		return 0;
	case K_RESERVE: {
		size_t r;
		if (parse_size(val, &r))
			goto bad;
		c->cfg.reserve = r;
		c->cfg.reserve_set = 1;
		return 0;
	}
	case K_BS:
		if (parse_u64(val, 65536, &u) || u < 512 || (u & (u - 1)))
			goto bad;
		c->cfg.block_size = (uint32_t)u;
		return 0;
	case K_WB:
		if (!c->cfg.sync_all)
			c->cfg.writeback = 1;
		return 0;
	case K_NOWB: c->cfg.writeback = 0; return 0;
	case K_KP2: c->cfg.killpriv_v2 = 1; return 0;
	case K_NOKP2: c->cfg.killpriv_v2 = 0; return 0;
	case K_ZOPEN: c->cfg.zero_open = 1; return 0;
	case K_NOZOPEN: c->cfg.zero_open = 0; return 0;
	case K_ATTR: if (parse_secs(val, &c->cfg.attr_timeout)) goto bad; return 0;
	case K_ENTRY: if (parse_secs(val, &c->cfg.entry_timeout)) goto bad; return 0;
	case K_NEG: if (parse_secs(val, &c->cfg.negative_timeout)) goto bad; return 0;
	case K_THREADS:
		if (parse_u64(val, 1024, &u) || u < 1)
			goto bad;
		c->cfg.threads = (int)u;
		return 0;
	case K_SPIN:
		if (parse_u64(val, 10000, &u))
			goto bad;
		c->cfg.spin_us = (unsigned)u;
		return 0;
	case K_JOURNAL:
		free(c->cfg.fault_journal);
		c->cfg.fault_journal = strdup(val);
		return 0;
	}
	return 1; /* everything else goes to FUSE, which rejects what it does not know */
bad:
	if (!c->bad && asprintf(&c->bad, "bad value in option '%s'", arg) < 0)
		c->bad = NULL;
	return 0;
}

/* Report the child's setup result to the waiting parent (a message, empty = success). */
static void notify(int fd, const char *msg)
{
	if (fd < 0)
		return;
	size_t n = strlen(msg);
	ssize_t w = write(fd, msg, n);
	(void)w;
	close(fd);
}

/* Free what option parsing allocated and return rc: every exit of main (and the parent's). */
static int cmdline_exit(struct cmdline *c, struct fuse_args *args, int rc)
{
	free(c->cfg.store_dir);
	free(c->cfg.fault_journal);
	free(c->mountpoint);
	free(c->bad);
	fuse_opt_free_args(args);
	return rc;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cmdline c;
	memset(&c, 0, sizeof c);
	c.cfg.sync_interval = 5;
	c.cfg.cache_size = 64u << 20;
	c.cfg.write_buffer = 64u << 20;
	c.cfg.blob_min = 4096;
	c.cfg.block_size = 4096;
	c.cfg.writeback = 1;
	c.cfg.killpriv_v2 = 1;
	c.cfg.zero_open = 1;
	c.cfg.attr_timeout = c.cfg.entry_timeout = c.cfg.negative_timeout = 60;
	c.cfg.threads = 16;
	c.cfg.spin_us = 50;
	if (fuse_opt_parse(&args, &c, opts, opt_proc) == -1) {
		fprintf(stderr, "lsmfs: cannot parse the command line (see lsmfs --help)\n");
		return cmdline_exit(&c, &args, 2);
	}
	if (c.help) {
		fputs(usage, stdout);
		return cmdline_exit(&c, &args, 0);
	}
	if (c.version) {
		printf("lsmfs %s (filesystem format %d, libfuse %s)\n", LSMFS_VERSION, FS_FORMAT_VERSION, fuse_pkgversion());
		return cmdline_exit(&c, &args, 0);
	}
	if (c.bad || c.npos != 2) {
		if (c.bad)
			fprintf(stderr, "lsmfs: %s%s\n", c.npos > 2 ? "unexpected argument: " : "", c.bad);
		else
			fprintf(stderr, "lsmfs: need STORE_DIR and MOUNTPOINT\n");
		fprintf(stderr, "usage: lsmfs [options] STORE_DIR MOUNTPOINT (see lsmfs --help)\n");
		return cmdline_exit(&c, &args, 2);
	}
	struct stat st;
	if (stat(c.mountpoint, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "lsmfs: mountpoint %s: %s\n", c.mountpoint, errno ? strerror(errno) : "not a directory");
		return cmdline_exit(&c, &args, 1);
	}
	/* A store to create gets its directory now (0700: it holds every file's bytes), so that the daemon
	 * can work with an absolute path after it leaves the caller's working directory. */
	if (!c.cfg.read_only && mkdir(c.cfg.store_dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "lsmfs: cannot create store directory %s: %s\n", c.cfg.store_dir, strerror(errno));
		return cmdline_exit(&c, &args, 1);
	}
	char *abs_store = realpath(c.cfg.store_dir, NULL);
	if (!abs_store) {
		fprintf(stderr, "lsmfs: store directory %s: %s\n", c.cfg.store_dir, strerror(errno));
		return cmdline_exit(&c, &args, 1);
	} else if (stat(abs_store, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "lsmfs: store directory %s is not a directory\n", c.cfg.store_dir);
		free(abs_store);
		return cmdline_exit(&c, &args, 1);
	}
	free(c.cfg.store_dir);
	c.cfg.store_dir = abs_store;

	/* Permissions are the kernel's to check; the name shows the store in /proc/mounts. */
	fuse_opt_add_arg(&args, "-odefault_permissions");
	char *fsn;
	if (asprintf(&fsn, "-ofsname=%s,subtype=lsmfs", c.cfg.store_dir) > 0) {
		fuse_opt_add_arg(&args, fsn);
		free(fsn);
	}
	if (c.debug)
		fuse_opt_add_arg(&args, "-odebug");

	/* Daemonize before opening the store: its lock and threads must belong to the daemon. The parent
	 * waits for the child to report whether the store opened and the mount is up. */
	int pipefd[2] = {-1, -1};
	if (!c.foreground) {
		if (pipe(pipefd)) {
			perror("lsmfs: pipe");
			return cmdline_exit(&c, &args, 1);
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("lsmfs: fork");
			return cmdline_exit(&c, &args, 1);
		}
		if (pid > 0) {
			close(pipefd[1]);
			char msg[1024];
			ssize_t n = 0, r;
			while ((r = read(pipefd[0], msg + n, sizeof msg - 1 - (size_t)n)) > 0)
				n += r;
			msg[n > 0 ? n : 0] = 0;
			close(pipefd[0]);
			if (n > 0 && strcmp(msg, "ok")) {
				fprintf(stderr, "lsmfs: %s\n", msg);
				int status;
				waitpid(pid, &status, 0);
				return cmdline_exit(&c, &args, 1);
			}
			if (n <= 0) {
				fprintf(stderr, "lsmfs: the daemon died during start-up\n");
				return cmdline_exit(&c, &args, 1);
			}
			return cmdline_exit(&c, &args, 0);
		}
		close(pipefd[0]);
		setsid();
	}
	int status_fd = pipefd[1];

	struct fs *fs = calloc(1, sizeof *fs);
	char err[1024] = "";
	int rc = 1;
	struct fuse_session *se = NULL;
	if (!fs) {
		snprintf(err, sizeof err, "out of memory");
		goto out;
	}
	fs->cfg = c.cfg;
	/* The store's and our background threads start here and inherit this mask: SIGHUP/INT/TERM,
	 * which end the session, must reach a thread that can act on them (the main thread, or a worker
	 * asleep on /dev/fuse; see wire.c), never one that would only set the flag and leave the
	 * sleeping reader asleep. */
	sigset_t exit_sigs, old_mask;
	sigemptyset(&exit_sigs);
	sigaddset(&exit_sigs, SIGHUP);
	sigaddset(&exit_sigs, SIGINT);
	sigaddset(&exit_sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &exit_sigs, &old_mask);
	int open_failed = fs_open(fs, err, sizeof err);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (open_failed)
		goto out;
	se = fuse_session_new(&args, &lsmfs_ops, sizeof lsmfs_ops, fs);
	if (!se) {
		snprintf(err, sizeof err, "bad mount options (libfuse said why above)");
		goto out;
	}
	if (fuse_set_signal_handlers(se)) {
		snprintf(err, sizeof err, "cannot install signal handlers");
		goto out;
	}
	if (fuse_session_mount(se, c.mountpoint)) {
		snprintf(err, sizeof err, "cannot mount at %s", c.mountpoint);
		fuse_remove_signal_handlers(se);
		goto out;
	}
	fs->se = se;
	if (fs_wire_install(fs, se)) {
		snprintf(err, sizeof err, "cannot install the /dev/fuse hooks");
		fs_wire_uninstall(fs);
		fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		goto out;
	}
	if (status_fd >= 0) {
		notify(status_fd, "ok");
		status_fd = -1;
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		if (chdir("/")) {
			/* keep going: only relative paths would care, and we hold none */
		}
	}
	if (c.single) {
		rc = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_max_threads(lc, (unsigned)fs->cfg.threads);
		fuse_loop_cfg_set_idle_threads(lc, (unsigned)(fs->cfg.threads / 2 > 0 ? fs->cfg.threads / 2 : 1));
		rc = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	fs_wire_uninstall(fs); /* the workers are gone */
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	rc = rc < 0 ? 1 : 0;
out:
	if (fs)
		fs->se = NULL;
	if (se)
		fuse_session_destroy(se);
	if (fs)
		fs_close(fs);
	if (err[0]) {
		if (status_fd >= 0)
			notify(status_fd, err);
		else
			fprintf(stderr, "lsmfs: %s\n", err);
		rc = 1;
	}
	free(fs);
	return cmdline_exit(&c, &args, rc);
}
