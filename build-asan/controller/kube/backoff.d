build-asan/controller/kube/backoff.o: controller/kube/backoff.c \
 controller/kube/backoff.h
controller/kube/backoff.h:
