/*
 * master_int.h - what the master's files share, and nobody else: the
 * master's state and the functions each file lends the others. The
 * states and transitions are described at the top of master.c.
 *
 *   master.c          start-up, the main loop and what drives it: the
 *                     signals (USR1 reopens the logs here) and the tick
 *                     that watches the workers
 *   master_ctl.c      the control socket's requests (the handlers given
 *                     to ctl.c): reload, drain, status, client tables
 *   master_proc.c     proc.c's news (the proc_ops given to proc.c): a
 *                     worker's messages, a reaped worker, a new child
 *   master_stop.c     stopping: graceful, fast, the shutdown delay
 *   master_reload.c   a reload: the file checked, a new generation, the
 *                     switch (listeners, logs, pid file), its answer
 *   master_workers.c  each generation brought up to its number of
 *                     workers, TTIN/TTOU, systemd's STATUS line; the state
 *
 * The calls run one way: master.c -> master_ctl.c -> master_proc.c ->
 * master_stop.c -> master_reload.c -> master_workers.c, which calls none
 * of the others and defines the state.
 */
#ifndef PORTER_MASTER_INT_H
#define PORTER_MASTER_INT_H

#include <stdint.h>
#include <time.h>

#include "porter.h"

struct tls_ticket_keys;

enum { MS_RUNNING, MS_RELOADING, MS_STOPPING };

struct master_state {
	struct ev_loop	*loop;
	const char	*conf_path;
	int		 state;		/* MS_* */
	int		 fast;
	int		 exit_code;
	int		 sig_fd;
	struct ev_io	 sig_io;
	struct generation cur;		/* serving */
	struct generation next;		/* starting, in MS_RELOADING */
	uint32_t	 gen_seq;	/* last generation id handed out */
	uint32_t	 reload_seq;	/* reloads started so far */
	uint64_t	 reload_start;
	int		 reload_again;	/* asked for during a reload */
	int		 reload_wait;	/* switched; older workers may accept */
	int		 resize;	/* TTIN minus TTOU during a reload */
	char		 reload_msg[512];	/* last reload's outcome */
	int		 reload_ok;
	time_t		 reload_time;	/* when it ended (wall clock), 0: none yet */
	time_t		 start_time;
	uint64_t	 start_ms;	/* ev_clock_ms() at start */
	uint64_t	 cur_hash;	/* cur's config file, metrics_hash_file() */
	uint64_t	 next_hash;
	long		 spawn_timer;
	uint64_t	 spawn_at;
	long		 stop_timer;
	long		 delay_timer;	/* health.shutdown_delay running, 0 */
	int		 drain_asked;	/* `porter -s drain` is in force */
	int		 ever_ready;	/* a worker of cur has said CHAN_READY */
	int		 ready_sent;
	char		*pid_file;
	const struct ctl_handlers *ctl;	/* master_ctl.c's, for ctl_open() */
	int		*sd_fds;	/* sockets systemd passed */
	int		 sd_nfds;
	uint64_t	 watchdog_ms;
	uint64_t	 tick_ms;
	/*
	 * Session ticket keys: a shared page made before the first fork,
	 * written only here (rotated on our tick), read by every worker of
	 * every generation, so a session resumes on any of them, across
	 * reloads. Never on disk.
	 */
	struct tls_ticket_keys *tickets;
};

/* The master's state, one per process (master_workers.c). */
extern struct master_state m;

/* master_workers.c */
/* Bring cur, and next during a reload, up to their number of workers. */
void	 master_fill(void);
/* TTIN (d 1) / TTOU (d -1); during a reload held back until its end. */
void	 master_resize(int d);
/* Apply the TTIN/TTOU held back during the reload that just ended. */
void	 master_resize_pending(void);
/* systemd's STATUS line, from the scoreboard's totals. */
void	 master_update_status(void);

/* master_reload.c */
/* HUP or `porter -s reload`: check the file, start a new generation. */
void	 master_reload(void);
/* Switch to next once every one of its workers is ready. */
void	 master_check_switch(void);
/* Answer the reload once no worker of an older generation can accept. */
void	 master_check_switched(void);
/* Undo a reload in progress: next drains, nothing else changes. */
void	 master_reload_cancel(void);
/* Undo a reload in progress, log and answer why. */
void	 master_reload_fail(const char *why);
/* The config file's hash for the metrics (metrics_hash_file()), 0: none. */
uint64_t master_conf_hash(void);
/* Start the session ticket ring afresh if conf's ticket_lifetime changed. */
void	 master_tickets(const struct conf *conf);
/* Write our pid to m.pid_file, which is dropped if that fails. */
void	 master_write_pid(void);

/* master_stop.c */
/* Stop: graceful (fast 0, workers drain) or fast (SIGTERM). */
void	 master_stop(int fast);
/* TERM or QUIT: a graceful stop, after health.shutdown_delay if set. */
void	 master_stop_graceful(void);

/* master_proc.c */
/* Reap the workers that exited; may end a reload's switch or the stop. */
void	 master_reap(void);
/* What proc.c tells the master: messages, exits, a new child. */
extern const struct proc_ops master_proc_ops;

/* master_ctl.c */
/* The control socket's handlers, given to ctl_open(). */
extern const struct ctl_handlers master_ctl;

#endif /* PORTER_MASTER_INT_H */
