/* kernel/lib/string.c under k_ names, so that the host's libc (which a
 * shared library's calls would otherwise bind to) is not what the tests of
 * tests/test_string_c.py exercise. */
#define memcpy k_memcpy
#define memmove k_memmove
#define memset k_memset
#define memcmp k_memcmp
#define strlen k_strlen
#define strnlen k_strnlen
#define strcmp k_strcmp
#define strncmp k_strncmp
#define str_copy k_str_copy
#include "../kernel/lib/string.c"
