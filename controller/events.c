// SPDX-License-Identifier: Apache-2.0
/*
 * events.c - Kubernetes Events (events.k8s.io/v1) on Sandboxes, so
 * `kubectl describe sandbox` and `kubectl events` tell what kage did and
 * what refused it. Repeats are suppressed per Sandbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "kube/buf.h"
#include "kube/path.h"
#include "leader.h"
#include "log.h"
#include "utf8.h"

#define EVENT_REPEAT_MS (10u * 60 * 1000)
#define NOTE_MAX        1024 /* the API's limit on note */

/* FNV-1a: only to tell one note from the next, not for security. */
static uint64_t digest(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = a; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *s = b; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void on_event_written(void *arg, const struct kube_response *resp)
{
    (void)arg;
    if (resp->err)
        log_warn("event refused", "{s:I, s:s}", "code", (json_int_t)resp->err->code, "message",
                 resp->err->message);
}

bool events_record(const struct events_source *src, struct sbx_memory *st, uint64_t now,
                   const char *ns, const char *name, const char *uid, bool warning,
                   const char *reason, const char *action, const char *note)
{
    uint64_t h = digest(reason, note);
    if (st && st->event_hash == h && now - st->event_at < EVENT_REPEAT_MS)
        return false;
    if (st) {
        st->event_hash = h;
        st->event_at = now;
    }

    char when[40], prefix[300], cut[NOTE_MAX + 1];
    leader_micro_time(when, sizeof(when));
    /* name.<nanoseconds in hex>, as client-go names Events (the events API
     * refuses a generateName ending in '.'). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(prefix, sizeof(prefix), "%s.%llx", name,
             (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
    size_t n = utf8_cut(note, NOTE_MAX);
    memcpy(cut, note, n);
    cut[n] = '\0';
    json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                           "s:{s:s, s:s, s:s, s:s, s:s}}",
                           "apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata", "name",
                           prefix, "namespace", ns, "eventTime", when, "reportingController",
                           "kage.dev/controller", "reportingInstance", src->instance, "action",
                           action, "reason", reason, "type", warning ? "Warning" : "Normal", "note",
                           cut, "regarding", "apiVersion", "kage.dev/v1alpha1", "kind", "Sandbox",
                           "namespace", ns, "name", name, "uid", uid);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    struct buf path;
    bool sent = false;
    buf_init(&path, 1024);
    if (text && kube_path(&path, &KUBE_EVENTS, ns, NULL, NULL) == 0)
        sent = kube_request(src->client, KUBE_POST, path.data, text, strlen(text), on_event_written,
                            NULL, NULL) == 0;
    buf_free(&path);
    free(text);
    return sent;
}
