/* app-firefox.c - the "firefox" plugin: firefox-esr inside the sandbox, as
 * the user, headless, with a fresh profile per instance, driven over
 * Marionette (its own remote protocol: "LENGTH:JSON" messages on TCP,
 * 127.0.0.1:2828+k inside the sandbox's netns, reached from the host by a
 * socket created in that netns, see download.h netns_socket).
 *
 * Why Marionette: it is the only way to know whether a page loaded.
 * WebDriver:Navigate returns once the load event fired, or fails with the
 * network error page Firefox reached ("about:neterror?e=dnsNotFound" ...),
 * or times out: NETWORK_ERROR with a minor code from neterror_codes[] below,
 * or TIMEOUT_ERROR.  The HTTP status comes from the page's navigation
 * timing entry (>= 400 is NETWORK_ERROR with the status; a page's script
 * could fake it).  The cost: with Marionette on, navigator.webdriver is true,
 * which an evasive page can test (docs/visitor.md).
 *
 * Modes: seq (one Firefox per URL, one after the other), bulk (one Firefox
 * per URL, all started at once, each in its child cgroup; navigations are
 * issued one instance after the other), dac (one Firefox, one tab per URL).
 * After the pages loaded the visit time is stayed, then a screenshot of each
 * page is taken (WebDriver:TakeScreenshot, evidence) and the instance is
 * closed by cgroup.kill.
 *
 * Headful (visitor_options.headful): no --headless; an Xvfb of its own in
 * the instance's cgroup (app_start_xvfb), DISPLAY=:N.
 *
 * Start time: a fresh profile with user.js below plus
 * MOZ_REMOTE_SETTINGS_DEVTOOLS=1 (without it Firefox ignores the
 * services.settings.server override and resolves
 * firefox.settings.services.mozilla.com at start, which costs the resolver
 * timeout when DNS does not answer) - measured in docs/visitor.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app-util.h"
#include "download.h"
#include "escape.h"
#include "macro.h"
#include "plugins.h"

#define FIREFOX		"/usr/lib/firefox-esr/firefox-esr"
#define MARIONETTE_PORT 2828
#define MN_MSG_MAX	(48u << 20) /* a screenshot of a large window, base64 */
#define SHOT_MAX	(32u << 20)
#define START_MS	60000 /* Firefox up and Marionette answering (the original: 60 s) */

/* Noise, not attack surface: no first-run pages, telemetry, studies,
 * updates, remote settings, push, captive-portal or connectivity probes,
 * DoH, Safe Browsing lookups (which would also block the malicious pages a
 * honeypot wants to load).  Content features stay at their defaults. */
static const char user_js[] =
    "user_pref(\"browser.shell.checkDefaultBrowser\", false);\n"
    "user_pref(\"browser.startup.homepage_override.mstone\", \"ignore\");\n"
    "user_pref(\"browser.startup.page\", 0);\n"
    "user_pref(\"browser.startup.homepage\", \"about:blank\");\n"
    "user_pref(\"startup.homepage_welcome_url\", \"\");\n"
    "user_pref(\"startup.homepage_welcome_url.additional\", \"\");\n"
    "user_pref(\"browser.aboutwelcome.enabled\", false);\n"
    "user_pref(\"datareporting.policy.dataSubmissionEnabled\", false);\n"
    "user_pref(\"datareporting.policy.firstRunURL\", \"\");\n"
    "user_pref(\"datareporting.healthreport.uploadEnabled\", false);\n"
    "user_pref(\"toolkit.telemetry.enabled\", false);\n"
    "user_pref(\"toolkit.telemetry.unified\", false);\n"
    "user_pref(\"toolkit.telemetry.archive.enabled\", false);\n"
    "user_pref(\"toolkit.telemetry.server\", \"\");\n"
    "user_pref(\"app.update.auto\", false);\n"
    "user_pref(\"app.update.disabledForTesting\", true);\n"
    "user_pref(\"app.normandy.enabled\", false);\n"
    "user_pref(\"app.shield.optoutstudies.enabled\", false);\n"
    "user_pref(\"browser.safebrowsing.malware.enabled\", false);\n"
    "user_pref(\"browser.safebrowsing.phishing.enabled\", false);\n"
    "user_pref(\"browser.safebrowsing.blockedURIs.enabled\", false);\n"
    "user_pref(\"browser.safebrowsing.downloads.enabled\", false);\n"
    "user_pref(\"browser.safebrowsing.downloads.remote.enabled\", false);\n"
    "user_pref(\"browser.safebrowsing.provider.google4.updateURL\", \"\");\n"
    "user_pref(\"browser.safebrowsing.provider.mozilla.updateURL\", \"\");\n"
    "user_pref(\"network.captive-portal-service.enabled\", false);\n"
    "user_pref(\"network.connectivity-service.enabled\", false);\n"
    "user_pref(\"network.trr.mode\", 5);\n"
    "user_pref(\"extensions.update.enabled\", false);\n"
    "user_pref(\"extensions.getAddons.cache.enabled\", false);\n"
    "user_pref(\"extensions.systemAddon.update.enabled\", false);\n"
    "user_pref(\"extensions.pocket.enabled\", false);\n"
    "user_pref(\"browser.search.update\", false);\n"
    "user_pref(\"services.settings.server\", \"data:,#remote-settings-dummy/v1\");\n"
    "user_pref(\"browser.newtabpage.enabled\", false);\n"
    "user_pref(\"browser.newtabpage.activity-stream.feeds.topsites\", false);\n"
    "user_pref(\"browser.newtabpage.activity-stream.feeds.section.topstories\", false);\n"
    "user_pref(\"browser.newtabpage.activity-stream.telemetry\", false);\n"
    "user_pref(\"browser.ping-centre.telemetry\", false);\n"
    "user_pref(\"browser.region.network.url\", \"\");\n"
    "user_pref(\"browser.region.update.enabled\", false);\n"
    "user_pref(\"dom.push.connection.enabled\", false);\n"
    "user_pref(\"dom.push.serverURL\", \"\");\n"
    "user_pref(\"media.gmp-manager.url\", \"\");\n"
    "user_pref(\"media.gmp-gmpopenh264.enabled\", false);\n"
    "user_pref(\"media.gmp-widevinecdm.enabled\", false);\n"
    "user_pref(\"browser.discovery.enabled\", false);\n"
    "user_pref(\"browser.uitour.enabled\", false);\n"
    "user_pref(\"identity.fxaccounts.enabled\", false);\n"
    "user_pref(\"browser.crashReports.unsubmittedCheck.enabled\", false);\n"
    "user_pref(\"browser.sessionstore.resume_from_crash\", false);\n"
    "user_pref(\"toolkit.startup.max_resumed_crashes\", -1);\n"
    "user_pref(\"browser.tabs.warnOnClose\", false);\n"
    "user_pref(\"browser.warnOnQuit\", false);\n"
    "user_pref(\"security.remote_settings.crlite_filters.enabled\", false);\n"
    "user_pref(\"security.remote_settings.intermediates.enabled\", false);\n"
    "user_pref(\"browser.topsites.contile.enabled\", false);\n"
    "user_pref(\"browser.urlbar.quicksuggest.enabled\", false);\n";

static const char *const ff_env[] = {
    "HOME=" APP_HOME,
    "USER=" SANDBOX_DEFAULT_USER,
    "LOGNAME=" SANDBOX_DEFAULT_USER,
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "LANG=C.UTF-8",
    "SHELL=/bin/sh",
    "MOZ_REMOTE_SETTINGS_DEVTOOLS=1", /* honour services.settings.server (see above) */
    "MOZ_CRASHREPORTER_DISABLE=1",
    NULL,
};

/* Firefox's network error pages (about:neterror?e=NAME) as minor codes. */
static const char *const neterror_codes[] = {
    NULL,		    /* 0: none/unknown */
    "dnsNotFound",	    /* 1 */
    "connectionFailure",    /* 2 */
    "netTimeout",	    /* 3 */
    "netReset",		    /* 4 */
    "netInterrupt",	    /* 5 */
    "unknownProtocolFound", /* 6 */
    "redirectLoop",	    /* 7 */
    "nssFailure2",	    /* 8 */
    "proxyConnectFailure",  /* 9 */
    "contentEncodingError", /* 10 */
    "unsafeContentType",    /* 11 */
    "netOffline",	    /* 12 */
    "blockedByPolicy",	    /* 13 */
    "deniedPortAccess",	    /* 14 */
    "malformedURI",	    /* 15 */
    "fileNotFound",	    /* 16 */
    "nssBadCert",	    /* 17 (about:certerror too) */
};

struct mn {
	int fd;
	unsigned id;
	int64_t deadline_ms;
	atomic_bool *abort;
};

static int mn_wait(struct mn *m, short events)
{
	return download_poll(m->fd, events, m->deadline_ms, m->abort);
}

static int mn_read_exact(struct mn *m, char *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(m->fd, buf, n, 0);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				return -errno;
			int w = mn_wait(m, POLLIN);
			if (w < 0)
				return w;
			continue;
		}
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One message: decimal length, ':', that many bytes of JSON (untrusted). */
static int mn_read(struct mn *m, json_object **ret)
{
	size_t len = 0;
	for (unsigned digits = 0;; digits++) {
		char c;
		int r = mn_read_exact(m, &c, 1);
		if (r < 0)
			return r;
		if (c == ':' && digits > 0)
			break;
		if (c < '0' || c > '9' || digits >= 9)
			return -EBADMSG;
		len = len * 10 + (size_t)(c - '0');
	}
	if (len == 0 || len > MN_MSG_MAX)
		return -EMSGSIZE;
	_cleanup_free_ char *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	int r = mn_read_exact(m, buf, len);
	if (r < 0)
		return r;
	json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return -ENOMEM;
	json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
	bool ok = o && json_tokener_get_error(tok) == json_tokener_success &&
		  tok->char_offset == (int)len;
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(o);
		return -EBADMSG;
	}
	*ret = o;
	return 0;
}

static int mn_send(struct mn *m, json_object *msg)
{
	size_t jl;
	const char *js = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &jl);
	char head[24];
	snprintf(head, sizeof(head), "%zu:", jl);
	const char *parts[] = {head, js};
	size_t lens[] = {strlen(head), jl};
	for (size_t p = 0; p < 2; p++) {
		const char *d = parts[p];
		size_t n = lens[p];
		while (n > 0) {
			ssize_t w = send(m->fd, d, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno != EAGAIN && errno != EINTR)
					return -errno;
				int r = mn_wait(m, POLLOUT);
				if (r < 0)
					return r;
				continue;
			}
			d += w;
			n -= (size_t)w;
		}
	}
	return 0;
}

/* Sends [0, id, name, params] (params is consumed) and waits for
 * [1, id, error, result].  On a protocol error -EREMOTEIO with "error:
 * message" in err; *ret (may be NULL) gets a reference to result. */
static int mn_command(struct mn *m, const char *name, json_object *params, unsigned timeout_ms,
		      json_object **ret, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	unsigned id = ++m->id;
	json_object *msg = json_object_new_array();
	if (!msg) {
		json_object_put(params);
		return -ENOMEM;
	}
	json_object_array_add(msg, json_object_new_int(0));
	json_object_array_add(msg, json_object_new_int64(id));
	json_object_array_add(msg, json_object_new_string(name));
	json_object_array_add(msg, params ? params : json_object_new_object());
	m->deadline_ms = download_now_ms() + timeout_ms;
	int r = mn_send(m, msg);
	json_object_put(msg);
	if (r < 0)
		return r;
	for (;;) {
		json_object *a = NULL;
		r = mn_read(m, &a);
		if (r < 0)
			return r;
		if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != 4 ||
		    json_object_get_int(json_object_array_get_idx(a, 0)) != 1 ||
		    json_object_get_int64(json_object_array_get_idx(a, 1)) != id) {
			json_object_put(a); /* an event or an old answer: skip */
			continue;
		}
		json_object *e = json_object_array_get_idx(a, 2);
		if (e && !json_object_is_type(e, json_type_null)) {
			json_object *en = NULL, *em = NULL;
			json_object_object_get_ex(e, "error", &en);
			json_object_object_get_ex(e, "message", &em);
			if (err)
				snprintf(err, errlen, "%.64s: %.400s",
					 en ? json_object_get_string(en) : "?",
					 em ? json_object_get_string(em) : "");
			json_object_put(a);
			return -EREMOTEIO;
		}
		if (ret)
			*ret = json_object_get(json_object_array_get_idx(a, 3));
		json_object_put(a);
		return 0;
	}
}

/* Connects to Marionette of instance k (retrying while Firefox starts). */
static int mn_connect(struct visit_group *g, struct app_instance *inst, unsigned port,
		      unsigned timeout_ms, struct mn *m)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int64_t deadline = download_now_ms() + timeout_ms;
	for (;;) {
		if (g->abort && atomic_load(g->abort))
			return -ECANCELED;
		int fd = netns_socket(sandbox_netns_fd(g->sb), AF_INET, SOCK_STREAM);
		if (fd < 0)
			return fd;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			(void)fcntl(fd, F_SETFL, O_NONBLOCK);
			m->fd = fd;
			m->id = 0;
			m->abort = g->abort;
			m->deadline_ms = deadline;
			json_object *hello = NULL;
			int r = mn_read(m, &hello); /* {"applicationType":"gecko",...} */
			json_object_put(hello);
			if (r < 0) {
				close(fd);
				m->fd = -1;
			}
			return r;
		}
		int e = errno;
		close(fd);
		if (e != ECONNREFUSED)
			return -e;
		(void)app_stay(g, 0, inst, 1, false);
		if (inst->exited)
			return -ECHILD;
		if (download_now_ms() >= deadline)
			return -ETIMEDOUT;
		struct timespec ts = {.tv_nsec = APP_LOAD_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static uint32_t neterror_minor(const char *msg)
{
	const char *e = strstr(msg, "?e=");
	if (!e)
		return 0;
	e += 3;
	size_t n = strcspn(e, "&\" ");
	for (size_t k = 1; k < ELEMENTSOF(neterror_codes); k++)
		if (strlen(neterror_codes[k]) == n && strncmp(e, neterror_codes[k], n) == 0)
			return (uint32_t)k;
	return 0;
}

static unsigned load_ms(const struct visitor_options *opts)
{
	return 1000u * (opts && opts->load_timeout ? opts->load_timeout : 30);
}

/* Opens URL i in the current tab and records the outcome. */
static int navigate(const struct visitor_options *opts, struct visit_group *g, struct mn *m,
		    size_t i)
{
	struct visit_url *u = &g->urls[i];
	char err[512];
	json_object *p = json_object_new_object();
	if (!p)
		return -ENOMEM;
	json_object_object_add(p, "url", json_object_new_string(u->url));
	int r =
	    mn_command(m, "WebDriver:Navigate", p, load_ms(opts) + 5000, NULL, err, sizeof(err));
	if (r == -ECANCELED)
		return r;
	if (r == -EREMOTEIO) {
		u->visited = true;
		if (strncmp(err, "timeout", 7) == 0) {
			u->major_error = CAP_ERR_TIMEOUT_ERROR;
		} else if (strstr(err, "about:neterror") || strstr(err, "about:certerror") ||
			   strncmp(err, "insecure certificate", 20) == 0) {
			u->major_error = CAP_ERR_NETWORK_ERROR;
			u->minor_error =
			    strstr(err, "certerror") || err[0] == 'i' ? 17u : neterror_minor(err);
		} else {
			u->major_error = CAP_ERR_NETWORK_ERROR;
		}
		return 0;
	}
	if (r == -ETIMEDOUT) {
		u->visited = true;
		u->major_error = CAP_ERR_TIMEOUT_ERROR;
		return r; /* the connection is out of step now */
	}
	if (r < 0) {
		u->major_error = CAP_ERR_PROCESS_ERROR;
		u->minor_error = (uint32_t)-r;
		return r;
	}
	u->visited = true;
	/* The HTTP status of the document (navigation timing). */
	p = json_object_new_object();
	if (!p)
		return -ENOMEM;
	json_object_object_add(
	    p, "script",
	    json_object_new_string("let e = performance.getEntriesByType('navigation')[0];"
				   "return e && e.responseStatus ? e.responseStatus : 0;"));
	json_object_object_add(p, "args", json_object_new_array());
	json_object *res = NULL;
	r = mn_command(m, "WebDriver:ExecuteScript", p, 10000, &res, err, sizeof(err));
	if (r == 0) {
		json_object *v = NULL;
		if (json_object_object_get_ex(res, "value", &v) &&
		    json_object_is_type(v, json_type_int)) {
			int64_t st = json_object_get_int64(v);
			if (st >= 400 && st <= 999) {
				u->major_error = CAP_ERR_NETWORK_ERROR;
				u->minor_error = (uint32_t)st;
			}
		}
		json_object_put(res);
	}
	return r == -ECANCELED ? r : 0;
}

static void screenshot(struct visit_group *g, struct mn *m, size_t i)
{
	if (!g->evidence_dir || !g->urls[i].visited)
		return;
	json_object *p = json_object_new_object();
	if (!p)
		return;
	json_object_object_add(p, "full", json_object_new_boolean(false));
	json_object_object_add(p, "hash", json_object_new_boolean(false));
	json_object *res = NULL;
	if (mn_command(m, "WebDriver:TakeScreenshot", p, 15000, &res, NULL, 0) < 0)
		return;
	json_object *v = NULL;
	if (json_object_object_get_ex(res, "value", &v) &&
	    json_object_is_type(v, json_type_string)) {
		_cleanup_free_ unsigned char *png = NULL;
		size_t n = 0;
		char path[PATH_MAX];
		if (cap_base64_decode(json_object_get_string(v),
				      (size_t)json_object_get_string_len(v), SHOT_MAX, &png,
				      &n) == 0 &&
		    n > 8 && memcmp(png, "\x89PNG", 4) == 0 &&
		    xsnprintf(path, sizeof(path), "%s/firefox-%zu.png", g->evidence_dir, i) == 0) {
			int fd =
			    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (fd >= 0) {
				bool ok = write(fd, png, n) == (ssize_t)n;
				close(fd);
				if (ok)
					snprintf(g->urls[i].screenshot,
						 sizeof(g->urls[i].screenshot), "%s", path);
			}
		}
	}
	json_object_put(res);
}

static int prepare_profile(struct visit_group *g, size_t k, char *dir, size_t len)
{
	snprintf(dir, len, APP_HOME "/.ff-capture-%zu", k);
	int r = app_mkdir_inside(g->sb, dir);
	if (r < 0)
		return r;
	char extra[96], path[PATH_MAX + 16];
	snprintf(extra, sizeof(extra), "user_pref(\"marionette.port\", %u);\n",
		 MARIONETTE_PORT + (unsigned)k);
	size_t n = strlen(user_js) + strlen(extra);
	_cleanup_free_ char *js = malloc(n + 1);
	if (!js)
		return -ENOMEM;
	snprintf(js, n + 1, "%s%s", user_js, extra);
	snprintf(path, sizeof(path), "%s/user.js", dir);
	return app_write_inside(g->sb, path, js, n);
}

/* Starts instance k (for URL k in seq/bulk, for all URLs in dac). */
static int start_instance(const struct visitor_options *opts, const struct visitor_app *app,
			  struct visit_group *g, size_t k, bool bulk, struct app_instance *inst)
{
	char dir[PATH_MAX];
	int r = prepare_profile(g, k, dir, sizeof(dir));
	if (r < 0)
		return r;
	const char *exe = app->executable[0] == '/' ? app->executable : FIREFOX;
	const char *argv[] = {exe,	   "--headless", "--no-remote", "--marionette",
			      "--profile", dir,		 NULL};
	if (!opts || !opts->headful)
		return app_start(g, k, bulk, argv, ff_env, inst);
	/* Headful: an Xvfb of its own in the instance's cgroup, DISPLAY set. */
	unsigned display = 0;
	r = app_cgroup(g, k, bulk, inst);
	if (r == 0)
		r = app_start_xvfb(g, inst, &display);
	if (r < 0) {
		app_stop(g, inst);
		return r;
	}
	char env_display[32];
	snprintf(env_display, sizeof(env_display), "DISPLAY=:%u", display);
	const char *env[ELEMENTSOF(ff_env) + 1];
	size_t n = 0;
	for (; ff_env[n]; n++)
		env[n] = ff_env[n];
	env[n++] = env_display;
	env[n] = NULL;
	argv[1] = "--no-remote"; /* drop --headless: argv[1..] shift by one */
	argv[2] = "--marionette";
	argv[3] = "--profile";
	argv[4] = dir;
	argv[5] = NULL;
	return app_start(g, k, bulk, argv, env, inst);
}

static void fail_range(struct visit_group *g, size_t from, size_t to, uint32_t major, int r)
{
	for (size_t i = from; i < to; i++)
		if (!g->urls[i].major_error) {
			g->urls[i].major_error = major;
			g->urls[i].minor_error = (uint32_t)(r < 0 ? -r : r);
		}
}

/* Connects to instance k and opens URLs [from, to) in it, one tab each. */
static int open_pages(const struct visitor_options *opts, struct visit_group *g,
		      struct app_instance *inst, size_t k, size_t from, size_t to, struct mn *m)
{
	int r = mn_connect(g, inst, MARIONETTE_PORT + (unsigned)k, START_MS, m);
	if (r == 0)
		r = mn_command(m, "WebDriver:NewSession", NULL, START_MS, NULL, NULL, 0);
	if (r == 0) {
		/* Navigate gives up after the load timeout with a "timeout" error
		 * and the session stays usable for the next tab. */
		json_object *p = json_object_new_object();
		if (!p)
			return -ENOMEM;
		json_object_object_add(p, "pageLoad", json_object_new_int64(load_ms(opts)));
		r = mn_command(m, "WebDriver:SetTimeouts", p, START_MS, NULL, NULL, 0);
	}
	if (r < 0) {
		if (r != -ECANCELED)
			fail_range(g, from, to, CAP_ERR_PROCESS_ERROR, r);
		return r;
	}
	for (size_t i = from; i < to; i++) {
		if (i > from) {
			json_object *p = json_object_new_object(), *res = NULL;
			if (!p)
				return -ENOMEM;
			json_object_object_add(p, "type", json_object_new_string("tab"));
			r = mn_command(m, "WebDriver:NewWindow", p, START_MS, &res, NULL, 0);
			json_object *h = NULL;
			if (r == 0 && json_object_object_get_ex(res, "handle", &h)) {
				p = json_object_new_object();
				json_object_object_add(p, "handle", json_object_get(h));
				r = mn_command(m, "WebDriver:SwitchToWindow", p, START_MS, NULL,
					       NULL, 0);
			} else if (r == 0) {
				r = -EBADMSG;
			}
			json_object_put(res);
			if (r < 0) {
				if (r != -ECANCELED)
					fail_range(g, i, to, CAP_ERR_PROCESS_ERROR, r);
				return r;
			}
		}
		r = navigate(opts, g, m, i);
		if (r < 0) {
			if (r != -ECANCELED)
				fail_range(g, i + 1, to, CAP_ERR_PROCESS_ERROR, r);
			return r;
		}
	}
	return 0;
}

/* Screenshots of every tab of instance k (dac: in URL order). */
static void take_screenshots(struct visit_group *g, struct mn *m, size_t from, size_t to)
{
	if (m->fd < 0)
		return;
	json_object *handles = NULL;
	if (to - from > 1 &&
	    mn_command(m, "WebDriver:GetWindowHandles", NULL, 10000, &handles, NULL, 0) < 0)
		return;
	for (size_t i = from; i < to; i++) {
		if (handles) {
			json_object *h = json_object_is_type(handles, json_type_array)
					     ? json_object_array_get_idx(handles, i - from)
					     : NULL;
			if (!h)
				break;
			json_object *p = json_object_new_object();
			if (!p)
				break;
			json_object_object_add(p, "handle", json_object_get(h));
			if (mn_command(m, "WebDriver:SwitchToWindow", p, 10000, NULL, NULL, 0) < 0)
				break;
		}
		screenshot(g, m, i);
	}
	json_object_put(handles);
}

static int visit_group(const struct visitor_options *opts, const struct visitor_app *app,
		       struct visit_group *g)
{
	enum cap_algorithm alg = visitor_algorithm(app, g->algorithm);
	/* instances: one per URL (seq, bulk) or one for all (dac) */
	size_t n_inst = alg == CAP_ALG_DAC ? 1 : g->n_urls;
	_cleanup_free_ struct app_instance *inst = calloc(g->n_urls ? g->n_urls : 1, sizeof(*inst));
	_cleanup_free_ struct mn *m = calloc(g->n_urls ? g->n_urls : 1, sizeof(*m));
	if (!inst || !m)
		return -ENOMEM;
	app_instances_init(inst, g->n_urls);
	for (size_t k = 0; k < g->n_urls; k++)
		m[k].fd = -1;
	int r = 0;
	size_t batch = alg == CAP_ALG_BULK ? n_inst : 1; /* instances alive at once */
	for (size_t first = 0; first < n_inst && r != -ECANCELED; first += batch) {
		size_t last = MIN(first + batch, n_inst);
		for (size_t k = first; k < last && r != -ECANCELED; k++) {
			r = start_instance(opts, app, g, k, alg == CAP_ALG_BULK, &inst[k]);
			if (r < 0 && r != -ECANCELED)
				fail_range(g, k, alg == CAP_ALG_DAC ? g->n_urls : k + 1,
					   CAP_ERR_PROCESS_ERROR, r);
			if (r >= 0 && alg == CAP_ALG_DAC) /* one instance serves every URL */
				for (size_t i = 1; i < g->n_urls; i++)
					g->urls[i].pid = g->urls[0].pid;
		}
		for (size_t k = first; k < last && r != -ECANCELED; k++) {
			if (!inst[k].started)
				continue;
			size_t to = alg == CAP_ALG_DAC ? g->n_urls : k + 1;
			r = open_pages(opts, g, &inst[k], k, k, to, &m[k]);
		}
		if (r != -ECANCELED)
			r = app_stay(g, 1000u * g->visit_time, &inst[first], last - first, false);
		for (size_t k = first; k < last && r != -ECANCELED; k++)
			take_screenshots(g, &m[k], k, alg == CAP_ALG_DAC ? g->n_urls : k + 1);
		for (size_t k = first; k < last; k++) {
			if (m[k].fd >= 0)
				close(m[k].fd);
			m[k].fd = -1;
			app_stop(g, &inst[k]);
		}
	}
	return r == -ECANCELED ? -ECANCELED : 0;
}

const struct visitor_plugin app_firefox_plugin = {
    .name = "firefox",
    .priority = 100,
    .algorithms = 1u << CAP_ALG_SEQ | 1u << CAP_ALG_BULK | 1u << CAP_ALG_DAC,
    .default_algorithm = CAP_ALG_SEQ,
    .visit_group = visit_group,
};
