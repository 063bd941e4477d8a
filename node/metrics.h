/* metrics.h: counters, gauges and latency histograms, rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * A registry holds at most MN_METRICS_MAX series. Each series has a family
 * name ([a-zA-Z_:][a-zA-Z0-9_:]*), a HELP text, and an optional label set
 * written as Prometheus would (`method="GetStatus"`); series of one family
 * share one HELP/TYPE header and are rendered together, in registration
 * order. Each series is updated by one thread only (the node's loop): an
 * update is a relaxed atomic load and store, with no lock, no locked
 * instruction and no allocation, and another thread may render meanwhile.
 *
 * Histograms record uint64 values in a raw unit (microseconds for latency)
 * into two sets of buckets: the exported `le` buckets (in exported units =
 * raw * scale, e.g. seconds) and fine log-linear buckets (16 per power of
 * two, relative error under 6.25%) from which quantiles are read.
 *
 * Ownership: the registry owns its series; handles returned by the
 * registration functions stay valid until mn_metrics_free. Name, help and
 * label strings are copied. */
#ifndef MN_METRICS_H
#define MN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn.h"

#define MN_METRICS_MAX 128
#define MN_METRIC_NAME_MAX 96
#define MN_METRIC_HELP_MAX 256
#define MN_METRIC_LABELS_MAX 128
#define MN_HISTOGRAM_BOUNDS_MAX 32

struct mn_metrics;
struct mn_counter;
struct mn_gauge;
struct mn_histogram;

/* Returns a new empty registry, or NULL when out of memory. */
struct mn_metrics *mn_metrics_new(void);

/* Frees the registry and all its series. NULL-safe. */
void mn_metrics_free(struct mn_metrics *m);

/* Registers a series. labels may be NULL or "" (no labels). Returns NULL
 * when the name or labels are malformed, too long, the registry is full, a
 * series with the same name and labels exists, or the same family name was
 * registered with another type. */
struct mn_counter *mn_metrics_counter(struct mn_metrics *m, const char *name, const char *help,
                                      const char *labels);
struct mn_gauge *mn_metrics_gauge(struct mn_metrics *m, const char *name, const char *help,
                                  const char *labels);

/* A gauge read at render time (e.g. mempool size from the mempool). */
typedef double (*mn_gauge_fn)(void *arg);
struct mn_gauge *mn_metrics_gauge_fn(struct mn_metrics *m, const char *name, const char *help,
                                     const char *labels, mn_gauge_fn fn, void *arg);

/* bounds: strictly increasing `le` upper bounds in exported units (n <=
 * MN_HISTOGRAM_BOUNDS_MAX, +Inf is implicit); NULL uses the default latency
 * bounds in seconds (0.0001 ... 10). scale converts a raw value to exported
 * units (1e-6 for microseconds to seconds); must be > 0. */
struct mn_histogram *mn_metrics_histogram(struct mn_metrics *m, const char *name, const char *help,
                                          const char *labels, const double *bounds, size_t n,
                                          double scale);

void mn_counter_add(struct mn_counter *c, uint64_t n);
static inline void mn_counter_inc(struct mn_counter *c) { mn_counter_add(c, 1); }
uint64_t mn_counter_value(const struct mn_counter *c);

void mn_gauge_set(struct mn_gauge *g, double v);
void mn_gauge_add(struct mn_gauge *g, double delta);
double mn_gauge_value(const struct mn_gauge *g);

/* Records one raw value. */
void mn_histogram_observe(struct mn_histogram *h, uint64_t raw);
uint64_t mn_histogram_count(const struct mn_histogram *h);
uint64_t mn_histogram_sum(const struct mn_histogram *h); /* raw units */
uint64_t mn_histogram_max(const struct mn_histogram *h); /* raw units; 0 when empty */

/* Estimated q-quantile (0 <= q <= 1) in raw units: the midpoint of the fine
 * bucket holding that rank, clamped to the exact observed min and max.
 * Returns 0 when empty. */
double mn_histogram_quantile(const struct mn_histogram *h, double q);

/* Clears a histogram (benchmarks between phases). */
void mn_histogram_reset(struct mn_histogram *h);

/* Renders every series into a new NUL-terminated buffer the caller frees
 * with free(); *len (may be NULL) gets its length. Returns NULL when out of
 * memory. */
char *mn_metrics_render(const struct mn_metrics *m, size_t *len);

/* Content-Type of the rendering. */
#define MN_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
