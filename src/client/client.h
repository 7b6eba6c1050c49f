/* client.h - capture-client: the Capture Client (issue 4, ARCHITECTURE.md §1).
 *
 * One process owns one sandbox (the guest) and one connection to the
 * server.  Its subsystems, as in the seed design:
 *   communication   comm.c       Receiver + Transmitter on one socket
 *   event controller controller.c visit life cycle, revert, reconnect
 *   visitor          visitor.c    application plugins (own thread per visit)
 *   analyzer         analyzer.c   exclusion lists, attribution, verdict
 *   collector        collector.c  evidence zip (modified files, pcap, screenshots)
 *   report           report.c     items, algorithm and upload parts sent back
 *   options          options.c    command line, --help
 * Everything but the visitor runs in one epoll loop in the main thread.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"
#include "frame.h"
#include "proto.h"

#define CLIENT_MAX_LIST 32 /* --host, --bind, --visit entries */

struct client_options {
	/* server mode */
	const char *server; /* -s; NULL = standalone (--visit) */
	uint16_t port;	    /* -p */
	const char *vm_server_id; /* -a */
	const char *vm_id;	  /* -b */
	unsigned connect_tries;	  /* 10, 1 s apart, as the original */
	/* mutual TLS with the server (all three, or none: plain text) */
	const char *tls_ca, *tls_cert, *tls_key;
	/* the strings a --config file gave (the fields above point into it):
	 * owned by the options, no allocation to free */
	char conf_text[8192];
	size_t conf_used;
	/* standalone mode */
	const char *visits[CLIENT_MAX_LIST];
	size_t n_visits;
	const char *program;
	unsigned visit_time;
	enum cap_algorithm algorithm;
	bool all_events; /* also print excluded events (for writing exclusion lists) */
	/* calibration (calibrate.h) */
	bool calibrate;
	unsigned rounds;
	const char *calibration_list;
	const char *cal_programs[32]; /* every --program */
	size_t n_cal_programs;
	/* analyzer */
	const char *exclusion_dir; /* one folder per profile, holding .exl files */
	/* visitor */
	const char *applications_conf;
	bool headful;
	unsigned load_timeout;
	/* sandbox */
	const char *image;
	const char *hosts[CLIENT_MAX_LIST + 1]; /* "ADDR NAME", NULL-terminated (visitor_options) */
	size_t n_hosts;
	const char *binds[CLIENT_MAX_LIST]; /* "HOSTPATH:INSIDE" */
	size_t n_binds;
	const char *resolver;
	bool network;
	bool nat; /* gateway created with NAT to the uplink (sandbox_gateway_config.nat) */
	uint64_t memory_bytes, tmpfs_bytes, pids;
	uint64_t bulk_memory_bytes; /* per URL of a bulk group (controller: bulk_limits) */
	/* monitors */
	bool file_open, file_read; /* report Open / Read file events */
	const char *monitors_off[4]; /* monitors switched off (--no-monitor) */
	size_t n_monitors_off;
	/* evidence */
	const char *work_dir; /* local evidence and logs */
	bool collect_files;   /* collect-modified-files (server option, or --collect) */
	bool pcap_malicious;  /* capture-network-packets-malicious */
	bool pcap_benign;     /* capture-network-packets-benign */
	uint64_t collect_max; /* bytes of modified files per zip */
	int verbosity;
};

/* options.c */
void client_options_init(struct client_options *o);
/* Parses argv; returns 0, 1 if --help/--version was printed (exit 0), or
 * -EINVAL after printing an error naming the option. */
int client_options_parse(struct client_options *o, int argc, char **argv);
/* Reads a --config file: "key = value" lines (#: comment), keys as the long
 * options server, port, vm-server-id, vm-id, connect-tries, tls-ca, tls-cert,
 * tls-key.  Values are kept for the process's lifetime.  0 or -errno; errors
 * are logged with file:line. */
int client_options_load(struct client_options *o, const char *path);

/* ---- analyzer.c ---- */
struct excl_list;
struct analyzer;

/* Exclusion lists of the four monitors: <dir>/system/ and <dir>/<profile>/
 * for every profile a program uses (FileMonitor.exl, ProcessMonitor.exl,
 * RegistryMonitor.exl, ConnectionMonitor.exl: the original's file names). */
int analyzer_new(const char *exclusion_dir, struct analyzer **ret);
void analyzer_free(struct analyzer *a);
/* Loads the profile for a program (once; "chromium", "firefox", ...);
 * a missing profile folder is not an error. */
int analyzer_load_profile(struct analyzer *a, const char *profile);
/* Does <dir>/<profile>/ exist (the application has exclusion lists)? */
bool analyzer_has_profile(const struct analyzer *a, const char *profile);
struct visitor;
/* Warns (log_warnx) once for every application of vis that has no exclusion
 * lists (no <dir>/<its profile>/, visitor_profile()): what it does on its
 * own when it starts counts as unauthorized, so every page it opens may come
 * out malicious.  The warning names the command that prints the lines to
 * write there (capture-client --calibrate --program NAME).  Returns how
 * many. */
size_t analyzer_warn_unprofiled(const struct analyzer *a, const struct visitor *vis);
/* Adds a rule the server pushed (file-/process-/registry-exclusion) to every
 * profile, loaded or loaded later.  A rule identical to one pushed before is
 * a no-op (returns 0): the server sends its lists again after every
 * reconnect.  -EINVAL for a rule the exclusion parser refuses, -ENOSPC past
 * 4096 distinct rules. */
int analyzer_add_rule(struct analyzer *a, enum cap_event_type type, bool excluded,
		      const char *action, const char *subject, const char *object);
/* The same for a rule of the client's own (e.g. its DNS lookups through
 * --resolver), which analyzer_clear_pushed keeps. */
int analyzer_add_local_rule(struct analyzer *a, enum cap_event_type type, bool excluded,
			    const char *action, const char *subject, const char *object);
/* Forgets the rules the server pushed (a new connection: the server sends
 * its current lists again, and a rule it no longer has must not stay);
 * the profiles are loaded again.  0 or -errno of the system profile. */
int analyzer_clear_pushed(struct analyzer *a);
/* Number of distinct rules pushed (and local ones) so far. */
size_t analyzer_pushed_count(const struct analyzer *a);
/* True if the event is unauthorized (no '+' rule, or a '-' rule, matches)
 * under the lists of `profile` (NULL = system lists only). */
bool analyzer_unauthorized(struct analyzer *a, const char *profile, const struct cap_event *ev);

/* ---- collector.c ---- */
struct upper_diff;
/* Writes a zip at zip_path holding the modified files (created/modified
 * regular files of the upper diff, at most max_bytes in all), the pcap and
 * the screenshots (NULL-terminated list of host paths).  Returns the number
 * of files stored (>= 0) or -errno. */
int collector_zip(const char *zip_path, const char *upper_dir, const char *lower_dir,
		  bool files, const char *pcap, const char *const *extra, uint64_t max_bytes);

/* ---- main entry points ---- */
int client_run_server(const struct client_options *o);
int client_run_standalone(const struct client_options *o);
/* --calibrate: every program x URL x round in a fresh sandbox, the
 * unauthorized events printed as candidate rules (calibrate.h); returns the
 * exit status: 0 none, 1 candidates, 2 a visit failed or nothing to do. */
int client_run_calibrate(const struct client_options *o);
