//  bench_mesh - mesh round trips against raw libzmq CURVE, and access-token verifications
//
//  Run it through bench/run (release build), or alone:
//
//      build-bench/bench/bench_mesh [iterations [rounds]]
//
//  In one process and one run it measures:
//    a) raw: a libzmq ROUTER (CURVE server, admitted by umb_zap) echoing
//       [header][body] from its own thread, and a DEALER doing synchronous
//       round trips over tcp://127.0.0.1 -- the transport's ceiling;
//    b) mesh: a umb_service_t (built-in sys.ping only) in an actor, and
//       umb_client_call ("sys.ping") doing synchronous round trips -- what the
//       envelope, dispatcher, metrics and client add on top;
//    c) access-token verification with umb_jwt, against bare libsodium
//       Ed25519 verification of the same signing input.
//  a and b interleave in slices of 100 round trips (the machine may be shared:
//  both then see the same background load), over several rounds; medians are
//  reported, and each figure is printed as a ratio against its peer. Nothing
//  is asserted on time: the exit code is 0 unless something failed to work.
//
//  The last lines are "key = value" pairs for bench/run to collect.
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <czmq.h>
#include <sodium.h>
#include <jansson.h>
#include "umb_bench.h"
#include "umb_log.h"
#include "umb_zap.h"
#include "umb_service.h"
#include "umb_client.h"
#include "umb_jwt.h"

//  Defaults measured on the standard machine (2 cores): about 20 s in all
#define S_DEFAULT_ITERATIONS 25000
#define S_DEFAULT_ROUNDS     5
#define S_MAX_ROUNDS         99
#define S_WARMUP             1000
#define S_SLICE              100
#define S_TIMEOUT_MS         5000
#define S_TARGET_RATIO       0.7

//  A request as the mesh client sends it, so the raw peer carries the same bytes:
//  {v:1, id:"bench-000000000001", op:"sys.ping", deadline_ms:5000} and {}
static const unsigned char s_raw_header [] = {
    0x84,
    0xa1, 'v', 0x01,
    0xa2, 'i', 'd', 0xb2, 'b', 'e', 'n', 'c', 'h', '-', '0', '0', '0', '0', '0', '0',
                          '0', '0', '0', '0', '0', '1',
    0xa2, 'o', 'p', 0xa8, 's', 'y', 's', '.', 'p', 'i', 'n', 'g',
    0xab, 'd', 'e', 'a', 'd', 'l', 'i', 'n', 'e', '_', 'm', 's', 0xcd, 0x13, 0x88
};
static const unsigned char s_raw_body [] = { 0x80 };


//  ---------------------------------------------------------------- raw echo

//  Echoes every message back to its sender, frame for frame, with bare libzmq
//  calls on the socket; sends its endpoint on the pipe once bound.
static void
s_raw_echo_actor (zsock_t *pipe, void *args)
{
    zcert_t *cert = args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zcert_apply (cert, router);
    zsock_set_curve_server (router, 1);
    zsock_set_zap_domain (router, UMB_ZAP_DOMAIN);
    zsock_set_zap_enforce_domain (router, 1);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    if (port <= 0) {
        zstr_send (pipe, "");       //  main sees the failure
        zsock_destroy (&router);
        return;
    }
    zstr_sendf (pipe, "tcp://127.0.0.1:%d", port);

    void *handle = zsock_resolve (router);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    assert (poller);
    while (!zsys_interrupted) {
        void *which = zpoller_wait (poller, 1000);
        if (which == pipe)
            break;                  //  $TERM
        if (which != router)
            continue;
        //  Drain everything queued, then go back to the poller
        while (true) {
            zmq_msg_t part;
            zmq_msg_init (&part);
            if (zmq_msg_recv (&part, handle, ZMQ_DONTWAIT) == -1) {
                zmq_msg_close (&part);
                break;
            }
            bool more = zmq_msg_more (&part);
            zmq_msg_send (&part, handle, more? ZMQ_SNDMORE: 0);
            while (more) {
                zmq_msg_init (&part);
                zmq_msg_recv (&part, handle, 0);
                more = zmq_msg_more (&part);
                zmq_msg_send (&part, handle, more? ZMQ_SNDMORE: 0);
            }
        }
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

//  One synchronous [header][body] round trip; 0 ok, -1 on timeout or error.
static int
s_raw_round_trip (void *dealer)
{
    if (zmq_send (dealer, s_raw_header, sizeof s_raw_header, ZMQ_SNDMORE) == -1
    ||  zmq_send (dealer, s_raw_body, sizeof s_raw_body, 0) == -1)
        return -1;
    int frames = 0;
    bool more = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, dealer, 0) == -1) {
            zmq_msg_close (&part);
            return -1;
        }
        more = zmq_msg_more (&part);
        zmq_msg_close (&part);
        frames++;
    }
    return frames == 2? 0: -1;
}

static zsock_t *
s_raw_dealer (const char *endpoint, zcert_t *server_cert, zcert_t *client_cert)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zcert_apply (client_cert, dealer);
    zsock_set_curve_serverkey (dealer, zcert_public_txt (server_cert));
    zsock_set_rcvtimeo (dealer, S_TIMEOUT_MS);
    zsock_set_sndtimeo (dealer, S_TIMEOUT_MS);
    zsock_set_linger (dealer, 0);
    if (zsock_connect (dealer, "%s", endpoint) == -1) {
        zsock_destroy (&dealer);
        return NULL;
    }
    return dealer;
}

//  Seconds taken by count round trips, or -1 on failure.
static double
s_raw_slice (void *dealer, int count)
{
    double started = umb_bench_now ();
    for (int i = 0; i < count; i++)
        if (s_raw_round_trip (dealer))
            return -1;
    return umb_bench_now () - started;
}


//  ---------------------------------------------------------------- mesh

typedef struct {
    zcert_t   *cert;
    umb_zap_t *zap;
    umb_log_t *log;
} s_service_args_t;

static const umb_route_t s_no_routes [] = { { NULL } };

static void
s_service_actor (zsock_t *pipe, void *args)
{
    s_service_args_t *config = args;
    umb_service_t *service = umb_service_new (&(umb_service_config_t) {
        .name = "bench", .endpoint = "tcp://127.0.0.1:*", .cert = config->cert,
        .zap = config->zap, .routes = s_no_routes, .log = config->log });
    if (!service) {
        //  Answer ENDPOINT with "" so main sees the failure instead of waiting
        zsock_signal (pipe, 0);
        char *command;
        while ((command = zstr_recv (pipe)) && !streq (command, "$TERM")) {
            zstr_send (pipe, "");
            zstr_free (&command);
        }
        zstr_free (&command);
        return;
    }
    zsock_signal (pipe, 0);
    umb_service_run (service, pipe);
    umb_service_destroy (&service);
}

static int
s_mesh_round_trip (umb_client_t *client)
{
    umb_reply_t *reply = umb_client_call (client, "sys.ping", NULL, NULL, 0, S_TIMEOUT_MS, NULL);
    int status = umb_reply_status (reply);
    umb_reply_destroy (&reply);
    return status == 200? 0: -1;
}

static double
s_mesh_slice (umb_client_t *client, int count)
{
    double started = umb_bench_now ();
    for (int i = 0; i < count; i++)
        if (s_mesh_round_trip (client))
            return -1;
    return umb_bench_now () - started;
}

//  One round: iterations round trips of each kind, interleaved in slices so
//  that both see the same background load (the machine is shared), with the
//  order flipped every slice. Rates in round trips/s; 0 ok, -1 on failure.
static int
s_round (void *dealer, umb_client_t *client, int iterations, double *raw_rate, double *mesh_rate)
{
    double raw_time = 0, mesh_time = 0;
    int done = 0;
    for (int slice = 0; done < iterations; slice++) {
        int count = iterations - done < S_SLICE? iterations - done: S_SLICE;
        bool raw_first = slice % 2 == 0;
        for (int turn = 0; turn < 2; turn++) {
            bool raw_turn = (turn == 0) == raw_first;
            double seconds = raw_turn? s_raw_slice (dealer, count): s_mesh_slice (client, count);
            if (seconds < 0) {
                fprintf (stderr, "bench_mesh: a %s round trip failed\n",
                         raw_turn? "raw echo": "mesh sys.ping");
                return -1;
            }
            if (raw_turn)
                raw_time += seconds;
            else
                mesh_time += seconds;
        }
        done += count;
    }
    *raw_rate = iterations / raw_time;
    *mesh_rate = iterations / mesh_time;
    return 0;
}


//  ---------------------------------------------------------------- tokens

//  umb_jwt_verify per second, and bare crypto_sign_verify_detached per second
//  over the same signing input (the peer); 0 ok, -1 if a verification failed.
static int
s_jwt_measure (int iterations, double *jwt_rate, double *ed25519_rate)
{
    int rc = -1;
    umb_jwt_signer_t *signer = umb_jwt_signer_new_ephemeral ();
    umb_jwt_keyring_t *keyring = umb_jwt_keyring_new ();
    if (!signer || !keyring || umb_jwt_keyring_add_signer (keyring, signer) != 0)
        goto done;
    int64_t now = (int64_t) time (NULL);
    //  The claims an umbra access token carries
    json_t *claims = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b}",
        "iss", "umbra", "aud", "umbra", "sub", "usr_01hx3k9q7d2m4n6p8r0t2v4w6y",
        "sid", "ses_01hx3k9q7d2m4n6p8r0t2v4w6z", "iat", (json_int_t) now,
        "nbf", (json_int_t) now, "exp", (json_int_t) (now + 900), "adm", 0);
    char *token = claims? umb_jwt_sign (signer, claims): NULL;
    json_decref (claims);
    if (!token)
        goto done;

    //  The peer needs the raw key and signature: take them from the JWKS and the token
    json_t *jwks = umb_jwt_signer_jwks (signer);
    const char *x = json_string_value (json_object_get (json_array_get (
        json_object_get (jwks, "keys"), 0), "x"));
    unsigned char public_key [crypto_sign_PUBLICKEYBYTES];
    unsigned char signature [crypto_sign_BYTES];
    const char *dot2 = strrchr (token, '.');
    size_t key_len = 0, sig_len = 0;
    bool keys_ok = x && dot2
        && sodium_base642bin (public_key, sizeof public_key, x, strlen (x), NULL, &key_len, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0
        && sodium_base642bin (signature, sizeof signature, dot2 + 1, strlen (dot2 + 1), NULL,
                              &sig_len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0
        && key_len == sizeof public_key && sig_len == sizeof signature;
    json_decref (jwks);
    if (!keys_ok)
        goto free_token;
    size_t input_len = (size_t) (dot2 - token);

    char reason [128];
    double started = umb_bench_now ();
    for (int i = 0; i < iterations; i++) {
        json_t *verified = NULL;
        if (umb_jwt_verify (keyring, token, "umbra", now, 60, &verified, reason, sizeof reason)) {
            fprintf (stderr, "bench_mesh: token refused: %s\n", reason);
            goto free_token;
        }
        json_decref (verified);
    }
    *jwt_rate = iterations / (umb_bench_now () - started);

    started = umb_bench_now ();
    for (int i = 0; i < iterations; i++)
        if (crypto_sign_verify_detached (signature, (const unsigned char *) token, input_len,
                                         public_key) != 0) {
            fprintf (stderr, "bench_mesh: bare Ed25519 verification failed\n");
            goto free_token;
        }
    *ed25519_rate = iterations / (umb_bench_now () - started);
    rc = 0;
free_token:
    free (token);
done:
    umb_jwt_keyring_destroy (&keyring);
    umb_jwt_signer_destroy (&signer);
    return rc;
}


//  ---------------------------------------------------------------- main

static int
s_usage (void)
{
    fprintf (stderr, "usage: bench_mesh [iterations [rounds]]\n"
                     "  iterations  round trips of each kind per round (default %d; tokens: 2x)\n"
                     "  rounds      rounds of interleaved raw/mesh round trips, 1..%d (default %d)\n",
             S_DEFAULT_ITERATIONS, S_MAX_ROUNDS, S_DEFAULT_ROUNDS);
    return 2;
}

int
main (int argc, char *argv [])
{
    int iterations = S_DEFAULT_ITERATIONS;
    int rounds = S_DEFAULT_ROUNDS;
    if (argc > 3)
        return s_usage ();
    if (argc > 1) {
        char *end;
        long value = strtol (argv [1], &end, 10);
        if (*end || value < 1 || value > 100000000)
            return s_usage ();
        iterations = (int) value;
    }
    if (argc > 2) {
        char *end;
        long value = strtol (argv [2], &end, 10);
        if (*end || value < 1 || value > S_MAX_ROUNDS)
            return s_usage ();
        rounds = (int) value;
    }
    if (sodium_init () < 0) {
        fprintf (stderr, "bench_mesh: libsodium failed to initialise\n");
        return 1;
    }
    zsys_init ();
    umb_log_t *log = umb_log_new ("bench", UMB_LOG_ERROR, false);
    umb_zap_t *zap = log? umb_zap_new (log): NULL;
    if (!zap) {
        fprintf (stderr, "bench_mesh: cannot start the ZAP handler\n");
        umb_log_destroy (&log);
        return 1;
    }
    zcert_t *server_cert = zcert_new ();
    zcert_t *client_cert = zcert_new ();
    assert (server_cert && client_cert);
    umb_zap_allow (zap, zcert_public_txt (client_cert), "bench-client");

    int rc = 1;
    zactor_t *echo = zactor_new (s_raw_echo_actor, server_cert);
    char *echo_endpoint = echo? zstr_recv (echo): NULL;
    s_service_args_t service_args = { server_cert, zap, log };
    zactor_t *service = zactor_new (s_service_actor, &service_args);
    char *service_endpoint = NULL;
    if (service) {
        zstr_send (service, "ENDPOINT");
        service_endpoint = zstr_recv (service);
    }
    if (echo_endpoint && !*echo_endpoint)
        zstr_free (&echo_endpoint);
    if (service_endpoint && !*service_endpoint)
        zstr_free (&service_endpoint);
    zsock_t *dealer = echo_endpoint? s_raw_dealer (echo_endpoint, server_cert, client_cert): NULL;
    umb_client_t *client = service_endpoint
        ? umb_client_new (service_endpoint, zcert_public_txt (server_cert), client_cert): NULL;
    if (!dealer || !client) {
        fprintf (stderr, "bench_mesh: cannot set up the echo server or the mesh service\n");
        goto done;
    }
    umb_client_set_attempts (client, 1);

    printf ("bench_mesh: %d synchronous round trips per measurement, %d rounds, "
            "CURVE over tcp://127.0.0.1\n", iterations, rounds);
    printf ("%-6s %16s %16s %8s\n", "round", "raw rt/s", "mesh rt/s", "ratio");
    double raw [S_MAX_ROUNDS], mesh [S_MAX_ROUNDS], ratio [S_MAX_ROUNDS];
    if (s_raw_slice (zsock_resolve (dealer), S_WARMUP) < 0
    ||  s_mesh_slice (client, S_WARMUP) < 0) {
        fprintf (stderr, "bench_mesh: the warm-up round trips failed\n");
        goto done;
    }
    for (int round = 0; round < rounds; round++) {
        if (s_round (zsock_resolve (dealer), client, iterations, &raw [round], &mesh [round]))
            goto done;
        ratio [round] = mesh [round] / raw [round];
        printf ("%-6d %16.0f %16.0f %8.3f\n", round + 1, raw [round], mesh [round], ratio [round]);
        fflush (stdout);
    }
    double raw_median = umb_bench_median (raw, rounds);
    double mesh_median = umb_bench_median (mesh, rounds);
    double ratio_median = umb_bench_median (ratio, rounds);

    double jwt_rate = 0, ed25519_rate = 0;
    if (s_jwt_measure (2 * iterations, &jwt_rate, &ed25519_rate))
        goto done;

    printf ("\n");
    printf ("raw libzmq CURVE echo   %10.0f round trips/s  (median; %.1f us each)\n",
            raw_median, 1e6 / raw_median);
    printf ("umbra mesh sys.ping     %10.0f round trips/s  (median; %.1f us each)\n",
            mesh_median, 1e6 / mesh_median);
    printf ("mesh / raw              %10.3f                (median of per-round ratios; target >= %.1f: %s)\n",
            ratio_median, S_TARGET_RATIO, ratio_median >= S_TARGET_RATIO? "met": "NOT met");
    printf ("umb_jwt_verify          %10.0f tokens/s       (%.1f us each)\n",
            jwt_rate, 1e6 / jwt_rate);
    printf ("bare Ed25519 verify     %10.0f /s             (libsodium, same signing input)\n",
            ed25519_rate);
    printf ("jwt / bare Ed25519      %10.3f\n", jwt_rate / ed25519_rate);
    printf ("\n");
    printf ("raw_rt_per_s = %.0f\n", raw_median);
    printf ("mesh_rt_per_s = %.0f\n", mesh_median);
    printf ("mesh_over_raw = %.3f\n", ratio_median);
    printf ("jwt_verify_per_s = %.0f\n", jwt_rate);
    printf ("ed25519_verify_per_s = %.0f\n", ed25519_rate);
    printf ("jwt_over_ed25519 = %.3f\n", jwt_rate / ed25519_rate);
    rc = 0;

done:
    umb_client_destroy (&client);
    zsock_destroy (&dealer);
    zstr_free (&service_endpoint);
    zstr_free (&echo_endpoint);
    zactor_destroy (&service);
    zactor_destroy (&echo);
    zcert_destroy (&server_cert);
    zcert_destroy (&client_cert);
    umb_zap_destroy (&zap);
    umb_log_destroy (&log);
    return rc;
}
