/* sandbox.c - plan, then execute (STYLE.md 6): sandbox_new() and sandbox_free().
 *
 * Owns the order of the build and of the revert.  The plan is checked first
 * without touching the system; then the host prepares the tmpfs (upper layer
 * content) and the cgroups, clone3() starts pid 1 directly in the sandbox's
 * cgroup v2 with all namespaces, and while pid 1 mounts its root the host
 * joins it to the v1 cgroups and creates its veth.  Pid 1 then configures its
 * network and reports {errno, step, detail} over the sync socket.  Any failure
 * runs the same sandbox_free() as a revert, which undoes whatever exists, so a
 * sandbox never half-exists.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/monitor.h"
#include "event.h"
#include "macro.h"
#include "sandbox-internal.h"

void sb_error_set(struct sandbox_error *e, int err, const char *step, const char *detail)
{
	if (!e)
		return;
	e->err = err < 0 ? -err : err;
	cap_strlcpy(e->step, step ? step : "", sizeof(e->step));
	cap_strlcpy(e->detail, detail ? detail : "", sizeof(e->detail));
}

void sandbox_plan_init(struct sandbox_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	plan->state_dir = SB_STATE_DIR;
	plan->cgroup_parent = "capture";
	plan->hostname = "sandbox";
	plan->user = SANDBOX_DEFAULT_USER;
	plan->uid = SANDBOX_DEFAULT_UID;
	plan->gid = SANDBOX_DEFAULT_GID;
	plan->default_masks = true;
	plan->network = false;
	plan->seccomp = true;
	plan->allow_userns = true;
}

static bool name_ok(const char *s, size_t max, const char *extra)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(extra, c)))
			return false;
	}
	return true;
}

static bool abs_path_ok(const char *p)
{
	return p && p[0] == '/' && strlen(p) < 1024 && !strstr(p, "/../") &&
	       strcmp(p + (strlen(p) >= 3 ? strlen(p) - 3 : 0), "/..") != 0 && !strchr(p, '\n') &&
	       !strchr(p, ',') && !strchr(p, ':');
}

static int check_limits(const struct sandbox_limits *l, struct sandbox_error *e)
{
	if (l->memory_bytes && l->memory_bytes < SANDBOX_MIN_MEMORY)
		return sb_error_set(e, EINVAL, "plan", "memory limit below 16 MiB"), -EINVAL;
	if (l->pids && l->pids < SANDBOX_MIN_PIDS)
		return sb_error_set(e, EINVAL, "plan", "pids limit below 8"), -EINVAL;
	if (l->tmpfs_bytes && l->tmpfs_bytes < SANDBOX_MIN_TMPFS)
		return sb_error_set(e, EINVAL, "plan", "tmpfs size below 4 MiB"), -EINVAL;
	if (l->cpu_percent > 100 * 1024)
		return sb_error_set(e, EINVAL, "plan", "cpu_percent out of range"), -EINVAL;
	return 0;
}

static int check_dir(const char *path, bool writable, const char *what, struct sandbox_error *e)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		int r = negative_errno();
		sb_error_set(e, r, "plan", path);
		(void)what;
		return r;
	}
	if (!S_ISDIR(st.st_mode))
		return sb_error_set(e, ENOTDIR, "plan", path), -ENOTDIR;
	if (writable && access(path, W_OK) < 0) {
		int r = negative_errno();
		sb_error_set(e, r, "plan", path);
		return r;
	}
	return 0;
}

/* The nearest existing ancestor of a dir we will create must be writable. */
static int check_creatable(const char *path, struct sandbox_error *e)
{
	char buf[PATH_MAX];
	if (cap_strlcpy(buf, path, sizeof(buf)))
		return sb_error_set(e, ENAMETOOLONG, "plan", path), -ENAMETOOLONG;
	for (;;) {
		struct stat st;
		if (stat(buf, &st) == 0)
			return check_dir(buf, true, "state_dir", e);
		if (errno != ENOENT)
			return sb_error_set(e, errno, "plan", buf), -errno;
		char *slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			return 0;
		*slash = '\0';
	}
}

int sandbox_plan_check(const struct sandbox_plan *plan, struct sandbox_error *e)
{
	int r;
	if (plan->image) {
		if (!abs_path_ok(plan->image))
			return sb_error_set(e, EINVAL, "plan", "image must be an absolute path"), -EINVAL;
		r = check_dir(plan->image, false, "image", e);
		if (r < 0)
			return r;
	}
	if (!plan->state_dir || !abs_path_ok(plan->state_dir))
		return sb_error_set(e, EINVAL, "plan", "state_dir must be an absolute path"), -EINVAL;
	r = check_creatable(plan->state_dir, e);
	if (r < 0)
		return r;
	if (!name_ok(plan->cgroup_parent, 64, "_-") || !name_ok(plan->hostname, 63, "-.") ||
	    !name_ok(plan->user, 32, "_-"))
		return sb_error_set(e, EINVAL, "plan", "bad cgroup_parent, hostname or user name"),
		       -EINVAL;
	if (plan->uid == 0 || plan->gid == 0)
		return sb_error_set(e, EINVAL, "plan", "uid/gid 0 is not an unprivileged user"), -EINVAL;
	for (size_t i = 0; i < SANDBOX_MAX_MASKS && plan->masks[i]; i++)
		if (!abs_path_ok(plan->masks[i]) || strcmp(plan->masks[i], "/") == 0)
			return sb_error_set(e, EINVAL, "plan", plan->masks[i]), -EINVAL;
	for (size_t i = 0; i < SANDBOX_MAX_BINDS && plan->binds[i].source; i++) {
		const struct sandbox_bind *b = &plan->binds[i];
		if (!abs_path_ok(b->source) || !abs_path_ok(b->target) || strcmp(b->target, "/") == 0)
			return sb_error_set(e, EINVAL, "plan", "bind paths must be absolute"), -EINVAL;
		if (access(b->source, F_OK) < 0)
			return sb_error_set(e, errno, "plan", b->source), -errno;
	}
	for (size_t i = 0; i < SANDBOX_MAX_HOSTS && plan->hosts[i].address; i++)
		if (!name_ok(plan->hosts[i].address, 45, ".:") ||
		    !name_ok(plan->hosts[i].name, 253, ".-"))
			return sb_error_set(e, EINVAL, "plan", "bad hosts entry"), -EINVAL;
	if (plan->resolver && !name_ok(plan->resolver, 45, ".:"))
		return sb_error_set(e, EINVAL, "plan", "bad resolver address"), -EINVAL;
	if (plan->gateway.uplink_netns && !name_ok(plan->gateway.uplink_netns, 15, "_-"))
		return sb_error_set(e, EINVAL, "plan", "bad uplink netns name"), -EINVAL;
	if (plan->gateway.netns && !name_ok(plan->gateway.netns, 32, "_-"))
		return sb_error_set(e, EINVAL, "plan", "bad gateway netns name"), -EINVAL;
	return check_limits(&plan->limits, e);
}

static struct sandbox *sandbox_alloc(void)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return NULL;
	sb->cg_v2_fd = sb->init_pidfd = sb->ctl_fd = sb->netns_fd = sb->root_fd = -1;
	sb->gw_rtnl = -1;
	sb->net_index = -1;
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (uint32_t)getpid() * 2654435761u ^ (uint32_t)(uintptr_t)sb;
	snprintf(sb->name, sizeof(sb->name), "sb%d-%08x", (int)getpid(), rnd);
	return sb;
}

static int read_result(int fd, struct sb_result *res, int flags)
{
	ssize_t n;
	do
		n = recv(fd, res, sizeof(*res), flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	if (n != (ssize_t)sizeof(*res))
		return -EPROTO; /* pid 1 died before reporting */
	res->step[sizeof(res->step) - 1] = '\0';
	res->detail[sizeof(res->detail) - 1] = '\0';
	return 0;
}

/*
 * A host-side step failed before "go".  Pid 1 does its own early steps (the
 * mounts) without waiting, and when one of those failed it has reported and
 * exited, which is what made the host step fail: its report is the real cause.
 */
static int early_error(struct sandbox *sb, int r, struct sandbox_error *e)
{
	struct sb_result res;
	if (read_result(sb->ctl_fd, &res, MSG_DONTWAIT) == 0 && res.err != 0) {
		sb_error_set(e, res.err, res.step, res.detail);
		return -res.err;
	}
	return r;
}

/* Starts pid 1 and waits for its report.  sync_fd is the host end. */
static int start_init(struct sandbox *sb, const struct sandbox_plan *plan, struct sandbox_error *e)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return sb_error_set(e, errno, "socketpair", ""), -errno;
	int pidfd = -1;
	struct clone_args ca = {
		.flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
			 CLONE_NEWCGROUP | CLONE_INTO_CGROUP | CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)sb->cg_v2_fd,
	};
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		int r = negative_errno();
		close(sp[0]);
		close(sp[1]);
		return sb_error_set(e, r, "clone", sb->cg_v2), r;
	}
	if (pid == 0) {
		close(sp[0]);
		sb_init_main(sb, plan, sp[1]);
	}
	close(sp[1]);
	sb->init_pid = pid;
	sb->init_pidfd = pidfd;
	sb->ctl_fd = sp[0];
	snprintf(sb->root, sizeof(sb->root), "/proc/%d/root", (int)pid);

	int r = sb_cgroup_attach_v1(sb, pid, e);
	if (r < 0)
		return early_error(sb, r, e);
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pid);
	sb->netns_fd = open(p, O_RDONLY | O_CLOEXEC);
	if (sb->netns_fd < 0) {
		int err = errno;
		sb_error_set(e, err, "netns", p);
		return early_error(sb, -err, e);
	}
	if (plan->network) {
		r = sb_net_create(sb, plan, e);
		if (r < 0)
			return early_error(sb, r, e);
	}
	struct sb_go go = {.magic = SB_GO_MAGIC, .net_index = sb->net_index};
	if (send(sb->ctl_fd, &go, sizeof(go), MSG_NOSIGNAL) != sizeof(go))
		return sb_error_set(e, errno ? errno : EPROTO, "sync", "send go"), -EPROTO;
	struct sb_result res;
	r = read_result(sb->ctl_fd, &res, 0);
	if (r < 0)
		return sb_error_set(e, r, "sync", "pid 1 died during setup"), r;
	if (res.err != 0)
		return sb_error_set(e, res.err, res.step, res.detail), -res.err;
	sb->root_fd = open(sb->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sb->root_fd < 0)
		return sb_error_set(e, errno, "root", sb->root), -errno;
	return 0;
}

int sandbox_new(const struct sandbox_plan *plan, struct sandbox **ret, struct sandbox_error *e)
{
	int r = sandbox_plan_check(plan, e);
	if (r < 0)
		return r;
	struct sandbox *sb = sandbox_alloc();
	if (!sb)
		return sb_error_set(e, ENOMEM, "alloc", ""), -ENOMEM;
	sb->uid = plan->uid;
	sb->gid = plan->gid;
	sb->network = plan->network;
	r = sb_seccomp_prepare(sb, plan, e);
	if (r >= 0)
		r = sb_mount_prepare(sb, plan, e);
	if (r >= 0)
		r = sb_cgroup_create(sb, plan, e);
	if (r >= 0)
		r = start_init(sb, plan, e);
	if (r < 0) {
		sandbox_free(sb);
		return r;
	}
	*ret = sb;
	return 0;
}

static void reap_init(struct sandbox *sb)
{
	if (sb->init_pid <= 0)
		return;
	if (sb_cgroup_kill_all(sb) < 0 && sb->init_pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, sb->init_pidfd, SIGKILL, NULL, 0);
	/* Killing pid 1 also kills its pid namespace, even if the cgroup write failed. */
	if (sb->init_pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, sb->init_pidfd, SIGKILL, NULL, 0);
	while (waitpid(sb->init_pid, NULL, __WALL) < 0 && errno == EINTR)
		;
	sb->init_pid = 0;
}

/* "sbPID-XXXXXXXX" (sandbox_new's names) of a process that no longer runs. */
static bool stale_name(const char *n)
{
	if (strncmp(n, "sb", 2) != 0)
		return false;
	char *end;
	errno = 0;
	unsigned long pid = strtoul(n + 2, &end, 10);
	if (errno || end == n + 2 || *end != '-' || strlen(end + 1) != 8 ||
	    strspn(end + 1, "0123456789abcdef") != 8 || pid == 0 || pid > INT32_MAX)
		return false;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int sandbox_sweep_stale(const struct sandbox_plan *plan, unsigned *ret_count)
{
	const char *dir = plan && plan->state_dir ? plan->state_dir : SB_STATE_DIR;
	const char *parent = plan && plan->cgroup_parent ? plan->cgroup_parent : "capture";
	unsigned n = 0;
	DIR *d = opendir(dir);
	for (struct dirent *de; d && (de = readdir(d));) {
		char p[PATH_MAX];
		if (!stale_name(de->d_name) || xsnprintf(p, sizeof(p), "%s/%s", dir, de->d_name) < 0)
			continue;
		(void)umount2(p, MNT_DETACH); /* the tmpfs with upper, work and merged */
		if (rmdir(p) == 0)
			n++;
	}
	if (d)
		closedir(d);
	unsigned cg = sb_cgroup_sweep(parent, stale_name);
	if (ret_count)
		*ret_count = MAX(n, cg);
	return 0;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	reap_init(sb);
	sb_capture_reap(sb, true);
	if (sb->ctl_fd >= 0)
		close(sb->ctl_fd);
	if (sb->init_pidfd >= 0)
		close(sb->init_pidfd);
	if (sb->root_fd >= 0)
		close(sb->root_fd);
	sb_net_release(sb);
	if (sb->netns_fd >= 0)
		close(sb->netns_fd);
	sb_mount_release(sb);
	sb_cgroup_release(sb);
	free(sb);
}

pid_t sandbox_init_pid(const struct sandbox *sb)
{
	return sb->init_pid;
}
const char *sandbox_name(const struct sandbox *sb)
{
	return sb->name;
}
const char *sandbox_root(const struct sandbox *sb)
{
	return sb->root;
}
const char *sandbox_upper_dir(const struct sandbox *sb)
{
	return sb->upper;
}
const char *sandbox_lower_dir(const struct sandbox *sb)
{
	return sb->lower;
}
const char *sandbox_cgroup_path(const struct sandbox *sb)
{
	return sb->cg_v2;
}
uint64_t sandbox_cgroup_id(const struct sandbox *sb)
{
	return sb->cg_id;
}
int sandbox_netns_fd(const struct sandbox *sb)
{
	return sb->netns_fd;
}
const char *sandbox_veth_host(const struct sandbox *sb)
{
	return sb->net_index >= 0 ? sb->veth : NULL;
}
const char *sandbox_address(const struct sandbox *sb)
{
	return sb->net_index >= 0 ? sb->addr : NULL;
}
const char *sandbox_gateway_address(const struct sandbox *sb)
{
	return sb->net_index >= 0 ? sb->gw_addr : NULL;
}

int sandbox_monitor_target(struct sandbox *sb, struct monitor_target *ret)
{
	if (sb->init_pid <= 0)
		return -ESRCH;
	*ret = (struct monitor_target){
		.init_pid = sb->init_pid,
		.root_fd = sb->root_fd,
		.netns_fd = sb->netns_fd,
		.upper_dir = sb->upper,
		.lower_dir = sb->lower,
		.cgroup_path = sb->cg_v2,
		.cgroup_id = sb->cg_id,
		.veth_host = sandbox_veth_host(sb),
	};
	return 0;
}
