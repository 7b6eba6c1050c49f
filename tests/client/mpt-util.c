/* mpt-util.c - see mpt-util.h. */
#include "mpt-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "mon-network.h"
#include "mon-process.h"

static void sink(void *userdata, const struct cap_event *ev)
{
	struct mpt_ctx *c = userdata;
	c->total++;
	if (!c->record)
		return;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 256;
		struct mpt_ev *nv = realloc(c->ev, ncap * sizeof(*nv));
		if (!nv)
			abort();
		c->ev = nv;
		c->cap = ncap;
	}
	struct mpt_ev *e = &c->ev[c->n++];
	cap_strlcpy(e->action, ev->action, sizeof(e->action));
	cap_strlcpy(e->process, ev->process, sizeof(e->process));
	cap_strlcpy(e->obj1, ev->object1, sizeof(e->obj1));
	cap_strlcpy(e->obj2, ev->object2, sizeof(e->obj2));
	cap_strlcpy(e->cmdline, ev->cmdline, sizeof(e->cmdline));
	e->pid = ev->pid;
	e->host_pid = ev->host_pid;
	e->cgroup_id = ev->cgroup_id;
}

static void on_error(void *userdata, const char *monitor, int err, const char *msg)
{
	struct mpt_ctx *c = userdata;
	fprintf(stderr, "# monitor %s error %d: %s\n", monitor, err, msg);
	c->errors++;
}

void mpt_callbacks(struct mpt_ctx *c, struct monitor_callbacks *ret)
{
	*ret = (struct monitor_callbacks){ .event = sink, .error = on_error, .userdata = c };
}

int mpt_setup(struct mpt_ctx *c, bool network)
{
	memset(c, 0, sizeof(*c));
	c->record = true;
	struct sandbox_plan plan;
	sandbox_plan_init(&plan);
	plan.state_dir = "/run/capture/monproc-test";
	plan.cgroup_parent = "monproc-test";
	plan.gateway.netns = MPT_GW;
	plan.network = network;
	const char *app = getenv("MPT_TESTAPP"), *probe = getenv("MPT_PROBE_BIN");
	if (!app || !probe)
		return -ENOENT;
	plan.binds[0] = (struct sandbox_bind){ .source = app, .target = MPT_TESTAPP };
	plan.binds[1] = (struct sandbox_bind){ .source = probe, .target = MPT_PROBE };
	struct sandbox_error e;
	int r = sandbox_new(&plan, &c->sb, &e);
	if (r < 0) {
		fprintf(stderr, "# sandbox_new: %s: %s (%s)\n", e.step, strerror(e.err), e.detail);
		return r;
	}
	r = sandbox_monitor_target(c->sb, &c->tgt);
	if (r < 0)
		return r;
	r = proctable_new(0, &c->procs);
	if (r < 0)
		return r;
	struct monitor_callbacks cb;
	mpt_callbacks(c, &cb);
	r = mon_process_ops.new(&c->tgt, c->procs, &cb, &c->mp);
	if (r < 0)
		return r;
	if (network)
		r = mon_network_ops.new(&c->tgt, c->procs, &cb, &c->mn);
	return r;
}

int mpt_setup_or_clean(struct mpt_ctx *c, bool network)
{
	int r = mpt_setup(c, network);
	if (r < 0) {
		fprintf(stderr, "# setup failed: %s\n", strerror(-r));
		mpt_teardown(c);
		return -1;
	}
	return 0;
}

void mpt_teardown(struct mpt_ctx *c)
{
	if (c->mn)
		mon_network_ops.free(c->mn);
	if (c->mp)
		mon_process_ops.free(c->mp);
	proctable_free(c->procs);
	sandbox_free(c->sb);
	(void)sandbox_gateway_down(MPT_GW);
	/* the (empty) parents the sandbox library made for our names */
	static const char *const parents[] = {
		"/sys/fs/cgroup/unified/monproc-test", "/sys/fs/cgroup/pids/monproc-test",
		"/sys/fs/cgroup/memory/monproc-test",  "/sys/fs/cgroup/cpu,cpuacct/monproc-test",
		"/run/capture/monproc-test",
	};
	for (size_t i = 0; i < sizeof(parents) / sizeof(parents[0]); i++)
		(void)rmdir(parents[i]);
	free(c->ev);
	memset(c, 0, sizeof(*c));
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One round of the loop; returns true when extra_fd became readable. */
static bool loop_once(struct mpt_ctx *c, int extra_fd, int timeout_ms)
{
	struct pollfd p[3];
	int n = 0;
	p[n++] = (struct pollfd){ .fd = mon_process_ops.fd(c->mp), .events = POLLIN };
	if (c->mn)
		p[n++] = (struct pollfd){ .fd = mon_network_ops.fd(c->mn), .events = POLLIN };
	if (extra_fd >= 0)
		p[n++] = (struct pollfd){ .fd = extra_fd, .events = POLLIN };
	if (poll(p, (nfds_t)n, timeout_ms) <= 0)
		return false;
	if (p[0].revents)
		(void)mon_process_ops.dispatch(c->mp);
	if (c->mn && p[1].revents)
		(void)mon_network_ops.dispatch(c->mn);
	return extra_fd >= 0 && p[n - 1].revents;
}

void mpt_loop(struct mpt_ctx *c, int ms)
{
	int64_t end = now_ms() + ms;
	for (int64_t t = now_ms(); t < end; t = now_ms())
		(void)loop_once(c, -1, (int)(end - t));
}

int mpt_run(struct mpt_ctx *c, const char *const *argv, const char *cgroup, char *out,
	    size_t outlen, int linger_ms)
{
	_cleanup_close_ int mfd = memfd_create("mpt-out", MFD_CLOEXEC);
	if (mfd < 0)
		return negative_errno();
	/* no LeakSanitizer in sanitizer builds of the programs run inside: its
	 * tracer is a process of its own and would be (rightly) reported */
	static const char *const envp[] = { "PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
					    "ASAN_OPTIONS=detect_leaks=0", NULL };
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.envp = envp;
	ex.cgroup = cgroup;
	ex.stdout_fd = mfd;
	ex.stderr_fd = 2;
	struct sandbox_process pr;
	int r = sandbox_spawn(c->sb, &ex, &pr);
	if (r < 0)
		return r;
	int64_t deadline = now_ms() + 120000;
	while (!loop_once(c, pr.status_fd, 100) && now_ms() < deadline)
		;
	int status = -1;
	r = sandbox_process_wait(&pr, 5000, &status);
	sandbox_process_done(&pr);
	mpt_loop(c, linger_ms);
	if (out && outlen) {
		ssize_t n = pread(mfd, out, outlen - 1, 0);
		out[n > 0 ? n : 0] = '\0';
	}
	return r < 0 ? r : status;
}

size_t mpt_count(const struct mpt_ctx *c, const char *action, const char *obj1, const char *obj2)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->ev[i].action, action) == 0 && (!obj1 || strcmp(c->ev[i].obj1, obj1) == 0) &&
		    (!obj2 || strcmp(c->ev[i].obj2, obj2) == 0))
			n++;
	return n;
}

const struct mpt_ev *mpt_find(const struct mpt_ctx *c, const char *action, const char *obj1)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->ev[i].action, action) == 0 && (!obj1 || strcmp(c->ev[i].obj1, obj1) == 0))
			return &c->ev[i];
	return NULL;
}

void mpt_dump(const struct mpt_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		fprintf(stderr, "# ev %-24s pid=%d host=%d cg=%llu proc=%s o1=%s o2=%s\n",
			c->ev[i].action, c->ev[i].pid, c->ev[i].host_pid,
			(unsigned long long)c->ev[i].cgroup_id, c->ev[i].process, c->ev[i].obj1,
			c->ev[i].obj2);
}
