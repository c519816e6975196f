/*
 * conf_tls.c - the TLS keys of the configuration (see conf_tls.h):
 *
 *	listen = ( "*:80", { address = "*:443"; tls = true; } );
 *	tls: {
 *		profile = "intermediate";	# or "modern" (TLS 1.3 only)
 *		# protocols = [ "TLSv1.2", "TLSv1.3" ]; ciphers = "...";
 *		# ciphersuites = "..."; groups = "X25519:P-256:P-384";
 *		session_tickets = true; ticket_lifetime = 43200;
 *		ktls = "auto";			# or "off"
 *		# certificate = "..."; key = "...";	(inherited by sites)
 *	};
 *	sites = ( { names = [ ... ]; tls: { certificate = "..."; key = "..."; }; } );
 *
 * Strings OpenSSL interprets (ciphers, suites, groups) are checked here
 * by OpenSSL itself (tls_opts_check()), so porter -t names the line.
 * Certificate and key files are read later, when the contexts are built
 * (gen_tls(), also run by porter -t): errors there carry the
 * "file:line" kept in conf_site.tls_origin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porter.h"
#include "conf_tls.h"
#include "tls.h"

static const char *const conf_tls_top_keys[] = {
	"profile", "protocols", "ciphers", "ciphersuites", "groups", "ktls",
	"session_tickets", "ticket_lifetime", "certificate", "key", NULL
};
static const char *const conf_tls_site_keys[] = { "certificate", "key", NULL };

void
conf_tls_defaults(struct conf *conf)
{
	conf->tls.profile = TLS_PROFILE_INTERMEDIATE;
	conf->tls.ktls = 1;
	conf->tls.session_tickets = 1;
	conf->tls.ticket_lifetime = 43200;	/* 12 h, as RFC 8446 4.6.1 allows up to 7 days */
	conf->handshake_timeout = 10;
}

int
conf_tls_listen(struct conf_ctx *ctx, const config_setting_t *e,
    struct conf_listen *l)
{
	const config_setting_t *s;

	l->tls = 0;
	if ((s = config_setting_get_member(e, "tls")) != NULL &&
	    confval_bool(ctx, s, &l->tls) == -1)
		return -1;
	return 0;
}

/* An optional string member, copied; "" is refused. */
static int
conf_tls_str(struct conf_ctx *ctx, const config_setting_t *g, const char *name,
    char **out)
{
	const config_setting_t *s;
	const char *str;

	if ((s = config_setting_get_member(g, name)) == NULL)
		return 0;
	if (confval_string(ctx, s, &str) == -1)
		return -1;
	if (str[0] == '\0')
		return confval_err(ctx, s, "'%s' must not be empty", name);
	free(*out);
	if ((*out = strdup(str)) == NULL)
		return confval_oom(ctx);
	return 0;
}

static int
conf_tls_protocols(struct conf_ctx *ctx, const config_setting_t *s,
    unsigned *out)
{
	char **v = NULL;
	size_t n = 0, i;
	unsigned bit;
	int rc = -1;

	if (confval_strv(ctx, s, NULL, &v, &n) == -1)
		return -1;
	if (n == 0) {
		confval_err(ctx, s, "'protocols' needs at least one of "
		    "\"TLSv1.2\", \"TLSv1.3\"");
		goto fail;
	}
	*out = 0;
	for (i = 0; i < n; i++) {
		if ((bit = tls_protocol(v[i])) == 0) {
			confval_err(ctx, s, "unknown protocol '%s' (porter "
			    "speaks \"TLSv1.2\" and \"TLSv1.3\")", v[i]);
			goto fail;
		}
		*out |= bit;
	}
	rc = 0;
fail:
	confval_strv_free(v, n);
	return rc;
}

int
conf_tls_top(struct conf_ctx *ctx, const config_setting_t *top,
    struct conf *conf)
{
	const config_setting_t *g, *s;
	struct conf_tls *t = &conf->tls;
	struct tls_opts o;
	const char *str;
	long long v;
	char why[512];

	if ((g = config_setting_get_member(top, "tls")) == NULL)
		return 0;
	if (confval_group(ctx, g) == -1 ||
	    confval_keys(ctx, g, conf_tls_top_keys, "'tls'") == -1)
		return -1;
	if ((s = config_setting_get_member(g, "profile")) != NULL) {
		if (confval_string(ctx, s, &str) == -1)
			return -1;
		if (strcmp(str, "intermediate") == 0)
			t->profile = TLS_PROFILE_INTERMEDIATE;
		else if (strcmp(str, "modern") == 0)
			t->profile = TLS_PROFILE_MODERN;
		else
			return confval_err(ctx, s, "unknown profile '%s' "
			    "(\"intermediate\" or \"modern\")", str);
	}
	if ((s = config_setting_get_member(g, "protocols")) != NULL &&
	    conf_tls_protocols(ctx, s, &t->protocols) == -1)
		return -1;
	if (conf_tls_str(ctx, g, "ciphers", &t->ciphers) == -1 ||
	    conf_tls_str(ctx, g, "ciphersuites", &t->ciphersuites) == -1 ||
	    conf_tls_str(ctx, g, "groups", &t->groups) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "ktls")) != NULL) {
		if (confval_string(ctx, s, &str) == -1)
			return -1;
		if (strcmp(str, "auto") == 0)
			t->ktls = 1;
		else if (strcmp(str, "off") == 0)
			t->ktls = 0;
		else
			return confval_err(ctx, s, "'ktls' must be \"auto\" or "
			    "\"off\", not '%s'", str);
	}
	if ((s = config_setting_get_member(g, "session_tickets")) != NULL &&
	    confval_bool(ctx, s, &t->session_tickets) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "ticket_lifetime")) != NULL) {
		/* RFC 8446 4.6.1: at most seven days. */
		if (confval_int(ctx, s, 2, 7 * 86400, &v) == -1)
			return -1;
		t->ticket_lifetime = (int)v;
	}

	/* OpenSSL judges the strings: a typo must not quietly drop a suite. */
	memset(&o, 0, sizeof(o));
	o.profile = (enum tls_profile)t->profile;
	o.protocols = t->protocols;
	o.ciphers = t->ciphers;
	o.ciphersuites = t->ciphersuites;
	o.groups = t->groups;
	if (tls_opts_check(&o, why, sizeof(why)) == -1) {
		const char *key = strncmp(why, "ciphersuites", 12) == 0 ?
		    "ciphersuites" : strncmp(why, "ciphers", 7) == 0 ? "ciphers" :
		    strncmp(why, "groups", 6) == 0 ? "groups" : "protocols";

		if ((s = config_setting_get_member(g, key)) == NULL)
			s = g;
		return confval_err(ctx, s, "tls %s", why);
	}
	return 0;
}

/* "file:line" of s, for errors found when the files are read. */
static int
conf_tls_origin(struct conf_ctx *ctx, const config_setting_t *s, char **out)
{
	const char *file = config_setting_source_file(s);
	char buf[4200];

	snprintf(buf, sizeof(buf), "%s:%u", file != NULL ? file : ctx->file,
	    confval_line(ctx, s));
	free(*out);
	if ((*out = strdup(buf)) == NULL)
		return confval_oom(ctx);
	return 0;
}

/* certificate and key from group g (a site's tls, or the top's). */
static int
conf_tls_pair(struct conf_ctx *ctx, const config_setting_t *g,
    struct conf_site *site)
{
	const config_setting_t *c, *k;
	const char *str;

	c = config_setting_get_member(g, "certificate");
	k = config_setting_get_member(g, "key");
	if (c == NULL && k == NULL)
		return 0;
	if (c == NULL)
		return confval_err(ctx, k, "'key' without 'certificate'");
	if (k == NULL)
		return confval_err(ctx, c, "'certificate' needs a 'key' next "
		    "to it");
	if (confval_string(ctx, c, &str) == -1 ||
	    confval_path(ctx, c, str, &site->tls_certificate) == -1 ||
	    confval_string(ctx, k, &str) == -1 ||
	    confval_path(ctx, k, str, &site->tls_key) == -1)
		return -1;
	return conf_tls_origin(ctx, c, &site->tls_origin);
}

int
conf_tls_site(struct conf_ctx *ctx, const config_setting_t *g,
    const config_setting_t *top, struct conf_site *site)
{
	const config_setting_t *s = NULL;

	if (g != NULL && (s = config_setting_get_member(g, "tls")) != NULL) {
		if (confval_group(ctx, s) == -1 ||
		    confval_keys(ctx, s, conf_tls_site_keys, "a site's 'tls' "
		    "(profile and the others are set in the top-level 'tls')")
		    == -1)
			return -1;
		if (config_setting_get_member(s, "certificate") != NULL ||
		    config_setting_get_member(s, "key") != NULL)
			return conf_tls_pair(ctx, s, site);
	}
	/* Inherited, like root: the top-level tls group's pair. */
	if ((s = config_setting_get_member(top, "tls")) != NULL &&
	    config_setting_is_group(s))
		return conf_tls_pair(ctx, s, site);
	return 0;
}

int
conf_tls_check(struct conf_ctx *ctx, const config_setting_t *top,
    const struct conf *conf)
{
	const config_setting_t *s, *e;
	size_t i, j;

	for (i = 0; i < conf->nlisten; i++) {
		if (!conf->listeners[i].tls)
			continue;
		for (j = 0; j < conf->nsites; j++)
			if (conf->sites[j].tls_certificate != NULL)
				return 0;
		s = config_setting_get_member(top, "listen");
		e = s != NULL && (config_setting_is_list(s) ||
		    config_setting_is_array(s)) ?
		    config_setting_get_elem(s, (unsigned int)i) : s;
		if (e != NULL && config_setting_is_group(e) &&
		    config_setting_get_member(e, "tls") != NULL)
			e = config_setting_get_member(e, "tls");
		return confval_err(ctx, e, "listen address '%s' speaks TLS, but "
		    "no site has a certificate (tls: { certificate = ...; "
		    "key = ...; })", conf->listen[i]);
	}
	return 0;
}

void
conf_tls_site_clear(struct conf_site *site)
{
	free(site->tls_certificate);
	free(site->tls_key);
	free(site->tls_origin);
	site->tls_certificate = site->tls_key = site->tls_origin = NULL;
}

void
conf_tls_free(struct conf *conf)
{
	free(conf->tls.ciphers);
	free(conf->tls.ciphersuites);
	free(conf->tls.groups);
}
