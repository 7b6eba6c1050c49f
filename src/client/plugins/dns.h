/* dns.h - the messages of the client's stub resolver for host-side
 * downloads (download.c asks the sandbox's own resolver over UDP from a
 * socket in the sandbox's network namespace, so the egress policy applies as
 * to the sandbox; never through the host's resolv.conf).  An answer is
 * untrusted input: parsed with every length and compression pointer
 * bounded. */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 253
#define DNS_MSG_MAX  1232 /* EDNS-less UDP answers are at most 512; be lenient */

/* Writes the query for name's A record (RD set) into buf: its length, or
 * -EINVAL for a name that is not a host name (labels of letters, digits,
 * '-' and '_', 1-63 bytes, at most 253 in all; one trailing dot allowed),
 * -ENOBUFS when buf is too small. */
int dns_build_query(const char *name, uint16_t id, uint8_t *buf, size_t len);

/* Parses the answer msg to the query (id, name): the first A record of name
 * or of the CNAME chain from it.  0 with *ret set; -ENOENT NXDOMAIN or no
 * such record; -EAGAIN server failure, refusal or a truncated answer
 * without the record; -EBADMSG malformed, not an answer, or not to this
 * query (id or question differ). */
int dns_parse_a(const uint8_t *msg, size_t len, uint16_t id, const char *name,
		struct in_addr *ret);
