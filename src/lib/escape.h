/* escape.h - escaping of untrusted strings for the formats Capture writes.
 *
 * Everything that came from a sandbox, a client or a URL list is hostile:
 * XML attributes are fully escaped (including \n \r \t as character
 * references, so a message never holds a raw newline), CSV fields are quoted
 * the way the original's logs are ("..." with " doubled) and control
 * characters are made visible, URLs become bounded file-name components
 * with a hash suffix when truncated.  Also strict, bounded base64.
 * All functions return 0 or -errno and allocate their result.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct cap_buf;

/* Escapes s for use inside a double- or single-quoted XML attribute:
 * & < > " ' become entities, \t \n \r become &#9; &#10; &#13;, other C0
 * controls and DEL (not allowed in XML 1.0) become '?'.  Invalid UTF-8 bytes
 * become '?'.  *ret is malloc'ed. */
int cap_xml_escape(const char *s, char **ret);
/* Same, appending to a cap_buf. */
int cap_xml_escape_append(struct cap_buf *b, const char *s);

/* Quotes s as one CSV field: surrounding "", inner " doubled, \n \r \t as
 * the two-character sequences \n \r \t, backslash as \\, other control bytes
 * as \xHH.  *ret is malloc'ed. */
int cap_csv_quote(const char *s, char **ret);

/* Turns a URL into a safe file-name component like the original's per-URL log
 * name: [A-Za-z0-9.-] kept, everything else %-escaped (%2F etc.), never "."
 * or "..".  If longer than max_len, it is cut and "~" + 16 hex digits of a
 * hash of the whole URL are appended so that different URLs stay different.
 * max_len must be >= 32 and <= 255.  *ret is malloc'ed. */
int cap_url_to_filename(const char *url, size_t max_len, char **ret);

/* Decodes %XX escapes (and '+' as space when plus_is_space, as Java's
 * URLEncoder writes them).  A malformed escape or a decoded NUL is -EINVAL.
 * *ret is malloc'ed. */
int cap_url_unescape(const char *s, bool plus_is_space, char **ret);

/* Encodes s as Java's URLEncoder does (what the original server sends and
 * an original client decodes): [A-Za-z0-9.*_-] kept, space as '+', every
 * other byte as %XX (upper-case hex).  *ret is malloc'ed. */
int cap_url_form_encode(const char *s, char **ret);

/* Base64 (RFC 4648, with padding, no line breaks).  *ret is malloc'ed and
 * NUL-terminated; *ret_len is its length.  -EMSGSIZE if n > 768 MiB. */
int cap_base64_encode(const void *data, size_t n, char **ret, size_t *ret_len);
/* Strict decode: only the alphabet, length a multiple of 4, correct padding,
 * zero trailing bits; anything else is -EINVAL.  -EMSGSIZE if the result
 * would exceed max_out bytes.  *ret is malloc'ed (at least 1 byte). */
int cap_base64_decode(const char *s, size_t len, size_t max_out, unsigned char **ret,
		      size_t *ret_len);
