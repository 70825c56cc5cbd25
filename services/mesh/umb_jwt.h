//  umb_jwt - JSON Web Tokens signed with Ed25519 (JWS alg "EdDSA", RFC 8037),
//  their signing keys, and JWKS key sets for verifiers
#ifndef UMB_JWT_H_INCLUDED
#define UMB_JWT_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "umb_log.h"

//  ---------------------------------------------------------------- signer
typedef struct _umb_jwt_signer_t umb_jwt_signer_t;

//  Loads the Ed25519 signing key from path (created with mode 0600 on first
//  use). The kid is derived from the public key. NULL on failure (logged).
umb_jwt_signer_t *umb_jwt_signer_load_or_create (const char *path, umb_log_t *log);
//  A signer with a fresh key kept only in memory (tests, benchmarks).
umb_jwt_signer_t *umb_jwt_signer_new_ephemeral (void);
void              umb_jwt_signer_destroy (umb_jwt_signer_t **self_p);   //  wipes the key
const char       *umb_jwt_signer_kid (umb_jwt_signer_t *self);
//  Signs claims (borrowed) into a compact JWS with header
//  {"alg":"EdDSA","typ":"JWT","kid":...}. Caller frees the token.
char             *umb_jwt_sign (umb_jwt_signer_t *self, json_t *claims);
//  The public key set as a JWKS JSON object {"keys":[{kty OKP, crv Ed25519, x, kid, alg, use}]}.
json_t           *umb_jwt_signer_jwks (umb_jwt_signer_t *self);

//  ---------------------------------------------------------------- verifier
typedef struct _umb_jwt_keyring_t umb_jwt_keyring_t;

umb_jwt_keyring_t *umb_jwt_keyring_new (void);
void               umb_jwt_keyring_destroy (umb_jwt_keyring_t **self_p);
//  Adds every usable key of a JWKS object (OKP/Ed25519 only; others ignored).
//  Returns the number added, or -1 with a reason if jwks is malformed.
int                umb_jwt_keyring_add_jwks (umb_jwt_keyring_t *self, json_t *jwks,
                                             char *reason, size_t reason_size);
int                umb_jwt_keyring_add_signer (umb_jwt_keyring_t *self, umb_jwt_signer_t *signer);

//  Verifies a compact token: structure, header alg exactly "EdDSA", known kid,
//  signature, then "exp" (required, > now), "nbf"/"iat" (not in the future
//  beyond leeway_s) and "iss" == issuer. Returns 0 and the claims (caller
//  decrefs) or -1 with a reason for people ("token expired", "unknown key id",
//  "bad signature", ...). Never trusts anything before the signature checks.
int                umb_jwt_verify (umb_jwt_keyring_t *self, const char *token, const char *issuer,
                                   int64_t now, int64_t leeway_s, json_t **claims_p,
                                   char *reason, size_t reason_size);

void               umb_jwt_test (bool verbose);

#endif
