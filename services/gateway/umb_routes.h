//  umb_routes - the gateway's REST routes: one static table mapping
//  (method, path pattern) to a mesh operation, and the matcher
//
//  A pattern is literal segments and {param} segments:
//  "/workspaces/{ws}/members/{user}". Each {param} becomes a body field of the
//  mesh request (fields, in order). When several patterns match a path, the
//  one whose first differing segment is literal wins ("/users/tokens" over
//  "/users/{user}") among those that allow the method.
//
//  Most routes answer with the mesh reply as JSON. A raw route (UMB_ROUTES_RAW)
//  answers with one field of the reply (str or bin) as the whole body, under
//  a content type: GET /ca.pem is the "chain" field as application/x-pem-file.
//  A raw route may offer several forms, chosen by the value of a query
//  parameter (raw_query; the first form when it is absent): GET /crl is DER,
//  GET /crl?format=pem is PEM. Errors stay JSON.
#ifndef UMB_ROUTES_H_INCLUDED
#define UMB_ROUTES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define UMB_ROUTES_MAX_PARAMS   4       //  {param} segments in one pattern
#define UMB_ROUTES_MAX_QUERY    4       //  query parameters one route takes
#define UMB_ROUTES_MAX_SEGMENTS 16      //  segments in a path we try to match
#define UMB_ROUTES_MAX_PATH     2048    //  bytes of a raw path
#define UMB_ROUTES_MAX_FORMS    2       //  forms of one raw route

//  How the gateway answers a route.
typedef enum {
    UMB_ROUTES_MESH = 0,        //  a call of op on service, the reply as JSON
    UMB_ROUTES_RAW,             //  a call of op on service, one reply field as the body
    UMB_ROUTES_HEALTH,          //  the gateway's own endpoints
    UMB_ROUTES_METRICS,
    UMB_ROUTES_OPENAPI
} umb_routes_kind_t;

//  One form of a raw route's answer.
typedef struct {
    const char *name;                                   //  "pem": the value of raw_query choosing it
    const char *field;                                  //  reply field sent as the body (str or bin)
    const char *content_type;                           //  "application/x-pem-file"
} umb_routes_form_t;

typedef struct {
    const char       *method;                           //  "GET"
    const char       *pattern;                          //  "/workspaces/{ws}"
    umb_routes_kind_t kind;
    const char       *service;                          //  "auth"; NULL for own endpoints
    const char       *op;                               //  "auth.workspaces.get"
    const char       *fields [UMB_ROUTES_MAX_PARAMS];   //  body field of each {param}
    const char       *query [UMB_ROUTES_MAX_QUERY];     //  query parameters copied as strings
    const char       *int_query [UMB_ROUTES_MAX_QUERY]; //  ...copied as integers (400 if not one)
    const char       *fixed_field;                      //  a constant body field, or NULL
    const char       *fixed_value;
    umb_routes_form_t forms [UMB_ROUTES_MAX_FORMS];     //  UMB_ROUTES_RAW: the first is the default
    const char       *raw_query;                        //  query parameter choosing a form, or NULL
    //  An event log: with ?follow=1 the answer is a Server-Sent Events stream
    //  (umb_sse) that ends once the log's state is one of these
    const char *const *follow_final;
} umb_routes_entry_t;

typedef struct {
    //  0 matched; 404 no pattern matches the path; 405 patterns match but
    //  none allows the method (allow lists those that do); 400 the path is
    //  malformed (bad percent-encoding, invalid UTF-8, NUL; reason says).
    int                       status;
    const umb_routes_entry_t *route;
    char                      allow [48];       //  "GET, PATCH, DELETE"
    char                      reason [192];
    size_t                    params;           //  decoded values of the {param}s
    const char               *values [UMB_ROUTES_MAX_PARAMS];
    char                      buffer [UMB_ROUTES_MAX_PATH + UMB_ROUTES_MAX_SEGMENTS];
} umb_routes_match_t;

//  The table, terminated by an entry with method NULL.
const umb_routes_entry_t *umb_routes_table (void);

//  Matches method and path (raw, percent-encoded, without the query
//  string) into match. A single trailing slash is ignored. Returns
//  match->status.
int  umb_routes_match (const char *method, const char *path, umb_routes_match_t *match);

//  The form of raw route called name (the value of its raw_query), or its
//  first form when name is NULL. NULL if the route has no form so named.
const umb_routes_form_t *umb_routes_form (const umb_routes_entry_t *route, const char *name);


//  Checks the route table against an OpenAPI document (JSON text): every
//  route is a path and operation there with a matching x-umbra-op, and every
//  operation there is a route; a raw route's 200 response lists the content
//  type of each of its forms and its raw_query is declared. Returns 0, or -1
//  with what differs in *error (caller frees).
int  umb_routes_check_openapi (const char *document, size_t size, char **error);

void umb_routes_test (bool verbose);

#endif
