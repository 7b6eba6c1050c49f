/* test-store.c - the store's conformance tests, run against both backends
 * (a fixture per backend: SQLite in a temporary file, PostgreSQL in the
 * throw-away cluster whose conninfo tests/lib/pg-cluster.sh run puts in
 * CAPTURE_TEST_PG): schema, final-once, resume after a writer was killed
 * with SIGKILL in the middle of a transaction (with the output journal of
 * committed verdicts only), the leases of shared runs (concurrent claims,
 * expiry, renewal, finished by one owner only), url_finals, a newer schema
 * refused; plus SQLite's migration of an older event table and
 * PostgreSQL's connection errors. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
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

static void sqlite_remove(void)
{
	char p[160];
	static const char *const sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

static int teardown(void **state)
{
	sqlite_remove();
	rmdir(dir);
	return 0;
}

/* A backend under test: open a store, reset to an empty database, run SQL
 * on it directly. */
struct backend {
	const char *name;
	int (*open)(struct store **ret);
	int (*reset)(void);
	int (*exec)(const char *sql);
};

static int sqlite_open(struct store **ret)
{
	return store_sqlite_open(path, ret);
}

static int sqlite_reset(void)
{
	sqlite_remove();
	return 0;
}

static int sqlite_exec(const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -EIO;
}

static const char *pg_conninfo(void)
{
	return getenv("CAPTURE_TEST_PG");
}

static int pg_open(struct store **ret)
{
	char err[256];
	int r = store_pg_open(pg_conninfo(), NULL, NULL, err, sizeof(err), ret);
	if (r < 0)
		fprintf(stderr, "store_pg_open: %s\n", err);
	return r;
}

static int pg_exec(const char *sql)
{
	PGconn *c = PQconnectdb(pg_conninfo());
	PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
	ExecStatusType t = PQresultStatus(res);
	int r = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK ? 0 : -EIO;
	if (r < 0)
		fprintf(stderr, "pg: %s", PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	return r;
}

static int pg_reset(void)
{
	return pg_exec("SET client_min_messages = warning;"
		       "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
}

static const struct backend sqlite_backend = {"sqlite", sqlite_open, sqlite_reset, sqlite_exec};
static const struct backend pg_backend = {"postgresql", pg_open, pg_reset, pg_exec};

/* Per test: an empty database of the backend; PostgreSQL tests need the
 * cluster of pg-cluster.sh (meson test always runs them under it). */
static int setup_backend(void **state)
{
	const struct backend *b = *state;
	if (b == &pg_backend && !pg_conninfo()) {
		fprintf(stderr,
			"CAPTURE_TEST_PG is not set: run under tests/lib/pg-cluster.sh run\n");
		return -1;
	}
	return b->reset();
}

static const struct backend *B(void **state)
{
	return *state;
}

/* The child's run: 100 URLs, 40 final, then killed inside a transaction
 * that had finished 10 more. */
static void writer(const struct backend *b)
{
	struct store *st;
	int64_t op, id;
	char url[64];
	if (b->open(&st) < 0 || store_operation_begin(st, "dac", &op) < 0)
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
		writer(B(state));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	struct store *st;
	int64_t op, n;
	assert_int_equal(B(state)->open(&st), 0);
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
					 "created", "2", "/tmp/x", "/tmp/x -c 'a b'"),
			 0);
	assert_int_equal(store_event_add(st, 41, 7, "file", "1/2/2009 3:4:5.7", "2", "/tmp/x",
					 "Write", "/tmp/y", "-1", NULL),
			 0);
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
					 "created", "8", "/usr/bin/x", "x --flag 'a b'"),
			 0);
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

static int on_nothing(void *ud, int64_t id, const char *url, const char *client, uint32_t time,
		      double prio)
{
	return 0;
}

/* Collects claimed ids (ids[0] = count, up to 63). */
static int on_claim(void *ud, int64_t id, const char *url, const char *client, uint32_t time,
		    double prio)
{
	int64_t *ids = ud;
	if (ids[0] < 63)
		ids[++ids[0]] = id;
	return 0;
}

/* n URLs of a new run; priority of URL i is i % 3 / 2.0 when prio is set. */
static int64_t fill(struct store *st, int n, bool prio)
{
	int64_t op, id;
	char url[64];
	assert_int_equal(store_operation_begin(st, "dac", &op), 0);
	assert_int_equal(store_tx_begin(st), 0);
	for (int i = 1; i <= n; i++) {
		snprintf(url, sizeof(url), "http://example.test/%d", i);
		assert_int_equal(
		    store_url_add(st, op, url, "firefox", 10, prio ? i % 3 / 2.0 : 0.5, &id), 0);
	}
	assert_int_equal(store_tx_commit(st), 0);
	return op;
}

/* Claims in priority then id order; a new URL is queued unleased. */
static void test_claim_order(void **state)
{
	struct store *st;
	assert_int_equal(B(state)->open(&st), 0);
	assert_int_equal(store_set_owner(st, "a"), 0);
	assert_int_equal(store_set_owner(st, ""), -EINVAL);
	int64_t op = fill(st, 9, true), ids[64] = {0};
	/* priorities: 1.0 for 2, 5, 8; 0.5 for 1, 4, 7; 0 for 3, 6, 9 */
	assert_int_equal(store_url_claim(st, op, NULL, 4, 600, on_claim, ids), 4);
	assert_true(ids[1] == 2 && ids[2] == 5 && ids[3] == 8 && ids[4] == 1);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_url_claim(st, op, NULL, 100, 600, on_claim, ids), 5);
	assert_true(ids[1] == 4 && ids[2] == 7 && ids[3] == 3 && ids[4] == 6 && ids[5] == 9);
	assert_int_equal(store_url_claim(st, op, NULL, 100, 600, on_nothing, NULL), 0);
	int64_t id;
	assert_int_equal(store_url_add(st, op, "http://example.test/new", "firefox", 10, 0, &id),
			 0);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_url_claim(st, op, "b", 100, 600, on_claim, ids), 1);
	assert_int_equal(ids[1], id);
	/* other runs are not touched */
	assert_int_equal(store_url_claim(st, op + 1, NULL, 100, 600, on_nothing, NULL), 0);
	store_close(st);
}

#define CLAIMERS   4
#define CLAIM_URLS 2000

/* CLAIMERS processes, each with its own connection, claim 7 at a time
 * until none is left; every URL is claimed exactly once. */
static void test_claim_concurrent(void **state)
{
	struct store *st;
	assert_int_equal(B(state)->open(&st), 0);
	int64_t op = fill(st, CLAIM_URLS, true);
	store_close(st);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pids[CLAIMERS];
	for (int c = 0; c < CLAIMERS; c++) {
		assert_true((pids[c] = fork()) >= 0);
		if (pids[c] > 0)
			continue;
		close(fds[0]);
		char owner[16];
		snprintf(owner, sizeof(owner), "c%d", c);
		if (B(state)->open(&st) < 0 || store_set_owner(st, owner) < 0)
			_exit(2);
		int n;
		int64_t ids[64];
		do {
			ids[0] = 0;
			n = store_url_claim(st, op, NULL, 7, 600, on_claim, ids);
			if (n < 0 || write(fds[1], &ids[1], sizeof(int64_t) * ids[0]) < 0)
				_exit(3);
		} while (n > 0);
		store_close(st);
		_exit(0);
	}
	close(fds[1]);
	static unsigned char seen[CLAIM_URLS + 1];
	memset(seen, 0, sizeof(seen));
	int64_t id;
	int total = 0;
	while (read(fds[0], &id, sizeof(id)) == sizeof(id)) {
		assert_true(id >= 1 && id <= CLAIM_URLS);
		assert_int_equal(seen[id]++, 0);
		total++;
	}
	close(fds[0]);
	for (int c = 0; c < CLAIMERS; c++) {
		int status;
		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(total, CLAIM_URLS);
}

/* An expired lease is claimed again, a renewed one is not; a URL finished
 * by one owner is -EALREADY for the other. */
static void test_lease_expiry(void **state)
{
	struct store *a, *b;
	assert_int_equal(B(state)->open(&a), 0);
	assert_int_equal(B(state)->open(&b), 0);
	assert_int_equal(store_set_owner(a, "server-a"), 0);
	assert_int_equal(store_set_owner(b, "server-b"), 0);
	int64_t op = fill(a, 6, false), ids[64] = {0};
	assert_int_equal(store_url_claim(a, op, NULL, 2, 1, on_claim, ids), 2);
	assert_true(ids[1] == 1 && ids[2] == 2);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_url_claim(b, op, NULL, 2, 1, on_claim, ids), 2);
	assert_true(ids[1] == 3 && ids[2] == 4);
	assert_int_equal(store_lease_renew(a, NULL, 600), 2);
	assert_int_equal(store_lease_renew(a, "nobody", 600), 0);
	struct timespec ts = {1, 300000000};
	nanosleep(&ts, NULL);
	/* b's leases ran out: 3 and 4 come back (with 5, 6); a's were renewed */
	memset(ids, 0, sizeof(ids));
	assert_int_equal(store_url_claim(b, op, "server-c", 10, 600, on_claim, ids), 4);
	assert_true(ids[1] == 3 && ids[2] == 4 && ids[3] == 5 && ids[4] == 6);
	/* finished once, by the first of two owners */
	assert_int_equal(store_url_final(a, 1, 'E', 0x10004000u, 7), 0);
	assert_int_equal(store_url_final(b, 1, 'B', 0, 0), -EALREADY);
	assert_int_equal(store_url_final(b, 3, 'M', 0, 0), 0);
	assert_int_equal(store_url_final(b, 999, 'M', 0, 0), -EALREADY);
	/* a final URL keeps no claim: renewal counts only open ones */
	assert_int_equal(store_lease_renew(a, NULL, 600), 1);
	store_close(a);
	store_close(b);
}

struct finals {
	int n;
	struct store_final f[4];
	char by[4][32];
};

static int on_final(void *ud, const struct store_final *f)
{
	struct finals *s = ud;
	if (s->n < 4) {
		s->f[s->n] = *f;
		snprintf(s->by[s->n], sizeof(s->by[0]), "%s", f->finished_by);
		s->f[s->n].url = s->f[s->n].client = s->f[s->n].finished_by = NULL;
	}
	s->n++;
	return 0;
}

static int on_final_stop(void *ud, const struct store_final *f)
{
	return -ECANCELED;
}

/* url_finals: the run's final URLs in id order, with who and when. */
static void test_url_finals(void **state)
{
	struct store *st;
	assert_int_equal(B(state)->open(&st), 0);
	assert_int_equal(store_set_owner(st, "host:42"), 0);
	int64_t op = fill(st, 5, true);
	time_t before = time(NULL);
	assert_int_equal(store_url_final(st, 4, 'M', 0, 0), 0);
	assert_int_equal(store_url_final(st, 2, 'E', 0x10004000u, 9), 0);
	struct finals s = {0};
	assert_int_equal(store_url_finals(st, op, on_final, &s), 0);
	assert_int_equal(s.n, 2);
	assert_true(s.f[0].id == 2 && s.f[0].status == 'E' && s.f[0].major == 0x10004000u &&
		    s.f[0].minor == 9 && s.f[0].time == 10 && s.f[0].priority == 1.0);
	assert_true(s.f[1].id == 4 && s.f[1].status == 'M' && s.f[1].major == 0 &&
		    s.f[1].priority == 0.5);
	assert_string_equal(s.by[0], "host:42");
	assert_true(s.f[0].finished >= before - 5 && s.f[0].finished <= before + 60);
	assert_int_equal(store_url_finals(st, op, on_final_stop, NULL), -ECANCELED);
	/* the store stays usable after a stopped iteration */
	int64_t n;
	assert_int_equal(store_count(st, op, 0, &n), 0);
	assert_int_equal(n, 3);
	store_close(st);
}

/* A database whose schema is newer than ours is refused, not altered. */
static void test_newer_schema(void **state)
{
	struct store *st;
	assert_int_equal(B(state)->open(&st), 0);
	store_close(st);
	assert_int_equal(B(state)->exec("UPDATE capture_meta SET version = 99"), 0);
	assert_int_equal(B(state)->open(&st), -EPROTO);
}

/* A server error (a constraint) is -EINVAL with its message kept, and the
 * store stays usable. */
static void test_errors(void **state)
{
	struct store *st;
	int64_t op, id, n;
	assert_int_equal(B(state)->open(&st), 0);
	assert_int_equal(store_operation_begin(st, "dac", &op), 0);
	assert_int_equal(store_url_add(st, op, NULL, "firefox", 10, 0.5, &id), -EINVAL);
	assert_true(strlen(store_errmsg(st)) > 0);
	assert_int_equal(store_url_add(st, op, "http://a.test/", "firefox", 10, 0.5, &id), 0);
	assert_int_equal(store_count(st, op, 0, &n), 0);
	assert_int_equal(n, 1);
	store_close(st);
}

/* Connections that cannot be made: -ECONNREFUSED with libpq's message;
 * the original's JDBC form is understood. */
static void test_pg_connect_errors(void **state)
{
	struct store *st = NULL;
	char err[256];
	assert_int_equal(
	    store_pg_open("host=/nonexistent-capture dbname=x", NULL, NULL, err, sizeof(err), &st),
	    -ECONNREFUSED);
	assert_true(strlen(err) > 0);
	assert_int_equal(
	    store_pg_open("jdbc:postgresql://127.0.0.1:1/capture", "u", "p", err, sizeof(err), &st),
	    -ECONNREFUSED);
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_null(st);
}

/* PostgreSQL pipelines the writes of a transaction: one that fails (a
 * journal entry of an unknown URL: a foreign key) is reported by the next
 * op that waits for an answer or by the commit, which rolls everything
 * back; the connection is usable afterwards.  URL ids reserved in the
 * transaction are the rows' ids. */
static void test_pg_pipelined_tx(void **state)
{
	struct store *st;
	int64_t op, id, id2, n;
	assert_int_equal(pg_reset(), 0);
	assert_int_equal(pg_open(&st), 0);
	assert_int_equal(store_operation_begin(st, "dac", &op), 0);
	assert_int_equal(store_tx_begin(st), 0);
	assert_int_equal(store_url_add(st, op, "http://a.test/", "firefox", 10, 0.5, &id), 0);
	assert_int_equal(store_output_add(st, id + 1000, 1, "x\n", NULL, NULL), 0); /* queued */
	assert_int_equal(store_tx_commit(st), -EINVAL);
	assert_true(strlen(store_errmsg(st)) > 0);
	assert_int_equal(store_count(st, op, 0, &n), 0);
	assert_int_equal(n, 0);
	/* the same failure seen by an op that needs an answer */
	assert_int_equal(store_tx_begin(st), 0);
	assert_int_equal(store_output_add(st, 424242, 1, "x\n", NULL, NULL), 0);
	assert_int_equal(store_count(st, op, 0, &n), -EINVAL);
	assert_true(store_tx_commit(st) < 0);
	/* a good transaction: the reserved ids are the stored ones */
	assert_int_equal(store_tx_begin(st), 0);
	assert_int_equal(store_url_add(st, op, "http://b.test/", "firefox", 10, 0.5, &id), 0);
	assert_int_equal(store_url_add(st, op, "http://c.test/", "firefox", 10, 0.5, &id2), 0);
	assert_int_equal(store_output_add(st, id2, 1, "c\n", NULL, NULL), 0);
	assert_int_equal(store_url_final(st, id2, 'B', 0, 0), 0);
	assert_int_equal(store_tx_commit(st), 0);
	assert_true(id2 > id);
	int64_t ids[64] = {0};
	assert_int_equal(store_url_claim(st, op, "x", 10, 60, on_claim, ids), 1);
	assert_int_equal(ids[1], id);
	assert_int_equal(store_url_final(st, id2, 'M', 0, 0), -EALREADY);
	store_close(st);
}

/* A conformance test once per backend, named after it. */
#define BOTH(f)                                                                                    \
	{#f "/sqlite", f, setup_backend, NULL, (void *)&sqlite_backend},                           \
	{                                                                                          \
#f "/postgresql", f, setup_backend, NULL, (void *)&pg_backend                      \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_resume_after_kill),
	    BOTH(test_claim_order),
	    BOTH(test_claim_concurrent),
	    BOTH(test_lease_expiry),
	    BOTH(test_url_finals),
	    BOTH(test_newer_schema),
	    BOTH(test_errors),
	    cmocka_unit_test(test_migrate_event_columns),
	    cmocka_unit_test(test_pg_connect_errors),
	    cmocka_unit_test(test_pg_pipelined_tx),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
