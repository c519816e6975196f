/*
 * test_encoding.c - Accept-Encoding negotiation and compressible types.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "rep.h"

#define ALL	(ENCODING_BR | ENCODING_ZSTD | ENCODING_GZIP | ENCODING_IDENTITY)
#define GI	(ENCODING_GZIP | ENCODING_IDENTITY)
#define I	ENCODING_IDENTITY
#define G	ENCODING_GZIP
#define NONE	ENCODING_NONE_ACCEPTABLE

struct neg_case {
	const char	*hdr;
	int		 avail;
	int		 want;
};

static const struct neg_case cases[] = {
	/* absent or empty */
	{ NULL,				GI,	I },
	{ NULL,				ALL,	I },
	{ NULL,				G,	G },
	{ "",				GI,	I },
	{ "",				G,	NONE },
	{ " \t",			GI,	I },
	/* plain lists */
	{ "gzip",			GI,	G },
	{ "gzip",			I,	I },
	{ "GZip",			GI,	G },
	{ "x-gzip",			GI,	G },
	{ "gzip, deflate",		GI,	G },
	{ "gzip, deflate, br, zstd",	ALL,	ENCODING_BR },
	{ "gzip, deflate, br, zstd",	GI,	G },
	{ "deflate",			GI,	I },
	{ "compress, deflate",		ALL,	I },
	{ "br",				GI,	I },
	{ "zstd, gzip",			ALL,	ENCODING_ZSTD },
	/* q-values */
	{ "gzip;q=1.0, br;q=0.5",	ALL,	G },
	{ "gzip;q=0.5, identity;q=0.6",	GI,	I },
	{ "gzip;q=0.6, identity;q=0.5",	GI,	G },
	{ "gzip;q=0",			GI,	I },
	{ "gzip;q=0.000",		GI,	I },
	{ "gzip;q=0.001",		GI,	G },
	{ "gzip;q=1.000",		GI,	G },
	{ "gzip;q=1.",			GI,	G },
	{ " gzip ; q=0.8 , br;Q=0.9 ",	ALL,	ENCODING_BR },
	{ "gzip;q=0.5,br;q=0.5,zstd;q=0.5",	ALL,	ENCODING_BR },
	{ "gzip;q=0.9,br;q=0.5,zstd;q=0.5",	ALL,	G },
	/* identity excluded */
	{ "identity;q=0",		I,	NONE },
	{ "identity;q=0",		GI,	NONE },
	{ "identity;q=0, gzip",		GI,	G },
	{ "*;q=0",			GI,	NONE },
	{ "*;q=0",			I,	NONE },
	{ "*;q=0, identity",		GI,	I },
	{ "*;q=0, identity;q=0.1",	GI,	I },
	{ "*;q=0, gzip",		GI,	G },
	{ "identity;q=0, *;q=0",	I,	NONE },
	/* the wildcard covers what is not listed */
	{ "*",				GI,	G },
	{ "*",				ALL,	ENCODING_BR },
	{ "*",				I,	I },
	{ "br;q=0, *",			ALL,	ENCODING_ZSTD },
	{ "br;q=0.9, *;q=0.95",		ALL,	ENCODING_ZSTD },
	{ "gzip;q=0.5, *;q=0.1",	GI,	G },
	{ "gzip;q=0.1, *;q=0.5",	GI,	I },
	/* malformed elements are ignored, the rest still counts */
	{ "gzip;q=1.5",			GI,	I },
	{ "gzip;q=1.001",		GI,	I },
	{ "gzip;q=abc",			GI,	I },
	{ "gzip;q=0.1234",		GI,	I },
	{ "gzip;q=",			GI,	I },
	{ "gzip;q",			GI,	I },
	{ "gzip;q=.5",			GI,	I },
	{ "gzip;q=-1",			GI,	I },
	{ "gzip;q=0.5;q=0.6",		GI,	I },
	{ "gzip;level=1",		GI,	I },
	{ "gzip;",			GI,	I },
	{ "gzip q=1",			GI,	I },
	{ "gz ip",			GI,	I },
	{ "\"gzip\"",			GI,	I },
	{ "@@@, gzip",			GI,	G },
	{ "identity;q=x, *;q=0",	GI,	NONE },
	{ "gzip;q=2, identity;q=0",	GI,	NONE },
	{ ",,gzip,,",			GI,	G },
	{ ",",				GI,	I },
	/* the first entry for a coding counts */
	{ "gzip;q=0, gzip",		GI,	I },
	{ "gzip, gzip;q=0",		GI,	G },
	{ "x-gzip;q=0, gzip",		GI,	I },
	{ "*;q=0, *",			GI,	NONE },
	/* nothing available at all */
	{ "gzip",			0,	NONE },
};

Test(encoding, negotiate)
{
	size_t	 k;
	int	 r;

	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct neg_case	*c = &cases[k];
		const char		*h = c->hdr;

		r = encoding_negotiate(h, h ? strlen(h) : 0, c->avail);
		cr_expect_eq(r, c->want, "'%s' among %#x: got %#x, want %#x",
		    h ? h : "(null)", c->avail, r, c->want);
	}
}

Test(encoding, not_nul_terminated)
{
	static const char	 buf[] = "gzip;q=0.5xxxx";

	cr_assert_eq(encoding_negotiate(buf, strlen("gzip;q=0.5"), GI), G);
	cr_assert_eq(encoding_negotiate(buf, strlen("gzip;q=0.5x"), GI), I);
	cr_assert_eq(encoding_negotiate("gzipped", 4, GI), G);
}

Test(encoding, tokens)
{
	cr_assert_str_eq(encoding_token(ENCODING_BR), "br");
	cr_assert_str_eq(encoding_token(ENCODING_ZSTD), "zstd");
	cr_assert_str_eq(encoding_token(ENCODING_GZIP), "gzip");
	cr_assert_null(encoding_token(ENCODING_IDENTITY));
	cr_assert_null(encoding_token(ENCODING_NONE_ACCEPTABLE));
	cr_assert_null(encoding_token(GI));
	cr_assert_str_eq(encoding_suffix(ENCODING_BR), ".br");
	cr_assert_str_eq(encoding_suffix(ENCODING_ZSTD), ".zst");
	cr_assert_str_eq(encoding_suffix(ENCODING_GZIP), ".gz");
	cr_assert_null(encoding_suffix(ENCODING_IDENTITY));
}

Test(encoding, compressible)
{
	char	*pats[] = {
		"text/*", "application/json", "image/svg+xml"
	};
	char	*any[] = { "*/*" };
	size_t	 n = sizeof(pats) / sizeof(pats[0]);

	cr_expect_eq(encoding_type_compressible("text/html", pats, n), 1);
	cr_expect_eq(encoding_type_compressible("text/html; charset=utf-8",
	    pats, n), 1);
	cr_expect_eq(encoding_type_compressible("TEXT/CSS", pats, n), 1);
	cr_expect_eq(encoding_type_compressible(" text/plain ", pats, n), 1);
	cr_expect_eq(encoding_type_compressible("application/json", pats, n),
	    1);
	cr_expect_eq(encoding_type_compressible(
	    "application/JSON ;charset=utf-8", pats, n), 1);
	cr_expect_eq(encoding_type_compressible("image/svg+xml", pats, n), 1);

	cr_expect_eq(encoding_type_compressible("application/jsonx", pats, n),
	    0);
	cr_expect_eq(encoding_type_compressible("application/javascript",
	    pats, n), 0);
	cr_expect_eq(encoding_type_compressible("image/png", pats, n), 0);
	cr_expect_eq(encoding_type_compressible("textual/html", pats, n), 0);
	cr_expect_eq(encoding_type_compressible("tex/html", pats, n), 0);
	cr_expect_eq(encoding_type_compressible("text", pats, n), 0);
	cr_expect_eq(encoding_type_compressible("", pats, n), 0);
	cr_expect_eq(encoding_type_compressible(NULL, pats, n), 0);
	cr_expect_eq(encoding_type_compressible("text/html", pats, 0), 0);
	cr_expect_eq(encoding_type_compressible("text/html", NULL, 0), 0);

	cr_expect_eq(encoding_type_compressible("image/png", any, 1), 1);
	cr_expect_eq(encoding_type_compressible("nonsense", any, 1), 0);
}

/* ---- Location: percent-encoding ------------------------------------ */

struct uri_case {
	const char	*in;
	const char	*want;
};

Test(encoding, uri_path)
{
	static const struct uri_case ucases[] = {
		{ "/dir",			"/dir" },
		{ "/a/b/c",			"/a/b/c" },
		{ "",				"/" },
		{ "/",				"/" },
		/* never "//host" */
		{ "//example.org/dir",		"/example.org/dir" },
		{ "///dir",			"/dir" },
		{ "//dir",			"/dir" },
		/* never a backslash, never a scheme */
		{ "/\\example.org/dir",		"/%5Cexample.org/dir" },
		{ "\\\\evil",			"/%5C%5Cevil" },
		{ "evil:x",			"/evil%3Ax" },
		{ "/http://evil",		"/http%3A//evil" },
		/* decoded bytes go back to escapes */
		{ "/my dir%x",			"/my%20dir%25x" },
		{ "/a?b#c",			"/a%3Fb%23c" },
		{ "/\x01\x7f\xc3\xa9",		"/%01%7F%C3%A9" },
		{ "/-._~",			"/-._~" },
		{ "/!$&'()*+,;=@",		"/%21%24%26%27%28%29%2A%2B%2C%3B%3D%40" },
	};
	char out[128];
	size_t i, n;

	for (i = 0; i < sizeof(ucases) / sizeof(ucases[0]); i++) {
		n = encoding_uri_path(ucases[i].in, strlen(ucases[i].in), out,
		    sizeof(out));
		cr_expect_str_eq(out, ucases[i].want, "path %zu", i);
		cr_expect_eq(n, strlen(ucases[i].want), "length %zu", i);
	}
}

Test(encoding, uri_path_truncates)
{
	char out[6];
	size_t n;

	/* snprintf semantics: the full length, a NUL-terminated prefix. */
	n = encoding_uri_path("/a b c", 6, out, sizeof(out));
	cr_expect_eq(n, 10);
	cr_expect_eq(strlen(out), 5);
	cr_expect_eq(memcmp(out, "/a%20", 5), 0);
	cr_expect_eq(encoding_uri_path("/a", 2, NULL, 0), 2);
	/* The worst case stays within 3 * len + 1. */
	cr_expect_eq(encoding_uri_path("%%%", 3, NULL, 0), 10);
}

Test(encoding, uri_query)
{
	static const struct uri_case ucases[] = {
		{ "",				"" },
		{ "a=1&b=2",			"a=1&b=2" },
		{ "q=%2F%2fx",			"q=%2F%2fx" },
		{ "next=//evil/x?y",		"next=//evil/x?y" },
		{ "a\\b",			"a%5Cb" },
		{ "100%",			"100%25" },
		{ "%zz%4",			"%25zz%254" },
		{ "a b\"<>`{}|^",		"a%20b%22%3C%3E%60%7B%7D%7C%5E" },
		{ "\xc3\xa9#",			"%C3%A9%23" },
	};
	char out[128];
	size_t i, n;

	for (i = 0; i < sizeof(ucases) / sizeof(ucases[0]); i++) {
		n = encoding_uri_query(ucases[i].in, strlen(ucases[i].in), out,
		    sizeof(out));
		cr_expect_str_eq(out, ucases[i].want, "query %zu", i);
		cr_expect_eq(n, strlen(ucases[i].want), "length %zu", i);
	}
}
