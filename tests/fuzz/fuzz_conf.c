/* fuzz_conf.c - libFuzzer target: mps.conf parser, typed value parsers and [core]/realm checks.
 * SPDX-License-Identifier: Apache-2.0
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -pthread -Iinclude -Icore
 *        tests/fuzz/fuzz_conf.c core/conf.c core/config.c core/log.c */
#include "conf.h"
#include "config.h"
#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_opts {
    char *s;
    char *p;
    long i;
    int b;
    long ms;
    long port;
};

/* Every option type, one key each; "Path" is required so the missing-option path runs too. */
static const struct mps_option fuzz_options[] = {
    {.name = "Str", .type = MPS_OPT_STR, .offset = offsetof(struct fuzz_opts, s),
     .dflt = "x",
     .help = "string"},
    {.name = "Path", .type = MPS_OPT_PATH, .offset = offsetof(struct fuzz_opts, p),
     .dflt = NULL,
     .help = "path"},
    {.name = "Int", .type = MPS_OPT_INT, .offset = offsetof(struct fuzz_opts, i),
     .dflt = "0",
     .help = "int"},
    {.name = "Bool", .type = MPS_OPT_BOOL, .offset = offsetof(struct fuzz_opts, b),
     .dflt = "no",
     .help = "bool"},
    {.name = "Msec", .type = MPS_OPT_MSEC, .offset = offsetof(struct fuzz_opts, ms),
     .dflt = "1s",
     .help = "msec"},
    {.name = "Port", .type = MPS_OPT_PORT, .offset = offsetof(struct fuzz_opts, port),
     .dflt = "1",
     .help = "port"},
    MPS_OPTIONS_END,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct conf_file cf;
    struct config cfg;

    /* The parsers take C strings: an embedded NUL simply ends the text. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    if (conf_parse_string("fuzz.conf", text, &cf, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < cf.nsec; i++) {
            struct fuzz_opts fo = {0};
            const struct conf_section *sec = &cf.sec[i];
            conf_apply(&cf, sec, fuzz_options, &fo, err, sizeof(err));
            conf_free_options(fuzz_options, &fo);
            for (size_t j = 0; j < sec->nkv; j++) {
                unsigned mask;
                for (const struct mps_option *o = fuzz_options; o->name; o++)
                    conf_parse_value(o, sec->kv[j].value, &fo, err, sizeof(err));
                conf_free_options(fuzz_options, &fo);
                log_parse_levels(sec->kv[j].value, &mask);
            }
        }
        conf_free(&cf);
    }

    config_load_string("fuzz.conf", text, &cfg, err, sizeof(err));
    config_free(&cfg);
    free(text);
    return 0;
}
