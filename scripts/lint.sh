#!/usr/bin/env bash
# make lint: formatting, static analysis and the banned-function check.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t src < <(find controller tests/unit tests/fuzz bench -name '*.[ch]' 2>/dev/null | sort)
fail=0

if ! clang-format --dry-run --Werror "${src[@]}"; then
	echo "lint: run clang-format -i on the files above" >&2
	fail=1
fi

# Unbounded or non-reentrant calls that have bounded replacements.
banned='\b(sprintf|vsprintf|strcpy|strcat|stpcpy|strtok|atoi|atol|atoll|atof|gets|strncpy|strncat)[[:space:]]*\('
if grep -nE "$banned" "${src[@]}"; then
	echo "lint: banned function used (snprintf, memcpy with a bound, strtol/strtoull instead)" >&2
	fail=1
fi

if ! cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	--inline-suppr --suppress=missingIncludeSystem -I controller controller tests/unit; then
	echo "lint: cppcheck findings above" >&2
	fail=1
fi
exit $fail
