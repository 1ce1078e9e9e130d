build-asan/controller/watchcmd.o: controller/watchcmd.c \
 controller/watchcmd.h controller/kube/config.h controller/options.h \
 controller/kube/client.h controller/kube/config.h \
 controller/kube/status.h controller/kube/informer.h \
 controller/kube/client.h controller/kube/path.h controller/kube/buf.h \
 controller/log.h
controller/watchcmd.h:
controller/kube/config.h:
controller/options.h:
controller/kube/client.h:
controller/kube/config.h:
controller/kube/status.h:
controller/kube/informer.h:
controller/kube/client.h:
controller/kube/path.h:
controller/kube/buf.h:
controller/log.h:
