build-asan/controller/kube/config.o: controller/kube/config.c \
 controller/kube/config.h
controller/kube/config.h:
