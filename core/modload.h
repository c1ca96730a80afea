/* modload.h - loading modules and auth plugins (dlopen), checking their ABI, instances.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_MODLOAD_H
#define MPSD_MODLOAD_H

#include "auth_plugin.h"
#include "conf.h"
#include "listen_conf.h"
#include "stream.h"

#include <mpsd/module.h>
#include <pthread.h>
#include <stdbool.h>

/* What an instance holds (inst.c records and sweeps it). */
struct inst_resources {
    struct stream_owner streams; /* accepted, served, opened or created for it */
    struct mps_timer *timers;    /* started and not stopped */
    struct inst_auth *auths;     /* console realm checks under way */
    struct inst_chan *chans;     /* chan_open calls waiting for their callback */
    struct mps_wakeup *wakeups;  /* open */
};

/* The module's descriptor and what it points to, as this core reads them: copied into the
 * current layout as far as the module's minor defines them (abi.h), the rest zero. */
struct modload_desc {
    struct mps_module desc; /* its events/auth/listen/options point into this struct */
    struct mps_event_ops events;
    struct mps_auth_ops auth;
    struct mps_listen_role listen;
    struct mps_option *options; /* NULL-terminated; NULL when the module has none */
    unsigned minor;
};

/* One configured instance of a module: a [module NAME] section or a realm's Plugin line. */
struct mps_inst {
    const struct mps_module *mod; /* &imported.desc */
    struct modload_desc imported;
    unsigned minor;     /* the ABI minor the module was built for */
    void *dl;           /* dlopen handle; the core dlcloses at the end (RTLD_NODELETE keeps
                           the code mapped for sanitizer stack traces) */
    char *name;         /* the module's name, e.g. "auth_file" */
    char *label;        /* for log lines: "auth_file" or "auth_file[AMT]" */
    struct mps_ctx ctx; /* api, inst = this, data, params */
    /* MPS_F_THREAD_UNSAFE: held around authenticate(); one per module, shared by all of its
     * instances (two realms using the same library must not call it at once either). */
    pthread_mutex_t *serial;
    struct auth_plugin plugin; /* what a realm sees of it (ops NULL: not an auth plugin) */
    int initialised;    /* init() returned 0: fini() is owed */
    struct mps_inst *next;
    const struct conf_section *sec; /* its [module NAME] section (NULL for a realm's plugin) */
    bool check_failed; /* mpsd -t: its options were wrong (reported): no check hook */
    /* The listener role: its directives as parsed, and the group the server opens. */
    struct listen_table *listen_table;
    struct listen_directives listen_dirs;
    struct listen_group *listen_group;
    bool serves_devices; /* serve(mi, "apf", NULL): its listeners carry AMT devices */
    struct inst_resources res;
};

/* Resolve name_or_path against module_path ("auth_file" -> module_path/auth_file.so; a value
 * containing '/' is used as-is), dlopen it and check the descriptor: exported symbol
 * mps_module_<basename>, ABI major equal to ours, minor not newer, size plausible, name equal
 * to the basename. On failure err holds one line naming the file and the reason. */
int modload_open(const char *module_path, const char *name_or_path,
                 const struct mps_module **mod_r, void **dl_r, char *err, size_t errlen);
/* Copy mod (checked by modload_open) into d; free with modload_desc_free. 0 or -ENOMEM. */
int modload_desc_import(const struct mps_module *mod, struct modload_desc *d);
void modload_desc_free(struct modload_desc *d);

/* Open the module, allocate its instance data, apply sec's keys through its option table
 * (sec may be NULL: defaults only), set params (NULL for non-plugins). Does not call init().
 * err: "file:line: message" for option errors, or the modload_open line. With a conf
 * reporter set (mpsd -t), option errors are reported and 1 is returned with the instance
 * (its bad values defaulted): check what else can be checked, never init it. */
int modload_instance_new(const char *module_path, const char *name_or_path,
                         const struct conf_file *cf, const struct conf_section *sec,
                         const char *params, const char *label, const struct mps_api *api,
                         struct mps_inst **inst_r, char *err, size_t errlen);
int modload_instance_init(struct mps_inst *mi);      /* calls mod->init; 0 or its -errno */
void modload_instance_fini(struct mps_inst *mi);     /* calls mod->fini if owed */
void modload_instance_free(struct mps_inst *mi);     /* fini() if owed, free options, dlclose */

/* `mpsd --list-options NAME`: print NAME's option table. 0 or -1 (message on stderr). */
int modload_list_options(const char *module_path, const char *name_or_path);

#endif
