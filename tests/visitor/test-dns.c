/* test-dns.c - the stub resolver's messages (src/client/plugins/dns.c):
 * queries for valid and invalid names, and answers a hostile resolver (or
 * a spoofer) could send. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"

#define ID 0x4242

/* An answer to "www.example.test" A, built by hand: header, question, and
 * the records appended by the tests. */
struct msg {
	uint8_t b[DNS_MSG_MAX];
	size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
	assert_true(m->n + n <= sizeof(m->b));
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void put16(struct msg *m, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(m, b, 2);
}

static const uint8_t qname[] = "\3www\7example\4test"; /* + the final 0 of the literal */

static void start(struct msg *m, uint16_t flags, uint16_t an)
{
	m->n = 0;
	put16(m, ID);
	put16(m, flags);
	put16(m, 1);
	put16(m, an);
	put16(m, 0);
	put16(m, 0);
	put(m, qname, sizeof(qname));
	put16(m, 1); /* A */
	put16(m, 1); /* IN */
}

/* A record: owner as a pointer to the question's name (offset 12). */
static void rr(struct msg *m, const uint8_t *owner, size_t olen, uint16_t type,
	       const void *rdata, uint16_t rdlen)
{
	put(m, owner, olen);
	put16(m, type);
	put16(m, 1);
	put16(m, 0);
	put16(m, 60);
	put16(m, rdlen);
	put(m, rdata, rdlen);
}

static const uint8_t ptr_q[] = {0xc0, 12};
static const uint8_t addr1[] = {198, 51, 100, 10};

static void test_query(void **state)
{
	uint8_t b[300];
	int n = dns_build_query("www.example.test.", ID, b, sizeof(b));
	assert_int_equal(n, 12 + (int)sizeof(qname) + 4);
	assert_int_equal(b[0], 0x42);
	assert_int_equal(b[2], 0x01); /* RD */
	assert_int_equal(b[5], 1);
	assert_memory_equal(b + 12, qname, sizeof(qname));
	assert_int_equal(dns_build_query("", ID, b, sizeof(b)), -EINVAL);
	assert_int_equal(dns_build_query(".", ID, b, sizeof(b)), -EINVAL);
	assert_int_equal(dns_build_query("a..b", ID, b, sizeof(b)), -EINVAL);
	assert_int_equal(dns_build_query(".a", ID, b, sizeof(b)), -EINVAL);
	assert_int_equal(dns_build_query("a b", ID, b, sizeof(b)), -EINVAL);
	assert_int_equal(dns_build_query("a\\.b", ID, b, sizeof(b)), -EINVAL);
	char l64[80];
	memset(l64, 'a', 64);
	l64[64] = '\0';
	assert_int_equal(dns_build_query(l64, ID, b, sizeof(b)), -EINVAL);
	l64[63] = '\0';
	assert_true(dns_build_query(l64, ID, b, sizeof(b)) > 0);
	char long_name[300];
	for (size_t i = 0; i < sizeof(long_name) - 1; i++)
		long_name[i] = i % 10 == 9 ? '.' : 'x';
	long_name[254] = '\0'; /* 254 > 253 */
	assert_int_equal(dns_build_query(long_name, ID, b, sizeof(b)), -EINVAL);
	assert_int_equal(dns_build_query("www.example.test", ID, b, 20), -ENOBUFS);
	(void)state;
}

static void test_answer(void **state)
{
	struct msg m;
	struct in_addr a;
	start(&m, 0x8180, 1);
	rr(&m, ptr_q, 2, 1, addr1, 4);
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), 0);
	assert_string_equal(inet_ntoa(a), "198.51.100.10");
	/* case and a trailing dot do not matter */
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "WWW.Example.TEST.", &a), 0);
	/* another id, another question, a query (QR clear), an opcode: not ours */
	assert_int_equal(dns_parse_a(m.b, m.n, ID + 1, "www.example.test", &a), -EBADMSG);
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "evil.example.test", &a), -EBADMSG);
	m.b[2] &= 0x7f;
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EBADMSG);
	m.b[2] |= 0x80 | 0x08;
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EBADMSG);
	/* every truncation of a valid answer is malformed, never read past */
	start(&m, 0x8180, 1);
	rr(&m, ptr_q, 2, 1, addr1, 4);
	for (size_t n = 0; n < m.n; n++)
		assert_int_equal(dns_parse_a(m.b, n, ID, "www.example.test", &a), -EBADMSG);
	(void)state;
}

static void test_rcode(void **state)
{
	struct msg m;
	struct in_addr a;
	start(&m, 0x8183, 0); /* NXDOMAIN */
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -ENOENT);
	start(&m, 0x8182, 0); /* SERVFAIL */
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EAGAIN);
	start(&m, 0x8185, 0); /* REFUSED */
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EAGAIN);
	start(&m, 0x8180, 0); /* NOERROR, no data */
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -ENOENT);
	start(&m, 0x8380, 0); /* truncated, no data */
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EAGAIN);
	(void)state;
}

static void test_cname(void **state)
{
	struct msg m;
	struct in_addr a;
	/* an unrelated A, the A of cdn.example.test, then www's CNAME to it:
	 * the chain is followed in a second pass over the section. */
	static const uint8_t cdn[] = "\3cdn\7example\4test";
	static const uint8_t other[] = {192, 0, 2, 1};
	start(&m, 0x8180, 3);
	rr(&m, (const uint8_t *)"\5other\7example\4test", 20, 1, other, 4);
	rr(&m, cdn, sizeof(cdn), 1, addr1, 4);
	rr(&m, ptr_q, 2, 5, cdn, sizeof(cdn));
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), 0);
	assert_string_equal(inet_ntoa(a), "198.51.100.10");
	/* a CNAME loop ends: no address */
	start(&m, 0x8180, 2);
	rr(&m, ptr_q, 2, 5, cdn, sizeof(cdn));
	rr(&m, cdn, sizeof(cdn), 5, qname, sizeof(qname));
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -ENOENT);
	/* an A of another name only: not taken */
	start(&m, 0x8180, 1);
	rr(&m, cdn, sizeof(cdn), 1, addr1, 4);
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -ENOENT);
	/* an A with a wrong length is skipped */
	start(&m, 0x8180, 1);
	rr(&m, ptr_q, 2, 1, addr1, 3);
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -ENOENT);
	(void)state;
}

static void test_hostile_names(void **state)
{
	struct msg m;
	struct in_addr a;
	/* a pointer to itself, forwards, past the end */
	static const uint8_t self_ptr[][2] = {{0xc0, 0}, {0xc0, 0xff}, {0xff, 0xff}};
	for (size_t i = 0; i < 3; i++) {
		start(&m, 0x8180, 1);
		uint8_t p[2] = {self_ptr[i][0], self_ptr[i][1]};
		if (i == 0)
			p[1] = (uint8_t)m.n; /* points at itself */
		rr(&m, p, 2, 1, addr1, 4);
		assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EBADMSG);
	}
	/* extended label type */
	start(&m, 0x8180, 1);
	rr(&m, (const uint8_t *)"\x41x", 3, 1, addr1, 4);
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EBADMSG);
	/* "www.example" + "test" as one label with a dot does not equal the name */
	start(&m, 0x8180, 1);
	rr(&m, (const uint8_t *)"\3www\14example.test", 18, 1, addr1, 4);
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -ENOENT);
	/* a name longer than 253 */
	start(&m, 0x8180, 1);
	uint8_t big[320];
	size_t n = 0;
	for (int i = 0; i < 5; i++) {
		big[n++] = 60;
		memset(big + n, 'a', 60);
		n += 60;
	}
	big[n++] = 0;
	rr(&m, big, (uint16_t)n, 1, addr1, 4);
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EBADMSG);
	/* an answer count larger than the records present */
	start(&m, 0x8180, 5);
	rr(&m, (const uint8_t *)"\5other\7example\4test", 20, 1, addr1, 4);
	assert_int_equal(dns_parse_a(m.b, m.n, ID, "www.example.test", &a), -EBADMSG);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query),	   cmocka_unit_test(test_answer),
	    cmocka_unit_test(test_rcode),	   cmocka_unit_test(test_cname),
	    cmocka_unit_test(test_hostile_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
