/* mon-process.c - the process monitor: the netlink proc connector (FORK,
 * EXEC, EXIT of every task on the host), filtered to the sandbox by fork
 * ancestry from the sandbox's pid 1 (ARCHITECTURE.md §2, measured exact in
 * linux-mechanisms-measured.md §4).
 *
 * Why this shape:
 * - Membership is the set of live host tgids in the proctable, seeded with
 *   pid 1; a FORK whose parent tgid is a member adds the child, EXIT removes
 *   it.  No /proc read decides membership (they miss 3-20% of short
 *   processes); /proc is only read for names (exe, cmdline, NSpid, cgroup).
 * - The kernel sends FORK before it wakes the child, so a child's EXEC/EXIT
 *   never precedes its FORK.
 * - Threads (FORK with child_pid != child_tgid) and thread exits are
 *   dropped in the kernel by a socket filter (attach_filter), as are the
 *   connector's other event types; without the filter they are counted as
 *   reported + suppressed, never delivered.
 * - One `created` per process: at its first EXEC (object2 = the new image),
 *   or, for a fork without exec (Chromium's zygote children), when it exits,
 *   when the grace period (100 ms) ends, or at stop() - then with the image
 *   it inherited, and the event time is the fork time.  A later EXEC of an
 *   already reported process is an `exec` event (object1 = its pid, object2
 *   = the new image).  EXIT gives `terminated`.
 * - The socket gets SO_RCVBUFFORCE 32 MB (a stalled reader of 3 s overflows
 *   the default).  ENOBUFS is counted in `lost`, reported through the error
 *   callback, and followed by a resynchronisation against the cgroup.procs
 *   files of the sandbox cgroup tree (created/terminated for the difference).
 * The monitor's fd is an epoll fd holding the netlink socket and the grace
 * timerfd.  The proc connector only works from the init network namespace.
 */
#include "mon-process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <limits.h>
#include <sys/fanotify.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "mon-util.h"
#include "proctable.h"

#define RCVBUF_BYTES (32 * 1024 * 1024)
#define PENDING_MAX 4096
#define CGROUP_DEPTH_MAX 16

struct pending {
	pid_t pid;
	uint64_t fork_ns;
};

struct monitor {
	struct monitor_callbacks cb;
	struct proctable *procs;
	bool own_procs;
	pid_t init_pid;
	int ns_levels;	    /* NSpid fields of pid 1 (its pid namespace depth + 1) */
	char *cgroup_path;  /* sandbox v2 cgroup dir (host path) */
	char *cgroup_root;  /* v2 mount point */
	int nl_fd, timer_fd, epoll_fd;
	bool started;
	bool need_resync; /* after ENOBUFS, once the socket is drained */
	unsigned grace_ms;
	struct pending pending[PENDING_MAX]; /* ring, oldest first */
	size_t pending_head, pending_n;
	bool timer_armed;      /* timer_fd set (pending_n > 0 when last armed) */
	uint64_t sandbox_msgs; /* FORK/EXEC/EXIT messages about sandbox processes */
	struct monitor_stats stats;
	/* FAN_OPEN_EXEC on the sandbox root (mongaps): names a process whose
	 * exe could no longer be read at its EXEC (short-lived) */
	int fan_fd, fan_root_fd;
	char fan_prefix[PATH_MAX];
	size_t fan_prefix_len;
	struct exec_map execs;
	char *fan_buf;
};

#define FAN_BUF_BYTES (64 * 1024)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Reads at most len-1 bytes of a small /proc file; returns the length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	size_t n = 0;
	while (n < len - 1) {
		ssize_t k = read(fd, buf + n, len - 1 - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

/* The cgroup v2 mount point from /proc/self/mountinfo. */
static int find_cgroup2_root(char **ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return negative_errno();
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - cgroup2 ");
		if (!sep)
			continue;
		/* fields: id parent maj:min root mountpoint ... */
		char *p = line;
		for (int i = 0; i < 4 && p; i++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		if (!p)
			continue;
		char *end = strchr(p, ' ');
		if (!end || end > sep)
			continue;
		*end = '\0';
		char *s = strdup(p);
		if (!s)
			return -ENOMEM;
		*ret = s;
		return 0;
	}
	return -ENOENT;
}

/* Fills inner pid, cgroup id and (if it exec'd already) the image of pid. */
static void read_identity(struct monitor *m, struct proc_entry *e)
{
	char path[64], buf[4096];
	/* The pid inside: only while the process can still be read (alive or
	 * a zombie).  A child reaped before its FORK message is handled keeps
	 * inner_pid 0 and its events say -1 (unknown), never the host pid; a
	 * pid already reused by a process of a shallower namespace than the
	 * sandbox's pid 1 (a host process) is refused by the level count. */
	pid_t v = mon_read_nspid(e->pid, m->ns_levels, NULL);
	if (v > 0)
		e->inner_pid = v;
	(void)xsnprintf(path, sizeof(path), "/proc/%d/cgroup", e->pid);
	if (m->cgroup_root && read_small(path, buf, sizeof(buf)) > 0) {
		char *l = strncmp(buf, "0::", 3) == 0 ? buf : strstr(buf, "\n0::");
		if (l) {
			l += l == buf ? 3 : 4;
			char *eol = strchr(l, '\n');
			if (eol)
				*eol = '\0';
			char cg[4096];
			struct stat st;
			if (xsnprintf(cg, sizeof(cg), "%s%s", m->cgroup_root, l) == 0 &&
			    stat(cg, &st) == 0)
				e->cgroup_id = (uint64_t)st.st_ino;
		}
	}
}

/* Image path and command line of pid from /proc (the sandbox's view: the
 * kernel prints a path outside our root from the sandbox's root). */
static int read_image(pid_t pid, char *exe, size_t exelen, char *cmd, size_t cmdlen)
{
	char path[64];
	(void)xsnprintf(path, sizeof(path), "/proc/%d/exe", pid);
	ssize_t n = readlink(path, exe, exelen - 1);
	if (n < 0)
		return negative_errno();
	exe[n] = '\0';
	char raw[PROCTABLE_CMDLINE_MAX + 1];
	(void)xsnprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	ssize_t k = read_small(path, raw, sizeof(raw));
	if (k >= 0)
		proctable_cmdline_from_raw(cmd, cmdlen, raw, (size_t)k);
	else
		cmd[0] = '\0';
	return 0;
}

/* The pid inside the sandbox, or -1 when it is not known (never the host pid). */
static pid_t shown_pid(const struct proc_entry *e)
{
	return e && e->inner_pid > 0 ? e->inner_pid : -1;
}

/* Builds and delivers one process event about e (acting process: its parent,
 * or e itself for `exec`). */
static void deliver(struct monitor *m, const char *action, struct proc_entry *e,
		    const char *object2, const char *cmdline, uint64_t time_ns)
{
	struct proc_entry *actor = strcmp(action, "exec") == 0 ? e : proctable_get(m->procs, e->ppid);
	struct cap_event *ev = malloc(sizeof(*ev));
	if (!ev) {
		m->stats.lost++;
		if (m->cb.error)
			m->cb.error(m->cb.userdata, "process", -ENOMEM, "event allocation failed");
		return;
	}
	char obj1[32];
	(void)xsnprintf(obj1, sizeof(obj1), "%d", shown_pid(e));
	cap_event_init(ev, CAP_EV_PROCESS, action, actor ? actor->path : "", obj1, object2);
	if (time_ns) {
		ev->time.tv_sec = (time_t)(time_ns / 1000000000ULL);
		ev->time.tv_nsec = (long)(time_ns % 1000000000ULL);
	}
	ev->pid = actor ? shown_pid(actor) : -1;
	ev->host_pid = actor ? actor->pid : 0;
	ev->cgroup_id = e->cgroup_id; /* the subject's cgroup: bulk attribution */
	cap_strlcpy(ev->cmdline, cmdline, sizeof(ev->cmdline));
	m->stats.delivered++;
	if (m->cb.event)
		m->cb.event(m->cb.userdata, ev);
	free(ev);
}

/* Reports the creation of e if not done yet (with its current image). */
static void report_created(struct monitor *m, struct proc_entry *e)
{
	if (e->reported)
		return;
	e->reported = true;
	if (m->started)
		deliver(m, "created", e, e->path, e->cmdline, e->start_ns);
}

static void arm_timer(struct monitor *m)
{
	struct itimerspec its = { 0 };
	if (m->pending_n == 0 && !m->timer_armed)
		return; /* already disarmed (disarming also clears unread expirations) */
	m->timer_armed = m->pending_n > 0;
	if (m->pending_n > 0) {
		uint64_t due = m->pending[m->pending_head].fork_ns + (uint64_t)m->grace_ms * 1000000ULL;
		uint64_t now = mono_ns();
		uint64_t wait = due > now ? due - now : 1;
		its.it_value.tv_sec = (time_t)(wait / 1000000000ULL);
		its.it_value.tv_nsec = (long)(wait % 1000000000ULL);
	}
	(void)timerfd_settime(m->timer_fd, 0, &its, NULL);
}

/* Reports every pending fork older than the grace period (all if force). */
static void flush_pending(struct monitor *m, bool force)
{
	uint64_t now = mono_ns();
	while (m->pending_n > 0) {
		struct pending *p = &m->pending[m->pending_head];
		if (!force && p->fork_ns + (uint64_t)m->grace_ms * 1000000ULL > now)
			break;
		struct proc_entry *e = proctable_get(m->procs, p->pid);
		if (e && !e->exited)
			report_created(m, e);
		m->pending_head = (m->pending_head + 1) % PENDING_MAX;
		m->pending_n--;
	}
	arm_timer(m);
}

static void push_pending(struct monitor *m, struct proc_entry *e)
{
	if (m->pending_n == PENDING_MAX) {
		/* full: report the oldest now rather than lose anything */
		struct proc_entry *old = proctable_get(m->procs, m->pending[m->pending_head].pid);
		if (old && !old->exited)
			report_created(m, old);
		m->pending_head = (m->pending_head + 1) % PENDING_MAX;
		m->pending_n--;
	}
	m->pending[(m->pending_head + m->pending_n) % PENDING_MAX] =
		(struct pending){ .pid = e->pid, .fork_ns = mono_ns() };
	if (++m->pending_n == 1)
		arm_timer(m);
}

static void count_reported(struct monitor *m)
{
	if (m->started)
		m->stats.reported++;
}

static void on_fork(struct monitor *m, const struct fork_proc_event *f)
{
	if (f->child_pid != f->child_tgid) { /* a thread */
		if (proctable_is_live(m->procs, f->child_tgid) && m->started) {
			m->stats.reported++;
			m->stats.suppressed++;
		}
		return;
	}
	if (!proctable_is_live(m->procs, f->parent_tgid))
		return;
	m->sandbox_msgs++;
	count_reported(m);
	struct proc_entry *e;
	int r = proctable_add(m->procs, f->child_tgid, f->parent_tgid, now_ns(), &e);
	if (r < 0) {
		if (m->started) {
			m->stats.lost++;
			if (m->cb.error)
				m->cb.error(m->cb.userdata, "process", r, "process table full");
		}
		return;
	}
	read_identity(m, e);
	push_pending(m, e);
}

/* The image of a process that exited before /proc/PID/exe was read: the
 * FAN_OPEN_EXEC record its execve queued before the kernel sent the EXEC
 * message, if recorded after this incarnation of the pid was forked. */
static void exec_name(struct monitor *m, const struct proc_entry *e, char *exe, size_t len)
{
	if (m->fan_fd < 0)
		return;
	(void)mon_drain_execs(m->fan_fd, m->fan_root_fd, m->fan_prefix, m->fan_prefix_len,
			      &m->execs, m->fan_buf, FAN_BUF_BYTES);
	const struct exec_slot *s = exec_map_find(&m->execs, e->pid);
	if (s && s->seen_ns >= e->start_ns)
		cap_strlcpy(exe, s->path, len);
}

static void on_exec(struct monitor *m, const struct exec_proc_event *x)
{
	struct proc_entry *e = proctable_get(m->procs, x->process_tgid);
	if (!e || e->exited)
		return;
	m->sandbox_msgs++;
	count_reported(m);
	char exe[CAP_PROC_MAX], cmd[PROCTABLE_CMDLINE_MAX];
	if (read_image(e->pid, exe, sizeof(exe), cmd, sizeof(cmd)) < 0) {
		cap_strlcpy(exe, "", sizeof(exe)); /* gone already */
		cmd[0] = '\0';
		e->cmdline[0] = '\0'; /* the inherited one is not the new program's */
		exec_name(m, e, exe, sizeof(exe));
	}
	read_identity(m, e);
	if (!e->reported) {
		if (exe[0])
			(void)proctable_set_exec(m->procs, e->pid, exe, cmd);
		report_created(m, e);
		if (m->started)
			m->stats.suppressed++; /* merged into `created` */
		return;
	}
	if (m->started)
		deliver(m, "exec", e, exe, cmd, 0);
	if (exe[0])
		(void)proctable_set_exec(m->procs, e->pid, exe, cmd);
}

static void on_exit_event(struct monitor *m, const struct exit_proc_event *x)
{
	struct proc_entry *e = proctable_get(m->procs, x->process_tgid);
	if (!e || e->exited)
		return;
	m->sandbox_msgs++;
	if (x->process_pid != x->process_tgid) { /* a thread */
		if (m->started) {
			m->stats.reported++;
			m->stats.suppressed++;
		}
		return;
	}
	count_reported(m);
	report_created(m, e);
	if (m->started && e->pid != m->init_pid)
		deliver(m, "terminated", e, e->path, e->cmdline, 0);
	else if (m->started)
		m->stats.suppressed++; /* the end of pid 1 is the end of the sandbox */
	(void)proctable_exit(m->procs, e->pid);
}

static void handle_message(struct monitor *m, const uint8_t *buf, size_t len)
{
	for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, len);
	     nh = NLMSG_NEXT(nh, len)) {
		if (nh->nlmsg_type == NLMSG_ERROR || nh->nlmsg_type == NLMSG_NOOP ||
		    nh->nlmsg_type == NLMSG_OVERRUN)
			continue;
		size_t plen = NLMSG_PAYLOAD(nh, 0);
		if (plen < sizeof(struct cn_msg))
			continue;
		const struct cn_msg *cn = NLMSG_DATA(nh);
		if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC ||
		    cn->len > plen - sizeof(*cn) || cn->len < offsetof(struct proc_event, event_data))
			continue;
		struct proc_event ev = { 0 };
		memcpy(&ev, cn->data, MIN((size_t)cn->len, sizeof(ev)));
		switch (ev.what) {
		case PROC_EVENT_FORK:
			on_fork(m, &ev.event_data.fork);
			break;
		case PROC_EVENT_EXEC:
			on_exec(m, &ev.event_data.exec);
			break;
		case PROC_EVENT_EXIT:
			on_exit_event(m, &ev.event_data.exit);
			break;
		default:
			break;
		}
	}
}

/* ---- resynchronisation after a loss ---- */

struct pidset {
	pid_t *v;
	size_t n, cap;
};

static int pidset_add(struct pidset *s, pid_t p)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		if (ncap > (1u << 22))
			return -E2BIG;
		pid_t *nv = reallocarray(s->v, ncap, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = p;
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

static int collect_cgroup(int dirfd, struct pidset *s, int depth)
{
	if (depth > CGROUP_DEPTH_MAX)
		return 0;
	int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		_cleanup_fclose_ FILE *f = fdopen(fd, "re");
		if (!f) {
			close(fd);
			return negative_errno();
		}
		char line[32];
		while (fgets(line, sizeof(line), f)) {
			long v = strtol(line, NULL, 10);
			if (v > 0 && v <= 4194304) {
				int r = pidset_add(s, (pid_t)v);
				if (r < 0)
					return r;
			}
		}
	}
	int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return negative_errno();
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		_cleanup_close_ int sub = openat(dirfd, de->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (sub >= 0)
			r = collect_cgroup(sub, s, depth + 1);
	}
	closedir(d);
	return r;
}

static int end_missing(struct proc_entry *e, void *userdata)
{
	struct pidset *s = userdata;
	if (!bsearch(&e->pid, s->v, s->n, sizeof(pid_t), cmp_pid))
		return pidset_add(&s[1], e->pid); /* s[1]: live in table, gone from cgroup */
	return 0;
}

static pid_t stat_ppid(pid_t pid)
{
	char path[64], buf[1024];
	(void)xsnprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	char *p = strrchr(buf, ')'); /* comm may contain anything */
	if (!p || strlen(p) < 4)
		return 0;
	long v = strtol(p + 4, NULL, 10); /* ") S PPID" */
	return v > 0 ? (pid_t)v : 0;
}

int mon_process_resync(struct monitor *m)
{
	struct pidset sets[2] = { 0 };
	_cleanup_close_ int root = open(m->cgroup_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r = root < 0 ? negative_errno() : collect_cgroup(root, &sets[0], 0);
	if (r == 0) {
		qsort(sets[0].v, sets[0].n, sizeof(pid_t), cmp_pid);
		r = proctable_foreach_live(m->procs, end_missing, sets);
	}
	for (size_t i = 0; r == 0 && i < sets[1].n; i++) {
		struct proc_entry *e = proctable_get(m->procs, sets[1].v[i]);
		if (!e || e->pid == m->init_pid)
			continue;
		report_created(m, e);
		if (m->started)
			deliver(m, "terminated", e, e->path, e->cmdline, 0);
		(void)proctable_exit(m->procs, e->pid);
	}
	for (size_t i = 0; r == 0 && i < sets[0].n; i++) {
		pid_t pid = sets[0].v[i];
		if (proctable_is_live(m->procs, pid))
			continue;
		pid_t ppid = stat_ppid(pid);
		if (!proctable_is_live(m->procs, ppid))
			ppid = m->init_pid;
		struct proc_entry *e;
		r = proctable_add(m->procs, pid, ppid, now_ns(), &e);
		if (r < 0)
			break;
		char exe[CAP_PROC_MAX], cmd[PROCTABLE_CMDLINE_MAX];
		if (read_image(pid, exe, sizeof(exe), cmd, sizeof(cmd)) == 0)
			(void)proctable_set_exec(m->procs, pid, exe, cmd);
		read_identity(m, e);
		report_created(m, e);
	}
	free(sets[0].v);
	free(sets[1].v);
	return r;
}

/* ---- monitor_ops ---- */

static int nl_subscribe(int fd, enum proc_cn_mcast_op op)
{
	/* nlmsghdr + cn_msg + op, laid out by hand (cn_msg ends in a flexible array) */
	uint8_t buf[NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(op))] __attribute__((aligned(8))) = { 0 };
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	nh->nlmsg_len = sizeof(buf);
	nh->nlmsg_type = NLMSG_DONE;
	struct cn_msg *cn = NLMSG_DATA(nh);
	cn->id.idx = CN_IDX_PROC;
	cn->id.val = CN_VAL_PROC;
	cn->len = sizeof(op);
	memcpy(cn->data, &op, sizeof(op));
	if (send(fd, buf, sizeof(buf), 0) < 0)
		return negative_errno();
	return 0;
}

static void mp_free(struct monitor *m)
{
	if (!m)
		return;
	if (m->nl_fd >= 0) {
		(void)nl_subscribe(m->nl_fd, PROC_CN_MCAST_IGNORE);
		close(m->nl_fd);
	}
	if (m->timer_fd >= 0)
		close(m->timer_fd);
	if (m->epoll_fd >= 0)
		close(m->epoll_fd);
	if (m->fan_fd >= 0)
		close(m->fan_fd);
	if (m->fan_root_fd >= 0)
		close(m->fan_root_fd);
	exec_map_done(&m->execs);
	free(m->fan_buf);
	if (m->own_procs)
		proctable_free(m->procs);
	free(m->cgroup_path);
	free(m->cgroup_root);
	free(m);
}

/* A classic BPF socket filter that keeps only what the monitor uses: FORK
 * and EXIT of processes (not threads) and every EXEC.  The proc connector
 * sends every fork, exec, exit, uid/gid/sid change and thread rename of the
 * whole host, one per datagram; each kept message costs a wake-up of the
 * client, so the rest is dropped in the kernel (idle CPU: docs/monitors.md).
 * BPF_ABS loads are big-endian: the constants are compared in that order
 * (pids are only compared with each other). */
#define EV_OFF(field) \
	((uint32_t)(NLMSG_HDRLEN + sizeof(struct cn_msg) + offsetof(struct proc_event, field)))
static void attach_filter(int fd)
{
	struct sock_filter code[] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, EV_OFF(what)),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(PROC_EVENT_FORK), 2, 0),
		/* 2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(PROC_EVENT_EXEC), 9, 0),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(PROC_EVENT_EXIT), 4, 9),
		/* 4: fork */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, EV_OFF(event_data.fork.child_pid)),
		/* 5 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
		/* 6 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, EV_OFF(event_data.fork.child_tgid)),
		/* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 4, 5),
		/* 8: exit */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, EV_OFF(event_data.exit.process_pid)),
		/* 9 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
		/* 10 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, EV_OFF(event_data.exit.process_tgid)),
		/* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 0, 1),
		/* 12: keep */ BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
		/* 13: drop */ BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = ELEMENTSOF(code), .filter = code };
	/* optional: without it every message is read and sorted out here */
	(void)setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

static int open_sockets(struct monitor *m)
{
	m->nl_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (m->nl_fd < 0)
		return negative_errno();
	int sz = RCVBUF_BYTES;
	if (setsockopt(m->nl_fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0 &&
	    setsockopt(m->nl_fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) < 0)
		return negative_errno();
	attach_filter(m->nl_fd);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	if (bind(m->nl_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return negative_errno();
	int r = nl_subscribe(m->nl_fd, PROC_CN_MCAST_LISTEN);
	if (r < 0)
		return r;
	m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (m->timer_fd < 0 || m->epoll_fd < 0)
		return negative_errno();
	struct epoll_event ee = { .events = EPOLLIN, .data.fd = m->nl_fd };
	if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->nl_fd, &ee) < 0)
		return negative_errno();
	ee.data.fd = m->timer_fd;
	if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->timer_fd, &ee) < 0)
		return negative_errno();
	return 0;
}

/* Optional: without it (no root fd, no fanotify) short-lived processes are
 * named as before (the parent's image). */
static void open_exec_names(struct monitor *m, int root_fd)
{
	char link[64];
	ssize_t n;

	if (root_fd < 0 || exec_map_init(&m->execs) < 0 || !(m->fan_buf = malloc(FAN_BUF_BYTES)))
		return;
	m->fan_root_fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->fan_root_fd < 0)
		return;
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", m->fan_root_fd);
	n = readlink(link, m->fan_prefix, sizeof(m->fan_prefix) - 1);
	if (n < 0)
		return;
	m->fan_prefix[n] = '\0';
	m->fan_prefix_len = strcmp(m->fan_prefix, "/") == 0 ? 0 : (size_t)n;
	m->fan_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_UNLIMITED_QUEUE |
					  FAN_NONBLOCK | FAN_CLOEXEC,
				  O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (m->fan_fd >= 0 && fanotify_mark(m->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM,
					    FAN_OPEN_EXEC, m->fan_root_fd, NULL) < 0) {
		close(m->fan_fd);
		m->fan_fd = -1;
	}
}

static int mp_new(const struct monitor_target *target, struct proctable *procs,
		  const struct monitor_callbacks *cb, struct monitor **ret)
{
	if (!target || target->init_pid <= 0 || !target->cgroup_path || !cb)
		return -EINVAL;
	struct monitor *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->nl_fd = m->timer_fd = m->epoll_fd = m->fan_fd = m->fan_root_fd = -1;
	m->cb = *cb;
	open_exec_names(m, target->root_fd);
	m->init_pid = target->init_pid;
	m->grace_ms = MON_PROCESS_DEFAULT_GRACE_MS;
	m->procs = procs;
	int r = 0;
	if (!procs) {
		r = proctable_new(0, &m->procs);
		m->own_procs = r == 0;
	}
	if (r == 0 && !(m->cgroup_path = strdup(target->cgroup_path)))
		r = -ENOMEM;
	if (r == 0)
		(void)find_cgroup2_root(&m->cgroup_root); /* without it cgroup ids stay 0 */
	if (r == 0)
		r = open_sockets(m);
	struct proc_entry *e;
	if (r == 0 && mon_read_nspid(m->init_pid, 1, &m->ns_levels) < 0)
		r = -ESRCH; /* pid 1 of the sandbox is gone */
	if (r == 0)
		r = proctable_add(m->procs, m->init_pid, 0, now_ns(), &e);
	if (r == 0) {
		char exe[CAP_PROC_MAX], cmd[PROCTABLE_CMDLINE_MAX];
		if (read_image(m->init_pid, exe, sizeof(exe), cmd, sizeof(cmd)) == 0)
			(void)proctable_set_exec(m->procs, m->init_pid, exe, cmd);
		read_identity(m, e);
		e->reported = true; /* pid 1 itself is never reported */
		r = mon_process_resync(m); /* processes already inside */
	}
	if (r < 0) {
		mp_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

/* Reads at most `budget` datagrams; *ret_more tells whether the socket may
 * still hold some (the event loop calls again: level-triggered). */
static int drain(struct monitor *m, int budget, bool *ret_more)
{
	uint8_t buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	*ret_more = true;
	for (int i = 0; i < budget; i++) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(m->nl_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				*ret_more = false;
				break;
			}
			if (errno == ENOBUFS) {
				/* resynchronise once what is still queued is read */
				m->stats.lost++;
				m->need_resync = true;
				if (m->cb.error)
					m->cb.error(m->cb.userdata, "process", -ENOBUFS,
						    "proc connector overflow (ENOBUFS); resynchronising from cgroup.procs");
				continue;
			}
			return negative_errno();
		}
		if (from.nl_pid != 0)
			continue; /* not from the kernel */
		handle_message(m, buf, (size_t)n);
	}
	if (m->need_resync && !*ret_more) {
		m->need_resync = false;
		int r = mon_process_resync(m);
		if (r < 0 && m->cb.error)
			m->cb.error(m->cb.userdata, "process", r, "resynchronisation failed");
	}
	return 0;
}

/* Most wake-ups are the host's other processes (the proc connector carries
 * every fork, exec and exit of the host): the timer and the OPEN_EXEC group
 * are only touched when they can have something (idle CPU, docs/monitors.md). */
static int mp_dispatch(struct monitor *m)
{
	bool more;
	uint64_t seen = m->sandbox_msgs;
	int r = drain(m, 4096, &more); /* bounded: give the loop back now and then */
	if (r < 0)
		return r;
	if (m->timer_armed) {
		uint64_t ticks;
		while (read(m->timer_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
			;
		flush_pending(m, false);
	}
	/* keeps the OPEN_EXEC queue short (names are looked up on demand); it
	 * only fills with the sandbox's execs, each followed by an EXEC message */
	if (m->fan_fd >= 0 && m->sandbox_msgs != seen)
		(void)mon_drain_execs(m->fan_fd, m->fan_root_fd, m->fan_prefix, m->fan_prefix_len,
				      &m->execs, m->fan_buf, FAN_BUF_BYTES);
	return 0;
}

/* Reads everything queued on the socket. */
static int drain_all(struct monitor *m)
{
	bool more = true;
	int r = 0;
	while (more && r == 0)
		r = drain(m, 4096, &more);
	return r;
}

static int mp_start(struct monitor *m)
{
	(void)drain_all(m); /* bring the table up to date; nothing is delivered yet */
	flush_pending(m, true);
	m->stats = (struct monitor_stats){ 0 };
	m->started = true;
	return 0;
}

static int mp_stop(struct monitor *m)
{
	int r = drain_all(m);
	flush_pending(m, true);
	m->started = false;
	return r;
}

static int mp_fd(struct monitor *m)
{
	return m->epoll_fd;
}

static void mp_stats(struct monitor *m, struct monitor_stats *ret)
{
	*ret = m->stats;
}

int mon_process_set_rcvbuf(struct monitor *m, int bytes)
{
	if (bytes < 1024 || bytes > (256 << 20))
		return -ERANGE;
	if (setsockopt(m->nl_fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		return negative_errno();
	return 0;
}

int mon_process_set_grace(struct monitor *m, unsigned grace_ms)
{
	if (grace_ms > 60000)
		return -ERANGE;
	m->grace_ms = grace_ms;
	return 0;
}

const struct monitor_ops mon_process_ops = {
	.name = "process",
	.new = mp_new,
	.free = mp_free,
	.start = mp_start,
	.stop = mp_stop,
	.fd = mp_fd,
	.dispatch = mp_dispatch,
	.stats = mp_stats,
};
