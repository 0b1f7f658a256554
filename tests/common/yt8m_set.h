/* yt8m_set: the small synthetic YouTube-8M-format data set that the training, pruning and sweep tests
 * learn from (written by data/synth.h), and the run configuration that reads it.
 *
 * A set has LP_TEST_YT8M_CLASSES classes, 1..2 labels per video and 6..frames_max frames per video, with
 * the frame features "rgb:<rgb>,audio:<audio>" (and video-level mean_rgb / mean_audio of the same sizes).
 * It lives in <scratch>/data (tests/common/scratch.h) as train, validate and test shards:
 *
 *     static const lp_test_yt8m_set set = {.seed = 7, .videos = 240, .frames_max = 16, .rgb = 48,
 *                                          .audio = 16, .shuffle_buffer = 64};
 *     static int setup(void **state) { (void)state; return lp_test_yt8m_setup("train", &set); }
 *     ... lp_test_yt8m_cfg(&kv, &set, LP_TEST_YT8M_VALID, epochs, seed) ...
 *     return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown); */
#ifndef LP_TEST_YT8M_SET_H
#define LP_TEST_YT8M_SET_H
#include <stdint.h>

#include "core/kv.h"

#define LP_TEST_YT8M_CLASSES 6

typedef struct {
    uint64_t seed;      /* of the synthesis */
    int videos;         /* in all three splits together */
    int frames_max;     /* videos have 6..frames_max frames */
    int rgb, audio;     /* feature sizes */
    int shuffle_buffer; /* data.shuffle_buffer of the runs that read the set (below the training split's size) */
} lp_test_yt8m_set;

/* For a group setup: make the scratch directory (lp_test_scratch_make(tag)) and write the set into
 * <scratch>/data. 0, or -1 (with the error on stderr when the writing failed). */
int lp_test_yt8m_setup(const char *tag, const lp_test_yt8m_set *set);

/* The splits a run configuration reads besides data.train (or-ed together; 0: training data only). */
enum { LP_TEST_YT8M_VALID = 1, LP_TEST_YT8M_TEST = 2 };

/* lp_kv_init(kv), then the keys the tests' runs share, in this order: data.train, data.valid and data.test
 * (as `splits` says), data.frame_features, data.classes, data.shuffle_buffer, train.epochs, train.batch
 * = 16, train.lr = 0.01 and train.seed = seed. The caller adds the model and the rest. */
void lp_test_yt8m_cfg(lp_kv *kv, const lp_test_yt8m_set *set, int splits, int epochs, int seed);

#endif
