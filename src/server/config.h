/* config.h - config.xml: one table, validated, immutable after load.
 *
 * Owns the parsing of the server configuration.  A single static table
 * (config.c, after redis' static_configs[]) gives each option's element,
 * attribute, type, default, bounds and documentation; the loader first
 * validates the document against etc/config.xsd with libxml2, then applies
 * the table, so a missing optional attribute takes its default and every
 * error names the file and the line.  docs/config.md describes the same
 * table; config_print_defaults() prints it.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scheduler.h"

enum config_backend { BACKEND_NONE, BACKEND_LOCAL };

#define CONFIG_MAX_EXCLUSIONS 8

struct server_config {
	/* <global>: the original's attributes */
	bool collect_modified_files;
	char client_default[64];
	uint32_t client_default_visit_time;
	bool capture_network_packets_malicious;
	bool capture_network_packets_benign;
	bool send_exclusion_lists;
	bool terminate;
	uint32_t group_size;
	uint32_t vm_stalled_after_revert_timeout;
	uint32_t revert_timeout;
	uint32_t client_inactivity_timeout;
	uint32_t vm_stalled_during_operation_timeout;
	uint32_t same_vm_revert_delay;
	uint32_t different_vm_revert_delay;
	/* <global>: ours */
	enum sched_algorithm algorithm;
	uint32_t max_message_size;
	uint32_t ping_interval;
	uint32_t terminate_grace; /* seconds before a list without "end" may end the run */
	uint32_t stats_interval;  /* seconds between stats.log rows */
	uint32_t max_connections;     /* client connections open at once */
	char tls_dir[PATH_MAX];       /* mutual TLS (ca init's folder); "" = plain text */
	char plaintext_clients[16];   /* "refuse" or "allow" (plain text off loopback) */
	uint32_t max_pending_input;   /* bytes of unfinished messages, all connections */
	uint32_t max_upload_per_visit; /* bytes uploaded per visit, all files */
	/* <database> */
	char database_type[16];
	char database_url[PATH_MAX];     /* sqlite: file; postgresql: JDBC url or conninfo */
	char database_username[128];     /* postgresql; empty = libpq's default */
	char database_password[256];     /* postgresql; read from password-file if given */
	char database_password_file[PATH_MAX];
	uint32_t lease_seconds;          /* postgresql: a claim's lease in a shared run */
	/* <local-sandbox> or <no-vm-server> */
	enum config_backend backend;
	uint32_t local_clients; /* 0 in the file = one per online CPU (resolved at load) */
	uint32_t max_restarts_per_minute;
	char client_path[PATH_MAX];
	char client_args[1024];
	/* <exclusion-list> */
	size_t n_exclusions;
	struct {
		char monitor[16];
		char file[PATH_MAX];
	} exclusions[CONFIG_MAX_EXCLUSIONS]; /* file: relative paths made relative to the config's folder */
	/* entries of an original Capture-HPC config that were reported and ignored
	 * (VMware servers and their VMs, pre-/postprocessors, other databases) */
	unsigned n_ignored;
};

/* Fills c with every option's default (a config with no attributes). */
void config_defaults(struct server_config *c);

/* Loads and validates path against the schema at xsd_path.  Entries of an
 * original Capture-HPC config that cannot apply here (virtual-machine-server
 * of a VM type, virtual-machine, preprocessor, postprocessor, a database
 * other than sqlite or postgresql) are reported with log_warnx ("FILE:LINE: ... ignored"),
 * counted in n_ignored, and skipped.  On error
 * returns -EINVAL (or -errno for an unreadable file) and writes one line
 * "FILE:LINE: message" into err (always NUL-terminated); ret is then
 * untouched. */
int config_load(const char *path, const char *xsd_path, struct server_config *ret, char *err,
                size_t errlen);

/* Prints "element attribute default  doc" for every option of the table. */
void config_print_table(FILE *f);

/* Prints the effective configuration, one "element.attribute = value" a line. */
void config_print(const struct server_config *c, FILE *f);
