/* sandbox-bench - what a sandbox costs (issue 3 targets: build+revert median
 * <= 5 ms without network, <= 10 ms with; revert of a busy sandbox <= 25 ms).
 * Prints tables; never fails on timing (only on errors).
 *   1. build, revert, build+revert over N cycles (default 1000), without and with network
 *   2. starting a process inside (spawn /bin/true and wait for it)
 *   3. revert of a sandbox with 50 processes and 2,000 written files
 *   4. memory per idle sandbox (host MemAvailable delta and cgroup usage)
 *   5. the revert on the client's critical path, sequential vs build-ahead:
 *      the gap between the end of one visit and the start of the next, and
 *      the revert + build moved off it (a visit = a 200 ms process)
 * Uses the test names (state dir, cgroup parent, gateway sbt-gw) and cleans up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "sbt-util.h"

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void row(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	int p99 = (int)((n - 1) * 0.99 + 0.5);
	printf("| %-34s | %5d | %8.2f | %8.2f | %8.2f |\n", what, n, v[n / 2], v[p99], v[n - 1]);
}

static struct sandbox *build(struct sandbox_plan *plan)
{
	struct sandbox *sb = sbt_build(plan);
	if (!sb)
		exit(1);
	return sb;
}

static void cycles(bool network, int n)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.network = network;
	double *b = calloc((size_t)n, sizeof(double)), *r = calloc((size_t)n, sizeof(double)),
	       *t = calloc((size_t)n, sizeof(double));
	if (!b || !r || !t)
		exit(1);
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		struct sandbox *sb = build(&plan);
		double t1 = now_ms();
		sbt_free(sb);
		double t2 = now_ms();
		b[i] = t1 - t0;
		r[i] = t2 - t1;
		t[i] = t2 - t0;
	}
	const char *net = network ? "with network" : "without network";
	char name[64];
	snprintf(name, sizeof(name), "build (%s)", net);
	row(name, b, n);
	snprintf(name, sizeof(name), "revert (%s)", net);
	row(name, r, n);
	snprintf(name, sizeof(name), "build+revert (%s)", net);
	row(name, t, n);
	free(b);
	free(r);
	free(t);
}

static void spawn_cost(int n)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	struct sandbox *sb = build(&plan);
	double *v = calloc((size_t)n, sizeof(double));
	if (!v)
		exit(1);
	const char *argv[] = {"/bin/true", NULL};
	for (int i = 0; i < n; i++) {
		struct sandbox_exec ex;
		sandbox_exec_init(&ex);
		ex.argv = argv;
		struct sandbox_process p;
		int st;
		double t0 = now_ms();
		if (sandbox_spawn(sb, &ex, &p) < 0 || sandbox_process_wait(&p, 10000, &st) < 0)
			exit(1);
		v[i] = now_ms() - t0;
		sandbox_process_done(&p);
	}
	row("spawn /bin/true inside + wait", v, n);
	free(v);
	sbt_free(sb);
}

static void busy_revert(int n)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	double *v = calloc((size_t)n, sizeof(double));
	if (!v)
		exit(1);
	for (int i = 0; i < n; i++) {
		struct sandbox *sb = build(&plan);
		const char *spin[] = {SBT_PROBE, "spin", "50", NULL};
		const char *files[] = {SBT_PROBE, "files", "/tmp", "2000", NULL};
		int st;
		if (sbt_run(sb, spin, NULL, NULL, 0, 10000, &st) < 0 ||
		    sbt_run(sb, files, NULL, NULL, 0, 30000, &st) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			fprintf(stderr, "busy sandbox setup failed\n");
			exit(1);
		}
		double t0 = now_ms();
		sbt_free(sb);
		v[i] = now_ms() - t0;
	}
	row("revert, 50 processes + 2000 files", v, n);
	free(v);
}

static long mem_available_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void idle_memory(int n)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.network = true;
	struct sandbox *sbs[64];
	if (n > 64)
		n = 64;
	sleep(1);
	long before = mem_available_kb();
	for (int i = 0; i < n; i++)
		sbs[i] = build(&plan);
	sleep(1);
	long after = mem_available_kb();
	uint64_t cg = 0;
	for (int i = 0; i < n; i++) {
		struct sandbox_cgroup_status s;
		if (sandbox_cgroup_status(sbs[i], NULL, &s) == 0)
			cg += s.memory_bytes;
	}
	for (int i = 0; i < n; i++)
		sbt_free(sbs[i]);
	printf("\nmemory per idle sandbox (with network, %d at once): host MemAvailable delta "
	       "%.0f KiB, charged to its memory cgroup %.0f KiB\n",
	       n, (double)(before - after) / n, (double)cg / 1024.0 / n);
}

/* A stand-in for a visit: a process that lasts 200 ms (a real visit lasts
 * seconds, mostly waiting for the network and the page). */
static void visit_start(struct sandbox *sb, struct sandbox_process *p)
{
	const char *argv[] = {"/bin/sleep", "0.2", NULL};
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	if (sandbox_spawn(sb, &ex, p) < 0)
		exit(1);
}

static void visit_end(struct sandbox_process *p)
{
	int st;
	if (sandbox_process_wait(p, 30000, &st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "visit failed\n");
		exit(1);
	}
	sandbox_process_done(p);
}

/*
 * The client's loop, with network.  Sequential: after a visit, revert its
 * sandbox and build the next one, then start the next visit.  Build-ahead:
 * the next sandbox already exists; after a visit the client switches to it
 * and starts the next visit at once, then reverts the used sandbox and builds
 * the following one while that visit runs (one thread, as the client does).
 * "gap" = end of one visit (its process reaped) to the next visit started
 * (sandbox_spawn returned: the process has exec'd); "off the path" = the
 * revert + build the build-ahead client does while the visit runs.
 */
static void critical_path(int n)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.network = true;
	double *gap = calloc((size_t)n, sizeof(double)), *rb = calloc((size_t)n, sizeof(double)),
	       *rv = calloc((size_t)n, sizeof(double));
	if (!gap || !rb || !rv)
		exit(1);
	for (int ahead = 0; ahead < 2; ahead++) {
		struct sandbox *cur = build(&plan), *next = ahead ? build(&plan) : NULL;
		struct sandbox_process p;
		double end = now_ms();
		for (int i = 0; i <= n; i++) {
			struct sandbox *old = NULL;
			double t0 = now_ms();
			if (i > 0) { /* between visit i-1 and visit i */
				if (ahead) {
					old = cur;
					cur = next;
				} else {
					sbt_free(cur);
					rv[i - 1] = now_ms() - t0;
					cur = build(&plan);
				}
			}
			double t1 = now_ms();
			visit_start(cur, &p);
			double t2 = now_ms();
			if (ahead && i > 0) {
				sbt_free(old);
				next = build(&plan);
			}
			double t3 = now_ms();
			visit_end(&p);
			if (i > 0) {
				gap[i - 1] = t2 - end;
				rb[i - 1] = ahead ? t3 - t2 : t1 - t0;
			}
			end = now_ms();
		}
		row(ahead ? "gap between visits, build-ahead" : "gap between visits, sequential", gap, n);
		row(ahead ? "  revert+build, off the path" : "  of which revert+build", rb, n);
		if (!ahead)
			row("  of which revert", rv, n);
		sbt_free(cur);
		sbt_free(next);
	}
	free(gap);
	free(rb);
	free(rv);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1000;
	if (n < 10)
		n = 10;
	if (geteuid() != 0) {
		fprintf(stderr, "sandbox-bench needs root\n");
		return 77;
	}
	sbt_lock();
	sbt_cleanup_leftovers();
	struct sandbox_gateway_config gw = {.netns = SBT_GW};
	if (sandbox_gateway_up(&gw) < 0)
		return 1;
	printf("sandbox benchmark, %d cycles; times in ms\n\n", n);
	printf("| %-34s | %5s | %8s | %8s | %8s |\n", "operation", "n", "median", "p99", "max");
	printf("|------------------------------------|-------|----------|----------|----------|\n");
	cycles(false, n);
	cycles(true, n);
	spawn_cost(n / 5);
	busy_revert(20);
	critical_path(n / 10);
	idle_memory(20);
	sandbox_gateway_down(SBT_GW);
	sbt_cleanup_leftovers();
	return 0;
}
