build-asan/controller/kube/framer.o: controller/kube/framer.c \
 controller/kube/framer.h controller/kube/buf.h
controller/kube/framer.h:
controller/kube/buf.h:
