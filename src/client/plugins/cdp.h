/* cdp.h - a small client for the Chrome DevTools Protocol over
 * --remote-debugging-pipe (docs/visitor.md).
 *
 * Chromium started with --remote-debugging-pipe reads commands from its fd 3
 * and writes answers and events to its fd 4, each message one JSON object
 * followed by a NUL byte.  We give it both ends as one AF_UNIX stream socket
 * (the same socket as fd 3 and fd 4): unlike a pipe, a socket lets us write
 * with MSG_NOSIGNAL, so a dead browser is -EPIPE and never a SIGPIPE in the
 * client.  The browser is untrusted (a page may own the renderer, and the
 * browser process runs inside the sandbox), so every message is bounded
 * (max_msg), parsed with a depth-limited tokener, and nothing here ever
 * blocks: the socket is non-blocking, commands are
 * queued and written when the socket takes them (cdp_flush on POLLOUT), and
 * answers are read when poll says so (cdp_read, then cdp_next).  Callers
 * drive it from one poll loop (app-chromium.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct cdp;

/* Default bound of one message from the browser: screenshots are the
 * largest (base64 PNG). */
#define CDP_DEFAULT_MAX_MSG (64u << 20)

/* Takes ownership of fd (our end of the socket pair whose other end is the
 * browser's fd 3 and 4) and makes it non-blocking.  max_msg 0 =
 * CDP_DEFAULT_MAX_MSG.  On failure fd is closed too. */
int cdp_new(int fd, size_t max_msg, struct cdp **ret);
void cdp_free(struct cdp *c);

int cdp_fd(const struct cdp *c);
/* True when queued commands wait for the socket (poll for POLLOUT too). */
bool cdp_write_pending(const struct cdp *c);

/* Queues {"id":N,"method":method,"params":params[,"sessionId":session]}
 * and writes as much as the socket takes.  params (may be NULL = {}) is
 * consumed in every case.  *ret_id (may be NULL) gets N (> 0).  -EPIPE once
 * the browser has gone, -EMSGSIZE if the queue would exceed 16 MiB. */
int cdp_send(struct cdp *c, const char *session, const char *method, struct json_object *params,
	     int64_t *ret_id);
/* Writes queued commands; 0 (also when some are still queued) or -errno. */
int cdp_flush(struct cdp *c);

/* Reads what the socket holds (non-blocking).  0, -EPIPE at end of file (the
 * browser closed its end or died), -EMSGSIZE if a message exceeds max_msg
 * (sticky: the stream cannot be resynchronised safely). */
int cdp_read(struct cdp *c);
/* Takes the next complete message: 1 and *ret (a JSON object, the caller
 * puts it), 0 if none is complete, -EBADMSG for a message that is not a
 * JSON object (skipped; the next call goes on with the following one). */
int cdp_next(struct cdp *c, struct json_object **ret);

/* Accessors for received messages (NULL / -1 when absent or mistyped). */
int64_t cdp_msg_id(struct json_object *msg);		     /* "id", -1 for events */
const char *cdp_msg_method(struct json_object *msg);	     /* events */
const char *cdp_msg_session(struct json_object *msg);	     /* "sessionId" */
struct json_object *cdp_msg_result(struct json_object *msg); /* "result" object */
/* The "error" object's message, or NULL if the answer is no error. */
const char *cdp_msg_error(struct json_object *msg);
/* A string member of obj (NULL if absent or not a string). */
const char *cdp_str(struct json_object *obj, const char *key);
/* An object member of obj (NULL if absent or not an object). */
struct json_object *cdp_obj(struct json_object *obj, const char *key);
