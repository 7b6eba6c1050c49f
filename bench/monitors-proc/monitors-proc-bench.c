/* monitors-proc-bench - costs of the process and network monitors on a real
 * sandbox (issue 4 benchmark):
 *   1. the machine's fork rate inside a sandbox without and with the process
 *      monitor (N short processes, fork + _exit), events/s and losses;
 *   2. the cost of one sock_diag snapshot with few and with ~900 sockets
 *      (first poll resolves owners through /proc/PID/fd; steady state);
 *   3. the CPU used by both monitors while the sandbox is idle (5 s).
 * Prints tables; no pass/fail on timings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mon-network.h"
#include "mon-process.h"
#include "mpt-util.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int bench_forks(struct mpt_ctx *c, long n)
{
	char script[64], out[256];
	snprintf(script, sizeof(script), "burst-procs %ld", n);
	const char *argv[] = { MPT_TESTAPP, "run", script, NULL };
	printf("\n| process monitor | processes | seconds | processes/s | events/s | delivered | lost |\n");
	printf("|---|---|---|---|---|---|---|\n");
	for (int with = 0; with < 2; with++) {
		c->total = 0;
		if (with && mon_process_ops.start(c->mp) < 0)
			return 1;
		double t0 = now_s();
		int st = mpt_run(c, argv, NULL, out, sizeof(out), 0);
		double dt = now_s() - t0;
		struct monitor_stats s = { 0 };
		if (with) {
			mon_process_ops.stop(c->mp);
			mon_process_ops.stats(c->mp, &s);
		}
		if (st != 0)
			fprintf(stderr, "burst failed: %d\n", st);
		printf("| %s | %ld | %.2f | %.0f | %.0f | %llu | %llu |\n", with ? "on" : "off", n, dt,
		       (double)n / dt, with ? (double)s.reported / dt : 0.0,
		       (unsigned long long)s.delivered, (unsigned long long)s.lost);
	}
	return 0;
}

static void time_polls(struct mpt_ctx *c, const char *what)
{
	double t0 = now_s();
	mon_network_poll(c->mn); /* resolves the owners of new sockets */
	double first = now_s() - t0;
	const int rounds = 50;
	t0 = now_s();
	for (int i = 0; i < rounds; i++)
		mon_network_poll(c->mn);
	double steady = (now_s() - t0) / rounds;
	printf("| %s | %.2f | %.3f |\n", what, first * 1e3, steady * 1e3);
}

static int bench_sockdiag(struct mpt_ctx *c)
{
	printf("\n| sock_diag snapshot | first poll ms | steady poll ms (full TCP dump skipped while unchanged, listeners only; at most 99 of 100) |\n|---|---|---|\n");
	mon_process_ops.start(c->mp);
	mon_network_ops.start(c->mn);
	time_polls(c, "idle sandbox (0 sockets)");
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	const char *argv[] = { MPT_PROBE, "udp-many", "900", "4000", NULL };
	ex.argv = argv;
	struct sandbox_process pr;
	if (sandbox_spawn(c->sb, &ex, &pr) < 0)
		return 1;
	c->record = false;
	mpt_loop(c, 1500); /* the process monitor sees the probe */
	/* a fresh network monitor: its first poll meets 900 new sockets and
	 * resolves their owner through /proc/PID/fd */
	struct monitor *old = c->mn, *fresh;
	struct monitor_callbacks cb = { 0 };
	if (mon_network_ops.new(&c->tgt, c->procs, &cb, &fresh) < 0)
		return 1;
	c->mn = fresh;
	time_polls(c, "900 UDP sockets");
	mon_network_ops.free(fresh);
	c->mn = old;
	int st;
	sandbox_process_wait(&pr, 10000, &st);
	sandbox_process_done(&pr);
	mon_network_ops.stop(c->mn);
	mon_process_ops.stop(c->mp);
	return 0;
}

static void bench_idle(struct mpt_ctx *c)
{
	mon_process_ops.start(c->mp);
	mon_network_ops.start(c->mn);
	double c0 = cpu_s(), t0 = now_s();
	mpt_loop(c, 5000);
	double cpu = cpu_s() - c0, dt = now_s() - t0;
	mon_network_ops.stop(c->mn);
	mon_process_ops.stop(c->mp);
	printf("\n| idle sandbox, both monitors (50 ms polling) | wall s | cpu s | cpu %% |\n|---|---|---|---|\n");
	printf("| process + network | %.2f | %.3f | %.2f |\n", dt, cpu, 100.0 * cpu / dt);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	if (n <= 0 || n > 1000000)
		n = 20000;
	struct mpt_ctx c;
	int r = mpt_setup(&c, true);
	if (r < 0) {
		fprintf(stderr, "setup failed: %s\n", strerror(-r));
		mpt_teardown(&c);
		return 1;
	}
	c.record = false;
	r = bench_forks(&c, n);
	if (r == 0)
		r = bench_sockdiag(&c);
	if (r == 0)
		bench_idle(&c);
	mpt_teardown(&c);
	return r;
}
