/* arena: see arena.h. */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

struct lp_arena_block {
    lp_arena_block *next;
    size_t cap, off;
    unsigned char *mem; /* 64-byte aligned */
};

void lp_arena_init(lp_arena *a, size_t min_block_bytes) {
    a->head = NULL;
    a->used = 0;
    a->high_water = 0;
    a->min_block = min_block_bytes ? min_block_bytes : ((size_t)1 << 20);
}

static lp_arena_block *block_new(size_t cap) {
    lp_arena_block *b = lp_malloc(1, sizeof *b);
    if (!b) return NULL;
    b->mem = lp_aligned(cap, 1);
    if (!b->mem) {
        lp_free(b);
        return NULL;
    }
    b->cap = cap;
    b->off = 0;
    b->next = NULL;
    return b;
}

void *lp_arena_alloc(lp_arena *a, size_t n, size_t size) {
    if (size != 0 && n > (SIZE_MAX - 64) / size) {
        lp_errorf(LP_ERR_NOMEM, "arena allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t bytes = (n * size + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    lp_arena_block *b = a->head;
    if (!b || b->cap - b->off < bytes) {
        size_t cap = bytes > a->min_block ? bytes : a->min_block;
        lp_arena_block *nb = block_new(cap);
        if (!nb) return NULL;
        nb->next = a->head;
        a->head = nb;
        b = nb;
    }
    void *p = b->mem + b->off;
    b->off += bytes;
    a->used += bytes;
    if (a->used > a->high_water) a->high_water = a->used;
    return p;
}

void *lp_arena_zalloc(lp_arena *a, size_t n, size_t size) {
    void *p = lp_arena_alloc(a, n, size);
    if (p) memset(p, 0, n * size);
    return p;
}

static void blocks_free(lp_arena_block *b) {
    while (b) {
        lp_arena_block *next = b->next;
        lp_free(b->mem);
        lp_free(b);
        b = next;
    }
}

void lp_arena_reset(lp_arena *a) {
    if (a->head && a->head->next) {
        /* Several blocks were needed: replace them by one block as large as the high-water mark. */
        size_t total = a->high_water > a->min_block ? a->high_water : a->min_block;
        blocks_free(a->head);
        a->head = block_new(total); /* on failure head is NULL and the next alloc retries */
    } else if (a->head) {
        a->head->off = 0;
    }
    a->used = 0;
}

void lp_arena_free(lp_arena *a) {
    blocks_free(a->head);
    a->head = NULL;
    a->used = 0;
}

int lp_arena_blocks(const lp_arena *a) {
    int n = 0;
    for (const lp_arena_block *b = a->head; b; b = b->next) n++;
    return n;
}
