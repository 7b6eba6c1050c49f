/* options.c - capture-client's command line (the options manager of the seed
 * design).  One table drives both parsing and --help, so they cannot drift. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture-config.h"
#include "client.h"
#include "log.h"
#include "urllist.h"

enum {
	OPT_VISIT = 0x100,
	OPT_PROGRAM,
	OPT_VISIT_TIME,
	OPT_ALGORITHM,
	OPT_ALL_EVENTS,
	OPT_EXCLUSIONS,
	OPT_APPS,
	OPT_HEADFUL,
	OPT_LOAD_TIMEOUT,
	OPT_IMAGE,
	OPT_HOST,
	OPT_BIND,
	OPT_RESOLVER,
	OPT_NO_NETWORK,
	OPT_NAT,
	OPT_MEMORY,
	OPT_TMPFS,
	OPT_PIDS,
	OPT_BULK_MEMORY,
	OPT_WORK_DIR,
	OPT_COLLECT,
	OPT_PCAP,
	OPT_TRIES,
	OPT_NO_MONITOR,
	OPT_REPORT_OPEN,
	OPT_REPORT_READ,
	OPT_VERSION,
	OPT_CALIBRATE,
	OPT_ROUNDS,
	OPT_CAL_LIST,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
};

struct opt {
	const char *name;
	int has_arg;
	int val;
	const char *arg;
	const char *help;
};

static const struct opt opts[] = {
	{"server", required_argument, 's', "ADDR", "server address (server mode); without it, --visit is needed"},
	{"port", required_argument, 'p', "PORT", "server port (default 7070)"},
	{"vm-server-id", required_argument, 'a', "ID", "vm-server id sent in connect (default 1)"},
	{"vm-id", required_argument, 'b', "ID", "vm id sent in connect (default 1)"},
	{"connect-tries", required_argument, OPT_TRIES, "N", "connection attempts, 1 s apart (default 10)"},
	{"config", required_argument, 'c', "FILE", "read key = value lines first (server, port, vm-server-id, vm-id, connect-tries, tls-ca, tls-cert, tls-key); flags override them (docs/client.md)"},
	{"tls-ca", required_argument, OPT_TLS_CA, "FILE", "mutual TLS: the farm CA's certificate (capture-server ca init: ca.pem)"},
	{"tls-cert", required_argument, OPT_TLS_CERT, "FILE", "mutual TLS: this host's certificate, named as its vm-server-id (ca issue: hosts/ID.pem)"},
	{"tls-key", required_argument, OPT_TLS_KEY, "FILE", "mutual TLS: its private key (mode 0600, ours or root's)"},
	{"visit", required_argument, OPT_VISIT, "URL", "standalone: visit URL (repeatable: one group) and print the events"},
	{"program", required_argument, OPT_PROGRAM, "NAME", "standalone: application (default chromium); --calibrate: one to calibrate (repeatable; default every installed one of the list)"},
	{"visit-time", required_argument, OPT_VISIT_TIME, "SECONDS", "standalone: seconds to stay after load (default 0)"},
	{"algorithm", required_argument, OPT_ALGORITHM, "seq|bulk|dac", "standalone: visit mode (default: the application's)"},
	{"calibrate", no_argument, OPT_CALIBRATE, NULL, "visit benign pages with each program and print every event its profile does not exclude as a candidate exclusion line (docs/exclusion-lists.md); exit 1 if there was one, 2 on a failed visit"},
	{"rounds", required_argument, OPT_ROUNDS, "N", "--calibrate: visits of every URL with every program, each in a fresh sandbox (default 3)"},
	{"calibration-list", required_argument, OPT_CAL_LIST, "FILE", "--calibrate: benign URLs as url::program lines (default " CAPTURE_SRCDIR "/etc/calibration.txt, the bundled test web: scripts/calibrate starts it); --visit URLs replace it"},
	{"all-events", no_argument, OPT_ALL_EVENTS, NULL, "standalone: print excluded events too (marked '+')"},
	{"exclusions", required_argument, OPT_EXCLUSIONS, "DIR", "exclusion profiles, one folder per application (default " CAPTURE_SRCDIR "/etc/exclusion); an application without one is named at start"},
	{"applications", required_argument, OPT_APPS, "FILE", "applications.conf (default " CAPTURE_SRCDIR "/etc/applications.conf)"},
	{"headful", no_argument, OPT_HEADFUL, NULL, "run browsers under Xvfb inside the sandbox"},
	{"load-timeout", required_argument, OPT_LOAD_TIMEOUT, "SECONDS", "page load timeout (default 30)"},
	{"image", required_argument, OPT_IMAGE, "DIR", "guest image (default: the host / with sensitive paths masked)"},
	{"host", required_argument, OPT_HOST, "ADDR=NAME", "add an /etc/hosts line inside the sandbox (repeatable)"},
	{"bind", required_argument, OPT_BIND, "HOST:INSIDE", "bind a host file read-only into the sandbox (repeatable)"},
	{"resolver", required_argument, OPT_RESOLVER, "ADDR", "DNS resolver (IPv4) of the sandbox and of the client's downloads (default none)"},
	{"no-network", no_argument, OPT_NO_NETWORK, NULL, "sandbox without network (loopback only)"},
	{"nat", no_argument, OPT_NAT, NULL, "let the sandbox's allowed traffic out through the host's uplink (masquerade; applies when this client creates the gateway netns; default off)"},
	{"memory", required_argument, OPT_MEMORY, "MIB", "sandbox memory limit (default 1024)"},
	{"tmpfs", required_argument, OPT_TMPFS, "MIB", "sandbox writable layer size (default 1024)"},
	{"pids", required_argument, OPT_PIDS, "N", "sandbox process limit (default 1024)"},
	{"bulk-memory", required_argument, OPT_BULK_MEMORY, "MIB", "bulk groups: the sandbox gets at least URLs x MIB + 256 MiB of memory and URLs x 256 + 64 processes (default 256; capped at 3/4 of the host's available memory)"},
	{"work-dir", required_argument, OPT_WORK_DIR, "DIR", "local evidence folder (default /var/tmp/capture-client-PID)"},
	{"collect", no_argument, OPT_COLLECT, NULL, "collect modified files of malicious visits (server option collect-modified-files)"},
	{"pcap", no_argument, OPT_PCAP, NULL, "keep the packet capture of malicious visits"},
	{"no-monitor", required_argument, OPT_NO_MONITOR, "NAME", "switch a monitor off: file, process, registry or network (repeatable)"},
	{"report-open", no_argument, OPT_REPORT_OPEN, NULL, "file monitor: report Open events too (off, as the original's default list)"},
	{"report-read", no_argument, OPT_REPORT_READ, NULL, "file monitor: report Read events too (off, as the original's default list)"},
	{"verbose", no_argument, 'v', NULL, "more log output (repeatable)"},
	{"help", no_argument, 'h', NULL, "this help"},
	{"version", no_argument, OPT_VERSION, NULL, "print the version"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: capture-client -s ADDR [-p PORT] [-a ID] [-b ID] [OPTIONS]\n"
		   "       capture-client --visit URL [--visit URL ...] [--program P] [OPTIONS]\n"
		   "       capture-client --calibrate [--program P ...] [--rounds N] [OPTIONS]\n\n"
		   "The Capture client: visits URLs in a disposable sandbox, watches it from\n"
		   "outside and reports every unauthorized change (docs/client.md).\n\n");
	for (size_t i = 0; i < ELEMENTSOF(opts); i++) {
		char left[64];
		if (opts[i].val < 0x100)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", opts[i].val, opts[i].name,
				 opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", opts[i].name,
				 opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-32s %s\n", left, opts[i].help);
	}
	fprintf(f, "\nStandalone mode prints one line per event and one verdict line per URL\n"
		   "(safe, malicious or error); the exit status is 0 if every URL was safe,\n"
		   "1 if one was malicious, 2 on an error.\n");
}

static int number(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		log_warnx("option --%s: '%s' is not a number in %" PRIu64 "..%" PRIu64, opt, s, min,
			  max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

void client_options_init(struct client_options *o)
{
	*o = (struct client_options){
		.port = CAP_PROTO_PORT,
		.vm_server_id = "1",
		.vm_id = "1",
		.connect_tries = 10,
		.program = "chromium",
		.rounds = 3,
		.calibration_list = CAPTURE_SRCDIR "/etc/calibration.txt",
		.exclusion_dir = CAPTURE_SRCDIR "/etc/exclusion",
		.applications_conf = CAPTURE_SRCDIR "/etc/applications.conf",
		.network = true,
		.collect_max = 64ULL << 20,
		.bulk_memory_bytes = 256ULL << 20,
	};
}

static bool id_ok(const char *s)
{
	/* as the protocol allows (docs/protocol.md): a decimal (ours, Java
	 * hashCode()s), an address (the original client) or a name (NG) */
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("._:@-", s[i])))
			return false;
	return true;
}

int client_options_parse(struct client_options *o, int argc, char **argv)
{
	struct option lo[ELEMENTSOF(opts) + 1];
	char shortopts[64] = "";
	size_t k = 0;
	for (size_t i = 0; i < ELEMENTSOF(opts); i++) {
		lo[i] = (struct option){opts[i].name, opts[i].has_arg, NULL, opts[i].val};
		if (opts[i].val < 0x100) {
			shortopts[k++] = (char)opts[i].val;
			if (opts[i].has_arg)
				shortopts[k++] = ':';
		}
	}
	lo[ELEMENTSOF(opts)] = (struct option){0};
	int c;
	uint64_t v;
	/* --config first: the flags override the file */
	optind = 0; /* GNU: a full reinitialisation (tests parse more than once) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1)
		if (c == 'c' && client_options_load(o, optarg) < 0)
			return -EINVAL;
	opterr = 1;
	optind = 0; /* GNU: a full reinitialisation */
	while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->server = optarg;
			break;
		case 'p':
			if (number("port", optarg, 1, 65535, &v) < 0)
				return -EINVAL;
			o->port = (uint16_t)v;
			break;
		case 'a':
		case 'b':
			if (!id_ok(optarg)) {
				log_warnx("option -%c: '%s' is not an id (1-64 of [A-Za-z0-9._:@-])", c,
					  optarg);
				return -EINVAL;
			}
			*(c == 'a' ? &o->vm_server_id : &o->vm_id) = optarg;
			break;
		case OPT_TRIES:
			if (number("connect-tries", optarg, 1, 100000, &v) < 0)
				return -EINVAL;
			o->connect_tries = (unsigned)v;
			break;
		case 'c':
			break; /* read before the other flags, so that they win */
		case OPT_TLS_CA:
			o->tls_ca = optarg;
			break;
		case OPT_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			o->tls_key = optarg;
			break;
		case OPT_VISIT: {
			const char *why;
			if (o->n_visits == CLIENT_MAX_LIST) {
				log_warnx("option --visit: at most %d URLs", CLIENT_MAX_LIST);
				return -EINVAL;
			}
			if (cap_url_validate(optarg, &why) < 0) {
				log_warnx("option --visit: '%s': %s", optarg, why);
				return -EINVAL;
			}
			o->visits[o->n_visits++] = optarg;
			break;
		}
		case OPT_PROGRAM:
			if (!cap_program_name_valid(optarg)) {
				log_warnx("option --program: bad program name '%s'", optarg);
				return -EINVAL;
			}
			o->program = optarg;
			if (o->n_cal_programs == ELEMENTSOF(o->cal_programs)) {
				log_warnx("option --program: at most %zu", ELEMENTSOF(o->cal_programs));
				return -EINVAL;
			}
			o->cal_programs[o->n_cal_programs++] = optarg;
			break;
		case OPT_CALIBRATE:
			o->calibrate = true;
			break;
		case OPT_ROUNDS:
			if (number("rounds", optarg, 1, 64, &v) < 0)
				return -EINVAL;
			o->rounds = (unsigned)v;
			break;
		case OPT_CAL_LIST:
			o->calibration_list = optarg;
			break;
		case OPT_VISIT_TIME:
			if (number("visit-time", optarg, 0, 86400, &v) < 0)
				return -EINVAL;
			o->visit_time = (unsigned)v;
			break;
		case OPT_ALGORITHM:
			if (!strcmp(optarg, "seq"))
				o->algorithm = CAP_ALG_SEQ;
			else if (!strcmp(optarg, "bulk"))
				o->algorithm = CAP_ALG_BULK;
			else if (!strcmp(optarg, "dac"))
				o->algorithm = CAP_ALG_DAC;
			else {
				log_warnx("option --algorithm: '%s' is not seq, bulk or dac", optarg);
				return -EINVAL;
			}
			break;
		case OPT_ALL_EVENTS:
			o->all_events = true;
			break;
		case OPT_EXCLUSIONS:
			o->exclusion_dir = optarg;
			break;
		case OPT_APPS:
			o->applications_conf = optarg;
			break;
		case OPT_HEADFUL:
			o->headful = true;
			break;
		case OPT_LOAD_TIMEOUT:
			if (number("load-timeout", optarg, 1, 3600, &v) < 0)
				return -EINVAL;
			o->load_timeout = (unsigned)v;
			break;
		case OPT_IMAGE:
			o->image = optarg;
			break;
		case OPT_HOST: {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || !eq[1] || o->n_hosts == CLIENT_MAX_LIST) {
				log_warnx("option --host: '%s' is not ADDR=NAME (at most %d)", optarg,
					  CLIENT_MAX_LIST);
				return -EINVAL;
			}
			*eq = ' '; /* "ADDR NAME", the form struct visitor_options wants */
			o->hosts[o->n_hosts++] = optarg;
			break;
		}
		case OPT_BIND:
			if (!strchr(optarg, ':') || optarg[0] != '/' || o->n_binds == CLIENT_MAX_LIST) {
				log_warnx("option --bind: '%s' is not /HOST/PATH:/INSIDE/PATH", optarg);
				return -EINVAL;
			}
			o->binds[o->n_binds++] = optarg;
			break;
		case OPT_RESOLVER:
			if (inet_pton(AF_INET, optarg, &(struct in_addr){0}) != 1) {
				log_warnx("option --resolver: '%s' is not an IPv4 address", optarg);
				return -EINVAL;
			}
			o->resolver = optarg;
			break;
		case OPT_NO_NETWORK:
			o->network = false;
			break;
		case OPT_NAT:
			o->nat = true;
			break;
		case OPT_MEMORY:
			if (number("memory", optarg, 16, 1 << 20, &v) < 0)
				return -EINVAL;
			o->memory_bytes = v << 20;
			break;
		case OPT_TMPFS:
			if (number("tmpfs", optarg, 4, 1 << 20, &v) < 0)
				return -EINVAL;
			o->tmpfs_bytes = v << 20;
			break;
		case OPT_PIDS:
			if (number("pids", optarg, 8, 1 << 22, &v) < 0)
				return -EINVAL;
			o->pids = v;
			break;
		case OPT_BULK_MEMORY:
			if (number("bulk-memory", optarg, 16, 1 << 20, &v) < 0)
				return -EINVAL;
			o->bulk_memory_bytes = v << 20;
			break;
		case OPT_WORK_DIR:
			o->work_dir = optarg;
			break;
		case OPT_COLLECT:
			o->collect_files = true;
			break;
		case OPT_PCAP:
			o->pcap_malicious = true;
			break;
		case OPT_NO_MONITOR:
			if (strcmp(optarg, "file") && strcmp(optarg, "process") &&
			    strcmp(optarg, "registry") && strcmp(optarg, "network")) {
				log_warnx("option --no-monitor: '%s' is not file, process, registry or network",
					  optarg);
				return -EINVAL;
			}
			o->monitors_off[o->n_monitors_off++ % 4] = optarg;
			break;
		case OPT_REPORT_OPEN:
			o->file_open = true;
			break;
		case OPT_REPORT_READ:
			o->file_read = true;
			break;
		case 'v':
			o->verbosity++;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("capture-client %s\n", CAPTURE_VERSION);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_warnx("unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	if (o->calibrate && o->server) {
		log_warnx("-s and --calibrate exclude each other");
		return -EINVAL;
	}
	if (!o->server && o->n_visits == 0 && !o->calibrate) {
		log_warnx("-s ADDR (server mode), --visit URL (standalone) or --calibrate is needed");
		return -EINVAL;
	}
	if (o->server && o->n_visits) {
		log_warnx("-s and --visit exclude each other");
		return -EINVAL;
	}
	if ((o->tls_ca || o->tls_cert || o->tls_key) && !(o->tls_ca && o->tls_cert && o->tls_key)) {
		log_warnx("mutual TLS needs --tls-ca, --tls-cert and --tls-key together");
		return -EINVAL;
	}
	return 0;
}

/* One "key = value" of a config file; -EINVAL after logging file:line. */
static int load_line(struct client_options *o, const char *path, unsigned line, const char *key,
		     char *value)
{
	uint64_t v;
	const char **s = NULL;
	if (strcmp(key, "server") == 0)
		s = &o->server;
	else if (strcmp(key, "tls-ca") == 0)
		s = &o->tls_ca;
	else if (strcmp(key, "tls-cert") == 0)
		s = &o->tls_cert;
	else if (strcmp(key, "tls-key") == 0)
		s = &o->tls_key;
	else if (strcmp(key, "vm-server-id") == 0 || strcmp(key, "vm-id") == 0) {
		if (!id_ok(value)) {
			log_warnx("%s:%u: %s '%s' is not an id (1-64 of [A-Za-z0-9._:@-])", path, line,
				  key, value);
			return -EINVAL;
		}
		s = key[3] == 's' ? &o->vm_server_id : &o->vm_id;
	} else if (strcmp(key, "port") == 0 || strcmp(key, "connect-tries") == 0) {
		bool port = key[0] == 'p';
		if (number(key, value, 1, port ? 65535 : 100000, &v) < 0) {
			log_warnx("%s:%u: bad %s", path, line, key);
			return -EINVAL;
		}
		if (port)
			o->port = (uint16_t)v;
		else
			o->connect_tries = (unsigned)v;
		return 0;
	} else {
		log_warnx("%s:%u: unknown key '%s' (server, port, vm-server-id, vm-id, "
			  "connect-tries, tls-ca, tls-cert, tls-key)",
			  path, line, key);
		return -EINVAL;
	}
	size_t n = strlen(value) + 1;
	if (n > sizeof(o->conf_text) - o->conf_used) {
		log_warnx("%s:%u: the file's values exceed %zu bytes in all", path, line,
			  sizeof(o->conf_text));
		return -E2BIG;
	}
	char *copy = o->conf_text + o->conf_used; /* lives as long as the options */
	memcpy(copy, value, n);
	o->conf_used += n;
	*s = copy;
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
	return s;
}

int client_options_load(struct client_options *o, const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f) {
		int r = -errno;
		log_warnx("config %s: %s", path, strerror(errno));
		return r;
	}
	char buf[4096];
	unsigned line = 0;
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			log_warnx("%s:%u: line too long", path, line);
			return -EINVAL;
		}
		char *s = trim(buf);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			log_warnx("%s:%u: expected key = value", path, line);
			return -EINVAL;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		if (!*value) {
			log_warnx("%s:%u: %s has no value", path, line, key);
			return -EINVAL;
		}
		int r = load_line(o, path, line, key, value);
		if (r < 0)
			return r;
	}
	return 0;
}
