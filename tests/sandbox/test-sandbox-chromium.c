/* test-sandbox-chromium.c - proves the sandbox environment is complete enough
 * for a real browser (fonts, /dev/shm, /proc, a home, the user's passwd
 * entry): Debian's Chromium, started directly (/usr/lib/chromium/chromium)
 * as the sandbox user, dumps the DOM of a data: URL whose script ran.  Run
 * once with --no-sandbox (the mode the visitor uses) and once with
 * Chromium's own sandbox, which needs unprivileged user namespaces inside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"
#include "sbt-util.h"

#define CHROMIUM "/usr/lib/chromium/chromium"
#define PAGE "data:text/html,<title>x</title><script>document.title='js ran'</script>"

static void run_chromium(bool no_sandbox)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	struct sandbox *sb = sbt_build(&plan);
	assert_non_null(sb);
	const char *argv[] = {CHROMIUM, "--headless", "--disable-gpu", "--no-first-run",
			      "--disable-background-networking", "--disable-component-update",
			      "--disable-sync", "--user-data-dir=/tmp/prof", "--dump-dom", PAGE,
			      no_sandbox ? "--no-sandbox" : NULL, NULL};
	static char out[65536];
	int st = -1;
	int r = sbt_run(sb, argv, NULL, out, sizeof(out), 60000, &st);
	fprintf(stderr, "chromium %s: r=%d status=%d\n%s\n", no_sandbox ? "--no-sandbox" : "(own sandbox)",
		r, st, out);
	assert_int_equal(r, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_non_null(strstr(out, "<title>js ran</title>"));
	sandbox_free(sb);
}

static void test_chromium_no_sandbox(void **state)
{
	run_chromium(true);
	(void)state;
}

static void test_chromium_own_sandbox(void **state)
{
	run_chromium(false);
	(void)state;
}

int main(void)
{
	if (geteuid() != 0 || access(CHROMIUM, X_OK) != 0) {
		fprintf(stderr, "test-sandbox-chromium needs root and " CHROMIUM "\n");
		return 77;
	}
	sbt_lock();
	sbt_cleanup_leftovers();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chromium_no_sandbox),
		cmocka_unit_test(test_chromium_own_sandbox),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	sbt_cleanup_leftovers();
	return r;
}
