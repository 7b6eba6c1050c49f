/* exclusion.h - Capture-HPC exclusion lists (issue 4 item 3; original
 * format in reference/capture-hpc-original.md §4).
 *
 * Owns the parsed rules of one list (one per monitor kind) and the decision
 * "report or ignore" for an event (action, subject, object).  Rules are
 * "+|-  action  subject-regex  object-regex", TAB separated, '#' comments.
 * The action is a literal compared case-insensitively; subject and object
 * are PCRE2 patterns, case-insensitive, matched against the WHOLE string
 * (anchored at both ends), '.' matches newline too (DOTALL).  Decision: any
 * matching '-' rule -> report; else any matching '+' rule -> exclude; else
 * report.  Rules are indexed by action and JIT-compiled; one match-data block
 * per list, so a list is NOT thread-safe for concurrent matching.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct excl_list;

enum excl_verdict {
	EXCL_REPORT = 0,  /* no rule, or a '-' rule matched: the event is reported */
	EXCL_EXCLUDE = 1, /* a '+' rule matched and no '-' rule did */
};

/* Called for each bad line while loading: source (file name or label),
 * 1-based line number and a message.  The line is skipped, loading goes on. */
typedef void (*excl_error_fn)(void *userdata, const char *source, unsigned line,
			      const char *msg);

/* Allocates an empty list (everything reported).  0 or -ENOMEM. */
int excl_list_new(struct excl_list **ret);
/* Frees a list and its compiled rules; NULL is fine. */
void excl_list_free(struct excl_list *l);

/* Adds one rule from its four fields (e.g. a rule pushed by the server).
 * sign is '+' or '-'.  Returns 0, -EINVAL for a bad field/regex (err gets a
 * message if err != NULL), or -ENOMEM. */
int excl_list_add_rule(struct excl_list *l, char sign, const char *action, const char *subject,
		       const char *object, char *err, size_t errlen);

/* Parses one line of the list format.  Comments and blank lines return 0
 * and add nothing; a bad line returns -EINVAL with a message in err. */
int excl_list_add_line(struct excl_list *l, const char *line, char *err, size_t errlen);

/* Loads a buffer of lines; bad lines go to on_error (may be NULL) and are
 * skipped.  Returns the number of bad lines (>= 0) or -ENOMEM. */
int excl_list_load_buffer(struct excl_list *l, const char *source, const char *buf, size_t len,
			  excl_error_fn on_error, void *userdata);

/* Loads a file (at most 16 MiB).  Returns the number of bad lines (>= 0),
 * or -errno if the file cannot be read. */
int excl_list_load_file(struct excl_list *l, const char *path, excl_error_fn on_error,
			void *userdata);

/* The verdict for an event.  NULL strings are treated as "". */
enum excl_verdict excl_list_match(struct excl_list *l, const char *action, const char *subject,
				  const char *object);

/* Splits s (modified in place) on runs of TABs, the list format's field
 * separator, into at most max fields; returns the count, max + 1 if there
 * are more. */
size_t excl_split_tabs(char *s, char **f, size_t max);

/* Number of rules loaded. */
size_t excl_list_size(const struct excl_list *l);
