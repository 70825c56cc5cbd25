#!/usr/bin/env bash
# keys_cli - `umbra keys generate` and `umbra checksum`, checked with the openssl command line:
# every key type is read by openssl as the type asked for, the private file is 0600, nothing is
# overwritten; a statement signed by openssl with the generated key verifies with openssl against
# the generated public key (so the PEM files are what openssl expects); `umbra checksum` equals
# `openssl dgst -sha3-256` on files of several sizes (empty, one byte, a chunk boundary, 5 MB);
# --manifest prints JSON; usage errors exit 2, refusals exit 1.
set -euo pipefail
build=${TEST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
umbra=$build/cli/umbra
dir=$(mktemp -d /tmp/umbra-keys-cli.XXXXXX)
cleanup () { rm -rf "$dir"; }
trap cleanup EXIT
fail () { echo "FAIL: $*"; exit 1; }
[ -x "$umbra" ] || fail "no $umbra (build first)"
command -v openssl >/dev/null || fail "no openssl command"

# expect CODE COMMAND...: runs COMMAND, fails unless it exits with CODE
expect () {
    local want=$1 rc=0
    shift
    "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    [ "$rc" -eq "$want" ] || { cat "$dir/out" "$dir/err"; fail "exit $rc, not $want: $*"; }
}

# keys generate: each type as openssl sees it
for spec in "ed25519:ED25519" "ecdsa:prime256v1" "ecdsa-p384:secp384r1" "rsa:3072 bit"; do
    type=${spec%%:*}
    want=${spec#*:}
    expect 0 "$umbra" keys generate --type "$type" --out "$dir/$type"
    [ "$(stat -c %a "$dir/$type.key")" = 600 ] || fail "$type.key is not mode 0600"
    openssl pkey -in "$dir/$type.key" -noout -text 2>/dev/null | grep -qF "$want" \
        || fail "openssl does not read $type.key as $want"
    openssl pkey -pubin -in "$dir/$type.pub" -noout -text 2>/dev/null | grep -qF "$want" \
        || fail "openssl does not read $type.pub as $want"
    # the public file is the private key's public half
    cmp -s <(openssl pkey -in "$dir/$type.key" -pubout) "$dir/$type.pub" \
        || fail "$type.pub is not the public half of $type.key"
    # a statement signed with the key verifies against the public file (spec algorithms)
    printf 'umbra-result-v1\0c-1\0%s' "0123456789abcdef0123456789abcdef" >"$dir/stmt"
    case $type in
        ed25519)
            openssl pkeyutl -sign -rawin -inkey "$dir/$type.key" -in "$dir/stmt" -out "$dir/sig"
            [ "$(stat -c %s "$dir/sig")" = 64 ] || fail "Ed25519 signature is not 64 bytes"
            openssl pkeyutl -verify -rawin -pubin -inkey "$dir/$type.pub" -in "$dir/stmt" \
                -sigfile "$dir/sig" >/dev/null || fail "Ed25519 signature does not verify" ;;
        rsa)
            opts=(-sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256)
            openssl dgst "${opts[@]}" -sign "$dir/$type.key" -out "$dir/sig" "$dir/stmt"
            openssl dgst "${opts[@]}" -verify "$dir/$type.pub" -signature "$dir/sig" "$dir/stmt" \
                >/dev/null || fail "RSA-PSS signature does not verify" ;;
        *)
            md=-sha256
            [ "$type" = ecdsa-p384 ] && md=-sha384
            openssl dgst $md -sign "$dir/$type.key" -out "$dir/sig" "$dir/stmt"
            openssl dgst $md -verify "$dir/$type.pub" -signature "$dir/sig" "$dir/stmt" \
                >/dev/null || fail "ECDSA signature does not verify" ;;
    esac
    # never overwritten
    before=$(sha256sum "$dir/$type.key")
    expect 1 "$umbra" keys generate --type ed25519 --out "$dir/$type"
    grep -q exists "$dir/err" || fail "overwrite refusal does not say why"
    [ "$(sha256sum "$dir/$type.key")" = "$before" ] || fail "$type.key was overwritten"
    echo "ok   keys generate --type $type: openssl reads it as $want, 0600, signs and verifies, no overwrite"
done
# the default name, in the current directory
(cd "$dir" && "$umbra" keys generate >/dev/null) || fail "keys generate with defaults"
[ -f "$dir/umbra-key.key" ] && [ -f "$dir/umbra-key.pub" ] || fail "no umbra-key.key/.pub"
openssl pkey -in "$dir/umbra-key.key" -noout -text | grep -q ED25519 || fail "default type is not Ed25519"
echo "ok   keys generate with no options writes umbra-key.key/.pub (Ed25519)"
expect 2 "$umbra" keys generate --type dsa --out "$dir/x"
expect 2 "$umbra" keys generate --bogus
expect 2 "$umbra" keys
expect 1 "$umbra" keys generate --out "$dir/no/such/dir/k"
[ ! -e "$dir/x.key" ] || fail "a refused type wrote a file"
echo "ok   usage errors exit 2, an unwritable place exits 1"

# checksum = openssl dgst -sha3-256
: >"$dir/empty"
printf 'a' >"$dir/one"
head -c 65536 /dev/urandom >"$dir/chunk"
head -c 65537 /dev/urandom >"$dir/chunk1"
head -c 5000000 /dev/urandom >"$dir/big"
for f in empty one chunk chunk1 big; do
    ours=$("$umbra" checksum "$dir/$f")
    theirs=$(openssl dgst -sha3-256 -r "$dir/$f" | cut -d' ' -f1)
    [ "$ours" = "$theirs" ] || fail "checksum of $f: umbra $ours, openssl $theirs"
done
echo "ok   umbra checksum equals openssl dgst -sha3-256 (0 B, 1 B, 64 KiB, 64 KiB + 1, 5 MB)"
[ "$("$umbra" checksum "$dir/empty")" = a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a ] \
    || fail "SHA3-256 of nothing is not the FIPS 202 value"
snippet=$("$umbra" checksum --manifest "$dir/one")
/usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert list(d)==["hash"] and d["hash"]==sys.argv[2]' \
    "$snippet" "$("$umbra" checksum "$dir/one")" || fail "checksum --manifest is not {\"hash\": ...}: $snippet"
echo "ok   checksum --manifest prints $snippet"
expect 1 "$umbra" checksum "$dir/missing"
expect 2 "$umbra" checksum
expect 2 "$umbra" checksum "$dir/one" "$dir/big"
echo "ok   checksum of a missing file exits 1; no file or two files exit 2"
echo "keys_cli: all checks passed"
