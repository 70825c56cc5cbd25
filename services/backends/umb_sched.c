//  umb_sched - picks the TEE host for a new CVM, and keeps each host's reputation
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umb_sched.h"

struct _umb_sched_t {
    double half_life_ms;
    double prior_weight;
    double prior_reliability;
    double latency_ref_s;
};

#define S_TIE_EPSILON 1e-9

umb_sched_t *
umb_sched_new (const umb_sched_config_t *config)
{
    umb_sched_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->half_life_ms = 3600.0 * 1000.0;
    self->prior_weight = 2.0;
    self->prior_reliability = 0.9;
    self->latency_ref_s = 5.0;
    if (config) {
        if (config->half_life_s > 0)
            self->half_life_ms = config->half_life_s * 1000.0;
        if (config->prior_weight > 0)
            self->prior_weight = config->prior_weight;
        if (config->prior_reliability > 0 && config->prior_reliability <= 1)
            self->prior_reliability = config->prior_reliability;
        if (config->latency_ref_s > 0)
            self->latency_ref_s = config->latency_ref_s;
    }
    return self;
}

void
umb_sched_destroy (umb_sched_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  rep's weights as they stand at now (a clock that went back decays nothing)
static umb_sched_rep_t
s_decayed (umb_sched_t *self, const umb_sched_rep_t *rep, int64_t now)
{
    umb_sched_rep_t out = *rep;
    if (now > rep->updated && rep->updated != 0) {
        double factor = exp2 (-(double) (now - rep->updated) / self->half_life_ms);
        out.successes *= factor;
        out.failures *= factor;
        out.latency_sum *= factor;
        out.latency_weight *= factor;
    }
    if (now > out.updated)
        out.updated = now;
    return out;
}

void
umb_sched_record (umb_sched_t *self, umb_sched_rep_t *rep, bool success,
                  double boot_seconds, int64_t now)
{
    assert (self);
    assert (rep);
    *rep = s_decayed (self, rep, now);
    if (success) {
        rep->successes += 1;
        if (isfinite (boot_seconds) && boot_seconds >= 0) {
            rep->latency_sum += boot_seconds;
            rep->latency_weight += 1;
        }
    }
    else
        rep->failures += 1;
}

double
umb_sched_reliability (umb_sched_t *self, const umb_sched_rep_t *rep, int64_t now)
{
    assert (self);
    assert (rep);
    umb_sched_rep_t cur = s_decayed (self, rep, now);
    double prior = self->prior_weight;
    return (cur.successes + prior * self->prior_reliability)
         / (cur.successes + cur.failures + prior);
}

double
umb_sched_latency (umb_sched_t *self, const umb_sched_rep_t *rep, int64_t now)
{
    assert (self);
    assert (rep);
    umb_sched_rep_t cur = s_decayed (self, rep, now);
    double prior = self->prior_weight;
    return (cur.latency_sum + prior * self->latency_ref_s) / (cur.latency_weight + prior);
}

static bool
s_request_valid (const umb_sched_request_t *request)
{
    return (unsigned) request->tee < UMB_DOMAIN_TEE_COUNT
        && request->vcpus >= UMB_DOMAIN_VCPUS_MIN
        && request->vcpus <= UMB_DOMAIN_VCPUS_MAX
        && request->memory_mib >= UMB_DOMAIN_MEMORY_MIN_MIB
        && request->memory_mib <= UMB_DOMAIN_MEMORY_MAX_MIB;
}

static bool
s_eligible (const umb_sched_host_t *host, const umb_sched_request_t *request)
{
    return host->reachable
        && (host->tee_mask & UMB_SCHED_TEE_BIT (request->tee))
        && host->vcpus_free >= request->vcpus
        && host->memory_free_mib >= request->memory_mib;
}

double
umb_sched_score (umb_sched_t *self, const umb_sched_host_t *host,
                 const umb_sched_request_t *request, int64_t now)
{
    assert (self);
    assert (host);
    assert (request);
    if (!s_request_valid (request) || !s_eligible (host, request))
        return 0;
    //  Fraction of the host left after placing the CVM; a total below the
    //  free amount (stale figures) counts as the free amount
    double vcpus_total = host->vcpus_total > host->vcpus_free? host->vcpus_total: host->vcpus_free;
    double memory_total = host->memory_total_mib > host->memory_free_mib?
                          (double) host->memory_total_mib: (double) host->memory_free_mib;
    double cpu_left = (host->vcpus_free - request->vcpus) / vcpus_total;
    double memory_left = (double) (host->memory_free_mib - request->memory_mib) / memory_total;
    double fit = 0.1 + 0.9 * (cpu_left < memory_left? cpu_left: memory_left);

    double reliability = umb_sched_reliability (self, &host->rep, now);
    double latency = umb_sched_latency (self, &host->rep, now);
    double latency_factor = self->latency_ref_s / (self->latency_ref_s + latency);
    return fit * reliability * latency_factor;
}

//  True if host a is preferred over host b at equal score
static bool
s_tie_prefers (const umb_sched_host_t *a, const umb_sched_host_t *b)
{
    if (a->cvms != b->cvms)
        return a->cvms < b->cvms;
    const char *a_id = a->id? a->id: "";
    const char *b_id = b->id? b->id: "";
    return strcmp (a_id, b_id) < 0;
}

int
umb_sched_pick (umb_sched_t *self, const umb_sched_host_t *hosts, size_t count,
                const umb_sched_request_t *request, int64_t now,
                char *reason, size_t reason_size)
{
    assert (self);
    assert (hosts || count == 0);
    assert (request);
    char scratch [8];
    if (!reason) {
        reason = scratch;
        reason_size = sizeof scratch;
    }
    if (!s_request_valid (request)) {
        if ((unsigned) request->tee >= UMB_DOMAIN_TEE_COUNT)
            snprintf (reason, reason_size, "unknown TEE type %d", (int) request->tee);
        else
            snprintf (reason, reason_size, "a CVM needs %u..%u vCPUs and %u..%u MiB",
                      UMB_DOMAIN_VCPUS_MIN, UMB_DOMAIN_VCPUS_MAX,
                      UMB_DOMAIN_MEMORY_MIN_MIB, UMB_DOMAIN_MEMORY_MAX_MIB);
        return -1;
    }
    if (count == 0) {
        snprintf (reason, reason_size, "no hosts are registered");
        return -1;
    }
    size_t reachable = 0, with_tee = 0, unreachable_with_tee = 0;
    size_t cpu_ok = 0, memory_ok = 0;
    unsigned most_vcpus = 0;
    uint64_t most_memory = 0;
    int best = -1;
    double best_score = 0;
    for (size_t index = 0; index < count; index++) {
        const umb_sched_host_t *host = &hosts [index];
        bool tee = (host->tee_mask & UMB_SCHED_TEE_BIT (request->tee)) != 0;
        if (!host->reachable) {
            if (tee)
                unreachable_with_tee++;
            continue;
        }
        reachable++;
        if (!tee)
            continue;
        with_tee++;
        if (host->vcpus_free > most_vcpus)
            most_vcpus = host->vcpus_free;
        if (host->memory_free_mib > most_memory)
            most_memory = host->memory_free_mib;
        if (host->vcpus_free >= request->vcpus)
            cpu_ok++;
        if (host->memory_free_mib >= request->memory_mib)
            memory_ok++;
        if (!s_eligible (host, request))
            continue;
        double score = umb_sched_score (self, host, request, now);
        if (best < 0
        ||  score > best_score + S_TIE_EPSILON
        || (fabs (score - best_score) <= S_TIE_EPSILON && s_tie_prefers (host, &hosts [best]))) {
            best = (int) index;
            best_score = score;
        }
    }
    if (best >= 0)
        return best;

    const char *tee_name = umb_domain_tee_str (request->tee);
    if (reachable == 0)
        snprintf (reason, reason_size, "every host is unreachable");
    else
    if (with_tee == 0) {
        if (unreachable_with_tee)
            snprintf (reason, reason_size, "no reachable host supports %s (%zu unreachable host%s do%s)",
                      tee_name, unreachable_with_tee, unreachable_with_tee == 1? "": "s",
                      unreachable_with_tee == 1? "es": "");
        else
            snprintf (reason, reason_size, "no reachable host supports %s", tee_name);
    }
    else
    if (cpu_ok == 0)
        snprintf (reason, reason_size, "no host has %u vCPUs free (most free: %u)",
                  request->vcpus, most_vcpus);
    else
    if (memory_ok == 0)
        snprintf (reason, reason_size, "no host has %llu MiB memory free (most free: %llu)",
                  (unsigned long long) request->memory_mib, (unsigned long long) most_memory);
    else
        snprintf (reason, reason_size, "no host has both %u vCPUs and %llu MiB free",
                  request->vcpus, (unsigned long long) request->memory_mib);
    return -1;
}

//  --------------------------------------------------------------------------
//  Selftest

static umb_sched_host_t
s_host (const char *id, unsigned vcpus, uint64_t memory)
{
    umb_sched_host_t host = {
        .id = id, .tee_mask = UMB_SCHED_TEE_BIT (UMB_DOMAIN_TEE_NONE),
        .vcpus_total = vcpus, .vcpus_free = vcpus,
        .memory_total_mib = memory, .memory_free_mib = memory,
        .reachable = true
    };
    return host;
}

static void
s_expect_refusal (umb_sched_t *sched, umb_sched_host_t *hosts, size_t count,
                  umb_sched_request_t *request, const char *expected, bool verbose)
{
    char reason [256] = "";
    int index = umb_sched_pick (sched, hosts, count, request, 1000, reason, sizeof reason);
    if (verbose)
        printf ("  refusal: %s\n", reason);
    assert (index == -1);
    assert (strcmp (reason, expected) == 0);
}

void
umb_sched_test (bool verbose)
{
    if (verbose)
        printf (" * umb_sched:\n");
    umb_sched_config_t config = { .half_life_s = 3600 };
    umb_sched_t *sched = umb_sched_new (&config);
    assert (sched);
    const int64_t hour = 3600 * 1000;
    char reason [256];

    //  Refusals, each with its reason
    umb_sched_host_t hosts [4];
    umb_sched_request_t request = { .tee = UMB_DOMAIN_TEE_NONE, .vcpus = 2, .memory_mib = 1024 };
    s_expect_refusal (sched, hosts, 0, &request, "no hosts are registered", verbose);
    hosts [0] = s_host ("a", 8, 8192);
    hosts [1] = s_host ("b", 8, 8192);
    hosts [0].reachable = hosts [1].reachable = false;
    s_expect_refusal (sched, hosts, 2, &request, "every host is unreachable", verbose);
    hosts [0].reachable = hosts [1].reachable = true;
    request.tee = UMB_DOMAIN_TEE_TDX;
    s_expect_refusal (sched, hosts, 2, &request, "no reachable host supports tdx", verbose);
    hosts [1].tee_mask |= UMB_SCHED_TEE_BIT (UMB_DOMAIN_TEE_TDX);
    hosts [1].reachable = false;
    s_expect_refusal (sched, hosts, 2, &request,
                      "no reachable host supports tdx (1 unreachable host does)", verbose);
    hosts [1].reachable = true;
    assert (umb_sched_pick (sched, hosts, 2, &request, 1000, reason, sizeof reason) == 1);
    request.tee = UMB_DOMAIN_TEE_NONE;
    request.vcpus = 16;
    s_expect_refusal (sched, hosts, 2, &request, "no host has 16 vCPUs free (most free: 8)", verbose);
    request.vcpus = 2;
    request.memory_mib = 16384;
    s_expect_refusal (sched, hosts, 2, &request,
                      "no host has 16384 MiB memory free (most free: 8192)", verbose);
    hosts [0].vcpus_free = 1;           //  a: memory but no vCPUs
    hosts [1].memory_free_mib = 512;    //  b: vCPUs but no memory
    request.memory_mib = 1024;
    s_expect_refusal (sched, hosts, 2, &request, "no host has both 2 vCPUs and 1024 MiB free", verbose);
    request.vcpus = 0;
    s_expect_refusal (sched, hosts, 2, &request, "a CVM needs 1..256 vCPUs and 128..1048576 MiB", verbose);
    request.vcpus = 2;
    request.memory_mib = 64;
    s_expect_refusal (sched, hosts, 2, &request, "a CVM needs 1..256 vCPUs and 128..1048576 MiB", verbose);
    request.memory_mib = 1024;
    request.tee = (umb_domain_tee_t) 7;
    s_expect_refusal (sched, hosts, 2, &request, "unknown TEE type 7", verbose);
    request.tee = UMB_DOMAIN_TEE_NONE;
    assert (umb_sched_pick (sched, hosts, 2, &request, 0, NULL, 0) == -1);

    //  Unreachable hosts are never picked, however good they look
    hosts [0] = s_host ("a", 64, 65536);
    hosts [1] = s_host ("b", 4, 4096);
    hosts [0].reachable = false;
    for (int i = 0; i < 5; i++)
        umb_sched_record (sched, &hosts [0].rep, true, 1, 1000);
    assert (umb_sched_pick (sched, hosts, 2, &request, 1000, reason, sizeof reason) == 1);
    assert (umb_sched_score (sched, &hosts [0], &request, 1000) == 0);

    //  Capacity: the emptier host wins (spreading)
    hosts [0] = s_host ("a", 8, 8192);
    hosts [1] = s_host ("b", 8, 8192);
    hosts [0].vcpus_free = 4;
    hosts [0].cvms = 2;
    assert (umb_sched_pick (sched, hosts, 2, &request, 1000, reason, sizeof reason) == 1);

    //  Determinism: identical hosts -> the smaller id, whatever the order;
    //  equal scores -> fewer CVMs first
    hosts [0] = s_host ("b", 8, 8192);
    hosts [1] = s_host ("a", 8, 8192);
    hosts [2] = s_host ("c", 8, 8192);
    for (int round = 0; round < 3; round++)
        assert (umb_sched_pick (sched, hosts, 3, &request, 1000, reason, sizeof reason) == 1);
    umb_sched_host_t swapped [3] = { hosts [2], hosts [1], hosts [0] };
    assert (umb_sched_pick (sched, swapped, 3, &request, 1000, reason, sizeof reason) == 1);
    hosts [1].cvms = 1;     //  same free capacity, but more CVMs
    assert (umb_sched_pick (sched, hosts, 3, &request, 1000, reason, sizeof reason) == 0);

    //  A failing host loses traffic to a healthy one, and wins it back as
    //  its failures age: a is empty (fit ~0.89), b half full (fit ~0.44)
    int64_t now = 10 * hour;
    hosts [0] = s_host ("a", 16, 16384);
    hosts [1] = s_host ("b", 16, 16384);
    hosts [1].vcpus_free = 8;
    hosts [1].memory_free_mib = 10240;
    assert (umb_sched_pick (sched, hosts, 2, &request, now, reason, sizeof reason) == 0);
    for (int i = 0; i < 3; i++)
        umb_sched_record (sched, &hosts [0].rep, false, 0, now);
    double failed = umb_sched_reliability (sched, &hosts [0].rep, now);
    assert (fabs (failed - 1.8 / 5.0) < 1e-9);
    assert (umb_sched_pick (sched, hosts, 2, &request, now, reason, sizeof reason) == 1);
    //  One half-life later the three failures weigh 1.5
    double aged = umb_sched_reliability (sched, &hosts [0].rep, now + hour);
    assert (fabs (aged - 1.8 / 3.5) < 1e-9);
    assert (aged > failed);
    assert (umb_sched_pick (sched, hosts, 2, &request, now + hour, reason, sizeof reason) == 0);
    //  ... and it keeps recovering towards the prior
    assert (umb_sched_reliability (sched, &hosts [0].rep, now + 10 * hour) > 0.89);
    //  A clock that goes back decays nothing
    assert (fabs (umb_sched_reliability (sched, &hosts [0].rep, now - hour) - failed) < 1e-9);

    //  Latency preference: same capacity and success, b boots faster
    hosts [0] = s_host ("a", 8, 8192);
    hosts [1] = s_host ("b", 8, 8192);
    for (int i = 0; i < 4; i++) {
        umb_sched_record (sched, &hosts [0].rep, true, 20.0, now);
        umb_sched_record (sched, &hosts [1].rep, true, 2.0, now);
    }
    assert (umb_sched_latency (sched, &hosts [1].rep, now) < umb_sched_latency (sched, &hosts [0].rep, now));
    assert (fabs (umb_sched_latency (sched, &hosts [1].rep, now) - (8.0 + 10.0) / 6.0) < 1e-9);
    assert (umb_sched_pick (sched, hosts, 2, &request, now, reason, sizeof reason) == 1);
    //  A new host (no history) is not starved by a proven slow one
    umb_sched_host_t fresh = s_host ("c", 8, 8192);
    assert (umb_sched_score (sched, &fresh, &request, now) > umb_sched_score (sched, &hosts [0], &request, now));

    umb_sched_destroy (&sched);
    umb_sched_destroy (&sched);
    assert (sched == NULL);
    if (verbose)
        printf ("OK\n");
}
