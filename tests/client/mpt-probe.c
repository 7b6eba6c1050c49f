/* mpt-probe - run inside the sandbox by the network monitor tests:
 *   mpt-probe tcp-hold PORT MS   listen on 127.0.0.1:PORT, connect to it,
 *                                accept, hold both ends MS ms, close all.
 *   mpt-probe tcp6-hold PORT MS  the same on [::1]:PORT.
 *   mpt-probe udp-hold IP PORT MS connect a UDP socket to IP:PORT, send one
 *                                datagram, hold the socket MS ms, close.
 *   mpt-probe udp-sendto IP PORT MS  the same with an unconnected socket
 *                                (bound to any port, sendto).
 *   mpt-probe udp-many N MS      bind N UDP sockets on 127.0.0.1, hold MS ms
 *                                (benchmarks: a busy socket table).
 * Prints "pid=P client=ADDR:E" so that the test knows the endpoints. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what)
{
	perror(what);
	return 1;
}

/* connected: connect + send; else bind to any port + sendto. */
static int udp_hold(bool connected, const char *ip, long port, long ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return 2;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail("socket");
	if (connected) {
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || send(s, "mpt-probe\n", 10, 0) < 0)
			return fail("connect");
	} else {
		struct sockaddr_in any = { .sin_family = AF_INET };
		if (bind(s, (struct sockaddr *)&any, sizeof(any)) < 0 ||
		    sendto(s, "mpt-probe\n", 10, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return fail("sendto");
	}
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	if (getsockname(s, (struct sockaddr *)&me, &len) < 0)
		return fail("getsockname");
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &me.sin_addr, a, sizeof(a));
	printf("pid=%d client=%s:%u\n", (int)getpid(), a, ntohs(me.sin_port));
	fflush(stdout);
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	close(s);
	return 0;
}

static int udp_many(long n, long ms)
{
	for (long i = 0; i < n; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return fail("bind");
	}
	printf("pid=%d sockets=%ld\n", (int)getpid(), n);
	fflush(stdout);
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	return 0;
}

/* Listener on loopback, a connection to it, both ends held ms ms. */
static int tcp_hold(bool v6, uint16_t port, long ms)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t salen;
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = in6addr_loopback;
		salen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		salen = sizeof(*s4);
	}
	int one = 1, fam = v6 ? AF_INET6 : AF_INET;
	int l = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return fail("socket");
	if (bind(l, (struct sockaddr *)&ss, salen) < 0 || listen(l, 4) < 0)
		return fail("listen");
	int c = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&ss, salen) < 0)
		return fail("connect");
	int a = accept(l, NULL, NULL);
	if (a < 0)
		return fail("accept");
	struct sockaddr_storage me;
	socklen_t len = sizeof(me);
	if (getsockname(c, (struct sockaddr *)&me, &len) < 0)
		return fail("getsockname");
	if (v6)
		printf("pid=%d client=[::1]:%u\n", (int)getpid(),
		       ntohs(((struct sockaddr_in6 *)&me)->sin6_port));
	else
		printf("pid=%d client=127.0.0.1:%u\n", (int)getpid(),
		       ntohs(((struct sockaddr_in *)&me)->sin_port));
	fflush(stdout);
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	close(c); /* the client closes first: its side ends in TIME_WAIT */
	close(a);
	close(l);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "udp-many") == 0) {
		long n = strtol(argv[2], NULL, 10), ms = strtol(argv[3], NULL, 10);
		if (n < 0 || n > 4000 || ms < 0 || ms > 60000)
			return 2;
		return udp_many(n, ms);
	}
	if (argc == 5 && (strcmp(argv[1], "udp-hold") == 0 || strcmp(argv[1], "udp-sendto") == 0)) {
		long port = strtol(argv[3], NULL, 10), ms = strtol(argv[4], NULL, 10);
		if (port <= 0 || port > 65535 || ms < 0 || ms > 60000)
			return 2;
		return udp_hold(strcmp(argv[1], "udp-hold") == 0, argv[2], port, ms);
	}
	bool v6 = argc == 4 && strcmp(argv[1], "tcp6-hold") == 0;
	if (argc != 4 || (!v6 && strcmp(argv[1], "tcp-hold") != 0)) {
		fprintf(stderr, "usage: mpt-probe tcp-hold|tcp6-hold PORT MS | udp-hold|udp-sendto IP PORT MS | "
				"udp-many N MS\n");
		return 2;
	}
	long port = strtol(argv[2], NULL, 10), ms = strtol(argv[3], NULL, 10);
	if (port <= 0 || port > 65535 || ms < 0 || ms > 60000)
		return 2;
	return tcp_hold(v6, (uint16_t)port, ms);
}
