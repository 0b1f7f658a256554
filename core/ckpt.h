/* ckpt: self-describing checkpoint files (format documented in docs/FORMATS.md).
 *
 *   header   magic "LSTMPRN\x1a", format version, endianness tag, meta length, tensor count, header CRC
 *   meta     "key = value" lines (core/kv.h): model config, training state (step, epoch, rng states,
 *            data cursor), anything else a subcommand needs to continue; CRC32C
 *   table    per tensor: name, dtype, shape, absolute offset, byte count, CRC32C of the data; CRC32C
 *   data     little-endian float32, each tensor at a 64-byte aligned offset
 *
 * Saving goes through a temporary file that is fsync'ed and renamed (core/fileio.h), so an interrupted
 * save leaves the previous checkpoint intact. Loading checks everything: magic, version, endianness,
 * every CRC, every offset against the file size; each failure is a clear LP_ERR_FORMAT naming the file
 * and what is wrong, never a crash. */
#ifndef LP_CKPT_H
#define LP_CKPT_H
#include <stddef.h>
#include <stdint.h>

#include "core/kv.h"
#include "core/params.h"
#include "core/status.h"
#include "core/tensor.h"

#define LP_CKPT_VERSION 1
#define LP_CKPT_NAME_MAX 64

typedef struct {
    char name[LP_CKPT_NAME_MAX];
    int ndim;
    int dims[LP_MAX_DIMS];
    size_t numel;
    const float *data; /* borrowed when saving; points into the loaded block after loading */
} lp_ckpt_tensor;

typedef struct {
    lp_kv meta;
    lp_ckpt_tensor *t;
    int n, cap;
    void *block;        /* the loaded file (owned), NULL when building a checkpoint to save */
    size_t file_bytes;  /* size of the loaded file */
} lp_ckpt;

void lp_ckpt_init(lp_ckpt *c);
void lp_ckpt_free(lp_ckpt *c);
/* Add a tensor to save. `data` is borrowed and must stay valid until lp_ckpt_save. */
lp_status lp_ckpt_add(lp_ckpt *c, const char *name, int ndim, const int *dims, const float *data);
lp_status lp_ckpt_add_tensor(lp_ckpt *c, const char *name, const lp_tensor *t);
lp_status lp_ckpt_save(const lp_ckpt *c, const char *path);
lp_status lp_ckpt_load(lp_ckpt *c, const char *path);
/* NULL when absent. */
const lp_ckpt_tensor *lp_ckpt_find(const lp_ckpt *c, const char *name);
/* Copy the named tensor into `dst`, which must have the same shape: LP_ERR_FORMAT when absent,
 * LP_ERR_SHAPE naming both shapes otherwise. `path` is only used in messages. */
lp_status lp_ckpt_copy_to(const lp_ckpt *c, const char *name, lp_tensor *dst, const char *path);
/* Check every tensor declared in `ps` (declared, not yet finalised: nothing allocated) against the
 * checkpoint's tensor table: LP_ERR_FORMAT naming the tensor when one is missing, LP_ERR_SHAPE naming
 * it and both shapes when it has another shape. Loaders call it between declaring and allocating the model, so a meta that claims a
 * huge model (model.vocab = 999999) over a small table is refused before any memory is spent on it. */
lp_status lp_ckpt_check_params(const lp_ckpt *c, const lp_params *ps, const char *path);
/* The same for a flat buffer of n floats (optimizer moments). */
lp_status lp_ckpt_copy_flat(const lp_ckpt *c, const char *name, float *dst, size_t n, const char *path);

#endif
