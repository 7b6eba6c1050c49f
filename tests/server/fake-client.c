/* fake-client.c - a scripted Capture client for the server's scenario tests
 * and benchmark (part of the test suite, not of the product).
 *
 *   fake-client -s ADDR -p PORT [-a ID] [-b ID] [-m SUBSTRING] [-n CLIENTS]
 *               [--silent-after N] [--crash-after N] [--garbage] [--oversize]
 *               [--once] [--upload] [--upload-unasked] [--upload-partial]
 *               [--delay MS] [--attribute]
 *               [--mark DIR] [--hang-after-close] [--revert-ms MS]
 *
 * It speaks the real protocol through proto.h: answers connect, pong to
 * pings, and for each visit-event sends start, one process system-event per
 * item whose URL contains SUBSTRING (pid 1000+i, as child of the item's
 * process so that bulk attribution works), then finish with malicious set.
 * After the server closes the connection (a revert) it reconnects, like a
 * sandbox client that rebuilt its guest; it exits when the server is gone.
 * --silent-after N: stop answering after N groups (inactivity); --crash-after
 * N: exit after receiving group N+1; --garbage / --oversize: send a bad
 * message after connecting, then behave; -n forks that many clients.
 * --attribute: the events come from one unrelated pid (no process tree the
 * server could follow) and every item carries our malicious="0|1" extension
 * (docs/protocol.md), as the cgroup-per-URL client sends it.
 * --unattributed: as --attribute, but the events of a group of more than
 * one URL cannot be tied to an item (malicious="0" on every item, and
 * unattributed="N" on the finish), as our client reports a flow whose owner
 * it never saw; a group of one URL is attributed.
 * --mark DIR: DIR/PID.visiting exists while a group is being visited (the
 * tests kill a client mid-visit with it); --hang-after-close: after the
 * server closed the connection, neither reconnect nor exit (a client stuck
 * in its revert); --revert-ms: wait that long before reconnecting after a
 * close (a guest rebuild).  --delay MS: half of it passes before the
 * events, the rest before finish.  --upload: after the events of a
 * malicious visit, before finish, upload "hello" as the original client
 * does (file, wait for file-accept or file-reject, parts, file-finished).
 * Hostile: --upload-unasked streams file, part and file-finished as soon as
 * a group arrives without waiting for an answer; --upload-partial declares
 * 1000 bytes, sends 5 and exits.
 * TLS: --tls-dir DIR takes DIR/ca.pem and DIR/hosts/VMSERVERID.pem/.key (the
 * layout of capture-server ca init/issue); --tls-ca/--tls-cert/--tls-key name
 * the files one by one (they win).  --tls-garbage: after the handshake, raw
 * bytes that are no TLS record.
 * Every exclusion rule the server pushes is printed to stderr as
 * "fake-client VMID: TYPE SIGN|ACTION|SUBJECT|OBJECT".
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "macro.h"
#include "proto.h"
#include "tls.h"

/* A test tool, one connection per process: the TLS state is file-wide. */
static SSL_CTX *tls_ctx;
static SSL *tls;

static ssize_t io_read(int fd, void *buf, size_t n)
{
	if (!tls)
		return read(fd, buf, n);
	size_t got;
	return SSL_read_ex(tls, buf, n, &got) == 1 ? (ssize_t)got : -1;
}

static ssize_t io_write(int fd, const void *buf, size_t n)
{
	if (!tls)
		return write(fd, buf, n);
	size_t put;
	return SSL_write_ex(tls, buf, n, &put) == 1 ? (ssize_t)put : -1;
}

struct opts {
	const char *addr, *port, *vmsid, *vmid, *pattern;
	long silent_after, crash_after;
	bool garbage, oversize, once, upload, upload_unasked, upload_partial, attribute, unattributed;
	long delay_ms;
	const char *mark;
	bool hang_after_close;
	long revert_ms;
	const char *tls_dir, *tls_ca, *tls_cert, *tls_key;
	bool tls_garbage;
};

static int send_raw(int fd, const char *p, size_t n)
{
	return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = io_write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_msg(int fd, const struct cap_msg *m)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	if (cap_msg_encode_to_server(m, &data, &len) < 0)
		return -1;
	return send_all(fd, data, len);
}

static int tls_connect(const struct opts *o, int fd)
{
	char err[256] = "";
	enum tls_want w;
	int r = tls_new(tls_ctx, fd, false, &tls);
	if (r == 0)
		r = tls_handshake(tls, &w, err, sizeof(err)); /* blocking socket: no -EAGAIN */
	if (r < 0) {
		fprintf(stderr, "fake-client %s: TLS: %s\n", o->vmid, err);
		SSL_free(tls);
		tls = NULL;
		close(fd);
		return -1;
	}
	if (o->tls_garbage)
		(void)send_raw(fd, "\x17\x03\x03\x00\x05garbage, not a record\r\n", 28);
	return fd;
}

static int connect_to(const struct opts *o)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	for (int tries = 0; tries < 50; tries++) {
		if (getaddrinfo(o->addr, o->port, &hints, &ai) == 0) {
			int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
				freeaddrinfo(ai);
				return tls_ctx ? tls_connect(o, fd) : fd;
			}
			if (fd >= 0)
				close(fd);
			freeaddrinfo(ai);
		}
		usleep(100000);
	}
	return -1;
}

static int send_event(int fd, pid_t parent, pid_t child)
{
	struct cap_event ev;
	char c[16];
	snprintf(c, sizeof(c), "%d", (int)child);
	cap_event_init(&ev, CAP_EV_PROCESS, "created", "/usr/bin/fake-browser", c, "/tmp/evil");
	ev.pid = parent;
	struct cap_msg m;
	if (cap_msg_system_from_event(&ev, &m) < 0)
		return -1;
	return send_msg(fd, &m);
}

/* Reads messages until a file-accept (1) or file-reject (0) comes. */
static int wait_answer(int fd, struct cap_framer *fr)
{
	char buf[65536];
	for (;;) {
		const char *msg;
		size_t len;
		int r;
		while ((r = cap_framer_next(fr, &msg, &len)) == 1) {
			struct cap_msg m;
			if (cap_msg_decode_from_server(msg, len, &m, NULL, 0) < 0)
				return -1;
			enum cap_msg_type t = m.type;
			cap_msg_clear(&m);
			if (t == CAP_MSG_FILE_ACCEPT || t == CAP_MSG_FILE_REJECT) {
				fprintf(stderr, "fake-client: upload %s\n", cap_msg_type_name(t));
				return t == CAP_MSG_FILE_ACCEPT;
			}
		}
		if (r < 0)
			return -1;
		ssize_t n = io_read(fd, buf, sizeof(buf));
		if (n <= 0 || cap_framer_feed(fr, buf, (size_t)n) < 0)
			return -1;
	}
}

/* fr NULL: do not wait for the server's answer (hostile). */
static int send_upload(int fd, struct cap_framer *fr, uint64_t size)
{
	struct cap_msg m = {.type = CAP_MSG_FILE};
	m.file.name = (char *)"../../etc/passwd"; /* the server must not use it */
	m.file.has_size = true;
	m.file.size = size;
	m.file.type = (char *)"zip";
	if (send_msg(fd, &m) < 0)
		return -1;
	if (fr) {
		int r = wait_answer(fd, fr);
		if (r <= 0)
			return r;
	}
	struct cap_msg p = {.type = CAP_MSG_PART};
	p.part.name = m.file.name;
	p.part.start = 0;
	p.part.end = 5;
	p.part.data = (unsigned char *)"hello";
	p.part.data_len = 5;
	if (send_msg(fd, &p) < 0)
		return -1;
	if (size != 5)
		_exit(0); /* --upload-partial: gone in the middle */
	m.type = CAP_MSG_FILE_FINISHED;
	return send_msg(fd, &m);
}

/* Answers one group; returns -1 to stop. */
static int visit(int fd, struct cap_framer *fr, const struct opts *o,
                 const struct cap_msg_visit *g, bool *closed_ok)
{
	struct cap_visit_item items[CAP_PROTO_ITEMS_MAX];
	bool mal = false;
	struct cap_msg m = {.type = CAP_MSG_VISIT_EVENT};
	m.visit.identifier = g->identifier;
	m.visit.program = g->program;
	m.visit.type = CAP_VISIT_START;
	m.visit.algorithm = CAP_ALG_NONE;
	if (send_msg(fd, &m) < 0)
		return -1;
	if (o->delay_ms > 0)
		usleep((useconds_t)(o->delay_ms / 2) * 1000);
	for (size_t i = 0; i < g->n_items; i++) {
		items[i] = (struct cap_visit_item){.id = g->items[i].id, .url = g->items[i].url,
		                                   .has_pid = true, .pid = (pid_t)(100 + i)};
		bool hit = o->pattern && strstr(g->items[i].url, o->pattern);
		if (o->attribute || o->unattributed) {
			items[i].has_malicious = true;
			items[i].malicious = hit && !(o->unattributed && g->n_items > 1);
			m.visit.unattributed += hit && !items[i].malicious;
		}
		if (hit) {
			mal = true;
			pid_t parent = o->attribute || o->unattributed ? (pid_t)5000 : (pid_t)(100 + i);
			if (send_event(fd, parent, (pid_t)(1000 + i)) < 0) {
				*closed_ok = true; /* dac: the server may already have closed */
				return 0;
			}
		}
	}
	char mark[4096] = "";
	if (o->mark) {
		snprintf(mark, sizeof(mark), "%s/%d.visiting", o->mark, (int)getpid());
		FILE *f = fopen(mark, "we");
		if (f)
			fclose(f);
	}
	if (o->delay_ms > 0)
		usleep((useconds_t)(o->delay_ms - o->delay_ms / 2) * 1000);
	if (mark[0])
		unlink(mark);
	if (mal && (o->upload || o->upload_partial) &&
	    send_upload(fd, fr, o->upload_partial ? 1000 : 5) < 0)
		return -1;
	m.visit.type = CAP_VISIT_FINISH;
	m.visit.malicious = mal;
	m.visit.n_items = g->n_items;
	m.visit.items = items;
	if (send_msg(fd, &m) < 0)
		*closed_ok = true;
	return 0;
}

static int session(const struct opts *o, long *groups)
{
	int fd = connect_to(o);
	if (fd < 0)
		return -1;
	struct cap_framer fr;
	cap_framer_init(&fr, CAP_FRAME_NUL, 0);
	int ret = 0;
	char buf[65536];
	for (;;) {
		ssize_t n = io_read(fd, buf, sizeof(buf));
		if (n <= 0)
			break; /* closed: a revert, or the server is gone */
		if (cap_framer_feed(&fr, buf, (size_t)n) < 0)
			break;
		const char *msg;
		size_t len;
		while (cap_framer_next(&fr, &msg, &len) == 1) {
			struct cap_msg m;
			char err[128];
			if (cap_msg_decode_from_server(msg, len, &m, err, sizeof(err)) < 0) {
				fprintf(stderr, "fake-client: bad message from server: %s\n", err);
				ret = -1;
				goto out;
			}
			bool closed = false;
			if (m.type == CAP_MSG_CONNECT) {
				struct cap_msg c = {.type = CAP_MSG_CONNECT};
				c.connect.vm_server_id = (char *)o->vmsid;
				c.connect.vm_id = (char *)o->vmid;
				send_msg(fd, &c);
				if (o->garbage)
					send_all(fd, "<<<not xml at all\r\n", 19);
				if (o->oversize) {
					char *big = malloc(2u << 20);
					if (big) {
						memset(big, 'A', 2u << 20);
						send_all(fd, big, 2u << 20);
						free(big);
					}
				}
			} else if (m.type == CAP_MSG_FILE_EXCLUSION || m.type == CAP_MSG_PROCESS_EXCLUSION ||
			           m.type == CAP_MSG_REGISTRY_EXCLUSION) {
				/* for the tests: one line per pushed rule */
				fprintf(stderr, "fake-client %s: %s %c|%s|%s|%s\n", o->vmid,
				        cap_msg_type_name(m.type), m.exclusion.excluded ? '+' : '-',
				        m.exclusion.action, m.exclusion.subject, m.exclusion.object);
			} else if (m.type == CAP_MSG_PING && (o->silent_after < 0 || *groups < o->silent_after)) {
				struct cap_msg p = {.type = CAP_MSG_PONG};
				send_msg(fd, &p);
			} else if (m.type == CAP_MSG_VISIT_EVENT) {
				if (o->crash_after >= 0 && *groups >= o->crash_after)
					_exit(3);
				if (o->silent_after < 0 || *groups < o->silent_after) {
					if (o->upload_unasked)
						send_upload(fd, NULL, 5);
					visit(fd, &fr, o, &m.visit, &closed);
				}
				(*groups)++;
			}
			cap_msg_clear(&m);
		}
	}
out:
	cap_framer_done(&fr);
	SSL_free(tls);
	tls = NULL;
	close(fd);
	return ret;
}

static int run_one(const struct opts *o)
{
	struct opts again = *o;
	long groups = 0;
	int r = session(o, &groups);
	/* bad messages only on the first connection; then behave */
	again.garbage = again.oversize = false;
	while (r == 0 && !o->once) {
		if (o->hang_after_close)
			for (;;)
				pause();
		if (o->revert_ms > 0)
			usleep((useconds_t)o->revert_ms * 1000);
		r = session(&again, &groups);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"silent-after", required_argument, NULL, 'S'}, {"crash-after", required_argument, NULL, 'C'},
		{"garbage", no_argument, NULL, 'G'},            {"oversize", no_argument, NULL, 'O'},
		{"once", no_argument, NULL, '1'},               {"upload", no_argument, NULL, 'U'},
		{"delay", required_argument, NULL, 'D'},        {"attribute", no_argument, NULL, 'A'},
		{"mark", required_argument, NULL, 'M'},          {"hang-after-close", no_argument, NULL, 'H'},
		{"revert-ms", required_argument, NULL, 'R'},
		{"tls-dir", required_argument, NULL, 't'}, {"tls-ca", required_argument, NULL, 'c'},
		{"tls-cert", required_argument, NULL, 'e'}, {"tls-key", required_argument, NULL, 'k'},
		{"tls-garbage", no_argument, NULL, 'g'},
		{"upload-unasked", no_argument, NULL, 'u'},     {"unattributed", no_argument, NULL, 'X'},     {"upload-partial", no_argument, NULL, 'P'},
		{0}};
	struct opts o = {.addr = "127.0.0.1", .port = "7070", .vmsid = "1", .vmid = "1",
	                 .silent_after = -1, .crash_after = -1};
	long nclients = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "s:p:a:b:m:n:", lo, NULL)) != -1) {
		switch (ch) {
		case 's': o.addr = optarg; break;
		case 'p': o.port = optarg; break;
		case 'a': o.vmsid = optarg; break;
		case 'b': o.vmid = optarg; break;
		case 'm': o.pattern = optarg; break;
		case 'n': nclients = strtol(optarg, NULL, 10); break;
		case 'S': o.silent_after = strtol(optarg, NULL, 10); break;
		case 'C': o.crash_after = strtol(optarg, NULL, 10); break;
		case 'G': o.garbage = true; break;
		case 'O': o.oversize = true; break;
		case '1': o.once = true; break;
		case 'U': o.upload = true; break;
		case 'u': o.upload_unasked = true; break;
		case 'X': o.unattributed = true; break;
		case 'P': o.upload_partial = true; break;
		case 'A': o.attribute = true; break;
		case 'M': o.mark = optarg; break;
		case 'H': o.hang_after_close = true; break;
		case 'R': o.revert_ms = strtol(optarg, NULL, 10); break;
		case 'D': o.delay_ms = strtol(optarg, NULL, 10); break;
		case 't': o.tls_dir = optarg; break;
		case 'c': o.tls_ca = optarg; break;
		case 'e': o.tls_cert = optarg; break;
		case 'k': o.tls_key = optarg; break;
		case 'g': o.tls_garbage = true; break;
		default: return 2;
		}
	}
	if (o.tls_dir || o.tls_ca) {
		char ca[4096], cert[4096], key[4096], err[4400];
		snprintf(ca, sizeof(ca), "%s/ca.pem", o.tls_dir ? o.tls_dir : ".");
		snprintf(cert, sizeof(cert), "%s/hosts/%s.pem", o.tls_dir ? o.tls_dir : ".", o.vmsid);
		snprintf(key, sizeof(key), "%s/hosts/%s.key", o.tls_dir ? o.tls_dir : ".", o.vmsid);
		if (tls_ctx_new(false, o.tls_ca ? o.tls_ca : ca, o.tls_cert ? o.tls_cert : cert,
		                o.tls_key ? o.tls_key : key, &tls_ctx, err, sizeof(err)) < 0) {
			fprintf(stderr, "fake-client: %s\n", err);
			return 2;
		}
	}
	if (nclients <= 1)
		return run_one(&o);
	for (long i = 0; i < nclients; i++)
		if (fork() == 0)
			_exit(run_one(&o));
	int status, rc = 0;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = 1;
	return rc;
}
