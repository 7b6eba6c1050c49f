/* mon-file.c - file monitor: fanotify on the sandbox's overlay + upper diff.
 *
 * Owns one fanotify group (FAN_CLASS_NOTIF, FAN_REPORT_DFID_NAME,
 * FAN_UNLIMITED_QUEUE, non-blocking) with a FILESYSTEM mark on the sandbox
 * root (target->root_fd), so that every change made through the overlay is
 * seen, whoever makes it.  Names: the directory handle is opened with
 * open_by_handle_at() on the root fd and read back through
 * /proc/self/fd, then the host prefix of the sandbox root is stripped (the
 * last directory is cached, bursts in one directory cost one lookup).
 * Process: /proc/PID/exe of the host pid (which reads as the path inside
 * the sandbox), else the process table, else "unknown".
 *
 * Accounting: every (event record, action bit) is one "reported" event;
 * it is delivered or suppressed (a repeated Write of the same file in the
 * visit, an ATTRIB that sets no executable bit, a repeated Chmod).  Queue
 * overflow is counted in lost and reported.  At stop() the queue is read
 * until empty, then upper_diff_scan() adds Create/Write/Delete events for
 * paths fanotify did not report (mmap writes); those count as reported
 * and delivered.  Merging uses 64-bit FNV-1a hashes of (kind, path): a
 * collision (about 2^-64 per pair) could merge two different files.
 * start() records the upper entries already there (sandbox set-up: masks,
 * /etc files, home) by (kind, path, mode, size, mtime); stop() skips them
 * unless one of these changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "mon-file.h"
#include "mon-util.h"
#include "proctable.h"
#include "upper-diff.h"

#define MF_BUF (256 * 1024)
#define MF_HANDLE_MAX 128
#define MF_DCACHE 4096 /* directory handle -> path cache (direct-mapped) */

struct hset {
	uint64_t *v;
	size_t n, cap;
};

struct monitor {
	struct monitor_target tgt;
	struct proctable *procs;
	struct monitor_callbacks cb;
	struct monitor_stats st;
	int fan_fd;
	int root_fd; /* target->root_fd reopened O_RDONLY (fanotify_mark refuses O_PATH) */
	bool active;
	char prefix[PATH_MAX]; /* host view of the sandbox root, "" if "/" */
	size_t prefix_len;
	unsigned char last_handle[sizeof(struct file_handle) + MF_HANDLE_MAX];
	size_t last_handle_len;
	char last_dir[PATH_MAX]; /* sandbox path of last_handle */
	/* Paths of directories resolved before: a directory removed before its
	 * children's events are read (ESTALE) is still named. */
	struct {
		uint64_t key;
		char *path;
	} dcache[MF_DCACHE];
	struct hset seen;
	struct hset baseline; /* upper entries present at start() */
	unsigned options;     /* MON_FILE_* */
	pid_t self;	      /* our own pid: our reads through the sandbox root are not events */
	struct exec_map execs; /* pid -> image, from FAN_OPEN_EXEC */
	int cur_pidfd;	       /* pidfd of the record being handled (FAN_REPORT_PIDFD) */
	char *buf;
	struct cap_event ev;
};

static uint64_t fnv(char kind, const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	h = (h ^ (unsigned char)kind) * 1099511628211ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ? h : 1;
}

/* Inserts h; returns 1 if new, 0 if present, -ENOMEM. */
static int hset_add(struct hset *s, uint64_t h)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 1024;
		uint64_t *nv = calloc(nc, sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i])
				for (size_t j = s->v[i] & (nc - 1);; j = (j + 1) & (nc - 1))
					if (!nv[j]) {
						nv[j] = s->v[i];
						break;
					}
		free(s->v);
		s->v = nv;
		s->cap = nc;
	}
	for (size_t j = h & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
		if (s->v[j] == h)
			return 0;
		if (!s->v[j]) {
			s->v[j] = h;
			s->n++;
			return 1;
		}
	}
}

static bool hset_has(const struct hset *s, uint64_t h)
{
	if (!s->cap)
		return false;
	for (size_t j = h & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
		if (s->v[j] == h)
			return true;
		if (!s->v[j])
			return false;
	}
}

/* Identity of an upper entry: kind, path, type+mode, size, mtime. */
static uint64_t entry_hash(const struct upper_entry *e)
{
	char tail[128];
	uint64_t h = fnv((char)('0' + e->kind), e->sandbox_path);
	(void)snprintf(tail, sizeof(tail), "%u:%lld:%lld.%ld", (unsigned)e->mode, (long long)e->size,
		       (long long)e->mtime.tv_sec, e->mtime.tv_nsec);
	for (const char *c = tail; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	return h ? h : 1;
}

static void report_error(struct monitor *m, int err, const char *msg)
{
	if (m->cb.error)
		m->cb.error(m->cb.userdata, "file", err, msg);
}


/* Sandbox path of the directory in handle; 0 or -errno. */
static int dir_path(struct monitor *m, struct file_handle *fh, const char **ret)
{
	size_t hl = sizeof(*fh) + fh->handle_bytes;
	char link[64], host[PATH_MAX];
	ssize_t n;

	if (fh->handle_bytes > MF_HANDLE_MAX)
		return -EINVAL;
	if (hl == m->last_handle_len && memcmp(m->last_handle, fh, hl) == 0) {
		*ret = m->last_dir;
		return 0;
	}
	uint64_t key = 1469598103934665603ULL;
	for (size_t i = 0; i < hl; i++)
		key = (key ^ ((const unsigned char *)fh)[i]) * 1099511628211ULL;
	key |= 1;
	size_t slot = key & (MF_DCACHE - 1);
	_cleanup_close_ int fd = open_by_handle_at(m->root_fd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;
		if (err == -ESTALE && m->dcache[slot].key == key && m->dcache[slot].path) {
			cap_strlcpy(m->last_dir, m->dcache[slot].path, sizeof(m->last_dir));
			memcpy(m->last_handle, fh, hl);
			m->last_handle_len = hl;
			*ret = m->last_dir;
			return 0;
		}
		return err;
	}
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, host, sizeof(host) - 1);
	if (n < 0)
		return -errno;
	host[n] = '\0';
	if (m->prefix_len && strncmp(host, m->prefix, m->prefix_len) == 0 &&
	    (host[m->prefix_len] == '/' || host[m->prefix_len] == '\0'))
		cap_strlcpy(m->last_dir, host[m->prefix_len] ? host + m->prefix_len : "/",
			    sizeof(m->last_dir));
	else
		cap_strlcpy(m->last_dir, host, sizeof(m->last_dir));
	memcpy(m->last_handle, fh, hl);
	m->last_handle_len = hl;
	if (m->dcache[slot].key != key || !m->dcache[slot].path ||
	    strcmp(m->dcache[slot].path, m->last_dir) != 0) {
		char *copy = strdup(m->last_dir);
		if (copy) {
			free(m->dcache[slot].path);
			m->dcache[slot].key = key;
			m->dcache[slot].path = copy;
		}
	}
	*ret = m->last_dir;
	return 0;
}

/* Full sandbox path from one DFID_NAME info record into out. */
static int info_path(struct monitor *m, const struct fanotify_event_info_fid *fid, size_t avail,
		     char *out, size_t outlen)
{
	struct file_handle *fh = (struct file_handle *)(uintptr_t)fid->handle;
	const char *dir, *name;
	size_t off = sizeof(*fid) + sizeof(*fh);
	int r;

	if (avail < off || fid->hdr.len > avail || off + fh->handle_bytes >= fid->hdr.len)
		return -EBADMSG;
	name = (const char *)fid->handle + sizeof(*fh) + fh->handle_bytes;
	if (!memchr(name, '\0', fid->hdr.len - off - fh->handle_bytes))
		return -EBADMSG;
	r = dir_path(m, fh, &dir);
	if (r < 0)
		return r;
	if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID || strcmp(name, ".") == 0 || !*name)
		(void)snprintf(out, outlen, "%s", dir);
	else
		(void)snprintf(out, outlen, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
	return 0;
}

static void deliver(struct monitor *m, const char *action, pid_t pid, const char *o1,
		    const char *o2)
{
	int pidfd = m->cur_pidfd;
	cap_event_init(&m->ev, CAP_EV_FILE, action, NULL, o1, o2);
	if (pid > 0)
		mon_name_process(m->procs, &m->execs, pid, pidfd, &m->ev);
	else
		cap_strlcpy(m->ev.process, "unknown", sizeof(m->ev.process));
	m->st.delivered++;
	if (m->cb.event)
		m->cb.event(m->cb.userdata, &m->ev);
}

/* One action bit of one record: deliver or suppress. */
static void one_action(struct monitor *m, uint64_t bit, pid_t pid, const char *path,
		       const char *newpath)
{
	struct stat st;
	m->st.reported++;
	switch (bit) {
	case FAN_CREATE:
		(void)hset_add(&m->seen, fnv('C', path));
		deliver(m, "Create", pid, path, "-1");
		return;
	case FAN_MODIFY:
		if (hset_add(&m->seen, fnv('W', path)) == 0)
			break;
		deliver(m, "Write", pid, path, "-1");
		return;
	case FAN_DELETE:
		(void)hset_add(&m->seen, fnv('D', path));
		deliver(m, "Delete", pid, path, "-1");
		return;
	case FAN_RENAME:
		(void)hset_add(&m->seen, fnv('D', path));
		(void)hset_add(&m->seen, fnv('C', newpath));
		deliver(m, "Rename", pid, path, newpath);
		return;
	case FAN_OPEN:
	case FAN_ACCESS: {
		const char kind = bit == FAN_OPEN ? 'O' : 'R';
		if (pid == m->self || hset_add(&m->seen, fnv(kind, path)) == 0)
			break; /* our own read (registry monitor), or already reported */
		deliver(m, bit == FAN_OPEN ? "Open" : "Read", pid, path, "-1");
		return;
	}
	case FAN_ATTRIB:
		if (fstatat(m->root_fd, path[0] == '/' ? path + 1 : path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || !(st.st_mode & 0111) ||
		    hset_add(&m->seen, fnv('X', path)) == 0)
			break;
		deliver(m, "Chmod", pid, path, "+x");
		return;
	default:
		break;
	}
	m->st.suppressed++;
}

static int handle_record(struct monitor *m, const char *rec, const struct fanotify_event_metadata *md)
{
	static const uint64_t bits[] = { FAN_CREATE, FAN_OPEN,	 FAN_ACCESS, FAN_MODIFY,
					 FAN_ATTRIB, FAN_RENAME, FAN_DELETE };
	char path[PATH_MAX] = "", newpath[PATH_MAX] = "";
	size_t pos = md->metadata_len;
	int r = 0;

	for (size_t p = pos; p + sizeof(struct fanotify_event_info_header) <= md->event_len;) {
		const struct fanotify_event_info_header *hdr = (const void *)(rec + p);
		if (hdr->len == 0 || hdr->len > md->event_len - p)
			break;
		if (hdr->info_type == FAN_EVENT_INFO_TYPE_PIDFD &&
		    hdr->len >= sizeof(struct fanotify_event_info_pidfd))
			m->cur_pidfd = ((const struct fanotify_event_info_pidfd *)(const void *)hdr)->pidfd;
		p += hdr->len;
	}
	if (!m->active)
		return 0; /* (the caller closes the pidfd) */
	if (md->mask & FAN_Q_OVERFLOW) {
		m->st.reported++;
		m->st.lost++;
		report_error(m, -ENOBUFS, "fanotify queue overflow: file events lost");
		return 0;
	}
	while (pos + sizeof(struct fanotify_event_info_header) <= md->event_len) {
		const struct fanotify_event_info_fid *fid = (const void *)(rec + pos);
		if (fid->hdr.len == 0 || fid->hdr.len > md->event_len - pos)
			break;
		if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME)
			r = info_path(m, fid, md->event_len - pos, newpath, sizeof(newpath));
		else if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
			 fid->hdr.info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
			 fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID)
			r = info_path(m, fid, md->event_len - pos, path, sizeof(path));
		if (r < 0)
			break;
		pos += fid->hdr.len;
	}
	if (md->mask & FAN_OPEN_EXEC) {
		/* names the process (not an event): the image it exec'd */
		if (r == 0 && path[0])
			exec_map_set(&m->execs, md->pid, path);
		if (!(md->mask & ~(FAN_OPEN_EXEC | FAN_ONDIR)))
			return 0;
	}
	bool stale = r == -ESTALE;
	if (r < 0 || !path[0]) {
		/* the directory is gone (ESTALE) or the record is malformed: name unknown */
		(void)snprintf(path, sizeof(path), "(unknown: %s)", strerror(r < 0 ? -r : EBADMSG));
	}
	for (size_t i = 0; i < ELEMENTSOF(bits); i++) {
		if (!(md->mask & bits[i]))
			continue;
		if (stale && bits[i] == FAN_DELETE) {
			/* A deletion inside a directory that is itself gone: if that
			 * directory was in the lower layer, its removal leaves a
			 * whiteout that the end-of-visit diff reports by name; if it
			 * was made during the visit, the file was transient.  Either
			 * way this nameless Delete adds nothing: suppressed. */
			m->st.reported++;
			m->st.suppressed++;
			continue;
		}
		one_action(m, bits[i], md->pid, path, newpath[0] ? newpath : "(unknown)");
	}
	return 0;
}

static void mf_record(void *ctx, const char *rec, const struct fanotify_event_metadata *md)
{
	struct monitor *m = ctx;
	m->cur_pidfd = MON_PIDFD_NONE;
	if (md->vers == FANOTIFY_METADATA_VERSION)
		(void)handle_record(m, rec, md);
	if (m->cur_pidfd >= 0)
		close(m->cur_pidfd);
	m->cur_pidfd = MON_PIDFD_NONE;
}

static int mf_dispatch(struct monitor *m)
{
	return mon_fan_read(m->fan_fd, m->buf, MF_BUF, mf_record, m);
}

static int mf_new(const struct monitor_target *target, struct proctable *procs,
		  const struct monitor_callbacks *cb, struct monitor **ret)
{
	const uint64_t mask = FAN_CREATE | FAN_DELETE | FAN_MODIFY | FAN_ATTRIB | FAN_RENAME |
			      FAN_OPEN_EXEC | FAN_ONDIR;
	struct monitor *m;

	if (!target || target->root_fd < 0)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fan_fd = m->root_fd = -1;
	m->tgt = *target;
	m->procs = procs;
	if (cb)
		m->cb = *cb;
	m->self = getpid();
	m->cur_pidfd = MON_PIDFD_NONE;
	m->buf = malloc(MF_BUF);
	if (!m->buf || exec_map_init(&m->execs) < 0)
		goto fail_nomem;
	m->fan_fd = mon_fan_open(target->root_fd, mask, &m->root_fd, m->prefix, sizeof(m->prefix),
				 &m->prefix_len);
	if (m->fan_fd < 0) {
		errno = -m->fan_fd;
		goto fail;
	}
	*ret = m;
	return 0;
fail_nomem:
	errno = ENOMEM;
fail:;
	int r = -errno;
	mon_file_ops.free(m);
	return r;
}

static void mf_free(struct monitor *m)
{
	if (!m)
		return;
	if (m->fan_fd >= 0)
		close(m->fan_fd);
	if (m->root_fd >= 0)
		close(m->root_fd);
	free(m->seen.v);
	free(m->baseline.v);
	for (size_t i = 0; i < MF_DCACHE; i++)
		free(m->dcache[i].path);
	exec_map_done(&m->execs);
	free(m->buf);
	free(m);
}

static int mf_start(struct monitor *m)
{
	struct upper_diff *d = NULL;

	(void)mf_dispatch(m); /* discard what happened before the visit */
	free(m->seen.v);
	m->seen = (struct hset){ 0 };
	free(m->baseline.v);
	m->baseline = (struct hset){ 0 };
	if (m->tgt.upper_dir && upper_diff_scan(m->tgt.upper_dir, m->tgt.lower_dir, &d) == 0) {
		for (size_t i = 0; i < d->n; i++)
			if (hset_add(&m->baseline, entry_hash(&d->entries[i])) < 0 ||
			    hset_add(&m->baseline, fnv('B', d->entries[i].sandbox_path)) < 0) {
				upper_diff_free(d);
				return -ENOMEM;
			}
		upper_diff_free(d);
	}
	m->active = true;
	return 0;
}

/* Adds diff entries fanotify did not report. */
static void diff_events(struct monitor *m, const struct upper_diff *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct upper_entry *e = &d->entries[i];
		const char *p = e->sandbox_path;
		const char *action = NULL;
		if (hset_has(&m->baseline, entry_hash(e)))
			continue; /* there before the visit, unchanged */
		if (hset_has(&m->baseline, fnv('B', p))) {
			/* there before the visit, changed since: a write fanotify missed */
			if (e->kind != UPPER_DELETED && S_ISREG(e->mode) &&
			    !hset_has(&m->seen, fnv('W', p)) && !hset_has(&m->seen, fnv('C', p)) &&
			    !hset_has(&m->seen, fnv('X', p)))
				action = "Write";
		} else if (e->kind == UPPER_DELETED && !hset_has(&m->seen, fnv('D', p)))
			action = "Delete";
		else if (e->kind == UPPER_CREATED && !hset_has(&m->seen, fnv('C', p)))
			action = "Create";
		else if (e->kind == UPPER_MODIFIED && S_ISREG(e->mode) &&
			 !hset_has(&m->seen, fnv('W', p)) && !hset_has(&m->seen, fnv('C', p)) &&
			 !hset_has(&m->seen, fnv('X', p)))
			action = "Write";
		if (!action)
			continue;
		m->st.reported++;
		deliver(m, action, 0, p, "upper-diff");
	}
}

static int mf_stop(struct monitor *m)
{
	struct upper_diff *d = NULL;
	int r = mf_dispatch(m);

	if (r < 0)
		report_error(m, r, "reading the fanotify queue failed");
	if (m->tgt.upper_dir) {
		int s = upper_diff_scan(m->tgt.upper_dir, m->tgt.lower_dir, &d);
		if (s < 0) {
			report_error(m, s, "upper diff failed");
			r = r < 0 ? r : s;
		} else {
			diff_events(m, d);
			upper_diff_free(d);
		}
	}
	m->active = false;
	return r;
}

static int mf_fd(struct monitor *m)
{
	return m->fan_fd;
}

static void mf_stats(struct monitor *m, struct monitor_stats *ret)
{
	*ret = m->st;
}

int mon_file_set_options(struct monitor *m, unsigned flags)
{
	uint64_t want = 0, have = 0;

	if (!m || (flags & ~(unsigned)(MON_FILE_OPEN | MON_FILE_READ)))
		return -EINVAL;
	want |= flags & MON_FILE_OPEN ? FAN_OPEN : 0;
	want |= flags & MON_FILE_READ ? FAN_ACCESS : 0;
	have |= m->options & MON_FILE_OPEN ? FAN_OPEN : 0;
	have |= m->options & MON_FILE_READ ? FAN_ACCESS : 0;
	if ((want & ~have) &&
	    fanotify_mark(m->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, want & ~have, m->root_fd, NULL) < 0)
		return -errno;
	if ((have & ~want) && fanotify_mark(m->fan_fd, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM,
					    have & ~want, m->root_fd, NULL) < 0)
		return -errno;
	m->options = flags;
	return 0;
}

const struct monitor_ops mon_file_ops = {
	.name = "file",
	.new = mf_new,
	.free = mf_free,
	.start = mf_start,
	.stop = mf_stop,
	.fd = mf_fd,
	.dispatch = mf_dispatch,
	.stats = mf_stats,
};
