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
 *
 * This file builds and frees a generation; the other files behind
 * tls.h (tls_int.h lists them) do the rest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "porter.h"
#include "tls_int.h"

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

/* ---- a generation ------------------------------------------------------------ */

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
