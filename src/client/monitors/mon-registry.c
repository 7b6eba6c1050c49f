/* mon-registry.c - configuration hives as a registry (see mon-registry.h).
 *
 * Windows' registry has no single Linux counterpart; what malware changes
 * to persist or escalate lives in a known set of text files.  This monitor
 * owns the mapping path -> key (mon_registry_key) and the comparison of a
 * hive file's lines before and after the visit.  It works at stop() from
 * the overlay upper diff: "before" = the file's content at start() if the
 * upper layer already held it then (sandbox set-up), else the lower
 * layer's file; "after" = the upper file.  Values are the file's
 * non-blank, non-comment lines (as a multiset, order ignored); a unit or
 * .desktop file's "Key=Value" lines and section headers are values too.
 * Bounds: 256 KiB per file, 4,096 lines; longer files are compared on
 * their first 256 KiB.  The writer is not known at stop(): process is
 * "unknown" (the file monitor's events name it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "mon-registry.h"
#include "upper-diff.h"

#define HIVE_FILE_MAX (256 * 1024)
#define HIVE_LINES_MAX 4096

struct snap {
	char *path;    /* sandbox path */
	char *content; /* NUL-terminated, bounded */
};

struct monitor {
	struct monitor_target tgt;
	struct monitor_callbacks cb;
	struct monitor_stats st;
	struct snap *snaps; /* hive files in the upper layer at start() */
	size_t n_snaps;
	struct cap_event ev;
};

struct prefix_map {
	const char *prefix; /* sandbox path prefix; "~/" = /root/ or /home/NAME/ */
	const char *key;    /* key prefix; the rest of the path is appended */
	bool exact;	    /* the prefix is a whole file */
};

static const struct prefix_map hive_map[] = {
	{ "/var/spool/cron/crontabs/", "cron:/", false },
	{ "/etc/crontab", "cron:/etc/crontab", true },
	{ "/etc/cron.d/", "cron:/etc/cron.d/", false },
	{ "/etc/systemd/system/", "systemd:/system/", false },
	{ "/etc/systemd/user/", "systemd:/user-global/", false },
	{ "/usr/lib/systemd/system/", "systemd:/vendor/", false },
	{ "/usr/lib/systemd/user/", "systemd:/vendor-user/", false },
	{ "~/.config/systemd/user/", "systemd:/user/", false },
	{ "/etc/xdg/autostart/", "autostart:/system/", false },
	{ "~/.config/autostart/", "autostart:/user/", false },
	{ "~/.bashrc", "shell:/user/.bashrc", true },
	{ "~/.profile", "shell:/user/.profile", true },
	{ "~/.bash_profile", "shell:/user/.bash_profile", true },
	{ "~/.bash_login", "shell:/user/.bash_login", true },
	{ "/etc/profile", "shell:/etc/profile", true },
	{ "/etc/profile.d/", "shell:/etc/profile.d/", false },
	{ "/etc/bash.bashrc", "shell:/etc/bash.bashrc", true },
	{ "/etc/ld.so.preload", "ldpreload:/etc/ld.so.preload", true },
	{ "~/.ssh/authorized_keys", "ssh:/user/authorized_keys", true },
	{ "/etc/sudoers", "sudoers:/etc/sudoers", true },
	{ "/etc/sudoers.d/", "sudoers:/etc/sudoers.d/", false },
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

bool mon_registry_key(const char *path, char *buf, size_t len)
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
		return snprintf(buf, len, "%s%s", pm->key, pm->exact ? "" : p + pl) < (int)len;
	}
	return false;
}

/* Reads at most HIVE_FILE_MAX bytes of dir/rel; NULL if absent. */
static char *read_hive(const char *dir, const char *rel)
{
	char path[8192];
	_cleanup_close_ int fd = -1;
	char *buf;
	size_t got = 0;

	if (!dir || snprintf(path, sizeof(path), "%s%s", dir, rel) >= (int)sizeof(path))
		return NULL;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(HIVE_FILE_MAX + 1);
	if (!buf)
		return NULL;
	while (got < HIVE_FILE_MAX) {
		ssize_t n = read(fd, buf + got, HIVE_FILE_MAX - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return buf;
}

/* Splits content (modified) into sorted significant lines. */
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

static void deliver(struct monitor *m, const char *action, const char *key, const char *value)
{
	cap_event_init(&m->ev, CAP_EV_REGISTRY, action, "unknown", key, value);
	m->st.reported++;
	m->st.delivered++;
	if (m->cb.event)
		m->cb.event(m->cb.userdata, &m->ev);
}

/* Emits the key-level difference between two contents (NULL = absent). */
static int compare(struct monitor *m, const char *key, char *before, char *after)
{
	_cleanup_free_ char **a = calloc(HIVE_LINES_MAX, sizeof(char *));
	_cleanup_free_ char **b = calloc(HIVE_LINES_MAX, sizeof(char *));
	size_t na, nb, i = 0, j = 0;

	if (!a || !b)
		return -ENOMEM;
	if (!before && after)
		deliver(m, "CreateKey", key, "-1");
	na = before ? split_lines(before, a) : 0;
	nb = after ? split_lines(after, b) : 0;
	qsort(a, na, sizeof(*a), cmp_str);
	qsort(b, nb, sizeof(*b), cmp_str);
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i], b[j]);
		if (c == 0) {
			i++, j++;
		} else if (c < 0) {
			deliver(m, "DeleteValueKey", key, a[i++]);
		} else {
			deliver(m, "SetValueKey", key, b[j++]);
		}
	}
	if (before && !after)
		deliver(m, "DeleteKey", key, "-1");
	return 0;
}

static const struct snap *snap_find(const struct monitor *m, const char *path)
{
	for (size_t i = 0; i < m->n_snaps; i++)
		if (strcmp(m->snaps[i].path, path) == 0)
			return &m->snaps[i];
	return NULL;
}

static void snaps_free(struct monitor *m)
{
	for (size_t i = 0; i < m->n_snaps; i++) {
		free(m->snaps[i].path);
		free(m->snaps[i].content);
	}
	free(m->snaps);
	m->snaps = NULL;
	m->n_snaps = 0;
}

static int mr_new(const struct monitor_target *target, struct proctable *procs,
		  const struct monitor_callbacks *cb, struct monitor **ret)
{
	struct monitor *m;
	(void)procs;
	if (!target || !target->upper_dir)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->tgt = *target;
	if (cb)
		m->cb = *cb;
	*ret = m;
	return 0;
}

static void mr_free(struct monitor *m)
{
	if (!m)
		return;
	snaps_free(m);
	free(m);
}

static int mr_start(struct monitor *m)
{
	struct upper_diff *d = NULL;
	char key[512];
	int r;

	snaps_free(m);
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
		    !mon_registry_key(e->sandbox_path, key, sizeof(key)))
			continue;
		struct snap *s = &m->snaps[m->n_snaps];
		s->path = strdup(e->sandbox_path);
		s->content = read_hive(m->tgt.upper_dir, e->sandbox_path);
		if (!s->path) {
			free(s->content);
			break;
		}
		m->n_snaps++;
	}
	upper_diff_free(d);
	return 0;
}

static int mr_stop(struct monitor *m)
{
	struct upper_diff *d = NULL;
	char key[512];
	int r = upper_diff_scan(m->tgt.upper_dir, m->tgt.lower_dir, &d);

	if (r < 0) {
		if (m->cb.error)
			m->cb.error(m->cb.userdata, "registry", r, "upper diff failed");
		return r;
	}
	for (size_t i = 0; i < d->n && r >= 0; i++) {
		const struct upper_entry *e = &d->entries[i];
		if (!mon_registry_key(e->sandbox_path, key, sizeof(key)))
			continue;
		if (e->kind != UPPER_DELETED && !S_ISREG(e->mode))
			continue;
		const struct snap *s = snap_find(m, e->sandbox_path);
		_cleanup_free_ char *before = s ? (s->content ? strdup(s->content) : NULL)
						: read_hive(m->tgt.lower_dir, e->sandbox_path);
		_cleanup_free_ char *after = e->kind == UPPER_DELETED
						     ? NULL
						     : read_hive(m->tgt.upper_dir, e->sandbox_path);
		r = compare(m, key, before, after);
	}
	/* hive files the set-up wrote and the visit removed leave no whiteout */
	for (size_t i = 0; i < m->n_snaps && r >= 0; i++) {
		if (upper_diff_find(d, m->snaps[i].path) ||
		    !mon_registry_key(m->snaps[i].path, key, sizeof(key)))
			continue;
		_cleanup_free_ char *before = m->snaps[i].content ? strdup(m->snaps[i].content) : NULL;
		_cleanup_free_ char *lower = read_hive(m->tgt.lower_dir, m->snaps[i].path);
		r = compare(m, key, before ? before : lower, lower && before ? lower : NULL);
	}
	upper_diff_free(d);
	return r;
}

static int mr_fd(struct monitor *m)
{
	(void)m;
	return -1;
}

static int mr_dispatch(struct monitor *m)
{
	(void)m;
	return 0;
}

static void mr_stats(struct monitor *m, struct monitor_stats *ret)
{
	*ret = m->st;
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
