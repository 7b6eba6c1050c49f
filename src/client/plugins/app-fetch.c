/* app-fetch.c - the "fetch" plugin: the cheap reachability pre-check.  No
 * rendering and no process inside: each URL is fetched by download.c from
 * the host through the sandbox's netns (its egress policy and pcap apply),
 * the body is read (bounded) and dropped, nothing is copied in.
 * visited = an HTTP answer came; status >= 400 is NETWORK_ERROR with the
 * status as minor code; a connection-level failure is NETWORK_ERROR with the
 * errno (ECONNREFUSED, ENETUNREACH, ETIMEDOUT ...; ENOENT = unknown name,
 * EPROTONOSUPPORT = not http) as minor code.  The visit time is not stayed:
 * there is nothing to watch. */
#include <errno.h>
#include <stdlib.h>

#include "app-util.h"
#include "download.h"
#include "macro.h"
#include "plugins.h"

static int visit_group(const struct visitor_options *opts, const struct visitor_app *app,
		       struct visit_group *g)
{
	(void)app;
	struct download_options o;
	app_download_options(opts, g, &o);
	if (o.netns_fd < 0)
		return -EBADF;
	_cleanup_free_ struct download_result *res = calloc(1, sizeof(*res));
	if (!res)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_urls; i++) {
		struct visit_url *u = &g->urls[i];
		int r = download_url(&o, u->url, res);
		if (r == -ECANCELED)
			return r;
		if (r < 0) {
			u->major_error = CAP_ERR_NETWORK_ERROR;
			u->minor_error = (uint32_t)-r;
			continue;
		}
		u->visited = true;
		if (res->status >= 400) {
			u->major_error = CAP_ERR_NETWORK_ERROR;
			u->minor_error = (uint32_t)res->status;
		}
	}
	return 0;
}

const struct visitor_plugin app_fetch_plugin = {
    .name = "fetch",
    .priority = 100,
    .algorithms = 1u << CAP_ALG_SEQ,
    .default_algorithm = CAP_ALG_SEQ,
    .visit_group = visit_group,
};
