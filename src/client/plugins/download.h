/* download.h - host-side HTTP download through a sandbox's network namespace
 * (download-first applications and the "fetch" plugin, docs/visitor.md).
 *
 * The client fetches a document for LibreOffice or the PDF viewer itself,
 * but never with the host's own network or tools: the socket is created by a
 * short-lived thread that setns(CLONE_NEWNET)s into the sandbox's netns, so
 * the request leaves through the sandbox's veth and the gateway's egress
 * policy, exactly like the application's own traffic would (and it shows up
 * in the sandbox's pcap).  Names are resolved only from the "address name"
 * pairs the sandbox has in its /etc/hosts (visitor_options.hosts) or taken as
 * numeric addresses; there is no DNS yet (an unknown name is -ENOENT).
 * HTTP/1.1, plain or https (OpenSSL, SNI, the certificate is NOT verified:
 * the honeypot wants the document whoever serves it, and a sandbox has no
 * trustworthy path to check revocation anyway).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sandbox;

#define DOWNLOAD_DEFAULT_MAX_BYTES (64ULL << 20)
#define DOWNLOAD_DEFAULT_TIMEOUT   30 /* seconds for the whole download, redirects included */
#define DOWNLOAD_MAX_REDIRECTS	   5
#define DOWNLOAD_URL_MAX	   4096

struct download_options {
	int netns_fd;		  /* the sandbox's netns (sandbox_netns_fd) */
	const char *const *hosts; /* "address name" pairs, NULL ends; may be NULL */
	const char *resolver;	  /* IPv4 DNS resolver for other names (dns.h); NULL = none */
	uint64_t max_bytes;	  /* 0 = DOWNLOAD_DEFAULT_MAX_BYTES; more is -EFBIG */
	unsigned timeout;	  /* seconds; 0 = DOWNLOAD_DEFAULT_TIMEOUT */
	atomic_bool *abort;	  /* polled every 200 ms; -ECANCELED; may be NULL */
	int out_fd;		  /* the body is written here; -1 = discarded */
};

struct download_result {
	int status;			  /* HTTP status of the last answer (after redirects) */
	unsigned redirects;		  /* redirects followed */
	uint64_t bytes;			  /* body bytes of the last answer */
	char content_type[128];		  /* media type of the last answer, lower case, no params */
	char final_url[DOWNLOAD_URL_MAX]; /* URL of the last answer */
};

/* GETs url (following up to 5 redirects) and writes the body to o->out_fd.
 * Returns 0 when an answer was received, whatever its status (see
 * ret->status; a body is only written for the final answer), or -errno:
 * -EINVAL bad URL, -EPROTONOSUPPORT not http(s), -ENOENT unknown host name
 * (not in hosts, NXDOMAIN or no A record), -EAGAIN the resolver failed,
 * -EPROTO TLS handshake failed,
 * -ECONNREFUSED / -ENETUNREACH / -EHOSTUNREACH / ... from connect,
 * -ETIMEDOUT, -EFBIG body too large, -EBADMSG malformed answer, -ELOOP too
 * many redirects, -ECANCELED aborted. */
int download_url(const struct download_options *o, const char *url, struct download_result *ret);

/* The safe file name for a download: the URL's last path segment through
 * cap_url_to_filename (at most 100 bytes), "download" if it is empty or
 * starts with a dot, with an extension from the URL path or else from the
 * Content-Type (fallback `fallback_ext`, e.g. "pdf").  *ret is malloc'ed. */
int download_file_name(const char *url, const char *content_type, const char *fallback_ext,
		       char **ret);

/* Downloads url and copies the body into the sandbox as `dir_inside`/NAME
 * (NAME = prefix (may be NULL) + download_file_name; dir_inside must exist,
 * e.g. the user's home), owned by the user.  ret_inside (PATH_MAX) gets the path inside.
 * An HTTP status >= 400 is -EREMOTEIO with ret->status set.  Same other
 * errors as download_url, plus those of sandbox_copy_in. */
int download_into_sandbox(struct sandbox *sb, const struct download_options *o, const char *url,
			  const char *dir_inside, const char *prefix, const char *fallback_ext,
			  struct download_result *ret, char *ret_inside, size_t inside_len);

/* A socket (SOCK_CLOEXEC added) created in the network namespace netns_fd
 * by a short-lived thread; the calling thread's namespaces are untouched. */
int netns_socket(int netns_fd, int family, int type);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t download_now_ms(void);
/* Waits until fd has one of events, in 200 ms slices that poll *abort (may
 * be NULL), until deadline_ms (download_now_ms clock): 0, -ETIMEDOUT,
 * -ECANCELED or -errno. */
int download_poll(int fd, short events, int64_t deadline_ms, atomic_bool *abort);
