/* server.h - one run of capture-server: the epoll loop.
 *
 * Owns the listening socket, every client connection, the URL input (a
 * tailed file or stdin), the 1 s timerfd and the signalfd, all in one
 * single-threaded epoll loop.  It wires the pure modules together: messages
 * are framed and decoded with frame.h/proto.h, results go to the scheduler,
 * final verdicts to the store first (exactly once) and then to the outputs.
 * Reverts are the connection being closed; the backend (vmserver.h) brings a
 * fresh client back.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct server_opts {
	const struct server_config *cfg;
	const char *address; /* listen address (IPv4/IPv6 literal or name) */
	uint16_t port;
	const char *outdir;
	const char *input;   /* NULL: none (store only), "-": stdin, else a file */
	bool resume;         /* continue the newest unfinished run in the store */
	bool no_revert;      /* -r: stop instead of reverting (debugging) */
	bool import_only;    /* -i: store the input's URLs as a new run and exit */
	bool progress_tty;   /* draw a bar instead of plain lines */
	unsigned progress_interval; /* seconds between progress lines, 0 = none */
	const char *server_id; /* shared store: this server's name (NULL: host:port) */
};

struct server_summary {
	uint64_t accepted, benign, malicious, errors, invalid, duplicates, visits, reverts;
	uint64_t claimed; /* URLs taken from a shared run's queue */
	double seconds;
};

/* Runs until all work is done (terminate), SIGINT/SIGTERM, or -r needs a
 * revert.  Returns 0 or -errno (setup failures). */
int server_run(const struct server_opts *o, struct server_summary *ret);
/* Prints the status snapshot a server running on outdir writes
 * (OUTDIR/status.json) as a table; -ENOENT if there is none. */
int server_status_print(const char *outdir, FILE *f);
/* capture-server export: writes the final logs (safe, malicious, error) of
 * run (<= 0: the newest) from the store configured in cfg (an SQLite file
 * relative to outdir) to OUTDIR/export/run-N/log/.  0 or -errno. */
int server_export(const struct server_config *cfg, const char *outdir, int64_t run);
