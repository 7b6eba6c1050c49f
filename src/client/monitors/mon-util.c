/* mon-util.c - see mon-util.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <time.h>
#include <unistd.h>

#include "mon-util.h"
#include "proctable.h"

int exec_map_init(struct exec_map *x)
{
	x->n = 0;
	x->slots = calloc(EXEC_MAP_SLOTS, sizeof(*x->slots));
	return x->slots ? 0 : -ENOMEM;
}

void exec_map_clear(struct exec_map *x)
{
	for (size_t i = 0; x->slots && i < EXEC_MAP_SLOTS; i++) {
		free(x->slots[i].path);
		x->slots[i] = (struct exec_slot){0};
	}
	x->n = 0;
}

void exec_map_done(struct exec_map *x)
{
	exec_map_clear(x);
	free(x->slots);
	x->slots = NULL;
}

static struct exec_slot *exec_slot(const struct exec_map *x, pid_t pid, bool insert)
{
	if (!x || !x->slots || pid <= 0)
		return NULL;
	for (size_t j = (size_t)pid * 2654435761u % EXEC_MAP_SLOTS;; j = (j + 1) % EXEC_MAP_SLOTS) {
		if (x->slots[j].pid == pid)
			return &x->slots[j];
		if (!x->slots[j].pid)
			return insert ? &x->slots[j] : NULL;
	}
}

const struct exec_slot *exec_map_find(const struct exec_map *x, pid_t pid)
{
	return exec_slot(x, pid, false);
}

static bool is_loader(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	return strncmp(b, "ld-", 3) == 0 && strstr(b, ".so") != NULL;
}

void exec_map_set(struct exec_map *x, pid_t pid, const char *path)
{
	struct timespec ts;
	struct exec_slot *s;
	char *p;

	if (!x || !x->slots || is_loader(path))
		return;
	if (x->n >= EXEC_MAP_SLOTS / 2 && !exec_slot(x, pid, false))
		exec_map_clear(x); /* bounded: forget the old names */
	s = exec_slot(x, pid, true);
	p = strdup(path);
	if (!s || !p) {
		free(p);
		return;
	}
	if (!s->pid)
		x->n++;
	free(s->path);
	clock_gettime(CLOCK_REALTIME, &ts);
	*s = (struct exec_slot){.pid = pid,
				.path = p,
				.seen_ns =
				    (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec};
}

/* True if the process behind pidfd has not exited. */
static bool pidfd_alive(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	return poll(&p, 1, 0) == 0; /* a pidfd becomes readable when the process exits */
}

pid_t mon_read_nspid(pid_t host_pid, int min_levels, int *ret_levels)
{
	char path[64], buf[4096];
	if (ret_levels)
		*ret_levels = 0;
	if (host_pid <= 0)
		return -1;
	(void)snprintf(path, sizeof(path), "/proc/%d/status", (int)host_pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1); /* NSpid is in the first 4 KiB */
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *l = strstr(buf, "\nNSpid:");
	if (!l)
		return -1;
	l += 7;
	char *eol = strchr(l, '\n');
	if (!eol)
		return -1; /* cut: do not trust a partial line */
	*eol = '\0';
	int levels = 0;
	long last = -1;
	for (char *p = l; *p;) {
		while (*p == '\t' || *p == ' ')
			p++;
		if (!*p)
			break;
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v <= 0 || v > 4194304)
			return -1;
		last = v;
		levels++;
		p = end;
	}
	if (ret_levels)
		*ret_levels = levels;
	if (levels == 0 || levels < min_levels)
		return -1;
	return (pid_t)last;
}

void mon_name_process(struct proctable *procs, const struct exec_map *execs, pid_t host_pid,
		      int pidfd, struct cap_event *ev)
{
	char p[64];
	ssize_t n = -1;
	struct proc_entry *e = procs && host_pid > 0 ? proctable_get(procs, host_pid) : NULL;
	const struct exec_slot *x = exec_slot(execs, host_pid, false);

	ev->host_pid = host_pid > 0 ? host_pid : 0;
	ev->pid = e && e->inner_pid > 0 ? e->inner_pid : -1; /* never the host pid */
	if (ev->pid < 0 && host_pid > 0 && pidfd != -1) {
		/* not in the table (no process monitor): read it while the pidfd
		 * says this incarnation is alive; a sandbox process is at least
		 * two namespace levels deep */
		pid_t v = mon_read_nspid(host_pid, 2, NULL);
		if (v > 0 && (pidfd == MON_PIDFD_NONE || pidfd_alive(pidfd)))
			ev->pid = v;
	}
	ev->cgroup_id = e ? e->cgroup_id : 0;
	if (x && e && e->start_ns <= x->seen_ns) {
		cap_strlcpy(ev->process, x->path, sizeof(ev->process));
		return;
	}
	if (host_pid > 0 && (pidfd >= 0 || pidfd == MON_PIDFD_NONE)) {
		(void)snprintf(p, sizeof(p), "/proc/%d/exe", (int)host_pid);
		n = readlink(p, ev->process, sizeof(ev->process) - 1);
		/* exited meanwhile: the link may have been read from a new owner of the pid */
		if (n > 0 && pidfd >= 0 && !pidfd_alive(pidfd))
			n = -1;
	}
	if (n > 0) {
		ev->process[n] = '\0';
		return;
	}
	if (e && e->path[0])
		cap_strlcpy(ev->process, e->path, sizeof(ev->process));
	else
		cap_strlcpy(ev->process, x && !procs ? x->path : "unknown", sizeof(ev->process));
}

int mon_fid_path(int root_fd, const char *prefix, size_t prefix_len, const void *info, size_t avail,
		 char *out, size_t outlen)
{
	const struct fanotify_event_info_fid *fid = info;
	struct file_handle *fh;
	size_t off = sizeof(*fid) + sizeof(*fh);
	const char *name;
	char link[64], host[PATH_MAX];
	ssize_t n;

	if (avail < off || fid->hdr.len > avail || fid->hdr.len < off)
		return -EBADMSG;
	fh = (struct file_handle *)(uintptr_t)fid->handle;
	if (fh->handle_bytes > 128 || off + fh->handle_bytes >= fid->hdr.len)
		return -EBADMSG;
	name = (const char *)fid->handle + sizeof(*fh) + fh->handle_bytes;
	if (!memchr(name, '\0', fid->hdr.len - off - fh->handle_bytes))
		return -EBADMSG;
	int fd = open_by_handle_at(root_fd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, host, sizeof(host) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	host[n] = '\0';
	const char *dir = host;
	if (prefix_len) {
		if (strncmp(host, prefix, prefix_len) != 0 ||
		    (host[prefix_len] != '/' && host[prefix_len] != '\0'))
			return -EXDEV;
		dir = host[prefix_len] ? host + prefix_len : "/";
	}
	if (!*name || strcmp(name, ".") == 0)
		(void)snprintf(out, outlen, "%s", dir);
	else
		(void)snprintf(out, outlen, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
	return 0;
}

int mon_fan_read(int fan_fd, char *buf, size_t buflen, mon_fan_record_fn fn, void *ctx)
{
	for (;;) {
		ssize_t n = read(fan_fd, buf, buflen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if (n == 0)
			return 0;
		for (size_t off = 0; off + FAN_EVENT_METADATA_LEN <= (size_t)n;) {
			struct fanotify_event_metadata md;
			memcpy(&md, buf + off, sizeof(md)); /* records are only 4-byte aligned */
			if (md.event_len < FAN_EVENT_METADATA_LEN ||
			    md.event_len > (size_t)n - off || md.metadata_len > md.event_len)
				break;
			fn(ctx, buf + off, &md);
			if (md.fd >= 0)
				close(md.fd);
			off += md.event_len;
		}
	}
}

int mon_fan_open(int target_root_fd, uint64_t mask, int *ret_root_fd, char *prefix,
		 size_t prefix_size, size_t *ret_prefix_len)
{
	char link[64];
	int root = openat(target_root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*ret_root_fd = -1;
	if (root < 0)
		return -errno;
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", root);
	ssize_t n = readlink(link, prefix, prefix_size - 1);
	if (n < 0) {
		int r = -errno;
		close(root);
		return r;
	}
	prefix[n] = '\0';
	*ret_prefix_len = strcmp(prefix, "/") == 0 ? 0 : (size_t)n;
	int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_REPORT_PIDFD |
					FAN_UNLIMITED_QUEUE | FAN_NONBLOCK | FAN_CLOEXEC,
				O_RDONLY | O_LARGEFILE | O_CLOEXEC);
	if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, root, NULL) < 0) {
		int r = -errno;
		if (fan >= 0)
			close(fan);
		close(root);
		return r;
	}
	*ret_root_fd = root;
	return fan;
}

struct drain_execs {
	int root_fd;
	const char *prefix;
	size_t prefix_len;
	struct exec_map *x;
};

static void drain_exec_record(void *ctx, const char *rec, const struct fanotify_event_metadata *md)
{
	struct drain_execs *d = ctx;
	char path[PATH_MAX];
	size_t pos = md->metadata_len;
	while (md->vers == FANOTIFY_METADATA_VERSION && (md->mask & FAN_OPEN_EXEC) &&
	       pos + sizeof(struct fanotify_event_info_header) <= md->event_len) {
		const struct fanotify_event_info_header *hdr = (const void *)(rec + pos);
		if (hdr->len == 0 || hdr->len > md->event_len - pos)
			break;
		if (hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME &&
		    mon_fid_path(d->root_fd, d->prefix, d->prefix_len, hdr, md->event_len - pos, path,
				 sizeof(path)) == 0)
			exec_map_set(d->x, md->pid, path);
		pos += hdr->len;
	}
}

int mon_drain_execs(int fan_fd, int root_fd, const char *prefix, size_t prefix_len,
		    struct exec_map *x, char *buf, size_t buflen)
{
	struct drain_execs d = {root_fd, prefix, prefix_len, x};
	return mon_fan_read(fan_fd, buf, buflen, drain_exec_record, &d);
}
