/* test-escape: XML/CSV escaping of hostile strings, URL file names, base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "escape.h"

static void check_xml(const char *in, const char *want)
{
	char *out = NULL;
	assert_int_equal(cap_xml_escape(in, &out), 0);
	assert_string_equal(out, want);
	free(out);
}

static void test_xml_escape_hostile(void **state)
{
	check_xml("\"><x a='", "&quot;&gt;&lt;x a=&apos;");
	check_xml("a&b", "a&amp;b");
	check_xml("line1\nline2\r\tend", "line1&#10;line2&#13;&#9;end");
	check_xml("bell\x07 del\x7f", "bell? del?");
	check_xml("caf\xc3\xa9", "caf\xc3\xa9");
	check_xml("bad\xc3(\xff", "bad?(?");
	check_xml("overlong\xc0\xaf", "overlong??");
	check_xml("", "");
}

static void check_csv(const char *in, const char *want)
{
	char *out = NULL;
	assert_int_equal(cap_csv_quote(in, &out), 0);
	assert_string_equal(out, want);
	free(out);
}

static void test_csv_quote(void **state)
{
	check_csv("http://x/", "\"http://x/\"");
	check_csv("say \"hi\"", "\"say \"\"hi\"\"\"");
	check_csv("a\nb\r\tc\\d\x01", "\"a\\nb\\r\\tc\\\\d\\x01\"");
	check_csv("", "\"\"");
}

static void test_url_to_filename(void **state)
{
	char *a = NULL, *b = NULL;

	assert_int_equal(cap_url_to_filename("http://www.example.com/a?b=c", 255, &a), 0);
	assert_string_equal(a, "http%3A%2F%2Fwww.example.com%2Fa%3Fb%3Dc");
	free(a);
	assert_int_equal(cap_url_to_filename("..", 64, &a), 0);
	assert_string_equal(a, "%2E%2E");
	free(a);
	assert_int_equal(cap_url_to_filename(".", 64, &a), 0);
	assert_string_equal(a, "%2E");
	free(a);
	assert_int_equal(cap_url_to_filename("", 64, &a), 0);
	assert_string_equal(a, "%00");
	free(a);

	/* long URLs that differ only at the end stay different and bounded */
	char u1[2000], u2[2000];
	memset(u1, '/', sizeof(u1));
	memcpy(u1, "http://h", 8);
	u1[sizeof(u1) - 1] = '\0';
	memcpy(u2, u1, sizeof(u2));
	u2[sizeof(u2) - 2] = 'z';
	assert_int_equal(cap_url_to_filename(u1, 100, &a), 0);
	assert_int_equal(cap_url_to_filename(u2, 100, &b), 0);
	assert_true(strlen(a) <= 100);
	assert_true(strlen(b) <= 100);
	assert_string_not_equal(a, b);
	assert_null(strchr(a, '/'));
	assert_non_null(strchr(a, '~'));
	free(a);
	free(b);
	assert_int_equal(cap_url_to_filename("x", 10, &a), -EINVAL);
}

static void test_url_unescape(void **state)
{
	char *s = NULL;
	assert_int_equal(cap_url_unescape("http%3A%2F%2Fa.b%2Fx+y%2b", true, &s), 0);
	assert_string_equal(s, "http://a.b/x y+");
	free(s);
	assert_int_equal(cap_url_unescape("a+b", false, &s), 0);
	assert_string_equal(s, "a+b");
	free(s);
	assert_int_equal(cap_url_unescape("bad%2", true, &s), -EINVAL);
	assert_int_equal(cap_url_unescape("bad%zz", true, &s), -EINVAL);
	assert_int_equal(cap_url_unescape("nul%00", true, &s), -EINVAL);
	assert_int_equal(cap_url_unescape("end%", true, &s), -EINVAL);
}

static void test_base64(void **state)
{
	static const struct {
		const char *raw, *enc;
	} v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		 {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *e = NULL;
		unsigned char *d = NULL;
		size_t el, dl;
		assert_int_equal(cap_base64_encode(v[i].raw, strlen(v[i].raw), &e, &el), 0);
		assert_string_equal(e, v[i].enc);
		assert_int_equal(el, strlen(v[i].enc));
		assert_int_equal(cap_base64_decode(e, el, 100, &d, &dl), 0);
		assert_int_equal(dl, strlen(v[i].raw));
		assert_memory_equal(d, v[i].raw, dl);
		free(e);
		free(d);
	}
	unsigned char *d = NULL;
	size_t dl;
	assert_int_equal(cap_base64_decode("Zm9", 3, 100, &d, &dl), -EINVAL);
	assert_int_equal(cap_base64_decode("Zm9v\n", 5, 100, &d, &dl), -EINVAL);
	assert_int_equal(cap_base64_decode("Zm=v", 4, 100, &d, &dl), -EINVAL);
	assert_int_equal(cap_base64_decode("====", 4, 100, &d, &dl), -EINVAL);
	assert_int_equal(cap_base64_decode("Zh==", 4, 100, &d, &dl), -EINVAL); /* trailing bits */
	assert_int_equal(cap_base64_decode("Zm9vYmFy", 8, 5, &d, &dl), -EMSGSIZE);

	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	char *e = NULL;
	size_t el;
	assert_int_equal(cap_base64_encode(all, sizeof(all), &e, &el), 0);
	assert_int_equal(cap_base64_decode(e, el, 256, &d, &dl), 0);
	assert_int_equal(dl, 256);
	assert_memory_equal(d, all, 256);
	free(e);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_escape_hostile),
		cmocka_unit_test(test_csv_quote),
		cmocka_unit_test(test_url_to_filename),
		cmocka_unit_test(test_url_unescape),
		cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
