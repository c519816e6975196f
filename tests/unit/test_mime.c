/*
 * test_mime.c - the built-in table, loading and reloading mime.types.
 *
 * Each Criterion test runs in its own process, so each starts with the
 * built-in table. Fixtures are written to a temporary file here: the
 * machine's /etc/mime.types must not decide the outcome.
 */

#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"

/*
 * LeakSanitizer's report at exit comes after Criterion has counted the
 * test as passed, so ask it directly while the test still runs.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define leaks_found()	__lsan_do_recoverable_leak_check()
#else
#define leaks_found()	0
#endif

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#define OCTET	"application/octet-stream"
#define UTF8	"; charset=utf-8"

static const char *
type_of(const char *path)
{
	return mime_type(path, strlen(path));
}

/* Write body to a fresh temporary file; the caller unlinks it. */
static char *
fixture(const char *body)
{
	static char	 path[256];
	const char	*tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int		 fd;

	cr_assert((size_t)snprintf(path, sizeof(path),
	    "%s/porter-test-mime.XXXXXX", tmp) < sizeof(path));
	fd = mkstemp(path);
	cr_assert(fd != -1, "mkstemp: %s", strerror(errno));
	cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	return path;
}

/* Everything the built-in table promises, and so every entry's order. */
static const struct {
	const char	*ext;
	const char	*type;
} builtin[] = {
	{ "html", "text/html" UTF8 },
	{ "htm", "text/html" UTF8 },
	{ "css", "text/css" UTF8 },
	{ "js", "text/javascript" UTF8 },
	{ "mjs", "text/javascript" UTF8 },
	{ "json", "application/json" UTF8 },
	{ "xml", "application/xml" UTF8 },
	{ "txt", "text/plain" UTF8 },
	{ "csv", "text/csv" UTF8 },
	{ "md", "text/markdown" UTF8 },
	{ "ics", "text/calendar" UTF8 },
	{ "map", "application/json" UTF8 },
	{ "webmanifest", "application/manifest+json" UTF8 },
	{ "svg", "image/svg+xml" },
	{ "svgz", "image/svg+xml" },
	{ "xhtml", "application/xhtml+xml" },
	{ "atom", "application/atom+xml" },
	{ "rss", "application/rss+xml" },
	{ "jsonld", "application/ld+json" },
	{ "png", "image/png" },
	{ "apng", "image/apng" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "avif", "image/avif" },
	{ "ico", "image/vnd.microsoft.icon" },
	{ "bmp", "image/bmp" },
	{ "tif", "image/tiff" },
	{ "tiff", "image/tiff" },
	{ "woff", "font/woff" },
	{ "woff2", "font/woff2" },
	{ "ttf", "font/ttf" },
	{ "otf", "font/otf" },
	{ "eot", "application/vnd.ms-fontobject" },
	{ "pdf", "application/pdf" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },
	{ "br", "application/x-brotli" },
	{ "zst", "application/zstd" },
	{ "tar", "application/x-tar" },
	{ "tgz", "application/x-gtar-compressed" },
	{ "wasm", "application/wasm" },
	{ "mp4", "video/mp4" },
	{ "webm", "video/webm" },
	{ "mpg", "video/mpeg" },
	{ "mpeg", "video/mpeg" },
	{ "mov", "video/quicktime" },
	{ "ogv", "video/ogg" },
	{ "mp3", "audio/mpeg" },
	{ "ogg", "audio/ogg" },
	{ "oga", "audio/ogg" },
	{ "opus", "audio/ogg" },
	{ "wav", "audio/wav" },
	{ "flac", "audio/flac" },
	{ "m4a", "audio/mp4" },
};

static void
expect_builtin(void)
{
	char	 name[64];
	size_t	 i;

	for (i = 0; i < nitems(builtin); i++) {
		snprintf(name, sizeof(name), "/dir/file.%s", builtin[i].ext);
		cr_expect_str_eq(type_of(name), builtin[i].type, "%s", name);
	}
}

Test(mime, builtin_before_load)
{
	expect_builtin();
	cr_expect_str_eq(type_of("/x.unknown"), OCTET);
}

Test(mime, builtin_after_failed_load)
{
	char	 err[256] = "";

	cr_assert_eq(mime_load("/nonexistent/porter/mime.types", err,
	    sizeof(err)), -1);
	cr_expect(strstr(err, "/nonexistent/porter/mime.types") != NULL, "%s",
	    err);
	cr_expect(strstr(err, strerror(ENOENT)) != NULL, "%s", err);
	expect_builtin();
}

Test(mime, names_without_extension)
{
	static const char *const t[] = {
		"", "/", "README", "/dir/README", "/dir.d/", "/dir.d/file",
		"a.", "/dir/a.", ".bashrc", "/home/.bashrc", "/.", "/..",
		"/a/.html",
	};
	size_t	 i;

	for (i = 0; i < nitems(t); i++)
		cr_expect_str_eq(type_of(t[i]), OCTET, "\"%s\"", t[i]);
}

Test(mime, extension_rules)
{
	cr_expect_str_eq(type_of("a.tar.gz"), "application/gzip");
	cr_expect_str_eq(type_of("/x/.config.json"), "application/json" UTF8);
	cr_expect_str_eq(type_of("INDEX.HTML"), "text/html" UTF8);
	cr_expect_str_eq(type_of("/a/Photo.JpEg"), "image/jpeg");
	cr_expect_str_eq(type_of("/a/b.htmlx"), OCTET);
	cr_expect_str_eq(type_of("/a/b.ht"), OCTET);
	cr_expect_str_eq(type_of("/a/b.h"), OCTET);
	cr_expect_str_eq(type_of("/a/b.\xc3\xa9"), OCTET);
	/* only len bytes count */
	cr_expect_str_eq(mime_type("page.html.bak", 9), "text/html" UTF8);
	cr_expect_str_eq(mime_type("page.css", 6), OCTET);
	cr_expect_str_eq(mime_type("page.css", 0), OCTET);
}

static const char fixture_types[] =
    "# a comment line\n"
    "\n"
    "   \t\n"
    "text/html\t\t\thtml htm shtml\n"
    "text/x-Custom  CUSTOM cst   # the rest is a comment: zzz\n"
    "application/javascript\t\tjs\n"
    "application/json json\n"
    "Application/XML xml\n"
    "application/manifest+json webmanifest\n"
    "application/ld+json jsonld\n"
    "image/svg+xml svg svgz\n"
    "application/x-first dup\n"
    "application/x-second dup\n"
    "application/no-extensions\n"
    "application/x-multi tar.gz tgz\n"
    "application/gzip gz\n"
    "application/x-crlf crlf\r\n"
    "application/x-last last";		/* no final newline */

Test(mime, load_fixture)
{
	char	 err[256] = "";
	char	*path = fixture(fixture_types);

	cr_assert_eq(mime_load(path, err, sizeof(err)), 0, "%s", err);
	unlink(path);

	cr_expect_str_eq(type_of("/i.html"), "text/html" UTF8);
	cr_expect_str_eq(type_of("/i.SHTML"), "text/html" UTF8);
	cr_expect_str_eq(type_of("/f.cst"), "text/x-Custom" UTF8);
	cr_expect_str_eq(type_of("/f.CuStOm"), "text/x-Custom" UTF8);
	cr_expect_str_eq(type_of("/f.zzz"), OCTET);
	cr_expect_str_eq(type_of("/a.js"), "application/javascript" UTF8);
	cr_expect_str_eq(type_of("/a.json"), "application/json" UTF8);
	cr_expect_str_eq(type_of("/a.xml"), "Application/XML" UTF8);
	cr_expect_str_eq(type_of("/a.webmanifest"),
	    "application/manifest+json" UTF8);
	cr_expect_str_eq(type_of("/a.jsonld"), "application/ld+json");
	cr_expect_str_eq(type_of("/a.svg"), "image/svg+xml");
	cr_expect_str_eq(type_of("/a.svgz"), "image/svg+xml");
	cr_expect_str_eq(type_of("/a.dup"), "application/x-second");
	cr_expect_str_eq(type_of("/a.tgz"), "application/x-multi");
	cr_expect_str_eq(type_of("/a.tar.gz"), "application/gzip");
	cr_expect_str_eq(type_of("/a.crlf"), "application/x-crlf");
	cr_expect_str_eq(type_of("/a.last"), "application/x-last");
	/* the file replaced the built-in table */
	cr_expect_str_eq(type_of("/a.png"), OCTET);
	cr_expect_str_eq(type_of("/a.css"), OCTET);

	/* mime_free() goes back to the built-in table */
	mime_free();
	expect_builtin();
}

Test(mime, js_gets_charset_as_debian_types_it)
{
	char	 err[256] = "";
	char	*path = fixture("text/javascript\t\t\t\tes js mjs\n");

	cr_assert_eq(mime_load(path, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	cr_expect_str_eq(type_of("/app.js"), "text/javascript" UTF8);
	cr_expect_str_eq(type_of("/app.mjs"), "text/javascript" UTF8);
	mime_free();
}

Test(mime, bad_files_keep_the_table)
{
	static const struct {
		const char	*body;
		const char	*msg;
	} t[] = {
		{ "text/html html\nnot-a-type foo\n", ":2: bad media type" },
		{ "/html html\n", ":1: bad media type" },
		{ "text/ html\n", ":1: bad media type" },
		{ "text/a/b html\n", ":1: bad media type" },
		{ "te(xt/html html\n", ":1: bad media type" },
		{ "text/html ht/ml\n", ":1: bad extension" },
		{ "", ": no extensions" },
		{ "# only a comment\ntext/plain\n", ": no extensions" },
	};
	char	 err[256];
	char	*path;
	size_t	 i;

	/* first a good table, which the bad ones must leave alone */
	path = fixture("text/plain txt\n");
	cr_assert_eq(mime_load(path, err, sizeof(err)), 0, "%s", err);
	unlink(path);

	for (i = 0; i < nitems(t); i++) {
		err[0] = '\0';
		path = fixture(t[i].body);
		cr_expect_eq(mime_load(path, err, sizeof(err)), -1, "%zu", i);
		cr_expect(strncmp(err, path, strlen(path)) == 0, "%zu: %s",
		    i, err);
		cr_expect_str_eq(err + strlen(path), t[i].msg, "%zu: %s", i, err);
		unlink(path);
		cr_expect_str_eq(type_of("/a.txt"), "text/plain" UTF8, "%zu", i);
		cr_expect_str_eq(type_of("/a.html"), OCTET, "%zu", i);
	}
	mime_free();
}

Test(mime, error_buffer_may_be_tiny)
{
	char	 err[4] = "xyz";

	cr_assert_eq(mime_load("/nonexistent/porter/mime.types", err,
	    sizeof(err)), -1);
	cr_expect_str_eq(err, "/no");
	cr_assert_eq(mime_load("/nonexistent/porter/mime.types", NULL, 0), -1);
}

/* Under ASan a table that reloading dropped without freeing is a leak. */
Test(mime, reload)
{
	char	 err[256] = "";
	char	*path = fixture(fixture_types);
	int	 i;

	for (i = 0; i < 3; i++) {
		cr_assert_eq(mime_load(path, err, sizeof(err)), 0, "%s", err);
		cr_expect_str_eq(type_of("/a.dup"), "application/x-second");
	}
	mime_free();
	mime_free();
	expect_builtin();
	cr_assert_eq(mime_load(path, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	cr_expect_str_eq(type_of("/a.tgz"), "application/x-multi");
	/* the last table is still in use: reachable, not leaked */
	cr_expect_eq(leaks_found(), 0);
	mime_free();
	cr_expect_eq(leaks_found(), 0);
}

static int
coding_of(const char *path)
{
	return mime_coding(path, strlen(path));
}

Test(mime, coding)
{
	static const struct {
		const char	*path;
		int		 coding;
	} cases[] = {
		/* the gzip coding of an SVG: sent with Content-Encoding */
		{ "/a.svgz",		MIME_CODING_GZIP },
		{ "/dir/A.SVGZ",	MIME_CODING_GZIP },
		{ "logo.svgz",		MIME_CODING_GZIP },
		/* compressed data served as itself */
		{ "/a.gz",		MIME_CODING_PACKED },
		{ "/a.tar.gz",		MIME_CODING_PACKED },
		{ "/a.tgz",		MIME_CODING_PACKED },
		{ "/a.br",		MIME_CODING_PACKED },
		{ "/a.zst",		MIME_CODING_PACKED },
		{ "/a.ZIP",		MIME_CODING_PACKED },
		{ "/a.xz",		MIME_CODING_PACKED },
		{ "/a.bz2",		MIME_CODING_PACKED },
		{ "/a.7z",		MIME_CODING_PACKED },
		{ "/a.Z",		MIME_CODING_PACKED },
		/* plain */
		{ "/a.svg",		MIME_CODING_NONE },
		{ "/a.svgz.txt",	MIME_CODING_NONE },
		{ "/a.gz/b",		MIME_CODING_NONE },
		{ "/a.html",		MIME_CODING_NONE },
		{ "/svgz",		MIME_CODING_NONE },
		{ "/.svgz",		MIME_CODING_NONE },	/* a dotfile */
		{ "/a.",		MIME_CODING_NONE },
		{ "/a.gzz",		MIME_CODING_NONE },
		{ "/a.g",		MIME_CODING_NONE },
		{ "",			MIME_CODING_NONE },
	};
	size_t	 i;

	for (i = 0; i < nitems(cases); i++)
		cr_expect_eq(coding_of(cases[i].path), cases[i].coding, "%s",
		    cases[i].path);
	/* Not NUL-terminated: only len bytes count. */
	cr_expect_eq(mime_coding("/a.svgzip", 7), MIME_CODING_GZIP);
	cr_expect_eq(mime_coding("/a.gz", 4), MIME_CODING_NONE);
}

/* What .svgz means for the coding does not come from mime.types. */
Test(mime, coding_not_from_the_table)
{
	char	 err[256] = "";
	char	*path = fixture("application/x-other svgz gz\n");

	cr_assert_eq(mime_load(path, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	cr_expect_str_eq(type_of("/a.svgz"), "application/x-other");
	cr_expect_eq(coding_of("/a.svgz"), MIME_CODING_GZIP);
	cr_expect_eq(coding_of("/a.gz"), MIME_CODING_PACKED);
	mime_free();
	cr_expect_str_eq(type_of("/a.svgz"), "image/svg+xml");
}
