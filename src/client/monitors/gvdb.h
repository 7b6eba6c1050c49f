/* gvdb.h - a bounded reader of GVDB files (the format of dconf databases,
 * ~/.config/dconf/user), written from the format description in GLib's
 * gvdb sources; used by the registry monitor to name the dconf keys a visit
 * changed.  The file comes from the sandbox: every offset, length, parent
 * chain and GVariant is checked; nothing is trusted.
 *
 * Only little-endian files (the signature "GVariant" as bytes) are read; a
 * byte-swapped file is -EPROTONOSUPPORT.  Only the root hash table is read
 * (a dconf user database has no nested table; the ".locks" table of system
 * databases is skipped), and only its 'v' (value) items become entries.
 */
#pragma once

#include <stddef.h>

#define GVDB_FILE_MAX  (8 * 1024 * 1024) /* bigger files are refused (-EFBIG) */
#define GVDB_ITEMS_MAX 65536		 /* items read from the hash table */
#define GVDB_KEY_MAX   1024		 /* bytes of a full key (dconf: a path) */
#define GVDB_DEPTH_MAX 64		 /* parent-chain length */
#define GVDB_VALUE_MAX 4096		 /* bytes of a value's text (truncated "...") */

struct gvdb_entry {
	char *key;   /* full key, e.g. "/org/x/key"; control bytes written \xNN */
	char *value; /* GVariant text, e.g. "'text'", "42", "uint32 7", "['a', 'b']" */
};

/* Parses data[0..len) into entries sorted by key (strcmp).  Returns 0 and
 * sets *ret / *n (free with gvdb_entries_free), or -EBADMSG (malformed),
 * -EPROTONOSUPPORT (byte-swapped or unknown version), -EFBIG, -ENOMEM.
 * Malformed items (bad key or parent chain) are skipped and counted in
 * *skipped (may be NULL); a malformed value gives a "(invalid ...)" text. */
int gvdb_parse(const void *data, size_t len, struct gvdb_entry **ret, size_t *n, size_t *skipped);
void gvdb_entries_free(struct gvdb_entry *e, size_t n);

/* Writes the GVariant text of one serialised value of type `type` (a
 * NUL-terminated type string) into buf (always terminated, truncated with
 * "..." when longer).  Types printed as GLib's g_variant_print(v, TRUE)
 * does: b y n q i u x t h d s o g as; anything else gives
 * "(GVariant TYPE, N bytes)". */
void gvdb_format_value(const char *type, const unsigned char *data, size_t size, char *buf,
		       size_t buflen);
