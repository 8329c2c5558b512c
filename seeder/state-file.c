/* SPDX-License-Identifier: MIT */
/* Saving and loading the seeder's state file. Dirty sets and Finalize
 * answers are stored as runs of chunk indices, [first, count] pairs. */
#include "state-file.h"

#include "dirty-set.h"
#include "tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_VERSION 1

/* Appends the run [first, first + count) to RUNS. */
static int add_run(json_t *runs, uint64_t first, uint64_t count)
{
    json_t *run = json_pack("[I,I]", (json_int_t)first, (json_int_t)count);
    return run ? json_array_append_new(runs, run) : -1;
}

/* Ascending chunk indices as runs; NULL if out of memory. */
static json_t *runs_of(const uint64_t *indices, size_t n)
{
    json_t *runs = json_array();
    for (size_t i = 0; runs && i < n;) {
        size_t j = i + 1;
        while (j < n && indices[j] == indices[j - 1] + 1)
            j++;
        if (add_run(runs, indices[i], j - i) < 0) {
            json_decref(runs);
            return NULL;
        }
        i = j;
    }
    return runs;
}

static json_t *set_runs(const struct dirty_set *set)
{
    size_t n = (size_t)dirty_set_count(set);
    uint64_t *indices = malloc((n ? n : 1) * sizeof *indices);
    if (!indices)
        return NULL;
    n = dirty_set_list(set, indices, NULL, n);
    json_t *runs = runs_of(indices, n);
    free(indices);
    return runs;
}

static json_t *list_runs(const struct chunk_geometry *geo, const struct dirty_list *list)
{
    uint64_t *indices = malloc((list->count ? list->count : 1) * sizeof *indices);
    if (!indices)
        return NULL;
    for (size_t i = 0; i < list->count; i++)
        indices[i] = list->offsets[i] / geo->chunk_size;
    json_t *runs = runs_of(indices, list->count);
    free(indices);
    return runs;
}

static json_t *session_json(const struct chunk_geometry *geo, const struct session *s)
{
    json_t *o =
        json_pack("{s:I,s:I,s:b,s:b,s:o*,s:o*}", "id", (json_int_t)s->id, "generation",
                  (json_int_t)s->generation, "finalized", s->finalized, "complete", s->complete,
                  "dirty", set_runs(s->dirty), "pending", set_runs(s->pending));
    if (o && s->finalized && json_object_set_new(o, "frozen", list_runs(geo, &s->frozen)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *state_json(const struct chunk_geometry *geo, const struct seeder_state *state)
{
    json_t *sessions = json_array();
    for (size_t i = 0; sessions && i < state->n_sessions; i++)
        if (json_array_append_new(sessions, session_json(geo, state->sessions[i])) < 0) {
            json_decref(sessions);
            sessions = NULL;
        }
    return json_pack("{s:i,s:s,s:I,s:I,s:s,s:I,s:I,s:o*}", "version", STATE_VERSION, "image_id",
                     state->image_id, "size", (json_int_t)geo->size, "chunk_size",
                     (json_int_t)geo->chunk_size, "phase",
                     state->phase == TRACKER_COMPLETE ? "complete" : "frozen", "next_session",
                     (json_int_t)state->next_session, "default_session",
                     (json_int_t)state->default_session, "sessions", sessions);
}

/* fsyncs the directory holding PATH, so a rename or unlink is durable. */
static int sync_dir(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int state_file_save(const char *path, const struct chunk_geometry *geo,
                    const struct seeder_state *state)
{
    json_t *root = state_json(geo, state);
    if (!root) {
        errno = ENOMEM;
        return -1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int r = f && json_dumpf(root, f, JSON_COMPACT) == 0 && fputc('\n', f) != EOF &&
                    fflush(f) == 0 && fsync(fileno(f)) == 0
                ? 0
                : -1;
    int err = errno;
    if (f && fclose(f) != 0 && r == 0)
        r = -1, err = errno;
    json_decref(root);
    if (r == 0 && rename(tmp, path) < 0)
        r = -1, err = errno;
    if (r == 0 && sync_dir(path) < 0)
        r = -1, err = errno;
    if (r < 0)
        unlink(tmp);
    errno = err;
    return r;
}

int state_file_remove(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return -1;
    return sync_dir(path);
}

/* Marks the runs RUNS in SET; -1 if one is malformed or out of range. */
static int mark_runs(const json_t *runs, struct dirty_set *set, uint64_t chunks)
{
    size_t i;
    json_t *run;
    if (!json_is_array(runs))
        return -1;
    json_array_foreach(runs, i, run)
    {
        json_int_t first, count;
        if (json_unpack((json_t *)run, "[II]", &first, &count) < 0 || first < 0 || count < 1 ||
            (uint64_t)first + (uint64_t)count > chunks)
            return -1;
        dirty_set_mark_range(set, (uint64_t)first, (uint64_t)(first + count - 1));
    }
    return 0;
}

/* The Finalize answer from RUNS into S->frozen. */
static int load_frozen(const json_t *runs, const struct chunk_geometry *geo, struct session *s)
{
    struct dirty_set *set = dirty_set_new(geo->chunks);
    int r = set ? mark_runs(runs, set, geo->chunks) : -1;
    size_t n = set ? (size_t)dirty_set_count(set) : 0;
    s->frozen.offsets = r == 0 ? malloc((n ? n : 1) * sizeof *s->frozen.offsets) : NULL;
    if (s->frozen.offsets) {
        s->frozen.count = dirty_set_list(set, s->frozen.offsets, NULL, n);
        for (size_t i = 0; i < s->frozen.count; i++)
            s->frozen.offsets[i] = chunk_offset(geo, s->frozen.offsets[i]);
    }
    dirty_set_free(set);
    return s->frozen.offsets ? 0 : -1;
}

static struct session *load_session(const json_t *o, const struct chunk_geometry *geo)
{
    json_int_t id, generation;
    int finalized, complete;
    json_t *dirty, *pending, *frozen = NULL;
    if (json_unpack((json_t *)o, "{s:I,s:I,s:b,s:b,s:o,s:o,s?o}", "id", &id, "generation",
                    &generation, "finalized", &finalized, "complete", &complete, "dirty", &dirty,
                    "pending", &pending, "frozen", &frozen) < 0 ||
        id < 1 || generation < 0 || (finalized && !frozen))
        return NULL;
    struct session *s = session_new((uint64_t)id, geo->chunks);
    if (!s)
        return NULL;
    s->generation = (uint64_t)generation;
    s->finalized = finalized, s->complete = complete;
    if (mark_runs(dirty, s->dirty, geo->chunks) < 0 ||
        mark_runs(pending, s->pending, geo->chunks) < 0 ||
        (finalized && load_frozen(frozen, geo, s) < 0)) {
        session_free(s);
        return NULL;
    }
    return s;
}

static int load_sessions(const json_t *array, const struct chunk_geometry *geo,
                         struct seeder_state *state)
{
    size_t n = json_array_size(array), i;
    json_t *o;
    state->sessions = calloc(n ? n : 1, sizeof *state->sessions);
    if (!state->sessions || !json_is_array(array))
        return -1;
    json_array_foreach(array, i, o)
    {
        if (!(state->sessions[i] = load_session(o, geo)))
            return -1;
        state->n_sessions++;
    }
    return 0;
}

static void free_sessions(struct seeder_state *state)
{
    for (size_t i = 0; i < state->n_sessions; i++)
        session_free(state->sessions[i]);
    free(state->sessions);
    state->sessions = NULL, state->n_sessions = 0;
}

/* Fills STATE from ROOT; one sentence in ERR if it does not fit GEO. */
static int parse_state(const json_t *root, const char *path, const struct chunk_geometry *geo,
                       struct seeder_state *state, char *err, size_t errlen)
{
    int version;
    const char *id, *phase;
    json_int_t size, chunk_size, next, fallback;
    json_t *sessions;
    if (json_unpack((json_t *)root, "{s:i,s:s,s:I,s:I,s:s,s:I,s:I,s:o}", "version", &version,
                    "image_id", &id, "size", &size, "chunk_size", &chunk_size, "phase", &phase,
                    "next_session", &next, "default_session", &fallback, "sessions",
                    &sessions) < 0 ||
        version != STATE_VERSION || strlen(id) != 32 ||
        (strcmp(phase, "frozen") != 0 && strcmp(phase, "complete") != 0) || next < 1 ||
        fallback < 0) {
        snprintf(err, errlen, "%s is not a godwit seeder state file of this version", path);
        return -1;
    }
    if ((uint64_t)size != geo->size || (uint64_t)chunk_size != geo->chunk_size) {
        snprintf(err, errlen,
                 "%s describes a %lld-byte image in %lld-byte chunks, but the image is %llu bytes "
                 "in %u-byte chunks: start with the same --chunk-size, or remove it",
                 path, (long long)size, (long long)chunk_size, (unsigned long long)geo->size,
                 geo->chunk_size);
        return -1;
    }
    snprintf(state->image_id, sizeof state->image_id, "%s", id);
    state->phase = strcmp(phase, "complete") == 0 ? TRACKER_COMPLETE : TRACKER_FROZEN;
    state->next_session = (uint64_t)next;
    state->default_session = (uint64_t)fallback;
    if (load_sessions(sessions, geo, state) < 0) {
        free_sessions(state);
        snprintf(err, errlen, "%s has a malformed session", path);
        return -1;
    }
    return 0;
}

int state_file_load(const char *path, const struct chunk_geometry *geo, struct seeder_state *state,
                    char *err, size_t errlen)
{
    memset(state, 0, sizeof *state);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    json_error_t error;
    json_t *root = json_loadf(f, 0, &error);
    fclose(f);
    if (!root) {
        snprintf(err, errlen, "%s is not valid JSON (%s, line %d); refusing to start unfrozen",
                 path, error.text, error.line);
        return -1;
    }
    int r = parse_state(root, path, geo, state, err, errlen);
    json_decref(root);
    return r < 0 ? -1 : 1;
}
