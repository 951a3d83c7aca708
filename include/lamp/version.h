/* lamp: the version of these headers, and of the library a program runs with. */
#ifndef LAMP_VERSION_H
#define LAMP_VERSION_H

#include "lamp/export.h"

/* Kept equal to project(VERSION) in CMakeLists.txt (the test check_cli compares them). */
#define LAMP_VERSION_MAJOR 0
#define LAMP_VERSION_MINOR 1
#define LAMP_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/* "MAJOR.MINOR.PATCH" of the library that is linked, which may differ from the LAMP_VERSION_*
 * a program was compiled with when it loads another liblamp.so. */
LAMP_API const char *lamp_version_string(void);

#ifdef __cplusplus
}
#endif

#endif
