/* store-pg.c - the PostgreSQL store (see store.h).
 *
 * One libpq connection per store.  Outside a transaction every op waits
 * for its answer.  Inside one (tx_begin .. tx_commit) the connection is in
 * pipeline mode: writes whose answer the caller does not need (output
 * journal, events, files, the input position, url_add with an id reserved
 * in advance) are only queued, and their results are checked at the next
 * op that needs an answer or at the commit, which then fails if any did:
 * a round trip per URL instead of four is what makes the store keep up
 * with 100 clients (docs/benchmarks.md).  Every statement is prepared once at open (PQprepare) and
 * run with PQexecPrepared; values are never put into SQL text.  Outside a transaction each op is
 * one statement (url_final's error row rides in the same statement as a data-modifying CTE), so
 * each is atomic on its own.
 *
 * Several servers may share one database: times that order servers (the
 * leases, finished) come from the database's clock_timestamp(), never from
 * a host's clock, and url_claim locks its rows with FOR UPDATE SKIP LOCKED
 * so that two claims never take the same URL.  The schema is created under
 * an advisory lock so that servers starting together do not race, and
 * capture_meta holds its version.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "macro.h"
#include "store.h"

#define PG_SCHEMA_VERSION 2
#define PG_SCHEMA_LOCK	  0x43617074 /* "Capt": advisory lock of the schema */
#define EPOCH_NOW	  "extract(epoch from clock_timestamp())"

enum stmt {
	ST_OP_BEGIN,
	ST_OP_RESUME,
	ST_OP_FINISH,
	ST_URL_ADD,
	ST_URL_FINAL,
	ST_URL_FINAL_OK,
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
	ST_CLAIM,
	ST_RENEW,
	ST_FINALS,
	ST_URL_ADD_ID,
	ST_IDS,
	ST_LEASE_RELEASE,
	ST_OP_LAST,
	ST_LINE_KEEP,
	ST_FINAL_LINES,
	ST_MAX,
};

static const char *const stmt_sql[ST_MAX] = {
    [ST_OP_BEGIN] = "INSERT INTO operation(started, algorithm) VALUES (" EPOCH_NOW ", $1)"
		    " RETURNING id",
    [ST_OP_RESUME] = "SELECT id FROM operation WHERE finished IS NULL ORDER BY id DESC LIMIT 1",
    [ST_OP_FINISH] = "UPDATE operation SET finished = " EPOCH_NOW " WHERE id = $1",
    [ST_URL_ADD] = "INSERT INTO url(operation, url, client, time, priority)"
		   " VALUES ($1, $2, $3, $4, $5) RETURNING id",
    /* one statement: atomic outside a transaction, the error row only if
     * the status was set now */
    [ST_URL_FINAL] = "WITH u AS (UPDATE url SET status = $2, visited = " EPOCH_NOW ","
		     " finished_by = $5 WHERE id = $1 AND status IS NULL"
		     " RETURNING id, visited),"
		     " e AS (INSERT INTO error(url, major, minor, time)"
		     " SELECT id, $3, $4, visited FROM u WHERE $2 = 'E')"
		     " SELECT count(*) FROM u",
    /* B and M: no error row, a plain update (the common case) */
    [ST_URL_FINAL_OK] = "UPDATE url SET status = $2, visited = " EPOCH_NOW ", finished_by = $3"
			" WHERE id = $1 AND status IS NULL",
    [ST_URL_PENDING] = "SELECT id, url, client, time, priority FROM url"
		       " WHERE operation = $1 AND status IS NULL ORDER BY id",
    [ST_EVENT_ADD] = "INSERT INTO event(url, group_id, type, time, process_id, process,"
		     " action, object1, object2, command_line)"
		     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    [ST_FILE_ADD] = "INSERT INTO file(url, group_id, path) VALUES ($1, $2, $3)",
    [ST_COUNT] = "SELECT count(*) FROM url WHERE operation = $1 AND status = $2",
    [ST_COUNT_NULL] = "SELECT count(*) FROM url WHERE operation = $1 AND status IS NULL",
    [ST_OUTPUT_ADD] = "INSERT INTO pending_output(url, log, line, report_name, report)"
		      " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (url) DO UPDATE SET"
		      " log = excluded.log, line = excluded.line,"
		      " report_name = excluded.report_name, report = excluded.report",
    [ST_OUTPUT_DONE] = "DELETE FROM pending_output WHERE url = $1",
    /* with an owner set: only the entries of the URLs it finished */
    [ST_OUTPUT_PENDING] = "SELECT p.url, p.log, p.line, p.report_name, p.report"
			  " FROM pending_output p JOIN url u ON u.id = p.url"
			  " WHERE u.status IS NOT NULL"
			  " AND ($1::text IS NULL OR u.finished_by = $1::text) ORDER BY p.url",
    [ST_INPUT_SET] = "UPDATE operation SET input = $2, input_offset = $3, input_line = $4,"
		     " input_done = $5 WHERE id = $1",
    [ST_INPUT_GET] = "SELECT input, input_offset, input_line, input_done FROM operation"
		     " WHERE id = $1",
    [ST_URL_KNOWN] = "SELECT 1 FROM url WHERE operation = $1 AND url = $2 AND client = $3"
		     " AND time = $4 LIMIT 1",
    /* SKIP LOCKED: a row another claim holds is passed over, not waited for */
    [ST_CLAIM] = "WITH c AS (UPDATE url SET owner = $2, lease_until = " EPOCH_NOW " + $4"
		 " WHERE id IN (SELECT id FROM url WHERE operation = $1 AND status IS NULL"
		 " AND (lease_until IS NULL OR lease_until < " EPOCH_NOW ")"
		 " ORDER BY priority DESC, id LIMIT $3 FOR UPDATE SKIP LOCKED)"
		 " RETURNING id, url, client, time, priority)"
		 " SELECT id, url, client, time, priority FROM c ORDER BY priority DESC, id",
    [ST_RENEW] = "UPDATE url SET lease_until = " EPOCH_NOW " + $2"
		 " WHERE owner = $1 AND status IS NULL",
    [ST_FINALS] = "SELECT u.id, u.url, u.client, u.time, u.priority, u.status,"
		  " coalesce(e.major, 0), coalesce(e.minor, 0), u.visited,"
		  " coalesce(u.finished_by, '')"
		  " FROM url u LEFT JOIN error e ON e.url = u.id"
		  " WHERE u.operation = $1 AND u.status IS NOT NULL ORDER BY u.id",
    /* inside a transaction: the id is reserved before (ST_IDS) so that the
     * insert needs no answer */
    [ST_URL_ADD_ID] = "INSERT INTO url(id, operation, url, client, time, priority)"
		      " VALUES ($6, $1, $2, $3, $4, $5)",
    [ST_IDS] = "SELECT nextval(pg_get_serial_sequence('url', 'id'))"
	       " FROM generate_series(1, $1)",
    [ST_LEASE_RELEASE] = "UPDATE url SET owner = NULL, lease_until = NULL"
			 " WHERE operation = $1 AND owner = $2 AND status IS NULL",
    [ST_OP_LAST] = "SELECT max(id) FROM operation",
    [ST_LINE_KEEP] = "UPDATE url SET final_log = $2, final_line = $3 WHERE id = $1",
    [ST_FINAL_LINES] = "SELECT id, final_log, final_line FROM url"
		       " WHERE operation = $1 AND final_line IS NOT NULL ORDER BY visited, id",
};

#define ID_BATCH 256 /* url ids reserved at a time inside a transaction */

/* Version 1: the SQLite schema (version 2) in PostgreSQL types. */
static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS operation(id BIGSERIAL PRIMARY KEY,"
    " started DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION, algorithm TEXT,"
    " input TEXT, input_offset BIGINT, input_line BIGINT, input_done INTEGER);"
    "CREATE TABLE IF NOT EXISTS url(id BIGSERIAL PRIMARY KEY,"
    " operation BIGINT NOT NULL REFERENCES operation(id), url TEXT NOT NULL,"
    " client TEXT NOT NULL, time BIGINT NOT NULL, priority DOUBLE PRECISION NOT NULL,"
    " status TEXT CHECK(status IN ('B','M','E')), visited DOUBLE PRECISION,"
    " owner TEXT, lease_until DOUBLE PRECISION, finished_by TEXT);"
    "CREATE INDEX IF NOT EXISTS url_lookup ON url(operation, url);"
    /* the queue: only URLs without a final status, in claim order */
    "CREATE INDEX IF NOT EXISTS url_queue ON url(operation, priority DESC, id)"
    " WHERE status IS NULL;"
    "CREATE INDEX IF NOT EXISTS url_owner ON url(owner) WHERE status IS NULL;"
    "CREATE TABLE IF NOT EXISTS url_operation(url BIGINT NOT NULL REFERENCES url(id),"
    " operation BIGINT NOT NULL, group_id BIGINT, started DOUBLE PRECISION,"
    " finished DOUBLE PRECISION, status TEXT);"
    "CREATE TABLE IF NOT EXISTS event(id BIGSERIAL PRIMARY KEY, url BIGINT, group_id BIGINT,"
    " type TEXT, time TEXT, process_id TEXT, process TEXT, action TEXT, object1 TEXT,"
    " object2 TEXT, command_line TEXT);"
    "CREATE TABLE IF NOT EXISTS error(id BIGSERIAL PRIMARY KEY, url BIGINT, major BIGINT,"
    " minor BIGINT, time DOUBLE PRECISION);"
    "CREATE INDEX IF NOT EXISTS error_url ON error(url);"
    "CREATE TABLE IF NOT EXISTS file(id BIGSERIAL PRIMARY KEY, url BIGINT, group_id BIGINT,"
    " path TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS pending_output(url BIGINT PRIMARY KEY REFERENCES url(id),"
    " log INTEGER NOT NULL, line TEXT NOT NULL, report_name TEXT, report TEXT);";

/* Version 2: the final line kept with its URL (export). */
static const char schema_v2[] = "ALTER TABLE url ADD COLUMN IF NOT EXISTS final_log INTEGER,"
				" ADD COLUMN IF NOT EXISTS final_line TEXT";

/* Migrations: migrations[v] brings version v to v + 1. */
static const char *const migrations[PG_SCHEMA_VERSION] = {
    [0] = schema_v1,
    [1] = schema_v2,
};

struct store_pg {
	struct store base;
	PGconn *conn;
	bool in_tx;	 /* in pipeline mode between BEGIN and COMMIT */
	unsigned queued; /* statements sent whose results are not read yet */
	int tx_error;	 /* the first failure of a queued statement, or 0 */
	int64_t ids[ID_BATCH];
	unsigned n_ids, next_id; /* reserved url ids not used yet: ids[next_id..n_ids) */
	char owner[256];
	char err[512];
	/* what the connection was made with, to make it again (pg_ensure) */
	char *conninfo, *user, *password;
	unsigned reconnects;
};

static struct store_pg *P(struct store *st)
{
	return (struct store_pg *)st;
}

static void set_err(struct store_pg *q, const char *msg)
{
	size_t n = strlen(msg ? msg : "");
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	if (n >= sizeof(q->err))
		n = sizeof(q->err) - 1;
	if (n)
		memcpy(q->err, msg, n);
	q->err[n] = '\0';
}

/* Maps a failed result to -errno, keeping libpq's message for errmsg. */
static int result_errno(struct store_pg *q, const PGresult *res)
{
	set_err(q, res ? PQresultErrorMessage(res) : PQerrorMessage(q->conn));
	if (PQstatus(q->conn) != CONNECTION_OK)
		return -ECONNRESET;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!state)
		return -EIO;
	if (strncmp(state, "23", 2) == 0) /* integrity constraint, as SQLite's CONSTRAINT */
		return -EINVAL;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0)
		return -EBUSY;
	if (strcmp(state, "53100") == 0)
		return -ENOSPC;
	return -EIO;
}

static void pqclearp(PGresult **p)
{
	PQclear(*p);
}
#define _cleanup_pgresult_ _cleanup_(pqclearp)

static void stmt_name(enum stmt which, char name[static 8])
{
	snprintf(name, 8, "c%d", (int)which);
}

/* Pipeline mode: reads the results of the queued statements (each ends
 * with a NULL); the first failure is kept in tx_error. */
static int drain(struct store_pg *q)
{
	for (; q->queued > 0; q->queued--) {
		PGresult *res;
		while ((res = PQgetResult(q->conn))) {
			ExecStatusType t = PQresultStatus(res);
			if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK && q->tx_error == 0)
				q->tx_error =
				    t == PGRES_PIPELINE_ABORTED ? -EIO : result_errno(q, res);
			PQclear(res);
		}
	}
	return q->tx_error;
}

/* Pipeline mode: sends a statement; the server answers only once asked. */
static int send_stmt(struct store_pg *q, enum stmt which, int n, const char *const *params)
{
	char name[8];
	stmt_name(which, name);
	if (!PQsendQueryPrepared(q->conn, name, n, params, NULL, NULL, 0)) {
		set_err(q, PQerrorMessage(q->conn));
		return PQstatus(q->conn) != CONNECTION_OK ? -ECONNRESET : -EIO;
	}
	return 0;
}

static int pg_ensure(struct store_pg *q);

/* A write whose answer the caller does not need: queued inside a
 * transaction, run at once outside. */
static int run_queued(struct store_pg *q, enum stmt which, int n, const char *const *params);

/* Runs a prepared statement with text parameters (NULL = SQL NULL); on
 * success *ret holds the result (tuples or command status).  Inside a
 * transaction the queued statements are read first: if one failed, the
 * transaction is lost and so is this op. */
static int run(struct store_pg *q, enum stmt which, int n, const char *const *params,
	       PGresult **ret)
{
	char name[8];
	stmt_name(which, name);
	PGresult *res;
	if (q->in_tx) {
		int r = send_stmt(q, which, n, params);
		if (r == 0 && (!PQsendFlushRequest(q->conn) || PQflush(q->conn) != 0))
			r = -EIO;
		if (r < 0) {
			set_err(q, PQerrorMessage(q->conn));
			return r;
		}
		r = drain(q);
		res = PQgetResult(q->conn);
		for (PGresult *end; (end = PQgetResult(q->conn));) /* up to its NULL */
			PQclear(end);
		if (r < 0) {
			PQclear(res);
			return r;
		}
	} else {
		int r = pg_ensure(q);
		if (r < 0)
			return r;
		res = PQexecPrepared(q->conn, name, n, params, NULL, NULL, 0);
	}
	ExecStatusType t = PQresultStatus(res);
	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
		int r = result_errno(q, res);
		if (q->in_tx && q->tx_error == 0)
			q->tx_error = r;
		PQclear(res);
		return r;
	}
	*ret = res;
	return 0;
}

static int run_queued(struct store_pg *q, enum stmt which, int n, const char *const *params)
{
	if (!q->in_tx) {
		_cleanup_pgresult_ PGresult *res = NULL;
		return run(q, which, n, params, &res);
	}
	if (q->tx_error)
		return q->tx_error;
	int r = send_stmt(q, which, n, params);
	if (r == 0)
		q->queued++;
	return r;
}

static int run_simple(struct store_pg *q, enum stmt which, int n, const char *const *params)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	return run(q, which, n, params, &res);
}

/* Runs SQL without parameters (BEGIN, COMMIT, the schema). */
static int exec_sql(struct store_pg *q, const char *sql)
{
	_cleanup_pgresult_ PGresult *res = PQexec(q->conn, sql);
	ExecStatusType t = PQresultStatus(res);
	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK)
		return result_errno(q, res);
	return 0;
}

/* Number formatting for text parameters. */
struct num {
	char s[32];
};

static const char *i64(struct num *b, int64_t v)
{
	snprintf(b->s, sizeof(b->s), "%lld", (long long)v);
	return b->s;
}

static const char *dbl(struct num *b, double v)
{
	snprintf(b->s, sizeof(b->s), "%.17g", v);
	return b->s;
}

static int64_t get_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double get_dbl(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtod(PQgetvalue(res, row, col), NULL);
}

static const char *get_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* Reads a query's rows one by one (single-row mode) so that a run of a
 * million URLs is never held in memory; each row goes to fn.  Returns the
 * first negative value of fn, -errno, or 0. */
static int iterate(struct store_pg *q, enum stmt which, int n, const char *const *params,
		   int (*fn)(void *ctx, const PGresult *row), void *ctx)
{
	int r = pg_ensure(q);
	if (r < 0 || (r = send_stmt(q, which, n, params)) < 0)
		return r;
	if (q->in_tx) {
		if (!PQsendFlushRequest(q->conn) || PQflush(q->conn) != 0) {
			set_err(q, PQerrorMessage(q->conn));
			return -EIO;
		}
		if ((r = drain(q)) < 0) {
			for (PGresult *res; (res = PQgetResult(q->conn));)
				PQclear(res);
			return r;
		}
	}
	(void)PQsetSingleRowMode(q->conn);
	PGresult *res;
	/* every result is read, also after a failure, so that the connection
	 * is ready for the next statement */
	while ((res = PQgetResult(q->conn))) {
		ExecStatusType t = PQresultStatus(res);
		if (t == PGRES_SINGLE_TUPLE) {
			if (r == 0 && (r = fn(ctx, res)) > 0)
				r = 0;
		} else if (t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK && r == 0)
			r = result_errno(q, res);
		PQclear(res);
	}
	return r;
}

static void pg_close(struct store *st)
{
	struct store_pg *q = P(st);
	PQfinish(q->conn);
	free(q->conninfo);
	free(q->user);
	if (q->password)
		explicit_bzero(q->password, strlen(q->password));
	free(q->password);
	free(q);
}

static int pg_connect(struct store_pg *q);
static int prepare_all(struct store_pg *q);

/* A connection that broke (the database restarted, a failover, a killed
 * backend) is made again before the next transaction or statement outside
 * one, with its prepared statements: the op that met the break failed (and
 * the server queued its URLs again), the ones after it work.  Inside a
 * transaction nothing is retried: the transaction is lost as a whole. */
static int pg_ensure(struct store_pg *q)
{
	if (q->in_tx || PQstatus(q->conn) == CONNECTION_OK)
		return 0;
	PQfinish(q->conn);
	q->conn = NULL;
	q->queued = 0;
	q->tx_error = 0;
	q->n_ids = q->next_id = 0;
	int r = pg_connect(q);
	if (r == 0)
		r = prepare_all(q);
	if (r < 0)
		return r; /* tried again at the next op */
	q->reconnects++;
	q->base.reconnects = q->reconnects;
	return 0;
}

static int pg_tx_begin(struct store *st)
{
	struct store_pg *q = P(st);
	if (q->in_tx)
		return -EBUSY;
	int r = pg_ensure(q);
	if (r < 0)
		return r;
	if (!PQenterPipelineMode(q->conn)) {
		set_err(q, PQerrorMessage(q->conn));
		return -EIO;
	}
	q->in_tx = true;
	q->tx_error = 0;
	q->queued = 0;
	if (!PQsendQueryParams(q->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) {
		set_err(q, PQerrorMessage(q->conn));
		(void)PQexitPipelineMode(q->conn);
		q->in_tx = false;
		return -EIO;
	}
	q->queued = 1;
	return 0;
}

/* Ends the pipeline: COMMIT, then every result up to the sync.  A failed
 * statement anywhere in the transaction makes it a ROLLBACK and -errno. */
static int pg_tx_commit(struct store *st)
{
	struct store_pg *q = P(st);
	if (!q->in_tx)
		return -EINVAL;
	int r = 0;
	if (!PQsendQueryParams(q->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQpipelineSync(q->conn))
		r = -EIO;
	else
		q->queued++;
	if (r == 0)
		r = drain(q);
	for (;;) { /* up to the sync */
		PGresult *res = PQgetResult(q->conn);
		if (!res) /* a lost connection, or no sync sent: nothing more comes */
			break;
		ExecStatusType t = PQresultStatus(res);
		PQclear(res);
		if (t == PGRES_PIPELINE_SYNC)
			break;
	}
	(void)PQexitPipelineMode(q->conn);
	q->in_tx = false;
	q->n_ids = q->next_id = 0; /* a rolled-back reservation is simply not used */
	if (PQstatus(q->conn) != CONNECTION_OK)
		return -ECONNRESET;
	if (PQtransactionStatus(q->conn) != PQTRANS_IDLE) {
		(void)exec_sql(q, "ROLLBACK");
		if (r == 0) {
			set_err(q, "transaction aborted by an earlier error; rolled back");
			r = -EIO;
		}
	}
	return r;
}

static int pg_operation_begin(struct store *st, const char *alg, int64_t *ret_op)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	const char *p[] = {alg};
	int r = run(P(st), ST_OP_BEGIN, 1, p, &res);
	if (r < 0)
		return r;
	*ret_op = get_i64(res, 0, 0);
	return 0;
}

static int pg_operation_resume(struct store *st, int64_t *ret_op)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	int r = run(P(st), ST_OP_RESUME, 0, NULL, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	*ret_op = get_i64(res, 0, 0);
	return 0;
}

static int pg_operation_finish(struct store *st, int64_t op)
{
	struct num a;
	const char *p[] = {i64(&a, op)};
	return run_simple(P(st), ST_OP_FINISH, 1, p);
}

static int pg_url_add(struct store *st, int64_t op, const char *url, const char *client,
		      uint32_t time, double priority, int64_t *ret_id)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct num a, b, c;
	const char *p[] = {i64(&a, op), url, client, i64(&b, time), dbl(&c, priority)};
	int r = run(P(st), ST_URL_ADD, 5, p, &res);
	if (r < 0)
		return r;
	*ret_id = get_i64(res, 0, 0);
	return 0;
}

static int pg_url_final(struct store *st, int64_t id, char status, uint32_t major, uint32_t minor)
{
	if (status != 'B' && status != 'M' && status != 'E')
		return -EINVAL;
	struct store_pg *q = P(st);
	_cleanup_pgresult_ PGresult *res = NULL;
	struct num a, b, c;
	char txt[2] = {status, 0};
	const char *p[] = {i64(&a, id), txt, i64(&b, major), i64(&c, minor),
			   q->owner[0] ? q->owner : NULL};
	if (status != 'E') {
		const char *pk[] = {p[0], txt, p[4]};
		int r = run(q, ST_URL_FINAL_OK, 3, pk, &res);
		if (r < 0)
			return r;
		return strcmp(PQcmdTuples(res), "0") == 0 ? -EALREADY : 0;
	}
	int r = run(q, ST_URL_FINAL, 5, p, &res);
	if (r < 0)
		return r;
	return get_i64(res, 0, 0) == 0 ? -EALREADY : 0;
}

struct url_iter {
	store_url_fn fn;
	void *userdata;
	int n;
};

static int url_row(void *ctx, const PGresult *res)
{
	struct url_iter *it = ctx;
	const char *url = get_str(res, 0, 1), *client = get_str(res, 0, 2);
	it->n++;
	return it->fn(it->userdata, get_i64(res, 0, 0), url ? url : "", client ? client : "",
		      (uint32_t)get_i64(res, 0, 3), get_dbl(res, 0, 4));
}

static int pg_url_pending(struct store *st, int64_t op, store_url_fn fn, void *userdata)
{
	struct num a;
	const char *p[] = {i64(&a, op)};
	struct url_iter it = {fn, userdata, 0};
	return iterate(P(st), ST_URL_PENDING, 1, p, url_row, &it);
}

static int pg_event_add(struct store *st, int64_t url_id, uint32_t group, const char *type,
			const char *time, const char *pid, const char *process, const char *action,
			const char *o1, const char *o2, const char *cmdline)
{
	struct num a, b;
	const char *p[] = {url_id > 0 ? i64(&a, url_id) : NULL,
			   i64(&b, group),
			   type,
			   time,
			   pid,
			   process,
			   action,
			   o1,
			   o2,
			   cmdline};
	return run_queued(P(st), ST_EVENT_ADD, 10, p);
}

static int pg_file_add(struct store *st, int64_t url_id, uint32_t group, const char *path)
{
	struct num a, b;
	const char *p[] = {url_id > 0 ? i64(&a, url_id) : NULL, i64(&b, group), path};
	return run_queued(P(st), ST_FILE_ADD, 3, p);
}

static int pg_count(struct store *st, int64_t op, char status, int64_t *ret)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct num a;
	char txt[2] = {status, 0};
	const char *p[] = {i64(&a, op), txt};
	int r = run(P(st), status ? ST_COUNT : ST_COUNT_NULL, status ? 2 : 1, p, &res);
	if (r < 0)
		return r;
	*ret = get_i64(res, 0, 0);
	return 0;
}

static int pg_output_add(struct store *st, int64_t url_id, int log, const char *line,
			 const char *report_name, const char *report)
{
	struct num a, b;
	bool rep = report_name && report;
	const char *p[] = {i64(&a, url_id), i64(&b, log), line, rep ? report_name : NULL,
			   rep ? report : NULL};
	int r = run_queued(P(st), ST_OUTPUT_ADD, 5, p);
	/* the line stays with its URL after the journal entry goes (export) */
	return r < 0 ? r : run_queued(P(st), ST_LINE_KEEP, 3, p);
}

static int pg_output_done(struct store *st, int64_t url_id)
{
	struct num a;
	const char *p[] = {i64(&a, url_id)};
	return run_queued(P(st), ST_OUTPUT_DONE, 1, p);
}

struct output_iter {
	store_output_fn fn;
	void *userdata;
};

static int output_row(void *ctx, const PGresult *res)
{
	struct output_iter *it = ctx;
	const char *line = get_str(res, 0, 2);
	return it->fn(it->userdata, get_i64(res, 0, 0), (int)get_i64(res, 0, 1), line ? line : "",
		      get_str(res, 0, 3), get_str(res, 0, 4));
}

static int pg_output_pending(struct store *st, store_output_fn fn, void *userdata)
{
	struct output_iter it = {fn, userdata};
	const char *p[] = {P(st)->owner[0] ? P(st)->owner : NULL};
	return iterate(P(st), ST_OUTPUT_PENDING, 1, p, output_row, &it);
}

static int pg_input_set(struct store *st, int64_t op, const struct store_input *in)
{
	struct num a, b, c;
	const char *p[] = {i64(&a, op), in->path, i64(&b, in->offset), i64(&c, in->line),
			   in->done ? "1" : "0"};
	return run_queued(P(st), ST_INPUT_SET, 5, p);
}

static int pg_input_get(struct store *st, int64_t op, struct store_input *ret)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct num a;
	const char *p[] = {i64(&a, op)};
	int r = run(P(st), ST_INPUT_GET, 1, p, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		return -ENOENT;
	struct store_input in = {0};
	const char *path = get_str(res, 0, 0);
	if (path && !(in.path = strdup(path)))
		return -ENOMEM;
	in.offset = get_i64(res, 0, 1);
	in.line = get_i64(res, 0, 2);
	in.done = get_i64(res, 0, 3) != 0;
	*ret = in;
	return 0;
}

static int pg_url_known(struct store *st, int64_t op, const char *url, const char *client,
			uint32_t time)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	struct num a, b;
	const char *p[] = {i64(&a, op), url, client, i64(&b, time)};
	int r = run(P(st), ST_URL_KNOWN, 4, p, &res);
	return r < 0 ? r : PQntuples(res) > 0;
}

static const char *pg_errmsg(struct store *st)
{
	return P(st)->err;
}

static int pg_set_owner(struct store *st, const char *owner)
{
	size_t n = owner ? strlen(owner) : 0;
	if (n == 0 || n >= sizeof(P(st)->owner))
		return -EINVAL;
	memcpy(P(st)->owner, owner, n + 1);
	return 0;
}

static int pg_url_claim(struct store *st, int64_t op, const char *owner, unsigned max,
			unsigned lease_seconds, store_url_fn fn, void *userdata)
{
	struct store_pg *q = P(st);
	if (!owner)
		owner = q->owner[0] ? q->owner : NULL;
	/* the rows are claimed once the statement ends; fn sees them after */
	_cleanup_pgresult_ PGresult *res = NULL;
	struct num a, b, c;
	const char *p[] = {i64(&a, op), owner, i64(&b, max), i64(&c, lease_seconds)};
	int r = run(q, ST_CLAIM, 4, p, &res);
	if (r < 0)
		return r;
	int n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		const char *url = get_str(res, i, 1), *client = get_str(res, i, 2);
		r = fn(userdata, get_i64(res, i, 0), url ? url : "", client ? client : "",
		       (uint32_t)get_i64(res, i, 3), get_dbl(res, i, 4));
		if (r < 0)
			return r;
	}
	return n;
}

static int pg_lease_renew(struct store *st, const char *owner, unsigned lease_seconds)
{
	struct store_pg *q = P(st);
	_cleanup_pgresult_ PGresult *res = NULL;
	struct num a;
	const char *p[] = {owner ? owner : q->owner, i64(&a, lease_seconds)};
	int r = run(q, ST_RENEW, 2, p, &res);
	return r < 0 ? r : (int)strtol(PQcmdTuples(res), NULL, 10);
}

struct final_iter {
	store_final_fn fn;
	void *userdata;
};

static int final_row(void *ctx, const PGresult *res)
{
	struct final_iter *it = ctx;
	const char *url = get_str(res, 0, 1), *client = get_str(res, 0, 2);
	const char *status = get_str(res, 0, 5), *by = get_str(res, 0, 9);
	struct store_final f = {
	    .id = get_i64(res, 0, 0),
	    .url = url ? url : "",
	    .client = client ? client : "",
	    .time = (uint32_t)get_i64(res, 0, 3),
	    .priority = get_dbl(res, 0, 4),
	    .status = status ? status[0] : 'E',
	    .major = (uint32_t)get_i64(res, 0, 6),
	    .minor = (uint32_t)get_i64(res, 0, 7),
	    .finished = get_dbl(res, 0, 8),
	    .finished_by = by ? by : "",
	};
	return it->fn(it->userdata, &f);
}

static int pg_url_finals(struct store *st, int64_t op, store_final_fn fn, void *userdata)
{
	struct num a;
	const char *p[] = {i64(&a, op)};
	struct final_iter it = {fn, userdata};
	return iterate(P(st), ST_FINALS, 1, p, final_row, &it);
}

static int pg_lease_release(struct store *st, int64_t op, const char *owner)
{
	struct store_pg *q = P(st);
	_cleanup_pgresult_ PGresult *res = NULL;
	struct num a;
	const char *p[] = {i64(&a, op), owner ? owner : q->owner};
	int r = run(q, ST_LEASE_RELEASE, 2, p, &res);
	return r < 0 ? r : (int)strtol(PQcmdTuples(res), NULL, 10);
}

static int pg_operation_last(struct store *st, int64_t *ret_op)
{
	_cleanup_pgresult_ PGresult *res = NULL;
	int r = run(P(st), ST_OP_LAST, 0, NULL, &res);
	if (r < 0)
		return r;
	if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0))
		return -ENOENT;
	*ret_op = get_i64(res, 0, 0);
	return 0;
}

struct line_iter {
	store_line_fn fn;
	void *userdata;
};

static int line_row(void *ctx, const PGresult *res)
{
	struct line_iter *it = ctx;
	const char *line = get_str(res, 0, 2);
	return it->fn(it->userdata, get_i64(res, 0, 0), (int)get_i64(res, 0, 1), line ? line : "");
}

static int pg_final_lines(struct store *st, int64_t op, store_line_fn fn, void *userdata)
{
	struct num a;
	const char *p[] = {i64(&a, op)};
	struct line_iter it = {fn, userdata};
	return iterate(P(st), ST_FINAL_LINES, 1, p, line_row, &it);
}

static const struct store_ops pg_ops = {
    .close = pg_close,
    .tx_begin = pg_tx_begin,
    .tx_commit = pg_tx_commit,
    .operation_begin = pg_operation_begin,
    .operation_resume = pg_operation_resume,
    .operation_finish = pg_operation_finish,
    .url_add = pg_url_add,
    .url_final = pg_url_final,
    .url_pending = pg_url_pending,
    .event_add = pg_event_add,
    .file_add = pg_file_add,
    .count = pg_count,
    .output_add = pg_output_add,
    .output_done = pg_output_done,
    .output_pending = pg_output_pending,
    .input_set = pg_input_set,
    .input_get = pg_input_get,
    .url_known = pg_url_known,
    .errmsg = pg_errmsg,
    .set_owner = pg_set_owner,
    .url_claim = pg_url_claim,
    .lease_renew = pg_lease_renew,
    .url_finals = pg_url_finals,
    .lease_release = pg_lease_release,
    .operation_last = pg_operation_last,
    .final_lines = pg_final_lines,
};

/* Creates or migrates the schema in one transaction, serialised by an
 * advisory lock so that servers opening an empty database together do not
 * both create it. */
static int schema_setup(struct store_pg *q)
{
	int r = exec_sql(q, "BEGIN");
	if (r < 0)
		return r;
	PGresult *res = NULL;
	int64_t version = 0;
	char lock[64];
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%d)", PG_SCHEMA_LOCK);
	if ((r = exec_sql(q, lock)) < 0 ||
	    (r = exec_sql(q, "SET LOCAL client_min_messages = warning")) < 0 ||
	    (r = exec_sql(q, "CREATE TABLE IF NOT EXISTS capture_meta(version INTEGER NOT NULL)")) <
		0)
		goto fail;
	res = PQexec(q->conn, "SELECT coalesce(max(version), 0) FROM capture_meta");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		r = result_errno(q, res);
		goto fail;
	}
	version = get_i64(res, 0, 0);
	PQclear(res);
	res = NULL;
	if (version > PG_SCHEMA_VERSION) {
		set_err(q, "the database's schema is newer than this capture-server's");
		r = -EPROTO;
		goto fail;
	}
	for (int64_t v = version; v < PG_SCHEMA_VERSION; v++)
		if ((r = exec_sql(q, migrations[v])) < 0)
			goto fail;
	if (version < PG_SCHEMA_VERSION) {
		char meta[96];
		snprintf(meta, sizeof(meta),
			 "DELETE FROM capture_meta; INSERT INTO capture_meta(version) VALUES (%d)",
			 PG_SCHEMA_VERSION);
		if ((r = exec_sql(q, meta)) < 0)
			goto fail;
	}
	return exec_sql(q, "COMMIT");
fail:
	PQclear(res);
	(void)exec_sql(q, "ROLLBACK");
	return r;
}

static int prepare_all(struct store_pg *q)
{
	for (int i = 0; i < ST_MAX; i++) {
		char name[8];
		stmt_name(i, name);
		_cleanup_pgresult_ PGresult *res = PQprepare(q->conn, name, stmt_sql[i], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return result_errno(q, res);
	}
	return 0;
}

/* "jdbc:postgresql://host[:port]/db[?...]" or "host[:port]/db" (the
 * original's forms) split into libpq keywords; 0 if url is one of them. */
struct jdbc {
	char host[256], port[16], dbname[256];
};

static int parse_jdbc(const char *url, struct jdbc *ret)
{
	const char *s = url;
	if (strncmp(s, "jdbc:postgresql://", 18) == 0)
		s += 18;
	else if (strchr(s, '=') || strstr(s, "://") || !strchr(s, '/') || s[0] == '/')
		return -EINVAL; /* conninfo, a URI, or a bare name */
	const char *slash = strchr(s, '/');
	if (!slash)
		return -EINVAL;
	size_t hl = (size_t)(slash - s);
	const char *colon = memchr(s, ':', hl);
	size_t nl = colon ? (size_t)(colon - s) : hl;
	size_t dl = strcspn(slash + 1, "?");
	if (nl >= sizeof(ret->host) || dl == 0 || dl >= sizeof(ret->dbname))
		return -EINVAL;
	struct jdbc j = {0};
	memcpy(j.host, s, nl);
	if (colon) {
		size_t pl = hl - nl - 1;
		if (pl == 0 || pl >= sizeof(j.port) || strspn(colon + 1, "0123456789") != pl)
			return -EINVAL;
		memcpy(j.port, colon + 1, pl);
	}
	memcpy(j.dbname, slash + 1, dl);
	*ret = j;
	return 0;
}

/* Why a connection failed, from libpq's text (it has no error codes). */
static int connect_errno(const char *msg)
{
	if (strstr(msg, "authentication failed") || strstr(msg, "no password supplied") ||
	    strstr(msg, "does not exist") || strstr(msg, "no pg_hba.conf entry"))
		return -EACCES;
	if (strstr(msg, "translate host name") || strstr(msg, "No route to host") ||
	    strstr(msg, "Network is unreachable"))
		return -EHOSTUNREACH;
	return -ECONNREFUSED;
}

int store_pg_open(const char *conninfo, const char *user, const char *password, char *err,
		  size_t errlen, struct store **ret)
{
	if (err && errlen)
		err[0] = '\0';
	struct store_pg *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->base.ops = &pg_ops;
	q->base.shared = true;
	q->conninfo = strdup(conninfo);
	q->user = user && user[0] ? strdup(user) : NULL;
	q->password = password && password[0] ? strdup(password) : NULL;
	int r = !q->conninfo || (user && user[0] && !q->user) ||
	                (password && password[0] && !q->password)
	            ? -ENOMEM
	            : pg_connect(q);
	if (r == 0 && (r = schema_setup(q)) == 0)
		r = prepare_all(q);
	if (r < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s", q->err);
		pg_close(&q->base);
		return r;
	}
	*ret = &q->base;
	return 0;
}

/* Makes q->conn from the saved parameters; 0 or -errno (libpq's message
 * in q->err). */
static int pg_connect(struct store_pg *q)
{
	const char *conninfo = q->conninfo, *user = q->user, *password = q->password;
	struct jdbc j;
	const char *keys[8], *vals[8];
	int n = 0;
	bool jdbc = parse_jdbc(conninfo, &j) == 0;
	if (jdbc) {
		keys[n] = "host", vals[n++] = j.host;
		if (j.port[0])
			keys[n] = "port", vals[n++] = j.port;
		keys[n] = "dbname", vals[n++] = j.dbname;
	} else {
		keys[n] = "dbname", vals[n++] = conninfo; /* expanded: conninfo or URI */
	}
	if (user && user[0])
		keys[n] = "user", vals[n++] = user;
	if (password && password[0])
		keys[n] = "password", vals[n++] = password;
	keys[n] = "application_name", vals[n++] = "capture-server";
	keys[n] = NULL, vals[n] = NULL;
	q->conn = PQconnectdbParams(keys, vals, !jdbc);
	if (!q->conn)
		return -ENOMEM;
	if (PQstatus(q->conn) != CONNECTION_OK) {
		set_err(q, PQerrorMessage(q->conn));
		return connect_errno(q->err);
	}
	return 0;
}
