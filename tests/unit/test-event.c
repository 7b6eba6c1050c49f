#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "event.h"

static void test_strlcpy_truncates(void **state)
{
	char buf[4];

	assert_false(cap_strlcpy(buf, "abc", sizeof buf));
	assert_string_equal(buf, "abc");
	assert_true(cap_strlcpy(buf, "abcd", sizeof buf));
	assert_string_equal(buf, "abc");
	assert_false(cap_strlcpy(buf, NULL, sizeof buf));
	assert_string_equal(buf, "");
}

static void test_type_names_round_trip(void **state)
{
	for (int t = 0; t < CAP_EV_TYPE_MAX; t++) {
		enum cap_event_type back;
		assert_int_equal(cap_event_type_from_name(cap_event_type_name(t), &back), 0);
		assert_int_equal(back, t);
	}
	enum cap_event_type dummy;
	assert_int_equal(cap_event_type_from_name("bogus", &dummy), -EINVAL);
	assert_null(cap_event_type_name(CAP_EV_TYPE_MAX));
}

static void test_event_init(void **state)
{
	struct cap_event ev;
	char big[CAP_OBJ_MAX * 2];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	cap_event_init(&ev, CAP_EV_FILE, "Write", "/usr/bin/sh", big, NULL);
	assert_int_equal(ev.type, CAP_EV_FILE);
	assert_string_equal(ev.action, "Write");
	assert_int_equal(strlen(ev.object1), CAP_OBJ_MAX - 1);
	assert_string_equal(ev.object2, "");
	assert_true(ev.time.tv_sec > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strlcpy_truncates),
		cmocka_unit_test(test_type_names_round_trip),
		cmocka_unit_test(test_event_init),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
