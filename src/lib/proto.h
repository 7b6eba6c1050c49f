/* proto.h - typed messages of the Capture-HPC wire protocol (docs/protocol.md).
 *
 * Owns the translation between one framed message (see frame.h) and a
 * struct cap_msg.  Encoding escapes every attribute and appends the
 * direction's terminator; decoding parses with libxml2 (no network, no DTD,
 * no entity expansion, DOCTYPE rejected) and validates every attribute:
 * numbers fully parsed and range-checked, enums checked, strings bounded.
 * The decoder only parses: sizes, ranges and paths a peer sends are the
 * caller's to judge.  Strings in a decoded message are malloc'ed and owned
 * by it (cap_msg_clear); a message built for encoding may point at borrowed
 * strings and need not be cleared.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "event.h"

#define CAP_PROTO_PORT 7070
#define CAP_PROTO_SERVER_VERSION "2.5"
#define CAP_PROTO_URL_MAX 8192	   /* item url */
#define CAP_PROTO_PATH_MAX 4096	   /* file names, system-event objects */
#define CAP_PROTO_STR_MAX 1024	   /* other free text (exclusion regexes, option values) */
#define CAP_PROTO_NAME_MAX 64	   /* program, option name, ids, action */
#define CAP_PROTO_ITEMS_MAX 1000   /* items per visit-event */
#define CAP_PROTO_PART_MAX 65536   /* decoded bytes per part (original: 8192) */
#define CAP_PROTO_ATTRS_MAX 64     /* attributes per element (the protocol uses at most 12) */

/* Error codes (ErrorCodes.h / ERROR_CODES.java). */
#define CAP_ERR_NETWORK_ERROR 0x10000110u
#define CAP_ERR_PROCESS_ERROR 0x10000111u
#define CAP_ERR_TIMEOUT_ERROR 0x10000112u
#define CAP_ERR_MULTIPLE_ERRORS 0x10000113u
#define CAP_ERR_ATTACH_PROCESS_ERROR 0x10000114u
#define CAP_ERR_EXCEPTION 0x10000200u
#define CAP_ERR_WARNING 0x10000300u
#define CAP_ERR_CLIENT_INACTIVITY 0x10004000u
#define CAP_ERR_VM_STALLED 0x10004100u
#define CAP_ERR_CONNECTION_RESET 0x10004200u
#define CAP_ERR_SOCKET_ERROR 0x10004300u
#define CAP_ERR_INVALID_ERROR_CODE_FROM_CLIENT 0x10006000u
#define CAP_ERR_INVALID_URL 0x10007000u

/* "NETWORK_ERROR" etc.; NULL for an unknown code. */
const char *cap_error_code_name(uint32_t code);
/* Inverse of cap_error_code_name; -EINVAL for an unknown name. */
int cap_error_code_from_name(const char *name, uint32_t *ret);
/* True for a code the original counts as a completed visit (NETWORK,
 * TIMEOUT, MULTIPLE, WARNING): no revert if benign.  All others revert. */
bool cap_error_code_completes_visit(uint32_t code);
/* True if code is one of the codes above. */
bool cap_error_code_known(uint32_t code);

/* The original client's local timestamp "d/M/yyyy H:m:s.ms" (not padded). */
struct cap_ptime {
	int year, month, day;	  /* 1970..9999, 1..12, 1..days in month */
	int hour, min, sec, msec; /* 0..23, 0..59, 0..60, 0..999 */
};
#define CAP_PTIME_STRLEN 32
/* Parses s strictly (decimal fields, range- and calendar-checked). 0/-EINVAL. */
int cap_ptime_parse(const char *s, struct cap_ptime *ret);
/* Formats like the original into buf (>= CAP_PTIME_STRLEN); 0/-ENAMETOOLONG. */
int cap_ptime_format(const struct cap_ptime *t, char *buf, size_t size);
/* Local time of ts (localtime_r). 0/-EINVAL. */
int cap_ptime_from_timespec(const struct timespec *ts, struct cap_ptime *ret);
/* Interprets t as local time (mktime). 0/-EINVAL. */
int cap_ptime_to_timespec(const struct cap_ptime *t, struct timespec *ret);

enum cap_msg_type {
	CAP_MSG_CONNECT = 0,	    /* both */
	CAP_MSG_RECONNECT,	    /* client -> server */
	CAP_MSG_OPTION,		    /* server -> client */
	CAP_MSG_FILE_EXCLUSION,	    /* server -> client */
	CAP_MSG_PROCESS_EXCLUSION,  /* server -> client */
	CAP_MSG_REGISTRY_EXCLUSION, /* server -> client */
	CAP_MSG_VISIT_EVENT,	    /* both */
	CAP_MSG_SYSTEM_EVENT,	    /* client -> server */
	CAP_MSG_PING,		    /* server -> client */
	CAP_MSG_PONG,		    /* client -> server */
	CAP_MSG_FILE,		    /* client -> server */
	CAP_MSG_PART,		    /* client -> server */
	CAP_MSG_FILE_FINISHED,	    /* client -> server */
	CAP_MSG_FILE_ACCEPT,	    /* server -> client */
	CAP_MSG_FILE_REJECT,	    /* server -> client (never sent by the original) */
	CAP_MSG_FILE_OK,	    /* server -> client (never sent by the original) */
	CAP_MSG_FILE_ERROR,	    /* server -> client (never sent by the original) */
	CAP_MSG_TYPE_MAX,
};

enum cap_dir {
	CAP_DIR_TO_CLIENT = 0, /* server -> client, NUL-terminated */
	CAP_DIR_TO_SERVER,     /* client -> server, CRLF-terminated */
};

enum cap_visit_type {
	CAP_VISIT_GROUP = 0, /* server -> client: a group to visit (no type attribute) */
	CAP_VISIT_START,
	CAP_VISIT_FINISH,
	CAP_VISIT_ERROR,
};

enum cap_algorithm {
	CAP_ALG_NONE = 0, /* not given */
	CAP_ALG_SEQ,
	CAP_ALG_DAC,
	CAP_ALG_BULK,
};

/* connect / reconnect.  From the server: server ("2.5").  From the client:
 * vm_server_id and vm_id (strings: see below). */
struct cap_msg_connect {
	char *server;	    /* NULL if absent */
	/* As sent: a decimal int (ours, the original's -DfixIds), a host
	 * address (the original C++ client, e.g. "10.1.1.2"), a name (HSN
	 * Capture-HPC NG) or empty: [A-Za-z0-9._:@-], <= CAP_PROTO_NAME_MAX */
	char *vm_server_id; /* NULL if absent */
	char *vm_id;	    /* NULL if absent */
};

struct cap_msg_option {
	char *name;  /* [A-Za-z0-9._-], <= CAP_PROTO_NAME_MAX */
	char *value; /* <= CAP_PROTO_STR_MAX */
};

struct cap_msg_exclusion {
	bool excluded; /* "+" (ignore matching events) = true, "-" = false */
	char *action;
	char *subject; /* regex */
	char *object;  /* regex */
};

struct cap_visit_item {
	char *id;	    /* server: db id or "null"; NULL if absent */
	char *url;	    /* required; %-decoded if it arrived URL-encoded */
	char *url_wire;	    /* decoded: the url attribute exactly as it arrived, which
			     * a client echoes back (an original server looks items
			     * up by it); NULL if it arrived plain */
	char *program;	    /* NULL if absent */
	bool has_pid;
	pid_t pid;	    /* processId */
	bool has_errors;
	uint32_t major_error; /* major-error-code */
	uint32_t minor_error; /* minor-error-code (often an HRESULT) */
	bool has_time;
	struct cap_ptime time;
	bool has_visited;
	bool visited;
	/* Our extension (docs/protocol.md): client -> server only, on the items
	 * of a visit-event type=finish; decides the item in bulk mode. */
	bool has_malicious;
	bool malicious; /* malicious="0|1" */
};

struct cap_msg_visit {
	char *identifier; /* required; decimal, may be negative */
	char *program;	  /* required */
	enum cap_visit_type type;
	enum cap_algorithm algorithm; /* both; from the server: our extension, NONE if absent */
	bool malicious;	  /* client: malicious="1" */
	bool has_error_code;
	uint32_t error_code; /* decimal on the wire, only with type=error */
	/* server -> client: visit time in seconds; client -> server: timestamp */
	unsigned visit_time;
	bool has_time;
	struct cap_ptime time;
	size_t n_items; /* <= CAP_PROTO_ITEMS_MAX */
	struct cap_visit_item *items;
	/* Our extension (docs/protocol.md), client -> server, bulk finish:
	 * unauthorized events no item could be tied to (sent when > 0); the
	 * items' malicious="0|1" then cover only the events that could be. */
	uint32_t unattributed;
};

struct cap_msg_system {
	struct cap_ptime time;
	/* type, pid, process, action, object1, object2; and cmdline: our
	 * extension attribute `command-line` (process events only, sent when
	 * non-empty, <= CAP_CMDLINE_MAX - 1 bytes; "" when absent) */
	struct cap_event ev;
};

/* file / file-finished / file-accept / file-reject / file-ok / file-error */
struct cap_msg_file {
	char *name;	/* required, <= CAP_PROTO_PATH_MAX (never trust it as a path) */
	bool has_size;
	uint64_t size;
	char *type;	/* e.g. "zip"; NULL if absent */
};

struct cap_msg_part {
	char *name;
	uint64_t start; /* part-start */
	uint64_t end;	/* part-end (as the client wrote it; the caller checks) */
	unsigned char *data; /* decoded base64 (encoding="base64" only) */
	size_t data_len;
};

struct cap_msg {
	enum cap_msg_type type;
	union {
		struct cap_msg_connect connect; /* CONNECT, RECONNECT */
		struct cap_msg_option option;
		struct cap_msg_exclusion exclusion; /* *_EXCLUSION */
		struct cap_msg_visit visit;
		struct cap_msg_system system;
		struct cap_msg_file file; /* FILE, FILE_FINISHED, FILE_ACCEPT/REJECT/OK/ERROR */
		struct cap_msg_part part;
	};
};

/* Initialises libxml2 once (xmlInitParser).  Call from main before any
 * thread decodes; harmless to call more than once from the same thread.
 * Single-threaded callers may skip it (the first decode initialises). */
void cap_proto_init(void);

/* Element name ("visit-event") for a type; NULL if out of range. */
const char *cap_msg_type_name(enum cap_msg_type t);
/* True if messages of type t may travel in direction dir. */
bool cap_msg_allowed(enum cap_msg_type t, enum cap_dir dir);

/* Encodes m as one element with every attribute escaped, followed by "\0"
 * (to client) or "\r\n" (to server).  *ret is malloc'ed; *ret_len counts the
 * terminator.  -EINVAL if m is not valid for that direction (missing
 * required field, value out of range) or -ENOMEM. */
int cap_msg_encode_to_client(const struct cap_msg *m, char **ret, size_t *ret_len);
int cap_msg_encode_to_server(const struct cap_msg *m, char **ret, size_t *ret_len);

/* Decodes one framed message (terminator already removed, as cap_framer_next
 * returns it).  On success fills *ret (to be released with cap_msg_clear).
 * On failure returns -EBADMSG (malformed, unknown element, element not valid
 * in that direction, bad attribute) or -ENOMEM, and writes a short reason
 * into err (if errlen > 0); *ret is untouched. */
int cap_msg_decode_from_client(const char *data, size_t len, struct cap_msg *ret, char *err,
			       size_t errlen);
int cap_msg_decode_from_server(const char *data, size_t len, struct cap_msg *ret, char *err,
			       size_t errlen);

/* Frees what a decoded message owns and zeroes it. */
void cap_msg_clear(struct cap_msg *m);

/* system-event <-> struct cap_event.  ev->time is converted with
 * cap_ptime_from_timespec / cap_ptime_to_timespec (local time); ev->pid is
 * the processId; host_pid and cgroup_id do not travel. */
int cap_msg_system_from_event(const struct cap_event *ev, struct cap_msg *ret);
int cap_msg_system_to_event(const struct cap_msg *m, struct cap_event *ret);
