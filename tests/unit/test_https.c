/*
 * test_https.c - the HTTPS policy of the HTTP layer: the Location of
 * redirect_https (host validated, port, path, query, ACME exemption,
 * 301/308), and the HSTS field on every response over TLS and never on
 * plain ones. Requests go through the real parser and http_handle().
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"

#define HSTS	"Strict-Transport-Security: max-age=63072000\r\n"

static struct conf conf;
static struct conf_site sites[3];
static char *names0[] = { "example.org", "*.example.org" };
static char *names1[] = { "*.wild.test" };
static char *names2[] = { "*" };
static char *index_html[] = { "index.html" };
static int rootfds[3];
static char root[] = "/tmp/porter-test-https-XXXXXX";

static void
setup(void)
{
	char path[256];
	int fd, i;

	cr_assert_not_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/index.html", root);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd != -1);
	cr_assert_eq(write(fd, "hi", 2), 2);
	close(fd);
	sites[0].names = names0;
	sites[0].nnames = 2;
	sites[1].names = names1;
	sites[1].nnames = 1;
	sites[2].names = names2;
	sites[2].nnames = 1;
	for (i = 0; i < 3; i++) {
		sites[i].root = root;
		sites[i].index = index_html;
		sites[i].nindex = 1;
		sites[i].redirect_https = 1;
		sites[i].hsts = HSTS;
		sites[i].hsts_len = strlen(HSTS);
		rootfds[i] = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		cr_assert(rootfds[i] != -1);
	}
	conf.sites = sites;
	conf.nsites = 3;
	conf.default_site = 2;
	conf.https_port = 443;
	conf.max_header_size = 8192;
	serve_init(&conf, NULL);
	http_init(&conf, rootfds, NULL);
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	(void)!system(cmd);
}

TestSuite(https, .init = setup, .fini = teardown);

struct exchange {
	struct http_req	 h;
	struct request	 q;
	struct resp	 r;
};

static void
handle(struct exchange *x, const char *head, int tls)
{
	http_req_init(&x->h, 8192);
	cr_assert_eq(http_parse(&x->h, head, strlen(head)), HTTP_PARSE_DONE,
	    "%s", head);
	x->q.h = &x->h;
	x->q.buf = head;
	x->q.peer = NULL;
	x->q.now = 1767225600;
	x->q.tls = tls;
	memset(&x->r, 0, sizeof(x->r));
	x->r.fd = -1;
	http_handle(&x->q, &x->r);
}

static void
done(struct exchange *x)
{
	resp_file_release(&x->r);
	free(x->r.buf);
}

/* The response's fields, as a NUL-terminated string. */
static const char *
fields(const struct exchange *x)
{
	static char buf[2048];
	size_t len = x->r.fields_end - RESP_HEAD_ROOM;

	cr_assert_lt(len, sizeof(buf));
	memcpy(buf, x->r.buf + RESP_HEAD_ROOM, len);
	buf[len] = '\0';
	return buf;
}

/* The Location the redirect sends for head over plain HTTP. */
static void
expect_location(const char *head, int status, const char *location)
{
	struct exchange x;
	char want[1024];

	handle(&x, head, 0);
	cr_assert_eq(x.r.status, status, "%s", head);
	snprintf(want, sizeof(want), "Location: %s\r\n", location);
	cr_assert(strncmp(fields(&x), want, strlen(want)) == 0,
	    "%s: got\n%s\nwant\n%s", head, fields(&x), want);
	cr_assert_null(strstr(fields(&x), "Strict-Transport"),
	    "HSTS over plain HTTP: %s", fields(&x));
	done(&x);
}

Test(https, redirect_get_head_301)
{
	expect_location("GET /a/b.html?x=1&y=%41 HTTP/1.1\r\nHost: example.org\r\n\r\n",
	    301, "https://example.org/a/b.html?x=1&y=%41");
	expect_location("HEAD / HTTP/1.1\r\nHost: EXAMPLE.org.:80\r\n\r\n",
	    301, "https://example.org/");
	expect_location("GET /x? HTTP/1.1\r\nHost: example.org\r\n\r\n",
	    301, "https://example.org/x?");
	expect_location("GET http://example.org HTTP/1.1\r\nHost: example.org\r\n\r\n",
	    301, "https://example.org/");
}

Test(https, redirect_other_methods_308)
{
	expect_location("POST /form HTTP/1.1\r\nHost: example.org\r\n"
	    "Content-Length: 0\r\n\r\n", 308, "https://example.org/form");
	expect_location("DELETE /x HTTP/1.1\r\nHost: example.org\r\n\r\n",
	    308, "https://example.org/x");
}

Test(https, redirect_port)
{
	conf.https_port = 8443;
	expect_location("GET /p HTTP/1.1\r\nHost: example.org:8080\r\n\r\n",
	    301, "https://example.org:8443/p");
}

Test(https, redirect_host_validated)
{
	/* A wildcard match is the Host as sent, lower-cased. */
	expect_location("GET / HTTP/1.1\r\nHost: WWW.Example.org\r\n\r\n",
	    301, "https://www.example.org/");
	/* A Host no site claims falls to the default site "*": never echoed;
	 * that site has no exact name to send instead. */
	{
		struct exchange x;

		handle(&x, "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n", 0);
		cr_assert_eq(x.r.status, 421);
		cr_assert_null(strstr(fields(&x), "evil"));
		done(&x);
	}
	/* A wildcard match with bytes a URL parser would read otherwise. */
	{
		struct exchange x;

		handle(&x, "GET / HTTP/1.1\r\nHost: a%2f.wild.test\r\n\r\n", 0);
		cr_assert_eq(x.r.status, 421);
		done(&x);
	}
	/* No Host (HTTP/1.0) on the default site: nothing to name. */
	sites[2].names = names0;	/* now example.org is its first name */
	sites[2].nnames = 1;
	sites[0].nnames = 0;
	expect_location("GET / HTTP/1.0\r\n\r\n", 301, "https://example.org/");
	expect_location("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n", 301,
	    "https://example.org/");
}

Test(https, redirect_path_escaped)
{
	/* The path goes as sent, escapes kept, nothing a parser could take
	 * for another authority: "//evil" stays a path on our host. */
	expect_location("GET //evil.test/%2e%2e/a%20b HTTP/1.1\r\nHost: example.org\r\n\r\n",
	    301, "https://example.org//evil.test/%2e%2e/a%20b");
}

Test(https, acme_exempt)
{
	struct exchange x;

	handle(&x, "GET /.well-known/acme-challenge/tok HTTP/1.1\r\n"
	    "Host: example.org\r\n\r\n", 0);
	cr_assert_eq(x.r.status, 404, "served, not redirected");
	done(&x);
	/* What cleans to another path is not a challenge. */
	expect_location("GET /.well-known/acme-challenge/../../index.html HTTP/1.1\r\n"
	    "Host: example.org\r\n\r\n", 301,
	    "https://example.org/.well-known/acme-challenge/../../index.html");
}

Test(https, no_redirect_over_tls)
{
	struct exchange x;

	handle(&x, "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", 1);
	cr_assert_eq(x.r.status, 200);
	done(&x);
}

Test(https, hsts_over_tls_only)
{
	struct exchange x;

	handle(&x, "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", 1);
	cr_assert_eq(x.r.status, 200);
	cr_assert_not_null(strstr(fields(&x), HSTS), "%s", fields(&x));
	done(&x);
	/* Errors too: a 404 and a 405. */
	handle(&x, "GET /nope HTTP/1.1\r\nHost: example.org\r\n\r\n", 1);
	cr_assert_eq(x.r.status, 404);
	cr_assert_not_null(strstr(fields(&x), HSTS), "%s", fields(&x));
	done(&x);
	handle(&x, "PUT / HTTP/1.1\r\nHost: example.org\r\nContent-Length: 0\r\n\r\n", 1);
	cr_assert_eq(x.r.status, 405);
	cr_assert_not_null(strstr(fields(&x), HSTS), "%s", fields(&x));
	done(&x);
	/* Never over plain HTTP, even when the site does not redirect. */
	sites[0].redirect_https = 0;
	handle(&x, "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", 0);
	cr_assert_eq(x.r.status, 200);
	cr_assert_null(strstr(fields(&x), "Strict-Transport"), "%s", fields(&x));
	done(&x);
	/* A site without hsts sends none over TLS. */
	sites[0].hsts = NULL;
	sites[0].hsts_len = 0;
	handle(&x, "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", 1);
	cr_assert_eq(x.r.status, 200);
	cr_assert_null(strstr(fields(&x), "Strict-Transport"), "%s", fields(&x));
	done(&x);
}

Test(https, hsts_on_parse_errors)
{
	struct request q;
	struct http_req h;
	struct resp r;
	const char *bad = "GET / HTTP/1.1\r\nHost: example.org\r\nBad Header\r\n\r\n";

	http_req_init(&h, 8192);
	cr_assert_eq(http_parse(&h, bad, strlen(bad)), HTTP_PARSE_ERROR);
	memset(&q, 0, sizeof(q));
	q.h = &h;
	q.buf = bad;
	memset(&r, 0, sizeof(r));
	r.fd = -1;
	q.tls = 1;
	http_error(&q, &r, 400);
	cr_assert_eq(r.status, 400);
	cr_assert(memmem(r.buf + RESP_HEAD_ROOM, r.fields_end - RESP_HEAD_ROOM,
	    "Strict-Transport-Security:", 26) != NULL);
	q.tls = 0;
	http_error(&q, &r, 400);
	cr_assert(memmem(r.buf + RESP_HEAD_ROOM, r.fields_end - RESP_HEAD_ROOM,
	    "Strict-Transport-Security:", 26) == NULL);
	free(r.buf);
}

/* ---- the configuration keys ------------------------------------------------ */

static const char *
fixtures(void)
{
	const char *f = getenv("FIXTURES");

	return f != NULL && *f != '\0' ? f : "tests/unit/fixtures";
}

/* Load fixture name: the conf, or NULL with err filled. */
static struct conf *
load(const char *name, char *err, size_t errlen)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", fixtures(), name);
	return conf_load(path, err, errlen);
}

/* Loading fixture name fails with "...name:line: msg". */
static void
expect_err(const char *name, unsigned int line, const char *msg)
{
	char err[1024], want[1024];

	cr_assert_null(load(name, err, sizeof(err)), "%s loaded", name);
	snprintf(want, sizeof(want), "%s:%u: %s", name, line, msg);
	cr_assert_not_null(strstr(err, want), "%s:\ngot  %s\nwant %s", name,
	    err, want);
}

Test(https_conf, keys)
{
	char err[1024];
	struct conf *c = load("good-https.conf", err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->https_port, 8443);
	cr_assert_eq(c->nsites, 2);
	cr_assert_eq(c->sites[0].redirect_https, 1);
	cr_assert_str_eq(c->sites[0].hsts, "Strict-Transport-Security: "
	    "max-age=63072000; includeSubDomains; preload\r\n");
	cr_assert_eq(c->sites[0].hsts_len, strlen(c->sites[0].hsts));
	cr_assert_eq(c->sites[1].redirect_https, 0);
	cr_assert_str_eq(c->sites[1].hsts,
	    "Strict-Transport-Security: max-age=0\r\n");
	conf_free(c);
}

Test(https_conf, off_by_default)
{
	char err[1024];
	struct conf *c = load("good-defaults.conf", err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->sites[0].redirect_https, 0);
	cr_assert_null(c->sites[0].hsts);
	cr_assert_eq(c->https_port, 0);
	conf_free(c);
}

Test(https_conf, errors)
{
	expect_err("bad-https-notls.conf", 5,
	    "'redirect_https' needs a listener with tls = true");
	expect_err("bad-https-port0.conf", 4, "'redirect_https' needs a fixed "
	    "port on the first TLS listener, not '127.0.0.1:0'");
	expect_err("bad-hsts-preload.conf", 4, "'preload' needs "
	    "include_subdomains = true and max_age >= 31536000 (one year)");
	expect_err("bad-hsts-noage.conf", 3, "'hsts' needs 'max_age'");
	expect_err("bad-hsts-key.conf", 2, "unknown key 'max_Age' in 'hsts'");
	expect_err("bad-hsts-range.conf", 2,
	    "'max_age' must be between 0 and 2147483647");
}
