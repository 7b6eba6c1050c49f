/* cdp.c - DevTools protocol framing over one non-blocking socket (cdp.h). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cdp.h"
#include "frame.h"
#include "macro.h"

#define CDP_OUT_MAX    (16u << 20)
#define CDP_READ_CHUNK (256u << 10)
#define CDP_JSON_DEPTH 64

struct cdp {
	int fd;
	size_t max_msg;
	int64_t next_id;
	struct cap_buf out;
	/* Input: bytes [start, len) of in are unparsed; a message ends at a NUL. */
	char *in;
	size_t in_len, in_cap, in_start;
	size_t scanned; /* bytes after in_start already known to hold no NUL */
	int err;	/* sticky: -EMSGSIZE or -EPIPE */
};

int cdp_new(int fd, size_t max_msg, struct cdp **ret)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	struct cdp *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->max_msg = max_msg ? max_msg : CDP_DEFAULT_MAX_MSG;
	c->next_id = 1;
	c->out.max = CDP_OUT_MAX;
	*ret = c;
	return 0;
}

void cdp_free(struct cdp *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	cap_buf_done(&c->out);
	free(c->in);
	free(c);
}

int cdp_fd(const struct cdp *c)
{
	return c->fd;
}

bool cdp_write_pending(const struct cdp *c)
{
	return cap_buf_unsent(&c->out) > 0;
}

int cdp_flush(struct cdp *c)
{
	while (c->out.off < c->out.len) {
		ssize_t w = send(c->fd, c->out.data + c->out.off, c->out.len - c->out.off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return c->err = negative_errno() == -ECONNRESET ? -EPIPE : negative_errno();
		}
		c->out.off += (size_t)w;
	}
	c->out.off = c->out.len = 0;
	return 0;
}

int cdp_send(struct cdp *c, const char *session, const char *method, struct json_object *params,
	     int64_t *ret_id)
{
	if (c->err == -EPIPE) {
		json_object_put(params);
		return -EPIPE;
	}
	struct json_object *m = json_object_new_object();
	if (!m) {
		json_object_put(params);
		return -ENOMEM;
	}
	int64_t id = c->next_id++;
	json_object_object_add(m, "id", json_object_new_int64(id));
	json_object_object_add(m, "method", json_object_new_string(method));
	json_object_object_add(m, "params", params ? params : json_object_new_object());
	if (session)
		json_object_object_add(m, "sessionId", json_object_new_string(session));
	size_t n = 0;
	const char *s = json_object_to_json_string_length(m, JSON_C_TO_STRING_PLAIN, &n);
	int r = s ? cap_buf_append(&c->out, s, n + 1) : -ENOMEM; /* with its NUL */
	json_object_put(m);
	if (r < 0)
		return r;
	if ((r = cdp_flush(c)) < 0)
		return r;
	if (ret_id)
		*ret_id = id;
	return 0;
}

int cdp_read(struct cdp *c)
{
	if (c->err)
		return c->err;
	for (;;) {
		/* Compact, then make room for one chunk (bounded by max_msg). */
		if (c->in_start > 0 && c->in_start == c->in_len) {
			c->in_start = c->in_len = 0;
		} else if (c->in_start > 0 && c->in_cap - c->in_len < CDP_READ_CHUNK) {
			memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
			c->in_len -= c->in_start;
			c->in_start = 0;
		}
		if (c->in_len - c->in_start > c->max_msg + 1)
			return c->err = -EMSGSIZE;
		if (c->in_cap - c->in_len < CDP_READ_CHUNK) {
			size_t ncap = c->in_cap ? c->in_cap * 2 : CDP_READ_CHUNK * 2;
			while (ncap - c->in_len < CDP_READ_CHUNK)
				ncap *= 2;
			char *n = realloc(c->in, ncap);
			if (!n)
				return -ENOMEM;
			c->in = n;
			c->in_cap = ncap;
		}
		ssize_t got = read(c->fd, c->in + c->in_len, CDP_READ_CHUNK);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return c->err = -EPIPE;
		}
		if (got == 0)
			return c->err = -EPIPE;
		c->in_len += (size_t)got;
		/* Do not hoard: let the caller parse once a message is complete. */
		if (memchr(c->in + c->in_len - got, '\0', (size_t)got))
			return 0;
	}
}

int cdp_next(struct cdp *c, struct json_object **ret)
{
	char *start = c->in + c->in_start;
	size_t avail = c->in_len - c->in_start;
	if (!c->in || avail == 0)
		return 0;
	char *end = memchr(start + c->scanned, '\0', avail - c->scanned);
	if (!end) {
		c->scanned = avail;
		if (avail > c->max_msg)
			return c->err = -EMSGSIZE;
		return 0;
	}
	size_t len = (size_t)(end - start);
	c->in_start += len + 1;
	c->scanned = 0;
	if (len > c->max_msg)
		return c->err = -EMSGSIZE;
	struct json_tokener *tok = json_tokener_new_ex(CDP_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	struct json_object *o = json_tokener_parse_ex(tok, start, (int)len);
	bool whole = json_tokener_get_error(tok) == json_tokener_success &&
		     json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (!o || !whole || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EBADMSG;
	}
	*ret = o;
	return 1;
}

int64_t cdp_msg_id(struct json_object *msg)
{
	struct json_object *v;
	if (!json_object_object_get_ex(msg, "id", &v) || !json_object_is_type(v, json_type_int))
		return -1;
	int64_t id = json_object_get_int64(v);
	return id > 0 ? id : -1;
}

const char *cdp_str(struct json_object *obj, const char *key)
{
	struct json_object *v;
	if (!obj || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

struct json_object *cdp_obj(struct json_object *obj, const char *key)
{
	struct json_object *v;
	if (!obj || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

const char *cdp_msg_method(struct json_object *msg)
{
	return cdp_str(msg, "method");
}

const char *cdp_msg_session(struct json_object *msg)
{
	return cdp_str(msg, "sessionId");
}

struct json_object *cdp_msg_result(struct json_object *msg)
{
	return cdp_obj(msg, "result");
}

const char *cdp_msg_error(struct json_object *msg)
{
	struct json_object *e;
	if (!json_object_object_get_ex(msg, "error", &e))
		return NULL;
	const char *s = cdp_str(e, "message");
	return s ? s : "(error without a message)";
}
