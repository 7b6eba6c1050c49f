/* test-visitor-chromium.c - the visitor core and the Chromium plugin against
 * the real browser in real sandboxes and the bundled test web
 * (docs/visitor.md, docs/testweb.md).
 *
 * The test web runs in its own netns "vchr-web" behind our own gateway netns
 * "vchr-gw" (both removed at the end); the sandboxes resolve the test names
 * through their /etc/hosts.  Serialized with the other sandbox test programs
 * (sbt_lock).  Environment: SRCDIR (for scripts/testweb), CAPTURE_SANDBOX.
 *
 *   test-visitor-chromium conf|dac|seq|bulk|abort|headful|failure|hostile
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "plugins.h"
#include "sandbox.h"
#include "sbt-util.h"
#include "visitor.h"

#define GW	 "vchr-gw"
#define WEBNS	 "vchr-web"
#define WWW	 "http://www.capture-test.example"
#define CHROMIUM "/usr/lib/chromium/chromium"

static const char *const hosts[] = {"198.51.100.10 www.capture-test.example",
				    "198.51.100.10 evil.capture-test.example",
				    "198.51.100.10 ads.capture-test.example", NULL};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sandbox *build_sandbox(void)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.network = true;
	plan.gateway.netns = GW;
	/* Chromium's threads count against pids.max; dac tabs and bulk
	 * browsers need more than the defaults (docs/visitor.md). */
	plan.limits.memory_bytes = 4096ULL << 20;
	plan.limits.pids = 8192;
	static const char *names[] = {"www.capture-test.example", "evil.capture-test.example",
				      "ads.capture-test.example"};
	for (size_t i = 0; i < 3; i++) {
		plan.hosts[i].address = "198.51.100.10";
		plan.hosts[i].name = names[i];
	}
	struct sandbox *sb = sbt_build(&plan);
	assert_non_null(sb);
	return sb;
}

/* Processes in the sandbox's cgroup tree (pid 1 included). */
static int count_procs(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	int n = 0;
	char line[64];
	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n += count_procs(path);
	}
	if (d)
		closedir(d);
	return n;
}

static bool is_png(const char *path)
{
	unsigned char b[8] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	return n == 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0;
}

struct expect {
	const char *url;
	uint32_t major, minor;
};

struct group_run {
	struct visit_url urls[16];
	size_t n;
	struct visit_group g;
	atomic_bool abort;
	char evidence[64];
	double seconds;
	int r;
};

static void run_group(struct group_run *gr, struct sandbox *sb, const struct visitor_options *opts,
		      enum cap_algorithm alg, const struct expect *ex, size_t n,
		      unsigned visit_time)
{
	struct visitor *v = NULL;
	assert_int_equal(visitor_new(opts, &v), 0);
	const struct visitor_app *app = visitor_find(v, "Chromium");
	assert_non_null(app);
	assert_ptr_equal(app->plugin, &app_chromium_plugin);
	snprintf(gr->evidence, sizeof(gr->evidence), "/tmp/vchr-evidence-XXXXXX");
	assert_non_null(mkdtemp(gr->evidence));
	gr->n = n;
	for (size_t i = 0; i < n; i++)
		gr->urls[i] = (struct visit_url){.url = ex[i].url};
	atomic_init(&gr->abort, false);
	gr->g = (struct visit_group){.program = "chromium",
				     .algorithm = alg,
				     .visit_time = visit_time,
				     .urls = gr->urls,
				     .n_urls = n,
				     .sb = sb,
				     .evidence_dir = gr->evidence,
				     .abort = &gr->abort};
	double t0 = now_s();
	gr->r = visitor_visit_group(v, app, &gr->g);
	gr->seconds = now_s() - t0;
	fprintf(stderr, "%s group of %zu: r=%d in %.2f s\n",
		alg == CAP_ALG_BULK  ? "bulk"
		: alg == CAP_ALG_SEQ ? "seq"
				     : "dac",
		n, gr->r, gr->seconds);
	for (size_t i = 0; i < n; i++) {
		const struct visit_url *u = &gr->urls[i];
		fprintf(stderr, "  %-55s visited=%d major=%#x minor=%u pid=%d cg=%s/%llu shot=%s\n",
			u->url, u->visited, u->major_error, u->minor_error, u->pid, u->cgroup,
			(unsigned long long)u->cgroup_id, u->screenshot[0] ? "yes" : "no");
	}
	visitor_free(v);
}

static void check_results(struct group_run *gr, const struct expect *ex)
{
	assert_int_equal(gr->r, 0);
	for (size_t i = 0; i < gr->n; i++) {
		const struct visit_url *u = &gr->urls[i];
		assert_true(u->visited);
		if (u->major_error != ex[i].major || u->minor_error != ex[i].minor)
			fail_msg("%s: major %#x minor %u, expected %#x %u", u->url, u->major_error,
				 u->minor_error, ex[i].major, ex[i].minor);
		/* Every page, error pages included, leaves a screenshot. */
		char want[PATH_MAX];
		snprintf(want, sizeof(want), "%s/%zu.png", gr->evidence, i);
		assert_string_equal(u->screenshot, want);
		assert_true(is_png(u->screenshot));
	}
}

static void cleanup_evidence(struct group_run *gr)
{
	if (getenv("VCHR_KEEP_EVIDENCE")) /* to look at the screenshots */
		return;
	char cmd[PATH_MAX];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gr->evidence);
	(void)sbt_sh(cmd);
}

static void check_no_process_left(struct sandbox *sb)
{
	int n = count_procs(sandbox_cgroup_path(sb));
	if (n != 1)
		(void)sbt_sh("ps -eo pid,cgroup,args | grep -F '" SBT_CGROUP "/' >&2");
	assert_int_equal(n, 1); /* only pid 1, our reaper */
}

static const struct visitor_options default_opts = {.hosts = hosts, .load_timeout = 30};

/* The benign pages of the test web, and two unreachable places. */
static const struct expect benign[] = {
    {WWW "/plain.html", 0, 0},
    {WWW "/js.html", 0, 0},
    {WWW "/iframe.html", 0, 0},
    {WWW "/redirect/301", 0, 0},
    {WWW "/redirect/302", 0, 0},
    {WWW "/redirect-js.html", 0, 0},
    {WWW "/images.html", 0, 0},
    {WWW "/no-such-page.html", 0, 404},
    {WWW "/slow?ms=2000", 0, 0},
    {WWW "/large?mb=4", 0, 0},
    {"http://nowhere.capture-test.example/", CAP_ERR_NETWORK_ERROR, 105}, /* NAME_NOT_RESOLVED */
    {"http://198.51.100.10:81/", CAP_ERR_NETWORK_ERROR, 102},		  /* CONNECTION_REFUSED */
};

/* Every request of the test web for path came with a desktop Chromium's
 * user agent: "Chrome/", never "HeadlessChrome" (evasive pages look for
 * it).  The log's last column is the User-Agent (docs/testweb.md). */
#define WEBLOG "/run/capture-testweb/" WEBNS "/requests.log"

static long weblog_size(void)
{
	struct stat st;
	return stat(WEBLOG, &st) == 0 ? (long)st.st_size : 0;
}

/* ... of the lines logged after offset `from` (weblog_size before the run). */
static void check_user_agents(const char *path, long from)
{
	FILE *f = fopen(WEBLOG, "re");
	assert_non_null(f);
	assert_int_equal(fseek(f, from, SEEK_SET), 0);
	char line[2048], want[256];
	snprintf(want, sizeof(want), "\t%s\t", path);
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, want))
			continue;
		const char *ua = strrchr(line, '\t');
		assert_non_null(ua);
		if (!strstr(ua, "Chrome/") || strstr(ua, "Headless"))
			fprintf(stderr, "user agent: %s", ua + 1);
		assert_non_null(strstr(ua, "Chrome/"));
		assert_null(strstr(ua, "Headless"));
		n++;
	}
	fclose(f);
	assert_true(n > 0);
}

/* A request whose path starts with `prefix` was logged after `from`. */
static void check_logged(long from, const char *prefix)
{
	FILE *f = fopen(WEBLOG, "re");
	assert_non_null(f);
	assert_int_equal(fseek(f, from, SEEK_SET), 0);
	char line[2048], want[256];
	snprintf(want, sizeof(want), "\t%s", prefix);
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, want) != NULL;
	fclose(f);
	if (!found)
		fprintf(stderr, "no request %s in the web log\n", prefix);
	assert_true(found);
}

static void test_dac(void **state)
{
	struct sandbox *sb = build_sandbox();
	static struct group_run gr;
	long log_from = weblog_size();
	run_group(&gr, sb, &default_opts, CAP_ALG_DAC, benign, ELEMENTSOF(benign), 1);
	check_results(&gr, benign);
	/* one browser for all */
	for (size_t i = 1; i < gr.n; i++) {
		assert_int_equal(gr.urls[i].pid, gr.urls[0].pid);
		assert_true(gr.urls[i].cgroup_id == 0);
	}
	assert_true(gr.urls[0].pid > 1);
	check_user_agents("/plain.html", log_from);
	cleanup_evidence(&gr);
	/* what a page sees (the test web's /probe.html reports to /probe?...):
	 * navigator.webdriver false, as in a user's browser */
	static const struct expect probe[] = {{WWW "/probe.html", 0, 0}};
	log_from = weblog_size();
	run_group(&gr, sb, &default_opts, CAP_ALG_DAC, probe, 1, 1);
	check_results(&gr, probe);
	check_logged(log_from, "/probe?webdriver=false&");
	check_no_process_left(sb);
	cleanup_evidence(&gr);
	sbt_free(sb);
	(void)state;
}

static void test_seq(void **state)
{
	struct sandbox *sb = build_sandbox();
	static const struct expect ex[] = {
	    {WWW "/plain.html", 0, 0},
	    {WWW "/no-such-page.html", 0, 404},
	    {"http://nowhere.capture-test.example/", CAP_ERR_NETWORK_ERROR, 105},
	    {WWW "/redirect/302", 0, 0},
	    {WWW "/js.html", 0, 0},
	};
	static struct group_run gr;
	run_group(&gr, sb, &default_opts, CAP_ALG_SEQ, ex, ELEMENTSOF(ex), 1);
	check_results(&gr, ex);
	for (size_t i = 1; i < gr.n; i++)
		assert_int_equal(gr.urls[i].pid, gr.urls[0].pid);
	check_no_process_left(sb);
	cleanup_evidence(&gr);

	/* A page that does not load within the load timeout: TIMEOUT_ERROR,
	 * still visited, and the next URL works. */
	static const struct expect ex2[] = {
	    {WWW "/slow?ms=20000", CAP_ERR_TIMEOUT_ERROR, 0},
	    {WWW "/plain.html", 0, 0},
	};
	struct visitor_options o = default_opts;
	o.load_timeout = 2;
	run_group(&gr, sb, &o, CAP_ALG_SEQ, ex2, ELEMENTSOF(ex2), 0);
	assert_int_equal(gr.r, 0);
	for (size_t i = 0; i < gr.n; i++) {
		assert_true(gr.urls[i].visited);
		assert_int_equal(gr.urls[i].major_error, ex2[i].major);
	}
	assert_true(is_png(gr.urls[1].screenshot));
	check_no_process_left(sb);
	cleanup_evidence(&gr);
	sbt_free(sb);
	(void)state;
}

static void test_bulk(void **state)
{
	struct sandbox *sb = build_sandbox();
	static const struct expect ex[] = {
	    {WWW "/plain.html", 0, 0},
	    {WWW "/js.html", 0, 0},
	    {WWW "/no-such-page.html", 0, 404},
	    {"http://198.51.100.10:81/", CAP_ERR_NETWORK_ERROR, 102},
	};
	static struct group_run gr;
	run_group(&gr, sb, &default_opts, CAP_ALG_BULK, ex, ELEMENTSOF(ex), 1);
	check_results(&gr, ex);
	for (size_t i = 0; i < gr.n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "u%zu", i);
		assert_string_equal(gr.urls[i].cgroup, name);
		assert_true(gr.urls[i].cgroup_id != 0);
		assert_true(gr.urls[i].pid > 1);
		for (size_t j = 0; j < i; j++) {
			assert_true(gr.urls[i].cgroup_id != gr.urls[j].cgroup_id);
			assert_true(gr.urls[i].pid != gr.urls[j].pid);
		}
	}
	check_no_process_left(sb);
	cleanup_evidence(&gr);
	sbt_free(sb);
	(void)state;
}

static void *set_abort(void *arg)
{
	struct group_run *gr = arg;
	struct timespec ts = {1, 0};
	nanosleep(&ts, NULL);
	atomic_store(&gr->abort, true);
	return NULL;
}

static void test_abort(void **state)
{
	struct sandbox *sb = build_sandbox();
	static const struct expect ex[] = {
	    {WWW "/plain.html", 0, 0},
	    {WWW "/slow?ms=30000", 0, 0},
	};
	for (int alg = CAP_ALG_SEQ; alg <= CAP_ALG_BULK; alg++) {
		static struct group_run gr;
		pthread_t th;
		/* run_group sets abort false before the visit; the thread sets it 1 s in. */
		gr.abort = false;
		assert_int_equal(pthread_create(&th, NULL, set_abort, &gr), 0);
		run_group(&gr, sb, &default_opts, (enum cap_algorithm)alg, ex, ELEMENTSOF(ex), 30);
		pthread_join(th, NULL);
		assert_int_equal(gr.r, -ECANCELED);
		/* A 30 s visit ended soon after the abort at 1 s (the figure is
		 * printed; the 1 s bound of visitor.h is checked in the bench). */
		assert_true(gr.seconds < 10.0);
		check_no_process_left(sb);
		cleanup_evidence(&gr);
	}
	sbt_free(sb);
	(void)state;
}

static void test_headful(void **state)
{
	struct sandbox *sb = build_sandbox();
	static const struct expect ex[] = {
	    {WWW "/plain.html", 0, 0},
	    {WWW "/images.html", 0, 0},
	};
	struct visitor_options o = default_opts;
	o.headful = true;
	static struct group_run gr;
	run_group(&gr, sb, &o, CAP_ALG_DAC, ex, ELEMENTSOF(ex), 1);
	check_results(&gr, ex);
	check_no_process_left(sb);
	cleanup_evidence(&gr);
	sbt_free(sb);
	(void)state;
}

/* Pages that try to stall the visit: an endless script (never loads: the
 * load timeout, the screenshot gives up after its own timeout) and dialogs
 * (answered like a user would); the group still ends and the other tab is
 * fine.  Then a drive-by download lands in ~/Downloads, also one still in
 * flight after the load at visit time 0. */
static void test_hostile(void **state)
{
	struct sandbox *sb = build_sandbox();
	static const struct expect ex[] = {
	    {"data:text/html,<title>loop</title><script>while(true){}</script>",
	     CAP_ERR_TIMEOUT_ERROR, 0},
	    {"data:text/html,<script>alert(1);confirm('2');prompt('3')</script><p>after the "
	     "dialogs",
	     0, 0},
	    {WWW "/plain.html", 0, 0},
	};
	struct visitor_options o = default_opts;
	o.load_timeout = 3;
	static struct group_run gr;
	run_group(&gr, sb, &o, CAP_ALG_DAC, ex, ELEMENTSOF(ex), 1);
	assert_int_equal(gr.r, 0);
	for (size_t i = 0; i < gr.n; i++) {
		assert_true(gr.urls[i].visited);
		assert_int_equal(gr.urls[i].major_error, ex[i].major);
	}
	assert_true(is_png(gr.urls[1].screenshot));
	assert_true(is_png(gr.urls[2].screenshot));
	/* load timeout 3 + visit 1 + screenshot timeout 5 + close 1 + start:
	 * it must end (generous bound; the figure is printed above). */
	assert_true(gr.seconds < 60.0);
	check_no_process_left(sb);
	cleanup_evidence(&gr);

	static const struct expect dl[] = {
	    {"http://evil.capture-test.example/drive-by.html", 0, 0},
	};
	run_group(&gr, sb, &default_opts, CAP_ALG_SEQ, dl, ELEMENTSOF(dl), 3);
	check_results(&gr, dl);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/home/%s/Downloads/update.bin", sandbox_upper_dir(sb),
		 SANDBOX_DEFAULT_USER);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 181); /* the complete payload (docs/testweb.md) */
	check_no_process_left(sb);
	cleanup_evidence(&gr);
	sbt_free(sb);

	/* Visit time 0 and a payload still in flight 2.5 s after the load: the
	 * browser is not killed under the download, which lands complete. */
	static const struct expect slow[] = {
	    {"http://evil.capture-test.example/drive-by-slow.html", 0, 0},
	    {WWW "/plain.html", 0, 0},
	};
	sb = build_sandbox();
	snprintf(path, sizeof(path), "%s/home/%s/Downloads/update.bin", sandbox_upper_dir(sb),
		 SANDBOX_DEFAULT_USER);
	run_group(&gr, sb, &default_opts, CAP_ALG_DAC, slow, ELEMENTSOF(slow), 0);
	check_results(&gr, slow);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 181);
	check_no_process_left(sb);
	cleanup_evidence(&gr);
	sbt_free(sb);
	(void)state;
}

/* A browser that cannot be started: every URL PROCESS_ERROR, and the group
 * fails with the reason because nothing ran at all. */
static void test_failure(void **state)
{
	struct sandbox *sb = build_sandbox();
	struct visitor_app app = {.name = "chromium",
				  .executable = "/nonexistent/chromium",
				  .plugin = &app_chromium_plugin};
	for (int alg = CAP_ALG_SEQ; alg <= CAP_ALG_BULK; alg++) {
		struct visit_url urls[2] = {{.url = WWW "/plain.html"}, {.url = WWW "/js.html"}};
		atomic_bool abort_flag = false;
		struct visit_group g = {.program = "chromium",
					.algorithm = (enum cap_algorithm)alg,
					.visit_time = 0,
					.urls = urls,
					.n_urls = 2,
					.sb = sb,
					.evidence_dir = NULL,
					.abort = &abort_flag};
		int r = app_chromium_plugin.visit_group(&default_opts, &app, &g);
		fprintf(stderr, "failure alg %d: r=%d\n", alg, r);
		assert_int_equal(r, -ENOENT);
		for (size_t i = 0; i < 2; i++) {
			assert_false(urls[i].visited);
			assert_int_equal(urls[i].major_error, CAP_ERR_PROCESS_ERROR);
		}
		check_no_process_left(sb);
	}
	sbt_free(sb);
	(void)state;
}

/* applications.conf: built-ins, the original format, the argument
 * template extension, bad lines skipped. */
static void test_conf(void **state)
{
	char path[] = "/tmp/vchr-apps-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char conf[] = "# comment\n"
			    "\n"
			    "testapp\t/usr/local/bin/capture-testapp\tno\tbrowse\t{url}\n"
			    "acrobat\t/usr/bin/pdftoppm\tyes\t-png\t{file}\t{home}/out\n"
			    "oldstyle\t/usr/bin/oldbrowser\n"
			    "tabs\t\t/usr/bin/x\t\tYES\r\n"
			    "chromium\t/usr/bin/other-chromium\n"
			    "badexe\trelative/path\n"
			    "badflag\t/usr/bin/x\tmaybe\n"
			    "badph\t/usr/bin/x\tno\t{file}\n"
			    "badph2\t/usr/bin/x\tno\t{nope}\n"
			    "bad name\t/usr/bin/x\n"
			    "onlyname\n"
			    "testapp\t/usr/bin/second\n"
			    "lo-strict\t@libreoffice\tyes\tmacro-security=high\n"
			    "badbuiltin\t@nosuch\n";
	assert_int_equal(write(fd, conf, sizeof(conf) - 1), (ssize_t)sizeof(conf) - 1);
	close(fd);

	struct visitor_options o = {.applications_conf = path};
	struct visitor *v = NULL;
	assert_int_equal(visitor_new(&o, &v), 0);
	const struct visitor_app *a = visitor_find(v, "TestApp");
	assert_non_null(a);
	assert_ptr_equal(a->plugin, &app_generic_plugin);
	assert_string_equal(a->executable, "/usr/local/bin/capture-testapp"); /* first line wins */
	assert_false(a->download_first);
	assert_int_equal(a->n_args, 2);
	assert_string_equal(a->args[0], "browse");
	assert_string_equal(a->args[1], "{url}");
	a = visitor_find(v, "acrobat");
	assert_non_null(a);
	assert_true(a->download_first);
	assert_int_equal(a->n_args, 3);
	assert_string_equal(a->args[2], "{home}/out");
	a = visitor_find(v, "oldstyle");
	assert_non_null(a);
	assert_false(a->download_first);
	assert_int_equal(a->n_args, 0);
	a = visitor_find(v, "tabs");
	assert_non_null(a);
	assert_string_equal(a->executable, "/usr/bin/x");
	assert_true(a->download_first);
	/* a built-in beats a conf line of the same name */
	a = visitor_find(v, "chromium");
	assert_ptr_equal(a->plugin, &app_chromium_plugin);
	assert_string_equal(a->executable, CHROMIUM);
	/* "@builtin": a built-in plugin with arguments of the conf line */
	a = visitor_find(v, "lo-strict");
	assert_non_null(a);
	assert_ptr_equal(a->plugin, &app_libreoffice_plugin);
	assert_true(a->download_first);
	assert_int_equal(a->n_args, 1);
	assert_string_equal(a->args[0], "macro-security=high");
	for (const char *const *bad = (const char *const[]){"badexe", "badflag", "badph", "badph2",
							    "bad name", "bad", "onlyname",
							    "badbuiltin", NULL};
	     *bad; bad++)
		assert_null(visitor_find(v, *bad));
	assert_null(visitor_find(v, NULL));
	/* built-ins */
	static const char *const builtin[] = {"chromium", "chrome",	   "firefox", "libreoffice",
					      "pdf",	  "acrobatreader", "fetch",   NULL};
	for (const char *const *b = builtin; *b; b++)
		assert_non_null(visitor_find(v, *b));
	/* algorithms */
	a = visitor_find(v, "chromium");
	assert_int_equal(visitor_algorithm(a, CAP_ALG_NONE), CAP_ALG_DAC);
	assert_int_equal(visitor_algorithm(a, CAP_ALG_SEQ), CAP_ALG_SEQ);
	assert_int_equal(visitor_algorithm(a, CAP_ALG_BULK), CAP_ALG_BULK);
	visitor_free(v);

	o.applications_conf = "/nonexistent/applications.conf";
	assert_int_equal(visitor_new(&o, &v), -ENOENT);
	o.applications_conf = NULL;
	assert_int_equal(visitor_new(&o, &v), 0);
	assert_null(visitor_find(v, "testapp"));
	visitor_free(v);
	unlink(path);
	(void)state;
}

static char testweb_cmd[PATH_MAX + 64];

static int testweb(const char *args)
{
	char cmd[PATH_MAX + 256];
	snprintf(cmd, sizeof(cmd), "%s --gw " GW " --ns " WEBNS " %s >&2", testweb_cmd, args);
	return sbt_sh(cmd);
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "all";
	static const struct {
		const char *name;
		struct CMUnitTest test;
	} all[] = {
	    {"conf", sbt_unit_test(test_conf)},
	    {"dac", sbt_unit_test(test_dac)},
	    {"seq", sbt_unit_test(test_seq)},
	    {"bulk", sbt_unit_test(test_bulk)},
	    {"abort", sbt_unit_test(test_abort)},
	    {"headful", sbt_unit_test(test_headful)},
	    {"failure", sbt_unit_test(test_failure)},
	    {"hostile", sbt_unit_test(test_hostile)},
	};
	struct CMUnitTest tests[8];
	size_t n = 0;
	for (size_t i = 0; i < ELEMENTSOF(all); i++)
		if (!strcmp(which, "all") || !strcmp(which, all[i].name))
			tests[n++] = all[i].test;
	if (n == 0) {
		fprintf(stderr, "usage: %s [conf|dac|seq|bulk|abort|headful|failure|hostile|all]\n",
			argv[0]);
		return 2;
	}
	if (!strcmp(which, "conf"))
		return _cmocka_run_group_tests("visitor-conf", tests, n, NULL, NULL);

	if (geteuid() != 0 || access(CHROMIUM, X_OK) != 0) {
		fprintf(stderr, "test-visitor-chromium needs root and " CHROMIUM "\n");
		return 77;
	}
	const char *src = getenv("SRCDIR");
	snprintf(testweb_cmd, sizeof(testweb_cmd), "%s/scripts/testweb", src ? src : ".");
	sbt_lock();
	sbt_cleanup_leftovers();
	struct sandbox_gateway_config gw = {.netns = GW};
	if (sandbox_gateway_up(&gw) < 0 || testweb("--no-doc start") != 0) {
		fprintf(stderr, "could not start the test web\n");
		testweb("stop");
		sandbox_gateway_down(GW);
		return 1;
	}
	int r = _cmocka_run_group_tests(which, tests, n, NULL, NULL);
	testweb("stop");
	sandbox_gateway_down(GW);
	sbt_cleanup_leftovers();
	return r;
}
