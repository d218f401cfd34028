/* f_grad_test.c: calls value_and_grad_f on the values given as arguments (or built-in
 * ones) and prints each result as `name value`.
 *     cc -O2 -Wall -Werror -o f_grad_test f_grad.c f_grad_test.c -lm
 *     ./f_grad_test x y */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "f_grad.h"

int main(int argc, char **argv)
{
    double args[2] = {1.5, 2.0};
    double results[3];
    if (argc != 1 && argc != 3) {
        fprintf(stderr, "usage: %s x y\n", argv[0]);
        return 2;
    }
    for (int k = 1; k < argc; k++) {
        args[k - 1] = strtod(argv[k], NULL);
    }
    value_and_grad_f(args[0], args[1], results);
    printf("value %.17g\n", results[0]);
    printf("d/dx %.17g\n", results[1]);
    printf("d/dy %.17g\n", results[2]);
    return 0;
}
