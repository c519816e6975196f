/*
 * confval.c - typed, checked reads of libconfig settings with file:line
 * errors: the machinery under conf.c, which knows porter's keys; this
 * file knows only libconfig. Kept apart so that conf.c reads as the list
 * of what porter accepts, not as how a value is read.
 *
 * libconfig parses; it does not check. These readers check each value's
 * type and range and report "file:line: message" naming the key, and
 * work around what libconfig 1.5 gets wrong: integers that wrap, the
 * line of a string in a list, a directory read as an empty file.
 * Relative paths are taken from the directory of the configuration
 * file, not from the cwd, so a config works the same whoever starts the
 * daemon and from where.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "confval.h"

#define CONFVAL_INCLUDE_DEPTH	10	/* libconfig's own limit */

static int	 confval_verr(struct conf_ctx *, const char *, unsigned int,
		    const char *, va_list)
		    __attribute__((format(printf, 4, 0)));
static const char *confval_keyname(const config_setting_t *);
static char	*confval_clean(char *);
static char	*confval_join(const char *, const char *, size_t);
static int	 confval_slurp(const char *, char **, size_t *);

/*
 * Fill ctx->err with "file:line: message", or "file: message" when line
 * is 0. Always returns -1 so callers can return it.
 */
static int
confval_verr(struct conf_ctx *ctx, const char *file, unsigned int line,
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

int
confval_errat(struct conf_ctx *ctx, const char *file, unsigned int line,
    const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	confval_verr(ctx, file, line, fmt, ap);
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
unsigned int
confval_line(struct conf_ctx *ctx, const config_setting_t *s)
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
		path = confval_join(ctx->dir, file, strlen(file));
	else
		path = strdup(file);
	len = strlen(config_setting_get_string(s)) + 3;
	if (path == NULL || (needle = malloc(len)) == NULL)
		goto done;
	snprintf(needle, len, "\"%s\"", config_setting_get_string(s));
	if (confval_slurp(path, &buf, &len) == -1)
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
int
confval_err(struct conf_ctx *ctx, const config_setting_t *s, const char *fmt,
    ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	if (s == NULL)
		confval_verr(ctx, NULL, 0, fmt, ap);
	else
		confval_verr(ctx, config_setting_source_file(s),
		    confval_line(ctx, s), fmt, ap);
	va_end(ap);
	return -1;
}

/* The key a setting belongs to; list elements borrow their list's name. */
static const char *
confval_keyname(const config_setting_t *s)
{
	for (; s != NULL; s = config_setting_parent(s))
		if (config_setting_name(s) != NULL)
			return config_setting_name(s);
	return "?";
}

int
confval_oom(struct conf_ctx *ctx)
{
	return confval_err(ctx, NULL, "%s", strerror(ENOMEM));
}

/*
 * Lexically clean an absolute path in place: squeeze "//", drop "." and
 * let ".." eat the component before it. This is how a shell's "cd" reads
 * a path, not how the kernel does when that component is a symlink; the
 * root check below stat()s the cleaned string, so what is checked is
 * what gets served.
 */
static char *
confval_clean(char *path)
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
confval_join(const char *dir, const char *name, size_t namelen)
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
int
confval_abspath(struct conf_ctx *ctx, const char *path, char **out)
{
	char	 cwd[PATH_MAX];

	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
		return confval_err(ctx, NULL, "getcwd: %s", strerror(errno));
	if ((*out = confval_join(cwd, path, strlen(path))) == NULL)
		return confval_oom(ctx);
	confval_clean(*out);
	return 0;
}

/* A path from the file: relative ones hang off the file's directory. */
int
confval_path(struct conf_ctx *ctx, const config_setting_t *s, const char *path,
    char **out)
{
	if (path[0] == '\0')
		return confval_err(ctx, s, "'%s' must not be empty",
		    confval_keyname(s));
	if ((*out = confval_join(ctx->dir, path, strlen(path))) == NULL)
		return confval_oom(ctx);
	confval_clean(*out);
	return 0;
}

/*
 * libconfig says only "file I/O error" and, given a directory, parses
 * an empty file. Look first, so that the message carries errno and
 * "porter -f /etc/porter" fails instead of starting on defaults.
 */
int
confval_open(struct conf_ctx *ctx, const char *path)
{
	struct stat	 st;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return confval_err(ctx, NULL, "%s", strerror(errno));
	if (fstat(fd, &st) == -1) {
		saved = errno;
		close(fd);
		return confval_err(ctx, NULL, "%s", strerror(saved));
	}
	close(fd);
	if (S_ISDIR(st.st_mode))
		return confval_err(ctx, NULL, "%s", strerror(EISDIR));
	return 0;
}

/* Read a whole file into a NUL-terminated buffer. */
static int
confval_slurp(const char *path, char **out, size_t *outlen)
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
int
confval_scan(struct conf_ctx *ctx, const char *file, int depth)
{
	char		*buf = NULL, *p, *end, *start, *inc = NULL;
	size_t		 len, n;
	unsigned int	 line = 1;
	unsigned long long v;
	int		 hex, big, rv = -1;

	if (depth > CONFVAL_INCLUDE_DEPTH)
		return 0;
	/* It was readable a moment ago; libconfig has the contents already. */
	if (confval_slurp(file, &buf, &len) == -1)
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
			if ((inc = confval_join(ctx->dir, p + 1, n)) == NULL) {
				confval_oom(ctx);
				goto done;
			}
			if (confval_scan(ctx, inc, depth + 1) == -1)
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
				confval_errat(ctx, file, line,
				    "integer %.*s does not fit in 32 bits; "
				    "write it as %.*sL",
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
int
confval_keys(struct conf_ctx *ctx, const config_setting_t *g,
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
			return confval_err(ctx, s, "unknown key '%s'",
			    config_setting_name(s));
		return confval_err(ctx, s, "unknown key '%s' in %s",
		    config_setting_name(s), where);
	}
	return 0;
}

int
confval_group(struct conf_ctx *ctx, const config_setting_t *s)
{
	if (!config_setting_is_group(s))
		return confval_err(ctx, s, "'%s' must be a group { ... }",
		    confval_keyname(s));
	return 0;
}

int
confval_int(struct conf_ctx *ctx, const config_setting_t *s, long long min,
    long long max, long long *out)
{
	long long	 v;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return confval_err(ctx, s, "'%s' must be an integer",
		    confval_keyname(s));
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return confval_err(ctx, s, "'%s' must be between %lld and %lld",
		    confval_keyname(s), min, max);
	*out = v;
	return 0;
}

/* Read whichever keys of a table the group has into the struct at base. */
int
confval_nums(struct conf_ctx *ctx, const config_setting_t *g,
    const struct conf_num *t, void *base)
{
	const config_setting_t	*s;
	char			*field;
	long long		 v;

	for (; t->name != NULL; t++) {
		if ((s = config_setting_get_member(g, t->name)) == NULL)
			continue;
		if (confval_int(ctx, s, t->min, t->max, &v) == -1)
			return -1;
		field = (char *)base + t->off;
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

int
confval_bool(struct conf_ctx *ctx, const config_setting_t *s, int *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return confval_err(ctx, s, "'%s' must be true or false",
		    confval_keyname(s));
	*out = config_setting_get_bool(s) ? 1 : 0;
	return 0;
}

/* Borrow a string; it dies with the config_t. */
int
confval_string(struct conf_ctx *ctx, const config_setting_t *s,
    const char **out)
{
	*out = NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return confval_err(ctx, s, "'%s' must be a string",
		    confval_keyname(s));
	*out = config_setting_get_string(s);
	return 0;
}

/* Copy a non-empty string. */
int
confval_strdup(struct conf_ctx *ctx, const config_setting_t *s, char **out)
{
	const char	*str;

	if (confval_string(ctx, s, &str) == -1)
		return -1;
	if (str[0] == '\0')
		return confval_err(ctx, s, "'%s' must not be empty",
		    confval_keyname(s));
	if ((*out = strdup(str)) == NULL)
		return confval_oom(ctx);
	return 0;
}

int
confval_strv_default(struct conf_ctx *ctx, const char *const *def, char ***out,
    size_t *nout)
{
	char	**v;
	size_t	  n = 0;

	while (def[n] != NULL)
		n++;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return confval_oom(ctx);
	*out = v;
	for (*nout = 0; *nout < n; (*nout)++)
		if ((v[*nout] = strdup(def[*nout])) == NULL)
			return confval_oom(ctx);
	return 0;
}

void
confval_strv_free(char **v, size_t n)
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
int
confval_strv(struct conf_ctx *ctx, const config_setting_t *s,
    conf_check_fn check, char ***out, size_t *nout)
{
	const config_setting_t	*e;
	char			**v;
	int			 i, n = 1;

	if (config_setting_is_array(s) || config_setting_is_list(s))
		n = config_setting_length(s);
	else if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return confval_err(ctx, s, "'%s' must be a string or a list of "
		    "strings", confval_keyname(s));
	if ((v = calloc((size_t)n + 1, sizeof(*v))) == NULL)
		return confval_oom(ctx);
	*out = v;
	*nout = 0;
	for (i = 0; i < n; i++) {
		e = config_setting_is_aggregate(s) ?
		    config_setting_get_elem(s, (unsigned int)i) : s;
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return confval_err(ctx, e, "'%s' must be a string or a "
			    "list of strings", confval_keyname(e));
		if ((v[i] = strdup(config_setting_get_string(e))) == NULL)
			return confval_oom(ctx);
		(*nout)++;
		if (check != NULL && check(ctx, e, v[i]) == -1)
			return -1;
	}
	return 0;
}
