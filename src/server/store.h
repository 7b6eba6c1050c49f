/* store.h - the server's persistent store, behind a vtable.
 *
 * Owns the run's durable state: operations (runs), every accepted URL with
 * its one final status, the events, errors and evidence files of a visit.
 * A URL is written before it is queued and gets its final status with a
 * conditional UPDATE (status IS NULL), so after a crash or kill -9
 * `capture-server resume` reloads exactly the URLs without a final state and
 * no URL can be finished twice.  The files a final status produces (its log
 * line, its JSON report) are journaled in the same transaction and dropped
 * once written, so that resume can write what a kill interrupted.  Two
 * backends: SQLite (store-sqlite.c, one file, WAL, one server) and
 * PostgreSQL (store-pg.c, several servers sharing one run through leases:
 * url_claim hands each URL to one owner at a time, lease_renew keeps it,
 * an expired lease lets another server claim it again).  store_open
 * (store.c) chooses by the config's database-type.
 * Statuses use the original's letters: 'B' benign, 'M' malicious, 'E' error.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct store;

typedef int (*store_url_fn)(void *userdata, int64_t id, const char *url, const char *client,
			    uint32_t time, double priority);

typedef int (*store_output_fn)(void *userdata, int64_t url_id, int log, const char *line,
			       const char *report_name, const char *report);

/* One URL with its final status (url_finals). */
struct store_final {
	int64_t id;
	const char *url;
	const char *client;
	uint32_t time;
	double priority;
	char status;		 /* 'B', 'M' or 'E' */
	uint32_t major, minor;	 /* error codes of an 'E', else 0 */
	double finished;	 /* seconds since the epoch (the database's clock) */
	const char *finished_by; /* owner of the store that set it; "" if unknown */
};

typedef int (*store_final_fn)(void *userdata, const struct store_final *f);

typedef int (*store_line_fn)(void *userdata, int64_t url_id, int log, const char *line);

/* Where a run's URL list was read up to (resume continues there). */
struct store_input {
	char *path;	/* absolute; NULL for stdin (cannot be continued) */
	int64_t offset; /* bytes of whole lines read and accepted */
	int64_t line;	/* lines read */
	bool done;	/* the list ended ("end" line or EOF of a stream) */
};

struct store_ops {
	void (*close)(struct store *st);
	int (*tx_begin)(struct store *st);
	int (*tx_commit)(struct store *st);
	int (*operation_begin)(struct store *st, const char *algorithm, int64_t *ret_op);
	int (*operation_resume)(struct store *st, int64_t *ret_op);
	int (*operation_finish)(struct store *st, int64_t op);
	int (*url_add)(struct store *st, int64_t op, const char *url, const char *client,
		       uint32_t time, double priority, int64_t *ret_id);
	int (*url_final)(struct store *st, int64_t id, char status, uint32_t major, uint32_t minor);
	int (*url_pending)(struct store *st, int64_t op, store_url_fn fn, void *userdata);
	int (*event_add)(struct store *st, int64_t url_id, uint32_t group, const char *type,
			 const char *time, const char *process_id, const char *process,
			 const char *action, const char *object1, const char *object2,
			 const char *command_line);
	int (*file_add)(struct store *st, int64_t url_id, uint32_t group, const char *path);
	int (*count)(struct store *st, int64_t op, char status, int64_t *ret);
	int (*output_add)(struct store *st, int64_t url_id, int log, const char *line,
			  const char *report_name, const char *report);
	int (*output_done)(struct store *st, int64_t url_id);
	int (*output_pending)(struct store *st, store_output_fn fn, void *userdata);
	int (*input_set)(struct store *st, int64_t op, const struct store_input *in);
	int (*input_get)(struct store *st, int64_t op, struct store_input *ret);
	int (*url_known)(struct store *st, int64_t op, const char *url, const char *client,
			 uint32_t time);
	const char *(*errmsg)(struct store *st);
	int (*set_owner)(struct store *st, const char *owner);
	int (*url_claim)(struct store *st, int64_t op, const char *owner, unsigned max,
			 unsigned lease_seconds, store_url_fn fn, void *userdata);
	int (*lease_renew)(struct store *st, const char *owner, unsigned lease_seconds);
	int (*url_finals)(struct store *st, int64_t op, store_final_fn fn, void *userdata);
	int (*lease_release)(struct store *st, int64_t op, const char *owner);
	int (*operation_last)(struct store *st, int64_t *ret_op);
	int (*final_lines)(struct store *st, int64_t op, store_line_fn fn, void *userdata);
};

struct store {
	const struct store_ops *ops;
	bool shared; /* several servers may use it at once (PostgreSQL): runs are shared */
	unsigned reconnects; /* times a broken connection was made again (PostgreSQL) */
};

/* Opens (creating if needed) the SQLite store at path, in WAL mode.
 * Returns 0 or -errno (-EIO for an SQLite error, -EPROTO for a file that is
 * not a Capture store). */
int store_sqlite_open(const char *path, struct store **ret);

/* Opens (creating or migrating the schema if needed) the PostgreSQL store.
 * conninfo is a libpq conninfo string ("host=/run/pg dbname=capture",
 * "service=capture"), a postgresql:// URI or the original's JDBC form
 * "jdbc:postgresql://host[:port]/db" (also "host[:port]/db"); user and
 * password may be NULL (libpq's defaults, ~/.pgpass).  Returns 0,
 * -ECONNREFUSED when no connection can be made (-EACCES for a refused
 * login, -EHOSTUNREACH for an unknown host), -EIO for a server error,
 * -EPROTO for a database whose schema is newer than ours.  When err is
 * not NULL the libpq message of a failure is written there. */
int store_pg_open(const char *conninfo, const char *user, const char *password, char *err,
		  size_t errlen, struct store **ret);

struct server_config;

/* Opens the store the config names: database-type sqlite (sqlite_path, the
 * config's database-url already made absolute by the caller) or
 * postgresql (database-url, -username, -password or -password-file).
 * Returns 0 or -errno as the backend's open; -EOPNOTSUPP for another type. */
int store_open(const struct server_config *cfg, const char *sqlite_path, struct store **ret);

/* The SQLite file the config names for output folder outdir: database-url
 * as it is if absolute, else relative to outdir.  0 or -ENAMETOOLONG. */
int store_sqlite_path(const struct server_config *cfg, const char *outdir, char *buf,
                      size_t len);

/* Like store_open, with the backend's message of a failure in err. */
int store_open_err(const struct server_config *cfg, const char *sqlite_path, char *err,
		   size_t errlen, struct store **ret);

/* Closes the store; NULL is a no-op. */
static inline void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}
/* Groups many writes into one transaction (e.g. a batch of input lines). */
static inline int store_tx_begin(struct store *st)
{
	return st->ops->tx_begin(st);
}
static inline int store_tx_commit(struct store *st)
{
	return st->ops->tx_commit(st);
}
/* Starts a new run and returns its id. */
static inline int store_operation_begin(struct store *st, const char *alg, int64_t *ret_op)
{
	return st->ops->operation_begin(st, alg, ret_op);
}
/* The newest unfinished run, or -ENOENT. */
static inline int store_operation_resume(struct store *st, int64_t *ret_op)
{
	return st->ops->operation_resume(st, ret_op);
}
/* Marks a run finished (all its URLs final). */
static inline int store_operation_finish(struct store *st, int64_t op)
{
	return st->ops->operation_finish(st, op);
}
/* Records an accepted URL of run op; returns its id. */
static inline int store_url_add(struct store *st, int64_t op, const char *url, const char *client,
				uint32_t time, double priority, int64_t *ret_id)
{
	return st->ops->url_add(st, op, url, client, time, priority, ret_id);
}
/* Sets a URL's final status ('B','M','E') and records when (the
 * database's clock for PostgreSQL) and by whom (the store's owner, see
 * store_set_owner); -EALREADY if it already had one (also when another
 * server set it) or for an unknown id, -EINVAL for another letter. */
static inline int store_url_final(struct store *st, int64_t id, char status, uint32_t major,
				  uint32_t minor)
{
	return st->ops->url_final(st, id, status, major, minor);
}
/* Calls fn for every URL of run op without a final status, in id order;
 * stops at and returns the first negative value fn returns. */
static inline int store_url_pending(struct store *st, int64_t op, store_url_fn fn, void *ud)
{
	return st->ops->url_pending(st, op, fn, ud);
}
/* Records one system event of a visit (strings as received, may be NULL). */
static inline int store_event_add(struct store *st, int64_t url_id, uint32_t group,
				  const char *type, const char *time, const char *pid,
				  const char *process, const char *action, const char *o1,
				  const char *o2, const char *cmdline)
{
	return st->ops->event_add(st, url_id, group, type, time, pid, process, action, o1, o2,
				  cmdline);
}
/* Records an evidence file (a path inside the output folder). */
static inline int store_file_add(struct store *st, int64_t url_id, uint32_t group, const char *path)
{
	return st->ops->file_add(st, url_id, group, path);
}
/* Number of URLs of run op with the given status (0 = no final status yet). */
static inline int store_count(struct store *st, int64_t op, char status, int64_t *ret)
{
	return st->ops->count(st, op, status, ret);
}
/* Journals the output of a URL's final status (its rendered log line for
 * output_final_line, its report name and text, both NULL if none); call it
 * in the transaction that records the status. */
static inline int store_output_add(struct store *st, int64_t url_id, int log, const char *line,
				   const char *report_name, const char *report)
{
	return st->ops->output_add(st, url_id, log, line, report_name, report);
}
/* Drops the journal entry of a URL whose files are written. */
static inline int store_output_done(struct store *st, int64_t url_id)
{
	return st->ops->output_done(st, url_id);
}
/* Calls fn for every journal entry of a URL with a final status, in id
 * order (a shared store: only of the URLs its owner finished, so that a
 * server of a shared run writes only its own; store_set_owner); stops at
 * and returns the first negative value fn returns. */
static inline int store_output_pending(struct store *st, store_output_fn fn, void *ud)
{
	return st->ops->output_pending(st, fn, ud);
}
/* Records how far run op's list was read; call it in the transaction that
 * adds the URLs of those lines, so that both survive a kill together. */
static inline int store_input_set(struct store *st, int64_t op, const struct store_input *in)
{
	return st->ops->input_set(st, op, in);
}
/* The recorded input of run op (ret->path malloc'ed); -ENOENT for no run. */
static inline int store_input_get(struct store *st, int64_t op, struct store_input *ret)
{
	return st->ops->input_get(st, op, ret);
}
/* 1 if run op already has this URL (same client and visit time), else 0. */
static inline int store_url_known(struct store *st, int64_t op, const char *url, const char *client,
				  uint32_t time)
{
	return st->ops->url_known(st, op, url, client, time);
}
/* The message of the last failed operation (libpq or SQLite text), "" if
 * none; valid until the next operation on st. */
static inline const char *store_errmsg(struct store *st)
{
	return st->ops->errmsg(st);
}
/* Names this server in the store: url_final records it as finished_by and
 * url_claim/lease_renew use it when their owner is NULL.  Returns 0,
 * -EINVAL for an empty or too long name (over 255 bytes). */
static inline int store_set_owner(struct store *st, const char *owner)
{
	return st->ops->set_owner(st, owner);
}
/* Atomically claims up to max URLs of run op that have no final status and
 * no lease or an expired one (judged by the database's clock, so hosts'
 * clocks do not matter), highest priority first, then by id: sets their
 * owner (NULL = the store's owner) and a lease of lease_seconds, then calls
 * fn for each in that order.  Two stores never claim the same URL while
 * its lease runs.  Returns the number claimed (0 = none left to claim),
 * the first negative value fn returns, or -errno. */
static inline int store_url_claim(struct store *st, int64_t op, const char *owner, unsigned max,
				  unsigned lease_seconds, store_url_fn fn, void *ud)
{
	return st->ops->url_claim(st, op, owner, max, lease_seconds, fn, ud);
}
/* Extends to now + lease_seconds the leases of owner's (NULL = the store's
 * owner) URLs without a final status; returns how many or -errno. */
static inline int store_lease_renew(struct store *st, const char *owner, unsigned lease_seconds)
{
	return st->ops->lease_renew(st, owner, lease_seconds);
}
/* Calls fn for every URL of run op with a final status, in id order (for
 * an export of a run's logs); stops at and returns the first negative
 * value fn returns.  The strings are valid during the call only. */
static inline int store_url_finals(struct store *st, int64_t op, store_final_fn fn, void *ud)
{
	return st->ops->url_finals(st, op, fn, ud);
}
/* Gives the URLs of run op that owner (NULL = the store's owner) holds
 * without a final status back to the queue (its server stops, or starts
 * again after a crash); returns how many or -errno. */
static inline int store_lease_release(struct store *st, int64_t op, const char *owner)
{
	return st->ops->lease_release(st, op, owner);
}
/* The newest run, finished or not; -ENOENT if there is none. */
static inline int store_operation_last(struct store *st, int64_t *ret_op)
{
	return st->ops->operation_last(st, ret_op);
}
/* Calls fn with the final line of every URL of run op as it was journaled
 * (store_output_add; kept after the journal entry is dropped), in the
 * order they were finished; stops at and returns the first negative value
 * fn returns. */
static inline int store_final_lines(struct store *st, int64_t op, store_line_fn fn, void *ud)
{
	return st->ops->final_lines(st, op, fn, ud);
}
/* True for a store that several servers can share (PostgreSQL). */
static inline bool store_is_shared(const struct store *st)
{
	return st->shared;
}
