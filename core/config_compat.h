/* config_compat.h - the Intel reference MPS's mps.config, read as mps.conf.
 * SPDX-License-Identifier: Apache-2.0
 *
 * An admin who runs the reference MPS points `mpsd -c` at its mps.config (seed 002 Table 2,
 * seed 003 §6.1). This translation unit recognises that format and turns it into mpsd's own
 * sections in memory ([core], the two realms, [module socks5], [module http_proxy],
 * [module admin_soap], [module notify_soap]); the normal loader (config.c) then checks the
 * result as it checks any mps.conf. Every translated key keeps the line it came from, so the
 * loader's errors still point into mps.config. The mapping is written down in mps.conf(5),
 * section "THE REFERENCE MPS'S mps.config", and in docs/migrating.md. */
#ifndef MPSD_CONFIG_COMPAT_H
#define MPSD_CONFIG_COMPAT_H

#include "conf.h"

#include <stdbool.h>
#include <stdio.h>

/* Where one translated key came from, for `mpsd --convert-config`'s comments. */
struct compat_note {
    size_t sec, kv; /* indexes into compat_result.cf */
    char *text;     /* "from mps.config:12 SocksListenPort = 1080", or why it was added */
};

struct compat_result {
    struct conf_file cf; /* mpsd's sections; cf.path is the mps.config path */
    char **warnings;     /* "file:line: message": unsupported keys, ignored sections, ... */
    size_t nwarn;
    struct compat_note *notes;
    size_t nnotes;
};

/* Is raw (path read with conf_parse_file_loose) the reference format? Yes when the file is
 * named mps.config (any case), when it has one of the reference's own sections ([Network],
 * [Logger], [Notification_Authentication], [Filtering]), or when it has keys outside any
 * section and one of them is a reference key (the sectionless layout). A file with mpsd's
 * [core] or a [module NAME] section is never the reference format. */
bool compat_is_reference(const char *path, const struct conf_file *raw);

/* Translate raw into out->cf. dir is the directory of mps.config, where the reference keeps
 * Mps_dynamic.config, NotificationList.config and AuthorizedServersList.config (found with
 * any case of their names); NULL reads no other file (a configuration given as text). 0, or -1
 * with err = "file:line: message" (out is then empty). Unsupported keys are warnings in out,
 * not errors. */
int compat_translate(const struct conf_file *raw, const char *dir, struct compat_result *out,
                     char *err, size_t errlen);
void compat_result_free(struct compat_result *r);

/* Write r as an mps.conf: a comment line per key saying where it came from, the warnings as
 * comments at the top. */
void compat_print(FILE *out, const struct compat_result *r);

/* The directory of path (".", when it has no '/'), made absolute when it exists. */
void compat_dir_of(const char *path, char *dir, size_t len);

/* `mpsd --convert-config PATH`: the equivalent mps.conf on out, warnings on err. 0 or 1. */
int compat_convert(const char *path, FILE *out, FILE *err);

#endif
