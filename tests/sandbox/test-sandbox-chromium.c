/* test-sandbox-chromium.c - proves the sandbox environment is complete enough
 * for a real browser (fonts, /dev/shm, /proc, a home, the user's passwd
 * entry): Debian's Chromium, started directly (/usr/lib/chromium/chromium)
 * as the sandbox user, dumps the DOM of a data: URL whose script ran.  Run
 * once with --no-sandbox and once with Chromium's own sandbox (the mode the
 * visitor uses), which needs unprivileged user namespaces inside. */
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

/* Runs Chromium in a fresh sandbox (seccomp on, user namespaces as given);
 * returns whether it dumped the DOM of the page with its script run. */
static bool chromium_works(bool no_sandbox, bool allow_userns)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	assert_true(plan.seccomp);
	plan.allow_userns = allow_userns;
	struct sandbox *sb = sbt_build(&plan);
	assert_non_null(sb);
	const char *argv[] = {CHROMIUM, "--headless", "--disable-gpu", "--no-first-run",
			      "--disable-background-networking", "--disable-component-update",
			      "--disable-sync", "--user-data-dir=/tmp/prof", "--dump-dom", PAGE,
			      no_sandbox ? "--no-sandbox" : NULL, NULL};
	static char out[65536];
	int st = -1;
	int r = sbt_run(sb, argv, NULL, out, sizeof(out), 60000, &st);
	fprintf(stderr, "chromium %s, userns %s: r=%d status=%d\n%s\n",
		no_sandbox ? "--no-sandbox" : "(own sandbox)", allow_userns ? "allowed" : "denied", r,
		st, out);
	assert_int_equal(r, 0);
	sbt_free(sb);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "<title>js ran</title>");
}

static void run_chromium(bool no_sandbox)
{
	assert_true(chromium_works(no_sandbox, true));
}

/* With user namespaces denied by the seccomp filter, Chromium runs only with
 * --no-sandbox: its own sandbox needs them (there is no setuid helper, and
 * no_new_privs would defeat one), which is why allow_userns defaults to true. */
static void test_chromium_no_userns(void **state)
{
	assert_true(chromium_works(true, false));
	assert_false(chromium_works(false, false));
	(void)state;
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
		sbt_unit_test(test_chromium_no_sandbox),
		sbt_unit_test(test_chromium_own_sandbox),
		sbt_unit_test(test_chromium_no_userns),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	sbt_cleanup_leftovers();
	return r;
}
