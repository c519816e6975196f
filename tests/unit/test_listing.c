/*
 * test_listing.c - directory listings: filtering, order and escaping.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rep.h"

static char	 dir[] = "/tmp/porter-listing-XXXXXXXX";
static int	 dfd = -1;

/* 2026-11-21 06:00:00 UTC */
#define T_FIXED	((time_t)1795240800)

static void
make_file(const char *name, size_t size)
{
	struct timespec	 ts[2] = { { T_FIXED, 0 }, { T_FIXED, 0 } };
	char		 buf[256];
	int		 fd;

	memset(buf, 'x', sizeof(buf));
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0, "%s: %s", name, strerror(errno));
	while (size > 0) {
		size_t	 n = size < sizeof(buf) ? size : sizeof(buf);

		cr_assert_eq(write(fd, buf, n), (ssize_t)n);
		size -= n;
	}
	cr_assert_eq(futimens(fd, ts), 0);
	close(fd);
}

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);

	make_file("a<b&c.txt", 10);
	make_file("space name.txt", 2000);
	make_file("quote\"'s.txt", 1);
	make_file("Zeta", 0);
	make_file("x:y", 3 * 1024 * 1024 + 512 * 1024);
	make_file(".hidden", 1);
	cr_assert_eq(mkdirat(dfd, "subdir", 0755), 0);
	cr_assert_eq(mkdirat(dfd, ".git", 0755), 0);
	cr_assert_eq(symlinkat("space name.txt", dfd, "link"), 0);
	cr_assert_eq(symlinkat("subdir", dfd, "dirlink"), 0);
	cr_assert_eq(symlinkat("nowhere", dfd, "broken"), 0);
	cr_assert_eq(mkfifoat(dfd, "fifo", 0644), 0);
}

static void
teardown(void)
{
	static const char *const files[] = {
		"a<b&c.txt", "space name.txt", "quote\"'s.txt", "Zeta", "x:y",
		".hidden", "link", "dirlink", "broken", "fifo"
	};
	size_t	 k;

	for (k = 0; k < sizeof(files) / sizeof(files[0]); k++)
		unlinkat(dfd, files[k], 0);
	unlinkat(dfd, "subdir", AT_REMOVEDIR);
	unlinkat(dfd, ".git", AT_REMOVEDIR);
	close(dfd);
	rmdir(dir);
}

TestSuite(listing, .init = setup, .fini = teardown);

static char *
render(const char *urlpath, size_t *len)
{
	char	*out;
	int	 fd;

	fd = dup(dfd);
	cr_assert_geq(fd, 0);
	cr_assert_eq(listing_html(fd, urlpath, NULL, NULL, &out, len), 0, "%s",
	    strerror(errno));
	cr_assert_not_null(out);
	cr_assert_eq(strlen(out), *len);
	return out;
}

/* Position of s in page, which must contain it. */
static size_t
at(const char *page, const char *s)
{
	const char	*p = strstr(page, s);

	cr_assert_not_null(p, "missing: %s", s);
	return (size_t)(p - page);
}

Test(listing, filters)
{
	size_t	 len;
	char	*page = render("/files/", &len);

	cr_expect_null(strstr(page, "hidden"), "dotfile listed");
	cr_expect_null(strstr(page, ".git"), "dot directory listed");
	cr_expect_null(strstr(page, "broken"), "broken symlink listed");
	cr_expect_null(strstr(page, "fifo"), "fifo listed");
	/* symlinks are followed: one to a file, one to a directory */
	at(page, "<a href=\"link\">link</a>");
	at(page, "<a href=\"dirlink/\">dirlink/</a>");
	free(page);
}

/* Asked about symlinks only; may refuse one (one leading out of the root). */
static int
follow_all_but_link(void *arg, const char *name, struct stat *st)
{
	int	*calls = arg;

	(*calls)++;
	if (strcmp(name, "link") == 0)
		return -1;
	return fstatat(dfd, name, st, 0);
}

Test(listing, follow_callback)
{
	char	*page;
	size_t	 len;
	int	 fd, calls = 0;

	fd = dup(dfd);
	cr_assert_geq(fd, 0);
	cr_assert_eq(listing_html(fd, "/files/", follow_all_but_link, &calls,
	    &page, &len), 0, "%s", strerror(errno));
	cr_expect_eq(calls, 3, "asked %d times, not for the 3 links", calls);
	cr_expect_null(strstr(page, ">link<"), "refused link listed");
	cr_expect_null(strstr(page, "broken"), "broken symlink listed");
	at(page, "<a href=\"dirlink/\">dirlink/</a>");
	at(page, "<a href=\"space%20name.txt\">");
	free(page);
}

Test(listing, order)
{
	size_t	 len;
	char	*page = render("/files/", &len);
	size_t	 pos[] = {
		at(page, ">../<"),
		at(page, ">dirlink/<"),
		at(page, ">subdir/<"),
		at(page, ">Zeta<"),
		at(page, ">a&lt;b&amp;c.txt<"),
		at(page, ">link<"),
		at(page, ">quote&quot;&#39;s.txt<"),
		at(page, ">space name.txt<"),
		at(page, ">x:y<"),
	};
	size_t	 k;

	for (k = 1; k < sizeof(pos) / sizeof(pos[0]); k++)
		cr_expect_lt(pos[k - 1], pos[k], "entry %zu out of order", k);
	free(page);
}

Test(listing, escaping)
{
	size_t	 len;
	char	*page = render("/files/<x> & \"y\"/", &len);

	at(page, "<title>Index of /files/&lt;x&gt; &amp; &quot;y&quot;/"
	    "</title>");
	at(page, "<h1>Index of /files/&lt;x&gt; &amp; &quot;y&quot;/</h1>");
	at(page, "<a href=\"a%3Cb%26c.txt\">a&lt;b&amp;c.txt</a>");
	at(page, "<a href=\"quote%22%27s.txt\">quote&quot;&#39;s.txt</a>");
	at(page, "<a href=\"space%20name.txt\">space name.txt</a>");
	/* a colon must not turn the link into a scheme */
	at(page, "<a href=\"x%3Ay\">x:y</a>");
	cr_expect_null(strstr(page, "<x>"));
	cr_expect_null(strstr(page, "a<b"));
	free(page);
}

Test(listing, sizes_and_times)
{
	size_t	 len;
	char	*page = render("/files/", &len);

	at(page, ">a&lt;b&amp;c.txt</a></td><td>2026-11-21 06:00</td>"
	    "<td class=\"size\" title=\"10 bytes\">10</td>");
	at(page, ">space name.txt</a></td><td>2026-11-21 06:00</td>"
	    "<td class=\"size\" title=\"2000 bytes\">2.0K</td>");
	at(page, ">Zeta</a></td><td>2026-11-21 06:00</td>"
	    "<td class=\"size\" title=\"0 bytes\">0</td>");
	at(page, ">x:y</a></td><td>2026-11-21 06:00</td>"
	    "<td class=\"size\" title=\"3670016 bytes\">3.5M</td>");
	at(page, ">subdir/</a></td><td>");
	free(page);
}

Test(listing, root_has_no_parent)
{
	size_t	 len;
	char	*page = render("/", &len);

	cr_expect_null(strstr(page, "../"));
	at(page, "<h1>Index of /</h1>");
	at(page, "</html>\n");
	free(page);
}

Test(listing, bad_fd)
{
	char	*out = (char *)1;
	size_t	 len = 1;

	errno = 0;
	cr_assert_eq(listing_html(-1, "/", NULL, NULL, &out, &len), -1);
	cr_assert_eq(errno, EBADF);
	cr_assert_null(out);
	cr_assert_eq(len, 0);
}
