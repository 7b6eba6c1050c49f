/* download.c - see download.h.  A small HTTP/1.1 client (plain or over
 * OpenSSL's TLS): one request per
 * connection (Connection: close), Content-Length, chunked or read-to-EOF
 * bodies, every buffer bounded, one deadline for the whole download. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dns.h"
#include "download.h"
#include "escape.h"
#include "macro.h"
#include "sandbox.h"

#define HEADER_MAX 16384
#define HOST_MAX   256
#define SLICE_MS   200
#define DNS_TRIES  3

struct url_parts {
	char host[HOST_MAX]; /* without brackets */
	unsigned port;
	bool tls;		     /* https */
	char path[DOWNLOAD_URL_MAX]; /* path + query, starts with '/' */
	bool ipv6_literal;
};

struct conn {
	int fd;
	SSL *ssl; /* https only */
	const struct download_options *o;
	int64_t deadline_ms;
	char buf[HEADER_MAX];
	size_t len, pos; /* unread bytes are buf[pos..len) */
};

int64_t download_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_url(const char *url, struct url_parts *u)
{
	u->tls = strncasecmp(url, "https://", 8) == 0;
	if (!u->tls && strncasecmp(url, "http://", 7) != 0)
		return strstr(url, "://") ? -EPROTONOSUPPORT : -EINVAL;
	const char *p = url + (u->tls ? 8 : 7);
	size_t alen = strcspn(p, "/?#");
	const char *rest = p + alen;
	const char *at = memchr(p, '@', alen);
	if (at) { /* userinfo: not sent (no credentials from URL lists) */
		alen -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	u->port = u->tls ? 443 : 80;
	u->ipv6_literal = false;
	const char *hend = p + alen;
	const char *colon = NULL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', alen);
		if (!rb)
			return -EINVAL;
		u->ipv6_literal = true;
		if ((size_t)(rb - p - 1) >= sizeof(u->host))
			return -EINVAL;
		memcpy(u->host, p + 1, (size_t)(rb - p - 1));
		u->host[rb - p - 1] = '\0';
		if (rb + 1 < hend) {
			if (rb[1] != ':')
				return -EINVAL;
			colon = rb + 1;
		}
	} else {
		colon = memchr(p, ':', alen);
		size_t hl = colon ? (size_t)(colon - p) : alen;
		if (hl == 0 || hl >= sizeof(u->host))
			return -EINVAL;
		for (size_t i = 0; i < hl; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '.' && p[i] != '-' &&
			    p[i] != '_')
				return -EINVAL;
		memcpy(u->host, p, hl);
		u->host[hl] = '\0';
	}
	if (colon && colon + 1 < hend) {
		unsigned long port = 0;
		for (const char *c = colon + 1; c < hend; c++) {
			if (!isdigit((unsigned char)*c))
				return -EINVAL;
			port = port * 10 + (unsigned long)(*c - '0');
			if (port > 65535)
				return -EINVAL;
		}
		if (port == 0)
			return -EINVAL;
		u->port = (unsigned)port;
	}
	size_t plen = strcspn(rest, "#");
	if (plen + 2 > sizeof(u->path))
		return -EINVAL;
	size_t off = 0;
	if (*rest != '/')
		u->path[off++] = '/';
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)rest[i];
		if (c <= ' ' || c == 0x7f) /* no raw spaces or controls in the request line */
			return -EINVAL;
		u->path[off++] = (char)c;
	}
	u->path[off] = '\0';
	return 0;
}

/* Asks resolver (an IPv4 literal, port 53) for name's A record from a
 * socket in netns_fd: three tries (1, 2, 4 s) until deadline_ms; *abort is
 * polled (may be NULL).  Errors as dns_parse_a, plus -ETIMEDOUT, -ECANCELED,
 * -EINVAL (bad resolver or name) and socket errors. */
static int dns_resolve_a(int netns_fd, const char *resolver, const char *name, int64_t deadline_ms,
			 atomic_bool *abort, struct in_addr *ret)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	if (!resolver || inet_pton(AF_INET, resolver, &sa.sin_addr) != 1)
		return -EINVAL;
	uint16_t id;
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		id = (uint16_t)(ts.tv_nsec ^ getpid());
	}
	uint8_t q[DNS_NAME_MAX + 32];
	int qlen = dns_build_query(name, id, q, sizeof(q));
	if (qlen < 0)
		return qlen;
	_cleanup_close_ int fd = netns_socket(netns_fd, AF_INET, SOCK_DGRAM);
	if (fd < 0)
		return fd;
	/* Connected: only datagrams from the resolver's address and port. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	int last = -ETIMEDOUT;
	for (unsigned t = 0; t < DNS_TRIES; t++) {
		int64_t now = download_now_ms();
		if (now >= deadline_ms)
			break;
		int64_t until = MIN(deadline_ms, now + ((int64_t)1000 << t)); /* 1, 2, 4 s */
		if (send(fd, q, (size_t)qlen, 0) < 0) {
			if (errno == ECONNREFUSED) /* the ICMP of an earlier try */
				return -ECONNREFUSED;
			return -errno;
		}
		for (;;) {
			int r = download_poll(fd, POLLIN, until, abort);
			if (r == -ETIMEDOUT)
				break;
			if (r < 0)
				return r;
			uint8_t a[DNS_MSG_MAX];
			ssize_t n = recv(fd, a, sizeof(a), MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EINTR || errno == EAGAIN)
					continue;
				return -errno; /* e.g. ECONNREFUSED: nothing listens there */
			}
			r = dns_parse_a(a, (size_t)n, id, name, ret);
			if (r == -EBADMSG) /* not ours or malformed: wait on */
				continue;
			if (r == -EAGAIN) { /* the server failed: ask again */
				last = r;
				break;
			}
			return r;
		}
	}
	return last;
}

/* Address of u->host: a numeric literal, a name from the hosts pairs (as
 * the sandbox's /etc/hosts) or else the A record from the sandbox's
 * resolver (as the sandbox's resolv.conf), asked from its netns. */
static int resolve(const struct download_options *o, const struct url_parts *u, int64_t deadline,
		   struct sockaddr_storage *ss, socklen_t *sl)
{
	char addr[HOST_MAX] = "";
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, u->host, &a4) == 1 || inet_pton(AF_INET6, u->host, &a6) == 1) {
		snprintf(addr, sizeof(addr), "%s", u->host);
	} else {
		for (const char *const *h = o->hosts; h && *h; h++) {
			const char *sp = strpbrk(*h, " \t");
			if (!sp || (size_t)(sp - *h) >= sizeof(addr))
				continue;
			if (strcasecmp(sp + 1, u->host) == 0) {
				memcpy(addr, *h, (size_t)(sp - *h));
				addr[sp - *h] = '\0';
				break;
			}
		}
		if (!*addr && o->resolver) {
			struct in_addr a;
			int r = dns_resolve_a(o->netns_fd, o->resolver, u->host, deadline, o->abort,
					      &a);
			if (r < 0)
				return r == -EINVAL ? -ENOENT : r;
			if (!inet_ntop(AF_INET, &a, addr, sizeof(addr)))
				return -EINVAL;
		}
		if (!*addr)
			return -ENOENT;
	}
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)u->port);
		*sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)u->port);
		*sl = sizeof(*s6);
	} else {
		return -EINVAL;
	}
	return 0;
}

struct ns_socket {
	int netns_fd;
	int family;
	int type;
	int fd;
	int err;
};

/* Runs in its own thread: setns only changes the calling thread, and the
 * socket keeps the netns it was created in. */
static void *ns_socket_thread(void *arg)
{
	struct ns_socket *s = arg;
	if (setns(s->netns_fd, CLONE_NEWNET) < 0) {
		s->err = negative_errno();
		return NULL;
	}
	s->fd = socket(s->family, s->type | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		s->err = negative_errno();
	return NULL;
}

int netns_socket(int netns_fd, int family, int type)
{
	struct ns_socket s = {.netns_fd = netns_fd, .family = family, .type = type, .fd = -1};
	pthread_t t;
	int r = pthread_create(&t, NULL, ns_socket_thread, &s);
	if (r != 0)
		return -r;
	pthread_join(t, NULL);
	return s.fd >= 0 ? s.fd : (s.err ? s.err : -EIO);
}

int download_poll(int fd, short events, int64_t deadline_ms, atomic_bool *abort)
{
	for (;;) {
		if (abort && atomic_load(abort))
			return -ECANCELED;
		int64_t left = deadline_ms - download_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pf = {.fd = fd, .events = events};
		int n = poll(&pf, 1, (int)MIN(left, SLICE_MS));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			return 0;
	}
}

static int conn_wait(struct conn *c, short events)
{
	return download_poll(c->fd, events, c->deadline_ms, c->o->abort);
}

static int conn_open(struct conn *c, const struct sockaddr_storage *ss, socklen_t sl)
{
	c->fd = netns_socket(c->o->netns_fd, ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK);
	if (c->fd < 0)
		return c->fd;
	if (connect(c->fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS)
		return -errno;
	int r = conn_wait(c, POLLOUT);
	if (r < 0)
		return r;
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return -errno;
	return err ? -err : 0;
}

/* Waits for what OpenSSL asked for; r is SSL_get_error's answer. */
static int tls_wait(struct conn *c, int r)
{
	if (r == SSL_ERROR_WANT_READ)
		return conn_wait(c, POLLIN);
	if (r == SSL_ERROR_WANT_WRITE)
		return conn_wait(c, POLLOUT);
	return r == SSL_ERROR_SYSCALL && errno ? -errno : -ECONNRESET;
}

/* TLS over the connected socket: SNI = the host name (not for literals),
 * no certificate verification (see download.h). */
static int conn_tls(struct conn *c, SSL_CTX *ctx, const struct url_parts *u)
{
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return -ENOMEM;
	struct in_addr a4;
	if (!u->ipv6_literal && inet_pton(AF_INET, u->host, &a4) != 1 &&
	    SSL_set_tlsext_host_name(c->ssl, u->host) != 1)
		return -EINVAL;
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(c->ssl);
		if (r == 1)
			return 0;
		int e = SSL_get_error(c->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return e == SSL_ERROR_SYSCALL && errno ? -errno : -EPROTO;
		r = tls_wait(c, e);
		if (r < 0)
			return r;
	}
}

static int conn_send(struct conn *c, const char *data, size_t n)
{
	while (c->ssl && n > 0) {
		ERR_clear_error();
		int w = SSL_write(c->ssl, data, (int)MIN(n, (size_t)INT_MAX));
		if (w <= 0) {
			int r = tls_wait(c, SSL_get_error(c->ssl, w));
			if (r < 0)
				return r;
			continue;
		}
		data += w;
		n -= (size_t)w;
	}
	while (n > 0) {
		ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				int r = conn_wait(c, POLLOUT);
				if (r < 0)
					return r;
				continue;
			}
			return -errno;
		}
		data += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads more into buf (compacting it first); 0 bytes = EOF. */
static int conn_fill(struct conn *c, size_t *ret_n)
{
	if (c->pos > 0) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (c->len >= sizeof(c->buf))
		return -EBADMSG;
	while (c->ssl) {
		ERR_clear_error();
		int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
		if (n > 0) {
			c->len += (size_t)n;
			*ret_n = (size_t)n;
			return 0;
		}
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
			*ret_n = 0;
			return 0;
		}
		int r = tls_wait(c, e);
		if (r < 0)
			return r;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n >= 0) {
			c->len += (size_t)n;
			*ret_n = (size_t)n;
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		int r = conn_wait(c, POLLIN);
		if (r < 0)
			return r;
	}
}

/* One line (CRLF or LF) of at most HEADER_MAX - 1 bytes, NUL-terminated in place. */
static int conn_line(struct conn *c, char **ret)
{
	for (;;) {
		char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
		if (nl) {
			char *line = c->buf + c->pos;
			c->pos = (size_t)(nl - c->buf) + 1;
			*nl = '\0';
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			*ret = line;
			return 0;
		}
		size_t n;
		int r = conn_fill(c, &n);
		if (r < 0)
			return r;
		if (n == 0)
			return -EBADMSG;
	}
}

struct body_state {
	const struct download_options *o;
	uint64_t max, bytes;
	bool write; /* final answer: write to out_fd */
};

static int body_put(struct body_state *b, const char *data, size_t n)
{
	if (b->bytes + n > b->max)
		return -EFBIG;
	b->bytes += n;
	if (!b->write || b->o->out_fd < 0)
		return 0;
	while (n > 0) {
		ssize_t w = write(b->o->out_fd, data, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies `want` bytes (UINT64_MAX = until EOF) from the connection. */
static int body_copy(struct conn *c, struct body_state *b, uint64_t want)
{
	while (want > 0) {
		if (c->pos == c->len) {
			size_t n;
			c->pos = c->len = 0;
			int r = conn_fill(c, &n);
			if (r < 0)
				return r;
			if (n == 0)
				return want == UINT64_MAX ? 0 : -EBADMSG;
		}
		size_t k = (size_t)MIN((uint64_t)(c->len - c->pos), want);
		int r = body_put(b, c->buf + c->pos, k);
		if (r < 0)
			return r;
		c->pos += k;
		if (want != UINT64_MAX)
			want -= k;
	}
	return 0;
}

static int body_chunked(struct conn *c, struct body_state *b)
{
	for (;;) {
		char *line;
		int r = conn_line(c, &line);
		if (r < 0)
			return r;
		char *end;
		errno = 0;
		unsigned long long size = strtoull(line, &end, 16);
		if (end == line || errno || (*end && *end != ';' && *end != ' '))
			return -EBADMSG;
		if (size > b->max)
			return -EFBIG;
		if (size == 0) { /* trailers up to the empty line */
			do {
				r = conn_line(c, &line);
				if (r < 0)
					return r;
			} while (*line);
			return 0;
		}
		r = body_copy(c, b, size);
		if (r < 0)
			return r;
		r = conn_line(c, &line);
		if (r < 0)
			return r;
		if (*line)
			return -EBADMSG;
	}
}

struct answer {
	int status;
	bool chunked;
	bool has_length;
	uint64_t length;
	char location[DOWNLOAD_URL_MAX];
	char content_type[128];
};

static int read_head(struct conn *c, struct answer *a)
{
	char *line;
	int r = conn_line(c, &line);
	if (r < 0)
		return r;
	unsigned major, minor, status;
	if (sscanf(line, "HTTP/%u.%u %3u", &major, &minor, &status) != 3 || status < 100 ||
	    status > 999)
		return -EBADMSG;
	a->status = (int)status;
	for (unsigned n = 0;; n++) {
		if (n > 200)
			return -EBADMSG;
		r = conn_line(c, &line);
		if (r < 0)
			return r;
		if (!*line)
			return 0;
		char *colon = strchr(line, ':');
		if (!colon)
			return -EBADMSG;
		*colon = '\0';
		char *v = colon + 1;
		v += strspn(v, " \t");
		size_t vl = strlen(v);
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			v[--vl] = '\0';
		if (strcasecmp(line, "content-length") == 0) {
			char *end;
			errno = 0;
			unsigned long long len = strtoull(v, &end, 10);
			if (end == v || *end || errno || (a->has_length && a->length != len))
				return -EBADMSG;
			a->has_length = true;
			a->length = len;
		} else if (strcasecmp(line, "transfer-encoding") == 0) {
			a->chunked = strcasestr(v, "chunked") != NULL;
		} else if (strcasecmp(line, "location") == 0) {
			if (vl >= sizeof(a->location))
				return -EBADMSG;
			memcpy(a->location, v, vl + 1);
		} else if (strcasecmp(line, "content-type") == 0) {
			size_t k = MIN(strcspn(v, "; \t"), sizeof(a->content_type) - 1);
			for (size_t i = 0; i < k; i++)
				a->content_type[i] = (char)tolower((unsigned char)v[i]);
			a->content_type[k] = '\0';
		}
	}
}

/* Resolves a Location against base into out (absolute http URL). */
static int join_location(const char *base, const char *loc, char *out, size_t len)
{
	if (strstr(loc, "://"))
		return xsnprintf(out, len, "%s", loc);
	const char *scheme_end = strstr(base, "://");
	if (!scheme_end)
		return -EINVAL;
	const char *path = strpbrk(scheme_end + 3, "/?#");
	size_t origin = path ? (size_t)(path - base) : strlen(base);
	if (loc[0] == '/' && loc[1] == '/') /* scheme-relative */
		return xsnprintf(out, len, "%.*s%s", (int)(scheme_end - base + 1), base, loc);
	if (loc[0] == '/')
		return xsnprintf(out, len, "%.*s%s", (int)origin, base, loc);
	/* relative path: replace the last segment of the base path */
	size_t dir = origin;
	if (path && *path == '/') {
		size_t plen = strcspn(path, "?#");
		const char *slash = path;
		for (const char *p = path; p < path + plen; p++)
			if (*p == '/')
				slash = p;
		dir = (size_t)(slash - base);
	}
	return xsnprintf(out, len, "%.*s/%s", (int)dir, base, loc);
}

static bool is_redirect(const struct answer *a)
{
	return (a->status == 301 || a->status == 302 || a->status == 303 || a->status == 307 ||
		a->status == 308) &&
	       a->location[0];
}

static int one_request(const struct download_options *o, SSL_CTX *ctx, const char *url,
		       int64_t deadline, struct answer *a, struct body_state *b)
{
	struct url_parts u;
	int r = parse_url(url, &u);
	if (r < 0)
		return r;
	struct sockaddr_storage ss;
	socklen_t sl;
	r = resolve(o, &u, deadline, &ss, &sl);
	if (r < 0)
		return r;
	_cleanup_free_ struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->o = o;
	c->deadline_ms = deadline;
	r = conn_open(c, &ss, sl);
	if (r >= 0 && u.tls)
		r = conn_tls(c, ctx, &u);
	if (r >= 0) {
		char req[DOWNLOAD_URL_MAX + 1024];
		char port[16] = "";
		if (u.port != (u.tls ? 443u : 80u))
			snprintf(port, sizeof(port), ":%u", u.port);
		r = xsnprintf(
		    req, sizeof(req),
		    "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\n"
		    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
		    "Firefox/128.0\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		    u.path, u.ipv6_literal ? "[" : "", u.host, u.ipv6_literal ? "]" : "", port);
		if (r >= 0)
			r = conn_send(c, req, strlen(req));
		if (r >= 0) {
			do { /* 1xx interim answers are skipped */
				memset(a, 0, sizeof(*a));
				r = read_head(c, a);
			} while (r >= 0 && a->status < 200);
		}
		if (r >= 0 && a->status != 204 && a->status != 304) {
			b->bytes = 0;
			b->write =
			    !is_redirect(a); /* a redirect's body is read, bounded, and dropped */
			if (a->chunked)
				r = body_chunked(c, b);
			else if (a->has_length)
				r = a->length > b->max ? -EFBIG : body_copy(c, b, a->length);
			else
				r = body_copy(c, b, UINT64_MAX);
		}
	}
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	return r;
}

static void ssl_ctx_freep(SSL_CTX **p)
{
	SSL_CTX_free(*p);
}

int download_url(const struct download_options *o, const char *url, struct download_result *ret)
{
	if (!url || strlen(url) >= DOWNLOAD_URL_MAX)
		return -EINVAL;
	int64_t deadline =
	    download_now_ms() + 1000LL * (o->timeout ? o->timeout : DOWNLOAD_DEFAULT_TIMEOUT);
	_cleanup_free_ char *cur = strdup(url);
	_cleanup_free_ char *next = malloc(DOWNLOAD_URL_MAX);
	if (!cur || !next)
		return -ENOMEM;
	_cleanup_(ssl_ctx_freep) SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return -ENOMEM;
	/* A closed connection without close_notify ends a read-to-EOF body, as
	 * with plain HTTP (many servers do that). */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	for (unsigned redirects = 0;; redirects++) {
		struct answer a;
		struct body_state b = {
		    .o = o, .max = o->max_bytes ? o->max_bytes : DOWNLOAD_DEFAULT_MAX_BYTES};
		int r = one_request(o, ctx, cur, deadline, &a, &b);
		if (r < 0)
			return r;
		if (!is_redirect(&a)) {
			ret->status = a.status;
			ret->redirects = redirects;
			ret->bytes = b.bytes;
			snprintf(ret->content_type, sizeof(ret->content_type), "%s",
				 a.content_type);
			snprintf(ret->final_url, sizeof(ret->final_url), "%s", cur);
			return 0;
		}
		if (redirects >= DOWNLOAD_MAX_REDIRECTS)
			return -ELOOP;
		r = join_location(cur, a.location, next, DOWNLOAD_URL_MAX);
		if (r < 0)
			return -EBADMSG;
		memcpy(cur, next, strlen(next) + 1);
	}
}

/* Extensions for the media types documents come as (no ".bin": an unknown
 * type keeps the caller's fallback so the application recognises the file). */
static const struct {
	const char *type, *ext;
} media_ext[] = {
    {"application/pdf", "pdf"},
    {"application/vnd.oasis.opendocument.text", "odt"},
    {"application/vnd.oasis.opendocument.spreadsheet", "ods"},
    {"application/vnd.oasis.opendocument.presentation", "odp"},
    {"application/msword", "doc"},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
    {"application/vnd.ms-excel", "xls"},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
    {"application/vnd.ms-powerpoint", "ppt"},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"},
    {"application/rtf", "rtf"},
    {"text/rtf", "rtf"},
    {"text/plain", "txt"},
    {"text/html", "html"},
};

static bool ext_ok(const char *e, size_t n)
{
	if (n == 0 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)e[i]))
			return false;
	return true;
}

int download_file_name(const char *url, const char *content_type, const char *fallback_ext,
		       char **ret)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	size_t plen = strcspn(p, "?#");
	const char *seg = p;
	for (const char *q = p; q < p + plen; q++)
		if (*q == '/')
			seg = q + 1;
	size_t slen = (size_t)(p + plen - seg);
	if (slen > 200)
		slen = 200;
	char segment[201];
	memcpy(segment, seg, slen);
	segment[slen] = '\0';
	/* The extension: the URL's, else the Content-Type's, else the fallback. */
	const char *ext = NULL;
	size_t elen = 0;
	const char *dot = strrchr(segment, '.');
	if (dot && dot != segment && ext_ok(dot + 1, strlen(dot + 1))) {
		ext = dot + 1;
		elen = strlen(ext);
	}
	for (size_t i = 0; !ext && content_type && i < ELEMENTSOF(media_ext); i++)
		if (strcmp(content_type, media_ext[i].type) == 0) {
			ext = media_ext[i].ext;
			elen = strlen(ext);
		}
	if (!ext && fallback_ext && ext_ok(fallback_ext, strlen(fallback_ext))) {
		ext = fallback_ext;
		elen = strlen(ext);
	}
	char base[201];
	if (slen == 0 || segment[0] == '.')
		snprintf(base, sizeof(base), "download");
	else
		snprintf(base, sizeof(base), "%s", segment);
	_cleanup_free_ char *safe = NULL;
	int r = cap_url_to_filename(base, 100, &safe);
	if (r < 0)
		return r;
	size_t blen = strlen(safe);
	bool has_ext = ext && blen > elen && safe[blen - elen - 1] == '.' &&
		       strcasecmp(safe + blen - elen, ext) == 0;
	char *out;
	if (!ext || has_ext)
		out = strdup(safe);
	else if (asprintf(&out, "%s.%.*s", safe, (int)elen, ext) < 0)
		out = NULL;
	if (!out)
		return -ENOMEM;
	*ret = out;
	return 0;
}

int download_into_sandbox(struct sandbox *sb, const struct download_options *o, const char *url,
			  const char *dir_inside, const char *prefix, const char *fallback_ext,
			  struct download_result *ret, char *ret_inside, size_t inside_len)
{
	char tmpl[] = "/tmp/capture-download.XXXXXX";
	_cleanup_close_ int fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct download_options oo = *o;
	oo.out_fd = fd;
	int r = download_url(&oo, url, ret);
	if (r >= 0 && ret->status >= 400)
		r = -EREMOTEIO;
	_cleanup_free_ char *name = NULL;
	if (r >= 0)
		r = download_file_name(ret->final_url, ret->content_type, fallback_ext, &name);
	char inside[PATH_MAX];
	if (r >= 0)
		r = xsnprintf(inside, sizeof(inside), "%s/%s%s", dir_inside, prefix ? prefix : "",
			      name);
	if (r >= 0)
		r = sandbox_copy_in(sb, tmpl, inside);
	unlink(tmpl);
	if (r < 0)
		return r;
	if (xsnprintf(ret_inside, inside_len, "%s", inside) < 0)
		return -ENAMETOOLONG;
	return 0;
}
