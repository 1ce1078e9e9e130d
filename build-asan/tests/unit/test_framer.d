build-asan/tests/unit/test_framer.o: tests/unit/test_framer.c \
 controller/kube/framer.h controller/kube/buf.h
controller/kube/framer.h:
controller/kube/buf.h:
