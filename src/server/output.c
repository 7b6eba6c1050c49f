/* output.c - see output.h for the design. */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "escape.h"
#include "macro.h"
#include "proto.h"

enum { F_PROGRESS, F_SAFE, F_MALICIOUS, F_ERROR, F_STATS, F_MAX };

static const char *const file_names[F_MAX] = {"progress.log", "safe.log", "malicious.log",
                                               "error.log", "stats.log"};

struct output {
	char *dir;
	FILE *f[F_MAX];
	unsigned long serial; /* keeps generated names unique within a second */
};

static int mkdir_p1(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

void output_close(struct output *o)
{
	if (!o)
		return;
	for (int i = 0; i < F_MAX; i++)
		if (o->f[i])
			fclose(o->f[i]);
	free(o->dir);
	free(o);
}

int output_open(const char *outdir, struct output **ret)
{
	char p[PATH_MAX];
	int r = mkdir_p1(outdir);
	if (r < 0)
		return r;
	struct output *o = calloc(1, sizeof(*o));
	if (!o || !(o->dir = strdup(outdir))) {
		free(o);
		return -ENOMEM;
	}
	static const char *const subdirs[] = {"log", "reports"};
	for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
		if ((r = xsnprintf(p, sizeof(p), "%s/%s", outdir, subdirs[i])) < 0 ||
		    (r = mkdir_p1(p)) < 0) {
			output_close(o);
			return r;
		}
	}
	for (int i = 0; i < F_MAX; i++) {
		if ((r = xsnprintf(p, sizeof(p), "%s/log/%s", outdir, file_names[i])) < 0) {
			output_close(o);
			return r;
		}
		o->f[i] = fopen(p, "ae");
		if (!o->f[i]) {
			r = negative_errno();
			output_close(o);
			return r;
		}
		setvbuf(o->f[i], NULL, _IOLBF, 0);
	}
	*ret = o;
	return 0;
}

/* "dd/MM/yyyy HH:mm:ss.S" like the original's SimpleDateFormat. */
static void now_string(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%d/%m/%Y %H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%ld", ts.tv_nsec / 1000000);
}

/* Writes the six original columns to f. */
static int write_row(FILE *f, const char *status, const char *group, const char *url,
                     const char *program, const char *time)
{
	char date[64];
	now_string(date, sizeof(date));
	const char *fields[] = {date, status, group, url, program, time};
	for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
		_cleanup_free_ char *q = NULL;
		int r = cap_csv_quote(fields[i], &q);
		if (r < 0)
			return r;
		fputs(q, f);
		fputc(i + 1 < ELEMENTSOF(fields) ? ',' : '\n', f);
	}
	return ferror(f) ? -EIO : 0;
}

static int write_url_row(FILE *f, const char *status, uint32_t group, const char *url,
                         const char *program, uint32_t time)
{
	char g[16], t[16];
	snprintf(g, sizeof(g), "%u", group);
	snprintf(t, sizeof(t), "%u", time);
	return write_row(f, status, g, url, program, t);
}

int output_progress(struct output *o, const char *status, uint32_t group, const char *url,
                    const char *program, uint32_t time)
{
	return write_url_row(o->f[F_PROGRESS], status, group, url, program, time);
}

int output_final(struct output *o, enum sched_verdict v, uint32_t err, uint32_t minor,
                 uint32_t group, const char *url, const char *program, uint32_t time)
{
	if (v == VERDICT_BENIGN)
		return write_url_row(o->f[F_SAFE], "benign", group, url, program, time);
	if (v == VERDICT_MALICIOUS)
		return write_url_row(o->f[F_MALICIOUS], "malicious", group, url, program, time);
	char status[96];
	const char *name = cap_error_code_name(err);
	snprintf(status, sizeof(status), "error:%s-%u", name ? name : "UNKNOWN", minor);
	int r = write_url_row(o->f[F_ERROR], status, group, url, program, time);
	int r2 = write_url_row(o->f[F_PROGRESS], status, group, url, program, time);
	return r < 0 ? r : r2;
}

int output_invalid_url(struct output *o, unsigned long lineno, const char *text)
{
	char status[64], cut[1025];
	snprintf(status, sizeof(status), "error:INVALID_URL-%lu", lineno);
	cap_strlcpy(cut, text, sizeof(cut));
	return write_row(o->f[F_ERROR], status, "nogroup", cut, "unkown", "unknown");
}

/* "log/<escaped key>_<ddMMyyyy_HHmmss>[-N]<suffix>", unique within the run. */
static int make_name(struct output *o, const char *key, const char *suffix, char **ret_rel)
{
	_cleanup_free_ char *esc = NULL;
	int r = cap_url_to_filename(key, 160, &esc);
	if (r < 0)
		return r;
	char date[32];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%d%m%Y_%H%M%S", &tm);
	char *rel = NULL;
	if (asprintf(&rel, "log/%s_%s-%lu%s", esc, date, o->serial++, suffix) < 0)
		return -ENOMEM;
	*ret_rel = rel;
	return 0;
}

int output_event_log(struct output *o, const char *key, const char *const *lines, size_t n,
                     char **ret_name)
{
	_cleanup_free_ char *rel = NULL;
	char abs[PATH_MAX];
	int r = make_name(o, key, ".log", &rel);
	if (r < 0 || (r = xsnprintf(abs, sizeof(abs), "%s/%s", o->dir, rel)) < 0)
		return r;
	_cleanup_fclose_ FILE *f = fopen(abs, "wxe");
	if (!f)
		return negative_errno();
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", lines[i]);
	if (fflush(f) != 0 || ferror(f))
		return -EIO;
	if (ret_name)
		*ret_name = TAKE_PTR(rel);
	return 0;
}

int output_upload_name(struct output *o, const char *key, char **ret_rel, char **ret_abs)
{
	_cleanup_free_ char *rel = NULL;
	char *abs = NULL;
	int r = make_name(o, key, ".zip", &rel);
	if (r < 0)
		return r;
	if (asprintf(&abs, "%s/%s", o->dir, rel) < 0)
		return -ENOMEM;
	*ret_rel = TAKE_PTR(rel);
	*ret_abs = abs;
	return 0;
}

static json_object *string_array(const char *const *v, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; a && i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

int output_report(struct output *o, const char *url, const char *program, enum sched_verdict v,
                  uint32_t err, enum sched_algorithm alg, uint32_t group, double started,
                  double finished, const char *const *events, size_t n_events,
                  const char *const *evidence, size_t n_evidence)
{
	static const char *const verdicts[] = {"benign", "malicious", "error"};
	json_object *j = json_object_new_object();
	if (!j)
		return -ENOMEM;
	json_object_object_add(j, "url", json_object_new_string(url));
	json_object_object_add(j, "program", json_object_new_string(program));
	json_object_object_add(j, "verdict", json_object_new_string(verdicts[v]));
	if (v == VERDICT_ERROR) {
		const char *name = cap_error_code_name(err);
		json_object_object_add(j, "error", json_object_new_string(name ? name : "UNKNOWN"));
	}
	json_object_object_add(j, "algorithm", json_object_new_string(sched_algorithm_to_string(alg)));
	json_object_object_add(j, "group", json_object_new_int64(group));
	json_object_object_add(j, "started", json_object_new_double(started));
	json_object_object_add(j, "finished", json_object_new_double(finished));
	json_object_object_add(j, "events", string_array(events, n_events));
	json_object_object_add(j, "evidence", string_array(evidence, n_evidence));

	_cleanup_free_ char *name = NULL;
	char abs[PATH_MAX];
	int r = cap_url_to_filename(url, 160, &name);
	if (r >= 0)
		r = xsnprintf(abs, sizeof(abs), "%s/reports/%s-%lu.json", o->dir, name, o->serial++);
	if (r >= 0 && json_object_to_file_ext(abs, j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) < 0)
		r = -EIO;
	json_object_put(j);
	return r;
}

int output_stats(struct output *o, const struct output_stats *s)
{
	char date[64];
	now_string(date, sizeof(date));
	fprintf(o->f[F_STATS],
	        "\"%s\",\"visiting\",\"%llu\",\"visited\",\"%llu\",\"safe\",\"%llu\","
	        "\"malicious\",\"%llu\",\"urlError\",\"%llu\",\"vmRevert\",\"%llu\","
	        "\"clientInactivity\",\"%llu\",\"vmStalled\",\"%llu\",\"avgVisitingTime\","
	        "\"%.1f\",\"visitedUrlsPerDay\",\"%.0f\"\n",
	        date, (unsigned long long)s->visiting, (unsigned long long)s->visited,
	        (unsigned long long)s->safe, (unsigned long long)s->malicious,
	        (unsigned long long)s->url_error, (unsigned long long)s->vm_revert,
	        (unsigned long long)s->client_inactivity, (unsigned long long)s->vm_stalled,
	        s->avg_visit_seconds, s->visited_urls_per_day);
	return ferror(o->f[F_STATS]) ? -EIO : 0;
}
