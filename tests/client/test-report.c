/* test-report.c - what the client sends back about a group
 * (src/client/report.c), as an original Capture-HPC server needs it
 * (docs/protocol.md, "Compatibility rules"):
 *   - every item's url goes back exactly as the server sent it (form-encoded:
 *     the original server looks items up by that string), while the URL
 *     visited is the decoded one; the copy outlives the server's message;
 *   - finish items always carry processId and both error codes (0 when
 *     unknown);
 *   - without the server's algorithm attribute a group of more than one URL
 *     is reported as dac whatever the application's default (a seq group
 *     of 2 with a malicious page was logged benign by NG), never visited in
 *     bulk; with it, the application's own choice as before;
 *   - upload parts carry at most 8,192 raw bytes (NG loses parts over
 *     ~12 KiB), contiguous, and decode back to the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define WIRE "http%3A%2F%2Fa.test%2F%3Fq%3D1%2B2+3%26r%3D%25"

static void test_items_echo_wire(void **state)
{
	(void)state;
	const char *in = "<visit-event identifier=\"-4711\" program=\"testapp\" time=\"1\">"
			 "<item id=\"7\" url=\"" WIRE "\"/>"
			 "<item url=\"http://b.test/x?y=1\"/></visit-event>";
	struct cap_msg m;
	char err[128];
	assert_int_equal(cap_msg_decode_from_server(in, strlen(in), &m, err, sizeof(err)), 0);
	struct report_items it;
	assert_int_equal(report_items_copy(&m.visit, &it), 0);
	cap_msg_clear(&m); /* the copy must not borrow from the message */
	assert_int_equal(it.n, 2);
	assert_string_equal(it.urls[0], "http://a.test/?q=1+2 3&r=%"); /* visited */
	assert_string_equal(it.wires[0], WIRE);
	assert_string_equal(it.ids[0], "7");
	assert_string_equal(it.urls[1], "http://b.test/x?y=1");
	assert_null(it.wires[1]);
	assert_null(it.ids[1]);

	struct visit_url res[2] = {{.url = it.urls[0], .visited = true},
				   {.url = it.urls[1],
				    .pid = 1234,
				    .visited = true,
				    .major_error = CAP_ERR_NETWORK_ERROR,
				    .minor_error = 404}};
	bool mal[2] = {true, false};
	struct report_results rr = {.urls = res, .malicious = mal, .algorithm = CAP_ALG_DAC};
	assert_int_equal(cap_ptime_parse("2/3/2009 4:5:6.7", &rr.time), 0);
	for (int finish = 0; finish <= 1; finish++) {
		struct cap_visit_item items[2];
		struct cap_msg out = {.type = CAP_MSG_VISIT_EVENT};
		out.visit.identifier = "-4711";
		out.visit.program = "testapp";
		out.visit.type = finish ? CAP_VISIT_FINISH : CAP_VISIT_START;
		out.visit.algorithm = CAP_ALG_DAC;
		out.visit.malicious = finish;
		out.visit.items = items;
		out.visit.n_items = report_items_fill(&it, "testapp", finish ? &rr : NULL, items);
		assert_int_equal(out.visit.n_items, 2);
		char *line;
		size_t len;
		assert_int_equal(cap_msg_encode_to_server(&out, &line, &len), 0);
		/* exactly the strings the server sent */
		assert_non_null(strstr(line, "<item id=\"7\" url=\"" WIRE "\""));
		assert_non_null(strstr(line, "url=\"http://b.test/x?y=1\""));
		if (finish) {
			/* NG parses these on every item of a finish */
			assert_non_null(strstr(line, "url=\"" WIRE "\" processId=\"0\""));
			assert_non_null(strstr(line, "processId=\"1234\""));
			assert_non_null(
			    strstr(line, "major-error-code=\"0\" minor-error-code=\"0\""));
			assert_non_null(strstr(line, "major-error-code=\"268435728\" "
						     "minor-error-code=\"404\""));
			assert_null(strstr(line, "malicious=\"1\"/>")); /* bulk only */
		}
		struct cap_msg back;
		assert_int_equal(cap_msg_decode_from_client(line, len, &back, err, sizeof(err)), 0);
		assert_string_equal(back.visit.items[0].url, it.urls[0]);
		assert_string_equal(back.visit.items[0].url_wire, WIRE);
		cap_msg_clear(&back);
		free(line);
	}

	/* bulk: each item carries its own verdict (our extension) */
	struct cap_visit_item items[2];
	rr.algorithm = CAP_ALG_BULK;
	report_items_fill(&it, "testapp", &rr, items);
	assert_true(items[0].has_malicious && items[0].malicious);
	assert_true(items[1].has_malicious && !items[1].malicious);
	report_items_clear(&it);
	report_items_clear(&it); /* cleared: a no-op */
}

static const struct visitor_plugin p_chromium = {
    .name = "chromium",
    .algorithms = 1u << CAP_ALG_SEQ | 1u << CAP_ALG_DAC | 1u << CAP_ALG_BULK,
    .default_algorithm = CAP_ALG_DAC};
static const struct visitor_plugin p_firefox = {
    .name = "firefox",
    .algorithms = 1u << CAP_ALG_SEQ | 1u << CAP_ALG_DAC | 1u << CAP_ALG_BULK,
    .default_algorithm = CAP_ALG_SEQ};
static const struct visitor_plugin p_generic = {.name = "generic",
						.algorithms =
						    1u << CAP_ALG_SEQ | 1u << CAP_ALG_BULK,
						.default_algorithm = CAP_ALG_SEQ};
static const struct visitor_plugin p_bulky = {.name = "bulky",
					      .algorithms = 1u << CAP_ALG_SEQ | 1u << CAP_ALG_BULK,
					      .default_algorithm = CAP_ALG_BULK};
static const struct visitor_plugin p_fetch = {
    .name = "fetch", .algorithms = 1u << CAP_ALG_SEQ, .default_algorithm = CAP_ALG_SEQ};

static void alg_is(const struct visitor_plugin *p, enum cap_algorithm asked, size_t n,
		   enum cap_algorithm visit, enum cap_algorithm report)
{
	struct visitor_app app = {.plugin = p};
	enum cap_algorithm v = CAP_ALG_NONE, r = CAP_ALG_NONE;
	report_algorithm(p ? &app : NULL, asked, n, &v, &r);
	if (v != visit || r != report)
		fail_msg("%s, asked %d, %zu URLs: visit %d report %d, want %d %d",
			 p ? p->name : "(none)", asked, n, v, r, visit, report);
}

static void test_algorithm(void **state)
{
	(void)state;
	/* No algorithm (an original server), more than one URL: reported as
	 * dac, visited in one instance if the application can, else one URL
	 * after the other; never in bulk, whatever the default. */
	alg_is(&p_chromium, CAP_ALG_NONE, 2, CAP_ALG_DAC, CAP_ALG_DAC);
	alg_is(&p_firefox, CAP_ALG_NONE, 2, CAP_ALG_DAC, CAP_ALG_DAC);
	alg_is(&p_generic, CAP_ALG_NONE, 2, CAP_ALG_SEQ, CAP_ALG_DAC);
	alg_is(&p_bulky, CAP_ALG_NONE, 5, CAP_ALG_SEQ, CAP_ALG_DAC);
	alg_is(&p_fetch, CAP_ALG_NONE, 2, CAP_ALG_SEQ, CAP_ALG_DAC);
	alg_is(NULL, CAP_ALG_NONE, 2, CAP_ALG_SEQ, CAP_ALG_DAC);
	/* one URL: any algorithm but bulk classifies it by the group's flag */
	alg_is(&p_chromium, CAP_ALG_NONE, 1, CAP_ALG_DAC, CAP_ALG_DAC);
	alg_is(&p_generic, CAP_ALG_NONE, 1, CAP_ALG_SEQ, CAP_ALG_SEQ);
	alg_is(&p_bulky, CAP_ALG_NONE, 1, CAP_ALG_SEQ, CAP_ALG_SEQ);
	/* Our server names it: what the application can do of it, else its
	 * default; reported as visited. */
	alg_is(&p_generic, CAP_ALG_BULK, 3, CAP_ALG_BULK, CAP_ALG_BULK);
	alg_is(&p_chromium, CAP_ALG_SEQ, 3, CAP_ALG_SEQ, CAP_ALG_SEQ);
	alg_is(&p_generic, CAP_ALG_DAC, 3, CAP_ALG_SEQ, CAP_ALG_SEQ);
	alg_is(&p_fetch, CAP_ALG_BULK, 3, CAP_ALG_SEQ, CAP_ALG_SEQ);
	alg_is(NULL, CAP_ALG_BULK, 3, CAP_ALG_BULK, CAP_ALG_BULK);
}

/* Uploads a file of `size` bytes part by part, as the controller does. */
static void upload_is(size_t size)
{
	char path[] = "/tmp/test-report-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	unsigned char *data = malloc(size + 1);
	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 7919u >> 3);
	assert_int_equal(write(fd, data, size), (ssize_t)size);

	unsigned char *got = calloc(1, size + 1);
	assert_non_null(got);
	unsigned char buf[REPORT_PART_BYTES];
	uint64_t off = 0;
	size_t parts = 0;
	for (;;) {
		struct cap_msg p;
		ssize_t n = report_part(fd, off, "/var/tmp/x/evidence.zip", buf, &p);
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_true(n <= 8192);
		assert_int_equal(p.type, CAP_MSG_PART);
		assert_int_equal(p.part.start, off);
		assert_int_equal(p.part.end, off + (uint64_t)n);
		char *line;
		size_t len;
		assert_int_equal(cap_msg_encode_to_server(&p, &line, &len), 0);
		assert_true(len < 12 * 1024); /* what NG's parser still takes */
		struct cap_msg back;
		char err[128];
		assert_int_equal(cap_msg_decode_from_client(line, len, &back, err, sizeof(err)), 0);
		assert_true(back.part.data_len == (size_t)n && back.part.start == off);
		memcpy(got + off, back.part.data, back.part.data_len);
		cap_msg_clear(&back);
		free(line);
		off += (uint64_t)n;
		parts++;
	}
	assert_int_equal(off, size);
	assert_int_equal(parts, (size + 8191) / 8192);
	if (size)
		assert_memory_equal(got, data, size);
	assert_int_equal(report_part(-1, 0, "x", buf, &(struct cap_msg){0}), -EBADF);
	free(got);
	free(data);
	close(fd);
}

static void test_parts(void **state)
{
	(void)state;
	upload_is(20000);
	upload_is(8192);
	upload_is(8193);
	upload_is(100);
	upload_is(0);
}

int main(void)
{
	cap_proto_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_items_echo_wire),
	    cmocka_unit_test(test_algorithm),
	    cmocka_unit_test(test_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
