/*
 * shm.h - shared memory regions with one owner: every region a worker
 * shares with the master (and with the other workers) is made here.
 *
 * Contract:
 *  - The master asks for a region with shm_get(name, size) before it
 *    forks the workers that use it. The region is MAP_SHARED |
 *    MAP_ANONYMOUS, zero-filled when made, and inherited by every worker
 *    forked after that; a worker never calls shm_get().
 *  - A region lives as long as the master: a reload asks again with the
 *    same name and size and gets the same region, with its contents, so
 *    counters and tables survive the generation switch (nginx keeps its
 *    shared zones across a reload the same way).
 *  - The same name with another size is an error (NULL, errno EEXIST),
 *    not a new region: workers of the old generation still use the old
 *    one, and two regions under one name would split its data. A caller
 *    that needs another size must use another name.
 *  - Names are compared with strcmp; sizes are rounded up to whole pages
 *    (the rounding is invisible: the same request gets the same region).
 *  - Helpers never log: failure is NULL with errno set (ENOMEM, EINVAL
 *    for a size of 0 or an empty name, EEXIST as above).
 */
#ifndef SHM_H
#define SHM_H

#include <stddef.h>

/* A region of at least size bytes named name; see above. Never freed. */
void	*shm_get(const char *name, size_t size);

/* The size a region was made with (as asked), 0 when there is none. */
size_t	 shm_size(const char *name);

#endif /* SHM_H */
