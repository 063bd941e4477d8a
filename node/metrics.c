/* metrics.c: the metrics registry and its Prometheus text rendering.
 *
 * Each series has one writer thread (metrics.h), so an update is a relaxed
 * atomic load and store: no lock, and no locked read-modify-write, which
 * on the status path (two counters and a histogram per request) cost as
 * much as the lookup itself. A render running on another thread reads whole
 * values, and may see a histogram whose count and buckets differ by an
 * in-flight observation, which Prometheus tolerates. */
#include "metrics.h"

#include "loghist.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

struct mn_counter {
    uint64_t v;
};

struct mn_gauge {
    uint64_t bits; /* a double's bits, so updates stay atomic */
    mn_gauge_fn fn;
    void *arg;
};

struct mn_histogram {
    double bounds[MN_HISTOGRAM_BOUNDS_MAX];
    size_t nbounds;
    double scale;
    double inv_scale; /* 1/scale when that is a whole number, else 0 */
    uint64_t raw_over[MN_HISTOGRAM_BOUNDS_MAX]; /* least raw value above each bound, in raw units */
    uint64_t le[MN_HISTOGRAM_BOUNDS_MAX + 1]; /* per exported bucket, not cumulative */
    uint64_t fine[MN_LOGHIST_BUCKETS];
    uint64_t count, sum, min, max;
};

struct series {
    enum kind kind;
    char name[MN_METRIC_NAME_MAX + 1];
    char help[MN_METRIC_HELP_MAX + 1];
    char labels[MN_METRIC_LABELS_MAX + 1];
    union {
        struct mn_counter c;
        struct mn_gauge g;
        struct mn_histogram *h;
    } u;
};

struct mn_metrics {
    struct series *s[MN_METRICS_MAX];
    size_t n;
};

static const double default_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ADD(p, v) STORE((p), LOAD(p) + (v)) /* one writer per series */

struct mn_metrics *mn_metrics_new(void) { return calloc(1, sizeof(struct mn_metrics)); }

void mn_metrics_free(struct mn_metrics *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        if (m->s[i]->kind == K_HISTOGRAM) free(m->s[i]->u.h);
        free(m->s[i]);
    }
    free(m);
}

static bool name_ok(const char *name) {
    size_t n = name ? strnlen(name, MN_METRIC_NAME_MAX + 1) : 0;
    if (n == 0 || n > MN_METRIC_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

/* Labels are trusted text from the program itself, but a stray brace or
 * newline would corrupt the whole exposition, so they are refused. */
static bool labels_ok(const char *labels) {
    size_t n = strnlen(labels, MN_METRIC_LABELS_MAX + 1);
    if (n > MN_METRIC_LABELS_MAX) return false;
    return strpbrk(labels, "{}\n") == NULL;
}

static struct series *add_series(struct mn_metrics *m, enum kind kind, const char *name,
                                 const char *help, const char *labels) {
    if (!labels) labels = "";
    if (!m || m->n >= MN_METRICS_MAX || !name_ok(name) || !labels_ok(labels)) return NULL;
    if (!help) help = "";
    if (strnlen(help, MN_METRIC_HELP_MAX + 1) > MN_METRIC_HELP_MAX) return NULL;
    for (size_t i = 0; i < m->n; i++) {
        const struct series *o = m->s[i];
        if (strcmp(o->name, name) != 0) continue;
        if (o->kind != kind || strcmp(o->labels, labels) == 0) return NULL;
    }
    struct series *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->kind = kind;
    strcpy(s->name, name);
    strcpy(s->help, help);
    strcpy(s->labels, labels);
    m->s[m->n++] = s;
    return s;
}

struct mn_counter *mn_metrics_counter(struct mn_metrics *m, const char *name, const char *help,
                                      const char *labels) {
    struct series *s = add_series(m, K_COUNTER, name, help, labels);
    return s ? &s->u.c : NULL;
}

static uint64_t dbits(double v) {
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double bitsd(uint64_t b) {
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

struct mn_gauge *mn_metrics_gauge(struct mn_metrics *m, const char *name, const char *help,
                                  const char *labels) {
    struct series *s = add_series(m, K_GAUGE, name, help, labels);
    if (!s) return NULL;
    s->u.g.bits = dbits(0.0);
    return &s->u.g;
}

struct mn_gauge *mn_metrics_gauge_fn(struct mn_metrics *m, const char *name, const char *help,
                                     const char *labels, mn_gauge_fn fn, void *arg) {
    if (!fn) return NULL;
    struct mn_gauge *g = mn_metrics_gauge(m, name, help, labels);
    if (g) {
        g->fn = fn;
        g->arg = arg;
    }
    return g;
}

static double to_exported(const struct mn_histogram *h, uint64_t raw) {
    return h->inv_scale > 0 ? (double)raw / h->inv_scale : (double)raw * h->scale;
}

/* The least raw value whose exported value is above bound (UINT64_MAX when
 * none is below 2^63), so that an observation compares integers and still
 * lands where comparing exported values would put it. */
static uint64_t least_raw_over(const struct mn_histogram *h, double bound) {
    if (!(to_exported(h, 0) <= bound)) return 0;
    double guess = bound / h->scale;
    if (!(guess < 9.2e18)) return UINT64_MAX;
    uint64_t r = (uint64_t)guess;
    while (r > 0 && to_exported(h, r - 1) > bound) r--;
    while (to_exported(h, r) <= bound) r++;
    return r;
}

struct mn_histogram *mn_metrics_histogram(struct mn_metrics *m, const char *name, const char *help,
                                          const char *labels, const double *bounds, size_t n,
                                          double scale) {
    if (!bounds) {
        bounds = default_bounds;
        n = sizeof default_bounds / sizeof default_bounds[0];
    }
    if (n > MN_HISTOGRAM_BOUNDS_MAX || !(scale > 0) || !isfinite(scale)) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) return NULL;
    }
    struct mn_histogram *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    struct series *s = add_series(m, K_HISTOGRAM, name, help, labels);
    if (!s) {
        free(h);
        return NULL;
    }
    memcpy(h->bounds, bounds, n * sizeof *bounds);
    h->nbounds = n;
    h->scale = scale;
    /* Dividing by 1e6 is exact where multiplying by 1e-6 is not, so 100 us
     * renders as 0.0001 rather than 9.999999999999999e-05. */
    double inv = 1.0 / scale;
    if (inv >= 1 && inv < 1e15 && fabs(inv - round(inv)) < 1e-9 * inv) h->inv_scale = round(inv);
    for (size_t i = 0; i < n; i++) h->raw_over[i] = least_raw_over(h, bounds[i]);
    h->min = UINT64_MAX;
    s->u.h = h;
    return h;
}

void mn_counter_add(struct mn_counter *c, uint64_t n) { ADD(&c->v, n); }
uint64_t mn_counter_value(const struct mn_counter *c) { return LOAD(&c->v); }

void mn_gauge_set(struct mn_gauge *g, double v) { __atomic_store_n(&g->bits, dbits(v), __ATOMIC_RELAXED); }

void mn_gauge_add(struct mn_gauge *g, double delta) { STORE(&g->bits, dbits(bitsd(LOAD(&g->bits)) + delta)); }

double mn_gauge_value(const struct mn_gauge *g) {
    if (g->fn) return g->fn(g->arg);
    return bitsd(LOAD(&g->bits));
}

void mn_histogram_observe(struct mn_histogram *h, uint64_t raw) {
    size_t b = 0;
    while (b < h->nbounds && raw >= h->raw_over[b]) b++;
    ADD(&h->le[b], 1);
    ADD(&h->fine[mn_loghist_index(raw)], 1);
    ADD(&h->sum, raw);
    if (raw > LOAD(&h->max)) STORE(&h->max, raw);
    if (raw < LOAD(&h->min)) STORE(&h->min, raw);
    ADD(&h->count, 1); /* last, so a reader never sees more count than buckets */
}

uint64_t mn_histogram_count(const struct mn_histogram *h) { return LOAD(&h->count); }
uint64_t mn_histogram_sum(const struct mn_histogram *h) { return LOAD(&h->sum); }
uint64_t mn_histogram_max(const struct mn_histogram *h) { return LOAD(&h->max); }

double mn_histogram_quantile(const struct mn_histogram *h, double q) {
    /* A snapshot of the buckets, so the rank walk sees one consistent total
     * while the loop thread keeps observing. */
    uint64_t counts[MN_LOGHIST_BUCKETS];
    uint64_t total = 0;
    for (size_t i = 0; i < MN_LOGHIST_BUCKETS; i++) total += counts[i] = LOAD(&h->fine[i]);
    return mn_loghist_quantile(counts, total, LOAD(&h->min), LOAD(&h->max), q);
}

void mn_histogram_reset(struct mn_histogram *h) {
    memset(h->le, 0, sizeof h->le);
    memset(h->fine, 0, sizeof h->fine);
    h->count = h->sum = h->max = 0;
    h->min = UINT64_MAX;
}

/* ---- rendering ---- */

struct buf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void bprintf(struct buf *b, const char *fmt, ...) MN_PRINTF(2, 3);
static void bprintf(struct buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* Shortest decimal that reads back as v, as Prometheus clients print. */
static void fmt_double(char out[32], double v) {
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Prefer plain notation ("10", not "1e+01"); exponents only where
     * %g needs them at full precision. */
    for (int pass = 0; pass < 2; pass++) {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, 32, "%.*g", prec, v);
            if (strtod(out, NULL) == v && (pass == 1 || !strchr(out, 'e'))) return;
        }
    }
}

static void render_help(struct buf *b, const struct series *s) {
    static const char *const types[] = {"counter", "gauge", "histogram"};
    bprintf(b, "# HELP %s ", s->name);
    for (const char *p = s->help; *p; p++) {
        if (*p == '\\') bprintf(b, "\\\\");
        else if (*p == '\n') bprintf(b, "\\n");
        else bprintf(b, "%c", *p);
    }
    bprintf(b, "\n# TYPE %s %s\n", s->name, types[s->kind]);
}

/* "{labels}" or "" into out. */
static void label_block(char *out, size_t cap, const char *labels, const char *extra) {
    if (!*labels && !*extra) {
        out[0] = 0;
    } else {
        snprintf(out, cap, "{%s%s%s}", labels, (*labels && *extra) ? "," : "", extra);
    }
}

static void render_series(struct buf *b, const struct series *s) {
    char lb[MN_METRIC_LABELS_MAX + 64], num[32];
    switch (s->kind) {
    case K_COUNTER:
        label_block(lb, sizeof lb, s->labels, "");
        bprintf(b, "%s%s %llu\n", s->name, lb, (unsigned long long)mn_counter_value(&s->u.c));
        break;
    case K_GAUGE:
        label_block(lb, sizeof lb, s->labels, "");
        fmt_double(num, mn_gauge_value(&s->u.g));
        bprintf(b, "%s%s %s\n", s->name, lb, num);
        break;
    case K_HISTOGRAM: {
        const struct mn_histogram *h = s->u.h;
        uint64_t cum = 0;
        for (size_t i = 0; i <= h->nbounds; i++) {
            char le[48];
            if (i < h->nbounds) fmt_double(num, h->bounds[i]);
            else strcpy(num, "+Inf");
            snprintf(le, sizeof le, "le=\"%s\"", num);
            label_block(lb, sizeof lb, s->labels, le);
            cum += LOAD(&h->le[i]);
            bprintf(b, "%s_bucket%s %llu\n", s->name, lb, (unsigned long long)cum);
        }
        label_block(lb, sizeof lb, s->labels, "");
        fmt_double(num, to_exported(h, mn_histogram_sum(h)));
        bprintf(b, "%s_sum%s %s\n", s->name, lb, num);
        bprintf(b, "%s_count%s %llu\n", s->name, lb, (unsigned long long)cum);
        break;
    }
    }
}

char *mn_metrics_render(const struct mn_metrics *m, size_t *len) {
    struct buf b = {0};
    bool done[MN_METRICS_MAX] = {false};
    bprintf(&b, "%s", "");
    for (size_t i = 0; i < m->n; i++) {
        if (done[i]) continue;
        render_help(&b, m->s[i]);
        for (size_t j = i; j < m->n; j++) {
            if (done[j] || strcmp(m->s[j]->name, m->s[i]->name) != 0) continue;
            render_series(&b, m->s[j]);
            done[j] = true;
        }
    }
    if (b.failed || !b.p) {
        free(b.p);
        return NULL;
    }
    if (len) *len = b.len;
    return b.p;
}
