/* bench-mon-file.c - file-monitor throughput: a real sandbox (state dir
 * /run/capture/monfile-bench, cgroup parent "monfile-bench") creates,
 * writes and unlinks 34,000 files while nobody reads the queue; then the
 * time of stop() (drain the whole fanotify queue + upper diff) gives the
 * events per second the monitor can process.  Prints a table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mon-file.h"
#include "sandbox.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sink(void *userdata, const struct cap_event *ev)
{
	(void)ev;
	(*(unsigned long *)userdata)++;
}

int main(void)
{
	static const char *const argv[] = { "/bin/sh", "-c",
		"python3 -c 'import os\nfor i in range(34000):\n    p = \"/tmp/mfb%d\" % i\n"
		"    with open(p, \"w\") as f: f.write(\"x\")\n    os.unlink(p)'", NULL };
	struct sandbox_plan plan;
	struct sandbox_error e;
	struct sandbox *sb = NULL;
	struct monitor_target tgt;
	struct monitor *m = NULL;
	struct monitor_stats st;
	unsigned long n = 0;
	struct monitor_callbacks cb = { .event = sink, .userdata = &n };
	struct sandbox_exec ex;
	struct sandbox_process pr;
	int status = -1, rc = 1;

	sandbox_plan_init(&plan);
	plan.state_dir = "/run/capture/monfile-bench";
	plan.cgroup_parent = "monfile-bench";
	plan.network = false;
	if (sandbox_new(&plan, &sb, &e) < 0) {
		fprintf(stderr, "sandbox_new: %s: %s\n", e.step, strerror(e.err));
		return 1;
	}
	if (sandbox_monitor_target(sb, &tgt) < 0 || mon_file_ops.new(&tgt, NULL, &cb, &m) < 0 ||
	    mon_file_ops.start(m) < 0)
		goto out;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	if (sandbox_spawn(sb, &ex, &pr) < 0)
		goto out;
	(void)sandbox_process_wait(&pr, 120000, &status);
	sandbox_process_done(&pr);
	double t0 = now();
	if (mon_file_ops.stop(m) < 0)
		goto out;
	double dt = now() - t0;
	mon_file_ops.stats(m, &st);
	printf("%-22s %10s %10s %12s %6s\n", "bench", "reported", "delivered", "events/s", "lost");
	printf("%-22s %10llu %10llu %12.0f %6llu\n", "mon-file-drain", (unsigned long long)st.reported,
	       (unsigned long long)st.delivered, (double)st.reported / dt,
	       (unsigned long long)st.lost);
	rc = 0;
out:
	mon_file_ops.free(m);
	sandbox_free(sb);
	(void)rmdir("/run/capture/monfile-bench");
	(void)rmdir("/sys/fs/cgroup/unified/monfile-bench");
	(void)rmdir("/sys/fs/cgroup/pids/monfile-bench");
	(void)rmdir("/sys/fs/cgroup/memory/monfile-bench");
	return rc;
}
