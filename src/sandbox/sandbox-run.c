/* sandbox-run.c - pid 1 of the sandbox, spawning processes inside, copy in/out.
 *
 * Pid 1 is our own code (the clone3 child of sandbox_new, never exec'd): it
 * finishes the setup, reports over the sync socket, then loops reaping every
 * orphan and serving spawn requests on the same SOCK_SEQPACKET socket.  Spawns
 * go through pid 1 rather than a setns'd helper so that every process of the
 * sandbox descends from pid 1 (the process monitor attributes by fork
 * ancestry from it).  A request is one size-checked message with the fds as
 * SCM_RIGHTS: a status pipe (pid 1 writes the wait status there when it reaps
 * the child), the child cgroup dir (for CLONE_INTO_CGROUP), stdio and extra
 * fds.  The answer carries the child's pidfd.  The child drops to the plan's
 * uid/gid, loses every capability (bounding set too), sets NO_NEW_PRIVS,
 * loads the plan's seccomp filter (sandbox-seccomp.c) and execs; an exec failure comes back through a CLOEXEC pipe.  If the host
 * closes the socket, pid 1 exits and the kernel kills the whole namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event.h"
#include "macro.h"
#include "sandbox-internal.h"

#define SPAWN_MAGIC 0x53425350u
#define SPAWN_DATA 32768
#define SPAWN_MAX_STRINGS 512
#define INIT_MAX_CHILDREN 1024

enum {
	SPAWN_AS_ROOT = 1,
	SPAWN_CGROUP = 2,
};

struct spawn_req {
	uint32_t magic;
	uint32_t flags;
	uint32_t n_fds; /* extra fds after status, [cgroup], stdin, stdout, stderr */
	int32_t targets[SANDBOX_MAX_FDS];
	uint32_t argc, envc;
	uint32_t data_len; /* argv strings, env strings, cwd: all NUL-terminated */
	char data[SPAWN_DATA];
};

struct spawn_resp {
	int32_t err; /* positive errno or 0 */
	int32_t pid; /* inside */
};

struct child_entry {
	pid_t pid;
	int status_fd;
};

/* ---- fd passing ---- */

static int send_fds(int sock, const void *buf, size_t len, const int *fds, size_t n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * (SANDBOX_MAX_FDS + 8))];
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (n > SANDBOX_MAX_FDS + 8)
		return -EINVAL;
	if (n > 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	ssize_t r;
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return negative_errno();
	return r == (ssize_t)len ? 0 : -EPROTO;
}

/* Receives one message; fds beyond max are closed; returns the byte count. */
static ssize_t recv_fds(int sock, void *buf, size_t len, int *fds, size_t max, size_t *ret_n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * (SANDBOX_MAX_FDS + 8))];
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t r;
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return negative_errno();
	size_t n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int tmp[SANDBOX_MAX_FDS + 8];
		memcpy(tmp, CMSG_DATA(c), sizeof(int) * MIN(k, ELEMENTSOF(tmp)));
		for (size_t i = 0; i < k && i < ELEMENTSOF(tmp); i++) {
			if (n < max)
				fds[n++] = tmp[i];
			else
				close(tmp[i]);
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return -EMSGSIZE;
	}
	*ret_n = n;
	return r;
}

/* ---- pid 1 ---- */

static void report(int fd, const struct sb_result *res)
{
	(void)send(fd, res, sizeof(*res), MSG_NOSIGNAL);
}

/* Child side of a spawn: never returns. */
_Noreturn static void spawn_child(const struct sandbox *sb, const struct spawn_req *rq,
				  char **argv, char **envp, const char *cwd, const int *fds,
				  size_t nfds, int errfd)
{
	/* fds: [0]=status [1]=cgroup? then stdin, stdout, stderr, extras */
	size_t base = (rq->flags & SPAWN_CGROUP) ? 2 : 1;
	int hi[3 + SANDBOX_MAX_FDS];
	size_t nmove = nfds - base;
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGCHLD, SIG_DFL);
	/* Lift every source fd (and the error pipe) above every target (< 100)
	 * first, so that no dup2 below can clobber one. */
	if ((errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 100)) < 0)
		_exit(127); /* cannot report: the parent sees EOF, then status 127 */
	for (size_t i = 0; i < nmove; i++)
		if ((hi[i] = fcntl(fds[base + i], F_DUPFD_CLOEXEC, 100)) < 0)
			goto fail;
	for (size_t i = 0; i < nmove; i++) {
		int target = i < 3 ? (int)i : rq->targets[i - 3];
		if (dup2(hi[i], target) < 0)
			goto fail;
	}
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		goto fail;
	for (size_t i = 3; i < nmove; i++)
		if (fcntl(rq->targets[i - 3], F_SETFD, 0) < 0)
			goto fail;
	if (setsid() < 0)
		goto fail;
	if (!(rq->flags & SPAWN_AS_ROOT)) {
		for (int c = 0; c <= CAP_LAST_CAP; c++)
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
				goto fail;
		gid_t g = sb->gid;
		if (setgroups(1, &g) < 0 || setresgid(sb->gid, sb->gid, sb->gid) < 0 ||
		    setresuid(sb->uid, sb->uid, sb->uid) < 0)
			goto fail;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
			goto fail;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		goto fail;
	if (chdir(cwd) < 0)
		goto fail;
	if (sb->seccomp_len) {
		/* last: from here on this process is what it will exec */
		struct sock_fprog fp = {.len = sb->seccomp_len,
					.filter = (struct sock_filter *)sb->seccomp_prog};
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
			goto fail;
	}
	execve(argv[0], argv, envp);
fail:;
	int err = errno ? errno : EIO;
	(void)!write(errfd, &err, sizeof(err));
	_exit(127);
}

/* Splits n NUL-terminated strings starting at *pos; NULL if malformed. */
static char **split_strings(char *data, size_t len, size_t *pos, uint32_t n, char **out)
{
	for (uint32_t i = 0; i < n; i++) {
		char *end = memchr(data + *pos, '\0', len - *pos);
		if (!end)
			return NULL;
		out[i] = data + *pos;
		*pos = (size_t)(end - data) + 1;
	}
	out[n] = NULL;
	return out;
}

static int validate_req(const struct spawn_req *rq, ssize_t len, size_t nfds)
{
	size_t hdr = offsetof(struct spawn_req, data);
	if (len < (ssize_t)hdr || rq->magic != SPAWN_MAGIC || rq->data_len != (size_t)len - hdr)
		return -EBADMSG;
	if (rq->argc < 1 || rq->argc + rq->envc > SPAWN_MAX_STRINGS || rq->n_fds > SANDBOX_MAX_FDS)
		return -E2BIG;
	size_t want = 1 + ((rq->flags & SPAWN_CGROUP) ? 1 : 0) + 3 + rq->n_fds;
	if (nfds != want)
		return -EBADMSG;
	for (uint32_t i = 0; i < rq->n_fds; i++)
		if (rq->targets[i] < 3 || rq->targets[i] >= 100)
			return -EBADF;
	return 0;
}

static int do_spawn(const struct sandbox *sb, struct spawn_req *rq, ssize_t len, int *fds,
		    size_t nfds, struct child_entry *tab, int *ret_pidfd, pid_t *ret_pid)
{
	int r = validate_req(rq, len, nfds);
	if (r < 0)
		return r;
	char *argv[SPAWN_MAX_STRINGS + 1], *envp[SPAWN_MAX_STRINGS + 1];
	size_t pos = 0;
	if (!split_strings(rq->data, rq->data_len, &pos, rq->argc, argv) ||
	    !split_strings(rq->data, rq->data_len, &pos, rq->envc, envp) ||
	    !memchr(rq->data + pos, '\0', rq->data_len - pos))
		return -EBADMSG;
	const char *cwd = rq->data + pos;
	size_t slot = 0;
	while (slot < INIT_MAX_CHILDREN && tab[slot].pid > 0)
		slot++;
	if (slot == INIT_MAX_CHILDREN)
		return -EAGAIN;
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return negative_errno();
	int pidfd = -1;
	struct clone_args ca = {.flags = CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&pidfd,
				.exit_signal = SIGCHLD};
	if (rq->flags & SPAWN_CGROUP) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)fds[1];
	}
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0) {
		close(ep[0]);
		spawn_child(sb, rq, argv, envp, cwd, fds, nfds, ep[1]);
	}
	close(ep[1]);
	if (pid < 0) {
		r = negative_errno();
		close(ep[0]);
		return r;
	}
	int err = 0;
	ssize_t n;
	do
		n = read(ep[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == sizeof(err)) {
		close(pidfd);
		return -(err > 0 ? err : EIO); /* the child exits 127; the reaper collects it */
	}
	tab[slot].pid = pid;
	tab[slot].status_fd = fds[0];
	fds[0] = -1;
	*ret_pidfd = pidfd;
	*ret_pid = pid;
	return 0;
}

static void serve_spawn(const struct sandbox *sb, int sock, struct child_entry *tab,
			struct spawn_req *rq, bool *eof)
{
	int fds[SANDBOX_MAX_FDS + 8];
	size_t nfds = 0;
	ssize_t len = recv_fds(sock, rq, sizeof(*rq), fds, ELEMENTSOF(fds), &nfds);
	if (len == 0 || (len < 0 && len != -EMSGSIZE)) {
		*eof = true;
		return;
	}
	struct spawn_resp resp = {0};
	int pidfd = -1;
	pid_t pid = 0;
	int r = len < 0 ? (int)len : do_spawn(sb, rq, len, fds, nfds, tab, &pidfd, &pid);
	resp.err = r < 0 ? -r : 0;
	resp.pid = pid;
	(void)send_fds(sock, &resp, sizeof(resp), &pidfd, pidfd >= 0 ? 1 : 0);
	if (pidfd >= 0)
		close(pidfd);
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void reap(struct child_entry *tab)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG | __WALL)) > 0)
		for (size_t i = 0; i < INIT_MAX_CHILDREN; i++)
			if (tab[i].pid == pid) {
				(void)!write(tab[i].status_fd, &status, sizeof(status));
				close(tab[i].status_fd);
				tab[i].pid = 0;
				tab[i].status_fd = -1;
				break;
			}
}

static void init_loop(const struct sandbox *sb, int sock)
{
	struct child_entry *tab = calloc(INIT_MAX_CHILDREN, sizeof(*tab));
	struct spawn_req *rq = malloc(sizeof(*rq));
	if (!tab || !rq)
		_exit(1);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	for (bool eof = false; !eof;) {
		struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
			reap(tab);
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
			serve_spawn(sb, sock, tab, rq, &eof);
	}
	_exit(0);
}

_Noreturn void sb_init_main(struct sandbox *sb, const struct sandbox_plan *plan, int sync_fd)
{
	struct sb_result res = {0};
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(1);
	/* Keep only the sync socket: nothing of the host's fds stays in pid 1. */
	if (sync_fd > 3)
		(void)syscall(SYS_close_range, 3, sync_fd - 1, 0);
	(void)syscall(SYS_close_range, sync_fd + 1, ~0U, 0);
	if (sb_mount_child(sb, plan, &res) < 0) {
		report(sync_fd, &res);
		_exit(1);
	}
	struct sb_go go;
	if (recv(sync_fd, &go, sizeof(go), 0) != sizeof(go) || go.magic != SB_GO_MAGIC)
		_exit(1);
	if (sb_net_child(sb, go.net_index, plan->hostname, &res) < 0) {
		report(sync_fd, &res);
		_exit(1);
	}
	report(sync_fd, &res);
	init_loop(sb, sync_fd);
	_exit(0);
}

/* ---- host side ---- */

void sandbox_exec_init(struct sandbox_exec *ex)
{
	memset(ex, 0, sizeof(*ex));
	ex->stdin_fd = ex->stdout_fd = ex->stderr_fd = -1;
}

static int append_str(struct spawn_req *rq, const char *s)
{
	size_t n = strlen(s) + 1;
	if (n > SPAWN_DATA - rq->data_len)
		return -E2BIG;
	memcpy(rq->data + rq->data_len, s, n);
	rq->data_len += (uint32_t)n;
	return 0;
}

static int build_req(struct sandbox *sb, const struct sandbox_exec *ex, struct spawn_req *rq)
{
	char home[PATH_MAX + 8], user[64 + 8];
	const char *defenv[] = {home, user, "PATH=" SANDBOX_PATH, "LANG=C.UTF-8", "SHELL=/bin/sh",
				NULL};
	snprintf(home, sizeof(home), "HOME=%s", ex->as_root ? "/root" : sb->home);
	snprintf(user, sizeof(user), "USER=%s", ex->as_root ? "root" : strrchr(sb->home, '/') + 1);
	const char *const *envp = ex->envp ? ex->envp : defenv;
	int r;
	rq->magic = SPAWN_MAGIC;
	if (!ex->argv || !ex->argv[0] || ex->argv[0][0] != '/' || ex->n_fds > SANDBOX_MAX_FDS)
		return -EINVAL;
	for (; ex->argv[rq->argc]; rq->argc++)
		if (rq->argc >= SPAWN_MAX_STRINGS / 2 || (r = append_str(rq, ex->argv[rq->argc])) < 0)
			return -E2BIG;
	for (; envp[rq->envc]; rq->envc++)
		if (rq->envc >= SPAWN_MAX_STRINGS / 2 || (r = append_str(rq, envp[rq->envc])) < 0)
			return -E2BIG;
	if ((r = append_str(rq, ex->cwd ? ex->cwd : ex->as_root ? "/root" : sb->home)) < 0)
		return r;
	rq->n_fds = (uint32_t)ex->n_fds;
	for (size_t i = 0; i < ex->n_fds; i++) {
		if (ex->fds[i].target < 3 || ex->fds[i].target >= 100 || ex->fds[i].fd < 0)
			return -EBADF;
		for (size_t j = 0; j < i; j++)
			if (ex->fds[j].target == ex->fds[i].target)
				return -EBADF;
		rq->targets[i] = ex->fds[i].target;
	}
	rq->flags = (ex->as_root ? SPAWN_AS_ROOT : 0) | (ex->cgroup ? SPAWN_CGROUP : 0);
	return 0;
}

/* Host pid of a pidfd, from /proc/self/fdinfo ("Pid:"). */
static pid_t pidfd_host_pid(int pidfd)
{
	char p[64], text[1024];
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", pidfd);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	char *s = strstr(text, "\nPid:");
	return s ? (pid_t)strtol(s + 5, NULL, 10) : -1;
}

int sandbox_spawn(struct sandbox *sb, const struct sandbox_exec *ex, struct sandbox_process *ret)
{
	_cleanup_free_ struct spawn_req *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return -ENOMEM;
	int r = build_req(sb, ex, rq);
	if (r < 0)
		return r;
	_cleanup_close_ int cgfd = -1, nullfd = -1, st_r = -1, st_w = -1;
	if (ex->cgroup && (r = sb_cgroup_open_child(sb, ex->cgroup, &cgfd)) < 0)
		return r;
	int sp[2];
	if (pipe2(sp, O_CLOEXEC) < 0)
		return negative_errno();
	st_r = sp[0];
	st_w = sp[1];
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0)
		return negative_errno();
	int fds[SANDBOX_MAX_FDS + 8];
	size_t n = 0;
	fds[n++] = st_w;
	if (cgfd >= 0)
		fds[n++] = cgfd;
	fds[n++] = ex->stdin_fd >= 0 ? ex->stdin_fd : nullfd;
	fds[n++] = ex->stdout_fd >= 0 ? ex->stdout_fd : nullfd;
	fds[n++] = ex->stderr_fd >= 0 ? ex->stderr_fd : nullfd;
	for (size_t i = 0; i < ex->n_fds; i++)
		fds[n++] = ex->fds[i].fd;
	size_t len = offsetof(struct spawn_req, data) + rq->data_len;
	if ((r = send_fds(sb->ctl_fd, rq, len, fds, n)) < 0)
		return r;
	struct spawn_resp resp;
	int pidfd = -1;
	size_t got = 0;
	ssize_t k = recv_fds(sb->ctl_fd, &resp, sizeof(resp), &pidfd, 1, &got);
	if (k < 0)
		return (int)k;
	if (k != sizeof(resp)) {
		if (got)
			close(pidfd);
		return -EPROTO;
	}
	if (resp.err) {
		if (got)
			close(pidfd);
		return -resp.err;
	}
	if (!got)
		return -EPROTO;
	/* -1 if it has already ended and been reaped (its status is on status_fd) */
	pid_t hpid = pidfd_host_pid(pidfd);
	*ret = (struct sandbox_process){.pid = hpid, .inner_pid = resp.pid, .pidfd = pidfd,
					.status_fd = TAKE_FD(st_r)};
	return 0;
}

int sandbox_process_wait(struct sandbox_process *p, int timeout_ms, int *ret_status)
{
	struct pollfd pfd = {.fd = p->status_fd, .events = POLLIN};
	int r;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return negative_errno();
	if (r == 0)
		return -ETIMEDOUT;
	int status;
	ssize_t n = read(p->status_fd, &status, sizeof(status));
	if (n != sizeof(status))
		return -ESRCH; /* pid 1 died (revert) before reaping it */
	*ret_status = status;
	return 0;
}

void sandbox_process_done(struct sandbox_process *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->status_fd >= 0)
		close(p->status_fd);
	p->pidfd = p->status_fd = -1;
}

/* ---- copy in / out ---- */

int sandbox_find_command(struct sandbox *sb, const char *name, char *buf, size_t len)
{
	if (!name[0] || strchr(name, '/'))
		return -EINVAL;
	/* RESOLVE_IN_ROOT: an absolute symlink (/usr/bin/awk ->
	 * /etc/alternatives/awk) is the image's, not the host's */
	struct open_how how = {.flags = O_PATH | O_CLOEXEC,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	for (const char *d = SANDBOX_PATH; *d;) {
		size_t n = strcspn(d, ":");
		char path[PATH_MAX];
		int k = snprintf(path, sizeof(path), "%.*s/%s", (int)n, d, name);
		d += n + (d[n] == ':');
		if (n == 0 || k < 0 || (size_t)k >= sizeof(path))
			continue;
		_cleanup_close_ int fd =
		    (int)syscall(SYS_openat2, sb->root_fd, path + 1, &how, sizeof(how));
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
			continue;
		if ((size_t)k >= len)
			return -ENAMETOOLONG;
		memcpy(buf, path, (size_t)k + 1);
		return 0;
	}
	return -ENOENT;
}

static int open_inside(struct sandbox *sb, const char *path, int flags, mode_t mode)
{
	if (!path || path[0] != '/')
		return -EINVAL;
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
			       .mode = mode,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
	if (!(flags & O_CREAT))
		how.mode = 0;
	int fd = (int)syscall(SYS_openat2, sb->root_fd, path + 1, &how, sizeof(how));
	return fd < 0 ? negative_errno() : fd;
}

static int copy_fd(int in, int out, uint64_t max)
{
	char buf[65536];
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			return 0;
		total += (uint64_t)n;
		if (total > max)
			return -EFBIG;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return negative_errno();
			}
			off += w;
		}
	}
}

int sandbox_copy_in(struct sandbox *sb, const char *host_path, const char *inside)
{
	_cleanup_close_ int in = open(host_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return negative_errno();
	struct stat st;
	if (fstat(in, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	int fd = open_inside(sb, inside, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fd;
	_cleanup_close_ int out = fd;
	if (fchown(out, sb->uid, sb->gid) < 0 || fchmod(out, 0644) < 0)
		return negative_errno();
	return copy_fd(in, out, UINT64_MAX);
}

int sandbox_copy_out(struct sandbox *sb, const char *inside, const char *host_path,
		     uint64_t max_bytes)
{
	int fd = open_inside(sb, inside, O_RDONLY | O_NONBLOCK, 0);
	if (fd < 0)
		return fd;
	_cleanup_close_ int in = fd;
	struct stat st;
	if (fstat(in, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max_bytes)
		return -EFBIG;
	if (fcntl(in, F_SETFL, 0) < 0)
		return negative_errno();
	_cleanup_close_ int out =
		open(host_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return negative_errno();
	int r = copy_fd(in, out, max_bytes);
	if (r < 0)
		(void)unlink(host_path);
	return r;
}
