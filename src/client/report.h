/* report.h - what capture-client tells the server about a group, apart from
 * the socket so that tests call it directly (tests/client/test-report.c).
 *
 * An original Capture-HPC server (and HSN Capture-HPC NG) is strict where
 * ours forgives (docs/protocol.md, "Compatibility rules"):
 *   - it looks every item of our visit-events up by the url string it sent
 *     (form-encoded, Java URLEncoder): an item goes back exactly as it
 *     arrived, while the client visits the decoded URL;
 *   - NG's parser loses upload parts over ~12 KiB: a part carries at most
 *     8 KiB, as the original client's did;
 *   - it classifies a group of more than one URL by the algorithm the client
 *     names, and only dac works there without our extensions (a seq group is
 *     logged benign whatever happened, bulk needs process trees it builds
 *     from the process events our profiles exclude): report_algorithm().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"
#include "visitor.h"

#define REPORT_PART_BYTES 8192 /* raw bytes per upload part, as the original client */

/* The items of a group as the server sent them, kept to be echoed back. */
struct report_items {
	size_t n;
	char **urls;  /* decoded: the URLs visited */
	char **ids;   /* the server's item ids; NULL entries if absent */
	char **wires; /* the url attributes exactly as they arrived; NULL: as urls[i] */
};

/* Copies the items of a group visit-event; 0 or -ENOMEM (ret cleared). */
int report_items_copy(const struct cap_msg_visit *mv, struct report_items *ret);
/* Frees what report_items_copy() allocated; a zeroed struct is a no-op. */
void report_items_clear(struct report_items *it);

/* The results a finish or error reports (NULL for a start). */
struct report_results {
	const struct visit_url *urls; /* the visitor's results, one per item */
	const bool *malicious;	      /* per item: an unauthorized event was its own */
	enum cap_algorithm algorithm; /* bulk: items carry malicious="0|1" */
	struct cap_ptime time;
};

/* Fills items[] for a visit-event about the group `it` (at most
 * CAP_PROTO_ITEMS_MAX; returns how many).  Every item echoes the server's id
 * and its url as it arrived; with results (finish, error) it also carries
 * processId, major-/minor-error-code, visited, time and, in bulk, our
 * malicious extension.  The items borrow it's strings and `program`. */
size_t report_items_fill(const struct report_items *it, const char *program,
			 const struct report_results *res, struct cap_visit_item *items);

/* The algorithm a server-mode group of n URLs is visited with (ret_visit,
 * what the plugin gets) and the one named to the server (ret_report, which
 * also decides whether the first unauthorized event ends the group).
 * asked: the group's algorithm attribute.  When the server named one (our
 * server), both are what the application can do of it (else its default).
 * Without it (an original server): visited in one instance (dac) if the
 * application can, else one URL after the other (seq), never in bulk; a
 * group of more than one URL is reported as dac, which the original server
 * splits and visits again when it is malicious, as it did for the original
 * client's Applications.conf programs (one instance per URL, named dac).
 * app may be NULL (unknown program): seq. */
void report_algorithm(const struct visitor_app *app, enum cap_algorithm asked, size_t n,
		      enum cap_algorithm *ret_visit, enum cap_algorithm *ret_report);

/* Reads the upload part of the file at fd that starts at off, at most
 * REPORT_PART_BYTES into buf, and fills *ret (a part message naming `name`,
 * borrowing name and buf).  Returns its length, 0 at the end of the file, or
 * -errno. */
ssize_t report_part(int fd, uint64_t off, const char *name, unsigned char buf[REPORT_PART_BYTES],
		    struct cap_msg *ret);
