/* config_compat_print.c - `mpsd --convert-config`: a translated mps.config printed as mps.conf.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config_compat.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
print_value(FILE *out, const char *v)
{
    size_t n = strlen(v);
    /* As conf.c reads a value: a '#' or ';' after a blank (the one after '=' too) starts a
     * comment, blanks around it are trimmed, a leading '"' starts a quoted value. */
    bool quote = n > 0 && (v[0] == '"' || v[0] == '#' || v[0] == ';' || conf_is_blank(v[0]) ||
                           conf_is_blank(v[n - 1]));
    for (size_t i = 1; i < n && !quote; i++)
        if ((v[i] == '#' || v[i] == ';') && conf_is_blank(v[i - 1]))
            quote = true;
    if (!quote) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

void
compat_print(FILE *out, const struct compat_result *r)
{
    fprintf(out, "# mps.conf converted by mpsd --convert-config from %s\n", r->cf.path);
    fprintf(out, "# (the mapping: mps.conf(5), THE REFERENCE MPS'S mps.config)\n");
    for (size_t i = 0; i < r->nwarn; i++)
        fprintf(out, "# warning: %s\n", r->warnings[i]);
    for (size_t i = 0; i < r->cf.nsec; i++) {
        const struct conf_section *s = &r->cf.sec[i];
        if (s->arg)
            fprintf(out, "\n[%s %s]\n", s->name, s->arg);
        else
            fprintf(out, "\n[%s]\n", s->name);
        if (s->nkv == 0 && s->arg)
            fprintf(out, "# the reference always runs this service: its default listener\n");
        for (size_t j = 0; j < s->nkv; j++) {
            for (size_t k = 0; k < r->nnotes; k++)
                if (r->notes[k].sec == i && r->notes[k].kv == j)
                    fprintf(out, "# %s\n", r->notes[k].text);
            fprintf(out, "%s =%s", s->kv[j].key, *s->kv[j].value ? " " : "");
            print_value(out, s->kv[j].value);
            fputc('\n', out);
        }
    }
}

void
compat_dir_of(const char *path, char *dir, size_t len)
{
    char given[PATH_MAX] = ".";
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (slash)
        snprintf(given, sizeof(given), "%.*s", (int)(slash == path ? 1 : slash - path), path);
    /* Absolute, so that the paths built from it stay right whatever directory mpsd is in. */
    char real[PATH_MAX];
    snprintf(dir, len, "%s", realpath(given, real) ? real : given);
}

int
compat_convert(const char *path, FILE *out, FILE *errf)
{
    struct conf_file raw;
    struct compat_result r;
    char err[1024];

    if (conf_parse_file_loose(path, &raw, err, sizeof(err)) < 0) {
        fprintf(errf, "mpsd: %s\n", err);
        return 1;
    }
    if (!compat_is_reference(path, &raw)) {
        fprintf(errf,
                "mpsd: %s is not an Intel reference mps.config (no [Network], [Logger], "
                "[Notification_Authentication] or [Filtering] section, no reference key "
                "outside a section, and not named mps.config)\n",
                path);
        conf_free(&raw);
        return 1;
    }
    char dir[PATH_MAX];
    compat_dir_of(path, dir, sizeof(dir));
    int rc = compat_translate(&raw, dir, &r, err, sizeof(err));
    conf_free(&raw);
    if (rc < 0) {
        fprintf(errf, "mpsd: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < r.nwarn; i++)
        fprintf(errf, "mpsd: warning: %s\n", r.warnings[i]);
    compat_print(out, &r);
    compat_result_free(&r);
    return 0;
}
