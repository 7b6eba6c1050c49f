/* pcap-flows.c - see pcap-flows.h.  Every read goes through rd16/rd32 with
 * an explicit bounds check against the record; the flow table is an open
 * addressing hash of indices into the flow array, sized for max_flows. */
#include "pcap-flows.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

#define PCAP_RECORD_MAX (256u * 1024u) /* larger incl_len = corrupt file */
#define PCAP_FILE_MAX (1ULL << 30)

enum {
	LT_NULL = 0,
	LT_EN10MB = 1,
	LT_RAW_OLD = 12,
	LT_RAW = 101,
	LT_LOOP = 108,
	LT_SLL = 113,
	LT_SLL2 = 276,
};

struct parser {
	bool swap;
	bool nsec;
	uint32_t linktype;
	size_t max;
	size_t cap;	   /* allocated flows */
	uint32_t *slots;   /* index+1 into flows, 0 = empty */
	size_t nslots;	   /* power of two */
	struct pcap_flows *out;
};

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const struct parser *ps, const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return ps->swap ? __builtin_bswap32(v) : v;
}

static uint32_t flow_hash(uint8_t proto, const uint8_t *a, const uint8_t *b, uint16_t pa,
			  uint16_t pb)
{
	uint32_t h = 2166136261u ^ proto;
	for (int i = 0; i < 16; i++)
		h = (h ^ (uint32_t)(a[i] ^ b[i])) * 16777619u; /* symmetric in a, b */
	return h ^ ((uint32_t)(pa ^ pb) * 2654435761u);
}

static bool flow_is(const struct pcap_flow *f, uint8_t proto, uint8_t family, const uint8_t *s,
		    const uint8_t *d, uint16_t sp, uint16_t dp)
{
	return f->proto == proto && f->family == family && f->sport == sp && f->dport == dp &&
	       memcmp(f->src, s, 16) == 0 && memcmp(f->dst, d, 16) == 0;
}

/* Finds the flow in either orientation or adds it oriented s -> d. */
static int flow_note(struct parser *ps, uint8_t proto, uint8_t family, const uint8_t *s,
		     const uint8_t *d, uint16_t sp, uint16_t dp, uint64_t ts, bool may_open)
{
	struct pcap_flows *out = ps->out;
	size_t mask = ps->nslots - 1;
	size_t i = flow_hash(proto, s, d, sp, dp) & mask;
	for (;; i = (i + 1) & mask) {
		uint32_t slot = ps->slots[i];
		if (slot == 0)
			break;
		struct pcap_flow *f = &out->flows[slot - 1];
		if (flow_is(f, proto, family, s, d, sp, dp) || flow_is(f, proto, family, d, s, dp, sp)) {
			f->packets++;
			return 0;
		}
	}
	if (!may_open)
		return 0;
	if (out->n >= ps->max) {
		out->overflow++;
		return 0;
	}
	if (out->n == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 64;
		struct pcap_flow *nf = reallocarray(out->flows, ncap, sizeof(*nf));
		if (!nf)
			return -ENOMEM;
		out->flows = nf;
		ps->cap = ncap;
	}
	struct pcap_flow *f = &out->flows[out->n];
	*f = (struct pcap_flow){ .proto = proto, .family = family, .sport = sp, .dport = dp,
				 .packets = 1, .first_ns = ts };
	memcpy(f->src, s, 16);
	memcpy(f->dst, d, 16);
	ps->slots[i] = (uint32_t)++out->n;
	return 0;
}

/* Transport layer of one IP packet: p/len start at the TCP/UDP header. */
static int transport(struct parser *ps, uint8_t proto, uint8_t family, const uint8_t *s,
		     const uint8_t *d, const uint8_t *p, size_t len, uint64_t ts)
{
	if (proto == IPPROTO_UDP) {
		if (len < 8)
			return 1;
		return flow_note(ps, proto, family, s, d, be16(p), be16(p + 2), ts, true);
	}
	if (proto == IPPROTO_TCP) {
		if (len < 14)
			return 1;
		uint8_t flags = p[13];
		bool syn = (flags & 0x02) && !(flags & 0x10);
		if (!syn)
			return 1; /* only SYNs define (and count in) flows */
		return flow_note(ps, proto, family, s, d, be16(p), be16(p + 2), ts, true);
	}
	return 1;
}

static int ipv4(struct parser *ps, const uint8_t *p, size_t len, uint64_t ts)
{
	if (len < 20 || (p[0] >> 4) != 4)
		return 1;
	size_t ihl = (size_t)(p[0] & 0x0f) * 4;
	size_t total = be16(p + 2);
	if (ihl < 20 || ihl > len)
		return 1;
	if (total >= ihl && total < len)
		len = total; /* drop link padding */
	if ((be16(p + 6) & 0x1fff) != 0)
		return 1; /* not the first fragment */
	uint8_t s[16] = { 0 }, d[16] = { 0 };
	memcpy(s, p + 12, 4);
	memcpy(d, p + 16, 4);
	return transport(ps, p[9], AF_INET, s, d, p + ihl, len - ihl, ts);
}

static int ipv6(struct parser *ps, const uint8_t *p, size_t len, uint64_t ts)
{
	if (len < 40 || (p[0] >> 4) != 6)
		return 1;
	size_t plen = be16(p + 4);
	if (40 + plen < len)
		len = 40 + plen;
	uint8_t nh = p[6];
	size_t off = 40;
	for (int hops = 0; hops < 8; hops++) {
		if (nh == IPPROTO_TCP || nh == IPPROTO_UDP)
			return transport(ps, nh, AF_INET6, p + 8, p + 24, p + off, len - off, ts);
		if (len - off < 8)
			return 1;
		size_t ext;
		if (nh == 0 || nh == 43 || nh == 60)
			ext = ((size_t)p[off + 1] + 1) * 8;
		else if (nh == 44) {
			if ((be16(p + off + 2) & 0xfff8) != 0)
				return 1; /* not the first fragment */
			ext = 8;
		} else if (nh == 51)
			ext = ((size_t)p[off + 1] + 2) * 4;
		else
			return 1;
		if (ext > len - off)
			return 1;
		nh = p[off];
		off += ext;
	}
	return 1;
}

/* Strips the link layer; returns 1 for a record that is skipped. */
static int record(struct parser *ps, const uint8_t *p, size_t len, uint64_t ts)
{
	uint16_t ethertype;
	size_t off;
	switch (ps->linktype) {
	case LT_EN10MB:
		if (len < 14)
			return 1;
		ethertype = be16(p + 12);
		off = 14;
		for (int tags = 0; tags < 2 && (ethertype == 0x8100 || ethertype == 0x88a8); tags++) {
			if (len < off + 4)
				return 1;
			ethertype = be16(p + off + 2);
			off += 4;
		}
		break;
	case LT_SLL:
		if (len < 16)
			return 1;
		ethertype = be16(p + 14);
		off = 16;
		break;
	case LT_SLL2:
		if (len < 20)
			return 1;
		ethertype = be16(p);
		off = 20;
		break;
	case LT_NULL:
	case LT_LOOP:
		if (len < 5)
			return 1;
		off = 4;
		ethertype = (p[4] >> 4) == 6 ? 0x86dd : 0x0800;
		break;
	default: /* RAW */
		if (len < 1)
			return 1;
		off = 0;
		ethertype = (p[0] >> 4) == 6 ? 0x86dd : 0x0800;
		break;
	}
	if (ethertype == 0x0800)
		return ipv4(ps, p + off, len - off, ts);
	if (ethertype == 0x86dd)
		return ipv6(ps, p + off, len - off, ts);
	return 1;
}

static int parse_header(struct parser *ps, const uint8_t *buf, size_t len)
{
	if (len < 24)
		return -EBADMSG;
	uint32_t magic;
	memcpy(&magic, buf, 4);
	switch (magic) {
	case 0xa1b2c3d4: ps->swap = false; ps->nsec = false; break;
	case 0xd4c3b2a1: ps->swap = true; ps->nsec = false; break;
	case 0xa1b23c4d: ps->swap = false; ps->nsec = true; break;
	case 0x4d3cb2a1: ps->swap = true; ps->nsec = true; break;
	default: return -EBADMSG;
	}
	ps->linktype = rd32(ps, buf + 20) & 0x0fffffff;
	switch (ps->linktype) {
	case LT_NULL: case LT_EN10MB: case LT_RAW_OLD: case LT_RAW:
	case LT_LOOP: case LT_SLL: case LT_SLL2:
		return 0;
	default:
		return -EBADMSG;
	}
}

int pcap_flows_parse(const uint8_t *buf, size_t len, size_t max_flows, struct pcap_flows *ret)
{
	struct pcap_flows out = { 0 };
	struct parser ps = { .out = &out };
	int r = parse_header(&ps, buf, len);
	if (r < 0)
		return r;
	if (max_flows == 0)
		max_flows = PCAP_FLOWS_DEFAULT_MAX;
	if (max_flows > (1u << 24))
		max_flows = 1u << 24;
	ps.max = max_flows;
	ps.nslots = 64;
	while (ps.nslots < max_flows * 2)
		ps.nslots <<= 1;
	_cleanup_free_ uint32_t *slots = calloc(ps.nslots, sizeof(uint32_t));
	if (!slots)
		return -ENOMEM;
	ps.slots = slots;

	size_t off = 24;
	while (off < len) {
		if (len - off < 16) {
			out.truncated = 1;
			break;
		}
		uint64_t sec = rd32(&ps, buf + off), frac = rd32(&ps, buf + off + 4);
		uint32_t incl = rd32(&ps, buf + off + 8);
		if (incl > PCAP_RECORD_MAX || incl > len - off - 16) {
			out.truncated = 1;
			break;
		}
		uint64_t ts = sec * 1000000000ULL + (ps.nsec ? frac : frac * 1000ULL);
		out.records++;
		r = record(&ps, buf + off + 16, incl, ts);
		if (r < 0) {
			free(out.flows);
			return r;
		}
		if (r > 0)
			out.skipped++;
		off += 16 + (size_t)incl;
	}
	*ret = out;
	return 0;
}

int pcap_flows_read(const char *path, size_t max_flows, struct pcap_flows *ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return negative_errno();
	struct stat st;
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	if ((uint64_t)st.st_size > PCAP_FILE_MAX)
		return -EFBIG;
	if (st.st_size < 24)
		return -EBADMSG;
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return negative_errno();
	int r = pcap_flows_parse(map, (size_t)st.st_size, max_flows, ret);
	munmap(map, (size_t)st.st_size);
	return r;
}

void pcap_flows_done(struct pcap_flows *f)
{
	free(f->flows);
	f->flows = NULL;
	f->n = 0;
}

int pcap_flow_endpoint(uint8_t family, const uint8_t *addr, uint16_t port, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, a, sizeof(a)))
		return negative_errno();
	int r = family == AF_INET6 ? xsnprintf(buf, len, "[%s]:%u", a, port)
				   : xsnprintf(buf, len, "%s:%u", a, port);
	return r < 0 ? r : 0;
}
