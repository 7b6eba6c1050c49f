/* test-pcap-flows.c - the pcap flow reader on hand-built captures: link
 * types, byte orders, TCP SYN vs other segments, UDP in both directions,
 * IPv6 extension headers, VLAN tags, fragments, truncation, garbage, bounds. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pcap-flows.h"

struct cap {
	uint8_t buf[65536];
	size_t len;
	int swap;
};

static void put32(struct cap *c, uint32_t v)
{
	if (c->swap)
		v = __builtin_bswap32(v);
	memcpy(c->buf + c->len, &v, 4);
	c->len += 4;
}

static void header(struct cap *c, uint32_t linktype, int swap, int nsec)
{
	c->len = 0;
	c->swap = swap;
	put32(c, nsec ? 0xa1b23c4d : 0xa1b2c3d4);
	put32(c, 0x00040002); /* version 2.4 (byte order irrelevant here) */
	put32(c, 0);
	put32(c, 0);
	put32(c, 65535);
	put32(c, linktype);
}

static void record(struct cap *c, const uint8_t *pkt, size_t len, uint32_t sec)
{
	put32(c, sec);
	put32(c, 5);
	put32(c, (uint32_t)len);
	put32(c, (uint32_t)len);
	memcpy(c->buf + c->len, pkt, len);
	c->len += len;
}

/* Builds IPv4 + TCP/UDP into p; returns its length. */
static size_t ip4(uint8_t *p, uint8_t proto, const char *s, const char *d, uint16_t sp,
		  uint16_t dp, uint8_t tcpflags, uint16_t frag)
{
	size_t tl = proto == IPPROTO_TCP ? 20 : 8;
	memset(p, 0, 20 + tl);
	p[0] = 0x45;
	p[2] = (uint8_t)((20 + tl) >> 8);
	p[3] = (uint8_t)(20 + tl);
	p[6] = (uint8_t)(frag >> 8);
	p[7] = (uint8_t)frag;
	p[8] = 64;
	p[9] = proto;
	inet_pton(AF_INET, s, p + 12);
	inet_pton(AF_INET, d, p + 16);
	uint8_t *t = p + 20;
	t[0] = (uint8_t)(sp >> 8), t[1] = (uint8_t)sp, t[2] = (uint8_t)(dp >> 8), t[3] = (uint8_t)dp;
	if (proto == IPPROTO_TCP) {
		t[12] = 0x50;
		t[13] = tcpflags;
	}
	return 20 + tl;
}

static size_t ip6(uint8_t *p, uint8_t proto, const char *s, const char *d, uint16_t sp,
		  uint16_t dp, int hopbyhop)
{
	size_t ext = hopbyhop ? 8 : 0, tl = proto == IPPROTO_TCP ? 20 : 8;
	memset(p, 0, 40 + ext + tl);
	p[0] = 0x60;
	p[4] = (uint8_t)((ext + tl) >> 8);
	p[5] = (uint8_t)(ext + tl);
	p[6] = hopbyhop ? 0 : proto;
	p[7] = 64;
	inet_pton(AF_INET6, s, p + 8);
	inet_pton(AF_INET6, d, p + 24);
	if (hopbyhop) {
		p[40] = proto;
		p[41] = 0;
	}
	uint8_t *t = p + 40 + ext;
	t[0] = (uint8_t)(sp >> 8), t[1] = (uint8_t)sp, t[2] = (uint8_t)(dp >> 8), t[3] = (uint8_t)dp;
	if (proto == IPPROTO_TCP) {
		t[12] = 0x50;
		t[13] = 0x02;
	}
	return 40 + ext + tl;
}

/* Ethernet frame around an IP packet (optionally with a VLAN tag). */
static size_t eth(uint8_t *f, const uint8_t *ip, size_t len, uint16_t type, int vlan)
{
	memset(f, 0, 14);
	size_t off = 12;
	if (vlan) {
		f[off] = 0x81, f[off + 1] = 0x00, f[off + 2] = 0, f[off + 3] = 5;
		off += 4;
	}
	f[off] = (uint8_t)(type >> 8), f[off + 1] = (uint8_t)type;
	memcpy(f + off + 2, ip, len);
	return off + 2 + len;
}

static void add_eth4(struct cap *c, uint8_t proto, const char *s, const char *d, uint16_t sp,
		     uint16_t dp, uint8_t flags, int vlan)
{
	uint8_t ip[128], f[256];
	size_t n = ip4(ip, proto, s, d, sp, dp, flags, 0);
	record(c, f, eth(f, ip, n, 0x0800, vlan), 100);
}

static const struct pcap_flow *find(const struct pcap_flows *pf, uint8_t proto, uint16_t sp,
				    uint16_t dp)
{
	for (size_t i = 0; i < pf->n; i++)
		if (pf->flows[i].proto == proto && pf->flows[i].sport == sp && pf->flows[i].dport == dp)
			return &pf->flows[i];
	return NULL;
}

static void test_ethernet_v4(void **state)
{
	static struct cap c;
	for (int swap = 0; swap < 2; swap++) {
		header(&c, 1, swap, swap);
		add_eth4(&c, IPPROTO_TCP, "10.0.0.2", "10.0.0.1", 40000, 80, 0x02, 0); /* SYN */
		add_eth4(&c, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 80, 40000, 0x12, 0); /* SYN-ACK */
		add_eth4(&c, IPPROTO_TCP, "10.0.0.2", "10.0.0.1", 40000, 80, 0x10, 0); /* ACK */
		add_eth4(&c, IPPROTO_TCP, "10.0.0.2", "10.0.0.1", 40001, 81, 0x10, 0); /* no SYN: no flow */
		add_eth4(&c, IPPROTO_UDP, "10.0.0.2", "10.0.0.1", 5000, 53, 0, 1);	/* VLAN */
		add_eth4(&c, IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 53, 5000, 0, 0);	/* reply */
		struct pcap_flows pf;
		assert_int_equal(pcap_flows_parse(c.buf, c.len, 0, &pf), 0);
		assert_int_equal(pf.records, 6);
		assert_int_equal(pf.n, 2);
		assert_int_equal(pf.truncated, 0);
		const struct pcap_flow *t = find(&pf, IPPROTO_TCP, 40000, 80);
		assert_non_null(t);
		assert_int_equal(t->family, AF_INET);
		assert_int_equal(t->packets, 1);
		assert_int_equal(t->first_ns, 100ULL * 1000000000ULL + (swap ? 5 : 5000));
		char ep[64];
		assert_int_equal(pcap_flow_endpoint(t->family, t->dst, t->dport, ep, sizeof(ep)), 0);
		assert_string_equal(ep, "10.0.0.1:80");
		const struct pcap_flow *u = find(&pf, IPPROTO_UDP, 5000, 53);
		assert_non_null(u);
		assert_int_equal(u->packets, 2); /* both directions, one flow */
		assert_null(find(&pf, IPPROTO_TCP, 40001, 81));
		pcap_flows_done(&pf);
	}
}

static void test_ipv6_and_links(void **state)
{
	static struct cap c;
	uint8_t ip[256], f[300];
	size_t n;
	/* RAW */
	header(&c, 101, 0, 0);
	n = ip6(ip, IPPROTO_UDP, "fd00::2", "fd00::1", 1234, 53, 1);
	record(&c, ip, n, 1);
	n = ip6(ip, IPPROTO_TCP, "fd00::2", "fd00::1", 1235, 443, 0);
	record(&c, ip, n, 1);
	n = ip4(ip, IPPROTO_UDP, "10.0.0.2", "10.0.0.1", 7, 7, 0, 0x0010); /* later fragment */
	record(&c, ip, n, 1);
	struct pcap_flows pf;
	assert_int_equal(pcap_flows_parse(c.buf, c.len, 0, &pf), 0);
	assert_int_equal(pf.n, 2);
	assert_int_equal(pf.skipped, 1);
	const struct pcap_flow *u = find(&pf, IPPROTO_UDP, 1234, 53);
	assert_non_null(u);
	assert_int_equal(u->family, AF_INET6);
	char ep[80];
	assert_int_equal(pcap_flow_endpoint(u->family, u->dst, u->dport, ep, sizeof(ep)), 0);
	assert_string_equal(ep, "[fd00::1]:53");
	assert_non_null(find(&pf, IPPROTO_TCP, 1235, 443));
	pcap_flows_done(&pf);

	/* LINUX_SLL2: protocol in the first two bytes, 20-byte header */
	header(&c, 276, 0, 0);
	n = ip4(ip, IPPROTO_TCP, "10.1.0.2", "10.1.0.1", 999, 22, 0x02, 0);
	memset(f, 0, 20);
	f[0] = 0x08;
	memcpy(f + 20, ip, n);
	record(&c, f, 20 + n, 1);
	assert_int_equal(pcap_flows_parse(c.buf, c.len, 0, &pf), 0);
	assert_int_equal(pf.n, 1);
	assert_non_null(find(&pf, IPPROTO_TCP, 999, 22));
	pcap_flows_done(&pf);
}

static void test_bad_input(void **state)
{
	static struct cap c;
	struct pcap_flows pf;
	uint8_t junk[64];
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(pcap_flows_parse(junk, sizeof(junk), 0, &pf), -EBADMSG);
	assert_int_equal(pcap_flows_parse(junk, 3, 0, &pf), -EBADMSG);
	header(&c, 9999, 0, 0); /* unsupported link type */
	assert_int_equal(pcap_flows_parse(c.buf, c.len, 0, &pf), -EBADMSG);

	/* truncated last record: the flows before it count */
	header(&c, 1, 0, 0);
	add_eth4(&c, IPPROTO_UDP, "10.0.0.2", "10.0.0.1", 1, 2, 0, 0);
	add_eth4(&c, IPPROTO_UDP, "10.0.0.2", "10.0.0.1", 3, 4, 0, 0);
	assert_int_equal(pcap_flows_parse(c.buf, c.len - 5, 0, &pf), 0);
	assert_int_equal(pf.n, 1);
	assert_int_equal(pf.truncated, 1);
	pcap_flows_done(&pf);
	/* every prefix parses without error or crash */
	for (size_t cut = 24; cut <= c.len; cut++) {
		assert_int_equal(pcap_flows_parse(c.buf, cut, 0, &pf), 0);
		pcap_flows_done(&pf);
	}
	/* a short IP header inside a record: skipped */
	header(&c, 101, 0, 0);
	uint8_t tiny[6] = { 0x45, 0, 0, 6, 0, 0 };
	record(&c, tiny, sizeof(tiny), 1);
	assert_int_equal(pcap_flows_parse(c.buf, c.len, 0, &pf), 0);
	assert_int_equal(pf.n, 0);
	assert_int_equal(pf.skipped, 1);
	pcap_flows_done(&pf);
}

static void test_bound(void **state)
{
	static struct cap c;
	header(&c, 1, 0, 0);
	for (uint16_t p = 1; p <= 100; p++)
		add_eth4(&c, IPPROTO_UDP, "10.0.0.2", "10.0.0.1", p, 53, 0, 0);
	struct pcap_flows pf;
	assert_int_equal(pcap_flows_parse(c.buf, c.len, 10, &pf), 0);
	assert_int_equal(pf.n, 10);
	assert_int_equal(pf.overflow, 90);
	pcap_flows_done(&pf);
}

static void test_file(void **state)
{
	static struct cap c;
	header(&c, 1, 0, 0);
	add_eth4(&c, IPPROTO_TCP, "10.0.0.2", "10.0.0.1", 40000, 80, 0x02, 0);
	char path[] = "/tmp/monproc-pcap-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, c.buf, c.len), (ssize_t)c.len);
	close(fd);
	struct pcap_flows pf;
	assert_int_equal(pcap_flows_read(path, 0, &pf), 0);
	assert_int_equal(pf.n, 1);
	pcap_flows_done(&pf);
	unlink(path);
	assert_int_equal(pcap_flows_read(path, 0, &pf), -ENOENT);
	assert_int_equal(pcap_flows_read("/tmp", 0, &pf), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ethernet_v4),
		cmocka_unit_test(test_ipv6_and_links),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
