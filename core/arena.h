/* arena: bump allocator for activations, saved state and the tape, reset every training step.
 *
 * Memory comes in blocks that never move, so pointers stay valid until the next reset. A reset keeps
 * the memory: when a step needed several blocks, they are merged into one block of the total size, so
 * from the second step on a step allocates nothing from the system. The high-water mark tells how much
 * a step really needs (reported by the benchmarks). Every allocation is 64-byte aligned. */
#ifndef LP_ARENA_H
#define LP_ARENA_H
#include <stddef.h>

typedef struct lp_arena_block lp_arena_block;

typedef struct {
    lp_arena_block *head;  /* current block first */
    size_t used;           /* bytes handed out since the last reset */
    size_t high_water;     /* largest `used` ever seen */
    size_t min_block;      /* smallest block to request from the system */
} lp_arena;

void lp_arena_init(lp_arena *a, size_t min_block_bytes);
/* n*size bytes, 64-byte aligned, uninitialised. NULL (and LP_ERR_NOMEM recorded) on failure. */
void *lp_arena_alloc(lp_arena *a, size_t n, size_t size);
/* The same, zero-filled. */
void *lp_arena_zalloc(lp_arena *a, size_t n, size_t size);
void lp_arena_reset(lp_arena *a);
/* Number of blocks currently held (1 after a reset that followed a step). */
int lp_arena_blocks(const lp_arena *a);
void lp_arena_free(lp_arena *a);

#endif
