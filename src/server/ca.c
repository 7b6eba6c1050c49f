/* ca.c - the farm CA, made with libcrypto (no `openssl` program needed).
 *
 * One directory holds everything a farm needs:
 *   ca.pem / ca.key          the CA: CN "Capture farm CA", CA:TRUE pathlen 0
 *   server.pem / server.key  the server: CN and DNS SAN "capture-server",
 *                            extendedKeyUsage serverAuth
 *   hosts/NAME.pem / .key    a client host: CN and DNS SAN NAME (its
 *                            vm-server-id), extendedKeyUsage clientAuth
 * The directory is 0700 and keys 0600, created with O_EXCL: nothing is ever
 * overwritten, so a second `ca init` cannot silently replace a farm's trust.
 *
 * Keys are EC P-256 (ECDSA with SHA-256).  Ed25519 would work in TLS 1.3 with
 * OpenSSL 3.0 too, but P-256 is the one every TLS 1.3 stack must implement
 * (RFC 8446 9.1), so a host certificate also works with other tooling (curl,
 * Python ssl, FIPS builds), and signing costs about the same.
 */
#include "ca.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "macro.h"
#include "tls.h"

#define CA_NAME "Capture farm CA"

static void evp_pkey_freep(EVP_PKEY **p)
{
	EVP_PKEY_free(*p);
}
static void x509_freep(X509 **p)
{
	X509_free(*p);
}
#define _cleanup_pkey_ _cleanup_(evp_pkey_freep)
#define _cleanup_x509_ _cleanup_(x509_freep)

/* Same alphabet as tls_peer_name accepts, so that an issued name always reads back. */
static bool host_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= 64 || s[0] == '.' || s[0] == '-')
		return false;
	if (strcmp(s, TLS_SERVER_NAME) == 0)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return -EPROTO;
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok == 1 ? 0 : -ENOMEM;
}

/* A certificate for key named cn, signed by (issuer, ikey) or self-signed. */
static int make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, unsigned days,
		     const char *not_after, int kind, X509 **ret)
{
	enum { KIND_CA, KIND_SERVER, KIND_CLIENT };
	_cleanup_x509_ X509 *x = X509_new();
	if (!x)
		return -ENOMEM;
	unsigned char serial[16];
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		return -EIO;
	serial[0] &= 0x7f; /* a positive serial */
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
		BN_free(bn);
		return -ENOMEM;
	}
	BN_free(bn);
	X509_set_version(x, X509_VERSION_3);
	/* five minutes back: hosts' clocks are rarely exact */
	time_t now = time(NULL);
	if (not_after) {
		struct tm tm;
		if (ASN1_TIME_set_string_X509(X509_getm_notAfter(x), not_after) != 1 ||
		    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
			return -EINVAL;
		time_t end = timegm(&tm);
		if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, -86400, &end))
			return -EINVAL;
	} else {
		if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, -300, &now) ||
		    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &now))
			return -EINVAL;
	}
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
					0))
		return -ENOMEM;
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_set_pubkey(x, key);
	X509 *iss = issuer ? issuer : x;
	char san[128];
	snprintf(san, sizeof(san), "DNS:%s", cn);
	int r = add_ext(x, iss, NID_subject_key_identifier, "hash");
	if (r == 0)
		r = add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
	if (r == 0 && kind == KIND_CA)
		r = add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
	if (r == 0 && kind == KIND_CA)
		r = add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (r == 0 && kind != KIND_CA)
		r = add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
	if (r == 0 && kind != KIND_CA)
		r = add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
	if (r == 0 && kind != KIND_CA)
		r = add_ext(x, iss, NID_ext_key_usage,
			    kind == KIND_SERVER ? "serverAuth" : "clientAuth");
	if (r == 0 && kind != KIND_CA)
		r = add_ext(x, iss, NID_subject_alt_name, san);
	if (r < 0)
		return r;
	if (X509_sign(x, issuer ? ikey : key, EVP_sha256()) <= 0)
		return -EPROTO;
	*ret = TAKE_PTR(x);
	return 0;
}

/* Writes a PEM file with O_EXCL; mode 0600 for keys, 0644 for certificates. */
static int write_pem(const char *dir, const char *file, EVP_PKEY *key, X509 *cert, char *err,
		     size_t errlen)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, key ? 0600 : 0644);
	if (fd < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
			 errno == EEXIST ? " (refusing to overwrite)" : "");
		return r;
	}
	_cleanup_fclose_ FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -errno;
	}
	int ok =
	    key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
	if (ok != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errlen, "%s: write failed", path);
		return -EIO;
	}
	return 0;
}

static int new_key(EVP_PKEY **ret)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if (!k)
		return -ENOMEM;
	*ret = k;
	return 0;
}

static int issue_pair(const char *dir, const char *base, const char *cn, X509 *ca, EVP_PKEY *cakey,
		      unsigned days, const char *not_after, int kind, char *err, size_t errlen)
{
	_cleanup_pkey_ EVP_PKEY *key = NULL;
	_cleanup_x509_ X509 *cert = NULL;
	char file[PATH_MAX];
	int r = new_key(&key);
	if (r == 0)
		r = make_cert(key, cn, ca, cakey, days, not_after, kind, &cert);
	if (r < 0) {
		snprintf(err, errlen, "cannot make the certificate for %s%s", cn,
			 r == -EINVAL ? " (bad date?)" : "");
		return r;
	}
	snprintf(file, sizeof(file), "%s.key", base);
	r = write_pem(dir, file, key, NULL, err, errlen);
	if (r < 0)
		return r;
	snprintf(file, sizeof(file), "%s.pem", base);
	return write_pem(dir, file, NULL, cert, err, errlen);
}

int ca_init(const char *dir, unsigned days, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return r;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, CA_CERT_FILE);
	if (access(path, F_OK) == 0) {
		snprintf(err, errlen, "%s exists: refusing to overwrite a CA", path);
		return -EEXIST;
	}
	if (chmod(dir, 0700) < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return r;
	}
	_cleanup_pkey_ EVP_PKEY *cakey = NULL;
	_cleanup_x509_ X509 *ca = NULL;
	int r = new_key(&cakey);
	if (r == 0)
		r = make_cert(cakey, CA_NAME, NULL, NULL, days, NULL, 0, &ca);
	if (r < 0) {
		snprintf(err, errlen, "cannot make the CA certificate");
		return r;
	}
	r = write_pem(dir, CA_KEY_FILE, cakey, NULL, err, errlen);
	if (r == 0)
		r = write_pem(dir, CA_CERT_FILE, NULL, ca, err, errlen);
	if (r == 0)
		r = issue_pair(dir, "server", TLS_SERVER_NAME, ca, cakey, days, NULL, 1, err,
			       errlen);
	return r;
}

static int load_ca(const char *dir, X509 **ret_ca, EVP_PKEY **ret_key, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, CA_KEY_FILE);
	int r = tls_check_key_file(path, err, errlen);
	if (r < 0)
		return r;
	_cleanup_fclose_ FILE *kf = fopen(path, "re");
	EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
	if (!key) {
		snprintf(err, errlen, "%s: cannot read the CA key", path);
		return -EPROTO;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, CA_CERT_FILE);
	_cleanup_fclose_ FILE *cf = fopen(path, "re");
	X509 *ca = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
	if (!ca) {
		EVP_PKEY_free(key);
		snprintf(err, errlen, "%s: cannot read the CA certificate", path);
		return -EPROTO;
	}
	*ret_ca = ca;
	*ret_key = key;
	return 0;
}

int ca_issue(const char *dir, const char *name, unsigned days, const char *not_after, char *err,
	     size_t errlen)
{
	if (!host_name_ok(name)) {
		snprintf(err, errlen,
			 "invalid host name \"%s\": 1-63 of [A-Za-z0-9._-], not \"%s\"", name,
			 TLS_SERVER_NAME);
		return -EINVAL;
	}
	_cleanup_pkey_ EVP_PKEY *cakey = NULL;
	_cleanup_x509_ X509 *ca = NULL;
	int r = load_ca(dir, &ca, &cakey, err, errlen);
	if (r < 0)
		return r;
	char hosts[PATH_MAX];
	snprintf(hosts, sizeof(hosts), "%s/%s", dir, CA_HOSTS_DIR);
	if (mkdir(hosts, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", hosts, strerror(errno));
		return r;
	}
	return issue_pair(hosts, name, name, ca, cakey, days, not_after, 2, err, errlen);
}

static void ca_usage(FILE *f)
{
	fprintf(f, "usage: capture-server ca init DIR [--days N]\n"
		   "       capture-server ca issue DIR NAME [--days N]\n"
		   "  init   a farm CA and the server's certificate in DIR (0700)\n"
		   "  issue  DIR/hosts/NAME.pem and NAME.key for the host whose vm-server-id\n"
		   "         is NAME\n"
		   "  --days N  validity (init: 3650, issue: 825)\n");
}

int ca_main(int argc, char **argv)
{
	/* --not-after is for tests (expired certificates); not in the usage on purpose */
	static const struct option longopts[] = {{"days", required_argument, NULL, 'd'},
						 {"not-after", required_argument, NULL, 'a'},
						 {"help", no_argument, NULL, 'h'},
						 {0}};
	const char *not_after = NULL;
	long days = -1;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;
		switch (ch) {
		case 'd':
			errno = 0;
			days = strtol(optarg, &end, 10);
			if (errno || *end || days < 1 || days > 36500) {
				log_warnx("invalid --days %s", optarg);
				return 2;
			}
			break;
		case 'a':
			not_after = optarg;
			break;
		case 'h':
			ca_usage(stdout);
			return 0;
		default:
			ca_usage(stderr);
			return 2;
		}
	}
	char err[512] = "";
	int r;
	if (argc - optind == 2 && strcmp(argv[optind], "init") == 0) {
		r = ca_init(argv[optind + 1], days > 0 ? (unsigned)days : 3650, err, sizeof(err));
	} else if (argc - optind == 3 && strcmp(argv[optind], "issue") == 0) {
		r = ca_issue(argv[optind + 1], argv[optind + 2], days > 0 ? (unsigned)days : 825,
			     not_after, err, sizeof(err));
	} else {
		ca_usage(stderr);
		return 2;
	}
	if (r < 0) {
		log_warnx("ca: %s", err[0] ? err : strerror(-r));
		return 1;
	}
	return 0;
}
