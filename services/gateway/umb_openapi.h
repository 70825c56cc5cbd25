//  umb_openapi - the OpenAPI document of the REST API (docs/openapi.json),
//  embedded in the binary at build time
#ifndef UMB_OPENAPI_H_INCLUDED
#define UMB_OPENAPI_H_INCLUDED

#include <stddef.h>

//  The document as built in; *size set (the text is also NUL-terminated).
const char *umb_openapi_embedded (size_t *size);

#endif
