/* status.c - per-thread error messages and the one place corruption is reported. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

/* Owned by the calling thread: the detail of its last error. */
static _Thread_local char st_msg[512];

const char *lsm_errmsg(void)
{
	return st_msg;
}

const char *lsm_strerror(int status)
{
	switch (status) {
	case LSM_OK: return "ok";
	case LSM_NOTFOUND: return "not found";
	case LSM_CORRUPT: return "corruption";
	case LSM_IOERR: return "I/O error";
	case LSM_NOSPC: return "no space left on device";
	case LSM_NOMEM: return "out of memory";
	case LSM_INVAL: return "invalid argument";
	case LSM_BUSY: return "store is locked by another process";
	case LSM_READONLY: return "store is read-only";
	}
	return "unknown error";
}

int st_error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st_msg, sizeof st_msg, fmt, ap);
	va_end(ap);
	return code;
}

int st_corrupt(const char *file, uint64_t off, const char *fmt, ...)
{
	int n = snprintf(st_msg, sizeof st_msg, "corruption in %s at offset %" PRIu64 ": ", file, off);
	if (n < 0 || (size_t)n >= sizeof st_msg)
		return LSM_CORRUPT;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st_msg + n, sizeof st_msg - (size_t)n, fmt, ap);
	va_end(ap);
	return LSM_CORRUPT;
}

int st_errno(int neg_errno, const char *fmt, ...)
{
	int e = -neg_errno;
	int code;
	switch (e) {
	case ENOSPC:
	case EDQUOT: code = LSM_NOSPC; break;
	case ENOMEM: code = LSM_NOMEM; break;
	case ENOENT: code = LSM_NOTFOUND; break;
	case EBUSY:
	case EAGAIN: code = LSM_BUSY; break;
	case EINVAL: code = LSM_INVAL; break;
	default: code = LSM_IOERR; break;
	}
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(st_msg, sizeof st_msg, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof st_msg)
		snprintf(st_msg + n, sizeof st_msg - (size_t)n, ": %s", strerror(e));
	return code;
}
