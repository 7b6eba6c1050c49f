/* test-mon-network.c - the network monitor on a real sandbox with network:
 * a TCP listener, a UDP listener and a TCP connection over the sandbox's own
 * loopback give the expected events (with their closings) attributed to the
 * right process; connections too short for polling are found in the visit's
 * pcap (process "" / pid -1) and a connection seen by both is reported once.
 * Traffic stays inside the sandbox and its test gateway netns. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mon-network.h"
#include "mon-process.h"
#include "mpt-util.h"

static struct mpt_ctx ctx;

static int setup(void **state)
{
	return mpt_setup_or_clean(&ctx, true);
}

static int teardown(void **state)
{
	mpt_teardown(&ctx);
	return 0;
}

static void start_both(void)
{
	ctx.n = 0;
	assert_int_equal(mon_process_ops.start(ctx.mp), 0);
	assert_int_equal(mon_network_ops.start(ctx.mn), 0);
}

static void stop_both(void)
{
	assert_int_equal(mon_network_ops.stop(ctx.mn), 0);
	assert_int_equal(mon_process_ops.stop(ctx.mp), 0);
	mpt_dump(&ctx);
}

/* Network events only. */
static size_t net_events(void)
{
	size_t n = 0;
	for (size_t i = 0; i < ctx.n; i++)
		if (strcmp(ctx.ev[i].action, "created") != 0 && strcmp(ctx.ev[i].action, "terminated") != 0)
			n++;
	return n;
}

static void expect(const char *action, const char *o1, const char *o2, long pid, const char *proc)
{
	assert_int_equal(mpt_count(&ctx, action, o1, o2), 1);
	for (size_t i = 0; i < ctx.n; i++)
		if (strcmp(ctx.ev[i].action, action) == 0 && strcmp(ctx.ev[i].obj1, o1) == 0) {
			assert_int_equal(ctx.ev[i].pid, pid);
			assert_string_equal(ctx.ev[i].process, proc);
		}
}

/* The sleep first: 700 ms of an idle netns, where polls skip the TCP dump,
 * must not hide the listener that follows. */
/* Runs script in the testapp and expects exactly the opening and closing
 * of listeners a ("tcp"/"udp") at obj_a and b at obj_b, by the testapp. */
static void two_listeners(const char *script, const char *a, const char *obj_a, const char *b,
			  const char *obj_b)
{
	assert_int_equal(mon_network_set_interval(ctx.mn, 50), 0);
	start_both();
	const char *argv[] = { MPT_TESTAPP, "run", script, NULL };
	char out[1024], act[64];
	assert_int_equal(mpt_run(&ctx, argv, NULL, out, sizeof(out), 300), 0);
	stop_both();
	long t = strtol(out, NULL, 10);
	const char *proto[2] = { a, b }, *obj[2] = { obj_a, obj_b };
	for (int i = 0; i < 2; i++) {
		snprintf(act, sizeof(act), "%s-listening", proto[i]);
		expect(act, obj[i], "-1", t, MPT_TESTAPP);
		snprintf(act, sizeof(act), "%s-listening-closed", proto[i]);
		expect(act, obj[i], "-1", t, MPT_TESTAPP);
	}
	assert_int_equal(net_events(), 4);
	assert_int_equal(ctx.errors, 0);
}

static void test_listeners(void **state)
{
	two_listeners("sleep 700; listen tcp 4444 1; listen udp 5353 1", "tcp", "0.0.0.0:4444",
		      "udp", "0.0.0.0:5353");
}

/* A listener closed and another opened at once, without traffic: the
 * netns's TCP counters do not change, so only the listeners-only dump of
 * the polls that skip the full TCP dump sees it (the full dump comes only
 * every 100 polls, 5 s here, after the second listener has gone). */
static void test_listener_swap(void **state)
{
	two_listeners("sleep 300; listen tcp 4444 1; listen tcp 4446 1", "tcp", "0.0.0.0:4444",
		      "tcp", "0.0.0.0:4446");
}

static void loopback_connection(const char *mode, const char *server)
{
	start_both();
	const char *argv[] = { MPT_PROBE, mode, "4445", "400", NULL };
	char out[256];
	assert_int_equal(mpt_run(&ctx, argv, NULL, out, sizeof(out), 300), 0);
	stop_both();
	long p = strtol(out + 4, NULL, 10);
	const char *client = strstr(out, "client=");
	assert_non_null(client);
	char cl[64];
	snprintf(cl, sizeof(cl), "%.*s", (int)strcspn(client + 7, "\n"), client + 7);
	expect("tcp-listening", server, "-1", p, MPT_PROBE);
	expect("tcp-listening-closed", server, "-1", p, MPT_PROBE);
	expect("tcp-connection", server, cl, p, MPT_PROBE);	 /* client side */
	expect("tcp-connection-closed", server, cl, p, MPT_PROBE);
	expect("tcp-connection", cl, server, p, MPT_PROBE);	 /* accepted side */
	expect("tcp-connection-closed", cl, server, p, MPT_PROBE);
	assert_int_equal(net_events(), 6);
	struct monitor_stats s;
	mon_network_ops.stats(ctx.mn, &s);
	assert_int_equal(s.delivered, 6);
	assert_int_equal(s.lost, 0);
}

static void test_loopback_connection(void **state)
{
	loopback_connection("tcp-hold", "127.0.0.1:4445");
}

static void test_loopback_connection_v6(void **state)
{
	loopback_connection("tcp6-hold", "[::1]:4445");
}

static void test_pcap(void **state)
{
	const char *gw = sandbox_gateway_address(ctx.sb), *me = sandbox_address(ctx.sb);
	assert_non_null(gw);
	char pcap[] = "/tmp/monproc-pcap-XXXXXX";
	int fd = mkstemp(pcap);
	assert_true(fd >= 0);
	close(fd);
	unlink(pcap);
	struct sandbox_capture *cap;
	assert_int_equal(sandbox_capture_start(ctx.sb, pcap, &cap), 0);
	/* polling every 10 s: the short connections are seen only in the pcap */
	assert_int_equal(mon_network_set_interval(ctx.mn, 10000), 0);
	assert_int_equal(mon_network_set_pcap(ctx.mn, pcap), 0);
	start_both();
	char script[256];
	snprintf(script, sizeof(script), "connect udp %s 5300; connect tcp %s 9", gw, gw);
	const char *argv[] = { MPT_TESTAPP, "run", script, NULL };
	char out[1024];
	(void)mpt_run(&ctx, argv, NULL, out, sizeof(out), 300); /* the TCP connect fails */
	fprintf(stderr, "# testapp: %s", out);
	uint64_t packets = 0, drops = 0;
	assert_int_equal(sandbox_capture_stop(cap, &packets, &drops), 0);
	stop_both();
	fprintf(stderr, "# pcap: %llu packets, %llu drops\n", (unsigned long long)packets,
		(unsigned long long)drops);
	char udp[64], tcp[64];
	snprintf(udp, sizeof(udp), "%s:5300", gw);
	snprintf(tcp, sizeof(tcp), "%s:9", gw);
	expect("udp-connection", udp, NULL, -1, "");
	expect("tcp-connection", tcp, NULL, -1, "");
	const struct mpt_ev *e = mpt_find(&ctx, "tcp-connection", tcp);
	assert_true(strncmp(e->obj2, me, strlen(me)) == 0 && e->obj2[strlen(me)] == ':');
	assert_int_equal(net_events(), 2);
	unlink(pcap);

	/* a flow seen by polling and in the pcap is reported once, by polling
	 * (with its process): a connected UDP socket held for 400 ms */
	assert_int_equal(sandbox_capture_start(ctx.sb, pcap, &cap), 0);
	assert_int_equal(mon_network_set_interval(ctx.mn, 50), 0);
	start_both();
	const char *pargv[] = { MPT_PROBE, "udp-hold", gw, "5301", "400", NULL };
	assert_int_equal(mpt_run(&ctx, pargv, NULL, out, sizeof(out), 300), 0);
	assert_int_equal(sandbox_capture_stop(cap, NULL, NULL), 0);
	stop_both();
	unlink(pcap);
	long p = strtol(out + 4, NULL, 10);
	const char *client = strstr(out, "client=");
	assert_non_null(client);
	char cl[64];
	snprintf(cl, sizeof(cl), "%.*s", (int)strcspn(client + 7, "\n"), client + 7);
	snprintf(udp, sizeof(udp), "%s:5301", gw);
	expect("udp-connection", udp, cl, p, MPT_PROBE);
	expect("udp-connection-closed", udp, cl, p, MPT_PROBE);
	assert_int_equal(net_events(), 2);
	struct monitor_stats s;
	mon_network_ops.stats(ctx.mn, &s);
	assert_int_equal(s.suppressed, 1); /* the pcap's copy of the flow */

	/* an unconnected UDP socket: polling sees udp-listening, the pcap gives
	 * the destination, attributed through the local port */
	assert_int_equal(sandbox_capture_start(ctx.sb, pcap, &cap), 0);
	start_both();
	const char *sargv[] = { MPT_PROBE, "udp-sendto", gw, "5302", "400", NULL };
	assert_int_equal(mpt_run(&ctx, sargv, NULL, out, sizeof(out), 300), 0);
	assert_int_equal(sandbox_capture_stop(cap, NULL, NULL), 0);
	stop_both();
	unlink(pcap);
	p = strtol(out + 4, NULL, 10);
	client = strstr(out, "client=");
	assert_non_null(client);
	const char *port = strrchr(client, ':');
	assert_non_null(port);
	char any[64], mine[64];
	snprintf(any, sizeof(any), "0.0.0.0:%ld", strtol(port + 1, NULL, 10));
	snprintf(mine, sizeof(mine), "%s:%ld", me, strtol(port + 1, NULL, 10));
	snprintf(udp, sizeof(udp), "%s:5302", gw);
	expect("udp-listening", any, "-1", p, MPT_PROBE);
	expect("udp-listening-closed", any, "-1", p, MPT_PROBE);
	expect("udp-connection", udp, mine, p, MPT_PROBE);
	assert_int_equal(net_events(), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listeners),
		cmocka_unit_test(test_listener_swap),
		cmocka_unit_test(test_loopback_connection),
		cmocka_unit_test(test_loopback_connection_v6),
		cmocka_unit_test(test_pcap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
