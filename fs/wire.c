/*
 * wire.c - FUSE_HANDLE_KILLPRIV_V2, which libfuse 3.14 (Debian 12's) cannot negotiate.
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
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
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

static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fs *fs = userdata;
	ssize_t n = read(fd, buf, len);
	wire_kill = 0;
	if (n < (ssize_t)sizeof(struct fuse_in_header))
		return n;
	struct fuse_in_header h;
	memcpy(&h, buf, sizeof h);
	const char *arg = (const char *)buf + sizeof h;
	size_t alen = (size_t)n - sizeof h;
	if (h.opcode == FUSE_INIT) {
		if (fs->cfg.killpriv_v2 &&
		    (arg_u32(arg, alen, offsetof(struct fuse_init_in, flags)) & FUSE_HANDLE_KILLPRIV_V2))
			atomic_store(&fs->wire_init_unique, h.unique);
		return n;
	}
	for (size_t i = 0; i < sizeof kill_flags / sizeof kill_flags[0]; i++)
		if (kill_flags[i].opcode == h.opcode)
			wire_kill = (arg_u32(arg, alen, kill_flags[i].off) & kill_flags[i].bit) != 0;
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

int fs_wire_install(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = wire_read,
		.writev = wire_writev,
	};
	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}
