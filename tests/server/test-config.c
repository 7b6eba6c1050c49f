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
	/* clients not given: one per online CPU */
	assert_int_equal(c.local_clients, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	assert_int_equal(c.n_ignored, 0);
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
	expect_error("<config>\n<global/>\n<global/>\n</config>\n", 3, "only once");
	expect_error("<config>\n<no-vm-server/>\n<local-sandbox/>\n</config>\n", 3, "only one of");
	struct server_config c;
	char err[512];
	assert_int_equal(config_load("/nonexistent/server-config.xml", XSD, &c, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/server-config.xml"));
}

/* Entries of an original Capture-HPC config: reported, counted, ignored. */
static void test_original_entries(void **state)
{
	struct server_config c;
	char err[512];
	assert_int_equal(
	    write_cfg("<?xml version=\"1.0\"?>\n"
		      "<config xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
		      "<global group_size=\"5\" same_vm_revert_delay=\"6\"/>\n"
		      "<exclusion-list monitor=\"file\" file=\"FileMonitor.exl\"/>\n"
		      "<preprocessor classname=\"capture.TestPreprocessor\"/>\n"
		      "<database database-type=\"MySQL\" database-url=\"jdbc:x\" "
		      "database-username=\"u\" database-password=\"p\"/>\n"
		      "<virtual-machine-server type=\"vmware-server\" address=\"127.0.0.1\" "
		      "port=\"902\" username=\"a\" password=\"b\">\n"
		      "  <virtual-machine vm-path=\"C:\\VMs\\xp.vmx\" client-path=\"C:\\c.bat\" "
		      "username=\"a\" password=\"b\"/>\n"
		      "</virtual-machine-server>\n"
		      "</config>\n"),
	    0);
	if (config_load(path, XSD, &c, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(c.n_ignored, 4); /* preprocessor, database, vm server, vm */
	assert_int_equal(c.backend, BACKEND_LOCAL);
	assert_string_equal(c.database_url, "results.db");
	assert_int_equal(c.same_vm_revert_delay, 6);
	assert_int_equal(c.n_exclusions, 1);
	/* relative to the config's folder */
	assert_string_equal(c.exclusions[0].file, "/tmp/FileMonitor.exl");
	assert_int_equal(
	    write_cfg("<config><virtual-machine-server type=\"no-vm-server\"/></config>"), 0);
	assert_int_equal(config_load(path, XSD, &c, err, sizeof(err)), 0);
	assert_int_equal(c.backend, BACKEND_NONE);
	assert_int_equal(c.n_ignored, 0);
}

/* <database database-type="postgresql">: the original's element is ours
 * now (any case, JDBC url kept as given); password-file is read relative to
 * the config's folder, its first line only; a missing one is an error. */
static void test_database_postgresql(void **state)
{
	struct server_config c;
	char err[512];
	assert_int_equal(
	    write_cfg("<config><database database-type=\"PostgreSQL\" "
		      "database-url=\"jdbc:postgresql://db.example:5433/capture\" "
		      "database-username=\"capture\" database-password=\"secret\"/></config>"),
	    0);
	if (config_load(path, XSD, &c, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(c.n_ignored, 0);
	assert_string_equal(c.database_type, "PostgreSQL");
	assert_string_equal(c.database_url, "jdbc:postgresql://db.example:5433/capture");
	assert_string_equal(c.database_username, "capture");
	assert_string_equal(c.database_password, "secret");

	char pw[] = "/tmp/server-test-config-pw-XXXXXX";
	int fd = mkstemp(pw);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "from-file\nsecond line\n", 23), 23);
	close(fd);
	char text[512];
	snprintf(text, sizeof(text),
		 "<config><database database-type=\"postgresql\" database-url=\"service=capture\""
		 " password-file=\"%s\"/></config>",
		 strrchr(pw, '/') + 1); /* relative: the config is in /tmp too */
	assert_int_equal(write_cfg(text), 0);
	if (config_load(path, XSD, &c, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(c.database_url, "service=capture");
	assert_string_equal(c.database_password, "from-file");
	unlink(pw);
	assert_int_equal(config_load(path, XSD, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "password-file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shipped),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_original_entries),
	    cmocka_unit_test(test_database_postgresql),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
