/* lamp: the export macro. liblamp.so is built with -fvisibility=hidden, so only declarations
 * marked LAMP_API (the public API in these headers) are exported; internals stay hidden. */
#ifndef LAMP_EXPORT_H
#define LAMP_EXPORT_H

#if defined(LAMP_BUILDING) && defined(__GNUC__)
#define LAMP_API __attribute__((visibility("default")))
#else
#define LAMP_API
#endif

#endif
