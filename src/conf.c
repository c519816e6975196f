/*
 * conf.c - read a libconfig file into a struct conf, validate every key
 * and copy every string, so that nothing refers to libconfig's tree once
 * conf_load() returns.
 *
 * This file knows porter's keys: which ones exist, their bounds and
 * defaults, and how sites inherit from the top level. How a value is
 * read and checked, and how an error gets its "file:line: message",
 * is confval.c's job.
 */
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "porter.h"
#include "confval.h"
#include "conf_https.h"
#include "conf_tls.h"
#include "limit.h"
#include "climit.h"

#define CONF_ROOT_DEFAULT	"/var/www/html"
#define CONF_ACCESS_DEFAULT	"/var/log/porter/access.log"
#define CONF_MAX_AGE_MAX	315360000LL	/* ten years */

/* Bounds that must also fit a long, which is 32 bits on i386 and armhf. */
#define CONF_LONG_BOUND(v)	((v) < LONG_MAX ? (v) : LONG_MAX)

static const struct conf_num conf_top_nums[] = {
	{ "workers", offsetof(struct conf, workers),
	    CONF_NUM_INT, 0, PORTER_MAX_WORKERS },
	{ "shutdown_timeout", offsetof(struct conf, shutdown_timeout),
	    CONF_NUM_INT, 1, 3600 },
	{ "worker_timeout", offsetof(struct conf, worker_timeout),
	    CONF_NUM_INT, 0, 86400 },
	{ "max_requests", offsetof(struct conf, max_requests),
	    CONF_NUM_LONG, 0, CONF_LONG_BOUND(1000000000000LL) },
	{ NULL, 0, 0, 0, 0 }
};

static const struct conf_num conf_limit_nums[] = {
	{ "keepalive_timeout", offsetof(struct conf, keepalive_timeout),
	    CONF_NUM_INT, 1, 86400 },
	{ "keepalive_requests", offsetof(struct conf, keepalive_requests),
	    CONF_NUM_INT, 0, 1000000000 },
	{ "header_timeout", offsetof(struct conf, header_timeout),
	    CONF_NUM_INT, 1, 86400 },
	{ "body_timeout", offsetof(struct conf, body_timeout),
	    CONF_NUM_INT, 1, 86400 },
	{ "send_timeout", offsetof(struct conf, send_timeout),
	    CONF_NUM_INT, 1, 86400 },
	{ "max_header_size", offsetof(struct conf, max_header_size),
	    CONF_NUM_INT, 1024, 1048576 },
	{ "max_body_size", offsetof(struct conf, max_body_size),
	    CONF_NUM_INT64, 0, 1LL << 40 },
	{ "max_connections", offsetof(struct conf, max_connections),
	    CONF_NUM_INT, 16, 1000000 },
	{ "echo_idle_timeout", offsetof(struct conf, echo_idle_timeout),
	    CONF_NUM_INT, 1, 86400 },
	{ "min_body_rate", offsetof(struct conf, min_body_rate),
	    CONF_NUM_INT, 0, 1 << 30 },
	{ "min_send_rate", offsetof(struct conf, min_send_rate),
	    CONF_NUM_INT, 0, 1 << 30 },
	{ "handshake_timeout", offsetof(struct conf, handshake_timeout),
	    CONF_NUM_INT, 1, 3600 },
	{ "proxy_timeout", offsetof(struct conf, proxy_timeout),
	    CONF_NUM_INT, 1, 60 },
	{ NULL, 0, 0, 0, 0 }
};

static const struct conf_num conf_compression_nums[] = {
	{ "min_size", offsetof(struct conf, compression.min_size),
	    CONF_NUM_LONG, 0, CONF_LONG_BOUND(1LL << 31) },
	{ "level", offsetof(struct conf, compression.level),
	    CONF_NUM_INT, 1, 9 },
	{ NULL, 0, 0, 0, 0 }
};

static const struct conf_num conf_http2_nums[] = {
	{ "max_concurrent_streams", offsetof(struct conf, http2.max_concurrent_streams),
	    CONF_NUM_INT, 1, 1000 },
	{ "max_header_list_size", offsetof(struct conf, http2.max_header_list_size),
	    CONF_NUM_INT, 1024, 1048576 },
	{ "idle_timeout", offsetof(struct conf, http2.idle_timeout),
	    CONF_NUM_INT, 1, 86400 },
	{ NULL, 0, 0, 0, 0 }
};

static const char *const conf_top_keys[] = {
	"listen", "workers", "user", "group", "pid_file", "log", "limits",
	"shutdown_timeout", "worker_timeout", "max_requests", "compression",
	"http2",
	"core_dumps", "sites", "tls", "client_limits", "status", "health",
	/* the default site's keys, inherited by every entry of sites */
	"root", "index", "listing", "cache", "error_pages",
	"acme_challenge_root", "redirect_https", "hsts",
	NULL
};
static const char *const conf_log_keys[] = { "error", "access", NULL };
static const char *const conf_limit_keys[] = {
	"keepalive_timeout", "keepalive_requests", "header_timeout",
	"body_timeout", "send_timeout", "max_header_size", "max_body_size",
	"max_connections", "echo_idle_timeout", "min_body_rate",
	"min_send_rate", "handshake_timeout", "proxy_timeout", NULL
};
static const char *const conf_http2_keys[] = {
	"max_concurrent_streams", "max_header_list_size", "idle_timeout", NULL
};
static const char *const conf_compression_keys[] = {
	"enabled", "types", "min_size", "level", NULL
};
static const char *const conf_site_keys[] = {
	"names", "root", "index", "listing", "cache", "error_pages", "tls",
	"acme_challenge_root", "redirect_https", "hsts", NULL
};
static const char *const conf_cache_keys[] = {
	"match", "max_age", "immutable", "no_cache", NULL
};
static const char *const conf_errpage_keys[] = { "status", "page", NULL };

static const char *const conf_index_default[] = { "index.html", NULL };
static const char *const conf_types_default[] = {
	"text/*", "application/javascript", "application/json",
	"image/svg+xml", "application/xml", NULL
};

static int	 conf_check_listen(struct conf_ctx *,
		    const config_setting_t *, char *);
static int	 conf_check_index(struct conf_ctx *,
		    const config_setting_t *, char *);
static int	 conf_check_name(struct conf_ctx *,
		    const config_setting_t *, char *);
static int	 conf_check_mime(struct conf_ctx *,
		    const config_setting_t *, char *);
static int	 conf_hostname(const char *);
static int	 conf_listen(struct conf_ctx *, const config_setting_t *,
		    struct conf *);
static int	 conf_log(struct conf_ctx *, const config_setting_t *,
		    struct conf *);
static int	 conf_compression(struct conf_ctx *,
		    const config_setting_t *, struct conf *);
static int	 conf_cache(struct conf_ctx *, const config_setting_t *,
		    struct conf_site *);
static int	 conf_errpage_add(struct conf_ctx *, const config_setting_t *,
		    const config_setting_t *, struct conf_site *, long long);
static int	 conf_errpages(struct conf_ctx *, const config_setting_t *,
		    struct conf_site *);
static const config_setting_t *conf_member(const config_setting_t *,
		    const config_setting_t *, const char *);
static int	 conf_site(struct conf_ctx *, const config_setting_t *,
		    const config_setting_t *, struct conf_site *,
		    const config_setting_t **);
static void	 conf_site_clear(struct conf_site *);
static const config_setting_t *conf_name_setting(const config_setting_t *,
		    size_t);
static int	 conf_site_names(struct conf_ctx *, const config_setting_t *,
		    struct conf *, size_t, size_t *);
static int	 conf_sites(struct conf_ctx *, const config_setting_t *,
		    struct conf *, const config_setting_t ***);
static int	 conf_roots(struct conf_ctx *, struct conf *,
		    const config_setting_t **);

/* The same parser that will bind it, so "-t" passes only what binds. */
static int
conf_check_listen(struct conf_ctx *ctx, const config_setting_t *s, char *str)
{
	struct net_addr	 a[2];
	char		 why[256];

	if (net_parse_listen(str, a, 2, why, sizeof(why)) == -1)
		return confval_err(ctx, s, "%s", why);
	return 0;
}

static int
conf_check_index(struct conf_ctx *ctx, const config_setting_t *s, char *str)
{
	if (str[0] == '\0' || strchr(str, '/') != NULL ||
	    strcmp(str, ".") == 0 || strcmp(str, "..") == 0)
		return confval_err(ctx, s, "'index' entry '%s' must be a file "
		    "name", str);
	return 0;
}

/* Host names: labels of letters, digits, '-' and '_', dot-separated. */
static int
conf_hostname(const char *s)
{
	size_t	 len;

	if (strlen(s) > 253)
		return 0;
	for (;;) {
		len = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_");
		if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
			return 0;
		s += len;
		if (*s == '\0')
			return 1;
		if (*s++ != '.')
			return 0;
	}
}

/*
 * Site names are matched against Host headers, which are
 * case-insensitive: store them lower-case. "*" is the default site,
 * "*.example.org" any subdomain, "[::1]" an IPv6 literal.
 */
static int
conf_check_name(struct conf_ctx *ctx, const config_setting_t *s, char *str)
{
	struct in6_addr	 in6;
	char		 buf[INET6_ADDRSTRLEN + 2], *p;
	size_t		 len;
	int		 ok;

	for (p = str; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	len = strlen(str);
	if (strcmp(str, "*") == 0)
		ok = 1;
	else if (strncmp(str, "*.", 2) == 0)
		ok = conf_hostname(str + 2);
	else if (str[0] == '[' && len > 2 && len < sizeof(buf) &&
	    str[len - 1] == ']') {
		memcpy(buf, str + 1, len - 2);
		buf[len - 2] = '\0';
		ok = inet_pton(AF_INET6, buf, &in6) == 1;
	} else
		ok = conf_hostname(str);
	if (!ok)
		return confval_err(ctx, s, "invalid site name '%s'", str);
	return 0;
}

/* "type/subtype", each an RFC 9110 token; '*' is a token character. */
static int
conf_check_mime(struct conf_ctx *ctx, const config_setting_t *s, char *str)
{
	static const char tchar[] = "abcdefghijklmnopqrstuvwxyz0123456789"
	    "!#$%&'*+-.^_`|~";
	char	*p;
	size_t	 len;

	for (p = str; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	len = strspn(str, tchar);
	if (len == 0 || str[len] != '/' ||
	    strspn(str + len + 1, tchar) != strlen(str + len + 1) ||
	    str[len + 1] == '\0')
		return confval_err(ctx, s, "invalid MIME type '%s' in 'types'",
		    str);
	return 0;
}

static const char *const conf_protocols[] = { "http", "echo", NULL };

const char *
conf_protocol_name(int protocol)
{
	if (protocol < 0 || protocol > PROTO_ECHO)
		return "?";
	return conf_protocols[protocol];
}

/*
 * A listen group's PROXY protocol keys: proxy_protocol = true needs a
 * non-empty 'trusted' list of addresses or CIDRs, and 'trusted' means
 * nothing without it. The protocol gives the sender the power to name
 * any client address, so porter takes it only from peers it was told
 * to trust, and never guesses (proxy.h).
 */
static int
conf_listen_proxy(struct conf_ctx *ctx, const config_setting_t *e,
    struct conf_listen *l)
{
	const config_setting_t	*p, *t, *v;
	const char		*str;
	int			 n, k;

	p = config_setting_get_member(e, "proxy_protocol");
	t = config_setting_get_member(e, "trusted");
	if (p != NULL && confval_bool(ctx, p, &l->proxy_protocol) == -1)
		return -1;
	if (!l->proxy_protocol) {
		if (t != NULL)
			return confval_err(ctx, t, "'trusted' needs "
			    "proxy_protocol = true in the same 'listen' entry");
		return 0;
	}
	if (t == NULL)
		return confval_err(ctx, p, "proxy_protocol = true needs a "
		    "'trusted' list of the balancers' addresses or networks");
	if (config_setting_type(t) == CONFIG_TYPE_STRING)
		n = 1;
	else if (config_setting_is_array(t) || config_setting_is_list(t))
		n = config_setting_length(t);
	else
		return confval_err(ctx, t, "'trusted' must be an address or a "
		    "list of addresses or networks");
	if (n == 0)
		return confval_err(ctx, t, "'trusted' is empty: name the "
		    "balancers that send PROXY headers");
	if ((l->trusted = calloc((size_t)n, sizeof(*l->trusted))) == NULL)
		return confval_oom(ctx);
	for (k = 0; k < n; k++) {
		v = config_setting_type(t) == CONFIG_TYPE_STRING ? t :
		    config_setting_get_elem(t, (unsigned int)k);
		if (confval_string(ctx, v, &str) == -1)
			return -1;
		if (limit_cidr_parse(str, &l->trusted[k]) == -1)
			return confval_err(ctx, v, "'trusted': '%s' is not an "
			    "address or network (192.0.2.7, 10.0.0.0/8, "
			    "fd00::/8)", str);
		/* Allowed (a balancer on a network porter cannot know),
		 * but anyone who can connect may then name any client. */
		if (l->trusted[k].lc_prefix == 0)
			log_warnx("%s:%d: 'trusted': '%s' trusts every peer: "
			    "anyone who can connect may name any client",
			    config_setting_source_file(v) != NULL ?
			    config_setting_source_file(v) : ctx->file,
			    config_setting_source_line(v), str);
		l->ntrusted++;
	}
	return 0;
}

/*
 * One element of 'listen': a string (the address alone) or a group
 * { address = "..."; protocol = "..."; proxy_protocol = ...; trusted
 * = [...]; }. Stores the address in conf->listen[i] and the rest in
 * conf->listeners[i].
 */
static int
conf_listen_entry(struct conf_ctx *ctx, const config_setting_t *e,
    struct conf *conf, size_t i)
{
	static const char *const keys[] = { "address", "protocol", "tls",
	    "http2",
	    "proxy_protocol", "trusted", NULL };
	struct conf_listen	*l = &conf->listeners[i];
	const config_setting_t	*a, *p;
	const char		*str;
	int			 k;

	l->protocol = PROTO_HTTP;
	l->http2 = -1;
	if (config_setting_type(e) == CONFIG_TYPE_STRING)
		a = e;
	else if (config_setting_is_group(e)) {
		if (confval_keys(ctx, e, keys, "a 'listen' entry") == -1)
			return -1;
		if ((a = config_setting_get_member(e, "address")) == NULL)
			return confval_err(ctx, e, "'listen' entry needs an "
			    "'address'");
		if ((p = config_setting_get_member(e, "protocol")) != NULL) {
			if (confval_string(ctx, p, &str) == -1)
				return -1;
			for (k = 0; conf_protocols[k] != NULL; k++)
				if (strcmp(str, conf_protocols[k]) == 0)
					break;
			if (conf_protocols[k] == NULL)
				return confval_err(ctx, p, "unknown protocol "
				    "'%s' (http or echo)", str);
			l->protocol = k;
		}
		if ((p = config_setting_get_member(e, "http2")) != NULL) {
			if (confval_bool(ctx, p, &l->http2) == -1)
				return -1;
			if (l->protocol != PROTO_HTTP && l->http2)
				return confval_err(ctx, p, "'http2' needs "
				    "protocol \"http\"");
		}
		if (conf_tls_listen(ctx, e, l) == -1 ||
		    conf_listen_proxy(ctx, e, l) == -1)
			return -1;
	} else
		return confval_err(ctx, e, "a 'listen' entry must be an "
		    "address string or a group { address = ...; }");
	if (confval_strdup(ctx, a, &conf->listen[i]) == -1)
		return -1;
	l->address = conf->listen[i];
	conf->nlisten = i + 1;
	return conf_check_listen(ctx, a, conf->listen[i]);
}

static int
conf_listen(struct conf_ctx *ctx, const config_setting_t *top,
    struct conf *conf)
{
	const config_setting_t	*s, *e;
	struct net_addr		 a[2], b[2];
	char			 why[256];
	size_t			 i, j, n = 1;
	int			 na, nb, k, list;

	if ((s = config_setting_get_member(top, "listen")) == NULL) {
		static const char *const def[] = { "*:80", NULL };

		if (confval_strv_default(ctx, def, &conf->listen,
		    &conf->nlisten) == -1)
			return -1;
		if ((conf->listeners = calloc(2, sizeof(*conf->listeners))) ==
		    NULL)
			return confval_oom(ctx);
		conf->listeners[0].address = conf->listen[0];
		conf->listeners[0].protocol = PROTO_HTTP;
		conf->listeners[0].http2 = -1;
		return 0;
	}
	/* A group alone is one entry; a list or array holds entries. */
	list = config_setting_is_array(s) || config_setting_is_list(s);
	if (list)
		n = (size_t)config_setting_length(s);
	if ((conf->listen = calloc(n + 1, sizeof(*conf->listen))) == NULL ||
	    (conf->listeners = calloc(n + 1, sizeof(*conf->listeners))) == NULL)
		return confval_oom(ctx);
	for (i = 0; i < n; i++) {
		e = list ? config_setting_get_elem(s, (unsigned int)i) : s;
		if (conf_listen_entry(ctx, e, conf, i) == -1)
			return -1;
	}
	if (conf->nlisten == 0)
		return confval_err(ctx, s, "'listen' needs at least one "
		    "address");

	/*
	 * The same address twice would fail at bind() with EADDRINUSE;
	 * say which entry instead. "*:80" is [::]:80 and 0.0.0.0:80, so
	 * compare every address each spec expands to. Port 0 binds a
	 * fresh port every time and never clashes.
	 */
	for (i = 1; i < conf->nlisten; i++) {
		if ((na = net_parse_listen(conf->listen[i], a, 2, why,
		    sizeof(why))) == -1)
			return confval_err(ctx, s, "%s", why);
		if (net_addr_port((struct sockaddr *)&a[0].ss) == 0)
			continue;
		for (j = 0; j < i; j++) {
			if ((nb = net_parse_listen(conf->listen[j], b, 2, why,
			    sizeof(why))) == -1)
				return confval_err(ctx, s, "%s", why);
			for (k = 0; k < na * nb; k++)
				if (net_addr_equal(&a[k / nb], &b[k % nb]))
					break;
			if (k == na * nb)
				continue;
			e = list ? config_setting_get_elem(s, (unsigned int)i) : s;
			return confval_err(ctx, e, "listen address '%s' "
			    "overlaps '%s'", conf->listen[i], conf->listen[j]);
		}
	}
	return 0;
}

static int
conf_log(struct conf_ctx *ctx, const config_setting_t *g, struct conf *conf)
{
	const config_setting_t	*s;
	const char		*str;

	if (confval_group(ctx, g) == -1 ||
	    confval_keys(ctx, g, conf_log_keys, "'log'") == -1)
		return -1;

	if ((s = config_setting_get_member(g, "error")) != NULL) {
		if (confval_string(ctx, s, &str) == -1)
			return -1;
		free(conf->error_log);
		conf->error_log = NULL;
		/* Else it would quietly become a file named "off". */
		if (strcmp(str, "off") == 0)
			return confval_err(ctx, s, "'error' cannot be off; use "
			    "\"stderr\" (journald keeps it under systemd)");
		if (strcmp(str, "stderr") == 0) {
			if ((conf->error_log = strdup(str)) == NULL)
				return confval_oom(ctx);
		} else if (confval_path(ctx, s, str, &conf->error_log) == -1)
			return -1;
	}

	if ((s = config_setting_get_member(g, "access")) != NULL) {
		if (confval_string(ctx, s, &str) == -1)
			return -1;
		free(conf->access_log);
		conf->access_log = NULL;
		if (strcmp(str, "off") == 0)
			;
		else if (strcmp(str, "stderr") == 0) {
			if ((conf->access_log = strdup(str)) == NULL)
				return confval_oom(ctx);
		} else if (confval_path(ctx, s, str, &conf->access_log) == -1)
			return -1;
	}
	return 0;
}

static int
conf_compression(struct conf_ctx *ctx, const config_setting_t *g,
    struct conf *conf)
{
	const config_setting_t	*s;

	if (confval_group(ctx, g) == -1 ||
	    confval_keys(ctx, g, conf_compression_keys, "'compression'") == -1)
		return -1;
	if ((s = config_setting_get_member(g, "enabled")) != NULL &&
	    confval_bool(ctx, s, &conf->compression.enabled) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "types")) != NULL) {
		confval_strv_free(conf->compression.types,
		    conf->compression.ntypes);
		conf->compression.types = NULL;
		conf->compression.ntypes = 0;
		if (confval_strv(ctx, s, conf_check_mime,
		    &conf->compression.types, &conf->compression.ntypes) == -1)
			return -1;
	}
	return confval_nums(ctx, g, conf_compression_nums, conf);
}

static int
conf_cache(struct conf_ctx *ctx, const config_setting_t *s,
    struct conf_site *site)
{
	const config_setting_t	*g, *m;
	struct conf_cache_rule	*r;
	const char		*str;
	long long		 v;
	int			 i, n;

	if (!config_setting_is_list(s))
		return confval_err(ctx, s, "'cache' must be a list of groups "
		    "( { match = ...; }, ... )");
	n = config_setting_length(s);
	if (n == 0)
		return 0;
	if ((site->cache = calloc((size_t)n, sizeof(*site->cache))) == NULL)
		return confval_oom(ctx);
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(s, (unsigned int)i);
		if (!config_setting_is_group(g))
			return confval_err(ctx, g, "'cache' must be a list of "
			    "groups ( { match = ...; }, ... )");
		if (confval_keys(ctx, g, conf_cache_keys, "cache rule") == -1)
			return -1;
		r = &site->cache[site->ncache];
		r->max_age = -1;
		if ((m = config_setting_get_member(g, "match")) == NULL)
			return confval_err(ctx, g, "cache rule needs 'match'");
		if (confval_string(ctx, m, &str) == -1)
			return -1;
		/* A '/' after the dot would make it a path. */
		if ((str[0] != '/' && str[0] != '.') || strcmp(str, ".") == 0 ||
		    (str[0] == '.' && strchr(str, '/') != NULL))
			return confval_err(ctx, m, "cache match '%s' must be a "
			    "path prefix (\"/assets/\") or an extension "
			    "(\".css\")", str);
		if ((r->match = strdup(str)) == NULL)
			return confval_oom(ctx);
		site->ncache++;
		r->is_ext = str[0] == '.';
		if ((m = config_setting_get_member(g, "max_age")) != NULL) {
			if (confval_int(ctx, m, 0, CONF_MAX_AGE_MAX, &v) == -1)
				return -1;
			r->max_age = (long)v;
		}
		if ((m = config_setting_get_member(g, "immutable")) != NULL &&
		    confval_bool(ctx, m, &r->immutable) == -1)
			return -1;
		if ((m = config_setting_get_member(g, "no_cache")) != NULL &&
		    confval_bool(ctx, m, &r->no_cache) == -1)
			return -1;
		if (r->immutable && r->no_cache)
			return confval_err(ctx, g, "cache rule '%s' cannot be "
			    "both immutable and no_cache", r->match);
	}
	return 0;
}

/* Append one error page; s is the status' setting, p the page's. */
static int
conf_errpage_add(struct conf_ctx *ctx, const config_setting_t *s,
    const config_setting_t *p, struct conf_site *site, long long status)
{
	struct conf_error_page	*ep;
	const char		*str;
	size_t			 i;

	if (status < 400 || status > 599)
		return confval_err(ctx, s, "error page status %lld must be "
		    "between 400 and 599", status);
	for (i = 0; i < site->nerror_pages; i++)
		if (site->error_pages[i].status == status)
			return confval_err(ctx, s, "error page for %lld is "
			    "already set", status);
	if (confval_string(ctx, p, &str) == -1)
		return -1;
	if (str[0] != '/')
		return confval_err(ctx, p, "error page '%s' must be a URL path "
		    "starting with '/'", str);
	ep = &site->error_pages[site->nerror_pages];
	if ((ep->path = strdup(str)) == NULL)
		return confval_oom(ctx);
	ep->status = (int)status;
	site->nerror_pages++;
	return 0;
}

/*
 * libconfig names cannot start with a digit, so "404 = ..." is a syntax
 * error. Two spellings work instead:
 *	error_pages = { e404 = "/404.html"; e503 = "/busy.html"; };
 *	error_pages = ( { status = 404; page = "/404.html"; } );
 */
static int
conf_errpages(struct conf_ctx *ctx, const config_setting_t *s,
    struct conf_site *site)
{
	const config_setting_t	*e, *st, *pg;
	const char		*name;
	long long		 status;
	int			 i, n;

	if (!config_setting_is_group(s) && !config_setting_is_list(s))
		return confval_err(ctx, s, "'error_pages' must be a group "
		    "{ e404 = \"/404.html\"; } or a list "
		    "( { status = 404; page = \"/404.html\"; } )");
	n = config_setting_length(s);
	if (n == 0)
		return 0;
	site->error_pages = calloc((size_t)n, sizeof(*site->error_pages));
	if (site->error_pages == NULL)
		return confval_oom(ctx);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned int)i);
		if (config_setting_is_group(s)) {
			name = config_setting_name(e);
			if (name[0] != 'e' || strlen(name) != 4 ||
			    strspn(name + 1, "0123456789") != 3)
				return confval_err(ctx, e, "unknown key '%s' "
				    "in 'error_pages' (want eNNN, as in e404)",
				    name);
			status = strtol(name + 1, NULL, 10);
			if (conf_errpage_add(ctx, e, e, site, status) == -1)
				return -1;
			continue;
		}
		if (!config_setting_is_group(e))
			return confval_err(ctx, e, "'error_pages' entries must "
			    "be groups { status = 404; page = "
			    "\"/404.html\"; }");
		if (confval_keys(ctx, e, conf_errpage_keys, "error page") == -1)
			return -1;
		st = config_setting_get_member(e, "status");
		pg = config_setting_get_member(e, "page");
		if (st == NULL || pg == NULL)
			return confval_err(ctx, e, "error page needs 'status' "
			    "and 'page'");
		if (confval_int(ctx, st, 400, 599, &status) == -1 ||
		    conf_errpage_add(ctx, st, pg, site, status) == -1)
			return -1;
	}
	return 0;
}

/*
 * acme_challenge_root: a directory that must exist now (certbot creates
 * only what lies beneath it), so a typo shows at "porter -t" and not as
 * a failed certificate order.
 */
static int
conf_acme_root(struct conf_ctx *ctx, const config_setting_t *s,
    struct conf_site *site)
{
	struct stat	 st;
	const char	*str;

	if (confval_string(ctx, s, &str) == -1 ||
	    confval_path(ctx, s, str, &site->acme_challenge_root) == -1)
		return -1;
	if (stat(site->acme_challenge_root, &st) == -1)
		return confval_err(ctx, s, "acme_challenge_root '%s': %s",
		    site->acme_challenge_root, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return confval_err(ctx, s, "acme_challenge_root '%s': %s",
		    site->acme_challenge_root, strerror(ENOTDIR));
	return 0;
}

/* The site's own setting, or the top level's one it inherits. */
static const config_setting_t *
conf_member(const config_setting_t *g, const config_setting_t *top,
    const char *name)
{
	const config_setting_t	*s = NULL;

	if (g != NULL)
		s = config_setting_get_member(g, name);
	if (s == NULL)
		s = config_setting_get_member(top, name);
	return s;
}

/*
 * Fill a site from its group g in 'sites', or from the top level alone
 * when g is NULL (the implicit default site). Every key but names falls
 * back to the top level, then to the built-in default. *rootp gets the
 * setting to blame if the root turns out not to exist.
 */
static int
conf_site(struct conf_ctx *ctx, const config_setting_t *top,
    const config_setting_t *g, struct conf_site *site,
    const config_setting_t **rootp)
{
	static const char *const star[] = { "*", NULL };
	const config_setting_t	*s;
	const char		*str;

	if (g != NULL) {
		if (!config_setting_is_group(g))
			return confval_err(ctx, g, "'sites' entries must be "
			    "groups { names = ...; root = ...; }");
		if (confval_keys(ctx, g, conf_site_keys, "site") == -1)
			return -1;
		if ((s = config_setting_get_member(g, "names")) == NULL)
			return confval_err(ctx, g, "site needs 'names'");
		if (confval_strv(ctx, s, conf_check_name, &site->names,
		    &site->nnames) == -1)
			return -1;
		if (site->nnames == 0)
			return confval_err(ctx, s, "'names' needs at least one "
			    "name");
	} else if (confval_strv_default(ctx, star, &site->names,
	    &site->nnames) == -1)
		return -1;

	if ((s = conf_member(g, top, "root")) != NULL) {
		if (confval_string(ctx, s, &str) == -1 ||
		    confval_path(ctx, s, str, &site->root) == -1)
			return -1;
	} else if ((site->root = strdup(CONF_ROOT_DEFAULT)) == NULL)
		return confval_oom(ctx);
	*rootp = s != NULL ? s : g;

	if ((s = conf_member(g, top, "index")) != NULL) {
		if (confval_strv(ctx, s, conf_check_index, &site->index,
		    &site->nindex) == -1)
			return -1;
	} else if (confval_strv_default(ctx, conf_index_default, &site->index,
	    &site->nindex) == -1)
		return -1;

	if ((s = conf_member(g, top, "listing")) != NULL &&
	    confval_bool(ctx, s, &site->listing) == -1)
		return -1;
	if ((s = conf_member(g, top, "cache")) != NULL &&
	    conf_cache(ctx, s, site) == -1)
		return -1;
	if ((s = conf_member(g, top, "error_pages")) != NULL &&
	    conf_errpages(ctx, s, site) == -1)
		return -1;
	if ((s = conf_member(g, top, "acme_challenge_root")) != NULL &&
	    conf_acme_root(ctx, s, site) == -1)
		return -1;
	if (conf_https_site(ctx, top, g, site) == -1)
		return -1;
	return conf_tls_site(ctx, g, top, site);
}

static void
conf_site_clear(struct conf_site *site)
{
	size_t	 i;

	confval_strv_free(site->names, site->nnames);
	free(site->root);
	confval_strv_free(site->index, site->nindex);
	for (i = 0; i < site->ncache; i++)
		free(site->cache[i].match);
	free(site->cache);
	for (i = 0; i < site->nerror_pages; i++)
		free(site->error_pages[i].path);
	free(site->error_pages);
	free(site->acme_challenge_root);
	free(site->hsts);
	conf_tls_site_clear(site);
	memset(site, 0, sizeof(*site));
}

/* The setting that spelled name i of a site group, for line numbers. */
static const config_setting_t *
conf_name_setting(const config_setting_t *g, size_t i)
{
	const config_setting_t	*s;

	s = config_setting_get_member(g, "names");
	if (config_setting_is_aggregate(s))
		return config_setting_get_elem(s, (unsigned int)i);
	return s;
}

/*
 * A Host header must pick exactly one site: a name may appear only
 * once in the whole file, and so "*" marks at most one default site.
 */
static int
conf_site_names(struct conf_ctx *ctx, const config_setting_t *list,
    struct conf *conf, size_t i, size_t *deflt)
{
	const config_setting_t	*g, *first;
	struct conf_site	*site = &conf->sites[i], *other;
	size_t			 j, k, l;

	g = config_setting_get_elem(list, (unsigned int)i);
	for (j = 0; j < site->nnames; j++) {
		for (k = 0; k <= i; k++) {
			other = &conf->sites[k];
			for (l = 0; l < (k == i ? j : other->nnames); l++) {
				if (strcmp(other->names[l],
				    site->names[j]) != 0)
					continue;
				first = conf_name_setting(
				    config_setting_get_elem(list,
				    (unsigned int)k), l);
				if (strcmp(site->names[j], "*") == 0)
					return confval_err(ctx,
					    conf_name_setting(g, j),
					    "second default site '*' (the "
					    "first is on line %u)",
					    confval_line(ctx, first));
				return confval_err(ctx, conf_name_setting(g, j),
				    "duplicate site name '%s' (first on line "
				    "%u)", site->names[j],
				    confval_line(ctx, first));
			}
		}
		if (strcmp(site->names[j], "*") == 0)
			*deflt = i;
	}
	return 0;
}

static int
conf_sites(struct conf_ctx *ctx, const config_setting_t *top,
    struct conf *conf, const config_setting_t ***rootsp)
{
	const config_setting_t	*list, **roots, *unused;
	struct conf_site	 tmp;
	size_t			 i, n, deflt = (size_t)-1;
	int			 rv;

	if ((list = config_setting_get_member(top, "sites")) == NULL) {
		if ((conf->sites = calloc(1, sizeof(*conf->sites))) == NULL ||
		    (*rootsp = calloc(1, sizeof(**rootsp))) == NULL)
			return confval_oom(ctx);
		conf->nsites = 1;
		conf->default_site = 0;
		return conf_site(ctx, top, NULL, &conf->sites[0], *rootsp);
	}
	if (!config_setting_is_list(list))
		return confval_err(ctx, list, "'sites' must be a list of "
		    "groups ( { names = ...; }, ... )");
	if ((n = (size_t)config_setting_length(list)) == 0)
		return confval_err(ctx, list, "'sites' needs at least one "
		    "site");

	/*
	 * Check the top-level site keys even if every site overrides them:
	 * a mistake there should not wait until a site comes to inherit it.
	 */
	memset(&tmp, 0, sizeof(tmp));
	rv = conf_site(ctx, top, NULL, &tmp, &unused);
	conf_site_clear(&tmp);
	if (rv == -1)
		return -1;

	if ((conf->sites = calloc(n, sizeof(*conf->sites))) == NULL ||
	    (roots = calloc(n, sizeof(*roots))) == NULL)
		return confval_oom(ctx);
	*rootsp = roots;
	for (i = 0; i < n; i++) {
		/* Count it first so that conf_free() sees a half-made site. */
		conf->nsites = i + 1;
		if (conf_site(ctx, top,
		    config_setting_get_elem(list, (unsigned int)i),
		    &conf->sites[i], &roots[i]) == -1 ||
		    conf_site_names(ctx, list, conf, i, &deflt) == -1)
			return -1;
	}
	conf->default_site = deflt == (size_t)-1 ? 0 : deflt;
	return 0;
}

/*
 * Last, so that "root does not exist" means everything else was fine:
 * "porter -t" then reports the one thing a packaged config may lack.
 */
static int
conf_roots(struct conf_ctx *ctx, struct conf *conf,
    const config_setting_t **roots)
{
	struct stat	 st;
	size_t		 i;

	for (i = 0; i < conf->nsites; i++) {
		if (stat(conf->sites[i].root, &st) == -1)
			return confval_err(ctx, roots[i], "root '%s': %s",
			    conf->sites[i].root, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return confval_err(ctx, roots[i], "root '%s': %s",
			    conf->sites[i].root, strerror(ENOTDIR));
	}
	return 0;
}

struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	struct conf_ctx		 ctx;
	struct conf		*conf;
	config_t		 cfg;
	const config_setting_t	*top, *s, **roots = NULL;
	const char		*str;
	char			*slash;
	long			 ncpu;
	int			 cfg_live = 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.file = path;
	ctx.err = err;
	ctx.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if ((conf = calloc(1, sizeof(*conf))) == NULL) {
		confval_oom(&ctx);
		return NULL;
	}
	conf->keepalive_timeout = 15;
	conf->echo_idle_timeout = 60;
	conf->proxy_timeout = 3;
	conf->keepalive_requests = 1000;
	conf->header_timeout = 10;
	conf->body_timeout = 30;
	conf->send_timeout = 60;
	conf->max_header_size = 8192;
	conf->max_body_size = 1048576;
	conf->max_connections = 4096;
	conf->min_body_rate = 500;
	conf->min_send_rate = 500;
	conf->core_dumps = 0;
	conf->shutdown_timeout = 30;
	conf->worker_timeout = 60;
	conf->max_requests = 0;
	conf->workers = 0;
	conf->http2.max_concurrent_streams = 128;
	conf->http2.max_header_list_size = 0;	/* max_header_size */
	conf->http2.idle_timeout = 180;
	conf->compression.enabled = 1;
	conf->compression.min_size = 256;
	conf->compression.level = 6;
	conf_tls_defaults(conf);
	if ((conf->pid_file = strdup(PORTER_PID_DEFAULT)) == NULL ||
	    (conf->error_log = strdup("stderr")) == NULL ||
	    (conf->access_log = strdup(CONF_ACCESS_DEFAULT)) == NULL) {
		confval_oom(&ctx);
		goto fail;
	}
	if (confval_strv_default(&ctx, conf_types_default,
	    &conf->compression.types, &conf->compression.ntypes) == -1)
		goto fail;

	/* Absolute, so a reload after chdir("/") still finds the file. */
	if (confval_abspath(&ctx, path, &conf->path) == -1)
		goto fail;
	if ((ctx.dir = strdup(conf->path)) == NULL) {
		confval_oom(&ctx);
		goto fail;
	}
	slash = strrchr(ctx.dir, '/');
	slash[slash == ctx.dir ? 1 : 0] = '\0';

	if (confval_open(&ctx, path) == -1)
		goto fail;
	config_init(&cfg);
	cfg_live = 1;
	config_set_include_dir(&cfg, ctx.dir);
	if (config_read_file(&cfg, path) != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO ||
		    config_error_file(&cfg) == NULL)
			confval_err(&ctx, NULL, "%s", config_error_text(&cfg));
		else
			confval_errat(&ctx, config_error_file(&cfg),
			    (unsigned int)config_error_line(&cfg), "%s",
			    config_error_text(&cfg));
		goto fail;
	}
	if (confval_scan(&ctx, path, 0) == -1)
		goto fail;

	top = config_root_setting(&cfg);
	if (confval_keys(&ctx, top, conf_top_keys, NULL) == -1 ||
	    conf_listen(&ctx, top, conf) == -1 ||
	    conf_status_load(&ctx, top, conf) == -1 ||
	    confval_nums(&ctx, top, conf_top_nums, conf) == -1)
		goto fail;

	if (conf->workers == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		conf->workers = ncpu < 1 ? 1 : ncpu > PORTER_MAX_WORKERS ?
		    PORTER_MAX_WORKERS : (int)ncpu;
	}
	if ((s = config_setting_get_member(top, "user")) != NULL &&
	    confval_strdup(&ctx, s, &conf->user) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "group")) != NULL &&
	    confval_strdup(&ctx, s, &conf->group) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "core_dumps")) != NULL &&
	    confval_bool(&ctx, s, &conf->core_dumps) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "pid_file")) != NULL) {
		if (confval_string(&ctx, s, &str) == -1)
			goto fail;
		free(conf->pid_file);
		conf->pid_file = NULL;
		if (str[0] != '\0' && strcmp(str, "off") != 0 &&
		    confval_path(&ctx, s, str, &conf->pid_file) == -1)
			goto fail;
	}
	if ((s = config_setting_get_member(top, "log")) != NULL &&
	    conf_log(&ctx, s, conf) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "limits")) != NULL &&
	    (confval_group(&ctx, s) == -1 ||
	    confval_keys(&ctx, s, conf_limit_keys, "'limits'") == -1 ||
	    confval_nums(&ctx, s, conf_limit_nums, conf) == -1))
		goto fail;
	if ((s = config_setting_get_member(top, "compression")) != NULL &&
	    conf_compression(&ctx, s, conf) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "http2")) != NULL &&
	    (confval_group(&ctx, s) == -1 ||
	    confval_keys(&ctx, s, conf_http2_keys, "'http2'") == -1 ||
	    confval_nums(&ctx, s, conf_http2_nums, conf) == -1))
		goto fail;
	if (conf->http2.max_header_list_size == 0)
		conf->http2.max_header_list_size = conf->max_header_size;
	if (conf_tls_top(&ctx, top, conf) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "client_limits")) != NULL &&
	    conf_limits(&ctx, s, conf) == -1)
		goto fail;
	if (conf_sites(&ctx, top, conf, &roots) == -1 ||
	    conf_https_check(&ctx, top, config_setting_get_member(top,
	    "sites"), conf) == -1 ||
	    conf_tls_check(&ctx, top, conf) == -1 ||
	    conf_roots(&ctx, conf, roots) == -1)
		goto fail;

	free(roots);
	config_destroy(&cfg);
	free(ctx.dir);
	return conf;
fail:
	free(roots);
	if (cfg_live)
		config_destroy(&cfg);
	free(ctx.dir);
	conf_free(conf);
	return NULL;
}

void
conf_free(struct conf *conf)
{
	size_t	 i;

	if (conf == NULL)
		return;
	free(conf->path);
	confval_strv_free(conf->listen, conf->nlisten);
	/* <=: the entry a failed load was reading (the array has one more) */
	for (i = 0; conf->listeners != NULL && i <= conf->nlisten; i++)
		free(conf->listeners[i].trusted);
	free(conf->listeners);
	conf_status_free(conf);
	free(conf->user);
	free(conf->group);
	free(conf->pid_file);
	free(conf->error_log);
	free(conf->access_log);
	confval_strv_free(conf->compression.types, conf->compression.ntypes);
	conf_tls_free(conf);
	for (i = 0; i < conf->nsites; i++)
		conf_site_clear(&conf->sites[i]);
	free(conf->sites);
	conf_limits_free(conf->limits);
	free(conf);
}
