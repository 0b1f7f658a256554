/* fuzz_tfrecord: libFuzzer target for the TFRecord reader (data/tfrecord.h) and the YouTube-8M decoder
 * behind it. Mode bit 0 of the first byte: 0 = the rest is a raw file (framing, CRCs, gzip detection);
 * 1 = the rest is one record payload, framed here with valid CRCs so the protobuf decoder sees arbitrary
 * bytes (tests/fuzz_yt8m.c fuzzes the decoder alone, with other configurations). Every record read is
 * decoded at auto level.
 *
 * A bug: a crash, leak or sanitizer report, or an out-of-memory above `make fuzz`'s limit. Framing and
 * content errors are fine. Run with `make fuzz`; seeds in tests/fuzz/tfrecord/ (docs/FUZZING.md). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"
#include "data/tfrecord.h"
#include "data/yt8m.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    static lp_yt8m_decoder *dec;
    static lp_yt8m_video v;
    if (!dec) {
        snprintf(path, sizeof path, "/tmp/fuzz_tfrecord_%d.tfrecord", (int)getpid());
        lp_yt8m_config cfg;
        lp_yt8m_config_default(&cfg);
        if (lp_yt8m_decoder_new(&dec, &cfg) != LP_OK) return 0;
        lp_yt8m_video_init(&v);
    }
    if (size < 1) return 0;
    int framed = data[0] & 1;
    data++;
    size--;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (framed) {
        uint8_t h[12], t[4];
        lp_tfrecord_header(size, h);
        lp_tfrecord_footer(data, size, t);
        fwrite(h, 1, 12, f);
        fwrite(data, 1, size, f);
        fwrite(t, 1, 4, f);
    } else {
        fwrite(data, 1, size, f);
    }
    fclose(f);
    lp_tfrecord_reader *r;
    if (lp_tfrecord_open(&r, path) != LP_OK) {
        unlink(path);
        return 0;
    }
    const uint8_t *rec;
    size_t len;
    while (lp_tfrecord_next(r, &rec, &len) == LP_OK) (void)lp_yt8m_decode(dec, rec, len, &v);
    lp_tfrecord_close(r);
    unlink(path);
    return 0;
}
