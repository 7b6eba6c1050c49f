/* test-store.c - the SQLite store: schema, final-once, resume after a
 * writer was killed with SIGKILL in the middle of a transaction (with the
 * output journal of committed verdicts only), and the
 * migration of an older database's event table. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "server/store.h"

static char dir[] = "/tmp/server-test-store-XXXXXX";
static char path[128];

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/results.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];
	static const char *const sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

/* The child's run: 100 URLs, 40 final, then killed inside a transaction
 * that had finished 10 more. */
static void writer(void)
{
	struct store *st;
	int64_t op, id;
	char url[64];
	if (store_sqlite_open(path, &st) < 0 || store_operation_begin(st, "dac", &op) < 0)
		_exit(2);
	store_tx_begin(st);
	for (int i = 0; i < 100; i++) {
		snprintf(url, sizeof(url), "http://example.test/%d", i);
		if (store_url_add(st, op, url, "firefox", 10, 0.5, &id) < 0)
			_exit(3);
	}
	store_tx_commit(st);
	for (int i = 1; i <= 40; i++)
		if (store_url_final(st, i, i % 2 ? 'B' : 'M', 0, 0) < 0)
			_exit(4);
	/* the output journal: committed for 1..3 (3 without a report), for 60
	 * without a final status (never replayed), killed for 41..50 */
	for (int i = 1; i <= 3; i++)
		if (store_output_add(st, i, 1, "\"line\"\n", i < 3 ? "r.json" : NULL,
		                     i < 3 ? "{}" : NULL) < 0)
			_exit(5);
	if (store_output_add(st, 60, 1, "x\n", NULL, NULL) < 0)
		_exit(6);
	store_tx_begin(st);
	for (int i = 41; i <= 50; i++) {
		store_url_final(st, i, 'E', 0x10004000u, 0);
		store_output_add(st, i, 3, "e\n", "e.json", "{}");
	}
	raise(SIGKILL);
}

struct seen {
	int n;
	int64_t first;
};

static int on_pending(void *ud, int64_t id, const char *url, const char *client, uint32_t time,
                      double prio)
{
	struct seen *s = ud;
	if (s->n++ == 0)
		s->first = id;
	assert_string_equal(client, "firefox");
	assert_int_equal(time, 10);
	return 0;
}

static int on_output(void *ud, int64_t id, int log, const char *line, const char *name,
                     const char *report)
{
	int64_t *ids = ud;
	ids[ids[0] < 8 ? ++ids[0] : 0] = id;
	assert_int_equal(log, 1);
	assert_string_equal(line, "\"line\"\n");
	assert_true((id < 3 && name && report && strcmp(report, "{}") == 0) ||
	            (id == 3 && !name && !report));
	return 0;
}

static void test_resume_after_kill(void **state)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		writer();
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	struct store *st;
	int64_t op, n;
	assert_int_equal(store_sqlite_open(path, &st), 0);
	assert_int_equal(store_operation_resume(st, &op), 0);
	struct seen seen = {0};
	assert_int_equal(store_url_pending(st, op, on_pending, &seen), 0);
	assert_int_equal(seen.n, 60);
	assert_int_equal(seen.first, 41);
	assert_int_equal(store_count(st, op, 'B', &n), 0);
	assert_int_equal(n, 20);
	assert_int_equal(store_count(st, op, 'E', &n), 0);
	assert_int_equal(n, 0);
	int64_t ids[9] = {0};
	assert_int_equal(store_output_pending(st, on_output, ids), 0);
	assert_int_equal(ids[0], 3);
	assert_true(ids[1] == 1 && ids[2] == 2 && ids[3] == 3);
	assert_int_equal(store_output_done(st, 2), 0);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_output_pending(st, on_output, ids), 0);
	assert_true(ids[0] == 2 && ids[1] == 1 && ids[2] == 3);
	/* finished once, never twice */
	assert_int_equal(store_url_final(st, 1, 'M', 0, 0), -EALREADY);
	assert_int_equal(store_url_final(st, 41, 'E', 0x10000111u, 5), 0);
	assert_int_equal(store_url_final(st, 41, 'B', 0, 0), -EALREADY);
	assert_int_equal(store_url_final(st, 42, 'X', 0, 0), -EINVAL);
	assert_int_equal(store_event_add(st, 41, 7, "process", "1/2/2009 3:4:5.6", "1", "/bin/sh",
	                                 "created", "2", "/tmp/x", "/tmp/x -c 'a b'"), 0);
	assert_int_equal(store_event_add(st, 41, 7, "file", "1/2/2009 3:4:5.7", "2", "/tmp/x",
	                                 "Write", "/tmp/y", "-1", NULL), 0);
	assert_int_equal(store_file_add(st, 41, 7, "log/x.zip"), 0);
	assert_int_equal(store_count(st, op, 0, &n), 0);
	assert_int_equal(n, 59);
	/* the input position: recorded with the run, read back on resume */
	struct store_input in = {(char *)"/srv/lists/a.txt", 123456, 789, false}, got;
	assert_int_equal(store_input_set(st, op, &in), 0);
	assert_int_equal(store_input_get(st, op, &got), 0);
	assert_string_equal(got.path, "/srv/lists/a.txt");
	assert_true(got.offset == 123456 && got.line == 789 && !got.done);
	free(got.path);
	assert_int_equal(store_input_get(st, op + 100, &got), -ENOENT);
	assert_int_equal(store_url_known(st, op, "http://example.test/7", "firefox", 10), 1);
	assert_int_equal(store_url_known(st, op, "http://example.test/7", "firefox", 11), 0);
	assert_int_equal(store_url_known(st, op, "http://example.test/7", "chromium", 10), 0);
	assert_int_equal(store_url_known(st, op + 1, "http://example.test/7", "firefox", 10), 0);
	assert_int_equal(store_operation_finish(st, op), 0);
	assert_int_equal(store_operation_resume(st, &op), -ENOENT);
	store_close(st);
}

/* A results database of an older version (event without command_line) is
 * migrated when it is opened to resume; events keep time, pid and the
 * command line. */
static void test_migrate_event_columns(void **state)
{
	char old_path[160];
	snprintf(old_path, sizeof(old_path), "%s/old.db", dir);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(old_path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "CREATE TABLE event(id INTEGER PRIMARY KEY, url INTEGER,"
	                              " group_id INTEGER, type TEXT, time TEXT, process_id TEXT,"
	                              " process TEXT, action TEXT, object1 TEXT, object2 TEXT);"
	                              "INSERT INTO event(type, action) VALUES ('file', 'Write');",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(db);

	struct store *st;
	assert_int_equal(store_sqlite_open(old_path, &st), 0);
	assert_int_equal(store_event_add(st, 0, 3, "process", "1/2/2009 3:4:5.6", "7", "/bin/sh",
	                                 "created", "8", "/usr/bin/x", "x --flag 'a b'"), 0);
	store_close(st);
	assert_int_equal(sqlite3_open(old_path, &db), SQLITE_OK);
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(db,
	                                    "SELECT time, process_id, command_line FROM event"
	                                    " ORDER BY id",
	                                    -1, &q, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW); /* the old row: no command line */
	assert_int_equal(sqlite3_column_type(q, 2), SQLITE_NULL);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "1/2/2009 3:4:5.6");
	assert_string_equal((const char *)sqlite3_column_text(q, 1), "7");
	assert_string_equal((const char *)sqlite3_column_text(q, 2), "x --flag 'a b'");
	assert_int_equal(sqlite3_step(q), SQLITE_DONE);
	sqlite3_finalize(q);
	sqlite3_close(db);
	static const char *const sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char p[200];
		snprintf(p, sizeof(p), "%s%s", old_path, sfx[i]);
		unlink(p);
	}
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resume_after_kill),
		cmocka_unit_test(test_migrate_event_columns),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
