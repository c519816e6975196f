/*
 * conf_tls.h - the TLS keys of the configuration, for conf.c: the
 * listen entry key "tls", the top-level 'tls' group (profile, expert
 * overrides, tickets, kernel TLS) and each site's tls: { certificate;
 * key; }. Private to the configuration code; same error convention as
 * confval.h (0, or -1 with "file:line: message" in ctx->err).
 */
#ifndef PORTER_CONF_TLS_H
#define PORTER_CONF_TLS_H

#include <libconfig.h>

#include "confval.h"

struct conf;
struct conf_listen;
struct conf_site;

/* Defaults into conf->tls, before anything is read. */
void	 conf_tls_defaults(struct conf *conf);
/* "tls = true;" in a listen group e (its keys already checked). */
int	 conf_tls_listen(struct conf_ctx *ctx, const config_setting_t *e,
	    struct conf_listen *l);
/*
 * The top-level 'tls' group: profile, protocols, ciphers, ciphersuites,
 * groups (each checked with OpenSSL now), ktls, session_tickets,
 * ticket_lifetime, and the certificate and key every site inherits.
 */
int	 conf_tls_top(struct conf_ctx *ctx, const config_setting_t *top,
	    struct conf *conf);
/* A site's certificate and key: its own tls group g, else the top's. */
int	 conf_tls_site(struct conf_ctx *ctx, const config_setting_t *g,
	    const config_setting_t *top, struct conf_site *site);
/*
 * After the listeners and sites: a TLS listener needs a certificate in
 * some site (error at that listen entry's line).
 */
int	 conf_tls_check(struct conf_ctx *ctx, const config_setting_t *top,
	    const struct conf *conf);
void	 conf_tls_site_clear(struct conf_site *site);
void	 conf_tls_free(struct conf *conf);

#endif
