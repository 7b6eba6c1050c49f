/* sandbox-cgroup.c - one fresh cgroup v2 per sandbox, child cgroups, and limits.
 *
 * The sandbox's cgroup v2 (/sys/fs/cgroup/unified/<parent>/<name>) is where
 * pid 1 is born (clone3 CLONE_INTO_CGROUP) and what revert kills
 * (cgroup.kill).  It is created fresh for every sandbox and removed after the
 * revert: on kernel 6.x, after one cgroup.kill every later CLONE_INTO_CGROUP
 * into the same cgroup yields an immediately SIGKILLed child (measured §8), so
 * a killed cgroup is never reused.  Child cgroups (one per visited URL) give
 * attribution that a double fork cannot escape.
 * Limits: memory, pids and cpu go through v2 controllers when the v2
 * hierarchy offers them, else through v1 (these hosts are hybrid: v2 offers
 * only hugetlb).  The v1 groups are created under our own v1 cgroup (read
 * from /proc/self/cgroup) and the host writes pid 1 into them before pid 1
 * runs anything but our setup code.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "macro.h"
#include "sandbox-internal.h"

static int write_str(const char *dir, const char *file, const char *val)
{
	char p[PATH_MAX + 64];
	if (xsnprintf(p, sizeof(p), "%s/%s", dir, file) < 0)
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	size_t len = strlen(val);
	if (write(fd, val, len) != (ssize_t)len)
		return negative_errno();
	return 0;
}

static int read_str(const char *dir, const char *file, char *buf, size_t size)
{
	char p[PATH_MAX + 64];
	if (xsnprintf(p, sizeof(p), "%s/%s", dir, file) < 0)
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	ssize_t n = read(fd, buf, size - 1);
	if (n < 0)
		return negative_errno();
	buf[n] = '\0';
	return 0;
}

/* "KEY VALUE" lines (cgroup.events, pids.events, memory.oom_control). */
static uint64_t keyed_value(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, klen) == 0 && l[klen] == ' ')
			return strtoull(l + klen + 1, NULL, 10);
	return 0;
}

/* Our own path in the v1 hierarchy that carries CONTROLLER ("pids", "memory", "cpu"). */
static int own_v1_path(const char *controller, char *buf, size_t size)
{
	char text[4096];
	int r = read_str("/proc/self", "cgroup", text, sizeof(text));
	if (r < 0)
		return r;
	for (char *l = text; l && *l;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c1 && c2) {
			*c2 = '\0';
			/* the controller list is comma-separated ("cpu,cpuacct") */
			for (char *t = c1 + 1; t && *t; t = strchr(t, ',') ? strchr(t, ',') + 1 : NULL)
				if (strncmp(t, controller, strlen(controller)) == 0 &&
				    (t[strlen(controller)] == ',' || t[strlen(controller)] == '\0'))
					return cap_strlcpy(buf, strcmp(c2 + 1, "/") ? c2 + 1 : "", size)
						       ? -ENAMETOOLONG
						       : 0;
		}
		l = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

static bool v2_offers(const char *parent, const char *controller)
{
	char text[512];
	if (read_str(parent, "cgroup.controllers", text, sizeof(text)) < 0)
		return false;
	char *save = NULL;
	for (char *t = strtok_r(text, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
		if (strcmp(t, controller) == 0)
			return true;
	return false;
}

/* mkdir a v1 group for CONTROLLER under our own; "" in ret if the hierarchy is absent. */
static int v1_group(const struct sandbox *sb, const char *controller, const char *parent,
		    char *ret, size_t size)
{
	char own[PATH_MAX], p[PATH_MAX];
	ret[0] = '\0';
	if (own_v1_path(controller, own, sizeof(own)) < 0)
		return 0;
	if (xsnprintf(p, sizeof(p), SB_V1_ROOT "/%s%s/%s", controller, own, parent) < 0)
		return -ENAMETOOLONG;
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	if (xsnprintf(ret, size, "%s/%s", p, sb->name) < 0)
		return -ENAMETOOLONG;
	if (mkdir(ret, 0755) < 0) {
		int r = negative_errno();
		ret[0] = '\0';
		return r;
	}
	return 0;
}

static int set_limits_v1(struct sandbox *sb, const struct sandbox_plan *plan,
			 struct sandbox_error *e)
{
	const struct sandbox_limits *l = &plan->limits;
	char v[32];
	int r;
	if ((r = v1_group(sb, "pids", plan->cgroup_parent, sb->cg_pids, sizeof(sb->cg_pids))) < 0)
		return sb_error_set(e, r, "cgroup-pids", plan->cgroup_parent), r;
	if (sb->cg_pids[0]) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)(l->pids ? l->pids : SANDBOX_DEFAULT_PIDS));
		if ((r = write_str(sb->cg_pids, "pids.max", v)) < 0)
			return sb_error_set(e, r, "pids.max", sb->cg_pids), r;
	}
	if ((r = v1_group(sb, "memory", plan->cgroup_parent, sb->cg_memory, sizeof(sb->cg_memory))) < 0)
		return sb_error_set(e, r, "cgroup-memory", plan->cgroup_parent), r;
	if (sb->cg_memory[0]) {
		snprintf(v, sizeof(v), "%llu",
			 (unsigned long long)(l->memory_bytes ? l->memory_bytes : SANDBOX_DEFAULT_MEMORY));
		if ((r = write_str(sb->cg_memory, "memory.limit_in_bytes", v)) < 0)
			return sb_error_set(e, r, "memory.limit_in_bytes", sb->cg_memory), r;
		/* Without swap accounting the file is absent; the RAM limit is then the limit. */
		r = write_str(sb->cg_memory, "memory.memsw.limit_in_bytes", v);
		if (r < 0 && r != -ENOENT)
			return sb_error_set(e, r, "memory.memsw.limit_in_bytes", sb->cg_memory), r;
	}
	if (l->cpu_percent) {
		if ((r = v1_group(sb, "cpu", plan->cgroup_parent, sb->cg_cpu, sizeof(sb->cg_cpu))) < 0)
			return sb_error_set(e, r, "cgroup-cpu", plan->cgroup_parent), r;
		snprintf(v, sizeof(v), "%u", l->cpu_percent * 1000);
		if (sb->cg_cpu[0] && ((r = write_str(sb->cg_cpu, "cpu.cfs_period_us", "100000")) < 0 ||
				      (r = write_str(sb->cg_cpu, "cpu.cfs_quota_us", v)) < 0))
			return sb_error_set(e, r, "cpu.cfs_quota_us", sb->cg_cpu), r;
	}
	return 0;
}

static int read_u64(const char *dir, const char *file, uint64_t *ret)
{
	char text[64];
	int r = read_str(dir, file, text, sizeof(text));
	if (r < 0)
		return r;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	*ret = v;
	return 0;
}

int sandbox_set_limits(struct sandbox *sb, uint64_t memory_bytes, uint64_t pids)
{
	char v[32];
	int r;
	if (memory_bytes) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)memory_bytes);
		if (sb->cg_memory[0]) {
			/* v1: memory.limit_in_bytes <= memory.memsw.limit_in_bytes at
			 * every step, so the order depends on the direction. */
			uint64_t cur = 0;
			bool up = read_u64(sb->cg_memory, "memory.limit_in_bytes", &cur) == 0 &&
				  memory_bytes > cur;
			if (up) {
				r = write_str(sb->cg_memory, "memory.memsw.limit_in_bytes", v);
				if (r < 0 && r != -ENOENT)
					return r;
			}
			if ((r = write_str(sb->cg_memory, "memory.limit_in_bytes", v)) < 0)
				return r;
			if (!up) {
				r = write_str(sb->cg_memory, "memory.memsw.limit_in_bytes", v);
				if (r < 0 && r != -ENOENT)
					return r;
			}
		} else if ((r = write_str(sb->cg_v2, "memory.max", v)) < 0) {
			return r == -ENOENT ? -EOPNOTSUPP : r;
		}
	}
	if (pids) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)pids);
		if ((r = write_str(sb->cg_pids[0] ? sb->cg_pids : sb->cg_v2, "pids.max", v)) < 0)
			return r == -ENOENT ? -EOPNOTSUPP : r;
	}
	return 0;
}

int sb_cgroup_create(struct sandbox *sb, const struct sandbox_plan *plan, struct sandbox_error *e)
{
	char parent[PATH_MAX];
	int r;
	if ((r = xsnprintf(parent, sizeof(parent), SB_V2_ROOT "/%s", plan->cgroup_parent)) < 0 ||
	    (r = xsnprintf(sb->cg_v2, sizeof(sb->cg_v2), "%s/%s", parent, sb->name)) < 0)
		return sb_error_set(e, r, "cgroup", plan->cgroup_parent), r;
	if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
		r = negative_errno();
		sb->cg_v2[0] = '\0';
		return sb_error_set(e, r, "cgroup", parent), r;
	}
	if (mkdir(sb->cg_v2, 0755) < 0) {
		r = negative_errno();
		sb_error_set(e, r, "cgroup", sb->cg_v2);
		sb->cg_v2[0] = '\0';
		return r;
	}
	sb->cg_v2_fd = open(sb->cg_v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (sb->cg_v2_fd < 0 || fstat(sb->cg_v2_fd, &st) < 0)
		return sb_error_set(e, errno, "cgroup", sb->cg_v2), -errno;
	sb->cg_id = st.st_ino; /* kernfs: the inode number is the cgroup id */

	/* v2 controllers where offered (not on hybrid hosts; there v1 below). */
	const struct sandbox_limits *l = &plan->limits;
	char v[32];
	if (v2_offers(parent, "cpu") && l->cpu_percent) {
		snprintf(v, sizeof(v), "%u 100000", l->cpu_percent * 1000);
		(void)write_str(parent, "cgroup.subtree_control", "+cpu");
		if ((r = write_str(sb->cg_v2, "cpu.max", v)) < 0)
			return sb_error_set(e, r, "cpu.max", sb->cg_v2), r;
	}
	if (v2_offers(parent, "memory") && v2_offers(parent, "pids")) {
		(void)write_str(parent, "cgroup.subtree_control", "+memory +pids");
		snprintf(v, sizeof(v), "%llu",
			 (unsigned long long)(l->memory_bytes ? l->memory_bytes : SANDBOX_DEFAULT_MEMORY));
		if ((r = write_str(sb->cg_v2, "memory.max", v)) < 0 ||
		    (r = write_str(sb->cg_v2, "memory.swap.max", "0")) < 0)
			return sb_error_set(e, r, "memory.max", sb->cg_v2), r;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)(l->pids ? l->pids : SANDBOX_DEFAULT_PIDS));
		if ((r = write_str(sb->cg_v2, "pids.max", v)) < 0)
			return sb_error_set(e, r, "pids.max", sb->cg_v2), r;
		return 0;
	}
	return set_limits_v1(sb, plan, e);
}

int sb_cgroup_attach_v1(struct sandbox *sb, pid_t pid, struct sandbox_error *e)
{
	char v[24];
	snprintf(v, sizeof(v), "%d", (int)pid);
	const char *dirs[] = {sb->cg_pids, sb->cg_memory, sb->cg_cpu};
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		if (!dirs[i][0])
			continue;
		int r = write_str(dirs[i], "cgroup.procs", v);
		if (r < 0)
			return sb_error_set(e, r, "cgroup-attach", dirs[i]), r;
	}
	return 0;
}

int sb_cgroup_kill_all(struct sandbox *sb)
{
	if (!sb->cg_v2[0] || sb->cg_v2_fd < 0)
		return -ENOENT;
	return write_str(sb->cg_v2, "cgroup.kill", "1");
}

/* Waits until cgroup.events says populated 0 (poll wakes on changes: POLLPRI). */
static int wait_unpopulated(const char *dir, int timeout_ms)
{
	char p[PATH_MAX + 32], text[256];
	if (xsnprintf(p, sizeof(p), "%s/cgroup.events", dir) < 0)
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
		if (n < 0)
			return negative_errno();
		text[n] = '\0';
		if (keyed_value(text, "populated") == 0)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = {.fd = fd, .events = POLLPRI};
		(void)poll(&pfd, 1, (int)MIN(left, 50));
	}
}

/* rmdir a cgroup and its (empty) descendants, depth first, bounded depth. */
static void rmdir_tree(const char *dir, int depth)
{
	if (depth > 8)
		return;
	if (rmdir(dir) == 0 || errno == ENOENT)
		return;
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(TAKE_FD(fd));
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			char p[PATH_MAX];
			if (xsnprintf(p, sizeof(p), "%s/%s", dir, de->d_name) == 0)
				rmdir_tree(p, depth + 1);
		}
	closedir(d);
	(void)rmdir(dir);
}

void sb_cgroup_release(struct sandbox *sb)
{
	if (sb->cg_v2_fd >= 0) {
		close(sb->cg_v2_fd);
		sb->cg_v2_fd = -1;
	}
	if (sb->cg_v2[0]) {
		(void)wait_unpopulated(sb->cg_v2, 2000);
		rmdir_tree(sb->cg_v2, 0);
	}
	char *v1[] = {sb->cg_pids, sb->cg_memory, sb->cg_cpu};
	for (size_t i = 0; i < ELEMENTSOF(v1); i++)
		if (v1[i][0]) {
			/* v1 has no populated event; tasks are gone once pid 1 is reaped */
			for (int tries = 0; rmdir(v1[i]) < 0 && errno == EBUSY && tries < 200; tries++)
				usleep(1000);
			v1[i][0] = '\0';
		}
}

/* Removes the stale sandbox cgroups (stale(name)) under dir; their count. */
static unsigned sweep_dir(const char *dir, bool (*stale)(const char *), bool v2)
{
	unsigned n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	for (struct dirent *de; (de = readdir(d));) {
		char p[PATH_MAX];
		if (de->d_type != DT_DIR || !stale(de->d_name) ||
		    xsnprintf(p, sizeof(p), "%s/%s", dir, de->d_name) < 0)
			continue;
		if (v2) { /* nothing of a dead client's sandbox may run on */
			(void)write_str(p, "cgroup.kill", "1");
			(void)wait_unpopulated(p, 2000);
			rmdir_tree(p, 0);
		} else {
			(void)rmdir(p);
		}
		n++;
	}
	closedir(d);
	return n;
}

unsigned sb_cgroup_sweep(const char *parent, bool (*stale)(const char *))
{
	char p[PATH_MAX], own[PATH_MAX];
	unsigned n = 0;
	if (xsnprintf(p, sizeof(p), SB_V2_ROOT "/%s", parent) >= 0)
		n += sweep_dir(p, stale, true);
	static const char *const v1[] = {"pids", "memory", "cpu"};
	for (size_t i = 0; i < ELEMENTSOF(v1); i++)
		if (own_v1_path(v1[i], own, sizeof(own)) == 0 &&
		    xsnprintf(p, sizeof(p), SB_V1_ROOT "/%s%s/%s", v1[i], own, parent) >= 0)
			(void)sweep_dir(p, stale, false);
	return n;
}

static bool child_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 64 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", name[i]))
			return false;
	return true;
}

int sandbox_cgroup_child_path(struct sandbox *sb, const char *name, char *buf, size_t len)
{
	if (!name)
		return cap_strlcpy(buf, sb->cg_v2, len) ? -ENAMETOOLONG : 0;
	if (!child_name_ok(name))
		return -EINVAL;
	return xsnprintf(buf, len, "%s/%s", sb->cg_v2, name);
}

int sb_cgroup_open_child(struct sandbox *sb, const char *name, int *ret_fd)
{
	if (!child_name_ok(name))
		return -EINVAL;
	int fd = openat(sb->cg_v2_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	*ret_fd = fd;
	return 0;
}

int sandbox_cgroup_new(struct sandbox *sb, const char *name, uint64_t *ret_id)
{
	if (!child_name_ok(name))
		return -EINVAL;
	if (mkdirat(sb->cg_v2_fd, name, 0755) < 0)
		return negative_errno();
	struct stat st;
	if (fstatat(sb->cg_v2_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return negative_errno();
	if (ret_id)
		*ret_id = st.st_ino;
	return 0;
}

int sandbox_cgroup_kill(struct sandbox *sb, const char *name)
{
	char p[PATH_MAX];
	if (!name)
		return -EINVAL;
	int r = sandbox_cgroup_child_path(sb, name, p, sizeof(p));
	if (r < 0)
		return r;
	if ((r = write_str(p, "cgroup.kill", "1")) < 0)
		return r;
	if ((r = wait_unpopulated(p, 2000)) < 0)
		return r;
	rmdir_tree(p, 0);
	return access(p, F_OK) == 0 ? -EBUSY : 0;
}

int sandbox_cgroup_freeze(struct sandbox *sb, const char *name, bool freeze)
{
	char p[PATH_MAX], text[256];
	int r = sandbox_cgroup_child_path(sb, name, p, sizeof(p));
	if (r < 0 || (r = write_str(p, "cgroup.freeze", freeze ? "1" : "0")) < 0)
		return r;
	for (int i = 0; i < 1000; i++) {
		if ((r = read_str(p, "cgroup.events", text, sizeof(text))) < 0)
			return r;
		if ((keyed_value(text, "frozen") != 0) == freeze)
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

int sandbox_cgroup_status(struct sandbox *sb, const char *name, struct sandbox_cgroup_status *ret)
{
	char p[PATH_MAX], text[1024];
	struct sandbox_cgroup_status s = {0};
	int r = sandbox_cgroup_child_path(sb, name, p, sizeof(p));
	if (r < 0 || (r = read_str(p, "cgroup.events", text, sizeof(text))) < 0)
		return r;
	s.populated = keyed_value(text, "populated") != 0;
	s.frozen = keyed_value(text, "frozen") != 0;
	const char *pids = sb->cg_pids[0] ? sb->cg_pids : sb->cg_v2;
	if (read_str(pids, "pids.events", text, sizeof(text)) == 0)
		s.pids_max_events = keyed_value(text, "max");
	if (sb->cg_memory[0]) {
		if (read_str(sb->cg_memory, "memory.oom_control", text, sizeof(text)) == 0)
			s.oom_kills = keyed_value(text, "oom_kill");
		if (read_str(sb->cg_memory, "memory.usage_in_bytes", text, sizeof(text)) == 0)
			s.memory_bytes = strtoull(text, NULL, 10);
	} else {
		if (read_str(sb->cg_v2, "memory.events", text, sizeof(text)) == 0)
			s.oom_kills = keyed_value(text, "oom_kill");
		if (read_str(sb->cg_v2, "memory.current", text, sizeof(text)) == 0)
			s.memory_bytes = strtoull(text, NULL, 10);
	}
	*ret = s;
	return 0;
}
