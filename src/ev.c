/*
 * ev.c - epoll event loop; see ev.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"

struct ev_timer {
	struct ev_timer	*next;
	long		 id;
	uint64_t	 when;
	ev_timer_cb	*cb;
	void		*arg;
};

struct ev_loop {
	int		 epfd;
	int		 maxevents;
	int		 stop;
	int		 busy;		/* poll, do not sleep, next turn */
	uint64_t	 now;
	time_t		 time;		/* the time of day, with now */
	long		 next_id;
	struct ev_timer	*timers;	/* sorted by when */
	ev_hook_cb	*hook;
	void		*hook_arg;
	struct epoll_event *events;
};

uint64_t
ev_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ev_loop *
ev_create(int maxevents)
{
	struct ev_loop *loop;

	if ((loop = calloc(1, sizeof(*loop))) == NULL)
		return NULL;
	loop->maxevents = maxevents > 0 ? maxevents : 256;
	if ((loop->events = calloc(loop->maxevents, sizeof(*loop->events))) == NULL)
		goto fail;
	if ((loop->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		goto fail;
	loop->now = ev_clock_ms();
	loop->time = time(NULL);
	loop->next_id = 1;
	return loop;
fail:
	free(loop->events);
	free(loop);
	return NULL;
}

void
ev_free(struct ev_loop *loop)
{
	struct ev_timer *t, *next;

	if (loop == NULL)
		return;
	for (t = loop->timers; t != NULL; t = next) {
		next = t->next;
		free(t);
	}
	close(loop->epfd);
	free(loop->events);
	free(loop);
}

int
ev_add(struct ev_loop *loop, struct ev_io *io, int fd, uint32_t events,
    ev_io_cb *cb)
{
	struct epoll_event ee;

	io->fd = fd;
	io->events = events;
	io->cb = cb;
	ee.events = events;
	ee.data.ptr = io;
	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee);
}

int
ev_mod(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct epoll_event ee;

	io->events = events;
	ee.events = events;
	ee.data.ptr = io;
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ee);
}

int
ev_del(struct ev_loop *loop, struct ev_io *io)
{
	struct epoll_event ee = { 0 };

	return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, &ee);
}

long
ev_timer_add(struct ev_loop *loop, uint64_t after_ms, ev_timer_cb *cb,
    void *arg)
{
	struct ev_timer *t, **pp;

	if ((t = malloc(sizeof(*t))) == NULL)
		return -1;
	t->id = loop->next_id++;
	t->when = ev_clock_ms() + after_ms;
	t->cb = cb;
	t->arg = arg;
	for (pp = &loop->timers; *pp != NULL && (*pp)->when <= t->when;
	    pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	return t->id;
}

void
ev_timer_del(struct ev_loop *loop, long id)
{
	struct ev_timer *t, **pp;

	for (pp = &loop->timers; (t = *pp) != NULL; pp = &t->next) {
		if (t->id == id) {
			*pp = t->next;
			free(t);
			return;
		}
	}
}

void
ev_set_hook(struct ev_loop *loop, ev_hook_cb *cb, void *arg)
{
	loop->hook = cb;
	loop->hook_arg = arg;
}

void
ev_busy(struct ev_loop *loop)
{
	loop->busy = 1;
}

uint64_t
ev_now(struct ev_loop *loop)
{
	return loop->now;
}

time_t
ev_time(struct ev_loop *loop)
{
	return loop->time;
}

void
ev_stop(struct ev_loop *loop)
{
	loop->stop = 1;
}

/* Fire due timers. A callback may add or delete timers, so restart from the head each time. */
static void
ev_run_timers(struct ev_loop *loop)
{
	struct ev_timer *t;

	while ((t = loop->timers) != NULL && t->when <= loop->now) {
		loop->timers = t->next;
		t->cb(loop, t->arg);
		free(t);
	}
}

int
ev_run(struct ev_loop *loop)
{
	struct ev_io *io;
	int i, n, timeout;

	loop->stop = 0;
	while (!loop->stop) {
		timeout = -1;
		if (loop->timers != NULL) {
			uint64_t now = ev_clock_ms();

			timeout = loop->timers->when > now ?
			    (int)(loop->timers->when - now) : 0;
		}
		if (loop->busy)
			timeout = 0;
		loop->busy = 0;
		n = epoll_wait(loop->epfd, loop->events, loop->maxevents, timeout);
		if (n == -1 && errno != EINTR)
			return -1;
		loop->now = ev_clock_ms();
		loop->time = time(NULL);
		for (i = 0; i < n; i++) {
			io = loop->events[i].data.ptr;
			io->cb(loop, io, loop->events[i].events);
		}
		ev_run_timers(loop);
		if (loop->hook != NULL)
			loop->hook(loop, loop->hook_arg);
	}
	return 0;
}
