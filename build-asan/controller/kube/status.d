build-asan/controller/kube/status.o: controller/kube/status.c \
 controller/kube/status.h
controller/kube/status.h:
