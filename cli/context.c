#include "context.h"

#include <stdio.h>

#include "lamp/profile.h"

void lamp_cli_context_release(lamp_context *ctx) {
  if (ctx && lamp_profile_enabled(ctx) && lamp_profile_print(ctx, stderr) != LAMP_OK)
    fprintf(stderr, "lamp: the kernel timing table could not be printed: %s\n",
            lamp_context_error(ctx));
  lamp_context_release(ctx);
}
