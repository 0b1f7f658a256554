/* fuzz_yt8m: libFuzzer target for the YouTube-8M decoder (data/yt8m.h) on raw protobuf bytes, i.e. one
 * record payload as lp_yt8m_decode receives it after the TFRecord framing (tests/fuzz_tfrecord.c covers
 * the framing). The first byte picks the configuration: bits 0-1 the level (auto, frame, video), bit 2
 * max_frames = 2, bit 3 id key "video_id"; the rest is the record.
 *
 * A bug: a crash, leak or sanitizer report, or a decoded video that breaks the header's contract: level
 * not frame/video, a label outside [0, classes), dim not the spec's, n_frames outside [1, total_frames]
 * or above max_frames, an id longer than id_len. Every decoded float is read, so a short buffer shows.
 * Run with `make fuzz`; seeds in tests/fuzz/yt8m/ (docs/FUZZING.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/yt8m.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lp_yt8m_decoder *dec[16];
    static lp_yt8m_config cfg[16];
    static lp_yt8m_video v; /* reused, as by the reader; all-zero is its initial state */
    if (size < 1) return 0;
    int k = data[0] & 15;
    if ((k & 3) == 3) return 0;
    if (!dec[k]) {
        lp_yt8m_config_default(&cfg[k]);
        cfg[k].level = (lp_yt8m_level)(k & 3);
        cfg[k].max_frames = k & 4 ? 2 : 0;
        if (k & 8) strcpy(cfg[k].id_key, "video_id");
        if (lp_yt8m_decoder_new(&dec[k], &cfg[k]) != LP_OK) abort();
    }
    const lp_yt8m_config *c = &cfg[k];
    if (lp_yt8m_decode(dec[k], data + 1, size - 1, &v) != LP_OK) return 0;
    volatile float sink = 0;
    for (int i = 0; i < v.n_labels; i++)
        if (v.labels[i] < 0 || v.labels[i] >= c->classes) abort();
    if (strlen(v.id) > v.id_len) abort();
    size_t nf;
    if (v.level == LP_YT8M_LEVEL_FRAME) {
        if (c->level == LP_YT8M_LEVEL_VIDEO || v.dim != c->frame.dim || v.n_frames < 1 ||
            v.n_frames > v.total_frames || (c->max_frames && v.n_frames > c->max_frames))
            abort();
        nf = (size_t)v.n_frames * (size_t)v.dim;
    } else if (v.level == LP_YT8M_LEVEL_VIDEO) {
        if (c->level == LP_YT8M_LEVEL_FRAME || v.dim != c->video.dim || v.n_frames != 0) abort();
        nf = (size_t)v.dim;
    } else {
        abort();
    }
    for (size_t i = 0; i < nf; i++) sink += v.features[i];
    (void)sink;
    return 0;
}
