build-asan/controller/main.o: controller/main.c controller/kube/config.h \
 controller/log.h controller/options.h controller/watchcmd.h
controller/kube/config.h:
controller/log.h:
controller/options.h:
controller/watchcmd.h:
