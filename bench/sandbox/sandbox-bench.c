/* sandbox-bench - what a sandbox costs (issue 3 targets: build+revert median
 * <= 5 ms without network, <= 10 ms with; revert of a busy sandbox <= 25 ms).
 * Prints tables; never fails on timing (only on errors).
 *   1. build, revert, build+revert over N cycles (default 1000), without and with network
 *   2. starting a process inside (spawn /bin/true and wait for it)
 *   3. revert of a sandbox with 50 processes and 2,000 written files
 *   4. memory per idle sandbox (host MemAvailable delta and cgroup usage)
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
		sandbox_free(sb);
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
	sandbox_free(sb);
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
		sandbox_free(sb);
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
		sandbox_free(sbs[i]);
	printf("\nmemory per idle sandbox (with network, %d at once): host MemAvailable delta "
	       "%.0f KiB, charged to its memory cgroup %.0f KiB\n",
	       n, (double)(before - after) / n, (double)cg / 1024.0 / n);
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
	idle_memory(20);
	sandbox_gateway_down(SBT_GW);
	sbt_cleanup_leftovers();
	return 0;
}
