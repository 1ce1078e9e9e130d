#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs each cmocka test program given and fails if any fails.
set -u
fail=0
for t in "$@"; do
	if ! "$t"; then
		echo "FAILED: $t" >&2
		fail=1
	fi
done
exit $fail
