/* fuzz_conf.c - libFuzzer target: mps.conf parser, typed value parsers and [core]/realm checks,
 * and the reference MPS's mps.config: the loose parser, the translation, and the printed
 * mps.conf, which must parse back to the same keys and values.
 * SPDX-License-Identifier: Apache-2.0
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -pthread -Iinclude -Icore
 *        tests/fuzz/fuzz_conf.c core/conf.c core/config.c core/config_compat.c
 *        core/config_compat_print.c core/log.c
 *        core/listen_conf.c core/netaddr.c */
#include "conf.h"
#include "config.h"
#include "config_compat.h"
#include "log.h"

#include <stdio.h>
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

/* The translation of text, printed as --convert-config prints it, parses back (strictly) to
 * the same sections, keys and values: the printer quotes what needs quoting. */
static void
fuzz_compat(const char *text)
{
    char err[256];
    struct conf_file raw, back;
    struct compat_result r;

    if (conf_parse_string_loose("mps.config", text, &raw, err, sizeof(err)) < 0)
        return;
    compat_is_reference("mps.config", &raw);
    int rc = compat_translate(&raw, NULL, &r, err, sizeof(err));
    conf_free(&raw);
    if (rc < 0)
        return;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f) {
        compat_result_free(&r);
        return;
    }
    compat_print(f, &r);
    fclose(f);
    if (conf_parse_string("converted.conf", out, &back, err, sizeof(err)) < 0) {
        fprintf(stderr, "printed mps.conf does not parse: %s\n%s", err, out);
        abort();
    }
    if (back.nsec != r.cf.nsec)
        abort();
    for (size_t i = 0; i < back.nsec; i++) {
        if (back.sec[i].nkv != r.cf.sec[i].nkv)
            abort();
        for (size_t j = 0; j < back.sec[i].nkv; j++)
            if (strcmp(back.sec[i].kv[j].key, r.cf.sec[i].kv[j].key) != 0 ||
                strcmp(back.sec[i].kv[j].value, r.cf.sec[i].kv[j].value) != 0) {
                fprintf(stderr, "round trip: '%s' became '%s'\n", r.cf.sec[i].kv[j].value,
                        back.sec[i].kv[j].value);
                abort();
            }
    }
    conf_free(&back);
    free(out);
    compat_result_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        log_set_levels(0); /* the translation's warnings are not the point here */
        quiet = true;
    }
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
    /* Named mps.config, any text is read in the reference format. */
    config_load_string("mps.config", text, &cfg, err, sizeof(err));
    config_free(&cfg);
    fuzz_compat(text);
    free(text);
    return 0;
}
