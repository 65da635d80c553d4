/* Rotary position embedding (the rotate-half form of Llama, Qwen2, Mistral) forward and backward
 * for fp32 on the CPU, one pass each over q or k (see rope_cpu.py).
 *
 * x is (B, H, T, D) with any strides but a contiguous last dimension, cos and sin (B or 1, T, D)
 * likewise; out has its own strides. With h = D / 2, the forward is
 *   out[i] = c[i] x[i] - s[i] x[i+h]  (i < h),   out[i] = c[i] x[i] + s[i] x[i-h]  (i >= h)
 * and the backward its transpose
 *   gx[i] = c[i] g[i] + s[i+h] g[i+h]  (i < h),  gx[i] = c[i] g[i] - s[i-h] g[i-h]  (i >= h).
 * Each output element is computed by one thread the same way whatever the thread count. */
#include <stdint.h>

int swift_rope_abi(void) { return 1; }

void swift_rope(const float *x, int64_t B, int64_t H, int64_t T, int64_t D, int64_t xb, int64_t xh, int64_t xt,
                const float *cos, const float *sin, int64_t cb, int64_t ct, float *out, int64_t ob, int64_t oh,
                int64_t ot, int backward, int threads) {
    const int64_t h = D / 2;
#pragma omp parallel for collapse(2) num_threads(threads) schedule(static)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < T; t++) {
            const float *c = cos + b * cb + t * ct, *s = sin + b * cb + t * ct;
            for (int64_t hd = 0; hd < H; hd++) {
                const float *xr = x + b * xb + hd * xh + t * xt;
                float *o = out + b * ob + hd * oh + t * ot;
                if (!backward) {
                    for (int64_t i = 0; i < h; i++) o[i] = c[i] * xr[i] - s[i] * xr[i + h];
                    for (int64_t i = h; i < D; i++) o[i] = c[i] * xr[i] + s[i] * xr[i - h];
                } else {
                    for (int64_t i = 0; i < h; i++) o[i] = c[i] * xr[i] + s[i + h] * xr[i + h];
                    for (int64_t i = h; i < D; i++) o[i] = c[i] * xr[i] - s[i - h] * xr[i - h];
                }
            }
        }
    }
}
