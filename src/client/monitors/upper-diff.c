/* upper-diff.c - end-of-visit overlay upper-dir scan (see upper-diff.h).
 *
 * A depth-first walk with openat()/fdopendir(), carrying the matching
 * lower-dir fd (or -1 once below a created or opaque directory) so that
 * each "does the lower entry exist" test is one fstatat() relative to an
 * open directory.  Paths are built in one fixed buffer (PATH_MAX) and
 * entries that would not fit are counted as skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "macro.h"
#include "upper-diff.h"

#define UD_DEPTH_MAX 128
#define UD_ENTRIES_MAX 1000000

struct walk {
	struct upper_diff *d;
	size_t cap;
	const char *upper; /* host path of the upper dir, no trailing '/' */
	char path[PATH_MAX]; /* sandbox path of the current directory */
};

const char *upper_kind_name(enum upper_kind k)
{
	static const char *const names[] = {
		[UPPER_CREATED] = "created",
		[UPPER_MODIFIED] = "modified",
		[UPPER_DELETED] = "deleted",
		[UPPER_REPLACED_DIR] = "replaced-dir",
	};
	if ((unsigned)k >= ELEMENTSOF(names))
		return NULL;
	return names[k];
}

static int add_entry(struct walk *w, enum upper_kind kind, const struct stat *st,
		     const char *sandbox_path)
{
	struct upper_entry *e;
	size_t hl;

	if (w->d->n >= UD_ENTRIES_MAX) {
		w->d->skipped++;
		return 0;
	}
	if (w->d->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		struct upper_entry *nv = realloc(w->d->entries, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		w->d->entries = nv;
		w->cap = nc;
	}
	e = &w->d->entries[w->d->n];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->sandbox_path = strdup(sandbox_path);
	if (!e->sandbox_path)
		return -ENOMEM;
	if (kind != UPPER_DELETED) {
		e->mode = st->st_mode;
		e->size = st->st_size;
		e->mtime = st->st_mtim;
		hl = strlen(w->upper) + strlen(sandbox_path) + 1;
		e->host_path = malloc(hl);
		if (!e->host_path) {
			free(e->sandbox_path);
			return -ENOMEM;
		}
		memcpy(e->host_path, w->upper, strlen(w->upper));
		memcpy(e->host_path + strlen(w->upper), sandbox_path, strlen(sandbox_path) + 1);
	}
	w->d->n++;
	return 0;
}

static bool is_opaque(int fd)
{
	char v[4];
	ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v));
	return n >= 1 && v[0] == 'y';
}

static int walk_dir(struct walk *w, int dfd, int lfd, unsigned depth);

/* A directory entry (w->path): classify it and descend. */
static int walk_subdir(struct walk *w, int dfd, int lfd, const char *name, const struct stat *st,
		       bool lower_is_dir, bool in_lower, unsigned depth)
{
	_cleanup_close_ int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int clfd = -1;
	int r = 0;

	if (cfd < 0)
		return 0; /* vanished or unreadable: nothing to list below it */
	if (lower_is_dir) {
		if (is_opaque(cfd))
			r = add_entry(w, UPPER_REPLACED_DIR, st, w->path);
		else
			clfd = openat(lfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	} else {
		r = add_entry(w, in_lower ? UPPER_MODIFIED : UPPER_CREATED, st, w->path);
	}
	if (r < 0)
		return r;
	if (depth + 1 >= UD_DEPTH_MAX) {
		w->d->skipped++;
		return 0;
	}
	return walk_dir(w, TAKE_FD(cfd), clfd, depth + 1);
}

/* Handles one name inside the directory at w->path (length plen). */
static int walk_one(struct walk *w, int dfd, int lfd, const char *name, size_t plen,
		    unsigned depth)
{
	struct stat st, lst;
	bool in_lower;
	size_t nl = strlen(name);
	int r = 0;

	if (plen + 1 + nl + 1 > sizeof(w->path)) {
		w->d->skipped++;
		return 0;
	}
	w->path[plen] = '/';
	memcpy(w->path + plen + 1, name, nl + 1);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto out; /* vanished: nothing to report */
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0) {
		r = add_entry(w, UPPER_DELETED, &st, w->path);
		goto out;
	}
	in_lower = lfd >= 0 && fstatat(lfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0;
	if (!S_ISDIR(st.st_mode)) {
		r = add_entry(w, in_lower ? UPPER_MODIFIED : UPPER_CREATED, &st, w->path);
		goto out;
	}
	r = walk_subdir(w, dfd, lfd, name, &st, in_lower && S_ISDIR(lst.st_mode), in_lower,
			depth);
out:
	w->path[plen] = '\0';
	return r;
}

/* Walks directory dfd (consumed) whose sandbox path is w->path. */
static int walk_dir(struct walk *w, int dfd, int lfd, unsigned depth)
{
	DIR *dir = fdopendir(dfd);
	struct dirent *de;
	size_t plen = strlen(w->path);
	int r = 0;

	if (!dir) {
		r = -errno;
		close(dfd);
		return r;
	}
	if (plen == 1) /* root "/" */
		plen = 0;
	while ((de = readdir(dir))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = walk_one(w, dirfd(dir), lfd, de->d_name, plen, depth);
		if (r < 0)
			break;
	}
	if (plen == 0)
		w->path[1] = '\0';
	closedir(dir);
	return r;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct upper_entry *)a)->sandbox_path,
		      ((const struct upper_entry *)b)->sandbox_path);
}

int upper_diff_scan(const char *upper_dir, const char *lower_dir, struct upper_diff **ret)
{
	_cleanup_free_ struct walk *w = calloc(1, sizeof(*w));
	_cleanup_close_ int lfd = -1;
	char upper[PATH_MAX];
	size_t ul;
	int ufd, r;

	if (!w)
		return -ENOMEM;
	ul = strlen(upper_dir);
	if (ul == 0 || ul >= sizeof(upper))
		return -EINVAL;
	memcpy(upper, upper_dir, ul + 1);
	while (ul > 1 && upper[ul - 1] == '/')
		upper[--ul] = '\0';
	ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ufd < 0)
		return -errno;
	if (lower_dir)
		lfd = open(lower_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	w->d = calloc(1, sizeof(*w->d));
	if (!w->d) {
		close(ufd);
		return -ENOMEM;
	}
	w->upper = upper;
	w->path[0] = '/';
	w->path[1] = '\0';
	r = walk_dir(w, ufd, lfd, 0);
	if (r < 0) {
		upper_diff_free(w->d);
		return r;
	}
	if (w->d->n > 1)
		qsort(w->d->entries, w->d->n, sizeof(w->d->entries[0]), cmp_entry);
	*ret = w->d;
	return 0;
}

const struct upper_entry *upper_diff_find(const struct upper_diff *d, const char *sandbox_path)
{
	size_t lo = 0, hi;
	if (!d || !sandbox_path)
		return NULL;
	hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(d->entries[mid].sandbox_path, sandbox_path);
		if (c == 0)
			return &d->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void upper_diff_free(struct upper_diff *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->entries[i].sandbox_path);
		free(d->entries[i].host_path);
	}
	free(d->entries);
	free(d);
}
