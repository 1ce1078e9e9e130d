# SPDX-License-Identifier: Apache-2.0
"""Fault tests of kage-controller (make test-faults; a short form in make
test): SIGKILL at random moments, control-plane restarts, a TCP proxy that
drops and stalls the API connection, API Priority and Fairness 429s, write
races, and the namespace baseline that must never be missing."""
