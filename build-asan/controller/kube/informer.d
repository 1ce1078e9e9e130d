build-asan/controller/kube/informer.o: controller/kube/informer.c \
 controller/kube/informer.h controller/kube/client.h \
 controller/kube/config.h controller/kube/status.h controller/kube/path.h \
 controller/kube/buf.h controller/kube/backoff.h
controller/kube/informer.h:
controller/kube/client.h:
controller/kube/config.h:
controller/kube/status.h:
controller/kube/path.h:
controller/kube/buf.h:
controller/kube/backoff.h:
