//  umb_routes - the gateway's REST routes and their matcher
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "umb_routes.h"
#include "umb_percent.h"
#include "umb_openapi.h"

#define S_STREQ(a, b) (strcmp ((a), (b)) == 0)

#define S_AUTH(method_, pattern_, op_, ...) \
    { method_, pattern_, UMB_ROUTES_MESH, "auth", op_, __VA_ARGS__ }
#define S_CERTS(method_, pattern_, op_, ...) \
    { method_, pattern_, UMB_ROUTES_MESH, "certs", op_, __VA_ARGS__ }
#define S_CERTS_RAW(method_, pattern_, op_, ...) \
    { method_, pattern_, UMB_ROUTES_RAW, "certs", op_, __VA_ARGS__ }
#define S_BACKENDS(method_, pattern_, op_, ...) \
    { method_, pattern_, UMB_ROUTES_MESH, "backends", op_, __VA_ARGS__ }
#define S_COMPUTATIONS(method_, pattern_, op_, ...) \
    { method_, pattern_, UMB_ROUTES_MESH, "computations", op_, __VA_ARGS__ }
#define S_CMP "/workspaces/{ws}/computations/{computation}"
#define S_BILLING(method_, pattern_, op_, ...) \
    { method_, pattern_, UMB_ROUTES_MESH, "billing", op_, __VA_ARGS__ }

//  Final states of the event logs the gateway can stream
static const char *const s_run_final [] = { "Completed", "Failed", "Cancelled", NULL };
static const char *const s_cvm_final [] = { "Destroyed", "Failed", NULL };
#define S_CMP_FIELDS .fields = { "workspace", "computation" }

#define S_CONTENT_PEM "application/x-pem-file"
#define S_CONTENT_CRL "application/pkix-crl"

static const umb_routes_entry_t s_table [] = {
    //  The gateway's own
    { "GET", "/health",       UMB_ROUTES_HEALTH,  NULL, "gateway.health" },
    { "GET", "/metrics",      UMB_ROUTES_METRICS, NULL, "gateway.metrics" },
    { "GET", "/openapi.json", UMB_ROUTES_OPENAPI, NULL, "gateway.openapi" },

    //  Users and sessions
    S_AUTH ("POST",   "/users",                     "auth.users.register"),
    S_AUTH ("GET",    "/users/me",                  "auth.users.get",
            .fixed_field = "user", .fixed_value = "me"),
    S_AUTH ("GET",    "/users/{user}",              "auth.users.get", .fields = { "user" }),
    S_AUTH ("PATCH",  "/users/{user}",              "auth.users.update", .fields = { "user" }),
    S_AUTH ("POST",   "/users/{user}/disable",      "auth.users.disable", .fields = { "user" }),
    S_AUTH ("POST",   "/users/tokens",              "auth.tokens.create"),
    S_AUTH ("POST",   "/users/tokens/refresh",      "auth.tokens.refresh"),
    S_AUTH ("POST",   "/users/tokens/revoke",       "auth.tokens.revoke"),
    S_AUTH ("GET",    "/.well-known/jwks.json",     "auth.jwks"),

    //  Workspaces and their members
    S_AUTH ("POST",   "/workspaces",                "auth.workspaces.create"),
    S_AUTH ("GET",    "/workspaces",                "auth.workspaces.list"),
    S_AUTH ("GET",    "/workspaces/{ws}",           "auth.workspaces.get", .fields = { "workspace" }),
    S_AUTH ("PATCH",  "/workspaces/{ws}",           "auth.workspaces.rename", .fields = { "workspace" }),
    S_AUTH ("DELETE", "/workspaces/{ws}",           "auth.workspaces.delete", .fields = { "workspace" }),
    S_AUTH ("GET",    "/workspaces/{ws}/members",   "auth.members.list", .fields = { "workspace" }),
    S_AUTH ("PATCH",  "/workspaces/{ws}/members/{user}", "auth.members.update",
            .fields = { "workspace", "user" }),
    S_AUTH ("DELETE", "/workspaces/{ws}/members/{user}", "auth.members.remove",
            .fields = { "workspace", "user" }),

    //  Invitations
    S_AUTH ("POST",   "/workspaces/{ws}/invitations", "auth.invitations.create",
            .fields = { "workspace" }),
    S_AUTH ("GET",    "/workspaces/{ws}/invitations", "auth.invitations.list",
            .fields = { "workspace" }, .query = { "state" }),
    S_AUTH ("DELETE", "/workspaces/{ws}/invitations/{invitation}", "auth.invitations.cancel",
            .fields = { "workspace", "invitation" }),
    S_AUTH ("GET",    "/invitations",               "auth.invitations.mine", .query = { "state" }),
    S_AUTH ("POST",   "/invitations/{invitation}/accept", "auth.invitations.accept",
            .fields = { "invitation" }),
    S_AUTH ("POST",   "/invitations/{invitation}/reject", "auth.invitations.reject",
            .fields = { "invitation" }),

    //  API keys
    S_AUTH ("POST",   "/workspaces/{ws}/api-keys",  "auth.apikeys.create", .fields = { "workspace" }),
    S_AUTH ("GET",    "/workspaces/{ws}/api-keys",  "auth.apikeys.list", .fields = { "workspace" }),
    S_AUTH ("DELETE", "/workspaces/{ws}/api-keys/{key_id}", "auth.apikeys.revoke",
            .fields = { "workspace", "key_id" }),

    //  Certificates of a workspace, mesh identities, and the CA's public files
    S_CERTS ("POST",  "/workspaces/{ws}/certs",     "certs.issue", .fields = { "workspace" }),
    S_CERTS ("GET",   "/workspaces/{ws}/certs",     "certs.list", .fields = { "workspace" },
             .query = { "status" }),
    S_CERTS ("GET",   "/workspaces/{ws}/certs/{serial}", "certs.get",
             .fields = { "workspace", "serial" }),
    S_CERTS ("POST",  "/workspaces/{ws}/certs/{serial}/revoke", "certs.revoke",
             .fields = { "workspace", "serial" }),
    S_CERTS ("POST",  "/workspaces/{ws}/certs/{serial}/renew", "certs.renew",
             .fields = { "workspace", "serial" }),
    S_CERTS ("GET",   "/mesh/certs",                "certs.mesh.list"),
    S_CERTS ("POST",  "/mesh/certs/{serial}/revoke", "certs.mesh.revoke", .fields = { "serial" }),
    S_CERTS_RAW ("GET", "/ca.pem",                  "certs.ca",
                 .forms = { { "pem", "chain", S_CONTENT_PEM } }),
    S_CERTS ("GET", "/ca",                          "certs.ca"),
    S_CERTS ("POST", "/ca/rotate",                  "certs.ca.rotate"),
    S_CERTS_RAW ("GET", "/crl",                     "certs.crl",
                 .forms = { { "der", "crl_der", S_CONTENT_CRL }, { "pem", "crl_pem", S_CONTENT_PEM } },
                 .raw_query = "format"),
    S_CERTS_RAW ("GET", "/crl/{issuer}",            "certs.crl", .fields = { "issuer" },
                 .forms = { { "der", "crl_der", S_CONTENT_CRL }, { "pem", "crl_pem", S_CONTENT_PEM } },
                 .raw_query = "format"),

    //  TEE hosts and the confidential VMs on them
    S_BACKENDS ("GET",    "/workspaces/{ws}/backends", "backends.hosts.list", .fields = { "workspace" }),
    S_BACKENDS ("POST",   "/workspaces/{ws}/backends", "backends.hosts.register",
                .fields = { "workspace" }),
    S_BACKENDS ("GET",    "/workspaces/{ws}/backends/{host}", "backends.hosts.get",
                .fields = { "workspace", "host" }),
    S_BACKENDS ("DELETE", "/workspaces/{ws}/backends/{host}", "backends.hosts.remove",
                .fields = { "workspace", "host" }),
    S_BACKENDS ("GET",    "/workspaces/{ws}/cvms",     "backends.cvms.list", .fields = { "workspace" },
                .query = { "state", "cursor" }, .int_query = { "limit" }),
    S_BACKENDS ("POST",   "/workspaces/{ws}/cvms",     "backends.cvms.create", .fields = { "workspace" }),
    S_BACKENDS ("GET",    "/workspaces/{ws}/cvms/{cvm}", "backends.cvms.get",
                .fields = { "workspace", "cvm" }),
    S_BACKENDS ("DELETE", "/workspaces/{ws}/cvms/{cvm}", "backends.cvms.destroy",
                .fields = { "workspace", "cvm" }, .query = { "reason" }),
    S_BACKENDS ("POST",   "/workspaces/{ws}/cvms/{cvm}/manifest", "backends.cvms.manifest",
                .fields = { "workspace", "cvm" }),
    S_BACKENDS ("GET",    "/workspaces/{ws}/cvms/{cvm}/events", "backends.events.pull",
                .fields = { "workspace", "cvm" }, .int_query = { "after", "max", "wait_ms" },
                .follow_final = s_cvm_final),

    //  Computations, their participants' keys and assets, and the audit trail
    S_COMPUTATIONS ("POST",  "/workspaces/{ws}/computations", "computations.create",
                    .fields = { "workspace" }),
    S_COMPUTATIONS ("GET",   "/workspaces/{ws}/computations", "computations.list",
                    .fields = { "workspace" }, .query = { "participant", "name", "cursor" },
                    .int_query = { "limit" }),
    S_COMPUTATIONS ("GET",   "/workspaces/{ws}/computations/stats", "computations.stats",
                    .fields = { "workspace" }, .int_query = { "days" }),
    S_COMPUTATIONS ("GET",    S_CMP, "computations.get", S_CMP_FIELDS),
    S_COMPUTATIONS ("PATCH",  S_CMP, "computations.update", S_CMP_FIELDS),
    S_COMPUTATIONS ("DELETE", S_CMP, "computations.delete", S_CMP_FIELDS),
    S_COMPUTATIONS ("PUT",    S_CMP "/participants/me/key", "computations.keys.set", S_CMP_FIELDS),
    S_COMPUTATIONS ("PUT",    S_CMP "/assets/{asset}", "computations.assets.set",
                    .fields = { "workspace", "computation", "asset" }),
    S_COMPUTATIONS ("GET",    S_CMP "/check", "computations.check", S_CMP_FIELDS),
    S_COMPUTATIONS ("GET",    S_CMP "/manifest", "computations.manifest", S_CMP_FIELDS),
    S_COMPUTATIONS ("POST",   S_CMP "/runs", "computations.runs.start", S_CMP_FIELDS),
    S_COMPUTATIONS ("GET",    S_CMP "/runs", "computations.runs.list", S_CMP_FIELDS,
                    .int_query = { "limit" }),
    S_COMPUTATIONS ("GET",    S_CMP "/runs/{run}", "computations.runs.get",
                    .fields = { "workspace", "computation", "run" }),
    S_COMPUTATIONS ("POST",   S_CMP "/runs/{run}/stop", "computations.runs.stop",
                    .fields = { "workspace", "computation", "run" }),
    S_COMPUTATIONS ("GET",    S_CMP "/runs/{run}/events", "computations.runs.events",
                    .fields = { "workspace", "computation", "run" }, .int_query = { "after", "max" },
                    .follow_final = s_run_final),
    S_COMPUTATIONS ("GET",    S_CMP "/runs/{run}/logs", "computations.runs.logs",
                    .fields = { "workspace", "computation", "run" }, .int_query = { "after", "max" }),
    S_COMPUTATIONS ("GET",   "/workspaces/{ws}/audit", "computations.audit.list",
                    .fields = { "workspace" }, .int_query = { "after", "limit" }),

    //  Plans, limits, usage, the prepaid balance and its ledger
    S_BILLING ("GET",  "/billing/plans", "billing.plans.list"),
    S_BILLING ("GET",  "/billing/verify", "billing.verify"),
    S_BILLING ("GET",  "/workspaces/{ws}/billing", "billing.get", .fields = { "workspace" }),
    S_BILLING ("GET",  "/workspaces/{ws}/billing/statements", "billing.statements.list",
               .fields = { "workspace" }),
    S_BILLING ("GET",  "/workspaces/{ws}/billing/statements/{month}", "billing.statements.get",
               .fields = { "workspace", "month" }),
    { "GET", "/workspaces/{ws}/billing/statements/{month}/csv", UMB_ROUTES_RAW, "billing",
      "billing.statements.get", .fields = { "workspace", "month" }, .fixed_field = "format",
      .fixed_value = "csv", .forms = { { "csv", "csv", "text/csv; charset=utf-8" } } },
    S_BILLING ("GET",  "/workspaces/{ws}/billing/ledger", "billing.ledger.list",
               .fields = { "workspace" }, .int_query = { "after", "limit" }),
    S_BILLING ("PUT",  "/workspaces/{ws}/billing/plan", "billing.plan.set", .fields = { "workspace" }),
    S_BILLING ("POST", "/workspaces/{ws}/billing/credits", "billing.credits.add",
               .fields = { "workspace" }),
    { NULL }
};

//  The order methods are listed in an Allow header.
static const char *const s_methods [] = { "GET", "POST", "PUT", "PATCH", "DELETE", NULL };

const umb_routes_entry_t *
umb_routes_table (void)
{
    return s_table;
}

const umb_routes_form_t *
umb_routes_form (const umb_routes_entry_t *route, const char *name)
{
    assert (route);
    if (route->kind != UMB_ROUTES_RAW)
        return NULL;
    if (!name)
        return &route->forms [0];
    for (size_t i = 0; i < UMB_ROUTES_MAX_FORMS && route->forms [i].name; i++)
        if (S_STREQ (route->forms [i].name, name))
            return &route->forms [i];
    return NULL;
}

//  ---------------------------------------------------------------- matching

//  Splits pattern into segments (pointers into it, with lengths).
static size_t
s_pattern_segments (const char *pattern, const char **starts, size_t *lengths)
{
    size_t count = 0;
    const char *cursor = pattern + 1;
    while (*cursor) {
        assert (count < UMB_ROUTES_MAX_SEGMENTS);
        const char *slash = strchr (cursor, '/');
        size_t length = slash ? (size_t) (slash - cursor) : strlen (cursor);
        starts [count] = cursor;
        lengths [count++] = length;
        cursor += length + (slash ? 1 : 0);
    }
    return count;
}

static bool
s_is_param (const char *segment, size_t length)
{
    return length >= 3 && segment [0] == '{' && segment [length - 1] == '}';
}

//  If route's pattern matches the decoded segments, returns its literal mask
//  (bit for the first segment highest, so a larger mask is more specific)
//  plus one; else 0.
static uint32_t
s_match_route (const umb_routes_entry_t *route, char **segments, size_t count)
{
    const char *starts [UMB_ROUTES_MAX_SEGMENTS];
    size_t lengths [UMB_ROUTES_MAX_SEGMENTS];
    size_t pattern_count = s_pattern_segments (route->pattern, starts, lengths);
    if (pattern_count != count)
        return 0;
    uint32_t mask = 0;
    for (size_t i = 0; i < count; i++) {
        if (s_is_param (starts [i], lengths [i])) {
            if (*segments [i] == 0)
                return 0;
            continue;
        }
        if (strlen (segments [i]) != lengths [i] || memcmp (segments [i], starts [i], lengths [i]))
            return 0;
        mask |= 1u << (UMB_ROUTES_MAX_SEGMENTS - 1 - i);
    }
    return mask + 1;
}

int
umb_routes_match (const char *method, const char *path, umb_routes_match_t *match)
{
    assert (method && path && match);
    memset (match, 0, sizeof (*match));
    size_t length = strlen (path);
    if (length > UMB_ROUTES_MAX_PATH) {
        snprintf (match->reason, sizeof (match->reason), "the path is longer than %d bytes",
                  UMB_ROUTES_MAX_PATH);
        return match->status = 414;
    }
    if (*path != '/')
        return match->status = 404;
    if (length > 1 && path [length - 1] == '/')
        length--;

    //  Decode every segment into the buffer, NUL-terminated, one after another
    char *segments [UMB_ROUTES_MAX_SEGMENTS];
    size_t count = 0;
    char *out = match->buffer;
    for (size_t at = 1; length > 1; ) {
        const char *slash = memchr (path + at, '/', length - at);
        size_t size = slash ? (size_t) (slash - (path + at)) : length - at;
        if (count == UMB_ROUTES_MAX_SEGMENTS)
            return match->status = 404;
        int decoded = umb_percent_decode_into (out, path + at, size, false);
        if (decoded < 0) {
            snprintf (match->reason, sizeof (match->reason),
                      "path segment %zu has a bad percent-encoding, a NUL byte or invalid UTF-8",
                      count + 1);
            return match->status = 400;
        }
        segments [count++] = out;
        out += decoded + 1;
        if (!slash)
            break;
        at += size + 1;
    }

    const umb_routes_entry_t *best = NULL;
    uint32_t best_mask = 0;
    bool allowed [sizeof (s_methods) / sizeof (s_methods [0])] = { false };
    bool any = false;
    for (const umb_routes_entry_t *route = s_table; route->method; route++) {
        uint32_t mask = s_match_route (route, segments, count);
        if (!mask)
            continue;
        any = true;
        for (size_t m = 0; s_methods [m]; m++)
            if (S_STREQ (s_methods [m], route->method))
                allowed [m] = true;
        if (S_STREQ (route->method, method) && mask > best_mask) {
            best = route;
            best_mask = mask;
        }
    }
    if (!any)
        return match->status = 404;
    if (!best) {
        for (size_t m = 0; s_methods [m]; m++)
            if (allowed [m]) {
                size_t used = strlen (match->allow);
                snprintf (match->allow + used, sizeof (match->allow) - used, "%s%s",
                          used ? ", " : "", s_methods [m]);
            }
        snprintf (match->reason, sizeof (match->reason), "%.16s is not allowed here; allowed: %s",
                  method, match->allow);
        return match->status = 405;
    }
    match->route = best;
    const char *starts [UMB_ROUTES_MAX_SEGMENTS];
    size_t lengths [UMB_ROUTES_MAX_SEGMENTS];
    s_pattern_segments (best->pattern, starts, lengths);
    for (size_t i = 0; i < count; i++)
        if (s_is_param (starts [i], lengths [i])) {
            assert (match->params < UMB_ROUTES_MAX_PARAMS);
            assert (best->fields [match->params]);
            match->values [match->params++] = segments [i];
        }
    return match->status = 0;
}

//  ---------------------------------------------------------------- OpenAPI check

static const char *const s_openapi_methods [] = {
    "get", "put", "post", "delete", "options", "head", "patch", "trace", NULL
};

//  The parameter object, following a local "#/components/parameters/X" reference.
static json_t *
s_parameter (json_t *document, json_t *parameter)
{
    const char *ref = json_string_value (json_object_get (parameter, "$ref"));
    if (!ref)
        return parameter;
    const char *prefix = "#/components/parameters/";
    if (strncmp (ref, prefix, strlen (prefix)))
        return NULL;
    json_t *parameters = json_object_get (json_object_get (document, "components"), "parameters");
    return json_object_get (parameters, ref + strlen (prefix));
}

//  True if a parameter named name in where is declared for the operation
//  (on it or on its path).
static bool
s_has_parameter (json_t *document, json_t *path_item, json_t *operation, const char *name,
                 const char *where)
{
    json_t *lists [] = { json_object_get (operation, "parameters"),
                         json_object_get (path_item, "parameters") };
    for (size_t l = 0; l < 2; l++) {
        size_t index;
        json_t *parameter;
        json_array_foreach (lists [l], index, parameter) {
            json_t *resolved = s_parameter (document, parameter);
            const char *in = json_string_value (json_object_get (resolved, "in"));
            const char *named = json_string_value (json_object_get (resolved, "name"));
            if (in && named && S_STREQ (in, where) && S_STREQ (named, name))
                return true;
        }
    }
    return false;
}

//  Appends a line to *report.
static void
s_report (char **report, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_report (char **report, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *line = NULL;
    if (vasprintf (&line, format, args) < 0)
        line = NULL;
    va_end (args);
    if (!line)
        return;
    char *joined = NULL;
    if (asprintf (&joined, "%s%s%s", *report ? *report : "", *report ? "\n" : "", line) < 0)
        joined = NULL;
    free (line);
    if (joined) {
        free (*report);
        *report = joined;
    }
}

int
umb_routes_check_openapi (const char *document, size_t size, char **error)
{
    assert (document && error);
    *error = NULL;
    json_error_t reason;
    json_t *root = json_loadb (document, size, JSON_REJECT_DUPLICATES, &reason);
    if (!root) {
        s_report (error, "not valid JSON at line %d, column %d: %s", reason.line, reason.column,
                  reason.text);
        return -1;
    }
    const char *version = json_string_value (json_object_get (root, "openapi"));
    if (!version || strncmp (version, "3.1.", 4))
        s_report (error, "\"openapi\" is not 3.1.x");
    json_t *paths = json_object_get (root, "paths");
    if (!json_is_object (paths))
        s_report (error, "no \"paths\" object");

    //  Every route is documented, with its op and parameters
    for (const umb_routes_entry_t *route = s_table; route->method; route++) {
        char method [16];
        size_t i;
        for (i = 0; route->method [i] && i < sizeof (method) - 1; i++)
            method [i] = (char) (route->method [i] | 0x20);
        method [i] = 0;
        json_t *path_item = json_object_get (paths, route->pattern);
        json_t *operation = json_object_get (path_item, method);
        if (!json_is_object (operation)) {
            s_report (error, "%s %s is a route but not in the document", route->method,
                      route->pattern);
            continue;
        }
        const char *op = json_string_value (json_object_get (operation, "x-umbra-op"));
        if (!op || !S_STREQ (op, route->op))
            s_report (error, "%s %s: x-umbra-op is %s, the route calls %s", route->method,
                      route->pattern, op ? op : "missing", route->op);
        const char *starts [UMB_ROUTES_MAX_SEGMENTS];
        size_t lengths [UMB_ROUTES_MAX_SEGMENTS];
        size_t count = s_pattern_segments (route->pattern, starts, lengths);
        for (size_t s = 0; s < count; s++) {
            if (!s_is_param (starts [s], lengths [s]))
                continue;
            char name [64];
            snprintf (name, sizeof (name), "%.*s", (int) lengths [s] - 2, starts [s] + 1);
            if (!s_has_parameter (root, path_item, operation, name, "path"))
                s_report (error, "%s %s: path parameter %s is not declared", route->method,
                          route->pattern, name);
        }
        for (size_t q = 0; q < UMB_ROUTES_MAX_QUERY && route->query [q]; q++)
            if (!s_has_parameter (root, path_item, operation, route->query [q], "query"))
                s_report (error, "%s %s: query parameter %s is not declared", route->method,
                          route->pattern, route->query [q]);
        for (size_t q = 0; q < UMB_ROUTES_MAX_QUERY && route->int_query [q]; q++)
            if (!s_has_parameter (root, path_item, operation, route->int_query [q], "query"))
                s_report (error, "%s %s: query parameter %s is not declared", route->method,
                          route->pattern, route->int_query [q]);
        if (route->follow_final && !s_has_parameter (root, path_item, operation, "follow", "query"))
            s_report (error, "%s %s: query parameter follow is not declared", route->method,
                      route->pattern);
        if (route->raw_query && !s_has_parameter (root, path_item, operation, route->raw_query,
                                                  "query"))
            s_report (error, "%s %s: query parameter %s is not declared", route->method,
                      route->pattern, route->raw_query);
        json_t *content = json_object_get (json_object_get (json_object_get (operation, "responses"),
                                                            "200"), "content");
        for (size_t f = 0; route->kind == UMB_ROUTES_RAW && f < UMB_ROUTES_MAX_FORMS
                           && route->forms [f].name; f++)
            if (!json_object_get (content, route->forms [f].content_type))
                s_report (error, "%s %s: the 200 response does not list %s", route->method,
                          route->pattern, route->forms [f].content_type);
    }

    //  Every documented operation is a route
    const char *path;
    json_t *path_item;
    json_object_foreach (paths, path, path_item) {
        for (size_t m = 0; s_openapi_methods [m]; m++) {
            if (!json_object_get (path_item, s_openapi_methods [m]))
                continue;
            bool found = false;
            for (const umb_routes_entry_t *route = s_table; route->method && !found; route++)
                found = S_STREQ (route->pattern, path)
                     && strcasecmp (route->method, s_openapi_methods [m]) == 0;
            if (!found)
                s_report (error, "%s %s is in the document but not a route", s_openapi_methods [m],
                          path);
        }
    }
    json_decref (root);
    return *error ? -1 : 0;
}

//  ---------------------------------------------------------------- selftest

static void
s_test_match (const char *method, const char *path, int status, const char *op,
              const char *first, const char *second)
{
    umb_routes_match_t match;
    int rc = umb_routes_match (method, path, &match);
    if (rc != status)
        fprintf (stderr, "%s %s: %d, expected %d\n", method, path, rc, status);
    assert (rc == status);
    assert (match.status == status);
    if (status)
        return;
    assert (match.route && S_STREQ (match.route->op, op));
    assert (match.params == (first ? 1u : 0u) + (second ? 1u : 0u));
    if (first)
        assert (S_STREQ (match.values [0], first));
    if (second)
        assert (S_STREQ (match.values [1], second));
}

void
umb_routes_test (bool verbose)
{
    if (verbose)
        printf (" * umb_routes: ");

    //  The table is well formed: params line up with fields, no two routes
    //  share method and pattern shape
    for (const umb_routes_entry_t *route = s_table; route->method; route++) {
        assert (route->pattern [0] == '/' && route->op);
        bool calls = route->kind == UMB_ROUTES_MESH || route->kind == UMB_ROUTES_RAW;
        assert (calls == (route->service != NULL));
        //  Raw routes have forms, named apart, with a field and a type; others none
        assert ((route->kind == UMB_ROUTES_RAW) == (route->forms [0].name != NULL));
        assert (route->raw_query == NULL || route->kind == UMB_ROUTES_RAW);
        for (size_t f = 0; f < UMB_ROUTES_MAX_FORMS && route->forms [f].name; f++) {
            assert (route->forms [f].field && route->forms [f].content_type);
            for (size_t g = 0; g < f; g++)
                assert (!S_STREQ (route->forms [g].name, route->forms [f].name));
        }
        for (size_t q = 0; q < UMB_ROUTES_MAX_QUERY && route->query [q] && route->raw_query; q++)
            assert (!S_STREQ (route->query [q], route->raw_query));
        const char *starts [UMB_ROUTES_MAX_SEGMENTS];
        size_t lengths [UMB_ROUTES_MAX_SEGMENTS];
        size_t count = s_pattern_segments (route->pattern, starts, lengths);
        size_t params = 0;
        for (size_t i = 0; i < count; i++)
            params += s_is_param (starts [i], lengths [i]);
        for (size_t i = 0; i < UMB_ROUTES_MAX_PARAMS; i++)
            assert ((route->fields [i] != NULL) == (i < params));
        assert ((route->fixed_field == NULL) == (route->fixed_value == NULL));
        for (const umb_routes_entry_t *other = s_table; other < route; other++)
            assert (!S_STREQ (other->method, route->method) || !S_STREQ (other->pattern, route->pattern));
    }

    //  Literal paths, params, and the most specific pattern winning
    s_test_match ("POST", "/users", 0, "auth.users.register", NULL, NULL);
    s_test_match ("GET", "/users/me", 0, "auth.users.get", NULL, NULL);
    s_test_match ("PATCH", "/users/me", 0, "auth.users.update", "me", NULL);
    s_test_match ("GET", "/users/alice", 0, "auth.users.get", "alice", NULL);
    s_test_match ("POST", "/users/tokens", 0, "auth.tokens.create", NULL, NULL);
    s_test_match ("POST", "/users/tokens/refresh", 0, "auth.tokens.refresh", NULL, NULL);
    s_test_match ("POST", "/users/alice/disable", 0, "auth.users.disable", "alice", NULL);
    s_test_match ("GET", "/.well-known/jwks.json", 0, "auth.jwks", NULL, NULL);
    s_test_match ("PATCH", "/workspaces/lab/members/bob", 0, "auth.members.update", "lab", "bob");
    s_test_match ("DELETE", "/workspaces/lab/invitations/inv-1", 0, "auth.invitations.cancel",
                  "lab", "inv-1");
    s_test_match ("DELETE", "/workspaces/lab/api-keys/k1", 0, "auth.apikeys.revoke", "lab", "k1");
    s_test_match ("POST", "/invitations/i9/accept", 0, "auth.invitations.accept", "i9", NULL);
    s_test_match ("GET", "/health", 0, "gateway.health", NULL, NULL);
    s_test_match ("POST", "/workspaces/lab/certs", 0, "certs.issue", "lab", NULL);
    s_test_match ("GET", "/workspaces/lab/certs/", 0, "certs.list", "lab", NULL);
    s_test_match ("GET", "/workspaces/lab/certs/1a2b", 0, "certs.get", "lab", "1a2b");
    s_test_match ("POST", "/workspaces/lab/certs/1a2b/revoke", 0, "certs.revoke", "lab", "1a2b");
    s_test_match ("POST", "/workspaces/lab/certs/1a2b/renew", 0, "certs.renew", "lab", "1a2b");
    s_test_match ("GET", "/mesh/certs", 0, "certs.mesh.list", NULL, NULL);
    s_test_match ("POST", "/mesh/certs/ff01/revoke", 0, "certs.mesh.revoke", "ff01", NULL);
    s_test_match ("GET", "/ca.pem", 0, "certs.ca", NULL, NULL);
    s_test_match ("GET", "/crl", 0, "certs.crl", NULL, NULL);
    s_test_match ("GET", "/workspaces/lab/certs/1a2b/revoke", 405, NULL, NULL, NULL);
    s_test_match ("DELETE", "/workspaces/lab/certs/1a2b", 405, NULL, NULL, NULL);
    s_test_match ("POST", "/ca.pem", 405, NULL, NULL, NULL);
    umb_routes_match_t match;
    assert (umb_routes_match ("GET", "/workspaces/lab/certs", &match) == 0);
    assert (S_STREQ (match.route->query [0], "status") && S_STREQ (match.route->service, "certs"));
    assert (umb_routes_form (match.route, NULL) == NULL);

    //  Raw routes and their forms
    assert (umb_routes_match ("GET", "/ca.pem", &match) == 0 && match.route->kind == UMB_ROUTES_RAW);
    const umb_routes_form_t *form = umb_routes_form (match.route, NULL);
    assert (form && S_STREQ (form->field, "chain") && S_STREQ (form->content_type, S_CONTENT_PEM));
    assert (match.route->raw_query == NULL);
    assert (umb_routes_match ("GET", "/crl", &match) == 0 && match.route->kind == UMB_ROUTES_RAW);
    assert (S_STREQ (match.route->raw_query, "format"));
    form = umb_routes_form (match.route, NULL);
    assert (form && S_STREQ (form->field, "crl_der") && S_STREQ (form->content_type, S_CONTENT_CRL));
    assert (umb_routes_form (match.route, "der") == form);
    form = umb_routes_form (match.route, "pem");
    assert (form && S_STREQ (form->field, "crl_pem") && S_STREQ (form->content_type, S_CONTENT_PEM));
    assert (umb_routes_form (match.route, "PEM") == NULL);
    assert (umb_routes_form (match.route, "") == NULL);

    assert (umb_routes_match ("GET", "/workspaces/lab/invitations", &match) == 0);
    assert (S_STREQ (match.route->query [0], "state") && match.route->kind == UMB_ROUTES_MESH);
    assert (S_STREQ (match.route->service, "auth"));
    assert (umb_routes_match ("GET", "/metrics", &match) == 0 && match.route->kind == UMB_ROUTES_METRICS);
    assert (umb_routes_match ("GET", "/users/me", &match) == 0);
    assert (S_STREQ (match.route->fixed_field, "user") && S_STREQ (match.route->fixed_value, "me"));

    //  Trailing slashes: one is ignored, more are not
    s_test_match ("GET", "/workspaces/", 0, "auth.workspaces.list", NULL, NULL);
    s_test_match ("GET", "/workspaces/lab/", 0, "auth.workspaces.get", "lab", NULL);
    s_test_match ("GET", "/workspaces//", 404, NULL, NULL, NULL);
    s_test_match ("GET", "/workspaces//members", 404, NULL, NULL, NULL);
    s_test_match ("GET", "/", 404, NULL, NULL, NULL);
    s_test_match ("GET", "", 404, NULL, NULL, NULL);
    s_test_match ("GET", "*", 404, NULL, NULL, NULL);

    //  Encoded characters are decoded per segment: %2F stays inside its segment
    s_test_match ("GET", "/workspaces/a%2Fb", 0, "auth.workspaces.get", "a/b", NULL);
    s_test_match ("GET", "/workspaces/caf%C3%A9/members", 0, "auth.members.list", "caf\xc3\xa9", NULL);
    s_test_match ("GET", "/work%73paces/lab", 0, "auth.workspaces.get", "lab", NULL);
    s_test_match ("GET", "/workspaces/a+b%20c", 0, "auth.workspaces.get", "a+b c", NULL);
    s_test_match ("GET", "/workspaces/%zz", 400, NULL, NULL, NULL);
    s_test_match ("GET", "/workspaces/%4", 400, NULL, NULL, NULL);
    s_test_match ("GET", "/workspaces/a%00b", 400, NULL, NULL, NULL);
    s_test_match ("GET", "/workspaces/%C3", 400, NULL, NULL, NULL);
    s_test_match ("GET", "/workspaces/%ED%A0%80", 400, NULL, NULL, NULL);   //  a surrogate
    assert (umb_routes_match ("GET", "/workspaces/%zz", &match) == 400 && *match.reason);

    //  405 with the methods of every pattern matching the path; 404 otherwise
    assert (umb_routes_match ("PUT", "/workspaces/lab", &match) == 405);
    assert (S_STREQ (match.allow, "GET, PATCH, DELETE"));
    assert (umb_routes_match ("DELETE", "/users", &match) == 405 && S_STREQ (match.allow, "POST"));
    assert (umb_routes_match ("GET", "/users/tokens/refresh", &match) == 405);
    assert (S_STREQ (match.allow, "POST"));
    //  GET /users/tokens is the user named "tokens"
    s_test_match ("GET", "/users/tokens", 0, "auth.users.get", "tokens", NULL);
    assert (umb_routes_match ("DELETE", "/users/tokens", &match) == 405);
    assert (S_STREQ (match.allow, "GET, POST, PATCH"));
    assert (umb_routes_match ("get", "/health", &match) == 405);
    assert (umb_routes_match ("HEAD", "/health", &match) == 405 && S_STREQ (match.allow, "GET"));
    s_test_match ("GET", "/nope", 404, NULL, NULL, NULL);
    s_test_match ("GET", "/users/alice/disable/now", 404, NULL, NULL, NULL);
    s_test_match ("GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s", 404, NULL, NULL, NULL);
    char *long_path = malloc (UMB_ROUTES_MAX_PATH + 2);
    assert (long_path);
    memset (long_path, 'a', UMB_ROUTES_MAX_PATH + 1);
    long_path [0] = '/';
    long_path [UMB_ROUTES_MAX_PATH + 1] = 0;
    s_test_match ("GET", long_path, 414, NULL, NULL, NULL);
    free (long_path);

    //  The OpenAPI document and the table agree, both ways
    size_t size;
    const char *document = umb_openapi_embedded (&size);
    char *error = NULL;
    int rc = umb_routes_check_openapi (document, size, &error);
    if (rc)
        fprintf (stderr, "\nOpenAPI document and route table differ:\n%s\n", error);
    assert (rc == 0 && !error);
    //  ...and the check does notice a difference
    const char *wrong = "{\"openapi\": \"3.1.0\", \"paths\": {\"/users\": {\"post\": "
                        "{\"x-umbra-op\": \"auth.users.create\"}}, \"/nope\": {\"get\": {}}}}";
    assert (umb_routes_check_openapi (wrong, strlen (wrong), &error) == -1);
    assert (strstr (error, "/nope is in the document but not a route"));
    assert (strstr (error, "GET /workspaces is a route but not in the document"));
    assert (strstr (error, "x-umbra-op is auth.users.create"));
    free (error);
    assert (umb_routes_check_openapi ("{", 1, &error) == -1 && strstr (error, "line 1"));
    free (error);
    //  ...and a raw route whose content types or form parameter are missing
    json_t *root = json_loadb (document, size, 0, NULL);
    assert (root);
    json_t *crl = json_object_get (json_object_get (root, "paths"), "/crl");
    json_t *responses = json_object_get (json_object_get (crl, "get"), "responses");
    json_t *content = json_object_get (json_object_get (responses, "200"), "content");
    assert (json_object_get (content, S_CONTENT_CRL));
    json_object_del (content, S_CONTENT_CRL);
    json_object_del (json_object_get (crl, "get"), "parameters");
    json_object_del (crl, "parameters");
    char *changed = json_dumps (root, 0);
    assert (changed);
    assert (umb_routes_check_openapi (changed, strlen (changed), &error) == -1);
    assert (strstr (error, "GET /crl: the 200 response does not list application/pkix-crl"));
    assert (strstr (error, "GET /crl: query parameter format is not declared"));
    assert (!strstr (error, "/ca.pem"));
    free (error);
    free (changed);
    json_decref (root);

    if (verbose)
        printf ("OK\n");
}
