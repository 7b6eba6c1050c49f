/* store.c - store_open: the config's database-type picks the backend.
 *
 * Kept apart from the backends so that server.c and the tools name no
 * backend, and so that the owner string (who finished a URL, who holds a
 * lease) is made in one place: "HOST:PID", unique among the servers that
 * share a PostgreSQL database at one time.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "store.h"

int store_open_err(const struct server_config *cfg, const char *sqlite_path, char *err,
		   size_t errlen, struct store **ret)
{
	const char *type = cfg->database_type;
	struct store *st = NULL;
	int r;
	if (err && errlen)
		err[0] = '\0';
	if (type[0] == '\0' || strcasecmp(type, "sqlite") == 0)
		r = store_sqlite_open(sqlite_path, &st);
	else if (strcasecmp(type, "postgresql") == 0)
		r = store_pg_open(cfg->database_url, cfg->database_username, cfg->database_password,
				  err, errlen, &st);
	else
		r = -EOPNOTSUPP;
	if (r < 0)
		return r;
	char host[200] = "";
	char owner[256];
	(void)gethostname(host, sizeof(host) - 1);
	snprintf(owner, sizeof(owner), "%s:%ld", host[0] ? host : "localhost", (long)getpid());
	r = store_set_owner(st, owner);
	if (r < 0) {
		store_close(st);
		return r;
	}
	*ret = st;
	return 0;
}

int store_sqlite_path(const struct server_config *cfg, const char *outdir, char *buf, size_t len)
{
	const char *db = cfg->database_url;
	int n = db[0] == '/' ? snprintf(buf, len, "%s", db) : snprintf(buf, len, "%s/%s", outdir, db);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int store_open(const struct server_config *cfg, const char *sqlite_path, struct store **ret)
{
	return store_open_err(cfg, sqlite_path, NULL, 0, ret);
}
