/* controller.c - the event controller and communication of capture-client.
 *
 * One epoll loop (main thread): the server socket, the monitors' fds, the
 * visitor's "done" eventfd and a signalfd.  The visitor runs each group in a
 * thread of its own (visitor.h explains why); everything it shares with the
 * main thread is its struct visit_group, handed over before the thread
 * starts and read back after pthread_join(), plus the atomic abort flag.
 *
 * Visit life cycle (server mode, as the original client):
 *   visit-event (group) -> monitors start -> visit-event start -> visitor
 *   thread -> every unauthorized event is sent as a system-event at once
 *   (a group of more than one URL reported as dac: the first one aborts
 *   it) -> thread done -> monitors stop (drain, end-of-visit scans) ->
 *   evidence zip upload -> visit-event finish (or error) with one item per
 *   URL.  The items, the algorithm named and the upload parts are made as
 *   an original server needs them by report.c.
 * Revert: the server closes the connection after a malicious visit (there
 * is no reset message).  Then, and whenever the connection ends otherwise,
 * the sandbox is thrown away and the one built ahead takes its place, the
 * monitors are made anew for it and the client connects again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "calibrate.h"
#include "client.h"
#include "escape.h"
#include "log.h"
#include "monitor.h"
#include "monitors/mon-file.h"
#include "monitors/mon-network.h"
#include "proctable.h"
#include "report.h"
#include "sandbox.h"
#include "tls.h"
#include "visitor.h"

#define N_MON 4
static const char *const mon_names[N_MON] = {"process", "file", "registry", "network"};
enum { MON_PROCESS, MON_FILE, MON_REGISTRY, MON_NETWORK };

enum { TAG_SOCK = 1, TAG_SIGNAL, TAG_DONE, TAG_MON = 16 };

/* Sandbox limits a visit ran into (minor error code of its WARNING). */
#define LIMIT_PIDS 0x1u
#define LIMIT_MEMORY 0x2u
#define LIMIT_DISK 0x4u

#define SEND_QUEUE_MAX (256u << 20)

struct visit {
	char *identifier;
	char *program;
	const struct visitor_app *app;
	char profile[VISITOR_NAME_MAX]; /* exclusion profile (analyzer), lower case */
	enum cap_algorithm algorithm;	     /* visited with (the plugin's) */
	enum cap_algorithm report_algorithm; /* named to the server (report_algorithm()) */
	struct visit_group g;
	struct visit_url *urls;
	struct report_items items; /* the server's items: urls, ids, urls as they arrived */
	uint32_t unattributed; /* bulk: unauthorized events no URL could be tied to */
	bool *url_mal;
	atomic_bool abort;
	pthread_t thread;
	bool thread_running;
	int result;
	bool malicious;
	bool aborted; /* by an event (dac) or by the connection's end */
	uint64_t n_reported, n_excluded;
	struct sandbox_cgroup_status limits0; /* at the start: limit counters */
	unsigned limits_hit;		      /* LIMIT_* reached during the visit */
	char dir[PATH_MAX];
	char pcap[PATH_MAX + 16];
	struct sandbox_capture *cap;
	FILE *log; /* events.csv in the evidence folder */
};

struct client {
	const struct client_options *o;
	struct analyzer *an;
	struct visitor *vis;
	struct visitor_options vopts;
	/* sandbox */
	struct sandbox_plan plan;
	char *strs; /* storage for the plan's split --host / --bind strings */
	struct sandbox *sb, *next;
	bool dirty; /* revert sb before the next visit: a malicious visit ran in
		       it, or a bulk group raised its limits */
	struct proctable *procs;
	struct monitor *mons[N_MON];
	const struct monitor_ops *mops[N_MON];
	/* loop */
	int ep, sigfd, done_fd;
	bool quit;
	/* comm */
	int sock;
	SSL_CTX *tls_ctx; /* --tls-*: every connection is mutual TLS */
	SSL *ssl;
	struct cap_framer in;
	struct cap_buf out;
	bool reconnecting;
	/* visit */
	struct visit *v;
	unsigned visits;
	int exit_code; /* standalone: 0 safe, 1 malicious, 2 error */
	/* --calibrate */
	struct calib *cal;
	unsigned cal_round;
};

/* ---- small helpers ---- */

static int ep_add(struct client *c, int fd, uint64_t tag)
{
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag};
	return epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static void now_ptime(struct cap_ptime *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (cap_ptime_from_timespec(&ts, t) < 0)
		memset(t, 0, sizeof(*t));
}

static void print_csv(FILE *f, const char *const *fields, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *q = NULL;
		if (cap_csv_quote(fields[i] ? fields[i] : "", &q) < 0)
			return;
		fprintf(f, "%s%s", i ? "," : "", q);
	}
	fputc('\n', f);
	fflush(f);
}

/* ---- communication ---- */

/* read(2) on the server socket, through TLS when it is on.  A TLS failure
 * reads as a reset: the server's way to end a connection. */
static ssize_t sock_read(struct client *c, void *buf, size_t n)
{
	if (!c->ssl)
		return read(c->sock, buf, n);
	enum tls_want w;
	ssize_t r = tls_read(c->ssl, buf, n, &w);
	if (r >= 0)
		return r;
	if (r != -EAGAIN) {
		log_warnx("server %s: TLS connection failed (%s)", c->o->server, strerror((int)-r));
		r = -ECONNRESET;
	}
	errno = (int)-r;
	return -1;
}

/* cap_buf_flush, through TLS when it is on: 1 all sent, 0 would block, -errno. */
static int sock_flush(struct client *c)
{
	if (!c->ssl)
		return cap_buf_flush(&c->out, c->sock);
	enum tls_want w;
	return tls_buf_flush(c->ssl, &c->out, &w);
}

/* The TLS handshake on the fresh non-blocking socket, bounded to 10 s. */
static int sock_tls(struct client *c)
{
	char err[256] = "";
	int r;
	if (!c->tls_ctx &&
	    (r = tls_ctx_new(false, c->o->tls_ca, c->o->tls_cert, c->o->tls_key, &c->tls_ctx, err,
			     sizeof(err))) < 0)
		return log_error_errno(r, "TLS: %s", err);
	if ((r = tls_new(c->tls_ctx, c->sock, false, &c->ssl)) < 0)
		return r;
	for (int i = 0; i < 100; i++) {
		enum tls_want w;
		r = tls_handshake(c->ssl, &w, err, sizeof(err));
		if (r != -EAGAIN)
			break;
		struct pollfd p = {.fd = c->sock, .events = w == TLS_WANT_WRITE ? POLLOUT : POLLIN};
		(void)poll(&p, 1, 100);
	}
	if (r < 0)
		log_warnx("server %s:%u: TLS handshake failed: %s", c->o->server, c->o->port,
			  r == -EAGAIN ? "timeout" : err);
	return r == -EAGAIN ? -ETIMEDOUT : r;
}

static int send_msg(struct client *c, const struct cap_msg *m)
{
	if (c->sock < 0)
		return -ENOTCONN;
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = cap_msg_encode_to_server(m, &data, &len);
	if (r < 0)
		return log_error_errno(r, "cannot encode %s", cap_msg_type_name(m->type));
	r = cap_buf_append(&c->out, data, len);
	if (r < 0)
		return log_error_errno(r, "send queue full (%zu bytes unsent)", cap_buf_unsent(&c->out));
	r = sock_flush(c);
	if (r < 0)
		return r;
	if (r == 0 && cap_buf_unsent(&c->out) > (16u << 20)) {
		/* Backpressure: the server is slow; wait rather than grow or drop. */
		struct pollfd p = {.fd = c->sock, .events = POLLOUT};
		while (cap_buf_unsent(&c->out) > 0) {
			if (poll(&p, 1, 30000) <= 0)
				return -ETIMEDOUT;
			if ((r = sock_flush(c)) < 0)
				return r;
		}
	}
	return 0;
}

/* Flushes what is queued, blocking up to timeout_ms. */
static int flush_out(struct client *c, int timeout_ms)
{
	while (c->sock >= 0 && cap_buf_unsent(&c->out) > 0) {
		int r = sock_flush(c);
		if (r < 0)
			return r;
		if (r == 1)
			break;
		struct pollfd p = {.fd = c->sock, .events = POLLOUT};
		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
	}
	return 0;
}

static void sock_close(struct client *c)
{
	if (c->sock >= 0) {
		epoll_ctl(c->ep, EPOLL_CTL_DEL, c->sock, NULL);
		tls_free(c->ssl);
		c->ssl = NULL;
		close(c->sock);
	}
	c->sock = -1;
	cap_framer_done(&c->in);
	cap_buf_done(&c->out);
}

static int connect_once(const struct client_options *o)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", o->port);
	int r = getaddrinfo(o->server, port, &hints, &res);
	if (r != 0) {
		log_warnx("server %s: %s", o->server, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	int fd = -1, err = ECONNREFUSED;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -err;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Connects (tries o->connect_tries times, 1 s apart) and introduces itself
 * with connect, or reconnect after a dropped socket. */
static int comm_connect(struct client *c, bool reconnect)
{
	int fd = -ECONNREFUSED;
	for (unsigned i = 0; i < c->o->connect_tries && !c->quit; i++) {
		fd = connect_once(c->o);
		if (fd >= 0)
			break;
		log_debug(LOG_PROTO, "connect to %s:%u: %s (try %u)", c->o->server, c->o->port,
			  strerror(-fd), i + 1);
		struct signalfd_siginfo si;
		struct pollfd p = {.fd = c->sigfd, .events = POLLIN};
		if (poll(&p, 1, 1000) > 0 && read(c->sigfd, &si, sizeof(si)) == sizeof(si))
			c->quit = true;
	}
	if (fd < 0)
		return log_error_errno(fd, "cannot connect to %s:%u", c->o->server, c->o->port);
	c->sock = fd;
	cap_framer_init(&c->in, CAP_FRAME_NUL, 0);
	c->out = (struct cap_buf){.max = SEND_QUEUE_MAX};
	int r = c->o->tls_ca ? sock_tls(c) : 0;
	if (r < 0) {
		sock_close(c);
		return r;
	}
	r = ep_add(c, fd, TAG_SOCK);
	if (r < 0)
		return r;
	/* The server sends its exclusion lists after the connect: they replace
	 * the ones it sent before. */
	if ((r = analyzer_clear_pushed(c->an)) < 0)
		log_error_errno(r, "exclusion profile system");
	struct cap_msg m = {.type = reconnect ? CAP_MSG_RECONNECT : CAP_MSG_CONNECT};
	m.connect.vm_server_id = (char *)c->o->vm_server_id;
	m.connect.vm_id = (char *)c->o->vm_id;
	log_info("connected to %s:%u as %s/%s%s", c->o->server, c->o->port, c->o->vm_server_id,
		 c->o->vm_id, reconnect ? " (reconnect)" : "");
	return send_msg(c, &m);
}

/* ---- sandbox and monitors ---- */

static void on_event(void *userdata, const struct cap_event *ev);
static void on_monitor_error(void *userdata, const char *monitor, int err, const char *msg)
{
	(void)userdata;
	log_warnx("monitor %s: %s: %s", monitor, msg ? msg : "", strerror(-err));
}

static void monitors_free(struct client *c)
{
	for (int i = 0; i < N_MON; i++) {
		if (c->mons[i]) {
			int fd = c->mops[i]->fd(c->mons[i]);
			if (fd >= 0)
				epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, NULL);
			c->mops[i]->free(c->mons[i]);
		}
		c->mons[i] = NULL;
	}
	proctable_free(c->procs);
	c->procs = NULL;
}

static int monitors_new(struct client *c)
{
	struct monitor_target t;
	int r = sandbox_monitor_target(c->sb, &t);
	if (r < 0)
		return r;
	if ((r = proctable_new(0, &c->procs)) < 0)
		return r;
	struct monitor_callbacks cb = {.event = on_event, .error = on_monitor_error, .userdata = c};
	for (int i = 0; i < N_MON; i++) {
		if (i == MON_NETWORK && !c->o->network)
			continue;
		bool off = false;
		for (size_t k = 0; k < MIN(c->o->n_monitors_off, (size_t)4); k++)
			off |= strcmp(c->o->monitors_off[k], mon_names[i]) == 0;
		if (off)
			continue;
		c->mops[i] = monitor_ops_find(mon_names[i]);
		if (!c->mops[i])
			return log_error_errno(-ENOENT, "monitor %s", mon_names[i]);
		r = c->mops[i]->new(&t, c->procs, &cb, &c->mons[i]);
		if (r < 0)
			return log_error_errno(r, "monitor %s", mon_names[i]);
		int fd = c->mops[i]->fd(c->mons[i]);
		if (fd >= 0 && (r = ep_add(c, fd, TAG_MON + (uint64_t)i)) < 0)
			return r;
	}
	unsigned ff = (c->o->file_open ? MON_FILE_OPEN : 0) | (c->o->file_read ? MON_FILE_READ : 0);
	if (ff && c->mons[MON_FILE] && (r = mon_file_set_options(c->mons[MON_FILE], ff)) < 0)
		return log_error_errno(r, "monitor file: options");
	return 0;
}

static int sandbox_build(struct client *c, struct sandbox **ret)
{
	struct sandbox_error e = {0};
	int r = sandbox_new(&c->plan, ret, &e);
	if (r < 0)
		log_warnx("sandbox: step %s (%s): %s", e.step, e.detail, strerror(e.err));
	return r;
}

/* Throws the current sandbox away and makes the next one current (the
 * revert); builds a new "next" right away so that the following revert
 * costs nothing on the critical path. */
static int revert(struct client *c)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	monitors_free(c);
	sandbox_free(c->sb);
	c->sb = c->next;
	c->next = NULL;
	c->dirty = false;
	int r = 0;
	if (!c->sb)
		r = sandbox_build(c, &c->sb);
	if (r >= 0)
		r = monitors_new(c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_debug(LOG_SANDBOX, "revert: %.1f ms",
		  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return r;
}

static void build_ahead(struct client *c)
{
	if (!c->next && sandbox_build(c, &c->next) < 0)
		c->next = NULL; /* the revert will build it then */
}

static int plan_setup(struct client *c)
{
	const struct client_options *o = c->o;
	sandbox_plan_init(&c->plan);
	c->plan.image = o->image;
	c->plan.network = o->network;
	c->plan.resolver = o->resolver;
	c->plan.gateway.server_port = o->server ? o->port : 0;
	c->plan.gateway.nat = o->nat;
	/* A resolver at a private address (the LAN's) is reachable, port 53 only. */
	c->plan.gateway.resolvers[0] = o->resolver;
	c->plan.limits.memory_bytes = o->memory_bytes;
	c->plan.limits.tmpfs_bytes = o->tmpfs_bytes;
	c->plan.limits.pids = o->pids;
	size_t total = 0;
	for (size_t i = 0; i < o->n_hosts; i++)
		total += strlen(o->hosts[i]) + 1;
	for (size_t i = 0; i < o->n_binds; i++)
		total += strlen(o->binds[i]) + 1;
	c->strs = malloc(total + 1);
	if (!c->strs)
		return -ENOMEM;
	char *p = c->strs;
	for (size_t i = 0; i < o->n_hosts && i < SANDBOX_MAX_HOSTS - 1; i++) {
		strcpy(p, o->hosts[i]);
		char *sp = strchr(p, ' ');
		*sp = '\0';
		c->plan.hosts[i].address = p;
		c->plan.hosts[i].name = sp + 1;
		p += strlen(o->hosts[i]) + 1;
	}
	/* binds[0] may be taken by the plan's defaults: append after them */
	size_t b = 0;
	while (b < SANDBOX_MAX_BINDS && c->plan.binds[b].source)
		b++;
	for (size_t i = 0; i < o->n_binds && b < SANDBOX_MAX_BINDS - 1; i++, b++) {
		strcpy(p, o->binds[i]);
		char *colon = strchr(p, ':');
		*colon = '\0';
		c->plan.binds[b].source = p;
		c->plan.binds[b].target = colon + 1;
		p += strlen(o->binds[i]) + 1;
	}
	struct sandbox_error e = {0};
	int r = sandbox_plan_check(&c->plan, &e);
	if (r < 0)
		log_warnx("sandbox plan: %s (%s): %s", e.step, e.detail, strerror(e.err));
	return r;
}

/* ---- the visit ---- */

static void visit_free(struct visit *v)
{
	if (!v)
		return;
	report_items_clear(&v->items);
	free(v->urls);
	free(v->url_mal);
	free(v->identifier);
	free(v->program);
	if (v->log)
		fclose(v->log);
	free(v);
}

static void *visitor_thread(void *arg)
{
	struct client *c = arg;
	struct visit *v = c->v;
	v->result = visitor_visit_group(c->vis, v->app, &v->g);
	uint64_t one = 1;
	if (write(c->done_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("visitor: cannot signal the end of the visit");
	return NULL;
}

static size_t url_of_event(const struct visit *v, const struct cap_event *ev)
{
	if (ev->cgroup_id == 0)
		return SIZE_MAX;
	for (size_t i = 0; i < v->g.n_urls; i++)
		if (v->urls[i].cgroup_id == ev->cgroup_id)
			return i;
	return SIZE_MAX;
}

static void on_event(void *userdata, const struct cap_event *ev)
{
	struct client *c = userdata;
	struct visit *v = c->v;
	if (!v)
		return; /* monitors deliver only between start and stop */
	bool bad = analyzer_unauthorized(c->an, v->profile, ev);
	size_t u = url_of_event(v, ev);
	char pid[24], cg[24];
	snprintf(pid, sizeof(pid), "%ld", (long)ev->pid);
	snprintf(cg, sizeof(cg), "%" PRIu64, ev->cgroup_id);
	const char *f[] = {bad ? "event" : "excluded",
			   u != SIZE_MAX ? v->g.urls[u].url : "*",
			   cap_event_type_name(ev->type),
			   ev->action,
			   pid,
			   ev->process,
			   ev->object1,
			   ev->object2,
			   ev->cmdline};
	if (v->log && (bad || c->o->all_events))
		print_csv(v->log, f, ELEMENTSOF(f));
	if (!bad) {
		v->n_excluded++;
		if (!c->o->server && c->o->all_events)
			print_csv(stdout, f, ELEMENTSOF(f));
		return;
	}
	v->n_reported++;
	v->malicious = true;
	c->dirty = true;
	if (c->cal) {
		(void)calib_record(c->cal, v->program, v->profile, c->cal_round,
				   v->g.urls[u != SIZE_MAX ? u : 0].url, ev);
		return;
	}
	if (u != SIZE_MAX || v->g.n_urls == 1)
		v->url_mal[u != SIZE_MAX ? u : 0] = true;
	else if (v->algorithm == CAP_ALG_BULK && c->o->server)
		/* bulk, no URL's cgroup (the owner of a short flow was never
		   seen): the server visits the URLs not shown malicious again
		   (unattributed="N", docs/protocol.md) */
		v->unattributed++;
	else
		/* no URL's cgroup (shared instance, or the writer is unknown):
		   every URL of the group is suspect, never none */
		for (size_t i = 0; i < v->g.n_urls; i++)
			v->url_mal[i] = true;
	if (c->o->server) {
		struct cap_msg m;
		if (cap_msg_system_from_event(ev, &m) == 0) {
			if (m.system.ev.pid < 0)
				m.system.ev.pid = 0; /* owner unknown: processId is unsigned */
			(void)send_msg(c, &m);
		}
	} else {
		print_csv(stdout, f, ELEMENTSOF(f));
	}
	/* reported as dac: the first event decides a group of more than one URL
	   (the original server splits it and visits the halves again) */
	if (v->report_algorithm == CAP_ALG_DAC && v->g.n_urls > 1 && !atomic_load(&v->abort)) {
		atomic_store(&v->abort, true);
		v->aborted = true;
	}
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(tmp, mode) < 0 && errno != EEXIST ? -errno : 0;
}

static int send_visit(struct client *c, enum cap_visit_type type, uint32_t error_code)
{
	struct visit *v = c->v;
	struct cap_msg m = {.type = CAP_MSG_VISIT_EVENT};
	struct cap_msg_visit *mv = &m.visit;
	mv->identifier = v->identifier;
	mv->program = v->program;
	mv->type = type;
	mv->algorithm = v->report_algorithm;
	mv->malicious = v->malicious;
	mv->has_error_code = type == CAP_VISIT_ERROR;
	mv->error_code = error_code;
	mv->unattributed = type == CAP_VISIT_FINISH ? v->unattributed : 0;
	mv->has_time = true;
	now_ptime(&mv->time);
	struct cap_visit_item items[CAP_PROTO_ITEMS_MAX];
	struct report_results res = {.urls = v->urls,
				     .malicious = v->url_mal,
				     .algorithm = v->report_algorithm,
				     .time = mv->time};
	mv->items = items;
	mv->n_items = report_items_fill(&v->items, v->program,
					type == CAP_VISIT_START ? NULL : &res, items);
	return send_msg(c, &m);
}

/* MemAvailable of the host in bytes, 0 if unknown. */
static uint64_t host_mem_available(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			return (uint64_t)kb << 10;
	return 0;
}

#define BULK_BASE_BYTES (256ULL << 20)
#define BULK_PIDS	256 /* per URL: a Chromium instance's processes and threads */
#define BULK_BASE_PIDS	64

/* A bulk group runs one application instance per URL at once (about
 * 180 MiB each for Chromium, docs/benchmarks.md): the sandbox's limits grow
 * with the group, never above 3/4 of the memory the host has available
 * now; limits above what the group needs are left as configured.  A
 * sandbox whose limits were raised is reverted before the next visit. */
static void bulk_limits(struct client *c, const struct visit *v, size_t n)
{
	const struct client_options *o = c->o;
	uint64_t mem = o->memory_bytes ? o->memory_bytes : SANDBOX_DEFAULT_MEMORY;
	uint64_t pids = o->pids ? o->pids : SANDBOX_DEFAULT_PIDS;
	uint64_t want_mem = (uint64_t)n * o->bulk_memory_bytes + BULK_BASE_BYTES;
	uint64_t want_pids = (uint64_t)n * BULK_PIDS + BULK_BASE_PIDS;
	uint64_t new_mem = 0, new_pids = want_pids > pids ? want_pids : 0;
	if (want_mem > mem) {
		uint64_t cap = host_mem_available() / 4 * 3;
		new_mem = MIN(want_mem, MAX(cap, mem));
		if (new_mem < want_mem)
			log_warnx("visit %s: a bulk group of %zu URLs wants %" PRIu64
				  " MiB, the host can give %" PRIu64 " MiB: instances may fail",
				  v->identifier, n, want_mem >> 20, new_mem >> 20);
		if (new_mem == mem)
			new_mem = 0;
	}
	if (!new_mem && !new_pids)
		return;
	int r = sandbox_set_limits(c->sb, new_mem, new_pids);
	/* The next visit gets a sandbox with the configured limits again. */
	c->dirty = true;
	if (r < 0)
		log_error_errno(r, "visit %s: sandbox limits for a bulk group of %zu", v->identifier, n);
	else
		log_info("visit %s: bulk group of %zu: sandbox memory %" PRIu64 " MiB, %" PRIu64
			 " processes",
			 v->identifier, n, (new_mem ? new_mem : mem) >> 20, new_pids ? new_pids : pids);
}

static int visit_start(struct client *c, const struct cap_msg_visit *mv)
{
	struct visit *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t n = mv->n_items;
	v->identifier = strdup(mv->identifier);
	v->program = strdup(mv->program);
	v->urls = calloc(n ? n : 1, sizeof(*v->urls));
	v->url_mal = calloc(n ? n : 1, sizeof(bool));
	if (!v->identifier || !v->program || !v->urls || !v->url_mal ||
	    report_items_copy(mv, &v->items) < 0) {
		visit_free(v);
		return -ENOMEM;
	}
	v->g.n_urls = n;
	for (size_t i = 0; i < n; i++)
		v->urls[i].url = v->items.urls[i]; /* decoded: what is visited */
	c->v = v;
	c->visits++;
	v->app = visitor_find(c->vis, v->program);
	if (c->o->server) {
		/* without an algorithm attribute (an original server): never
		   bulk, a group of more than one URL reported as dac */
		report_algorithm(v->app, mv->algorithm, n, &v->algorithm, &v->report_algorithm);
	} else {
		v->algorithm = v->app ? visitor_algorithm(v->app, mv->algorithm) : mv->algorithm;
		if (v->algorithm == CAP_ALG_NONE)
			v->algorithm = CAP_ALG_SEQ;
		v->report_algorithm = v->algorithm;
	}
	if (!v->app) {
		log_warnx("visit %s: no application for program '%s'", v->identifier, v->program);
		for (size_t i = 0; i < n; i++)
			v->urls[i].major_error = CAP_ERR_PROCESS_ERROR;
		return -ENOENT;
	}
	visitor_profile(v->app, v->profile, sizeof(v->profile));
	int r = analyzer_load_profile(c->an, v->profile);
	if (r < 0 && r != -EINVAL)
		log_error_errno(r, "exclusion profile %s", v->profile);
	/* A visit never runs in a sandbox a malicious visit has touched. */
	if (c->dirty && (r = revert(c)) < 0)
		return r;
	if (v->algorithm == CAP_ALG_BULK && n > 1)
		bulk_limits(c, v, n);
	snprintf(v->dir, sizeof(v->dir), "%s/visit-%d-%u-%s", c->o->work_dir, (int)getpid(), c->visits,
		 v->identifier);
	if ((r = mkdir_p(v->dir, 0700)) < 0)
		return log_error_errno(r, "evidence folder %s", v->dir);
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/events.csv", v->dir);
	v->log = fopen(p, "we");
	if (c->o->network) {
		snprintf(v->pcap, sizeof(v->pcap), "%s/capture.pcap", v->dir);
		r = sandbox_capture_start(c->sb, v->pcap, &v->cap);
		if (r < 0) {
			log_error_errno(r, "packet capture %s", v->pcap);
			v->pcap[0] = '\0';
		} else if (c->mons[MON_NETWORK]) {
			mon_network_set_pcap(c->mons[MON_NETWORK], v->pcap);
		}
	}
	(void)sandbox_cgroup_status(c->sb, NULL, &v->limits0);
	for (int i = 0; i < N_MON; i++)
		if (c->mons[i] && (r = c->mops[i]->start(c->mons[i])) < 0)
			return log_error_errno(r, "monitor %s: start", mon_names[i]);
	v->g.program = v->program;
	v->g.algorithm = v->algorithm;
	v->g.visit_time = mv->visit_time;
	v->g.urls = v->urls;
	v->g.sb = c->sb;
	v->g.evidence_dir = v->dir;
	v->g.abort = &v->abort;
	atomic_init(&v->abort, false);
	if (c->o->server)
		(void)send_visit(c, CAP_VISIT_START, 0);
	if ((r = pthread_create(&v->thread, NULL, visitor_thread, c)) != 0)
		return log_error_errno(-r, "visitor thread");
	v->thread_running = true;
	static const char *const alg_names[] = {"seq", "seq", "dac", "bulk"};
	log_info("visit %s: %zu URL(s) with %s (%s%s%s), visit time %u s", v->identifier, n,
		 v->app->name, alg_names[v->algorithm % ELEMENTSOF(alg_names)],
		 v->report_algorithm != v->algorithm ? ", reported as " : "",
		 v->report_algorithm != v->algorithm
			 ? alg_names[v->report_algorithm % ELEMENTSOF(alg_names)]
			 : "",
		 mv->visit_time);
	return 0;
}

/* Drains and stops the monitors and the capture; joins the visitor. */
static void visit_stop(struct client *c)
{
	struct visit *v = c->v;
	if (v->thread_running) {
		pthread_join(v->thread, NULL);
		v->thread_running = false;
	}
	uint64_t lost = 0;
	if (v->cap) {
		uint64_t pk = 0, drops = 0;
		sandbox_capture_stop(v->cap, &pk, &drops);
		v->cap = NULL;
		if (drops)
			log_warnx("visit %s: packet capture dropped %" PRIu64 " of %" PRIu64,
				  v->identifier, drops, pk);
	}
	for (int i = 0; i < N_MON; i++) {
		if (!c->mons[i])
			continue;
		int r = c->mops[i]->stop(c->mons[i]);
		if (r < 0)
			log_error_errno(r, "monitor %s: stop", mon_names[i]);
		struct monitor_stats st;
		c->mops[i]->stats(c->mons[i], &st);
		lost += st.lost;
		log_debug(LOG_MAIN,
			  "monitor %s: reported %" PRIu64 " delivered %" PRIu64 " suppressed %" PRIu64
			  " lost %" PRIu64,
			  mon_names[i], st.reported, st.delivered, st.suppressed, st.lost);
		if (!c->o->server && !c->cal) {
			char f[4][24];
			snprintf(f[0], 24, "%" PRIu64, st.reported);
			snprintf(f[1], 24, "%" PRIu64, st.delivered);
			snprintf(f[2], 24, "%" PRIu64, st.suppressed);
			snprintf(f[3], 24, "%" PRIu64, st.lost);
			const char *line[] = {"stats", mon_names[i], f[0], f[1], f[2], f[3]};
			print_csv(stdout, line, ELEMENTSOF(line));
		}
	}
	if (lost)
		log_warnx("visit %s: monitors lost %" PRIu64 " events: reported as WARNING",
			  v->identifier, lost);
	v->result = v->result < 0 ? v->result : lost ? -EOVERFLOW : 0;
	/* A fork bomb, a memory bomb or a full writable layer is stopped by the
	 * sandbox's limits; the visit then ends as a WARNING that names them. */
	struct sandbox_cgroup_status st;
	if (sandbox_cgroup_status(c->sb, NULL, &st) == 0) {
		if (st.pids_max_events > v->limits0.pids_max_events)
			v->limits_hit |= LIMIT_PIDS;
		if (st.oom_kills > v->limits0.oom_kills)
			v->limits_hit |= LIMIT_MEMORY;
	}
	struct statvfs fs;
	if (statvfs(sandbox_upper_dir(c->sb), &fs) == 0 && fs.f_bavail == 0)
		v->limits_hit |= LIMIT_DISK;
	if (v->limits_hit)
		log_warnx("visit %s: sandbox limits reached:%s%s%s", v->identifier,
			  v->limits_hit & LIMIT_PIDS ? " processes" : "",
			  v->limits_hit & LIMIT_MEMORY ? " memory" : "",
			  v->limits_hit & LIMIT_DISK ? " disk" : "");
}

/* Zips the evidence and uploads it (file, parts, file-finished). */
static int upload(struct client *c, const char *zip);

static void visit_finish(struct client *c)
{
	struct visit *v = c->v;
	const char *shots[CAP_PROTO_ITEMS_MAX + 1];
	size_t ns = 0;
	for (size_t i = 0; i < v->g.n_urls && ns < CAP_PROTO_ITEMS_MAX; i++)
		if (v->urls[i].screenshot[0])
			shots[ns++] = v->urls[i].screenshot;
	shots[ns] = NULL;
	bool want_pcap = v->malicious ? c->o->pcap_malicious : c->o->pcap_benign;
	bool want_files = v->malicious && c->o->collect_files;
	if (c->o->server && c->sock >= 0 && (want_files || want_pcap)) {
		char zip[PATH_MAX + 16];
		snprintf(zip, sizeof(zip), "%s/evidence.zip", v->dir);
		int n = collector_zip(zip, sandbox_upper_dir(c->sb), sandbox_lower_dir(c->sb),
				      want_files, want_pcap && v->pcap[0] ? v->pcap : NULL, shots,
				      c->o->collect_max);
		if (n < 0)
			log_error_errno(n, "evidence zip");
		else if (upload(c, zip) < 0)
			log_warnx("visit %s: evidence upload failed; kept in %s", v->identifier, zip);
	}
	size_t errors = 0;
	uint32_t code = 0;
	for (size_t i = 0; i < v->g.n_urls; i++)
		if (v->urls[i].major_error) {
			errors++;
			code = errors > 1 && code != v->urls[i].major_error ? CAP_ERR_MULTIPLE_ERRORS
									    : v->urls[i].major_error;
		}
	enum cap_visit_type type = CAP_VISIT_FINISH;
	if (v->result == -EOVERFLOW || (v->limits_hit && v->result >= 0)) {
		/* events were lost, or the sandbox's limits stopped something:
		   the visit is complete, but flagged (items' minor code: LIMIT_*) */
		type = CAP_VISIT_ERROR;
		code = CAP_ERR_WARNING;
		for (size_t i = 0; i < v->g.n_urls; i++)
			if (!v->urls[i].major_error) {
				v->urls[i].major_error = CAP_ERR_WARNING;
				v->urls[i].minor_error = v->limits_hit;
			}
	} else if (v->result < 0 && v->result != -ECANCELED) {
		type = CAP_VISIT_ERROR;
		code = CAP_ERR_PROCESS_ERROR;
	} else if (errors && errors == v->g.n_urls && v->result != -ECANCELED) {
		type = CAP_VISIT_ERROR; /* completes the visit for NETWORK/TIMEOUT (reference §1) */
	}
	if (c->o->server) {
		if (c->sock >= 0)
			(void)send_visit(c, type, code);
	} else if (c->cal) {
		for (size_t i = 0; i < v->g.n_urls; i++) {
			const struct visit_url *u = &v->urls[i];
			if (v->result < 0 && v->result != -ECANCELED)
				calib_error(c->cal, v->program, u->url, strerror(-v->result));
			else if (u->major_error && u->major_error != CAP_ERR_WARNING)
				calib_error(c->cal, v->program, u->url,
					    cap_error_code_name(u->major_error));
		}
	} else {
		for (size_t i = 0; i < v->g.n_urls; i++) {
			const struct visit_url *u = &v->urls[i];
			char maj[24], min[24];
			snprintf(maj, sizeof(maj), "%s",
				 u->major_error ? cap_error_code_name(u->major_error) : "");
			snprintf(min, sizeof(min), "%u", u->minor_error);
			const char *verdict = v->url_mal[i]		       ? "malicious"
					      : v->result < 0 && v->result != -ECANCELED ? "error"
					      : u->major_error && !cap_error_code_completes_visit(
									 u->major_error)
						      ? "error"
						      : "safe";
			const char *line[] = {"verdict", u->url, verdict, maj, min, u->screenshot};
			print_csv(stdout, line, ELEMENTSOF(line));
			int ec = !strcmp(verdict, "malicious") ? 1 : !strcmp(verdict, "error") ? 2 : 0;
			if (ec == 1 || (ec == 2 && c->exit_code == 0))
				c->exit_code = ec;
		}
		printf("evidence,%s\n", v->dir);
		fflush(stdout);
	}
	log_info("visit %s: %s (%" PRIu64 " unauthorized, %" PRIu64 " excluded events)",
		 v->identifier, v->malicious ? "malicious" : "benign", v->n_reported, v->n_excluded);
}

static void visit_end(struct client *c)
{
	visit_stop(c);
	visit_finish(c);
	visit_free(c->v);
	c->v = NULL;
	if (!c->dirty)
		return;
	build_ahead(c);
}

/* The connection ended (or the client quits) while a visit runs: stop it
 * without reporting (the server has already classified or dropped it). */
static void visit_cancel(struct client *c)
{
	if (!c->v)
		return;
	atomic_store(&c->v->abort, true);
	visit_stop(c);
	visit_free(c->v);
	c->v = NULL;
}

/* ---- upload ---- */

static int wait_for(struct client *c, enum cap_msg_type type, int timeout_ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		const char *msg;
		size_t len;
		int r;
		while ((r = cap_framer_next(&c->in, &msg, &len)) == 1) {
			struct cap_msg m;
			char err[128];
			if (cap_msg_decode_from_server(msg, len, &m, err, sizeof(err)) < 0) {
				log_warnx("server %s: bad message: %s", c->o->server, err);
				return -EBADMSG;
			}
			enum cap_msg_type got = m.type;
			cap_msg_clear(&m);
			if (got == type)
				return 0;
			if (got == CAP_MSG_FILE_REJECT && type == CAP_MSG_FILE_ACCEPT) {
				log_info("server %s: upload not wanted (file-reject)", c->o->server);
				return -EPERM;
			}
			if (got == CAP_MSG_PING) {
				struct cap_msg p = {.type = CAP_MSG_PONG};
				send_msg(c, &p);
			} else {
				log_warnx("server %s: %s while waiting for %s: ignored", c->o->server,
					  cap_msg_type_name(got), cap_msg_type_name(type));
			}
		}
		if (r < 0)
			return r;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
					  (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = c->sock, .events = POLLIN};
		/* TLS: records OpenSSL has read ahead are not seen by poll */
		if (!(c->ssl && SSL_has_pending(c->ssl)) && poll(&p, 1, (int)left) <= 0)
			continue;
		char buf[65536];
		ssize_t n = sock_read(c, buf, sizeof(buf));
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		if ((r = cap_framer_feed(&c->in, buf, (size_t)n)) < 0)
			return r;
	}
}

static int upload(struct client *c, const char *zip)
{
	_cleanup_close_ int fd = open(zip, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	struct cap_msg m = {.type = CAP_MSG_FILE};
	m.file.name = (char *)zip;
	m.file.has_size = true;
	m.file.size = (uint64_t)st.st_size;
	m.file.type = "zip";
	int r = send_msg(c, &m);
	if (r < 0 || (r = flush_out(c, 5000)) < 0)
		return r;
	if ((r = wait_for(c, CAP_MSG_FILE_ACCEPT, 5000)) < 0)
		return r;
	unsigned char buf[REPORT_PART_BYTES];
	uint64_t off = 0;
	while (off < (uint64_t)st.st_size) {
		struct cap_msg p;
		ssize_t n = report_part(fd, off, zip, buf, &p);
		if (n <= 0)
			return n < 0 ? (int)n : -EIO; /* the zip shrank */
		if ((r = send_msg(c, &p)) < 0)
			return r;
		off += (uint64_t)n;
	}
	struct cap_msg f = m;
	f.type = CAP_MSG_FILE_FINISHED;
	if ((r = send_msg(c, &f)) < 0)
		return r;
	return flush_out(c, 30000);
}

/* ---- server messages ---- */

static void on_option(struct client *c, const struct cap_msg_option *o)
{
	/* The options the original server sends; they override the command line. */
	struct client_options *w = (struct client_options *)c->o;
	bool on = !strcmp(o->value, "true") || !strcmp(o->value, "1");
	if (!strcmp(o->name, "collect-modified-files"))
		w->collect_files = on;
	else if (!strcmp(o->name, "capture-network-packets-malicious"))
		w->pcap_malicious = on;
	else if (!strcmp(o->name, "capture-network-packets-benign"))
		w->pcap_benign = on;
	else
		log_debug(LOG_PROTO, "option %s ignored", o->name);
}

static int on_message(struct client *c, struct cap_msg *m)
{
	switch (m->type) {
	case CAP_MSG_CONNECT:
		log_debug(LOG_PROTO, "server version %s", m->connect.server ? m->connect.server : "?");
		return 0;
	case CAP_MSG_OPTION:
		on_option(c, &m->option);
		return 0;
	case CAP_MSG_FILE_EXCLUSION:
	case CAP_MSG_PROCESS_EXCLUSION:
	case CAP_MSG_REGISTRY_EXCLUSION: {
		enum cap_event_type t = m->type == CAP_MSG_FILE_EXCLUSION      ? CAP_EV_FILE
					: m->type == CAP_MSG_PROCESS_EXCLUSION ? CAP_EV_PROCESS
									       : CAP_EV_REGISTRY;
		(void)analyzer_add_rule(c->an, t, m->exclusion.excluded, m->exclusion.action,
					m->exclusion.subject, m->exclusion.object);
		return 0;
	}
	case CAP_MSG_PING: {
		struct cap_msg p = {.type = CAP_MSG_PONG};
		return send_msg(c, &p);
	}
	case CAP_MSG_VISIT_EVENT: {
		if (c->v) {
			log_warnx("server %s: visit-event %s while visiting: ignored", c->o->server,
				  m->visit.identifier);
			return 0;
		}
		if (m->visit.n_items == 0) {
			log_warnx("server %s: visit-event %s without items: ignored", c->o->server,
				  m->visit.identifier);
			return 0;
		}
		int r = visit_start(c, &m->visit);
		if (r < 0) {
			/* report the group as failed; the server retries it elsewhere */
			if (c->v) {
				if (c->o->server)
					(void)send_visit(c, CAP_VISIT_ERROR, CAP_ERR_PROCESS_ERROR);
				for (int i = 0; i < N_MON; i++)
					if (c->mons[i])
						(void)c->mops[i]->stop(c->mons[i]);
				if (c->v->cap)
					sandbox_capture_stop(c->v->cap, NULL, NULL);
				visit_free(c->v);
				c->v = NULL;
			}
			c->dirty = true; /* a half-started visit: revert before the next */
		}
		return 0;
	}
	case CAP_MSG_FILE_ACCEPT:
	case CAP_MSG_FILE_REJECT:
	case CAP_MSG_FILE_OK:
	case CAP_MSG_FILE_ERROR:
		log_debug(LOG_PROTO, "%s outside an upload: ignored", cap_msg_type_name(m->type));
		return 0;
	default:
		log_warnx("server %s: unexpected %s: ignored", c->o->server, cap_msg_type_name(m->type));
		return 0;
	}
}

/* Reads what the socket has; returns -ECONNRESET at EOF. */
static int on_sock(struct client *c)
{
	char buf[65536];
	for (;;) {
		ssize_t n = sock_read(c, buf, sizeof(buf));
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		int r = cap_framer_feed(&c->in, buf, (size_t)n);
		if (r < 0)
			return log_error_errno(r, "server %s: message too long", c->o->server);
		const char *msg;
		size_t len;
		while ((r = cap_framer_next(&c->in, &msg, &len)) == 1) {
			struct cap_msg m;
			char err[128];
			if (cap_msg_decode_from_server(msg, len, &m, err, sizeof(err)) < 0) {
				log_warnx("server %s: bad message dropped: %s", c->o->server, err);
				continue;
			}
			r = on_message(c, &m);
			cap_msg_clear(&m);
			if (r < 0)
				return r;
			if (c->sock < 0)
				return -ECONNRESET;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the loop ---- */

static int client_init(struct client *c, const struct client_options *o)
{
	*c = (struct client){.o = o, .ep = -1, .sigfd = -1, .done_fd = -1, .sock = -1};
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGHUP);
	sigaddset(&ss, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &ss, NULL); /* before any thread starts */
	c->sigfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	c->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->sigfd < 0 || c->ep < 0 || c->done_fd < 0)
		return log_error_errno(-errno, "epoll/signalfd/eventfd");
	int r = ep_add(c, c->sigfd, TAG_SIGNAL);
	if (r < 0 || (r = ep_add(c, c->done_fd, TAG_DONE)) < 0)
		return r;
	if ((r = mkdir_p(o->work_dir, 0700)) < 0)
		return log_error_errno(r, "work folder %s", o->work_dir);
	if ((r = analyzer_new(o->exclusion_dir, &c->an)) < 0)
		return log_error_errno(r, "exclusion lists in %s", o->exclusion_dir);
	if (o->resolver) {
		/* The client's own DNS lookups for its downloads (docs/visitor.md
		 * "Download first"): a UDP exchange with exactly this resolver,
		 * seen without an owner in the pcap pass. */
		char obj[64]; /* the address as a regex: dots escaped (an IPv4 literal, options.c) */
		size_t k = 0;
		for (const char *q = o->resolver; *q && k + 8 < sizeof(obj); q++) {
			if (*q == '.')
				obj[k++] = '\\';
			obj[k++] = *q;
		}
		snprintf(obj + k, sizeof(obj) - k, ":53");
		(void)analyzer_add_local_rule(c->an, CAP_EV_CONNECTION, true, "udp-connection", ".{0}",
					      obj);
		(void)analyzer_add_local_rule(c->an, CAP_EV_CONNECTION, true,
					      "udp-connection-closed", ".{0}", obj);
	}
	const char *apps = o->applications_conf;
	if (apps && access(apps, F_OK) < 0 && errno == ENOENT) {
		log_warnx("%s: not found: built-in applications only", apps);
		apps = NULL;
	}
	c->vopts = (struct visitor_options){
		.applications_conf = apps,
		.headful = o->headful,
		.load_timeout = o->load_timeout,
		.hosts = o->hosts,
		.resolver = o->resolver,
	};
	if ((r = visitor_new(&c->vopts, &c->vis)) < 0)
		return log_error_errno(r, "visitor");
	(void)analyzer_warn_unprofiled(c->an, c->vis);
	if ((r = plan_setup(c)) < 0)
		return r;
	/* A client killed with SIGKILL (the server restarts it) cannot revert:
	 * its sandboxes' tmpfs and cgroups are removed here. */
	unsigned swept = 0;
	if (sandbox_sweep_stale(&c->plan, &swept) == 0 && swept)
		log_info("removed %u sandbox(es) of clients that no longer run", swept);
	if (o->network && (r = sandbox_gateway_up(&c->plan.gateway)) < 0)
		return log_error_errno(r, "sandbox gateway");
	if ((r = sandbox_build(c, &c->sb)) < 0)
		return r;
	if ((r = monitors_new(c)) < 0)
		return r;
	return 0;
}

static void client_done(struct client *c)
{
	visit_cancel(c);
	sock_close(c);
	SSL_CTX_free(c->tls_ctx);
	monitors_free(c);
	sandbox_free(c->sb);
	sandbox_free(c->next);
	visitor_free(c->vis);
	analyzer_free(c->an);
	free(c->strs);
	if (c->ep >= 0)
		close(c->ep);
	if (c->sigfd >= 0)
		close(c->sigfd);
	if (c->done_fd >= 0)
		close(c->done_fd);
}

/* One round of the loop; returns -ECONNRESET when the connection ended. */
static int loop_once(struct client *c, int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(c->ep, evs, ELEMENTSOF(evs), timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	int ret = 0;
	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64;
		if (tag == TAG_SIGNAL) {
			struct signalfd_siginfo si;
			while (read(c->sigfd, &si, sizeof(si)) == sizeof(si))
				if (si.ssi_signo != SIGPIPE) {
					log_info("signal %u: stopping", si.ssi_signo);
					c->quit = true;
				}
		} else if (tag == TAG_DONE) {
			uint64_t x;
			if (read(c->done_fd, &x, sizeof(x)) == sizeof(x) && c->v)
				visit_end(c);
		} else if (tag == TAG_SOCK && c->sock >= 0) {
			int r = on_sock(c);
			if (r < 0)
				ret = r;
		} else if (tag >= TAG_MON && tag < TAG_MON + N_MON) {
			int m = (int)(tag - TAG_MON);
			if (c->mons[m]) {
				int r = c->mops[m]->dispatch(c->mons[m]);
				if (r < 0)
					log_error_errno(r, "monitor %s", mon_names[m]);
			}
		}
	}
	return ret;
}

int client_run_server(const struct client_options *o)
{
	struct client c;
	int r = client_init(&c, o);
	if (r >= 0)
		r = comm_connect(&c, false);
	if (r >= 0)
		build_ahead(&c);
	while (r >= 0 && !c.quit) {
		r = loop_once(&c, 1000);
		if (r != -ECONNRESET && r != -EPIPE && r != -ETIMEDOUT)
			continue;
		/* The server closed the connection: its way to ask for a revert
		 * (after a malicious visit, an error, or inactivity).  A visit
		 * still running has been classified by the server already. */
		bool eof = r == -ECONNRESET;
		log_info("connection to %s:%u ended (%s): revert and connect again", o->server,
			 o->port, eof ? "closed by the server" : strerror(-r));
		visit_cancel(&c);
		sock_close(&c);
		r = revert(&c);
		if (r >= 0)
			r = comm_connect(&c, false);
		if (r >= 0)
			build_ahead(&c);
	}
	client_done(&c);
	return r < 0 && !c.quit ? r : 0;
}

int client_run_standalone(const struct client_options *o)
{
	struct client c;
	int r = client_init(&c, o);
	if (r >= 0) {
		struct cap_visit_item items[CLIENT_MAX_LIST];
		struct cap_msg_visit mv = {
			.identifier = "1",
			.program = (char *)o->program,
			.algorithm = o->algorithm,
			.visit_time = o->visit_time,
			.n_items = o->n_visits,
			.items = items,
		};
		for (size_t i = 0; i < o->n_visits; i++)
			items[i] = (struct cap_visit_item){.url = (char *)o->visits[i]};
		r = visit_start(&c, &mv);
		if (r < 0) {
			log_error_errno(r, "visit");
			if (c.v) {
				visit_cancel(&c);
			}
			c.exit_code = 2;
		}
		while (r >= 0 && c.v && !c.quit)
			r = loop_once(&c, 1000);
		if (c.quit && c.v) {
			visit_cancel(&c);
			c.exit_code = 2;
		}
	} else {
		c.exit_code = 2;
	}
	int ec = c.exit_code;
	client_done(&c);
	return r < 0 ? 2 : ec;
}

/* ---- --calibrate (calibrate.h, docs/exclusion-lists.md "Calibration") ---- */

/* Whether the application's executable is there for the sandbox: in the
 * guest image (or the host's /), or bound in with --bind. */
static bool app_installed(const struct client_options *o, const struct visitor_app *app)
{
	if (!app->executable[0])
		return true; /* the plugin's own default (pdf, fetch): checked at the visit */
	for (size_t i = 0; i < o->n_binds; i++) {
		const char *inside = strrchr(o->binds[i], ':');
		if (inside && !strcmp(inside + 1, app->executable))
			return true;
	}
	char p[2 * PATH_MAX];
	snprintf(p, sizeof(p), "%s%s", o->image ? o->image : "", app->executable);
	return access(p, X_OK) == 0;
}

/* One URL with one program in a fresh sandbox; events go to c->cal. */
static int calibrate_visit(struct client *c, const char *program, const char *url)
{
	char id[32];
	snprintf(id, sizeof(id), "cal-%u", c->visits + 1);
	struct cap_visit_item item = {.url = (char *)url};
	struct cap_msg_visit mv = {
	    .identifier = id,
	    .program = (char *)program,
	    .algorithm = CAP_ALG_SEQ,
	    .visit_time = c->o->visit_time,
	    .n_items = 1,
	    .items = &item,
	};
	c->dirty = true; /* every visit in a sandbox nothing ran in */
	int r = visit_start(c, &mv);
	if (r < 0) {
		calib_error(c->cal, program, url, strerror(-r));
		visit_cancel(c);
		return 0;
	}
	while (r >= 0 && c->v && !c->quit)
		r = loop_once(c, 1000);
	if (c->v)
		visit_cancel(c);
	c->dirty = true;
	build_ahead(c);
	return r < 0 ? r : 0;
}

int client_run_calibrate(const struct client_options *o)
{
	_cleanup_free_ struct calib_item *items = calloc(CALIB_MAX_ITEMS, sizeof(*items));
	size_t n_items = 0;
	if (!items)
		return 2;
	if (!o->n_visits) {
		char err[512];
		if (calib_read_list(o->calibration_list, items, CALIB_MAX_ITEMS, &n_items, err,
				    sizeof(err)) < 0) {
			log_warnx("%s", err);
			return 2;
		}
	}
	/* The programs: every --program, else each program of the list. */
	const char *progs[64];
	size_t n_progs = 0;
	for (size_t i = 0; i < o->n_cal_programs && n_progs < ELEMENTSOF(progs); i++)
		progs[n_progs++] = o->cal_programs[i];
	for (size_t i = 0; !o->n_cal_programs && i < n_items && n_progs < ELEMENTSOF(progs); i++) {
		bool seen = false;
		for (size_t k = 0; k < n_progs && !seen; k++)
			seen = !strcasecmp(progs[k], items[i].program);
		if (!seen)
			progs[n_progs++] = items[i].program;
	}
	struct client c;
	int r = client_init(&c, o);
	if (r >= 0)
		r = calib_new(o->rounds, &c.cal);
	int ec = r < 0 ? 2 : 0;
	size_t done = 0;
	for (size_t p = 0; r >= 0 && p < n_progs && !c.quit; p++) {
		const struct visitor_app *app = visitor_find(c.vis, progs[p]);
		bool asked = o->n_cal_programs > 0;
		if (!app || !app_installed(o, app)) {
			if (asked) {
				log_warnx("calibrate: program %s: %s", progs[p],
					  app ? "not installed" : "no such application");
				ec = 2;
			} else {
				log_info("calibrate: program %s: %s, skipped", progs[p],
					 app ? app->executable : "no such application");
			}
			continue;
		}
		const char *urls[CALIB_MAX_ITEMS];
		size_t n = 0;
		for (size_t i = 0; i < o->n_visits; i++)
			urls[n++] = o->visits[i];
		for (size_t i = 0; !o->n_visits && i < n_items; i++)
			if (!strcasecmp(items[i].program, progs[p]))
				urls[n++] = items[i].url;
		if (!n) {
			log_warnx("calibrate: program %s: no URL for it in %s (give --visit)", progs[p],
				  o->calibration_list);
			ec = 2;
			continue;
		}
		char profile[VISITOR_NAME_MAX];
		visitor_profile(app, profile, sizeof(profile));
		calib_program(c.cal, progs[p], profile, n);
		log_info("calibrate: %s: %zu URL(s) x %u round(s)", progs[p], n, o->rounds);
		for (unsigned round = 0; r >= 0 && round < o->rounds && !c.quit; round++)
			for (size_t i = 0; r >= 0 && i < n && !c.quit; i++) {
				c.cal_round = round;
				r = calibrate_visit(&c, progs[p], urls[i]);
			}
		done++;
	}
	if (c.cal) {
		size_t k = calib_print(c.cal, stdout, o->exclusion_dir);
		fflush(stdout);
		if (r < 0 || c.quit || calib_errors(c.cal) || !done)
			ec = 2;
		else if (k && ec == 0)
			ec = 1;
		log_info("calibrate: %zu program(s), %zu candidate rule(s), %zu failed visit(s)", done, k,
			 calib_errors(c.cal));
		calib_free(c.cal);
		c.cal = NULL;
	}
	client_done(&c);
	return ec;
}
