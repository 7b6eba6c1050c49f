/* test-proto: encode/decode round trips for every message, hostile strings,
 * malformed XML, DOCTYPE/billion laughs, range checks, error codes, time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "frame.h"
#include "proto.h"

static char err[256];

/* Encodes m in direction dir, checks the terminator and that the body has no
 * raw newline, then decodes it back into *out. */
static void round_trip(const struct cap_msg *m, enum cap_dir dir, struct cap_msg *out)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (dir == CAP_DIR_TO_CLIENT) {
		assert_int_equal(cap_msg_encode_to_client(m, &buf, &len), 0);
		assert_true(len >= 1 && buf[len - 1] == '\0');
		len -= 1;
	} else {
		assert_int_equal(cap_msg_encode_to_server(m, &buf, &len), 0);
		assert_true(len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n');
		len -= 2;
	}
	assert_null(memchr(buf, '\n', len));
	assert_null(memchr(buf, '\r', len));
	if (dir == CAP_DIR_TO_CLIENT)
		r = cap_msg_decode_from_server(buf, len, out, err, sizeof(err));
	else
		r = cap_msg_decode_from_client(buf, len, out, err, sizeof(err));
	if (r != 0)
		fail_msg("decode of '%.*s' failed: %s", (int)len, buf, err);
	assert_int_equal(out->type, m->type);
	free(buf);
}

static int dec_client(const char *s, struct cap_msg *m)
{
	return cap_msg_decode_from_client(s, strlen(s), m, err, sizeof(err));
}

static int dec_server(const char *s, struct cap_msg *m)
{
	return cap_msg_decode_from_server(s, strlen(s), m, err, sizeof(err));
}

static void test_connect_golden(void **state)
{
	struct cap_msg m = {.type = CAP_MSG_CONNECT}, o;
	char *buf;
	size_t len;

	m.connect.server = (char *)CAP_PROTO_SERVER_VERSION;
	assert_int_equal(cap_msg_encode_to_client(&m, &buf, &len), 0);
	assert_int_equal(len, sizeof("<connect server=\"2.5\"/>"));
	assert_memory_equal(buf, "<connect server=\"2.5\"/>", len);
	free(buf);

	assert_int_equal(dec_client("<connect vm-server-id=\"-1234\" vm-id=\"1\"/>", &o), 0);
	assert_int_equal(o.type, CAP_MSG_CONNECT);
	assert_string_equal(o.connect.vm_server_id, "-1234");
	assert_string_equal(o.connect.vm_id, "1");
	cap_msg_clear(&o);
	assert_int_equal(dec_client("<reconnect vm-server-id=\"5\" vm-id=\"6\"/>", &o), 0);
	assert_int_equal(o.type, CAP_MSG_RECONNECT);
	cap_msg_clear(&o);
	/* the original C++ client sends its address, NG names; empty is allowed */
	assert_int_equal(dec_client("<connect vm-server-id=\"10.1.1.2\" vm-id=\"\"/>", &o), 0);
	assert_string_equal(o.connect.vm_server_id, "10.1.1.2");
	assert_string_equal(o.connect.vm_id, "");
	cap_msg_clear(&o);
	assert_int_equal(dec_client("<connect vm-server-id=\"vbox-host_2\" vm-id=\"winxp-3\"/>", &o),
			 0);
	cap_msg_clear(&o);
	assert_int_equal(dec_client("<connect vm-server-id=\"a b\" vm-id=\"1\"/>", &o), -EBADMSG);
	assert_int_equal(dec_client("<connect vm-server-id=\"1\" vm-id=\"x/../y\"/>", &o),
			 -EBADMSG);
	assert_int_equal(dec_client("<connect vm-id=\"1\"/>", &o), -EBADMSG);
	assert_non_null(strstr(err, "vm-server-id"));
	/* direction: a client may not send option or connect server= */
	assert_int_equal(dec_client("<option name=\"a\" value=\"b\"/>", &o), -EBADMSG);
	assert_int_equal(dec_server("<pong/>", &o), -EBADMSG);
	/* encoder refuses a wrong direction */
	m.type = CAP_MSG_PONG;
	assert_int_equal(cap_msg_encode_to_client(&m, &buf, &len), -EINVAL);
}

static void test_hostile_strings_round_trip(void **state)
{
	static const char *const hostile[] = {
		"\"><x a='", "a&b<c>d", "line\nbreak\r\ttab", "&amp; &#0; ]]>", "caf\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct cap_msg m = {.type = CAP_MSG_OPTION}, o;
		m.option.name = (char *)"collect-modified-files";
		m.option.value = (char *)hostile[i];
		round_trip(&m, CAP_DIR_TO_CLIENT, &o);
		assert_string_equal(o.option.value, hostile[i]);
		cap_msg_clear(&o);

		struct cap_msg x = {.type = CAP_MSG_REGISTRY_EXCLUSION};
		x.exclusion.excluded = i % 2;
		x.exclusion.action = (char *)"SetValueKey";
		x.exclusion.subject = (char *)hostile[i];
		x.exclusion.object = (char *)"HKLM\\\\Software\\\\.*";
		round_trip(&x, CAP_DIR_TO_CLIENT, &o);
		assert_int_equal(o.exclusion.excluded, i % 2);
		assert_string_equal(o.exclusion.subject, hostile[i]);
		assert_string_equal(o.exclusion.object, "HKLM\\\\Software\\\\.*");
		cap_msg_clear(&o);
	}
}

static void test_visit_group_to_client(void **state)
{
	struct cap_visit_item items[2] = {
		{.id = (char *)"17", .url = (char *)"http://Example.com:8080/A?b=1&c=\"2\"#F"},
		{.id = (char *)"null", .url = (char *)"http://[::1]/x"},
	};
	struct cap_msg m = {.type = CAP_MSG_VISIT_EVENT}, o;
	m.visit.identifier = (char *)"-42";
	m.visit.program = (char *)"firefox";
	m.visit.visit_time = 20;
	m.visit.n_items = 2;
	m.visit.items = items;
	/* urls go form-encoded, as the original server sent them (an original
	 * client decodes them); decoding gives them back exactly */
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(cap_msg_encode_to_client(&m, &buf, &len), 0);
	assert_non_null(strstr(buf, "url=\"http%3A%2F%2FExample.com%3A8080%2FA%3Fb%3D1%26c%3D%222%22%23F\""));
	free(buf);
	round_trip(&m, CAP_DIR_TO_CLIENT, &o);
	assert_string_equal(o.visit.identifier, "-42");
	assert_int_equal(o.visit.visit_time, 20);
	assert_int_equal(o.visit.n_items, 2);
	assert_string_equal(o.visit.items[0].url, items[0].url);
	assert_int_equal(o.visit.algorithm, CAP_ALG_NONE); /* not sent: like the original */
	assert_string_equal(o.visit.items[1].id, "null");
	cap_msg_clear(&o);

	/* URL-encoded url as the original server sends it */
	assert_int_equal(dec_server("<visit-event identifier=\"1\" program=\"iexplore\" time=\"20\">"
				    "<item id=\"3\" url=\"http%3A%2F%2Fwww.google.com%2F%3Fq%3Da+b\"/>"
				    "</visit-event>",
				    &o),
			 0);
	assert_string_equal(o.visit.items[0].url, "http://www.google.com/?q=a b");
	cap_msg_clear(&o);
	assert_int_equal(dec_server("<visit-event identifier=\"1\" program=\"x\" time=\"20\"/>", &o),
			 -EBADMSG);
	assert_int_equal(dec_server("<visit-event identifier=\"1\" program=\"x\" time=\"86401\">"
				    "<item url=\"http://a/\"/></visit-event>",
				    &o),
			 -EBADMSG);
	assert_int_equal(dec_server("<visit-event identifier=\"1\" program=\"x\" time=\"2\">"
				    "<bogus url=\"http://a/\"/></visit-event>",
				    &o),
			 -EBADMSG);
}

static void test_visit_from_client(void **state)
{
	struct cap_visit_item it = {
		.url = (char *)"http://a.b/'\"<>&\n",
		.program = (char *)"chromium",
		.has_pid = true,
		.pid = 4242,
		.has_errors = true,
		.major_error = CAP_ERR_NETWORK_ERROR,
		.minor_error = 0x800c0005u,
		.has_time = true,
		.time = {2009, 3, 12, 14, 5, 33, 120},
		.has_visited = true,
		.visited = true,
	};
	struct cap_msg m = {.type = CAP_MSG_VISIT_EVENT}, o;
	m.visit.identifier = (char *)"7";
	m.visit.program = (char *)"chromium";
	m.visit.type = CAP_VISIT_ERROR;
	m.visit.algorithm = CAP_ALG_DAC;
	m.visit.malicious = true;
	m.visit.has_error_code = true;
	m.visit.error_code = CAP_ERR_TIMEOUT_ERROR;
	m.visit.has_time = true;
	m.visit.time = (struct cap_ptime){2026, 11, 2, 3, 4, 5, 6};
	m.visit.n_items = 1;
	m.visit.items = &it;
	round_trip(&m, CAP_DIR_TO_SERVER, &o);
	assert_int_equal(o.visit.type, CAP_VISIT_ERROR);
	assert_int_equal(o.visit.algorithm, CAP_ALG_DAC);
	assert_true(o.visit.malicious);
	assert_int_equal(o.visit.error_code, CAP_ERR_TIMEOUT_ERROR);
	assert_int_equal(o.visit.time.day, 2);
	assert_int_equal(o.visit.time.msec, 6);
	assert_string_equal(o.visit.items[0].url, it.url);
	assert_int_equal(o.visit.items[0].pid, 4242);
	assert_int_equal(o.visit.items[0].minor_error, 0x800c0005u);
	assert_true(o.visit.items[0].has_visited && o.visit.items[0].visited);
	assert_int_equal(o.visit.items[0].time.msec, 120);
	cap_msg_clear(&o);

	assert_int_equal(dec_client("<visit-event identifier=\"1\" type=\"begin\"/>", &o), -EBADMSG);
	assert_int_equal(dec_client("<visit-event identifier=\"1\" type=\"start\" malicious=\"2\"/>",
				    &o),
			 -EBADMSG);
	assert_int_equal(dec_client("<visit-event identifier=\"1\" type=\"error\" "
				    "error-code=\"4294967296\"/>",
				    &o),
			 -EBADMSG);
	assert_int_equal(dec_client("<visit-event identifier=\"1\" type=\"finish\">"
				    "<item url=\"http://a/\" processId=\"-1\"/></visit-event>",
				    &o),
			 -EBADMSG);
	assert_int_equal(dec_client("<visit-event identifier=\"1\" type=\"finish\" "
				    "time=\"31/2/2009 1:2:3.4\"/>",
				    &o),
			 -EBADMSG);
	assert_int_equal(dec_client("<visit-event identifier=\"1\" type=\"start\" "
				    "error-code=\"268435728\"/>",
				    &o),
			 0);
	assert_int_equal(o.visit.error_code, CAP_ERR_NETWORK_ERROR);
	/* program is optional from a client; the message re-encodes (fuzz finding) */
	char *buf = NULL;
	size_t len;
	assert_null(o.visit.program);
	assert_int_equal(cap_msg_encode_to_server(&o, &buf, &len), 0);
	free(buf);
	cap_msg_clear(&o);
}

/* Our extension: item malicious="0|1" on a client's visit-event finish. */
static void test_item_malicious_extension(void **state)
{
	struct cap_visit_item it[3] = {
		{.url = (char *)"http://a/", .has_malicious = true, .malicious = true},
		{.url = (char *)"http://b/", .has_malicious = true, .malicious = false},
		{.url = (char *)"http://c/"},
	};
	struct cap_msg m = {.type = CAP_MSG_VISIT_EVENT}, o;
	char *buf = NULL;
	size_t len;

	m.visit.identifier = (char *)"9";
	m.visit.type = CAP_VISIT_FINISH;
	m.visit.algorithm = CAP_ALG_BULK;
	m.visit.n_items = 3;
	m.visit.items = it;
	assert_int_equal(cap_msg_encode_to_server(&m, &buf, &len), 0);
	/* processId and the error codes always go (0 when unknown: NG needs them) */
	assert_non_null(strstr(buf, "<item url=\"http://a/\" processId=\"0\" major-error-code=\"0\""
				    " minor-error-code=\"0\" malicious=\"1\"/>"));
	assert_non_null(strstr(buf, "<item url=\"http://b/\" processId=\"0\" major-error-code=\"0\""
				    " minor-error-code=\"0\" malicious=\"0\"/>"));
	assert_non_null(strstr(buf, "<item url=\"http://c/\" processId=\"0\" major-error-code=\"0\""
				    " minor-error-code=\"0\"/>"));
	free(buf);
	m.visit.unattributed = 2; /* our extension: events no item could be tied to */
	round_trip(&m, CAP_DIR_TO_SERVER, &o);
	assert_int_equal(o.visit.unattributed, 2);
	m.visit.unattributed = 0;
	assert_int_equal(o.visit.n_items, 3);
	assert_true(o.visit.items[0].has_malicious && o.visit.items[0].malicious);
	assert_true(o.visit.items[1].has_malicious && !o.visit.items[1].malicious);
	assert_false(o.visit.items[2].has_malicious);
	cap_msg_clear(&o);

	/* bad values are rejected */
	assert_int_equal(dec_client("<visit-event identifier=\"1\" type=\"finish\">"
				    "<item url=\"http://a/\" malicious=\"yes\"/></visit-event>",
				    &o),
			 -EBADMSG);
	/* server -> client: never encoded; ignored when decoded (unknown attribute) */
	m.visit.type = CAP_VISIT_GROUP;
	m.visit.program = (char *)"x";
	assert_int_equal(cap_msg_encode_to_client(&m, &buf, &len), -EINVAL);
	assert_int_equal(dec_server("<visit-event identifier=\"1\" program=\"x\" time=\"2\">"
				    "<item url=\"http://a/\" malicious=\"1\"/></visit-event>",
				    &o),
			 0);
	assert_false(o.visit.items[0].has_malicious);
	cap_msg_clear(&o);

	/* our other extension: algorithm on a server's group */
	m.visit.algorithm = CAP_ALG_BULK;
	for (int i = 0; i < 3; i++)
		it[i].has_malicious = false;
	assert_int_equal(cap_msg_encode_to_client(&m, &buf, &len), 0);
	assert_non_null(strstr(buf, " algorithm=\"bulk\""));
	free(buf);
	round_trip(&m, CAP_DIR_TO_CLIENT, &o);
	assert_int_equal(o.visit.algorithm, CAP_ALG_BULK);
	cap_msg_clear(&o);
	assert_int_equal(dec_server("<visit-event identifier=\"1\" program=\"x\" time=\"2\" "
				    "algorithm=\"fast\"><item url=\"http://a/\"/></visit-event>",
				    &o),
			 -EBADMSG);
}

/* Compatibility with the original's clients and server (docs/protocol.md,
 * "Compatibility rules"). */
static void test_original_wire_forms(void **state)
{
	struct cap_msg o;
	/* an encoded url is echoed exactly as it arrived */
	assert_int_equal(dec_server("<visit-event identifier=\"1\" program=\"iexplore\" time=\"20\">"
				    "<item id=\"3\" url=\"http%3A%2F%2Fa.test%2F%3Fq%3D1%2B2+3\"/>"
				    "</visit-event>",
				    &o),
			 0);
	assert_string_equal(o.visit.items[0].url, "http://a.test/?q=1+2 3");
	assert_string_equal(o.visit.items[0].url_wire, "http%3A%2F%2Fa.test%2F%3Fq%3D1%2B2+3");
	struct cap_msg f = {.type = CAP_MSG_VISIT_EVENT};
	f.visit.identifier = (char *)"1";
	f.visit.type = CAP_VISIT_FINISH;
	f.visit.n_items = 1;
	f.visit.items = o.visit.items;
	char *buf = NULL;
	size_t len;
	assert_int_equal(cap_msg_encode_to_server(&f, &buf, &len), 0);
	assert_non_null(strstr(buf, " url=\"http%3A%2F%2Fa.test%2F%3Fq%3D1%2B2+3\""));
	free(buf);
	cap_msg_clear(&o);
	/* a plain url has no wire form */
	assert_int_equal(dec_server("<visit-event identifier=\"1\" program=\"x\" time=\"2\">"
				    "<item url=\"http://a/%41\"/></visit-event>",
				    &o),
			 0);
	assert_string_equal(o.visit.items[0].url, "http://a/%41");
	assert_null(o.visit.items[0].url_wire);
	cap_msg_clear(&o);
	/* the original client does not escape attribute values (Element::toString) */
	assert_int_equal(dec_client("<system-event time=\"2/3/2009 4:5:6.7\" type=\"file\" "
				    "processId=\"12\" process=\"C:\\a&b<c.exe\" action=\"Write\" "
				    "object1=\"C:\\x &amp; y.txt\" object2=\"-1\"/>",
				    &o),
			 0);
	assert_string_equal(o.system.ev.process, "C:\\a&b<c.exe");
	assert_string_equal(o.system.ev.object1, "C:\\x & y.txt");
	cap_msg_clear(&o);
	/* 8 KiB parts, NETWORK_ERROR with an HRESULT minor code */
	assert_int_equal(dec_client("<visit-event identifier=\"1\" time=\"2/3/2009 4:5:6.7\" "
				    "algorithm=\"seq\" type=\"error\" malicious=\"0\" "
				    "error-code=\"268435728\"><item url=\"http://a/\" processId=\"0\" "
				    "program=\"iexplore\" major-error-code=\"268435728\" "
				    "minor-error-code=\"2148270085\" time=\"2/3/2009 4:5:6.7\" "
				    "visited=\"1\"/></visit-event>",
				    &o),
			 0);
	assert_int_equal(o.visit.items[0].minor_error, 0x800C0005u);
	cap_msg_clear(&o);
}

/* Attributes per element are bounded before the parser runs (libxml2's
 * duplicate check is quadratic in their number). */
static void test_attribute_bound(void **state)
{
	struct cap_buf b = {0};
	struct cap_msg o;
	assert_int_equal(cap_buf_puts(&b, "<pong"), 0);
	for (int i = 0; i < CAP_PROTO_ATTRS_MAX; i++)
		assert_int_equal(cap_buf_printf(&b, " a%d=\"x\"", i), 0);
	assert_int_equal(cap_buf_puts(&b, "/>"), 0);
	assert_int_equal(dec_client(b.data, &o), 0);
	cap_msg_clear(&o);
	b.len -= 2;
	for (int i = CAP_PROTO_ATTRS_MAX; i < 100000; i++)
		assert_int_equal(cap_buf_printf(&b, " a%d=\"x\"", i), 0);
	assert_int_equal(cap_buf_puts(&b, "/>"), 0);
	assert_int_equal(dec_client(b.data, &o), -EBADMSG);
	assert_non_null(strstr(err, "attributes"));
	/* '=' inside values does not count */
	cap_buf_done(&b);
	b = (struct cap_buf){0};
	assert_int_equal(cap_buf_puts(&b, "<pong a=\""), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(cap_buf_puts(&b, "=='>"), 0);
	assert_int_equal(cap_buf_puts(&b, "\"/>"), 0);
	assert_int_equal(dec_client(b.data, &o), 0);
	cap_msg_clear(&o);
	cap_buf_done(&b);
}

static void test_item_count_bound(void **state)
{
	struct cap_buf b = {0};
	struct cap_msg o;

	assert_int_equal(cap_buf_puts(&b, "<visit-event identifier=\"1\" type=\"finish\">"), 0);
	for (int i = 0; i < CAP_PROTO_ITEMS_MAX; i++)
		assert_int_equal(cap_buf_puts(&b, "<item url=\"http://a/\"/>"), 0);
	assert_int_equal(cap_buf_puts(&b, "</visit-event>"), 0);
	assert_int_equal(dec_client(b.data, &o), 0);
	assert_int_equal(o.visit.n_items, CAP_PROTO_ITEMS_MAX);
	cap_msg_clear(&o);
	b.len -= strlen("</visit-event>");
	assert_int_equal(cap_buf_puts(&b, "<item url=\"http://a/\"/></visit-event>"), 0);
	assert_int_equal(dec_client(b.data, &o), -EBADMSG);
	assert_non_null(strstr(err, "items"));
	cap_buf_done(&b);
}

static void test_system_event(void **state)
{
	struct cap_event ev;
	struct cap_msg m, o;
	struct cap_event back;

	cap_event_init(&ev, CAP_EV_FILE, "Write", "/usr/bin/evil\"><x a='",
		       "/tmp/a\nb&c", "-1");
	ev.pid = 1234;
	ev.time.tv_nsec = 250000000;
	ev.host_pid = 99;
	assert_int_equal(cap_msg_system_from_event(&ev, &m), 0);
	round_trip(&m, CAP_DIR_TO_SERVER, &o);
	assert_int_equal(cap_msg_system_to_event(&o, &back), 0);
	assert_int_equal(back.type, CAP_EV_FILE);
	assert_int_equal(back.pid, 1234);
	assert_int_equal(back.host_pid, 0);
	assert_string_equal(back.process, ev.process);
	assert_string_equal(back.action, "Write");
	assert_string_equal(back.object1, "/tmp/a\nb&c");
	assert_string_equal(back.object2, "-1");
	assert_int_equal(back.time.tv_sec, ev.time.tv_sec);
	assert_int_equal(back.time.tv_nsec, 250000000);
	cap_msg_clear(&o);

	assert_int_equal(dec_client("<system-event time=\"1/1/2020 0:0:0.0\" type=\"disk\" "
				    "processId=\"1\" process=\"p\" action=\"a\" object1=\"o\"/>",
				    &o),
			 -EBADMSG);
	assert_int_equal(dec_client("<system-event time=\"1/1/2020 0:0:0.0\" type=\"file\" "
				    "processId=\"1x\" process=\"p\" action=\"a\" object1=\"o\"/>",
				    &o),
			 -EBADMSG);
	/* object1 over 4 KiB */
	struct cap_buf b = {0};
	assert_int_equal(cap_buf_puts(&b, "<system-event time=\"1/1/2020 0:0:0.0\" type=\"file\" "
					  "processId=\"1\" process=\"p\" action=\"a\" object1=\""),
			 0);
	for (int i = 0; i < CAP_OBJ_MAX; i++)
		assert_int_equal(cap_buf_puts(&b, "x"), 0);
	assert_int_equal(cap_buf_puts(&b, "\"/>"), 0);
	assert_int_equal(dec_client(b.data, &o), -EBADMSG);
	cap_buf_done(&b);
}

/* An original-style reader (ClientEventController.java: SAX, every
 * attribute into a map, Client.parseEvent takes seven by name): parses the
 * line with plain libxml2 and returns the value of one attribute (or NULL)
 * and the number of attributes. */
static char *orig_attr(const char *line, size_t len, const char *name, int *n_attrs)
{
	xmlDoc *doc = xmlReadMemory(line, (int)len, NULL, "UTF-8", XML_PARSE_NONET);
	assert_non_null(doc);
	xmlNode *root = xmlDocGetRootElement(doc);
	assert_non_null(root);
	assert_string_equal((const char *)root->name, "system-event");
	int n = 0;
	for (xmlAttr *a = root->properties; a; a = a->next)
		n++;
	*n_attrs = n;
	xmlChar *v = xmlGetProp(root, (const xmlChar *)name);
	char *r = v ? strdup((const char *)v) : NULL;
	xmlFree(v);
	xmlFreeDoc(doc);
	return r;
}

/* Our extension: system-event command-line (process events). */
static void test_system_command_line(void **state)
{
	struct cap_event ev;
	struct cap_msg m, o;
	char *buf;
	size_t len;

	/* hostile: quotes, markup, entities, TAB/LF/CR, a control character,
	   an invalid UTF-8 byte, and 1023 bytes in all (the bound) */
	static const char head[] = "/bin/sh -c \"echo '<x>' &amp; a\tb\nc\rd\x01" "e\xff" "f\" ";
	char cmd[CAP_CMDLINE_MAX];
	memset(cmd, 'y', sizeof(cmd) - 1);
	cmd[sizeof(cmd) - 1] = '\0';
	memcpy(cmd, head, sizeof(head) - 1);
	cap_event_init(&ev, CAP_EV_PROCESS, "created", "/usr/bin/python3", "7", "/bin/sh");
	cap_strlcpy(ev.cmdline, cmd, sizeof(ev.cmdline));
	assert_int_equal(strlen(ev.cmdline), CAP_CMDLINE_MAX - 1);
	ev.pid = 3;
	assert_int_equal(cap_msg_system_from_event(&ev, &m), 0);
	round_trip(&m, CAP_DIR_TO_SERVER, &o);
	/* what XML 1.0 cannot carry became '?', the rest came back unchanged */
	char want[CAP_CMDLINE_MAX];
	memcpy(want, cmd, sizeof(want));
	*strchr(want, '\x01') = '?';
	*strchr(want, '\xff') = '?';
	assert_string_equal(o.system.ev.cmdline, want);
	assert_string_equal(o.system.ev.object2, "/bin/sh");
	assert_string_equal(o.system.ev.object1, "7");
	cap_msg_clear(&o);

	/* an original-style reader still gets its seven attributes */
	assert_int_equal(cap_msg_encode_to_server(&m, &buf, &len), 0);
	int n = 0;
	char *v = orig_attr(buf, len - 2, "object2", &n);
	assert_int_equal(n, 8);
	assert_string_equal(v, "/bin/sh");
	free(v);
	v = orig_attr(buf, len - 2, "processId", &n);
	assert_string_equal(v, "3");
	free(v);
	v = orig_attr(buf, len - 2, "command-line", &n);
	assert_string_equal(v, want);
	free(v);
	free(buf);

	/* not sent when empty, nor on other event types */
	cap_event_init(&ev, CAP_EV_PROCESS, "terminated", "/usr/bin/python3", "7", "/bin/sh");
	assert_int_equal(cap_msg_system_from_event(&ev, &m), 0);
	assert_int_equal(cap_msg_encode_to_server(&m, &buf, &len), 0);
	assert_null(strstr(buf, "command-line"));
	free(buf);
	cap_event_init(&ev, CAP_EV_FILE, "Write", "/usr/bin/python3", "/tmp/x", "-1");
	cap_strlcpy(ev.cmdline, "python3 x.py", sizeof(ev.cmdline));
	assert_int_equal(cap_msg_system_from_event(&ev, &m), 0);
	assert_int_equal(cap_msg_encode_to_server(&m, &buf, &len), 0);
	assert_null(strstr(buf, "command-line"));
	free(buf);

	/* decoding: absent = ""; on a file event ignored; over the bound refused */
	assert_int_equal(dec_client("<system-event time=\"1/1/2020 0:0:0.0\" type=\"process\" "
				    "processId=\"1\" process=\"p\" action=\"created\" object1=\"2\" "
				    "object2=\"/bin/true\"/>",
				    &o),
			 0);
	assert_string_equal(o.system.ev.cmdline, "");
	cap_msg_clear(&o);
	assert_int_equal(dec_client("<system-event time=\"1/1/2020 0:0:0.0\" type=\"file\" "
				    "processId=\"1\" process=\"p\" action=\"Write\" object1=\"/x\" "
				    "command-line=\"sh x\"/>",
				    &o),
			 0);
	assert_string_equal(o.system.ev.cmdline, "");
	cap_msg_clear(&o);
	struct cap_buf b = {0};
	assert_int_equal(cap_buf_puts(&b, "<system-event time=\"1/1/2020 0:0:0.0\" type=\"process\" "
					  "processId=\"1\" process=\"p\" action=\"created\" "
					  "object1=\"2\" object2=\"/bin/true\" command-line=\""),
			 0);
	for (int i = 0; i < CAP_CMDLINE_MAX; i++)
		assert_int_equal(cap_buf_puts(&b, "x"), 0);
	assert_int_equal(cap_buf_puts(&b, "\"/>"), 0);
	assert_int_equal(dec_client(b.data, &o), -EBADMSG);
	assert_non_null(strstr(err, "command-line"));
	cap_buf_done(&b);
}

static void test_file_upload(void **state)
{
	unsigned char data[300];
	struct cap_msg m = {.type = CAP_MSG_FILE}, o;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7);
	m.file.name = (char *)"../../etc/passwd";
	m.file.has_size = true;
	m.file.size = 300;
	m.file.type = (char *)"zip";
	round_trip(&m, CAP_DIR_TO_SERVER, &o);
	assert_string_equal(o.file.name, "../../etc/passwd"); /* parsed, not trusted */
	assert_int_equal(o.file.size, 300);
	cap_msg_clear(&o);
	m.type = CAP_MSG_FILE_FINISHED;
	round_trip(&m, CAP_DIR_TO_SERVER, &o);
	cap_msg_clear(&o);

	struct cap_msg p = {.type = CAP_MSG_PART};
	p.part.name = (char *)"c:\\logs.zip";
	p.part.start = 0;
	p.part.end = 300;
	p.part.data = data;
	p.part.data_len = sizeof(data);
	round_trip(&p, CAP_DIR_TO_SERVER, &o);
	assert_int_equal(o.part.data_len, 300);
	assert_memory_equal(o.part.data, data, 300);
	assert_int_equal(o.part.end, 300);
	cap_msg_clear(&o);

	assert_int_equal(dec_client("<part name=\"a\" part-start=\"0\" part-end=\"3\" "
				    "encoding=\"hex\">616263</part>",
				    &o),
			 -EBADMSG);
	assert_int_equal(dec_client("<part name=\"a\" part-start=\"0\" part-end=\"3\" "
				    "encoding=\"base64\">YW*j</part>",
				    &o),
			 -EBADMSG);
	assert_int_equal(dec_client("<part name=\"a\" part-start=\"-1\" part-end=\"3\" "
				    "encoding=\"base64\">YWJj</part>",
				    &o),
			 -EBADMSG);

	static const enum cap_msg_type srv[] = {CAP_MSG_FILE_ACCEPT, CAP_MSG_FILE_REJECT,
						CAP_MSG_FILE_OK, CAP_MSG_FILE_ERROR};
	for (size_t i = 0; i < 4; i++) {
		struct cap_msg a = {.type = srv[i]};
		a.file.name = (char *)"out/123.zip";
		round_trip(&a, CAP_DIR_TO_CLIENT, &o);
		assert_string_equal(o.file.name, "out/123.zip");
		cap_msg_clear(&o);
	}
}

static void test_ping_pong(void **state)
{
	struct cap_msg m = {.type = CAP_MSG_PING}, o;
	round_trip(&m, CAP_DIR_TO_CLIENT, &o);
	cap_msg_clear(&o);
	m.type = CAP_MSG_PONG;
	round_trip(&m, CAP_DIR_TO_SERVER, &o);
	cap_msg_clear(&o);
	/* the original's "<ping/>\n" + NUL, as the framer hands it over */
	assert_int_equal(dec_server("<ping/>", &o), 0);
	assert_int_equal(o.type, CAP_MSG_PING);
	assert_int_equal(dec_client("<pong>text</pong>", &o), -EBADMSG);
}

static void test_malformed_and_hostile_xml(void **state)
{
	struct cap_msg o;
	static const char *const bad_msgs[] = {
		"",
		"<pong",
		"<pong/><pong/>",
		"pong",
		"<pong a=\"1\" a=\"2\"/>",
		"<unknown-thing/>",
		"<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>"
		"<system-event time=\"1/1/2020 0:0:0.0\" type=\"file\" processId=\"1\" "
		"process=\"&lol2;\" action=\"a\" object1=\"o\"/>",
		"<!DOCTYPE x SYSTEM \"http://127.0.0.1:1/x.dtd\"><pong/>",
		"<pong><!-- c --></pong>",
		"<x:pong xmlns:x=\"urn:x\"/>",
		"<pong>&xxe;</pong>",
		"<option name=\"a\" value=\"&#0;\"/>",
	};
	for (size_t i = 0; i < sizeof(bad_msgs) / sizeof(bad_msgs[0]); i++) {
		int r = dec_client(bad_msgs[i], &o);
		if (r != -EBADMSG)
			fail_msg("accepted #%zu '%s'", i, bad_msgs[i]);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(dec_client("<unknown-thing/>", &o), -EBADMSG);
	assert_non_null(strstr(err, "unknown element"));
	/* embedded NUL */
	assert_int_equal(cap_msg_decode_from_client("<pong/>\0x", 9, &o, err, sizeof(err)),
			 -EBADMSG);
}

static void test_error_codes(void **state)
{
	uint32_t c;
	assert_string_equal(cap_error_code_name(0x10000110u), "NETWORK_ERROR");
	assert_string_equal(cap_error_code_name(0x10007000u), "INVALID_URL");
	assert_null(cap_error_code_name(0x1234));
	assert_int_equal(cap_error_code_from_name("VM_STALLED", &c), 0);
	assert_int_equal(c, 0x10004100u);
	assert_int_equal(cap_error_code_from_name("NOPE", &c), -EINVAL);
	assert_true(cap_error_code_completes_visit(CAP_ERR_NETWORK_ERROR));
	assert_true(cap_error_code_completes_visit(CAP_ERR_TIMEOUT_ERROR));
	assert_true(cap_error_code_completes_visit(CAP_ERR_MULTIPLE_ERRORS));
	assert_true(cap_error_code_completes_visit(CAP_ERR_WARNING));
	assert_false(cap_error_code_completes_visit(CAP_ERR_PROCESS_ERROR));
	assert_false(cap_error_code_completes_visit(CAP_ERR_EXCEPTION));
	assert_false(cap_error_code_completes_visit(CAP_ERR_INVALID_URL));
	assert_false(cap_error_code_completes_visit(0));
}

static void test_ptime(void **state)
{
	struct cap_ptime t;
	char buf[CAP_PTIME_STRLEN];

	assert_int_equal(cap_ptime_parse("2/3/2009 4:5:6.7", &t), 0);
	assert_int_equal(t.day, 2);
	assert_int_equal(t.month, 3);
	assert_int_equal(t.year, 2009);
	assert_int_equal(t.msec, 7);
	assert_int_equal(cap_ptime_format(&t, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2/3/2009 4:5:6.7");
	assert_int_equal(cap_ptime_parse("29/2/2024 23:59:59.999", &t), 0);
	assert_int_equal(cap_ptime_parse("29/2/2023 0:0:0.0", &t), -EINVAL);
	assert_int_equal(cap_ptime_parse("1/13/2023 0:0:0.0", &t), -EINVAL);
	assert_int_equal(cap_ptime_parse("1/1/2023 24:0:0.0", &t), -EINVAL);
	assert_int_equal(cap_ptime_parse("1/1/2023 0:0:0.1000", &t), -EINVAL);
	assert_int_equal(cap_ptime_parse("1/1/2023 0:0:0", &t), -EINVAL);
	assert_int_equal(cap_ptime_parse("1/1/2023 0:0:0.0 ", &t), -EINVAL);
	assert_int_equal(cap_ptime_parse("+1/1/2023 0:0:0.0", &t), -EINVAL);
	assert_int_equal(cap_ptime_parse("001/1/2023 0:0:0.0", &t), -EINVAL);

	struct timespec ts = {.tv_sec = 1700000000, .tv_nsec = 123456789}, back;
	assert_int_equal(cap_ptime_from_timespec(&ts, &t), 0);
	assert_int_equal(t.msec, 123);
	assert_int_equal(cap_ptime_to_timespec(&t, &back), 0);
	assert_int_equal(back.tv_sec, ts.tv_sec);
	assert_int_equal(back.tv_nsec, 123000000);
}

static void test_framed_session(void **state)
{
	/* encoder output through the framer gives back the same messages */
	struct cap_msg ms[3] = {{.type = CAP_MSG_PONG}, {.type = CAP_MSG_FILE}, {.type = CAP_MSG_PONG}};
	struct cap_buf wire = {0};
	struct cap_framer f;
	const char *msg;
	size_t len;
	int n = 0;

	ms[1].file.name = (char *)"a\r\nb";
	for (int i = 0; i < 3; i++) {
		char *buf;
		size_t bl;
		assert_int_equal(cap_msg_encode_to_server(&ms[i], &buf, &bl), 0);
		assert_int_equal(cap_buf_append(&wire, buf, bl), 0);
		free(buf);
	}
	cap_framer_init(&f, CAP_FRAME_LINE, 0);
	assert_int_equal(cap_framer_feed(&f, wire.data, wire.len), 0);
	while (cap_framer_next(&f, &msg, &len) == 1) {
		struct cap_msg o;
		assert_int_equal(cap_msg_decode_from_client(msg, len, &o, err, sizeof(err)), 0);
		assert_int_equal(o.type, ms[n].type);
		if (o.type == CAP_MSG_FILE)
			assert_string_equal(o.file.name, "a\r\nb");
		cap_msg_clear(&o);
		n++;
	}
	assert_int_equal(n, 3);
	cap_framer_done(&f);
	cap_buf_done(&wire);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_golden),
		cmocka_unit_test(test_hostile_strings_round_trip),
		cmocka_unit_test(test_visit_group_to_client),
		cmocka_unit_test(test_visit_from_client),
		cmocka_unit_test(test_item_count_bound),
		cmocka_unit_test(test_original_wire_forms),
		cmocka_unit_test(test_attribute_bound),
		cmocka_unit_test(test_system_event),
		cmocka_unit_test(test_system_command_line),
		cmocka_unit_test(test_file_upload),
		cmocka_unit_test(test_item_malicious_extension),
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_malformed_and_hostile_xml),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_ptime),
		cmocka_unit_test(test_framed_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
