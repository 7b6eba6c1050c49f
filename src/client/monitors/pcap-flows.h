/* pcap-flows.h - the flows of a visit's pcap file, for the network monitor's
 * end-of-visit pass (connections that polling sock_diag missed).
 *
 * Our own reader of the classic pcap format (both byte orders, micro- and
 * nanosecond magic; link types EN10MB with 802.1Q tags, RAW, LINUX_SLL,
 * LINUX_SLL2), so that it works on a memory buffer, can be fuzzed, and is
 * strict about bounds: the file comes from a capture of traffic the sandbox
 * generated, i.e. untrusted.  A flow is one 5-tuple (protocol, source,
 * destination) oriented by its first packet: for TCP only a SYN without ACK
 * opens a flow (source = initiator); for UDP every datagram counts.  IPv4 and
 * IPv6 (extension headers skipped; non-first fragments ignored).  A
 * truncated last record ends the parse without error; a bad header is
 * -EBADMSG; at most max_flows flows are kept (the rest are counted).
 */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct pcap_flow {
	uint8_t proto;	       /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t family;	       /* AF_INET or AF_INET6 */
	uint8_t src[16], dst[16]; /* IPv4 in the first 4 bytes */
	uint16_t sport, dport; /* host byte order */
	uint64_t packets;      /* SYNs (TCP) or datagrams (UDP), either direction */
	uint64_t first_ns;     /* timestamp of the first packet */
};

struct pcap_flows {
	struct pcap_flow *flows;
	size_t n;
	uint64_t records;   /* pcap records read */
	uint64_t skipped;   /* records not IP, not TCP/UDP or malformed */
	uint64_t overflow;  /* flows dropped because max_flows was reached */
	int truncated;	    /* 1 if the file ended inside a record */
};

#define PCAP_FLOWS_DEFAULT_MAX 65536

/* Parses a pcap image in memory.  ret->flows is allocated (free with
 * pcap_flows_done).  0, -EBADMSG (not a pcap file / unsupported link type)
 * or -ENOMEM. */
int pcap_flows_parse(const uint8_t *buf, size_t len, size_t max_flows, struct pcap_flows *ret);

/* Reads the file at path (at most 1 GiB) and parses it as above. */
int pcap_flows_read(const char *path, size_t max_flows, struct pcap_flows *ret);

/* Frees what a successful parse allocated; safe on a zeroed struct. */
void pcap_flows_done(struct pcap_flows *f);

/* Formats addr:port (IPv6 as [addr]:port) into buf. */
int pcap_flow_endpoint(uint8_t family, const uint8_t *addr, uint16_t port, char *buf, size_t len);
