/* exclusions.c - see exclusions.h. */
#include "exclusions.h"

#include <errno.h>
#include <stdio.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "exclusion.h"
#include "frame.h"
#include "log.h"
#include "macro.h"
#include "proto.h"

#define LINE_MAX_BYTES 8192
#define FILE_MAX_BYTES (16u << 20)

struct srv_exclusions {
	struct cap_buf msgs;
	size_t count, skipped;
};

/* True if s contains a drive path "X:\" (in a list usually written X:\\). */
static bool has_drive_path(const char *s)
{
	for (const char *p = s; (p = strchr(p, ':')); p++)
		if (p > s && ((p[-1] | 0x20) >= 'a' && (p[-1] | 0x20) <= 'z') && p[1] == '\\')
			return true;
	return false;
}

/* True if s names a registry hive: HKLM, HKCU, HKU, HKCR, HKCC, HKEY_...
 * at its start (after ^, ( or (?i)), or \REGISTRY\ anywhere. */
static bool has_registry_key(const char *s)
{
	static const char *const hives[] = {"HKLM", "HKCU", "HKU", "HKCR", "HKCC", "HKEY_"};
	if (strncasecmp(s, "(?i)", 4) == 0)
		s += 4;
	while (*s == '^' || *s == '(')
		s++;
	for (size_t i = 0; i < ELEMENTSOF(hives); i++) {
		size_t n = strlen(hives[i]);
		if (strncasecmp(s, hives[i], n) == 0 &&
		    (s[n] == '\0' || s[n] == '\\' || s[n] == '_' || hives[i][n - 1] == '_' ||
		     s[n] == '.' || s[n] == '$' || s[n] == ')'))
			return true;
	}
	return strcasestr(s, "\\REGISTRY\\") != NULL;
}

/* An image name such as iexplore.exe (possibly written iexplore\.exe). */
static bool is_windows_image(const char *s)
{
	static const char *const ext[] = {".exe",   "\\.exe", ".dll",	"\\.dll", ".bat",
					  "\\.bat", ".com",   "\\.com", ".scr",	  "\\.scr"};
	size_t n = strlen(s);
	for (size_t i = 0; i < ELEMENTSOF(ext); i++) {
		size_t k = strlen(ext[i]);
		if (n > k && strcasecmp(s + n - k, ext[i]) == 0)
			return true;
	}
	return false;
}

/* The reason a rule only makes sense on Windows, or NULL. */
static const char *windows_only(const char *monitor, const char *action, const char *subject,
				const char *object)
{
	if (has_drive_path(subject) || has_drive_path(object) || has_drive_path(action))
		return "Windows drive path";
	if (has_registry_key(object) || has_registry_key(subject))
		return "Windows registry key";
	if (strcmp(monitor, "process") == 0 && is_windows_image(action))
		return "Windows image name as action";
	return NULL;
}

static int msg_type(const char *monitor)
{
	if (strcmp(monitor, "file") == 0)
		return CAP_MSG_FILE_EXCLUSION;
	if (strcmp(monitor, "process") == 0)
		return CAP_MSG_PROCESS_EXCLUSION;
	if (strcmp(monitor, "registry") == 0)
		return CAP_MSG_REGISTRY_EXCLUSION;
	return -1; /* connection: no message in the protocol */
}

static void skip(struct srv_exclusions *x, const char *file, unsigned line, const char *why)
{
	log_warnx("%s:%u: exclusion rule skipped: %s", file, line, why);
	x->skipped++;
}

/* One line of a list: checked, then encoded (type >= 0) or only checked. */
static int do_line(struct srv_exclusions *x, struct excl_list *check, const char *monitor, int type,
		   const char *file, unsigned lineno, char *line)
{
	const char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	size_t len = strlen(line);
	while (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	char copy[LINE_MAX_BYTES + 1], err[256];
	cap_strlcpy(copy, line, sizeof(copy));
	if (excl_list_add_line(check, copy, err, sizeof(err)) < 0) {
		skip(x, file, lineno, err);
		return 0;
	}
	char *f[4];
	if (excl_split_tabs(line, f, 4) != 4)
		return 0; /* excl_list_add_line would have refused it */
	const char *why = windows_only(monitor, f[1], f[2], f[3]);
	if (why) {
		char msg[128];
		snprintf(msg, sizeof(msg), "Windows-only (%s)", why);
		skip(x, file, lineno, msg);
		return 0;
	}
	if (type < 0)
		return 0;
	if (strlen(f[1]) > CAP_PROTO_STR_MAX || strlen(f[2]) > CAP_PROTO_PATH_MAX ||
	    strlen(f[3]) > CAP_PROTO_PATH_MAX) {
		skip(x, file, lineno, "a column is longer than the protocol carries");
		return 0;
	}
	if (x->count >= SRV_EXCL_MAX_RULES) {
		skip(x, file, lineno, "more than 4096 rules (SRV_EXCL_MAX_RULES)");
		return 0;
	}
	struct cap_msg m = {.type = (enum cap_msg_type)type};
	m.exclusion.excluded = f[0][0] == '+';
	m.exclusion.action = f[1];
	m.exclusion.subject = f[2];
	m.exclusion.object = f[3];
	_cleanup_free_ char *data = NULL;
	size_t n;
	int r = cap_msg_encode_to_client(&m, &data, &n);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		skip(x, file, lineno, "cannot be encoded (field too long)");
		return 0;
	}
	r = cap_buf_append(&x->msgs, data, n);
	if (r < 0)
		return r;
	x->count++;
	return 0;
}

static int load_one(struct srv_exclusions *x, const char *monitor, const char *file, bool required)
{
	_cleanup_fclose_ FILE *f = fopen(file, "re");
	if (!f) {
		int r = negative_errno();
		if (required)
			return log_error_errno(r, "exclusion list %s", file);
		log_warnx("exclusion list %s: %s (not used: send-exclusion-lists is false)", file,
			  strerror(-r));
		return 0;
	}
	struct excl_list *check = NULL;
	int r = excl_list_new(&check);
	if (r < 0)
		return r;
	int type = msg_type(monitor);
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, total = 0;
	unsigned lineno = 0;
	ssize_t n;
	while (r == 0 && (n = getline(&line, &cap, f)) > 0) {
		lineno++;
		total += (size_t)n;
		if (total > FILE_MAX_BYTES) {
			skip(x, file, lineno, "file over 16 MiB; the rest is ignored");
			break;
		}
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (memchr(line, '\0', (size_t)n)) {
			skip(x, file, lineno, "NUL byte in line");
			continue;
		}
		if (n > LINE_MAX_BYTES) {
			skip(x, file, lineno, "line too long");
			continue;
		}
		r = do_line(x, check, monitor, type, file, lineno, line);
	}
	excl_list_free(check);
	if (r == 0 && type < 0)
		log_warnx("%s: connection exclusion list checked but not sent (the protocol has no "
			  "message for it; configure it on the client)",
			  file);
	return r;
}

int srv_exclusions_load(const struct server_config *c, bool required, struct srv_exclusions **ret)
{
	if (c->n_exclusions == 0) {
		*ret = NULL;
		return 0;
	}
	struct srv_exclusions *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->msgs.max = 64u << 20;
	for (size_t i = 0; i < c->n_exclusions; i++) {
		int r = load_one(x, c->exclusions[i].monitor, c->exclusions[i].file, required);
		if (r < 0) {
			srv_exclusions_free(x);
			return r;
		}
	}
	log_debug(LOG_MAIN, "exclusion lists: %zu rules to send, %zu lines skipped", x->count,
		  x->skipped);
	*ret = x;
	return 0;
}

void srv_exclusions_free(struct srv_exclusions *x)
{
	if (!x)
		return;
	cap_buf_done(&x->msgs);
	free(x);
}

const char *srv_exclusions_data(const struct srv_exclusions *x, size_t *len)
{
	*len = x ? x->msgs.len : 0;
	return x ? x->msgs.data : NULL;
}

size_t srv_exclusions_count(const struct srv_exclusions *x)
{
	return x ? x->count : 0;
}

size_t srv_exclusions_skipped(const struct srv_exclusions *x)
{
	return x ? x->skipped : 0;
}
