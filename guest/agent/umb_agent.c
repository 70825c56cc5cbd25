//  umb_agent - the agent inside the confidential VM: state machine, routes, handlers
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <czmq.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "umb_agent.h"
#include "umb_hex.h"
#include "umb_service.h"
#include "umb_client.h"
#include "umb_envelope.h"
#include "umb_utf8.h"
#include "umb_manifest.h"
#include "umb_sig.h"
#include "umb_sandbox.h"
#include "umb_outbox.h"
#include "umb_upload.h"
#include "umb_provider.h"

#define S_CHALLENGES        64
#define S_CHALLENGE_TTL_MS  60000
#define S_DOWNLOADS         64
#define S_UPLOAD_IDLE_MS    60000          //  an upload nobody feeds is aborted after this
#define S_PULL_MAX          1000
#define S_PULL_WAIT_MAX_MS  60000
#define S_PIP_MISSING_EXIT  97
#define S_DONE_GRACE_MS     300            //  lets the last reply leave before "DONE"

//  ---------------------------------------------------------------- state machine

typedef enum {
    S_IDLE = 0,
    S_RECEIVING_MANIFEST,
    S_RECEIVING_ALGORITHM,
    S_RECEIVING_DATA,
    S_RUNNING,
    S_CONSUMING_RESULTS,
    S_COMPLETE,
    S_FAILED,
    S_STOPPED,
    S_STATE_COUNT
} s_state_t;

static const char *const s_state_names [] = {
    "Idle", "ReceivingManifest", "ReceivingAlgorithm", "ReceivingData", "Running",
    "ConsumingResults", "Complete", "Failed", "Stopped"
};

typedef enum {
    E_MANIFEST = 0,         //  agent.control.manifest / --manifest
    E_MANIFEST_VALID,
    E_MANIFEST_INVALID,
    E_ALGORITHM_UPLOAD,     //  agent.upload.begin, role algorithm
    E_DATASET_UPLOAD,       //  agent.upload.begin, role dataset
    E_ALGORITHM_RECEIVED,   //  the algorithm is in; datasets follow
    E_DATASET_RECEIVED,     //  a dataset is in; more follow
    E_ASSETS_COMPLETE,      //  the last asset is in: run
    E_RUN_OK,               //  exit 0, results packed
    E_RUN_FAILED,           //  crash, timeout, results cap, sandbox error
    E_RESULT_FETCH,         //  agent.result.begin
    E_ALL_FETCHED,          //  every distinct consumer confirmed
    E_STOP,                 //  agent.control.stop
    E_EVENT_COUNT
} s_event_t;

static const char *const s_event_names [] = {
    "manifest", "manifest valid", "manifest invalid", "algorithm upload", "dataset upload",
    "algorithm received", "dataset received", "last asset received", "run succeeded",
    "run failed", "result fetch", "every consumer fetched", "stop"
};

typedef struct _self_t self_t;
typedef void (s_action_fn) (self_t *self);

static void s_action_prepare (self_t *self);
static void s_action_run (self_t *self);
static void s_action_stop (self_t *self);
static void s_action_final (self_t *self);

//  (state, event) -> (action, next state). A pair not in the table is refused.
static const struct {
    s_state_t    state;
    s_event_t    event;
    s_action_fn *action;
    s_state_t    next;
} s_transitions [] = {
    { S_IDLE,                E_MANIFEST,           NULL,             S_RECEIVING_MANIFEST },
    { S_RECEIVING_MANIFEST,  E_MANIFEST_VALID,     s_action_prepare, S_RECEIVING_ALGORITHM },
    { S_RECEIVING_MANIFEST,  E_MANIFEST_INVALID,   NULL,             S_IDLE },
    { S_RECEIVING_ALGORITHM, E_ALGORITHM_UPLOAD,   NULL,             S_RECEIVING_ALGORITHM },
    { S_RECEIVING_ALGORITHM, E_ALGORITHM_RECEIVED, NULL,             S_RECEIVING_DATA },
    { S_RECEIVING_ALGORITHM, E_ASSETS_COMPLETE,    s_action_run,     S_RUNNING },
    { S_RECEIVING_DATA,      E_DATASET_UPLOAD,     NULL,             S_RECEIVING_DATA },
    { S_RECEIVING_DATA,      E_DATASET_RECEIVED,   NULL,             S_RECEIVING_DATA },
    { S_RECEIVING_DATA,      E_ASSETS_COMPLETE,    s_action_run,     S_RUNNING },
    { S_RUNNING,             E_RUN_OK,             NULL,             S_CONSUMING_RESULTS },
    { S_RUNNING,             E_RUN_FAILED,         s_action_final,   S_FAILED },
    { S_CONSUMING_RESULTS,   E_RESULT_FETCH,       NULL,             S_CONSUMING_RESULTS },
    { S_CONSUMING_RESULTS,   E_ALL_FETCHED,        s_action_final,   S_COMPLETE },
    { S_COMPLETE,            E_RESULT_FETCH,       NULL,             S_COMPLETE },
    { S_IDLE,                E_STOP,               s_action_stop,    S_STOPPED },
    { S_RECEIVING_MANIFEST,  E_STOP,               s_action_stop,    S_STOPPED },
    { S_RECEIVING_ALGORITHM, E_STOP,               s_action_stop,    S_STOPPED },
    { S_RECEIVING_DATA,      E_STOP,               s_action_stop,    S_STOPPED },
    { S_RUNNING,             E_STOP,               s_action_stop,    S_STOPPED },
    { S_CONSUMING_RESULTS,   E_STOP,               s_action_stop,    S_STOPPED },
};

//  ---------------------------------------------------------------- the agent

typedef struct {
    uint8_t bytes [32];
    int64_t expires;            //  zclock_mono; 0 = free slot
    int64_t created;
} s_challenge_t;

typedef struct {
    char          id [33];
    size_t        consumer;     //  index of the first consumer with that key
    uint8_t      *served;       //  one byte per chunk
    uint64_t      chunks;
    int64_t       created;
} s_download_t;

typedef struct {
    umb_req_t *req;
    uint64_t   after;
    size_t     max;
    int        timer;
} s_pull_t;

struct _self_t {
    const umb_agent_config_t *config;
    umb_log_t        *log;
    zsock_t          *pipe;
    zcert_t          *cert;
    umb_service_t    *service;
    zloop_t          *loop;
    zsock_t          *attest;
    char             *attest_endpoint;
    umb_provider_t   *provider;
    const char       *platform;
    umb_outbox_t     *outbox;
    umb_w_t          *scratch;

    char             *workdir;
    char             *run_dir;              //  workdir/run
    char             *uploads_dir;          //  workdir/uploads
    char             *result_path;          //  workdir/result.tar
    size_t            chunk_size;
    int               credit;

    s_state_t         state;
    char              reason [1024];        //  why Failed / Stopped / Idle after a bad manifest
    umb_manifest_t   *manifest;
    bool              algorithm_received;
    bool             *dataset_received;
    bool             *consumer_fetched;     //  by first index of each distinct key

    s_challenge_t     challenges [S_CHALLENGES];

    //  the one open upload
    umb_upload_t     *upload;
    char              upload_id [33];
    bool              upload_algorithm;
    int               upload_dataset;
    uint64_t          upload_seq;           //  next expected
    int64_t           upload_touched;
    char             *upload_target;        //  where the asset goes (file, or dir to unpack into)
    char             *upload_archive;       //  the committed archive being unpacked
    umb_upload_job_t *unpack;
    umb_req_t        *unpack_req;           //  the deferred agent.upload.end
    uint8_t           upload_hash [32];

    umb_sandbox_t    *sandbox;
    umb_upload_job_t *pack;
    uint64_t          output_lines;
    uint64_t          output_dropped;
    EVP_MD_CTX       *hash_md;              //  hashing the packed result
    int               hash_timer;

    bool              result_ready;
    int               result_fd;
    uint64_t          result_size;
    char              result_hash [65];
    zlistx_t         *downloads;            //  s_download_t *, oldest first

    zlistx_t         *pulls;                //  s_pull_t *
    bool              done_sent;
    uint64_t          run_count;
};

static void s_fire (self_t *self, s_event_t event, const char *reason);
static void s_hash_stop (self_t *self);

const char *
umb_agent_state_name (int state)
{
    return state >= 0 && state < S_STATE_COUNT ? s_state_names [state] : "?";
}

static bool
s_allowed (s_state_t state, s_event_t event)
{
    for (size_t i = 0; i < sizeof s_transitions / sizeof s_transitions [0]; i++)
        if (s_transitions [i].state == state && s_transitions [i].event == event)
            return true;
    return false;
}

static void
s_rmtree_one_chmod (const char *path)
{
    struct stat info;
    if (lstat (path, &info) == 0 && S_ISDIR (info.st_mode))
        chmod (path, 0700);
}

static int
s_rmtree_one (const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void) info; (void) ftw;
    if (type == FTW_DP)
        rmdir (path);
    else
        unlink (path);
    return 0;
}

static int
s_rmtree_pre (const char *path, const struct stat *info, int type, struct FTW *ftw)
{
    (void) info; (void) ftw;
    if (type == FTW_D)
        s_rmtree_one_chmod (path);
    return 0;
}

static void
s_rmtree (const char *path)
{
    if (access (path, F_OK) == -1)
        return;
    nftw (path, s_rmtree_pre, 32, FTW_PHYS);
    nftw (path, s_rmtree_one, 32, FTW_PHYS | FTW_DEPTH);
}

static void
s_random_id (char *out, size_t bytes)
{
    uint8_t raw [16];
    assert (bytes <= sizeof raw);
    RAND_bytes (raw, (int) bytes);
    umb_hex_encode (raw, bytes, out);
}

//  Events go to the outbox; pulls waiting for one are answered
static void s_pulls_answer (self_t *self, bool all);

static void
s_event (self_t *self, const char *type, const char *message)
{
    char reason [256];
    if (umb_outbox_append (self->outbox, type, s_state_names [self->state], message, reason,
                           sizeof reason) < 0)
        umb_log_error (self->log, "event lost: %s", reason);
    s_pulls_answer (self, false);
}

static void
s_fire (self_t *self, s_event_t event, const char *reason)
{
    for (size_t i = 0; i < sizeof s_transitions / sizeof s_transitions [0]; i++) {
        if (s_transitions [i].state != self->state || s_transitions [i].event != event)
            continue;
        s_state_t previous = self->state;
        self->state = s_transitions [i].next;
        if (reason)
            snprintf (self->reason, sizeof self->reason, "%s", reason);
        else
        if (self->state != previous)
            self->reason [0] = 0;
        if (self->state != previous) {
            umb_log_info (self->log, "%s -> %s (%s)%s%s", s_state_names [previous],
                          s_state_names [self->state], s_event_names [event],
                          reason ? ": " : "", reason ? reason : "");
            char message [1200];
            snprintf (message, sizeof message, "%s -> %s%s%s", s_state_names [previous],
                      s_state_names [self->state], reason ? ": " : "", reason ? reason : "");
            s_event (self, "state", message);
        }
        if (s_transitions [i].action)
            s_transitions [i].action (self);
        return;
    }
    //  Callers check s_allowed first; an internal event in the wrong state is a bug
    umb_log_error (self->log, "event '%s' refused in state %s", s_event_names [event],
                   s_state_names [self->state]);
    assert (false);
}

//  ---------------------------------------------------------------- uploads

static void
s_upload_close (self_t *self)
{
    umb_upload_destroy (&self->upload);
    if (self->unpack) {
        zmq_pollitem_t item = { NULL, umb_upload_job_fd (self->unpack), ZMQ_POLLIN, 0 };
        zloop_poller_end (self->loop, &item);
    }
    umb_upload_job_destroy (&self->unpack);
    if (self->upload_archive) {
        unlink (self->upload_archive);
        free (self->upload_archive);
        self->upload_archive = NULL;
    }
    free (self->upload_target);
    self->upload_target = NULL;
    self->upload_id [0] = 0;
    self->upload_seq = 0;
}

//  Aborts the open upload; a partially unpacked dataset is removed
static void
s_upload_abort (self_t *self, const char *why)
{
    if (!self->upload && !self->unpack)
        return;
    umb_log_info (self->log, "upload %s aborted: %s", self->upload_id, why);
    bool unpacking = self->unpack != NULL;
    char *target = self->upload_target ? strdup (self->upload_target) : NULL;
    s_upload_close (self);
    if (unpacking && target)
        s_rmtree (target);
    free (target);
    if (self->unpack_req) {
        umb_req_fail (self->unpack_req, 409, "wrong_state", "the upload was aborted: %s", why);
        umb_service_reply (self->service, &self->unpack_req, 409);
    }
}

//  ---------------------------------------------------------------- actions

static int
s_mkdir (const char *path, mode_t mode, char *reason, size_t reason_size)
{
    if (mkdir (path, mode) == -1 && errno != EEXIST) {
        snprintf (reason, reason_size, "cannot create %.200s: %s", path, strerror (errno));
        return -1;
    }
    chmod (path, mode);
    return 0;
}

static void
s_action_prepare (self_t *self)
{
    size_t datasets = umb_manifest_dataset_count (self->manifest);
    free (self->dataset_received);
    free (self->consumer_fetched);
    self->dataset_received = calloc (datasets + 1, sizeof (bool));
    self->consumer_fetched = calloc (umb_manifest_consumer_count (self->manifest) + 1, sizeof (bool));
    assert (self->dataset_received && self->consumer_fetched);
    self->algorithm_received = false;
    //  A fresh start: nothing of an earlier run is reused
    s_rmtree (self->run_dir);
    s_rmtree (self->uploads_dir);
    unlink (self->result_path);
    char path [4096], reason [512];
    snprintf (path, sizeof path, "%s/datasets", self->run_dir);
    char results [4096];
    snprintf (results, sizeof results, "%s/results", self->run_dir);
    if (s_mkdir (self->run_dir, 0755, reason, sizeof reason)
    ||  s_mkdir (path, 0755, reason, sizeof reason)
    ||  s_mkdir (results, 0755, reason, sizeof reason)
    ||  s_mkdir (self->uploads_dir, 0700, reason, sizeof reason))
        umb_log_error (self->log, "%s", reason);
}

static void
s_action_stop (self_t *self)
{
    s_upload_abort (self, "the agent was stopped");
    if (self->sandbox) {
        zmq_pollitem_t item = { NULL, umb_sandbox_fd (self->sandbox), ZMQ_POLLIN, 0 };
        zloop_poller_end (self->loop, &item);
        umb_sandbox_destroy (&self->sandbox);
    }
    if (self->pack) {
        zmq_pollitem_t item = { NULL, umb_upload_job_fd (self->pack), ZMQ_POLLIN, 0 };
        zloop_poller_end (self->loop, &item);
        umb_upload_job_destroy (&self->pack);
    }
    s_hash_stop (self);
    s_action_final (self);
}

static int
s_send_done (zloop_t *loop, int timer_id, void *arg)
{
    self_t *self = arg;
    zstr_sendx (self->pipe, "DONE", s_state_names [self->state], NULL);
    return 0;
}

static void
s_action_final (self_t *self)
{
    if (self->config->exit_when_done && !self->done_sent) {
        self->done_sent = true;
        zloop_timer (self->loop, S_DONE_GRACE_MS, 1, s_send_done, self);
    }
}

//  One output line of the algorithm becomes a log event; bytes that are not
//  printable UTF-8 become '?'
static void
s_on_output (void *arg, int stream, const char *line, size_t len)
{
    self_t *self = arg;
    const umb_manifest_limits_t *limits = umb_manifest_limits (self->manifest);
    if (self->output_lines >= limits->output_lines) {
        self->output_dropped++;
        return;
    }
    self->output_lines++;
    const char *prefix = stream == UMB_SANDBOX_STDOUT ? "stdout: " : "stderr: ";
    size_t max = UMB_OUTBOX_MAX_MESSAGE - 8;
    char *message = malloc (8 + max + 1);
    assert (message);
    strcpy (message, prefix);
    size_t out = 8;
    for (size_t i = 0; i < len && out - 8 < max;) {
        size_t sequence = umb_utf8_sequence (line + i, len - i);
        if (sequence == 0 || (sequence == 1 && ((unsigned char) line [i] < 32 || line [i] == 127))) {
            message [out++] = line [i] == '\t' ? '\t' : '?';
            i++;
        }
        else {
            if (out - 8 + sequence > max)
                break;
            memcpy (message + out, line + i, sequence);
            out += sequence;
            i += sequence;
        }
    }
    message [out] = 0;
    s_event (self, "log", message);
    free (message);
}

static int s_on_sandbox (zloop_t *loop, zmq_pollitem_t *item, void *arg);
static int s_on_pack (zloop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_action_run (self_t *self)
{
    umb_manifest_t *manifest = self->manifest;
    const umb_manifest_limits_t *limits = umb_manifest_limits (manifest);
    size_t arg_count = umb_manifest_algorithm_arg_count (manifest);
    const char **argv = calloc (arg_count + 8, sizeof (char *));
    assert (argv);
    size_t argc = 0;
    bool python = umb_manifest_algorithm_type (manifest) == UMB_MANIFEST_ALGO_PYTHON;
    bool requirements = python && umb_manifest_algorithm_requirements (manifest);
    //  pip installs the wheels into the private /tmp (the workdir is read-only
    //  in the sandbox); -I would ignore PYTHONPATH, so -s -E is not used either
    static const char s_install [] =
        "/usr/bin/python3 -m pip --version >/dev/null 2>&1 || {"
        " echo 'umbra-agent: pip is absent in the guest' >&2; exit 97; }\n"
        "/usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-cache-dir"
        " --no-index --find-links algorithm/wheels -r algorithm/requirements.txt"
        " --target /tmp/deps >&2 || exit 98\n"
        "PYTHONPATH=/tmp/deps exec /usr/bin/python3 -s -B algorithm/main.py \"$@\"\n";
    if (requirements) {
        argv [argc++] = "/bin/sh";
        argv [argc++] = "-c";
        argv [argc++] = s_install;
        argv [argc++] = "algorithm";
    }
    else
    if (python) {
        argv [argc++] = "/usr/bin/python3";
        argv [argc++] = "-I";
        argv [argc++] = "algorithm.py";
    }
    else
        argv [argc++] = "./algorithm";
    for (size_t i = 0; i < arg_count; i++)
        argv [argc++] = umb_manifest_algorithm_arg (manifest, i);
    argv [argc] = NULL;

    char id [64];
    snprintf (id, sizeof id, "agent-%d-%" PRIu64, (int) getpid (), ++self->run_count);
    umb_sandbox_spec_t spec = {
        .workdir = self->run_dir,
        .argv = argv,
        .id = id,
        .uid = self->config->run_uid,
        .gid = self->config->run_gid,
        .limits = {
            .memory_bytes = limits->memory_mb * 1024 * 1024,
            .cpus = limits->cpus,
            .pids = limits->pids,
            .wall_timeout_ms = (uint64_t) umb_manifest_run_timeout_s (manifest) * 1000,
            .results_bytes = limits->results_mb * 1024 * 1024,
            .tmp_bytes = requirements ? 512ull * 1024 * 1024 : 0,
            .output_line_max = UMB_OUTBOX_MAX_MESSAGE - 8,
        },
        .on_output = s_on_output,
        .on_output_arg = self,
    };
    self->output_lines = 0;
    self->output_dropped = 0;
    char reason [512] = "";
    self->sandbox = umb_sandbox_start (&spec, reason, sizeof reason);
    free (argv);
    if (!self->sandbox) {
        char why [600];
        snprintf (why, sizeof why, "the sandbox did not start: %s", reason);
        s_fire (self, E_RUN_FAILED, why);
        return;
    }
    umb_log_info (self->log, "algorithm started (supervisor pid %d, timeout %u s)",
                  (int) umb_sandbox_pid (self->sandbox), umb_manifest_run_timeout_s (manifest));
    zmq_pollitem_t item = { NULL, umb_sandbox_fd (self->sandbox), ZMQ_POLLIN, 0 };
    zloop_poller (self->loop, &item, s_on_sandbox, self);
}

static int
s_on_sandbox (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    self_t *self = arg;
    if (!self->sandbox)
        return 0;
    umb_sandbox_handle (self->sandbox);
    if (!umb_sandbox_done (self->sandbox))
        return 0;
    zmq_pollitem_t mine = { NULL, umb_sandbox_fd (self->sandbox), ZMQ_POLLIN, 0 };
    zloop_poller_end (self->loop, &mine);
    char reason [512] = "";
    int rc = umb_sandbox_outcome (self->sandbox, reason, sizeof reason);
    umb_sandbox_destroy (&self->sandbox);
    if (self->output_dropped > 0) {
        char message [160];
        snprintf (message, sizeof message, "stderr: [umbra] %" PRIu64 " more output lines were "
                  "not forwarded (the manifest's limit is %" PRIu64 ")", self->output_dropped,
                  umb_manifest_limits (self->manifest)->output_lines);
        s_event (self, "log", message);
    }
    if (rc != 0) {
        char why [600];
        if (strstr (reason, "exit status 97"))
            snprintf (why, sizeof why, "pip is absent in the guest: cannot install requirements");
        else
        if (umb_manifest_algorithm_requirements (self->manifest) && strstr (reason, "exit status 98"))
            snprintf (why, sizeof why, "installing the algorithm's requirements failed");
        else
            snprintf (why, sizeof why, "the algorithm failed: %s", reason);
        s_fire (self, E_RUN_FAILED, why);
        return 0;
    }
    umb_log_info (self->log, "algorithm exited 0; packing the results");
    char results [4096];
    snprintf (results, sizeof results, "%s/results", self->run_dir);
    unlink (self->result_path);
    self->pack = umb_upload_pack_start (results, self->result_path, reason, sizeof reason);
    if (!self->pack) {
        s_fire (self, E_RUN_FAILED, reason);
        return 0;
    }
    zmq_pollitem_t pack = { NULL, umb_upload_job_fd (self->pack), ZMQ_POLLIN, 0 };
    zloop_poller (self->loop, &pack, s_on_pack, self);
    return 0;
}

//  Hashes the packed result a slice per timer tick, so a large result never
//  holds the loop up
#define S_HASH_SLICE (4 * 1024 * 1024)

static void
s_hash_stop (self_t *self)
{
    if (self->hash_timer) {
        zloop_timer_end (self->loop, self->hash_timer);
        self->hash_timer = 0;
    }
    EVP_MD_CTX_free (self->hash_md);
    self->hash_md = NULL;
}

static void
s_result_failed (self_t *self, const char *reason)
{
    s_hash_stop (self);
    if (self->result_fd >= 0) {
        close (self->result_fd);
        self->result_fd = -1;
    }
    char why [600];
    snprintf (why, sizeof why, "the results could not be packed: %s", reason);
    s_fire (self, E_RUN_FAILED, why);
}

static int
s_on_hash (zloop_t *loop, int timer_id, void *arg)
{
    self_t *self = arg;
    if (!self->hash_md)
        return 0;
    char *buffer = malloc (65536);
    assert (buffer);
    size_t done = 0;
    bool end = false;
    while (done < S_HASH_SLICE) {
        ssize_t got = pread (self->result_fd, buffer, 65536, (off_t) self->result_size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free (buffer);
            char reason [256];
            snprintf (reason, sizeof reason, "cannot read the results: %s", strerror (errno));
            s_result_failed (self, reason);
            return 0;
        }
        if (got == 0) {
            end = true;
            break;
        }
        EVP_DigestUpdate (self->hash_md, buffer, (size_t) got);
        self->result_size += (uint64_t) got;
        done += (size_t) got;
    }
    free (buffer);
    if (!end)
        return 0;
    uint8_t hash [32];
    unsigned int length = 0;
    EVP_DigestFinal_ex (self->hash_md, hash, &length);
    s_hash_stop (self);
    umb_hex_encode (hash, 32, self->result_hash);
    self->result_ready = true;
    umb_log_info (self->log, "results packed: %" PRIu64 " bytes, sha3-256 %s", self->result_size,
                  self->result_hash);
    s_fire (self, E_RUN_OK, NULL);
    return 0;
}

static int
s_on_pack (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    self_t *self = arg;
    if (!self->pack || umb_upload_job_read (self->pack) == 0)
        return 0;
    zmq_pollitem_t mine = { NULL, umb_upload_job_fd (self->pack), ZMQ_POLLIN, 0 };
    zloop_poller_end (self->loop, &mine);
    char reason [512] = "";
    int rc = umb_upload_job_finish (self->pack, reason, sizeof reason);
    umb_upload_job_destroy (&self->pack);
    if (rc == 0) {
        self->result_fd = open (self->result_path, O_RDONLY | O_CLOEXEC);
        if (self->result_fd == -1) {
            snprintf (reason, sizeof reason, "cannot open the results: %s", strerror (errno));
            rc = -1;
        }
    }
    if (rc != 0) {
        s_result_failed (self, reason);
        return 0;
    }
    self->result_size = 0;
    self->hash_md = EVP_MD_CTX_new ();
    EVP_MD *sha3 = EVP_MD_fetch (NULL, "SHA3-256", NULL);
    rc = self->hash_md && sha3 && EVP_DigestInit_ex (self->hash_md, sha3, NULL) == 1 ? 0 : -1;
    EVP_MD_free (sha3);
    if (rc != 0) {
        s_result_failed (self, "SHA3-256 is not available");
        return 0;
    }
    self->hash_timer = zloop_timer (self->loop, 1, 0, s_on_hash, self);
    return 0;
}

//  ---------------------------------------------------------------- challenges

static void
s_challenge_new (self_t *self, uint8_t out [32])
{
    int64_t now = zclock_mono ();
    size_t slot = 0;
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < S_CHALLENGES; i++) {
        s_challenge_t *challenge = &self->challenges [i];
        if (challenge->expires == 0 || challenge->expires <= now) {
            slot = i;
            break;
        }
        if (challenge->created < oldest) {
            oldest = challenge->created;
            slot = i;
        }
    }
    RAND_bytes (self->challenges [slot].bytes, 32);
    self->challenges [slot].created = now;
    self->challenges [slot].expires = now + S_CHALLENGE_TTL_MS;
    memcpy (out, self->challenges [slot].bytes, 32);
}

//  Consumes the challenge whatever happens next; true if it was valid
static bool
s_challenge_take (self_t *self, const uint8_t *bytes, size_t size)
{
    if (!bytes || size != 32)
        return false;
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < S_CHALLENGES; i++) {
        s_challenge_t *challenge = &self->challenges [i];
        if (challenge->expires && CRYPTO_memcmp (challenge->bytes, bytes, 32) == 0) {
            bool valid = challenge->expires > now;
            memset (challenge, 0, sizeof *challenge);
            return valid;
        }
    }
    return false;
}

//  ---------------------------------------------------------------- handlers

static int
s_bad_body (umb_req_t *req)
{
    return umb_req_fail (req, 400, "bad_request", "%s", umb_msg_error (umb_req_body (req)));
}

static int
s_challenge (void *state, umb_req_t *req)
{
    self_t *self = state;
    uint8_t challenge [32];
    s_challenge_new (self, challenge);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_key (w, "challenge");
    umb_w_bin (w, challenge, 32);
    umb_w_kv_int (w, "expires_in_ms", S_CHALLENGE_TTL_MS);
    umb_w_map_end (w);
    return 200;
}

static void
s_write_status (self_t *self, umb_w_t *w)
{
    umb_manifest_t *manifest = self->manifest;
    umb_w_map_begin (w);
    umb_w_kv_str (w, "state", s_state_names [self->state]);
    if (self->reason [0])
        umb_w_kv_str (w, "reason", self->reason);
    umb_w_kv_str (w, "computation", manifest ? umb_manifest_id (manifest) : "");
    umb_w_key (w, "algorithm");
    umb_w_map_begin (w);
    umb_w_kv_str (w, "hash", manifest ? umb_manifest_algorithm_hash_hex (manifest) : "");
    umb_w_kv_bool (w, "received", self->algorithm_received);
    umb_w_map_end (w);
    umb_w_key (w, "datasets");
    umb_w_array_begin (w);
    for (size_t i = 0; manifest && i < umb_manifest_dataset_count (manifest); i++) {
        umb_w_map_begin (w);
        umb_w_kv_str (w, "hash", umb_manifest_dataset_hash_hex (manifest, i));
        umb_w_kv_str (w, "filename", umb_manifest_dataset_filename (manifest, i));
        umb_w_kv_bool (w, "received", self->dataset_received [i]);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_key (w, "consumers");
    umb_w_array_begin (w);
    for (size_t i = 0; manifest && i < umb_manifest_consumer_count (manifest); i++) {
        int first = umb_manifest_consumer_find (manifest, umb_manifest_consumer_key (manifest, i));
        umb_w_map_begin (w);
        umb_w_kv_bool (w, "fetched", first >= 0 && self->consumer_fetched [first]);
        umb_w_map_end (w);
    }
    umb_w_array_end (w);
    umb_w_kv_int (w, "events", (int64_t) umb_outbox_last (self->outbox));
    umb_w_map_end (w);
}

static int
s_status (void *state, umb_req_t *req)
{
    s_write_status ((self_t *) state, umb_req_body_writer (req));
    return 200;
}

static int
s_wrong_state (self_t *self, umb_req_t *req, const char *what, const char *when)
{
    return umb_req_fail (req, 409, "wrong_state", "%s is accepted only in %s; the agent is in %s",
                         what, when, s_state_names [self->state]);
}

static int
s_upload_begin (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *role = umb_msg_str (body, "role", 16, true);
    const char *computation = umb_msg_str (body, "computation", UMB_MANIFEST_MAX_ID_SIZE, true);
    const char *hash_hex = umb_msg_str (body, "hash", 64, true);
    int64_t size = umb_msg_int (body, "size", 0, INT64_MAX / 2, 0, true);
    size_t challenge_size = 0, signature_size = 0;
    const uint8_t *challenge = umb_msg_bin (body, "challenge", 32, &challenge_size, true);
    const uint8_t *signature = umb_msg_bin (body, "signature", UMB_SIG_SIGNATURE_MAX,
                                            &signature_size, true);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    bool algorithm = streq (role, "algorithm");
    if (!algorithm && !streq (role, "dataset"))
        return umb_req_fail (req, 400, "bad_request", "role must be 'algorithm' or 'dataset'");
    uint8_t hash [32];
    if (strlen (hash_hex) != 64 || umb_hex_decode (hash_hex, hash, 32) != 0)
        return umb_req_fail (req, 400, "bad_request", "hash must be 64 hex characters");
    //  The challenge is spent by this request, whatever comes of it
    bool challenge_ok = s_challenge_take (self, challenge, challenge_size);

    if (!s_allowed (self->state, algorithm ? E_ALGORITHM_UPLOAD : E_DATASET_UPLOAD))
        return s_wrong_state (self, req, algorithm ? "an algorithm" : "a dataset",
                              algorithm ? "ReceivingAlgorithm" : "ReceivingData");
    umb_manifest_t *manifest = self->manifest;
    if (!streq (computation, umb_manifest_id (manifest)))
        return umb_req_fail (req, 403, "forbidden", "this agent runs computation '%s', not '%s'",
                             umb_manifest_id (manifest), computation);
    int dataset = -1;
    EVP_PKEY *key = NULL;
    if (algorithm) {
        if (CRYPTO_memcmp (hash, umb_manifest_algorithm_hash (manifest), 32) != 0)
            return umb_req_fail (req, 404, "unknown_asset",
                                 "the manifest's algorithm has another hash");
        if (self->algorithm_received)
            return umb_req_fail (req, 409, "duplicate", "the algorithm was already received");
        key = umb_manifest_algorithm_key (manifest);
    }
    else {
        //  several datasets may hold the same bytes: take the first not yet received
        bool known = false;
        for (size_t i = 0; i < umb_manifest_dataset_count (manifest); i++) {
            if (CRYPTO_memcmp (hash, umb_manifest_dataset_hash (manifest, i), 32) != 0)
                continue;
            known = true;
            if (!self->dataset_received [i]) {
                dataset = (int) i;
                break;
            }
        }
        if (!known)
            return umb_req_fail (req, 404, "unknown_asset", "no dataset of the manifest has hash %s",
                                 hash_hex);
        if (dataset < 0)
            return umb_req_fail (req, 409, "duplicate", "the dataset %s was already received",
                                 hash_hex);
        key = umb_manifest_dataset_key (manifest, (size_t) dataset);
    }
    if (!challenge_ok)
        return umb_req_fail (req, 403, "bad_challenge",
                             "the challenge is unknown, used or expired: ask agent.challenge");
    uint8_t statement [UMB_SIG_STATEMENT_MAX];
    ssize_t length = umb_sig_statement_upload (role, computation, hash, challenge, statement,
                                               sizeof statement);
    char reason [256] = "";
    if (length < 0
    ||  umb_sig_verify (key, statement, (size_t) length, signature, signature_size, reason,
                        sizeof reason))
        return umb_req_fail (req, 403, "bad_signature",
                             "the signature does not verify with the %s's key%s%s",
                             algorithm ? "algorithm" : "dataset", *reason ? ": " : "", reason);
    if (self->upload || self->unpack) {
        if (!self->unpack && zclock_mono () - self->upload_touched > S_UPLOAD_IDLE_MS)
            s_upload_abort (self, "abandoned: no chunk for 60 s");
        else
            return umb_req_fail (req, 409, "busy", "another upload is open; send one at a time");
    }
    self->upload = umb_upload_new (self->uploads_dir, (uint64_t) size, reason, sizeof reason);
    if (!self->upload) {
        umb_log_error (self->log, "%s", reason);
        return umb_req_fail (req, 500, "internal", "the agent cannot store the upload");
    }
    s_random_id (self->upload_id, 16);
    self->upload_algorithm = algorithm;
    self->upload_dataset = dataset;
    self->upload_seq = 0;
    self->upload_touched = zclock_mono ();
    memcpy (self->upload_hash, hash, 32);
    umb_log_info (self->log, "upload %s begins: %s %s, %" PRId64 " bytes", self->upload_id, role,
                  hash_hex, size);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "upload", self->upload_id);
    umb_w_kv_int (w, "chunk_size", (int64_t) self->chunk_size);
    umb_w_kv_int (w, "credit", self->credit);
    umb_w_map_end (w);
    return 200;
}

static bool
s_upload_is (self_t *self, const char *id)
{
    return self->upload && id && self->upload_id [0] && streq (id, self->upload_id);
}

static int
s_upload_chunk (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *id = umb_msg_str (body, "upload", 64, true);
    int64_t seq = umb_msg_int (body, "seq", 0, INT64_MAX, 0, true);
    size_t size = 0;
    const void *data = umb_msg_bin (body, "data", SIZE_MAX, &size, true);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    if (!s_upload_is (self, id))
        return umb_req_fail (req, 404, "unknown_upload", "no open upload '%s'", id);
    if ((uint64_t) seq != self->upload_seq) {
        uint64_t expected = self->upload_seq;
        s_upload_abort (self, "chunk out of order");
        return umb_req_fail (req, 409, "out_of_order",
                             "chunk %" PRId64 " arrived where %" PRIu64 " was due; the upload is aborted",
                             seq, expected);
    }
    if (size > self->chunk_size) {
        s_upload_abort (self, "chunk too large");
        return umb_req_fail (req, 413, "too_large",
                             "a chunk holds at most %zu bytes; the upload is aborted", self->chunk_size);
    }
    bool too_large = false;
    char reason [256];
    if (umb_upload_write (self->upload, data, size, &too_large, reason, sizeof reason)) {
        s_upload_abort (self, too_large ? "beyond the announced size" : "write failed");
        if (too_large)
            return umb_req_fail (req, 413, "too_large", "%s; the upload is aborted", reason);
        umb_log_error (self->log, "%s", reason);
        return umb_req_fail (req, 500, "internal", "the agent cannot store the upload");
    }
    self->upload_seq++;
    self->upload_touched = zclock_mono ();
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "seq", seq);
    umb_w_kv_int (w, "credit", self->credit);
    umb_w_map_end (w);
    return 200;
}

//  The asset is in place: record it and advance
static void
s_asset_recorded (self_t *self, umb_w_t *w, uint64_t size)
{
    char hash [65];
    umb_hex_encode (self->upload_hash, 32, hash);
    bool algorithm = self->upload_algorithm;
    if (algorithm)
        self->algorithm_received = true;
    else
        self->dataset_received [self->upload_dataset] = true;
    umb_log_info (self->log, "upload %s complete: %s %s", self->upload_id,
                  algorithm ? "algorithm" : "dataset", hash);
    s_upload_close (self);
    bool all = true;
    for (size_t i = 0; i < umb_manifest_dataset_count (self->manifest); i++)
        all = all && self->dataset_received [i];
    if (all)
        s_fire (self, E_ASSETS_COMPLETE, NULL);
    else
        s_fire (self, algorithm ? E_ALGORITHM_RECEIVED : E_DATASET_RECEIVED, NULL);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "hash", hash);
    umb_w_kv_int (w, "size", (int64_t) size);
    umb_w_kv_str (w, "state", s_state_names [self->state]);
    umb_w_map_end (w);
}

static int
s_on_unpack (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    self_t *self = arg;
    if (!self->unpack || umb_upload_job_read (self->unpack) == 0)
        return 0;
    zmq_pollitem_t mine = { NULL, umb_upload_job_fd (self->unpack), ZMQ_POLLIN, 0 };
    zloop_poller_end (self->loop, &mine);
    char reason [512] = "";
    int rc = umb_upload_job_finish (self->unpack, reason, sizeof reason);
    umb_upload_job_destroy (&self->unpack);
    umb_req_t *req = self->unpack_req;
    self->unpack_req = NULL;
    struct stat info;
    uint64_t size = 0;
    if (self->upload_archive && stat (self->upload_archive, &info) == 0)
        size = (uint64_t) info.st_size;
    if (rc != 0) {
        s_rmtree (self->upload_target);
        umb_log_info (self->log, "upload %s refused: %s", self->upload_id, reason);
        s_upload_close (self);
        umb_req_fail (req, 422, "bad_archive", "the archive cannot be unpacked: %s", reason);
        umb_service_reply (self->service, &req, 422);
        return 0;
    }
    s_asset_recorded (self, umb_req_body_writer (req), size);
    umb_service_reply (self->service, &req, 200);
    return 0;
}

static int
s_upload_end (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *id = umb_msg_str (body, "upload", 64, true);
    int64_t chunks = umb_msg_int (body, "chunks", 0, INT64_MAX, 0, true);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    if (!s_upload_is (self, id))
        return umb_req_fail (req, 404, "unknown_upload", "no open upload '%s'", id);
    if ((uint64_t) chunks != self->upload_seq) {
        uint64_t got = self->upload_seq;
        s_upload_abort (self, "chunk count differs");
        return umb_req_fail (req, 409, "out_of_order",
                             "the upload ends after %" PRId64 " chunks but %" PRIu64 " arrived; "
                             "it is aborted", chunks, got);
    }
    uint64_t size = umb_upload_received (self->upload);
    if (size != umb_upload_size (self->upload)) {
        uint64_t announced = umb_upload_size (self->upload);
        s_upload_abort (self, "short");
        return umb_req_fail (req, 409, "out_of_order",
                             "the upload ends after %" PRIu64 " of the announced %" PRIu64 " bytes; "
                             "it is aborted", size, announced);
    }
    uint8_t hash [32];
    umb_upload_hash (self->upload, hash);
    if (CRYPTO_memcmp (hash, self->upload_hash, 32) != 0) {
        char got [65];
        umb_hex_encode (hash, 32, got);
        s_upload_abort (self, "hash mismatch");
        return umb_req_fail (req, 422, "hash_mismatch",
                             "the upload's SHA3-256 is %s, not the manifest's; it is discarded", got);
    }
    //  Where the asset goes; whether it is unpacked is the manifest's word
    umb_manifest_t *manifest = self->manifest;
    bool unpack = false;
    mode_t mode = 0444;
    char target [4096];
    if (self->upload_algorithm) {
        bool python = umb_manifest_algorithm_type (manifest) == UMB_MANIFEST_ALGO_PYTHON;
        unpack = python && umb_manifest_algorithm_requirements (manifest);
        if (unpack)
            snprintf (target, sizeof target, "%s/algorithm", self->run_dir);
        else {
            snprintf (target, sizeof target, "%s/%s", self->run_dir,
                      python ? "algorithm.py" : "algorithm");
            mode = python ? 0444 : 0555;
        }
    }
    else {
        snprintf (target, sizeof target, "%s/datasets/%s", self->run_dir,
                  umb_manifest_dataset_filename (manifest, (size_t) self->upload_dataset));
        unpack = umb_manifest_dataset_decompress (manifest, (size_t) self->upload_dataset);
    }
    char reason [512] = "";
    self->upload_target = strdup (target);
    if (!unpack) {
        if (umb_upload_commit (self->upload, target, mode, reason, sizeof reason)) {
            umb_log_error (self->log, "%s", reason);
            s_upload_abort (self, "cannot store");
            return umb_req_fail (req, 500, "internal", "the agent cannot store the upload");
        }
        s_asset_recorded (self, umb_req_body_writer (req), size);
        return 200;
    }
    //  Unpack in a child; the reply waits for it
    char archive [4096];
    snprintf (archive, sizeof archive, "%s/%s.archive", self->uploads_dir, self->upload_id);
    if (umb_upload_commit (self->upload, archive, 0400, reason, sizeof reason)) {
        umb_log_error (self->log, "%s", reason);
        s_upload_abort (self, "cannot store");
        return umb_req_fail (req, 500, "internal", "the agent cannot store the upload");
    }
    umb_upload_destroy (&self->upload);
    self->upload_archive = strdup (archive);
    if (s_mkdir (target, 0755, reason, sizeof reason)) {
        umb_log_error (self->log, "%s", reason);
        s_upload_close (self);
        return umb_req_fail (req, 500, "internal", "the agent cannot store the upload");
    }
    self->unpack = umb_upload_unpack_start (archive, target, reason, sizeof reason);
    if (!self->unpack) {
        s_rmtree (target);
        s_upload_close (self);
        return umb_req_fail (req, 422, "bad_archive", "the archive cannot be unpacked: %s", reason);
    }
    zmq_pollitem_t item = { NULL, umb_upload_job_fd (self->unpack), ZMQ_POLLIN, 0 };
    zloop_poller (self->loop, &item, s_on_unpack, self);
    self->unpack_req = umb_req_defer (req);
    return UMB_DEFERRED;
}

static int
s_upload_abort_op (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *id = umb_msg_str (body, "upload", 64, true);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    bool known = id && self->upload_id [0] && streq (id, self->upload_id);
    if (!known)
        return umb_req_fail (req, 404, "unknown_upload", "no open upload '%s'", id);
    //  an unpack job's deferred reply is answered by the abort
    s_upload_abort (self, "the client aborted it");
    umb_w_map_begin (umb_req_body_writer (req));
    umb_w_map_end (umb_req_body_writer (req));
    return 200;
}

//  ---------------------------------------------------------------- results

static void
s_download_destroy (void **item)
{
    s_download_t *download = *item;
    if (download) {
        free (download->served);
        free (download);
        *item = NULL;
    }
}

static s_download_t *
s_download_find (self_t *self, const char *id)
{
    if (!id)
        return NULL;
    for (s_download_t *download = zlistx_first (self->downloads); download;
         download = zlistx_next (self->downloads))
        if (streq (download->id, id))
            return download;
    return NULL;
}

static int
s_result_begin (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *computation = umb_msg_str (body, "computation", UMB_MANIFEST_MAX_ID_SIZE, true);
    size_t challenge_size = 0, signature_size = 0, pem_size = 0;
    const uint8_t *challenge = umb_msg_bin (body, "challenge", 32, &challenge_size, true);
    const uint8_t *signature = umb_msg_bin (body, "signature", UMB_SIG_SIGNATURE_MAX,
                                            &signature_size, true);
    const char *pem = umb_msg_str (body, "key", 16384, true);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    pem_size = strlen (pem);
    bool challenge_ok = s_challenge_take (self, challenge, challenge_size);
    umb_manifest_t *manifest = self->manifest;
    if (!manifest)
        return umb_req_fail (req, 409, "not_ready", "the agent has no computation yet");
    if (!streq (computation, umb_manifest_id (manifest)))
        return umb_req_fail (req, 403, "forbidden", "this agent runs computation '%s', not '%s'",
                             umb_manifest_id (manifest), computation);
    char reason [256] = "";
    EVP_PKEY *key = umb_sig_public_load_pem (pem, pem_size, reason, sizeof reason);
    int consumer = key ? umb_manifest_consumer_find (manifest, key) : -1;
    if (consumer < 0) {
        EVP_PKEY_free (key);
        return umb_req_fail (req, 403, "not_a_consumer",
                             "the key is not one of the manifest's result consumers%s%s",
                             *reason ? ": " : "", reason);
    }
    if (!challenge_ok) {
        EVP_PKEY_free (key);
        return umb_req_fail (req, 403, "bad_challenge",
                             "the challenge is unknown, used or expired: ask agent.challenge");
    }
    uint8_t statement [UMB_SIG_STATEMENT_MAX];
    ssize_t length = umb_sig_statement_result (computation, challenge, statement, sizeof statement);
    int rc = length < 0 ? -1 : umb_sig_verify (key, statement, (size_t) length, signature,
                                                signature_size, reason, sizeof reason);
    EVP_PKEY_free (key);
    if (rc)
        return umb_req_fail (req, 403, "bad_signature", "the signature does not verify with the key%s%s",
                             *reason ? ": " : "", reason);
    if (self->state == S_FAILED)
        return umb_req_fail (req, 409, "failed", "the run failed: %s", self->reason);
    if (!s_allowed (self->state, E_RESULT_FETCH) || !self->result_ready)
        return umb_req_fail (req, 409, "not_ready", "there is no result in state %s",
                             s_state_names [self->state]);
    s_fire (self, E_RESULT_FETCH, NULL);
    //  bounded: the oldest unfinished download gives way
    while (zlistx_size (self->downloads) >= S_DOWNLOADS) {
        void *oldest = zlistx_first (self->downloads);
        zlistx_delete (self->downloads, zlistx_cursor (self->downloads));
        (void) oldest;
    }
    s_download_t *download = calloc (1, sizeof (s_download_t));
    assert (download);
    s_random_id (download->id, 16);
    download->consumer = (size_t) consumer;
    download->chunks = (self->result_size + self->chunk_size - 1) / self->chunk_size;
    download->served = calloc (download->chunks + 1, 1);
    assert (download->served);
    download->created = zclock_mono ();
    zlistx_add_end (self->downloads, download);
    umb_log_info (self->log, "download %s begins for consumer %d", download->id, consumer);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "download", download->id);
    umb_w_kv_int (w, "size", (int64_t) self->result_size);
    umb_w_kv_str (w, "hash", self->result_hash);
    umb_w_kv_int (w, "chunk_size", (int64_t) self->chunk_size);
    umb_w_map_end (w);
    return 200;
}

static int
s_result_chunk (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *id = umb_msg_str (body, "download", 64, true);
    int64_t seq = umb_msg_int (body, "seq", 0, INT64_MAX, 0, true);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    s_download_t *download = s_download_find (self, id);
    if (!download || !self->result_ready)
        return umb_req_fail (req, 404, "unknown_download", "no download '%s'", id);
    if ((uint64_t) seq >= download->chunks)
        return umb_req_fail (req, 400, "bad_request", "the result has %" PRIu64 " chunks",
                             download->chunks);
    uint64_t offset = (uint64_t) seq * self->chunk_size;
    size_t size = self->result_size - offset < self->chunk_size
                ? (size_t) (self->result_size - offset) : self->chunk_size;
    char *data = malloc (size + 1);
    assert (data);
    size_t got = 0;
    while (got < size) {
        ssize_t rc = pread (self->result_fd, data + got, size - got, (off_t) (offset + got));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        got += (size_t) rc;
    }
    if (got != size) {
        free (data);
        umb_log_error (self->log, "cannot read the results: %s", strerror (errno));
        return umb_req_fail (req, 500, "internal", "the agent cannot read the result");
    }
    download->served [seq] = 1;
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_int (w, "seq", seq);
    umb_w_key (w, "data");
    umb_w_bin (w, data, size);
    umb_w_map_end (w);
    free (data);
    return 200;
}

static int
s_result_end (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *id = umb_msg_str (body, "download", 64, true);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    s_download_t *download = s_download_find (self, id);
    if (!download)
        return umb_req_fail (req, 404, "unknown_download", "no download '%s'", id);
    for (uint64_t i = 0; i < download->chunks; i++)
        if (!download->served [i])
            return umb_req_fail (req, 409, "out_of_order",
                                 "chunk %" PRIu64 " of %" PRIu64 " was never fetched", i,
                                 download->chunks);
    self->consumer_fetched [download->consumer] = true;
    umb_log_info (self->log, "download %s confirmed by consumer %zu", download->id, download->consumer);
    void *handle = zlistx_find (self->downloads, download);
    if (handle)
        zlistx_delete (self->downloads, handle);
    bool all = true;
    umb_manifest_t *manifest = self->manifest;
    for (size_t i = 0; i < umb_manifest_consumer_count (manifest); i++) {
        int first = umb_manifest_consumer_find (manifest, umb_manifest_consumer_key (manifest, i));
        all = all && first >= 0 && self->consumer_fetched [first];
    }
    if (all && self->state == S_CONSUMING_RESULTS)
        s_fire (self, E_ALL_FETCHED, NULL);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "state", s_state_names [self->state]);
    umb_w_map_end (w);
    return 200;
}

//  ---------------------------------------------------------------- control

static int
s_load_manifest (self_t *self, const char *json, size_t size, char *reason, size_t reason_size)
{
    s_fire (self, E_MANIFEST, NULL);
    umb_manifest_t *manifest = umb_manifest_parse (json, size, reason, reason_size);
    if (!manifest) {
        char why [600];
        snprintf (why, sizeof why, "invalid manifest: %s", reason);
        s_fire (self, E_MANIFEST_INVALID, why);
        return -1;
    }
    umb_manifest_destroy (&self->manifest);
    self->manifest = manifest;
    char message [400];
    snprintf (message, sizeof message, "computation %s accepted", umb_manifest_id (manifest));
    s_fire (self, E_MANIFEST_VALID, NULL);
    s_event (self, "log", message);
    return 0;
}

static int
s_control_manifest (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *json = umb_msg_str (body, "manifest", UMB_MANIFEST_MAX_SIZE, true);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    if (!s_allowed (self->state, E_MANIFEST))
        return s_wrong_state (self, req, "a manifest", "Idle");
    char reason [512] = "";
    if (s_load_manifest (self, json, strlen (json), reason, sizeof reason))
        return umb_req_fail (req, 422, "bad_manifest", "%s", reason);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "state", s_state_names [self->state]);
    umb_w_map_end (w);
    return 200;
}

static int
s_control_stop (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    const char *reason = umb_msg_str (body, "reason", 512, false);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    if (!s_allowed (self->state, E_STOP))
        return umb_req_fail (req, 409, "wrong_state", "the agent is in %s, which is final",
                             s_state_names [self->state]);
    char why [600];
    snprintf (why, sizeof why, "stopped by the control plane%s%s",
              reason && *reason ? ": " : "", reason && *reason ? reason : "");
    s_fire (self, E_STOP, why);
    umb_w_t *w = umb_req_body_writer (req);
    umb_w_map_begin (w);
    umb_w_kv_str (w, "state", s_state_names [self->state]);
    umb_w_map_end (w);
    return 200;
}

//  ---------------------------------------------------------------- events

static void
s_pull_write (self_t *self, umb_w_t *w, uint64_t after, size_t max)
{
    umb_w_map_begin (w);
    umb_w_key (w, "events");
    umb_outbox_read (self->outbox, after, max, w);
    umb_w_kv_int (w, "last", (int64_t) umb_outbox_last (self->outbox));
    umb_w_map_end (w);
}

static void
s_pull_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

static int
s_pull_timeout (zloop_t *loop, int timer_id, void *arg)
{
    self_t *self = arg;
    for (s_pull_t *pull = zlistx_first (self->pulls); pull; pull = zlistx_next (self->pulls)) {
        if (pull->timer != timer_id)
            continue;
        s_pull_write (self, umb_req_body_writer (pull->req), pull->after, pull->max);
        umb_service_reply (self->service, &pull->req, 200);
        zlistx_delete (self->pulls, zlistx_cursor (self->pulls));
        break;
    }
    return 0;
}

//  Answers parked pulls that now have events (all: every one, e.g. at exit)
static void
s_pulls_answer (self_t *self, bool all)
{
    if (!self->pulls)
        return;
    s_pull_t *pull = zlistx_first (self->pulls);
    while (pull) {
        if (all || umb_outbox_last (self->outbox) > pull->after) {
            zloop_timer_end (self->loop, pull->timer);
            s_pull_write (self, umb_req_body_writer (pull->req), pull->after, pull->max);
            umb_service_reply (self->service, &pull->req, 200);
            zlistx_delete (self->pulls, zlistx_cursor (self->pulls));
            pull = zlistx_first (self->pulls);
        }
        else
            pull = zlistx_next (self->pulls);
    }
}

static int
s_events_pull (void *state, umb_req_t *req)
{
    self_t *self = state;
    umb_msg_t *body = umb_req_body (req);
    int64_t after = umb_msg_int (body, "after", 0, INT64_MAX, 0, false);
    int64_t max = umb_msg_int (body, "max", 1, S_PULL_MAX, 100, false);
    int64_t wait_ms = umb_msg_int (body, "wait_ms", 0, S_PULL_WAIT_MAX_MS, 0, false);
    if (umb_msg_failed (body))
        return s_bad_body (req);
    umb_outbox_ack (self->outbox, (uint64_t) after);
    if (umb_outbox_last (self->outbox) > (uint64_t) after || wait_ms == 0) {
        s_pull_write (self, umb_req_body_writer (req), (uint64_t) after, (size_t) max);
        return 200;
    }
    //  Long poll: answered when an event appears or the wait is over
    int64_t remaining = umb_req_remaining_ms (req) - 100;
    if (remaining < wait_ms)
        wait_ms = remaining > 0 ? remaining : 1;
    s_pull_t *pull = calloc (1, sizeof (s_pull_t));
    assert (pull);
    pull->after = (uint64_t) after;
    pull->max = (size_t) max;
    pull->req = umb_req_defer (req);
    pull->timer = zloop_timer (self->loop, (size_t) wait_ms, 1, s_pull_timeout, self);
    zlistx_add_end (self->pulls, pull);
    return UMB_DEFERRED;
}

static const umb_route_t s_routes [] = {
    { "agent.challenge",        s_challenge,        UMB_ACCESS_PUBLIC, NULL },
    { "agent.status",           s_status,           UMB_ACCESS_PUBLIC, NULL },
    { "agent.upload.begin",     s_upload_begin,     UMB_ACCESS_PUBLIC, NULL },
    { "agent.upload.chunk",     s_upload_chunk,     UMB_ACCESS_PUBLIC, NULL },
    { "agent.upload.end",       s_upload_end,       UMB_ACCESS_PUBLIC, NULL },
    { "agent.upload.abort",     s_upload_abort_op,  UMB_ACCESS_PUBLIC, NULL },
    { "agent.result.begin",     s_result_begin,     UMB_ACCESS_PUBLIC, NULL },
    { "agent.result.chunk",     s_result_chunk,     UMB_ACCESS_PUBLIC, NULL },
    { "agent.result.end",       s_result_end,       UMB_ACCESS_PUBLIC, NULL },
    { "agent.events.pull",      s_events_pull,      UMB_ACCESS_MESH,   NULL },
    { "agent.control.manifest", s_control_manifest, UMB_ACCESS_MESH,   NULL },
    { "agent.control.stop",     s_control_stop,     UMB_ACCESS_MESH,   NULL },
    { NULL }
};

//  ---------------------------------------------------------------- attestation

static void
s_attest_reply (self_t *self, zframe_t *routing, const char *id, int status, const char *code,
                const char *message, umb_w_t *body)
{
    umb_w_t *header = umb_w_new ();
    umb_envelope_write_reply (header, id ? id : "", status, false, code, message);
    size_t header_size, body_size = 1;
    const void *header_data = umb_w_data (header, &header_size);
    static const unsigned char s_empty [] = { 0x80 };
    const void *body_data = body ? umb_w_data (body, &body_size) : s_empty;
    void *socket = zsock_resolve (self->attest);
    if (zmq_send (socket, zframe_data (routing), zframe_size (routing), ZMQ_SNDMORE) != -1
    &&  zmq_send (socket, header_data, header_size, ZMQ_SNDMORE) != -1)
        zmq_send (socket, body_data, body_size, 0);
    umb_w_destroy (&header);
}

static void
s_report_data (self_t *self, const uint8_t *nonce, size_t nonce_size, uint8_t out [64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new ();
    unsigned int length = 0;
    int rc = md && EVP_DigestInit_ex (md, EVP_sha512 (), NULL) == 1
          && EVP_DigestUpdate (md, "umbra-attest-v1", 15) == 1
          && EVP_DigestUpdate (md, zcert_public_key (self->cert), 32) == 1
          && EVP_DigestUpdate (md, nonce, nonce_size) == 1
          && EVP_DigestFinal_ex (md, out, &length) == 1;
    assert (rc && length == 64);
    EVP_MD_CTX_free (md);
}

static int
s_on_attest (zloop_t *loop, zsock_t *socket, void *arg)
{
    self_t *self = arg;
    zmsg_t *msg = zmsg_recv (socket);
    if (!msg)
        return 0;
    zframe_t *routing = zmsg_pop (msg);
    if (!routing || zmsg_size (msg) != 2) {
        if (routing)
            s_attest_reply (self, routing, "", 400, "bad_envelope", "a request is [header][body]",
                            NULL);
        zframe_destroy (&routing);
        zmsg_destroy (&msg);
        return 0;
    }
    zframe_t *header = zmsg_first (msg);
    zframe_t *body_frame = zmsg_next (msg);
    char *error = NULL, *id = NULL;
    umb_envelope_t *envelope = umb_envelope_decode (zframe_data (header), zframe_size (header),
                                                    false, &error, &id);
    umb_msg_t *body = NULL;
    if (!envelope)
        s_attest_reply (self, routing, id, 400, "bad_envelope", error ? error : "bad header", NULL);
    else
    if (!streq (umb_envelope_op (envelope), "agent.attestation"))
        s_attest_reply (self, routing, umb_envelope_id (envelope), 404, "unknown_operation",
                        "this endpoint answers only agent.attestation", NULL);
    else
    if (zframe_size (body_frame) > 4096
    ||  !(body = umb_msg_decode (zframe_data (body_frame), zframe_size (body_frame), NULL))
    ||  !umb_msg_is_map (body))
        s_attest_reply (self, routing, umb_envelope_id (envelope), 400, "bad_body",
                        "body: expected a map", NULL);
    else {
        size_t nonce_size = 0;
        const uint8_t *nonce = umb_msg_bin (body, "nonce", 64, &nonce_size, true);
        if (!umb_msg_failed (body) && nonce_size < 32)
            umb_msg_fail (body, "field 'nonce': expected 32..64 bytes");
        if (umb_msg_failed (body))
            s_attest_reply (self, routing, umb_envelope_id (envelope), 400, "bad_request",
                            umb_msg_error (body), NULL);
        else {
            uint8_t report_data [64];
            s_report_data (self, nonce, nonce_size, report_data);
            uint8_t *evidence = NULL, *certs = NULL;
            size_t evidence_size = 0, certs_size = 0;
            char reason [512] = "";
            int rc = umb_provider_get (self->provider, report_data, &evidence, &evidence_size,
                                       &certs, &certs_size, reason, sizeof reason);
            if (rc != 0) {
                umb_log_error (self->log, "attestation failed: %s", reason);
                s_attest_reply (self, routing, umb_envelope_id (envelope), 500, "internal",
                                reason, NULL);
            }
            else {
                umb_w_t *w = umb_w_new ();
                umb_w_map_begin (w);
                umb_w_kv_str (w, "platform", self->platform);
                umb_w_kv_str (w, "agent_key", zcert_public_txt (self->cert));
                umb_w_key (w, "nonce");
                umb_w_bin (w, nonce, nonce_size);
                umb_w_key (w, "report_data");
                umb_w_bin (w, report_data, 64);
                umb_w_key (w, "evidence");
                umb_w_bin (w, evidence, evidence_size);
                umb_w_key (w, "certs");
                umb_w_bin (w, certs, certs_size);
                umb_w_kv_bool (w, "insecure", streq (self->platform, "none"));
                umb_w_map_end (w);
                s_attest_reply (self, routing, umb_envelope_id (envelope), 200, NULL, NULL, w);
                umb_w_destroy (&w);
            }
            free (evidence);
            free (certs);
        }
    }
    umb_msg_destroy (&body);
    umb_envelope_destroy (&envelope);
    free (error);
    free (id);
    zframe_destroy (&routing);
    zmsg_destroy (&msg);
    return 0;
}

//  "tcp://host:7002" -> "tcp://host:7003"; "*" stays "*"
static char *
s_next_port (const char *endpoint)
{
    const char *colon = strrchr (endpoint, ':');
    if (!colon || strncmp (endpoint, "tcp://", 6) != 0)
        return NULL;
    char *result = NULL;
    if (streq (colon + 1, "*")) {
        if (asprintf (&result, "%.*s:*", (int) (colon - endpoint), endpoint) < 0)
            return NULL;
        return result;
    }
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    if (!end || *end || port < 1 || port >= 65535)
        return NULL;
    if (asprintf (&result, "%.*s:%ld", (int) (colon - endpoint), endpoint, port + 1) < 0)
        return NULL;
    return result;
}

//  ---------------------------------------------------------------- actor

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    if (self->sandbox)
        umb_sandbox_destroy (&self->sandbox);
    umb_upload_job_destroy (&self->pack);
    EVP_MD_CTX_free (self->hash_md);
    if (self->unpack_req) {
        umb_req_fail (self->unpack_req, 503, "unavailable", "the agent is stopping");
        umb_service_reply (self->service, &self->unpack_req, 503);
    }
    s_upload_close (self);
    if (self->pulls && self->service)
        s_pulls_answer (self, true);
    zlistx_destroy (&self->pulls);
    zlistx_destroy (&self->downloads);
    if (self->result_fd >= 0)
        close (self->result_fd);
    umb_service_destroy (&self->service);
    zsock_destroy (&self->attest);
    umb_provider_destroy (&self->provider);
    umb_outbox_destroy (&self->outbox);
    umb_manifest_destroy (&self->manifest);
    free (self->dataset_received);
    free (self->consumer_fetched);
    if (self->cert) {
        //  the agent's private CURVE key lived only here
        OPENSSL_cleanse ((void *) zcert_secret_key (self->cert), 32);
        OPENSSL_cleanse ((void *) zcert_secret_txt (self->cert), 40);
        zcert_destroy (&self->cert);
    }
    free (self->attest_endpoint);
    free (self->workdir);
    free (self->run_dir);
    free (self->uploads_dir);
    free (self->result_path);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (zsock_t *pipe, const umb_agent_config_t *config, char *reason, size_t reason_size)
{
    self_t *self = calloc (1, sizeof (self_t));
    assert (self);
    self->config = config;
    self->pipe = pipe;
    self->log = config->log;
    self->result_fd = -1;
    self->chunk_size = config->chunk_size ? config->chunk_size : UMB_AGENT_CHUNK_SIZE;
    self->credit = config->credit > 0 ? config->credit : UMB_AGENT_CREDIT;
    self->downloads = zlistx_new ();
    zlistx_set_destructor (self->downloads, s_download_destroy);
    self->pulls = zlistx_new ();
    zlistx_set_destructor (self->pulls, s_pull_destroy);
    if (s_mkdir (config->workdir, 0700, reason, reason_size)) {
        s_self_destroy (&self);
        return NULL;
    }
    //  the sandbox needs absolute paths
    self->workdir = realpath (config->workdir, NULL);
    if (!self->workdir) {
        snprintf (reason, reason_size, "cannot resolve %s: %s", config->workdir, strerror (errno));
        s_self_destroy (&self);
        return NULL;
    }
    if (asprintf (&self->run_dir, "%s/run", self->workdir) < 0
    ||  asprintf (&self->uploads_dir, "%s/uploads", self->workdir) < 0
    ||  asprintf (&self->result_path, "%s/result.tar", self->workdir) < 0)
        assert (false);
    char events [4096];
    snprintf (events, sizeof events, "%s/events", self->workdir);
    self->outbox = umb_outbox_new (events,
                                   config->outbox_bytes ? config->outbox_bytes : UMB_AGENT_OUTBOX_BYTES,
                                   reason, reason_size);
    if (!self->outbox) {
        s_self_destroy (&self);
        return NULL;
    }
    const char *kind = config->attestation ? config->attestation : "none";
    self->provider = umb_provider_new_reason (kind, NULL, reason, reason_size);
    if (!self->provider) {
        s_self_destroy (&self);
        return NULL;
    }
    self->platform = umb_provider_platform (self->provider);
    if (streq (self->platform, "none"))
        umb_log_warn (self->log, "*** INSECURE: --attestation none: there is no TEE and nothing is "
                      "attested; for development only ***");

    self->cert = zcert_new ();
    assert (self->cert);
    const char *mesh_services [2] = { config->control_key, NULL };
    size_t max_body = self->chunk_size + 64 * 1024;
    if (max_body < UMB_MANIFEST_MAX_SIZE + 64 * 1024)
        max_body = UMB_MANIFEST_MAX_SIZE + 64 * 1024;
    self->service = umb_service_new (&(umb_service_config_t) {
        .name = "agent", .endpoint = config->endpoint, .cert = self->cert, .zap = config->zap,
        .routes = s_routes, .state = self, .mesh_services = mesh_services, .log = self->log,
        .max_body = max_body, .open = true });
    if (!self->service) {
        snprintf (reason, reason_size, "cannot bind %s", config->endpoint);
        s_self_destroy (&self);
        return NULL;
    }
    self->loop = umb_service_loop (self->service);
    char *attest_endpoint = config->attest_endpoint ? strdup (config->attest_endpoint)
                                                    : s_next_port (umb_service_endpoint (self->service));
    if (!attest_endpoint) {
        snprintf (reason, reason_size, "no attestation endpoint can be derived from %s",
                  config->endpoint);
        s_self_destroy (&self);
        return NULL;
    }
    //  Plain ZMTP: no CURVE and no ZAP domain, so the handler is never asked
    self->attest = zsock_new (ZMQ_ROUTER);
    assert (self->attest);
    zsock_set_linger (self->attest, 0);
    zsock_set_maxmsgsize (self->attest, 65536);
    if (zsock_bind (self->attest, "%s", attest_endpoint) == -1) {
        snprintf (reason, reason_size, "cannot bind %s: %s", attest_endpoint,
                  zmq_strerror (zmq_errno ()));
        free (attest_endpoint);
        s_self_destroy (&self);
        return NULL;
    }
    free (attest_endpoint);
    self->attest_endpoint = strdup (zsock_endpoint (self->attest));
    zloop_reader (self->loop, self->attest, s_on_attest, self);
    s_event (self, "state", "agent started");

    //  Standalone: the manifest is delivered now
    const char *json = config->manifest_json;
    char *file_json = NULL;
    if (config->manifest_path) {
        umb_manifest_t *manifest = umb_manifest_load (config->manifest_path, reason, reason_size);
        if (manifest) {
            file_json = strdup (umb_manifest_json (manifest));
            umb_manifest_destroy (&manifest);
        }
        else {
            char why [600];
            snprintf (why, sizeof why, "%s", reason);
            snprintf (reason, reason_size, "%s: %s", config->manifest_path, why);
            s_self_destroy (&self);
            return NULL;
        }
        json = file_json;
    }
    if (json && s_load_manifest (self, json, strlen (json), reason, reason_size)) {
        free (file_json);
        s_self_destroy (&self);
        return NULL;
    }
    free (file_json);
    return self;
}

void
umb_agent_actor (zsock_t *pipe, void *args)
{
    const umb_agent_config_t *config = args;
    assert (config && config->endpoint && config->workdir && config->zap);
    char reason [1024] = "";
    self_t *self = s_self_new (pipe, config, reason, sizeof reason);
    zsock_signal (pipe, 0);
    if (!self) {
        umb_log_error (config->log, "agent did not start: %s", reason);
        zstr_sendx (pipe, "FAIL", reason, NULL);
        //  wait for $TERM
        char *command = zstr_recv (pipe);
        zstr_free (&command);
        OPENSSL_thread_stop ();
        return;
    }
    umb_log_info (self->log, "agent listening on %s, attestation on %s, key %s",
                  umb_service_endpoint (self->service), self->attest_endpoint,
                  zcert_public_txt (self->cert));
    zstr_sendx (pipe, "READY", umb_service_endpoint (self->service), self->attest_endpoint,
                zcert_public_txt (self->cert), NULL);
    umb_service_run (self->service, pipe);
    if (self->state == S_RUNNING)
        umb_log_info (self->log, "stopping: the running algorithm is killed");
    s_self_destroy (&self);
    //  this thread's random generators, before the process may end
    OPENSSL_thread_stop ();
}

//  ---------------------------------------------------------------- selftest


//  PEM as a JSON string body (newlines escaped)
static char *
s_test_json_pem (EVP_PKEY *key)
{
    char *pem = umb_sig_public_pem (key);
    assert (pem);
    char *json = malloc (strlen (pem) * 2 + 1);
    assert (json);
    char *out = json;
    for (const char *in = pem; *in; in++) {
        if (*in == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        }
        else
            *out++ = *in;
    }
    *out = 0;
    free (pem);
    return json;
}

static char *
s_test_hash_hex (const void *data, size_t size)
{
    uint8_t hash [32];
    umb_sig_sha3 (data, size, hash);
    char *hex = malloc (65);
    umb_hex_encode (hash, 32, hex);
    return hex;
}

static umb_reply_t *
s_test_call (umb_client_t *client, const char *op, umb_w_t **w_p)
{
    umb_reply_t *reply = umb_client_callw (client, op, NULL, w_p ? *w_p : NULL, 10000, NULL);
    if (w_p)
        umb_w_destroy (w_p);
    return reply;
}

static void
s_test_expect (umb_reply_t **reply_p, int status, const char *code)
{
    umb_reply_t *reply = *reply_p;
    if (umb_reply_status (reply) != status || (code && !(umb_reply_code (reply)
                                                        && streq (umb_reply_code (reply), code))))
        fprintf (stderr, "\nexpected %d %s, got %d %s: %s\n", status, code ? code : "",
                 umb_reply_status (reply), umb_reply_code (reply) ? umb_reply_code (reply) : "",
                 umb_reply_error (reply) ? umb_reply_error (reply) : "");
    assert (umb_reply_status (reply) == status);
    if (code)
        assert (umb_reply_code (reply) && streq (umb_reply_code (reply), code));
    umb_reply_destroy (reply_p);
}

static void
s_test_challenge (umb_client_t *client, uint8_t out [32])
{
    umb_reply_t *reply = s_test_call (client, "agent.challenge", NULL);
    assert (umb_reply_status (reply) == 200);
    size_t size = 0;
    const void *bytes = umb_msg_bin (umb_reply_body (reply), "challenge", 32, &size, true);
    assert (bytes && size == 32);
    assert (umb_msg_int (umb_reply_body (reply), "expires_in_ms", 1, INT64_MAX, 0, true) == 60000);
    memcpy (out, bytes, 32);
    umb_reply_destroy (&reply);
}

static char *
s_test_state (umb_client_t *client)
{
    umb_reply_t *reply = s_test_call (client, "agent.status", NULL);
    assert (umb_reply_status (reply) == 200);
    char *state = strdup (umb_msg_str (umb_reply_body (reply), "state", 64, true));
    umb_reply_destroy (&reply);
    return state;
}

static void
s_test_assert_state (umb_client_t *client, const char *expected)
{
    char *state = s_test_state (client);
    if (!streq (state, expected))
        fprintf (stderr, "\nexpected state %s, got %s\n", expected, state);
    assert (streq (state, expected));
    free (state);
}

//  agent.upload.begin; hash_of may differ from data (a lie), signer may be wrong
static umb_reply_t *
s_test_begin (umb_client_t *client, const char *role, const char *computation, const char *hash_hex,
              int64_t size, EVP_PKEY *signer, const uint8_t *challenge)
{
    uint8_t mine [32];
    if (!challenge) {
        s_test_challenge (client, mine);
        challenge = mine;
    }
    uint8_t hash [32];
    assert (umb_hex_decode (hash_hex, hash, 32) == 0);
    uint8_t statement [UMB_SIG_STATEMENT_MAX];
    ssize_t length = umb_sig_statement_upload (role, computation, hash, challenge, statement,
                                               sizeof statement);
    assert (length > 0);
    uint8_t *signature = NULL;
    size_t signature_size = 0;
    assert (umb_sig_sign (signer, statement, (size_t) length, &signature, &signature_size) == 0);
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "role", role);
    umb_w_kv_str (w, "computation", computation);
    umb_w_kv_str (w, "hash", hash_hex);
    umb_w_kv_int (w, "size", size);
    umb_w_key (w, "challenge");
    umb_w_bin (w, challenge, 32);
    umb_w_key (w, "signature");
    umb_w_bin (w, signature, signature_size);
    umb_w_map_end (w);
    free (signature);
    return s_test_call (client, "agent.upload.begin", &w);
}

static umb_reply_t *
s_test_chunk (umb_client_t *client, const char *upload, int64_t seq, const void *data, size_t size)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "upload", upload);
    umb_w_kv_int (w, "seq", seq);
    umb_w_key (w, "data");
    umb_w_bin (w, data, size);
    umb_w_map_end (w);
    return s_test_call (client, "agent.upload.chunk", &w);
}

static umb_reply_t *
s_test_end (umb_client_t *client, const char *upload, int64_t chunks)
{
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "upload", upload);
    umb_w_kv_int (w, "chunks", chunks);
    umb_w_map_end (w);
    return s_test_call (client, "agent.upload.end", &w);
}

//  A whole upload in chunks; returns the end reply
static umb_reply_t *
s_test_upload (umb_client_t *client, const char *role, const char *computation, const char *hash_hex,
               EVP_PKEY *signer, const void *data, size_t size)
{
    umb_reply_t *reply = s_test_begin (client, role, computation, hash_hex, (int64_t) size, signer, NULL);
    if (umb_reply_status (reply) != 200)
        return reply;
    char *upload = strdup (umb_msg_str (umb_reply_body (reply), "upload", 64, true));
    size_t chunk_size = (size_t) umb_msg_int (umb_reply_body (reply), "chunk_size", 1, INT64_MAX, 0, true);
    assert (umb_msg_int (umb_reply_body (reply), "credit", 1, 1000, 0, true) >= 1);
    umb_reply_destroy (&reply);
    int64_t seq = 0;
    for (size_t offset = 0; offset < size; offset += chunk_size, seq++) {
        size_t length = size - offset < chunk_size ? size - offset : chunk_size;
        reply = s_test_chunk (client, upload, seq, (const char *) data + offset, length);
        assert (umb_reply_status (reply) == 200);
        assert (umb_msg_int (umb_reply_body (reply), "seq", 0, INT64_MAX, -1, true) == seq);
        umb_reply_destroy (&reply);
    }
    reply = s_test_end (client, upload, seq);
    free (upload);
    return reply;
}

static umb_reply_t *
s_test_result_begin (umb_client_t *client, const char *computation, EVP_PKEY *signer, const char *pem)
{
    uint8_t challenge [32];
    s_test_challenge (client, challenge);
    uint8_t statement [UMB_SIG_STATEMENT_MAX];
    ssize_t length = umb_sig_statement_result (computation, challenge, statement, sizeof statement);
    uint8_t *signature = NULL;
    size_t signature_size = 0;
    assert (umb_sig_sign (signer, statement, (size_t) length, &signature, &signature_size) == 0);
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "computation", computation);
    umb_w_key (w, "challenge");
    umb_w_bin (w, challenge, 32);
    umb_w_key (w, "signature");
    umb_w_bin (w, signature, signature_size);
    umb_w_kv_str (w, "key", pem);
    umb_w_map_end (w);
    free (signature);
    return s_test_call (client, "agent.result.begin", &w);
}

//  Fetches the result as consumer; writes it to path; returns the end reply's state
static char *
s_test_fetch (umb_client_t *client, const char *computation, EVP_PKEY *signer, const char *pem,
              const char *path, bool confirm_early)
{
    umb_reply_t *reply = s_test_result_begin (client, computation, signer, pem);
    assert (umb_reply_status (reply) == 200);
    umb_msg_t *body = umb_reply_body (reply);
    char *download = strdup (umb_msg_str (body, "download", 64, true));
    int64_t size = umb_msg_int (body, "size", 1, INT64_MAX, 0, true);
    int64_t chunk_size = umb_msg_int (body, "chunk_size", 1, INT64_MAX, 0, true);
    char *hash = strdup (umb_msg_str (body, "hash", 64, true));
    umb_reply_destroy (&reply);
    umb_w_t *w;
    if (confirm_early) {
        //  confirming before every chunk was served is refused
        w = umb_w_new ();
        umb_w_map_begin (w);
        umb_w_kv_str (w, "download", download);
        umb_w_map_end (w);
        reply = s_test_call (client, "agent.result.end", &w);
        s_test_expect (&reply, 409, "out_of_order");
    }
    FILE *file = fopen (path, "wb");
    assert (file);
    int64_t chunks = (size + chunk_size - 1) / chunk_size;
    umb_sig_sha3_t *sha3 = umb_sig_sha3_new ();
    for (int64_t seq = 0; seq < chunks; seq++) {
        w = umb_w_new ();
        umb_w_map_begin (w);
        umb_w_kv_str (w, "download", download);
        umb_w_kv_int (w, "seq", seq);
        umb_w_map_end (w);
        reply = s_test_call (client, "agent.result.chunk", &w);
        assert (umb_reply_status (reply) == 200);
        size_t length = 0;
        const void *data = umb_msg_bin (umb_reply_body (reply), "data", SIZE_MAX, &length, true);
        assert (data && (seq == chunks - 1 || (int64_t) length == chunk_size));
        assert (fwrite (data, 1, length, file) == length);
        umb_sig_sha3_update (sha3, data, length);
        umb_reply_destroy (&reply);
    }
    fclose (file);
    uint8_t digest [32];
    char hex [65];
    umb_sig_sha3_final (sha3, digest);
    umb_sig_sha3_destroy (&sha3);
    umb_hex_encode (digest, 32, hex);
    assert (streq (hex, hash));
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "download", download);
    umb_w_kv_int (w, "seq", chunks);
    umb_w_map_end (w);
    reply = s_test_call (client, "agent.result.chunk", &w);
    s_test_expect (&reply, 400, "bad_request");
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "download", download);
    umb_w_map_end (w);
    reply = s_test_call (client, "agent.result.end", &w);
    assert (umb_reply_status (reply) == 200);
    char *state = strdup (umb_msg_str (umb_reply_body (reply), "state", 64, true));
    umb_reply_destroy (&reply);
    free (download);
    free (hash);
    return state;
}

//  Pulls events as control until a state event names one of the final
//  states (or the wanted one); returns that state. Collects log messages.
static char *
s_test_wait_state (umb_client_t *control, uint64_t *after, const char *wanted, char *logs,
                   size_t logs_size)
{
    int64_t deadline = zclock_mono () + 60000;
    while (zclock_mono () < deadline) {
        umb_w_t *w = umb_w_new ();
        umb_w_map_begin (w);
        umb_w_kv_int (w, "after", (int64_t) *after);
        umb_w_kv_int (w, "max", 50);
        umb_w_kv_int (w, "wait_ms", 2000);
        umb_w_map_end (w);
        umb_reply_t *reply = s_test_call (control, "agent.events.pull", &w);
        assert (umb_reply_status (reply) == 200);
        umb_msg_t *events = umb_msg_array (umb_reply_body (reply), "events", 1000, true);
        assert (events);
        char *found = NULL;
        for (size_t i = 0; i < umb_msg_size (events); i++) {
            umb_msg_t *event = umb_msg_at (events, i);
            uint64_t seq = (uint64_t) umb_msg_int (event, "seq", 1, INT64_MAX, 0, true);
            assert (seq == *after + 1);         //  none lost, none repeated
            *after = seq;
            const char *type = umb_msg_str (event, "type", 16, true);
            const char *state = umb_msg_str (event, "state", 64, true);
            const char *message = umb_msg_str (event, "message", 8192, true);
            assert (type && state && message);
            if (streq (type, "log") && logs
            &&  strlen (logs) + strlen (message) + 2 < logs_size) {
                strcat (logs, message);
                strcat (logs, "\n");
            }
            if (streq (type, "state") && !found
            &&  (streq (state, wanted) || streq (state, "Failed") || streq (state, "Stopped")
                 || streq (state, "Complete")))
                found = strdup (state);
        }
        umb_reply_destroy (&reply);
        if (found)
            return found;
    }
    fprintf (stderr, "\nthe state %s never came\n", wanted);
    abort ();
}

static void
s_test_attestation (const char *endpoint, const char *agent_key)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_rcvtimeo (dealer, 5000);
    zsock_set_linger (dealer, 0);
    assert (zsock_connect (dealer, "%s", endpoint) == 0);
    uint8_t nonce [48];
    RAND_bytes (nonce, sizeof nonce);
    for (int round = 0; round < 3; round++) {
        umb_w_t *header = umb_w_new ();
        umb_envelope_write_request (header, "att-1",
                                    round == 1 ? "agent.status" : "agent.attestation", NULL, 5000);
        umb_w_t *body = umb_w_new ();
        umb_w_map_begin (body);
        umb_w_key (body, "nonce");
        umb_w_bin (body, nonce, round == 2 ? 16 : sizeof nonce);
        umb_w_map_end (body);
        size_t header_size, body_size;
        const void *header_data = umb_w_data (header, &header_size);
        const void *body_data = umb_w_data (body, &body_size);
        zmsg_t *msg = zmsg_new ();
        zmsg_addmem (msg, header_data, header_size);
        zmsg_addmem (msg, body_data, body_size);
        zmsg_send (&msg, dealer);
        umb_w_destroy (&header);
        umb_w_destroy (&body);
        zmsg_t *reply = zmsg_recv (dealer);
        assert (reply && zmsg_size (reply) == 2);
        zframe_t *frame = zmsg_first (reply);
        char *error = NULL;
        umb_envelope_t *envelope = umb_envelope_decode (zframe_data (frame), zframe_size (frame),
                                                        true, &error, NULL);
        assert (envelope && streq (umb_envelope_id (envelope), "att-1"));
        frame = zmsg_next (reply);
        umb_msg_t *decoded = umb_msg_decode (zframe_data (frame), zframe_size (frame), &error);
        assert (decoded);
        if (round == 0) {
            assert (umb_envelope_status (envelope) == 200);
            assert (streq (umb_msg_str (decoded, "platform", 8, true), "none"));
            assert (umb_msg_bool (decoded, "insecure", false, true));
            assert (streq (umb_msg_str (decoded, "agent_key", 40, true), agent_key));
            size_t size = 0;
            const void *echoed = umb_msg_bin (decoded, "nonce", 64, &size, true);
            assert (size == sizeof nonce && memcmp (echoed, nonce, size) == 0);
            const uint8_t *report_data = umb_msg_bin (decoded, "report_data", 64, &size, true);
            assert (report_data && size == 64);
            uint8_t key [32], expect [64];
            assert (zmq_z85_decode (key, agent_key));
            EVP_MD_CTX *md = EVP_MD_CTX_new ();
            EVP_DigestInit_ex (md, EVP_sha512 (), NULL);
            EVP_DigestUpdate (md, "umbra-attest-v1", 15);
            EVP_DigestUpdate (md, key, 32);
            EVP_DigestUpdate (md, nonce, sizeof nonce);
            EVP_DigestFinal_ex (md, expect, NULL);
            EVP_MD_CTX_free (md);
            assert (memcmp (report_data, expect, 64) == 0);
            umb_msg_bin (decoded, "evidence", 65536, &size, true);
            assert (size == 0 && !umb_msg_failed (decoded));
        }
        else
        if (round == 1)
            assert (umb_envelope_status (envelope) == 404);
        else
            assert (umb_envelope_status (envelope) == 400);
        umb_msg_destroy (&decoded);
        umb_envelope_destroy (&envelope);
        zmsg_destroy (&reply);
        free (error);
    }
    zsock_destroy (&dealer);
}

static char *
s_test_manifest (const char *id, const char *type, const char *algo_hash, EVP_PKEY *algo_key,
                 const char *datasets_json, const char *consumers_json, int timeout_s)
{
    char *algo_pem = s_test_json_pem (algo_key);
    char *json = NULL;
    int rc = asprintf (&json,
        "{\"id\": \"%s\", \"name\": \"selftest\","
        " \"algorithm\": {\"hash\": \"%s\", \"userKey\": \"%s\", \"type\": \"%s\"},"
        " \"datasets\": [%s], \"result_consumers\": [%s], \"run_timeout_s\": %d,"
        " \"limits\": {\"memory_mb\": 256, \"results_mb\": 4}}",
        id, algo_hash, algo_pem, type, datasets_json, consumers_json, timeout_s);
    assert (rc > 0);
    free (algo_pem);
    return json;
}

static zactor_t *
s_test_start (umb_agent_config_t *config, char **endpoint, char **attest, char **key)
{
    zactor_t *agent = zactor_new (umb_agent_actor, config);
    assert (agent);
    char *status = NULL;
    assert (zstr_recvx (agent, &status, endpoint, attest, key, NULL) == 4);
    if (!streq (status, "READY"))
        fprintf (stderr, "\nagent: %s\n", *endpoint);
    assert (streq (status, "READY"));
    zstr_free (&status);
    return agent;
}

static void
s_test_rmtree_dir (const char *dir)
{
    s_rmtree (dir);
    assert (access (dir, F_OK) == -1);
}

void
umb_agent_test (bool verbose)
{
    printf (" * umb_agent: ");
    fflush (stdout);
    umb_zap_t *zap = umb_zap_new (NULL);
    assert (zap);
    char dir [] = "/tmp/umb_agent_test.XXXXXX";
    assert (mkdtemp (dir));
    char workdir [4096], path [4096], command [20000];
    snprintf (workdir, sizeof workdir, "%s/work", dir);

    EVP_PKEY *algo_key = umb_sig_key_generate ("ed25519");
    EVP_PKEY *data_key = umb_sig_key_generate ("ecdsa-p256");
    EVP_PKEY *consumer_a = umb_sig_key_generate ("ed25519");
    EVP_PKEY *consumer_b = umb_sig_key_generate ("ed25519");
    EVP_PKEY *stranger = umb_sig_key_generate ("ed25519");
    assert (algo_key && data_key && consumer_a && consumer_b && stranger);
    char *pem_a = umb_sig_public_pem (consumer_a);
    char *pem_b = umb_sig_public_pem (consumer_b);
    char *pem_stranger = umb_sig_public_pem (stranger);
    char *json_data = s_test_json_pem (data_key);
    char *json_a = s_test_json_pem (consumer_a);
    char *json_b = s_test_json_pem (consumer_b);

    //  The assets: a /bin/sh algorithm, a CSV and a tar.gz to unpack
    const char algorithm [] =
        "#!/bin/sh\n"
        "echo hello from the algorithm\n"
        "echo to stderr >&2\n"
        "wc -c < datasets/data.csv > results/count.txt\n"
        "cat datasets/bundle/x/y.txt > results/y.txt\n"
        "mkdir results/deep && echo deep > results/deep/z.txt\n";
    const char csv [] = "a,b\n1,2\n3,4\n";
    snprintf (command, sizeof command,
              "cd %s && mkdir -p src/x && echo inside the bundle > src/x/y.txt"
              " && tar -C src -czf bundle.tgz . && rm -rf src", dir);
    assert (system (command) == 0);
    snprintf (path, sizeof path, "%s/bundle.tgz", dir);
    zchunk_t *bundle = zchunk_slurp (path, 0);
    assert (bundle);
    char *algo_hash = s_test_hash_hex (algorithm, strlen (algorithm));
    char *csv_hash = s_test_hash_hex (csv, strlen (csv));
    char *bundle_hash = s_test_hash_hex (zchunk_data (bundle), zchunk_size (bundle));
    char datasets [8192], consumers [4096];
    snprintf (datasets, sizeof datasets,
              "{\"hash\": \"%s\", \"userKey\": \"%s\", \"filename\": \"data.csv\"},"
              "{\"hash\": \"%s\", \"userKey\": \"%s\", \"filename\": \"bundle\", \"decompress\": true}",
              csv_hash, json_data, bundle_hash, json_data);
    //  consumer A twice: two distinct keys must confirm
    snprintf (consumers, sizeof consumers, "{\"userKey\": \"%s\"}, {\"userKey\": \"%s\"}, {\"userKey\": \"%s\"}",
              json_a, json_b, json_a);
    char *manifest = s_test_manifest ("comp-1", "bin", algo_hash, algo_key, datasets, consumers, 60);

    //  ------------------------------------------------ the agent, Idle at start
    zcert_t *control_cert = zcert_new ();
    zcert_t *participant_cert = zcert_new ();
    umb_agent_config_t config = {
        .endpoint = "tcp://127.0.0.1:*", .workdir = workdir, .attestation = "none",
        .control_key = zcert_public_txt (control_cert), .zap = zap, .chunk_size = 4096,
        .credit = 4
    };
    char *endpoint = NULL, *attest = NULL, *key = NULL;
    zactor_t *agent = s_test_start (&config, &endpoint, &attest, &key);
    assert (strlen (key) == 40);
    s_test_attestation (attest, key);
    umb_client_t *control = umb_client_new (endpoint, key, control_cert);
    umb_client_t *client = umb_client_new (endpoint, key, participant_cert);
    assert (control && client);
    umb_client_set_attempts (client, 1);
    umb_client_set_attempts (control, 1);
    s_test_assert_state (client, "Idle");

    //  Control operations are for the control key only
    umb_w_t *w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "manifest", manifest);
    umb_w_map_end (w);
    umb_reply_t *reply = s_test_call (client, "agent.control.manifest", &w);
    s_test_expect (&reply, 403, NULL);
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_int (w, "after", 0);
    umb_w_map_end (w);
    reply = s_test_call (client, "agent.events.pull", &w);
    s_test_expect (&reply, 403, NULL);

    //  An invalid manifest leaves Idle with the reason
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "manifest", "{\"id\": 3}");
    umb_w_map_end (w);
    reply = s_test_call (control, "agent.control.manifest", &w);
    s_test_expect (&reply, 422, "bad_manifest");
    reply = s_test_call (client, "agent.status", NULL);
    assert (streq (umb_msg_str (umb_reply_body (reply), "state", 64, true), "Idle"));
    assert (strstr (umb_msg_str (umb_reply_body (reply), "reason", 1024, true), "invalid manifest"));
    umb_reply_destroy (&reply);
    //  A result before any manifest
    reply = s_test_result_begin (client, "comp-1", consumer_a, pem_a);
    s_test_expect (&reply, 409, "not_ready");

    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "manifest", manifest);
    umb_w_map_end (w);
    reply = s_test_call (control, "agent.control.manifest", &w);
    assert (streq (umb_msg_str (umb_reply_body (reply), "state", 64, true), "ReceivingAlgorithm"));
    s_test_expect (&reply, 200, NULL);
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "manifest", manifest);
    umb_w_map_end (w);
    reply = s_test_call (control, "agent.control.manifest", &w);
    s_test_expect (&reply, 409, "wrong_state");

    //  ------------------------------------------------ refusals leave the state unchanged
    reply = s_test_upload (client, "dataset", "comp-1", csv_hash, data_key, csv, strlen (csv));
    s_test_expect (&reply, 409, "wrong_state");
    reply = s_test_result_begin (client, "comp-1", consumer_a, pem_a);
    s_test_expect (&reply, 409, "not_ready");
    reply = s_test_result_begin (client, "comp-1", stranger, pem_stranger);
    s_test_expect (&reply, 403, "not_a_consumer");
    //  wrong signer
    reply = s_test_begin (client, "algorithm", "comp-1", algo_hash, (int64_t) strlen (algorithm),
                          data_key, NULL);
    s_test_expect (&reply, 403, "bad_signature");
    //  a replayed challenge: spent by the first request, valid or not
    uint8_t challenge [32];
    s_test_challenge (client, challenge);
    reply = s_test_begin (client, "algorithm", "comp-1", algo_hash, (int64_t) strlen (algorithm),
                          stranger, challenge);
    s_test_expect (&reply, 403, "bad_signature");
    reply = s_test_begin (client, "algorithm", "comp-1", algo_hash, (int64_t) strlen (algorithm),
                          algo_key, challenge);
    s_test_expect (&reply, 403, "bad_challenge");
    uint8_t made_up [32] = { 1, 2, 3 };
    reply = s_test_begin (client, "algorithm", "comp-1", algo_hash, (int64_t) strlen (algorithm),
                          algo_key, made_up);
    s_test_expect (&reply, 403, "bad_challenge");
    //  another computation, another asset
    reply = s_test_begin (client, "algorithm", "comp-2", algo_hash, (int64_t) strlen (algorithm),
                          algo_key, NULL);
    s_test_expect (&reply, 403, "forbidden");
    reply = s_test_begin (client, "algorithm", "comp-1", csv_hash, (int64_t) strlen (csv), algo_key, NULL);
    s_test_expect (&reply, 404, "unknown_asset");
    //  wrong hash: the bytes are not the manifest's
    char forged [sizeof algorithm];
    memcpy (forged, algorithm, sizeof algorithm);
    forged [3] = 'X';
    reply = s_test_upload (client, "algorithm", "comp-1", algo_hash, algo_key, forged, strlen (forged));
    s_test_expect (&reply, 422, "hash_mismatch");
    s_test_assert_state (client, "ReceivingAlgorithm");
    //  out of order: the upload is aborted
    reply = s_test_begin (client, "algorithm", "comp-1", algo_hash, (int64_t) strlen (algorithm),
                          algo_key, NULL);
    assert (umb_reply_status (reply) == 200);
    char *upload = strdup (umb_msg_str (umb_reply_body (reply), "upload", 64, true));
    umb_reply_destroy (&reply);
    reply = s_test_chunk (client, upload, 1, algorithm, 10);
    s_test_expect (&reply, 409, "out_of_order");
    reply = s_test_chunk (client, upload, 0, algorithm, 10);
    s_test_expect (&reply, 404, "unknown_upload");
    free (upload);
    //  too large: more than announced
    reply = s_test_begin (client, "algorithm", "comp-1", algo_hash, 5, algo_key, NULL);
    assert (umb_reply_status (reply) == 200);
    upload = strdup (umb_msg_str (umb_reply_body (reply), "upload", 64, true));
    umb_reply_destroy (&reply);
    reply = s_test_chunk (client, upload, 0, algorithm, 6);
    s_test_expect (&reply, 413, "too_large");
    free (upload);
    //  one upload at a time; abort frees the slot
    reply = s_test_begin (client, "algorithm", "comp-1", algo_hash, (int64_t) strlen (algorithm),
                          algo_key, NULL);
    upload = strdup (umb_msg_str (umb_reply_body (reply), "upload", 64, true));
    umb_reply_destroy (&reply);
    reply = s_test_begin (client, "algorithm", "comp-1", algo_hash, (int64_t) strlen (algorithm),
                          algo_key, NULL);
    s_test_expect (&reply, 409, "busy");
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "upload", upload);
    umb_w_map_end (w);
    reply = s_test_call (client, "agent.upload.abort", &w);
    s_test_expect (&reply, 200, NULL);
    free (upload);
    s_test_assert_state (client, "ReceivingAlgorithm");
    //  nothing of the refused uploads is left behind
    snprintf (command, sizeof command, "test -z \"$(ls -A %s/uploads)\"", workdir);
    assert (system (command) == 0);

    //  ------------------------------------------------ the real uploads
    reply = s_test_upload (client, "algorithm", "comp-1", algo_hash, algo_key, algorithm,
                           strlen (algorithm));
    assert (streq (umb_msg_str (umb_reply_body (reply), "state", 64, true), "ReceivingData"));
    assert (streq (umb_msg_str (umb_reply_body (reply), "hash", 64, true), algo_hash));
    s_test_expect (&reply, 200, NULL);
    reply = s_test_upload (client, "dataset", "comp-1", csv_hash, data_key, csv, strlen (csv));
    assert (streq (umb_msg_str (umb_reply_body (reply), "state", 64, true), "ReceivingData"));
    s_test_expect (&reply, 200, NULL);
    reply = s_test_upload (client, "dataset", "comp-1", csv_hash, data_key, csv, strlen (csv));
    s_test_expect (&reply, 409, "duplicate");
    reply = s_test_call (client, "agent.status", NULL);
    umb_msg_t *list = umb_msg_array (umb_reply_body (reply), "datasets", 10, true);
    assert (list && umb_msg_size (list) == 2);
    assert (umb_msg_bool (umb_msg_at (list, 0), "received", false, true));
    assert (!umb_msg_bool (umb_msg_at (list, 1), "received", true, true));
    umb_reply_destroy (&reply);
    //  the tar.gz is unpacked because the manifest says so; then the run starts
    reply = s_test_upload (client, "dataset", "comp-1", bundle_hash, data_key, zchunk_data (bundle),
                           zchunk_size (bundle));
    const char *after_upload = umb_msg_str (umb_reply_body (reply), "state", 64, true);
    assert (streq (after_upload, "Running") || streq (after_upload, "ConsumingResults")
            || streq (after_upload, "Failed"));
    s_test_expect (&reply, 200, NULL);

    uint64_t after = 0;
    char logs [16384] = "";
    char *state = s_test_wait_state (control, &after, "ConsumingResults", logs, sizeof logs);
    if (!streq (state, "ConsumingResults")) {
        reply = s_test_call (client, "agent.status", NULL);
        const char *why = umb_msg_str (umb_reply_body (reply), "reason", 1024, false);
        fprintf (stderr, "\nrun ended %s: %s\nlogs:\n%s", state, why ? why : "-", logs);
        umb_reply_destroy (&reply);
    }
    assert (streq (state, "ConsumingResults"));
    free (state);
    assert (strstr (logs, "stdout: hello from the algorithm\n"));
    assert (strstr (logs, "stderr: to stderr\n"));

    //  ------------------------------------------------ results
    reply = s_test_result_begin (client, "comp-1", stranger, pem_stranger);
    s_test_expect (&reply, 403, "not_a_consumer");
    reply = s_test_result_begin (client, "comp-1", consumer_b, pem_a);
    s_test_expect (&reply, 403, "bad_signature");
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "download", "nope");
    umb_w_kv_int (w, "seq", 0);
    umb_w_map_end (w);
    reply = s_test_call (client, "agent.result.chunk", &w);
    s_test_expect (&reply, 404, "unknown_download");
    char tar_path [4200];
    snprintf (tar_path, sizeof tar_path, "%s/fetched.tar", dir);
    state = s_test_fetch (client, "comp-1", consumer_a, pem_a, tar_path, true);
    assert (streq (state, "ConsumingResults"));
    free (state);
    snprintf (command, sizeof command,
              "test \"$(tar -xOf %s ./count.txt)\" = %zu && test \"$(tar -xOf %s ./y.txt)\" = 'inside the bundle'"
              " && test \"$(tar -xOf %s ./deep/z.txt)\" = deep", tar_path, strlen (csv), tar_path, tar_path);
    assert (system (command) == 0);
    reply = s_test_call (client, "agent.status", NULL);
    list = umb_msg_array (umb_reply_body (reply), "consumers", 10, true);
    assert (list && umb_msg_size (list) == 3);
    assert (umb_msg_bool (umb_msg_at (list, 0), "fetched", false, true));
    assert (!umb_msg_bool (umb_msg_at (list, 1), "fetched", true, true));
    assert (umb_msg_bool (umb_msg_at (list, 2), "fetched", false, true));
    umb_reply_destroy (&reply);
    //  the second distinct consumer completes the computation
    state = s_test_fetch (client, "comp-1", consumer_b, pem_b, tar_path, false);
    assert (streq (state, "Complete"));
    free (state);
    //  a consumer may fetch again; Complete is final
    state = s_test_fetch (client, "comp-1", consumer_a, pem_a, tar_path, false);
    assert (streq (state, "Complete"));
    free (state);
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "reason", "too late");
    umb_w_map_end (w);
    reply = s_test_call (control, "agent.control.stop", &w);
    s_test_expect (&reply, 409, "wrong_state");
    state = s_test_wait_state (control, &after, "Complete", NULL, 0);
    assert (streq (state, "Complete"));
    free (state);
    //  acknowledged events are gone from disk
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_int (w, "after", (int64_t) after);
    umb_w_map_end (w);
    reply = s_test_call (control, "agent.events.pull", &w);
    assert (umb_msg_size (umb_msg_array (umb_reply_body (reply), "events", 100, true)) == 0);
    assert ((uint64_t) umb_msg_int (umb_reply_body (reply), "last", 0, INT64_MAX, 0, true) == after);
    s_test_expect (&reply, 200, NULL);
    snprintf (command, sizeof command, "test -z \"$(ls %s/events | grep '\\.ev$')\"", workdir);
    assert (system (command) == 0);

    umb_client_destroy (&client);
    umb_client_destroy (&control);
    zactor_destroy (&agent);
    zstr_free (&endpoint);
    zstr_free (&attest);
    zstr_free (&key);
    s_test_rmtree_dir (workdir);

    //  ------------------------------------------------ a python algorithm that fails
    const char script [] =
        "import sys\n"
        "print('python says', sys.argv[1:] if len(sys.argv) > 1 else 'hi', flush=True)\n"
        "raise SystemExit(3)\n";
    char *script_hash = s_test_hash_hex (script, strlen (script));
    free (manifest);
    manifest = s_test_manifest ("comp-py", "python", script_hash, algo_key, "", consumers, 60);
    config.manifest_json = manifest;
    config.exit_when_done = true;
    agent = s_test_start (&config, &endpoint, &attest, &key);
    control = umb_client_new (endpoint, key, control_cert);
    client = umb_client_new (endpoint, key, participant_cert);
    umb_client_set_attempts (client, 1);
    s_test_assert_state (client, "ReceivingAlgorithm");
    //  with no datasets the algorithm goes straight to Running
    reply = s_test_upload (client, "algorithm", "comp-py", script_hash, algo_key, script, strlen (script));
    s_test_expect (&reply, 200, NULL);
    after = 0;
    *logs = 0;
    state = s_test_wait_state (control, &after, "Failed", logs, sizeof logs);
    assert (streq (state, "Failed"));
    free (state);
    assert (strstr (logs, "stdout: python says hi\n"));
    reply = s_test_call (client, "agent.status", NULL);
    assert (strstr (umb_msg_str (umb_reply_body (reply), "reason", 1024, true), "exit status 3"));
    umb_reply_destroy (&reply);
    reply = s_test_result_begin (client, "comp-py", consumer_a, pem_a);
    s_test_expect (&reply, 409, "failed");
    //  exit_when_done: the actor says so
    char *done = NULL, *final = NULL;
    assert (zstr_recvx (agent, &done, &final, NULL) == 2);
    assert (streq (done, "DONE") && streq (final, "Failed"));
    zstr_free (&done);
    zstr_free (&final);
    umb_client_destroy (&client);
    umb_client_destroy (&control);
    zactor_destroy (&agent);
    zstr_free (&endpoint);
    zstr_free (&attest);
    zstr_free (&key);
    s_test_rmtree_dir (workdir);

    //  ------------------------------------------------ python with requirements (wheels, pip)
    if (access ("/usr/bin/python3", X_OK) == 0) {
        static const char s_make_tar [] =
            "import base64, hashlib, io, sys, tarfile, zipfile\n"
            "def rec(name, data):\n"
            "    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()\n"
            "    return '%s,sha256=%s,%d' % (name, h, len(data))\n"
            "files = {'umbtoy/__init__.py': b'VALUE = 42\\n',\n"
            "         'umbtoy-1.0.dist-info/METADATA': b'Metadata-Version: 2.1\\nName: umbtoy\\nVersion: 1.0\\n',\n"
            "         'umbtoy-1.0.dist-info/WHEEL': b'Wheel-Version: 1.0\\nGenerator: selftest\\n"
            "Root-Is-Purelib: true\\nTag: py3-none-any\\n'}\n"
            "record = '\\n'.join(rec(n, d) for n, d in files.items()) + '\\numbtoy-1.0.dist-info/RECORD,,\\n'\n"
            "wheel = io.BytesIO()\n"
            "with zipfile.ZipFile(wheel, 'w') as z:\n"
            "    for n, d in files.items():\n"
            "        z.writestr(n, d)\n"
            "    z.writestr('umbtoy-1.0.dist-info/RECORD', record)\n"
            "main = b\"import umbtoy\\nprint('toy', umbtoy.VALUE, flush=True)\\n"
            "open('results/value.txt', 'w').write(str(umbtoy.VALUE))\\n\"\n"
            "with tarfile.open(sys.argv[1], 'w', format=tarfile.USTAR_FORMAT) as t:\n"
            "    for n, d in (('main.py', main), ('requirements.txt', b'umbtoy==1.0\\n'),\n"
            "                 ('wheels/umbtoy-1.0-py3-none-any.whl', wheel.getvalue())):\n"
            "        info = tarfile.TarInfo(n); info.size = len(d); info.mode = 0o644\n"
            "        t.addfile(info, io.BytesIO(d))\n";
        snprintf (path, sizeof path, "%s/make_tar.py", dir);
        FILE *file = fopen (path, "w");
        assert (file);
        fputs (s_make_tar, file);
        fclose (file);
        snprintf (command, sizeof command, "cd %s && /usr/bin/python3 make_tar.py algo.tar", dir);
        assert (system (command) == 0);
        snprintf (path, sizeof path, "%s/algo.tar", dir);
        zchunk_t *tar = zchunk_slurp (path, 0);
        assert (tar);
        char *tar_hash = s_test_hash_hex (zchunk_data (tar), zchunk_size (tar));
        char *algo_pem = s_test_json_pem (algo_key);
        free (manifest);
        int rc = asprintf (&manifest,
            "{\"id\": \"comp-req\", \"algorithm\": {\"hash\": \"%s\", \"userKey\": \"%s\","
            " \"type\": \"python\", \"requirements\": true}, \"datasets\": [],"
            " \"result_consumers\": [%s], \"run_timeout_s\": 120, \"limits\": {\"memory_mb\": 1024}}",
            tar_hash, algo_pem, consumers);
        assert (rc > 0);
        free (algo_pem);
        config.manifest_json = manifest;
        agent = s_test_start (&config, &endpoint, &attest, &key);
        control = umb_client_new (endpoint, key, control_cert);
        client = umb_client_new (endpoint, key, participant_cert);
        umb_client_set_attempts (client, 1);
        reply = s_test_upload (client, "algorithm", "comp-req", tar_hash, algo_key, zchunk_data (tar),
                               zchunk_size (tar));
        s_test_expect (&reply, 200, NULL);
        after = 0;
        *logs = 0;
        state = s_test_wait_state (control, &after, "ConsumingResults", logs, sizeof logs);
        bool has_pip = system ("/usr/bin/python3 -m pip --version >/dev/null 2>&1") == 0;
        reply = s_test_call (client, "agent.status", NULL);
        const char *why = umb_msg_str (umb_reply_body (reply), "reason", 1024, false);
        if (has_pip) {
            if (!streq (state, "ConsumingResults"))
                fprintf (stderr, "\nrequirements run: %s: %s\n%s", state, why ? why : "", logs);
            assert (streq (state, "ConsumingResults"));
            assert (strstr (logs, "stdout: toy 42\n"));
        }
        else {
            assert (streq (state, "Failed"));
            assert (why && strstr (why, "pip is absent"));
        }
        umb_reply_destroy (&reply);
        free (state);
        umb_client_destroy (&client);
        umb_client_destroy (&control);
        zactor_destroy (&agent);
        zstr_free (&endpoint);
        zstr_free (&attest);
        zstr_free (&key);
        s_test_rmtree_dir (workdir);
        free (tar_hash);
        zchunk_destroy (&tar);
    }

    //  ------------------------------------------------ stop kills a running algorithm
    const char sleeper [] = "#!/bin/sh\necho sleeping\nexec sleep 60\n";
    char *sleeper_hash = s_test_hash_hex (sleeper, strlen (sleeper));
    free (manifest);
    manifest = s_test_manifest ("comp-stop", "bin", sleeper_hash, algo_key, "", consumers, 120);
    config.manifest_json = manifest;
    config.exit_when_done = false;
    agent = s_test_start (&config, &endpoint, &attest, &key);
    control = umb_client_new (endpoint, key, control_cert);
    client = umb_client_new (endpoint, key, participant_cert);
    umb_client_set_attempts (client, 1);
    reply = s_test_upload (client, "algorithm", "comp-stop", sleeper_hash, algo_key, sleeper,
                           strlen (sleeper));
    s_test_expect (&reply, 200, NULL);
    after = 0;
    *logs = 0;
    //  wait for its first line, so it surely runs
    int64_t deadline = zclock_mono () + 30000;
    while (!strstr (logs, "stdout: sleeping") && zclock_mono () < deadline) {
        w = umb_w_new ();
        umb_w_map_begin (w);
        umb_w_kv_int (w, "after", (int64_t) after);
        umb_w_kv_int (w, "wait_ms", 1000);
        umb_w_map_end (w);
        reply = s_test_call (control, "agent.events.pull", &w);
        umb_msg_t *events = umb_msg_array (umb_reply_body (reply), "events", 1000, true);
        for (size_t i = 0; events && i < umb_msg_size (events); i++) {
            umb_msg_t *event = umb_msg_at (events, i);
            after = (uint64_t) umb_msg_int (event, "seq", 1, INT64_MAX, 0, true);
            const char *message = umb_msg_str (event, "message", 8192, true);
            if (strlen (logs) + strlen (message) + 2 < sizeof logs) {
                strcat (logs, message);
                strcat (logs, "\n");
            }
        }
        umb_reply_destroy (&reply);
    }
    assert (strstr (logs, "stdout: sleeping"));
    s_test_assert_state (client, "Running");
    int64_t started = zclock_mono ();
    w = umb_w_new ();
    umb_w_map_begin (w);
    umb_w_kv_str (w, "reason", "operator");
    umb_w_map_end (w);
    reply = s_test_call (control, "agent.control.stop", &w);
    assert (streq (umb_msg_str (umb_reply_body (reply), "state", 64, true), "Stopped"));
    s_test_expect (&reply, 200, NULL);
    assert (zclock_mono () - started < 10000);
    reply = s_test_call (client, "agent.status", NULL);
    assert (strstr (umb_msg_str (umb_reply_body (reply), "reason", 1024, true), "operator"));
    umb_reply_destroy (&reply);
    reply = s_test_begin (client, "algorithm", "comp-stop", sleeper_hash, 3, algo_key, NULL);
    s_test_expect (&reply, 409, "wrong_state");
    umb_client_destroy (&client);
    umb_client_destroy (&control);
    zactor_destroy (&agent);
    zstr_free (&endpoint);
    zstr_free (&attest);
    zstr_free (&key);

    s_test_rmtree_dir (workdir);

    //  ------------------------------------------------ a timeout is Failed with the reason
    free (manifest);
    manifest = s_test_manifest ("comp-slow", "bin", sleeper_hash, algo_key, "", consumers, 1);
    config.manifest_json = manifest;
    agent = s_test_start (&config, &endpoint, &attest, &key);
    control = umb_client_new (endpoint, key, control_cert);
    client = umb_client_new (endpoint, key, participant_cert);
    umb_client_set_attempts (client, 1);
    reply = s_test_upload (client, "algorithm", "comp-slow", sleeper_hash, algo_key, sleeper,
                           strlen (sleeper));
    s_test_expect (&reply, 200, NULL);
    after = 0;
    state = s_test_wait_state (control, &after, "Failed", NULL, 0);
    assert (streq (state, "Failed"));
    free (state);
    reply = s_test_call (client, "agent.status", NULL);
    assert (strstr (umb_msg_str (umb_reply_body (reply), "reason", 1024, true), "timeout"));
    umb_reply_destroy (&reply);
    umb_client_destroy (&client);
    umb_client_destroy (&control);
    zactor_destroy (&agent);
    zstr_free (&endpoint);
    zstr_free (&attest);
    zstr_free (&key);
    s_test_rmtree_dir (workdir);

    //  A bad manifest at start is refused with the reason
    config.manifest_json = "{\"id\": \"x\"}";
    agent = zactor_new (umb_agent_actor, &config);
    char *status = NULL, *why = NULL;
    assert (zstr_recvx (agent, &status, &why, NULL) == 2);
    assert (streq (status, "FAIL") && strlen (why) > 0);
    zstr_free (&status);
    zstr_free (&why);
    zactor_destroy (&agent);

    s_test_rmtree_dir (dir);
    free (manifest);
    free (script_hash);
    free (sleeper_hash);
    free (algo_hash);
    free (csv_hash);
    free (bundle_hash);
    free (json_data);
    free (json_a);
    free (json_b);
    free (pem_a);
    free (pem_b);
    free (pem_stranger);
    zchunk_destroy (&bundle);
    EVP_PKEY_free (algo_key);
    EVP_PKEY_free (data_key);
    EVP_PKEY_free (consumer_a);
    EVP_PKEY_free (consumer_b);
    EVP_PKEY_free (stranger);
    zcert_destroy (&control_cert);
    zcert_destroy (&participant_cert);
    umb_zap_destroy (&zap);
    if (verbose)
        printf ("(bin, tar.gz dataset, python failure, python requirements, stop, timeout) ");
    printf ("OK\n");
}
