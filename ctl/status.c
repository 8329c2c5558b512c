/* SPDX-License-Identifier: MIT */
/* The leecher's Status as a person reads it (one "name: value" line per
 * figure) or as one JSON object for scripts, and the status command. */
#include "ctl.h"

#include <jansson.h>
#include <stdio.h>

static const char *state_names[] = {"UNSPECIFIED", "PRECOPY",  "FINALIZING",
                                    "POSTCOPY",    "COMPLETE", "FAILED"};
static const char *verify_names[] = {"UNSPECIFIED", "OFF",    "PENDING",    "RUNNING",
                                     "PASSED",      "FAILED", "UNSUPPORTED"};

const char *ctl_state_name(Godwit__V1__State state)
{
    return state_names[state <= 5 ? state : 0];
}

static const char *verify_name(Godwit__V1__VerifyState verify)
{
    return verify_names[verify <= 6 ? verify : 0];
}

const char *ctl_bytes(double bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024 && unit < 4)
        bytes /= 1024, unit++;
    snprintf(buf, len, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
    return buf;
}

static double percent(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 100.0;
}

static void print_bandwidth(const Godwit__V1__StatusResponse *s)
{
    char cap[32];
    if (!s->max_bandwidth)
        printf("bandwidth cap:       none\n");
    else
        printf("bandwidth cap:       %s/s, pulls held back %.3f s in all\n",
               ctl_bytes((double)s->max_bandwidth, cap, sizeof cap),
               (double)s->bandwidth_throttled_us / 1e6);
}

static void print_convergence(const Godwit__V1__StatusResponse *s)
{
    if (s->state != GODWIT__V1__STATE__PRECOPY)
        return;
    if (s->not_converging)
        printf("convergence:         NOT converging for %u Sync rounds: %s\n", s->stalled_rounds,
               s->convergence_hint);
    else
        printf("convergence:         converging (%u Sync rounds without progress)\n",
               s->stalled_rounds);
}

static void print_text(const Godwit__V1__StatusResponse *s)
{
    char a[32], b[32], c[32];
    printf("state:               %s\n", ctl_state_name(s->state));
    printf("image:               %s, %s in %llu chunks of %s\n", s->image_id,
           ctl_bytes((double)s->size, a, sizeof a), (unsigned long long)s->chunks_total,
           ctl_bytes(s->chunk_size, b, sizeof b));
    printf("chunks local:        %llu / %llu (%.1f%%), %llu remaining\n",
           (unsigned long long)s->chunks_local, (unsigned long long)s->chunks_total,
           percent(s->chunks_local, s->chunks_total), (unsigned long long)s->chunks_remaining);
    printf("bytes pulled:        %s (decoded to %s; compressing: %s)\n",
           ctl_bytes((double)s->bytes_pulled, a, sizeof a),
           ctl_bytes((double)s->bytes_decoded, b, sizeof b), s->compressing ? "yes" : "no");
    printf("throughput:          %s/s on average since the start\n",
           ctl_bytes(s->pull_rate, c, sizeof c));
    printf("dirty chunks:        %llu now (%.1f chunks/s re-dirtied; %llu in all)\n",
           (unsigned long long)s->finalize_dirty_chunks, s->dirty_rate,
           (unsigned long long)s->chunks_redirtied);
    printf("predicted downtime:  %.1f ms\n", s->predicted_downtime_ms);
    if (s->downtime_us)
        printf("downtime:            %.1f ms (measured at Finalize)\n",
               (double)s->downtime_us / 1e3);
    printf("sync rounds:         %llu\n", (unsigned long long)s->sync_rounds);
    printf("retries:             %llu pulls retried, %llu checksum mismatches\n",
           (unsigned long long)s->pull_retries, (unsigned long long)s->checksum_mismatches);
    printf("on-demand pulls:     %llu (%.1f KiB)\n", (unsigned long long)s->on_demand_pulls,
           (double)s->on_demand_bytes / 1024);
    printf("verify:              %s\n", verify_name(s->verify));
    print_bandwidth(s);
    print_convergence(s);
    if (s->error[0]) /* why it FAILED, or what holds it up (a full disk, the seeder away) */
        printf("error:               %s\n", s->error);
}

/* Adds the unsigned integer VALUE as KEY; -1 if out of memory. */
static int add_uint(json_t *o, const char *key, uint64_t value)
{
    return json_object_set_new(o, key, json_integer((json_int_t)value));
}

static int add_counters(json_t *o, const Godwit__V1__StatusResponse *s)
{
    return add_uint(o, "chunk_size", s->chunk_size) |
           add_uint(o, "chunks_remaining", s->chunks_remaining) |
           add_uint(o, "chunks_redirtied", s->chunks_redirtied) |
           add_uint(o, "bytes_decoded", s->bytes_decoded) |
           add_uint(o, "checksum_mismatches", s->checksum_mismatches) |
           add_uint(o, "max_bandwidth", s->max_bandwidth) |
           add_uint(o, "bandwidth_throttled_us", s->bandwidth_throttled_us) |
           add_uint(o, "bandwidth_forfeited_bytes", s->bandwidth_forfeited_bytes) |
           add_uint(o, "sync_rounds", s->sync_rounds) |
           add_uint(o, "pull_retries", s->pull_retries) |
           add_uint(o, "on_demand_pulls", s->on_demand_pulls) |
           add_uint(o, "on_demand_bytes", s->on_demand_bytes) |
           json_object_set_new(o, "pull_rate", json_real(s->pull_rate)) |
           json_object_set_new(o, "compressing", json_boolean(s->compressing)) |
           json_object_set_new(o, "image_id", json_string(s->image_id)) |
           json_object_set_new(o, "verify", json_string(verify_name(s->verify)));
}

static int print_json(const Godwit__V1__StatusResponse *s, double waited_s)
{
    json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:f,s:b,s:i,s:s,s:f,s:s}", "state",
                          ctl_state_name(s->state), "size", (json_int_t)s->size, "chunks_total",
                          (json_int_t)s->chunks_total, "chunks_local", (json_int_t)s->chunks_local,
                          "bytes_pulled", (json_int_t)s->bytes_pulled, "dirty_rate", s->dirty_rate,
                          "downtime_us", (json_int_t)s->downtime_us, "finalize_dirty_chunks",
                          (json_int_t)s->finalize_dirty_chunks, "predicted_downtime_ms",
                          s->predicted_downtime_ms, "not_converging", s->not_converging,
                          "stalled_rounds", (int)s->stalled_rounds, "convergence_hint",
                          s->convergence_hint, "waited_s", waited_s, "error", s->error);
    if (!o || add_counters(o, s) != 0 || json_dumpf(o, stdout, JSON_COMPACT) != 0) {
        json_decref(o);
        fprintf(stderr, "godwit-ctl: out of memory formatting Status\n");
        return 1;
    }
    putchar('\n');
    json_decref(o);
    return 0;
}

int ctl_print_status(const Godwit__V1__StatusResponse *s, bool json, double waited_s)
{
    if (json)
        return print_json(s, waited_s);
    print_text(s);
    return 0;
}

int ctl_status_command(const struct ctl *ctl)
{
    Godwit__V1__StatusResponse *s = ctl_status(ctl, ctl_timeout_ms(ctl, 5000));
    if (!s)
        return 1;
    int r = ctl_print_status(s, ctl->json, 0);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return r;
}
