/* hosts.c - what the server knows per host of clients, and its status file.
 *
 * A farm is operated host by host (a host that lost its clients, a host
 * whose visits all fail), so the server counts per host: the clients
 * connected now, the visits they reported and the URLs they finished
 * (malicious, errors).  A
 * host is the name in its client certificate with TLS (authenticated), else
 * the address the connection came from.  The table is bounded: hosts past
 * SRV_MAX_HOSTS are counted under "other".
 *
 * OUTDIR/status.json is rewritten (a temporary file renamed over it, so a
 * reader never sees half of it) every second; `capture-server
 * status` prints it.  It is a snapshot for operators, not a record: the
 * store and the logs are the record.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "macro.h"
#include "scheduler.h"
#include "server-internal.h"

#define SRV_MAX_HOSTS 1024

void srv_client_host(const struct srv_client *c, char *buf, size_t len)
{
	if (c->ssl && c->cert_name[0]) { /* verified, and equal to its vm-server-id */
		snprintf(buf, len, "%s", c->cert_name);
		return;
	}
	const char *p = c->peer, *colon = strrchr(p, ':');
	size_t n = colon ? (size_t)(colon - p) : strlen(p);
	if (n >= 2 && p[0] == '[' && p[n - 1] == ']') { /* "[v6]:port" */
		p++;
		n -= 2;
	}
	snprintf(buf, len, "%.*s", (int)MIN(n, len - 1), p);
}

static struct srv_host *host_get(struct srv *s, const char *name)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		if (strcmp(s->hosts[i].name, name) == 0)
			return &s->hosts[i];
	if (s->n_hosts >= SRV_MAX_HOSTS) {
		name = "other";
		for (size_t i = 0; i < s->n_hosts; i++)
			if (strcmp(s->hosts[i].name, name) == 0)
				return &s->hosts[i];
	}
	if (s->n_hosts == s->cap_hosts) {
		size_t cap = s->cap_hosts ? s->cap_hosts * 2 : 16;
		struct srv_host *h = reallocarray(s->hosts, cap + 1, sizeof(*h));
		if (!h)
			return NULL;
		s->hosts = h;
		s->cap_hosts = cap;
	}
	struct srv_host *h = &s->hosts[s->n_hosts++];
	*h = (struct srv_host){0};
	snprintf(h->name, sizeof(h->name), "%s", name);
	return h;
}

void srv_host_visit(struct srv *s, const struct srv_client *c)
{
	char name[SRV_HOST_NAME];
	srv_client_host(c, name, sizeof(name));
	struct srv_host *h = host_get(s, name);
	if (h) {
		h->visits++;
		h->last_seen = srv_wall_now();
	}
}

void srv_host_final(struct srv *s, const struct srv_client *c, enum sched_verdict v)
{
	char name[SRV_HOST_NAME];
	if (!c)
		return;
	srv_client_host(c, name, sizeof(name));
	struct srv_host *h = host_get(s, name);
	if (!h)
		return;
	h->urls++;
	h->malicious += v == VERDICT_MALICIOUS;
	h->errors += v == VERDICT_ERROR;
	h->last_seen = srv_wall_now();
}

/* Recounts the connected clients of every host (a client is counted once
 * it has said who it is). */
static void count_clients(struct srv *s)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		s->hosts[i].clients = 0;
	for (struct srv_client *c = s->clients; c; c = c->next) {
		char name[SRV_HOST_NAME];
		if (c->dead || c->fd < 0 || c->name[0] == '#')
			continue;
		srv_client_host(c, name, sizeof(name));
		struct srv_host *h = host_get(s, name);
		if (h) {
			h->clients++;
			h->last_seen =
			    MAX(h->last_seen, srv_wall_now() - (srv_now() - c->last_contact));
		}
	}
}

void srv_hosts_log(struct srv *s)
{
	count_clients(s);
	char line[1024];
	size_t off = 0;
	for (size_t i = 0; i < s->n_hosts && off < sizeof(line) - 1; i++) {
		const struct srv_host *h = &s->hosts[i];
		int k = snprintf(line + off, sizeof(line) - off,
				 "%s%s %u clients, %" PRIu64 " visits, %" PRIu64 " URLs (%" PRIu64
				 " malicious, %" PRIu64 " errors)",
				 i ? "; " : "", h->name, h->clients, h->visits, h->urls,
				 h->malicious, h->errors);
		if (k < 0)
			break;
		off = MIN(off + (size_t)k, sizeof(line) - 1);
	}
	if (s->n_hosts > 0)
		log_info("hosts: %s", line);
}

static json_object *status_json(struct srv *s, const struct srv_status_counts *n)
{
	json_object *j = json_object_new_object(), *hosts = json_object_new_array();
	char me[300];
	if (s->owner[0])
		snprintf(me, sizeof(me), "%s", s->owner);
	else
		snprintf(me, sizeof(me), "%s:%u", s->o->address ? s->o->address : "", s->o->port);
	json_object_object_add(j, "server", json_object_new_string(me));
	json_object_object_add(j, "pid", json_object_new_int64(getpid()));
	json_object_object_add(j, "updated", json_object_new_double(srv_wall_now()));
	json_object_object_add(j, "run", json_object_new_int64(s->op));
	json_object_object_add(
	    j, "algorithm", json_object_new_string(sched_algorithm_to_string(s->cfg->algorithm)));
	json_object_object_add(j, "shared", json_object_new_boolean(s->shared));
	json_object_object_add(j, "done", json_object_new_int64((int64_t)s->done));
	json_object_object_add(j, "benign", json_object_new_int64((int64_t)s->sum.benign));
	json_object_object_add(j, "malicious", json_object_new_int64((int64_t)s->sum.malicious));
	json_object_object_add(j, "errors", json_object_new_int64((int64_t)s->sum.errors));
	json_object_object_add(j, "queued", json_object_new_int64((int64_t)n->queued));
	json_object_object_add(j, "running", json_object_new_int64((int64_t)n->running));
	json_object_object_add(j, "urls_per_hour", json_object_new_double(n->urls_per_hour));
	for (size_t i = 0; i < s->n_hosts; i++) {
		const struct srv_host *h = &s->hosts[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "host", json_object_new_string(h->name));
		json_object_object_add(o, "clients", json_object_new_int64(h->clients));
		json_object_object_add(o, "visits", json_object_new_int64((int64_t)h->visits));
		json_object_object_add(o, "urls", json_object_new_int64((int64_t)h->urls));
		json_object_object_add(o, "malicious",
				       json_object_new_int64((int64_t)h->malicious));
		json_object_object_add(o, "errors", json_object_new_int64((int64_t)h->errors));
		json_object_object_add(o, "last_seen", json_object_new_double(h->last_seen));
		json_object_array_add(hosts, o);
	}
	json_object_object_add(j, "hosts", hosts);
	return j;
}

int srv_status_write(struct srv *s, const struct srv_status_counts *n)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	count_clients(s);
	if (xsnprintf(path, sizeof(path), "%s/status.json", s->o->outdir) < 0 ||
	    xsnprintf(tmp, sizeof(tmp), "%s/.status.json.tmp", s->o->outdir) < 0)
		return -ENAMETOOLONG;
	json_object *j = status_json(s, n);
	const char *text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	int r = 0;
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    rename(tmp, path) < 0)
		r = negative_errno();
	json_object_put(j);
	return r;
}

/* ---- capture-server status ---- */

static const char *ago(double t, double now, char *buf, size_t len)
{
	if (t <= 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.0f s ago", MAX(now - t, 0.0));
	return buf;
}

static int64_t get_int(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static double get_double(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0;
}

static const char *get_string(json_object *o, const char *key)
{
	json_object *v;
	const char *r = json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
	return r ? r : "";
}

int server_status_print(const char *outdir, FILE *f)
{
	char path[PATH_MAX], a[32];
	if (xsnprintf(path, sizeof(path), "%s/status.json", outdir) < 0)
		return -ENAMETOOLONG;
	json_object *j = json_object_from_file(path);
	if (!j || !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return -ENOENT;
	}
	double now = (double)time(NULL);
	fprintf(f, "server %s (pid %" PRId64 "), run %" PRId64 " (%s%s), updated %s\n",
		get_string(j, "server")[0] ? get_string(j, "server") : "-", get_int(j, "pid"),
		get_int(j, "run"), get_string(j, "algorithm"),
		json_object_get_boolean(json_object_object_get(j, "shared")) ? ", shared" : "",
		ago(get_double(j, "updated"), now, a, sizeof(a)));
	fprintf(f,
		"done %" PRId64 " (benign %" PRId64 ", malicious %" PRId64 ", errors %" PRId64
		"), queued %" PRId64 ", running %" PRId64 ", %.0f URLs/h\n",
		get_int(j, "done"), get_int(j, "benign"), get_int(j, "malicious"),
		get_int(j, "errors"), get_int(j, "queued"), get_int(j, "running"),
		get_double(j, "urls_per_hour"));
	json_object *hosts = json_object_object_get(j, "hosts");
	size_t n = hosts && json_object_is_type(hosts, json_type_array)
		       ? json_object_array_length(hosts)
		       : 0;
	fprintf(f, "%-32s %7s %8s %8s %9s %7s  %s\n", "HOST", "CLIENTS", "VISITS", "URLS",
		"MALICIOUS", "ERRORS", "LAST SEEN");
	for (size_t i = 0; i < n; i++) {
		json_object *h = json_object_array_get_idx(hosts, i);
		/* names are addresses, or certificate names that equal a vm-server-id
		 * (only [A-Za-z0-9._:@-], checked at connect) */
		fprintf(f,
			"%-32.64s %7" PRId64 " %8" PRId64 " %8" PRId64 " %9" PRId64 " %7" PRId64
			"  %s\n",
			get_string(h, "host"), get_int(h, "clients"), get_int(h, "visits"),
			get_int(h, "urls"), get_int(h, "malicious"), get_int(h, "errors"),
			ago(get_double(h, "last_seen"), now, a, sizeof(a)));
	}
	json_object_put(j);
	return 0;
}
