/* visitor-bench.c - seconds per Chromium visit through the visitor
 * (docs/visitor.md "Measured"): one simple page with a cold browser, and a
 * group of 10 in dac, seq and bulk mode, each in a fresh sandbox against the
 * bundled test web (own netns vchr-gw / vchr-web, as the tests), visit time
 * 0; plus the time from setting the abort flag to the return, and the
 * sandbox's peak memory during the visit (sampled every 100 ms).
 *
 *   visitor-bench [ROUNDS] [bulk]   (default 3; SRCDIR for scripts/testweb;
 *                                    "bulk": only the largest-bulk-group part)
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox.h"
#include "sbt-util.h"
#include "visitor.h"

#define GW	 "vchr-gw"
#define WEBNS	 "vchr-web"
#define WWW	 "http://www.capture-test.example"
#define MAX_URLS 48

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool default_limits; /* the sandbox library's defaults (1 GiB, 1024 pids) */

static struct sandbox *build(void)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.network = true;
	plan.gateway.netns = GW;
	if (!default_limits) {
		plan.limits.memory_bytes = 16384ULL << 20;
		plan.limits.pids = 16384;
	}
	static const char *names[] = {"www.capture-test.example", "evil.capture-test.example",
				      "ads.capture-test.example"};
	for (size_t i = 0; i < 3; i++) {
		plan.hosts[i].address = "198.51.100.10";
		plan.hosts[i].name = names[i];
	}
	return sbt_build(&plan);
}

struct timing {
	double seconds;
	int errors; /* URLs with an error or not visited */
	int r;
	uint64_t peak_bytes; /* sandbox memory (v1 usage_in_bytes: RSS + page cache) */
};

/* Samples the sandbox's memory use while the visit runs (read-only cgroup
 * files; the visitor thread does the rest). */
struct sampler {
	struct sandbox *sb;
	atomic_bool stop;
	uint64_t peak;
};

static void *sample(void *p)
{
	struct sampler *s = p;
	while (!atomic_load(&s->stop)) {
		struct sandbox_cgroup_status st;
		if (sandbox_cgroup_status(s->sb, NULL, &st) == 0 && st.memory_bytes > s->peak)
			s->peak = st.memory_bytes;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

struct abort_arg {
	atomic_bool *flag;
	double at;
};

static void *abort_later(void *p)
{
	struct abort_arg *a = p;
	struct timespec ts = {1, 0};
	nanosleep(&ts, NULL);
	a->at = now_s();
	atomic_store(a->flag, true);
	return NULL;
}

/* Visits n URLs in a fresh sandbox; with abort_after_1s, sets the abort
 * flag one second in and reports the seconds from then to the return. */
static struct timing visit(struct visitor *v, enum cap_algorithm alg, size_t n, unsigned visit_time,
			   bool abort_after_1s)
{
	struct timing t = {.r = -EIO};
	struct sandbox *sb = build();
	if (!sb)
		return t;
	static char urls_s[MAX_URLS][128];
	struct visit_url urls[MAX_URLS] = {0};
	for (size_t i = 0; i < n; i++) {
		snprintf(urls_s[i], sizeof(urls_s[i]),
			 abort_after_1s ? WWW "/slow?ms=30000&i=%zu" : WWW "/plain.html?i=%zu", i);
		urls[i].url = urls_s[i];
	}
	char evidence[] = "/tmp/vchr-bench-XXXXXX";
	if (!mkdtemp(evidence)) {
		sbt_free(sb);
		return t;
	}
	atomic_bool abort_flag = false;
	struct visit_group g = {.program = "chromium",
				.algorithm = alg,
				.visit_time = visit_time,
				.urls = urls,
				.n_urls = n,
				.sb = sb,
				.evidence_dir = evidence,
				.abort = &abort_flag};
	const struct visitor_app *app = visitor_find(v, "chromium");
	struct abort_arg aa = {.flag = &abort_flag};
	pthread_t th;
	if (abort_after_1s)
		pthread_create(&th, NULL, abort_later, &aa);
	struct sampler sm = {.sb = sb};
	pthread_t sth;
	pthread_create(&sth, NULL, sample, &sm);
	double t0 = now_s();
	t.r = visitor_visit_group(v, app, &g);
	double t1 = now_s();
	atomic_store(&sm.stop, true);
	pthread_join(sth, NULL);
	t.peak_bytes = sm.peak;
	if (abort_after_1s) {
		pthread_join(th, NULL);
		t.seconds = t1 - aa.at;
	} else {
		t.seconds = t1 - t0;
	}
	for (size_t i = 0; i < n; i++)
		t.errors += !urls[i].visited || urls[i].major_error;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", evidence);
	(void)sbt_sh(cmd);
	sbt_free(sb);
	return t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void row(struct visitor *v, const char *what, enum cap_algorithm alg, size_t n,
		bool abort_after_1s, int rounds)
{
	double s[32];
	int errors = 0, fails = 0;
	uint64_t peak = 0;
	for (int i = 0; i < rounds; i++) {
		struct timing t = visit(v, alg, n, 0, abort_after_1s);
		s[i] = t.seconds;
		errors += t.errors;
		fails += abort_after_1s ? t.r != -ECANCELED : t.r != 0;
		peak = MAX(peak, t.peak_bytes);
	}
	qsort(s, (size_t)rounds, sizeof(double), cmp_double);
	char err[16];
	snprintf(err, sizeof(err), "%d", errors);
	printf("%-34s %5zu %8.2f %8.2f %8.2f %9.2f %6s %6d %9llu\n", what, n, s[0], s[rounds / 2],
	       s[rounds - 1], abort_after_1s ? 0.0 : s[rounds / 2] / (double)n,
	       abort_after_1s ? "-" : err, fails, (unsigned long long)(peak >> 20));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 3;
	bool bulk_only = argc > 2 && strcmp(argv[2], "bulk") == 0;
	if (rounds < 1 || rounds > 32)
		rounds = 3;
	if (geteuid() != 0) {
		fprintf(stderr, "visitor-bench needs root\n");
		return 77;
	}
	const char *src = getenv("SRCDIR");
	char testweb[PATH_MAX + 128];
	snprintf(testweb, sizeof(testweb), "%s/scripts/testweb --gw " GW " --ns " WEBNS,
		 src ? src : ".");
	sbt_lock();
	sbt_cleanup_leftovers();
	struct sandbox_gateway_config gw = {.netns = GW};
	char cmd[PATH_MAX + 160];
	snprintf(cmd, sizeof(cmd), "%s --no-doc start >&2", testweb);
	if (sandbox_gateway_up(&gw) < 0 || sbt_sh(cmd) != 0) {
		fprintf(stderr, "could not start the test web\n");
		return 1;
	}
	struct visitor_options opts = {.load_timeout = 30};
	struct visitor *v = NULL;
	if (visitor_new(&opts, &v) < 0)
		return 1;

	printf("Chromium through the visitor, fresh sandbox per group, visit time 0, %d rounds\n",
	       rounds);
	printf("%-34s %5s %8s %8s %8s %9s %6s %6s %9s\n", "case", "urls", "min s", "median",
	       "max s", "s/url", "errors", "fails", "peak MiB");
	if (bulk_only)
		goto largest;
	row(v, "one page (cold browser + load)", CAP_ALG_SEQ, 1, false, rounds);
	row(v, "group of 10, dac (one browser)", CAP_ALG_DAC, 10, false, rounds);
	row(v, "group of 10, seq (one browser)", CAP_ALG_SEQ, 10, false, rounds);
	row(v, "group of 10, bulk (10 browsers)", CAP_ALG_BULK, 10, false, rounds);
	struct visitor_options hopts = {.load_timeout = 30, .headful = true};
	struct visitor *vh = NULL;
	if (visitor_new(&hopts, &vh) == 0) {
		row(vh, "group of 10, dac, headful (Xvfb)", CAP_ALG_DAC, 10, false, rounds);
		visitor_free(vh);
	}
	row(v, "abort -> return, dac, 2 tabs", CAP_ALG_DAC, 2, true, rounds);
	row(v, "abort -> return, bulk, 2 browsers", CAP_ALG_BULK, 2, true, rounds);

largest:
	printf("\nLargest bulk group (one round each; errors = URLs not loaded)\n");
	static const size_t sizes[] = {24, 32, 40, 48};
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++)
		row(v, "bulk, 16 GiB / 16384 pids", CAP_ALG_BULK, sizes[i], false, 1);
	default_limits = true;
	static const size_t small[] = {4, 6, 8, 10};
	for (size_t i = 0; i < ELEMENTSOF(small); i++)
		row(v, "bulk, default 1 GiB / 1024 pids", CAP_ALG_BULK, small[i], false, 1);
	row(v, "dac, default 1 GiB / 1024 pids", CAP_ALG_DAC, 24, false, 1);

	visitor_free(v);
	snprintf(cmd, sizeof(cmd), "%s stop >&2", testweb);
	(void)sbt_sh(cmd);
	sandbox_gateway_down(GW);
	sbt_cleanup_leftovers();
	return 0;
}
