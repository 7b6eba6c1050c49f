/* test-cdp.c - the DevTools pipe framing (cdp.h) against a fake browser on
 * the other end of a socketpair: messages split across reads and packed
 * into one, the size bound, malformed and non-object messages, end of file,
 * writes to a browser that has gone (no SIGPIPE), the command format. */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cdp.h"

static struct cdp *pair(size_t max, int *peer)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct cdp *c = NULL;
	assert_int_equal(cdp_new(sv[0], max, &c), 0);
	*peer = sv[1];
	return c;
}

static void feed(int fd, const char *data, size_t n)
{
	assert_int_equal(write(fd, data, n), (ssize_t)n);
}

static void test_framing(void **state)
{
	int peer;
	struct cdp *c = pair(0, &peer);
	struct json_object *m = NULL;

	assert_int_equal(cdp_read(c), 0); /* nothing yet, no block */
	assert_int_equal(cdp_next(c, &m), 0);

	/* one message in three pieces */
	feed(peer, "{\"id\":", 6);
	assert_int_equal(cdp_read(c), 0);
	assert_int_equal(cdp_next(c, &m), 0);
	feed(peer, "7,\"result\":{\"targetId\":\"AB", 26);
	assert_int_equal(cdp_read(c), 0);
	assert_int_equal(cdp_next(c, &m), 0);
	feed(peer, "C\"}}\0", 5);
	assert_int_equal(cdp_read(c), 0);
	assert_int_equal(cdp_next(c, &m), 1);
	assert_int_equal(cdp_msg_id(m), 7);
	assert_string_equal(cdp_str(cdp_msg_result(m), "targetId"), "ABC");
	assert_null(cdp_msg_error(m));
	assert_null(cdp_msg_method(m));
	json_object_put(m);

	/* three in one read: an event, garbage, a non-object, an error answer */
	static const char many[] =
	    "{\"method\":\"Page.loadEventFired\",\"params\":{},\"sessionId\":\"S1\"}\0"
	    "{not json\0"
	    "[1,2]\0"
	    "{\"id\":8,\"error\":{\"code\":-32000,\"message\":\"no such target\"}}\0";
	feed(peer, many, sizeof(many) - 1);
	assert_int_equal(cdp_read(c), 0);
	assert_int_equal(cdp_next(c, &m), 1);
	assert_string_equal(cdp_msg_method(m), "Page.loadEventFired");
	assert_string_equal(cdp_msg_session(m), "S1");
	assert_int_equal(cdp_msg_id(m), -1);
	json_object_put(m);
	assert_int_equal(cdp_next(c, &m), -EBADMSG);
	assert_int_equal(cdp_next(c, &m), -EBADMSG);
	assert_int_equal(cdp_next(c, &m), 1);
	assert_int_equal(cdp_msg_id(m), 8);
	assert_string_equal(cdp_msg_error(m), "no such target");
	json_object_put(m);
	assert_int_equal(cdp_next(c, &m), 0);

	/* mistyped members are absent, not crashes */
	static const char odd[] = "{\"id\":\"9\",\"method\":5,\"result\":[],\"sessionId\":{}}\0";
	feed(peer, odd, sizeof(odd) - 1);
	assert_int_equal(cdp_read(c), 0);
	assert_int_equal(cdp_next(c, &m), 1);
	assert_int_equal(cdp_msg_id(m), -1);
	assert_null(cdp_msg_method(m));
	assert_null(cdp_msg_result(m));
	assert_null(cdp_msg_session(m));
	json_object_put(m);

	/* the browser closes its end */
	close(peer);
	assert_int_equal(cdp_read(c), -EPIPE);
	assert_int_equal(cdp_send(c, NULL, "Target.createTarget", NULL, NULL), -EPIPE);
	cdp_free(c);
	(void)state;
}

static void test_bound(void **state)
{
	int peer;
	struct cdp *c = pair(1024, &peer);
	struct json_object *m = NULL;
	char big[4096];
	memset(big, 'x', sizeof(big));
	feed(peer, "{\"id\":1,\"x\":\"", 13);
	feed(peer, big, sizeof(big)); /* no NUL: never ends */
	int r = 0;
	for (int i = 0; i < 10 && r == 0; i++) {
		r = cdp_read(c);
		if (r == 0)
			r = cdp_next(c, &m);
	}
	assert_int_equal(r, -EMSGSIZE);
	assert_int_equal(cdp_read(c), -EMSGSIZE); /* sticky */
	cdp_free(c);
	close(peer);

	/* a complete message just over the bound */
	c = pair(64, &peer);
	char msg[80];
	memset(msg, ' ', sizeof(msg));
	msg[0] = '{';
	msg[78] = '}';
	msg[79] = '\0';
	feed(peer, msg, sizeof(msg));
	r = cdp_read(c);
	if (r == 0)
		r = cdp_next(c, &m);
	assert_int_equal(r, -EMSGSIZE);
	cdp_free(c);
	close(peer);
	(void)state;
}

static void test_send(void **state)
{
	int peer;
	struct cdp *c = pair(0, &peer);
	int64_t id1 = 0, id2 = 0;
	struct json_object *p = json_object_new_object();
	json_object_object_add(p, "url", json_object_new_string("http://a/\"\\\n"));
	assert_int_equal(cdp_send(c, NULL, "Target.createTarget", p, &id1), 0);
	assert_int_equal(cdp_send(c, "SESS", "Page.enable", NULL, &id2), 0);
	assert_true(id1 > 0 && id2 == id1 + 1);
	assert_false(cdp_write_pending(c));
	char buf[512];
	ssize_t n = read(peer, buf, sizeof(buf));
	assert_true(n > 0);
	/* two NUL-terminated JSON objects */
	const char *first = buf, *second = buf + strlen(buf) + 1;
	assert_true(second < buf + n);
	assert_int_equal(buf[n - 1], '\0');
	struct json_object *a = json_tokener_parse(first), *b = json_tokener_parse(second);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(cdp_msg_id(a), id1);
	assert_string_equal(cdp_msg_method(a), "Target.createTarget");
	assert_string_equal(cdp_str(cdp_obj(a, "params"), "url"), "http://a/\"\\\n");
	assert_null(cdp_msg_session(a));
	assert_string_equal(cdp_msg_session(b), "SESS");
	assert_non_null(cdp_obj(b, "params"));
	json_object_put(a);
	json_object_put(b);

	/* a browser that stopped reading: commands queue, nothing blocks */
	int sz = 4096;
	setsockopt(cdp_fd(c), SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	for (int i = 0; i < 2000; i++) {
		p = json_object_new_object();
		json_object_object_add(p, "pad",
				       json_object_new_string("0123456789abcdef0123456789"));
		assert_int_equal(cdp_send(c, NULL, "Runtime.evaluate", p, NULL), 0);
	}
	assert_true(cdp_write_pending(c));
	/* the peer goes away: -EPIPE, and no SIGPIPE kills us */
	close(peer);
	assert_int_equal(cdp_flush(c), -EPIPE);
	cdp_free(c);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_framing),
	    cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_send),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
