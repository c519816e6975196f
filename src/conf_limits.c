/*
 * conf_limits.c - the client_limits { ... } block of porter.conf(5):
 * every key range-checked with a "file:line:" error, into a struct
 * conf_limits (climit.h) that the limit engine's parameters come from.
 * Apart from conf.c so that file does not grow with each feature.
 */
#include <errno.h>
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>

#include "porter.h"
#include "confval.h"
#include "climit.h"

/* A number read into struct conf_limits (integers or not). */
struct cl_num {
	const char	*name;
	size_t		 off;
	int		 is_double;	/* else unsigned */
	double		 min, max;
};

#define CLP(f)	offsetof(struct conf_limits, p.f)
#define CLF(f)	offsetof(struct conf_limits, f)

static const struct cl_num cl_nums[] = {
	{ "rate", CLP(rate), 1, 0.001, 1e6 },
	{ "burst", CLP(burst), 1, 1, 1e7 },
	{ "asset_weight", CLP(asset_weight), 1, 0.001, 1 },
	{ "aggregate_factor", CLP(aggregate_factor), 1, 1, 100 },
	{ "per_address_connections", CLP(per_address_connections), 0, 0, 65535 },
	{ "shared_agents", CLP(shared_agents), 0, 2, 64 },
	{ "table_size", CLF(table_size), 0, 1024, 1 << 24 },
	{ "ban_table_size", CLF(ban_table_size), 0, 64, 1 << 20 },
	{ NULL, 0, 0, 0, 0 }
};

static const struct cl_num cl_ban_nums[] = {
	{ "probe_points", CLP(probe_points), 0, 1, 100000 },
	{ "probe_window", CLP(probe_window), 0, 1, 86400 },
	{ "ignore_seconds", CLP(ignore_seconds), 0, 1, 86400 },
	{ "time", CLP(ban_time), 0, 60, 86400 },
	{ "factor", CLP(ban_factor), 1, 1, 16 },
	{ "max_time", CLP(ban_max_time), 0, 60, LIMIT_BAN_CEILING },
	{ "shared_max_time", CLP(ban_shared_max_time), 0, 60, LIMIT_BAN_CEILING },
	{ "memory", CLP(ban_memory), 0, 60, 30 * 86400 },
	{ "manual_max_time", CLF(manual_max_time), 0, 1, LIMIT_BAN_CEILING },
	{ NULL, 0, 0, 0, 0 }
};

static const char *const cl_keys[] = {
	"mode", "ipv4_prefix", "ipv6_prefix", "split_by_agent", "rate",
	"burst", "asset_weight", "aggregate_factor", "per_address_connections",
	"allow", "shared", "auto_shared", "shared_agents", "contact", "ban",
	"table_size", "ban_table_size", "state_file", NULL
};
static const char *const cl_ban_keys[] = {
	"probe_points", "probe_window", "ignore_seconds", "time", "factor",
	"max_time", "shared_max_time", "memory", "action", "manual_max_time",
	NULL
};

const char *
conf_limits_mode_name(enum limit_mode m)
{
	return m == LIMIT_ENFORCE ? "enforce" : m == LIMIT_DRY_RUN ?
	    "dry-run" : "off";
}

static int
cl_numbers(struct conf_ctx *ctx, const config_setting_t *g,
    const struct cl_num *t, struct conf_limits *cl)
{
	const config_setting_t	*s;
	char			*field;
	double			 v;
	int			 type;

	for (; t->name != NULL; t++) {
		if ((s = config_setting_get_member(g, t->name)) == NULL)
			continue;
		type = config_setting_type(s);
		if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
			v = (double)config_setting_get_int64(s);
		else if (type == CONFIG_TYPE_FLOAT && t->is_double)
			v = config_setting_get_float(s);
		else
			return confval_err(ctx, s, "'%s' must be %s", t->name,
			    t->is_double ? "a number" : "an integer");
		if (!(v >= t->min && v <= t->max))
			return confval_err(ctx, s, "'%s' must be between %g "
			    "and %g", t->name, t->min, t->max);
		field = (char *)cl + t->off;
		if (t->is_double)
			*(double *)(void *)field = v;
		else
			*(unsigned *)(void *)field = (unsigned)v;
	}
	return 0;
}

/* A list of CIDRs ("192.0.2.0/24", "2001:db8::/48", an address). */
static int
cl_cidrs(struct conf_ctx *ctx, const config_setting_t *s,
    struct limit_cidr **out, size_t *nout)
{
	const config_setting_t	*e;
	const char		*str;
	int			 i, n;

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return confval_err(ctx, s, "'%s' must be a list of addresses "
		    "or networks [ \"192.0.2.0/24\", ... ]",
		    config_setting_name(s));
	n = config_setting_length(s);
	free(*out);
	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	if ((*out = calloc((size_t)n, sizeof(**out))) == NULL)
		return confval_oom(ctx);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (confval_string(ctx, e, &str) == -1)
			return -1;
		if (limit_cidr_parse(str, &(*out)[i]) == -1)
			return confval_err(ctx, e, "'%s': '%s' is not an "
			    "address or network (a.b.c.d/len, x:y::/len)",
			    config_setting_name(s), str);
		(*nout)++;
	}
	return 0;
}

static int
cl_bool(struct conf_ctx *ctx, const config_setting_t *g, const char *name,
    int *out)
{
	const config_setting_t	*s;

	if ((s = config_setting_get_member(g, name)) == NULL)
		return 0;
	return confval_bool(ctx, s, out);
}

static int
cl_ban(struct conf_ctx *ctx, const config_setting_t *g,
    struct conf_limits *cl)
{
	const config_setting_t	*s;
	const char		*str;

	if (confval_group(ctx, g) == -1 ||
	    confval_keys(ctx, g, cl_ban_keys, "'client_limits.ban'") == -1 ||
	    cl_numbers(ctx, g, cl_ban_nums, cl) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "action")) != NULL) {
		if (confval_string(ctx, s, &str) == -1)
			return -1;
		if (strcmp(str, "respond") == 0)
			cl->action_close = 0;
		else if (strcmp(str, "close") == 0)
			cl->action_close = 1;
		else
			return confval_err(ctx, s, "'action' must be "
			    "\"respond\" or \"close\"");
	}
	if (cl->p.ban_max_time < cl->p.ban_time)
		return confval_err(ctx, g, "'max_time' (%u) must be at least "
		    "'time' (%u)", cl->p.ban_max_time, cl->p.ban_time);
	if (cl->p.ban_shared_max_time > cl->p.ban_max_time)
		return confval_err(ctx, g, "'shared_max_time' (%u) must be at "
		    "most 'max_time' (%u)", cl->p.ban_shared_max_time,
		    cl->p.ban_max_time);
	return 0;
}

int
conf_limits(struct conf_ctx *ctx, const config_setting_t *g,
    struct conf *conf)
{
	struct conf_limits	*cl;
	const config_setting_t	*s;
	const char		*str;
	char			 why[128];
	long long		 v;

	if (confval_group(ctx, g) == -1 ||
	    confval_keys(ctx, g, cl_keys, "'client_limits'") == -1)
		return -1;
	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return confval_oom(ctx);
	conf->limits = cl;
	limit_params_default(&cl->p);
	cl->p.per_address_connections = 512;
	cl->table_size = 65536;
	cl->ban_table_size = 4096;
	cl->manual_max_time = LIMIT_BAN_CEILING;

	if ((s = config_setting_get_member(g, "mode")) != NULL) {
		if (confval_string(ctx, s, &str) == -1)
			return -1;
		if (strcmp(str, "off") == 0)
			cl->p.mode = LIMIT_OFF;
		else if (strcmp(str, "dry-run") == 0)
			cl->p.mode = LIMIT_DRY_RUN;
		else if (strcmp(str, "enforce") == 0)
			cl->p.mode = LIMIT_ENFORCE;
		else
			return confval_err(ctx, s, "'mode' must be \"off\", "
			    "\"dry-run\" or \"enforce\"");
	}
	if ((s = config_setting_get_member(g, "ipv4_prefix")) != NULL) {
		if (confval_int(ctx, s, 8, 32, &v) == -1)
			return -1;
		cl->p.ipv4_prefix = (int)v;
	}
	if ((s = config_setting_get_member(g, "ipv6_prefix")) != NULL) {
		if (confval_int(ctx, s, 32, 128, &v) == -1)
			return -1;
		cl->p.ipv6_prefix = (int)v;
	}
	if (cl_bool(ctx, g, "split_by_agent", &cl->p.split_by_agent) == -1 ||
	    cl_bool(ctx, g, "auto_shared", &cl->p.auto_shared) == -1 ||
	    cl_numbers(ctx, g, cl_nums, cl) == -1)
		return -1;
	if (cl->table_size % 8 != 0 || cl->ban_table_size % 8 != 0)
		return confval_err(ctx, g, "'table_size' and 'ban_table_size' "
		    "must be multiples of 8");
	if ((s = config_setting_get_member(g, "allow")) != NULL &&
	    cl_cidrs(ctx, s, &cl->allow, &cl->p.nallow) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "shared")) != NULL &&
	    cl_cidrs(ctx, s, &cl->shared, &cl->p.nshared) == -1)
		return -1;
	cl->p.allow = cl->allow;
	cl->p.shared = cl->shared;
	if ((s = config_setting_get_member(g, "contact")) != NULL) {
		if (confval_string(ctx, s, &str) == -1)
			return -1;
		if (strlen(str) > 200 || strpbrk(str, "<>&\"\r\n") != NULL)
			return confval_err(ctx, s, "'contact' must be at most "
			    "200 characters without < > & \" or line breaks");
		if (str[0] != '\0' && (cl->contact = strdup(str)) == NULL)
			return confval_oom(ctx);
	}
	if ((s = config_setting_get_member(g, "state_file")) != NULL) {
		if (confval_string(ctx, s, &str) == -1)
			return -1;
		if (str[0] != '\0' &&
		    confval_path(ctx, s, str, &cl->state_file) == -1)
			return -1;
	}
	if ((s = config_setting_get_member(g, "ban")) != NULL &&
	    cl_ban(ctx, s, cl) == -1)
		return -1;
	/* The engine checks again, and derives its integer fields. */
	if (limit_params_prepare(&cl->p, why, sizeof(why)) == -1)
		return confval_err(ctx, g, "%s", why);
	return 0;
}

void
conf_limits_free(struct conf_limits *cl)
{
	if (cl == NULL)
		return;
	free(cl->allow);
	free(cl->shared);
	free(cl->contact);
	free(cl->state_file);
	free(cl);
}
