/* notify_list.c - the NotificationList file: read it, and rewrite it for run-time changes.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Seed format: one http(s)://host:port/path per line; '#' starts a comment line; blank lines
 * are allowed. At most 8 entries are used; invalid lines and the entries past the 8th are
 * logged with file:line and skipped, duplicates too. */
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

static bool
listed(const char *url, const char *const *urls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(urls[i], url) == 0)
            return true;
    return false;
}

int
ns_list_write(const char *path, const char *const *urls, size_t n, char *err, size_t err_len)
{
    char *tmp = NULL, *line = NULL, *copy;
    bool written[NS_MAX_SUBSCRIBERS] = {false};
    size_t cap = 0;
    FILE *in, *out = NULL;
    int fd;

    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        snprintf(err, err_len, "out of memory");
        return -EIO;
    }
    out = fopen(tmp, "w");
    if (!out)
        goto fail;
    in = fopen(path, "r"); /* a missing file is made from scratch */
    while (in && getline(&line, &cap, in) >= 0) {
        copy = strdup(line);
        if (!copy) {
            fclose(in);
            goto fail;
        }
        char *s = trim(copy);
        bool keep = !*s || *s == '#';
        for (size_t i = 0; !keep && i < n; i++) {
            if (strcmp(urls[i], s) == 0 && !written[i]) {
                keep = written[i] = true;
            }
        }
        /* An invalid line stays as the admin wrote it (it is logged at each read); a valid
         * entry that is no longer subscribed goes. */
        const char *why;
        if (!keep && !ns_url_valid(s, &why))
            keep = true;
        free(copy);
        if (keep && fputs(line, out) == EOF) {
            fclose(in);
            goto fail;
        }
        if (keep && line[strlen(line) - 1] != '\n' && fputc('\n', out) == EOF) {
            fclose(in);
            goto fail;
        }
    }
    if (in)
        fclose(in);
    for (size_t i = 0; i < n; i++)
        if (!written[i] && !listed(urls[i], urls, i) && fprintf(out, "%s\n", urls[i]) < 0)
            goto fail;
    if (fflush(out) == EOF)
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
    free(line);
    free(tmp);
    return 0;
fail:
    snprintf(err, err_len, "NotificationList %s: %s", path, strerror(errno ? errno : EIO));
    if (out)
        fclose(out);
    unlink(tmp);
    free(line);
    free(tmp);
    return -EIO;
}
