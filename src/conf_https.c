/*
 * conf_https.c - a site's HTTPS policy keys (see conf_https.h):
 *
 *	redirect_https = true;		# plain-HTTP requests -> https://
 *	hsts: { max_age = 63072000; include_subdomains = false; preload = false; };
 *
 * Both may be set at the top level, then every site inherits them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porter.h"
#include "conf_https.h"

static const char *const conf_https_hsts_keys[] = {
	"max_age", "include_subdomains", "preload", NULL
};

/* The site group's own setting, else the top level's. */
static const config_setting_t *
conf_https_member(const config_setting_t *g, const config_setting_t *top,
    const char *name)
{
	const config_setting_t *s = NULL;

	if (g != NULL)
		s = config_setting_get_member(g, name);
	return s != NULL ? s : config_setting_get_member(top, name);
}

/*
 * The whole header line, made once here so that a response only copies
 * it (RFC 6797 6.1: max-age, then the optional directives).
 */
static int
conf_https_hsts(struct conf_ctx *ctx, const config_setting_t *g,
    struct conf_site *site)
{
	const config_setting_t *s;
	long long max_age;
	int sub = 0, preload = 0;
	char line[128];

	if (confval_group(ctx, g) == -1 ||
	    confval_keys(ctx, g, conf_https_hsts_keys, "'hsts'") == -1)
		return -1;
	if ((s = config_setting_get_member(g, "max_age")) == NULL)
		return confval_err(ctx, g, "'hsts' needs 'max_age' (seconds; "
		    "0 tells browsers to forget the policy)");
	if (confval_int(ctx, s, 0, 2147483647LL, &max_age) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "include_subdomains")) != NULL &&
	    confval_bool(ctx, s, &sub) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "preload")) != NULL &&
	    confval_bool(ctx, s, &preload) == -1)
		return -1;
	/* What the browsers' preload list accepts (hstspreload.org). */
	if (preload && (!sub || max_age < 31536000))
		return confval_err(ctx, s, "'preload' needs include_subdomains "
		    "= true and max_age >= 31536000 (one year)");
	snprintf(line, sizeof(line), "Strict-Transport-Security: "
	    "max-age=%lld%s%s\r\n", max_age, sub ? "; includeSubDomains" : "",
	    preload ? "; preload" : "");
	free(site->hsts);
	if ((site->hsts = strdup(line)) == NULL)
		return confval_oom(ctx);
	site->hsts_len = strlen(line);
	return 0;
}

int
conf_https_site(struct conf_ctx *ctx, const config_setting_t *top,
    const config_setting_t *g, struct conf_site *site)
{
	const config_setting_t *s;

	if ((s = conf_https_member(g, top, "redirect_https")) != NULL &&
	    confval_bool(ctx, s, &site->redirect_https) == -1)
		return -1;
	if ((s = conf_https_member(g, top, "hsts")) != NULL &&
	    conf_https_hsts(ctx, s, site) == -1)
		return -1;
	return 0;
}

/* The port of listen address a ("*:443", "[::1]:8443"); -1 if unreadable. */
static long
conf_https_port(const char *a)
{
	const char *p = strrchr(a, ':');
	char *end;
	long port;

	if (p == NULL || p[1] == '\0')
		return -1;
	port = strtol(p + 1, &end, 10);
	return *end == '\0' && port >= 0 && port <= 65535 ? port : -1;
}

int
conf_https_check(struct conf_ctx *ctx, const config_setting_t *top,
    const config_setting_t *list, struct conf *conf)
{
	const config_setting_t *s;
	const char *tls = NULL;
	size_t i;
	long port = -1;

	for (i = 0; i < conf->nlisten && tls == NULL; i++)
		if (conf->listeners[i].tls)
			tls = conf->listeners[i].address;
	if (tls != NULL)
		port = conf_https_port(tls);
	conf->https_port = port > 0 ? (int)port : 0;
	for (i = 0; i < conf->nsites; i++) {
		if (!conf->sites[i].redirect_https)
			continue;
		s = conf_https_member(list != NULL ? config_setting_get_elem(list,
		    (unsigned int)i) : NULL, top, "redirect_https");
		if (tls == NULL)
			return confval_err(ctx, s, "'redirect_https' needs a "
			    "listener with tls = true");
		if (port <= 0)
			return confval_err(ctx, s, "'redirect_https' needs a "
			    "fixed port on the first TLS listener, not '%s'",
			    tls);
	}
	return 0;
}
