/* urllist.h - one line of a Capture-HPC URL list (server -f file).
 *
 * Format url[::client][::visit-time][::priority] with the original's token
 * rules (docs/protocol.md, "URL list").  Unlike the original the URL keeps
 * its case, port, userinfo and fragment; "::" inside a bracketed IPv6 host
 * is not a separator.  Only http, https and ftp URLs with a host are
 * accepted (no file:, data:, javascript:), no spaces or control characters,
 * at most CAP_URL_MAX bytes.
 */
#pragma once

#include <stdbool.h>

#define CAP_URL_MAX 8192	/* bytes, without NUL */
#define CAP_PROGRAM_MAX 64	/* client/program name, without NUL */
#define CAP_VISIT_TIME_MAX 86400 /* seconds */

enum cap_urlline_kind {
	CAP_URLLINE_SKIP = 0, /* blank line or # comment */
	CAP_URLLINE_ENTRY = 1,
	CAP_URLLINE_END = 2, /* the line "end": stop reading */
};

struct cap_url_entry {
	char url[CAP_URL_MAX + 1];
	char client[CAP_PROGRAM_MAX + 1]; /* "" if not given */
	bool has_client;
	unsigned visit_time; /* seconds, 0 if not given */
	bool has_visit_time;
	double priority; /* 0.0 - 1.0, 0 if not given */
	bool has_priority;
};

/* Parses one line (a trailing "\n" / "\r\n" and surrounding blanks are
 * ignored).  Returns CAP_URLLINE_SKIP, CAP_URLLINE_END or CAP_URLLINE_ENTRY
 * (then *ret is filled), or -EINVAL with *ret_reason set to a static string
 * for the error log.  ret_reason may be NULL. */
int cap_urllist_parse_line(const char *line, struct cap_url_entry *ret, const char **ret_reason);

/* Validates a URL by the rules above.  0 or -EINVAL with *ret_reason. */
int cap_url_validate(const char *url, const char **ret_reason);

/* A program/client name: 1..CAP_PROGRAM_MAX bytes of [A-Za-z0-9._+-]. */
bool cap_program_name_valid(const char *s);
