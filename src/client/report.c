/* report.c - what capture-client tells the server about a group (report.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "report.h"

void report_items_clear(struct report_items *it)
{
	for (size_t i = 0; i < it->n; i++) {
		if (it->urls)
			free(it->urls[i]);
		if (it->ids)
			free(it->ids[i]);
		if (it->wires)
			free(it->wires[i]);
	}
	free(it->urls);
	free(it->ids);
	free(it->wires);
	*it = (struct report_items){0};
}

static int dup_opt(const char *s, char **ret)
{
	*ret = s ? strdup(s) : NULL;
	return s && !*ret ? -ENOMEM : 0;
}

int report_items_copy(const struct cap_msg_visit *mv, struct report_items *ret)
{
	size_t n = mv->n_items;
	struct report_items it = {
	    .n = n,
	    .urls = calloc(n ? n : 1, sizeof(char *)),
	    .ids = calloc(n ? n : 1, sizeof(char *)),
	    .wires = calloc(n ? n : 1, sizeof(char *)),
	};
	int r = it.urls && it.ids && it.wires ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = mv->items[i].url ? dup_opt(mv->items[i].url, &it.urls[i]) : -EINVAL;
		if (r == 0)
			r = dup_opt(mv->items[i].id, &it.ids[i]);
		if (r == 0)
			r = dup_opt(mv->items[i].url_wire, &it.wires[i]);
	}
	if (r < 0) {
		report_items_clear(&it);
		*ret = (struct report_items){0};
		return r;
	}
	*ret = it;
	return 0;
}

size_t report_items_fill(const struct report_items *it, const char *program,
			 const struct report_results *res, struct cap_visit_item *items)
{
	size_t n = MIN(it->n, (size_t)CAP_PROTO_ITEMS_MAX);
	for (size_t i = 0; i < n; i++) {
		items[i] = (struct cap_visit_item){
		    .id = it->ids[i],
		    .url = it->urls[i],
		    .url_wire = it->wires[i],
		    .program = (char *)program,
		};
		if (!res)
			continue;
		const struct visit_url *vu = &res->urls[i];
		struct cap_visit_item *o = &items[i];
		/* processId and both error codes always, 0 when unknown: NG's
		   server fails on an item without them */
		o->has_pid = true;
		o->pid = vu->pid > 0 ? vu->pid : 0;
		o->has_errors = true;
		o->major_error = vu->major_error;
		o->minor_error = vu->minor_error;
		o->has_visited = true;
		o->visited = vu->visited;
		o->has_time = true;
		o->time = res->time;
		o->has_malicious = res->algorithm == CAP_ALG_BULK;
		o->malicious = res->malicious[i];
	}
	return n;
}

void report_algorithm(const struct visitor_app *app, enum cap_algorithm asked, size_t n,
		      enum cap_algorithm *ret_visit, enum cap_algorithm *ret_report)
{
	enum cap_algorithm visit;
	if (!app)
		visit = asked == CAP_ALG_NONE ? CAP_ALG_SEQ : asked;
	else if (asked != CAP_ALG_NONE)
		visit = visitor_algorithm(app, asked);
	else if ((visit = visitor_algorithm(app, CAP_ALG_DAC)) != CAP_ALG_DAC)
		visit = visitor_algorithm(app, CAP_ALG_SEQ);
	if (visit == CAP_ALG_NONE || (asked == CAP_ALG_NONE && visit == CAP_ALG_BULK))
		visit = CAP_ALG_SEQ; /* a plugin that can do neither: one URL at a time */
	*ret_visit = visit;
	*ret_report = asked == CAP_ALG_NONE && n > 1 ? CAP_ALG_DAC : visit;
}

ssize_t report_part(int fd, uint64_t off, const char *name, unsigned char buf[REPORT_PART_BYTES],
		    struct cap_msg *ret)
{
	ssize_t n;
	do
		n = pread(fd, buf, REPORT_PART_BYTES, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	*ret = (struct cap_msg){.type = CAP_MSG_PART};
	ret->part.name = (char *)name;
	ret->part.start = off;
	ret->part.end = off + (uint64_t)n;
	ret->part.data = buf;
	ret->part.data_len = (size_t)n;
	return n;
}
