/*
 * tls.c - one generation's TLS (see tls.h for the contract): one
 * context with the profile applied, certificates and keys read and
 * checked, and the SNI, ALPN and session-ticket callbacks every
 * handshake runs.
 *
 * The master builds it before a generation's workers fork,
 * so a bad file fails the start or the reload and changes nothing;
 * workers inherit them. The ticket keys are not part of a generation:
 * they live in memory the master keeps across reloads (struct
 * tls_ticket_keys), which is what lets a session resume on any worker
 * of any generation.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

#include "porter.h"
#include "tls.h"

/* Mozilla's intermediate profile (guidelines 6.0): the six ECDHE AEAD suites. */
#define TLS_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_SUITES \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS	"X25519:P-256:P-384"

#define TLS_NONE	((size_t)-1)

/*
 * One certificate file and its key as loaded and checked: the leaf,
 * the other certificates of the file (intermediates) and the private
 * key, OpenSSL's reference-counted objects. The generation's one
 * context carries the default certificate; the SNI callback puts
 * another site's on the SSL. At a reload, a pair whose files are
 * unchanged is not read again: the next generation takes references
 * to the same objects.
 */
struct tls_cert {
	X509		*leaf;
	STACK_OF(X509)	*chain;		/* never NULL once loaded; may be empty */
	EVP_PKEY	*pkey;
	const char	*cert;		/* borrowed from the tls_site */
	const char	*key;
	struct stat	 cst, kst;	/* the files as read: reuse needs the same */
	int		 reused;	/* taken from tls_opts.reuse */
	struct tls_cert_info info;
};

struct tls {
	const struct conf *conf;	/* borrowed, for SNI matching */
	/*
	 * One context for every site: the settings, the callbacks and the
	 * default certificate. Building a context costs OpenSSL 3.0 more
	 * than loading a certificate, so there is no context per site.
	 */
	SSL_CTX		*ctx;
	struct tls_cert	*certs;
	size_t		 ncerts;
	size_t		*site_cert;	/* per conf site: index or TLS_NONE */
	size_t		 def;		/* the default certificate */
	const struct tls_ticket_keys *keys;
	time_t		(*clock)(void);
	EVP_CIPHER	*aes;		/* fetched once: the ticket cipher */
};

/* ---- errors ----------------------------------------------------------------- */

/*
 * "what: msg (OpenSSL's reasons)": the queue drained oldest first (the
 * root cause), each with its added text ("Verify error:...").
 */
static void
tls_error(char *err, size_t errlen, const char *what, const char *msg)
{
	char reasons[512], one[256];
	const char *data;
	unsigned long e;
	size_t n = 0;
	int flags;

	reasons[0] = '\0';
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		if (n < sizeof(reasons))
			n += (size_t)snprintf(reasons + n, sizeof(reasons) - n,
			    "%s%s%s%s", n ? "; " : "", one,
			    (flags & ERR_TXT_STRING) && *data ? ": " : "",
			    (flags & ERR_TXT_STRING) ? data : "");
	}
	if (reasons[0] != '\0')
		snprintf(err, errlen, "%s: %s (%s)", what, msg, reasons);
	else
		snprintf(err, errlen, "%s: %s", what, msg);
}

/* "origin: err" in place, when there is an origin. */
static void
tls_prefix(char *err, size_t errlen, const char *origin)
{
	char tmp[1024];

	if (origin == NULL || errlen == 0)
		return;
	snprintf(tmp, sizeof(tmp), "%s", err);
	snprintf(err, errlen, "%s: %s", origin, tmp);
}

/* Never prompt on a terminal for a passphrase: say it was asked for. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	*(int *)arg = 1;
	return -1;
}

/* ---- the ticket key ring ------------------------------------------------- */

time_t
tls_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec;
}

static void
tls_ticket_write_begin(struct tls_ticket_keys *k)
{
	__atomic_store_n(&k->seq, k->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void
tls_ticket_write_end(struct tls_ticket_keys *k)
{
	__atomic_store_n(&k->seq, k->seq + 1, __ATOMIC_RELEASE);
}

/* Fresh secret bytes for one key, made before the ring is locked. */
static int
tls_ticket_fill(struct tls_ticket_key *key, time_t now)
{
	memset(key, 0, sizeof(*key));
	if (RAND_bytes(key->name, sizeof(key->name)) != 1 ||
	    RAND_priv_bytes(key->hmac, sizeof(key->hmac)) != 1 ||
	    RAND_priv_bytes(key->aes, sizeof(key->aes)) != 1)
		return -1;
	key->start = now;
	key->used = 1;
	return 0;
}

int
tls_ticket_init(struct tls_ticket_keys *keys, int64_t lifetime, time_t now)
{
	struct tls_ticket_key key;
	int rc = -1;

	if (lifetime < 2 || lifetime > 7 * 86400)	/* RFC 8446 4.6.1: a week at most */
		goto fail;
	if (tls_ticket_fill(&key, now) == -1)
		goto fail;
	tls_ticket_write_begin(keys);
	memset(keys->slot, 0, sizeof(keys->slot));
	keys->slot[0] = key;
	keys->current = 0;
	keys->lifetime = lifetime;
	tls_ticket_write_end(keys);
	rc = 0;
fail:
	OPENSSL_cleanse(&key, sizeof(key));
	return rc;
}

int
tls_ticket_rotate(struct tls_ticket_keys *keys, time_t now)
{
	struct tls_ticket_key key;
	struct tls_ticket_key *cur = &keys->slot[keys->current];
	unsigned next = (keys->current + 1) % TLS_TICKET_SLOTS;

	/* Only the master writes, so it reads its own ring without the lock. */
	if (now >= cur->start && now - cur->start < keys->lifetime / 2)
		return 0;
	if (tls_ticket_fill(&key, now) == -1) {
		OPENSSL_cleanse(&key, sizeof(key));
		return -1;
	}
	tls_ticket_write_begin(keys);
	cur->end = now;
	keys->slot[next] = key;
	keys->current = next;
	tls_ticket_write_end(keys);
	OPENSSL_cleanse(&key, sizeof(key));
	return 1;
}

/*
 * The reader's side of the sequence lock: copy what is wanted, retry
 * if the master wrote meanwhile. A master stopped mid-write (it takes
 * nanoseconds, but a loaded machine may deschedule it) costs a few
 * yields; one that died mid-write must not hang the worker, so after a
 * bounded number of tries the answer is "no key" (a full handshake).
 */
#define TLS_SEQ_TRIES	2000

static int
tls_ticket_read(const struct tls_ticket_keys *keys, const unsigned char *name,
    time_t now, struct tls_ticket_key *out)
{
	unsigned s, i, cur, tries;
	int rc;

	for (tries = 0; tries < TLS_SEQ_TRIES; tries++) {
		if (tries > 16)
			sched_yield();
		s = __atomic_load_n(&keys->seq, __ATOMIC_ACQUIRE);
		if (s & 1)
			continue;
		cur = keys->current % TLS_TICKET_SLOTS;
		rc = 0;
		if (name == NULL) {
			*out = keys->slot[cur];
			rc = out->used ? 1 : 0;
		} else {
			for (i = 0; i < TLS_TICKET_SLOTS; i++) {
				const struct tls_ticket_key *k = &keys->slot[i];

				if (!k->used || memcmp(k->name, name, 16) != 0)
					continue;
				if (i == cur)
					rc = 1;
				else if (k->end != 0 && now < k->end + keys->lifetime)
					rc = 2;
				if (rc)
					*out = *k;
				break;
			}
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&keys->seq, __ATOMIC_RELAXED) == s)
			return rc;
	}
	return 0;
}

int
tls_ticket_current(const struct tls_ticket_keys *keys, struct tls_ticket_key *out)
{
	return tls_ticket_read(keys, NULL, 0, out) == 1 ? 0 : -1;
}

int
tls_ticket_find(const struct tls_ticket_keys *keys, const unsigned char name[16],
    time_t now, struct tls_ticket_key *out)
{
	return tls_ticket_read(keys, name, now, out);
}

/* ---- handshake callbacks ------------------------------------------------- */

/*
 * The generation an SSL belongs to: its listener's (struct tls_listen,
 * the SSL's app data, set by the transport), or, for an SSL made
 * without a listener (the unit tests), its context's: each generation
 * builds its own context.
 */
static const struct tls *
tls_of(SSL *ssl)
{
	const struct tls_listen *tl = SSL_get_app_data(ssl);

	if (tl != NULL && tl->tls != NULL)
		return tl->tls;
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

/*
 * RFC 5077 tickets and RFC 8446 4.6.1 PSK tickets alike: OpenSSL
 * encrypts the session with AES-256-CBC and HMAC-SHA256 under the key
 * set up here. Decrypting: unknown or expired name, 0 (full handshake
 * and a fresh ticket); the current key, 1; an older valid one, 2
 * (resume, and reissue under the current key).
 */
static int
tls_ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls *t = tls_of(ssl);
	struct tls_ticket_key k;
	OSSL_PARAM params[3];
	int rc;

	if (enc) {
		if (tls_ticket_current(t->keys, &k) == -1)
			return 0;	/* no ticket this time */
		rc = 1;
		if (RAND_bytes(iv, 16) != 1 ||
		    !EVP_EncryptInit_ex2(cctx, t->aes, k.aes, iv, NULL))
			rc = -1;
		memcpy(name, k.name, 16);
	} else {
		rc = tls_ticket_find(t->keys, name, t->clock(), &k);
		if (rc == 0)
			return 0;
		if (!EVP_DecryptInit_ex2(cctx, t->aes, k.aes, iv, NULL))
			rc = -1;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    k.hmac, sizeof(k.hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (rc > 0 && !EVP_MAC_CTX_set_params(hctx, params))
		rc = -1;
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

/* The certificate SNI picks for name: RFC 6066 3, Host's matcher. */
static const struct tls_cert *
tls_cert_pick(const struct tls *t, const char *name)
{
	size_t site;

	if (name == NULL)
		return &t->certs[t->def];
	site = http_site_match(t->conf, name, strlen(name));
	if (site >= t->conf->nsites || t->site_cert[site] == TLS_NONE)
		return &t->certs[t->def];
	return &t->certs[t->site_cert[site]];
}

struct x509_st *
tls_cert_for_name(const struct tls *t, const char *name)
{
	return tls_cert_pick(t, name)->leaf;
}

/*
 * RFC 6066 3: the certificate by server name; unknown names get the
 * default, which the SSL has from the context. Any other site's is
 * put on the SSL itself: references to the loaded objects, nothing
 * parsed or copied. Before that every slot is emptied, or a default of
 * the other key type (RSA beside ECDSA) would stay next to the site's
 * and a client able to take both could be given it. A second
 * ClientHello (after a HelloRetryRequest) finds the choice made.
 */
static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_cert *c;

	(void)arg;
	c = tls_cert_pick(tls_of(ssl), SSL_get_servername(ssl,
	    TLSEXT_NAMETYPE_host_name));
	if (SSL_get_certificate(ssl) == c->leaf)
		return SSL_TLSEXT_ERR_OK;
	SSL_certs_clear(ssl);
	if (!SSL_use_cert_and_key(ssl, c->leaf, c->pkey, c->chain, 1)) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* ---- ALPN ---------------------------------------------------------------- */

int
tls_listen_init(struct tls_listen *tl, struct tls *t, const char *const *protos,
    size_t n)
{
	static const char *const h1[] = { "http/1.1" };
	size_t i, len;

	memset(tl, 0, sizeof(*tl));
	tl->tls = t;
	if (n == 0) {
		protos = h1;
		n = 1;
	}
	for (i = 0; i < n; i++) {
		len = strlen(protos[i]);
		if (len == 0 || len > 255 || tl->alpn_len + 1 + len > sizeof(tl->alpn))
			return -1;
		tl->alpn[tl->alpn_len++] = (unsigned char)len;
		memcpy(tl->alpn + tl->alpn_len, protos[i], len);
		tl->alpn_len += len;
	}
	return 0;
}

int
tls_alpn_select(const unsigned char *prefs, size_t plen,
    const unsigned char *offer, size_t olen, const unsigned char **out,
    unsigned char *outlen)
{
	size_t i, j, pl, ol;

	/* A malformed offer is refused whole (RFC 7301 3.1: no empty names). */
	for (j = 0; j < olen; j += 1 + ol) {
		ol = offer[j];
		if (ol == 0 || ol > olen - j - 1)
			return 0;
	}
	/* Server order (RFC 7301 3.2: the server selects). */
	for (i = 0; i < plen; i += 1 + pl) {
		pl = prefs[i];
		if (pl == 0 || pl > plen - i - 1)
			return 0;
		for (j = 0; j < olen; j += 1 + ol) {
			ol = offer[j];
			if (ol == pl && memcmp(offer + j + 1, prefs + i + 1, pl) == 0) {
				*out = offer + j + 1;
				*outlen = (unsigned char)ol;
				return 1;
			}
		}
	}
	return 0;
}

/*
 * The listener's list (struct tls_listen in the SSL's app data), or
 * http/1.1 alone for an SSL made without one. No match: no ALPN at all
 * rather than a no_application_protocol alert (RFC 7301 3.2 allows
 * either), as nginx does.
 */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h1[] = "\x08http/1.1";
	const struct tls_listen *tl = SSL_get_app_data(ssl);

	if (tl != NULL ? tls_alpn_select(tl->alpn, tl->alpn_len, in, inlen,
	    out, outlen) : tls_alpn_select(h1, sizeof(h1) - 1, in, inlen,
	    out, outlen))
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_NOACK;
}

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
static int
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

/* ---- certificates ----------------------------------------------------------- */

static BIO *
tls_open(const char *kind, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	BIO *b;

	if (f == NULL) {
		snprintf(err, errlen, "%s %s: %s", kind, path, strerror(errno));
		return NULL;
	}
	if ((b = BIO_new_fp(f, BIO_CLOSE)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s %s: out of memory", kind, path);
	}
	return b;
}

/*
 * What one tls_new() loads with, kept from one certificate to the next.
 *
 * Parsing a certificate costs OpenSSL 3.0 more than it seems (its
 * public key goes through a decoder made for it, and making one means
 * looking up every provider's decoders), and the files of one CA's
 * certificates all carry the same intermediates: each distinct one is
 * parsed once (ders) and shared by reference.
 *
 * probe is an SSL of the new context that each certificate is set on
 * once, so what the SNI callback will do with it at a handshake has
 * been done, and has worked, at load time.
 */
struct tls_der {
	unsigned char	*der;
	long		 len;
	X509		*x;
};

struct tls_loader {
	struct tls_der	*ders;		/* the intermediates parsed so far */
	size_t		 nders, dersz;
	SSL		*probe;
};

static void
tls_loader_free(struct tls_loader *ld)
{
	size_t i;

	for (i = 0; i < ld->nders; i++) {
		OPENSSL_free(ld->ders[i].der);
		X509_free(ld->ders[i].x);
	}
	free(ld->ders);
	SSL_free(ld->probe);
}

/*
 * The certificate der holds (len bytes, taken: freed here), parsed now
 * or the same object as an earlier file's identical one. A reference
 * for the caller, or NULL with OpenSSL's error queue saying why.
 */
static X509 *
tls_intermediate(struct tls_loader *ld, unsigned char *der, long len)
{
	const unsigned char *p = der;
	struct tls_der *d;
	X509 *x;
	size_t i, n;

	for (i = 0; i < ld->nders; i++)
		if (ld->ders[i].len == len && memcmp(ld->ders[i].der, der, (size_t)len) == 0) {
			OPENSSL_free(der);
			X509_up_ref(ld->ders[i].x);
			return ld->ders[i].x;
		}
	/* As PEM_read_bio_X509() parses it. */
	if ((x = d2i_X509(NULL, &p, len)) == NULL) {
		OPENSSL_free(der);
		return NULL;
	}
	if (ld->nders == ld->dersz) {
		n = ld->dersz ? 2 * ld->dersz : 8;
		if ((d = realloc(ld->ders, n * sizeof(*d))) == NULL) {
			OPENSSL_free(der);	/* not kept: parsed anyway */
			return x;
		}
		ld->ders = d;
		ld->dersz = n;
	}
	ld->ders[ld->nders].der = der;
	ld->ders[ld->nders].len = len;
	ld->ders[ld->nders].x = x;
	ld->nders++;
	X509_up_ref(x);
	return x;
}

/*
 * Leaf first, then every other certificate in the file (PEM blocks of
 * other kinds passed over, as PEM_read_bio_X509() does).
 */
static int
tls_read_chain(struct tls_loader *ld, const char *path, X509 **leafp,
    STACK_OF(X509) **chainp, char *err, size_t errlen)
{
	char what[PATH_MAX + 16];
	unsigned char *der;
	long len;
	X509 *x;
	BIO *b;
	int asked = 0;

	snprintf(what, sizeof(what), "certificate %s", path);
	*leafp = NULL;
	*chainp = NULL;
	if ((b = tls_open("certificate", path, err, errlen)) == NULL)
		return -1;
	if ((*leafp = PEM_read_bio_X509_AUX(b, NULL, tls_no_passphrase, &asked)) == NULL) {
		tls_error(err, errlen, what, "no certificate found");
		goto fail;
	}
	if ((*chainp = sk_X509_new_null()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", what);
		goto fail;
	}
	while (PEM_bytes_read_bio(&der, &len, NULL, PEM_STRING_X509, b,
	    tls_no_passphrase, &asked)) {
		if ((x = tls_intermediate(ld, der, len)) == NULL)
			break;
		if (!sk_X509_push(*chainp, x)) {
			X509_free(x);
			snprintf(err, errlen, "%s: out of memory", what);
			goto fail;
		}
	}
	/* The loop ends at the end of the file, or at a damaged entry. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		tls_error(err, errlen, what, "unreadable certificate after the first");
		goto fail;
	}
	ERR_clear_error();
	BIO_free(b);
	return 0;
fail:
	BIO_free(b);
	X509_free(*leafp);
	sk_X509_pop_free(*chainp, X509_free);
	*leafp = NULL;
	*chainp = NULL;
	return -1;
}

/*
 * The certificates in the file must lead from the leaf to the last one
 * (that one is taken as the anchor: the root is usually left out), and
 * the leaf must be fit for a TLS server (key usage, extended key usage).
 * Time is not checked here: see tls_info_fill().
 */
static int
tls_check_chain(const char *path, X509 *leaf, STACK_OF(X509) *chain,
    unsigned *warn, char *err, size_t errlen)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *xs = NULL;
	int n = sk_X509_num(chain), rc = -1, e, depth;

	if (n == 0) {
		if (!(X509_get_extension_flags(leaf) & EXFLAG_SS))
			*warn |= TLS_WARN_NO_CHAIN;
		if (X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) != 1) {
			snprintf(err, errlen, "certificate %s: not for TLS servers "
			    "(key usage or extended key usage)", path);
			return -1;
		}
		return 0;
	}
	if ((store = X509_STORE_new()) == NULL || (xs = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_add_cert(store, sk_X509_value(chain, n - 1)) ||
	    !X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN |
	    X509_V_FLAG_NO_CHECK_TIME) ||
	    !X509_STORE_CTX_init(xs, store, leaf, chain) ||
	    !X509_STORE_CTX_set_purpose(xs, X509_PURPOSE_SSL_SERVER)) {
		tls_error(err, errlen, "certificate", "cannot check the chain");
		goto fail;
	}
	if (X509_verify_cert(xs) != 1) {
		e = X509_STORE_CTX_get_error(xs);
		depth = X509_STORE_CTX_get_error_depth(xs) + 1;
		ERR_clear_error();
		if (e == X509_V_ERR_INVALID_PURPOSE)
			snprintf(err, errlen, "certificate %s: certificate %d is not for "
			    "TLS servers (key usage or extended key usage)", path, depth);
		else
			snprintf(err, errlen, "certificate %s: the chain in the file "
			    "is broken at certificate %d: %s", path, depth,
			    X509_verify_cert_error_string(e));
		goto fail;
	}
	rc = 0;
fail:
	X509_STORE_CTX_free(xs);
	X509_STORE_free(store);
	return rc;
}

static void
tls_info_fill(struct tls_cert_info *in, X509 *leaf)
{
	GENERAL_NAMES *gens;
	EVP_PKEY *pk = X509_get0_pubkey(leaf);
	struct tm tm;
	time_t now = time(NULL), left;
	size_t n = 0;
	BIO *b;
	int i, len, full = 0;

	if ((b = BIO_new(BIO_s_mem())) != NULL) {
		X509_NAME_print_ex(b, X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253);
		len = BIO_read(b, in->subject, (int)sizeof(in->subject) - 1);
		in->subject[len > 0 ? len : 0] = '\0';
		BIO_free(b);
	}
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		int l;

		if (g->type != GEN_DNS)
			continue;
		l = ASN1_STRING_length(g->d.dNSName);
		/* The first names that fit, then "...", room for which is kept. */
		if (!full && n + (size_t)l + 2 + 5 < sizeof(in->names))
			n += (size_t)snprintf(in->names + n, sizeof(in->names) - n, "%s%.*s",
			    in->nnames ? ", " : "", l,
			    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		else if (!full) {
			snprintf(in->names + n, sizeof(in->names) - n, "%s...",
			    in->nnames ? ", " : "");
			full = 1;
		}
		in->nnames++;
	}
	GENERAL_NAMES_free(gens);

	if (pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
		char group[32] = "";
		const char *nist = NULL;

		if (EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL))
			nist = EC_curve_nid2nist(OBJ_sn2nid(group));
		snprintf(in->key_type, sizeof(in->key_type), "ECDSA %s",
		    nist ? nist : group);
	} else if (pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		snprintf(in->key_type, sizeof(in->key_type), "RSA %d", EVP_PKEY_get_bits(pk));
	} else if (pk != NULL) {
		snprintf(in->key_type, sizeof(in->key_type), "%s",
		    OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
	}

	if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm))
		in->not_after = timegm(&tm);
	left = in->not_after - now;
	in->days_left = left >= 0 ? (long)(left / 86400) : -(long)((-left + 86399) / 86400);
	if (left <= 0)
		in->warn |= TLS_WARN_EXPIRED;
	else if (in->days_left < TLS_WARN_DAYS)
		in->warn |= TLS_WARN_EXPIRING;
	if (ASN1_TIME_to_tm(X509_get0_notBefore(leaf), &tm) && timegm(&tm) > now)
		in->warn |= TLS_WARN_NOT_YET;
}

/* A site name the certificate does not cover is worth a warning, not a failure. */
static void
tls_info_names(struct tls_cert_info *in, X509 *leaf, const struct conf_site *s)
{
	char probe[300];
	size_t j;

	for (j = 0; j < s->nnames && !(in->warn & TLS_WARN_NAME); j++) {
		const char *n = s->names[j];

		if (strcmp(n, "*") == 0)
			continue;
		/* A wildcard site must be covered for any one label. */
		snprintf(probe, sizeof(probe), "%s%s", n[0] == '*' ? "porter-check" : "",
		    n[0] == '*' ? n + 1 : n);
		if (X509_check_host(leaf, probe, 0, 0, NULL) != 1) {
			in->warn |= TLS_WARN_NAME;
			snprintf(in->uncovered, sizeof(in->uncovered), "%s", n);
		}
	}
}

/*
 * The key decoder, made at the first key read and kept for the
 * process. OpenSSL 3.0 spends several times longer making a decoder
 * (every provider's decoders and key managers looked up, chains of
 * them built) than decoding a key with it, and
 * PEM_read_bio_PrivateKey() makes one per call. DER in, any structure
 * (PKCS #8, encrypted PKCS #8, SEC 1, PKCS #1), any key type; the PEM
 * armour is taken off before (tls_read_key()), which also spares the
 * decoder trying its PEM decoders. Only the master loads keys, one at
 * a time.
 */
static struct {
	OSSL_DECODER_CTX *dec;
	EVP_PKEY	*out;		/* where dec puts the key it decoded */
	int		 asked;		/* a passphrase was asked for */
} tls_keydec;

/*
 * The first private key in the file, found as PEM_read_bio_PrivateKey()
 * finds it: PEM blocks of other kinds (a certificate before the key in
 * a combined file) are passed over. NULL with OpenSSL's error queue
 * saying why; *asked set when the key is encrypted.
 */
static EVP_PKEY *
tls_read_key(BIO *b, int *asked)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pkey = NULL;
	size_t left;
	long len = 0;

	tls_keydec.asked = 0;
	/* "ANY PRIVATE KEY": PKCS #8, encrypted or not, and the traditional forms. */
	if (!PEM_bytes_read_bio(&der, &len, NULL, PEM_STRING_EVP_PKEY, b,
	    tls_no_passphrase, &tls_keydec.asked))
		goto fail;
	if (tls_keydec.dec == NULL) {
		if ((tls_keydec.dec = OSSL_DECODER_CTX_new_for_pkey(&tls_keydec.out,
		    "DER", NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL)) == NULL)
			goto fail;
		/* Never prompt on a terminal: say a passphrase was asked for. */
		if (!OSSL_DECODER_CTX_set_pem_password_cb(tls_keydec.dec,
		    tls_no_passphrase, &tls_keydec.asked)) {
			OSSL_DECODER_CTX_free(tls_keydec.dec);
			tls_keydec.dec = NULL;
			goto fail;
		}
	}
	p = der;
	left = (size_t)len;
	EVP_PKEY_free(tls_keydec.out);
	tls_keydec.out = NULL;
	if (OSSL_DECODER_from_data(tls_keydec.dec, &p, &left)) {
		pkey = tls_keydec.out;
		tls_keydec.out = NULL;
	}
fail:
	*asked = tls_keydec.asked;
	OPENSSL_clear_free(der, (size_t)len);
	return pkey;
}

/*
 * Certificate, chain and key of tc read from its files and checked
 * (the chain, the key against the leaf). Whatever was loaded stays in
 * tc for tls_cert_clear(), also on failure.
 */
static int
tls_cert_load(struct tls_loader *ld, struct tls_cert *tc, char *err,
    size_t errlen)
{
	char what[PATH_MAX + 16];
	BIO *b = NULL;
	int rc = -1, asked;

	if (tls_read_chain(ld, tc->cert, &tc->leaf, &tc->chain, err, errlen) == -1)
		return -1;
	if (tls_check_chain(tc->cert, tc->leaf, tc->chain, &tc->info.warn, err,
	    errlen) == -1)
		return -1;
	if ((b = tls_open("key", tc->key, err, errlen)) == NULL)
		return -1;
	snprintf(what, sizeof(what), "key %s", tc->key);
	if ((tc->pkey = tls_read_key(b, &asked)) == NULL) {
		if (asked)	/* OpenSSL's reasons would only say "cancelled" */
			ERR_clear_error();
		tls_error(err, errlen, what, asked ?
		    "encrypted with a passphrase; porter needs it unencrypted" :
		    "no private key found");
		goto fail;
	}
	if (X509_check_private_key(tc->leaf, tc->pkey) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "key %s does not match certificate %s",
		    tc->key, tc->cert);
		goto fail;
	}
	rc = 0;
fail:
	BIO_free(b);
	return rc;
}

static void
tls_cert_clear(struct tls_cert *tc)
{
	X509_free(tc->leaf);
	sk_X509_pop_free(tc->chain, X509_free);
	EVP_PKEY_free(tc->pkey);
	tc->leaf = NULL;
	tc->chain = NULL;
	tc->pkey = NULL;
}

/* ---- a generation ------------------------------------------------------------ */

static int
tls_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino != 0 && a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/*
 * The certificate of old for the same certificate and key files,
 * unchanged (path, inode, size, modification time): its objects are
 * taken (references), which saves reading and checking them again at
 * a reload with many sites. Nothing in them depends on the settings;
 * the new context's check (the probe) runs anyway. 0 taken, -1 load it.
 */
static int
tls_cert_reuse(const struct tls *old, struct tls_cert *tc)
{
	const struct tls_cert *o;
	size_t i;

	for (i = 0; old != NULL && i < old->ncerts; i++) {
		o = &old->certs[i];
		if (strcmp(o->cert, tc->cert) != 0 || strcmp(o->key, tc->key) != 0 ||
		    !tls_same_file(&o->cst, &tc->cst) ||
		    !tls_same_file(&o->kst, &tc->kst))
			continue;
		if ((tc->chain = X509_chain_up_ref(o->chain)) == NULL)
			return -1;
		X509_up_ref(o->leaf);
		EVP_PKEY_up_ref(o->pkey);
		tc->leaf = o->leaf;
		tc->pkey = o->pkey;
		tc->reused = 1;
		tc->info.warn = o->info.warn & TLS_WARN_NO_CHAIN;
		return 0;
	}
	return -1;
}

/*
 * Certificate tc, taken from old (tls_opts.reuse) or loaded, then tried on
 * the probe: the security level of the settings ("ee key too small")
 * is judged there, as a handshake would. err without the origin.
 */
static int
tls_cert_add(struct tls_loader *ld, const struct tls *old,
    struct tls_cert *tc, char *err, size_t errlen)
{
	char what[PATH_MAX + 16];

	/* Before reading: a change after that shows next time. */
	if (stat(tc->cert, &tc->cst) == -1 || stat(tc->key, &tc->kst) == -1)
		memset(&tc->cst, 0, sizeof(tc->cst));
	if (tls_cert_reuse(old, tc) == -1 &&
	    tls_cert_load(ld, tc, err, errlen) == -1)
		return -1;
	if (!SSL_use_cert_and_key(ld->probe, tc->leaf, tc->pkey, tc->chain, 1)) {
		snprintf(what, sizeof(what), "certificate %s", tc->cert);
		tls_error(err, errlen, what, "not usable");
		return -1;
	}
	tc->info.certificate = tc->cert;
	tls_info_fill(&tc->info, tc->leaf);	/* days left: now */
	return 0;
}

struct tls *
tls_new(const struct conf *conf, const struct tls_site *sites,
    const struct tls_opts *opts, char *err, size_t errlen)
{
	struct tls_loader ld;
	struct tls_cert *tc;
	struct tls *t;
	size_t i, j;

	memset(&ld, 0, sizeof(ld));
	ERR_clear_error();
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->certs = calloc(conf->nsites, sizeof(*t->certs))) == NULL ||
	    (t->site_cert = calloc(conf->nsites, sizeof(*t->site_cert))) == NULL) {
		snprintf(err, errlen, "TLS: out of memory");
		goto fail;
	}
	t->conf = conf;
	t->keys = opts->keys;
	t->clock = opts->clock ? opts->clock : tls_clock;
	t->def = TLS_NONE;
	if (t->keys && (t->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL) {
		tls_error(err, errlen, "TLS", "no AES-256-CBC for session tickets");
		goto fail;
	}
	if ((t->ctx = SSL_CTX_new_ex(NULL, NULL, TLS_server_method())) == NULL) {
		tls_error(err, errlen, "TLS", "cannot make a context");
		goto fail;
	}
	if (tls_ctx_settings(t->ctx, t, opts, err, errlen) == -1)
		goto fail;
	if ((ld.probe = SSL_new(t->ctx)) == NULL) {
		tls_error(err, errlen, "TLS", "cannot make a connection");
		goto fail;
	}

	for (i = 0; i < conf->nsites; i++) {
		t->site_cert[i] = TLS_NONE;
		if (sites[i].certificate == NULL)
			continue;
		if (sites[i].key == NULL) {
			snprintf(err, errlen, "certificate %s: no key", sites[i].certificate);
			goto fail;
		}
		/* Sites sharing a pair share its certificate. */
		for (j = 0; j < t->ncerts; j++)
			if (strcmp(t->certs[j].cert, sites[i].certificate) == 0 &&
			    strcmp(t->certs[j].key, sites[i].key) == 0)
				break;
		tc = &t->certs[j];
		if (j == t->ncerts) {
			tc->cert = sites[i].certificate;
			tc->key = sites[i].key;
			t->ncerts++;	/* so tls_free() frees a half-loaded one */
			if (tls_cert_add(&ld, opts->reuse, tc, err, errlen) == -1) {
				tls_prefix(err, errlen, sites[i].origin);
				goto fail;
			}
		}
		t->site_cert[i] = j;
		tls_info_names(&tc->info, tc->leaf, &conf->sites[i]);
		if (t->def == TLS_NONE || i == conf->default_site)
			t->def = j;
	}
	if (t->def == TLS_NONE) {
		snprintf(err, errlen, "TLS: no site has a certificate");
		goto fail;
	}
	tc = &t->certs[t->def];
	if (!SSL_CTX_use_cert_and_key(t->ctx, tc->leaf, tc->pkey, tc->chain, 1)) {
		tls_error(err, errlen, "TLS", "cannot set the default certificate");
		goto fail;
	}
	tls_loader_free(&ld);
	ERR_clear_error();
	return t;
fail:
	tls_loader_free(&ld);
	ERR_clear_error();
	tls_free(t);
	return NULL;
}

void
tls_free(struct tls *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; t->certs && i < t->ncerts; i++)
		tls_cert_clear(&t->certs[i]);
	SSL_CTX_free(t->ctx);
	EVP_CIPHER_free(t->aes);
	free(t->certs);
	free(t->site_cert);
	free(t);
}

struct ssl_ctx_st *
tls_default_ctx(const struct tls *t)
{
	return t->ctx;
}

int
tls_reused(const struct tls *t, size_t i)
{
	return i < t->ncerts ? t->certs[i].reused : 0;
}

size_t
tls_count(const struct tls *t)
{
	return t->ncerts;
}

const struct tls_cert_info *
tls_info(const struct tls *t, size_t i)
{
	return i < t->ncerts ? &t->certs[i].info : NULL;
}

int
tls_summary(const struct tls *t, size_t i, char *buf, size_t len)
{
	const struct tls_cert_info *in = tls_info(t, i);
	char date[32];
	struct tm tm;
	size_t n;

	if (in == NULL) {
		snprintf(buf, len, "no such certificate");
		return 0;
	}
	gmtime_r(&in->not_after, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
	n = (size_t)snprintf(buf, len, "%s: %s, %zu name%s (%s), %s, ", in->certificate,
	    in->subject, in->nnames, in->nnames == 1 ? "" : "s",
	    in->nnames ? in->names : "none", in->key_type);
	if (n >= len)
		n = len - 1;
	if (in->warn & TLS_WARN_EXPIRED)
		n += (size_t)snprintf(buf + n, len - n, "EXPIRED %s (%ld day%s ago)",
		    date, -in->days_left, in->days_left == -1 ? "" : "s");
	else
		n += (size_t)snprintf(buf + n, len - n, "expires %s (%ld day%s left)",
		    date, in->days_left, in->days_left == 1 ? "" : "s");
	if (n < len && (in->warn & TLS_WARN_EXPIRING))
		n += (size_t)snprintf(buf + n, len - n, "; renew it soon");
	if (n < len && (in->warn & TLS_WARN_NOT_YET))
		n += (size_t)snprintf(buf + n, len - n, "; not valid yet");
	if (n < len && (in->warn & TLS_WARN_NO_CHAIN))
		n += (size_t)snprintf(buf + n, len - n,
		    "; no intermediate certificate in the file");
	if (n < len && (in->warn & TLS_WARN_NAME))
		snprintf(buf + n, len - n, "; does not cover site name %s", in->uncovered);
	if (in->warn & TLS_WARN_EXPIRED)
		return 2;
	return in->warn ? 1 : 0;
}
