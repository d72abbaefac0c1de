/*
 * status.h - how store/ reports errors: an lsm_status code plus a per-thread message.
 *
 * Every error path of the store goes through one of these so that one breakpoint (st_corrupt for bad
 * bytes) finds every place that detects a problem. The message is kept per thread (lsm_errmsg()), so
 * concurrent callers never see each other's details. The functions return the code they were given,
 * so a caller writes `return st_corrupt(path, off, "bad block checksum");`.
 */
#ifndef LSM_STATUS_H
#define LSM_STATUS_H

#include <stdint.h>

#include "lsm.h"

#if defined(__GNUC__)
#define LSM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LSM_PRINTF(a, b)
#endif

/* Set the thread's message to the formatted text; returns code. */
int st_error(int code, const char *fmt, ...) LSM_PRINTF(2, 3);
/* Bad bytes in file at byte offset off: LSM_CORRUPT with "corruption in FILE at offset OFF: ...". */
int st_corrupt(const char *file, uint64_t off, const char *fmt, ...) LSM_PRINTF(3, 4);
/* Map a negative errno from the env to a status (ENOSPC/EDQUOT -> NOSPC, ENOMEM -> NOMEM,
 * ENOENT -> NOTFOUND, EBUSY/EAGAIN/EACCES from a lock -> BUSY, else IOERR), with "what: strerror". */
int st_errno(int neg_errno, const char *fmt, ...) LSM_PRINTF(2, 3);

#endif
