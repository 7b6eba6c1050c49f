/* store-sqlite.c - the SQLite store (see store.h).
 *
 * One file in WAL mode with synchronous=NORMAL: a committed transaction
 * survives a kill -9 of the server (not a power cut, which would lose at
 * most the last transactions; the URLs then simply run again).  Every
 * statement is prepared once and bound, never built from strings.  One
 * server per file: leases (url_claim) use this host's clock and exist so
 * that the ops behave as PostgreSQL's do.  capture_meta holds the schema
 * version; migrate() brings an older file up to it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "macro.h"
#include "store.h"

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_OP_BEGIN,
	ST_OP_RESUME,
	ST_OP_FINISH,
	ST_URL_ADD,
	ST_URL_FINAL,
	ST_URL_ERROR,
	ST_URL_PENDING,
	ST_EVENT_ADD,
	ST_FILE_ADD,
	ST_COUNT,
	ST_COUNT_NULL,
	ST_OUTPUT_ADD,
	ST_OUTPUT_DONE,
	ST_OUTPUT_PENDING,
	ST_INPUT_SET,
	ST_INPUT_GET,
	ST_URL_KNOWN,
	ST_BEGIN_IMMEDIATE,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_CLAIM_SELECT,
	ST_CLAIM_SET,
	ST_RENEW,
	ST_FINALS,
	ST_LEASE_RELEASE,
	ST_OP_LAST,
	ST_LINE_KEEP,
	ST_FINAL_LINES,
	ST_MAX,
};

static const char *const stmt_sql[ST_MAX] = {
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_OP_BEGIN] = "INSERT INTO operation(started, algorithm) VALUES (?, ?)",
    [ST_OP_RESUME] = "SELECT id FROM operation WHERE finished IS NULL ORDER BY id DESC LIMIT 1",
    [ST_OP_FINISH] = "UPDATE operation SET finished = ? WHERE id = ?",
    [ST_URL_ADD] = "INSERT INTO url(operation, url, client, time, priority) VALUES (?,?,?,?,?)",
    [ST_URL_FINAL] = "UPDATE url SET status = ?, visited = ?, finished_by = ?"
		     " WHERE id = ? AND status IS NULL",
    [ST_URL_ERROR] = "INSERT INTO error(url, major, minor, time) VALUES (?,?,?,?)",
    [ST_URL_PENDING] = "SELECT id, url, client, time, priority FROM url"
		       " WHERE operation = ? AND status IS NULL ORDER BY id",
    [ST_EVENT_ADD] = "INSERT INTO event(url, group_id, type, time, process_id, process,"
		     " action, object1, object2, command_line) VALUES (?,?,?,?,?,?,?,?,?,?)",
    [ST_FILE_ADD] = "INSERT INTO file(url, group_id, path) VALUES (?,?,?)",
    [ST_COUNT] = "SELECT count(*) FROM url WHERE operation = ? AND status = ?",
    [ST_COUNT_NULL] = "SELECT count(*) FROM url WHERE operation = ? AND status IS NULL",
    [ST_OUTPUT_ADD] = "INSERT OR REPLACE INTO pending_output(url, log, line, report_name, report)"
		      " VALUES (?,?,?,?,?)",
    [ST_OUTPUT_DONE] = "DELETE FROM pending_output WHERE url = ?",
    [ST_OUTPUT_PENDING] = "SELECT p.url, p.log, p.line, p.report_name, p.report"
			  " FROM pending_output p JOIN url u ON u.id = p.url"
			  " WHERE u.status IS NOT NULL ORDER BY p.url",
    [ST_INPUT_SET] = "UPDATE operation SET input = ?, input_offset = ?, input_line = ?,"
		     " input_done = ? WHERE id = ?",
    [ST_INPUT_GET] = "SELECT input, input_offset, input_line, input_done FROM operation"
		     " WHERE id = ?",
    [ST_URL_KNOWN] = "SELECT 1 FROM url WHERE operation = ? AND url = ? AND client = ?"
		     " AND time = ? LIMIT 1",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_SAVEPOINT] = "SAVEPOINT claim",
    [ST_RELEASE] = "RELEASE claim",
    [ST_CLAIM_SELECT] = "SELECT id, url, client, time, priority FROM url"
			" WHERE operation = ? AND status IS NULL"
			" AND (lease_until IS NULL OR lease_until < ?)"
			" ORDER BY priority DESC, id LIMIT ?",
    [ST_CLAIM_SET] = "UPDATE url SET owner = ?, lease_until = ? WHERE id = ?",
    [ST_RENEW] = "UPDATE url SET lease_until = ? WHERE owner = ? AND status IS NULL",
    [ST_FINALS] = "SELECT u.id, u.url, u.client, u.time, u.priority, u.status,"
		  " coalesce(e.major, 0), coalesce(e.minor, 0), u.visited,"
		  " coalesce(u.finished_by, '')"
		  " FROM url u LEFT JOIN error e ON e.url = u.id"
		  " WHERE u.operation = ? AND u.status IS NOT NULL ORDER BY u.id",
    [ST_LEASE_RELEASE] = "UPDATE url SET owner = NULL, lease_until = NULL"
			 " WHERE operation = ? AND owner = ? AND status IS NULL",
    [ST_OP_LAST] = "SELECT max(id) FROM operation",
    [ST_LINE_KEEP] = "UPDATE url SET final_log = ?, final_line = ? WHERE id = ?",
    [ST_FINAL_LINES] = "SELECT id, final_log, final_line FROM url"
		       " WHERE operation = ? AND final_line IS NOT NULL ORDER BY visited, id",
};

/* The schema version this file writes (capture_meta): 2 added the leases
 * and finished_by, 3 the final line kept with its URL (export). */
#define SQLITE_SCHEMA_VERSION 3

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS capture_meta(version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS operation(id INTEGER PRIMARY KEY, started REAL NOT NULL,"
    " finished REAL, algorithm TEXT);"
    "CREATE TABLE IF NOT EXISTS url(id INTEGER PRIMARY KEY, operation INTEGER NOT NULL"
    " REFERENCES operation(id), url TEXT NOT NULL, client TEXT NOT NULL,"
    " time INTEGER NOT NULL, priority REAL NOT NULL,"
    " status TEXT CHECK(status IN ('B','M','E')), visited REAL);"
    "CREATE INDEX IF NOT EXISTS url_pending ON url(operation, status);"
    "CREATE INDEX IF NOT EXISTS url_lookup ON url(operation, url);"
    "CREATE TABLE IF NOT EXISTS url_operation(url INTEGER NOT NULL REFERENCES url(id),"
    " operation INTEGER NOT NULL, group_id INTEGER, started REAL, finished REAL,"
    " status TEXT);"
    "CREATE TABLE IF NOT EXISTS event(id INTEGER PRIMARY KEY, url INTEGER, group_id INTEGER,"
    " type TEXT, time TEXT, process_id TEXT, process TEXT, action TEXT, object1 TEXT,"
    " object2 TEXT, command_line TEXT);"
    "CREATE TABLE IF NOT EXISTS error(id INTEGER PRIMARY KEY, url INTEGER, major INTEGER,"
    " minor INTEGER, time REAL);"
    "CREATE TABLE IF NOT EXISTS file(id INTEGER PRIMARY KEY, url INTEGER, group_id INTEGER,"
    " path TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS pending_output(url INTEGER PRIMARY KEY REFERENCES url(id),"
    " log INTEGER NOT NULL, line TEXT NOT NULL, report_name TEXT, report TEXT);";

struct store_sqlite {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *st[ST_MAX];
	char owner[256];
};

static double now_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct store_sqlite *S(struct store *st)
{
	return (struct store_sqlite *)st;
}

/* Resets a statement and maps the step result to 0 / -errno. */
static int finish_step(sqlite3_stmt *s, int rc)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	rc &= 0xff; /* extended result codes are on */
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY
	       : rc == SQLITE_FULL			? -ENOSPC
	       : rc == SQLITE_CONSTRAINT		? -EINVAL
							: -EIO;
}

static int exec_simple(struct store *st, enum stmt which)
{
	sqlite3_stmt *s = S(st)->st[which];
	return finish_step(s, sqlite3_step(s));
}

static void sqlite_close(struct store *st)
{
	struct store_sqlite *q = S(st);
	for (int i = 0; i < ST_MAX; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	free(q);
}

static int sqlite_tx_begin(struct store *st)
{
	return exec_simple(st, ST_BEGIN);
}

static int sqlite_tx_commit(struct store *st)
{
	return exec_simple(st, ST_COMMIT);
}

static int sqlite_operation_begin(struct store *st, const char *alg, int64_t *ret_op)
{
	sqlite3_stmt *s = S(st)->st[ST_OP_BEGIN];
	sqlite3_bind_double(s, 1, now_real());
	sqlite3_bind_text(s, 2, alg, -1, SQLITE_TRANSIENT);
	int r = finish_step(s, sqlite3_step(s));
	if (r < 0)
		return r;
	*ret_op = sqlite3_last_insert_rowid(S(st)->db);
	return 0;
}

static int sqlite_operation_resume(struct store *st, int64_t *ret_op)
{
	sqlite3_stmt *s = S(st)->st[ST_OP_RESUME];
	int rc = sqlite3_step(s);
	int64_t op = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	int r = finish_step(s, rc);
	if (r < 0)
		return r;
	if (rc != SQLITE_ROW)
		return -ENOENT;
	*ret_op = op;
	return 0;
}

static int sqlite_operation_finish(struct store *st, int64_t op)
{
	sqlite3_stmt *s = S(st)->st[ST_OP_FINISH];
	sqlite3_bind_double(s, 1, now_real());
	sqlite3_bind_int64(s, 2, op);
	return finish_step(s, sqlite3_step(s));
}

static int sqlite_url_add(struct store *st, int64_t op, const char *url, const char *client,
			  uint32_t time, double priority, int64_t *ret_id)
{
	sqlite3_stmt *s = S(st)->st[ST_URL_ADD];
	sqlite3_bind_int64(s, 1, op);
	sqlite3_bind_text(s, 2, url, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, client, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, time);
	sqlite3_bind_double(s, 5, priority);
	int r = finish_step(s, sqlite3_step(s));
	if (r < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(S(st)->db);
	return 0;
}

static int sqlite_url_final(struct store *st, int64_t id, char status, uint32_t major,
			    uint32_t minor)
{
	if (status != 'B' && status != 'M' && status != 'E')
		return -EINVAL;
	struct store_sqlite *q = S(st);
	char txt[2] = {status, 0};
	double now = now_real();
	sqlite3_stmt *s = q->st[ST_URL_FINAL];
	sqlite3_bind_text(s, 1, txt, 1, SQLITE_TRANSIENT);
	sqlite3_bind_double(s, 2, now);
	if (q->owner[0])
		sqlite3_bind_text(s, 3, q->owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, id);
	int r = finish_step(s, sqlite3_step(s));
	if (r < 0)
		return r;
	if (sqlite3_changes(q->db) == 0)
		return -EALREADY; /* unknown ids are rare; both mean "not done now" */
	if (status != 'E')
		return 0;
	s = q->st[ST_URL_ERROR];
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, major);
	sqlite3_bind_int64(s, 3, minor);
	sqlite3_bind_double(s, 4, now);
	return finish_step(s, sqlite3_step(s));
}

static int sqlite_url_pending(struct store *st, int64_t op, store_url_fn fn, void *userdata)
{
	sqlite3_stmt *s = S(st)->st[ST_URL_PENDING];
	sqlite3_bind_int64(s, 1, op);
	int rc, r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *url = (const char *)sqlite3_column_text(s, 1);
		const char *client = (const char *)sqlite3_column_text(s, 2);
		r = fn(userdata, sqlite3_column_int64(s, 0), url ? url : "", client ? client : "",
		       (uint32_t)sqlite3_column_int64(s, 3), sqlite3_column_double(s, 4));
		if (r < 0)
			break;
	}
	int e = finish_step(s, rc);
	return r < 0 ? r : e;
}

static int sqlite_event_add(struct store *st, int64_t url_id, uint32_t group, const char *type,
			    const char *time, const char *pid, const char *process,
			    const char *action, const char *o1, const char *o2, const char *cmdline)
{
	sqlite3_stmt *s = S(st)->st[ST_EVENT_ADD];
	const char *txt[] = {type, time, pid, process, action, o1, o2, cmdline};
	if (url_id > 0)
		sqlite3_bind_int64(s, 1, url_id);
	sqlite3_bind_int64(s, 2, group);
	for (int i = 0; i < (int)ELEMENTSOF(txt); i++)
		if (txt[i])
			sqlite3_bind_text(s, 3 + i, txt[i], -1, SQLITE_TRANSIENT);
	return finish_step(s, sqlite3_step(s));
}

static int sqlite_file_add(struct store *st, int64_t url_id, uint32_t group, const char *path)
{
	sqlite3_stmt *s = S(st)->st[ST_FILE_ADD];
	if (url_id > 0)
		sqlite3_bind_int64(s, 1, url_id);
	sqlite3_bind_int64(s, 2, group);
	sqlite3_bind_text(s, 3, path, -1, SQLITE_TRANSIENT);
	return finish_step(s, sqlite3_step(s));
}

static int sqlite_count(struct store *st, int64_t op, char status, int64_t *ret)
{
	char txt[2] = {status, 0};
	sqlite3_stmt *s = S(st)->st[status ? ST_COUNT : ST_COUNT_NULL];
	sqlite3_bind_int64(s, 1, op);
	if (status)
		sqlite3_bind_text(s, 2, txt, 1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	int r = finish_step(s, rc);
	if (r < 0)
		return r;
	*ret = n;
	return 0;
}

static int sqlite_output_add(struct store *st, int64_t url_id, int log, const char *line,
			     const char *report_name, const char *report)
{
	sqlite3_stmt *s = S(st)->st[ST_OUTPUT_ADD];
	sqlite3_bind_int64(s, 1, url_id);
	sqlite3_bind_int(s, 2, log);
	sqlite3_bind_text(s, 3, line, -1, SQLITE_STATIC);
	if (report_name && report) {
		sqlite3_bind_text(s, 4, report_name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, report, -1, SQLITE_STATIC);
	}
	int r = finish_step(s, sqlite3_step(s));
	if (r < 0)
		return r;
	/* the line stays with its URL after the journal entry goes (export) */
	s = S(st)->st[ST_LINE_KEEP];
	sqlite3_bind_int(s, 1, log);
	sqlite3_bind_text(s, 2, line, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, url_id);
	return finish_step(s, sqlite3_step(s));
}

static int sqlite_output_done(struct store *st, int64_t url_id)
{
	sqlite3_stmt *s = S(st)->st[ST_OUTPUT_DONE];
	sqlite3_bind_int64(s, 1, url_id);
	return finish_step(s, sqlite3_step(s));
}

static int sqlite_output_pending(struct store *st, store_output_fn fn, void *userdata)
{
	sqlite3_stmt *s = S(st)->st[ST_OUTPUT_PENDING];
	int rc, r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(s, 2);
		const char *name = (const char *)sqlite3_column_text(s, 3);
		const char *report = (const char *)sqlite3_column_text(s, 4);
		r = fn(userdata, sqlite3_column_int64(s, 0), sqlite3_column_int(s, 1),
		       line ? line : "", name, report);
		if (r < 0)
			break;
	}
	int e = finish_step(s, rc);
	return r < 0 ? r : e;
}

static int sqlite_input_set(struct store *st, int64_t op, const struct store_input *in)
{
	sqlite3_stmt *s = S(st)->st[ST_INPUT_SET];
	if (in->path)
		sqlite3_bind_text(s, 1, in->path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, in->offset);
	sqlite3_bind_int64(s, 3, in->line);
	sqlite3_bind_int(s, 4, in->done);
	sqlite3_bind_int64(s, 5, op);
	return finish_step(s, sqlite3_step(s));
}

static int sqlite_input_get(struct store *st, int64_t op, struct store_input *ret)
{
	sqlite3_stmt *s = S(st)->st[ST_INPUT_GET];
	sqlite3_bind_int64(s, 1, op);
	int rc = sqlite3_step(s);
	struct store_input in = {0};
	if (rc == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(s, 0);
		if (p && !(in.path = strdup(p)))
			rc = SQLITE_NOMEM;
		in.offset = sqlite3_column_int64(s, 1);
		in.line = sqlite3_column_int64(s, 2);
		in.done = sqlite3_column_int(s, 3) != 0;
	}
	int found = rc == SQLITE_ROW;
	int r = finish_step(s, rc);
	if (r < 0 || !found) {
		free(in.path);
		return r < 0 ? r : -ENOENT;
	}
	*ret = in;
	return 0;
}

static int sqlite_url_known(struct store *st, int64_t op, const char *url, const char *client,
			    uint32_t time)
{
	sqlite3_stmt *s = S(st)->st[ST_URL_KNOWN];
	sqlite3_bind_int64(s, 1, op);
	sqlite3_bind_text(s, 2, url, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, time);
	int rc = sqlite3_step(s);
	int known = rc == SQLITE_ROW;
	int r = finish_step(s, rc);
	return r < 0 ? r : known;
}

static const char *sqlite_errmsg(struct store *st)
{
	return sqlite3_errmsg(S(st)->db);
}

static int sqlite_set_owner(struct store *st, const char *owner)
{
	size_t n = owner ? strlen(owner) : 0;
	if (n == 0 || n >= sizeof(S(st)->owner))
		return -EINVAL;
	memcpy(S(st)->owner, owner, n + 1);
	return 0;
}

/* Claims one selected row; the SELECT stays open (SQLite allows the
 * update: it changes no column of the index being walked). */
static int claim_row(struct store_sqlite *q, sqlite3_stmt *sel, const char *owner, double until)
{
	sqlite3_stmt *s = q->st[ST_CLAIM_SET];
	if (owner)
		sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, until);
	sqlite3_bind_int64(s, 3, sqlite3_column_int64(sel, 0));
	return finish_step(s, sqlite3_step(s));
}

static int sqlite_url_claim(struct store *st, int64_t op, const char *owner, unsigned max,
			    unsigned lease_seconds, store_url_fn fn, void *userdata)
{
	struct store_sqlite *q = S(st);
	if (!owner)
		owner = q->owner[0] ? q->owner : NULL;
	double now = now_real();
	/* Outside the caller's transaction the write lock is taken first
	 * (IMMEDIATE), so that two connections claiming at once wait for each
	 * other instead of both reading the same rows; inside it, a savepoint. */
	bool own_tx = sqlite3_get_autocommit(q->db);
	int r = exec_simple(st, own_tx ? ST_BEGIN_IMMEDIATE : ST_SAVEPOINT);
	if (r < 0)
		return r;
	sqlite3_stmt *s = q->st[ST_CLAIM_SELECT];
	sqlite3_bind_int64(s, 1, op);
	sqlite3_bind_double(s, 2, now);
	sqlite3_bind_int64(s, 3, max);
	int rc, n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = claim_row(q, s, owner, now + lease_seconds)) < 0)
			break;
		n++;
		const char *url = (const char *)sqlite3_column_text(s, 1);
		const char *client = (const char *)sqlite3_column_text(s, 2);
		r = fn(userdata, sqlite3_column_int64(s, 0), url ? url : "", client ? client : "",
		       (uint32_t)sqlite3_column_int64(s, 3), sqlite3_column_double(s, 4));
		if (r < 0)
			break;
	}
	int e = finish_step(s, rc);
	int e2 = exec_simple(st, own_tx ? ST_COMMIT : ST_RELEASE);
	return r < 0 ? r : e < 0 ? e : e2 < 0 ? e2 : n;
}

static int sqlite_lease_renew(struct store *st, const char *owner, unsigned lease_seconds)
{
	struct store_sqlite *q = S(st);
	if (!owner)
		owner = q->owner;
	sqlite3_stmt *s = q->st[ST_RENEW];
	sqlite3_bind_double(s, 1, now_real() + lease_seconds);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	int r = finish_step(s, sqlite3_step(s));
	return r < 0 ? r : sqlite3_changes(q->db);
}

static int sqlite_url_finals(struct store *st, int64_t op, store_final_fn fn, void *userdata)
{
	sqlite3_stmt *s = S(st)->st[ST_FINALS];
	sqlite3_bind_int64(s, 1, op);
	int rc, r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *url = (const char *)sqlite3_column_text(s, 1);
		const char *client = (const char *)sqlite3_column_text(s, 2);
		const char *status = (const char *)sqlite3_column_text(s, 5);
		const char *by = (const char *)sqlite3_column_text(s, 9);
		struct store_final f = {
		    .id = sqlite3_column_int64(s, 0),
		    .url = url ? url : "",
		    .client = client ? client : "",
		    .time = (uint32_t)sqlite3_column_int64(s, 3),
		    .priority = sqlite3_column_double(s, 4),
		    .status = status ? status[0] : 'E',
		    .major = (uint32_t)sqlite3_column_int64(s, 6),
		    .minor = (uint32_t)sqlite3_column_int64(s, 7),
		    .finished = sqlite3_column_double(s, 8),
		    .finished_by = by ? by : "",
		};
		if ((r = fn(userdata, &f)) < 0)
			break;
	}
	int e = finish_step(s, rc);
	return r < 0 ? r : e;
}

static int sqlite_lease_release(struct store *st, int64_t op, const char *owner)
{
	struct store_sqlite *q = S(st);
	sqlite3_stmt *s = q->st[ST_LEASE_RELEASE];
	sqlite3_bind_int64(s, 1, op);
	sqlite3_bind_text(s, 2, owner ? owner : q->owner, -1, SQLITE_STATIC);
	int r = finish_step(s, sqlite3_step(s));
	return r < 0 ? r : sqlite3_changes(q->db);
}

static int sqlite_operation_last(struct store *st, int64_t *ret_op)
{
	sqlite3_stmt *s = S(st)->st[ST_OP_LAST];
	int rc = sqlite3_step(s);
	int64_t op = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	int r = finish_step(s, rc);
	if (r < 0)
		return r;
	if (op <= 0)
		return -ENOENT;
	*ret_op = op;
	return 0;
}

static int sqlite_final_lines(struct store *st, int64_t op, store_line_fn fn, void *userdata)
{
	sqlite3_stmt *s = S(st)->st[ST_FINAL_LINES];
	sqlite3_bind_int64(s, 1, op);
	int rc, r = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(s, 2);
		if ((r = fn(userdata, sqlite3_column_int64(s, 0), sqlite3_column_int(s, 1),
		            line ? line : "")) < 0)
			break;
	}
	int e = finish_step(s, rc);
	return r < 0 ? r : e;
}

static const struct store_ops sqlite_ops = {
    .close = sqlite_close,
    .tx_begin = sqlite_tx_begin,
    .tx_commit = sqlite_tx_commit,
    .operation_begin = sqlite_operation_begin,
    .operation_resume = sqlite_operation_resume,
    .operation_finish = sqlite_operation_finish,
    .url_add = sqlite_url_add,
    .url_final = sqlite_url_final,
    .url_pending = sqlite_url_pending,
    .event_add = sqlite_event_add,
    .file_add = sqlite_file_add,
    .count = sqlite_count,
    .output_add = sqlite_output_add,
    .output_done = sqlite_output_done,
    .output_pending = sqlite_output_pending,
    .input_set = sqlite_input_set,
    .input_get = sqlite_input_get,
    .url_known = sqlite_url_known,
    .errmsg = sqlite_errmsg,
    .set_owner = sqlite_set_owner,
    .url_claim = sqlite_url_claim,
    .lease_renew = sqlite_lease_renew,
    .url_finals = sqlite_url_finals,
    .lease_release = sqlite_lease_release,
    .operation_last = sqlite_operation_last,
    .final_lines = sqlite_final_lines,
};

/* Adds a column when a probe of it fails (a file of an older version). */
static int add_column(sqlite3 *db, const char *probe_sql, const char *alter_sql)
{
	sqlite3_stmt *probe = NULL;
	int rc = sqlite3_prepare_v2(db, probe_sql, -1, &probe, NULL);
	sqlite3_finalize(probe);
	if (rc == SQLITE_OK)
		return 0;
	return sqlite3_exec(db, alter_sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EPROTO;
}

/* Brings an older file to SQLITE_SCHEMA_VERSION (a newer one is refused). */
static int migrate(sqlite3 *db)
{
	static const char *const cols[][2] = {
	    /* operation had no input position */
	    {"SELECT input FROM operation LIMIT 0", "ALTER TABLE operation ADD COLUMN input TEXT"},
	    {"SELECT input_offset FROM operation LIMIT 0",
	     "ALTER TABLE operation ADD COLUMN input_offset INTEGER"},
	    {"SELECT input_line FROM operation LIMIT 0",
	     "ALTER TABLE operation ADD COLUMN input_line INTEGER"},
	    {"SELECT input_done FROM operation LIMIT 0",
	     "ALTER TABLE operation ADD COLUMN input_done INTEGER"},
	    /* event had no command_line */
	    {"SELECT command_line FROM event LIMIT 0",
	     "ALTER TABLE event ADD COLUMN command_line TEXT"},
	    /* version 2: leases and who finished a URL */
	    {"SELECT owner FROM url LIMIT 0", "ALTER TABLE url ADD COLUMN owner TEXT"},
	    {"SELECT lease_until FROM url LIMIT 0", "ALTER TABLE url ADD COLUMN lease_until REAL"},
	    {"SELECT finished_by FROM url LIMIT 0", "ALTER TABLE url ADD COLUMN finished_by TEXT"},
	    /* version 3: the final line as written (export) */
	    {"SELECT final_log FROM url LIMIT 0", "ALTER TABLE url ADD COLUMN final_log INTEGER"},
	    {"SELECT final_line FROM url LIMIT 0", "ALTER TABLE url ADD COLUMN final_line TEXT"},
	};
	sqlite3_stmt *v = NULL;
	int64_t version = 0;
	if (sqlite3_prepare_v2(db, "SELECT max(version) FROM capture_meta", -1, &v, NULL) !=
	    SQLITE_OK)
		return -EPROTO;
	if (sqlite3_step(v) == SQLITE_ROW)
		version = sqlite3_column_int64(v, 0);
	sqlite3_finalize(v);
	if (version > SQLITE_SCHEMA_VERSION)
		return -EPROTO;
	for (size_t i = 0; i < ELEMENTSOF(cols); i++)
		if (add_column(db, cols[i][0], cols[i][1]) < 0)
			return -EPROTO;
	if (sqlite3_exec(db,
			 "CREATE INDEX IF NOT EXISTS url_queue ON url(operation, priority DESC, id)"
			 " WHERE status IS NULL;"
			 "DELETE FROM capture_meta;"
			 "INSERT INTO capture_meta(version) VALUES (3);",
			 NULL, NULL, NULL) != SQLITE_OK)
		return -EPROTO;
	return 0;
}

int store_sqlite_open(const char *path, struct store **ret)
{
	struct store_sqlite *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->base.ops = &sqlite_ops;
	int rc = sqlite3_open_v2(path, &q->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_EXRESCODE,
				 NULL);
	if (rc != SQLITE_OK) {
		int r = rc == SQLITE_CANTOPEN ? -EACCES : -EIO;
		sqlite3_close(q->db);
		free(q);
		return r;
	}
	sqlite3_busy_timeout(q->db, 5000);
	if (sqlite3_exec(q->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		sqlite_close(&q->base);
		return -EPROTO;
	}
	if (migrate(q->db) < 0) {
		sqlite_close(&q->base);
		return -EPROTO;
	}
	for (int i = 0; i < ST_MAX; i++)
		if (sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i],
				       NULL) != SQLITE_OK) {
			sqlite_close(&q->base);
			return -EPROTO;
		}
	*ret = &q->base;
	return 0;
}
