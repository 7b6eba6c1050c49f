/* config.c - see config.h for the design. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include "event.h"
#include "log.h"
#include "macro.h"

/* OT_SECRET: a string that config_print never shows */
enum opt_type { OT_BOOL, OT_UINT, OT_STRING, OT_SECRET, OT_ALGORITHM };

struct option_def {
	const char *element;
	const char *attr;
	enum opt_type type;
	size_t offset;
	size_t size; /* OT_STRING: buffer size */
	const char *def;
	uint32_t min, max; /* OT_UINT */
	const char *doc;
};

#define OFF(f) offsetof(struct server_config, f)
#define STR(f) OFF(f), sizeof(((struct server_config *)0)->f)
#define U32MAX UINT32_MAX

static const struct option_def options[] = {
	{"global", "collect-modified-files", OT_BOOL, OFF(collect_modified_files), 0, "false", 0, 0,
	 "ask clients for a zip of files changed during malicious visits"},
	{"global", "client-default", OT_STRING, STR(client_default), "firefox", 0, 0,
	 "program used when a URL line names none"},
	{"global", "client-default-visit-time", OT_UINT, OFF(client_default_visit_time), 0, "10",
	 0, 3600, "seconds a page is watched after it loaded"},
	{"global", "capture-network-packets-malicious", OT_BOOL,
	 OFF(capture_network_packets_malicious), 0, "false", 0, 0, "keep a pcap of malicious visits"},
	{"global", "capture-network-packets-benign", OT_BOOL, OFF(capture_network_packets_benign),
	 0, "false", 0, 0, "keep a pcap of benign visits"},
	{"global", "send-exclusion-lists", OT_BOOL, OFF(send_exclusion_lists), 0, "false", 0, 0,
	 "push the <exclusion-list> files to every client"},
	{"global", "terminate", OT_BOOL, OFF(terminate), 0, "true", 0, 0,
	 "exit when every URL is done and the input has ended"},
	{"global", "group_size", OT_UINT, OFF(group_size), 0, "20", 1, 1000,
	 "URLs per visit-event"},
	{"global", "vm_stalled_after_revert_timeout", OT_UINT, OFF(vm_stalled_after_revert_timeout),
	 0, "120", 1, 86400, "seconds a client may take to connect after a revert"},
	{"global", "revert_timeout", OT_UINT, OFF(revert_timeout), 0, "120", 1, 86400,
	 "seconds a revert (client restart) may take"},
	{"global", "client_inactivity_timeout", OT_UINT, OFF(client_inactivity_timeout), 0, "60", 1,
	 86400, "seconds without any message before a client is dropped"},
	{"global", "vm_stalled_during_operation_timeout", OT_UINT,
	 OFF(vm_stalled_during_operation_timeout), 0, "300", 1, 86400,
	 "seconds a client may spend on one group"},
	{"global", "same_vm_revert_delay", OT_UINT, OFF(same_vm_revert_delay), 0, "0", 0, 3600,
	 "pause in seconds before a client is restarted (the original: 6)"},
	{"global", "different_vm_revert_delay", OT_UINT, OFF(different_vm_revert_delay), 0, "0", 0,
	 3600, "pause in seconds between restarts of different clients (the original: 24)"},
	{"global", "algorithm", OT_ALGORITHM, OFF(algorithm), 0, "dac", 0, 0,
	 "visitation algorithm: seq, bulk or dac"},
	{"global", "max-message-size", OT_UINT, OFF(max_message_size), 0, "1048576", 1024,
	 64u << 20, "bytes; a longer client message ends that connection"},
	{"global", "ping-interval", OT_UINT, OFF(ping_interval), 0, "10", 1, 3600,
	 "seconds between pings"},
	{"global", "terminate-grace", OT_UINT, OFF(terminate_grace), 0, "300", 0, 86400,
	 "with terminate and a list without an end line: seconds before an idle run may end"},
	{"global", "stats-interval", OT_UINT, OFF(stats_interval), 0, "300", 1, 86400,
	 "seconds between stats.log rows (the original: 300)"},
	{"global", "max-connections", OT_UINT, OFF(max_connections), 0, "1024", 1, 65536,
	 "client connections open at once; more are closed as they come"},
	{"global", "max-pending-input", OT_UINT, OFF(max_pending_input), 0, "67108864", 65536,
	 UINT32_MAX, "bytes of unfinished messages over all connections; beyond, the sender "
	 "whose message is oldest is closed"},
	{"global", "tls-dir", OT_STRING, STR(tls_dir), "", 0, 0,
	 "mutual TLS: folder made by capture-server ca init (ca.pem, server.pem, server.key); "
	 "empty: plain text"},
	{"global", "plaintext-clients", OT_STRING, STR(plaintext_clients), "refuse", 0, 0,
	 "without tls-dir, \"allow\" lets the server listen in plain text on a non-loopback "
	 "address (warned at every start)"},
	{"global", "max-upload-per-visit", OT_UINT, OFF(max_upload_per_visit), 0, "268435456", 0,
	 UINT32_MAX, "bytes a client may upload for one visit (all files)"},
	{"database", "database-type", OT_STRING, STR(database_type), "sqlite", 0, 0,
	 "store backend: sqlite or postgresql (MySQL is reported and ignored)"},
	{"database", "database-url", OT_STRING, STR(database_url), "results.db", 0, 0,
	 "sqlite: store file, relative to the output folder; postgresql: "
	 "jdbc:postgresql://host[:port]/db, a libpq conninfo or service=NAME"},
	{"database", "database-username", OT_STRING, STR(database_username), "", 0, 0,
	 "postgresql: role to log in as (empty: libpq's default)"},
	{"database", "database-password", OT_SECRET, STR(database_password), "", 0, 0,
	 "postgresql: password (prefer password-file or ~/.pgpass)"},
	{"database", "password-file", OT_STRING, STR(database_password_file), "", 0, 0,
	 "postgresql: file whose first line is the password, relative to the config's folder"},
	{"database", "lease-seconds", OT_UINT, OFF(lease_seconds), 0, "30", 2, 3600,
	 "postgresql: how long a server's claim on a URL of a shared run lasts without "
	 "renewal (renewed every third of it); a dead server's URLs return after it"},
	{"local-sandbox", "clients", OT_UINT, OFF(local_clients), 0, "0", 0, 1024,
	 "capture-client processes to start and supervise; 0 = one per online CPU"},
	{"local-sandbox", "max-restarts-per-minute", OT_UINT, OFF(max_restarts_per_minute), 0, "10",
	 1, 1000, "restarts of one client within 60 s before the next waits"},
	{"local-sandbox", "client-path", OT_STRING, STR(client_path), "capture-client", 0, 0,
	 "the capture-client executable (PATH is searched)"},
	{"local-sandbox", "client-args", OT_STRING, STR(client_args), "", 0, 0,
	 "extra arguments for every client, split on spaces"},
};

/* First error only, as "FILE:LINE: message". */
struct errbuf {
	char *buf;
	size_t len;
	bool set;
};

_printf_(4, 5) static void err_set(struct errbuf *e, const char *file, long line,
                                   const char *fmt, ...)
{
	if (e->set || e->len == 0)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	snprintf(e->buf, e->len, "%s:%ld: %s", file, line, msg);
	e->set = true;
}

static void xml_error(void *ud, xmlErrorPtr x)
{
	struct errbuf *e = ud;
	err_set(e, x->file ? x->file : "config", x->line, "%s", x->message ? x->message : "error");
}

static int set_option(struct server_config *c, const struct option_def *o, const char *v)
{
	char *p = (char *)c + o->offset;
	switch (o->type) {
	case OT_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*(bool *)p = true;
		else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			*(bool *)p = false;
		else
			return -EINVAL;
		return 0;
	case OT_UINT: {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		if (errno || end == v || *end || v[0] == '-' || n < o->min || n > o->max)
			return -ERANGE;
		*(uint32_t *)p = (uint32_t)n;
		return 0;
	}
	case OT_STRING:
	case OT_SECRET:
		if (strlen(v) >= o->size)
			return -ENAMETOOLONG;
		memcpy(p, v, strlen(v) + 1);
		return 0;
	case OT_ALGORITHM:
		return sched_algorithm_from_string(v, (enum sched_algorithm *)p);
	}
	return -EINVAL;
}

void config_defaults(struct server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->backend = BACKEND_LOCAL;
	for (size_t i = 0; i < ELEMENTSOF(options); i++)
		(void)set_option(c, &options[i], options[i].def); /* defaults are valid */
}

/* Applies every table entry of element node n. */
static int apply_element(struct server_config *c, xmlNode *n, const char *file,
                         struct errbuf *e)
{
	for (size_t i = 0; i < ELEMENTSOF(options); i++) {
		const struct option_def *o = &options[i];
		if (strcmp((const char *)n->name, o->element) != 0)
			continue;
		xmlChar *v = xmlGetProp(n, (const xmlChar *)o->attr);
		if (!v)
			continue;
		int r = set_option(c, o, (const char *)v);
		if (r < 0) {
			if (o->type == OT_UINT)
				err_set(e, file, xmlGetLineNo(n),
				        "%s %s=\"%s\": must be a number from %u to %u", o->element,
				        o->attr, (const char *)v, o->min, o->max);
			else
				err_set(e, file, xmlGetLineNo(n), "%s %s=\"%s\": invalid value",
				        o->element, o->attr, (const char *)v);
			xmlFree(v);
			return -EINVAL;
		}
		xmlFree(v);
	}
	return 0;
}

/* An entry of an original config that cannot apply here: one log line. */
_printf_(4, 5) static void ignored(struct server_config *c, const char *file, xmlNode *n,
                                   const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s:%ld: %s", file, xmlGetLineNo(n), msg);
	c->n_ignored++;
}

/* Up to 80 bytes of attribute attr of n for a message ("" if absent). */
static void prop(xmlNode *n, const char *attr, char *buf, size_t size)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)attr);
	snprintf(buf, size, "%.80s", v ? (const char *)v : "");
	xmlFree(v);
}

static int apply_vm_server(struct server_config *c, xmlNode *n, const char *file,
                           bool *backend_seen)
{
	char type[96];
	prop(n, "type", type, sizeof(type));
	if (strcmp(type, "no-vm-server") == 0) {
		c->backend = BACKEND_NONE;
		*backend_seen = true;
		return 0;
	}
	ignored(c, file, n,
	        "virtual-machine-server type=\"%s\" ignored: Capture runs its clients in Linux "
	        "sandboxes, not in VMware/Windows guests (clients come from <local-sandbox>)",
	        type);
	for (xmlNode *k = n->children; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		char vm[96];
		prop(k, "vm-path", vm, sizeof(vm));
		ignored(c, file, k, "%s vm-path=\"%s\" ignored (guest of an ignored %s server)",
		        (const char *)k->name, vm, type);
	}
	return 0;
}

static int apply_special(struct server_config *c, xmlNode *n, const char *file,
                         struct errbuf *e, bool *backend_seen)
{
	const char *name = (const char *)n->name;
	if (strcmp(name, "local-sandbox") == 0 || strcmp(name, "no-vm-server") == 0) {
		if (*backend_seen) {
			err_set(e, file, xmlGetLineNo(n),
			        "<%s>: only one of <local-sandbox>, <no-vm-server> and "
			        "<virtual-machine-server type=\"no-vm-server\"> may be given",
			        name);
			return -EINVAL;
		}
		*backend_seen = true;
		c->backend = name[0] == 'l' ? BACKEND_LOCAL : BACKEND_NONE;
	} else if (strcmp(name, "virtual-machine-server") == 0) {
		if (*backend_seen && xmlHasProp(n, (const xmlChar *)"type")) {
			char type[96];
			prop(n, "type", type, sizeof(type));
			if (strcmp(type, "no-vm-server") == 0) {
				err_set(e, file, xmlGetLineNo(n),
				        "<virtual-machine-server type=\"no-vm-server\">: a backend was "
				        "already given");
				return -EINVAL;
			}
		}
		return apply_vm_server(c, n, file, backend_seen);
	} else if (strcmp(name, "preprocessor") == 0 || strcmp(name, "postprocessor") == 0) {
		char cls[96];
		prop(n, "classname", cls, sizeof(cls));
		ignored(c, file, n, "<%s classname=\"%s\"> ignored (Java plug-ins are not supported)",
		        name, cls);
	} else if (strcmp(name, "exclusion-list") == 0) {
		if (c->n_exclusions == CONFIG_MAX_EXCLUSIONS) {
			err_set(e, file, xmlGetLineNo(n), "more than %d exclusion lists",
			        CONFIG_MAX_EXCLUSIONS);
			return -EINVAL;
		}
		xmlChar *m = xmlGetProp(n, (const xmlChar *)"monitor");
		xmlChar *f = xmlGetProp(n, (const xmlChar *)"file");
		size_t k = c->n_exclusions++;
		cap_strlcpy(c->exclusions[k].monitor, m ? (const char *)m : "",
		            sizeof(c->exclusions[k].monitor));
		/* relative to the config's folder (the original: both in the cwd) */
		const char *fs = f ? (const char *)f : "";
		const char *slash = strrchr(file, '/');
		int r = 0;
		if (fs[0] != '/' && slash)
			r = xsnprintf(c->exclusions[k].file, sizeof(c->exclusions[k].file), "%.*s/%s",
			              (int)(slash - file), file, fs);
		else
			r = xsnprintf(c->exclusions[k].file, sizeof(c->exclusions[k].file), "%s", fs);
		xmlFree(m);
		xmlFree(f);
		if (r < 0) {
			err_set(e, file, xmlGetLineNo(n), "exclusion-list file: path too long");
			return -EINVAL;
		}
	}
	return 0;
}

/* <database>: sqlite and postgresql are ours; an original MySQL entry is
 * ignored. */
static bool database_ignored(struct server_config *c, xmlNode *n, const char *file)
{
	if (strcmp((const char *)n->name, "database") != 0)
		return false;
	char type[96];
	prop(n, "database-type", type, sizeof(type));
	if (type[0] == '\0' || strcasecmp(type, "sqlite") == 0 ||
	    strcasecmp(type, "postgresql") == 0)
		return false;
	ignored(c, file, n,
	        "database database-type=\"%s\" ignored: only sqlite and postgresql are "
	        "supported; results go to %s in the output folder",
	        type, c->database_url);
	return true;
}

/* Reads password-file (its first line) into database_password, so that the
 * secret need not sit in the config; a password that others can read is
 * worth a warning, not a refusal (the operator may have reasons). */
static int database_password(struct server_config *c, const char *file, struct errbuf *e)
{
	struct stat st;
	if (c->database_password[0] && stat(file, &st) == 0 && (st.st_mode & S_IROTH))
		log_warnx("%s: holds a database password and is world-readable (use "
		          "password-file or chmod o-r)",
		          file);
	if (!c->database_password_file[0])
		return 0;
	char path[PATH_MAX];
	const char *pf = c->database_password_file, *slash = strrchr(file, '/');
	int r = pf[0] != '/' && slash
	                ? xsnprintf(path, sizeof(path), "%.*s/%s", (int)(slash - file), file, pf)
	                : xsnprintf(path, sizeof(path), "%s", pf);
	_cleanup_fclose_ FILE *f = r < 0 ? NULL : fopen(path, "re");
	if (!f) {
		r = r < 0 ? r : negative_errno();
		err_set(e, file, 0, "database password-file %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
		log_warnx("%s: the database password file is world-readable", path);
	char line[sizeof(c->database_password) + 1];
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strlen(line) >= sizeof(c->database_password)) {
		err_set(e, file, 0, "database password-file %s: password too long", path);
		return -EINVAL;
	}
	memcpy(c->database_password, line, strlen(line) + 1);
	return 0;
}

static int validate(xmlDoc *doc, const char *xsd_path, struct errbuf *e)
{
	xmlSchemaParserCtxt *pc = xmlSchemaNewParserCtxt(xsd_path);
	if (!pc)
		return -ENOMEM;
	xmlSchemaSetParserStructuredErrors(pc, xml_error, e);
	xmlSchema *schema = xmlSchemaParse(pc);
	xmlSchemaFreeParserCtxt(pc);
	if (!schema) {
		err_set(e, xsd_path, 0, "cannot load the schema");
		return -EINVAL;
	}
	xmlSchemaValidCtxt *vc = xmlSchemaNewValidCtxt(schema);
	int r = -ENOMEM;
	if (vc) {
		xmlSchemaSetValidStructuredErrors(vc, xml_error, e);
		r = xmlSchemaValidateDoc(vc, doc) == 0 ? 0 : -EINVAL;
		xmlSchemaFreeValidCtxt(vc);
	}
	xmlSchemaFree(schema);
	return r;
}

int config_load(const char *path, const char *xsd_path, struct server_config *ret, char *err,
                size_t errlen)
{
	struct errbuf e = {err, errlen, false};
	if (errlen)
		err[0] = '\0';
	if (access(path, R_OK) < 0) {
		int r = negative_errno();
		err_set(&e, path, 0, "%s", strerror(-r));
		return r;
	}
	xmlParserCtxt *ctx = xmlNewParserCtxt();
	if (!ctx)
		return -ENOMEM;
	xmlSetStructuredErrorFunc(&e, xml_error);
	xmlDoc *doc = xmlCtxtReadFile(ctx, path, NULL, XML_PARSE_NONET);
	int r = doc ? validate(doc, xsd_path, &e) : -EINVAL;
	struct server_config c;
	bool backend_seen = false;
	unsigned seen_global = 0, seen_db = 0;
	config_defaults(&c);
	for (xmlNode *n = doc && r == 0 ? xmlDocGetRootElement(doc)->children : NULL; n && r == 0;
	     n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		const char *name = (const char *)n->name;
		if ((strcmp(name, "global") == 0 && seen_global++) ||
		    (strcmp(name, "database") == 0 && seen_db++)) {
			err_set(&e, path, xmlGetLineNo(n), "<%s> may be given only once", name);
			r = -EINVAL;
			break;
		}
		if (database_ignored(&c, n, path))
			continue;
		r = apply_element(&c, n, path, &e);
		if (r == 0)
			r = apply_special(&c, n, path, &e, &backend_seen);
	}
	if (r == 0)
		r = database_password(&c, path, &e);
	if (r == 0 && c.local_clients == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		c.local_clients = cpus < 1 ? 1 : cpus > 1024 ? 1024 : (uint32_t)cpus;
	}
	xmlSetStructuredErrorFunc(NULL, NULL);
	if (!doc)
		err_set(&e, path, 0, "not well-formed XML");
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctx);
	if (r < 0)
		return r;
	*ret = c;
	return 0;
}

void config_print_table(FILE *f)
{
	for (size_t i = 0; i < ELEMENTSOF(options); i++)
		fprintf(f, "%-14s %-36s %-14s %s\n", options[i].element, options[i].attr,
		        options[i].def[0] ? options[i].def : "\"\"", options[i].doc);
}

void config_print(const struct server_config *c, FILE *f)
{
	for (size_t i = 0; i < ELEMENTSOF(options); i++) {
		const struct option_def *o = &options[i];
		const char *p = (const char *)c + o->offset;
		fprintf(f, "%s.%s = ", o->element, o->attr);
		switch (o->type) {
		case OT_BOOL:
			fprintf(f, "%s\n", *(const bool *)p ? "true" : "false");
			break;
		case OT_UINT:
			fprintf(f, "%u\n", *(const uint32_t *)p);
			break;
		case OT_STRING:
			fprintf(f, "%s\n", p);
			break;
		case OT_SECRET:
			fprintf(f, "%s\n", p[0] ? "(set, not shown)" : "");
			break;
		case OT_ALGORITHM:
			fprintf(f, "%s\n", sched_algorithm_to_string(*(const enum sched_algorithm *)p));
			break;
		}
	}
	fprintf(f, "backend = %s\n", c->backend == BACKEND_LOCAL ? "local-sandbox" : "no-vm-server");
	for (size_t i = 0; i < c->n_exclusions; i++)
		fprintf(f, "exclusion-list = %s %s\n", c->exclusions[i].monitor, c->exclusions[i].file);
}
