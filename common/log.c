/* SPDX-License-Identifier: MIT */
/* Logging for both daemons: human lines on stderr, or JSON lines on stdout.
 * Every line is written whole under the logger's lock so threads never
 * interleave. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *level_names[] = {"debug", "info", "warn", "error"};

void logger_init(struct logger *log, const char *program, enum log_format format)
{
    log->program = program;
    log->format = format;
    log->min_level = getenv("GODWIT_DEBUG") ? LOG_DEBUG : LOG_INFO;
    log->tty = isatty(STDERR_FILENO);
    pthread_mutex_init(&log->lock, NULL);
}

int log_format_parse(const char *name, enum log_format *format)
{
    if (strcmp(name, "text") == 0)
        *format = LOG_TEXT;
    else if (strcmp(name, "json") == 0)
        *format = LOG_JSON;
    else
        return -1;
    return 0;
}

/* RFC 3339 UTC timestamp with milliseconds. */
static void format_time(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* Writes OBJECT as one line on stdout; steals it. Caller holds the lock. */
static void emit_json(json_t *object)
{
    char *line = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    if (line) {
        fputs(line, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(line);
    }
}

/* On a TTY a progress line may be on screen: end it before other output. */
static void end_progress_line(struct logger *log)
{
    if (log->tty && log->format == LOG_TEXT)
        fputs("\r\033[K", stderr);
}

void log_msg(struct logger *log, enum log_level level, const char *fmt, ...)
{
    if (level < log->min_level)
        return;
    char msg[1024], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    format_time(ts, sizeof ts);

    pthread_mutex_lock(&log->lock);
    if (log->format == LOG_JSON) {
        emit_json(json_pack("{s:s,s:s,s:s}", "ts", ts, "level", level_names[level], "msg", msg));
    } else {
        end_progress_line(log);
        fprintf(stderr, "%s %s: %s%s\n", ts, log->program,
                level >= LOG_WARN ? (level == LOG_ERROR ? "error: " : "warning: ") : "", msg);
    }
    pthread_mutex_unlock(&log->lock);
}

/* "key=value key2=value2" for text mode. */
static void print_fields(FILE *out, json_t *fields)
{
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value)
    {
        char *text = json_is_string(value) ? NULL : json_dumps(value, JSON_ENCODE_ANY);
        fprintf(out, " %s=%s", key, text ? text : json_string_value(value));
        free(text);
    }
}

void log_event(struct logger *log, const char *event, json_t *fields)
{
    char ts[40];
    format_time(ts, sizeof ts);
    if (!fields)
        fields = json_object();
    pthread_mutex_lock(&log->lock);
    if (log->format == LOG_JSON) {
        json_t *object = json_pack("{s:s,s:s}", "ts", ts, "event", event);
        json_object_update(object, fields);
        json_decref(fields);
        emit_json(object);
    } else {
        end_progress_line(log);
        fprintf(stderr, "%s %s: %s", ts, log->program, event);
        print_fields(stderr, fields);
        fputc('\n', stderr);
        json_decref(fields);
    }
    pthread_mutex_unlock(&log->lock);
}

void log_progress(struct logger *log, const char *text, json_t *fields)
{
    if (log->format == LOG_JSON || !log->tty) {
        log_event(log, "progress", fields);
        return;
    }
    json_decref(fields);
    pthread_mutex_lock(&log->lock);
    fprintf(stderr, "\r\033[K%s", text);
    fflush(stderr);
    pthread_mutex_unlock(&log->lock);
}
