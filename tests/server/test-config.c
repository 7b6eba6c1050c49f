/* test-config.c - config.xml loading: the shipped file, defaults for missing
 * attributes, and errors that name the file and line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture-config.h"
#include "server/config.h"

#define XSD CAPTURE_SRCDIR "/etc/config.xsd"

static char path[] = "/tmp/server-test-config-XXXXXX";

static int write_cfg(const char *text)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int setup(void **state)
{
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static void test_shipped(void **state)
{
	struct server_config c;
	char err[512];
	int r = config_load(CAPTURE_SRCDIR "/etc/config.xml", XSD, &c, err, sizeof(err));
	if (r < 0)
		fail_msg("%s", err);
	assert_int_equal(c.group_size, 20);
	assert_int_equal(c.algorithm, SCHED_DAC);
	assert_int_equal(c.backend, BACKEND_LOCAL);
	assert_int_equal(c.local_clients, 2);
	assert_string_equal(c.client_path, "capture-client");
	assert_int_equal(c.max_message_size, 1048576);
	assert_true(c.terminate);
}

static void test_defaults(void **state)
{
	struct server_config c, d;
	char err[512];
	assert_int_equal(write_cfg("<config>\n<global group_size=\"5\"/>\n<no-vm-server/>\n"
	                           "</config>\n"),
	                 0);
	assert_int_equal(config_load(path, XSD, &c, err, sizeof(err)), 0);
	config_defaults(&d);
	assert_int_equal(c.group_size, 5);
	assert_int_equal(c.backend, BACKEND_NONE);
	assert_int_equal(c.client_inactivity_timeout, d.client_inactivity_timeout);
	assert_int_equal(c.client_inactivity_timeout, 60);
	assert_string_equal(c.client_default, "firefox");
	assert_string_equal(c.database_url, "results.db");
}

static void expect_error(const char *text, int line, const char *needle)
{
	struct server_config c;
	char err[512], want[600];
	assert_int_equal(write_cfg(text), 0);
	assert_int_equal(config_load(path, XSD, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, needle))
		fail_msg("got \"%s\", want prefix \"%s\" and \"%s\"", err, want, needle);
}

static void test_errors(void **state)
{
	expect_error("<config>\n\n<global group_size=\"abc\"/>\n</config>\n", 3, "group_size");
	expect_error("<config>\n<global group_size=\"0\"/>\n</config>\n", 2, "from 1 to 1000");
	expect_error("<config>\n<global/>\n<bogus/>\n</config>\n", 3, "bogus");
	expect_error("<config>\n<global algorithm=\"fast\"/>\n</config>\n", 2, "algorithm");
	expect_error("<config>\n<global\n</config>\n", 3, "");
	expect_error("<config>\n<virtual-machine-server type=\"vmware-server\"/>\n</config>\n", 2,
	             "not supported");
	struct server_config c;
	char err[512];
	assert_int_equal(config_load("/nonexistent/server-config.xml", XSD, &c, err, sizeof(err)),
	                 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/server-config.xml"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
