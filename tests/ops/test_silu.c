/* silu_mul (gate = gate / (1 + e^-gate) * up, with the library's own vectorised exp) against the
 * same formula in doubles, over gates from -120 to 120 (past both ends of exp's clamp): within 8
 * float ulps of the result, or within 1e-30 where the result is that small (below a gate of
 * about -74, where exp's clamp and float underflow decide the last bits). */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "ops/ops.h"

enum { N = 4801 };

int main(void)
{
    static float gate[N], up[N], expected[N];
    for (int i = 0; i < N; i++) {
        gate[i] = -120.0f + 0.05f * (float)i;
        up[i] = i % 3 == 0 ? -1.5f : 0.75f;
        double g = gate[i];
        expected[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
    }
    silu_mul(gate, up, N);
    int bad = 0;
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        double error = fabs((double)gate[i] - expected[i]);
        if (fabs(expected[i]) < 1e-30) {
            bad += error > 1e-30;
            continue;
        }
        double ulps = error / (ldexp(1.0, -23) * fabs(expected[i]));
        worst = fmax(worst, ulps);
        bad += ulps > 8.0;
    }
    CHECK(bad == 0, "%d of %d SiLU values off by more than 8 ulps", bad, N);
    printf("silu_mul: worst %.2f ulps where the result is above 1e-30, %d gates\n", worst, N);
    return check_summary();
}
