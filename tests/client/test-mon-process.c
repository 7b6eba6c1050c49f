/* test-mon-process.c - the process monitor on a real sandbox: fork, exec,
 * double fork and exit give exactly the expected created/terminated events
 * with the right parent, pids as seen inside and the URL's cgroup id; a
 * burst of 10,000 processes loses nothing; processes already inside are
 * found by the cgroup.procs resynchronisation.  Root, real kernel. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mon-process.h"
#include "mpt-util.h"

#define TRUE_BIN "/usr/bin/true"

static struct mpt_ctx ctx;

static int setup(void **state)
{
	return mpt_setup_or_clean(&ctx, false);
}

static int teardown(void **state)
{
	mpt_teardown(&ctx);
	return 0;
}

/* The pid after "key=" on the line of `what` (e.g. "ok exec"), -1 if absent. */
static long pid_after(const char *out, const char *what, const char *key)
{
	const char *l = strstr(out, what);
	if (!l)
		return -1;
	const char *k = strstr(l, key);
	return k ? strtol(k + strlen(key), NULL, 10) : -1;
}

/* Runs argv inside and waits for it without reading the monitor meanwhile
 * (its messages queue up); the wait status, *ret_inner its pid inside. */
static int run_undispatched(const char *const *argv, pid_t *ret_inner)
{
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	struct sandbox_process pr;
	assert_int_equal(sandbox_spawn(ctx.sb, &ex, &pr), 0);
	int st;
	assert_int_equal(sandbox_process_wait(&pr, 60000, &st), 0);
	*ret_inner = pr.inner_pid;
	sandbox_process_done(&pr);
	return st;
}

static const struct mpt_ev *created(long pid)
{
	char o1[32];
	snprintf(o1, sizeof(o1), "%ld", pid);
	return mpt_find(&ctx, "created", o1);
}

/* Whether an event says "pid unknown" (-1): a process that exited and was
 * reaped before the monitor read its NSpid (test_reaped forces it). */
static bool any_unknown_pid(void)
{
	for (size_t i = 0; i < ctx.n; i++)
		if (ctx.ev[i].pid == -1 || strcmp(ctx.ev[i].obj1, "-1") == 0)
			return true;
	return false;
}

static void test_tree(void **state)
{
	uint64_t cg;
	const char *argv[] = { MPT_TESTAPP, "run",
			       "exec " TRUE_BIN "; fork; doublefork { exec " TRUE_BIN " }", NULL };
	char out[4096];
	int st;
	/* These processes live for microseconds: on a loaded machine one can
	 * be reaped before the monitor handles its fork, and its pid is then
	 * reported as unknown, correctly (test_reaped).  That is retried; a
	 * wrong pid is never accepted. */
	for (int attempt = 1;; attempt++) {
		char name[32];
		snprintf(name, sizeof(name), "monproc-url1-%d", attempt);
		assert_int_equal(sandbox_cgroup_new(ctx.sb, name, &cg), 0);
		ctx.n = 0;
		assert_int_equal(mon_process_ops.start(ctx.mp), 0);
		st = mpt_run(&ctx, argv, name, out, sizeof(out), 600);
		assert_int_equal(mon_process_ops.stop(ctx.mp), 0);
		fprintf(stderr, "# testapp output:\n%s", out);
		mpt_dump(&ctx);
		if (!any_unknown_pid() || attempt == 5)
			break;
		fprintf(stderr, "# a pid was unknown (reaped before its fork was handled): again\n");
	}
	assert_int_equal(st, 0);
	long t = strtol(out, NULL, 10);
	long x = pid_after(out, "ok exec", "pid="), f = pid_after(out, "ok fork", "pid="),
	     g = pid_after(out, "ok doublefork", "pid=");
	const char *gl = strstr(out, "ok doublefork");
	long gg = gl ? pid_after(gl + 1, "ok exec", "pid=") : -1;
	assert_true(t > 1 && x > 1 && f > 1 && g > 1 && gg > 1);

	/* exactly 6 processes: testapp, exec child, fork child, the doublefork's
	 * middle child, the grandchild, the grandchild's exec child */
	assert_int_equal(mpt_count(&ctx, "created", NULL, NULL), 6);
	assert_int_equal(mpt_count(&ctx, "terminated", NULL, NULL), 6);
	assert_int_equal(ctx.n, 12);

	const struct proc_entry *init = proctable_get(ctx.procs, ctx.tgt.init_pid);
	const struct mpt_ev *e = created(t);
	assert_non_null(e);
	assert_int_equal(e->pid, 1);
	assert_string_equal(e->process, init->path);
	assert_string_equal(e->obj2, MPT_TESTAPP);
	/* the command line travels with the event (cap_event.cmdline) */
	static const char cmdline[] = MPT_TESTAPP " run exec " TRUE_BIN "; fork; doublefork { exec " TRUE_BIN " }";
	assert_string_equal(e->cmdline, cmdline);

	e = created(x);
	assert_non_null(e);
	assert_int_equal(e->pid, t);
	assert_string_equal(e->process, MPT_TESTAPP);
	assert_string_equal(e->obj2, TRUE_BIN);

	e = created(f); /* fork without exec: the inherited image */
	assert_non_null(e);
	assert_int_equal(e->pid, t);
	assert_string_equal(e->obj2, MPT_TESTAPP);
	assert_string_equal(e->cmdline, cmdline); /* and command line */

	e = created(g);
	assert_non_null(e);
	long c = e->pid; /* the middle child, created by the testapp */
	assert_true(c != t && c > 1);
	assert_string_equal(e->obj2, MPT_TESTAPP);
	const struct mpt_ev *ec = created(c);
	assert_non_null(ec);
	assert_int_equal(ec->pid, t);

	e = created(gg);
	assert_non_null(e);
	assert_int_equal(e->pid, g);
	assert_string_equal(e->obj2, TRUE_BIN);

	long all[] = { t, x, f, c, g, gg };
	for (size_t i = 0; i < 6; i++) {
		char o1[32];
		snprintf(o1, sizeof(o1), "%ld", all[i]);
		assert_int_equal(mpt_count(&ctx, "terminated", o1, NULL), 1);
		assert_int_equal(mpt_count(&ctx, "created", o1, NULL), 1);
	}
	for (size_t i = 0; i < ctx.n; i++) {
		assert_int_equal(ctx.ev[i].cgroup_id, cg); /* bulk attribution */
		assert_true(ctx.ev[i].host_pid > 0);
	}
	struct monitor_stats s;
	mon_process_ops.stats(ctx.mp, &s);
	assert_int_equal(s.lost, 0);
	assert_int_equal(s.delivered, 12);
	assert_int_equal(s.reported, s.delivered + s.suppressed);
	assert_int_equal(ctx.errors, 0);
}

static void test_burst(void **state)
{
	ctx.n = 0;
	assert_int_equal(mon_process_ops.start(ctx.mp), 0);
	const char *argv[] = { MPT_TESTAPP, "run", "burst-procs 10000", NULL };
	char out[512];
	int st = mpt_run(&ctx, argv, NULL, out, sizeof(out), 300);
	assert_int_equal(mon_process_ops.stop(ctx.mp), 0);
	assert_int_equal(st, 0);
	long t = strtol(out, NULL, 10);
	struct monitor_stats s;
	mon_process_ops.stats(ctx.mp, &s);
	fprintf(stderr, "# burst: reported=%llu delivered=%llu suppressed=%llu lost=%llu\n",
		(unsigned long long)s.reported, (unsigned long long)s.delivered,
		(unsigned long long)s.suppressed, (unsigned long long)s.lost);
	assert_int_equal(s.lost, 0);
	assert_int_equal(ctx.errors, 0);
	assert_int_equal(mpt_count(&ctx, "created", NULL, NULL), 10001);
	assert_int_equal(mpt_count(&ctx, "terminated", NULL, NULL), 10001);
	assert_int_equal(s.delivered, 20002);
	assert_int_equal(s.reported, s.delivered + s.suppressed);
	size_t children = 0;
	for (size_t i = 0; i < ctx.n; i++)
		if (strcmp(ctx.ev[i].action, "created") == 0 && ctx.ev[i].pid == t)
			children++;
	assert_int_equal(children, 10000);
}

static void test_resync(void **state)
{
	/* a process started before the monitor exists is found in cgroup.procs */
	const char *argv[] = { MPT_TESTAPP, "run", "sleep 1500", NULL };
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	struct sandbox_process pr;
	assert_int_equal(sandbox_spawn(ctx.sb, &ex, &pr), 0);
	mpt_loop(&ctx, 200);
	mon_process_ops.free(ctx.mp);
	ctx.mp = NULL;
	proctable_free(ctx.procs);
	assert_int_equal(proctable_new(0, &ctx.procs), 0);
	struct monitor_callbacks cb;
	mpt_callbacks(&ctx, &cb);
	struct monitor *m2;
	assert_int_equal(mon_process_ops.new(&ctx.tgt, ctx.procs, &cb, &m2), 0);
	ctx.mp = m2;
	const struct proc_entry *e = proctable_get(ctx.procs, pr.pid);
	assert_non_null(e);
	assert_false(e->exited);
	assert_string_equal(e->path, MPT_TESTAPP);
	assert_int_equal(e->inner_pid, pr.inner_pid);
	assert_int_equal(mon_process_resync(ctx.mp), 0); /* idempotent */
	int st;
	assert_int_equal(sandbox_process_wait(&pr, 10000, &st), 0);
	sandbox_process_done(&pr);
	mpt_loop(&ctx, 100);
	e = proctable_get(ctx.procs, pr.pid);
	assert_non_null(e);
	assert_true(e->exited);
}

static void test_enobufs(void **state)
{
	/* a tiny receive buffer and a reader that stalls during a burst: the
	 * loss is counted and reported, and the resynchronisation ends the
	 * processes that exited meanwhile */
	ctx.n = 0;
	ctx.errors = 0;
	assert_int_equal(mon_process_set_rcvbuf(ctx.mp, 4096), 0);
	assert_int_equal(mon_process_ops.start(ctx.mp), 0);
	const char *argv[] = { MPT_TESTAPP, "run", "burst-procs 500", NULL };
	pid_t inner;
	(void)run_undispatched(argv, &inner);
	mpt_loop(&ctx, 300);
	assert_int_equal(mon_process_ops.stop(ctx.mp), 0);
	assert_int_equal(mon_process_set_rcvbuf(ctx.mp, 32 << 20), 0);
	struct monitor_stats s;
	mon_process_ops.stats(ctx.mp, &s);
	mpt_dump(&ctx);
	fprintf(stderr, "# enobufs: reported=%llu delivered=%llu lost=%llu errors=%d\n",
		(unsigned long long)s.reported, (unsigned long long)s.delivered,
		(unsigned long long)s.lost, ctx.errors);
	assert_true(s.lost >= 1);
	assert_true(ctx.errors >= 1);
	/* its EXEC and NSpid may be lost with the overflow: then its pid inside
	 * is unknown ("-1", never the host pid) and it has the image it was
	 * forked with */
	char o1[32];
	snprintf(o1, sizeof(o1), "%d", inner);
	size_t unknown = 0;
	for (size_t i = 0; i < ctx.n; i++) {
		assert_true(ctx.ev[i].pid == -1 || ctx.ev[i].pid != ctx.ev[i].host_pid);
		if (!strcmp(ctx.ev[i].action, "terminated") && !strcmp(ctx.ev[i].obj1, "-1") &&
		    ctx.ev[i].host_pid > 0) {
			/* the actor of `terminated` is the parent: find the subject by
			   its parent, pid 1 of the sandbox */
			if (ctx.ev[i].pid == 1)
				unknown++;
		}
	}
	assert_int_equal(mpt_count(&ctx, "terminated", o1, NULL) + unknown, 1);
	assert_int_equal(proctable_live(ctx.procs), 1); /* only pid 1 is left */
}

/* The root cause of test_tree's failures under load: a child that exited
 * and was reaped before its FORK message was handled has no readable NSpid.
 * Forced here: nothing is dispatched until the testapp has finished.  Its
 * processes are still all reported (membership is by fork ancestry), and
 * their pids inside say "unknown" (-1), never the host pid. */
static void test_reaped(void **state)
{
	ctx.n = 0;
	ctx.errors = 0;
	assert_int_equal(mon_process_ops.start(ctx.mp), 0);
	const char *argv[] = { MPT_TESTAPP, "run", "exec " TRUE_BIN "; fork; exec " TRUE_BIN, NULL };
	pid_t inner;
	int st = run_undispatched(argv, &inner);
	assert_int_equal(st, 0);
	mpt_loop(&ctx, 300);
	assert_int_equal(mon_process_ops.stop(ctx.mp), 0);
	mpt_dump(&ctx);
	/* testapp, two exec children, one fork child: all waited for, all gone */
	assert_int_equal(mpt_count(&ctx, "created", NULL, NULL), 4);
	assert_int_equal(mpt_count(&ctx, "terminated", NULL, NULL), 4);
	assert_int_equal(mpt_count(&ctx, "created", "-1", NULL), 4);
	assert_int_equal(mpt_count(&ctx, "terminated", "-1", NULL), 4);
	size_t by_init = 0;
	for (size_t i = 0; i < ctx.n; i++) {
		const struct mpt_ev *e = &ctx.ev[i];
		assert_true(e->host_pid > 1);
		/* the actor: pid 1 (known, alive) for the testapp, else unknown */
		assert_true(e->pid == 1 || e->pid == -1);
		by_init += e->pid == 1;
	}
	/* (the images are not checked: with /proc gone, only the FAN_OPEN_EXEC
	   names of a monitor with a sandbox root fd know them; not set up here) */
	assert_int_equal(by_init, 2); /* the testapp's created and terminated */
	struct monitor_stats s;
	mon_process_ops.stats(ctx.mp, &s);
	assert_int_equal(s.lost, 0);
	assert_int_equal(ctx.errors, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_reaped),
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_resync),
		cmocka_unit_test(test_enobufs),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
