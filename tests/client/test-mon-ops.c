/* test-mon-ops.c - monitor_ops_find(): the static table of monitors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "monitor.h"
#include "mon-file.h"
#include "mon-network.h"
#include "mon-process.h"
#include "mon-registry.h"

static void test_find_known(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const struct monitor_ops *ops;
	} want[] = {
	    {"file", &mon_file_ops},
	    {"process", &mon_process_ops},
	    {"network", &mon_network_ops},
	    {"registry", &mon_registry_ops},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct monitor_ops *o = monitor_ops_find(want[i].name);
		assert_ptr_equal(o, want[i].ops);
		assert_string_equal(o->name, want[i].name);
		/* every entry is complete: the client core calls all of them */
		assert_non_null(o->new);
		assert_non_null(o->free);
		assert_non_null(o->start);
		assert_non_null(o->stop);
		assert_non_null(o->fd);
		assert_non_null(o->dispatch);
		assert_non_null(o->stats);
	}
}

static void test_find_unknown(void **state)
{
	(void)state;
	assert_null(monitor_ops_find(NULL));
	assert_null(monitor_ops_find(""));
	assert_null(monitor_ops_find("File"));
	assert_null(monitor_ops_find("files"));
	assert_null(monitor_ops_find("fil"));
	assert_null(monitor_ops_find("registry "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find_known),
	    cmocka_unit_test(test_find_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
