// SPDX-License-Identifier: Apache-2.0
/*
 * log.c - JSON log lines (one object per line on stderr), so log tools can
 * parse them and no user-supplied string can forge a line: jansson escapes.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

static enum log_level min_level = LOG_INFO;
static enum log_format format = LOG_JSON;
static const char *const names[] = {"debug", "info", "warn", "error"};

void log_set_format(enum log_format f)
{
    format = f;
}

/* time LEVEL message key=value ...; values with spaces or quotes are
 * written as JSON strings, so a line stays one line. */
static void write_text(json_t *line)
{
    const char *k;
    json_t *v;
    fprintf(stderr, "%s %-5s %s", json_string_value(json_object_get(line, "ts")),
            json_string_value(json_object_get(line, "level")),
            json_string_value(json_object_get(line, "msg")));
    json_object_foreach(line, k, v)
    {
        if (strcmp(k, "ts") == 0 || strcmp(k, "level") == 0 || strcmp(k, "msg") == 0)
            continue;
        const char *sv = json_string_value(v);
        if (sv && sv[0] && !strpbrk(sv, " \"=\\") && !strpbrk(sv, "\n\r\t")) {
            fprintf(stderr, " %s=%s", k, sv);
            continue;
        }
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text) {
            fprintf(stderr, " %s=%s", k, text);
            free(text);
        }
    }
    fputc('\n', stderr);
}

void log_set_level(enum log_level level)
{
    min_level = level;
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_msg(enum log_level level, const char *msg, const char *fields, ...)
{
    if (level < min_level)
        return;

    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    json_t *line =
        json_pack("{s:s, s:s, s:s}", "ts", when, "level", names[level], "msg", msg ? msg : "");
    if (!line)
        return;
    if (fields) {
        va_list ap;
        json_error_t err;
        va_start(ap, fields);
        json_t *extra = json_vpack_ex(&err, 0, fields, ap);
        va_end(ap);
        if (extra) {
            json_object_update(line, extra);
            json_decref(extra);
        } else {
            json_object_set_new(line, "log_error", json_string(err.text));
        }
    }
    if (format == LOG_TEXT) {
        write_text(line);
        json_decref(line);
        return;
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (text) {
        fprintf(stderr, "%s\n", text);
        free(text);
    }
}
