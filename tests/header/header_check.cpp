// The header compiled as C++17 (-Wall -Wextra -pedantic -Werror): the same checks as C.
#include "header_check.c"
