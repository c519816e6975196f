/*
 * conf.c - read a libconfig file into a struct conf, validate every key
 * and copy every string, so that nothing refers to libconfig's tree once
 * conf_load() returns.
 *
 * Errors read "file:line: message" and name the key. Relative paths are
 * taken from the directory of the configuration file, not from the cwd,
 * so a config works the same whoever starts the daemon and from where.
 */
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "porter.h"

#define CONF_ROOT_DEFAULT	"/var/www/html"
#define CONF_ACCESS_DEFAULT	"/var/log/porter/access.log"
#define CONF_INCLUDE_DEPTH	10	/* libconfig's own limit */
#define CONF_MAX_AGE_MAX	315360000LL	/* ten years */

/* Bounds that must also fit a long, which is 32 bits on i386 and armhf. */
#define CONF_LONG_BOUND(v)	((v) < LONG_MAX ? (v) : LONG_MAX)

struct conf_ctx {
	const char	*file;		/* as the caller spelled it */
	char		*dir;		/* absolute directory of the file */
	char		*err;
	size_t		 errlen;
};

enum conf_numtype {
	CONF_NUM_INT,
	CONF_NUM_LONG,
	CONF_NUM_INT64
};

/* An integer key stored straight into struct conf. */
struct conf_num {
	const char		*name;
	size_t			 off;
	enum conf_numtype	 type;
	long long		 min;
	long long		 max;
};

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
	{ NULL, 0, 0, 0, 0 }
};

static const struct conf_num conf_compression_nums[] = {
	{ "min_size", offsetof(struct conf, compression.min_size),
	    CONF_NUM_LONG, 0, CONF_LONG_BOUND(1LL << 31) },
	{ "level", offsetof(struct conf, compression.level),
	    CONF_NUM_INT, 1, 9 },
	{ NULL, 0, 0, 0, 0 }
};

static const char *const conf_top_keys[] = {
	"listen", "workers", "user", "group", "pid_file", "log", "limits",
	"shutdown_timeout", "worker_timeout", "max_requests", "compression",
	"sites",
	/* the default site's keys, inherited by every entry of sites */
	"root", "index", "listing", "cache", "error_pages",
	NULL
};
static const char *const conf_log_keys[] = { "error", "access", NULL };
static const char *const conf_limit_keys[] = {
	"keepalive_timeout", "keepalive_requests", "header_timeout",
	"body_timeout", "send_timeout", "max_header_size", "max_body_size",
	"max_connections", NULL
};
static const char *const conf_compression_keys[] = {
	"enabled", "types", "min_size", "level", NULL
};
static const char *const conf_site_keys[] = {
	"names", "root", "index", "listing", "cache", "error_pages", NULL
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

typedef int (*conf_check_fn)(struct conf_ctx *, const config_setting_t *,
    char *);

static int	 conf_verr(struct conf_ctx *, const char *, unsigned int,
		    const char *, va_list)
		    __attribute__((format(printf, 4, 0)));
static int	 conf_errat(struct conf_ctx *, const char *, unsigned int,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static unsigned int conf_line(struct conf_ctx *, const config_setting_t *);
static int	 conf_err(struct conf_ctx *, const config_setting_t *,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
static const char *conf_keyname(const config_setting_t *);
static int	 conf_oom(struct conf_ctx *);
static char	*conf_clean(char *);
static char	*conf_join(const char *, const char *, size_t);
static int	 conf_abspath(struct conf_ctx *, const char *, char **);
static int	 conf_path(struct conf_ctx *, const config_setting_t *,
		    const char *, char **);
static int	 conf_open(struct conf_ctx *, const char *);
static int	 conf_slurp(const char *, char **, size_t *);
static int	 conf_scan(struct conf_ctx *, const char *, int);
static int	 conf_keys(struct conf_ctx *, const config_setting_t *,
		    const char *const *, const char *);
static int	 conf_group(struct conf_ctx *, const config_setting_t *);
static int	 conf_int(struct conf_ctx *, const config_setting_t *,
		    long long, long long, long long *);
static int	 conf_nums(struct conf_ctx *, const config_setting_t *,
		    const struct conf_num *, struct conf *);
static int	 conf_bool(struct conf_ctx *, const config_setting_t *, int *);
static int	 conf_string(struct conf_ctx *, const config_setting_t *,
		    const char **);
static int	 conf_strdup(struct conf_ctx *, const config_setting_t *,
		    char **);
static int	 conf_strv_default(struct conf_ctx *, const char *const *,
		    char ***, size_t *);
static void	 conf_strv_free(char **, size_t);
static int	 conf_strv(struct conf_ctx *, const config_setting_t *,
		    conf_check_fn, char ***, size_t *);
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

/*
 * Fill ctx->err with "file:line: message", or "file: message" when line
 * is 0. Always returns -1 so callers can return it.
 */
static int
conf_verr(struct conf_ctx *ctx, const char *file, unsigned int line,
    const char *fmt, va_list ap)
{
	char		 msg[512];
	const char	*dir = "", *sep = "";

	if (ctx->err == NULL || ctx->errlen == 0)
		return -1;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (file == NULL)
		file = ctx->file;
	/* libconfig names an included file as the @include line spelled it. */
	if (file[0] != '/' && strcmp(file, ctx->file) != 0 &&
	    ctx->dir != NULL) {
		dir = ctx->dir;
		sep = "/";
	}
	if (line > 0)
		snprintf(ctx->err, ctx->errlen, "%s%s%s:%u: %s", dir, sep, file,
		    line, msg);
	else
		snprintf(ctx->err, ctx->errlen, "%s%s%s: %s", dir, sep, file,
		    msg);
	return -1;
}

static int
conf_errat(struct conf_ctx *ctx, const char *file, unsigned int line,
    const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_verr(ctx, file, line, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * The line of a setting. libconfig stamps a string in a list with the
 * line of the token after it, so the last entry of
 *	listen = [ "*:80",
 *	    "*:8080"
 *	];
 * gets the line of the bracket. Look back from there for the quoted
 * string itself; one with escapes is not found and keeps libconfig's line.
 */
static unsigned int
conf_line(struct conf_ctx *ctx, const config_setting_t *s)
{
	const config_setting_t	*parent = config_setting_parent(s);
	const char		*file = config_setting_source_file(s);
	char			*path = NULL, *buf = NULL, *needle = NULL;
	char			*p, *nl;
	size_t			 len;
	unsigned int		 line, floor, n, found;

	found = line = config_setting_source_line(s);
	if (config_setting_name(s) != NULL || parent == NULL ||
	    config_setting_type(s) != CONFIG_TYPE_STRING || file == NULL)
		return line;
	floor = config_setting_source_line(parent);
	if (file[0] != '/' && strcmp(file, ctx->file) != 0)
		path = conf_join(ctx->dir, file, strlen(file));
	else
		path = strdup(file);
	len = strlen(config_setting_get_string(s)) + 3;
	if (path == NULL || (needle = malloc(len)) == NULL)
		goto done;
	snprintf(needle, len, "\"%s\"", config_setting_get_string(s));
	if (conf_slurp(path, &buf, &len) == -1)
		goto done;
	for (p = buf, n = 1; n <= line && *p != '\0'; p = nl + 1, n++) {
		if ((nl = strchr(p, '\n')) != NULL)
			*nl = '\0';
		if (n >= floor && strstr(p, needle) != NULL)
			found = n;
		if (nl == NULL)
			break;
	}
done:
	free(path);
	free(needle);
	free(buf);
	return found;
}

/* An error about setting s; s NULL blames the file as a whole. */
static int
conf_err(struct conf_ctx *ctx, const config_setting_t *s, const char *fmt,
    ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	if (s == NULL)
		conf_verr(ctx, NULL, 0, fmt, ap);
	else
		conf_verr(ctx, config_setting_source_file(s),
		    conf_line(ctx, s), fmt, ap);
	va_end(ap);
	return -1;
}

/* The key a setting belongs to; list elements borrow their list's name. */
static const char *
conf_keyname(const config_setting_t *s)
{
	for (; s != NULL; s = config_setting_parent(s))
		if (config_setting_name(s) != NULL)
			return config_setting_name(s);
	return "?";
}

static int
conf_oom(struct conf_ctx *ctx)
{
	return conf_err(ctx, NULL, "%s", strerror(ENOMEM));
}

/*
 * Lexically clean an absolute path in place: squeeze "//", drop "." and
 * let ".." eat the component before it. This is how a shell's "cd" reads
 * a path, not how the kernel does when that component is a symlink; the
 * root check below stat()s the cleaned string, so what is checked is
 * what gets served.
 */
static char *
conf_clean(char *path)
{
	char	*r = path, *w = path + 1;
	size_t	 len;

	while (*r != '\0') {
		if (*r == '/') {
			r++;
			continue;
		}
		len = strcspn(r, "/");
		if (len == 1 && r[0] == '.') {
			r += len;
			continue;
		}
		if (len == 2 && r[0] == '.' && r[1] == '.') {
			while (w > path + 1 && w[-1] != '/')
				w--;
			if (w > path + 1)
				w--;
			r += len;
			continue;
		}
		if (w > path + 1)
			*w++ = '/';
		memmove(w, r, len);
		w += len;
		r += len;
	}
	*w = '\0';
	return path;
}

/* "dir/name", or name alone when it is absolute; NULL if out of memory. */
static char *
conf_join(const char *dir, const char *name, size_t namelen)
{
	char	*p;
	size_t	 dirlen = name[0] == '/' ? 0 : strlen(dir) + 1;

	if ((p = malloc(dirlen + namelen + 1)) == NULL)
		return NULL;
	if (dirlen > 0) {
		memcpy(p, dir, dirlen - 1);
		p[dirlen - 1] = '/';
	}
	memcpy(p + dirlen, name, namelen);
	p[dirlen + namelen] = '\0';
	return p;
}

/* The absolute, cleaned form of the path the caller gave us. */
static int
conf_abspath(struct conf_ctx *ctx, const char *path, char **out)
{
	char	 cwd[PATH_MAX];

	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
		return conf_err(ctx, NULL, "getcwd: %s", strerror(errno));
	if ((*out = conf_join(cwd, path, strlen(path))) == NULL)
		return conf_oom(ctx);
	conf_clean(*out);
	return 0;
}

/* A path from the file: relative ones hang off the file's directory. */
static int
conf_path(struct conf_ctx *ctx, const config_setting_t *s, const char *path,
    char **out)
{
	if (path[0] == '\0')
		return conf_err(ctx, s, "'%s' must not be empty",
		    conf_keyname(s));
	if ((*out = conf_join(ctx->dir, path, strlen(path))) == NULL)
		return conf_oom(ctx);
	conf_clean(*out);
	return 0;
}

/*
 * libconfig says only "file I/O error" and, given a directory, parses
 * an empty file. Look first, so that the message carries errno and
 * "porter -f /etc/porter" fails instead of starting on defaults.
 */
static int
conf_open(struct conf_ctx *ctx, const char *path)
{
	struct stat	 st;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return conf_err(ctx, NULL, "%s", strerror(errno));
	if (fstat(fd, &st) == -1) {
		saved = errno;
		close(fd);
		return conf_err(ctx, NULL, "%s", strerror(saved));
	}
	close(fd);
	if (S_ISDIR(st.st_mode))
		return conf_err(ctx, NULL, "%s", strerror(EISDIR));
	return 0;
}

/* Read a whole file into a NUL-terminated buffer. */
static int
conf_slurp(const char *path, char **out, size_t *outlen)
{
	FILE	*fp;
	char	*buf = NULL, *nbuf;
	size_t	 len = 0, size = 0, n;

	if ((fp = fopen(path, "re")) == NULL)
		return -1;
	for (;;) {
		if (size - len < 4096) {
			size = size ? size * 2 : 8192;
			if ((nbuf = realloc(buf, size)) == NULL)
				goto fail;
			buf = nbuf;
		}
		n = fread(buf + len, 1, size - len - 1, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp))
		goto fail;
	fclose(fp);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
fail:
	free(buf);
	fclose(fp);
	return -1;
}

/*
 * libconfig 1.5 reads an integer without an L suffix as an int and
 * silently wraps it (10737418240 comes back as -2147483648, 4294967311
 * as 15); newer versions widen it instead. Scan the literals ourselves
 * so a large value is an error, with the fix in it, on every version,
 * rather than a different number on some. This runs after libconfig
 * accepted the file, so it only needs to tell literals apart from
 * comments, strings and names, and to follow @include the way
 * libconfig does (relative to the include directory).
 */
static int
conf_scan(struct conf_ctx *ctx, const char *file, int depth)
{
	char		*buf = NULL, *p, *end, *start, *inc = NULL;
	size_t		 len, n;
	unsigned int	 line = 1;
	unsigned long long v;
	int		 hex, big, rv = -1;

	if (depth > CONF_INCLUDE_DEPTH)
		return 0;
	/* It was readable a moment ago; libconfig has the contents already. */
	if (conf_slurp(file, &buf, &len) == -1)
		return 0;
	end = buf + len;
	for (p = buf; p < end;) {
		if (*p == '\n') {
			line++;
			p++;
		} else if (*p == '#' || (*p == '/' && p[1] == '/')) {
			p += strcspn(p, "\n");
		} else if (*p == '/' && p[1] == '*') {
			for (p += 2; p < end && !(p[0] == '*' && p[1] == '/');
			    p++)
				if (*p == '\n')
					line++;
			p = p < end ? p + 2 : end;
		} else if (*p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (*p == '\n')
					line++;
			}
			p = p < end ? p + 1 : end;
		} else if (isalpha((unsigned char)*p) || *p == '*' ||
		    *p == '@') {
			start = p++;
			while (p < end && (isalnum((unsigned char)*p) ||
			    *p == '-' || *p == '_' || *p == '*'))
				p++;
			if (p - start != 8 || memcmp(start, "@include", 8) != 0)
				continue;
			p += strspn(p, " \t");
			if (*p != '"')
				continue;
			n = strcspn(p + 1, "\"\n");
			free(inc);
			if ((inc = conf_join(ctx->dir, p + 1, n)) == NULL) {
				conf_oom(ctx);
				goto done;
			}
			if (conf_scan(ctx, inc, depth + 1) == -1)
				goto done;
		} else if (isdigit((unsigned char)*p)) {
			start = p;
			hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
			for (p++; p < end; p++) {
				if (isalnum((unsigned char)*p) || *p == '.')
					continue;
				/* the sign of a float's exponent: 1e-5 */
				if (!hex && (*p == '-' || *p == '+') &&
				    (p[-1] == 'e' || p[-1] == 'E'))
					continue;
				break;
			}
			n = (size_t)(p - start);
			/* Floats, L-suffixed integers and junk are not ours. */
			if (hex ? strspn(start + 2, "0123456789abcdefABCDEF") !=
			    n - 2 || n == 2 : strspn(start, "0123456789") != n)
				continue;
			v = strtoull(start, NULL, hex ? 16 : 10);
			if (hex)
				big = n - 2 > 8 || v > INT_MAX;
			else if (start > buf && start[-1] == '-')
				big = n > 10 ||
				    v > (unsigned long long)INT_MAX + 1;
			else
				big = n > 10 || v > INT_MAX;
			if (big) {
				if (start > buf && start[-1] == '-') {
					start--;
					n++;
				}
				conf_errat(ctx, file, line, "integer %.*s does "
				    "not fit in 32 bits; write it as %.*sL",
				    (int)n, start, (int)n, start);
				goto done;
			}
		} else
			p++;
	}
	rv = 0;
done:
	free(inc);
	free(buf);
	return rv;
}

/* Every member of a group must be one we know. */
static int
conf_keys(struct conf_ctx *ctx, const config_setting_t *g,
    const char *const *keys, const char *where)
{
	const config_setting_t	*s;
	const char		*const *k;
	int			 i, n;

	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, (unsigned int)i);
		for (k = keys; *k != NULL; k++)
			if (strcmp(*k, config_setting_name(s)) == 0)
				break;
		if (*k != NULL)
			continue;
		if (where == NULL)
			return conf_err(ctx, s, "unknown key '%s'",
			    config_setting_name(s));
		return conf_err(ctx, s, "unknown key '%s' in %s",
		    config_setting_name(s), where);
	}
	return 0;
}

static int
conf_group(struct conf_ctx *ctx, const config_setting_t *s)
{
	if (!config_setting_is_group(s))
		return conf_err(ctx, s, "'%s' must be a group { ... }",
		    conf_keyname(s));
	return 0;
}

static int
conf_int(struct conf_ctx *ctx, const config_setting_t *s, long long min,
    long long max, long long *out)
{
	long long	 v;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return conf_err(ctx, s, "'%s' must be an integer",
		    conf_keyname(s));
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return conf_err(ctx, s, "'%s' must be between %lld and %lld",
		    conf_keyname(s), min, max);
	*out = v;
	return 0;
}

/* Read whichever keys of a table the group has into conf. */
static int
conf_nums(struct conf_ctx *ctx, const config_setting_t *g,
    const struct conf_num *t, struct conf *conf)
{
	const config_setting_t	*s;
	char			*field;
	long long		 v;

	for (; t->name != NULL; t++) {
		if ((s = config_setting_get_member(g, t->name)) == NULL)
			continue;
		if (conf_int(ctx, s, t->min, t->max, &v) == -1)
			return -1;
		field = (char *)conf + t->off;
		switch (t->type) {
		case CONF_NUM_INT:
			*(int *)(void *)field = (int)v;
			break;
		case CONF_NUM_LONG:
			*(long *)(void *)field = (long)v;
			break;
		case CONF_NUM_INT64:
			*(int64_t *)(void *)field = v;
			break;
		}
	}
	return 0;
}

static int
conf_bool(struct conf_ctx *ctx, const config_setting_t *s, int *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return conf_err(ctx, s, "'%s' must be true or false",
		    conf_keyname(s));
	*out = config_setting_get_bool(s) ? 1 : 0;
	return 0;
}

/* Borrow a string; it dies with the config_t. */
static int
conf_string(struct conf_ctx *ctx, const config_setting_t *s,
    const char **out)
{
	*out = NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_err(ctx, s, "'%s' must be a string",
		    conf_keyname(s));
	*out = config_setting_get_string(s);
	return 0;
}

/* Copy a non-empty string. */
static int
conf_strdup(struct conf_ctx *ctx, const config_setting_t *s, char **out)
{
	const char	*str;

	if (conf_string(ctx, s, &str) == -1)
		return -1;
	if (str[0] == '\0')
		return conf_err(ctx, s, "'%s' must not be empty",
		    conf_keyname(s));
	if ((*out = strdup(str)) == NULL)
		return conf_oom(ctx);
	return 0;
}

static int
conf_strv_default(struct conf_ctx *ctx, const char *const *def, char ***out,
    size_t *nout)
{
	char	**v;
	size_t	  n = 0;

	while (def[n] != NULL)
		n++;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return conf_oom(ctx);
	*out = v;
	for (*nout = 0; *nout < n; (*nout)++)
		if ((v[*nout] = strdup(def[*nout])) == NULL)
			return conf_oom(ctx);
	return 0;
}

static void
conf_strv_free(char **v, size_t n)
{
	size_t	 i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * A list or array of strings; a lone string is short for a list of one.
 * check, if given, may rewrite each copy in place (lower-casing) or
 * reject it. On error *out still holds what was copied, for the caller
 * to free along with the rest.
 */
static int
conf_strv(struct conf_ctx *ctx, const config_setting_t *s,
    conf_check_fn check, char ***out, size_t *nout)
{
	const config_setting_t	*e;
	char			**v;
	int			 i, n = 1;

	if (config_setting_is_array(s) || config_setting_is_list(s))
		n = config_setting_length(s);
	else if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_err(ctx, s, "'%s' must be a string or a list of "
		    "strings", conf_keyname(s));
	if ((v = calloc((size_t)n + 1, sizeof(*v))) == NULL)
		return conf_oom(ctx);
	*out = v;
	*nout = 0;
	for (i = 0; i < n; i++) {
		e = config_setting_is_aggregate(s) ?
		    config_setting_get_elem(s, (unsigned int)i) : s;
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return conf_err(ctx, e, "'%s' must be a string or a "
			    "list of strings", conf_keyname(e));
		if ((v[i] = strdup(config_setting_get_string(e))) == NULL)
			return conf_oom(ctx);
		(*nout)++;
		if (check != NULL && check(ctx, e, v[i]) == -1)
			return -1;
	}
	return 0;
}

/* The same parser that will bind it, so "-t" passes only what binds. */
static int
conf_check_listen(struct conf_ctx *ctx, const config_setting_t *s, char *str)
{
	struct net_addr	 a[2];
	char		 why[256];

	if (net_parse_listen(str, a, 2, why, sizeof(why)) == -1)
		return conf_err(ctx, s, "%s", why);
	return 0;
}

static int
conf_check_index(struct conf_ctx *ctx, const config_setting_t *s, char *str)
{
	if (str[0] == '\0' || strchr(str, '/') != NULL ||
	    strcmp(str, ".") == 0 || strcmp(str, "..") == 0)
		return conf_err(ctx, s, "'index' entry '%s' must be a file "
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
		return conf_err(ctx, s, "invalid site name '%s'", str);
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
		return conf_err(ctx, s, "invalid MIME type '%s' in 'types'",
		    str);
	return 0;
}

static int
conf_listen(struct conf_ctx *ctx, const config_setting_t *top,
    struct conf *conf)
{
	const config_setting_t	*s, *e;
	struct net_addr		 a[2], b[2];
	char			 why[256];
	size_t			 i, j;
	int			 na, nb, k;

	if ((s = config_setting_get_member(top, "listen")) == NULL) {
		static const char *const def[] = { "*:80", NULL };

		return conf_strv_default(ctx, def, &conf->listen,
		    &conf->nlisten);
	}
	if (conf_strv(ctx, s, conf_check_listen, &conf->listen,
	    &conf->nlisten) == -1)
		return -1;
	if (conf->nlisten == 0)
		return conf_err(ctx, s, "'listen' needs at least one address");

	/*
	 * The same address twice would fail at bind() with EADDRINUSE;
	 * say which entry instead. "*:80" is [::]:80 and 0.0.0.0:80, so
	 * compare every address each spec expands to. Port 0 binds a
	 * fresh port every time and never clashes.
	 */
	for (i = 1; i < conf->nlisten; i++) {
		if ((na = net_parse_listen(conf->listen[i], a, 2, why,
		    sizeof(why))) == -1)
			return conf_err(ctx, s, "%s", why);
		if (net_addr_port((struct sockaddr *)&a[0].ss) == 0)
			continue;
		for (j = 0; j < i; j++) {
			if ((nb = net_parse_listen(conf->listen[j], b, 2, why,
			    sizeof(why))) == -1)
				return conf_err(ctx, s, "%s", why);
			for (k = 0; k < na * nb; k++)
				if (net_addr_equal(&a[k / nb], &b[k % nb]))
					break;
			if (k == na * nb)
				continue;
			e = config_setting_is_aggregate(s) ?
			    config_setting_get_elem(s, (unsigned int)i) : s;
			return conf_err(ctx, e, "listen address '%s' overlaps "
			    "'%s'", conf->listen[i], conf->listen[j]);
		}
	}
	return 0;
}

static int
conf_log(struct conf_ctx *ctx, const config_setting_t *g, struct conf *conf)
{
	const config_setting_t	*s;
	const char		*str;

	if (conf_group(ctx, g) == -1 ||
	    conf_keys(ctx, g, conf_log_keys, "'log'") == -1)
		return -1;

	if ((s = config_setting_get_member(g, "error")) != NULL) {
		if (conf_string(ctx, s, &str) == -1)
			return -1;
		free(conf->error_log);
		conf->error_log = NULL;
		/* Else it would quietly become a file named "off". */
		if (strcmp(str, "off") == 0)
			return conf_err(ctx, s, "'error' cannot be off; use "
			    "\"stderr\" (journald keeps it under systemd)");
		if (strcmp(str, "stderr") == 0) {
			if ((conf->error_log = strdup(str)) == NULL)
				return conf_oom(ctx);
		} else if (conf_path(ctx, s, str, &conf->error_log) == -1)
			return -1;
	}

	if ((s = config_setting_get_member(g, "access")) != NULL) {
		if (conf_string(ctx, s, &str) == -1)
			return -1;
		free(conf->access_log);
		conf->access_log = NULL;
		if (strcmp(str, "off") == 0)
			;
		else if (strcmp(str, "stderr") == 0) {
			if ((conf->access_log = strdup(str)) == NULL)
				return conf_oom(ctx);
		} else if (conf_path(ctx, s, str, &conf->access_log) == -1)
			return -1;
	}
	return 0;
}

static int
conf_compression(struct conf_ctx *ctx, const config_setting_t *g,
    struct conf *conf)
{
	const config_setting_t	*s;

	if (conf_group(ctx, g) == -1 ||
	    conf_keys(ctx, g, conf_compression_keys, "'compression'") == -1)
		return -1;
	if ((s = config_setting_get_member(g, "enabled")) != NULL &&
	    conf_bool(ctx, s, &conf->compression.enabled) == -1)
		return -1;
	if ((s = config_setting_get_member(g, "types")) != NULL) {
		conf_strv_free(conf->compression.types,
		    conf->compression.ntypes);
		conf->compression.types = NULL;
		conf->compression.ntypes = 0;
		if (conf_strv(ctx, s, conf_check_mime, &conf->compression.types,
		    &conf->compression.ntypes) == -1)
			return -1;
	}
	return conf_nums(ctx, g, conf_compression_nums, conf);
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
		return conf_err(ctx, s, "'cache' must be a list of groups "
		    "( { match = ...; }, ... )");
	n = config_setting_length(s);
	if (n == 0)
		return 0;
	if ((site->cache = calloc((size_t)n, sizeof(*site->cache))) == NULL)
		return conf_oom(ctx);
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(s, (unsigned int)i);
		if (!config_setting_is_group(g))
			return conf_err(ctx, g, "'cache' must be a list of "
			    "groups ( { match = ...; }, ... )");
		if (conf_keys(ctx, g, conf_cache_keys, "cache rule") == -1)
			return -1;
		r = &site->cache[site->ncache];
		r->max_age = -1;
		if ((m = config_setting_get_member(g, "match")) == NULL)
			return conf_err(ctx, g, "cache rule needs 'match'");
		if (conf_string(ctx, m, &str) == -1)
			return -1;
		/* A '/' after the dot would make it a path. */
		if ((str[0] != '/' && str[0] != '.') || strcmp(str, ".") == 0 ||
		    (str[0] == '.' && strchr(str, '/') != NULL))
			return conf_err(ctx, m, "cache match '%s' must be a "
			    "path prefix (\"/assets/\") or an extension "
			    "(\".css\")", str);
		if ((r->match = strdup(str)) == NULL)
			return conf_oom(ctx);
		site->ncache++;
		r->is_ext = str[0] == '.';
		if ((m = config_setting_get_member(g, "max_age")) != NULL) {
			if (conf_int(ctx, m, 0, CONF_MAX_AGE_MAX, &v) == -1)
				return -1;
			r->max_age = (long)v;
		}
		if ((m = config_setting_get_member(g, "immutable")) != NULL &&
		    conf_bool(ctx, m, &r->immutable) == -1)
			return -1;
		if ((m = config_setting_get_member(g, "no_cache")) != NULL &&
		    conf_bool(ctx, m, &r->no_cache) == -1)
			return -1;
		if (r->immutable && r->no_cache)
			return conf_err(ctx, g, "cache rule '%s' cannot be "
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
		return conf_err(ctx, s, "error page status %lld must be "
		    "between 400 and 599", status);
	for (i = 0; i < site->nerror_pages; i++)
		if (site->error_pages[i].status == status)
			return conf_err(ctx, s, "error page for %lld is "
			    "already set", status);
	if (conf_string(ctx, p, &str) == -1)
		return -1;
	if (str[0] != '/')
		return conf_err(ctx, p, "error page '%s' must be a URL path "
		    "starting with '/'", str);
	ep = &site->error_pages[site->nerror_pages];
	if ((ep->path = strdup(str)) == NULL)
		return conf_oom(ctx);
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
		return conf_err(ctx, s, "'error_pages' must be a group "
		    "{ e404 = \"/404.html\"; } or a list "
		    "( { status = 404; page = \"/404.html\"; } )");
	n = config_setting_length(s);
	if (n == 0)
		return 0;
	site->error_pages = calloc((size_t)n, sizeof(*site->error_pages));
	if (site->error_pages == NULL)
		return conf_oom(ctx);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned int)i);
		if (config_setting_is_group(s)) {
			name = config_setting_name(e);
			if (name[0] != 'e' || strlen(name) != 4 ||
			    strspn(name + 1, "0123456789") != 3)
				return conf_err(ctx, e, "unknown key '%s' in "
				    "'error_pages' (want eNNN, as in e404)",
				    name);
			status = strtol(name + 1, NULL, 10);
			if (conf_errpage_add(ctx, e, e, site, status) == -1)
				return -1;
			continue;
		}
		if (!config_setting_is_group(e))
			return conf_err(ctx, e, "'error_pages' entries must be "
			    "groups { status = 404; page = \"/404.html\"; }");
		if (conf_keys(ctx, e, conf_errpage_keys, "error page") == -1)
			return -1;
		st = config_setting_get_member(e, "status");
		pg = config_setting_get_member(e, "page");
		if (st == NULL || pg == NULL)
			return conf_err(ctx, e, "error page needs 'status' and "
			    "'page'");
		if (conf_int(ctx, st, 400, 599, &status) == -1 ||
		    conf_errpage_add(ctx, st, pg, site, status) == -1)
			return -1;
	}
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
			return conf_err(ctx, g, "'sites' entries must be "
			    "groups { names = ...; root = ...; }");
		if (conf_keys(ctx, g, conf_site_keys, "site") == -1)
			return -1;
		if ((s = config_setting_get_member(g, "names")) == NULL)
			return conf_err(ctx, g, "site needs 'names'");
		if (conf_strv(ctx, s, conf_check_name, &site->names,
		    &site->nnames) == -1)
			return -1;
		if (site->nnames == 0)
			return conf_err(ctx, s, "'names' needs at least one "
			    "name");
	} else if (conf_strv_default(ctx, star, &site->names,
	    &site->nnames) == -1)
		return -1;

	if ((s = conf_member(g, top, "root")) != NULL) {
		if (conf_string(ctx, s, &str) == -1 ||
		    conf_path(ctx, s, str, &site->root) == -1)
			return -1;
	} else if ((site->root = strdup(CONF_ROOT_DEFAULT)) == NULL)
		return conf_oom(ctx);
	*rootp = s != NULL ? s : g;

	if ((s = conf_member(g, top, "index")) != NULL) {
		if (conf_strv(ctx, s, conf_check_index, &site->index,
		    &site->nindex) == -1)
			return -1;
	} else if (conf_strv_default(ctx, conf_index_default, &site->index,
	    &site->nindex) == -1)
		return -1;

	if ((s = conf_member(g, top, "listing")) != NULL &&
	    conf_bool(ctx, s, &site->listing) == -1)
		return -1;
	if ((s = conf_member(g, top, "cache")) != NULL &&
	    conf_cache(ctx, s, site) == -1)
		return -1;
	if ((s = conf_member(g, top, "error_pages")) != NULL &&
	    conf_errpages(ctx, s, site) == -1)
		return -1;
	return 0;
}

static void
conf_site_clear(struct conf_site *site)
{
	size_t	 i;

	conf_strv_free(site->names, site->nnames);
	free(site->root);
	conf_strv_free(site->index, site->nindex);
	for (i = 0; i < site->ncache; i++)
		free(site->cache[i].match);
	free(site->cache);
	for (i = 0; i < site->nerror_pages; i++)
		free(site->error_pages[i].path);
	free(site->error_pages);
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
					return conf_err(ctx,
					    conf_name_setting(g, j),
					    "second default site '*' (the "
					    "first is on line %u)",
					    conf_line(ctx, first));
				return conf_err(ctx, conf_name_setting(g, j),
				    "duplicate site name '%s' (first on line "
				    "%u)", site->names[j],
				    conf_line(ctx, first));
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
			return conf_oom(ctx);
		conf->nsites = 1;
		conf->default_site = 0;
		return conf_site(ctx, top, NULL, &conf->sites[0], *rootsp);
	}
	if (!config_setting_is_list(list))
		return conf_err(ctx, list, "'sites' must be a list of groups "
		    "( { names = ...; }, ... )");
	if ((n = (size_t)config_setting_length(list)) == 0)
		return conf_err(ctx, list, "'sites' needs at least one site");

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
		return conf_oom(ctx);
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
			return conf_err(ctx, roots[i], "root '%s': %s",
			    conf->sites[i].root, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return conf_err(ctx, roots[i], "root '%s': %s",
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
		conf_oom(&ctx);
		return NULL;
	}
	conf->keepalive_timeout = 15;
	conf->keepalive_requests = 1000;
	conf->header_timeout = 10;
	conf->body_timeout = 30;
	conf->send_timeout = 60;
	conf->max_header_size = 8192;
	conf->max_body_size = 1048576;
	conf->max_connections = 4096;
	conf->shutdown_timeout = 30;
	conf->worker_timeout = 60;
	conf->max_requests = 0;
	conf->workers = 0;
	conf->compression.enabled = 1;
	conf->compression.min_size = 256;
	conf->compression.level = 6;
	if ((conf->pid_file = strdup(PORTER_PID_DEFAULT)) == NULL ||
	    (conf->error_log = strdup("stderr")) == NULL ||
	    (conf->access_log = strdup(CONF_ACCESS_DEFAULT)) == NULL) {
		conf_oom(&ctx);
		goto fail;
	}
	if (conf_strv_default(&ctx, conf_types_default,
	    &conf->compression.types, &conf->compression.ntypes) == -1)
		goto fail;

	/* Absolute, so a reload after chdir("/") still finds the file. */
	if (conf_abspath(&ctx, path, &conf->path) == -1)
		goto fail;
	if ((ctx.dir = strdup(conf->path)) == NULL) {
		conf_oom(&ctx);
		goto fail;
	}
	slash = strrchr(ctx.dir, '/');
	slash[slash == ctx.dir ? 1 : 0] = '\0';

	if (conf_open(&ctx, path) == -1)
		goto fail;
	config_init(&cfg);
	cfg_live = 1;
	config_set_include_dir(&cfg, ctx.dir);
	if (config_read_file(&cfg, path) != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO ||
		    config_error_file(&cfg) == NULL)
			conf_err(&ctx, NULL, "%s", config_error_text(&cfg));
		else
			conf_errat(&ctx, config_error_file(&cfg),
			    (unsigned int)config_error_line(&cfg), "%s",
			    config_error_text(&cfg));
		goto fail;
	}
	if (conf_scan(&ctx, path, 0) == -1)
		goto fail;

	top = config_root_setting(&cfg);
	if (conf_keys(&ctx, top, conf_top_keys, NULL) == -1 ||
	    conf_listen(&ctx, top, conf) == -1 ||
	    conf_nums(&ctx, top, conf_top_nums, conf) == -1)
		goto fail;

	if (conf->workers == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		conf->workers = ncpu < 1 ? 1 : ncpu > PORTER_MAX_WORKERS ?
		    PORTER_MAX_WORKERS : (int)ncpu;
	}
	if ((s = config_setting_get_member(top, "user")) != NULL &&
	    conf_strdup(&ctx, s, &conf->user) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "group")) != NULL &&
	    conf_strdup(&ctx, s, &conf->group) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "pid_file")) != NULL) {
		if (conf_string(&ctx, s, &str) == -1)
			goto fail;
		free(conf->pid_file);
		conf->pid_file = NULL;
		if (str[0] != '\0' && strcmp(str, "off") != 0 &&
		    conf_path(&ctx, s, str, &conf->pid_file) == -1)
			goto fail;
	}
	if ((s = config_setting_get_member(top, "log")) != NULL &&
	    conf_log(&ctx, s, conf) == -1)
		goto fail;
	if ((s = config_setting_get_member(top, "limits")) != NULL &&
	    (conf_group(&ctx, s) == -1 ||
	    conf_keys(&ctx, s, conf_limit_keys, "'limits'") == -1 ||
	    conf_nums(&ctx, s, conf_limit_nums, conf) == -1))
		goto fail;
	if ((s = config_setting_get_member(top, "compression")) != NULL &&
	    conf_compression(&ctx, s, conf) == -1)
		goto fail;
	if (conf_sites(&ctx, top, conf, &roots) == -1 ||
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
	conf_strv_free(conf->listen, conf->nlisten);
	free(conf->user);
	free(conf->group);
	free(conf->pid_file);
	free(conf->error_log);
	free(conf->access_log);
	conf_strv_free(conf->compression.types, conf->compression.ntypes);
	for (i = 0; i < conf->nsites; i++)
		conf_site_clear(&conf->sites[i]);
	free(conf->sites);
	free(conf);
}
