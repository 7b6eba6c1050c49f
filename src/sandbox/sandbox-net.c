/* sandbox-net.c - veth to the shared gateway netns, egress policy, pcap.
 *
 * Topology: one gateway netns per host (default "capture-gw", a named netns
 * in /run/netns) created on demand under a lock file; sandbox i (0..16383)
 * gets the veth pair csb<i> (gateway side, 10.201.0.0/16 split into /30s:
 * gateway 10.201.x.(4k+1), sandbox 10.201.x.(4k+2)) <-> eth0 (inside, default
 * route via the gateway side).  The index is allocated by the kernel: a
 * RTM_NEWLINK with NLM_F_EXCL on csb<i> fails with EEXIST when another
 * sandbox (of any process) holds it.  Per sandbox everything is rtnetlink
 * from C (the `ip` CLI costs ~5 ms a call): the host creates the pair with
 * its socket opened inside the gateway netns, and pid 1 configures eth0 and
 * lo from inside.  The egress policy is one nftables table loaded with
 * `nft -f` when the gateway is created, never per sandbox (docs/sandbox.md).
 * The per-visit pcap runs in a helper process that joins the gateway netns
 * (packet sockets bind to the netns they are created in).
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event.h"
#include "macro.h"
#include "sandbox-internal.h"

#define NL_BUF 1024

struct nlreq {
	struct nlmsghdr h;
	char buf[NL_BUF];
};

static int nl_attr(struct nlreq *m, unsigned short type, const void *data, size_t len)
{
	size_t off = NLMSG_ALIGN(m->h.nlmsg_len);
	size_t total = RTA_LENGTH(len);
	if (off + RTA_ALIGN(total) > sizeof(*m))
		return -EMSGSIZE;
	struct rtattr *a = (struct rtattr *)((char *)m + off);
	a->rta_type = type;
	a->rta_len = (unsigned short)total;
	if (len)
		memcpy(RTA_DATA(a), data, len);
	m->h.nlmsg_len = (uint32_t)(off + RTA_ALIGN(total));
	return 0;
}

static struct rtattr *nl_nest(struct nlreq *m, unsigned short type)
{
	struct rtattr *a = (struct rtattr *)((char *)m + NLMSG_ALIGN(m->h.nlmsg_len));
	return nl_attr(m, type, NULL, 0) < 0 ? NULL : a;
}

static void nl_nest_end(struct nlreq *m, struct rtattr *a)
{
	a->rta_len = (unsigned short)((char *)m + m->h.nlmsg_len - (char *)a);
}

/* Appends a fixed header (ifinfomsg inside a veth peer nest). */
static int nl_raw(struct nlreq *m, const void *data, size_t len)
{
	size_t off = NLMSG_ALIGN(m->h.nlmsg_len);
	if (off + NLMSG_ALIGN(len) > sizeof(*m))
		return -EMSGSIZE;
	memcpy((char *)m + off, data, len);
	m->h.nlmsg_len = (uint32_t)(off + NLMSG_ALIGN(len));
	return 0;
}

/* Sends one request and waits for its ack; returns the kernel's -errno. */
static int nl_call(int fd, struct nlreq *m)
{
	m->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	m->h.nlmsg_seq = 1;
	if (send(fd, m, m->h.nlmsg_len, 0) < 0)
		return negative_errno();
	char buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == NLMSG_ERROR) {
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
					return -EBADMSG;
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			}
	}
}

static void nl_init(struct nlreq *m, uint16_t type, uint16_t flags, const void *hdr, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->h.nlmsg_len = NLMSG_LENGTH(0);
	m->h.nlmsg_type = type;
	m->h.nlmsg_flags = flags;
	(void)nl_raw(m, hdr, len);
}

static int rtnl_socket(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	return fd < 0 ? negative_errno() : fd;
}

/* A rtnetlink socket that lives in the netns at path; this thread's netns is
 * restored before returning (a socket stays bound to its creation netns). */
static int rtnl_socket_in(const char *nspath, int *ret)
{
	_cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int target = open(nspath, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0)
		return negative_errno();
	if (setns(target, CLONE_NEWNET) < 0)
		return negative_errno();
	int fd = rtnl_socket();
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Cannot happen with a valid fd of our own netns; never continue elsewhere. */
		if (fd >= 0)
			close(fd);
		return -ENOTRECOVERABLE;
	}
	if (fd < 0)
		return fd;
	*ret = fd;
	return 0;
}

static int addr_add(int fd, int ifindex, const char *addr, unsigned prefix)
{
	struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix,
				.ifa_index = (unsigned)ifindex};
	struct in_addr a;
	struct nlreq m;
	if (inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	nl_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	if (nl_attr(&m, IFA_LOCAL, &a, sizeof(a)) < 0 || nl_attr(&m, IFA_ADDRESS, &a, sizeof(a)) < 0)
		return -EMSGSIZE;
	return nl_call(fd, &m);
}

static int link_up(int fd, int ifindex)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex, .ifi_flags = IFF_UP,
				.ifi_change = IFF_UP};
	struct nlreq m;
	nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	return nl_call(fd, &m);
}

static int route_default(int fd, const char *gw)
{
	struct rtmsg rt = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN,
			   .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_UNIVERSE,
			   .rtm_type = RTN_UNICAST};
	struct in_addr a;
	struct nlreq m;
	if (inet_pton(AF_INET, gw, &a) != 1)
		return -EINVAL;
	nl_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof(rt));
	if (nl_attr(&m, RTA_GATEWAY, &a, sizeof(a)) < 0)
		return -EMSGSIZE;
	return nl_call(fd, &m);
}

void sb_net_addresses(int index, char gw[16], char inside[16])
{
	uint32_t base = (10u << 24) | (201u << 16) | ((uint32_t)index * 4u);
	snprintf(gw, 16, "%u.%u.%u.%u", base >> 24, (base >> 16) & 255, (base >> 8) & 255,
		 (base & 255) + 1);
	snprintf(inside, 16, "%u.%u.%u.%u", base >> 24, (base >> 16) & 255, (base >> 8) & 255,
		 (base & 255) + 2);
}

/* csb<i> in the gateway (ifindex 100000+i) <-> eth0 in the sandbox netns. */
static int veth_create(int fd, int index, int netns_fd)
{
	char name[IFNAMSIZ];
	snprintf(name, sizeof(name), "csb%d", index);
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 100000 + index};
	struct ifinfomsg peer = {.ifi_family = AF_UNSPEC};
	struct nlreq m;
	nl_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	struct rtattr *li, *data, *pe;
	if (nl_attr(&m, IFLA_IFNAME, name, strlen(name) + 1) < 0 || !(li = nl_nest(&m, IFLA_LINKINFO)) ||
	    nl_attr(&m, IFLA_INFO_KIND, "veth", 5) < 0 || !(data = nl_nest(&m, IFLA_INFO_DATA)) ||
	    !(pe = nl_nest(&m, VETH_INFO_PEER)) || nl_raw(&m, &peer, sizeof(peer)) < 0 ||
	    nl_attr(&m, IFLA_IFNAME, "eth0", 5) < 0 ||
	    nl_attr(&m, IFLA_NET_NS_FD, &netns_fd, sizeof(netns_fd)) < 0)
		return -EMSGSIZE;
	nl_nest_end(&m, pe);
	nl_nest_end(&m, data);
	nl_nest_end(&m, li);
	return nl_call(fd, &m);
}

/* A named netns is a bind mount of an nsfs inode; after a reboot with a
 * persistent /run only an empty file is left, which is not a gateway. */
static bool netns_alive(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == NSFS_MAGIC;
}

static const char *gw_name(const struct sandbox_gateway_config *cfg)
{
	return cfg && cfg->netns ? cfg->netns : SANDBOX_GATEWAY_NETNS;
}

int sb_net_create(struct sandbox *sb, const struct sandbox_plan *plan, struct sandbox_error *e)
{
	char nspath[128];
	cap_strlcpy(sb->gw_netns, gw_name(&plan->gateway), sizeof(sb->gw_netns));
	snprintf(nspath, sizeof(nspath), "/run/netns/%s", sb->gw_netns);
	int r;
	if (!netns_alive(nspath) && (r = sandbox_gateway_up(&plan->gateway)) < 0)
		return sb_error_set(e, r, "gateway", sb->gw_netns), r;
	if ((r = rtnl_socket_in(nspath, &sb->gw_rtnl)) < 0)
		return sb_error_set(e, r, "gateway-netlink", nspath), r;
	uint32_t start;
	if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != sizeof(start))
		start = (uint32_t)getpid() * 7919u;
	for (int i = 0; i < 256; i++) {
		int idx = (int)((start + (uint32_t)i) % SB_NET_MAX);
		r = veth_create(sb->gw_rtnl, idx, sb->netns_fd);
		if (r == -EEXIST || r == -EBUSY)
			continue;
		if (r < 0)
			return sb_error_set(e, r, "veth", "RTM_NEWLINK veth"), r;
		sb->net_index = idx;
		break;
	}
	if (sb->net_index < 0)
		return sb_error_set(e, ENOSPC, "veth", "no free sandbox address"), -ENOSPC;
	snprintf(sb->veth, sizeof(sb->veth), "csb%d", sb->net_index);
	sb_net_addresses(sb->net_index, sb->gw_addr, sb->addr);
	if ((r = addr_add(sb->gw_rtnl, 100000 + sb->net_index, sb->gw_addr, 30)) < 0 ||
	    (r = link_up(sb->gw_rtnl, 100000 + sb->net_index)) < 0)
		return sb_error_set(e, r, "veth-gateway", sb->veth), r;
	return 0;
}

/* The veth pair is not deleted here, on purpose (measured on this kernel,
 * docs/sandbox.md "Veth life cycle"): RTM_DELLINK costs 20-30 ms (unregistering
 * a device waits for an RCU grace period and its last references), and moving
 * the gateway end into the dying sandbox netns (so that the name is free at
 * once) costs as much (revert 1.8 -> 28 ms median) and slows concurrent
 * builds 3-4x through rtnl contention.  The kernel destroys the pair with the
 * sandbox's netns in its batched, asynchronous cleanup_net once pid 1 is gone
 * and sandbox_free() has closed the last netns fd.  Until then csb<i> (name,
 * ifindex 100000+i and address block i, all one kernel object) is busy and
 * the allocator skips it: NLM_F_EXCL on the name and the fixed ifindex make
 * creation atomic, so no sandbox can ever get a lingering pair's name, index
 * or address. */
void sb_net_release(struct sandbox *sb)
{
	sb->net_index = -1;
	if (sb->gw_rtnl >= 0) {
		close(sb->gw_rtnl);
		sb->gw_rtnl = -1;
	}
}

#define NSTEP(res, r, st_, de_)                                                                \
	({                                                                                         \
		(res)->err = -(r);                                                                 \
		cap_strlcpy((res)->step, (st_), sizeof((res)->step));                             \
		cap_strlcpy((res)->detail, (de_), sizeof((res)->detail));                       \
		(r);                                                                               \
	})

int sb_net_child(const struct sandbox *sb, int net_index, const char *hostname, struct sb_result *res)
{
	if (sethostname(hostname, strlen(hostname)) < 0)
		return NSTEP(res, negative_errno(), "hostname", hostname);
	_cleanup_close_ int fd = rtnl_socket();
	if (fd < 0)
		return NSTEP(res, fd, "netlink", "");
	int r = link_up(fd, 1); /* lo is ifindex 1 in a new netns */
	if (r < 0)
		return NSTEP(res, r, "lo", "up");
	if (net_index < 0)
		return 0;
	char gw[16], inside[16];
	sb_net_addresses(net_index, gw, inside);
	int ifindex = (int)if_nametoindex("eth0");
	if (ifindex <= 0)
		return NSTEP(res, -ENODEV, "eth0", "missing");
	if ((r = addr_add(fd, ifindex, inside, 30)) < 0)
		return NSTEP(res, r, "eth0-address", inside);
	if ((r = link_up(fd, ifindex)) < 0)
		return NSTEP(res, r, "eth0", "up");
	if ((r = route_default(fd, gw)) < 0)
		return NSTEP(res, r, "route", gw);
	return 0;
}

/* ---- gateway (not on the hot path: CLI tools are fine here) ---- */

/* Runs argv with input on stdin; stdout into out (NUL-terminated, may be
 * NULL = discarded).  0 if it exited 0, else -EIO. */
static int run_cmd_out(const char *const *argv, const char *input, char *out, size_t outlen)
{
	int in[2], o[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) < 0)
		return negative_errno();
	if (out && pipe2(o, O_CLOEXEC) < 0) {
		int r = negative_errno();
		close(in[0]);
		close(in[1]);
		return r;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int r = negative_errno();
		close(in[0]);
		close(in[1]);
		if (out) {
			close(o[0]);
			close(o[1]);
		}
		return r;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		int so = out ? o[1] : devnull;
		if (dup2(in[0], 0) < 0 || (so >= 0 && dup2(so, 1) < 0))
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	if (out)
		close(o[1]);
	if (input) {
		size_t len = strlen(input);
		for (size_t off = 0; off < len;) {
			ssize_t n = write(in[1], input + off, len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	close(in[1]);
	if (out) {
		size_t len = 0;
		for (;;) {
			char tmp[512];
			ssize_t n = read(o[0], tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			size_t k = MIN((size_t)n, outlen - 1 - len);
			memcpy(out + len, tmp, k);
			len += k;
		}
		out[len] = '\0';
		close(o[0]);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return negative_errno();
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int run_cmd(const char *const *argv, const char *input)
{
	return run_cmd_out(argv, input, NULL, 0);
}

/* net.ipv4.icmp_ratemask of the gateway netns (a per-netns sysctl): the
 * default, 0x1818 (types 3, 4, 11, 12), without 3, destination unreachable.
 * Every unreachable the gateway sends answers a sandbox (the egress policy's
 * rejects, the kernel's net-unreachable; from the uplink side everything is
 * dropped without an answer), and a rate-limited one left a blocked UDP send
 * with no answer at all: the kernel allowed 6 a second per sandbox
 * (icmp_ratelimit) and 50 at once over all (icmp_msgs_burst), so 7 of 20
 * sends to a LAN address timed out (docs/sandbox.md). */
#define GATEWAY_ICMP_RATEMASK "6160"

static int egress_ruleset(const struct sandbox_gateway_config *cfg, char *buf, size_t size)
{
	char res[256] = "";
	size_t len = 0;
	for (size_t i = 0; cfg && i < ELEMENTSOF(cfg->resolvers) && cfg->resolvers[i]; i++) {
		struct in_addr a;
		if (inet_pton(AF_INET, cfg->resolvers[i], &a) != 1)
			return -EINVAL;
		int n = snprintf(res + len, sizeof(res) - len, "%s%s", len ? ", " : "", cfg->resolvers[i]);
		if (n < 0 || (size_t)n >= sizeof(res) - len)
			return -E2BIG;
		len += (size_t)n;
	}
	char port[96] = "", port_rst[96] = "";
	if (cfg && cfg->server_port) {
		snprintf(port, sizeof(port), "tcp dport %u reject with icmpx type admin-prohibited\n",
			 cfg->server_port);
		snprintf(port_rst, sizeof(port_rst), "tcp dport %u reject with tcp reset\n",
			 cfg->server_port);
	}
	/* prerouting: a new TCP connection the policy refuses, or one to an
	 * address without a route (no NAT), gets a reset at once (the kernel's
	 * net-unreachable is a soft error for TCP: a blocked connect waited 7 s
	 * for SYN retries); any other protocol gets admin-prohibited, a hard
	 * error for UDP where net-unreachable is ignored (an unconnected DNS
	 * query waited for its timeout).  The ICMP is not rate-limited: see
	 * GATEWAY_ICMP_RATEMASK.  The forward chain below stays the policy
	 * (docs/sandbox.md). */
	return xsnprintf(
		buf, size,
		"table inet capture_egress {\n"
		" set deny4 { type ipv4_addr; flags interval; elements = { 0.0.0.0/8, 10.0.0.0/8,"
		" 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.0.0.0/24,"
		" 192.168.0.0/16, 198.18.0.0/15, 224.0.0.0/4, 240.0.0.0/4 } }\n"
		" set resolvers4 { type ipv4_addr; %s%s%s }\n"
		" chain prerouting { type filter hook prerouting priority filter; policy accept;\n"
		"  iifname != \"csb*\" accept\n"
		"  ct state established,related accept\n"
		"  ip daddr @resolvers4 udp dport 53 accept\n"
		"  ip daddr @resolvers4 tcp dport 53 accept\n"
		"  %s"
		"  ip daddr @deny4 meta l4proto tcp reject with tcp reset\n"
		"  ip daddr @deny4 reject with icmpx type admin-prohibited\n"
		"  meta nfproto ipv4 fib daddr oif missing meta l4proto tcp reject with tcp reset\n"
		"  meta nfproto ipv4 fib daddr oif missing"
		" reject with icmpx type admin-prohibited\n }\n"
		" chain input { type filter hook input priority filter; policy drop;\n"
		"  iifname \"lo\" accept\n  ct state established,related accept\n"
		"  iifname \"csb*\" reject with icmpx type admin-prohibited\n }\n"
		" chain forward { type filter hook forward priority filter; policy drop;\n"
		"  ct state established,related accept\n  ct state invalid drop\n"
		"  iifname != \"csb*\" drop\n"
		"  oifname \"csb*\" reject with icmpx type admin-prohibited\n"
		"  meta nfproto ipv6 reject with icmpx type admin-prohibited\n"
		"  ip daddr @resolvers4 udp dport 53 accept\n"
		"  ip daddr @resolvers4 tcp dport 53 accept\n"
		"  %s"
		"  ip daddr @deny4 reject with icmpx type admin-prohibited\n"
		"  accept\n }\n"
		"}\n",
		len ? "elements = { " : "", res, len ? " };" : "", port_rst, port);
}

/* ---- NAT to the uplink (gateway.nat) ----
 *
 *  gateway netns                       uplink netns (the host, or a test's)
 *  csb<i> ... uplink0 10.200.255.4k+2 ── capup<k> 10.200.255.4k+1    DEV (default route)
 *  default via 4k+1; masquerade         forwarding on capup<k> and DEV only;
 *  out of uplink0                       table ip capture_nat_NAME: masquerade
 *                                       4k/30 out of DEV, forward capup<k> -> DEV
 *                                       only, nothing from capup<k> to the host
 *                                       (refused: TCP reset, admin-prohibited)
 * Sandbox traffic first passes the egress policy in the gateway (forward),
 * so denied destinations never reach the uplink.  State for the teardown is
 * in /run/capture/gateway-NAME.nat. */
#define NAT_MAX 64

/* argv run inside the named netns ns (NULL: this process's netns). */
static int ns_cmd(const char *ns, const char *const *argv, const char *input, char *out,
		  size_t outlen)
{
	const char *full[24];
	size_t n = 0;
	if (ns) {
		full[n++] = "/usr/sbin/ip";
		full[n++] = "netns";
		full[n++] = "exec";
		full[n++] = ns;
	}
	for (size_t i = 0; argv[i]; i++) {
		if (n >= ELEMENTSOF(full) - 1)
			return -E2BIG;
		full[n++] = argv[i];
	}
	full[n] = NULL;
	return run_cmd_out(full, input, out, outlen);
}

static int ns_sh(const char *ns, const char *script, char *out, size_t outlen)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	return ns_cmd(ns, argv, NULL, out, outlen);
}

static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= IFNAMSIZ)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("_.-", s[i])))
			return false;
	return true;
}

/* The device of the IPv4 default route in ns ("dev X" of `ip route`). */
static int uplink_device(const char *ns, char dev[IFNAMSIZ])
{
	char out[1024];
	const char *argv[] = {"/usr/sbin/ip", "-4", "-o", "route", "show", "default", NULL};
	int r = ns_cmd(ns, argv, NULL, out, sizeof(out));
	if (r < 0)
		return r;
	char *d = strstr(out, " dev ");
	if (!d)
		return -ENETUNREACH; /* no default route: nothing to NAT to */
	d += 5;
	size_t n = strcspn(d, " \n");
	if (n >= IFNAMSIZ)
		return -EINVAL;
	memcpy(dev, d, n);
	dev[n] = '\0';
	return ifname_ok(dev) ? 0 : -EINVAL;
}

/* nft identifiers: the gateway name with '-' as '_'. */
static void nat_table(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "capture_nat_%s", name);
	for (char *c = buf; *c; c++)
		if (*c == '-')
			*c = '_';
}

static void nat_state_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "/run/capture/gateway-%s.nat", name);
}

static int nat_create(const char *name, const struct sandbox_gateway_config *cfg)
{
	const char *ns = cfg->uplink_netns;
	char dev[IFNAMSIZ], table[64], cmd[1024], up[IFNAMSIZ], prev[16] = "";
	int r = uplink_device(ns, dev);
	if (r < 0)
		return r;
	nat_table(name, table, sizeof(table));
	int k = -1;
	for (int i = 0; i < NAT_MAX && k < 0; i++) {
		snprintf(up, sizeof(up), "capup%d", i);
		const char *add[] = {"/usr/sbin/ip", "link", "add", up, "type", "veth", "peer",
				     "name", "uplink0", "netns", name, NULL};
		if (ns_cmd(ns, add, NULL, NULL, 0) == 0)
			k = i;
	}
	if (k < 0)
		return -ENOSPC;
	char host[16], gw[16], net[20];
	snprintf(host, sizeof(host), "10.200.255.%d", 4 * k + 1);
	snprintf(gw, sizeof(gw), "10.200.255.%d", 4 * k + 2);
	snprintf(net, sizeof(net), "10.200.255.%d/30", 4 * k);
	snprintf(cmd, sizeof(cmd), "cat /proc/sys/net/ipv4/conf/%s/forwarding", dev);
	if ((r = ns_sh(ns, cmd, prev, sizeof(prev))) < 0)
		return r;
	prev[strcspn(prev, "\n")] = '\0';
	/* the state first: a failure below is undone by sandbox_gateway_down() */
	char state[160], text[256];
	nat_state_path(name, state, sizeof(state));
	snprintf(text, sizeof(text), "%s\n%s\n%s\n%s\n", ns ? ns : "-", dev, up,
		 strcmp(prev, "1") == 0 ? "1" : "0");
	_cleanup_close_ int sfd = open(state, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (sfd < 0)
		return negative_errno();
	if (write(sfd, text, strlen(text)) != (ssize_t)strlen(text))
		return -EIO;
	snprintf(cmd, sizeof(cmd),
		 "set -e; ip addr add %s/30 dev %s; ip link set %s up; "
		 "echo 1 > /proc/sys/net/ipv4/conf/%s/forwarding; "
		 "echo 1 > /proc/sys/net/ipv4/conf/%s/forwarding",
		 host, up, up, up, dev);
	if ((r = ns_sh(ns, cmd, NULL, 0)) < 0)
		return r;
	/* from the sandboxes to the host itself or past another device:
	 * refused at once (a drop made a connect time out); the ICMP for
	 * other protocols is rate-limited by the host's own settings */
	char refuse[160];
	snprintf(refuse, sizeof(refuse),
		 "  iifname \"%s\" meta l4proto tcp reject with tcp reset\n"
		 "  iifname \"%s\" reject with icmp type admin-prohibited\n",
		 up, up);
	char rules[2048];
	if ((r = xsnprintf(rules, sizeof(rules),
			   "table ip %s {\n"
			   " chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
			   "  ip saddr %s oifname \"%s\" masquerade\n }\n"
			   " chain forward { type filter hook forward priority filter; policy accept;\n"
			   "  iifname \"%s\" oifname \"%s\" accept\n%s"
			   "  oifname \"%s\" ct state established,related accept\n  oifname \"%s\" drop\n }\n"
			   " chain input { type filter hook input priority filter; policy accept;\n"
			   "  iifname \"%s\" ct state established,related accept\n%s }\n"
			   "}\n",
			   table, net, dev, up, dev, refuse, up, up, up, refuse)) < 0)
		return r;
	const char *nft[] = {"/usr/sbin/nft", "-f", "-", NULL};
	if ((r = ns_cmd(ns, nft, rules, NULL, 0)) < 0)
		return r;
	/* the gateway side: address, default route, masquerade out of uplink0 */
	snprintf(cmd, sizeof(cmd),
		 "set -e; ip addr add %s/30 dev uplink0; ip link set uplink0 up; "
		 "ip route add default via %s dev uplink0; "
		 "printf 'table ip capture_nat {\\n chain postrouting { type nat hook postrouting "
		 "priority srcnat; policy accept; oifname \"uplink0\" masquerade; }\\n}\\n' | nft -f -",
		 gw, host);
	return ns_sh(name, cmd, NULL, 0);
}

/* Undoes nat_create in the uplink netns (the gateway side goes with the
 * gateway netns): the table, the veth, and the uplink device's forwarding
 * back to what it was unless another gateway's NAT table still needs it. */
static void nat_destroy(const char *name)
{
	char state[160], text[256] = "", table[64], cmd[1024];
	nat_state_path(name, state, sizeof(state));
	FILE *f = fopen(state, "re");
	if (!f)
		return;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	char *ns = strtok(text, "\n"), *dev = strtok(NULL, "\n"), *up = strtok(NULL, "\n"),
	     *prev = strtok(NULL, "\n");
	if (ns && dev && up && prev && ifname_ok(dev) && ifname_ok(up) &&
	    (strcmp(ns, "-") == 0 || ifname_ok(ns))) {
		const char *where = strcmp(ns, "-") == 0 ? NULL : ns;
		nat_table(name, table, sizeof(table));
		snprintf(cmd, sizeof(cmd),
			 "nft delete table ip %s 2>/dev/null; ip link del %s 2>/dev/null; "
			 "if [ %s = 0 ] && ! nft list tables | grep -q ' capture_nat_'; then "
			 "echo 0 > /proc/sys/net/ipv4/conf/%s/forwarding; fi; true",
			 table, up, prev, dev);
		(void)ns_sh(where, cmd, NULL, 0);
	}
	(void)unlink(state);
}

static int gateway_create(const char *name, const struct sandbox_gateway_config *cfg)
{
	char rules[4096];
	int r = egress_ruleset(cfg, rules, sizeof(rules));
	if (r < 0)
		return r;
	const char *add[] = {"/usr/sbin/ip", "netns", "add", name, NULL};
	const char *lo[] = {"/usr/sbin/ip", "-n", name, "link", "set", "lo", "up", NULL};
	const char *fwd[] = {"/usr/sbin/ip", "netns", "exec", name, "/bin/sh", "-c",
			     "echo 1 > /proc/sys/net/ipv4/ip_forward && echo " GATEWAY_ICMP_RATEMASK
			     " > /proc/sys/net/ipv4/icmp_ratemask",
			     NULL};
	const char *nft[] = {"/usr/sbin/ip", "netns", "exec", name, "/usr/sbin/nft", "-f", "-", NULL};
	if ((r = run_cmd(add, NULL)) < 0)
		return r;
	if ((r = run_cmd(lo, NULL)) < 0 || (r = run_cmd(fwd, NULL)) < 0 ||
	    (r = run_cmd(nft, rules)) < 0 || (cfg && cfg->nat && (r = nat_create(name, cfg)) < 0)) {
		(void)sandbox_gateway_down(name);
		return r;
	}
	return 0;
}

int sandbox_gateway_up(const struct sandbox_gateway_config *cfg)
{
	const char *name = gw_name(cfg);
	char path[128], lockpath[160];
	if (strlen(name) > 32 || strchr(name, '/') || name[0] == '.')
		return -EINVAL;
	if (cfg && cfg->uplink_netns && (!ifname_ok(cfg->uplink_netns) || cfg->uplink_netns[0] == '.'))
		return -EINVAL;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	(void)mkdir("/run/capture", 0755);
	snprintf(lockpath, sizeof(lockpath), "/run/capture/gateway-%s.lock", name);
	_cleanup_close_ int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0)
		return negative_errno();
	if (flock(lock, LOCK_EX) < 0)
		return negative_errno();
	if (netns_alive(path))
		return 0; /* created (completely: creation holds the lock) by someone else */
	(void)unlink(path); /* a stale file left by a reboot */
	return gateway_create(name, cfg);
}

int sandbox_gateway_down(const char *name)
{
	if (!name)
		name = SANDBOX_GATEWAY_NETNS;
	if (strlen(name) > 32 || strchr(name, '/') || name[0] == '.')
		return -EINVAL;
	char path[128];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	int r = 0;
	if (access(path, F_OK) == 0) {
		const char *del[] = {"/usr/sbin/ip", "netns", "delete", name, NULL};
		r = run_cmd(del, NULL);
	}
	nat_destroy(name); /* after the gateway: no sandbox traffic in between */
	return r;
}

/* ---- pcap ---- */

struct sandbox_capture {
	struct sandbox *sb;
	pid_t pid;
	int ctl; /* closing it stops the helper */
	int result;
};

struct capture_stats {
	int32_t err;
	uint64_t packets, drops;
};

_Noreturn static void capture_helper(const char *nspath, const char *dev, const char *path,
				     int ctl, int result)
{
	struct capture_stats st = {0};
	char errbuf[PCAP_ERRBUF_SIZE];
	_cleanup_close_ int ns = open(nspath, O_RDONLY | O_CLOEXEC);
	pcap_t *p = NULL;
	pcap_dumper_t *d = NULL;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
		st.err = errno;
		goto out;
	}
	if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
		st.err = errno;
		goto out;
	}
	p = pcap_create(dev, errbuf);
	/* 16 MiB of ring (libpcap's default is 2): eight Chromium instances
	 * starting at once in a bulk group made the default drop 52 of 664. */
	if (!p || pcap_set_snaplen(p, 65535) != 0 || pcap_set_immediate_mode(p, 1) != 0 ||
	    pcap_set_buffer_size(p, 16 << 20) != 0 ||
	    pcap_activate(p) < 0 || pcap_setnonblock(p, 1, errbuf) < 0) {
		st.err = ENODEV;
		goto out;
	}
	d = pcap_dump_open(p, path);
	if (!d) {
		st.err = EACCES;
		goto out;
	}
	int ready = 0;
	if (write(result, &ready, sizeof(ready)) != sizeof(ready))
		goto out;
	int pfd = pcap_get_selectable_fd(p);
	for (;;) {
		struct pollfd f[2] = {{.fd = pfd, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
		if (poll(f, 2, 100) < 0 && errno != EINTR)
			break;
		while (pcap_dispatch(p, -1, pcap_dump, (u_char *)d) > 0)
			;
		if (f[1].revents)
			break;
	}
	while (pcap_dispatch(p, -1, pcap_dump, (u_char *)d) > 0)
		;
	struct pcap_stat ps;
	if (pcap_stats(p, &ps) == 0) {
		st.packets = ps.ps_recv;
		st.drops = ps.ps_drop + ps.ps_ifdrop;
	}
	pcap_dump_close(d);
	d = NULL;
out:
	if (d)
		pcap_dump_close(d);
	/* The file is complete: report before pcap_close, which waits 30-40 ms
	 * for the packet socket's release (an RCU grace period); the client
	 * reaps this process later (sandbox_free). */
	(void)!write(result, &st, sizeof(st));
	if (p)
		pcap_close(p);
	_exit(st.err ? 1 : 0);
}

int sandbox_capture_start(struct sandbox *sb, const char *path, struct sandbox_capture **ret)
{
	if (sb->net_index < 0)
		return -ENODEV;
	char nspath[128];
	snprintf(nspath, sizeof(nspath), "/run/netns/%s", sb->gw_netns);
	int ctl[2], res[2];
	if (pipe2(ctl, O_CLOEXEC) < 0)
		return negative_errno();
	if (pipe2(res, O_CLOEXEC) < 0) {
		int r = negative_errno();
		close(ctl[0]);
		close(ctl[1]);
		return r;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(ctl[1]);
		close(res[0]);
		capture_helper(nspath, sb->veth, path, ctl[0], res[1]);
	}
	close(ctl[0]);
	close(res[1]);
	_cleanup_close_ int c = ctl[1], rd = res[0];
	if (pid < 0)
		return negative_errno();
	_cleanup_pid_ pid_t child = pid;
	int first = -1;
	ssize_t n = read(rd, &first, sizeof(first));
	if (n != sizeof(first))
		return -EIO;
	if (first != 0)
		return first > 0 ? -first : -EIO;
	struct sandbox_capture *cap = calloc(1, sizeof(*cap));
	if (!cap)
		return -ENOMEM;
	cap->sb = sb;
	cap->pid = child;
	child = 0;
	cap->ctl = TAKE_FD(c);
	cap->result = TAKE_FD(rd);
	*ret = cap;
	return 0;
}

void sb_capture_reap(struct sandbox *sb, bool wait)
{
	for (size_t i = 0; i < ELEMENTSOF(sb->capture_reap); i++) {
		pid_t pid = sb->capture_reap[i];
		if (pid <= 0)
			continue;
		pid_t r;
		while ((r = waitpid(pid, NULL, wait ? 0 : WNOHANG)) < 0 && errno == EINTR)
			;
		if (r != 0) /* reaped (or gone) */
			sb->capture_reap[i] = 0;
	}
}

int sandbox_capture_stop(struct sandbox_capture *c, uint64_t *ret_packets, uint64_t *ret_drops)
{
	if (!c)
		return 0;
	close(c->ctl);
	struct capture_stats st = {.err = EIO};
	ssize_t n;
	do
		n = read(c->result, &st, sizeof(st));
	while (n < 0 && errno == EINTR);
	close(c->result);
	/* A helper that reported is only closing its socket: reaped later, by
	 * the next stop (a sandbox serves visit after visit while they are
	 * benign) or by sandbox_free, off the visit's path. */
	sb_capture_reap(c->sb, false);
	size_t slot = 0;
	while (slot < ELEMENTSOF(c->sb->capture_reap) && c->sb->capture_reap[slot] > 0)
		slot++;
	if (n == sizeof(st) && slot < ELEMENTSOF(c->sb->capture_reap) &&
	    waitpid(c->pid, NULL, WNOHANG) == 0)
		c->sb->capture_reap[slot] = c->pid;
	else
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	free(c);
	if (n != sizeof(st))
		return -EIO;
	if (st.err)
		return -st.err;
	if (ret_packets)
		*ret_packets = st.packets;
	if (ret_drops)
		*ret_drops = st.drops;
	return 0;
}
