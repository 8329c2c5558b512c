/* SPDX-License-Identifier: MIT */
/* The Prometheus text exposition format, version 0.0.4: # HELP and # TYPE
 * lines, samples with escaped label values, histograms as cumulative
 * _bucket series plus _sum and _count. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void metrics_text_init(struct metrics_text *t)
{
    *t = (struct metrics_text){0};
}

void metrics_text_free(struct metrics_text *t)
{
    free(t->data);
    *t = (struct metrics_text){0};
}

/* Makes room for NEED more bytes plus a NUL; false (failed set) if not. */
static bool reserve(struct metrics_text *t, size_t need)
{
    if (t->failed)
        return false;
    if (t->length + need + 1 <= t->room)
        return true;
    size_t room = t->room ? t->room : 4096;
    while (room < t->length + need + 1)
        room *= 2;
    char *data = realloc(t->data, room);
    if (!data) {
        t->failed = true;
        return false;
    }
    t->data = data, t->room = room;
    return true;
}

static void append(struct metrics_text *t, const char *text, size_t len)
{
    if (!reserve(t, len))
        return;
    memcpy(t->data + t->length, text, len);
    t->length += len;
    t->data[t->length] = '\0';
}

static void appendf(struct metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void appendf(struct metrics_text *t, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        append(t, small, (size_t)n);
        return;
    }
    if (!reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->data + t->length, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->length += (size_t)n;
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void append_escaped(struct metrics_text *t, const char *text, bool quote)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            append(t, "\\\\", 2);
        else if (*p == '\n')
            append(t, "\\n", 2);
        else if (*p == '"' && quote)
            append(t, "\\\"", 2);
        else
            append(t, p, 1);
    }
}

static void append_number(struct metrics_text *t, double value)
{
    if (isnan(value))
        append(t, "NaN", 3);
    else if (isinf(value))
        append(t, value > 0 ? "+Inf" : "-Inf", 4);
    else if (value == floor(value) && fabs(value) < 9007199254740992.0)
        appendf(t, "%" PRId64, (int64_t)value);
    else
        appendf(t, "%.15g", value);
}

static const char *type_names[] = {"counter", "gauge", "histogram"};

void metrics_text_family(struct metrics_text *t, const char *name, enum metric_type type,
                         const char *help)
{
    appendf(t, "# HELP %s ", name);
    append_escaped(t, help, false);
    appendf(t, "\n# TYPE %s %s\n", name, type_names[type]);
}

static void append_labels(struct metrics_text *t, const struct metric_label *labels, size_t n)
{
    if (n == 0)
        return;
    append(t, "{", 1);
    for (size_t i = 0; i < n; i++) {
        appendf(t, "%s%s=\"", i ? "," : "", labels[i].name);
        append_escaped(t, labels[i].value, true);
        append(t, "\"", 1);
    }
    append(t, "}", 1);
}

void metrics_text_sample(struct metrics_text *t, const char *name,
                         const struct metric_label *labels, size_t n_labels, double value)
{
    append(t, name, strlen(name));
    append_labels(t, labels, n_labels);
    append(t, " ", 1);
    append_number(t, value);
    append(t, "\n", 1);
}

void metrics_text_counter(struct metrics_text *t, const char *name, const char *help,
                          uint64_t value)
{
    metrics_text_family(t, name, METRIC_COUNTER, help);
    appendf(t, "%s %" PRIu64 "\n", name, value); /* exact past 2^53 */
}

void metrics_text_gauge(struct metrics_text *t, const char *name, const char *help, double value)
{
    metrics_text_family(t, name, METRIC_GAUGE, help);
    metrics_text_sample(t, name, NULL, 0, value);
}

void metrics_text_histogram(struct metrics_text *t, const char *name, const char *help,
                            const struct metric_histogram *h)
{
    /* One pass over the counts, so the buckets, +Inf and _count agree
     * even while other threads observe. */
    uint64_t cumulative = 0;
    metrics_text_family(t, name, METRIC_HISTOGRAM, help);
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        char le[32];
        if (i < h->n_bounds)
            snprintf(le, sizeof le, "%.15g", (double)h->bounds[i] * h->scale);
        else
            snprintf(le, sizeof le, "+Inf");
        appendf(t, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, cumulative);
    }
    appendf(t, "%s_sum ", name);
    append_number(t, (double)atomic_load_explicit(&h->sum, memory_order_relaxed) * h->scale);
    appendf(t, "\n%s_count %" PRIu64 "\n", name, cumulative);
}

void metrics_text_state_set(struct metrics_text *t, const char *name, const char *help,
                            const char *label, const char *const *values, size_t n_values,
                            size_t current)
{
    metrics_text_family(t, name, METRIC_GAUGE, help);
    for (size_t i = 0; i < n_values; i++) {
        struct metric_label l = {label, values[i]};
        metrics_text_sample(t, name, &l, 1, i == current ? 1 : 0);
    }
}
