build-asan/controller/kube/buf.o: controller/kube/buf.c \
 controller/kube/buf.h
controller/kube/buf.h:
