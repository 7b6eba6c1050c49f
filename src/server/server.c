/* server.c - see server.h for the design.
 *
 * Client handling follows Client.java: connect -> options -> WAITING ->
 * visit-event (AWAITING_VISITING) -> start (VISITING) -> finish / error.
 * A malicious result or a reverting error closes the connection (the
 * revert); in dac with more than one URL the first system-event ends the
 * visit.  Files a client uploads are stored under a name made here.
 * Errors from a client (garbage, oversize, protocol violations) end only
 * that connection; its group is retried once, then goes to error.log.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>

#include "escape.h"
#include "exclusions.h"
#include "frame.h"
#include "log.h"
#include "output.h"
#include "proto.h"
#include "scheduler.h"
#include "server-internal.h"
#include "store.h"
#include "urllist.h"
#include "vmserver.h"

double srv_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double srv_wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the final verdict: store and journal first, then the files ---- */

/* Inside the group's transaction: the status, and the rendered files in the
 * store's journal, so that a kill after the commit loses neither. */
static void on_final(void *ud, const struct sched_url *u, enum sched_verdict v, uint32_t err)
{
	struct srv *s = ud;
	static const char letters[] = {'B', 'M', 'E'};
	int r = store_url_final(s->store, (int64_t)u->id, letters[v], err, 0);
	if (r == -EALREADY)
		return; /* never finished twice */
	if (r < 0) {
		/* not final in the store, so not in the logs either: visited again */
		log_warnx("store: cannot record the result of %s (%s%s%s): queued again", u->url,
		          strerror(-r), store_errmsg(s->store)[0] ? ": " : "",
		          store_errmsg(s->store));
		if (sched_requeue(s->sched, u) < 0)
			log_warnx("out of memory: %s lost until resume", u->url);
		return;
	}
	if (s->n_finals == s->cap_finals) {
		size_t cap = s->cap_finals ? s->cap_finals * 2 : 64;
		struct srv_final *f = reallocarray(s->finals, cap, sizeof(*f));
		if (!f) {
			log_warnx("out of memory: %s not written to the logs", u->url);
			return;
		}
		s->finals = f;
		s->cap_finals = cap;
	}
	const struct srv_client *c = s->cur_client;
	struct srv_final f = {u, v, c, 0, NULL, NULL, NULL};
	uint32_t group = s->cur_group_id;
	r = output_final_render(v, err, 0, group, u->url, u->client, u->time, &f.log, &f.line);
	if (r < 0) {
		log_warnx("output: %s not written to the logs: %s", u->url, strerror(-r));
		return;
	}
	/* the visit's events belong in the reports of its malicious URLs only (a
	 * benign URL of a bulk group had none of them: 1,000 benign reports with
	 * a group's 4,096 events each were 400 MB) */
	bool ev = c && v == VERDICT_MALICIOUS;
	r = output_report_render(s->out, u->url, u->client, v, err, s->cfg->algorithm, group,
	                         c ? c->visit_started : 0, srv_wall_now(),
	                         ev ? (const char *const *)c->ev_lines : NULL, ev ? c->n_ev : 0,
	                         c ? (const char *const *)c->evidence : NULL,
	                         c ? c->n_evidence : 0, &f.report_name, &f.report);
	if (r < 0)
		log_warnx("output: report for %s: %s", u->url, strerror(-r));
	r = store_output_add(s->store, (int64_t)u->id, f.log, f.line, f.report_name, f.report);
	if (r < 0)
		log_warnx("store: cannot journal the output of %s: %s", u->url, strerror(-r));
	s->finals[s->n_finals++] = f;
}

/* Writes the files for the verdicts of the last store transaction, after
 * the commit: a kill before this point leaves them in the journal for
 * resume (srv_output_replay), never a URL written twice. */
void srv_write_finals(struct srv *s)
{
	for (size_t i = 0; i < s->n_finals; i++) {
		struct srv_final *f = &s->finals[i];
		int r = output_final_line(s->out, f->log, f->line);
		if (r < 0)
			log_warnx("output: %s", strerror(-r));
		if (f->report)
			output_report_queue(s->out, (int64_t)f->u->id, f->report_name, f->report);
		else
			free(f->report_name);
		free(f->line);
		srv_host_final(s, f->client, f->v);
		if (f->v == VERDICT_BENIGN)
			s->sum.benign++;
		else if (f->v == VERDICT_MALICIOUS)
			s->sum.malicious++;
		else
			s->sum.errors++;
		s->done++;
	}
	if (s->n_finals > 0)
		output_flush(s->out); /* before any journal entry of them can be dropped */
	s->n_finals = 0;
}

void srv_requeue_finals(struct srv *s)
{
	for (size_t i = 0; i < s->n_finals; i++) {
		struct srv_final *f = &s->finals[i];
		if (sched_requeue(s->sched, f->u) < 0)
			log_warnx("out of memory: %s lost until resume", f->u->url);
		free(f->line);
		free(f->report_name);
		free(f->report);
	}
	if (s->n_finals > 0)
		log_warnx("store: the transaction of %zu verdicts failed (%s): their URLs are "
		          "queued again",
		          s->n_finals, store_errmsg(s->store));
	s->n_finals = 0;
}

void srv_output_sync(struct srv *s)
{
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = output_reports_take(s->out, &ids);
	for (size_t i = 0; i < n; i++) {
		int r = store_output_done(s->store, ids[i]);
		if (r < 0)
			log_warnx("store: journal: %s", strerror(-r));
	}
}

struct replay {
	struct replay_entry {
		int64_t id;
		int log;
		char *line, *name, *report;
	} *e;
	size_t n, cap;
};

static int replay_one(void *ud, int64_t id, int log, const char *line, const char *name,
                      const char *report)
{
	struct replay *rp = ud;
	if (rp->n == rp->cap) {
		size_t cap = rp->cap ? rp->cap * 2 : 64;
		struct replay_entry *e = reallocarray(rp->e, cap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		rp->e = e;
		rp->cap = cap;
	}
	struct replay_entry *e = &rp->e[rp->n];
	*e = (struct replay_entry){id, log, strdup(line), name ? strdup(name) : NULL,
	                           report ? strdup(report) : NULL};
	if (!e->line || (name && !e->name) || (report && !e->report)) {
		free(e->line);
		free(e->name);
		free(e->report);
		return -ENOMEM;
	}
	rp->n++;
	return 0;
}

/* Resume: writes the final lines and reports a killed server had
 * committed but not yet written (a line only if its log lacks it). */
static int srv_output_replay(struct srv *s)
{
	struct replay rp = {0};
	int r = store_output_pending(s->store, replay_one, &rp);
	bool *present = calloc(rp.n ? rp.n : 1, sizeof(bool));
	const char **lines = calloc(rp.n ? rp.n : 1, sizeof(char *));
	size_t *idx = calloc(rp.n ? rp.n : 1, sizeof(size_t));
	bool ok = present && lines && idx;
	if (r >= 0 && !ok)
		r = -ENOMEM;
	for (int log = 0; r >= 0 && log < OUTPUT_LOGS; log++) {
		size_t m = 0;
		for (size_t i = 0; i < rp.n; i++)
			if (rp.e[i].log == log) {
				idx[m] = i;
				lines[m++] = rp.e[i].line;
			}
		bool *pm = calloc(m ? m : 1, sizeof(bool));
		if (!pm)
			r = -ENOMEM;
		else if (m > 0 && (r = output_lines_present(s->out, log, lines, m, pm)) >= 0)
			for (size_t j = 0; j < m; j++)
				present[idx[j]] = pm[j];
		free(pm);
	}
	unsigned long lines_written = 0, reports_written = 0;
	bool tx = r >= 0 && store_tx_begin(s->store) == 0;
	for (size_t i = 0; i < rp.n; i++) {
		struct replay_entry *e = &rp.e[i];
		int w = 0;
		if (r >= 0 && !present[i]) {
			w = output_final_line(s->out, e->log, e->line);
			lines_written += w >= 0;
		}
		if (r >= 0 && w >= 0 && e->report) {
			w = output_report_rewrite(s->out, e->name, e->report, strlen(e->report));
			reports_written += w >= 0;
		}
		if (w < 0)
			log_warnx("resume: cannot write the output of URL %lld: %s", (long long)e->id,
			          strerror(-w));
		if (r >= 0 && w >= 0 && (w = store_output_done(s->store, e->id)) < 0)
			log_warnx("store: journal: %s", strerror(-w));
		free(e->line);
		free(e->name);
		free(e->report);
	}
	output_flush(s->out);
	if (tx && store_tx_commit(s->store) < 0)
		log_warnx("store: commit failed");
	if (r >= 0 && rp.n > 0)
		log_info("resume: wrote %lu log lines and %lu reports a stopped server had left",
		         lines_written, reports_written);
	free(rp.e);
	free(present);
	free(lines);
	free(idx);
	return r;
}

/* ---- input: URL list lines ---- */

static void input_line(struct srv *s, char *line)
{
	struct cap_url_entry *e = &s->entry;
	const char *reason = NULL;
	s->lineno++;
	int k = cap_urllist_parse_line(line, e, &reason);
	if (k == CAP_URLLINE_SKIP)
		return;
	if (k == CAP_URLLINE_END) {
		s->input_done = true;
		return;
	}
	if (k < 0) {
		log_warnx("%s:%lu: invalid URL line (%s)", s->o->input, s->lineno,
		          reason ? reason : "?");
		(void)output_invalid_url(s->out, s->lineno, line);
		s->sum.invalid++;
		return;
	}
	const char *client = e->has_client ? e->client : s->cfg->client_default;
	uint32_t t = e->has_visit_time ? e->visit_time : s->cfg->client_default_visit_time;
	/* a shared run's queue is the store (shared.c): checked there */
	if ((!s->shared && sched_contains(s->sched, e->url, client, t)) ||
	    ((s->check_known || s->shared) &&
	     store_url_known(s->store, s->op, e->url, client, t) == 1)) {
		s->sum.duplicates++;
		return;
	}
	int64_t id;
	int r = store_url_add(s->store, s->op, e->url, client, t, e->priority, &id);
	if (r >= 0 && !s->shared)
		r = sched_add(s->sched, (uint64_t)id, e->url, client, t, e->priority);
	if (r < 0) {
		log_warnx("%s:%lu: cannot queue URL: %s", s->o->input, s->lineno, strerror(-r));
		return;
	}
	s->sum.accepted++;
}

/* Reads what is available; a line longer than the URL limit is cut off,
 * reported and skipped up to its newline. */
void srv_input_read(struct srv *s)
{
	if (s->input_fd < 0 || s->input_done)
		return;
	bool tx = store_tx_begin(s->store) == 0;
	for (int rounds = 0; rounds < 64 && !s->input_done; rounds++) {
		size_t room = sizeof(s->ibuf) - 1 - s->ilen;
		ssize_t n = read(s->input_fd, s->ibuf + s->ilen, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			log_warn("reading %s", s->o->input);
		if (n <= 0) {
			if (n == 0 && s->input_is_stream)
				s->input_done = true; /* a closed pipe ends the list */
			break;
		}
		s->ilen += (size_t)n;
		s->input_read += n;
		char *start = s->ibuf, *nl;
		while ((nl = memchr(start, '\n', s->ilen - (size_t)(start - s->ibuf)))) {
			*nl = '\0';
			if (s->skipping)
				s->skipping = false;
			else
				input_line(s, start);
			start = nl + 1;
			if (s->input_done)
				break;
		}
		s->ilen -= (size_t)(start - s->ibuf);
		memmove(s->ibuf, start, s->ilen);
		if (s->ilen == sizeof(s->ibuf) - 1) {
			s->ibuf[s->ilen] = '\0';
			s->lineno++;
			(void)output_invalid_url(s->out, s->lineno, s->ibuf);
			s->sum.invalid++;
			s->ilen = 0;
			s->skipping = true;
		}
	}
	if (tx) {
		srv_output_sync(s);
		/* with the URLs of these lines: resume continues after them */
		struct store_input in = {s->input_path, s->input_read - (int64_t)s->ilen,
		                         (int64_t)s->lineno, s->input_done};
		if (store_input_set(s->store, s->op, &in) < 0)
			log_warnx("store: cannot record the input position");
	}
	if (tx && store_tx_commit(s->store) < 0)
		log_warnx("store: commit failed");
	if (s->input_done && s->ilen > 0 && !s->skipping) {
		s->ibuf[s->ilen] = '\0'; /* a last line without newline */
		s->ilen = 0;
	}
}

static int resume_one(void *ud, int64_t id, const char *url, const char *client, uint32_t time,
                      double priority)
{
	struct srv *s = ud;
	int r = sched_add(s->sched, (uint64_t)id, url, client, time, priority);
	if (r == -EEXIST)
		return 0; /* a duplicate left by an earlier crash: runs once */
	if (r == 0)
		s->sum.accepted++;
	return r;
}

/* ---- setup ---- */

static int listen_on(const char *addr, uint16_t port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char ports[8];
	snprintf(ports, sizeof(ports), "%u", port);
	if (getaddrinfo(addr, ports, &hints, &ai) != 0 || !ai)
		return -EADDRNOTAVAIL;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, r = 0;
	if (fd < 0)
		r = negative_errno();
	else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	         bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 512) < 0)
		r = negative_errno();
	freeaddrinfo(ai);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

static int watch(struct srv *s, int fd, struct srv_watch *w, enum srv_watch_kind k, void *p)
{
	w->kind = k;
	w->p = p;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
	return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? negative_errno() : 0;
}

/* resume: where the run's list was read up to.  The same list (or none
 * given) goes on from there; another list given with -f is read from its
 * start, skipping the URLs the run already has. */
static int resume_input(struct srv *s, const char **in, off_t *ret_off)
{
	struct store_input rec = {0};
	int r = store_input_get(s->store, s->op, &rec);
	if (r < 0)
		return log_error_errno(r, "resume: cannot read the input position");
	*ret_off = 0;
	char real[PATH_MAX];
	bool same = rec.path && *in && strcmp(*in, "-") != 0 && realpath(*in, real) &&
	            strcmp(real, rec.path) == 0;
	if (!*in && rec.path && !rec.done) {
		*in = rec.path; /* freed with s->input_path */
		same = true;
		s->input_path = TAKE_PTR(rec.path);
	}
	if (same && !rec.done) {
		*ret_off = (off_t)rec.offset;
		s->lineno = (unsigned long)rec.line;
		log_info("resume: reading %s on from line %lld", *in, (long long)rec.line);
	} else if (*in) {
		s->check_known = true;
		log_info("resume: reading %s; URLs the run already has are skipped", *in);
	} else if (!rec.done) {
		log_warnx("resume: the run's list came from stdin and had not ended: give it "
		          "again with -f (URLs the run already has are skipped)");
	}
	free(rec.path);
	return 0;
}

static int open_input(struct srv *s)
{
	const char *in = s->o->input;
	off_t off = 0;
	if (s->o->resume) {
		int r = resume_input(s, &in, &off);
		if (r < 0)
			return r;
	}
	if (!in) {
		s->input_done = true;
		return 0;
	}
	s->input_fd = strcmp(in, "-") == 0 ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)
	                                   : open(in, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (s->input_fd < 0)
		return log_error_errno(negative_errno(), "cannot open %s", in);
	if (!s->input_path && strcmp(in, "-") != 0) {
		char real[PATH_MAX];
		if (realpath(in, real) && !(s->input_path = strdup(real)))
			return log_error_errno(-ENOMEM, "cannot open %s", in);
	}
	if (!s->o->resume) {
		/* the list is known before its first line is accepted: a server
		 * killed before its first commit resumes it from the start */
		struct store_input st0 = {s->input_path, 0, 0, false};
		if (store_input_set(s->store, s->op, &st0) < 0)
			log_warnx("store: cannot record the input %s", in);
	}
	if (off > 0) {
		struct stat st;
		if (fstat(s->input_fd, &st) < 0 || st.st_size < off ||
		    lseek(s->input_fd, off, SEEK_SET) != off)
			return log_error_errno(-ESPIPE, "resume: %s is shorter than the %lld bytes "
			                       "read before (changed?)", in, (long long)off);
		s->input_read = off;
	}
	int fl = fcntl(s->input_fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(s->input_fd, F_SETFL, fl | O_NONBLOCK);
	/* pipes and sockets are watched; regular files are tailed on the tick */
	bool watched = watch(s, s->input_fd, &s->w_input, W_INPUT, NULL) == 0;
	if (watched || s->o->import_only || strcmp(in, "-") == 0)
		s->input_is_stream = true; /* EOF ends the list (stdin, pipes, -i) */
	return 0;
}

static int open_store(struct srv *s)
{
	char path[PATH_MAX];
	int r = store_sqlite_path(s->cfg, s->o->outdir, path, sizeof(path));
	char err[512] = "";
	if (r < 0 || (r = store_open_err(s->cfg, path, err, sizeof(err), &s->store)) < 0)
		return log_error_errno(r, "cannot open the store %s%s%s",
		                       strcmp(s->cfg->database_type, "sqlite") ? "" : path,
		                       err[0] ? ": " : "", err);
	s->shared = store_is_shared(s->store);
	s->lease_seconds = s->cfg->lease_seconds;
	if (s->o->resume) {
		r = store_operation_resume(s->store, &s->op);
		if (r == -ENOENT) {
			log_warnx("resume: no unfinished run in %s", path);
			return r;
		}
		/* a shared run's URLs are claimed as clients need them */
		if (r < 0 || (!s->shared && (r = store_url_pending(s->store, s->op, resume_one, s)) < 0))
			return log_error_errno(r, "resume: cannot reload the run");
		if (!s->shared)
			log_info("resuming run %lld with %zu URLs", (long long)s->op,
			         sched_queued(s->sched));
	} else {
		r = store_operation_begin(s->store, sched_algorithm_to_string(s->cfg->algorithm),
		                          &s->op);
		if (r < 0)
			return log_error_errno(r, "store: cannot start a run");
	}
	if (s->shared && !s->o->import_only && (r = srv_shared_start(s)) < 0)
		return r;
	if (s->o->resume) {
		r = srv_output_replay(s);
		return r < 0 ? log_error_errno(r, "resume: cannot write the journaled output") : 0;
	}
	return 0;
}

static int setup(struct srv *s)
{
	struct sched_params sp = {.algorithm = s->cfg->algorithm, .group_size = s->cfg->group_size};
	int r = output_open(s->o->outdir, &s->out);
	if (r < 0)
		return log_error_errno(r, "cannot create the output folder %s", s->o->outdir);
	if ((r = sched_new(&sp, on_final, s, &s->sched)) < 0 || (r = open_store(s)) < 0)
		return r;
	if (s->cfg->send_exclusion_lists && !s->o->import_only) {
		r = srv_exclusions_load(s->cfg, true, &s->excl);
		if (r < 0)
			return r;
		log_info("send-exclusion-lists: %zu rules for every client (%zu lines skipped)",
		         srv_exclusions_count(s->excl), srv_exclusions_skipped(s->excl));
	}
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep < 0)
		return log_error_errno(negative_errno(), "epoll_create1");
	if (s->o->import_only)
		return open_input(s);
	/* given up to accept-and-close a connection when descriptors run out */
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	s->listen_fd = listen_on(s->o->address, s->o->port);
	if (s->listen_fd < 0)
		return log_error_errno(s->listen_fd, "cannot listen on %s:%u", s->o->address,
		                       s->o->port);
	if ((r = srv_tls_setup(s)) < 0)
		return r;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_interval = {0, 200000000}, .it_value = {0, 200000000}};
	if (s->sig_fd < 0 || s->timer_fd < 0 || timerfd_settime(s->timer_fd, 0, &its, NULL) < 0)
		return log_error_errno(negative_errno(), "signalfd/timerfd");
	if ((r = watch(s, s->listen_fd, &s->w_listen, W_LISTEN, NULL)) < 0 ||
	    (r = watch(s, s->sig_fd, &s->w_sig, W_SIGNAL, NULL)) < 0 ||
	    (r = watch(s, s->timer_fd, &s->w_timer, W_TIMER, NULL)) < 0)
		return log_error_errno(r, "epoll_ctl");
	if ((r = open_input(s)) < 0)
		return r;
	r = vmserver_start(s);
	return r < 0 ? log_error_errno(r, "cannot start the clients") : 0;
}

static void teardown(struct srv *s)
{
	srv_refused_report(s, srv_now());
	vmserver_stop(s);
	while (s->clients)
		srv_client_close(s, s->clients, 0, false);
	srv_reap_dead(s);
	srv_shared_stop(s);
	if (s->out && s->store) { /* every report written: their journal entries go */
		output_reports_wait(s->out);
		bool tx = store_tx_begin(s->store) == 0;
		srv_output_sync(s);
		if (tx && store_tx_commit(s->store) < 0)
			log_warnx("store: commit failed");
	}
	sched_free(s->sched);
	srv_exclusions_free(s->excl);
	free(s->finals);
	free(s->hosts);
	free(s->input_path);
	store_close(s->store);
	output_close(s->out);
	for (int *fd = &s->ep; fd <= &s->input_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	SSL_CTX_free(s->tls);
}

/* ---- the loop ---- */

static void on_signal(struct srv *s)
{
	struct signalfd_siginfo si;
	while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			log_info("signal %u: stopping; unfinished URLs stay in the store for resume",
			         si.ssi_signo);
			s->stop = true;
		}
	}
}

static void stats_row(struct srv *s)
{
	double el = srv_now() - s->started;
	struct output_stats st = {
		.visiting = sched_running(s->sched),
		.visited = s->sum.visits,
		.safe = s->sum.benign,
		.malicious = s->sum.malicious,
		.url_error = s->sum.errors,
		.vm_revert = s->sum.reverts,
		.client_inactivity = s->inactivity,
		.vm_stalled = s->stalled,
		.avg_revert_seconds =
			s->n_revert_samples ? s->revert_seconds / (double)s->n_revert_samples : 0,
		.avg_visit_seconds = s->sum.visits ? s->visit_seconds / (double)s->sum.visits : 0,
		.avg_first_state_change =
			s->n_first_change ? s->first_change_seconds / (double)s->n_first_change : 0,
		.visited_urls_per_day = el > 0 ? (double)s->done * 86400.0 / el : 0,
	};
	(void)output_stats(s->out, &st);
}

static void progress(struct srv *s, bool final)
{
	double el = srv_now() - s->started;
	double rate = el > 0 ? (double)s->done * 3600.0 / el : 0;
	size_t total = s->done + sched_queued(s->sched) + sched_running(s->sched) * 0;
	if (s->o->progress_tty && !final) {
		int width = 30, fill = total ? (int)((double)s->done * width / (double)total) : 0;
		fprintf(stderr, "\r[%.*s%*s] %lu/%zu malicious %llu errors %llu %.0f URLs/h ", fill,
		        "##############################", width - fill, "", s->done, total,
		        (unsigned long long)s->sum.malicious, (unsigned long long)s->sum.errors, rate);
		return;
	}
	if (s->o->progress_tty)
		fputc('\n', stderr);
	log_info("%s%lu done, %zu queued, %zu running, %llu malicious, %llu errors, %.0f URLs/h",
	         final ? "finished: " : "", s->done, sched_queued(s->sched), sched_running(s->sched),
	         (unsigned long long)s->sum.malicious, (unsigned long long)s->sum.errors, rate);
	srv_hosts_log(s);
}

static void status_snapshot(struct srv *s)
{
	double el = srv_now() - s->started;
	struct srv_status_counts n = {sched_queued(s->sched), sched_running(s->sched),
	                              el > 0 ? (double)s->done * 3600.0 / el : 0};
	int r = srv_status_write(s, &n);
	if (r < 0 && !s->status_warned) {
		log_warnx("cannot write %s/status.json: %s", s->o->outdir, strerror(-r));
		s->status_warned = true;
	}
}

/* terminate: exit when the input ended and every URL is done.  A list
 * without an "end" line is tailed; then, as in the original, once
 * terminate-grace seconds have passed since the start, the run ends when
 * nothing was queued or running at two checks in a row (every 10 s, or every
 * terminate-grace seconds if that is shorter). */
static void check_terminate(struct srv *s, double now)
{
	if (!s->cfg->terminate)
		return;
	bool idle = sched_idle(s->sched);
	if (idle && s->input_done && (!s->shared || srv_shared_run_done(s, now))) {
		s->finished = true;
		s->stop = true;
		return;
	}
	if (s->shared && s->input_done)
		return; /* other servers still hold URLs of the run */
	double grace = (double)s->cfg->terminate_grace;
	if (!idle || now - s->started < grace) {
		s->idle_checks = 0;
		return;
	}
	double every = MIN(10.0, MAX(1.0, grace));
	if (s->idle_checks > 0 && now - s->last_idle_check < every)
		return;
	s->last_idle_check = now;
	if (++s->idle_checks < 2)
		return;
	log_info("terminate: no \"end\" line, and nothing queued or running at two checks %.0f s "
	         "apart after the %.0f s grace: finishing",
	         every, grace);
	s->finished = true;
	s->stop = true;
}

static void on_tick(struct srv *s)
{
	uint64_t n;
	(void)!read(s->timer_fd, &n, sizeof(n));
	double now = srv_now();
	if (!s->input_is_stream)
		srv_input_read(s);
	srv_accept_tick(s, now);
	srv_tls_refusals_report(s, now);
	srv_clients_tick(s, now);
	vmserver_tick(s, now);
	srv_shared_tick(s, now);
	srv_shared_claim(s, now);
	srv_dispatch(s);
	if (now - s->last_stats >= (double)s->cfg->stats_interval) {
		s->last_stats = now;
		stats_row(s);
	}
	if (s->o->progress_interval && now - s->last_progress >= s->o->progress_interval) {
		s->last_progress = now;
		progress(s, false);
	}
	if (now - s->last_status >= 1.0) {
		s->last_status = now;
		status_snapshot(s);
	}
	check_terminate(s, now);
}

static void loop(struct srv *s)
{
	struct epoll_event evs[64];
	while (!s->stop) {
		int n = epoll_wait(s->ep, evs, (int)ELEMENTSOF(evs), 1000);
		if (n < 0 && errno != EINTR) {
			log_warn("epoll_wait");
			break;
		}
		for (int i = 0; i < n && !s->stop; i++) {
			struct srv_watch *w = evs[i].data.ptr;
			switch (w->kind) {
			case W_LISTEN:
				srv_accept(s);
				break;
			case W_SIGNAL:
				on_signal(s);
				break;
			case W_TIMER:
				on_tick(s);
				break;
			case W_INPUT:
				srv_input_read(s);
				if (s->input_done)
					(void)epoll_ctl(s->ep, EPOLL_CTL_DEL, s->input_fd, NULL);
				break;
			case W_CLIENT:
				srv_client_io(s, w->p, evs[i].events);
				break;
			case W_CHILD:
				vmserver_child_exit(s, w->p);
				break;
			}
		}
		if (s->shared)
			srv_shared_claim(s, srv_now());
		srv_dispatch(s);
		srv_reap_dead(s);
		output_flush(s->out);
	}
}

int server_run(const struct server_opts *o, struct server_summary *ret)
{
	struct srv s = {.o = o, .cfg = o->cfg, .ep = -1, .listen_fd = -1, .sig_fd = -1,
	                .timer_fd = -1, .input_fd = -1, .reserve_fd = -1};
	s.started = s.last_stats = s.last_progress = srv_now();
	int r = setup(&s);
	if (r >= 0 && o->import_only) {
		while (!s.input_done)
			srv_input_read(&s);
		log_info("imported %llu URLs as run %lld; run them with `capture-server resume`",
		         (unsigned long long)s.sum.accepted, (long long)s.op);
	} else if (r >= 0) {
		srv_input_read(&s);
		loop(&s);
		if (s.finished && store_operation_finish(s.store, s.op) < 0)
			log_warnx("store: cannot mark the run finished");
		if (s.finished)
			stats_row(&s);
		progress(&s, true);
		status_snapshot(&s);
	}
	s.sum.seconds = srv_now() - s.started;
	*ret = s.sum;
	teardown(&s);
	return r < 0 ? r : s.exit_code;
}
