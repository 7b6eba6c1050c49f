/* test-sandbox-net.c - the sandbox network and its egress policy (root).
 *
 * The test builds its own world, all inside namespaces it creates: a test
 * gateway netns (sbt-gw, same code as capture-gw), a "public" host in
 * TEST-NET-2 (netns sbt-pub, 198.51.100.10, routed through the gateway) and a
 * "LAN" host at a private address (netns sbt-lan, 192.168.77.10).  Listeners
 * are the probe, started by pid and ended by pid.  From inside a sandbox:
 * the public host is reachable; the LAN host, the host's own addresses and
 * loopback services, the gateway, another sandbox and the server port are
 * not; the configured resolver is reachable on port 53 only.  Nothing leaves
 * the test namespaces (the gateway has no uplink). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"
#include "sbt-util.h"

#define HOST_PORT "47917"
#define SBT_GWN "sbt-gwn" /* a second test gateway, with NAT to a fake uplink */

static pid_t listeners[8];
static int n_listeners;
static pid_t peer_pid = -1; /* test_nat's listener on the fake uplink */
static int peer_fd = -1;

static void start_listener(const char *netns, const char *port)
{
	const char *probe = getenv("SBT_PROBE");
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		if (netns)
			execl("/usr/sbin/ip", "ip", "netns", "exec", netns, probe, "listen", port,
			      (char *)NULL);
		else
			execl(probe, probe, "listen", port, (char *)NULL);
		_exit(127);
	}
	if (pid > 0 && n_listeners < 8)
		listeners[n_listeners++] = pid;
}

static void teardown_world(void)
{
	for (int i = 0; i < n_listeners; i++) {
		kill(listeners[i], SIGKILL);
		waitpid(listeners[i], NULL, 0);
	}
	n_listeners = 0;
	if (peer_pid > 0) {
		kill(peer_pid, SIGKILL);
		waitpid(peer_pid, NULL, 0);
		close(peer_fd);
		peer_pid = peer_fd = -1;
	}
	(void)sbt_sh("ip netns del sbt-pub 2>/dev/null; ip netns del sbt-lan 2>/dev/null; true");
	sandbox_gateway_down(SBT_GW);
	sandbox_gateway_down(SBT_GWN);
	(void)sbt_sh("ip netns del sbt-host 2>/dev/null; ip netns del sbt-wan 2>/dev/null; true");
}

static int group_setup(void **state)
{
	teardown_world();
	sbt_cleanup_leftovers();
	struct sandbox_gateway_config cfg = {.netns = SBT_GW, .server_port = 7070};
	cfg.resolvers[0] = "192.168.77.10";
	if (sandbox_gateway_up(&cfg) < 0)
		return -1;
	if (sbt_sh("set -e; "
		   "ip netns add sbt-pub; ip netns add sbt-lan; "
		   "ip -n " SBT_GW " link add sbtpub0 type veth peer name eth0 netns sbt-pub; "
		   "ip -n " SBT_GW " addr add 198.51.100.1/24 dev sbtpub0; "
		   "ip -n " SBT_GW " link set sbtpub0 up; "
		   "ip -n sbt-pub link set lo up; ip -n sbt-pub addr add 198.51.100.10/24 dev eth0; "
		   "ip -n sbt-pub link set eth0 up; ip -n sbt-pub route add default via 198.51.100.1; "
		   "ip -n " SBT_GW " link add sbtlan0 type veth peer name eth0 netns sbt-lan; "
		   "ip -n " SBT_GW " addr add 192.168.77.1/24 dev sbtlan0; "
		   "ip -n " SBT_GW " link set sbtlan0 up; "
		   "ip -n sbt-lan link set lo up; ip -n sbt-lan addr add 192.168.77.10/24 dev eth0; "
		   "ip -n sbt-lan link set eth0 up; ip -n sbt-lan route add default via 192.168.77.1") != 0)
		return -1;
	start_listener("sbt-pub", "80");
	start_listener("sbt-pub", "7070");
	start_listener("sbt-lan", "80");
	start_listener("sbt-lan", "53");
	start_listener(NULL, HOST_PORT); /* the host: loopback and every address */
	/* wait until the public listener answers (from its own netns) */
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "for i in $(seq 50); do ip netns exec sbt-pub %s connect 198.51.100.10 80 100 && "
		 "ip netns exec sbt-lan %s connect 192.168.77.10 53 100 && exit 0; sleep 0.05; done; exit 1",
		 getenv("SBT_PROBE"), getenv("SBT_PROBE"));
	(void)state;
	return sbt_sh(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	teardown_world();
	sbt_cleanup_leftovers();
	(void)state;
	return 0;
}

static struct sandbox *build_net(bool network)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.network = network;
	plan.resolver = "192.168.77.10";
	struct sandbox *sb = sbt_build(&plan);
	assert_non_null(sb);
	return sb;
}

/* Exit code of `probe connect ADDR PORT 1500` inside sb: 0 connected, 1 refused, 2 timeout. */
static int try_connect(struct sandbox *sb, const char *addr, const char *port)
{
	const char *argv[] = {SBT_PROBE, "connect", addr, port, "1500", NULL};
	int st;
	assert_int_equal(sbt_run(sb, argv, NULL, NULL, 0, 10000, &st), 0);
	assert_true(WIFEXITED(st));
	fprintf(stderr, "connect %s:%s -> %d\n", addr, port, WEXITSTATUS(st));
	return WEXITSTATUS(st);
}

/* `probe udp ADDR PORT n 1500` inside sb: its summary line in out. */
static void try_udp(struct sandbox *sb, const char *addr, const char *port, const char *n,
		    char *out, size_t len)
{
	const char *argv[] = {SBT_PROBE, "udp", addr, port, n, "1500", NULL};
	int st;
	assert_int_equal(sbt_run(sb, argv, NULL, out, len, 60000, &st), 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fprintf(stderr, "udp %s:%s x%s -> %s", addr, port, n, out);
}

static void test_public_reachable(void **state)
{
	struct sandbox *sb = build_net(true);
	assert_non_null(sandbox_veth_host(sb));
	assert_non_null(sandbox_address(sb));
	assert_int_equal(try_connect(sb, "198.51.100.10", "80"), 0);
	/* the configured resolver, on port 53 only */
	assert_int_equal(try_connect(sb, "192.168.77.10", "53"), 0);
	/* UDP passes too: the peer's own port unreachable (nothing listens) */
	char out[128];
	try_udp(sb, "198.51.100.10", "9", "1", out, sizeof(out));
	assert_string_equal(out, "blocked 0 refused 1 timeout 0 answered 0 other 0\n");
	try_udp(sb, "192.168.77.10", "53", "1", out, sizeof(out));
	assert_string_equal(out, "blocked 0 refused 1 timeout 0 answered 0 other 0\n");
	sbt_free(sb);
	(void)state;
}

static void test_denied(void **state)
{
	struct sandbox *a = build_net(true), *b = build_net(true);
	/* every refusal is at once (1: refused, reset), never a timeout (2): a
	 * TCP reset from the gateway, which no ICMP rate limit delays */
	/* denied and without a route in the gateway (no NAT): the kernel's
	 * net-unreachable is only a soft error for TCP, and a connect waited
	 * for its SYN retries (7 s) before the gateway's reset; the same for
	 * an allowed address without a route */
	assert_int_equal(try_connect(a, "10.0.0.1", "80"), 1);
	assert_int_equal(try_connect(a, "192.0.2.1", "80"), 1);
	/* LAN, the server port (even on a public address), the gateway itself */
	assert_int_equal(try_connect(a, "192.168.77.10", "80"), 1);
	assert_int_equal(try_connect(a, "198.51.100.10", "7070"), 1);
	assert_int_equal(try_connect(a, sandbox_gateway_address(a), HOST_PORT), 1);
	assert_int_equal(try_connect(a, "198.51.100.1", HOST_PORT), 1);
	/* UDP is refused at once too (admin-prohibited: EHOSTUNREACH), every
	 * time: the kernel rate-limits ICMP errors (6 a second per sandbox, 50
	 * at once), so a burst of 20 to a routed LAN address had 7 sends
	 * without any answer, and the kernel's net-unreachable for an address
	 * without a route is a soft error UDP ignores (every send timed out) */
	char out[128];
	const char *udp_dst[] = {"192.168.77.10", "10.0.0.1", "192.0.2.1"};
	for (size_t k = 0; k < sizeof(udp_dst) / sizeof(udp_dst[0]); k++) {
		try_udp(a, udp_dst[k], "9", "20", out, sizeof(out));
		assert_string_equal(out, "blocked 20 refused 0 timeout 0 answered 0 other 0\n");
	}
	/* the host: loopback services and every address it has */
	assert_int_equal(try_connect(a, "127.0.0.1", HOST_PORT), 1);
	struct ifaddrs *ifa, *i;
	assert_int_equal(getifaddrs(&ifa), 0);
	int checked = 0;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		char buf[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof(buf));
		assert_int_equal(try_connect(a, buf, HOST_PORT), 1);
		checked++;
	}
	freeifaddrs(ifa);
	assert_true(checked > 0);
	/* another sandbox, with a listener */
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	const char *listen[] = {SBT_PROBE, "listen", "8080", NULL};
	ex.argv = listen;
	struct sandbox_process p;
	assert_int_equal(sandbox_spawn(b, &ex, &p), 0);
	usleep(100000);
	assert_int_equal(try_connect(a, sandbox_address(b), "8080"), 1);
	assert_int_equal(try_connect(b, "127.0.0.1", "8080"), 0); /* it is listening */
	sandbox_process_done(&p);
	sbt_free(a);
	sbt_free(b);
	(void)state;
}

static void test_no_network(void **state)
{
	struct sandbox *sb = build_net(false);
	assert_null(sandbox_veth_host(sb));
	assert_int_equal(try_connect(sb, "198.51.100.10", "80"), 1);
	struct sandbox_capture *c;
	assert_int_equal(sandbox_capture_start(sb, "/run/capture/sbt-x.pcap", &c), -ENODEV);
	sbt_free(sb);
	(void)state;
}

static void test_pcap(void **state)
{
	struct sandbox *sb = build_net(true);
	const char *path = "/run/capture/sbt-capture.pcap";
	unlink(path);
	struct sandbox_capture *c = NULL;
	assert_int_equal(sandbox_capture_start(sb, path, &c), 0);
	assert_int_equal(try_connect(sb, "198.51.100.10", "80"), 0);
	assert_int_equal(try_connect(sb, "198.51.100.10", "80"), 0);
	uint64_t packets = 0, drops = 99;
	usleep(100000);
	assert_int_equal(sandbox_capture_stop(c, &packets, &drops), 0);
	fprintf(stderr, "pcap: %llu packets, %llu dropped\n", (unsigned long long)packets,
		(unsigned long long)drops);
	assert_true(packets >= 6);
	assert_int_equal(drops, 0);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	uint32_t magic = 0;
	assert_int_equal(fread(&magic, sizeof(magic), 1, f), 1);
	fseek(f, 0, SEEK_END);
	assert_true(ftell(f) > 24 + 6 * 16);
	fclose(f);
	assert_int_equal(magic, 0xa1b2c3d4);
	unlink(path);
	sbt_free(sb);
	(void)state;
}

/* ---- NAT to the uplink, against a fake uplink (nothing leaves the machine) ----
 * sbt-host plays the host: its default route goes out of eth0 (203.0.113.2)
 * to sbt-wan (203.0.113.1, "the internet"), which also answers for a private
 * address (192.168.88.1) routed through the same uplink.  Gateway sbt-gwn is
 * created with nat = true and uplink_netns = sbt-host. */


static void start_peer_listener(void)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	peer_pid = fork();
	assert_true(peer_pid >= 0);
	if (peer_pid == 0) {
		dup2(p[1], 1);
		execl("/usr/sbin/ip", "ip", "netns", "exec", "sbt-wan", getenv("SBT_PROBE"),
		      "accept-peer", "80", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	peer_fd = p[0];
	char buf[64] = "";
	assert_true(read(peer_fd, buf, 10) == 10); /* "listening\n" */
	assert_int_equal(strncmp(buf, "listening\n", 10), 0);
}

/* Whatever the listener printed so far (waits up to ms for the first bytes). */
static void peer_output(char *buf, size_t len, int ms)
{
	size_t n = 0;
	struct pollfd pf = {.fd = peer_fd, .events = POLLIN};
	while (n + 1 < len && poll(&pf, 1, n ? 50 : ms) > 0) {
		ssize_t k = read(peer_fd, buf + n, len - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
}

static int nat_world_up(void)
{
	return sbt_sh("set -e; ip netns add sbt-host; ip netns add sbt-wan; "
		      "ip -n sbt-host link add eth0 type veth peer name eth0 netns sbt-wan; "
		      "ip -n sbt-host link set lo up; ip -n sbt-wan link set lo up; "
		      "ip -n sbt-host addr add 203.0.113.2/24 dev eth0; ip -n sbt-host link set eth0 up; "
		      "ip -n sbt-wan addr add 203.0.113.1/24 dev eth0; ip -n sbt-wan link set eth0 up; "
		      "ip -n sbt-wan addr add 192.168.88.1/32 dev lo; "
		      "ip -n sbt-host route add default via 203.0.113.1; "
		      "ip -n sbt-host route add 192.168.88.0/24 via 203.0.113.1; "
		      "test \"$(ip netns exec sbt-host cat /proc/sys/net/ipv4/ip_forward)\" = 0");
}

static struct sandbox *build_nat(bool nat)
{
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.network = true;
	plan.gateway.netns = nat ? SBT_GWN : SBT_GW;
	plan.gateway.nat = nat;
	plan.gateway.uplink_netns = nat ? "sbt-host" : NULL;
	struct sandbox *sb = sbt_build(&plan);
	assert_non_null(sb);
	return sb;
}

static void test_nat(void **state)
{
	assert_int_equal(nat_world_up(), 0);
	start_peer_listener();
	start_listener("sbt-host", "8081"); /* a service of the (fake) host itself */
	char out[1024];

	/* without NAT (gateway sbt-gw) the uplink is not reachable at all */
	struct sandbox *plain = build_nat(false);
	assert_int_equal(try_connect(plain, "203.0.113.1", "80"), 1); /* no route: a reset */
	sbt_free(plain);

	struct sandbox *sb = build_nat(true);
	assert_int_equal(try_connect(sb, "203.0.113.1", "80"), 0);
	peer_output(out, sizeof(out), 3000);
	fprintf(stderr, "fake uplink peer saw: %s", out);
	/* masqueraded: the peer sees the fake host's uplink address only */
	assert_string_equal(out, "peer 203.0.113.2\n");
	/* denied destinations stay denied, even when the uplink routes them */
	assert_int_equal(try_connect(sb, "192.168.88.1", "80"), 1);
	/* the host itself, at its uplink address, is not reachable through NAT:
	 * refused at once by the host's table (its drop made connects time out) */
	assert_int_equal(try_connect(sb, "203.0.113.2", "8081"), 1);
	try_udp(sb, "203.0.113.2", "9", "1", out, sizeof(out));
	assert_string_equal(out, "blocked 1 refused 0 timeout 0 answered 0 other 0\n");
	peer_output(out, sizeof(out), 500);
	assert_string_equal(out, ""); /* nothing else arrived at the peer */
	/* forwarding was switched on for the two devices only */
	assert_int_equal(sbt_sh("ip netns exec sbt-host sh -c 'test $(cat "
				"/proc/sys/net/ipv4/ip_forward) = 0 && test $(cat "
				"/proc/sys/net/ipv4/conf/eth0/forwarding) = 1 && test $(cat "
				"/proc/sys/net/ipv4/conf/lo/forwarding) = 0'"),
			 0);
	sbt_free(sb);

	/* down: the fake host is back as it was */
	assert_int_equal(sandbox_gateway_down(SBT_GWN), 0);
	assert_int_equal(sbt_sh("ip netns exec sbt-host sh -c '! nft list tables | grep -q capture "
				"&& ! ip -o link show | grep -q capup && test $(cat "
				"/proc/sys/net/ipv4/conf/eth0/forwarding) = 0' && "
				"test ! -e /run/capture/gateway-" SBT_GWN ".nat"),
			 0);
	kill(peer_pid, SIGKILL);
	waitpid(peer_pid, NULL, 0);
	close(peer_fd);
	peer_pid = peer_fd = -1;
	(void)sbt_sh("ip netns del sbt-host; ip netns del sbt-wan");
	(void)state;
}

/* A plan with NAT but no default route in the uplink netns fails cleanly. */
static void test_nat_no_route(void **state)
{
	assert_int_equal(sbt_sh("ip netns add sbt-host"), 0);
	struct sandbox_plan plan;
	sbt_plan(&plan);
	plan.network = true;
	plan.gateway.netns = SBT_GWN;
	plan.gateway.nat = true;
	plan.gateway.uplink_netns = "sbt-host";
	struct sandbox *sb = NULL;
	struct sandbox_error e = {0};
	assert_int_equal(sandbox_new(&plan, &sb, &e), -ENETUNREACH);
	assert_string_equal(e.step, "gateway");
	assert_null(sb);
	assert_int_equal(access("/run/netns/" SBT_GWN, F_OK), -1);
	assert_int_equal(access("/run/capture/gateway-" SBT_GWN ".nat", F_OK), -1);
	(void)sbt_sh("ip netns del sbt-host");
	(void)state;
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test-sandbox-net needs root\n");
		return 77;
	}
	sbt_lock();
	const struct CMUnitTest tests[] = {
		sbt_unit_test(test_public_reachable),
		sbt_unit_test(test_denied),
		sbt_unit_test(test_no_network),
		sbt_unit_test(test_pcap),
		sbt_unit_test(test_nat),
		sbt_unit_test(test_nat_no_route),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
