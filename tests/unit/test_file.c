/*
 * test_file.c - path cleaning, hidden paths, confined opens, errno mapping.
 *
 * The open tests build a small tree under mkdtemp() and run three times:
 * with openat2(), and with a seccomp filter making openat2() fail with
 * ENOSYS (old kernel) or EPERM (container policy), so that the /proc
 * fallback is held to the same answers.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "porter.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- file_clean_path ----------------------------------------------------- */

struct clean_case {
	const char	*raw;
	size_t		 len;		/* 0: strlen(raw) */
	int		 status;
	const char	*want;		/* when status is 0 */
};

static const struct clean_case clean_cases[] = {
	{ "/",				0, 0, "/" },
	{ "/index.html",		0, 0, "/index.html" },
	{ "/a/./b/../c",		0, 0, "/a/c" },
	{ "/a//b",			0, 0, "/a/b" },
	{ "//a///b//",			0, 0, "/a/b/" },
	{ "/%7euser/",			0, 0, "/~user/" },
	{ "/%7Euser/",			0, 0, "/~user/" },
	{ "/dir/..",			0, 0, "/" },
	{ "/dir/.",			0, 0, "/dir/" },
	{ "/a/b/..",			0, 0, "/a/" },
	{ "/a/b/../",			0, 0, "/a/" },
	{ "/.",				0, 0, "/" },
	{ "/./",			0, 0, "/" },
	{ "/a/%2e/b",			0, 0, "/a/b" },
	{ "/a/%2e%2e/b",		0, 0, "/b" },
	{ "/a/.%2E/b",			0, 0, "/b" },
	{ "/a/%2E.",			0, 0, "/" },
	{ "/a%20b",			0, 0, "/a b" },
	{ "/%41%62c",			0, 0, "/Abc" },
	{ "/caf%C3%A9",			0, 0, "/caf\xc3\xa9" },
	{ "/x%3f",			0, 0, "/x?" },
	{ "/...",			0, 0, "/..." },
	{ "/a/.../b",			0, 0, "/a/.../b" },
	{ "/.hidden",			0, 0, "/.hidden" },
	{ "/..a/b..",			0, 0, "/..a/b.." },
	/* a backslash is an ordinary byte on Linux */
	{ "/a\\..\\..\\etc",		0, 0, "/a\\..\\..\\etc" },
	{ "/..\\x",			0, 0, "/..\\x" },
	/* decoded once: a file literally named "%2e%2e" */
	{ "/%252e%252e/",		0, 0, "/%2e%2e/" },
	{ "/%252e%252e/%252e%252e/x",	0, 0, "/%2e%2e/%2e%2e/x" },
	/* overlong UTF-8 dots are just bytes, never "." */
	{ "/%c0%ae%c0%ae/etc/passwd",	0, 0, "/\xc0\xae\xc0\xae/etc/passwd" },
	{ "/%e0%80%ae%e0%80%ae/x",	0, 0, "/\xe0\x80\xae\xe0\x80\xae/x" },

	{ "",				0, 400, NULL },
	{ "a/b",			0, 400, NULL },
	{ "*",				0, 400, NULL },
	{ "%2fetc",			0, 400, NULL },
	{ "/%00",			0, 400, NULL },
	{ "/a%00b",			0, 400, NULL },
	{ "/a\0b",			4, 400, NULL },
	{ "/a%2fb",			0, 400, NULL },
	{ "/a%2Fb",			0, 400, NULL },
	{ "/%zz",			0, 400, NULL },
	{ "/%4",			0, 400, NULL },
	{ "/%4/",			0, 400, NULL },
	{ "/%",				0, 400, NULL },
	{ "/a%g0",			0, 400, NULL },
	{ "/a%0g",			0, 400, NULL },
	{ "/%%41",			0, 400, NULL },
	{ "/..",			0, 400, NULL },
	{ "/../",			0, 400, NULL },
	{ "/./../x",			0, 400, NULL },
	{ "/a/../../etc/passwd",	0, 400, NULL },
	{ "/a/b/../../..",		0, 400, NULL },
	{ "/%2e%2e/etc/passwd",		0, 400, NULL },
	{ "/%2E%2E",			0, 400, NULL },
	{ "/.%2e/x",			0, 400, NULL },
	{ "/..%2f..%2fetc/passwd",	0, 400, NULL },
	{ "/%2e%2e%2f",			0, 400, NULL },
	/* with the %2f refused, the bad-escape check still comes first */
	{ "/ok/%2e%2e/%2e%2e/%zz",	0, 400, NULL },
};

Test(clean_path, table)
{
	char	 out[256];
	size_t	 i, len;
	int	 st;

	for (i = 0; i < nitems(clean_cases); i++) {
		const struct clean_case *c = &clean_cases[i];

		len = c->len ? c->len : strlen(c->raw);
		memset(out, 'X', sizeof(out));
		st = file_clean_path(c->raw, len, out, sizeof(out));
		cr_expect_eq(st, c->status, "\"%s\": status %d, want %d",
		    c->raw, st, c->status);
		if (st == 0 && c->status == 0)
			cr_expect_str_eq(out, c->want, "\"%s\": \"%s\", want \"%s\"",
			    c->raw, out, c->want);
	}
}

Test(clean_path, len_is_respected)
{
	char	 out[64];

	/* Only the first len bytes count: the query is the caller's. */
	cr_assert_eq(file_clean_path("/a/b?x=/../..", 4, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/a/b");
	cr_assert_eq(file_clean_path("/a/..", 3, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/a/");
	/* an escape cut by len is incomplete */
	cr_assert_eq(file_clean_path("/%41", 3, out, sizeof(out)), 400);
}

Test(clean_path, out_size_boundaries)
{
	char	 out[16];

	cr_assert_eq(file_clean_path("/", 1, out, 1), 414);
	cr_assert_eq(file_clean_path("/", 1, out, 2), 0);
	cr_assert_str_eq(out, "/");
	cr_assert_eq(file_clean_path("/abcdef", 7, out, 7), 414);
	cr_assert_eq(file_clean_path("/abcdef", 7, out, 8), 0);
	cr_assert_str_eq(out, "/abcdef");
	cr_assert_eq(file_clean_path("/abc/", 5, out, 5), 414);
	cr_assert_eq(file_clean_path("/abc/", 5, out, 6), 0);
	cr_assert_str_eq(out, "/abc/");
	/* measured decoded: nine raw bytes, three decoded */
	cr_assert_eq(file_clean_path("/%41%42", 7, out, 4), 0);
	cr_assert_str_eq(out, "/AB");
	/* "a" must fit before ".." takes it away again */
	cr_assert_eq(file_clean_path("/a/..", 5, out, 2), 414);
	cr_assert_eq(file_clean_path("/a/..", 5, out, 3), 0);
	cr_assert_str_eq(out, "/");
}

/*
 * Every path made of a few segments from an alphabet of names, dots and
 * encoded dots, checked against a plain stack-of-segments model.
 */
static const char *const model_seg[] = {
	"a", "", ".", "..", "%2e", "%2E%2e", ".%2e", "%252e", "b.",
};

static int
model_clean(const char *const *segs, size_t nseg, int slash, char *out)
{
	const char	*stack[8], *s;
	size_t		 depth = 0, i;
	int		 dot1, dot2, trailing = slash;

	for (i = 0; i < nseg; i++) {
		s = segs[i];
		dot1 = !strcmp(s, ".") || !strcmp(s, "%2e");
		dot2 = !strcmp(s, "..") || !strcmp(s, "%2E%2e") ||
		    !strcmp(s, ".%2e");
		if (i + 1 == nseg && !slash)
			trailing = s[0] == '\0' || dot1 || dot2;
		if (s[0] == '\0' || dot1)
			continue;
		if (dot2) {
			if (depth == 0)
				return 400;
			depth--;
			continue;
		}
		stack[depth++] = !strcmp(s, "%252e") ? "%2e" : s;
	}
	out[0] = '\0';
	for (i = 0; i < depth; i++) {
		strcat(out, "/");
		strcat(out, stack[i]);
	}
	if (depth == 0 || trailing)
		strcat(out, "/");
	return 0;
}

Test(clean_path, model)
{
	const char	*segs[4];
	char		 raw[128], out[128], want[128];
	size_t		 nseg, k, idx, total, nalpha = nitems(model_seg);
	int		 slash, st, wst;

	for (nseg = 1; nseg <= 4; nseg++) {
		for (total = 1, k = 0; k < nseg; k++)
			total *= nalpha;
		for (idx = 0; idx < total; idx++) {
			size_t	 v = idx;

			for (k = 0; k < nseg; k++, v /= nalpha)
				segs[k] = model_seg[v % nalpha];
			for (slash = 0; slash <= 1; slash++) {
				raw[0] = '\0';
				for (k = 0; k < nseg; k++) {
					strcat(raw, "/");
					strcat(raw, segs[k]);
				}
				if (slash)
					strcat(raw, "/");
				wst = model_clean(segs, nseg, slash, want);
				st = file_clean_path(raw, strlen(raw), out,
				    sizeof(out));
				cr_assert_eq(st, wst, "\"%s\": %d, want %d",
				    raw, st, wst);
				if (st == 0)
					cr_assert_str_eq(out, want,
					    "\"%s\": \"%s\", want \"%s\"",
					    raw, out, want);
			}
		}
	}
}

/* ---- file_is_hidden ------------------------------------------------------ */

Test(is_hidden, table)
{
	static const struct {
		const char	*path;
		int		 hidden;
	} t[] = {
		{ "/", 0 },
		{ "/index.html", 0 },
		{ "/a/b.c/d", 0 },
		{ "/a./b", 0 },
		{ "/dir/", 0 },
		{ "/.git/config", 1 },
		{ "/.git/", 1 },
		{ "/.env", 1 },
		{ "/a/.htaccess", 1 },
		{ "/a/b/.ssh/id_rsa", 1 },
		{ "/...", 1 },
		{ "/.well-known", 0 },
		{ "/.well-known/", 0 },
		{ "/.well-known/acme-challenge/tok", 0 },
		{ "/.well-known/.secret", 1 },
		{ "/.well-known/a/.b", 1 },
		{ "/a/.well-known/x", 1 },
		{ "/.well-knownx", 1 },
		{ "/.well-known-x/", 1 },
		{ "/.Well-Known/x", 1 },
	};
	size_t	 i;

	for (i = 0; i < nitems(t); i++)
		cr_expect_eq(file_is_hidden(t[i].path), t[i].hidden,
		    "\"%s\": want %d", t[i].path, t[i].hidden);
}

/* ---- file_errno_status ---------------------------------------------------- */

Test(errno_status, table)
{
	static const struct {
		int	 err;
		int	 status;
	} t[] = {
		{ ENOENT, 404 }, { ENOTDIR, 404 }, { ELOOP, 404 },
		{ EXDEV, 404 }, { ENXIO, 404 },
		{ EACCES, 403 }, { EPERM, 403 },
		{ ENAMETOOLONG, 414 },
		{ EMFILE, 503 }, { ENFILE, 503 }, { ENOMEM, 503 },
		{ EIO, 500 }, { EINVAL, 500 }, { ENOSYS, 500 }, { 0, 500 },
	};
	size_t	 i;

	for (i = 0; i < nitems(t); i++)
		cr_expect_eq(file_errno_status(t[i].err), t[i].status,
		    "%s: want %d", strerror(t[i].err), t[i].status);
}

/* ---- file_open_beneath ----------------------------------------------------- */

/*
 * base/
 *   outside		"outside"
 *   outdir/f		"outdir"
 *   root/
 *     index.html	"hello"
 *     sub/file.txt	"sub"
 *     noperm		mode 000
 *     link_in		-> index.html
 *     link_sub		-> sub/file.txt
 *     sub/link_up	-> ../index.html
 *     dirlink_in	-> sub
 *     link_abs_out	-> /etc/passwd
 *     link_rel_out	-> ../outside
 *     dirlink_out	-> ..
 *     dirlink_abs	-> /etc
 *     link_magic	-> /proc/self/root/etc/passwd
 *     loop		-> loop
 */
static char	tree_base[256];
static int	tree_root = -1;

static void
tree_file(const char *path, const char *body, mode_t mode)
{
	char	 p[PATH_MAX];
	int	 fd;

	snprintf(p, sizeof(p), "%s/%s", tree_base, path);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	cr_assert(fd != -1, "%s: %s", p, strerror(errno));
	cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void
tree_dir(const char *path)
{
	char	 p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", tree_base, path);
	cr_assert_eq(mkdir(p, 0755), 0, "%s: %s", p, strerror(errno));
}

static void
tree_link(const char *target, const char *path)
{
	char	 p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", tree_base, path);
	cr_assert_eq(symlink(target, p), 0, "%s: %s", p, strerror(errno));
}

static void
tree_setup(void)
{
	char		 p[PATH_MAX];
	const char	*tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	cr_assert((size_t)snprintf(tree_base, sizeof(tree_base),
	    "%s/porter-test-file.XXXXXX", tmp) < sizeof(tree_base));
	cr_assert(mkdtemp(tree_base) != NULL, "mkdtemp: %s", strerror(errno));
	/* others must get in: one test opens as an unprivileged user */
	cr_assert_eq(chmod(tree_base, 0755), 0);

	tree_file("outside", "outside", 0644);
	tree_dir("outdir");
	tree_file("outdir/f", "outdir", 0644);
	tree_dir("root");
	tree_file("root/index.html", "hello", 0644);
	tree_dir("root/sub");
	tree_file("root/sub/file.txt", "sub", 0644);
	tree_file("root/noperm", "secret", 0);
	tree_link("index.html", "root/link_in");
	tree_link("sub/file.txt", "root/link_sub");
	tree_link("../index.html", "root/sub/link_up");
	tree_link("sub", "root/dirlink_in");
	tree_link("/etc/passwd", "root/link_abs_out");
	tree_link("../outside", "root/link_rel_out");
	tree_link("..", "root/dirlink_out");
	tree_link("/etc", "root/dirlink_abs");
	tree_link("/proc/self/root/etc/passwd", "root/link_magic");
	tree_link("loop", "root/loop");

	snprintf(p, sizeof(p), "%s/root", tree_base);
	tree_root = open(p, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	cr_assert(tree_root != -1, "%s: %s", p, strerror(errno));
}

static int
tree_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
tree_teardown(void)
{
	if (tree_root != -1)
		close(tree_root);
	/* FTW_PHYS: remove the symlinks, never what they point at */
	if (tree_base[0] != '\0')
		nftw(tree_base, tree_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Make openat2() fail with err from now on, as an old kernel or a sandbox would. */
static void
deny_openat2(int err)
{
	struct sock_filter	 f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO |
		    ((unsigned int)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog	 prog = { (unsigned short)nitems(f), f };
	struct open_how		 how;

	if (err == 0)
		return;
	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0,
	    "seccomp: %s", strerror(errno));
	/* prove the filter bites, or the fallback is not what we test */
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY;
	cr_assert_eq(syscall(SYS_openat2, tree_root, ".", &how, sizeof(how)), -1);
	cr_assert_eq(errno, err);
}

static void
expect_body(int fd, const char *body)
{
	char	 buf[64];
	ssize_t	 n;

	n = read(fd, buf, sizeof(buf) - 1);
	cr_assert(n >= 0, "read: %s", strerror(errno));
	buf[n] = '\0';
	cr_expect_str_eq(buf, body);
}

ParameterizedTestParameters(open_beneath, inside)
{
	static int	 modes[] = { 0, ENOSYS, EPERM };

	return cr_make_param_array(int, modes, nitems(modes));
}

ParameterizedTest(int *mode, open_beneath, inside,
    .init = tree_setup, .fini = tree_teardown)
{
	static const struct {
		const char	*path;
		const char	*body;
	} t[] = {
		{ "/index.html", "hello" },
		{ "index.html", "hello" },
		{ "/sub/file.txt", "sub" },
		{ "/link_in", "hello" },
		{ "/link_sub", "sub" },
		{ "/sub/link_up", "hello" },
		{ "/dirlink_in/file.txt", "sub" },
		{ "/dirlink_in/link_up", "hello" },
	};
	struct stat	 st;
	size_t		 i;
	int		 fd, err;

	deny_openat2(*mode);
	for (i = 0; i < nitems(t); i++) {
		err = 0;
		fd = file_open_beneath(tree_root, t[i].path, O_RDONLY, &err);
		cr_assert(fd != -1, "%s: %s", t[i].path, strerror(err));
		expect_body(fd, t[i].body);
		cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		close(fd);
	}

	/* "/" is the root directory itself, "/sub/" a directory in it */
	fd = file_open_beneath(tree_root, "/", O_RDONLY | O_DIRECTORY, &err);
	cr_assert(fd != -1, "/: %s", strerror(err));
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect(S_ISDIR(st.st_mode));
	close(fd);
	fd = file_open_beneath(tree_root, "/dirlink_in/", O_RDONLY, &err);
	cr_assert(fd != -1, "/dirlink_in/: %s", strerror(err));
	close(fd);

	/* an O_PATH root works as well as an O_DIRECTORY one */
	{
		int	 proot;

		proot = openat(tree_root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		cr_assert(proot != -1);
		fd = file_open_beneath(proot, "/sub/file.txt", O_RDONLY, &err);
		cr_assert(fd != -1, "O_PATH root: %s", strerror(err));
		expect_body(fd, "sub");
		close(fd);
		close(proot);
	}
}

ParameterizedTestParameters(open_beneath, refused)
{
	static int	 modes[] = { 0, ENOSYS, EPERM };

	return cr_make_param_array(int, modes, nitems(modes));
}

ParameterizedTest(int *mode, open_beneath, refused,
    .init = tree_setup, .fini = tree_teardown)
{
	static const struct {
		const char	*path;
		int		 flags;
		int		 err;
	} t[] = {
		{ "/missing", O_RDONLY, ENOENT },
		{ "/sub/missing", O_RDONLY, ENOENT },
		{ "/index.html/", O_RDONLY, ENOTDIR },
		{ "/index.html/x", O_RDONLY, ENOTDIR },
		{ "/loop", O_RDONLY, ELOOP },
		{ "/link_in", O_RDONLY | O_NOFOLLOW, ELOOP },
		/* escapes all look like "not found" */
		{ "/link_abs_out", O_RDONLY, ENOENT },
		{ "/link_rel_out", O_RDONLY, ENOENT },
		{ "/dirlink_out/outside", O_RDONLY, ENOENT },
		{ "/dirlink_out/outdir/f", O_RDONLY, ENOENT },
		{ "/dirlink_abs/passwd", O_RDONLY, ENOENT },
		{ "/sub/../../outside", O_RDONLY, ENOENT },
		{ "/../outside", O_RDONLY, ENOENT },
		{ "/..", O_RDONLY | O_DIRECTORY, ENOENT },
		{ "/dirlink_out", O_PATH, ENOENT },
		{ "/link_abs_out", O_PATH, ENOENT },
	};
	size_t	 i;
	int	 fd, err;

	deny_openat2(*mode);
	for (i = 0; i < nitems(t); i++) {
		err = 0;
		fd = file_open_beneath(tree_root, t[i].path, t[i].flags, &err);
		cr_expect_eq(fd, -1, "%s: opened", t[i].path);
		if (fd != -1) {
			close(fd);
			continue;
		}
		cr_expect_eq(err, t[i].err, "%s: %s, want %s", t[i].path,
		    strerror(err), strerror(t[i].err));
		cr_expect_eq(file_errno_status(err), 404);
	}

	/* the magic link: ELOOP with openat2, outside with the fallback */
	err = 0;
	fd = file_open_beneath(tree_root, "/link_magic", O_RDONLY, &err);
	cr_expect_eq(fd, -1);
	cr_expect_eq(file_errno_status(err), 404, "%s", strerror(err));
	if (fd != -1)
		close(fd);
}

/*
 * Root reads anything, so the permission check runs in a child that
 * has given up root; without root we are unprivileged already.
 */
ParameterizedTestParameters(open_beneath, noperm)
{
	static int	 modes[] = { 0, ENOSYS, EPERM };

	return cr_make_param_array(int, modes, nitems(modes));
}

ParameterizedTest(int *mode, open_beneath, noperm,
    .init = tree_setup, .fini = tree_teardown)
{
	pid_t	 pid;
	int	 status, fd, err = 0;

	deny_openat2(*mode);
	if ((pid = fork()) == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) == -1 ||
		    setresgid(65534, 65534, 65534) == -1 ||
		    setresuid(65534, 65534, 65534) == -1))
			_exit(100);
		fd = file_open_beneath(tree_root, "/noperm", O_RDONLY, &err);
		if (fd != -1)
			_exit(101);
		/* the readable neighbour still opens: it is not a blanket failure */
		fd = file_open_beneath(tree_root, "/index.html", O_RDONLY, &err);
		if (fd == -1)
			_exit(102);
		_exit(file_open_beneath(tree_root, "/noperm", O_RDONLY,
		    &err) == -1 ? err : 103);
	}
	cr_assert(pid != -1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), EACCES, "child said %d",
	    WEXITSTATUS(status));
	cr_assert_eq(file_errno_status(EACCES), 403);
}
