/*
 * tls_hs.c - the callbacks every handshake runs (see tls_int.h): the
 * session-ticket keys, SNI's choice of certificate, ALPN; and a
 * listener's ALPN list (tls.h).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "porter.h"
#include "tls_int.h"

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
int
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
int
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
int
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
