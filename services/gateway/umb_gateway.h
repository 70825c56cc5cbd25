//  umb_gateway - the REST gateway: HTTP/1.1 with JSON (libmicrohttpd) in
//  front of the mesh (msgpack over ZeroMQ)
//
//  Each REST route (umb_routes) becomes one mesh call: path parameters and
//  declared query parameters become body fields, the bearer token or API key
//  goes into the envelope unverified (the services check it), the mesh
//  status is the HTTP status and the reply body comes back as JSON; a raw
//  route (GET /ca.pem, GET /crl) answers with one field of the reply as the
//  body under its content type instead, errors staying JSON. The services
//  behind it: auth and certs. Its own endpoints: GET /health (every service
//  probed), GET /metrics (Prometheus text, every service's registry merged
//  with the gateway's) and GET /openapi.json. JSON answers are wiped from
//  memory once sent: they may carry tokens or private keys.
//
//      zactor_t *gateway = zactor_new (umb_gateway_actor, runtime);
//      zstr_send (gateway, "PORT");
//      char *port = zstr_recv (gateway);       //  "0" if it could not start
//      ...
//      zactor_destroy (&gateway);              //  waits for requests in flight
//
//  Settings: gateway.listen, gateway.max_body_bytes, gateway.max_connections,
//  gateway.timeout_ms (deadline of each mesh call), gateway.threads, and
//  <service>.endpoint / <service>.public_key of every service it calls.
#ifndef UMB_GATEWAY_H_INCLUDED
#define UMB_GATEWAY_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>

//  args is the umb_runtime_t * of the process (borrowed; it outlives the
//  actor). Signals ready even when start fails (the reason is logged once);
//  then answers "PORT" with "0" and "REASON" with the reason until $TERM.
void umb_gateway_actor (zsock_t *pipe, void *args);

void umb_gateway_test (bool verbose);

#endif
