/*
 * tls_cert.c - certificates and keys for a generation (see
 * tls_int.h): files read (intermediates shared, one key decoder for
 * the process), the chain and the key checked, an unchanged pair
 * taken from the previous generation, each one tried on the new
 * context.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

#include "porter.h"
#include "tls_int.h"

/* Never prompt on a terminal for a passphrase: say it was asked for. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	*(int *)arg = 1;
	return -1;
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

void
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

void
tls_cert_clear(struct tls_cert *tc)
{
	X509_free(tc->leaf);
	sk_X509_pop_free(tc->chain, X509_free);
	EVP_PKEY_free(tc->pkey);
	tc->leaf = NULL;
	tc->chain = NULL;
	tc->pkey = NULL;
}

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
int
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
