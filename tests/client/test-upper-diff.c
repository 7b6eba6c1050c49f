/* test-upper-diff.c - the end-of-visit overlay upper scan against a real
 * overlay mount (private mount namespace, tmpfs, prefix "monfile-"):
 * create, write, mmap-write, delete, rename, chmod +x, replaced dir,
 * nested created dirs; exactly the expected entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "upper-diff.h"

static char base[] = "/tmp/monfile-ud-XXXXXX";
static char lower[128], upper[128], work[128], merged[128];

static void put(const char *dir, const char *rel, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	FILE *f = fopen(p, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void mk(const char *dir, const char *rel)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static const char *m(const char *rel)
{
	static char p[4][256];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", merged, rel);
	return p[i];
}

static int setup(void **state)
{
	char opts[512];
	(void)state;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	if (!mkdtemp(base))
		return -1;
	if (mount("monfile-ud", base, "tmpfs", 0, "size=64m") < 0)
		return -1;
	snprintf(lower, sizeof(lower), "%s/lower", base);
	snprintf(upper, sizeof(upper), "%s/upper", base);
	snprintf(work, sizeof(work), "%s/work", base);
	snprintf(merged, sizeof(merged), "%s/merged", base);
	if (mkdir(lower, 0755) || mkdir(upper, 0755) || mkdir(work, 0755) || mkdir(merged, 0755))
		return -1;
	put(lower, "a.txt", "a");
	put(lower, "m.bin", "0123456789abcdef");
	put(lower, "d.txt", "d");
	put(lower, "r.txt", "r");
	put(lower, "x.sh", "#!/bin/sh\n");
	mk(lower, "olddir");
	put(lower, "olddir/child", "c");
	mk(lower, "keep");
	put(lower, "keep/c", "c");
	put(lower, "keep/untouched", "u");
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	if (mount("monfile-ovl", merged, "overlay", 0, opts) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	umount2(merged, MNT_DETACH);
	umount2(base, MNT_DETACH); /* tmpfs: everything under it goes */
	rmdir(base);
	return 0;
}

static void do_visit(void)
{
	int fd;
	char *p;

	put(merged, "new.txt", "new");
	fd = open(m("a.txt"), O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	fd = open(m("m.bin"), O_RDWR | O_CLOEXEC); /* mmap write: no fanotify MODIFY */
	assert_true(fd >= 0);
	p = mmap(NULL, 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	memcpy(p, "MMAP", 4);
	assert_int_equal(msync(p, 16, MS_SYNC), 0);
	munmap(p, 16);
	close(fd);
	assert_int_equal(unlink(m("d.txt")), 0);
	assert_int_equal(rename(m("r.txt"), m("r2.txt")), 0);
	assert_int_equal(chmod(m("x.sh"), 0755), 0);
	assert_int_equal(unlink(m("olddir/child")), 0);
	assert_int_equal(rmdir(m("olddir")), 0);
	assert_int_equal(mkdir(m("olddir"), 0755), 0);
	put(merged, "olddir/n", "n");
	assert_int_equal(mkdir(m("newdir"), 0755), 0);
	assert_int_equal(mkdir(m("newdir/sub"), 0755), 0);
	put(merged, "newdir/sub/f", "f");
	put(merged, "keep/c", "changed");
}

static void test_scan(void **state)
{
	static const struct {
		const char *path;
		enum upper_kind kind;
	} want[] = {
		{ "/a.txt", UPPER_MODIFIED },	  { "/d.txt", UPPER_DELETED },
		{ "/keep/c", UPPER_MODIFIED },	  { "/m.bin", UPPER_MODIFIED },
		{ "/new.txt", UPPER_CREATED },	  { "/newdir", UPPER_CREATED },
		{ "/newdir/sub", UPPER_CREATED }, { "/newdir/sub/f", UPPER_CREATED },
		{ "/olddir", UPPER_REPLACED_DIR }, { "/olddir/n", UPPER_CREATED },
		{ "/r.txt", UPPER_DELETED },	  { "/r2.txt", UPPER_CREATED },
		{ "/x.sh", UPPER_MODIFIED },
	};
	struct upper_diff *d = NULL;
	char buf[32] = "";
	(void)state;

	do_visit();
	assert_int_equal(upper_diff_scan(upper, lower, &d), 0);
	for (size_t i = 0; i < d->n; i++)
		printf("# %-12s %s\n", upper_kind_name(d->entries[i].kind), d->entries[i].sandbox_path);
	assert_int_equal(d->n, sizeof(want) / sizeof(want[0]));
	assert_int_equal(d->skipped, 0);
	for (size_t i = 0; i < d->n; i++) {
		assert_string_equal(d->entries[i].sandbox_path, want[i].path);
		assert_int_equal(d->entries[i].kind, want[i].kind);
	}
	const struct upper_entry *e = upper_diff_find(d, "/m.bin");
	assert_non_null(e);
	FILE *f = fopen(e->host_path, "re"); /* evidence: host path holds the new content */
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_memory_equal(buf, "MMAP", 4);
	e = upper_diff_find(d, "/x.sh");
	assert_non_null(e);
	assert_true(e->mode & S_IXUSR);
	e = upper_diff_find(d, "/d.txt");
	assert_non_null(e);
	assert_null(e->host_path);
	assert_null(upper_diff_find(d, "/keep"));
	assert_null(upper_diff_find(d, "/keep/untouched"));
	assert_string_equal(upper_kind_name(UPPER_REPLACED_DIR), "replaced-dir");
	assert_null(upper_kind_name((enum upper_kind)99));
	upper_diff_free(d);
	assert_int_equal(upper_diff_scan("/nonexistent/monfile", lower, &d), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
