/* rollout_grad_test.c: calls value_and_grad_rollout on the values given as arguments (or built-in
 * ones) and prints each result as `name value`.
 *     cc -O2 -Wall -Werror -o rollout_grad_test rollout_grad.c rollout_grad_test.c -lm
 *     ./rollout_grad_test x k */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "rollout_grad.h"

static double work[VALUE_AND_GRAD_ROLLOUT_WORK];

int main(int argc, char **argv)
{
    double args[2] = {0.5, 2.0};
    double results[3];
    if (argc != 1 && argc != 3) {
        fprintf(stderr, "usage: %s x k\n", argv[0]);
        return 2;
    }
    for (int k = 1; k < argc; k++) {
        args[k - 1] = strtod(argv[k], NULL);
    }
    value_and_grad_rollout(args[0], args[1], results, work);
    printf("value %.17g\n", results[0]);
    printf("d/dx %.17g\n", results[1]);
    printf("d/dk %.17g\n", results[2]);
    return 0;
}
