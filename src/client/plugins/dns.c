/* dns.c - see dns.h (the exchange itself is in download.c).  RFC 1035
 * messages: a 12-byte header, the question, then resource records; names
 * are labels or pointers back into the message. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "dns.h"

#define TYPE_A	   1
#define TYPE_CNAME 5
#define CLASS_IN   1
#define F_QR	   0x8000
#define F_TC	   0x0200
#define F_RD	   0x0100
#define RCODE_NX   3
#define JUMPS_MAX  16 /* compression pointers followed per name */
#define CHAIN_MAX  8  /* CNAMEs followed */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int dns_build_query(const char *name, uint16_t id, uint8_t *buf, size_t len)
{
	size_t nl = name ? strlen(name) : 0;
	if (nl && name[nl - 1] == '.')
		nl--;
	if (nl == 0 || nl > DNS_NAME_MAX)
		return -EINVAL;
	size_t need = 12 + nl + 2 + 4;
	if (len < need)
		return -ENOBUFS;
	memset(buf, 0, 12);
	buf[0] = (uint8_t)(id >> 8);
	buf[1] = (uint8_t)id;
	buf[2] = F_RD >> 8;
	buf[5] = 1; /* one question */
	size_t o = 12;
	for (size_t start = 0; start <= nl;) {
		size_t e = start;
		while (e < nl && name[e] != '.') {
			if (!host_char(name[e]))
				return -EINVAL;
			e++;
		}
		size_t l = e - start;
		if (l == 0 || l > 63)
			return -EINVAL;
		buf[o++] = (uint8_t)l;
		memcpy(buf + o, name + start, l);
		o += l;
		start = e + 1;
	}
	buf[o++] = 0;
	buf[o++] = 0;
	buf[o++] = TYPE_A;
	buf[o++] = 0;
	buf[o++] = CLASS_IN;
	return (int)o;
}

/* The name at *off, dotted, into out[DNS_NAME_MAX + 1]; *off moves past it.
 * A byte that cannot be in a host name (a dot inside a label, a control
 * byte) becomes '\x01', so that such a name never equals a query's. */
static int read_name(const uint8_t *m, size_t len, size_t *off, char *out)
{
	size_t pos = *off, n = 0;
	bool jumped = false;
	unsigned jumps = 0;
	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t l = m[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++jumps > JUMPS_MAX)
				return -EBADMSG;
			size_t to = (size_t)(l & 0x3f) << 8 | m[pos + 1];
			if (to >= pos) /* only backwards: no loops */
				return -EBADMSG;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = to;
			continue;
		}
		if (l & 0xc0) /* extended label types */
			return -EBADMSG;
		if (l == 0) {
			if (!jumped)
				*off = pos + 1;
			break;
		}
		if (pos + 1 + l > len || n + (n ? 1 : 0) + l > DNS_NAME_MAX)
			return -EBADMSG;
		if (n)
			out[n++] = '.';
		for (size_t i = 0; i < l; i++) {
			char c = (char)m[pos + 1 + i];
			out[n++] = host_char(c) ? c : '\x01';
		}
		pos += 1 + (size_t)l;
	}
	out[n] = '\0';
	return 0;
}

static bool same_name(const char *a, const char *query)
{
	size_t ql = strlen(query);
	if (ql && query[ql - 1] == '.')
		ql--;
	return strlen(a) == ql && strncasecmp(a, query, ql) == 0;
}

int dns_parse_a(const uint8_t *msg, size_t len, uint16_t id, const char *name, struct in_addr *ret)
{
	if (len < 12)
		return -EBADMSG;
	uint16_t flags = get16(msg + 2), qd = get16(msg + 4), an = get16(msg + 6);
	if (get16(msg) != id || !(flags & F_QR) || (flags >> 11 & 0xf) != 0 || qd != 1)
		return -EBADMSG;
	char owner[DNS_NAME_MAX + 1], want[DNS_NAME_MAX + 1];
	size_t off = 12;
	if (read_name(msg, len, &off, owner) < 0 || off + 4 > len || get16(msg + off) != TYPE_A ||
	    get16(msg + off + 2) != CLASS_IN || !same_name(owner, name))
		return -EBADMSG;
	off += 4;
	unsigned rcode = flags & 0xf;
	if (rcode == RCODE_NX)
		return -ENOENT;
	if (rcode != 0)
		return -EAGAIN;

	memcpy(want, owner, sizeof(want));
	for (unsigned pass = 0; pass <= CHAIN_MAX; pass++) {
		bool moved = false;
		size_t p = off;
		for (unsigned i = 0; i < an; i++) {
			if (read_name(msg, len, &p, owner) < 0 || p + 10 > len)
				return -EBADMSG;
			uint16_t type = get16(msg + p), class = get16(msg + p + 2);
			size_t rdlen = get16(msg + p + 8), rd = p + 10;
			if (rd + rdlen > len)
				return -EBADMSG;
			p = rd + rdlen;
			if (class != CLASS_IN || strcasecmp(owner, want) != 0)
				continue;
			if (type == TYPE_A && rdlen == 4) {
				memcpy(&ret->s_addr, msg + rd, 4);
				return 0;
			}
			if (type == TYPE_CNAME && !moved) {
				size_t t = rd;
				if (read_name(msg, len, &t, owner) < 0 || t > rd + rdlen)
					return -EBADMSG;
				memcpy(want, owner, sizeof(want));
				moved = true;
			}
		}
		if (!moved)
			break;
	}
	return flags & F_TC ? -EAGAIN : -ENOENT;
}
