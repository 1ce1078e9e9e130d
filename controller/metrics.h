/* metrics.h - the controller's counters in the Prometheus text format. */
#ifndef KAGE_METRICS_H
#define KAGE_METRICS_H

#include "ctl.h"
#include "kube/buf.h"

/* Appends every metric to out. Returns 0 or a negative errno from the buffer. */
int metrics_render(const struct ctl *c, struct buf *out);

#endif
