/* test-urllist: the original's token rules, IPv6 hosts, validation, end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "urllist.h"

static struct cap_url_entry e;

static void entry_ok(const char *line)
{
	const char *reason = NULL;
	memset(&e, 0x5a, sizeof(e));
	int r = cap_urllist_parse_line(line, &e, &reason);
	if (r != CAP_URLLINE_ENTRY)
		fail_msg("'%s': r=%d reason=%s", line, r, reason ? reason : "-");
}

static void entry_bad(const char *line)
{
	const char *reason = NULL;
	assert_int_equal(cap_urllist_parse_line(line, &e, &reason), -EINVAL);
	assert_non_null(reason);
}

static void test_skip_and_end(void **state)
{
	assert_int_equal(cap_urllist_parse_line("", &e, NULL), CAP_URLLINE_SKIP);
	assert_int_equal(cap_urllist_parse_line("   \r\n", &e, NULL), CAP_URLLINE_SKIP);
	assert_int_equal(cap_urllist_parse_line("# http://x/", &e, NULL), CAP_URLLINE_SKIP);
	assert_int_equal(cap_urllist_parse_line("end", &e, NULL), CAP_URLLINE_END);
	assert_int_equal(cap_urllist_parse_line("end\r\n", &e, NULL), CAP_URLLINE_END);
	assert_int_equal(cap_urllist_parse_line("END", &e, NULL), CAP_URLLINE_END);
	entry_bad("endless");
}

static void test_one_and_two_tokens(void **state)
{
	entry_ok("http://www.google.com\n");
	assert_string_equal(e.url, "http://www.google.com");
	assert_false(e.has_client || e.has_visit_time || e.has_priority);

	entry_ok("http://www.google.com::firefox");
	assert_true(e.has_client);
	assert_string_equal(e.client, "firefox");
	assert_false(e.has_visit_time || e.has_priority);

	entry_ok("http://www.google.com::45");
	assert_true(e.has_visit_time);
	assert_int_equal(e.visit_time, 45);
	assert_false(e.has_client || e.has_priority);

	entry_ok("http://www.google.com::0.7");
	assert_true(e.has_priority);
	assert_true(e.priority > 0.69 && e.priority < 0.71);
	assert_false(e.has_client || e.has_visit_time);

	entry_ok("http://www.google.com::1");
	assert_true(e.has_visit_time); /* int wins over priority */
	assert_int_equal(e.visit_time, 1);
}

static void test_three_and_four_tokens(void **state)
{
	entry_ok("http://www.google.com::firefox::45");
	assert_string_equal(e.client, "firefox");
	assert_int_equal(e.visit_time, 45);
	assert_false(e.has_priority);

	entry_ok("http://www.google.com::firefox::0.5");
	assert_string_equal(e.client, "firefox");
	assert_true(e.has_priority);
	assert_false(e.has_visit_time);

	entry_ok("http://www.google.com::30::0.25");
	assert_false(e.has_client);
	assert_int_equal(e.visit_time, 30);
	assert_true(e.priority == 0.25);

	entry_ok("http://www.google.com::iexplorebulk::20::1.0");
	assert_string_equal(e.client, "iexplorebulk");
	assert_int_equal(e.visit_time, 20);
	assert_true(e.priority == 1.0);

	entry_bad("http://a.b::firefox::x");
	entry_bad("http://a.b::30::firefox");
	entry_bad("http://a.b::firefox::20::2.0");
	entry_bad("http://a.b::firefox::0::0.5");
	entry_bad("http://a.b::1::2::3::4");
	entry_bad("http://a.b::fire fox");
	entry_bad("http://a.b::");
	entry_bad("http://a.b::nan::x");
}

static void test_keeps_case_port_userinfo_fragment(void **state)
{
	entry_ok("HTTP://User:Pw@Example.COM:8080/Path/A.html?Q=1#Frag::Firefox");
	assert_string_equal(e.url, "HTTP://User:Pw@Example.COM:8080/Path/A.html?Q=1#Frag");
	assert_string_equal(e.client, "Firefox");
}

static void test_ipv6(void **state)
{
	entry_ok("http://[::1]/");
	assert_string_equal(e.url, "http://[::1]/");
	entry_ok("http://[::1]:8080/x::firefox::10");
	assert_string_equal(e.url, "http://[::1]:8080/x");
	assert_string_equal(e.client, "firefox");
	assert_int_equal(e.visit_time, 10);
	entry_ok("https://[fe80::1:2]::0.5");
	assert_string_equal(e.url, "https://[fe80::1:2]");
	assert_true(e.has_priority);
	entry_bad("http://[::1/");
	entry_bad("http://[]/");
	entry_bad("http://[::g]/");
	entry_bad("http://[::1]x/");
}

static void test_url_validation(void **state)
{
	const char *reason;
	entry_bad("file:///etc/passwd");
	entry_bad("data:text/html,<script>");
	entry_bad("javascript:alert(1)");
	entry_bad("www.example.com");
	entry_bad("http:///path");
	entry_bad("http://a b/");
	entry_bad("http://a.b/\x01");
	entry_bad("http://a.b:0/");
	entry_bad("http://a.b:65536/");
	entry_bad("http://a.b:80x/");
	entry_bad("http://a\xc3\xa9.b/");
	entry_ok("ftp://ftp.example.org/pub/file.pdf");
	entry_ok("https://a.b:65535/?x=::y"); /* '::' after the host still splits */
	assert_string_equal(e.url, "https://a.b:65535/?x=");
	assert_string_equal(e.client, "y");

	char *big = malloc(CAP_URL_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', CAP_URL_MAX + 1);
	memcpy(big, "http://h/", 9);
	big[CAP_URL_MAX + 1] = '\0';
	assert_int_equal(cap_url_validate(big, &reason), -EINVAL);
	big[CAP_URL_MAX] = '\0';
	assert_int_equal(cap_url_validate(big, &reason), 0);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skip_and_end),
		cmocka_unit_test(test_one_and_two_tokens),
		cmocka_unit_test(test_three_and_four_tokens),
		cmocka_unit_test(test_keeps_case_port_userinfo_fragment),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_url_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
