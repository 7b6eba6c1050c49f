/* test-proctable.c - the process table: parent inheritance, exec, exit,
 * pid reuse, eviction of the oldest exited entry, bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "proctable.h"

static int count_live(struct proc_entry *e, void *userdata)
{
	(*(size_t *)userdata)++;
	return e->exited ? -1 : 0;
}

static void test_fork_exec_exit(void **state)
{
	struct proctable *t;
	assert_int_equal(proctable_new(8, &t), 0);
	struct proc_entry *e;
	assert_int_equal(proctable_add(t, 100, 0, 1, &e), 0);
	assert_int_equal(proctable_set_exec(t, 100, "/sbin/init", "init --x"), 0);
	e->cgroup_id = 77;
	assert_int_equal(proctable_add(t, 101, 100, 2, &e), 0);
	assert_string_equal(e->path, "/sbin/init"); /* inherited at fork */
	assert_string_equal(e->cmdline, "init --x");
	assert_int_equal(e->cgroup_id, 77);
	assert_false(e->execed);
	assert_int_equal(proctable_set_exec(t, 101, "/bin/sh", "sh -c true"), 0);
	assert_true(proctable_get(t, 101)->execed);
	assert_string_equal(proctable_get(t, 100)->path, "/sbin/init");
	assert_true(proctable_is_live(t, 101));
	assert_int_equal(proctable_exit(t, 101), 0);
	assert_int_equal(proctable_exit(t, 101), -EALREADY);
	assert_false(proctable_is_live(t, 101));
	assert_string_equal(proctable_get(t, 101)->path, "/bin/sh"); /* still named */
	assert_int_equal(proctable_exit(t, 555), -ENOENT);
	assert_int_equal(proctable_set_exec(t, 555, "/x", NULL), -ENOENT);
	assert_int_equal(proctable_size(t), 2);
	assert_int_equal(proctable_live(t), 1);
	size_t n = 0;
	assert_int_equal(proctable_foreach_live(t, count_live, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(proctable_add(t, 0, 1, 0, NULL), -EINVAL);
	proctable_free(t);
	proctable_free(NULL);
}

static void test_eviction(void **state)
{
	struct proctable *t;
	assert_int_equal(proctable_new(4, &t), 0);
	for (pid_t p = 1; p <= 4; p++)
		assert_int_equal(proctable_add(t, p, 0, 0, NULL), 0);
	/* full of live entries: refused */
	assert_int_equal(proctable_add(t, 5, 1, 0, NULL), -ENOSPC);
	assert_int_equal(proctable_exit(t, 3), 0);
	assert_int_equal(proctable_exit(t, 2), 0);
	/* the oldest exit (3) goes first, then 2 */
	assert_int_equal(proctable_add(t, 5, 1, 0, NULL), 0);
	assert_null(proctable_get(t, 3));
	assert_non_null(proctable_get(t, 2));
	assert_int_equal(proctable_add(t, 6, 1, 0, NULL), 0);
	assert_null(proctable_get(t, 2));
	assert_int_equal(proctable_size(t), 4);
	assert_int_equal(proctable_add(t, 7, 1, 0, NULL), -ENOSPC);
	proctable_free(t);
}

static void test_pid_reuse(void **state)
{
	struct proctable *t;
	assert_int_equal(proctable_new(0, &t), 0);
	assert_int_equal(proctable_add(t, 10, 0, 0, NULL), 0);
	assert_int_equal(proctable_set_exec(t, 10, "/old", NULL), 0);
	assert_int_equal(proctable_exit(t, 10), 0);
	struct proc_entry *e;
	assert_int_equal(proctable_add(t, 10, 0, 5, &e), 0);
	assert_false(e->exited);
	assert_string_equal(e->path, "");
	assert_int_equal(proctable_size(t), 1);
	assert_int_equal(proctable_live(t), 1);
	/* many entries across buckets */
	for (pid_t p = 1000; p < 21000; p++)
		assert_int_equal(proctable_add(t, p, 10, 0, NULL), p - 1000 < 16383 ? 0 : -ENOSPC);
	assert_int_equal(proctable_live(t), 16384);
	proctable_free(t);
}

static void test_cmdline(void **state)
{
	char out[8];
	proctable_cmdline_from_raw(out, sizeof(out), "a\0bc\0", 5);
	assert_string_equal(out, "a bc");
	proctable_cmdline_from_raw(out, sizeof(out), "abcdefghij", 10);
	assert_string_equal(out, "abcdefg");
	proctable_cmdline_from_raw(out, sizeof(out), "", 0);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fork_exec_exit),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_pid_reuse),
		cmocka_unit_test(test_cmdline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
