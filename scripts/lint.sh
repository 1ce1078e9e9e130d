#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make lint: formatting, static analysis, the banned-function check, the
# purity of controller/reconcile/ and unused functions.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t src < <(find controller gate tests/unit tests/fuzz tests/node bench -name '*.[ch]' 2>/dev/null | sort)
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
	--inline-suppr --suppress=missingIncludeSystem -I controller controller gate tests/unit; then
	echo "lint: cppcheck findings above" >&2
	fail=1
fi
# controller/reconcile/ is the pure folder: decisions only, no event loop,
# no API client, no sockets or files, so that all of it runs in unit tests
# without a server. Its files include reconcile/ headers, the C library's
# pure ones, and of the rest of controller/ only these pure modules.
pure_local='^(reconcile/.*|utf8\.h|kube/buf\.h|log\.h)$'
io_headers='^(uv\.h|curl/curl\.h|microhttpd\.h|netdb\.h|unistd\.h|fcntl\.h|poll\.h|dirent\.h|sys/socket\.h|sys/stat\.h|openssl/ssl\.h)$'
# cidr.c takes AF_INET/AF_INET6 from <sys/socket.h> for struct cidr; it
# opens nothing.
io_allowed='^controller/reconcile/cidr\.c:sys/socket\.h$'
while IFS=: read -r file line text; do
	hdr=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]*)[>"].*/\1/' <<<"$text")
	if [[ $text == *'"'* || -e controller/$hdr ]]; then
		[[ $hdr =~ $pure_local ]] && continue
	else
		[[ $hdr =~ $io_headers ]] || continue
		[[ $file:$hdr =~ $io_allowed ]] && continue
	fi
	echo "$file:$line: includes $hdr: controller/reconcile/ does no I/O and calls no client" >&2
	fail=1
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' controller/reconcile/*.[ch] /dev/null)

# Functions nothing but their unit tests calls (scripts/unused-allow.txt
# lists the ones let through for now).
if ! python3 scripts/unused_functions.py; then
	echo "lint: unused functions above: use them, make them static, or delete them" >&2
	fail=1
fi
# Every source file says its licence (scripts/spdx.py adds the line).
if ! python3 scripts/spdx.py --check; then
	fail=1
fi
# kube-score over the manifests as kubectl apply -k manifests/ sends them.
if ! scripts/kube-score.sh; then
	fail=1
fi
exit $fail
