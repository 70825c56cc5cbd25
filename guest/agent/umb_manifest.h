//  umb_manifest - the computation manifest: CocosAI's JSON, accepted as is,
//  plus umbra's additions (docs/manifest.md)
//
//      {
//        "id": "c0ffee", "name": "...", "description": "...",
//        "algorithm": { "hash": "<64 hex>", "userKey": "<PEM>",
//                       "type": "bin"|"python", "args": ["..."], "requirements": false },
//        "datasets": [ { "hash": "<64 hex>", "userKey": "<PEM>",
//                        "filename": "data.csv", "decompress": false } ],
//        "result_consumers": [ { "userKey": "<PEM>" } ],
//        "agent_config": { "port": "7002", ... },
//        "run_timeout_s": 3600,
//        "limits": { "memory_mb": 1024, "cpus": 1, "pids": 256, "results_mb": 100,
//                    "output_lines": 10000 }
//      }
//
//  Hashes are SHA3-256: 64 hex chars, or a JSON array of 32 integers 0..255
//  (how CocosAI's Go code encodes a [32]byte). Keys are PEM public keys of the
//  types umb_sig allows (Ed25519, ECDSA P-256/P-384, RSA 2048..8192).
//  Unknown keys are tolerated; a known key with the wrong type is refused
//  with its JSON path in the reason (e.g. "datasets[2].filename: ...").
//
//  A parsed manifest is immutable; everything it returns is borrowed and
//  lives as long as the manifest.
#ifndef UMB_MANIFEST_H_INCLUDED
#define UMB_MANIFEST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#define UMB_MANIFEST_MAX_SIZE        (1024 * 1024)   //  bytes of JSON
#define UMB_MANIFEST_MAX_DATASETS    1024
#define UMB_MANIFEST_MAX_CONSUMERS   1024
#define UMB_MANIFEST_MAX_ARGS        256
#define UMB_MANIFEST_MAX_ARG_SIZE    4096
#define UMB_MANIFEST_MAX_ID_SIZE     255             //  = UMB_SIG_ID_MAX
#define UMB_MANIFEST_MAX_FILENAME    255

//  Run limits; every field has a default and a maximum (docs/manifest.md)
typedef struct {
    uint64_t memory_mb;        //  default 1024, 16..1048576
    uint32_t cpus;             //  default 1, 1..1024
    uint32_t pids;             //  default 256, 1..65536
    uint64_t results_mb;       //  default 100, 1..1048576
    uint64_t output_lines;     //  log lines forwarded as events; default 10000, 0..10000000
    uint64_t workdir_mb;       //  scratch space for the algorithm; default 10240, 1..16777216
} umb_manifest_limits_t;

typedef enum {
    UMB_MANIFEST_ALGO_BIN = 0,      //  an executable
    UMB_MANIFEST_ALGO_PYTHON        //  a Python script (or a tar with requirements)
} umb_manifest_algo_type_t;

typedef struct _umb_manifest_t umb_manifest_t;

//  Parses and validates a manifest. NULL with the reason on any refusal.
umb_manifest_t *
    umb_manifest_parse (const char *json, size_t len, char *reason, size_t reason_size);

//  Reads a file (at most UMB_MANIFEST_MAX_SIZE bytes) and parses it.
umb_manifest_t *
    umb_manifest_load (const char *path, char *reason, size_t reason_size);

//  Idempotent; sets *self_p to NULL.
void
    umb_manifest_destroy (umb_manifest_t **self_p);

//  The JSON the manifest was parsed from, NUL-terminated (borrowed)
const char *umb_manifest_json (umb_manifest_t *self);

const char *umb_manifest_id (umb_manifest_t *self);
const char *umb_manifest_name (umb_manifest_t *self);           //  "" if absent
const char *umb_manifest_description (umb_manifest_t *self);    //  "" if absent

//  The algorithm
const uint8_t *umb_manifest_algorithm_hash (umb_manifest_t *self);       //  32 raw bytes
const char    *umb_manifest_algorithm_hash_hex (umb_manifest_t *self);   //  64 lowercase hex
EVP_PKEY      *umb_manifest_algorithm_key (umb_manifest_t *self);        //  borrowed
umb_manifest_algo_type_t
               umb_manifest_algorithm_type (umb_manifest_t *self);
size_t         umb_manifest_algorithm_arg_count (umb_manifest_t *self);
const char    *umb_manifest_algorithm_arg (umb_manifest_t *self, size_t index);
bool           umb_manifest_algorithm_requirements (umb_manifest_t *self);

//  Datasets; index < umb_manifest_dataset_count (asserted)
size_t         umb_manifest_dataset_count (umb_manifest_t *self);
const uint8_t *umb_manifest_dataset_hash (umb_manifest_t *self, size_t index);
const char    *umb_manifest_dataset_hash_hex (umb_manifest_t *self, size_t index);
EVP_PKEY      *umb_manifest_dataset_key (umb_manifest_t *self, size_t index);
const char    *umb_manifest_dataset_filename (umb_manifest_t *self, size_t index);
bool           umb_manifest_dataset_decompress (umb_manifest_t *self, size_t index);
//  Index of the dataset with this hash, or -1
int            umb_manifest_dataset_find (umb_manifest_t *self, const uint8_t hash [32]);

//  Result consumers (in manifest order; the same key may appear twice)
size_t         umb_manifest_consumer_count (umb_manifest_t *self);
EVP_PKEY      *umb_manifest_consumer_key (umb_manifest_t *self, size_t index);
//  Index of the first consumer whose key equals key (umb_sig_key_equal), or -1
int            umb_manifest_consumer_find (umb_manifest_t *self, EVP_PKEY *key);
//  Number of distinct consumer keys (the agent's "every consumer fetched")
size_t         umb_manifest_consumer_distinct_count (umb_manifest_t *self);
//  Index of the first consumer whose key equals consumer index's (index
//  itself when it is the first); precomputed, O(1)
size_t         umb_manifest_consumer_first (umb_manifest_t *self, size_t index);

//  Seconds the algorithm may run (default 3600, 1..604800)
uint32_t       umb_manifest_run_timeout_s (umb_manifest_t *self);
const umb_manifest_limits_t *
               umb_manifest_limits (umb_manifest_t *self);

//  CocosAI's agent_config, kept as given (borrowed; "" / false if absent)
const char    *umb_manifest_agent_port (umb_manifest_t *self);
bool           umb_manifest_agent_attested_tls (umb_manifest_t *self);

//  Index of the dataset whose hash is hex (64 hex chars, as agent.upload.begin
//  sends it), or -1 if hex is malformed or no dataset has it.
int            umb_manifest_dataset_find_hex (umb_manifest_t *self, const char *hex);

//  Selftest
void
    umb_manifest_test (bool verbose);

#endif
