/* test-gvdb.c - the GVDB reader against dconf itself: a database written by
 * `dconf compile` is parsed, and every value's text must equal what
 * `dconf read` prints for that key; then hostile input (every truncation,
 * byte flips, parent cycles, out-of-range pointers) must be refused or
 * read without any out-of-bounds access (ASan/UBSan build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gvdb.h"

struct fixture {
	char dir[64];
	unsigned char *db;
	size_t len;
};

/* GVariant text as dconf's keyfile wants it. */
static const char keyfile[] = "[org/capture/t]\n"
			      "s='hello world'\n"
			      "quote=\"it's\"\n"
			      "both='a\\'b\"c'\n"
			      "esc='tab\\there\\nnl \\\\ back'\n"
			      "utf='gr\xc3\xbc\xc3\x9f \xe2\x82\xac'\n"
			      "empty=''\n"
			      "b1=true\n"
			      "b0=false\n"
			      "i=-42\n"
			      "imax=2147483647\n"
			      "u=uint32 4294967295\n"
			      "x=int64 -9223372036854775808\n"
			      "t=uint64 18446744073709551615\n"
			      "y=byte 0x7f\n"
			      "n=int16 -300\n"
			      "q=uint16 65535\n"
			      "d=0.1\n"
			      "d2=-1e+300\n"
			      "d3=2.0\n"
			      "as=['a', 'b c', \"d'e\"]\n"
			      "asempty=@as []\n"
			      "o=objectpath '/org/x'\n"
			      "tuple=(1, 'x')\n"
			      "[org/capture/t/sub/deeper]\n"
			      "k='deep'\n";

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char cmd[512], path[128];
	FILE *fp;

	if (!f)
		return -1;
	*state = f;
	strcpy(f->dir, "/tmp/test-gvdb.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	(void)snprintf(path, sizeof(path), "%s/kf", f->dir);
	if (mkdir(path, 0700) < 0)
		return -1;
	(void)snprintf(path, sizeof(path), "%s/kf/1", f->dir);
	fp = fopen(path, "w");
	if (!fp)
		return -1;
	fputs(keyfile, fp);
	fclose(fp);
	(void)snprintf(path, sizeof(path), "%s/profile", f->dir);
	fp = fopen(path, "w");
	if (!fp)
		return -1;
	fputs("user-db:user\n", fp);
	fclose(fp);
	(void)snprintf(cmd, sizeof(cmd), "mkdir -p %s/dconf && dconf compile %s/dconf/user %s/kf",
		       f->dir, f->dir, f->dir);
	if (system(cmd) != 0)
		return -1;
	(void)snprintf(path, sizeof(path), "%s/dconf/user", f->dir);
	fp = fopen(path, "rb");
	if (!fp)
		return -1;
	f->db = malloc(1 << 20);
	f->len = f->db ? fread(f->db, 1, 1 << 20, fp) : 0;
	fclose(fp);
	return f->len > 24 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	if (!f)
		return 0;
	if (f->dir[0]) {
		(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# cleanup of %s failed\n", f->dir);
	}
	free(f->db);
	free(f);
	return 0;
}

/* What `dconf read KEY` prints for the fixture's database. */
static void dconf_read(const struct fixture *f, const char *key, char *out, size_t len)
{
	char cmd[512];
	FILE *p;
	size_t n;

	(void)snprintf(cmd, sizeof(cmd),
		       "XDG_CONFIG_HOME=%s DCONF_PROFILE=%s/profile dconf read '%s'", f->dir,
		       f->dir, key);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	if (n && out[n - 1] == '\n')
		out[n - 1] = '\0';
	assert_int_equal(pclose(p), 0);
}

static void test_against_dconf(void **state)
{
	struct fixture *f = *state;
	struct gvdb_entry *e;
	size_t n, skipped, compared = 0;
	char want[8192];

	assert_int_equal(gvdb_parse(f->db, f->len, &e, &n, &skipped), 0);
	assert_int_equal(skipped, 0);
	assert_int_equal(n, 24);
	for (size_t i = 0; i < n; i++) {
		dconf_read(f, e[i].key, want, sizeof(want));
		fprintf(stderr, "# %-28s %-40s dconf: %s\n", e[i].key, e[i].value, want);
		if (strcmp(e[i].key, "/org/capture/t/tuple") == 0) {
			/* not one of the types the reader prints */
			assert_string_equal(e[i].value, "(GVariant '(is)', 6 bytes)");
			continue;
		}
		assert_string_equal(e[i].value, want);
		compared++;
	}
	assert_int_equal(compared, 23);
	assert_string_equal(e[0].key, "/org/capture/t/as"); /* sorted */
	assert_string_equal(e[n - 1].key, "/org/capture/t/y");
	gvdb_entries_free(e, n);
}

static void check_any(const unsigned char *d, size_t len)
{
	struct gvdb_entry *e = NULL;
	size_t n = 0, skipped = 0;
	int r = gvdb_parse(d, len, &e, &n, &skipped);
	assert_true(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT);
	if (r < 0) {
		assert_null(e);
		assert_int_equal(n, 0);
	}
	for (size_t i = 0; i < n; i++) {
		assert_true(strlen(e[i].key) <= GVDB_KEY_MAX * 4);
		assert_true(strlen(e[i].value) < GVDB_VALUE_MAX);
	}
	gvdb_entries_free(e, n);
}

static void test_hostile(void **state)
{
	struct fixture *f = *state;
	unsigned char *d = malloc(f->len);
	uint32_t seed = 12345;

	assert_non_null(d);
	/* every truncation: each copy is a separate allocation, so ASan sees any over-read */
	for (size_t l = 0; l <= f->len; l++) {
		unsigned char *t = malloc(l ? l : 1);
		assert_non_null(t);
		memcpy(t, f->db, l);
		check_any(t, l);
		free(t);
	}
	/* every byte set to 0x00, 0xff and 0x80 in turn */
	for (size_t i = 0; i < f->len; i++) {
		static const unsigned char vals[] = {0x00, 0xff, 0x80, 0x01};
		for (size_t v = 0; v < sizeof(vals); v++) {
			memcpy(d, f->db, f->len);
			d[i] = vals[v];
			check_any(d, f->len);
		}
	}
	/* random multi-byte corruption */
	for (int round = 0; round < 2000; round++) {
		memcpy(d, f->db, f->len);
		for (int k = 0; k < 8; k++) {
			seed = seed * 1103515245u + 12345u;
			d[(seed >> 8) % f->len] = (unsigned char)(seed >> 24);
		}
		check_any(d, f->len);
	}
	/* byte-swapped signature and a wrong version */
	memcpy(d, f->db, f->len);
	memcpy(d, "raVGtnai", 8);
	assert_int_equal(gvdb_parse(d, f->len, &(struct gvdb_entry *){NULL}, &(size_t){0}, NULL),
			 -EPROTONOSUPPORT);
	memcpy(d, f->db, f->len);
	d[8] = 1;
	assert_int_equal(gvdb_parse(d, f->len, &(struct gvdb_entry *){NULL}, &(size_t){0}, NULL),
			 -EPROTONOSUPPORT);
	assert_int_equal(
	    gvdb_parse(d, GVDB_FILE_MAX + 1, &(struct gvdb_entry *){NULL}, &(size_t){0}, NULL),
	    -EFBIG);
	free(d);
}

/* A hand-made table: item 0 is its own parent, item 1 points past the
 * table, item 2 is fine ("/a" = 'x'), item 3 has a key beyond the file. */
static void test_cycles(void **state)
{
	unsigned char db[256] = "GVariant";
	struct gvdb_entry *e;
	size_t n, skipped;
	size_t tbl = 24, items = tbl + 8, data = items + 4 * 24;
	(void)state;

#define PUT32(off, v)                                                                              \
	do {                                                                                       \
		uint32_t v_ = (v);                                                                 \
		db[(off)] = (unsigned char)v_, db[(off) + 1] = (unsigned char)(v_ >> 8);           \
		db[(off) + 2] = (unsigned char)(v_ >> 16),                                         \
			   db[(off) + 3] = (unsigned char)(v_ >> 24);                              \
	} while (0)
	PUT32(16, (uint32_t)tbl);
	PUT32(20, (uint32_t)data);
	PUT32(tbl, 0);
	PUT32(tbl + 4, 0);
	memcpy(db + data, "/a\0x\0\0s", 8); /* key "/a" at data, value 'x' at data+3 */
	for (size_t i = 0; i < 4; i++) {
		size_t it = items + i * 24;
		PUT32(it + 4, i == 0 ? 0 : i == 1 ? 99 : 0xffffffffu);
		PUT32(it + 8, (uint32_t)(i == 3 ? 250 : data));
		db[it + 12] = i == 3 ? 100 : 2;
		db[it + 14] = 'v';
		PUT32(it + 16, (uint32_t)data + 3);
		PUT32(it + 20, (uint32_t)data + 7);
	}
#undef PUT32
	assert_int_equal(gvdb_parse(db, sizeof(db), &e, &n, &skipped), 0);
	assert_int_equal(n, 1);
	assert_int_equal(skipped, 3);
	assert_string_equal(e[0].key, "/a");
	assert_string_equal(e[0].value, "'x'");
	gvdb_entries_free(e, n);
}

static void test_format(void **state)
{
	char buf[64], small[12];
	(void)state;
	gvdb_format_value("i", (const unsigned char *)"\1\0\0", 3, buf, sizeof(buf));
	assert_string_equal(buf, "(invalid GVariant i: 3 bytes)");
	gvdb_format_value("s", (const unsigned char *)"ab", 2, buf, sizeof(buf)); /* no NUL */
	assert_string_equal(buf, "(GVariant 's', 2 bytes)");
	gvdb_format_value("s", (const unsigned char *)"a\xff\x01", 4, buf, sizeof(buf));
	assert_string_equal(buf, "'a\\xff\\u0001'");
	gvdb_format_value("b", (const unsigned char *)"\2", 1, buf, sizeof(buf));
	assert_string_equal(buf, "(GVariant 'b', 1 bytes)");
	gvdb_format_value("s", (const unsigned char *)"0123456789abcdef", 17, small, sizeof(small));
	assert_string_equal(small, "'0123456...");
	gvdb_format_value("as", (const unsigned char *)"a\0\5", 3, buf,
			  sizeof(buf)); /* bad offset */
	assert_string_equal(buf, "(GVariant 'as', 3 bytes)");
	gvdb_format_value("as", (const unsigned char *)"a\0b\0\2\4", 6, buf, sizeof(buf));
	assert_string_equal(buf, "['a', 'b']");
	gvdb_format_value("a{sv}", (const unsigned char *)"", 0, buf, sizeof(buf));
	assert_string_equal(buf, "(GVariant 'a{sv}', 0 bytes)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_against_dconf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	    cmocka_unit_test(test_cycles),
	    cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
