/* mon-registry.c - configuration hives as a registry (see mon-registry.h
 * and docs/monitors.md).
 *
 * Windows' registry has no single Linux counterpart; what malware changes
 * to persist or escalate lives in a known set of files.  This monitor owns
 * the mapping path -> key (mon_registry_key) and the comparison of a hive
 * file's values before and after a change.
 *
 * Live: an own fanotify group (FAN_REPORT_DFID_NAME | FAN_REPORT_PIDFD,
 * FILESYSTEM mark on the sandbox root, like the file monitor) reports
 * CREATE, MODIFY, CLOSE_WRITE, DELETE and RENAME of every file; records
 * whose directory is not a hive directory are dropped after one handle
 * lookup (cached per directory handle).  For a hive file, CREATE,
 * CLOSE_WRITE, DELETE and RENAME (either side) compare the file's current
 * content (read through the sandbox root with openat2 RESOLVE_IN_ROOT |
 * RESOLVE_NO_SYMLINKS) with the last content the monitor knew, and the
 * differences are delivered at once, attributed to the process of that
 * record; MODIFY only records the writer.  "Before" of a hive file is its
 * content at start() when the upper layer already held it (sandbox set-up),
 * else the lower layer's file.
 *
 * Safety net: stop() drains the queue, then runs the upper diff and
 * compares every hive file in it, every file of the start snapshot and
 * every file seen live with its last known content, so changes fanotify
 * did not name (queue overflow, a hive directory moved into place, a writer
 * that still holds the file open) are still reported, attributed to the
 * last recorded writer or "unknown".
 *
 * Values: text hives -> the file's significant lines (multiset); dconf
 * (~/.config/dconf/user) -> the database's keys (gvdb.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gvdb.h"
#include "macro.h"
#include "mon-registry.h"
#include "mon-util.h"
#include "upper-diff.h"

#define HIVE_FILE_MAX (256 * 1024)
#define HIVE_LINES_MAX 4096
#define HIVE_TRACK_MAX 1024		  /* hive files followed live per visit */
#define HIVE_TRACK_BYTES (32 * 1024 * 1024) /* their stored content */
#define MR_BUF (64 * 1024)
#define MR_HANDLE_MAX 128
#define REL_SLOTS 4096 /* directory handle -> "is a hive directory" cache */

enum hive_kind { HIVE_LINES, HIVE_DCONF };

struct blob {
	char *data; /* NULL = absent; else NUL-terminated (len bytes + NUL) */
	size_t len;
	bool too_big;
};

struct writer {
	bool known;
	pid_t pid, host_pid;
	uint64_t cgroup_id;
	char process[CAP_PROC_MAX];
};

struct hive {
	char *path; /* sandbox path */
	char key[512];
	enum hive_kind kind;
	struct blob last; /* last content reported */
	struct writer writer; /* last process that changed it */
};

struct snap {
	char *path;
	struct blob content;
};

struct monitor {
	struct monitor_target tgt;
	struct proctable *procs;
	struct monitor_callbacks cb;
	struct monitor_stats st;
	int fan_fd;
	int root_fd; /* target->root_fd reopened O_RDONLY */
	bool active;
	bool full_reported;
	char prefix[PATH_MAX];
	size_t prefix_len;
	unsigned char last_handle[sizeof(struct file_handle) + MR_HANDLE_MAX];
	size_t last_handle_len;
	char last_dir[PATH_MAX];
	uint64_t rel_key[REL_SLOTS];
	bool rel_val[REL_SLOTS];
	size_t rel_n;
	struct snap *snaps;
	size_t n_snaps;
	struct hive *hives;
	size_t n_hives, hive_bytes;
	uint64_t live_events;
	struct exec_map execs; /* pid -> image, from FAN_OPEN_EXEC */
	char *buf;
	struct cap_event ev;
};

struct prefix_map {
	const char *prefix; /* sandbox path prefix; "~/" = /root/ or /home/NAME/ */
	const char *key;    /* key prefix; the rest of the path is appended */
	bool exact;	    /* the prefix is a whole file */
	enum hive_kind kind;
};

static const struct prefix_map hive_map[] = {
	{ "/var/spool/cron/crontabs/", "cron:/", false, HIVE_LINES },
	{ "/etc/crontab", "cron:/etc/crontab", true, HIVE_LINES },
	{ "/etc/cron.d/", "cron:/etc/cron.d/", false, HIVE_LINES },
	{ "/etc/systemd/system/", "systemd:/system/", false, HIVE_LINES },
	{ "/etc/systemd/user/", "systemd:/user-global/", false, HIVE_LINES },
	{ "/usr/lib/systemd/system/", "systemd:/vendor/", false, HIVE_LINES },
	{ "/usr/lib/systemd/user/", "systemd:/vendor-user/", false, HIVE_LINES },
	{ "~/.config/systemd/user/", "systemd:/user/", false, HIVE_LINES },
	{ "/etc/xdg/autostart/", "autostart:/system/", false, HIVE_LINES },
	{ "~/.config/autostart/", "autostart:/user/", false, HIVE_LINES },
	{ "~/.bashrc", "shell:/user/.bashrc", true, HIVE_LINES },
	{ "~/.profile", "shell:/user/.profile", true, HIVE_LINES },
	{ "~/.bash_profile", "shell:/user/.bash_profile", true, HIVE_LINES },
	{ "~/.bash_login", "shell:/user/.bash_login", true, HIVE_LINES },
	{ "/etc/profile", "shell:/etc/profile", true, HIVE_LINES },
	{ "/etc/profile.d/", "shell:/etc/profile.d/", false, HIVE_LINES },
	{ "/etc/bash.bashrc", "shell:/etc/bash.bashrc", true, HIVE_LINES },
	{ "/etc/ld.so.preload", "ldpreload:/etc/ld.so.preload", true, HIVE_LINES },
	{ "~/.ssh/authorized_keys", "ssh:/user/authorized_keys", true, HIVE_LINES },
	{ "/etc/sudoers", "sudoers:/etc/sudoers", true, HIVE_LINES },
	{ "/etc/sudoers.d/", "sudoers:/etc/sudoers.d/", false, HIVE_LINES },
	{ "~/.config/dconf/user", "dconf:", true, HIVE_DCONF },
};

/* Strips "/root/" or "/home/NAME/" for a "~/" prefix; NULL if not a home. */
static const char *home_rest(const char *path)
{
	if (strncmp(path, "/root/", 6) == 0)
		return path + 6;
	if (strncmp(path, "/home/", 6) == 0) {
		const char *slash = strchr(path + 6, '/');
		return slash && slash > path + 6 ? slash + 1 : NULL;
	}
	return NULL;
}

static bool hive_lookup(const char *path, char *buf, size_t len, enum hive_kind *kind)
{
	for (size_t i = 0; i < ELEMENTSOF(hive_map); i++) {
		const struct prefix_map *pm = &hive_map[i];
		const char *p = path, *pre = pm->prefix;
		size_t pl;
		if (pre[0] == '~') {
			p = home_rest(path);
			if (!p)
				continue;
			pre += 2;
		}
		pl = strlen(pre);
		if (strncmp(p, pre, pl) != 0)
			continue;
		if (pm->exact ? p[pl] != '\0' : (p[pl] == '\0' || strchr(p + pl, '/')))
			continue;
		if (kind)
			*kind = pm->kind;
		return snprintf(buf, len, "%s%s", pm->key, pm->exact ? "" : p + pl) < (int)len;
	}
	return false;
}

bool mon_registry_key(const char *path, char *buf, size_t len)
{
	return hive_lookup(path, buf, len, NULL);
}

/* True if files directly in the sandbox directory dir can be hive files. */
static bool dir_relevant(const char *dir)
{
	char d[PATH_MAX + 2];
	if (snprintf(d, sizeof(d), "%s/", strcmp(dir, "/") ? dir : "") >= (int)sizeof(d))
		return false;
	for (size_t i = 0; i < ELEMENTSOF(hive_map); i++) {
		const char *pre = hive_map[i].prefix, *p = d, *slash;
		if (pre[0] == '~') {
			p = home_rest(d);
			if (!p)
				continue;
			pre += 2;
		}
		slash = strrchr(pre, '/');
		size_t dl = slash ? (size_t)(slash - pre) + 1 : 0;
		if (strlen(p) == dl && strncmp(p, pre, dl) == 0)
			return true;
	}
	return false;
}

static void blob_free(struct blob *b)
{
	free(b->data);
	*b = (struct blob){ 0 };
}

static size_t kind_max(enum hive_kind k)
{
	return k == HIVE_DCONF ? GVDB_FILE_MAX : HIVE_FILE_MAX;
}

/* Reads at most max bytes of an open fd (a regular file) into b. */
static int read_fd(int fd, size_t max, struct blob *b)
{
	struct stat st;
	size_t got = 0, cap;

	*b = (struct blob){ 0 };
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -EINVAL;
	cap = st.st_size > 0 && (size_t)st.st_size < max ? (size_t)st.st_size + 1 : max;
	b->data = malloc(cap + 1);
	if (!b->data)
		return -ENOMEM;
	for (;;) {
		if (got == cap) {
			if (cap >= max) {
				char c;
				b->too_big = read(fd, &c, 1) > 0;
				break;
			}
			size_t nc = cap * 2 < max ? cap * 2 : max;
			char *nd = realloc(b->data, nc + 1);
			if (!nd)
				break;
			b->data = nd;
			cap = nc;
		}
		ssize_t n = read(fd, b->data + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	b->data[got] = '\0';
	b->len = got;
	return 0;
}

/* A file of the host (upper or lower layer); absent if it cannot be read. */
static void read_host(const char *dir, const char *rel, size_t max, struct blob *b)
{
	char path[8192];
	*b = (struct blob){ 0 };
	if (!dir || snprintf(path, sizeof(path), "%s%s", dir, rel) >= (int)sizeof(path))
		return;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && read_fd(fd, max, b) < 0)
		blob_free(b);
}

/* A file as the sandbox sees it now; absent if it cannot be read. */
static void read_merged(struct monitor *m, const char *path, size_t max, struct blob *b)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	*b = (struct blob){ 0 };
	while (*path == '/')
		path++;
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, m->root_fd, *path ? path : ".", &how,
					      sizeof(how));
	if (fd >= 0 && read_fd(fd, max, b) < 0)
		blob_free(b);
}

static bool blob_equal(const struct blob *a, const struct blob *b)
{
	if (!a->data || !b->data)
		return !a->data && !b->data;
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void deliver(struct monitor *m, const char *action, const char *key, const char *value,
		    const struct writer *w)
{
	cap_event_init(&m->ev, CAP_EV_REGISTRY, action, w && w->known ? w->process : "unknown",
		       key, value);
	if (w && w->known) {
		m->ev.pid = w->pid;
		m->ev.host_pid = w->host_pid;
		m->ev.cgroup_id = w->cgroup_id;
	}
	m->st.reported++;
	m->st.delivered++;
	if (m->active)
		m->live_events++;
	if (m->cb.event)
		m->cb.event(m->cb.userdata, &m->ev);
}

/* Splits content (modified) into significant lines. */
static size_t split_lines(char *s, char **v)
{
	size_t n = 0;
	for (char *line = s; line && *line && n < HIVE_LINES_MAX;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char *t = line;
		while (*t == ' ' || *t == '\t')
			t++;
		size_t l = strlen(t);
		while (l > 0 && (t[l - 1] == ' ' || t[l - 1] == '\t' || t[l - 1] == '\r'))
			t[--l] = '\0';
		if (*t && *t != '#' && *t != ';')
			v[n++] = t;
		line = nl ? nl + 1 : NULL;
	}
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Text hive: key-level difference of two contents (data NULL = absent). */
static int compare_lines(struct monitor *m, const char *key, const struct blob *before,
			 const struct blob *after, const struct writer *w)
{
	_cleanup_free_ char **a = calloc(HIVE_LINES_MAX, sizeof(char *));
	_cleanup_free_ char **b = calloc(HIVE_LINES_MAX, sizeof(char *));
	_cleanup_free_ char *bc = before->data ? strndup(before->data, before->len) : NULL;
	_cleanup_free_ char *ac = after->data ? strndup(after->data, after->len) : NULL;
	size_t na, nb, i = 0, j = 0;

	if (!a || !b || (before->data && !bc) || (after->data && !ac))
		return -ENOMEM;
	if (!before->data && after->data)
		deliver(m, "CreateKey", key, "-1", w);
	na = bc ? split_lines(bc, a) : 0;
	nb = ac ? split_lines(ac, b) : 0;
	qsort(a, na, sizeof(*a), cmp_str);
	qsort(b, nb, sizeof(*b), cmp_str);
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i], b[j]);
		if (c == 0)
			i++, j++;
		else if (c < 0)
			deliver(m, "DeleteValueKey", key, a[i++], w);
		else
			deliver(m, "SetValueKey", key, b[j++], w);
	}
	if (before->data && !after->data)
		deliver(m, "DeleteKey", key, "-1", w);
	return 0;
}

/* dconf: entries of a database blob; an absent file has none. */
static int dconf_entries(const struct blob *b, struct gvdb_entry **e, size_t *n)
{
	*e = NULL;
	*n = 0;
	if (!b->data)
		return 0;
	if (b->too_big)
		return -EFBIG;
	return gvdb_parse(b->data, b->len, e, n, NULL);
}

/* dconf hive: SetValueKey for a key added or changed (new value),
 * DeleteValueKey for a key removed (old value); object1 "dconf:/path". */
static int compare_dconf(struct monitor *m, const char *key, const struct blob *before,
			 const struct blob *after, const struct writer *w)
{
	struct gvdb_entry *a = NULL, *b = NULL;
	size_t na = 0, nb = 0, i = 0, j = 0;
	char k[GVDB_KEY_MAX * 4 + 64], msg[128];
	int ra = dconf_entries(before, &a, &na), rb = dconf_entries(after, &b, &nb);

	if (ra == -ENOMEM || rb == -ENOMEM) {
		gvdb_entries_free(a, na);
		gvdb_entries_free(b, nb);
		return -ENOMEM;
	}
	if (rb < 0) {
		/* the sandbox wrote something dconf cannot read: say so, and
		 * compare against an empty database */
		(void)snprintf(msg, sizeof(msg), "(invalid GVDB database: %s)", strerror(-rb));
		deliver(m, "SetValueKey", key, msg, w);
	}
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].key, b[j].key);
		if (c == 0) {
			if (strcmp(a[i].value, b[j].value) != 0) {
				(void)snprintf(k, sizeof(k), "%s%s", key, b[j].key);
				deliver(m, "SetValueKey", k, b[j].value, w);
			}
			i++, j++;
		} else if (c < 0) {
			(void)snprintf(k, sizeof(k), "%s%s", key, a[i].key);
			deliver(m, "DeleteValueKey", k, a[i].value, w);
			i++;
		} else {
			(void)snprintf(k, sizeof(k), "%s%s", key, b[j].key);
			deliver(m, "SetValueKey", k, b[j].value, w);
			j++;
		}
	}
	gvdb_entries_free(a, na);
	gvdb_entries_free(b, nb);
	return 0;
}

static int compare(struct monitor *m, enum hive_kind kind, const char *key,
		   const struct blob *before, const struct blob *after, const struct writer *w)
{
	if (blob_equal(before, after) && before->too_big == after->too_big)
		return 0;
	return kind == HIVE_DCONF ? compare_dconf(m, key, before, after, w)
				  : compare_lines(m, key, before, after, w);
}

static const struct snap *snap_find(const struct monitor *m, const char *path)
{
	for (size_t i = 0; i < m->n_snaps; i++)
		if (strcmp(m->snaps[i].path, path) == 0)
			return &m->snaps[i];
	return NULL;
}

/* Content of a hive file before the visit (set-up snapshot, else lower). */
static void before_content(struct monitor *m, const char *path, enum hive_kind kind,
			   struct blob *b)
{
	const struct snap *s = snap_find(m, path);
	*b = (struct blob){ 0 };
	if (s) {
		if (s->content.data) {
			b->data = malloc(s->content.len + 1);
			if (b->data) {
				memcpy(b->data, s->content.data, s->content.len + 1);
				b->len = s->content.len;
				b->too_big = s->content.too_big;
			}
		}
		return;
	}
	read_host(m->tgt.lower_dir, path, kind_max(kind), b);
}

static struct hive *hive_find(struct monitor *m, const char *path)
{
	for (size_t i = 0; i < m->n_hives; i++)
		if (strcmp(m->hives[i].path, path) == 0)
			return &m->hives[i];
	return NULL;
}

/* The live state of a hive file, created with its "before" content; NULL if
 * the table is full (the file is then handled by stop()). */
static struct hive *hive_get(struct monitor *m, const char *path, const char *key,
			     enum hive_kind kind)
{
	struct hive *h = hive_find(m, path);
	if (h)
		return h;
	if (m->n_hives == HIVE_TRACK_MAX || m->hive_bytes > HIVE_TRACK_BYTES) {
		if (!m->full_reported && m->cb.error)
			m->cb.error(m->cb.userdata, "registry", -ENOSPC,
				    "too many hive files changed: the rest is reported at stop");
		m->full_reported = true;
		return NULL;
	}
	if (!m->hives) {
		m->hives = calloc(HIVE_TRACK_MAX, sizeof(*m->hives));
		if (!m->hives)
			return NULL;
	}
	h = &m->hives[m->n_hives];
	*h = (struct hive){ .kind = kind };
	h->path = strdup(path);
	if (!h->path)
		return NULL;
	cap_strlcpy(h->key, key, sizeof(h->key));
	before_content(m, path, kind, &h->last);
	m->hive_bytes += h->last.len;
	m->n_hives++;
	return h;
}

/* Compares a tracked hive file's current content with the last known one. */
static int hive_refresh(struct monitor *m, struct hive *h, const struct writer *w)
{
	struct blob now;
	int r;

	read_merged(m, h->path, kind_max(h->kind), &now);
	r = compare(m, h->kind, h->key, &h->last, &now, w);
	m->hive_bytes -= h->last.len;
	blob_free(&h->last);
	h->last = now;
	m->hive_bytes += now.len;
	return r;
}

static void hives_free(struct monitor *m)
{
	for (size_t i = 0; i < m->n_hives; i++) {
		free(m->hives[i].path);
		blob_free(&m->hives[i].last);
	}
	m->n_hives = 0;
	m->hive_bytes = 0;
}

static void snaps_free(struct monitor *m)
{
	for (size_t i = 0; i < m->n_snaps; i++) {
		free(m->snaps[i].path);
		blob_free(&m->snaps[i].content);
	}
	free(m->snaps);
	m->snaps = NULL;
	m->n_snaps = 0;
}

/* ---- fanotify ---- */

static uint64_t handle_hash(const struct file_handle *fh)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p = (const unsigned char *)fh;
	for (size_t i = 0; i < sizeof(*fh) + fh->handle_bytes; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h ? h : 1;
}

static void rel_reset(struct monitor *m)
{
	memset(m->rel_key, 0, sizeof(m->rel_key));
	m->rel_n = 0;
	m->last_handle_len = 0;
}

/* 1 relevant, 0 not, -1 unknown; *slot gets the insert position. */
static int rel_get(struct monitor *m, uint64_t h, size_t *slot)
{
	for (size_t j = h & (REL_SLOTS - 1);; j = (j + 1) & (REL_SLOTS - 1)) {
		if (m->rel_key[j] == h)
			return m->rel_val[j];
		if (!m->rel_key[j]) {
			*slot = j;
			return -1;
		}
	}
}

static void rel_put(struct monitor *m, uint64_t h, size_t slot, bool v)
{
	if (m->rel_n >= REL_SLOTS / 2) {
		rel_reset(m);
		(void)rel_get(m, h, &slot);
	}
	m->rel_key[slot] = h;
	m->rel_val[slot] = v;
	m->rel_n++;
}

/* Sandbox path of a directory handle; 0 or -errno. */
static int dir_path(struct monitor *m, struct file_handle *fh, const char **ret)
{
	size_t hl = sizeof(*fh) + fh->handle_bytes;
	char link[64], host[PATH_MAX];
	ssize_t n;

	if (hl == m->last_handle_len && memcmp(m->last_handle, fh, hl) == 0) {
		*ret = m->last_dir;
		return 0;
	}
	_cleanup_close_ int fd = open_by_handle_at(m->root_fd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, host, sizeof(host) - 1);
	if (n < 0)
		return -errno;
	host[n] = '\0';
	if (m->prefix_len) {
		if (strncmp(host, m->prefix, m->prefix_len) != 0 ||
		    (host[m->prefix_len] != '/' && host[m->prefix_len] != '\0'))
			return -EXDEV; /* not below the sandbox root */
		cap_strlcpy(m->last_dir, host[m->prefix_len] ? host + m->prefix_len : "/",
			    sizeof(m->last_dir));
	} else {
		cap_strlcpy(m->last_dir, host, sizeof(m->last_dir));
	}
	memcpy(m->last_handle, fh, hl);
	m->last_handle_len = hl;
	*ret = m->last_dir;
	return 0;
}

/* The hive path named by one DFID_NAME record, or "" if it names no hive
 * file (or cannot be resolved: the stop() scan covers that). */
static void record_path(struct monitor *m, const struct fanotify_event_info_fid *fid, size_t avail,
			bool any, char *out, size_t outlen)
{
	struct file_handle *fh = (struct file_handle *)(uintptr_t)fid->handle;
	size_t off = sizeof(*fid) + sizeof(*fh), slot = 0;
	const char *dir, *name;
	uint64_t h;
	int rel;

	out[0] = '\0';
	if (avail < off || fid->hdr.len > avail || fh->handle_bytes > MR_HANDLE_MAX ||
	    off + fh->handle_bytes >= fid->hdr.len)
		return;
	name = (const char *)fid->handle + sizeof(*fh) + fh->handle_bytes;
	if (!memchr(name, '\0', fid->hdr.len - off - fh->handle_bytes) || !*name ||
	    strcmp(name, ".") == 0)
		return;
	h = handle_hash(fh);
	rel = rel_get(m, h, &slot);
	if (rel == 0 && !any)
		return;
	if (dir_path(m, fh, &dir) < 0)
		return;
	if (rel < 0)
		rel_put(m, h, slot, dir_relevant(dir));
	if (!any && !dir_relevant(dir))
		return;
	(void)snprintf(out, outlen, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
}

static void name_writer(struct monitor *m, pid_t pid, int pidfd, struct writer *w)
{
	struct cap_event *ev = &m->ev;
	*w = (struct writer){ 0 };
	if (pid <= 0)
		return;
	mon_name_process(m->procs, &m->execs, pid, pidfd, ev);
	w->known = true;
	w->pid = ev->pid;
	w->host_pid = ev->host_pid;
	w->cgroup_id = ev->cgroup_id;
	cap_strlcpy(w->process, ev->process, sizeof(w->process));
}

/* One hive path touched by a record. */
static void hive_touched(struct monitor *m, const char *path, uint64_t mask,
			 const struct writer *w)
{
	char key[512];
	enum hive_kind kind;
	struct hive *h;

	if (!path[0] || !hive_lookup(path, key, sizeof(key), &kind))
		return;
	h = hive_get(m, path, key, kind);
	if (!h)
		return;
	if (w->known)
		h->writer = *w;
	if (mask & (FAN_CREATE | FAN_CLOSE_WRITE | FAN_DELETE | FAN_RENAME))
		(void)hive_refresh(m, h, w);
}

static void handle_record(struct monitor *m, const char *rec,
			  const struct fanotify_event_metadata *md)
{
	char path[PATH_MAX] = "", newpath[PATH_MAX] = "";
	size_t pos = md->metadata_len;
	int pidfd = MON_PIDFD_NONE;
	struct writer w = { 0 };

	if (md->mask & FAN_Q_OVERFLOW) {
		m->st.reported++;
		m->st.lost++;
		if (m->cb.error)
			m->cb.error(m->cb.userdata, "registry", -ENOBUFS,
				    "fanotify queue overflow: hive changes are reported at stop");
		return;
	}
	while (pos + sizeof(struct fanotify_event_info_header) <= md->event_len) {
		const struct fanotify_event_info_header *hdr = (const void *)(rec + pos);
		if (hdr->len == 0 || hdr->len > md->event_len - pos)
			break;
		if (hdr->info_type == FAN_EVENT_INFO_TYPE_PIDFD &&
		    hdr->len >= sizeof(struct fanotify_event_info_pidfd))
			pidfd = ((const struct fanotify_event_info_pidfd *)(const void *)hdr)->pidfd;
		else if (!(md->mask & FAN_ONDIR) &&
			 hdr->info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME)
			record_path(m, (const void *)hdr, md->event_len - pos, false, newpath,
				    sizeof(newpath));
		else if (!(md->mask & FAN_ONDIR) &&
			 (hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
			  hdr->info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME))
			record_path(m, (const void *)hdr, md->event_len - pos,
				    (md->mask & FAN_OPEN_EXEC) != 0, path, sizeof(path));
		pos += hdr->len;
	}
	if (md->mask & FAN_ONDIR) {
		/* a directory moved: cached directory paths may be stale */
		if (md->mask & FAN_RENAME)
			rel_reset(m);
	} else if (md->mask & FAN_OPEN_EXEC) {
		if (path[0])
			exec_map_set(&m->execs, md->pid, path);
	} else if (path[0] || newpath[0]) {
		name_writer(m, md->pid, pidfd, &w);
		hive_touched(m, path, md->mask, &w);
		hive_touched(m, newpath, md->mask, &w);
	}
	if (pidfd >= 0)
		close(pidfd);
}

/* Closes the pidfd a record carries (records not handled). */
static void close_pidfd(const char *rec, const struct fanotify_event_metadata *md)
{
	size_t pos = md->metadata_len;
	while (pos + sizeof(struct fanotify_event_info_header) <= md->event_len) {
		const struct fanotify_event_info_header *hdr = (const void *)(rec + pos);
		if (hdr->len == 0 || hdr->len > md->event_len - pos)
			break;
		if (hdr->info_type == FAN_EVENT_INFO_TYPE_PIDFD &&
		    hdr->len >= sizeof(struct fanotify_event_info_pidfd)) {
			int pfd = ((const struct fanotify_event_info_pidfd *)(const void *)hdr)->pidfd;
			if (pfd >= 0)
				close(pfd);
		}
		pos += hdr->len;
	}
}

static void mr_record(void *ctx, const char *rec, const struct fanotify_event_metadata *md)
{
	struct monitor *m = ctx;
	if (md->vers == FANOTIFY_METADATA_VERSION && m->active)
		handle_record(m, rec, md);
	else
		close_pidfd(rec, md);
}

static int mr_dispatch(struct monitor *m)
{
	return mon_fan_read(m->fan_fd, m->buf, MR_BUF, mr_record, m);
}

/* ---- monitor_ops ---- */

static int mr_new(const struct monitor_target *target, struct proctable *procs,
		  const struct monitor_callbacks *cb, struct monitor **ret)
{
	const uint64_t mask = FAN_CREATE | FAN_DELETE | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_RENAME |
			      FAN_OPEN_EXEC | FAN_ONDIR;
	struct monitor *m;
	int r;

	if (!target || !target->upper_dir || target->root_fd < 0)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fan_fd = m->root_fd = -1;
	m->tgt = *target;
	m->procs = procs;
	if (cb)
		m->cb = *cb;
	m->buf = malloc(MR_BUF);
	if (!m->buf || exec_map_init(&m->execs) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	m->fan_fd = mon_fan_open(target->root_fd, mask, &m->root_fd, m->prefix, sizeof(m->prefix),
				 &m->prefix_len);
	if (m->fan_fd < 0) {
		r = m->fan_fd;
		goto fail;
	}
	*ret = m;
	return 0;
fail:
	mon_registry_ops.free(m);
	return r;
}

static void mr_free(struct monitor *m)
{
	if (!m)
		return;
	if (m->fan_fd >= 0)
		close(m->fan_fd);
	if (m->root_fd >= 0)
		close(m->root_fd);
	snaps_free(m);
	hives_free(m);
	free(m->hives);
	exec_map_done(&m->execs);
	free(m->buf);
	free(m);
}

static int mr_start(struct monitor *m)
{
	struct upper_diff *d = NULL;
	char key[512];
	enum hive_kind kind;
	int r;

	m->active = false;
	(void)mr_dispatch(m); /* discard what happened before the visit */
	snaps_free(m);
	hives_free(m);
	rel_reset(m);
	m->full_reported = false;
	m->live_events = 0;
	r = upper_diff_scan(m->tgt.upper_dir, m->tgt.lower_dir, &d);
	if (r < 0)
		return r;
	m->snaps = calloc(d->n ? d->n : 1, sizeof(*m->snaps));
	if (!m->snaps) {
		upper_diff_free(d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d->n; i++) {
		const struct upper_entry *e = &d->entries[i];
		if (e->kind == UPPER_DELETED || !S_ISREG(e->mode) ||
		    !hive_lookup(e->sandbox_path, key, sizeof(key), &kind))
			continue;
		struct snap *s = &m->snaps[m->n_snaps];
		s->path = strdup(e->sandbox_path);
		if (!s->path)
			break;
		read_host(m->tgt.upper_dir, e->sandbox_path, kind_max(kind), &s->content);
		m->n_snaps++;
	}
	upper_diff_free(d);
	m->active = true;
	return 0;
}

/* Safety net for one hive path at stop(). */
static int stop_check(struct monitor *m, const char *path)
{
	char key[512];
	enum hive_kind kind;
	struct hive *h;
	struct blob before, after;
	int r;

	if (!hive_lookup(path, key, sizeof(key), &kind))
		return 0;
	h = hive_find(m, path);
	if (h)
		return hive_refresh(m, h, &h->writer);
	/* not followed live (the table was full or fanotify did not name it) */
	before_content(m, path, kind, &before);
	read_merged(m, path, kind_max(kind), &after);
	r = compare(m, kind, key, &before, &after, NULL);
	blob_free(&before);
	blob_free(&after);
	return r;
}

static int mr_stop(struct monitor *m)
{
	struct upper_diff *d = NULL;
	int r = mr_dispatch(m);

	if (r < 0 && m->cb.error)
		m->cb.error(m->cb.userdata, "registry", r, "reading the fanotify queue failed");
	m->active = false;
	r = upper_diff_scan(m->tgt.upper_dir, m->tgt.lower_dir, &d);
	if (r < 0) {
		if (m->cb.error)
			m->cb.error(m->cb.userdata, "registry", r, "upper diff failed");
		return r;
	}
	for (size_t i = 0; i < d->n && r >= 0; i++) {
		const struct upper_entry *e = &d->entries[i];
		if (e->kind != UPPER_DELETED && !S_ISREG(e->mode))
			continue;
		r = stop_check(m, e->sandbox_path);
	}
	/* set-up hive files the visit removed leave no whiteout */
	for (size_t i = 0; i < m->n_snaps && r >= 0; i++)
		if (!upper_diff_find(d, m->snaps[i].path))
			r = stop_check(m, m->snaps[i].path);
	/* files followed live that are no longer in the upper layer */
	for (size_t i = 0; i < m->n_hives && r >= 0; i++)
		if (!upper_diff_find(d, m->hives[i].path) && !snap_find(m, m->hives[i].path))
			r = hive_refresh(m, &m->hives[i], &m->hives[i].writer);
	upper_diff_free(d);
	return r;
}

static int mr_fd(struct monitor *m)
{
	return m->fan_fd;
}

static void mr_stats(struct monitor *m, struct monitor_stats *ret)
{
	*ret = m->st;
}

uint64_t mon_registry_live_events(struct monitor *m)
{
	return m->live_events;
}

const struct monitor_ops mon_registry_ops = {
	.name = "registry",
	.new = mr_new,
	.free = mr_free,
	.start = mr_start,
	.stop = mr_stop,
	.fd = mr_fd,
	.dispatch = mr_dispatch,
	.stats = mr_stats,
};
