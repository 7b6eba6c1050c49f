/* ca.h - the farm CA: capture-server ca init / ca issue. */
#pragma once

#include <stddef.h>

/* Files inside a CA directory (docs/farm.md, "TLS"). */
#define CA_CERT_FILE	    "ca.pem"
#define CA_KEY_FILE	    "ca.key"
#define CA_SERVER_CERT_FILE "server.pem"
#define CA_SERVER_KEY_FILE  "server.key"
#define CA_HOSTS_DIR	    "hosts"

/* Creates dir (0700, must not exist or be empty) with a CA (CN "Capture farm CA",
 * days validity) and the server's key and certificate (name TLS_SERVER_NAME).
 * 0 or -errno; err says why. */
int ca_init(const char *dir, unsigned days, char *err, size_t errlen);

/* Issues dir/hosts/NAME.pem and NAME.key for a client host whose vm-server-id is
 * name, valid for days, or until not_after ("YYYYMMDDHHMMSSZ", for tests: may be
 * in the past) when not NULL.  Refuses to overwrite.  0 or -errno; err says why. */
int ca_issue(const char *dir, const char *name, unsigned days, const char *not_after, char *err,
	     size_t errlen);

/* `capture-server ca ...`: argv[0] is "ca".  Returns an exit status. */
int ca_main(int argc, char **argv);
