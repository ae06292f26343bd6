/* The header alone: compiles cleanly as C99, C11, C17 and (copied to .cpp) C++11 to C++20 with
 * -Wall -Wextra -Wpedantic -Werror, is idempotent, and its version macros agree with the library. */
#include "keyplane.h"
#include "keyplane.h"

#include <stdio.h>
#include <string.h>

#if KP_VERSION_NUMBER != (KP_VERSION_MAJOR * 10000 + KP_VERSION_MINOR * 100 + KP_VERSION_PATCH)
#error "KP_VERSION_NUMBER disagrees with the version macros"
#endif

int main(void) {
  kp_status status = KP_STATUS_OK;
  kp_out out = {NULL, 0, 0, KP_STATUS_OK};
  if (strcmp(kp_version(), KP_VERSION) != 0) {
    fprintf(stderr, "header %s, library %s\n", KP_VERSION, kp_version());
    return 1;
  }
  (void)out;
  printf("test_header: header %s matches the library\n", KP_VERSION);
  printf("1 passed, 0 failed\n");
  return (int)status;
}
