/* gvdb.c - bounded GVDB reader (see gvdb.h).
 *
 * Layout (all integers little-endian):
 *   header (24 bytes): "GVariant", u32 version (0), u32 options,
 *                      pointer root = { u32 start, u32 end }
 *   hash table at root: u32 bloom (low 27 bits: word count, high 5: shift),
 *                      u32 n_buckets, u32 bloom[], u32 buckets[],
 *                      then items of 24 bytes up to the table's end
 *   item: u32 hash, u32 parent (item index or 0xffffffff), u32 key_start,
 *         u16 key_size, u8 type ('v' value, 'L' list, 'H' table), u8 unused,
 *         pointer value (8 bytes)
 * An item's full key is its parent's full key followed by its own bytes.
 * A 'v' item's value is a serialised GVariant of type "v": the child's bytes,
 * a NUL, the child's type string.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvdb.h"

#define HDR_SIZE  24
#define ITEM_SIZE 24
#define NO_PARENT 0xffffffffu

struct sbuf {
	char *b;
	size_t len, cap; /* cap includes room for "...\0" */
	bool trunc;
};

static void sb_putn(struct sbuf *s, const char *p, size_t n)
{
	if (s->trunc)
		return;
	if (s->len + n + 4 > s->cap) {
		size_t room = s->cap > s->len + 4 ? s->cap - s->len - 4 : 0;
		memcpy(s->b + s->len, p, room);
		s->len += room;
		memcpy(s->b + s->len, "...", 4);
		s->trunc = true;
		return;
	}
	memcpy(s->b + s->len, p, n);
	s->len += n;
	s->b[s->len] = '\0';
}

static void sb_puts(struct sbuf *s, const char *p)
{
	sb_putn(s, p, strlen(p));
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Length of a valid UTF-8 sequence at p (max n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t l;
	uint32_t c;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		l = 2, c = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		l = 3, c = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		l = 4, c = p[0] & 0x07;
	else
		return 0;
	if (l > n)
		return 0;
	for (size_t i = 1; i < l; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((l == 2 && c < 0x80) || (l == 3 && c < 0x800) || (l == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return l;
}

/* A GVariant string literal: quoted as GLib does ('...' unless the string
 * holds a '), escapes for \ the quote and control characters;
 * invalid UTF-8 bytes as \xNN. */
static void put_string(struct sbuf *s, const unsigned char *p, size_t n)
{
	char q = '\'', tmp[16];
	if (memchr(p, '\'', n))
		q = '"';
	sb_putn(s, &q, 1);
	for (size_t i = 0; i < n && !s->trunc;) {
		unsigned char c = p[i];
		size_t l;
		const char *esc = NULL;
		switch (c) {
		case '\\':
			esc = "\\\\";
			break;
		case '\a':
			esc = "\\a";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\f':
			esc = "\\f";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\v':
			esc = "\\v";
			break;
		default:
			break;
		}
		if (esc) {
			sb_puts(s, esc);
			i++;
		} else if (c == (unsigned char)q) {
			tmp[0] = '\\', tmp[1] = q;
			sb_putn(s, tmp, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			(void)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			sb_puts(s, tmp);
			i++;
		} else if ((l = utf8_len(p + i, n - i)) > 0) {
			sb_putn(s, (const char *)p + i, l);
			i += l;
		} else {
			(void)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
			sb_puts(s, tmp);
			i++;
		}
	}
	sb_putn(s, &q, 1);
}

/* A serialised string (s, o, g): content then exactly one NUL at the end. */
static bool valid_cstring(const unsigned char *d, size_t size)
{
	return size >= 1 && d[size - 1] == '\0' && !memchr(d, '\0', size - 1);
}

static void put_double(struct sbuf *s, const unsigned char *d)
{
	char buf[64];
	double v;
	uint64_t bits = le64(d);
	size_t i;

	memcpy(&v, &bits, sizeof(v));
	(void)snprintf(buf, sizeof(buf) - 3, "%.17g", v); /* g_ascii_dtostr (C locale) */
	for (i = 0; buf[i]; i++)
		if (buf[i] == '.' || buf[i] == 'e' || buf[i] == 'n' || buf[i] == 'N')
			break;
	if (!buf[i])
		memcpy(buf + i, ".0", 3);
	sb_puts(s, buf);
}

/* "as": elements (NUL-terminated strings) then the framing offsets (one
 * end offset per element, of the width the container size needs). */
static bool put_string_array(struct sbuf *s, const unsigned char *d, size_t size)
{
	size_t os, last, n, start = 0;

	if (size == 0) {
		sb_puts(s, "@as []");
		return true;
	}
	os = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4; /* values are < 4 GiB here */
	if (size < os)
		return false;
	last = os == 1	 ? d[size - 1]
	       : os == 2 ? (size_t)(d[size - 2] | d[size - 1] << 8)
			 : (size_t)le32(d + size - 4);
	if (last > size || (size - last) % os != 0 || size - last == 0)
		return false;
	n = (size - last) / os;
	sb_putn(s, "[", 1);
	for (size_t i = 0; i < n && !s->trunc; i++) {
		const unsigned char *o = d + last + i * os;
		size_t end = os == 1   ? o[0]
			     : os == 2 ? (size_t)(o[0] | o[1] << 8)
				       : (size_t)le32(o);
		if (end < start || end > last || !valid_cstring(d + start, end - start))
			return false;
		if (i)
			sb_puts(s, ", ");
		put_string(s, d + start, end - start - 1);
		start = end;
	}
	sb_putn(s, "]", 1);
	return true;
}

void gvdb_format_value(const char *type, const unsigned char *d, size_t size, char *buf,
		       size_t buflen)
{
	struct sbuf s = {.b = buf, .cap = buflen};
	char tmp[96];
	bool ok = true;
	size_t want = 0;

	if (buflen < 8) {
		if (buflen)
			buf[0] = '\0';
		return;
	}
	buf[0] = '\0';
	if (type[0] && !type[1]) {
		switch (type[0]) {
		case 'b':
		case 'y':
			want = 1;
			break;
		case 'n':
		case 'q':
			want = 2;
			break;
		case 'i':
		case 'u':
		case 'h':
			want = 4;
			break;
		case 'x':
		case 't':
		case 'd':
			want = 8;
			break;
		default:
			break;
		}
	}
	if (want && size != want) {
		(void)snprintf(tmp, sizeof(tmp), "(invalid GVariant %s: %zu bytes)", type, size);
		sb_puts(&s, tmp);
		return;
	}
	if (!type[0] || type[1]) {
		if (strcmp(type, "as") == 0)
			ok = put_string_array(&s, d, size);
		else
			ok = false;
	} else {
		switch (type[0]) {
		case 'b':
			ok = d[0] <= 1;
			sb_puts(&s, d[0] ? "true" : "false");
			break;
		case 'y':
			(void)snprintf(tmp, sizeof(tmp), "byte 0x%02x", d[0]);
			break;
		case 'n':
			(void)snprintf(tmp, sizeof(tmp), "int16 %d", (int16_t)(d[0] | d[1] << 8));
			break;
		case 'q':
			(void)snprintf(tmp, sizeof(tmp), "uint16 %u", (unsigned)(d[0] | d[1] << 8));
			break;
		case 'i':
			(void)snprintf(tmp, sizeof(tmp), "%d", (int32_t)le32(d));
			break;
		case 'u':
			(void)snprintf(tmp, sizeof(tmp), "uint32 %u", le32(d));
			break;
		case 'h':
			(void)snprintf(tmp, sizeof(tmp), "handle %d", (int32_t)le32(d));
			break;
		case 'x':
			(void)snprintf(tmp, sizeof(tmp), "int64 %lld", (long long)(int64_t)le64(d));
			break;
		case 't':
			(void)snprintf(tmp, sizeof(tmp), "uint64 %llu",
				       (unsigned long long)le64(d));
			break;
		case 'd':
			put_double(&s, d);
			break;
		case 's':
		case 'o':
		case 'g':
			ok = valid_cstring(d, size);
			if (!ok)
				break;
			if (type[0] != 's')
				sb_puts(&s, type[0] == 'o' ? "objectpath " : "signature ");
			put_string(&s, d, size - 1);
			break;
		default:
			ok = false;
			break;
		}
		if (ok && strchr("ynqiuhxt", type[0]))
			sb_puts(&s, tmp);
	}
	if (!ok) {
		s.len = 0;
		s.trunc = false;
		buf[0] = '\0';
		sb_puts(&s, "(GVariant ");
		put_string(&s, (const unsigned char *)type, strlen(type));
		(void)snprintf(tmp, sizeof(tmp), ", %zu bytes)", size);
		sb_puts(&s, tmp);
	}
}

/* The item's value: a variant (child bytes, NUL, type string). */
static char *item_value(const unsigned char *data, size_t len, const unsigned char *it)
{
	uint32_t start = le32(it + 16), end = le32(it + 20);
	char *out = malloc(GVDB_VALUE_MAX);
	char type[128];
	const unsigned char *d = data + start;
	size_t size, nul, tl;

	if (!out)
		return NULL;
	if (start > end || end > len || end == start) {
		(void)snprintf(out, GVDB_VALUE_MAX, "(invalid value pointer)");
		return out;
	}
	size = end - start;
	for (nul = size; nul > 0 && d[nul - 1] != '\0'; nul--)
		;
	tl = size - nul;
	if (nul == 0 || tl == 0 || tl >= sizeof(type)) {
		(void)snprintf(out, GVDB_VALUE_MAX, "(invalid variant, %zu bytes)", size);
		return out;
	}
	memcpy(type, d + nul, tl);
	type[tl] = '\0';
	for (size_t i = 0; i < tl; i++)
		if (type[i] < 0x21 || type[i] > 0x7e) {
			(void)snprintf(out, GVDB_VALUE_MAX, "(invalid variant type, %zu bytes)",
				       size);
			return out;
		}
	gvdb_format_value(type, d, nul - 1, out, GVDB_VALUE_MAX);
	char *shrunk = realloc(out, strlen(out) + 1);
	return shrunk ? shrunk : out;
}

/* The full key of item i (parent chain), escaped; NULL if malformed. */
static char *item_key(const unsigned char *data, size_t len, const unsigned char *items,
		      size_t n_items, size_t i)
{
	size_t chain[GVDB_DEPTH_MAX], depth = 0, total = 0;
	char *key, *p;

	for (;;) {
		const unsigned char *it = items + i * ITEM_SIZE;
		uint32_t ks = le32(it + 8), kl = (uint32_t)(it[12] | it[13] << 8), parent;
		if (depth == GVDB_DEPTH_MAX || ks > len || kl > len - ks)
			return NULL;
		total += kl;
		if (total > GVDB_KEY_MAX)
			return NULL;
		chain[depth++] = i;
		parent = le32(it + 4);
		if (parent == NO_PARENT)
			break;
		if (parent >= n_items)
			return NULL;
		i = parent;
	}
	key = malloc(total * 4 + 1);
	if (!key)
		return NULL;
	p = key;
	while (depth-- > 0) {
		const unsigned char *it = items + chain[depth] * ITEM_SIZE;
		const unsigned char *k = data + le32(it + 8);
		size_t kl = (size_t)(it[12] | it[13] << 8);
		for (size_t j = 0; j < kl; j++) {
			if (k[j] < 0x20 || k[j] == 0x7f || k[j] == '\\')
				p += sprintf(p, "\\x%02x", k[j]);
			else
				*p++ = (char)k[j];
		}
	}
	*p = '\0';
	return key;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct gvdb_entry *)a)->key, ((const struct gvdb_entry *)b)->key);
}

void gvdb_entries_free(struct gvdb_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].key);
		free(e[i].value);
	}
	free(e);
}

int gvdb_parse(const void *vdata, size_t len, struct gvdb_entry **ret, size_t *n_ret,
	       size_t *skipped)
{
	const unsigned char *data = vdata, *tbl, *items;
	uint64_t start, end, size, n_bloom, n_buckets, items_off;
	size_t n_items, n = 0, bad = 0;
	struct gvdb_entry *e;

	*ret = NULL;
	*n_ret = 0;
	if (skipped)
		*skipped = 0;
	if (len > GVDB_FILE_MAX)
		return -EFBIG;
	if (len < HDR_SIZE)
		return -EBADMSG;
	if (memcmp(data, "GVariant", 8) != 0)
		return memcmp(data, "raVGtnai", 8) == 0 ? -EPROTONOSUPPORT : -EBADMSG;
	if (le32(data + 8) != 0)
		return -EPROTONOSUPPORT;
	start = le32(data + 16);
	end = le32(data + 20);
	if (start > end || end > len || (start & 3) || end - start < 8)
		return -EBADMSG;
	tbl = data + start;
	size = end - start;
	n_bloom = le32(tbl) & ((1u << 27) - 1);
	n_buckets = le32(tbl + 4);
	items_off = 8 + 4 * (n_bloom + n_buckets);
	if (items_off > size)
		return -EBADMSG;
	items = tbl + items_off;
	n_items = (size_t)((size - items_off) / ITEM_SIZE);
	if (n_items > GVDB_ITEMS_MAX) {
		bad += n_items - GVDB_ITEMS_MAX;
		n_items = GVDB_ITEMS_MAX;
	}
	e = calloc(n_items ? n_items : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < n_items; i++) {
		const unsigned char *it = items + i * ITEM_SIZE;
		if (it[14] != 'v')
			continue; /* 'L' directory lists, 'H' nested tables (.locks) */
		e[n].key = item_key(data, len, items, n_items, i);
		if (!e[n].key) {
			bad++;
			continue;
		}
		e[n].value = item_value(data, len, it);
		if (!e[n].value) {
			free(e[n].key);
			gvdb_entries_free(e, n);
			return -ENOMEM;
		}
		n++;
	}
	qsort(e, n, sizeof(*e), cmp_entry);
	/* a well-formed table has unique keys; keep the first of duplicates */
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (w && strcmp(e[w - 1].key, e[i].key) == 0) {
			free(e[i].key);
			free(e[i].value);
			bad++;
			continue;
		}
		e[w++] = e[i];
	}
	*ret = e;
	*n_ret = w;
	if (skipped)
		*skipped = bad;
	return 0;
}
