/* C versions of the kernels of bench/bench_native.py, built with `cc -O2 -shared -fPIC` in the
 * benchmark run and called through ctypes with buffers prepared once.
 *
 * Two variants of each integer/money kernel:
 *   plain_*   idiomatic C: wrapping integers, no status (what a C programmer writes);
 *   checked_* the LwaS semantics: every integer operation overflow-checked, money currencies
 *             compared, a status returned and the result written to *out (lwas/abi.py).
 * The float kernels have no checks in LwaS either, so they exist once. */
#include <math.h>
#include <stdint.h>

typedef struct { int64_t minor; int32_t currency; } money;  /* {i64, i32}: 16 bytes */

/* ---- fib ---- */
int64_t plain_fib(int64_t n) { return n < 2 ? n : plain_fib(n - 1) + plain_fib(n - 2); }

static int fib_c(int64_t n, int64_t *out) {
    if (n < 2) { *out = n; return 0; }
    int64_t n1, n2, a, b; int s;
    if (__builtin_sub_overflow(n, 1, &n1)) return 1;
    if ((s = fib_c(n1, &a))) return s;
    if (__builtin_sub_overflow(n, 2, &n2)) return 1;
    if ((s = fib_c(n2, &b))) return s;
    if (__builtin_add_overflow(a, b, out)) return 1;
    return 0;
}
int checked_fib(int64_t *out, int64_t n) { return fib_c(n, out); }

/* ---- sum_to: a loop over a runtime bound ---- */
int64_t plain_sum_to(int64_t n) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) total += i;
    return total;
}
int checked_sum_to(int64_t *out, int64_t n) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++)
        if (__builtin_add_overflow(total, i, &total)) return 1;
    *out = total;
    return 0;
}

/* ---- mandelbrot ---- */
#define MANDEL(NAME, INC)                                                            \
    int64_t NAME(int64_t size, int64_t max_iter, int *status) {                     \
        int64_t count = 0;                                                          \
        double step_x = 2.5 / (double)size, step_y = 2.5 / (double)size;           \
        for (int64_t py = 0; py < size; py++) {                                     \
            double ci = -1.25 + (double)py * step_y;                                \
            for (int64_t px = 0; px < size; px++) {                                 \
                double cr = -2.0 + (double)px * step_x, zr = 0.0, zi = 0.0;         \
                int64_t k = 0;                                                      \
                while (k < max_iter && zr * zr + zi * zi <= 4.0) {                  \
                    double t = zr * zr - zi * zi + cr;                              \
                    zi = 2.0 * zr * zi + ci;                                        \
                    zr = t;                                                         \
                    INC(k);                                                         \
                }                                                                   \
                if (k == max_iter) INC(count);                                      \
            }                                                                       \
        }                                                                           \
        return count;                                                               \
    }
#define PLAIN_INC(v) ((v)++)
#define CHECKED_INC(v) do { if (__builtin_add_overflow((v), 1, &(v))) { *status = 1; return 0; } } while (0)
MANDEL(plain_mandel_impl, PLAIN_INC)
MANDEL(checked_mandel_impl, CHECKED_INC)
int64_t plain_mandelbrot(int64_t size, int64_t max_iter) { int s = 0; return plain_mandel_impl(size, max_iter, &s); }
int checked_mandelbrot(int64_t *out, int64_t size, int64_t max_iter) {
    int s = 0;
    *out = checked_mandel_impl(size, max_iter, &s);
    return s;
}

/* ---- money ---- */
int64_t plain_sum_money(const money *xs, int64_t n) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) total += xs[i].minor;
    return total;
}
int checked_sum_money(money *out, const money *xs, int64_t n) {
    money total = {0, 0x555344}; /* 0.00 USD */
    for (int64_t i = 0; i < n; i++) {
        if (xs[i].currency != total.currency) return 2;
        if (__builtin_add_overflow(total.minor, xs[i].minor, &total.minor)) return 1;
    }
    *out = total;
    return 0;
}

/* ---- mean / stddev / z-score ---- */
double mean(const double *xs, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += xs[i];
    return s / (double)n;
}
double stddev(const double *xs, int64_t n) {
    double m = mean(xs, n), s = 0.0;
    for (int64_t i = 0; i < n; i++) { double d = xs[i] - m; s += d * d; }
    return sqrt(s / (double)n);
}
int64_t zscore_outliers(const double *xs, int64_t n, double k) {
    double m = mean(xs, n), sd = stddev(xs, n);
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs((xs[i] - m) / sd) > k) c++;
    return c;
}
