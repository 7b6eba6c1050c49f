/* proto.c - Capture-HPC message codec: tables, time format, encoder,
 * libxml2 decoder with validation (see proto.h, docs/protocol.md). */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "escape.h"
#include "frame.h"
#include "macro.h"

/* --- tables --- */

static const struct {
	uint32_t code;
	const char *name;
} error_codes[] = {
	{CAP_ERR_NETWORK_ERROR, "NETWORK_ERROR"},
	{CAP_ERR_PROCESS_ERROR, "PROCESS_ERROR"},
	{CAP_ERR_TIMEOUT_ERROR, "TIMEOUT_ERROR"},
	{CAP_ERR_MULTIPLE_ERRORS, "MULTIPLE_ERRORS"},
	{CAP_ERR_ATTACH_PROCESS_ERROR, "ATTACH_PROCESS_ERROR"},
	{CAP_ERR_EXCEPTION, "EXCEPTION"},
	{CAP_ERR_WARNING, "WARNING"},
	{CAP_ERR_CLIENT_INACTIVITY, "CLIENT_INACTIVITY"},
	{CAP_ERR_VM_STALLED, "VM_STALLED"},
	{CAP_ERR_CONNECTION_RESET, "CONNECTION_RESET"},
	{CAP_ERR_SOCKET_ERROR, "SOCKET_ERROR"},
	{CAP_ERR_INVALID_ERROR_CODE_FROM_CLIENT, "INVALID_ERROR_CODE_FROM_CLIENT"},
	{CAP_ERR_INVALID_URL, "INVALID_URL"},
};

const char *cap_error_code_name(uint32_t code)
{
	for (size_t i = 0; i < ELEMENTSOF(error_codes); i++)
		if (error_codes[i].code == code)
			return error_codes[i].name;
	return NULL;
}

int cap_error_code_from_name(const char *name, uint32_t *ret)
{
	for (size_t i = 0; i < ELEMENTSOF(error_codes); i++)
		if (strcmp(error_codes[i].name, name) == 0) {
			*ret = error_codes[i].code;
			return 0;
		}
	return -EINVAL;
}

bool cap_error_code_known(uint32_t code)
{
	return cap_error_code_name(code) != NULL;
}

bool cap_error_code_completes_visit(uint32_t code)
{
	return code == CAP_ERR_NETWORK_ERROR || code == CAP_ERR_TIMEOUT_ERROR ||
	       code == CAP_ERR_MULTIPLE_ERRORS || code == CAP_ERR_WARNING;
}

static const char *const msg_names[CAP_MSG_TYPE_MAX] = {
	[CAP_MSG_CONNECT] = "connect",
	[CAP_MSG_RECONNECT] = "reconnect",
	[CAP_MSG_OPTION] = "option",
	[CAP_MSG_FILE_EXCLUSION] = "file-exclusion",
	[CAP_MSG_PROCESS_EXCLUSION] = "process-exclusion",
	[CAP_MSG_REGISTRY_EXCLUSION] = "registry-exclusion",
	[CAP_MSG_VISIT_EVENT] = "visit-event",
	[CAP_MSG_SYSTEM_EVENT] = "system-event",
	[CAP_MSG_PING] = "ping",
	[CAP_MSG_PONG] = "pong",
	[CAP_MSG_FILE] = "file",
	[CAP_MSG_PART] = "part",
	[CAP_MSG_FILE_FINISHED] = "file-finished",
	[CAP_MSG_FILE_ACCEPT] = "file-accept",
	[CAP_MSG_FILE_REJECT] = "file-reject",
	[CAP_MSG_FILE_OK] = "file-ok",
	[CAP_MSG_FILE_ERROR] = "file-error",
};

/* bit 0: to client, bit 1: to server */
static const unsigned char msg_dirs[CAP_MSG_TYPE_MAX] = {
	[CAP_MSG_CONNECT] = 3,		 [CAP_MSG_RECONNECT] = 2,
	[CAP_MSG_OPTION] = 1,		 [CAP_MSG_FILE_EXCLUSION] = 1,
	[CAP_MSG_PROCESS_EXCLUSION] = 1, [CAP_MSG_REGISTRY_EXCLUSION] = 1,
	[CAP_MSG_VISIT_EVENT] = 3,	 [CAP_MSG_SYSTEM_EVENT] = 2,
	[CAP_MSG_PING] = 1,		 [CAP_MSG_PONG] = 2,
	[CAP_MSG_FILE] = 2,		 [CAP_MSG_PART] = 2,
	[CAP_MSG_FILE_FINISHED] = 2,	 [CAP_MSG_FILE_ACCEPT] = 1,
	[CAP_MSG_FILE_REJECT] = 1,	 [CAP_MSG_FILE_OK] = 1,
	[CAP_MSG_FILE_ERROR] = 1,
};

const char *cap_msg_type_name(enum cap_msg_type t)
{
	if ((unsigned)t >= CAP_MSG_TYPE_MAX)
		return NULL;
	return msg_names[t];
}

bool cap_msg_allowed(enum cap_msg_type t, enum cap_dir dir)
{
	if ((unsigned)t >= CAP_MSG_TYPE_MAX)
		return false;
	return msg_dirs[t] & (dir == CAP_DIR_TO_CLIENT ? 1 : 2);
}

static const char *const visit_types[] = {NULL, "start", "finish", "error"};
static const char *const algorithms[] = {NULL, "seq", "dac", "bulk"};

/* --- time --- */

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* Reads 1..maxd decimal digits at *p into *v and moves *p. */
static bool read_num(const char **p, int maxd, int *v)
{
	int n = 0, x = 0;
	while (**p >= '0' && **p <= '9' && n < maxd) {
		x = x * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	if (n == 0 || (**p >= '0' && **p <= '9'))
		return false;
	*v = x;
	return true;
}

int cap_ptime_parse(const char *s, struct cap_ptime *ret)
{
	struct cap_ptime t;
	const char *p = s;

	if (!read_num(&p, 2, &t.day) || *p++ != '/' || !read_num(&p, 2, &t.month) ||
	    *p++ != '/' || !read_num(&p, 4, &t.year) || *p++ != ' ' || !read_num(&p, 2, &t.hour) ||
	    *p++ != ':' || !read_num(&p, 2, &t.min) || *p++ != ':' || !read_num(&p, 2, &t.sec) ||
	    *p++ != '.' || !read_num(&p, 3, &t.msec) || *p != '\0')
		return -EINVAL;
	if (t.year < 1970 || t.month < 1 || t.month > 12 || t.day < 1 ||
	    t.day > days_in_month(t.year, t.month) || t.hour > 23 || t.min > 59 || t.sec > 60)
		return -EINVAL;
	*ret = t;
	return 0;
}

int cap_ptime_format(const struct cap_ptime *t, char *buf, size_t size)
{
	return xsnprintf(buf, size, "%d/%d/%d %d:%d:%d.%d", t->day, t->month, t->year, t->hour,
			 t->min, t->sec, t->msec);
}

int cap_ptime_from_timespec(const struct timespec *ts, struct cap_ptime *ret)
{
	struct tm tm;
	time_t sec = ts->tv_sec;

	if (!localtime_r(&sec, &tm) || tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999)
		return -EINVAL;
	*ret = (struct cap_ptime){
		.year = tm.tm_year + 1900,
		.month = tm.tm_mon + 1,
		.day = tm.tm_mday,
		.hour = tm.tm_hour,
		.min = tm.tm_min,
		.sec = tm.tm_sec,
		.msec = (int)(ts->tv_nsec / 1000000),
	};
	return 0;
}

int cap_ptime_to_timespec(const struct cap_ptime *t, struct timespec *ret)
{
	struct tm tm = {
		.tm_year = t->year - 1900,
		.tm_mon = t->month - 1,
		.tm_mday = t->day,
		.tm_hour = t->hour,
		.tm_min = t->min,
		.tm_sec = t->sec,
		.tm_isdst = -1,
	};
	time_t s = mktime(&tm);
	if (s == (time_t)-1 || t->msec < 0 || t->msec > 999)
		return -EINVAL;
	ret->tv_sec = s;
	ret->tv_nsec = (long)t->msec * 1000000L;
	return 0;
}

/* --- encoder --- */

static int put_attr(struct cap_buf *b, const char *name, const char *value)
{
	int r = cap_buf_printf(b, " %s=\"", name);
	if (r == 0)
		r = cap_xml_escape_append(b, value);
	if (r == 0)
		r = cap_buf_append(b, "\"", 1);
	return r;
}

static int put_attr_fmt(struct cap_buf *b, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int put_attr_fmt(struct cap_buf *b, const char *name, const char *fmt, ...)
{
	char v[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(v))
		return -EINVAL;
	return put_attr(b, name, v);
}

static int put_ptime(struct cap_buf *b, const char *name, const struct cap_ptime *t)
{
	char v[CAP_PTIME_STRLEN];
	if (cap_ptime_format(t, v, sizeof(v)) < 0)
		return -EINVAL;
	return put_attr(b, name, v);
}

/* Puts the attribute if value is non-NULL; -EINVAL if required and NULL. */
static int put_opt(struct cap_buf *b, const char *name, const char *value, bool required)
{
	if (!value)
		return required ? -EINVAL : 0;
	return put_attr(b, name, value);
}

static int enc_item(struct cap_buf *b, const struct cap_visit_item *it, enum cap_dir dir)
{
	if (it->has_malicious && dir == CAP_DIR_TO_CLIENT)
		return -EINVAL; /* the extension travels client -> server only */
	/* To a client: the url form-encoded as the original server sent it
	 * (an original client decodes it; so does ours).  To a server: the url
	 * exactly as it arrived; processId and the error codes always (0 when
	 * unknown), as the original client sent them: HSN Capture-HPC NG's
	 * server fails on an item without them. */
	bool to_server = dir == CAP_DIR_TO_SERVER;
	_cleanup_free_ char *form = NULL;
	int r = 0;
	if (!it->url)
		return -EINVAL;
	if (!to_server)
		r = cap_url_form_encode(it->url, &form);
	if (r == 0)
		r = cap_buf_puts(b, "<item");
	if (r == 0)
		r = put_opt(b, "id", it->id, false);
	if (r == 0)
		r = put_attr(b, "url", form ? form : it->url_wire ? it->url_wire : it->url);
	if (r == 0 && (it->has_pid || to_server))
		r = put_attr_fmt(b, "processId", "%ld", it->has_pid ? (long)it->pid : 0L);
	if (r == 0)
		r = put_opt(b, "program", it->program, false);
	if (r == 0 && (it->has_errors || to_server))
		r = put_attr_fmt(b, "major-error-code", "%" PRIu32, it->major_error);
	if (r == 0 && (it->has_errors || to_server))
		r = put_attr_fmt(b, "minor-error-code", "%" PRIu32, it->minor_error);
	if (r == 0 && it->has_time)
		r = put_ptime(b, "time", &it->time);
	if (r == 0 && it->has_visited)
		r = put_attr(b, "visited", it->visited ? "1" : "0");
	if (r == 0 && it->has_malicious)
		r = put_attr(b, "malicious", it->malicious ? "1" : "0");
	if (r == 0)
		r = cap_buf_puts(b, "/>");
	return r;
}

static int enc_visit(struct cap_buf *b, const struct cap_msg_visit *v, enum cap_dir dir)
{
	int r = put_opt(b, "identifier", v->identifier, true);
	if (r == 0)
		r = put_opt(b, "program", v->program, dir == CAP_DIR_TO_CLIENT);
	if (r < 0)
		return r;
	if (v->n_items > CAP_PROTO_ITEMS_MAX || (v->n_items > 0 && !v->items))
		return -EINVAL;
	if (dir == CAP_DIR_TO_CLIENT) {
		if (v->type != CAP_VISIT_GROUP || (unsigned)v->algorithm > CAP_ALG_BULK)
			return -EINVAL;
		r = put_attr_fmt(b, "time", "%u", v->visit_time);
		/* our extension: the mode the server classifies the group with */
		if (r == 0 && v->algorithm != CAP_ALG_NONE)
			r = put_attr(b, "algorithm", algorithms[v->algorithm]);
	} else {
		if (v->type == CAP_VISIT_GROUP || (unsigned)v->type > CAP_VISIT_ERROR ||
		    (unsigned)v->algorithm > CAP_ALG_BULK)
			return -EINVAL;
		if (v->has_time)
			r = put_ptime(b, "time", &v->time);
		if (r == 0 && v->algorithm != CAP_ALG_NONE)
			r = put_attr(b, "algorithm", algorithms[v->algorithm]);
		if (r == 0)
			r = put_attr(b, "type", visit_types[v->type]);
		if (r == 0)
			r = put_attr(b, "malicious", v->malicious ? "1" : "0");
		if (r == 0 && v->has_error_code)
			r = put_attr_fmt(b, "error-code", "%" PRIu32, v->error_code);
		if (r == 0 && v->unattributed > 0)
			r = put_attr_fmt(b, "unattributed", "%" PRIu32, v->unattributed);
	}
	if (r < 0)
		return r;
	if (v->n_items == 0)
		return cap_buf_puts(b, "/>");
	r = cap_buf_puts(b, ">");
	for (size_t i = 0; i < v->n_items && r == 0; i++)
		r = enc_item(b, &v->items[i], dir);
	if (r == 0)
		r = cap_buf_puts(b, "</visit-event>");
	return r;
}

static int enc_system(struct cap_buf *b, const struct cap_msg_system *s)
{
	const char *tn = cap_event_type_name(s->ev.type);
	int r;

	if (!tn)
		return -EINVAL;
	r = put_ptime(b, "time", &s->time);
	if (r == 0)
		r = put_attr(b, "type", tn);
	if (r == 0)
		r = put_attr_fmt(b, "processId", "%ld", (long)s->ev.pid);
	if (r == 0)
		r = put_attr(b, "process", s->ev.process);
	if (r == 0)
		r = put_attr(b, "action", s->ev.action);
	if (r == 0)
		r = put_attr(b, "object1", s->ev.object1);
	if (r == 0)
		r = put_attr(b, "object2", s->ev.object2);
	/* Our extension (docs/protocol.md): the command line of the process a
	 * process event is about; an original server ignores the attribute. */
	if (r == 0 && s->ev.type == CAP_EV_PROCESS && s->ev.cmdline[0] != '\0')
		r = put_attr(b, "command-line", s->ev.cmdline);
	if (r == 0)
		r = cap_buf_puts(b, "/>");
	return r;
}

static int enc_part(struct cap_buf *b, const struct cap_msg_part *p)
{
	_cleanup_free_ char *text = NULL;
	int r;

	if (p->data_len > CAP_PROTO_PART_MAX || (p->data_len > 0 && !p->data))
		return -EINVAL;
	r = cap_base64_encode(p->data ? (const void *)p->data : "", p->data_len, &text, NULL);
	if (r == 0)
		r = put_opt(b, "name", p->name, true);
	if (r == 0)
		r = put_attr_fmt(b, "part-start", "%" PRIu64, p->start);
	if (r == 0)
		r = put_attr_fmt(b, "part-end", "%" PRIu64, p->end);
	if (r == 0)
		r = put_attr(b, "encoding", "base64");
	if (r == 0)
		r = cap_buf_printf(b, ">%s</part>", text);
	return r;
}

static int enc_file(struct cap_buf *b, const struct cap_msg_file *f)
{
	int r = put_opt(b, "name", f->name, true);
	if (r == 0 && f->has_size)
		r = put_attr_fmt(b, "size", "%" PRIu64, f->size);
	if (r == 0)
		r = put_opt(b, "type", f->type, false);
	if (r == 0)
		r = cap_buf_puts(b, "/>");
	return r;
}

static int enc_body(struct cap_buf *b, const struct cap_msg *m, enum cap_dir dir)
{
	int r;

	switch (m->type) {
	case CAP_MSG_CONNECT:
	case CAP_MSG_RECONNECT:
		if (dir == CAP_DIR_TO_CLIENT)
			r = put_opt(b, "server", m->connect.server, true);
		else {
			r = put_opt(b, "vm-server-id", m->connect.vm_server_id, true);
			if (r == 0)
				r = put_opt(b, "vm-id", m->connect.vm_id, true);
		}
		return r < 0 ? r : cap_buf_puts(b, "/>");
	case CAP_MSG_OPTION:
		r = put_opt(b, "name", m->option.name, true);
		if (r == 0)
			r = put_opt(b, "value", m->option.value, true);
		return r < 0 ? r : cap_buf_puts(b, "/>");
	case CAP_MSG_FILE_EXCLUSION:
	case CAP_MSG_PROCESS_EXCLUSION:
	case CAP_MSG_REGISTRY_EXCLUSION:
		r = put_attr(b, "excluded", m->exclusion.excluded ? "+" : "-");
		if (r == 0)
			r = put_opt(b, "action", m->exclusion.action, true);
		if (r == 0)
			r = put_opt(b, "subject", m->exclusion.subject, true);
		if (r == 0)
			r = put_opt(b, "object", m->exclusion.object, true);
		return r < 0 ? r : cap_buf_puts(b, "/>");
	case CAP_MSG_VISIT_EVENT:
		return enc_visit(b, &m->visit, dir);
	case CAP_MSG_SYSTEM_EVENT:
		return enc_system(b, &m->system);
	case CAP_MSG_PART:
		return enc_part(b, &m->part);
	case CAP_MSG_PING:
	case CAP_MSG_PONG:
		return cap_buf_puts(b, "/>");
	default:
		return enc_file(b, &m->file);
	}
}

static int msg_encode(const struct cap_msg *m, enum cap_dir dir, char **ret, size_t *ret_len)
{
	struct cap_buf b = {.max = 4 * CAP_FRAME_DEFAULT_MAX};
	int r;

	if (!cap_msg_allowed(m->type, dir))
		return -EINVAL;
	r = cap_buf_printf(&b, "<%s", msg_names[m->type]);
	if (r == 0)
		r = enc_body(&b, m, dir);
	if (r == 0)
		r = dir == CAP_DIR_TO_CLIENT ? cap_buf_append(&b, "", 1) : cap_buf_puts(&b, "\r\n");
	if (r < 0) {
		cap_buf_done(&b);
		return r;
	}
	size_t len;
	char *out = cap_buf_steal(&b, &len);
	if (!out)
		return -ENOMEM;
	*ret = out;
	if (ret_len)
		*ret_len = len;
	return 0;
}

int cap_msg_encode_to_client(const struct cap_msg *m, char **ret, size_t *ret_len)
{
	return msg_encode(m, CAP_DIR_TO_CLIENT, ret, ret_len);
}

int cap_msg_encode_to_server(const struct cap_msg *m, char **ret, size_t *ret_len)
{
	return msg_encode(m, CAP_DIR_TO_SERVER, ret, ret_len);
}

/* --- system-event <-> cap_event --- */

int cap_msg_system_from_event(const struct cap_event *ev, struct cap_msg *ret)
{
	struct cap_ptime t;
	int r;

	if (!cap_event_type_name(ev->type))
		return -EINVAL;
	r = cap_ptime_from_timespec(&ev->time, &t);
	if (r < 0)
		return r;
	memset(ret, 0, sizeof(*ret));
	ret->type = CAP_MSG_SYSTEM_EVENT;
	ret->system.time = t;
	ret->system.ev = *ev;
	ret->system.ev.host_pid = 0;
	ret->system.ev.cgroup_id = 0;
	return 0;
}

int cap_msg_system_to_event(const struct cap_msg *m, struct cap_event *ret)
{
	struct timespec ts;
	int r;

	if (m->type != CAP_MSG_SYSTEM_EVENT)
		return -EINVAL;
	r = cap_ptime_to_timespec(&m->system.time, &ts);
	if (r < 0)
		return r;
	*ret = m->system.ev;
	ret->time = ts;
	ret->host_pid = 0;
	ret->cgroup_id = 0;
	return 0;
}

/* --- clear --- */

void cap_msg_clear(struct cap_msg *m)
{
	switch (m->type) {
	case CAP_MSG_CONNECT:
	case CAP_MSG_RECONNECT:
		free(m->connect.server);
		free(m->connect.vm_server_id);
		free(m->connect.vm_id);
		break;
	case CAP_MSG_OPTION:
		free(m->option.name);
		free(m->option.value);
		break;
	case CAP_MSG_FILE_EXCLUSION:
	case CAP_MSG_PROCESS_EXCLUSION:
	case CAP_MSG_REGISTRY_EXCLUSION:
		free(m->exclusion.action);
		free(m->exclusion.subject);
		free(m->exclusion.object);
		break;
	case CAP_MSG_VISIT_EVENT:
		for (size_t i = 0; i < m->visit.n_items && m->visit.items; i++) {
			free(m->visit.items[i].id);
			free(m->visit.items[i].url);
			free(m->visit.items[i].url_wire);
			free(m->visit.items[i].program);
		}
		free(m->visit.items);
		free(m->visit.identifier);
		free(m->visit.program);
		break;
	case CAP_MSG_PART:
		free(m->part.name);
		free(m->part.data);
		break;
	case CAP_MSG_FILE:
	case CAP_MSG_FILE_FINISHED:
	case CAP_MSG_FILE_ACCEPT:
	case CAP_MSG_FILE_REJECT:
	case CAP_MSG_FILE_OK:
	case CAP_MSG_FILE_ERROR:
		free(m->file.name);
		free(m->file.type);
		break;
	default:
		break;
	}
	memset(m, 0, sizeof(*m));
}

/* --- decoder --- */

struct dctx {
	char *err;
	size_t errlen;
	enum cap_dir dir; /* direction the message travelled */
};

static int bad(struct dctx *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct dctx *d, const char *fmt, ...)
{
	if (d->err && d->errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		(void)vsnprintf(d->err, d->errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

/* Copies attribute name of n into *ret (malloc'ed; NULL if absent and not
 * required).  Longer than max bytes is an error. */
static int get_str(struct dctx *d, xmlNode *n, const char *name, size_t max, bool required,
		   char **ret)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
	if (!v) {
		*ret = NULL;
		return required ? bad(d, "<%s>: missing %s", n->name, name) : 0;
	}
	size_t len = strlen((const char *)v);
	if (len > max) {
		xmlFree(v);
		return bad(d, "<%s>: %s longer than %zu bytes", n->name, name, max);
	}
	char *s = strdup((const char *)v);
	xmlFree(v);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

/* Like get_str into a fixed buffer of size max + 1. */
static int get_fixed(struct dctx *d, xmlNode *n, const char *name, char *buf, size_t size,
		     bool required)
{
	_cleanup_free_ char *s = NULL;
	int r = get_str(d, n, name, size - 1, required, &s);
	if (r < 0)
		return r;
	cap_strlcpy(buf, s ? s : "", size);
	return 0;
}

static bool token_valid(const char *s, bool allow_minus_first)
{
	size_t n = strlen(s);
	if (n == 0 || n > CAP_PROTO_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '+' || (c == '-' && (i > 0 || allow_minus_first))))
			return false;
	}
	return true;
}

/* A bounded token ([A-Za-z0-9._+-], 1..64). */
static int get_token(struct dctx *d, xmlNode *n, const char *name, bool required, char **ret)
{
	char *s = NULL;
	int r = get_str(d, n, name, CAP_PROTO_NAME_MAX, required, &s);
	if (r < 0)
		return r;
	if (s && !token_valid(s, true)) {
		free(s);
		return bad(d, "<%s>: bad %s", n->name, name);
	}
	*ret = s;
	return 0;
}

/* Strict unsigned decimal (or 0x hex when hex_ok) up to max. 1 found, 0 absent. */
static int get_u64(struct dctx *d, xmlNode *n, const char *name, uint64_t max, bool required,
		   bool hex_ok, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	int r = get_str(d, n, name, 24, required, &s);
	if (r < 0)
		return r;
	if (!s)
		return 0;
	const char *p = s;
	unsigned base = 10;
	if (hex_ok && (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))) {
		base = 16;
		p += 2;
	}
	if (!*p)
		return bad(d, "<%s>: bad number in %s", n->name, name);
	uint64_t v = 0;
	for (; *p; p++) {
		int dg;
		if (*p >= '0' && *p <= '9')
			dg = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			dg = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			dg = *p - 'A' + 10;
		else
			return bad(d, "<%s>: bad number in %s", n->name, name);
		if (v > (UINT64_MAX - (uint64_t)dg) / base)
			return bad(d, "<%s>: %s out of range", n->name, name);
		v = v * base + (uint64_t)dg;
	}
	if (v > max)
		return bad(d, "<%s>: %s out of range", n->name, name);
	*ret = v;
	return 1;
}

/* A decimal Java int, possibly negative, kept as a string. */
static int get_int_str(struct dctx *d, xmlNode *n, const char *name, bool required, char **ret)
{
	char *s = NULL;
	int r = get_str(d, n, name, 11, required, &s);
	if (r < 0 || !s) {
		*ret = NULL;
		return r;
	}
	const char *p = s + (s[0] == '-');
	bool ok = *p != '\0';
	for (; *p && ok; p++)
		ok = *p >= '0' && *p <= '9';
	if (ok) {
		long long v = strtoll(s, NULL, 10);
		ok = v >= INT32_MIN && v <= INT32_MAX;
	}
	if (!ok) {
		free(s);
		return bad(d, "<%s>: %s is not a 32-bit integer", n->name, name);
	}
	*ret = s;
	return 0;
}

static int get_ptime(struct dctx *d, xmlNode *n, const char *name, bool required,
		     struct cap_ptime *ret, bool *found)
{
	_cleanup_free_ char *s = NULL;
	int r = get_str(d, n, name, CAP_PTIME_STRLEN, required, &s);
	if (r < 0)
		return r;
	*found = s != NULL;
	if (s && cap_ptime_parse(s, ret) < 0)
		return bad(d, "<%s>: %s is not d/M/yyyy H:m:s.ms", n->name, name);
	return 0;
}

/* "0"/"1" (also "true"/"false"). 1 found, 0 absent. */
static int get_bool(struct dctx *d, xmlNode *n, const char *name, bool *ret)
{
	_cleanup_free_ char *s = NULL;
	int r = get_str(d, n, name, 8, false, &s);
	if (r < 0 || !s)
		return r;
	if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0)
		*ret = true;
	else if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0)
		*ret = false;
	else
		return bad(d, "<%s>: %s must be 0 or 1", n->name, name);
	return 1;
}

static int get_enum(struct dctx *d, xmlNode *n, const char *name, const char *const *names,
		    size_t count, bool required, int *ret)
{
	_cleanup_free_ char *s = NULL;
	int r = get_str(d, n, name, CAP_PROTO_NAME_MAX, required, &s);
	if (r < 0 || !s)
		return r;
	for (size_t i = 0; i < count; i++)
		if (names[i] && strcmp(names[i], s) == 0) {
			*ret = (int)i;
			return 1;
		}
	return bad(d, "<%s>: unknown %s", n->name, name);
}

/* Elements other than visit-event and part carry no content. */
static int no_children(struct dctx *d, xmlNode *n)
{
	for (xmlNode *c = n->children; c; c = c->next) {
		if (c->type == XML_TEXT_NODE && xmlIsBlankNode(c))
			continue;
		return bad(d, "<%s>: unexpected content", n->name);
	}
	return 0;
}

/* vm-server-id / vm-id: required, as the clients send them (proto.h). */
static int get_vm_id(struct dctx *d, xmlNode *n, const char *name, char **ret)
{
	char *s = NULL;
	int r = get_str(d, n, name, CAP_PROTO_NAME_MAX, true, &s);
	if (r < 0)
		return r;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._:@-", *p))) {
			free(s);
			return bad(d, "<%s>: %s has a character other than [A-Za-z0-9._:@-]", n->name,
			           name);
		}
	*ret = s;
	return 0;
}

static int dec_connect(struct dctx *d, xmlNode *n, struct cap_msg_connect *c)
{
	int r;

	if (d->dir == CAP_DIR_TO_CLIENT) {
		r = get_token(d, n, "server", true, &c->server);
	} else {
		r = get_vm_id(d, n, "vm-server-id", &c->vm_server_id);
		if (r == 0)
			r = get_vm_id(d, n, "vm-id", &c->vm_id);
	}
	return r;
}

static int dec_option(struct dctx *d, xmlNode *n, struct cap_msg_option *o)
{
	int r = get_token(d, n, "name", true, &o->name);
	if (r == 0)
		r = get_str(d, n, "value", CAP_PROTO_STR_MAX, true, &o->value);
	return r;
}

static int dec_exclusion(struct dctx *d, xmlNode *n, struct cap_msg_exclusion *e)
{
	_cleanup_free_ char *ex = NULL;
	int r = get_str(d, n, "excluded", 1, true, &ex);
	if (r < 0)
		return r;
	if (strcmp(ex, "+") != 0 && strcmp(ex, "-") != 0)
		return bad(d, "<%s>: excluded must be + or -", n->name);
	e->excluded = ex[0] == '+';
	r = get_str(d, n, "action", CAP_PROTO_STR_MAX, true, &e->action);
	if (r == 0)
		r = get_str(d, n, "subject", CAP_PROTO_PATH_MAX, true, &e->subject);
	if (r == 0)
		r = get_str(d, n, "object", CAP_PROTO_PATH_MAX, true, &e->object);
	return r;
}

/* URL as sent: plain, or URL-encoded as a whole by Java's URLEncoder
 * ("http%3A%2F%2F..."), which is decoded here. */
/* The url of an item: a value that starts with letters and "%3A" (Java's
 * URLEncoder, as the original server sends it) is form-decoded once and
 * *ret_wire keeps it as it arrived; anything else is taken as it is. */
static int get_url(struct dctx *d, xmlNode *n, char **ret, char **ret_wire)
{
	_cleanup_free_ char *s = NULL;
	int r = get_str(d, n, "url", 3 * CAP_PROTO_URL_MAX, true, &s);
	if (r < 0)
		return r;
	size_t k = 0;
	while ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z'))
		k++;
	char *plain = NULL;
	if (k > 0 && strncasecmp(s + k, "%3A", 3) == 0) {
		r = cap_url_unescape(s, true, &plain);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return bad(d, "<item>: bad %%-escape in url");
	}
	const char *url = plain ? plain : s;
	if (!*url || strlen(url) > CAP_PROTO_URL_MAX) {
		free(plain);
		return bad(d, "<item>: url empty or longer than %d bytes", CAP_PROTO_URL_MAX);
	}
	if (plain) {
		*ret = plain;
		*ret_wire = TAKE_PTR(s);
	} else {
		*ret = TAKE_PTR(s);
		*ret_wire = NULL;
	}
	return 0;
}

static int dec_item(struct dctx *d, xmlNode *n, struct cap_visit_item *it)
{
	uint64_t v = 0;
	int r;

	if (!xmlStrEqual(n->name, (const xmlChar *)"item"))
		return bad(d, "<visit-event>: unexpected child <%.32s>", (const char *)n->name);
	r = no_children(d, n);
	if (r == 0)
		r = get_str(d, n, "id", CAP_PROTO_NAME_MAX, false, &it->id);
	if (r == 0)
		r = get_url(d, n, &it->url, &it->url_wire);
	if (r == 0)
		r = get_token(d, n, "program", false, &it->program);
	if (r == 0 && (r = get_u64(d, n, "processId", INT32_MAX, false, false, &v)) == 1) {
		it->has_pid = true;
		it->pid = (pid_t)v;
		r = 0;
	}
	if (r == 0 && (r = get_u64(d, n, "major-error-code", UINT32_MAX, false, true, &v)) == 1) {
		it->has_errors = true;
		it->major_error = (uint32_t)v;
		r = 0;
	}
	if (r == 0 && (r = get_u64(d, n, "minor-error-code", UINT32_MAX, false, true, &v)) == 1) {
		it->has_errors = true;
		it->minor_error = (uint32_t)v;
		r = 0;
	}
	if (r == 0)
		r = get_ptime(d, n, "time", false, &it->time, &it->has_time);
	if (r == 0 && (r = get_bool(d, n, "visited", &it->visited)) == 1) {
		it->has_visited = true;
		r = 0;
	}
	/* our extension, client -> server only (a server's item has none) */
	if (r == 0 && d->dir == CAP_DIR_TO_SERVER &&
	    (r = get_bool(d, n, "malicious", &it->malicious)) == 1) {
		it->has_malicious = true;
		r = 0;
	}
	return r;
}

static int dec_visit_attrs(struct dctx *d, xmlNode *n, struct cap_msg_visit *v)
{
	uint64_t u = 0;
	int e = 0, r;

	r = get_int_str(d, n, "identifier", true, &v->identifier);
	if (r == 0)
		r = get_token(d, n, "program", d->dir == CAP_DIR_TO_CLIENT, &v->program);
	if (r < 0)
		return r;
	if (d->dir == CAP_DIR_TO_CLIENT) {
		r = get_u64(d, n, "time", 86400, true, false, &u);
		v->visit_time = (unsigned)u;
		/* our extension (absent from an original server) */
		if (r >= 0 && (r = get_enum(d, n, "algorithm", algorithms, ELEMENTSOF(algorithms),
					    false, &e)) == 1)
			v->algorithm = (enum cap_algorithm)e;
		return r < 0 ? r : 0;
	}
	r = get_ptime(d, n, "time", false, &v->time, &v->has_time);
	if (r == 0 && (r = get_enum(d, n, "algorithm", algorithms, ELEMENTSOF(algorithms), false,
				    &e)) == 1) {
		v->algorithm = (enum cap_algorithm)e;
		r = 0;
	}
	if (r == 0 &&
	    (r = get_enum(d, n, "type", visit_types, ELEMENTSOF(visit_types), true, &e)) == 1) {
		v->type = (enum cap_visit_type)e;
		r = 0;
	}
	if (r == 0 && (r = get_bool(d, n, "malicious", &v->malicious)) == 1)
		r = 0;
	if (r == 0 && (r = get_u64(d, n, "error-code", UINT32_MAX, false, true, &u)) == 1) {
		v->has_error_code = true;
		v->error_code = (uint32_t)u;
		r = 0;
	}
	if (r == 0 && (r = get_u64(d, n, "unattributed", UINT32_MAX, false, false, &u)) == 1) {
		v->unattributed = (uint32_t)u;
		r = 0;
	}
	return r;
}

static int dec_visit(struct dctx *d, xmlNode *n, struct cap_msg_visit *v)
{
	size_t count = 0;
	int r = dec_visit_attrs(d, n, v);
	if (r < 0)
		return r;
	for (xmlNode *c = n->children; c; c = c->next) {
		if (c->type == XML_ELEMENT_NODE)
			count++;
		else if (!(c->type == XML_TEXT_NODE && xmlIsBlankNode(c)))
			return bad(d, "<visit-event>: unexpected content");
	}
	if (count > CAP_PROTO_ITEMS_MAX)
		return bad(d, "<visit-event>: more than %d items", CAP_PROTO_ITEMS_MAX);
	if (count == 0 && d->dir == CAP_DIR_TO_CLIENT)
		return bad(d, "<visit-event>: no items");
	if (count == 0)
		return 0;
	v->items = calloc(count, sizeof(*v->items));
	if (!v->items)
		return -ENOMEM;
	for (xmlNode *c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		/* count items as they are filled so that clear frees exactly them */
		v->n_items++;
		r = dec_item(d, c, &v->items[v->n_items - 1]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int dec_system(struct dctx *d, xmlNode *n, struct cap_msg_system *s)
{
	_cleanup_free_ char *type = NULL;
	uint64_t pid = 0;
	bool found;
	int r;

	r = get_ptime(d, n, "time", true, &s->time, &found);
	if (r == 0)
		r = get_str(d, n, "type", CAP_PROTO_NAME_MAX, true, &type);
	if (r < 0)
		return r;
	if (cap_event_type_from_name(type, &s->ev.type) < 0)
		return bad(d, "<system-event>: unknown type");
	r = get_u64(d, n, "processId", INT32_MAX, true, false, &pid);
	if (r < 0)
		return r;
	s->ev.pid = (pid_t)pid;
	r = get_fixed(d, n, "process", s->ev.process, sizeof(s->ev.process), true);
	if (r == 0)
		r = get_fixed(d, n, "action", s->ev.action, sizeof(s->ev.action), true);
	if (r == 0)
		r = get_fixed(d, n, "object1", s->ev.object1, sizeof(s->ev.object1), true);
	if (r == 0)
		r = get_fixed(d, n, "object2", s->ev.object2, sizeof(s->ev.object2), false);
	/* our extension, on process events only (elsewhere it is ignored like
	 * any unknown attribute) */
	if (r == 0 && s->ev.type == CAP_EV_PROCESS)
		r = get_fixed(d, n, "command-line", s->ev.cmdline, sizeof(s->ev.cmdline), false);
	if (r == 0 && s->ev.action[0] == '\0')
		return bad(d, "<system-event>: empty action");
	if (r == 0)
		(void)cap_ptime_to_timespec(&s->time, &s->ev.time);
	return r;
}

static int dec_file(struct dctx *d, xmlNode *n, struct cap_msg_file *f)
{
	int r = get_str(d, n, "name", CAP_PROTO_PATH_MAX, true, &f->name);
	if (r == 0 && (r = get_u64(d, n, "size", UINT64_MAX, false, false, &f->size)) == 1) {
		f->has_size = true;
		r = 0;
	}
	if (r == 0)
		r = get_token(d, n, "type", false, &f->type);
	return r;
}

static int dec_part(struct dctx *d, xmlNode *n, struct cap_msg_part *p)
{
	_cleanup_free_ char *enc = NULL;
	int r = get_str(d, n, "name", CAP_PROTO_PATH_MAX, true, &p->name);
	if (r == 0)
		r = get_u64(d, n, "part-start", UINT64_MAX, true, false, &p->start);
	if (r > 0)
		r = get_u64(d, n, "part-end", UINT64_MAX, true, false, &p->end);
	if (r > 0)
		r = get_str(d, n, "encoding", CAP_PROTO_NAME_MAX, true, &enc);
	if (r < 0)
		return r;
	if (strcmp(enc, "base64") != 0)
		return bad(d, "<part>: encoding must be base64");
	for (xmlNode *c = n->children; c; c = c->next)
		if (c->type != XML_TEXT_NODE)
			return bad(d, "<part>: unexpected content");
	xmlChar *text = xmlNodeGetContent(n);
	if (!text)
		return -ENOMEM;
	r = cap_base64_decode((const char *)text, strlen((const char *)text), CAP_PROTO_PART_MAX,
			      &p->data, &p->data_len);
	xmlFree(text);
	if (r == -ENOMEM)
		return r;
	if (r == -EMSGSIZE)
		return bad(d, "<part>: more than %d bytes", CAP_PROTO_PART_MAX);
	if (r < 0)
		return bad(d, "<part>: bad base64");
	return 0;
}

static int dec_body(struct dctx *d, xmlNode *root, struct cap_msg *m)
{
	int r = 0;

	if (m->type != CAP_MSG_VISIT_EVENT && m->type != CAP_MSG_PART) {
		r = no_children(d, root);
		if (r < 0)
			return r;
	}
	switch (m->type) {
	case CAP_MSG_CONNECT:
	case CAP_MSG_RECONNECT:
		return dec_connect(d, root, &m->connect);
	case CAP_MSG_OPTION:
		return dec_option(d, root, &m->option);
	case CAP_MSG_FILE_EXCLUSION:
	case CAP_MSG_PROCESS_EXCLUSION:
	case CAP_MSG_REGISTRY_EXCLUSION:
		return dec_exclusion(d, root, &m->exclusion);
	case CAP_MSG_VISIT_EVENT:
		return dec_visit(d, root, &m->visit);
	case CAP_MSG_SYSTEM_EVENT:
		return dec_system(d, root, &m->system);
	case CAP_MSG_PART:
		return dec_part(d, root, &m->part);
	case CAP_MSG_PING:
	case CAP_MSG_PONG:
		return 0;
	default:
		return dec_file(d, root, &m->file);
	}
}

void cap_proto_init(void)
{
	xmlInitParser();
}

static void free_docp(xmlDoc **doc)
{
	if (*doc)
		xmlFreeDoc(*doc);
}

/* Is the '&' at p (before end) the start of a character or entity
 * reference ("&name;", "&#123;", "&#x1F;")? */
static bool is_reference(const char *p, const char *end)
{
	const char *q = p + 1;
	size_t n = 0;
	if (q < end && *q == '#')
		q++;
	for (; q < end && n < 32; q++, n++) {
		char c = *q;
		if (c == ';')
			return n > 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return false;
}

/* One linear pass before the parser: counts the attributes of every tag
 * (libxml2's duplicate check is quadratic in their number: 100,000 of them
 * in one message took 13-16 s) and escapes what the original's
 * Element::toString and server leave unescaped inside attribute values: a
 * '&' that starts no reference, and '<'.  With out NULL it only counts;
 * returns the number of bytes the repaired text needs, or -EBADMSG. */
static ssize_t scan_tags(struct dctx *d, const char *data, size_t len, char *out)
{
	enum { TEXT, TAG, VALUE } st = TEXT;
	char quote = 0;
	unsigned attrs = 0;
	size_t o = 0;
	const char *end = data + len;
	for (const char *p = data; p < end; p++) {
		const char *rep = NULL;
		char c = *p;
		if (st == TEXT && c == '<') {
			st = TAG;
			attrs = 0;
		} else if (st == TAG && (c == '"' || c == '\'')) {
			st = VALUE;
			quote = c;
		} else if (st == TAG && c == '=' && ++attrs > CAP_PROTO_ATTRS_MAX) {
			return bad(d, "more than %d attributes in an element", CAP_PROTO_ATTRS_MAX);
		} else if (st == TAG && c == '>') {
			st = TEXT;
		} else if (st == VALUE && c == quote) {
			st = TAG;
		} else if (st == VALUE && c == '&' && !is_reference(p, end)) {
			rep = "&amp;";
		} else if (st == VALUE && c == '<') {
			rep = "&lt;";
		}
		size_t n = rep ? strlen(rep) : 1;
		if (out)
			memcpy(out + o, rep ? rep : p, n);
		o += n;
	}
	return (ssize_t)o;
}

static int msg_decode(const char *data, size_t len, enum cap_dir dir, struct cap_msg *ret,
		      char *err, size_t errlen)
{
	struct dctx d = {.err = err, .errlen = errlen, .dir = dir};
	_cleanup_(free_docp) xmlDoc *doc = NULL;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (len == 0)
		return bad(&d, "empty message");
	if (len > INT32_MAX)
		return bad(&d, "message too long");
	if (memmem(data, len, "<!", 2))
		return bad(&d, "DOCTYPE, comments and CDATA are not allowed");
	if (memchr(data, '\0', len))
		return bad(&d, "NUL byte in message");
	ssize_t need = scan_tags(&d, data, len, NULL);
	if (need < 0)
		return (int)need;
	_cleanup_free_ char *fixed = NULL;
	if ((size_t)need != len) {
		if ((size_t)need > INT32_MAX || !(fixed = malloc((size_t)need)))
			return -ENOMEM;
		(void)scan_tags(&d, data, len, fixed);
		data = fixed;
		len = (size_t)need;
	}
	xmlParserCtxt *ctxt = xmlNewParserCtxt();
	if (!ctxt)
		return -ENOMEM;
	doc = xmlCtxtReadMemory(ctxt, data, (int)len, NULL, "UTF-8",
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		r = bad(&d, "malformed XML: %.80s", e && e->message ? e->message : "?");
		/* strip libxml2's trailing newline */
		if (err && errlen && strlen(err) > 0 && err[strlen(err) - 1] == '\n')
			err[strlen(err) - 1] = '\0';
		xmlFreeParserCtxt(ctxt);
		return r;
	}
	xmlFreeParserCtxt(ctxt);
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!root || doc->intSubset || doc->extSubset)
		return bad(&d, "no element or DOCTYPE present");
	if (root->ns || root->nsDef)
		return bad(&d, "namespaces are not used");

	struct cap_msg m = {0};
	m.type = CAP_MSG_TYPE_MAX;
	for (int t = 0; t < CAP_MSG_TYPE_MAX; t++)
		if (xmlStrEqual(root->name, (const xmlChar *)msg_names[t]))
			m.type = (enum cap_msg_type)t;
	if (m.type == CAP_MSG_TYPE_MAX)
		return bad(&d, "unknown element <%.32s>", (const char *)root->name);
	if (!cap_msg_allowed(m.type, dir))
		return bad(&d, "<%s> not allowed %s", msg_names[m.type],
			   dir == CAP_DIR_TO_CLIENT ? "from the server" : "from a client");
	r = dec_body(&d, root, &m);
	if (r < 0) {
		cap_msg_clear(&m);
		return r;
	}
	memcpy(ret, &m, sizeof(m));
	return 0;
}

int cap_msg_decode_from_client(const char *data, size_t len, struct cap_msg *ret, char *err,
			       size_t errlen)
{
	return msg_decode(data, len, CAP_DIR_TO_SERVER, ret, err, errlen);
}

int cap_msg_decode_from_server(const char *data, size_t len, struct cap_msg *ret, char *err,
			       size_t errlen)
{
	return msg_decode(data, len, CAP_DIR_TO_CLIENT, ret, err, errlen);
}
