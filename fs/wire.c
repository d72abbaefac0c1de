/*
 * wire.c - between /dev/fuse and libfuse: FUSE_HANDLE_KILLPRIV_V2, which libfuse 3.14 (Debian 12's)
 * cannot negotiate, and one worker fetching requests (spin).
 *
 * Why: a FUSE filesystem that answers xattrs gets no SB_NOSEC, so before every write(2) the kernel asks
 * the daemon for security.capability (a GETXATTR round trip per write: randwrite-4k at half the IOPS of
 * a filesystem without xattrs). With HANDLE_KILLPRIV_V2 the kernel sets SB_NOSEC, asks once per inode
 * and then writes into the page cache without a round trip; in return the daemon clears suid/sgid when
 * a write, truncate or chown says so (FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID,
 * FUSE_OPEN_KILL_SUIDGID). security.capability stays the kernel's: it removes it itself (REMOVEXATTR)
 * after a setxattr of security.* clears the inode's S_NOSEC.
 *
 * How: libfuse's custom I/O hooks sit between /dev/fuse and libfuse. The read hook notes the kill flag
 * of each request in a thread-local (libfuse handles a request on the thread that read it, and we turn
 * splice reads off so every request passes through read), and the INIT request's kernel flags; the
 * writev hook adds HANDLE_KILLPRIV_V2 to libfuse's INIT reply when the kernel offered it. libfuse
 * drops the kill flags from what it hands the handlers, hence fs_wire_kill_suidgid().
 *
 * One reader at a time (-o spin=USEC, default 50): most of a metadata operation's time is the FUSE
 * round trip's scheduling, not the daemon's work. With libfuse's loop every request wakes a worker
 * asleep in read(2); on this kind of VM (no guest halt polling) each wakeup of an idle CPU is an
 * exit to the hypervisor. Here the device is non-blocking and one worker, the reader, fetches: it
 * polls for up to spin_us, then sleeps in epoll (the only sleeper, so a request wakes no one else). A request answered from memory or with one store commit (lookup, getattr, create,
 * unlink, mkdir, a write of up to 128 KiB, ...) is handled by the reader itself, which then fetches
 * the next: in a busy stream no thread sleeps or wakes per request. Any other request (reads, big
 * writes, fsync, xattr writes, INIT) may block, so its worker hands the reader role to a waiting
 * worker first, as does a reader whose commit would wait (a sync, or a store behind on flushes:
 * lsm_write_may_wait). The others wait on a condition variable, never on the device. spin=0 keeps
 * libfuse's blocking reads.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lsmfs.h"

/* The kill flag of the request this worker thread is handling (set by the read that fetched it). */
static _Thread_local int wire_kill;

int fs_wire_kill_suidgid(void)
{
	return wire_kill;
}

/* Where each request that can ask for suid/sgid clearing carries its flag: a u32 in its argument.
 * (CREATE's flag is left out: it makes a new file, whose mode the caller chose.) */
static const struct {
	uint32_t opcode;
	size_t off;       /* of the u32 flag word in the argument after the header */
	uint32_t bit;
} kill_flags[] = {
	{FUSE_WRITE, offsetof(struct fuse_write_in, write_flags), FUSE_WRITE_KILL_SUIDGID},
	{FUSE_SETATTR, offsetof(struct fuse_setattr_in, valid), FATTR_KILL_SUIDGID},
	{FUSE_OPEN, offsetof(struct fuse_open_in, open_flags), FUSE_OPEN_KILL_SUIDGID},
};

/* The u32 at off in the argument of alen bytes, or 0 when the request is too short to carry it. */
static uint32_t arg_u32(const char *arg, size_t alen, size_t off)
{
	uint32_t v = 0;
	if (alen >= off + sizeof v)
		memcpy(&v, arg + off, sizeof v);
	return v;
}

/* A worker that libfuse ends (it ends surplus idle ones) while holding the reader role gives the role
 * up in wire_role_key's destructor. */
static pthread_key_t wire_role_key;
static pthread_once_t wire_key_once = PTHREAD_ONCE_INIT;
static int wire_key_ok;
static void wire_hand_off(struct fs *fs, int dead);

static void wire_role_exit(void *fs)
{
	wire_hand_off(fs, 0);
}

static void wire_key_init(void)
{
	wire_key_ok = pthread_key_create(&wire_role_key, wire_role_exit) == 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Requests answered from memory or with one store commit: the worker that fetched one keeps
 * watching the device for the next (no other worker waits there meanwhile). Writes of up to
 * WIRE_INLINE_WRITE bytes are one commit too. Any other request (reads, which may wait for the disk,
 * big writes, fsync, xattr writes, INIT) may block: its worker hands the device to another first. */
#define WIRE_INLINE_WRITE (128u << 10)

static int wire_inline(uint32_t opcode, const char *arg, size_t alen)
{
	if (opcode == FUSE_WRITE)
		return arg_u32(arg, alen, offsetof(struct fuse_write_in, size)) <= WIRE_INLINE_WRITE;
	switch (opcode) {
	case FUSE_LOOKUP: case FUSE_FORGET: case FUSE_BATCH_FORGET: case FUSE_GETATTR: case FUSE_SETATTR:
	case FUSE_MKNOD: case FUSE_MKDIR: case FUSE_UNLINK: case FUSE_RMDIR: case FUSE_SYMLINK:
	case FUSE_RENAME: case FUSE_RENAME2: case FUSE_LINK: case FUSE_READLINK: case FUSE_CREATE:
	case FUSE_STATFS: case FUSE_GETXATTR: case FUSE_LISTXATTR: case FUSE_ACCESS: case FUSE_OPENDIR:
	case FUSE_READDIR: case FUSE_READDIRPLUS: case FUSE_RELEASEDIR:
		return 1;
	}
	return 0;
}

/* This worker holds the reader role (it fetched an inline request and will fetch the next). */
static _Thread_local int wire_reader_self;

/* libfuse ends the session from its SIGHUP/SIGINT/SIGTERM handler and counts on the signal to
 * interrupt a worker's read (or the main thread's wait). A worker spinning or waiting for the
 * reader role would not be interrupted, so workers keep these signals blocked except while asleep
 * in epoll_pwait: the kernel then hands them to the main thread or to the sleeping reader. */
static _Thread_local int wire_masked;
static _Thread_local sigset_t wire_sleep_mask;

static void wire_mask_signals(void)
{
	sigset_t exit_sigs;
	sigemptyset(&exit_sigs);
	sigaddset(&exit_sigs, SIGHUP);
	sigaddset(&exit_sigs, SIGINT);
	sigaddset(&exit_sigs, SIGTERM);
	if (!pthread_sigmask(SIG_BLOCK, &exit_sigs, &wire_sleep_mask))
		wire_masked = 1;
}

static void wire_unlock(void *p)
{
	pthread_mutex_unlock(p);
}

/* Give up the reader role (dead: the device is gone; wake every waiting worker to see it). */
static void wire_hand_off(struct fs *fs, int dead)
{
	wire_reader_self = 0;
	pthread_setspecific(wire_role_key, NULL);
	pthread_mutex_lock(&fs->wire_mu);
	fs->wire_reader = 0;
	if (dead)
		fs->wire_dead = 1;
	pthread_mutex_unlock(&fs->wire_mu);
	if (dead)
		pthread_cond_broadcast(&fs->wire_cv);
	else
		pthread_cond_signal(&fs->wire_cv);
}

/* The next request from the non-blocking device. One worker at a time (the reader) fetches: it
 * polls for spin_us, then sleeps in epoll (the only sleeper there); the others wait for the role. */
static ssize_t wire_fetch(struct fs *fs, int fd, void *buf, size_t len)
{
	if (!wire_masked)
		wire_mask_signals();
	if (!wire_reader_self) {
		pthread_mutex_lock(&fs->wire_mu);
		pthread_cleanup_push(wire_unlock, &fs->wire_mu);
		while (fs->wire_reader && !fs->wire_dead)
			pthread_cond_wait(&fs->wire_cv, &fs->wire_mu);
		fs->wire_reader = 1;
		pthread_cleanup_pop(1);
		wire_reader_self = 1;
		pthread_setspecific(wire_role_key, fs);
	}
	int64_t end = 0; /* of the current poll; 0: not polling yet */
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0 || errno != EAGAIN)
			return n;
		int64_t now = now_ns();
		if (!end) {
			end = now + (int64_t)fs->cfg.spin_us * 1000;
			continue;
		}
		if (now < end)
			continue;
		end = 0;
		struct epoll_event ev;
		if (epoll_pwait(fs->wire_ep, &ev, 1, -1, wire_masked ? &wire_sleep_mask : NULL) < 0)
			return -1; /* EINTR included: libfuse checks whether the session is over */
	}
}

void fs_wire_may_block(struct fs *fs)
{
	if (wire_reader_self)
		wire_hand_off(fs, 0);
}

static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fs *fs = userdata;
	ssize_t n = fs->cfg.spin_us ? wire_fetch(fs, fd, buf, len) : read(fd, buf, len);
	int e = errno, keep = 0;
	wire_kill = 0;
	if (n >= (ssize_t)sizeof(struct fuse_in_header)) {
		struct fuse_in_header h;
		memcpy(&h, buf, sizeof h);
		const char *arg = (const char *)buf + sizeof h;
		size_t alen = (size_t)n - sizeof h;
		if (h.opcode == FUSE_INIT && fs->cfg.killpriv_v2 &&
		    (arg_u32(arg, alen, offsetof(struct fuse_init_in, flags)) & FUSE_HANDLE_KILLPRIV_V2))
			atomic_store(&fs->wire_init_unique, h.unique);
		for (size_t i = 0; i < sizeof kill_flags / sizeof kill_flags[0]; i++)
			if (kill_flags[i].opcode == h.opcode)
				wire_kill = (arg_u32(arg, alen, kill_flags[i].off) & kill_flags[i].bit) != 0;
		keep = wire_inline(h.opcode, arg, alen);
	}
	if (fs->cfg.spin_us && !keep)
		wire_hand_off(fs, n < 0 && e != EINTR);
	errno = e;
	return n;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fs *fs = userdata;
	uint64_t init = atomic_load_explicit(&fs->wire_init_unique, memory_order_relaxed);
	if (!init || count != 2 || iov[0].iov_len != sizeof(struct fuse_out_header))
		return writev(fd, iov, count);
	struct fuse_out_header oh;
	memcpy(&oh, iov[0].iov_base, sizeof oh);
	size_t flags_end = offsetof(struct fuse_init_out, flags) + sizeof(uint32_t);
	if (oh.unique != init || oh.error || iov[1].iov_len < flags_end || iov[1].iov_len > sizeof(struct fuse_init_out))
		return writev(fd, iov, count);
	/* libfuse's INIT reply: send a copy with the flag added. */
	struct fuse_init_out out;
	memset(&out, 0, sizeof out);
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	out.flags |= FUSE_HANDLE_KILLPRIV_V2;
	struct iovec v2[2] = {iov[0], {&out, iov[1].iov_len}};
	/* Set before the reply: the kernel may send requests to other workers as soon as it has it. */
	atomic_store(&fs->killpriv_v2, 1);
	ssize_t r = writev(fd, v2, 2);
	if (r < 0)
		atomic_store(&fs->killpriv_v2, 0);
	else
		atomic_store(&fs->wire_init_unique, 0);
	return r;
}

int fs_wire_install(struct fs *fs, struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = wire_read,
		.writev = wire_writev,
	};
	int fd = fuse_session_fd(se);
	fs->wire_ep = -1;
	if (fs->cfg.spin_us) {
		if (pthread_once(&wire_key_once, wire_key_init) || !wire_key_ok)
			return -1;
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -1;
		/* One epoll instance: only the reader ever sleeps in it. */
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
		fs->wire_ep = epoll_create1(EPOLL_CLOEXEC);
		if (fs->wire_ep < 0 || epoll_ctl(fs->wire_ep, EPOLL_CTL_ADD, fd, &ev))
			return -1;
		if (pthread_mutex_init(&fs->wire_mu, NULL) || pthread_cond_init(&fs->wire_cv, NULL))
			return -1;
	}
	return fuse_session_custom_io(se, &io, fd);
}

void fs_wire_uninstall(struct fs *fs)
{
	if (fs->wire_ep >= 0)
		close(fs->wire_ep);
	fs->wire_ep = -1;
}
