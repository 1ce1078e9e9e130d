build-asan/controller/kube/path.o: controller/kube/path.c \
 controller/kube/path.h controller/kube/buf.h
controller/kube/path.h:
controller/kube/buf.h:
