// SPDX-License-Identifier: Apache-2.0
/* quantity.h - Kubernetes resource quantities ("500m", "1Gi", "2e3") read
 * as exact integers of thousandths of a unit. Pure: no I/O, no allocation. */
#ifndef KAGE_QUANTITY_H
#define KAGE_QUANTITY_H

#include <stdint.h>

/*
 * Parses a quantity in the grammar of k8s.io/apimachinery resource.Quantity:
 *
 *   [+-] digits [. [digits]] | [+-] . digits      (at least one digit)
 *   then one optional suffix:
 *     binary SI   Ki Mi Gi Ti Pi Ei               (powers of 1024)
 *     decimal SI  n u m k M G T P E               (10^-9 ... 10^18)
 *     exponent    e|E [+-] digits                 ("1e3", "5E-1")
 *
 * and stores its value in thousandths of a unit into *milli: "500m" -> 500,
 * "1" -> 1000, "1Gi" -> 1073741824000. The value is computed exactly and a
 * part finer than a milli is rounded up in magnitude, as Kubernetes' own
 * MilliValue() does for positive quantities, so that asking for a little
 * never yields nothing: "1n" -> 1, "0.1m" -> 1, "1.0001" -> 1001,
 * "-1n" -> -1 (away from zero). Zero in any form ("0", "-0Gi", "0e99") is 0.
 *
 * Returns 0; -EINVAL when s is not a quantity (NULL, empty, surrounding
 * whitespace, "1.2.3", "1Gb", "1K", "1e", "++1", "."...); -ERANGE when it
 * is one but its milli value does not fit an int64 ("8Ei", "1e17").
 * *milli is written only on success.
 */
int quantity_parse_milli(const char *s, int64_t *milli);

/*
 * Compares two quantities by value at milli precision ("1Gi" equals
 * "1073741824", "1000m" equals "1"). Stores -1, 0 or 1 into *out (a < b,
 * equal, a > b). Returns 0, or the first parse error of a then b (*out is
 * then untouched).
 */
int quantity_cmp(const char *a, const char *b, int *out);

#endif
