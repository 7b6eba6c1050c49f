/* test-mon-registry.c - the hive monitor: the path -> key mapping, and on a
 * real sandbox (state dir /run/capture/monfile-test, cgroup parent
 * "monfile-test") a crontab, a systemd user unit, a changed and a removed
 * autostart entry give exactly the expected key events. */
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

#include "mon-registry.h"
#include "sandbox.h"

struct rec {
	char action[32], key[128], value[128];
};

struct ctx {
	struct sandbox *sb;
	struct monitor_target tgt;
	struct monitor *mr;
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
	}
	c->n++;
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
	r = sandbox_process_wait(&pr, 60000, &status);
	sandbox_process_done(&pr);
	return r < 0 ? r : status;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	if (!c)
		return 0;
	mon_registry_ops.free(c->mr);
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
	if (sandbox_monitor_target(c->sb, &c->tgt) < 0 ||
	    mon_registry_ops.new(&c->tgt, NULL, &cb, &c->mr) < 0)
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
	};
	static const char *const not_hives[] = { "/tmp/x", "/etc/crontab2", "/etc/cron.d/a/b",
						 "/home/.bashrc", "/etc/cron.d/", "/home//.bashrc",
						 "/var/spool/cron/crontabs" };
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
	for (size_t i = 0; i < c->n && i < 64; i++)
		fprintf(stderr, "# %-15s %-30s %s\n", c->ev[i].action, c->ev[i].key, c->ev[i].value);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test_setup_teardown(test_hives, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
