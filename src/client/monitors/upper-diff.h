/* upper-diff.h - the end-of-visit scan of the sandbox's overlay upper dir
 * (issue 4 item 3, linux-mechanisms-measured.md §3).
 *
 * Owns the classification of what a visit changed on disk, independent of
 * fanotify: a whiteout (char device 0/0) = deleted; a directory with
 * trusted.overlay.opaque=y over an existing lower dir = replaced dir; any
 * other entry = created (nothing in the lower dir at that path) or
 * modified (a lower entry exists; includes attribute-only copy-ups and
 * mmap writes, which fanotify does not report).  Directories that exist
 * in the lower layer and were only copied up to hold changed children are
 * not entries themselves.  The result is also the list of files for
 * evidence collection: each entry has its sandbox path and, unless
 * deleted, its host path in the upper dir.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

enum upper_kind {
	UPPER_CREATED = 0,
	UPPER_MODIFIED,
	UPPER_DELETED,
	UPPER_REPLACED_DIR, /* opaque dir over a lower dir: old content gone */
};

struct upper_entry {
	enum upper_kind kind;
	mode_t mode;	    /* st_mode of the upper entry (0 for deleted) */
	off_t size;	    /* size of the upper entry (0 for deleted) */
	struct timespec mtime; /* st_mtim of the upper entry (0 for deleted) */
	char *sandbox_path; /* "/etc/x" as seen inside the sandbox */
	char *host_path;    /* path in the upper dir; NULL for deleted */
};

struct upper_diff {
	struct upper_entry *entries; /* sorted by sandbox_path */
	size_t n;
	size_t skipped; /* entries past the depth/count bounds (not listed) */
};

/* "created", "modified", "deleted", "replaced-dir"; NULL if out of range. */
const char *upper_kind_name(enum upper_kind k);

/* Scans upper_dir against lower_dir (the overlay's lower layer, "/" is
 * fine).  Bounded: depth <= 128, at most 1,000,000 entries (the rest are
 * counted in skipped).  Returns 0 and *ret (free with upper_diff_free) or
 * -errno if upper_dir cannot be opened. */
int upper_diff_scan(const char *upper_dir, const char *lower_dir, struct upper_diff **ret);

/* Finds the entry for a sandbox path (binary search); NULL if none. */
const struct upper_entry *upper_diff_find(const struct upper_diff *d, const char *sandbox_path);

/* Frees a scan result; NULL is fine. */
void upper_diff_free(struct upper_diff *d);
