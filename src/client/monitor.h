/* monitor.h - the common interface of the client's monitors (ARCHITECTURE.md
 * §2, issue 4): file (fanotify), process (proc connector), network
 * (sock_diag + pcap flows) and registry (configuration hives).
 *
 * A monitor watches one sandbox from the host side.  It is told what to
 * watch through struct monitor_target (filled by the sandbox library), and it
 * hands every event it observes, before exclusions, to the sink callback; the
 * analyzer applies the exclusion lists and attribution.  A monitor is driven
 * by the client's single epoll loop: it exposes one fd (its own epoll fd if
 * it has several), and dispatch() is called when that fd is readable.
 *
 * Accounting is part of the contract: every event the kernel reported is
 * either delivered to the sink or counted in `lost` (and reported through
 * the error callback), never dropped silently.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "event.h"

struct proctable;

/* What a monitor needs to know about the sandbox it watches. */
struct monitor_target {
	pid_t init_pid;		 /* host pid of the sandbox's pid 1 (fork-ancestry root) */
	int root_fd;		 /* O_PATH|O_DIRECTORY fd of the sandbox root (/proc/PID/root) */
	int netns_fd;		 /* the sandbox's network namespace */
	const char *upper_dir;	 /* host path of the overlay upper dir (end-of-visit diff) */
	const char *lower_dir;	 /* host path of the overlay lower dir ("/" or an image) */
	const char *cgroup_path; /* host path of the sandbox's cgroup v2 directory */
	uint64_t cgroup_id;	 /* its cgroup v2 id */
	const char *veth_host;	 /* host-side veth name (for pcap), NULL without network */
};

struct monitor_stats {
	uint64_t reported;  /* events the kernel reported for the sandbox */
	uint64_t delivered; /* events handed to the sink */
	uint64_t suppressed; /* events merged or recognised as internal noise (documented per monitor) */
	uint64_t lost;	    /* events known lost (queue overflow, ENOBUFS) */
};

struct monitor_callbacks {
	/* Every observed event; the sink copies what it keeps. */
	void (*event)(void *userdata, const struct cap_event *ev);
	/* A loss or failure the server must hear about (err is -errno). */
	void (*error)(void *userdata, const char *monitor, int err, const char *msg);
	void *userdata;
};

struct monitor;

struct monitor_ops {
	const char *name; /* "file", "process", "network", "registry" */
	int (*new)(const struct monitor_target *target, struct proctable *procs,
		   const struct monitor_callbacks *cb, struct monitor **ret);
	void (*free)(struct monitor *m);
	/* Begin a visit: from now on events are delivered. */
	int (*start)(struct monitor *m);
	/* End a visit: drain everything pending (and run end-of-visit scans,
	 * e.g. the upper-layer diff) before returning. */
	int (*stop)(struct monitor *m);
	/* The fd to poll for EPOLLIN, or -1 if the monitor needs none. */
	int (*fd)(struct monitor *m);
	/* Called when fd() is readable; handles what is there without blocking. */
	int (*dispatch)(struct monitor *m);
	void (*stats)(struct monitor *m, struct monitor_stats *ret);
};

/* Looks a monitor up by name in the static table; NULL if unknown. */
const struct monitor_ops *monitor_ops_find(const char *name);
