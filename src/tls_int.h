/*
 * tls_int.h - what the files behind tls.h share, and nobody else: a
 * generation's struct tls, a loaded certificate, the loader tls_new()
 * reads files with, and the functions each file lends the others.
 * Callers use tls.h only.
 *
 *   tls.c         a generation: tls_new(), tls_free()
 *   tls_ctx.c     the context's settings: profile, protocols, ciphers,
 *                 suites, groups, options, callbacks; tls_opts_check()
 *   tls_hs.c      the callbacks every handshake runs: session tickets,
 *                 SNI (the certificate for a name), ALPN
 *   tls_cert.c    certificates and keys: read, checked, reused
 *   tls_info.c    what a loaded certificate says: names, key, expiry,
 *                 warnings, the summary line
 *   tls_ticket.c  the session-ticket key ring the master keeps
 *   tls_err.c     OpenSSL's error queue in porter's error messages
 *
 * The calls run one way: tls.c -> tls_ctx.c -> tls_hs.c ->
 * tls_ticket.c, and tls.c -> tls_cert.c -> tls_info.c; tls.c also
 * calls tls_info.c and tls_ticket.c, and tls.c, tls_ctx.c and
 * tls_cert.c call tls_err.c, which calls none of them.
 */
#ifndef PORTER_TLS_INT_H
#define PORTER_TLS_INT_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include <sys/stat.h>

#include "tls.h"

struct conf_site;

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

/* tls_err.c */
/* "what: msg (OpenSSL's reasons)" into err, draining OpenSSL's error queue. */
void	 tls_error(char *err, size_t errlen, const char *what, const char *msg);

/* tls_ctx.c */
/* Everything but the certificate set on ctx from o; 0, or -1 and err. */
int	 tls_ctx_settings(SSL_CTX *ctx, struct tls *t, const struct tls_opts *o,
	    char *err, size_t errlen);

/* tls_hs.c */
/* OpenSSL's session-ticket key callback: the key ring's keys. */
int	 tls_ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
	    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);
/* OpenSSL's SNI callback: puts the certificate for the name on the SSL. */
int	 tls_sni_cb(SSL *ssl, int *alert, void *arg);
/* OpenSSL's ALPN callback: the listener's protocols, in server order. */
int	 tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
	    const unsigned char *in, unsigned int inlen, void *arg);

/* tls_cert.c */
/* Frees what the loader holds (its intermediates, its probe SSL). */
void	 tls_loader_free(struct tls_loader *ld);
/* Certificate tc taken from old or loaded, and tried; 0, or -1 and err. */
int	 tls_cert_add(struct tls_loader *ld, const struct tls *old,
	    struct tls_cert *tc, char *err, size_t errlen);
/* Drops tc's references to its leaf, chain and key. */
void	 tls_cert_clear(struct tls_cert *tc);

/* tls_info.c */
/* Subject, names, key type, expiry and their warnings of leaf into in. */
void	 tls_info_fill(struct tls_cert_info *in, X509 *leaf);
/* TLS_WARN_NAME in in when leaf does not cover one of the site's names. */
void	 tls_info_names(struct tls_cert_info *in, X509 *leaf,
	    const struct conf_site *s);

#endif
