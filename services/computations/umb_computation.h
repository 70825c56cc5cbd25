//  umb_computation - a computation's definition: reading it from a request
//  with its rules, storing it as JSON, its participants and their roles,
//  readiness, and the manifest the agent takes (proto/msgpack/computations.md)
//
//  A value type: fields are read directly; umb_computation_clear frees what
//  it owns. Users are user ids once resolved (umb_computation_resolve); a
//  definition read from a request names them as the caller gave them.
#ifndef UMB_COMPUTATION_H_INCLUDED
#define UMB_COMPUTATION_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "umb_mp.h"

#define UMB_COMPUTATION_USER_SIZE   72      //  a user id or username, terminated
#define UMB_COMPUTATION_HASH_SIZE   65      //  64 lowercase hex + NUL; "" when unset
#define UMB_COMPUTATION_MAX_ITEMS   1024    //  datasets, consumers
#define UMB_COMPUTATION_MAX_ARGS    64

//  Computation roles, as bits
#define UMB_ROLE_OWNER              (1u << 0)
#define UMB_ROLE_ALGORITHM_PROVIDER (1u << 1)
#define UMB_ROLE_DATA_PROVIDER      (1u << 2)
#define UMB_ROLE_RESULT_CONSUMER    (1u << 3)

typedef struct {
    char filename [256];
    char provider [UMB_COMPUTATION_USER_SIZE];
    char hash [UMB_COMPUTATION_HASH_SIZE];
    bool decompress;
} umb_computation_dataset_t;

typedef char umb_computation_user_t [UMB_COMPUTATION_USER_SIZE];

typedef struct {
    char     id [40];
    char     workspace_id [64];
    char     name [129];
    char    *description;                   //  never NULL once read or loaded
    char     owner [UMB_COMPUTATION_USER_SIZE];
    char     algo_provider [UMB_COMPUTATION_USER_SIZE];
    char     algo_hash [UMB_COMPUTATION_HASH_SIZE];
    char     algo_type [8];                 //  python, bin
    char   **algo_args;
    size_t   algo_args_count;
    bool     algo_requirements;
    umb_computation_dataset_t *datasets;
    size_t   datasets_count;
    umb_computation_user_t    *consumers;
    size_t   consumers_count;
    char     tee [16];                      //  none, sev-snp, tdx
    int64_t  vcpus;
    int64_t  memory_mb;
    char    *policy;                        //  attestation policy JSON, or NULL
    int64_t  run_timeout_s;
    //  the manifest's limits; -1 when not set (the agent's default)
    int64_t  limit_memory_mb, limit_cpus, limit_pids, limit_results_mb, limit_output_lines;
    int64_t  version;
    int64_t  created_at;
    int64_t  updated_at;
} umb_computation_t;

//  One participant's row: a user, their roles and key
typedef struct {
    char     user [UMB_COMPUTATION_USER_SIZE];
    unsigned roles;
    char    *key;                           //  PEM SubjectPublicKeyInfo, or NULL
    char     key_type [16];                 //  ed25519, ecdsa-p256, ecdsa-p384, rsa; "" without key
    char     fingerprint [65];              //  SHA-256 of the key's DER, hex; "" without key
} umb_participant_t;

//  Empty definition with the defaults (tee none, 1 vCPU, 1024 MiB, 3600 s, no limits).
void umb_computation_init (umb_computation_t *self);
void umb_computation_clear (umb_computation_t *self);

//  Reads the definition fields of body into self. With update false, name,
//  algorithm and consumers are required and self starts from the defaults;
//  with update true only the fields present change self. Returns 0, 400 (a
//  wrong type or over a read limit: reason is the reader's) or 422 (a rule,
//  reason names the field). self is unchanged on failure.
int  umb_computation_read (umb_computation_t *self, umb_msg_t *body, bool update,
                           char *reason, size_t reason_size);

//  The definition as JSON text (storage), caller frees; and back. The id,
//  workspace, owner, version and times are not in it (they are columns).
char *umb_computation_to_json (const umb_computation_t *self);
int   umb_computation_from_json (umb_computation_t *self, const char *json, char *reason,
                                 size_t reason_size);

//  Every user the definition names (algorithm provider, dataset providers,
//  consumers), each once, into users (borrowed pointers into self); returns
//  how many (at most max).
size_t umb_computation_users (const umb_computation_t *self, const char **users, size_t max);

//  Replaces each user name with what resolve says (a user id), or fails with
//  the field naming the unknown one: "datasets[1].provider: 'mallory' is not a
//  member of this workspace". resolve returns NULL for an unknown user; its
//  answers stay valid until this call returns. self is unchanged on failure.
typedef const char *(umb_computation_resolve_fn) (void *arg, const char *name);
int  umb_computation_resolve (umb_computation_t *self, umb_computation_resolve_fn *resolve,
                              void *arg, char *reason, size_t reason_size);

//  The roles user holds (the owner's included).
unsigned umb_computation_roles (const umb_computation_t *self, const char *user);
//  "owner,data_provider", into text.
void     umb_computation_roles_text (unsigned roles, char *text, size_t size);

//  Sets the hash of asset ("algorithm" or a dataset's filename); 0, or -1
//  when there is no such asset. *provider receives its provider.
int  umb_computation_set_hash (umb_computation_t *self, const char *asset, const char *hash,
                               const char **provider);

//  Validates a participant's public key (PEM SPKI: Ed25519, ECDSA P-256/P-384,
//  RSA 2048..8192) into participant (key, key_type, fingerprint). 0 or -1 with
//  the reason.
int  umb_participant_set_key (umb_participant_t *participant, const char *pem,
                              char *reason, size_t reason_size);
void umb_participant_clear (umb_participant_t *participant);

//  What is missing before the computation can run ("algorithm.hash", "key of
//  usr_x (data provider of north.csv)", ...), as a NULL-terminated vector the
//  caller frees (each, then it); an empty vector when ready.
char **umb_computation_missing (const umb_computation_t *self, const umb_participant_t *parts,
                                size_t count);
void   umb_computation_missing_free (char ***missing_p);

//  The manifest (JSON text, caller frees), checked with the agent's own
//  parser; NULL with the reason when not ready or refused.
char *umb_computation_manifest (const umb_computation_t *self, const umb_participant_t *parts,
                                size_t count, char *reason, size_t reason_size);

//  Writes the computation (with its participants) as a reply map.
void umb_computation_write (const umb_computation_t *self, const umb_participant_t *parts,
                            size_t count, umb_w_t *w);
void umb_participant_write (const umb_participant_t *participant, umb_w_t *w);

void umb_computation_test (bool verbose);

#endif
