/* tls.c - mutual TLS 1.3 for the server/client connection.
 *
 * Owns the OpenSSL contexts and the non-blocking I/O helpers that the epoll
 * server and the blocking client share.  The design:
 *
 *  - TLS 1.3 only (min = max): one well-reviewed handshake, no cipher list to
 *    tune, no renegotiation (1.3 has none), and no compression (1.3 has none
 *    either; SSL_OP_NO_COMPRESSION is set for clarity).  Session tickets are off:
 *    clients connect once per run and resume after a crash with a full handshake,
 *    so tickets would only add key material to protect.
 *  - Mutual authentication against one farm CA (capture-server ca init): each
 *    side requires the other's certificate and verifies it against the CA file
 *    only, never the system store.  The server learns the client host's name
 *    from its certificate (tls_peer_name); the caller compares it with the
 *    vm-server-id sent in connect/reconnect.
 *  - The client checks the fixed name TLS_SERVER_NAME instead of the address it
 *    dialled: farms dial servers by IP address or by names the CA cannot know
 *    in advance, while the farm CA signs only its own server and hosts.  Host
 *    certificates cannot pose as the server because they carry the name of a
 *    vm-server-id ("capture-server" is refused as one) and clientAuth as their
 *    only extended key usage, which OpenSSL's purpose check rejects on a client.
 *  - Private keys are refused when group/others may read them or when they
 *    belong to another user, before OpenSSL sees them.
 *
 * The framing inside the TLS stream is the plain-text framing, unchanged.
 */
#include "tls.h"

#include "frame.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

void tls_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	unsigned long next;
	/* the last error is usually the most specific one */
	while ((next = ERR_get_error()) != 0)
		e = next;
	if (e == 0)
		snprintf(buf, len, "unknown TLS error");
	else
		ERR_error_string_n(e, buf, len);
}

int tls_check_key_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errlen, "%s: private key owned by uid %u, not by this user or root",
			 path, (unsigned)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
			 "%s: private key is accessible by group or others (mode %04o; "
			 "chmod 600 it)",
			 path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static int load_files(SSL_CTX *ctx, const char *ca, const char *cert, const char *key, char *err,
		      size_t errlen)
{
	char why[256];
	const char *files[] = {ca, cert, key};
	for (size_t i = 0; i < 3; i++)
		if (access(files[i], R_OK) < 0) {
			int r = -errno;
			snprintf(err, errlen, "%s: %s", files[i], strerror(errno));
			return r;
		}
	int r = tls_check_key_file(key, err, errlen);
	if (r < 0)
		return r;
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		tls_errstr(why, sizeof(why));
		snprintf(err, errlen, "%s: not a usable CA certificate: %s", ca, why);
		return -EPROTO;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_errstr(why, sizeof(why));
		snprintf(err, errlen, "%s: not a usable certificate: %s", cert, why);
		return -EPROTO;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_errstr(why, sizeof(why));
		snprintf(err, errlen, "%s: not a usable private key: %s", key, why);
		return -EPROTO;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s: does not match the certificate %s", key, cert);
		ERR_clear_error();
		return -EPROTO;
	}
	return 0;
}

int tls_ctx_new(bool server, const char *ca, const char *cert, const char *key, SSL_CTX **ret_ctx,
		char *err, size_t errlen)
{
	_cleanup_ssl_ctx_ SSL_CTX *ctx =
	    SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		snprintf(err, errlen, "this OpenSSL has no TLS 1.3");
		return -EPROTONOSUPPORT;
	}
	SSL_CTX_set_options(ctx,
			    SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (server)
		SSL_CTX_set_num_tickets(ctx, 0);
	/* the farm CA alone decides, on both sides */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	/* partial writes and moving buffers: the server retries from its own queue */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Without read-ahead OpenSSL reads every record with two read(2)s (header,
	 * then body); the protocol's records are small, so that doubled the
	 * syscalls per message (bench-tls.sh).  The price: whole records can wait
	 * in OpenSSL's buffer where epoll cannot see them, so readers loop while
	 * SSL_has_pending() (see tls_read). */
	SSL_CTX_set_read_ahead(ctx, 1);
	int r = load_files(ctx, ca, cert, key, err, errlen);
	if (r < 0)
		return r;
	*ret_ctx = ctx;
	ctx = NULL;
	return 0;
}

int tls_new(SSL_CTX *ctx, int fd, bool server, SSL **ret_ssl)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return -ENOMEM;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (SSL_set1_host(ssl, TLS_SERVER_NAME) != 1 ||
		    SSL_set_tlsext_host_name(ssl, TLS_SERVER_NAME) != 1) {
			SSL_free(ssl);
			return -ENOMEM;
		}
	}
	*ret_ssl = ssl;
	return 0;
}

/* Maps an SSL_get_error() result; 1 means retry later with *want set. */
static int map_error(SSL *ssl, int ret, enum tls_want *want)
{
	int e = SSL_get_error(ssl, ret);
	*want = TLS_WANT_NONE;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = TLS_WANT_READ;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = TLS_WANT_WRITE;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		/* an EOF without close_notify, or a socket error */
		return errno == 0 || errno == EAGAIN ? -ECONNRESET : -errno;
	default:
		return -EPROTO;
	}
}

int tls_handshake(SSL *ssl, enum tls_want *ret_want, char *err, size_t errlen)
{
	ERR_clear_error();
	errno = 0;
	int ret = SSL_do_handshake(ssl);
	if (ret == 1) {
		*ret_want = TLS_WANT_NONE;
		return 0;
	}
	int r = map_error(ssl, ret, ret_want);
	if (r == -EAGAIN)
		return r;
	long v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK)
		snprintf(err, errlen, "certificate refused: %s", X509_verify_cert_error_string(v));
	else if (r == -EPROTO)
		tls_errstr(err, errlen);
	else
		snprintf(err, errlen, "connection closed during the TLS handshake");
	ERR_clear_error();
	return r == 0 ? -ECONNRESET : (r == -EPROTO ? -EPROTO : r);
}

ssize_t tls_read(SSL *ssl, void *buf, size_t n, enum tls_want *ret_want)
{
	size_t got = 0;
	ERR_clear_error();
	errno = 0;
	if (SSL_read_ex(ssl, buf, n, &got) == 1) {
		*ret_want = TLS_WANT_NONE;
		return (ssize_t)got;
	}
	int r = map_error(ssl, 0, ret_want);
	ERR_clear_error();
	return r;
}

ssize_t tls_write(SSL *ssl, const void *buf, size_t n, enum tls_want *ret_want)
{
	size_t put = 0;
	ERR_clear_error();
	errno = 0;
	if (SSL_write_ex(ssl, buf, n, &put) == 1) {
		*ret_want = TLS_WANT_NONE;
		return (ssize_t)put;
	}
	int r = map_error(ssl, 0, ret_want);
	ERR_clear_error();
	return r == 0 ? -EPIPE : r;
}

int tls_buf_flush(SSL *ssl, struct cap_buf *b, enum tls_want *ret_want)
{
	*ret_want = TLS_WANT_NONE;
	while (cap_buf_unsent(b) > 0) {
		ssize_t n = tls_write(ssl, b->data + b->off, cap_buf_unsent(b), ret_want);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	return 1;
}

static bool name_ok(const unsigned char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int copy_name(const unsigned char *s, size_t len, char *buf, size_t buflen)
{
	if (len >= buflen)
		return -ENAMETOOLONG;
	if (!name_ok(s, len))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return 0;
}

int tls_peer_name(SSL *ssl, char *buf, size_t len)
{
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		return -ENOENT;
	X509 *x = SSL_get0_peer_certificate(ssl);
	if (!x)
		return -ENOENT;
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (sans) {
		int r = -ENOENT;
		for (int i = 0; i < sk_GENERAL_NAME_num(sans) && r == -ENOENT; i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
			if (g->type == GEN_DNS)
				r = copy_name(ASN1_STRING_get0_data(g->d.dNSName),
					      (size_t)ASN1_STRING_length(g->d.dNSName), buf, len);
		}
		GENERAL_NAMES_free(sans);
		if (r != -ENOENT)
			return r;
	}
	X509_NAME *subj = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (idx < 0)
		return -ENOENT;
	ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
	return copy_name(ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn), buf, len);
}

void tls_free(SSL *ssl)
{
	if (!ssl)
		return;
	if (SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl); /* one close_notify; we do not wait for the peer's */
	ERR_clear_error();
	SSL_free(ssl);
}
