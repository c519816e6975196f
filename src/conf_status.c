/*
 * conf_status.c - the "status" and "health" groups of the configuration:
 * the status listener's addresses and who may use it, and how porter
 * drains (see struct conf_status, struct conf_health in porter.h).
 *
 *   status: { listen = [ "127.0.0.1:9180" ]; allow = [ "127.0.0.1/32" ];
 *             access_log = false; };
 *   health: { drain_status = 503; shutdown_delay = 0; };
 *
 * Kept apart from conf.c, which knows the sites and the public
 * listeners; errors carry file:line through confval.c as everywhere.
 */
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "porter.h"
#include "confval.h"
#include "limit.h"

static const char *const conf_status_keys[] = {
	"listen", "allow", "access_log", NULL
};
static const char *const conf_health_keys[] = {
	"drain_status", "shutdown_delay", NULL
};
static const char *const conf_allow_default[] = {
	"127.0.0.1/32", "::1/128", NULL
};

static const struct conf_num conf_health_nums[] = {
	{ "drain_status", offsetof(struct conf, health.drain_status),
	    CONF_NUM_INT, 404, 503 },
	/* An hour is far more than any balancer's inter x fall. */
	{ "shutdown_delay", offsetof(struct conf, health.shutdown_delay),
	    CONF_NUM_INT, 0, 3600 },
	{ NULL, 0, 0, 0, 0 }
};

static int
conf_check_status_listen(struct conf_ctx *ctx, const config_setting_t *s,
    char *str)
{
	struct net_addr a[2];
	char why[256];

	if (net_parse_listen(str, a, 2, why, sizeof(why)) == -1)
		return confval_err(ctx, s, "%s", why);
	return 0;
}

static int
conf_check_cidr(struct conf_ctx *ctx, const config_setting_t *s, char *str)
{
	struct limit_cidr c;

	if (limit_cidr_parse(str, &c) == -1)
		return confval_err(ctx, s, "'%s' is not an address or a CIDR "
		    "network (\"192.0.2.0/24\", \"::1/128\")", str);
	return 0;
}

/* Is a the unspecified address of its family (0.0.0.0, [::])? */
static int
conf_addr_any(const struct net_addr *a)
{
	const struct sockaddr_in *s4 = (const void *)&a->ss;
	const struct sockaddr_in6 *s6 = (const void *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return s4->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
}

/*
 * Would binding both fail (EADDRINUSE)? The same port, and the same
 * address, or a wildcard that covers the other: 0.0.0.0 every IPv4
 * address, [::] every IPv6 one, and IPv4 too unless it is IPV6_V6ONLY.
 */
static int
conf_addr_clash(const struct net_addr *a, const struct net_addr *b)
{
	const struct net_addr *w;

	if (net_addr_port((const struct sockaddr *)&a->ss) !=
	    net_addr_port((const struct sockaddr *)&b->ss))
		return 0;
	if (net_addr_equal(a, b))
		return 1;
	if (a->ss.ss_family == b->ss.ss_family)
		return conf_addr_any(a) || conf_addr_any(b);
	w = a->ss.ss_family == AF_INET6 ? a : b;
	return conf_addr_any(w) && !w->v6only;
}

/*
 * A status address may be neither a public one (the site would answer
 * there, or bind() would fail) nor given twice. Port 0 never clashes.
 */
static int
conf_status_overlap(struct conf_ctx *ctx, const config_setting_t *s,
    const struct conf *conf)
{
	struct net_addr a[2], b[2];
	char why[256];
	size_t i, j, n;
	int na, nb, k;
	const char *other;

	n = conf->nlisten + conf->status.nlisten;
	for (i = 0; i < conf->status.nlisten; i++) {
		na = net_parse_listen(conf->status.listen[i], a, 2, why,
		    sizeof(why));
		if (na == -1 || net_addr_port((struct sockaddr *)&a[0].ss) == 0)
			continue;
		/* Every public address, then the status ones before i. */
		for (j = 0; j < conf->nlisten + i && j < n; j++) {
			other = j < conf->nlisten ? conf->listen[j] :
			    conf->status.listen[j - conf->nlisten];
			if ((nb = net_parse_listen(other, b, 2, why,
			    sizeof(why))) == -1)
				continue;
			for (k = 0; k < na * nb; k++)
				if (conf_addr_clash(&a[k / nb], &b[k % nb]))
					return confval_err(ctx,
					    config_setting_is_aggregate(s) ?
					    config_setting_get_elem(s,
					    (unsigned int)i) : s,
					    "status listen address '%s' "
					    "overlaps %s'%s'",
					    conf->status.listen[i],
					    j < conf->nlisten ? "listen " : "",
					    other);
		}
	}
	return 0;
}

static int
conf_status_group(struct conf_ctx *ctx, const config_setting_t *g,
    struct conf *conf)
{
	const config_setting_t *s;

	if (confval_group(ctx, g) == -1 ||
	    confval_keys(ctx, g, conf_status_keys, "'status'") == -1)
		return -1;
	if ((s = config_setting_get_member(g, "listen")) != NULL &&
	    (confval_strv(ctx, s, conf_check_status_listen,
	    &conf->status.listen, &conf->status.nlisten) == -1 ||
	    conf_status_overlap(ctx, s, conf) == -1))
		return -1;
	if ((s = config_setting_get_member(g, "allow")) != NULL) {
		confval_strv_free(conf->status.allow, conf->status.nallow);
		conf->status.allow = NULL;
		conf->status.nallow = 0;
		if (confval_strv(ctx, s, conf_check_cidr, &conf->status.allow,
		    &conf->status.nallow) == -1)
			return -1;
	}
	if ((s = config_setting_get_member(g, "access_log")) != NULL &&
	    confval_bool(ctx, s, &conf->status.access_log) == -1)
		return -1;
	return 0;
}

static int
conf_health_group(struct conf_ctx *ctx, const config_setting_t *g,
    struct conf *conf)
{
	const config_setting_t *s;

	if (confval_group(ctx, g) == -1 ||
	    confval_keys(ctx, g, conf_health_keys, "'health'") == -1 ||
	    confval_nums(ctx, g, conf_health_nums, conf) == -1)
		return -1;
	s = config_setting_get_member(g, "drain_status");
	if (conf->health.drain_status != 503 &&
	    conf->health.drain_status != 404)
		return confval_err(ctx, s, "'drain_status' must be 503 or 404 "
		    "(404 for HAProxy's http-check disable-on-404)");
	return 0;
}

int
conf_status_load(struct conf_ctx *ctx, const config_setting_t *top,
    struct conf *conf)
{
	const config_setting_t *s;

	conf->health.drain_status = 503;
	conf->health.shutdown_delay = 0;
	if (confval_strv_default(ctx, conf_allow_default, &conf->status.allow,
	    &conf->status.nallow) == -1)
		return -1;
	if ((s = config_setting_get_member(top, "status")) != NULL &&
	    conf_status_group(ctx, s, conf) == -1)
		return -1;
	if ((s = config_setting_get_member(top, "health")) != NULL &&
	    conf_health_group(ctx, s, conf) == -1)
		return -1;
	return 0;
}

void
conf_status_free(struct conf *conf)
{
	confval_strv_free(conf->status.listen, conf->status.nlisten);
	confval_strv_free(conf->status.allow, conf->status.nallow);
}
