/*
 * tls_ctx.c - the settings of a generation's context (see tls_int.h):
 * the profile, protocols, ciphers, suites and groups, each entry
 * checked, the options and the handshake callbacks; and
 * tls_opts_check() (tls.h), the same on a throwaway context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "porter.h"
#include "tls_int.h"

/* Mozilla's intermediate profile (guidelines 6.0): the six ECDHE AEAD suites. */
#define TLS_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_SUITES \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS	"X25519:P-256:P-384"
/* ---- settings ----------------------------------------------------------------- */

unsigned
tls_protocol(const char *name)
{
	if (strcmp(name, "TLSv1.2") == 0)
		return TLS_PROTO_TLS12;
	if (strcmp(name, "TLSv1.3") == 0)
		return TLS_PROTO_TLS13;
	return 0;
}

/*
 * The settings OpenSSL interprets, as one string, and the last such
 * string whose every entry it accepted one by one. Checking entry by
 * entry builds a cipher list per entry (about a millisecond for the
 * profile's), and porter checks the settings when it reads the
 * configuration and again when it builds the context, at every reload;
 * the answer depends on nothing but the library, so a string that
 * passed is not checked entry by entry again in this process.
 */
static char *tls_checked;

static char *
tls_settings_sig(const struct tls_opts *o)
{
	char *sig = NULL;

	if (asprintf(&sig, "%d|%u|%s|%s|%s", (int)o->profile, o->protocols,
	    o->ciphers ? o->ciphers : "-", o->ciphersuites ? o->ciphersuites : "-",
	    o->groups ? o->groups : "-") == -1)
		return NULL;
	return sig;
}

static int
tls_settings_checked(const struct tls_opts *o)
{
	char *sig = tls_settings_sig(o);
	int known = sig != NULL && tls_checked != NULL && strcmp(sig, tls_checked) == 0;

	free(sig);
	return known;
}

static void
tls_settings_passed(const struct tls_opts *o)
{
	char *sig = tls_settings_sig(o);

	if (sig != NULL) {
		free(tls_checked);
		tls_checked = sig;
	}
}

/*
 * OpenSSL takes a cipher list as long as one entry matches, silently
 * dropping the others; a typo would then quietly remove a suite. So
 * each plain entry must match on its own (the "!", "-", "+" and "@"
 * entries only edit the list), unless each is 0: the list passed that
 * before.
 */
static int
tls_set_ciphers(SSL_CTX *ctx, const char *list, int each, char *err,
    size_t errlen)
{
	char buf[1024], what[96], *tok, *save;

	if (strlen(list) >= sizeof(buf)) {
		snprintf(err, errlen, "ciphers: list too long");
		return -1;
	}
	strcpy(buf, list);
	for (tok = each ? strtok_r(buf, ": ,;", &save) : NULL; tok;
	    tok = strtok_r(NULL, ": ,;", &save)) {
		if (strchr("!-+@", tok[0]) != NULL)
			continue;
		if (!SSL_CTX_set_cipher_list(ctx, tok)) {
			snprintf(what, sizeof(what), "ciphers \"%.60s\"", tok);
			tls_error(err, errlen, what, "matches no TLS 1.2 cipher");
			return -1;
		}
	}
	if (!SSL_CTX_set_cipher_list(ctx, list)) {
		tls_error(err, errlen, "ciphers", "no usable cipher");
		return -1;
	}
	return 0;
}

static int
tls_suites13(SSL_CTX *ctx)
{
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
	int i, n = 0;

	for (i = 0; i < sk_SSL_CIPHER_num(sk); i++)
		if (strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(sk, i)),
		    "TLSv1.3") == 0)
			n++;
	return n;
}

/*
 * The same for TLS 1.3 suites: OpenSSL 3.0 skips an unknown name as long
 * as another one is known.
 */
static int
tls_set_suites(SSL_CTX *ctx, const char *list, int need, int each, char *err,
    size_t errlen)
{
	char buf[512], what[96], *tok, *save;

	if (strlen(list) >= sizeof(buf)) {
		snprintf(err, errlen, "ciphersuites: list too long");
		return -1;
	}
	strcpy(buf, list);
	for (tok = each ? strtok_r(buf, ":", &save) : NULL; tok;
	    tok = strtok_r(NULL, ":", &save)) {
		if (!SSL_CTX_set_ciphersuites(ctx, tok) || tls_suites13(ctx) != 1) {
			snprintf(what, sizeof(what), "ciphersuites \"%.60s\"", tok);
			tls_error(err, errlen, what, "is not a TLS 1.3 cipher suite");
			return -1;
		}
	}
	if (!SSL_CTX_set_ciphersuites(ctx, list) || (need && tls_suites13(ctx) == 0)) {
		tls_error(err, errlen, "ciphersuites", "no TLS 1.3 cipher suite");
		return -1;
	}
	return 0;
}

/* Everything but the certificate: identical in every context. */
int
tls_ctx_settings(SSL_CTX *ctx, struct tls *t, const struct tls_opts *o,
    char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "porter";
	unsigned p = o->protocols;
	int each = !tls_settings_checked(o);
	uint64_t op;

	if (p == 0)
		p = o->profile == TLS_PROFILE_MODERN ? TLS_PROTO_TLS13 :
		    TLS_PROTO_TLS12 | TLS_PROTO_TLS13;
	if (p & ~(unsigned)(TLS_PROTO_TLS12 | TLS_PROTO_TLS13)) {
		snprintf(err, errlen, "protocols: only TLSv1.2 and TLSv1.3 are supported");
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, (p & TLS_PROTO_TLS12) ?
	    TLS1_2_VERSION : TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, (p & TLS_PROTO_TLS13) ?
	    TLS1_3_VERSION : TLS1_2_VERSION)) {
		tls_error(err, errlen, "protocols", "cannot be set");
		return -1;
	}
	if (tls_set_ciphers(ctx, o->ciphers ? o->ciphers : TLS_CIPHERS, each,
	    err, errlen) == -1)
		return -1;
	if (tls_set_suites(ctx, o->ciphersuites ? o->ciphersuites : TLS_SUITES,
	    (p & TLS_PROTO_TLS13) != 0, each, err, errlen) == -1)
		return -1;
	if (!SSL_CTX_set1_groups_list(ctx, o->groups ? o->groups : TLS_GROUPS)) {
		tls_error(err, errlen, "groups", "unknown or unusable group");
		return -1;
	}
	if (each)
		tls_settings_passed(o);

	/*
	 * A peer that closes without close_notify ends the stream like any
	 * end of file: HTTP/1.1 frames its messages itself (RFC 9110 and
	 * RFC 8446 6.1 allow it), and most clients do so.
	 */
	op = SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF;
#ifdef SSL_OP_ENABLE_KTLS
	if (o->ktls)
		op |= SSL_OP_ENABLE_KTLS;
#endif
	if (t->keys == NULL)
		op |= SSL_OP_NO_TICKET;
	SSL_CTX_set_options(ctx, op);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/*
	 * Read what the socket has in one read(), not a record header and
	 * then its body in two: a request costs one read, as in plain HTTP.
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* Tickets carry the session; a cache would be per process anyway. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_max_early_data(ctx, 0);
	SSL_CTX_set_recv_max_early_data(ctx, 0);
	SSL_CTX_set_num_tickets(ctx, t->keys ? 1 : 0);
	if (t->keys) {
		/* Wall-clock bound on a session's age; the ring bounds its key. */
		SSL_CTX_set_timeout(ctx, (long)t->keys->lifetime);
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
	}
	SSL_CTX_set_app_data(ctx, t);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
	return 0;
}

int
tls_opts_check(const struct tls_opts *opts, char *err, size_t errlen)
{
	struct tls t;
	SSL_CTX *ctx;
	int rc;

	if (tls_settings_checked(opts))
		return 0;
	memset(&t, 0, sizeof(t));
	ERR_clear_error();
	if ((ctx = SSL_CTX_new_ex(NULL, NULL, TLS_server_method())) == NULL) {
		tls_error(err, errlen, "TLS", "cannot make a context");
		return -1;
	}
	rc = tls_ctx_settings(ctx, &t, opts, err, errlen);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}
