/*
 * ev.h - a small epoll event loop with millisecond timers.
 *
 * Stand-alone: needs only libc. The caller embeds a struct ev_io in its
 * own object (connection, worker channel, ...) and gets it back in the
 * callback (ev_io_owner() finds the object), so there is no fd-indexed
 * table to size. Timers are few
 * (a handful per process) and kept in a list sorted by deadline;
 * per-connection timeouts are the caller's business (see conn.c).
 */
#ifndef PORTER_EV_H
#define PORTER_EV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

struct ev_loop;
struct ev_io;

typedef void	 ev_io_cb(struct ev_loop *, struct ev_io *, uint32_t events);
typedef void	 ev_timer_cb(struct ev_loop *, void *arg);
typedef void	 ev_hook_cb(struct ev_loop *, void *arg);

/*
 * No argument pointer: the callback finds the object that embeds the
 * ev_io with ev_io_owner(). One is embedded in every connection, where
 * 8 bytes more are 80 kB per 10 000 idle ones.
 */
struct ev_io {
	int		 fd;
	uint32_t	 events;	/* EPOLLIN, EPOLLOUT, EPOLLET, ... */
	ev_io_cb	*cb;
};

/* The object of type type whose member member is the ev_io io. */
#define ev_io_owner(io, type, member) \
	((type *)(void *)((char *)(io) - offsetof(type, member)))

struct ev_loop	*ev_create(int maxevents);
void		 ev_free(struct ev_loop *);

/* Return 0, or -1 with errno set by epoll_ctl(). */
int		 ev_add(struct ev_loop *, struct ev_io *, int fd,
		    uint32_t events, ev_io_cb *);
int		 ev_mod(struct ev_loop *, struct ev_io *, uint32_t events);
int		 ev_del(struct ev_loop *, struct ev_io *);

/* One-shot timer; returns an id > 0 for ev_timer_del(), or -1 (ENOMEM). */
long		 ev_timer_add(struct ev_loop *, uint64_t after_ms,
		    ev_timer_cb *, void *arg);
void		 ev_timer_del(struct ev_loop *, long id);

/* Called after each batch of events, before the loop sleeps again. */
void		 ev_set_hook(struct ev_loop *, ev_hook_cb *, void *arg);
/*
 * The caller has work left for later turns (a hook doing a job in
 * slices): the next epoll_wait() only polls, it does not sleep. Good for
 * one turn; call again each turn while work remains.
 */
void		 ev_busy(struct ev_loop *);

/* Monotonic milliseconds, and the time of day in seconds, both sampled
 * once per loop turn: every response of a turn agrees on the time. */
uint64_t	 ev_now(struct ev_loop *);
time_t		 ev_time(struct ev_loop *);
uint64_t	 ev_clock_ms(void);

/* Run until ev_stop(); returns 0, or -1 if epoll_wait() failed. */
int		 ev_run(struct ev_loop *);
void		 ev_stop(struct ev_loop *);

#endif
