/* test-client-config: capture-client's --config file (options.c): keys, the
 * flags overriding the file, TLS files all-or-none, errors with file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "client/client.h"
#include "log.h"

static char path[64];

static void write_conf(const char *text)
{
	snprintf(path, sizeof(path), "/tmp/test-client-config-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int parse(struct client_options *o, int argc, const char **argv)
{
	client_options_init(o);
	return client_options_parse(o, argc, (char **)argv);
}

static void test_file_then_flags(void **state)
{
	write_conf("# a farm host\n"
	           "server = 192.0.2.1\n"
	           "port=7071\n"
	           "  vm-server-id = host-a  \n"
	           "vm-id = 1\n"
	           "\n"
	           "tls-ca = /etc/capture/tls/ca.pem\n"
	           "tls-cert = /etc/capture/tls/host-a.pem\n"
	           "tls-key = /etc/capture/tls/host-a.key\n"
	           "connect-tries = 30\n");
	struct client_options o;
	const char *argv[] = {"capture-client", "--config", path, "--vm-id", "7", NULL};
	assert_int_equal(parse(&o, 5, argv), 0);
	assert_string_equal(o.server, "192.0.2.1");
	assert_int_equal(o.port, 7071);
	assert_string_equal(o.vm_server_id, "host-a");
	assert_string_equal(o.vm_id, "7"); /* the flag wins, wherever it stands */
	assert_int_equal(o.connect_tries, 30);
	assert_string_equal(o.tls_ca, "/etc/capture/tls/ca.pem");
	assert_string_equal(o.tls_cert, "/etc/capture/tls/host-a.pem");
	assert_string_equal(o.tls_key, "/etc/capture/tls/host-a.key");
	const char *argv2[] = {"capture-client", "-p", "9000", "-c", path, NULL};
	assert_int_equal(parse(&o, 5, argv2), 0);
	assert_int_equal(o.port, 9000);
	unlink(path);
}

static void test_errors(void **state)
{
	static const char *const bad[] = {
		"server = a\nbogus = 1\n", "server = a\nport = 70000\n", "server a\n",
		"vm-server-id = a b\n", "server =\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_conf(bad[i]);
		struct client_options o;
		const char *argv[] = {"capture-client", "--config", path, NULL};
		assert_int_equal(parse(&o, 3, argv), -EINVAL);
		unlink(path);
	}
	struct client_options o;
	const char *argv[] = {"capture-client", "--config", "/nonexistent/client.conf", NULL};
	assert_int_equal(parse(&o, 3, argv), -EINVAL);
}

static void test_tls_all_or_none(void **state)
{
	struct client_options o;
	const char *argv[] = {"capture-client", "-s", "127.0.0.1", "--tls-ca", "ca.pem", NULL};
	assert_int_equal(parse(&o, 5, argv), -EINVAL);
	const char *argv2[] = {"capture-client", "-s", "127.0.0.1", "--tls-ca", "ca.pem",
	                       "--tls-cert", "h.pem", "--tls-key", "h.key", NULL};
	assert_int_equal(parse(&o, 9, argv2), 0);
	assert_string_equal(o.tls_key, "h.key");
}

int main(void)
{
	log_init("test-client-config", 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_then_flags),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_tls_all_or_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
