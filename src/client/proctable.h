/* proctable.h - the client's process manager (issue 4 item 5): host pid ->
 * parent, image path, command line, start time, cgroup id, exited flag.
 *
 * It is filled from the process monitor's own events (FORK copies the
 * parent's entry, EXEC sets the image, EXIT marks the entry exited), never
 * from a later /proc scan, so that a process that has already exited is
 * still named when the file or network monitor reports something it did.
 * The live entries are also the sandbox membership set: a process is in the
 * sandbox exactly when it has a live entry (fork ancestry from pid 1).
 *
 * Bounded: at most `max` entries; when full, the oldest exited entry is
 * evicted (FIFO of exits); if every entry is live, the insert fails with
 * -ENOSPC (the caller counts it as lost).  A pid reused by the kernel
 * replaces the old (exited) entry.  Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "event.h"

#define PROCTABLE_CMDLINE_MAX 1024 /* bytes kept of a command line (NULs become spaces) */
#define PROCTABLE_DEFAULT_MAX 16384

struct proc_entry {
	pid_t pid;	    /* host pid (tgid) */
	pid_t ppid;	    /* host pid of the parent at fork time (0 for the root) */
	pid_t inner_pid;    /* pid inside the sandbox (NSpid), 0 if unknown */
	uint64_t start_ns;  /* CLOCK_REALTIME of the fork (or of the first sighting) */
	uint64_t cgroup_id; /* cgroup v2 id, 0 if unknown */
	bool exited;
	bool reported;	    /* the process monitor has reported its creation */
	bool execed;	    /* the image below comes from an exec of this process */
	char path[CAP_PROC_MAX];
	char cmdline[PROCTABLE_CMDLINE_MAX];
};

struct proctable;

/* Creates an empty table of at most max entries (0 = PROCTABLE_DEFAULT_MAX). */
int proctable_new(size_t max, struct proctable **ret);
/* Frees the table; NULL is a no-op. */
void proctable_free(struct proctable *t);

/* Adds pid as a live child of ppid: path, cmdline, inner pid and cgroup are
 * copied from the parent's entry when it exists.  A previous entry for pid
 * (exited or not: the kernel reused the pid) is replaced.  Returns the new
 * entry in *ret (may be NULL), -ENOSPC if the table is full of live entries. */
int proctable_add(struct proctable *t, pid_t pid, pid_t ppid, uint64_t start_ns,
		  struct proc_entry **ret);

/* The entry of pid (live or exited), NULL if unknown. */
struct proc_entry *proctable_get(struct proctable *t, pid_t pid);
/* True if pid has a live entry (the sandbox membership test). */
bool proctable_is_live(struct proctable *t, pid_t pid);

/* Sets the image path (and command line, may be NULL) of pid; -ENOENT if unknown. */
int proctable_set_exec(struct proctable *t, pid_t pid, const char *path, const char *cmdline);

/* Marks pid exited (it stays readable until evicted); -ENOENT if unknown,
 * -EALREADY if it had already exited. */
int proctable_exit(struct proctable *t, pid_t pid);

/* Calls cb for every live entry (cb must not add or remove entries); stops
 * and returns cb's value when it is non-zero. */
int proctable_foreach_live(struct proctable *t, int (*cb)(struct proc_entry *e, void *userdata),
			   void *userdata);

/* Number of entries, and of live ones. */
size_t proctable_size(const struct proctable *t);
size_t proctable_live(const struct proctable *t);

/* Copies a raw /proc/PID/cmdline buffer (NUL-separated) into dst as one
 * line: NULs become spaces, a trailing NUL is dropped, truncated to size. */
void proctable_cmdline_from_raw(char *dst, size_t size, const char *raw, size_t len);
