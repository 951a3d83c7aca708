/* The library's version, spelled from the macros it was compiled with. */
#include "lamp/version.h"

#define LAMP__STR(x) #x
#define LAMP__XSTR(x) LAMP__STR(x)

const char *lamp_version_string(void) {
  return LAMP__XSTR(LAMP_VERSION_MAJOR) "." LAMP__XSTR(LAMP_VERSION_MINOR) "."
      LAMP__XSTR(LAMP_VERSION_PATCH);
}
