/* notify_list.c - the NotificationList file (read only: it is the admin's) and the state file
 * that keeps run-time subscriptions.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Seed format: one http(s)://host:port/path per line; '#' starts a comment line; blank lines
 * are allowed. At most 8 entries are used; invalid lines and the entries past the 8th are
 * logged with file:line and skipped, duplicates too. The state file has the same lines, and
 * "-URL" lines for NotificationList entries unsubscribed at run time. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "notify_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool
ns_url_valid(const char *url, const char **why)
{
    const char *host;

    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else {
        *why = "not an http:// or https:// URL";
        return false;
    }
    if (strlen(url) > NS_URL_MAX) {
        *why = "URL too long";
        return false;
    }
    if (!*host || *host == '/' || *host == ':') {
        *why = "URL without a host";
        return false;
    }
    for (const char *p = url; *p; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
            *why = "space or control character in the URL";
            return false;
        }
    }
    return true;
}

/* The line without surrounding blanks, in place. */
static char *
trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

void
ns_list_free(struct ns_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->urls[i]);
    list->n = 0;
}

int
ns_list_read(struct ns_inst *ns, const char *path, struct ns_list *list)
{
    char *line = NULL, *s;
    size_t cap = 0;
    unsigned lineno = 0;
    const char *why;
    FILE *f;
    int rc = 0;

    list->n = 0;
    f = fopen(path, "r");
    if (!f) {
        rc = -errno;
        NS_LOG(ns, MPS_LOG_ERROR, "NotificationList %s: %s", path, strerror(errno));
        return rc;
    }
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (!ns_url_valid(s, &why)) {
            NS_LOG(ns, MPS_LOG_WARNING, "%s:%u: %s: ignored", path, lineno, why);
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < list->n && !dup; i++)
            dup = strcmp(list->urls[i], s) == 0;
        if (dup) {
            NS_LOG(ns, MPS_LOG_WARNING, "%s:%u: %s listed twice: ignored", path, lineno, s);
            continue;
        }
        if (list->n == NS_MAX_SUBSCRIBERS) {
            NS_LOG(ns, MPS_LOG_WARNING, "%s:%u: %s ignored: at most %d subscribers", path, lineno,
                   s, NS_MAX_SUBSCRIBERS);
            continue;
        }
        list->urls[list->n] = strdup(s);
        if (!list->urls[list->n]) {
            rc = -ENOMEM;
            break;
        }
        list->n++;
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        NS_LOG(ns, MPS_LOG_ERROR, "NotificationList %s: read error", path);
    }
    free(line);
    fclose(f);
    if (rc < 0)
        ns_list_free(list);
    return rc;
}

bool
ns_list_has(const struct ns_list *list, const char *url)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->urls[i], url) == 0)
            return true;
    return false;
}

int
ns_list_add(struct ns_list *list, const char *url)
{
    if (list->n == NS_MAX_SUBSCRIBERS)
        return -ENOSPC;
    list->urls[list->n] = strdup(url);
    if (!list->urls[list->n])
        return -ENOMEM;
    list->n++;
    return 0;
}

void
ns_list_remove(struct ns_list *list, const char *url)
{
    for (size_t i = 0; i < list->n; i++) {
        if (strcmp(list->urls[i], url) == 0) {
            free(list->urls[i]);
            memmove(&list->urls[i], &list->urls[i + 1], (list->n - i - 1) * sizeof(char *));
            list->n--;
            return;
        }
    }
}

int
ns_list_copy(struct ns_list *dst, const struct ns_list *src)
{
    dst->n = 0;
    for (size_t i = 0; i < src->n; i++) {
        if (ns_list_add(dst, src->urls[i]) < 0) {
            ns_list_free(dst);
            return -ENOMEM;
        }
    }
    return 0;
}

void
ns_state_free(struct ns_state *st)
{
    ns_list_free(&st->add);
    ns_list_free(&st->del);
}

int
ns_state_read(struct ns_inst *ns, const char *path, struct ns_state *st)
{
    char *line = NULL, *s;
    size_t cap = 0;
    unsigned lineno = 0;
    const char *why;
    FILE *f;
    int rc = 0;

    st->add.n = st->del.n = 0;
    f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT) /* no run-time change was ever made */
            return 0;
        rc = -errno;
        NS_LOG(ns, MPS_LOG_ERROR, "StateFile %s: %s", path, strerror(errno));
        return rc;
    }
    while (getline(&line, &cap, f) >= 0) {
        struct ns_list *to = &st->add;

        lineno++;
        s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (*s == '-') {
            to = &st->del;
            s = trim(s + 1);
        }
        if (!ns_url_valid(s, &why)) {
            NS_LOG(ns, MPS_LOG_WARNING, "%s:%u: %s: ignored", path, lineno, why);
            continue;
        }
        if (ns_list_has(&st->add, s) || ns_list_has(&st->del, s))
            continue;
        rc = ns_list_add(to, s);
        if (rc == -ENOSPC) {
            NS_LOG(ns, MPS_LOG_WARNING, "%s:%u: more than %d entries: ignored", path, lineno,
                   NS_MAX_SUBSCRIBERS);
            rc = 0;
            continue;
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        NS_LOG(ns, MPS_LOG_ERROR, "StateFile %s: read error", path);
    }
    free(line);
    fclose(f);
    if (rc < 0)
        ns_state_free(st);
    return rc;
}

int
ns_state_write(const char *path, const struct ns_state *st, char *err, size_t err_len)
{
    char *tmp = NULL;
    FILE *out;
    int fd;

    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        snprintf(err, err_len, "out of memory");
        return -EIO;
    }
    out = fopen(tmp, "we");
    if (!out)
        goto fail;
    fprintf(out, "# notify_soap: subscribers added (URL) and NotificationList entries removed\n"
                 "# (-URL) at run time through admin_soap. Written by mpsd; applied after\n"
                 "# NotificationList at start and on SIGHUP.\n");
    for (size_t i = 0; i < st->add.n; i++)
        fprintf(out, "%s\n", st->add.urls[i]);
    for (size_t i = 0; i < st->del.n; i++)
        fprintf(out, "-%s\n", st->del.urls[i]);
    if (fflush(out) == EOF || ferror(out))
        goto fail;
    fd = fileno(out);
    if (fsync(fd) < 0)
        goto fail;
    if (fclose(out) == EOF) {
        out = NULL;
        goto fail;
    }
    out = NULL;
    if (rename(tmp, path) < 0)
        goto fail;
    free(tmp);
    return 0;
fail:
    snprintf(err, err_len, "StateFile %s: %s", path, strerror(errno ? errno : EIO));
    if (out)
        fclose(out);
    unlink(tmp);
    free(tmp);
    return -EIO;
}

int
ns_state_apply(struct ns_inst *ns, const struct ns_list *base, const struct ns_state *st,
               struct ns_list *out)
{
    const struct ns_list *parts[2] = {base, &st->add};

    out->n = 0;
    for (size_t p = 0; p < 2; p++) {
        for (size_t i = 0; i < parts[p]->n; i++) {
            const char *url = parts[p]->urls[i];
            int rc;

            if ((p == 0 && ns_list_has(&st->del, url)) || ns_list_has(out, url))
                continue;
            rc = ns_list_add(out, url);
            if (rc == -ENOSPC) {
                NS_LOG(ns, MPS_LOG_WARNING, "%s ignored: at most %d subscribers", url,
                       NS_MAX_SUBSCRIBERS);
                continue;
            }
            if (rc < 0) {
                ns_list_free(out);
                return rc;
            }
        }
    }
    return 0;
}
