/* export.c - capture-server export: a run's final logs, written from the
 * store.
 *
 * In a shared run every server writes the safe/malicious/error lines of the
 * URLs it finished to its own logs; the store keeps each final line as it
 * was rendered (store_output_add), so the run's complete logs can be
 * written again anywhere, byte for byte what the servers wrote, in the
 * order the URLs were finished.  Also the way to get the logs of a server
 * whose host is gone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "output.h"
#include "server.h"
#include "store.h"

static const char *const final_logs[] = {"safe.log", "malicious.log", "error.log"};

struct export
{
	struct output *out;
	uint64_t lines;
	int err;
};

static int export_line(void *ud, int64_t id, int log, const char *line)
{
	struct export *x = ud;
	int r = output_final_line(x->out, log, line);
	if (r < 0) {
		x->err = r;
		return r;
	}
	x->lines++;
	return 0;
}

/* Refuses to mix a run into logs that already hold lines (an export made
 * before is not appended to). */
static int check_empty(const char *outdir)
{
	for (size_t i = 0; i < ELEMENTSOF(final_logs); i++) {
		char path[PATH_MAX];
		struct stat st;
		if (xsnprintf(path, sizeof(path), "%s/log/%s", outdir, final_logs[i]) < 0)
			return -ENAMETOOLONG;
		if (stat(path, &st) == 0 && st.st_size > 0) {
			log_warnx("export: %s exists already: remove it to export again", path);
			return -EEXIST;
		}
	}
	return 0;
}

int server_export(const struct server_config *cfg, const char *store_dir, int64_t run)
{
	struct store *st = NULL;
	char path[PATH_MAX], err[512] = "";
	int r = store_sqlite_path(cfg, store_dir, path, sizeof(path));
	if (r < 0 || (r = store_open_err(cfg, path, err, sizeof(err), &st)) < 0)
		return log_error_errno(r, "export: cannot open the store%s%s", err[0] ? ": " : "",
				       err);
	if (run <= 0 && (r = store_operation_last(st, &run)) < 0) {
		store_close(st);
		return log_error_errno(r, "export: no run in the store");
	}
	char outdir[PATH_MAX];
	if ((r = xsnprintf(outdir, sizeof(outdir), "%s/export", store_dir)) < 0 ||
	    (mkdir(outdir, 0755) < 0 && errno != EEXIST && (r = negative_errno()) < 0) ||
	    (r = xsnprintf(outdir, sizeof(outdir), "%s/export/run-%lld", store_dir,
			   (long long)run)) < 0 ||
	    (r = check_empty(outdir)) < 0) {
		store_close(st);
		return r;
	}
	struct export x = {0};
	r = output_open(outdir, &x.out);
	if (r < 0) {
		store_close(st);
		return log_error_errno(r, "export: cannot create %s/log", outdir);
	}
	r = store_final_lines(st, run, export_line, &x);
	output_close(x.out);
	store_close(st);
	if (r < 0)
		return log_error_errno(x.err ? x.err : r, "export: run %lld", (long long)run);
	log_info("export: run %lld: %llu final lines written to %s/log", (long long)run,
		 (unsigned long long)x.lines, outdir);
	return 0;
}
