/* tls.h - mutual TLS 1.3 between capture-server and its clients (farm CA). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* The name every client checks in the server's certificate (see tls.c). */
#define TLS_SERVER_NAME "capture-server"
/* Longest peer name kept (a vm-server-id). */
#define TLS_NAME_MAX 256

/* Where a non-blocking operation must wait before it is retried. */
enum tls_want {
	TLS_WANT_NONE = 0,
	TLS_WANT_READ = 1,
	TLS_WANT_WRITE = 2,
};

/* Refuses a private key readable or writable by group/others, or owned by anybody
 * but the running user or root: -EPERM, with err naming the file. */
int tls_check_key_file(const char *path, char *err, size_t errlen);

/* Makes a context: TLS 1.3 only, no compression, no tickets, no renegotiation, the
 * peer certificate required and verified against ca (server and client alike).
 * 0 or -errno (-EPERM bad key permissions, -ENOENT missing file, -EPROTO unusable
 * certificate or key); err says which file and why. */
int tls_ctx_new(bool server, const char *ca, const char *cert, const char *key, SSL_CTX **ret_ctx,
		char *err, size_t errlen);

/* An SSL object on a connected non-blocking fd.  A client checks the server's
 * certificate name against TLS_SERVER_NAME. */
int tls_new(SSL_CTX *ctx, int fd, bool server, SSL **ret_ssl);

/* Drives the handshake: 0 done, -EAGAIN (wait for *ret_want), -EPROTO failed
 * (err says why, e.g. "certificate has expired"). */
int tls_handshake(SSL *ssl, enum tls_want *ret_want, char *err, size_t errlen);

/* Reads up to n plaintext bytes: >0 bytes, 0 orderly close, -EAGAIN (*ret_want),
 * -EPROTO / -ECONNRESET.  After epoll said readable, call it until -EAGAIN or
 * while SSL_has_pending(): TLS buffers whole records (read-ahead is on), so
 * data may wait in OpenSSL with nothing left on the fd. */
ssize_t tls_read(SSL *ssl, void *buf, size_t n, enum tls_want *ret_want);

/* Writes up to n bytes: >0 bytes written, -EAGAIN (*ret_want; retry with the same
 * bytes), -EPROTO / -EPIPE. */
ssize_t tls_write(SSL *ssl, const void *buf, size_t n, enum tls_want *ret_want);

struct cap_buf;
/* cap_buf_flush() through TLS: 1 everything written, 0 would block with data
 * left (*ret_want says on what), -errno. */
int tls_buf_flush(SSL *ssl, struct cap_buf *b, enum tls_want *ret_want);

/* The verified peer's name: its first DNS subjectAltName, else its CN.  -ENOENT
 * without a verified certificate, -ENAMETOOLONG, -EINVAL for a name with bytes
 * other than [A-Za-z0-9._-]. */
int tls_peer_name(SSL *ssl, char *buf, size_t len);

/* Sends close_notify (best effort) and frees; NULL is a no-op. */
void tls_free(SSL *ssl);

/* Takes the last OpenSSL error off the queue as text. */
void tls_errstr(char *buf, size_t len);

static inline void tls_ctx_freep(SSL_CTX **p)
{
	SSL_CTX_free(*p);
}
#define _cleanup_ssl_ctx_ __attribute__((cleanup(tls_ctx_freep)))
