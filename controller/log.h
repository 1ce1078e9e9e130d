// SPDX-License-Identifier: Apache-2.0
/* log.h - structured JSON log lines on stderr, one object per line. */
#ifndef KAGE_LOG_H
#define KAGE_LOG_H

enum log_level {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
};

enum log_format {
    LOG_JSON, /* one JSON object per line (the default: for log tools) */
    LOG_TEXT, /* "time LEVEL message key=value ..." (for people) */
};

void log_set_format(enum log_format format);

/* Lines below this level are dropped; LOG_INFO unless changed. */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn" or "error". Returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);

/*
 * Writes {"ts":..., "level":..., "msg": msg, ...fields} to stderr. fields
 * is a jansson pack format for an object of extra fields (e.g.
 * "{s:s, s:i}", "name", name, "count", n), or NULL. Never fails the caller:
 * a field set that cannot be packed is replaced by a "log_error" field.
 */
void log_msg(enum log_level level, const char *msg, const char *fields, ...);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
