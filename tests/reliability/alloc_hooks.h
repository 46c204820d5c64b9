/* Link-time hooks on the library's allocator (link with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free): only the objects linked into the
 * test executable (the static library and the test) are rewritten; the shared third-party
 * libraries keep their own allocator. The hooks count allocations, make the n-th one fail, track
 * live blocks (a leak count that works without LeakSanitizer) and the largest request. */
#ifndef R2GEN_TESTS_ALLOC_HOOKS_H
#define R2GEN_TESTS_ALLOC_HOOKS_H

#include <stddef.h>

/* Zero the counters; the fail_at-th allocation from now on returns NULL (0: none fails). */
void alloc_hooks_reset(long fail_at);
/* Stop failing (counters keep going). */
void alloc_hooks_stop_failing(void);
long alloc_hooks_fail_at(void);

long alloc_hooks_count(void);        /* allocations since the reset */
long alloc_hooks_failures(void);     /* allocations made to fail since the reset */
long alloc_hooks_live(void);         /* blocks allocated minus blocks freed since the reset */
size_t alloc_hooks_largest(void);    /* the largest size requested since the reset */

/* While on, remember each distinct call site (return address); how many were seen. */
void alloc_hooks_record_sites(int on);
int alloc_hooks_n_sites(void);

#endif
