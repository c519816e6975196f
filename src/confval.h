/*
 * confval.h - typed, checked reads of libconfig settings with file:line
 * errors, for conf.c. Private to the configuration code.
 *
 * Every function that takes a ctx returns 0, or -1 with ctx->err filled
 * with "file:line: message" naming the key, so a caller can simply
 * return -1 up the stack. Stand-alone: needs only libc and libconfig.
 */
#ifndef PORTER_CONFVAL_H
#define PORTER_CONFVAL_H

#include <stddef.h>
#include <libconfig.h>

/* One configuration file being read. */
struct conf_ctx {
	const char	*file;		/* as the caller spelled it */
	char		*dir;		/* absolute directory of the file */
	char		*err;
	size_t		 errlen;
};

enum conf_numtype {
	CONF_NUM_INT,
	CONF_NUM_LONG,
	CONF_NUM_INT64
};

/* An integer key stored straight into a struct (struct conf) at off. */
struct conf_num {
	const char		*name;
	size_t			 off;
	enum conf_numtype	 type;
	long long		 min;
	long long		 max;
};

/* Checks, and may rewrite in place, one string; see confval_strv(). */
typedef int (*conf_check_fn)(struct conf_ctx *, const config_setting_t *,
    char *);

/* errors */
int	 confval_errat(struct conf_ctx *, const char *, unsigned int,
	    const char *, ...) __attribute__((format(printf, 4, 5)));
int	 confval_err(struct conf_ctx *, const config_setting_t *,
	    const char *, ...) __attribute__((format(printf, 3, 4)));
int	 confval_oom(struct conf_ctx *);
unsigned int confval_line(struct conf_ctx *, const config_setting_t *);

/* paths */
int	 confval_abspath(struct conf_ctx *, const char *, char **);
int	 confval_path(struct conf_ctx *, const config_setting_t *,
	    const char *, char **);

/* the file itself, before and after libconfig reads it */
int	 confval_open(struct conf_ctx *, const char *);
int	 confval_scan(struct conf_ctx *, const char *, int);

/* values */
int	 confval_keys(struct conf_ctx *, const config_setting_t *,
	    const char *const *, const char *);
int	 confval_group(struct conf_ctx *, const config_setting_t *);
int	 confval_int(struct conf_ctx *, const config_setting_t *, long long,
	    long long, long long *);
int	 confval_nums(struct conf_ctx *, const config_setting_t *,
	    const struct conf_num *, void *);
int	 confval_bool(struct conf_ctx *, const config_setting_t *, int *);
int	 confval_string(struct conf_ctx *, const config_setting_t *,
	    const char **);
int	 confval_strdup(struct conf_ctx *, const config_setting_t *, char **);
int	 confval_strv_default(struct conf_ctx *, const char *const *,
	    char ***, size_t *);
void	 confval_strv_free(char **, size_t);
int	 confval_strv(struct conf_ctx *, const config_setting_t *,
	    conf_check_fn, char ***, size_t *);

/* conf_status.c: the "status" and "health" groups (after 'listen'). */
struct conf;
int	 conf_status_load(struct conf_ctx *, const config_setting_t *,
	    struct conf *);
void	 conf_status_free(struct conf *);

#endif
