/*
 * test_conf.c - conf_load() against the files in tests/unit/fixtures:
 * good ones field by field, bad ones by the exact "file:line: message".
 *
 * FIXTURES names the fixtures directory and PORTER_SRCDIR the top of the
 * source tree (the Makefile exports both); without them we assume the
 * cwd is the top of the source tree.
 */
#include <sys/stat.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"

#define ERRLEN	1024

static const char *
fixtures(void)
{
	const char	*f = getenv("FIXTURES");

	return f != NULL && *f != '\0' ? f : "tests/unit/fixtures";
}

static const char *
srcdir(void)
{
	const char	*s = getenv("PORTER_SRCDIR");

	return s != NULL && *s != '\0' ? s : ".";
}

/* The path conf_load() is given for a fixture, as the caller spells it. */
static void
fixture(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", fixtures(), name);
}

static struct conf *
load_ok(const char *name)
{
	struct conf	*conf;
	char		 path[PATH_MAX], err[ERRLEN] = "";

	fixture(path, sizeof(path), name);
	conf = conf_load(path, err, sizeof(err));
	cr_assert_not_null(conf, "%s: %s", name, err);
	cr_assert_str_eq(err, "", "error text on success: %s", err);
	return conf;
}

/* Both paths name the same file or directory. */
static int
same_file(const char *a, const char *b)
{
	struct stat	 sa, sb;

	if (stat(a, &sa) == -1 || stat(b, &sb) == -1)
		return 0;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Absolute, with no "//", "." or ".." left and no trailing slash. */
static int
clean_abs(const char *p)
{
	size_t	 len = strlen(p);

	if (p[0] != '/' || strstr(p, "//") != NULL ||
	    strstr(p, "/./") != NULL || strstr(p, "/../") != NULL)
		return 0;
	if (len == 1)
		return 1;
	if (p[len - 1] == '/')
		return 0;
	if (len >= 2 && strcmp(p + len - 2, "/.") == 0)
		return 0;
	if (len >= 3 && strcmp(p + len - 3, "/..") == 0)
		return 0;
	return 1;
}

/*
 * The absolute fixtures directory as conf_load() spells it: the
 * directory of conf->path. test_conf_path checks that this names the
 * right place; the other tests then compare strings against it.
 */
static void
fixdir(char *buf, size_t len)
{
	struct conf	*conf;

	conf = load_ok("good-defaults.conf");
	snprintf(buf, len, "%s", conf->path);
	conf_free(conf);
	*strrchr(buf, '/') = '\0';
	if (buf[0] == '\0')
		strcpy(buf, "/");
}

static void
expect_err_at(const char *name, const char *file, unsigned int line,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Loading fixture name fails with exactly "file:line: message". */
static void
expect_err_at(const char *name, const char *file, unsigned int line,
    const char *fmt, ...)
{
	struct conf	*conf;
	char		 path[PATH_MAX], err[ERRLEN], msg[ERRLEN];
	char		 want[2 * PATH_MAX + 2 * ERRLEN];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fixture(path, sizeof(path), name);
	if (file == NULL)
		file = path;
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%u: %s", file, line, msg);
	else
		snprintf(want, sizeof(want), "%s: %s", file, msg);

	strcpy(err, "untouched");
	conf = conf_load(path, err, sizeof(err));
	cr_assert_null(conf, "%s loaded but should fail with: %s", name, want);
	cr_assert_str_eq(err, want);
}

#define expect_err(name, line, ...)	\
	expect_err_at(name, NULL, line, __VA_ARGS__)

/*
 * For messages written by net.c: check our "file:line: " and that the
 * offending value is quoted, not the wording, which is not ours.
 */
static void
expect_err_naming(const char *name, unsigned int line, const char *what)
{
	struct conf	*conf;
	char		 path[PATH_MAX], err[ERRLEN], prefix[PATH_MAX + 32];

	fixture(path, sizeof(path), name);
	snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	conf = conf_load(path, err, sizeof(err));
	cr_assert_null(conf, "%s loaded", name);
	cr_assert(strncmp(err, prefix, strlen(prefix)) == 0,
	    "'%s' does not start with '%s'", err, prefix);
	cr_assert_not_null(strstr(err + strlen(prefix), what),
	    "'%s' does not name %s", err, what);
}

static int
expected_workers(void)
{
	long	 n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > PORTER_MAX_WORKERS ? PORTER_MAX_WORKERS : (int)n;
}

/* ---- good files -------------------------------------------------------- */

Test(conf, path)
{
	struct conf	*conf;
	char		 path[PATH_MAX], dir[PATH_MAX];

	conf = load_ok("good-defaults.conf");
	fixture(path, sizeof(path), "good-defaults.conf");
	cr_assert(clean_abs(conf->path), "path '%s'", conf->path);
	cr_assert(same_file(conf->path, path), "path '%s'", conf->path);
	conf_free(conf);

	fixdir(dir, sizeof(dir));
	cr_assert(clean_abs(dir), "dir '%s'", dir);
	cr_assert(same_file(dir, fixtures()), "dir '%s'", dir);
}

Test(conf, defaults)
{
	struct conf		*conf;
	struct conf_site	*site;
	char			 dir[PATH_MAX];

	fixdir(dir, sizeof(dir));
	conf = load_ok("good-defaults.conf");

	cr_assert_eq(conf->nlisten, 1);
	cr_assert_str_eq(conf->listen[0], "*:80");
	cr_assert_eq(conf->workers, expected_workers());
	cr_assert_null(conf->user);
	cr_assert_null(conf->group);
	cr_assert_str_eq(conf->pid_file, PORTER_PID_DEFAULT);
	cr_assert_str_eq(conf->error_log, "stderr");
	cr_assert_str_eq(conf->access_log, "/var/log/porter/access.log");

	cr_assert_eq(conf->keepalive_timeout, 15);
	cr_assert_eq(conf->keepalive_requests, 1000);
	cr_assert_eq(conf->header_timeout, 10);
	cr_assert_eq(conf->body_timeout, 30);
	cr_assert_eq(conf->send_timeout, 60);
	cr_assert_eq(conf->max_header_size, 8192);
	cr_assert_eq(conf->max_body_size, 1048576);
	cr_assert_eq(conf->max_connections, 4096);
	cr_assert_eq(conf->min_body_rate, 500);
	cr_assert_eq(conf->min_send_rate, 500);
	cr_assert_eq(conf->shutdown_timeout, 30);
	cr_assert_eq(conf->worker_timeout, 60);
	cr_assert_eq(conf->max_requests, 0);
	cr_assert_eq(conf->core_dumps, 0);

	cr_assert_eq(conf->compression.enabled, 1);
	cr_assert_eq(conf->compression.ntypes, 5);
	cr_assert_str_eq(conf->compression.types[0], "text/*");
	cr_assert_str_eq(conf->compression.types[1], "application/javascript");
	cr_assert_str_eq(conf->compression.types[2], "application/json");
	cr_assert_str_eq(conf->compression.types[3], "image/svg+xml");
	cr_assert_str_eq(conf->compression.types[4], "application/xml");
	cr_assert_eq(conf->compression.min_size, 256);
	cr_assert_eq(conf->compression.level, 6);

	cr_assert_eq(conf->nsites, 1);
	cr_assert_eq(conf->default_site, 0);
	site = &conf->sites[0];
	cr_assert_eq(site->nnames, 1);
	cr_assert_str_eq(site->names[0], "*");
	cr_assert_str_eq(site->root, dir);
	cr_assert_eq(site->nindex, 1);
	cr_assert_str_eq(site->index[0], "index.html");
	cr_assert_eq(site->listing, 0);
	cr_assert_eq(site->ncache, 0);
	cr_assert_null(site->cache);
	cr_assert_eq(site->nerror_pages, 0);
	cr_assert_null(site->error_pages);
	conf_free(conf);
}

Test(conf, full)
{
	struct conf		*conf;
	struct conf_site	*s;
	char			 dir[PATH_MAX], want[PATH_MAX + 32];

	fixdir(dir, sizeof(dir));
	conf = load_ok("good-full.conf");

	cr_assert_eq(conf->nlisten, 3);
	cr_assert_str_eq(conf->listen[0], "127.0.0.1:0");
	cr_assert_str_eq(conf->listen[1], "[::1]:8080");
	cr_assert_str_eq(conf->listen[2], "*:8081");
	cr_assert_eq(conf->workers, 3);
	cr_assert_str_eq(conf->user, "nobody");
	cr_assert_str_eq(conf->group, "nogroup");
	snprintf(want, sizeof(want), "%s/run/porter.pid", dir);
	cr_assert_str_eq(conf->pid_file, want);
	snprintf(want, sizeof(want), "%s/logs/error.log", dir);
	cr_assert_str_eq(conf->error_log, want);
	cr_assert_str_eq(conf->access_log, "stderr");

	cr_assert_eq(conf->keepalive_timeout, 5);
	cr_assert_eq(conf->keepalive_requests, 0);
	cr_assert_eq(conf->header_timeout, 7);
	cr_assert_eq(conf->body_timeout, 8);
	cr_assert_eq(conf->send_timeout, 9);
	cr_assert_eq(conf->max_header_size, 4096);
	cr_assert_eq(conf->max_body_size, (int64_t)1 << 40);
	cr_assert_eq(conf->max_connections, 100);
	cr_assert_eq(conf->min_body_rate, 0);
	cr_assert_eq(conf->min_send_rate, 1073741824);
	cr_assert_eq(conf->shutdown_timeout, 3600);
	cr_assert_eq(conf->worker_timeout, 0);
	cr_assert_eq(conf->max_requests, 2147483647L);
	cr_assert_eq(conf->core_dumps, 1);

	cr_assert_eq(conf->compression.enabled, 0);
	cr_assert_eq(conf->compression.ntypes, 2);
	cr_assert_str_eq(conf->compression.types[0], "text/html");
	cr_assert_str_eq(conf->compression.types[1], "application/*");
	cr_assert_eq(conf->compression.min_size, 0);
	cr_assert_eq(conf->compression.level, 9);

	cr_assert_eq(conf->nsites, 3);
	cr_assert_eq(conf->default_site, 2);

	s = &conf->sites[0];
	cr_assert_eq(s->nnames, 2);
	cr_assert_str_eq(s->names[0], "example.org");
	cr_assert_str_eq(s->names[1], "www.example.org");
	cr_assert_str_eq(s->root, "/");
	cr_assert_eq(s->nindex, 1);
	cr_assert_str_eq(s->index[0], "home.html");
	cr_assert_eq(s->listing, 0);
	cr_assert_eq(s->ncache, 3);
	cr_assert_str_eq(s->cache[0].match, "/assets/");
	cr_assert_eq(s->cache[0].is_ext, 0);
	cr_assert_eq(s->cache[0].max_age, 31536000);
	cr_assert_eq(s->cache[0].immutable, 1);
	cr_assert_eq(s->cache[0].no_cache, 0);
	cr_assert_str_eq(s->cache[1].match, ".html");
	cr_assert_eq(s->cache[1].is_ext, 1);
	cr_assert_eq(s->cache[1].max_age, 0);
	cr_assert_eq(s->cache[1].immutable, 0);
	cr_assert_eq(s->cache[1].no_cache, 1);
	cr_assert_str_eq(s->cache[2].match, ".css");
	cr_assert_eq(s->cache[2].is_ext, 1);
	cr_assert_eq(s->cache[2].max_age, -1);
	cr_assert_eq(s->cache[2].immutable, 0);
	cr_assert_eq(s->cache[2].no_cache, 0);
	cr_assert_eq(s->nerror_pages, 2);
	cr_assert_eq(s->error_pages[0].status, 404);
	cr_assert_str_eq(s->error_pages[0].path, "/404.html");
	cr_assert_eq(s->error_pages[1].status, 503);
	cr_assert_str_eq(s->error_pages[1].path, "/busy.html");

	/* root, index and listing come from the top level */
	s = &conf->sites[1];
	cr_assert_eq(s->nnames, 1);
	cr_assert_str_eq(s->names[0], "*.example.net");
	cr_assert_str_eq(s->root, dir);
	cr_assert_eq(s->nindex, 2);
	cr_assert_str_eq(s->index[0], "index.htm");
	cr_assert_str_eq(s->index[1], "default.html");
	cr_assert_eq(s->listing, 1);
	cr_assert_eq(s->ncache, 0);
	cr_assert_eq(s->nerror_pages, 1);
	cr_assert_eq(s->error_pages[0].status, 500);
	cr_assert_str_eq(s->error_pages[0].path, "/50x.html");

	/* "./sub/..//" is cleaned lexically: sub need not exist */
	s = &conf->sites[2];
	cr_assert_eq(s->nnames, 2);
	cr_assert_str_eq(s->names[0], "[::1]");
	cr_assert_str_eq(s->names[1], "*");
	cr_assert_str_eq(s->root, dir);
	conf_free(conf);
}

Test(conf, status_defaults)
{
	struct conf	*conf = load_ok("good-defaults.conf");

	/* Off unless asked; loopback only; a TERM stops at once. */
	cr_assert_eq(conf->status.nlisten, 0);
	cr_assert_eq(conf->status.nallow, 2);
	cr_assert_str_eq(conf->status.allow[0], "127.0.0.1/32");
	cr_assert_str_eq(conf->status.allow[1], "::1/128");
	cr_assert_eq(conf->status.access_log, 0);
	cr_assert_eq(conf->health.drain_status, 503);
	cr_assert_eq(conf->health.shutdown_delay, 0);
	conf_free(conf);
}

Test(conf, status)
{
	struct conf	*conf = load_ok("good-status.conf");

	cr_assert_eq(conf->status.nlisten, 2);
	cr_assert_str_eq(conf->status.listen[1], "[::1]:9180");
	cr_assert_eq(conf->status.nallow, 2);
	cr_assert_str_eq(conf->status.allow[1], "192.0.2.7");
	cr_assert_eq(conf->status.access_log, 1);
	cr_assert_eq(conf->health.drain_status, 404);
	cr_assert_eq(conf->health.shutdown_delay, 15);
	conf_free(conf);
}

Test(conf, status_errors)
{
	/* "*:8080" is 0.0.0.0:8080 too: the status address overlaps it */
	expect_err("bad-status-overlap.conf", 6,
	    "status listen address '127.0.0.1:8080' overlaps listen '*:8080'");
	expect_err("bad-status-allow.conf", 5, "'10.0.0.0/33' is not an "
	    "address or a CIDR network (\"192.0.2.0/24\", \"::1/128\")");
	expect_err("bad-health-status.conf", 4, "'drain_status' must be 503 "
	    "or 404 (404 for HAProxy's http-check disable-on-404)");
}

Test(conf, inherit)
{
	struct conf		*conf;
	struct conf_site	*s;
	char			 dir[PATH_MAX];

	fixdir(dir, sizeof(dir));
	conf = load_ok("good-inherit.conf");
	cr_assert_eq(conf->nlisten, 1);
	cr_assert_str_eq(conf->listen[0], "127.0.0.1:0");
	cr_assert_eq(conf->nsites, 2);
	/* no "*": the first site is the default */
	cr_assert_eq(conf->default_site, 0);

	s = &conf->sites[0];
	cr_assert_str_eq(s->names[0], "a.example");
	cr_assert_str_eq(s->root, dir);
	cr_assert_eq(s->nindex, 1);
	cr_assert_str_eq(s->index[0], "start.html");
	cr_assert_eq(s->listing, 1);
	cr_assert_eq(s->ncache, 1);
	cr_assert_str_eq(s->cache[0].match, "/");
	cr_assert_eq(s->cache[0].max_age, 60);
	cr_assert_eq(s->nerror_pages, 1);
	cr_assert_eq(s->error_pages[0].status, 404);
	cr_assert_str_eq(s->error_pages[0].path, "/missing.html");

	/* its own root, listing and (empty) cache win */
	s = &conf->sites[1];
	cr_assert_str_eq(s->names[0], "b.example");
	cr_assert_str_eq(s->root, "/");
	cr_assert_str_eq(s->index[0], "start.html");
	cr_assert_eq(s->listing, 0);
	cr_assert_eq(s->ncache, 0);
	cr_assert_eq(s->nerror_pages, 1);
	conf_free(conf);
}

Test(conf, include)
{
	struct conf	*conf;

	conf = load_ok("good-include.conf");
	cr_assert_eq(conf->max_body_size, (int64_t)1 << 32);
	cr_assert_eq(conf->workers, 1);
	conf_free(conf);
}

/* Relative to the file, whatever the cwd; messages keep the given path. */
Test(conf, relative_to_file)
{
	struct conf	*conf;
	char		 dir[PATH_MAX], abs[2 * PATH_MAX + 32];
	char		 want[PATH_MAX + 32], err[ERRLEN];

	fixdir(dir, sizeof(dir));
	cr_assert_eq(chdir(fixtures()), 0, "chdir: %s", strerror(errno));
	conf = conf_load("good-full.conf", err, sizeof(err));
	cr_assert_not_null(conf, "%s", err);
	snprintf(want, sizeof(want), "%s/good-full.conf", dir);
	cr_assert(same_file(conf->path, want));
	cr_assert_str_eq(conf->sites[1].root, dir);
	conf_free(conf);

	/* Now from somewhere else, through a path with a ".." in it. */
	cr_assert_eq(chdir("/"), 0);
	snprintf(abs, sizeof(abs), "%s/../%s/good-full.conf", dir,
	    strrchr(dir, '/') + 1);
	conf = conf_load(abs, err, sizeof(err));
	cr_assert_not_null(conf, "%s", err);
	cr_assert_str_eq(conf->path, want);
	snprintf(want, sizeof(want), "%s/run/porter.pid", dir);
	cr_assert_str_eq(conf->pid_file, want);
	conf_free(conf);

	cr_assert_eq(chdir(dir), 0);
	conf = conf_load("bad-unknown-top.conf", err, sizeof(err));
	cr_assert_null(conf);
	cr_assert_str_eq(err, "bad-unknown-top.conf:3: unknown key 'lisen'");
}

Test(conf, free_null)
{
	conf_free(NULL);
}

/* No error buffer, or a tiny one, must neither crash nor overrun. */
Test(conf, small_err_buffer)
{
	char	 path[PATH_MAX], err[8];

	fixture(path, sizeof(path), "bad-unknown-top.conf");
	cr_assert_null(conf_load(path, NULL, 0));
	memset(err, 'x', sizeof(err));
	cr_assert_null(conf_load(path, err, sizeof(err)));
	cr_assert_eq(strlen(err), sizeof(err) - 1);
	cr_assert(strncmp(err, path, sizeof(err) - 1) == 0);
}

/* ---- bad files ----------------------------------------------------------- */

Test(conf, missing_file)
{
	expect_err("no-such-file.conf", 0, "No such file or directory");
}

Test(conf, directory)
{
	char	 err[ERRLEN], want[PATH_MAX + 32];

	cr_assert_null(conf_load(fixtures(), err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: Is a directory", fixtures());
	cr_assert_str_eq(err, want);
}

Test(conf, syntax_error)
{
	expect_err("bad-syntax.conf", 4, "syntax error");
	/* names cannot start with a digit: this is why e404 exists */
	expect_err("bad-404-key.conf", 3, "syntax error");
}

Test(conf, include_errors)
{
	char	 dir[PATH_MAX], file[PATH_MAX + 32];

	fixdir(dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s/part-syntax.conf", dir);
	expect_err_at("bad-include-syntax.conf", file, 2, "syntax error");
	snprintf(file, sizeof(file), "%s/part-overflow.conf", dir);
	expect_err_at("bad-include-overflow.conf", file, 3, "integer "
	    "4294967311 does not fit in 32 bits; write it as 4294967311L");
}

Test(conf, unknown_keys)
{
	expect_err("bad-unknown-top.conf", 3, "unknown key 'lisen'");
	expect_err("bad-unknown-log.conf", 4, "unknown key 'acess' in 'log'");
	expect_err("bad-unknown-site.conf", 5, "unknown key 'rot' in site");
	expect_err("bad-unknown-cache.conf", 5,
	    "unknown key 'max-age' in cache rule");
	expect_err("bad-errpage-key.conf", 3, "unknown key 'x404' in "
	    "'error_pages' (want eNNN, as in e404)");
}

Test(conf, wrong_types)
{
	expect_err("bad-type-workers.conf", 3, "'workers' must be an integer");
	expect_err("bad-float.conf", 2, "'send_timeout' must be an integer");
	expect_err("bad-type-listing.conf", 2,
	    "'listing' must be true or false");
	expect_err("bad-type-core-dumps.conf", 2,
	    "'core_dumps' must be true or false");
	expect_err("bad-type-limits.conf", 3,
	    "'limits' must be a group { ... }");
	expect_err("bad-type-index.conf", 3,
	    "'index' must be a string or a list of strings");
	expect_err("bad-sites-type.conf", 3, "'sites' entries must be "
	    "groups { names = ...; root = ...; }");
	expect_err("bad-user-empty.conf", 2, "'user' must not be empty");
	expect_err("bad-error-off.conf", 3, "'error' cannot be off; use "
	    "\"stderr\" (journald keeps it under systemd)");
}

Test(conf, out_of_range)
{
	long long	 maxreq = 1000000000000LL;

	/* max_requests is a long, 32 bits on some Debian architectures */
	if (maxreq > LONG_MAX)
		maxreq = LONG_MAX;
	expect_err("bad-range-workers.conf", 4,
	    "'workers' must be between 0 and 256");
	expect_err("bad-range-header.conf", 4,
	    "'max_header_size' must be between 1024 and 1048576");
	expect_err("bad-range-level.conf", 4,
	    "'level' must be between 1 and 9");
	expect_err("bad-range-body.conf", 3,
	    "'max_body_size' must be between 0 and 1099511627776");
	expect_err("bad-range-requests.conf", 3,
	    "'max_requests' must be between 0 and %lld", maxreq);
	expect_err("bad-range-timeout.conf", 3,
	    "'shutdown_timeout' must be between 1 and 3600");
	expect_err("bad-range-body-rate.conf", 4,
	    "'min_body_rate' must be between 0 and 1073741824");
	expect_err("bad-range-send-rate.conf", 3,
	    "'min_send_rate' must be between 0 and 1073741824");
	expect_err("bad-cache-maxage.conf", 3,
	    "'max_age' must be between 0 and 315360000");
	expect_err("bad-errpage-status.conf", 4,
	    "error page status 399 must be between 400 and 599");
	expect_err("bad-errpage-list.conf", 4,
	    "'status' must be between 400 and 599");
}

/* libconfig 1.5 would silently read 10737418240 as -2147483648. */
Test(conf, int_overflow)
{
	expect_err("bad-int-overflow.conf", 4, "integer 10737418240 does not "
	    "fit in 32 bits; write it as 10737418240L");
}

Test(conf, listen)
{
	expect_err_naming("bad-listen-port.conf", 4, "'*:65536'");
	expect_err_naming("bad-listen-host.conf", 2, "'localhost:80'");
	expect_err_naming("bad-listen-v6.conf", 3, "'::1:8000'");
	expect_err("bad-listen-empty.conf", 2,
	    "'listen' needs at least one address");
	/* "127.0.0.1:0" twice is fine: two ephemeral ports */
	expect_err("bad-listen-dup.conf", 4,
	    "listen address '0.0.0.0:8080' overlaps '*:8080'");
}

Test(conf, tls_keys)
{
	struct conf	*conf;

	conf = load_ok("good-tls.conf");
	cr_assert_eq(conf->listeners[0].tls, 0);
	cr_assert_eq(conf->listeners[1].tls, 1);
	cr_assert_eq(conf->handshake_timeout, 3);
	cr_assert_eq(conf->tls.profile, 1);	/* TLS_PROFILE_MODERN */
	cr_assert_eq(conf->tls.protocols, 0x02);	/* TLS_PROTO_TLS13 */
	cr_assert_str_eq(conf->tls.groups, "X25519:P-256");
	cr_assert_null(conf->tls.ciphers);
	cr_assert_eq(conf->tls.ktls, 0);
	cr_assert_eq(conf->tls.session_tickets, 0);
	cr_assert_eq(conf->tls.ticket_lifetime, 600);
	/* Site 0 inherits the top-level pair (relative to the file), site 1 has its own. */
	cr_assert(strstr(conf->sites[0].tls_certificate, "/fixtures/top.pem") != NULL &&
	    conf->sites[0].tls_certificate[0] == '/', "%s",
	    conf->sites[0].tls_certificate);
	cr_assert_str_eq(conf->sites[1].tls_certificate, "/x/ec.pem");
	cr_assert_str_eq(conf->sites[1].tls_key, "/x/ec.key");
	cr_assert(strstr(conf->sites[1].tls_origin, "good-tls.conf:17") != NULL,
	    "%s", conf->sites[1].tls_origin);
	conf_free(conf);

	/* Without a tls group: defaults, no certificates. */
	conf = load_ok("good-defaults.conf");
	cr_assert_eq(conf->handshake_timeout, 10);
	cr_assert_eq(conf->tls.profile, 0);
	cr_assert_eq(conf->tls.ktls, 1);
	cr_assert_eq(conf->tls.session_tickets, 1);
	cr_assert_eq(conf->tls.ticket_lifetime, 43200);
	cr_assert_null(conf->sites[0].tls_certificate);
	conf_free(conf);
}

Test(conf, tls_errors)
{
	expect_err("bad-tls-nocert.conf", 4, "listen address '127.0.0.1:0' "
	    "speaks TLS, but no site has a certificate (tls: { certificate = "
	    "...; key = ...; })");
	expect_err("bad-tls-keyonly.conf", 5, "'key' without 'certificate'");
	expect_err("bad-tls-sitekey.conf", 4, "unknown key 'profile' in a "
	    "site's 'tls' (profile and the others are set in the top-level "
	    "'tls')");
}

Test(conf, listen_groups)
{
	struct conf	*conf;
	size_t		 i;

	conf = load_ok("good-listen-groups.conf");
	cr_assert_eq(conf->nlisten, 4);
	cr_assert_str_eq(conf->listen[0], "127.0.0.1:0");
	cr_assert_str_eq(conf->listen[1], "127.0.0.1:10000");
	cr_assert_str_eq(conf->listen[2], "[::1]:8080");
	cr_assert_str_eq(conf->listen[3], "*:8081");
	for (i = 0; i < conf->nlisten; i++)
		cr_assert_eq(conf->listeners[i].address, conf->listen[i]);
	cr_assert_eq(conf->listeners[0].protocol, PROTO_HTTP);
	cr_assert_eq(conf->listeners[1].protocol, PROTO_ECHO);
	cr_assert_eq(conf->listeners[2].protocol, PROTO_HTTP);
	cr_assert_eq(conf->listeners[3].protocol, PROTO_HTTP);
	cr_assert_str_eq(conf_protocol_name(PROTO_ECHO), "echo");
	conf_free(conf);

	/* Plain strings are http listeners. */
	conf = load_ok("good-full.conf");
	for (i = 0; i < conf->nlisten; i++)
		cr_assert_eq(conf->listeners[i].protocol, PROTO_HTTP);
	conf_free(conf);
	conf = load_ok("good-defaults.conf");
	cr_assert_eq(conf->listeners[0].protocol, PROTO_HTTP);
	cr_assert_eq(conf->listeners[0].address, conf->listen[0]);
	conf_free(conf);
}

Test(conf, listen_groups_bad)
{
	expect_err("bad-listen-noaddr.conf", 3,
	    "'listen' entry needs an 'address'");
	expect_err("bad-listen-proto.conf", 4,
	    "unknown protocol 'gopher' (http or echo)");
	expect_err("bad-listen-key.conf", 4,
	    "unknown key 'tsl' in a 'listen' entry");
	expect_err("bad-listen-groupdup.conf", 4,
	    "listen address '127.0.0.1:9000' overlaps '127.0.0.1:9000'");
	expect_err("bad-listen-addrtype.conf", 2,
	    "'address' must be a string");
	expect_err("bad-listen-prototype.conf", 3,
	    "'protocol' must be a string");
	expect_err("bad-listen-elem.conf", 3, "a 'listen' entry must be an "
	    "address string or a group { address = ...; }");
	expect_err_naming("bad-listen-groupaddr.conf", 3, "'localhost:7'");
}

Test(conf, site_names)
{
	expect_err("bad-dup-name.conf", 5,
	    "duplicate site name 'www.example.org' (first on line 3)");
	expect_err("bad-dup-name-same-site.conf", 3,
	    "duplicate site name 'a.example' (first on line 3)");
	expect_err("bad-two-defaults.conf", 5,
	    "second default site '*' (the first is on line 3)");
	expect_err("bad-name.conf", 4, "invalid site name 'exa mple.org'");
	expect_err("bad-name-port.conf", 2,
	    "invalid site name 'example.org:8000'");
	expect_err("bad-site-nonames.conf", 4, "site needs 'names'");
	expect_err("bad-sites-empty.conf", 2,
	    "'sites' needs at least one site");
}

/* Top-level site keys are checked even when no site inherits them. */
Test(conf, top_level_checked)
{
	expect_err("bad-top-unused.conf", 3,
	    "'listing' must be true or false");
}

Test(conf, cache_and_error_pages)
{
	expect_err("bad-cache-match.conf", 3, "cache match 'assets' must be a "
	    "path prefix (\"/assets/\") or an extension (\".css\")");
	expect_err("bad-cache-conflict.conf", 3,
	    "cache rule '/' cannot be both immutable and no_cache");
	expect_err("bad-errpage-path.conf", 4,
	    "error page '404.html' must be a URL path starting with '/'");
	expect_err("bad-errpage-dup.conf", 4,
	    "error page for 404 is already set");
	expect_err("bad-mime.conf", 3, "invalid MIME type 'text' in 'types'");
}

Test(conf, roots)
{
	char	 dir[PATH_MAX];

	fixdir(dir, sizeof(dir));
	expect_err("bad-root-missing.conf", 3,
	    "root '%s/does-not-exist': No such file or directory", dir);
	expect_err("bad-root-file.conf", 4,
	    "root '%s/bad-root-file.conf': Not a directory", dir);
	/* inherited: blame the top-level line, which is the one to fix */
	expect_err("bad-root-inherited.conf", 2,
	    "root '/nonexistent/porter-test': No such file or directory");
}

/*
 * With no root anywhere the site gets /var/www/html. Whether that exists
 * depends on the machine, so check whichever outcome is due.
 */
Test(conf, root_default)
{
	struct stat	 st;
	struct conf	*conf;
	int		 why = 0;

	if (stat("/var/www/html", &st) == -1)
		why = errno;
	else if (!S_ISDIR(st.st_mode))
		why = ENOTDIR;
	if (why != 0) {
		expect_err("bad-root-site-default.conf", 3,
		    "root '/var/www/html': %s", strerror(why));
		return;
	}
	conf = load_ok("bad-root-site-default.conf");
	cr_assert_str_eq(conf->sites[0].root, "/var/www/html");
	conf_free(conf);
}

/* ---- the shipped files -------------------------------------------------- */

Test(conf, dev_config)
{
	struct conf	*conf;
	char		 path[PATH_MAX], www[PATH_MAX], err[ERRLEN];

	snprintf(path, sizeof(path), "%s/etc/porter-dev.conf", srcdir());
	snprintf(www, sizeof(www), "%s/www", srcdir());
	conf = conf_load(path, err, sizeof(err));
	cr_assert_not_null(conf, "%s", err);
	cr_assert_eq(conf->nlisten, 1);
	cr_assert_str_eq(conf->listen[0], "*:8000");
	cr_assert_eq(conf->workers, 2);
	cr_assert_null(conf->pid_file);
	cr_assert_null(conf->user);
	cr_assert_str_eq(conf->error_log, "stderr");
	cr_assert_str_eq(conf->access_log, "stderr");
	cr_assert_eq(conf->shutdown_timeout, 5);
	cr_assert_eq(conf->nsites, 1);
	cr_assert_eq(conf->sites[0].ncache, 1);
	cr_assert_eq(conf->sites[0].cache[0].no_cache, 1);
	cr_assert_eq(conf->sites[0].nerror_pages, 1);
	cr_assert_eq(conf->sites[0].error_pages[0].status, 404);
	cr_assert(clean_abs(conf->sites[0].root), "%s", conf->sites[0].root);
	cr_assert(same_file(conf->sites[0].root, www), "root %s",
	    conf->sites[0].root);
	conf_free(conf);
}

/*
 * The packaged file serves /var/www/html. Where that is missing the
 * root check, which runs last, must be the only complaint.
 */
Test(conf, packaged_config)
{
	struct stat	 st;
	struct conf	*conf;
	FILE		*fp;
	char		 path[PATH_MAX], line[512], err[ERRLEN];
	char		 want[PATH_MAX + 128];
	unsigned int	 n = 0, rootline = 0;
	int		 why = 0;

	snprintf(path, sizeof(path), "%s/etc/porter.conf", srcdir());
	if (stat("/var/www/html", &st) == -1)
		why = errno;
	else if (!S_ISDIR(st.st_mode))
		why = ENOTDIR;
	conf = conf_load(path, err, sizeof(err));
	if (why != 0) {
		cr_assert_null(conf);
		cr_assert_not_null(fp = fopen(path, "r"));
		while (fgets(line, sizeof(line), fp) != NULL) {
			n++;
			if (rootline == 0 && strncmp(line, "root", 4) == 0)
				rootline = n;
		}
		fclose(fp);
		snprintf(want, sizeof(want), "%s:%u: root '/var/www/html': %s",
		    path, rootline, strerror(why));
		cr_assert_str_eq(err, want);
		return;
	}
	cr_assert_not_null(conf, "%s", err);
	cr_assert_eq(conf->nlisten, 1);
	cr_assert_str_eq(conf->listen[0], "*:80");
	cr_assert_null(conf->user);
	cr_assert_null(conf->group);
	cr_assert_str_eq(conf->pid_file, "/run/porter/porter.pid");
	cr_assert_str_eq(conf->error_log, "stderr");
	cr_assert_str_eq(conf->access_log, "/var/log/porter/access.log");
	cr_assert_eq(conf->nsites, 1);
	cr_assert_str_eq(conf->sites[0].root, "/var/www/html");
	cr_assert_str_eq(conf->sites[0].names[0], "*");
	conf_free(conf);
}
