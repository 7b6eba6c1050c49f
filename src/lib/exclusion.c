/* exclusion.c - exclusion-list parser and matcher (see exclusion.h).
 *
 * Rules are grouped by action (one group per distinct action, compared
 * case-insensitively; a group remembers length and folded first byte so
 * that lookup rarely calls strcasecmp).  Inside a group the '-' rules are
 * tried first: the first match decides "report"; then the '+' rules.  A
 * pattern that is exactly ".*" is stored as "match anything" and costs no
 * regex call.  Patterns are compiled with PCRE2_ANCHORED|PCRE2_ENDANCHORED
 * (whole-string match) and JIT-compiled when the JIT is available.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exclusion.h"
#include "macro.h"

#define EXCL_FILE_MAX (16u * 1024 * 1024)
#define EXCL_LINE_MAX 8192

struct excl_rule {
	pcre2_code *subject; /* NULL = ".*" */
	pcre2_code *object;  /* NULL = ".*" */
};

struct excl_group {
	char *action;
	size_t action_len;
	unsigned char first; /* folded first byte */
	struct excl_rule *minus, *plus;
	size_t n_minus, n_plus, cap_minus, cap_plus;
};

struct excl_list {
	struct excl_group *groups;
	size_t n_groups, cap_groups;
	size_t n_rules;
	pcre2_match_data *md;
};

int excl_list_new(struct excl_list **ret)
{
	struct excl_list *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->md = pcre2_match_data_create(1, NULL);
	if (!l->md) {
		free(l);
		return -ENOMEM;
	}
	*ret = l;
	return 0;
}

static void rules_free(struct excl_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pcre2_code_free(r[i].subject);
		pcre2_code_free(r[i].object);
	}
	free(r);
}

void excl_list_free(struct excl_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_groups; i++) {
		struct excl_group *g = &l->groups[i];
		rules_free(g->minus, g->n_minus);
		rules_free(g->plus, g->n_plus);
		free(g->action);
	}
	free(l->groups);
	pcre2_match_data_free(l->md);
	free(l);
}

size_t excl_list_size(const struct excl_list *l)
{
	return l ? l->n_rules : 0;
}

_printf_(3, 4) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Compiles one column; *ret = NULL for ".*".  -EINVAL with a message. */
static int compile_pattern(const char *pat, const char *col, pcre2_code **ret, char *err,
			   size_t errlen)
{
	int ec = 0;
	PCRE2_SIZE off = 0;
	pcre2_code *re;

	if (strcmp(pat, ".*") == 0) {
		*ret = NULL;
		return 0;
	}
	re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
			   PCRE2_CASELESS | PCRE2_DOTALL | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ec,
			   &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[160];
		char full[256];
		(void)pcre2_get_error_message(ec, msg, sizeof(msg));
		(void)snprintf(full, sizeof(full), "bad %s regex at offset %zu: %s", col,
			       (size_t)off, (const char *)msg);
		set_err(err, errlen, "%s", full);
		return -EINVAL;
	}
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
	*ret = re;
	return 0;
}

static struct excl_group *group_get(struct excl_list *l, const char *action, bool create)
{
	size_t len = strlen(action);
	unsigned char first = (unsigned char)tolower((unsigned char)action[0]);

	for (size_t i = 0; i < l->n_groups; i++) {
		struct excl_group *g = &l->groups[i];
		if (g->action_len == len && g->first == first && strcasecmp(g->action, action) == 0)
			return g;
	}
	if (!create)
		return NULL;
	if (l->n_groups == l->cap_groups) {
		size_t nc = l->cap_groups ? l->cap_groups * 2 : 8;
		struct excl_group *ng = realloc(l->groups, nc * sizeof(*ng));
		if (!ng)
			return NULL;
		l->groups = ng;
		l->cap_groups = nc;
	}
	struct excl_group *g = &l->groups[l->n_groups];
	memset(g, 0, sizeof(*g));
	g->action = strdup(action);
	if (!g->action)
		return NULL;
	g->action_len = len;
	g->first = first;
	l->n_groups++;
	return g;
}

static int rule_push(struct excl_rule **v, size_t *n, size_t *cap, struct excl_rule r)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct excl_rule *nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = r;
	return 0;
}

int excl_list_add_rule(struct excl_list *l, char sign, const char *action, const char *subject,
		       const char *object, char *err, size_t errlen)
{
	struct excl_rule r = { NULL, NULL };
	struct excl_group *g;
	int ret;

	if (sign != '+' && sign != '-') {
		set_err(err, errlen, "%s", "first column must be '+' or '-'");
		return -EINVAL;
	}
	if (!action || !*action || strchr(action, '*') || strchr(action, '\t')) {
		set_err(err, errlen, "bad action '%s' (a literal; no '*' allowed)",
			action ? action : "");
		return -EINVAL;
	}
	if (!subject || !object || !*subject || !*object) {
		set_err(err, errlen, "%s", "empty subject or object pattern");
		return -EINVAL;
	}
	ret = compile_pattern(subject, "subject", &r.subject, err, errlen);
	if (ret < 0)
		return ret;
	ret = compile_pattern(object, "object", &r.object, err, errlen);
	if (ret < 0)
		goto fail;
	g = group_get(l, action, true);
	if (!g) {
		ret = -ENOMEM;
		goto fail;
	}
	if (sign == '-')
		ret = rule_push(&g->minus, &g->n_minus, &g->cap_minus, r);
	else
		ret = rule_push(&g->plus, &g->n_plus, &g->cap_plus, r);
	if (ret < 0)
		goto fail;
	l->n_rules++;
	return 0;
fail:
	pcre2_code_free(r.subject);
	pcre2_code_free(r.object);
	return ret;
}

size_t excl_split_tabs(char *s, char **f, size_t max)
{
	size_t n = 0;
	while (*s) {
		while (*s == '\t')
			s++;
		if (!*s)
			break;
		if (n == max)
			return max + 1;
		f[n++] = s;
		s = strchrnul(s, '\t');
		if (*s)
			*s++ = '\0';
	}
	return n;
}

int excl_list_add_line(struct excl_list *l, const char *line, char *err, size_t errlen)
{
	char buf[EXCL_LINE_MAX];
	char *f[4];
	size_t len = strlen(line), n;
	const char *p = line;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#' || *p == '\r' || *p == '\n')
		return 0;
	if (len >= sizeof(buf)) {
		set_err(err, errlen, "%s", "line too long");
		return -EINVAL;
	}
	memcpy(buf, line, len + 1);
	while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
		buf[--len] = '\0';
	n = excl_split_tabs(buf, f, 4);
	if (n != 4) {
		set_err(err, errlen, "%s", "expected 4 TAB-separated columns: +|- action subject object");
		return -EINVAL;
	}
	if (strlen(f[0]) != 1) {
		set_err(err, errlen, "%s", "first column must be '+' or '-'");
		return -EINVAL;
	}
	return excl_list_add_rule(l, f[0][0], f[1], f[2], f[3], err, errlen);
}

int excl_list_load_buffer(struct excl_list *l, const char *source, const char *buf, size_t len,
			  excl_error_fn on_error, void *userdata)
{
	char line[EXCL_LINE_MAX + 1];
	char err[320];
	unsigned lineno = 0;
	int bad = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		int r;

		lineno++;
		if (ll > EXCL_LINE_MAX || memchr(buf + pos, '\0', ll)) {
			r = -EINVAL;
			(void)snprintf(err, sizeof(err), "%s",
				       ll > EXCL_LINE_MAX ? "line too long" : "NUL byte in line");
		} else {
			memcpy(line, buf + pos, ll);
			line[ll] = '\0';
			err[0] = '\0';
			r = excl_list_add_line(l, line, err, sizeof(err));
		}
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			bad++;
			if (on_error)
				on_error(userdata, source, lineno, err);
		}
		pos += ll + 1;
	}
	return bad;
}

int excl_list_load_file(struct excl_list *l, const char *path, excl_error_fn on_error,
			void *userdata)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t got = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > EXCL_FILE_MAX)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return excl_list_load_buffer(l, path, buf, got, on_error, userdata);
}

static bool re_match(struct excl_list *l, const pcre2_code *re, const char *s, size_t len)
{
	if (!re)
		return true;
	return pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, l->md, NULL) >= 0;
}

enum excl_verdict excl_list_match(struct excl_list *l, const char *action, const char *subject,
				  const char *object)
{
	const struct excl_group *g;
	size_t sl, ol;

	if (!l || !action || !*action)
		return EXCL_REPORT;
	g = group_get(l, action, false);
	if (!g)
		return EXCL_REPORT;
	subject = subject ? subject : "";
	object = object ? object : "";
	sl = strlen(subject);
	ol = strlen(object);
	for (size_t i = 0; i < g->n_minus; i++)
		if (re_match(l, g->minus[i].subject, subject, sl) &&
		    re_match(l, g->minus[i].object, object, ol))
			return EXCL_REPORT;
	for (size_t i = 0; i < g->n_plus; i++)
		if (re_match(l, g->plus[i].subject, subject, sl) &&
		    re_match(l, g->plus[i].object, object, ol))
			return EXCL_EXCLUDE;
	return EXCL_REPORT;
}
