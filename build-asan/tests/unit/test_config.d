build-asan/tests/unit/test_config.o: tests/unit/test_config.c \
 controller/kube/config.h
controller/kube/config.h:
