/* test-exclusion.c - golden table for the exclusion-list matcher
 * (src/lib/exclusion.h): a fixed list x a table of events -> verdicts,
 * plus loading errors (file + line), server-pushed rules and anchoring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exclusion.h"

static const char golden_rules[] =
	"# file monitor defaults\n"
	"+\tRead\t.*\t.*\n"
	"+\tOpen\t.*\t.*\n"
	"+\tWrite\t/usr/lib/chromium/chromium\t/root/\\.config/chromium/.*\n"
	"+\tWrite\t.*\t/tmp/[^/]*\\.tmp\n"
	"-\tWrite\t.*\t/tmp/.*evil.*\n"
	"+\tCreate\t.*/chromium\t/root/\\.cache/.*\n"
	"-\tcreate\t.*\t.*\\.(sh|elf)\n"
	"+\tDelete\t.*\t/tmp/.*\n"
	"\n"
	"   # indented comment\n"
	"+\tchromium\t.*\t/usr/lib/chromium/chromium\r\n"
	"+\ttcp-connection\t.*chromium\t10\\.200\\.0\\.1:(80|443)\n";

struct golden {
	const char *action, *subject, *object;
	enum excl_verdict want;
};

static const struct golden table[] = {
	{ "Read", "/bin/sh", "/etc/passwd", EXCL_EXCLUDE },
	{ "READ", "/bin/sh", "/etc/passwd", EXCL_EXCLUDE }, /* action case-insensitive */
	{ "open", "x", "", EXCL_EXCLUDE },
	{ "Write", "/usr/lib/chromium/chromium", "/root/.config/chromium/Default/Prefs", EXCL_EXCLUDE },
	{ "Write", "/USR/LIB/CHROMIUM/CHROMIUM", "/ROOT/.config/chromium/x", EXCL_EXCLUDE },
	{ "Write", "/usr/lib/chromium/chromium-x", "/root/.config/chromium/x", EXCL_REPORT }, /* anchored end */
	{ "Write", "/x/usr/lib/chromium/chromium", "/root/.config/chromium/x", EXCL_REPORT }, /* anchored start */
	{ "Write", "/usr/lib/chromium/chromium", "/root/.bashrc", EXCL_REPORT },
	{ "Write", "/bin/sh", "/tmp/a.tmp", EXCL_EXCLUDE },
	{ "Write", "/bin/sh", "/tmp/sub/a.tmp", EXCL_REPORT },
	{ "Write", "/bin/sh", "/tmp/evil.tmp", EXCL_REPORT }, /* '-' wins over '+' */
	{ "Write", "/bin/sh", "/tmp/EVIL.tmp", EXCL_REPORT },
	{ "Create", "/usr/lib/chromium/chromium", "/root/.cache/x/y", EXCL_EXCLUDE },
	{ "Create", "/usr/lib/chromium/chromium", "/root/.cache/drop.sh", EXCL_REPORT }, /* '-' declared later */
	{ "Create", "/usr/lib/chromium/chromium", "/root/.cache/drop.SH", EXCL_REPORT },
	{ "Create", "/bin/sh", "/root/.cache/x", EXCL_REPORT },
	{ "Delete", "/bin/rm", "/tmp/x", EXCL_EXCLUDE },
	{ "Delete", "/bin/rm", "/tmpx", EXCL_REPORT },
	{ "Rename", "/bin/mv", "/tmp/x", EXCL_REPORT }, /* no rule for the action */
	{ "chromium", "/usr/lib/chromium/chromium", "/usr/lib/chromium/chromium", EXCL_EXCLUDE },
	{ "Chromium", "/bin/sh", "/usr/lib/chromium/chromium", EXCL_EXCLUDE },
	{ "chromium", "/bin/sh", "/tmp/chromium", EXCL_REPORT },
	{ "tcp-connection", "/usr/lib/chromium/chromium", "10.200.0.1:443", EXCL_EXCLUDE },
	{ "tcp-connection", "/usr/lib/chromium/chromium", "10.200.0.1:4430", EXCL_REPORT },
	{ "tcp-connection", "/usr/lib/chromium/chromium", "10x200.0.1:80", EXCL_REPORT },
	{ "tcp-connection", "/bin/curl", "10.200.0.1:80", EXCL_REPORT },
	{ "", "/bin/sh", "/x", EXCL_REPORT },
	{ "Write", NULL, NULL, EXCL_REPORT },
	{ "Write", "/bin/sh", "/tmp/a\nevil.tmp", EXCL_REPORT }, /* DOTALL: '.' crosses a newline, '-' matches */
};

struct errlog {
	unsigned lines[16];
	char sources[16][64];
	int n;
};

static void on_error(void *userdata, const char *source, unsigned line, const char *msg)
{
	struct errlog *e = userdata;
	assert_non_null(msg);
	assert_true(msg[0] != '\0');
	if (e->n < 16) {
		e->lines[e->n] = line;
		snprintf(e->sources[e->n], sizeof(e->sources[0]), "%s", source);
		e->n++;
	}
}

static void test_golden(void **state)
{
	struct excl_list *l = NULL;
	struct errlog e = { 0 };
	(void)state;

	assert_int_equal(excl_list_new(&l), 0);
	assert_int_equal(excl_list_load_buffer(l, "golden", golden_rules, strlen(golden_rules),
					       on_error, &e),
			 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(excl_list_size(l), 10);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct golden *g = &table[i];
		enum excl_verdict v = excl_list_match(l, g->action, g->subject, g->object);
		if (v != g->want)
			fail_msg("row %zu: %s %s %s: got %d want %d", i, g->action,
				 g->subject ? g->subject : "(null)", g->object ? g->object : "(null)",
				 v, g->want);
	}
	excl_list_free(l);
}

static void test_empty_list_reports(void **state)
{
	struct excl_list *l = NULL;
	(void)state;
	assert_int_equal(excl_list_new(&l), 0);
	assert_int_equal(excl_list_match(l, "Write", "/bin/sh", "/x"), EXCL_REPORT);
	assert_int_equal(excl_list_size(l), 0);
	excl_list_free(l);
	excl_list_free(NULL);
}

static void test_bad_lines(void **state)
{
	static const char text[] = "+\tWrite\t.*\t/ok\n"	   /* 1 good */
				   "*\tWrite\t.*\t.*\n"		   /* 2 bad sign */
				   "+\t.*\t.*\t.*\n"		   /* 3 '.*' as action */
				   "+\tWrite\t(unclosed\t.*\n"	   /* 4 bad regex */
				   "+\tWrite\t.*\n"		   /* 5 too few columns */
				   "+\tWrite\t.*\t.*\textra\n"	   /* 6 too many */
				   "# fine\n"			   /* 7 */
				   "-\tDelete\t.*\t/ok2\n"	   /* 8 good */
				   "+ Write .* .*\n";		   /* 9 spaces, not TABs */
	char path[] = "/tmp/monfile-excl-XXXXXX";
	struct excl_list *l = NULL;
	struct errlog e = { 0 };
	int fd;
	(void)state;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_int_equal(excl_list_new(&l), 0);
	assert_int_equal(excl_list_load_file(l, path, on_error, &e), 6);
	unlink(path);
	assert_int_equal(e.n, 6);
	const unsigned want[] = { 2, 3, 4, 5, 6, 9 };
	for (int i = 0; i < 6; i++) {
		assert_int_equal(e.lines[i], want[i]);
		assert_string_equal(e.sources[i], path);
	}
	assert_int_equal(excl_list_size(l), 2);
	assert_int_equal(excl_list_match(l, "write", "/a", "/ok"), EXCL_EXCLUDE);
	assert_int_equal(excl_list_match(l, "write", "/a", "/ok3"), EXCL_REPORT);
	assert_int_equal(excl_list_load_file(l, "/nonexistent/monfile", on_error, &e), -ENOENT);
	excl_list_free(l);
}

static void test_server_rule(void **state)
{
	struct excl_list *l = NULL;
	char err[128] = "";
	(void)state;

	assert_int_equal(excl_list_new(&l), 0);
	assert_int_equal(excl_list_add_rule(l, '+', "Write", ".*", "/var/log/.*", err, sizeof(err)), 0);
	assert_int_equal(excl_list_match(l, "Write", "/bin/x", "/var/log/syslog"), EXCL_EXCLUDE);
	assert_int_equal(excl_list_add_rule(l, '-', "WRITE", ".*", ".*\\.so", err, sizeof(err)), 0);
	assert_int_equal(excl_list_match(l, "Write", "/bin/x", "/var/log/x.so"), EXCL_REPORT);
	assert_int_equal(excl_list_add_rule(l, '?', "Write", ".*", ".*", err, sizeof(err)), -EINVAL);
	assert_int_equal(excl_list_add_rule(l, '+', ".*", ".*", ".*", err, sizeof(err)), -EINVAL);
	assert_true(err[0] != '\0');
	assert_int_equal(excl_list_add_rule(l, '+', "Write", "[", ".*", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "subject"));
	assert_int_equal(excl_list_add_rule(l, '+', "Write", ".*", "a(", NULL, 0), -EINVAL);
	assert_int_equal(excl_list_size(l), 2);
	excl_list_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_empty_list_reports),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_server_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
