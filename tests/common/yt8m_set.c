/* yt8m_set: see yt8m_set.h. */
#include "tests/common/yt8m_set.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "data/synth.h"
#include "tests/common/scratch.h"

int lp_test_yt8m_setup(const char *tag, const lp_test_yt8m_set *set) {
    if (lp_test_scratch_make(tag) != 0) return -1;
    char frame[64], video[64];
    snprintf(frame, sizeof frame, "rgb:%d,audio:%d", set->rgb, set->audio);
    snprintf(video, sizeof video, "mean_rgb:%d,mean_audio:%d", set->rgb, set->audio);
    lp_synth_config sc;
    lp_synth_config_default(&sc, LP_TEST_YT8M_CLASSES, set->seed);
    sc.frames_min = 6;
    sc.frames_max = set->frames_max;
    sc.labels_max = 2;
    if (lp_yt8m_features_parse(&sc.frame, frame) != LP_OK) return -1;
    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    o.out_dir = lp_test_scratch_path("data");
    o.videos = (uint64_t)set->videos;
    if (lp_yt8m_features_parse(&o.yt8m.video, video) != LP_OK) return -1;
    if (lp_synth_write(&sc, &o) != LP_OK) {
        fprintf(stderr, "synth: %s\n", lp_last_error());
        return -1;
    }
    return 0;
}

void lp_test_yt8m_cfg(lp_kv *kv, const lp_test_yt8m_set *set, int splits, int epochs, int seed) {
    lp_kv_init(kv);
    assert_int_equal(lp_kv_set(kv, "data.train", lp_test_scratch_path("data/train*.tfrecord")), LP_OK);
    if (splits & LP_TEST_YT8M_VALID)
        assert_int_equal(lp_kv_set(kv, "data.valid", lp_test_scratch_path("data/validate*.tfrecord")), LP_OK);
    if (splits & LP_TEST_YT8M_TEST)
        assert_int_equal(lp_kv_set(kv, "data.test", lp_test_scratch_path("data/test*.tfrecord")), LP_OK);
    assert_int_equal(lp_kv_setf(kv, "data.frame_features", "rgb:%d,audio:%d", set->rgb, set->audio), LP_OK);
    assert_int_equal(lp_kv_set_int(kv, "data.classes", LP_TEST_YT8M_CLASSES), LP_OK);
    assert_int_equal(lp_kv_set_int(kv, "data.shuffle_buffer", set->shuffle_buffer), LP_OK);
    assert_int_equal(lp_kv_set_int(kv, "train.epochs", epochs), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.batch", "16"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.lr", "0.01"), LP_OK);
    assert_int_equal(lp_kv_set_int(kv, "train.seed", seed), LP_OK);
}
