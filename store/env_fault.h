/*
 * env_fault.h - a fault-injecting env that wraps another env (tests, and the daemon's crash-test mode).
 *
 * It counts every call it forwards and can
 *  - fail the Nth call (or every call from the Nth on) with a chosen errno (EIO, ENOSPC ...);
 *  - make the failing call a short write: an append that writes half its bytes, then fails;
 *  - simulate a power loss: lsm_fault_crash() cuts every file it has seen written to its length at its
 *    last sync, deletes files whose directory entry was never synced, and undoes renames whose
 *    directory was not synced since (restoring the replaced file's synced content). Unlinks are treated
 *    as durable at once (harsher than a real disk: an old file never comes back).
 * Files that existed before the wrapper saw them are treated as durable.
 * After a crash is armed (lsm_fault_set_crash_after) and reached, every later call fails with -EIO, as
 * on a machine that lost power: the store's close then runs its error paths and frees its memory, and
 * lsm_fault_crash() applies the power-loss state to the base env.
 *
 * With a journal path (lsm_fault_env_new_journal), every sync, dir sync, create, rename and unlink
 * is appended as a text line to that file (outside the store), so that after a kill -9 of a process
 * running on it, lsm_fault_apply_journal() can cut the store's files to what was durable.
 * Thread-safe: one mutex around the bookkeeping.
 */
#ifndef LSM_ENV_FAULT_H
#define LSM_ENV_FAULT_H

#include "env.h"

enum lsm_fault_kind {
	LSM_FAULT_ALL = 0,     /* count every call */
	LSM_FAULT_WRITE = 1,   /* only append, new_writable */
	LSM_FAULT_SYNC = 2,    /* only sync, sync_dir */
	LSM_FAULT_RENAME = 3,  /* only rename */
	LSM_FAULT_META = 4,    /* new_writable, rename, unlink, sync_dir, mkdir, truncate */
};

/* Wrap base (not owned). */
lsm_env *lsm_fault_env_new(lsm_env *base);
/* Same, and record durability events in journal_path (created/truncated) for lsm_fault_apply_journal. */
int lsm_fault_env_new_journal(lsm_env *base, const char *journal_path, lsm_env **out);

/* Fail the nth counted call from now (n >= 1) with -err; persistent: fail every later counted call too.
 * short_write: if the failing call is an append, write half its bytes to the base first. */
void lsm_fault_set_fail(lsm_env *env, uint64_t nth, int err, int persistent, int short_write,
			enum lsm_fault_kind kind);
/* After the nth call from now (any kind), the "machine loses power": every later call fails -EIO. */
void lsm_fault_set_crash_after(lsm_env *env, uint64_t nth);
/* Disarm failures and crash; calls succeed again. */
void lsm_fault_clear(lsm_env *env);
/* Calls forwarded so far (all kinds), whether or not they failed. */
uint64_t lsm_fault_calls(lsm_env *env);
/* 1 once an armed crash point was reached. */
int lsm_fault_crashed(lsm_env *env);
/* Apply the power loss to the base env (see above), then forget all bookkeeping: the base now holds
 * exactly the durable state, and the wrapper may be used again (it is disarmed). */
int lsm_fault_crash(lsm_env *env);

/* Read a journal written by a journaling fault env and cut/delete the files under it so that they hold
 * only what was durable (by the same rules as lsm_fault_crash, except that renames are not undone).
 * Uses the posix env. Returns 0 or -errno; *files_cut and *files_deleted report what it did. */
int lsm_fault_apply_journal(const char *journal_path, int *files_cut, int *files_deleted);

#endif
