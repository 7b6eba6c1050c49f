/* output.c - see output.h for the design. */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "escape.h"
#include "frame.h"
#include "macro.h"
#include "proto.h"

enum { F_PROGRESS, F_SAFE, F_MALICIOUS, F_ERROR, F_STATS, F_MAX };
_Static_assert(F_MAX == OUTPUT_LOGS, "output.h: OUTPUT_LOGS");

static const char *const file_names[F_MAX] = {"progress.log", "safe.log", "malicious.log",
                                               "error.log", "stats.log"};

#define LOG_BUF (1u << 20)    /* stdio buffer per log; lines never span a flush */
#define REPORT_QUEUE 4096     /* reports waiting for the writer thread */

struct report_job {
	int64_t id; /* the URL's store id: reported back once the file is written */
	char *name; /* file name inside reports/ */
	char *text;
	size_t len;
};

/* Reports are written by one thread (creating a file is the most expensive
 * step of a benign URL: docs/benchmarks.md); the loop only serialises. */
struct report_writer {
	pthread_t thread;
	bool running, stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* queue not empty, or stop */
	pthread_cond_t space; /* queue not full */
	struct report_job q[REPORT_QUEUE];
	size_t head, n;
	bool busy;       /* the thread is writing a job it took */
	int64_t *done;   /* ids of the reports written since the last take */
	size_t n_done, cap_done;
	int dirfd;
	unsigned long failed;
};

struct output {
	char *dir;
	FILE *f[F_MAX];
	size_t pending[F_MAX]; /* bytes written to f[i] since its last flush */
	unsigned long serial;  /* keeps generated names unique within a second */
	struct report_writer *rw;
};

/* excl: a new name (O_EXCL); otherwise a rewrite after a crash, which may
 * find the file partly written. */
static int write_report_file(int dirfd, const struct report_job *j, bool excl)
{
	int fd = openat(dirfd, j->name,
	                O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (excl ? O_EXCL : O_TRUNC),
	                0644);
	if (fd < 0)
		return negative_errno();
	size_t off = 0;
	int r = 0;
	while (off < j->len && r == 0) {
		ssize_t n = write(fd, j->text + off, j->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? negative_errno() : -EIO;
		else
			off += (size_t)n;
	}
	close(fd);
	return r;
}

/* A report name as made here: one component, no dot first, ".json" last. */
static bool report_name_ok(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && n < NAME_MAX && name[0] != '.' && !strchr(name, '/') &&
	       strcmp(name + n - 5, ".json") == 0;
}

static bool report_done_grow(struct report_writer *w)
{
	size_t cap = w->cap_done * 2 + 64;
	int64_t *d = reallocarray(w->done, cap, sizeof(*d));
	if (!d)
		return false;
	w->done = d;
	w->cap_done = cap;
	return true;
}

static void *report_thread(void *p)
{
	struct report_writer *w = p;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->n == 0 && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->n == 0)
			break; /* stop, and everything written */
		struct report_job j = w->q[w->head];
		w->head = (w->head + 1) % REPORT_QUEUE;
		w->n--;
		w->busy = true;
		pthread_cond_signal(&w->space);
		pthread_mutex_unlock(&w->lock);
		int r = write_report_file(w->dirfd, &j, true);
		free(j.name);
		free(j.text);
		pthread_mutex_lock(&w->lock);
		w->busy = false;
		if (r < 0)
			w->failed++; /* its journal entry stays: rewritten at the next resume */
		else if (w->n_done < w->cap_done || report_done_grow(w))
			w->done[w->n_done++] = j.id; /* else it stays journaled: rewritten at resume */
		pthread_cond_broadcast(&w->space); /* also wakes output_reports_wait */
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Queues a report (takes name and text); blocks while the queue is full. */
static int report_queue(struct report_writer *w, int64_t id, char *name, char *text, size_t len)
{
	pthread_mutex_lock(&w->lock);
	while (w->n == REPORT_QUEUE)
		pthread_cond_wait(&w->space, &w->lock);
	w->q[(w->head + w->n) % REPORT_QUEUE] = (struct report_job){id, name, text, len};
	w->n++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static int report_writer_start(const char *dir, struct report_writer **ret)
{
	struct report_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		int r = negative_errno();
		free(w);
		return r;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	pthread_cond_init(&w->space, NULL);
	/* the thread takes no signal: they belong to the loop's signalfd */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&w->thread, NULL, report_thread, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		close(w->dirfd);
		free(w);
		return -r;
	}
	w->running = true;
	*ret = w;
	return 0;
}

/* Writes what is queued, stops the thread; returns the number of failures. */
static unsigned long report_writer_stop(struct report_writer *w)
{
	if (!w)
		return 0;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	unsigned long failed = w->failed;
	close(w->dirfd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_cond_destroy(&w->space);
	free(w->done);
	free(w);
	return failed;
}

void output_reports_wait(struct output *o)
{
	struct report_writer *w = o->rw;
	pthread_mutex_lock(&w->lock);
	while (w->n > 0 || w->busy)
		pthread_cond_wait(&w->space, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

size_t output_reports_take(struct output *o, int64_t **ret_ids)
{
	struct report_writer *w = o->rw;
	pthread_mutex_lock(&w->lock);
	size_t n = w->n_done;
	*ret_ids = w->done;
	w->done = NULL;
	w->n_done = w->cap_done = 0;
	pthread_mutex_unlock(&w->lock);
	return n;
}

int output_report_rewrite(struct output *o, const char *name, const char *text, size_t len)
{
	if (!report_name_ok(name))
		return -EINVAL; /* the name came from the store: made here, but check */
	struct report_job j = {.name = (char *)name, .text = (char *)text, .len = len};
	return write_report_file(o->rw->dirfd, &j, false);
}

static int mkdir_p1(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

void output_flush(struct output *o)
{
	for (int i = 0; o && i < F_MAX; i++)
		if (o->f[i] && o->pending[i] > 0) {
			fflush(o->f[i]);
			o->pending[i] = 0;
		}
}

void output_close(struct output *o)
{
	if (!o)
		return;
	unsigned long failed = report_writer_stop(o->rw);
	if (failed > 0)
		fprintf(stderr, "capture-server: %lu JSON reports could not be written\n", failed);
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
		setvbuf(o->f[i], NULL, _IOFBF, LOG_BUF);
	}
	if ((r = xsnprintf(p, sizeof(p), "%s/reports", outdir)) < 0 ||
	    (r = report_writer_start(p, &o->rw)) < 0) {
		output_close(o);
		return r;
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

/* The six original columns as one CSV line (with its newline). */
static int render_row(const char *status, const char *group, const char *url,
                      const char *program, const char *time, struct cap_buf *b)
{
	char date[64];
	now_string(date, sizeof(date));
	const char *fields[] = {date, status, group, url, program, time};
	int r = 0;
	for (size_t i = 0; i < ELEMENTSOF(fields) && r == 0; i++) {
		_cleanup_free_ char *q = NULL;
		r = cap_csv_quote(fields[i], &q);
		if (r == 0)
			r = cap_buf_puts(b, q);
		if (r == 0)
			r = cap_buf_puts(b, i + 1 < ELEMENTSOF(fields) ? "," : "\n");
	}
	return r;
}

/* Appends one whole line to log k; a line never spans a flush, so a killed
 * server leaves whole lines. */
static int put_line(struct output *o, int k, const char *line, size_t len)
{
	FILE *f = o->f[k];
	if (o->pending[k] + len > LOG_BUF) {
		fflush(f);
		o->pending[k] = 0;
	}
	fwrite(line, 1, len, f);
	o->pending[k] += len;
	return ferror(f) ? -EIO : 0;
}

static int write_row(struct output *o, int k, const char *status, const char *group,
                     const char *url, const char *program, const char *time)
{
	struct cap_buf b = {.max = 64 * 1024};
	int r = render_row(status, group, url, program, time, &b);
	if (r == 0)
		r = put_line(o, k, b.data, b.len);
	cap_buf_done(&b);
	return r;
}

static int write_url_row(struct output *o, int k, const char *status, uint32_t group,
                         const char *url, const char *program, uint32_t time)
{
	char g[16], t[16];
	snprintf(g, sizeof(g), "%u", group);
	snprintf(t, sizeof(t), "%u", time);
	return write_row(o, k, status, g, url, program, t);
}

int output_progress(struct output *o, const char *status, uint32_t group, const char *url,
                    const char *program, uint32_t time)
{
	return write_url_row(o, F_PROGRESS, status, group, url, program, time);
}

int output_final_render(enum sched_verdict v, uint32_t err, uint32_t minor, uint32_t group,
                        const char *url, const char *program, uint32_t time, int *ret_log,
                        char **ret_line)
{
	char status[96], g[16], t[16];
	int k = v == VERDICT_BENIGN ? F_SAFE : v == VERDICT_MALICIOUS ? F_MALICIOUS : F_ERROR;
	if (k == F_ERROR) {
		const char *name = cap_error_code_name(err);
		snprintf(status, sizeof(status), "error:%s-%u", name ? name : "UNKNOWN", minor);
	} else
		snprintf(status, sizeof(status), "%s", k == F_SAFE ? "benign" : "malicious");
	snprintf(g, sizeof(g), "%u", group);
	snprintf(t, sizeof(t), "%u", time);
	struct cap_buf b = {.max = 64 * 1024};
	int r = render_row(status, g, url, program, t, &b);
	if (r == 0 && !(*ret_line = strndup(b.data, b.len)))
		r = -ENOMEM;
	cap_buf_done(&b);
	if (r == 0)
		*ret_log = k;
	return r;
}

int output_final_line(struct output *o, int log, const char *line)
{
	if (log != F_SAFE && log != F_MALICIOUS && log != F_ERROR)
		return -EINVAL;
	size_t len = strlen(line);
	if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
		return -EINVAL; /* exactly one whole line */
	int r = put_line(o, log, line, len);
	int r2 = log == F_ERROR ? put_line(o, F_PROGRESS, line, len) : 0;
	return r < 0 ? r : r2;
}

struct line_ref {
	const char *s;
	size_t i;
};

static int cmp_line(const void *a, const void *b)
{
	return strcmp(((const struct line_ref *)a)->s, ((const struct line_ref *)b)->s);
}

int output_lines_present(struct output *o, int log, const char *const *lines, size_t n,
                         bool *present)
{
	char p[PATH_MAX];
	if (log < 0 || log >= F_MAX)
		return -EINVAL;
	int r = xsnprintf(p, sizeof(p), "%s/log/%s", o->dir, file_names[log]);
	if (r < 0)
		return r;
	fflush(o->f[log]);
	struct line_ref *ref = reallocarray(NULL, n ? n : 1, sizeof(*ref));
	if (!ref)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		ref[i] = (struct line_ref){lines[i], i};
	qsort(ref, n, sizeof(*ref), cmp_line);
	_cleanup_fclose_ FILE *f = fopen(p, "re");
	r = f || errno == ENOENT ? 0 : negative_errno();
	char *buf = NULL;
	size_t cap = 0;
	while (f && getline(&buf, &cap, f) > 0) {
		struct line_ref key = {buf, 0}, *hit = bsearch(&key, ref, n, sizeof(*ref), cmp_line);
		while (hit && hit > ref && strcmp(hit[-1].s, buf) == 0)
			hit--; /* the first of equal lines (never expected) */
		for (; hit && hit < ref + n && strcmp(hit->s, buf) == 0; hit++)
			present[hit->i] = true;
	}
	free(buf);
	free(ref);
	return r;
}

int output_invalid_url(struct output *o, unsigned long lineno, const char *text)
{
	char status[64], cut[1025];
	snprintf(status, sizeof(status), "error:INVALID_URL-%lu", lineno);
	cap_strlcpy(cut, text, sizeof(cut));
	return write_row(o, F_ERROR, status, "nogroup", cut, "unkown", "unknown");
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

int output_report_render(struct output *o, const char *url, const char *program,
                         enum sched_verdict v, uint32_t err, enum sched_algorithm alg,
                         uint32_t group, double started, double finished,
                         const char *const *events, size_t n_events,
                         const char *const *evidence, size_t n_evidence, char **ret_name,
                         char **ret_text)
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
	char *file = NULL, *text = NULL;
	size_t len = 0;
	int r = cap_url_to_filename(url, 160, &name);
	if (r >= 0 && asprintf(&file, "%s-%lu.json", name, o->serial++) < 0)
		r = -ENOMEM;
	if (r >= 0) {
		const char *t = json_object_to_json_string_length(
			j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
		if (!t || !(text = malloc(len + 2)))
			r = -ENOMEM;
		else {
			memcpy(text, t, len);
			text[len++] = '\n';
		}
	}
	json_object_put(j);
	if (r < 0) {
		free(file);
		free(text);
		return r;
	}
	text[len] = '\0';
	*ret_name = file;
	*ret_text = text;
	return 0;
}

void output_report_queue(struct output *o, int64_t id, char *name, char *text)
{
	(void)report_queue(o->rw, id, name, text, strlen(text));
}

int output_stats(struct output *o, const struct output_stats *s)
{
	FILE *f = o->f[F_STATS];
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && st.st_size == 0)
		fputs("\"time\",\"visiting\",\"visited\",\"safe\",\"malicious\",\"urlError\","
		      "\"vmRevert\",\"clientInactivity\",\"vmStalled\",\"avgRevertTime\","
		      "\"avgVisitingTime\",\"avgFirstStateChangeTime\",\"visitedUrlsPerDay\"\n",
		      f);
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	if (strftime(date, sizeof(date), "%b %-d, %Y %-I:%M:%S %p", &tm) == 0)
		date[0] = '\0';
	fprintf(f,
	        "\"%s\",\"%llu\",\"%llu\",\"%llu\",\"%llu\",\"%llu\",\"%llu\",\"%llu\",\"%llu\","
	        "\"%.3f\",\"%.3f\",\"%.3f\",\"%.0f\"\n",
	        date, (unsigned long long)s->visiting, (unsigned long long)s->visited,
	        (unsigned long long)s->safe, (unsigned long long)s->malicious,
	        (unsigned long long)s->url_error, (unsigned long long)s->vm_revert,
	        (unsigned long long)s->client_inactivity, (unsigned long long)s->vm_stalled,
	        s->avg_revert_seconds, s->avg_visit_seconds, s->avg_first_state_change,
	        s->visited_urls_per_day);
	fflush(f);
	return ferror(f) ? -EIO : 0;
}
