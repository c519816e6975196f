/*
 * conf_https.h - a site's HTTPS policy in the configuration: the
 * redirect of plain-HTTP requests (redirect_https) and HSTS (hsts, RFC
 * 6797). Private to the configuration code (conf.c); errors as
 * confval.h says: 0, or -1 with "file:line: message" in ctx.
 */
#ifndef PORTER_CONF_HTTPS_H
#define PORTER_CONF_HTTPS_H

#include "confval.h"

struct conf;
struct conf_site;

/*
 * Read redirect_https and hsts for site from its group g (NULL: the
 * implicit default site), falling back to the top level: fills
 * site->redirect_https, site->hsts and site->hsts_len (the
 * "Strict-Transport-Security: ...\r\n" line, the site's to free).
 */
int	 conf_https_site(struct conf_ctx *ctx, const config_setting_t *top,
	    const config_setting_t *g, struct conf_site *site);
/*
 * Once listeners and sites are read (list: the 'sites' setting, or
 * NULL): sets conf->https_port from the first TLS listener, and refuses
 * redirect_https without a TLS listener or with one on port 0 (the
 * redirect has to name the port).
 */
int	 conf_https_check(struct conf_ctx *ctx, const config_setting_t *top,
	    const config_setting_t *list, struct conf *conf);

#endif
