build-asan/tests/unit/test_backoff.o: tests/unit/test_backoff.c \
 controller/kube/backoff.h
controller/kube/backoff.h:
