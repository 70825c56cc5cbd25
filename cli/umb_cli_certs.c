//  umb_cli_certs - `umbra certs`: certificates through the gateway's REST API
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jansson.h>
#include <sodium.h>
#include "umb_cli_certs.h"
#include "umb_http_client.h"
#include "umb_cli_rest.h"

#define S_EXIT_OK      0
#define S_EXIT_FAILED  1
#define S_EXIT_USAGE   2

#define S_MAX_SANS     100
#define S_MAX_CSR      65536

//  Options; a subcommand lists those it takes.
enum {
    S_OPT_WORKSPACE = 1 << 0,
    S_OPT_CN        = 1 << 1,
    S_OPT_SAN       = 1 << 2,
    S_OPT_CSR       = 1 << 3,
    S_OPT_TTL       = 1 << 4,
    S_OPT_KEY_TYPE  = 1 << 5,
    S_OPT_PROFILE   = 1 << 6,
    S_OPT_OUT       = 1 << 7,
    S_OPT_STATUS    = 1 << 8,
    S_OPT_REASON    = 1 << 9,
    S_OPT_PEM       = 1 << 10,
    S_OPT_JSON      = 1 << 11
};

static const struct option s_options [] = {
    { "workspace", required_argument, NULL, 'w' },
    { "cn",        required_argument, NULL, 'n' },
    { "san",       required_argument, NULL, 'S' },
    { "csr",       required_argument, NULL, 'r' },
    { "ttl",       required_argument, NULL, 't' },
    { "key-type",  required_argument, NULL, 'k' },
    { "profile",   required_argument, NULL, 'p' },
    { "out",       required_argument, NULL, 'o' },
    { "status",    required_argument, NULL, 's' },
    { "reason",    required_argument, NULL, 'R' },
    { "pem",       no_argument,       NULL, 'P' },
    { "json",      no_argument,       NULL, 'j' },
    { "url",       required_argument, NULL, 'u' },
    { "token",     required_argument, NULL, 'T' },
    { "config",    required_argument, NULL, 'c' },
    { "help",      no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

static const char *const s_key_types [] = { "ec-p256", "rsa-3072", "ed25519", NULL };
static const char *const s_profiles [] = { "server", "client", NULL };
static const char *const s_statuses [] = { "valid", "revoked", "expired", NULL };

//  One run of the command: what was asked, and where to say things.
typedef struct {
    FILE              *out;
    FILE              *err;
    umb_cli_rest_t    *rest;
    const char        *workspace;
    const char        *cn;
    const char        *sans [S_MAX_SANS + 1];
    size_t             san_count;
    const char        *csr_path;
    int64_t            ttl;             //  0 when not given
    const char        *key_type;
    const char        *profile;
    const char        *out_path;
    const char        *status;
    const char        *reason;
    bool               pem;
    bool               json;
    const char        *serial;
} s_cli_t;

typedef int (s_run_fn) (s_cli_t *cli);

static int s_issue (s_cli_t *cli);
static int s_list (s_cli_t *cli);
static int s_get (s_cli_t *cli);
static int s_revoke (s_cli_t *cli);
static int s_renew (s_cli_t *cli);
static int s_ca (s_cli_t *cli);
static int s_crl (s_cli_t *cli);
static int s_issuers (s_cli_t *cli);
static int s_rotate_issuer (s_cli_t *cli);

static const struct {
    const char *name;
    s_run_fn   *run;
    unsigned    options;
    unsigned    required;
    bool        serial;             //  takes SERIAL
    const char *usage;
} s_commands [] = {
    { "issue", s_issue,
      S_OPT_WORKSPACE | S_OPT_CN | S_OPT_SAN | S_OPT_CSR | S_OPT_TTL | S_OPT_KEY_TYPE | S_OPT_PROFILE
      | S_OPT_OUT, S_OPT_WORKSPACE | S_OPT_CN, false,
      "issue  --workspace WS --cn NAME [--san NAME]... [--csr FILE] [--ttl SECONDS]\n"
      "       [--key-type ec-p256|rsa-3072|ed25519] [--profile server|client] [--out DIR]\n"
      "       writes cert.pem, chain.pem and, without --csr, key.pem (mode 0600) into DIR\n"
      "       (default .), never over existing files; prints the serial" },
    { "list", s_list, S_OPT_WORKSPACE | S_OPT_STATUS | S_OPT_JSON, S_OPT_WORKSPACE, false,
      "list   --workspace WS [--status valid|revoked|expired] [--json]" },
    { "get", s_get, S_OPT_WORKSPACE | S_OPT_PEM | S_OPT_JSON, S_OPT_WORKSPACE, true,
      "get    --workspace WS SERIAL [--pem | --json]" },
    { "revoke", s_revoke, S_OPT_WORKSPACE | S_OPT_REASON | S_OPT_JSON, S_OPT_WORKSPACE, true,
      "revoke --workspace WS SERIAL [--reason NAME]   (workspace admins; NAME as in RFC 5280:\n"
      "       keyCompromise, superseded, cessationOfOperation, ...)" },
    { "renew", s_renew, S_OPT_WORKSPACE | S_OPT_TTL | S_OPT_OUT, S_OPT_WORKSPACE, true,
      "renew  --workspace WS SERIAL [--ttl SECONDS] [--out DIR]\n"
      "       a new certificate like SERIAL; files and output as for issue" },
    { "ca", s_ca, S_OPT_OUT, 0, false,
      "ca     [--out FILE]   the CA chain (issuing CA, then root) as PEM" },
    { "crl", s_crl, S_OPT_PEM | S_OPT_OUT, 0, false,
      "crl    [--pem] [--out FILE]   the current CRL, DER (or PEM with --pem)" },
    { "issuers", s_issuers, S_OPT_JSON, 0, false,
      "issuers [--json]   the issuing CAs in use: serial, which one issues, validity, CRL URL" },
    { "rotate-issuer", s_rotate_issuer, S_OPT_JSON, 0, false,
      "rotate-issuer [--json]   (platform administrators) a new issuing CA under the same root,\n"
      "       issuing from now on; certificates issued before stay valid (their issuing CA\n"
      "       keeps answering OCSP and signing their CRL until it expires)" },
    { NULL }
};

static void
s_usage (FILE *stream)
{
    umb_cli_rest_usage_group (stream, "certs");
    for (size_t i = 0; s_commands [i].name; i++)
        umb_cli_rest_usage (stream, s_commands [i].usage);
    umb_cli_rest_usage_common (stream);
}

//  ---------------------------------------------------------------- talking to the gateway

//  "/workspaces/WS/certs[/SERIAL[/action]]", each part escaped. Caller frees.
static char *
s_path (s_cli_t *cli, const char *serial, const char *action)
{
    char *workspace = umb_http_client_escape (cli->workspace);
    char *escaped = serial ? umb_http_client_escape (serial) : NULL;
    char *path = NULL;
    if (asprintf (&path, "/workspaces/%s/certs%s%s%s%s", workspace, escaped ? "/" : "",
                  escaped ? escaped : "", action ? "/" : "", action ? action : "") < 0)
        path = NULL;
    assert (path);
    free (workspace);
    free (escaped);
    return path;
}

//  A JSON string that is a secret is wiped inside the document before it goes.
static void
s_wipe_string (json_t *object, const char *key)
{
    json_t *value = json_object_get (object, key);
    if (json_is_string (value))
        sodium_memzero ((char *) json_string_value (value), json_string_length (value));
}

//  ---------------------------------------------------------------- files

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size) {
        ssize_t written = write (fd, data, size);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return -1;
        data += written;
        size -= (size_t) written;
    }
    return 0;
}

//  Files a command writes: created before the request (never over an
//  existing file), filled after, removed again if the request fails.
typedef struct {
    char *path;
    int   fd;
} s_file_t;

static void
s_files_close (s_file_t *files, size_t count, bool remove)
{
    for (size_t i = 0; i < count; i++) {
        if (files [i].fd >= 0)
            close (files [i].fd);
        if (remove && files [i].path)
            unlink (files [i].path);
        free (files [i].path);
        files [i].path = NULL;
        files [i].fd = -1;
    }
}

static int
s_file_create (s_cli_t *cli, const char *path, mode_t mode, s_file_t *file)
{
    file->fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    file->path = NULL;
    if (file->fd < 0) {
        fprintf (cli->err, "umbra: cannot create %s: %s%s\n", path, strerror (errno),
                 errno == EEXIST ? " (existing files are never overwritten)" : "");
        return -1;
    }
    fchmod (file->fd, mode);        //  whatever the umask
    file->path = strdup (path);
    assert (file->path);
    return 0;
}

//  Creates name [i] in dir for each of count names. 0, or -1 having said
//  why and created nothing.
static int
s_files_open (s_cli_t *cli, const char *dir, const char *const *names, const mode_t *modes,
              s_file_t *files, size_t count)
{
    for (size_t i = 0; i < count; i++)
        files [i] = (s_file_t) { NULL, -1 };
    for (size_t i = 0; i < count; i++) {
        char *path = NULL;
        if (asprintf (&path, "%s/%s", dir, names [i]) < 0)
            path = NULL;
        assert (path);
        int rc = s_file_create (cli, path, modes [i], &files [i]);
        free (path);
        if (rc) {
            s_files_close (files, count, true);
            return -1;
        }
    }
    return 0;
}

static int
s_file_fill (s_cli_t *cli, s_file_t *file, const char *data, size_t size)
{
    if (s_write_all (file->fd, data, size) || fsync (file->fd)) {
        fprintf (cli->err, "umbra: cannot write %s: %s\n", file->path, strerror (errno));
        return -1;
    }
    return 0;
}

//  Reads a certificate request in PEM. NULL having said why.
static char *
s_read_csr (s_cli_t *cli, const char *path)
{
    FILE *file = fopen (path, "re");
    if (!file) {
        fprintf (cli->err, "umbra: cannot read %s: %s\n", path, strerror (errno));
        return NULL;
    }
    char *text = calloc (1, S_MAX_CSR + 2);
    assert (text);
    size_t size = fread (text, 1, S_MAX_CSR + 1, file);
    bool failed = ferror (file);
    fclose (file);
    if (failed || size > S_MAX_CSR || memchr (text, 0, size)
    ||  (!strstr (text, "-----BEGIN CERTIFICATE REQUEST-----")
         && !strstr (text, "-----BEGIN NEW CERTIFICATE REQUEST-----"))) {
        fprintf (cli->err, "umbra: %s is not a PEM certificate request of at most %d bytes "
                 "(DER converts with: openssl req -inform DER -in %s -out request.pem)\n",
                 path, S_MAX_CSR, path);
        free (text);
        return NULL;
    }
    return text;
}

//  ---------------------------------------------------------------- issue and renew

//  Sends body to path, writing the certificate, chain and key that come back
//  into --out; prints the new serial.
static int
s_issue_into (s_cli_t *cli, const char *path, json_t *body, bool key_expected)
{
    static const char *const names [] = { "cert.pem", "chain.pem", "key.pem" };
    static const mode_t modes [] = { 0644, 0644, 0600 };
    const char *dir = cli->out_path ? cli->out_path : ".";
    //  A key may come back whenever no CSR was sent: key.pem is made ready then
    size_t count = key_expected ? 3 : 2;
    s_file_t files [3];
    if (s_files_open (cli, dir, names, modes, files, count))
        return S_EXIT_FAILED;
    json_t *root = umb_cli_rest_call_json (cli->rest, "POST", path, body);
    if (!root) {
        s_files_close (files, count, true);
        return S_EXIT_FAILED;
    }
    const char *serial = umb_cli_rest_str (root, "serial");
    const char *certificate = umb_cli_rest_str (root, "certificate");
    const char *chain = umb_cli_rest_str (root, "chain");
    json_t *key = json_object_get (root, "private_key");
    if (json_is_null (key))
        key = NULL;
    int rc = S_EXIT_OK;
    if (!*serial || !*certificate || (key && !json_is_string (key))) {
        fprintf (cli->err, "umbra: the answer holds no serial and certificate\n");
        rc = S_EXIT_FAILED;
    }
    else
    if (key && !key_expected) {
        fprintf (cli->err, "umbra: a private key came back though a CSR was sent; not written\n");
        rc = S_EXIT_FAILED;
    }
    if (rc == S_EXIT_OK
    &&  (s_file_fill (cli, &files [0], certificate, strlen (certificate))
    ||   s_file_fill (cli, &files [1], chain, strlen (chain))
    ||   (key && s_file_fill (cli, &files [2], json_string_value (key), json_string_length (key)))))
        rc = S_EXIT_FAILED;
    if (rc == S_EXIT_OK) {
        if (count == 3 && !key)
            s_files_close (files + 2, 1, true);     //  no key came: no key.pem
        s_files_close (files, count, false);
        fprintf (cli->out, "%s\n", serial);
        fprintf (cli->err, "wrote %s/cert.pem, %s/chain.pem%s%s%s\n", dir, dir,
                 key ? ", " : "", key ? dir : "", key ? "/key.pem (keep it secret)" : "");
    }
    else {
        if (*serial)
            fprintf (cli->err, "umbra: certificate %s was issued but not saved\n", serial);
        s_files_close (files, count, true);
    }
    s_wipe_string (root, "private_key");
    json_decref (root);
    return rc;
}

static int
s_issue (s_cli_t *cli)
{
    if (cli->csr_path && cli->key_type) {
        fprintf (cli->err, "umbra: --key-type is for keys made by the service; with --csr the "
                 "request's key is certified\n");
        return S_EXIT_USAGE;
    }
    char *csr = NULL;
    if (cli->csr_path && !(csr = s_read_csr (cli, cli->csr_path)))
        return S_EXIT_USAGE;
    //  json_string refuses text that is not UTF-8
    bool bad = false;
    json_t *body = json_object ();
    bad |= json_object_set_new (body, "common_name", json_string (cli->cn)) != 0;
    if (cli->san_count) {
        json_t *sans = json_array ();
        for (size_t i = 0; i < cli->san_count; i++)
            bad |= json_array_append_new (sans, json_string (cli->sans [i])) != 0;
        json_object_set_new (body, "sans", sans);
    }
    if (csr)
        bad |= json_object_set_new (body, "csr", json_string (csr)) != 0;
    if (cli->ttl)
        json_object_set_new (body, "ttl", json_integer (cli->ttl));
    if (cli->key_type)
        json_object_set_new (body, "key_type", json_string (cli->key_type));
    if (cli->profile)
        json_object_set_new (body, "profile", json_string (cli->profile));
    int rc = S_EXIT_USAGE;
    if (bad)
        fprintf (cli->err, "umbra: a name or the CSR is not valid UTF-8\n");
    else {
        char *path = s_path (cli, NULL, NULL);
        rc = s_issue_into (cli, path, body, csr == NULL);
        free (path);
    }
    json_decref (body);
    free (csr);
    return rc;
}

static int
s_renew (s_cli_t *cli)
{
    //  Whether the service makes a key is known only from its answer
    json_t *body = json_object ();
    if (cli->ttl)
        json_object_set_new (body, "ttl", json_integer (cli->ttl));
    char *path = s_path (cli, cli->serial, "renew");
    int rc = s_issue_into (cli, path, body, true);
    free (path);
    json_decref (body);
    return rc;
}

//  ---------------------------------------------------------------- list, get, revoke

static int
s_list (s_cli_t *cli)
{
    char *path = s_path (cli, NULL, NULL);
    char *full = NULL;
    if (cli->status && asprintf (&full, "%s?status=%s", path, cli->status) < 0)
        full = NULL;
    json_t *root = umb_cli_rest_call_json (cli->rest, "GET", full ? full : path, NULL);
    free (full);
    free (path);
    if (!root)
        return S_EXIT_FAILED;
    json_t *items = json_object_get (root, "items");
    if (cli->json) {
        umb_cli_rest_print_json (cli->out, root);
        json_decref (root);
        return S_EXIT_OK;
    }
    //  Columns as wide as their widest value
    const char *headings [] = { "SERIAL", "STATUS", "PROFILE", "KEY TYPE", "NOT AFTER", "COMMON NAME" };
    const char *keys [] = { "serial", "status", "profile", "key_type", NULL, "common_name" };
    int widths [6];
    for (size_t c = 0; c < 6; c++)
        widths [c] = (int) strlen (headings [c]);
    widths [4] = 20;
    size_t index;
    json_t *item;
    json_array_foreach (items, index, item)
        for (size_t c = 0; c < 4; c++)
            if ((int) strlen (umb_cli_rest_str (item, keys [c])) > widths [c])
                widths [c] = (int) strlen (umb_cli_rest_str (item, keys [c]));
    fprintf (cli->out, "%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", widths [0], headings [0], widths [1],
             headings [1], widths [2], headings [2], widths [3], headings [3], widths [4], headings [4],
             headings [5]);
    json_array_foreach (items, index, item) {
        char not_after [32];
        umb_cli_rest_time (item, "not_after", not_after, sizeof (not_after));
        fprintf (cli->out, "%-*s  %-*s  %-*s  %-*s  %-*s  %s\n",
                 widths [0], umb_cli_rest_str (item, "serial"),
                 widths [1], umb_cli_rest_str (item, "status"),
                 widths [2], umb_cli_rest_str (item, "profile"),
                 widths [3], umb_cli_rest_str (item, "key_type"),
                 widths [4], not_after, umb_cli_rest_str (item, "common_name"));
    }
    json_decref (root);
    return S_EXIT_OK;
}

static void
s_print_cert (s_cli_t *cli, json_t *cert)
{
    char sans [2048] = "";
    size_t index;
    json_t *san;
    json_array_foreach (json_object_get (cert, "sans"), index, san) {
        size_t used = strlen (sans);
        snprintf (sans + used, sizeof (sans) - used, "%s%s", used ? ", " : "",
                  json_string_value (san) ? json_string_value (san) : "?");
    }
    char not_before [32], not_after [32], created_at [32], revoked_at [32];
    umb_cli_rest_time (cert, "not_before", not_before, sizeof (not_before));
    umb_cli_rest_time (cert, "not_after", not_after, sizeof (not_after));
    umb_cli_rest_time (cert, "created_at", created_at, sizeof (created_at));
    umb_cli_rest_time (cert, "revoked_at", revoked_at, sizeof (revoked_at));
    fprintf (cli->out,
             "serial        %s\n"
             "common name   %s\n"
             "names         %s\n"
             "status        %s\n"
             "profile       %s\n"
             "key type      %s\n"
             "valid         %s .. %s\n",
             umb_cli_rest_str (cert, "serial"), umb_cli_rest_str (cert, "common_name"),
             *sans ? sans : "-", umb_cli_rest_str (cert, "status"), umb_cli_rest_str (cert, "profile"),
             umb_cli_rest_str (cert, "key_type"), not_before, not_after);
    if (json_is_integer (json_object_get (cert, "revoked_at")))
        fprintf (cli->out, "revoked       %s (%s)\n", revoked_at, umb_cli_rest_str (cert, "reason"));
    fprintf (cli->out,
             "sha-256       %s\n"
             "issuing CA    %s\n"
             "workspace     %s\n"
             "created       %s by %s\n",
             umb_cli_rest_str (cert, "fingerprint"), umb_cli_rest_str (cert, "issuer"),
             umb_cli_rest_str (cert, "workspace_id"), created_at,
             umb_cli_rest_str (cert, "created_by"));
}

static int
s_get (s_cli_t *cli)
{
    if (cli->pem && cli->json) {
        fprintf (cli->err, "umbra: --pem and --json exclude each other\n");
        return S_EXIT_USAGE;
    }
    char *path = s_path (cli, cli->serial, NULL);
    json_t *root = umb_cli_rest_call_json (cli->rest, "GET", path, NULL);
    free (path);
    if (!root)
        return S_EXIT_FAILED;
    if (cli->json)
        umb_cli_rest_print_json (cli->out, root);
    else
    if (cli->pem)
        fputs (umb_cli_rest_str (root, "certificate"), cli->out);
    else
        s_print_cert (cli, root);
    json_decref (root);
    return S_EXIT_OK;
}

static int
s_revoke (s_cli_t *cli)
{
    json_t *body = json_object ();
    if (cli->reason)
        json_object_set_new (body, "reason", json_string (cli->reason));
    char *path = s_path (cli, cli->serial, "revoke");
    json_t *root = umb_cli_rest_call_json (cli->rest, "POST", path, body);
    free (path);
    json_decref (body);
    if (!root)
        return S_EXIT_FAILED;
    if (cli->json)
        umb_cli_rest_print_json (cli->out, root);
    else
        fprintf (cli->out, "revoked %s (%s)\n", umb_cli_rest_str (root, "serial"),
                 umb_cli_rest_str (root, "reason"));
    json_decref (root);
    return S_EXIT_OK;
}

//  ---------------------------------------------------------------- ca and crl

//  GETs path and writes the body, which must be of content type, to --out
//  or stdout.
static int
s_fetch (s_cli_t *cli, const char *path, const char *content_type)
{
    s_file_t file = { NULL, -1 };
    if (cli->out_path && s_file_create (cli, cli->out_path, 0644, &file))
        return S_EXIT_FAILED;
    umb_http_response_t response;
    if (umb_cli_rest_call (cli->rest, "GET", path, NULL, &response)) {
        s_files_close (&file, 1, true);
        return S_EXIT_FAILED;
    }
    int rc = S_EXIT_OK;
    const char *type = response.content_type ? response.content_type : "";
    if (strncasecmp (type, content_type, strlen (content_type))
    ||  (type [strlen (content_type)] != 0 && type [strlen (content_type)] != ';')) {
        fprintf (cli->err, "umbra: GET %s answered %s, not %s\n", path, *type ? type : "no content type",
                 content_type);
        rc = S_EXIT_FAILED;
    }
    else
    if (file.fd >= 0) {
        if (s_file_fill (cli, &file, response.body, response.size))
            rc = S_EXIT_FAILED;
    }
    else
    if (fwrite (response.body, 1, response.size, cli->out) != response.size || fflush (cli->out)) {
        fprintf (cli->err, "umbra: cannot write the answer: %s\n", strerror (errno));
        rc = S_EXIT_FAILED;
    }
    s_files_close (&file, 1, rc != S_EXIT_OK);
    umb_http_response_clear (&response);
    return rc;
}

static int
s_ca (s_cli_t *cli)
{
    return s_fetch (cli, "/ca.pem", "application/x-pem-file");
}

static int
s_crl (s_cli_t *cli)
{
    if (!cli->pem && !cli->out_path && isatty (fileno (cli->out))) {
        fprintf (cli->err, "umbra: the CRL is DER (binary): pass --pem, --out FILE, or redirect "
                 "the output\n");
        return S_EXIT_USAGE;
    }
    return cli->pem ? s_fetch (cli, "/crl?format=pem", "application/x-pem-file")
                    : s_fetch (cli, "/crl", "application/pkix-crl");
}

//  ---------------------------------------------------------------- issuing CAs

//  One line an issuing CA of a certs.ca answer.
static void
s_issuers_print (s_cli_t *cli, json_t *ca)
{
    size_t index;
    json_t *issuer;
    json_array_foreach (json_object_get (ca, "issuers"), index, issuer) {
        char not_after [32];
        umb_cli_rest_time (issuer, "not_after", not_after, sizeof (not_after));
        fprintf (cli->out, "%-40s  %-8s  until %s  CRL %s\n", umb_cli_rest_str (issuer, "id"),
                 json_is_true (json_object_get (issuer, "current")) ? "issues" : "answers",
                 not_after, umb_cli_rest_str (issuer, "crl_url"));
    }
}

static int
s_issuers (s_cli_t *cli)
{
    json_t *ca = umb_cli_rest_call_json (cli->rest, "GET", "/ca", NULL);
    if (!ca)
        return S_EXIT_FAILED;
    if (cli->json)
        umb_cli_rest_print_json (cli->out, json_object_get (ca, "issuers"));
    else
        s_issuers_print (cli, ca);
    json_decref (ca);
    return S_EXIT_OK;
}

static int
s_rotate_issuer (s_cli_t *cli)
{
    json_t *ca = umb_cli_rest_call_json (cli->rest, "POST", "/ca/rotate", NULL);
    if (!ca)
        return S_EXIT_FAILED;
    if (cli->json)
        umb_cli_rest_print_json (cli->out, ca);
    else
        s_issuers_print (cli, ca);
    json_decref (ca);
    return S_EXIT_OK;
}

//  ---------------------------------------------------------------- command line

int
umb_cli_certs_run (int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    assert (argc >= 1 && argv && envp && out && err);
    if (argc < 2) {
        s_usage (err);
        return S_EXIT_USAGE;
    }
    if (umb_cli_rest_is_help (argv [1])) {
        s_usage (out);
        return S_EXIT_OK;
    }
    size_t command = 0;
    while (s_commands [command].name && strcmp (s_commands [command].name, argv [1]))
        command++;
    if (!s_commands [command].name) {
        fprintf (err, "umbra: unknown certs command '%s'\n", argv [1]);
        s_usage (err);
        return S_EXIT_USAGE;
    }
    s_cli_t cli = { .out = out, .err = err };
    const char *url = NULL, *config_path = NULL;
    char *token = NULL;
    unsigned given = 0;
    int rc = S_EXIT_OK;
    int option;
    umb_cli_rest_getopt_start (&argc, &argv);
    char name [64];                 //  how the user wrote the option, for messages
    while (rc == S_EXIT_OK
       &&  (option = umb_cli_rest_getopt (argc, argv, ":", s_options, name, sizeof (name))) != -1) {
        unsigned bit = 0;
        switch (option) {
            case 'w': bit = S_OPT_WORKSPACE; cli.workspace = optarg; break;
            case 'n': bit = S_OPT_CN; cli.cn = optarg; break;
            case 'S':
                bit = S_OPT_SAN;
                if (cli.san_count == S_MAX_SANS) {
                    fprintf (err, "umbra: at most %d --san\n", S_MAX_SANS);
                    rc = S_EXIT_USAGE;
                }
                else
                    cli.sans [cli.san_count++] = optarg;
                break;
            case 'r': bit = S_OPT_CSR; cli.csr_path = optarg; break;
            case 't': {
                bit = S_OPT_TTL;
                char *end = NULL;
                errno = 0;
                long long ttl = strtoll (optarg, &end, 10);
                if (errno || end == optarg || *end || ttl <= 0) {
                    fprintf (err, "umbra: --ttl takes a number of seconds, not '%s'\n", optarg);
                    rc = S_EXIT_USAGE;
                }
                cli.ttl = ttl;
                break;
            }
            case 'k': bit = S_OPT_KEY_TYPE; cli.key_type = optarg; break;
            case 'p': bit = S_OPT_PROFILE; cli.profile = optarg; break;
            case 'o': bit = S_OPT_OUT; cli.out_path = optarg; break;
            case 's': bit = S_OPT_STATUS; cli.status = optarg; break;
            case 'R': bit = S_OPT_REASON; cli.reason = optarg; break;
            case 'P': bit = S_OPT_PEM; cli.pem = true; break;
            case 'j': bit = S_OPT_JSON; cli.json = true; break;
            case 'u': url = optarg; break;
            case 'T': umb_cli_rest_take_secret (&token, optarg); break;
            case 'c': config_path = optarg; break;
            case 'h':
                umb_cli_rest_usage_command (out, "certs", s_commands [command].usage);
                umb_cli_rest_usage_common (out);
                rc = -1;
                break;
            default:
                rc = umb_cli_rest_option_error (err, option, argv [optind - 1], "certs",
                                                s_commands [command].name);
                break;
        }
        if (rc == S_EXIT_OK && bit && !(s_commands [command].options & bit)) {
            fprintf (err, "umbra: certs %s does not take '%s'\n", s_commands [command].name, name);
            rc = S_EXIT_USAGE;
        }
        if (bit && bit != S_OPT_SAN && (given & bit) && rc == S_EXIT_OK) {
            fprintf (err, "umbra: '%s' is given twice\n", name);
            rc = S_EXIT_USAGE;
        }
        given |= bit;
    }
    bool help = rc == -1;
    if (help)
        rc = S_EXIT_OK;
    else
    if (rc == S_EXIT_OK) {
        //  Positional: SERIAL where the command takes one, nothing else
        int positional = argc - optind;
        if (s_commands [command].serial && positional == 1)
            cli.serial = argv [optind];
        else
        if (positional > 0 || s_commands [command].serial) {
            fprintf (err, "umbra: certs %s takes %s\n", s_commands [command].name,
                     s_commands [command].serial ? "one SERIAL" : "no arguments");
            rc = S_EXIT_USAGE;
        }
        unsigned missing = s_commands [command].required & ~given;
        if (rc == S_EXIT_OK && missing) {
            fprintf (err, "umbra: certs %s needs %s\n", s_commands [command].name,
                     missing & S_OPT_WORKSPACE ? "--workspace WS" : "--cn NAME");
            rc = S_EXIT_USAGE;
        }
        if (rc == S_EXIT_OK && cli.key_type && !umb_cli_rest_one_of (cli.key_type, s_key_types)) {
            fprintf (err, "umbra: --key-type is ec-p256, rsa-3072 or ed25519\n");
            rc = S_EXIT_USAGE;
        }
        if (rc == S_EXIT_OK && cli.profile && !umb_cli_rest_one_of (cli.profile, s_profiles)) {
            fprintf (err, "umbra: --profile is server or client\n");
            rc = S_EXIT_USAGE;
        }
        if (rc == S_EXIT_OK && cli.status && !umb_cli_rest_one_of (cli.status, s_statuses)) {
            fprintf (err, "umbra: --status is valid, revoked or expired\n");
            rc = S_EXIT_USAGE;
        }
        if (rc == S_EXIT_OK && ((cli.workspace && !*cli.workspace) || (cli.serial && !*cli.serial)
                                || (cli.cn && !*cli.cn) || (cli.out_path && !*cli.out_path))) {
            fprintf (err, "umbra: an empty value\n");
            rc = S_EXIT_USAGE;
        }
        if (rc)
            umb_cli_rest_usage_command (err, "certs", s_commands [command].usage);
    }
    if (rc == S_EXIT_OK && !help)
        cli.rest = umb_cli_rest_new (config_path, envp, url, token, err, &rc);
    if (rc == S_EXIT_OK && !help)
        rc = s_commands [command].run (&cli);
    umb_cli_rest_destroy (&cli.rest);
    umb_cli_rest_wipe (&token);
    return rc;
}

int
umb_cli_certs (int argc, char **argv)
{
    extern char **environ;
    return umb_cli_certs_run (argc, argv, environ, stdout, stderr);
}

//  ---------------------------------------------------------------- selftest
//  The commands against the real gateway, auth and certs services in this
//  process (tests/integration/certs_cli.sh does it again with `umbra up`
//  and checks the files with openssl).
#include <czmq.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "umb_cli_testkit.h"

UMB_CLI_TESTKIT_RUNNER (s_test_run, umb_cli_certs_run, "certs")

void
umb_cli_certs_test (bool verbose)
{
    if (verbose)
        printf (" * umb_cli_certs: ");
    const char *services [] = { "certs", NULL };
    umb_cli_testkit_t *kit = umb_cli_testkit_new ("umb-cli-certs", services, NULL);
    const char *dir = umb_cli_testkit_dir (kit);
    const char *url = umb_cli_testkit_url (kit);

    //  alice is admin of lab, bob a member, carol outside
    char *alice = umb_cli_testkit_user (url, "alice");
    char *bob = umb_cli_testkit_user (url, "bob");
    char *carol = umb_cli_testkit_user (url, "carol");
    umb_cli_testkit_workspace (url, "lab", alice, "bob", bob);

    //  Usage errors: exit 2, nothing sent
    umb_cli_testkit_run_t run = s_test_run (url, alice, NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "usage: umbra certs COMMAND");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "help", NULL);
    umb_cli_testkit_expect (&run, 0, "umbra certs COMMAND", NULL);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "issue", "--help", NULL);
    umb_cli_testkit_expect (&run, 0, "--key-type ec-p256|rsa-3072|ed25519", NULL);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "sign", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "unknown certs command 'sign'");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "issue", "--cn", "x", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "needs --workspace WS");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "issue", "--workspace", "lab", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "needs --cn NAME");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "issue", "--workspace", "lab", "--cn", "x", "--key-type", "dsa", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "--key-type is ec-p256, rsa-3072 or ed25519");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "issue", "--workspace", "lab", "--cn", "x", "--ttl", "1d", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "--ttl takes a number of seconds");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "issue", "--workspace", "lab", "--cn", "x", "--profile", "peer", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "--profile is server or client");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "issue", "--workspace", "lab", "--cn", "x", "--csr", "/nonexistent",
                      "--key-type", "ed25519", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "--key-type is for keys made by the service");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "issue", "--workspace", "lab", "--cn", "x", "--csr", "/nonexistent", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "cannot read /nonexistent");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "get", "--workspace", "lab", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "takes one SERIAL");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "list", "--workspace", "lab", "extra", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "takes no arguments");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "list", "--workspace", "lab", "--status", "good", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "--status is valid, revoked or expired");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "list", "--workspace", "lab", "--workspace", "lab", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "is given twice");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "ca", "--workspace", "lab", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "certs ca does not take '--workspace'");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "list", "--workspace", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "--workspace needs a value");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "list", "--nope", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "unknown option '--nope'");
    umb_cli_testkit_run_free (&run);
    run = s_test_run ("ftp://x", alice, "ca", NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "client.url");
    umb_cli_testkit_run_free (&run);

    //  Issue with a key made by the service: three files, the key 0600; the serial printed
    char *out1 = zsys_sprintf ("%s/one", dir);
    assert (mkdir (out1, 0700) == 0);
    run = s_test_run (url, alice, "issue", "--workspace", "lab", "--cn", "svc.lab", "--san", "svc.lab",
                      "--san", "10.0.0.1", "--ttl", "3600", "--key-type", "ed25519", "--out", out1, NULL);
    umb_cli_testkit_expect (&run, 0, NULL, "key.pem (keep it secret)");
    char *serial = strndup (run.out, strcspn (run.out, "\n"));
    assert (strlen (serial) > 0 && strlen (run.out) == strlen (serial) + 1);
    umb_cli_testkit_run_free (&run);
    char *path = zsys_sprintf ("%s/key.pem", out1);
    mode_t mode;
    char *key = umb_cli_testkit_read (path, NULL, &mode);
    assert (key && strstr (key, "PRIVATE KEY-----") && mode == 0600);
    zstr_free (&path);
    path = zsys_sprintf ("%s/chain.pem", out1);
    char *chain = umb_cli_testkit_read (path, NULL, &mode);
    assert (chain && strstr (chain, "-----BEGIN CERTIFICATE-----") && mode == 0644);
    zstr_free (&path);
    path = zsys_sprintf ("%s/cert.pem", out1);
    char *text = umb_cli_testkit_read (path, NULL, &mode);
    assert (text && mode == 0644);
    BIO *bio = BIO_new_mem_buf (text, -1);
    X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    assert (cert);
    BIGNUM *number = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
    char *hex = BN_bn2hex (number);
    assert (strcasecmp (hex, serial) == 0 || (hex [0] == '0' && strcasecmp (hex + 1, serial) == 0));
    OPENSSL_free (hex);
    BN_free (number);
    X509_free (cert);
    BIO_free (bio);
    free (text);
    zstr_free (&path);

    //  ...never over existing files, and then nothing is asked of the service
    run = s_test_run (url, alice, "issue", "--workspace", "lab", "--cn", "again", "--out", out1, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "existing files are never overwritten");
    umb_cli_testkit_run_free (&run);
    path = zsys_sprintf ("%s/key.pem", out1);
    text = umb_cli_testkit_read (path, NULL, NULL);
    assert (text && streq (text, key));
    free (text);
    zstr_free (&path);
    sodium_memzero (key, strlen (key));
    free (key);

    //  Issue from a CSR: no key.pem
    char *out2 = zsys_sprintf ("%s/two", dir);
    assert (mkdir (out2, 0700) == 0);
    char *csr = zsys_sprintf ("%s/request.pem", dir);
    EVP_PKEY *csr_key = EVP_EC_gen ("P-256");
    X509_REQ *request = X509_REQ_new ();
    X509_NAME_add_entry_by_txt (X509_REQ_get_subject_name (request), "CN", MBSTRING_UTF8,
                                (const unsigned char *) "x", -1, -1, 0);
    assert (X509_REQ_set_pubkey (request, csr_key) == 1);
    assert (X509_REQ_sign (request, csr_key, EVP_sha256 ()) > 0);
    FILE *file = fopen (csr, "w");
    assert (file && PEM_write_X509_REQ (file, request) == 1);
    fclose (file);
    X509_REQ_free (request);
    EVP_PKEY_free (csr_key);
    run = s_test_run (url, bob, "issue", "--workspace", "lab", "--cn", "x", "--csr", csr, "--out", out2,
                      NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (!strstr (run.err, "key.pem"));
    char *csr_serial = strndup (run.out, strcspn (run.out, "\n"));
    umb_cli_testkit_run_free (&run);
    path = zsys_sprintf ("%s/key.pem", out2);
    assert (access (path, F_OK) == -1);
    zstr_free (&path);
    path = zsys_sprintf ("%s/cert.pem", out2);
    assert (access (path, F_OK) == 0);
    zstr_free (&path);
    file = fopen (csr, "w");
    fputs ("not a request", file);
    fclose (file);
    run = s_test_run (url, bob, "issue", "--workspace", "lab", "--cn", "x", "--csr", csr, "--out", out2,
                      NULL);
    umb_cli_testkit_expect (&run, 2, NULL, "is not a PEM certificate request");
    umb_cli_testkit_run_free (&run);

    //  List as a table, filtered, as JSON; get
    run = s_test_run (url, bob, "list", "--workspace", "lab", NULL);
    umb_cli_testkit_expect (&run, 0, "SERIAL", NULL);
    assert (strstr (run.out, "COMMON NAME") && strstr (run.out, serial) && strstr (run.out, csr_serial));
    assert (strstr (run.out, "svc.lab") && strstr (run.out, "ed25519"));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "list", "--workspace", "lab", "--status", "revoked", NULL);
    umb_cli_testkit_expect (&run, 0, "SERIAL", NULL);
    assert (!strstr (run.out, serial));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "list", "--workspace", "lab", "--json", NULL);
    umb_cli_testkit_expect (&run, 0, "\"items\"", NULL);
    json_t *listed = json_loads (run.out, 0, NULL);
    assert (json_array_size (json_object_get (listed, "items")) == 2);
    json_decref (listed);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "get", "--workspace", "lab", serial, NULL);
    umb_cli_testkit_expect (&run, 0, "names         svc.lab, 10.0.0.1", NULL);
    assert (strstr (run.out, "status        valid") && !strstr (run.out, "revoked"));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "get", serial, "--workspace", "lab", "--pem", NULL);
    umb_cli_testkit_expect (&run, 0, "-----BEGIN CERTIFICATE-----", NULL);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "get", "--workspace", "lab", "ffff", NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 404 not_found: no certificate");
    umb_cli_testkit_run_free (&run);

    //  Revoke: a member is refused with the reason, an outsider sees nothing, the admin may
    run = s_test_run (url, bob, "revoke", "--workspace", "lab", serial, "--reason", "keyCompromise", NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 403 forbidden: ");
    assert (strstr (run.err, "certs.revoke") && !*run.out);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, carol, "revoke", "--workspace", "lab", serial, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 404 ");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "revoke", "--workspace", "lab", serial, "--reason", "keyCompromise", NULL);
    umb_cli_testkit_expect (&run, 0, "(keyCompromise)", NULL);
    assert (strstr (run.out, serial));
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, alice, "revoke", "--workspace", "lab", serial, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 409 ");
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, bob, "get", "--workspace", "lab", serial, NULL);
    umb_cli_testkit_expect (&run, 0, "revoked       ", NULL);
    umb_cli_testkit_run_free (&run);

    //  Renew: of a CSR certificate, no key; a revoked one is refused and leaves no files
    char *out3 = zsys_sprintf ("%s/three", dir);
    assert (mkdir (out3, 0700) == 0);
    run = s_test_run (url, bob, "renew", "--workspace", "lab", csr_serial, "--ttl", "600", "--out", out3,
                      NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (*run.out && !strstr (run.out, csr_serial));
    umb_cli_testkit_run_free (&run);
    path = zsys_sprintf ("%s/key.pem", out3);
    assert (access (path, F_OK) == -1);
    zstr_free (&path);
    char *out4 = zsys_sprintf ("%s/four", dir);
    assert (mkdir (out4, 0700) == 0);
    run = s_test_run (url, alice, "renew", "--workspace", "lab", serial, "--out", out4, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 409 ");
    umb_cli_testkit_run_free (&run);
    path = zsys_sprintf ("%s/cert.pem", out4);
    assert (access (path, F_OK) == -1);
    zstr_free (&path);

    //  The CA chain and the CRL, public
    run = s_test_run (url, NULL, "ca", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (streq (run.out, chain));
    umb_cli_testkit_run_free (&run);
    path = zsys_sprintf ("%s/ca.pem", dir);
    run = s_test_run (url, NULL, "ca", "--out", path, NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    text = umb_cli_testkit_read (path, NULL, NULL);
    assert (text && streq (text, chain));
    free (text);
    free (chain);
    umb_cli_testkit_run_free (&run);
    run = s_test_run (url, NULL, "ca", "--out", path, NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "never overwritten");
    umb_cli_testkit_run_free (&run);
    zstr_free (&path);
    path = zsys_sprintf ("%s/crl.der", dir);
    run = s_test_run (url, NULL, "crl", "--out", path, NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    umb_cli_testkit_run_free (&run);
    size_t size;
    text = umb_cli_testkit_read (path, &size, NULL);
    const unsigned char *cursor = (const unsigned char *) text;
    X509_CRL *crl = d2i_X509_CRL (NULL, &cursor, (long) size);
    assert (crl && cursor == (const unsigned char *) text + size);
    BIGNUM *wanted = NULL;
    assert (BN_hex2bn (&wanted, serial) > 0);
    STACK_OF (X509_REVOKED) *revoked = X509_CRL_get_REVOKED (crl);
    assert (sk_X509_REVOKED_num (revoked) == 1);
    number = ASN1_INTEGER_to_BN (X509_REVOKED_get0_serialNumber (sk_X509_REVOKED_value (revoked, 0)),
                                 NULL);
    assert (BN_cmp (number, wanted) == 0);
    BN_free (number);
    BN_free (wanted);
    X509_CRL_free (crl);
    free (text);
    zstr_free (&path);
    run = s_test_run (url, NULL, "crl", "--pem", NULL);
    umb_cli_testkit_expect (&run, 0, NULL, NULL);
    assert (strncmp (run.out, "-----BEGIN X509 CRL-----\n", 25) == 0);
    umb_cli_testkit_run_free (&run);

    //  Tokens: none (with a hint), from --token (wiped from argv once read)
    run = s_test_run (url, NULL, "list", "--workspace", "lab", NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: 401 ");
    assert (strstr (run.err, "set UMBRA_CLIENT_TOKEN or pass --token"));
    umb_cli_testkit_run_free (&run);
    char *argv [] = { strdup ("certs"), strdup ("list"), strdup ("--workspace"), strdup ("lab"),
                      strdup ("--token"), strdup (bob), NULL };
    char *envp [] = { zsys_sprintf ("UMBRA_CLIENT_URL=%s", url), NULL };
    FILE *out = tmpfile (), *err = tmpfile ();
    assert (umb_cli_certs_run (6, argv, envp, out, err) == 0);
    for (size_t i = 0; i < 6; i++) {
        assert (!strstr (argv [i], bob));
        free (argv [i]);
    }
    text = umb_cli_testkit_slurp (err, NULL);
    assert (!strstr (text, bob));
    free (text);
    fclose (out);
    fclose (err);
    zstr_free (&envp [0]);

    //  The gateway gone: a clear reason, exit 1
    umb_cli_testkit_stop_gateway (kit);
    run = s_test_run (url, bob, "list", "--workspace", "lab", NULL);
    umb_cli_testkit_expect (&run, 1, NULL, "umbra: cannot reach http://127.0.0.1:");
    assert (!strstr (run.err, bob));
    umb_cli_testkit_run_free (&run);

    free (serial);
    free (csr_serial);
    free (alice);
    free (bob);
    free (carol);
    zstr_free (&csr);
    zstr_free (&out1);
    zstr_free (&out2);
    zstr_free (&out3);
    zstr_free (&out4);
    umb_cli_testkit_destroy (&kit);
    if (verbose)
        printf ("OK\n");
}
