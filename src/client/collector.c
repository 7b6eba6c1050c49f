/* collector.c - the evidence zip of a visit: modified files (from the
 * overlay's upper layer, never through paths the sandbox could redirect),
 * the packet capture and the screenshots.  libarchive writes the zip.
 *
 * Files inside the zip are named "files/<sandbox path>", "capture.pcap" and
 * "screenshots/<name>", plus "deleted.txt" (the files and folders the visit
 * deleted, as "deleted<TAB>path" / "replaced-dir<TAB>path").  Only regular files are stored; a file is opened
 * with O_NOFOLLOW below the upper dir (the sandbox can create symlinks
 * there, and must not make us read host files).  At most max_bytes of
 * modified files are stored; what does not fit is listed in "skipped.txt".
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "monitors/upper-diff.h"

static int add_fd(struct archive *ar, const char *name, int fd, const struct stat *st)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, st->st_mode & 0777);
	archive_entry_set_size(e, st->st_size);
	archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	int r = 0;
	if (archive_write_header(ar, e) != ARCHIVE_OK) {
		log_warnx("collector: %s: %s", name, archive_error_string(ar));
		r = -EIO;
		goto out;
	}
	char buf[65536];
	off_t left = st->st_size;
	while (left > 0) {
		ssize_t n = read(fd, buf, (size_t)MIN((off_t)sizeof(buf), left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* shrank meanwhile: the header's size is padded by libarchive */
		if (archive_write_data(ar, buf, (size_t)n) < 0) {
			r = -EIO;
			goto out;
		}
		left -= n;
	}
out:
	archive_entry_free(e);
	return r;
}

static int add_path(struct archive *ar, const char *name, const char *path, uint64_t *budget)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (budget) {
		if ((uint64_t)st.st_size > *budget)
			return -EFBIG;
		*budget -= (uint64_t)st.st_size;
	}
	return add_fd(ar, name, fd, &st);
}

static int add_text(struct archive *ar, const char *name, const char *text)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)strlen(text));
	int r = archive_write_header(ar, e) == ARCHIVE_OK &&
				archive_write_data(ar, text, strlen(text)) >= 0
			? 0
			: -EIO;
	archive_entry_free(e);
	return r;
}

int collector_zip(const char *zip_path, const char *upper_dir, const char *lower_dir, bool files,
		  const char *pcap, const char *const *extra, uint64_t max_bytes)
{
	struct archive *ar = archive_write_new();
	if (!ar)
		return -ENOMEM;
	int stored = 0, r = 0;
	struct upper_diff *d = NULL;
	char *skipped = NULL, *deleted = NULL;
	size_t skipped_len = 0, deleted_len = 0;
	FILE *sk = open_memstream(&skipped, &skipped_len);
	FILE *dl = open_memstream(&deleted, &deleted_len);
	if (!sk || !dl || archive_write_set_format_zip(ar) != ARCHIVE_OK ||
	    archive_write_open_filename(ar, zip_path) != ARCHIVE_OK) {
		log_warnx("collector: %s: %s", zip_path, archive_error_string(ar));
		r = -EIO;
		goto out;
	}
	if (files && upper_dir) {
		r = upper_diff_scan(upper_dir, lower_dir, &d);
		if (r < 0) {
			log_error_errno(r, "collector: upper diff of %s", upper_dir);
			r = 0; /* the pcap and screenshots still go in */
		}
		uint64_t budget = max_bytes;
		for (size_t i = 0; d && i < d->n; i++) {
			const struct upper_entry *u = &d->entries[i];
			if (u->kind == UPPER_DELETED || u->kind == UPPER_REPLACED_DIR)
				fprintf(dl, "%s\t%s\n", upper_kind_name(u->kind), u->sandbox_path);
			if (!u->host_path || !S_ISREG(u->mode) ||
			    (u->kind != UPPER_CREATED && u->kind != UPPER_MODIFIED))
				continue;
			char name[PATH_MAX + 8];
			snprintf(name, sizeof(name), "files%s", u->sandbox_path);
			int q = add_path(ar, name, u->host_path, &budget);
			if (q == 0)
				stored++;
			else
				fprintf(sk, "%s\t%s\n", u->sandbox_path, strerror(-q));
		}
	}
	if (pcap && add_path(ar, "capture.pcap", pcap, NULL) == 0)
		stored++;
	for (size_t i = 0; extra && extra[i]; i++) {
		const char *b = strrchr(extra[i], '/');
		char name[PATH_MAX];
		snprintf(name, sizeof(name), "screenshots/%s", b ? b + 1 : extra[i]);
		if (add_path(ar, name, extra[i], NULL) == 0)
			stored++;
	}
	fflush(sk);
	if (skipped_len > 0)
		add_text(ar, "skipped.txt", skipped);
	fflush(dl);
	if (deleted_len > 0)
		add_text(ar, "deleted.txt", deleted); /* deleted files have no content to keep */
	if (archive_write_close(ar) != ARCHIVE_OK) {
		log_warnx("collector: %s: %s", zip_path, archive_error_string(ar));
		r = -EIO;
	}
out:
	if (sk)
		fclose(sk);
	if (dl)
		fclose(dl);
	free(skipped);
	free(deleted);
	upper_diff_free(d);
	archive_write_free(ar);
	return r < 0 ? r : stored;
}
