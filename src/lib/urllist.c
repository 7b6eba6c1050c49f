/* urllist.c - URL list line parser and URL validation (see urllist.h). */
#include "urllist.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"
#include "macro.h"

#define MAX_TOKENS 4

bool cap_program_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CAP_PROGRAM_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '+' && c != '-')
			return false;
	}
	return true;
}

static bool is_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Host part of the authority [h, e): a reg-name or a bracketed IPv6 literal,
 * optionally followed by :port. */
static int validate_hostport(const char *h, const char *e, const char **reason)
{
	const char *port = NULL;

	if (h < e && *h == '[') {
		const char *rb = memchr(h, ']', (size_t)(e - h));
		if (!rb) {
			*reason = "unterminated [IPv6] host";
			return -EINVAL;
		}
		if (rb == h + 1) {
			*reason = "empty [IPv6] host";
			return -EINVAL;
		}
		for (const char *p = h + 1; p < rb; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.' && *p != '%') {
				*reason = "bad character in [IPv6] host";
				return -EINVAL;
			}
		if (rb + 1 < e) {
			if (rb[1] != ':') {
				*reason = "garbage after [IPv6] host";
				return -EINVAL;
			}
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(h, ':', (size_t)(e - h));
		const char *he = colon ? colon : e;
		if (he == h) {
			*reason = "no host";
			return -EINVAL;
		}
		if (he - h > 253) {
			*reason = "host name too long";
			return -EINVAL;
		}
		for (const char *p = h; p < he; p++)
			if (!isalnum((unsigned char)*p) && !strchr("-._~%!$&'()*+,;=", *p)) {
				*reason = "bad character in host";
				return -EINVAL;
			}
		if (colon)
			port = colon + 1;
	}
	if (port) {
		unsigned long v = 0;
		if (port == e || e - port > 5) {
			*reason = "bad port";
			return -EINVAL;
		}
		for (const char *p = port; p < e; p++) {
			if (*p < '0' || *p > '9') {
				*reason = "bad port";
				return -EINVAL;
			}
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (v == 0 || v > 65535) {
			*reason = "port out of range";
			return -EINVAL;
		}
	}
	return 0;
}

int cap_url_validate(const char *url, const char **ret_reason)
{
	static const char *const schemes[] = {"http://", "https://", "ftp://"};
	const char *reason = NULL, *rest = NULL;
	size_t n = strlen(url);
	int r;

	if (!ret_reason)
		ret_reason = &reason;
	if (n == 0) {
		*ret_reason = "empty URL";
		return -EINVAL;
	}
	if (n > CAP_URL_MAX) {
		*ret_reason = "URL longer than 8 KiB";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c == 0x7f) {
			*ret_reason = "space or control character in URL";
			return -EINVAL;
		}
		if (c >= 0x80) {
			*ret_reason = "non-ASCII character in URL (percent-encode it)";
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(schemes); i++)
		if (strncasecmp(url, schemes[i], strlen(schemes[i])) == 0)
			rest = url + strlen(schemes[i]);
	if (!rest) {
		*ret_reason = "scheme not http://, https:// or ftp://";
		return -EINVAL;
	}
	const char *ae = rest + strcspn(rest, "/?#");
	/* userinfo ends at the last '@' of the authority */
	const char *h = rest;
	for (const char *p = rest; p < ae; p++)
		if (*p == '@')
			h = p + 1;
	r = validate_hostport(h, ae, ret_reason);
	if (r < 0)
		return r;
	return 0;
}

/* Splits line at "::" separators outside a bracketed host.  Returns the
 * number of tokens (<= MAX_TOKENS, in place: separators become NUL), or
 * -EINVAL. */
static int split_tokens(char *line, char *tok[MAX_TOKENS], const char **reason)
{
	char *lb = NULL, *rb = NULL;
	char *auth = strstr(line, "://");
	int nt = 0;

	if (auth) {
		auth += 3;
		char *ae = auth + strcspn(auth, "/?#");
		char *b = memchr(auth, '[', (size_t)(ae - auth));
		if (b) {
			lb = b;
			rb = strchr(b, ']');
			if (!rb) {
				*reason = "unterminated [IPv6] host";
				return -EINVAL;
			}
		}
	}
	tok[nt++] = line;
	for (char *p = line; *p; p++) {
		if (lb && p >= lb && p <= rb)
			continue;
		if (p[0] == ':' && p[1] == ':') {
			if (nt == MAX_TOKENS) {
				*reason = "more than four ::-separated fields";
				return -EINVAL;
			}
			p[0] = p[1] = '\0';
			tok[nt++] = p + 2;
			p++;
		}
	}
	return nt;
}

/* Strict decimal visit time 1..CAP_VISIT_TIME_MAX. */
static bool parse_time(const char *s, unsigned *ret)
{
	unsigned long v = 0;

	if (!is_digits(s) || strlen(s) > 6)
		return false;
	for (; *s; s++)
		v = v * 10 + (unsigned long)(*s - '0');
	if (v < 1 || v > CAP_VISIT_TIME_MAX)
		return false;
	*ret = (unsigned)v;
	return true;
}

/* Strict priority: digits with at most one '.', value 0.0..1.0. */
static bool parse_priority(const char *s, double *ret)
{
	size_t n = strlen(s), dots = 0;
	char *end;

	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.')
			dots++;
		else if (s[i] < '0' || s[i] > '9')
			return false;
	}
	if (dots > 1 || n == dots)
		return false;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !(v >= 0.0 && v <= 1.0))
		return false;
	*ret = v;
	return true;
}

static int set_client(struct cap_url_entry *e, const char *s, const char **reason)
{
	if (!cap_program_name_valid(s)) {
		*reason = "bad client name (1-64 of A-Z a-z 0-9 . _ + -)";
		return -EINVAL;
	}
	cap_strlcpy(e->client, s, sizeof(e->client));
	e->has_client = true;
	return 0;
}

/* Applies the original's rules to the fields after the URL. */
static int assign_fields(struct cap_url_entry *e, char **tok, int nt, const char **reason)
{
	switch (nt) {
	case 1:
		return 0;
	case 2:
		if (parse_time(tok[1], &e->visit_time))
			e->has_visit_time = true;
		else if (parse_priority(tok[1], &e->priority))
			e->has_priority = true;
		else
			return set_client(e, tok[1], reason);
		return 0;
	case 3:
		if (parse_time(tok[1], &e->visit_time)) {
			e->has_visit_time = true;
			if (!parse_priority(tok[2], &e->priority)) {
				*reason = "time::priority: bad priority (0.0-1.0)";
				return -EINVAL;
			}
			e->has_priority = true;
			return 0;
		}
		if (set_client(e, tok[1], reason) < 0)
			return -EINVAL;
		if (parse_time(tok[2], &e->visit_time))
			e->has_visit_time = true;
		else if (parse_priority(tok[2], &e->priority))
			e->has_priority = true;
		else {
			*reason = "client::X: X is neither a visit time (1-86400) nor a priority";
			return -EINVAL;
		}
		return 0;
	default:
		if (set_client(e, tok[1], reason) < 0)
			return -EINVAL;
		if (!parse_time(tok[2], &e->visit_time)) {
			*reason = "bad visit time (1-86400 s)";
			return -EINVAL;
		}
		if (!parse_priority(tok[3], &e->priority)) {
			*reason = "bad priority (0.0-1.0)";
			return -EINVAL;
		}
		e->has_visit_time = e->has_priority = true;
		return 0;
	}
}

int cap_urllist_parse_line(const char *line, struct cap_url_entry *ret, const char **ret_reason)
{
	const char *reason = NULL;
	char *tok[MAX_TOKENS];
	size_t n;
	int nt, r;

	if (!ret_reason)
		ret_reason = &reason;
	while (*line == ' ' || *line == '\t')
		line++;
	n = strlen(line);
	while (n > 0 && strchr(" \t\r\n", line[n - 1]))
		n--;
	if (n == 0 || line[0] == '#')
		return CAP_URLLINE_SKIP;
	if (n == 3 && strncasecmp(line, "end", 3) == 0)
		return CAP_URLLINE_END;
	if (n > CAP_URL_MAX + 3 * (CAP_PROGRAM_MAX + 2)) {
		*ret_reason = "line too long";
		return -EINVAL;
	}
	_cleanup_free_ char *copy = strndup(line, n);
	if (!copy)
		return -ENOMEM;
	nt = split_tokens(copy, tok, ret_reason);
	if (nt < 0)
		return nt;
	r = cap_url_validate(tok[0], ret_reason);
	if (r < 0)
		return r;

	struct cap_url_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	cap_strlcpy(e->url, tok[0], sizeof(e->url));
	r = assign_fields(e, tok, nt, ret_reason);
	if (r == 0)
		memcpy(ret, e, sizeof(*e));
	free(e);
	return r < 0 ? r : CAP_URLLINE_ENTRY;
}
