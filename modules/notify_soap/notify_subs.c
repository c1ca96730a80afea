/* notify_subs.c - notify_soap's running subscribers: the set made the NotificationList's (and
 * StateFile's) on start and reload, and the run-time subscribe, unsubscribe and list that
 * other modules reach through notify_soap.h, each change written to StateFile first.
 * SPDX-License-Identifier: Apache-2.0 */
#include "notify_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
warn_plain(struct ns_inst *ns, const char *url)
{
    if (ns->need_auth && strncmp(url, "http://", 7) == 0)
        NS_LOG(ns, MPS_LOG_WARNING,
               "subscriber %s: plain http://, the notification password crosses the network "
               "in clear",
               url);
}

static struct ns_sub **
sub_find(struct ns_inst *ns, const char *url)
{
    for (struct ns_sub **pp = &ns->subs; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->url, url) == 0)
            return pp;
    return NULL;
}

static void
sub_retire(struct ns_inst *ns, struct ns_sub **pp)
{
    struct ns_sub *sub = *pp;

    *pp = sub->next;
    ns->nsubs--;
    ns_sub_quit(sub);
    sub->next = ns->retired;
    ns->retired = sub;
}

/* Make the running set the list's: keep the subscribers still listed (and their queues),
 * start the new ones, retire the others. */
void
ns_apply_list(struct ns_inst *ns, const struct ns_list *list)
{
    struct ns_sub *kept = NULL, **tail = &kept, **pp;
    unsigned added = 0, removed = 0;

    for (size_t i = 0; i < list->n; i++) {
        struct ns_sub *sub;
        pp = sub_find(ns, list->urls[i]);
        if (pp) {
            sub = *pp;
            *pp = sub->next;
            ns->nsubs--;
        } else {
            sub = ns_sub_start(ns, list->urls[i]);
            if (!sub)
                continue;
            warn_plain(ns, sub->url);
            added++;
        }
        sub->next = NULL;
        *tail = sub;
        tail = &sub->next;
    }
    while (ns->subs) {
        sub_retire(ns, &ns->subs);
        removed++;
    }
    ns->subs = kept;
    ns->nsubs = 0;
    for (struct ns_sub *s = kept; s; s = s->next)
        ns->nsubs++;
    NS_LOG(ns, MPS_LOG_INFO, "%zu subscriber%s (%u added, %u removed)", ns->nsubs,
           ns->nsubs == 1 ? "" : "s", added, removed);
}

/* Make next the state: written to StateFile first (when there is one), so a change that is
 * not on disk is not made either. 0 or -EIO (err set, logged). */
static int
state_commit(struct ns_inst *ns, struct ns_state *next, const char *what, const char *url,
             char *err, size_t err_len)
{
    /* Entries that change nothing are not kept: a removal of a URL NotificationList no
     * longer has, an addition it has meanwhile. */
    for (size_t i = next->del.n; i-- > 0;)
        if (!ns_list_has(&ns->base, next->del.urls[i]))
            ns_list_remove(&next->del, next->del.urls[i]);
    for (size_t i = next->add.n; i-- > 0;)
        if (ns_list_has(&ns->base, next->add.urls[i]))
            ns_list_remove(&next->add, next->add.urls[i]);
    if (*ns->state_path && ns_state_write(ns->state_path, next, err, err_len) < 0) {
        NS_LOG(ns, MPS_LOG_ERROR, "%s %s: %s", what, url, err);
        ns_state_free(next);
        return -EIO;
    }
    ns_state_free(&ns->state);
    ns->state = *next;
    return 0;
}

int
ns_subscribe(void *obj, const char *url, char *err, size_t err_len)
{
    struct ns_inst *ns = obj;
    struct ns_state next = {{.n = 0}, {.n = 0}};
    struct ns_sub *sub, **tail;
    const char *why;
    int rc;

    if (!url || !ns_url_valid(url, &why)) {
        snprintf(err, err_len, "%s", url ? why : "no URL");
        return -EINVAL;
    }
    if (sub_find(ns, url)) {
        snprintf(err, err_len, "%s is already subscribed", url);
        return -EEXIST;
    }
    if (ns->nsubs >= NS_MAX_SUBSCRIBERS) {
        snprintf(err, err_len, "at most %d subscribers", NS_MAX_SUBSCRIBERS);
        return -ENOSPC;
    }
    if (ns_list_copy(&next.add, &ns->state.add) < 0 || ns_list_copy(&next.del, &ns->state.del) < 0)
        goto nomem;
    if (ns_list_has(&next.del, url))
        ns_list_remove(&next.del, url); /* back to what NotificationList says */
    else if ((rc = ns_list_add(&next.add, url)) < 0)
        goto nomem;
    sub = ns_sub_start(ns, url);
    if (!sub) {
        ns_state_free(&next);
        snprintf(err, err_len, "cannot start a worker for %s", url);
        return -ENOMEM;
    }
    if (state_commit(ns, &next, "subscribe", url, err, err_len) < 0) {
        /* Retired like any other: joined once its thread says it has exited. */
        ns_sub_quit(sub);
        sub->next = ns->retired;
        ns->retired = sub;
        return -EIO;
    }
    warn_plain(ns, url);
    for (tail = &ns->subs; *tail; tail = &(*tail)->next)
        ;
    *tail = sub;
    ns->nsubs++;
    NS_LOG(ns, MPS_LOG_INFO, "subscribed %s (%zu subscriber%s)", url, ns->nsubs,
           ns->nsubs == 1 ? "" : "s");
    return 0;
nomem:
    ns_state_free(&next);
    snprintf(err, err_len, "out of memory");
    return -ENOMEM;
}

int
ns_unsubscribe(void *obj, const char *url, char *err, size_t err_len)
{
    struct ns_inst *ns = obj;
    struct ns_state next = {{.n = 0}, {.n = 0}};
    struct ns_sub **pp = url ? sub_find(ns, url) : NULL;

    if (!pp) {
        snprintf(err, err_len, "%s is not subscribed", url ? url : "(null)");
        return -ENOENT;
    }
    if (ns_list_copy(&next.add, &ns->state.add) < 0 ||
        ns_list_copy(&next.del, &ns->state.del) < 0) {
        ns_state_free(&next);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    if (ns_list_has(&next.add, url)) {
        ns_list_remove(&next.add, url);
    } else if (ns_list_add(&next.del, url) < 0) {
        ns_state_free(&next);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    if (state_commit(ns, &next, "unsubscribe", url, err, err_len) < 0)
        return -EIO;
    NS_LOG(ns, MPS_LOG_INFO, "unsubscribed %s (%zu subscriber%s)", url, ns->nsubs - 1,
           ns->nsubs - 1 == 1 ? "" : "s");
    sub_retire(ns, pp);
    return 0;
}

size_t
ns_list(void *obj, void (*cb)(void *arg, const struct notify_subscriber_info *sub), void *arg)
{
    struct ns_inst *ns = obj;
    struct notify_subscriber_info info;
    size_t n = 0;

    for (struct ns_sub *s = ns->subs; s; s = s->next, n++) {
        ns_sub_info(s, &info);
        cb(arg, &info);
    }
    return n;
}
