#include "alloc_hooks.h"

#include <stdatomic.h>
#include <stdint.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);

static atomic_long count, fail_at, live, failures;
static atomic_size_t largest;

#define MAX_SITES 4096
static void *sites[MAX_SITES];
static atomic_int n_sites, recording;

void alloc_hooks_reset(long n)
{
    atomic_store(&count, 0);
    atomic_store(&live, 0);
    atomic_store(&failures, 0);
    atomic_store(&largest, 0);
    atomic_store(&fail_at, n);
}

void alloc_hooks_stop_failing(void) { atomic_store(&fail_at, 0); }
long alloc_hooks_fail_at(void) { return atomic_load(&fail_at); }
long alloc_hooks_count(void) { return atomic_load(&count); }
long alloc_hooks_failures(void) { return atomic_load(&failures); }
long alloc_hooks_live(void) { return atomic_load(&live); }
size_t alloc_hooks_largest(void) { return atomic_load(&largest); }
void alloc_hooks_record_sites(int on) { atomic_store(&recording, on); }
int alloc_hooks_n_sites(void) { return atomic_load(&n_sites); }

static void note_site(void *site)
{
    int n = atomic_load(&n_sites);
    for (int i = 0; i < n; i++)
        if (sites[i] == site) return;
    if (n < MAX_SITES) sites[atomic_fetch_add(&n_sites, 1)] = site;
}

/* Count one request of `size` bytes from `site`; 1 when it must fail. */
static int must_fail(void *site, size_t size)
{
    if (atomic_load(&recording)) note_site(site);
    size_t seen = atomic_load(&largest);
    while (size > seen && !atomic_compare_exchange_weak(&largest, &seen, size)) {
    }
    long n = atomic_fetch_add(&count, 1) + 1;
    if (n != atomic_load(&fail_at)) return 0;
    atomic_fetch_add(&failures, 1);
    return 1;
}

void *__wrap_malloc(size_t size)
{
    if (must_fail(__builtin_return_address(0), size)) return NULL;
    void *p = __real_malloc(size);
    if (p) atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (must_fail(__builtin_return_address(0), size && n > SIZE_MAX / size ? SIZE_MAX : n * size))
        return NULL;
    void *p = __real_calloc(n, size);
    if (p) atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_realloc(void *old, size_t size)
{
    if (must_fail(__builtin_return_address(0), size)) return NULL;
    void *p = __real_realloc(old, size);
    if (p && !old) atomic_fetch_add(&live, 1);
    return p;
}

void __wrap_free(void *p)
{
    if (p) atomic_fetch_sub(&live, 1);
    __real_free(p);
}
