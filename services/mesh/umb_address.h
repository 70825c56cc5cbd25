//  umb_address - "host:port" listen addresses, resolved for bind()
#ifndef UMB_ADDRESS_H_INCLUDED
#define UMB_ADDRESS_H_INCLUDED

#include <stdbool.h>
#include <netdb.h>

//  Resolves listen, "host:port", into a passive TCP address to bind (or hand
//  to MHD_OPTION_SOCK_ADDR). host is a name, an address, "[v6]", or "*" or
//  nothing for every interface; port is numeric. what names the setting in
//  the reason ("gateway.listen"). Returns the first address (the caller frees
//  it with freeaddrinfo), or NULL with *reason set (the caller frees it).
struct addrinfo *umb_address_resolve (const char *listen, const char *what, char **reason);

void umb_address_test (bool verbose);

#endif
