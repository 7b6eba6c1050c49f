/* server-bench.c - memory for N queued URLs in the scheduler and the time
 * to resume an N-URL run from the SQLite store (issue 2 benchmark).
 * Usage: server-bench [N] (default 1000000).  Prints a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scheduler.h"
#include "store.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

static void on_final(void *ud, const struct sched_url *u, enum sched_verdict v, uint32_t e)
{
}

static int on_url(void *ud, int64_t id, const char *url, const char *client, uint32_t t,
                  double prio)
{
	return sched_add(ud, (uint64_t)id, url, client, t, prio);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	struct sched_params p = {.algorithm = SCHED_DAC, .group_size = 20};
	struct scheduler *s;
	char url[128];

	long before = rss_kib();
	double t0 = now();
	if (sched_new(&p, on_final, NULL, &s) < 0)
		return 1;
	for (long i = 0; i < n; i++) {
		snprintf(url, sizeof(url), "http://host%ld.example.test/path/to/page%ld.html", i, i);
		if (sched_add(s, (uint64_t)i, url, "firefox", 10, 0.5) < 0)
			return 1;
	}
	double t_queue = now() - t0;
	long mem = rss_kib() - before;
	sched_free(s);

	char dir[] = "/tmp/server-bench-XXXXXX", db[64];
	if (!mkdtemp(dir))
		return 1;
	snprintf(db, sizeof(db), "%s/results.db", dir);
	struct store *st;
	int64_t op, id;
	if (store_sqlite_open(db, &st) < 0 || store_operation_begin(st, "dac", &op) < 0)
		return 1;
	t0 = now();
	store_tx_begin(st);
	for (long i = 0; i < n; i++) {
		snprintf(url, sizeof(url), "http://host%ld.example.test/path/to/page%ld.html", i, i);
		if (store_url_add(st, op, url, "firefox", 10, 0.5, &id) < 0)
			return 1;
	}
	store_tx_commit(st);
	double t_insert = now() - t0;
	store_close(st);

	t0 = now();
	if (store_sqlite_open(db, &st) < 0 || store_operation_resume(st, &op) < 0 ||
	    sched_new(&p, on_final, NULL, &s) < 0 || store_url_pending(st, op, on_url, s) < 0)
		return 1;
	double t_resume = now() - t0;
	size_t queued = sched_queued(s);
	sched_free(s);
	store_close(st);
	char path[96];
	static const char *const sfx[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", db, sfx[i]);
		unlink(path);
	}
	rmdir(dir);

	printf("%-44s %14s\n", "measure", "value");
	printf("%-44s %14ld\n", "URLs", n);
	printf("%-44s %11.1f MB\n", "scheduler memory, all URLs queued (RSS)", mem / 1024.0);
	printf("%-44s %12.2f s\n", "queueing (parse-free sched_add)", t_queue);
	printf("%-44s %12.2f s\n", "store insert (one transaction)", t_insert);
	printf("%-44s %12.2f s\n", "resume: reload pending URLs into the queue", t_resume);
	printf("%-44s %14zu\n", "URLs queued after resume", queued);
	return queued == (size_t)n ? 0 : 1;
}
