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

static pid_t listeners[8];
static int n_listeners;

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
	(void)sbt_sh("ip netns del sbt-pub 2>/dev/null; ip netns del sbt-lan 2>/dev/null; true");
	sandbox_gateway_down(SBT_GW);
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

static void test_public_reachable(void **state)
{
	struct sandbox *sb = build_net(true);
	assert_non_null(sandbox_veth_host(sb));
	assert_non_null(sandbox_address(sb));
	assert_int_equal(try_connect(sb, "198.51.100.10", "80"), 0);
	/* the configured resolver, on port 53 only */
	assert_int_equal(try_connect(sb, "192.168.77.10", "53"), 0);
	sandbox_free(sb);
	(void)state;
}

static void test_denied(void **state)
{
	struct sandbox *a = build_net(true), *b = build_net(true);
	/* LAN, the server port (even on a public address), the gateway itself */
	assert_int_not_equal(try_connect(a, "192.168.77.10", "80"), 0);
	assert_int_not_equal(try_connect(a, "198.51.100.10", "7070"), 0);
	assert_int_not_equal(try_connect(a, sandbox_gateway_address(a), HOST_PORT), 0);
	assert_int_not_equal(try_connect(a, "198.51.100.1", HOST_PORT), 0);
	/* the host: loopback services and every address it has */
	assert_int_not_equal(try_connect(a, "127.0.0.1", HOST_PORT), 0);
	struct ifaddrs *ifa, *i;
	assert_int_equal(getifaddrs(&ifa), 0);
	int checked = 0;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		char buf[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof(buf));
		assert_int_not_equal(try_connect(a, buf, HOST_PORT), 0);
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
	assert_int_not_equal(try_connect(a, sandbox_address(b), "8080"), 0);
	assert_int_equal(try_connect(b, "127.0.0.1", "8080"), 0); /* it is listening */
	sandbox_process_done(&p);
	sandbox_free(a);
	sandbox_free(b);
	(void)state;
}

static void test_no_network(void **state)
{
	struct sandbox *sb = build_net(false);
	assert_null(sandbox_veth_host(sb));
	assert_int_equal(try_connect(sb, "198.51.100.10", "80"), 1);
	struct sandbox_capture *c;
	assert_int_equal(sandbox_capture_start(sb, "/run/capture/sbt-x.pcap", &c), -ENODEV);
	sandbox_free(sb);
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
	sandbox_free(sb);
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
		cmocka_unit_test(test_public_reachable),
		cmocka_unit_test(test_denied),
		cmocka_unit_test(test_no_network),
		cmocka_unit_test(test_pcap),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
