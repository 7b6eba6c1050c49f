/* app-chromium.c - the "chromium" application plugin (visitor.h,
 * docs/visitor.md).
 *
 * Debian's Chromium, started directly (/usr/lib/chromium/chromium, not the
 * /usr/bin wrapper whose shell script execs grep, ls, findmnt ...) inside the
 * sandbox as the unprivileged user, with Chromium's own sandbox on (it works
 * inside ours: unprivileged user namespaces are allowed there, see
 * docs/sandbox.md), a fresh profile in the user's home, and driven over the
 * DevTools protocol on --remote-debugging-pipe (cdp.h).
 *
 * Everything runs in one poll loop over the browsers' sockets and pidfds
 * (pump()): per URL a tab walks CREATING -> ATTACHING -> LOADING -> LOADED
 * -> SHOOTING -> SHOT -> CLOSING -> DONE, driven by the answers and events
 * that come back.  The three modes only differ in how many browsers there
 * are and which tabs are active at once:
 *   dac   one browser, every URL in its own tab at once;
 *   seq   one browser, one tab after the other (a browser that died is
 *         restarted for the next URL);
 *   bulk  one browser per URL, each in its own child cgroup "u<i>" with its
 *         own profile, all at once.
 * Every wait is bounded: the browser must answer within START_TIMEOUT_MS,
 * a page must load within the load timeout, the screenshots get
 * SHOT_TIMEOUT_MS + SHOT_PER_TAB_MS per tab and the closing
 * CLOSE_TIMEOUT_MS, and *g->abort is looked at every POLL_MS.  At the end
 * every browser's cgroup is killed (cgroup.kill), which takes the zygotes,
 * renderers, crashpad and anything a page started with it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app-util.h"
#include "cdp.h"
#include "escape.h"
#include "macro.h"
#include "plugins.h"
#include "sandbox.h"

#define START_TIMEOUT_MS     30000 /* from spawn to the browser's first answers */
#define SHOT_TIMEOUT_MS	     5000
#define SHOT_PER_TAB_MS	     500
#define DOWNLOAD_WAIT_MS     10000
#define CLOSE_TIMEOUT_MS     1000
#define POLL_MS		     200
#define SHOT_MAX_BYTES	     (48u << 20) /* a decoded PNG; its base64 fits CDP_DEFAULT_MAX_MSG */
#define DEFAULT_LOAD_TIMEOUT 30
#define CDP_ID_MAX	     128 /* target, session and loader ids are 32 hex digits */

/* Chromium's net error numbers (net/base/net_error_list.h), for the minor
 * error code: the protocol only gives the name ("net::ERR_NAME_NOT_RESOLVED"). */
static const struct {
	const char *name;
	unsigned code;
} net_errors[] = {
    {"FAILED", 2},
    {"ABORTED", 3},
    {"INVALID_ARGUMENT", 4},
    {"FILE_NOT_FOUND", 6},
    {"TIMED_OUT", 7},
    {"FILE_TOO_BIG", 8},
    {"UNEXPECTED", 9},
    {"ACCESS_DENIED", 10},
    {"NOT_IMPLEMENTED", 11},
    {"INSUFFICIENT_RESOURCES", 12},
    {"OUT_OF_MEMORY", 13},
    {"BLOCKED_BY_CLIENT", 20},
    {"NETWORK_CHANGED", 21},
    {"BLOCKED_BY_ADMINISTRATOR", 22},
    {"BLOCKED_BY_RESPONSE", 27},
    {"CLEARTEXT_NOT_PERMITTED", 29},
    {"BLOCKED_BY_CSP", 30},
    {"CONNECTION_CLOSED", 100},
    {"CONNECTION_RESET", 101},
    {"CONNECTION_REFUSED", 102},
    {"CONNECTION_ABORTED", 103},
    {"CONNECTION_FAILED", 104},
    {"NAME_NOT_RESOLVED", 105},
    {"INTERNET_DISCONNECTED", 106},
    {"SSL_PROTOCOL_ERROR", 107},
    {"ADDRESS_INVALID", 108},
    {"ADDRESS_UNREACHABLE", 109},
    {"SSL_CLIENT_AUTH_CERT_NEEDED", 110},
    {"TUNNEL_CONNECTION_FAILED", 111},
    {"SSL_VERSION_OR_CIPHER_MISMATCH", 113},
    {"CONNECTION_TIMED_OUT", 118},
    {"SOCKS_CONNECTION_FAILED", 120},
    {"PROXY_CONNECTION_FAILED", 130},
    {"NAME_RESOLUTION_FAILED", 137},
    {"NETWORK_ACCESS_DENIED", 138},
    {"SSL_SERVER_CERT_BAD_FORMAT", 167},
    {"CERT_COMMON_NAME_INVALID", 200},
    {"CERT_DATE_INVALID", 201},
    {"CERT_AUTHORITY_INVALID", 202},
    {"CERT_CONTAINS_ERRORS", 203},
    {"CERT_REVOKED", 206},
    {"CERT_INVALID", 207},
    {"CERT_WEAK_SIGNATURE_ALGORITHM", 208},
    {"INVALID_URL", 300},
    {"DISALLOWED_URL_SCHEME", 301},
    {"UNKNOWN_URL_SCHEME", 302},
    {"INVALID_REDIRECT", 303},
    {"TOO_MANY_REDIRECTS", 310},
    {"UNSAFE_REDIRECT", 311},
    {"UNSAFE_PORT", 312},
    {"INVALID_RESPONSE", 320},
    {"INVALID_CHUNKED_ENCODING", 321},
    {"METHOD_NOT_SUPPORTED", 322},
    {"EMPTY_RESPONSE", 324},
    {"RESPONSE_HEADERS_TOO_BIG", 325},
    {"CONTENT_DECODING_FAILED", 330},
    {"CONTENT_LENGTH_MISMATCH", 354},
    {"INCOMPLETE_CHUNKED_ENCODING", 355},
    {"RESPONSE_HEADERS_TRUNCATED", 357},
    {"INVALID_HTTP_RESPONSE", 370},
    {"HTTP_RESPONSE_CODE_FAILURE", 379},
    {"DNS_MALFORMED_RESPONSE", 800},
    {"DNS_SERVER_REQUIRES_TCP", 801},
    {"DNS_SERVER_FAILED", 802},
    {"DNS_TIMED_OUT", 803},
};

enum tab_state {
	TAB_IDLE,      /* not started (seq: waits its turn) */
	TAB_CREATING,  /* Target.createTarget sent */
	TAB_ATTACHING, /* Target.attachToTarget sent */
	TAB_ENABLING,  /* Page.enable and Network.enable sent */
	TAB_LOADING,   /* Page.navigate sent, waiting for the load (or error) */
	TAB_LOADED,    /* loaded, failed to load or timed out: staying */
	TAB_SHOOTING,  /* Page.captureScreenshot sent */
	TAB_SHOT,
	TAB_CLOSING, /* Target.closeTarget sent */
	TAB_DONE,
};

struct browser {
	struct cdp *cdp;
	struct sandbox_process proc; /* pidfd -1 when not running */
	struct sandbox_process xvfb;
	char cgroup[VISITOR_NAME_MAX];
	uint64_t cgroup_id;
	bool cgroup_made;
	bool dead;
	unsigned downloads; /* Browser.downloadWillBegin not yet completed/canceled */
	int64_t version_req;   /* Browser.getVersion in flight */
	char user_agent[512];  /* headless: the UA with "HeadlessChrome" made "Chrome"; "" = as is */
};

struct tab {
	struct visit_url *u;
	size_t index; /* in the group: the screenshot is <index>.png */
	struct browser *b;
	enum tab_state state;
	int64_t req;  /* the answer the state waits for */
	int64_t req2; /* ENABLING: the second one */
	uint64_t deadline;
	char target[CDP_ID_MAX], session[CDP_ID_MAX], loader[CDP_ID_MAX];
	bool nav_answered;
	bool committed;	 /* Page.frameNavigated of the main frame seen */
	bool load_seen;	 /* Page.loadEventFired after that */
	unsigned status; /* HTTP status of the main document, 0 = none seen */
};

struct run {
	const struct visitor_options *opts;
	const struct visitor_app *app;
	struct visit_group *g;
	struct browser *browsers;
	size_t n_browsers;
	struct tab *tabs;
	size_t n_tabs;
	struct pollfd *pfds;
	char home[PATH_MAX];
	unsigned load_timeout_ms;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "net::ERR_NAME_NOT_RESOLVED" -> 105; 0 if unknown. */
static unsigned net_error_code(const char *text)
{
	if (!text || strncmp(text, "net::ERR_", 9) != 0)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(net_errors); i++)
		if (strcmp(text + 9, net_errors[i].name) == 0)
			return net_errors[i].code;
	return 0;
}

static void tab_error(struct tab *t, uint32_t major, uint32_t minor)
{
	if (t->u->major_error)
		return; /* the first error is the one that counts */
	t->u->major_error = major;
	t->u->minor_error = minor;
}

/* Copies an id the browser sent, refusing anything unexpected. */
static bool copy_id(char *dst, const char *src)
{
	if (!src || !*src || strlen(src) >= CDP_ID_MAX)
		return false;
	for (const char *p = src; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	memcpy(dst, src, strlen(src) + 1); /* length checked above */
	return true;
}

/* ---- the user's home inside ---- */

/* The sandbox's /home is an opaque directory holding only the user's home
 * (sandbox-mount.c); sandbox.h does not export the path, so find it there. */
static int find_home(struct sandbox *sb, char *buf, size_t len)
{
	char path[PATH_MAX];
	int r = xsnprintf(path, sizeof(path), "%s/home", sandbox_root(sb));
	if (r < 0)
		return r;
	DIR *d = opendir(path);
	if (!d)
		return negative_errno();
	struct dirent *de;
	int found = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		if (found++ == 0)
			r = xsnprintf(buf, len, "/home/%s", de->d_name);
	}
	closedir(d);
	if (found != 1)
		return -ENOENT;
	return r;
}

/* ---- starting and stopping browsers ---- */

static int make_cgroup(struct sandbox *sb, const char *base, struct browser *b)
{
	int r = -EEXIST;
	for (unsigned i = 1; i <= 100 && r == -EEXIST; i++) {
		if (i == 1)
			r = xsnprintf(b->cgroup, sizeof(b->cgroup), "%s", base);
		else
			r = xsnprintf(b->cgroup, sizeof(b->cgroup), "%s-%u", base, i);
		if (r == 0)
			r = sandbox_cgroup_new(sb, b->cgroup, &b->cgroup_id);
	}
	if (r == 0)
		b->cgroup_made = true;
	return r;
}

/* Starts Xvfb in the browser's cgroup; *ret_display gets its display number. */
static int start_xvfb(struct run *run, struct browser *b, unsigned *ret_display)
{
	return app_spawn_xvfb(run->g->sb, b->cgroup, run->g->abort, &b->xvfb, ret_display);
}

/* Spawns browser #i (profile suffix i, or none when i < 0) in a new child
 * cgroup named base.  With attr (bulk), that URL's cgroup and cgroup_id are
 * set before anything runs in the cgroup, so that the analyzer attributes
 * every event of the instance.  0, or -errno (the caller stops b). */
static int start_browser(struct run *run, struct browser *b, const char *base, int i,
			 struct visit_url *attr)
{
	struct sandbox *sb = run->g->sb;
	b->proc.pidfd = b->proc.status_fd = -1;
	b->xvfb.pidfd = b->xvfb.status_fd = -1;
	b->downloads = 0; /* seq: the struct serves browser after browser */
	int r = make_cgroup(sb, base, b);
	if (r < 0)
		return r;
	if (attr) {
		snprintf(attr->cgroup, sizeof(attr->cgroup), "%s", b->cgroup);
		attr->cgroup_id = b->cgroup_id;
	}

	char profile[PATH_MAX + 32], display[32] = "", env_home[PATH_MAX + 8], env_user[128],
				     env_logname[128];
	if (i >= 0)
		r = xsnprintf(profile, sizeof(profile),
			      "--user-data-dir=%s/.config/chromium-capture-%d", run->home, i);
	else
		r = xsnprintf(profile, sizeof(profile),
			      "--user-data-dir=%s/.config/chromium-capture", run->home);
	if (r < 0)
		return r;
	if (run->opts->headful) {
		unsigned d = 0;
		if ((r = start_xvfb(run, b, &d)) < 0)
			return r;
		snprintf(display, sizeof(display), "DISPLAY=:%u", d);
	}
	const char *user = strrchr(run->home, '/') + 1;
	snprintf(env_home, sizeof(env_home), "HOME=%s", run->home);
	snprintf(env_user, sizeof(env_user), "USER=%s", user);
	snprintf(env_logname, sizeof(env_logname), "LOGNAME=%s", user);
	const char *envp[] = {env_home,
			      env_user,
			      env_logname,
			      "PATH=/usr/local/bin:/usr/bin:/bin",
			      "LANG=C.UTF-8",
			      "SHELL=/bin/sh",
			      display[0] ? display : NULL,
			      NULL};

	/* Every flag is listed with its reason in docs/visitor.md. */
	const char *argv[24];
	size_t n = 0;
	argv[n++] = run->app->executable;
	if (!run->opts->headful)
		argv[n++] = "--headless=new";
	argv[n++] = "--remote-debugging-pipe";
	argv[n++] = profile;
	argv[n++] = "--no-first-run";
	argv[n++] = "--no-default-browser-check";
	argv[n++] = "--disable-background-networking";
	argv[n++] = "--disable-component-update";
	argv[n++] = "--disable-sync";
	argv[n++] = "--password-store=basic";
	argv[n++] = "--window-size=1280,1024";
	argv[n++] = "--disable-blink-features=AutomationControlled";
	argv[n++] = "about:blank";
	argv[n] = NULL;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return negative_errno();
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.envp = envp;
	ex.cgroup = b->cgroup;
	ex.fds[0] = (struct sandbox_fd){.fd = sv[1], .target = 3};
	ex.fds[1] = (struct sandbox_fd){.fd = sv[1], .target = 4};
	ex.n_fds = 2;
	r = sandbox_spawn(sb, &ex, &b->proc);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		b->proc.pidfd = b->proc.status_fd = -1;
		return r;
	}
	if ((r = cdp_new(sv[0], 0, &b->cdp)) < 0)
		return r;
	/* Downloads are saved to ~/Downloads without asking (docs/visitor.md):
	 * without this a DevTools-driven browser keeps a dangerous file as
	 * "Unconfirmed NNN.crdownload" forever (docs/testweb.md). */
	char dir[PATH_MAX + 16];
	if ((r = xsnprintf(dir, sizeof(dir), "%s/Downloads", run->home)) < 0)
		return r;
	struct json_object *p = json_object_new_object();
	json_object_object_add(p, "behavior", json_object_new_string("allow"));
	json_object_object_add(p, "downloadPath", json_object_new_string(dir));
	json_object_object_add(p, "eventsEnabled", json_object_new_boolean(1));
	if ((r = cdp_send(b->cdp, NULL, "Browser.setDownloadBehavior", p, NULL)) < 0)
		return r;
	/* Headless Chromium says "HeadlessChrome" in its user agent, which
	 * evasive pages look for: each tab gets the UA a desktop Chromium of
	 * the same version sends (the answer comes before any tab exists). */
	b->user_agent[0] = '\0';
	b->version_req = 0;
	return run->opts->headful ? 0
				  : cdp_send(b->cdp, NULL, "Browser.getVersion", NULL, &b->version_req);
}

/* The answer to Browser.getVersion: the user agent without "Headless". */
static void browser_version(struct browser *b, struct json_object *msg)
{
	const char *ua = cdp_str(cdp_obj(msg, "result"), "userAgent");
	const char *h = ua ? strstr(ua, "HeadlessChrome/") : NULL;
	b->version_req = 0;
	if (!h || strlen(ua) >= sizeof(b->user_agent))
		return;
	(void)snprintf(b->user_agent, sizeof(b->user_agent), "%.*s%s", (int)(h - ua), ua,
		       h + strlen("Headless"));
}

/* Kills everything in the browser's cgroup and forgets the browser. */
static void stop_browser(struct run *run, struct browser *b)
{
	cdp_free(b->cdp);
	b->cdp = NULL;
	if (b->cgroup_made)
		(void)sandbox_cgroup_kill(run->g->sb, b->cgroup);
	b->cgroup_made = false;
	sandbox_process_done(&b->proc);
	sandbox_process_done(&b->xvfb);
	b->proc.pidfd = b->proc.status_fd = b->xvfb.pidfd = b->xvfb.status_fd = -1;
	b->dead = true;
}

/* The browser died or spoke nonsense: every tab it had in flight is done. */
static void browser_failed(struct run *run, struct browser *b)
{
	if (!b->dead)
		stop_browser(run, b);
	for (size_t i = 0; i < run->n_tabs; i++) {
		struct tab *t = &run->tabs[i];
		if (t->b != b || t->state == TAB_IDLE || t->state == TAB_DONE)
			continue;
		if (t->state < TAB_LOADED)
			tab_error(t, CAP_ERR_PROCESS_ERROR, 0);
		t->state = TAB_DONE;
	}
}

/* ---- the protocol conversation of one tab ---- */

static void tab_send(struct run *run, struct tab *t, const char *session, const char *method,
		     struct json_object *params, bool wait)
{
	int64_t id = 0;
	int r = cdp_send(t->b->cdp, session, method, params, &id);
	if (r < 0)
		browser_failed(run, t->b);
	else if (wait)
		t->req = id;
}

static void tab_start(struct run *run, struct tab *t)
{
	struct json_object *p = json_object_new_object();
	json_object_object_add(p, "url", json_object_new_string("about:blank"));
	/* Headful: a window of its own, or a background tab never paints and
	 * its screenshot never comes. */
	if (run->opts->headful)
		json_object_object_add(p, "newWindow", json_object_new_boolean(1));
	t->state = TAB_CREATING;
	t->deadline = now_ms() + START_TIMEOUT_MS;
	tab_send(run, t, NULL, "Target.createTarget", p, true);
}

/* Page and Network events must be on before the navigation starts: the
 * navigation runs in the browser process and a small page can be loaded
 * before a Page.enable still queued for the renderer took effect. */
static void tab_enable(struct run *run, struct tab *t)
{
	struct browser *b = t->b;
	t->state = TAB_ENABLING;
	if (b->user_agent[0]) { /* before the navigation: commands run in order */
		struct json_object *ua = json_object_new_object();
		json_object_object_add(ua, "userAgent", json_object_new_string(b->user_agent));
		tab_send(run, t, t->session, "Network.setUserAgentOverride", ua, false);
		if (b->dead)
			return;
	}
	tab_send(run, t, t->session, "Page.enable", NULL, true);
	if (b->dead)
		return;
	t->req2 = t->req;
	struct json_object *p = json_object_new_object();
	/* Keep the browser from holding response bodies for us (we never ask). */
	json_object_object_add(p, "maxTotalBufferSize", json_object_new_int(1 << 20));
	json_object_object_add(p, "maxResourceBufferSize", json_object_new_int(1 << 19));
	tab_send(run, t, t->session, "Network.enable", p, true);
}

static void tab_navigate(struct run *run, struct tab *t)
{
	struct json_object *p = json_object_new_object();
	json_object_object_add(p, "url", json_object_new_string(t->u->url));
	t->state = TAB_LOADING;
	t->deadline = now_ms() + run->load_timeout_ms;
	t->u->visited = true;
	t->u->pid = t->b->proc.inner_pid;
	tab_send(run, t, t->session, "Page.navigate", p, true);
}

/* The answer to Page.navigate: committed, failed, or turned into a download. */
static void tab_navigated(struct tab *t, struct json_object *msg)
{
	t->nav_answered = true;
	const char *err = cdp_msg_error(msg);
	if (err) { /* e.g. "Cannot navigate to invalid URL" */
		tab_error(t, CAP_ERR_NETWORK_ERROR, 300 /* ERR_INVALID_URL */);
		t->state = TAB_LOADED;
		return;
	}
	struct json_object *res = cdp_msg_result(msg), *dl;
	(void)copy_id(t->loader, cdp_str(res, "loaderId"));
	const char *text = cdp_str(res, "errorText");
	if (json_object_object_get_ex(res, "isDownload", &dl) && json_object_get_boolean(dl)) {
		t->state = TAB_LOADED; /* the browser downloads it; no page will load */
		return;
	}
	if (!text || !*text) {
		if (t->load_seen)
			t->state = TAB_LOADED;
		return;
	}
	{
		unsigned code = net_error_code(text);
		/* An HTTP error answer without a body shows Chromium's error page:
		 * the server answered, so the status is the result (docs/visitor.md). */
		if (code == 379 && t->status >= 400)
			t->u->minor_error = t->status;
		else
			tab_error(t, CAP_ERR_NETWORK_ERROR, code);
		t->state = TAB_LOADED;
	}
}

static void tab_save_shot(struct run *run, struct tab *t, struct json_object *msg)
{
	const char *data = cdp_str(cdp_msg_result(msg), "data");
	if (!data || !run->g->evidence_dir)
		return;
	unsigned char *png = NULL;
	size_t len = 0;
	if (cap_base64_decode(data, strlen(data), SHOT_MAX_BYTES, &png, &len) < 0)
		return;
	static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	char path[PATH_MAX];
	if (len >= sizeof(magic) && memcmp(png, magic, sizeof(magic)) == 0 &&
	    xsnprintf(path, sizeof(path), "%s/%zu.png", run->g->evidence_dir, t->index) == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			size_t off = 0;
			while (off < len) {
				ssize_t w = write(fd, png + off, len - off);
				if (w <= 0)
					break;
				off += (size_t)w;
			}
			if (close(fd) == 0 && off == len)
				snprintf(t->u->screenshot, sizeof(t->u->screenshot), "%s", path);
			else
				(void)unlink(path);
		}
	}
	free(png);
}

static void tab_answer(struct run *run, struct tab *t, struct json_object *msg)
{
	struct json_object *res = cdp_msg_result(msg);
	struct json_object *p;
	switch (t->state) {
	case TAB_CREATING:
		if (cdp_msg_error(msg) || !copy_id(t->target, cdp_str(res, "targetId"))) {
			tab_error(t, CAP_ERR_PROCESS_ERROR, 0);
			t->state = TAB_DONE;
			return;
		}
		p = json_object_new_object();
		json_object_object_add(p, "targetId", json_object_new_string(t->target));
		json_object_object_add(p, "flatten", json_object_new_boolean(1));
		t->state = TAB_ATTACHING;
		tab_send(run, t, NULL, "Target.attachToTarget", p, true);
		break;
	case TAB_ATTACHING:
		if (cdp_msg_error(msg) || !copy_id(t->session, cdp_str(res, "sessionId"))) {
			tab_error(t, CAP_ERR_PROCESS_ERROR, 0);
			t->state = TAB_DONE;
			return;
		}
		tab_enable(run, t);
		break;
	case TAB_ENABLING:
		if (cdp_msg_error(msg)) {
			tab_error(t, CAP_ERR_PROCESS_ERROR, 0);
			t->state = TAB_DONE;
		} else if (t->req == 0 && t->req2 == 0) {
			tab_navigate(run, t);
		}
		break;
	case TAB_LOADING:
		tab_navigated(t, msg);
		break;
	case TAB_SHOOTING:
		tab_save_shot(run, t, msg);
		t->state = TAB_SHOT;
		break;
	case TAB_CLOSING:
		t->state = TAB_DONE;
		break;
	default:
		break;
	}
}

static void tab_event(struct run *run, struct tab *t, const char *method, struct json_object *msg)
{
	struct json_object *params = cdp_obj(msg, "params"), *v;
	if (strcmp(method, "Page.javascriptDialogOpening") == 0) {
		/* alert(), confirm(), prompt() block the page until answered: a
		 * user clicks OK, and a page must not stall the visit this way. */
		struct json_object *p = json_object_new_object();
		json_object_object_add(p, "accept", json_object_new_boolean(1));
		tab_send(run, t, t->session, "Page.handleJavaScriptDialog", p, false);
		return;
	}
	if (t->state != TAB_LOADING)
		return;
	if (strcmp(method, "Page.frameNavigated") == 0) {
		struct json_object *frame = cdp_obj(params, "frame");
		const char *id = cdp_str(frame, "id");
		if (id && strcmp(id, t->target) == 0 && !cdp_str(frame, "parentId"))
			t->committed = true;
	} else if (strcmp(method, "Page.loadEventFired") == 0) {
		/* The answer to Page.navigate comes from the browser process, the
		 * events from the renderer: either may be first.  A load event
		 * before our navigation committed is about:blank's. */
		if (t->committed) {
			t->load_seen = true;
			if (t->nav_answered)
				t->state = TAB_LOADED;
		}
	} else if (strcmp(method, "Network.responseReceived") == 0) {
		const char *type = cdp_str(params, "type"), *frame = cdp_str(params, "frameId");
		struct json_object *resp = cdp_obj(params, "response");
		if (type && frame && strcmp(type, "Document") == 0 &&
		    strcmp(frame, t->target) == 0 &&
		    json_object_object_get_ex(resp, "status", &v)) {
			int64_t st = json_object_get_int64(v);
			t->status = st > 0 && st < 1000 ? (unsigned)st : 0;
			/* >= 400 is no error: the page was visited (docs/visitor.md). */
			if (!t->u->major_error)
				t->u->minor_error = t->status >= 400 ? t->status : 0;
		}
	} else if (strcmp(method, "Network.loadingFailed") == 0 && t->nav_answered) {
		/* The main document failed after its commit (e.g. reset mid-body). */
		const char *req = cdp_str(params, "requestId");
		bool canceled =
		    json_object_object_get_ex(params, "canceled", &v) && json_object_get_boolean(v);
		if (req && t->loader[0] && strcmp(req, t->loader) == 0 && !canceled) {
			tab_error(t, CAP_ERR_NETWORK_ERROR,
				  net_error_code(cdp_str(params, "errorText")));
			t->state = TAB_LOADED;
		}
	}
}

/* The tab's page went away (renderer crash, the page closed itself, or our
 * own Target.closeTarget). */
static void tab_detached(struct tab *t)
{
	if (t->state >= TAB_CREATING && t->state < TAB_LOADED)
		tab_error(t, CAP_ERR_PROCESS_ERROR, 0);
	t->state = TAB_DONE;
}

static void dispatch(struct run *run, struct browser *b, struct json_object *msg)
{
	int64_t id = cdp_msg_id(msg);
	const char *session = cdp_msg_session(msg);
	const char *method = cdp_msg_method(msg);
	if (id > 0 && id == b->version_req) {
		browser_version(b, msg);
		return;
	}
	if (id <= 0 && !session && method && strcmp(method, "Browser.downloadWillBegin") == 0) {
		b->downloads++;
		return;
	}
	if (id <= 0 && !session && method && strcmp(method, "Browser.downloadProgress") == 0) {
		const char *state = cdp_str(cdp_obj(msg, "params"), "state");
		if (state && strcmp(state, "inProgress") != 0 && b->downloads > 0)
			b->downloads--;
		return;
	}
	if (id <= 0 && !session && method && strcmp(method, "Target.detachedFromTarget") == 0) {
		const char *gone = cdp_str(cdp_obj(msg, "params"), "sessionId");
		for (size_t i = 0; gone && i < run->n_tabs; i++) {
			struct tab *t = &run->tabs[i];
			if (t->b == b && t->state != TAB_IDLE && t->state != TAB_DONE &&
			    strcmp(gone, t->session) == 0)
				tab_detached(t);
		}
		return;
	}
	for (size_t i = 0; i < run->n_tabs; i++) {
		struct tab *t = &run->tabs[i];
		if (t->b != b || t->state == TAB_IDLE || t->state == TAB_DONE)
			continue;
		if (id > 0) {
			if (t->req == id || t->req2 == id) {
				if (t->req == id)
					t->req = 0;
				else
					t->req2 = 0;
				tab_answer(run, t, msg);
				return;
			}
		} else if (session && strcmp(session, t->session) == 0) {
			if (method)
				tab_event(run, t, method, msg);
			return;
		}
	}
}

static void check_deadlines(struct run *run)
{
	uint64_t now = now_ms();
	for (size_t i = 0; i < run->n_tabs; i++) {
		struct tab *t = &run->tabs[i];
		if (now < t->deadline)
			continue;
		if (t->state == TAB_CREATING || t->state == TAB_ATTACHING ||
		    t->state == TAB_ENABLING) {
			tab_error(t, CAP_ERR_PROCESS_ERROR, 0); /* the browser does not answer */
			t->state = TAB_DONE;
		} else if (t->state == TAB_LOADING) {
			tab_error(t, CAP_ERR_TIMEOUT_ERROR, 0);
			t->state = TAB_LOADED;
		}
	}
}

/* Reads and handles everything browser b sent. */
static void browser_input(struct run *run, struct browser *b)
{
	int r = cdp_read(b->cdp);
	for (;;) {
		struct json_object *msg = NULL;
		int k = cdp_next(b->cdp, &msg);
		if (k == -EBADMSG)
			continue;
		if (k <= 0) {
			if (k < 0)
				r = k;
			break;
		}
		dispatch(run, b, msg);
		json_object_put(msg);
		if (b->dead)
			return;
	}
	if (r < 0)
		browser_failed(run, b);
}

/* The event loop: until done(run), the deadline (monotonic ms) or an abort.
 * 1 = done, 0 = deadline, -ECANCELED. */
static int pump(struct run *run, uint64_t deadline, bool (*done)(const struct run *))
{
	for (;;) {
		if (atomic_load(run->g->abort))
			return -ECANCELED;
		check_deadlines(run);
		if (done && done(run))
			return 1;
		uint64_t now = now_ms();
		if (now >= deadline)
			return 0;
		/* Two slots per browser, fd -1 (ignored by poll) when it is gone. */
		for (size_t i = 0; i < run->n_browsers; i++) {
			struct browser *b = &run->browsers[i];
			bool live = !b->dead && b->cdp;
			run->pfds[2 * i] = (struct pollfd){
			    .fd = live ? cdp_fd(b->cdp) : -1,
			    .events = (short)(POLLIN |
					      (live && cdp_write_pending(b->cdp) ? POLLOUT : 0))};
			run->pfds[2 * i + 1] =
			    (struct pollfd){.fd = live ? b->proc.pidfd : -1, .events = POLLIN};
		}
		int r = poll(run->pfds, run->n_browsers * 2,
			     (int)MIN(deadline - now, (uint64_t)POLL_MS));
		if (r < 0 && errno != EINTR)
			return negative_errno();
		if (r <= 0)
			continue;
		for (size_t i = 0; i < run->n_browsers; i++) {
			struct browser *b = &run->browsers[i];
			struct pollfd *sock = &run->pfds[2 * i], *pid = &run->pfds[2 * i + 1];
			if (b->dead || !b->cdp)
				continue;
			if (sock->revents & POLLOUT && cdp_flush(b->cdp) < 0) {
				browser_failed(run, b);
				continue;
			}
			if (sock->revents & (POLLIN | POLLHUP | POLLERR))
				browser_input(run, b);
			/* Exited: what it wrote before is handled above. */
			if (!b->dead && pid->revents)
				browser_failed(run, b);
		}
	}
}

static bool none_starting(const struct run *run)
{
	for (size_t i = 0; i < run->n_tabs; i++) {
		enum tab_state s = run->tabs[i].state;
		if (s == TAB_CREATING || s == TAB_ATTACHING || s == TAB_ENABLING ||
		    s == TAB_LOADING)
			return false;
	}
	return true;
}

static bool none_in(const struct run *run, enum tab_state state)
{
	for (size_t i = 0; i < run->n_tabs; i++)
		if (run->tabs[i].state == state)
			return false;
	return true;
}

static bool none_shooting(const struct run *run)
{
	return none_in(run, TAB_SHOOTING);
}

static bool none_closing(const struct run *run)
{
	return none_in(run, TAB_CLOSING);
}

static bool none_downloading(const struct run *run)
{
	for (size_t i = 0; i < run->n_browsers; i++) {
		const struct browser *b = &run->browsers[i];
		if (!b->dead && b->cdp && b->downloads > 0)
			return false;
	}
	return true;
}

/* Loads every started tab, stays, screenshots, closes.  0 or -ECANCELED. */
static int visit_active(struct run *run)
{
	/* Each tab's own deadlines bound this; the overall one is a backstop. */
	uint64_t end = now_ms() + START_TIMEOUT_MS + run->load_timeout_ms + 1000;
	int r = pump(run, end, none_starting);
	if (r < 0)
		return r;
	if (run->g->visit_time > 0 &&
	    (r = pump(run, now_ms() + (uint64_t)run->g->visit_time * 1000, NULL)) < 0)
		return r;

	uint64_t shots = 0;
	for (size_t i = 0; i < run->n_tabs; i++) {
		struct tab *t = &run->tabs[i];
		if (t->state != TAB_LOADED || t->b->dead)
			continue;
		struct json_object *p = json_object_new_object();
		json_object_object_add(p, "format", json_object_new_string("png"));
		t->state = TAB_SHOOTING;
		tab_send(run, t, t->session, "Page.captureScreenshot", p, true);
		shots++;
	}
	/* One browser renders its tabs' screenshots one after another: the
	 * budget grows with their number (a group of 10 under load took over
	 * 5 s and lost the last one). */
	if ((r = pump(run, now_ms() + SHOT_TIMEOUT_MS + shots * SHOT_PER_TAB_MS, none_shooting)) <
	    0)
		return r;
	/* A download the page started (a drive-by) runs on in the browser after
	 * its tab is closed, but the browser is killed after the group: let it
	 * land, within DOWNLOAD_WAIT_MS (or the page-load timeout if shorter),
	 * so that its file is reported and kept; a page that trickles an
	 * endless download cannot hold the group longer.  A download that has
	 * not begun by now is not waited for. */
	if ((r = pump(run, now_ms() + MIN(run->load_timeout_ms, DOWNLOAD_WAIT_MS),
		      none_downloading)) < 0)
		return r;

	for (size_t i = 0; i < run->n_tabs; i++) {
		struct tab *t = &run->tabs[i];
		if (t->state == TAB_IDLE || t->state == TAB_DONE)
			continue;
		if (t->b->dead || !t->target[0]) {
			t->state = TAB_DONE;
			continue;
		}
		struct json_object *p = json_object_new_object();
		json_object_object_add(p, "targetId", json_object_new_string(t->target));
		t->state = TAB_CLOSING;
		tab_send(run, t, NULL, "Target.closeTarget", p, true);
	}
	if ((r = pump(run, now_ms() + CLOSE_TIMEOUT_MS, none_closing)) < 0)
		return r;
	for (size_t i = 0; i < run->n_tabs; i++)
		if (run->tabs[i].state != TAB_IDLE)
			run->tabs[i].state = TAB_DONE;
	return 0;
}

/* Starts browser b for tab t (or fails t with PROCESS_ERROR). */
static int start_for(struct run *run, struct browser *b, const char *base, int profile,
		     struct tab *t)
{
	int r = start_browser(run, b, base, profile, profile >= 0 ? t->u : NULL);
	if (r < 0) {
		stop_browser(run, b);
		if (r == -ECANCELED)
			return r;
		tab_error(t, CAP_ERR_PROCESS_ERROR, 0);
		t->state = TAB_DONE;
	}
	return r;
}

static int visit_run(struct run *run, enum cap_algorithm alg)
{
	struct visit_group *g = run->g;
	int r, started = 0, first_err = 0;

	for (size_t i = 0; i < g->n_urls; i++)
		run->tabs[i] = (struct tab){.u = &g->urls[i], .index = i};
	run->n_tabs = g->n_urls;

	if (alg == CAP_ALG_BULK) {
		char name[32];
		for (size_t i = 0; i < g->n_urls; i++) {
			struct browser *b = &run->browsers[i];
			struct tab *t = &run->tabs[i];
			t->b = b;
			run->n_browsers = i + 1;
			snprintf(name, sizeof(name), "u%zu", i);
			if ((r = start_for(run, b, name, (int)i, t)) == -ECANCELED)
				return r;
			if (r < 0) {
				first_err = first_err ? first_err : r;
				continue;
			}
			started++;
			t->u->pid = b->proc.inner_pid;
			tab_start(run, t);
		}
		r = visit_active(run);
	} else if (alg == CAP_ALG_SEQ) {
		struct browser *b = &run->browsers[0];
		run->n_browsers = 1;
		b->dead = true;
		r = 0;
		for (size_t i = 0; i < g->n_urls && r == 0; i++) {
			struct tab *t = &run->tabs[i];
			t->b = b;
			if (b->dead) { /* first URL, or the last one took the browser down */
				*b = (struct browser){.proc.pidfd = -1,
						      .proc.status_fd = -1,
						      .xvfb.pidfd = -1,
						      .xvfb.status_fd = -1};
				if ((r = start_for(run, b, "chromium", -1, t)) == -ECANCELED)
					return r;
				if (r < 0) {
					first_err = first_err ? first_err : r;
					r = 0;
					continue;
				}
			}
			started++;
			tab_start(run, t);
			r = visit_active(run);
		}
	} else { /* dac */
		struct browser *b = &run->browsers[0];
		run->n_browsers = 1;
		for (size_t i = 0; i < g->n_urls; i++)
			run->tabs[i].b = b;
		if ((r = start_for(run, b, "chromium", -1, &run->tabs[0])) == -ECANCELED)
			return r;
		if (r < 0) {
			for (size_t i = 0; i < g->n_urls; i++)
				tab_error(&run->tabs[i], CAP_ERR_PROCESS_ERROR, 0);
			return r;
		}
		started = 1;
		for (size_t i = 0; i < g->n_urls; i++)
			tab_start(run, &run->tabs[i]);
		r = visit_active(run);
	}
	if (r < 0)
		return r;
	/* Nothing could be run at all: the group fails with the reason. */
	return started == 0 && first_err ? first_err : 0;
}

static int visit_group(const struct visitor_options *opts, const struct visitor_app *app,
		       struct visit_group *g)
{
	if (g->n_urls == 0)
		return 0;
	enum cap_algorithm alg = visitor_algorithm(app, g->algorithm);
	struct run run = {
	    .opts = opts,
	    .app = app,
	    .g = g,
	    .load_timeout_ms =
		(opts->load_timeout ? opts->load_timeout : DEFAULT_LOAD_TIMEOUT) * 1000u,
	};
	int r = find_home(g->sb, run.home, sizeof(run.home));
	if (r < 0)
		return r;
	size_t nb = alg == CAP_ALG_BULK ? g->n_urls : 1;
	run.browsers = calloc(nb, sizeof(*run.browsers));
	run.tabs = calloc(g->n_urls, sizeof(*run.tabs));
	run.pfds = calloc(nb * 2, sizeof(*run.pfds));
	if (!run.browsers || !run.tabs || !run.pfds) {
		r = -ENOMEM;
	} else {
		for (size_t i = 0; i < nb; i++) {
			struct browser *b = &run.browsers[i];
			b->proc.pidfd = b->proc.status_fd = b->xvfb.pidfd = b->xvfb.status_fd = -1;
		}
		r = visit_run(&run, alg);
	}
	for (size_t i = 0; run.browsers && i < run.n_browsers; i++)
		if (!run.browsers[i].dead || run.browsers[i].cgroup_made)
			stop_browser(&run, &run.browsers[i]);
	free(run.browsers);
	free(run.tabs);
	free(run.pfds);
	return r;
}

const struct visitor_plugin app_chromium_plugin = {
    .name = "chromium",
    .priority = 100,
    .algorithms = 1u << CAP_ALG_SEQ | 1u << CAP_ALG_DAC | 1u << CAP_ALG_BULK,
    .default_algorithm = CAP_ALG_DAC,
    .visit_group = visit_group,
};
