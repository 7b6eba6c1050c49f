/* mon-util.h - helpers shared by the file and registry monitors (owner:
 * mongaps): naming the process behind a fanotify record. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "event.h"

struct proctable;

#define MON_PIDFD_NONE (-100) /* the caller has no pidfd for the pid */
#define EXEC_MAP_SLOTS 8192   /* pids remembered; the map is emptied when half full */

/* Host pid -> the image it last exec'd, from FAN_OPEN_EXEC records read in
 * queue order, so that a record is named with the image the process had
 * when it acted, even after it exited or exec'd again.  The dynamic loader
 * (opened by the kernel after the image) is ignored; for a #! script the
 * interpreter comes last, as in /proc/PID/exe. */
struct exec_map {
	struct exec_slot {
		pid_t pid;	  /* 0 = free */
		uint64_t seen_ns; /* CLOCK_REALTIME when the record was read */
		char *path;
	} * slots;
	size_t n;
};

int exec_map_init(struct exec_map *x);
void exec_map_done(struct exec_map *x);
void exec_map_clear(struct exec_map *x);
/* Records that pid exec'd path (sandbox path); ld.so paths are ignored. */
void exec_map_set(struct exec_map *x, pid_t pid, const char *path);
/* The entry of pid, NULL if none (x may be NULL). */
const struct exec_slot *exec_map_find(const struct exec_map *x, pid_t pid);

/* The pid of host_pid inside its innermost pid namespace: the last field
 * of the NSpid line of /proc/PID/status, if that line has at least
 * min_levels fields (a pid reused by a process of a shallower namespace,
 * such as the host's, has fewer).  -1 if it cannot be read (the process is
 * gone).  Never returns the host pid for a process of a nested namespace. */
pid_t mon_read_nspid(pid_t host_pid, int min_levels, int *ret_levels);

/* Names the acting process of ev from its host pid: pid (inside the
 * sandbox: from the process table, else from /proc while the process is
 * known alive; -1 when unknown, never the host pid), host_pid, cgroup_id,
 * process.
 * The image, first that applies:
 *   1. the exec map's entry, when the process table shows it was recorded
 *      after the process (this incarnation of the pid) was forked;
 *   2. /proc/PID/exe, when the process is known to be the same one
 *      (pidfd alive after the read, or no pidfd information);
 *   3. the process table's entry (an exited process keeps its name);
 *   4. the exec map's entry without that check when there is no process
 *      table (the pid may have been reused: documented risk);
 *   5. "unknown".
 * pidfd: a pidfd of the process (FAN_REPORT_PIDFD; the caller closes it),
 * -1 (FAN_NOPIDFD: it had exited when the record was read) or
 * MON_PIDFD_NONE.  execs may be NULL. */
void mon_name_process(struct proctable *procs, const struct exec_map *execs, pid_t host_pid,
		      int pidfd, struct cap_event *ev);

/* Sandbox path of the file named by one fanotify DFID_NAME info record
 * (info, avail bytes left in the record): the directory handle is opened on
 * root_fd, read back through /proc/self/fd and the host prefix of the
 * sandbox root (prefix, prefix_len; 0 if the root is "/") is stripped.
 * 0 or -errno (-EBADMSG malformed, -ESTALE directory gone, -EXDEV outside). */
int mon_fid_path(int root_fd, const char *prefix, size_t prefix_len, const void *info, size_t avail,
		 char *out, size_t outlen);

struct fanotify_event_metadata;
/* Called for each well-formed record: rec points at it in the read buffer
 * (only 4-byte aligned), md is an aligned copy of its header.  The record's
 * fd, if any, is closed after the call; its pidfd info is the callback's. */
typedef void (*mon_fan_record_fn)(void *ctx, const char *rec,
				  const struct fanotify_event_metadata *md);
/* Reads a non-blocking fanotify group until it is empty, into buf (buflen
 * bytes), and hands every record to fn.  0 when drained, or -errno. */
int mon_fan_read(int fan_fd, char *buf, size_t buflen, mon_fan_record_fn fn, void *ctx);

/* Opens what a monitor of the sandbox's overlay needs: *ret_root_fd, the
 * sandbox root (target_root_fd, an O_PATH fd) reopened O_RDONLY (fanotify_mark
 * refuses O_PATH); prefix, its host path ("" and *ret_prefix_len 0 if "/");
 * and a non-blocking notification group (DFID_NAME, pidfd, unlimited queue)
 * with a FILESYSTEM mark for mask, whose fd is returned.  -errno on failure
 * (*ret_root_fd is then closed or -1). */
int mon_fan_open(int target_root_fd, uint64_t mask, int *ret_root_fd, char *prefix,
		 size_t prefix_size, size_t *ret_prefix_len);

/* Drains a FAN_OPEN_EXEC-only fanotify group (fan_fd, non-blocking) into x;
 * buf of buflen bytes is scratch space.  0 or -errno. */
int mon_drain_execs(int fan_fd, int root_fd, const char *prefix, size_t prefix_len,
		    struct exec_map *x, char *buf, size_t buflen);
