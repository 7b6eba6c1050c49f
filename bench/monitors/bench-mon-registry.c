/* bench-mon-registry.c - cost of the registry monitor's own fanotify group
 * (owner: mongaps): a real sandbox (state dir /run/capture/mongaps-bench,
 * cgroup parent "mongaps-bench") creates, writes and unlinks 34,000 files
 * that are NOT hive files while nobody reads the queue, plus one crontab;
 * then stop() drains every record (each one costs a directory-handle
 * lookup unless cached) and runs the end-of-visit scan.  Prints records/s
 * (the group's records: create, modify, close_write, delete, open_exec). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mon-registry.h"
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
	static const char *const argv[] = {
	    "/bin/sh", "-c",
	    "python3 -c 'import os\nfor i in range(34000):\n    p = \"/tmp/mrb%d\" % i\n"
	    "    with open(p, \"w\") as f: f.write(\"x\")\n    os.unlink(p)' && "
	    "mkdir -p /var/spool/cron/crontabs && echo '* * * * * /tmp/x' > "
	    "/var/spool/cron/crontabs/root",
	    NULL};
	struct sandbox_plan plan;
	struct sandbox_error e;
	struct sandbox *sb = NULL;
	struct monitor_target tgt;
	struct monitor *m = NULL;
	struct monitor_stats st;
	unsigned long n = 0;
	struct monitor_callbacks cb = {.event = sink, .userdata = &n};
	struct sandbox_exec ex;
	struct sandbox_process pr;
	int status = -1, rc = 1;

	sandbox_plan_init(&plan);
	plan.state_dir = "/run/capture/mongaps-bench";
	plan.cgroup_parent = "mongaps-bench";
	plan.network = false;
	if (sandbox_new(&plan, &sb, &e) < 0) {
		fprintf(stderr, "sandbox_new: %s: %s\n", e.step, strerror(e.err));
		return 1;
	}
	if (sandbox_monitor_target(sb, &tgt) < 0 || mon_registry_ops.new(&tgt, NULL, &cb, &m) < 0 ||
	    mon_registry_ops.start(m) < 0)
		goto out;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.as_root = true;
	if (sandbox_spawn(sb, &ex, &pr) < 0)
		goto out;
	(void)sandbox_process_wait(&pr, 120000, &status);
	sandbox_process_done(&pr);
	double t0 = now();
	if (mon_registry_ops.stop(m) < 0)
		goto out;
	double dt = now() - t0;
	mon_registry_ops.stats(m, &st);
	/* 34,000 x (create + modify + close_write + delete) kernel events (fanotify
	 * may merge some of them into one record) + a few exec/crontab ones */
	printf("%-22s %10s %10s %12s %8s %6s\n", "bench", "fs-events", "delivered", "drain-ms",
	       "live", "lost");
	printf("%-22s %10u %10llu %12.1f %8llu %6llu\n", "mon-registry-drain", 34000u * 4,
	       (unsigned long long)st.delivered, dt * 1000,
	       (unsigned long long)mon_registry_live_events(m), (unsigned long long)st.lost);
	rc = st.delivered == 2 && status == 0 ? 0 : 1;
out:
	mon_registry_ops.free(m);
	sandbox_free(sb);
	(void)rmdir("/run/capture/mongaps-bench");
	(void)rmdir("/sys/fs/cgroup/unified/mongaps-bench");
	(void)rmdir("/sys/fs/cgroup/pids/mongaps-bench");
	(void)rmdir("/sys/fs/cgroup/memory/mongaps-bench");
	return rc;
}
