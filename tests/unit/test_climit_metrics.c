/*
 * test_climit_metrics.c - the client-limit counters as Prometheus text:
 * every family and label set, a buffer too small, and (with Debian's
 * prometheus package) promtool's own check of the output.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/climit.h"

static void
fill(struct limit_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->rejected[LIMIT_R_RATE][0] = 7;
	st->rejected[LIMIT_R_RATE][1] = 11;
	st->rejected[LIMIT_R_CONNECTIONS][0] = 2;
	st->rejected[LIMIT_R_BAN][1] = 3;
	st->bans[LIMIT_C_PROBE] = 4;
	st->bans[LIMIT_C_IGNORED] = 5;
	st->bans[LIMIT_C_MANUAL] = 6;
	st->bans_active = 9;
	st->entries = 123;
	st->capacity = 65536;
	st->ban_capacity = 4096;
	st->evictions = 17;
	st->untracked = 1;
	st->bans_replaced = 8;
	st->shared_keys = 2;
}

Test(climit_metrics, every_family_and_label)
{
	char buf[CLIMIT_METRICS_SIZE];
	struct limit_stats st;
	ssize_t n;

	fill(&st);
	n = climit_metrics_render(buf, sizeof(buf), &st);
	cr_assert_gt(n, 0);
	cr_assert_eq((size_t)n, strlen(buf));
	cr_assert_not_null(strstr(buf, "porter_client_rejected_total"
	    "{reason=\"rate\",mode=\"enforce\"} 7\n"));
	cr_assert_not_null(strstr(buf, "porter_client_rejected_total"
	    "{reason=\"rate\",mode=\"dry_run\"} 11\n"));
	cr_assert_not_null(strstr(buf, "porter_client_rejected_total"
	    "{reason=\"connections\",mode=\"enforce\"} 2\n"));
	cr_assert_not_null(strstr(buf, "porter_client_rejected_total"
	    "{reason=\"ban\",mode=\"dry_run\"} 3\n"));
	cr_assert_not_null(strstr(buf,
	    "porter_client_bans_total{cause=\"ignored_429\"} 5\n"));
	cr_assert_not_null(strstr(buf, "porter_client_bans_active 9\n"));
	cr_assert_not_null(strstr(buf,
	    "porter_client_table_entries{table=\"clients\"} 123\n"));
	cr_assert_not_null(strstr(buf,
	    "porter_client_table_capacity{table=\"bans\"} 4096\n"));
	cr_assert_not_null(strstr(buf,
	    "porter_client_table_evictions_total 17\n"));
	cr_assert_not_null(strstr(buf, "porter_client_untracked_total 1\n"));
	cr_assert_not_null(strstr(buf, "porter_client_shared_keys 2\n"));
}

Test(climit_metrics, too_small_is_enobufs)
{
	char buf[64];
	struct limit_stats st;

	fill(&st);
	errno = 0;
	cr_assert_eq(climit_metrics_render(buf, sizeof(buf), &st), -1);
	cr_assert_eq(errno, ENOBUFS);
	cr_assert_lt(strlen(buf), sizeof(buf));
}

Test(climit_metrics, widest_numbers_fit)
{
	char buf[CLIMIT_METRICS_SIZE];
	struct limit_stats st;

	memset(&st, 0xff, sizeof(st));
	cr_assert_gt(climit_metrics_render(buf, sizeof(buf), &st), 0);
}

Test(climit_metrics, passes_promtool)
{
	char buf[CLIMIT_METRICS_SIZE], path[] = "/tmp/climit-metrics-XXXXXX";
	char cmd[256];
	struct limit_stats st;
	ssize_t n;
	int fd, rc;

	if (access("/usr/bin/promtool", X_OK) != 0)
		cr_skip_test("promtool missing (Debian package prometheus): "
		    "not checked");
	fill(&st);
	n = climit_metrics_render(buf, sizeof(buf), &st);
	cr_assert_gt(n, 0);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, (size_t)n), n);
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < '%s' "
	    "2>&1", path);
	rc = system(cmd);
	unlink(path);
	cr_assert_eq(rc, 0, "promtool check metrics failed (%d)", rc);
}
