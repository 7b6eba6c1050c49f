/* mpt-util.h - helpers for the process/network monitor tests and benches:
 * a real sandbox (own state dir, cgroup parent "monproc-test" and gateway
 * netns "monproc-gw"; capture-testapp and mpt-probe bound in), the process
 * and network monitors on it, an event recorder and a small epoll loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor.h"
#include "proctable.h"
#include "sandbox.h"

#define MPT_TESTAPP "/usr/local/bin/capture-testapp"
#define MPT_PROBE "/usr/local/bin/mpt-probe"
#define MPT_GW "monproc-gw"

struct mpt_ev {
	char action[48];
	pid_t pid, host_pid;
	uint64_t cgroup_id;
	char process[256];
	char obj1[128];
	char obj2[256];
	char cmdline[256]; /* process events: cap_event.cmdline (mongaps) */
};

struct mpt_ctx {
	struct sandbox *sb;
	struct monitor_target tgt;
	struct proctable *procs;
	struct monitor *mp, *mn;
	bool record; /* keep events (else only count them) */
	struct mpt_ev *ev;
	size_t n, cap, total;
	int errors;
	int lost_errors;
};

/* Builds the sandbox (network optional) and creates the monitors (the
 * network one only with network).  0 or -errno. */
int mpt_setup(struct mpt_ctx *c, bool network);
/* The recorder's callbacks (for a monitor made by the test itself). */
void mpt_callbacks(struct mpt_ctx *c, struct monitor_callbacks *ret);
/* mpt_setup, and on failure a message and mpt_teardown; 0 or -1 (cmocka). */
int mpt_setup_or_clean(struct mpt_ctx *c, bool network);
void mpt_teardown(struct mpt_ctx *c);

/* Runs argv inside (stdout captured into out), driving the monitors until
 * it has exited and then for linger_ms more.  Returns its wait status or -errno. */
int mpt_run(struct mpt_ctx *c, const char *const *argv, const char *cgroup, char *out,
	    size_t outlen, int linger_ms);
/* Drives the monitors for ms milliseconds. */
void mpt_loop(struct mpt_ctx *c, int ms);

/* Number of recorded events matching action (and obj1/obj2 when not NULL). */
size_t mpt_count(const struct mpt_ctx *c, const char *action, const char *obj1, const char *obj2);
const struct mpt_ev *mpt_find(const struct mpt_ctx *c, const char *action, const char *obj1);
void mpt_dump(const struct mpt_ctx *c);
