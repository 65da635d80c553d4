/* RMSNorm forward and backward for fp32 on the CPU, one pass each (see rms_norm_cpu.py).
 *
 * Rows are split across threads for y and grad_x, columns for grad_weight; every element's result
 * is computed the same way whatever the thread count, so a run is reproducible across machines
 * with different core counts. Built by swift_core.native_build. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int swift_rms_norm_abi(void) { return 1; }

/* y = x * rstd * w per row, rstd = 1 / sqrt(mean(x^2) + eps) (kept for the backward). */
void swift_rms_norm_fwd(const float *x, const float *w, float eps, int64_t rows, int64_t n, float *y,
                        float *rstd, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < rows; t++) {
        const float *xr = x + t * n;
        float *yr = y + t * n;
        float ss = 0.0f;
        for (int64_t j = 0; j < n; j++) ss += xr[j] * xr[j];
        float r = 1.0f / sqrtf(ss / (float)n + eps);
        rstd[t] = r;
        for (int64_t j = 0; j < n; j++) yr[j] = (xr[j] * r) * w[j];
    }
}

/* gx = r * (g * w) - x * r^3 * dot(g * w, x) / n per row; gw (when not NULL) = sum over rows of
 * g * x * r, accumulated in double per column. */
void swift_rms_norm_bwd(const float *g, const float *x, const float *w, const float *rstd, int64_t rows,
                        int64_t n, float *gx, float *gw, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < rows; t++) {
        const float *gr = g + t * n, *xr = x + t * n;
        float *out = gx + t * n;
        float r = rstd[t];
        float dot = 0.0f;
        for (int64_t j = 0; j < n; j++) dot += gr[j] * w[j] * xr[j];
        float c = dot * r * r * r / (float)n;
        for (int64_t j = 0; j < n; j++) out[j] = r * gr[j] * w[j] - xr[j] * c;
    }
    if (gw == NULL) return;
    const int64_t block = 64;
    int64_t blocks = (n + block - 1) / block;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t j0 = b * block, j1 = j0 + block < n ? j0 + block : n;
        double acc[64] = {0};
        for (int64_t t = 0; t < rows; t++) {
            const float *gr = g + t * n, *xr = x + t * n;
            float r = rstd[t];
            for (int64_t j = j0; j < j1; j++) acc[j - j0] += (double)(gr[j] * xr[j] * r);
        }
        for (int64_t j = j0; j < j1; j++) gw[j] = (float)acc[j - j0];
    }
}
