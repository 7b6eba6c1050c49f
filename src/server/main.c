/* main.c - capture-server's command line; the work is in server.c.
 *
 *   capture-server -s ADDR[:PORT] -f FILE|- [-c CONFIG] [-o OUTDIR] [-r] [-v] [start]
 *   capture-server -s ADDR[:PORT] [-c CONFIG] [-o OUTDIR] resume
 *   capture-server -i FILE [-c CONFIG] [-o OUTDIR]     (import as a run, then resume)
 *   capture-server [-o OUTDIR] stop
 *   capture-server [-o OUTDIR] status                  (what the server on OUTDIR does)
 *   capture-server [-c CONFIG] [-o OUTDIR] export [RUN] (a run's logs from the store)
 *   capture-server -n [-c CONFIG]                      (check the config and exit)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca.h"
#include "capture-config.h"
#include "config.h"
#include "exclusions.h"
#include "log.h"
#include "server.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: capture-server -s ADDR[:PORT] -f FILE|- [options] [start|resume|stop]\n"
	        "  -s ADDR[:PORT]  listen address (port 7070 by default; [v6]:port for IPv6)\n"
	        "  -f FILE|-       URL list url[::client][::time][::priority], tailed until a\n"
	        "                  line \"end\"; - reads stdin until EOF or \"end\"\n"
	        "  -c CONFIG       configuration (default ./config.xml, else the shipped one)\n"
	        "  -o OUTDIR       output folder: log/, reports/, results.db (default .)\n"
	        "  -i FILE         import FILE as a new run into the store and exit\n"
	        "  -r              stop instead of reverting a client (debugging)\n"
	        "  -n              check the configuration and exit (-v prints it)\n"
	        "  -v              more output (repeat for debug)\n"
	        "  --server-id ID  this server's name in a shared (PostgreSQL) run\n"
	        "                  (default HOSTNAME:PORT)\n"
	        "  --help          this text\n"
	        "commands: start (default), resume (continue the newest unfinished run),\n"
	        "          stop (ask the server running on OUTDIR to stop),\n"
	        "          status (print what the server running on OUTDIR is doing, per host),\n"
	        "          export [RUN] (write the final logs of the newest run, or RUN, from\n"
	        "          the store to OUTDIR/export/run-N/log: every server's URLs of a\n"
	        "          shared run)\n"
	        "       capture-server ca init DIR | ca issue DIR NAME [--days N]\n"
	        "                  farm CA for mutual TLS (ca --help; docs/farm.md)\n");
}

/* Splits "host:port", "[v6]:port" or "host"; 0 or -EINVAL. */
static int parse_addr(const char *arg, char *host, size_t hlen, uint16_t *port)
{
	const char *colon = NULL;
	size_t n;
	*port = 7070;
	if (arg[0] == '[') {
		const char *e = strchr(arg, ']');
		if (!e)
			return -EINVAL;
		n = (size_t)(e - arg - 1);
		if (n >= hlen)
			return -EINVAL;
		memcpy(host, arg + 1, n);
		host[n] = '\0';
		colon = e[1] == ':' ? e + 1 : NULL;
		if (!colon && e[1])
			return -EINVAL;
	} else {
		colon = strrchr(arg, ':');
		n = colon ? (size_t)(colon - arg) : strlen(arg);
		if (n >= hlen || n == 0)
			return -EINVAL;
		memcpy(host, arg, n);
		host[n] = '\0';
	}
	if (colon) {
		char *end;
		errno = 0;
		unsigned long p = strtoul(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || p == 0 || p > 65535)
			return -EINVAL;
		*port = (uint16_t)p;
	}
	return 0;
}

static const char *find_config(const char *arg)
{
	if (arg)
		return arg;
	if (access("config.xml", R_OK) == 0)
		return "config.xml";
	return CAPTURE_SRCDIR "/etc/config.xml";
}

/* config.xsd next to the config if there is one, else the shipped schema. */
static void find_xsd(const char *config, char *buf, size_t len)
{
	const char *slash = strrchr(config, '/');
	int dl = slash ? (int)(slash - config) : 1;
	snprintf(buf, len, "%.*s/config.xsd", dl, slash ? config : ".");
	if (access(buf, R_OK) < 0)
		snprintf(buf, len, "%s", CAPTURE_SRCDIR "/etc/config.xsd");
}

static int pidfile_path(const char *outdir, char *buf, size_t len)
{
	return xsnprintf(buf, len, "%s/capture-server.pid", outdir);
}

static int cmd_stop(const char *outdir)
{
	char path[PATH_MAX], text[32] = "";
	if (pidfile_path(outdir, path, sizeof(path)) < 0)
		return 1;
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f || !fgets(text, sizeof(text), f)) {
		log_warnx("no running server for %s (%s)", outdir, path);
		return 1;
	}
	char *end;
	long pid = strtol(text, &end, 10);
	if (pid <= 1 || (*end && *end != '\n') || kill((pid_t)pid, SIGTERM) < 0) {
		log_warnx("cannot stop the server with pid file %s", path);
		return 1;
	}
	log_info("asked server %ld to stop", pid);
	return 0;
}

static bool server_id_valid(const char *id)
{
	size_t n = strlen(id);
	return n > 0 && n <= 64 && strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                                      "0123456789._:@-") == n;
}

static void print_summary(const struct server_summary *s)
{
	fprintf(stderr,
	        "capture-server: %llu URLs accepted (%llu invalid, %llu duplicates): %llu benign, "
	        "%llu malicious, %llu errors; %llu visits, %llu reverts in %.1f s",
	        (unsigned long long)s->accepted, (unsigned long long)s->invalid,
	        (unsigned long long)s->duplicates, (unsigned long long)s->benign,
	        (unsigned long long)s->malicious, (unsigned long long)s->errors,
	        (unsigned long long)s->visits, (unsigned long long)s->reverts, s->seconds);
	if (s->claimed)
		fprintf(stderr, "; %llu URLs claimed from the shared run",
		        (unsigned long long)s->claimed);
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
	                                         {"server-id", required_argument, NULL, 'I'},
	                                         {0}};
	const char *addr_arg = NULL, *config_arg = NULL, *outdir = ".", *input = NULL,
	           *import = NULL, *server_id = NULL;
	bool check = false, no_revert = false;
	int verbose = 0, ch;
	if (argc > 1 && strcmp(argv[1], "ca") == 0) {
		log_init("capture-server", 0);
		return ca_main(argc - 1, argv + 1);
	}
	while ((ch = getopt_long(argc, argv, "s:f:c:o:i:rnvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': addr_arg = optarg; break;
		case 'f': input = optarg; break;
		case 'c': config_arg = optarg; break;
		case 'o': outdir = optarg; break;
		case 'i': import = optarg; break;
		case 'r': no_revert = true; break;
		case 'n': check = true; break;
		case 'v': verbose++; break;
		case 'I': server_id = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	log_init("capture-server", verbose);
	const char *cmd = optind < argc ? argv[optind] : "start";
	int64_t run = 0;
	if (strcmp(cmd, "export") == 0 && optind + 2 == argc) {
		char *end;
		errno = 0;
		long long v = strtoll(argv[optind + 1], &end, 10);
		if (errno || *end || v <= 0) {
			log_warnx("export: %s is not a run number", argv[optind + 1]);
			return 2;
		}
		run = v;
		optind++;
	}
	if (optind + 1 < argc || (strcmp(cmd, "start") && strcmp(cmd, "resume") &&
	                          strcmp(cmd, "stop") && strcmp(cmd, "status") &&
	                          strcmp(cmd, "export"))) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "stop") == 0)
		return cmd_stop(outdir);
	if (strcmp(cmd, "status") == 0) {
		int r = server_status_print(outdir, stdout);
		if (r < 0)
			log_warnx("no status in %s (%s/status.json: %s): is a server running there?",
			          outdir, outdir, strerror(-r));
		return r < 0 ? 1 : 0;
	}

	struct server_config cfg;
	char err[1024], xsd[PATH_MAX];
	const char *config = find_config(config_arg);
	find_xsd(config, xsd, sizeof(xsd));
	if (config_load(config, xsd, &cfg, err, sizeof(err)) < 0) {
		log_warnx("configuration error: %s", err);
		return 1;
	}
	if (strcmp(cmd, "export") == 0)
		return server_export(&cfg, outdir, run) < 0 ? 1 : 0;
	if (check) {
		struct srv_exclusions *x = NULL;
		int r = srv_exclusions_load(&cfg, cfg.send_exclusion_lists, &x);
		if (r < 0)
			return 1;
		if (verbose)
			config_print(&cfg, stdout);
		log_info("%s: OK (%u entries ignored; exclusion lists: %zu rules to send, %zu lines "
		         "skipped)",
		         config, cfg.n_ignored, srv_exclusions_count(x), srv_exclusions_skipped(x));
		srv_exclusions_free(x);
		return 0;
	}

	if (server_id && !server_id_valid(server_id)) {
		log_warnx("--server-id %s: use 1 to 64 of A-Z a-z 0-9 . _ : @ -", server_id);
		return 2;
	}
	struct server_opts o = {.cfg = &cfg, .outdir = outdir, .no_revert = no_revert,
	                        .server_id = server_id,
	                        .resume = strcmp(cmd, "resume") == 0,
	                        .progress_tty = isatty(STDERR_FILENO) && verbose == 0,
	                        .progress_interval = isatty(STDERR_FILENO) ? 1 : 10};
	char host[256] = "127.0.0.1";
	if (import) {
		o.import_only = true;
		o.input = import;
	} else {
		if (!addr_arg || parse_addr(addr_arg, host, sizeof(host), &o.port) < 0) {
			log_warnx(addr_arg ? "invalid -s %s" : "-s ADDR[:PORT] is required%s",
			          addr_arg ? addr_arg : "");
			usage(stderr);
			return 2;
		}
		if (!input && !o.resume) {
			log_warnx("-f FILE or resume is required");
			return 2;
		}
		o.input = input;
	}
	o.address = host;

	char pidfile[PATH_MAX];
	(void)mkdir(outdir, 0755);
	bool have_pidfile = !import && pidfile_path(outdir, pidfile, sizeof(pidfile)) == 0;
	if (have_pidfile) {
		_cleanup_fclose_ FILE *f = fopen(pidfile, "we");
		if (f)
			fprintf(f, "%ld\n", (long)getpid());
	}
	struct server_summary sum;
	int r = server_run(&o, &sum);
	if (have_pidfile)
		unlink(pidfile);
	if (r < 0)
		return 1;
	if (!import)
		print_summary(&sum);
	return r; /* 20 after -r refused a revert */
}
