//  umb_address - "host:port" listen addresses, resolved for bind()
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <czmq.h>
#include "umb_address.h"

struct addrinfo *
umb_address_resolve (const char *listen, const char *what, char **reason)
{
    assert (listen && what && reason);
    *reason = NULL;
    const char *colon = strrchr (listen, ':');
    if (!colon) {
        *reason = zsys_sprintf ("%s %s: expected host:port", what, listen);
        return NULL;
    }
    char host [256];
    snprintf (host, sizeof host, "%.*s", (int) (colon - listen), listen);
    if (*host == '[' && strlen (host) > 1 && host [strlen (host) - 1] == ']') {
        memmove (host, host + 1, strlen (host));
        host [strlen (host) - 1] = 0;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV
    };
    struct addrinfo *address = NULL;
    int rc = getaddrinfo (streq (host, "*") || !*host ? NULL : host, colon + 1, &hints, &address);
    if (rc) {
        *reason = zsys_sprintf ("%s %s: %s", what, listen, gai_strerror (rc));
        return NULL;
    }
    return address;
}

//  ---------------------------------------------------------------- selftest

static uint16_t
s_test_port (const struct addrinfo *address)
{
    if (address->ai_family == AF_INET6)
        return ntohs (((const struct sockaddr_in6 *) address->ai_addr)->sin6_port);
    return ntohs (((const struct sockaddr_in *) address->ai_addr)->sin_port);
}

void
umb_address_test (bool verbose)
{
    if (verbose)
        printf (" * umb_address: ");
    char *reason = (char *) "unset";
    char text [INET6_ADDRSTRLEN];

    struct addrinfo *address = umb_address_resolve ("127.0.0.1:8080", "test.listen", &reason);
    assert (address && reason == NULL);
    assert (address->ai_family == AF_INET && address->ai_socktype == SOCK_STREAM);
    assert (s_test_port (address) == 8080);
    const struct sockaddr_in *v4 = (const struct sockaddr_in *) address->ai_addr;
    assert (inet_ntop (AF_INET, &v4->sin_addr, text, sizeof text));
    assert (streq (text, "127.0.0.1"));
    freeaddrinfo (address);

    //  "[v6]" loses its brackets
    address = umb_address_resolve ("[::1]:0", "test.listen", &reason);
    assert (address && reason == NULL);
    assert (address->ai_family == AF_INET6 && s_test_port (address) == 0);
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *) address->ai_addr;
    assert (inet_ntop (AF_INET6, &v6->sin6_addr, text, sizeof text));
    assert (streq (text, "::1"));
    freeaddrinfo (address);

    //  "*" and nothing are every interface: a wildcard address
    const char *wildcards [] = { "*:9", ":9" };
    for (size_t i = 0; i < sizeof wildcards / sizeof wildcards [0]; i++) {
        address = umb_address_resolve (wildcards [i], "test.listen", &reason);
        assert (address && reason == NULL && s_test_port (address) == 9);
        if (address->ai_family == AF_INET)
            assert (((const struct sockaddr_in *) address->ai_addr)->sin_addr.s_addr
                    == htonl (INADDR_ANY));
        else {
            assert (address->ai_family == AF_INET6);
            assert (IN6_IS_ADDR_UNSPECIFIED (&((const struct sockaddr_in6 *) address->ai_addr)
                                              ->sin6_addr));
        }
        freeaddrinfo (address);
    }

    //  Refusals say which setting and why
    assert (umb_address_resolve ("127.0.0.1", "test.listen", &reason) == NULL);
    assert (streq (reason, "test.listen 127.0.0.1: expected host:port"));
    zstr_free (&reason);
    assert (umb_address_resolve ("127.0.0.1:http", "test.listen", &reason) == NULL);
    assert (reason && strncmp (reason, "test.listen 127.0.0.1:http: ", 28) == 0
            && strlen (reason) > 28);
    zstr_free (&reason);
    assert (umb_address_resolve ("[::1:80", "test.listen", &reason) == NULL);
    assert (reason && strncmp (reason, "test.listen [::1:80: ", 21) == 0);
    zstr_free (&reason);

    if (verbose)
        printf ("OK\n");
}
