/* silu(a) * b (the gated MLP of Llama, Qwen2, Mistral) forward and backward for fp32 on the CPU,
 * one pass each (see swiglu_cpu.py). The backward recomputes sigmoid(a) from a, so only a and b
 * are kept: autograd of `silu(a) * b` keeps silu(a) as well.
 *
 * exp is a polynomial of our own (range reduction to [-ln2/2, ln2/2], Taylor to degree 7: a few
 * ulp of expf), in GCC vector extensions so that it vectorizes on any target; each
 * element is computed the same way whatever the thread count. */
#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

int swift_swiglu_abi(void) { return 1; }

static inline v8f splat(float x) { return (v8f){x, x, x, x, x, x, x, x}; }

/* Per lane: m ? a : b (vector casts between same-size types reinterpret the bits). */
static inline v8f select8(v8i m, v8f a, v8f b) { return (v8f)((m & (v8i)a) | (~m & (v8i)b)); }

static inline v8f exp8(v8f x) {
    x = select8(x < splat(-87.0f), splat(-87.0f), x);
    x = select8(x > splat(88.0f), splat(88.0f), x);
    /* n = round(x / ln2), r = x - n ln2 in two parts (Cody-Waite), |r| <= ln2 / 2 */
    v8f half = select8(x >= splat(0.0f), splat(0.5f), splat(-0.5f));
    v8i ni = __builtin_convertvector(x * splat(1.44269504f) + half, v8i);
    v8f n = __builtin_convertvector(ni, v8f);
    v8f r = x - n * splat(0.693145752f) - n * splat(1.42860677e-6f);
    v8f p = splat(1.0f / 5040.0f);
    p = p * r + splat(1.0f / 720.0f);
    p = p * r + splat(1.0f / 120.0f);
    p = p * r + splat(1.0f / 24.0f);
    p = p * r + splat(1.0f / 6.0f);
    p = p * r + splat(0.5f);
    p = p * r + splat(1.0f);
    p = p * r + splat(1.0f);
    return p * (v8f)((ni + 127) << 23);
}

static inline v8f sigmoid8(v8f a) { return splat(1.0f) / (splat(1.0f) + exp8(-a)); }

static inline v8f load8(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

/* The tail (n % 8 elements) goes through the same vector code, padded with zeros. */
void swift_swiglu_fwd(const float *a, const float *b, float *h, int64_t n, int threads) {
    int64_t full = n / 8 * 8;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < full; i += 8) {
        v8f x = load8(a + i), y = load8(b + i);
        store8(h + i, x * sigmoid8(x) * y);
    }
    if (full < n) {
        int64_t m = n - full;
        float xa[8] = {0}, ya[8] = {0}, ha[8];
        memcpy(xa, a + full, m * sizeof(float));
        memcpy(ya, b + full, m * sizeof(float));
        v8f x = load8(xa), y = load8(ya);
        store8(ha, x * sigmoid8(x) * y);
        memcpy(h + full, ha, m * sizeof(float));
    }
}

/* ga = g * b * s * (1 + a * (1 - s)), gb = g * a * s, with s = sigmoid(a). */
void swift_swiglu_bwd(const float *g, const float *a, const float *b, float *ga, float *gb, int64_t n,
                      int threads) {
    int64_t full = n / 8 * 8;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < full; i += 8) {
        v8f x = load8(a + i), y = load8(b + i), d = load8(g + i);
        v8f s = sigmoid8(x);
        store8(gb + i, d * x * s);
        store8(ga + i, d * y * s * (splat(1.0f) + x * (splat(1.0f) - s)));
    }
    if (full < n) {
        int64_t m = n - full;
        float xa[8] = {0}, ya[8] = {0}, da[8] = {0}, o1[8], o2[8];
        memcpy(xa, a + full, m * sizeof(float));
        memcpy(ya, b + full, m * sizeof(float));
        memcpy(da, g + full, m * sizeof(float));
        v8f x = load8(xa), y = load8(ya), d = load8(da);
        v8f s = sigmoid8(x);
        store8(o1, d * x * s);
        store8(o2, d * y * s * (splat(1.0f) + x * (splat(1.0f) - s)));
        memcpy(gb + full, o1, m * sizeof(float));
        memcpy(ga + full, o2, m * sizeof(float));
    }
}
