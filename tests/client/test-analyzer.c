/* test-analyzer.c - the client's analyzer (src/client/analyzer.c): profiles
 * from folders + the rules the server pushes (file-/process-/registry-
 * exclusion): a pushed rule reaches every profile, loaded before or after
 * it; the same rule pushed again (the server sends its lists after every
 * reconnect) is kept once; a bad pushed rule is refused; a local '-' rule
 * still wins over a pushed '+' rule; a new connection clears what the server
 * pushed but keeps the client's own rules; the warning at start for an
 * application without exclusion lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture-config.h"
#include "client.h"
#include "event.h"
#include "visitor.h"

static char dir[64];

static void write_file(const char *rel, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-analyzer-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char p[256];
	snprintf(p, sizeof(p), "%s/system", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/app", dir);
	mkdir(p, 0755);
	write_file("system/FileMonitor.exl", "-\tChmod\t.*\t.*\n");
	write_file("app/FileMonitor.exl", "+\tWrite\t/usr/bin/app\t/home/u/\\.app/.*\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static bool bad(struct analyzer *a, const char *profile, enum cap_event_type t, const char *action,
		const char *process, const char *o1, const char *o2)
{
	struct cap_event ev;
	cap_event_init(&ev, t, action, process, o1, o2);
	return analyzer_unauthorized(a, profile, &ev);
}

static void test_pushed(void **state)
{
	(void)state;
	struct analyzer *a = NULL;
	assert_int_equal(analyzer_new(dir, &a), 0);
	assert_int_equal(analyzer_load_profile(a, "app"), 0);

	/* before any pushed rule */
	assert_true(bad(a, "app", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	assert_false(bad(a, "app", CAP_EV_FILE, "Write", "/usr/bin/app", "/home/u/.app/c", "-1"));
	assert_true(bad(a, "app", CAP_EV_PROCESS, "created", "/usr/bin/app", "7", "/usr/bin/true"));

	/* pushed: reaches the loaded profiles (system, app) */
	assert_int_equal(
	    analyzer_add_rule(a, CAP_EV_FILE, true, "Create", "/usr/bin/app", "/tmp/x"), 0);
	assert_int_equal(analyzer_add_rule(a, CAP_EV_PROCESS, true, "true", ".*", "/usr/bin/true"),
			 0);
	assert_int_equal(analyzer_add_rule(a, CAP_EV_FILE, true, "Chmod", ".*", ".*"), 0);
	assert_int_equal(analyzer_pushed_count(a), 3);
	assert_false(bad(a, "app", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	assert_false(bad(a, NULL, CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	assert_false(
	    bad(a, "app", CAP_EV_PROCESS, "created", "/usr/bin/app", "7", "/usr/bin/true"));
	assert_false(
	    bad(a, "app", CAP_EV_PROCESS, "terminated", "/usr/bin/app", "7", "/usr/bin/true"));
	/* exactly that: another file, another writer, another image are reported */
	assert_true(bad(a, "app", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/y", "-1"));
	assert_true(bad(a, "app", CAP_EV_FILE, "Create", "/usr/bin/other", "/tmp/x", "-1"));
	assert_true(bad(a, "app", CAP_EV_FILE, "Write", "/usr/bin/app", "/tmp/x", "-1"));
	assert_true(
	    bad(a, "app", CAP_EV_PROCESS, "created", "/usr/bin/app", "7", "/usr/bin/false"));
	/* the system profile's '-' Chmod rule wins over the pushed '+' */
	assert_true(bad(a, "app", CAP_EV_FILE, "Chmod", "/usr/bin/app", "/tmp/x", "+x"));

	/* a profile loaded after the push has the pushed rules too */
	assert_int_equal(analyzer_load_profile(a, "later"), 0);
	assert_false(bad(a, "later", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	assert_true(bad(a, "later", CAP_EV_FILE, "Write", "/usr/bin/app", "/home/u/.app/c", "-1"));

	/* the server pushes its lists again after a reconnect: kept once */
	for (int i = 0; i < 5000; i++)
		assert_int_equal(
		    analyzer_add_rule(a, CAP_EV_FILE, true, "Create", "/usr/bin/app", "/tmp/x"), 0);
	assert_int_equal(analyzer_pushed_count(a), 3);
	/* same strings, other sign or monitor: a different rule */
	assert_int_equal(
	    analyzer_add_rule(a, CAP_EV_FILE, false, "Create", "/usr/bin/app", "/tmp/x"), 0);
	assert_int_equal(
	    analyzer_add_rule(a, CAP_EV_REGISTRY, true, "Create", "/usr/bin/app", "/tmp/x"), 0);
	assert_int_equal(analyzer_pushed_count(a), 5);
	/* and the '-' now reports the Create again, in every profile */
	assert_true(bad(a, "app", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	assert_true(bad(a, "later", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));

	/* refused: bad regex, '*' in the action; nothing is kept */
	assert_true(analyzer_add_rule(a, CAP_EV_FILE, true, "Write", "(", ".*") < 0);
	assert_true(analyzer_add_rule(a, CAP_EV_FILE, true, "W.*", ".*", ".*") < 0);
	assert_int_equal(analyzer_pushed_count(a), 5);
	assert_true(bad(a, "app", CAP_EV_FILE, "Write", "/usr/bin/app", "/tmp/x", "-1"));
	analyzer_free(a);
}

/* A new connection: the server's lists replace the ones it sent before (a
 * rule it dropped must not stay); the client's own rules stay. */
static void test_clear(void **state)
{
	(void)state;
	struct analyzer *a = NULL;
	assert_int_equal(analyzer_new(dir, &a), 0);
	assert_int_equal(analyzer_load_profile(a, "app"), 0);
	assert_int_equal(analyzer_add_rule(a, CAP_EV_FILE, true, "Create", ".*", "/tmp/x"), 0);
	assert_int_equal(analyzer_add_local_rule(a, CAP_EV_CONNECTION, true, "udp-connection",
						 ".{0}", "10\\.0\\.0\\.1:53"),
			 0);
	assert_false(bad(a, "app", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	assert_false(
	    bad(a, "app", CAP_EV_CONNECTION, "udp-connection", "", "10.0.0.1:53", "10.9.0.2:4000"));
	assert_true(
	    bad(a, "app", CAP_EV_CONNECTION, "udp-connection", "", "10.0.0.9:53", "10.9.0.2:4000"));
	assert_int_equal(analyzer_pushed_count(a), 2);

	assert_int_equal(analyzer_clear_pushed(a), 0);
	assert_int_equal(analyzer_pushed_count(a), 1);
	/* the profile comes back from its folder at the next visit */
	assert_int_equal(analyzer_load_profile(a, "app"), 0);
	assert_true(bad(a, "app", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	assert_true(bad(a, NULL, CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	assert_false(bad(a, "app", CAP_EV_FILE, "Write", "/usr/bin/app", "/home/u/.app/c", "-1"));
	assert_false(
	    bad(a, "app", CAP_EV_CONNECTION, "udp-connection", "", "10.0.0.1:53", "10.9.0.2:4000"));
	/* the server sends its list again: back in */
	assert_int_equal(analyzer_add_rule(a, CAP_EV_FILE, true, "Create", ".*", "/tmp/x"), 0);
	assert_false(bad(a, "app", CAP_EV_FILE, "Create", "/usr/bin/app", "/tmp/x", "-1"));
	/* nothing pushed since: clearing keeps the profiles as they are */
	assert_int_equal(analyzer_clear_pushed(a), 0);
	assert_int_equal(analyzer_clear_pushed(a), 0);
	assert_int_equal(analyzer_pushed_count(a), 1);
	analyzer_free(a);
}

/* The shipped profiles (etc/exclusion): host noise that depends on the
 * host's state is excluded by exact shapes (docs/exclusion-lists.md "Host
 * noise"), and everything beside those shapes is still reported. */
static void test_host_noise_shapes(void **state)
{
	(void)state;
	struct analyzer *a = NULL;
	assert_int_equal(analyzer_new(CAPTURE_SRCDIR "/etc/exclusion", &a), 0);
	static const char ff[] = "/usr/lib/firefox-esr/firefox-esr";
	static const char fc[] = "/home/capture/.cache/fontconfig";
	char o1[256], o2[256];
	const char *profiles[] = {"firefox", "firefox-plain"};
	for (size_t i = 0; i < 2; i++) {
		const char *p = profiles[i];
		assert_int_equal(analyzer_load_profile(a, p), 0);
		/* fontconfig's cache of Firefox's own font folder: excluded */
		assert_false(bad(a, p, CAP_EV_FILE, "Create", ff, fc, "-1"));
		snprintf(o1, sizeof(o1), "%s/e74d411252dea466295e020db15a86c6-le64.cache-8.TMP-LwYX4h", fc);
		assert_false(bad(a, p, CAP_EV_FILE, "Create", ff, o1, "-1"));
		assert_false(bad(a, p, CAP_EV_FILE, "Write", ff, o1, "-1"));
		assert_false(bad(a, p, CAP_EV_FILE, "Delete", ff, o1, "-1"));
		snprintf(o1, sizeof(o1), "%s/CACHEDIR.TAG.NEW", fc);
		snprintf(o2, sizeof(o2), "%s/CACHEDIR.TAG", fc);
		assert_false(bad(a, p, CAP_EV_FILE, "Rename", ff, o1, o2));
		snprintf(o1, sizeof(o1), "%s/e74d411252dea466295e020db15a86c6-le64.cache-8.NEW", fc);
		snprintf(o2, sizeof(o2), "%s/e74d411252dea466295e020db15a86c6-le64.cache-8", fc);
		assert_false(bad(a, p, CAP_EV_FILE, "Rename", ff, o1, o2));
		/* ... but not any other name there, another writer, or a rename out */
		snprintf(o1, sizeof(o1), "%s/payload.sh", fc);
		assert_true(bad(a, p, CAP_EV_FILE, "Create", ff, o1, "-1"));
		assert_true(bad(a, p, CAP_EV_FILE, "Write", ff, o1, "-1"));
		snprintf(o1, sizeof(o1), "%s/e74d411252dea466295e020db15a86c6-le64.cache-8.NEW", fc);
		assert_true(bad(a, p, CAP_EV_FILE, "Create", "/tmp/dropper", o1, "-1"));
		assert_true(bad(a, p, CAP_EV_FILE, "Write", ff, "/home/capture/.cache/x-le64.cache-8.NEW", "-1"));
		assert_true(bad(a, p, CAP_EV_FILE, "Rename", ff, o1, "/home/capture/.config/autostart/x.desktop"));
		assert_true(bad(a, p, CAP_EV_FILE, "Rename", ff, o1, "/home/capture/.cache/fontconfig/run.sh"));
		assert_true(bad(a, p, CAP_EV_FILE, "Chmod", ff, o2, "-1"));
	}
	analyzer_free(a);
}

/* Chromium's IPv6 reachability probe (a connected UDP socket to Google
 * Public DNS, port 443, no packet): excluded for that address and port only. */
static void test_chromium_ipv6_probe(void **state)
{
	(void)state;
	struct analyzer *a = NULL;
	assert_int_equal(analyzer_new(CAPTURE_SRCDIR "/etc/exclusion", &a), 0);
	assert_int_equal(analyzer_load_profile(a, "chromium"), 0);
	static const char cr[] = "/usr/lib/chromium/chromium", probe[] = "[2001:4860:4860::8888]:443";
	assert_false(bad(a, "chromium", CAP_EV_CONNECTION, "udp-connection", "", probe, "[::]:54077"));
	assert_false(bad(a, "chromium", CAP_EV_CONNECTION, "udp-connection-closed", "", probe,
	                 "[::]:54077"));
	assert_false(bad(a, "chromium", CAP_EV_CONNECTION, "udp-connection", cr, probe, "[::]:1"));
	/* any other address, port, protocol or program stays reported */
	assert_true(bad(a, "chromium", CAP_EV_CONNECTION, "udp-connection", "",
	                "[2001:4860:4860::8844]:443", "[::]:1"));
	assert_true(bad(a, "chromium", CAP_EV_CONNECTION, "udp-connection", "",
	                "[2001:4860:4860::8888]:4443", "[::]:1"));
	assert_true(bad(a, "chromium", CAP_EV_CONNECTION, "udp-connection", "", "8.8.8.8:443",
	                "0.0.0.0:1"));
	assert_true(bad(a, "chromium", CAP_EV_CONNECTION, "tcp-connection", "/tmp/dropper", probe,
	                "[::]:1"));
	assert_true(bad(a, "chromium", CAP_EV_CONNECTION, "udp-connection", "/tmp/dropper", probe,
	                "[::]:1"));
	analyzer_free(a);
}

/* At start the client names every application without exclusion lists, with
 * the command that writes them; one with lists (its applications.conf
 * name, or a built-in plugin's own profile for an "@builtin" entry) is not
 * named. */
static void test_warn_unprofiled(void **state)
{
	(void)state;
	char conf[128], log[128], p[256];
	snprintf(conf, sizeof(conf), "%s/applications.conf", dir);
	snprintf(log, sizeof(log), "%s/stderr", dir);
	write_file("applications.conf", "lister\t/bin/ls\napp\t/usr/bin/app\n"
					 "strict\t@chromium\n");
	snprintf(p, sizeof(p), "%s/chromium", dir);
	mkdir(p, 0755);
	struct visitor_options vo = {.applications_conf = conf};
	struct visitor *vis = NULL;
	assert_int_equal(visitor_new(&vo, &vis), 0);
	struct analyzer *a = NULL;
	assert_int_equal(analyzer_new(dir, &a), 0);

	fflush(stderr);
	int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	size_t n = analyzer_warn_unprofiled(a, vis);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);

	char text[16384] = "";
	FILE *f = fopen(log, "r");
	assert_non_null(f);
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	text[len] = '\0';
	fclose(f);
	assert_non_null(strstr(text, "application lister has no exclusion lists"));
	assert_non_null(strstr(text, "capture-client --calibrate --program lister"));
	assert_null(strstr(text, "application app has"));
	assert_null(strstr(text, "application strict has"));    /* chromium's lists */
	assert_null(strstr(text, "application chromium has"));
	assert_non_null(strstr(text, "application firefox has")); /* a built-in, no lists here */
	size_t lines = 0;
	for (const char *q = text; (q = strchr(q, '\n')); q++)
		lines++;
	assert_int_equal(lines, n);
	analyzer_free(a);
	visitor_free(vis);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chromium_ipv6_probe),
	    cmocka_unit_test(test_pushed),
	    cmocka_unit_test(test_clear),
	    cmocka_unit_test(test_host_noise_shapes),
	    cmocka_unit_test(test_warn_unprofiled),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
