build-asan/tests/unit/test_status.o: tests/unit/test_status.c \
 controller/kube/status.h
controller/kube/status.h:
