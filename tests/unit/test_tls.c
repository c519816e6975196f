/*
 * test_tls.c - tls.c and the files behind it (tls_*.c) against a
 * throwaway CA made at test time by fixtures/tls-mkca.sh: loading and
 * checking certificates, the profile,
 * SNI selection, real handshakes between two SSL objects over a BIO
 * pair, and session tickets shared by separately built contexts.
 *
 * The CA is made once, before the tests fork, in a temporary directory
 * passed to them in PORTER_TLS_CA (made here unless already set) and
 * removed afterwards. Times of the ticket ring come from an injected
 * clock, never from sleeping.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "porter.h"
#include "tls.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define leaks_found()	__lsan_do_recoverable_leak_check()
#else
#define leaks_found()	0
#endif

#define ERRLEN	1024

/* ---- the throwaway CA --------------------------------------------------- */

static char made_dir[PATH_MAX];

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	const char *f = getenv("FIXTURES");
	char cmd[PATH_MAX * 2 + 32];
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	if (getenv("PORTER_TLS_CA") != NULL)
		return;
	snprintf(made_dir, sizeof(made_dir), "%s/porter-tls-XXXXXX", tmp);
	if (mkdtemp(made_dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(cmd, sizeof(cmd), "sh '%s/tls-mkca.sh' '%s'",
	    f && *f ? f : "tests/unit/fixtures", made_dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_tls: %s failed\n", cmd);
		exit(1);
	}
	setenv("PORTER_TLS_CA", made_dir, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	char cmd[PATH_MAX + 16];

	if (made_dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", made_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "test_tls: cannot remove %s\n", made_dir);
	}
}

/* A file of the CA; up to eight paths live at once. */
static const char *
ca(const char *name)
{
	static char buf[8][PATH_MAX];
	static int i;
	const char *d = getenv("PORTER_TLS_CA");

	cr_assert_not_null(d, "PORTER_TLS_CA not set");
	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", d, name);
	return buf[i];
}

/* ---- a configuration with three sites -------------------------------------- */

static char *names0[] = { "example.org", "www.example.org" };
static char *names1[] = { "*.example.net", "example.net" };
static char *names2[] = { "other.test" };
static struct conf_site sites[] = {
	{ .names = names0, .nnames = 2 },
	{ .names = names1, .nnames = 2 },
	{ .names = names2, .nnames = 1 },
};
static struct conf conf = { .sites = sites, .nsites = 3, .default_site = 0 };

/* Site 0 ECDSA, site 1 RSA, site 2 none. */
static struct tls *
build(const struct tls_opts *o, char *err)
{
	struct tls_site ts[3] = {
		{ ca("ec-full.pem"), ca("ec.key"), NULL },
		{ ca("rsa-full.pem"), ca("rsa.key"), NULL },
		{ NULL, NULL, NULL },
	};

	return tls_new(&conf, ts, o, err, ERRLEN);
}

static struct tls *
build_ok(const struct tls_opts *o)
{
	char err[ERRLEN] = "";
	struct tls *t = build(o, err);

	cr_assert_not_null(t, "tls_new: %s", err);
	return t;
}

/* One site with the given pair: NULL and err filled, or the contexts. */
static struct tls *
build_one(const char *cert, const char *key, char *err)
{
	struct tls_site ts[3] = { { cert, key, NULL }, { NULL, NULL, NULL }, { NULL, NULL, NULL } };
	struct tls_opts o = { 0 };

	err[0] = '\0';
	return tls_new(&conf, ts, &o, err, ERRLEN);
}

static void
build_fails(const char *cert, const char *key, const char *want)
{
	char err[ERRLEN];
	struct tls *t = build_one(cert, key, err);

	cr_assert_null(t, "%s + %s loaded", cert, key);
	cr_assert(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
	cr_assert(ERR_peek_error() == 0, "OpenSSL error queue left non-empty");
}

/* ---- loading --------------------------------------------------------------- */

Test(tls, ecdsa_and_rsa_load)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	const struct tls_cert_info *ec, *rsa;
	char line[512];

	cr_assert_eq(tls_count(t), 2);
	ec = tls_info(t, 0);
	rsa = tls_info(t, 1);
	cr_assert_str_eq(ec->key_type, "ECDSA P-256");
	cr_assert_str_eq(rsa->key_type, "RSA 2048");
	cr_assert_str_eq(ec->subject, "CN=example.org");
	cr_assert_eq(ec->nnames, 2);
	cr_assert_str_eq(ec->names, "example.org, www.example.org");
	cr_assert_str_eq(rsa->names, "example.net, *.example.net");
	/* 90 days from now, give or take the second the CA was made in. */
	cr_assert(ec->days_left == 89 || ec->days_left == 90, "%ld", ec->days_left);
	cr_assert_eq(ec->warn, 0, "warn %#x", ec->warn);
	cr_assert_eq(rsa->warn, 0, "warn %#x (%s)", rsa->warn, rsa->uncovered);
	cr_assert_eq(tls_summary(t, 0, line, sizeof(line)), 0);
	cr_assert(strstr(line, "ec-full.pem: CN=example.org, 2 names (example.org, "
	    "www.example.org), ECDSA P-256, expires ") != NULL, "%s", line);
	cr_assert(strstr(line, "days left)") != NULL, "%s", line);
	cr_assert_null(tls_info(t, 2));
	tls_free(t);
	tls_free(NULL);
	cr_assert_eq(leaks_found(), 0);
}

Test(tls, sites_sharing_a_pair_share_a_context)
{
	struct tls_site ts[3] = {
		{ ca("ec-full.pem"), ca("ec.key"), NULL },
		{ ca("ec-full.pem"), ca("ec.key"), NULL },
		{ ca("rsa-full.pem"), ca("rsa.key"), NULL },
	};
	struct tls_opts o = { 0 };
	char err[ERRLEN];
	struct tls *t = tls_new(&conf, ts, &o, err, sizeof(err));

	cr_assert_not_null(t, "%s", err);
	cr_assert_eq(tls_count(t), 2);
	/* Site 1's names are not on the ECDSA certificate: said, not refused. */
	cr_assert(tls_info(t, 0)->warn & TLS_WARN_NAME);
	cr_assert_str_eq(tls_info(t, 0)->uncovered, "*.example.net");
	/* Site 2 (other.test) is not on the RSA one either. */
	cr_assert_str_eq(tls_info(t, 1)->uncovered, "other.test");
	tls_free(t);
}

Test(tls, many_names_are_cut_for_the_log)
{
	char err[ERRLEN];
	struct tls *t = build_one(ca("many-full.pem"), ca("many.key"), err);
	const struct tls_cert_info *in;
	size_t n;

	cr_assert_not_null(t, "%s", err);
	in = tls_info(t, 0);
	cr_assert_eq(in->nnames, 31);
	n = strlen(in->names);
	cr_assert(n < sizeof(in->names));
	cr_assert(strncmp(in->names, "example.org, name-1.example.org, ", 33) == 0,
	    "%s", in->names);
	/* Whole names, then one "...", nothing after it. */
	cr_assert(n > 5 && strcmp(in->names + n - 5, ", ...") == 0, "%s", in->names);
	cr_assert_eq(strstr(in->names, "...") - in->names, (long)n - 3);
	cr_assert(strstr(in->names, "name-30.") == NULL, "%s", in->names);
	tls_free(t);
}

Test(tls, key_mismatch)
{
	build_fails(ca("ec-full.pem"), ca("other.key"), "does not match certificate");
	/* Another key type altogether. */
	build_fails(ca("ec-full.pem"), ca("rsa.key"), "does not match certificate");
	build_fails(ca("rsa-full.pem"), ca("ec.key"), "does not match certificate");
}

Test(tls, missing_files)
{
	char want[PATH_MAX + 64];

	snprintf(want, sizeof(want), "certificate %s: No such file or directory",
	    ca("nope.pem"));
	build_fails(ca("nope.pem"), ca("ec.key"), want);
	snprintf(want, sizeof(want), "key %s: No such file or directory", ca("nope.key"));
	build_fails(ca("ec-full.pem"), ca("nope.key"), want);
}

Test(tls, not_pem)
{
	char want[PATH_MAX + 64];

	snprintf(want, sizeof(want), "certificate %s: no certificate found (error:",
	    ca("ec.key"));
	build_fails(ca("ec.key"), ca("ec.key"), want);
	snprintf(want, sizeof(want), "key %s: no private key found (error:",
	    ca("ec.pem"));
	build_fails(ca("ec-full.pem"), ca("ec.pem"), want);
}

Test(tls, encrypted_key_is_refused_without_prompting)
{
	char want[PATH_MAX + 64];

	snprintf(want, sizeof(want), "key %s: encrypted with a passphrase; porter "
	    "needs it unencrypted", ca("enc.key"));
	build_fails(ca("ec-full.pem"), ca("enc.key"), want);
}

/* The forms a key file comes in, all read as PEM_read_bio_PrivateKey() reads them. */
Test(tls, key_file_forms)
{
	static const char *ok[][2] = {
		{ "ec-full.pem", "ec-sec1.key" },	/* SEC 1 */
		{ "rsa-full.pem", "rsa-pkcs1.key" },	/* PKCS #1 */
		{ "ec-full.pem", "ec-params.key" },	/* parameters first */
		{ "ec-full.pem", "ec-combined.pem" },	/* certificates first */
		{ "ec-combined.pem", "ec-combined.pem" },	/* and as the certificate */
	};
	char err[ERRLEN], want[PATH_MAX + 64];
	struct tls *t;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		t = build_one(ca(ok[i][0]), ca(ok[i][1]), err);
		cr_assert_not_null(t, "%s + %s: %s", ok[i][0], ok[i][1], err);
		cr_assert_eq(ERR_peek_error(), 0);
		tls_free(t);
	}
	snprintf(want, sizeof(want), "key %s: encrypted with a passphrase; porter "
	    "needs it unencrypted", ca("enc-trad.key"));
	build_fails(ca("ec-full.pem"), ca("enc-trad.key"), want);
}

Test(tls, broken_chain)
{
	/* Another CA's intermediate after the leaf. */
	build_fails(ca("broken.pem"), ca("ec.key"),
	    "the chain in the file is broken at certificate 1: "
	    "unable to get local issuer certificate");
	/* The intermediate first: the "leaf" is then a CA and the key fits nothing. */
	build_fails(ca("reversed.pem"), ca("ec.key"), "chain in the file is broken");
}

Test(tls, client_only_certificate)
{
	build_fails(ca("client-full.pem"), ca("client.key"), "not for TLS servers");
	build_fails(ca("client.pem"), ca("client.key"), "not for TLS servers");
}

Test(tls, leaf_without_intermediate_is_a_warning)
{
	char err[ERRLEN], line[512];
	struct tls *t = build_one(ca("ec.pem"), ca("ec.key"), err);

	cr_assert_not_null(t, "%s", err);
	cr_assert_eq(tls_info(t, 0)->warn, TLS_WARN_NO_CHAIN);
	cr_assert_eq(tls_summary(t, 0, line, sizeof(line)), 1);
	cr_assert(strstr(line, "; no intermediate certificate in the file") != NULL,
	    "%s", line);
	tls_free(t);
}

/*
 * Loaded and served (refusing it would stop plain HTTP too, and the
 * ACME challenge that renews it), but said loudly.
 */
Test(tls, expired_certificate)
{
	char err[ERRLEN], line[512];
	struct tls *t = build_one(ca("expired-full.pem"), ca("expired.key"), err);
	const struct tls_cert_info *in;

	cr_assert_not_null(t, "%s", err);
	in = tls_info(t, 0);
	cr_assert(in->warn & TLS_WARN_EXPIRED, "warn %#x", in->warn);
	cr_assert(in->days_left <= -30 && in->days_left >= -31, "%ld", in->days_left);
	cr_assert_eq(tls_summary(t, 0, line, sizeof(line)), 2);
	cr_assert(strstr(line, ", EXPIRED ") != NULL, "%s", line);
	cr_assert(strstr(line, " days ago)") != NULL, "%s", line);
	tls_free(t);
}

Test(tls, no_site_with_a_certificate)
{
	struct tls_site ts[3] = { { NULL, NULL, NULL }, { NULL, NULL, NULL }, { NULL, NULL, NULL } };
	struct tls_opts o = { 0 };
	char err[ERRLEN];

	cr_assert_null(tls_new(&conf, ts, &o, err, sizeof(err)));
	cr_assert_str_eq(err, "TLS: no site has a certificate");
	ts[0].certificate = ca("ec-full.pem");
	cr_assert_null(tls_new(&conf, ts, &o, err, sizeof(err)));
	cr_assert(strstr(err, ": no key") != NULL, "%s", err);
}

/* ---- settings --------------------------------------------------------------- */

static void
opts_fail(const struct tls_opts *o, const char *want)
{
	char err[ERRLEN] = "";
	struct tls *t = build(o, err);

	cr_assert_null(t, "loaded despite \"%s\"", want);
	cr_assert(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

Test(tls, bad_overrides)
{
	struct tls_opts o = { 0 };

	o.ciphers = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES129-GCM-SHA256";
	opts_fail(&o, "ciphers \"ECDHE-RSA-AES129-GCM-SHA256\": matches no TLS 1.2 "
	    "cipher (error:");
	o.ciphers = "NOPE";
	opts_fail(&o, "ciphers \"NOPE\": matches no TLS 1.2 cipher (error:");
	o.ciphers = "ECDHE+AESGCM:!aNULL:@STRENGTH";	/* editing entries are fine */
	cr_assert_not_null(build_ok(&o));
	o.ciphers = NULL;

	o.ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_512_GCM";
	opts_fail(&o, "ciphersuites \"TLS_AES_512_GCM\": is not a TLS 1.3 cipher suite");
	o.ciphersuites = "ECDHE-RSA-AES128-GCM-SHA256";	/* a TLS 1.2 name */
	opts_fail(&o, "is not a TLS 1.3 cipher suite");
	o.ciphersuites = "";
	opts_fail(&o, "ciphersuites: no TLS 1.3 cipher suite");
	o.protocols = TLS_PROTO_TLS12;			/* fine without 1.3 */
	cr_assert_not_null(build_ok(&o));
	o.ciphersuites = NULL;
	o.protocols = 0;

	o.groups = "X25519:P-999";
	opts_fail(&o, "groups: unknown or unusable group");
	o.groups = "P-384";
	cr_assert_not_null(build_ok(&o));
	o.groups = NULL;

	o.protocols = 0x04;
	opts_fail(&o, "protocols: only TLSv1.2 and TLSv1.3 are supported");

	cr_assert_eq(tls_protocol("TLSv1.2"), TLS_PROTO_TLS12);
	cr_assert_eq(tls_protocol("TLSv1.3"), TLS_PROTO_TLS13);
	cr_assert_eq(tls_protocol("TLSv1.1"), 0);
	cr_assert_eq(tls_protocol("tlsv1.3"), 0);
}

/* The profile as OpenSSL settings, in the one context every site's handshake uses. */
Test(tls, settings)
{
	static struct tls_ticket_keys keys;
	struct tls_opts o = { .keys = &keys };
	struct tls *t;
	SSL_CTX *ctx;
	uint64_t want = SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;

	cr_assert_eq(tls_ticket_init(&keys, 43200, tls_clock()), 0);
	t = build_ok(&o);
	ctx = tls_default_ctx(t);
	cr_assert_eq(SSL_CTX_get_options(ctx) & want, want);
	cr_assert_eq(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET, 0);
	cr_assert_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	cr_assert_eq(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
	cr_assert_eq(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
	cr_assert_eq(SSL_CTX_get_max_early_data(ctx), 0);
	cr_assert_eq(SSL_CTX_get_recv_max_early_data(ctx), 0);
	cr_assert_eq(SSL_CTX_get_num_tickets(ctx), 1);
	cr_assert_eq(SSL_CTX_get_timeout(ctx), 43200);
	cr_assert_eq(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS,
	    SSL_MODE_RELEASE_BUFFERS);
	/* The context carries the default site's certificate. */
	cr_assert_eq(SSL_CTX_get0_certificate(ctx), tls_cert_for_name(t, NULL));
	tls_free(t);

	o.profile = TLS_PROFILE_MODERN;
	o.keys = NULL;
	t = build_ok(&o);
	cr_assert_eq(SSL_CTX_get_min_proto_version(tls_default_ctx(t)), TLS1_3_VERSION);
	cr_assert_eq(SSL_CTX_get_num_tickets(tls_default_ctx(t)), 0);
	cr_assert_eq(SSL_CTX_get_options(tls_default_ctx(t)) & SSL_OP_NO_TICKET,
	    SSL_OP_NO_TICKET);
	tls_free(t);

	/* Expert protocols override the profile. */
	o.protocols = TLS_PROTO_TLS12;
	t = build_ok(&o);
	cr_assert_eq(SSL_CTX_get_min_proto_version(tls_default_ctx(t)), TLS1_2_VERSION);
	cr_assert_eq(SSL_CTX_get_max_proto_version(tls_default_ctx(t)), TLS1_2_VERSION);
	tls_free(t);
}

/* ---- SNI -------------------------------------------------------------------- */

Test(tls, site_matcher)
{
	struct {
		const char *host;
		size_t site;
	} cases[] = {
		{ "example.org", 0 }, { "EXAMPLE.Org", 0 }, { "www.example.org.", 0 },
		{ "example.org..", 0 }, { "example.net", 1 }, { "a.example.net", 1 },
		{ "A.B.Example.NET.", 1 }, { "other.test", 2 }, { "x.example.org", 3 },
		{ "xexample.net", 3 }, { ".example.net", 3 }, { "", 3 }, { ".", 3 },
		{ "example", 3 },
	};
	char *n0[] = { "a.b.example.com" }, *n1[] = { "*.example.com" },
	    *n2[] = { "*.b.example.com" };
	struct conf_site s[] = { { .names = n0, .nnames = 1 },
		{ .names = n1, .nnames = 1 }, { .names = n2, .nnames = 1 } };
	struct conf c = { .sites = s, .nsites = 3 };
	char longname[300];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(http_site_match(&conf, cases[i].host, strlen(cases[i].host)),
		    cases[i].site, "%s", cases[i].host);
	/* Exact beats wildcard; the longest wildcard wins. */
	cr_assert_eq(http_site_match(&c, "a.b.example.com", 15), 0);
	cr_assert_eq(http_site_match(&c, "c.b.example.com", 15), 2);
	cr_assert_eq(http_site_match(&c, "c.example.com", 13), 1);
	/* len, not the terminator, bounds the name (Host with its port cut off). */
	cr_assert_eq(http_site_match(&conf, "example.org:443", 11), 0);
	memset(longname, 'a', sizeof(longname));
	memcpy(longname + sizeof(longname) - 12, ".example.net", 12);
	cr_assert_eq(http_site_match(&conf, longname, sizeof(longname)), 3);
}

Test(tls, sni_picks_by_name)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	X509 *ec = tls_cert_for_name(t, "example.org"), *rsa;

	rsa = tls_cert_for_name(t, "example.net");
	cr_assert_neq(ec, rsa);
	cr_assert_eq(SSL_CTX_get0_certificate(tls_default_ctx(t)), ec);
	cr_assert_eq(tls_cert_for_name(t, "WWW.Example.Org."), ec);
	cr_assert_eq(tls_cert_for_name(t, "a.example.net"), rsa);
	cr_assert_eq(tls_cert_for_name(t, "B.A.EXAMPLE.NET"), rsa);
	/* No SNI, unknown name, or a site without a certificate: the default. */
	cr_assert_eq(tls_cert_for_name(t, NULL), ec);
	cr_assert_eq(tls_cert_for_name(t, "unknown.invalid"), ec);
	cr_assert_eq(tls_cert_for_name(t, "other.test"), ec);
	tls_free(t);

	/* The default site's certificate is the default... */
	conf.default_site = 1;
	t = build_ok(&o);
	cr_assert_eq(tls_cert_for_name(t, NULL), tls_cert_for_name(t, "a.example.net"));
	cr_assert_eq(SSL_CTX_get0_certificate(tls_default_ctx(t)),
	    tls_cert_for_name(t, NULL));
	tls_free(t);
	/* ...or the first site's that has one. */
	conf.default_site = 2;
	t = build_ok(&o);
	cr_assert_eq(tls_cert_for_name(t, "unknown.invalid"),
	    tls_cert_for_name(t, "example.org"));
	tls_free(t);
	conf.default_site = 0;
}

/* ---- handshakes over a BIO pair -------------------------------------------- */

struct client {
	int		 min, max;	/* protocol versions; 0: library's */
	const char	*sni;
	const char	*ciphers;	/* TLS 1.2 */
	const char	*groups;
	const char	*alpn;		/* wire format */
	unsigned	 alpn_len;
	SSL_SESSION	*session;	/* to resume */
	int		 weak;		/* security level 0, for old protocols */
	int		 any_host;	/* do not check the name against sni */
};

struct result {
	int		 ok;
	int		 reused;
	char		 version[16];
	char		 cipher[64];
	int		 group;
	char		 alpn[16];
	char		 subject[128];
	long		 verify;
	SSL_SESSION	*session;	/* the client's, after reading the tickets */
	unsigned long	 server_error;
};

static void
handshake(SSL_CTX *sctx, const struct client *cl, struct result *r)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c, *s;
	BIO *cb, *sb;
	unsigned char buf[16];
	const unsigned char *alpn;
	unsigned alpn_len;
	int i, rc, rs, c_done = 0, s_done = 0, e;
	X509 *peer;

	memset(r, 0, sizeof(*r));
	cr_assert_not_null(cctx);
	cr_assert(SSL_CTX_load_verify_locations(cctx, ca("root.pem"), NULL));
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	if (cl->weak) {
		SSL_CTX_set_security_level(cctx, 0);
		SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0");
	}
	if (cl->min)
		SSL_CTX_set_min_proto_version(cctx, cl->min);
	if (cl->max)
		SSL_CTX_set_max_proto_version(cctx, cl->max);
	if (cl->ciphers)
		cr_assert(SSL_CTX_set_cipher_list(cctx, cl->ciphers));
	if (cl->groups)
		cr_assert(SSL_CTX_set1_groups_list(cctx, cl->groups));
	if (cl->alpn)
		cr_assert_eq(SSL_CTX_set_alpn_protos(cctx,
		    (const unsigned char *)cl->alpn, cl->alpn_len), 0);

	c = SSL_new(cctx);
	s = SSL_new(sctx);
	cr_assert(BIO_new_bio_pair(&cb, 0, &sb, 0));
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	if (cl->sni) {
		SSL_set_tlsext_host_name(c, cl->sni);
		if (!cl->any_host)
			SSL_set1_host(c, cl->sni);
	}
	if (cl->session)
		cr_assert(SSL_set_session(c, cl->session));

	ERR_clear_error();
	for (i = 0; i < 50 && !(c_done && s_done); i++) {
		if (!c_done) {
			rc = SSL_do_handshake(c);
			if (rc == 1)
				c_done = 1;
			else if ((e = SSL_get_error(c, rc)) != SSL_ERROR_WANT_READ &&
			    e != SSL_ERROR_WANT_WRITE)
				break;
		}
		if (!s_done) {
			rs = SSL_do_handshake(s);
			if (rs == 1)
				s_done = 1;
			else if ((e = SSL_get_error(s, rs)) != SSL_ERROR_WANT_READ &&
			    e != SSL_ERROR_WANT_WRITE) {
				r->server_error = ERR_peek_error();
				break;
			}
		}
	}
	ERR_clear_error();
	if (c_done && s_done) {
		r->ok = 1;
		r->reused = SSL_session_reused(c);
		cr_assert_eq(SSL_session_reused(s), r->reused);
		snprintf(r->version, sizeof(r->version), "%s", SSL_get_version(s));
		snprintf(r->cipher, sizeof(r->cipher), "%s", SSL_get_cipher_name(s));
		r->group = SSL_get_negotiated_group(s);
		SSL_get0_alpn_selected(c, &alpn, &alpn_len);
		snprintf(r->alpn, sizeof(r->alpn), "%.*s", (int)alpn_len, alpn);
		r->verify = SSL_get_verify_result(c);
		if ((peer = SSL_get0_peer_certificate(c)) != NULL)
			X509_NAME_oneline(X509_get_subject_name(peer), r->subject,
			    sizeof(r->subject));
		/* TLS 1.3 tickets come after the handshake: read them. */
		cr_assert_eq(SSL_write(s, "hi", 2), 2);
		cr_assert_eq(SSL_read(c, buf, sizeof(buf)), 2);
		r->session = SSL_get1_session(c);
		/* Freed without close_notify, a session is marked not resumable. */
		SSL_shutdown(c);
		SSL_shutdown(s);
	}
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
}

static int
allowed(const char *name, const char *list)
{
	size_t n = strlen(name);
	const char *p;

	for (p = list; (p = strstr(p, name)) != NULL; p += n)
		if ((p == list || p[-1] == ':') && (p[n] == ':' || p[n] == '\0'))
			return 1;
	return 0;
}

#define ALLOWED12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define ALLOWED13 "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

static int
group_allowed(int nid)
{
	return nid == NID_X25519 || nid == NID_X9_62_prime256v1 || nid == NID_secp384r1;
}

Test(tls, handshake_tls13)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	struct client cl = { .sni = "www.example.org", .alpn = "\x02h2\x08http/1.1",
		.alpn_len = 12 };
	struct result r;

	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok, "handshake failed");
	cr_assert_str_eq(r.version, "TLSv1.3");
	cr_assert(allowed(r.cipher, ALLOWED13), "%s", r.cipher);
	cr_assert_eq(r.group, NID_X25519, "group %d", r.group);
	cr_assert_str_eq(r.alpn, "http/1.1");
	cr_assert_eq(r.verify, X509_V_OK, "%s", X509_verify_cert_error_string(r.verify));
	cr_assert_str_eq(r.subject, "/CN=example.org");
	cr_assert_not(r.reused);
	SSL_SESSION_free(r.session);
	tls_free(t);
	cr_assert_eq(leaks_found(), 0);
}

Test(tls, handshake_tls12_sni_rsa)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	struct client cl = { .sni = "api.example.net", .max = TLS1_2_VERSION };
	struct result r;

	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok, "handshake failed");
	cr_assert_str_eq(r.version, "TLSv1.2");
	cr_assert(allowed(r.cipher, ALLOWED12), "%s", r.cipher);
	cr_assert(strncmp(r.cipher, "ECDHE-RSA-", 10) == 0, "%s", r.cipher);
	cr_assert(group_allowed(r.group), "group %d", r.group);
	cr_assert_eq(r.verify, X509_V_OK, "%s", X509_verify_cert_error_string(r.verify));
	cr_assert_str_eq(r.subject, "/CN=example.net");
	cr_assert_str_eq(r.alpn, "");
	SSL_SESSION_free(r.session);

	/* The server's order decides: P-256 before P-384. */
	cl.groups = "P-384:P-256";
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	cr_assert_eq(r.group, NID_X9_62_prime256v1, "group %d", r.group);
	SSL_SESSION_free(r.session);
	tls_free(t);
}

Test(tls, no_sni_and_unknown_name_get_the_default)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	struct client cl = { 0 };
	struct result r;

	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	cr_assert_str_eq(r.subject, "/CN=example.org");
	SSL_SESSION_free(r.session);
	cl.sni = "EXAMPLE.NET";		/* case ignored */
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	cr_assert_str_eq(r.subject, "/CN=example.net");
	SSL_SESSION_free(r.session);
	/* Unknown: the default certificate, which a checking client rejects. */
	cl.sni = "unknown.invalid";
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert_not(r.ok);
	cl.any_host = 1;
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	cr_assert_str_eq(r.subject, "/CN=example.org");
	SSL_SESSION_free(r.session);
	/* A site without a certificate: the default too. */
	cl.sni = "other.test";
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	cr_assert_str_eq(r.subject, "/CN=example.org");
	SSL_SESSION_free(r.session);
	tls_free(t);
}

/* A copy of a CA file under a name of this test's own (dst), by rename. */
static const char *
copy_as(const char *from, const char *to, char dst[PATH_MAX])
{
	char cmd[PATH_MAX * 3];

	snprintf(dst, PATH_MAX, "%s", ca(to));
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", ca(from),
	    dst, dst, dst);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	return dst;
}

/*
 * A reload (tls_opts.reuse) takes the certificates whose files are
 * unchanged as they are: the same objects, which outlive the
 * generation that loaded them. A file replaced is read again.
 */
Test(tls, unchanged_files_are_shared_with_the_next_generation)
{
	struct tls_site ts[3] = { { NULL, NULL, NULL }, { NULL, NULL, NULL },
		{ NULL, NULL, NULL } };
	struct tls_opts o = { 0 };
	struct client cl = { .sni = "example.net" };
	struct result r;
	char err[ERRLEN], cert[PATH_MAX], key[PATH_MAX], rcert[PATH_MAX],
	    rkey[PATH_MAX];
	struct tls *a, *b, *c;
	X509 *ec_a, *rsa_a;

	/* Paths of their own: ca()'s buffers are reused. */
	snprintf(rcert, sizeof(rcert), "%s", ca("rsa-full.pem"));
	snprintf(rkey, sizeof(rkey), "%s", ca("rsa.key"));
	ts[1].certificate = rcert;
	ts[1].key = rkey;
	ts[0].certificate = copy_as("ec-full.pem", "shared-ec.pem", cert);
	ts[0].key = copy_as("ec.key", "shared-ec.key", key);
	cr_assert_not_null(a = tls_new(&conf, ts, &o, err, sizeof(err)), "%s", err);
	ec_a = tls_cert_for_name(a, "example.org");
	rsa_a = tls_cert_for_name(a, "example.net");
	cr_assert_not(tls_reused(a, 0));

	o.reuse = a;
	cr_assert_not_null(b = tls_new(&conf, ts, &o, err, sizeof(err)), "%s", err);
	cr_assert(tls_reused(b, 0));
	cr_assert(tls_reused(b, 1));
	cr_assert_eq(tls_cert_for_name(b, "example.org"), ec_a);
	cr_assert_eq(tls_cert_for_name(b, "example.net"), rsa_a);
	cr_assert_str_eq(tls_info(b, 0)->subject, tls_info(a, 0)->subject);
	/* The old generation goes; the new one serves with what it shares. */
	tls_free(a);
	handshake(tls_default_ctx(b), &cl, &r);
	cr_assert(r.ok);
	cr_assert_str_eq(r.subject, "/CN=example.net");
	cr_assert_eq(r.verify, X509_V_OK);
	SSL_SESSION_free(r.session);

	/* A renewal (another file by rename) is read; the unchanged one is not. */
	copy_as("many-full.pem", "shared-ec.pem", cert);
	copy_as("many.key", "shared-ec.key", key);
	o.reuse = b;
	cr_assert_not_null(c = tls_new(&conf, ts, &o, err, sizeof(err)), "%s", err);
	cr_assert_not(tls_reused(c, 0));
	cr_assert(tls_reused(c, 1));
	cr_assert_neq(tls_cert_for_name(c, "example.org"), ec_a);
	cr_assert_eq(tls_cert_for_name(c, "example.net"), rsa_a);
	cr_assert_eq(tls_info(c, 0)->nnames, 31);
	tls_free(b);
	tls_free(c);
	cr_assert_eq(leaks_found(), 0);
}

/*
 * A client whose first key share the server does not take gets a
 * HelloRetryRequest and sends a second ClientHello (RFC 8446 4.1.4):
 * the SNI callback runs again and must keep the site's certificate.
 */
Test(tls, sni_choice_survives_hello_retry)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	struct client cl = { .sni = "a.example.net", .groups = "X448:P-256" };
	struct result r;

	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok, "handshake failed");
	cr_assert_str_eq(r.version, "TLSv1.3");
	cr_assert_eq(r.group, NID_X9_62_prime256v1, "group %d", r.group);
	cr_assert_str_eq(r.subject, "/CN=example.net");
	cr_assert_eq(r.verify, X509_V_OK, "%s", X509_verify_cert_error_string(r.verify));
	SSL_SESSION_free(r.session);
	tls_free(t);
}

Test(tls, alpn_without_http11_goes_on_without_alpn)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	struct client cl = { .alpn = "\x02h2", .alpn_len = 3 };
	struct result r;

	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	cr_assert_str_eq(r.alpn, "");
	SSL_SESSION_free(r.session);
	tls_free(t);
}

Test(tls, refused_clients)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	struct client cl = { .min = TLS1_1_VERSION, .max = TLS1_1_VERSION, .weak = 1 };
	struct result r;

	/* A TLS 1.1 ClientHello (the client's own level lowered to send it). */
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert_not(r.ok, "TLS 1.1 accepted");
	cr_assert_eq(ERR_GET_REASON(r.server_error), SSL_R_UNSUPPORTED_PROTOCOL,
	    "%s", ERR_reason_error_string(r.server_error));

	/* TLS 1.2 with CBC suites only. */
	memset(&cl, 0, sizeof(cl));
	cl.max = TLS1_2_VERSION;
	cl.ciphers = "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA256";
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert_not(r.ok, "CBC suite accepted");
	cr_assert_eq(ERR_GET_REASON(r.server_error), SSL_R_NO_SHARED_CIPHER);

	/* A group outside the list. */
	memset(&cl, 0, sizeof(cl));
	cl.groups = "P-521";
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert_not(r.ok, "P-521 accepted");
	tls_free(t);
}

Test(tls, modern_profile_is_tls13_only)
{
	struct tls_opts o = { .profile = TLS_PROFILE_MODERN };
	struct tls *t = build_ok(&o);
	struct client cl = { .max = TLS1_2_VERSION };
	struct result r;

	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert_not(r.ok, "TLS 1.2 accepted by the modern profile");
	cl.max = 0;
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	cr_assert_str_eq(r.version, "TLSv1.3");
	SSL_SESSION_free(r.session);
	tls_free(t);
}

/* ---- session tickets --------------------------------------------------------- */

static time_t fake_now = 1000000;

static time_t
fake_clock(void)
{
	return fake_now;
}

/* A session from a full handshake on a, then resumed on b. */
static int
resumes(struct tls *a, struct tls *b, int max, const char *sni)
{
	struct client cl = { .max = max, .sni = sni };
	struct result r;
	int reused;

	handshake(tls_default_ctx(a), &cl, &r);
	cr_assert(r.ok);
	cr_assert_not(r.reused);
	cr_assert_not_null(r.session);
	cr_assert(SSL_SESSION_is_resumable(r.session), "no ticket issued");
	cl.session = r.session;
	handshake(tls_default_ctx(b), &cl, &r);
	cr_assert(r.ok);
	reused = r.reused;
	SSL_SESSION_free(cl.session);
	SSL_SESSION_free(r.session);
	return reused;
}

Test(tls, tickets_resume_across_contexts)
{
	static struct tls_ticket_keys keys, others;
	struct tls_opts o = { .keys = &keys, .clock = fake_clock };
	struct tls *a, *b, *c;

	cr_assert_eq(tls_ticket_init(&keys, 3600, fake_now), 0);
	cr_assert_eq(tls_ticket_init(&others, 3600, fake_now), 0);
	a = build_ok(&o);	/* one worker, or the generation before a reload */
	b = build_ok(&o);	/* another, or the one after */
	cr_assert(resumes(a, b, 0, NULL), "TLS 1.3 session not resumed");
	cr_assert(resumes(a, b, TLS1_2_VERSION, NULL), "TLS 1.2 session not resumed");
	/* Through the SNI switch to another certificate. */
	cr_assert(resumes(a, b, 0, "example.net"));
	cr_assert(resumes(b, a, TLS1_2_VERSION, "example.net"));

	/* Contexts with other keys cannot read the ticket: a full handshake. */
	o.keys = &others;
	c = build_ok(&o);
	cr_assert_not(resumes(a, c, 0, NULL));
	cr_assert_not(resumes(a, c, TLS1_2_VERSION, NULL));
	tls_free(a);
	tls_free(b);
	tls_free(c);
	cr_assert_eq(leaks_found(), 0);
}

Test(tls, no_keys_no_tickets)
{
	struct tls_opts o = { 0 };
	struct tls *t = build_ok(&o);
	struct client cl = { 0 };
	struct result r;

	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	cr_assert_not(r.session && SSL_SESSION_is_resumable(r.session));
	SSL_SESSION_free(r.session);
	tls_free(t);
}

/* A session made on a fresh ring, resumed after its clock moved on by dt. */
static int
resumes_after(struct tls_ticket_keys *keys, struct tls *t, int max, time_t dt)
{
	struct client cl = { .max = max };
	struct result r;
	time_t t0 = 1000000, step;
	int reused;

	fake_now = t0;
	cr_assert_eq(tls_ticket_init(keys, 3600, fake_now), 0);
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok && r.session);
	/* The master's tick, once a second would do; every 60 s is as good here. */
	for (step = 60; step <= dt; step += 60) {
		fake_now = t0 + step;
		cr_assert_neq(tls_ticket_rotate(keys, fake_now), -1);
	}
	fake_now = t0 + dt;
	cl.session = r.session;
	handshake(tls_default_ctx(t), &cl, &r);
	cr_assert(r.ok);
	reused = r.reused;
	SSL_SESSION_free(cl.session);
	SSL_SESSION_free(r.session);
	return reused;
}

Test(tls, tickets_expire_with_their_key)
{
	static struct tls_ticket_keys keys;
	struct tls_opts o = { .keys = &keys, .clock = fake_clock };
	struct tls *t;
	int max;

	cr_assert_eq(tls_ticket_init(&keys, 3600, fake_now), 0);
	for (max = TLS1_2_VERSION; max <= TLS1_3_VERSION; max++) {
		t = build_ok(&o);
		/* The key was retired at +1800: its tickets still resume... */
		cr_assert(resumes_after(&keys, t, max, 1800 + 60), "v%x", max);
		/* ...until a lifetime after that. */
		cr_assert(resumes_after(&keys, t, max, 1800 + 3600 - 60), "v%x", max);
		cr_assert_not(resumes_after(&keys, t, max, 1800 + 3600), "v%x", max);
		cr_assert_not(resumes_after(&keys, t, max, 3 * 86400), "v%x", max);
		tls_free(t);
	}
}

/* ---- the key ring ---------------------------------------------------------- */

Test(tls, ring_rotation)
{
	static struct tls_ticket_keys keys;
	struct tls_ticket_key k0, k1, k, first;
	unsigned char unknown[16] = { 0 };
	int i;

	cr_assert_eq(tls_ticket_init(&keys, 1, 100), -1);
	cr_assert_eq(tls_ticket_init(&keys, 8 * 86400, 100), -1);
	cr_assert_eq(tls_ticket_init(&keys, 1000, 100), 0);
	cr_assert_eq(tls_ticket_current(&keys, &k0), 0);
	first = k0;
	cr_assert_eq(tls_ticket_find(&keys, k0.name, 100, &k), 1);
	cr_assert_eq(memcmp(k.aes, k0.aes, 32), 0);
	cr_assert_eq(tls_ticket_find(&keys, unknown, 100, &k), 0);

	/* Not due before lifetime/2. */
	cr_assert_eq(tls_ticket_rotate(&keys, 599), 0);
	cr_assert_eq(tls_ticket_rotate(&keys, 600), 1);
	cr_assert_eq(tls_ticket_current(&keys, &k1), 0);
	cr_assert_neq(memcmp(k1.name, k0.name, 16), 0);
	cr_assert_neq(memcmp(k1.hmac, k0.hmac, 32), 0);
	cr_assert_eq(tls_ticket_find(&keys, k1.name, 600, &k), 1);
	/* The old key decrypts (and asks for a fresh ticket) for a lifetime. */
	cr_assert_eq(tls_ticket_find(&keys, k0.name, 600, &k), 2);
	cr_assert_eq(tls_ticket_find(&keys, k0.name, 1599, &k), 2);
	cr_assert_eq(tls_ticket_find(&keys, k0.name, 1600, &k), 0);

	/* Four slots: the first key's slot is reused at the fourth rotation. */
	for (i = 2; i <= 4; i++)
		cr_assert_eq(tls_ticket_rotate(&keys, 100 + 500 * i), 1);
	cr_assert_eq(tls_ticket_find(&keys, first.name, 2100, &k), 0);
	cr_assert_eq(keys.current, 0);

	/* A clock that went backwards rotates at once. */
	cr_assert_eq(tls_ticket_rotate(&keys, 50), 1);
}

Test(tls, ring_half_written_is_never_read)
{
	static struct tls_ticket_keys keys;
	struct tls_ticket_key k;

	cr_assert_eq(tls_ticket_init(&keys, 1000, 100), 0);
	cr_assert_eq(keys.seq % 2, 0);
	/* A master stopped (or dead) in the middle of a write. */
	keys.seq++;
	cr_assert_eq(tls_ticket_current(&keys, &k), -1);
	cr_assert_eq(tls_ticket_find(&keys, keys.slot[0].name, 100, &k), 0);
	keys.seq++;
	cr_assert_eq(tls_ticket_current(&keys, &k), 0);
}

/* ---- ALPN choice per listener and the settings check ---------------------- */

Test(tls, alpn_select_follows_the_server_order)
{
	static const char *const both[] = { "h2", "http/1.1" };
	static const char *const h1[] = { "http/1.1" };
	static const unsigned char offer[] = "\x08http/1.1\x02h2";
	static const unsigned char only_h2[] = "\x02h2";
	static const unsigned char bad[] = "\x09http/1.1";
	struct tls_listen tl;
	const unsigned char *out;
	unsigned char outlen;

	cr_assert_eq(tls_listen_init(&tl, NULL, both, 2), 0);
	cr_assert_eq(tl.alpn_len, 12);
	cr_assert_eq(tls_alpn_select(tl.alpn, tl.alpn_len, offer, sizeof(offer) - 1,
	    &out, &outlen), 1);
	cr_assert_eq(outlen, 2);
	cr_assert_eq(memcmp(out, "h2", 2), 0);
	cr_assert(out > offer && out < offer + sizeof(offer));

	cr_assert_eq(tls_listen_init(&tl, NULL, h1, 1), 0);
	cr_assert_eq(tls_alpn_select(tl.alpn, tl.alpn_len, offer, sizeof(offer) - 1,
	    &out, &outlen), 1);
	cr_assert_eq(outlen, 8);
	cr_assert_eq(memcmp(out, "http/1.1", 8), 0);
	/* Nothing in common, or a malformed offer: no ALPN. */
	cr_assert_eq(tls_alpn_select(tl.alpn, tl.alpn_len, only_h2,
	    sizeof(only_h2) - 1, &out, &outlen), 0);
	cr_assert_eq(tls_alpn_select(tl.alpn, tl.alpn_len, bad, sizeof(bad) - 1,
	    &out, &outlen), 0);
	/* No list given: http/1.1. */
	cr_assert_eq(tls_listen_init(&tl, NULL, NULL, 0), 0);
	cr_assert_eq(tl.alpn_len, 9);
	cr_assert_eq(memcmp(tl.alpn, "\x08http/1.1", 9), 0);
}

Test(tls, alpn_list_bounds)
{
	static const char *const empty[] = { "" };
	char longname[300];
	const char *const one[] = { longname };
	const char *many[TLS_ALPN_MAX];
	struct tls_listen tl;
	size_t i;

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(tls_listen_init(&tl, NULL, empty, 1), -1);
	cr_assert_eq(tls_listen_init(&tl, NULL, one, 1), -1);
	for (i = 0; i < TLS_ALPN_MAX; i++)
		many[i] = "h2";
	cr_assert_eq(tls_listen_init(&tl, NULL, many, TLS_ALPN_MAX), -1);
}

Test(tls, opts_check_names_the_setting)
{
	struct tls_opts o = { 0 };
	char err[ERRLEN];

	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), 0);
	o.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:NOPE";
	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), -1);
	cr_assert(strncmp(err, "ciphers \"NOPE\"", 14) == 0, "%s", err);
	o.ciphers = NULL;
	o.groups = "X25519:P-999";
	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), -1);
	cr_assert(strncmp(err, "groups", 6) == 0, "%s", err);
	o.groups = NULL;
	o.ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_FOO";
	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), -1);
	cr_assert(strncmp(err, "ciphersuites \"TLS_FOO\"", 22) == 0, "%s", err);
	o.ciphersuites = NULL;

	/*
	 * Settings that passed are not checked entry by entry again (every
	 * reload reads the same): that never lets a failing one through.
	 */
	o.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), 0);
	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), 0);
	o.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:NOPE";
	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), -1);
	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), -1);
	cr_assert(strncmp(err, "ciphers \"NOPE\"", 14) == 0, "%s", err);
	o.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
	cr_assert_eq(tls_opts_check(&o, err, sizeof(err)), 0);
}

Test(tls, errors_carry_the_origin)
{
	struct tls_site ts[3] = {
		{ ca("ec-full.pem"), ca("other.key"), "porter.conf:12" },
		{ NULL, NULL, NULL }, { NULL, NULL, NULL },
	};
	struct tls_opts o = { 0 };
	char err[ERRLEN];

	cr_assert_null(tls_new(&conf, ts, &o, err, sizeof(err)));
	cr_assert(strncmp(err, "porter.conf:12: key ", 20) == 0, "%s", err);
	cr_assert(strstr(err, "does not match") != NULL, "%s", err);
}
