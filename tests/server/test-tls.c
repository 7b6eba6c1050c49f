/* test-tls: the farm CA (ca.c) and mutual TLS 1.3 (tls.c) over a socketpair:
 * a handshake with names read back, data both ways with pending plaintext
 * drained, and refusals: expired, other CA, loose key permissions, bad names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "macro.h"
#include "server/ca.h"
#include "tls.h"

static char dir[64], ca[128], other[128];

static int setup(void **state)
{
	char err[512];
	snprintf(dir, sizeof(dir), "/tmp/test-tls-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(ca, sizeof(ca), "%s/ca", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	if (ca_init(ca, 30, err, sizeof(err)) < 0 || ca_init(other, 30, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path(char *buf, size_t len, const char *d, const char *file)
{
	snprintf(buf, len, "%s/%s", d, file);
}

static SSL_CTX *server_ctx(void)
{
	char c[256], cert[256], key[256], err[512];
	SSL_CTX *ctx = NULL;
	path(c, sizeof(c), ca, CA_CERT_FILE);
	path(cert, sizeof(cert), ca, CA_SERVER_CERT_FILE);
	path(key, sizeof(key), ca, CA_SERVER_KEY_FILE);
	int r = tls_ctx_new(true, c, cert, key, &ctx, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "%s\n", err);
	assert_int_equal(r, 0);
	return ctx;
}

/* A client context for hosts/NAME of CA directory d, trusting cadir's CA. */
static SSL_CTX *client_ctx(const char *d, const char *name, const char *cadir)
{
	char c[256], cert[256], key[256], err[512];
	SSL_CTX *ctx = NULL;
	path(c, sizeof(c), cadir, CA_CERT_FILE);
	snprintf(cert, sizeof(cert), "%s/hosts/%s.pem", d, name);
	snprintf(key, sizeof(key), "%s/hosts/%s.key", d, name);
	int r = tls_ctx_new(false, c, cert, key, &ctx, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "%s\n", err);
	assert_int_equal(r, 0);
	return ctx;
}

struct pair {
	int fd[2];
	SSL *s, *c;
	char serr[512], cerr[512];
};

/* Drives both ends of a non-blocking socketpair; the server's result. */
static int handshake(SSL_CTX *sctx, SSL_CTX *cctx, struct pair *p)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd),
			 0);
	assert_int_equal(tls_new(sctx, p->fd[0], true, &p->s), 0);
	assert_int_equal(tls_new(cctx, p->fd[1], false, &p->c), 0);
	int rs = -EAGAIN, rc = -EAGAIN;
	for (int i = 0; i < 100 && (rs == -EAGAIN || rc == -EAGAIN); i++) {
		enum tls_want w;
		if (rc == -EAGAIN)
			rc = tls_handshake(p->c, &w, p->cerr, sizeof(p->cerr));
		if (rs == -EAGAIN)
			rs = tls_handshake(p->s, &w, p->serr, sizeof(p->serr));
		if (rs < 0 && rs != -EAGAIN)
			break;
	}
	return rs;
}

static void pair_done(struct pair *p)
{
	tls_free(p->s);
	tls_free(p->c);
	close(p->fd[0]);
	close(p->fd[1]);
}

static void test_handshake_and_data(void **state)
{
	char err[512], name[TLS_NAME_MAX], buf[64];
	assert_int_equal(ca_issue(ca, "host-a", 10, NULL, err, sizeof(err)), 0);
	_cleanup_ssl_ctx_ SSL_CTX *sctx = server_ctx();
	_cleanup_ssl_ctx_ SSL_CTX *cctx = client_ctx(ca, "host-a", ca);
	struct pair p = {0};
	assert_int_equal(handshake(sctx, cctx, &p), 0);
	assert_int_equal(SSL_version(p.s), TLS1_3_VERSION);
	assert_int_equal(tls_peer_name(p.s, name, sizeof(name)), 0);
	assert_string_equal(name, "host-a");
	assert_int_equal(tls_peer_name(p.c, name, sizeof(name)), 0);
	assert_string_equal(name, TLS_SERVER_NAME);

	/* two messages in two records, then read with a small buffer: the second
	 * must come from SSL's buffer even though the socket may be empty */
	enum tls_want w;
	assert_int_equal(tls_write(p.s, "<ping/>", 8, &w), 8);
	assert_int_equal(tls_write(p.s, "<pong/>", 8, &w), 8);
	size_t got = 0;
	ssize_t n;
	while ((n = tls_read(p.c, buf + got, 4, &w)) > 0)
		got += (size_t)n;
	assert_int_equal(n, -EAGAIN);
	assert_int_equal(w, TLS_WANT_READ);
	assert_int_equal(got, 16);
	assert_memory_equal(buf, "<ping/>\0<pong/>\0", 16);
	assert_int_equal(tls_write(p.c, "ok\r\n", 4, &w), 4);
	assert_int_equal(tls_read(p.s, buf, sizeof(buf), &w), 4);

	/* an orderly close reads as 0 */
	assert_int_equal(SSL_shutdown(p.c), 0);
	assert_int_equal(tls_read(p.s, buf, sizeof(buf), &w), 0);
	pair_done(&p);
}

static void test_expired_refused(void **state)
{
	char err[512];
	assert_int_equal(ca_issue(ca, "old", 10, "20200101000000Z", err, sizeof(err)), 0);
	_cleanup_ssl_ctx_ SSL_CTX *sctx = server_ctx();
	_cleanup_ssl_ctx_ SSL_CTX *cctx = client_ctx(ca, "old", ca);
	struct pair p = {0};
	assert_int_equal(handshake(sctx, cctx, &p), -EPROTO);
	assert_non_null(strstr(p.serr, "expired"));
	pair_done(&p);
}

static void test_other_ca_refused(void **state)
{
	char err[512];
	assert_int_equal(ca_issue(other, "host-a", 10, NULL, err, sizeof(err)), 0);
	_cleanup_ssl_ctx_ SSL_CTX *sctx = server_ctx();
	/* trusts the real CA (so the server passes) but presents the other CA's cert */
	_cleanup_ssl_ctx_ SSL_CTX *cctx = client_ctx(other, "host-a", ca);
	struct pair p = {0};
	assert_int_equal(handshake(sctx, cctx, &p), -EPROTO);
	assert_non_null(strstr(p.serr, "certificate refused"));
	pair_done(&p);
}

static void test_client_refuses_host_cert_as_server(void **state)
{
	/* a host certificate (clientAuth, its own name) cannot act as the server */
	char err[512], c[256], cert[256], key[256];
	assert_int_equal(ca_issue(ca, "rogue", 10, NULL, err, sizeof(err)), 0);
	path(c, sizeof(c), ca, CA_CERT_FILE);
	snprintf(cert, sizeof(cert), "%s/hosts/rogue.pem", ca);
	snprintf(key, sizeof(key), "%s/hosts/rogue.key", ca);
	_cleanup_ssl_ctx_ SSL_CTX *sctx = NULL;
	assert_int_equal(tls_ctx_new(true, c, cert, key, &sctx, err, sizeof(err)), 0);
	assert_int_equal(ca_issue(ca, "victim", 10, NULL, err, sizeof(err)), 0);
	_cleanup_ssl_ctx_ SSL_CTX *cctx = client_ctx(ca, "victim", ca);
	struct pair p = {0};
	assert_int_not_equal(handshake(sctx, cctx, &p), 0);
	assert_non_null(strstr(p.cerr, "certificate refused"));
	pair_done(&p);
}

static void test_key_permissions(void **state)
{
	char err[512], c[256], cert[256], key[256];
	assert_int_equal(ca_issue(ca, "loose", 10, NULL, err, sizeof(err)), 0);
	path(c, sizeof(c), ca, CA_CERT_FILE);
	snprintf(cert, sizeof(cert), "%s/hosts/loose.pem", ca);
	snprintf(key, sizeof(key), "%s/hosts/loose.key", ca);
	struct stat st;
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(chmod(key, 0640), 0);
	SSL_CTX *ctx = NULL;
	assert_int_equal(tls_ctx_new(false, c, cert, key, &ctx, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, key));
	assert_null(ctx);
}

static void test_ca_refusals(void **state)
{
	char err[512];
	struct stat st;
	assert_int_equal(stat(ca, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(ca_init(ca, 30, err, sizeof(err)), -EEXIST);
	assert_int_equal(ca_issue(ca, "twice", 10, NULL, err, sizeof(err)), 0);
	assert_int_equal(ca_issue(ca, "twice", 10, NULL, err, sizeof(err)), -EEXIST);
	assert_int_equal(ca_issue(ca, TLS_SERVER_NAME, 10, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(ca_issue(ca, "../x", 10, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(ca_issue(ca, "a b", 10, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(ca_issue(ca, "bad-date", 10, "yesterday", err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_and_data),
	    cmocka_unit_test(test_expired_refused),
	    cmocka_unit_test(test_other_ca_refused),
	    cmocka_unit_test(test_client_refuses_host_cert_as_server),
	    cmocka_unit_test(test_key_permissions),
	    cmocka_unit_test(test_ca_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
