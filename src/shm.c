/*
 * shm.c - the owner of shared memory (see shm.h for the contract).
 *
 * The table of regions lives in the master's private memory. Workers
 * inherit a copy of it at fork, which is harmless: they never ask for a
 * region, and their copy only names regions they already map.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "porter.h"
#include "shm.h"

struct shm_region {
	struct shm_region *next;
	char		*name;
	size_t		 size;		/* as asked */
	size_t		 mapped;	/* rounded up to pages */
	void		*addr;
};

static struct {
	struct shm_region *regions;
} shm;

static struct shm_region *
shm_find(const char *name)
{
	struct shm_region *r;

	for (r = shm.regions; r != NULL; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

void *
shm_get(const char *name, size_t size)
{
	struct shm_region *r;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), mapped;
	void *addr;

	if (name == NULL || name[0] == '\0' || size == 0 ||
	    size > SIZE_MAX - page) {
		errno = EINVAL;
		return NULL;
	}
	if ((r = shm_find(name)) != NULL) {
		if (r->size != size) {
			errno = EEXIST;
			return NULL;
		}
		return r->addr;
	}
	mapped = (size + page - 1) / page * page;
	addr = mmap(NULL, mapped, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->name = xstrdup(name);
	r->size = size;
	r->mapped = mapped;
	r->addr = addr;
	r->next = shm.regions;
	shm.regions = r;
	return addr;
}

size_t
shm_size(const char *name)
{
	struct shm_region *r = shm_find(name);

	return r != NULL ? r->size : 0;
}
