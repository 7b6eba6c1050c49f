/* test-frame: message splitting for both directions, limits, cap_buf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "frame.h"

static void test_nul_split_bytewise(void **state)
{
	static const char in[] = "<connect server=\"2.5\"/>\0<ping/>\n\0\0<option name=\"a\" value=\"b\"/>";
	struct cap_framer f;
	const char *msg;
	size_t len;
	int got = 0;

	cap_framer_init(&f, CAP_FRAME_NUL, 0);
	for (size_t i = 0; i < sizeof(in) - 1; i++) {
		assert_int_equal(cap_framer_feed(&f, in + i, 1), 0);
		while (cap_framer_next(&f, &msg, &len) == 1) {
			if (got == 0)
				assert_string_equal(msg, "<connect server=\"2.5\"/>");
			else
				assert_string_equal(msg, "<ping/>");
			assert_int_equal(strlen(msg), len);
			got++;
		}
	}
	assert_int_equal(got, 2);
	/* the option has no terminator yet */
	assert_int_equal(cap_framer_next(&f, &msg, &len), 0);
	assert_int_equal(cap_framer_feed(&f, "", 1), 0);
	assert_int_equal(cap_framer_next(&f, &msg, &len), 1);
	assert_string_equal(msg, "<option name=\"a\" value=\"b\"/>");
	cap_framer_done(&f);
}

static void test_line_crlf_and_lf(void **state)
{
	static const char in[] = "<pong/>\r\n\r\n<pong/>\n  \n<visit-event a=\"1\"/>\r\n";
	struct cap_framer f;
	const char *msg;
	size_t len;

	cap_framer_init(&f, CAP_FRAME_LINE, 0);
	assert_int_equal(cap_framer_feed(&f, in, sizeof(in) - 1), 0);
	assert_int_equal(cap_framer_next(&f, &msg, &len), 1);
	assert_string_equal(msg, "<pong/>");
	assert_int_equal(cap_framer_next(&f, &msg, &len), 1);
	assert_string_equal(msg, "<pong/>");
	assert_int_equal(cap_framer_next(&f, &msg, &len), 1);
	assert_string_equal(msg, "<visit-event a=\"1\"/>");
	assert_int_equal(len, 20);
	assert_int_equal(cap_framer_next(&f, &msg, &len), 0);
	assert_int_equal(cap_framer_pending(&f), 0);
	cap_framer_done(&f);
}

static void test_over_limit_unterminated(void **state)
{
	struct cap_framer f;
	const char *msg;
	size_t len;
	char chunk[100];

	memset(chunk, 'a', sizeof(chunk));
	cap_framer_init(&f, CAP_FRAME_LINE, 250);
	assert_int_equal(cap_framer_feed(&f, chunk, 100), 0);
	assert_int_equal(cap_framer_next(&f, &msg, &len), 0);
	assert_int_equal(cap_framer_feed(&f, chunk, 100), 0);
	assert_int_equal(cap_framer_next(&f, &msg, &len), 0);
	assert_int_equal(cap_framer_feed(&f, chunk, 100), 0);
	assert_int_equal(cap_framer_next(&f, &msg, &len), -EMSGSIZE);
	/* sticky */
	assert_int_equal(cap_framer_feed(&f, "\n", 1), -EMSGSIZE);
	assert_int_equal(cap_framer_next(&f, &msg, &len), -EMSGSIZE);
	cap_framer_done(&f);
}

static void test_over_limit_terminated(void **state)
{
	struct cap_framer f;
	const char *msg;
	size_t len;
	char big[302];

	memset(big, 'b', 300);
	big[300] = '\0';
	cap_framer_init(&f, CAP_FRAME_NUL, 250);
	assert_int_equal(cap_framer_feed(&f, "<ping/>", 8), 0);
	assert_int_equal(cap_framer_feed(&f, big, 301), 0);
	assert_int_equal(cap_framer_next(&f, &msg, &len), 1);
	assert_string_equal(msg, "<ping/>");
	assert_int_equal(cap_framer_next(&f, &msg, &len), -EMSGSIZE);
	cap_framer_done(&f);

	/* exactly at the limit is fine */
	cap_framer_init(&f, CAP_FRAME_NUL, 300);
	assert_int_equal(cap_framer_feed(&f, big, 301), 0);
	assert_int_equal(cap_framer_next(&f, &msg, &len), 1);
	assert_int_equal(len, 300);
	cap_framer_done(&f);
}

static void test_default_limit_1mib(void **state)
{
	struct cap_framer f;
	const char *msg;
	size_t len, n = CAP_FRAME_DEFAULT_MAX + 10;
	char *big = malloc(n);

	assert_non_null(big);
	memset(big, 'x', n);
	cap_framer_init(&f, CAP_FRAME_LINE, 0);
	assert_int_equal(cap_framer_feed(&f, big, n), 0);
	assert_int_equal(cap_framer_next(&f, &msg, &len), -EMSGSIZE);
	cap_framer_done(&f);
	free(big);
}

static void test_buf_flush_pipe(void **state)
{
	struct cap_buf b = {.max = 64};
	int p[2];
	char rd[64];

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(cap_buf_puts(&b, "hello "), 0);
	assert_int_equal(cap_buf_printf(&b, "%s-%d", "world", 42), 0);
	assert_int_equal(cap_buf_unsent(&b), 14);
	assert_int_equal(cap_buf_flush(&b, p[1]), 1);
	assert_int_equal(read(p[0], rd, sizeof(rd)), 14);
	assert_memory_equal(rd, "hello world-42", 14);
	assert_int_equal(cap_buf_unsent(&b), 0);
	/* bound */
	char big[65];
	memset(big, 'z', sizeof(big));
	assert_int_equal(cap_buf_append(&b, big, 65), -EMSGSIZE);
	assert_int_equal(cap_buf_append(&b, big, 64), 0);
	size_t len;
	char *s = cap_buf_steal(&b, &len);
	assert_int_equal(len, 64);
	assert_int_equal(strlen(s), 64);
	free(s);
	cap_buf_done(&b);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nul_split_bytewise),
		cmocka_unit_test(test_line_crlf_and_lf),
		cmocka_unit_test(test_over_limit_unterminated),
		cmocka_unit_test(test_over_limit_terminated),
		cmocka_unit_test(test_default_limit_1mib),
		cmocka_unit_test(test_buf_flush_pipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
