/* bench-upper-diff.c - time of the end-of-visit upper scan for 2,000
 * changed files (half created, half modified, 40 dirs) on a real overlay in
 * a private mount namespace (tmpfs under /tmp/monfile-bud-*).  Prints a
 * table; no pass/fail on timing. */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "upper-diff.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int touch(const char *p)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "x", 1) != 1)
		return -1;
	return close(fd);
}

int main(void)
{
	char base[] = "/tmp/monfile-bud-XXXXXX", l[128], u[128], w[128], m[128], o[600], p[300];
	struct upper_diff *d = NULL;
	double best = 1e9;
	int rc = 1;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    !mkdtemp(base) || mount("monfile-bud", base, "tmpfs", 0, "size=256m") < 0)
		return perror("setup"), 1;
	snprintf(l, sizeof(l), "%s/l", base);
	snprintf(u, sizeof(u), "%s/u", base);
	snprintf(w, sizeof(w), "%s/w", base);
	snprintf(m, sizeof(m), "%s/m", base);
	mkdir(l, 0755), mkdir(u, 0755), mkdir(w, 0755), mkdir(m, 0755);
	for (int dir = 0; dir < 40; dir++) {
		snprintf(p, sizeof(p), "%s/d%d", l, dir);
		mkdir(p, 0755);
		for (int f = 0; f < 25; f++) {
			snprintf(p, sizeof(p), "%s/d%d/lower%d", l, dir, f);
			touch(p);
		}
	}
	snprintf(o, sizeof(o), "lowerdir=%s,upperdir=%s,workdir=%s", l, u, w);
	if (mount("monfile-bovl", m, "overlay", 0, o) < 0)
		goto out;
	for (int dir = 0; dir < 40; dir++)
		for (int f = 0; f < 25; f++) {
			snprintf(p, sizeof(p), "%s/d%d/lower%d", m, dir, f);
			touch(p);
			snprintf(p, sizeof(p), "%s/d%d/new%d", m, dir, f);
			touch(p);
		}
	for (int i = 0; i < 20; i++) {
		double t0 = now();
		if (upper_diff_scan(u, l, &d) < 0)
			goto out;
		double dt = now() - t0;
		best = dt < best ? dt : best;
		if (i < 19)
			upper_diff_free(d);
	}
	printf("%-20s %8s %12s\n", "bench", "entries", "best ms");
	printf("%-20s %8zu %12.3f\n", "upper-diff-scan", d->n, best * 1e3);
	upper_diff_free(d);
	rc = 0;
out:
	umount2(m, MNT_DETACH);
	umount2(base, MNT_DETACH);
	rmdir(base);
	return rc;
}
