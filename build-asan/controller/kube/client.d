build-asan/controller/kube/client.o: controller/kube/client.c \
 controller/kube/client.h controller/kube/config.h \
 controller/kube/status.h controller/kube/backoff.h controller/kube/buf.h \
 controller/kube/framer.h controller/log.h
controller/kube/client.h:
controller/kube/config.h:
controller/kube/status.h:
controller/kube/backoff.h:
controller/kube/buf.h:
controller/kube/framer.h:
controller/log.h:
