/* capture-sandbox - a thin command line over the sandbox library.
 *
 *   capture-sandbox gateway up [NAME] [nat [UPLINK_NETNS]]
 *                                         create the gateway netns (default capture-gw),
 *                                         with "nat": NAT to the uplink (the default
 *                                         route of UPLINK_NETNS, default the host)
 *   capture-sandbox gateway down [NAME]   delete it (and every sandbox veth in it)
 *   capture-sandbox run [-n] [-i IMAGE] [-g GWNETNS] [-r] [-S] [-U] -- CMD [ARGS...]
 *                                         build a sandbox, run CMD inside (as the
 *                                         sandbox user, -r as root; -n with network;
 *                                         -S without the seccomp filter, -U with
 *                                         user namespaces denied),
 *                                         wait, revert; exits with CMD's status.
 *                                         CMD is an absolute path, or a name looked up
 *                                         in the sandbox's PATH (SANDBOX_PATH) inside
 *                                         the sandbox once built (sandbox_find_command:
 *                                         the image's symlinks, binds); a relative
 *                                         path or an unknown name exits 2
 * Used by test scripts of other areas (the test web attaches to the gateway).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

static int usage(void)
{
	fprintf(stderr, "usage: capture-sandbox gateway up [NAME] [nat [UPLINK_NETNS]]\n"
			"       capture-sandbox gateway down [NAME]\n"
			"       capture-sandbox run [-n] [-r] [-S] [-U] [-i IMAGE] [-g GWNETNS] -- CMD "
			"[ARGS...]\n"
			"CMD: an absolute path inside the sandbox, or a name looked up in its "
			"PATH (" SANDBOX_PATH ") in its root (the image with -i)\n");
	return 2;
}

static int cmd_gateway(int argc, char **argv)
{
	if (argc < 3 || argc > 6)
		return usage();
	struct sandbox_gateway_config cfg = {.netns = argc >= 4 ? argv[3] : NULL};
	if (argc >= 5) {
		if (strcmp(argv[2], "up") != 0 || strcmp(argv[4], "nat") != 0)
			return usage();
		cfg.nat = true;
		cfg.uplink_netns = argc == 6 ? argv[5] : NULL;
	}
	int r;
	if (strcmp(argv[2], "up") == 0)
		r = sandbox_gateway_up(&cfg);
	else if (strcmp(argv[2], "down") == 0)
		r = sandbox_gateway_down(cfg.netns);
	else
		return usage();
	if (r < 0) {
		log_error_errno(r, "gateway %s", argv[2]);
		return 1;
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct sandbox_plan plan;
	struct sandbox_exec ex;
	sandbox_plan_init(&plan);
	sandbox_exec_init(&ex);
	int c;
	optind = 2;
	while ((c = getopt(argc, argv, "nrSUi:g:")) != -1) {
		switch (c) {
		case 'S':
			plan.seccomp = false;
			break;
		case 'U':
			plan.allow_userns = false;
			break;
		case 'n':
			plan.network = true;
			break;
		case 'r':
			ex.as_root = true;
			break;
		case 'i':
			plan.image = optarg;
			break;
		case 'g':
			plan.gateway.netns = optarg;
			break;
		default:
			return usage();
		}
	}
	if (optind >= argc)
		return usage();
	/* a relative path means nothing inside (no working folder of ours) */
	const char *name = argv[optind];
	if (name[0] != '/' && (!name[0] || strchr(name, '/'))) {
		log_warnx("run: %s: give an absolute path or a command name", name);
		return 2;
	}
	ex.argv = (const char *const *)argv + optind;
	ex.stdin_fd = 0;
	ex.stdout_fd = 1;
	ex.stderr_fd = 2;
	struct sandbox_error e = {0};
	struct sandbox *sb;
	int r = sandbox_new(&plan, &sb, &e);
	if (r < 0) {
		log_warnx("sandbox: step %s (%s): %s", e.step, e.detail, strerror(e.err));
		return 1;
	}
	/* a name is looked up in the sandbox's own view (its image, binds) */
	char cmd[PATH_MAX];
	if (name[0] != '/') {
		r = sandbox_find_command(sb, name, cmd, sizeof(cmd));
		if (r < 0) {
			log_warnx("run: %s: not found in the sandbox's PATH (" SANDBOX_PATH ")",
				  name);
			sandbox_free(sb);
			return 2;
		}
		argv[optind] = cmd;
	}
	struct sandbox_process p;
	int status = 0;
	r = sandbox_spawn(sb, &ex, &p);
	if (r == 0) {
		r = sandbox_process_wait(&p, -1, &status);
		sandbox_process_done(&p);
	}
	sandbox_free(sb);
	if (r < 0) {
		log_error_errno(r, "run %s", ex.argv[0]);
		return 1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
	log_init("capture-sandbox", 0);
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "gateway") == 0)
		return cmd_gateway(argc, argv);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc, argv);
	return usage();
}
