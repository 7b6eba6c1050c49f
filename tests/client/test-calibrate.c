/* test-calibrate.c - candidate exclusion lines from the events of benign
 * visits (src/client/calibrate.c): shapes of the parts that change from run
 * to run, one candidate per rule with rounds and URLs counted, rules that
 * the list loader accepts and that exclude the events they were made from,
 * hostile names (newline, TAB, control bytes) that cannot break the output
 * into extra lines, and the calibration list's errors naming file and line. */
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

#include "calibrate.h"
#include "exclusion.h"

static void shape_is(const char *s, const char *want)
{
	char out[CALIB_SHAPE_MAX];
	assert_int_equal(calib_shape(s, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_shape(void **state)
{
	(void)state;
	shape_is("/home/capture/.cache/fontconfig/CACHEDIR.TAG.TMP-4jIvYb",
		 "/home/capture/\\.cache/fontconfig/CACHEDIR\\.TAG\\.TMP-[A-Za-z0-9]{6}");
	shape_is("/home/capture/.cache/fontconfig/e74d411252dea466295e020db15a86c6-le64.cache-8",
		 "/home/capture/\\.cache/fontconfig/[0-9a-f]{32}-le[0-9]+\\.cache-[0-9]+");
	shape_is("/home/capture/.ff-capture-12/prefs.js",
		 "/home/capture/\\.ff-capture-[0-9]+/prefs\\.js");
	/* a plain word after '.' is not a random suffix */
	shape_is("/tmp/a.global", "/tmp/a\\.global");
	/* metacharacters, TAB and newline escaped: one line, one field */
	shape_is("/tmp/a(b)|c*\t\nd", "/tmp/a\\(b\\)\\|c\\*\\x{09}\\x{0a}d");
	shape_is("10.0.0.1:53", "[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+:[0-9]+");
	char small[8];
	assert_int_equal(calib_shape("/home/capture/x", small, sizeof(small)), -ENAMETOOLONG);
}

static void event(struct cap_event *ev, enum cap_event_type t, const char *action,
		  const char *process, const char *o1, const char *o2)
{
	cap_event_init(ev, t, action, process, o1, o2);
}

/* The printed output: its rule lines, each checked to load and to exclude. */
static char *print(struct calib *c, size_t *ret_n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	*ret_n = calib_print(c, f, "/etc/x");
	fclose(f);
	return buf;
}

static void test_record_print(void **state)
{
	(void)state;
	struct calib *c = NULL;
	assert_int_equal(calib_new(3, &c), 0);
	calib_program(c, "firefox", "firefox", 2);
	static const char ff[] = "/usr/lib/firefox-esr/firefox-esr";
	struct cap_event ev;
	const char *tmps[] = {"/home/capture/.cache/fontconfig/CACHEDIR.TAG.TMP-4jIvYb",
			      "/home/capture/.cache/fontconfig/CACHEDIR.TAG.TMP-Lw9X4h",
			      "/home/capture/.cache/fontconfig/CACHEDIR.TAG.TMP-abCDef"};
	for (unsigned r = 0; r < 3; r++) {
		event(&ev, CAP_EV_FILE, "Write", ff, tmps[r], "-1");
		assert_int_equal(calib_record(c, "firefox", "firefox", r, "http://a/", &ev), 0);
		assert_int_equal(calib_record(c, "firefox", "firefox", r, "http://b/", &ev), 0);
	}
	event(&ev, CAP_EV_FILE, "Rename", ff, "/home/capture/.cache/x.NEW",
	      "/home/capture/.cache/x");
	assert_int_equal(calib_record(c, "firefox", "firefox", 1, "http://a/", &ev), 0);
	event(&ev, CAP_EV_PROCESS, "created", ff, "12", "/usr/bin/dash");
	assert_int_equal(calib_record(c, "firefox", "firefox", 0, "http://a/", &ev), 0);
	/* a hostile name: newline and TAB cannot start a line or a field */
	event(&ev, CAP_EV_FILE, "Create", ff, "/tmp/x\n+\tWrite\t.*\t.*", "-1");
	assert_int_equal(calib_record(c, "firefox", "firefox", 2, "http://a/\nb", &ev), 0);
	assert_int_equal(calib_candidates(c), 4);
	size_t n;
	char *out = print(c, &n);
	assert_int_equal(n, 4);
	assert_non_null(strstr(
	    out, "# program firefox (profile firefox): 2 URL(s) x 3 round(s): 4 candidate(s)\n"));
	assert_non_null(strstr(out, "## /etc/x/firefox/FileMonitor.exl\n"));
	assert_non_null(strstr(out, "## /etc/x/firefox/ProcessMonitor.exl\n"));
	assert_non_null(strstr(out,
			       "# file Write: in 3 of 3 round(s), on 2 URL(s), 6 event(s); e.g. "
			       "/home/capture/.cache/fontconfig/CACHEDIR.TAG.TMP-4jIvYb\n"));
	assert_non_null(strstr(out,
			       "+\tWrite\t/usr/lib/firefox-esr/firefox-esr\t/home/capture/\\.cache/"
			       "fontconfig/CACHEDIR\\.TAG\\.TMP-[A-Za-z0-9]{6}\n"));
	assert_non_null(strstr(out, "+\tRename\t/usr/lib/firefox-esr/firefox-esr\t(/home/capture/"
				    "\\.cache/x\\.NEW|/home/capture/\\.cache/x)\n"));
	assert_non_null(strstr(out, "+\tdash\t/usr/lib/firefox-esr/firefox-esr\t/usr/bin/dash\n"));
	assert_non_null(strstr(out, "e.g. /tmp/x\\x0a+\\x09Write\\x09.*\\x09.*\n"));
	assert_null(strstr(out, "CHECK"));
	/* every line is a comment, blank, or a rule that loads: nothing else */
	struct excl_list *l = NULL;
	assert_int_equal(excl_list_new(&l), 0);
	size_t rules = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#')
			continue;
		char err[256];
		assert_int_equal(excl_list_add_line(l, line, err, sizeof(err)), 0);
		rules++;
	}
	assert_int_equal(rules, 4);
	/* ... and together they exclude what they were made from, nothing more */
	assert_int_equal(excl_list_match(l, "Write", ff, tmps[1]), EXCL_EXCLUDE);
	assert_int_equal(excl_list_match(l, "Write", ff, "/home/capture/.cache/fontconfig/run.sh"),
			 EXCL_REPORT);
	assert_int_equal(excl_list_match(l, "Create", ff, "/tmp/x\n+\tWrite\t.*\t.*"),
			 EXCL_EXCLUDE);
	assert_int_equal(excl_list_match(l, "Create", ff, "/tmp/y"), EXCL_REPORT);
	excl_list_free(l);
	free(out);
	calib_free(c);
}

static void test_errors(void **state)
{
	(void)state;
	struct calib *c = NULL;
	assert_int_equal(calib_new(0, &c), -EINVAL);
	assert_int_equal(calib_new(65, &c), -EINVAL);
	assert_int_equal(calib_new(1, &c), 0);
	calib_error(c, "chromium", "http://a/", "NETWORK_ERROR");
	assert_int_equal(calib_errors(c), 1);
	size_t n;
	char *out = print(c, &n);
	assert_int_equal(n, 0);
	assert_non_null(strstr(out, "# ERROR: chromium http://a/: NETWORK_ERROR\n"));
	free(out);
	/* more distinct candidates than kept: counted, not kept */
	struct cap_event ev;
	char o[64];
	int r = 0;
	for (int i = 0; i <= CALIB_MAX_RULES && r == 0; i++) {
		snprintf(o, sizeof(o), "/tmp/f%c%c%c", 'a' + i % 26, 'a' + i / 26 % 26,
			 'a' + i / 676);
		event(&ev, CAP_EV_FILE, "Write", "/bin/x", o, "-1");
		r = calib_record(c, "p", "p", 0, "http://a/", &ev);
	}
	assert_int_equal(r, -E2BIG);
	assert_int_equal(calib_candidates(c), CALIB_MAX_RULES);
	calib_free(c);

	/* found by fuzz-calibrate: a child's image name is the action of a
	 * process rule, and the sandbox chooses it: one with a newline (or
	 * empty) is an error, never a line of its own */
	assert_int_equal(calib_new(1, &c), 0);
	event(&ev, CAP_EV_PROCESS, "created", "/bin/sh", "7", "/tmp/x\n+\tWrite\t.*\t.*");
	assert_int_equal(calib_record(c, "p", "p", 0, "http://a/", &ev), -EINVAL);
	event(&ev, CAP_EV_PROCESS, "created", "/bin/sh", "7", "/tmp/");
	assert_int_equal(calib_record(c, "p", "p", 0, "http://a/", &ev), -EINVAL);
	assert_int_equal(calib_candidates(c), 0);
	assert_int_equal(calib_errors(c), 2);
	/* ... and an empty object is written .{0} (an empty field cannot be) */
	event(&ev, CAP_EV_FILE, "Write", "/bin/x", "", "-1");
	assert_int_equal(calib_record(c, "p", "p", 0, "http://a/", &ev), 0);
	out = print(c, &n);
	assert_non_null(strstr(out, "+\tWrite\t/bin/x\t.{0}\n"));
	assert_null(strstr(out, "\n+\tWrite\t.*"));
	assert_non_null(
	    strstr(out, "# ERROR: p http://a/: no rule can be made for /tmp/x\\x0a+\\x09Write"));
	free(out);
	calib_free(c);
}

static void list_is(const char *text, int want, const char *err_want, size_t n_want)
{
	char path[] = "/tmp/test-calibrate-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct calib_item items[4];
	size_t n = 99;
	char err[512] = "";
	int r = calib_read_list(path, items, 4, &n, err, sizeof(err));
	unlink(path);
	assert_int_equal(r, want);
	if (err_want) {
		char full[600];
		snprintf(full, sizeof(full), "%s%s", path, err_want);
		if (strncmp(err, full, strlen(full)) != 0)
			fail_msg("error '%s', want '%s...'", err, full);
	} else {
		assert_int_equal(n, n_want);
		assert_string_equal(items[0].program, "chromium");
	}
}

static void test_list(void **state)
{
	(void)state;
	list_is("# c\n\nhttp://a/::chromium\nhttp://b/x::firefox::3\n", 0, NULL, 2);
	list_is("http://a/::chromium\nhttp://b/\n", -EINVAL, ":2: no program (url::program)", 0);
	list_is("http://a/::chromium\nhttp://b/::bad/name\n", -EINVAL, ":2: ", 0);
	list_is(
	    "http://a/::chromium\nhttp://a/::chromium\nhttp://a/::chromium\nhttp://a/::chromium\n"
	    "http://a/::chromium\n",
	    -EINVAL, ":5: more than 4 URLs", 0);
	list_is("# nothing\n", -EINVAL, ": no URL", 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shape),
	    cmocka_unit_test(test_record_print),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
