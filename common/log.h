/* SPDX-License-Identifier: MIT */
/* Logging for both daemons: plain text lines on stderr, or one JSON object
 * per line on stdout (--log-format json) for machines to read. */
#ifndef GODWIT_LOG_H
#define GODWIT_LOG_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

enum log_format { LOG_TEXT, LOG_JSON };
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* One per process, made by main and passed to every module that logs.
 * lock serialises whole lines; the other fields are set once before any
 * thread starts. */
struct logger {
    const char *program; /* "godwit-seeder" */
    enum log_format format;
    enum log_level min_level;
    bool tty; /* stderr is a terminal: progress lines may overwrite themselves */
    pthread_mutex_t lock;
};

void logger_init(struct logger *log, const char *program, enum log_format format);
/* Parses "text" or "json"; returns -1 for anything else. */
int log_format_parse(const char *name, enum log_format *format);

/* One human sentence. In JSON mode: {"ts":..,"level":..,"msg":..}. */
void log_msg(struct logger *log, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_info(log, ...) log_msg((log), LOG_INFO, __VA_ARGS__)
#define log_warn(log, ...) log_msg((log), LOG_WARN, __VA_ARGS__)
#define log_error(log, ...) log_msg((log), LOG_ERROR, __VA_ARGS__)
#define log_debug(log, ...) log_msg((log), LOG_DEBUG, __VA_ARGS__)

/* A structured event: {"ts":..,"event":EVENT, ...FIELDS} on stdout in JSON
 * mode; in text mode "EVENT key=value ..." on stderr. Steals FIELDS. */
void log_event(struct logger *log, const char *event, json_t *fields);

/* A progress line: overwritten in place on a TTY in text mode, otherwise a
 * "progress" event. Steals FIELDS; TEXT is the human form. */
void log_progress(struct logger *log, const char *text, json_t *fields);

#endif
