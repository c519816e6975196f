/*
 * test_metrics.c - the Prometheus exposition (metrics.c) of a synthetic
 * scoreboard (scoreboard.c): a golden file, byte for byte; the latency
 * buckets at their edges; the status-code table; escaping; a short
 * buffer; counters that never go backwards across a fold; the config
 * hash; and, when Debian's prometheus package gave us promtool, its
 * verdict on the golden file.
 *
 * Criterion runs each test in its own process, so each makes its own
 * scoreboard, as a fresh master does. PORTER_UPDATE_GOLDEN=1 rewrites
 * the golden file (then read the diff before committing it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"
#include "scoreboard.h"
#include "metrics.h"

#define T0	UINT64_C(1764547200)	/* 2025-12-01T00:00:00Z */

static const char *
fixtures(void)
{
	const char *f = getenv("FIXTURES");

	return f != NULL && *f != '\0' ? f : "tests/unit/fixtures";
}

static void
golden_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/metrics.golden", fixtures());
}

/* A slot's worker does a few requests of each kind, with latencies. */
static void
busy_slot(unsigned i, uint32_t gen, int state, unsigned n)
{
	static const int codes[] = { 200, 304, 404, 206, 418, 503, 101 };
	static const uint64_t ms[] = { 0, 1, 2, 7, 300, 2500, 70000 };
	unsigned k;

	sb_slot_claim(i);
	sb_attach(i, gen);
	sb_set_state(state);
	/* one HTTP/2 connection with two streams open, a third of the requests */
	sb_h2_conn(1);
	sb_h2_streams(2);
	for (k = 0; k < n; k++) {
		sb_conn_opened();
		sb_request_done(codes[k % 7], 100 + k);
		if (k % 3 == 0)
			sb_h2_request();
		sb_request_time(ms[k % 7]);
		/* PROXY headers: v1, v2 PROXY, v2 LOCAL in turn */
		sb_proxy_header(k % 3 == 0 ? 1 : 2, k % 3 == 2 ? 0 : 1);
		sb_proxy_error(k % SB_NPROXY_ERR);
	}
	sb_conn_rejected(SB_REJ_MAX_CONNECTIONS);
	sb_heartbeat(1000, n % 5);
	/* of those, some idle, some writing, the rest reading */
	sb_conn_states(n % 5 / 2, n % 5 % 2);
}

/*
 * The board of the golden file: 4 slots; slot 1's worker died and was
 * folded; slots 0, 2, 3 live (ready, ready, draining); a failed and a
 * good reload; exits of each kind.
 */
static void
synthetic_board(void)
{
	cr_assert_eq(sb_init(4), 0);
	sb_master_start(T0, 1, metrics_hash(METRICS_FNV_BASIS, "a", 1));
	busy_slot(1, 1, SB_READY, 11);
	sb_fold(1);
	sb_master_exit(SB_EXIT_CRASH);
	sb_master_reload(0, T0 + 60, 0, 0);
	sb_master_reload(1, T0 + 120, 2,
	    metrics_hash(METRICS_FNV_BASIS, "foobar", 6));
	sb_master_exit(SB_EXIT_DRAINED);
	sb_master_exit(SB_EXIT_DRAINED);
	sb_master_exit(SB_EXIT_HANG);
	sb_master_exit(SB_EXIT_MAX_REQUESTS);
	busy_slot(0, 2, SB_READY, 7);
	busy_slot(2, 2, SB_READY, 3);
	busy_slot(3, 1, SB_DRAINING, 1);
	sb_master_draining(1);
}

static size_t
render(char *buf, size_t size)
{
	struct sb_totals t;
	ssize_t n;

	cr_assert_eq(sb_read_totals(&t), 0);
	n = metrics_render(buf, size, &t, "1.2.3");
	cr_assert_gt(n, 0);
	cr_assert_eq(strlen(buf), (size_t)n);
	return (size_t)n;
}

/* The value of the sample line that starts with "key " (a name{labels}). */
static int
sample(const char *text, const char *key, double *v)
{
	size_t kl = strlen(key);
	const char *p;

	for (p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'),
	    p = p != NULL ? p + 1 : NULL)
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			*v = strtod(p + kl + 1, NULL);
			return 1;
		}
	return 0;
}

static double
value(const char *text, const char *key)
{
	double v = -1;

	cr_assert(sample(text, key, &v), "no sample %s", key);
	return v;
}

/* porter_connections summed over its states. */
static double
open_conns(const char *text)
{
	return value(text, "porter_connections{state=\"reading\"}") +
	    value(text, "porter_connections{state=\"writing\"}") +
	    value(text, "porter_connections{state=\"idle\"}");
}

/* ---- the golden file ----------------------------------------------------- */

Test(metrics, golden_file)
{
	static char buf[METRICS_BUF_SIZE], want[METRICS_BUF_SIZE];
	char path[1024];
	size_t n, m;
	FILE *f;

	synthetic_board();
	n = render(buf, sizeof(buf));
	golden_path(path, sizeof(path));
	if (getenv("PORTER_UPDATE_GOLDEN") != NULL) {
		cr_assert_not_null(f = fopen(path, "w"));
		cr_assert_eq(fwrite(buf, 1, n, f), n);
		cr_assert_eq(fclose(f), 0);
	}
	cr_assert_not_null(f = fopen(path, "r"), "%s: %s", path,
	    strerror(errno));
	m = fread(want, 1, sizeof(want) - 1, f);
	fclose(f);
	want[m] = '\0';
	cr_assert_eq(n, m, "length %zu, golden %zu", n, m);
	cr_assert_str_eq(buf, want);
}

Test(metrics, golden_file_passes_promtool)
{
	char path[1024], cmd[1200];
	int rc;

	if (access("/usr/bin/promtool", X_OK) != 0)
		cr_skip_test("promtool missing (Debian package prometheus): "
		    "not checked");
	golden_path(path, sizeof(path));
	snprintf(cmd, sizeof(cmd),
	    "/usr/bin/promtool check metrics < '%s' 2>&1", path);
	rc = system(cmd);
	cr_assert_eq(rc, 0, "promtool check metrics failed (%d)", rc);
}

/* ---- pieces -------------------------------------------------------------- */

Test(metrics, bucket_edges)
{
	static char buf[METRICS_BUF_SIZE];
	static const uint64_t ms[] = { 0, 1, 2, 5, 6, 60000, 60001,
	    UINT64_C(1) << 40 };
	unsigned k;

	/* le is inclusive: a bound falls in its own bucket. */
	cr_assert_eq(sb_bucket_index(0), 0);
	for (k = 0; k < SB_NBUCKET - 1; k++) {
		cr_assert_eq(sb_bucket_index(sb_bucket_ms[k]), k);
		cr_assert_eq(sb_bucket_index(sb_bucket_ms[k] + 1), k + 1);
		if (k > 0)
			cr_assert_gt(sb_bucket_ms[k], sb_bucket_ms[k - 1]);
	}
	cr_assert_eq(sb_bucket_index(UINT64_MAX), SB_NBUCKET - 1);

	cr_assert_eq(sb_init(1), 0);
	sb_slot_claim(0);
	sb_attach(0, 1);
	for (k = 0; k < sizeof(ms) / sizeof(ms[0]); k++)
		sb_request_time(ms[k]);
	render(buf, sizeof(buf));
#define B(le)	value(buf, "porter_http_request_duration_seconds_bucket{le=\"" \
	le "\"}")
	cr_assert_eq(B("0.001"), 2);	/* 0 and 1 ms */
	cr_assert_eq(B("0.005"), 4);	/* + 2, 5 */
	cr_assert_eq(B("0.01"), 5);	/* + 6 */
	cr_assert_eq(B("10"), 5);
	cr_assert_eq(B("60"), 6);	/* + 60000 */
	cr_assert_eq(B("+Inf"), 8);	/* + 60001, 2^40 */
#undef B
	cr_assert_eq(value(buf, "porter_http_request_duration_seconds_count"),
	    8);
	/* 0+1+2+5+6+60000+60001 ms + 2^40 ms, in seconds. */
	cr_assert(strstr(buf, "porter_http_request_duration_seconds_sum "
	    "1099511747.791\n") != NULL);
}

Test(metrics, status_code_index)
{
	static char buf[METRICS_BUF_SIZE];
	static const int other[] = { -1, 0, 100, 101, 201, 303, 307, 418, 502,
	    599, 600, 1000 };
	char key[64];
	unsigned k;

	for (k = 0; k < SB_NCODE - 1; k++)
		cr_assert_eq(sb_code_index(sb_codes[k]), k, "code %d",
		    sb_codes[k]);
	for (k = 0; k < sizeof(other) / sizeof(other[0]); k++)
		cr_assert_eq(sb_code_index(other[k]), SB_NCODE - 1, "code %d",
		    other[k]);

	cr_assert_eq(sb_init(1), 0);
	sb_slot_claim(0);
	sb_attach(0, 1);
	for (k = 0; k < SB_NCODE - 1; k++)
		sb_request_done(sb_codes[k], 1);
	sb_request_done(404, 1);
	sb_request_done(418, 1);
	sb_request_done(0, 1);
	render(buf, sizeof(buf));
	for (k = 0; k < SB_NCODE - 1; k++) {
		snprintf(key, sizeof(key), "porter_http_requests_total{code=\"%d\"}",
		    sb_codes[k]);
		cr_assert_eq(value(buf, key), sb_codes[k] == 404 ? 2 : 1, "%s",
		    key);
	}
	cr_assert_eq(value(buf, "porter_http_requests_total{code=\"other\"}"), 2);
}

Test(metrics, escaping)
{
	static char buf[METRICS_BUF_SIZE];
	struct sb_totals t;
	char s[64];

	cr_assert_eq(metrics_escape(s, sizeof(s), "a\"b\\c\nd", 1), 10);
	cr_assert_str_eq(s, "a\\\"b\\\\c\\nd");
	/* HELP text keeps its quotes. */
	cr_assert_eq(metrics_escape(s, sizeof(s), "a\"b\\c\nd", 0), 9);
	cr_assert_str_eq(s, "a\"b\\\\c\\nd");
	cr_assert_eq(metrics_escape(s, sizeof(s), "", 1), 0);
	cr_assert_str_eq(s, "");
	/* Short: the length wanted, a terminated prefix, no split escape kept. */
	memset(s, 'x', sizeof(s));
	cr_assert_eq(metrics_escape(s, 4, "\\\\\\", 1), 6);
	cr_assert_eq(s[3], '\0');
	cr_assert_eq(s[4], 'x');
	cr_assert_eq(metrics_escape(NULL, 0, "ab", 1), 2);

	memset(&t, 0, sizeof(t));
	cr_assert_gt(metrics_render(buf, sizeof(buf), &t, "1.0\"\\\n}"), 0);
	cr_assert(strstr(buf, "\nporter_build_info{version=\"1.0\\\"\\\\\\n}\"} 1\n")
	    != NULL, "%s", buf);
	/* A HELP text with a quote goes out as it is. */
	cr_assert(strstr(buf, "(\"other\": any code not listed).\n") != NULL);
}

Test(metrics, short_buffer_is_an_error_and_never_overruns)
{
	static char full[METRICS_BUF_SIZE], buf[METRICS_BUF_SIZE + 16];
	struct sb_totals t;
	size_t n, size;

	synthetic_board();
	n = render(full, sizeof(full));
	cr_assert_lt(n, METRICS_BUF_SIZE / 2, "the bound has room: %zu", n);
	cr_assert_eq(sb_read_totals(&t), 0);
	for (size = 0; size <= n; size++) {
		memset(buf, 0x5a, sizeof(buf));
		errno = 0;
		cr_assert_eq(metrics_render(buf, size, &t, "1.2.3"), -1,
		    "size %zu", size);
		cr_assert_eq(errno, ENOBUFS);
		cr_assert_eq(buf[size], 0x5a, "wrote past %zu", size);
		if (size > 0) {
			cr_assert_eq(buf[size - 1], '\0');
			cr_assert_eq(memcmp(buf, full, size - 1), 0);
		}
	}
	cr_assert_eq(metrics_render(buf, n + 1, &t, "1.2.3"), (ssize_t)n);
	cr_assert_str_eq(buf, full);
}

Test(metrics, worst_case_fits_the_documented_bound)
{
	static char buf[METRICS_BUF_SIZE];
	struct sb_totals t;
	char version[65];
	ssize_t n;

	/* Every number at its widest, a version of 64 escaped characters. */
	memset(&t, 0xff, sizeof(t));
	memset(version, '"', 64);
	version[64] = '\0';
	n = metrics_render(buf, sizeof(buf), &t, version);
	cr_assert_gt(n, 0);
	cr_assert_lt(n, 8 * 1024, "%zd bytes", n);
}

/* ---- never backwards ------------------------------------------------------ */

/*
 * Every counter and histogram sample of a rendering (lines after a TYPE
 * counter or histogram), in order: key and value.
 */
struct samples {
	char	 key[128][128];
	double	 v[128];
	int	 n;
};

static void
counters(const char *text, struct samples *s)
{
	char line[512], type[32] = "";
	const char *p = text, *e;
	size_t len;

	s->n = 0;
	for (; *p != '\0'; p = e + 1) {
		cr_assert_not_null(e = strchr(p, '\n'));
		len = (size_t)(e - p);
		cr_assert_lt(len, sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		if (sscanf(line, "# TYPE %*s %31s", type) == 1)
			continue;
		if (line[0] == '#' || (strcmp(type, "counter") != 0 &&
		    strcmp(type, "histogram") != 0))
			continue;
		cr_assert_lt(s->n, 128);
		cr_assert_eq(sscanf(line, "%127s %lf", s->key[s->n],
		    &s->v[s->n]), 2, "%s", line);
		s->n++;
	}
}

Test(metrics, counters_never_go_backwards_across_a_fold)
{
	static char before[METRICS_BUF_SIZE], after[METRICS_BUF_SIZE];
	static struct samples a, b;
	int k, grew = 0;

	synthetic_board();
	render(before, sizeof(before));
	counters(before, &a);
	/* The busiest live worker dies: its counts move to the retired. */
	sb_fold(0);
	sb_master_exit(SB_EXIT_CRASH);
	render(after, sizeof(after));
	counters(after, &b);
	cr_assert_eq(a.n, b.n);
	cr_assert_gt(a.n, 40);
	for (k = 0; k < a.n; k++) {
		cr_assert_str_eq(a.key[k], b.key[k]);
		cr_assert_geq(b.v[k], a.v[k], "%s went from %g to %g",
		    a.key[k], a.v[k], b.v[k]);
		grew += b.v[k] > a.v[k];
	}
	/* Only the crash count moved; the fold itself changed no total. */
	cr_assert_eq(grew, 1);
	cr_assert_eq(value(after, "porter_worker_exits_total{reason=\"crash\"}"),
	    2);
	/* Gauges follow the live slots: the dead worker's go with it. */
	cr_assert_eq(value(before, "porter_workers{state=\"ready\"}"), 2);
	cr_assert_eq(value(after, "porter_workers{state=\"ready\"}"), 1);
	cr_assert_eq(open_conns(after), open_conns(before) - 7 % 5);
	/* slot 0 (7 % 5 = 2 open) had one idle, none writing, one reading */
	cr_assert_eq(value(after, "porter_connections{state=\"idle\"}"),
	    value(before, "porter_connections{state=\"idle\"}") - 1);
	cr_assert_eq(value(after, "porter_connections{state=\"reading\"}"),
	    value(before, "porter_connections{state=\"reading\"}") - 1);
}

/* ---- master facts and the hash -------------------------------------------- */

Test(metrics, reloads_and_last_result)
{
	static char buf[METRICS_BUF_SIZE];

	cr_assert_eq(sb_init(1), 0);
	sb_master_start(T0, 1, 0x0123456789abcdefULL);
	render(buf, sizeof(buf));
	cr_assert_eq(value(buf, "porter_config_last_reload_successful"), 1);
	cr_assert_eq(value(buf,
	    "porter_config_last_reload_success_timestamp_seconds"), (double)T0);
	cr_assert_eq(value(buf, "porter_config_info{hash=\"0123456789abcdef\"}"),
	    1);
	sb_master_reload(0, T0 + 5, 7, 42);
	render(buf, sizeof(buf));
	cr_assert_eq(value(buf, "porter_config_last_reload_successful"), 0);
	cr_assert_eq(value(buf, "porter_config_reloads_total{result=\"failure\"}"),
	    1);
	/* A failed reload changes neither the generation nor the config. */
	cr_assert_eq(value(buf, "porter_generation"), 1);
	cr_assert_eq(value(buf,
	    "porter_config_last_reload_success_timestamp_seconds"), (double)T0);
	cr_assert_eq(value(buf, "porter_config_info{hash=\"0123456789abcdef\"}"),
	    1);
	sb_master_reload(1, T0 + 9, 2, 0xff);
	render(buf, sizeof(buf));
	cr_assert_eq(value(buf, "porter_config_last_reload_successful"), 1);
	cr_assert_eq(value(buf, "porter_config_reloads_total{result=\"success\"}"),
	    1);
	cr_assert_eq(value(buf, "porter_generation"), 2);
	cr_assert_eq(value(buf, "porter_config_info{hash=\"00000000000000ff\"}"),
	    1);
	cr_assert_eq(value(buf,
	    "porter_config_last_reload_success_timestamp_seconds"),
	    (double)(T0 + 9));
	cr_assert_eq(value(buf, "porter_draining"), 0);
	sb_master_draining(1);
	render(buf, sizeof(buf));
	cr_assert_eq(value(buf, "porter_draining"), 1);
}

Test(metrics, fnv1a_64)
{
	char path[] = "/tmp/porter-test-metrics-XXXXXX", big[10000];
	uint64_t h;
	int fd;
	size_t i;

	/* The published FNV-1a 64 test vectors. */
	cr_assert_eq(metrics_hash(METRICS_FNV_BASIS, "", 0),
	    UINT64_C(0xcbf29ce484222325));
	cr_assert_eq(metrics_hash(METRICS_FNV_BASIS, "a", 1),
	    UINT64_C(0xaf63dc4c8601ec8c));
	cr_assert_eq(metrics_hash(METRICS_FNV_BASIS, "foobar", 6),
	    UINT64_C(0x85944171f73967e8));
	/* Incremental: chunks hash as the whole. */
	cr_assert_eq(metrics_hash(metrics_hash(METRICS_FNV_BASIS, "foo", 3),
	    "bar", 3), UINT64_C(0x85944171f73967e8));

	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 3);
	cr_assert_neq(fd = mkstemp(path), -1);
	cr_assert_eq(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	close(fd);
	cr_assert_eq(metrics_hash_file(path, &h), 0);
	cr_assert_eq(h, metrics_hash(METRICS_FNV_BASIS, big, sizeof(big)));
	unlink(path);
	errno = 0;
	cr_assert_eq(metrics_hash_file(path, &h), -1);
	cr_assert_eq(errno, ENOENT);
}
