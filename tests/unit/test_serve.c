/*
 * test_serve.c - golden tests of serve_file() in its protocol-neutral
 * shape: build a request (a raw head through the real parser), call
 * serve_file() with a response and a site, and compare the status it
 * returns, the response's status, its fields byte for byte and its
 * body segments. No connection, no socket, no wire format: the fields
 * carry no status line, Date or Connection (the protocol adds those).
 */
#include <sys/stat.h>
#include <sys/time.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"
#include "rep.h"

#define NOW	1767225600	/* 2026-01-01 00:00:00 UTC */
#define MTIME	1700000000	/* 2023-11-14 22:13:20 UTC */

static struct conf conf;
static struct conf_site csite;
static struct site site;
static char root[] = "/tmp/porter-test-serve-XXXXXX";
static char etag[COND_ETAG_MAX];
static char lm[COND_DATE_SIZE];
static const char body[] = "0123456789";
static time_t now = NOW;		/* the request's clock */

static void
setup(void)
{
	struct timeval tv[2] = { { MTIME, 0 }, { MTIME, 0 } };
	char path[256];
	struct stat st;
	int fd;

	cr_assert_not_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/a.txt", root);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd != -1);
	cr_assert_eq(write(fd, body, 10), 10);
	close(fd);
	cr_assert_eq(utimes(path, tv), 0);
	cr_assert_eq(stat(path, &st), 0);
	cond_etag(&st, etag, sizeof(etag));
	cond_format_date(MTIME, lm);

	csite.root = root;
	conf.sites = &csite;
	conf.nsites = 1;
	serve_init(&conf, NULL);
	site.idx = 0;
	site.conf = &csite;
	site.rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert(site.rootfd != -1);
	http_init(&conf, &site.rootfd, NULL);
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	(void)!system(cmd);
}

TestSuite(serve, .init = setup, .fini = teardown);

struct golden {
	struct http_req	 h;
	struct request	 q;
	struct resp	 r;
	int		 rv;		/* what serve_file() returned */
};

/* Parse head, then serve /a.txt for it into g. */
static void
serve(struct golden *g, const char *head)
{
	struct stat st;
	int fd, err;

	http_req_init(&g->h, 8192);
	cr_assert_eq(http_parse(&g->h, head, strlen(head)), HTTP_PARSE_DONE,
	    "%s", head);
	g->q.h = &g->h;
	g->q.buf = head;
	g->q.peer = NULL;
	g->q.now = now;
	memset(&g->r, 0, sizeof(g->r));
	g->r.fd = -1;
	fd = file_open_beneath(site.rootfd, "/a.txt", O_RDONLY, &err);
	cr_assert(fd != -1);
	cr_assert_eq(fstat(fd, &st), 0);
	g->rv = serve_file(&g->q, &g->r, &site, NULL, fd, &st, "/a.txt");
}

static void
done(struct golden *g)
{
	resp_file_release(&g->r);
	cr_assert_eq(g->r.fd, -1);
	free(g->r.buf);
}

/* The fields exactly; the head segment is reserved for the protocol. */
static void
expect_fields(const struct golden *g, int status, const char *want)
{
	size_t len = g->r.fields_end - RESP_HEAD_ROOM;

	cr_assert_eq(g->rv, 0);
	cr_assert_eq(g->r.status, status);
	cr_assert_geq(g->r.nsegs, 1);
	cr_assert_eq(g->r.segs[0].kind, SEG_BUF);
	cr_assert_eq(g->r.segs[0].len, 0, "head bounds are the protocol's");
	cr_assert_eq(len, strlen(want), "got:\n%.*s\nwant:\n%s", (int)len,
	    g->r.buf + RESP_HEAD_ROOM, want);
	cr_assert(memcmp(g->r.buf + RESP_HEAD_ROOM, want, len) == 0,
	    "got:\n%.*s\nwant:\n%s", (int)len, g->r.buf + RESP_HEAD_ROOM, want);
}

static void
expect_seg(const struct golden *g, int i, int kind, size_t len, off_t foff,
    const char *bytes)
{
	const struct seg *s = &g->r.segs[i];

	cr_assert_lt(i, g->r.nsegs);
	cr_assert_eq(s->kind, kind, "segment %d", i);
	cr_assert_eq(s->len, len, "segment %d", i);
	if (kind == SEG_FILE)
		cr_assert_eq(s->u.foff, foff, "segment %d", i);
	if (kind == SEG_BUF)
		cr_assert(memcmp(g->r.buf + s->u.boff, bytes, len) == 0,
		    "segment %d: %.*s", i, (int)len, g->r.buf + s->u.boff);
}

/* The fields of a 200 for /a.txt with these validators. */
static void
want_200(char *want, size_t size, const char *date, const char *tag)
{
	snprintf(want, size, "Accept-Ranges: bytes\r\n"
	    "Last-Modified: %s\r\nETag: %s\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n",
	    date, tag);
}

Test(serve, get_200)
{
	struct golden g;
	char want[512];

	serve(&g, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	want_200(want, sizeof(want), lm, etag);
	expect_fields(&g, 200, want);
	cr_assert_eq(g.r.nsegs, 2);
	expect_seg(&g, 1, SEG_FILE, 10, 0, NULL);
	cr_assert(g.r.fd != -1 && g.r.fd_owned, "the response holds the file");
	done(&g);
}

/*
 * HEAD: serve_file() builds what GET gets, content included; the one
 * place that drops it is http_handle() (RFC 9110 9.3.2).
 */
Test(serve, head_has_no_body)
{
	struct golden g;
	const char *head = "HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";

	serve(&g, head);
	cr_assert_eq(g.r.status, 200);
	cr_assert_eq(g.r.nsegs, 2);
	done(&g);

	memset(&g.r, 0, sizeof(g.r));
	g.r.fd = -1;
	http_handle(&g.q, &g.r);
	cr_assert_eq(g.r.status, 200);
	cr_assert_eq(g.r.nsegs, 1);
	cr_assert_not_null(strstr(g.r.buf + RESP_HEAD_ROOM,
	    "Content-Length: 10\r\n"));
	done(&g);
}

Test(serve, range_206)
{
	struct golden g;
	char want[512];

	serve(&g, "GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\n\r\n");
	snprintf(want, sizeof(want), "Accept-Ranges: bytes\r\n"
	    "Last-Modified: %s\r\nETag: %s\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Range: bytes 2-4/10\r\nContent-Length: 3\r\n", lm, etag);
	expect_fields(&g, 206, want);
	cr_assert_eq(g.r.nsegs, 2);
	expect_seg(&g, 1, SEG_FILE, 3, 2, NULL);
	done(&g);
}

Test(serve, range_416)
{
	struct golden g;

	serve(&g, "GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=20-\r\n\r\n");
	expect_fields(&g, 416, "Content-Range: bytes */10\r\nContent-Length: 0\r\n");
	cr_assert_eq(g.r.nsegs, 1);
	done(&g);
}

Test(serve, multipart)
{
	struct golden g;
	const char *ct;
	char boundary[64];
	char part[256];

	serve(&g, "GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0,5-5\r\n\r\n");
	cr_assert_eq(g.rv, 0);
	cr_assert_eq(g.r.status, 206);
	ct = strstr(g.r.buf + RESP_HEAD_ROOM,
	    "Content-Type: multipart/byteranges; boundary=");
	cr_assert_not_null(ct);
	memcpy(boundary, ct + 45, 32);
	boundary[32] = '\0';
	/* head, part header, byte 0, part header, byte 5, closing */
	cr_assert_eq(g.r.nsegs, 6);
	snprintf(part, sizeof(part), "\r\n--%s\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Range: bytes 0-0/10\r\n\r\n", boundary);
	expect_seg(&g, 1, SEG_BUF, strlen(part), 0, part);
	expect_seg(&g, 2, SEG_FILE, 1, 0, NULL);
	expect_seg(&g, 4, SEG_FILE, 1, 5, NULL);
	snprintf(part, sizeof(part), "\r\n--%s--\r\n", boundary);
	expect_seg(&g, 5, SEG_BUF, strlen(part), 0, part);
	done(&g);
}

Test(serve, not_modified_304)
{
	struct golden g;
	char head[256], want[256];

	snprintf(head, sizeof(head), "GET /a.txt HTTP/1.1\r\nHost: x\r\n"
	    "If-None-Match: %s\r\n\r\n", etag);
	serve(&g, head);
	snprintf(want, sizeof(want), "Last-Modified: %s\r\nETag: %s\r\n", lm,
	    etag);
	expect_fields(&g, 304, want);
	cr_assert_eq(g.r.nsegs, 1);
	done(&g);
}

/* A failed precondition is a status for the caller to render. */
Test(serve, precondition_failed_412)
{
	struct golden g;

	serve(&g, "GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-Match: \"nope\"\r\n\r\n");
	cr_assert_eq(g.rv, 412);
	done(&g);
}

/*
 * serve.c formats a file version's validator lines once (serve_memo):
 * whatever it kept, the next response after a change must carry the
 * new version's, and a Last-Modified clamped to "now" must follow the
 * clock.
 */
static void
set_mtime(time_t sec, long nsec)
{
	struct timespec ts[2] = { { sec, nsec }, { sec, nsec } };
	char path[256];

	snprintf(path, sizeof(path), "%s/a.txt", root);
	cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
expect_validators(time_t lm_t, time_t sec, long nsec)
{
	struct golden g;
	char want[512], tag[COND_ETAG_MAX], date[COND_DATE_SIZE], path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/a.txt", root);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mtim.tv_sec, sec);
	cr_assert_eq(st.st_mtim.tv_nsec, nsec);
	cond_etag(&st, tag, sizeof(tag));
	cond_format_date(lm_t, date);
	serve(&g, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	want_200(want, sizeof(want), date, tag);
	expect_fields(&g, 200, want);
	done(&g);
}

Test(serve, validators_follow_each_version)
{
	expect_validators(MTIME, MTIME, 0);
	expect_validators(MTIME, MTIME, 0);		/* kept */
	set_mtime(MTIME, 64);		/* same second, same memo slot */
	expect_validators(MTIME, MTIME, 64);
	set_mtime(MTIME + 7, 5);
	expect_validators(MTIME + 7, MTIME + 7, 5);
	set_mtime(MTIME, 0);				/* back again */
	expect_validators(MTIME, MTIME, 0);
}

Test(serve, last_modified_in_the_future_follows_now)
{
	/* A file dated ahead of the clock is sent as modified "now". */
	set_mtime(NOW + 100, 0);
	expect_validators(NOW, NOW + 100, 0);
	now = NOW + 1;
	expect_validators(NOW + 1, NOW + 100, 0);
	now = NOW;
}
