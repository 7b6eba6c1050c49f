/* test-mon-registry.c - the hive monitor: the path -> key mapping, and on a
 * real sandbox (state dir /run/capture/monfile-test, cgroup parent
 * "monfile-test") a crontab, a systemd user unit, a changed and a removed
 * autostart entry give exactly the expected key events (found when the
 * queue is drained at stop); events delivered live, as the writes happen,
 * named with the writing process (cp, sh, rm); dconf keys changed by
 * `dconf compile` and a corrupted database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mon-process.h"
#include "mon-registry.h"
#include "proctable.h"
#include "sandbox.h"

struct rec {
	char action[32], key[128], value[128], process[128];
	pid_t host_pid;
};

struct ctx {
	struct sandbox *sb;
	struct monitor_target tgt;
	struct proctable *procs;
	struct monitor *mr, *mp; /* the process monitor names writers that have exited */
	struct rec ev[64];
	size_t n;
	int errors;
};

static void sink(void *userdata, const struct cap_event *ev)
{
	struct ctx *c = userdata;
	assert_int_equal(ev->type, CAP_EV_REGISTRY);
	if (c->n < 64) {
		cap_strlcpy(c->ev[c->n].action, ev->action, sizeof(c->ev[0].action));
		cap_strlcpy(c->ev[c->n].key, ev->object1, sizeof(c->ev[0].key));
		cap_strlcpy(c->ev[c->n].value, ev->object2, sizeof(c->ev[0].value));
		cap_strlcpy(c->ev[c->n].process, ev->process, sizeof(c->ev[0].process));
		c->ev[c->n].host_pid = ev->host_pid;
	}
	c->n++;
}

static void proc_sink(void *userdata, const struct cap_event *ev)
{
	(void)userdata;
	(void)ev;
}

static void on_error(void *userdata, const char *monitor, int err, const char *msg)
{
	struct ctx *c = userdata;
	fprintf(stderr, "# %s: %s (%s)\n", monitor, msg, strerror(-err));
	c->errors++;
}

static int run(struct ctx *c, const char *script, bool as_root)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	struct sandbox_exec ex;
	struct sandbox_process pr;
	int status = -1, r;

	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.stderr_fd = 2;
	ex.as_root = as_root;
	r = sandbox_spawn(c->sb, &ex, &pr);
	if (r < 0)
		return r;
	for (int i = 0; i < 3000; i++) { /* drive both monitors as the client's loop would */
		r = sandbox_process_wait(&pr, 20, &status);
		(void)mon_process_ops.dispatch(c->mp);
		(void)mon_registry_ops.dispatch(c->mr);
		if (r != -ETIMEDOUT)
			break;
	}
	/* fanotify queued the records before the writer returned: one more read gets them */
	(void)mon_process_ops.dispatch(c->mp);
	(void)mon_registry_ops.dispatch(c->mr);
	sandbox_process_done(&pr);
	return r < 0 ? r : status;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	if (!c)
		return 0;
	mon_registry_ops.free(c->mr);
	if (c->mp) {
		(void)mon_process_ops.stop(c->mp);
		mon_process_ops.free(c->mp);
	}
	proctable_free(c->procs);
	sandbox_free(c->sb);
	free(c);
	(void)rmdir("/run/capture/monfile-test"); /* our parents, if now empty */
	(void)rmdir("/sys/fs/cgroup/unified/monfile-test");
	(void)rmdir("/sys/fs/cgroup/pids/monfile-test");
	(void)rmdir("/sys/fs/cgroup/memory/monfile-test");
	return 0;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct sandbox_plan plan;
	struct sandbox_error e;
	struct monitor_callbacks cb = { .event = sink, .error = on_error, .userdata = c };

	if (!c)
		return -1;
	*state = c;
	sandbox_plan_init(&plan);
	plan.state_dir = "/run/capture/monfile-test";
	plan.cgroup_parent = "monfile-test";
	plan.network = false;
	if (sandbox_new(&plan, &c->sb, &e) < 0) {
		fprintf(stderr, "# sandbox_new: %s: %s (%s)\n", e.step, strerror(e.err), e.detail);
		goto fail;
	}
	struct monitor_callbacks pcb = { .event = proc_sink, .error = on_error, .userdata = c };
	if (sandbox_monitor_target(c->sb, &c->tgt) < 0 || proctable_new(0, &c->procs) < 0 ||
	    mon_process_ops.new(&c->tgt, c->procs, &pcb, &c->mp) < 0 ||
	    mon_process_ops.start(c->mp) < 0 ||
	    mon_registry_ops.new(&c->tgt, c->procs, &cb, &c->mr) < 0)
		goto fail;
	return 0;
fail:
	(void)teardown(state); /* cmocka does not call teardown after a failed setup */
	*state = NULL;
	return -1;
}

static void test_keys(void **state)
{
	static const char *const map[][2] = {
		{ "/var/spool/cron/crontabs/root", "cron:/root" },
		{ "/etc/crontab", "cron:/etc/crontab" },
		{ "/etc/cron.d/job", "cron:/etc/cron.d/job" },
		{ "/home/alice/.config/systemd/user/evil.service", "systemd:/user/evil.service" },
		{ "/root/.config/systemd/user/x.timer", "systemd:/user/x.timer" },
		{ "/etc/systemd/system/evil.service", "systemd:/system/evil.service" },
		{ "/etc/xdg/autostart/a.desktop", "autostart:/system/a.desktop" },
		{ "/home/bob/.config/autostart/b.desktop", "autostart:/user/b.desktop" },
		{ "/home/bob/.bashrc", "shell:/user/.bashrc" },
		{ "/etc/profile.d/z.sh", "shell:/etc/profile.d/z.sh" },
		{ "/etc/ld.so.preload", "ldpreload:/etc/ld.so.preload" },
		{ "/root/.ssh/authorized_keys", "ssh:/user/authorized_keys" },
		{ "/etc/sudoers.d/evil", "sudoers:/etc/sudoers.d/evil" },
		{ "/home/bob/.config/dconf/user", "dconf:" },
		{ "/root/.config/dconf/user", "dconf:" },
	};
	static const char *const not_hives[] = { "/tmp/x", "/etc/crontab2", "/etc/cron.d/a/b",
						 "/home/.bashrc", "/etc/cron.d/", "/home//.bashrc",
						 "/var/spool/cron/crontabs",
						 "/home/bob/.config/dconf/user.X1Y2Z3",
						 "/home/bob/.config/dconf/user/x" };
	char key[256];
	(void)state;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		assert_true(mon_registry_key(map[i][0], key, sizeof(key)));
		assert_string_equal(key, map[i][1]);
	}
	for (size_t i = 0; i < sizeof(not_hives) / sizeof(not_hives[0]); i++)
		assert_false(mon_registry_key(not_hives[i], key, sizeof(key)));
	assert_false(mon_registry_key("/var/spool/cron/crontabs/root", key, 4)); /* too small */
}

static size_t count(const struct ctx *c, const char *action, const char *key, const char *value)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n && i < 64; i++)
		if (strcmp(c->ev[i].action, action) == 0 && strcmp(c->ev[i].key, key) == 0 &&
		    strcmp(c->ev[i].value, value) == 0)
			n++;
	return n;
}

/* Like count(), and every matching event was named with process. */
static size_t count_by(const struct ctx *c, const char *action, const char *key, const char *value,
		       const char *process)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n && i < 64; i++)
		if (strcmp(c->ev[i].action, action) == 0 && strcmp(c->ev[i].key, key) == 0 &&
		    strcmp(c->ev[i].value, value) == 0 && strcmp(c->ev[i].process, process) == 0 &&
		    c->ev[i].host_pid > 0)
			n++;
	return n;
}

static void dump(const struct ctx *c)
{
	for (size_t i = 0; i < c->n && i < 64; i++)
		fprintf(stderr, "# %-15s %-30s %-24s %s\n", c->ev[i].action, c->ev[i].key,
			c->ev[i].value, c->ev[i].process);
}

static void test_hives(void **state)
{
	struct ctx *c = *state;
	struct monitor_stats st;

	assert_int_equal(run(c, "mkdir -p \"$HOME/.config/autostart\" && cd \"$HOME/.config/autostart\" && "
				"printf '[Desktop Entry]\\nExec=/tmp/old\\n' > old.desktop && "
				"printf 'x\\n' > gone.desktop", false),
			 0);
	assert_int_equal(mon_registry_ops.start(c->mr), 0);
	assert_int_equal(run(c, "mkdir -p /var/spool/cron/crontabs && "
				"printf '# c\\n* * * * * /tmp/evil\\n' > /var/spool/cron/crontabs/root", true),
			 0);
	assert_int_equal(run(c, "mkdir -p \"$HOME/.config/systemd/user\" && "
				"printf '[Service]\\nExecStart=/tmp/evil\\n' > \"$HOME/.config/systemd/user/evil.service\" && "
				"cd \"$HOME/.config/autostart\" && "
				"printf '[Desktop Entry]\\nExec=/tmp/evil2\\n' > old.desktop && rm gone.desktop && "
				"echo x > /tmp/not-a-hive", false),
			 0);
	assert_int_equal(mon_registry_ops.stop(c->mr), 0);
	dump(c);
	assert_int_equal(count(c, "CreateKey", "cron:/root", "-1"), 1);
	assert_int_equal(count(c, "SetValueKey", "cron:/root", "* * * * * /tmp/evil"), 1);
	assert_int_equal(count(c, "CreateKey", "systemd:/user/evil.service", "-1"), 1);
	assert_int_equal(count(c, "SetValueKey", "systemd:/user/evil.service", "[Service]"), 1);
	assert_int_equal(count(c, "SetValueKey", "systemd:/user/evil.service", "ExecStart=/tmp/evil"), 1);
	assert_int_equal(count(c, "DeleteValueKey", "autostart:/user/old.desktop", "Exec=/tmp/old"), 1);
	assert_int_equal(count(c, "SetValueKey", "autostart:/user/old.desktop", "Exec=/tmp/evil2"), 1);
	assert_int_equal(count(c, "DeleteValueKey", "autostart:/user/gone.desktop", "x"), 1);
	assert_int_equal(count(c, "DeleteKey", "autostart:/user/gone.desktop", "-1"), 1);
	assert_int_equal(c->n, 9);
	mon_registry_ops.stats(c->mr, &st);
	assert_int_equal(st.delivered, 9);
	assert_int_equal(st.lost, 0);
	assert_int_equal(c->errors, 0);
}

/* Events arrive as the writes happen, named with the writer; stop() adds
 * nothing. */
static void test_live(void **state)
{
	struct ctx *c = *state;
	struct monitor_stats st;

	assert_int_equal(run(c, "printf '[Desktop Entry]\\nExec=/tmp/evil\\n' > /tmp/mr-src && "
				"mkdir -p \"$HOME/.config/autostart\"", false),
			 0);
	assert_int_equal(mon_registry_ops.start(c->mr), 0);
	assert_int_equal(run(c, "cp /tmp/mr-src \"$HOME/.config/autostart/new.desktop\"", false), 0);
	dump(c);
	assert_int_equal(c->n, 3);
	assert_int_equal(count_by(c, "CreateKey", "autostart:/user/new.desktop", "-1", "/usr/bin/cp"), 1);
	assert_int_equal(count_by(c, "SetValueKey", "autostart:/user/new.desktop", "[Desktop Entry]",
				  "/usr/bin/cp"),
			 1);
	assert_int_equal(count_by(c, "SetValueKey", "autostart:/user/new.desktop", "Exec=/tmp/evil",
				  "/usr/bin/cp"),
			 1);
	assert_int_equal(run(c, "echo 'echo pwned' >> \"$HOME/.bashrc\"", false), 0);
	assert_int_equal(c->n, 5); /* the sandbox's home has no .bashrc before */
	assert_int_equal(count_by(c, "CreateKey", "shell:/user/.bashrc", "-1", "/usr/bin/dash"), 1);
	assert_int_equal(count_by(c, "SetValueKey", "shell:/user/.bashrc", "echo pwned", "/usr/bin/dash"), 1);
	assert_int_equal(run(c, "rm \"$HOME/.config/autostart/new.desktop\"", false), 0);
	dump(c);
	assert_int_equal(c->n, 8);
	assert_int_equal(count_by(c, "DeleteValueKey", "autostart:/user/new.desktop", "Exec=/tmp/evil",
				  "/usr/bin/rm"),
			 1);
	assert_int_equal(count_by(c, "DeleteKey", "autostart:/user/new.desktop", "-1", "/usr/bin/rm"), 1);
	/* a directory of units moved into place: no record names the unit file */
	assert_int_equal(run(c, "mkdir -p /tmp/mr-units \"$HOME/.config/systemd\" && "
				"printf '[Unit]\\n' > /tmp/mr-units/moved.service", false),
			 0);
	assert_int_equal(run(c, "mv /tmp/mr-units \"$HOME/.config/systemd/user\"", false), 0);
	assert_int_equal(c->n, 8);
	assert_int_equal(mon_registry_live_events(c->mr), 8);
	assert_int_equal(mon_registry_ops.stop(c->mr), 0);
	dump(c);
	/* the end-of-visit scan adds only the moved unit, writer unknown */
	assert_int_equal(c->n, 10);
	assert_int_equal(count(c, "CreateKey", "systemd:/user/moved.service", "-1"), 1);
	assert_int_equal(count(c, "SetValueKey", "systemd:/user/moved.service", "[Unit]"), 1);
	assert_string_equal(c->ev[8].process, "unknown");
	assert_string_equal(c->ev[9].process, "unknown");
	assert_int_equal(mon_registry_live_events(c->mr), 8);
	mon_registry_ops.stats(c->mr, &st);
	assert_int_equal(st.reported, 10);
	assert_int_equal(st.delivered, 10);
	assert_int_equal(st.lost, 0);
	assert_int_equal(c->errors, 0);
}

#define DCONF_DIR "\"$HOME/.config/dconf\""
#define DCONF_COMPILE(kf)                                                                          \
	"d=$(mktemp -d) && printf '" kf "' > $d/kf && mkdir -p " DCONF_DIR " && "                  \
	"dconf compile " DCONF_DIR "/user $d && rm -r $d"

/* dconf keys: changed, added, unchanged, removed; then a corrupt database. */
static void test_dconf(void **state)
{
	struct ctx *c = *state;
	struct monitor_stats st;
	static const char *const k = "dconf:/org/capture/test/";
	char key[128];

	assert_int_equal(run(c, DCONF_COMPILE("[org/capture/test]\\na=\\047old\\047\\nkeep=1\\n"
					      "gone=true\\n"),
			     false),
			 0);
	assert_int_equal(mon_registry_ops.start(c->mr), 0);
	assert_int_equal(run(c, DCONF_COMPILE("[org/capture/test]\\na=\\047new\\047\\nkeep=1\\n"
					      "n=uint32 7\\nl=[\\047x\\047, \\047y\\047]\\n"
					      "d=0.5\\n"),
			     false),
			 0);
	dump(c);
#define KEY(name) (snprintf(key, sizeof(key), "%s%s", k, name), key)
	assert_int_equal(count_by(c, "SetValueKey", KEY("a"), "'new'", "/usr/bin/dconf"), 1);
	assert_int_equal(count_by(c, "SetValueKey", KEY("n"), "uint32 7", "/usr/bin/dconf"), 1);
	assert_int_equal(count_by(c, "SetValueKey", KEY("l"), "['x', 'y']", "/usr/bin/dconf"), 1);
	assert_int_equal(count_by(c, "SetValueKey", KEY("d"), "0.5", "/usr/bin/dconf"), 1);
	assert_int_equal(count_by(c, "DeleteValueKey", KEY("gone"), "true", "/usr/bin/dconf"), 1);
	assert_int_equal(c->n, 5);
	assert_int_equal(run(c, "printf 'GVariant-not-really' > " DCONF_DIR "/user", false), 0);
	dump(c);
	assert_int_equal(count_by(c, "SetValueKey", "dconf:", "(invalid GVDB database: Bad message)",
				  "/usr/bin/dash"),
			 1);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(count_by(c, "DeleteValueKey", KEY(((const char *[]){ "a", "keep", "n", "l", "d" })[i]),
					  ((const char *[]){ "'new'", "1", "uint32 7", "['x', 'y']", "0.5" })[i],
					  "/usr/bin/dash"),
				 1);
#undef KEY
	assert_int_equal(c->n, 11);
	assert_int_equal(mon_registry_ops.stop(c->mr), 0);
	assert_int_equal(c->n, 11);
	mon_registry_ops.stats(c->mr, &st);
	assert_int_equal(st.delivered, 11);
	assert_int_equal(st.reported, 11);
	assert_int_equal(st.lost, 0);
	assert_int_equal(c->errors, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test_setup_teardown(test_hives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dconf, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
