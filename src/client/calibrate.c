/* calibrate.c - see calibrate.h. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "exclusion.h"
#include "macro.h"

#define CALIB_MAX_PROGRAMS 64
#define CALIB_MAX_ERRORS   64
#define CALIB_EXAMPLE_MAX  160
#define CALIB_URLS_TRACKED 64 /* distinct URLs counted per candidate */

struct cand {
	size_t program; /* index in programs[] */
	enum cap_event_type type;
	char action[CAP_ACTION_MAX];
	char subject[CALIB_SHAPE_MAX];
	char object[2 * CALIB_SHAPE_MAX + 4];
	char example[CALIB_EXAMPLE_MAX + 8];
	uint64_t rounds; /* bit r: seen in round r */
	uint64_t events;
	uint32_t url_hash[CALIB_URLS_TRACKED];
	size_t n_urls;
	bool unverified; /* the rule did not exclude the event it was made from */
};

struct prog {
	char name[64], profile[64];
	size_t n_urls;
};

struct calib {
	unsigned rounds;
	struct prog programs[CALIB_MAX_PROGRAMS];
	size_t n_programs;
	struct cand *cands;
	size_t n_cands;
	uint64_t dropped; /* events past CALIB_MAX_RULES candidates */
	char *errors[CALIB_MAX_ERRORS];
	size_t n_errors, more_errors;
};

int calib_read_list(const char *path, struct calib_item *items, size_t max, size_t *ret_n,
		    char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	char line[CAP_URL_MAX + 256];
	size_t n = 0;
	unsigned no = 0;
	int r = 0;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		no++;
		struct cap_url_entry e;
		const char *why = NULL;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line too long", path, no);
			r = -EINVAL;
			break;
		}
		int k = cap_urllist_parse_line(line, &e, &why);
		if (k == CAP_URLLINE_END)
			break;
		if (k == CAP_URLLINE_SKIP)
			continue;
		if (k < 0 || !e.has_client) {
			snprintf(err, errlen, "%s:%u: %s", path, no,
				 k < 0 ? why : "no program (url::program)");
			r = -EINVAL;
		} else if (n == max) {
			snprintf(err, errlen, "%s:%u: more than %zu URLs", path, no, max);
			r = -EINVAL;
		} else {
			snprintf(items[n].url, sizeof(items[n].url), "%s", e.url);
			snprintf(items[n].program, sizeof(items[n].program), "%s", e.client);
			n++;
		}
	}
	fclose(f);
	if (r == 0 && n == 0) {
		snprintf(err, errlen, "%s: no URL", path);
		r = -EINVAL;
	}
	if (r == 0)
		*ret_n = n;
	return r;
}

int calib_new(unsigned rounds, struct calib **ret)
{
	if (rounds == 0 || rounds > CALIB_MAX_ROUNDS)
		return -EINVAL;
	struct calib *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cands = calloc(CALIB_MAX_RULES, sizeof(*c->cands));
	if (!c->cands) {
		free(c);
		return -ENOMEM;
	}
	c->rounds = rounds;
	*ret = c;
	return 0;
}

void calib_free(struct calib *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_errors; i++)
		free(c->errors[i]);
	free(c->cands);
	free(c);
}

/* ---- shaping ---- */

struct out {
	char *p;
	size_t len, n;
	bool full;
};

static void put(struct out *o, const char *s)
{
	size_t k = strlen(s);
	if (o->full || o->n + k >= o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->n, s, k + 1);
	o->n += k;
}

static void put_byte(struct out *o, unsigned char ch)
{
	char b[8];
	if (isalnum(ch) || ch == '/' || ch == '-' || ch == '_' || ch == ' ' || ch == ',' ||
	    ch == ':' || ch == '@' || ch == '=' || ch == '%' || ch == '~' || ch == '!' ||
	    ch == '#' || ch == '&' || ch == ';' || ch == '<' || ch == '>' || ch == '\'' ||
	    ch == '"' || ch == '`') {
		b[0] = (char)ch;
		b[1] = '\0';
	} else if (ch > 0x20 && ch < 0x7f) {
		b[0] = '\\'; /* a regex metacharacter: . ^ $ | ? * + ( ) [ ] { } \ */
		b[1] = (char)ch;
		b[2] = '\0';
	} else {
		snprintf(b, sizeof(b), "\\x{%02x}", ch); /* TAB, newline, bytes of UTF-8 */
	}
	put(o, b);
}

static bool is_hex(char ch)
{
	return isdigit((unsigned char)ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Length of a mkstemp-like suffix at s (just after '.', '-' or '_'): six
 * letters/digits ending the name or followed by '.', with two kinds of
 * character at least (a plain word such as "global" does not count). */
static bool random_suffix(const char *s)
{
	bool up = false, low = false, dig = false;
	for (int i = 0; i < 6; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!isalnum(ch))
			return false;
		up |= isupper(ch) != 0;
		low |= islower(ch) != 0;
		dig |= isdigit(ch) != 0;
	}
	return (s[6] == '\0' || s[6] == '/' || s[6] == '.') && up + low + dig >= 2;
}

int calib_shape(const char *s, char *out, size_t len)
{
	if (!len)
		return -ENAMETOOLONG;
	struct out o = {.p = out, .len = len};
	out[0] = '\0';
	for (size_t i = 0; s[i];) {
		bool word_start = i == 0 || !isalnum((unsigned char)s[i - 1]);
		size_t h = 0;
		bool digit = false;
		while (is_hex(s[i + h])) {
			digit |= isdigit((unsigned char)s[i + h]) != 0;
			h++;
		}
		char cls[32];
		if (word_start && h >= 16 && digit && !isalnum((unsigned char)s[i + h])) {
			snprintf(cls, sizeof(cls), "[0-9a-f]{%zu}", h);
			put(&o, cls);
			i += h;
		} else if (i > 0 && strchr(".-_", s[i - 1]) && random_suffix(s + i)) {
			put(&o, "[A-Za-z0-9]{6}");
			i += 6;
		} else if (isdigit((unsigned char)s[i])) {
			put(&o, "[0-9]+");
			while (isdigit((unsigned char)s[i]))
				i++;
		} else {
			put_byte(&o, (unsigned char)s[i++]);
		}
	}
	return o.full ? -ENAMETOOLONG : 0;
}

/* The subject is the writer's path: escaped, not shaped (a program's path
 * does not change from run to run; one that does is no noise). */
static int quote(const char *s, char *out, size_t len)
{
	struct out o = {.p = out, .len = len};
	out[0] = '\0';
	for (size_t i = 0; s[i]; i++)
		put_byte(&o, (unsigned char)s[i]);
	return o.full ? -ENAMETOOLONG : 0;
}

/* Printable example for a comment: control and non-ASCII bytes as \xNN. */
static void example(const char *s, char *out, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; s[i] && n + 5 < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7f)
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, len - n, "\\x%02x", ch);
	}
	out[n] = '\0';
	if (s[0] && strlen(s) > n && n + 4 < len)
		strcat(out, "...");
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* An action a rule line can carry as it is: the list's literal (not empty,
 * no '*'), and printable ASCII only, so that it cannot end the line or the
 * field.  For process events it is the child's image name, which the code
 * in the sandbox chooses. */
static bool action_ok(const char *a)
{
	if (!*a || strchr(a, '*'))
		return false;
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || (unsigned char)*a > 0x7e)
			return false;
	return true;
}

/* The writer as the rule's subject: "unknown" when the monitor could not
 * name it (never an empty field). */
static const char *subject_of(const struct cap_event *ev)
{
	return ev->process[0] ? ev->process : "unknown";
}

/* The rule (action, subject, object) that excludes ev, as the analyzer
 * matches it (analyzer_unauthorized): process events by the child's image
 * name and path, a Rename by both of its names. */
static int rule_of(const struct cap_event *ev, struct cand *k)
{
	char a[CALIB_SHAPE_MAX], b[CALIB_SHAPE_MAX];
	int r;
	k->type = ev->type;
	if ((r = quote(subject_of(ev), k->subject, sizeof(k->subject))) < 0)
		return r;
	if (ev->type == CAP_EV_PROCESS) {
		if (cap_strlcpy(k->action, base_name(ev->object2), sizeof(k->action)))
			return -ENAMETOOLONG;
		if (!action_ok(k->action))
			return -EINVAL;
		if ((r = calib_shape(ev->object2, k->object, sizeof(k->object))) < 0)
			return r;
		if (!k->object[0])
			strcpy(k->object, ".{0}");
		return 0;
	}
	(void)cap_strlcpy(k->action, ev->action, sizeof(k->action));
	if (!action_ok(k->action))
		return -EINVAL;
	if ((r = calib_shape(ev->object1, a, sizeof(a))) < 0)
		return r;
	if (ev->type == CAP_EV_FILE && !strcmp(ev->action, "Rename")) {
		if ((r = calib_shape(ev->object2, b, sizeof(b))) < 0)
			return r;
		if (strcmp(a, b) != 0) {
			snprintf(k->object, sizeof(k->object), "(%s|%s)", a, b);
			return 0;
		}
	}
	/* an empty field cannot be written (runs of TABs are one separator) */
	(void)cap_strlcpy(k->object, a[0] ? a : ".{0}", sizeof(k->object));
	return 0;
}

/* Whether the rule, as the list loader compiles it, excludes ev. */
static bool verify(const struct cand *k, const struct cap_event *ev)
{
	struct excl_list *l = NULL;
	if (excl_list_new(&l) < 0)
		return false;
	const char *subj = subject_of(ev);
	bool rename = ev->type == CAP_EV_FILE && !strcmp(ev->action, "Rename");
	const char *obj = ev->type == CAP_EV_PROCESS ? ev->object2 : ev->object1;
	bool ok = excl_list_add_rule(l, '+', k->action, k->subject, k->object, NULL, 0) == 0 &&
		  excl_list_match(l, k->action, subj, obj) == EXCL_EXCLUDE &&
		  (!rename || excl_list_match(l, k->action, subj, ev->object2) == EXCL_EXCLUDE);
	excl_list_free(l);
	return ok;
}

static size_t program_index(struct calib *c, const char *program, const char *profile)
{
	for (size_t i = 0; i < c->n_programs; i++)
		if (!strcmp(c->programs[i].name, program))
			return i;
	if (c->n_programs == CALIB_MAX_PROGRAMS)
		return SIZE_MAX;
	struct prog *p = &c->programs[c->n_programs];
	snprintf(p->name, sizeof(p->name), "%s", program);
	snprintf(p->profile, sizeof(p->profile), "%s", profile);
	return c->n_programs++;
}

void calib_program(struct calib *c, const char *program, const char *profile, size_t n_urls)
{
	size_t i = program_index(c, program, profile);
	if (i != SIZE_MAX)
		c->programs[i].n_urls = n_urls;
}

int calib_record(struct calib *c, const char *program, const char *profile, unsigned round,
		 const char *url, const struct cap_event *ev)
{
	size_t p = program_index(c, program, profile);
	if (p == SIZE_MAX || (int)ev->type < 0 || ev->type >= CAP_EV_TYPE_MAX) {
		c->dropped++;
		return -E2BIG;
	}
	struct cand k = {.program = p};
	int r = rule_of(ev, &k);
	if (r < 0) {
		char ex[CALIB_EXAMPLE_MAX + 8], what[CALIB_EXAMPLE_MAX + 96];
		example(ev->type == CAP_EV_PROCESS ? ev->object2 : ev->object1, ex, sizeof(ex));
		snprintf(what, sizeof(what), "no rule can be made for %s (%s)", ex,
			 r == -EINVAL ? "its action is no literal of a rule line"
				      : "too long for a rule");
		calib_error(c, program, url, what);
		return r;
	}
	struct cand *m = NULL;
	for (size_t i = 0; i < c->n_cands && !m; i++) {
		struct cand *x = &c->cands[i];
		if (x->program == p && x->type == k.type && !strcmp(x->action, k.action) &&
		    !strcmp(x->subject, k.subject) && !strcmp(x->object, k.object))
			m = x;
	}
	if (!m) {
		if (c->n_cands == CALIB_MAX_RULES) {
			c->dropped++;
			return -E2BIG;
		}
		m = &c->cands[c->n_cands++];
		*m = k;
		example(ev->type == CAP_EV_PROCESS ? ev->object2 : ev->object1, m->example,
			sizeof(m->example));
		m->unverified = !verify(m, ev);
	}
	m->events++;
	if (round < 64)
		m->rounds |= UINT64_C(1) << round;
	uint32_t h = hash(url);
	bool seen = false;
	for (size_t i = 0; i < m->n_urls && !seen; i++)
		seen = m->url_hash[i] == h;
	if (!seen && m->n_urls < CALIB_URLS_TRACKED)
		m->url_hash[m->n_urls++] = h;
	return 0;
}

void calib_error(struct calib *c, const char *program, const char *url, const char *what)
{
	char ex[CALIB_EXAMPLE_MAX + 8], line[512];
	example(url, ex, sizeof(ex));
	snprintf(line, sizeof(line), "%s %s: %s", program, ex, what);
	if (c->n_errors == CALIB_MAX_ERRORS || !(c->errors[c->n_errors] = strdup(line)))
		c->more_errors++;
	else
		c->n_errors++;
}

size_t calib_candidates(const struct calib *c)
{
	return c->n_cands;
}

size_t calib_errors(const struct calib *c)
{
	return c->n_errors + c->more_errors;
}

static const char *const list_file[CAP_EV_TYPE_MAX] = {
    [CAP_EV_FILE] = "FileMonitor.exl",
    [CAP_EV_PROCESS] = "ProcessMonitor.exl",
    [CAP_EV_REGISTRY] = "RegistryMonitor.exl",
    [CAP_EV_CONNECTION] = "ConnectionMonitor.exl",
};

size_t calib_print(const struct calib *c, FILE *f, const char *exclusion_dir)
{
	fprintf(f, "# capture-client --calibrate: %u round(s); profiles in %s\n", c->rounds,
		exclusion_dir);
	fprintf(f, "# Candidate rules for events the profiles did not exclude.  Not applied:\n"
		   "# read each, make it as narrow as the reason allows, and add it to the\n"
		   "# file named above it (docs/exclusion-lists.md, \"Calibration\").\n");
	for (size_t p = 0; p < c->n_programs; p++) {
		const struct prog *pr = &c->programs[p];
		size_t n = 0;
		for (size_t i = 0; i < c->n_cands; i++)
			n += c->cands[i].program == p;
		fprintf(f,
			"\n# program %s (profile %s): %zu URL(s) x %u round(s): %zu candidate(s)\n",
			pr->name, pr->profile, pr->n_urls, c->rounds, n);
		for (int t = 0; t < CAP_EV_TYPE_MAX; t++) {
			bool header = false;
			for (size_t i = 0; i < c->n_cands; i++) {
				const struct cand *k = &c->cands[i];
				if (k->program != p || (int)k->type != t)
					continue;
				if (!header)
					fprintf(f, "## %s/%s/%s\n", exclusion_dir, pr->profile,
						list_file[t]);
				header = true;
				fprintf(
				    f,
				    "# %s %s: in %d of %u round(s), on %zu URL(s), %llu event(s); "
				    "e.g. %s%s\n",
				    cap_event_type_name(k->type), k->action,
				    __builtin_popcountll(k->rounds), c->rounds, k->n_urls,
				    (unsigned long long)k->events, k->example,
				    k->unverified ? " (CHECK: this rule does not match the event)"
						  : "");
				fprintf(f, "+\t%s\t%s\t%s\n", k->action, k->subject, k->object);
			}
		}
	}
	if (c->dropped)
		fprintf(f, "\n# %llu event(s) past %d distinct candidates not shown\n",
			(unsigned long long)c->dropped, CALIB_MAX_RULES);
	for (size_t i = 0; i < c->n_errors; i++)
		fprintf(f, "# ERROR: %s\n", c->errors[i]);
	if (c->more_errors)
		fprintf(f, "# ERROR: %zu more\n", c->more_errors);
	return c->n_cands;
}
