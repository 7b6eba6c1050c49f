/* clients.c - one TCP connection per client: framing, decoding and the
 * client state machine (scheduler.h) driven by the messages.  See server.c
 * for the overall design.  Every protocol violation, oversize or garbage
 * message ends only the connection it came on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>

#include "escape.h"
#include "exclusions.h"
#include "log.h"
#include "output.h"
#include "proto.h"
#include "scheduler.h"
#include "server-internal.h"
#include "store.h"
#include "vmserver.h"

static void set_epollout(struct srv *s, struct srv_client *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = &c->w};
	(void)epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* A peer that has not finished the TLS handshake by then is closed. */
#define SRV_TLS_HANDSHAKE_TIMEOUT 10.0

/* cap_buf_flush through TLS when the connection has it: 1 all written, 0 would
 * block with data left, -errno. */
static int flush_out(struct srv_client *c)
{
	if (!c->ssl)
		return cap_buf_flush(&c->out, c->fd);
	if (!c->tls_done)
		return cap_buf_unsent(&c->out) ? 0 : 1; /* sent when the handshake ends */
	enum tls_want w;
	return tls_buf_flush(c->ssl, &c->out, &w);
}

static int send_msg(struct srv *s, struct srv_client *c, const struct cap_msg *m)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = cap_msg_encode_to_client(m, &data, &len);
	if (r < 0 || (r = cap_buf_append(&c->out, data, len)) < 0)
		return r;
	r = flush_out(c);
	if (r == 0)
		set_epollout(s, c, true);
	return r < 0 ? r : 0;
}

/* Ends an unfinished upload: its partial file is removed (a file is kept
 * only when complete, and then it has its store record). */
static void upload_abort(struct srv_client *c)
{
	if (c->up_fd >= 0) {
		close(c->up_fd);
		if (c->up_abs && unlink(c->up_abs) < 0 && errno != ENOENT)
			log_warn("client %s: cannot remove the partial upload %s", c->label, c->up_rel);
	}
	c->up_fd = -1;
	free(c->up_rel);
	free(c->up_abs);
	c->up_rel = c->up_abs = NULL;
}

static void visit_reset(struct srv_client *c)
{
	for (size_t i = 0; i < c->n_ev; i++)
		free(c->ev_lines[i]);
	c->n_ev = 0;
	c->n_procs = 0;
	for (size_t i = 0; i < c->n_evidence; i++)
		free(c->evidence[i]);
	c->n_evidence = 0;
	c->malicious = false;
	c->up_total = 0;
	upload_abort(c);
}

static void client_free(struct srv_client *c)
{
	visit_reset(c);
	free(c->ev_lines);
	free(c->ev_pids);
	free(c->procs);
	cap_framer_done(&c->fr);
	cap_buf_done(&c->out);
	free(c);
}

void srv_reap_dead(struct srv *s)
{
	while (s->dead) {
		struct srv_client *c = s->dead;
		s->dead = c->next;
		client_free(c);
	}
}

/* Ends c's group: results go through the scheduler with c as context. */
static void group_done(struct srv *s, struct srv_client *c, enum sched_verdict v,
                       const enum sched_item *bulk, uint32_t err)
{
	struct sched_group *g = c->group;
	c->group = NULL;
	s->cur_group_id = g->id;
	s->cur_client = c;
	/* one store transaction per group: one commit instead of one per URL */
	bool tx = store_tx_begin(s->store) == 0;
	if (tx)
		srv_output_sync(s);
	if (bulk)
		sched_bulk_done(s->sched, g, bulk);
	else
		sched_group_done(s->sched, g, v, NULL, c->malicious, err);
	if (tx && store_tx_commit(s->store) < 0)
		srv_requeue_finals(s); /* nothing of them is recorded: visited again */
	else
		srv_write_finals(s);
	s->cur_group_id = 0;
	s->cur_client = NULL;
}

static void progress_group(struct srv *s, const struct sched_group *g, const char *status);

/* A revert of a connected client: remembered by name until it reconnects. */
static void revert_begin(struct srv *s, const struct srv_client *c)
{
	if (c->state == CLIENT_CONNECTING || c->name[0] == '#')
		return; /* never sent connect: no name to wait for */
	unsigned n = s->n_reverts_pending;
	if (n == SRV_MAX_PENDING_REVERTS) { /* forget the oldest */
		memmove(s->reverts, s->reverts + 1, (n - 1) * sizeof(s->reverts[0]));
		n--;
	}
	cap_strlcpy(s->reverts[n].name, c->name, sizeof(s->reverts[n].name));
	s->reverts[n].at = srv_now();
	s->n_reverts_pending = n + 1;
}

/* c connected: if it was reverted, the revert took until now. */
static void revert_end(struct srv *s, const struct srv_client *c)
{
	for (unsigned i = 0; i < s->n_reverts_pending; i++) {
		if (strcmp(s->reverts[i].name, c->name) != 0)
			continue;
		s->revert_seconds += srv_now() - s->reverts[i].at;
		s->n_revert_samples++;
		memmove(s->reverts + i, s->reverts + i + 1,
		        (s->n_reverts_pending - i - 1) * sizeof(s->reverts[0]));
		s->n_reverts_pending--;
		return;
	}
}

static void write_event_log(struct srv *s, struct srv_client *c);

/* Closes c's socket (if it has one) and gives back what it held. */
static void detach(struct srv *s, struct srv_client *c)
{
	if (c->fd < 0)
		return;
	(void)epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	tls_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
	s->n_clients--;
	s->pending_input -= c->pending_in;
	c->pending_in = 0;
	c->partial_since = 0;
}

void srv_client_close(struct srv *s, struct srv_client *c, uint32_t err, bool revert)
{
	if (c->dead)
		return;
	/* Events came before the connection ended: the scheduler decides the
	 * group by them (sched_group_done), so its event log is written as for
	 * a finished visit (a client killed in the middle of a malicious visit
	 * left a malicious URL without its log). */
	if (c->group && c->malicious && c->n_ev > 0)
		write_event_log(s, c);
	if (c->group) {
		uint32_t code = err ? err : CAP_ERR_CONNECTION_RESET;
		const char *name = cap_error_code_name(code);
		char status[64];
		snprintf(status, sizeof(status), "error:%s-0", name ? name : "UNKNOWN");
		progress_group(s, c->group, status);
		log_debug(LOG_PROTO, "client %s: group %u ends with %s (retried once)", c->label,
		          c->group->id, status);
		group_done(s, c, VERDICT_ERROR, NULL, code);
	}
	if (c->child)
		vmserver_client_closed(s, c->child);
	if (revert)
		revert_begin(s, c);
	c->dead = true;
	detach(s, c);
	upload_abort(c);
	for (struct srv_client **p = &s->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->next = s->dead;
	s->dead = c;
	if (revert && c->name[0] != '#') { /* never connected: nothing to revert */
		s->sum.reverts++;
		if (s->o->no_revert) {
			log_warnx("client %s needs a revert and -r is set: stopping", c->label);
			s->exit_code = 20;
			s->stop = true;
		}
	}
}

static void drop(struct srv *s, struct srv_client *c, uint32_t err, const char *why)
{
	log_warnx("client %s: %s; closing the connection", c->label, why);
	srv_client_close(s, c, err, true);
}

static bool transition(struct srv *s, struct srv_client *c, enum client_event ev)
{
	enum client_state next;
	if (sched_client_next(c->state, ev, &next) < 0) {
		char why[96];
		snprintf(why, sizeof(why), "unexpected message in state %s",
		         client_state_to_string(c->state));
		drop(s, c, CAP_ERR_CONNECTION_RESET, why);
		return false;
	}
	c->state = (int)next;
	return true;
}

static void set_label(struct srv_client *c)
{
	snprintf(c->label, sizeof(c->label), "%s (%s)", c->name, c->peer);
}

static void peer_string(const struct sockaddr_storage *ss, socklen_t sl, char *buf, size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (getnameinfo((const struct sockaddr *)ss, sl, host, sizeof(host), port, sizeof(port),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, size, "?");
	else if (ss->ss_family == AF_INET6)
		snprintf(buf, size, "[%.46s]:%.6s", host, port);
	else
		snprintf(buf, size, "%.46s:%.6s", host, port);
}

/* A connection closed as it came (over max-connections, or no descriptor
 * left): counted, and said at most every 10 s. */
static void refused(struct srv *s, const char *why)
{
	s->refused++;
	s->refused_why = why;
	double now = srv_now();
	if (now - s->refused_log_at < 10.0)
		return;
	srv_refused_report(s, now);
}

void srv_refused_report(struct srv *s, double now)
{
	if (s->refused == s->refused_logged)
		return;
	log_warnx("%s: %" PRIu64 " connections closed as they came in the last %.0f s",
	          s->refused_why,
	          s->refused - s->refused_logged,
	          s->refused_log_at > 0 ? now - s->refused_log_at : 0.0);
	s->refused_logged = s->refused;
	s->refused_log_at = now;
}

/* Out of descriptors: take the waiting connection with the reserve
 * descriptor and close it (so the kernel's queue does not keep the listen
 * socket readable), then stop accepting for a second. */
static void accept_emfile(struct srv *s)
{
	if (s->reserve_fd >= 0) {
		close(s->reserve_fd);
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	refused(s, "accept: out of file descriptors");
	if (!s->listen_paused) {
		(void)epoll_ctl(s->ep, EPOLL_CTL_DEL, s->listen_fd, NULL);
		s->listen_paused = true;
	}
	s->resume_accept = srv_now() + 1.0;
}

static int send_hello(struct srv *s, struct srv_client *c)
{
	struct cap_msg m = {.type = CAP_MSG_CONNECT,
	                    .connect.server = (char *)CAP_PROTO_SERVER_VERSION};
	return send_msg(s, c, &m);
}

void srv_accept(struct srv *s)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl,
		                 SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_emfile(s);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept");
			return;
		}
		if (s->n_clients >= s->cfg->max_connections) {
			close(fd);
			refused(s, "max-connections reached");
			continue;
		}
		struct srv_client *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->up_fd = -1;
		c->serial = ++s->next_serial;
		c->w = (struct srv_watch){.kind = W_CLIENT, .p = c};
		c->state = CLIENT_DISCONNECTED;
		(void)sched_client_next(CLIENT_DISCONNECTED, CEV_ACCEPTED, (enum client_state *)&c->state);
		snprintf(c->name, sizeof(c->name), "#%u", c->serial);
		peer_string(&ss, sl, c->peer, sizeof(c->peer));
		set_label(c);
		cap_framer_init(&c->fr, CAP_FRAME_LINE, s->cfg->max_message_size);
		c->out.max = 4 * (size_t)s->cfg->max_message_size + (1u << 20);
		c->last_contact = c->last_ping = srv_now();
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->w};
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			client_free(c);
			continue;
		}
		s->n_clients++;
		c->next = s->clients;
		s->clients = c;
		c->accepted_at = c->last_contact;
		if (s->tls) {
			/* connect follows the handshake (tls_step) */
			if (tls_new(s->tls, fd, true, &c->ssl) < 0)
				srv_client_close(s, c, 0, false);
			continue;
		}
		if (send_hello(s, c) < 0)
			srv_client_close(s, c, 0, false);
	}
}

static void read_messages(struct srv *s, struct srv_client *c);

#define TLS_REFUSALS_LOGGED 5 /* refusals logged one by one per 10 s */

/* Anyone who reaches the port can fail handshakes as fast as it likes: the
 * first few refusals of every 10 s are logged one by one, the rest are
 * counted into one line (srv_tls_refusals_report). */
static bool tls_refusal_logged(struct srv *s)
{
	srv_tls_refusals_report(s, srv_now());
	if (s->tls_refusals_in_window++ < TLS_REFUSALS_LOGGED)
		return true;
	s->tls_refusals_hidden++;
	return false;
}

void srv_tls_refusals_report(struct srv *s, double now)
{
	if (now - s->tls_refusal_window < 10.0)
		return;
	if (s->tls_refusals_hidden)
		log_warnx("TLS: %" PRIu64 " more connections refused in the last %.0f s (not logged "
		          "one by one)",
		          s->tls_refusals_hidden, now - s->tls_refusal_window);
	s->tls_refusal_window = now;
	s->tls_refusals_in_window = 0;
	s->tls_refusals_hidden = 0;
}

/* Drives the handshake; once done, the connect message goes out. */
static void tls_step(struct srv *s, struct srv_client *c)
{
	enum tls_want w;
	char err[256] = "";
	int r = tls_handshake(c->ssl, &w, err, sizeof(err));
	if (r == -EAGAIN) {
		set_epollout(s, c, w == TLS_WANT_WRITE);
		return;
	}
	if (r < 0) {
		if (tls_refusal_logged(s))
			log_warnx("client %s: TLS handshake failed (%s); refused", c->peer,
			          r == -EPROTO && strstr(err, "wrong version")
			                  ? "not TLS: a plain-text client?"
			                  : err);
		srv_client_close(s, c, 0, false);
		return;
	}
	r = tls_peer_name(c->ssl, c->cert_name, sizeof(c->cert_name));
	if (r < 0) {
		log_warnx("client %s: TLS certificate without a usable name; refused", c->peer);
		srv_client_close(s, c, 0, false);
		return;
	}
	c->tls_done = true;
	c->last_contact = srv_now();
	log_debug(LOG_PROTO, "client %s: TLS certificate of %s", c->peer, c->cert_name);
	set_epollout(s, c, false);
	if (send_hello(s, c) < 0) {
		srv_client_close(s, c, 0, false);
		return;
	}
	/* bytes read ahead with the handshake's last record would wait unseen */
	if (SSL_has_pending(c->ssl))
		read_messages(s, c);
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

int srv_tls_setup(struct srv *s)
{
	const struct server_config *cfg = s->cfg;
	if (cfg->tls_dir[0]) {
		char ca[PATH_MAX + 16], cert[PATH_MAX + 16], key[PATH_MAX + 16], err[PATH_MAX + 256];
		snprintf(ca, sizeof(ca), "%s/ca.pem", cfg->tls_dir);
		snprintf(cert, sizeof(cert), "%s/server.pem", cfg->tls_dir);
		snprintf(key, sizeof(key), "%s/server.key", cfg->tls_dir);
		int r = tls_ctx_new(true, ca, cert, key, &s->tls, err, sizeof(err));
		if (r < 0) {
			log_warnx("tls-dir: %s", err);
			return r;
		}
		log_info("mutual TLS with every client (CA %s)", ca);
		return 0;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sl) < 0)
		return log_error_errno(-errno, "getsockname");
	if (is_loopback(&ss))
		return 0;
	if (strcmp(cfg->plaintext_clients, "allow") == 0) {
		log_warnx("listening on %s in plain text: clients are not authenticated "
		          "(plaintext-clients=\"allow\"; tls-dir would make them)",
		          s->o->address);
		return 0;
	}
	log_warnx("refusing to listen on %s in plain text: not a loopback address; set tls-dir "
	          "(capture-server ca init) or plaintext-clients=\"allow\"",
	          s->o->address);
	return -EPERM;
}

void srv_accept_tick(struct srv *s, double now)
{
	if (!s->listen_paused || now < s->resume_accept)
		return;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->w_listen};
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->listen_fd, &ev) == 0)
		s->listen_paused = false;
}

static int send_options(struct srv *s, struct srv_client *c)
{
	const struct {
		const char *name;
		bool v;
	} opts[] = {
		{"capture-network-packets-malicious", s->cfg->capture_network_packets_malicious},
		{"capture-network-packets-benign", s->cfg->capture_network_packets_benign},
		{"collect-modified-files", s->cfg->collect_modified_files},
	};
	for (size_t i = 0; i < ELEMENTSOF(opts); i++) {
		struct cap_msg m = {.type = CAP_MSG_OPTION};
		m.option.name = (char *)opts[i].name;
		m.option.value = (char *)(opts[i].v ? "true" : "false");
		int r = send_msg(s, c, &m);
		if (r < 0)
			return r;
	}
	/* send-exclusion-lists: the rules, encoded once at start */
	size_t len;
	const char *data = srv_exclusions_data(s->excl, &len);
	if (len > 0) {
		c->out.max += len;
		int r = cap_buf_append(&c->out, data, len);
		if (r < 0 || (r = flush_out(c)) < 0)
			return r;
		set_epollout(s, c, true);
	}
	return 0;
}

static void drain_messages(struct srv *s, struct srv_client *c);

/* The address part of a peer string ("10.1.1.2:5000", "[::1]:5000"). */
static bool same_host(const char *a, const char *b)
{
	const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
	return ca && cb && ca - a == cb - b && strncmp(a, b, (size_t)(ca - a)) == 0;
}

/* reconnect, as the original server does it: the client object that has
 * these ids moves onto the new connection with its visit state; the new
 * object goes.  Only a client whose socket the server saw end, and only
 * from the same host: without authentication (TLS, the farm) a peer could
 * otherwise take over another's visit.  Returns false if there is none
 * (then it is a connect). */
static bool adopt(struct srv *s, struct srv_client *c, const char *name)
{
	struct srv_client *o = s->clients;
	/* with TLS the certificate proves the host (on_connect checked the name) */
	while (o && (o == c || o->dead || o->fd >= 0 || strcmp(o->name, name) != 0 ||
	             (!c->ssl && !same_host(o->peer, c->peer))))
		o = o->next;
	if (!o)
		return false;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &o->w};
	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		log_warn("client %s: reconnect", c->label);
		return false;
	}
	o->fd = c->fd;
	c->fd = -1;
	o->ssl = c->ssl;
	c->ssl = NULL;
	o->tls_done = c->tls_done;
	cap_strlcpy(o->cert_name, c->cert_name, sizeof(o->cert_name));
	cap_framer_done(&o->fr);
	o->fr = c->fr; /* what followed reconnect in the same read */
	cap_framer_init(&c->fr, CAP_FRAME_LINE, s->cfg->max_message_size);
	cap_buf_done(&o->out);
	o->out = c->out;
	c->out = (struct cap_buf){.max = o->out.max};
	o->pending_in = c->pending_in;
	o->partial_since = c->partial_since;
	c->pending_in = 0;
	o->orphan_until = 0;
	o->last_contact = o->last_ping = srv_now();
	cap_strlcpy(o->peer, c->peer, sizeof(o->peer));
	set_label(o);
	log_info("client %s: reconnected%s", o->label,
	         o->group ? "; its visit goes on" : "");
	/* c had the connection count; it moves to o with the socket */
	c->dead = true;
	for (struct srv_client **p = &s->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->next = s->dead;
	s->dead = c;
	if (cap_buf_unsent(&o->out) > 0)
		set_epollout(s, o, true);
	drain_messages(s, o);
	return true;
}

static void on_connect(struct srv *s, struct srv_client *c, const struct cap_msg *m)
{
	char name[sizeof(c->name)];
	snprintf(name, sizeof(name), "%.30s:%.30s",
	         m->connect.vm_server_id ? m->connect.vm_server_id : "-",
	         m->connect.vm_id ? m->connect.vm_id : "-");
	if (c->ssl && (!m->connect.vm_server_id || strcmp(m->connect.vm_server_id, c->cert_name))) {
		log_warnx("client %s: vm-server-id \"%.64s\" is not its certificate's name \"%s\"; "
		          "refused",
		          c->peer, m->connect.vm_server_id ? m->connect.vm_server_id : "",
		          c->cert_name);
		srv_client_close(s, c, 0, false);
		return;
	}
	if (m->type == CAP_MSG_RECONNECT && c->state == CLIENT_CONNECTING && adopt(s, c, name))
		return;
	if (!transition(s, c, CEV_CONNECT))
		return;
	/* connect (not reconnect) with the ids of a client that lost its socket:
	 * that client was restarted, its visit is over */
	for (struct srv_client *o = s->clients; o; o = o->next)
		if (o != c && !o->dead && o->fd < 0 && strcmp(o->name, name) == 0) {
			log_info("client %s: connected anew; the visit of its lost connection ends",
			         o->label);
			srv_client_close(s, o, CAP_ERR_CONNECTION_RESET, true);
			break;
		}
	cap_strlcpy(c->name, name, sizeof(c->name));
	set_label(c);
	revert_end(s, c);
	c->child = vmserver_client_connected(s, m->connect.vm_server_id, m->connect.vm_id);
	if (send_options(s, c) < 0) {
		drop(s, c, CAP_ERR_SOCKET_ERROR, "cannot send options");
		return;
	}
	(void)transition(s, c, CEV_OPTIONS_SENT);
	log_debug(LOG_PROTO, "client %s connected", c->label);
}

static void progress_group(struct srv *s, const struct sched_group *g, const char *status)
{
	for (uint32_t i = 0; i < g->n; i++)
		(void)output_progress(s->out, status, g->id, g->urls[i]->url, g->urls[i]->client,
		                      g->urls[i]->time);
}

/* A set of pids (open addressing; pids may be any int, -1 included). */
struct pidset {
	int64_t *k; /* PIDSET_EMPTY = free */
	size_t mask;
};
#define PIDSET_EMPTY INT64_MIN

static int pidset_init(struct pidset *ps, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n + 2)
		cap *= 2;
	ps->k = malloc(cap * sizeof(*ps->k));
	if (!ps->k)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		ps->k[i] = PIDSET_EMPTY;
	ps->mask = cap - 1;
	return 0;
}

static size_t pidset_slot(const struct pidset *ps, pid_t pid)
{
	size_t i = ((uint32_t)pid * 2654435761u) & ps->mask;
	while (ps->k[i] != PIDSET_EMPTY && ps->k[i] != pid)
		i = (i + 1) & ps->mask;
	return i;
}

static bool pidset_has(const struct pidset *ps, pid_t pid)
{
	return ps->k[pidset_slot(ps, pid)] == pid;
}

/* Adds pid (there is room: the set is sized for every pid added). */
static void pidset_add(struct pidset *ps, pid_t pid)
{
	ps->k[pidset_slot(ps, pid)] = pid;
}

/* The pids that are an event's process or one of its ancestors (by the
 * visit's "created" events), each ancestor chain walked once: an item is
 * malicious if its process is in the set.  Linear in events + processes
 * (a crafted bulk finish cost ~0.3 s per item when this was a walk per
 * item and event). */
static int event_ancestors(const struct srv_client *c, struct pidset *ret)
{
	struct pidset parent_of; /* child pids; the parent sits at the same index below */
	pid_t *par = NULL;
	int r = pidset_init(&parent_of, c->n_procs);
	if (r < 0)
		return r;
	if (!(par = calloc(parent_of.mask + 1, sizeof(*par))) ||
	    (r = pidset_init(ret, c->n_ev + c->n_procs)) < 0) {
		free(parent_of.k);
		free(par);
		return r < 0 ? r : -ENOMEM;
	}
	for (size_t i = 0; i < c->n_procs; i++) {
		size_t k = pidset_slot(&parent_of, c->procs[i][0]);
		if (parent_of.k[k] == PIDSET_EMPTY) { /* the first "created" of a pid counts */
			parent_of.k[k] = c->procs[i][0];
			par[k] = c->procs[i][1];
		}
	}
	for (size_t e = 0; e < c->n_ev; e++) {
		pid_t pid = c->ev_pids[e];
		for (int depth = 0; depth < 64 && !pidset_has(ret, pid); depth++) {
			pidset_add(ret, pid);
			size_t k = pidset_slot(&parent_of, pid);
			if (parent_of.k[k] != pid)
				break; /* no known parent */
			pid = par[k];
		}
	}
	free(parent_of.k);
	free(par);
	return 0;
}

static int cmp_u64_index(const void *a, const void *b, void *ud)
{
	const struct sched_group *g = ud;
	uint64_t x = g->urls[*(const uint32_t *)a]->id, y = g->urls[*(const uint32_t *)b]->id;
	return x < y ? -1 : x > y;
}

static int cmp_url_index(const void *a, const void *b, void *ud)
{
	const struct sched_group *g = ud;
	return strcmp(g->urls[*(const uint32_t *)a]->url, g->urls[*(const uint32_t *)b]->url);
}

/* The group indices whose URL id (id != NULL) or URL matches the item:
 * [*first, *end) of the sorted order. */
static void item_matches(const struct sched_group *g, const uint32_t *by_id,
                         const uint32_t *by_url, const struct cap_visit_item *it,
                         const uint32_t **ret_first, const uint32_t **ret_end)
{
	const uint32_t *v = it->id ? by_id : by_url;
	uint64_t id = 0;
	if (it->id) {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(it->id, &end, 10);
		if (errno || end == it->id || *end || it->id[0] == '-') {
			*ret_first = *ret_end = v; /* "null" or garbage: no match */
			return;
		}
		id = x;
	}
	size_t lo = 0, hi = g->n;
	while (lo < hi) { /* the first index not below the key */
		size_t mid = (lo + hi) / 2;
		const struct sched_url *u = g->urls[v[mid]];
		bool below = it->id ? u->id < id : strcmp(u->url, it->url) < 0;
		if (below)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < g->n && (it->id ? g->urls[v[end]]->id == id
	                             : strcmp(g->urls[v[end]]->url, it->url) == 0))
		end++;
	*ret_first = v + lo;
	*ret_end = v + end;
}

/* Bulk: an item that carries our malicious="0|1" extension (docs/protocol.md:
 * the client attributed the events itself) is decided by it (the first such
 * item of a URL); otherwise, as in the original, an item is malicious if any
 * event came from its process tree, and an item without processId takes
 * the group's classification.  Items are matched by id, else by URL. */
static void bulk_items(const struct srv_client *c, const struct cap_msg_visit *v, bool group_mal,
                       bool *items)
{
	const struct sched_group *g = c->group;
	for (uint32_t i = 0; i < g->n; i++)
		items[i] = group_mal;
	if (!v || v->n_items == 0)
		return;
	uint32_t by_id[CAP_PROTO_ITEMS_MAX], by_url[CAP_PROTO_ITEMS_MAX];
	bool decided[CAP_PROTO_ITEMS_MAX] = {false};
	for (uint32_t i = 0; i < g->n; i++)
		by_id[i] = by_url[i] = i;
	qsort_r(by_id, g->n, sizeof(*by_id), cmp_u64_index, (void *)g);
	qsort_r(by_url, g->n, sizeof(*by_url), cmp_url_index, (void *)g);
	struct pidset tree = {0};
	bool have_tree = false;
	for (size_t k = 0; k < v->n_items; k++) {
		const struct cap_visit_item *it = &v->items[k];
		if (!it->has_malicious && !it->has_pid)
			continue;
		if (it->has_pid && !it->has_malicious && !have_tree) {
			if (event_ancestors(c, &tree) < 0) {
				log_warnx("client %s: out of memory: bulk items take the group's verdict",
				          c->label);
				return;
			}
			have_tree = true;
		}
		const uint32_t *p, *end;
		item_matches(g, by_id, by_url, it, &p, &end);
		for (; p < end; p++) {
			if (decided[*p])
				continue;
			if (it->has_malicious) {
				items[*p] = it->malicious;
				decided[*p] = true;
			} else {
				items[*p] = pidset_has(&tree, it->pid);
			}
		}
	}
	free(tree.k);
}

static void write_event_log(struct srv *s, struct srv_client *c)
{
	const struct sched_group *g = c->group;
	char key[32];
	const char *k = g->urls[0]->url;
	if (g->n > 1) {
		snprintf(key, sizeof(key), "%u", g->id);
		k = key;
	}
	char *rel = NULL;
	int r = output_event_log(s->out, k, (const char *const *)c->ev_lines, c->n_ev, &rel);
	if (r < 0)
		log_warnx("output: event log: %s", strerror(-r));
	else if (c->n_evidence < SRV_MAX_EVIDENCE)
		c->evidence[c->n_evidence++] = rel;
	else
		free(rel);
}

/* A visit ended with a classification (finish, a completing error, or the
 * first event of a dac group). */
static void visit_ended(struct srv *s, struct srv_client *c, const struct cap_msg_visit *v,
                        bool malicious)
{
	bool items[CAP_PROTO_ITEMS_MAX];
	enum sched_item bulk[CAP_PROTO_ITEMS_MAX];
	const enum sched_item *bp = NULL;
	s->sum.visits++;
	srv_host_visit(s, c);
	s->visit_seconds += srv_now() - c->group_sent;
	progress_group(s, c->group, "visited");
	if (s->cfg->algorithm == SCHED_BULK && c->group->n <= CAP_PROTO_ITEMS_MAX) {
		const struct sched_group *g = c->group;
		/* events no item could be tied to (our client says how many):
		 * the items not shown malicious are visited again, split as dac
		 * would (a group of one: its own) */
		bool unattributed = v && v->unattributed > 0 && g->n > 1;
		bulk_items(c, v, malicious && !unattributed, items);
		bp = bulk;
		malicious = false;
		for (uint32_t i = 0; i < g->n; i++) {
			bulk[i] = items[i]      ? SCHED_ITEM_MALICIOUS
			          : unattributed ? SCHED_ITEM_UNDECIDED
			                         : SCHED_ITEM_BENIGN;
			malicious |= bulk[i] != SCHED_ITEM_BENIGN; /* the sandbox is touched */
		}
		if (unattributed)
			log_info("client %s: group %u: %" PRIu32 " unattributed events; its undecided "
			         "URLs are visited again",
			         c->label, g->id, v->unattributed);
	}
	if (malicious && c->n_ev > 0)
		write_event_log(s, c);
	group_done(s, c, malicious ? VERDICT_MALICIOUS : VERDICT_BENIGN, bp, 0);
	visit_reset(c);
	if (malicious) {
		(void)transition(s, c, CEV_FINISH_MALICIOUS);
		srv_client_close(s, c, 0, true); /* the revert */
	} else {
		c->state = CLIENT_WAITING;
	}
}

static void on_visit(struct srv *s, struct srv_client *c, const struct cap_msg_visit *v)
{
	char id[16];
	if (!c->group) {
		drop(s, c, CAP_ERR_CONNECTION_RESET, "visit-event without a group");
		return;
	}
	snprintf(id, sizeof(id), "%u", c->group->id);
	if (strcmp(v->identifier, id) != 0) {
		log_debug(LOG_PROTO, "client %s: stale visit-event %s ignored", c->label,
		          v->identifier);
		return;
	}
	if (v->type == CAP_VISIT_START) {
		if (transition(s, c, CEV_START))
			progress_group(s, c->group, "visiting");
		return;
	}
	if (c->state != CLIENT_VISITING && c->state != CLIENT_AWAITING_VISITING) {
		drop(s, c, CAP_ERR_CONNECTION_RESET, "unexpected visit-event");
		return;
	}
	bool mal = v->malicious || c->malicious;
	if (v->type == CAP_VISIT_FINISH) {
		visit_ended(s, c, v, mal);
		return;
	}
	uint32_t code = v->has_error_code ? v->error_code : 0;
	if (!cap_error_code_known(code))
		code = CAP_ERR_INVALID_ERROR_CODE_FROM_CLIENT;
	if (cap_error_code_completes_visit(code)) {
		visit_ended(s, c, v, mal);
		return;
	}
	progress_group(s, c->group, "error");
	c->malicious = mal;
	srv_client_close(s, c, code, true);
}

static char *event_line(const struct srv *s, const struct cap_msg_system *m)
{
	char tbuf[CAP_PTIME_STRLEN], pid[24];
	if (cap_ptime_format(&m->time, tbuf, sizeof(tbuf)) < 0)
		tbuf[0] = '\0';
	snprintf(pid, sizeof(pid), "%ld", (long)m->ev.pid);
	const char *tn = cap_event_type_name(m->ev.type);
	/* The original's columns; then, for a process event that carries our
	 * command-line extension (docs/protocol.md), the command line as one
	 * more column. */
	const char *f[] = {tn ? tn : "?", tbuf, pid, m->ev.process, m->ev.action, m->ev.object1,
	                   m->ev.object2, m->ev.cmdline};
	size_t nf = ELEMENTSOF(f) - (m->ev.cmdline[0] == '\0');
	bool bulk = s->cfg->algorithm == SCHED_BULK;
	struct cap_buf b = {.max = 64 * 1024};
	for (size_t i = 0; i < nf; i++) {
		if (i == 2 && !bulk)
			continue; /* the processId column is bulk-only, as in the original */
		_cleanup_free_ char *q = NULL;
		if (cap_csv_quote(f[i], &q) < 0 || cap_buf_puts(&b, q) < 0 ||
		    (i + 1 < nf && cap_buf_puts(&b, ",") < 0)) {
			cap_buf_done(&b);
			return NULL;
		}
	}
	return cap_buf_steal(&b, NULL);
}

/* Doubles an array at 0, 16, 32, ... elements so that element n fits. */
static int grow(void **p, size_t n, size_t size)
{
	if (n != 0 && (n < 16 || (n & (n - 1)) != 0))
		return 0;
	void *q = reallocarray(*p, n == 0 ? 16 : n * 2, size);
	if (!q)
		return -ENOMEM;
	*p = q;
	return 0;
}

static void on_system(struct srv *s, struct srv_client *c, const struct cap_msg_system *m)
{
	if (!c->group || (c->state != CLIENT_VISITING && c->state != CLIENT_AWAITING_VISITING)) {
		drop(s, c, CAP_ERR_CONNECTION_RESET, "system-event outside a visit");
		return;
	}
	if (!c->malicious) { /* the visit's first state change */
		s->first_change_seconds += srv_now() - c->group_sent;
		s->n_first_change++;
	}
	c->malicious = true;
	if (c->n_ev < SRV_MAX_EVENTS && grow((void **)&c->ev_lines, c->n_ev, sizeof(char *)) == 0 &&
	    grow((void **)&c->ev_pids, c->n_ev, sizeof(pid_t)) == 0) {
		char *line = event_line(s, m);
		if (line) {
			c->ev_pids[c->n_ev] = m->ev.pid;
			c->ev_lines[c->n_ev++] = line;
			char tbuf[CAP_PTIME_STRLEN], pid[24];
			if (cap_ptime_format(&m->time, tbuf, sizeof(tbuf)) < 0)
				tbuf[0] = '\0';
			snprintf(pid, sizeof(pid), "%ld", (long)m->ev.pid);
			(void)store_event_add(s->store, c->group->n == 1 ? (int64_t)c->group->urls[0]->id : 0,
			                      c->group->id, cap_event_type_name(m->ev.type), tbuf, pid,
			                      m->ev.process, m->ev.action, m->ev.object1, m->ev.object2,
			                      m->ev.cmdline[0] ? m->ev.cmdline : NULL);
		}
	}
	if (m->ev.type == CAP_EV_PROCESS && strcmp(m->ev.action, "created") == 0 &&
	    c->n_procs < SRV_MAX_PROCS &&
	    grow((void **)&c->procs, c->n_procs, sizeof(*c->procs)) == 0) {
		char *end;
		long child = strtol(m->ev.object1, &end, 10);
		if (end != m->ev.object1 && *end == '\0' && child > 0 && child < INT32_MAX) {
			c->procs[c->n_procs][0] = (pid_t)child;
			c->procs[c->n_procs++][1] = m->ev.pid;
		}
	}
	/* dac with more than one URL: the first event decides the group */
	if (s->cfg->algorithm == SCHED_DAC && c->group->n > 1)
		visit_ended(s, c, NULL, true);
}

/* Did the server ask for this visit's upload?  The options it sent: the
 * files of a malicious visit (collect-modified-files), packets of a
 * malicious (capture-network-packets-malicious) or any visit (-benign). */
static bool upload_requested(const struct srv *s, const struct srv_client *c)
{
	const struct server_config *k = s->cfg;
	return k->capture_network_packets_benign ||
	       (c->malicious && (k->collect_modified_files || k->capture_network_packets_malicious));
}

static void reject_upload(struct srv *s, struct srv_client *c, const struct cap_msg *m,
                          const char *why)
{
	log_warnx("client %s: upload of %" PRIu64 " bytes refused: %s", c->label, m->file.size,
	          why);
	struct cap_msg a = {.type = CAP_MSG_FILE_REJECT};
	a.file.name = m->file.name;
	if (send_msg(s, c, &a) < 0)
		drop(s, c, CAP_ERR_SOCKET_ERROR, "cannot send file-reject");
}

static void on_file(struct srv *s, struct srv_client *c, const struct cap_msg *m)
{
	if (!c->group || c->up_fd >= 0 || !m->file.has_size) {
		drop(s, c, CAP_ERR_CONNECTION_RESET,
		     "upload outside a visit, during another, or without a size");
		return;
	}
	if (!upload_requested(s, c)) {
		reject_upload(s, c, m, "not requested (see the options sent)");
		return;
	}
	if (c->n_evidence >= SRV_MAX_EVIDENCE || m->file.size > SRV_MAX_UPLOAD ||
	    m->file.size > s->cfg->max_upload_per_visit - MIN(c->up_total,
	                                                       s->cfg->max_upload_per_visit)) {
		reject_upload(s, c, m, "over the bound per visit (files, max-upload-per-visit)");
		return;
	}
	char key[32];
	const char *k = c->group->urls[0]->url;
	if (c->group->n > 1) {
		snprintf(key, sizeof(key), "%u", c->group->id);
		k = key;
	}
	int r = output_upload_name(s->out, k, &c->up_rel, &c->up_abs);
	if (r >= 0) {
		c->up_fd = open(c->up_abs, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		                0644);
		if (c->up_fd < 0)
			r = negative_errno();
	}
	if (r < 0) {
		log_warnx("client %s: cannot store upload: %s", c->label, strerror(-r));
		upload_abort(c);
		drop(s, c, CAP_ERR_SOCKET_ERROR, "upload failed");
		return;
	}
	c->up_size = m->file.size;
	c->up_got = 0;
	c->up_total += m->file.size;
	struct cap_msg a = {.type = CAP_MSG_FILE_ACCEPT};
	a.file.name = c->up_rel; /* the server-side name, like the original */
	if (send_msg(s, c, &a) < 0)
		drop(s, c, CAP_ERR_SOCKET_ERROR, "cannot send file-accept");
}

static void on_part(struct srv *s, struct srv_client *c, const struct cap_msg_part *p)
{
	if (c->up_fd < 0 || p->start != c->up_got || p->data_len > c->up_size - c->up_got ||
	    (p->end != p->start + p->data_len && p->end + 1 != p->start + p->data_len)) {
		drop(s, c, CAP_ERR_CONNECTION_RESET, "upload part out of range");
		return;
	}
	size_t off = 0;
	while (off < p->data_len) {
		ssize_t n = write(c->up_fd, p->data + off, p->data_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			drop(s, c, CAP_ERR_SOCKET_ERROR, "cannot write upload");
			return;
		}
		off += (size_t)n;
	}
	c->up_got += p->data_len;
}

static void on_file_finished(struct srv *s, struct srv_client *c)
{
	if (c->up_fd < 0 || c->up_got != c->up_size) {
		drop(s, c, CAP_ERR_CONNECTION_RESET, "upload incomplete");
		return;
	}
	int r = close(c->up_fd);
	c->up_fd = -1;
	if (r < 0) {
		log_warn("client %s: upload %s", c->label, c->up_rel);
		(void)unlink(c->up_abs);
		free(c->up_rel);
		free(c->up_abs);
		c->up_rel = c->up_abs = NULL;
		return;
	}
	(void)store_file_add(s->store, c->group->n == 1 ? (int64_t)c->group->urls[0]->id : 0,
	                     c->group->id, c->up_rel);
	c->evidence[c->n_evidence++] = c->up_rel;
	c->up_rel = NULL;
	free(c->up_abs);
	c->up_abs = NULL;
}

static void handle(struct srv *s, struct srv_client *c, const struct cap_msg *m)
{
	switch (m->type) {
	case CAP_MSG_CONNECT:
	case CAP_MSG_RECONNECT:
		on_connect(s, c, m);
		break;
	case CAP_MSG_PONG:
		break;
	case CAP_MSG_VISIT_EVENT:
		on_visit(s, c, &m->visit);
		break;
	case CAP_MSG_SYSTEM_EVENT:
		on_system(s, c, &m->system);
		break;
	case CAP_MSG_FILE:
		on_file(s, c, m);
		break;
	case CAP_MSG_PART:
		on_part(s, c, &m->part);
		break;
	case CAP_MSG_FILE_FINISHED:
		on_file_finished(s, c);
		break;
	default:
		drop(s, c, CAP_ERR_CONNECTION_RESET, "message not allowed from a client");
	}
}

/* Closes connections while the unfinished input of all of them is over the
 * bound: the one whose unfinished message began first (the slowest sender)
 * goes first. */
static void bound_pending_input(struct srv *s)
{
	while (s->pending_input > s->cfg->max_pending_input) {
		struct srv_client *slow = NULL;
		for (struct srv_client *c = s->clients; c; c = c->next)
			if (!c->dead && c->pending_in > 0 &&
			    (!slow || c->partial_since < slow->partial_since))
				slow = c;
		if (!slow)
			return;
		char why[160];
		snprintf(why, sizeof(why),
		         "%zu bytes of an unfinished message for %.0f s while the server holds %zu "
		         "(max-pending-input %" PRIu32 "): the slowest sender",
		         slow->pending_in, srv_now() - slow->partial_since, s->pending_input,
		         s->cfg->max_pending_input);
		drop(s, slow, CAP_ERR_SOCKET_ERROR, why);
	}
}

/* Ends c for a framer error r (< 0): a message over the limit, or memory. */
static bool framer_failed(struct srv *s, struct srv_client *c, int r)
{
	if (r >= 0)
		return false;
	drop(s, c, CAP_ERR_SOCKET_ERROR,
	     r == -EMSGSIZE ? "message over the size limit" : "out of memory");
	return true;
}

/* Handles every whole message c's framer holds.  Only a whole message is
 * activity: a sender that trickles bytes stays inactive. */
static void drain_messages(struct srv *s, struct srv_client *c)
{
	const char *msg;
	size_t len;
	int r = 0;
	bool any = false;
	while (!c->dead && (r = cap_framer_next(&c->fr, &msg, &len)) == 1) {
		struct cap_msg m;
		char err[128];
		any = true;
		c->last_contact = srv_now();
		if (cap_msg_decode_from_client(msg, len, &m, err, sizeof(err)) < 0) {
			char why[192];
			snprintf(why, sizeof(why), "bad message (%s)", err);
			drop(s, c, CAP_ERR_SOCKET_ERROR, why);
			return;
		}
		handle(s, c, &m);
		cap_msg_clear(&m);
	}
	if (c->dead || framer_failed(s, c, r))
		return;
	size_t pending = cap_framer_pending(&c->fr);
	if (pending == 0)
		c->partial_since = 0;
	else if (any || c->pending_in == 0)
		c->partial_since = srv_now();
	s->pending_input += pending;
	s->pending_input -= c->pending_in;
	c->pending_in = pending;
	if (pending == 0 && c->fr.cap > 65536) { /* give back a big message's buffer */
		cap_framer_done(&c->fr);
		cap_framer_init(&c->fr, CAP_FRAME_LINE, s->cfg->max_message_size);
	}
}

static void read_messages(struct srv *s, struct srv_client *c)
{
	char buf[65536];
	/* TLS: records already read into OpenSSL's buffer (read-ahead) do not
	 * wake epoll again, so they are drained past the round limit */
	for (int rounds = 0;
	     (rounds < 16 || (c->ssl && SSL_has_pending(c->ssl))) && !c->dead && c->fd >= 0;
	     rounds++) {
		ssize_t n;
		if (c->ssl) {
			enum tls_want w;
			n = tls_read(c->ssl, buf, sizeof(buf), &w);
			if (n == -EAGAIN)
				break;
			if (n < 0)
				log_warnx("client %s: TLS error (%s); closing the connection", c->label,
				          n == -EPROTO ? "not a TLS record: garbage?" : strerror((int)-n));
		} else {
			n = read(c->fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
		}
		if (n <= 0) {
			if (c->group && c->name[0] != '#') {
				/* as the original: the client may send reconnect */
				log_info("client %s: connection lost during group %u; waiting %.0f s "
				         "for its reconnect",
				         c->label, c->group->id, SRV_RECONNECT_GRACE);
				detach(s, c);
				c->orphan_until = srv_now() + SRV_RECONNECT_GRACE;
				return;
			}
			log_debug(LOG_PROTO, "client %s: connection closed", c->label);
			srv_client_close(s, c, CAP_ERR_CONNECTION_RESET, true);
			return;
		}
		if (framer_failed(s, c, cap_framer_feed(&c->fr, buf, (size_t)n)))
			return;
		drain_messages(s, c);
	}
	bound_pending_input(s);
}

void srv_client_io(struct srv *s, struct srv_client *c, uint32_t events)
{
	if (c->dead || c->fd < 0)
		return;
	if (c->ssl && !c->tls_done) {
		tls_step(s, c);
		return;
	}
	if (events & EPOLLOUT) {
		int r = flush_out(c);
		if (r < 0) {
			srv_client_close(s, c, CAP_ERR_SOCKET_ERROR, true);
			return;
		}
		if (r == 1)
			set_epollout(s, c, false);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_messages(s, c);
}

static int send_group(struct srv *s, struct srv_client *c, struct sched_group *g)
{
	struct cap_visit_item items[CAP_PROTO_ITEMS_MAX];
	char ids[CAP_PROTO_ITEMS_MAX][24];
	char ident[16];
	uint32_t n = MIN(g->n, (uint32_t)CAP_PROTO_ITEMS_MAX);
	snprintf(ident, sizeof(ident), "%u", g->id);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%" PRIu64, g->urls[i]->id);
		items[i] = (struct cap_visit_item){.id = ids[i], .url = g->urls[i]->url,
		                                   .program = (char *)g->urls[i]->client};
	}
	struct cap_msg m = {.type = CAP_MSG_VISIT_EVENT};
	m.visit.identifier = ident;
	m.visit.program = (char *)g->urls[0]->client;
	m.visit.type = CAP_VISIT_GROUP;
	/* ours: the client runs the group as the server will classify it
	 * (an original client ignores the attribute) */
	m.visit.algorithm = s->cfg->algorithm == SCHED_BULK  ? CAP_ALG_BULK
	                    : s->cfg->algorithm == SCHED_SEQ ? CAP_ALG_SEQ
	                                                     : CAP_ALG_DAC;
	m.visit.visit_time = g->urls[0]->time;
	m.visit.n_items = n;
	m.visit.items = items;
	return send_msg(s, c, &m);
}

void srv_dispatch(struct srv *s)
{
	for (struct srv_client *c = s->clients; c; c = c->next) {
		if (c->dead || c->state != CLIENT_WAITING || c->group)
			continue;
		struct sched_group *g;
		if (sched_next_group(s->sched, &g) < 0)
			return;
		c->group = g;
		c->group_sent = srv_now();
		c->visit_started = srv_wall_now();
		visit_reset(c);
		(void)transition(s, c, CEV_GROUP_SENT);
		if (send_group(s, c, g) < 0)
			drop(s, c, CAP_ERR_SOCKET_ERROR, "cannot send visit-event");
	}
}

void srv_clients_tick(struct srv *s, double now)
{
	struct srv_client *next;
	for (struct srv_client *c = s->clients; c; c = next) {
		next = c->next;
		if (c->fd < 0) { /* lost its socket during a visit */
			if (now >= c->orphan_until) {
				log_warnx("client %s: no reconnect within %.0f s; its group ends",
				          c->label, SRV_RECONNECT_GRACE);
				srv_client_close(s, c, CAP_ERR_CONNECTION_RESET, true);
			}
			continue;
		}
		if (c->ssl && !c->tls_done) {
			if (now - c->accepted_at > SRV_TLS_HANDSHAKE_TIMEOUT) {
				if (tls_refusal_logged(s))
					log_warnx("client %s: no TLS handshake within %.0f s (a "
					          "plain-text client?); refused",
					          c->peer, SRV_TLS_HANDSHAKE_TIMEOUT);
				srv_client_close(s, c, 0, false);
			}
			continue;
		}
		if (now - c->last_contact > s->cfg->client_inactivity_timeout) {
			s->inactivity++;
			drop(s, c, CAP_ERR_CLIENT_INACTIVITY, "inactive");
			continue;
		}
		if (c->group && now - c->group_sent > s->cfg->vm_stalled_during_operation_timeout) {
			s->stalled++;
			drop(s, c, CAP_ERR_VM_STALLED, "stalled during a visit");
			continue;
		}
		if (now - c->last_ping >= s->cfg->ping_interval) {
			c->last_ping = now;
			struct cap_msg m = {.type = CAP_MSG_PING};
			if (send_msg(s, c, &m) < 0)
				drop(s, c, CAP_ERR_SOCKET_ERROR, "cannot send ping");
		}
	}
}
