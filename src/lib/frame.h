/* frame.h - bounded message framing for the Capture-HPC TCP stream.
 *
 * The protocol has no length prefix: server->client messages end with a
 * NUL byte, client->server messages end with CRLF (a bare LF is accepted).
 * cap_framer buffers what the socket gave us and hands out whole messages;
 * a message longer than the limit (default 1 MiB) is -EMSGSIZE and the
 * caller closes the connection.  cap_buf is a growable, bounded byte buffer
 * used for encoding and as an output queue for non-blocking sockets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CAP_FRAME_DEFAULT_MAX (1024u * 1024u)

enum cap_frame_mode {
	CAP_FRAME_NUL = 0, /* server -> client: terminator '\0' */
	CAP_FRAME_LINE,	   /* client -> server: terminator "\r\n" or "\n" */
};

struct cap_framer {
	enum cap_frame_mode mode;
	size_t max;   /* longest message body accepted (without terminator) */
	char *buf;
	size_t start; /* first unconsumed byte */
	size_t scan;  /* bytes from start already known to hold no terminator */
	size_t len;   /* bytes in buf */
	size_t cap;
	bool failed;  /* sticky: after -EMSGSIZE every call fails */
};

/* Sets up f for mode; max = 0 means CAP_FRAME_DEFAULT_MAX.  Never fails. */
void cap_framer_init(struct cap_framer *f, enum cap_frame_mode mode, size_t max);
/* Frees the buffer; f may be init'ed again. */
void cap_framer_done(struct cap_framer *f);
/* Appends n bytes read from the stream.  Returns 0, -ENOMEM, or -EMSGSIZE if
 * the bytes still buffered (not yet taken with cap_framer_next) already
 * exceed the limit without a terminator. */
int cap_framer_feed(struct cap_framer *f, const void *data, size_t n);
/* Takes the next whole message.  Returns 1 and sets *ret_msg (NUL-terminated,
 * terminator and a trailing '\r' / surrounding whitespace-only messages
 * removed; valid until the next feed/next/done) and *ret_len; 0 if no whole
 * message is buffered yet; -EMSGSIZE if a message exceeds the limit (sticky).
 * Empty or whitespace-only messages are skipped. */
int cap_framer_next(struct cap_framer *f, const char **ret_msg, size_t *ret_len);
/* Bytes buffered but not yet returned as a message. */
size_t cap_framer_pending(const struct cap_framer *f);

/* Growable byte buffer with an upper bound; data is always NUL-terminated. */
struct cap_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0 = CAP_FRAME_DEFAULT_MAX * 4 */
	size_t off; /* consumed prefix (output queue use) */
};

/* Appends n bytes; -ENOMEM, or -EMSGSIZE if len would exceed max. */
int cap_buf_append(struct cap_buf *b, const void *data, size_t n);
/* Appends a NUL-terminated string. */
int cap_buf_puts(struct cap_buf *b, const char *s);
/* Appends formatted text (bounded by max like cap_buf_append). */
int cap_buf_printf(struct cap_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Unsent bytes (data + off, len - off). */
size_t cap_buf_unsent(const struct cap_buf *b);
/* Writes as much as the (non-blocking) fd takes.  Returns 1 when everything
 * is written, 0 if the fd would block with data left, -errno on error. */
int cap_buf_flush(struct cap_buf *b, int fd);
/* Hands the contents to the caller (NUL-terminated, malloc'ed) and resets b. */
char *cap_buf_steal(struct cap_buf *b, size_t *ret_len);
/* Frees the data and resets b (max is kept). */
void cap_buf_done(struct cap_buf *b);
