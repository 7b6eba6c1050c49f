/* test-mon-file.c - the file monitor on a real sandbox (state dir
 * /run/capture/monfile-test, cgroup parent "monfile-test", no network):
 * create, write (merged), rename, chmod +x, delete, an mmap write seen only
 * by the upper diff, and a burst of > 100,000 file events with nothing lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mon-file.h"
#include "mon-process.h"
#include "proctable.h"
#include "sandbox.h"

struct rec {
	char action[32], obj1[128], obj2[128], process[128];
};

struct ctx {
	struct sandbox *sb;
	struct monitor_target tgt;
	struct proctable *procs;
	struct monitor *mf, *mp; /* the process monitor names writers that have exited */
	struct rec ev[64];
	size_t n;
	size_t creates, writes, deletes, other;
	int errors;
};

static void sink(void *userdata, const struct cap_event *ev)
{
	struct ctx *c = userdata;
	if (strcmp(ev->action, "Create") == 0)
		c->creates++;
	else if (strcmp(ev->action, "Write") == 0)
		c->writes++;
	else if (strcmp(ev->action, "Delete") == 0)
		c->deletes++;
	else
		c->other++;
	if (strncmp(ev->object1, "/tmp/mf-", 8) == 0 && c->n < 64) {
		struct rec *r = &c->ev[c->n++];
		cap_strlcpy(r->action, ev->action, sizeof(r->action));
		cap_strlcpy(r->obj1, ev->object1, sizeof(r->obj1));
		cap_strlcpy(r->obj2, ev->object2, sizeof(r->obj2));
		cap_strlcpy(r->process, ev->process, sizeof(r->process));
	}
}

static void proc_sink(void *userdata, const struct cap_event *ev)
{
	(void)userdata;
	(void)ev;
}

static void on_error(void *userdata, const char *monitor, int err, const char *msg)
{
	struct ctx *c = userdata;
	fprintf(stderr, "# %s: %s (%s)\n", monitor, msg, strerror(-err));
	c->errors++;
}

static int run(struct ctx *c, const char *script)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	static const char *const envp[] = { "PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
					    "ASAN_OPTIONS=detect_leaks=0", NULL };
	struct sandbox_exec ex;
	struct sandbox_process pr;
	int status = -1, r;

	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.envp = envp;
	ex.stderr_fd = 2;
	r = sandbox_spawn(c->sb, &ex, &pr);
	if (r < 0)
		return r;
	for (int i = 0; i < 6000; i++) { /* drive both monitors as the client's loop would */
		r = sandbox_process_wait(&pr, 20, &status);
		(void)mon_process_ops.dispatch(c->mp);
		(void)mon_file_ops.dispatch(c->mf);
		if (r != -ETIMEDOUT)
			break;
	}
	(void)mon_process_ops.dispatch(c->mp);
	sandbox_process_done(&pr);
	return r < 0 ? r : status;
}

static int teardown(void **state);

static int setup_fail(void **state)
{
	(void)teardown(state); /* cmocka does not call teardown after a failed setup */
	*state = NULL;
	return -1;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct sandbox_plan plan;
	struct sandbox_error e;
	struct monitor_callbacks cb = { .event = sink, .error = on_error, .userdata = c };
	int r;

	if (!c)
		return -1;
	*state = c;
	sandbox_plan_init(&plan);
	plan.state_dir = "/run/capture/monfile-test";
	plan.cgroup_parent = "monfile-test";
	plan.network = false;
	r = sandbox_new(&plan, &c->sb, &e);
	if (r < 0) {
		fprintf(stderr, "# sandbox_new: %s: %s (%s)\n", e.step, strerror(e.err), e.detail);
		return setup_fail(state);
	}
	if (sandbox_monitor_target(c->sb, &c->tgt) < 0 || proctable_new(0, &c->procs) < 0)
		return setup_fail(state);
	struct monitor_callbacks pcb = { .event = proc_sink, .error = on_error, .userdata = c };
	if (mon_process_ops.new(&c->tgt, c->procs, &pcb, &c->mp) < 0 ||
	    mon_process_ops.start(c->mp) < 0)
		return setup_fail(state);
	r = mon_file_ops.new(&c->tgt, c->procs, &cb, &c->mf);
	if (r < 0) {
		fprintf(stderr, "# mon_file new: %s\n", strerror(-r));
		return setup_fail(state);
	}
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	if (!c)
		return 0;
	mon_file_ops.free(c->mf);
	if (c->mp) {
		(void)mon_process_ops.stop(c->mp);
		mon_process_ops.free(c->mp);
	}
	proctable_free(c->procs);
	sandbox_free(c->sb);
	free(c);
	(void)rmdir("/run/capture/monfile-test"); /* our parents, if now empty */
	(void)rmdir("/sys/fs/cgroup/unified/monfile-test");
	(void)rmdir("/sys/fs/cgroup/pids/monfile-test");
	(void)rmdir("/sys/fs/cgroup/memory/monfile-test");
	return 0;
}

static size_t count(const struct ctx *c, const char *action, const char *o1, const char *o2)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->ev[i].action, action) == 0 && strcmp(c->ev[i].obj1, o1) == 0 &&
		    (!o2 || strcmp(c->ev[i].obj2, o2) == 0))
			n++;
	return n;
}

static void test_actions(void **state)
{
	struct ctx *c = *state;
	struct monitor_stats st;

	/* before the visit: a file that the visit will change through mmap only */
	assert_int_equal(run(c, "printf 0123456789 > /tmp/mf-mm"), 0);
	assert_int_equal(mon_file_ops.start(c->mf), 0);
	assert_int_equal(run(c, "echo a > /tmp/mf-1 && echo b >> /tmp/mf-1 && echo c >> /tmp/mf-1 && "
				"mv /tmp/mf-1 /tmp/mf-2 && chmod +x /tmp/mf-2 && sleep 0.5 && rm /tmp/mf-2 && "
				"python3 -c 'import mmap\n"
				"f = open(\"/tmp/mf-mm\", \"r+b\")\n"
				"m = mmap.mmap(f.fileno(), 0)\n"
				"m[0:4] = b\"MMAP\"\n"
				"m.flush()'"),
			 0);
	assert_int_equal(mon_file_ops.stop(c->mf), 0);
	for (size_t i = 0; i < c->n; i++)
		fprintf(stderr, "# %-7s %-14s %-14s %s\n", c->ev[i].action, c->ev[i].obj1,
			c->ev[i].obj2, c->ev[i].process);
	assert_int_equal(count(c, "Create", "/tmp/mf-1", NULL), 1);
	assert_int_equal(count(c, "Write", "/tmp/mf-1", NULL), 1); /* three writes merged */
	assert_int_equal(count(c, "Rename", "/tmp/mf-1", "/tmp/mf-2"), 1);
	assert_int_equal(count(c, "Chmod", "/tmp/mf-2", "+x"), 1);
	assert_int_equal(count(c, "Delete", "/tmp/mf-2", NULL), 1);
	assert_int_equal(count(c, "Write", "/tmp/mf-mm", "upper-diff"), 1);
	assert_int_equal(c->n, 6);
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->ev[i].obj2, "upper-diff") != 0)
			assert_true(strstr(c->ev[i].process, "/") != NULL);
	mon_file_ops.stats(c->mf, &st);
	assert_string_equal(c->ev[0].process, "/usr/bin/dash"); /* writer of mf-1 = /bin/sh */
	/* short-lived writers are named by the image they exec'd (FAN_OPEN_EXEC) */
	assert_string_equal(c->ev[2].process, "/usr/bin/mv");
	assert_string_equal(c->ev[3].process, "/usr/bin/chmod");
	assert_string_equal(c->ev[4].process, "/usr/bin/rm");
	assert_int_equal(c->other, 2); /* Rename, Chmod: no Open/Read by default */
	assert_int_equal(st.reported, st.delivered + st.suppressed);
	assert_int_equal(st.lost, 0);
	assert_int_equal(c->errors, 0);
}

static void test_burst(void **state)
{
	struct ctx *c = *state;
	struct monitor_stats st;

	assert_int_equal(mon_file_ops.start(c->mf), 0);
	assert_int_equal(run(c, "python3 -c 'import os\n"
				"for i in range(34000):\n"
				"    p = \"/tmp/mfb%d\" % i\n"
				"    with open(p, \"w\") as f: f.write(\"x\")\n"
				"    os.unlink(p)'"),
			 0);
	assert_int_equal(mon_file_ops.stop(c->mf), 0);
	mon_file_ops.stats(c->mf, &st);
	fprintf(stderr, "# reported %llu delivered %llu suppressed %llu lost %llu\n",
		(unsigned long long)st.reported, (unsigned long long)st.delivered,
		(unsigned long long)st.suppressed, (unsigned long long)st.lost);
	assert_true(st.reported >= 100000);
	assert_int_equal(st.reported, st.delivered + st.suppressed);
	assert_int_equal(st.lost, 0);
	assert_int_equal(c->creates, 34000);
	assert_int_equal(c->writes, 34000);
	assert_int_equal(c->deletes, 34000);
	assert_int_equal(c->errors, 0);
}

/* Open/Read behind options; the client's own reads are not events. */
static void test_options(void **state)
{
	struct ctx *c = *state;
	struct monitor_stats st;
	char buf[16];

	assert_int_equal(run(c, "echo hello > /tmp/mf-open"), 0);
	assert_int_equal(mon_file_set_options(c->mf, 0x100), -EINVAL);
	assert_int_equal(mon_file_set_options(c->mf, MON_FILE_OPEN | MON_FILE_READ), 0);
	assert_int_equal(mon_file_ops.start(c->mf), 0);
	/* our own open + read through the sandbox root, first: not an event */
	int fd = openat(c->tgt.root_fd, "tmp/mf-open", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 6);
	close(fd);
	assert_int_equal(run(c, "cat /tmp/mf-open /tmp/mf-open > /dev/null"), 0);
	assert_int_equal(mon_file_ops.stop(c->mf), 0);
	for (size_t i = 0; i < c->n; i++)
		fprintf(stderr, "# %-7s %-14s %-14s %s\n", c->ev[i].action, c->ev[i].obj1,
			c->ev[i].obj2, c->ev[i].process);
	assert_int_equal(c->n, 2); /* two opens and two reads of the same file: merged */
	assert_int_equal(count(c, "Open", "/tmp/mf-open", "-1"), 1);
	assert_int_equal(count(c, "Read", "/tmp/mf-open", "-1"), 1);
	assert_string_equal(c->ev[0].process, "/usr/bin/cat");
	assert_string_equal(c->ev[1].process, "/usr/bin/cat");
	assert_true(c->other >= 2); /* cat also opens its libraries */
	mon_file_ops.stats(c->mf, &st);
	assert_int_equal(st.reported, st.delivered + st.suppressed);
	assert_int_equal(st.lost, 0);

	/* switched off again: nothing */
	c->n = 0;
	c->other = 0;
	assert_int_equal(mon_file_set_options(c->mf, 0), 0);
	assert_int_equal(mon_file_ops.start(c->mf), 0);
	assert_int_equal(run(c, "cat /tmp/mf-open > /dev/null"), 0);
	assert_int_equal(mon_file_ops.stop(c->mf), 0);
	assert_int_equal(c->n, 0);
	assert_int_equal(c->other, 0);
	assert_int_equal(c->errors, 0);
}

/* A writer that exited before the record was read, with no process table:
 * only the FAN_OPEN_EXEC record can name it. */
static void test_exited_writer(void **state)
{
	struct ctx *c = *state;
	struct monitor *mf;
	struct monitor_callbacks cb = { .event = sink, .error = on_error, .userdata = c };
	const char *argv[] = { "/bin/sh", "-c", "touch /tmp/mf-short", NULL };
	struct sandbox_exec ex;
	struct sandbox_process pr;
	int status = -1;

	assert_int_equal(mon_file_ops.new(&c->tgt, NULL, &cb, &mf), 0);
	assert_int_equal(mon_file_ops.start(mf), 0);
	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.stderr_fd = 2;
	assert_int_equal(sandbox_spawn(c->sb, &ex, &pr), 0);
	assert_int_equal(sandbox_process_wait(&pr, 60000, &status), 0); /* no dispatch meanwhile */
	sandbox_process_done(&pr);
	assert_int_equal(status, 0);
	assert_int_equal(mon_file_ops.stop(mf), 0);
	mon_file_ops.free(mf);
	for (size_t i = 0; i < c->n; i++)
		fprintf(stderr, "# %-7s %-14s %-14s %s\n", c->ev[i].action, c->ev[i].obj1,
			c->ev[i].obj2, c->ev[i].process);
	assert_int_equal(count(c, "Create", "/tmp/mf-short", "-1"), 1);
	assert_string_equal(c->ev[0].process, "/usr/bin/touch");
	assert_int_equal(c->errors, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exited_writer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
