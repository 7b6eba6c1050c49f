/* mon-process.h - the process monitor (proc connector); see mon-process.c
 * for the design and docs/monitors.md "Process monitor" for the events. */
#pragma once

#include "monitor.h"

/* The vtable ("process"), for the static monitor table. */
extern const struct monitor_ops mon_process_ops;

/* How long a forked process may stay without exec before its `created`
 * event is reported with the image it inherited (default 100 ms). */
#define MON_PROCESS_DEFAULT_GRACE_MS 100
int mon_process_set_grace(struct monitor *m, unsigned grace_ms);

/* Sets the netlink receive buffer (default 32 MB, SO_RCVBUFFORCE); tests
 * use a tiny one to provoke ENOBUFS. */
int mon_process_set_rcvbuf(struct monitor *m, int bytes);

/* Forces a resynchronisation against the sandbox cgroup's cgroup.procs (what
 * an ENOBUFS triggers); exported for tests. */
int mon_process_resync(struct monitor *m);
