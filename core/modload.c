/* modload.c - dlopen modules and auth plugins, check their descriptor, build instances.
 * SPDX-License-Identifier: Apache-2.0 */
#include "modload.h"

#include "abi.h"
#include "conf.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* conf_apply() with this table refuses every key of the section: a module without options
 * must not silently accept (and ignore) misspelt settings. */
static const struct mps_option modload_no_options[] = {MPS_OPTIONS_END};

static const struct mps_option *
modload_options(const struct mps_module *mod)
{
    return mod->options ? mod->options : modload_no_options;
}

static int
has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Build the file name and the module name (basename minus ".so"). Both malloc'd. */
static int
modload_resolve(const char *module_path, const char *name_or_path, char **path_r, char **name_r,
                char *err, size_t errlen)
{
    const char *base;
    char *path, *name;
    size_t len;

    if (!name_or_path || !*name_or_path) {
        conf_errf(err, errlen, "empty module name");
        return -EINVAL;
    }
    if (strchr(name_or_path, '/')) {
        path = strdup(name_or_path);
    } else {
        if (!module_path || !*module_path) {
            conf_errf(err, errlen, "%s: no ModulePath to look for it in", name_or_path);
            return -EINVAL;
        }
        /* "auth_file" and "auth_file.so" both name module_path/auth_file.so. */
        const char *ext = has_suffix(name_or_path, ".so") ? "" : ".so";
        len = strlen(module_path) + strlen(name_or_path) + strlen(ext) + 2;
        path = malloc(len);
        if (path)
            snprintf(path, len, "%s/%s%s", module_path, name_or_path, ext);
    }
    if (!path) {
        conf_errf(err, errlen, "%s: out of memory", name_or_path);
        return -ENOMEM;
    }
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    len = strlen(base);
    if (has_suffix(base, ".so"))
        len -= 3;
    if (len == 0) {
        conf_errf(err, errlen, "%s: no module name in this path", path);
        free(path);
        return -EINVAL;
    }
    name = strndup(base, len);
    if (!name) {
        conf_errf(err, errlen, "%s: out of memory", path);
        free(path);
        return -ENOMEM;
    }
    *path_r = path;
    *name_r = name;
    return 0;
}

/* Check what the module says about itself. 0 or -1 with err set. */
static int
modload_check(const char *path, const char *name, const struct mps_module *mod, char *err,
              size_t errlen)
{
    uint32_t major = MPS_ABI_MAJOR_OF(mod->abi), minor = MPS_ABI_MINOR_OF(mod->abi);

    if (major != MPS_ABI_MAJOR) {
        conf_errf(err, errlen, "%s: built for module ABI %u.%u, this mpsd speaks %u.%u", path,
                    major, minor, MPS_ABI_MAJOR, MPS_ABI_MINOR);
        return -1;
    }
    if (minor > MPS_ABI_MINOR) {
        conf_errf(err, errlen, "%s: needs module ABI %u.%u, this mpsd has %u.%u: upgrade mpsd",
                    path, major, minor, MPS_ABI_MAJOR, MPS_ABI_MINOR);
        return -1;
    }
    /* The descriptor must be exactly what its minor defines: a smaller one would be read
     * past its end, a larger one was built against a different header claiming the same
     * version, and the core cannot know what the extra members mean. */
    size_t want = abi_size(ABI_MODULE, minor);
    if (mod->size < want) {
        conf_errf(err, errlen, "%s: descriptor size %u is smaller than the ABI %u.%u descriptor "
                  "(%zu)", path, mod->size, major, minor, want);
        return -1;
    }
    if (mod->size > want) {
        conf_errf(err, errlen, "%s: descriptor size %u is larger than ABI %u.%u defines (%zu): "
                  "built against a different module.h", path, mod->size, major, minor, want);
        return -1;
    }
    if (!mod->name) {
        conf_errf(err, errlen, "%s: descriptor has no name", path);
        return -1;
    }
    if (strcmp(mod->name, name) != 0) {
        conf_errf(err, errlen, "%s: descriptor name \"%s\" differs from the file name \"%s\"",
                    path, mod->name, name);
        return -1;
    }
    return 0;
}

/* Loop thread (startup and reload). On success the caller owns *dl_r (dlclose it);
 * *mod_r points into the module and lives as long as the handle. */
int
modload_open(const char *module_path, const char *name_or_path, const struct mps_module **mod_r,
             void **dl_r, char *err, size_t errlen)
{
    const struct mps_module *(*get)(void);
    const struct mps_module *mod;
    char *path = NULL, *name = NULL, *sym = NULL;
    struct stat st;
    void *dl = NULL;
    size_t len;
    int rc;

    rc = modload_resolve(module_path, name_or_path, &path, &name, err, errlen);
    if (rc < 0)
        return rc;
    /* stat first: "No such file or directory" reads better than dlerror()'s wording. */
    if (stat(path, &st) < 0) {
        rc = -errno;
        conf_errf(err, errlen, "%s: cannot load module: %s", path, strerror(errno));
        goto fail;
    }
    dlerror();
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!dl) {
        const char *e = dlerror();
        conf_errf(err, errlen, "%s: cannot load module: %s", path, e ? e : "dlopen failed");
        rc = -ENOEXEC;
        goto fail;
    }
    len = strlen("mps_module_") + strlen(name) + 1;
    sym = malloc(len);
    if (!sym) {
        conf_errf(err, errlen, "%s: out of memory", path);
        rc = -ENOMEM;
        goto fail;
    }
    snprintf(sym, len, "mps_module_%s", name);
    dlerror();
    /* POSIX-sanctioned way to turn a data pointer from dlsym into a function pointer. */
    *(void **)&get = dlsym(dl, sym);
    if (!get) {
        conf_errf(err, errlen, "%s: not an mpsd module (no symbol %s)", path, sym);
        rc = -ENOEXEC;
        goto fail;
    }
    mod = get();
    if (!mod) {
        conf_errf(err, errlen, "%s: %s() returned no descriptor", path, sym);
        rc = -ENOEXEC;
        goto fail;
    }
    if (modload_check(path, name, mod, err, errlen) < 0) {
        rc = -ENOEXEC;
        goto fail;
    }
    free(sym);
    free(name);
    free(path);
    *mod_r = mod;
    *dl_r = dl;
    return 0;

fail:
    if (dl)
        dlclose(dl);
    free(sym);
    free(name);
    free(path);
    return rc;
}

/* The option table's entries have the size of the module's minor: walk it with that stride. */
static int
import_options(const struct mps_option *raw, unsigned minor, struct mps_option **opts_r)
{
    size_t stride = abi_size(ABI_OPTION, minor), n = 0;
    const char *p = (const char *)raw;
    struct mps_option o;
    if (raw) {
        for (;; n++) {
            abi_import(ABI_OPTION, minor, &o, sizeof(o), p + n * stride);
            if (!o.name)
                break;
        }
    }
    struct mps_option *opts = calloc(n + 1, sizeof(*opts));
    if (!opts)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        abi_import(ABI_OPTION, minor, &opts[i], sizeof(opts[i]), p + i * stride);
    *opts_r = opts;
    return 0;
}

int
modload_desc_import(const struct mps_module *mod, struct modload_desc *d)
{
    memset(d, 0, sizeof(*d));
    d->minor = MPS_ABI_MINOR_OF(mod->abi);
    abi_import(ABI_MODULE, d->minor, &d->desc, sizeof(d->desc), mod);
    if (mod->options && import_options(mod->options, d->minor, &d->options) < 0)
        return -ENOMEM;
    d->desc.options = d->options; /* NULL when the module has none, as it said */
    if (d->desc.events) {
        abi_import(ABI_EVENT_OPS, d->minor, &d->events, sizeof(d->events), d->desc.events);
        d->desc.events = &d->events;
    }
    if (d->desc.auth) {
        abi_import(ABI_AUTH_OPS, d->minor, &d->auth, sizeof(d->auth), d->desc.auth);
        d->desc.auth = &d->auth;
    }
    if (d->desc.listen) {
        abi_import(ABI_LISTEN_ROLE, d->minor, &d->listen, sizeof(d->listen), d->desc.listen);
        d->desc.listen = &d->listen;
    }
    return 0;
}

void
modload_desc_free(struct modload_desc *d)
{
    free(d->options);
    d->options = NULL;
}

/* Loop thread. On success the caller owns *inst_r (modload_instance_free). */
/* The MPS_F_THREAD_UNSAFE locks, one per module descriptor (dlopen hands every instance of a
 * library the same one). Taken and released on the loop thread only, at load and unload. */
static struct {
    const struct mps_module *mod;
    pthread_mutex_t mutex;
    unsigned refs;
} serial_locks[64];

static pthread_mutex_t *
serial_lock_get(const struct mps_module *mod)
{
    size_t free_slot = SIZE_MAX;
    for (size_t i = 0; i < sizeof(serial_locks) / sizeof(serial_locks[0]); i++) {
        if (serial_locks[i].refs && serial_locks[i].mod == mod) {
            serial_locks[i].refs++;
            return &serial_locks[i].mutex;
        }
        if (!serial_locks[i].refs && free_slot == SIZE_MAX)
            free_slot = i;
    }
    if (free_slot == SIZE_MAX)
        return NULL; /* more than 64 libraries loaded: modload_instance_new refuses */
    serial_locks[free_slot].mod = mod;
    serial_locks[free_slot].refs = 1;
    pthread_mutex_init(&serial_locks[free_slot].mutex, NULL);
    return &serial_locks[free_slot].mutex;
}

static void
serial_lock_put(pthread_mutex_t *m)
{
    for (size_t i = 0; m && i < sizeof(serial_locks) / sizeof(serial_locks[0]); i++) {
        if (&serial_locks[i].mutex == m && --serial_locks[i].refs == 0) {
            pthread_mutex_destroy(m);
            serial_locks[i].mod = NULL;
        }
    }
}

int
modload_instance_new(const char *module_path, const char *name_or_path,
                     const struct conf_file *cf, const struct conf_section *sec,
                     const char *params, const char *label, const struct mps_api *api,
                     struct mps_inst **inst_r, char *err, size_t errlen)
{
    const struct mps_module *mod;
    struct mps_inst *mi;
    void *dl;
    int rc;

    rc = modload_open(module_path, name_or_path, &mod, &dl, err, errlen);
    if (rc < 0) {
        /* Name the section that asked for it: the admin edits mps.conf, not the .so. */
        if (cf && sec) {
            char why[1024];
            snprintf(why, sizeof(why), "%s", err);
            conf_errf(err, errlen, "%s:%d: [%s %s] %s", cf->path, sec->line, sec->name,
                      sec->arg ? sec->arg : "", why);
        }
        return rc;
    }
    mi = calloc(1, sizeof(*mi));
    if (!mi || modload_desc_import(mod, &mi->imported) < 0) {
        free(mi);
        dlclose(dl);
        conf_errf(err, errlen, "%s: out of memory", mod->name);
        return -ENOMEM;
    }
    mi->mod = &mi->imported.desc;
    mi->minor = mi->imported.minor;
    mi->dl = dl;
    mi->serial = serial_lock_get(mod); /* the library's own descriptor: one lock per library */
    mod = mi->mod;
    mi->name = strdup(mod->name);
    mi->label = strdup(label ? label : mod->name);
    /* calloc(0) may return NULL; ctx.data is never NULL so modules need not check it. */
    mi->ctx.data = calloc(1, mod->inst_size ? mod->inst_size : 1);
    mi->ctx.params = params ? strdup(params) : NULL;
    mi->ctx.api = api;
    mi->ctx.inst = mi;
    mi->plugin = (struct auth_plugin){mi->mod->auth, &mi->ctx, mi->mod->flags, mi->serial,
                                      mi->label};
    if (!mi->name || !mi->label || !mi->ctx.data || (params && !mi->ctx.params) || !mi->serial) {
        conf_errf(err, errlen, "%s: out of memory", mod->name);
        rc = -ENOMEM;
        goto fail;
    }
    /* A listener role: the core's directives are keys of the same section. */
    struct conf_table tables[2] = {{modload_options(mod), mi->ctx.data}};
    size_t ntables = 1;
    if (mod->listen) {
        mi->listen_table = listen_table_new(mod->listen, true);
        if (!mi->listen_table) {
            conf_errf(err, errlen, "%s: out of memory", mod->name);
            rc = -ENOMEM;
            goto fail;
        }
        tables[ntables++] = (struct conf_table){listen_table_options(mi->listen_table),
                                                &mi->listen_dirs};
    }
    if (conf_apply_tables(cf, sec, tables, ntables, err, errlen) < 0) {
        rc = -EINVAL;
        if (!conf_reporting())
            goto fail;
        /* mpsd -t: the errors are reported and the values defaulted; the caller may go on
         * checking the rest of the section (its listener directives). */
        *inst_r = mi;
        return 1;
    }
    *inst_r = mi;
    return 0;

fail:
    /* Strings conf_apply stored before failing are freed there: the data started zeroed. */
    modload_instance_free(mi);
    return rc;
}

/* Loop thread. */
int
modload_instance_init(struct mps_inst *mi)
{
    int rc = 0;

    if (mi->initialised)
        return 0;
    if (mi->mod->init)
        rc = mi->mod->init(&mi->ctx);
    if (rc == 0)
        mi->initialised = 1;
    return rc > 0 ? -rc : rc;
}

void
modload_instance_fini(struct mps_inst *mi)
{
    if (mi->initialised && mi->mod->fini)
        mi->mod->fini(&mi->ctx);
    mi->initialised = 0;
}

/* Loop thread. Takes ownership of mi (NULL is fine). The module's code stays mapped
 * (RTLD_NODELETE), so stack traces through it remain readable after this. */
void
modload_instance_free(struct mps_inst *mi)
{
    if (!mi)
        return;
    modload_instance_fini(mi);
    if (mi->ctx.data) {
        conf_free_options(modload_options(mi->mod), mi->ctx.data);
        free(mi->ctx.data);
    }
    if (mi->listen_table) {
        listen_directives_free(mi->listen_table, &mi->listen_dirs);
        listen_table_free(mi->listen_table);
    }
    modload_desc_free(&mi->imported);
    free((char *)mi->ctx.params);
    free(mi->label);
    free(mi->name);
    serial_lock_put(mi->serial);
    if (mi->dl)
        dlclose(mi->dl);
    free(mi);
}

/* Main thread, before the loop runs. Output on stdout, errors on stderr. */
int
modload_list_options(const char *module_path, const char *name_or_path)
{
    const struct mps_module *mod;
    char err[512];
    void *dl;
    uint32_t f;

    struct modload_desc d;
    if (modload_open(module_path, name_or_path, &mod, &dl, err, sizeof(err)) < 0) {
        fprintf(stderr, "mpsd: %s\n", err);
        return -1;
    }
    if (modload_desc_import(mod, &d) < 0) {
        fprintf(stderr, "mpsd: out of memory\n");
        dlclose(dl);
        return -1;
    }
    mod = &d.desc;
    f = mod->flags;
    printf("%s %s (module ABI %u.%u)\n", mod->name, mod->version ? mod->version : "?",
           MPS_ABI_MAJOR_OF(mod->abi), MPS_ABI_MINOR_OF(mod->abi));
    if (mod->description)
        printf("  %s\n", mod->description);
    printf("  flags:%s%s%s%s\n", f & MPS_F_BLOCKING ? " BLOCKING" : "",
           f & MPS_F_THREAD_UNSAFE ? " THREAD_UNSAFE" : "", f & MPS_F_ANY_LOOP ? " ANY_LOOP" : "",
           f & (MPS_F_BLOCKING | MPS_F_THREAD_UNSAFE | MPS_F_ANY_LOOP) ? "" : " none");
    printf("  roles:%s%s%s%s%s\n", mod->auth ? " auth" : "", mod->events ? " events" : "",
           mod->listen ? " listener" : "", mod->accept && !mod->listen ? " served" : "",
           !mod->auth && !mod->events && !mod->accept ? " none" : "");
    fflush(stdout);
    conf_print_options("options:", modload_options(mod));
    if (mod->listen) {
        struct listen_table *t = listen_table_new(mod->listen, true);
        if (t)
            conf_print_options("listener directives:", listen_table_options(t));
        listen_table_free(t);
    }
    fflush(stdout);
    modload_desc_free(&d);
    dlclose(dl);
    return 0;
}
