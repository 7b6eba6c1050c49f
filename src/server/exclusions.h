/* exclusions.h - the exclusion lists the server pushes to its clients
 * (send-exclusion-lists, docs/config.md).
 *
 * Owns the loading of the <exclusion-list> files of config.xml (the
 * original's .exl format, docs/exclusion-lists.md) into the ready-encoded
 * file-/process-/registry-exclusion messages sent to every client after its
 * options.  Every rule is checked by the client's own parser (exclusion.h):
 * a bad line, and a Windows-only rule (a drive path such as C:\\..., a
 * registry hive such as HKLM\..., a Windows image name such as iexplore.exe
 * as a process-monitor action) is reported once, with file and line, and
 * skipped.  A connection list is checked but not sent (the protocol has no
 * message for it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct server_config;
struct srv_exclusions;

#define SRV_EXCL_MAX_RULES 4096 /* rules pushed per server, all lists together */

/* Loads every exclusion list of c.  An unreadable list is an error (-errno,
 * logged) when required, else a warning.  0 or -errno; *ret is NULL when
 * there is nothing to send. */
int srv_exclusions_load(const struct server_config *c, bool required, struct srv_exclusions **ret);
void srv_exclusions_free(struct srv_exclusions *x);

/* The encoded messages (each NUL-terminated, as sent), back to back. */
const char *srv_exclusions_data(const struct srv_exclusions *x, size_t *len);
/* Rules that will be sent, and lines reported and skipped. */
size_t srv_exclusions_count(const struct srv_exclusions *x);
size_t srv_exclusions_skipped(const struct srv_exclusions *x);
