/* frame.c - bounded message framing and the byte buffer (see frame.h). */
#include "frame.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

void cap_framer_init(struct cap_framer *f, enum cap_frame_mode mode, size_t max)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->max = max ? max : CAP_FRAME_DEFAULT_MAX;
}

void cap_framer_done(struct cap_framer *f)
{
	free(f->buf);
	f->buf = NULL;
	f->start = f->scan = f->len = f->cap = 0;
	f->failed = false;
}

size_t cap_framer_pending(const struct cap_framer *f)
{
	return f->len - f->start;
}

/* Drops the consumed prefix so that the buffer never grows without bound. */
static void framer_compact(struct cap_framer *f)
{
	if (f->start == 0)
		return;
	memmove(f->buf, f->buf + f->start, f->len - f->start);
	f->len -= f->start;
	f->start = 0;
}

int cap_framer_feed(struct cap_framer *f, const void *data, size_t n)
{
	if (f->failed)
		return -EMSGSIZE;
	/* A terminator-less tail already beyond the limit can only fail. */
	if (f->len - f->start - f->scan == 0 && f->scan > f->max) {
		f->failed = true;
		return -EMSGSIZE;
	}
	framer_compact(f);
	if (n > SIZE_MAX - f->len - 1)
		return -ENOMEM;
	if (f->len + n + 1 > f->cap) {
		size_t ncap = f->cap ? f->cap : 4096;
		while (ncap < f->len + n + 1)
			ncap *= 2;
		char *nb = realloc(f->buf, ncap);
		if (!nb)
			return -ENOMEM;
		f->buf = nb;
		f->cap = ncap;
	}
	if (n)
		memcpy(f->buf + f->len, data, n);
	f->len += n;
	return 0;
}

static bool all_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

int cap_framer_next(struct cap_framer *f, const char **ret_msg, size_t *ret_len)
{
	char term = f->mode == CAP_FRAME_NUL ? '\0' : '\n';

	if (f->failed)
		return -EMSGSIZE;
	for (;;) {
		size_t avail = f->len - f->start;
		char *base = f->buf ? f->buf + f->start : NULL;
		char *p = avail > f->scan ? memchr(base + f->scan, term, avail - f->scan) : NULL;

		if (!p) {
			f->scan = avail;
			if (avail > f->max + 1) { /* +1: a '\r' before a line's '\n' */
				f->failed = true;
				return -EMSGSIZE;
			}
			return 0;
		}
		size_t n = (size_t)(p - base);
		*p = '\0';
		f->start += n + 1;
		f->scan = 0;
		/* trailing '\r' of CRLF, leading/trailing whitespace around a NUL
		 * message ("<ping/>\n\0") */
		while (n > 0 && (base[n - 1] == '\r' || base[n - 1] == '\n' || base[n - 1] == ' ' ||
				 base[n - 1] == '\t'))
			base[--n] = '\0';
		size_t lead = 0;
		while (lead < n && (base[lead] == '\n' || base[lead] == '\r' || base[lead] == ' ' ||
				    base[lead] == '\t'))
			lead++;
		if (n - lead > f->max) {
			f->failed = true;
			return -EMSGSIZE;
		}
		if (all_space(base + lead, n - lead))
			continue;
		*ret_msg = base + lead;
		*ret_len = n - lead;
		return 1;
	}
}

/* --- cap_buf --- */

static size_t buf_max(const struct cap_buf *b)
{
	return b->max ? b->max : (size_t)CAP_FRAME_DEFAULT_MAX * 4;
}

int cap_buf_append(struct cap_buf *b, const void *data, size_t n)
{
	size_t max = buf_max(b);

	if (b->len > max || n > max - b->len)
		return -EMSGSIZE;
	if (b->len + n + 1 > b->cap) {
		/* reclaim the sent prefix first */
		if (b->off > 0) {
			memmove(b->data, b->data + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
			b->data[b->len] = '\0';
		}
	}
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *nd = realloc(b->data, ncap);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cap_buf_puts(struct cap_buf *b, const char *s)
{
	return cap_buf_append(b, s, strlen(s));
}

int cap_buf_printf(struct cap_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return cap_buf_append(b, small, (size_t)n);
	if ((size_t)n > buf_max(b))
		return -EMSGSIZE;
	_cleanup_free_ char *big = malloc((size_t)n + 1);
	if (!big)
		return -ENOMEM;
	va_start(ap, fmt);
	(void)vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return cap_buf_append(b, big, (size_t)n);
}

size_t cap_buf_unsent(const struct cap_buf *b)
{
	return b->len - b->off;
}

int cap_buf_flush(struct cap_buf *b, int fd)
{
	while (b->off < b->len) {
		ssize_t w = write(fd, b->data + b->off, b->len - b->off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return negative_errno();
		}
		b->off += (size_t)w;
	}
	b->off = b->len = 0;
	if (b->data)
		b->data[0] = '\0';
	return 1;
}

char *cap_buf_steal(struct cap_buf *b, size_t *ret_len)
{
	char *d = b->data;
	size_t len = b->len;

	if (!d) {
		d = calloc(1, 1);
		if (!d)
			return NULL;
	} else if (b->off > 0) {
		memmove(d, d + b->off, b->len - b->off + 1);
		len -= b->off;
	}
	if (ret_len)
		*ret_len = len;
	b->data = NULL;
	b->len = b->cap = b->off = 0;
	return d;
}

void cap_buf_done(struct cap_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = b->off = 0;
}
