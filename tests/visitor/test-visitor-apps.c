/* test-visitor-apps.c - the visapps plugins (fetch, generic, pdf,
 * libreoffice, firefox) with real applications in real sandboxes against the
 * bundled test web (docs/testweb.md), in our own gateway netns "vapps-gw"
 * and web netns "vapps-web" (so that other suites' test webs do not clash).
 *
 * Usage: test-visitor-apps basic|generic|libreoffice|firefox  (one meson test each,
 * so that each stays well under two minutes).  Root.  Environment:
 * CAPTURE_SANDBOX (capture-sandbox binary, for scripts/testweb), TESTAPP
 * (capture-testapp binary), SRCDIR (the source tree). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "app-util.h"
#include "download.h"
#include "macro.h"
#include "plugins.h"
#include "sandbox.h"
#include "sbt-util.h"

#define GW	       "vapps-gw"
#define WEBNS	       "vapps-web"
#define WWW	       "http://www.capture-test.example"
#define EVIL	       "http://evil.capture-test.example"
#define TESTAPP_INSIDE "/usr/local/bin/capture-testapp"

static const char *const hosts[] = {
    "198.51.100.10 www.capture-test.example",
    "198.51.100.10 evil.capture-test.example",
    "198.51.100.10 ads.capture-test.example",
    NULL,
};
static const struct visitor_options opts = {.hosts = hosts, .load_timeout = 60};
static char evidence[] = "/tmp/vapps-evidence.XXXXXX";

static struct sandbox *build(void)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.gateway.netns = GW;
	plan.network = true;
	const char *names[] = {"www.capture-test.example", "evil.capture-test.example",
			       "ads.capture-test.example"};
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		plan.hosts[i].address = "198.51.100.10";
		plan.hosts[i].name = names[i];
	}
	size_t b = 0;
	while (plan.binds[b].source)
		b++;
	plan.binds[b].source = getenv("TESTAPP");
	plan.binds[b].target = TESTAPP_INSIDE;
	struct sandbox *sb = sbt_build(&plan);
	assert_non_null(sb);
	return sb;
}

static void app_init(struct visitor_app *app, const char *name, const char *exe,
		     const struct visitor_plugin *plugin)
{
	memset(app, 0, sizeof(*app));
	snprintf(app->name, sizeof(app->name), "%s", name);
	snprintf(app->executable, sizeof(app->executable), "%s", exe);
	app->plugin = plugin;
}

static void group_init(struct visit_group *g, struct sandbox *sb, struct visit_url *urls, size_t n,
		       unsigned visit_time, enum cap_algorithm alg, atomic_bool *abort_flag)
{
	memset(g, 0, sizeof(*g));
	g->program = "test";
	g->algorithm = alg;
	g->visit_time = visit_time;
	g->urls = urls;
	g->n_urls = n;
	g->sb = sb;
	g->evidence_dir = evidence;
	g->abort = abort_flag;
}

static void print_results(const struct visit_group *g)
{
	for (size_t i = 0; i < g->n_urls; i++) {
		const struct visit_url *u = &g->urls[i];
		printf("# %s: visited=%d error=%#x/%u pid=%d cgroup=%s id=%llu shot=%s\n", u->url,
		       u->visited, u->major_error, u->minor_error, (int)u->pid, u->cgroup,
		       (unsigned long long)u->cgroup_id, u->screenshot);
	}
	fflush(stdout);
}

static bool child_cgroup_gone(struct sandbox *sb, const char *name)
{
	struct sandbox_cgroup_status st;
	return sandbox_cgroup_status(sb, name, &st) < 0;
}

static bool is_png(const char *path)
{
	unsigned char magic[8] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, magic, sizeof(magic));
	close(fd);
	return n == 8 && memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0;
}

/* ---- fetch ---- */

static void test_fetch_codes(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {
	    {.url = WWW "/plain.html"},
	    {.url = WWW "/no-such-page"},
	    {.url = WWW "/redirect/302"},
	    {.url = "http://10.9.9.9/"},
	    {.url = "http://unknown.invalid/"},
	    {.url = "https://www.capture-test.example/"},
	    {.url = "https://www.capture-test.example:8080/"},
	    {.url = "ftp://www.capture-test.example/"},
	    {.url = WWW "/large?mb=2"},
	};
	struct visit_group g;
	group_init(&g, sb, urls, ELEMENTSOF(urls), 0, CAP_ALG_NONE, &ab);
	struct visitor_app app;
	app_init(&app, "fetch", "", &app_fetch_plugin);
	assert_int_equal(app_fetch_plugin.visit_group(&opts, &app, &g), 0);
	print_results(&g);
	assert_true(urls[0].visited);
	assert_int_equal(urls[0].major_error, 0);
	assert_true(urls[1].visited);
	assert_int_equal(urls[1].major_error, CAP_ERR_NETWORK_ERROR);
	assert_int_equal(urls[1].minor_error, 404);
	assert_true(urls[2].visited); /* redirect followed to /plain.html */
	assert_int_equal(urls[2].major_error, 0);
	/* 10/8 is denied by the egress policy (icmp admin-prohibited) */
	assert_false(urls[3].visited);
	assert_int_equal(urls[3].major_error, CAP_ERR_NETWORK_ERROR);
	assert_true(urls[3].minor_error == EHOSTUNREACH || urls[3].minor_error == ECONNREFUSED ||
		    urls[3].minor_error == ENETUNREACH || urls[3].minor_error == EACCES);
	assert_false(urls[4].visited);
	assert_int_equal(urls[4].major_error, CAP_ERR_NETWORK_ERROR);
	assert_int_equal(urls[4].minor_error, ENOENT);
	assert_int_equal(urls[5].major_error, CAP_ERR_NETWORK_ERROR);
	assert_int_equal(urls[5].minor_error, ECONNREFUSED); /* nothing on 443 */
	assert_int_equal(urls[6].major_error, CAP_ERR_NETWORK_ERROR);
	assert_int_equal(urls[6].minor_error, EPROTO); /* TLS to a plain HTTP server */
	assert_int_equal(urls[7].major_error, CAP_ERR_NETWORK_ERROR);
	assert_int_equal(urls[7].minor_error, EPROTONOSUPPORT);
	assert_true(urls[8].visited);
	assert_int_equal(urls[8].major_error, 0);
	sbt_free(sb);
}

/* The fetch really goes through the sandbox's netns: the test web logs the
 * sandbox's address as the client. */
static void test_fetch_from_sandbox_address(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	char url[128];
	snprintf(url, sizeof(url), WWW "/plain.html?vapps=%ld", (long)getpid());
	struct visit_url urls[] = {{.url = url}};
	struct visit_group g;
	group_init(&g, sb, urls, 1, 0, CAP_ALG_NONE, &ab);
	struct visitor_app app;
	app_init(&app, "fetch", "", &app_fetch_plugin);
	assert_int_equal(app_fetch_plugin.visit_group(&opts, &app, &g), 0);
	assert_true(urls[0].visited);
	char cmd[512], line[256] = "";
	snprintf(cmd, sizeof(cmd),
		 "grep -F 'vapps=%ld' /run/capture-testweb/" WEBNS "/requests.log", (long)getpid());
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	pclose(f);
	printf("# request log: %s", line);
	char want[64];
	snprintf(want, sizeof(want), "\t%s\t", sandbox_address(sb));
	assert_non_null(strstr(line, want));
	sbt_free(sb);
}

/* https: an openssl s_server with a throw-away self-signed certificate in
 * the web netns serves the benign PDF on 8443; fetch and the PDF plugin get
 * it over TLS (the certificate is not verified, see download.h). */
static void test_https(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	/* the server after the sandbox: nothing asserts between its start and its kill */
	char dir[] = "/tmp/vapps-tls.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cmd[PATH_MAX * 3];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem "
		 "-days 2 -subj /CN=www.capture-test.example 2>/dev/null && "
		 "cp %s/tests/web/site/doc/benign.pdf . && "
		 "{ ip netns exec " WEBNS " openssl s_server -quiet -WWW -accept 8443 -cert c.pem "
		 "-key k.pem </dev/null >/dev/null 2>&1 & echo $! > pid; } && "
		 "for i in $(seq 50); do ip netns exec " WEBNS " ss -Hltn | grep -q ':8443 ' && "
		 "exit 0; sleep 0.1; done; exit 1",
		 dir, getenv("SRCDIR"));
	int setup_status = sbt_sh(cmd);
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = "https://www.capture-test.example:8443/benign.pdf"}};
	struct visit_group g;
	struct visitor_app app;
	app_init(&app, "fetch", "", &app_fetch_plugin);
	group_init(&g, sb, urls, 1, 0, CAP_ALG_NONE, &ab);
	int r1 = setup_status == 0 ? app_fetch_plugin.visit_group(&opts, &app, &g) : -1;
	print_results(&g);
	bool fetched = urls[0].visited && urls[0].major_error == 0;
	struct visit_url pdf[] = {{.url = "https://www.capture-test.example:8443/benign.pdf"}};
	app_init(&app, "pdf", "", &app_pdf_plugin);
	group_init(&g, sb, pdf, 1, 0, CAP_ALG_SEQ, &ab);
	int r2 = setup_status == 0 ? app_pdf_plugin.visit_group(&opts, &app, &g) : -1;
	print_results(&g);
	snprintf(cmd, sizeof(cmd), "kill $(cat %s/pid); rm -rf %s", dir, dir);
	sbt_sh(cmd);
	assert_int_equal(setup_status, 0);
	assert_int_equal(r1, 0);
	assert_true(fetched);
	assert_int_equal(r2, 0);
	assert_true(pdf[0].visited);
	assert_int_equal(pdf[0].major_error, 0);
	assert_true(is_png(pdf[0].screenshot));
	sbt_free(sb);
}

/* The download client against hostile and unusual answers (a raw server
 * with canned bytes in the web netns, tests/visitor/vapps-hostile-server.py)
 * and the test web's large and slow pages: every bound holds. */
static void test_download_hostile(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	/* the server after the sandbox: nothing asserts between its start and its kill */
	char cmd[PATH_MAX * 2];
	snprintf(cmd, sizeof(cmd),
		 "{ ip netns exec " WEBNS
		 " /usr/bin/python3 %s/tests/visitor/vapps-hostile-server.py "
		 "8082 /run/vapps-hostile.pid </dev/null >/dev/null 2>&1 & } && "
		 "for i in $(seq 50); do ip netns exec " WEBNS " ss -Hltn | grep -q ':8082 ' && "
		 "exit 0; sleep 0.1; done; exit 1",
		 getenv("SRCDIR"));
	int setup_status = sbt_sh(cmd);
	int fd = memfd_create("vapps-body", MFD_CLOEXEC);
	struct download_options o = {
	    .netns_fd = sandbox_netns_fd(sb), .hosts = hosts, .out_fd = fd};
	struct download_result res;
	static const struct {
		const char *path;
		int want;
	} cases[] = {
	    {"/chunked", 0},	       {"/badchunk", -EBADMSG},
	    {"/hugeheader", -EBADMSG}, {"/badstatus", -EBADMSG},
	    {"/loop", -ELOOP},	       {"/relative", 0},
	    {"/short", -EBADMSG},      {"/conflict", -EBADMSG},
	    {"/interim", 0},	       {"/eof", 0},
	};
	int got[ELEMENTSOF(cases)];
	bool ok_bodies = true, ok_type = false, ok_final = false;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char url[128];
		snprintf(url, sizeof(url), WWW ":8082%s", cases[i].path);
		if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) != 0)
			ok_bodies = false;
		memset(&res, 0, sizeof(res));
		got[i] = setup_status == 0 ? download_url(&o, url, &res) : -1;
		printf("# %s: %d status=%d bytes=%llu type=%s final=%s\n", url, got[i], res.status,
		       (unsigned long long)res.bytes, res.content_type, res.final_url);
		char body[32] = "";
		if (strcmp(cases[i].path, "/chunked") == 0 ||
		    strcmp(cases[i].path, "/relative") == 0)
			ok_bodies &= pread(fd, body, sizeof(body) - 1, 0) == 11 &&
				     strcmp(body, "hello world") == 0;
		if (strcmp(cases[i].path, "/interim") == 0)
			ok_type = strcmp(res.content_type, "application/pdf") == 0;
		if (strcmp(cases[i].path, "/relative") == 0)
			ok_final = strcmp(res.final_url, WWW ":8082/chunked") == 0;
	}
	/* bounds against the test web: size and time */
	struct download_options small = o;
	small.max_bytes = 1 << 20;
	int big = download_url(&small, WWW "/large?mb=2", &res);
	struct download_options quick = o;
	quick.timeout = 1;
	int slow = download_url(&quick, WWW "/slow?ms=4000", &res);
	close(fd);
	sbt_sh("kill $(cat /run/vapps-hostile.pid); rm -f /run/vapps-hostile.pid");
	assert_int_equal(setup_status, 0);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		assert_int_equal(got[i], cases[i].want);
	assert_true(ok_bodies); /* chunked decoding, also after a relative redirect */
	assert_true(ok_type);	/* 1xx skipped, media type without parameters */
	assert_true(ok_final);
	assert_int_equal(big, -EFBIG);
	assert_int_equal(slow, -ETIMEDOUT);
	sbt_free(sb);
}

/* ---- generic (capture-testapp) ---- */

static void testapp_app(struct visitor_app *app, bool browse)
{
	app_init(app, "testapp", TESTAPP_INSIDE, &app_generic_plugin);
	if (browse) {
		app->args[0] = "browse";
		app->args[1] = "{url}";
		app->n_args = 2;
	}
}

static void test_generic_testapp_drop(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = WWW "/testapp/benign.html"}};
	struct visit_group g;
	struct visitor_app app;
	testapp_app(&app, true);
	group_init(&g, sb, urls, 1, 1, CAP_ALG_SEQ, &ab);
	assert_int_equal(app_generic_plugin.visit_group(&opts, &app, &g), 0);
	print_results(&g);
	assert_true(urls[0].visited);
	assert_int_equal(urls[0].major_error, 0);
	assert_int_equal(urls[0].cgroup_id, 0); /* seq: shared attribution */
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-testapp-drop.sh"), 0);

	struct visit_url mal[] = {{.url = EVIL "/testapp/drop.html"}};
	group_init(&g, sb, mal, 1, 1, CAP_ALG_SEQ, &ab);
	assert_int_equal(app_generic_plugin.visit_group(&opts, &app, &g), 0);
	print_results(&g);
	assert_true(mal[0].visited);
	assert_true(mal[0].pid > 0);
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-testapp-drop.sh"), 1);
	assert_true(child_cgroup_gone(sb, "u0"));
	sbt_free(sb);
}

/* Bulk: one instance per URL, each in its own child cgroup; the double-forked
 * grandchild of exec.html is killed with its instance at the end. */
static void test_generic_bulk(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = WWW "/testapp/benign.html"},
				   {.url = EVIL "/testapp/exec.html"},
				   {.url = EVIL "/testapp/drop.html"}};
	struct visit_group g;
	struct visitor_app app;
	testapp_app(&app, true);
	group_init(&g, sb, urls, ELEMENTSOF(urls), 2, CAP_ALG_BULK, &ab);
	assert_int_equal(app_generic_plugin.visit_group(&opts, &app, &g), 0);
	print_results(&g);
	for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
		assert_true(urls[i].visited);
		assert_true(urls[i].pid > 0);
		assert_true(urls[i].cgroup_id != 0);
		assert_true(urls[i].cgroup[0] != '\0');
		for (size_t j = 0; j < i; j++)
			assert_true(urls[i].cgroup_id != urls[j].cgroup_id);
		assert_true(child_cgroup_gone(sb, urls[i].cgroup));
	}
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-testapp-daemon"), 1);
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-testapp-drop.sh"), 1);
	sbt_free(sb);
}

/* etc/applications.conf's testapp line, through the visitor (visitor.c
 * parses the file, visitor_find picks the generic plugin). */
static void test_conf_testapp(void **state)
{
	(void)state;
	char conf[PATH_MAX];
	snprintf(conf, sizeof(conf), "%s/etc/applications.conf", getenv("SRCDIR"));
	struct visitor_options o = opts;
	o.applications_conf = conf;
	struct visitor *v = NULL;
	assert_int_equal(visitor_new(&o, &v), 0);
	const struct visitor_app *app = visitor_find(v, "TestApp");
	assert_non_null(app);
	assert_ptr_equal(app->plugin, &app_generic_plugin);
	assert_non_null(visitor_find(v, "wget"));
	assert_ptr_equal(visitor_find(v, "firefox")->plugin, &app_firefox_plugin);
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = EVIL "/testapp/drop.html"}};
	struct visit_group g;
	group_init(&g, sb, urls, 1, 1, CAP_ALG_NONE, &ab);
	assert_int_equal(visitor_visit_group(v, app, &g), 0);
	print_results(&g);
	assert_true(urls[0].visited);
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-testapp-drop.sh"), 1);
	sbt_free(sb);
	visitor_free(v);
}

/* A program that fails (exit status 7) or is killed by a signal during the
 * visit is PROCESS_ERROR with that status; one that cannot be executed is
 * PROCESS_ERROR/ENOENT and not visited; the next URL is visited normally. */
static void test_generic_failures(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visitor_app app;
	testapp_app(&app, false);
	app.args[0] = "run";
	app.args[1] = "{url}";
	app.n_args = 2;
	struct visit_url urls[] = {
	    {.url = "exit 7"}, {.url = "exec /bin/sh -c kill\\ -KILL\\ $PPID"}, {.url = "exit 0"}};
	struct visit_group g;
	group_init(&g, sb, urls, ELEMENTSOF(urls), 1, CAP_ALG_SEQ, &ab);
	assert_int_equal(app_generic_plugin.visit_group(&opts, &app, &g), 0);
	print_results(&g);
	assert_true(urls[0].visited);
	assert_int_equal(urls[0].major_error, CAP_ERR_PROCESS_ERROR);
	assert_int_equal(urls[0].minor_error, 7);
	assert_true(urls[1].visited);
	assert_int_equal(urls[1].major_error, CAP_ERR_PROCESS_ERROR);
	assert_int_equal(
	    urls[1].minor_error,
	    128 + 9); /* SIGKILL: the testapp may run under ASan, which catches SIGSEGV */
	assert_true(urls[2].visited);
	assert_int_equal(urls[2].major_error, 0);

	struct visitor_app missing;
	app_init(&missing, "missing", "/usr/bin/no-such-program", &app_generic_plugin);
	struct visit_url u2[] = {{.url = WWW "/plain.html"}};
	group_init(&g, sb, u2, 1, 1, CAP_ALG_SEQ, &ab);
	assert_int_equal(app_generic_plugin.visit_group(&opts, &missing, &g), 0);
	print_results(&g);
	assert_false(u2[0].visited);
	assert_int_equal(u2[0].major_error, CAP_ERR_PROCESS_ERROR);
	assert_int_equal(u2[0].minor_error, ENOENT);
	sbt_free(sb);
}

static void *set_abort(void *arg)
{
	struct timespec ts = {.tv_sec = 1};
	nanosleep(&ts, NULL);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An application that hangs is stopped within the abort poll interval. */
static void test_generic_abort(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = WWW "/plain.html"}};
	struct visit_group g;
	struct visitor_app app;
	testapp_app(&app, false);
	app.args[0] = "run";
	app.args[1] = "sleep 600000";
	app.n_args = 2;
	group_init(&g, sb, urls, 1, 60, CAP_ALG_SEQ, &ab);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, set_abort, &ab), 0);
	double t0 = now_s();
	assert_int_equal(app_generic_plugin.visit_group(&opts, &app, &g), -ECANCELED);
	double took = now_s() - t0;
	pthread_join(t, NULL);
	printf("# aborted after %.2f s\n", took);
	assert_true(took < 30);
	assert_true(child_cgroup_gone(sb, "u0"));
	sbt_free(sb);
}

/* ---- pdf ---- */

static void test_pdf(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = WWW "/doc/benign.pdf"},
				   {.url = WWW "/plain.html"}, /* not a PDF */
				   {.url = WWW "/doc/missing.pdf"}};
	struct visit_group g;
	struct visitor_app app;
	app_init(&app, "pdf", "", &app_pdf_plugin);
	group_init(&g, sb, urls, ELEMENTSOF(urls), 1, CAP_ALG_SEQ, &ab);
	assert_int_equal(app_pdf_plugin.visit_group(&opts, &app, &g), 0);
	print_results(&g);
	assert_true(urls[0].visited);
	assert_int_equal(urls[0].major_error, 0);
	assert_true(is_png(urls[0].screenshot));
	assert_int_equal(app_exists_inside(sb, APP_HOME "/benign.pdf"), 1);
	assert_false(urls[1].visited);
	assert_int_equal(urls[1].major_error, CAP_ERR_PROCESS_ERROR);
	assert_int_equal(urls[1].minor_error, 1); /* pdftoppm: cannot open the document */
	assert_false(urls[2].visited);
	assert_int_equal(urls[2].major_error, CAP_ERR_NETWORK_ERROR);
	assert_int_equal(urls[2].minor_error, 404);
	sbt_free(sb);
}

/* ---- libreoffice ---- */

static void lo_visit(struct sandbox *sb, const char *url, const char *security, struct visit_url *u)
{
	atomic_bool ab = false;
	memset(u, 0, sizeof(*u));
	u->url = url;
	struct visit_group g;
	struct visitor_app app;
	app_init(&app, "libreoffice", "", &app_libreoffice_plugin);
	if (security) {
		app.args[0] = (char *)security;
		app.n_args = 1;
	}
	group_init(&g, sb, u, 1, 5, CAP_ALG_SEQ, &ab);
	double t0 = now_s();
	assert_int_equal(app_libreoffice_plugin.visit_group(&opts, &app, &g), 0);
	printf("# %.1f s\n", now_s() - t0);
	print_results(&g);
	assert_true(u->visited);
	assert_int_equal(u->major_error, 0);
	assert_true(child_cgroup_gone(sb, "u0"));
}

static void test_lo_macro_runs(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	struct visit_url u;
	lo_visit(sb, EVIL "/doc/invoice.odt", NULL, &u);
	assert_int_equal(app_exists_inside(sb, APP_HOME "/invoice.odt"), 1);
	/* the macro's effects: the dropped script, and the listener it started
	 * wrote its pid (so the script ran as a new process) */
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-macro-dropped.sh"), 1);
	char host[PATH_MAX];
	snprintf(host, sizeof(host), "%s/marker", evidence);
	unlink(host);
	assert_int_equal(sandbox_copy_out(sb, "/tmp/capture-macro-listener.pid", host, 64), 0);
	struct stat st;
	assert_int_equal(stat(host, &st), 0);
	assert_true(st.st_size > 0);
	sbt_free(sb);
}

static void test_lo_benign(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	struct visit_url u;
	lo_visit(sb, WWW "/doc/letter.fodt", NULL, &u);
	assert_int_equal(app_exists_inside(sb, APP_HOME "/letter.fodt"), 1);
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-macro-dropped.sh"), 0);
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-macro-listener.pid"), 0);
	sbt_free(sb);
}

static void test_lo_macros_disabled(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	struct visit_url u;
	lo_visit(sb, EVIL "/doc/invoice.odt", "macro-security=high", &u);
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-macro-dropped.sh"), 0);
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-macro-listener.pid"), 0);
	sbt_free(sb);
}

/* Bulk: the benign and the malicious document at once, each soffice with
 * its own profile in its own cgroup; both load, the macro runs. */
static void test_lo_bulk(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = WWW "/doc/letter.fodt"},
				   {.url = EVIL "/doc/invoice.odt"}};
	struct visit_group g;
	struct visitor_app app;
	app_init(&app, "libreoffice", "", &app_libreoffice_plugin);
	group_init(&g, sb, urls, ELEMENTSOF(urls), 5, CAP_ALG_BULK, &ab);
	double t0 = now_s();
	assert_int_equal(app_libreoffice_plugin.visit_group(&opts, &app, &g), 0);
	printf("# bulk: %.1f s\n", now_s() - t0);
	print_results(&g);
	for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
		assert_true(urls[i].visited);
		assert_int_equal(urls[i].major_error, 0);
		assert_true(urls[i].cgroup_id != 0);
		assert_true(child_cgroup_gone(sb, urls[i].cgroup));
	}
	assert_true(urls[0].cgroup_id != urls[1].cgroup_id);
	assert_int_equal(app_exists_inside(sb, APP_HOME "/letter.fodt"), 1);
	assert_int_equal(app_exists_inside(sb, APP_HOME "/1-invoice.odt"), 1);
	assert_int_equal(app_exists_inside(sb, "/tmp/capture-macro-dropped.sh"), 1);
	sbt_free(sb);
}

/* ---- firefox ---- */

static void test_firefox(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = WWW "/js.html"}, {.url = "http://10.9.9.9/"}};
	struct visit_group g;
	struct visitor_app app;
	app_init(&app, "firefox", "", &app_firefox_plugin);
	group_init(&g, sb, urls, ELEMENTSOF(urls), 1, CAP_ALG_SEQ, &ab);
	double t0 = now_s();
	assert_int_equal(app_firefox_plugin.visit_group(&opts, &app, &g), 0);
	printf("# %.1f s\n", now_s() - t0);
	print_results(&g);
	assert_true(urls[0].visited);
	assert_int_equal(urls[0].major_error, 0);
	assert_true(is_png(urls[0].screenshot));
	assert_int_equal(urls[1].major_error, CAP_ERR_NETWORK_ERROR);
	assert_true(child_cgroup_gone(sb, "u0"));
	assert_true(child_cgroup_gone(sb, "u1"));
	sbt_free(sb);
}

/* dac: one Firefox, one tab per URL; bulk: one Firefox per URL in its own
 * cgroup.  Both give per-URL results (404 as NETWORK_ERROR/404). */
static void firefox_mode(enum cap_algorithm alg)
{
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {
	    {.url = WWW "/plain.html"}, {.url = WWW "/no-such-page"}, {.url = WWW "/redirect/301"}};
	struct visit_group g;
	struct visitor_app app;
	app_init(&app, "firefox", "", &app_firefox_plugin);
	group_init(&g, sb, urls, ELEMENTSOF(urls), 1, alg, &ab);
	double t0 = now_s();
	assert_int_equal(app_firefox_plugin.visit_group(&opts, &app, &g), 0);
	printf("# %s: %.1f s\n", alg == CAP_ALG_DAC ? "dac" : "bulk", now_s() - t0);
	print_results(&g);
	for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
		assert_true(urls[i].visited);
		assert_true(urls[i].pid > 0);
		assert_true(is_png(urls[i].screenshot));
		if (alg == CAP_ALG_BULK) {
			assert_true(urls[i].cgroup_id != 0);
			for (size_t j = 0; j < i; j++)
				assert_true(urls[i].cgroup_id != urls[j].cgroup_id);
		} else {
			assert_int_equal(urls[i].cgroup_id, 0);
			assert_int_equal(urls[i].pid, urls[0].pid);
		}
	}
	assert_int_equal(urls[0].major_error, 0);
	assert_int_equal(urls[1].major_error, CAP_ERR_NETWORK_ERROR);
	assert_int_equal(urls[1].minor_error, 404);
	assert_int_equal(urls[2].major_error, 0);
	sbt_free(sb);
}

/* A page that does not load within the load timeout is TIMEOUT_ERROR, and
 * the next tab of the same Firefox still works. */
static void test_firefox_timeout(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = WWW "/slow?ms=20000"}, {.url = WWW "/plain.html"}};
	struct visitor_options o = opts;
	o.load_timeout = 4;
	struct visit_group g;
	struct visitor_app app;
	app_init(&app, "firefox", "", &app_firefox_plugin);
	group_init(&g, sb, urls, ELEMENTSOF(urls), 0, CAP_ALG_DAC, &ab);
	assert_int_equal(app_firefox_plugin.visit_group(&o, &app, &g), 0);
	print_results(&g);
	assert_true(urls[0].visited);
	assert_int_equal(urls[0].major_error, CAP_ERR_TIMEOUT_ERROR);
	assert_true(urls[1].visited);
	assert_int_equal(urls[1].major_error, 0);
	sbt_free(sb);
}

/* Headful: Firefox without --headless on an Xvfb of its own. */
static void test_firefox_headful(void **state)
{
	(void)state;
	struct sandbox *sb = build();
	atomic_bool ab = false;
	struct visit_url urls[] = {{.url = WWW "/plain.html"}};
	struct visitor_options o = opts;
	o.headful = true;
	struct visit_group g;
	struct visitor_app app;
	app_init(&app, "firefox", "", &app_firefox_plugin);
	group_init(&g, sb, urls, 1, 1, CAP_ALG_SEQ, &ab);
	double t0 = now_s();
	assert_int_equal(app_firefox_plugin.visit_group(&o, &app, &g), 0);
	printf("# headful: %.1f s\n", now_s() - t0);
	print_results(&g);
	assert_true(urls[0].visited);
	assert_int_equal(urls[0].major_error, 0);
	assert_true(is_png(urls[0].screenshot));
	assert_true(child_cgroup_gone(sb, "u0"));
	sbt_free(sb);
}

static void test_firefox_dac(void **state)
{
	(void)state;
	firefox_mode(CAP_ALG_DAC);
}

static void test_firefox_bulk(void **state)
{
	(void)state;
	firefox_mode(CAP_ALG_BULK);
}

/* ---- setup ---- */

static char testweb_cmd[PATH_MAX + 64];

static int web(const char *args)
{
	char cmd[PATH_MAX * 2];
	snprintf(cmd, sizeof(cmd), "%s --gw " GW " --ns " WEBNS " %s >&2", testweb_cmd, args);
	return sbt_sh(cmd);
}

static int setup(bool doc)
{
	if (!mkdtemp(evidence))
		return -1;
	sbt_lock();
	sbt_cleanup_leftovers();
	const char *src = getenv("SRCDIR");
	if (!src || !getenv("TESTAPP") || !getenv("CAPTURE_SANDBOX"))
		return -1;
	snprintf(testweb_cmd, sizeof(testweb_cmd), "%s/scripts/testweb", src);
	web("stop");
	sbt_sh("rm -rf /run/capture-testweb/" WEBNS); /* old request logs */
	return web(doc ? "start" : "--no-doc start");
}

static void teardown(void)
{
	web("stop");
	sbt_sh("rm -rf /run/capture-testweb/" WEBNS);
	sandbox_gateway_down(GW);
	char cmd[PATH_MAX];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", evidence);
	if (!getenv("VAPPS_KEEP")) /* debugging: keep the screenshots */
		sbt_sh(cmd);
}

int main(int argc, char **argv)
{
	if (getuid() != 0) {
		fprintf(stderr, "test-visitor-apps: needs root\n");
		return 1;
	}
	const char *which = argc > 1 ? argv[1] : "basic";
	const struct CMUnitTest basic[] = {
	    sbt_unit_test(test_fetch_codes), sbt_unit_test(test_fetch_from_sandbox_address),
	    sbt_unit_test(test_https),	sbt_unit_test(test_download_hostile),
	    sbt_unit_test(test_pdf),
	};
	const struct CMUnitTest generic[] = {
	    sbt_unit_test(test_generic_testapp_drop), sbt_unit_test(test_generic_bulk),
	    sbt_unit_test(test_generic_abort),	 sbt_unit_test(test_generic_failures),
	    sbt_unit_test(test_conf_testapp),
	};
	const struct CMUnitTest lo[] = {
	    sbt_unit_test(test_lo_macro_runs),
	    sbt_unit_test(test_lo_benign),
	    sbt_unit_test(test_lo_macros_disabled),
	    sbt_unit_test(test_lo_bulk),
	};
	const struct CMUnitTest ff[] = {
	    sbt_unit_test(test_firefox),	    sbt_unit_test(test_firefox_dac),
	    sbt_unit_test(test_firefox_bulk),    sbt_unit_test(test_firefox_timeout),
	    sbt_unit_test(test_firefox_headful),
	};
	bool is_lo = strcmp(which, "libreoffice") == 0;
	if (setup(is_lo) != 0) {
		fprintf(stderr, "test-visitor-apps: setup failed\n");
		teardown();
		return 1;
	}
	int r;
	if (is_lo)
		r = cmocka_run_group_tests_name("visitor-libreoffice", lo, NULL, NULL);
	else if (strcmp(which, "generic") == 0)
		r = cmocka_run_group_tests_name("visitor-generic", generic, NULL, NULL);
	else if (strcmp(which, "firefox") == 0)
		r = cmocka_run_group_tests_name("visitor-firefox", ff, NULL, NULL);
	else
		r = cmocka_run_group_tests_name("visitor-apps", basic, NULL, NULL);
	teardown();
	return r;
}
